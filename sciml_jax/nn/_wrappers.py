"""Model wrappers for exact constraints: a periodic input embedding and output transforms (hard constraints).

    net = sj.nn.MLP(emb.out_size, 1, 32, 3, key=key)
    model = sj.nn.Embedded(sj.nn.PeriodicEmbedding(2, {0: 2 * jnp.pi}), net)   # u(x + 2π e_0, t) = u(x, t) exactly
    model = sj.nn.OutputTransform(net, dirichlet_zero)                           # u = x (1 - x) N(x)

Both are equinox modules, so ``sj.nn.functional`` splits them like any model and a training step compiled for one
is reused for another of the same architecture.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp

from ._mlp import _check_size


class PeriodicEmbedding(eqx.Module):
    """x -> (x with every periodic coordinate a replaced by cos(2π j x_a / L_a), sin(2π j x_a / L_a), j = 1..J).

    A network of the embedded point is exactly periodic in each such coordinate (with every derivative), so no
    periodic boundary term is needed (Dong & Ni 2021, "A method for representing periodic functions and enforcing
    exactly periodic boundary conditions with deep neural networks").

    Args:
        in_size: dimension d of a point.
        periods: coordinate index -> period L_a > 0, e.g. ``{0: 2.0}``.
        harmonics: J >= 1 (1 is enough for an MLP after it; more adds explicit higher modes).
    """

    in_size: int = eqx.field(static=True)
    axes: tuple = eqx.field(static=True)
    periods: tuple = eqx.field(static=True)
    harmonics: int = eqx.field(static=True)

    def __init__(self, in_size: int, periods: Mapping[int, float], harmonics: int = 1):
        self.in_size = _check_size(in_size, "in_size", "PeriodicEmbedding")
        self.harmonics = _check_size(harmonics, "harmonics", "PeriodicEmbedding")
        if not isinstance(periods, Mapping) or not periods:
            raise ValueError(f"PeriodicEmbedding: periods must map coordinate index -> period, got {periods!r}")
        axes, lengths = [], []
        for a, length in sorted(periods.items()):
            if isinstance(a, bool) or not isinstance(a, int) or not 0 <= a < self.in_size:
                raise ValueError(f"PeriodicEmbedding: axis must be an int in [0, {self.in_size}), got {a!r}")
            if isinstance(length, bool) or not isinstance(length, (int, float)) or not (
                math.isfinite(length) and length > 0
            ):
                raise ValueError(f"PeriodicEmbedding: the period of axis {a} must be a finite number > 0, got {length!r}")
            axes.append(a)
            lengths.append(float(length))
        self.axes = tuple(axes)
        self.periods = tuple(lengths)

    @property
    def out_size(self) -> int:
        return self.in_size + len(self.axes) * (2 * self.harmonics - 1)

    def __call__(self, x: jax.Array) -> jax.Array:
        keep = [x[i : i + 1] for i in range(self.in_size) if i not in self.axes]
        j = jnp.arange(1, self.harmonics + 1, dtype=x.dtype)
        feats = []
        for a, length in zip(self.axes, self.periods):
            z = 2.0 * jnp.pi * j * x[a] / length
            feats += [jnp.cos(z), jnp.sin(z)]
        return jnp.concatenate(keep + feats)


class Embedded(eqx.Module):
    """``net(embedding(x))``: a model on embedded inputs (e.g. :class:`PeriodicEmbedding`)."""

    embedding: Any
    net: Any

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.net(self.embedding(x))


class OutputTransform(eqx.Module):
    """``transform(x, net(x))``: a hard constraint built into the model's output.

    ``transform`` is a pure function ``(x: (d,), y) -> u`` (static: compiled steps are shared by models with the
    same transform function), e.g. ``lambda x, y: x[0] * (1 - x[0]) * y`` for u(0) = u(1) = 0, or
    ``g(x) + phi(x) * y`` with phi vanishing on the constrained boundary.
    """

    net: Any
    transform: Callable = eqx.field(static=True)

    def __check_init__(self):
        if not callable(self.transform):
            raise ValueError(f"OutputTransform: transform must be a function (x, y) -> u, got {self.transform!r}")

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.transform(x, self.net(x))
