"""The switch_ablation experiment end to end on a tiny grid (1 problem, 2 criteria, 1 seed, few steps)."""

import copy
import json
import math

import numpy as np
import pytest

from sciml_jax import config, experiments

BASE = {
    "name": "ablation_tiny",
    "dtype": "float64",
    "seed": 0,
    "experiment": "switch_ablation",
    "experiment_options": {
        "seeds": 1,
        "levels": [0.5, 1e-6],
        "criteria": [
            {"label": "fixed-10", "switch": {"after_steps": 10}},
            # ‖∇L‖ < 1e6 holds at step 0: switches at once
            {"label": "grad-now", "switch": {"grad_norm": {"tol": 1.0e6}}},
        ],
        "problems": [
            {"label": "poisson k=1", "name": "poisson_1d", "options": {"k": 1}, "model": {"width": 8, "depth": 2},
             "points": {"interior": 32, "boundary": 2}, "steps": 60, "eval_every": 20},
        ],
    },
    "problem": {"name": "poisson_1d"},
    "optimizer": {
        "name": "hybrid",
        "first": {"name": "adam", "learning_rate": 1.0e-2},
        # a far too large plain-SGD step after the switch: the divergence guard must roll it back
        "second": {"name": "sgd", "learning_rate": 10.0},
        "switch": {"after_steps": 10},
        "guard_factor": 2.0,
        "fallback_steps": 10,
        "max_fallbacks": 2,
    },
    "train": {"steps": 60, "eval_every": 20},
}


def test_tiny_ablation_report(tmp_path):
    cfg = config.from_dict(BASE)
    out = tmp_path / "abl"
    summary = experiments.run_config(cfg, str(out))["ablation_tiny"]
    report = (out / "report.md").read_text()
    assert (out / "ablation.png").stat().st_size > 0 and (out / "ablation_time.png").stat().st_size > 0
    m = json.loads((out / "metrics.json").read_text())  # strict JSON (non-finite values are written as null)
    assert summary["status"] == "completed" and len(m["runs"]) == 2
    runs = {r["criterion"]: r for r in m["runs"]}
    assert runs["fixed-10"]["first_switch_step"] == 10 and runs["grad-now"]["first_switch_step"] == 0
    for r in runs.values():
        # SGD with lr 10 blows up: every switch is rolled back, 2 retries, the last rollback final
        assert r["guard_fallbacks"] == 3 and r["switches"] == 3
        # time-to-level agrees with the recorded curve: the first evaluation at or below the level
        curve = r["curve"]
        below = [i for i, v in enumerate(curve["rel_l2"]) if v <= 0.5]
        hit = r["reached"]["0.5"]
        if below:
            assert hit["step"] == curve["step"][below[0]] and hit["time_s"] == curve["wall_time_s"][below[0]]
        else:
            assert hit["step"] is None and hit["time_s"] is None
        assert r["reached"]["1e-06"]["step"] is None  # 60 steps of an 8-wide net cannot reach 1e-6
        assert math.isfinite(r["rel_l2"]) and r["rel_l2"] == pytest.approx(curve["rel_l2"][-1], rel=1e-12)
    # table and conclusion: ranks recomputed here from the per-run errors (one seed: median = the run)
    cell = m["table"]["poisson k=1"]
    for c, r in runs.items():
        assert cell[c]["rel_l2_median"] == r["rel_l2"] and cell[c]["guard_fallbacks"] == 3
    best = min(runs, key=lambda c: runs[c]["rel_l2"])
    assert m["conclusion"]["most_robust"] == best
    assert m["conclusion"]["per_criterion"][best]["mean_rank"] == 1.0
    assert "### poisson k=1" in report and "fixed-10" in report and "grad-now" in report
    assert f"Most robust (lowest mean rank of the median final rel L2 over 1 problems): {best}" in report
    lines = (out / "runs.csv").read_text().strip().splitlines()
    assert len(lines) == 3


def test_ranks_and_worst_case():
    from sciml_jax.experiments._ablation import _conclusion

    def cell(med, worst):
        never = {"count": 0, "time_median_all_s": np.inf}
        return {"n": 1, "rel_l2_median": med, "rel_l2_max": worst, "guard_fallbacks": 0,
                "reached": {"0.001": never, "1e-05": never}}

    table = {
        "p1": {"a": cell(1e-3, 2e-3), "b": cell(1e-4, 1e-4), "c": cell(np.inf, np.inf)},
        "p2": {"a": cell(1e-5, 1e-5), "b": cell(1e-2, 5e-2), "c": cell(1e-3, 1e-3)},
    }
    out = _conclusion(table, ["a", "b", "c"], (1e-3, 1e-5))
    per = out["per_criterion"]
    # ranks by hand: p1: b=1, a=2, c=3; p2: a=1, c=2, b=3
    assert per["a"]["mean_rank"] == 1.5 and per["b"]["mean_rank"] == 2.0 and per["c"]["mean_rank"] == 2.5
    assert out["most_robust"] == "a" and out["order"] == ["a", "b", "c"]
    # worst case of a: max(2e-3 / 1e-4, 1e-5 / 1e-5) = 20; of b: 5e-2 / 1e-5 = 5000
    assert per["a"]["worst_ratio_to_best"] == pytest.approx(20.0, rel=1e-12)
    assert per["b"]["worst_ratio_to_best"] == pytest.approx(5000.0, rel=1e-12)
    assert per["c"]["worst_ratio_to_best"] is None and out["smallest_worst_case"] == "a"
    # nothing reached any level: no time ranking, no fastest criterion
    assert out["fastest"] is None and out["time_levels"] == {} and per["a"]["mean_time_rank"] is None


def test_time_ranks_use_tightest_level_reached_on_every_seed():
    from sciml_jax.experiments._ablation import _cell_stats, _conclusion

    levels = (1e-3, 1e-5)

    def run(rel, t3, t5):
        reached = {"0.001": {"time_s": t3, "step": None}, "1e-05": {"time_s": t5, "step": None}}
        return {"rel_l2": rel, "guard_fallbacks": 0, "status": "completed", "switches": 1, "first_switch_step": 10,
                "wall_time_s": 1.0, "reached": reached}

    # p1: only b reaches 1e-5 on both seeds -> the time ranking uses 1e-5; a reaches it on one seed of two, so its
    # median over seeds is +inf (median of [2, inf] = inf) and it ties with c, which never reaches it.
    # p2: nobody reaches 1e-5 on every seed; at 1e-3: a in 1 s, c in 3 s (median of 2, 4), b never.
    runs = {
        "p1": {"a": [run(1e-6, 1.0, 2.0), run(1e-4, 1.0, None)], "b": [run(5e-6, 3.0, 9.0), run(5e-6, 3.0, 8.0)],
               "c": [run(1e-4, 0.5, None), run(1e-4, 0.5, None)]},
        "p2": {"a": [run(1e-4, 1.0, None), run(1e-4, 1.0, None)], "b": [run(1e-2, None, None)] * 2,
               "c": [run(1e-4, 2.0, None), run(1e-4, 4.0, None)]},
    }
    table = {p: {c: _cell_stats(rs, levels) for c, rs in cells.items()} for p, cells in runs.items()}
    assert table["p1"]["a"]["reached"]["1e-05"]["time_median_all_s"] == np.inf
    assert table["p1"]["a"]["reached"]["1e-05"]["time_median_s"] == 2.0  # over the seeds that reach it
    out = _conclusion(table, ["a", "b", "c"], levels)
    assert out["time_levels"] == {"p1": 1e-5, "p2": 1e-3}
    per = out["per_criterion"]
    assert per["b"]["time_ranks"] == {"p1": 1.0, "p2": 3.0}
    assert per["a"]["time_ranks"] == {"p1": 2.5, "p2": 1.0}
    assert per["c"]["time_ranks"] == {"p1": 2.5, "p2": 2.0}
    # mean time ranks: a 1.75, b 2.0, c 2.25
    assert out["fastest"] == "a"


@pytest.mark.parametrize(
    "path, value, message",
    [
        (("criteria",), [], "experiment_options.criteria"),
        (("criteria",), [{"label": "x", "switch": {"warp": 3}}], "experiment_options.criteria[0]"),
        (("problems",), [{"name": "poisson_1d", "colour": 1}], "experiment_options.problems[0]"),
        (("seeds",), 0, "experiment_options.seeds"),
        (("levels",), [2.0], "experiment_options.levels"),
    ],
)
def test_bad_options_raise(tmp_path, path, value, message):
    d = copy.deepcopy(BASE)
    d["experiment_options"][path[0]] = value
    cfg = config.from_dict(d)
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        experiments.run_config(cfg, str(tmp_path / "x"))
