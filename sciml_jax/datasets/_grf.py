"""Gaussian random fields on [0, 1]: squared-exponential kernels, sampled on a grid from an exact factorisation.

Two kernels (variance sigma^2, length scale l):

    rbf:           k(x, x') = sigma^2 exp(-(x - x')^2 / (2 l^2))                          on [0, 1]
    periodic_rbf:  k(x, x') = sigma^2 exp(-sin^2(pi (x - x')) / (2 pi^2 l^2))             on [0, 1) periodic

The periodic kernel is the squared-exponential of the chordal distance |e^{2 pi i x} - e^{2 pi i x'}| / (2 pi)
(MacKay 1998), scaled so that for |x - x'| << 1 it equals the rbf kernel with the same l.

Sampling (u = C^{1/2} xi, xi ~ N(0, I), so cov(u) = C exactly up to round-off):

* rbf on the uniform grid x_j = j / (n - 1): C = V diag(lambda) V^T by ``scipy.linalg.eigh``; eigenvalues below
  ``n * eps * ||C||_inf`` (>= n eps lambda_max) are round-off (C is numerically singular: its spectrum decays like
  a Gaussian), so they are dropped instead of adding a jitter (only the others are computed, by MRRR); the sample is
  ``V_r (sqrt(lambda_r) * xi)``, a truncated Karhunen-Loeve expansion whose truncation error is below round-off.
* periodic_rbf on x_j = j / n: C is circulant, diagonalised by the DFT; its eigenvalues are the real FFT of the
  first row (clipped at 0), and ``u = irfft(sqrt(lambda) * rfft(xi))`` is C^{1/2} xi in O(n log n).

As in Lu et al. (2021) the sampled grid values define the function everywhere by cubic-spline interpolation
(not-a-knot; the periodic case uses periodic splines), from which sensors and query points are evaluated.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import scipy.interpolate
import scipy.linalg

from ._core import check_int, check_positive, rng


def rbf_kernel(x1: np.ndarray, x2: np.ndarray, length_scale: float, variance: float = 1.0) -> np.ndarray:
    """Squared-exponential covariance ``sigma^2 exp(-(x1_i - x2_j)^2 / (2 l^2))``: ``(n1,), (n2,) -> (n1, n2)``."""
    d = np.subtract.outer(np.asarray(x1, float), np.asarray(x2, float))
    return variance * np.exp(-0.5 * (d / length_scale) ** 2)


def periodic_rbf_kernel(x1: np.ndarray, x2: np.ndarray, length_scale: float, variance: float = 1.0) -> np.ndarray:
    """Periodic squared-exponential covariance on [0, 1): ``sigma^2 exp(-sin^2(pi d) / (2 pi^2 l^2))``, d = x1 - x2."""
    d = np.subtract.outer(np.asarray(x1, float), np.asarray(x2, float))
    return variance * np.exp(-0.5 * (np.sin(np.pi * d) / (np.pi * length_scale)) ** 2)


def grf_grid(n_grid: int, periodic: bool = False) -> np.ndarray:
    """The sampling grid: ``linspace(0, 1, n_grid)`` (rbf) or ``arange(n_grid) / n_grid`` (periodic), ``(n_grid,)``."""
    return np.arange(n_grid) / n_grid if periodic else np.linspace(0.0, 1.0, n_grid)


def grf(
    key: Any,
    n_samples: int,
    n_grid: int,
    *,
    length_scale: float,
    variance: float = 1.0,
    periodic: bool = False,
    stream: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Samples of a zero-mean Gaussian random field on a uniform grid of [0, 1] (see the module docstring).

    Samples are drawn row by row from one standard-normal stream, so the first B rows do not depend on
    ``n_samples``: asking for more functions only appends new ones.

    Args:
        key: int seed >= 0 or JAX PRNG key.
        n_samples: number B of functions.
        n_grid: number n of grid points (the grid spacing must be <= length_scale / 4 to resolve the field).
        length_scale: l > 0.
        variance: sigma^2 > 0 (pointwise variance).
        periodic: the periodic kernel on [0, 1) instead of the rbf kernel on [0, 1].
        stream: index of the independent random stream of ``key`` to draw from.

    Returns:
        ``(x, u)``: the grid ``(n,)`` and the samples ``(B, n)``, float64.
    """
    owner = "grf"
    n_samples = check_int(n_samples, "n_samples", owner)
    n_grid = check_int(n_grid, "n_grid", owner, minimum=4)
    length_scale = check_positive(length_scale, "length_scale", owner)
    variance = check_positive(variance, "variance", owner)
    x = grf_grid(n_grid, periodic)
    h = x[1] - x[0]
    if h > length_scale / 4:
        raise ValueError(
            f"{owner}: grid spacing {h:.3g} must be <= length_scale / 4 = {length_scale / 4:.3g}; "
            f"raise n_grid to at least {int(np.ceil(4 / length_scale)) + 1}"
        )
    gen = rng(key, stream)
    if periodic:
        lam = np.clip(np.fft.rfft(periodic_rbf_kernel(x[:1], x, length_scale, variance)[0]).real, 0.0, None)
        xi = gen.standard_normal((n_samples, n_grid))
        return x, np.fft.irfft(np.sqrt(lam) * np.fft.rfft(xi, axis=-1), n=n_grid, axis=-1)
    basis = _rbf_basis(n_grid, length_scale, variance)  # (n, r)
    xi = gen.standard_normal((n_samples, basis.shape[1]))
    return x, xi @ basis.T


@functools.lru_cache(maxsize=8)
def _rbf_basis(n_grid: int, length_scale: float, variance: float) -> np.ndarray:
    """V_r diag(sqrt(lambda_r)) of the rbf covariance on the grid (cached: an eigh costs ~1 s for n = 1001)."""
    x = grf_grid(n_grid, periodic=False)
    K = rbf_kernel(x, x, length_scale, variance)
    # only the eigenpairs above round-off: lambda > n eps ||K||_inf (||K||_inf >= lambda_max), by MRRR (evr)
    threshold = n_grid * np.finfo(float).eps * np.max(np.sum(K, axis=1))
    lam, vec = scipy.linalg.eigh(K, subset_by_value=(threshold, np.inf), driver="evr")
    basis = vec * np.sqrt(lam)
    basis.setflags(write=False)
    return basis


def interpolate(x: np.ndarray, u: np.ndarray, points: np.ndarray, periodic: bool = False) -> np.ndarray:
    """Cubic-spline interpolation of grid samples to points, shared or per function.

    Args:
        x: grid ``(n,)``; for ``periodic`` the grid of [0, 1) without the end point 1.
        u: samples ``(B, n)``.
        points: ``(M,)`` shared points or ``(B, M)`` points per function.
        periodic: periodic spline of period 1 (points are wrapped into [0, 1)).

    Returns:
        ``(B, M)``.
    """
    spline = _spline(x, u, periodic)
    points = np.asarray(points, float)
    if periodic:
        points = np.mod(points, 1.0)
    if points.ndim == 1:
        return spline(points).T  # spline values are (M, B): the function axis last
    return eval_rows(spline, points)


def _spline(x: np.ndarray, u: np.ndarray, periodic: bool) -> scipy.interpolate.CubicSpline:
    if periodic:
        x = np.append(x, 1.0)
        u = np.concatenate([u, u[:, :1]], axis=1)
        return scipy.interpolate.CubicSpline(x, u.T, bc_type="periodic")
    return scipy.interpolate.CubicSpline(x, u.T, bc_type="not-a-knot")


def eval_rows(pp: scipy.interpolate.PPoly, points: np.ndarray) -> np.ndarray:
    """Evaluates column b of a vector-valued piecewise polynomial at its own points ``points[b]``.

    ``pp(points)`` would evaluate every function at every row's points (B^2 Q work); this gathers the coefficients
    of each point's interval instead (hand-written: scipy has no row-wise evaluation). ``pp.c: (k, n - 1, B)``.

    Args:
        pp: a ``scipy.interpolate.PPoly`` (e.g. a ``CubicSpline`` or its antiderivative) with values ``(B,)``.
        points: ``(B, M)`` inside the breakpoint range.

    Returns:
        ``(B, M)``.
    """
    breaks, c = pp.x, pp.c
    idx = np.clip(np.searchsorted(breaks, points, side="right") - 1, 0, len(breaks) - 2)  # (B, M)
    dx = points - breaks[idx]
    cols = np.arange(points.shape[0])[:, None]
    out = np.zeros(points.shape)
    for k in range(c.shape[0]):  # Horner in the local coordinate dx
        out = out * dx + c[k, idx, cols]
    return out
