"""The training experiment: config -> problem, model, points, optimizer -> fit -> report directory."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np
import yaml

from .. import config as _config
from .. import nn, optim, pinn, problems, sampling, train
from .. import plotting
from . import _report
from ._report import finite as _finite
from ._report import fmt as _fmt


@dataclasses.dataclass
class Setup:
    """Everything a run needs, built from a config (no compilation has happened yet)."""

    cfg: _config.RunConfig
    problem: Any
    apply: Any
    params: Any
    batch: dict
    residual: pinn.Residual
    optimizer: Any
    metrics: dict
    key_points: Any  # the key the collocation points were drawn with (stages reuse it: nested QMC sets)
    windows: Any = None  # pinn.TimeWindows of train.time_windows (None: one window)


def set_dtype(dtype: str) -> None:
    """Switch JAX's default float width for a run (``jax_enable_x64``); the CLI/experiment boundary owns this."""
    jax.config.update("jax_enable_x64", dtype == "float64")


def build(cfg: _config.RunConfig) -> Setup:
    """Build problem, model, batch (points and observations), residual, optimizer and metrics of ``cfg``.

    The model has one output per field of the problem, optionally an exact periodic embedding
    (``model.periodic``) and the problem's hard constraint (``model.hard_constraint``, which drops the terms it
    satisfies). With unknowns the parameters are ``{"net", "unknowns"}``. Keys: ``PRNGKey(cfg.seed)`` is split
    into (model, points, Fourier features), so model and points are reproducible separately.
    """
    problem = cfg.problem.build()
    key_model, key_points, key_ff = jax.random.split(jax.random.PRNGKey(cfg.seed), 3)
    observations = {name: _config.load_data_entry(spec).entry for name, spec in cfg.data.items()}
    if problem.domain is not None:
        dim = problem.domain.dim
    else:  # a data-only problem: the inputs' width
        first = next(iter({**problem.observations, **observations}.values()))
        dim = int(first[0].shape[1])
    in_size = dim
    embedding = None
    if cfg.model.periodic:
        embedding = nn.PeriodicEmbedding(dim, {int(k): float(v) for k, v in cfg.model.periodic.items()})
        in_size = embedding.out_size
    ff = None
    if cfg.model.fourier_features:
        ff = nn.FourierFeatures(in_size, cfg.model.fourier_features, cfg.model.fourier_sigma, key=key_ff)
    model = nn.MLP(
        in_size, problem.out_size, cfg.model.width, cfg.model.depth, cfg.model.activation, key=key_model,
        fourier_features=ff,
    )
    if embedding is not None:
        model = nn.Embedded(embedding, model)
    if cfg.model.hard_constraint:
        problem, model = problem.with_hard_constraint(model)
    net_params, apply = nn.functional(model)
    params = problem.init_params(net_params)
    counts = dict(cfg.sampling.points or problem.default_points)
    counts = {k: n for k, n in counts.items() if k in problems.point_sets(problem.domain) and any(
        t.points == k for t in problem.terms.values())} if cfg.model.hard_constraint else counts
    batch = problem.batch(counts, cfg.sampling.method, key_points, observations)
    causal = pinn.Causal(**cfg.loss.causal) if cfg.loss.causal else None
    residual = pinn.residual(problem, apply, {k: v for k, v in cfg.loss.weights.items() if k in problem.terms},
                             causal=causal)
    optimizer = optim.get(cfg.optimizer.name, **cfg.optimizer.options)
    metrics = pinn.metrics(problem, apply)
    windows = None
    if cfg.train.time_windows is not None:
        opts = _config.time_windows_options(cfg.train.time_windows)
        windows = pinn.TimeWindows(problem, opts["windows"], local_time=opts["local_time"])
    elif causal is not None:
        metrics["causal_min_weight"] = pinn.CausalMinWeight(residual, batch)
    return Setup(cfg, problem, apply, params, batch, residual, optimizer, metrics, key_points, windows)


def fit_windows(setup: Setup, steps: int, **fit_kwargs: Any) -> train.FitResult:
    """Train ``setup`` with its time windows (``train.fit_windows``), ``steps`` in all split equally.

    Afterwards ``setup`` describes the piecewise model: ``apply`` is the windowed model, its metrics take the
    stacked parameters the result holds (the errors on the points of the setup's ``rel_l2`` metric), ``residual``
    and ``batch`` are the last window's.
    """
    cfg, win = setup.cfg, setup.windows
    metric = setup.metrics.get("rel_l2")
    points = None if metric is None else np.asarray(metric.x)
    result = train.fit_windows(
        win, setup.apply, setup.params, setup.optimizer, max(steps // win.count, 1),
        counts=dict(cfg.sampling.points or setup.problem.default_points), method=cfg.sampling.method,
        points_key=setup.key_points, observations={k: _config.load_data_entry(v).entry for k, v in cfg.data.items()},
        weights=setup.residual.weights, causal=setup.residual.causal, eval_points=points, **fit_kwargs,
    )
    net_apply = setup.apply
    setup.apply = win.model(net_apply)
    setup.residual = win.for_window(win.residual(net_apply, setup.residual.weights, setup.residual.causal),
                                    win.count - 1)
    setup.batch = dict(result.batch)
    setup.metrics = pinn.metrics(setup.problem, setup.apply)
    if points is not None:
        setup.metrics["rel_l2"] = pinn.rel_l2(setup.problem, setup.apply, points=points)
    return result


def make_resampler(setup: Setup) -> Any:
    """The adaptive resampler of ``cfg.sampling.adaptive`` (a ``fit`` callback), or None for ``method: none``.

    Its key is fold_in(points key, 1): pools and selections are reproducible from ``seed`` alone. No event at
    the run's last step (it would only change the batch the final loss is reported on).
    """
    tc = setup.cfg.train
    return sampling.Resampler.from_options(
        setup.residual,
        setup.problem.domain,
        dataclasses.asdict(setup.cfg.sampling.adaptive),
        key=jax.random.fold_in(setup.key_points, 1),
        until=sum(st["steps"] for st in tc.stages) if tc.stages else tc.steps,
    )


def _summary(setup: Setup, result: train.FitResult) -> dict:
    h = result.history
    k = setup.cfg.train.median_of_last
    term_mse = {name: (v[-1] if v else math.nan) for name, v in h.terms.items()}
    final_params = result.params
    last = final_params if setup.windows is None else jax.tree.map(lambda a: a[-1], final_params)
    final_loss = float(setup.residual.loss(last, setup.batch))
    rel = float(setup.metrics["rel_l2"](final_params)) if "rel_l2" in setup.metrics else math.nan
    errors = {m: train.summary_stats(h, m, k) for m in setup.metrics if m.startswith("rel_l2")}
    unknowns = {}
    for name, unk in setup.problem.unknowns.items():
        if name not in h.metrics:
            continue
        st = train.summary_stats(h, name, k)
        true = None if unk.true is None else float(np.reshape(unk.true, (-1,))[0])
        value = st["final"]
        rel_err = None if true in (None, 0.0) or value is None else abs(value - true) / abs(true)
        unknowns[name] = {"initial": float(np.reshape(unk.init, (-1,))[0]), "final": value,
                          "median_last": st["median_last"], "true": true, "rel_error": rel_err,
                          "transform": unk.transform}
    return {
        "name": setup.cfg.name,
        "problem": setup.cfg.problem.name or setup.cfg.problem.factory,
        "problem_options": setup.problem.options,
        "fields": list(setup.problem.fields),
        "optimizer": setup.cfg.optimizer.name,
        "rel_l2": _finite(rel),
        "rel_l2_best": errors.get("rel_l2", {}).get("best"),
        "rel_l2_median_last": errors.get("rel_l2", {}).get("median_last"),
        "errors": errors,
        "unknowns": unknowns,
        "final_loss": _finite(final_loss),
        "term_mse": {name: _finite(v) for name, v in term_mse.items()},
        "steps": result.step,
        "wall_time_s": result.history.last_wall_time(),
        "compile_time_s": result.compile_time_s,
        "status": result.status,
        "message": result.message,
        "events": h.events,
        "dtype": setup.cfg.dtype,
        "num_params": nn.num_params(setup.params),
        "time_windows": None if setup.windows is None else setup.windows.count,
        "points": {name: int((v[0] if isinstance(v, tuple) else v).shape[0]) for name, v in setup.batch.items()},
        "observations": {name: _config.load_data_entry(spec).summary() for name, spec in setup.cfg.data.items()},
        "seed": setup.cfg.seed,
        "jax_version": jax.__version__,
        "backend": jax.default_backend(),
        "platform": platform.platform(),
    }


def _decades_reached(results: Mapping[str, Mapping[str, Any]]) -> list[float]:
    """Decades 1e-2, 1e-3, ... down to the smallest final rel L2 of any run (at most 6, the finest ones)."""
    finals = [s["rel_l2_median_last"] for s in results.values()
              if s.get("rel_l2_median_last") is not None and s["rel_l2_median_last"] > 0]
    if not finals:
        return []
    lowest = math.ceil(math.log10(min(finals)))  # the finest decade some run ends at or below
    levels = [10.0**k for k in range(-2, lowest - 1, -1)]
    return levels[-6:]


def _event_text(e: Mapping[str, Any]) -> str:
    if e["kind"] == "switch":
        return f"step {e['step']}: switch to the second optimizer (criteria: {', '.join(e.get('criteria', [])) or '?'})"
    if e["kind"] == "fallback":
        tail = "; retries exhausted, first optimizer continues for good" if e.get("final") else ""
        return f"step {e['step']}: divergence guard rolled back to the switch parameters (fallback {e['fallbacks']}){tail}"
    if e["kind"] == "window":
        return f"step {e['step']}: time window {e['window']}, t in [{e['span'][0]:g}, {e['span'][1]:g}]"
    if e["kind"] == "stage":
        return f"step {e['step']}: stage {e['stage']} with points {e['points']}"
    if e["kind"] == "resample":
        return (
            f"step {e['step']}: {e['method']} resampling ({e.get('trigger', '?')}) moved {e['moved']} "
            f"{e['points']} points (mean |r_{e['term']}| {e.get('mean_abs_residual', float('nan')):.3e})"
        )
    return f"step {e['step']}: {e}"


def _write_report(out_dir: str, setup: Setup, summary: dict, figures: Mapping[str, str]) -> str:
    cfg = setup.cfg
    lines = [
        f"# {cfg.name}",
        "",
        cfg.description or setup.problem.description,
        "",
        f"Problem: {setup.problem.summary()}",
        "",
        "## Result",
        "",
        "| quantity | value |",
        "|---|---|",
        f"| relative L2 error (final) | {_fmt(summary['rel_l2'])} |",
        f"| final loss ½‖r‖² | {_fmt(summary['final_loss'])} |",
    ]
    lines += [f"| mse {k} | {_fmt(v)} |" for k, v in summary["term_mse"].items()]
    lines += [
        f"| steps | {summary['steps']} |",
        f"| wall time (s, compile excluded; all calls of a resumed run) | {summary['wall_time_s']:.2f} |",
        f"| compile time (s; all calls of a resumed run) | {summary['compile_time_s']:.2f} |",
        f"| status | {summary['status']}: {summary['message']} |",
        f"| parameters | {summary['num_params']} |",
        f"| points | {summary['points']} |",
        f"| dtype / backend | {summary['dtype']} / {summary['backend']} |",
        "",
    ]
    if summary["errors"]:
        k = cfg.train.median_of_last
        lines += [
            "## Errors",
            "",
            f"The final evaluation can sit on a spike: each error is also given at its best evaluation and as the "
            f"median of the last {k} evaluations (every {cfg.train.eval_every} steps).",
            "",
            f"| metric | final | best (step) | median of last {k} |",
            "|---|---|---|---|",
        ]
        for m, st in summary["errors"].items():
            best = "—" if st["best"] is None else f"{st['best']:.3e} ({st['best_step']})"
            lines.append(f"| {m} | {_fmt(st['final'])} | {best} | {_fmt(st['median_last'])} |")
        lines.append("")
    if summary["unknowns"]:
        lines += ["## Identified coefficients", "", "| unknown | initial | identified (final) | median of last "
                  f"{cfg.train.median_of_last} | true | relative error |", "|---|---|---|---|---|---|"]
        for name, u in summary["unknowns"].items():
            lines.append(f"| {name} | {_fmt(u['initial'])} | {_fmt(u['final'])} | {_fmt(u['median_last'])} | "
                         f"{_fmt(u['true'])} | {_fmt(u['rel_error'])} |")
        lines.append("")
    if summary["observations"]:
        lines += ["## Observations", ""] + [f"- {k}: {v}" for k, v in summary["observations"].items()] + [""]
    if summary["events"]:
        lines += ["## Events", ""] + [f"- {_event_text(e)}" for e in summary["events"]] + [""]
    lines += ["## Figures", ""] + [f"![{k}]({os.path.basename(v)})" for k, v in figures.items()] + [""]
    for k, why in summary.get("figures_not_drawn", {}).items():
        lines += [f"- figure {k} could not be drawn ({why})", ""]
    lines += ["## Configuration", "", "```yaml", yaml.safe_dump(_config.to_dict(cfg), sort_keys=False).strip(), "```", ""]
    path = os.path.join(out_dir, "report.md")
    with open(path, "w") as f:
        f.write("\n".join(lines))
    return path


def _json_safe(obj: Any) -> Any:
    """``obj`` with every non-finite float replaced by None (metrics.json stays valid JSON for any run)."""
    if isinstance(obj, Mapping):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def run(cfg: _config.RunConfig, out_dir: str, *, resume: bool = False, progress: bool | None = None) -> dict:
    """Train one run of ``cfg`` and write ``out_dir/{metrics.json, history.csv, report.md, *.png, checkpoint*}``.

    Sets ``jax_enable_x64`` from ``cfg.dtype``. Returns the summary written to ``metrics.json``. The report is
    written whatever the outcome (completed, nonfinite, diverged, stopped, interrupted); a figure that cannot be
    drawn is named in the report instead of failing the run. With ``resume`` and no checkpoint in ``out_dir`` the
    run starts afresh (a comparison interrupted before reaching this run). ``wall_time_s`` and ``compile_time_s``
    in the summary both add up all calls of a resumed run.
    """
    set_dtype(cfg.dtype)
    os.makedirs(out_dir, exist_ok=True)
    resume = resume and train.has_checkpoint(out_dir)
    compile_before = 0.0
    if resume:  # the CLI checks this before anything runs; library callers get the same refusal here
        meta = train.read_checkpoint_meta(out_dir)
        conflicts = _config.resume_conflicts(meta["config"], cfg) if "config" in meta else []
        if conflicts:
            raise train.CheckpointError(
                f"checkpoint in {out_dir!r} belongs to another config (differs in {'; '.join(conflicts)})"
            )
        compile_before = float(meta.get("compile_time_s", 0.0))
    setup = build(cfg)
    with open(os.path.join(out_dir, "config.yaml"), "w") as f:
        yaml.safe_dump(_config.to_dict(cfg), f, sort_keys=False)
    tc = cfg.train
    common = dict(
        metrics=setup.metrics,
        eval_every=tc.eval_every,
        chunk=tc.chunk,
        progress=tc.progress if progress is None else progress,
    )
    resampler = make_resampler(setup)
    if resampler is not None:
        common["callbacks"] = [resampler]
    if setup.windows is not None:
        if resume:
            raise ValueError("--resume is not supported for runs with train.time_windows")
        result = fit_windows(setup, tc.steps, divergence_factor=tc.divergence_factor,
                             **{k: v for k, v in common.items() if k != "metrics"})
    elif tc.stages:
        if resume:
            raise ValueError("--resume is not supported for runs with train.stages")
        batches = [
            sampling.sample(setup.problem.domain, dict(st["points"]), cfg.sampling.method, setup.key_points)
            for st in tc.stages
        ]
        result = train.fit_stages(
            setup.residual, setup.params, batches, [st["steps"] for st in tc.stages], setup.optimizer, **common
        )
        setup.batch = batches[-1]
    else:
        result = train.fit(
            setup.residual,
            setup.params,
            setup.batch,
            setup.optimizer,
            tc.steps,
            checkpoint_dir=out_dir,
            checkpoint_every=tc.checkpoint_every,
            resume=resume,
            divergence_factor=tc.divergence_factor,
            checkpoint_meta={"config": _config.to_dict(cfg)},
            **common,
        )
    if resampler is not None and result.batch is not None:
        setup.batch = dict(result.batch)  # the final (resampled) points: the final loss is reported on them
    summary = _summary(setup, result)
    summary["compile_time_s"] = compile_before + result.compile_time_s
    result.history.to_csv(os.path.join(out_dir, "history.csv"))
    figures, failed_figures = {}, {}

    def figure(name, draw):  # a figure that cannot be drawn must not cost the run its report
        try:
            figures[name] = draw()
        except Exception as e:  # noqa: BLE001
            failed_figures[name] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"

    figure("loss", lambda: plotting.plot_history(result.history, os.path.join(out_dir, "loss.png"), title=cfg.name))
    figure("solution", lambda: plotting.plot_solution(
        setup.problem, setup.apply, result.params, os.path.join(out_dir, "solution.png"), title=cfg.name
    ))
    if resampler is not None and resampler.snapshots:
        import numpy as np  # noqa: PLC0415

        np.savez(
            os.path.join(out_dir, "points.npz"),
            steps=np.asarray([s["step"] for s in resampler.snapshots]),
            **{f"points_{i}": s["points"] for i, s in enumerate(resampler.snapshots)},  # sizes differ across stages
        )
        figure("points", lambda: plotting.plot_points(
            setup.problem, setup.apply, result.params, resampler.snapshots, os.path.join(out_dir, "points.png"),
            title=f"{cfg.name}: {resampler.method} points over the final |error|"
            if setup.problem.exact is not None else cfg.name,
            background="error" if setup.problem.exact is not None else "solution",
        ))
    if failed_figures:
        summary["figures_not_drawn"] = failed_figures
    summary["report"] = _write_report(out_dir, setup, summary, figures)
    with open(os.path.join(out_dir, "metrics.json"), "w") as f:
        json.dump(_json_safe(summary), f, indent=2, allow_nan=False)
    summary["_history"] = result.history
    return summary


_EXPERIMENTS: dict = {}
_OPTIONS: dict = {}


def register(name: str, fn, options=None) -> None:
    """Register an experiment ``fn(cfg, out_dir, *, resume, progress, **experiment_options) -> dict``.

    The keyword-only parameters of ``fn`` after ``progress`` are its allowed ``experiment_options``; it writes its
    report into ``out_dir`` and returns a summary mapping (at least ``status``, ``steps``, ``wall_time_s``,
    ``compile_time_s``; ``rel_l2``/``final_loss`` where meaningful) that the CLI prints.

    With ``options`` (a class whose ``validate(raw options, cfg)`` returns the checked options or raises
    ValueError naming ``experiment_options.<key>``), the config layer validates them before anything compiles and
    ``fn`` is called as ``fn(cfg, out_dir, options, *, resume, progress)``.
    """
    _EXPERIMENTS[name] = fn
    if options is not None:
        _OPTIONS[name] = options


def names() -> list[str]:
    """Registered experiment names."""
    return sorted(_EXPERIMENTS)


def check_options(name: str, options: Mapping[str, Any], cfg: _config.RunConfig | None = None) -> Any:
    """Raise ValueError for an unknown experiment or a bad option; return the experiment's checked options."""
    import inspect

    if name not in _EXPERIMENTS:
        raise ValueError(f"experiment: unknown name {name!r}; allowed: {', '.join(names())}")
    if name in _OPTIONS:
        return _OPTIONS[name].validate(options, cfg)
    params = inspect.signature(_EXPERIMENTS[name]).parameters
    allowed = [p for p in params if p not in ("cfg", "out_dir", "resume", "progress")]
    for key in options:
        if key not in allowed:
            raise ValueError(
                f"experiment_options.{key}: unknown option for experiment {name!r}; allowed: "
                f"{', '.join(allowed) if allowed else '(none)'}"
            )


def _train_experiment(cfg, out_dir, *, resume=False, progress=None):
    """The default experiment: train one run (or each ``compare`` run) and report."""
    return _run_train(cfg, out_dir, resume=resume, progress=progress)


def run_config(
    cfg: _config.RunConfig, out_dir: str, *, resume: bool = False, progress: bool | None = None
) -> dict[str, dict]:
    """Run the experiment ``cfg.experiment`` (default ``"train"``) and return ``{run name: summary}``."""
    fn = _EXPERIMENTS[cfg.experiment]
    if cfg.experiment in _OPTIONS:
        opts = check_options(cfg.experiment, cfg.experiment_options, cfg)
        return {cfg.name: fn(cfg, out_dir, opts, resume=resume, progress=progress)}
    out = fn(cfg, out_dir, resume=resume, progress=progress, **cfg.experiment_options)
    return out if cfg.experiment == "train" else {cfg.name: out}


def _run_train(
    cfg: _config.RunConfig, out_dir: str, *, resume: bool = False, progress: bool | None = None
) -> dict[str, dict]:
    """Run every run of ``cfg`` (one, or one per ``compare`` entry in ``out_dir/<run>``) and, for a comparison,
    write ``out_dir/report.md``, ``out_dir/comparison.png`` and ``out_dir/metrics.json``."""
    runs = cfg.runs()
    if not cfg.compare:
        return {cfg.name: run(cfg, out_dir, resume=resume, progress=progress)}
    results = {}
    for name, sub in runs.items():
        results[name] = run(sub, os.path.join(out_dir, name), resume=resume, progress=progress)
        if results[name]["status"] == "interrupted":
            break  # the remaining runs are left for --resume (each run's folder holds its own checkpoint)
    histories = {k: v.pop("_history") for k, v in results.items()}
    try:
        fig, fig_error = plotting.plot_comparison(histories, os.path.join(out_dir, "comparison.png")), None
    except Exception as e:  # noqa: BLE001 - the comparison report is written without the figure
        fig, fig_error = None, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    budget = min(s["wall_time_s"] for s in results.values())
    for name, s in results.items():
        s["rel_l2_at_common_time"] = _finite(_report.value_at_time(
            histories[name].wall_time_s, histories[name].metrics.get("rel_l2", []), budget))
    lines = [
        f"# {cfg.name}: comparison",
        "",
        cfg.description,
        "",
        f"Relative L2 error: final, best (its step) and the median of the last {cfg.train.median_of_last} "
        "evaluations (a final value alone can sit on a spike). Equal wall time: each run's relative L2 error at "
        f"t = {budget:.2f} s (the shortest run's time; the last evaluation at or before t), compile time excluded.",
        "",
        "| run | optimizer | rel L2 final | best (step) | median of last | rel L2 at equal time | final loss | steps | "
        "wall time (s) | compile (s) | status |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, s in results.items():
        best = "—" if s.get("rel_l2_best") is None else (
            f"{s['rel_l2_best']:.3e} ({s['errors']['rel_l2']['best_step']})")
        lines.append(
            f"| {name} | {s['optimizer']} | {_fmt(s['rel_l2'])} | {best} | {_fmt(s.get('rel_l2_median_last'))} | "
            f"{_fmt(s['rel_l2_at_common_time'])} | {_fmt(s['final_loss'])} | {s['steps']} | {s['wall_time_s']:.2f} | "
            f"{s['compile_time_s']:.2f} | {s['status']} |"
        )
    levels = _decades_reached(results)
    if levels:
        lines += [
            "",
            f"Time to accuracy: wall time (s, compile excluded) and step of {_report.TIME_RULE} (— : never).",
            "",
            "| run | " + " | ".join(f"<= {lv:.0e}" for lv in levels) + " |",
            "|---|" + "---|" * len(levels),
        ]
        for name, s in results.items():
            cells = []
            for lv in levels:
                hit = train.time_to_level(histories[name], "rel_l2", lv)
                s.setdefault("time_to_rel_l2", {})[f"{lv:.0e}"] = None if hit is None else hit[1]
                cells.append("—" if hit is None else f"{hit[1]:.2f} (step {hit[0]})")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    events = [(name, e) for name, h in histories.items() for e in h.events]
    if events:
        lines += ["", "Events:", ""] + [f"- {name}: {_event_text(e)}" for name, e in events]
    not_run = [name for name in runs if name not in results]
    if not_run:
        lines += ["", f"Not run (interrupted before them; continue with --resume): {', '.join(not_run)}."]
    lines += ["", f"![comparison]({os.path.basename(fig)})" if fig else f"(comparison figure not drawn: {fig_error})", ""]
    lines += [f"- [{name}]({name}/report.md)" for name in results] + [""]
    with open(os.path.join(out_dir, "report.md"), "w") as f:
        f.write("\n".join(lines))
    with open(os.path.join(out_dir, "metrics.json"), "w") as f:
        json.dump(_json_safe(results), f, indent=2, allow_nan=False)
    return results


register("train", _train_experiment)

__all__ = ["Setup", "build", "check_options", "make_resampler", "names", "register", "run", "run_config", "set_dtype"]


@dataclasses.dataclass
class LoadedRun:
    """A trained model back from a run directory (:func:`load_run`).

    Attributes:
        problem: the problem as trained (with its hard constraint applied, when the config asked for it).
        params: the trained parameters (``{"net", "unknowns"}`` with unknowns), in the saved dtype.
        apply: the model, ``apply(net_params, x)``; ``predict(x)`` evaluates it at the trained parameters.
        config: the run's validated :class:`sciml_jax.config.RunConfig`.
        history: the training history.
        step: steps trained; ``status``: how the run ended.
    """

    problem: Any
    params: Any
    apply: Any
    config: _config.RunConfig
    history: train.History
    step: int
    status: str

    def predict(self, x: Any) -> Any:
        """Model values at points ``x: (n, d)`` -> ``(n,)`` or ``(n, m)`` (one per field)."""
        net = self.problem.split_params(self.params)[0]
        return jax.vmap(lambda y: self.apply(net, y))(jax.numpy.asarray(x))

    @property
    def unknowns(self) -> dict[str, Any]:
        """Identified values of the unknown coefficients (empty without unknowns)."""
        return {k: np.asarray(v) for k, v in self.problem.split_params(self.params)[1].items()}


def load_run(directory: str | os.PathLike) -> LoadedRun:
    """Load a trained model from a run directory written by ``sciml-jax run`` (or :func:`run`).

    Reads ``config.yaml``, rebuilds the problem, the model and the optimizer state's structure from it, and restores
    the final checkpoint into that structure: a different structure, shape or dtype is refused with one line
    (nothing is cast). A float64 run needs float64 enabled (``jax.config.update("jax_enable_x64", True)``) before
    loading; this function does not change that setting for you.

        run = sj.load_run("runs/quickstart")
        u = run.predict(x)                      # (n,)
        sj.plotting.plot_solution(run.problem, run.apply, run.params)

    Raises:
        ValueError: no run there, a config that no longer validates, or a float64 run loaded with float64 off.
        sciml_jax.train.CheckpointError: a damaged or mismatching checkpoint.
    """
    directory = os.fspath(directory)
    cfg_path = os.path.join(directory, "config.yaml")
    if not os.path.isfile(cfg_path) or not train.has_checkpoint(directory):
        raise ValueError(f"load_run: {directory!r} holds no finished run (config.yaml and a checkpoint)")
    cfg = _config.load(cfg_path)
    if cfg.compare:
        raise ValueError(
            f"load_run: {directory!r} is a comparison; load one of its runs: "
            f"{', '.join(os.path.join(directory, k) for k in cfg.compare)}"
        )
    if cfg.dtype == "float64" and not jax.config.jax_enable_x64:
        raise ValueError(
            f"load_run: the run in {directory!r} is float64; enable it first with "
            "jax.config.update('jax_enable_x64', True) (loading it as float32 would lose precision silently)"
        )
    setup = build(cfg)
    like = train.initial_carry(setup.params, setup.optimizer)
    carry, meta, _ = train.load_checkpoint(directory, like)
    history = train.History.from_dict(meta["history"])
    return LoadedRun(setup.problem, carry.params, setup.apply, cfg, history, int(meta["step"]), str(meta.get("status")))
