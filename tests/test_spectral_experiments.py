"""The spectral_bias and ntk_width experiments: tiny runs write their reports; configs validate."""

import json
import os

import pytest

from sciml_jax import config, experiments

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cfg(**overrides):
    base = {
        "name": "tiny",
        "dtype": "float64",
        "problem": {"name": "regression_1d", "frequencies": [1, 2]},
        "model": {"width": 8, "depth": 1},
        "sampling": {"points": {"interior": 32}},
        "optimizer": {"name": "adam", "learning_rate": 1e-2},
        "train": {"steps": 20, "eval_every": 10, "progress": False},
    }
    base.update(overrides)
    return config.from_dict(base)


def test_shipped_configs_validate():
    for name, experiment in (("spectral_bias", "spectral_bias"), ("ntk_width", "ntk_width")):
        cfg = config.load(os.path.join(ROOT, "configs", f"{name}.yaml"))
        assert cfg.experiment == experiment and cfg.problem.name == "regression_1d"


def test_spectral_bias_tiny_run(tmp_path):
    cfg = _cfg(experiment="spectral_bias", experiment_options={"modes": 3, "condition_every": 10, "gd_step": 1.0})
    out = experiments.run_config(cfg, str(tmp_path))["tiny"]
    for f in ("report.md", "metrics.json", "config.yaml", "spectrum.png", "eigenvectors.png", "mode_decay.png",
              "fourier.png", "condition.png", "fit.png"):
        assert (tmp_path / f).stat().st_size > 0, f
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["status"] == out["status"] == "completed" and m["steps"] == 20
    assert len(m["modes"]) == 3 and set(m["runs"]) == {"GD", "adam"}
    assert m["runs"]["GD"]["condition_number"]["steps"] == [0, 10, 20]
    assert set(m["runs"]["adam"]["final_error_amplitude"]) == {"1", "2"}
    # GD's learning rate is gd_step / λ_max of the NTK at θ_0
    assert m["gd_learning_rate"] == pytest.approx(1.0 / m["ntk"]["eigenvalues"][0], rel=1e-12)
    assert out["rel_l2"] is not None and out["wall_time_s"] > 0
    for run in m["runs"].values():  # robust statistics beside the final value
        assert run["rel_l2_best"] <= min(run["rel_l2"], run["rel_l2_median_last"])
    report = (tmp_path / "report.md").read_text()
    assert "Verdict" in report and "| f (cycles over interval) |" in report


def test_ntk_width_tiny_run(tmp_path):
    cfg = _cfg(
        experiment="ntk_width",
        experiment_options={"widths": [4, 8], "seeds": 2, "pinn_points": {"interior": 12, "boundary": 2}},
    )
    out = experiments.run_config(cfg, str(tmp_path))["tiny"]
    for f in ("report.md", "metrics.json", "ntk_width.png", "ntk_width_spectra.png"):
        assert (tmp_path / f).stat().st_size > 0, f
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert out["status"] == "completed" and m["widths"] == [4, 8] and m["seeds"] == 2
    for key, n in (("regression", 32), ("pinn", 14)):
        study = m["studies"][key]
        assert len(study["rows"]) == 4 and study["N"] == n
        assert all(len(r["eigenvalues"]) == n for r in study["rows"])
        assert set(study["fits"]) == {"condition_number", "kappa_r", "lambda_max", "numerical_rank"}
    assert "block_trace_ratio" in m["studies"]["pinn"]["table"][0]


@pytest.mark.parametrize(
    "name, options, match",
    [
        ("spectral_bias", {"gd_step": 3.0}, "experiment_options.gd_step"),
        ("spectral_bias", {"modes": 0}, "experiment_options.modes"),
        ("spectral_bias", {"frequencies": "high"}, "experiment_options.frequencies"),
        ("ntk_width", {"widths": [8]}, "experiment_options.widths"),
        ("ntk_width", {"pinn_points": {"nowhere": 3}}, "experiment_options.pinn_points.nowhere"),
        ("ntk_width", {"pinn_problem": "nope"}, "experiment_options.pinn_problem"),
        ("ntk_width", {"pinn_weights": {"nope": 1.0}}, "experiment_options.pinn_weights"),
    ],
)
def test_bad_options_are_config_errors(name, options, match):
    """Checked by the config layer before anything is built or compiled (ConfigError: exit 2 in the CLI)."""
    with pytest.raises(config.ConfigError, match=match):
        _cfg(experiment=name, experiment_options=options)


def test_unknown_option_is_a_config_error():
    with pytest.raises(config.ConfigError, match="experiment_options.nope: unknown key; allowed: gd_step"):
        _cfg(experiment="spectral_bias", experiment_options={"nope": 1})
