"""Checkpoints of a fit: arrays and metadata committed as one unit, verified on load.

Layout of a checkpoint directory::

    checkpoint.json                    the commit record: step, history, status, extra metadata, and for each
                                       array file its name, size, SHA-256 and leaf signature (path, shape, dtype)
    checkpoint-<step>-<tag>.eqx        the carried state (equinox serialisation of the pytree's leaves)
    checkpoint-<step>-<tag>.batch.eqx  the collocation batch, when a callback replaced it (adaptive resampling)

Array files get a fresh name at every save and are written (to ``*.tmp``, flushed, fsync'd, renamed) before the
record; the record is then replaced atomically (``os.replace``). That rename is the single commit point: a crash
before it leaves the previous record pointing at the previous, untouched array files; a crash after it leaves a
complete new checkpoint. Array files the record no longer names are removed after the commit. On load the size and
hash of every array file are checked against the record, and the saved leaf signature against ``like``: a torn,
edited or mismatched checkpoint, or a change of structure, shape or dtype, is refused with one line
(:class:`CheckpointError`), never converted or silently accepted.

The scheme is written by hand (write-new-then-rename-the-record, as in log-structured stores): orbax does the same
for whole directories but would add a heavy dependency for a few hundred kilobytes of state.
"""

from __future__ import annotations

import glob
import hashlib
import io
import json
import os
import uuid
from collections.abc import Mapping
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._history import History

FORMAT = 2
RECORD = "checkpoint.json"
_LEGACY_ARRAYS = "checkpoint.eqx"  # format 1 (no integrity record): read, verified against `like`, never written
_LEGACY_BATCH = "checkpoint_batch.eqx"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: torn, damaged, or not matching the state it should restore."""


# ------------------------------------------------------------------------------------------- helpers


def _write_bytes(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` durably: a ``.tmp`` sibling, flushed and fsync'd, then renamed into place."""
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


def _fsync_dir(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # e.g. platforms without directory file descriptors
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def _serialise(tree: Any) -> bytes:
    buf = io.BytesIO()
    eqx.tree_serialise_leaves(buf, tree)
    return buf.getvalue()


def _leaf_signature(tree: Any) -> list[list]:
    """``[[path, shape, dtype], ...]`` for array leaves, ``[path, None, type name]`` for other leaves."""
    out = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        key = jax.tree_util.keystr(path)
        if isinstance(leaf, (jax.Array, np.ndarray, np.generic, jax.ShapeDtypeStruct)):
            out.append([key, list(np.shape(leaf)), str(leaf.dtype)])
        else:
            out.append([key, None, type(leaf).__name__])
    return out


def _compare_signatures(saved: list, expected: list, what: str, directory: str) -> None:
    """Raise :class:`CheckpointError` naming the first difference between two leaf signatures."""
    where = f"checkpoint in {directory!r}"
    if len(saved) != len(expected):
        raise CheckpointError(
            f"{where}: its {what} has {len(saved)} leaves, this run expects {len(expected)} "
            "(model, optimizer or problem changed?); refusing to load"
        )
    for (sp, ss, sd), (ep, es, ed) in zip(saved, expected):
        if sp != ep or ss != es:
            raise CheckpointError(
                f"{where}: {what} leaf {sp or '(root)'} {tuple(ss) if ss is not None else sd} does not match the "
                f"expected {ep or '(root)'} {tuple(es) if es is not None else ed} (model, optimizer or problem "
                "changed?); refusing to load"
            )
        if sd != ed:
            raise CheckpointError(
                f"{where}: {what} leaf {sp or '(root)'} was saved as {sd}, this run expects {ed} (dtype or "
                "jax_enable_x64 changed?); refusing to convert"
            )


def _file_record(name: str, data: bytes, tree: Any) -> dict:
    return {"file": name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(), "leaves": _leaf_signature(tree)}


def _read_verified(directory: str, rec: Mapping, what: str) -> bytes:
    """The bytes of the array file named by ``rec``, after checking its size and SHA-256."""
    name = rec.get("file")
    if not isinstance(name, str) or os.path.basename(name) != name:
        raise CheckpointError(f"checkpoint in {directory!r}: the record names no valid {what} file; refusing to load")
    path = os.path.join(directory, name)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise CheckpointError(
            f"checkpoint in {directory!r} is torn: its record (step {rec.get('_step', '?')}) names {name}, which is "
            "missing; refusing to load"
        ) from None
    if len(data) != rec.get("bytes") or hashlib.sha256(data).hexdigest() != rec.get("sha256"):
        raise CheckpointError(
            f"checkpoint in {directory!r} is torn or damaged: {name} ({len(data)} bytes) does not match its record "
            f"(step {rec.get('_step', '?')}, {rec.get('bytes')} bytes, SHA-256 {str(rec.get('sha256'))[:12]}...); "
            "refusing to load"
        )
    return data


def _deserialise(data: bytes, like: Any, what: str, directory: str) -> Any:
    """Read leaves into ``like``'s structure, checking each array's shape and dtype before any conversion.

    ``jnp.load`` would silently turn a float64 array into float32 when x64 is off; here every array is read with
    NumPy, compared with its ``like`` leaf, and only then made a jax array (of the same dtype).
    """
    expected = [sig for sig in _leaf_signature(like)]
    arrays = iter([sig for sig in expected if sig[1] is not None])

    def spec(f, x):
        if isinstance(x, (jax.Array, jax.ShapeDtypeStruct, np.ndarray)):
            a = np.load(f)
            path, shape, dtype = next(arrays)
            _compare_signatures([[path, list(a.shape), str(a.dtype)]], [[path, shape, dtype]], what, directory)
            return a if isinstance(x, np.ndarray) else jnp.asarray(a)
        return eqx.default_deserialise_filter_spec(f, x)

    buf = io.BytesIO(data)
    try:
        tree = eqx.tree_deserialise_leaves(buf, like, filter_spec=spec)
    except CheckpointError:
        raise
    except Exception as e:  # noqa: BLE001 - a truncated/garbled stream: report it as one line
        raise CheckpointError(
            f"checkpoint in {directory!r}: its {what} cannot be read into the expected structure "
            f"({type(e).__name__}); refusing to load"
        ) from None
    if buf.read(1):
        raise CheckpointError(
            f"checkpoint in {directory!r}: its {what} holds more leaves than this run expects (model, optimizer or "
            "problem changed?); refusing to load"
        )
    return tree


# ------------------------------------------------------------------------------------------- public API


def save_checkpoint(
    directory: str | os.PathLike,
    tree: Any,
    step: int,
    history: History,
    extra: Mapping[str, Any] | None = None,
    batch: Any = None,
) -> None:
    """Write a checkpoint of ``tree`` at ``step`` into ``directory``, atomically (see the module docstring).

    Args:
        directory: the checkpoint directory (created if needed).
        tree: the pytree to save (e.g. parameters and optimizer state).
        step: the global step the state belongs to.
        history: the :class:`History` up to ``step`` (stored in the record, JSON).
        extra: further JSON-serialisable metadata (e.g. ``status``, the run's ``config``); keys ``format``,
            ``step``, ``history``, ``arrays`` and ``batch`` are reserved.
        batch: when given (a callback replaced the collocation batch, e.g. adaptive resampling), it is saved too and
            :func:`load_checkpoint` restores it.

    The previous checkpoint stays valid until the new record is in place; its array files are removed afterwards.
    """
    directory = os.fspath(directory)
    os.makedirs(directory, exist_ok=True)
    extra = dict(extra or {})
    reserved = {"format", "step", "history", "arrays", "batch"} & set(extra)
    if reserved:
        raise ValueError(f"extra: keys {sorted(reserved)} are reserved for the checkpoint record")
    tag = f"checkpoint-{int(step):09d}-{uuid.uuid4().hex[:8]}"
    data = _serialise(tree)
    arrays = _file_record(f"{tag}.eqx", data, tree)
    _write_bytes(os.path.join(directory, arrays["file"]), data)
    batch_rec = None
    if batch is not None:
        bdata = _serialise(batch)
        batch_rec = _file_record(f"{tag}.batch.eqx", bdata, batch)
        _write_bytes(os.path.join(directory, batch_rec["file"]), bdata)
    record = {
        "format": FORMAT,
        "step": int(step),
        "arrays": arrays,
        "batch": batch_rec,
        **extra,
        "history": history.to_dict(),
    }
    text = json.dumps(record, allow_nan=True)
    _write_bytes(os.path.join(directory, RECORD), text.encode())  # the commit point
    _fsync_dir(directory)
    keep = {arrays["file"]} | ({batch_rec["file"]} if batch_rec else set())
    for path in glob.glob(os.path.join(directory, "checkpoint-*.eqx")) + [
        os.path.join(directory, _LEGACY_ARRAYS),
        os.path.join(directory, _LEGACY_BATCH),
    ]:
        if os.path.basename(path) not in keep:
            _remove(path)
    for path in glob.glob(os.path.join(directory, "checkpoint*.tmp")):  # left by a writer that was killed
        pid = path.rsplit(".", 2)[-2]
        if pid.isdigit() and (int(pid) == os.getpid() or not _pid_alive(int(pid))):  # ours: no write in flight
            _remove(path)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def has_checkpoint(directory: str | os.PathLike) -> bool:
    """Whether ``directory`` holds a checkpoint record (not whether it is intact: see :func:`read_checkpoint_meta`)."""
    return os.path.isfile(os.path.join(os.fspath(directory), RECORD))


def read_checkpoint_meta(directory: str | os.PathLike, *, verify: bool = True) -> dict:
    """The record of the checkpoint in ``directory`` (step, status, history, extra metadata), without loading arrays.

    With ``verify`` (default) the array files are checked against the record (present, size, SHA-256).

    Raises:
        FileNotFoundError: no checkpoint record in ``directory``.
        CheckpointError: the record is unreadable or the array files do not match it.
    """
    directory = os.fspath(directory)
    path = os.path.join(directory, RECORD)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no checkpoint in {directory!r} (expected {RECORD})")
    try:
        with open(path, "rb") as f:
            meta = json.loads(f.read().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"checkpoint in {directory!r}: {RECORD} is damaged ({type(e).__name__}); refusing to load") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("step"), int) or "history" not in meta:
        raise CheckpointError(f"checkpoint in {directory!r}: {RECORD} is not a checkpoint record; refusing to load")
    if meta.get("format", 1) == 1:
        if not os.path.isfile(os.path.join(directory, _LEGACY_ARRAYS)):
            raise CheckpointError(f"checkpoint in {directory!r} is torn: {_LEGACY_ARRAYS} is missing; refusing to load")
        return meta
    if meta.get("format") != FORMAT:
        raise CheckpointError(
            f"checkpoint in {directory!r}: format {meta.get('format')!r} is not supported (expected {FORMAT})"
        )
    steps = meta["history"].get("steps") or [] if isinstance(meta["history"], Mapping) else None
    if steps is None or (steps and steps[-1] != meta["step"] - 1):
        raise CheckpointError(
            f"checkpoint in {directory!r}: the record's step {meta['step']} does not match its history; refusing to load"
        )
    if verify:
        for what in ("arrays", "batch"):
            rec = meta.get(what)
            if rec is not None:
                _read_verified(directory, {**rec, "_step": meta["step"]}, what)
    return meta


def load_checkpoint(
    directory: str | os.PathLike, like: Any, *, batch_like: Any = None
) -> tuple[Any, dict, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`, verified against its record and against ``like``.

    Args:
        directory: the checkpoint directory.
        like: a pytree with the structure, shapes and dtypes of the saved state (e.g. the freshly initialised one).
        batch_like: the batch the run would use; when the checkpoint holds a batch, it is read into this structure.

    Returns:
        ``(tree, meta, batch)``: the restored pytree (jax arrays where ``like`` has jax arrays), the record (``step``,
        ``history`` as a dict, ``status`` and any ``extra`` metadata), and the saved batch or ``None``.

    Raises:
        FileNotFoundError: no checkpoint in ``directory``.
        CheckpointError: torn or damaged files, or a structure, shape or dtype different from ``like``/``batch_like``
            (one line naming the first differing leaf; dtypes are never converted).
    """
    directory = os.fspath(directory)
    meta = read_checkpoint_meta(directory, verify=False)
    batch = None
    if meta.get("format", 1) == 1:  # legacy: no record to verify against; the leaves are still checked below
        with open(os.path.join(directory, _LEGACY_ARRAYS), "rb") as f:
            tree = _deserialise(f.read(), like, "state", directory)
        if meta.get("batch_saved") and batch_like is not None:
            with open(os.path.join(directory, _LEGACY_BATCH), "rb") as f:
                batch = _deserialise(f.read(), batch_like, "batch", directory)
        return tree, meta, batch
    _compare_signatures(meta["arrays"]["leaves"], _leaf_signature(like), "state", directory)
    tree = _deserialise(_read_verified(directory, {**meta["arrays"], "_step": meta["step"]}, "arrays"), like,
                        "state", directory)
    if meta.get("batch") is not None and batch_like is not None:
        rec = meta["batch"]
        _compare_signatures(rec["leaves"], _leaf_signature(batch_like), "batch", directory)
        batch = _deserialise(_read_verified(directory, {**rec, "_step": meta["step"]}, "batch"), batch_like,
                             "batch", directory)
    return tree, meta, batch
