"""Robust summaries of a training history: final / best / median of the last evaluations, time to accuracy."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np


def summary_stats(history: Any, metric: str = "rel_l2", k: int = 5) -> dict:
    """``{"final", "best", "best_step", "median_last"}`` of a metric recorded every evaluation (e.g. ``rel_l2``).

    final: the last evaluation; best: the smallest value over all evaluations; median_last: the median of the last
    ``k`` evaluations (less sensitive than ``final`` to where an oscillating run happens to stop); best_step: the step
    of the best evaluation (None for a plain sequence). Non-finite values
    count as +inf for best and the median; a value that is not finite is returned as None (JSON has no NaN/inf).

    Args:
        history: a :class:`sciml_jax.train.History` (``history.metrics[metric]``) or a sequence of values.
        metric: the metric's name when ``history`` is a History.
        k: number of last evaluations in the median, >= 1.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k: expected an integer >= 1, got {k!r}")
    values = history.metrics.get(metric, []) if hasattr(history, "metrics") else history
    v = np.asarray([np.nan if x is None else x for x in values], dtype=float)
    if not v.size:
        return {"final": None, "best": None, "best_step": None, "median_last": None}
    w = np.where(np.isfinite(v), v, np.inf)

    def clean(x: float) -> float | None:
        return float(x) if math.isfinite(x) else None

    best = clean(w.min())
    steps = getattr(history, "eval_steps", None)
    best_step = int(steps[int(np.argmin(w))]) if best is not None and steps is not None else None
    return {"final": clean(v[-1]), "best": best, "best_step": best_step, "median_last": clean(np.median(w[-k:]))}


def settled_index(values: Sequence[float | None], level: float) -> int | None:
    """Index of the first evaluation from which ``values`` stay <= level for good (None if the last is above).

    A run that dips below the level and rises above it again has not reached it: the index is that of the first
    evaluation after the last one above the level. NaN and None count as above.
    """
    v = np.asarray([np.nan if x is None else x for x in values], dtype=float)
    above = np.nonzero(~(v <= level))[0]
    first = int(above[-1]) + 1 if above.size else 0
    return first if first < v.size else None


def time_to_level(history: Any, metric: str, level: float) -> tuple[int, float] | None:
    """(step, wall time in s, compile excluded) of the first evaluation from which ``metric`` stays <= level.

    The rule of every time-to-accuracy column: the run counts as having reached the level at the first evaluation
    after which the metric never rises above it again (:func:`settled_index`); None when it ends above.
    """
    i = settled_index(history.metrics.get(metric, []), level)
    return None if i is None else (int(history.eval_steps[i]), float(history.wall_time_s[i]))
