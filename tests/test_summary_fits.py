"""Library helpers the experiments share: robust summaries and time to accuracy (train), power-law fits and the
NTK condition recorder (analysis)."""

import math

import numpy as np
import pytest

from sciml_jax import analysis, config, experiments, train


def _history(values, steps=None):
    h = train.History(metric_names=("rel_l2",))
    for i, v in enumerate(values):
        h.add_eval(i * 10 if steps is None else steps[i], 0.5 * i, {"rel_l2": v})
    return h


def test_summary_stats_final_best_median_last():
    v = [1.0, 0.1, 0.5, 0.2, 0.3, 0.4, 0.05, 0.6]
    s = train.summary_stats(_history(v), "rel_l2", k=5)
    assert s == {"final": 0.6, "best": 0.05, "best_step": 60, "median_last": float(np.median(v[-5:]))}
    # non-finite values: +inf for best and the median, None when reported
    s = train.summary_stats([0.3, math.nan, math.inf], k=2)
    assert s == {"final": None, "best": 0.3, "best_step": None, "median_last": None}
    assert train.summary_stats([], k=3) == {"final": None, "best": None, "best_step": None, "median_last": None}
    with pytest.raises(ValueError, match="k: expected an integer >= 1"):
        train.summary_stats([1.0], k=0)


def test_time_to_level_is_the_first_evaluation_that_stays_below():
    v = [1.0, 0.05, 0.2, 0.08, 0.01, 0.09]  # dips below 0.1 at index 1, rises again at 2, stays from index 3
    assert train.settled_index(v, 0.1) == 3
    assert train.time_to_level(_history(v), "rel_l2", 0.1) == (30, 1.5)
    assert train.settled_index(v, 0.05) is None  # ends above
    assert train.settled_index([0.01, math.nan, 0.01], 0.1) == 2  # NaN counts as above
    assert train.settled_index(v, 2.0) == 0


def test_fit_power_law():
    w = np.array([1.0, 2.0, 3.0, 4.0])
    f = analysis.fit_power_law(w, 3.0 * w**4.0)
    assert f["b"] == pytest.approx(4.0, abs=1e-12) and f["c"] == pytest.approx(3.0, rel=1e-12)
    assert f["r2"] == pytest.approx(1.0, abs=1e-12)
    # several samples per x (seeds): the fit is over all of them; bad values are left out
    f = analysis.fit_power_law([2, 2, 4, 4, 8], [4.0, 4.0, 16.0, None, -1.0])
    assert f["b"] == pytest.approx(2.0, abs=1e-12)
    assert analysis.fit_power_law(w, [1.0, None, math.nan, -1.0]) == {"b": None, "c": None, "r2": None}
    assert analysis.fit_power_law([2.0, 2.0], [1.0, 3.0])["b"] is None  # one distinct x


def test_condition_recorder_kappa_r_and_one_compilation_for_a_family():
    """κ_r = λ_1/λ_r from the NTK spectrum; problems that differ only in a coefficient share the computation."""

    def setup(k):
        return experiments.build(config.from_dict({
            "name": "t", "problem": {"name": "poisson_1d", "k": k}, "model": {"width": 4, "depth": 1},
            "sampling": {"points": {"interior": 10, "boundary": 2}}}))

    a = setup(1.0)
    rec = analysis.ConditionRecorder(a.residual, a.params, a.batch, kappa_rank=3)
    lam = analysis.spectrum(analysis.ntk(a.residual, a.params, a.batch)).eigenvalues
    assert rec.kappa_r[0] == pytest.approx(float(lam[0] / lam[2]), rel=1e-10)
    before = analysis._spectral_bias._condition_measures._cached._cache_size()
    b = setup(3.0)
    analysis.ConditionRecorder(b.residual, b.params, b.batch, kappa_rank=3)
    assert analysis._spectral_bias._condition_measures._cached._cache_size() == before
    with pytest.raises(ValueError, match="kappa_rank"):
        analysis.ConditionRecorder(a.residual, a.params, a.batch, kappa_rank=1)
