"""The switch_ablation experiment end to end on a tiny grid (1 problem, 2 criteria, 2 seeds, few steps)."""

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
        "seeds": 2,
        "levels": [0.5, 1e-6],
        "criteria": [
            {"label": "fixed-10", "switch": {"after_steps": 10}},
            # ‖∇L‖ < 1e6 holds at step 0: switches at once
            {"label": "grad-now", "switch": {"grad_norm": {"tol": 1.0e6}}},
        ],
        # the syntax of compare: run name -> partial override of the config
        "problems": {
            "poisson k=1": {"problem": {"name": "poisson_1d", "k": 1}, "model": {"width": 8, "depth": 2},
                            "sampling": {"points": {"interior": 32, "boundary": 2}},
                            "train": {"steps": 60, "eval_every": 20}},
        },
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
    assert summary["status"] == "completed" and len(m["runs"]) == 4
    # the second seed of a cell reuses the first one's compiled step (one optimizer object per cell)
    assert [r["compile_time_s"] > 0 for r in m["runs"]] == [True, False, True, False]
    assert m["runs"][0]["rel_l2"] != m["runs"][1]["rel_l2"]  # seeds differ: other θ_0 and points
    runs = {r["criterion"]: r for r in m["runs"] if r["seed"] == 0}
    assert runs["fixed-10"]["first_switch_step"] == 10 and runs["grad-now"]["first_switch_step"] == 0
    for r in runs.values():
        # SGD with lr 10 blows up: every switch is rolled back, 2 retries, the last rollback final
        assert r["guard_fallbacks"] == 3 and r["switches"] == 3
        # time-to-level agrees with the recorded curve: the first evaluation from which rel L2 stays <= the level
        curve = r["curve"]
        above = [i for i, v in enumerate(curve["rel_l2"]) if not v <= 0.5]
        first = above[-1] + 1 if above else 0
        hit = r["reached"]["0.5"]
        if first < len(curve["rel_l2"]):
            assert hit["step"] == curve["step"][first] and hit["time_s"] == curve["wall_time_s"][first]
        else:
            assert hit["step"] is None and hit["time_s"] is None
        assert r["reached"]["1e-06"]["step"] is None  # 60 steps of an 8-wide net cannot reach 1e-6
        assert math.isfinite(r["rel_l2"]) and r["rel_l2"] == curve["rel_l2"][-1]
        assert r["rel_l2_best"] == min(curve["rel_l2"]) and r["rel_l2_median_last"] == np.median(curve["rel_l2"][-5:])
    # table and conclusion: ranks recomputed here from the per-run errors (median over the two seeds)
    cell = m["table"]["poisson k=1"]
    med = {c: np.median([r["rel_l2"] for r in m["runs"] if r["criterion"] == c]) for c in runs}
    for c in runs:
        assert cell[c]["rel_l2_median"] == med[c] and cell[c]["guard_fallbacks"] == 6
    best = min(med, key=med.get)
    assert m["conclusion"]["most_robust"] == best
    assert m["conclusion"]["per_criterion"][best]["mean_rank"] == 1.0
    assert "### poisson k=1" in report and "fixed-10" in report and "grad-now" in report
    assert f"Most robust (lowest mean rank of the median final rel L2 over 1 problems): {best}" in report
    lines = (out / "runs.csv").read_text().strip().splitlines()
    assert len(lines) == 5 and "time to 0.5 (s) [reached]" in report and "stays at or below the level" in report


def test_problems_use_the_compare_syntax():
    """A problem's config is exactly the compare run built from the same override (and errors name the key)."""
    from sciml_jax.experiments._ablation import AblationOptions

    cfg = config.from_dict(BASE)
    opts = AblationOptions.validate(BASE["experiment_options"], cfg)
    base = {k: v for k, v in copy.deepcopy(BASE).items() if k not in ("experiment", "experiment_options")}
    base["compare"] = copy.deepcopy(BASE["experiment_options"]["problems"])
    want = config.from_dict(base).runs()["poisson k=1"]
    got = opts.problems["poisson k=1"]
    assert (got.problem, got.model, got.sampling, got.train.steps, got.train.eval_every) == (
        want.problem, want.model, want.sampling, want.train.steps, want.train.eval_every)
    assert got.experiment == "train" and got.optimizer == want.optimizer


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
    "key, value, message",
    [
        ("criteria", [], "experiment_options.criteria"),
        ("criteria", [{"label": "x", "switch": {"warp": 3}}], "experiment_options.criteria[0]"),
        ("problems", {"p": {"problem": {"name": "poisson_1d"}, "colour": 1}}, "experiment_options.problems.p.colour"),
        ("problems", {"p": {"problem": {"name": "poisson_1d", "k": -1}}}, "experiment_options.problems.p.problem"),
        ("problems", [{"name": "poisson_1d"}], "experiment_options.problems"),
        ("seeds", 0, "experiment_options.seeds"),
        ("seeds", "x", "experiment_options.seeds"),
        ("levels", [2.0], "experiment_options.levels"),
        ("compilation_cache", True, "experiment_options.compilation_cache: unknown key"),
    ],
)
def test_bad_options_are_config_errors(key, value, message):
    """Checked by the config layer before anything is built or compiled (ConfigError: exit 2 in the CLI)."""
    d = copy.deepcopy(BASE)
    d["experiment_options"][key] = value
    with pytest.raises(config.ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        config.from_dict(d)
