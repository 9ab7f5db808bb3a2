"""Checkpoints of a fit: the carried state (equinox serialisation) and the metadata (step, history)."""

from __future__ import annotations

import json
import os
from typing import Any

import equinox as eqx

from ._history import History


def _checkpoint_paths(directory: str | os.PathLike) -> tuple[str, str]:
    return os.path.join(directory, "checkpoint.eqx"), os.path.join(directory, "checkpoint.json")


def save_checkpoint(
    directory: str | os.PathLike, carry_like: Any, step: int, history: History, extra: dict, batch: Any = None
) -> None:
    """Write ``checkpoint.eqx`` (arrays, equinox serialisation) and ``checkpoint.json`` (step, history, metadata).

    ``batch``: when given (a callback replaced the collocation batch, e.g. adaptive resampling), it is written to
    ``checkpoint_batch.eqx`` and ``batch_saved: true`` goes into the metadata, so a resumed run restores it.
    Files are written to temporary names and renamed, the metadata last, so an interrupted write never leaves a
    half checkpoint.
    """
    os.makedirs(directory, exist_ok=True)
    leaves_path, meta_path = _checkpoint_paths(directory)
    extra = dict(extra, batch_saved=batch is not None)
    if batch is not None:
        batch_path = os.path.join(directory, "checkpoint_batch.eqx")
        eqx.tree_serialise_leaves(batch_path + ".tmp", batch)
        os.replace(batch_path + ".tmp", batch_path)
    tmp = leaves_path + ".tmp"
    eqx.tree_serialise_leaves(tmp, carry_like)
    os.replace(tmp, leaves_path)
    meta = {"step": int(step), "history": history.to_dict(), **extra}
    with open(meta_path + ".tmp", "w") as f:
        json.dump(meta, f)
    os.replace(meta_path + ".tmp", meta_path)


def load_checkpoint(directory: str | os.PathLike, like: Any) -> tuple[Any, dict]:
    """Read a checkpoint written by :func:`save_checkpoint`; ``like`` is a pytree of the same structure."""
    leaves_path, meta_path = _checkpoint_paths(directory)
    if not (os.path.exists(leaves_path) and os.path.exists(meta_path)):
        raise FileNotFoundError(f"no checkpoint in {os.fspath(directory)!r} (expected checkpoint.eqx and checkpoint.json)")
    tree = eqx.tree_deserialise_leaves(leaves_path, like)
    with open(meta_path) as f:
        meta = json.load(f)
    return tree, meta
