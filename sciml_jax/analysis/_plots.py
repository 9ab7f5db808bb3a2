"""Matplotlib figures for the analysis: spectra (per-term blocks), per-mode decay vs prediction, conditioning.

Every function draws a new figure, saves it to ``path`` (PNG) and closes it, returning the path; with
``path=None`` it returns the figure. Agg is selected when no display is available, so this works headless.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

if os.environ.get("MPLBACKEND") is None and not os.environ.get("DISPLAY"):
    matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ._ntk import NTK  # noqa: E402
from ._spectrum import Spectrum  # noqa: E402


def _finish(fig: Any, path: str | os.PathLike | None) -> Any:
    fig.tight_layout()
    if path is None:
        return fig
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return os.fspath(path)


def _eigenvalues(x: Any) -> np.ndarray:
    if isinstance(x, Spectrum):
        return np.asarray(x.eigenvalues)
    if isinstance(x, NTK):
        return np.linalg.eigvalsh(np.asarray(x.K))[::-1]
    a = np.asarray(x)
    return np.linalg.eigvalsh(a)[::-1] if a.ndim == 2 else np.sort(a)[::-1]


def plot_spectrum(
    spectra: Any,
    path: str | os.PathLike | None = None,
    *,
    title: str = "",
    rank_rtol: float | None = None,
) -> Any:
    """Eigenvalues λ_i (descending) vs index i on a log scale.

    Args:
        spectra: an :class:`NTK` (K and each diagonal block K_kk are drawn), a :class:`Spectrum`, an eigenvalue
            array, a symmetric matrix, or a mapping label -> any of these.
        path: PNG path or None.
        title: figure title.
        rank_rtol: draw the rank threshold τ = rank_rtol · λ_max of the first curve (default: max(N, P) · eps for
            an NTK, none otherwise).
    """
    if isinstance(spectra, NTK):
        K = spectra
        items = {"K (all terms)": K}
        if len(K.term_names) > 1:
            items.update({f"K[{n},{n}]": np.asarray(K.block(n)) for n in K.term_names})
        if rank_rtol is None:
            rank_rtol = max(K.size, K.num_params) * np.finfo(np.asarray(K.K).dtype).eps
    elif isinstance(spectra, Mapping):
        items = dict(spectra)
    else:
        items = {"eigenvalues": spectra}
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    first = None
    for label, x in items.items():
        ev = _eigenvalues(x)
        first = ev if first is None else first
        pos = ev > 0
        idx = np.arange(1, ev.size + 1)
        ax.semilogy(idx[pos], ev[pos], marker=".", ms=3, lw=1.0, label=label)
    if rank_rtol is not None and first is not None and first.size:
        ax.axhline(rank_rtol * first[0], color="0.4", ls=":", lw=1.0, label="rank threshold τ")
    ax.set_xlabel("index i")
    ax.set_ylabel("eigenvalue λ_i")
    ax.set_title(title or "spectrum")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return _finish(fig, path)


def plot_mode_decay(
    steps: Sequence[int],
    observed: np.ndarray,
    predicted: np.ndarray | None = None,
    path: str | os.PathLike | None = None,
    *,
    eigenvalues: Sequence[float] | None = None,
    others: Mapping[str, tuple[Sequence[int], np.ndarray]] | None = None,
    label: str = "observed",
    title: str = "",
) -> Any:
    """|c_i(t)| per mode vs step (log scale): observed (solid) with the linearised prediction (dashed); each run in
    ``others`` (e.g. Adam) in a panel of its own, same colours per mode and same axes.

    Args:
        steps: (T,) steps.
        observed: (T, k) projections c_i(t).
        predicted: (T, k) predictions (1 - η λ_i)^t c_i(0), or None.
        eigenvalues: (k,) λ_i for the legend.
        others: run label -> (steps, (T', k) projections).
        label: name of the main run (first panel title).
        title: figure title.
    """
    from matplotlib.lines import Line2D

    observed = np.asarray(observed)
    k = observed.shape[1]
    others = dict(others or {})
    colors = plt.cm.viridis(np.linspace(0.0, 0.9, max(k, 1)))
    n = 1 + len(others)
    fig, axes = plt.subplots(1, n, figsize=(6.4 * n, 4.4), squeeze=False, sharey=True)
    floor = np.finfo(float).tiny
    ax = axes[0, 0]
    for i in range(k):
        lab = f"mode {i + 1}" + (f" (λ={eigenvalues[i]:.2e})" if eigenvalues is not None else "")
        ax.semilogy(steps, np.maximum(np.abs(observed[:, i]), floor), color=colors[i], lw=1.5, label=lab)
        if predicted is not None:
            ax.semilogy(steps, np.maximum(np.abs(predicted[:, i]), floor), color=colors[i], lw=1.0, ls="--")
    handles, _ = ax.get_legend_handles_labels()
    extra = [Line2D([], [], color="k", lw=1.5, label="observed")]
    if predicted is not None:
        extra.append(Line2D([], [], color="k", lw=1.0, ls="--", label="predicted (1-ηλ_i)^t c_i(0)"))
    ax.legend(handles=handles + extra, fontsize=7, ncol=2)
    ax.set_title(label)
    seen = [np.abs(observed[np.abs(observed) > 0])]
    for ax, (name, (s2, c2)) in zip(axes[0, 1:], others.items()):
        c2 = np.asarray(c2)
        for i in range(k):
            ax.semilogy(s2, np.maximum(np.abs(c2[:, i]), floor), color=colors[i], lw=1.2)
        ax.set_title(name)
        seen.append(np.abs(c2[np.abs(c2) > 0]))
    seen = np.concatenate(seen)
    for ax in axes[0]:
        if seen.size:  # predictions of fast modes underflow to 1e-300: keep the axis on what was observed
            ax.set_ylim(max(seen.min() / 10.0, seen.max() * 1e-12), seen.max() * 3.0)
        ax.set_xlabel("step t")
        ax.grid(True, which="both", alpha=0.3)
    axes[0, 0].set_ylabel("|q_iᵀ r(t)|")
    fig.suptitle(title or "residual along the NTK eigenvectors at initialisation")
    return _finish(fig, path)


def plot_fourier_decay(
    runs: Mapping[str, tuple[Sequence[int], np.ndarray]],
    frequencies: Sequence[float],
    path: str | os.PathLike | None = None,
    *,
    title: str = "",
) -> Any:
    """Error amplitude per Fourier frequency vs step, one panel per run.

    Args:
        runs: label -> (steps (T,), amplitudes (T, F)).
        frequencies: (F,) frequencies for the legend.
    """
    n = len(runs)
    fig, axes = plt.subplots(1, n, figsize=(5.0 * n, 3.8), squeeze=False, sharey=True)
    colors = plt.cm.plasma(np.linspace(0.0, 0.85, max(len(frequencies), 1)))
    for ax, (label, (steps, amps)) in zip(axes[0], runs.items()):
        amps = np.asarray(amps)
        for j, f in enumerate(frequencies):
            ax.semilogy(steps, np.maximum(amps[:, j], np.finfo(float).tiny), color=colors[j], label=f"f = {f:g}")
        ax.set_title(label)
        ax.set_xlabel("step t")
        ax.grid(True, which="both", alpha=0.3)
    axes[0, 0].set_ylabel("error amplitude |ê_f|")
    axes[0, 0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return _finish(fig, path)


def plot_condition_history(
    records: Mapping[str, Any],
    path: str | os.PathLike | None = None,
    *,
    quantities: Sequence[str] = ("condition_number",),
    title: str = "",
) -> Any:
    """NTK conditioning over training: one panel per quantity, one line per run.

    Args:
        records: run label -> a :class:`ConditionRecorder` (or a mapping with ``"steps"`` and one list per quantity).
        quantities: recorded quantities to draw, e.g. ``("condition_number", "lambda_max", "numerical_rank")``;
            log scale except for ranks.
        title: figure title.
    """
    n = len(quantities)
    fig, axes = plt.subplots(1, n, figsize=(5.0 * n, 3.8), squeeze=False)
    for ax, q in zip(axes[0], quantities):
        for label, rec in records.items():
            steps = rec.steps if hasattr(rec, "steps") else rec["steps"]
            values = rec.records[q] if hasattr(rec, "records") else rec[q]
            ax.plot(steps, np.asarray(values, dtype=float), marker=".", label=label)
        if "rank" not in q:
            ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_title(q.replace("_", " "))
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return _finish(fig, path)


def plot_scaling(
    x: Sequence[float],
    series: Mapping[str, tuple[np.ndarray, np.ndarray | None]],
    path: str | os.PathLike | None = None,
    *,
    xlabel: str = "width",
    ylabel: str = "",
    title: str = "",
    fits: Mapping[str, tuple[float, float]] | None = None,
) -> Any:
    """Log-log plot of quantities vs ``x`` with error bars (mean, std) and optional power-law fits y = c x^b.

    Args:
        x: (W,) abscissae.
        series: label -> (mean (W,), std (W,) or None).
        fits: label -> (c, b) drawn as dashed lines.
    """
    fig, ax = plt.subplots(figsize=(6.0, 4.2))
    xs = np.asarray(x, dtype=float)
    for label, (mean, std) in series.items():
        line = ax.errorbar(xs, mean, yerr=std, marker="o", ms=4, capsize=3, label=label)
        if fits and label in fits:
            c, b = fits[label]
            ax.plot(xs, c * xs**b, ls="--", lw=1.0, color=line[0].get_color(), label=f"fit ∝ width^{b:.2f}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    return _finish(fig, path)


def plot_eigenvectors(
    x: np.ndarray,
    eigenvectors: np.ndarray,
    path: str | os.PathLike | None = None,
    *,
    k: int = 6,
    eigenvalues: Sequence[float] | None = None,
    title: str = "",
) -> Any:
    """The first k eigenvectors q_i (columns) against a 1-D coordinate x: (N,) (sorted by x for drawing)."""
    x = np.reshape(np.asarray(x), (-1,))
    Q = np.asarray(eigenvectors)
    order = np.argsort(x)
    k = min(k, Q.shape[1])
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    colors = plt.cm.viridis(np.linspace(0.0, 0.9, max(k, 1)))
    for i in range(k):
        lab = f"q_{i + 1}" + (f" (λ={eigenvalues[i]:.1e})" if eigenvalues is not None else "")
        ax.plot(x[order], Q[order, i], color=colors[i], lw=1.2, label=lab)
    ax.set_xlabel("x")
    ax.set_title(title or "NTK eigenvectors")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    return _finish(fig, path)
