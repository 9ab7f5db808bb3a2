"""A cache of compiled programs keyed on structure, shapes, dtypes and sharding (private).

``fit`` compiles its chunk of training steps ahead of time (``jax.jit(...).lower(...).compile()``) to report the
compile time apart from the step time. JAX's own jit cache is keyed on the identity of the function being jitted,
and every ``fit`` call builds a new closure, so it would compile afresh on every call. Here the key is what the
program actually depends on:

* the *static part* of the pytrees the program closes over (residual, optimizer, metrics): ``eqx.partition(...,
  eqx.is_array)`` leaves functions, names and sizes in the static part, compared by equality (functions by
  identity); documentation fields compare equal whatever their text (``problems.Meta``);
* the shape, dtype and sharding of every array (the dynamic part of those pytrees, and the carry and batch);
* any extra hashable settings (chunk length, sharding spec).

Array values are arguments of the compiled program, never constants, so a residual with other coefficient values
or loss weights reuses the program. JAX offers no cache with this key (its persistent cache still traces and
lowers each new closure), hence this small one, written by hand.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

import equinox as eqx
import jax
import numpy as np

_MAXSIZE = 32


def _aval(x: Any) -> Hashable:
    if isinstance(x, jax.Array):
        return (x.shape, x.dtype, bool(getattr(x, "weak_type", False)))
    arr = np.asarray(x)
    return (arr.shape, jax.dtypes.canonicalize_dtype(arr.dtype), False)


def as_arrays(tree: Any) -> Any:
    """Every numpy array leaf as a JAX array (what a compiled program is called with)."""
    return jax.tree.map(lambda x: jax.numpy.asarray(x) if isinstance(x, np.ndarray) else x, tree)


def split(tree: Any) -> tuple[Any, Any]:
    """``(dynamic, static)``: the array leaves (arguments) and the rest (structure) of a pytree."""
    return eqx.partition(tree, eqx.is_array)


def static_key(static: Any) -> Hashable | None:
    """A hashable key of a static part (treedef and leaves), or None when a leaf cannot be hashed."""
    leaves, treedef = jax.tree.flatten(static)
    try:
        key = (treedef, tuple(leaves))
        hash(key)
    except TypeError:
        return None
    return key


def avals_key(*trees: Any) -> Hashable:
    leaves, treedef = jax.tree.flatten(trees)
    return (treedef, tuple(_aval(x) for x in leaves))


class CompileCache:
    """Least-recently-used cache of compiled executables (thread-safe).

    ``get(key, build)`` returns ``(executable, seconds spent compiling, hit)``; ``build()`` compiles on a miss. A
    ``None`` key is never cached.
    """

    def __init__(self, maxsize: int = _MAXSIZE):
        self.maxsize = maxsize
        self._data: collections.OrderedDict = collections.OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable | None, build: Callable[[], Any]) -> tuple[Any, float, bool]:
        if key is not None:
            with self._lock:
                if key in self._data:
                    self._data.move_to_end(key)
                    self.hits += 1
                    return self._data[key], 0.0, True
        t0 = time.perf_counter()
        value = build()
        seconds = time.perf_counter() - t0
        with self._lock:
            self.misses += 1
            if key is not None:
                self._data[key] = value
                while len(self._data) > self.maxsize:
                    self._data.popitem(last=False)
        return value, seconds, False

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self.hits = self.misses = 0

    def info(self) -> dict[str, int]:
        with self._lock:
            return {"entries": len(self._data), "hits": self.hits, "misses": self.misses, "maxsize": self.maxsize}


CACHE = CompileCache()


def cache_info() -> dict[str, int]:
    """Entries, hits and misses of ``fit``'s cache of compiled training chunks and metric evaluations."""
    return CACHE.info()


def clear_cache() -> None:
    """Empty ``fit``'s cache of compiled programs (frees their device memory)."""
    CACHE.clear()
