"""Power-law fits of measured quantities (condition numbers, eigenvalues, errors) against a scale parameter."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def fit_power_law(x: Sequence[float], y: Sequence[float | None]) -> dict:
    """Least-squares fit of y = c · x^b in log-log coordinates: log y = log c + b log x.

    Samples with y None, non-finite or <= 0 (or x <= 0) are left out; repeated x (several seeds per width) are
    all kept. R² = 1 - SS_res / SS_tot of the log-log fit (1 when every log y is equal: the fit is exact).

    Args:
        x: (n,) scale parameters (width, frequency ω, ...).
        y: (n,) measured values.

    Returns:
        ``{"b": exponent, "c": prefactor, "r2": R²}``, all None when fewer than 2 distinct x remain.
    """
    xs = np.asarray(x, dtype=float)
    ys = np.asarray([np.nan if v is None else v for v in y], dtype=float)
    if xs.shape != ys.shape:
        raise ValueError(f"fit_power_law: x and y must have the same length, got {xs.shape} and {ys.shape}")
    ok = np.isfinite(ys) & (ys > 0) & np.isfinite(xs) & (xs > 0)
    if np.unique(xs[ok]).size < 2:
        return {"b": None, "c": None, "r2": None}
    lx, ly = np.log(xs[ok]), np.log(ys[ok])
    b, a = np.polyfit(lx, ly, 1)
    ss = float(np.sum((ly - ly.mean()) ** 2))
    r2 = 1.0 - float(np.sum((ly - (a + b * lx)) ** 2)) / ss if ss > 0 else 1.0
    return {"b": float(b), "c": float(np.exp(a)), "r2": r2}
