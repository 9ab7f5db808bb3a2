"""``Term``, ``Unknown``, ``Fields`` and ``Problem``, and the argument checks the problem factories share.

A problem is *data*: an equinox Module whose structure (term functions, fields, point-set names, domain, exact
solution function) is static and whose PDE coefficients, loss weights and unknowns' initial values are array
leaves. Two problems that differ only in coefficient values have the same structure, so a compiled training step
serves both (``sciml_jax.train.fit`` keeps a cache keyed on structure and shapes).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import inspect
import math
import operator
from collections.abc import Callable, Mapping
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .. import geometry

_EVAL_METHODS: tuple[str, ...] = ("grid",) + tuple(geometry.METHODS)
TRANSFORMS: tuple[str, ...] = ("identity", "log", "softplus")


def _default_float() -> Any:
    return jnp.result_type(float)


@functools.lru_cache(maxsize=None)
def _positional_arity(fn: Callable) -> int | None:
    """Number of positional parameters of ``fn``, or None when it takes ``*args`` (or is not introspectable)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    n = 0
    for p in sig.parameters.values():
        if p.kind == p.VAR_POSITIONAL:
            return None
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty:
            n += 1
    return n


def call_with_coeffs(fn: Callable, args: tuple, coeffs: Mapping[str, Any]) -> Any:
    """``fn(*args, coeffs)`` if ``fn`` takes one positional argument more than ``args``, else ``fn(*args)``.

    This is how terms, exact solutions and forcings are called: a function that needs the problem's coefficients
    (and unknowns) declares one more parameter for them; one that does not may leave it out.
    """
    n = _positional_arity(fn)
    if n is None or n == len(args) + 1:
        return fn(*args, coeffs)
    return fn(*args)


class Fields:
    """The model as seen by a residual term: the named output fields of ``u(x)`` at fixed parameters.

    ``u(x)`` returns the model output at one point ``x: (d,)``: a scalar for a single-field problem, ``(m,)`` for
    m fields. ``u["v"]`` (or ``u.v``) is the point function of one field, ``(d,) -> ()``, to hand to the operators
    (``sj.operators.laplacian(u["v"])``). For a single field ``u["u"]`` is ``u`` itself.
    """

    __slots__ = ("_fn", "names", "__weakref__")

    def __init__(self, fn: Callable[[jax.Array], jax.Array], names: tuple[str, ...]):
        self._fn = fn
        self.names = names

    def __call__(self, x: jax.Array) -> jax.Array:
        return self._fn(x)

    def __getitem__(self, name: str) -> Callable[[jax.Array], jax.Array]:
        if name not in self.names:
            raise KeyError(f"unknown field {name!r}; the problem's fields are {list(self.names)}")
        if len(self.names) == 1:
            return self._fn
        i = self.names.index(name)
        return lambda x: self._fn(x)[i]

    def __getattr__(self, name: str) -> Callable[[jax.Array], jax.Array]:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError as e:
            raise AttributeError(str(e)) from None


class Term(eqx.Module):
    """One residual term of a problem: a function of the model evaluated pointwise on one batch entry.

    Attributes:
        points: the batch entry the term is evaluated on: a point set of the problem's domain (``"interior"``,
            ``"boundary"``, ``"boundary:left"``, ``"initial"``) or a data entry declared by the problem.
        fn: the residual at one point, ``fn(u, *point_args[, c]) -> ()`` or ``(m,)``. ``u`` is a :class:`Fields`
            (the model at fixed parameters; ``u(x)`` its output), ``point_args`` the row of the batch entry
            (``x: (d,)`` for collocation points, ``(x, n)`` with the outward normal when ``normals`` is set,
            ``(x, y)`` for observations), and ``c`` the mapping of coefficients and unknowns (leave the parameter
            out if the term needs none). The exact solution gives zero.
        description: one line saying what the term enforces, e.g. ``"-u'' - f = 0"``.
        normals: the term needs outward unit normals: its batch entry is the pair ``(x, n)``.
    """

    points: str = eqx.field(static=True)
    fn: Callable = eqx.field(static=True)
    description: str = eqx.field(static=True, default="")
    normals: bool = eqx.field(static=True, default=False)

    def __check_init__(self):
        if not isinstance(self.points, str) or not self.points:
            raise ValueError(f"Term: points must be a non-empty batch entry name (str), got {self.points!r}")
        if not callable(self.fn):
            raise ValueError(f"Term: fn must be a callable fn(u, x[, c]) -> residual, got {self.fn!r}")
        if not isinstance(self.description, str):
            raise ValueError(f"Term: description must be a str, got {self.description!r}")
        if not isinstance(self.normals, bool):
            raise ValueError(f"Term: normals must be true or false, got {self.normals!r}")

    def __call__(self, u: Fields, point_args: tuple, coeffs: Mapping[str, Any]) -> jax.Array:
        """The term's residual at one point (see ``fn``)."""
        return call_with_coeffs(self.fn, (u, *point_args), coeffs)


def _to_array(value: Any, what: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a real number or an array of real numbers, got {value!r}") from None
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what} must be finite, got {value!r}")
    return arr


class Unknown(eqx.Module):
    """An unknown coefficient, identified jointly with the network (inverse problems).

    Trained in a raw parameterisation: ``value = transform(raw)`` with ``"identity"``, ``"log"`` (value = exp(raw),
    for a positive coefficient spanning decades) or ``"softplus"`` (value = log(1 + exp(raw)), positive).

    Attributes:
        init: initial value (in the coefficient's own units), a finite real or array.
        transform: ``"identity"``, ``"log"`` or ``"softplus"``.
        true: the true value when known (for reports), else None.
    """

    init: np.ndarray
    transform: str = eqx.field(static=True, default="identity")
    true: np.ndarray | None = None

    def __init__(self, init: Any, transform: str = "identity", true: Any = None):
        if transform not in TRANSFORMS:
            raise ValueError(f"Unknown: transform must be one of {', '.join(TRANSFORMS)}, got {transform!r}")
        init = _to_array(init, "Unknown: init")
        if transform in ("log", "softplus") and np.any(init <= 0):
            raise ValueError(f"Unknown: init must be > 0 with transform {transform!r}, got {init.tolist()}")
        self.init = init
        self.transform = transform
        self.true = None if true is None else _to_array(true, "Unknown: true")

    def value(self, raw: jax.Array) -> jax.Array:
        """The coefficient from its raw parameter."""
        if self.transform == "log":
            return jnp.exp(raw)
        if self.transform == "softplus":
            return jax.nn.softplus(raw)
        return raw

    def raw(self, value: Any) -> np.ndarray:
        """The raw parameter of a coefficient value (inverse of :meth:`value`), float64 numpy."""
        v = np.asarray(value, dtype=np.float64)
        if self.transform == "log":
            return np.log(v)
        if self.transform == "softplus":
            return v + np.log(-np.expm1(-v))  # log(exp(v) - 1), stable for small and large v
        return v


class Meta:
    """Documentation attached to a problem (its options, its description).

    Compares equal to every other ``Meta`` and hashes to a constant: documentation is static pytree data that must
    never make two problems of the same structure look different to a cache of compiled steps.
    """

    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, Meta)

    def __hash__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return f"Meta({self.value!r})"


def _plain(arr: np.ndarray) -> Any:
    """A coefficient array as it is shown in options and reports: a float or a (nested) list of floats."""
    return float(arr) if arr.ndim == 0 else arr.tolist()


class Problem(eqx.Module):
    """A PDE (or data-driven) problem: domain, fields, named residual terms, coefficients, unknowns, solution.

    The structure is static (term functions, point-set names, fields, domain, the exact solution's function); the
    coefficients, the default loss weights and the unknowns' initial values are array leaves. Change them with
    :meth:`replace` (``problem.replace(coeffs={"nu": 0.02})``): the result has the same structure, so nothing
    recompiles.

    Attributes:
        name: a name for reports and the registry, e.g. ``"poisson_1d"``.
        domain: a ``sciml_jax.geometry.Domain`` (``dim`` = length d of a point, time last), or None for a purely
            data-driven problem whose terms all use data entries.
        terms: ordered mapping term name -> :class:`Term`.
        fields: names of the model's output fields, e.g. ``("u",)`` or ``("u", "v", "p")``; the model's output size
            is ``len(fields)`` (a scalar output for one field).
        coeffs: name -> float64 array: the PDE coefficients and forcing parameters, passed to every term function
            (and to ``exact``/``forcing``) as ``c``.
        unknowns: name -> :class:`Unknown`: coefficients identified jointly with the network; their current values
            join ``c`` under their names. With unknowns the parameters are ``{"net": ..., "unknowns": {...}}``
            (:meth:`init_params`).
        weights: default loss weight γ_k per term name (float64 arrays); missing terms get 1.
        data: names of batch entries holding observations ``(x, y)`` (or other arrays) rather than points of the
            domain; a term may use them as its ``points``.
        exact_fn: the exact (or reference) solution ``(x[, c]) -> ()`` (or ``(m,)`` for m fields), jnp-traceable;
            None if there is none. :attr:`exact` binds the coefficients.
        forcing_fn: the right-hand side f in the form the ``"pde"`` term states it, ``(x[, c]) -> ()``, or None.
        default_points: batch entry -> number of collocation points, a sensible default for training.
        order: highest derivative order of the PDE operator.
        meta: documentation (:class:`Meta`, never part of a compiled step's identity): the factory's options
            (:attr:`options`, merged with the current coefficient values) and the :attr:`description` (equation,
            domain, solution, source; :meth:`summary` adds the coefficient values).
        eval_size, eval_method: the evaluation set of :meth:`eval_points` (``"grid"`` or a sampling method).
        up_to_constant: fields compared with the reference only up to an additive constant (a pressure).
        hard_constraint: an output transform ``(x, y) -> u`` that satisfies some terms exactly (e.g.
            ``x (1 - x) y`` for zero Dirichlet data on [0, 1]), or None; :attr:`constrained_terms` names those terms.
            :meth:`with_hard_constraint` gives the problem without them and wraps a model accordingly.
    """

    name: str = eqx.field(static=True)
    domain: geometry.Domain | None = eqx.field(static=True)
    term_names: tuple = eqx.field(static=True)
    term_list: tuple  # the Terms, in the order of term_names (a tuple: pytree dicts would be re-sorted by key)
    fields: tuple = eqx.field(static=True)
    coeffs: dict
    unknowns: dict
    weights: dict
    data: tuple = eqx.field(static=True)
    exact_fn: Callable | None = eqx.field(static=True)
    forcing_fn: Callable | None = eqx.field(static=True)
    default_points_items: tuple = eqx.field(static=True)
    order: int = eqx.field(static=True)
    meta: Meta = eqx.field(static=True)
    eval_size: int = eqx.field(static=True)
    eval_method: str = eqx.field(static=True)
    up_to_constant: tuple = eqx.field(static=True)
    hard_constraint: Callable | None = eqx.field(static=True)
    constrained_terms: tuple = eqx.field(static=True)

    __hash__ = object.__hash__  # identity, like the functions it holds (a problem may be a dict key)

    def __eq__(self, other):
        return self is other

    def __init__(
        self,
        name: str,
        domain: geometry.Domain | None,
        terms: Mapping[str, Term],
        exact: Callable | None = None,
        default_points: Mapping[str, int] | None = None,
        order: int = 2,
        options: Mapping[str, Any] | None = None,
        description: str = "",
        forcing: Callable | None = None,
        eval_size: int = 10_000,
        eval_method: str = "grid",
        *,
        fields: tuple[str, ...] | list[str] = ("u",),
        coeffs: Mapping[str, Any] | None = None,
        unknowns: Mapping[str, Unknown] | None = None,
        weights: Mapping[str, Any] | None = None,
        data: tuple[str, ...] | list[str] = (),
        up_to_constant: tuple[str, ...] | list[str] = (),
        observations: Mapping[str, Any] | None = None,
        hard_constraint: tuple[Callable, tuple[str, ...]] | None = None,
    ):
        if not isinstance(name, str) or not name:
            raise ValueError(f"Problem: name must be a non-empty str, got {name!r}")
        owner = f"Problem {name!r}"
        if domain is not None and not isinstance(domain, geometry.Domain):
            raise ValueError(f"{owner}: domain must be a sciml_jax.geometry.Domain or None, got {domain!r}")
        fields = tuple(fields)
        if not fields or any(not isinstance(f, str) or not f.isidentifier() for f in fields) or len(set(fields)) < len(
            fields
        ):
            raise ValueError(f"{owner}: fields must be distinct identifiers, e.g. ('u', 'v', 'p'); got {fields!r}")
        observations = {str(k): _check_observation(v, f"{owner}: observations[{k!r}]")
                        for k, v in dict(observations or {}).items()}
        data = tuple(data) + tuple(k for k in observations if k not in tuple(data))
        if any(not isinstance(d, str) or not d for d in data):
            raise ValueError(f"{owner}: data must name batch entries (non-empty strings), got {data!r}")
        if not isinstance(terms, Mapping) or not terms:
            raise ValueError(f"{owner}: terms must be a non-empty mapping name -> Term, got {terms!r}")
        allowed = (point_sets(domain) if domain is not None else ()) + data
        for key, term in terms.items():
            if not isinstance(term, Term):
                raise ValueError(f"{owner}: terms[{key!r}] must be a Term, got {term!r}")
            if not _is_point_set(domain, term.points) and term.points not in data:
                raise ValueError(
                    f"{owner}: terms[{key!r}].points = {term.points!r} is not a point set of the domain nor a "
                    f"declared data entry; allowed: {', '.join(allowed) or '(none)'}"
                )
            if term.normals and term.points in data:
                raise ValueError(f"{owner}: terms[{key!r}] asks for normals on the data entry {term.points!r}")
        for fn, what in ((exact, "exact"), (forcing, "forcing")):
            if fn is not None and not callable(fn):
                raise ValueError(f"{owner}: {what} must be callable or None, got {fn!r}")
        default_points = dict(default_points or {})
        for key, n in default_points.items():
            if not _is_point_set(domain, key):
                raise ValueError(
                    f"{owner}: default_points has {key!r}, not a point set of the domain; allowed: "
                    f"{', '.join(point_sets(domain)) if domain is not None else '(none: no domain)'}"
                )
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
                raise ValueError(f"{owner}: default_points[{key!r}] must be an int >= 1, got {n!r}")
        if isinstance(order, bool) or not isinstance(order, int) or order < 0:
            raise ValueError(f"{owner}: order must be an int >= 0, got {order!r}")
        if isinstance(eval_size, bool) or not isinstance(eval_size, int) or eval_size < 1:
            raise ValueError(f"{owner}: eval_size must be an int >= 1, got {eval_size!r}")
        if eval_method not in _EVAL_METHODS:
            raise ValueError(f"{owner}: eval_method must be one of {', '.join(_EVAL_METHODS)}, got {eval_method!r}")
        if not isinstance(description, str):
            raise ValueError(f"{owner}: description must be a str, got {description!r}")
        coeffs = {str(k): _to_array(v, f"{owner}: coeffs[{k!r}]") for k, v in dict(coeffs or {}).items()}
        unknowns = dict(unknowns or {})
        for key, unk in unknowns.items():
            if not isinstance(unk, Unknown):
                raise ValueError(f"{owner}: unknowns[{key!r}] must be a sciml_jax.problems.Unknown, got {unk!r}")
            if key in coeffs:
                raise ValueError(f"{owner}: {key!r} is both a coefficient and an unknown; give it once")
        weights = dict(weights or {})
        for key, w in weights.items():
            if key not in terms:
                raise ValueError(f"{owner}: weights[{key!r}] names no term; the terms are {list(terms)}")
        weights = {k: _check_weight(w, f"{owner}: weights[{k!r}]") for k, w in weights.items()}
        up_to_constant = tuple(up_to_constant)
        for f in up_to_constant:
            if f not in fields:
                raise ValueError(f"{owner}: up_to_constant names {f!r}, not a field; the fields are {list(fields)}")
        if hard_constraint is None:
            transform, constrained = None, ()
        else:
            try:
                transform, constrained = hard_constraint
                constrained = tuple(constrained)
            except (TypeError, ValueError):
                raise ValueError(
                    f"{owner}: hard_constraint must be (transform(x, y) -> u, names of the terms it satisfies), got "
                    f"{hard_constraint!r}"
                ) from None
            if not callable(transform) or any(t not in terms for t in constrained):
                raise ValueError(
                    f"{owner}: hard_constraint needs a function transform(x, y) -> u and term names among "
                    f"{list(terms)}, got {hard_constraint!r}"
                )
        options = dict(options or {})
        self.hard_constraint = transform
        self.constrained_terms = constrained
        self.name = name
        self.domain = domain
        self.term_names = tuple(terms)
        self.term_list = tuple(terms.values())
        self.fields = fields
        self.coeffs = coeffs
        self.unknowns = unknowns
        self.weights = weights
        self.data = data
        self.exact_fn = exact
        self.forcing_fn = forcing
        self.default_points_items = tuple((str(k), int(v)) for k, v in default_points.items())
        self.order = order
        self.meta = Meta({"options": copy.deepcopy(options), "description": description,
                          "observations": observations})
        self.eval_size = eval_size
        self.eval_method = eval_method
        self.up_to_constant = up_to_constant

    # ------------------------------------------------------------------ views

    @property
    def terms(self) -> dict[str, Term]:
        """Term name -> :class:`Term`, in the problem's order (the order of the rows of r)."""
        return dict(zip(self.term_names, self.term_list))

    @property
    def default_points(self) -> dict[str, int]:
        return dict(self.default_points_items)

    @property
    def description(self) -> str:
        return self.meta.value["description"]

    @property
    def options(self) -> dict[str, Any]:
        """The factory's options, with the current value of every coefficient of the same name, for reports."""
        out = copy.deepcopy(self.meta.value["options"])
        for k, v in self.coeffs.items():  # a coefficient changed by replace() shows its current value
            if out.get(k) is not None and not np.array_equal(np.asarray(out[k], dtype=np.float64), v):
                out[k] = _plain(v)
        return out

    @property
    def out_size(self) -> int:
        """Number of model outputs: ``len(fields)``."""
        return len(self.fields)

    @property
    def observations(self) -> dict[str, tuple]:
        """Default observations per data entry, ``{name: (x, y)}`` float64 numpy arrays (documentation, not
        leaves: they reach training through the batch, see :meth:`batch`)."""
        return dict(self.meta.value.get("observations", {}))

    def batch(
        self,
        counts: Mapping[str, int] | None = None,
        method: str = "sobol",
        key: Any = 0,
        observations: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A training batch for this problem: collocation points of the domain plus the observation entries.

        Point sets needed by a term with ``normals=True`` come as ``(x, n)`` pairs with outward unit normals.

        Args:
            counts: point set -> number of points (default :attr:`default_points`).
            method: sampler (``"uniform"``, ``"sobol"``, ``"halton"``, ``"lhs"``).
            key: int seed or JAX key (see ``sciml_jax.sampling.sample``).
            observations: data entry -> ``(x, y)`` arrays replacing the problem's default observations.

        Returns:
            dict entry -> array ``(n, d)`` or tuple of arrays, in JAX's default float dtype.
        """
        from .. import sampling  # noqa: PLC0415 - the sampler is only needed here

        counts = dict(self.default_points if counts is None else counts)
        out: dict[str, Any] = {}
        if counts:
            if self.domain is None:
                raise ValueError(f"problem {self.name!r} has no domain: it takes no collocation counts {counts}")
            need = {t.points for t in self.terms.values() if t.normals}
            out.update(sampling.sample(self.domain, counts, method, key, normals=tuple(n for n in counts if n in need)))
        obs = self.observations
        obs.update({k: _check_observation(v, f"observations[{k!r}]") for k, v in dict(observations or {}).items()})
        dtype = _default_float()
        for name in self.data:
            if name in obs:
                out[name] = tuple(jnp.asarray(a, dtype=dtype) for a in obs[name])
        missing = [t.points for t in self.terms.values() if t.points not in out]
        if missing:
            raise ValueError(
                f"problem {self.name!r}: no points or observations for {sorted(set(missing))}; give counts for point "
                f"sets and observations for data entries"
            )
        return out

    def coefficient_values(self, unknown_values: Mapping[str, Any] | None = None, dtype: Any = None) -> dict:
        """The mapping ``c`` handed to terms: coefficients cast to ``dtype`` (default JAX's float) and unknowns.

        Without ``unknown_values`` the unknowns' initial values are used.
        """
        dtype = _default_float() if dtype is None else dtype
        c = {k: jnp.asarray(v, dtype=dtype) for k, v in self.coeffs.items()}
        for k, unk in self.unknowns.items():
            v = unk.init if unknown_values is None else unknown_values[k]
            c[k] = jnp.asarray(v, dtype=dtype)
        return c

    @property
    def exact(self) -> Callable[[jax.Array], jax.Array] | None:
        """The exact (or reference) solution as a point function ``(d,) -> ()`` or ``(m,)``, coefficients bound
        (unknowns at their true values where given, else their initial values)."""
        if self.exact_fn is None:
            return None
        fn = self.exact_fn
        c_np = dict(self.coeffs)
        c_np.update({k: (u.true if u.true is not None else u.init) for k, u in self.unknowns.items()})

        def exact(x):
            c = {k: jnp.asarray(v, dtype=x.dtype) for k, v in c_np.items()}
            return call_with_coeffs(fn, (x,), c)

        return exact

    @property
    def forcing(self) -> Callable[[jax.Array], jax.Array] | None:
        """The forcing f as a point function, coefficients bound (see :attr:`exact`)."""
        if self.forcing_fn is None:
            return None
        fn, c_np = self.forcing_fn, dict(self.coeffs)

        def forcing(x):
            return call_with_coeffs(fn, (x,), {k: jnp.asarray(v, dtype=x.dtype) for k, v in c_np.items()})

        return forcing

    def summary(self) -> str:
        """The description followed by the coefficient values (and the unknowns)."""
        parts = [self.description.strip()]
        if self.coeffs:
            parts.append("Coefficients: " + ", ".join(f"{k} = {_fmt(v)}" for k, v in self.coeffs.items()) + ".")
        if self.unknowns:
            items = []
            for k, u in self.unknowns.items():
                true = "" if u.true is None else f", true {_fmt(u.true)}"
                items.append(f"{k} (initial {_fmt(u.init)}{true}, {u.transform})")
            parts.append("Unknowns: " + ", ".join(items) + ".")
        return " ".join(p for p in parts if p)

    def residual_at(self, name: str, u: Callable[[jax.Array], jax.Array], *point_args: jax.Array) -> jax.Array:
        """Term ``name`` at one point for the point function ``u`` (e.g. :attr:`exact`), coefficients bound.

        Unknowns take their true values where given (else their initial values). ``point_args`` is the row of the
        term's batch entry: ``x``, or ``(x, n)``, ``(x, y)``.
        """
        if name not in self.terms:
            raise ValueError(f"term: {name!r} is not a term of {self.name!r}; the terms are {list(self.terms)}")
        dtype = point_args[0].dtype if point_args else None
        c = self.coefficient_values({k: (v.true if v.true is not None else v.init) for k, v in self.unknowns.items()},
                                    dtype=dtype)
        return self.terms[name](Fields(u, self.fields), point_args, c)

    # ------------------------------------------------------------------ changes (same structure)

    def replace(self, *, coeffs: Mapping[str, Any] | None = None, weights: Mapping[str, Any] | None = None) -> "Problem":
        """A copy with some coefficient values or default loss weights changed (same structure: no recompilation).

        Raises:
            ValueError: an unknown coefficient or term name, a non-finite value, or a coefficient whose shape
                would change.
        """
        new_c = dict(self.coeffs)
        for k, v in dict(coeffs or {}).items():
            if k not in self.coeffs:
                raise ValueError(f"coeffs: {self.name!r} has no coefficient {k!r}; it has {list(self.coeffs)}")
            arr = _to_array(v, f"coeffs[{k!r}]")
            if arr.shape != self.coeffs[k].shape:
                raise ValueError(
                    f"coeffs[{k!r}]: shape {arr.shape} differs from the problem's {self.coeffs[k].shape}"
                )
            new_c[k] = arr
        new_w = dict(self.weights)
        for k, v in dict(weights or {}).items():
            if k not in self.terms:
                raise ValueError(f"weights: {self.name!r} has no term {k!r}; the terms are {list(self.terms)}")
            new_w[k] = _check_weight(v, f"weights[{k!r}]")
        out = eqx.tree_at(lambda p: p.coeffs, self, new_c)
        return eqx.tree_at(lambda p: p.weights, out, new_w)

    def without_terms(self, names: tuple[str, ...] | list[str]) -> "Problem":
        """The same problem without the named terms (e.g. boundary terms a hard constraint satisfies exactly)."""
        names = tuple(names)
        unknown = [n for n in names if n not in self.terms]
        if unknown:
            raise ValueError(f"terms: {unknown} are not terms of {self.name!r}; the terms are {list(self.terms)}")
        keep = {k: t for k, t in self.terms.items() if k not in names}
        if not keep:
            raise ValueError(f"terms: removing {list(names)} leaves problem {self.name!r} with no term")
        return self._copy(
            term_names=tuple(keep), term_list=tuple(keep.values()),
            weights={k: w for k, w in self.weights.items() if k in keep},
            constrained_terms=tuple(t for t in self.constrained_terms if t in keep),
        )

    def _copy(self, **changes: Any) -> "Problem":
        """A copy with some fields replaced (static fields included), bypassing __init__'s argument parsing."""
        out = object.__new__(type(self))
        for f in dataclasses.fields(self):
            object.__setattr__(out, f.name, changes.pop(f.name, getattr(self, f.name)))
        if changes:
            raise TypeError(f"Problem has no fields {sorted(changes)}")
        return out

    def with_hard_constraint(self, model: Any) -> tuple["Problem", Any]:
        """``(problem without the constrained terms, model wrapped in the output transform)``.

        Raises:
            ValueError: the problem defines no hard constraint.
        """
        if self.hard_constraint is None:
            raise ValueError(f"problem {self.name!r} defines no hard constraint (hard_constraint=None)")
        from ..nn import OutputTransform  # noqa: PLC0415 - nn is below problems only for this wrapper

        return self.without_terms(self.constrained_terms), OutputTransform(model, self.hard_constraint)

    # ------------------------------------------------------------------ parameters with unknowns

    def init_params(self, net_params: Any) -> Any:
        """The trainable parameters: ``net_params`` alone, or ``{"net": net_params, "unknowns": {name: raw}}``.

        The unknowns start at their initial values in their raw parameterisation, in JAX's default float.
        """
        if not self.unknowns:
            return net_params
        dtype = _default_float()
        raw = {k: jnp.asarray(u.raw(u.init), dtype=dtype) for k, u in self.unknowns.items()}
        return {"net": net_params, "unknowns": raw}

    def split_params(self, params: Any) -> tuple[Any, dict]:
        """``(net_params, unknown values)`` from the trainable parameters (values after the transforms)."""
        if not self.unknowns:
            return params, {}
        if not isinstance(params, Mapping) or set(params) != {"net", "unknowns"}:
            raise ValueError(
                f"params: problem {self.name!r} has unknowns {list(self.unknowns)}, so the parameters must be "
                "{'net': ..., 'unknowns': {...}} (use problem.init_params(net_params))"
            )
        raw = params["unknowns"]
        missing = [k for k in self.unknowns if k not in raw]
        if missing:
            raise ValueError(f"params['unknowns'] lacks {missing}; expected {list(self.unknowns)}")
        return params["net"], {k: u.value(raw[k]) for k, u in self.unknowns.items()}

    # ------------------------------------------------------------------ evaluation points

    def eval_points(self) -> np.ndarray:
        """Fixed evaluation points for error metrics such as the relative L2 error.

        Deterministic: the same problem gives the same array every call. With ``eval_method == "grid"`` this is
        ``domain.grid(eval_size)`` (tensor grid including the boundary; space-time grids include t0 and t1),
        otherwise ``domain.sample("interior", eval_size, eval_method, seed=0)``.

        Returns:
            float64 numpy array ``(M, d)``; ``M`` depends only on the problem, not on the call.
        """
        if self.domain is None:
            raise ValueError(f"problem {self.name!r} has no domain, hence no evaluation points")
        if self.eval_method == "grid":
            return self.domain.grid(self.eval_size)
        return self.domain.sample("interior", self.eval_size, self.eval_method, seed=0)


def _check_observation(value: Any, what: str) -> tuple:
    """Observations as a tuple of float64 arrays sharing their number of rows (x first); ValueError otherwise."""
    arrays = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    try:
        arrays = tuple(np.asarray(a, dtype=np.float64) for a in arrays)
    except (TypeError, ValueError):
        raise ValueError(f"{what}: expected arrays of real numbers, e.g. (x: (n, d), y: (n,))") from None
    shapes = [a.shape for a in arrays]
    if not arrays or any(a.ndim == 0 for a in arrays) or len({s[0] for s in shapes}) != 1:
        raise ValueError(f"{what}: every array needs the same number of rows; got shapes {shapes}")
    finite = np.logical_and.reduce([np.isfinite(a).reshape(a.shape[0], -1).all(axis=1) for a in arrays])
    bad = int(np.sum(~finite))
    if bad:
        raise ValueError(f"{what}: {bad} row(s) are not finite; clean them or load with drop_nonfinite=True")
    return arrays


def _fmt(v: np.ndarray) -> str:
    return f"{float(v):.6g}" if np.ndim(v) == 0 else str(np.round(np.asarray(v), 6).tolist())


def _check_weight(w: Any, what: str) -> np.ndarray:
    if isinstance(w, bool):
        raise ValueError(f"{what} = {w!r}: a loss weight must be a number, finite and >= 0")
    try:
        arr = np.asarray(w, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{what} = {w!r}: a loss weight must be a number, finite and >= 0") from None
    if arr.shape != () or not np.isfinite(arr) or arr < 0:
        raise ValueError(f"{what} = {w!r}: a loss weight must be a number, finite and >= 0")
    return arr


def point_sets(domain: Any) -> tuple[str, ...]:
    """Every point-set name of ``domain`` a term may use: its point sets and ``"boundary:<part>"`` for its parts."""
    if domain is None:
        return ()
    if hasattr(domain, "all_point_sets"):
        return tuple(domain.all_point_sets)
    names = tuple(domain.point_sets)
    parts = tuple(getattr(domain, "boundary_parts", ()) or ())
    return names + tuple(f"boundary:{p}" for p in parts if f"boundary:{p}" not in names)


def _is_point_set(domain: Any, name: str) -> bool:
    return domain is not None and name in point_sets(domain)


# ---------------------------------------------------------------------------------------- argument checks


def real(value: Any, name: str, owner: str, *, low: float | None = None, strict: bool = True) -> float:
    """Returns ``value`` as a finite Python float, optionally checking ``value > low`` (or ``>= low``).

    Raises:
        ValueError: naming ``owner`` and ``name``, the value received and what is allowed.
    """
    bound = "" if low is None else f" {'>' if strict else '>='} {low:g}"
    ok = not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))
    out = float(value) if ok else math.nan
    ok = ok and math.isfinite(out) and (low is None or (out > low if strict else out >= low))
    if not ok:
        raise ValueError(f"{owner}: {name} must be a finite real number{bound}, got {value!r}")
    return out


def integer(value: Any, name: str, owner: str, *, low: int) -> int:
    """Returns ``value`` as a Python int ``>= low`` (bools and non-integral floats rejected)."""
    try:
        if isinstance(value, bool):
            raise TypeError
        out = operator.index(value)
    except TypeError:
        raise ValueError(f"{owner}: {name} must be an integer >= {low}, got {value!r}") from None
    if out < low:
        raise ValueError(f"{owner}: {name} must be an integer >= {low}, got {value!r}")
    return out


def reals(value: Any, name: str, owner: str, *, low: float | None = None, length: int | None = None) -> tuple:
    """Returns a non-empty 1-D sequence of finite reals (each ``> low`` if given) as a tuple of floats."""
    what = f"a sequence of {length if length else 'one or more'} finite real numbers" + (
        f" > {low:g}" if low is not None else ""
    )
    if isinstance(value, (str, bytes, Mapping)) or np.ndim(value) != 1 or len(value) == 0:
        raise ValueError(f"{owner}: {name} must be {what}, got {value!r}")
    if length is not None and len(value) != length:
        raise ValueError(f"{owner}: {name} must be {what}, got {len(value)} values: {value!r}")
    return tuple(real(v, f"{name}[{i}]", owner, low=low) for i, v in enumerate(value))
