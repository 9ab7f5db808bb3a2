"""Time-marching windows: pinn.TimeWindows, train.fit_windows, the train.time_windows config key."""

import copy
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sciml_jax as sj
from sciml_jax import config as sj_config


def _net(width=16, depth=2, period=2 * np.pi, seed=0):
    emb = sj.nn.PeriodicEmbedding(2, {0: period})
    mlp = sj.nn.MLP(emb.out_size, 1, width, depth, "tanh", key=jax.random.PRNGKey(seed))
    return sj.nn.functional(sj.nn.Embedded(emb, mlp))


COUNTS = {"interior": 200, "boundary": 20, "initial": 64}


def test_windowed_model_picks_the_window_of_each_time():
    prob = sj.problems.get("convection_1d", beta=1.0)
    for local in (True, False):
        tw = sj.pinn.TimeWindows(prob, 3, local_time=local)
        model = tw.model(lambda p, x: p["c"])  # window k's "network" is the constant k
        stacked = {"c": jnp.arange(3.0)}
        t = [0.0, 0.1, 1 / 3, 0.5, 0.9, 1.0, 1.5, -0.5]  # the bounds belong to the later window; outside: nearest
        got = [float(model(stacked, jnp.array([0.3, s]))) for s in t]
        assert got == [0.0, 0.0, 1.0, 1.0, 2.0, 2.0, 2.0, 0.0]


def test_local_time_maps_the_window_to_the_unit_interval_and_keeps_the_physics():
    net = sj.pinn.LocalTime(lambda p, x: p * x[-1] ** 2, np.array([0.2, 0.4]))
    x = jnp.array([1.0, 0.3])
    assert float(net(2.0, x)) == pytest.approx(2.0 * 0.5**2)
    # d/dt of 2 tau^2 with tau = (t - 0.2) / 0.2: 4 tau / 0.2 = 10 at tau = 0.5
    assert float(jax.grad(lambda y: net(2.0, y))(x)[1]) == pytest.approx(10.0)


@pytest.mark.parametrize("name", ["convection_1d", pytest.param("wave_1d", marks=pytest.mark.slow)])
def test_initial_terms_measure_against_the_previous_window(name):
    """With absolute time, a network equal to the previous window's has zero initial residual in the next window
    (value and velocity conditions alike); window 0 keeps the problem's own initial data."""
    prob = sj.problems.get(name)
    params, apply = _net(period=1.0 if name == "wave_1d" else 2 * np.pi)
    tw = sj.pinn.TimeWindows(prob, 4, local_time=False)
    initial = [n for n, t in prob.terms.items() if t.points == "initial"]
    assert tw.initial_terms == tuple(initial) and len(initial) == (2 if name == "wave_1d" else 1)
    res = tw.residual(apply)
    b1 = tw.batch(1, COUNTS, key=1, previous=(tw.network(apply, 0), params))
    x1 = b1[f"window_{initial[0]}"][0]
    np.testing.assert_allclose(np.asarray(x1[:, 1]), 0.25)  # the window's initial points are at t_1
    terms = res.terms(params, b1)
    for n in initial:
        assert float(jnp.max(jnp.abs(terms[n]))) < 1e-12
    assert float(jnp.max(jnp.abs(terms["pde"]))) > 1e-3  # an untrained network is no solution
    # window 0: the window problem's initial terms equal the problem's own on the same points
    b0 = tw.batch(0, COUNTS, key=2)
    x0 = b0[f"window_{initial[0]}"][0]
    own = sj.pinn.residual(prob, apply).terms(params, {**b0, "initial": x0})
    for n in initial:
        np.testing.assert_allclose(np.asarray(res.terms(params, b0)[n]), np.asarray(own[n]), rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match="previous"):
        tw.batch(2, COUNTS)


def test_causal_span_is_data_and_follows_the_window():
    t = jnp.linspace(0.5, 1.0, 40)
    r = jnp.cos(7 * t)
    c = sj.pinn.Causal(chunks=4, epsilon=3.0, span=(0.5, 1.0))
    rows, w = c.weights(t, r, c.span[0], c.span[1])
    rows_ref, w_ref = sj.pinn.Causal(chunks=4, epsilon=3.0).weights(t, r, 0.5, 1.0)
    np.testing.assert_array_equal(np.asarray(w), np.asarray(w_ref))
    assert float(w[0]) == 1.0 and float(w[-1]) < 1.0
    prob = sj.problems.get("convection_1d")
    _, apply = _net()
    tw = sj.pinn.TimeWindows(prob, 5)
    res = tw.residual(apply, causal=sj.pinn.Causal(chunks=4))
    moved = tw.for_window(res, 3)
    np.testing.assert_allclose(moved.causal.span, [0.6, 0.8])
    np.testing.assert_allclose(moved.apply.span, [0.6, 0.8])
    assert jax.tree.structure(moved) == jax.tree.structure(res)
    with pytest.raises(ValueError, match="span must be"):
        sj.pinn.Causal(span=(1.0, 0.5))


def test_fit_windows_compiles_once_and_reports_the_whole_error():
    prob = sj.problems.get("convection_1d", beta=5.0)
    params, apply = _net(width=12)
    tw = sj.pinn.TimeWindows(prob, 3)
    x = np.stack(np.meshgrid(np.linspace(0, 2 * np.pi, 33), np.linspace(0, 1, 17), indexing="ij"), -1).reshape(-1, 2)
    sj.train.clear_cache()
    res = sj.train.fit_windows(tw, apply, params, sj.optim.get("adam", learning_rate=1e-2), 20, counts=COUNTS,
                               eval_points=x, eval_every=10, progress=False,
                               causal=sj.pinn.Causal(chunks=4))
    info = sj.train.cache_info()
    assert info["misses"] == 2 and info["hits"] >= 4  # one step and one metric for all three windows
    assert res.step == 60 and res.status == "completed"
    assert jax.tree.leaves(res.params)[0].shape[0] == 3
    events = [e for e in res.history.events if e["kind"] == "window"]
    assert [e["step"] for e in events] == [0, 20, 40] and events[2]["span"] == pytest.approx([2 / 3, 1.0])
    whole = float(sj.pinn.rel_l2(prob, tw.model(apply), points=x)(res.params))
    assert res.history.metrics["rel_l2"][-1] == pytest.approx(whole, rel=1e-9)
    # each window warm-starts from the previous one: windows differ (trained further), not copies
    first = jax.tree.map(lambda a: a[0], res.params)
    last = jax.tree.map(lambda a: a[-1], res.params)
    assert any(not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(last)))
    with pytest.raises(ValueError, match="one count per window"):
        sj.train.fit_windows(tw, apply, params, sj.optim.get("adam"), [5, 5], counts=COUNTS)
    with pytest.raises(ValueError, match="metrics is not supported"):
        sj.train.fit_windows(tw, apply, params, sj.optim.get("adam"), 5, counts=COUNTS, metrics={})


@pytest.mark.slow
def test_windows_solve_fast_convection_where_one_window_fails():
    """Convection beta = 30 on a small periodic network, Levenberg-Marquardt, the same total steps: 6 time windows
    reach a small error, the whole interval at once does not (Krishnapriyan et al. 2021's failure mode). Measured:
    5.8e-2 against 1.29."""
    prob = sj.problems.get("convection_1d", beta=30.0)
    params, apply = _net(width=20, depth=3)
    x = np.stack(np.meshgrid(np.linspace(0, 2 * np.pi, 65), np.linspace(0, 1, 33), indexing="ij"), -1).reshape(-1, 2)
    opt = sj.optim.get("levenberg_marquardt")
    counts = {"interior": 600, "boundary": 40, "initial": 128}
    tw = sj.pinn.TimeWindows(prob, 6)
    marched = sj.train.fit_windows(tw, apply, params, opt, 40, counts=counts, eval_points=x, eval_every=10,
                                   progress=False)
    err_windows = marched.history.metrics["rel_l2"][-1]
    res = sj.pinn.residual(prob, apply)
    single = sj.train.fit(res, params, prob.batch(counts), opt, 240, eval_every=40, progress=False,
                          metrics={"rel_l2": sj.pinn.rel_l2(prob, apply, points=x)})
    err_single = single.history.metrics["rel_l2"][-1]
    assert err_windows < 0.15 and err_single > 0.6, (err_windows, err_single)


def test_time_windows_validation():
    with pytest.raises(ValueError, match="not time-dependent"):
        sj.pinn.TimeWindows(sj.problems.get("poisson_1d"), 2)
    prob = sj.problems.get("heat_1d")
    with pytest.raises(ValueError, match="windows must be an integer >= 1"):
        sj.pinn.TimeWindows(prob, 0)
    with pytest.raises(ValueError, match="bounds must increase strictly"):
        sj.pinn.TimeWindows(prob, bounds=[0.0, 0.7, 0.5, 1.0])
    with pytest.raises(ValueError, match="bounds must increase strictly from t0 = 0 to t1 = 1"):
        sj.pinn.TimeWindows(prob, bounds=[0.0, 0.5])
    obs = sj.problems.Problem(
        "observed", sj.geometry.SpaceTime(sj.geometry.Interval(0.0, 1.0), 0.0, 1.0),
        {"ic": sj.problems.initial(0.0), "data": sj.problems.Term("obs", lambda u, x, y: u(x) - y)},
        observations={"obs": (np.zeros((3, 2)), np.zeros(3))},
    )
    with pytest.raises(ValueError, match="observation entries"):
        sj.pinn.TimeWindows(obs, 2)
    tw = sj.pinn.TimeWindows(prob, bounds=[0.0, 0.2, 1.0])
    assert tw.count == 2 and tw.span(1) == (0.2, 1.0)
    with pytest.raises(ValueError, match="'initial' entry"):
        tw.batch(0, {"interior": 10, "boundary": 4})
    with pytest.raises(ValueError, match="TimeWindows"):
        sj.train.fit_windows(prob, None, None, sj.optim.get("adam"), 5, counts={})


BASE = {
    "name": "tw",
    "problem": {"name": "convection_1d", "beta": 5.0},
    "model": {"width": 12, "depth": 2, "periodic": {0: 6.283185307179586}},
    "sampling": {"points": {"interior": 100, "boundary": 10, "initial": 32}},
    "optimizer": {"name": "adam", "learning_rate": 1e-2},
    "train": {"steps": 30, "eval_every": 5, "time_windows": 3},
}


def _cfg(**changes):
    raw = copy.deepcopy(BASE)
    for section, value in changes.items():
        if value is None:
            raw.pop(section, None)
        elif section != "problem" and isinstance(value, dict) and isinstance(raw.get(section), dict):
            raw[section].update(value)
        else:
            raw[section] = value
    return sj_config.from_dict(raw)


@pytest.mark.parametrize("changes, message", [
    ({"train": {"time_windows": 0}}, "expected a number of windows >= 1"),
    ({"train": {"time_windows": {"windows": 2, "local": True}}}, "time_windows.local: unknown key"),
    ({"train": {"time_windows": {"windows": 2, "local_time": "yes"}}}, "local_time: expected true or false"),
    ({"train": {"steps": 2}}, "at least one step per window"),
    ({"train": {"stages": [{"points": {"interior": 10, "boundary": 4, "initial": 4}, "steps": 5}]}},
     "cannot be combined with train.stages"),
    ({"sampling": {"adaptive": {"method": "rad", "every": 10}}}, "cannot be combined with sampling.adaptive"),
    ({"sampling": {"points": {"interior": 100, "boundary": 10}}}, "needs an 'initial' count"),
    ({"problem": {"name": "poisson_1d"}, "model": {"width": 8, "depth": 1},
      "sampling": {"points": {"interior": 10, "boundary": 2}}}, "not time-dependent"),
])
def test_config_time_windows_errors_say_what_is_wrong(changes, message):
    with pytest.raises(sj_config.ConfigError, match=message):
        _cfg(**changes)


@pytest.mark.slow  # 16 s (figures of the piecewise model); the bench test below covers the config path by default
def test_config_run_with_time_windows_reports_the_piecewise_model(tmp_path):
    cfg = _cfg(loss={"causal": {"term": "pde", "chunks": 4}})
    out = sj.experiments.run_config(cfg, str(tmp_path))["tw"]
    assert out["status"] == "completed" and out["steps"] == 30 and out["time_windows"] == 3
    assert np.isfinite(out["rel_l2"]) and 0 < out["rel_l2"] < 2
    saved = json.load(open(os.path.join(tmp_path, "metrics.json")))
    assert [e["step"] for e in saved["events"] if e["kind"] == "window"] == [0, 10, 20]
    report = open(os.path.join(tmp_path, "report.md")).read()
    assert "time window 2, t in [0.666667, 1]" in report


def test_bench_cell_with_time_windows_shares_the_budget(tmp_path):
    raw = copy.deepcopy(BASE)
    raw.update(experiment="bench", experiment_options={
        "seeds": [0], "budget_s": 1000.0, "levels": [0.5],
        "optimizers": {"adam": {"optimizer": {"name": "adam", "learning_rate": 1e-2}}},
        "problems": {"convection": {"target": 0.5}}})
    out = sj.experiments.run_config(sj_config.from_dict(raw), str(tmp_path))["tw"]
    run = json.loads(open(os.path.join(tmp_path, "runs.jsonl")).readline())
    assert run["steps"] == 30 and run["status"] == "completed" and run["cpu_s_per_step"] > 0
    assert run["rel_l2"] == pytest.approx(out["rel_l2"])
    assert "3 time windows" in open(os.path.join(tmp_path, "report.md")).read()
