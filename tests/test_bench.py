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
        "optimizers": {
            "adam": {"optimizer": {"name": "adam", "learning_rate": 1.0e-2}},
            "lm": {"optimizer": {"name": "levenberg_marquardt"}},
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
    # per-problem optimizer override: Adam runs 40 steps, LM the base 60; no budget: nothing stopped early
    assert runs["adam", 0]["steps"] == 40 and runs["lm", 0]["steps"] == 60
    assert not any(r["budget_stop"] for r in m["runs"])
    # one compilation per cell: the second seed reuses it; seeds differ
    assert runs["adam", 0]["compile_time_s"] > 0 and runs["adam", 1]["compile_time_s"] == 0
    assert runs["lm", 0]["rel_l2"] != runs["lm", 1]["rel_l2"]
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
    for o in ("adam", "lm"):
        assert cell[o]["rel_l2_median"] == np.median([runs[o, s]["rel_l2"] for s in (0, 1)])
    # report structure: settings, the published number with its source, tables, conclusion, targets, figure
    for text in ("## Problems", "x0 = linspace(0, 1, 101) (101 points)", "Published: rel L2 **1.00e-03** — made up "
                 "(this test)", "### poisson", "**Conclusion.** Lowest median final rel L2", "## Targets",
                 "## Head to head: lm" if False else "## Overall", "![rel L2 vs wall time](bench_time.png)"):
        assert text in report, text
    best = min(("adam", "lm"), key=lambda o: cell[o]["rel_l2_median"])
    assert f"Lowest median final rel L2: **{best}**" in report


class _History:
    def __init__(self, curve):
        self.metrics = {"rel_l2": curve["rel_l2"]}
        self.eval_steps = curve["step"]
        self.wall_time_s = curve["wall_time_s"]


def test_budget_stops_a_run(tmp_path):
    raw = json.loads(json.dumps(TINY))
    raw["train"] = {"steps": 100_000, "eval_every": 10}
    raw["experiment_options"].update(seeds=[3], budget_s=0.2, optimizers={"adam": TINY["experiment_options"][
        "optimizers"]["adam"]})
    raw["experiment_options"]["problems"]["poisson"]["optimizers"] = {}
    m = experiments.run_config(config.from_dict(raw), str(tmp_path / "b"), progress=False)["bench_tiny"]
    (run,) = m["runs"]
    assert run["budget_stop"] and run["status"] == "stopped"
    # stopped at the first chunk end past the budget: its wall time is past 0.2 s, the one before was not
    wt = run["curve"]["wall_time_s"]
    assert wt[-1] >= 0.2 and wt[-2] < 0.2 and run["steps"] < 100_000 and run["steps"] % 10 == 0


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
    (("experiment_options", "problems", "poisson", "optimizers"), {"bfgs": {}}, "labels among adam, lm"),
    (("experiment_options", "problems", "poisson", "model"), {"widht": 3}, r"model\.widht: unknown key"),
    (("experiment_options", "problems", "poisson", "target"), 2.0, r"target: expected a rel L2 level in \(0, 1\)"),
    (("experiment_options", "head_to_head"), ["nope"], "head_to_head: expected distinct names among adam, lm"),
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
