"""Time-dependent problems in one space dimension: heat, convection, reaction, wave, Burgers.

Points are ``(x, t)``: time is the last coordinate. The domain is ``SpaceTime(Interval(a, b), 0, T)`` with point
sets ``interior`` (a < x < b, 0 < t <= T), ``boundary`` (x in {a, b}, 0 < t <= T) and ``initial`` (t = 0).

Term, exact and forcing functions are module-level functions of the point and the coefficients ``c``, so problems
that differ only in coefficient values share compiled training steps.
"""

from __future__ import annotations

import math

import jax.numpy as jnp

from .. import geometry
from .. import operators as ops
from . import _burgers
from ._conditions import dirichlet, initial, periodic
from ._core import Problem, Term, integer, real

_PI = math.pi
_X = (0,)  # the spatial coordinate of a point (x, t)


def _as_given(value, checked: float):
    return value if isinstance(value, int) and not isinstance(value, bool) else checked


def _dirichlet(exact) -> Term:
    return dirichlet(exact, description="u - g = 0 with g the exact solution (Dirichlet)")


def _initial(u0, what: str) -> Term:
    return initial(u0, description=f"u(x, 0) - u0(x) = 0, u0 = {what}")


def _periodic(lo: float, hi: float) -> Term:
    """u(lo, t) - u(hi, t) for the time t of the boundary point (both ends give the same residual)."""
    return periodic(0, lo, hi, description=f"u({lo:g}, t) - u({hi:g}, t) = 0 (periodic in x)")


def _space_time(lo: float, hi: float, t1: float = 1.0) -> geometry.SpaceTime:
    return geometry.SpaceTime(geometry.Interval(lo, hi), 0.0, t1)


# -------------------------------------------------------------------------------------------------- heat


def _heat_exact(x, c):
    return jnp.exp(-c["alpha"] * (c["k"] * _PI) ** 2 * x[-1]) * jnp.sin(c["k"] * _PI * x[0])


def _heat_u0(x, c):
    return jnp.sin(c["k"] * _PI * x[0])


def _heat_pde(u, x, c):
    return ops.time_derivative(u)(x) - c["alpha"] * ops.laplacian(u, dims=_X)(x)


def heat_1d(alpha=0.1, k=1) -> Problem:
    """1-D heat equation with a decaying sine mode.

    Math: u_t = alpha u_xx on x in [0, 1], t in [0, 1], with

        u*(x, t) = exp(-alpha k^2 pi^2 t) sin(k pi x),   u(x, 0) = sin(k pi x),   u = u* at x = 0, 1.

    Terms: ``pde`` (interior): u_t - alpha u_xx; ``bc`` (boundary): u - u*; ``ic`` (initial): u - sin(k pi x).

    Args:
        alpha: diffusivity, a real >= 0.
        k: frequency, a real > 0 (integers give zero boundary data).

    Returns:
        A :class:`Problem` on ``SpaceTime(Interval(0, 1), 0, 1)``, points ``(2,)`` = (x, t).
    """
    owner = "heat_1d"
    af = real(alpha, "alpha", owner, low=0.0, strict=False)
    kf = real(k, "k", owner, low=0.0)

    return Problem(
        name="heat_1d",
        domain=_space_time(0.0, 1.0),
        terms={
            "pde": Term("interior", _heat_pde, "u_t - alpha u_xx = 0"),
            "bc": _dirichlet(_heat_exact),
            "ic": _initial(_heat_u0, "sin(k pi x)"),
        },
        exact=_heat_exact,
        default_points={"interior": 1000, "boundary": 200, "initial": 100},
        order=2,
        options={"alpha": _as_given(alpha, af), "k": _as_given(k, kf)},
        description=(
            "u_t = alpha u_xx on [0, 1] x [0, 1], exact u = exp(-alpha k^2 pi^2 t) sin(k pi x); Dirichlet and "
            "initial data from u."
        ),
        coeffs={"alpha": af, "k": kf},
    )


# -------------------------------------------------------------------------------------------- convection


def _convection_exact(x, c):
    return jnp.sin(x[0] - c["beta"] * x[-1])


def _sin_x(x):
    return jnp.sin(x[0])


def _convection_pde(u, x, c):
    return ops.time_derivative(u)(x) + c["beta"] * ops.partial(u, 0)(x)


def convection_1d(beta=1.0) -> Problem:
    """1-D convection (advection) with periodic boundary, the failure-mode benchmark of Krishnapriyan et al.

    Math: u_t + beta u_x = 0 on x in [0, 2 pi], t in [0, 1], u(x, 0) = sin(x), u(0, t) = u(2 pi, t), with exact
    solution u*(x, t) = sin(x - beta t). Vanilla PINNs fail for beta >~ 30. Reference: A. S. Krishnapriyan,
    A. Gholami, S. Zhe, R. M. Kirby, M. W. Mahoney, "Characterizing possible failure modes in physics-informed
    neural networks", NeurIPS 2021.

    Terms: ``pde`` (interior): u_t + beta u_x; ``bc`` (boundary): u(0, t) - u(2 pi, t) at the boundary point's
    t; ``ic`` (initial): u - sin(x).

    Args:
        beta: convection speed, a finite real.

    Returns:
        A :class:`Problem` on ``SpaceTime(Interval(0, 2 pi), 0, 1)``, points ``(2,)`` = (x, t).
    """
    bf = real(beta, "beta", "convection_1d")

    return Problem(
        name="convection_1d",
        domain=_space_time(0.0, 2 * _PI),
        terms={
            "pde": Term("interior", _convection_pde, "u_t + beta u_x = 0"),
            "bc": _periodic(0.0, 2 * _PI),
            "ic": _initial(_sin_x, "sin(x)"),
        },
        exact=_convection_exact,
        default_points={"interior": 2000, "boundary": 200, "initial": 256},
        order=1,
        options={"beta": _as_given(beta, bf)},
        description=(
            "u_t + beta u_x = 0 on [0, 2 pi] x [0, 1], u(x, 0) = sin x, periodic in x; exact u = sin(x - beta t) "
            "(Krishnapriyan et al. 2021)."
        ),
        coeffs={"beta": bf},
    )


# ---------------------------------------------------------------------------------------------- reaction


def _gaussian_bump(x):
    return jnp.exp(-((x[0] - _PI) ** 2) / (2.0 * (_PI / 4.0) ** 2))


def _reaction_exact(x, c):
    b = _gaussian_bump(x)
    g = b * jnp.exp(c["rho"] * x[-1])
    return g / (g + 1.0 - b)


def _reaction_pde(u, x, c):
    v = u(x)
    return ops.time_derivative(u)(x) - c["rho"] * v * (1.0 - v)


def reaction_1d(rho=1.0) -> Problem:
    """1-D logistic reaction (Fisher-type source, no diffusion) of Krishnapriyan et al. (2021).

    Math: u_t - rho u (1 - u) = 0 on x in [0, 2 pi], t in [0, 1], periodic in x, with

        u0(x) = exp(-(x - pi)^2 / (2 (pi/4)^2)),     u*(x, t) = u0 e^(rho t) / (u0 e^(rho t) + 1 - u0),

    the pointwise solution of the logistic ODE. u0 is symmetric about pi, so u*(0, t) = u*(2 pi, t) exactly.

    Terms: ``pde`` (interior): u_t - rho u (1 - u); ``bc`` (boundary): u(0, t) - u(2 pi, t); ``ic`` (initial):
    u - u0.

    Args:
        rho: reaction rate, a finite real (the benchmark uses rho >= 0; rho ~ 5 or more is hard for PINNs).

    Returns:
        A :class:`Problem` on ``SpaceTime(Interval(0, 2 pi), 0, 1)``, points ``(2,)`` = (x, t).
    """
    rf = real(rho, "rho", "reaction_1d")

    return Problem(
        name="reaction_1d",
        domain=_space_time(0.0, 2 * _PI),
        terms={
            "pde": Term("interior", _reaction_pde, "u_t - rho u (1 - u) = 0"),
            "bc": _periodic(0.0, 2 * _PI),
            "ic": _initial(_gaussian_bump, "exp(-(x - pi)^2 / (2 (pi/4)^2))"),
        },
        exact=_reaction_exact,
        default_points={"interior": 2000, "boundary": 200, "initial": 256},
        order=1,
        options={"rho": _as_given(rho, rf)},
        description=(
            "u_t = rho u (1 - u) on [0, 2 pi] x [0, 1], Gaussian initial bump, periodic in x; exact logistic "
            "solution (Krishnapriyan et al. 2021)."
        ),
        coeffs={"rho": rf},
    )


# -------------------------------------------------------------------------------------------------- wave


def _wave_exact(x, c):
    xs, t, k = x[0], x[-1], c["k"]
    return jnp.sin(_PI * xs) * jnp.cos(c["c"] * _PI * t) + 0.5 * jnp.sin(k * _PI * xs) * jnp.cos(k * c["c"] * _PI * t)


def _wave_u0(x, c):
    return jnp.sin(_PI * x[0]) + 0.5 * jnp.sin(c["k"] * _PI * x[0])


def _wave_pde(u, x, c):
    return ops.time_derivative(u, 2)(x) - c["c"] ** 2 * ops.laplacian(u, dims=_X)(x)


def _wave_ic_t(u, x):
    return ops.time_derivative(u)(x)


def wave_1d(c=2.0, k=4) -> Problem:
    """1-D wave equation with two standing modes (the multi-scale benchmark of Wang, Yu & Perdikaris 2022).

    Math: u_tt = c^2 u_xx on x in [0, 1], t in [0, 1], with

        u*(x, t) = sin(pi x) cos(c pi t) + 0.5 sin(k pi x) cos(k c pi t),

    u = 0 at x = 0, 1, u(x, 0) = sin(pi x) + 0.5 sin(k pi x) and u_t(x, 0) = 0. Reference: S. Wang, X. Yu,
    P. Perdikaris, "When and why PINNs fail to train: a neural tangent kernel perspective", J. Comput. Phys. 449
    (2022) (c = 2, k = 4); Rathore, Lei, Frangella, Lu & Udell, "Challenges in training PINNs: a loss landscape
    perspective", ICML 2024, use c = 2, k = 5 (their beta).

    Terms: ``pde`` (interior): u_tt - c^2 u_xx; ``bc`` (boundary): u - u*; ``ic`` (initial): u - u*(x, 0);
    ``ic_t`` (initial): u_t (the initial velocity is zero).

    Args:
        c: wave speed, a real > 0.
        k: wavenumber of the second mode, an integer >= 1 (u = 0 at x = 1 needs an integer).

    Returns:
        A :class:`Problem` on ``SpaceTime(Interval(0, 1), 0, 1)``, points ``(2,)`` = (x, t).
    """
    cf = real(c, "c", "wave_1d", low=0.0)
    kf = float(integer(k, "k", "wave_1d", low=1))

    return Problem(
        name="wave_1d",
        domain=_space_time(0.0, 1.0),
        terms={
            "pde": Term("interior", _wave_pde, "u_tt - c^2 u_xx = 0"),
            "bc": _dirichlet(_wave_exact),
            "ic": _initial(_wave_u0, "sin(pi x) + 0.5 sin(k pi x)"),
            "ic_t": Term("initial", _wave_ic_t, "u_t(x, 0) = 0"),
        },
        exact=_wave_exact,
        default_points={"interior": 2000, "boundary": 200, "initial": 200},
        order=2,
        options={"c": _as_given(c, cf), **({} if k == 4 else {"k": int(kf)})},
        description=(
            "u_tt = c^2 u_xx on [0, 1] x [0, 1], exact u = sin(pi x) cos(c pi t) + 0.5 sin(k pi x) cos(k c pi t) "
            "(Wang, Yu & Perdikaris 2022: k = 4)."
        ),
        coeffs={"c": cf, "k": kf},
    )


# ----------------------------------------------------------------------------------------------- Burgers


def _burgers_pde(u, x, c):
    g = ops.grad(u)(x)  # (u_x, u_t) in one reverse pass
    return g[1] + u(x) * g[0] - c["nu"] * ops.laplacian(u, dims=_X)(x)


def _minus_sin_pi_x(x):
    return -jnp.sin(_PI * x[0])


def burgers_1d(nu=0.01 / _PI, nodes=None) -> Problem:
    """Viscous Burgers equation with a shock forming at x = 0 (Raissi, Perdikaris & Karniadakis 2019).

    Math: u_t + u u_x = nu u_xx on x in [-1, 1], t in [0, 1], u(x, 0) = -sin(pi x), u(-1, t) = u(1, t) = 0.
    For the default nu = 0.01 / pi a steep front forms at x = 0 near t = 1/pi (max |u_x| = 152 at t = 0.51).

    There is no closed form; ``exact`` is the Cole-Hopf integral evaluated by Gauss-Hermite quadrature in
    log-sum-exp form (module ``sciml_jax.problems._burgers`` documents the derivation and the accuracy
    measurements). With the default node count the reference differs from a 4000-node one by < 1e-14 and
    satisfies the PDE (by autodiff) to < 1e-12 on the whole domain, shock included, for nu = 0.01 / pi; it
    reproduces Basdevant et al. (1986)'s max |u_x(0, t)| = 152.00516.

    Terms: ``pde`` (interior): u_t + u u_x - nu u_xx; ``bc`` (boundary): u; ``ic`` (initial): u + sin(pi x).

    Args:
        nu: viscosity, a real > 0.
        nodes: Gauss-Hermite nodes of the reference solution, an integer >= 20; default
            max(100, ceil(2 / (pi nu))) (200 for nu = 0.01 / pi), about three times what float64 accuracy needs.

    Returns:
        A :class:`Problem` on ``SpaceTime(Interval(-1, 1), 0, 1)``, points ``(2,)`` = (x, t).
    """
    owner = "burgers_1d"
    nf = real(nu, "nu", owner, low=0.0)
    n_nodes = _burgers.default_nodes(nf) if nodes is None else integer(nodes, "nodes", owner, low=20)

    return Problem(
        name="burgers_1d",
        domain=_space_time(-1.0, 1.0),
        terms={
            "pde": Term("interior", _burgers_pde, "u_t + u u_x - nu u_xx = 0"),
            "bc": dirichlet(0.0, description="u(+-1, t) = 0"),
            "ic": _initial(_minus_sin_pi_x, "-sin(pi x)"),
        },
        exact=_burgers.cole_hopf_fn(n_nodes),
        default_points={"interior": 2000, "boundary": 200, "initial": 256},
        order=2,
        options={"nu": nf, "nodes": n_nodes},
        description=(
            "u_t + u u_x = nu u_xx on [-1, 1] x [0, 1], u(x, 0) = -sin(pi x), u(+-1, t) = 0 (Raissi et al. 2019); "
            f"reference solution: Cole-Hopf integral, {n_nodes}-node Gauss-Hermite."
        ),
        coeffs={"nu": nf},
    )
