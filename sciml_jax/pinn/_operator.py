"""Data-driven (and physics-informed) residual vectors of neural operators: DeepONet and FNO1d.

Operator learning fits G_θ(u)(y) ≈ s(y) over B input functions u_b observed at Q points y_q. Written as the
toolkit's residual vector,

    r(θ) = concat_k sqrt(γ_k / N_k) · vec( (D_k G_θ(u_b))(y_q) − t_bq )      N_k = B_k Q_k rows for term k,

it plugs into every optimizer (first order, L-BFGS, Gauss-Newton/LM) and into the J / NTK / Gauss-Newton analysis
unchanged. D_k is the identity (a data term) or ∂/∂y_j (a first-order physics term, e.g. the physics-informed
DeepONet of Wang, Wang & Perdikaris 2021 for the antiderivative: ∂G(u)/∂y − u = 0 at the sensors, G(u)(0) = 0).

Evaluation is batched, not per point: a DeepONet's branch runs once per function and its trunk once per query
point (:func:`sciml_jax.nn.deeponet_grid`), and ∂/∂y_j is one forward-mode JVP of the trunk; an FNO maps each
whole input function at once. A term reads one batch entry whose arrays share the function axis, so
``fit(..., minibatch={entry: rows})`` draws mini-batches of *functions*; query points shared by all functions
live in a separate entry that is not mini-batched:

    layout "shared points":   batch[entry] = (U: (B, m), T: (B, Q)),  batch[points] = Y: (Q, d)
    layout "own points":      batch[entry] = (U: (B, m), Y: (B, Q, d), T: (B, Q))
    FNO:                      batch[entry] = (a: (B, c_in n), s: (B, c_out n))

A ``kind="points"`` residual evaluates any point function ``apply(params, z)``, z = concat(u, y), by vmapping
over all B·Q pairs (the per-point convention of :class:`sciml_jax.nn.DeepONet`); derivatives then go through
``sj.operators.partial(f, m + j)``. It is the reference the batched DeepONet path is tested against, and the path
for models that are not a :class:`~sciml_jax.nn.DeepONet`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .. import nn, operators
from ..problems._core import _check_weight

Batch = Mapping[str, Any]

KINDS = ("deeponet", "fno", "points")
LAYOUTS = ("queries", "sensors")


def _float_dtype(params: Any) -> Any:
    leaves = [x for x in jax.tree.leaves(params) if eqx.is_inexact_array(x)]
    return jnp.result_type(*[x.dtype for x in leaves]) if leaves else jnp.result_type(float)


class OperatorTerm(eqx.Module):
    """One term of an :class:`OperatorResidual`: ``(D G(u_b))(y_q) − t_bq`` over the functions and points of an entry.

    Attributes:
        entry: batch entry with the term's functions and targets: ``(U: (B, m), T: (B, Q))`` (with ``points``),
            ``(U, Y: (B, Q, d), T)`` (points per function) or, for an FNO, ``(a: (B, c_in n), s: (B, c_out n))``.
        points: batch entry holding query points ``Y: (Q, d)`` shared by all functions of ``entry`` (used when the
            entry has two arrays), or None.
        derivative: None (the term compares G(u)(y) itself) or j (it compares ∂G(u)/∂y_j, forward mode in y).
        description: one line saying what the term enforces, e.g. ``"dG(u)/dy − u = 0"``.
    """

    entry: str = eqx.field(static=True)
    points: str | None = eqx.field(static=True, default=None)
    derivative: int | None = eqx.field(static=True, default=None)
    description: str = eqx.field(static=True, default="")

    def __check_init__(self):
        if not isinstance(self.entry, str) or not self.entry:
            raise ValueError(f"OperatorTerm: entry must name a batch entry (non-empty str), got {self.entry!r}")
        if self.points is not None and (not isinstance(self.points, str) or not self.points):
            raise ValueError(f"OperatorTerm: points must be None or a batch entry name, got {self.points!r}")
        d = self.derivative
        if d is not None and (isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 0):
            raise ValueError(f"OperatorTerm: derivative must be None or a coordinate index >= 0, got {d!r}")
        if not isinstance(self.description, str):
            raise ValueError(f"OperatorTerm: description must be a str, got {self.description!r}")


def _as_apply(model: Any) -> Any:
    """An ``Apply`` (structure only) from a model, or the callable itself."""
    if isinstance(model, nn.Apply):
        return model
    if isinstance(model, eqx.Module) and isinstance(model, (nn.DeepONet, nn.FNO1d)):
        return nn.functional(model)[1]
    if callable(model):
        return model
    raise ValueError(f"OperatorResidual: model must be a DeepONet, an FNO1d, their apply, or a point function "
                     f"apply(params, z); got {type(model).__name__}")


def _infer_kind(apply: Any) -> str | None:
    static = getattr(apply, "static", None)
    if isinstance(static, nn.DeepONet):
        return "deeponet"
    if isinstance(static, nn.FNO1d):
        return "fno"
    return None


class OperatorResidual(eqx.Module):
    """Weighted residual vector of an operator network over named terms (module docstring).

        r(θ) = concat_k sqrt(γ_k / N_k) · vec(D_k G_θ(U_k)(Y_k) − T_k),     r: (N,),  N = Σ_k N_k,

    N_k the number of values of term k (B_k Q_k for a DeepONet term, B_k c_out n for an FNO term), rows
    function-major (function b's Q values are consecutive). The loss ½‖r‖² = ½ Σ_k γ_k · mean squared error of
    term k; with a mini-batch of functions N_k is the mini-batch's count, so the loss is an unbiased estimate.

    A pytree (equinox Module): the weights γ_k are array leaves, the model's structure and the terms are static,
    so ``sciml_jax.train.fit`` compiles one step per structure and shapes (another network of the same
    architecture, other weights, other data of the same shapes: no recompilation). It has the structured-residual
    interface ``fit`` logs per-term mean squares from (``weighted_terms``, ``term_names``) and ``slices`` for
    per-term rows of J and of the NTK (``sj.analysis.ntk(res, params, batch).block("ode")``); J itself comes
    from the generic path of :func:`sciml_jax.analysis.jacobian` (one vjp per row), so use a subset of
    functions/points when forming J or K.

        model = sj.nn.DeepONet(100, 1, 40, 2, 40, key=jax.random.key(0))
        params, apply = sj.nn.functional(model)
        res = sj.pinn.OperatorResidual(apply)                         # one term "data" on batch["data"]
        batch = sj.pinn.operator_batch(sj.datasets.antiderivative(0), "deeponet", layout="sensors")
        sj.train.fit(res, params, batch, optax.adam(1e-3), 1000, minibatch={"data": 100})

    Args:
        model: a :class:`sciml_jax.nn.DeepONet` or :class:`sciml_jax.nn.FNO1d`, the ``apply`` of
            ``sj.nn.functional`` of one, or (``kind="points"``) any point function ``apply(params, z)`` with
            z = concat(u: (m,), y: (d,)).
        terms: term name -> :class:`OperatorTerm` (default: ``{"data": OperatorTerm("data", points="queries")}``,
            for an FNO ``{"data": OperatorTerm("data")}``; the points entry is only read for a two-array entry).
        weights: term name -> γ_k >= 0 (default 1).
        kind: ``"deeponet"`` (batched: branch once per function), ``"fno"`` (grid to grid) or ``"points"``
            (vmapped point function); inferred from a DeepONet/FNO1d model when None.
        n_sensors: m, needed for ``kind="points"`` (the split of z into u and y).
        query_bounds: ``(lo, hi)`` (numbers or ``(d,)`` arrays): the network sees the query points mapped affinely
            to [-1, 1]^d, y' = 2 (y − lo) / (hi − lo) − 1 (data stay in physical coordinates; derivatives are taken
            in y, the chain rule included). Default None: y as given.
    """

    apply: Callable
    weights: dict
    query_lo: np.ndarray | None
    query_hi: np.ndarray | None
    term_names: tuple = eqx.field(static=True)
    term_list: tuple
    kind: str = eqx.field(static=True)
    n_sensors: int | None = eqx.field(static=True)

    __hash__ = object.__hash__  # identity, like a function

    def __eq__(self, other):
        return self is other

    def __init__(
        self,
        model: Any,
        terms: Mapping[str, OperatorTerm] | None = None,
        weights: Mapping[str, Any] | None = None,
        *,
        kind: str | None = None,
        n_sensors: int | None = None,
        query_bounds: tuple[Any, Any] | None = None,
    ):
        apply = _as_apply(model)
        inferred = _infer_kind(apply)
        if kind is None:
            if inferred is None:
                raise ValueError(
                    "OperatorResidual: kind is needed for a model that is not a DeepONet or FNO1d; allowed: "
                    f"{', '.join(KINDS)}"
                )
            kind = inferred
        if kind not in KINDS:
            raise ValueError(f"OperatorResidual: kind must be one of {', '.join(KINDS)}, got {kind!r}")
        if kind in ("deeponet", "fno") and inferred != kind:
            raise ValueError(
                f"OperatorResidual: kind={kind!r} needs a {'DeepONet' if kind == 'deeponet' else 'FNO1d'} (or its "
                f"apply from sj.nn.functional); got {type(getattr(apply, 'static', apply)).__name__}"
            )
        if kind == "points":
            if inferred == "deeponet" and n_sensors is None:
                n_sensors = apply.static.n_sensors
            if isinstance(n_sensors, bool) or not isinstance(n_sensors, (int, np.integer)) or n_sensors < 1:
                raise ValueError(f"OperatorResidual: kind='points' needs n_sensors (an int >= 1), got {n_sensors!r}")
            n_sensors = int(n_sensors)
        else:
            n_sensors = None
        if terms is None:
            terms = {"data": OperatorTerm("data", points=None if kind == "fno" else "queries")}
        terms = dict(terms)
        if not terms:
            raise ValueError("OperatorResidual: terms must be a non-empty mapping name -> OperatorTerm")
        for name, term in terms.items():
            if not isinstance(name, str) or not name:
                raise ValueError(f"OperatorResidual: term names must be non-empty strings, got {name!r}")
            if not isinstance(term, OperatorTerm):
                raise ValueError(f"OperatorResidual: terms[{name!r}] must be an OperatorTerm, got {term!r}")
            if kind == "fno" and (term.derivative is not None or term.points is not None):
                raise ValueError(
                    f"OperatorResidual: terms[{name!r}]: an FNO term compares whole output functions "
                    "(derivative and points must be None)"
                )
        weights = dict(weights or {})
        for name in weights:
            if name not in terms:
                raise ValueError(f"OperatorResidual: weights[{name!r}] names no term; the terms are {list(terms)}")
        if query_bounds is None:
            lo = hi = None
        else:
            if kind == "fno":
                raise ValueError("OperatorResidual: query_bounds apply to query points; an FNO has none")
            try:
                lo, hi = (np.atleast_1d(np.asarray(b, dtype=np.float64)) for b in query_bounds)
            except (TypeError, ValueError):
                raise ValueError(f"OperatorResidual: query_bounds must be (lo, hi) numbers or (d,) arrays, got "
                                 f"{query_bounds!r}") from None
            if lo.ndim != 1 or lo.shape != hi.shape or not np.all(np.isfinite(lo) & np.isfinite(hi) & (hi > lo)):
                raise ValueError(f"OperatorResidual: query_bounds must be finite (lo, hi) with hi > lo, got "
                                 f"{query_bounds!r}")
        self.apply = apply
        self.query_lo, self.query_hi = lo, hi
        self.weights = {k: _check_weight(weights.get(k, 1.0), f"OperatorResidual: weights[{k!r}]") for k in terms}
        self.term_names = tuple(terms)
        self.term_list = tuple(terms.values())
        self.kind = kind
        self.n_sensors = n_sensors

    # ------------------------------------------------------------------ views

    @property
    def terms_spec(self) -> dict[str, OperatorTerm]:
        """Term name -> :class:`OperatorTerm`, in row order."""
        return dict(zip(self.term_names, self.term_list))

    def model(self, params: Any) -> Any:
        """The DeepONet / FNO1d with parameters ``params`` (kinds "deeponet" and "fno")."""
        if self.kind == "points":
            raise ValueError("OperatorResidual.model: a kind='points' residual holds a point function, not a model")
        return eqx.combine(params, self.apply.static)

    # ------------------------------------------------------------------ evaluation

    def predict(self, params: Any, U: jax.Array, Y: jax.Array | None = None, derivative: int | None = None):
        """G_θ(U)(Y) (or ∂G_θ(U)/∂y_j at Y): DeepONet ``(B, Q)`` for ``Y: (Q, d)`` or ``(B, Q, d)``; FNO
        ``(B, c_out n)`` for ``U: (B, c_in n)`` (Y must be None)."""
        U = jnp.asarray(U)
        if self.kind == "fno":
            if Y is not None or derivative is not None:
                raise ValueError("OperatorResidual.predict: an FNO maps whole functions (Y and derivative: None)")
            return jax.vmap(self.model(params))(U)
        if Y is None:
            raise ValueError("OperatorResidual.predict: a DeepONet needs the query points Y")
        Y = jnp.asarray(Y)
        if self.kind == "deeponet":
            model = self.model(params)
            if derivative is None:
                return model.grid(U, self._map(Y))
            tangent = jnp.zeros_like(Y).at[..., derivative].set(1.0)  # e_j at every query point
            return jax.jvp(lambda y: model.grid(U, self._map(y)), (Y,), (tangent,))[1]
        # kind == "points": the point function vmapped over every (function, point) pair
        m = self.n_sensors

        def f(z):
            return self.apply(params, jnp.concatenate([z[:m], self._map(z[m:])]))

        if derivative is not None:
            f = operators.partial(f, self.n_sensors + derivative)
        if Y.ndim == 2:
            return jax.vmap(lambda u: jax.vmap(lambda y: f(jnp.concatenate([u, y])))(Y))(U)
        return jax.vmap(lambda u, ys: jax.vmap(lambda y: f(jnp.concatenate([u, y])))(ys))(U, Y)

    def _map(self, y: jax.Array) -> jax.Array:
        """Query points as the network sees them: 2 (y − lo) / (hi − lo) − 1, or y itself."""
        if self.query_lo is None:
            return y
        lo = jnp.asarray(self.query_lo, y.dtype)
        hi = jnp.asarray(self.query_hi, y.dtype)
        return 2.0 * (y - lo) / (hi - lo) - 1.0

    def _term_arrays(self, name: str, term: OperatorTerm, batch: Batch) -> tuple:
        """(U, Y or None, T) of a term from the batch (raises a one-line ValueError on a missing entry)."""
        if term.entry not in batch:
            raise ValueError(
                f"batch has no entry {term.entry!r} needed by term {name!r}; batch entries: {sorted(batch)}"
            )
        entry = batch[term.entry]
        arrays = tuple(entry) if isinstance(entry, (tuple, list)) else (entry,)
        if self.kind == "fno":
            if len(arrays) != 2:
                raise ValueError(f"term {name!r}: an FNO entry is (a: (B, c_in n), s: (B, c_out n)), got "
                                 f"{len(arrays)} arrays")
            return arrays[0], None, arrays[1]
        if len(arrays) == 3:
            return arrays
        if len(arrays) == 2:
            if term.points is None or term.points not in batch:
                raise ValueError(
                    f"term {name!r}: entry {term.entry!r} is (U, T) and needs shared query points Y: (Q, d) in the "
                    f"batch entry {term.points!r}; batch entries: {sorted(batch)}"
                )
            return arrays[0], batch[term.points], arrays[1]
        raise ValueError(f"term {name!r}: entry {term.entry!r} must be (U, T) with shared points or (U, Y, T), got "
                         f"{len(arrays)} arrays")

    def terms(self, params: Any, batch: Batch) -> dict[str, jax.Array]:
        """Unweighted per-term residuals ``{name: (N_k,)}``, function-major."""
        out = {}
        for name, term in zip(self.term_names, self.term_list):
            U, Y, T = self._term_arrays(name, term, batch)
            pred = self.predict(params, U, Y, term.derivative)
            out[name] = jnp.reshape(pred - T.reshape(pred.shape), (-1,))
        return out

    def scales(self, batch: Batch, weights: Mapping[str, Any] | None = None) -> dict[str, jax.Array]:
        """Per-term scale sqrt(γ_k / N_k), N_k = the number of values the term compares (shapes only)."""
        w = dict(self.weights)
        if weights is not None:
            w.update(weights)
        out = {}
        for name, term in zip(self.term_names, self.term_list):
            entry = batch[term.entry]
            target = tuple(entry)[-1] if isinstance(entry, (tuple, list)) else entry
            out[name] = jnp.sqrt(jnp.asarray(w[name], dtype=jnp.result_type(float)) / math.prod(target.shape))
        return out

    def weighted_terms(
        self, params: Any, batch: Batch, weights: Mapping[str, Any] | None = None
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """``(r: (N,), {term: unweighted residual})`` in one evaluation."""
        raw = self.terms(params, batch)
        scales = self.scales(batch, weights)
        parts = [(scales[k] * raw[k]).astype(raw[k].dtype) for k in self.term_names]
        return jnp.concatenate(parts), raw

    def __call__(self, params: Any, batch: Batch, weights: Mapping[str, Any] | None = None) -> jax.Array:
        return self.weighted_terms(params, batch, weights)[0]

    def loss(self, params: Any, batch: Batch, weights: Mapping[str, Any] | None = None) -> jax.Array:
        """½‖r‖²."""
        r = self(params, batch, weights)
        return 0.5 * jnp.sum(r**2)

    def term_mse(self, params: Any, batch: Batch) -> dict[str, jax.Array]:
        """Mean square of each unweighted term."""
        return {k: jnp.mean(v**2) for k, v in self.terms(params, batch).items()}

    def slices(self, params: Any, batch: Batch) -> dict[str, slice]:
        """Row range of each term inside r (and J, K); shapes only."""
        shapes = jax.eval_shape(lambda p, b: self.terms(p, b), params, batch)
        out, start = {}, 0
        for name in self.term_names:
            n = int(shapes[name].shape[0])
            out[name] = slice(start, start + n)
            start += n
        return out

    def check(self, params: Any, batch: Batch) -> None:
        """Shapes of every term against the model (``fit`` calls this once, before compiling).

        Raises:
            ValueError: a missing entry, arrays that do not share the function axis, a target whose shape is not
                the prediction's, or sizes the model cannot take (one line each).
        """
        for name, term in zip(self.term_names, self.term_list):
            U, Y, T = self._term_arrays(name, term, batch)
            arrays = (U, T) if Y is None or jnp.ndim(Y) == 2 else (U, Y, T)
            rows = {int(jnp.shape(a)[0]) for a in arrays}
            if len(rows) != 1:
                raise ValueError(f"term {name!r}: the arrays of entry {term.entry!r} must share the function axis "
                                 f"(axis 0), got shapes {[tuple(jnp.shape(a)) for a in arrays]}")
            try:
                pred = jax.eval_shape(lambda p, u, y, d=term.derivative: self.predict(p, u, y, d), params, U, Y)
            except ValueError as e:
                raise ValueError(f"term {name!r}: {str(e).splitlines()[0]}") from None
            if math.prod(pred.shape) != math.prod(jnp.shape(T)):
                raise ValueError(f"term {name!r}: targets of shape {tuple(jnp.shape(T))} do not match the prediction "
                                 f"{tuple(pred.shape)}")


class OperatorRelL2(eqx.Module):
    """Relative L2 error of an operator network on a held-out set: ‖G_θ(U)(Y) − S‖ / ‖S‖ over all functions and
    points (a ``fit`` metric, ``params -> ()``; a pytree, so it compiles once per structure and shapes).

    Attributes:
        residual: the :class:`OperatorResidual` whose model is evaluated.
        U, Y, S: test inputs ``(B, m)``, query points ``(Q, d)`` / ``(B, Q, d)`` (None for an FNO) and targets.
    """

    residual: OperatorResidual
    U: jax.Array
    Y: jax.Array | None
    S: jax.Array

    def __call__(self, params: Any) -> jax.Array:
        pred = self.residual.predict(params, self.U, self.Y)
        S = self.S.reshape(pred.shape)
        return jnp.linalg.norm(pred - S) / jnp.linalg.norm(S)


def _sensor_points(data: Any) -> np.ndarray:
    if data.coord_dim != 1:
        raise ValueError(
            f"operator_batch: layout 'sensors' needs a 1-D query coordinate; {data.name!r} has "
            f"coord_dim={data.coord_dim} (use layout 'queries')"
        )
    return np.asarray(data.sensors, float)[:, None]


def operator_batch(
    data: Any,
    kind: str = "deeponet",
    *,
    split: str = "train",
    layout: str = "queries",
    entry: str = "data",
    points: str = "queries",
    functions: int | None = None,
    dtype: Any = None,
) -> dict[str, Any]:
    """A batch for :class:`OperatorResidual`'s default term from a :class:`sciml_jax.datasets.OperatorDataset`.

    * ``kind="deeponet"``/``"points"``, ``layout="queries"``: ``{entry: (U: (B, m), Y: (B, Q, d), S: (B, Q))}``,
      the data set's random query points per function;
    * ``layout="sensors"``: ``{entry: (U, s_grid: (B, m)), points: sensors (m, 1)}``, every function observed at
      the m sensors (shared points: the trunk runs m times per step, whatever B);
    * ``kind="fno"``: ``{entry: (a: (B, m), s_grid: (B, m))}``.

    Args:
        data: the data set.
        kind: as in :class:`OperatorResidual`.
        split: ``"train"`` or ``"test"``.
        layout: ``"queries"`` or ``"sensors"`` (DeepONet kinds).
        entry, points: the batch entry names.
        functions: keep only the first ``functions`` functions (a subset for full-batch methods or an NTK).
        dtype: array dtype (default ``jnp.result_type(float)``).
    """
    if kind not in KINDS:
        raise ValueError(f"operator_batch: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if layout not in LAYOUTS:
        raise ValueError(f"operator_batch: layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    sp = data.split(split)
    n = sp.u.shape[0]
    if functions is None:
        functions = n
    if isinstance(functions, bool) or not isinstance(functions, (int, np.integer)) or not 1 <= functions <= n:
        raise ValueError(f"operator_batch: functions must be an int in [1, {n}], got {functions!r}")
    dtype = jnp.result_type(float) if dtype is None else dtype
    cut = slice(0, int(functions))

    def arr(a):
        return jnp.asarray(np.asarray(a)[cut], dtype=dtype)

    if kind == "fno":
        return {entry: (arr(sp.u), arr(sp.s_grid))}
    if layout == "sensors":
        return {entry: (arr(sp.u), arr(sp.s_grid)), points: jnp.asarray(_sensor_points(data), dtype=dtype)}
    return {entry: (arr(sp.u), arr(sp.y), arr(sp.s))}


def operator_rel_l2(residual: OperatorResidual, data: Any, *, split: str = "test", layout: str = "queries",
                    functions: int | None = None) -> OperatorRelL2:
    """:class:`OperatorRelL2` of ``residual``'s model on a split of ``data`` (the layouts of :func:`operator_batch`)."""
    if not isinstance(residual, OperatorResidual):
        raise ValueError(f"operator_rel_l2: residual must be an OperatorResidual, got {type(residual).__name__}")
    b = operator_batch(data, residual.kind, split=split, layout=layout, functions=functions)
    arrays = b["data"]
    if residual.kind == "fno":
        return OperatorRelL2(residual, arrays[0], None, arrays[1])
    if layout == "sensors":
        return OperatorRelL2(residual, arrays[0], b["queries"], arrays[1])
    return OperatorRelL2(residual, *arrays)
