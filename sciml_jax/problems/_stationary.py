"""Stationary (elliptic) problems: Poisson 1-D / n-D, Helmholtz, biharmonic 1-D / 2-D, a sharp interior layer.

Every problem is manufactured: an exact solution u* is chosen, the forcing f and any boundary data are derived from
it in closed form (written out below; the tests check them against automatic differentiation of u*), and the
residual terms vanish at u* up to rounding.

Term, exact and forcing functions are module-level functions of the point and the coefficients ``c`` (the
factory's real-valued options), so problems that differ only in those values share compiled training steps.
"""

from __future__ import annotations

import math

import jax.numpy as jnp

from .. import geometry
from .. import operators as ops
from ._conditions import dirichlet
from ._core import Problem, Term, integer, real, reals

_PI = math.pi


def _as_given(value, checked: float):
    """The option as it is recorded in ``Problem.options``: ints stay ints, everything else the checked float."""
    return value if isinstance(value, int) and not isinstance(value, bool) else checked


def _dirichlet(exact) -> Term:
    return dirichlet(exact, description="u - g = 0 with g the exact solution (Dirichlet)")


# ---------------------------------------------------------------------------------------------- Poisson 1-D


def _poisson_1d_exact(x, c):
    return jnp.sum(c["amplitudes"] * jnp.sin(c["frequencies"] * _PI * x[0]))


def _poisson_1d_forcing(x, c):
    kk = c["frequencies"] * _PI
    return jnp.sum(c["amplitudes"] * kk**2 * jnp.sin(kk * x[0]))


def _poisson_1d_pde(u, x, c):
    return -ops.laplacian(u)(x) - _poisson_1d_forcing(x, c)


def _vanish_on_unit_cube(x, y):
    """Hard constraint u = prod_i x_i (1 - x_i) · y: zero Dirichlet data on the boundary of [0, 1]^d."""
    return jnp.prod(x * (1.0 - x)) * y


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

    return Problem(
        name="poisson_1d",
        domain=geometry.Interval(0.0, 1.0),
        terms={"pde": Term("interior", _poisson_1d_pde, "-u'' - f = 0"), "bc": _dirichlet(_poisson_1d_exact)},
        exact=_poisson_1d_exact,
        default_points={"interior": 128, "boundary": 2},
        order=2,
        options={
            "k": _as_given(k, kf),
            "amplitudes": None if amplitudes is None else list(amps),
            "frequencies": None if frequencies is None else list(freqs),
        },
        description="-u'' = f on [0, 1], Dirichlet data from the exact solution u = sum_j a_j sin(k_j pi x) "
        "(coefficients: frequencies k_j, amplitudes a_j).",
        forcing=_poisson_1d_forcing,
        eval_size=1000,
        coeffs={"frequencies": freqs, "amplitudes": amps},
        hard_constraint=(_vanish_on_unit_cube, ("bc",)) if all(f == int(f) for f in freqs) else None,
    )


# ---------------------------------------------------------------------------------------------- Poisson n-D


def _poisson_nd_exact(x, c):
    return jnp.prod(jnp.sin(c["k"] * _PI * x))


def _poisson_nd_forcing(x, c):
    return x.shape[0] * (c["k"] * _PI) ** 2 * _poisson_nd_exact(x, c)


def _poisson_nd_pde(u, x, c):
    return -ops.laplacian(u)(x) - _poisson_nd_forcing(x, c)


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
        terms={"pde": Term("interior", _poisson_nd_pde, "-Laplace(u) - f = 0"), "bc": _dirichlet(_poisson_nd_exact)},
        exact=_poisson_nd_exact,
        default_points=points,
        order=2,
        options={"dim": dim, "k": _as_given(k, kf)},
        description=f"-Laplace(u) = f on [0, 1]^{dim}, Dirichlet data from the exact solution u = prod_i sin(k pi x_i).",
        forcing=_poisson_nd_forcing,
        eval_size=eval_size,
        eval_method=eval_method,
        coeffs={"k": kf},
        hard_constraint=(_vanish_on_unit_cube, ("bc",)) if kf == int(kf) else None,
    )


# ---------------------------------------------------------------------------------------------- Helmholtz 2-D


def _helmholtz_exact(x, c):
    return jnp.sin(c["a1"] * _PI * x[0]) * jnp.sin(c["a2"] * _PI * x[1])


def _helmholtz_forcing(x, c):
    return (c["k"] ** 2 - (c["a1"] ** 2 + c["a2"] ** 2) * _PI**2) * _helmholtz_exact(x, c)


def _helmholtz_pde(u, x, c):
    return ops.laplacian(u)(x) + c["k"] ** 2 * u(x) - _helmholtz_forcing(x, c)


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

    return Problem(
        name="helmholtz_2d",
        domain=geometry.Box((-1.0, -1.0), (1.0, 1.0)),
        terms={"pde": Term("interior", _helmholtz_pde, "Laplace(u) + k^2 u - f = 0"), "bc": _dirichlet(_helmholtz_exact)},
        exact=_helmholtz_exact,
        default_points={"interior": 2000, "boundary": 400},
        order=2,
        options={"a1": _as_given(a1, a1f), "a2": _as_given(a2, a2f), "k": _as_given(k, kf)},
        description=(
            "Laplace(u) + k^2 u = f on [-1, 1]^2, exact u = sin(a1 pi x) sin(a2 pi y) (Wang, Teng & Perdikaris 2021), "
            "Dirichlet data from u."
        ),
        forcing=_helmholtz_forcing,
        coeffs={"a1": a1f, "a2": a2f, "k": kf},
    )


# ---------------------------------------------------------------------------------------------- biharmonic


def _sin_kpi(x, c):
    return jnp.sin(c["k"] * _PI * x[0])


def _biharmonic_1d_forcing(x, c):
    return (c["k"] * _PI) ** 4 * _sin_kpi(x, c)


def _biharmonic_1d_exact_xx(x, c):
    return -((c["k"] * _PI) ** 2) * _sin_kpi(x, c)


def _biharmonic_1d_pde(u, x, c):
    return ops.biharmonic(u)(x) - _biharmonic_1d_forcing(x, c)


def _biharmonic_1d_bc_uxx(u, x, c):
    return ops.laplacian(u)(x) - _biharmonic_1d_exact_xx(x, c)


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

    return Problem(
        name="biharmonic_1d",
        domain=geometry.Interval(0.0, 1.0),
        terms={
            "pde": Term("interior", _biharmonic_1d_pde, "u'''' - f = 0"),
            "bc": _dirichlet(_sin_kpi),
            "bc_uxx": Term("boundary", _biharmonic_1d_bc_uxx, "u'' - h = 0 with h = u*'' (simply supported end)"),
        },
        exact=_sin_kpi,
        default_points={"interior": 128, "boundary": 2},
        order=4,
        options={"k": _as_given(k, kf)},
        description="u'''' = f on [0, 1], u and u'' given at both ends, exact u = sin(k pi x).",
        forcing=_biharmonic_1d_forcing,
        eval_size=1000,
        coeffs={"k": kf},
    )


def _biharmonic_2d_exact(x, c):
    return jnp.sin(c["k"] * _PI * x[0]) * jnp.sin(c["k"] * _PI * x[1])


def _biharmonic_2d_forcing(x, c):
    return 4.0 * (c["k"] * _PI) ** 4 * _biharmonic_2d_exact(x, c)


def _biharmonic_2d_exact_lap(x, c):
    return -2.0 * (c["k"] * _PI) ** 2 * _biharmonic_2d_exact(x, c)


def _biharmonic_2d_pde(u, x, c):
    return ops.biharmonic(u)(x) - _biharmonic_2d_forcing(x, c)


def _biharmonic_2d_bc_lap(u, x, c):
    return ops.laplacian(u)(x) - _biharmonic_2d_exact_lap(x, c)


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

    return Problem(
        name="biharmonic_2d",
        domain=geometry.Box((0.0, 0.0), (1.0, 1.0)),
        terms={
            "pde": Term("interior", _biharmonic_2d_pde, "Laplace^2(u) - f = 0"),
            "bc": _dirichlet(_biharmonic_2d_exact),
            "bc_lap": Term(
                "boundary", _biharmonic_2d_bc_lap, "Laplace(u) - h = 0 with h = Laplace(u*) (Navier condition)"
            ),
        },
        exact=_biharmonic_2d_exact,
        default_points={"interior": 1000, "boundary": 200},
        order=4,
        options={"k": _as_given(k, kf)},
        description=(
            "Laplace^2(u) = f on [0, 1]^2, u and Laplace(u) given on the boundary (simply supported plate), "
            "exact u = sin(k pi x) sin(k pi y)."
        ),
        forcing=_biharmonic_2d_forcing,
        coeffs={"k": kf},
    )


# ---------------------------------------------------------------------------------------------- sharp layer


def _sharp_radius(x, c):
    return jnp.sqrt((x[0] - c["center"][0]) ** 2 + (x[1] - c["center"][1]) ** 2)


def _sharp_exact(x, c):
    return jnp.arctan((_sharp_radius(x, c) - c["radius"]) / c["width"])


def _sharp_forcing(x, c):
    alpha = 1.0 / c["width"]
    r = _sharp_radius(x, c)
    s = alpha * (r - c["radius"])
    q = 1.0 + s**2
    return 2.0 * alpha**2 * s / q**2 - alpha / (r * q)


def _sharp_pde(u, x, c):
    return -ops.laplacian(u)(x) - _sharp_forcing(x, c)


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

    return Problem(
        name="sharp_gradient_2d",
        domain=geometry.Box((0.0, 0.0), (1.0, 1.0)),
        terms={"pde": Term("interior", _sharp_pde, "-Laplace(u) - f = 0"), "bc": _dirichlet(_sharp_exact)},
        exact=_sharp_exact,
        default_points={"interior": 2000, "boundary": 400},
        order=2,
        options={"width": wf, "center": list(c), "radius": _as_given(radius, r0)},
        description=(
            "-Laplace(u) = f on [0, 1]^2 with the wave-front solution u = atan((|x - c| - r0) / w) of centre c, "
            "radius r0 and width w (Mitchell 2013); Dirichlet data from u."
        ),
        forcing=_sharp_forcing,
        coeffs={"width": wf, "center": c, "radius": r0},
    )
