"""Poisson equation on the L-shaped domain, with a finite-difference reference solution.

Problem: -Δu = 1 in the L-shape Ω = (-1, 1)² minus a closed quadrant, u = 0 on ∂Ω. There is no closed form; at
the re-entrant corner (the origin, interior angle 3π/2) the solution behaves like c r^(2/3) sin(2θ/3), so ∇u is
unbounded there and low-order methods converge slowly.

Reference (written here; no library solves this small problem more simply): the five-point finite-difference
Laplacian on the uniform grid of spacing h = 2/n (the edges x = 0, y = 0 are grid lines for even n), solved by a
sparse LU factorisation (``scipy.sparse.linalg.splu``, minimum-degree ordering of A + Aᵀ), on three grids n0, 2 n0,
4 n0. Near the corner the error expands as e(h) ≈ a h^(4/3) + b h² + ..., the h^(4/3) term coming from the
r^(2/3) singularity (exponent 2·2/3). Two Richardson steps at the nodes of the coarsest grid remove both terms:

    v_h = (2^(4/3) u_(h/2) - u_h) / (2^(4/3) - 1),     w = (4 v_(h/2) - v_h) / 3.

Measured (float64; ``tests/test_zoo_lshape.py`` checks the orders):

* the solver on manufactured solutions: for sin(πx) sin(πy) (zero on the whole L boundary) the max error falls by
  4.00 per halving of h (second order); for r^(2/3) sin(2θ/3) + sin(πx) sin(πy) (Dirichlet data from it) the
  max error, at the node next to the corner, falls by 1.58 = 2^(2/3) and the RMS error by 3.5 -> 2.6 (-> 2^(4/3));
  the extrapolation from (32, 64, 128) lowers the RMS error at the nodes of the coarsest grid 16x below the
  plain n = 128 solution (1.7e-5 vs 2.7e-4), but not the max error next to the corner (3e-4, order h^(2/3));
* for -Δu = 1: successive plain solutions differ by ratios 2.4-2.8 per halving (2^(4/3) = 2.52); relative L2
  error of the plain n = 512 solution ~2e-4;
* extrapolations from (64, 128, 256) and (128, 256, 512) differ by 2.7e-5 relative L2 (8.6e-5 max) at the nodes
  of the 64-grid; the default (128, 256, 512) and (256, 512, 1024) differ by 8.4e-6 relative L2 (5.4e-5 max, at
  the nodes next to the corner) at the nodes of the 128-grid: the default reference is accurate to ~1e-5, about
  100x below the 1e-3 that PINNs are asked for.

``exact`` interpolates (:func:`reference_tables`): the corner singular function c r^(2/3) sin(2θ/3) (times
(1 - x²)(1 - y²), which vanishes on the outer edges) is subtracted (c fitted to the extrapolated values near the
corner: c = 0.3755 at the default resolution, 0.3753 at 256), the rest is interpolated bilinearly on the finest
grid, and the extrapolation corrections are added where they are known (v - u_(h/4) on the h/2-grid, w - v on the
h-grid), interpolated bilinearly. At the nodes of the coarsest grid ``exact`` returns the extrapolated values w (up
to rounding), and the evaluation points are exactly these nodes, so the error metric has no interpolation error.
Between nodes (default vs resolution 256, 20 000 uniform random points): 8.0e-6 relative L2, 3.6e-5 max (5.0e-6
for r >= 0.025); without the subtraction and the middle grid the corner cells erred by up to 1e-3. On exact samples
of 0.37 r^(2/3) sin(2θ/3) + sin(πx) sin(πy) the interpolation error is that of the smooth part, at most
(h/4)² π² / 4 (tests).

Limitation (measured, not removed): within about two coarse cells of the corner (r < 0.02 at the default
resolution, where u ~ 0.01-0.03) the reference is uncertain pointwise by up to ~5e-4 (default vs resolution 256;
8.6e-4 for 64 vs 128): there the error expansion in h does not hold and the extrapolation corrections are of that
size. This contributes ~1e-5 to relative L2 errors over the domain. Removing it would take the singular function
into the solve itself (solve for u - c S with c determined jointly).
"""

from __future__ import annotations

import functools

import jax.numpy as jnp
import numpy as np
import scipy.sparse
import scipy.sparse.linalg

from .. import geometry
from .. import operators as ops
from ._conditions import dirichlet
from ._core import Problem, Term, integer

_SINGULAR = 4.0 / 3.0  # leading error exponent of the five-point scheme at the 3π/2 corner (2 · 2/3)


def _interior(n: int) -> np.ndarray:
    """Nodes (i, j) of the grid x_i = -1 + 2i/n strictly inside the L-shape with quadrant 4 removed: (n+1, n+1)."""
    i = np.arange(n + 1)
    inner = (i > 0) & (i < n)
    mask = inner[:, None] & inner[None, :]
    removed = (i[:, None] >= n // 2) & (i[None, :] <= n // 2)  # x >= 0 and y <= 0 (closed quadrant, its edges)
    return mask & ~removed


def fd_poisson_lshape(n: int, f=None, g=None) -> np.ndarray:
    """Five-point finite differences for -Δu = f in the L-shape (-1, 1)² minus [0, 1] x [-1, 0], u = g on ∂Ω.

    Args:
        n: intervals per side of the square (even, >= 4); spacing h = 2/n, nodes x_i = -1 + 2i/n.
        f: right-hand side, a vectorised ``f(x, y)`` (default 1).
        g: boundary data, a vectorised ``g(x, y)`` (default 0), used at the boundary nodes.

    Returns:
        Nodal values ``U[i, j] ≈ u(x_i, y_j)``, float64 ``(n + 1, n + 1)``; g on the boundary nodes, 0 at the
        nodes of the removed open quadrant.
    """
    if n < 4 or n % 2:
        raise ValueError(f"fd_poisson_lshape: n must be an even integer >= 4, got {n!r}")
    h = 2.0 / n
    x = np.linspace(-1.0, 1.0, n + 1)
    mask = _interior(n)
    idx = np.full(mask.shape, -1, dtype=np.int64)
    idx[mask] = np.arange(int(mask.sum()))
    I, J = np.nonzero(mask)
    me = idx[I, J]
    rhs = h * h * (np.ones(I.size) if f is None else np.asarray(f(x[I], x[J]), dtype=np.float64))
    rows, cols, vals = [me], [me], [np.full(I.size, 4.0)]
    for di, dj in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        nb = idx[I + di, J + dj]
        inside = nb >= 0
        rows.append(me[inside])
        cols.append(nb[inside])
        vals.append(-np.ones(int(inside.sum())))
        if g is not None:
            out = ~inside
            rhs[out] += np.asarray(g(x[I[out] + di], x[J[out] + dj]), dtype=np.float64)
    A = scipy.sparse.csc_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(I.size, I.size)
    )
    # A is symmetric positive definite; with a symmetric ordering and no pivoting SuperLU is a sparse Cholesky
    lu = scipy.sparse.linalg.splu(A, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                                  options={"SymmetricMode": True})
    U = np.zeros((n + 1, n + 1))
    if g is not None:
        X, Y = np.meshgrid(x, x, indexing="ij")
        i = np.arange(n + 1)
        edge = (i[:, None] % n == 0) | (i[None, :] % n == 0)
        edge |= ((i[:, None] == n // 2) & (i[None, :] <= n // 2)) | ((i[None, :] == n // 2) & (i[:, None] >= n // 2))
        U[edge] = np.asarray(g(X[edge], Y[edge]), dtype=np.float64)
    U[mask] = lu.solve(rhs)
    return U


def richardson(u1: np.ndarray, u2: np.ndarray, u3: np.ndarray) -> np.ndarray:
    """Two Richardson steps removing the h^(4/3) and h² error terms from solutions on h, h/2, h/4.

    Args:
        u1, u2, u3: nodal values on grids of n, 2n and 4n intervals, shapes (n+1)², (2n+1)², (4n+1)².

    Returns:
        The extrapolated values at the nodes of the coarsest grid, ``(n + 1, n + 1)``.
    """
    a, b, c = u1, u2[::2, ::2], u3[::4, ::4]
    q = 2.0**_SINGULAR
    v1 = (q * b - a) / (q - 1.0)
    v2 = (q * c - b) / (q - 1.0)
    return (4.0 * v2 - v1) / 3.0


def _singular_np(x, y):
    """The corner singular function S = (1 - x²)(1 - y²) r^(2/3) sin(2θ/3), θ = atan2(y, x) in [0, 2π): r^(2/3)
    sin(2θ/3) is harmonic and zero on both re-entrant edges of the quadrant-4 L-shape, the factor makes S zero on the
    outer edges too (so subtracting it keeps the boundary values exactly zero)."""
    theta = np.mod(np.arctan2(y, x), 2.0 * np.pi)
    return (1 - x * x) * (1 - y * y) * np.hypot(x, y) ** (2.0 / 3.0) * np.sin(2.0 * theta / 3.0)


def _singular(x, y):
    """:func:`_singular_np` in jnp, with a finite (zero) gradient at the corner itself."""
    at_corner = (x == 0) & (y == 0)
    xs, ys = jnp.where(at_corner, 1.0, x), jnp.where(at_corner, 0.0, y)  # keeps atan2 and r^(-1/3) finite
    theta = jnp.mod(jnp.arctan2(ys, xs), 2.0 * np.pi)
    s = (1 - x * x) * (1 - y * y) * (xs * xs + ys * ys) ** (1.0 / 3.0) * jnp.sin(2.0 * theta / 3.0)
    return jnp.where(at_corner, 0.0, s)


def corner_coefficient(w: np.ndarray, radius: float = 0.3) -> float:
    """Least-squares estimate of c in u ≈ c r^(2/3) sin(2θ/3) + ... from nodal values ``w`` near the corner.

    Fits c S + a r^(4/3) sin(4θ/3) + r² (b1 + b2 cos 2θ + b3 sin 2θ) to the nodes with 0 < r < ``radius`` (S of
    :func:`_singular_np`, which is r^(2/3) sin(2θ/3) (1 + O(r²)) near the corner).
    """
    n = w.shape[0] - 1
    x = np.linspace(-1.0, 1.0, n + 1)
    X, Y = np.meshgrid(x, x, indexing="ij")
    r = np.hypot(X, Y)
    theta = np.mod(np.arctan2(Y, X), 2.0 * np.pi)
    m = _interior(n) & (r < radius)
    basis = [_singular_np(X, Y), r ** (4 / 3) * np.sin(4 * theta / 3), r**2,
             r**2 * np.cos(2 * theta), r**2 * np.sin(2 * theta)]
    coef = np.linalg.lstsq(np.column_stack([b[m] for b in basis]), w[m], rcond=None)[0]
    return float(coef[0])


@functools.lru_cache(maxsize=4)
def reference_tables(resolution: int) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """The reference for -Δu = 1 on the quadrant-4 L-shape (cached per resolution).

    With u1, u2, u4 the five-point solutions on n = resolution, 2n, 4n intervals, v the one-step (h^(4/3))
    extrapolation on the 2n-grid and w the two-step one on the n-grid (:func:`richardson`), the reference is

        u(x) = I_4n[u4 - c S](x) + c S(x) + I_2n[v - u4](x) + I_n[w - v](x),

    with I_m the bilinear interpolant on the m-grid, S the corner singular function and c its coefficient
    (:func:`corner_coefficient`). At the nodes of the n-grid it equals w exactly (in exact arithmetic), at the other
    nodes of the 2n-grid it equals v plus an interpolated h² correction; subtracting c S keeps the bilinear
    interpolation of the corner cells accurate.

    Returns:
        ``(c, fine, mid, coarse)``: c; u4 - c S on the 4n-grid ``(4n+1, 4n+1)``; v - u4 on the 2n-grid; w - v on
        the n-grid.
    """
    u1, u2, u4 = (fd_poisson_lshape(m * resolution) for m in (1, 2, 4))
    q = 2.0**_SINGULAR
    v = (q * u4[::2, ::2] - u2) / (q - 1.0)
    w = richardson(u1, u2, u4)
    c = corner_coefficient(w)
    x = np.linspace(-1.0, 1.0, 4 * resolution + 1)
    X, Y = np.meshgrid(x, x, indexing="ij")
    return c, u4 - c * _singular_np(X, Y), v - u4[::2, ::2], w - v[::2, ::2]


def _bilinear(table: jnp.ndarray, n: int, x: jnp.ndarray, y: jnp.ndarray) -> jnp.ndarray:
    """Bilinear interpolation of nodal values ``table: (n+1, n+1)`` on the grid of [-1, 1]² with n intervals."""
    h = 2.0 / n
    fx, fy = (x + 1.0) / h, (y + 1.0) / h
    i = jnp.clip(jnp.floor(fx), 0, n - 1)
    j = jnp.clip(jnp.floor(fy), 0, n - 1)
    sx, sy = fx - i, fy - j
    i, j = i.astype(jnp.int32), j.astype(jnp.int32)
    flat = jnp.reshape(table, (-1,))
    k = i * (n + 1) + j
    v00, v01, v10, v11 = flat[k], flat[k + 1], flat[k + n + 1], flat[k + n + 2]
    return (1 - sx) * ((1 - sy) * v00 + sy * v01) + sx * ((1 - sy) * v10 + sy * v11)


def interpolant(c: float, fine: np.ndarray, mid: np.ndarray, coarse: np.ndarray, turns: int = 0):
    """The point function ``u(p: (2,)) -> ()`` of the tables of :func:`reference_tables` (jnp-traceable).

    ``turns`` rotates a point of the L-shape without quadrant q = 4 + turns (mod 4) onto the quadrant-4 L-shape
    (by -90° per turn), where the tables live: the problem is invariant under rotations.
    """
    n = coarse.shape[0] - 1

    def u(p):
        x, y = p[0], p[1]
        for _ in range(turns):
            x, y = y, -x  # inverse of the +90° rotation (x, y) -> (-y, x) that built the domain
        tables = [jnp.asarray(t, dtype=p.dtype) for t in (fine, mid, coarse)]
        return (_bilinear(tables[0], 4 * n, x, y) + c * _singular(x, y) + _bilinear(tables[1], 2 * n, x, y)
                + _bilinear(tables[2], n, x, y))

    return u


@functools.lru_cache(maxsize=16)
def lshape_reference_fn(resolution: int, removed_quadrant: int = 4):
    """The reference solution of ``poisson_lshape`` as a point function ``u(p: (2,)) -> ()`` (cached)."""
    return interpolant(*reference_tables(resolution), turns=(removed_quadrant - 4) % 4)


def _lshape_pde(u, x):
    return -ops.laplacian(u)(x) - 1.0


def _eval_size(domain: geometry.Domain, resolution: int) -> int:
    """The ``eval_size`` whose grid on the L-shape has the nodes of the coarsest reference grid: ``Polygon.grid``
    filters a tensor grid of the bounding box with about ``4 n / 3`` points (the L has 3/4 of the box's area)."""
    n = (resolution + 1) ** 2 * 3 // 4
    axis = np.unique(domain.grid(n)[:, 0])
    if axis.size != resolution + 1 or not np.allclose(axis, np.linspace(-1.0, 1.0, resolution + 1), atol=1e-15):
        raise RuntimeError(f"poisson_lshape: the evaluation grid does not match the reference grid ({axis.size})")
    return n


def poisson_lshape(removed_quadrant=4, resolution=128) -> Problem:
    """Poisson equation -Δu = 1 on the L-shaped domain with u = 0 on the boundary (reference: fine FD solve).

    Math: -Δu = 1 in Ω = (-1, 1)² minus the closed quadrant ``removed_quadrant``, u = 0 on ∂Ω. The re-entrant corner
    at the origin makes u ~ c r^(2/3) sin(2θ/3) there (unbounded gradient). The default removes quadrant 4,
    [0, 1] x [-1, 0] (``sciml_jax.geometry.LShape()``, the finite-element convention); DeepXDE's example
    ``examples/pinn_forward/Poisson_Lshape.py`` (Lu et al., SIAM Review 63 (2021)) solves this same equation on the
    L-shape without quadrant 1, ``removed_quadrant=1``; the solutions are rotations of each other.

    There is no closed form; ``exact`` is a reference computed at construction (cached): five-point finite
    differences on grids of resolution, 2·resolution and 4·resolution intervals per side of the square, two Richardson
    steps for the h^(4/3) and h² error terms, and bilinear interpolation (module ``sciml_jax.problems._lshape`` gives
    the measurements). With the default resolution 128 the reference is accurate to ~1e-5 in relative L2 at the
    evaluation points (vs 1e-3 targeted by PINNs) and between them (interpolation with the corner singularity
    subtracted); construction solves three sparse systems (12k, 49k, 196k unknowns), about 1-4 s.

    Evaluation points: the nodes of the coarsest grid (spacing 2/resolution) in the closed L-shape, where ``exact``
    returns the extrapolated values with no interpolation error ((resolution + 1)² · 3/4 points, 12 545 for 128).

    Terms: ``pde`` (interior): -Δu - 1; ``bc`` (boundary): u.

    Args:
        removed_quadrant: the quadrant removed from the square, 1, 2, 3 or 4 (counter-clockwise from x, y > 0).
        resolution: intervals per side of the coarsest grid, an even integer >= 16 (the finest grid has 4x as many).

    Returns:
        A :class:`Problem` on ``sciml_jax.geometry.LShape(removed_quadrant)``, points ``(2,)``.
    """
    owner = "poisson_lshape"
    q = integer(removed_quadrant, "removed_quadrant", owner, low=1)
    if q > 4:
        raise ValueError(f"{owner}: removed_quadrant must be 1, 2, 3 or 4, got {removed_quadrant!r}")
    res = integer(resolution, "resolution", owner, low=16)
    if res % 2:
        raise ValueError(f"{owner}: resolution must be an even integer >= 16, got {resolution!r}")
    exact = lshape_reference_fn(res, q)
    domain = geometry.LShape(q)
    return Problem(
        name="poisson_lshape",
        domain=domain,
        terms={"pde": Term("interior", _lshape_pde, "-Laplace(u) - 1 = 0"),
               "bc": dirichlet(0.0, description="u = 0 on the boundary")},
        exact=exact,
        default_points={"interior": 2000, "boundary": 400},
        order=2,
        options={"removed_quadrant": q, "resolution": res},
        description=(
            f"-Laplace(u) = 1 on the L-shape (-1, 1)^2 minus quadrant {q}, u = 0 on the boundary; reference: "
            f"five-point finite differences on {res}/{2 * res}/{4 * res} intervals with Richardson extrapolation "
            "(h^(4/3) and h^2 terms), ~1e-5 relative L2 at the grid nodes."
        ),
        eval_size=_eval_size(domain, res),
        eval_method="grid",
    )
