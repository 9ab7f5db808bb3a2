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


def set_dtype(dtype: str) -> None:
    """Switch JAX's default float width for a run (``jax_enable_x64``); the CLI/experiment boundary owns this."""
    jax.config.update("jax_enable_x64", dtype == "float64")


def build(cfg: _config.RunConfig) -> Setup:
    """Build problem, model, collocation batch, residual, optimizer and metrics of ``cfg``.

    Keys: ``PRNGKey(cfg.seed)`` is split into (model, points), so model and points are reproducible separately.
    """
    problem = problems.get(cfg.problem.name, **cfg.problem.options)
    key_model, key_points, key_ff = jax.random.split(jax.random.PRNGKey(cfg.seed), 3)
    ff = None
    if cfg.model.fourier_features:
        ff = nn.FourierFeatures(problem.domain.dim, cfg.model.fourier_features, cfg.model.fourier_sigma, key=key_ff)
    model = nn.MLP(
        problem.domain.dim,
        1,
        cfg.model.width,
        cfg.model.depth,
        cfg.model.activation,
        key=key_model,
        fourier_features=ff,
    )
    params, apply = nn.functional(model)
    counts = dict(cfg.sampling.points or problem.default_points)
    batch = sampling.sample(problem.domain, counts, cfg.sampling.method, key_points)
    residual = pinn.residual(problem, apply, cfg.loss.weights)
    optimizer = optim.get(cfg.optimizer.name, **cfg.optimizer.options)
    metrics = {"rel_l2": pinn.rel_l2(problem, apply)} if problem.exact is not None else {}
    return Setup(cfg, problem, apply, params, batch, residual, optimizer, metrics, key_points)


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
    term_mse = {k: (v[-1] if v else math.nan) for k, v in h.terms.items()}
    final_params = result.params
    final_loss = float(setup.residual.loss(final_params, setup.batch))
    rel = float(setup.metrics["rel_l2"](final_params)) if "rel_l2" in setup.metrics else math.nan
    return {
        "name": setup.cfg.name,
        "problem": setup.cfg.problem.name,
        "problem_options": setup.problem.options,
        "optimizer": setup.cfg.optimizer.name,
        "rel_l2": _finite(rel),
        "final_loss": _finite(final_loss),
        "term_mse": {k: _finite(v) for k, v in term_mse.items()},
        "steps": result.step,
        "wall_time_s": result.history.last_wall_time(),
        "compile_time_s": result.compile_time_s,
        "status": result.status,
        "message": result.message,
        "events": h.events,
        "dtype": setup.cfg.dtype,
        "num_params": nn.num_params(setup.params),
        "points": {k: int(v.shape[0]) for k, v in setup.batch.items()},
        "seed": setup.cfg.seed,
        "jax_version": jax.__version__,
        "backend": jax.default_backend(),
        "platform": platform.platform(),
    }


def _metric_at_time(history: train.History, metric: str, t: float) -> float:
    """Value of ``metric`` at the last evaluation whose wall time is <= t (NaN if none)."""
    values = history.metrics.get(metric, [])
    best = math.nan
    for tt, v in zip(history.wall_time_s, values):
        if tt <= t + 1e-9:
            best = v
    return best


def _decades_reached(results: Mapping[str, Mapping[str, Any]]) -> list[float]:
    """Decades 1e-2, 1e-3, ... down to the smallest final rel L2 of any run (at most 6, the finest ones)."""
    finals = [s["rel_l2"] for s in results.values() if s.get("rel_l2") is not None and s["rel_l2"] > 0]
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
        "## Result",
        "",
        "| quantity | value |",
        "|---|---|",
        f"| relative L2 error | {_fmt(summary['rel_l2'])} |",
        f"| final loss ½‖r‖² | {_fmt(summary['final_loss'])} |",
    ]
    lines += [f"| mse {k} | {_fmt(v)} |" for k, v in summary["term_mse"].items()]
    lines += [
        f"| steps | {summary['steps']} |",
        f"| wall time (s, compile excluded) | {summary['wall_time_s']:.2f} |",
        f"| compile time (s) | {summary['compile_time_s']:.2f} |",
        f"| status | {summary['status']}: {summary['message']} |",
        f"| parameters | {summary['num_params']} |",
        f"| points | {summary['points']} |",
        f"| dtype / backend | {summary['dtype']} / {summary['backend']} |",
        "",
    ]
    if summary["events"]:
        lines += ["## Events", ""] + [f"- {_event_text(e)}" for e in summary["events"]] + [""]
    lines += ["## Figures", ""] + [f"![{k}]({os.path.basename(v)})" for k, v in figures.items()] + [""]
    lines += ["## Configuration", "", "```yaml", yaml.safe_dump(_config.to_dict(cfg), sort_keys=False).strip(), "```", ""]
    path = os.path.join(out_dir, "report.md")
    with open(path, "w") as f:
        f.write("\n".join(lines))
    return path


def run(cfg: _config.RunConfig, out_dir: str, *, resume: bool = False, progress: bool | None = None) -> dict:
    """Train one run of ``cfg`` and write ``out_dir/{metrics.json, history.csv, report.md, *.png, checkpoint.*}``.

    Sets ``jax_enable_x64`` from ``cfg.dtype``. Returns the summary written to ``metrics.json``.
    """
    set_dtype(cfg.dtype)
    os.makedirs(out_dir, exist_ok=True)
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
    if tc.stages:
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
            **common,
        )
    if resampler is not None and result.batch is not None:
        setup.batch = dict(result.batch)  # the final (resampled) points: the final loss is reported on them
    summary = _summary(setup, result)
    result.history.to_csv(os.path.join(out_dir, "history.csv"))
    figures = {
        "loss": plotting.plot_history(result.history, os.path.join(out_dir, "loss.png"), title=cfg.name),
        "solution": plotting.plot_solution(
            setup.problem, setup.apply, result.params, os.path.join(out_dir, "solution.png"), title=cfg.name
        ),
    }
    if resampler is not None and resampler.snapshots:
        import numpy as np  # noqa: PLC0415

        np.savez(
            os.path.join(out_dir, "points.npz"),
            steps=np.asarray([s["step"] for s in resampler.snapshots]),
            **{f"points_{i}": s["points"] for i, s in enumerate(resampler.snapshots)},  # sizes differ across stages
        )
        figures["points"] = plotting.plot_points(
            setup.problem, setup.apply, result.params, resampler.snapshots, os.path.join(out_dir, "points.png"),
            title=f"{cfg.name}: {resampler.method} points over the final |error|"
            if setup.problem.exact is not None else cfg.name,
            background="error" if setup.problem.exact is not None else "solution",
        )
    summary["report"] = _write_report(out_dir, setup, summary, figures)
    with open(os.path.join(out_dir, "metrics.json"), "w") as f:
        json.dump(summary, f, indent=2)
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
    histories = {k: v.pop("_history") for k, v in results.items()}
    fig = plotting.plot_comparison(histories, os.path.join(out_dir, "comparison.png"))
    budget = min(s["wall_time_s"] for s in results.values())
    for name, s in results.items():
        s["rel_l2_at_common_time"] = _finite(_metric_at_time(histories[name], "rel_l2", budget))
    lines = [
        f"# {cfg.name}: comparison",
        "",
        cfg.description,
        "",
        f"Equal wall time: each run's relative L2 error at t = {budget:.2f} s (the shortest run's time; the last "
        "evaluation at or before t), compile time excluded.",
        "",
        "| run | optimizer | rel L2 | rel L2 at equal time | final loss | steps | wall time (s) | compile (s) | status |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, s in results.items():
        lines.append(
            f"| {name} | {s['optimizer']} | {_fmt(s['rel_l2'])} | {_fmt(s['rel_l2_at_common_time'])} | "
            f"{_fmt(s['final_loss'])} | {s['steps']} | {s['wall_time_s']:.2f} | {s['compile_time_s']:.2f} | "
            f"{s['status']} |"
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
    lines += ["", f"![comparison]({os.path.basename(fig)})", ""]
    lines += [f"- [{name}]({name}/report.md)" for name in results] + [""]
    with open(os.path.join(out_dir, "report.md"), "w") as f:
        f.write("\n".join(lines))
    with open(os.path.join(out_dir, "metrics.json"), "w") as f:
        json.dump({k: {kk: vv for kk, vv in v.items()} for k, v in results.items()}, f, indent=2)
    return results


register("train", _train_experiment)

__all__ = ["Setup", "build", "check_options", "make_resampler", "names", "register", "run", "run_config", "set_dtype"]
