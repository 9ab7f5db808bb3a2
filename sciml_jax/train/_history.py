"""Training history: per-step records and per-evaluation metrics, as plain numpy arrays."""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping, Sequence

import numpy as np


class History:
    """Records of a training run.

    Per step ``s`` (the loss is evaluated at the parameters *before* update ``s``): ``loss[s]``,
    ``grad_norm[s]`` and the unweighted mean square of every residual term, ``terms[name][s]``.
    Per evaluation (after each chunk): ``eval_steps``, ``wall_time_s`` and every metric (e.g. ``rel_l2``).
    ``events`` holds discrete happenings (optimizer switch, fallback, resampling) as dicts with a ``step``.
    """

    def __init__(self, term_names: Sequence[str] = (), metric_names: Sequence[str] = ()):
        self.term_names = tuple(term_names)
        self.metric_names = tuple(metric_names)
        self.steps: list[int] = []
        self.loss: list[float] = []
        self.grad_norm: list[float] = []
        self.terms: dict[str, list[float]] = {k: [] for k in self.term_names}
        self.eval_steps: list[int] = []
        self.wall_time_s: list[float] = []
        self.metrics: dict[str, list[float]] = {k: [] for k in self.metric_names}
        self.events: list[dict] = []
        self.info: dict[str, list[float]] = {}

    # -- recording
    def add_steps(
        self,
        first: int,
        loss: np.ndarray,
        terms: Mapping[str, np.ndarray],
        grad_norm: np.ndarray,
        info: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        """Append per-step records; ``info`` holds optimizer diagnostics (after each step's update)."""
        n = len(loss)
        for k, v in (info or {}).items():
            self.info.setdefault(k, [math.nan] * (len(self.steps)))
            self.info[k].extend(float(x) for x in v)
        self.steps.extend(range(first, first + n))
        self.loss.extend(float(v) for v in loss)
        self.grad_norm.extend(float(v) for v in grad_norm)
        for k in self.term_names:
            self.terms[k].extend(float(v) for v in terms[k])

    def add_eval(self, step: int, wall_time_s: float, values: Mapping[str, float]) -> None:
        self.eval_steps.append(int(step))
        self.wall_time_s.append(float(wall_time_s))
        for k in self.metric_names:
            self.metrics[k].append(float(values.get(k, math.nan)))

    def last_info(self) -> dict[str, float]:
        """The optimizer diagnostics recorded at the last step (empty before any step)."""
        return {k: v[-1] for k, v in self.info.items() if v}

    def add_event(self, step: int, kind: str, **info) -> None:
        self.events.append({"step": int(step), "kind": kind, **info})

    # -- queries
    def last_wall_time(self) -> float:
        return self.wall_time_s[-1] if self.wall_time_s else 0.0

    def final(self, name: str) -> float:
        """Last recorded value of a metric, or of ``loss``."""
        if name == "loss":
            return self.loss[-1] if self.loss else math.nan
        values = self.metrics.get(name, [])
        return values[-1] if values else math.nan

    def as_arrays(self) -> dict[str, np.ndarray]:
        out = {"step": np.asarray(self.steps), "loss": np.asarray(self.loss), "grad_norm": np.asarray(self.grad_norm)}
        out.update({f"mse_{k}": np.asarray(v) for k, v in self.terms.items()})
        return out

    # -- serialisation
    def to_dict(self) -> dict:
        return {
            "term_names": list(self.term_names),
            "metric_names": list(self.metric_names),
            "steps": self.steps,
            "loss": self.loss,
            "grad_norm": self.grad_norm,
            "terms": self.terms,
            "eval_steps": self.eval_steps,
            "wall_time_s": self.wall_time_s,
            "metrics": self.metrics,
            "events": self.events,
            "info": self.info,
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> "History":
        h = cls(d["term_names"], d["metric_names"])
        h.steps = list(d["steps"])
        h.loss = list(d["loss"])
        h.grad_norm = list(d["grad_norm"])
        h.terms = {k: list(v) for k, v in d["terms"].items()}
        h.eval_steps = list(d["eval_steps"])
        h.wall_time_s = list(d["wall_time_s"])
        h.metrics = {k: list(v) for k, v in d["metrics"].items()}
        h.events = list(d.get("events", []))
        h.info = {k: list(v) for k, v in d.get("info", {}).items()}
        return h

    def to_csv(self, path: str | os.PathLike) -> None:
        """One row per step; metric and wall-time columns are filled at evaluation steps, empty elsewhere."""
        evals = {s: i for i, s in enumerate(self.eval_steps)}
        header = [
            "step", "loss", "grad_norm", *(f"mse_{k}" for k in self.term_names), *self.info, "wall_time_s",
            *self.metric_names,
        ]
        rows_steps = sorted(set(self.steps) | set(self.eval_steps))
        index = {s: i for i, s in enumerate(self.steps)}
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(header)
            for s in rows_steps:
                i = index.get(s)
                row = [s]
                row += [repr(self.loss[i]), repr(self.grad_norm[i])] if i is not None else ["", ""]
                row += [repr(self.terms[k][i]) if i is not None else "" for k in self.term_names]
                row += [repr(v[i]) if i is not None and i < len(v) else "" for v in self.info.values()]
                j = evals.get(s)
                row += [repr(self.wall_time_s[j]) if j is not None else ""]
                row += [repr(self.metrics[k][j]) if j is not None else "" for k in self.metric_names]
                w.writerow(row)
