"""sharp_gradient_sampling and biharmonic_stiffness: tiny end-to-end runs write their reports (every run through
train.fit, one compilation per structure); configs and options validate before anything compiles."""

import json
import os

import pytest

from sciml_jax import config, experiments, train
from sciml_jax.experiments import _sampling

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_BASE = {
    "name": "tiny",
    "dtype": "float64",
    "model": {"width": 6, "depth": 1},
    "optimizer": {"name": "adam", "learning_rate": 1e-2},
    "train": {"steps": 20, "eval_every": 10, "progress": False},
}


def test_shipped_configs_validate():
    sharp = config.load(os.path.join(ROOT, "configs", "sharp_gradient_sampling.yaml"))
    assert sharp.experiment == "sharp_gradient_sampling" and sharp.problem.name == "sharp_gradient_2d"
    assert sharp.experiment_options["seeds"] >= 3
    stiff = config.load(os.path.join(ROOT, "configs", "biharmonic_stiffness.yaml"))
    assert stiff.experiment == "biharmonic_stiffness" and len(stiff.experiment_options["frequencies"]) >= 4


def test_sharp_gradient_sampling_tiny_run(tmp_path):
    cfg = config.from_dict(
        {
            **_BASE,
            "experiment": "sharp_gradient_sampling",
            "problem": {"name": "sharp_gradient_2d", "width": 0.1},
            "sampling": {"method": "sobol", "points": {"interior": 24, "boundary": 8},
                         "adaptive": {"method": "rad", "every": 10, "candidates": 128}},
            "experiment_options": {"seeds": 1, "methods": ["sobol", "rad"], "kappa_rank": 4},
        }
    )
    out = experiments.run_config(cfg, str(tmp_path))["tiny"]
    for f in ("report.md", "metrics.json", "config.yaml", "sampling_comparison.png", "final_points.png", "points_rad.png"):
        assert (tmp_path / f).stat().st_size > 0, f
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert out["status"] == "completed" and m["methods"] == ["sobol", "rad"]
    rad, sobol = m["runs"]["rad"][0], m["runs"]["sobol"][0]
    assert rad["events"] == 1 and rad["moved"] == 24  # one event at step 10, none at the last step (20)
    assert sobol["events"] == 0
    # both start from the same Sobol points and θ_0: the same start conditioning; rad reuses sobol's compiled step
    assert rad["condition_start"] == sobol["condition_start"] and rad["compile_time_s"] == 0.0
    for run in (rad, sobol):
        c = run["condition_end"]
        assert c["lambda_max"] >= c["lambda_min"] > 0 and c["kappa_r"] >= 1.0
        # robust statistics: the best is at most the final and the median of the last evaluations
        assert run["rel_l2_best"] <= min(run["rel_l2"], run["rel_l2_median_last"])
    assert set(m["table"]["rad"]) >= {"rel_l2", "rel_l2_best", "rel_l2_median_last", "kappa_r_end", "moved"}
    report = (tmp_path / "report.md").read_text()
    assert "## Conclusion" in report and "Verdict" in report and "| rad |" in report and "median last 5" in report


def test_biharmonic_stiffness_compiles_once_per_order(tmp_path):
    """Every ω of an order (coefficients are data) and every run of the adaptive comparison (same shapes) reuse
    one compiled training chunk and one compiled metric: 2 cache misses in all, whatever the number of ω."""
    freqs = [1, 2, 3]
    cfg = config.from_dict(
        {
            **_BASE,
            "experiment": "biharmonic_stiffness",
            "problem": {"name": "poisson_1d"},
            "sampling": {"method": "sobol", "points": {"interior": 12, "boundary": 2},
                         "adaptive": {"method": "rad", "every": 10}},
            "experiment_options": {"frequencies": freqs, "problems_by_order": {2: "poisson_1d"},
                                   "adaptive_seeds": 1, "adaptive_methods": ["rad"], "static_methods": ["sobol"],
                                   "kappa_rank": 4, "hessian": False},
        }
    )
    train.clear_cache()
    out = experiments.run_config(cfg, str(tmp_path))["tiny"]
    info = train.cache_info()
    assert info["misses"] == 2 and info["hits"] == 2 * (len(freqs) - 1) + 2 * 2
    for f in ("report.md", "metrics.json", "stiffness.png", "convergence.png", "adaptive_biharmonic.png",
              "adaptive_final_points.png"):
        assert (tmp_path / f).stat().st_size > 0, f
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert out["status"] == "completed" and len(m["rows"]) == len(freqs)
    assert m["rows"][0]["compile_time_s"] > 0 and all(r["compile_time_s"] == 0.0 for r in m["rows"][1:])
    assert m["rows"][0]["eval_steps"] == [0, 10, 20] and len(m["rows"][0]["rel_l2_curve"]) == 3
    assert m["adaptive"]["points"] == {"interior": 12, "boundary": 2}  # default: sampling.points
    assert m["adaptive"]["runs"]["rad"][0]["events"] == 1 and m["adaptive"]["runs"]["rad"][0]["moved"] == 12
    # at initialisation J does not depend on the forcing: identical NTK spectra for every frequency
    a, b = (r["init"] for r in m["rows"][:2])
    assert a["lambda_max"] == pytest.approx(b["lambda_max"], rel=1e-12)
    assert m["fits"]["2"]["sine_basis_condition"]["b"] == pytest.approx(4.0, abs=0.5)
    assert m["adaptive"]["methods"] == ["sobol", "rad"]
    assert "Growth exponents" in (tmp_path / "report.md").read_text()


def test_sine_reference():
    import numpy as np

    # on an exact quadrature grid the sine basis is orthogonal: κ = (ω π)^(2p) / π^(2p) = ω^(2p) (round-off only)
    x = (np.arange(64) + 0.5) / 64
    for p in (2, 4):
        assert _sampling._sine_basis_condition(4.0, x, p) == pytest.approx(4.0 ** (2 * p), rel=1e-9)


@pytest.mark.parametrize(
    "name, options, match",
    [
        ("sharp_gradient_sampling", {"methods": ["sobol", "bogus"]}, "experiment_options.methods"),
        ("sharp_gradient_sampling", {"seeds": 0}, "experiment_options.seeds"),
        ("sharp_gradient_sampling", {"seeds": "three"}, "experiment_options.seeds: expected an integer"),
        ("sharp_gradient_sampling", {"colour": 1}, "experiment_options.colour: unknown key"),
        ("biharmonic_stiffness", {"frequencies": [2]}, "experiment_options.frequencies"),
        ("biharmonic_stiffness", {"problems_by_order": {4: "poisson_1d"}}, "experiment_options.problems_by_order.4"),
        ("biharmonic_stiffness", {"adaptive_methods": ["sobol"]}, "experiment_options.adaptive_methods"),
        ("biharmonic_stiffness", {"static_methods": ["rad"]}, "experiment_options.static_methods"),
        ("biharmonic_stiffness", {"adaptive_points": {"interior": 0, "boundary": 2}}, "experiment_options.adaptive_points"),
        ("biharmonic_stiffness", {"adaptive_points": {"interior": 8}}, "experiment_options.adaptive_points"),
    ],
)
def test_bad_options_are_config_errors(name, options, match):
    """Checked by the config layer (one line naming the key), before anything is built or compiled."""
    with pytest.raises(config.ConfigError, match=match):
        config.from_dict({**_BASE, "experiment": name, "problem": {"name": "poisson_1d"}, "experiment_options": options,
                          "sampling": {"adaptive": {"method": "rad", "every": 10}}})


def test_adaptive_methods_need_a_schedule():
    with pytest.raises(config.ConfigError, match="sampling.adaptive"):
        config.from_dict({**_BASE, "experiment": "sharp_gradient_sampling", "problem": {"name": "poisson_1d"},
                          "experiment_options": {"methods": ["sobol", "rad"]}})
