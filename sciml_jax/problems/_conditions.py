"""Boundary and initial conditions as residual terms: Dirichlet, Neumann, Robin, periodic, initial.

Each helper returns a :class:`Term`. Its function is a small frozen dataclass, equal to another built from the same
data (the same data function, field and axis), so two problems built by one factory share their compiled training
steps. Data ``g`` may be a number, a coefficient name (``"g0"`` reads ``c["g0"]``), or a point function
``g(x)`` / ``g(x, c)``.

    terms = {
        "pde": Term("interior", pde),
        "left": dirichlet(0.0, points="boundary:left"),
        "right": neumann(lambda x: jnp.cos(x[1]), points="boundary:right"),   # ∂u/∂n = g, normals in the batch
        "top": robin(1.0, 2.0, 0.0, points="boundary:top"),                  # α u + β ∂u/∂n = g
        "x": periodic(axis=0, lo=0.0, hi=1.0, derivatives=1),               # u and u_x match across x = 0, 1
    }
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from ._core import Fields, Term, call_with_coeffs


def _value(g: Any, x: jax.Array, c: Any) -> jax.Array:
    """The data g at one point: a number, a coefficient name or a point function g(x[, c])."""
    if g is None:
        return jnp.zeros((), x.dtype)
    if isinstance(g, str):
        return c[g]
    if callable(g):
        return call_with_coeffs(g, (x,), c)
    return jnp.asarray(g, dtype=x.dtype)


def _field(u: Fields, field: str | None) -> Callable[[jax.Array], jax.Array]:
    return u if field is None else u[field]


def _check_data(g: Any, where: str) -> Any:
    if g is None or isinstance(g, str) or callable(g):
        return g
    if isinstance(g, bool) or not isinstance(g, (int, float)):
        raise ValueError(f"{where}: data g must be a number, a coefficient name or a function g(x[, c]), got {g!r}")
    return float(g)


@dataclasses.dataclass(frozen=True)
class Dirichlet:
    """``u(x) - g(x)`` (the term function of :func:`dirichlet`)."""

    g: Any = None
    field: str | None = None

    def __call__(self, u, x, c):
        return _field(u, self.field)(x) - _value(self.g, x, c)


@dataclasses.dataclass(frozen=True)
class Neumann:
    """``∇u(x)·n - g(x)`` with the outward unit normal n from the batch (the term function of :func:`neumann`)."""

    g: Any = None
    field: str | None = None

    def __call__(self, u, x, n, c):
        return jnp.dot(jax.grad(_field(u, self.field))(x), n) - _value(self.g, x, c)


@dataclasses.dataclass(frozen=True)
class Robin:
    """``α u(x) + β ∇u(x)·n - g(x)`` (the term function of :func:`robin`)."""

    alpha: Any
    beta: Any
    g: Any = None
    field: str | None = None

    def __call__(self, u, x, n, c):
        f = _field(u, self.field)
        a, b = _value(self.alpha, x, c), _value(self.beta, x, c)
        return a * f(x) + b * jnp.dot(jax.grad(f)(x), n) - _value(self.g, x, c)


@dataclasses.dataclass(frozen=True)
class Periodic:
    """``∂^j u(x|x_a=lo) - ∂^j u(x|x_a=hi)`` for j = 0..derivatives (the term function of :func:`periodic`)."""

    axis: int
    lo: float
    hi: float
    derivatives: int = 0
    field: str | None = None

    def __call__(self, u, x, c):
        f = _field(u, self.field)
        out = []
        for _ in range(self.derivatives + 1):
            out.append(f(x.at[self.axis].set(self.lo)) - f(x.at[self.axis].set(self.hi)))
            f = _partial(f, self.axis)
        return out[0] if len(out) == 1 else jnp.stack(out)


def _partial(f, axis):
    def df(x):
        return jax.jvp(f, (x,), (jnp.zeros_like(x).at[axis].set(1.0),))[1]

    return df


@dataclasses.dataclass(frozen=True)
class Initial:
    """``∂_t^j u(x, 0) - g(x)`` at points of the initial slice (the term function of :func:`initial`)."""

    g: Any = None
    order: int = 0
    field: str | None = None

    def __call__(self, u, x, c):
        f = _field(u, self.field)
        for _ in range(self.order):
            f = _partial(f, x.shape[0] - 1)
        return f(x) - _value(self.g, x, c)


def _check_field(field: Any, where: str) -> None:
    if field is not None and (not isinstance(field, str) or not field):
        raise ValueError(f"{where}: field must be None (the only field) or a field name, got {field!r}")


def dirichlet(g: Any = 0.0, *, points: str = "boundary", field: str | None = None, description: str = "") -> Term:
    """Dirichlet condition u = g on ``points`` (a boundary set or part, e.g. ``"boundary:left"``)."""
    _check_field(field, "dirichlet")
    return Term(points, Dirichlet(_check_data(g, "dirichlet"), field), description or "u - g = 0 (Dirichlet)")


def neumann(g: Any = 0.0, *, points: str = "boundary", field: str | None = None, description: str = "") -> Term:
    """Neumann condition ∂u/∂n = ∇u·n = g on ``points``; the batch entry carries the outward normals ``(x, n)``.

    For space-time points the normal's time component is zero, so the derivative is the spatial normal one.
    """
    _check_field(field, "neumann")
    return Term(
        points, Neumann(_check_data(g, "neumann"), field), description or "du/dn - g = 0 (Neumann)", normals=True
    )


def robin(
    alpha: Any, beta: Any, g: Any = 0.0, *, points: str = "boundary", field: str | None = None, description: str = ""
) -> Term:
    """Robin condition α u + β ∂u/∂n = g on ``points`` (normals in the batch); α, β numbers, names or functions."""
    _check_field(field, "robin")
    fn = Robin(_check_data(alpha, "robin alpha"), _check_data(beta, "robin beta"), _check_data(g, "robin"), field)
    return Term(points, fn, description or "alpha u + beta du/dn - g = 0 (Robin)", normals=True)


def periodic(
    axis: int,
    lo: float,
    hi: float,
    *,
    derivatives: int = 0,
    points: str = "boundary",
    field: str | None = None,
    description: str = "",
) -> Term:
    """Periodicity in coordinate ``axis`` between ``lo`` and ``hi`` as a soft term.

    At every point of ``points`` the value (and the first ``derivatives`` derivatives along the axis) at
    x_axis = lo and x_axis = hi must agree. For an exact periodic model instead, see ``sciml_jax.nn.periodic``.
    """
    _check_field(field, "periodic")
    if isinstance(axis, bool) or not isinstance(axis, int) or axis < 0:
        raise ValueError(f"periodic: axis must be an int >= 0, got {axis!r}")
    if isinstance(derivatives, bool) or not isinstance(derivatives, int) or derivatives < 0:
        raise ValueError(f"periodic: derivatives must be an int >= 0, got {derivatives!r}")
    lo, hi = float(lo), float(hi)
    if not lo < hi:
        raise ValueError(f"periodic: need lo < hi, got lo={lo}, hi={hi}")
    text = description or f"u(x_{axis} = {lo:g}) - u(x_{axis} = {hi:g}) = 0 (periodic" + (
        f", {derivatives} derivative(s))" if derivatives else ")"
    )
    return Term(points, Periodic(axis, lo, hi, derivatives, field), text)


def initial(g: Any = 0.0, *, order: int = 0, points: str = "initial", field: str | None = None,
            description: str = "") -> Term:
    """Initial condition ∂_t^order u(x, t0) = g(x) on the initial slice (time is the last coordinate)."""
    _check_field(field, "initial")
    if isinstance(order, bool) or not isinstance(order, int) or order < 0:
        raise ValueError(f"initial: order must be an int >= 0, got {order!r}")
    what = "u" if order == 0 else f"d^{order}u/dt^{order}"
    return Term(points, Initial(_check_data(g, "initial"), order, field), description or f"{what}(x, t0) - g = 0")
