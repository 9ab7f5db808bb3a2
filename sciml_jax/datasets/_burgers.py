"""The Burgers operator u0 -> u(., T) on the periodic domain [0, 1) (the setting of Li et al. 2021, FNO), by Cole-Hopf.

    u_t + u u_x = nu u_xx,   x in [0, 1) periodic,   u(x, 0) = u0(x),   nu = 0.1 by default.

Galilean shift: with c = mean(u0) (conserved) and w0 = u0 - c, u(x, t) = c + w(x - c t, t), where w solves
Burgers from the zero-mean w0. Zero mean makes W(x) = int_0^x w0 periodic, so Cole-Hopf applies on the torus:

    phi0 = exp(-(W - max W) / (2 nu)) in (0, 1],   phi^_k(t) = phi0^_k exp(-4 pi^2 k^2 nu t),
    w = -2 nu phi_x / phi,

the heat equation solved exactly in Fourier space. The shift by c t is the factor exp(-2 pi i k c t) on phi^_k.
Subtracting max W (a constant factor of phi, which cancels in phi_x / phi) keeps phi0 <= 1, so nothing
overflows for any nu; the exponent is the log-sum-exp scaling of the ratio. What limits small nu is the dynamic
range: where phi(x, T) / max phi0 approaches the round-off of the FFT (n eps), phi_x / phi loses digits; and phi0
must be resolved on the grid (its spectrum must decay to round-off before the Nyquist mode, or it aliases).
:func:`burgers_cole_hopf` estimates the resulting error of u from both and raises when it exceeds ``max_error``.

Verified against an independent solve, pseudo-spectral (2/3-dealiased) Burgers with ETDRK4 time stepping
(Kassam & Trefethen 2005; tests/test_datasets.py), for u0 ~ GRF(periodic_rbf, l = 0.1, unit variance), T = 1.
Max |u_CH - u_ETDRK4| at 400 / 800 / 1600 steps (falling 16x per halving: the reference's own dt^4 error, so
Cole-Hopf is at least that accurate), and the estimate of :func:`burgers_cole_hopf`:

    nu = 0.1,   n = 256:   1.8e-10  1.2e-11  7.7e-13    estimate 8e-13
    nu = 0.02,  n = 1024:  1.4e-8   8.9e-10  5.7e-11    estimate 3e-11
    nu = 0.01,  n = 2048:  3.7e-7   2.1e-8   1.3e-9     estimate 9e-10
    nu = 0.005, n = 4096:  4.9e-6   3.1e-7   1.9e-8     estimate 2e-7
    nu = 0.003, n = 8192:  2.3e-5   1.5e-6   9.3e-8     estimate 9e-4 (rejected by the default max_error)
    nu = 0.002, n = 8192:  2.6e-4   2.4e-4   2.4e-4     estimate 2e+1 (Cole-Hopf has lost accuracy; rejected)

(max |u| ~ 0.4-1.2). So the verified range is nu in [0.003, 0.1]; with the data set's defaults (4096 solve points)
the guard accepts nu >= 0.005. The estimate is conservative at small nu (the dynamic-range term dominates).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ._core import OperatorDataset, OperatorSplit, _freeze, check_int, check_positive, rng
from ._grf import grf


def burgers_cole_hopf(
    u0: np.ndarray, nu: float, t: float = 1.0, *, max_error: float = 1e-6, return_estimate: bool = False
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Exact periodic Burgers solution u(x_j, t) on the grid x_j = j / n from u0 on the same grid (module docstring).

    u0 is taken as its trigonometric interpolant (the Nyquist coefficient of an even grid is dropped, so u0 should
    be resolved: negligible energy near Nyquist).

    Args:
        u0: initial values ``(B, n)`` (or ``(n,)``), n even >= 4.
        nu: viscosity > 0.
        t: time >= 0.
        max_error: raise ``ValueError`` when the estimated max error of u (from the unresolved tail of phi0's
            spectrum and the FFT round-off, relative to min phi; module docstring) exceeds this; ``inf`` disables
            the check.
        return_estimate: also return the per-function error estimates ``(B,)`` (absolute, max over x).

    Returns:
        ``u: (B, n)`` (or ``(n,)``), and the estimates if asked.
    """
    owner = "burgers_cole_hopf"
    nu = check_positive(nu, "nu", owner)
    t = check_positive(t, "t", owner, allow_zero=True)
    u0 = np.asarray(u0, float)
    single = u0.ndim == 1
    u0 = np.atleast_2d(u0)
    n = u0.shape[-1]
    if u0.ndim != 2 or n < 4 or n % 2:
        raise ValueError(f"{owner}: u0 must have shape (B, n) or (n,) with n even >= 4, got {np.shape(u0)}")
    k = np.arange(n // 2 + 1)
    ik = 2j * np.pi * k
    ik[-1] = 0.0  # Nyquist mode of an even grid: derivative and antiderivative set to 0
    c = u0.mean(axis=1, keepdims=True)
    w_hat = np.fft.rfft(u0 - c, axis=1)
    W_hat = np.zeros_like(w_hat)
    W_hat[:, 1:-1] = w_hat[:, 1:-1] / ik[1:-1]
    a = -np.fft.irfft(W_hat, n=n, axis=1) / (2 * nu)
    phi0 = np.exp(a - a.max(axis=1, keepdims=True))  # max phi0 = 1
    phi_hat = np.fft.rfft(phi0, axis=1)
    tail = np.max(np.abs(phi_hat[:, -max(2, n // 16) :]), axis=1, keepdims=True) / n  # top modes, forward norm
    phi_hat = phi_hat * np.exp(-4 * np.pi**2 * k**2 * nu * t - 2j * np.pi * k * c * t)
    phi = np.fft.irfft(phi_hat, n=n, axis=1)
    phi_x = np.fft.irfft(ik * phi_hat, n=n, axis=1)
    w = -2 * nu * phi_x / phi
    # error model (hand-written): aliasing of the unresolved tail of phi0 plus FFT round-off perturb phi by
    # d_phi and phi_x by d_phi_x, the latter weighted by the Nyquist wavenumber pi n and its heat decay; then
    # |du| <= (2 nu |d_phi_x| + |w| d_phi) / phi
    d_phi = tail + n * np.finfo(float).eps
    d_phi_x = d_phi * np.pi * n * np.exp(-((np.pi * n) ** 2) * nu * t) + n * np.finfo(float).eps * np.max(
        np.abs(phi_x), axis=1, keepdims=True
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        estimate = np.max((2 * nu * d_phi_x + np.abs(w) * d_phi) / phi, axis=1)
        estimate = np.where(np.min(phi, axis=1) > 0, estimate, np.inf)
    if not np.all(estimate <= max_error):
        worst = int(np.argmax(estimate))
        raise ValueError(
            f"{owner}: nu={nu:g} too small for this grid (n={n}): estimated error of u {estimate[worst]:.2e} > "
            f"max_error={max_error:g} for function {worst}; refine the grid or raise nu"
        )
    u = c + w
    u = u[0] if single else u
    return (u, estimate) if return_estimate else u


def burgers(
    key: Any = 0,
    *,
    n_train: int = 1000,
    n_test: int = 200,
    n_grid: int = 256,
    n_queries: int = 100,
    nu: float = 0.1,
    T: float = 1.0,
    length_scale: float = 0.1,
    variance: float = 1.0,
    refine: int = 16,
    max_error: float = 1e-6,
) -> OperatorDataset:
    """Data set of the periodic Burgers operator u0 -> u(., T), u0 ~ GRF(periodic_rbf, l) on [0, 1).

    u0 is sampled exactly (circulant factorisation) on a grid of ``refine * n_grid`` points, solved there by
    :func:`burgers_cole_hopf`, and both u0 and u(., T) are kept on the sensors x_j = j / n_grid. Each function
    gets ``n_queries`` distinct random sensor nodes y (sorted) as DeepONet queries; ``s_grid`` is u(sensors, T).
    The default GRF (l = 0.1, unit variance) replaces the FNO paper's N(0, 625 (-Delta + 25 I)^-2) measure by the
    periodic squared-exponential kernel of :func:`sciml_jax.datasets.periodic_rbf_kernel`.

    Args:
        key: int seed >= 0 or JAX PRNG key.
        n_train, n_test: number of functions per split.
        n_grid: sensors (even, >= 4).
        n_queries: Q query nodes per function (<= n_grid).
        nu: viscosity > 0; T: final time > 0.
        length_scale, variance: GRF of u0.
        refine: solve-grid refinement over the sensor grid (the Cole-Hopf phi0 is much less smooth than u0 for
            small nu).
        max_error: tolerance of the solver's error estimate (see :func:`burgers_cole_hopf`).

    Returns:
        An :class:`OperatorDataset` with ``y: (B, Q, 1)``.
    """
    owner = "burgers"
    n_train = check_int(n_train, "n_train", owner)
    n_test = check_int(n_test, "n_test", owner)
    n_grid = check_int(n_grid, "n_grid", owner, minimum=4)
    if n_grid % 2:
        raise ValueError(f"{owner}: n_grid must be even, got {n_grid}")
    n_queries = check_int(n_queries, "n_queries", owner)
    if n_queries > n_grid:
        raise ValueError(f"{owner}: n_queries must be <= n_grid = {n_grid}, got {n_queries}")
    nu = check_positive(nu, "nu", owner)
    T = check_positive(T, "T", owner)
    length_scale = check_positive(length_scale, "length_scale", owner)
    variance = check_positive(variance, "variance", owner)
    refine = check_int(refine, "refine", owner)
    max_error = check_positive(max_error, "max_error", owner)
    t0 = time.perf_counter()
    sensors = np.arange(n_grid) / n_grid
    splits, worst = {}, 0.0
    for i, (name, n) in enumerate((("train", n_train), ("test", n_test))):
        _, u0 = grf(key, n, refine * n_grid, length_scale=length_scale, variance=variance, periodic=True, stream=2 * i)
        u, est = burgers_cole_hopf(u0, nu, T, max_error=max_error, return_estimate=True)
        worst = max(worst, float(np.max(est)))
        idx = np.sort(np.argsort(rng(key, 2 * i + 1).random((n, n_grid)), axis=1)[:, :n_queries], axis=1)
        u_in, u_out = u0[:, ::refine], u[:, ::refine]
        splits[name] = OperatorSplit(
            u=u_in, y=sensors[idx][..., None], s=np.take_along_axis(u_out, idx, axis=1), s_grid=u_out
        )
    config = dict(
        n_train=n_train,
        n_test=n_test,
        n_grid=n_grid,
        n_queries=n_queries,
        nu=nu,
        T=T,
        length_scale=length_scale,
        variance=variance,
        refine=refine,
        max_error=max_error,
        error_estimate=worst,
        seconds=time.perf_counter() - t0,
    )
    return OperatorDataset("burgers", sensors, splits["train"], splits["test"], _freeze(config))
