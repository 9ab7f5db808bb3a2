"""The weighted residual vector r(θ): the one object every loss, optimizer and analysis is derived from."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..problems._core import Fields, Problem, _check_weight

Batch = Mapping[str, Any]


def _entry_args(entry: Any) -> tuple:
    return tuple(entry) if isinstance(entry, (tuple, list)) else (entry,)


def _point_count(entry: Any) -> int:
    """Number of points in a batch entry: an array (n, d) or a tuple of arrays sharing axis 0."""
    return int(_entry_args(entry)[0].shape[0])


def _float_dtype(params: Any) -> Any:
    leaves = [x for x in jax.tree.leaves(params) if eqx.is_inexact_array(x)]
    return jnp.result_type(*[x.dtype for x in leaves]) if leaves else jnp.result_type(float)


class Causal(eqx.Module):
    """Causal residual weighting for time-dependent problems (Wang, Sankaran & Perdikaris 2024, "Respecting
    causality for training physics-informed neural networks", CMAME 421).

    The points of one term are grouped into ``chunks`` time slices of [t0, t1] (time is the last coordinate). With
    L_i the mean square residual of slice i, slice i is weighted by w_i = exp(-ε Σ_{k<i} L_k) (the weights are
    constants for differentiation): later times only count once earlier times are resolved. In the residual vector
    each row of slice i is multiplied by sqrt(w_i), so ½‖r‖² ≈ (γ/M) Σ_i w_i L_i, and every optimizer (first- or
    second-order) sees the weighting. ε is an array leaf: changing it (an annealing schedule across fits)
    recompiles nothing.

    Attributes:
        term: the term weighted (default ``"pde"``).
        chunks: M, the number of time slices (jaxpi uses 32).
        epsilon: ε > 0, the causality parameter (jaxpi: 1.0).
        span: ``(t0, t1)``, the time interval the slices divide, or None (default: the problem's time interval).
            An array leaf: time windows (:class:`sciml_jax.pinn.TimeWindows`) set each window's interval without
            recompiling.
    """

    epsilon: np.ndarray
    span: np.ndarray | None = None
    term: str = eqx.field(static=True, default="pde")
    chunks: int = eqx.field(static=True, default=32)

    def __init__(self, term: str = "pde", chunks: int = 32, epsilon: float = 1.0, span: Any = None):
        if not isinstance(term, str) or not term:
            raise ValueError(f"Causal: term must name a residual term, got {term!r}")
        if isinstance(chunks, bool) or not isinstance(chunks, int) or chunks < 2:
            raise ValueError(f"Causal: chunks must be an integer >= 2, got {chunks!r}")
        eps = np.asarray(epsilon, dtype=np.float64)
        if eps.shape != () or not np.isfinite(eps) or eps <= 0:
            raise ValueError(f"Causal: epsilon must be a finite number > 0, got {epsilon!r}")
        if span is not None:
            span = np.asarray(span, dtype=np.float64)
            if span.shape != (2,) or not np.all(np.isfinite(span)) or not span[0] < span[1]:
                raise ValueError(f"Causal: span must be (t0, t1) with finite t0 < t1, or None; got {span!r}")
        self.term, self.chunks, self.epsilon, self.span = term, chunks, eps, span

    def weights(self, t: jax.Array, r: jax.Array, t0: float, t1: float) -> tuple[jax.Array, jax.Array]:
        """``(row weights (N,), slice weights (M,))`` for residual rows r at times t (rows of one point share t)."""
        m = self.chunks
        b = jnp.clip(jnp.floor((t - t0) / (t1 - t0) * m).astype(jnp.int32), 0, m - 1)
        sq = jax.lax.stop_gradient(r**2)
        counts = jax.ops.segment_sum(jnp.ones_like(sq), b, num_segments=m)
        mean_sq = jax.ops.segment_sum(sq, b, num_segments=m) / jnp.maximum(counts, 1.0)
        before = jnp.cumsum(mean_sq) - mean_sq  # Σ_{k<i} L_k
        w = jnp.exp(-jnp.asarray(self.epsilon, r.dtype) * before)
        return w[b], w


class Residual(eqx.Module):
    """Weighted residual vector of a problem for a model.

    For terms k = 1..K with unweighted residuals r_k(θ) evaluated on N_k points (each point may give m_k values),
    the residual vector is

        r(θ) = concat_k sqrt(γ_k / N_k) · r_k(θ)        shape (N,),  N = Σ_k N_k m_k,

    so that the loss L(θ) = ½‖r(θ)‖² = ½ Σ_k γ_k · mean_i |r_k,i(θ)|² is a weighted sum of per-term mean squares.

    A pytree (equinox Module): the problem's coefficients, the unknowns' structure and the loss weights γ_k are
    array leaves, the term functions and the model's static part are structure. ``sciml_jax.train.fit`` compiles
    one step per structure, so a residual with other coefficient values or weights reuses it.

    Calling ``residual(params, batch)`` returns ``r``; ``weights`` (a mapping term -> γ_k, floats or traced
    scalars) may be passed to override the weights at call time, e.g. for adaptive loss weighting.

    With unknowns (:class:`sciml_jax.problems.Unknown`) the parameters are ``{"net": ..., "unknowns": {...}}``
    (``problem.init_params(net_params)``); the terms see the unknowns' current values in ``c``.

    Attributes:
        problem: the :class:`sciml_jax.problems.Problem`.
        apply: the model, ``apply(net_params, x) -> ()`` (one field) or ``(m,)`` (m fields) for one point ``x: (d,)``.
        weights: loss weights γ_k per term name (the problem's defaults, overridden by those given; 1 otherwise).
    """

    problem: Problem
    apply: Callable
    weights: dict
    causal: Causal | None = None

    __hash__ = object.__hash__  # identity, like a function: jax.jit(residual) works

    def __eq__(self, other):
        return self is other

    @property
    def term_names(self) -> tuple[str, ...]:
        return tuple(self.problem.terms)

    # ------------------------------------------------------------------ pieces

    def split(self, params: Any) -> tuple[Any, dict]:
        """``(net_params, c)``: the network's parameters and the coefficients + unknowns handed to the terms."""
        net, unknown_values = self.problem.split_params(params)
        return net, self.problem.coefficient_values(unknown_values, dtype=_float_dtype(net))

    def fields(self, net_params: Any) -> Fields:
        """The model at fixed parameters as named fields (what term functions receive as ``u``)."""
        apply = self.apply
        return Fields(lambda y: apply(net_params, y), self.problem.fields)

    def point_residual(self, name: str) -> Callable[..., jax.Array]:
        """``(params, *point_args) -> (m,)``: term ``name``'s unweighted residual at one point, flattened."""
        term = self.problem.terms[name]

        def fn(params, *point_args):
            net, c = self.split(params)
            return jnp.reshape(term(self.fields(net), point_args, c), (-1,))

        return fn

    def terms(self, params: Any, batch: Batch) -> dict[str, jax.Array]:
        """Unweighted per-term residuals ``{name: (N_k * m_k,)}`` (flattened point-major)."""
        net, c = self.split(params)
        u = self.fields(net)
        out = {}
        for name, term in self.problem.terms.items():
            if term.points not in batch:
                raise ValueError(
                    f"batch has no entry {term.points!r} needed by term {name!r}; batch entries: {sorted(batch)}"
                )
            args = _entry_args(batch[term.points])
            r_k = jax.vmap(lambda *a, _t=term: _t(u, a, c))(*args)
            out[name] = jnp.reshape(r_k, (-1,))
        return out

    def scales(self, batch: Batch, weights: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Per-term scale sqrt(γ_k / N_k) applied to the unweighted residuals."""
        w = dict(self.weights)
        if weights is not None:
            w.update(weights)
        dtype = jnp.result_type(float)
        scales = {}
        for name, term in self.problem.terms.items():
            n_k = _point_count(batch[term.points])
            scales[name] = jnp.sqrt(jnp.asarray(w.get(name, 1.0), dtype=dtype) / n_k)
        return scales

    def weighted_terms(
        self, params: Any, batch: Batch, weights: Mapping[str, Any] | None = None
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """Return ``(r, unweighted_terms)`` in one evaluation: r: (N,) and the per-term unweighted residuals."""
        raw = self.terms(params, batch)
        scales = self.scales(batch, weights)
        parts = {name: (scales[name] * raw[name]).astype(raw[name].dtype) for name in self.term_names}
        if self.causal is not None:
            row_w, _ = self._causal(raw, batch)
            name = self.causal.term
            parts[name] = parts[name] * jnp.sqrt(row_w).astype(parts[name].dtype)
        return jnp.concatenate([parts[name] for name in self.term_names]), raw

    def _causal(self, raw: Mapping[str, jax.Array], batch: Batch) -> tuple[jax.Array, jax.Array]:
        term = self.problem.terms[self.causal.term]
        x = _entry_args(batch[term.points])[0]
        t = jnp.repeat(x[:, -1], raw[self.causal.term].shape[0] // x.shape[0])  # one time per residual row
        if self.causal.span is not None:
            span = jnp.asarray(self.causal.span, t.dtype)
            return self.causal.weights(t, raw[self.causal.term], span[0], span[1])
        lo, hi = self.problem.domain.bounds()
        return self.causal.weights(t, raw[self.causal.term], float(lo[-1]), float(hi[-1]))

    def causal_weights(self, params: Any, batch: Batch) -> jax.Array:
        """The causal slice weights w_i (M,) at ``params`` (ones-like diagnostics: training is causal-complete when
        min w_i is close to 1). Raises ValueError without causal weighting."""
        if self.causal is None:
            raise ValueError("causal_weights: this residual has no causal weighting (pinn.residual(..., causal=...))")
        return self._causal(self.terms(params, batch), batch)[1]

    def __call__(self, params: Any, batch: Batch, weights: Mapping[str, Any] | None = None) -> jax.Array:
        return self.weighted_terms(params, batch, weights)[0]

    def slices(self, params: Any, batch: Batch) -> dict[str, slice]:
        """Row ranges of each term inside r (static: depends on shapes only, computed abstractly)."""
        key = _shape_key(self, params, batch)
        if key is not None and key in _SLICES:
            return dict(_SLICES[key])
        # a fresh lambda, not the bound method: JAX caches on the function and would compare this module's arrays
        shapes = jax.eval_shape(lambda p, b: self.terms(p, b), params, batch)
        out, start = {}, 0
        for name in self.term_names:
            size = int(np.prod(shapes[name].shape))
            out[name] = slice(start, start + size)
            start += size
        if key is not None:
            if len(_SLICES) >= 256:
                _SLICES.pop(next(iter(_SLICES)))
            _SLICES[key] = out
        return dict(out)

    def loss(self, params: Any, batch: Batch, weights: Mapping[str, Any] | None = None) -> jax.Array:
        """L(θ) = ½‖r(θ)‖²."""
        r = self(params, batch, weights)
        return 0.5 * jnp.sum(r**2)

    def term_mse(self, params: Any, batch: Batch) -> dict[str, jax.Array]:
        """Unweighted mean square of each term, mean_i |r_k,i|²."""
        return {name: jnp.mean(v**2) for name, v in self.terms(params, batch).items()}

    # ------------------------------------------------------------------ checks

    def check(self, params: Any, batch: Batch) -> None:
        """Check shapes abstractly (nothing is evaluated) and raise one clear ``ValueError`` on a mismatch.

        Checked: the model's output has one value per field; every batch entry a term needs exists, is a float
        array ``(n, ...)`` or a tuple of such arrays with equal ``n``, has points of the domain's dimension, and
        carries normals when the term asks for them; every term gives one scalar or one vector per point.
        """
        prob = self.problem
        net, _ = self.split(params)
        m = len(prob.fields)
        dim = prob.domain.dim if prob.domain is not None else None
        for name, term in prob.terms.items():
            if term.points not in batch:
                raise ValueError(
                    f"batch has no entry {term.points!r} needed by term {name!r}; batch entries: {sorted(batch)}"
                )
            args = _entry_args(batch[term.points])
            shapes = [tuple(np.shape(a)) for a in args]
            if any(len(s) == 0 for s in shapes) or len({s[0] for s in shapes}) != 1:
                raise ValueError(
                    f"batch[{term.points!r}] (term {name!r}): every array needs the same leading number of rows; "
                    f"got shapes {shapes}"
                )
            if term.normals and len(args) != 2:
                raise ValueError(
                    f"term {name!r} needs outward normals: batch[{term.points!r}] must be the pair (x, n), got "
                    f"{len(args)} array(s) of shapes {shapes} (sample it with normals, e.g. problem_batch)"
                )
            x_shape = shapes[0]
            if term.points not in prob.data and dim is not None and x_shape[1:] != (dim,):
                raise ValueError(
                    f"batch[{term.points!r}] (term {name!r}): points must have shape (n, {dim}) for this "
                    f"{dim}-D domain, got {x_shape}"
                )
            if term.normals and shapes[1] != x_shape:
                raise ValueError(
                    f"batch[{term.points!r}] (term {name!r}): normals {shapes[1]} must have the points' shape {x_shape}"
                )
        # the model's output at one point of the first term, then every term's residual at one point
        first = next(iter(prob.terms.values()))
        x0 = _entry_args(batch[first.points])[0]
        out = jax.eval_shape(self.apply, net, jax.ShapeDtypeStruct(x0.shape[1:], x0.dtype))
        want = () if m == 1 else (m,)
        if tuple(out.shape) != want and not (m == 1 and tuple(out.shape) == (1,)):
            raise ValueError(
                f"the model gives an output of shape {tuple(out.shape)} per point but problem {prob.name!r} has "
                f"{m} field(s) {list(prob.fields)}: expected shape {want} (build the model with "
                f"out_size = {m})"
            )

        def at_one_point(p, b):
            net_p, c = self.split(p)
            u = self.fields(net_p)
            return {k: t(u, tuple(a[0] for a in _entry_args(b[t.points])), c) for k, t in prob.terms.items()}

        for name, s in jax.eval_shape(at_one_point, params, batch).items():
            if len(s.shape) > 1:
                raise ValueError(
                    f"term {name!r} gives a residual of shape {tuple(s.shape)} at one point; expected a scalar or a "
                    "vector (check for a broadcast, e.g. (n,) minus (n, 1) data)"
                )


# Row ranges depend only on the residual's structure and the shapes of parameters and batch (coefficient and weight
# values are array leaves), so they are computed once per such key instead of tracing the residual on every call.
_SLICES: dict = {}


def _shape_key(res: Any, params: Any, batch: Any) -> Any:
    """A hashable key of (static structure of ``res``, shapes and dtypes of its arrays, params and batch), or None."""
    dyn, static = eqx.partition(res, eqx.is_array)
    leaves, treedef = jax.tree.flatten((dyn, params, batch))
    try:
        key = (jax.tree.flatten(static), treedef, tuple((np.shape(x), str(getattr(x, "dtype", type(x).__name__))) for x in leaves))
        key = (tuple(key[0][0]), key[0][1], key[1], key[2])
        hash(key)
    except TypeError:
        return None
    return key


def residual(
    problem: Problem, apply: Callable, weights: Mapping[str, float] | None = None, causal: Causal | None = None
) -> Residual:
    """Build the weighted residual vector r(θ) of ``problem`` for the model ``apply``.

    Args:
        problem: a :class:`sciml_jax.problems.Problem` (domain, named residual terms, exact solution).
        apply: pure model ``apply(params, x)`` for one point ``x: (d,)``, giving ``()`` for a one-field problem or
            ``(m,)`` for m fields.
        weights: loss weight γ_k per term name, overriding the problem's defaults; terms named nowhere get 1.0.
            Must be finite and >= 0.
        causal: a :class:`Causal` weighting of one term over time slices (time-dependent problems), or None.

    Returns:
        A :class:`Residual`, callable as ``r = residual(params, batch)`` with ``r: (N,)``.

    Raises:
        ValueError: a weight names no term of the problem, or is negative / not finite.
    """
    if not isinstance(problem, Problem):
        raise ValueError(f"problem: expected a sciml_jax.problems.Problem, got {type(problem).__name__}")
    if not callable(apply):
        raise ValueError(f"apply: expected a callable apply(params, x), got {apply!r}")
    # every term gets a weight leaf (default 1), so residuals with and without explicit weights share a structure
    w = {name: problem.weights.get(name, np.float64(1.0)) for name in problem.terms}
    w = {k: np.asarray(v, dtype=np.float64) for k, v in w.items()}
    for name, value in dict(weights or {}).items():
        if name not in problem.terms:
            raise ValueError(f"weights: unknown term {name!r}; the problem's terms are {list(problem.terms)}")
        w[name] = _check_weight(value, f"weights[{name!r}]")
    if causal is not None:
        if not isinstance(causal, Causal):
            raise ValueError(f"causal: expected a sciml_jax.pinn.Causal, got {causal!r}")
        if causal.term not in problem.terms:
            raise ValueError(f"causal.term: {causal.term!r} is not a term; the problem's terms are {list(problem.terms)}")
        if problem.domain is None or "initial" not in problem.domain.point_sets:
            raise ValueError(f"causal: problem {problem.name!r} is not time-dependent (no space-time domain)")
    return Residual(problem=problem, apply=apply, weights=w, causal=causal)


class CausalMinWeight(eqx.Module):
    """``params -> min_i w_i`` of a causal residual on a fixed batch (a metric: 1 when every slice is resolved)."""

    residual: Residual
    batch: dict

    __hash__ = object.__hash__

    def __eq__(self, other):
        return self is other

    def __call__(self, params: Any) -> jax.Array:
        return jnp.min(self.residual.causal_weights(params, self.batch))


# ---------------------------------------------------------------------------------------------- errors


class ErrorMetric(eqx.Module):
    """Relative L2 error of the model against the reference on fixed points: ``params -> ()``.

        e(θ) = ‖u_θ(X) - u*(X)‖₂ / ‖u*(X)‖₂         (over the chosen fields; up to a constant where asked)

    A pytree: the points and the reference values are array leaves, so ``fit`` compiles one evaluation for every
    metric of the same shapes. When the reference is zero the absolute L2 error (root mean square) is returned
    instead, and :func:`rel_l2` said so with a warning when it built the metric.
    """

    x: jax.Array
    u_star: jax.Array  # (M, k) reference values of the selected fields
    norm: jax.Array  # ‖u*‖ (or sqrt(M k): the RMS error when the reference is zero)
    apply: Callable
    columns: tuple = eqx.field(static=True)  # indices of the fields in the model output (() = the scalar output)
    shift: tuple = eqx.field(static=True)  # per selected field: compare up to a constant
    wrapped: bool = eqx.field(static=True)  # params are {"net", "unknowns"}

    __hash__ = object.__hash__

    def __eq__(self, other):
        return self is other

    def values(self, params: Any) -> jax.Array:
        net = params["net"] if self.wrapped else params
        u = jax.vmap(lambda p: self.apply(net, p))(self.x)
        u = jnp.reshape(u, (u.shape[0], -1))
        if self.columns:
            u = u[:, jnp.asarray(self.columns)]
        return u

    def __call__(self, params: Any) -> jax.Array:
        diff = self.values(params) - self.u_star
        if any(self.shift):
            mean = jnp.mean(diff, axis=0, keepdims=True)
            diff = diff - jnp.where(jnp.asarray(self.shift)[None, :], mean, 0.0)
        return jnp.linalg.norm(diff) / self.norm


def rel_l2(
    problem: Problem, apply: Callable, points: Any = None, *, field: str | None = None
) -> ErrorMetric:
    """Relative L2 error against the exact (or reference) solution on a fixed evaluation set.

        e(θ) = ‖u_θ(X) - u*(X)‖₂ / ‖u*(X)‖₂,   X = problem.eval_points()  (M, d)

    For a multi-field problem the default pools every field (Frobenius norm over the (M, m) values); ``field``
    selects one. Fields in ``problem.up_to_constant`` (a pressure) are compared after removing the mean
    difference. A zero reference gives the absolute L2 (root-mean-square) error instead, with a warning.

    Args:
        problem: problem with ``exact`` set.
        apply: model ``apply(params, x)`` (the network's parameters; with unknowns the metric takes the whole
            ``{"net", "unknowns"}`` parameters and uses ``"net"``).
        points: optional (M, d) evaluation points replacing the problem's set.
        field: one field name, or None for all fields pooled.

    Returns:
        An :class:`ErrorMetric`, ``params -> ()``.
    """
    if problem.exact is None:
        raise ValueError(f"problem {problem.name!r} has no exact or reference solution; rel_l2 needs one")
    if field is not None and field not in problem.fields:
        raise ValueError(f"field: {field!r} is not a field of {problem.name!r}; the fields are {list(problem.fields)}")
    dtype = jnp.result_type(float)
    x = jnp.asarray(problem.eval_points() if points is None else points, dtype=dtype)
    u_star = jax.jit(jax.vmap(problem.exact))(x)
    u_star = jnp.reshape(u_star, (u_star.shape[0], -1))
    m = len(problem.fields)
    if u_star.shape[1] != m:
        raise ValueError(
            f"problem {problem.name!r}: the exact solution gives {u_star.shape[1]} value(s) per point for "
            f"{m} field(s)"
        )
    names = problem.fields if field is None else (field,)
    idx = tuple(problem.fields.index(f) for f in names)
    u_star = u_star[:, jnp.asarray(idx)]
    shift = tuple(f in problem.up_to_constant for f in names)
    ref = u_star - jnp.where(jnp.asarray(shift)[None, :], jnp.mean(u_star, axis=0, keepdims=True), 0.0)
    norm = jnp.linalg.norm(ref)
    if not float(norm) > 0:
        what = "field " + repr(field) if field else "the solution"
        warnings.warn(
            f"rel_l2 of {problem.name!r}: the reference of {what} is zero on the evaluation points; the metric is "
            "the absolute L2 (root-mean-square) error instead",
            stacklevel=2,
        )
        norm = jnp.sqrt(jnp.asarray(u_star.size, dtype=dtype))
    columns = idx if m > 1 else ()
    return ErrorMetric(x, u_star, norm, apply, columns, shift, bool(problem.unknowns))


class UnknownValue(eqx.Module):
    """The current value of one unknown coefficient: ``params -> ()`` (a metric, recorded every evaluation)."""

    problem: Problem
    name: str = eqx.field(static=True)

    __hash__ = object.__hash__

    def __eq__(self, other):
        return self is other

    def __call__(self, params: Any) -> jax.Array:
        return jnp.reshape(self.problem.split_params(params)[1][self.name], (-1,))[0]


def metrics(problem: Problem, apply: Callable) -> dict[str, Callable]:
    """The standard metrics of a problem, for ``fit(..., metrics=...)``.

    ``rel_l2`` (pooled over the fields) when the problem has a reference solution; for several fields also
    ``rel_l2_<field>``; for every scalar unknown ``<name>`` its current value (the trajectory of the identification).
    """
    out: dict[str, Callable] = {}
    if problem.exact is not None:
        out["rel_l2"] = rel_l2(problem, apply)
        if len(problem.fields) > 1:
            for f in problem.fields:
                out[f"rel_l2_{f}"] = rel_l2(problem, apply, field=f)
    for name, unk in problem.unknowns.items():
        if unk.init.size == 1:
            out[name] = UnknownValue(problem, name)
    return out
