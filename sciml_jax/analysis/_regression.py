"""A 1-D multi-frequency regression problem (the spectral-bias experiment's target), registered as ``regression_1d``.

It lives here, beside the diagnostics that use it, because configs name problems before any experiment module is
imported; ``sciml_jax.problems.register`` makes it selectable like the PDE problems.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .. import geometry, problems


def _reals(value: Any, name: str, owner: str, positive: bool = False) -> tuple[float, ...]:
    """A non-empty sequence of finite real numbers (> 0 if ``positive``) as floats, else ValueError."""
    what = "a non-empty list of finite real numbers" + (" > 0" if positive else "")
    if isinstance(value, (str, bytes, dict)) or np.ndim(value) != 1 or len(value) == 0:
        raise ValueError(f"{owner}: {name} must be {what}, got {value!r}")
    out = []
    for v in value:
        ok = not isinstance(v, bool) and isinstance(v, (int, float, np.integer, np.floating)) and np.isfinite(v)
        if not ok or (positive and v <= 0):
            raise ValueError(f"{owner}: {name} must be {what}, got {value!r}")
        out.append(float(v))
    return tuple(out)


def regression_1d(
    frequencies: Any = (1, 2, 4),
    amplitudes: Any = None,
    lo: float = -1.0,
    hi: float = 1.0,
) -> problems.Problem:
    """Regression of a sum of sines on [lo, hi]: the residual is the data misfit u(x) - g(x).

        g(x) = Σ_k a_k sin(2π f_k (x - lo) / (hi - lo)),

    f_k in cycles over the interval (so g is periodic on [lo, hi) and the discrete Fourier transform on a uniform
    grid of the interval recovers a_k exactly). One term, ``"data"``, on the ``"interior"`` point set: the batch is
    ``{"interior": x: (N, 1)}``; the target is a closure, so no labels travel in the batch.

    Args:
        frequencies: f_k > 0, cycles over the interval.
        amplitudes: a_k (default 1 for every frequency), same length as ``frequencies``.
        lo, hi: the interval, lo < hi.

    Returns:
        A :class:`sciml_jax.problems.Problem` with ``exact = g``, order 0 (no derivative), default 256 points.
    """
    owner = "regression_1d"
    freqs = _reals(frequencies, "frequencies", owner, positive=True)
    amps = (1.0,) * len(freqs) if amplitudes is None else _reals(amplitudes, "amplitudes", owner)
    if len(amps) != len(freqs):
        raise ValueError(f"{owner}: amplitudes must have one value per frequency ({len(freqs)}), got {amplitudes!r}")
    lo, hi = _reals([lo, hi], "lo, hi", owner)
    if not lo < hi:
        raise ValueError(f"{owner}: lo must be < hi, got lo={lo!r}, hi={hi!r}")
    length = hi - lo
    terms = {"data": problems.Term("interior", _regression_data, "u(x) - g(x) (data misfit)")}
    shift = f"x - {lo:g}" if lo > 0 else ("x" if lo == 0 else f"x + {-lo:g}")
    desc = (
        f"1-D regression of g(x) = sum_k a_k sin(2 pi f_k ({shift}) / {length:g}) on [{lo:g}, {hi:g}] with "
        f"f = {list(freqs)} cycles over the interval and a = {list(amps)}; the residual is u(x) - g(x)."
    )
    return problems.Problem(
        name="regression_1d",
        domain=geometry.Interval(lo, hi),
        terms=terms,
        exact=_regression_target,
        default_points={"interior": 256},
        order=0,
        options={"frequencies": list(freqs), "amplitudes": list(amps), "lo": lo, "hi": hi},
        description=desc,
        coeffs={"frequencies": freqs, "amplitudes": amps, "lo": lo, "length": length},
    )


def _regression_target(x: jax.Array, c) -> jax.Array:
    return jnp.sum(c["amplitudes"] * jnp.sin(2 * jnp.pi * c["frequencies"] * (x[0] - c["lo"]) / c["length"]))


def _regression_data(u, x, c):
    return u(x) - _regression_target(x, c)


if "regression_1d" not in problems.names():
    problems.register("regression_1d", regression_1d)
