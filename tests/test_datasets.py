"""Operator data sets: GRF statistics, reproducibility, batch-entry layout, and every generator against an
independent solve (scipy.integrate and closed forms; manufactured solutions and self-convergence; ETDRK4)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate

import sciml_jax as sj
from sciml_jax.datasets import (
    antiderivative,
    burgers,
    burgers_cole_hopf,
    diffusion_reaction,
    grf,
    interpolate,
    periodic_rbf_kernel,
    rbf_kernel,
    solve_diffusion_reaction,
    spline_antiderivative,
)
from sciml_jax.datasets._grf import _spline

EPS = np.finfo(np.float64).eps


# -------------------------------------------------------------------------------------------------------- GRF


@pytest.mark.parametrize("periodic", [False, True])
def test_grf_covariance_matches_kernel(periodic):
    n_samples, n = 20000, 41
    x, u = grf(3, n_samples, n, length_scale=0.15, variance=2.0, periodic=periodic)
    kernel = periodic_rbf_kernel if periodic else rbf_kernel
    K = kernel(x, x, 0.15, 2.0)
    C = u.T @ u / n_samples  # zero-mean field: the second-moment matrix estimates K
    # entry (i, j) of the sample second moment has standard deviation sqrt((K_ii K_jj + K_ij^2) / N) <= 2 sqrt(2 / N)
    # with variance 2; 5 standard deviations fail by chance with probability < 1e-6 per entry
    assert np.max(np.abs(C - K)) < 5 * 2.0 * np.sqrt(2.0 / n_samples)
    assert np.abs(np.mean(u)) < 5 * np.sqrt(np.max(np.linalg.eigvalsh(K)) / (n * n_samples)) * np.sqrt(n)


def test_grf_periodic_kernel_is_the_rbf_kernel_at_short_range():
    d = np.array([0.0, 1e-3, 1e-2])
    # sin(pi d) / pi = d (1 - pi^2 d^2 / 6 + ...): relative difference of the exponents ~ pi^2 d^2 / 3
    np.testing.assert_allclose(periodic_rbf_kernel(d, [0.0], 0.1), rbf_kernel(d, [0.0], 0.1), rtol=1e-3)
    # and it is periodic
    np.testing.assert_allclose(periodic_rbf_kernel([0.1], [0.3], 0.2), periodic_rbf_kernel([1.1], [0.3], 0.2))


def test_grf_sample_is_an_exact_factorisation_of_the_kernel():
    from sciml_jax.datasets._grf import _rbf_basis

    basis = _rbf_basis(201, 0.2, 1.0)
    x = np.linspace(0, 1, 201)
    # truncation at n eps ||K||_inf: what is dropped is below round-off of K's largest entries
    np.testing.assert_allclose(basis @ basis.T, rbf_kernel(x, x, 0.2), atol=1e3 * EPS * 201)


def test_grf_is_reproducible_and_streams_are_independent():
    _, a = grf(7, 5, 101, length_scale=0.2)
    _, b = grf(jax.random.key(7), 5, 101, length_scale=0.2)
    _, c = grf(jax.random.PRNGKey(7), 8, 101, length_scale=0.2)
    _, d = grf(7, 5, 101, length_scale=0.2, stream=1)
    _, e = grf(8, 5, 101, length_scale=0.2)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c[:5])  # more samples only append rows
    assert np.max(np.abs(a - d)) > 0.1 and np.max(np.abs(a - e)) > 0.1


def test_interpolate_periodic_and_per_function_points():
    x, u = grf(0, 3, 64, length_scale=0.2, periodic=True)
    # at the grid nodes the interpolant returns the samples; periodic wrap-around
    np.testing.assert_allclose(interpolate(x, u, x, periodic=True), u, atol=1e-13)
    np.testing.assert_allclose(interpolate(x, u, x + 1.0, periodic=True), u, atol=1e-13)
    pts = np.random.default_rng(0).uniform(0, 1, (3, 4))
    shared = interpolate(x, u, pts.ravel(), periodic=True)  # (3, 12): every function at every point
    rowwise = interpolate(x, u, pts, periodic=True)  # (3, 4): function b at its own points
    np.testing.assert_allclose(rowwise, np.stack([shared[b, 4 * b : 4 * b + 4] for b in range(3)]), atol=1e-14)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(length_scale=0.0), "length_scale"),
        (dict(length_scale=0.01), "grid spacing"),
        (dict(n_samples=0), "n_samples"),
        (dict(variance=float("nan")), "variance"),
    ],
)
def test_grf_validates(kwargs, match):
    args = dict(n_samples=2, n_grid=101, length_scale=0.2)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        grf(0, **args)


# ---------------------------------------------------------------------------------------------- antiderivative


def test_spline_antiderivative_closed_forms():
    xq = np.linspace(0, 1, 37)
    x = np.linspace(0, 1, 11)
    # cubic polynomials are reproduced by the not-a-knot spline: exact up to round-off
    u = np.stack([1 + 2 * x - 3 * x**2 + 4 * x**3, x**3])
    exact = np.stack([xq + xq**2 - xq**3 + xq**4, xq**4 / 4])
    np.testing.assert_allclose(spline_antiderivative(x, u, xq), exact, atol=100 * EPS)
    # sines: error <= y max|f - spline| <= (5/384) h^4 max|f''''| (the clamped-spline bound; not-a-knot measured
    # ~30x below it), and fourth-order convergence
    errors = []
    for n in (51, 101):
        x = np.linspace(0, 1, n)
        k = 3
        s = spline_antiderivative(x, np.sin(2 * np.pi * k * x)[None], xq)[0]
        errors.append(np.max(np.abs(s - (1 - np.cos(2 * np.pi * k * xq)) / (2 * np.pi * k))))
        assert errors[-1] <= 5 / 384 * (x[1] - x[0]) ** 4 * (2 * np.pi * k) ** 4
    assert 10 < errors[0] / errors[1] < 25  # 2^4 = 16


def test_antiderivative_dataset_against_scipy_integrate():
    data = antiderivative(5, n_train=4, n_test=3, n_sensors=20, n_queries=6, n_grf=501)
    assert data.train.u.shape == (4, 20) and data.train.y.shape == (4, 6, 1) and data.train.s.shape == (4, 6)
    assert data.test.s_grid.shape == (3, 20)
    # rebuild the functions from the same stream: the spline of the GRF grid values is u
    x, u = grf(5, 4, 501, length_scale=0.2, stream=0)
    spline = _spline(x, u, periodic=False)
    np.testing.assert_allclose(data.train.u, spline(data.sensors).T, atol=1e-14)
    # scipy.integrate.cumulative_simpson on a grid refining the knots 20x (panels aligned with the knots, so
    # Simpson is exact on the piecewise cubic): agreement to round-off accumulated over 10^4 panels
    xf = np.linspace(0, 1, 10001)
    cum = scipy.integrate.cumulative_simpson(spline(xf).T, x=xf, initial=0)
    np.testing.assert_allclose(spline_antiderivative(x, u, xf), cum, atol=1e-12)
    # adaptive quadrature at the random query points and at the sensors
    for b in range(2):
        for y, value in [(data.train.y[b, q, 0], data.train.s[b, q]) for q in range(3)] + [
            (data.sensors[i], data.train.s_grid[b, i]) for i in (7, 19)
        ]:
            knots = x[(x > 0) & (x < y)]  # break points: Gauss-Kronrod is exact on each cubic piece
            ref, err = scipy.integrate.quad(lambda t, b=b: spline(t)[b], 0.0, y, points=knots, limit=len(knots) + 50)
            assert abs(value - ref) <= 1e-13 + 10 * err
    assert np.all(data.train.s_grid[:, 0] == 0)


def test_dataset_entries_layout_and_dtype():
    data = antiderivative(1, n_train=3, n_test=2, n_sensors=5, n_queries=4, n_grf=201)
    z, s = data.deeponet_entry("train")
    assert z.shape == (12, 6) and s.shape == (12,) and z.dtype == jnp.float64
    z_np, s_np = np.asarray(z), np.asarray(s)
    for b in range(3):
        for q in range(4):
            np.testing.assert_array_equal(z_np[4 * b + q], np.concatenate([data.train.u[b], data.train.y[b, q]]))
            assert s_np[4 * b + q] == data.train.s[b, q]
    U, Y, S = data.deeponet_grid_entry("test")
    assert U.shape == (2, 5) and Y.shape == (2, 4, 1) and S.shape == (2, 4)
    a, s_grid = data.fno_entry("test", dtype=jnp.float32)
    assert a.dtype == jnp.float32 and s_grid.shape == (2, 5)
    with pytest.raises(ValueError, match="split must be one of"):
        data.deeponet_entry("validation")
    with pytest.raises(TypeError):
        data.config["n_train"] = 5  # read-only
    # a DeepONet data term on these entries evaluates through both paths alike
    model = sj.nn.DeepONet(5, 1, 8, 1, 3, key=jax.random.key(0))
    params, apply = sj.nn.functional(model)
    pointwise = jax.vmap(apply, in_axes=(None, 0))(params, z)
    grid = sj.nn.deeponet_grid(params, model, *data.deeponet_grid_entry("train")[:2])
    np.testing.assert_allclose(pointwise, grid.ravel(), rtol=1e-12, atol=1e-14)


def test_datasets_are_reproducible_and_test_split_does_not_depend_on_train_size():
    a = antiderivative(2, n_train=3, n_test=2, n_sensors=8, n_queries=3, n_grf=201)
    b = antiderivative(jax.random.key(2), n_train=5, n_test=2, n_sensors=8, n_queries=3, n_grf=201)
    c = antiderivative(3, n_train=3, n_test=2, n_sensors=8, n_queries=3, n_grf=201)
    for field in ("u", "y", "s"):
        np.testing.assert_array_equal(getattr(a.test, field), getattr(b.test, field))
        np.testing.assert_array_equal(getattr(a.train, field), getattr(b.train, field)[:3])
    assert np.max(np.abs(a.train.u - c.train.u)) > 0.1


@pytest.mark.parametrize(
    "fn, kwargs, match",
    [
        (antiderivative, dict(n_train=0), "n_train"),
        (antiderivative, dict(n_sensors=1), "n_sensors"),
        (antiderivative, dict(length_scale=-0.2), "length_scale"),
        (diffusion_reaction, dict(n_queries=10**6), "n_queries"),
        (diffusion_reaction, dict(D=0.0), "D"),
        (diffusion_reaction, dict(k=float("inf")), "k"),
        (burgers, dict(n_grid=63), "even"),
        (burgers, dict(nu=-0.1), "nu"),
        (burgers, dict(n_queries=300), "n_queries"),
    ],
)
def test_generators_validate_arguments(fn, kwargs, match):
    with pytest.raises(ValueError, match=match) as info:
        fn(0, **kwargs)
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="key"):
        fn(-1)


# -------------------------------------------------------------------------------------------- diffusion-reaction


def _manufactured(D, k):
    """s = sin(pi x) (1 + x) sin(2 t): zero at x = 0, 1 and t = 0; f = s_t - D s_xx - k s^2."""

    def exact(t, x):
        return np.sin(np.pi * x) * (1 + x) * np.sin(2 * t)

    def source(t, x):
        g = np.sin(np.pi * x) * (1 + x)
        g_xx = -(np.pi**2) * g + 2 * np.pi * np.cos(np.pi * x)
        return g * 2 * np.cos(2 * t) - D * np.sin(2 * t) * g_xx - k * exact(t, x) ** 2

    return exact, source


@pytest.mark.parametrize("k", [0.01, 1.0])  # the paper's k, and a strongly nonlinear one (Newton does work)
def test_diffusion_reaction_manufactured_solution_converges_at_second_order(k):
    D = 0.01
    exact, source = _manufactured(D, k)
    errors = []
    for n in (40, 80, 160):
        xs = np.linspace(0, 1, n + 1)
        _, t, s = solve_diffusion_reaction(lambda tt, xs=xs: source(tt, xs)[None], n_x=n + 1, n_steps=n, D=D, k=k)
        errors.append(np.max(np.abs(s[0] - exact(t[:, None], xs[None]))))
    ratios = np.array(errors[:-1]) / np.array(errors[1:])
    # CN + central differences: error = C (h^2 + dt^2) + higher order, ratio -> 4 when h = dt halves
    assert np.all((ratios > 3.3) & (ratios < 5.0)), (errors, ratios)
    assert errors[-1] < 1e-4


def test_diffusion_reaction_self_convergence_on_grf_sources():
    x, u = grf(4, 3, 1001, length_scale=0.2)
    spline = _spline(x, u, periodic=False)
    sols = []
    for n in (50, 100, 200):
        xs = np.linspace(0, 1, n + 1)
        _, _, s = solve_diffusion_reaction(spline(xs).T, n_x=n + 1, n_steps=n, save_every=n // 10)
        sols.append(s[:, :, :: n // 50])  # the common 51 x 11 nodes
    d1, d2 = np.max(np.abs(sols[0] - sols[1])), np.max(np.abs(sols[1] - sols[2]))
    assert 3.3 < d1 / d2 < 5.0, (d1, d2)


def test_diffusion_reaction_dataset_consistency():
    data = diffusion_reaction(6, n_train=3, n_test=2, n_sensors=21, n_times=11, n_queries=30, n_grf=201)
    y, s = data.train.y, data.train.s
    assert y.shape == (3, 30, 2) and s.shape == (3, 30) and data.train.u.shape == (3, 21)
    # boundary and initial values are zero, the queries are distinct grid nodes
    on_boundary = (y[..., 0] == 0) | (y[..., 0] == 1) | (y[..., 1] == 0)
    assert np.all(s[on_boundary] == 0) and np.any(on_boundary)
    assert all(len({tuple(p) for p in y[b]}) == 30 for b in range(3))
    # the same values from an independent call of the solver on the same sources (refine = 2)
    _, u_grid = grf(6, 3, 201, length_scale=0.2, stream=0)
    xs = np.linspace(0, 1, 41)
    source = _spline(np.linspace(0, 1, 201), u_grid, periodic=False)(xs).T
    np.testing.assert_allclose(data.train.u, source[:, ::2], atol=1e-14)
    _, _, sol = solve_diffusion_reaction(source, n_x=41, n_steps=20)
    for b in range(3):
        i = np.rint(y[b, :, 0] * 40).astype(int)
        n = np.rint(y[b, :, 1] * 20).astype(int)
        np.testing.assert_allclose(s[b], sol[b, n, i], atol=1e-13)
    np.testing.assert_allclose(data.train.s_grid, sol[:, -1, ::2], atol=1e-13)


# ------------------------------------------------------------------------------------------------------ Burgers


def _etdrk4_burgers(u0, nu, T, n_steps, n_contour=64):
    """Independent reference: pseudo-spectral Burgers (2/3-dealiased Galerkin) with ETDRK4 in time.

    Kassam & Trefethen (2005): exponential time differencing of the stiff linear part -nu k^2 and fourth-order
    Runge-Kutta for the nonlinear part -(u^2 / 2)_x; the phi-function coefficients by contour integrals."""
    n = u0.shape[-1]
    k = np.arange(n // 2 + 1)
    ik = 2j * np.pi * k
    ik[-1] = 0
    L = -nu * (2 * np.pi * k) ** 2
    keep = k < n / 3
    h = T / n_steps
    E, E2 = np.exp(h * L), np.exp(h * L / 2)
    r = np.exp(1j * np.pi * (np.arange(1, n_contour + 1) - 0.5) / n_contour)
    LR = h * L[:, None] + r[None, :]
    Q = h * np.real(np.mean((np.exp(LR / 2) - 1) / LR, axis=1))
    f1 = h * np.real(np.mean((-4 - LR + np.exp(LR) * (4 - 3 * LR + LR**2)) / LR**3, axis=1))
    f2 = h * np.real(np.mean((2 + LR + np.exp(LR) * (-2 + LR)) / LR**3, axis=1))
    f3 = h * np.real(np.mean((-4 - 3 * LR - LR**2 + np.exp(LR) * (4 - LR)) / LR**3, axis=1))

    def N(v):
        w = np.fft.irfft(v * keep, n=n, axis=-1)
        return -0.5 * ik * np.fft.rfft(w * w, axis=-1) * keep

    v = np.fft.rfft(u0, axis=-1)
    for _ in range(n_steps):
        Nv = N(v)
        a = E2 * v + Q * Nv
        Na = N(a)
        b = E2 * v + Q * Na
        Nb = N(b)
        c = E2 * a + Q * (2 * Nb - Nv)
        v = E * v + Nv * f1 + 2 * (Na + Nb) * f2 + N(c) * f3
    return np.fft.irfft(v, n=n, axis=-1)


def _burgers_against_etdrk4(nu, n, steps):
    _, u0 = grf(11, 3, n, length_scale=0.1, periodic=True)
    u0 = u0 + np.array([[0.0], [0.7], [-0.4]])  # nonzero means exercise the Galilean shift
    u = burgers_cole_hopf(u0, nu, 1.0)
    scale = np.max(np.abs(u))
    return [np.max(np.abs(_etdrk4_burgers(u0, nu, 1.0, m) - u)) / scale for m in steps]


def test_burgers_cole_hopf_against_etdrk4():
    # ETDRK4's error is C dt^4: the difference to Cole-Hopf must fall 16x per halving of dt (>= 8x allowing for
    # the pre-asymptotic range), which shows it is the reference's time error, not a Cole-Hopf error; measured
    # relative 5e-10, 3e-11 for 400/800 steps
    d400, d800 = _burgers_against_etdrk4(0.1, 256, (400, 800))
    assert d400 / d800 > 8, (d400, d800)
    assert d800 < 1e-9


def test_burgers_cole_hopf_small_viscosity_against_etdrk4():
    # nu = 0.01 on 2048 points (the smallest nu of the default data set's verified range is 0.005)
    d400, d800 = _burgers_against_etdrk4(0.01, 2048, (400, 800))
    assert d400 / d800 > 8 and d800 < 1e-7, (d400, d800)


def test_burgers_cole_hopf_properties_and_small_viscosity_guard():
    _, u0 = grf(2, 4, 256, length_scale=0.1, periodic=True)
    u = burgers_cole_hopf(u0, 0.1, 1.0)
    # the mean is conserved (periodic conservation law) and t = 0 returns the initial condition
    np.testing.assert_allclose(u.mean(axis=1), u0.mean(axis=1), atol=1e-13)
    # at t = 0 nothing damps the aliasing of phi0's tail in phi_x: the error is at the level of the estimate
    # (measured 0.5-1.6x the estimate on these functions)
    u_0, estimate = burgers_cole_hopf(u0, 0.1, 0.0, return_estimate=True)
    assert np.all(np.max(np.abs(u_0 - u0), axis=1) <= 3 * estimate) and np.all(estimate < 1e-7)
    assert burgers_cole_hopf(u0[0], 0.1).shape == (256,)
    with pytest.raises(ValueError, match="too small"):
        burgers_cole_hopf(u0, 0.002, 1.0)
    with pytest.raises(ValueError, match="n even"):
        burgers_cole_hopf(u0[:, :255], 0.1)


def test_burgers_dataset_consistency():
    data = burgers(9, n_train=3, n_test=2, n_grid=64, n_queries=10, refine=4)
    assert data.train.u.shape == (3, 64) and data.train.s_grid.shape == (3, 64) and data.train.y.shape == (3, 10, 1)
    idx = np.rint(data.train.y[..., 0] * 64).astype(int)
    np.testing.assert_array_equal(np.take_along_axis(data.train.s_grid, idx, axis=1), data.train.s)
    # the output on the sensor grid equals Cole-Hopf solved on the coarse grid itself (the input is resolved)
    np.testing.assert_allclose(burgers_cole_hopf(data.train.u, 0.1), data.train.s_grid, atol=1e-9)
    assert data.config["error_estimate"] <= 1e-6
