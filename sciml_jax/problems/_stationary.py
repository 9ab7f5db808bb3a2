"""Stationary (elliptic) problems: Poisson 1-D / n-D, Helmholtz, biharmonic 1-D / 2-D, a sharp interior layer.

Every problem is manufactured: an exact solution u* is chosen, the forcing f and any boundary data are derived from
it in closed form (written out below; the tests check them against automatic differentiation of u*), and the
residual terms vanish at u* up to rounding.
"""

from __future__ import annotations

import math

import jax.numpy as jnp

from .. import geometry
from .. import operators as ops
from ._core import Problem, Term, integer, real, reals

_PI = math.pi


def _as_given(value, checked: float):
    """The option as it is recorded in ``Problem.options``: ints stay ints, everything else the checked float."""
    return value if isinstance(value, int) and not isinstance(value, bool) else checked


def _dirichlet(exact) -> Term:
    return Term("boundary", lambda u, x: u(x) - exact(x), "u - g = 0 with g the exact solution (Dirichlet)")


# ---------------------------------------------------------------------------------------------- Poisson 1-D


def poisson_1d(k=1, amplitudes=None, frequencies=None) -> Problem:
    """1-D Poisson equation with a (multi-)frequency sine solution.

    Math: -u''(x) = f(x) on [0, 1], u = g at x = 0 and x = 1, with exact solution

        u*(x) = sum_j a_j sin(k_j pi x),     f(x) = sum_j a_j (k_j pi)^2 sin(k_j pi x),

    and g = u* on the boundary (g = 0 when every k_j is an integer). By default a single mode, a = (1,), k = (k,);
    passing ``frequencies`` (and optionally ``amplitudes``) gives a multi-scale solution, the classic setting of
    spectral-bias experiments (high frequencies are learned last).

    Terms: ``pde`` (interior): -u'' - f; ``bc`` (boundary): u - g.

    Args:
        k: frequency of the single mode, a real > 0; only used when ``frequencies`` is None.
        amplitudes: amplitudes a_j, one per frequency (default all 1); requires ``frequencies``.
        frequencies: frequencies k_j > 0 (reals; integers give homogeneous boundary data).

    Returns:
        A :class:`Problem` on ``Interval(0, 1)``, points ``(1,)``.
    """
    owner = "poisson_1d"
    kf = real(k, "k", owner, low=0.0)
    if frequencies is None:
        if amplitudes is not None:
            raise ValueError(f"{owner}: amplitudes={amplitudes!r} needs frequencies (one amplitude per frequency)")
        freqs, amps = (kf,), (1.0,)
    else:
        if kf != 1.0:
            raise ValueError(
                f"{owner}: give either k (single mode) or frequencies (several), got k={k!r} and "
                f"frequencies={frequencies!r}"
            )
        freqs = reals(frequencies, "frequencies", owner, low=0.0)
        if amplitudes is None:
            amps = (1.0,) * len(freqs)
        else:
            amps = reals(amplitudes, "amplitudes", owner, length=len(freqs))
        if not any(amps):
            raise ValueError(
                f"{owner}: amplitudes must not all be zero (the solution would vanish), got {amplitudes!r}"
            )

    def exact(x):
        kk = jnp.asarray(freqs, dtype=x.dtype) * _PI
        return jnp.sum(jnp.asarray(amps, dtype=x.dtype) * jnp.sin(kk * x[0]))

    def forcing(x):
        kk = jnp.asarray(freqs, dtype=x.dtype) * _PI
        return jnp.sum(jnp.asarray(amps, dtype=x.dtype) * kk**2 * jnp.sin(kk * x[0]))

    def pde(u, x):
        return -ops.laplacian(u)(x) - forcing(x)

    modes = " + ".join(f"{a:g} sin({f:g} pi x)" for a, f in zip(amps, freqs))
    return Problem(
        name="poisson_1d",
        domain=geometry.Interval(0.0, 1.0),
        terms={"pde": Term("interior", pde, "-u'' - f = 0"), "bc": _dirichlet(exact)},
        exact=exact,
        default_points={"interior": 128, "boundary": 2},
        order=2,
        options={
            "k": _as_given(k, kf),
            "amplitudes": None if amplitudes is None else list(amps),
            "frequencies": None if frequencies is None else list(freqs),
        },
        description=f"-u'' = f on [0, 1], Dirichlet data from the exact solution u = {modes}.",
        forcing=forcing,
        eval_size=1000,
    )


# ---------------------------------------------------------------------------------------------- Poisson n-D


def poisson_nd(dim=2, k=1) -> Problem:
    """Poisson equation on the unit cube in any dimension with a product-of-sines solution.

    Math: -Laplace(u) = f on [0, 1]^dim, u = g on the boundary, with

        u*(x) = prod_i sin(k pi x_i),     f(x) = dim (k pi)^2 u*(x),

    and g = u* on the boundary (zero for integer k).

    Terms: ``pde`` (interior): -Laplace(u) - f; ``bc`` (boundary): u - g.

    Evaluation points: the tensor grid for dim <= 3 (1000, 100^2, 20^3 points), 8192 Sobol points (seed 0) of the
    interior for dim >= 4, where a tensor grid would be too coarse or too large.

    Args:
        dim: number of coordinates, an integer >= 1.
        k: frequency, a real > 0.

    Returns:
        A :class:`Problem` on ``Box((0,)*dim, (1,)*dim)``, points ``(dim,)``.
    """
    owner = "poisson_nd"
    dim = integer(dim, "dim", owner, low=1)
    kf = real(k, "k", owner, low=0.0)
    kpi = kf * _PI

    def exact(x):
        return jnp.prod(jnp.sin(kpi * x))

    def forcing(x):
        return dim * kpi**2 * exact(x)

    def pde(u, x):
        return -ops.laplacian(u)(x) - forcing(x)

    if dim == 1:
        points = {"interior": 128, "boundary": 2}
    elif dim == 2:
        points = {"interior": 1000, "boundary": 200}
    else:
        points = {"interior": 2000, "boundary": 100 * dim}
    eval_size, eval_method = {1: (1000, "grid"), 2: (10_000, "grid"), 3: (8000, "grid")}.get(dim, (8192, "sobol"))
    return Problem(
        name="poisson_nd",
        domain=geometry.Box((0.0,) * dim, (1.0,) * dim),
        terms={"pde": Term("interior", pde, "-Laplace(u) - f = 0"), "bc": _dirichlet(exact)},
        exact=exact,
        default_points=points,
        order=2,
        options={"dim": dim, "k": _as_given(k, kf)},
        description=(
            f"-Laplace(u) = f on [0, 1]^{dim}, Dirichlet data from the exact solution "
            f"u = prod_i sin({kf:g} pi x_i)."
        ),
        forcing=forcing,
        eval_size=eval_size,
        eval_method=eval_method,
    )


# ---------------------------------------------------------------------------------------------- Helmholtz 2-D


def helmholtz_2d(a1=1, a2=4, k=1.0) -> Problem:
    """2-D Helmholtz equation of Wang, Teng & Perdikaris (2021), the gradient-pathology benchmark.

    Math: Laplace(u) + k^2 u = f on [-1, 1]^2, u = g on the boundary, with

        u*(x, y) = sin(a1 pi x) sin(a2 pi y),     f = (k^2 - (a1^2 + a2^2) pi^2) u*,

    and g = u* on the boundary (zero for integer a1, a2). Reference: S. Wang, Y. Teng, P. Perdikaris,
    "Understanding and mitigating gradient flow pathologies in physics-informed neural networks", SIAM J. Sci.
    Comput. 43 (2021) (a1 = 1, a2 = 4, k = 1).

    Terms: ``pde`` (interior): Laplace(u) + k^2 u - f; ``bc`` (boundary): u - g.

    Args:
        a1: frequency along x, a real > 0.
        a2: frequency along y, a real > 0.
        k: wave number, a real >= 0.

    Returns:
        A :class:`Problem` on ``Box((-1, -1), (1, 1))``, points ``(2,)``.
    """
    owner = "helmholtz_2d"
    a1f = real(a1, "a1", owner, low=0.0)
    a2f = real(a2, "a2", owner, low=0.0)
    kf = real(k, "k", owner, low=0.0, strict=False)

    def exact(x):
        return jnp.sin(a1f * _PI * x[0]) * jnp.sin(a2f * _PI * x[1])

    def forcing(x):
        return (kf**2 - (a1f**2 + a2f**2) * _PI**2) * exact(x)

    def pde(u, x):
        return ops.laplacian(u)(x) + kf**2 * u(x) - forcing(x)

    return Problem(
        name="helmholtz_2d",
        domain=geometry.Box((-1.0, -1.0), (1.0, 1.0)),
        terms={"pde": Term("interior", pde, "Laplace(u) + k^2 u - f = 0"), "bc": _dirichlet(exact)},
        exact=exact,
        default_points={"interior": 2000, "boundary": 400},
        order=2,
        options={"a1": _as_given(a1, a1f), "a2": _as_given(a2, a2f), "k": _as_given(k, kf)},
        description=(
            f"Laplace(u) + k^2 u = f on [-1, 1]^2 with k = {kf:g}, exact u = sin({a1f:g} pi x) sin({a2f:g} pi y) "
            "(Wang, Teng & Perdikaris 2021), Dirichlet data from u."
        ),
        forcing=forcing,
    )


# ---------------------------------------------------------------------------------------------- biharmonic


def biharmonic_1d(k=1) -> Problem:
    """1-D biharmonic (beam) equation, simply supported: two boundary conditions on each end.

    Math: u''''(x) = f(x) on [0, 1], u = g and u'' = h at x = 0, 1, with

        u*(x) = sin(k pi x),   f = (k pi)^4 sin(k pi x),   g = u*,   h = u*'' = -(k pi)^2 sin(k pi x).

    Terms: ``pde`` (interior): u'''' - f; ``bc`` (boundary): u - g; ``bc_uxx`` (boundary): u'' - h.

    Args:
        k: frequency, a real > 0.

    Returns:
        A :class:`Problem` on ``Interval(0, 1)``, points ``(1,)``.
    """
    owner = "biharmonic_1d"
    kf = real(k, "k", owner, low=0.0)
    kpi = kf * _PI

    def exact(x):
        return jnp.sin(kpi * x[0])

    def forcing(x):
        return kpi**4 * jnp.sin(kpi * x[0])

    def exact_xx(x):
        return -(kpi**2) * jnp.sin(kpi * x[0])

    def pde(u, x):
        return ops.biharmonic(u)(x) - forcing(x)

    def bc_uxx(u, x):
        return ops.laplacian(u)(x) - exact_xx(x)

    return Problem(
        name="biharmonic_1d",
        domain=geometry.Interval(0.0, 1.0),
        terms={
            "pde": Term("interior", pde, "u'''' - f = 0"),
            "bc": _dirichlet(exact),
            "bc_uxx": Term("boundary", bc_uxx, "u'' - h = 0 with h = u*'' (simply supported end)"),
        },
        exact=exact,
        default_points={"interior": 128, "boundary": 2},
        order=4,
        options={"k": _as_given(k, kf)},
        description=f"u'''' = f on [0, 1], u and u'' given at both ends, exact u = sin({kf:g} pi x).",
        forcing=forcing,
        eval_size=1000,
    )


def biharmonic_2d(k=1) -> Problem:
    """2-D biharmonic (plate) equation with Navier (simply supported) boundary conditions.

    Math: Laplace^2(u) = f on [0, 1]^2, u = g and Laplace(u) = h on the boundary, with

        u*(x, y) = sin(k pi x) sin(k pi y),   f = 4 (k pi)^4 u*,   g = u*,   h = Laplace(u*) = -2 (k pi)^2 u*.

    Terms: ``pde`` (interior): Laplace^2(u) - f; ``bc`` (boundary): u - g; ``bc_lap`` (boundary): Laplace(u) - h.

    Args:
        k: frequency, a real > 0.

    Returns:
        A :class:`Problem` on ``Box((0, 0), (1, 1))``, points ``(2,)``.
    """
    owner = "biharmonic_2d"
    kf = real(k, "k", owner, low=0.0)
    kpi = kf * _PI

    def exact(x):
        return jnp.sin(kpi * x[0]) * jnp.sin(kpi * x[1])

    def forcing(x):
        return 4.0 * kpi**4 * exact(x)

    def exact_lap(x):
        return -2.0 * kpi**2 * exact(x)

    def pde(u, x):
        return ops.biharmonic(u)(x) - forcing(x)

    def bc_lap(u, x):
        return ops.laplacian(u)(x) - exact_lap(x)

    return Problem(
        name="biharmonic_2d",
        domain=geometry.Box((0.0, 0.0), (1.0, 1.0)),
        terms={
            "pde": Term("interior", pde, "Laplace^2(u) - f = 0"),
            "bc": _dirichlet(exact),
            "bc_lap": Term("boundary", bc_lap, "Laplace(u) - h = 0 with h = Laplace(u*) (Navier condition)"),
        },
        exact=exact,
        default_points={"interior": 1000, "boundary": 200},
        order=4,
        options={"k": _as_given(k, kf)},
        description=(
            f"Laplace^2(u) = f on [0, 1]^2, u and Laplace(u) given on the boundary (simply supported plate), "
            f"exact u = sin({kf:g} pi x) sin({kf:g} pi y)."
        ),
        forcing=forcing,
    )


# ---------------------------------------------------------------------------------------------- sharp layer


def sharp_gradient_2d(width=0.02, center=(-0.05, -0.05), radius=0.7) -> Problem:
    """Poisson problem with a circular interior layer: Mitchell's "wave front" benchmark.

    Math: -Laplace(u) = f on [0, 1]^2, u = g on the boundary, with (alpha = 1 / width, c = center, r0 = radius)

        r = |x - c|,   s = alpha (r - r0),   u*(x) = atan(s),
        f = -(u*_rr + u*_r / r) = 2 alpha^2 s / (1 + s^2)^2 - alpha / (r (1 + s^2)),

    and g = u* on the boundary. u* rises by about pi across a circular front of radius r0 and thickness ~ width, a
    layer whose steepness is tuned by one number. Reference: W. F. Mitchell, "A collection of 2D elliptic problems
    for testing adaptive grid refinement algorithms", Appl. Math. Comput. 220 (2013), problem "wave front"
    (center (-0.05, -0.05), r0 = 0.7, alpha = 20 "mild" to 1000 "steep").

    Terms: ``pde`` (interior): -Laplace(u) - f; ``bc`` (boundary): u - g.

    Args:
        width: layer thickness 1 / alpha, a real > 0.
        center: centre c of the circle, two reals; it must lie outside the closed unit square (u* is not smooth at
            c).
        radius: r0, a real > 0.

    Returns:
        A :class:`Problem` on ``Box((0, 0), (1, 1))``, points ``(2,)``.
    """
    owner = "sharp_gradient_2d"
    wf = real(width, "width", owner, low=0.0)
    c = reals(center, "center", owner, length=2)
    r0 = real(radius, "radius", owner, low=0.0)
    if all(0.0 <= ci <= 1.0 for ci in c):
        raise ValueError(
            f"{owner}: center must lie outside the closed unit square [0, 1]^2 (the solution is not differentiable "
            f"at the centre), got {center!r}"
        )
    alpha = 1.0 / wf

    def _radius(x):
        return jnp.sqrt((x[0] - c[0]) ** 2 + (x[1] - c[1]) ** 2)

    def exact(x):
        return jnp.arctan(alpha * (_radius(x) - r0))

    def forcing(x):
        r = _radius(x)
        s = alpha * (r - r0)
        q = 1.0 + s**2
        return 2.0 * alpha**2 * s / q**2 - alpha / (r * q)

    def pde(u, x):
        return -ops.laplacian(u)(x) - forcing(x)

    return Problem(
        name="sharp_gradient_2d",
        domain=geometry.Box((0.0, 0.0), (1.0, 1.0)),
        terms={"pde": Term("interior", pde, "-Laplace(u) - f = 0"), "bc": _dirichlet(exact)},
        exact=exact,
        default_points={"interior": 2000, "boundary": 400},
        order=2,
        options={"width": wf, "center": list(c), "radius": _as_given(radius, r0)},
        description=(
            f"-Laplace(u) = f on [0, 1]^2 with the wave-front solution u = atan((|x - c| - r0) / w), "
            f"c = ({c[0]:g}, {c[1]:g}), r0 = {r0:g}, w = {wf:g} (Mitchell 2013); Dirichlet data from u."
        ),
        forcing=forcing,
    )
