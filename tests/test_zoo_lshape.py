"""Poisson on the L-shape: the finite-difference solver against manufactured solutions (second order for a smooth
one, the corner-limited order for r^(2/3)), Richardson extrapolation, the reference's self-convergence, symmetry,
rotations, evaluation points on the reference nodes, validation."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sciml_jax import problems
from sciml_jax.problems import _lshape as ls


@pytest.fixture(scope="module")
def prob():
    return problems.get("poisson_lshape")


def _smooth(x, y):
    return np.sin(np.pi * x) * np.sin(np.pi * y)  # zero on every edge of the L (x, y in {-1, 0, 1})


def _singular(x, y):
    theta = np.mod(np.arctan2(y, x), 2 * np.pi)  # in (0, 3 pi / 2) inside the L without quadrant 4
    return np.hypot(x, y) ** (2.0 / 3.0) * np.sin(2.0 * theta / 3.0)  # harmonic, zero on the re-entrant edges


def _rhs(x, y):
    return 2.0 * np.pi**2 * _smooth(x, y)


def _errors(n, exact, g=None):
    U = ls.fd_poisson_lshape(n, _rhs, g)
    x = np.linspace(-1, 1, n + 1)
    X, Y = np.meshgrid(x, x, indexing="ij")
    e = (U - exact(X, Y))[ls._interior(n)]
    return U, np.max(np.abs(e)), np.sqrt(np.mean(e**2))


def _tables_at_coarse_nodes(resolution):
    """(plain finest solution, two-step extrapolation w), both at the nodes of the coarsest grid."""
    c, fine, mid, coarse = ls.reference_tables(resolution)
    x = np.linspace(-1, 1, 4 * resolution + 1)
    X, Y = np.meshgrid(x, x, indexing="ij")
    u4 = (fine + c * ls._singular_np(X, Y))[::4, ::4]
    return u4, u4 + mid[::2, ::2] + coarse


def test_solver_is_second_order_on_a_smooth_solution():
    errs = [_errors(n, _smooth)[1] for n in (16, 32, 64)]
    ratios = [a / b for a, b in itertools.pairwise(errs)]
    assert all(3.8 < r < 4.2 for r in ratios), (errs, ratios)  # measured 4.02, 4.006: h^2


def test_solver_order_is_limited_by_the_corner_and_extrapolation_helps():
    exact = lambda x, y: _singular(x, y) + _smooth(x, y)
    sols, maxe, rms = {}, {}, {}
    for n in (16, 32, 64, 128):
        sols[n], maxe[n], rms[n] = _errors(n, exact, g=exact)
    # the max error sits at the node next to the corner, u ~ r^(2/3): order 2/3 (2^(2/3) = 1.59; measured 1.54-1.58)
    assert all(1.4 < maxe[a] / maxe[2 * a] < 1.8 for a in (16, 32, 64)), maxe
    # the RMS error converges faster (measured ratios 3.5, 3.0, 2.7, tending to 2^(4/3) = 2.52)
    assert all(2.3 < rms[a] / rms[2 * a] < 4.0 for a in (16, 32, 64)), rms
    w = ls.richardson(sols[32], sols[64], sols[128])
    x = np.linspace(-1, 1, 33)
    X, Y = np.meshgrid(x, x, indexing="ij")
    inside = ls._interior(32)
    rms_w = np.sqrt(np.mean((w - exact(X, Y))[inside] ** 2))
    rms_128 = np.sqrt(np.mean((sols[128][::4, ::4] - exact(X, Y))[inside] ** 2))
    assert rms_w < rms_128 / 8, (rms_w, rms_128)  # measured 1.7e-5 vs 2.7e-4


def test_fine_solution_satisfies_the_discrete_equation():
    n = 64
    U = ls.fd_poisson_lshape(n)
    h = 2.0 / n
    lap = (4 * U[1:-1, 1:-1] - U[2:, 1:-1] - U[:-2, 1:-1] - U[1:-1, 2:] - U[1:-1, :-2]) / h**2
    inside = ls._interior(n)[1:-1, 1:-1]
    # SPD system of condition ~ n^2: residual ~ 1e-16 * 1e4 / h^2 relative, here measured ~1e-12
    np.testing.assert_allclose(lap[inside], 1.0, atol=1e-8)
    assert np.all(U[~ls._interior(n)] == 0.0) and np.all(U[inside.nonzero()[0] + 1, inside.nonzero()[1] + 1] > 0)


def test_reference_converges_and_extrapolation_matters(prob):
    coarse = problems.get("poisson_lshape", resolution=64)
    x = coarse.eval_points()  # nodes of the 64-grid: nodes of the default 128-grid too
    ev = jax.jit(jax.vmap(lambda p: jnp.stack([prob.exact(p), coarse.exact(p)])))
    fine, rough = np.asarray(ev(jnp.asarray(x))).T
    rel = np.linalg.norm(fine - rough) / np.linalg.norm(fine)
    assert rel < 1e-4, rel  # measured 2.7e-5: the rough reference is 37x better than 1e-3, the default ~1e-5
    i = np.rint((x + 1) * 32).astype(int)
    plain = _tables_at_coarse_nodes(128)[0][::2, ::2]  # the plain n = 512 solution at the 64-grid nodes
    rel_plain = np.linalg.norm(plain[i[:, 0], i[:, 1]] - fine) / np.linalg.norm(fine)
    # extrapolation moves the values (1.9e-4) well beyond its own uncertainty (2.7e-5 for the rough one)
    assert rel_plain > 4 * rel, (rel_plain, rel)


def test_eval_points_are_reference_nodes_and_exact_returns_the_extrapolation(prob):
    x = prob.eval_points()
    assert x.shape == (12_545, 2) and np.all(prob.domain.contains(x))
    np.testing.assert_array_equal(np.unique(x[:, 0]), np.linspace(-1, 1, 129))
    w = _tables_at_coarse_nodes(128)[1]
    i = np.rint((x + 1) * 64).astype(int)
    u = np.asarray(jax.jit(jax.vmap(prob.exact))(jnp.asarray(x)))
    np.testing.assert_allclose(u, w[i[:, 0], i[:, 1]], rtol=0, atol=1e-15)
    assert 0.14 < u.max() < 0.16 and u.min() >= -1e-15


def test_symmetry_rotations_and_boundary(prob):
    x = jnp.asarray(prob.domain.sample("interior", 500, "uniform", seed=0))
    u = jax.jit(jax.vmap(prob.exact))
    ux = np.asarray(u(x))
    # the L without quadrant 4 is symmetric about y = -x, and so is the solution (bilinear tables on a grid
    # symmetric under the reflection: equal up to rounding)
    np.testing.assert_allclose(np.asarray(u(jnp.stack([-x[:, 1], -x[:, 0]], axis=1))), ux, atol=1e-14)
    # DeepXDE's L-shape (quadrant 1 removed) is the default turned by 90 degrees: (x, y) -> (-y, x)
    q1 = problems.get("poisson_lshape", removed_quadrant=1)
    turned = jnp.stack([-x[:, 1], x[:, 0]], axis=1)
    assert np.all(q1.domain.contains(np.asarray(turned)))
    np.testing.assert_allclose(np.asarray(jax.jit(jax.vmap(q1.exact))(turned)), ux, atol=1e-14)
    xb = prob.batch({"interior": 4, "boundary": 400}, key=1)["boundary"]
    r = jax.jit(jax.vmap(lambda y: prob.residual_at("bc", prob.exact, y)))(xb)
    assert np.max(np.abs(np.asarray(r))) < 1e-15


def test_corner_coefficient_and_interpolation_with_the_singularity_subtracted():
    n = 64
    x = np.linspace(-1, 1, 4 * n + 1)
    X, Y = np.meshgrid(x, x, indexing="ij")
    r2, theta = X**2 + Y**2, np.mod(np.arctan2(Y, X), 2 * np.pi)
    w = 0.4 * ls._singular_np(X, Y) + 0.1 * r2 ** (2 / 3) * np.sin(4 * theta / 3) + 0.05 * r2 - 0.2 * r2 * np.sin(2 * theta)
    assert ls.corner_coefficient(w[::4, ::4]) == pytest.approx(0.4, abs=1e-10)  # in the span of the fit
    # interpolation of c S + sin(pi x) sin(pi y) (S = ls._singular_np) from exact samples: only the smooth part's
    # bilinear error remains, bounded by h^2/8 (|f_xx| + |f_yy|) <= h^2 pi^2 / 4 on the finest grid
    c, smooth = 0.37, _smooth(X, Y)
    zeros = (np.zeros((2 * n + 1,) * 2), np.zeros((n + 1,) * 2))
    rng = np.random.default_rng(0)
    near = rng.uniform(0, 0.05, 1000) * np.exp(1j * rng.uniform(0, 1.5 * np.pi, 1000))  # next to the corner
    pts = np.concatenate([rng.uniform(-1, 1, (3000, 2)), np.column_stack([near.real, near.imag])])
    pts = pts[problems.get("poisson_lshape", resolution=16).domain.contains(pts)]
    truth = c * ls._singular_np(pts[:, 0], pts[:, 1]) + _smooth(pts[:, 0], pts[:, 1])
    u = ls.interpolant(c, smooth, *zeros)
    err = np.max(np.abs(np.asarray(jax.jit(jax.vmap(u))(jnp.asarray(pts))) - truth))
    bound = (2.0 / (4 * n)) ** 2 * np.pi**2 / 4
    assert err <= 1.01 * bound, (err, bound)
    plain = ls.interpolant(0.0, smooth + c * ls._singular_np(X, Y), *zeros)  # the singular part interpolated bilinearly
    err_plain = np.max(np.abs(np.asarray(jax.jit(jax.vmap(plain))(jnp.asarray(pts))) - truth))
    assert err_plain > 5 * bound, (err_plain, bound)  # measured 1.8e-3 vs 1.5e-4: the corner cells
    g = jax.grad(u)(jnp.zeros(2))
    assert bool(jnp.all(jnp.isfinite(g)))  # finite gradient at the corner itself


@pytest.mark.parametrize(
    "opts,match",
    [
        ({"removed_quadrant": 5}, r"poisson_lshape: removed_quadrant must be 1, 2, 3 or 4, got 5"),
        ({"removed_quadrant": 0}, r"removed_quadrant must be an integer >= 1, got 0"),
        ({"resolution": 8}, r"resolution must be an integer >= 16, got 8"),
        ({"resolution": 33}, r"resolution must be an even integer >= 16, got 33"),
        ({"resolution": 32.0}, r"resolution must be an integer >= 16"),
    ],
)
def test_invalid_options(opts, match):
    with pytest.raises(ValueError, match=match):
        problems.get("poisson_lshape", **opts)


def test_solver_validates_n():
    with pytest.raises(ValueError, match="n must be an even integer >= 4"):
        ls.fd_poisson_lshape(7)
