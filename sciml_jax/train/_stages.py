"""Batch-size progression: train on growing collocation sets or growing mini-batches, one compilation per stage."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import optax

from ._fit import FitResult, fit, sampling_key
from ._history import History

_NOT_PER_STAGE = ("checkpoint_dir", "resume", "opt_state", "checkpoint_every", "checkpoint_meta")


def _entry_rows(v: Any) -> int | None:
    a = v[0] if isinstance(v, (tuple, list)) else v
    shape = getattr(a, "shape", None)
    return int(shape[0]) if shape else None


def fit_stages(
    residual: Callable,
    params: Any,
    batches: Sequence[Mapping[str, Any]] | Mapping[str, Any],
    steps: Sequence[int],
    optimizer: optax.GradientTransformation,
    *,
    stage_kwargs: Sequence[Mapping[str, Any] | None] | None = None,
    **fit_kwargs: Any,
) -> FitResult:
    """Train in stages, carrying the parameters and the optimizer state over (batch-size progression).

    Stage i runs ``steps[i]`` steps on ``batches[i]`` with the keyword arguments ``fit_kwargs`` updated by
    ``stage_kwargs[i]``. Two kinds of progression:

    * growing point sets: ``batches`` is one batch per stage (typically nested sets of increasing size);
    * growing mini-batches: ``batches`` is ONE batch (a mapping, used by every stage) and
      ``stage_kwargs=[{"minibatch": {"data": 32}}, {"minibatch": {"data": 128}}, {}]`` (``{}``: full batch).

    Shapes (or mini-batch sizes) change between stages, so each stage compiles once, and only once; a stage whose
    structure and shapes were seen before reuses that program (``sciml_jax.train.cache_info()``). The optimizer
    state, and with it a learning-rate schedule's step count, continues across stages. Stage i draws its
    mini-batches from ``fold_in(key, i)`` (``key`` from ``fit_kwargs``/``stage_kwargs``, default 0), so stages do
    not repeat each other's permutations. The returned history is the concatenation, with a ``stage`` event at each
    stage start (its rows per batch entry, and the mini-batch sizes when there are some).

    Args:
        residual, params, optimizer: as in :func:`fit`.
        batches: one batch per stage, or a single batch for all stages.
        steps: steps per stage (each > 0).
        stage_kwargs: one mapping (or None) per stage of :func:`fit` keyword arguments for that stage only, e.g.
            ``minibatch``, ``eval_every``, ``chunk``, ``key``, ``metrics``, ``callbacks``.
        **fit_kwargs: passed to every :func:`fit` call (``metrics``, ``eval_every``, ``progress``, ...);
            ``checkpoint_dir``/``resume``/``opt_state`` are not supported here.

    Returns:
        The :class:`FitResult` of the last stage, with the whole history and total wall/compile times.
    """
    if isinstance(batches, Mapping):
        batches = [batches] * len(steps)
    if len(batches) != len(steps) or not batches:
        raise ValueError(f"batches and steps: need the same non-zero length, got {len(batches)} and {len(steps)}")
    if any((not isinstance(n, int)) or isinstance(n, bool) or n <= 0 for n in steps):
        raise ValueError(f"steps: every stage needs a positive integer number of steps, got {list(steps)}")
    if stage_kwargs is None:
        stage_kwargs = [None] * len(steps)
    if isinstance(stage_kwargs, Mapping) or len(stage_kwargs) != len(steps):
        raise ValueError(
            f"stage_kwargs: expected one mapping (or None) per stage ({len(steps)}), got {stage_kwargs!r}"
        )
    for i, extra in enumerate(stage_kwargs):
        if extra is not None and not isinstance(extra, Mapping):
            raise ValueError(f"stage_kwargs[{i}]: expected a mapping of fit keyword arguments or None, got {extra!r}")
        for key in tuple(fit_kwargs) + tuple(extra or ()):
            if key in _NOT_PER_STAGE:
                where = f"stage_kwargs[{i}]" if key in (extra or {}) else "fit_stages"
                raise ValueError(f"{where}: {key} is not supported (stages manage the optimizer state themselves)")
    history: History | None = None
    opt_state = None
    wall = compile_time = 0.0
    total = 0
    result = None
    for i, (batch, n) in enumerate(zip(batches, steps)):
        kwargs = {**fit_kwargs, **(stage_kwargs[i] or {})}
        kwargs["key"] = jax.random.fold_in(sampling_key(kwargs.get("key", 0)), i)
        result = fit(residual, params, batch, optimizer, n, opt_state=opt_state, **kwargs)
        sizes = {k: rows for k, v in batch.items() if (rows := _entry_rows(v)) is not None}
        event = {"stage": i, "points": sizes}
        if kwargs.get("minibatch"):
            event["minibatch"] = {str(k): int(v) for k, v in dict(kwargs["minibatch"]).items()}
        history = append_history(history, result.history, total, wall, "stage", event)
        params, opt_state = result.params, result.opt_state
        wall += result.wall_time_s
        compile_time += result.compile_time_s
        total += result.step
        if result.status != "completed":
            break
    result.history = history
    result.step = total
    result.wall_time_s = wall
    result.compile_time_s = compile_time
    return result


def append_history(history: History | None, part: History, offset: int, wall: float, kind: str,
                   event: Mapping[str, Any], skip_initial_eval: bool = True) -> History:
    """``history`` continued by the history ``part`` of a later fit call (a stage, a time window).

    ``part``'s steps are shifted by ``offset`` and its wall times by ``wall``; an event ``kind`` with ``event``'s
    fields marks where it starts. With ``skip_initial_eval`` the part's step-0 evaluation is dropped (it repeats the
    previous part's last one). With ``history`` None, ``part`` itself is returned with the event added.
    """
    if history is None:
        part.add_event(0, kind, **event)
        return part
    history.add_event(offset, kind, **event)
    n_before = len(history.steps)
    history.steps.extend(s + offset for s in part.steps)
    history.loss.extend(part.loss)
    history.grad_norm.extend(part.grad_norm)
    for k in history.terms:
        history.terms[k].extend(part.terms[k])
    for k, v in part.info.items():
        history.info.setdefault(k, [float("nan")] * n_before)
        history.info[k].extend(v)
    for k, v in history.info.items():  # a key the part did not log: NaN for its steps
        v.extend([float("nan")] * (len(history.steps) - len(v)))
    for j, (s, t) in enumerate(zip(part.eval_steps, part.wall_time_s)):
        if s == 0 and skip_initial_eval:
            continue
        history.add_eval(s + offset, t + wall, {k: v[j] for k, v in part.metrics.items()})
    for e in part.events:
        history.add_event(**{**e, "step": e["step"] + offset})
    return history
