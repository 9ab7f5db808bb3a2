"""Argument checks shared by the differential operators (private).

Two kinds of checks live here: those that can run when an operator is built (types, ``order >= 1``, the method
name, duplicate ``dims``) and those that need the point's dimension ``d``, which is only known when the returned
point function is traced (``dims`` in range, the point being a 1-D floating array). Both raise ``ValueError``
naming the argument, the value received and what is allowed.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def check_callable(f: Any, name: str) -> None:
    """Raises ``ValueError`` unless ``f`` is callable."""
    if not callable(f):
        raise ValueError(f"{name} must be a callable point function x: (d,) -> array, got {f!r}")


def as_int(value: Any, name: str) -> int:
    """Returns ``value`` as a Python int (bools rejected), or raises ``ValueError``."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an integer, got the bool {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer, got {value!r} of type {type(value).__name__}") from None


def check_order(order: Any, name: str = "order") -> int:
    """Returns ``order`` as an int after checking ``order >= 1``."""
    order = as_int(order, name)
    if order < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {order}")
    return order


def check_dims(dims: Any) -> tuple[int, ...] | None:
    """Normalises the ``dims`` argument at build time.

    Args:
        dims: ``None`` (all coordinates) or a non-empty sequence of distinct integers, negative ones counting from
            the end as in NumPy indexing. A single integer is not accepted (write ``(i,)``), so that ``dims=0``
            cannot be mistaken for "no restriction".

    Returns:
        ``None`` or a tuple of Python ints (not yet resolved against ``d``).
    """
    if dims is None:
        return None
    if isinstance(dims, (str, bytes)) or not isinstance(dims, (Sequence, np.ndarray)):
        raise ValueError(
            f"dims must be None or a non-empty tuple of coordinate indices, got {dims!r} of type {type(dims).__name__}"
        )
    if isinstance(dims, np.ndarray):
        if dims.ndim != 1:
            raise ValueError(f"dims must be one-dimensional, got an array of shape {dims.shape}")
        dims = dims.tolist()
    dims = tuple(as_int(i, "dims entry") for i in dims)
    if len(dims) == 0:
        raise ValueError("dims must be None or a non-empty tuple of coordinate indices, got an empty sequence")
    if len(set(dims)) != len(dims):
        raise ValueError(f"dims must not repeat a coordinate, got {dims}")
    return dims


def resolve_dims(dims: tuple[int, ...] | None, d: int) -> tuple[int, ...]:
    """Resolves build-time ``dims`` against the point dimension ``d`` (trace time).

    Returns:
        A tuple of distinct indices in ``[0, d)``, in the order given (``tuple(range(d))`` for ``None``).
    """
    if dims is None:
        return tuple(range(d))
    out = []
    for i in dims:
        if not -d <= i < d:
            raise ValueError(f"dims entry {i} is out of range for a point of dimension d={d}; allowed: -{d} <= i < {d}")
        out.append(i % d)
    if len(set(out)) != len(out):
        raise ValueError(f"dims must not name a coordinate twice, got {dims} which resolves to {tuple(out)} for d={d}")
    return tuple(out)


def resolve_index(i: int, d: int, name: str = "i") -> int:
    """Resolves a (possibly negative) coordinate index against ``d``."""
    if not -d <= i < d:
        raise ValueError(f"{name}={i} is out of range for a point of dimension d={d}; allowed: -{d} <= {name} < {d}")
    return i % d


def check_point(x: Any) -> jax.Array:
    """Returns ``x`` as a JAX array after checking it is one point: a 1-D floating array of shape ``(d,)``."""
    x = jnp.asarray(x)
    if x.ndim != 1 or x.shape[0] == 0:
        raise ValueError(
            f"x must be a single point, a 1-D array of shape (d,) with d >= 1, got shape {x.shape}; "
            "use jax.vmap over a (n, d) array of points"
        )
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise ValueError(f"x must have a floating dtype, got {x.dtype}")
    return x


def check_method(method: Any, allowed: tuple[str, ...]) -> str:
    """Raises ``ValueError`` unless ``method`` is one of ``allowed``."""
    if not isinstance(method, str) or method not in allowed:
        raise ValueError(f"method must be one of {allowed}, got {method!r}")
    return method


def restrict(f: Callable, x: jax.Array, dims: tuple[int, ...]) -> tuple[Callable, jax.Array]:
    """Restricts ``f`` to the coordinates ``dims`` around the point ``x``.

    Returns ``(g, y)`` with ``y = x[dims]: (k,)`` and ``g(z) = f(x with x[dims] replaced by z)``, so that the
    derivatives of ``g`` at ``y`` are the partial derivatives of ``f`` at ``x`` along ``dims`` (in that order).
    The embedding ``z -> x.at[dims].set(z)`` is exact in floating point and differentiable in both ``z`` and
    ``x``, so composing operators (e.g. the Laplacian of a restricted Laplacian) stays correct. When ``dims`` is
    ``(0, 1, ..., d-1)`` no embedding is built.
    """
    d = x.shape[0]
    if dims == tuple(range(d)):
        return f, x
    idx = np.asarray(dims, dtype=np.int32)

    def g(z):
        return f(x.at[idx].set(z))

    return g, x[idx]
