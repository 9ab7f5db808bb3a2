"""fit(): the one training loop: compiled chunks of steps (cached by structure), history, checkpoints, guards."""

from __future__ import annotations

import dataclasses
import os
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..optim._info import events_from_info, logged_info
from . import _compile, _faults, _sharding
from ._checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from ._faults import STATUS_DIVERGED, STATUS_INTERRUPTED
from ._history import History

PyTree = Any
Batch = Mapping[str, Any]

STATUS_COMPLETED = "completed"
STATUS_NONFINITE = "nonfinite"
STATUS_STOPPED = "stopped"


class _Carry(NamedTuple):
    params: PyTree
    opt_state: PyTree
    good_params: PyTree  # last parameters whose loss was finite
    failed: jax.Array  # bool: a non-finite loss was met; later steps are skipped
    fail_step: jax.Array  # int: the step whose loss was non-finite (-1 if none)


@dataclasses.dataclass
class FitResult:
    """Outcome of :func:`fit`.

    Attributes:
        params: final parameters (on a non-finite loss: the last parameters whose loss was finite).
        opt_state: final optimizer state.
        history: per-step and per-evaluation records (:class:`History`).
        status: ``"completed"``, ``"nonfinite"`` (stopped on a non-finite loss or gradient), ``"diverged"`` (the
            loss stayed above ``divergence_factor`` × its best for a whole chunk, or ended there), ``"stopped"`` (a
            callback asked to stop) or ``"interrupted"`` (Ctrl-C / :class:`sciml_jax.train.Interrupted`; the
            checkpoint, if any, holds the last completed chunk).
        message: human-readable explanation of ``status``.
        step: number of steps done (the global step count, including steps of resumed runs).
        wall_time_s: time spent running steps in this call (compilation excluded).
        compile_time_s: time spent compiling the step chunk in this call.
    """

    params: PyTree
    opt_state: PyTree
    history: History
    status: str
    message: str
    step: int
    wall_time_s: float
    compile_time_s: float
    batch: Batch | None = None


def _global_norm(tree: PyTree) -> jax.Array:
    return optax.tree.norm(tree)


def _tree_where(cond: jax.Array, a: PyTree, b: PyTree) -> PyTree:
    return jax.tree.map(lambda x, y: jnp.where(cond, x, y), a, b)


def _tree_all_finite(tree: PyTree) -> jax.Array:
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree) if eqx.is_inexact_array(x)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)


def _make_objective(residual: Callable) -> tuple[Callable, Callable, tuple[str, ...]]:
    """Return (loss_and_terms(params, batch) -> (loss, {term: mse}), residual_vector(params, batch), term names)."""
    if hasattr(residual, "weighted_terms"):
        names = tuple(residual.term_names)

        def loss_and_terms(params, batch):
            r, raw = residual.weighted_terms(params, batch)
            return 0.5 * jnp.sum(r**2), {k: jnp.mean(v**2) for k, v in raw.items()}

        return loss_and_terms, residual, names

    def loss_only(params, batch):
        r = residual(params, batch)
        return 0.5 * jnp.sum(r**2), {}

    return loss_only, residual, ()


CACHED_KEY = "fit.reused_value_grad"  # per-step flag in history.info: the step reused the line search's evaluation


def _value_grad_provider(opt_state: PyTree) -> bool:
    """Whether the optimizer state keeps the loss and gradient at the parameters it returns (line-search methods:
    L-BFGS, BFGS family, a hybrid whose second optimizer is one). Only a state at the top level counts: a transform
    chained after it would move the parameters away from the point the line search evaluated."""
    return callable(getattr(opt_state, "next_value_and_grad", None)) and opt_state.next_value_and_grad() is not None


def make_step(
    residual: Callable, optimizer: optax.GradientTransformationExtraArgs, *, sharding: Any = None,
    reuse: bool = True,
) -> Callable:
    """One optimisation step ``(params, opt_state, batch[, allow_cache]) -> (params, opt_state, loss, terms,
    grad_norm, grads, info)``.

    The optimizer's ``update`` receives the keyword extras of the sciml_jax contract: ``value`` (loss at params),
    ``grad``, ``value_fn`` (θ ↦ L(θ) at this batch), ``residual_fn`` (θ ↦ r(θ) at this batch) and, for a
    structured residual (:class:`sciml_jax.pinn.Residual`), ``jacobian_fn`` (θ ↦ J(θ): (N, P) over the flattened
    parameters, assembled from per-point gradients: O(N·P) work instead of the O(N·P²) of ``jax.jacfwd`` on the
    whole residual vector). ``value_fn`` accepts and ignores ``residual_fn``/``jacobian_fn`` keywords so that
    optax's line searches, which pass every extra argument on to ``value_fn`` and reject the ones it does not
    take, work unchanged inside the same chain.

    With ``sharding`` (a :class:`sciml_jax.train.DataParallel`), the rows of J are constrained to stay split over
    the devices like the points, so JᵀJ is a sum of per-device blocks (one all-reduce of P × P) instead of an
    all-gather of J.

    Reuse (``reuse=True``, the batch fixed between steps): when the optimizer state keeps the loss and gradient its
    line search computed at the parameters it returned (``state.next_value_and_grad()``; L-BFGS, BFGS, SSBFGS,
    SSBroyden, a hybrid in its second phase), the step starts from them instead of a new value-and-gradient
    evaluation, and evaluates only the residual forward for the per-term log. ``allow_cache=False`` forces a fresh
    evaluation (the first step after the batch changed). ``info[CACHED_KEY]`` records whether a step reused them.
    """
    from .. import analysis  # noqa: PLC0415 - train sits above analysis; imported lazily to keep import light

    loss_and_terms, residual_vector, _ = _make_objective(residual)
    optimizer = _as_extra_args(optimizer)
    structured = hasattr(residual, "weighted_terms") and hasattr(residual, "problem")

    def fresh_eval(params, batch):
        (loss, terms), grads = jax.value_and_grad(loss_and_terms, has_aux=True)(params, batch)
        return loss, terms, grads

    def step(params, opt_state, batch, allow_cache=True):
        cached = reuse and _value_grad_provider(opt_state)
        if cached:
            v_c, g_c, valid = opt_state.next_value_and_grad()
            valid = valid & jnp.asarray(allow_cache)
            loss_shape, term_shapes = jax.eval_shape(loss_and_terms, params, batch)  # a forward trace, no compile

            def typed(loss, terms, grads):  # both branches of the cond must agree on dtypes
                return (jnp.asarray(loss).astype(loss_shape.dtype),
                        {k: jnp.asarray(v).astype(term_shapes[k].dtype) for k, v in terms.items()},
                        jax.tree.map(lambda g, p: jnp.asarray(g).astype(p.dtype), grads, params))

            loss, terms, grads = jax.lax.cond(
                valid,
                lambda _: typed(v_c, _term_mse(params, batch), g_c),
                lambda _: typed(*fresh_eval(params, batch)),
                None,
            )
        else:
            loss, terms, grads = fresh_eval(params, batch)

        def value_fn(p, residual_fn=None, jacobian_fn=None):  # noqa: ARG001 - see docstring
            return loss_and_terms(p, batch)[0]

        def residual_fn(p):
            return residual_vector(p, batch)

        extras = {"residual_fn": residual_fn}
        if structured:
            if sharding is None:
                extras["jacobian_fn"] = lambda p: analysis.jacobian(residual, p, batch)
            else:
                extras["jacobian_fn"] = lambda p: jax.lax.with_sharding_constraint(
                    analysis.jacobian(residual, p, batch), sharding.points
                )
        updates, new_state = optimizer.update(
            grads, opt_state, params, value=loss, grad=grads, value_fn=value_fn, **extras
        )
        new_params = optax.apply_updates(params, updates)
        info = logged_info(new_state)
        if cached:
            info[CACHED_KEY] = valid.astype(jnp.int32)
        return new_params, new_state, loss, terms, _global_norm(grads), grads, info

    def _term_mse(params, batch):
        """The per-term mean squares by a forward evaluation (no gradient): the log of a step that reused."""
        if hasattr(residual, "weighted_terms"):
            _, raw = residual.weighted_terms(params, batch)
            return {k: jnp.mean(v**2) for k, v in raw.items()}
        return {}

    return step


def initial_carry(params: PyTree, optimizer: Any, opt_state: PyTree | None = None) -> _Carry:
    """The state ``fit`` carries (and checkpoints) at the start of a run: the structure a checkpoint loads into."""
    optimizer = _as_extra_args(optimizer)
    opt_state = optimizer.init(params) if opt_state is None else opt_state
    return _Carry(params, opt_state, params, jnp.asarray(False), jnp.asarray(-1, dtype=jnp.int32))


class _Outputs(NamedTuple):
    """Per-step records of one chunk, preallocated (NaN) and filled step by step."""

    loss: jax.Array
    terms: dict
    grad_norm: jax.Array
    info: dict


def _minibatch(batch: Batch, sizes: Mapping[str, int], key: jax.Array, step: jax.Array) -> dict:
    """The mini-batch of training step ``step``: for each entry in ``sizes``, ``sizes[k]`` rows of ``batch[k]``.

    Entry k (n_k rows, b_k per step) is read in epochs of e_k = n_k // b_k steps: epoch j = step // e_k is a
    permutation of the rows from ``fold_in(fold_in(key, k's position), j)`` and step s takes its slice
    [(s mod e_k) b_k, (s mod e_k + 1) b_k). So every row is seen once per epoch (the n_k mod b_k left over rows of
    an epoch's permutation wait for a later one), shapes are fixed, and the rows depend only on (key, step): a
    resumed run draws exactly the same mini-batches.
    """
    out = dict(batch)
    for i, (name, b) in enumerate(sorted(sizes.items())):
        entry = batch[name]
        arrays = tuple(entry) if isinstance(entry, (tuple, list)) else (entry,)
        n = arrays[0].shape[0]
        per_epoch = n // b
        epoch, pos = step // per_epoch, step % per_epoch
        perm = jax.random.permutation(jax.random.fold_in(jax.random.fold_in(key, i), epoch), n)
        idx = jax.lax.dynamic_slice_in_dim(perm, pos * b, b)
        taken = tuple(jnp.take(a, idx, axis=0) for a in arrays)
        out[name] = type(entry)(taken) if isinstance(entry, (tuple, list)) else taken[0]
    return out


def _chunk_program(static: Any, chunk: int, sharding: Any, minibatch: tuple | None) -> Callable:
    """``run(dyn, carry, batch, start, n, key, fresh) -> (n_run, carry, outputs)``: up to ``n <= chunk`` steps
    (``fresh``: the batch changed since the optimizer last saw it, so its stored value and gradient are stale).

    A ``lax.while_loop`` with a dynamic trip count: one compiled program serves full and partial chunks with no
    per-step masking, and it stops at the first non-finite loss or gradient (that step's update is dropped).
    """
    sizes = dict(minibatch) if minibatch else None

    def run(dyn, carry: _Carry, batch: Batch, start: jax.Array, n: jax.Array, key: jax.Array, fresh: jax.Array):
        residual, optimizer = eqx.combine(dyn, static)
        step = make_step(residual, optimizer, sharding=sharding, reuse=sizes is None)  # mini-batches change every step
        loss_and_terms, _, _ = _make_objective(residual)
        rng = jax.random.wrap_key_data(key)

        def batch_at(gstep):
            return batch if sizes is None else _minibatch(batch, sizes, rng, gstep)

        # Buffer shapes: the objective's outputs (a forward trace) and the optimizer state's logged scalars.
        loss_shape, term_shapes = jax.eval_shape(loss_and_terms, carry.params, batch_at(start))
        dtype = loss_shape.dtype
        info0 = logged_info(carry.opt_state)
        if sizes is None and _value_grad_provider(carry.opt_state):
            info0[CACHED_KEY] = jnp.zeros((), jnp.int32)
        outputs = _Outputs(
            jnp.full((chunk,), jnp.nan, dtype),
            {k: jnp.full((chunk,), jnp.nan, v.dtype) for k, v in term_shapes.items()},
            jnp.full((chunk,), jnp.nan, dtype),
            {k: jnp.zeros((chunk,) + v.shape, v.dtype) for k, v in info0.items()},
        )

        def cond(state):
            i, c, _ = state
            return (i < n) & jnp.logical_not(c.failed)

        def body(state):
            i, c, out = state
            gstep = start + i
            allow = jnp.logical_not(fresh & (i == 0))  # the first step after a batch change evaluates afresh
            new_params, new_state, loss, terms, gnorm, _, info = step(c.params, c.opt_state, batch_at(gstep), allow)
            finite = jnp.isfinite(loss) & jnp.isfinite(gnorm)
            c = _Carry(
                _tree_where(finite, new_params, c.params),
                _tree_where(finite, new_state, c.opt_state),
                _tree_where(finite, c.params, c.good_params),
                jnp.logical_not(finite),
                jnp.where(finite, c.fail_step, gstep),
            )
            out = _Outputs(
                out.loss.at[i].set(loss.astype(dtype)),
                {k: out.terms[k].at[i].set(v.astype(out.terms[k].dtype)) for k, v in terms.items()},
                out.grad_norm.at[i].set(gnorm.astype(dtype)),
                {k: out.info[k].at[i].set(jnp.asarray(info[k]).astype(out.info[k].dtype)) for k in out.info},
            )
            return i + 1, c, out

        return jax.lax.while_loop(cond, body, (jnp.asarray(0, jnp.int32), carry, outputs))

    return run


_WRAPPED: dict = {}


def _as_extra_args(optimizer: Any) -> optax.GradientTransformationExtraArgs:
    """The optimizer with optax's extra-args interface; plain transforms are wrapped once (memoised, so a reused
    optimizer object keeps one identity and its compiled steps are reused)."""
    if isinstance(optimizer, optax.GradientTransformationExtraArgs):
        return optimizer
    if isinstance(optimizer, optax.GradientTransformation):
        key = (id(optimizer.init), id(optimizer.update))
        hit = _WRAPPED.get(key)
        if hit is None or hit[0] is not optimizer:
            if len(_WRAPPED) > 256:
                _WRAPPED.clear()
            hit = _WRAPPED[key] = (optimizer, optax.with_extra_args_support(optimizer))
        return hit[1]
    raise ValueError(
        f"optimizer: expected an optax GradientTransformation or GradientTransformationExtraArgs, "
        f"got {type(optimizer).__name__}"
    )


# ----------------------------------------------------------------------------------------------- feedback


def _in_notebook() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None or "ipykernel" not in sys.modules:
        return False
    try:
        ip = shell.get_ipython()
    except Exception:  # noqa: BLE001 - any failure means: not a notebook kernel
        return False
    return ip is not None and "IPKernelApp" in getattr(ip, "config", {})


def _progress_mode(progress: bool | str | None) -> str:
    """``"bar"`` (tqdm.auto: a terminal bar or a notebook widget), ``"lines"`` (plain periodic lines on stderr,
    for logs, pipes and CI) or ``"off"``."""
    if progress is False or progress == "off":
        return "off"
    if progress in ("bar", "lines"):
        return progress
    if progress not in (None, True):
        raise ValueError(f"progress: expected None, True, False, 'bar', 'lines' or 'off', got {progress!r}")
    return "bar" if (sys.stderr.isatty() or _in_notebook()) else "lines"


class _Progress:
    """Progress of one fit: a tqdm bar, or a plain line every ``every_s`` seconds and at the end."""

    def __init__(self, mode: str, total: int, initial: int, label: str, every_s: float = 10.0):
        self.mode, self.total, self.label, self.every_s = mode, total, label, every_s
        self.bar = None
        self.last = time.perf_counter()
        self.step = initial
        if mode == "bar":
            from tqdm.auto import tqdm  # noqa: PLC0415 - loaded only when a bar is shown

            self.bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, leave=True, desc=label)

    def message(self, text: str) -> None:
        if self.mode == "off":
            return
        if self.bar is not None:
            self.bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr, flush=True)

    def update(self, n: int, post: Mapping[str, str], wall: float, force: bool = False) -> None:
        self.step += n
        if self.bar is not None:
            self.bar.update(n)
            self.bar.set_postfix(post)
        elif self.mode == "lines" and (force or time.perf_counter() - self.last >= self.every_s):
            self.last = time.perf_counter()
            rate = f", {self.step / wall:.1f} steps/s" if wall > 0 else ""
            text = " ".join(f"{k} {v}" for k, v in post.items())
            print(f"{self.label}: step {self.step}/{self.total} ({wall:.1f} s{rate}) {text}", file=sys.stderr,
                  flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _warn_low_precision(opt_state: PyTree, params: PyTree) -> None:
    """One warning when an optimizer built for high accuracy runs in float32."""
    if _param_float_dtype(params) != jnp.float32:
        return
    found = []

    def visit(x):
        if getattr(type(x), "high_accuracy", False) and type(x).__name__ not in found:
            found.append(type(x).__name__)
        if isinstance(x, (tuple, list)):
            for y in x:
                visit(y)
        elif isinstance(x, dict):
            for y in x.values():
                visit(y)

    visit(opt_state)
    if found:
        warnings.warn(
            f"fit: {', '.join(found)} is a high-accuracy optimizer running in float32: expect a floor near 1e-4 "
            "relative error; enable float64 (jax.config.update('jax_enable_x64', True), config dtype: float64)",
            stacklevel=3,
        )


def _param_float_dtype(params: PyTree) -> Any:
    leaves = [x for x in jax.tree.leaves(params) if eqx.is_inexact_array(x)]
    return jnp.result_type(*[x.dtype for x in leaves]) if leaves else jnp.result_type(float)


# ----------------------------------------------------------------------------------------------- fit


_CHECKED: dict = {}  # keys of (residual structure, shapes) whose shape check passed (bounded, oldest dropped)


def _check_once(residual: Any, params: Any, batch: Any) -> None:
    """``residual.check`` (it traces the residual abstractly, ~0.1-1 s) once per residual structure and shapes.

    The check depends only on structure, shapes and dtypes (coefficient and weight values are array leaves), so a
    second ``fit`` with the same residual, parameters and batch shapes skips it, as it skips compilation.
    """
    dyn, static = _compile.split(residual)
    skey = _compile.static_key(static)
    key = None if skey is None else (skey, _compile.avals_key(dyn, params, batch))
    if key is not None and key in _CHECKED:
        return
    residual.check(params, batch)
    if key is not None:
        if len(_CHECKED) >= 256:
            _CHECKED.pop(next(iter(_CHECKED)))
        _CHECKED[key] = True


def fit(
    residual: Callable,
    params: PyTree,
    batch: Batch,
    optimizer: optax.GradientTransformation,
    steps: int,
    *,
    metrics: Mapping[str, Callable[[PyTree], jax.Array]] | None = None,
    eval_every: int = 100,
    chunk: int | None = None,
    progress: bool | str | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    resume: bool = False,
    callbacks: Sequence[Callable[..., Any]] = (),
    opt_state: PyTree | None = None,
    sharding: Any = None,
    minibatch: Mapping[str, int] | None = None,
    key: Any = 0,
    label: str = "fit",
    divergence_factor: float | None = 1e4,
    checkpoint_meta: Mapping[str, Any] | None = None,
) -> FitResult:
    """Minimise L(θ) = ½‖r(θ)‖² with an optax optimizer.

    Steps run inside a jitted ``lax.while_loop`` over chunks of at most ``chunk`` steps (default ``eval_every``);
    the chunk is compiled ahead of time and kept in a cache keyed on the structure of the residual, optimizer and
    metrics and on the shapes, dtypes and sharding of everything else, so a second ``fit`` with the same structure
    and shapes compiles nothing, whatever the coefficient values, loss weights, points or initial parameters (they
    are arguments of the program, never constants). The last partial chunk runs the same program. Every step
    records the loss, the per-term mean squares and the gradient norm; every chunk evaluates ``metrics`` (e.g. the
    relative L2 error) and the wall time.

    A non-finite loss or gradient stops training: the loop ends on device, the returned parameters are the last
    ones whose loss was finite, and ``status == "nonfinite"`` with a message naming the step. A finite blow-up
    stops it too: when the smallest loss of a whole chunk exceeds ``divergence_factor`` × the best loss of the
    earlier steps, or when the run's final loss does, ``status == "diverged"`` (the parameters are those at the end
    of that chunk, or the final ones).

    With ``checkpoint_dir`` set, ``KeyboardInterrupt`` (Ctrl-C) or :class:`sciml_jax.train.Interrupted` (raised by a
    signal handler) during the steps rolls back to the last completed chunk, writes the checkpoint and returns
    ``status == "interrupted"``; a second interrupt while that checkpoint is written propagates (the previous
    checkpoint stays intact: checkpoints are written atomically). Without ``checkpoint_dir`` the interrupt
    propagates as usual.

    Args:
        residual: ``residual(params, batch) -> r: (N,)``, typically a :class:`sciml_jax.pinn.Residual` (then the
            per-term mean squares are logged too). Pytrees (equinox modules) are compiled by structure; a plain
            function by identity.
        params: initial parameters (a pytree of arrays).
        batch: dict of fixed-shape point arrays, passed to ``residual``; a callback may replace it by one of the
            same shapes without recompiling.
        optimizer: any ``optax.GradientTransformation``; its ``update`` gets the extras ``value``, ``grad``,
            ``value_fn``, ``residual_fn`` and (for a structured residual) ``jacobian_fn``.
        steps: total number of steps (counting steps done before, when resuming).
        metrics: name -> ``params -> scalar`` evaluated every chunk (compiled once per structure, like the step).
        eval_every: steps between metric evaluations; also the default chunk length.
        chunk: steps per compiled call (default ``eval_every``).
        progress: ``None`` (default: a tqdm bar on a terminal or in a notebook, else a plain line every 10 s on
            stderr), ``True`` (the same, even for a short run), ``"bar"``, ``"lines"`` or ``False``/``"off"``. The
            compile step prints one line when it starts and one when it ends (with its time) unless off.
        checkpoint_dir: directory for checkpoints (see :func:`sciml_jax.train.save_checkpoint`: array files and a
            ``checkpoint.json`` record committed atomically, verified on resume).
        checkpoint_every: steps between checkpoints (rounded up to a multiple of ``chunk``); the final state is
            always written when ``checkpoint_dir`` is set.
        resume: continue from the checkpoint in ``checkpoint_dir``; the continuation is bit-identical to an
            uninterrupted run with the same chunk length. A batch installed by a callback (adaptive resampling) is
            checkpointed too and restored in place of ``batch``. A torn or damaged checkpoint, or one whose
            structure, shapes or dtypes differ from this run's state, is refused
            (:class:`sciml_jax.train.CheckpointError`). With ``steps`` at or below the checkpoint's step nothing
            runs and the message says so.
        callbacks: called after each chunk as ``cb(step=..., params=..., opt_state=..., batch=..., history=...)``;
            a callback may return ``None``, ``"stop"``, or a dict with a new ``"batch"`` (same shapes).
        opt_state: initial optimizer state (default ``optimizer.init(params)``).
        sharding: data parallelism (``None``: off), see :func:`sciml_jax.train.data_parallel`.
        minibatch: stochastic training: batch entry -> rows per step (e.g. ``{"data": 256, "interior": 512}``).
            Each step uses a mini-batch of those entries drawn inside the compiled loop, one permutation per epoch
            from ``key`` (see :func:`_minibatch`); other entries stay whole. The residual's term weights use the
            mini-batch sizes, so the loss is an unbiased estimate of the full one. The logged per-step loss is the
            mini-batch loss.
        key: PRNG key (or int seed) of the mini-batches.
        label: the name shown in progress lines and the compile message.
        divergence_factor: the finite blow-up test above (``None``: off). The default 1e4 is far above what
            converging runs do (shipped configs quickstart, poisson1d_hybrid, poisson2d_lm: a chunk's smallest loss
            never exceeded the best before it, single Adam steps rose to at most ~700 x the best, final losses
            ended at most ~30 x above it) and below the 1e5-1e150 climbs of an unstable learning rate.
        checkpoint_meta: JSON-serialisable metadata stored in every checkpoint record (e.g. the run's config) and
            returned by :func:`sciml_jax.train.read_checkpoint_meta`.

    Returns:
        A :class:`FitResult`.

    Raises:
        ValueError: non-positive ``steps``/``eval_every``/``chunk``/``checkpoint_every``, ``resume`` without
            ``checkpoint_dir``, a batch that ``sharding`` cannot split evenly, a bad ``minibatch``, or shapes the
            residual cannot use (model outputs vs fields, broadcasts; see ``pinn.Residual.check``).
        CheckpointError: ``resume`` from a checkpoint that is damaged, does not match, or ended non-finite.
    """
    for name, value in (("steps", steps), ("eval_every", eval_every)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0 or (
            name != "steps" and value == 0
        ):
            raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    chunk = eval_every if chunk is None else chunk
    if isinstance(chunk, bool) or not isinstance(chunk, (int, np.integer)) or chunk <= 0:
        raise ValueError(f"chunk: expected a positive integer, got {chunk!r}")
    if checkpoint_every is not None and (
        isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, (int, np.integer)) or checkpoint_every <= 0
    ):
        raise ValueError(f"checkpoint_every: expected a positive integer or None, got {checkpoint_every!r}")
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs checkpoint_dir (the directory holding the checkpoint)")
    if divergence_factor is not None and not (
        isinstance(divergence_factor, (int, float)) and divergence_factor > 1 and np.isfinite(divergence_factor)
    ):
        raise ValueError(f"divergence_factor: expected a finite number > 1 or None, got {divergence_factor!r}")
    ckpt_extra = dict(checkpoint_meta or {})
    mb = _check_minibatch(minibatch, batch)
    rng_data = jax.random.key_data(sampling_key(key))

    optimizer = _as_extra_args(optimizer)
    metrics = dict(metrics or {})
    _, _, term_names = _make_objective(residual)
    if hasattr(residual, "check"):
        _check_once(residual, params, batch if mb is None else _minibatch_shapes(batch, mb))
    if sharding is not None:
        sharding = _sharding.as_data_parallel(sharding)

    if opt_state is None:
        opt_state = optimizer.init(params)
    _warn_low_precision(opt_state, params)
    carry = initial_carry(params, optimizer, opt_state)
    history = History(term_names=term_names, metric_names=tuple(metrics))
    start_step = 0
    meta: dict = {}
    batch_changed = False
    compile_before = 0.0  # compile time of earlier calls of this run (resume), kept in the checkpoint
    if resume:
        carry, meta, saved_batch = load_checkpoint(checkpoint_dir, carry, batch_like=batch)
        start_step = int(meta["step"])
        history = History.from_dict(meta["history"])
        compile_before = float(meta.get("compile_time_s", 0.0))
        if bool(carry.failed):
            raise CheckpointError(
                f"checkpoint in {os.fspath(checkpoint_dir)!r} ended on a non-finite loss at step "
                f"{int(carry.fail_step)}; it cannot be continued (start a new run with other settings)"
            )
        if saved_batch is not None:  # the batch was replaced by a callback (resampling): continue on that one
            batch, batch_changed = saved_batch, True

    dyn, static = _compile.split((residual, optimizer))
    dyn = _compile.as_arrays(dyn)
    batch = _compile.as_arrays(batch)
    if sharding is not None:
        batch = _sharding.shard_batch(batch, sharding)
        carry = _sharding.replicate(carry, sharding)
        dyn = _sharding.replicate(dyn, sharding)
    scalar = jnp.asarray(0, jnp.int32)
    skey = _compile.static_key(static)
    key_chunk = None if skey is None else (
        "chunk", skey, int(chunk), sharding, mb, _compile.avals_key(dyn, carry, batch, rng_data)
    )
    mode = _progress_mode(progress)
    feedback = _Progress(mode if steps > start_step else "off", steps, start_step, label)

    def build():
        feedback.message(f"{label}: compiling the training step ...")
        program = _chunk_program(static, int(chunk), sharding, mb)
        jit_kwargs = {}
        if sharding is not None:
            rep = sharding.replicated
            jit_kwargs = {
                "in_shardings": (jax.tree.map(lambda _: rep, dyn), jax.tree.map(lambda _: rep, carry),
                                 _sharding.batch_shardings(batch, sharding), rep, rep, rep, rep),
                "out_shardings": rep,
            }
        flag = jnp.asarray(False)
        return jax.jit(program, **jit_kwargs).lower(dyn, carry, batch, scalar, scalar, rng_data, flag).compile()

    compiled, compile_time, hit = (
        _compile.CACHE.get(key_chunk, build) if steps > start_step else (None, 0.0, True)
    )
    if steps > start_step:
        feedback.message(
            f"{label}: reusing the compiled training step" if hit else f"{label}: compiled in {compile_time:.1f} s"
        )
    metric_fns, metric_compile = _compile_metrics(metrics, carry.params)
    compile_time += metric_compile

    step = start_step
    status, message = STATUS_COMPLETED, f"completed {steps} steps"
    if resume and step >= steps:
        status = meta.get("status", STATUS_COMPLETED) if meta.get("status") != "running" else STATUS_COMPLETED
        message = (
            f"no steps run: the checkpoint is already at step {step} (steps = {steps}); "
            f"its status was {meta.get('status', 'unknown')!r}"
        )
    wall = 0.0
    elapsed_before = history.last_wall_time()
    next_ckpt = None if checkpoint_every is None else (step // checkpoint_every + 1) * checkpoint_every
    if step == 0 and metric_fns and not history.eval_steps:
        history.add_eval(0, elapsed_before, {k: float(f(carry.params)) for k, f in metric_fns.items()})

    mark = _faults.Mark.take(carry, step, batch, batch_changed, history)
    best, best_step = _faults.best_loss(history)
    # The optimizer's stored value and gradient (line-search methods) belong to the batch it last saw: a new fit
    # call may bring another batch (fit_stages) and must evaluate afresh; a resumed run continues on the same one.
    fresh = not resume
    try:
        while step < steps:
            n = min(chunk, steps - step)
            t1 = time.perf_counter()
            n_run, carry, out = compiled(
                dyn, carry, batch, jnp.asarray(step, jnp.int32), jnp.asarray(n, jnp.int32), rng_data,
                jnp.asarray(fresh),
            )
            fresh = False
            jax.block_until_ready(carry)
            failed = bool(carry.failed)
            n_done = int(carry.fail_step) - step if failed else int(n_run)  # the failing step made no update
            wall += time.perf_counter() - t1
            losses_np = np.asarray(out.loss)[:n_done]
            terms_np = {k: np.asarray(v)[:n_done] for k, v in out.terms.items()}
            infos_np = {k: np.asarray(v)[:n_done] for k, v in out.info.items()}
            previous_info = history.last_info()
            history.add_steps(step, losses_np, terms_np, np.asarray(out.grad_norm)[:n_done], infos_np)
            for event in events_from_info(np.arange(step, step + n_done), infos_np, previous_info or None):
                history.add_event(**event)
            step += n_done
            eval_params = carry.good_params if failed else carry.params
            values = {k: float(f(eval_params)) for k, f in metric_fns.items()}
            history.add_eval(step, elapsed_before + wall, values)
            post = {"loss": f"{losses_np[-1]:.3e}" if n_done else "nan"}
            post.update({k: f"{v:.2e}" for k, v in values.items()})
            feedback.update(n_done, post, wall, force=step >= steps or failed)
            if failed:
                status = STATUS_NONFINITE
                bad = int(carry.fail_step)
                message = (
                    f"non-finite loss or gradient at step {bad}; training stopped and the parameters of step "
                    f"{max(bad - 1, 0)} (the last with a finite loss) are returned"
                )
                carry = carry._replace(params=carry.good_params)
                break
            best, best_step, diverged = _faults.divergence(losses_np, step - n_done, best, best_step, divergence_factor)
            if diverged:
                status, message = STATUS_DIVERGED, diverged
                break
            for cb in callbacks:
                out_cb = cb(step=step, params=carry.params, opt_state=carry.opt_state, batch=batch, history=history)
                if isinstance(out_cb, str) and out_cb == "stop":
                    status, message = STATUS_STOPPED, f"stopped by a callback at step {step}"
                elif isinstance(out_cb, Mapping) and "batch" in out_cb:
                    new_batch = _compile.as_arrays(out_cb["batch"])
                    if jax.tree.structure(new_batch) != jax.tree.structure(batch) or any(
                        a.shape != b.shape or a.dtype != b.dtype
                        for a, b in zip(jax.tree.leaves(new_batch), jax.tree.leaves(batch))
                    ):
                        raise ValueError("a callback returned a batch whose structure, shapes or dtypes differ")
                    batch = new_batch if sharding is None else _sharding.shard_batch(new_batch, sharding)
                    batch_changed = fresh = True
            if status == STATUS_STOPPED:
                break
            mark = _faults.Mark.take(carry, step, batch, batch_changed, history)
            if checkpoint_dir is not None and next_ckpt is not None and step >= next_ckpt and step < steps:
                save_checkpoint(
                    checkpoint_dir, carry, step, history,
                    {**ckpt_extra, "status": "running", "compile_time_s": compile_before + compile_time},
                    batch if batch_changed else None,
                )
                next_ckpt = (step // checkpoint_every + 1) * checkpoint_every
    except KeyboardInterrupt as exc:  # Ctrl-C, or train.Interrupted raised by a signal handler (e.g. the CLI's)
        if checkpoint_dir is None:
            raise  # nothing to save: the caller's interrupt goes on as usual
        carry, step, batch, batch_changed = mark.restore(history)
        status = STATUS_INTERRUPTED
        message = f"interrupted by {_faults.interrupt_name(exc)} at step {step} (the last completed chunk)"
    finally:
        feedback.close()
    if status == STATUS_COMPLETED and step > start_step:
        ended_high = _faults.final_divergence(history, divergence_factor)
        if ended_high:
            status, message = STATUS_DIVERGED, ended_high

    if checkpoint_dir is not None:
        save_checkpoint(
            checkpoint_dir, carry, step, history,
            {**ckpt_extra, "status": status, "compile_time_s": compile_before + compile_time},
            batch if batch_changed else None,
        )
    return FitResult(
        params=carry.params,
        opt_state=carry.opt_state,
        history=history,
        status=status,
        message=message,
        step=step,
        wall_time_s=wall,
        compile_time_s=compile_time,
        batch=batch,
    )


def sampling_key(key: Any) -> jax.Array:
    """A typed PRNG key from an int seed, a typed key or a legacy uint32 key."""
    from ..sampling._static import as_key  # noqa: PLC0415 - train sits above sampling; kept lazy

    return as_key(key)


def _check_minibatch(minibatch: Mapping[str, int] | None, batch: Batch) -> tuple | None:
    if minibatch is None:
        return None
    if not isinstance(minibatch, Mapping) or not minibatch:
        raise ValueError(f"minibatch: expected a mapping batch entry -> rows per step, got {minibatch!r}")
    out = []
    for name, b in minibatch.items():
        if name not in batch:
            raise ValueError(f"minibatch: {name!r} is not a batch entry; entries: {sorted(batch)}")
        entry = batch[name]
        n = int((entry[0] if isinstance(entry, (tuple, list)) else entry).shape[0])
        if isinstance(b, bool) or not isinstance(b, (int, np.integer)) or not 1 <= b <= n:
            raise ValueError(f"minibatch[{name!r}]: expected an integer in [1, {n}] (the entry's rows), got {b!r}")
        out.append((str(name), int(b)))
    return tuple(sorted(out))


def _minibatch_shapes(batch: Batch, mb: tuple) -> dict:
    """The batch with the mini-batched entries cut to their per-step size (for shape checks)."""
    out = dict(batch)
    for name, b in mb:
        entry = batch[name]
        out[name] = type(entry)(a[:b] for a in entry) if isinstance(entry, (tuple, list)) else entry[:b]
    return out


def _compile_metrics(metrics: Mapping[str, Callable], params: PyTree) -> tuple[dict, float]:
    """Each metric compiled once per structure and shapes (cached like the step); returns (fns, compile seconds)."""
    out, seconds = {}, 0.0
    params = _compile.as_arrays(params)
    for name, fn in metrics.items():
        dyn, static = _compile.split(fn)
        dyn = _compile.as_arrays(dyn)
        skey = _compile.static_key(static)
        key = None if skey is None else ("metric", skey, _compile.avals_key(dyn, params))

        def build(static=static, dyn=dyn):
            return jax.jit(lambda d, p: eqx.combine(d, static)(p)).lower(dyn, params).compile()

        compiled, t, _ = _compile.CACHE.get(key, build)
        seconds += t
        out[name] = lambda p, _c=compiled, _d=dyn: _c(_d, _compile.as_arrays(p))
    return out, seconds
