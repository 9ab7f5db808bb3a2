"""Adaptive-sampling experiments: static vs residual-based collocation on a sharp-gradient problem (the paper's
experiment 3) and the stiffness of order-2 vs order-4 operators against the solution frequency (its second next
check). Each writes report.md, PNG figures and metrics.json into ``out_dir``."""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .. import analysis, nn, pinn, plotting, problems, sampling, train
from .. import config as _config
from ._train import build, register, set_dtype
from ._report import check_int as _check_int
from ._report import config_block as _config_block
from ._report import environment as _environment
from ._report import finite as _finite
from ._report import write_outputs as _write_outputs

# ----------------------------------------------------------------------------------------------- helpers


def _fmt(v: Any, spec: str = ".3e") -> str:
    if v is None:
        return "—"
    if isinstance(v, (float, int, np.floating, np.integer)) and not isinstance(v, bool):
        return format(float(v), spec) if math.isfinite(float(v)) else "—"
    return str(v)


class _Conditioner:
    """NTK K = J Jᵀ (its nonzero eigenvalues are those of the Gauss-Newton matrix Jᵀ J) and its conditioning.

    Returns condition_number = λ_max / λ_min⁺ (eigenvalues above the rank threshold τ = max(N, P)·eps·λ_max,
    see :class:`sciml_jax.analysis.Spectrum`), κ_r = λ_1 / λ_r for a fixed r (threshold-free, comparable across
    runs as long as λ_r > τ), λ_max, λ_min⁺ and the numerical rank. Jitted once per batch shape.
    """

    def __init__(self, residual: Any, r: int):
        self.r = r

        def measure(params, batch):
            s = analysis.spectrum(analysis.ntk(residual, params, batch))
            lam = s.eigenvalues
            lam_min = jnp.min(jnp.where(jnp.abs(lam) > s.threshold, lam, jnp.inf))
            r_eff = min(r, lam.shape[0]) - 1
            return {
                "condition_number": s.condition_number,
                "kappa_r": lam[0] / lam[r_eff],
                "kappa_r_reliable": lam[r_eff] > s.threshold,
                "lambda_max": lam[0],
                "lambda_min": lam_min,
                "numerical_rank": s.numerical_rank,
            }

        self._measure = jax.jit(measure)

    def __call__(self, params: Any, batch: Mapping[str, Any]) -> dict:
        out = self._measure(params, batch)
        return {k: (bool(v) if k == "kappa_r_reliable" else float(v)) for k, v in out.items()}


def _stats(values: Sequence[float]) -> dict:
    v = np.asarray([np.nan if x is None else x for x in values], dtype=float)
    ok = v[np.isfinite(v)]
    if not ok.size:
        return {"mean": None, "std": None, "min": None, "max": None, "geomean": None}
    return {
        "mean": float(ok.mean()),
        "std": float(ok.std()),
        "min": float(ok.min()),
        "max": float(ok.max()),
        "geomean": float(np.exp(np.mean(np.log(ok)))) if np.all(ok > 0) else None,
    }


def _adaptive_options(cfg: _config.RunConfig, method: str) -> dict:
    opts = dataclasses.asdict(cfg.sampling.adaptive)
    opts["method"] = method
    if opts.get("every") is None and opts.get("on_plateau") is None:
        raise ValueError(
            "sampling.adaptive: the adaptive runs need a schedule; set sampling.adaptive.every and/or on_plateau "
            "(the method there is replaced by each compared method)"
        )
    return opts


# ----------------------------------------------------------------------------------------------- sharp gradient


_STATIC = tuple(sampling.METHODS)


def _train_method(
    setup: Any,
    method: str,
    counts: Mapping[str, int],
    cfg: _config.RunConfig,
    conditioner: _Conditioner,
    holdout: Mapping[str, Any],
    progress: bool | None,
    start_cond: dict,
) -> dict:
    """One run: static ``method`` points, or ``cfg.sampling.method`` points moved by the adaptive ``method``."""
    domain = setup.problem.domain
    loss_fn = jax.jit(setup.residual.loss)  # eager evaluation of the PDE residual dispatches op by op: slow
    resampler = None
    if method in _STATIC:
        batch = sampling.sample(domain, dict(counts), method, setup.key_points)
    else:
        batch = sampling.sample(domain, dict(counts), cfg.sampling.method, setup.key_points)
        resampler = sampling.Resampler.from_options(
            setup.residual, domain, _adaptive_options(cfg, method), key=jax.random.fold_in(setup.key_points, 1),
            until=cfg.train.steps,
        )
    start_key = method if method in _STATIC else cfg.sampling.method
    if start_key not in start_cond:
        start_cond[start_key] = conditioner(setup.params, batch)
    result = train.fit(
        setup.residual,
        setup.params,
        batch,
        setup.optimizer,
        cfg.train.steps,
        metrics=setup.metrics,
        eval_every=cfg.train.eval_every,
        chunk=cfg.train.chunk,
        progress=cfg.train.progress if progress is None else progress,
        callbacks=[resampler] if resampler is not None else [],
    )
    final_batch = result.batch if result.batch is not None else batch
    h = result.history
    events = [e for e in h.events if e["kind"] == "resample"]
    return {
        "rel_l2": _finite(h.metrics["rel_l2"][-1]),
        "final_loss": _finite(loss_fn(result.params, final_batch)),
        "holdout_loss": _finite(loss_fn(result.params, holdout)),
        "condition_start": start_cond[start_key],
        "condition_end": conditioner(result.params, final_batch),
        "events": len(events),
        "moved": int(sum(e["moved"] for e in events)),
        "status": result.status,
        "wall_time_s": result.wall_time_s,
        "compile_time_s": result.compile_time_s,
        "eval_steps": list(h.eval_steps),
        "rel_l2_curve": list(h.metrics["rel_l2"]),
        "_params": result.params,
        "_snapshots": resampler.snapshots if resampler is not None else [{"step": 0, "points": np.asarray(batch[
            setup.problem.terms[cfg.sampling.adaptive.term].points])}],
    }


def _paired_wins(a: Sequence[float | None], b: Sequence[float | None]) -> int:
    return sum(1 for x, y in zip(a, b) if x is not None and y is not None and x < y)


def _sharp_conclusion(methods: Sequence[str], table: Mapping[str, dict], per_seed: Mapping[str, list], seeds: int) -> list[str]:
    """Verdict computed from the numbers: ranking by geometric-mean relative L2 error, paired (per seed) wins."""
    def g(m: str) -> float:
        v = table[m]["rel_l2"]["geomean"]
        return math.inf if v is None else v

    ranking = sorted(methods, key=g)
    best = ranking[0]
    lines = [
        f"- Ranking by geometric-mean relative L2 error over {seeds} seed(s): "
        + " < ".join(f"{m} ({_fmt(g(m))})" for m in ranking)
        + "."
    ]
    err = {m: [r["rel_l2"] for r in per_seed[m]] for m in methods}
    for m in ranking[1:]:
        wins = _paired_wins(err[best], err[m])
        lines.append(
            f"- {best} vs {m}: error ratio {g(best) / g(m):.2f} (geometric means), {best} lower on {wins}/{seeds} "
            "seed(s)" + (" — consistent" if wins == seeds else " — not consistent across seeds") + "."
        )
    static = [m for m in methods if m in _STATIC]
    adaptive = [m for m in methods if m not in _STATIC]
    if static and adaptive:
        bs = min(static, key=g)
        ba = min(adaptive, key=g)
        wins = _paired_wins(err[ba], err[bs])
        ratio = g(ba) / g(bs)
        if ratio < 1 and wins == seeds:
            verdict = f"adaptive sampling wins: {ba} reduces the error of the best static set ({bs}) by a factor {1 / ratio:.2f} on every seed"
        elif ratio < 1:
            verdict = (
                f"adaptive sampling wins on average ({ba}: factor {1 / ratio:.2f} below {bs}) but only on {wins}/{seeds} "
                "seeds: the gain is within the seed-to-seed spread"
            )
        else:
            verdict = f"no gain from adaptive sampling here: the best adaptive method ({ba}) is {ratio:.2f}x the error of {bs}"
        lines.append(f"- Verdict: {verdict} (equal point count, steps and optimizer).")
        if g(ranking[0]) > 0.5:
            lines.append(
                f"- Caveat: even the best method has a relative L2 error of {_fmt(g(ranking[0]))} (> 0.5): no method "
                "solved the problem with this budget, so the ranking compares failed fits."
            )
        ks = {m: table[m]["kappa_r_end"]["geomean"] for m in methods}
        ks0 = {m: table[m]["kappa_r_start"]["geomean"] for m in methods}
        if ks[ba] is not None and ks[bs] is not None:
            lines.append(
                f"- Conditioning (NTK κ_r = λ_1/λ_r, geometric mean): start {_fmt(ks0[bs])} ({bs}) / {_fmt(ks0[ba])} "
                f"({ba}); end {_fmt(ks[bs])} ({bs}) vs {_fmt(ks[ba])} ({ba}): adaptive points "
                + ("lower" if ks[ba] < ks[bs] else "raise")
                + f" the end-of-training κ_r by a factor {max(ks[ba], ks[bs]) / min(ks[ba], ks[bs]):.2f}. "
                "Concentrating points where the residual is large makes the residual rows there larger, so the NTK's "
                "top eigenvalues grow with them: adaptive sampling acts on the data side of the problem, and whether "
                "it improves κ is what this column measures, not an assumption."
            )
    return lines


def _plot_sharp(problem: Any, apply: Any, runs: Mapping[str, dict], per_seed: Mapping[str, list], out_dir: str) -> dict:
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    figs = {}
    methods = list(runs)
    fig, axes = plt.subplots(1, 3, figsize=(16.0, 4.2))
    for m in methods:
        curves = np.asarray([r["rel_l2_curve"] for r in per_seed[m]], dtype=float)
        steps = per_seed[m][0]["eval_steps"]
        gm = np.exp(np.nanmean(np.log(curves), axis=0))
        line = axes[0].semilogy(steps, gm, label=m, lw=1.5)[0]
        axes[0].fill_between(steps, curves.min(0), curves.max(0), color=line.get_color(), alpha=0.15)
    axes[0].set(xlabel="step", ylabel="relative L2 error", title="error vs step (geometric mean, band: min-max)")
    x = np.arange(len(methods))
    for j in range(len(per_seed[methods[0]])):
        axes[1].scatter(x + 0.05 * (j - 1), [per_seed[m][j]["rel_l2"] for m in methods], s=18, label=f"seed {j}")
    axes[1].set_yscale("log")
    axes[1].set_xticks(x, methods)
    axes[1].set(ylabel="final relative L2 error", title="final error per seed")
    for j, (when, mk) in enumerate((("condition_start", "o"), ("condition_end", "s"))):
        vals = [[r[when]["kappa_r"] for r in per_seed[m]] for m in methods]
        for i, v in enumerate(vals):
            axes[2].scatter(np.full(len(v), i + (0.15 if j else -0.15)), v, marker=mk, s=18,
                            color="tab:blue" if j == 0 else "tab:red", label=("start" if j == 0 else "end") if i == 0 else None)
    axes[2].set_yscale("log")
    axes[2].set_xticks(x, methods)
    axes[2].set(ylabel="NTK κ_r = λ_1/λ_r", title="conditioning at start and end of training")
    for ax in axes:
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    figs["comparison"] = _save(fig, os.path.join(out_dir, "sampling_comparison.png"))

    # final points of every method over its own final |error|
    dtype = jnp.result_type(float)
    lo, hi = problem.domain.bounds()
    n = 161
    aa, bb = np.meshgrid(np.linspace(lo[0], hi[0], n), np.linspace(lo[1], hi[1], n))
    grid = jnp.asarray(np.stack([aa.ravel(), bb.ravel()], axis=1), dtype)
    u_star = np.asarray(jax.vmap(problem.exact)(grid))
    errs = {m: np.abs(np.asarray(jax.vmap(lambda y, p=r["_params"]: apply(p, y))(grid)) - u_star) for m, r in runs.items()}
    top = max(float(e.max()) for e in errs.values())
    norm = LogNorm(vmin=top * 1e-4, vmax=top)
    fig, axes = plt.subplots(1, len(methods), figsize=(3.9 * len(methods), 3.9), squeeze=False)
    for ax, m in zip(axes[0], methods):
        im = ax.pcolormesh(aa, bb, np.maximum(errs[m], top * 1e-4).reshape(aa.shape), shading="auto", norm=norm)
        p = np.asarray(runs[m]["_snapshots"][-1]["points"])
        ax.scatter(p[:, 0], p[:, 1], s=1.5, c="w", edgecolors="none", alpha=0.8)
        ax.set_title(f"{m}: rel L2 {_fmt(runs[m]['rel_l2'], '.2e')}")
        ax.set_aspect("equal")
        ax.set_xlabel("x₁")
    axes[0, 0].set_ylabel("x₂")
    fig.colorbar(im, ax=list(axes[0]), label="|u - u*| (final model)", shrink=0.85)
    figs["final_points"] = _save(fig, os.path.join(out_dir, "final_points.png"), tight=False)
    for m, r in runs.items():
        if m not in _STATIC and len(r["_snapshots"]) > 1:
            figs[f"points_{m}"] = plotting.plot_points(
                problem, apply, r["_params"], r["_snapshots"], os.path.join(out_dir, f"points_{m}.png"),
                title=f"{m}: interior points at chosen steps over the final |error|",
            )
    return figs


def _save(fig: Any, path: str, tight: bool = True) -> str:
    import matplotlib.pyplot as plt

    if tight:
        fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def sharp_gradient_sampling(
    cfg: _config.RunConfig,
    out_dir: str,
    *,
    resume: bool = False,
    progress: bool | None = None,
    methods: list | None = None,
    seeds: int = 3,
    kappa_rank: int = 50,
    holdout_factor: int = 4,
) -> dict:
    """Static (uniform random, Sobol, ...) vs adaptive (RAD, RAR-D, R3) collocation at equal point count, steps and
    optimizer, several seeds: relative L2 error, final loss (own final points and a common held-out Sobol set) and
    the NTK / Gauss-Newton conditioning at the start and end of training.

    Adaptive runs start from ``sampling.method`` points and are moved by ``sampling.adaptive`` (its ``method`` is
    replaced by each compared method; ``every``, ``k``, ``c``, ``candidates``, ``replace``, ``term`` are shared).
    Seed s uses model and points of ``PRNGKey(cfg.seed + s)`` for every method (paired comparison).

    Options (``experiment_options``):
        methods: compared methods, static sampler names and/or ``rad``, ``rar_d``, ``r3``
            (default uniform, sobol, rad, rar_d, r3).
        seeds: number of seeds (>= 1).
        kappa_rank: r of κ_r = λ_1/λ_r.
        holdout_factor: the held-out set has this many times the training points (Sobol, another seed).
    """
    if resume:
        raise ValueError("resume: the sharp_gradient_sampling experiment does not checkpoint; run it again")
    methods = ["uniform", "sobol", "rad", "rar_d", "r3"] if methods is None else list(methods)
    allowed = _STATIC + sampling.ADAPTIVE_METHODS
    if not methods or any(m not in allowed for m in methods) or len(set(methods)) != len(methods):
        raise ValueError(f"experiment_options.methods: expected distinct names among {', '.join(allowed)}; got {methods!r}")
    seeds = _check_int(seeds, "seeds", 1)
    kappa_rank = _check_int(kappa_rank, "kappa_rank", 2)
    holdout_factor = _check_int(holdout_factor, "holdout_factor", 1)
    if any(m in sampling.ADAPTIVE_METHODS for m in methods):
        _adaptive_options(cfg, "rad")  # schedule present?
    set_dtype(cfg.dtype)
    os.makedirs(out_dir, exist_ok=True)
    t_start = time.perf_counter()
    per_seed: dict[str, list] = {m: [] for m in methods}
    first_runs: dict[str, dict] = {}
    setup = None
    for s in range(seeds):
        setup = build(dataclasses.replace(cfg, seed=cfg.seed + s))
        problem = setup.problem
        if problem.exact is None:
            raise ValueError(f"problem: {problem.name!r} has no exact solution; this experiment reports errors")
        counts = dict(cfg.sampling.points or problem.default_points)
        holdout = sampling.sample(
            problem.domain, {k: holdout_factor * v for k, v in counts.items()}, "sobol", 10_000 + cfg.seed + s
        )
        conditioner = _Conditioner(setup.residual, kappa_rank)
        start_cond: dict = {}
        for m in methods:
            run = _train_method(setup, m, counts, cfg, conditioner, holdout, progress, start_cond)
            if s == 0:
                first_runs[m] = run
            per_seed[m].append(run)
    wall = time.perf_counter() - t_start
    problem, apply = setup.problem, setup.apply

    table = {}
    for m in methods:
        rows = per_seed[m]
        table[m] = {
            "rel_l2": _stats([r["rel_l2"] for r in rows]),
            "final_loss": _stats([r["final_loss"] for r in rows]),
            "holdout_loss": _stats([r["holdout_loss"] for r in rows]),
            "cond_start": _stats([r["condition_start"]["condition_number"] for r in rows]),
            "cond_end": _stats([r["condition_end"]["condition_number"] for r in rows]),
            "kappa_r_start": _stats([r["condition_start"]["kappa_r"] for r in rows]),
            "kappa_r_end": _stats([r["condition_end"]["kappa_r"] for r in rows]),
            "lambda_max_end": _stats([r["condition_end"]["lambda_max"] for r in rows]),
            "moved": _stats([r["moved"] for r in rows]),
        }
    figs = _plot_sharp(problem, apply, first_runs, per_seed, out_dir)
    counts = dict(cfg.sampling.points or problem.default_points)
    ad = cfg.sampling.adaptive
    lines = [
        f"# {cfg.name}: adaptive vs static collocation",
        "",
        cfg.description or problem.description,
        "",
        f"Problem: {problem.description}",
        "",
        f"Every run: {counts} points, {cfg.train.steps} steps of `{cfg.optimizer.name}` "
        f"({cfg.optimizer.options}), MLP width {cfg.model.width} depth {cfg.model.depth} ({cfg.model.activation}), "
        f"{seeds} seed(s) (same initialisation per seed for every method). Adaptive methods start from "
        f"{cfg.sampling.method} points and resample the `{ad.term}` term's points every {ad.every} steps"
        + (f" / on plateau {ad.on_plateau}" if ad.on_plateau else "")
        + f" (candidates: {ad.candidates or '10 x points'} {ad.sampler} points per event; RAD k, c = "
        f"{ad.k if ad.k is not None else 1}, {ad.c if ad.c is not None else 1}; RAR-D k, c = "
        f"{ad.k if ad.k is not None else 2}, {ad.c if ad.c is not None else 0}, exchanging {ad.replace:.0%} of the "
        "points; R3 keeps points above the mean |r| and redraws the rest uniformly). No event at the last step.",
        "",
        "Conditioning: NTK K = JJᵀ (same nonzero spectrum as the Gauss-Newton matrix JᵀJ) on the run's own points, "
        f"at θ_0 (start) and at the final θ on the final points (end). cond = λ_max/λ_min⁺ over eigenvalues above "
        f"τ = max(N, P)·eps·λ_max; κ_r = λ_1/λ_{kappa_rank} does not depend on that threshold. The held-out loss is "
        f"½‖r‖² on a common Sobol set {holdout_factor}x larger (same for every method of a seed).",
        "",
        "## Results (mean ± std over seeds; geometric mean for the error)",
        "",
        "| method | rel L2 (geo mean) | rel L2 mean ± std | final loss (own points) | held-out loss | cond start "
        "| cond end | κ_r start | κ_r end | λ_max end | points moved |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m in methods:
        t = table[m]
        lines.append(
            f"| {m} | {_fmt(t['rel_l2']['geomean'])} | {_fmt(t['rel_l2']['mean'])} ± {_fmt(t['rel_l2']['std'], '.1e')} "
            f"| {_fmt(t['final_loss']['mean'])} | {_fmt(t['holdout_loss']['mean'])} | {_fmt(t['cond_start']['mean'])} "
            f"| {_fmt(t['cond_end']['mean'])} | {_fmt(t['kappa_r_start']['mean'])} | {_fmt(t['kappa_r_end']['mean'])} "
            f"| {_fmt(t['lambda_max_end']['mean'])} | {_fmt(t['moved']['mean'], '.0f')} |"
        )
    lines += ["", "Per seed (relative L2 error):", "", "| method | " + " | ".join(f"seed {cfg.seed + s}" for s in range(seeds)) + " |",
              "|---|" + "---|" * seeds]
    for m in methods:
        lines.append(f"| {m} | " + " | ".join(_fmt(r["rel_l2"]) for r in per_seed[m]) + " |")
    lines += ["", "## Conclusion", ""]
    lines += _sharp_conclusion(methods, table, per_seed, seeds)
    unreliable = sum(not r[w]["kappa_r_reliable"] for m in methods for r in per_seed[m] for w in ("condition_start", "condition_end"))
    if unreliable:
        lines.append(f"- Note: in {unreliable} measurement(s) λ_{kappa_rank} fell below the rank threshold, so κ_r there is round-off dominated.")
    lines += ["", "## Figures", ""] + [f"![{k}]({os.path.basename(v)})" for k, v in figs.items()] + [""]
    lines += _config_block(cfg)
    runs_json = {
        m: [{k: v for k, v in r.items() if not k.startswith("_") and k not in ("eval_steps",)} for r in per_seed[m]]
        for m in methods
    }
    summary = {
        "name": cfg.name,
        "experiment": "sharp_gradient_sampling",
        "problem": problem.name,
        "problem_options": problem.options,
        "status": "completed" if all(r["status"] == "completed" for rs in per_seed.values() for r in rs) else "nonfinite",
        "message": f"{len(methods)} methods x {seeds} seeds",
        "steps": cfg.train.steps,
        "wall_time_s": wall,
        "compile_time_s": sum(r["compile_time_s"] for rs in per_seed.values() for r in rs),
        "rel_l2": min(t["rel_l2"]["geomean"] or math.inf for t in table.values()),
        "final_loss": None,
        "methods": methods,
        "seeds": seeds,
        "points": counts,
        "table": table,
        "runs": runs_json,
        "eval_steps": per_seed[methods[0]][0]["eval_steps"],
        "conclusion": _sharp_conclusion(methods, table, per_seed, seeds),
        "figures": figs,
        "report": os.path.join(out_dir, "report.md"),
        **_environment(cfg),
    }
    _write_outputs(out_dir, cfg, lines, summary)
    return summary


# ----------------------------------------------------------------------------------------------- stiffness


def _fit_exponent(omegas: Sequence[float], values: Sequence[float | None]) -> dict:
    """Least-squares slope b of log v = log c + b log ω (None when fewer than 2 positive finite values)."""
    w = np.asarray(omegas, dtype=float)
    v = np.asarray([np.nan if x is None else x for x in values], dtype=float)
    ok = np.isfinite(v) & (v > 0)
    if ok.sum() < 2:
        return {"b": None, "c": None, "r2": None}
    x, y = np.log(w[ok]), np.log(v[ok])
    b, a = np.polyfit(x, y, 1)
    resid = y - (a + b * x)
    ss = float(np.sum((y - y.mean()) ** 2))
    return {"b": float(b), "c": float(np.exp(a)), "r2": float(1 - np.sum(resid**2) / ss) if ss > 0 else None}


def _zero_model(y: jax.Array) -> jax.Array:
    """u ≡ 0, written as 0·sin(Σy): the folx forward Laplacian fails on a function whose output does not depend on
    its input (``sciml_jax.operators.laplacian(lambda y: jnp.zeros(()))(x)`` raises AttributeError, and so does
    the biharmonic of a linear function), and every derivative of sin depends on y; all values are exactly 0."""
    return 0.0 * jnp.sin(jnp.sum(y))


class _Family:
    """The problems p(ω) of one order (u* = sin(ωπx)) as ONE residual whose data is read from the batch.

    Every term of these linear problems is affine in the model: fn_ω(u, x) = A[u](x) + fn_ω(0, x), with the
    operator part A linear and the same for every ω, and the data part fn_ω(0, x) (-f, -g, -h) depending on ω.
    The residual built here evaluates A[u](x) = fn_ref(u, x) - fn_ref(0, x) with the problem at one fixed
    reference ω and adds the data c = fn_ω(0, x) carried by the batch:

        batch[s] = (x: (n_s, d), c: (n_s, T_s))     one column of c per term evaluated on the point set s,

    so all ω (and every point set of the same shapes: other seeds, resampled points) go through the same jitted
    functions. The training step, the NTK and the dense Hessian are then traced and compiled once per order
    instead of once per ω (tracing the order-4 Levenberg-Marquardt step through nested forward Laplacians alone
    takes tens of seconds). The rounding added by fn_ref(u, x) - fn_ref(0, x) is eps·|f_ref| (f_ref at the
    smallest ω), far below the residuals reported.
    """

    def __init__(self, problem: Any, apply: Any, weights: Mapping[str, float]):
        self.columns: dict[str, list[str]] = {}
        for name, term in problem.terms.items():
            self.columns.setdefault(term.points, []).append(name)
        terms = {}
        for name, term in problem.terms.items():
            j = self.columns[term.points].index(name)

            def fn(u, x, c, _fn=term.fn, _j=j):
                return _fn(u, x) - _fn(_zero_model, x) + c[_j]

            terms[name] = problems.Term(term.points, fn, term.description)
        self.problem = dataclasses.replace(problem, terms=terms)
        self.residual = pinn.residual(self.problem, apply, weights)
        self.apply = apply
        self._data_fns: dict = {}

        def err(params, x, u_star):
            u = jax.vmap(lambda y: apply(params, y))(x)
            return jnp.linalg.norm(jnp.reshape(u, u_star.shape) - u_star) / jnp.linalg.norm(u_star)

        self._rel_l2 = jax.jit(err)
        self.loss = jax.jit(self.residual.loss)
        self.term_mse = jax.jit(self.residual.term_mse)

    def data(self, problem: Any, batch: Mapping[str, Any]) -> dict:
        """The batch of ``problem`` (the family member at some ω) for points ``batch`` ({set: (n, d)}).

        The data c = fn_ω(0, x) is computed by one jitted function per problem (keyed by name and options), so
        resampled point sets of the same problem reuse it."""
        key = (problem.name, repr(sorted(problem.options.items())))
        if key not in self._data_fns:
            columns = {s: [problem.terms[n].fn for n in names] for s, names in self.columns.items()}

            def data(points):
                return {
                    s: (points[s], jnp.stack([jax.vmap(lambda y, _fn=fn: jnp.reshape(_fn(_zero_model, y), ()))(points[s])
                                              for fn in fns], axis=1))
                    for s, fns in columns.items()
                }

            self._data_fns[key] = jax.jit(data)
        return self._data_fns[key]({s: jnp.asarray(batch[s]) for s in self.columns})

    def check(self, problem: Any, params: Any, batch: Mapping[str, Any]) -> None:
        """Raise ValueError unless the data-driven residual equals ``problem``'s own residual at ``params``."""
        plain = pinn.residual(problem, self.apply, self.residual.weights)
        a = np.asarray(jax.jit(lambda p, x: plain(p, x))(params, batch))  # jitted: eager folx dispatches thousands of small ops
        b = np.asarray(jax.jit(lambda p, x: self.residual(p, x))(params, self.data(problem, batch)))
        if not np.allclose(a, b, rtol=1e-9, atol=1e-9 * float(np.max(np.abs(a)))):
            raise ValueError(
                f"experiment_options.problems_by_order: {problem.name!r} does not split into the same operator for "
                f"every ω plus data, fn(u, x) = A[u](x) + fn(0, x) (max deviation {float(np.max(np.abs(a - b))):.3e}); "
                "this experiment needs that (every linear problem of a family with fixed coefficients has it)"
            )

    def rel_l2(self, problem: Any) -> Any:
        """``params -> relative L2 error`` of ``problem`` on its evaluation grid (one jitted function for all ω)."""
        dtype = jnp.result_type(float)
        x = jnp.asarray(problem.eval_points(), dtype)
        u_star = jax.vmap(problem.exact)(x)
        return lambda params: float(self._rel_l2(params, x, u_star))


class _Trainer:
    """``steps`` optimizer steps: a Python loop over a jitted ``lax.scan`` of ``chunk`` steps of
    :func:`sciml_jax.train.make_step` (the optimizer gets the same extras as in ``fit``: residual_fn,
    jacobian_fn, ...), compiled once per shape signature and reused for every run of the experiment.

    ``train.fit`` compiles ahead of time on every call; with one order-4 Levenberg-Marquardt step costing tens of
    seconds to trace and compile, calling it 12 times (4 frequencies + 8 adaptive-comparison runs) would spend most
    of the experiment's budget compiling identical code. Losses are recorded per step, the relative L2 error after
    every chunk; a non-finite loss stops the run and keeps the last finite parameters.
    """

    def __init__(self, residual: Any, optimizer: Any, chunk: int):
        step = train.make_step(residual, optimizer)
        self.optimizer, self.chunk = optimizer, int(chunk)

        def run(params, opt_state, batch):
            def body(carry, _):
                p, s = carry
                out = step(p, s, batch)
                return (out[0], out[1]), out[2]

            (p, s), losses = jax.lax.scan(body, (params, opt_state), None, length=self.chunk)
            return p, s, losses

        self._jit = jax.jit(run)
        self._compiled: dict = {}

    def _get(self, params: Any, state: Any, batch: Any) -> tuple[Any, float]:
        leaves, tree = jax.tree.flatten((params, state, batch))
        key = (tree, tuple((np.shape(x), str(getattr(x, "dtype", type(x).__name__))) for x in leaves))
        if key not in self._compiled:
            t0 = time.perf_counter()
            self._compiled[key] = self._jit.lower(params, state, batch).compile()
            return self._compiled[key], time.perf_counter() - t0
        return self._compiled[key], 0.0

    def fit(self, params: Any, batch: Any, steps: int, metric: Any, on_chunk: Any = None) -> dict:
        """Train from ``params`` for ``steps`` steps (a multiple of the chunk); ``metric(params) -> float`` is
        recorded after every chunk, then ``on_chunk(step, params, batch, chunk_losses) -> new batch or None``
        runs (not after the last chunk)."""
        state = self.optimizer.init(params)
        compiled, compile_time = self._get(params, state, batch)
        losses, eval_steps, curve = [], [0], [metric(params)]
        done, status, wall = 0, "completed", 0.0
        while done < steps:
            t0 = time.perf_counter()
            p, s, ls = compiled(params, state, batch)
            ls = np.asarray(ls)
            wall += time.perf_counter() - t0
            if not np.all(np.isfinite(ls)):
                status = f"nonfinite loss near step {done + int(np.argmin(np.isfinite(ls)))}; last finite parameters kept"
                break
            params, state = p, s
            losses.append(ls)
            done += self.chunk
            eval_steps.append(done)
            curve.append(metric(params))
            if on_chunk is not None and done < steps:
                new = on_chunk(done, params, batch, ls)
                if new is not None:
                    batch = new
        return {
            "params": params,
            "batch": batch,
            "status": status,
            "steps": done,
            "loss_curve": np.concatenate(losses) if losses else np.zeros(0),
            "eval_steps": eval_steps,
            "rel_l2_curve": curve,
            "rel_l2": curve[-1],
            "wall_time_s": wall,
            "compile_time_s": compile_time,
        }


def _make_hessian(residual: Any) -> Any:
    """``(params, batch) -> H = ∇²(½‖r‖²)`` (dense P × P, forward over reverse), one jitted function."""
    return jax.jit(lambda params, batch: analysis.hessian(lambda p: residual.loss(p, batch), params))


def _hessian_measures(hessian_fn: Any, params: Any, batch: Mapping[str, Any]) -> dict:
    """Hessian H = ∇²(½‖r‖²) (dense, P × P): λ_max, λ_min, max|λ| / min|λ| over |λ| > τ, number of negative λ."""
    lam = np.linalg.eigvalsh(np.asarray(hessian_fn(params, batch)))
    a = np.abs(lam)
    tau = a.max() * len(lam) * np.finfo(lam.dtype).eps
    return {
        "lambda_max": float(lam[-1]),
        "lambda_min": float(lam[0]),
        "condition_number": float(a.max() / a[a > tau].min()),
        "negative": int(np.sum(lam < -tau)),
    }


def _sine_basis_condition(omega: float, x: np.ndarray, order: int) -> float:
    """Reference: κ of the Gauss-Newton matrix of a sine-series model u = Σ_{j<=ω} a_j sin(jπx) for the operator of
    order p on the points x: the operator maps sin(jπx) to ±(jπ)^p sin(jπx), so with (near-)orthogonal sampling
    κ = (ω π)^{2p} / π^{2p} = ω^{2p} exactly for an exact quadrature; computed here on the actual points."""
    j = np.arange(1, int(round(omega)) + 1)
    phi = (j[None, :] * np.pi) ** order * np.sin(np.pi * x[:, None] * j[None, :])
    s = np.linalg.svd(phi, compute_uv=False)
    return float((s[0] / s[-1]) ** 2)


def _stiffness_order(
    cfg: _config.RunConfig, order: int, name: str, frequencies: Sequence[float], hessian: bool, kappa_rank: int
) -> tuple[list, dict]:
    """Train and measure every ω of one order with one family residual (one compilation of each function)."""
    rows: list = []
    tools: dict = {}
    for omega in frequencies:
        setup = build(dataclasses.replace(cfg, problem=_config.ProblemConfig(name, {"k": omega})))
        if not tools:
            fam = _Family(setup.problem, setup.apply, setup.residual.weights)
            tools = {
                "family": fam,
                "trainer": _Trainer(fam.residual, setup.optimizer, cfg.train.eval_every),
                "conditioner": _Conditioner(fam.residual, kappa_rank),
                "hessian": _make_hessian(fam.residual) if hessian else None,
                "apply": setup.apply,
            }
        elif omega == frequencies[-1]:
            tools["family"].check(setup.problem, setup.params, setup.batch)  # ω ≠ reference: the data path is used
        fam, cond = tools["family"], tools["conditioner"]
        batch = fam.data(setup.problem, setup.batch)
        row: dict = {"order": int(order), "problem": name, "omega": omega}
        row["init"] = cond(setup.params, batch)
        if hessian:
            row["init"]["hessian"] = _hessian_measures(tools["hessian"], setup.params, batch)
        res = tools["trainer"].fit(setup.params, batch, cfg.train.steps, fam.rel_l2(setup.problem))
        row["trained"] = cond(res["params"], batch)
        if hessian:
            row["trained"]["hessian"] = _hessian_measures(tools["hessian"], res["params"], batch)
        row["rel_l2"] = _finite(res["rel_l2"])
        row["final_loss"] = _finite(fam.loss(res["params"], batch))
        row["term_mse"] = {k: _finite(v) for k, v in fam.term_mse(res["params"], batch).items()}
        row["status"] = res["status"]
        n_rows = int(jax.eval_shape(fam.residual, setup.params, batch).shape[0])
        n_par = nn.num_params(setup.params)
        eps = float(jnp.finfo(jnp.result_type(float)).eps)
        row["n_rows"], row["n_params"] = n_rows, n_par
        row["cond_cap"] = 1.0 / (max(n_rows, n_par) * eps)  # NTK cond ceiling set by the rank threshold τ
        row["hessian_cap"] = 1.0 / (n_par * eps)  # the same for the Hessian (P × P)
        row["sine_basis_condition"] = _sine_basis_condition(
            omega, np.asarray(setup.batch[setup.problem.terms["pde"].points])[:, 0], int(order)
        )
        row["compile_time_s"] = res["compile_time_s"]
        row["train_time_s"] = res["wall_time_s"]
        row["eval_steps"], row["rel_l2_curve"] = res["eval_steps"], [_finite(v) for v in res["rel_l2_curve"]]
        row["_params"], row["_problem"] = res["params"], setup.problem
        rows.append(row)
    return rows, tools


def _adaptive_run(
    setup: Any,
    tools: Mapping[str, Any],
    method: str,
    counts: Mapping[str, int],
    cfg: _config.RunConfig,
    holdout: Mapping[str, Any],
    start_cond: dict,
) -> dict:
    """One run of the comparison: static ``method`` points, or ``cfg.sampling.method`` points moved by the
    adaptive ``method`` (a :class:`sciml_jax.sampling.Resampler` called after every chunk, as ``fit`` would)."""
    fam, problem = tools["family"], setup.problem
    resampler = None
    if method in _STATIC:
        points = sampling.sample(problem.domain, dict(counts), method, setup.key_points)
    else:
        points = sampling.sample(problem.domain, dict(counts), cfg.sampling.method, setup.key_points)
        resampler = sampling.Resampler.from_options(
            setup.residual, problem.domain, _adaptive_options(cfg, method), key=jax.random.fold_in(setup.key_points, 1),
            until=cfg.train.steps,
        )
    batch = fam.data(problem, points)
    start_key = method if method in _STATIC else cfg.sampling.method
    if start_key not in start_cond:
        start_cond[start_key] = tools["conditioner"](setup.params, batch)
    history = train.History(metric_names=("rel_l2",))
    current = {"points": points}

    def on_chunk(step, params, _batch, losses):
        history.add_steps(step - len(losses), losses, {}, np.full(len(losses), np.nan))
        if resampler is None:
            return None
        out = resampler(step=step, params=params, batch=current["points"], history=history)
        if out is None:
            return None
        current["points"] = out["batch"]
        return fam.data(problem, out["batch"])

    res = tools["trainer"].fit(setup.params, batch, cfg.train.steps, fam.rel_l2(problem), on_chunk)
    events = [e for e in history.events if e["kind"] == "resample"]
    entry = problem.terms[cfg.sampling.adaptive.term].points
    return {
        "rel_l2": _finite(res["rel_l2"]),
        "final_loss": _finite(fam.loss(res["params"], res["batch"])),
        "holdout_loss": _finite(fam.loss(res["params"], holdout)),
        "condition_start": start_cond[start_key],
        "condition_end": tools["conditioner"](res["params"], res["batch"]),
        "events": len(events),
        "moved": int(sum(e["moved"] for e in events)),
        "status": res["status"],
        "wall_time_s": res["wall_time_s"],
        "compile_time_s": res["compile_time_s"],
        "eval_steps": res["eval_steps"],
        "rel_l2_curve": [_finite(v) for v in res["rel_l2_curve"]],
        "_params": res["params"],
        "_snapshots": resampler.snapshots if resampler is not None and resampler.snapshots
        else [{"step": 0, "points": np.asarray(current["points"][entry])}],
    }


def biharmonic_stiffness(
    cfg: _config.RunConfig,
    out_dir: str,
    *,
    resume: bool = False,
    progress: bool | None = None,
    frequencies: list | None = None,
    problems_by_order: dict | None = None,
    hessian: bool = True,
    kappa_rank: int = 10,
    adaptive_methods: list | None = None,
    adaptive_seeds: int = 2,
    adaptive_frequency: float | None = None,
    adaptive_points: dict | None = None,
    static_methods: list | None = None,
) -> dict:
    """Stiffness vs solution frequency ω for an order-2 (Poisson) and an order-4 (biharmonic) operator.

    For each order p and ω in ``frequencies`` (u* = sin(ωπx)), measures the NTK / Gauss-Newton conditioning (and
    the Hessian of the loss when ``hessian``) at initialisation and after ``train.steps`` steps of ``optimizer``,
    fits the growth exponent b in κ ∝ ω^b (log-log least squares) and compares it with the claim b = 2p. A
    sine-basis reference (the same operator on the span of sin(jπx), j <= ω) shows the ω^{2p} law where it holds
    exactly. Then compares static sampling (uniform random and ``sampling.method``) with adaptive methods on the
    highest-order problem at ``adaptive_frequency`` (default: the largest ω), on ``adaptive_points`` points,
    equal steps and optimizer, several seeds.

    All frequencies of one order share one residual whose forcing and boundary data are batch data (see
    :class:`_Family`), so the training step, NTK and Hessian are compiled once per order and point count; the
    loss weights (``loss.weights``) are the same for every ω. Progress bars are not shown (``progress`` is
    accepted for the experiment interface).

    Options (``experiment_options``):
        frequencies: ω values (>= 2 distinct positive numbers, the problems' ``k``; default [1, 2, 3, 4]).
        problems_by_order: {order: problem name} (default {2: poisson_1d, 4: biharmonic_1d}); each must take ``k``
            and be affine in u (true of every linear problem).
        hessian: also the dense Hessian (P x P; keep the model small).
        kappa_rank: r of κ_r = λ_1/λ_r.
        adaptive_methods: adaptive methods compared with static points (default [rad, rar_d]; [] skips the
            comparison).
        adaptive_seeds: seeds of that comparison.
        adaptive_frequency: ω of that comparison.
        adaptive_points: point counts of that comparison (default ``sampling.points``).
        static_methods: static samplers in that comparison (default [uniform, ``sampling.method``]).
    """
    del progress
    if resume:
        raise ValueError("resume: the biharmonic_stiffness experiment does not checkpoint; run it again")
    frequencies = [1, 2, 3, 4] if frequencies is None else frequencies
    if (
        not isinstance(frequencies, (list, tuple))
        or len(set(frequencies)) < 2
        or any(isinstance(w, bool) or not isinstance(w, (int, float)) or w <= 0 for w in frequencies)
    ):
        raise ValueError(f"experiment_options.frequencies: expected >= 2 distinct positive numbers, got {frequencies!r}")
    frequencies = sorted(float(w) for w in frequencies)
    by_order = {2: "poisson_1d", 4: "biharmonic_1d"} if problems_by_order is None else dict(problems_by_order)
    try:
        by_order = {int(o): str(n) for o, n in by_order.items()}
    except (TypeError, ValueError):
        raise ValueError(f"experiment_options.problems_by_order: expected {{order: problem name}}, got {by_order!r}") from None
    kappa_rank = _check_int(kappa_rank, "kappa_rank", 2)
    adaptive_methods = ["rad", "rar_d"] if adaptive_methods is None else list(adaptive_methods)
    if any(m not in sampling.ADAPTIVE_METHODS for m in adaptive_methods):
        raise ValueError(
            f"experiment_options.adaptive_methods: expected names among {', '.join(sampling.ADAPTIVE_METHODS)}, "
            f"got {adaptive_methods!r}"
        )
    adaptive_seeds = _check_int(adaptive_seeds, "adaptive_seeds", 1)
    static_methods = ["uniform", cfg.sampling.method] if static_methods is None else list(static_methods)
    if any(m not in _STATIC for m in static_methods):
        raise ValueError(
            f"experiment_options.static_methods: expected names among {', '.join(_STATIC)}, got {static_methods!r}"
        )
    if cfg.train.eval_every <= 0 or cfg.train.steps % cfg.train.eval_every:
        raise ValueError(
            f"train.steps: this experiment runs whole chunks of train.eval_every = {cfg.train.eval_every} steps; "
            f"got steps = {cfg.train.steps}, not a multiple"
        )
    omega_ad = frequencies[-1] if adaptive_frequency is None else float(adaptive_frequency)
    for order, name in sorted(by_order.items()):
        try:
            prob = problems.get(name, k=frequencies[0])  # the loop ends on the highest order: compared below
        except ValueError as e:
            raise ValueError(f"experiment_options.problems_by_order.{order}: {e}") from None
        if prob.order != int(order):
            raise ValueError(
                f"experiment_options.problems_by_order.{order}: {name!r} has order {prob.order}, not {order}"
            )
    counts_ad = dict(cfg.sampling.points or prob.default_points) if adaptive_points is None else adaptive_points
    if not isinstance(counts_ad, Mapping) or set(counts_ad) != set(prob.domain.point_sets) or any(
        isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1 for v in counts_ad.values()
    ):
        raise ValueError(
            f"experiment_options.adaptive_points: expected {{point set: count >= 1}} for the point sets "
            f"{sorted(prob.domain.point_sets)}, got {adaptive_points!r}"
        )
    counts_ad = {k: int(v) for k, v in counts_ad.items()}
    if adaptive_methods:
        _adaptive_options(cfg, adaptive_methods[0])
        if cfg.sampling.adaptive.every is not None and cfg.sampling.adaptive.every % cfg.train.eval_every:
            raise ValueError(
                f"sampling.adaptive.every: events happen at chunk ends; use a multiple of train.eval_every = "
                f"{cfg.train.eval_every}, got {cfg.sampling.adaptive.every}"
            )
    set_dtype(cfg.dtype)
    os.makedirs(out_dir, exist_ok=True)
    t_start = time.perf_counter()

    rows: list = []
    tools_by_order: dict = {}
    for order, name in sorted(by_order.items()):
        r, tools_by_order[order] = _stiffness_order(cfg, order, name, frequencies, hessian, kappa_rank)
        rows += r

    quantities = [("condition_number", "NTK cond"), ("kappa_r", f"NTK κ_{kappa_rank}"), ("lambda_max", "NTK λ_max")]
    fits: dict = {}
    for order in sorted(by_order):
        rs = [r for r in rows if r["order"] == order]
        w = [r["omega"] for r in rs]
        f = {}
        for stage in ("init", "trained"):
            for q, _ in quantities:
                f[f"{stage}.{q}"] = _fit_exponent(w, [r[stage][q] for r in rs])
            if hessian:
                f[f"{stage}.hessian.condition_number"] = _fit_exponent(w, [r[stage]["hessian"]["condition_number"] for r in rs])
                f[f"{stage}.hessian.lambda_max"] = _fit_exponent(w, [r[stage]["hessian"]["lambda_max"] for r in rs])
        f["sine_basis_condition"] = _fit_exponent(w, [r["sine_basis_condition"] for r in rs])
        f["rel_l2"] = _fit_exponent(w, [r["rel_l2"] for r in rs])
        fits[int(order)] = f
    t_sweep = time.perf_counter() - t_start

    # ---- adaptive vs static on the highest-order problem, same optimizer, steps and point count
    top_order = max(by_order)
    bi_name = by_order[top_order]
    ad_cfg = dataclasses.replace(cfg, problem=_config.ProblemConfig(bi_name, {"k": omega_ad}))
    compare = list(dict.fromkeys(static_methods + adaptive_methods))
    ad_runs: dict[str, list] = {m: [] for m in compare}
    first: dict = {}
    tools = tools_by_order[top_order]
    for s in range(adaptive_seeds if adaptive_methods else 0):
        setup = build(dataclasses.replace(ad_cfg, seed=cfg.seed + s))
        hold_pts = sampling.sample(setup.problem.domain, {k: 4 * v for k, v in counts_ad.items()}, "sobol", 10_000 + cfg.seed + s)
        holdout = tools["family"].data(setup.problem, hold_pts)
        start_cond: dict = {}
        for m in compare:
            run = _adaptive_run(setup, tools, m, counts_ad, ad_cfg, holdout, start_cond)
            ad_runs[m].append(run)
            if s == 0:
                first[m] = (run, setup)
    wall = time.perf_counter() - t_start

    figs = _plot_stiffness(rows, fits, by_order, kappa_rank, hessian, out_dir)
    if first:
        figs.update(_plot_adaptive_1d(first, ad_runs, out_dir))

    # ---- report
    opt_text = f"`{cfg.optimizer.name}` ({cfg.optimizer.options})"
    weights = dict(cfg.loss.weights) or "all 1"
    lines = [
        f"# {cfg.name}: stiffness vs frequency for order-2 and order-4 operators",
        "",
        cfg.description or "",
        "",
        f"Problems: {', '.join(f'order {o}: `{n}`' for o, n in sorted(by_order.items()))} with u* = sin(ωπx), "
        f"ω ∈ {[f'{w:g}' for w in frequencies]}. Model: MLP width {cfg.model.width} depth {cfg.model.depth} "
        f"({cfg.model.activation}), {nn.num_params(rows[0]['_params'])} parameters, the same θ_0 for every ω "
        f"(seed {cfg.seed}); points {dict(cfg.sampling.points or {})} ({cfg.sampling.method}); {cfg.train.steps} "
        f"steps of {opt_text}; loss weights {weights} for every ω (the plain PINN loss ½Σ_k mean_i r_k,i², so "
        "the measured conditioning is that of the unweighted problem; the scale of the forcing, (ωπ)^p, is left in "
        "the residual, which is what the ω^(2p) claim is about).",
        "",
        "NTK K = JJᵀ (nonzero spectrum = Gauss-Newton JᵀJ): cond = λ_max/λ_min⁺ (eigenvalues above "
        f"τ = max(N, P)·eps·λ_max), κ_r = λ_1/λ_{kappa_rank}. Hessian: dense ∇²(½‖r‖²), cond = max|λ|/min|λ| over "
        "|λ| above the same kind of threshold (it is indefinite away from a minimum). Sine-basis reference: the "
        "Gauss-Newton matrix of the linear model Σ_{j<=ω} a_j sin(jπx) under the same operator and points.",
        "",
        "## Measurements",
        "",
        "| order | ω | rel L2 | final loss | NTK cond init | NTK cond trained | NTK rank init / trained | κ_r init "
        "| κ_r trained | λ_max init | λ_max trained "
        + ("| Hessian cond init | Hessian cond trained | Hessian λ<0 trained " if hessian else "")
        + "| sine-basis κ |",
        "|---|---|---|---|---|---|---|---|---|---|---|" + ("---|---|---|" if hessian else "") + "---|",
    ]
    for r in rows:
        line = (
            f"| {r['order']} | {r['omega']:g} | {_fmt(r['rel_l2'])} | {_fmt(r['final_loss'])} | "
            f"{_fmt(r['init']['condition_number'])} | {_fmt(r['trained']['condition_number'])} | "
            f"{r['init']['numerical_rank']:.0f} / {r['trained']['numerical_rank']:.0f} | "
            f"{_fmt(r['init']['kappa_r'])} | {_fmt(r['trained']['kappa_r'])} | "
            f"{_fmt(r['init']['lambda_max'])} | {_fmt(r['trained']['lambda_max'])} | "
        )
        if hessian:
            line += (
                f"{_fmt(r['init']['hessian']['condition_number'])} | {_fmt(r['trained']['hessian']['condition_number'])} | "
                f"{r['trained']['hessian']['negative']} | "
            )
        lines.append(line + f"{_fmt(r['sine_basis_condition'])} |")
    lines += [
        "",
        "## Growth exponents b in κ ∝ ω^b (log-log least squares; R² in brackets)",
        "",
        "| quantity | " + " | ".join(f"order {o} (claim 2p = {2 * o})" for o in sorted(by_order)) + " |",
        "|---|" + "---|" * len(by_order),
    ]
    keys = [k for k in fits[min(by_order)] if k != "rel_l2"]
    for k in keys:
        cells = []
        for o in sorted(by_order):
            fb = fits[o][k]
            cells.append("—" if fb["b"] is None else f"{fb['b']:.2f} ({fb['r2']:.2f})" if fb["r2"] is not None else f"{fb['b']:.2f}")
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    conclusion = _stiffness_conclusion(rows, fits, by_order, hessian, kappa_rank)
    lines += ["", "## Conclusion", ""] + conclusion
    ad_table: dict = {}
    if first:
        ad = cfg.sampling.adaptive
        lines += [
            "",
            f"## Adaptive vs static sampling: `{bi_name}` at ω = {omega_ad:g}, {adaptive_seeds} seed(s)",
            "",
            f"Every run: points {counts_ad}, {cfg.train.steps} steps of {opt_text}, the same θ_0 per seed for every "
            f"method. Adaptive methods start from {cfg.sampling.method} points and move the `{ad.term}` points every "
            f"{ad.every} steps (no event at the last step). Held-out loss: ½‖r‖² on a common Sobol set 4x larger."
            + (
                " With fewer residual rows than parameters a converged fit can interpolate its own points, so what "
                "separates the methods is where the points are: the error between them (held-out loss, rel L2)."
                if sum(counts_ad.values()) < nn.num_params(rows[0]["_params"]) else ""
            ),
            "",
            "| method | rel L2 (geo mean) | per seed | final loss (own points) | held-out loss | κ_r start | κ_r end | points moved |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for m in compare:
            rs = ad_runs[m]
            ad_table[m] = {
                "rel_l2": _stats([r["rel_l2"] for r in rs]),
                "final_loss": _stats([r["final_loss"] for r in rs]),
                "holdout_loss": _stats([r["holdout_loss"] for r in rs]),
                "kappa_r_start": _stats([r["condition_start"]["kappa_r"] for r in rs]),
                "kappa_r_end": _stats([r["condition_end"]["kappa_r"] for r in rs]),
                "moved": _stats([r["moved"] for r in rs]),
            }
            t = ad_table[m]
            lines.append(
                f"| {m} | {_fmt(t['rel_l2']['geomean'])} | {', '.join(_fmt(r['rel_l2'], '.2e') for r in rs)} | "
                f"{_fmt(t['final_loss']['mean'])} | {_fmt(t['holdout_loss']['mean'])} | {_fmt(t['kappa_r_start']['mean'])} | "
                f"{_fmt(t['kappa_r_end']['mean'])} | {_fmt(t['moved']['mean'], '.0f')} |"
            )
        lines += [""] + _sharp_conclusion(compare, ad_table, ad_runs, adaptive_seeds)
        lines += _vs_uniform(compare, ad_table, ad_runs, adaptive_seeds)
    compile_s = sum(r["compile_time_s"] for r in rows) + sum(r["compile_time_s"] for rs in ad_runs.values() for r in rs)
    lines += [
        "",
        f"Run time: {wall:.0f} s in all ({t_sweep:.0f} s for the frequency sweep, NTK and Hessians included), of which "
        f"{compile_s:.0f} s compiling the training steps ({jax.default_backend()}).",
        "",
        "## Figures",
        "",
    ] + [f"![{k}]({os.path.basename(v)})" for k, v in figs.items()] + [""]
    lines += _config_block(cfg)
    summary = {
        "name": cfg.name,
        "experiment": "biharmonic_stiffness",
        "status": "completed"
        if all(r["status"] == "completed" for r in rows) and all(r["status"] == "completed" for rs in ad_runs.values() for r in rs)
        else "nonfinite",
        "message": f"{len(by_order)} orders x {len(frequencies)} frequencies; adaptive comparison {compare}",
        "steps": cfg.train.steps,
        "wall_time_s": wall,
        "compile_time_s": compile_s,
        "rel_l2": max((r["rel_l2"] for r in rows if r["rel_l2"] is not None), default=None),
        "final_loss": None,
        "frequencies": frequencies,
        "problems_by_order": {str(k): v for k, v in by_order.items()},
        "rows": [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows],
        "fits": {str(k): v for k, v in fits.items()},
        "adaptive": {
            "problem": bi_name,
            "omega": omega_ad,
            "points": counts_ad,
            "methods": compare,
            "table": ad_table,
            "runs": {m: [{k: v for k, v in r.items() if not k.startswith("_")} for r in rs] for m, rs in ad_runs.items()},
        },
        "conclusion": conclusion,
        "figures": figs,
        "report": os.path.join(out_dir, "report.md"),
        **_environment(cfg),
    }
    _write_outputs(out_dir, cfg, lines, summary)
    return summary


def _vs_uniform(methods: Sequence[str], table: Mapping[str, dict], runs: Mapping[str, list], seeds: int) -> list[str]:
    """Each adaptive method against i.i.d. uniform points (the issue's comparison), and against Sobol when a
    low-discrepancy static set beats every adaptive one."""
    def g(m: str) -> float:
        v = table[m]["rel_l2"]["geomean"]
        return math.inf if v is None else v

    adaptive = [m for m in methods if m not in _STATIC]
    lines = []
    if "uniform" in methods:
        for m in adaptive:
            wins = _paired_wins([r["rel_l2"] for r in runs[m]], [r["rel_l2"] for r in runs["uniform"]])
            lines.append(
                f"- {m} vs uniform (i.i.d. points, the baseline residual-based sampling replaces): error ratio "
                f"{g(m) / g('uniform'):.2f}, {m} lower on {wins}/{seeds} seed(s)."
            )
    qmc = [m for m in methods if m in ("sobol", "halton", "grid")]
    if adaptive and qmc and min(g(m) for m in qmc) < min(g(m) for m in adaptive):
        best = min(qmc, key=g)
        lines.append(
            f"- The low-discrepancy static set ({best}) beats every adaptive method. RAD and RAR-D draw their points "
            "at random from a residual-based density, so their point sets have the gaps of random points; for a "
            "smooth solution whose residual is spread over the whole interval, even coverage matters more than "
            "following the residual."
        )
    return lines


def _trend(b: float | None, claim: float) -> str:
    if b is None:
        return "no fit"
    close = abs(b - claim) <= 0.25 * claim
    return f"b = {b:.2f}, " + ("consistent with" if close else "far from") + f" {claim:g}"


def _stiffness_conclusion(rows: list, fits: dict, by_order: Mapping, hessian: bool, kappa_rank: int = 10) -> list[str]:
    """Conclusions computed from the measurements: fit quality, per-order exponents against 2p, which condition
    numbers sit at the numerical rank threshold (and so measure the threshold, not the problem)."""
    lines = []
    ok = [r for r in rows if r["rel_l2"] is not None and r["rel_l2"] <= 1e-2]
    bad = [r for r in rows if r not in ok]
    errs = [r["rel_l2"] for r in ok]
    if not bad:
        lines.append(
            f"- Every fit converged: relative L2 error {min(errs):.1e} to {max(errs):.1e} (target <= 1e-2), so the "
            "after-training measurements are those of trained networks."
        )
    else:
        lines.append(
            "- Not every fit converged (relative L2 error > 1e-2 for ω = "
            + ", ".join(f"{r['omega']:g} (order {r['order']})" for r in bad)
            + "): the after-training exponents mix trained and failed networks."
        )
    for o in sorted(by_order):
        f, claim = fits[o], 2 * o
        rs = [r for r in rows if r["order"] == o]
        parts = [
            f"sine-basis reference κ: {_trend(f['sine_basis_condition']['b'], claim)}",
            f"NTK λ_max after training: {_trend(f['trained.lambda_max']['b'], claim)}",
        ]
        bk = f["trained.kappa_r"]["b"]
        if bk is not None:
            word = "falls" if bk < -0.5 else "grows" if bk > 0.5 else "is flat"
            parts.append(f"NTK κ_{kappa_rank} = λ_1/λ_{kappa_rank} after training {word} with ω (b = {bk:.2f})")
        ranks = [int(r["trained"]["numerical_rank"]) for r in rs]
        if ranks[-1] > ranks[0]:
            parts.append(
                f"the NTK's numerical rank after training grows with ω ({' → '.join(map(str, ranks))} of "
                f"N = {int(rs[0]['n_rows'])} rows)"
            )
        fc = f["trained.condition_number"]
        at_cap = all(r["trained"]["condition_number"] >= 0.1 * r["cond_cap"] for r in rs)
        parts.append(
            f"NTK cond after training: {_trend(fc['b'], claim)} (R² {fc['r2']:.2f})"
            + (
                f", every value within 10x of the rank-threshold ceiling 1/(max(N, P)·eps) = {rs[0]['cond_cap']:.1e}"
                if at_cap else ""
            )
            if fc["b"] is not None and fc["r2"] is not None else "NTK cond after training: no fit"
        )
        if hessian:
            h_at_cap = all(r["trained"]["hessian"]["condition_number"] >= 0.1 * r["hessian_cap"] for r in rs)
            hb = f["trained.hessian.condition_number"]["b"]
            parts.append(
                f"Hessian cond after training: {_trend(hb, claim)}"
                + (f", at the ceiling 1/(P·eps) = {rs[0]['hessian_cap']:.1e} for every ω" if h_at_cap else "")
            )
        lines.append(f"- Order {o} (`{by_order[o]}`, claim 2p = {claim}): " + "; ".join(parts) + ".")
    init_flat = all(
        fits[o]["init.condition_number"]["b"] is not None and abs(fits[o]["init.condition_number"]["b"]) < 0.5
        for o in by_order
    )
    if init_flat:
        lines.append(
            "- At initialisation the NTK/Gauss-Newton spectrum does not depend on ω: J = ∂r/∂θ involves the operator "
            "and the points, not the forcing (all frequencies start from the same θ_0), so the ω^(2p) law cannot "
            "show there."
        )
    unreliable = [f"ω = {r['omega']:g} (order {r['order']}, {st})" for r in rows for st in ("init", "trained")
                  if not r[st]["kappa_r_reliable"]]
    if unreliable:
        lines.append(
            f"- κ_{kappa_rank} is round-off dominated (λ_{kappa_rank} below the rank threshold τ, numerical rank < "
            f"{kappa_rank}) for " + ", ".join(unreliable) + ": there the NTK has fewer than "
            f"{kappa_rank} significant eigenvalues (at initialisation the network's features are nearly collinear)."
        )
    if hessian:
        same = [
            abs(r["trained"]["hessian"]["lambda_max"] - r["trained"]["lambda_max"]) / r["trained"]["lambda_max"]
            for r in rows
        ]
        if max(same) < 1e-3:
            lines.append(
                f"- At the trained minima the Hessian's λ_max equals the NTK's (largest relative difference "
                f"{max(same):.1e}): with r ≈ 0, ∇²(½‖r‖²) = JᵀJ + Σ r_i ∇²r_i ≈ JᵀJ."
            )
    lam_ok = all(
        fits[o]["trained.lambda_max"]["b"] is not None and abs(fits[o]["trained.lambda_max"]["b"] - 2 * o) <= 0.5 * o
        for o in by_order
    )
    cond_ok = all(
        fits[o]["trained.condition_number"]["b"] is not None
        and abs(fits[o]["trained.condition_number"]["b"] - 2 * o) <= 0.5 * o
        for o in by_order
    )
    if lam_ok and not cond_ok:
        lines.append(
            "- Verdict: the ω^(2p) growth is real for the scale of the trained PINN's Gauss-Newton matrix (λ_max, "
            "the quantity that bounds a stable gradient step, lr < 2/λ_max) and exact for the idealised sine-basis "
            "model, but the network's condition number does not follow it: its smallest eigenvalues are set by the "
            "redundancy of an over-parameterised network (P > N: the Gauss-Newton matrix is singular and the NTK "
            "nearly so), not by the frequency"
            + (
                f", and the top of the spectrum even flattens as ω grows (κ_{kappa_rank} falls)."
                if all(fits[o]["trained.kappa_r"]["b"] is not None and fits[o]["trained.kappa_r"]["b"] < -0.5 for o in by_order)
                else "."
            )
        )
    elif lam_ok and cond_ok:
        lines.append("- Verdict: both the scale (λ_max) and the condition number of the trained PINN follow ω^(2p).")
    else:
        lines.append(
            "- Verdict: after training neither λ_max nor the condition number follows ω^(2p) (within 25% of 2p) on these "
            "frequencies; only the sine-basis reference does."
        )
    return lines


def _plot_stiffness(rows: list, fits: dict, by_order: Mapping, kappa_rank: int, hessian: bool, out_dir: str) -> dict:
    import matplotlib.pyplot as plt

    panels = [("condition_number", "NTK cond λ_max/λ_min⁺"), ("lambda_max", "NTK λ_max"), ("kappa_r", f"NTK κ_{kappa_rank}")]
    if hessian:
        panels.append(("hessian", "Hessian cond max|λ|/min|λ|"))
    panels.append(("sine", "sine-basis reference κ"))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.3 * len(panels), 4.0))
    for ax, (q, title) in zip(axes, panels):
        for o in sorted(by_order):
            rs = [r for r in rows if r["order"] == o]
            w = np.asarray([r["omega"] for r in rs])
            for stage, ls in (("init", ":"), ("trained", "-")):
                if q == "sine":
                    if stage == "trained":
                        continue
                    v = [r["sine_basis_condition"] for r in rs]
                elif q == "hessian":
                    v = [r[stage]["hessian"]["condition_number"] for r in rs]
                else:
                    v = [r[stage][q] for r in rs]
                ax.loglog(w, v, ls, marker="o", ms=4, label=f"order {o} {stage if q != 'sine' else ''}")
            ref = None
            if q == "sine":
                ref = np.asarray([r["sine_basis_condition"] for r in rs])
            elif q == "lambda_max":
                ref = np.asarray([r["trained"]["lambda_max"] for r in rs])
            if ref is not None:
                ax.loglog(w, w ** (2 * o) * ref[0] / w[0] ** (2 * o), "k--", lw=0.8, label=f"ω^{2 * o}")
        if q in ("condition_number", "hessian"):
            cap = max(r["cond_cap" if q == "condition_number" else "hessian_cap"] for r in rows)
            ax.axhline(cap, color="gray", lw=0.8, ls="-.", label="rank-threshold ceiling")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("ω")
        ws = sorted({r["omega"] for r in rows})
        ax.set_xticks(ws, [f"{x:g}" for x in ws])
        ax.minorticks_off()
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    out = {"stiffness": _save(fig, os.path.join(out_dir, "stiffness.png"))}
    fig, axes = plt.subplots(1, len(by_order), figsize=(5.5 * len(by_order), 3.8), squeeze=False)
    for ax, o in zip(axes[0], sorted(by_order)):
        for r in (r for r in rows if r["order"] == o):
            v = np.asarray([np.nan if x is None else x for x in r["rel_l2_curve"]], dtype=float)
            ax.semilogy(r["eval_steps"], v, label=f"ω = {r['omega']:g}")
        ax.set(xlabel="step", ylabel="relative L2 error", title=f"order {o} (`{by_order[o]}`): training")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    out["convergence"] = _save(fig, os.path.join(out_dir, "convergence.png"))
    return out


def _plot_adaptive_1d(first: Mapping[str, tuple], runs: Mapping[str, list], out_dir: str) -> dict:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16.0, 4.0))
    for m, (run, setup) in first.items():
        problem, apply = setup.problem, setup.apply
        lo, hi = problem.domain.bounds()
        x = jnp.linspace(lo[0], hi[0], 800)[:, None]
        err = np.abs(np.asarray(jax.vmap(lambda y: apply(run["_params"], y))(x)) - np.asarray(jax.vmap(problem.exact)(x)))
        line = axes[0].semilogy(np.asarray(x[:, 0]), err, label=f"{m} (rel L2 {_fmt(run['rel_l2'], '.1e')})", lw=1.2)[0]
        pts = np.asarray(run["_snapshots"][-1]["points"])[:, 0]
        axes[1].plot(pts, np.full(pts.shape, len(axes[1].lines)), "|", ms=12, color=line.get_color(), label=m)
        curves = np.asarray([[np.nan if v is None else v for v in r["rel_l2_curve"]] for r in runs[m]], dtype=float)
        axes[2].semilogy(run["eval_steps"], np.exp(np.nanmean(np.log(curves), axis=0)), color=line.get_color(), label=m)
        axes[2].fill_between(run["eval_steps"], curves.min(0), curves.max(0), color=line.get_color(), alpha=0.15)
    axes[0].set(xlabel="x", title="pointwise |error| (seed 0)")
    axes[1].set(xlabel="x", title="final interior points (seed 0)", yticks=[])
    axes[2].set(xlabel="step", ylabel="relative L2 error", title="error vs step (geometric mean, band: min-max over seeds)")
    for ax in axes:
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    return {"adaptive_biharmonic": _save(fig, os.path.join(out_dir, "adaptive_biharmonic.png"))}


register("sharp_gradient_sampling", sharp_gradient_sampling)
register("biharmonic_stiffness", biharmonic_stiffness)
