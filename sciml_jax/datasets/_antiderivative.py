"""The antiderivative operator G(u)(x) = int_0^x u(t) dt on [0, 1] (Lu et al. 2021, DeepONet's first example)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ._core import OperatorDataset, OperatorSplit, _freeze, check_int, check_positive, rng
from ._grf import _spline, eval_rows, grf


def spline_antiderivative(x: np.ndarray, u: np.ndarray, points: np.ndarray) -> np.ndarray:
    """s(p) = int_0^p u(t) dt for the not-a-knot cubic-spline interpolant u of grid samples, exactly.

    The spline's antiderivative is a piecewise quartic (``CubicSpline.antiderivative``), so s is exact for the
    interpolant up to round-off; against the sampled function f the error is that of the interpolant,
    |s - int f| <= p * max|f - spline| = O(h^4 max|f''''|), and zero for cubic polynomials.

    Args:
        x: increasing grid ``(n,)`` with x[0] = 0 (the lower limit of the integral).
        u: samples ``(B, n)``.
        points: ``(M,)`` shared or ``(B, M)`` per-function points in [x[0], x[-1]].

    Returns:
        ``(B, M)``.
    """
    x = np.asarray(x, float)
    if x[0] != 0.0:
        raise ValueError(f"spline_antiderivative: the grid must start at 0 (the lower limit), got x[0] = {x[0]}")
    anti = _spline(x, np.asarray(u, float), periodic=False).antiderivative()  # anti(0) = 0
    points = np.asarray(points, float)
    if points.ndim == 1:
        return anti(points).T
    return eval_rows(anti, points)


def antiderivative(
    key: Any = 0,
    *,
    n_train: int = 1000,
    n_test: int = 1000,
    n_sensors: int = 100,
    n_queries: int = 100,
    length_scale: float = 0.2,
    variance: float = 1.0,
    n_grf: int = 1001,
) -> OperatorDataset:
    """Data set of the antiderivative operator u -> s, s(x) = int_0^x u(t) dt, u ~ GRF(rbf, l) on [0, 1].

    Each function u is a GRF sample on ``n_grf`` grid points, interpolated by a cubic spline (as in Lu et al.
    2021); its sensor values are u(x_i) at ``n_sensors`` points ``linspace(0, 1, m)``, its queries y ~ U[0, 1]
    (``n_queries`` per function) and s(y) is the exact integral of the spline (:func:`spline_antiderivative`).
    ``s_grid`` is s at the sensors. Train and test use independent random streams of ``key``.

    Args:
        key: int seed >= 0 or JAX PRNG key.
        n_train, n_test: number of functions per split.
        n_sensors: m sensors.
        n_queries: Q query points per function.
        length_scale, variance: GRF parameters (defaults of the paper: l = 0.2, unit variance).
        n_grf: GRF grid size (spacing must be <= length_scale / 4).

    Returns:
        An :class:`OperatorDataset` with ``y: (B, Q, 1)``.
    """
    owner = "antiderivative"
    n_train = check_int(n_train, "n_train", owner)
    n_test = check_int(n_test, "n_test", owner)
    n_sensors = check_int(n_sensors, "n_sensors", owner, minimum=2)
    n_queries = check_int(n_queries, "n_queries", owner)
    length_scale = check_positive(length_scale, "length_scale", owner)
    variance = check_positive(variance, "variance", owner)
    n_grf = check_int(n_grf, "n_grf", owner, minimum=4)
    t0 = time.perf_counter()
    sensors = np.linspace(0.0, 1.0, n_sensors)
    splits = {}
    for i, (name, n) in enumerate((("train", n_train), ("test", n_test))):
        x, u = grf(key, n, n_grf, length_scale=length_scale, variance=variance, stream=2 * i)
        y = rng(key, 2 * i + 1).uniform(0.0, 1.0, size=(n, n_queries))
        spline = _spline(x, u, periodic=False)
        anti = spline.antiderivative()
        splits[name] = OperatorSplit(u=spline(sensors).T, y=y[..., None], s=eval_rows(anti, y), s_grid=anti(sensors).T)
    config = dict(
        n_train=n_train,
        n_test=n_test,
        n_sensors=n_sensors,
        n_queries=n_queries,
        length_scale=length_scale,
        variance=variance,
        n_grf=n_grf,
        seconds=time.perf_counter() - t0,
    )
    return OperatorDataset("antiderivative", sensors, splits["train"], splits["test"], _freeze(config))
