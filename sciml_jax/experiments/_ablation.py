"""Switching-criteria ablation of the hybrid optimizer (first -> second with a divergence guard): every switch
criterion x every problem x every seed is trained, and a report compares final errors, time to accuracy levels and
divergences caught by the guard. Writes report.md, ablation.png (error vs step), ablation_time.png (error vs wall
time), metrics.json and runs.csv into ``out_dir``."""

from __future__ import annotations

import contextlib
import copy
import csv
import json
import math
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np
import yaml

from .. import config as _config
from .. import optim, train
from ._train import build, register, set_dtype
from . import _report

# ----------------------------------------------------------------------------------------------- option parsing

_PROBLEM_KEYS = ("label", "name", "options", "model", "points", "weights", "steps", "eval_every")


def _check_levels(levels: Any) -> tuple[float, ...]:
    if not isinstance(levels, (list, tuple)) or not levels:
        raise ValueError(f"experiment_options.levels: expected a non-empty list of numbers in (0, 1), got {levels!r}")
    out = []
    for v in levels:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < 1:
            raise ValueError(f"experiment_options.levels: expected numbers in (0, 1), got {v!r} in {levels!r}")
        out.append(float(v))
    return tuple(sorted(out, reverse=True))


def _criterion_label(spec: Mapping[str, Any]) -> str:
    parts = []
    for name, opts in spec.items():
        if name == "mode":
            continue
        if isinstance(opts, Mapping):
            inner = ",".join(f"{k}={v}" for k, v in opts.items())
            parts.append(f"{name}({inner})" if inner else name)
        else:
            parts.append(f"{name}={opts}")
    return (" " + str(spec.get("mode", "any")) + " ").join(parts)


def _check_criteria(criteria: Any) -> list[dict]:
    """``[{label?, switch: {...}}, ...]`` (or bare switch mappings) -> [{label, switch}], each buildable."""
    if not isinstance(criteria, (list, tuple)) or len(criteria) < 1:
        raise ValueError(
            "experiment_options.criteria: expected a non-empty list of {label, switch} mappings, e.g. "
            f"[{{label: fixed-1000, switch: {{after_steps: 1000}}}}], got {criteria!r}"
        )
    out, seen = [], set()
    for i, entry in enumerate(criteria):
        if not isinstance(entry, Mapping):
            raise ValueError(f"experiment_options.criteria[{i}]: expected a mapping, got {entry!r}")
        if "switch" in entry:
            extra = set(entry) - {"label", "switch"}
            if extra:
                raise ValueError(
                    f"experiment_options.criteria[{i}]: unknown key(s) {sorted(extra)}; allowed: label, switch"
                )
            spec = entry["switch"]
        else:
            spec = entry
        try:
            optim.criterion(copy.deepcopy(dict(spec)) if isinstance(spec, Mapping) else spec)
        except (ValueError, TypeError) as e:
            raise ValueError(f"experiment_options.criteria[{i}]: {e}") from None
        label = str(entry.get("label") or _criterion_label(spec))
        if label in seen:
            raise ValueError(f"experiment_options.criteria[{i}]: duplicate label {label!r}; labels must be unique")
        seen.add(label)
        out.append({"label": label, "switch": dict(spec)})
    return out


def _check_problems(problems_opt: Any, cfg: _config.RunConfig) -> list[dict]:
    """``[{name, label?, options?, model?, points?, weights?, steps?, eval_every?}, ...]``; missing entries
    default to the config's model / sampling.points / loss.weights / train section."""
    if problems_opt is None:
        problems_opt = [{"name": cfg.problem.name, "options": dict(cfg.problem.options)}]
    if not isinstance(problems_opt, (list, tuple)) or not problems_opt:
        raise ValueError(
            f"experiment_options.problems: expected a non-empty list of problem mappings, got {problems_opt!r}"
        )
    out, seen = [], set()
    for i, entry in enumerate(problems_opt):
        where = f"experiment_options.problems[{i}]"
        if not isinstance(entry, Mapping) or "name" not in entry:
            raise ValueError(f"{where}: expected a mapping with at least a name, got {entry!r}")
        extra = set(entry) - set(_PROBLEM_KEYS)
        if extra:
            raise ValueError(f"{where}: unknown key(s) {sorted(extra)}; allowed: {', '.join(_PROBLEM_KEYS)}")
        label = str(entry.get("label") or entry["name"])
        if label in seen:
            raise ValueError(f"{where}.label: duplicate label {label!r}; labels must be unique")
        seen.add(label)
        out.append({"label": label, **{k: copy.deepcopy(v) for k, v in entry.items() if k != "label"}})
    return out


def _check_seeds(seeds: Any, base: int) -> list[int]:
    if isinstance(seeds, bool):
        raise ValueError(f"experiment_options.seeds: expected a positive integer or a list of integers, got {seeds!r}")
    if isinstance(seeds, (int, np.integer)):
        if seeds < 1:
            raise ValueError(f"experiment_options.seeds: expected a positive integer, got {seeds!r}")
        return [base + i for i in range(int(seeds))]
    if (
        isinstance(seeds, (list, tuple))
        and seeds
        and all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 0 for s in seeds)
        and len(set(seeds)) == len(seeds)
    ):
        return [int(s) for s in seeds]
    raise ValueError(
        f"experiment_options.seeds: expected a positive integer or a list of distinct integers >= 0, got {seeds!r}"
    )


def _run_config(cfg: _config.RunConfig, prob: Mapping[str, Any], crit: Mapping[str, Any], seed: int, where: str):
    """The single-run config of one (problem, criterion, seed) cell: the base config with its overrides."""
    if cfg.optimizer.name != "hybrid":
        raise ValueError(
            f"optimizer.name: the switch_ablation experiment needs the hybrid optimizer (its first/second/guard "
            f"options are shared by all runs), got {cfg.optimizer.name!r}"
        )
    d = _config.to_dict(cfg)
    d.update(experiment="train", experiment_options={}, compare=None, seed=int(seed), name=f"{cfg.name}/{where}")
    d["problem"] = {"name": prob["name"], **dict(prob.get("options") or {})}
    if "model" in prob:
        d["model"] = {**d["model"], **dict(prob["model"])}
    if "points" in prob:
        d["sampling"] = {**d["sampling"], "points": dict(prob["points"])}
    elif cfg.problem.name != prob["name"]:
        d["sampling"] = {**d["sampling"], "points": None}  # the base config's points belong to another problem
    if "weights" in prob:
        d["loss"] = {"weights": dict(prob["weights"])}
    elif cfg.problem.name != prob["name"]:
        d["loss"] = {"weights": {}}
    for key in ("steps", "eval_every"):
        if key in prob:
            d["train"] = {**d["train"], key: prob[key]}
    d["train"] = {**d["train"], "stages": None, "checkpoint_every": None}
    d["optimizer"] = {**d["optimizer"], "switch": copy.deepcopy(crit["switch"])}
    try:
        return _config.from_dict(d)
    except ValueError as e:
        raise ValueError(f"experiment_options ({where}): {e}") from None


# ----------------------------------------------------------------------------------------------- one run


def _one_run(sub: _config.RunConfig, levels: Sequence[float], progress: bool | None) -> dict:
    setup = build(sub)
    tc = sub.train
    result = train.fit(
        setup.residual,
        setup.params,
        setup.batch,
        setup.optimizer,
        tc.steps,
        metrics=setup.metrics,
        eval_every=tc.eval_every,
        chunk=tc.chunk,
        progress=False if progress is None else progress,
    )
    h = result.history
    rel = float(setup.metrics["rel_l2"](result.params)) if "rel_l2" in setup.metrics else math.nan
    events = h.events
    switches = [e for e in events if e["kind"] == "switch"]
    fallbacks = [e for e in events if e["kind"] == "fallback"]
    reached = {}
    for level in levels:
        hit = _report.first_at_or_below(h, "rel_l2", level)
        reached[f"{level:g}"] = {"time_s": None, "step": None} if hit is None else {"time_s": hit[1], "step": hit[0]}
    return {
        "rel_l2": rel if math.isfinite(rel) else None,
        "final_loss": _report.finite(h.final("loss")),
        "status": result.status,
        "message": result.message,
        "steps": result.step,
        "wall_time_s": h.last_wall_time(),
        "compile_time_s": result.compile_time_s,
        "first_switch_step": switches[0]["step"] if switches else None,
        "switches": len(switches),
        "guard_fallbacks": len(fallbacks),
        "reached": reached,
        "curve": {"step": list(h.eval_steps), "wall_time_s": list(h.wall_time_s), "rel_l2": list(h.metrics["rel_l2"])},
        "events": events,
        "num_params": int(sum(x.size for x in jax.tree.leaves(setup.params))),
    }


# ----------------------------------------------------------------------------------------------- aggregation


def _cell_stats(runs: Sequence[dict], levels: Sequence[float]) -> dict:
    """Median and spread over seeds of one (problem, criterion) cell. A non-finite final error counts as +inf."""
    rel = np.array([r["rel_l2"] if r["rel_l2"] is not None else np.inf for r in runs], dtype=float)
    out = {
        "n": len(runs),
        "rel_l2_median": float(np.median(rel)),
        "rel_l2_min": float(np.min(rel)),
        "rel_l2_max": float(np.max(rel)),
        "guard_fallbacks": int(sum(r["guard_fallbacks"] for r in runs)),
        "nonfinite_runs": int(sum(r["status"] == "nonfinite" for r in runs)),
        "switched_runs": int(sum(r["switches"] > 0 for r in runs)),
        "switch_step_median": (
            float(np.median([r["first_switch_step"] for r in runs if r["first_switch_step"] is not None]))
            if any(r["first_switch_step"] is not None for r in runs)
            else None
        ),
        "wall_time_median_s": float(np.median([r["wall_time_s"] for r in runs])),
        "reached": {},
    }
    for level in levels:
        key = f"{level:g}"
        times = [r["reached"][key]["time_s"] for r in runs if r["reached"][key]["time_s"] is not None]
        all_times = [np.inf if r["reached"][key]["time_s"] is None else r["reached"][key]["time_s"] for r in runs]
        out["reached"][key] = {
            "count": len(times),
            "time_median_s": float(np.median(times)) if times else None,
            # over every seed, a seed that never reaches the level counting as +inf (used for the time ranking)
            "time_median_all_s": float(np.median(all_times)),
            "time_min_s": float(np.min(times)) if times else None,
            "time_max_s": float(np.max(times)) if times else None,
        }
    return out


def _ranks(values: np.ndarray) -> np.ndarray:
    """Average ranks (1 = smallest), ties shared; +inf ranks last (tied among themselves)."""
    from scipy.stats import rankdata

    return rankdata(values, method="average")


def _conclusion(table: Mapping[str, Mapping[str, dict]], crit_labels: Sequence[str], levels: Sequence[float]) -> dict:
    """Robustness summary computed from the table.

    Per problem, criteria are ranked by median final rel L2 over seeds (1 = best). A criterion's robustness is its
    mean rank over problems; its worst case is the largest ratio, over problems, of its *worst seed's* final rel L2
    to the best median on that problem (how far behind it can fall). The most robust criterion has the lowest mean
    rank, ties broken by the worst case. A second ranking by wall time to accuracy (:func:`_time_ranks`) names the
    fastest criterion: a fixed step budget favours switching early (more second-order steps), wall time does not.
    """
    probs = list(table)
    med = np.array([[table[p][c]["rel_l2_median"] for c in crit_labels] for p in probs])  # (problems, criteria)
    worst = np.array([[table[p][c]["rel_l2_max"] for c in crit_labels] for p in probs])
    ranks = np.stack([_ranks(row) for row in med])
    best = np.min(med, axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(np.isfinite(worst), worst / best, np.inf)
    mean_rank = ranks.mean(axis=0)
    worst_ratio = ratio.max(axis=0)
    tight = levels[-1]
    reached_tight = {
        c: int(sum(table[p][c]["reached"][f"{tight:g}"]["count"] for p in probs)) for c in crit_labels
    }
    order = sorted(range(len(crit_labels)), key=lambda j: (mean_rank[j], worst_ratio[j]))
    time_rank = _time_ranks(table, crit_labels, levels)
    per = {
        c: {
            "mean_rank": float(mean_rank[j]),
            "worst_ratio_to_best": float(worst_ratio[j]) if np.isfinite(worst_ratio[j]) else None,
            "best_on": [p for i, p in enumerate(probs) if ranks[i, j] == 1.0],
            "ranks": {p: float(ranks[i, j]) for i, p in enumerate(probs)},
            f"runs_reaching_{tight:g}": reached_tight[c],
            "guard_fallbacks": int(sum(table[p][c]["guard_fallbacks"] for p in probs)),
            "time_ranks": {p: float(r[c]) for p, r in time_rank["ranks"].items()},
            "mean_time_rank": (
                float(np.mean([r[c] for r in time_rank["ranks"].values()])) if time_rank["ranks"] else None
            ),
        }
        for j, c in enumerate(crit_labels)
    }
    most_robust = crit_labels[order[0]]
    safest = crit_labels[int(np.argmin(worst_ratio))]
    fastest = None
    if time_rank["ranks"]:
        fastest = min(crit_labels, key=lambda c: (per[c]["mean_time_rank"], per[c]["mean_rank"]))
    return {"order": [crit_labels[j] for j in order], "most_robust": most_robust, "smallest_worst_case": safest,
            "fastest": fastest, "time_levels": time_rank["levels"], "per_criterion": per}


def _time_ranks(table: Mapping[str, Mapping[str, dict]], crit_labels: Sequence[str], levels: Sequence[float]) -> dict:
    """Ranks by wall time to accuracy, the view that a fixed step budget hides.

    Per problem, the target is the tightest level that at least one criterion reaches on every seed; criteria are
    ranked by their median over seeds of the wall time to that level, a seed that never reaches it counting as
    +inf (so a criterion that fails on most seeds ranks last, tied with the others that fail). Problems where no
    criterion reaches any level on every seed are left out of the time ranking.
    """
    ranks, chosen = {}, {}
    for p, cells in table.items():
        for level in sorted(levels):  # tightest first
            key = f"{level:g}"
            if any(cells[c]["reached"][key]["count"] == cells[c]["n"] for c in crit_labels):
                times = np.array([cells[c]["reached"][key]["time_median_all_s"] for c in crit_labels])
                ranks[p] = dict(zip(crit_labels, _ranks(times)))
                chosen[p] = level
                break
    return {"ranks": ranks, "levels": chosen}


def _conclusion_lines(concl: dict, n_problems: int, n_seeds: int, levels: Sequence[float]) -> list[str]:
    per = concl["per_criterion"]
    tight = f"{levels[-1]:g}"

    def wr(c):
        v = per[c]["worst_ratio_to_best"]
        return "∞ (a run ended non-finite)" if v is None else f"{v:.3g}"

    best = concl["most_robust"]
    lines = [
        f"- **Most robust (lowest mean rank of the median final rel L2 over {n_problems} problems): {best}**, mean "
        f"rank {per[best]['mean_rank']:.2f}; best on {', '.join(per[best]['best_on']) or 'no problem'}; its worst "
        f"seed is at most {wr(best)}× the best median on any problem; {per[best][f'runs_reaching_{tight}']} of "
        f"{n_problems * n_seeds} runs reach rel L2 {tight}.",
    ]
    safe = concl["smallest_worst_case"]
    if safe != best:
        lines.append(
            f"- Smallest worst case: {safe} (worst seed ≤ {wr(safe)}× the best median on every problem; mean rank "
            f"{per[safe]['mean_rank']:.2f})."
        )
    worst = concl["order"][-1]
    lines.append(
        f"- Least robust: {worst} (mean rank {per[worst]['mean_rank']:.2f}, worst case {wr(worst)}×)."
    )
    if concl.get("fastest") is not None:
        fast = concl["fastest"]
        targets = ", ".join(f"{p}: {lv:g}" for p, lv in concl["time_levels"].items())
        lines.append(
            f"- **Fastest to accuracy: {fast}**, mean rank {per[fast]['mean_time_rank']:.2f} by median wall time "
            f"to the tightest level some criterion reaches on every seed ({targets}); full order: "
            + ", ".join(
                f"{c} ({per[c]['mean_time_rank']:.2f})"
                for c in sorted(concl["order"], key=lambda c: (per[c]["mean_time_rank"], per[c]["mean_rank"]))
            )
            + "."
        )
    wc = {c: per[c]["worst_ratio_to_best"] for c in concl["order"]}
    riskiest = max(wc, key=lambda c: math.inf if wc[c] is None else wc[c])
    if riskiest != worst:
        lines.append(f"- Largest worst case: {riskiest} (worst seed {wr(riskiest)}× the best median on some problem).")
    lines.append(
        "- Full order by mean rank: "
        + ", ".join(f"{c} ({per[c]['mean_rank']:.2f})" for c in concl["order"])
        + "."
    )
    guarded = {c: per[c]["guard_fallbacks"] for c in concl["order"] if per[c]["guard_fallbacks"]}
    lines.append(
        "- Divergence-guard rollbacks: "
        + (", ".join(f"{c}: {n}" for c, n in guarded.items()) if guarded else "none in any run")
        + "."
    )
    return lines


# ----------------------------------------------------------------------------------------------- outputs


def _fmt(v: Any, spec: str = ".2e") -> str:
    if v is None:
        return "—"
    v = float(v)
    if not math.isfinite(v):
        return "∞"
    return format(v, spec)


def _plot(
    curves: Mapping[str, Mapping[str, list[dict]]], crit_labels: Sequence[str], levels, path: str, x: str = "step"
) -> str:
    """One panel per problem: median over seeds of rel L2 per criterion (band: min-max over seeds) against the step
    (``x="step"``) or the wall time (``x="time"``: at each evaluation, the median over seeds of its wall time)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    probs = list(curves)
    ncol = min(len(probs), 2)
    nrow = math.ceil(len(probs) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(6.2 * ncol, 4.0 * nrow), squeeze=False)
    colors = plt.cm.tab10(np.arange(len(crit_labels)) % 10)
    for ax, p in zip(axes.ravel(), probs):
        for color, c in zip(colors, crit_labels):
            runs = curves[p][c]
            n = min(len(r["curve"]["rel_l2"]) for r in runs)
            if x == "time":
                steps = np.median([r["curve"]["wall_time_s"][:n] for r in runs], axis=0)
            else:
                steps = np.asarray(runs[0]["curve"]["step"][:n])
            vals = np.array([r["curve"]["rel_l2"][:n] for r in runs], dtype=float)
            vals = np.where(np.isfinite(vals), vals, np.nan)
            med = np.nanmedian(vals, axis=0)
            ax.semilogy(steps, med, color=color, lw=1.4, label=c)
            ax.fill_between(steps, np.nanmin(vals, axis=0), np.nanmax(vals, axis=0), color=color, alpha=0.12)
            sw = [r["first_switch_step"] for r in runs if r["first_switch_step"] is not None]
            if sw and x == "step":
                s = float(np.median(sw))
                ax.plot([s], [np.interp(s, steps, med)], "o", color=color, ms=5, mec="k", mew=0.6)
        for level in levels:
            ax.axhline(level, color="gray", ls=":", lw=0.8)
        ax.set_title(p)
        ax.set_xlabel("step" if x == "step" else "wall time (s, compile excluded; median over seeds)")
        ax.set_ylabel("rel L2 (median over seeds; band min-max)")
        ax.grid(True, which="both", alpha=0.3)
    for ax in axes.ravel()[len(probs):]:
        ax.axis("off")
    axes.ravel()[0].legend(fontsize=7)
    fig.suptitle(
        "hybrid switch criteria: relative L2 error"
        + (" (dots: median first switch step)" if x == "step" else " against wall time")
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _write_csv(path: str, rows: Sequence[dict], levels: Sequence[float]) -> None:
    header = ["problem", "criterion", "seed", "rel_l2", "status", "first_switch_step", "switches", "guard_fallbacks",
              "wall_time_s", "compile_time_s"]
    header += [f"time_to_{lv:g}_s" for lv in levels] + [f"step_to_{lv:g}" for lv in levels]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for r in rows:
            w.writerow(
                [r["problem"], r["criterion"], r["seed"], r["rel_l2"], r["status"], r["first_switch_step"],
                 r["switches"], r["guard_fallbacks"], f"{r['wall_time_s']:.3f}", f"{r['compile_time_s']:.3f}"]
                + [r["reached"][f"{lv:g}"]["time_s"] for lv in levels]
                + [r["reached"][f"{lv:g}"]["step"] for lv in levels]
            )


# ----------------------------------------------------------------------------------------------- experiment


def switch_ablation(
    cfg: _config.RunConfig,
    out_dir: str,
    *,
    resume: bool = False,
    progress: bool | None = None,
    criteria: list | None = None,
    problems: list | None = None,
    seeds: Any = 3,
    levels: list | None = None,
    compilation_cache: bool = True,
) -> dict:
    """Ablation of hybrid switching criteria over several problems and seeds.

    Every cell (problem p, criterion c, seed s) trains the config's ``hybrid`` optimizer (its ``first``,
    ``second`` and guard options are shared) with ``switch`` = c on problem p, from the model and points of seed
    s (``build``: PRNGKey(s) split into model and point keys, so all criteria of a seed start from the same θ_0 and
    points). Recorded per run: final relative L2 error, wall time (compile excluded) and step of the first
    evaluation with rel L2 <= each level, the first switch step, and divergence-guard rollbacks (``fallback``
    events of the history). Per cell the report gives the median and min-max over seeds; the conclusion ranks the
    criteria per problem by median final error and calls most robust the lowest mean rank over problems (ties:
    the smallest worst case = worst seed / best median).

    Options (``experiment_options``):
        criteria: list of ``{label, switch}`` with ``switch`` an ``optimizer.switch`` mapping (``{after_steps:
            500}``, ``{plateau: {...}}``, ``{grad_norm: {...}}``, ``{curvature: {...}}``, combinations with
            ``mode``); required.
        problems: list of ``{name, label?, options?, model?, points?, weights?, steps?, eval_every?}``; missing
            entries default to the config's ``model``, ``sampling.points``, ``loss.weights`` and ``train``
            sections (default: the config's problem only).
        seeds: number of seeds (cfg.seed, cfg.seed + 1, ...) or an explicit list.
        levels: rel L2 levels for the time-to-accuracy columns (default [1e-3, 1e-5]).
        compilation_cache: use JAX's persistent compilation cache in a temporary directory for the duration of
            the experiment (removed afterwards), so that the seeds of one cell, whose programs are identical,
            compile once; it does not change any result, only compile time.
    """
    if resume:
        raise ValueError("resume: the switch_ablation experiment does not checkpoint; run it again without --resume")
    crits = _check_criteria(criteria)
    probs = _check_problems(problems, cfg)
    seed_list = _check_seeds(seeds, cfg.seed)
    levels_t = _check_levels([1e-3, 1e-5] if levels is None else levels)
    # validate every cell's config before training anything
    subs = {
        (p["label"], c["label"], s): _run_config(cfg, p, c, s, f"{p['label']}/{c['label']}/seed{s}")
        for p in probs
        for c in crits
        for s in seed_list
    }
    if not isinstance(compilation_cache, bool):
        raise ValueError(f"experiment_options.compilation_cache: expected true or false, got {compilation_cache!r}")
    set_dtype(cfg.dtype)
    os.makedirs(out_dir, exist_ok=True)
    with _compilation_cache(compilation_cache):
        return _ablate(cfg, out_dir, crits, probs, seed_list, levels_t, subs, progress)


@contextlib.contextmanager
def _compilation_cache(enabled: bool):
    """JAX's persistent compilation cache in a fresh temporary directory; previous settings restored on exit."""
    if not enabled:
        yield
        return
    keys = (
        "jax_compilation_cache_dir",
        "jax_persistent_cache_min_compile_time_secs",
        "jax_persistent_cache_min_entry_size_bytes",
    )
    from jax.experimental.compilation_cache import compilation_cache as cc

    old = {k: getattr(jax.config, k) for k in keys}
    tmp = tempfile.mkdtemp(prefix="sciml_jax_ablation_cache_")
    try:
        jax.config.update("jax_compilation_cache_dir", tmp)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
        cc.reset_cache()  # the cache object is created once per process: re-create it for the new directory
        yield
    finally:
        for k, v in old.items():
            jax.config.update(k, v)
        cc.reset_cache()
        shutil.rmtree(tmp, ignore_errors=True)


def _ablate(cfg, out_dir, crits, probs, seed_list, levels_t, subs, progress) -> dict:
    t_start = time.perf_counter()
    rows: list[dict] = []
    curves: dict[str, dict[str, list[dict]]] = {p["label"]: {c["label"]: [] for c in crits} for p in probs}
    problem_info = {}
    for p in probs:
        for c in crits:
            for s in seed_list:
                sub = subs[(p["label"], c["label"], s)]
                run = _one_run(sub, levels_t, progress)
                run.update(problem=p["label"], criterion=c["label"], seed=s)
                rows.append(run)
                curves[p["label"]][c["label"]].append(run)
                problem_info.setdefault(
                    p["label"],
                    {
                        "name": sub.problem.name,
                        "options": dict(sub.problem.options),
                        "model": f"MLP width {sub.model.width}, depth {sub.model.depth}, {sub.model.activation}",
                        "num_params": run["num_params"],
                        "points": dict(sub.sampling.points) if sub.sampling.points else "problem default",
                        "weights": dict(sub.loss.weights),
                        "steps": sub.train.steps,
                        "eval_every": sub.train.eval_every,
                    },
                )
    total = time.perf_counter() - t_start
    crit_labels = [c["label"] for c in crits]
    table = {
        p: {c: _cell_stats(curves[p][c], levels_t) for c in crit_labels} for p in curves
    }
    concl = _conclusion(table, crit_labels, levels_t)

    fig = _plot(curves, crit_labels, levels_t, os.path.join(out_dir, "ablation.png"))
    fig_time = _plot(curves, crit_labels, levels_t, os.path.join(out_dir, "ablation_time.png"), x="time")
    _write_csv(os.path.join(out_dir, "runs.csv"), rows, levels_t)

    opt = cfg.optimizer.options
    lv = [f"{x:g}" for x in levels_t]
    lines = [
        f"# {cfg.name}: switching criteria of the hybrid optimizer",
        "",
        cfg.description or "",
        "",
        f"Hybrid first = {opt.get('first')}, second = {opt.get('second')}, guard_factor = {opt.get('guard_factor', 10.0)}, "
        f"fallback_steps = {opt.get('fallback_steps', 500)}, max_fallbacks = {opt.get('max_fallbacks', 3)}; "
        f"{len(crits)} criteria × {len(probs)} problems × {len(seed_list)} seeds ({seed_list}) = {len(rows)} runs, "
        f"{cfg.dtype}, {total:.0f} s in all (compile included). Each seed fixes θ_0 and the collocation points, "
        "shared by all criteria.",
        "",
        "## Problems",
        "",
        "| problem | PDE (options) | model | points | loss weights | steps (eval every) |",
        "|---|---|---|---|---|---|",
    ]
    for p, info in problem_info.items():
        lines.append(
            f"| {p} | {info['name']} {info['options']} | {info['model']} ({info['num_params']} params) | "
            f"{info['points']} | {info['weights'] or '1'} | {info['steps']} ({info['eval_every']}) |"
        )
    lines += [
        "",
        "## Criteria",
        "",
        *[f"- **{c['label']}**: `{json.dumps(c['switch'])}`" for c in crits],
        "",
        "## Results",
        "",
        f"Per cell, over {len(seed_list)} seeds: final rel L2 as median [min – max]; time to rel L2 ≤ level = wall "
        "time (s, compile excluded) of the first evaluation at or below it, median over the seeds that reach it, "
        "with their count (— if none); switch = median first switch step (never: the criterion did not fire and "
        "the first optimizer ran throughout); guard = divergence-guard rollbacks summed over seeds (non-finite "
        "runs stopped by `fit` in parentheses when any). Timings share 2 CPU cores with other work: compare within a "
        "problem, not in absolute terms.",
        "",
    ]
    header = (
        "| criterion | final rel L2 median [min – max] | "
        + " | ".join(f"time to {x} (s) [reached]" for x in lv)
        + " | switch step | guard | rank (error) | rank (time) |"
    )
    sep = "|---" * (6 + len(lv)) + "|"
    for p in table:
        target = concl["time_levels"].get(p)
        lines += [
            f"### {p}",
            "",
            "rank (time): by median wall time to rel L2 "
            + (f"{target:g}" if target is not None else "— (no criterion reaches any level on every seed)"),
            "",
            header,
            sep,
        ]
        for c in crit_labels:
            st = table[p][c]
            times = " | ".join(
                f"{_fmt(st['reached'][x]['time_median_s'], '.2f')} [{st['reached'][x]['count']}/{st['n']}]" for x in lv
            )
            guard = str(st["guard_fallbacks"]) + (f" ({st['nonfinite_runs']} non-finite)" if st["nonfinite_runs"] else "")
            sw = "never" if st["switch_step_median"] is None else f"{st['switch_step_median']:.0f}"
            if st["switched_runs"] not in (0, st["n"]):
                sw += f" ({st['switched_runs']}/{st['n']})"
            lines.append(
                f"| {c} | {_fmt(st['rel_l2_median'])} [{_fmt(st['rel_l2_min'])} – {_fmt(st['rel_l2_max'])}] | "
                f"{times} | {sw} | {guard} | {concl['per_criterion'][c]['ranks'][p]:g} | "
                f"{_fmt(concl['per_criterion'][c]['time_ranks'].get(p), 'g')} |"
            )
        lines.append("")
    lines += [
        "## Conclusion",
        "",
        "Computed from the table above (rank 1 = lowest median final rel L2 on that problem; worst case = the "
        "criterion's worst seed divided by the best median on the same problem, maximised over problems):",
        "",
        *_conclusion_lines(concl, len(probs), len(seed_list), levels_t),
        "",
        f"![rel L2 vs step per criterion]({os.path.basename(fig)})",
        "",
        f"![rel L2 vs wall time per criterion]({os.path.basename(fig_time)})",
        "",
        "Per-run numbers: [runs.csv](runs.csv); everything: [metrics.json](metrics.json).",
        "",
        "## Configuration",
        "",
        "```yaml",
        yaml.safe_dump(_config.to_dict(cfg), sort_keys=False).strip(),
        "```",
        "",
    ]
    summary = {
        "name": cfg.name,
        "experiment": "switch_ablation",
        "status": "completed" if all(r["status"] == "completed" for r in rows) else "nonfinite",
        "message": f"{len(crits)} criteria x {len(probs)} problems x {len(seed_list)} seeds",
        "steps": int(sum(r["steps"] for r in rows)),
        "wall_time_s": float(sum(r["wall_time_s"] for r in rows)),
        "compile_time_s": float(sum(r["compile_time_s"] for r in rows)),
        "total_time_s": total,
        "rel_l2": None,
        "final_loss": None,
        "levels": list(levels_t),
        "seeds": seed_list,
        "criteria": crits,
        "problems": problem_info,
        "table": table,
        "conclusion": concl,
        "runs": rows,
        "figure": fig,
        "figure_time": fig_time,
        "report": os.path.join(out_dir, "report.md"),
        "dtype": cfg.dtype,
        "jax_version": jax.__version__,
        "backend": jax.default_backend(),
        "platform": platform.platform(),
    }
    with open(os.path.join(out_dir, "report.md"), "w") as f:
        f.write("\n".join(lines))
    with open(os.path.join(out_dir, "metrics.json"), "w") as f:
        json.dump(_clean(summary), f, indent=2, default=str)
    with open(os.path.join(out_dir, "config.yaml"), "w") as f:
        yaml.safe_dump(_config.to_dict(cfg), f, sort_keys=False)
    return summary


def _clean(o: Any) -> Any:
    """JSON-safe copy: numpy scalars to Python, non-finite floats to None (strict JSON has no inf/nan)."""
    if isinstance(o, Mapping):
        return {str(k): _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    if isinstance(o, (np.floating, np.integer)):
        o = o.item()
    if isinstance(o, float) and not math.isfinite(o):
        return None
    return o


register("switch_ablation", switch_ablation)
