"""Bring your own problem: coefficients as data (no recompilation), unknowns, several fields, data terms,
boundary conditions with normals, and the shape checks that refuse silent broadcasts."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import sciml_jax as sj
from sciml_jax.problems import Problem, Term, Unknown


def _mlp(out=1, width=8, depth=1, seed=0, d=1):
    return sj.nn.functional(sj.nn.MLP(d, out, width, depth, key=jax.random.PRNGKey(seed)))


def _counting(apply, counter):
    def counted(p, x):
        counter.append(1)
        return apply(p, x)

    return counted


# ------------------------------------------------------------------------------------ compile once


def test_changing_a_coefficient_or_a_weight_compiles_nothing_new():
    counter = []
    params, apply = _mlp()
    apply = _counting(apply, counter)
    prob = sj.problems.get("poisson_1d", k=2)
    batch = sj.sampling.sample(prob.domain, {"interior": 16, "boundary": 2}, "sobol", 0)
    opt = optax.adam(1e-3)
    metrics = sj.pinn.metrics(prob, apply)
    first = sj.train.fit(sj.pinn.residual(prob, apply), params, batch, opt, 20, eval_every=10, metrics=metrics,
                         progress=False)
    assert first.compile_time_s > 0
    traces, before = len(counter), sj.train.cache_info()["misses"]
    # another coefficient value, another weight, other initial parameters and other points: nothing is traced
    prob2 = prob.replace(coeffs={"frequencies": [3.0]})
    batch2 = sj.sampling.sample(prob.domain, {"interior": 16, "boundary": 2}, "sobol", 1)
    res2 = sj.pinn.residual(prob2, apply, weights={"bc": 50.0})
    params2 = jax.tree.map(lambda a: a * 1.1, params)
    second = sj.train.fit(res2, params2, batch2, opt, 20, eval_every=10, metrics=sj.pinn.metrics(prob2, apply),
                          progress=False)
    assert sj.train.cache_info()["misses"] == before
    assert second.compile_time_s == 0.0
    # nothing is traced at all: not the step, not the metrics, not the residual's shape check (done once per
    # residual structure and shapes, and these are the first fit's)
    assert len(counter) == traces
    # and the new values are really used: the loss differs from a run of the first problem at the same start
    third = sj.train.fit(sj.pinn.residual(prob, apply), params2, batch2, opt, 20, eval_every=10, progress=False)
    assert second.history.loss[0] != third.history.loss[0]
    expected = float(res2.loss(params2, batch2))
    assert second.history.loss[0] == pytest.approx(expected, rel=1e-12)


def test_factory_problems_of_other_coefficients_share_the_compiled_step():
    params, apply = sj.nn.functional(sj.nn.MLP(2, 1, 8, 1, key=jax.random.PRNGKey(0)))
    opt = optax.adam(1e-3)
    runs = []
    for beta in (1.0, 5.0):
        prob = sj.problems.get("convection_1d", beta=beta)
        batch = sj.sampling.sample(prob.domain, {"interior": 32, "boundary": 8, "initial": 8}, "sobol", 0)
        runs.append(sj.train.fit(sj.pinn.residual(prob, apply), params, batch, opt, 10, eval_every=10,
                                 progress=False))
    assert runs[0].compile_time_s > 0 and runs[1].compile_time_s == 0.0
    assert runs[0].history.terms["pde"][0] != runs[1].history.terms["pde"][0]


# ------------------------------------------------------------------------------------ unknowns


def _inverse_problem(true=2.0, init=0.5):
    """-a u'' = a π² sin(πx) on [0, 1] (so u = sin πx for every a), u = 0 at the ends, and observations of
    a·u: the data term u_obs = a_true sin(πx) only fits if the unknown a is found."""

    def pde(u, x, c):
        return -c["a"] * sj.operators.laplacian(u)(x) - c["a"] * math.pi**2 * jnp.sin(math.pi * x[0])

    def data(u, x, y, c):
        return c["a"] * u(x) - y

    return Problem(
        "inverse_scale",
        sj.geometry.Interval(0.0, 1.0),
        {"pde": Term("interior", pde), "bc": sj.problems.dirichlet(0.0), "data": Term("obs", data)},
        exact=lambda x: jnp.sin(math.pi * x[0]),
        unknowns={"a": Unknown(init, transform="log", true=true)},
        data=("obs",),
    )


@pytest.mark.slow
def test_unknown_trains_with_the_network_and_appears_in_jacobian_and_metrics():
    prob = _inverse_problem()
    net, apply = _mlp(width=10)
    params = prob.init_params(net)
    assert set(params) == {"net", "unknowns"} and float(params["unknowns"]["a"]) == pytest.approx(math.log(0.5))
    x = jnp.linspace(0.05, 0.95, 12)[:, None]
    batch = {**sj.sampling.sample(prob.domain, {"interior": 24, "boundary": 2}, "sobol", 0),
             "obs": (x, 2.0 * jnp.sin(math.pi * x[:, 0]))}
    res = sj.pinn.residual(prob, apply)
    metrics = sj.pinn.metrics(prob, apply)
    assert set(metrics) == {"rel_l2", "a"}
    out = sj.train.fit(res, params, batch, sj.optim.levenberg_marquardt(), 60, eval_every=20, metrics=metrics,
                       progress=False)
    assert out.status == "completed"
    a = out.history.metrics["a"]
    assert a[0] == pytest.approx(0.5) and abs(a[-1] - 2.0) < 1e-3, a
    # J has one labelled column per unknown, after the network's columns
    J = sj.analysis.jacobian(res, out.params, batch)
    groups = sj.analysis.parameter_groups(out.params)
    assert groups["unknowns.a"] == slice(J.shape[1] - 1, J.shape[1])
    assert float(jnp.linalg.norm(J[:, -1])) > 0


def test_unknown_validation():
    with pytest.raises(ValueError, match="transform must be one of identity, log, softplus"):
        Unknown(1.0, transform="exp")
    with pytest.raises(ValueError, match="init must be > 0 with transform 'log'"):
        Unknown(-1.0, transform="log")
    prob = _inverse_problem()
    net, apply = _mlp()
    res = sj.pinn.residual(prob, apply)
    with pytest.raises(ValueError, match="has unknowns"):
        res(net, {})
    u = Unknown(0.3, transform="softplus")
    assert float(u.value(jnp.asarray(u.raw(0.3)))) == pytest.approx(0.3, rel=1e-12)


# ------------------------------------------------------------------------------------ several fields


def _two_fields():
    """u = sin(πx), v = cos(πx) on [0, 1]: u' = π v and v' = -π u, u(0) = 0, v(0) = 1."""

    def pde(u, x):
        du = sj.operators.partial(u["u"], 0)(x)
        dv = sj.operators.partial(u["v"], 0)(x)
        return jnp.stack([du - math.pi * u.v(x), dv + math.pi * u.u(x)])

    def bc(u, x):
        return jnp.where(x[0] < 0.5, 1.0, 0.0) * (u(x) - jnp.array([0.0, 1.0]))

    return Problem(
        "two_fields",
        sj.geometry.Interval(0.0, 1.0),
        {"pde": Term("interior", pde), "bc": Term("boundary", bc)},
        exact=lambda x: jnp.stack([jnp.sin(math.pi * x[0]), jnp.cos(math.pi * x[0])]),
        fields=("u", "v"),
    )


@pytest.mark.slow
def test_two_field_model_metrics_per_field_and_output_check():
    prob = _two_fields()
    assert prob.out_size == 2
    params, apply = _mlp(out=2, width=12)
    batch = sj.sampling.sample(prob.domain, {"interior": 32, "boundary": 2}, "sobol", 0)
    res = sj.pinn.residual(prob, apply)
    assert res(params, batch).shape == (32 * 2 + 2 * 2,)
    metrics = sj.pinn.metrics(prob, apply)
    assert set(metrics) == {"rel_l2", "rel_l2_u", "rel_l2_v"}
    out = sj.train.fit(res, params, batch, sj.optim.levenberg_marquardt(), 40, eval_every=20, metrics=metrics,
                       progress=False)
    m = {k: out.history.metrics[k][-1] for k in metrics}
    assert m["rel_l2_u"] < 1e-3 and m["rel_l2_v"] < 1e-3
    # pooled = Frobenius over both fields: between the two per-field errors' weighted norms
    assert min(m["rel_l2_u"], m["rel_l2_v"]) * 0.5 < m["rel_l2"] < 2 * max(m["rel_l2_u"], m["rel_l2_v"])
    # a one-output model on the two-field problem is refused before compiling, with both shapes
    p1, a1 = _mlp(out=1)
    with pytest.raises(ValueError, match=r"output of shape \(\) per point .* 2 field\(s\) \['u', 'v'\]: expected "
                                         r"shape \(2,\)"):
        sj.train.fit(sj.pinn.residual(prob, a1), p1, batch, optax.adam(1e-3), 5, progress=False)


def test_two_output_model_on_a_scalar_problem_is_refused():
    prob = sj.problems.get("poisson_1d")
    params, apply = _mlp(out=2)
    batch = sj.sampling.sample(prob.domain, prob.default_points, "sobol", 0)
    with pytest.raises(ValueError, match=r"output of shape \(2,\) per point .* 1 field\(s\)"):
        sj.train.fit(sj.pinn.residual(prob, apply), params, batch, optax.adam(1e-3), 5, progress=False)


def test_pressure_compared_up_to_a_constant():
    prob = Problem(
        "gauge",
        sj.geometry.Interval(0.0, 1.0),
        {"pde": Term("interior", lambda u, x: u(x))},
        exact=lambda x: jnp.stack([x[0], 1.0 + x[0] ** 2]),
        fields=("u", "p"),
        up_to_constant=("p",),
    )
    err = sj.pinn.rel_l2(prob, lambda params, x: jnp.stack([x[0], x[0] ** 2 + params]), field="p")
    assert float(err(jnp.asarray(5.0))) < 1e-12  # any constant shift of p is free
    err_u = sj.pinn.rel_l2(prob, lambda params, x: jnp.stack([x[0] + params, x[0] ** 2]), field="u")
    assert float(err_u(jnp.asarray(0.1))) > 0.1  # but not of u


def test_zero_reference_falls_back_to_absolute_error_and_says_so():
    prob = Problem("zero", sj.geometry.Interval(0.0, 1.0), {"pde": Term("interior", lambda u, x: u(x))},
                   exact=lambda x: 0.0 * x[0], eval_size=11)
    with pytest.warns(UserWarning, match="reference of the solution is zero"):
        err = sj.pinn.rel_l2(prob, lambda p, x: p * jnp.ones(()))
    assert float(err(jnp.asarray(0.5))) == pytest.approx(0.5, rel=1e-12)  # RMS of a constant 0.5


# ------------------------------------------------------------------------------------ data terms


def _data_problem():
    return Problem("fit_data", sj.geometry.Interval(0.0, 1.0),
                   {"data": Term("obs", lambda u, x, y: u(x) - y)}, data=("obs",))


def test_data_entries_and_shape_checks():
    prob = _data_problem()
    params, apply = _mlp()
    res = sj.pinn.residual(prob, apply)
    x = jnp.linspace(0, 1, 10)[:, None]
    good = res(params, {"obs": (x, jnp.sin(x[:, 0]))})
    column = res(params, {"obs": (x, jnp.sin(x))})  # (N, 1) targets: one value per point, not an (N, N) broadcast
    np.testing.assert_array_equal(good, column)
    assert good.shape == (10,)
    with pytest.raises(ValueError, match=r"same leading number of rows; got shapes \[\(10, 1\), \(9,\)\]"):
        res.check(params, {"obs": (x, jnp.sin(x[:9, 0]))})
    with pytest.raises(ValueError, match="not a point set of the domain nor a declared data entry"):
        Problem("bad", sj.geometry.Interval(0.0, 1.0), {"data": Term("obs", lambda u, x, y: u(x) - y)})


def test_neumann_term_reads_normals_from_the_batch():
    def pde(u, x):
        return -sj.operators.laplacian(u)(x) - math.pi**2 / 4 * jnp.sin(math.pi * x[0] / 2)

    # u = sin(πx/2): u(0) = 0, u'(1) = 0 (outward normal +1 at x = 1)
    prob = Problem(
        "mixed",
        sj.geometry.Interval(0.0, 1.0),
        {"pde": Term("interior", pde), "left": sj.problems.dirichlet(0.0, points="boundary:left"),
         "right": sj.problems.neumann(0.0, points="boundary:right")},
        exact=lambda x: jnp.sin(math.pi * x[0] / 2),
    )
    assert prob.terms["right"].normals
    exact = prob.exact
    one = jnp.ones((1,))
    assert abs(float(prob.residual_at("right", exact, one, one))) < 1e-14
    assert abs(float(prob.residual_at("right", lambda y: y[0] ** 2, one, one)) - 2.0) < 1e-14  # d(x²)/dx at 1
    assert abs(float(prob.residual_at("right", lambda y: y[0] ** 2, one, -one)) + 2.0) < 1e-14
    params, apply = _mlp()
    res = sj.pinn.residual(prob, apply)
    batch = {"interior": jnp.linspace(0.05, 0.95, 8)[:, None], "boundary:left": jnp.zeros((1, 1)),
             "boundary:right": jnp.ones((1, 1))}
    with pytest.raises(ValueError, match="needs outward normals"):
        res.check(params, batch)


def test_periodic_and_initial_helpers():
    per = sj.problems.periodic(axis=0, lo=0.0, hi=2.0, derivatives=1)
    u = sj.problems.Fields(lambda y: jnp.sin(math.pi * y[0]) + y[1], ("u",))
    r = per(u, (jnp.array([0.3, 0.7]),), {})
    np.testing.assert_allclose(r, [0.0, 0.0], atol=1e-14)
    u2 = sj.problems.Fields(lambda y: y[0] ** 2, ("u",))
    np.testing.assert_allclose(per(u2, (jnp.array([0.3, 0.7]),), {}), [-4.0, -4.0])
    ic_t = sj.problems.initial(0.0, order=1)
    u3 = sj.problems.Fields(lambda y: y[0] * 3 * y[1], ("u",))
    assert float(ic_t(u3, (jnp.array([0.5, 0.0]),), {})) == pytest.approx(1.5)
    with pytest.raises(ValueError, match="need lo < hi"):
        sj.problems.periodic(0, 1.0, 0.0)


# ------------------------------------------------------------------------------------ observation files


def test_load_observations_from_csv_npz_and_mat(tmp_path):
    import scipy.io

    x = np.linspace(-1, 1, 5)
    t = np.linspace(0, 1, 3)
    u = np.sin(np.pi * x)[:, None] * np.exp(-t)[None, :]  # (len x, len t): axes in the order (x, t)
    scipy.io.savemat(tmp_path / "grid.mat", {"x": x[:, None], "t": t[:, None], "usol": u})
    obs = sj.problems.load_observations(tmp_path / "grid.mat", ["x", "t"], ["usol"])
    assert obs.x.shape == (15, 2) and obs.y.shape == (15,)
    i = 7  # x index 2, t index 1 in C order over (x, t)
    assert tuple(obs.x[i]) == (x[2], t[1]) and obs.y[i] == u[2, 1]
    # the transposed grid is refused with both shapes
    scipy.io.savemat(tmp_path / "bad.mat", {"x": x[:, None], "t": t[:, None], "usol": u.T})
    with pytest.raises(ValueError, match=r"'usol' has shape \(3, 5\) but the grid of x \(5,\), t \(3,\) needs \(5, 3\) "
                                         r"\(transposed"):
        sj.problems.load_observations(tmp_path / "bad.mat", ["x", "t"], ["usol"])
    np.savez(tmp_path / "cols.npz", x=x, u=np.sin(x))
    obs = sj.problems.load_observations(tmp_path / "cols.npz", ["x"], ["u"], subsample=3, noise=0.01, seed=1)
    assert obs.x.shape == (3, 1) and obs.noise == 0.01 and not np.allclose(obs.y, np.sin(obs.x[:, 0]))
    np.savez(tmp_path / "mixed.npz", x=x, u=np.sin(x)[:, None])
    with pytest.raises(ValueError, match=r"x \(5,\), u \(5, 1\)"):
        sj.problems.load_observations(tmp_path / "mixed.npz", ["x"], ["u"])
    (tmp_path / "obs.csv").write_text("x,t,u\n0,0,1\n0.5,0,nan\n1,0,2\n1,1,inf\n")
    with pytest.raises(ValueError, match=r"obs.csv'.*2 of 4 rows have non-finite values \(column u: 2\)"):
        sj.problems.load_observations(tmp_path / "obs.csv", ["x", "t"], ["u"])
    obs = sj.problems.load_observations(tmp_path / "obs.csv", ["x", "t"], ["u"], drop_nonfinite=True)
    assert obs.dropped == 2 and obs.y.tolist() == [1.0, 2.0] and "2 non-finite rows dropped" in obs.summary()
    with pytest.raises(ValueError, match="no column 'v'; columns: t, u, x"):
        sj.problems.load_observations(tmp_path / "obs.csv", ["x", "t"], ["v"])
    (tmp_path / "typo.csv").write_text("x,u\n0,1\n0.5,abc\n")
    with pytest.raises(ValueError, match=r"typo.csv': line 3, column 'u': 'abc' is not a number"):
        sj.problems.load_observations(tmp_path / "typo.csv", ["x"], ["u"])
    with pytest.raises(ValueError, match="unknown format '.txt'"):
        sj.problems.load_observations(tmp_path / "obs.txt", ["x"], ["u"])


def test_problem_batch_adds_observations_and_normals():
    x = np.linspace(0.1, 0.9, 4)[:, None]
    prob = Problem(
        "with_data",
        sj.geometry.Box((0.0, 0.0), (1.0, 1.0)),
        {"pde": Term("interior", lambda u, x: u(x)), "flux": sj.problems.neumann(0.0, points="boundary:left"),
         "data": Term("obs", lambda u, x, y: u(x) - y)},
        observations={"obs": (np.hstack([x, x]), np.ones(4))},
        default_points={"interior": 8, "boundary:left": 4},
    )
    assert prob.data == ("obs",)
    batch = prob.batch()
    assert batch["interior"].shape == (8, 2)
    xb, nb = batch["boundary:left"]
    np.testing.assert_array_equal(np.asarray(xb[:, 0]), 0.0)
    np.testing.assert_array_equal(np.asarray(nb), np.tile([-1.0, 0.0], (4, 1)))
    assert batch["obs"][0].shape == (4, 2) and batch["obs"][1].dtype == jnp.float64
    params, apply = _mlp(d=2)
    sj.pinn.residual(prob, apply).check(params, batch)
    with pytest.raises(ValueError, match=r"observations\['obs'\]: 1 row\(s\) are not finite"):
        Problem("nan", sj.geometry.Interval(0.0, 1.0), {"data": Term("obs", lambda u, x, y: u(x) - y)},
                observations={"obs": (x, np.array([1.0, np.nan, 2.0, 3.0]))})


# ------------------------------------------------------------------------------------ exact constraints


@pytest.mark.slow
def test_periodic_embedding_is_exactly_periodic_and_output_transform_holds_the_boundary():
    emb = sj.nn.PeriodicEmbedding(2, {0: 2.0}, harmonics=2)
    assert emb.out_size == 1 + 4
    net = sj.nn.MLP(emb.out_size, 1, 8, 2, key=jax.random.PRNGKey(0))
    params, apply = sj.nn.functional(sj.nn.Embedded(emb, net))
    x = jnp.array([0.3, 0.7])
    shifted = x.at[0].add(2.0)
    assert float(apply(params, x)) == pytest.approx(float(apply(params, shifted)), abs=1e-13)
    gx = jax.grad(lambda y: apply(params, y))
    np.testing.assert_allclose(gx(x), gx(shifted), atol=1e-12)
    hard = sj.nn.OutputTransform(sj.nn.MLP(1, 1, 8, 1, key=jax.random.PRNGKey(1)), _vanish_at_ends)
    p2, a2 = sj.nn.functional(hard)
    assert float(a2(p2, jnp.zeros(1))) == 0.0 and float(a2(p2, jnp.ones(1))) == 0.0
    with pytest.raises(ValueError, match="the period of axis 0 must be a finite number > 0"):
        sj.nn.PeriodicEmbedding(2, {0: -1.0})


def _vanish_at_ends(x, y):
    return x[0] * (1.0 - x[0]) * y


@pytest.mark.slow
def test_hard_constraint_drops_the_terms_it_satisfies_and_term_order_survives_jit():
    prob = sj.problems.get("poisson_1d", k=2)
    net = sj.nn.MLP(1, 1, 8, 1, key=jax.random.PRNGKey(0))
    reduced, model = prob.with_hard_constraint(net)
    assert list(reduced.terms) == ["pde"] and reduced.constrained_terms == ()
    params, apply = sj.nn.functional(model)
    assert float(apply(params, jnp.zeros(1))) == 0.0
    res = sj.pinn.residual(reduced, apply)
    batch = reduced.batch({"interior": 8})
    assert res(params, batch).shape == (8,)
    with pytest.raises(ValueError, match="defines no hard constraint"):
        sj.problems.get("poisson_1d", k=2.5).with_hard_constraint(net)
    # the rows of J keep the problem's term order (pde, then bc) through jit, where dicts would be sorted
    full = sj.pinn.residual(prob, sj.nn.functional(net)[1])
    b2 = prob.batch({"interior": 8, "boundary": 2})
    p2 = sj.nn.functional(net)[0]
    J = sj.analysis.jacobian(full, p2, b2)
    flat, unravel = jax.flatten_util.ravel_pytree(p2)
    J_ref = jax.jacrev(lambda th: full(unravel(th), b2))(flat)
    np.testing.assert_allclose(J, J_ref, rtol=0, atol=1e-12 * float(jnp.max(jnp.abs(J_ref))))


@pytest.mark.slow
def test_causal_weights_follow_the_residual_in_time():
    prob = sj.problems.get("heat_1d")
    params, apply = _mlp(d=2)
    causal = sj.pinn.Causal(chunks=4, epsilon=10.0)
    res = sj.pinn.residual(prob, apply, causal=causal)
    plain = sj.pinn.residual(prob, apply)
    batch = prob.batch({"interior": 64, "boundary": 16, "initial": 16})
    w = res.causal_weights(params, batch)
    assert w.shape == (4,) and float(w[0]) == 1.0 and bool(jnp.all(jnp.diff(w) <= 0))  # non-increasing in time
    r, r0 = res(params, batch), plain(params, batch)
    rows = res.slices(params, batch)["pde"]
    assert float(jnp.max(jnp.abs(r[rows]))) <= float(jnp.max(jnp.abs(r0[rows]))) + 1e-15
    np.testing.assert_array_equal(r[rows.stop:], r0[rows.stop:])  # other terms untouched
    with pytest.raises(ValueError, match="not time-dependent"):
        sj.pinn.residual(sj.problems.get("poisson_1d"), apply, causal=causal)
    with pytest.raises(ValueError, match="epsilon must be a finite number > 0"):
        sj.pinn.Causal(epsilon=0.0)
    # the weights are constants for differentiation: the gradient equals that of the loss with frozen row weights
    scale = jnp.where(jnp.arange(r.shape[0]) < rows.stop, r / jnp.where(r0 == 0, 1.0, r0), 1.0)

    def frozen(p):
        return 0.5 * jnp.sum((scale * plain(p, batch)) ** 2)

    g_causal = jax.grad(lambda p: res.loss(p, batch))(params)
    g_frozen = jax.grad(frozen)(params)
    for a, b in zip(jax.tree.leaves(g_causal), jax.tree.leaves(g_frozen)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14)
