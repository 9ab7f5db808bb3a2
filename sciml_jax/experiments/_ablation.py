"""Switching-criteria ablation of the hybrid optimizer (first -> second with a divergence guard): every switch
criterion x every problem x every seed is trained, and a report compares final errors, time to accuracy levels and
divergences caught by the guard. Writes report.md, ablation.png (error vs step), ablation_time.png (error vs wall
time), metrics.json and runs.csv into ``out_dir``."""

from __future__ import annotations

import copy
import csv
import dataclasses
import json
import math
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.stats import rankdata

from .. import config as _config
from .. import nn, optim, train
from . import _report
from ._report import fmt
from ._train import build, register, set_dtype

# ----------------------------------------------------------------------------------------------- options


def _criterion_label(spec: Mapping[str, Any]) -> str:
    parts = []
    for name, opts in spec.items():
        if name != "mode" and isinstance(opts, Mapping):
            inner = ",".join(f"{k}={v}" for k, v in opts.items())
            parts.append(f"{name}({inner})" if inner else name)
        elif name != "mode":
            parts.append(f"{name}={opts}")
    return f" {spec.get('mode', 'any')} ".join(parts)


@dataclasses.dataclass
class AblationOptions(_report.Options):
    """``experiment_options`` of switch_ablation.

    criteria: list of ``{label, switch}`` with ``switch`` an ``optimizer.switch`` mapping (``{after_steps: 500}``,
        ``{plateau: {...}}``, ``{grad_norm: {...}}``, ``{curvature: {...}}``, combinations with ``mode``); required.
    problems: run name -> partial override of the config's sections, the syntax of ``compare`` (e.g. ``{"heat":
        {problem: {name: heat_1d}, sampling: {points: {...}}, train: {steps: 4000}}}``; default: the config's
        problem only). Each problem's config is the base deep-merged with its override.
    seeds: number of seeds (cfg.seed, cfg.seed + 1, ...) or a list of distinct integers >= 0.
    levels: rel L2 levels for the time-to-accuracy columns, numbers in (0, 1).
    """

    criteria: list | None = None
    problems: dict | None = None
    seeds: Any = 3
    levels: list = dataclasses.field(default_factory=lambda: [1e-3, 1e-5])

    def check(self, cfg: Any) -> None:
        if cfg.optimizer.name != "hybrid":
            raise ValueError("optimizer.name: the switch_ablation experiment needs the hybrid optimizer (its first/"
                             f"second/guard options are shared by all runs), got {cfg.optimizer.name!r}")
        self.criteria = _check_criteria(self.criteria)
        self.seeds = _check_seeds(self.seeds, cfg.seed)
        lv = self.levels
        if not isinstance(lv, (list, tuple)) or not lv or any(
                isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < 1 for v in lv):
            raise ValueError(f"experiment_options.levels: expected a non-empty list of numbers in (0, 1), got {lv!r}")
        self.levels = sorted((float(v) for v in lv), reverse=True)
        self.problems = _problem_configs(cfg, self.problems)


def _check_criteria(criteria: Any) -> list[dict]:
    """``[{label?, switch: {...}}, ...]`` (or bare switch mappings) -> [{label, switch}], each buildable."""
    if not isinstance(criteria, (list, tuple)) or not criteria:
        raise ValueError("experiment_options.criteria: expected a non-empty list of {label, switch} mappings, e.g. "
                         f"[{{label: fixed-1000, switch: {{after_steps: 1000}}}}], got {criteria!r}")
    out, seen = [], set()
    for i, entry in enumerate(criteria):
        where = f"experiment_options.criteria[{i}]"
        if not isinstance(entry, Mapping):
            raise ValueError(f"{where}: expected a mapping, got {entry!r}")
        if "switch" in entry and set(entry) - {"label", "switch"}:
            raise ValueError(f"{where}: unknown key(s) {sorted(set(entry) - {'label', 'switch'})}; allowed: label, switch")
        spec = entry.get("switch", entry)
        try:
            optim.criterion(copy.deepcopy(dict(spec)) if isinstance(spec, Mapping) else spec)
        except (ValueError, TypeError) as e:
            raise ValueError(f"{where}: {e}") from None
        label = str(entry.get("label") or _criterion_label(spec))
        if label in seen:
            raise ValueError(f"{where}: duplicate label {label!r}; labels must be unique")
        seen.add(label)
        out.append({"label": label, "switch": dict(spec)})
    return out


def _check_seeds(seeds: Any, base: int) -> list[int]:
    if isinstance(seeds, int) and not isinstance(seeds, bool) and seeds >= 1:
        return [base + i for i in range(seeds)]
    if isinstance(seeds, (list, tuple)) and seeds and len(set(seeds)) == len(seeds) and all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        return [int(s) for s in seeds]
    raise ValueError(
        f"experiment_options.seeds: expected a positive integer or a list of distinct integers >= 0, got {seeds!r}")


def _problem_configs(cfg: Any, problems: Any) -> dict[str, Any]:
    """One validated single-run config per problem: the base config (experiment ``train``, no stages or
    checkpoints) deep-merged with the problem's override, exactly as ``compare`` builds its runs."""
    problems = {cfg.problem.name: {}} if problems is None else problems
    if not isinstance(problems, Mapping) or not problems or any(
            v is not None and not isinstance(v, Mapping) for v in problems.values()):
        raise ValueError("experiment_options.problems: expected a non-empty mapping run name -> partial config "
                         f"override (the syntax of compare), got {problems!r}")
    base = _config.to_dict(cfg)
    base.update(experiment="train", experiment_options={}, compare={str(k): v for k, v in problems.items()})
    base["train"] = {**base["train"], "stages": None, "checkpoint_every": None}
    try:
        runs = _config.from_dict(base).runs()
    except _config.ConfigError as e:
        raise ValueError(str(e).replace("compare.", "experiment_options.problems.", 1)) from None
    for name, run in runs.items():
        if run.optimizer.name != "hybrid":
            raise ValueError(f"experiment_options.problems.{name}.optimizer.name: the ablation needs the hybrid "
                             f"optimizer, got {run.optimizer.name!r}")
        if run.problem.build().exact is None:
            raise ValueError(f"experiment_options.problems.{name}.problem: {run.problem.name!r} has no exact "
                             "solution; the ablation ranks criteria by the relative L2 error")
    return runs


# ----------------------------------------------------------------------------------------------- runs and statistics


def _one_run(setup: Any, opt: Any, tc: Any, levels: Sequence[float], progress: bool | None) -> dict:
    res = train.fit(setup.residual, setup.params, setup.batch, opt, tc.steps, metrics=setup.metrics,
                    eval_every=tc.eval_every, chunk=tc.chunk, progress=False if progress is None else progress)
    h = res.history
    switches = [e["step"] for e in h.events if e["kind"] == "switch"]
    reached = {}
    for level in levels:
        hit = train.time_to_level(h, "rel_l2", level)
        reached[f"{level:g}"] = {"time_s": None if hit is None else hit[1], "step": None if hit is None else hit[0]}
    return {
        **_report.robust(h), "final_loss": _report.finite(h.final("loss")), "status": res.status,
        "message": res.message, "steps": res.step, "wall_time_s": h.last_wall_time(),
        "compile_time_s": res.compile_time_s, "first_switch_step": switches[0] if switches else None,
        "switches": len(switches), "guard_fallbacks": sum(e["kind"] == "fallback" for e in h.events),
        "reached": reached, "events": h.events,
        "curve": {"step": list(h.eval_steps), "wall_time_s": list(h.wall_time_s), "rel_l2": list(h.metrics["rel_l2"])},
    }


def _median(values: Sequence[Any]) -> float:
    return float(np.median([np.inf if v is None else v for v in values]))


def _cell_stats(runs: Sequence[dict], levels: Sequence[float]) -> dict:
    """Median and spread over seeds of one (problem, criterion) cell. A non-finite final error counts as +inf."""
    rel = np.array([np.inf if r["rel_l2"] is None else r["rel_l2"] for r in runs], dtype=float)
    sw = [r["first_switch_step"] for r in runs if r["first_switch_step"] is not None]
    out = {
        "n": len(runs), "rel_l2_median": float(np.median(rel)), "rel_l2_min": float(np.min(rel)),
        "rel_l2_max": float(np.max(rel)),
        "rel_l2_best_median": _median([r.get("rel_l2_best") for r in runs]),
        "rel_l2_median_last_median": _median([r.get("rel_l2_median_last") for r in runs]),
        "guard_fallbacks": int(sum(r["guard_fallbacks"] for r in runs)),
        "nonfinite_runs": int(sum(r["status"] == "nonfinite" for r in runs)),
        "switched_runs": int(sum(r["switches"] > 0 for r in runs)),
        "switch_step_median": float(np.median(sw)) if sw else None,
        "wall_time_median_s": float(np.median([r["wall_time_s"] for r in runs])), "reached": {},
    }
    for level in levels:
        key = f"{level:g}"
        all_times = [np.inf if r["reached"][key]["time_s"] is None else r["reached"][key]["time_s"] for r in runs]
        times = [t for t in all_times if np.isfinite(t)]
        out["reached"][key] = {
            "count": len(times), "time_median_s": float(np.median(times)) if times else None,
            # over every seed, a seed that never reaches the level counting as +inf (used for the time ranking)
            "time_median_all_s": float(np.median(all_times)),
            "time_min_s": float(np.min(times)) if times else None, "time_max_s": float(np.max(times)) if times else None,
        }
    return out


def _conclusion(table: Mapping[str, Mapping[str, dict]], crit_labels: Sequence[str], levels: Sequence[float]) -> dict:
    """Robustness summary computed from the table.

    Per problem, criteria are ranked by median final rel L2 over seeds (1 = best; average ranks for ties, +inf
    last). A criterion's robustness is its mean rank over problems; its worst case is the largest ratio, over
    problems, of its *worst seed's* final rel L2 to the best median on that problem. The most robust criterion has
    the lowest mean rank, ties broken by the worst case. A second ranking by wall time to accuracy names the fastest
    criterion (a fixed step budget favours switching early, wall time does not): per problem the target is the
    tightest level that at least one criterion reaches on every seed, criteria ranked by their median time to it
    over seeds (a seed that never reaches it counts as +inf); problems where no criterion reaches any level on every
    seed are left out of that ranking.
    """
    probs = list(table)
    med = np.array([[table[p][c]["rel_l2_median"] for c in crit_labels] for p in probs])  # (problems, criteria)
    worst = np.array([[table[p][c]["rel_l2_max"] for c in crit_labels] for p in probs])
    ranks = np.stack([rankdata(row, method="average") for row in med])
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(np.isfinite(worst), worst / np.min(med, axis=1, keepdims=True), np.inf)
    mean_rank, worst_ratio = ranks.mean(axis=0), ratio.max(axis=0)
    time_ranks, time_levels = {}, {}
    for p, cells in table.items():
        for level in sorted(levels):  # tightest first
            key = f"{level:g}"
            if any(cells[c]["reached"][key]["count"] == cells[c]["n"] for c in crit_labels):
                times = [cells[c]["reached"][key]["time_median_all_s"] for c in crit_labels]
                time_ranks[p], time_levels[p] = dict(zip(crit_labels, rankdata(times, method="average"))), level
                break
    tight = f"{levels[-1]:g}"
    per = {c: {
        "mean_rank": float(mean_rank[j]),
        "worst_ratio_to_best": float(worst_ratio[j]) if np.isfinite(worst_ratio[j]) else None,
        "best_on": [p for i, p in enumerate(probs) if ranks[i, j] == 1.0],
        "ranks": {p: float(ranks[i, j]) for i, p in enumerate(probs)},
        f"runs_reaching_{tight}": int(sum(table[p][c]["reached"][tight]["count"] for p in probs)),
        "guard_fallbacks": int(sum(table[p][c]["guard_fallbacks"] for p in probs)),
        "time_ranks": {p: float(r[c]) for p, r in time_ranks.items()},
        "mean_time_rank": float(np.mean([r[c] for r in time_ranks.values()])) if time_ranks else None,
    } for j, c in enumerate(crit_labels)}
    order = [crit_labels[j] for j in sorted(range(len(crit_labels)), key=lambda j: (mean_rank[j], worst_ratio[j]))]
    fastest = min(crit_labels, key=lambda c: (per[c]["mean_time_rank"], per[c]["mean_rank"])) if time_ranks else None
    return {"order": order, "most_robust": order[0], "smallest_worst_case": crit_labels[int(np.argmin(worst_ratio))],
            "fastest": fastest, "time_levels": time_levels, "per_criterion": per}


def _conclusion_lines(concl: dict, n_problems: int, n_seeds: int, levels: Sequence[float]) -> list[str]:
    per, tight = concl["per_criterion"], f"{levels[-1]:g}"

    def wr(c):
        v = per[c]["worst_ratio_to_best"]
        return "∞ (a run ended non-finite)" if v is None else f"{v:.3g}"

    best, safe, worst = concl["most_robust"], concl["smallest_worst_case"], concl["order"][-1]
    lines = [
        f"- **Most robust (lowest mean rank of the median final rel L2 over {n_problems} problems): {best}**, mean "
        f"rank {per[best]['mean_rank']:.2f}; best on {', '.join(per[best]['best_on']) or 'no problem'}; its worst "
        f"seed is at most {wr(best)}× the best median on any problem; {per[best][f'runs_reaching_{tight}']} of "
        f"{n_problems * n_seeds} runs reach rel L2 {tight}.",
    ]
    if safe != best:
        lines.append(f"- Smallest worst case: {safe} (worst seed ≤ {wr(safe)}× the best median on every problem; mean "
                     f"rank {per[safe]['mean_rank']:.2f}).")
    lines.append(f"- Least robust: {worst} (mean rank {per[worst]['mean_rank']:.2f}, worst case {wr(worst)}×).")
    if concl["fastest"] is not None:
        fast = concl["fastest"]
        by_time = sorted(concl["order"], key=lambda c: (per[c]["mean_time_rank"], per[c]["mean_rank"]))
        lines.append(
            f"- **Fastest to accuracy: {fast}**, mean rank {per[fast]['mean_time_rank']:.2f} by median wall time to the "
            "tightest level some criterion reaches on every seed ("
            + ", ".join(f"{p}: {lv:g}" for p, lv in concl["time_levels"].items()) + "); full order: "
            + ", ".join(f"{c} ({per[c]['mean_time_rank']:.2f})" for c in by_time) + ".")
    riskiest = max(concl["order"], key=lambda c: math.inf if per[c]["worst_ratio_to_best"] is None
                   else per[c]["worst_ratio_to_best"])
    if riskiest != worst:
        lines.append(f"- Largest worst case: {riskiest} (worst seed {wr(riskiest)}× the best median on some problem).")
    lines.append("- Full order by mean rank: " + ", ".join(f"{c} ({per[c]['mean_rank']:.2f})" for c in concl["order"]) + ".")
    guarded = {c: per[c]["guard_fallbacks"] for c in concl["order"] if per[c]["guard_fallbacks"]}
    lines.append("- Divergence-guard rollbacks: "
                 + (", ".join(f"{c}: {n}" for c, n in guarded.items()) if guarded else "none in any run") + ".")
    return lines


# ----------------------------------------------------------------------------------------------- outputs


def _plot(curves: Mapping[str, Mapping[str, list[dict]]], crit_labels: Sequence[str], levels, path: str,
          x: str = "step") -> str:
    """One panel per problem: median over seeds of rel L2 per criterion (band: min-max over seeds) against the step
    (``x="step"``) or the wall time (``x="time"``: at each evaluation, the median over seeds of its wall time)."""
    import matplotlib.pyplot as plt  # noqa: PLC0415

    probs = list(curves)
    ncol = min(len(probs), 2)
    nrow = math.ceil(len(probs) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(6.2 * ncol, 4.0 * nrow), squeeze=False)
    colors = plt.cm.tab10(np.arange(len(crit_labels)) % 10)
    for ax, p in zip(axes.ravel(), probs):
        for color, c in zip(colors, crit_labels):
            runs = curves[p][c]
            n = min(len(r["curve"]["rel_l2"]) for r in runs)
            steps = (np.median([r["curve"]["wall_time_s"][:n] for r in runs], axis=0) if x == "time"
                     else np.asarray(runs[0]["curve"]["step"][:n]))
            vals = np.array([r["curve"]["rel_l2"][:n] for r in runs], dtype=float)
            vals = np.where(np.isfinite(vals), vals, np.nan)
            med = np.nanmedian(vals, axis=0)
            ax.semilogy(steps, med, color=color, lw=1.4, label=c)
            ax.fill_between(steps, np.nanmin(vals, axis=0), np.nanmax(vals, axis=0), color=color, alpha=0.12)
            sw = [r["first_switch_step"] for r in runs if r["first_switch_step"] is not None]
            if sw and x == "step":
                ax.plot([np.median(sw)], [np.interp(np.median(sw), steps, med)], "o", color=color, ms=5, mec="k", mew=0.6)
        for level in levels:
            ax.axhline(level, color="gray", ls=":", lw=0.8)
        ax.set(title=p, xlabel="step" if x == "step" else "wall time (s, compile excluded; median over seeds)",
               ylabel="rel L2 (median over seeds; band min-max)")
        ax.grid(True, which="both", alpha=0.3)
    for ax in axes.ravel()[len(probs):]:
        ax.axis("off")
    axes.ravel()[0].legend(fontsize=7)
    fig.suptitle("hybrid switch criteria: relative L2 error"
                 + (" (dots: median first switch step)" if x == "step" else " against wall time"))
    return _report.save(fig, path)


def _write_csv(path: str, rows: Sequence[dict], levels: Sequence[float]) -> None:
    keys = ["problem", "criterion", "seed", "rel_l2", "rel_l2_best", "rel_l2_median_last", "status",
            "first_switch_step", "switches", "guard_fallbacks"]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(keys + ["wall_time_s", "compile_time_s"] + [f"time_to_{lv:g}_s" for lv in levels]
                   + [f"step_to_{lv:g}" for lv in levels])
        for r in rows:
            w.writerow([r[k] for k in keys] + [f"{r['wall_time_s']:.3f}", f"{r['compile_time_s']:.3f}"]
                       + [r["reached"][f"{lv:g}"][q] for q in ("time_s", "step") for lv in levels])


# ----------------------------------------------------------------------------------------------- experiment


def switch_ablation(cfg: _config.RunConfig, out_dir: str, opts: AblationOptions, *, resume: bool = False,
                    progress: bool | None = None) -> dict:
    """Ablation of hybrid switching criteria over several problems and seeds (options: :class:`AblationOptions`).

    Every cell (problem p, criterion c, seed s) trains the config's ``hybrid`` optimizer (its ``first``, ``second``
    and guard options are shared) with ``switch`` = c on problem p, from the model and points of seed s (``build``:
    PRNGKey(s) split into model and point keys, so all criteria of a seed start from the same θ_0 and points). One
    optimizer object per (problem, criterion): ``fit`` compiles each cell once and every seed reuses it. Recorded
    per run: final relative L2 error (and the best and the median of the last evaluations), wall time (compile
    excluded) and step at which rel L2 reaches each level for good, the first switch step, and divergence-guard
    rollbacks (``fallback`` events of the history). The conclusion ranks the criteria (:func:`_conclusion`).
    """
    _report.no_resume("switch_ablation", resume)
    set_dtype(cfg.dtype)
    os.makedirs(out_dir, exist_ok=True)
    t_start = time.perf_counter()
    crits, seeds, levels = opts.criteria, opts.seeds, opts.levels
    crit_labels = [c["label"] for c in crits]
    rows: list[dict] = []
    curves: dict[str, dict[str, list[dict]]] = {p: {c: [] for c in crit_labels} for p in opts.problems}
    problem_info = {}
    for p, sub in opts.problems.items():
        setups = {s: build(dataclasses.replace(sub, seed=s)) for s in seeds}
        for c in crits:
            opt = optim.get("hybrid", **{**sub.optimizer.options, "switch": copy.deepcopy(c["switch"])})
            for s in seeds:
                run = _one_run(setups[s], opt, sub.train, levels, progress)
                run.update(problem=p, criterion=c["label"], seed=s)
                rows.append(run)
                curves[p][c["label"]].append(run)
        problem_info[p] = {
            "name": sub.problem.name, "options": dict(sub.problem.options),
            "model": f"MLP width {sub.model.width}, depth {sub.model.depth}, {sub.model.activation}",
            "num_params": nn.num_params(setups[seeds[0]].params),
            "points": dict(sub.sampling.points) if sub.sampling.points else "problem default",
            "weights": dict(sub.loss.weights), "steps": sub.train.steps, "eval_every": sub.train.eval_every,
        }
    total = time.perf_counter() - t_start
    table = {p: {c: _cell_stats(curves[p][c], levels) for c in crit_labels} for p in curves}
    concl = _conclusion(table, crit_labels, levels)
    fig = _plot(curves, crit_labels, levels, os.path.join(out_dir, "ablation.png"))
    fig_time = _plot(curves, crit_labels, levels, os.path.join(out_dir, "ablation_time.png"), x="time")
    _write_csv(os.path.join(out_dir, "runs.csv"), rows, levels)

    o, lv, k = cfg.optimizer.options, [f"{x:g}" for x in levels], _report.K_LAST
    lines = [
        f"# {cfg.name}: switching criteria of the hybrid optimizer", "", cfg.description or "", "",
        f"Hybrid first = {o.get('first')}, second = {o.get('second')}, guard_factor = {o.get('guard_factor', 10.0)}, "
        f"fallback_steps = {o.get('fallback_steps', 500)}, max_fallbacks = {o.get('max_fallbacks', 3)}; "
        f"{len(crits)} criteria × {len(opts.problems)} problems × {len(seeds)} seeds ({seeds}) = {len(rows)} runs, "
        f"{cfg.dtype}, {total:.0f} s in all (compile included). Each seed fixes θ_0 and the collocation points, "
        "shared by all criteria.", "", "## Problems", "",
        "| problem | PDE (options) | model | points | loss weights | steps (eval every) |", "|---|---|---|---|---|---|",
    ]
    lines += [f"| {p} | {i['name']} {i['options']} | {i['model']} ({i['num_params']} params) | {i['points']} | "
              f"{i['weights'] or '1'} | {i['steps']} ({i['eval_every']}) |" for p, i in problem_info.items()]
    lines += ["", "## Criteria", ""] + [f"- **{c['label']}**: `{json.dumps(c['switch'])}`" for c in crits]
    lines += [
        "", "## Results", "",
        f"Per cell, over {len(seeds)} seeds: final rel L2 as median [min – max]; best and median of the last {k} "
        f"evaluations ({_report.ROBUST_NOTE}), medians over seeds; time to rel L2 ≤ level = wall time (s, compile "
        f"excluded) of {_report.TIME_RULE}, median over the seeds that reach it, with their count (— if none); switch "
        "= median first switch step (never: the criterion did not fire and the first optimizer ran throughout); guard "
        "= divergence-guard rollbacks summed over seeds (non-finite runs stopped by `fit` in parentheses when any). "
        "Timings share 2 CPU cores with other work: compare within a problem, not in absolute terms.", "",
    ]
    header = (f"| criterion | final rel L2 median [min – max] | best / median last {k} | "
              + " | ".join(f"time to {x} (s) [reached]" for x in lv) + " | switch step | guard | rank (error) | rank (time) |")
    for p in table:
        target = concl["time_levels"].get(p)
        lines += [f"### {p}", "", "rank (time): by median wall time to rel L2 "
                  + (f"{target:g}" if target is not None else "— (no criterion reaches any level on every seed)"),
                  "", header, "|---" * (7 + len(lv)) + "|"]
        for c in crit_labels:
            st = table[p][c]
            times = " | ".join(f"{fmt(st['reached'][x]['time_median_s'], '.2f')} [{st['reached'][x]['count']}/{st['n']}]"
                               for x in lv)
            guard = str(st["guard_fallbacks"]) + (f" ({st['nonfinite_runs']} non-finite)" if st["nonfinite_runs"] else "")
            sw = "never" if st["switch_step_median"] is None else f"{st['switch_step_median']:.0f}"
            sw += f" ({st['switched_runs']}/{st['n']})" if st["switched_runs"] not in (0, st["n"]) else ""
            lines.append(
                f"| {c} | {fmt(st['rel_l2_median'], '.2e')} [{fmt(st['rel_l2_min'], '.2e')} – "
                f"{fmt(st['rel_l2_max'], '.2e')}] | {fmt(st['rel_l2_best_median'], '.2e')} / "
                f"{fmt(st['rel_l2_median_last_median'], '.2e')} | {times} | {sw} | {guard} | "
                f"{concl['per_criterion'][c]['ranks'][p]:g} | {fmt(concl['per_criterion'][c]['time_ranks'].get(p), 'g')} |")
        lines.append("")
    lines += [
        "## Conclusion", "",
        "Computed from the table above (rank 1 = lowest median final rel L2 on that problem; worst case = the "
        "criterion's worst seed divided by the best median on the same problem, maximised over problems):", "",
        *_conclusion_lines(concl, len(opts.problems), len(seeds), levels), "",
        f"![rel L2 vs step per criterion]({os.path.basename(fig)})", "",
        f"![rel L2 vs wall time per criterion]({os.path.basename(fig_time)})", "",
        "Per-run numbers: [runs.csv](runs.csv); everything: [metrics.json](metrics.json).", "",
    ]
    summary = {
        "name": cfg.name, "experiment": "switch_ablation",
        "status": "completed" if all(r["status"] == "completed" for r in rows) else "nonfinite",
        "message": f"{len(crits)} criteria x {len(opts.problems)} problems x {len(seeds)} seeds",
        "steps": int(sum(r["steps"] for r in rows)), "wall_time_s": float(sum(r["wall_time_s"] for r in rows)),
        "compile_time_s": float(sum(r["compile_time_s"] for r in rows)), "total_time_s": total, "rel_l2": None,
        "final_loss": None, "levels": levels, "seeds": seeds, "criteria": crits, "problems": problem_info,
        "table": table, "conclusion": concl, "runs": rows, "figure": fig, "figure_time": fig_time,
        **_report.environment(cfg),
    }
    return _report.write_outputs(out_dir, cfg, lines, summary)


register("switch_ablation", switch_ablation, AblationOptions)
