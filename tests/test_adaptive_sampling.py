"""Adaptive collocation (RAD, RAR-D, R3, Resampler in fit): shapes, target density, no recompilation, resume."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.stats

from sciml_jax import config, nn, pinn, problems, sampling, train
from sciml_jax.geometry import Box, Disk, Interval
from sciml_jax.sampling import Resampler, r3, rad, rad_log_density, rar_d


# jitted once per test module: eager calls would compile every primitive separately (seconds on a busy CPU)
_rad = jax.jit(rad, static_argnames=("n",))
_rar_d = jax.jit(rar_d, static_argnames=("n_replace",))
_r3 = jax.jit(r3)
_log_density = jax.jit(rad_log_density)


def _pool(domain, m, seed=0, method="sobol"):
    return jnp.asarray(domain.sample("interior", m, method, seed))


# ----------------------------------------------------------------------------------------------- pure rules


@pytest.mark.parametrize("domain", [Box((0.0, -1.0), (2.0, 1.0)), Disk((0.5, 0.5), 0.3), Interval(-1.0, 3.0)])
def test_every_rule_returns_fixed_shape_points_inside_the_domain(domain):
    d = domain.dim
    pool = _pool(domain, 512, seed=1)
    points = _pool(domain, 64, seed=2)
    e_pool = jnp.sum(pool**2, axis=1)
    e_pts = jnp.sum(points**2, axis=1)
    fresh = _pool(domain, 64, seed=3, method="uniform")
    out = {
        "rad": _rad(jax.random.key(0), pool, e_pool, n=64),
        "rar_d": _rar_d(jax.random.key(1), points, e_pts, pool, e_pool, n_replace=16),
        "r3": _r3(points, e_pts, fresh)[0],
    }
    for name, x in out.items():
        assert x.shape == (64, d) and x.dtype == jnp.float64, name
        assert domain.contains(np.asarray(x), "interior").all(), name


def test_rad_log_density_matches_the_formula():
    e = np.abs(np.random.default_rng(0).standard_normal(50))
    for k, c in ((1.0, 1.0), (2.0, 0.0), (0.5, 3.0), (0.0, 0.0)):
        w = e**k / np.mean(e**k) + c
        np.testing.assert_allclose(np.exp(_log_density(jnp.asarray(e), k, c)), w / w.sum(), rtol=1e-12)
    # huge exponents stay finite in log space (e^k would overflow float64 for e ~ 10, k = 400)
    p = np.exp(_log_density(jnp.asarray([1.0, 10.0, 10.0]), 400.0, 0.0))
    np.testing.assert_allclose(p, [0.0, 0.5, 0.5], atol=1e-300)
    # all-zero residual and c = 0: uniform instead of 0/0
    np.testing.assert_allclose(np.exp(_log_density(jnp.zeros(4), 1.0, 0.0)), 0.25, rtol=1e-12)


@pytest.mark.parametrize(
    "k, c, cdf",
    [
        # |r| = x on [0, 1]: density ∝ x / mean(x) + 1 = 2x + 1 -> q(x) = x + 1/2, F(x) = (x^2 + x) / 2
        (1.0, 1.0, lambda x: 0.5 * (x**2 + x)),
        # k = 2, c = 0: density ∝ x^2 -> F(x) = x^3
        (2.0, 0.0, lambda x: x**3),
    ],
)
def test_rad_follows_its_target_density(k, c, cdf):
    pool = _pool(Interval(0.0, 1.0), 2**16, seed=5)  # Sobol pool: a near-exact quadrature of the target
    x = _rad(jax.random.key(11), pool, pool[:, 0], n=2000, k=k, c=c)
    # KS test at level 1e-3: the 2000 draws without replacement from 65536 candidates (3%) distort the CDF by
    # O(n/M) ~ 0.01 at most, below the critical distance 1.95 / sqrt(2000) = 0.044; uniform points
    # (the null hypothesis of no adaptation) are at distance 1/8 from F and 0.385 from x^3, so both tests can fail.
    res = scipy.stats.kstest(np.asarray(x[:, 0]), cdf)
    assert res.pvalue > 1e-3, res
    assert len(np.unique(np.asarray(x[:, 0]))) == 2000  # without replacement


def test_rar_d_replaces_the_lowest_residual_points():
    points = jnp.linspace(0.0, 1.0, 10)[:, None]
    e = jnp.asarray([5.0, 0.1, 4.0, 0.2, 3.0, 0.3, 2.0, 6.0, 7.0, 8.0])
    pool = jnp.linspace(2.0, 3.0, 100)[:, None]
    e_pool = jnp.where(jnp.arange(100) < 3, 1.0, 0.0)  # k = 2, c = 0: only the first three candidates can be drawn
    out = np.asarray(_rar_d(jax.random.key(0), points, e, pool, e_pool, n_replace=3, k=2.0, c=0.0))
    kept, new = out[:7, 0], out[7:, 0]
    np.testing.assert_array_equal(np.sort(kept), np.sort(np.asarray(points[:, 0])[np.asarray(e) > 0.35]))
    np.testing.assert_array_equal(np.sort(new), np.asarray(pool[:3, 0]))


def test_r3_retains_exactly_the_points_above_the_mean_residual():
    rng = np.random.default_rng(1)
    points, fresh = rng.uniform(size=(40, 2)), rng.uniform(size=(40, 2))
    e = rng.exponential(size=40)
    new, retained = _r3(jnp.asarray(points), jnp.asarray(e), jnp.asarray(fresh))
    keep = e > e.mean()
    np.testing.assert_array_equal(np.asarray(retained), keep)
    np.testing.assert_array_equal(np.asarray(new), np.where(keep[:, None], points, fresh))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda p: rad(jax.random.key(0), p, p[:, 0], 0), "n: expected"),
        (lambda p: rad(jax.random.key(0), p, p[:, 0], 9), "n: expected"),
        (lambda p: rad(jax.random.key(0), p, p[:3, 0], 2), "residual_abs"),
        (lambda p: rad(jax.random.key(0), p, p[:, 0], 2, k=-1.0), "k: expected"),
        (lambda p: rad(jax.random.key(0), p[:, 0], p[:, 0], 2), "candidates"),
        (lambda p: r3(p, p[:, 0], p[:4]), "fresh"),
        (lambda p: rar_d(jax.random.key(0), p[:4], p[:4, 0], p, p[:, 0], 5), "n_replace"),
    ],
)
def test_rules_reject_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call(jnp.ones((8, 2)))


# ----------------------------------------------------------------------------------------------- Resampler in fit


def _setup(n_interior=32, width=8):
    problem = problems.get("poisson_1d", k=2)
    params, apply = nn.functional(nn.MLP(1, 1, width, 1, key=jax.random.key(0)))  # depth 1: fast compiles
    res = pinn.residual(problem, apply)
    batch = sampling.sample(problem.domain, {"interior": n_interior, "boundary": 2}, "sobol", 0)
    return problem, params, res, batch


def test_resampler_never_recompiles_and_logs_events():
    problem, params, res, batch = _setup()
    compiles = []

    def listener(event, duration, **_):
        if event == "/jax/core/compile/backend_compile_duration":
            compiles.append(event)

    seen = []
    rs = Resampler(res, problem.domain, "rad", every=10, candidates=256, key=3)
    spy = lambda **kw: seen.append((kw["step"], len(compiles), np.asarray(kw["batch"]["interior"])))  # noqa: E731
    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        out = train.fit(res, params, batch, optax.adam(1e-3), 80, eval_every=10, progress=False, callbacks=[rs, spy])
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    assert rs.events == 8
    # every compilation (training chunk, |r| at the pool and the selection) happens by the first event; the
    # seven events after it compile nothing
    assert [c for _, c, _ in seen[1:]] == [seen[0][1]] * 7
    assert len({p.tobytes() for _, _, p in seen}) == 8  # the points really moved at each event
    assert out.batch["interior"].shape == (32, 1) and out.batch["boundary"] is batch["boundary"]
    events = [e for e in out.history.events if e["kind"] == "resample"]
    assert [e["step"] for e in events] == list(range(10, 90, 10))
    assert all(e["moved"] == 32 and e["method"] == "rad" and e["points"] == "interior" for e in events)
    assert [s["step"] for s in rs.snapshots] == [0, *range(10, 90, 10)]


def test_r3_event_called_directly_moves_the_released_points():
    problem, params, res, batch = _setup()
    rs = Resampler(res, problem.domain, "r3", every=20, key=1)
    h = train.History()
    assert rs(step=10, params=params, batch=batch, history=h) is None  # not due before step 20
    out = rs(step=20, params=params, batch=batch, history=h)["batch"]
    (event,) = h.events
    assert event["kind"] == "resample" and event["trigger"] == "every" and 0 < event["moved"] < 32
    e = np.abs(np.asarray(res.terms(params, batch)["pde"]))
    moved = np.any(np.asarray(out["interior"]) != np.asarray(batch["interior"]), axis=1)
    np.testing.assert_array_equal(moved, e <= e.mean())  # released = at or below the mean |r|
    assert int(moved.sum()) == event["moved"] and out["boundary"] is batch["boundary"]
    assert problem.domain.contains(np.asarray(out["interior"]), "interior").all()


def test_resume_restores_the_resampled_batch(tmp_path):
    """An interrupted run with resampling resumes bit-identically (the resampled batch is checkpointed)."""
    problem, params, res, batch = _setup()
    opt = optax.adam(1e-2)

    def rs():
        return Resampler(res, problem.domain, "rar_d", every=10, replace=0.5, key=7)

    full = train.fit(res, params, batch, opt, 60, eval_every=10, progress=False, callbacks=[rs()])
    train.fit(res, params, batch, opt, 30, eval_every=10, progress=False, callbacks=[rs()], checkpoint_dir=tmp_path)
    assert train.read_checkpoint_meta(tmp_path)["batch"] is not None  # the resampled batch is in the checkpoint
    resumed = train.fit(
        res, params, batch, opt, 60, eval_every=10, progress=False, callbacks=[rs()], checkpoint_dir=tmp_path,
        resume=True,
    )
    for a, b in zip(jax.tree.leaves(full.params), jax.tree.leaves(resumed.params)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(full.batch["interior"], resumed.batch["interior"])
    assert not np.array_equal(full.batch["interior"], batch["interior"])
    assert [e["step"] for e in resumed.history.events] == [e["step"] for e in full.history.events]
    assert all(e["moved"] == 16 for e in resumed.history.events)  # rar_d, replace 0.5 of 32 points


def test_composes_with_fit_stages():
    problem, params, res, _ = _setup()
    batches = [sampling.sample(problem.domain, {"interior": n, "boundary": 2}, "sobol", 0) for n in (16, 32)]
    rs = Resampler(res, problem.domain, "rad", every=10, key=2)
    out = train.fit_stages(res, params, batches, [20, 20], optax.adam(1e-3), eval_every=10, progress=False,
                           callbacks=[rs])
    events = [(e["step"], e["moved"]) for e in out.history.events if e["kind"] == "resample"]
    assert events == [(10, 16), (20, 16), (30, 32), (40, 32)]  # global steps, stage sizes
    assert [s["step"] for s in rs.snapshots] == [0, 10, 20, 30, 40]
    assert out.batch["interior"].shape == (32, 1)


def test_plateau_trigger():
    problem, _, res, _ = _setup()
    rs = Resampler(res, problem.domain, "rad", on_plateau={"patience": 10, "min_delta": 0.05})
    h = train.History()
    h.add_steps(0, np.r_[np.linspace(2.0, 1.0, 20), np.full(10, 0.99)], {}, np.zeros(30))
    assert rs.due(30, h) == "plateau"  # best of the last 10 steps (0.99) is not 5% below the best before (1.0)
    h2 = train.History()
    h2.add_steps(0, np.linspace(2.0, 0.5, 30), {}, np.zeros(30))
    assert rs.due(30, h2) is None


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"method": "foo", "every": 1}, "method"),
        ({"method": "rad"}, "every, on_plateau"),
        ({"method": "rad", "every": 0}, "every"),
        ({"method": "rad", "every": 5, "term": "nope"}, "term"),
        ({"method": "rad", "every": 5, "replace": 0.0}, "replace"),
        ({"method": "rad", "every": 5, "on_plateau": {"wait": 3}}, "on_plateau.wait"),
        ({"method": "rad", "every": 5, "sampler": "grid"}, "sampler"),
        ({"method": "rad", "every": 5, "c": -1.0}, "c: expected"),
    ],
)
def test_resampler_rejects_bad_arguments(kwargs, match):
    problem, _, res, _ = _setup()
    method = kwargs.pop("method")
    with pytest.raises(ValueError, match=match):
        Resampler(res, problem.domain, method, **kwargs)


def test_config_block_is_validated():
    base = {"name": "x", "problem": {"name": "poisson_1d"}}
    cfg = config.from_dict({**base, "sampling": {"adaptive": {"method": "rar_d", "every": 100, "replace": 0.2}}})
    assert cfg.sampling.adaptive.method == "rar_d" and cfg.sampling.adaptive.every == 100
    assert config.from_dict(base).sampling.adaptive.method == "none"
    for bad, match in (
        ({"method": "rad", "evry": 10}, "sampling.adaptive.evry: unknown key; allowed: method, every"),
        ({"method": "rad"}, "needs a schedule"),
        ({"method": "grid", "every": 3}, "sampling.adaptive.method"),
        ({"method": "rad", "every": 3, "term": "bcx"}, "sampling.adaptive.term"),
        ({"method": "rad", "every": -3}, "sampling.adaptive.every"),
        ({"method": "rad", "every": 3, "on_plateau": {"patience": 0}}, "on_plateau.patience"),
        ({"method": "rad", "every": 3, "until": 0}, "sampling.adaptive.until: expected a positive integer"),
    ):
        with pytest.raises(config.ConfigError, match=match):
            config.from_dict({**base, "sampling": {"adaptive": bad}})


def test_until_from_the_config_stops_events_before_the_run_ends():
    """``sampling.adaptive.until`` (config) and the run's total steps: the earlier one wins, and no event is due
    from that step on."""
    problem, _, res, _ = _setup()
    rs = Resampler.from_options(res, problem.domain, {"method": "rad", "every": 10, "until": 30}, until=100)
    assert rs.until == 30
    late = Resampler.from_options(res, problem.domain, {"method": "rad", "every": 10, "until": 300}, until=100)
    assert late.until == 100
    assert Resampler.from_options(res, problem.domain, {"method": "rad", "every": 10, "until": 30}).until == 30

    class _History:
        events: list = []
        steps: list = []
        loss: list = []

    h = _History()
    assert rs.due(20, h) == "every"
    assert rs.due(30, h) is None and rs.due(40, h) is None
    cfg = config.from_dict({"name": "x", "problem": {"name": "poisson_1d"},
                            "sampling": {"adaptive": {"method": "rad", "every": 10, "until": 30}}})
    assert cfg.sampling.adaptive.until == 30
