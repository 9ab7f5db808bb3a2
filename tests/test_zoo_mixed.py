"""Helmholtz with mixed Dirichlet/Neumann faces: the exact solution satisfies every term with the normals that
``problem.batch()`` delivers, the Neumann data are the normal derivatives of the solution, validation."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sciml_jax import problems

FACES = {"bc_left": ("boundary:left", [-1.0, 0.0]), "bc_bottom": ("boundary:bottom", [0.0, -1.0]),
         "bc_right": ("boundary:right", [1.0, 0.0]), "bc_top": ("boundary:top", [0.0, 1.0])}


def _perturbation(x):
    return 0.01 * jnp.exp(0.5 * x[0] + 0.3 * x[1])


@jax.jit
def _terms_exact_and_wrong(prob, batch):
    exact = prob.exact

    def wrong(x):
        return exact(x) + _perturbation(x)

    out = {}
    for name, term in prob.terms.items():
        args = batch[term.points] if isinstance(batch[term.points], tuple) else (batch[term.points],)
        out[name] = jax.vmap(lambda *a, n=name: (prob.residual_at(n, exact, *a), prob.residual_at(n, wrong, *a)))(
            *args)
    return out


@pytest.mark.parametrize("opts", [{}, {"a1": 2.5, "a2": 1.5, "k": 3.0}], ids=["default", "a1=2.5-a2=1.5-k=3"])
def test_exact_satisfies_every_term_with_the_batch_normals(opts):
    prob = problems.get("helmholtz_mixed_2d", **opts)
    batch = prob.batch(key=3)
    for name, (points, normal) in FACES.items():
        term = prob.terms[name]
        assert term.points == points and term.normals == (name in ("bc_right", "bc_top"))
        if term.normals:  # (x, n) pairs with the outward unit normal of the face
            x, n = batch[points]
            np.testing.assert_array_equal(np.asarray(n), np.tile(normal, (x.shape[0], 1)))
        else:
            x = batch[points]
        axis, value = (0, 0.0) if "left" in name else (1, 0.0) if "bottom" in name else (0, 1.0) if "right" in name \
            else (1, 1.0)
        np.testing.assert_array_equal(np.asarray(x[:, axis]), value)
    for name, (good, bad) in _terms_exact_and_wrong(prob, batch).items():
        good, bad = np.asarray(good), np.asarray(bad)
        # closed forms against autodiff: rounding of O((a pi)^2) numbers, measured <= 2e-14
        assert np.max(np.abs(good)) <= 1e-10, (name, np.max(np.abs(good)))
        assert np.max(np.abs(bad)) > 1e-3, (name, np.max(np.abs(bad)))


def test_neumann_data_are_normal_derivatives_and_the_normal_is_used():
    prob = problems.helmholtz_mixed_2d(a1=1.25, a2=2.5)
    g = jax.grad(prob.exact)
    rng = np.random.default_rng(0)
    s = rng.uniform(0, 1, 16)
    right = jnp.asarray(np.column_stack([np.ones(16), s]))
    top = jnp.asarray(np.column_stack([s, np.ones(16)]))
    # the data functions equal the autodiff derivative of u* (independent of the term's own grad)
    c = prob.coefficient_values()
    from sciml_jax.problems import _mixed

    gr, gt = jax.jit(jax.vmap(g))(right), jax.jit(jax.vmap(g))(top)
    np.testing.assert_allclose(jax.vmap(lambda x: _mixed._hm_flux_right(x, c))(right), gr[:, 0], atol=1e-13)
    np.testing.assert_allclose(jax.vmap(lambda x: _mixed._hm_flux_top(x, c))(top), gt[:, 1], atol=1e-13)
    assert np.max(np.abs(np.asarray(gr[:, 0]))) > 1.0 and np.max(np.abs(np.asarray(gt[:, 1]))) > 1.0
    # the term reads the normal: flipping it turns du/dn - g into -du/dn - g = -2 g at the exact solution
    e_x = jnp.array([1.0, 0.0])
    flipped = np.asarray(jax.jit(jax.vmap(lambda x: prob.residual_at("bc_right", prob.exact, x, -e_x)))(right))
    np.testing.assert_allclose(flipped, -2.0 * np.asarray(gr[:, 0]), atol=1e-12)


def test_forcing_matches_autodiff():
    prob = problems.helmholtz_mixed_2d(a1=2, a2=3, k=2.0)
    x = jnp.asarray(prob.domain.sample("interior", 32, "uniform", seed=1))
    exact, forcing = prob.exact, prob.forcing
    lhs, rhs = jax.jit(jax.vmap(lambda y: (jnp.trace(jax.hessian(exact)(y)) + 4.0 * exact(y), forcing(y))))(x)
    np.testing.assert_allclose(lhs, rhs, atol=1e-10)
    assert np.max(np.abs(np.asarray(lhs))) > 1.0


def test_options_registry_and_eval_points():
    prob = problems.get("helmholtz_mixed_2d")
    assert prob.options == {"a1": 1, "a2": 2, "k": 1.0}
    assert set(prob.default_points) == {"interior", "boundary:left", "boundary:bottom", "boundary:right",
                                        "boundary:top"}
    x = prob.eval_points()
    assert x.shape == (10_000, 2) and np.all(prob.domain.contains(x))
    assert "Math:" in problems.describe("helmholtz_mixed_2d")
    assert jax.tree_util.tree_structure(prob.replace(coeffs={"k": 2.0})) == jax.tree_util.tree_structure(prob)


@pytest.mark.parametrize(
    "opts,match",
    [
        ({"a1": 0}, r"helmholtz_mixed_2d: a1 must be a finite real number > 0, got 0"),
        ({"a2": -1.0}, r"a2 must be .* > 0"),
        ({"k": -1.0}, r"k must be a finite real number >= 0, got -1\.0"),
        ({"k": math.pi * math.sqrt(0.5)}, r"k must not make k\^2 an eigenvalue"),
        ({"k": math.pi * math.sqrt(0.25 + 2.25)}, r"k must not make k\^2 an eigenvalue"),
        ({"k": "1"}, r"k must be a finite real"),
    ],
)
def test_invalid_options(opts, match):
    with pytest.raises(ValueError, match=match):
        problems.get("helmholtz_mixed_2d", **opts)
