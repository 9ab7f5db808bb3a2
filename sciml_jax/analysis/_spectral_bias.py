"""Spectral-bias diagnostics: the residual along NTK eigenvectors and Fourier modes over training, and the
linearised gradient-descent prediction; ``fit`` callbacks that record them.

Linearised dynamics. For the loss L = ½‖r‖² and gradient descent θ_(t+1) = θ_t - η Jᵀ r_t, a first-order Taylor
expansion of r around θ_t gives

    r_(t+1) ≈ r_t - η J Jᵀ r_t = (I - η K) r_t.

With K fixed at its value at initialisation, K = Q Λ Qᵀ, the projections c_i(t) = q_iᵀ r_t evolve independently:

    c_i(t) = (1 - η λ_i)^t c_i(0),

so modes with large λ_i (smooth, low-frequency ones for MLPs) are fitted first — spectral bias. The relation is exact
for a model linear in its parameters (K constant, Taylor expansion exact) and holds approximately for wide networks
(lazy regime); how closely it holds for a given network is what :class:`SpectralRecorder` measures.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._jacobian import Batch
from ._ntk import ntk
from ._spectrum import spectrum


@jax.jit
def _project(Q: jax.Array, e: jax.Array) -> jax.Array:
    return e @ Q


@jax.jit
def _linearized(lam: jax.Array, c0: jax.Array, learning_rate: jax.Array, t: jax.Array) -> jax.Array:
    return c0[None, :] * (1.0 - learning_rate * lam[None, :]) ** t[:, None]


@functools.partial(jax.jit, static_argnames=("interval",))
def _fourier(e: jax.Array, xs: jax.Array, f: jax.Array, interval: tuple[float, float]) -> jax.Array:
    phase = 2 * jnp.pi * f[:, None] * (xs[None, :] - interval[0]) / (interval[1] - interval[0])  # (F, M)
    c = jnp.where(f == 0, 1.0, 2.0) / xs.shape[0]
    re = e @ jnp.cos(phase).T
    im = e @ jnp.sin(phase).T
    return c * jnp.sqrt(re**2 + im**2)


def mode_projections(eigenvectors: jax.Array, errors: jax.Array) -> jax.Array:
    """Projections c_i(t) = q_iᵀ e(t) of error/residual vectors on (NTK) eigenvectors.

    Args:
        eigenvectors: Q: (N, k), orthonormal columns q_i.
        errors: e: (N,) or (T, N), one vector per time.

    Returns:
        (k,) or (T, k).
    """
    Q = jnp.asarray(eigenvectors)
    e = jnp.asarray(errors)
    if Q.ndim != 2 or e.shape[-1] != Q.shape[0]:
        raise ValueError(
            f"errors: last axis must have length N = eigenvectors.shape[0] = {Q.shape[0] if Q.ndim == 2 else '?'}; "
            f"got eigenvectors {Q.shape} and errors {e.shape}"
        )
    return _project(Q, e)


def linearized_gd(
    eigenvalues: jax.Array, initial: jax.Array, learning_rate: float, steps: Sequence[int] | jax.Array
) -> jax.Array:
    """Linearised gradient-descent prediction c_i(t) = (1 - η λ_i)^t c_i(0) for the loss ½‖r‖².

    Args:
        eigenvalues: λ: (k,) NTK eigenvalues at initialisation.
        initial: c(0): (k,) projections at t = 0.
        learning_rate: η.
        steps: t: (T,) step numbers.

    Returns:
        (T, k) predicted projections.
    """
    lam = jnp.asarray(eigenvalues)
    c0 = jnp.asarray(initial)
    t = jnp.asarray(steps, dtype=lam.dtype)
    return _linearized(lam, c0, jnp.asarray(learning_rate, lam.dtype), t)


def fourier_projections(
    values: jax.Array,
    x: jax.Array,
    frequencies: Sequence[float] | jax.Array,
    interval: tuple[float, float] = (0.0, 1.0),
) -> jax.Array:
    """Amplitudes of Fourier modes of a 1-D function sampled on a uniform periodic grid.

        â_f = (c_f / M) Σ_j e(x_j) exp(-2πi f (x_j - a) / (b - a)),   amplitude |â_f|,   c_0 = 1, c_f = 2 (f > 0),

    with f in cycles over the interval [a, b) = ``interval`` (the convention of ``regression_1d``). On the uniform
    grid x_j = a + j (b - a) / M (one whole period; integer f < M / 2) this is the exact discrete Fourier
    coefficient: for e(x) = A sin(2π f (x - a) / (b - a) + φ) it returns A. On other point sets it is a Riemann-sum
    approximation.

    Args:
        values: e: (M,) or (T, M).
        x: (M,) or (M, 1) points.
        frequencies: (F,) frequencies f (cycles over the interval).
        interval: (a, b).

    Returns:
        (F,) or (T, F) amplitudes.
    """
    e = jnp.asarray(values)
    xs = jnp.reshape(jnp.asarray(x), (-1,))
    if e.shape[-1] != xs.shape[0]:
        raise ValueError(f"values: last axis must have length M = len(x) = {xs.shape[0]}, got shape {e.shape}")
    f = jnp.asarray(frequencies, dtype=xs.dtype)
    return _fourier(e, xs, f, (float(interval[0]), float(interval[1])))


class SpectralRecorder:
    """``fit`` callback recording the residual along the NTK eigenvectors at initialisation (and Fourier modes).

    At construction the NTK K(θ_0) = Q Λ Qᵀ is computed and diagonalised (dense eigh) and c(0) = Qᵀ r(θ_0)
    recorded; after every ``fit`` chunk it records c(t) = Qᵀ r(θ_t) (one residual evaluation, jitted once) and,
    when ``fourier`` is given, the Fourier amplitudes of an error function on a uniform 1-D grid.

    Use: ``rec = SpectralRecorder(residual, params0, batch); fit(..., callbacks=[rec])``; then ``rec.steps`` (T,),
    ``rec.coefficients`` (T, k), ``rec.predicted(learning_rate)`` (T, k) and ``rec.fourier_amplitudes`` (T, F).

    Args:
        residual: ``residual(params, batch) -> r: (N,)``.
        params: θ_0, the parameters at initialisation.
        batch: the training batch (fixed during the run; the projections use the batch ``fit`` passes).
        k: keep the k leading eigenvectors (default all N).
        fourier: optional ``{"error_fn": params -> (M,), "x": (M,), "frequencies": (F,), "interval": (a, b)}``.
        chunk_size: for the NTK's Jacobian.
    """

    def __init__(
        self,
        residual: Callable,
        params: Any,
        batch: Batch,
        *,
        k: int | None = None,
        fourier: Mapping[str, Any] | None = None,
        chunk_size: int | None = None,
    ):
        K = ntk(residual, params, batch, chunk_size=chunk_size)
        n = K.size
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= n):
            raise ValueError(f"k: expected None or an integer in [1, N={n}], got {k!r}")
        spec = spectrum(K, eigenvectors=True)
        kk = n if k is None else k
        self.ntk = K
        self.spectrum = spec
        self.eigenvalues = np.asarray(spec.eigenvalues[:kk])
        self.eigenvectors = spec.eigenvectors[:, :kk]
        Q = self.eigenvectors
        self._project = jax.jit(lambda p, b: residual(p, b) @ Q)
        self._fourier = None
        if fourier is not None:
            missing = {"error_fn", "x", "frequencies"} - set(fourier)
            if missing:
                raise ValueError(f"fourier: missing keys {sorted(missing)}; expected error_fn, x, frequencies[, interval]")
            fx = jnp.asarray(fourier["x"])
            freqs = jnp.asarray(fourier["frequencies"], dtype=jnp.result_type(float))
            interval = tuple(fourier.get("interval", (0.0, 1.0)))
            err = fourier["error_fn"]
            self.frequencies = np.asarray(freqs)
            self._fourier = jax.jit(lambda p: fourier_projections(err(p), fx, freqs, interval))
        self.steps: list[int] = []
        self._coefficients: list[np.ndarray] = []
        self._fourier_amplitudes: list[np.ndarray] = []
        self.record(0, params, batch)

    def record(self, step: int, params: Any, batch: Batch) -> None:
        """Record c(step) (and the Fourier amplitudes) at ``params``."""
        self.steps.append(int(step))
        self._coefficients.append(np.asarray(self._project(params, batch)))
        if self._fourier is not None:
            self._fourier_amplitudes.append(np.asarray(self._fourier(params)))

    def __call__(self, *, step: int, params: Any, batch: Batch, **_: Any) -> None:
        self.record(step, params, batch)

    @property
    def coefficients(self) -> np.ndarray:
        """(T, k) recorded projections c_i(t)."""
        return np.stack(self._coefficients)

    @property
    def fourier_amplitudes(self) -> np.ndarray | None:
        """(T, F) recorded Fourier amplitudes, or None."""
        return np.stack(self._fourier_amplitudes) if self._fourier is not None else None

    def predicted(self, learning_rate: float) -> np.ndarray:
        """(T, k) linearised GD prediction (1 - η λ_i)^t c_i(0) at the recorded steps."""
        return np.asarray(linearized_gd(self.eigenvalues, self._coefficients[0], learning_rate, self.steps))

    def deviation(self, learning_rate: float, modes: Sequence[int] | None = None) -> np.ndarray:
        """Per mode, max_t |c_i(t) - ĉ_i(t)| / |c_i(0)|: the largest gap between observed and predicted decay,
        relative to the mode's initial size. (k,) or (len(modes),)."""
        obs, pred = self.coefficients, self.predicted(learning_rate)
        idx = np.arange(obs.shape[1]) if modes is None else np.asarray(modes)
        c0 = np.abs(obs[0, idx])
        return np.max(np.abs(obs[:, idx] - pred[:, idx]), axis=0) / np.where(c0 > 0, c0, 1.0)


class ConditionRecorder:
    """``fit`` callback recording the NTK spectrum's conditioning over training.

    Every ``every`` steps (at the first chunk end at or after each multiple) it forms the NTK at the current
    parameters, takes its full spectrum (dense eigh) and records condition_number, λ_max, the smallest eigenvalue
    above the rank threshold, numerical_rank and effective_rank (definitions in :class:`Spectrum`). Cost per record:
    one Jacobian and one N × N eigh, compiled once.

    With ``kappa_rank`` = r it also records κ_r = λ_1 / λ_r, a threshold-free measure of the leading spectrum
    (comparable across runs while numerical_rank >= r, i.e. λ_r above the rank threshold).

    The measurement is compiled once per structure and shapes of (residual, params, batch) and shared by every
    recorder (``equinox.filter_jit``): recorders of problems that differ only in coefficient values reuse it.

    Attributes after a run: ``steps`` and a list per quantity (``condition_number``, ``lambda_max``,
    ``lambda_min``, ``numerical_rank``, ``effective_rank`` and, with ``kappa_rank``, ``kappa_r``).
    """

    def __init__(
        self,
        residual: Callable,
        params: Any,
        batch: Batch,
        *,
        every: int = 1,
        chunk_size: int | None = None,
        rank_rtol: float | None = None,
        kappa_rank: int | None = None,
    ):
        if isinstance(every, bool) or not isinstance(every, int) or every <= 0:
            raise ValueError(f"every: expected a positive integer, got {every!r}")
        if kappa_rank is not None and (isinstance(kappa_rank, bool) or not isinstance(kappa_rank, int) or kappa_rank < 2):
            raise ValueError(f"kappa_rank: expected None or an integer >= 2, got {kappa_rank!r}")
        self.every = every
        self._measure = functools.partial(
            _condition_measures, residual, chunk_size=chunk_size, rank_rtol=rank_rtol, kappa_rank=kappa_rank
        )
        self.steps: list[int] = []
        self.records: dict[str, list[float]] = {}
        self._next = 0
        self.record(0, params, batch)

    def record(self, step: int, params: Any, batch: Batch) -> None:
        out = self._measure(params, batch)
        self.steps.append(int(step))
        for key, v in out.items():
            self.records.setdefault(key, []).append(float(v))
        self._next = (step // self.every + 1) * self.every

    def __call__(self, *, step: int, params: Any, batch: Batch, **_: Any) -> None:
        if step >= self._next:
            self.record(step, params, batch)

    def __getattr__(self, name: str) -> list[float]:
        records = self.__dict__.get("records", {})
        if name in records:
            return records[name]
        raise AttributeError(name)


@eqx.filter_jit
def _condition_measures(residual, params, batch, *, chunk_size, rank_rtol, kappa_rank):
    """Conditioning of the NTK K(θ) on ``batch`` (see :class:`ConditionRecorder`); module level so that the
    compiled computation is cached by structure and shapes, not by recorder."""
    s = spectrum(ntk(residual, params, batch, chunk_size=chunk_size), rank_rtol=rank_rtol)
    lam = s.eigenvalues
    out = {
        "condition_number": s.condition_number,
        "lambda_max": lam[0],
        "lambda_min": jnp.min(jnp.where(jnp.abs(lam) > s.threshold, lam, jnp.inf)),
        "numerical_rank": s.numerical_rank,
        "effective_rank": s.effective_rank,
    }
    if kappa_rank is not None:
        out["kappa_r"] = lam[0] / lam[min(kappa_rank, lam.shape[0]) - 1]
    return out
