"""Helmholtz equation with mixed Dirichlet / Neumann conditions on named faces of the unit square.

A manufactured problem: the exact solution is chosen, the forcing and the boundary data (values on the Dirichlet
faces, outward normal derivatives on the Neumann faces) follow from it in closed form. Every data function is a
module-level function of the point and the coefficients ``c``, so problems of other frequencies share compiled
training steps.
"""

from __future__ import annotations

import math

import jax.numpy as jnp

from .. import geometry
from .. import operators as ops
from ._conditions import dirichlet, neumann
from ._core import Problem, Term, real

_PI = math.pi


def _hm_exact(x, c):
    return jnp.sin(c["a1"] * _PI * x[0]) * jnp.cos(c["a2"] * _PI * x[1])


def _hm_forcing(x, c):
    return (c["k"] ** 2 - (c["a1"] ** 2 + c["a2"] ** 2) * _PI**2) * _hm_exact(x, c)


def _hm_pde(u, x, c):
    return ops.laplacian(u)(x) + c["k"] ** 2 * u(x) - _hm_forcing(x, c)


def _hm_flux_right(x, c):
    """∂u*/∂n on x = 1 (n = +e_x): u*_x."""
    return c["a1"] * _PI * jnp.cos(c["a1"] * _PI * x[0]) * jnp.cos(c["a2"] * _PI * x[1])


def _hm_flux_top(x, c):
    """∂u*/∂n on y = 1 (n = +e_y): u*_y."""
    return -c["a2"] * _PI * jnp.sin(c["a1"] * _PI * x[0]) * jnp.sin(c["a2"] * _PI * x[1])


def _as_given(value, checked: float):
    return value if isinstance(value, int) and not isinstance(value, bool) else checked


def helmholtz_mixed_2d(a1=1, a2=2, k=1.0) -> Problem:
    """2-D Helmholtz equation with Dirichlet conditions on two faces and Neumann conditions on the other two.

    Math: Δu + k² u = f on [0, 1]², with the manufactured solution

        u*(x, y) = sin(a1 π x) cos(a2 π y),     f = (k² - (a1² + a2²) π²) u*,

    and the boundary conditions (n the outward unit normal)

        left   x = 0:  u = u* (= 0)                       Dirichlet
        bottom y = 0:  u = u* (= sin(a1 π x))             Dirichlet
        right  x = 1:  ∂u/∂n = u*_x = a1 π cos(a1 π) cos(a2 π y)     Neumann
        top    y = 1:  ∂u/∂n = u*_y = -a2 π sin(a1 π x) sin(a2 π)    Neumann (= 0 for integer a2)

    so the defaults exercise zero and non-zero data of both kinds. For k² not an eigenvalue of -Δ with these
    conditions, k² ≠ ((m + 1/2)² + (n + 1/2)²) π² (m, n >= 0 integers; eigenfunctions sin((m + 1/2) π x)
    sin((n + 1/2) π y)), the solution is unique (the default k = 1 lies below the first eigenvalue π²/2 ≈ 4.93).
    Source: manufactured here, after the Dirichlet benchmark of Wang, Teng & Perdikaris, SIAM J. Sci. Comput. 43
    (2021) (``helmholtz_2d``), with mixed conditions on named boundary parts.

    Terms: ``pde`` (interior): Δu + k² u - f; ``bc_left`` (boundary:left), ``bc_bottom`` (boundary:bottom):
    u - u*; ``bc_right`` (boundary:right), ``bc_top`` (boundary:top): ∇u·n - ∂u*/∂n, with the outward normals n
    delivered by ``problem.batch()`` as ``(x, n)`` pairs.

    Args:
        a1: frequency along x, a real > 0.
        a2: frequency along y, a real > 0.
        k: wave number, a real >= 0 (k² must not be an eigenvalue, see above).

    Returns:
        A :class:`Problem` on ``Box((0, 0), (1, 1))``, points ``(2,)``.
    """
    owner = "helmholtz_mixed_2d"
    a1f = real(a1, "a1", owner, low=0.0)
    a2f = real(a2, "a2", owner, low=0.0)
    kf = real(k, "k", owner, low=0.0, strict=False)
    ratio = kf**2 / _PI**2  # eigenvalues of -Δ with these conditions: ((m + 1/2)^2 + (n + 1/2)^2) π^2
    for m in range(math.isqrt(int(ratio)) + 1):
        rest = ratio - (m + 0.5) ** 2
        if rest > 0 and abs(math.sqrt(rest) - 0.5 - round(math.sqrt(rest) - 0.5)) < 1e-9:
            raise ValueError(
                f"{owner}: k must not make k^2 an eigenvalue ((m + 1/2)^2 + (n + 1/2)^2) pi^2 of the mixed problem "
                f"(the solution would not be unique), got k={k!r}"
            )
    return Problem(
        name="helmholtz_mixed_2d",
        domain=geometry.Box((0.0, 0.0), (1.0, 1.0)),
        terms={
            "pde": Term("interior", _hm_pde, "Laplace(u) + k^2 u - f = 0"),
            "bc_left": dirichlet(_hm_exact, points="boundary:left", description="u - u* = 0 on x = 0"),
            "bc_bottom": dirichlet(_hm_exact, points="boundary:bottom", description="u - u* = 0 on y = 0"),
            "bc_right": neumann(_hm_flux_right, points="boundary:right", description="du/dn - u*_x = 0 on x = 1"),
            "bc_top": neumann(_hm_flux_top, points="boundary:top", description="du/dn - u*_y = 0 on y = 1"),
        },
        exact=_hm_exact,
        default_points={"interior": 2000, "boundary:left": 100, "boundary:bottom": 100, "boundary:right": 100,
                        "boundary:top": 100},
        order=2,
        options={"a1": _as_given(a1, a1f), "a2": _as_given(a2, a2f), "k": _as_given(k, kf)},
        description=(
            "Laplace(u) + k^2 u = f on [0, 1]^2, exact u = sin(a1 pi x) cos(a2 pi y); Dirichlet data on x = 0 and "
            "y = 0, Neumann data (outward normal derivative) on x = 1 and y = 1."
        ),
        forcing=_hm_forcing,
        coeffs={"a1": a1f, "a2": a2f, "k": kf},
    )
