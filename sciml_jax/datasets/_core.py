"""The container of an operator-learning data set, its batch entries, seeding and argument validation."""

from __future__ import annotations

import dataclasses
import math
import operator
import types
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..sampling._static import as_key

SPLITS = ("train", "test")


class OperatorSplit(NamedTuple):
    """One split of an operator data set (host numpy float64 arrays).

    Attributes:
        u: input functions at the sensors, ``(B, m)``.
        y: query coordinates, ``(B, Q, d)`` (time last when there is one).
        s: outputs G(u)(y) at the query points, ``(B, Q)``.
        s_grid: outputs on the sensor grid, ``(B, m)`` (for a time-dependent output: at the final time), the
            target of a grid-to-grid model (FNO).
    """

    u: np.ndarray
    y: np.ndarray
    s: np.ndarray
    s_grid: np.ndarray


@dataclasses.dataclass(frozen=True, eq=False)
class OperatorDataset:
    """Input/output pairs of an operator G: u -> s, made in the package from a seed.

    Attributes:
        name: which generator made it (``"antiderivative"``, ``"diffusion_reaction"``, ``"burgers"``).
        sensors: sensor locations x_1..x_m, ``(m,)``; ``u[b, i] = u_b(x_i)`` and ``s_grid[b, i] = s_b(x_i[, T])``.
        train: the training :class:`OperatorSplit`.
        test: the test :class:`OperatorSplit` (drawn from its own random streams: it does not change when the
            number of training functions does).
        config: the generator's arguments and diagnostics (read-only mapping).

    Batch entries (``jnp`` arrays of dtype ``jnp.result_type(float)`` unless ``dtype`` is given) in the toolkit's
    format, a tuple of arrays sharing their leading axis:

    * :meth:`deeponet_entry`: ``(z, s)``, one row per (function, query point) pair, ``z = concat(u_b, y_bq)``:
      ``z: (B Q, m + d)``, ``s: (B Q,)``, for a per-point data term ``apply(params, z) - s``.
    * :meth:`deeponet_grid_entry`: ``(U, Y, S)``, ``(B, m)``, ``(B, Q, d)``, ``(B, Q)``, one row per function,
      for ``sj.nn.deeponet_grid(params, model, U, Y) - S`` (branch evaluated once per function).
    * :meth:`fno_entry`: ``(a, s)``, ``(B, m)`` and ``(B, m)``, for ``vmap(apply)(a) - s``.
    """

    name: str
    sensors: np.ndarray
    train: OperatorSplit
    test: OperatorSplit
    config: Mapping[str, Any]

    def split(self, split: str = "train") -> OperatorSplit:
        """The :class:`OperatorSplit` named ``split`` (``"train"`` or ``"test"``)."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        return getattr(self, split)

    @property
    def n_sensors(self) -> int:
        return int(self.sensors.shape[0])

    @property
    def coord_dim(self) -> int:
        return int(self.train.y.shape[-1])

    def deeponet_entry(self, split: str = "train", dtype: Any = None) -> tuple[jax.Array, jax.Array]:
        """``(z: (B Q, m + d), s: (B Q,))`` with ``z[b Q + q] = concat(u[b], y[b, q])`` (function-major)."""
        sp = self.split(split)
        b, q, _ = sp.y.shape
        z = np.concatenate([np.repeat(sp.u[:, None, :], q, axis=1), sp.y], axis=-1).reshape(b * q, -1)
        return _to_jnp(z, dtype), _to_jnp(sp.s.reshape(b * q), dtype)

    def deeponet_grid_entry(self, split: str = "train", dtype: Any = None) -> tuple[jax.Array, jax.Array, jax.Array]:
        """``(U: (B, m), Y: (B, Q, d), S: (B, Q))`` for :func:`sciml_jax.nn.deeponet_grid`."""
        sp = self.split(split)
        return _to_jnp(sp.u, dtype), _to_jnp(sp.y, dtype), _to_jnp(sp.s, dtype)

    def fno_entry(self, split: str = "train", dtype: Any = None) -> tuple[jax.Array, jax.Array]:
        """``(a: (B, m), s: (B, m))``: input and output functions on the sensor grid."""
        sp = self.split(split)
        return _to_jnp(sp.u, dtype), _to_jnp(sp.s_grid, dtype)


def _to_jnp(a: np.ndarray, dtype: Any) -> jax.Array:
    return jnp.asarray(a, dtype=jnp.result_type(float) if dtype is None else dtype)


def _freeze(config: Mapping[str, Any]) -> Mapping[str, Any]:
    return types.MappingProxyType(dict(config))


# ------------------------------------------------------------------------------------------------------ seeding


def seed_sequence(key: Any, stream: int) -> np.random.SeedSequence:
    """A numpy ``SeedSequence`` for the independent stream number ``stream`` of ``key``.

    ``key`` is an int seed >= 0 or a JAX PRNG key (``sj.sampling`` conventions); its raw key bits are the entropy
    and ``stream`` the spawn key, so streams do not depend on each other or on the sizes requested.
    """
    bits = np.asarray(jax.random.key_data(as_key(key)), dtype=np.uint32).ravel()
    return np.random.SeedSequence(entropy=[int(b) for b in bits], spawn_key=(int(stream),))


def rng(key: Any, stream: int) -> np.random.Generator:
    """``numpy.random.Generator`` (PCG64) on :func:`seed_sequence` ``(key, stream)``."""
    return np.random.default_rng(seed_sequence(key, stream))


# --------------------------------------------------------------------------------------------------- validation


def check_int(value: Any, name: str, owner: str, minimum: int = 1) -> int:
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{owner}: {name} must be an int >= {minimum}, got the bool {value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise ValueError(f"{owner}: {name} must be an int >= {minimum}, got {value!r}") from None
    if value < minimum:
        raise ValueError(f"{owner}: {name} must be an int >= {minimum}, got {value}")
    return value


def check_positive(value: Any, name: str, owner: str, allow_zero: bool = False) -> float:
    ok = not isinstance(value, (bool, np.bool_)) and isinstance(value, (int, float, np.integer, np.floating))
    if ok:
        value = float(value)
        ok = math.isfinite(value) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{owner}: {name} must be a finite real {bound}, got {value!r}")
    return value
