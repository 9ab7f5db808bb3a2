"""Data parallelism for ``fit``: collocation points split over devices, parameters replicated.

The parallel engine is JAX's own (``jax.sharding``): nothing here sends messages. A :class:`DataParallel` spec
names a 1-D device mesh with one axis (default ``"data"``); ``fit(..., sharding=spec)``

* splits every batch array along its leading (point) axis over the mesh axis,
  ``NamedSharding(mesh, PartitionSpec("data"))``: device k holds points [k·n/D, (k+1)·n/D) of every entry;
* replicates parameters, optimizer state and scalars, ``NamedSharding(mesh, PartitionSpec())``;
* compiles the scan chunk with these input shardings and replicated outputs, so XLA's SPMD partitioner runs the
  per-point work (residuals, their derivatives, per-point Jacobian rows) on the device that owns the points and
  inserts the collectives itself: the loss and the gradient are all-reduced sums, a Gram matrix JᵀJ is an
  all-reduce of per-device JₖᵀJₖ blocks, CG's products Jᵀw are all-reduced vjps.

The mathematics does not change: r(θ) = concat_k sqrt(γ_k/N_k) r_k(θ) over all points, whatever the devices. Only
the order of floating-point sums does, so sharded and single-device runs agree to round-off (float64: ~1e-15
relative per reduction; the tests assert 1e-12 after 50 steps).

Across hosts (``jax.distributed.initialize()`` first, one process per host) the same spec over ``jax.devices()``
(all global devices) works unchanged when every process passes the same full batch (same sampler seed); see
``docs/PARALLEL.md``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

PyTree = Any


@dataclasses.dataclass(frozen=True)
class DataParallel:
    """A data-parallel layout: a 1-D mesh whose axis ``axis`` splits the points.

    Attributes:
        mesh: the ``jax.sharding.Mesh``; its axis ``axis`` has ``num_devices`` devices (other axes, if any, have
            size 1).
        axis: name of the mesh axis the points are split over.
    """

    mesh: Mesh
    axis: str = "data"

    @property
    def num_devices(self) -> int:
        """Number of devices the points are split over."""
        return int(self.mesh.shape[self.axis])

    @property
    def points(self) -> NamedSharding:
        """Sharding of a point array (n, ...): leading axis split over ``axis``, the rest whole."""
        return NamedSharding(self.mesh, P(self.axis))

    @property
    def replicated(self) -> NamedSharding:
        """Sharding of a replicated value (parameters, optimizer state, scalars): a full copy on every device."""
        return NamedSharding(self.mesh, P())


def data_parallel(devices: Any = None, axis: str = "data") -> DataParallel:
    """Build a :class:`DataParallel` spec.

    Args:
        devices: ``None`` (all of ``jax.devices()``, i.e. every device of every process after
            ``jax.distributed.initialize``), an int D (the first D of ``jax.devices()``), a sequence of devices,
            or a ``jax.sharding.Mesh`` that has an axis named ``axis`` (all its other axes of size 1).
        axis: name of the mesh axis that splits the points.

    Returns:
        The spec to pass as ``fit(..., sharding=spec)``.

    Raises:
        ValueError: ``devices`` is an int outside [1, len(jax.devices())], an empty sequence, or a mesh without the
            axis ``axis`` or with another axis of size > 1; ``axis`` is not a non-empty string.
    """
    if not isinstance(axis, str) or not axis:
        raise ValueError(f"axis: expected a non-empty string naming the mesh axis, got {axis!r}")
    if isinstance(devices, Mesh):
        if axis not in devices.shape:
            raise ValueError(f"devices: the mesh has axes {tuple(devices.axis_names)}, none named axis={axis!r}")
        others = {k: v for k, v in devices.shape.items() if k != axis and v != 1}
        if others:
            raise ValueError(
                f"devices: data parallelism needs a 1-D mesh; axes other than {axis!r} must have size 1, got {others}"
            )
        return DataParallel(devices, axis)
    all_devices = jax.devices()
    if devices is None:
        chosen = list(all_devices)
    elif isinstance(devices, (int, np.integer)) and not isinstance(devices, bool):
        if not 1 <= devices <= len(all_devices):
            raise ValueError(f"devices: expected an int in [1, {len(all_devices)}] (available devices), got {devices}")
        chosen = list(all_devices[: int(devices)])
    elif isinstance(devices, Sequence) and not isinstance(devices, str):
        chosen = list(devices)
        if not chosen:
            raise ValueError("devices: expected a non-empty sequence of devices, got an empty one")
    else:
        raise ValueError(
            f"devices: expected None, an int, a sequence of devices or a jax.sharding.Mesh, got {type(devices).__name__}"
        )
    return DataParallel(Mesh(np.asarray(chosen, dtype=object), (axis,)), axis)


def as_data_parallel(sharding: Any) -> DataParallel:
    """Accept a :class:`DataParallel`, a ``Mesh`` (axis ``"data"``) or anything :func:`data_parallel` takes."""
    if isinstance(sharding, DataParallel):
        return sharding
    return data_parallel(sharding)


def _check_divisible(batch: PyTree, spec: DataParallel) -> None:
    d = spec.num_devices
    for path, leaf in jax.tree_util.tree_leaves_with_path(batch):
        shape = np.shape(leaf)
        if len(shape) >= 1 and shape[0] % d:
            raise ValueError(
                f"batch{jax.tree_util.keystr(path)}: {shape[0]} points cannot be split evenly over {d} devices; "
                f"use a point count divisible by {d} (padding would change the loss)"
            )


def batch_shardings(batch: PyTree, spec: DataParallel) -> PyTree:
    """Per-leaf shardings of a batch: arrays with a leading axis are split over points, scalars replicated."""
    return jax.tree.map(lambda x: spec.points if np.ndim(x) >= 1 else spec.replicated, batch)


def shard_batch(batch: PyTree, spec: Any) -> PyTree:
    """Place a batch on the devices of ``spec``, every array split along its leading (point) axis.

    Each array entry (n, ...) is laid out with ``NamedSharding(mesh, PartitionSpec(axis))``: device k of the D
    devices holds rows [k·n/D, (k+1)·n/D). Scalar leaves (e.g. loss weights kept in the batch) are replicated.

    Args:
        batch: dict (any pytree) of arrays; every non-scalar leaf's leading dimension must be divisible by D.
        spec: a :class:`DataParallel` (or anything :func:`data_parallel` accepts).

    Returns:
        The same pytree of global ``jax.Array``s, sharded.

    Raises:
        ValueError: a leading dimension is not divisible by the number of devices (named in the message).
    """
    spec = as_data_parallel(spec)
    _check_divisible(batch, spec)
    return jax.device_put(batch, batch_shardings(batch, spec))


def replicate(tree: PyTree, spec: Any) -> PyTree:
    """Place every array leaf of ``tree`` on all devices of ``spec`` (a full copy each)."""
    spec = as_data_parallel(spec)
    return jax.tree.map(lambda x: jax.device_put(x, spec.replicated) if isinstance(x, (jax.Array, np.ndarray)) else x,
                        tree)


def _jit_shardings(spec: DataParallel, carry: PyTree, batch: PyTree) -> dict[str, Any]:
    """``jax.jit`` keywords for fit's chunk ``run_chunk(carry, batch, start, stop)``: replicated carry and outputs,
    points split."""
    rep = spec.replicated
    return {
        "in_shardings": (jax.tree.map(lambda _: rep, carry), batch_shardings(batch, spec), rep, rep),
        "out_shardings": rep,
    }


def describe(spec: DataParallel) -> Mapping[str, Any]:
    """A JSON-able summary ({axis, num_devices, platform}) for reports."""
    devs = spec.mesh.devices.ravel()
    return {"axis": spec.axis, "num_devices": spec.num_devices, "platform": devs[0].platform}
