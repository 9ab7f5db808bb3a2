"""First- and higher-order differential operators on point functions.

Every operator takes a point function ``f: (d,) -> out`` and returns a new point function of one point
``x: (d,)``. The returned functions are pure JAX: they can be jitted, vmapped over points and differentiated
(forward or reverse mode) with respect to anything ``f`` closes over, e.g. network parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp

from . import _validation as _v


def _along(h: Callable, v: jax.Array) -> Callable:
    """Returns ``y -> Dh(y)[v]``, the directional derivative of ``h`` along ``v`` (one forward-mode pass)."""

    def dh(y):
        return jax.jvp(h, (y,), (v,))[1]

    return dh


def _directional(f: Callable, v: jax.Array, order: int) -> Callable:
    """Returns ``y -> d^order/dt^order f(y + t v) at t = 0`` by nesting ``order`` forward-mode JVPs.

    Nesting JVPs costs about ``2**order`` evaluations of ``f``; it needs no reverse pass and works for any
    output shape and any primitive JAX can differentiate.
    """
    g = f
    for _ in range(order):
        g = _along(g, v)
    return g


def grad(f: Callable, dims: Sequence[int] | None = None) -> Callable:
    """Gradient of a scalar point function, optionally restricted to some coordinates.

    Math: ``grad f(x) = (df/dx_j for j in dims)``.

    Args:
        f: Point function ``(d,) -> ()``.
        dims: Coordinates to differentiate along (``None``: all ``d``). Negative indices count from the end,
            e.g. ``dims=tuple(range(d - 1))`` gives the spatial gradient of a space-time function.

    Returns:
        ``x: (d,) -> (k,)`` with ``k = len(dims)`` (``d`` if ``dims`` is ``None``), in the order of ``dims``.
        One reverse-mode pass per point.

    Raises:
        ValueError: ``f`` not callable or ``dims`` malformed (at build time); ``dims`` out of range, ``x`` not a
            1-D floating array, or ``f(x)`` not a scalar (when the returned function is traced).
    """
    _v.check_callable(f, "f")
    dims_ = _v.check_dims(dims)

    def grad_f(x):
        x = _v.check_point(x)
        g, y = _v.restrict(f, x, _v.resolve_dims(dims_, x.shape[0]))
        out, pullback = jax.vjp(g, y)
        if out.shape != ():
            raise ValueError(f"grad needs a scalar point function, but f(x) has shape {out.shape}")
        return pullback(jnp.ones_like(out))[0]

    return grad_f


def partial(f: Callable, i: int, order: int = 1) -> Callable:
    """Partial derivative of any order along one coordinate.

    Math: ``partial(f, i, n)(x) = d^n f / dx_i^n (x)``, computed as the ``n``-th derivative of ``t -> f(x + t e_i)``
    at ``t = 0`` by nesting ``n`` forward-mode JVPs (cost about ``2**n`` evaluations of ``f``; cheap for the
    orders that occur in PDEs).

    Args:
        f: Point function ``(d,) -> out`` (any output shape; the derivative is taken componentwise).
        i: Coordinate index, negative counting from the end (``-1`` is time in a space-time point).
        order: Derivative order, an integer ``>= 1``.

    Returns:
        ``x: (d,) -> out``, the same shape as ``f(x)``.

    Raises:
        ValueError: ``f`` not callable, ``i`` not an integer, ``order < 1`` (build time); ``i`` out of range or
            ``x`` not a 1-D floating array (trace time).
    """
    _v.check_callable(f, "f")
    i = _v.as_int(i, "i")
    order = _v.check_order(order)

    def partial_f(x):
        x = _v.check_point(x)
        j = _v.resolve_index(i, x.shape[0])
        e = jnp.zeros_like(x).at[j].set(1)
        return _directional(f, e, order)(x)

    return partial_f


def time_derivative(f: Callable, order: int = 1) -> Callable:
    """Time derivative ``d^order f / dt^order`` of a space-time point function (time is the LAST coordinate).

    Same as ``partial(f, -1, order)``.

    Args:
        f: Point function ``(d,) -> out`` with ``x = (x_1, ..., x_{d-1}, t)``.
        order: Derivative order, an integer ``>= 1``.

    Returns:
        ``x: (d,) -> out``.
    """
    _v.check_callable(f, "f")
    return partial(f, -1, _v.check_order(order))


def divergence(F: Callable, dims: Sequence[int] | None = None) -> Callable:
    """Divergence of a vector field over the coordinates ``dims``.

    Math: ``div F(x) = sum_j dF_j/dx_{dims[j]} (x)``, the trace of the ``(k, k)`` Jacobian of ``F`` along
    ``dims``. Computed by one linearisation of ``F`` and ``k`` forward-mode products with the unit vectors.

    Args:
        F: Vector field ``(d,) -> (k,)`` with ``k = len(dims)`` (``d`` if ``dims`` is ``None``); component ``j``
            pairs with coordinate ``dims[j]``.
        dims: Coordinates (``None``: all), e.g. the spatial ones of a space-time point.

    Returns:
        ``x: (d,) -> ()``.

    Raises:
        ValueError: ``F`` not callable or ``dims`` malformed (build time); ``dims`` out of range, ``x`` not a 1-D
            floating array, or ``F(x)`` not of shape ``(k,)`` (trace time).
    """
    _v.check_callable(F, "F")
    dims_ = _v.check_dims(dims)

    def div_F(x):
        x = _v.check_point(x)
        g, y = _v.restrict(F, x, _v.resolve_dims(dims_, x.shape[0]))
        k = y.shape[0]
        out, lin = jax.linearize(g, y)
        if out.shape != (k,):
            raise ValueError(
                f"divergence needs F(x) of shape (len(dims),) = ({k},) for dims={dims_}, got shape {out.shape}"
            )
        basis = jnp.eye(k, dtype=y.dtype)
        jac_t = jax.vmap(lin)(basis)  # row j = dF/dx_{dims[j]}: (k, k)
        return jnp.trace(jac_t)

    return div_F


def hessian(f: Callable, dims: Sequence[int] | None = None) -> Callable:
    """Hessian matrix of a scalar point function along ``dims``.

    Math: ``H[a, b] = d^2 f / dx_{dims[a]} dx_{dims[b]}``; computed by ``jax.hessian`` (forward over reverse).

    Args:
        f: Point function ``(d,) -> ()``.
        dims: Coordinates (``None``: all).

    Returns:
        ``x: (d,) -> (k, k)``, symmetric.

    Raises:
        ValueError: ``f`` not callable or ``dims`` malformed (build time); ``dims`` out of range, ``x`` not a 1-D
            floating array, or ``f(x)`` not a scalar (trace time).
    """
    _v.check_callable(f, "f")
    dims_ = _v.check_dims(dims)

    def hess_f(x):
        x = _v.check_point(x)
        g, y = _v.restrict(f, x, _v.resolve_dims(dims_, x.shape[0]))
        out_shape = jax.eval_shape(g, y).shape
        if out_shape != ():
            raise ValueError(f"hessian needs a scalar point function, but f(x) has shape {out_shape}")
        return jax.hessian(g)(y)

    return hess_f
