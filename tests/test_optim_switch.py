"""Switch diagnostics: every hybrid criterion logs the quantities it decides on, per step, and they can be plotted."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import sciml_jax as sj


def _drive(crit, values, grads):
    """Feed (value_k, grad_k) to a hybrid of two SGDs switching on ``crit``; return the logged info per step."""
    hyb = sj.optim.hybrid(optax.sgd(1.0), optax.sgd(10.0), crit, guard_factor=None)
    params = jnp.zeros(2)
    step = jax.jit(lambda s, v, g: hyb.update(g, s, params, value=v, grad=g, value_fn=lambda p: jnp.sum(p**2)))
    s = hyb.init(params)
    rows = []
    for v, g in zip(values, grads):
        _, s = step(s, jnp.asarray(v, jnp.float64), jnp.asarray(g, jnp.float64))
        rows.append({k: float(x) for k, x in sj.optim.logged_info(s).items()})
    return rows, s


def test_plateau_logs_its_relative_change():
    window = 4
    values = [2.0 ** -min(k, 10) for k in range(20)]
    rows, s = _drive(sj.optim.on_plateau(window=window, rtol=1e-3), values, [[1.0, 0.0]] * 20)
    rel = [r["switch.plateau.rel_change"] for r in rows]
    assert all(np.isnan(rel[:window]))  # the window is not full yet
    # step k >= window: (best_{k-window} - best_k) / best_{k-window}, best halving until step 10
    for k in range(window, int(s.switch_step) + 1):
        old, new = values[k - window], min(values[: k + 1])
        assert rel[k] == pytest.approx((old - new) / old, rel=1e-12)
    assert rel[int(s.switch_step)] < 1e-3 and rel[int(s.switch_step) - 1] >= 1e-3  # it fired on what it logged


def test_grad_norm_logs_norm_and_ratio():
    norms = [1.0, 0.5, 1e-4, 2e-4]
    rows, s = _drive(sj.optim.grad_norm_below(1e-3, patience=2), [1.0] * 4, [[n, 0.0] for n in norms])
    assert [r["switch.grad_norm.grad_norm"] for r in rows[:3]] == pytest.approx(norms[:3])
    assert [r["switch.grad_norm.ratio"] for r in rows[:3]] == pytest.approx([n / 1e-3 for n in norms[:3]])
    assert int(s.switch_step) == 3  # two consecutive ratios < 1
    # the relative form logs the ratio to tol · |g_0|
    rows, _ = _drive(sj.optim.grad_norm_below(0.1, relative=True), [1.0] * 2, [[2.0, 0.0], [0.5, 0.0]])
    assert rows[1]["switch.grad_norm.ratio"] == pytest.approx(0.5 / (0.1 * 2.0))


def test_after_steps_and_combination_log_all_parts():
    rows, s = _drive(sj.optim.after_steps(3) | sj.optim.grad_norm_below(1e-9), [1.0] * 5, [[1.0, 0.0]] * 5)
    assert [r["switch.after_steps.steps"] for r in rows[:4]] == [0, 1, 2, 3]
    assert "switch.grad_norm.ratio" in rows[0] and int(s.switch_step) == 3
    # after the switch the criterion is no longer evaluated: its logged values stay put
    assert rows[4]["switch.after_steps.steps"] == rows[3]["switch.after_steps.steps"]


def test_curvature_logs_efficiency_and_agreement():
    a = jnp.asarray(np.linalg.qr(np.random.default_rng(0).normal(size=(10, 4)))[0] @ np.diag([3.0, 2.0, 1.5, 1.0]))
    b = jnp.asarray(np.random.default_rng(1).normal(size=10))
    res = lambda p: a @ p - b  # noqa: E731
    lossf = lambda p: 0.5 * jnp.sum(res(p) ** 2)  # noqa: E731
    crit = sj.optim.curvature_model(ratio=0.1, agreement=0.5, window=5, every=5)
    hyb = sj.optim.hybrid(optax.adam(1e-5), optax.sgd(0.0), crit, guard_factor=None)
    step = jax.jit(lambda p, s: hyb.update(jax.grad(lossf)(p), s, p, value=lossf(p), grad=jax.grad(lossf)(p),
                                           value_fn=lossf, residual_fn=res))
    p, s = jnp.zeros(4), hyb.init(jnp.zeros(4))
    rows = []
    for _ in range(12):
        u, s = step(p, s)
        p = p + u
        rows.append({k: float(x) for k, x in sj.optim.logged_info(s).items()})
    assert np.isinf(rows[0]["switch.curvature.efficiency"]) and rows[0]["switch.curvature.agreement"] == 0.0
    fired = int(s.switch_step)
    assert fired == 5  # first step with a full window (6 values recorded) that is a multiple of `every`
    # linear least squares: the quadratic model is exact, agreement = 1 (to rounding) at the measuring step
    assert rows[fired]["switch.curvature.agreement"] == pytest.approx(1.0, abs=1e-10)
    assert rows[fired]["switch.curvature.efficiency"] < 0.1


@pytest.mark.slow
def test_fit_records_switch_diagnostics_and_plot(tmp_path):
    t = jnp.linspace(0.0, 2.0, 20)[:, None]
    y = 1.5 * jnp.exp(-0.7 * t[:, 0])

    def residual(params, batch):
        tt, yy = batch["data"]
        return params["a"] * jnp.exp(-params["b"] * tt[:, 0]) - yy

    params = {"a": jnp.asarray(1.0), "b": jnp.asarray(1.0)}
    opt = sj.optim.get("hybrid", first={"name": "adam", "learning_rate": 1e-2}, second={"name": "lbfgs"},
                       switch={"plateau": {"window": 10, "rtol": 0.05}, "grad_norm": {"tol": 1e-4}})
    out = sj.train.fit(residual, params, {"data": (t, y)}, opt, 60, eval_every=20, progress=False)
    info = out.history.info
    for key in ("switch.plateau.rel_change", "switch.grad_norm.grad_norm", "switch.grad_norm.ratio"):
        assert key in info and len(info[key]) == 60
    assert out.history.events and out.history.events[0]["kind"] == "switch"
    from sciml_jax.plotting import plot_switch_diagnostics

    path = plot_switch_diagnostics(out.history, str(tmp_path / "switch.png"), title="test")
    assert (tmp_path / "switch.png").stat().st_size > 5000 and path.endswith("switch.png")
