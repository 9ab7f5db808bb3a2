"""Optimizer benchmark suite: every optimizer x every problem x every seed, each run stopped by a wall-time
budget, with time-to-accuracy tables, error-vs-wall-time figures, the published numbers beside ours and a
conclusion computed from the numbers. Writes report.md, bench_time.png, metrics.json, runs.csv and runs.jsonl
(one line per finished run, written as the suite goes) into ``out_dir``.

A problem's "target" config is the same experiment with one problem and one optimizer (configs/bench/*.yaml).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .. import config as _config
from .. import nn, pinn, train
from . import _report
from ._ablation import _cell_stats, _check_seeds, _conclusion
from ._report import fmt
from ._train import build, fit_windows, make_resampler, register, set_dtype

# ----------------------------------------------------------------------------------------------- budget


class WallTimeBudget:
    """A ``fit`` callback that stops training once the steps' wall time reaches ``budget_s`` seconds.

    The time is the history's (compile, metric evaluations and callbacks excluded), checked after every chunk, so a
    run overshoots by at most one chunk (``eval_every`` steps). ``budget_s=None`` never stops.
    """

    def __init__(self, budget_s: float | None):
        if budget_s is not None and (isinstance(budget_s, bool) or not isinstance(budget_s, (int, float))
                                     or not math.isfinite(budget_s) or budget_s <= 0):
            raise ValueError(f"budget_s: expected a number > 0 (seconds) or None, got {budget_s!r}")
        self.budget_s = None if budget_s is None else float(budget_s)

    def __call__(self, *, history: Any, **_: Any) -> str | None:
        if self.budget_s is not None and history.last_wall_time() >= self.budget_s:
            return "stop"
        return None


class _CpuClock:
    """A ``fit`` callback recording the process CPU time (all threads) at every chunk end: CPU seconds per step
    between the first and the last chunk end, a measure less sensitive than wall time to other jobs on the machine
    (it includes the metric evaluations and callbacks between chunks)."""

    def __init__(self):
        self.marks: list[tuple[int, float]] = []
        self._offset = self._last = 0

    def __call__(self, *, step: int, **_: Any) -> None:
        if step < self._last:  # a new fit call (the next time window) counts its steps from 0 again
            self._offset += self._last
        self._last = int(step)
        self.marks.append((self._offset + int(step), time.process_time()))

    def per_step(self) -> float | None:
        if len(self.marks) < 2 or self.marks[-1][0] <= self.marks[0][0]:
            return None
        (s0, c0), (s1, c1) = self.marks[0], self.marks[-1]
        return (c1 - c0) / (s1 - s0)


# ----------------------------------------------------------------------------------------------- options

# keys of a problem entry that belong to the benchmark, not to the run config
_PROBLEM_KEYS = ("budget_s", "eval_grid", "published", "optimizers", "target", "note")
_PUBLISHED_KEYS = ("value", "method", "source", "note")


def _grid_points(axes: Sequence[Sequence[float]]) -> np.ndarray:
    """Tensor grid of ``[[lo, hi, n], ...]`` (one per coordinate, ``linspace(lo, hi, n)``), last coordinate fastest:
    ``(prod n, d)`` float64."""
    mesh = np.meshgrid(*[np.linspace(float(lo), float(hi), int(n)) for lo, hi, n in axes], indexing="ij")
    return np.column_stack([m.ravel() for m in mesh])


def _grid_label(axes: Sequence[Sequence[float]], names: Sequence[str]) -> str:
    parts = [f"{nm} = linspace({lo:g}, {hi:g}, {int(n)})" for nm, (lo, hi, n) in zip(names, axes)]
    return " × ".join(parts) + f" ({int(np.prod([int(a[2]) for a in axes])):,} points)"


def _check_grid(grid: Any, where: str, problem: Any) -> list | None:
    """``eval_grid``: null (the problem's own evaluation points) or ``[[lo, hi, n], ...]``, one triple per coordinate,
    n an integer >= 2, lo < hi, every point inside the problem's domain."""
    if grid is None:
        return None
    dim = problem.domain.dim if problem.domain is not None else 0
    ok = isinstance(grid, (list, tuple)) and len(grid) == dim and all(
        isinstance(a, (list, tuple)) and len(a) == 3
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in a[:2])
        and isinstance(a[2], int) and not isinstance(a[2], bool) and a[2] >= 2 and a[0] < a[1] for a in grid)
    if not ok:
        raise ValueError(f"{where}: expected null (the problem's evaluation points) or {dim} triples [lo, hi, n] "
                         f"(one per coordinate, lo < hi, integer n >= 2), got {grid!r}")
    inside = problem.domain.contains(_grid_points(grid))
    if not np.all(inside):
        raise ValueError(f"{where}: {int(np.sum(~inside))} grid point(s) lie outside the domain of "
                         f"{problem.name!r}; keep every [lo, hi] within it")
    return [[float(a[0]), float(a[1]), int(a[2])] for a in grid]


def _check_published(pub: Any, where: str) -> list[dict]:
    if pub is None:
        return []
    pub = [pub] if isinstance(pub, Mapping) else pub
    if not isinstance(pub, (list, tuple)):
        raise ValueError(f"{where}: expected a list of {{value, method, source, note}} mappings, got {pub!r}")
    out = []
    for i, entry in enumerate(pub):
        w = f"{where}[{i}]"
        if not isinstance(entry, Mapping) or set(entry) - set(_PUBLISHED_KEYS):
            raise ValueError(f"{w}: expected a mapping with keys among {', '.join(_PUBLISHED_KEYS)}, got {entry!r}")
        v = entry.get("value")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
            raise ValueError(f"{w}.value: expected a published rel L2 error > 0, got {v!r}")
        if not isinstance(entry.get("source"), str) or not entry["source"].strip():
            raise ValueError(f"{w}.source: expected the publication (a non-empty string), got {entry.get('source')!r}")
        out.append({"value": float(v), "method": str(entry.get("method", "")), "source": entry["source"],
                    "note": str(entry.get("note", ""))})
    return out


def _positive_or_none(v: Any, where: str) -> float | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
        raise ValueError(f"{where}: expected a number > 0 or null, got {v!r}")
    return float(v)


@dataclasses.dataclass
class BenchOptions(_report.Options):
    """``experiment_options`` of the bench experiment.

    optimizers: label -> partial config override, the syntax of ``compare`` (usually ``{optimizer: {name: ...,
        ...}}``, optionally ``train: {eval_every: ...}``); required.
    problems: label -> partial config override (``problem``, ``model``, ``sampling``, ``loss``, ``train``) plus the
        benchmark's own keys: ``budget_s`` (this problem's per-run budget), ``eval_grid`` (``[[lo, hi, n], ...]``,
        one per coordinate: the reported error is measured on that tensor grid, e.g. Burgers' standard 256 x 100
        grid; default: the problem's evaluation points), ``published`` (list of ``{value, method, source, note}``:
        published rel L2 errors shown beside ours), ``optimizers`` (label -> a further override of that optimizer's
        run on this problem, e.g. Adam's learning rate), ``target`` (a rel L2 level the report checks on every seed)
        and ``note`` (a line for the report). Default: the config's problem only.
    seeds: number of seeds (cfg.seed, cfg.seed + 1, ...) or a list of distinct integers >= 0.
    budget_s: per-run wall-time budget of the steps in seconds (compile, evaluations and resampling excluded);
        a run stops at the first chunk end past it, or after ``train.steps``; null: steps only.
    levels: rel L2 levels of the time-to-accuracy columns, numbers in (0, 1).
    head_to_head: optimizer labels compared over the whole suite in one table (default: ssbroyden, lbfgs, lm and
        lm_geodesic where present).
    reuse: path of an earlier suite's ``runs.jsonl``: a run whose problem, optimizer, seed, budget and full
        config match a record there is taken from it instead of being trained again (to continue an interrupted
        suite into a new output folder).
    only_problems, only_optimizers: run only these labels (lists of distinct labels; default: all), e.g. a quick
        look at part of a suite from the command line without editing it; per-problem optimizer overrides of the
        labels left out are checked and ignored.
    """

    optimizers: dict | None = None
    problems: dict | None = None
    seeds: Any = 3
    budget_s: float | None = 60.0
    levels: list = dataclasses.field(default_factory=lambda: [1e-2, 1e-3, 1e-4, 1e-5, 1e-6])
    head_to_head: list | None = None
    reuse: str | None = None
    only_problems: list | None = None
    only_optimizers: list | None = None

    def check(self, cfg: Any) -> None:
        self.seeds = _check_seeds(self.seeds, cfg.seed)
        self.budget_s = _positive_or_none(self.budget_s, "experiment_options.budget_s")
        lv = self.levels
        if not isinstance(lv, (list, tuple)) or not lv or any(
                isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < 1 for v in lv):
            raise ValueError(f"experiment_options.levels: expected a non-empty list of numbers in (0, 1), got {lv!r}")
        self.levels = sorted({float(v) for v in lv}, reverse=True)
        opts = self.optimizers
        if not isinstance(opts, Mapping) or not opts or any(not isinstance(v, Mapping) for v in opts.values()):
            raise ValueError("experiment_options.optimizers: expected a non-empty mapping label -> partial config "
                             "override, e.g. {adam: {optimizer: {name: adam, learning_rate: 1.0e-3}}}, got "
                             f"{opts!r}")
        self.optimizers = {str(k): dict(v) for k, v in opts.items()}
        problems = {cfg.problem.name: {}} if self.problems is None else self.problems
        if not isinstance(problems, Mapping) or not problems or any(
                v is not None and not isinstance(v, Mapping) for v in problems.values()):
            raise ValueError("experiment_options.problems: expected a non-empty mapping label -> partial config "
                             f"override (the syntax of compare), got {problems!r}")
        self.problems = {str(k): dict(v or {}) for k, v in problems.items()}
        labels = list(self.optimizers)
        h2h = self.head_to_head
        if h2h is None:
            h2h = [o for o in ("ssbroyden", "lbfgs", "lm", "lm_geodesic") if o in labels]
        self.head_to_head = _report.check_names(h2h, "head_to_head", labels, empty=True)
        if self.reuse is not None and not os.path.isfile(self.reuse):
            raise ValueError(f"experiment_options.reuse: {self.reuse!r} is not a file (an earlier suite's runs.jsonl)")
        # problem-level optimizer overrides are checked against every label, then the selection is applied
        _cells(cfg, self.problems, self.optimizers, self.budget_s, check_only=True)
        if self.only_optimizers is not None:
            keep = _report.check_names(self.only_optimizers, "only_optimizers", labels)
            self.optimizers = {o: self.optimizers[o] for o in labels if o in keep}
            self.head_to_head = [o for o in self.head_to_head if o in keep]
        if self.only_problems is not None:
            keep = _report.check_names(self.only_problems, "only_problems", list(self.problems))
            self.problems = {p: v for p, v in self.problems.items() if p in keep}
        self.cells, self.meta = _cells(cfg, self.problems, self.optimizers, self.budget_s)


def _cells(cfg: Any, problems: Mapping[str, dict], optimizers: Mapping[str, dict], budget_s: float | None,
           check_only: bool = False):
    """One validated single-run config per (problem, optimizer), and each problem's benchmark settings
    (``check_only``: only the labels of the problem-level optimizer overrides are checked; returns None)."""
    base = _config.to_dict(cfg)
    base.update(experiment="train", experiment_options={}, compare=None)
    base["train"] = {**base["train"], "stages": None, "checkpoint_every": None}
    cells: dict[str, dict[str, Any]] = {}
    meta: dict[str, dict] = {}
    for p, entry in problems.items():
        where = f"experiment_options.problems.{p}"
        override = {k: v for k, v in entry.items() if k not in _PROBLEM_KEYS}
        per_opt = entry.get("optimizers") or {}
        if not check_only and isinstance(per_opt, Mapping):  # checked on every label first; drop unselected ones
            per_opt = {k: v for k, v in per_opt.items() if k in optimizers}
        if not isinstance(per_opt, Mapping) or any(k not in optimizers for k in per_opt) or any(
                not isinstance(v, Mapping) for v in per_opt.values()):
            raise ValueError(f"{where}.optimizers: expected a mapping optimizer label -> partial config override, "
                             f"labels among {', '.join(optimizers)}; got {per_opt!r}")
        if check_only:
            continue
        cells[p] = {}
        for o, opt_override in optimizers.items():
            merged = _config._deep_merge(_config._deep_merge(base, override), opt_override)
            merged = _config._deep_merge(merged, per_opt.get(o) or {})
            try:
                cells[p][o] = _config.from_dict(merged, path=f"{where} / optimizers.{o}")
            except _config.ConfigError as e:
                raise ValueError(str(e)) from None
        first = next(iter(cells[p].values()))
        prob = first.problem.build()
        if prob.exact is None:
            raise ValueError(f"{where}.problem: {first.problem.name!r} has no exact or reference solution; the "
                             "benchmark measures the relative L2 error")
        target = entry.get("target")
        if target is not None and (isinstance(target, bool) or not isinstance(target, (int, float))
                                   or not 0 < target < 1):
            raise ValueError(f"{where}.target: expected a rel L2 level in (0, 1) or null, got {target!r}")
        note = entry.get("note", "")
        if not isinstance(note, str):
            raise ValueError(f"{where}.note: expected a string, got {note!r}")
        meta[p] = {
            "budget_s": _positive_or_none(entry["budget_s"], f"{where}.budget_s") if "budget_s" in entry
            else budget_s,
            "eval_grid": _check_grid(entry.get("eval_grid"), f"{where}.eval_grid", prob),
            "published": _check_published(entry.get("published"), f"{where}.published"),
            "target": None if target is None else float(target), "note": note,
        }
    return None if check_only else (cells, meta)


# ----------------------------------------------------------------------------------------------- one run


def _setup(cell: Any, seed: int, grid: list | None) -> Any:
    setup = build(dataclasses.replace(cell, seed=seed))
    if grid is not None:
        setup.metrics["rel_l2"] = pinn.rel_l2(setup.problem, setup.apply, points=_grid_points(grid))
    return setup


def _run(setup: Any, opt: Any, budget_s: float | None, levels: Sequence[float]) -> dict:
    """Train one cell for one seed until its budget or ``train.steps``; the record the report is made of."""
    tc = setup.cfg.train
    callbacks = []
    resampler = make_resampler(setup)
    if resampler is not None:
        callbacks.append(resampler)
    clock = _CpuClock()
    windows = setup.windows.count if setup.windows is not None else 1
    # with time windows the budget is shared equally: each window stops after budget_s / K of steps
    callbacks += [clock, WallTimeBudget(None if budget_s is None else budget_s / windows)]
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    common = dict(eval_every=tc.eval_every, chunk=tc.chunk, progress=False, callbacks=callbacks,
                  divergence_factor=tc.divergence_factor, label=setup.cfg.name)
    if setup.windows is not None:
        setup.optimizer = opt
        res = fit_windows(setup, tc.steps, **common)
    else:
        res = train.fit(setup.residual, setup.params, setup.batch, opt, tc.steps, metrics=setup.metrics, **common)
    elapsed = time.perf_counter() - t0
    h = res.history
    switches = [e["step"] for e in h.events if e["kind"] == "switch"]
    reached = {}
    for level in levels:
        hit = train.time_to_level(h, "rel_l2", level)
        reached[f"{level:g}"] = {"time_s": None if hit is None else hit[1], "step": None if hit is None else hit[0]}
    wall = h.last_wall_time()
    return {
        **_report.robust(h), "final_loss": _report.finite(h.final("loss")), "status": res.status,
        "message": res.message, "steps": res.step, "wall_time_s": wall, "compile_time_s": res.compile_time_s,
        # everything fit did after compiling: steps, metric evaluations and callbacks (resampling)
        "elapsed_s": max(elapsed - res.compile_time_s, wall),
        "steps_per_s": res.step / wall if wall > 0 else None, "cpu_s_per_step": clock.per_step(),
        "budget_stop": res.status == "stopped",  # the only stopping callback is the budget (of the last window)
        "load_before": load_before, "load_after": os.getloadavg()[0],
        "first_switch_step": switches[0] if switches else None, "switches": len(switches),
        "guard_fallbacks": sum(e["kind"] == "fallback" for e in h.events),
        "resamplings": sum(e["kind"] == "resample" for e in h.events),
        "reached": reached,
        "curve": {"step": list(h.eval_steps), "wall_time_s": list(h.wall_time_s), "rel_l2": list(h.metrics["rel_l2"])},
    }


def _cell_key(cell: Any, p: str, o: str, seed: int, budget_s: float | None) -> str:
    return json.dumps({"problem": p, "optimizer": o, "seed": seed, "budget_s": budget_s,
                       "config": _config.to_dict(dataclasses.replace(cell, seed=seed, name="cell", description=""))},
                      sort_keys=True, default=str)


def _normalised_key(key: str) -> str:
    """A stored key with the config's name and description blanked (they do not change a run), as ``_cell_key``."""
    k = json.loads(key)
    k["config"] = {**k["config"], "name": "cell", "description": ""}
    return json.dumps(k, sort_keys=True, default=str)


def _load_reuse(path: str | None) -> dict[str, dict]:
    if path is None:
        return {}
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                rec = json.loads(line)
                if "key" in rec:
                    out[_normalised_key(rec["key"])] = rec
    return out


# ----------------------------------------------------------------------------------------------- statistics


def _curve_at(run: dict, t: np.ndarray) -> np.ndarray:
    """rel L2 of a run at wall times ``t``: the last evaluation at or before t (NaN before the first, and after the
    run ended: a run that stopped has no value there)."""
    wt = np.asarray(run["curve"]["wall_time_s"], dtype=float)
    v = np.asarray([np.nan if x is None else x for x in run["curve"]["rel_l2"]], dtype=float)
    idx = np.searchsorted(wt, t, side="right") - 1
    out = np.where(idx >= 0, v[np.clip(idx, 0, None)], np.nan)
    return np.where(t <= wt[-1] * (1 + 1e-9) + 1e-12, out, np.nan)


def _median_curve(runs: Sequence[dict], n: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Median (and min, max) over seeds of rel L2 against wall time, on a grid up to the shortest run's end."""
    end = min(r["curve"]["wall_time_s"][-1] for r in runs)
    t = np.linspace(0.0, max(end, 1e-9), n)
    vals = np.stack([_curve_at(r, t) for r in runs])
    vals = np.where(np.isfinite(vals), vals, np.nan)
    with np.errstate(all="ignore"):
        import warnings  # noqa: PLC0415

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return t, np.nanmedian(vals, axis=0), np.nanmin(vals, axis=0), np.nanmax(vals, axis=0)


def _bench_cell_stats(runs: Sequence[dict], levels: Sequence[float]) -> dict:
    st = _cell_stats(runs, levels)
    sps = [r["steps_per_s"] for r in runs if r.get("steps_per_s")]
    st.update(
        steps_per_s_median=float(np.median(sps)) if sps else None,
        steps_median=float(np.median([r["steps"] for r in runs])),
        budget_stops=int(sum(bool(r["budget_stop"]) for r in runs)),
        statuses=sorted({r["status"] for r in runs}),
        load_median=float(np.median([0.5 * (r["load_before"] + r["load_after"]) for r in runs])),
    )
    return st


def _tightest_common(cells: Mapping[str, dict], levels: Sequence[float]) -> float | None:
    """The tightest level that some optimizer reaches on every seed (None if none)."""
    for level in sorted(levels):
        key = f"{level:g}"
        if any(st["reached"][key]["count"] == st["n"] for st in cells.values()):
            return level
    return None


def _problem_conclusion(p: str, cells: Mapping[str, dict], levels: Sequence[float], meta: Mapping) -> str:
    """One paragraph computed from the problem's table."""
    labels = list(cells)
    med = {o: cells[o]["rel_l2_median"] for o in labels}
    best = min(labels, key=lambda o: med[o])
    parts = [f"Lowest median final rel L2: **{best}** ({fmt(med[best], '.2e')}"
             + (f"; next {min((o for o in labels if o != best), key=lambda o: med[o])} "
                f"{fmt(min(med[o] for o in labels if o != best), '.2e')}" if len(labels) > 1 else "") + ")."]
    level = _tightest_common(cells, levels)
    if level is None:
        parts.append("No optimizer reaches rel L2 " + f"{max(levels):g} on every seed within the budget.")
    else:
        key = f"{level:g}"
        full = {o: cells[o]["reached"][key]["time_median_all_s"] for o in labels if
                cells[o]["reached"][key]["count"] == cells[o]["n"]}
        fast = min(full, key=full.get)
        parts.append(f"Tightest level reached on every seed by some optimizer: {level:g}; fastest there: **{fast}** "
                     f"(median {full[fast]:.1f} s of steps)" + (
                         "; also on every seed: " + ", ".join(f"{o} ({t:.1f} s)" for o, t in
                                                              sorted(full.items(), key=lambda kv: kv[1]) if o != fast)
                         if len(full) > 1 else "") + ".")
    bad = [o for o in labels if cells[o]["nonfinite_runs"] or "diverged" in cells[o]["statuses"]]
    if bad:
        parts.append("Runs ending non-finite or diverged: " + ", ".join(bad) + ".")
    pub = meta.get("published") or []
    if pub:
        ref = min(pub, key=lambda e: e["value"])
        ratio = ref["value"] / med[best] if med[best] and math.isfinite(med[best]) else None
        parts.append(f"Best published here: {ref['value']:.2e} ({ref['method']}, {ref['source']}); our best median is "
                     + (f"{ratio:.3g}× {'lower' if ratio >= 1 else 'higher'}" if ratio is not None and ratio >= 1
                        else f"{1 / ratio:.3g}× higher" if ratio else "not finite")
                     + " (different networks, point sets and hardware: see the settings).")
    target = meta.get("target")
    if target is not None:
        met = [o for o in labels if cells[o]["rel_l2_max"] <= target]
        parts.append(f"Target rel L2 ≤ {target:g} on every seed (final error): "
                     + (", ".join(met) if met else "met by no optimizer in this run") + ".")
    return " ".join(parts)


def _head_to_head(table: Mapping[str, Mapping[str, dict]], labels: Sequence[str], levels: Sequence[float]) -> list[str]:
    if len(labels) < 2:
        return []
    lines = [
        "## Head to head: " + " vs ".join(labels), "",
        "Per problem: median final rel L2 over seeds (wins: lowest median) and median wall time (s, every seed "
        "counted; ∞ when a seed never reaches it) to the tightest level that one of these optimizers reaches on every "
        "seed.", "",
        "| problem | level | " + " | ".join(f"{o}: final / time" for o in labels) + " | best |",
        "|---|---|" + "---|" * len(labels) + "---|",
    ]
    wins = dict.fromkeys(labels, 0)
    faster = dict.fromkeys(labels, 0)
    for p, cells in table.items():
        sub = {o: cells[o] for o in labels}
        level = _tightest_common(sub, levels)
        key = None if level is None else f"{level:g}"
        best = min(labels, key=lambda o: sub[o]["rel_l2_median"])
        wins[best] += 1
        times = {o: (sub[o]["reached"][key]["time_median_all_s"] if key else math.inf) for o in labels}
        if key:
            faster[min(labels, key=lambda o: times[o])] += 1
        lines.append(f"| {p} | {fmt(level, 'g')} | " + " | ".join(
            f"{fmt(sub[o]['rel_l2_median'], '.2e')} / {fmt(times[o], '.1f') if key else '—'}" for o in labels)
            + f" | {best} |")
    lines += ["", "Lowest median final error on: " + ", ".join(f"{o} {wins[o]}" for o in labels)
              + f" of {len(table)} problems; fastest to the common level on: "
              + ", ".join(f"{o} {faster[o]}" for o in labels) + ".", ""]
    return lines


# ----------------------------------------------------------------------------------------------- outputs


def _plot_time(curves: Mapping[str, Mapping[str, list[dict]]], meta: Mapping[str, dict], levels, path: str) -> str:
    """One panel per problem: median over seeds of rel L2 against the steps' wall time per optimizer (band: min-max
    over seeds), published values as dashed horizontal lines."""
    import matplotlib.pyplot as plt  # noqa: PLC0415

    probs = list(curves)
    ncol = min(len(probs), 2)
    nrow = math.ceil(len(probs) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(6.4 * ncol, 4.1 * nrow), squeeze=False)
    labels = list(next(iter(curves.values())))
    colors = plt.cm.tab10(np.arange(len(labels)) % 10)
    for ax, p in zip(axes.ravel(), probs):
        for color, o in zip(colors, labels):
            t, med, lo, hi = _median_curve(curves[p][o])
            if not np.any(np.isfinite(med)):
                continue
            ax.semilogy(t, med, color=color, lw=1.4, label=o)
            ax.fill_between(t, lo, hi, color=color, alpha=0.10)
        for i, pub in enumerate(meta[p]["published"]):
            ax.axhline(pub["value"], color="k", ls="--", lw=0.9)
            ax.annotate(f"{pub['method'] or 'published'}: {pub['value']:.1e}", (0.01, pub["value"]),
                        xycoords=("axes fraction", "data"), fontsize=6.5, va="bottom")
        if meta[p]["target"] is not None:
            ax.axhline(meta[p]["target"], color="tab:red", ls=":", lw=1.0)
        ax.set(title=p, xlabel="wall time of the steps (s, compile excluded)", ylabel="rel L2 (median over seeds)")
        ax.grid(True, which="both", alpha=0.3)
    for ax in axes.ravel()[len(probs):]:
        ax.axis("off")
    axes.ravel()[0].legend(fontsize=7, ncol=2)
    fig.suptitle("relative L2 error against wall time (band: min-max over seeds; dashed: published; red dotted: "
                 "target)", fontsize=9)
    return _report.save(fig, path)


def _write_csv(path: str, rows: Sequence[dict], levels: Sequence[float]) -> None:
    keys = ["problem", "optimizer", "seed", "rel_l2", "rel_l2_best", "rel_l2_median_last", "status", "steps",
            "budget_stop", "first_switch_step", "guard_fallbacks", "resamplings"]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(keys + ["wall_time_s", "elapsed_s", "compile_time_s", "steps_per_s", "cpu_s_per_step", "load_before",
                           "load_after"]
                   + [f"time_to_{lv:g}_s" for lv in levels] + [f"step_to_{lv:g}" for lv in levels])
        for r in rows:
            w.writerow([r[k] for k in keys] + [f"{r['wall_time_s']:.3f}", f"{r['elapsed_s']:.3f}",
                                               f"{r['compile_time_s']:.3f}", fmt(r["steps_per_s"], ".2f"),
                                               fmt(r.get("cpu_s_per_step"), ".4g"), f"{r['load_before']:.2f}",
                                               f"{r['load_after']:.2f}"]
                       + [r["reached"][f"{lv:g}"][q] for q in ("time_s", "step") for lv in levels])


def _settings_line(p: str, cell: Any, meta: Mapping, num_params: int) -> str:
    m = cell.model
    model = f"MLP {m.depth}×{m.width} {m.activation}"
    if m.periodic:
        model += f", periodic in {sorted(m.periodic)}"
    if m.fourier_features:
        model += f", {m.fourier_features} Fourier features σ={m.fourier_sigma:g}"
    if m.hard_constraint:
        model += ", hard constraint"
    pts = dict(cell.sampling.points) if cell.sampling.points else "problem default"
    extra = []
    if cell.sampling.adaptive.method != "none":
        extra.append(f"{cell.sampling.adaptive.method.upper()} every {cell.sampling.adaptive.every}")
    if cell.loss.causal:
        extra.append(f"causal {dict(cell.loss.causal)}")
    if cell.train.time_windows is not None:
        extra.append(f"{_config.time_windows_options(cell.train.time_windows)['windows']} time windows")
    opts = cell.problem.build().options
    grid = ("problem's own points" if meta["eval_grid"] is None
            else _grid_label(meta["eval_grid"], ["x", "t"] if len(meta["eval_grid"]) == 2 else
                             [f"x{i}" for i in range(len(meta["eval_grid"]))]))
    return (f"| {p} | {cell.problem.name} {opts} | {model} ({num_params} params) | {pts} {cell.sampling.method}"
            f"{'; ' + '; '.join(extra) if extra else ''} | {dict(cell.loss.weights) or '1'} | {grid} | "
            f"{fmt(meta['budget_s'], 'g')} s / {cell.train.steps} steps (eval every {cell.train.eval_every}) |")


def _target_lines(table, rows, meta) -> list[str]:
    lines = []
    for p, m in meta.items():
        if m["target"] is None:
            continue
        if not lines:
            lines += ["## Targets", "",
                      "Per seed: final / best / median of the last evaluations; steps' wall time (compile excluded); "
                      "load = 1-min load average before → after the run (2 CPU cores).", "",
                      "| problem | optimizer | target | seed | final | best | median last | met (final & median last) "
                      "| steps | steps' wall time (s) | CPU s/step | load |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            if r["problem"] != p:
                continue
            met = all(v is not None and v <= m["target"] for v in (r["rel_l2"], r["rel_l2_median_last"]))
            lines.append(f"| {p} | {r['optimizer']} | {m['target']:g} | {r['seed']} | {fmt(r['rel_l2'], '.2e')} | "
                         f"{fmt(r['rel_l2_best'], '.2e')} | {fmt(r['rel_l2_median_last'], '.2e')} | "
                         f"{'yes' if met else '**no**'} | {r['steps']} | {r['wall_time_s']:.1f} | "
                         f"{fmt(r.get('cpu_s_per_step'), '.3g')} | {r['load_before']:.1f} → {r['load_after']:.1f} |")
    return lines + ([""] if lines else [])


# ----------------------------------------------------------------------------------------------- experiment


def bench(cfg: _config.RunConfig, out_dir: str, opts: BenchOptions, *, resume: bool = False,
          progress: bool | None = None) -> dict:
    """Optimizer benchmark: every (problem, optimizer, seed) run to its wall-time budget (options:
    :class:`BenchOptions`).

    Each cell (problem p, optimizer o) is the config base ⊕ problems[p] ⊕ optimizers[o] ⊕ problems[p].optimizers[o]
    (deep merges, the syntax of ``compare``). Seed s fixes θ_0 and the collocation points (``build``: PRNGKey(s)),
    shared by all optimizers. One optimizer object per cell: ``fit`` compiles a cell once and every seed reuses it.
    A run stops when its steps' wall time passes the budget (:class:`WallTimeBudget`, checked every chunk) or after
    ``train.steps``; time to a level is the wall time of the first evaluation from which rel L2 stays at or below
    it. Per cell the report gives the median over seeds of the final, best and median-of-last errors, the time to
    each level, steps per second, the published numbers, and a conclusion computed from the table.
    """
    _report.no_resume("bench", resume)
    set_dtype(cfg.dtype)
    os.makedirs(out_dir, exist_ok=True)
    t_start = time.perf_counter()
    seeds, levels, meta = opts.seeds, opts.levels, opts.meta
    labels = list(opts.optimizers)
    reuse = _load_reuse(opts.reuse)
    rows: list[dict] = []
    curves: dict[str, dict[str, list[dict]]] = {p: {o: [] for o in labels} for p in opts.cells}
    num_params: dict[str, int] = {}
    total, done, reused = len(opts.cells) * len(labels) * len(seeds), 0, 0
    jsonl = open(os.path.join(out_dir, "runs.jsonl"), "w", encoding="utf-8")  # noqa: SIM115 - kept open for the suite
    try:
        for p, row in opts.cells.items():
            for o, cell in row.items():
                opt = None
                for s in seeds:
                    key = _cell_key(cell, p, o, s, meta[p]["budget_s"])
                    if key in reuse:
                        run = {k: v for k, v in reuse[key].items() if k != "key"}
                        reused += 1
                    else:
                        setup = _setup(cell, s, meta[p]["eval_grid"])
                        opt = setup.optimizer if opt is None else opt  # one object per cell: compiled once
                        num_params.setdefault(p, nn.num_params(setup.params))
                        run = _run(setup, opt, meta[p]["budget_s"], levels)
                        run.update(problem=p, optimizer=o, seed=s)
                    num_params.setdefault(p, run.get("num_params"))
                    run["num_params"] = num_params[p]
                    rows.append(run)
                    curves[p][o].append(run)
                    jsonl.write(json.dumps(_report.clean({**run, "key": key})) + "\n")
                    jsonl.flush()
                    done += 1
                    if progress is not False:
                        print(f"bench [{done}/{total}] {p} / {o} / seed {s}: rel L2 {fmt(run['rel_l2'], '.2e')} "
                              f"(best {fmt(run['rel_l2_best'], '.2e')}), {run['steps']} steps in "
                              f"{run['wall_time_s']:.1f} s + compile {run['compile_time_s']:.1f} s, {run['status']}, "
                              f"load {run['load_after']:.1f}", file=sys.stderr, flush=True)
    finally:
        jsonl.close()
    total_s = time.perf_counter() - t_start
    table = {p: {o: _bench_cell_stats(curves[p][o], levels) for o in labels} for p in curves}
    concl = _conclusion(table, labels, levels) if len(labels) > 1 else None
    figure = _plot_time(curves, meta, levels, os.path.join(out_dir, "bench_time.png"))
    _write_csv(os.path.join(out_dir, "runs.csv"), rows, levels)

    lv, k = [f"{x:g}" for x in levels], _report.K_LAST
    loads = [r["load_before"] for r in rows] + [r["load_after"] for r in rows]
    lines = [
        f"# {cfg.name}: optimizer benchmark", "", cfg.description or "", "",
        f"{len(labels)} optimizers × {len(opts.cells)} problems × {len(seeds)} seeds ({seeds}) = {len(rows)} runs"
        + (f" ({reused} taken from {opts.reuse})" if reused else "")
        + f", {cfg.dtype}, {total_s:.0f} s in all (compile and evaluations included); per-run budget of the steps' "
        f"wall time: {fmt(opts.budget_s, 'g')} s unless a problem sets its own. Each seed fixes θ_0 and the "
        "collocation points, shared by all optimizers. Machine: "
        f"{os.cpu_count()} CPU cores shared with other jobs; 1-min load average during the runs "
        f"{min(loads):.1f}–{max(loads):.1f} (median {np.median(loads):.1f}). Wall times are those of this machine "
        "under that load: compare optimizers within a problem, not with the published GPU times.", "",
        "## Problems", "",
        "| problem | PDE (options) | model | points | loss weights | error measured on | budget |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [_settings_line(p, next(iter(opts.cells[p].values())), meta[p], num_params.get(p) or 0)
              for p in opts.cells]
    lines += ["", "## Optimizers", ""]
    for o in labels:
        lines.append(f"- **{o}**: `{json.dumps(opts.optimizers[o], default=str)}`")
        specific = {p: opts.problems[p].get("optimizers", {}).get(o) for p in opts.problems
                    if (opts.problems[p].get("optimizers") or {}).get(o)}
        for p, v in specific.items():
            lines.append(f"  - on {p}: `{json.dumps(v, default=str)}`")
    lines += [
        "", "## Results", "",
        f"Per cell, over {len(seeds)} seeds: final rel L2 median [min – max]; best and median of the last {k} "
        f"evaluations ({_report.ROBUST_NOTE}), medians over seeds; time to rel L2 ≤ level = wall time (s, compile "
        f"excluded) of {_report.TIME_RULE}, median over the seeds that reach it [how many]; steps/s and steps: medians "
        "over seeds; stop: runs ended by the budget (others ran all their steps, or ended as noted).", "",
    ]
    header = (f"| optimizer | final rel L2 median [min – max] | best / median last {k} | "
              + " | ".join(f"≤ {x} (s)" for x in lv) + " | steps/s | steps | stop | status |")
    for p in table:
        lines += [f"### {p}", ""]
        if meta[p]["note"]:
            lines += [meta[p]["note"], ""]
        for pub in meta[p]["published"]:
            lines.append(f"- Published: rel L2 **{pub['value']:.2e}** — {pub['method']} ({pub['source']})"
                         + (f"; {pub['note']}" if pub["note"] else "") + ".")
        if meta[p]["published"]:
            lines.append("")
        lines += [header, "|---" * (7 + len(lv)) + "|"]
        for o in labels:
            st = table[p][o]
            times = " | ".join(f"{fmt(st['reached'][x]['time_median_s'], '.1f')} [{st['reached'][x]['count']}]"
                               for x in lv)
            status = ", ".join(st["statuses"])
            lines.append(
                f"| {o} | {fmt(st['rel_l2_median'], '.2e')} [{fmt(st['rel_l2_min'], '.2e')} – "
                f"{fmt(st['rel_l2_max'], '.2e')}] | {fmt(st['rel_l2_best_median'], '.2e')} / "
                f"{fmt(st['rel_l2_median_last_median'], '.2e')} | {times} | {fmt(st['steps_per_s_median'], '.1f')} | "
                f"{st['steps_median']:.0f} | {st['budget_stops']}/{st['n']} | {status} |")
        lines += ["", "**Conclusion.** " + _problem_conclusion(p, table[p], levels, meta[p]), ""]
    lines += _target_lines(table, rows, meta)
    lines += _head_to_head(table, opts.head_to_head, levels)
    if concl is not None:
        per = concl["per_criterion"]
        lines += [
            "## Overall", "",
            "Mean rank over problems of the median final rel L2 (1 = best; ties averaged): "
            + ", ".join(f"{o} {per[o]['mean_rank']:.2f}" for o in concl["order"]) + ".",
        ]
        if concl["fastest"] is not None:
            by_time = sorted(labels, key=lambda o: (per[o]["mean_time_rank"], per[o]["mean_rank"]))
            lines.append("Mean rank by median wall time to the tightest level some optimizer reaches on every seed: "
                         + ", ".join(f"{o} {per[o]['mean_time_rank']:.2f}" for o in by_time) + ".")
        lines.append("")
    lines += [f"![rel L2 vs wall time]({os.path.basename(figure)})", "",
              "Per-run numbers: [runs.csv](runs.csv); curves and everything else: [metrics.json](metrics.json).", ""]
    summary = {
        "name": cfg.name, "experiment": "bench",
        "status": "completed" if all(r["status"] in ("completed", "stopped") for r in rows) else "nonfinite",
        "message": f"{len(labels)} optimizers x {len(opts.cells)} problems x {len(seeds)} seeds",
        "steps": int(sum(r["steps"] for r in rows)), "wall_time_s": float(sum(r["wall_time_s"] for r in rows)),
        "compile_time_s": float(sum(r["compile_time_s"] for r in rows)), "total_time_s": total_s, "rel_l2": None,
        "final_loss": None, "levels": levels, "seeds": seeds, "optimizers": opts.optimizers,
        "problems": {p: {**meta[p], "num_params": num_params.get(p)} for p in meta}, "table": table,
        "conclusion": concl, "runs": rows, "figure": figure, **_report.environment(cfg),
    }
    if len(rows) == 1:
        summary["rel_l2"] = rows[0]["rel_l2"]
    return _report.write_outputs(out_dir, cfg, lines, summary)


register("bench", bench, BenchOptions)
