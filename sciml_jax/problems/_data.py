"""Observation data for data terms: loading (.npz, .mat, .csv), validation, subsampling and added noise.

Observations become a batch entry ``(x, y)`` (``x: (n, d)`` inputs in the problem's coordinate order, ``y: (n,)``
or ``(n, k)``) that a data term reads like collocation points, so sharding, mini-batches and checkpoints treat them
like any other entry. Everything is checked once, here, when the file is read:

* every named column exists; scattered columns have one value per row and equal lengths;
* gridded data (coordinate vectors ``x: (n1,)``, ``t: (n2,)`` and values ``u: (n1, n2)``, as in Raissi et al.'s
  ``burgers_shock.mat``) must have the value axes in the order of the inputs; a transposed grid is refused with
  both shapes;
* non-finite rows are counted and refused, or dropped with ``drop_nonfinite=True`` (the count is reported).

Files are read with numpy (``.npz``, ``.csv``) and ``scipy.io.loadmat`` (``.mat``).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

FORMATS = (".npz", ".mat", ".csv")


@dataclasses.dataclass(frozen=True)
class Observations:
    """Validated observations.

    Attributes:
        x: inputs ``(n, d)`` float64, columns in the order of ``inputs``.
        y: outputs ``(n,)`` for one output column, else ``(n, k)``, float64.
        inputs, outputs: the column names.
        source: where they came from (a path or ``"arrays"``).
        rows_read: rows before dropping and subsampling.
        dropped: rows dropped for non-finite values.
        noise: relative Gaussian noise level added (std = noise · std(y) per output column).
    """

    x: np.ndarray
    y: np.ndarray
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    source: str = "arrays"
    rows_read: int = 0
    dropped: int = 0
    noise: float = 0.0

    @property
    def entry(self) -> tuple[np.ndarray, np.ndarray]:
        """The batch entry ``(x, y)``."""
        return self.x, self.y

    def summary(self) -> str:
        parts = [f"{self.x.shape[0]} observations of {', '.join(self.outputs)} at ({', '.join(self.inputs)}) from "
                 f"{self.source}"]
        if self.rows_read != self.x.shape[0]:
            parts.append(f"{self.rows_read} rows read")
        if self.dropped:
            parts.append(f"{self.dropped} non-finite rows dropped")
        if self.noise:
            parts.append(f"{self.noise:g} relative Gaussian noise added")
        return "; ".join(parts)


def _names(value: Any, what: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, Sequence) or not value or any(not isinstance(v, str) or not v for v in value):
        raise ValueError(f"{what}: expected a non-empty list of column names, got {value!r}")
    if len(set(value)) != len(value):
        raise ValueError(f"{what}: column names repeat: {list(value)}")
    return tuple(value)


def _read(path: str) -> dict[str, np.ndarray]:
    ext = os.path.splitext(path)[1].lower()
    if ext not in FORMATS:
        raise ValueError(f"data file {path!r}: unknown format {ext or '(no extension)'!r}; allowed: {', '.join(FORMATS)}")
    if not os.path.isfile(path):
        raise ValueError(f"data file {path!r}: no such file")
    try:
        if ext == ".npz":
            with np.load(path, allow_pickle=False) as f:
                return {k: np.asarray(f[k]) for k in f.files}
        if ext == ".mat":
            import scipy.io  # noqa: PLC0415 - only for .mat files

            raw = scipy.io.loadmat(path)
            return {k: np.asarray(v) for k, v in raw.items() if not k.startswith("__")}
        import csv  # noqa: PLC0415 - only for .csv files

        with open(path, encoding="utf-8", newline="") as f:
            rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
        names = [h.strip() for h in rows[0]] if rows else []
        if not names or len(set(names)) != len(names) or not all(names):
            raise ValueError(f"data file {path!r}: the first line must name the columns, once each; got {names!r}")
        table = np.empty((len(rows) - 1, len(names)))
        for i, row in enumerate(rows[1:], start=2):
            if len(row) != len(names):
                raise ValueError(f"data file {path!r}: line {i} has {len(row)} values for {len(names)} columns")
            for j, cell in enumerate(row):
                cell = cell.strip()
                try:
                    table[i - 2, j] = float(cell) if cell else np.nan  # an empty cell is a missing (non-finite) value
                except ValueError:
                    raise ValueError(
                        f"data file {path!r}: line {i}, column {names[j]!r}: {cell!r} is not a number"
                    ) from None
        return {n: table[:, j] for j, n in enumerate(names)}
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"data file {path!r}: cannot be read ({e.__class__.__name__}: {e})") from None


def _vector(a: np.ndarray) -> np.ndarray | None:
    """A coordinate vector: 1-D, or a MATLAB-style (n, 1) / (1, n) column or row."""
    if a.ndim == 1:
        return a
    if a.ndim == 2 and 1 in a.shape:
        return a.reshape(-1)
    return None


def _as_float(a: Any, where: str, name: str) -> np.ndarray:
    try:
        return np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: column {name!r} is not numeric") from None


def observations_from_arrays(
    columns: dict[str, Any],
    inputs: Sequence[str],
    outputs: Sequence[str],
    *,
    source: str = "arrays",
    drop_nonfinite: bool = False,
    subsample: int | None = None,
    noise: float = 0.0,
    seed: int = 0,
) -> Observations:
    """Observations from named arrays (scattered columns or a grid); see :func:`load_observations`."""
    inputs = _names(inputs, "inputs")
    outputs = _names(outputs, "outputs")
    where = f"data {source!r}" if source != "arrays" else "data"
    missing = [n for n in inputs + outputs if n not in columns]
    if missing:
        raise ValueError(f"{where}: no column {missing[0]!r}; columns: {', '.join(sorted(columns)) or '(none)'}")
    ins = [_as_float(columns[n], where, n) for n in inputs]
    outs = [_as_float(columns[n], where, n) for n in outputs]
    shapes = {n: a.shape for n, a in zip(inputs + outputs, ins + outs)}
    gridded = len(inputs) > 1 and all(a.ndim == len(inputs) for a in outs) and all(
        _vector(a) is not None for a in ins
    ) and any(_vector(a).shape[0] != outs[0].shape[0] for a in ins)
    if gridded:
        # values (n1, ..., nd) over coordinate vectors, value axes in the order of the inputs
        vecs = [_vector(a) for a in ins]
        lengths = tuple(int(v.shape[0]) for v in vecs)
        for n, a in zip(outputs, outs):
            if a.shape != lengths:
                hint = " (transposed: its axes are not in the order of the inputs)" if sorted(a.shape) == sorted(
                    lengths) else ""
                raise ValueError(
                    f"{where}: output {n!r} has shape {a.shape} but the grid of "
                    f"{', '.join(f'{i} {(k,)}' for i, k in zip(inputs, lengths))} needs {lengths}{hint}"
                )
        mesh = np.meshgrid(*vecs, indexing="ij")
        x = np.stack([m.reshape(-1) for m in mesh], axis=1)
        y = np.stack([a.reshape(-1) for a in outs], axis=1)
    else:
        # scattered points: one value per row in every column; all 1-D, or all (n, 1) columns (MATLAB style)
        kinds = {a.shape[1:] for a in ins + outs if a.ndim >= 1}
        ok = all(a.ndim in (1, 2) for a in ins + outs) and kinds in ({()}, {(1,)})
        if not ok or len({s[0] for s in shapes.values()}) != 1:
            raise ValueError(
                f"{where}: scattered columns need one value per row and equal lengths; got shapes "
                + ", ".join(f"{k} {v}" for k, v in shapes.items())
            )
        x = np.stack([a.reshape(-1) for a in ins], axis=1)
        y = np.stack([a.reshape(-1) for a in outs], axis=1)
    rows = x.shape[0]
    if rows == 0:
        raise ValueError(f"{where}: no rows")
    finite = np.isfinite(x).all(axis=1) & np.isfinite(y).all(axis=1)
    dropped = int(rows - finite.sum())
    if dropped:
        per_col = {n: int(np.sum(~np.isfinite(c))) for n, c in zip(inputs + outputs, list(x.T) + list(y.T))}
        cols = ", ".join(f"{k}: {v}" for k, v in per_col.items() if v)
        if not drop_nonfinite:
            raise ValueError(
                f"{where}: {dropped} of {rows} rows have non-finite values (column {cols}); nothing is trained on "
                "them: clean the file or pass drop_nonfinite=True"
            )
        x, y = x[finite], y[finite]
        if x.shape[0] == 0:
            raise ValueError(f"{where}: every row has a non-finite value")
    rng = np.random.default_rng(seed)
    if subsample is not None:
        if isinstance(subsample, bool) or not isinstance(subsample, (int, np.integer)) or subsample < 1:
            raise ValueError(f"subsample: expected a positive integer, got {subsample!r}")
        if subsample > x.shape[0]:
            raise ValueError(f"{where}: subsample={subsample} exceeds the {x.shape[0]} usable rows")
        idx = np.sort(rng.choice(x.shape[0], size=int(subsample), replace=False))
        x, y = x[idx], y[idx]
    if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not np.isfinite(noise) or noise < 0:
        raise ValueError(f"noise: expected a finite number >= 0 (relative to the std of each output), got {noise!r}")
    if noise:
        y = y + float(noise) * np.std(y, axis=0, keepdims=True) * rng.standard_normal(y.shape)
    y = y[:, 0] if y.shape[1] == 1 else y
    return Observations(x, y, inputs, outputs, source, rows, dropped, float(noise))


def load_observations(
    path: str | os.PathLike,
    inputs: Sequence[str],
    outputs: Sequence[str],
    *,
    drop_nonfinite: bool = False,
    subsample: int | None = None,
    noise: float = 0.0,
    seed: int = 0,
) -> Observations:
    """Read observations from a ``.npz``, ``.mat`` or ``.csv`` file and validate them.

    Args:
        path: the file. ``.npz``/``.mat``: arrays named by the columns; ``.csv``: a header line naming the columns.
        inputs: the input columns, in the problem's coordinate order (time last), e.g. ``["x", "t"]``.
        outputs: the observed columns, e.g. ``["u"]`` (several give ``y: (n, k)``).
        drop_nonfinite: drop rows with NaN/inf (reported) instead of refusing the file.
        subsample: keep this many rows, drawn without replacement (seeded).
        noise: add Gaussian noise of standard deviation ``noise · std(y)`` per output (identification studies,
            as Raissi et al. 2019).
        seed: seed of the subsampling and the noise.

    Returns:
        :class:`Observations`; ``.entry`` is the batch entry ``(x, y)``.

    Raises:
        ValueError: one line naming the file, the column and the count or both shapes.
    """
    path = os.fspath(path)
    return observations_from_arrays(
        _read(path), inputs, outputs, source=path, drop_nonfinite=drop_nonfinite, subsample=subsample, noise=noise,
        seed=seed,
    )
