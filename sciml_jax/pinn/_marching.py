"""Time-marching windows for time-dependent problems: the time interval split into windows solved one after another.

A problem on ``space x [T0, T1]`` is solved on K windows [t_k, t_{k+1}] in turn (Wight & Zhao 2020; Krishnapriyan
et al. 2021, "sequence to sequence" training; jaxpi's time windows). Window k trains the network (warm-started
from window k-1) on its own points, and its initial condition is the previous window's solution at t_k: every
term on the ``initial`` point set, r(u)(x), becomes r(u)(x) - r(u_prev)(x) at the window's initial points, which is
u(x, t_k) - u_prev(x, t_k) for a value condition u(x, 0) = u0(x) and u_t - u_prev,t for a velocity condition
(window 0 keeps the problem's own data: r(u_prev) is replaced by 0). The solution is the piecewise model
:class:`WindowedModel`: window k's parameters on [t_k, t_{k+1}).

Compile once: the window problem, whose initial terms read their data r(u_prev)(x) from a batch entry, is the same
for every window; the points, that data, the causal weighting's time span and the error metric's window are array
leaves. All K windows share one compiled training step (``sciml_jax.train.fit_windows``).

Written here, not taken from a library: jaxpi has time windows inside its own training scripts only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .. import geometry
from ..problems._core import Problem, Term, call_with_coeffs
from ._residual import Causal, ErrorMetric, Residual, rel_l2, residual

INITIAL = "initial"


def _data_entry(term_name: str) -> str:
    return f"window_{term_name}"


@dataclasses.dataclass(frozen=True)
class _Relative:
    """``r(u)(x) - d``: an initial term measured against data ``d = r(u_prev)(x)`` of the batch entry ``(x, d)``."""

    fn: Callable

    def __call__(self, u, x, d, c):
        r = call_with_coeffs(self.fn, (u, x), c)
        return r - jnp.reshape(d, jnp.shape(r)).astype(jnp.result_type(r))


class LocalTime(eqx.Module):
    """A network on window-local time: ``apply(params, (x, τ))`` with τ = (t - t_k) / (t_{k+1} - t_k) in [0, 1].

    Every window then looks alike to its network, whatever its length: a window of length 0.1 with β = 40
    convection asks for a 4-radian phase change over τ in [0, 1], not a 40-per-unit slope over an input that varies
    by 0.1 (with absolute time, LM fit window 0 of convection β = 40 only to rel L2 0.88; see TimeWindows).
    ``span`` is an array leaf, so moving to the next window recompiles nothing. Derivatives in t (the PDE's) are
    taken through the map, so the physics is unchanged.
    """

    apply: Callable
    span: jax.Array  # (2,) = (t_k, t_{k+1})

    def __call__(self, params: Any, x: jax.Array) -> jax.Array:
        span = jnp.asarray(self.span, x.dtype)
        tau = (x[-1] - span[0]) / (span[1] - span[0])
        return self.apply(params, x.at[-1].set(tau))


class WindowedModel(eqx.Module):
    """The piecewise-in-time model of a time-marching run: ``model(stacked, x) = net_k(stacked[k], x)`` with k the
    window of x's time (window k is [t_k, t_{k+1}); the last one includes T1; times outside go to the nearest window)
    and net_k the network, on window-local time when ``local_time`` (:class:`LocalTime`).

    ``stacked`` is the pytree of the K windows' parameters stacked on a leading axis. Every window's network is
    evaluated at x and one is selected (K small forward passes, so that a vmap over points gathers no parameters).
    """

    apply: Callable
    bounds: np.ndarray  # (K + 1,) window bounds
    local_time: bool = eqx.field(static=True, default=True)

    def index(self, t: jax.Array) -> jax.Array:
        """The window of time t (an integer array of t's shape)."""
        inner = jnp.asarray(self.bounds, jnp.result_type(t))[1:-1]
        return jnp.searchsorted(inner, t, side="right")

    def __call__(self, stacked: Any, x: jax.Array) -> jax.Array:
        bounds = jnp.asarray(self.bounds, x.dtype)
        spans = jnp.stack([bounds[:-1], bounds[1:]], axis=1)

        def one(p, span):
            return (LocalTime(self.apply, span) if self.local_time else self.apply)(p, x)

        outs = jax.vmap(one)(stacked, spans)
        return outs[self.index(x[-1])]


class MarchingError(eqx.Module):
    """Relative L2 error over the part of the time interval solved so far, ``params -> ()`` (a ``fit`` metric).

    While window k trains, ``params`` are window k's: the error is sqrt(E_done + e_k(params)) / sqrt(R_done + R_k)
    where E_done, R_done are the squared error and squared reference over the earlier windows' points (fixed once
    those windows are trained) and e_k, R_k the same over window k's points. After the last window it is the
    relative L2 error of the whole :class:`WindowedModel`. Points, reference values and the model evaluation are
    those of the wrapped :class:`ErrorMetric` (``base``); all fields are array leaves: one compile for all windows.
    """

    base: ErrorMetric  # over all points, for window k's network
    window: jax.Array  # (M,) window index of each point
    k: jax.Array  # the window being trained
    done_sq: jax.Array  # squared error over windows < k
    done_ref: jax.Array  # squared reference over windows < k

    __hash__ = object.__hash__

    def __eq__(self, other):
        return self is other

    def current(self, params: Any) -> tuple[jax.Array, jax.Array]:
        """(squared error, squared reference) over window k's points."""
        mask = (self.window == self.k)[:, None]
        err = jnp.sum(jnp.where(mask, (self.base.values(params) - self.base.u_star) ** 2, 0.0))
        ref = jnp.sum(jnp.where(mask, self.base.u_star**2, 0.0))
        return err, ref

    def __call__(self, params: Any) -> jax.Array:
        err, ref = self.current(params)
        return jnp.sqrt((self.done_sq + err) / (self.done_ref + ref))

    def advance(self, params: Any, apply: Callable) -> "MarchingError":
        """The metric of window k + 1 with the network ``apply`` of that window, window k's contribution (at
        ``params``) fixed."""
        err, ref = self.current(params)
        return eqx.tree_at(lambda m: (m.k, m.done_sq, m.done_ref, m.base.apply), self,
                           (self.k + 1, self.done_sq + err, self.done_ref + ref, apply))


class TimeWindows:
    """Time-marching windows of a time-dependent problem (module docstring).

    Attributes:
        problem: the original problem (space-time domain ``space x [T0, T1]``).
        window_problem: the problem every window trains: the same terms, with each initial term ``name`` read
            from the data entry ``window_<name> = (x, r(u_prev)(x))`` instead of the ``initial`` point set.
        bounds: (K + 1,) float64 window bounds T0 = t_0 < ... < t_K = T1 (equal windows by default).
        initial_terms: names of the problem's terms on the ``initial`` point set.
    """

    def __init__(self, problem: Problem, windows: int | None = None, bounds: Any = None, local_time: bool = True):
        """Split ``problem``'s time interval into ``windows`` equal windows, or at the given ``bounds``.

        With ``local_time`` (default) each window's network sees the window-local time τ in [0, 1]
        (:class:`LocalTime`); otherwise the absolute time.

        Raises:
            ValueError: the problem has no space-time domain, no term on the ``initial`` point set, unknowns,
                observation entries, fields compared up to a constant, or ``windows``/``bounds`` are not a valid
                split of its time interval.
        """
        if not isinstance(problem, Problem):
            raise ValueError(f"time windows: expected a sciml_jax.problems.Problem, got {type(problem).__name__}")
        dom = problem.domain
        if not isinstance(dom, geometry.SpaceTime):
            raise ValueError(
                f"time windows: problem {problem.name!r} is not time-dependent (its domain is {dom!r}, not a "
                "geometry.SpaceTime)"
            )
        initial = tuple(n for n, t in problem.terms.items() if t.points == INITIAL)
        if not initial:
            raise ValueError(
                f"time windows: problem {problem.name!r} has no term on the 'initial' point set (the initial "
                "condition each window takes from the previous one)"
            )
        if problem.unknowns:
            raise ValueError(f"time windows: problem {problem.name!r} has unknowns {list(problem.unknowns)}; "
                             "windows would identify them separately, which is not supported")
        if problem.data:
            raise ValueError(f"time windows: problem {problem.name!r} has observation entries {list(problem.data)}; "
                             "windows with observations are not supported (each window would need its own times' data)")
        if problem.up_to_constant:
            raise ValueError(f"time windows: fields {list(problem.up_to_constant)} compared up to a constant are "
                             "not supported")
        t0, t1 = float(dom.t0), float(dom.t1)
        if bounds is None:
            if isinstance(windows, bool) or not isinstance(windows, (int, np.integer)) or windows < 1:
                raise ValueError(f"time windows: windows must be an integer >= 1, got {windows!r}")
            bounds = np.linspace(t0, t1, int(windows) + 1)
        else:
            bounds = np.asarray(bounds, dtype=np.float64)
            if (bounds.ndim != 1 or bounds.size < 2 or not np.all(np.isfinite(bounds)) or np.any(np.diff(bounds) <= 0)
                    or not np.isclose(bounds[0], t0) or not np.isclose(bounds[-1], t1)):
                raise ValueError(
                    f"time windows: bounds must increase strictly from t0 = {t0:g} to t1 = {t1:g}, got {bounds!r}"
                )
            if windows is not None and windows != bounds.size - 1:
                raise ValueError(f"time windows: windows = {windows!r} but bounds give {bounds.size - 1} windows")
        if not isinstance(local_time, bool):
            raise ValueError(f"time windows: local_time must be true or false, got {local_time!r}")
        self.problem = problem
        self.bounds = bounds
        self.local_time = local_time
        self.initial_terms = initial
        terms = dict(problem.terms)
        for name in initial:
            old = terms[name]
            terms[name] = Term(_data_entry(name), _Relative(old.fn),
                               f"{old.description} (relative to the previous window at the window's start)")
        self.window_problem = problem._copy(
            term_names=tuple(terms), term_list=tuple(terms.values()),
            data=problem.data + tuple(_data_entry(n) for n in initial),
        )

    @property
    def count(self) -> int:
        """K, the number of windows."""
        return int(self.bounds.size - 1)

    def span(self, k: int) -> tuple[float, float]:
        """(t_k, t_{k+1})."""
        return float(self.bounds[k]), float(self.bounds[k + 1])

    def domain(self, k: int) -> geometry.SpaceTime:
        """Window k's space-time domain (for sampling its points)."""
        return geometry.SpaceTime(self.problem.domain.space, *self.span(k))

    def model(self, apply: Callable) -> WindowedModel:
        """The piecewise model ``(stacked params, x) -> u`` of these windows for the network ``apply``."""
        return WindowedModel(apply, self.bounds, self.local_time)

    def network(self, apply: Callable, k: int) -> Callable:
        """Window k's network ``(params, x) -> u`` (on window-local time when ``local_time``)."""
        return LocalTime(apply, np.asarray(self.span(k), dtype=np.float64)) if self.local_time else apply

    def residual(self, apply: Callable, weights: Mapping[str, Any] | None = None,
                 causal: Causal | None = None) -> Residual:
        """The residual of the window problem for window 0 (:meth:`for_window` moves it to another window)."""
        if causal is not None:
            causal = Causal(causal.term, causal.chunks, float(causal.epsilon), span=self.span(0))
        return residual(self.window_problem, self.network(apply, 0), weights, causal=causal)

    def for_window(self, res: Residual, k: int) -> Residual:
        """``res`` (from :meth:`residual`) moved to window k: the network's time map and the causal span (array
        leaves: the same structure, nothing recompiles)."""
        span = np.asarray(self.span(k), dtype=np.float64)
        if self.local_time:
            res = eqx.tree_at(lambda r: r.apply.span, res, span)
        if res.causal is not None:
            res = eqx.tree_at(lambda r: r.causal.span, res, span)
        return res

    def batch(self, k: int, counts: Mapping[str, int], method: str = "sobol", key: Any = 0,
              previous: tuple[Callable, Any] | None = None, observations: Mapping[str, Any] | None = None) -> dict:
        """Window k's batch: points of window k's domain, and per initial term the entry ``(x, r(u_prev)(x))``.

        Args:
            k: the window.
            counts: point set -> number of points, as for the whole problem (``initial`` included: the window's
                initial points).
            method, key, observations: as in ``Problem.batch`` (use a different key per window, e.g.
                ``fold_in(key, k)``, for fresh points in each window).
            previous: ``(network, params)`` of the previous window (``network(apply, k - 1)``); None for window 0
                (the problem's own initial data).
        """
        if not 0 <= k < self.count:
            raise ValueError(f"window {k!r}: expected 0 <= k < {self.count}")
        counts = dict(counts)
        if INITIAL not in counts:
            raise ValueError(f"time windows: counts need an {INITIAL!r} entry (the windows' initial points); "
                             f"got {sorted(counts)}")
        if k > 0 and previous is None:
            raise ValueError(f"window {k}: previous = (apply, params) of window {k - 1} is needed")
        # the window's points come from its own domain; the problem's structure (its full domain) is kept
        base = self.problem._copy(domain=self.domain(k))
        out = base.batch(counts, method, key, observations)
        x0 = out.pop(INITIAL)
        dtype = x0.dtype
        for name in self.initial_terms:
            if previous is None:
                m = jax.eval_shape(lambda y, _n=name: self._term_at(_n, None, None, y), x0[0]).size
                d = jnp.zeros((x0.shape[0], m), dtype)
            else:
                apply, params = previous
                d = _initial_values(self, name, apply, params, x0)
            out[_data_entry(name)] = (x0, d)
        return out

    def _term_at(self, name: str, apply: Callable | None, params: Any, x: jax.Array) -> jax.Array:
        res = residual(self.problem, apply if apply is not None else _zero_model(len(self.problem.fields)))
        return res.point_residual(name)(params if apply is not None else {}, x)


def _zero_model(m: int) -> Callable:
    def zero(params, x):  # noqa: ARG001 - shape-only stand-in
        return jnp.zeros((), x.dtype) if m == 1 else jnp.zeros((m,), x.dtype)
    return zero


@eqx.filter_jit
def _initial_values(windows: TimeWindows, name: str, apply: Callable, params: Any, x: jax.Array) -> jax.Array:
    return jax.vmap(lambda y: windows._term_at(name, apply, params, y))(x)


def marching_error(windows: TimeWindows, apply: Callable, points: Any = None) -> MarchingError:
    """The :class:`MarchingError` of window 0 on ``points`` (default the problem's evaluation points) for the
    network ``apply`` (window k's is ``windows.network(apply, k)``)."""
    prob = windows.problem
    if prob.exact is None:
        raise ValueError(f"marching error: problem {prob.name!r} has no reference solution")
    base = rel_l2(prob, windows.network(apply, 0), points=points)
    window = windows.model(apply).index(base.x[:, -1]).astype(jnp.int32)
    zero = jnp.zeros((), base.u_star.dtype)
    return MarchingError(base, window, jnp.asarray(0, jnp.int32), zero, zero)

