"""Residual-based adaptive collocation: RAD, RAR-D (fixed size) and R3, plus a ``fit`` callback that applies them.

All three selection rules are pure, jittable functions on fixed-shape arrays: the number of points never changes,
so a training step compiled for a batch keeps working after any number of resampling events (no recompilation).
Candidate pools are drawn on the host by the static samplers (:func:`sciml_jax.sampling.sample`, i.e.
``scipy.stats.qmc`` for Sobol/Halton/LHS) with a fresh key per event.

References:
    C. Wu, M. Zhu, Q. Tan, Y. Kartha, L. Lu, "A comprehensive study of non-adaptive and residual-based adaptive
    sampling for physics-informed neural networks", CMAME 403 (2023) -- RAD and RAR-D.
    A. Daw, J. Bu, S. Wang, P. Perdikaris, A. Karpatne, "Mitigating propagation failures in physics-informed
    neural networks using retain-resample-release (R3) sampling", ICML 2023 -- R3.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._static import METHODS as _SAMPLERS
from ._static import as_key as _as_key
from ._static import sample as _sample

ADAPTIVE_METHODS: tuple[str, ...] = ("rad", "rar_d", "r3")

# Method defaults from Wu et al. (2023): RAD works best with k = 1, c = 1; RAR-D with k = 2, c = 0.
_DEFAULT_KC = {"rad": (1.0, 1.0), "rar_d": (2.0, 0.0), "r3": (1.0, 0.0)}


# ----------------------------------------------------------------------------------------------- pure rules


def rad_log_density(residual_abs: jax.Array, k: float = 1.0, c: float = 1.0) -> jax.Array:
    """Log of the (normalised) RAD sampling probabilities over a candidate pool.

    With e_i = |r(x_i)| on M candidates, Wu et al. (2023) sample from

        p(x_i) ∝ e_i^k / mean_j(e_j^k) + c,

    i.e. a mixture of the residual-weighted density (weight 1) and the uniform density over the pool (weight c);
    k sharpens it (k = 0 or c -> inf is uniform sampling). Computed in log space, log(e^k / mean e^k) =
    k log e - logmeanexp(k log e), so large k or tiny residuals neither overflow nor underflow. Non-finite
    residuals count as zero; an all-zero residual with c = 0 gives the uniform distribution.

    Args:
        residual_abs: (M,) non-negative residual magnitudes of the candidates.
        k: exponent, >= 0.
        c: uniform share, >= 0.

    Returns:
        (M,) log p_i, with sum_i p_i = 1.
    """
    e = jnp.where(jnp.isfinite(residual_abs), jnp.abs(residual_abs), 0.0)
    pos = e > 0
    # a_i = k log e_i; e_i = 0 gives -inf (weight 0) unless k = 0 (e^0 = 1): avoids 0 * log 0 = nan
    a = jnp.where(pos, k * jnp.log(jnp.where(pos, e, 1.0)), jnp.where(k == 0, 0.0, -jnp.inf))
    a = jnp.where(jnp.isneginf(jnp.max(a)), jnp.zeros_like(a), a)  # all residuals zero: uniform
    log_mean = jax.nn.logsumexp(a) - jnp.log(a.shape[0])
    log_c = jnp.log(jnp.asarray(c, dtype=a.dtype))
    log_w = jnp.logaddexp(a - log_mean, log_c)
    return log_w - jax.nn.logsumexp(log_w)


def _gumbel_top_k(key: jax.Array, log_p: jax.Array, n: int) -> jax.Array:
    """Indices of n draws without replacement with probabilities p (Gumbel-top-k, Vieira 2014; Kool et al. 2019).

    argtop_n(log p_i + G_i), G_i i.i.d. Gumbel(0, 1), is distributed exactly as n successive draws without
    replacement from p. Chosen over ``jax.random.choice(..., replace=False, p=p)`` because it works on log
    probabilities (RAD's log density never leaves log space) and costs one top-k; written by hand because it is
    three lines.
    """
    g = log_p + jax.random.gumbel(key, log_p.shape, dtype=log_p.dtype)
    return jax.lax.top_k(g, n)[1]


def _check_pool(candidates: Any, residual_abs: Any, n: Any, name: str = "candidates") -> None:
    if jnp.ndim(candidates) != 2:
        raise ValueError(f"{name}: expected an (M, d) array of points, got shape {jnp.shape(candidates)}")
    if jnp.shape(residual_abs) != (jnp.shape(candidates)[0],):
        raise ValueError(
            f"residual_abs: expected shape ({jnp.shape(candidates)[0]},) (one value per {name} row), "
            f"got {jnp.shape(residual_abs)}"
        )
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or not 0 < n <= jnp.shape(candidates)[0]:
        raise ValueError(f"n: expected an int in [1, {jnp.shape(candidates)[0]}] (the pool size), got {n!r}")


def _check_kc(k: Any, c: Any) -> None:
    for name, v in (("k", k), ("c", c)):
        if isinstance(v, jax.core.Tracer):
            continue
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.number)) or not (
            math.isfinite(float(v)) and v >= 0
        ):
            raise ValueError(f"{name}: expected a finite number >= 0, got {v!r}")


def rad(key: jax.Array, candidates: jax.Array, residual_abs: jax.Array, n: int, k: float = 1.0, c: float = 1.0):
    """Residual-based adaptive distribution (RAD): a new point set of n candidates drawn by residual.

    Draws n of the M candidates without replacement with probabilities p_i ∝ |r_i|^k / mean(|r|^k) + c
    (:func:`rad_log_density`). When n << M this is a sample of size n from the density p over the domain; the
    whole point set is replaced at each event (Wu et al. 2023).

    Args:
        key: JAX PRNG key.
        candidates: (M, d) candidate points (typically a fresh Sobol set).
        residual_abs: (M,) |r| at the candidates.
        n: number of points to return (static), 1 <= n <= M.
        k, c: RAD exponent and uniform share, both >= 0.

    Returns:
        (n, d) points, rows of ``candidates``.
    """
    _check_pool(candidates, residual_abs, n)
    _check_kc(k, c)
    idx = _gumbel_top_k(key, rad_log_density(residual_abs, k, c), int(n))
    return candidates[idx]


def rar_d(
    key: jax.Array,
    points: jax.Array,
    residual_points: jax.Array,
    candidates: jax.Array,
    residual_candidates: jax.Array,
    n_replace: int,
    k: float = 2.0,
    c: float = 0.0,
):
    """RAR-D with a fixed point count: add n_replace points drawn by RAD density, drop as many low-residual ones.

    Wu et al.'s RAR-D grows the set by m points drawn from p ∝ |r|^k / mean(|r|^k) + c at each event. To keep the
    shape fixed (so training never recompiles) this variant also removes the n_replace current points with the
    smallest |r| (the ones contributing least to the loss); the removal rule is our choice. Output rows: the kept
    points (in decreasing residual order) followed by the new ones.

    Args:
        key: JAX PRNG key.
        points: (n, d) current points; residual_points: (n,) |r| there.
        candidates: (M, d) candidate points; residual_candidates: (M,) |r| there.
        n_replace: number of points exchanged (static), 1 <= n_replace <= min(n, M).
        k, c: RAD exponent and uniform share of the added points' density (defaults k = 2, c = 0 as in the paper).

    Returns:
        (n, d) points.
    """
    _check_pool(points, residual_points, 1, "points")
    _check_pool(candidates, residual_candidates, n_replace)
    n = jnp.shape(points)[0]
    if n_replace > n:
        raise ValueError(f"n_replace: expected at most the number of points {n}, got {n_replace}")
    _check_kc(k, c)
    new = candidates[_gumbel_top_k(key, rad_log_density(residual_candidates, k, c), int(n_replace))]
    if n_replace == n:
        return new.astype(points.dtype)
    e = jnp.where(jnp.isfinite(residual_points), residual_points, jnp.inf)  # a non-finite residual is kept
    keep = jax.lax.top_k(e, n - int(n_replace))[1]
    return jnp.concatenate([points[keep], new.astype(points.dtype)], axis=0)


def r3(points: jax.Array, residual_abs: jax.Array, fresh: jax.Array):
    """Retain-resample-release (R3, Daw et al. 2023) with a fixed point count.

    Retain the points whose residual exceeds the population mean, |r_i| > τ = mean_j |r_j|; release the others and
    put fresh uniformly drawn points in their slots. Points with persistently high residual therefore accumulate
    over events (an evolutionary pressure towards failure regions) while the rest of the domain keeps being
    explored.

    Args:
        points: (n, d) current points.
        residual_abs: (n,) |r| at ``points``.
        fresh: (n, d) fresh points (uniform random over the domain); row i fills slot i if it is released.

    Returns:
        ``(new_points, retained)``: (n, d) points and the (n,) bool mask of retained slots.
    """
    _check_pool(points, residual_abs, 1, "points")
    if jnp.shape(fresh) != jnp.shape(points):
        raise ValueError(f"fresh: expected the shape of points {jnp.shape(points)}, got {jnp.shape(fresh)}")
    e = jnp.where(jnp.isfinite(residual_abs), residual_abs, jnp.inf)
    tau = jnp.mean(jnp.where(jnp.isfinite(e), e, 0.0))
    retained = e > tau
    return jnp.where(retained[:, None], points, fresh.astype(points.dtype)), retained


# ----------------------------------------------------------------------------------------------- fit callback


def _positive_int(value: Any, name: str, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name}: expected a positive integer{' or None' if allow_none else ''}, got {value!r}")
    return int(value)


def _plateau_options(on_plateau: Any) -> dict | None:
    if on_plateau is None:
        return None
    if not isinstance(on_plateau, Mapping):
        raise ValueError(f"on_plateau: expected None or a mapping {{patience, min_delta}}, got {on_plateau!r}")
    allowed = ("patience", "min_delta")
    for key in on_plateau:
        if key not in allowed:
            raise ValueError(f"on_plateau.{key}: unknown key; allowed: {', '.join(allowed)}")
    patience = _positive_int(on_plateau.get("patience", 500), "on_plateau.patience")
    delta = on_plateau.get("min_delta", 0.01)
    if isinstance(delta, bool) or not isinstance(delta, (int, float)) or not 0.0 <= delta < 1.0:
        raise ValueError(f"on_plateau.min_delta: expected a number in [0, 1), got {delta!r}")
    return {"patience": patience, "min_delta": float(delta)}


class Resampler:
    """``fit`` callback moving the collocation points of one residual term by RAD, RAR-D or R3.

    At the end of a ``fit`` chunk it triggers an event when the global step reached the next multiple of
    ``every`` and/or the loss has plateaued (``on_plateau``: the best loss of the last ``patience`` steps is not
    below (1 - min_delta) times the best loss before them, counting only steps since the last event). An event

    1. draws a fresh pool on the host: ``candidates`` points of the term's point set by ``sampler`` (R3: n
       uniform points) with key fold_in(key, global step), so a resumed run redraws the same pool;
    2. evaluates |r_term| per point with ``residual.terms`` (unweighted; a term with m outputs per point uses the
       Euclidean norm over them) on the pool and/or the current points;
    3. applies :func:`rad`, :func:`rar_d` or :func:`r3` and returns ``{"batch": new batch}`` with the same shapes
       and dtypes, so ``fit``'s compiled step is reused;
    4. logs ``history.add_event(step, "resample", method, term, points, moved, mean_abs_residual, ...)`` and keeps
       the point set (``snapshots``) for plotting.

    The residual evaluations and the selection are jitted once per shape: a whole run compiles them at the first
    event only (and once more per ``fit_stages`` stage, where the point count changes).

    Attributes:
        snapshots: list of ``{"step": int, "points": (n, d) ndarray}``: the point set before the first event (the
            initial one) and after every event, with the global step (stages of ``fit_stages`` counted).
        events: number of events so far.
    """

    def __init__(
        self,
        residual: Any,
        domain: Any,
        method: str = "rad",
        *,
        term: str = "pde",
        every: int | None = None,
        on_plateau: Mapping[str, Any] | None = None,
        k: float | None = None,
        c: float | None = None,
        candidates: int | None = None,
        replace: float = 0.1,
        sampler: str = "sobol",
        key: Any = 0,
        until: int | None = None,
        keep_snapshots: bool = True,
    ):
        """Args:
            residual: a :class:`sciml_jax.pinn.Residual` (``.problem.terms``, ``.terms(params, batch)``).
            domain: the problem's :class:`sciml_jax.geometry.Domain` (candidate pools are drawn on it).
            method: ``"rad"``, ``"rar_d"`` or ``"r3"``.
            term: the residual term whose |r| drives the sampling (its point set is the one moved).
            every: steps between events (events happen at chunk ends: use a multiple of ``fit``'s chunk).
            on_plateau: ``{"patience": steps, "min_delta": relative improvement}`` or None.
            k, c: RAD exponent and uniform share (default: rad 1, 1; rar_d 2, 0; unused by r3).
            candidates: pool size M (default 10 × the number of points; rad/rar_d).
            replace: RAR-D fraction of the points exchanged per event, in (0, 1].
            sampler: static method of the candidate pool (``"sobol"``, ``"halton"``, ``"lhs"``, ``"uniform"``).
            key: int seed or JAX key for the pools and the random selections.
            until: no events at global steps >= until (pass the run's total steps: a resampling after the last
                step would only change the batch the final loss is reported on).
            keep_snapshots: keep every point set in ``snapshots``.
        """
        if method not in ADAPTIVE_METHODS:
            raise ValueError(f"method: expected one of {', '.join(map(repr, ADAPTIVE_METHODS))}, got {method!r}")
        terms = getattr(getattr(residual, "problem", None), "terms", None)
        if terms is None or not hasattr(residual, "terms"):
            raise ValueError(
                f"residual: expected a sciml_jax.pinn.Residual (with .problem.terms and .terms), got {type(residual).__name__}"
            )
        if term not in terms:
            raise ValueError(f"term: unknown term {term!r}; the problem's terms are {', '.join(terms)}")
        self.entry = terms[term].points
        if not hasattr(domain, "point_sets") or self.entry not in domain.point_sets:
            raise ValueError(
                f"domain: expected a sciml_jax Domain with the point set {self.entry!r} of term {term!r}, got {domain!r}"
            )
        self.every = _positive_int(every, "every", allow_none=True)
        self.on_plateau = _plateau_options(on_plateau)
        if self.every is None and self.on_plateau is None:
            raise ValueError("every, on_plateau: give at least one (steps between events, or a plateau rule)")
        dk, dc = _DEFAULT_KC[method]
        self.k = dk if k is None else k
        self.c = dc if c is None else c
        _check_kc(self.k, self.c)
        self.k, self.c = float(self.k), float(self.c)
        self.candidates = _positive_int(candidates, "candidates", allow_none=True)
        if isinstance(replace, bool) or not isinstance(replace, (int, float)) or not 0.0 < replace <= 1.0:
            raise ValueError(f"replace: expected a fraction in (0, 1], got {replace!r}")
        self.replace = float(replace)
        if sampler not in _SAMPLERS:
            raise ValueError(f"sampler: expected one of {', '.join(map(repr, _SAMPLERS))}, got {sampler!r}")
        self.sampler = sampler
        self.until = _positive_int(until, "until", allow_none=True)
        self.key = _as_key(key)
        self.method, self.term, self.domain = method, term, domain
        self.keep_snapshots = bool(keep_snapshots)
        self.snapshots: list[dict] = []
        self.events = 0
        self._history_id: int | None = None
        self._offset = 0  # global step of the current fit call's step 0 (fit_stages restarts at 0 per stage)
        self._last_step = -1
        self._next: int | None = None
        self._last_event = 0

        entry = self.entry

        def abs_residual(params, batch, x):
            r = residual.terms(params, {**batch, entry: x})[term]
            r = jnp.reshape(r, (x.shape[0], -1))
            return jnp.linalg.norm(r, axis=1) if r.shape[1] > 1 else jnp.abs(r[:, 0])

        self._abs_residual = jax.jit(abs_residual)
        self._rad = jax.jit(rad, static_argnames=("n",))
        self._rar_d = jax.jit(rar_d, static_argnames=("n_replace",))
        self._r3 = jax.jit(r3)

    @classmethod
    def from_options(
        cls, residual: Any, domain: Any, options: Mapping[str, Any], *, key: Any = 0, until: int | None = None
    ) -> "Resampler | None":
        """Build from a config mapping ``{method, every, on_plateau, k, c, candidates, replace, term, sampler,
        until}`` (``sampling.adaptive`` of a run config); returns None for ``method: none``. The earlier of the
        mapping's ``until`` and the argument ``until`` (the run's total steps) wins."""
        opts = {k: v for k, v in dict(options).items() if v is not None}
        method = opts.pop("method", "none")
        if method == "none":
            return None
        if "until" in opts:
            own = _positive_int(opts.pop("until"), "until")
            until = own if until is None else min(own, until)
        return cls(residual, domain, method, key=key, until=until, **opts)

    # -- scheduling
    def _sync(self, step: int, history: Any) -> None:
        """Adopt a new ``fit`` call (new History): a stage of ``fit_stages`` (step restarts) or a resumed run."""
        if id(history) == self._history_id:
            return
        if self._history_id is not None and step <= self._last_step:
            self._offset += self._last_step  # a new stage: its steps restart at 0
        self._history_id = id(history)
        past = [e["step"] for e in getattr(history, "events", []) if e.get("kind") == "resample"]
        self._last_event = max(past) if past else 0
        if self.every is not None:
            self._next = (self._last_event // self.every + 1) * self.every

    def _plateaued(self, step: int, history: Any) -> bool:
        if self.on_plateau is None:
            return False
        patience, delta = self.on_plateau["patience"], self.on_plateau["min_delta"]
        steps = np.asarray(history.steps)
        loss = np.asarray(history.loss)
        since = (steps >= self._last_event) & np.isfinite(loss)
        recent = since & (steps > step - patience)
        earlier = since & (steps <= step - patience)
        if not earlier.any() or not recent.any():
            return False
        return bool(loss[recent].min() > (1.0 - delta) * loss[earlier].min())

    def due(self, step: int, history: Any) -> str | None:
        """Why an event is due at ``step`` (``"every"`` / ``"plateau"``) or None."""
        self._sync(step, history)
        if self.until is not None and self._offset + step >= self.until:
            return None
        if self._next is not None and step >= self._next:
            return "every"
        if self._plateaued(step, history):
            return "plateau"
        return None

    # -- the event
    def resample(self, step: int, params: Any, batch: Mapping[str, Any]) -> tuple[dict, dict]:
        """Apply the method once at (local) ``step``; returns ``(new batch, event info)``."""
        current = batch[self.entry]
        if isinstance(current, (tuple, list)) or jnp.ndim(current) != 2:
            raise ValueError(
                f"batch[{self.entry!r}]: adaptive sampling moves an (n, d) point array, got {type(current).__name__}"
            )
        n = int(current.shape[0])
        gstep = self._offset + int(step)
        key = jax.random.fold_in(self.key, gstep)
        k_pool, k_pick = jax.random.split(key)
        seed = int(jax.random.randint(k_pool, (), 0, 2**31 - 1, dtype=jnp.int32))
        info: dict[str, Any] = {}
        if self.method == "r3":
            fresh = _sample(self.domain, {self.entry: n}, "uniform", seed)[self.entry]
            e = self._abs_residual(params, batch, current)
            new, retained = self._r3(current, e, fresh.astype(current.dtype))
            moved = n - int(jnp.sum(retained))
            info["mean_abs_residual"] = float(jnp.mean(e))
        else:
            m = self.candidates or 10 * n
            pool = _sample(self.domain, {self.entry: m}, self.sampler, seed)[self.entry].astype(current.dtype)
            e_pool = self._abs_residual(params, batch, pool)
            info["candidates"] = m
            info["mean_abs_residual"] = float(jnp.mean(e_pool))
            if self.method == "rad":
                new = self._rad(k_pick, pool, e_pool, n=n, k=self.k, c=self.c)
                moved = n
            else:
                n_replace = max(1, min(n, m, int(round(self.replace * n))))
                e = self._abs_residual(params, batch, current)
                new = self._rar_d(k_pick, current, e, pool, e_pool, n_replace=n_replace, k=self.k, c=self.c)
                moved = n_replace
        new_batch = dict(batch)
        new_batch[self.entry] = new.astype(current.dtype)
        info.update({"moved": moved, "global_step": gstep})
        return new_batch, info

    def __call__(self, *, step: int, params: Any, batch: Mapping[str, Any], history: Any, **_: Any):
        reason = self.due(step, history)
        self._last_step = int(step)
        if reason is None:
            return None
        if self.keep_snapshots and not self.snapshots:
            self.snapshots.append({"step": self._offset + self._last_event, "points": np.asarray(batch[self.entry])})
        new_batch, info = self.resample(step, params, batch)
        self.events += 1
        self._last_event = int(step)
        if self.every is not None:
            self._next = (int(step) // self.every + 1) * self.every
        history.add_event(
            int(step), "resample", method=self.method, term=self.term, points=self.entry, trigger=reason,
            **{k: v for k, v in info.items() if k != "global_step"},
        )
        if self.keep_snapshots:
            self.snapshots.append({"step": info["global_step"], "points": np.asarray(new_batch[self.entry])})
        return {"batch": new_batch}


__all__ = ["ADAPTIVE_METHODS", "Resampler", "r3", "rad", "rad_log_density", "rar_d"]
