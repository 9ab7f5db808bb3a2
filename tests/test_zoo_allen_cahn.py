"""Allen-Cahn: the spectral ETDRK4 reference solver (coefficients, initial series, fourth order in time, spectral in
space, consistency with the PDE) and the problem built on it (standard grid, Hermite interpolation, terms)."""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate

from sciml_jax import problems
from sciml_jax.problems import _allen_cahn as ac

D, R = 1e-4, 5.0


@pytest.fixture(scope="module")
def prob():
    return problems.get("allen_cahn_1d")


def _table(prob):
    o = prob.options
    return ac.reference_tables(o["diffusion"], float(o["reaction"]), o["modes"], o["substeps"])


# ------------------------------------------------------------------------------------------------ the solver


def test_etdrk4_coefficients_match_direct_formulas_and_limits():
    z = np.array([-1000.0, -5.0, -2.0, 0.0, 1.0])
    E, _E2, Q, f1, f2, f3 = ac.etdrk4_coefficients(z)
    np.testing.assert_allclose(E, np.exp(z), rtol=1e-15)
    zz, ez = z[[0, 1, 2, 4]], np.exp(z[[0, 1, 2, 4]])  # away from 0 the direct formulas do not cancel badly
    direct = [(np.exp(zz / 2) - 1) / zz, (-4 - zz + ez * (4 - 3 * zz + zz**2)) / zz**3,
              (2 + zz + ez * (zz - 2)) / zz**3, (-4 - 3 * zz - zz**2 + ez * (4 - zz)) / zz**3]
    for got, want in zip((Q, f1, f2, f3), direct):
        np.testing.assert_allclose(got[[0, 1, 2, 4]], want, rtol=1e-12)
    # z -> 0: Q -> 1/2 and f1, f2, f3 -> 1/6 (Kassam & Trefethen 2005), where the direct formulas are 0/0
    np.testing.assert_allclose([Q[3], f1[3], f2[3], f3[3]], [0.5, 1 / 6, 1 / 6, 1 / 6], rtol=1e-14)


def test_initial_coefficients_are_the_fourier_series_of_the_initial_data():
    n = 64
    X = ac.initial_coefficients(n)
    a = 2.0 * np.real(X) * (-1.0) ** np.arange(n // 2 + 1) / n  # cosine coefficients a_m (m >= 1)
    a[0] = np.real(X[0]) / n
    for m in (0, 1, 2, 5, 17):
        quad = scipy.integrate.quad(lambda x: x**2 * np.cos(np.pi * x), -1, 1, weight="cos", wvar=math.pi * m)[0]
        want = quad / 2 if m == 0 else quad
        assert a[m] == pytest.approx(want, abs=1e-13), m
    assert np.max(np.abs(np.imag(X))) == 0.0 and X[-1] == 0.0


def test_time_integration_is_fourth_order():
    n = 256
    u = {s: np.fft.irfft(ac.solve_allen_cahn(D, R, n, s, levels=11, t1=0.25), n=n, axis=1) for s in (1, 2, 4, 8, 16)}
    diffs = [np.max(np.abs(u[s] - u[2 * s])) for s in (1, 2, 4, 8)]
    ratios = [a / b for a, b in itertools.pairwise(diffs)]
    # fourth order: 2^4 = 16 per halving (measured 17.8, 16.9, 16.4); the window excludes 2nd/3rd and 5th order
    assert all(12.0 < r < 22.0 for r in ratios), (diffs, ratios)
    assert diffs[-1] < 1e-8


def test_pure_reaction_and_pure_diffusion_are_exact_limits():
    n, t1 = 64, 0.2
    x = -1.0 + 2.0 * np.arange(n) / n
    u0 = 0.5 * np.sin(np.pi * x)
    ode = np.fft.irfft(ac.solve_allen_cahn(0.0, R, n, 8, levels=5, t1=t1, u0_hat=np.fft.rfft(u0)), n=n, axis=1)
    t = np.linspace(0, t1, 5)[:, None]
    e = np.exp(R * t)
    exact = u0 * e / np.sqrt(1.0 + u0**2 * (e**2 - 1.0))  # pointwise logistic-type ODE u' = r (u - u^3)
    # ETDRK4 error ~ (h r)^4 with h r = 0.05: ~1e-8 at most; the spectral error of this analytic solution is ~1e-15
    np.testing.assert_allclose(ode, exact, atol=1e-7)
    heat = np.fft.irfft(ac.solve_allen_cahn(0.1, 0.0, n, 1, levels=5, t1=t1, u0_hat=np.fft.rfft(u0)), n=n, axis=1)
    np.testing.assert_allclose(heat, u0 * np.exp(-0.1 * np.pi**2 * t), atol=1e-14)  # the linear part is exact


def test_space_resolution_converges_spectrally_after_the_kink_is_smoothed(prob):
    ref = _table(prob)[0][:, ::4]  # default: 2044 points; every 4th is a point of the 511-point grid
    diff = {}
    for n in (511, 1022):
        u = np.fft.irfft(ac.solve_allen_cahn(D, R, n, 4), n=n, axis=1)[:, :: n // 511]
        diff[n] = np.max(np.abs(u - ref)[10:])  # t >= 0.05
    # measured 4.4e-6 and 3.1e-10: exponential convergence (a factor 1e4 for a doubling, algebraic would be ~10)
    assert diff[1022] < 1e-8 and diff[511] > 1e3 * diff[1022], diff


def test_solver_output_satisfies_the_pde(prob):
    # Independent of the integrator: a fourth-order central difference in time of the solver's output against
    # the right-hand side d u_xx + r (u - u^3) with spectral u_xx, at t = 0.2 and 1.
    n, dt = prob.options["modes"], 1e-3
    U = _table(prob)[0]
    k = np.pi * np.arange(n // 2 + 1)
    for level in (40, 199):
        seg = ac.solve_allen_cahn(D, R, n, 1, levels=5, t1=4 * dt, u0_hat=np.fft.rfft(U[level]))
        us = np.fft.irfft(seg, n=n, axis=1)
        u_t = (-us[4] + 8 * us[3] - 8 * us[1] + us[0]) / (12 * dt)
        rhs = D * np.fft.irfft(-(k**2) * seg[2], n=n) + R * (us[2] - us[2] ** 3)
        # difference error ~ dt^4 |u^(5)| / 30 plus ETDRK4 error; measured 4e-10 against |rhs| ~ 2
        assert np.max(np.abs(u_t - rhs)) < 1e-7, level
        assert np.max(np.abs(rhs)) > 1.0


# ------------------------------------------------------------------------------------------------ the problem


def test_standard_grid_and_reference_values_on_it(prob):
    x = prob.eval_points()
    assert x.shape == (512 * 201, 2) and x.dtype == np.float64
    np.testing.assert_array_equal(np.unique(x[:, 0]), np.linspace(-1, 1, 512))
    np.testing.assert_array_equal(x[:201, 1], np.linspace(0, 1, 201))  # time varies fastest
    assert np.all(prob.domain.contains(x))
    pick = np.random.default_rng(0).choice(x.shape[0], 4000, replace=False)
    got = np.asarray(jax.jit(jax.vmap(prob.exact))(jnp.asarray(x[pick])))
    i, j = pick // 201, pick % 201  # x index on the 512-grid, time level
    U = _table(prob)[0]
    node = np.where(i == 511, 0, 4 * i)  # x = 1 is the periodic image of x = -1
    # on table nodes the Hermite interpolant returns the table value (rounding of the local coordinates only)
    np.testing.assert_allclose(got, U[j, node], rtol=0, atol=1e-12)


def test_interpolation_between_nodes_and_levels(prob):
    U = _table(prob)[0]
    n = prob.options["modes"]
    rng = np.random.default_rng(1)
    worst = 0.0
    for level in (2, 20, 120):
        # the spectral solution half-way to the next level, from the table's grid values at this level
        half = ac.solve_allen_cahn(D, R, n, 2, levels=2, t1=0.0025, u0_hat=np.fft.rfft(U[level]))[1]
        xs = rng.uniform(-1, 1, 300)
        m = np.arange(n // 2 + 1)
        w = np.where((m == 0) | (m == n // 2), 1.0, 2.0)
        truth = np.real(np.exp(1j * np.pi * np.outer(xs + 1, m)) @ (w * half)) / n  # trigonometric interpolation
        pts = jnp.asarray(np.column_stack([xs, np.full(300, level * 0.005 + 0.0025)]))
        worst = max(worst, np.max(np.abs(np.asarray(jax.jit(jax.vmap(prob.exact))(pts)) - truth)))
    # bicubic Hermite error ~ h_x^4 u_xxxx / 384 + h_t^4 u_tttt / 384: measured <= 2e-6 for t >= 0.005
    assert worst < 2e-5, worst


def test_terms_at_the_reference(prob):
    batch = prob.batch({"interior": 8, "boundary": 64, "initial": 64}, key=0)
    run = jax.jit(lambda pts, n: jax.vmap(lambda y: prob.residual_at(n, prob.exact, y))(pts), static_argnums=1)
    # u(x, 0) is the closed form (up to the rounding of the periodic wrap of x)
    np.testing.assert_allclose(np.asarray(run(batch["initial"], "ic")), 0.0, atol=1e-15)
    per = np.asarray(run(batch["boundary"], "bc"))
    assert per.shape == (64, 2) and np.max(np.abs(per)) < 1e-12  # u and u_x periodic by construction


def test_coefficient_guard_dtype_and_options(prob):
    p = jnp.array([0.3, 0.5])
    exact = jax.jit(prob.exact)
    assert np.isfinite(float(exact(p)))
    assert math.isnan(float(jax.jit(prob.replace(coeffs={"reaction": 4.0}).exact)(p)))  # the table is for r = 5
    v32 = exact(p.astype(jnp.float32))
    assert v32.dtype == jnp.float32 and abs(float(v32) - float(exact(p))) < 1e-5
    assert prob.options == {"diffusion": 1e-4, "reaction": 5.0, "modes": 2044, "substeps": 4}
    assert set(prob.terms) == {"pde", "ic", "bc"} and prob.eval_size == 512 * 201
    assert "Math:" in problems.describe("allen_cahn_1d")


@pytest.mark.parametrize(
    "opts,match",
    [
        ({"diffusion": 0.0}, r"allen_cahn_1d: diffusion must be a finite real number > 0, got 0\.0"),
        ({"reaction": -1.0}, r"reaction must be a finite real number >= 0"),
        ({"modes": 63}, r"modes must be an integer >= 64, got 63"),
        ({"modes": 101}, r"modes must be an even integer >= 64, got 101"),
        ({"substeps": 0}, r"substeps must be an integer >= 1, got 0"),
    ],
)
def test_invalid_options(opts, match):
    with pytest.raises(ValueError, match=match):
        problems.get("allen_cahn_1d", **opts)
