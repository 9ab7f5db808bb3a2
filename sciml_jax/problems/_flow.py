"""Incompressible flow: the Kovasznay flow, a steady Navier-Stokes solution in closed form.

Fields ``(u, v, p)``: the velocity components and the pressure. Term, exact and boundary-data functions are
module-level functions of the point and the coefficients ``c`` (here ``c["re"]``), so Kovasznay problems of other
Reynolds numbers share compiled training steps.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from .. import geometry
from .. import operators as ops
from ._conditions import dirichlet
from ._core import Problem, Term, real

_PI = math.pi


def _kovasznay_lambda(c):
    """λ = Re/2 - sqrt(Re²/4 + 4π²) (< 0)."""
    re = c["re"]
    return 0.5 * re - jnp.sqrt(0.25 * re**2 + 4.0 * _PI**2)


def _kovasznay_exact(x, c):
    lam = _kovasznay_lambda(c)
    e = jnp.exp(lam * x[0])
    u = 1.0 - e * jnp.cos(2.0 * _PI * x[1])
    v = lam / (2.0 * _PI) * e * jnp.sin(2.0 * _PI * x[1])
    p = 0.5 * (1.0 - jnp.exp(2.0 * lam * x[0]))
    return jnp.stack([u, v, p])


def _kovasznay_u(x, c):
    return _kovasznay_exact(x, c)[0]


def _kovasznay_v(x, c):
    return _kovasznay_exact(x, c)[1]


def _kovasznay_p(x, c):
    return _kovasznay_exact(x, c)[2]


def _momentum(u, x, c, i):
    """Component i of (w·∇)w + ∇p - (1/Re) Δw, w = (u, v)."""
    w = u(x)
    jac = jax.jacfwd(u)(x)  # (3, 2): rows u, v, p
    comp = u[("u", "v")[i]]
    return w[0] * jac[i, 0] + w[1] * jac[i, 1] + jac[2, i] - ops.laplacian(comp)(x) / c["re"]


def _kovasznay_momentum_x(u, x, c):
    return _momentum(u, x, c, 0)


def _kovasznay_momentum_y(u, x, c):
    return _momentum(u, x, c, 1)


def _kovasznay_continuity(u, x):
    return ops.partial(u["u"], 0)(x) + ops.partial(u["v"], 1)(x)


def kovasznay_2d(re=20.0, pressure_outflow=False) -> Problem:
    """Kovasznay flow: steady incompressible Navier-Stokes in 2-D with a closed-form solution (Kovasznay 1948).

    Math: for w = (u, v) and the pressure p on [-0.5, 1] x [-0.5, 1.5],

        (w·∇) u + p_x - (1/Re) Δu = 0,     (w·∇) v + p_y - (1/Re) Δv = 0,     u_x + v_y = 0,

    with u, v = the exact values on the whole boundary. The exact solution (the wake behind a periodic array of
    cylinders), with λ = Re/2 - sqrt(Re²/4 + 4π²) (λ = -1.8101 for Re = 20):

        u = 1 - e^{λx} cos(2πy),     v = λ/(2π) e^{λx} sin(2πy),     p = ½ (1 - e^{2λx}).

    Velocity data alone fix p only up to an additive constant, so by default the pressure is compared up to a
    constant (``up_to_constant=("p",)``); ``pressure_outflow=True`` adds DeepXDE's outflow condition p = p* at
    x = 1, which pins the constant (and p is then compared as it is).

    Source: L. I. G. Kovasznay, "Laminar flow behind a two-dimensional grid", Proc. Cambridge Philos. Soc. 44
    (1948) 58-62. Domain and Re = 20 as in DeepXDE's example ``examples/pinn_forward/Kovasznay_flow.py`` (Lu et al.,
    SIAM Review 63 (2021)), also used by Jin et al., "NSFnets", J. Comput. Phys. 426 (2021) (Re = 40).

    Terms: ``momentum_x``, ``momentum_y``, ``continuity`` (interior); ``bc_u``, ``bc_v`` (boundary): u - u*,
    v - v*; with ``pressure_outflow`` also ``bc_p`` (boundary:right, x = 1): p - p*.

    Args:
        re: Reynolds number, a real > 0.
        pressure_outflow: add the outflow pressure condition p = p* at x = 1 (DeepXDE); a bool.

    Returns:
        A :class:`Problem` with fields ``("u", "v", "p")`` on ``Box((-0.5, -0.5), (1, 1.5))``, points ``(2,)``.
    """
    owner = "kovasznay_2d"
    ref = real(re, "re", owner, low=0.0)
    if not isinstance(pressure_outflow, bool):
        raise ValueError(f"{owner}: pressure_outflow must be true or false, got {pressure_outflow!r}")
    terms = {
        "momentum_x": Term("interior", _kovasznay_momentum_x, "u u_x + v u_y + p_x - (u_xx + u_yy)/Re = 0"),
        "momentum_y": Term("interior", _kovasznay_momentum_y, "u v_x + v v_y + p_y - (v_xx + v_yy)/Re = 0"),
        "continuity": Term("interior", _kovasznay_continuity, "u_x + v_y = 0"),
        "bc_u": dirichlet(_kovasznay_u, field="u", description="u - u* = 0 on the boundary"),
        "bc_v": dirichlet(_kovasznay_v, field="v", description="v - v* = 0 on the boundary"),
    }
    points = {"interior": 2601, "boundary": 400}
    if pressure_outflow:
        terms["bc_p"] = dirichlet(_kovasznay_p, field="p", points="boundary:right",
                                  description="p - p* = 0 at the outflow x = 1")
        points["boundary:right"] = 100
    return Problem(
        name="kovasznay_2d",
        domain=geometry.Box((-0.5, -0.5), (1.0, 1.5)),
        terms=terms,
        exact=_kovasznay_exact,
        default_points=points,
        order=2,
        options={"re": re if isinstance(re, int) and not isinstance(re, bool) else ref,
                 "pressure_outflow": pressure_outflow},
        description=(
            "Steady incompressible Navier-Stokes on [-0.5, 1] x [-0.5, 1.5], Kovasznay (1948) solution "
            "u = 1 - e^(lam x) cos(2 pi y), v = lam/(2 pi) e^(lam x) sin(2 pi y), p = (1 - e^(2 lam x))/2, "
            "lam = Re/2 - sqrt(Re^2/4 + 4 pi^2); velocity Dirichlet data from the solution"
            + (", outflow pressure at x = 1." if pressure_outflow else ", pressure up to a constant.")
        ),
        fields=("u", "v", "p"),
        coeffs={"re": ref},
        up_to_constant=() if pressure_outflow else ("p",),
    )
