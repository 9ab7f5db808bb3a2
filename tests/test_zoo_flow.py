"""Kovasznay flow: the closed-form solution satisfies every term, the terms state steady Navier-Stokes (checked
against an independent autodiff statement), pressure up to a constant, options and validation."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sciml_jax as sj
from sciml_jax import problems


def _perturbation(x):
    # a smooth perturbation of size 1e-2 in every field, not a polynomial of degree <= 1
    return 0.01 * jnp.exp(0.5 * x[0] + 0.3 * x[1]) * jnp.array([1.0, -1.0, 1.0])


@jax.jit
def _terms_exact_and_wrong(prob, batch):
    """Every term of ``prob`` at its exact solution and at a perturbed one. ``prob`` is a pytree argument, so
    problems of the same structure (other Reynolds numbers) reuse the compiled function."""
    exact = prob.exact

    def wrong(x):
        return exact(x) + _perturbation(x)

    out = {}
    for name, term in prob.terms.items():
        args = batch[term.points] if isinstance(batch[term.points], tuple) else (batch[term.points],)
        out[name] = jax.vmap(lambda *a, n=name: (prob.residual_at(n, exact, *a), prob.residual_at(n, wrong, *a)))(
            *args)
    return out


@pytest.mark.parametrize("re", [20.0, 40.0])
def test_exact_satisfies_every_term_and_a_wrong_one_does_not(re):
    prob = problems.get("kovasznay_2d", re=re)
    batch = prob.batch({"interior": 256, "boundary": 128}, key=1)
    out = _terms_exact_and_wrong(prob, batch)
    assert set(out) == {"momentum_x", "momentum_y", "continuity", "bc_u", "bc_v"}
    for name, (good, bad) in out.items():
        good, bad = np.asarray(good), np.asarray(bad)
        # closed-form u, v, p differentiated by autodiff: float64 rounding of O(10) quantities (|lam| e^{|lam|/2}
        # ~ 4, derivatives ~ (2 pi)^2), measured <= 6e-15; 1e-10 still catches any wrong coefficient (O(1) change)
        assert np.max(np.abs(good)) <= 1e-10, (name, np.max(np.abs(good)))
        # the 1e-2 perturbation moves every term by >= ~3e-3 somewhere (derivatives of exp(0.5x + 0.3y) are O(1))
        assert np.max(np.abs(bad)) > 1e-3, (name, np.max(np.abs(bad)))


def test_outflow_pressure_condition():
    prob = problems.get("kovasznay_2d", pressure_outflow=True)
    assert "bc_p" in prob.terms and prob.terms["bc_p"].points == "boundary:right"
    batch = prob.batch(key=2)
    x = batch["boundary:right"]
    assert x.shape == (100, 2) and np.all(np.asarray(x[:, 0]) == 1.0)
    r = jax.jit(jax.vmap(lambda y: jnp.stack([prob.residual_at("bc_p", prob.exact, y),
                                              prob.residual_at("bc_p", lambda z: prob.exact(z) + 0.1, y)])))(x)
    np.testing.assert_allclose(np.asarray(r), np.tile([0.0, 0.1], (100, 1)), atol=1e-15)


def test_terms_state_steady_navier_stokes():
    # An arbitrary smooth (u, v, p), not a solution: the terms must equal the Navier-Stokes residuals written out
    # independently with jax.jacfwd / jax.hessian.
    re = 20.0
    prob = problems.kovasznay_2d(re=re)

    def w(x):
        return jnp.stack([jnp.sin(x[0] + 2 * x[1]), jnp.cos(x[0] * x[1]), x[0] ** 2 * x[1] + jnp.exp(x[1])])

    x = jnp.asarray(prob.domain.sample("interior", 16, "uniform", seed=2))

    def independent(y):
        J = jax.jacfwd(w)(y)
        H = jax.hessian(w)(y)  # (3, 2, 2)
        u, v, _ = w(y)
        mx = u * J[0, 0] + v * J[0, 1] + J[2, 0] - (H[0, 0, 0] + H[0, 1, 1]) / re
        my = u * J[1, 0] + v * J[1, 1] + J[2, 1] - (H[1, 0, 0] + H[1, 1, 1]) / re
        return jnp.stack([mx, my, J[0, 0] + J[1, 1]])

    def ours(y):
        return jnp.stack([prob.residual_at(n, w, y) for n in ("momentum_x", "momentum_y", "continuity")])

    expected = np.asarray(jax.jit(jax.vmap(independent))(x))
    got = np.asarray(jax.jit(jax.vmap(ours))(x))
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    assert np.min(np.abs(expected)) > 1e-6  # a real test: none of the residuals vanishes


def test_lambda_and_values_at_re_20():
    lam = 10.0 - math.sqrt(100.0 + 4.0 * math.pi**2)  # Kovasznay (1948), Re = 20
    assert -1.82 < lam < -1.80  # the value quoted in the PINN literature, lambda ~ -1.81
    prob = problems.kovasznay_2d()
    x = jnp.array([0.25, 0.125])
    u, v, p = np.asarray(prob.exact(x))
    assert u == pytest.approx(1 - math.exp(lam * 0.25) * math.cos(math.pi / 4), rel=1e-14)
    assert v == pytest.approx(lam / (2 * math.pi) * math.exp(lam * 0.25) * math.sin(math.pi / 4), rel=1e-14)
    assert p == pytest.approx(0.5 * (1 - math.exp(2 * lam * 0.25)), rel=1e-14)


def test_reynolds_number_is_a_coefficient():
    prob = problems.kovasznay_2d()
    other = prob.replace(coeffs={"re": 40.0})
    assert jax.tree_util.tree_structure(other) == jax.tree_util.tree_structure(prob)
    x = jnp.asarray(prob.domain.sample("interior", 32, "uniform", seed=4))
    both = jax.jit(jax.vmap(lambda y: jnp.stack([other.residual_at("momentum_x", other.exact, y),
                                                 other.residual_at("momentum_x", prob.exact, y)])))
    r, r_old = np.asarray(both(x)).T
    assert np.max(np.abs(r)) <= 1e-10  # the exact solution follows the coefficient
    assert np.max(np.abs(r_old)) > 1e-3  # and the Re = 20 solution no longer solves the Re = 40 equations


def test_pressure_up_to_a_constant_and_fields():
    prob = problems.kovasznay_2d()
    assert prob.fields == ("u", "v", "p") and prob.up_to_constant == ("p",) and prob.out_size == 3
    assert problems.kovasznay_2d(pressure_outflow=True).up_to_constant == ()
    exact = prob.exact
    shifted = sj.pinn.rel_l2(prob, lambda params, x: exact(x) + jnp.array([0.0, 0.0, params]), field="p")
    assert float(shifted(jnp.asarray(3.0))) < 1e-12
    u_shift = sj.pinn.rel_l2(prob, lambda params, x: exact(x) + jnp.array([params, 0.0, 0.0]), field="u")
    assert float(u_shift(jnp.asarray(0.1))) > 1e-2


def test_registry_domain_and_eval_points():
    prob = problems.get("kovasznay_2d")
    lo, hi = prob.domain.bounds()
    np.testing.assert_array_equal(lo, [-0.5, -0.5])
    np.testing.assert_array_equal(hi, [1.0, 1.5])
    x = prob.eval_points()
    assert x.shape == (10_000, 2) and np.all(prob.domain.contains(x))
    assert prob.options == {"re": 20.0, "pressure_outflow": False}
    text = problems.describe("kovasznay_2d")
    assert "Math:" in text and "Terms:" in text and "Kovasznay" in text


@pytest.mark.parametrize(
    "opts,match",
    [
        ({"re": 0}, r"kovasznay_2d: re must be a finite real number > 0, got 0"),
        ({"re": -20.0}, r"re must be .* > 0"),
        ({"re": "20"}, r"re must be a finite real"),
        ({"pressure_outflow": "yes"}, r"kovasznay_2d: pressure_outflow must be true or false, got 'yes'"),
        ({"reynolds": 20}, r"problem\.reynolds: unknown option for 'kovasznay_2d'"),
    ],
)
def test_invalid_options(opts, match):
    with pytest.raises(ValueError, match=match):
        problems.get("kovasznay_2d", **opts)
