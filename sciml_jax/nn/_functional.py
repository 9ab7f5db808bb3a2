"""The functional view of a model: ``(params, apply)`` with ``apply(params, x)`` pure."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.flatten_util
import numpy as np

from ._mlp import Frozen


def _is_frozen(node: Any) -> bool:
    return isinstance(node, Frozen)


def _trainable(leaf: Any) -> bool:
    # Leaves here are either Frozen subtrees (kept whole by is_leaf=_is_frozen) or ordinary leaves.
    return not isinstance(leaf, Frozen) and eqx.is_inexact_array(leaf)


class Apply(eqx.Module):
    """``apply(params, x) = eqx.combine(params, static)(x)``: the pure apply function of an equinox model.

    A pytree whose structure is the model's architecture (layer sizes, activations) and whose leaves are the
    frozen arrays (e.g. a Fourier-feature matrix), so two models of the same architecture share compiled training
    steps (``sciml_jax.train.fit`` caches them by structure). Hashed and compared by identity, like a function, so
    ``jax.jit(apply)`` works.
    """

    static: Any

    __hash__ = object.__hash__

    def __eq__(self, other):
        return self is other

    def __call__(self, params: Any, x: jax.Array) -> jax.Array:
        return eqx.combine(params, self.static)(x)


def functional(model: eqx.Module) -> tuple[Any, Callable[[Any, jax.Array], jax.Array]]:
    """Splits an equinox model into trainable parameters and a pure apply function.

    ``params, static = eqx.partition(model, trainable, is_leaf=is Frozen)``: params holds the inexact (floating or
    complex) array leaves, with ``None`` in place of everything else; every :class:`Frozen` subtree (e.g. the
    Fourier matrix B) goes whole into ``static``, so it is never differentiated, optimised or counted.

    Args:
        model: an ``equinox.Module`` mapping one point ``x: (d,)`` to ``()`` or ``(m,)``.

    Returns:
        ``(params, apply)`` with ``apply(params, x) = eqx.combine(params, static)(x)``; ``apply`` is an
        :class:`Apply` holding the static part only, so it is pure and works under ``jit``, ``vmap``, ``grad``,
        ``jvp``.
    """
    if not isinstance(model, eqx.Module):
        raise ValueError(f"model must be an equinox.Module, got {type(model).__name__}: {model!r}")
    params, static = eqx.partition(model, _trainable, is_leaf=_is_frozen)
    return params, Apply(static)


def from_nnx(module: Any) -> tuple[Any, Callable[[Any, jax.Array], jax.Array]]:
    """The same ``(params, apply)`` contract for a ``flax.nnx.Module``.

    ``graphdef, params, rest = nnx.split(module, nnx.Param, ...)`` (snapshotted, so later in-place changes of
    ``module`` do not reach them); ``apply(params, x)`` rebuilds a fresh module with
    ``nnx.merge(graphdef, params, rest, copy=True)`` (new Variable objects every call) and calls it on one point, so
    state the module changes while running (RNG counters, statistics) never leaks out: apply is pure. The module
    must map one point ``x: (d,)`` to ``()`` or ``(m,)``.

    Parameter dtype: floating parameters are cast to JAX's default float (``jnp.result_type(float)``: float64 when
    ``jax_enable_x64`` is on, float32 otherwise) and complex ones to the default complex type, because flax builds
    parameters in float32 whatever the x64 setting (``param_dtype=float32``), and a float32 network silently caps a
    float64 run at float32 accuracy. Other state (``rest``: counters, batch statistics) is left as built.

    Returns:
        ``(params, apply)``; params is the ``nnx.State`` of the module's ``nnx.Param`` variables.
    """
    from flax import nnx  # flax is only needed for this adapter

    if not isinstance(module, nnx.Module):
        raise ValueError(f"module must be a flax.nnx.Module, got {type(module).__name__}: {module!r}")
    graphdef, params, rest = nnx.split(module, nnx.Param, ...)
    # Snapshot: rebuilding the states gives new Variable objects, so later in-place changes of `module` (e.g. by an
    # nnx.Optimizer) cannot reach `params` or `rest`.
    params, rest = jax.tree_util.tree_map(lambda a: a, (params, rest))
    params = jax.tree_util.tree_map(_default_float, params)

    def apply(params: Any, x: jax.Array) -> jax.Array:
        # copy=True: the merged module gets its own Variables, so state it writes while running is discarded
        return nnx.merge(graphdef, params, rest, copy=True)(x)

    return params, apply


def _default_float(a: Any) -> Any:
    """Floating arrays -> JAX's default float, complex -> default complex; other leaves unchanged."""
    import jax.numpy as jnp  # noqa: PLC0415

    if eqx.is_inexact_array(a):
        kind = complex if jnp.issubdtype(a.dtype, jnp.complexfloating) else float
        return jnp.asarray(a, dtype=jnp.result_type(kind))
    return a


def ravel(params: Any) -> tuple[jax.Array, Callable[[jax.Array], Any]]:
    """Flattens a parameter pytree: ``flat: (P,)`` (leaves concatenated in tree order) and ``unravel(flat) -> params``.

    A thin wrapper of ``jax.flatten_util.ravel_pytree``; ``None`` holes of equinox params are empty subtrees.
    """
    return jax.flatten_util.ravel_pytree(params)


def num_params(params: Any) -> int:
    """Number P of scalar parameters: the sum of the sizes of the array leaves of ``params``."""
    return int(sum(np.size(leaf) for leaf in jax.tree_util.tree_leaves(params)))
