"""1-D Allen-Cahn benchmark with a Fourier pseudo-spectral / ETDRK4 reference solution.

Problem (Raissi et al. 2019; Wight & Zhao 2020; jaxpi): u_t = d u_xx + r (u - u³) on x in [-1, 1] (periodic),
t in [0, 1], u(x, 0) = x² cos(πx), d = 1e-4, r = 5. Interfaces of width ~sqrt(2d/r) = 0.0063 form and sharpen;
the initial data are periodic but have a kink at x = ±1 (u0'(±1) = ∓2), smoothed by diffusion at t > 0.

Reference solver (written here; no installed library offers a stiff spectral integrator):

* space: Fourier pseudo-spectral on n equispaced points x_j = -1 + 2j/n, L = r - d k² (k = π m) in Fourier space,
  N(u) = -r u³ pointwise (no dealiasing; the solution is resolved);
* initial data: the exact Fourier coefficients of x² cos(πx) (closed form, truncated at |m| < n/2) instead of
  samples: samples alias the 1/m² tail of the kink into every mode, an O(1/n) error that dominated the
  comparison of n = 2044 and 4088 for t <= 0.05 (1e-4 max) and was still 6e-6 at t = 0.05 with n = 4088;
* time: ETDRK4 (Cox & Matthews 2002) with the φ-function coefficients evaluated by the contour integrals of
  Kassam & Trefethen, SIAM J. Sci. Comput. 26 (2005) (64 points on circles of radius 1 around each h L);
  ``substeps`` steps per output interval of 0.005.

Measured (float64; differences on the benchmark grid, 512 x 201 points, ``tests/test_zoo_allen_cahn.py`` checks the
orders):

* time step: halving h changes the solution by 1.0e-7, 5.1e-9, 3.0e-10, 1.9e-11 (max, n = 2044, h = 5e-3 ...
  6.25e-4): ratios 20, 17, 16, fourth order; the default h = 1.25e-3 (substeps 4) is 2.7e-11 (relative L2) from
  h = 3.1e-4;
* modes: n = 1022 vs 4088: 4.4e-5 max for t >= 0.005, 3.2e-10 for t >= 0.05; n = 2044 (default) vs 4088:
  1.7e-7 max for t >= 0.005, 1.7e-11 for t >= 0.05, 1.2e-9 relative L2 over t > 0. The remaining error sits at
  the kink x = ±1 in the first time levels, where the true solution has a sqrt(d t) boundary layer.

``exact`` interpolates a table of u, u_x, u_t, u_xt (u_t = d u_xx + r (u - u³) from the PDE, x-derivatives
spectral) at the n grid points and the 201 benchmark times by bicubic Hermite interpolation (C¹, O(h⁴) in each
variable); the level t = 0 holds the exact u0 and its derivatives, and at t = 0 exactly ``exact`` returns
x² cos(πx). Interpolation error (vs. the spectral solution): 5e-8 relative L2 and 2e-6 max at random (x, t) with
t >= 0.005; up to 2e-5 inside the first time interval next to x = ±1 (the boundary layer above). The standard
evaluation grid x = linspace(-1, 1, 512), t = linspace(0, 1, 201) lies on table nodes when n is a multiple of 511
(default 2044 = 4 · 511), so the error metric sees the solver values directly.
"""

from __future__ import annotations

import functools
import math

import jax.numpy as jnp
import numpy as np

from .. import geometry
from .. import operators as ops
from ._conditions import initial, periodic
from ._core import Problem, Term, integer, real

_PI = math.pi
_T1 = 1.0
_LEVELS = 201  # t = 0, 0.005, ..., 1: the benchmark's time grid (jaxpi, Raissi et al.)
_EVAL_X = 512  # x = linspace(-1, 1, 512): Chebfun's 511-point periodic grid plus its end point x = 1


# --------------------------------------------------------------------------------------------- the solver


def initial_coefficients(n: int) -> np.ndarray:
    """Exact Fourier coefficients of u0 = x² cos(πx) on [-1, 1), in ``numpy.fft.rfft`` convention for the grid
    x_j = -1 + 2j/n, truncated below the Nyquist mode: ``(n // 2 + 1,)`` complex.

    With I(a) = ∫_{-1}^{1} x² cos(aπx) dx = 4 (-1)^a / (aπ)² (a ≠ 0), 2/3 (a = 0), the cosine coefficients are
    a_m = ½ (I(m + 1) + I(m - 1)) (a_0 halved); on the grid, cos(mπx_j) has rfft coefficient (n/2)(-1)^m.
    """
    m = np.arange(n // 2 + 1)

    def integral(a):
        safe = np.where(a == 0, 1.0, a * _PI)
        return np.where(a == 0, 2.0 / 3.0, 4.0 * (-1.0) ** np.abs(a) / safe**2)

    a = 0.5 * (integral(m + 1) + integral(m - 1))
    a[0] *= 0.5
    out = 0.5 * n * a * (-1.0) ** m
    out[0] = n * a[0]
    if n % 2 == 0:
        out[-1] = 0.0
    return out.astype(np.complex128)


def etdrk4_coefficients(hL: np.ndarray, contour_points: int = 64) -> tuple[np.ndarray, ...]:
    """ETDRK4 coefficients for a diagonal linear part, by the contour integrals of Kassam & Trefethen (2005).

    For z = hL: E = e^z, E2 = e^(z/2), Q = (e^(z/2) - 1)/z and the three fourth-order weights
    f1 = (-4 - z + e^z (4 - 3z + z²))/z³, f2 = (2 + z + e^z (z - 2))/z³, f3 = (-4 - 3z - z² + e^z (4 - z))/z³,
    each averaged over ``contour_points`` points of the circle |ζ - z| = 1, which avoids the cancellation of the
    direct formulas near z = 0. The scheme multiplies Q, f1, f2, f3 by the step h.

    Returns:
        ``(E, E2, Q, f1, f2, f3)`` real arrays of the shape of ``hL``.
    """
    r = np.exp(1j * _PI * (np.arange(1, contour_points + 1) - 0.5) / contour_points)
    z = hL[..., None] + r
    ez = np.exp(z)

    def mean(v):
        return np.real(np.mean(v, axis=-1))

    q = mean((np.exp(z / 2) - 1.0) / z)
    f1 = mean((-4.0 - z + ez * (4.0 - 3.0 * z + z**2)) / z**3)
    f2 = mean((2.0 + z + ez * (z - 2.0)) / z**3)
    f3 = mean((-4.0 - 3.0 * z - z**2 + ez * (4.0 - z)) / z**3)
    return np.exp(hL), np.exp(hL / 2), q, f1, f2, f3


def solve_allen_cahn(
    diffusion: float,
    reaction: float,
    modes: int,
    substeps: int,
    levels: int = _LEVELS,
    t1: float = _T1,
    u0_hat: np.ndarray | None = None,
) -> np.ndarray:
    """Fourier pseudo-spectral ETDRK4 solution of u_t = d u_xx + r (u - u³), periodic on [-1, 1).

    Args:
        diffusion, reaction: d > 0 and r.
        modes: number of grid points n (even); x_j = -1 + 2j/n.
        substeps: ETDRK4 steps per output interval, h = t1 / ((levels - 1) substeps).
        levels: number of output times, t = linspace(0, t1, levels).
        t1: final time.
        u0_hat: initial rfft coefficients ``(n // 2 + 1,)`` (default :func:`initial_coefficients`).

    Returns:
        rfft coefficients at the output times, complex ``(levels, n // 2 + 1)`` (``numpy.fft.irfft(.., n)`` gives
        the grid values).
    """
    n = modes
    k = _PI * np.arange(n // 2 + 1)
    lin = reaction - diffusion * k**2
    h = t1 / ((levels - 1) * substeps)
    E, E2, Q, f1, f2, f3 = etdrk4_coefficients(h * lin)
    Q, f1, f2, f3 = h * Q, h * f1, h * f2, h * f3

    def nonlinear(v):
        return -reaction * np.fft.rfft(np.fft.irfft(v, n=n) ** 3)

    v = initial_coefficients(n) if u0_hat is None else np.asarray(u0_hat, dtype=np.complex128)
    out = np.empty((levels, n // 2 + 1), dtype=np.complex128)
    out[0] = v
    for j in range(1, levels):
        for _ in range(substeps):
            nv = nonlinear(v)
            a = E2 * v + Q * nv
            na = nonlinear(a)
            b = E2 * v + Q * na
            nb = nonlinear(b)
            c = E2 * a + Q * (2.0 * nb - nv)
            nc = nonlinear(c)
            v = E * v + f1 * nv + 2.0 * f2 * (na + nb) + f3 * nc
        out[j] = v
    return out


def _u0(x):
    return x**2 * jnp.cos(_PI * x)


@functools.lru_cache(maxsize=4)
def reference_tables(diffusion: float, reaction: float, modes: int, substeps: int) -> np.ndarray:
    """The Hermite table of the reference: ``(4, 201, modes)`` float64 holding u, u_x, u_t, u_xt at the grid
    points x_j = -1 + 2j/modes and the times t = 0, 0.005, ..., 1 (cached per argument tuple).

    Level 0 holds the exact u0 = x² cos(πx) and its derivatives (at the kink x = -1 the one-sided slopes ∓2 are
    averaged to 0); the other levels come from :func:`solve_allen_cahn`, with spectral x-derivatives and
    u_t = d u_xx + r (u - u³).
    """
    n = modes
    coef = solve_allen_cahn(diffusion, reaction, n, substeps)
    k = _PI * np.arange(n // 2 + 1)
    ik = 1j * k
    if n % 2 == 0:
        ik[-1] = 0.0  # the Nyquist mode of a real grid function has no derivative
    u = np.fft.irfft(coef, n=n, axis=1)
    u_x = np.fft.irfft(ik * coef, n=n, axis=1)
    u_t = diffusion * np.fft.irfft(-(k**2) * coef, n=n, axis=1) + reaction * (u - u**3)
    u_xt = np.fft.irfft(ik * np.fft.rfft(u_t, axis=1), n=n, axis=1)
    x = -1.0 + 2.0 * np.arange(n) / n
    s, co = np.sin(_PI * x), np.cos(_PI * x)
    u0 = x**2 * co
    d1 = 2 * x * co - _PI * x**2 * s
    d2 = 2 * co - 4 * _PI * x * s - _PI**2 * x**2 * co
    d3 = -6 * _PI * s - 6 * _PI**2 * x * co + _PI**3 * x**2 * s
    d1[0] = d3[0] = 0.0  # x = -1: the periodic kink, one-sided values averaged
    u[0], u_x[0] = u0, d1
    u_t[0] = diffusion * d2 + reaction * (u0 - u0**3)
    u_xt[0] = diffusion * d3 + reaction * (1.0 - 3.0 * u0**2) * d1
    return np.stack([u, u_x, u_t, u_xt])


def _hermite(s, h, f0, f1, d0, d1):
    """Cubic Hermite interpolation on [0, h] at s in [0, 1] from values f and derivatives d at both ends."""
    s2, s3 = s * s, s * s * s
    return (2 * s3 - 3 * s2 + 1) * f0 + (s3 - 2 * s2 + s) * h * d0 + (3 * s2 - 2 * s3) * f1 + (s3 - s2) * h * d1


@functools.lru_cache(maxsize=8)
def allen_cahn_reference_fn(diffusion: float, reaction: float, modes: int, substeps: int):
    """The reference as a point function ``u(p: (2,), c) -> ()`` of (x, t), jnp-traceable (cached).

    It is valid for the coefficients it was computed for: if ``c["diffusion"]`` or ``c["reaction"]`` differ (by
    more than 1e-6 relative; a problem changed by ``replace(coeffs=...)``) it returns NaN rather than a wrong
    reference. x is taken modulo the period; t outside [0, 1] extrapolates the first or last interval.
    """
    table_np = reference_tables(diffusion, reaction, modes, substeps)
    n, hx, ht = modes, 2.0 / modes, _T1 / (_LEVELS - 1)

    def u(p, c):
        x, t = p[0], p[-1]
        table = jnp.reshape(jnp.asarray(table_np, dtype=p.dtype), (4, -1))
        fx = (x + 1.0) / hx
        i = jnp.floor(fx)
        sx = fx - i
        i0 = jnp.mod(i, n).astype(jnp.int32)
        i1 = jnp.mod(i0 + 1, n)
        ft = t / ht
        j = jnp.clip(jnp.floor(ft), 0, _LEVELS - 2)
        st = ft - j
        j = j.astype(jnp.int32)

        def at_level(jj):
            a, b = table[:, jj * n + i0], table[:, jj * n + i1]  # (4,): u, u_x, u_t, u_xt at both nodes
            return _hermite(sx, hx, a[0], b[0], a[1], b[1]), _hermite(sx, hx, a[2], b[2], a[3], b[3])

        u_a, ut_a = at_level(j)
        u_b, ut_b = at_level(j + 1)
        val = _hermite(st, ht, u_a, u_b, ut_a, ut_b)
        val = jnp.where(t == 0, _u0(jnp.mod(x + 1.0, 2.0) - 1.0), val)
        same = (jnp.abs(c["diffusion"] - diffusion) <= 1e-6 * abs(diffusion)) & (
            jnp.abs(c["reaction"] - reaction) <= 1e-6 * abs(reaction)
        )
        return jnp.where(same, val, jnp.nan)

    return u


# --------------------------------------------------------------------------------------------- the problem


def _ac_pde(u, x, c):
    return (ops.time_derivative(u)(x) - c["diffusion"] * ops.laplacian(u, dims=(0,))(x)
            + c["reaction"] * (u(x) ** 3 - u(x)))


def _ac_u0(x):
    return _u0(x[0])


def standard_grid() -> np.ndarray:
    """The benchmark's evaluation grid: x = linspace(-1, 1, 512) times t = linspace(0, 1, 201), rows space-major
    (time varies fastest, as ``SpaceTime.grid``): ``(102912, 2)`` float64."""
    xs = np.linspace(-1.0, 1.0, _EVAL_X)
    ts = np.linspace(0.0, _T1, _LEVELS)
    return np.column_stack([np.repeat(xs, ts.size), np.tile(ts, xs.size)])


class _StandardGridProblem(Problem):
    """A :class:`Problem` whose evaluation points are the benchmark's 512 x 201 grid (:func:`standard_grid`)."""

    def eval_points(self) -> np.ndarray:
        return standard_grid()


def allen_cahn_1d(diffusion=1e-4, reaction=5.0, modes=2044, substeps=4) -> Problem:
    """1-D Allen-Cahn equation, periodic, the PINN benchmark of Raissi et al. (2019) and Wight & Zhao (2020).

    Math: u_t = d u_xx + r (u - u³) on x in [-1, 1], t in [0, 1], with d = 1e-4 and r = 5 by default,

        u(x, 0) = x² cos(πx),     u(-1, t) = u(1, t),     u_x(-1, t) = u_x(1, t).

    There is no closed form; ``exact`` is a reference computed at construction (cached per options): Fourier
    pseudo-spectral in x with ``modes`` points, ETDRK4 in time (Kassam & Trefethen 2005) with ``substeps`` steps per
    0.005, exact Fourier coefficients of the initial data, and bicubic Hermite interpolation between the grid points
    and the 201 output times (module ``sciml_jax.problems._allen_cahn`` gives the method and the measurements).
    With the defaults it differs from a solve with twice the modes by 1.2e-9 relative L2 over t > 0 (1.7e-7 max,
    next to the initial kink at x = ±1), from one with a quarter of the time step by 2.7e-11; construction takes
    about 1-2 s. ``exact`` returns NaN when the coefficients no longer match the table (after ``replace``): build
    a new problem for other coefficients.

    Evaluation points: the benchmark grid x = linspace(-1, 1, 512), t = linspace(0, 1, 201) (102 912 points; the
    grid of jaxpi's ``allen_cahn.mat``, made with Chebfun's ``spin`` on 511 points), which lies on the reference's
    nodes for the default ``modes``.

    Sources: M. Raissi, P. Perdikaris, G. E. Karniadakis, J. Comput. Phys. 378 (2019) (section 4.2.2);
    C. L. Wight, J. Zhao, "Solving Allen-Cahn and Cahn-Hilliard equations using the adaptive physics informed neural
    networks", Commun. Comput. Phys. 29 (2021); S. Wang, S. Sankaran, P. Perdikaris, jaxpi
    (``examples/allen_cahn``).

    Terms: ``pde`` (interior): u_t - d u_xx + r (u³ - u); ``ic`` (initial): u - x² cos(πx); ``bc`` (boundary):
    u(-1, t) - u(1, t) and u_x(-1, t) - u_x(1, t).

    Args:
        diffusion: d, a real > 0.
        reaction: r, a real >= 0.
        modes: grid points of the reference solver, an even integer >= 64 (multiples of 511 put the evaluation grid
            on the reference's nodes).
        substeps: ETDRK4 steps per output interval 0.005, an integer >= 1.

    Returns:
        A :class:`Problem` on ``SpaceTime(Interval(-1, 1), 0, 1)``, points ``(2,)`` = (x, t).
    """
    owner = "allen_cahn_1d"
    d = real(diffusion, "diffusion", owner, low=0.0)
    r = real(reaction, "reaction", owner, low=0.0, strict=False)
    n = integer(modes, "modes", owner, low=64)
    if n % 2:
        raise ValueError(f"{owner}: modes must be an even integer >= 64, got {modes!r}")
    s = integer(substeps, "substeps", owner, low=1)
    exact = allen_cahn_reference_fn(d, r, n, s)
    return _StandardGridProblem(
        name="allen_cahn_1d",
        domain=geometry.SpaceTime(geometry.Interval(-1.0, 1.0), 0.0, _T1),
        terms={
            "pde": Term("interior", _ac_pde, "u_t - d u_xx + r (u^3 - u) = 0"),
            "ic": initial(_ac_u0, description="u(x, 0) - x^2 cos(pi x) = 0"),
            "bc": periodic(0, -1.0, 1.0, derivatives=1,
                           description="u(-1, t) - u(1, t) = 0 and u_x(-1, t) - u_x(1, t) = 0 (periodic)"),
        },
        exact=exact,
        default_points={"interior": 2000, "boundary": 200, "initial": 512},
        order=2,
        options={"diffusion": d, "reaction": reaction if isinstance(reaction, int) and not isinstance(reaction, bool)
                 else r, "modes": n, "substeps": s},
        description=(
            f"u_t = d u_xx + r (u - u^3) on [-1, 1] x [0, 1], u(x, 0) = x^2 cos(pi x), periodic (Raissi et al. "
            f"2019); reference: Fourier pseudo-spectral ({n} points) + ETDRK4 ({s} steps per 0.005)."
        ),
        eval_size=_EVAL_X * _LEVELS,
        eval_method="grid",
        coeffs={"diffusion": d, "reaction": r},
    )
