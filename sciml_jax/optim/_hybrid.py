"""hybrid(first, second, switch): run `first` until a switch criterion fires, then `second`, with a divergence guard.

Everything runs inside jit: the phase is an integer in the state and branches are `lax.cond`s.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from ._util import param_dtype
from ._util import memoized

# Reason bits, stable across runs so that a recorded `reason` can be decoded anywhere (see `reason_names`).
REASON_BITS = {"after_steps": 1, "plateau": 2, "grad_norm": 4, "curvature": 8, "custom": 16}


def reason_names(code: int) -> list[str]:
    """Decode a switch ``reason`` bitmask into criterion names."""
    return [name for name, bit in REASON_BITS.items() if int(code) & bit]


class Context(NamedTuple):
    """What a criterion sees at each step of the first phase.

    Attributes:
        count: steps taken so far by the hybrid (all phases).
        value: loss L(θ) at the current parameters.
        grad: ∇L(θ) (a pytree like params).
        params: current parameters θ.
        updates: the step the first optimizer proposes now.
        value_fn: θ ↦ L(θ) at the current batch.
        residual_fn: θ ↦ r(θ) at the current batch, or None when the caller gives none.
    """

    count: jax.Array
    value: jax.Array
    grad: Any
    params: Any
    updates: Any
    value_fn: Callable
    residual_fn: Callable | None


class Criterion:
    """A switch criterion: ``init(params) -> state`` and ``step(state, ctx) -> (state, fired, reason_bits)``.

    Criteria compose with ``|`` (any fires) and ``&`` (all fire at the same step). A user-written criterion
    subclasses this (or :class:`FunctionCriterion`) and returns its own bits (default ``REASON_BITS["custom"]``).
    """

    def init(self, params: Any) -> Any:
        return ()

    def step(self, state: Any, ctx: Context) -> tuple[Any, jax.Array, jax.Array]:
        raise NotImplementedError

    def __or__(self, other: "Criterion") -> "Criterion":
        return _Combine((self, other), "any")

    def __and__(self, other: "Criterion") -> "Criterion":
        return _Combine((self, other), "all")


@dataclasses.dataclass(frozen=True)
class _Combine(Criterion):
    parts: tuple[Criterion, ...]
    mode: str

    def init(self, params):
        return tuple(p.init(params) for p in self.parts)

    def step(self, state, ctx):
        new_states, fired, bits = [], [], []
        for p, s in zip(self.parts, state):
            s, f, b = p.step(s, ctx)
            new_states.append(s)
            fired.append(f)
            bits.append(jnp.where(f, b, 0))
        fired = jnp.stack(fired)
        fire = jnp.any(fired) if self.mode == "any" else jnp.all(fired)
        code = jnp.bitwise_or.reduce(jnp.stack(bits).astype(jnp.int32))
        return tuple(new_states), fire, jnp.where(fire, code, 0).astype(jnp.int32)


@dataclasses.dataclass(frozen=True)
class FunctionCriterion(Criterion):
    """Wrap a stateless user function ``fn(ctx: Context) -> bool array`` as a criterion."""

    fn: Callable[[Context], jax.Array]
    bits: int = REASON_BITS["custom"]

    def step(self, state, ctx):
        return state, jnp.asarray(self.fn(ctx), bool), jnp.asarray(self.bits, jnp.int32)


class AfterStepsState(NamedTuple):
    """Logged state of :func:`after_steps`: ``steps`` taken so far (fires at ``steps >= threshold``)."""

    steps: jax.Array

    _log_name = "switch.after_steps"
    _log_fields = ("steps",)


@dataclasses.dataclass(frozen=True)
class _AfterSteps(Criterion):
    steps: int

    def init(self, params):
        return AfterStepsState(jnp.zeros((), jnp.int32))

    def step(self, state, ctx):
        count = jnp.asarray(ctx.count, jnp.int32)
        return AfterStepsState(count), count >= self.steps, jnp.asarray(REASON_BITS["after_steps"], jnp.int32)


def after_steps(steps: int) -> Criterion:
    """Fire once the hybrid has taken ``steps`` steps."""
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"after_steps: steps must be a non-negative integer, got {steps!r}")
    return _AfterSteps(steps)


class _BestBuffer(NamedTuple):
    best: jax.Array  # best loss so far
    ring: jax.Array  # (window,) best-so-far values of the last `window` steps
    n: jax.Array  # steps recorded


def _push_best(buf: _BestBuffer, value: jax.Array, window: int) -> tuple[_BestBuffer, jax.Array]:
    """Record the best-so-far loss; return the new buffer and the best-so-far of `window` steps ago."""
    value = jnp.where(jnp.isfinite(value), value, jnp.inf).astype(buf.best.dtype)
    best = jnp.minimum(buf.best, value)
    idx = buf.n % window
    old = buf.ring[idx]
    ring = buf.ring.at[idx].set(best)
    return _BestBuffer(best, ring, buf.n + 1), old


def _init_buffer(params, window) -> _BestBuffer:
    dtype = param_dtype(params)
    return _BestBuffer(jnp.asarray(jnp.inf, dtype), jnp.full((window,), jnp.inf, dtype), jnp.zeros((), jnp.int32))


class PlateauState(NamedTuple):
    """State of :func:`on_plateau`; ``rel_change`` (logged) is the relative decrease of the best loss over the
    last ``window`` steps (NaN until the window is full); the criterion fires when it is below ``rtol``."""

    buf: _BestBuffer
    rel_change: jax.Array

    _log_name = "switch.plateau"
    _log_fields = ("rel_change",)


@dataclasses.dataclass(frozen=True)
class _Plateau(Criterion):
    window: int
    rtol: float
    min_steps: int

    def init(self, params):
        buf = _init_buffer(params, self.window)
        return PlateauState(buf, jnp.asarray(jnp.nan, buf.best.dtype))

    def step(self, state, ctx):
        buf, old = _push_best(state.buf, ctx.value, self.window)
        full = (buf.n > self.window) & jnp.isfinite(old)
        rel = jnp.where(full, (old - buf.best) / jnp.abs(jnp.where(full, old, 1.0)), jnp.nan)
        fire = full & (ctx.count >= self.min_steps) & (rel < self.rtol)
        return PlateauState(buf, rel.astype(state.rel_change.dtype)), fire, jnp.asarray(REASON_BITS["plateau"], jnp.int32)


def on_plateau(window: int = 200, rtol: float = 1e-2, min_steps: int = 0) -> Criterion:
    """Fire when the best loss so far decreased by less than ``rtol`` (relative) over the last ``window`` steps.

    Using the best-so-far value makes the test insensitive to Adam's oscillations.
    """
    if not isinstance(window, int) or window < 1:
        raise ValueError(f"on_plateau: window must be a positive integer, got {window!r}")
    if not rtol > 0:
        raise ValueError(f"on_plateau: rtol must be > 0, got {rtol!r}")
    return _Plateau(window, float(rtol), int(min_steps))


class GradNormState(NamedTuple):
    """State of :func:`grad_norm_below`.

    Attributes:
        count: consecutive steps below the threshold.
        ref: reference norm ‖∇L(θ_0)‖ of the relative form (-1 until the first step has set it).
        grad_norm: ‖∇L‖ at the last step (logged).
        ratio: ‖∇L‖ / threshold at the last step (logged; the criterion counts steps with ratio < 1).
    """

    count: jax.Array
    ref: jax.Array
    grad_norm: jax.Array
    ratio: jax.Array

    _log_name = "switch.grad_norm"
    _log_fields = ("grad_norm", "ratio")


@dataclasses.dataclass(frozen=True)
class _GradNorm(Criterion):
    tol: float
    patience: int
    relative: bool

    def init(self, params):
        dtype = param_dtype(params)
        nan = jnp.asarray(jnp.nan, dtype)
        return GradNormState(jnp.zeros((), jnp.int32), -jnp.ones((), dtype), nan, nan)

    def step(self, state, ctx):
        norm = optax.tree.norm(ctx.grad).astype(state.ref.dtype)
        ref = jnp.where(state.ref < 0, norm, state.ref).astype(state.ref.dtype)
        threshold = self.tol * ref if self.relative else jnp.asarray(self.tol, ref.dtype)
        below = norm < threshold
        count = jnp.where(below, state.count + 1, 0).astype(jnp.int32)
        ratio = (norm / threshold).astype(ref.dtype)
        new = GradNormState(count, ref, norm, ratio)
        return new, count >= self.patience, jnp.asarray(REASON_BITS["grad_norm"], jnp.int32)


def grad_norm_below(tol: float, patience: int = 1, relative: bool = False) -> Criterion:
    """Fire when ‖∇L‖ < ``tol`` (or, with ``relative=True``, ‖∇L‖ < ``tol`` · ‖∇L(θ_0)‖, the norm at the first
    step) for ``patience`` consecutive steps.

    The absolute form depends on the scale of the loss (a PDE term with forcing of size (kπ)² has gradients of that
    size), so one ``tol`` rarely suits several problems; the relative form is invariant to rescaling the loss.
    """
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not tol > 0:
        raise ValueError(f"grad_norm_below: tol must be a number > 0, got {tol!r}")
    if relative and not tol < 1:
        raise ValueError(f"grad_norm_below: with relative=True, tol must be in (0, 1), got {tol!r}")
    if not isinstance(patience, int) or patience < 1:
        raise ValueError(f"grad_norm_below: patience must be a positive integer, got {patience!r}")
    if not isinstance(relative, bool):
        raise ValueError(f"grad_norm_below: relative must be true or false, got {relative!r}")
    return _GradNorm(float(tol), patience, relative)


class CurvatureState(NamedTuple):
    """State of :func:`curvature_model`; ``efficiency`` and ``agreement`` (logged) are the last measured ratios
    (efficiency: realised / model-predicted decrease per step, inf until measured; agreement: actual / model
    decrease at the Cauchy step, 0 until measured)."""

    buf: _BestBuffer
    efficiency: jax.Array
    agreement: jax.Array

    _log_name = "switch.curvature"
    _log_fields = ("efficiency", "agreement")



def _gn_quadratic(ctx: Context) -> tuple[jax.Array, jax.Array]:
    """Return (gᵀg, gᵀBg) with B the Gauss-Newton matrix JᵀJ (from residual_fn) or the Hessian (from value_fn)."""
    g = ctx.grad
    gg = sum(jnp.vdot(x, x) for x in jax.tree.leaves(g))
    if ctx.residual_fn is not None:
        _, jg = jax.jvp(ctx.residual_fn, (ctx.params,), (g,))
        gbg = jnp.vdot(jg, jg)
    else:
        _, hg = jax.jvp(jax.grad(ctx.value_fn), (ctx.params,), (g,))
        gbg = sum(jnp.vdot(a, b) for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(hg)))
    return gg, gbg


@dataclasses.dataclass(frozen=True)
class _Curvature(Criterion):
    ratio: float
    agreement: float
    window: int
    every: int
    min_steps: int

    def init(self, params):
        buf = _init_buffer(params, self.window)
        dtype = buf.best.dtype
        return CurvatureState(buf, jnp.asarray(jnp.inf, dtype), jnp.asarray(0.0, dtype))

    def step(self, state, ctx):
        buf, old = _push_best(state.buf, ctx.value, self.window)
        check = (buf.n > self.window) & (ctx.count >= self.min_steps) & (ctx.count % self.every == 0)

        def measure(_):
            gg, gbg = _gn_quadratic(ctx)
            # Cauchy step of the quadratic model along -g: α = gᵀg / gᵀBg, predicted decrease (gᵀg)² / (2 gᵀBg).
            alpha = gg / gbg
            predicted = 0.5 * gg * alpha
            trial = jax.tree.map(lambda p, g: p - alpha * g, ctx.params, ctx.grad)
            actual = ctx.value - ctx.value_fn(trial)
            realised = (old - buf.best) / self.window  # first optimizer's mean decrease per step, recent window
            eff = realised / predicted
            agree = actual / predicted
            ok = jnp.isfinite(eff) & jnp.isfinite(agree) & (gbg > 0)
            return (
                jnp.where(ok, eff, jnp.inf).astype(state.efficiency.dtype),
                jnp.where(ok, agree, 0.0).astype(state.agreement.dtype),
            )

        eff, agree = jax.lax.cond(check, measure, lambda _: (state.efficiency, state.agreement), None)
        fire = check & (eff < self.ratio) & (agree > self.agreement)
        return CurvatureState(buf, eff, agree), fire, jnp.asarray(REASON_BITS["curvature"], jnp.int32)


def curvature_model(
    ratio: float = 0.1, agreement: float = 0.5, window: int = 100, every: int = 25, min_steps: int = 0
) -> Criterion:
    """Curvature-based switch: first-order progress is poor relative to what the local quadratic model promises,
    and that model is trustworthy.

    Every ``every`` steps, with B the Gauss-Newton matrix JᵀJ (from ``residual_fn``; the Hessian of ``value_fn``
    otherwise) and g = ∇L, the Cauchy step along -g has α = gᵀg / gᵀBg and the model predicts a decrease
    Δ_model = (gᵀg)² / (2 gᵀBg). Two ratios are measured:

        efficiency = (mean decrease per step of the best loss over the last ``window`` steps) / Δ_model
        agreement  = (L(θ) - L(θ - α g)) / Δ_model

    The criterion fires when efficiency < ``ratio`` (the first optimizer realises less than that fraction of a
    single curvature-aware step per step: its step size no longer matches the curvature) and agreement >
    ``agreement`` (the quadratic model predicts the actual loss well: the landscape is locally convex-like, so a
    quasi-Newton/Gauss-Newton phase will not diverge). Cost per check: one jvp of r (or an HVP) and one loss.
    """
    if not ratio > 0:
        raise ValueError(f"curvature_model: ratio must be > 0, got {ratio!r}")
    if not 0 <= agreement < 1:
        raise ValueError(f"curvature_model: agreement must be in [0, 1), got {agreement!r}")
    for name, v in (("window", window), ("every", every)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"curvature_model: {name} must be a positive integer, got {v!r}")
    return _Curvature(float(ratio), float(agreement), window, every, int(min_steps))


class HybridState(NamedTuple):
    """State of :func:`hybrid`.

    Attributes:
        count: steps taken (all phases).
        phase: 0 = first optimizer, 1 = second, 2 = first for good (fallbacks exhausted).
        switch_step: step of the last switch to the second optimizer (-1: never).
        switches: number of switches to the second optimizer so far.
        reason: bitmask of the criteria that fired at the last switch (`reason_names` decodes it).
        fallbacks: number of rollbacks done by the divergence guard.
        hold_until: the switch criterion is ignored before this step (after a fallback).
        anchor_params: parameters at the last switch (the rollback target).
        anchor_value: loss at the last switch.
        first_state, second_state, criterion_state: the inner states. The built-in criteria's states log what
            they decide on (``logged_info`` walks into them): ``switch.after_steps.steps``,
            ``switch.plateau.rel_change``, ``switch.grad_norm.grad_norm`` / ``.ratio``,
            ``switch.curvature.efficiency`` / ``.agreement``; ``sciml_jax.plotting.plot_switch_diagnostics`` draws
            them with the switch marked. They are updated only while the first optimizer runs.
    """

    count: jax.Array
    phase: jax.Array
    switch_step: jax.Array
    switches: jax.Array
    reason: jax.Array
    fallbacks: jax.Array
    hold_until: jax.Array
    anchor_params: Any
    anchor_value: jax.Array
    first_state: Any
    second_state: Any
    criterion_state: Any

    _log_name = "hybrid"
    _log_fields = ("phase", "switches", "reason", "fallbacks")

    def next_value_and_grad(self) -> tuple[jax.Array, Any, jax.Array] | None:
        """The second optimizer's value and gradient at the returned parameters, valid while it is active and its
        last step stood (a rollback or phase 0/2 makes it invalid); None when the second optimizer keeps none."""
        inner = getattr(self.second_state, "next_value_and_grad", None)
        if inner is None:
            return None
        value, grad, valid = inner()
        return value, grad, valid & (self.phase == 1)


def _wrap(tx):
    return optax.with_extra_args_support(tx)


@memoized
def hybrid(
    first: optax.GradientTransformation,
    second: optax.GradientTransformation,
    switch: Criterion,
    *,
    guard_factor: float | None = 10.0,
    fallback_steps: int = 500,
    max_fallbacks: int = 3,
) -> optax.GradientTransformationExtraArgs:
    """Run ``first`` until ``switch`` fires, then ``second`` (e.g. Adam -> L-BFGS), with a divergence guard.

    At the switch the second optimizer is (re)initialised at the current parameters θ_s, which are kept as the
    anchor, with L_s = L(θ_s). Guard: in the second phase each proposed step is checked before it is taken; if
    L(θ + Δθ) is not finite or exceeds ``guard_factor`` · L_s, the step is replaced by a rollback to θ_s, the first
    optimizer resumes (its moments kept) for at least ``fallback_steps`` steps before the criterion may fire again,
    and after ``max_fallbacks`` rollbacks the first optimizer continues for good. The guard costs one loss
    evaluation per second-phase step; ``guard_factor=None`` disables it.

    Extra arguments (``value``, ``grad``, ``value_fn``, ``residual_fn``) are passed on to both optimizers; plain
    optax transformations ignore them.

    Args:
        first: optimizer of the first phase.
        second: optimizer of the second phase.
        switch: a :class:`Criterion` (``after_steps``, ``on_plateau``, ``grad_norm_below``, ``curvature_model``,
            compositions with ``|``/``&``, or a user criterion).
        guard_factor: allowed rise of the loss over its value at the switch (> 1), or None.
        fallback_steps: first-optimizer steps after a rollback before a new switch.
        max_fallbacks: rollbacks allowed before staying with the first optimizer.
    """
    if not isinstance(switch, Criterion):
        raise ValueError(f"switch: expected a Criterion (e.g. sj.optim.after_steps(1000)), got {switch!r}")
    if guard_factor is not None and not guard_factor > 1:
        raise ValueError(f"guard_factor: expected a number > 1 or None, got {guard_factor!r}")
    if not isinstance(fallback_steps, int) or fallback_steps < 0:
        raise ValueError(f"fallback_steps: expected a non-negative integer, got {fallback_steps!r}")
    if not isinstance(max_fallbacks, int) or max_fallbacks < 0:
        raise ValueError(f"max_fallbacks: expected a non-negative integer, got {max_fallbacks!r}")
    first, second = _wrap(first), _wrap(second)

    def init(params):
        dtype = param_dtype(params)
        i32 = lambda v: jnp.asarray(v, jnp.int32)  # noqa: E731
        return HybridState(
            count=i32(0),
            phase=i32(0),
            switch_step=i32(-1),
            switches=i32(0),
            reason=i32(0),
            fallbacks=i32(0),
            hold_until=i32(0),
            anchor_params=params,
            anchor_value=jnp.asarray(jnp.inf, dtype),
            first_state=first.init(params),
            second_state=second.init(params),
            criterion_state=switch.init(params),
        )

    def update(updates, state: HybridState, params=None, *, value=None, grad=None, value_fn=None, **extra):
        if params is None or value is None or value_fn is None:
            raise ValueError("hybrid.update needs params and the extra arguments value and value_fn (fit passes them)")
        grad = updates if grad is None else grad
        residual_fn = extra.get("residual_fn")
        kw = dict(value=value, grad=grad, value_fn=value_fn, **extra)

        def run_first(state: HybridState):
            u, fs = first.update(updates, state.first_state, params, **kw)
            ctx = Context(state.count, value, grad, params, u, value_fn, residual_fn)
            cs, fired, code = switch.step(state.criterion_state, ctx)
            go = fired & (state.phase == 0) & (state.count >= state.hold_until)
            state = state._replace(first_state=fs, criterion_state=cs)

            def do_switch(state: HybridState):
                state = state._replace(
                    phase=jnp.asarray(1, jnp.int32),
                    switch_step=state.count,
                    switches=state.switches + 1,
                    reason=code,
                    anchor_params=params,
                    anchor_value=jnp.asarray(value, state.anchor_value.dtype),
                    second_state=second.init(params),
                )
                return run_second(state)

            return jax.lax.cond(go, do_switch, lambda s: (u, s), state)

        def run_second(state: HybridState):
            u, ss = second.update(updates, state.second_state, params, **kw)
            state = state._replace(second_state=ss)
            if guard_factor is None:
                return u, state
            cached = getattr(ss, "next_value_and_grad", None)
            if cached is not None:  # the line search already evaluated the loss at params + u
                v_next, _, ok = cached()
                new_value = jax.lax.cond(ok, lambda: jnp.asarray(v_next, value.dtype),
                                         lambda: jnp.asarray(value_fn(optax.apply_updates(params, u)), value.dtype))
            else:
                new_value = value_fn(optax.apply_updates(params, u))
            bad = jnp.logical_not(jnp.isfinite(new_value)) | (new_value > guard_factor * state.anchor_value)

            def rollback(state: HybridState):
                back = jax.tree.map(lambda a, p: (a - p).astype(p.dtype), state.anchor_params, params)
                fallbacks = state.fallbacks + 1
                return back, state._replace(
                    phase=jnp.where(fallbacks > max_fallbacks, 2, 0).astype(jnp.int32),
                    fallbacks=fallbacks,
                    hold_until=state.count + 1 + fallback_steps,
                )

            return jax.lax.cond(bad, rollback, lambda s: (u, s), state)

        u, state = jax.lax.cond(state.phase == 1, run_second, run_first, state)
        return u, state._replace(count=state.count + 1)

    return optax.GradientTransformationExtraArgs(init, update)
