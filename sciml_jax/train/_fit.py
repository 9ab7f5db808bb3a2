"""fit(): jitted optimisation loop in fixed-length lax.scan chunks, with history, checkpoints and a non-finite guard."""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..optim._info import events_from_info, logged_info
from . import _faults, _sharding
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
            loss stayed above ``divergence_factor`` × its best for a whole chunk, or ended there), ``"stopped"`` (a callback asked
            to stop) or ``"interrupted"`` (Ctrl-C / :class:`sciml_jax.train.Interrupted`; the checkpoint, if any,
            holds the last completed chunk).
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


def _as_extra_args(optimizer: Any) -> optax.GradientTransformationExtraArgs:
    if isinstance(optimizer, optax.GradientTransformationExtraArgs):
        return optimizer
    if isinstance(optimizer, optax.GradientTransformation):
        return optax.with_extra_args_support(optimizer)
    raise ValueError(
        f"optimizer: expected an optax GradientTransformation or GradientTransformationExtraArgs, "
        f"got {type(optimizer).__name__}"
    )


def make_step(
    residual: Callable, optimizer: optax.GradientTransformationExtraArgs, *, sharding: Any = None
) -> Callable:
    """One optimisation step ``(params, opt_state, batch) -> (params, opt_state, loss, terms, grad_norm)``.

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
    """
    from .. import analysis  # noqa: PLC0415 - train sits above analysis; imported lazily to keep import light

    loss_and_terms, residual_vector, _ = _make_objective(residual)
    optimizer = _as_extra_args(optimizer)
    structured = hasattr(residual, "weighted_terms") and hasattr(residual, "problem")

    def step(params, opt_state, batch):
        (loss, terms), grads = jax.value_and_grad(loss_and_terms, has_aux=True)(params, batch)

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
        return new_params, new_state, loss, terms, _global_norm(grads), grads, logged_info(new_state)

    return step


def _build_chunk(step: Callable, chunk: int) -> Callable:
    """A jittable function running ``chunk`` steps in lax.scan; steps with index >= n_active are skipped."""

    def run_chunk(carry: _Carry, batch: Batch, start: jax.Array, stop: jax.Array):
        def body(c: _Carry, i):
            gstep = start + i
            active = (gstep < stop) & jnp.logical_not(c.failed)

            def do(c: _Carry):
                new_params, new_state, loss, terms, gnorm, grads, info = step(c.params, c.opt_state, batch)
                finite = jnp.isfinite(loss) & _tree_all_finite(grads)
                params = _tree_where(finite, new_params, c.params)
                state = _tree_where(finite, new_state, c.opt_state)
                good = _tree_where(finite, c.params, c.good_params)
                failed = jnp.logical_not(finite)
                fail_step = jnp.where(finite, c.fail_step, gstep)
                return _Carry(params, state, good, failed, fail_step), (loss, terms, gnorm, info)

            def skip(c: _Carry):
                shapes = jax.eval_shape(lambda: step(c.params, c.opt_state, batch))
                nan = jnp.asarray(jnp.nan, dtype=shapes[2].dtype)
                terms = {k: jnp.full(v.shape, jnp.nan, v.dtype) for k, v in shapes[3].items()}
                info = logged_info(c.opt_state)  # unchanged state: its values repeat
                return c, (nan, terms, jnp.full(shapes[4].shape, jnp.nan, shapes[4].dtype), info)

            c, out = jax.lax.cond(active, do, skip, c)
            return c, out

        return jax.lax.scan(body, carry, jnp.arange(chunk, dtype=jnp.int32))

    return run_chunk


def _use_progress(progress: bool | None) -> bool:
    if progress is not None:
        return bool(progress)
    return sys.stderr.isatty()


# ----------------------------------------------------------------------------------------------- fit


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
    progress: bool | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    resume: bool = False,
    callbacks: Sequence[Callable[..., Any]] = (),
    opt_state: PyTree | None = None,
    sharding: Any = None,
    divergence_factor: float | None = 1e4,
    checkpoint_meta: Mapping[str, Any] | None = None,
) -> FitResult:
    """Minimise L(θ) = ½‖r(θ)‖² with an optax optimizer.

    Steps run inside a jitted ``lax.scan`` over chunks of a fixed length (default ``eval_every``); the chunk is
    compiled once, ahead of time, and reused, the last partial chunk being masked rather than shortened, so a
    run compiles exactly once. Every step records the loss, the per-term mean squares and the gradient norm; every
    chunk evaluates ``metrics`` (e.g. the relative L2 error) and the wall time.

    A non-finite loss or gradient stops training: later steps are skipped on device, the returned parameters are
    the last ones whose loss was finite, and ``status == "nonfinite"`` with a message naming the step. A finite
    blow-up stops it too: when the smallest loss of a whole chunk exceeds ``divergence_factor`` × the best loss of
    the earlier steps, or when the run's final loss does, ``status == "diverged"`` (the parameters are those at
    the end of that chunk, or the final ones).

    With ``checkpoint_dir`` set, ``KeyboardInterrupt`` (Ctrl-C) or :class:`sciml_jax.train.Interrupted` (raised by a
    signal handler) during the steps rolls back to the last completed chunk, writes the checkpoint and returns
    ``status == "interrupted"``; a second interrupt while that checkpoint is written propagates (the previous
    checkpoint stays intact: checkpoints are written atomically). Without ``checkpoint_dir`` the interrupt
    propagates as usual.

    Args:
        residual: ``residual(params, batch) -> r: (N,)``, typically a :class:`sciml_jax.pinn.Residual` (then the
            per-term mean squares are logged too).
        params: initial parameters (a pytree of arrays).
        batch: dict of fixed-shape point arrays, passed to ``residual``; a callback may replace it by one of the
            same shapes without recompiling.
        optimizer: any ``optax.GradientTransformation``; its ``update`` gets the extras ``value``, ``grad``,
            ``value_fn`` and ``residual_fn`` (plain transformations ignore them).
        steps: total number of steps (counting steps done before, when resuming).
        metrics: name -> ``params -> scalar`` evaluated every chunk (jitted once).
        eval_every: steps between metric evaluations; also the default chunk length.
        chunk: scan length (must divide nothing; default ``eval_every``).
        progress: show a tqdm bar (default: only when stderr is a terminal).
        checkpoint_dir: directory for checkpoints (see :func:`sciml_jax.train.save_checkpoint`: array files and a
            ``checkpoint.json`` record committed atomically, verified on resume).
        checkpoint_every: steps between checkpoints (rounded up to a multiple of ``chunk``); the final state is
            always written when ``checkpoint_dir`` is set.
        resume: continue from the checkpoint in ``checkpoint_dir``; the continuation is bit-identical to an
            uninterrupted run with the same chunk length. A batch installed by a callback (adaptive resampling) is
            checkpointed too and restored in place of ``batch``. A torn or damaged checkpoint, or one whose structure,
            shapes or dtypes differ from this run's state, is refused (:class:`sciml_jax.train.CheckpointError`).
            With ``steps`` at or below the checkpoint's step nothing runs and the message says so.
        callbacks: called after each chunk as ``cb(step=..., params=..., opt_state=..., batch=..., history=...)``;
            a callback may return ``None``, ``"stop"``, or a dict with a new ``"batch"`` (same shapes).
        opt_state: initial optimizer state (default ``optimizer.init(params)``).
        sharding: data parallelism (``None``: off). A :class:`sciml_jax.train.DataParallel` from
            :func:`sciml_jax.train.data_parallel` (or a device count, device list or 1-D ``Mesh``): every batch
            array is split along its leading axis over the devices, parameters and optimizer state are replicated,
            and XLA inserts the reductions. Results equal the single-device run up to round-off. Every batch
            entry's point count must be divisible by the number of devices.
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
            ``checkpoint_dir``, or a batch that ``sharding`` cannot split evenly.
        CheckpointError: ``resume`` from a checkpoint that is damaged, does not match, or ended non-finite.
    """
    for name, value in (("steps", steps), ("eval_every", eval_every)):
        if not isinstance(value, (int, np.integer)) or value < 0 or (name != "steps" and value == 0):
            raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    chunk = eval_every if chunk is None else chunk
    if not isinstance(chunk, (int, np.integer)) or chunk <= 0:
        raise ValueError(f"chunk: expected a positive integer, got {chunk!r}")
    if checkpoint_every is not None and (not isinstance(checkpoint_every, (int, np.integer)) or checkpoint_every <= 0):
        raise ValueError(f"checkpoint_every: expected a positive integer or None, got {checkpoint_every!r}")
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs checkpoint_dir (the directory holding the checkpoint)")
    if divergence_factor is not None and not (isinstance(divergence_factor, (int, float)) and divergence_factor > 1
                                              and np.isfinite(divergence_factor)):
        raise ValueError(f"divergence_factor: expected a finite number > 1 or None, got {divergence_factor!r}")
    ckpt_extra = dict(checkpoint_meta or {})

    optimizer = _as_extra_args(optimizer)
    metrics = dict(metrics or {})
    _, _, term_names = _make_objective(residual)
    if sharding is not None:
        sharding = _sharding.as_data_parallel(sharding)
    step_fn = make_step(residual, optimizer, sharding=sharding)
    run_chunk = _build_chunk(step_fn, int(chunk))

    if opt_state is None:
        opt_state = optimizer.init(params)
    carry = _Carry(params, opt_state, params, jnp.asarray(False), jnp.asarray(-1, dtype=jnp.int32))
    history = History(term_names=term_names, metric_names=tuple(metrics))
    start_step = 0
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

    jit_kwargs = {}
    if sharding is not None:
        batch = _sharding.shard_batch(batch, sharding)
        carry = _sharding.replicate(carry, sharding)
        jit_kwargs = _sharding._jit_shardings(sharding, carry, batch)

    t0 = time.perf_counter()
    compiled = (
        jax.jit(run_chunk, **jit_kwargs)
        .lower(carry, batch, jnp.asarray(0, jnp.int32), jnp.asarray(0, jnp.int32))
        .compile()
    )
    metric_fns = {k: jax.jit(f) for k, f in metrics.items()}
    compile_time = time.perf_counter() - t0

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
    next_ckpt = (
        None if checkpoint_every is None else (step // checkpoint_every + 1) * checkpoint_every
    )
    if step == 0 and metric_fns and not history.eval_steps:
        history.add_eval(0, elapsed_before, {k: float(f(carry.params)) for k, f in metric_fns.items()})

    bar = None
    if _use_progress(progress) and steps > step:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, initial=step, unit="step", dynamic_ncols=True, leave=True)

    mark = _faults.Mark.take(carry, step, batch, batch_changed, history)
    best, best_step = _faults.best_loss(history)
    try:
        while step < steps:
            stop = min(step + chunk, steps)
            t1 = time.perf_counter()
            carry, (losses, terms, gnorms, infos) = compiled(
                carry, batch, jnp.asarray(step, jnp.int32), jnp.asarray(stop, jnp.int32)
            )
            jax.block_until_ready(carry)
            failed = bool(carry.failed)
            n_done = stop - step
            if failed:
                n_done = int(carry.fail_step) - step  # the failing step itself produced no update
            wall += time.perf_counter() - t1
            losses_np = np.asarray(losses)[:n_done]
            terms_np = {k: np.asarray(v)[:n_done] for k, v in terms.items()}
            infos_np = {k: np.asarray(v)[:n_done] for k, v in infos.items()}
            previous_info = history.last_info()
            history.add_steps(step, losses_np, terms_np, np.asarray(gnorms)[:n_done], infos_np)
            for event in events_from_info(np.arange(step, step + n_done), infos_np, previous_info or None):
                history.add_event(**event)
            step += n_done
            eval_params = carry.good_params if failed else carry.params
            values = {k: float(f(eval_params)) for k, f in metric_fns.items()}
            history.add_eval(step, elapsed_before + wall, values)
            if bar is not None:
                bar.update(n_done)
                post = {"loss": f"{losses_np[-1]:.3e}" if n_done else "nan"}
                post.update({k: f"{v:.2e}" for k, v in values.items()})
                bar.set_postfix(post)
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
                out = cb(step=step, params=carry.params, opt_state=carry.opt_state, batch=batch, history=history)
                if out == "stop":
                    status, message = STATUS_STOPPED, f"stopped by a callback at step {step}"
                elif isinstance(out, Mapping) and "batch" in out:
                    new_batch = out["batch"]
                    if jax.tree.structure(new_batch) != jax.tree.structure(batch) or any(
                        a.shape != b.shape or a.dtype != b.dtype
                        for a, b in zip(jax.tree.leaves(new_batch), jax.tree.leaves(batch))
                    ):
                        raise ValueError("a callback returned a batch whose structure, shapes or dtypes differ")
                    batch = new_batch if sharding is None else _sharding.shard_batch(new_batch, sharding)
                    batch_changed = True
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
        if bar is not None:
            bar.close()
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
