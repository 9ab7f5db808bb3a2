"""Adaptive-sampling experiments: static vs residual-based collocation on a sharp-gradient problem (the paper's
experiment 3) and the stiffness of order-2 vs order-4 operators against the solution frequency (its second next
check). Each writes report.md, PNG figures and metrics.json into ``out_dir``.

Every run trains through :func:`sciml_jax.train.fit` with one optimizer object per experiment: problems that differ
only in coefficients (the frequency ω), seeds, initial parameters and point sets of the same size reuse fit's
compiled step, so the stiffness sweep compiles once per operator order, not once per ω.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .. import analysis, nn, optim, plotting, problems, sampling, train
from .. import config as _config
from . import _report
from ._report import call, check_int, check_names, finite, fmt
from ._train import build, register, set_dtype

_STATIC = tuple(sampling.METHODS)


def _check_adaptive(cfg: Any, problem: Any) -> None:
    ad = cfg.sampling.adaptive
    if ad.every is None and ad.on_plateau is None:
        raise ValueError(
            "sampling.adaptive: the adaptive runs need a schedule; set sampling.adaptive.every and/or on_plateau "
            "(the method there is replaced by each compared method)"
        )
    if ad.term not in problem.terms:
        raise ValueError(f"sampling.adaptive.term: unknown term {ad.term!r} of {problem.name!r}; allowed: "
                         f"{', '.join(problem.terms)}")


def _fit(cfg: Any, setup: Any, batch: Any, opt: Any, progress: Any, **kw: Any) -> train.FitResult:
    tc = cfg.train
    return train.fit(setup.residual, setup.params, batch, opt, tc.steps, metrics=setup.metrics, chunk=tc.chunk,
                     eval_every=tc.eval_every, progress=tc.progress if progress is None else progress, **kw)


def _at(rec: analysis.ConditionRecorder, i: int) -> dict:
    return {k: v[i] for k, v in rec.records.items()}


# ----------------------------------------------------------------------------------------------- static vs adaptive


def _sampling_runs(cfg, methods, seeds, counts, kappa_rank, holdout_factor, progress, opt=None) -> dict[str, list]:
    """Every method x seed at equal point count, steps and optimizer. Seed s: model and points of
    ``PRNGKey(cfg.seed + s)`` for every method (paired); static methods draw their own points, adaptive ones start
    from ``cfg.sampling.method`` points moved by ``sampling.adaptive`` with its method replaced. Conditioning (NTK,
    :class:`sciml_jax.analysis.ConditionRecorder`) on the run's own points at θ_0 and at the end. One optimizer
    object (``opt``, default built from the config) for every run, so ``fit`` compiles its step once."""
    opt = optim.get(cfg.optimizer.name, **cfg.optimizer.options) if opt is None else opt
    runs: dict[str, list[dict]] = {m: [] for m in methods}
    for s in range(seeds):
        setup = build(dataclasses.replace(cfg, seed=cfg.seed + s))
        term = setup.problem.terms.get(cfg.sampling.adaptive.term)
        dom, entry = setup.problem.domain, term.points if term is not None else "interior"
        holdout = sampling.sample(dom, {k: holdout_factor * v for k, v in counts.items()}, "sobol", 10_000 + cfg.seed + s)
        for m in methods:
            adaptive = m in sampling.ADAPTIVE_METHODS
            batch = sampling.sample(dom, dict(counts), cfg.sampling.method if adaptive else m, setup.key_points)
            resampler = sampling.Resampler.from_options(
                setup.residual, dom, {**dataclasses.asdict(cfg.sampling.adaptive), "method": m},
                key=jax.random.fold_in(setup.key_points, 1), until=cfg.train.steps,
            ) if adaptive else None
            cond = analysis.ConditionRecorder(setup.residual, setup.params, batch, kappa_rank=kappa_rank)
            res = _fit(cfg, setup, batch, opt, progress, callbacks=[resampler] if adaptive else [],
                       label=f"{m}, seed {cfg.seed + s}")
            cond.record(res.step, res.params, res.batch)
            moved = [e["moved"] for e in res.history.events if e["kind"] == "resample"]
            runs[m].append({
                **_report.robust(res.history),
                "final_loss": finite(call(setup.residual.loss, res.params, res.batch)),
                "holdout_loss": finite(call(setup.residual.loss, res.params, holdout)),
                "condition_start": _at(cond, 0), "condition_end": _at(cond, -1),
                "events": len(moved), "moved": int(sum(moved)), "status": res.status,
                "wall_time_s": res.wall_time_s, "compile_time_s": res.compile_time_s,
                "eval_steps": list(res.history.eval_steps),
                "rel_l2_curve": [finite(v) for v in res.history.metrics["rel_l2"]],
                "_params": res.params, "_setup": setup,
                "_snapshots": (resampler.snapshots if adaptive else None)
                or [{"step": 0, "points": np.asarray(batch[entry])}],
            })
    return runs


def _sampling_table(runs: Mapping[str, list]) -> dict:
    def flat(r):
        out = {k: r[k] for k in ("rel_l2", "rel_l2_best", "rel_l2_median_last", "final_loss", "holdout_loss", "moved")}
        for w in ("start", "end"):
            c = r[f"condition_{w}"]
            out.update({f"cond_{w}": c["condition_number"], f"kappa_r_{w}": c["kappa_r"], f"lambda_max_{w}": c["lambda_max"]})
        return out

    return {m: {k: _report.stats([flat(r)[k] for r in rs]) for k in flat(rs[0])} for m, rs in runs.items()}


def _sampling_lines(runs, table, cfg, kappa_rank: int, heading: str) -> list[str]:
    """Result tables (means over seeds, per seed) and the conclusion computed from them."""
    seeds = len(next(iter(runs.values())))
    k = _report.K_LAST
    lines = [
        f"Relative L2 error: geometric mean over seeds of the final value, the best and the median of the last {k} "
        f"evaluations ({_report.ROBUST_NOTE}); other columns: mean over seeds.",
        "",
        f"| method | rel L2 final (geo mean) | best | median last {k} | rel L2 mean ± std | final loss (own points) "
        "| held-out loss | cond start | cond end | κ_r start | κ_r end | λ_max end | points moved |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m, t in table.items():
        lines.append(
            f"| {m} | {fmt(t['rel_l2']['geomean'])} | {fmt(t['rel_l2_best']['geomean'])} | "
            f"{fmt(t['rel_l2_median_last']['geomean'])} | {fmt(t['rel_l2']['mean'])} ± {fmt(t['rel_l2']['std'], '.1e')} | "
            + " | ".join(fmt(t[q]["mean"]) for q in ("final_loss", "holdout_loss", "cond_start", "cond_end",
                                                     "kappa_r_start", "kappa_r_end", "lambda_max_end"))
            + f" | {fmt(t['moved']['mean'], '.0f')} |"
        )
    lines += ["", "Per seed (relative L2 error, final):", "",
              "| method | " + " | ".join(f"seed {cfg.seed + s}" for s in range(seeds)) + " |", "|---|" + "---|" * seeds]
    lines += [f"| {m} | " + " | ".join(fmt(r["rel_l2"]) for r in rs) + " |" for m, rs in runs.items()]
    lines += ["", f"{heading} Conclusion", ""] + _sampling_conclusion(list(runs), table, runs, seeds)
    low = sum(r[w]["numerical_rank"] < kappa_rank for rs in runs.values() for r in rs
              for w in ("condition_start", "condition_end"))
    if low:
        lines.append(f"- Note: in {low} measurement(s) λ_{kappa_rank} fell below the rank threshold, so κ_r there is "
                     "round-off dominated.")
    return lines


def _paired_wins(a: Sequence[float | None], b: Sequence[float | None]) -> int:
    return sum(1 for x, y in zip(a, b) if x is not None and y is not None and x < y)


def _sampling_conclusion(methods: Sequence[str], table: Mapping, runs: Mapping, seeds: int) -> list[str]:
    """Verdict computed from the numbers: ranking by geometric-mean final relative L2 error, paired (per seed)
    wins, each adaptive method against i.i.d. uniform points, and the conditioning at start and end."""
    def g(m: str) -> float:
        v = table[m]["rel_l2"]["geomean"]
        return math.inf if v is None else v

    err = {m: [r["rel_l2"] for r in runs[m]] for m in methods}
    ranking = sorted(methods, key=g)
    best = ranking[0]
    lines = [f"- Ranking by geometric-mean relative L2 error over {seeds} seed(s): "
             + " < ".join(f"{m} ({fmt(g(m))})" for m in ranking) + "."]
    for m in ranking[1:]:
        wins = _paired_wins(err[best], err[m])
        lines.append(f"- {best} vs {m}: error ratio {g(best) / g(m):.2f} (geometric means), {best} lower on "
                     f"{wins}/{seeds} seed(s)" + (" — consistent" if wins == seeds else " — not consistent across seeds") + ".")
    static = [m for m in methods if m in _STATIC]
    adaptive = [m for m in methods if m not in _STATIC]
    if not (static and adaptive):
        return lines
    bs, ba = min(static, key=g), min(adaptive, key=g)
    wins, ratio = _paired_wins(err[ba], err[bs]), g(ba) / g(bs)
    if ratio < 1 and wins == seeds:
        verdict = f"adaptive sampling wins: {ba} reduces the error of the best static set ({bs}) by a factor {1 / ratio:.2f} on every seed"
    elif ratio < 1:
        verdict = (f"adaptive sampling wins on average ({ba}: factor {1 / ratio:.2f} below {bs}) but only on "
                   f"{wins}/{seeds} seeds: the gain is within the seed-to-seed spread")
    else:
        verdict = f"no gain from adaptive sampling here: the best adaptive method ({ba}) is {ratio:.2f}x the error of {bs}"
    lines.append(f"- Verdict: {verdict} (equal point count, steps and optimizer).")
    if g(best) > 0.5:
        lines.append(f"- Caveat: even the best method has a relative L2 error of {fmt(g(best))} (> 0.5): no method "
                     "solved the problem with this budget, so the ranking compares failed fits.")
    if "uniform" in methods:
        for m in adaptive:
            w = _paired_wins(err[m], err["uniform"])
            lines.append(f"- {m} vs uniform (i.i.d. points, the baseline residual-based sampling replaces): error ratio "
                         f"{g(m) / g('uniform'):.2f}, {m} lower on {w}/{seeds} seed(s).")
    qmc = [m for m in static if m in ("sobol", "halton", "grid")]
    if qmc and min(g(m) for m in qmc) < g(ba):
        lines.append(
            f"- The low-discrepancy static set ({min(qmc, key=g)}) beats every adaptive method. RAD and RAR-D draw their "
            "points at random from a residual-based density, so their point sets have the gaps of random points; for "
            "a smooth solution whose residual is spread over the whole domain, even coverage matters more than "
            "following the residual.")
    ks = {m: table[m]["kappa_r_end"]["geomean"] for m in (bs, ba)}
    ks0 = {m: table[m]["kappa_r_start"]["geomean"] for m in (bs, ba)}
    if None not in ks.values():
        lines.append(
            f"- Conditioning (NTK κ_r = λ_1/λ_r, geometric mean): start {fmt(ks0[bs])} ({bs}) / {fmt(ks0[ba])} ({ba}); "
            f"end {fmt(ks[bs])} ({bs}) vs {fmt(ks[ba])} ({ba}): adaptive points "
            + ("lower" if ks[ba] < ks[bs] else "raise")
            + f" the end-of-training κ_r by a factor {max(ks.values()) / min(ks.values()):.2f}. Concentrating points "
            "where the residual is large makes the residual rows there larger, so the NTK's top eigenvalues grow with "
            "them: adaptive sampling acts on the data side of the problem, and whether it improves κ is what this "
            "column measures, not an assumption.")
    return lines


def _plot_sampling(runs: Mapping[str, list], out_dir: str, comparison: str, final: str, prefix: str) -> dict:
    """Error vs step (geometric mean, band min-max), final error per seed and κ_r at start/end; the final points of
    every method (seed 0) over its final |error|; the point sets over training of each adaptive method."""
    import matplotlib.pyplot as plt  # noqa: PLC0415

    methods = list(runs)
    x = np.arange(len(methods))
    fig, axes = plt.subplots(1, 3, figsize=(16.0, 4.2))
    for i, m in enumerate(methods):
        n = min(len(r["rel_l2_curve"]) for r in runs[m])
        c = np.asarray([[np.nan if v is None else v for v in r["rel_l2_curve"][:n]] for r in runs[m]], dtype=float)
        line = axes[0].semilogy(runs[m][0]["eval_steps"][:n], np.exp(np.nanmean(np.log(c), axis=0)), label=m, lw=1.5)[0]
        axes[0].fill_between(runs[m][0]["eval_steps"][:n], np.nanmin(c, 0), np.nanmax(c, 0), color=line.get_color(), alpha=0.15)
        for j, (when, mk, col) in enumerate((("condition_start", "o", "tab:blue"), ("condition_end", "s", "tab:red"))):
            v = [r[when]["kappa_r"] for r in runs[m]]
            axes[2].scatter(np.full(len(v), i + (0.15 if j else -0.15)), v, marker=mk, s=18, color=col,
                            label=("end" if j else "start") if i == 0 else None)
    for j in range(len(runs[methods[0]])):
        axes[1].scatter(x + 0.05 * (j - 1), [runs[m][j]["rel_l2"] for m in methods], s=18, label=f"seed {j}")
    axes[0].set(xlabel="step", ylabel="relative L2 error", title="error vs step (geometric mean, band: min-max)")
    axes[1].set(ylabel="final relative L2 error", title="final error per seed", yscale="log")
    axes[2].set(ylabel="NTK κ_r = λ_1/λ_r", title="conditioning at start and end of training", yscale="log")
    for ax in axes:
        if ax is not axes[0]:
            ax.set_xticks(x, methods)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    figs = {"comparison": _report.save(fig, os.path.join(out_dir, comparison))}

    first = {m: rs[0] for m, rs in runs.items()}
    problem, apply = first[methods[0]]["_setup"].problem, first[methods[0]]["_setup"].apply
    figs["final_points"] = plotting.plot_final_errors(
        problem, apply, {f"{m}: rel L2 {fmt(r['rel_l2'], '.2e')}": (r["_params"], r["_snapshots"][-1]["points"])
                         for m, r in first.items()},
        os.path.join(out_dir, final))
    for m, r in first.items():
        if m not in _STATIC and len(r["_snapshots"]) > 1:
            figs[f"points_{m}"] = plotting.plot_points(
                problem, apply, r["_params"], r["_snapshots"], os.path.join(out_dir, f"{prefix}{m}.png"),
                title=f"{m}: the moved points at chosen steps over the final |error|")
    return figs


# ----------------------------------------------------------------------------------------------- sharp gradient


@dataclasses.dataclass
class SharpOptions(_report.Options):
    """``experiment_options`` of sharp_gradient_sampling.

    methods: compared methods, static sampler names and/or ``rad``, ``rar_d``, ``r3``.
    seeds: number of seeds (>= 1). kappa_rank: r of κ_r = λ_1/λ_r (>= 2).
    holdout_factor: the held-out Sobol set has this many times the training points (>= 1).
    """

    methods: list = dataclasses.field(default_factory=lambda: ["uniform", "sobol", "rad", "rar_d", "r3"])
    seeds: int = 3
    kappa_rank: int = 50
    holdout_factor: int = 4

    def check(self, cfg: Any) -> None:
        self.methods = check_names(self.methods, "methods", _STATIC + sampling.ADAPTIVE_METHODS)
        check_int(self.seeds, "seeds", 1)
        check_int(self.kappa_rank, "kappa_rank", 2)
        check_int(self.holdout_factor, "holdout_factor", 1)
        problem = cfg.problem.build()
        if any(m in sampling.ADAPTIVE_METHODS for m in self.methods):
            _check_adaptive(cfg, problem)
        if problem.exact is None:
            raise ValueError(f"problem: {cfg.problem.name or cfg.problem.factory!r} has no exact solution; this experiment reports errors")


def sharp_gradient_sampling(cfg: _config.RunConfig, out_dir: str, opts: SharpOptions, *, resume: bool = False,
                            progress: bool | None = None) -> dict:
    """Static (uniform random, Sobol, ...) vs adaptive (RAD, RAR-D, R3) collocation at equal point count, steps and
    optimizer, several seeds: relative L2 error (final, best, median of the last evaluations), final loss (own final
    points and a common held-out Sobol set) and the NTK / Gauss-Newton conditioning at the start and end of training.
    Options: :class:`SharpOptions`.
    """
    _report.no_resume("sharp_gradient_sampling", resume)
    set_dtype(cfg.dtype)
    os.makedirs(out_dir, exist_ok=True)
    t_start = time.perf_counter()
    problem = cfg.problem.build()
    counts = dict(cfg.sampling.points or problem.default_points)
    runs = _sampling_runs(cfg, opts.methods, opts.seeds, counts, opts.kappa_rank, opts.holdout_factor, progress)
    wall = time.perf_counter() - t_start
    table = _sampling_table(runs)
    figs = _plot_sampling(runs, out_dir, "sampling_comparison.png", "final_points.png", "points_")
    ad, r = cfg.sampling.adaptive, opts.kappa_rank
    lines = [
        f"# {cfg.name}: adaptive vs static collocation", "", cfg.description or problem.description, "",
        f"Problem: {problem.description}", "",
        f"Every run: {counts} points, {cfg.train.steps} steps of `{cfg.optimizer.name}` ({cfg.optimizer.options}), MLP "
        f"width {cfg.model.width} depth {cfg.model.depth} ({cfg.model.activation}), {opts.seeds} seed(s) (same "
        f"initialisation per seed for every method). Adaptive methods start from {cfg.sampling.method} points and "
        f"resample the `{ad.term}` term's points every {ad.every} steps"
        + (f" / on plateau {ad.on_plateau}" if ad.on_plateau else "")
        + f" (candidates: {ad.candidates or '10 x points'} {ad.sampler} points per event; RAD k, c = "
        f"{ad.k if ad.k is not None else 1}, {ad.c if ad.c is not None else 1}; RAR-D k, c = "
        f"{ad.k if ad.k is not None else 2}, {ad.c if ad.c is not None else 0}, exchanging {ad.replace:.0%} of the "
        "points; R3 keeps points above the mean |r| and redraws the rest uniformly). No event at the last step.", "",
        "Conditioning: NTK K = JJᵀ (same nonzero spectrum as the Gauss-Newton matrix JᵀJ) on the run's own points, "
        f"at θ_0 (start) and at the final θ on the final points (end). cond = λ_max/λ_min⁺ over eigenvalues above "
        f"τ = max(N, P)·eps·λ_max; κ_r = λ_1/λ_{r} does not depend on that threshold. The held-out loss is "
        f"½‖r‖² on a common Sobol set {opts.holdout_factor}x larger (same for every method of a seed).", "",
        "## Results", "",
    ]
    lines += _sampling_lines(runs, table, cfg, r, "##") + [""] + _report.figure_lines(figs)
    summary = {
        "name": cfg.name, "experiment": "sharp_gradient_sampling", "problem": problem.name,
        "problem_options": problem.options,
        "status": "completed" if all(x["status"] == "completed" for rs in runs.values() for x in rs) else "nonfinite",
        "message": f"{len(opts.methods)} methods x {opts.seeds} seeds", "steps": cfg.train.steps, "wall_time_s": wall,
        "compile_time_s": sum(x["compile_time_s"] for rs in runs.values() for x in rs),
        "rel_l2": min(t["rel_l2"]["geomean"] or math.inf for t in table.values()), "final_loss": None,
        "methods": opts.methods, "seeds": opts.seeds, "points": counts, "table": table,
        "runs": {m: [{k: v for k, v in x.items() if k != "eval_steps"} for x in rs] for m, rs in runs.items()},
        "eval_steps": runs[opts.methods[0]][0]["eval_steps"],
        "conclusion": _sampling_conclusion(opts.methods, table, runs, opts.seeds), "figures": figs,
        **_report.environment(cfg),
    }
    return _report.write_outputs(out_dir, cfg, lines, summary)


# ----------------------------------------------------------------------------------------------- stiffness


@eqx.filter_jit
def _hessian(residual: Any, params: Any, batch: Any) -> jax.Array:
    """H = ∇²(½‖r‖²), dense P × P; compiled once per structure and shapes (every ω of an order shares it)."""
    return analysis.hessian(lambda p: residual.loss(p, batch), params)


def _hessian_measures(residual: Any, params: Any, batch: Any) -> dict:
    """λ_max, λ_min, max|λ| / min|λ| over |λ| > τ = P·eps·max|λ| and the number of eigenvalues below -τ."""
    s = analysis.spectrum(_hessian(residual, params, batch))
    lam = np.asarray(s.eigenvalues)
    return {"lambda_max": float(lam[0]), "lambda_min": float(lam[-1]), "condition_number": float(s.condition_number),
            "negative": int(np.sum(lam < -float(s.threshold)))}


def _sine_basis_condition(omega: float, x: np.ndarray, order: int) -> float:
    """Reference: κ of the Gauss-Newton matrix of a sine-series model u = Σ_{j<=ω} a_j sin(jπx) for the operator of
    order p on the points x: the operator maps sin(jπx) to ±(jπ)^p sin(jπx), so with (near-)orthogonal sampling
    κ = (ω π)^{2p} / π^{2p} = ω^{2p} exactly for an exact quadrature; computed here on the actual points."""
    j = np.arange(1, round(omega) + 1)
    s = np.linalg.svd((j[None, :] * np.pi) ** order * np.sin(np.pi * x[:, None] * j[None, :]), compute_uv=False)
    return float((s[0] / s[-1]) ** 2)


def _stiffness_row(cfg, opt, order: int, name: str, omega: float, opts, progress) -> dict:
    """Train problem ``name`` at k = ω and measure NTK (and Hessian) conditioning at θ_0 and after training."""
    setup = build(dataclasses.replace(cfg, problem=_config.ProblemConfig(name, {"k": omega})))
    res, p0, batch = setup.residual, setup.params, setup.batch
    cond = analysis.ConditionRecorder(res, p0, batch, kappa_rank=opts.kappa_rank)
    out = _fit(cfg, setup, batch, opt, progress, label=f"order {order}, ω = {omega:g}")
    cond.record(out.step, out.params, batch)
    row = {"order": int(order), "problem": name, "omega": omega, "init": _at(cond, 0), "trained": _at(cond, -1)}
    if opts.hessian:
        for stage, p in (("init", p0), ("trained", out.params)):
            row[stage]["hessian"] = _hessian_measures(res, p, batch)
    n_rows, n_par = int(jax.eval_shape(res, p0, batch).shape[0]), nn.num_params(p0)
    eps = float(jnp.finfo(jnp.result_type(float)).eps)
    x = np.asarray(batch[setup.problem.terms["pde"].points])[:, 0]
    return {
        **row, **_report.robust(out.history), "final_loss": finite(call(res.loss, out.params, batch)),
        "term_mse": {k: finite(v) for k, v in call(res.term_mse, out.params, batch).items()}, "status": out.status,
        "n_rows": n_rows, "n_params": n_par,
        "cond_cap": 1.0 / (max(n_rows, n_par) * eps),  # NTK cond ceiling set by the rank threshold τ
        "hessian_cap": 1.0 / (n_par * eps),  # the same for the Hessian (P × P)
        "sine_basis_condition": _sine_basis_condition(omega, x, int(order)),
        "compile_time_s": out.compile_time_s, "train_time_s": out.wall_time_s,
        "eval_steps": list(out.history.eval_steps), "rel_l2_curve": [finite(v) for v in out.history.metrics["rel_l2"]],
        "_params": out.params,
    }


@dataclasses.dataclass
class StiffnessOptions(_report.Options):
    """``experiment_options`` of biharmonic_stiffness.

    frequencies: ω values (>= 2 distinct positive numbers, the problems' ``k``).
    problems_by_order: {order: problem name}; each takes ``k``. hessian: also the dense Hessian (P x P).
    kappa_rank: r of κ_r = λ_1/λ_r. adaptive_methods: adaptive methods compared with static points ([] skips the
    comparison); adaptive_seeds, adaptive_frequency (default: the largest ω), adaptive_points (default
    ``sampling.points``) and static_methods (default [uniform, ``sampling.method``]) of that comparison.
    """

    frequencies: list = dataclasses.field(default_factory=lambda: [1, 2, 3, 4])
    problems_by_order: dict = dataclasses.field(default_factory=lambda: {2: "poisson_1d", 4: "biharmonic_1d"})
    hessian: bool = True
    kappa_rank: int = 10
    adaptive_methods: list = dataclasses.field(default_factory=lambda: ["rad", "rar_d"])
    adaptive_seeds: int = 2
    adaptive_frequency: float | None = None
    adaptive_points: dict | None = None
    static_methods: list | None = None

    def check(self, cfg: Any) -> None:
        w = self.frequencies
        if not isinstance(w, (list, tuple)) or len(set(w)) < 2 or any(
                isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0 for v in w):
            raise ValueError(f"experiment_options.frequencies: expected >= 2 distinct positive numbers, got {w!r}")
        self.frequencies = sorted(float(v) for v in w)
        try:
            by_order = {int(o): str(n) for o, n in self.problems_by_order.items()}
        except (TypeError, ValueError):
            by_order = {}
        if not by_order:
            raise ValueError("experiment_options.problems_by_order: expected {order: problem name}, got "
                             f"{self.problems_by_order!r}")
        self.problems_by_order = by_order
        for order, name in sorted(self.problems_by_order.items()):
            try:
                prob = problems.get(name, k=self.frequencies[0])  # the loop ends on the highest order
            except ValueError as e:
                raise ValueError(f"experiment_options.problems_by_order.{order}: {e}") from None
            if prob.order != order or "pde" not in prob.terms or prob.exact is None:
                raise ValueError(f"experiment_options.problems_by_order.{order}: expected a problem of order {order} "
                                 f"with a 'pde' term and an exact solution; {name!r} has order {prob.order}")
        check_int(self.kappa_rank, "kappa_rank", 2)
        check_int(self.adaptive_seeds, "adaptive_seeds", 1)
        self.adaptive_methods = check_names(self.adaptive_methods, "adaptive_methods", sampling.ADAPTIVE_METHODS, empty=True)
        static = list(dict.fromkeys(["uniform", cfg.sampling.method])) if self.static_methods is None else self.static_methods
        self.static_methods = check_names(static, "static_methods", _STATIC)
        if self.adaptive_frequency is None:
            self.adaptive_frequency = self.frequencies[-1]
        elif self.adaptive_frequency <= 0:
            raise ValueError(f"experiment_options.adaptive_frequency: expected a positive number, got {self.adaptive_frequency!r}")
        pts = dict(cfg.sampling.points or prob.default_points) if self.adaptive_points is None else self.adaptive_points
        if set(pts) != set(prob.domain.point_sets) or any(
                isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in pts.values()):
            raise ValueError(f"experiment_options.adaptive_points: expected {{point set: count >= 1}} for the point sets "
                             f"{sorted(prob.domain.point_sets)}, got {self.adaptive_points!r}")
        self.adaptive_points = dict(pts)
        if self.adaptive_methods:
            _check_adaptive(cfg, prob)


def biharmonic_stiffness(cfg: _config.RunConfig, out_dir: str, opts: StiffnessOptions, *, resume: bool = False,
                         progress: bool | None = None) -> dict:
    """Stiffness vs solution frequency ω for an order-2 (Poisson) and an order-4 (biharmonic) operator.

    For each order p and ω (u* = sin(ωπx)) measures the NTK / Gauss-Newton conditioning (and the Hessian of the
    loss) at initialisation and after ``train.steps`` steps of ``optimizer``, fits the growth exponent b in
    κ ∝ ω^b (:func:`sciml_jax.analysis.fit_power_law`) and compares it with the claim b = 2p; a sine-basis
    reference shows the ω^{2p} law where it holds exactly. Then compares static with adaptive sampling on the
    highest-order problem at ``adaptive_frequency``. Options: :class:`StiffnessOptions`.
    """
    _report.no_resume("biharmonic_stiffness", resume)
    set_dtype(cfg.dtype)
    os.makedirs(out_dir, exist_ok=True)
    t_start = time.perf_counter()
    by_order, freqs, r = opts.problems_by_order, opts.frequencies, opts.kappa_rank
    opt = optim.get(cfg.optimizer.name, **cfg.optimizer.options)  # one object: fit reuses its step for every ω
    rows = [_stiffness_row(cfg, opt, o, n, w, opts, progress) for o, n in sorted(by_order.items()) for w in freqs]
    fits = {}
    for o in sorted(by_order):
        rs = [x for x in rows if x["order"] == o]
        w = [x["omega"] for x in rs]
        f = {}
        for st in ("init", "trained"):
            for q in ("condition_number", "kappa_r", "lambda_max"):
                f[f"{st}.{q}"] = analysis.fit_power_law(w, [x[st][q] for x in rs])
            for q in ("condition_number", "lambda_max") if opts.hessian else ():
                f[f"{st}.hessian.{q}"] = analysis.fit_power_law(w, [x[st]["hessian"][q] for x in rs])
        f["sine_basis_condition"] = analysis.fit_power_law(w, [x["sine_basis_condition"] for x in rs])
        f["rel_l2"] = analysis.fit_power_law(w, [x["rel_l2"] for x in rs])
        fits[o] = f
    t_sweep = time.perf_counter() - t_start

    top = by_order[max(by_order)]
    ad_cfg = dataclasses.replace(cfg, problem=_config.ProblemConfig(top, {"k": opts.adaptive_frequency}))
    compare = list(dict.fromkeys(opts.static_methods + opts.adaptive_methods))
    runs = _sampling_runs(ad_cfg, compare, opts.adaptive_seeds, opts.adaptive_points, r, 4, progress, opt) \
        if opts.adaptive_methods else {}
    wall = time.perf_counter() - t_start
    figs = _plot_stiffness(rows, by_order, r, opts.hessian, out_dir)
    if runs:
        figs.update(_plot_sampling(runs, out_dir, "adaptive_biharmonic.png", "adaptive_final_points.png", "adaptive_points_"))

    opt_text, n_par, k = f"`{cfg.optimizer.name}` ({cfg.optimizer.options})", rows[0]["n_params"], _report.K_LAST
    lines = [
        f"# {cfg.name}: stiffness vs frequency for order-2 and order-4 operators", "", cfg.description or "", "",
        f"Problems: {', '.join(f'order {o}: `{n}`' for o, n in sorted(by_order.items()))} with u* = sin(ωπx), "
        f"ω ∈ {[f'{w:g}' for w in freqs]}. Model: MLP width {cfg.model.width} depth {cfg.model.depth} "
        f"({cfg.model.activation}), {n_par} parameters, the same θ_0 for every ω (seed {cfg.seed}); points "
        f"{dict(cfg.sampling.points or {})} ({cfg.sampling.method}); {cfg.train.steps} steps of {opt_text}; loss "
        f"weights {dict(cfg.loss.weights) or 'all 1'} for every ω (the plain PINN loss ½Σ_k mean_i r_k,i², so the "
        "measured conditioning is that of the unweighted problem; the scale of the forcing, (ωπ)^p, is left in the "
        "residual, which is what the ω^(2p) claim is about).", "",
        "NTK K = JJᵀ (nonzero spectrum = Gauss-Newton JᵀJ): cond = λ_max/λ_min⁺ (eigenvalues above "
        f"τ = max(N, P)·eps·λ_max), κ_r = λ_1/λ_{r}. Hessian: dense ∇²(½‖r‖²), cond = max|λ|/min|λ| over "
        "|λ| above the same kind of threshold (it is indefinite away from a minimum). Sine-basis reference: the "
        "Gauss-Newton matrix of the linear model Σ_{j<=ω} a_j sin(jπx) under the same operator and points. "
        f"Relative L2 error: final, best and median of the last {k} evaluations ({_report.ROBUST_NOTE})", "",
        "## Measurements", "",
        f"| order | ω | rel L2 final | best | median last {k} | final loss | NTK cond init | NTK cond trained | NTK rank "
        "init / trained | κ_r init | κ_r trained | λ_max init | λ_max trained "
        + ("| Hessian cond init | Hessian cond trained | Hessian λ<0 trained " if opts.hessian else "") + "| sine-basis κ |",
        "|---" * (14 + 3 * opts.hessian) + "|",
    ]
    for x in rows:
        i, t = x["init"], x["trained"]
        cells = [x["order"], f"{x['omega']:g}", fmt(x["rel_l2"]), fmt(x["rel_l2_best"]), fmt(x["rel_l2_median_last"]),
                 fmt(x["final_loss"]), fmt(i["condition_number"]), fmt(t["condition_number"]),
                 f"{i['numerical_rank']:.0f} / {t['numerical_rank']:.0f}", fmt(i["kappa_r"]), fmt(t["kappa_r"]),
                 fmt(i["lambda_max"]), fmt(t["lambda_max"])]
        if opts.hessian:
            cells += [fmt(i["hessian"]["condition_number"]), fmt(t["hessian"]["condition_number"]), t["hessian"]["negative"]]
        lines.append("| " + " | ".join(map(str, cells + [fmt(x["sine_basis_condition"])])) + " |")
    lines += ["", "## Growth exponents b in κ ∝ ω^b (log-log least squares; R² in brackets)", "",
              "| quantity | " + " | ".join(f"order {o} (claim 2p = {2 * o})" for o in sorted(by_order)) + " |",
              "|---|" + "---|" * len(by_order)]
    for key in (q for q in fits[min(by_order)] if q != "rel_l2"):
        fb = [fits[o][key] for o in sorted(by_order)]
        lines.append(f"| {key} | " + " | ".join("—" if f["b"] is None else f"{f['b']:.2f} ({f['r2']:.2f})" for f in fb) + " |")
    conclusion = _stiffness_conclusion(rows, fits, by_order, opts.hessian, r)
    lines += ["", "## Conclusion", ""] + conclusion
    table = _sampling_table(runs) if runs else {}
    if runs:
        ad, pts = cfg.sampling.adaptive, opts.adaptive_points
        lines += [
            "", f"## Adaptive vs static sampling: `{top}` at ω = {opts.adaptive_frequency:g}, {opts.adaptive_seeds} seed(s)",
            "", f"Every run: points {pts}, {cfg.train.steps} steps of {opt_text}, the same θ_0 per seed for every "
            f"method. Adaptive methods start from {cfg.sampling.method} points and move the `{ad.term}` points every "
            f"{ad.every} steps (no event at the last step). Held-out loss: ½‖r‖² on a common Sobol set 4x larger."
            + (" With fewer residual rows than parameters a converged fit can interpolate its own points, so what "
               "separates the methods is where the points are: the error between them (held-out loss, rel L2)."
               if sum(pts.values()) < n_par else ""), "",
        ] + _sampling_lines(runs, table, cfg, r, "###")
    compile_s = sum(x["compile_time_s"] for x in rows) + sum(x["compile_time_s"] for rs in runs.values() for x in rs)
    lines += ["", f"Run time: {wall:.0f} s in all ({t_sweep:.0f} s for the frequency sweep, NTK and Hessians included), "
              f"of which {compile_s:.0f} s compiling the training steps ({jax.default_backend()}).", ""]
    lines += _report.figure_lines(figs)
    done = all(x["status"] == "completed" for x in rows + [y for rs in runs.values() for y in rs])
    summary = {
        "name": cfg.name, "experiment": "biharmonic_stiffness", "status": "completed" if done else "nonfinite",
        "message": f"{len(by_order)} orders x {len(freqs)} frequencies; adaptive comparison {compare if runs else []}",
        "steps": cfg.train.steps, "wall_time_s": wall, "compile_time_s": compile_s,
        "rel_l2": max((x["rel_l2"] for x in rows if x["rel_l2"] is not None), default=None), "final_loss": None,
        "frequencies": freqs, "problems_by_order": {str(o): n for o, n in by_order.items()}, "rows": rows,
        "fits": {str(o): f for o, f in fits.items()},
        "adaptive": {"problem": top, "omega": opts.adaptive_frequency, "points": opts.adaptive_points,
                     "methods": compare if runs else [], "table": table, "runs": runs},
        "conclusion": conclusion, "figures": figs, **_report.environment(cfg),
    }
    return _report.write_outputs(out_dir, cfg, lines, summary)


def _trend(b: float | None, claim: float) -> str:
    if b is None:
        return "no fit"
    return f"b = {b:.2f}, " + ("consistent with" if abs(b - claim) <= 0.25 * claim else "far from") + f" {claim:g}"


def _stiffness_conclusion(rows: list, fits: dict, by_order: Mapping, hessian: bool, r: int) -> list[str]:
    """Conclusions computed from the measurements: fit quality, per-order exponents against 2p, which condition
    numbers sit at the numerical rank threshold (and so measure the threshold, not the problem)."""
    bad = [x for x in rows if x["rel_l2"] is None or x["rel_l2"] > 1e-2]
    if not bad:
        errs = [x["rel_l2"] for x in rows]
        lines = [f"- Every fit converged: relative L2 error {min(errs):.1e} to {max(errs):.1e} (target <= 1e-2), so the "
                 "after-training measurements are those of trained networks."]
    else:
        lines = ["- Not every fit converged (relative L2 error > 1e-2 for ω = "
                 + ", ".join(f"{x['omega']:g} (order {x['order']})" for x in bad)
                 + "): the after-training exponents mix trained and failed networks."]
    b = {o: {k: v["b"] for k, v in fits[o].items()} for o in by_order}
    for o in sorted(by_order):
        claim, rs = 2 * o, [x for x in rows if x["order"] == o]
        parts = [f"sine-basis reference κ: {_trend(b[o]['sine_basis_condition'], claim)}",
                 f"NTK λ_max after training: {_trend(b[o]['trained.lambda_max'], claim)}"]
        if b[o]["trained.kappa_r"] is not None:
            bk = b[o]["trained.kappa_r"]
            word = "falls" if bk < -0.5 else "grows" if bk > 0.5 else "is flat"
            parts.append(f"NTK κ_{r} = λ_1/λ_{r} after training {word} with ω (b = {bk:.2f})")
        ranks = [int(x["trained"]["numerical_rank"]) for x in rs]
        if ranks[-1] > ranks[0]:
            parts.append(f"the NTK's numerical rank after training grows with ω ({' → '.join(map(str, ranks))} of "
                         f"N = {rs[0]['n_rows']} rows)")
        fc = fits[o]["trained.condition_number"]
        at_cap = all(x["trained"]["condition_number"] >= 0.1 * x["cond_cap"] for x in rs)
        parts.append(
            f"NTK cond after training: {_trend(fc['b'], claim)} (R² {fc['r2']:.2f})"
            + (f", every value within 10x of the rank-threshold ceiling 1/(max(N, P)·eps) = {rs[0]['cond_cap']:.1e}"
               if at_cap else "") if fc["b"] is not None else "NTK cond after training: no fit")
        if hessian:
            h_cap = all(x["trained"]["hessian"]["condition_number"] >= 0.1 * x["hessian_cap"] for x in rs)
            parts.append(f"Hessian cond after training: {_trend(b[o]['trained.hessian.condition_number'], claim)}"
                         + (f", at the ceiling 1/(P·eps) = {rs[0]['hessian_cap']:.1e} for every ω" if h_cap else ""))
        lines.append(f"- Order {o} (`{by_order[o]}`, claim 2p = {claim}): " + "; ".join(parts) + ".")
    if all(b[o]["init.condition_number"] is not None and abs(b[o]["init.condition_number"]) < 0.5 for o in by_order):
        lines.append("- At initialisation the NTK/Gauss-Newton spectrum does not depend on ω: J = ∂r/∂θ involves the "
                     "operator and the points, not the forcing (all frequencies start from the same θ_0), so the "
                     "ω^(2p) law cannot show there.")
    low = [f"ω = {x['omega']:g} (order {x['order']}, {st})" for x in rows for st in ("init", "trained")
           if x[st]["numerical_rank"] < r]
    if low:
        lines.append(f"- κ_{r} is round-off dominated (λ_{r} below the rank threshold τ, numerical rank < {r}) for "
                     + ", ".join(low) + f": there the NTK has fewer than {r} significant eigenvalues (at "
                     "initialisation the network's features are nearly collinear).")
    if hessian:
        same = max(abs(x["trained"]["hessian"]["lambda_max"] - x["trained"]["lambda_max"]) / x["trained"]["lambda_max"]
                   for x in rows)
        if same < 1e-3:
            lines.append(f"- At the trained minima the Hessian's λ_max equals the NTK's (largest relative difference "
                         f"{same:.1e}): with r ≈ 0, ∇²(½‖r‖²) = JᵀJ + Σ r_i ∇²r_i ≈ JᵀJ.")

    def follows(q):
        return all(b[o][q] is not None and abs(b[o][q] - 2 * o) <= 0.5 * o for o in by_order)

    lam_ok, cond_ok = follows("trained.lambda_max"), follows("trained.condition_number")
    if lam_ok and not cond_ok:
        falls = all(b[o]["trained.kappa_r"] is not None and b[o]["trained.kappa_r"] < -0.5 for o in by_order)
        lines.append(
            "- Verdict: the ω^(2p) growth is real for the scale of the trained PINN's Gauss-Newton matrix (λ_max, "
            "the quantity that bounds a stable gradient step, lr < 2/λ_max) and exact for the idealised sine-basis "
            "model, but the network's condition number does not follow it: its smallest eigenvalues are set by the "
            "redundancy of an over-parameterised network (P > N: the Gauss-Newton matrix is singular and the NTK "
            "nearly so), not by the frequency"
            + (f", and the top of the spectrum even flattens as ω grows (κ_{r} falls)." if falls else "."))
    elif lam_ok:
        lines.append("- Verdict: both the scale (λ_max) and the condition number of the trained PINN follow ω^(2p).")
    else:
        lines.append("- Verdict: after training neither λ_max nor the condition number follows ω^(2p) (within 25% of "
                     "2p) on these frequencies; only the sine-basis reference does.")
    return lines


def _plot_stiffness(rows: list, by_order: Mapping, r: int, hessian: bool, out_dir: str) -> dict:
    import matplotlib.pyplot as plt  # noqa: PLC0415

    panels = [("condition_number", "NTK cond λ_max/λ_min⁺"), ("lambda_max", "NTK λ_max"), ("kappa_r", f"NTK κ_{r}")]
    panels += [("hessian", "Hessian cond max|λ|/min|λ|")] * hessian + [("sine", "sine-basis reference κ")]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.3 * len(panels), 4.0))
    ws = sorted({x["omega"] for x in rows})
    for ax, (q, title) in zip(axes, panels):
        for o in sorted(by_order):
            rs = [x for x in rows if x["order"] == o]
            w = np.asarray([x["omega"] for x in rs])
            for stage, ls in (("init", ":"), ("trained", "-")):
                if q == "sine" and stage == "trained":
                    continue
                v = [x["sine_basis_condition"] if q == "sine" else x[stage]["hessian"]["condition_number"]
                     if q == "hessian" else x[stage][q] for x in rs]
                ax.loglog(w, v, ls, marker="o", ms=4, label=f"order {o} {stage if q != 'sine' else ''}")
            if q in ("sine", "lambda_max"):
                ref = [x["sine_basis_condition"] if q == "sine" else x["trained"]["lambda_max"] for x in rs]
                ax.loglog(w, w ** (2 * o) * ref[0] / w[0] ** (2 * o), "k--", lw=0.8, label=f"ω^{2 * o}")
        if q in ("condition_number", "hessian"):
            ax.axhline(max(x["cond_cap" if q == "condition_number" else "hessian_cap"] for x in rows), color="gray",
                       lw=0.8, ls="-.", label="rank-threshold ceiling")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("ω")
        ax.set_xticks(ws, [f"{v:g}" for v in ws])
        ax.minorticks_off()
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    out = {"stiffness": _report.save(fig, os.path.join(out_dir, "stiffness.png"))}
    fig, axes = plt.subplots(1, len(by_order), figsize=(5.5 * len(by_order), 3.8), squeeze=False)
    for ax, o in zip(axes[0], sorted(by_order)):
        for x in (x for x in rows if x["order"] == o):
            ax.semilogy(x["eval_steps"], np.asarray([np.nan if v is None else v for v in x["rel_l2_curve"]], dtype=float),
                        label=f"ω = {x['omega']:g}")
        ax.set(xlabel="step", ylabel="relative L2 error", title=f"order {o} (`{by_order[o]}`): training")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    out["convergence"] = _report.save(fig, os.path.join(out_dir, "convergence.png"))
    return out


register("sharp_gradient_sampling", sharp_gradient_sampling, SharpOptions)
register("biharmonic_stiffness", biharmonic_stiffness, StiffnessOptions)
