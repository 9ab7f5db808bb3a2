"""The optimizer issue's accuracy targets, run from the shipped configs (slow: minutes; `pytest -m slow`).

Wall-time targets (1-D hybrid <= 1e-6 within 2 minutes; 2-D LM <= 1e-7 within 60 s) are measured and reported in
each run's report, not asserted here: timing belongs to benchmarks, not to unit tests.
"""

import os

import pytest

from sciml_jax import config, experiments

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_poisson2d_lm_reaches_1e_7(tmp_path):
    cfg = config.load(os.path.join(REPO, "configs", "poisson2d_lm.yaml"))
    out = experiments.run_config(cfg, str(tmp_path))
    assert out["lm_geodesic"]["rel_l2"] <= 1e-7  # the target (measured 8e-9 .. 8e-8 over seeds 0-3)
    assert out["lm_geodesic"]["rel_l2"] < out["lm"]["rel_l2"]  # the acceleration is what gets it there
    assert (tmp_path / "report.md").read_text().count("<= 1e-07") == 1  # time-to-accuracy table has the column


@pytest.mark.slow
def test_poisson1d_hybrid_reaches_1e_6_and_beats_adam(tmp_path):
    cfg = config.load(os.path.join(REPO, "configs", "poisson1d_hybrid.yaml"))
    out = experiments.run_config(cfg, str(tmp_path))
    assert out["hybrid"]["rel_l2"] <= 1e-6  # the target (measured 5.7e-7)
    # better than Adam alone at equal wall time (measured ~1e4x)
    assert out["hybrid"]["rel_l2_at_common_time"] < 0.01 * out["adam"]["rel_l2_at_common_time"]
    assert any(e["kind"] == "switch" for e in out["hybrid"]["events"])
