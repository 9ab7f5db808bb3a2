"""Batch-size progression: train on growing collocation sets, one compilation per stage."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import optax

from ._fit import FitResult, fit
from ._history import History


def fit_stages(
    residual: Callable,
    params: Any,
    batches: Sequence[Mapping[str, Any]],
    steps: Sequence[int],
    optimizer: optax.GradientTransformation,
    **fit_kwargs: Any,
) -> FitResult:
    """Train in stages on batches of growing size (batch-size progression), carrying the optimizer state over.

    Stage i runs ``steps[i]`` steps on ``batches[i]``; shapes change between stages, so each stage compiles once
    (and only once). The returned history is the concatenation, with a ``stage`` event at each stage start.

    Args:
        residual, params, optimizer: as in :func:`fit`.
        batches: one batch per stage (typically nested sets of increasing size).
        steps: steps per stage (each > 0).
        **fit_kwargs: passed to every :func:`fit` call (``metrics``, ``eval_every``, ``progress``, ...);
            ``checkpoint_dir``/``resume`` are not supported here.

    Returns:
        The :class:`FitResult` of the last stage, with the whole history and total wall/compile times.
    """
    if len(batches) != len(steps) or not batches:
        raise ValueError(f"batches and steps: need the same non-zero length, got {len(batches)} and {len(steps)}")
    if any((not isinstance(n, int)) or n <= 0 for n in steps):
        raise ValueError(f"steps: every stage needs a positive integer number of steps, got {list(steps)}")
    for key in ("checkpoint_dir", "resume", "opt_state"):
        if key in fit_kwargs:
            raise ValueError(f"fit_stages: {key} is not supported (stages manage the optimizer state themselves)")
    history: History | None = None
    opt_state = None
    wall = compile_time = 0.0
    total = 0
    result = None
    for i, (batch, n) in enumerate(zip(batches, steps)):
        result = fit(residual, params, batch, optimizer, n, opt_state=opt_state, **fit_kwargs)
        sizes = {k: int((v[0] if isinstance(v, (tuple, list)) else v).shape[0]) for k, v in batch.items()}
        stage_history = result.history
        if history is None:
            history = stage_history
            history.add_event(0, "stage", stage=i, points=sizes)
        else:
            offset = total
            history.add_event(offset, "stage", stage=i, points=sizes)
            history.steps.extend(s + offset for s in stage_history.steps)
            history.loss.extend(stage_history.loss)
            history.grad_norm.extend(stage_history.grad_norm)
            for k in history.terms:
                history.terms[k].extend(stage_history.terms[k])
            for k, v in stage_history.info.items():
                history.info.setdefault(k, [float("nan")] * (len(history.steps) - len(v)))
                history.info[k].extend(v)
            for j, (s, t) in enumerate(zip(stage_history.eval_steps, stage_history.wall_time_s)):
                if s == 0:
                    continue  # the stage's initial evaluation repeats the previous stage's last one
                history.add_eval(s + offset, t + wall, {k: v[j] for k, v in stage_history.metrics.items()})
            for e in stage_history.events:
                history.add_event(**{**e, "step": e["step"] + offset})
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
