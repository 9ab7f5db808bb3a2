"""fit_windows(): time-marching training, one fit call per time window, all windows on one compiled step."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import optax

from ._fit import FitResult, fit, sampling_key
from ._stages import append_history

_NOT_PER_WINDOW = ("checkpoint_dir", "resume", "opt_state", "checkpoint_every", "checkpoint_meta", "metrics")


def fit_windows(
    windows: Any,
    apply: Callable,
    params: Any,
    optimizer: optax.GradientTransformation,
    steps: int | Sequence[int],
    *,
    counts: Mapping[str, int],
    method: str = "sobol",
    points_key: Any = 0,
    weights: Mapping[str, Any] | None = None,
    causal: Any = None,
    eval_points: Any = None,
    observations: Mapping[str, Any] | None = None,
    **fit_kwargs: Any,
) -> FitResult:
    """Time-marching: train window after window of a :class:`sciml_jax.pinn.TimeWindows` (see its module).

    Window k samples ``counts`` points in [t_k, t_{k+1}] (key ``fold_in(points_key, k)``), takes its initial data
    from window k-1's network, starts from window k-1's parameters (warm start) with a fresh optimizer state, and
    runs ``steps`` (or ``steps[k]``) steps with :func:`fit`. Every window runs the same compiled program. A
    callback's ``"stop"`` (e.g. a wall-time budget) ends the current window and the next one starts; a non-finite
    or diverged window ends the run (later windows keep the last good parameters).

    Metrics: ``rel_l2`` (when the problem has a reference), the relative L2 error over the part [T0, t_{k+1}]
    solved so far (:class:`sciml_jax.pinn.MarchingError`, on ``eval_points`` or the problem's evaluation points);
    after the last window it is the error of the whole piecewise model.

    Args:
        windows: a :class:`sciml_jax.pinn.TimeWindows`.
        apply: the network ``apply(params, x)``; ``params`` its initial parameters (window 0's).
        optimizer: any optax transformation (fresh state per window).
        steps: steps per window (one int for all, or one per window).
        counts, method, observations: the points of each window, as in ``Problem.batch`` (``initial`` included).
        points_key: key of the windows' points.
        weights, causal: loss weights and an optional :class:`sciml_jax.pinn.Causal` (applied within each window).
        eval_points: (M, d) points of the error metric (default the problem's evaluation points).
        **fit_kwargs: passed to every :func:`fit` call (``eval_every``, ``chunk``, ``callbacks``, ``progress``,
            ``minibatch``, ``key``, ``divergence_factor``, ``label``); checkpoints and ``metrics`` are not supported.

    Returns:
        A :class:`FitResult` whose ``params`` are the K windows' parameters stacked on a leading axis (evaluate
        them with ``windows.model(apply)``), whose history concatenates the windows' (a ``window`` event at each
        start) and whose ``batch`` is the last window's.
    """
    from .. import pinn  # noqa: PLC0415 - train is below pinn; only this driver needs problems

    if not isinstance(windows, pinn.TimeWindows):
        raise ValueError(f"windows: expected a sciml_jax.pinn.TimeWindows, got {type(windows).__name__}")
    n_win = windows.count
    if isinstance(steps, Sequence):
        steps = list(steps)
        if len(steps) != n_win:
            raise ValueError(f"steps: expected one count per window ({n_win}), got {len(steps)}")
    else:
        steps = [steps] * n_win
    if any(isinstance(n, bool) or not isinstance(n, int) or n <= 0 for n in steps):
        raise ValueError(f"steps: every window needs a positive integer number of steps, got {steps}")
    for key in fit_kwargs:
        if key in _NOT_PER_WINDOW:
            raise ValueError(f"fit_windows: {key} is not supported (windows manage their state and metric)")
    res = windows.residual(apply, weights, causal)
    metrics = {}
    if windows.problem.exact is not None:
        metrics["rel_l2"] = pinn.marching_error(windows, apply, eval_points)
    pkey = sampling_key(points_key)
    fkey = sampling_key(fit_kwargs.pop("key", 0))
    label = fit_kwargs.pop("label", "fit")
    history = None
    wall = compile_time = 0.0
    total = 0
    done: list = []
    result = None
    previous = None
    for k in range(n_win):
        batch = windows.batch(k, counts, method, jax.random.fold_in(pkey, k), previous, observations)
        result = fit(windows.for_window(res, k), params, batch, optimizer, steps[k], metrics=metrics,
                     key=jax.random.fold_in(fkey, k), label=f"{label} [window {k + 1}/{n_win}]", **fit_kwargs)
        lo, hi = windows.span(k)
        history = append_history(history, result.history, total, wall, "window",
                                 {"window": k, "span": [lo, hi]}, skip_initial_eval=k > 0)
        params = result.params
        done.append(params)
        wall += result.wall_time_s
        compile_time += result.compile_time_s
        total += result.step
        if result.status not in ("completed", "stopped"):
            break
        if k + 1 < n_win and "rel_l2" in metrics:
            metrics["rel_l2"] = metrics["rel_l2"].advance(params, windows.network(apply, k + 1))
        previous = (windows.network(apply, k), params)
    done += [done[-1]] * (n_win - len(done))  # windows a failed run never reached keep the last parameters
    result.params = jax.tree.map(lambda *a: jnp.stack(a), *done)
    result.history = history
    result.step = total
    result.wall_time_s = wall
    result.compile_time_s = compile_time
    if result.status == "completed":
        result.message = f"completed {n_win} windows ({total} steps)"
    else:
        result.message = f"window {k} of {n_win} (0-based): {result.message}"
    return result
