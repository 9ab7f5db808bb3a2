"""Dense BFGS and its self-scaled variants (SSBFGS, SSBroyden) as optax transforms with a strong-Wolfe line search.

All three update a dense inverse-Hessian approximation H_k ≈ ∇²L(θ_k)⁻¹ (P × P, so P up to ~10⁴: 0.8 GB in
float64 at P = 10⁴) from the pair s = θ_{k+1} - θ_k, y = g_{k+1} - g_k, and step along d = -H g with optax's zoom
line search (strong Wolfe conditions). They are members of the self-scaled Broyden class in inverse form
(Al-Baali 1998; Al-Baali, Spedicato & Maggioni 2014):

    H_{k+1} = (1/τ_k) [H - (Hy)(Hy)ᵀ / yᵀHy + φ_k (yᵀHy) v vᵀ] + s sᵀ / yᵀs,     v = s / yᵀs - Hy / yᵀHy,
    φ_k = (1 - θ_k) / (1 + a_k θ_k),

with the scalars (H = H_k, B = H⁻¹; Bs is known without inverting: s = -α d with d = H u, so Bs = -α u)

    b_k = sᵀBs / yᵀs,   h_k = yᵀHy / yᵀs,   a_k = b_k h_k - 1 >= 0.

    BFGS       θ = 0, τ = 1 (φ = 1: the classical update).
    SSBFGS     θ = 0, τ = min(1, 1/b_k) (Al-Baali's self-scaling; ``scaling="oren_luenberger"`` gives τ = 1/b_k,
               Oren & Luenberger 1974) — Urbán, Stefanou & Pons, J. Comput. Phys. 523 (2025) 113656, "Unveiling
               the optimization process of physics informed neural networks: how accurate and competitive can
               PINNs be?", and Kiyani, Shukla, Urbán, Darbon & Karniadakis, CMAME 446 (2025) 118308.
    SSBroyden  θ_k and τ_k from Al-Baali's bounds (the variant "SSBroyden2" of Urbán et al.):
                   c = √(a/(1+a)),  ρ⁻ = min(1, h (1 - c)),  θ⁻ = (ρ⁻ - 1)/a,  θ⁺ = 1/ρ⁻,
                   θ = max(θ⁻, min(θ⁺, (1 - b)/b)),
                   σ = 1 + a θ,  σ̂ = σ^{1/(1-P)},  r = min(1, 1/b),
                   τ = min(r σ̂, σ) if θ <= 0 else r · min(σ̂, 1/θ).
               When a ≈ 0 (Hy ∥ s) every member coincides: θ = 0, τ = min(1, 1/b).

H₀ = I, with the first direction capped at unit length (d = -g · min(1, 1/‖g‖), as optax's L-BFGS) and, before
the first update, H₀ replaced by (yᵀs / yᵀy) I (Nocedal & Wright, Numerical Optimization, eq. 6.20;
``initial_scale``). An update whose curvature yᵀs <= eps·‖s‖‖y‖ is skipped (counted in ``skipped``); the strong
Wolfe line search makes that rare.

Safeguards. A line-search step that raises the loss is not taken (optax's zoom search returns its last trial
step when it finds no point of sufficient decrease, even if the loss rose). Restart: when the line search fails
(its step does not lower the loss), H is reset to I and the next curvature pair rescales it as at the start
(``restart=True``, the default; counted in ``restarts``). Without it a poor H keeps proposing the same failing
direction: each step then spends the whole line-search budget and the iterate freezes (measured on the heat
benchmark, seed 2: the error froze at 1.5e-7 while steps became 4-8x dearer).

Written by hand: optax has only L-BFGS and optimistix's BFGS has no self-scaling nor zoom line search.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.flatten_util
import jax.numpy as jnp
import optax

from ._lbfgs import linesearch_value_and_grad, check_linesearch_options, final_types, linesearch_step, zoom_linesearch
from ._util import param_dtype
from ._util import memoized

VARIANTS = ("bfgs", "ssbfgs", "ssbroyden")
SCALINGS = ("al_baali", "oren_luenberger")


class ScaleByBFGSState(NamedTuple):
    """State of :func:`scale_by_bfgs`.

    Attributes:
        count: updates seen.
        params: θ at the previous update (flat, (P,)).
        updates: incoming update (gradient) at the previous update (flat, (P,)).
        direction: the previous output H u (flat, (P,)).
        hinv: the inverse-Hessian approximation H (P, P).
        tau: self-scaling factor τ of the last update (1 for BFGS).
        theta: Broyden parameter θ of the last update (0 for BFGS/SSBFGS).
        skipped: updates skipped because yᵀs was not positive.
    """

    count: jax.Array
    params: jax.Array
    updates: jax.Array
    direction: jax.Array
    hinv: jax.Array
    tau: jax.Array
    theta: jax.Array
    skipped: jax.Array


def _theta_tau(variant: str, scaling: str, a, b, h, p: int):
    """(θ, τ) of the self-scaled Broyden class for one update (see the module docstring)."""
    one = jnp.ones_like(a)
    r = jnp.minimum(one, 1.0 / b)
    if variant == "bfgs":
        return jnp.zeros_like(a), one
    if variant == "ssbfgs":
        return jnp.zeros_like(a), (r if scaling == "al_baali" else 1.0 / b)
    tiny = a <= 1e-12
    a_safe = jnp.where(tiny, one, a)
    c = jnp.sqrt(a_safe / (1.0 + a_safe))
    rho_m = jnp.minimum(one, h * (1.0 - c))
    theta_m = (rho_m - 1.0) / a_safe
    theta_p = 1.0 / rho_m
    theta = jnp.maximum(theta_m, jnp.minimum(theta_p, (1.0 - b) / b))
    sigma = 1.0 + a_safe * theta
    sigma_hat = jnp.abs(sigma) ** (1.0 / (1.0 - p)) if p > 1 else one
    tau = jnp.where(theta <= 0, jnp.minimum(r * sigma_hat, sigma), r * jnp.minimum(sigma_hat, 1.0 / theta))
    return jnp.where(tiny, 0.0, theta), jnp.where(tiny, r, tau)


def scale_by_bfgs(
    variant: str = "bfgs", *, scaling: str = "al_baali", initial_scale: bool = True
) -> optax.GradientTransformation:
    """Precondition the incoming updates u (the gradient) by a dense inverse-Hessian approximation: returns H u.

    Chain it with ``optax.scale(-1)`` and a line search (as :func:`bfgs` does). The pair (s, y) is formed from the
    parameters and incoming updates of consecutive calls, so the memory is updated once the line search's step has
    been taken (as in optax's ``scale_by_lbfgs``).

    Args:
        variant: "bfgs", "ssbfgs" or "ssbroyden" (formulas in the module docstring).
        scaling: SSBFGS's τ: "al_baali" (min(1, 1/b)) or "oren_luenberger" (1/b).
        initial_scale: replace H₀ = I by (yᵀs / yᵀy) I before the first update.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant: unknown {variant!r}; allowed: {', '.join(VARIANTS)}")
    if scaling not in SCALINGS:
        raise ValueError(f"scaling: unknown {scaling!r}; allowed: {', '.join(SCALINGS)}")
    if not isinstance(initial_scale, bool):
        raise ValueError(f"initial_scale: expected true or false, got {initial_scale!r}")

    def init(params):
        flat, _ = jax.flatten_util.ravel_pytree(params)
        p, dtype = flat.shape[0], param_dtype(params)
        z = jnp.zeros((p,), dtype)
        return ScaleByBFGSState(
            jnp.zeros((), jnp.int32), z, z, z, jnp.eye(p, dtype=dtype), jnp.ones((), dtype), jnp.zeros((), dtype),
            jnp.zeros((), jnp.int32),
        )

    def update(updates, state: ScaleByBFGSState, params=None):
        if params is None:
            raise ValueError("scale_by_bfgs.update needs params")
        u, unravel = jax.flatten_util.ravel_pytree(updates)
        x, _ = jax.flatten_util.ravel_pytree(params)
        dtype = state.hinv.dtype
        u, x = u.astype(dtype), x.astype(dtype)
        p = x.shape[0]
        eps = jnp.finfo(dtype).eps
        s = x - state.params
        y = u - state.updates
        sy = jnp.vdot(s, y)
        yy = jnp.vdot(y, y)
        first_update = state.count == 1
        h_mat = state.hinv
        if initial_scale:
            gamma = jnp.where(first_update & (sy > 0) & (yy > 0), sy / yy, 1.0)
            h_mat = jnp.where(first_update, gamma * h_mat, h_mat)
        # b = sᵀBs / yᵀs with Bs = -α u_prev and α = -sᵀd_prev / ‖d_prev‖² (s = -α d_prev up to the line search)
        d_prev = state.direction
        alpha = -jnp.vdot(s, d_prev) / jnp.vdot(d_prev, d_prev)
        if initial_scale:
            # H₀ was rescaled: Bs = s / γ exactly
            sbs = jnp.where(first_update, jnp.vdot(s, s) / gamma, -alpha * jnp.vdot(s, state.updates))
        else:
            sbs = -alpha * jnp.vdot(s, state.updates)
        hy = h_mat @ y
        yhy = jnp.vdot(y, hy)
        ok = (
            (state.count > 0)
            & (sy > eps * jnp.linalg.norm(s) * jnp.linalg.norm(y))
            & (yhy > 0)
            & (sbs > 0)
            & jnp.isfinite(sy)
            & jnp.isfinite(sbs)
        )
        rho = 1.0 / jnp.where(ok, sy, 1.0)
        b = jnp.where(ok, sbs * rho, 1.0)
        h = jnp.where(ok, yhy * rho, 1.0)
        a = jnp.maximum(b * h - 1.0, 0.0)
        theta, tau = _theta_tau(variant, scaling, a, b, h, p)
        phi = (1.0 - theta) / (1.0 + a * theta)
        yhy_safe = jnp.where(ok, yhy, 1.0)
        v = rho * s - hy / yhy_safe
        new_h = (h_mat - jnp.outer(hy, hy) / yhy_safe + phi * yhy_safe * jnp.outer(v, v)) / tau + rho * jnp.outer(s, s)
        new_h = 0.5 * (new_h + new_h.T)  # keep H exactly symmetric against rounding
        ok = ok & jnp.all(jnp.isfinite(new_h))
        h_mat = jnp.where(ok, new_h, state.hinv if not initial_scale else h_mat)
        direction = h_mat @ u
        # first step: H₀ = I with the direction capped at unit length (optax's L-BFGS does the same)
        cap = jnp.minimum(1.0, 1.0 / jnp.linalg.norm(u))
        direction = jnp.where(state.count == 0, cap * u, direction)
        new_state = ScaleByBFGSState(
            count=state.count + 1,
            params=x,
            updates=u,
            direction=direction,
            hinv=h_mat.astype(dtype),
            tau=jnp.where(ok, tau, state.tau).astype(dtype),
            theta=jnp.where(ok, theta, state.theta).astype(dtype),
            skipped=state.skipped + ((state.count > 0) & ~ok).astype(jnp.int32),
        )
        return unravel(direction), new_state

    return optax.GradientTransformation(init, update)


class BFGSState(NamedTuple):
    """State of :func:`bfgs` (and, by subclass, :func:`ssbfgs` and :func:`ssbroyden`).

    Attributes:
        inner: the chain state (``ScaleByBFGSState``, scaling, zoom line search).
        stalls: steps whose update was (numerically) zero.
        consecutive_stalls: current run of such steps.
        step_norm: global norm of the last update.
        linesearch_steps: line-search iterations of the last step.
        decrease_error: the zoom line search's sufficient-decrease error of the last step (> 0: it failed).
        tau: τ of the last inverse-Hessian update.
        theta: θ of the last inverse-Hessian update.
        skipped: inverse-Hessian updates skipped (no positive curvature).
        restarts: resets of H to the identity after a failed line search.
    """

    inner: Any
    stalls: jax.Array
    consecutive_stalls: jax.Array
    step_norm: jax.Array
    linesearch_steps: jax.Array
    decrease_error: jax.Array
    tau: jax.Array
    theta: jax.Array
    skipped: jax.Array
    restarts: jax.Array

    _log_name = "bfgs"
    _log_fields = (
        "stalls", "step_norm", "linesearch_steps", "decrease_error", "tau", "theta", "skipped", "restarts",
    )
    high_accuracy = True  # a plain class attribute (NamedTuple forbids ClassVar annotations)

    def next_value_and_grad(self) -> tuple[jax.Array, Any, jax.Array]:
        """Value and gradient the line search computed at the returned parameters (see
        :func:`sciml_jax.optim._lbfgs.linesearch_value_and_grad`)."""
        return linesearch_value_and_grad(self.inner)


class SSBFGSState(BFGSState):
    """State of :func:`ssbfgs` (fields as :class:`BFGSState`; logged under ``ssbfgs.``)."""

    __slots__ = ()
    _log_name = "ssbfgs"


class SSBroydenState(BFGSState):
    """State of :func:`ssbroyden` (fields as :class:`BFGSState`; logged under ``ssbroyden.``)."""

    __slots__ = ()
    _log_name = "ssbroyden"


_STATES = {"bfgs": BFGSState, "ssbfgs": SSBFGSState, "ssbroyden": SSBroydenState}


def _quasi_newton(variant, scaling, initial_scale, max_linesearch_steps, max_learning_rate, stall_rtol, restart):
    check_linesearch_options(max_linesearch_steps, max_learning_rate, stall_rtol)
    if not isinstance(restart, bool):
        raise ValueError(f"restart: expected true or false, got {restart!r}")
    inner = optax.chain(
        scale_by_bfgs(variant, scaling=scaling, initial_scale=initial_scale),
        optax.scale(-1.0),
        zoom_linesearch(max_linesearch_steps, max_learning_rate),
    )
    cls = _STATES[variant]

    def init(params):
        dtype = param_dtype(params)
        zi, zf = jnp.zeros((), jnp.int32), jnp.zeros((), dtype)
        return cls(final_types(inner.init(params)), zi, zi, zf, zi, zf, jnp.ones((), dtype), zf, zi, zi)

    def update(updates, state, params=None, *, value=None, grad=None, value_fn=None, **extra):
        dtype = state.step_norm.dtype
        new_updates, inner_state, norm, stalled, ls_steps, dec_err = linesearch_step(
            inner, state.inner, updates, params, value, grad, value_fn, stall_rtol, dtype
        )
        qn = inner_state[0]
        # failed = no decrease at all (a step that met sufficient decrease but not the curvature condition is kept)
        new_value = optax.tree_utils.tree_get(inner_state, "value")
        failed = (dec_err > 0) if value is None else ~(new_value < value)
        if value is not None and grad is not None:
            # optax's zoom search, when it fails without a point of sufficient decrease, returns its last trial
            # step even if the loss rose (measured: heat benchmark, loss 1.3e-14 -> 4.9e-2 in one step). Such a
            # step is not taken; the value and gradient it stored for reuse revert to the current ones.
            rejected = ~(new_value <= value)
            new_updates = jax.tree.map(lambda d: jnp.where(rejected, jnp.zeros_like(d), d), new_updates)
            zoom = inner_state[-1]
            zoom = zoom._replace(
                value=jnp.where(rejected, jnp.asarray(value, zoom.value.dtype), zoom.value),
                grad=jax.tree.map(lambda g0, g1: jnp.where(rejected, g0.astype(g1.dtype), g1), grad, zoom.grad),
            )
            inner_state = (*inner_state[:-1], zoom)
            norm = jnp.where(rejected, jnp.zeros_like(norm), norm)
            stalled = stalled | rejected  # a zero update, as a stall
        reset = failed & (qn.count > 1) if restart else jnp.zeros((), bool)
        if restart:
            # count = 1: the next update treats H = I as H₀ and rescales it by yᵀs / yᵀy (see scale_by_bfgs)
            eye = jnp.eye(qn.hinv.shape[0], dtype=qn.hinv.dtype)
            inner_state = (
                qn._replace(hinv=jnp.where(reset, eye, qn.hinv), count=jnp.where(reset, 1, qn.count)),
                *inner_state[1:],
            )
        return new_updates, cls(
            inner_state,
            state.stalls + stalled.astype(jnp.int32),
            jnp.where(stalled, state.consecutive_stalls + 1, 0).astype(jnp.int32),
            norm,
            ls_steps,
            dec_err,
            qn.tau.astype(dtype),
            qn.theta.astype(dtype),
            qn.skipped,
            state.restarts + reset.astype(jnp.int32),
        )

    return optax.GradientTransformationExtraArgs(init, update)


_ARGS_DOC = """
    Args:
        max_linesearch_steps: maximum zoom line-search iterations per step.
        max_learning_rate: optional cap on the line-search step.
        stall_rtol: relative update size below which a step counts as a stall (default: exactly zero).
        initial_scale: H₀ = (yᵀs / yᵀy) I before the first update (Nocedal & Wright eq. 6.20).
        restart: reset H to the identity (rescaled by the next pair) after a failed line search.

    Must receive ``value``, ``grad`` and ``value_fn`` in ``update`` (``sciml_jax.train.fit`` passes them); other
    extra arguments are accepted and ignored. Memory: a dense P × P matrix.
"""


@memoized
def bfgs(
    max_linesearch_steps: int = 30,
    max_learning_rate: float | None = None,
    stall_rtol: float = 0.0,
    initial_scale: bool = True,
    restart: bool = True,
) -> optax.GradientTransformationExtraArgs:
    """Dense BFGS with optax's zoom (strong Wolfe) line search: ``chain(scale_by_bfgs("bfgs"), scale(-1),
    zoom line search)`` plus stall and line-search diagnostics in the state (as :func:`lbfgs`)."""
    return _quasi_newton(
        "bfgs", "al_baali", initial_scale, max_linesearch_steps, max_learning_rate, stall_rtol, restart
    )


@memoized
def ssbfgs(
    max_linesearch_steps: int = 30,
    max_learning_rate: float | None = None,
    stall_rtol: float = 0.0,
    initial_scale: bool = True,
    scaling: str = "al_baali",
    restart: bool = True,
) -> optax.GradientTransformationExtraArgs:
    """Self-scaled BFGS (Urbán, Stefanou & Pons 2025; Kiyani et al. 2025): BFGS applied to H/τ with
    τ = min(1, 1/b), b = sᵀBs / yᵀs (Al-Baali), or τ = 1/b with ``scaling="oren_luenberger"``."""
    return _quasi_newton(
        "ssbfgs", scaling, initial_scale, max_linesearch_steps, max_learning_rate, stall_rtol, restart
    )


@memoized
def ssbroyden(
    max_linesearch_steps: int = 30,
    max_learning_rate: float | None = None,
    stall_rtol: float = 0.0,
    initial_scale: bool = True,
    restart: bool = True,
) -> optax.GradientTransformationExtraArgs:
    """Self-scaled Broyden (Al-Baali 1998; Urbán, Stefanou & Pons 2025, "SSBroyden2"; Kiyani et al. 2025): the
    Broyden-class member θ_k and scaling τ_k chosen per step from b, h and a (module docstring)."""
    return _quasi_newton(
        "ssbroyden", "al_baali", initial_scale, max_linesearch_steps, max_learning_rate, stall_rtol, restart
    )


for _f in (bfgs, ssbfgs, ssbroyden):
    _f.__doc__ += _ARGS_DOC
