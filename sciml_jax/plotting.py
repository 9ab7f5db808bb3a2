"""Matplotlib figures: loss curves, solution vs exact with pointwise error, run comparisons.

Every function draws on a new figure, saves it to ``path`` (PNG) when given, closes it and returns the path;
with ``path=None`` it returns the figure for notebooks.

Diverged runs are drawn too: non-finite values are left out (a gap in the curve, a blank cell), values on log axes
are clipped to [1e-200, 1e200] and the axis limits are set from the finite data, so a loss that grew to 1e300 or a
prediction of 1e139 never breaks a figure (matplotlib's log locator overflows on such ranges by itself).
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


# log-axis data range: matplotlib's log locator places ticks a stride beyond the limits and overflows past 1e308,
# so the drawn range stays 100 decades inside float64's
_LOG_LO, _LOG_HI = 1e-200, 1e200


def _log_safe(values: Any) -> np.ndarray:
    """Values for a log axis: float64, non-finite and non-positive entries -> NaN (not drawn), clipped to range."""
    a = np.array(values, dtype=np.float64, copy=True).reshape(-1) if np.size(values) else np.zeros(0)
    a[~np.isfinite(a) | (a <= 0)] = np.nan
    return np.clip(a, _LOG_LO, _LOG_HI)


def _lin_safe(values: Any) -> np.ndarray:
    """Values for a linear axis or colour scale: non-finite -> NaN, magnitudes clipped to 1e200."""
    a = np.array(values, dtype=np.float64, copy=True)
    a[~np.isfinite(a)] = np.nan
    return np.clip(a, -_LOG_HI, _LOG_HI)


def _set_log_limits(ax, *arrays: np.ndarray) -> None:
    """Y limits of a log axis from the finite data (half a decade of margin); a note when nothing is finite."""
    finite = [a[np.isfinite(a)] for a in arrays if np.size(a)]
    finite = np.concatenate(finite) if finite else np.zeros(0)
    if finite.size == 0:
        ax.text(0.5, 0.5, "no finite values", transform=ax.transAxes, ha="center", va="center", color="tab:red")
        ax.set_ylim(1e-1, 1e1)
        return
    lo, hi = float(finite.min()), float(finite.max())
    ax.set_ylim(max(lo / 3.0, _LOG_LO), min(hi * 3.0, _LOG_HI))


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
    drawn = [_log_safe(history.loss)]
    ax.semilogy(steps, drawn[0], label="loss ½‖r‖²", lw=1.5, color="k")
    for name, values in history.terms.items():
        drawn.append(_log_safe(values))
        ax.semilogy(steps, drawn[-1], label=f"mse {name}", lw=1.0, alpha=0.8)
    _set_log_limits(ax, *drawn)
    _mark_events(ax, history)
    ax.set_xlabel("step")
    ax.set_ylabel("loss, per-term mean square")
    ax.set_title("training loss" + (f" — {title}" if title else ""))
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    if n_panels == 2:
        ax = axes[0, 1]
        drawn = []
        for name, values in history.metrics.items():
            drawn.append(_log_safe(values))
            ax.semilogy(history.eval_steps, drawn[-1], marker=".", label=name)
        _set_log_limits(ax, *drawn)
        _mark_events(ax, history)
        ax.set_xlabel("step")
        ax.set_ylabel("metric value")
        ax.set_title("metrics" + (f" — {title}" if title else ""))
        ax.legend(fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
    return _finish(fig, path)


_EVENT_STYLE = {"switch": ("tab:red", "--"), "fallback": ("tab:orange", ":"), "stage": ("tab:gray", "-."),
                "resample": ("tab:green", ":")}


def _mark_events(ax, history) -> None:
    """Vertical lines at events (switch, fallback, stage, resample), one legend entry per kind."""
    labelled = set()
    for ev in getattr(history, "events", []):
        kind = ev.get("kind", "event")
        color, ls = _EVENT_STYLE.get(kind, ("tab:purple", "--"))
        ax.axvline(ev["step"], color=color, ls=ls, lw=0.8, alpha=0.7,
                   label=None if kind in labelled else kind)
        labelled.add(kind)


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


def _field_values(problem: Any, apply: Callable, params: Any, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Model and reference values ``(M, m)`` at ``x`` (m fields); fields compared up to a constant are shifted by
    the mean difference, as the error metric does."""
    dtype = jnp.result_type(float)
    net = problem.split_params(params)[0] if getattr(problem, "unknowns", None) else params
    xj = jnp.asarray(x, dtype)
    u = _lin_safe(np.asarray(jax.jit(jax.vmap(lambda y: apply(net, y)))(xj))).reshape(len(x), -1)
    if problem.exact is None:
        return u, None
    ue = np.asarray(jax.jit(jax.vmap(problem.exact))(xj)).reshape(len(x), -1)
    for j, f in enumerate(getattr(problem, "fields", ("u",))):
        if f in getattr(problem, "up_to_constant", ()) and j < u.shape[1]:
            u[:, j] -= np.nanmean(u[:, j] - ue[:, j])
    return u, ue


def plot_solution(
    problem: Any, apply: Callable, params: Any, path: str | os.PathLike | None = None, title: str = ""
) -> Any:
    """Prediction vs exact solution and pointwise error, one row per field.

    1-D problems: curves; higher dimensions: heat maps over coordinates 0 and 1 (time, when present, is the last
    coordinate; for 1-D space × time that is the (x, t) plane), remaining coordinates at the domain centre. The
    PINN and exact panels of a field share one colour scale. ``params`` may include unknowns (``{"net", ...}``).
    """
    dim = problem.domain.dim
    fields = tuple(getattr(problem, "fields", ("u",)))
    suffix = f" — {title}" if title else ""
    if dim == 1:
        lo, hi = problem.domain.bounds()
        x = np.linspace(lo[0], hi[0], 1000)[:, None]
        u, ue = _field_values(problem, apply, params, x)
        fig, axes = plt.subplots(len(fields), 2, figsize=(10.4, 3.6 * len(fields)), squeeze=False)
        for j, f in enumerate(fields):
            ax, ax_err = axes[j]
            ax.plot(x[:, 0], u[:, j], label="PINN", lw=2)
            if ue is not None:
                ax.plot(x[:, 0], ue[:, j], "--", label="exact", lw=1.5)
                err = _log_safe(np.abs(u[:, j] - ue[:, j]) + 1e-300)
                ax_err.semilogy(x[:, 0], err, color="tab:red")
                _set_log_limits(ax_err, err)
                ax_err.set_title(f"pointwise |error| of {f}{suffix}")
                ax_err.set_ylabel(f"|{f} - {f}*|")
            else:
                ax_err.set_visible(False)
            ax.set_title(f"{f}{suffix}")
            ax.set_ylabel(f)
            ax.legend()
            for a in (ax, ax_err):
                a.set_xlabel("x")
                a.grid(alpha=0.3)
        return _finish(fig, path)

    pts, inside, (aa, bb) = _slice_points(problem.domain)
    u, ue = _field_values(problem, apply, params, pts)
    mask = ~inside.reshape(aa.shape)
    ncol = 3 if ue is not None else 1
    fig, axes = plt.subplots(len(fields), ncol, figsize=(4.6 * ncol, 3.9 * len(fields)), squeeze=False)
    is_time = "initial" in getattr(problem.domain, "point_sets", ())
    labels = ("x", "t") if (is_time and dim == 2) else ("x₁", "x₂")
    for j, f in enumerate(fields):
        pred = np.ma.masked_invalid(np.ma.array(u[:, j].reshape(aa.shape), mask=mask))
        panels = [(f"PINN {f}", pred)]
        scale = None
        if ue is not None:
            ref = np.ma.array(ue[:, j].reshape(aa.shape), mask=mask)
            panels.append((f"exact {f}", ref))
            panels.append((f"|error| of {f}", np.ma.masked_invalid(np.ma.array(
                _lin_safe(np.abs(u[:, j] - ue[:, j])).reshape(aa.shape), mask=mask))))
            if ref.count():
                scale = (float(ref.min()), float(ref.max()))  # one colour scale for PINN and exact
        for k, (ax, (name, values)) in enumerate(zip(axes[j], panels)):
            if values.count() == 0:
                ax.text(0.5, 0.5, "no finite values", transform=ax.transAxes, ha="center", va="center",
                        color="tab:red")
            else:
                lim = scale if (scale is not None and k < 2) else (None, None)
                im = ax.pcolormesh(aa, bb, values, shading="auto", vmin=lim[0], vmax=lim[1],
                                   cmap="inferno" if name.startswith("|error|") else "viridis")
                fig.colorbar(im, ax=ax)
            ax.set_title(name + suffix)
            ax.set_xlabel(labels[0])
            ax.set_ylabel(labels[1])
            ax.set_aspect("auto")
    return _finish(fig, path)


def plot_comparison(histories: Mapping[str, Any], path: str | os.PathLike | None = None, metric: str = "rel_l2") -> Any:
    """Several runs side by side: loss vs step, loss vs wall time, and ``metric`` vs wall time."""
    fig, axes = plt.subplots(1, 3, figsize=(15.5, 4.0))
    drawn = ([], [], [])
    for name, h in histories.items():
        steps = np.asarray(h.steps)
        drawn[0].append(_log_safe(h.loss))
        axes[0].semilogy(steps, drawn[0][-1], label=name, lw=1.2)
        if h.eval_steps:
            # the loss at evaluation steps (last step of each chunk) against wall time
            idx = {s: i for i, s in enumerate(h.steps)}
            ts, ls = [], []
            for s, t in zip(h.eval_steps, h.wall_time_s):
                i = idx.get(s - 1 if s > 0 else 0)
                if i is not None:
                    ts.append(t)
                    ls.append(h.loss[i])
            drawn[1].append(_log_safe(ls))
            axes[1].semilogy(ts, drawn[1][-1], label=name, marker=".", lw=1.2)
            if metric in h.metrics:
                drawn[2].append(_log_safe(h.metrics[metric]))
                axes[2].semilogy(h.wall_time_s, drawn[2][-1], label=name, marker=".", lw=1.2)
        for ev in getattr(h, "events", []):
            axes[0].axvline(ev["step"], ls="--", lw=0.7, alpha=0.6, color="gray")
    for ax, arrays in zip(axes, drawn):
        _set_log_limits(ax, *arrays)
    axes[0].set(xlabel="step", ylabel="loss ½‖r‖²", title="loss vs step")
    axes[1].set(xlabel="wall time [s] (compile excluded)", ylabel="loss ½‖r‖²", title="loss vs wall time")
    axes[2].set(xlabel="wall time [s] (compile excluded)", ylabel=metric, title=f"{metric} vs wall time")
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
        u = _lin_safe(predict(jnp.asarray(x, dtype)))
        v = np.abs(u - np.asarray(exact(jnp.asarray(x, dtype)))) if background == "error" else u
        for ax, snap in zip(axes[0], chosen):
            if background == "error":
                err = _log_safe(np.asarray(v).reshape(-1) + 1e-300)
                ax.semilogy(x[:, 0], err)
                _set_log_limits(ax, err)
            else:
                ax.plot(x[:, 0], v)
            ax.set_ylabel(label)
            ax2 = ax.twinx()
            ax2.hist(np.asarray(snap["points"])[:, 0], bins=40, color="tab:orange", alpha=0.5)
            ax2.set_ylabel("points per bin")
            ax.set_title(f"step {snap['step']}")
            ax.set_xlabel("x")
        fig.suptitle(title or "collocation points")
        return _finish(fig, path)
    pts, inside, (aa, bb) = _slice_points(problem.domain, 161)
    u = _lin_safe(predict(jnp.asarray(pts, dtype))).reshape(aa.shape)
    if background == "error":
        v = _lin_safe(np.abs(u - np.asarray(exact(jnp.asarray(pts, dtype))).reshape(aa.shape)))
        pos = v[inside.reshape(aa.shape) & (v > 0) & np.isfinite(v)]
        norm = LogNorm(vmin=max(pos.min(), pos.max() * 1e-4), vmax=pos.max()) if pos.size else None
    else:
        v, norm = u, None
    values = np.ma.masked_invalid(np.ma.array(v, mask=~inside.reshape(aa.shape)))
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


def plot_final_errors(
    problem: Any, apply: Callable, runs: Mapping[str, tuple[Any, Any]], path: str | os.PathLike | None = None
) -> Any:
    """Several trained models side by side: each one's pointwise |u - u*| with its collocation points on top.

    Args:
        problem: the problem (needs ``exact``); apply: the models' common ``apply(params, x)``.
        runs: panel title -> ``(params, points)``, ``points: (n, d)`` (e.g. the final point set of a sampling method).

    One panel per run on a common log colour scale (the largest error over all runs down to 1e-4 of it). 2-D (or
    higher: coordinates 0 and 1) domains: heat maps with the points as dots; 1-D: |error| curves with the points
    as ticks along the bottom.
    """
    from matplotlib.colors import LogNorm

    if problem.exact is None:
        raise ValueError(f"problem {problem.name!r} has no exact solution; plot_final_errors needs one")
    dtype = jnp.result_type(float)
    dim = problem.domain.dim
    if dim == 1:
        lo, hi = problem.domain.bounds()
        pts, inside = np.linspace(lo[0], hi[0], 800)[:, None], np.ones(800, bool)
    else:
        pts, inside, (aa, bb) = _slice_points(problem.domain, 161)
    x = jnp.asarray(pts, dtype)
    u_star = np.asarray(jax.vmap(problem.exact)(x))
    errs = {k: np.abs(np.asarray(jax.vmap(lambda y, p=p: apply(p, y))(x)) - u_star) for k, (p, _) in runs.items()}
    top = max(float(e[inside].max()) for e in errs.values())
    fig, axes = plt.subplots(1, len(runs), figsize=(3.9 * len(runs), 3.9), squeeze=False)
    for ax, (label, (_, points)) in zip(axes[0], runs.items()):
        p, e = np.asarray(points), errs[label]
        if dim == 1:
            ax.semilogy(pts[:, 0], np.maximum(e, top * 1e-8), lw=1.0)
            ax.plot(p[:, 0], np.full(p.shape[0], top * 1e-8), "|", ms=10, color="tab:orange")
            ax.set(xlabel="x", ylabel="|u - u*| (final model)" if ax is axes[0, 0] else "")
        else:
            values = np.ma.array(np.maximum(e, top * 1e-4).reshape(aa.shape), mask=~inside.reshape(aa.shape))
            im = ax.pcolormesh(aa, bb, values, shading="auto", norm=LogNorm(vmin=top * 1e-4, vmax=top))
            ax.scatter(p[:, 0], p[:, 1], s=1.5, c="w", edgecolors="none", alpha=0.8)
            ax.set(aspect="equal", xlabel="x₁", ylabel="x₂" if ax is axes[0, 0] else "")
        ax.set_title(label)
    if dim == 1:
        return _finish(fig, path)
    fig.colorbar(im, ax=list(axes[0]), label="|u - u*| (final model)", shrink=0.85)
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
