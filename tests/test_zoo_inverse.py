"""Inverse Burgers: observations from the Cole-Hopf reference, the viscosity as a log-parameterised unknown, the
PDE term at the observation points (Raissi et al. 2019) or at interior points, noise, seeds, validation."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sciml_jax as sj
from sciml_jax import problems


@pytest.fixture(scope="module")
def prob():
    return problems.get("burgers_inverse_1d")


def test_structure_unknown_and_observations(prob):
    assert set(prob.terms) == {"pde", "data"} and prob.data == ("obs",)
    assert prob.terms["pde"].points == "obs" and prob.terms["data"].points == "obs"
    nu = prob.unknowns["nu"]
    assert nu.transform == "log" and float(nu.init) == pytest.approx(math.exp(-6.0))
    assert float(nu.true) == pytest.approx(0.01 / math.pi)
    assert prob.options["n_obs"] == 2000 and prob.options["nodes"] == 200
    x, y = prob.observations["obs"]
    assert x.shape == (2000, 2) and y.shape == (2000,)
    assert np.all(prob.domain.contains(x))
    # uniform over the domain: means near (0, 1/2) within a few standard errors (std 0.58 / sqrt(2000) = 0.013)
    assert abs(x[:, 0].mean()) < 0.06 and abs(x[:, 1].mean() - 0.5) < 0.03
    # noiseless data are the reference itself (the problem's exact solution at nu_true)
    np.testing.assert_allclose(y, np.asarray(jax.jit(jax.vmap(prob.exact))(jnp.asarray(x))), rtol=0, atol=1e-14)
    batch = prob.batch()
    assert set(batch) == {"obs"} and batch["obs"][0].shape == (2000, 2)


def test_terms_at_the_true_and_a_wrong_viscosity(prob):
    x, y = (jnp.asarray(a) for a in prob.observations["obs"])
    x, y = x[:200], y[:200]
    # residual_at binds the unknown at its true value: the reference satisfies both terms
    r = jax.jit(jax.vmap(lambda a, b: jnp.stack([prob.residual_at("pde", prob.exact, a, b),
                                                 prob.residual_at("data", prob.exact, a, b)])))(x, y)
    # Cole-Hopf reference residual measured <= 1e-12 (module _burgers); the data term is an exact identity
    assert np.max(np.abs(np.asarray(r))) <= 1e-8
    # at the initial guess nu = e^-6 the PDE residual of the true solution is (nu_true - nu) u_xx, large near x=0
    c = prob.coefficient_values({"nu": jnp.asarray(math.exp(-6.0))})
    u = sj.problems.Fields(prob.exact, prob.fields)
    wrong = jax.jit(jax.vmap(lambda a, b: prob.terms["pde"](u, (a, b), c)))(x, y)
    assert np.max(np.abs(np.asarray(wrong))) > 1e-2


def test_residual_metrics_and_jacobian_column_of_the_unknown(prob):
    net, apply = sj.nn.functional(sj.nn.MLP(2, 1, 8, 2, key=jax.random.PRNGKey(0)))
    params = prob.init_params(net)
    assert float(params["unknowns"]["nu"]) == pytest.approx(-6.0)
    batch = prob.batch()
    batch = {"obs": tuple(a[:64] for a in batch["obs"])}
    res = sj.pinn.residual(prob, apply)
    res.check(params, batch)
    J = jax.jit(jax.jacrev(res))(params, batch)
    assert J["unknowns"]["nu"].shape == (128,)  # 64 PDE rows + 64 data rows
    # the PDE rows depend on nu, the data rows do not
    assert float(jnp.linalg.norm(J["unknowns"]["nu"][:64])) > 0 and float(jnp.linalg.norm(J["unknowns"]["nu"][64:])) == 0
    metrics = sj.pinn.metrics(prob, apply)
    assert set(metrics) == {"rel_l2", "nu"} and float(metrics["nu"](params)) == pytest.approx(math.exp(-6.0))


def test_noise_seed_and_interior_collocation():
    clean = problems.burgers_inverse_1d(n_obs=500, seed=3)
    noisy = problems.burgers_inverse_1d(n_obs=500, seed=3, noise=0.01)
    (xc, yc), (xn, yn) = clean.observations["obs"], noisy.observations["obs"]
    np.testing.assert_array_equal(xc, xn)  # same points, only the values change
    rel = np.std(yn - yc) / np.std(yc)
    # std of the added noise = 0.01 std(u); the sample std of 500 draws is within ~3% (1/sqrt(2*500)) of it
    assert 0.009 < rel < 0.011, rel
    other = problems.burgers_inverse_1d(n_obs=500, seed=4)
    assert not np.allclose(other.observations["obs"][0], xc)
    np.testing.assert_array_equal(problems.burgers_inverse_1d(n_obs=500, seed=3).observations["obs"][1], yc)
    inner = problems.burgers_inverse_1d(n_obs=100, collocation="interior")
    assert inner.terms["pde"].points == "interior" and inner.default_points == {"interior": 2000}
    batch = inner.batch({"interior": 32}, key=0)
    assert set(batch) == {"interior", "obs"} and batch["interior"].shape == (32, 2)
    prob = problems.burgers_inverse_1d(n_obs=100, nu_true=0.05, nu_init=0.2)
    assert float(prob.unknowns["nu"].true) == 0.05 and prob.options["nodes"] == 100
    x, y = prob.observations["obs"]
    np.testing.assert_allclose(y, np.asarray(jax.jit(jax.vmap(prob.exact))(jnp.asarray(x))), atol=1e-13)


@pytest.mark.parametrize(
    "opts,match",
    [
        ({"n_obs": 5}, r"burgers_inverse_1d: n_obs must be an integer >= 10, got 5"),
        ({"noise": -0.1}, r"noise must be a finite real number >= 0"),
        ({"seed": -1}, r"seed must be an integer >= 0"),
        ({"nu_true": 0.0}, r"nu_true must be a finite real number > 0"),
        ({"nu_init": -1.0}, r"nu_init must be a finite real number > 0"),
        ({"collocation": "boundary"}, r"collocation must be one of observations, interior, got 'boundary'"),
        ({"nodes": 3}, r"nodes must be an integer >= 20"),
    ],
)
def test_invalid_options(opts, match):
    with pytest.raises(ValueError, match=match):
        problems.get("burgers_inverse_1d", **opts)
