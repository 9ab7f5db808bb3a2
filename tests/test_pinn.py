"""The weighted residual vector, loss, per-term metrics and the relative L2 error."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sciml_jax as sj


@pytest.fixture(scope="module")
def setup():
    prob = sj.problems.get("poisson_1d", k=2)
    model = sj.nn.MLP(1, 1, 16, 2, key=jax.random.PRNGKey(0))
    params, apply = sj.nn.functional(model)
    batch = sj.sampling.sample(prob.domain, {"interior": 40, "boundary": 2}, "sobol", 0)
    return prob, params, apply, batch


def test_residual_weighting_matches_definition(setup):
    prob, params, apply, batch = setup
    weights = {name: w for name, w in zip(prob.terms, (3.0, 50.0))}
    res = sj.pinn.residual(prob, apply, weights)
    r = res(params, batch)
    raw = res.terms(params, batch)
    n = sum(v.size for v in raw.values())
    assert r.shape == (n,)
    assert r.dtype == jnp.float64
    # L = ½ Σ_k γ_k mean(r_k²), computed independently of the concatenation (float64 round-off only)
    expected = 0.5 * sum(weights[k] * float(jnp.mean(v**2)) for k, v in raw.items())
    assert float(res.loss(params, batch)) == pytest.approx(expected, rel=1e-12)
    # slices pick each term's rows, scaled by sqrt(γ_k / N_k)
    for name, sl in res.slices(params, batch).items():
        scale = np.sqrt(weights[name] / raw[name].size)
        np.testing.assert_allclose(r[sl], scale * raw[name], rtol=1e-14, atol=0)


def test_weights_override_at_call_time(setup):
    prob, params, apply, batch = setup
    res = sj.pinn.residual(prob, apply)
    name = next(iter(prob.terms))
    zero = res(params, batch, {name: 0.0})
    assert float(jnp.max(jnp.abs(zero[res.slices(params, batch)[name]]))) == 0.0
    assert float(jnp.max(jnp.abs(res(params, batch)[res.slices(params, batch)[name]]))) > 0.0


@pytest.mark.parametrize("weights, match", [({"nope": 1.0}, "unknown term"), (None, "finite and >= 0")])
def test_weights_validation(setup, weights, match):
    prob, _, apply, _ = setup
    if weights is None:
        weights = {next(iter(prob.terms)): -1.0}
    with pytest.raises(ValueError, match=match):
        sj.pinn.residual(prob, apply, weights)


def test_missing_batch_entry_is_a_clear_error(setup):
    prob, params, apply, batch = setup
    res = sj.pinn.residual(prob, apply)
    with pytest.raises(ValueError, match="batch has no entry 'boundary'"):
        res(params, {"interior": batch["interior"]})


def test_exact_solution_has_zero_residual_and_rel_l2(setup):
    prob, params, _, batch = setup

    def exact_apply(p, x):  # a "model" that is the exact solution, ignoring its parameters
        return prob.exact(x)

    res = sj.pinn.residual(prob, exact_apply)
    assert float(res.loss(params, batch)) < 1e-20  # float64 round-off of O(100) forcing terms
    err = sj.pinn.rel_l2(prob, exact_apply)
    assert float(err(params)) == 0.0
    twice = sj.pinn.rel_l2(prob, lambda p, x: 2.0 * prob.exact(x))
    assert float(twice(params)) == pytest.approx(1.0, rel=1e-12)


@pytest.mark.slow
def test_residual_is_differentiable_and_jittable(setup):
    prob, params, apply, batch = setup
    res = sj.pinn.residual(prob, apply)
    g = jax.jit(jax.grad(res.loss))(params, batch)
    flat, _ = jax.flatten_util.ravel_pytree(g)
    # check one directional derivative against central finite differences (float64: h=1e-6 gives ~1e-8 agreement)
    p_flat, unravel = jax.flatten_util.ravel_pytree(params)
    v = jax.random.normal(jax.random.PRNGKey(1), p_flat.shape)
    h = 1e-6
    fd = (res.loss(unravel(p_flat + h * v), batch) - res.loss(unravel(p_flat - h * v), batch)) / (2 * h)
    assert float(flat @ v) == pytest.approx(float(fd), rel=1e-6)
