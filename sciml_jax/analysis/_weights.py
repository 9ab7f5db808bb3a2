"""NTK trace-ratio loss weights (Wang, Yu & Perdikaris 2022) and a ``fit`` callback that updates them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from .. import pinn
from ._jacobian import Batch, WeightsFromBatch, ntk_diagonal, with_weights


def ntk_trace_weights(
    residual: Callable, params: Any, batch: Batch, *, chunk_size: int | None = None
) -> dict[str, jax.Array]:
    """Trace-ratio loss weights γ_k = tr(K) / tr(K_kk) from the NTK at unit weights.

    Wang, Yu & Perdikaris (2022) weight each loss term by the ratio of the NTK's trace to the trace of the term's
    diagonal block, computed from the *unweighted* residuals, so that every weighted block has the same trace and
    no term's modes are learned much more slowly than another's. Here the loss is a weighted sum of per-term *mean*
    squares, L = ½ Σ_k γ_k mean_i |r_k,i|², so the rule is applied to the NTK of r at γ = 1, whose rows are
    sqrt(1/N_k) ∇θ r_k,i:

        tr(K_kk) = (1/N_k) Σ_i ‖∇θ r_k,i‖²  (the mean diagonal entry of the raw block),
        γ_k = Σ_j tr(K_jj) / tr(K_kk).

    (With equal point counts this is exactly the paper's rule; it is also the mean-diagonal form used by the
    authors' later code.) Only the diagonal of each block is needed — the squared row norms of J — so neither K
    nor J is formed (:func:`ntk_diagonal`, chunked over points).

    Args:
        residual: a :class:`sciml_jax.pinn.Residual` (or :class:`WeightsFromBatch`): the terms are needed.
        params: parameters at which the NTK is taken.
        batch: the residual's batch.
        chunk_size: points per chunk for the per-point Jacobians.

    Returns:
        ``{term: γ_k}`` (scalar arrays), usable as ``residual(params, batch, weights)``. All γ_k >= 1, and the
        term with the largest trace gets the smallest weight.

    Raises:
        ValueError: ``residual`` is not a structured residual with named terms.
    """
    base = residual.base if isinstance(residual, WeightsFromBatch) else residual
    if not isinstance(base, pinn.Residual):
        raise ValueError(
            f"residual: trace-ratio weights need a sciml_jax.pinn.Residual with named terms, got {type(residual).__name__}"
        )
    unit = {name: 1.0 for name in base.term_names}
    diag = ntk_diagonal(base, params, batch, weights=unit, chunk_size=chunk_size)
    traces = {name: jnp.sum(d) for name, d in diag.items()}
    total = sum(traces.values())
    tiny = jnp.finfo(total.dtype).tiny
    return {name: total / jnp.maximum(tr, tiny) for name, tr in traces.items()}


class NTKWeightCallback:
    """``fit`` callback updating trace-ratio weights every ``every`` steps (Wang et al. 2022, Algorithm 1).

    ``fit`` lets a callback replace the batch, not the residual; the weights therefore live in the batch entry
    ``residual.key`` of a :class:`WeightsFromBatch` residual (see :func:`ntk_weighting`, which builds all three
    pieces). At the first chunk end at or after each multiple of ``every`` the callback recomputes
    γ = :func:`ntk_trace_weights` at the current parameters and returns the batch with

        γ_new = momentum · γ_old + (1 - momentum) · γ

    (``momentum = 0``: the paper's plain update; jaxpi-style smoothing with e.g. 0.9). Weight updates therefore
    happen at chunk granularity: choose ``fit(..., chunk=...)`` dividing ``every`` for exact update steps. The
    weighting function is compiled once; the step is not recompiled (same batch structure and shapes).

    Attributes: ``steps`` (update steps) and ``history`` (list of ``{term: γ}`` floats), including step 0.
    """

    def __init__(
        self,
        residual: WeightsFromBatch,
        *,
        every: int,
        momentum: float = 0.0,
        chunk_size: int | None = None,
    ):
        if not isinstance(residual, WeightsFromBatch):
            raise ValueError(
                "residual: expected a WeightsFromBatch (sj.analysis.ntk_weighting builds one), got "
                f"{type(residual).__name__}"
            )
        if isinstance(every, bool) or not isinstance(every, int) or every <= 0:
            raise ValueError(f"every: expected a positive integer, got {every!r}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum: expected a number in [0, 1), got {momentum!r}")
        self.residual = residual
        self.every = every
        self.momentum = float(momentum)
        self._weights = jax.jit(lambda p, b: ntk_trace_weights(residual.base, p, b, chunk_size=chunk_size))
        self.steps: list[int] = []
        self.history: list[dict[str, float]] = []
        self._next = every

    def __call__(self, *, step: int, params: Any, batch: Batch, **_: Any) -> dict[str, Any] | None:
        key = self.residual.key
        if key not in batch:
            raise ValueError(
                f"batch has no entry {key!r} with the loss weights; build the batch with sj.analysis.with_weights "
                "(or use sj.analysis.ntk_weighting)"
            )
        if not self.history:
            self.steps.append(0)
            self.history.append({k: float(v) for k, v in batch[key].items()})
        if step < self._next:
            return None
        self._next = (step // self.every + 1) * self.every
        new = self._weights(params, batch)
        old = batch[key]
        mixed = {k: self.momentum * old[k] + (1.0 - self.momentum) * new[k] for k in new}
        self.steps.append(int(step))
        self.history.append({k: float(v) for k, v in mixed.items()})
        return {"batch": with_weights(batch, mixed, key)}


def ntk_weighting(
    residual: pinn.Residual,
    params: Any,
    batch: Batch,
    *,
    every: int,
    momentum: float = 0.0,
    chunk_size: int | None = None,
    key: str = "loss_weights",
) -> tuple[WeightsFromBatch, dict[str, Any], NTKWeightCallback]:
    """Everything needed to train with NTK trace-ratio weights through ``fit``.

    Returns ``(weighted_residual, batch_with_weights, callback)``: the initial weights are the trace-ratio weights
    at ``params``; pass all three to ``fit(weighted_residual, params, batch_with_weights, ..., callbacks=[callback])``.
    """
    if not isinstance(residual, pinn.Residual):
        raise ValueError(f"residual: expected a sciml_jax.pinn.Residual, got {type(residual).__name__}")
    wres = WeightsFromBatch(residual, key)
    cb = NTKWeightCallback(wres, every=every, momentum=momentum, chunk_size=chunk_size)
    w0 = cb._weights(params, batch)  # the callback's compiled trace-ratio function: compiled once for both
    return wres, with_weights(batch, w0, key), cb

