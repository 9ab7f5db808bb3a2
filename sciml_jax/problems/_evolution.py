"""Time-dependent problems in one space dimension: heat, convection, reaction, wave, Burgers.

Points are ``(x, t)``: time is the last coordinate. The domain is ``SpaceTime(Interval(a, b), 0, T)`` with point
sets ``interior`` (a < x < b, 0 < t <= T), ``boundary`` (x in {a, b}, 0 < t <= T) and ``initial`` (t = 0).
"""

from __future__ import annotations

import math

import jax.numpy as jnp

from .. import geometry
from .. import operators as ops
from . import _burgers
from ._core import Problem, Term, integer, real

_PI = math.pi
_X = (0,)  # the spatial coordinate of a point (x, t)


def _as_given(value, checked: float):
    return value if isinstance(value, int) and not isinstance(value, bool) else checked


def _dirichlet(exact) -> Term:
    return Term("boundary", lambda u, x: u(x) - exact(x), "u - g = 0 with g the exact solution (Dirichlet)")


def _initial(u0, what: str) -> Term:
    return Term("initial", lambda u, x: u(x) - u0(x[0]), f"u(x, 0) - u0(x) = 0, u0 = {what}")


def _periodic(lo: float, hi: float) -> Term:
    """u(lo, t) - u(hi, t) for the time t of the boundary point (both ends give the same residual)."""

    def fn(u, x):
        return u(x.at[0].set(lo)) - u(x.at[0].set(hi))

    return Term("boundary", fn, f"u({lo:g}, t) - u({hi:g}, t) = 0 (periodic in x)")


def _space_time(lo: float, hi: float, t1: float = 1.0) -> geometry.SpaceTime:
    return geometry.SpaceTime(geometry.Interval(lo, hi), 0.0, t1)


# -------------------------------------------------------------------------------------------------- heat


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
    kpi = kf * _PI

    def exact(x):
        return jnp.exp(-af * kpi**2 * x[-1]) * jnp.sin(kpi * x[0])

    def pde(u, x):
        return ops.time_derivative(u)(x) - af * ops.laplacian(u, dims=_X)(x)

    return Problem(
        name="heat_1d",
        domain=_space_time(0.0, 1.0),
        terms={
            "pde": Term("interior", pde, "u_t - alpha u_xx = 0"),
            "bc": _dirichlet(exact),
            "ic": _initial(lambda x0: jnp.sin(kpi * x0), f"sin({kf:g} pi x)"),
        },
        exact=exact,
        default_points={"interior": 1000, "boundary": 200, "initial": 100},
        order=2,
        options={"alpha": _as_given(alpha, af), "k": _as_given(k, kf)},
        description=(
            f"u_t = alpha u_xx on [0, 1] x [0, 1], alpha = {af:g}, exact u = exp(-alpha k^2 pi^2 t) sin(k pi x) "
            f"with k = {kf:g}; Dirichlet and initial data from u."
        ),
    )


# -------------------------------------------------------------------------------------------- convection


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

    def exact(x):
        return jnp.sin(x[0] - bf * x[-1])

    def pde(u, x):
        return ops.time_derivative(u)(x) + bf * ops.partial(u, 0)(x)

    return Problem(
        name="convection_1d",
        domain=_space_time(0.0, 2 * _PI),
        terms={
            "pde": Term("interior", pde, "u_t + beta u_x = 0"),
            "bc": _periodic(0.0, 2 * _PI),
            "ic": _initial(jnp.sin, "sin(x)"),
        },
        exact=exact,
        default_points={"interior": 2000, "boundary": 200, "initial": 256},
        order=1,
        options={"beta": _as_given(beta, bf)},
        description=(
            f"u_t + beta u_x = 0 on [0, 2 pi] x [0, 1], beta = {bf:g}, u(x, 0) = sin x, periodic in x; "
            "exact u = sin(x - beta t) (Krishnapriyan et al. 2021)."
        ),
    )


# ---------------------------------------------------------------------------------------------- reaction


def _gaussian_bump(x0):
    return jnp.exp(-((x0 - _PI) ** 2) / (2.0 * (_PI / 4.0) ** 2))


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

    def exact(x):
        g = _gaussian_bump(x[0]) * jnp.exp(rf * x[-1])
        return g / (g + 1.0 - _gaussian_bump(x[0]))

    def pde(u, x):
        v = u(x)
        return ops.time_derivative(u)(x) - rf * v * (1.0 - v)

    return Problem(
        name="reaction_1d",
        domain=_space_time(0.0, 2 * _PI),
        terms={
            "pde": Term("interior", pde, "u_t - rho u (1 - u) = 0"),
            "bc": _periodic(0.0, 2 * _PI),
            "ic": _initial(_gaussian_bump, "exp(-(x - pi)^2 / (2 (pi/4)^2))"),
        },
        exact=exact,
        default_points={"interior": 2000, "boundary": 200, "initial": 256},
        order=1,
        options={"rho": _as_given(rho, rf)},
        description=(
            f"u_t = rho u (1 - u) on [0, 2 pi] x [0, 1], rho = {rf:g}, Gaussian initial bump, periodic in x; "
            "exact logistic solution (Krishnapriyan et al. 2021)."
        ),
    )


# -------------------------------------------------------------------------------------------------- wave


def wave_1d(c=2.0) -> Problem:
    """1-D wave equation with two standing modes (the multi-scale benchmark of Wang, Yu & Perdikaris 2022).

    Math: u_tt = c^2 u_xx on x in [0, 1], t in [0, 1], with

        u*(x, t) = sin(pi x) cos(c pi t) + 0.5 sin(4 pi x) cos(4 c pi t),

    u = 0 at x = 0, 1, u(x, 0) = sin(pi x) + 0.5 sin(4 pi x) and u_t(x, 0) = 0. Reference: S. Wang, X. Yu,
    P. Perdikaris, "When and why PINNs fail to train: a neural tangent kernel perspective", J. Comput. Phys. 449
    (2022) (c = 2).

    Terms: ``pde`` (interior): u_tt - c^2 u_xx; ``bc`` (boundary): u - u*; ``ic`` (initial): u - u*(x, 0);
    ``ic_t`` (initial): u_t (the initial velocity is zero).

    Args:
        c: wave speed, a real > 0.

    Returns:
        A :class:`Problem` on ``SpaceTime(Interval(0, 1), 0, 1)``, points ``(2,)`` = (x, t).
    """
    cf = real(c, "c", "wave_1d", low=0.0)

    def exact(x):
        xs, t = x[0], x[-1]
        return jnp.sin(_PI * xs) * jnp.cos(cf * _PI * t) + 0.5 * jnp.sin(4 * _PI * xs) * jnp.cos(4 * cf * _PI * t)

    def pde(u, x):
        return ops.time_derivative(u, 2)(x) - cf**2 * ops.laplacian(u, dims=_X)(x)

    def ic_t(u, x):
        return ops.time_derivative(u)(x)

    return Problem(
        name="wave_1d",
        domain=_space_time(0.0, 1.0),
        terms={
            "pde": Term("interior", pde, "u_tt - c^2 u_xx = 0"),
            "bc": _dirichlet(exact),
            "ic": _initial(lambda x0: jnp.sin(_PI * x0) + 0.5 * jnp.sin(4 * _PI * x0),
                           "sin(pi x) + 0.5 sin(4 pi x)"),
            "ic_t": Term("initial", ic_t, "u_t(x, 0) = 0"),
        },
        exact=exact,
        default_points={"interior": 2000, "boundary": 200, "initial": 200},
        order=2,
        options={"c": _as_given(c, cf)},
        description=(
            f"u_tt = c^2 u_xx on [0, 1] x [0, 1], c = {cf:g}, exact u = sin(pi x) cos(c pi t) "
            "+ 0.5 sin(4 pi x) cos(4 c pi t) (Wang, Yu & Perdikaris 2022)."
        ),
    )


# ----------------------------------------------------------------------------------------------- Burgers


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
    exact = _burgers.cole_hopf(nf, n_nodes)

    def pde(u, x):
        g = ops.grad(u)(x)  # (u_x, u_t) in one reverse pass
        return g[1] + u(x) * g[0] - nf * ops.laplacian(u, dims=_X)(x)

    return Problem(
        name="burgers_1d",
        domain=_space_time(-1.0, 1.0),
        terms={
            "pde": Term("interior", pde, "u_t + u u_x - nu u_xx = 0"),
            "bc": Term("boundary", lambda u, x: u(x), "u(+-1, t) = 0"),
            "ic": _initial(lambda x0: -jnp.sin(_PI * x0), "-sin(pi x)"),
        },
        exact=exact,
        default_points={"interior": 2000, "boundary": 200, "initial": 256},
        order=2,
        options={"nu": nf, "nodes": n_nodes},
        description=(
            f"u_t + u u_x = nu u_xx on [-1, 1] x [0, 1], nu = {nf:.6g}, u(x, 0) = -sin(pi x), u(+-1, t) = 0 "
            f"(Raissi et al. 2019); reference solution: Cole-Hopf integral, {n_nodes}-node Gauss-Hermite."
        ),
    )
