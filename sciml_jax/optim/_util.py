"""Small helpers shared by the optimizer states."""

from __future__ import annotations

import collections
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp


def param_dtype(params: Any) -> Any:
    """The common float dtype of the parameter leaves (JAX's default float when there are none)."""
    leaves = jax.tree.leaves(params)
    return jnp.result_type(*[x.dtype for x in leaves]) if leaves else jnp.result_type(float)


def _freeze(x: Any) -> Any:
    """A hashable, type-exact key of an argument (dicts and sequences recursively); raises TypeError if impossible."""
    if isinstance(x, dict):
        return ("dict",) + tuple(sorted((str(k), _freeze(v)) for k, v in x.items()))
    if isinstance(x, (list, tuple)) and not hasattr(x, "_fields"):
        return (type(x).__name__,) + tuple(_freeze(v) for v in x)
    hash(x)
    return (type(x), x)  # the type keeps 1, 1.0 and True apart


def memoized(factory: Callable[..., Any], maxsize: int = 64) -> Callable[..., Any]:
    """``factory`` returning the *same* transform for equal hashable arguments (least-recently-used, ``maxsize``).

    fit's compile cache recognises an optimizer by the identity of its ``init``/``update`` functions (JAX cannot
    compare closures), so two calls ``lbfgs()`` would otherwise give two programs to compile. A transform is a pair
    of pure functions, so sharing one between callers is safe. Arguments that cannot be hashed (arrays, say) build
    a fresh transform as before. Written by hand: ``functools.lru_cache`` would treat 1, 1.0 and True as one key.
    """
    cache: collections.OrderedDict = collections.OrderedDict()

    @functools.wraps(factory)
    def build(*args: Any, **kwargs: Any) -> Any:
        try:
            key = (_freeze(args), _freeze(kwargs))
            hash(key)
        except TypeError:
            return factory(*args, **kwargs)
        if key in cache:
            cache.move_to_end(key)
            return cache[key]
        out = factory(*args, **kwargs)
        cache[key] = out
        if len(cache) > maxsize:
            cache.popitem(last=False)
        return out

    return build
