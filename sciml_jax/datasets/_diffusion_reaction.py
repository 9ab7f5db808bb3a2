"""The 1-D diffusion-reaction operator of Lu et al. (2021): source u(x) -> solution s(x, t).

    s_t = D s_xx + k s^2 + u(x),   (x, t) in [0, 1] x [0, T],   s(x, 0) = 0,   s(0, t) = s(1, t) = 0

(D = k = 0.01, T = 1 in the DeepONet paper), solved by our own finite differences: second-order central
differences in x on a uniform grid, Crank-Nicolson in t with the reaction term k s^2 treated implicitly (the CN
average of k s^2 at both time levels) and Newton's method for the nonlinear step, whose Jacobian
I - tau theta (D L + 2 k diag(s)) is tridiagonal. All B functions are stepped together: their tridiagonal systems
form one block-diagonal banded system solved by one ``scipy.linalg.solve_banded`` call per Newton iteration.

Start-up: the data are incompatible at the corners (s = 0 on the boundary but s_t(0, 0) = u(0) != 0). Crank-
Nicolson does not damp such a non-smooth start (its amplification factor tends to -1 on stiff modes), so a
Rannacher start (the first steps as two backward-Euler half steps each; Rannacher 1984) is available
(``rannacher=``). It is off by default because the incompatibility here is mild: measured on GRF sources (l = 0.2)
with h = dt, plain CN converges at second order already (max difference between successive grids N = 25..400:
ratios 3.96, 3.99, 4.00) with errors about 2x smaller than with two Rannacher steps (ratios 3.2, 3.6, 3.9). At
the default resolution (h = dt = 1/198) the max error is about 1e-4 for max|s| ~ 2.6 (Richardson estimate).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.linalg

from ._core import OperatorDataset, OperatorSplit, _freeze, check_int, check_positive, rng
from ._grf import _spline, grf


def solve_diffusion_reaction(
    source: np.ndarray | Callable[[float], np.ndarray],
    *,
    n_x: int,
    n_steps: int,
    D: float = 0.01,
    k: float = 0.01,
    T: float = 1.0,
    save_every: int = 1,
    rannacher: int = 0,
    newton_tol: float = 1e-13,
    max_newton: int = 30,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Solves s_t = D s_xx + k s^2 + f on [0, 1] x [0, T] with zero initial and boundary values, for B sources.

    Args:
        source: f as an array ``(B, n_x)`` (time independent, values at the grid nodes) or a callable
            ``t -> (B, n_x)``.
        n_x: grid nodes x_i = i / (n_x - 1), boundaries included (>= 3).
        n_steps: time steps of size T / n_steps.
        D: diffusion coefficient > 0.
        k: reaction coefficient (any real).
        T: final time > 0.
        save_every: keep every ``save_every``-th time level (n_steps must be a multiple of it).
        rannacher: number of initial steps done as two backward-Euler half steps each (default 0: plain CN).
        newton_tol: stop Newton when max|delta| <= newton_tol * max(1, max|s|).
        max_newton: most Newton iterations per (half) step; more raises ``RuntimeError``.

    Returns:
        ``(x, t, s)``: nodes ``(n_x,)``, saved times ``(n_save,)`` (t = 0 included) and ``s: (B, n_save, n_x)``.
    """
    owner = "solve_diffusion_reaction"
    n_x = check_int(n_x, "n_x", owner, minimum=3)
    n_steps = check_int(n_steps, "n_steps", owner)
    D = check_positive(D, "D", owner)
    T = check_positive(T, "T", owner)
    save_every = check_int(save_every, "save_every", owner)
    rannacher = check_int(rannacher, "rannacher", owner, minimum=0)
    if n_steps % save_every:
        raise ValueError(f"{owner}: n_steps={n_steps} must be a multiple of save_every={save_every}")
    if not np.isfinite(k):
        raise ValueError(f"{owner}: k must be a finite real, got {k!r}")
    x = np.linspace(0.0, 1.0, n_x)
    if callable(source):
        f_of_t = source
    else:
        constant = np.asarray(source, float)

        def f_of_t(t):
            return constant

    f0 = np.asarray(f_of_t(0.0), float)
    if f0.ndim != 2 or f0.shape[1] != n_x:
        raise ValueError(f"{owner}: the source must have shape (B, n_x={n_x}), got {f0.shape}")
    B, M = f0.shape[0], n_x - 2
    h2 = (x[1] - x[0]) ** 2
    dt = T / n_steps

    def lap(s):  # (B, M) interior values, zero Dirichlet data
        p = np.pad(s, ((0, 0), (1, 1)))
        return (p[:, :-2] - 2 * p[:, 1:-1] + p[:, 2:]) / h2

    # off-diagonal pattern of the block-diagonal system: no coupling across the blocks of different functions
    couple = np.ones(B * M)
    couple[::M] = 0.0  # ab[0, j] = a[j - 1, j] for j the first row of a block
    upper_mask = couple
    lower_mask = np.roll(couple, -1)  # ab[2, j] = a[j + 1, j] for j the last row of a block

    def step(s_n, t, tau, theta):
        f_old = np.asarray(f_of_t(t), float)[:, 1:-1]
        f_new = np.asarray(f_of_t(t + tau), float)[:, 1:-1]
        explicit = s_n + tau * (1 - theta) * (D * lap(s_n) + k * s_n**2 + f_old) + tau * theta * f_new
        s = s_n.copy()
        off = -tau * theta * D / h2
        for _ in range(max_newton):
            F = s - tau * theta * (D * lap(s) + k * s**2) - explicit
            ab = np.empty((3, B * M))
            ab[0] = off * upper_mask
            ab[1] = (1 + tau * theta * (2 * D / h2 - 2 * k * s)).ravel()
            ab[2] = off * lower_mask
            delta = scipy.linalg.solve_banded((1, 1), ab, -F.ravel(), check_finite=False).reshape(B, M)
            s = s + delta
            if np.max(np.abs(delta)) <= newton_tol * max(1.0, np.max(np.abs(s))):
                return s
        raise RuntimeError(f"{owner}: Newton did not converge in {max_newton} iterations at t = {t:.6g}")

    s = np.zeros((B, M))
    saved = [np.zeros((B, n_x))]
    for n in range(n_steps):
        t = n * dt
        if n < rannacher:
            s = step(s, t, dt / 2, 1.0)
            s = step(s, t + dt / 2, dt / 2, 1.0)
        else:
            s = step(s, t, dt, 0.5)
        if (n + 1) % save_every == 0:
            saved.append(np.pad(s, ((0, 0), (1, 1))))
    t_saved = np.linspace(0.0, T, n_steps // save_every + 1)
    return x, t_saved, np.stack(saved, axis=1)


def diffusion_reaction(
    key: Any = 0,
    *,
    n_train: int = 1000,
    n_test: int = 200,
    n_sensors: int = 100,
    n_times: int = 100,
    n_queries: int = 100,
    length_scale: float = 0.2,
    variance: float = 1.0,
    D: float = 0.01,
    k: float = 0.01,
    T: float = 1.0,
    refine: int = 2,
    n_grf: int = 1001,
    chunk: int = 250,
) -> OperatorDataset:
    """Data set of the diffusion-reaction operator u -> s (module docstring), u ~ GRF(rbf, l) on [0, 1].

    The output grid is the sensors ``linspace(0, 1, m)`` times ``linspace(0, T, n_times)``; the solver runs on a
    grid ``refine`` times finer in x and t (n_x = refine (m - 1) + 1 nodes, refine (n_times - 1) steps), so the
    output nodes are solver nodes and no interpolation is involved. Each function gets ``n_queries`` distinct
    random output nodes y = (x, t) (time last), sorted in (t, x) order; ``s_grid`` is s(sensors, T).

    Args:
        key: int seed >= 0 or JAX PRNG key.
        n_train, n_test: number of functions per split.
        n_sensors: m sensors (>= 3).
        n_times: time levels of the output grid (>= 2).
        n_queries: Q query nodes per function (<= m n_times).
        length_scale, variance: GRF of the source (defaults of the paper: l = 0.2).
        D, k, T: PDE coefficients and final time (paper: D = k = 0.01, T = 1).
        refine: solver refinement factor over the output grid, in x and in t.
        n_grf: GRF grid size.
        chunk: functions solved together (bounds the memory to chunk x n_times x m solution values).

    Returns:
        An :class:`OperatorDataset` with ``y: (B, Q, 2)``.
    """
    owner = "diffusion_reaction"
    n_train = check_int(n_train, "n_train", owner)
    n_test = check_int(n_test, "n_test", owner)
    n_sensors = check_int(n_sensors, "n_sensors", owner, minimum=3)
    n_times = check_int(n_times, "n_times", owner, minimum=2)
    n_queries = check_int(n_queries, "n_queries", owner)
    if n_queries > n_sensors * n_times:
        raise ValueError(f"{owner}: n_queries must be <= n_sensors * n_times = {n_sensors * n_times}, got {n_queries}")
    length_scale = check_positive(length_scale, "length_scale", owner)
    variance = check_positive(variance, "variance", owner)
    D = check_positive(D, "D", owner)
    if isinstance(k, bool) or not isinstance(k, (int, float, np.integer, np.floating)) or not np.isfinite(k):
        raise ValueError(f"{owner}: k must be a finite real, got {k!r}")
    T = check_positive(T, "T", owner)
    refine = check_int(refine, "refine", owner)
    n_grf = check_int(n_grf, "n_grf", owner, minimum=4)
    chunk = check_int(chunk, "chunk", owner)
    t0 = time.perf_counter()
    sensors = np.linspace(0.0, 1.0, n_sensors)
    times = np.linspace(0.0, T, n_times)
    n_x = refine * (n_sensors - 1) + 1
    x_solver = np.linspace(0.0, 1.0, n_x)
    splits = {}
    for i, (name, n) in enumerate((("train", n_train), ("test", n_test))):
        x, u = grf(key, n, n_grf, length_scale=length_scale, variance=variance, stream=2 * i)
        gen = rng(key, 2 * i + 1)
        # Q distinct output nodes per function, flat index = t_index * m + x_index, sorted
        flat = np.sort(np.argsort(gen.random((n, n_sensors * n_times)), axis=1)[:, :n_queries], axis=1)
        source = _spline(x, u, periodic=False)(x_solver).T  # (n, n_x)
        s_q = np.empty((n, n_queries))
        s_grid = np.empty((n, n_sensors))
        for a in range(0, n, chunk):
            b = min(a + chunk, n)
            _, _, s = solve_diffusion_reaction(
                source[a:b], n_x=n_x, n_steps=refine * (n_times - 1), D=D, k=k, T=T, save_every=refine
            )
            s = s[:, :, ::refine].reshape(b - a, -1)  # (chunk, n_times * m), (t, x) order
            s_q[a:b] = np.take_along_axis(s, flat[a:b], axis=1)
            s_grid[a:b] = s[:, -n_sensors:]
        y = np.stack([sensors[flat % n_sensors], times[flat // n_sensors]], axis=-1)
        splits[name] = OperatorSplit(u=source[:, ::refine], y=y, s=s_q, s_grid=s_grid)
    config = dict(
        n_train=n_train,
        n_test=n_test,
        n_sensors=n_sensors,
        n_times=n_times,
        n_queries=n_queries,
        length_scale=length_scale,
        variance=variance,
        D=D,
        k=k,
        T=T,
        refine=refine,
        n_grf=n_grf,
        solver_grid=(n_x, refine * (n_times - 1)),
        seconds=time.perf_counter() - t0,
    )
    return OperatorDataset("diffusion_reaction", sensors, splits["train"], splits["test"], _freeze(config))
