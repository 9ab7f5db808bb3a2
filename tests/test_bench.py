"""The bench experiment end to end on a tiny suite (1 problem, 2 optimizers, 2 seeds, a few steps), the wall-time
budget stop, and option validation."""

import json
import math

import numpy as np
import pytest

from sciml_jax import config, experiments, train

TINY = {
    "name": "bench_tiny",
    "dtype": "float64",
    "seed": 0,
    "experiment": "bench",
    "problem": {"name": "poisson_1d", "k": 1},
    "model": {"width": 8, "depth": 2},
    "sampling": {"method": "sobol", "points": {"interior": 32, "boundary": 2}},
    "train": {"steps": 60, "eval_every": 20},
    "experiment_options": {
        "seeds": 2,
        "budget_s": None,
        "levels": [0.5, 1e-9],
        "head_to_head": ["sgd", "adam"],
        "optimizers": {
            "adam": {"optimizer": {"name": "adam", "learning_rate": 1.0e-2}},
            "sgd": {"optimizer": {"name": "sgd", "learning_rate": 1.0e-2}},  # cheap to compile
        },
        "problems": {
            "poisson": {
                "eval_grid": [[0.0, 1.0, 101]],
                "published": [{"value": 1.0e-3, "method": "made up", "source": "this test"}],
                "target": 0.5,
                "optimizers": {"adam": {"train": {"steps": 40}}},
            },
        },
    },
}


def test_tiny_bench_report(tmp_path):
    cfg = config.from_dict(TINY)
    out = tmp_path / "bench"
    summary = experiments.run_config(cfg, str(out), progress=False)["bench_tiny"]
    report = (out / "report.md").read_text()
    m = json.loads((out / "metrics.json").read_text())
    assert (out / "bench_time.png").stat().st_size > 0 and (out / "runs.csv").stat().st_size > 0
    lines = (out / "runs.jsonl").read_text().splitlines()
    assert len(lines) == 4 and len(m["runs"]) == 4 and summary["status"] == "completed"
    runs = {(r["optimizer"], r["seed"]): r for r in m["runs"]}
    # per-problem optimizer override: Adam runs 40 steps, SGD the base 60; no budget: nothing stopped early
    assert runs["adam", 0]["steps"] == 40 and runs["sgd", 0]["steps"] == 60
    assert not any(r["budget_stop"] for r in m["runs"])
    # one compilation per cell: the second seed reuses it; seeds differ
    assert runs["adam", 0]["compile_time_s"] > 0 and runs["adam", 1]["compile_time_s"] == 0
    assert runs["sgd", 0]["rel_l2"] != runs["sgd", 1]["rel_l2"]
    # the error is measured on the given grid (101 points): it equals the curve's last value
    for r in m["runs"]:
        c = r["curve"]
        assert r["rel_l2"] == c["rel_l2"][-1] and r["rel_l2_best"] == min(c["rel_l2"])
        assert r["rel_l2_median_last"] == np.median(c["rel_l2"][-5:])
        assert r["steps_per_s"] == pytest.approx(r["steps"] / r["wall_time_s"])
        hit = train.time_to_level(_History(c), "rel_l2", 0.5)
        assert r["reached"]["0.5"]["time_s"] == (None if hit is None else hit[1])
        assert r["reached"]["1e-09"]["step"] is None  # a 8-wide net in 60 steps cannot reach 1e-9
    # table: medians over seeds, recomputed here
    cell = m["table"]["poisson"]
    for o in ("adam", "sgd"):
        assert cell[o]["rel_l2_median"] == np.median([runs[o, s]["rel_l2"] for s in (0, 1)])
    # report structure: settings, the published number with its source, tables, conclusion, targets, figure
    for text in ("## Problems", "x0 = linspace(0, 1, 101) (101 points)", "Published: rel L2 **1.00e-03** — made up "
                 "(this test)", "### poisson", "**Conclusion.** Lowest median final rel L2", "## Targets",
                 "## Head to head: sgd vs adam", "## Overall", "![rel L2 vs wall time](bench_time.png)"):
        assert text in report, text
    best = min(("adam", "sgd"), key=lambda o: cell[o]["rel_l2_median"])
    assert f"Lowest median final rel L2: **{best}**" in report


class _History:
    def __init__(self, curve):
        self.metrics = {"rel_l2": curve["rel_l2"]}
        self.eval_steps = curve["step"]
        self.wall_time_s = curve["wall_time_s"]


def test_budget_stops_a_run(tmp_path):
    raw = json.loads(json.dumps(TINY))
    raw["train"] = {"steps": 100_000, "eval_every": 10}
    # only adam runs; the problem-level override of the unselected sgd is checked and ignored
    raw["experiment_options"].update(seeds=[3], budget_s=0.2, only_optimizers=["adam"])
    raw["experiment_options"]["problems"]["poisson"]["optimizers"] = {"sgd": {"train": {"steps": 40}}}
    m = experiments.run_config(config.from_dict(raw), str(tmp_path / "b"), progress=False)["bench_tiny"]
    (run,) = m["runs"]
    assert run["optimizer"] == "adam" and list(m["table"]["poisson"]) == ["adam"]
    assert run["budget_stop"] and run["status"] == "stopped"
    # stopped at the first chunk end past the budget: its wall time is past 0.2 s, the one before was not
    wt = run["curve"]["wall_time_s"]
    assert wt[-1] >= 0.2 and wt[-2] < 0.2 and run["steps"] < 100_000 and run["steps"] % 10 == 0
    # continuing into a new folder: the finished run is taken from runs.jsonl (a new description does not matter)
    raw["description"] = "continued"
    raw["experiment_options"]["reuse"] = str(tmp_path / "b" / "runs.jsonl")
    again = experiments.run_config(config.from_dict(raw), str(tmp_path / "c"), progress=False)["bench_tiny"]
    assert again["runs"][0]["curve"] == run["curve"] and again["runs"][0]["steps"] == run["steps"]
    assert "(1 taken from" in (tmp_path / "c" / "report.md").read_text()


def test_wall_time_budget_callback():
    cb = experiments.WallTimeBudget(1.5)
    h = train.History(metric_names=["rel_l2"])
    h.add_eval(10, 1.0, {"rel_l2": 0.1})
    assert cb(history=h, step=10) is None
    h.add_eval(20, 1.5, {"rel_l2": 0.1})
    assert cb(history=h, step=20) == "stop"
    assert experiments.WallTimeBudget(None)(history=h) is None
    with pytest.raises(ValueError, match="budget_s: expected a number > 0"):
        experiments.WallTimeBudget(0.0)


@pytest.mark.parametrize("path,value,match", [
    (("experiment_options", "optimizers"), {}, "optimizers: expected a non-empty mapping"),
    (("experiment_options", "budget_s"), -1, r"budget_s: expected a number > 0 or null"),
    (("experiment_options", "problems", "poisson", "eval_grid"), [[0.0, 2.0, 11]], "outside the domain"),
    (("experiment_options", "problems", "poisson", "eval_grid"), [[0.0, 1.0]], r"triples \[lo, hi, n\]"),
    (("experiment_options", "problems", "poisson", "published"), [{"value": 1e-3}], "source: expected"),
    (("experiment_options", "problems", "poisson", "optimizers"), {"bfgs": {}}, "labels among adam, sgd"),
    (("experiment_options", "problems", "poisson", "model"), {"widht": 3}, r"model\.widht: unknown key"),
    (("experiment_options", "problems", "poisson", "target"), 2.0, r"target: expected a rel L2 level in \(0, 1\)"),
    (("experiment_options", "head_to_head"), ["nope"], "head_to_head: expected distinct names among adam, sgd"),
    (("experiment_options", "only_optimizers"), ["nope"], "only_optimizers: expected distinct names among adam, sgd"),
    (("experiment_options", "only_problems"), [], "only_problems: expected distinct names among poisson"),
])
def test_bad_options_are_refused(path, value, match):
    raw = json.loads(json.dumps(TINY))
    node = raw
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    with pytest.raises(config.ConfigError, match=match):
        config.from_dict(raw)


def test_suite_configs_validate():
    import glob
    import os

    root = os.path.join(os.path.dirname(__file__), "..", "configs", "bench")
    files = sorted(glob.glob(os.path.join(root, "*.yaml")))
    assert any(f.endswith("suite.yaml") for f in files)
    for f in files:
        cfg = config.load(f)
        assert cfg.experiment == "bench" and cfg.dtype == "float64", f
        assert math.isfinite(len(cfg.experiment_options["optimizers"]))


def test_wave_second_mode_wavenumber():
    """wave_1d(k=5) (the setting of Rathore et al. 2024) evaluates u* = sin(pi x) cos(c pi t) + 0.5 sin(5 pi x)
    cos(5 c pi t) (a solution of u_tt = c^2 u_xx for any k: both modes have (k c pi)^2 = c^2 (k pi)^2), which starts
    from sin(pi x) + 0.5 sin(5 pi x) and vanishes at x = 0, 1; k = 4 stays the default and k < 1 is refused."""
    import jax
    import jax.numpy as jnp

    from sciml_jax import problems

    p = problems.get("wave_1d", c=2.0, k=5)
    assert p.options == {"c": 2.0, "k": 5} and problems.get("wave_1d").options == {"c": 2.0}
    x = np.array([[0.3, 0.4], [0.71, 0.05], [0.5, 0.93], [0.3, 0.0], [0.0, 0.37], [1.0, 0.37]])
    got = np.asarray(jax.vmap(p.exact)(jnp.asarray(x)))
    xs, t = x[:, 0], x[:, 1]
    want = np.sin(np.pi * xs) * np.cos(2 * np.pi * t) + 0.5 * np.sin(5 * np.pi * xs) * np.cos(10 * np.pi * t)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-14)  # |u*| <= 1.5, arguments <= 10 pi: rounding ~1e-15
    assert abs(got[-2]) < 1e-14 and abs(got[-1]) < 1e-14
    with pytest.raises(ValueError, match="k"):
        problems.get("wave_1d", k=0)


@pytest.mark.slow
def test_suite_cells_build():
    """Every problem of every configs/bench suite builds (points, model, residual) for seed 0: catches what only
    the build sees, e.g. a term whose point set has no count."""
    import glob
    import os

    from sciml_jax.experiments._bench import BenchOptions
    from sciml_jax.experiments._train import build

    root = os.path.join(os.path.dirname(__file__), "..", "configs", "bench")
    for f in sorted(glob.glob(os.path.join(root, "*.yaml"))):
        cfg = config.load(f)
        opts = BenchOptions.validate(cfg.experiment_options, cfg)
        for p, row in opts.cells.items():
            setup = build(next(iter(row.values())))
            assert setup.batch is not None and setup.problem.exact is not None, (f, p)
