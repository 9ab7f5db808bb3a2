"""Matplotlib figures: loss curves, solution vs exact with pointwise error, run comparisons.

Every function draws on a new figure, saves it to ``path`` (PNG) when given, closes it and returns the path;
with ``path=None`` it returns the figure for notebooks.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import matplotlib

if os.environ.get("MPLBACKEND") is None and not os.environ.get("DISPLAY"):
    matplotlib.use("Agg")  # headless default; notebooks set their own backend before importing us

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np


def _finish(fig, path):
    fig.tight_layout()
    if path is None:
        return fig
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_history(history: Any, path: str | os.PathLike | None = None, title: str = "") -> Any:
    """Loss and per-term mean squares vs step (log scale), with the metrics (e.g. rel_l2) in a second panel."""
    n_panels = 2 if history.metric_names else 1
    fig, axes = plt.subplots(1, n_panels, figsize=(5.2 * n_panels, 3.8), squeeze=False)
    ax = axes[0, 0]
    steps = np.asarray(history.steps)
    ax.semilogy(steps, np.asarray(history.loss), label="loss ½‖r‖²", lw=1.5, color="k")
    for name, values in history.terms.items():
        ax.semilogy(steps, np.asarray(values), label=f"mse {name}", lw=1.0, alpha=0.8)
    _mark_events(ax, history)
    ax.set_xlabel("step")
    ax.set_title("training loss" + (f" — {title}" if title else ""))
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    if n_panels == 2:
        ax = axes[0, 1]
        for name, values in history.metrics.items():
            ax.semilogy(history.eval_steps, values, marker=".", label=name)
        _mark_events(ax, history)
        ax.set_xlabel("step")
        ax.set_title("metrics")
        ax.legend(fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
    return _finish(fig, path)


def _mark_events(ax, history) -> None:
    for ev in getattr(history, "events", []):
        ax.axvline(ev["step"], color="tab:red", ls="--", lw=0.8, alpha=0.7)


def _slice_points(domain: Any, n: int = 101) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 2-D grid over coordinates 0 and 1 (others at the box centre) for domains with dim >= 2."""
    lo, hi = domain.bounds()
    a = np.linspace(lo[0], hi[0], n)
    b = np.linspace(lo[1], hi[1], n)
    aa, bb = np.meshgrid(a, b, indexing="xy")
    pts = np.tile((lo + hi) / 2.0, (aa.size, 1))
    pts[:, 0] = aa.ravel()
    pts[:, 1] = bb.ravel()
    inside = domain.contains(pts, "interior", 1e-9) if hasattr(domain, "contains") else np.ones(len(pts), bool)
    return pts, inside, (aa, bb)


def plot_solution(
    problem: Any, apply: Callable, params: Any, path: str | os.PathLike | None = None, title: str = ""
) -> Any:
    """Prediction vs exact solution and pointwise error.

    1-D problems: curves; higher dimensions: heat maps over coordinates 0 and 1 (time, when present, is the last
    coordinate; for 1-D space × time that is the (x, t) plane), remaining coordinates at the domain centre.
    """
    dtype = jnp.result_type(float)
    dim = problem.domain.dim
    predict = jax.jit(jax.vmap(lambda x: apply(params, x)))
    exact = jax.jit(jax.vmap(problem.exact)) if problem.exact is not None else None
    if dim == 1:
        lo, hi = problem.domain.bounds()
        x = np.linspace(lo[0], hi[0], 1000)[:, None]
        u = np.asarray(predict(jnp.asarray(x, dtype)))
        fig, axes = plt.subplots(1, 2, figsize=(10.4, 3.8))
        axes[0].plot(x[:, 0], u, label="PINN", lw=2)
        if exact is not None:
            ue = np.asarray(exact(jnp.asarray(x, dtype)))
            axes[0].plot(x[:, 0], ue, "--", label="exact", lw=1.5)
            axes[1].semilogy(x[:, 0], np.abs(u - ue) + 1e-300, color="tab:red")
            axes[1].set_title("pointwise |error|")
        axes[0].set_title("solution" + (f" — {title}" if title else ""))
        axes[0].legend()
        for ax in axes:
            ax.set_xlabel("x")
            ax.grid(alpha=0.3)
        return _finish(fig, path)

    pts, inside, (aa, bb) = _slice_points(problem.domain)
    u = np.asarray(predict(jnp.asarray(pts, dtype))).reshape(aa.shape)
    mask = ~inside.reshape(aa.shape)
    panels = [("PINN", np.ma.array(u, mask=mask))]
    if exact is not None:
        ue = np.asarray(exact(jnp.asarray(pts, dtype))).reshape(aa.shape)
        panels.append(("exact", np.ma.array(ue, mask=mask)))
        panels.append(("|error|", np.ma.array(np.abs(u - ue), mask=mask)))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.9), squeeze=False)
    is_time = "initial" in getattr(problem.domain, "point_sets", ())
    labels = ("x", "t") if (is_time and dim == 2) else ("x₁", "x₂")
    for ax, (name, values) in zip(axes[0], panels):
        im = ax.pcolormesh(aa, bb, values, shading="auto", cmap="inferno" if name == "|error|" else "viridis")
        fig.colorbar(im, ax=ax)
        ax.set_title(name + (f" — {title}" if title and name == "PINN" else ""))
        ax.set_xlabel(labels[0])
        ax.set_ylabel(labels[1])
        ax.set_aspect("auto")
    return _finish(fig, path)


def plot_comparison(histories: Mapping[str, Any], path: str | os.PathLike | None = None, metric: str = "rel_l2") -> Any:
    """Several runs side by side: loss vs step, loss vs wall time, and ``metric`` vs wall time."""
    fig, axes = plt.subplots(1, 3, figsize=(15.5, 4.0))
    for name, h in histories.items():
        steps = np.asarray(h.steps)
        axes[0].semilogy(steps, h.loss, label=name, lw=1.2)
        if h.eval_steps:
            # the loss at evaluation steps (last step of each chunk) against wall time
            idx = {s: i for i, s in enumerate(h.steps)}
            ts, ls = [], []
            for s, t in zip(h.eval_steps, h.wall_time_s):
                i = idx.get(s - 1 if s > 0 else 0)
                if i is not None:
                    ts.append(t)
                    ls.append(h.loss[i])
            axes[1].semilogy(ts, ls, label=name, marker=".", lw=1.2)
            if metric in h.metrics:
                axes[2].semilogy(h.wall_time_s, h.metrics[metric], label=name, marker=".", lw=1.2)
        for ev in getattr(h, "events", []):
            axes[0].axvline(ev["step"], ls="--", lw=0.7, alpha=0.6, color="gray")
    axes[0].set(xlabel="step", title="loss vs step")
    axes[1].set(xlabel="wall time [s] (compile excluded)", title="loss vs wall time")
    axes[2].set(xlabel="wall time [s] (compile excluded)", title=f"{metric} vs wall time")
    for ax in axes:
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    return _finish(fig, path)


def plot_points(
    problem: Any,
    apply: Callable,
    params: Any,
    snapshots: Any,
    path: str | os.PathLike | None = None,
    title: str = "",
    max_panels: int = 4,
    background: str = "error",
) -> Any:
    """Collocation points over the solution or the pointwise error, one panel per chosen snapshot.

    Args:
        problem, apply, params: the problem and the model at the parameters the background is drawn for.
        snapshots: sequence of ``{"step": int, "points": (n, d) array}`` (e.g. ``Resampler.snapshots``); at most
            ``max_panels`` are drawn, evenly spread and always including the first and the last.
        background: ``"error"`` (|u - u*|, log colour scale; needs ``problem.exact``) or ``"solution"``.

    2-D (or higher: coordinates 0 and 1) domains: a heat map with the points on top; 1-D: the background curve
    with a histogram of the points on a second axis.
    """
    from matplotlib.colors import LogNorm

    snapshots = list(snapshots)
    if not snapshots:
        raise ValueError("snapshots: expected at least one {'step', 'points'} record, got none")
    if max_panels < 1:
        raise ValueError(f"max_panels: expected a positive integer, got {max_panels!r}")
    if background not in ("error", "solution") or (background == "error" and problem.exact is None):
        raise ValueError(f"background: expected 'error' (needs an exact solution) or 'solution', got {background!r}")
    idx = np.unique(np.round(np.linspace(0, len(snapshots) - 1, min(max_panels, len(snapshots)))).astype(int))
    chosen = [snapshots[i] for i in idx]
    dtype = jnp.result_type(float)
    predict = jax.jit(jax.vmap(lambda x: apply(params, x)))
    exact = jax.jit(jax.vmap(problem.exact)) if problem.exact is not None else None
    fig, axes = plt.subplots(1, len(chosen), figsize=(4.4 * len(chosen), 3.9), squeeze=False)
    label = "|u - u*|" if background == "error" else "u"
    if problem.domain.dim == 1:
        lo, hi = problem.domain.bounds()
        x = np.linspace(lo[0], hi[0], 1000)[:, None]
        u = np.asarray(predict(jnp.asarray(x, dtype)))
        v = np.abs(u - np.asarray(exact(jnp.asarray(x, dtype)))) if background == "error" else u
        for ax, snap in zip(axes[0], chosen):
            (ax.semilogy if background == "error" else ax.plot)(x[:, 0], v + (1e-300 if background == "error" else 0))
            ax.set_ylabel(label)
            ax2 = ax.twinx()
            ax2.hist(np.asarray(snap["points"])[:, 0], bins=40, color="tab:orange", alpha=0.5)
            ax2.set_ylabel("points per bin")
            ax.set_title(f"step {snap['step']}")
            ax.set_xlabel("x")
        fig.suptitle(title or "collocation points")
        return _finish(fig, path)
    pts, inside, (aa, bb) = _slice_points(problem.domain, 161)
    u = np.asarray(predict(jnp.asarray(pts, dtype))).reshape(aa.shape)
    if background == "error":
        v = np.abs(u - np.asarray(exact(jnp.asarray(pts, dtype))).reshape(aa.shape))
        pos = v[inside.reshape(aa.shape) & (v > 0)]
        norm = LogNorm(vmin=max(pos.min(), pos.max() * 1e-4), vmax=pos.max()) if pos.size else None
    else:
        v, norm = u, None
    values = np.ma.array(v, mask=~inside.reshape(aa.shape))
    for ax, snap in zip(axes[0], chosen):
        p = np.asarray(snap["points"])
        im = ax.pcolormesh(aa, bb, values, shading="auto", cmap="viridis", norm=norm)
        ax.scatter(p[:, 0], p[:, 1], s=2.0, c="w", edgecolors="k", linewidths=0.15, alpha=0.8)
        ax.set_title(f"step {snap['step']}: {len(p)} points")
        ax.set_xlabel("x₁")
        ax.set_ylabel("x₂")
        ax.set_aspect("equal")
    fig.colorbar(im, ax=list(axes[0]), label=label + " (final model)")
    fig.suptitle(title or "collocation points")
    if path is None:
        return fig
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_switch_diagnostics(history: Any, path: str | os.PathLike | None = None, title: str = "") -> Any:
    """The quantities the hybrid's switch criteria decide on, per step, with the switch step(s) marked.

    Reads ``history.info`` entries logged by the criterion states (``switch.after_steps.steps``,
    ``switch.plateau.rel_change``, ``switch.grad_norm.grad_norm`` / ``.ratio``, ``switch.curvature.efficiency`` /
    ``.agreement``); the first panel is the loss. Switch steps come from the ``switch`` events (or, without
    events, from increases of ``hybrid.switches``) and are drawn as dashed red lines in every panel. Positive
    quantities spanning more than a decade are drawn on a log scale.
    """
    info = getattr(history, "info", {}) or {}
    keys = sorted(k for k in info if k.startswith("switch.") or ".switch." in k)
    steps = np.asarray(history.steps)
    switch_steps = [e["step"] for e in getattr(history, "events", []) if e.get("kind") == "switch"]
    if not switch_steps:
        for key, values in info.items():
            if key.endswith(".switches"):
                v = np.nan_to_num(np.asarray(values, float))
                switch_steps += [int(steps[i]) for i in np.flatnonzero(np.diff(np.concatenate([[0.0], v])) > 0)]
    n = 1 + len(keys)
    fig, axes = plt.subplots(n, 1, figsize=(6.4, 1.9 + 1.6 * n), sharex=True, squeeze=False)
    axes = axes[:, 0]
    axes[0].semilogy(steps, np.asarray(history.loss), color="k", lw=1.2)
    axes[0].set_ylabel("loss")
    axes[0].set_title("switch diagnostics" + (f" — {title}" if title else ""))
    for ax, key in zip(axes[1:], keys):
        v = np.asarray(info[key], float)
        ax.plot(steps[: len(v)], v, lw=1.0)
        pos = v[np.isfinite(v) & (v > 0)]
        if pos.size and pos.size == np.isfinite(v).sum() and pos.max() > 10 * pos.min():
            ax.set_yscale("log")
        ax.set_ylabel(key.split("switch.", 1)[1], fontsize=8)
    if not keys:
        axes[0].text(0.5, 0.5, "no switch diagnostics logged", transform=axes[0].transAxes, ha="center")
    for ax in axes:
        for s in switch_steps:
            ax.axvline(s, color="tab:red", ls="--", lw=0.9, alpha=0.8)
        ax.grid(True, which="both", alpha=0.3)
    axes[-1].set_xlabel("step")
    return _finish(fig, path)
