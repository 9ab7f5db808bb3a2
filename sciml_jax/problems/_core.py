"""``Term`` and ``Problem``, and the argument checks the problem factories share."""

from __future__ import annotations

import dataclasses
import math
import operator
from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np

from .. import geometry

_EVAL_METHODS: tuple[str, ...] = ("grid",) + tuple(geometry.METHODS)


@dataclasses.dataclass(frozen=True)
class Term:
    """One residual term of a problem: a function of the model evaluated pointwise on one batch entry.

    Attributes:
        points: name of the batch entry (a point set of the problem's domain, e.g. ``"interior"``) the term is
            evaluated on.
        fn: ``fn(u, x) -> ()`` or ``(m,)``: the residual at one point ``x: (d,)`` of the model ``u: (d,) -> ()``
            at fixed parameters (``u = lambda y: apply(params, y)``). The exact solution gives ``fn(exact, x) = 0``.
            Callers vmap it over the ``(n, d)`` points of the entry.
        description: one line saying what the term enforces, e.g. ``"-u'' - f = 0"``.
    """

    points: str
    fn: Callable[[Callable[[jax.Array], jax.Array], jax.Array], jax.Array]
    description: str = ""

    def __post_init__(self):
        if not isinstance(self.points, str) or not self.points:
            raise ValueError(f"Term: points must be a non-empty batch entry name (str), got {self.points!r}")
        if not callable(self.fn):
            raise ValueError(f"Term: fn must be a callable fn(u, x) -> residual, got {self.fn!r}")
        if not isinstance(self.description, str):
            raise ValueError(f"Term: description must be a str, got {self.description!r}")


@dataclasses.dataclass(frozen=True, eq=False)
class Problem:
    """A PDE problem: domain, named residual terms, exact (or reference) solution and metadata.

    Equality and hashing are by identity (the terms are closures, which have no meaningful value equality), so a
    problem can be used as a static argument or dictionary key.

    Attributes:
        name: registry name, e.g. ``"poisson_1d"``.
        domain: a ``sciml_jax.geometry.Domain``; its ``dim`` is the length ``d`` of a point (time last).
        terms: ordered mapping term name -> :class:`Term` (``"pde"`` first, then boundary / initial terms); every
            ``term.points`` is a point set of ``domain``.
        exact: ``(d,) -> ()`` exact solution, or a reference solution for problems without a closed form (Burgers);
            jnp-traceable: jit, vmap and grad work on it. ``None`` if there is none.
        default_points: batch entry -> number of collocation points, a sensible default for training.
        order: highest derivative order in the PDE operator (2 for Poisson, 4 for biharmonic, 1 for advection).
        options: the factory's keyword arguments (validated values, defaults filled in), for reports.
        description: a few sentences: equation, domain, solution and source.
        forcing: ``(d,) -> ()`` the right-hand side f of the PDE in the form the ``"pde"`` term states it, written in
            closed form (``None`` when the equation is homogeneous); exposed so it can be checked against autodiff
            of ``exact``.
        eval_size: requested size of the evaluation grid (see :meth:`eval_points`).
        eval_method: ``"grid"`` (the domain's deterministic tensor/ring grid) or a sampling method of
            ``sciml_jax.geometry.METHODS`` (a fixed-seed quasi-random set, used in high dimension where a tensor
            grid is too coarse or too large).
    """

    name: str
    domain: geometry.Domain
    terms: Mapping[str, Term]
    exact: Callable[[jax.Array], jax.Array] | None
    default_points: Mapping[str, int]
    order: int
    options: Mapping[str, Any]
    description: str
    forcing: Callable[[jax.Array], jax.Array] | None = None
    eval_size: int = 10_000
    eval_method: str = "grid"

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"Problem: name must be a non-empty str, got {self.name!r}")
        if not isinstance(self.domain, geometry.Domain):
            raise ValueError(f"Problem {self.name!r}: domain must be a sciml_jax.geometry.Domain, got {self.domain!r}")
        sets = self.domain.point_sets
        if not isinstance(self.terms, Mapping) or not self.terms:
            raise ValueError(
                f"Problem {self.name!r}: terms must be a non-empty mapping name -> Term, got {self.terms!r}"
            )
        for key, term in self.terms.items():
            if not isinstance(term, Term):
                raise ValueError(f"Problem {self.name!r}: terms[{key!r}] must be a Term, got {term!r}")
            if term.points not in sets:
                raise ValueError(
                    f"Problem {self.name!r}: terms[{key!r}].points = {term.points!r} is not a point set of the "
                    f"domain; allowed: {', '.join(sets)}"
                )
        for fn, what in ((self.exact, "exact"), (self.forcing, "forcing")):
            if fn is not None and not callable(fn):
                raise ValueError(f"Problem {self.name!r}: {what} must be callable or None, got {fn!r}")
        for key, n in dict(self.default_points).items():
            if key not in sets:
                raise ValueError(
                    f"Problem {self.name!r}: default_points has {key!r}, not a point set of the domain; "
                    f"allowed: {', '.join(sets)}"
                )
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
                raise ValueError(f"Problem {self.name!r}: default_points[{key!r}] must be an int >= 1, got {n!r}")
        if isinstance(self.order, bool) or not isinstance(self.order, int) or self.order < 0:
            raise ValueError(f"Problem {self.name!r}: order must be an int >= 0, got {self.order!r}")
        if isinstance(self.eval_size, bool) or not isinstance(self.eval_size, int) or self.eval_size < 1:
            raise ValueError(f"Problem {self.name!r}: eval_size must be an int >= 1, got {self.eval_size!r}")
        if self.eval_method not in _EVAL_METHODS:
            raise ValueError(
                f"Problem {self.name!r}: eval_method must be one of {', '.join(_EVAL_METHODS)}, "
                f"got {self.eval_method!r}"
            )
        # Private copies: the caller's dicts cannot change the problem afterwards.
        object.__setattr__(self, "terms", dict(self.terms))
        object.__setattr__(self, "default_points", {k: int(v) for k, v in dict(self.default_points).items()})
        object.__setattr__(self, "options", dict(self.options))

    def eval_points(self) -> np.ndarray:
        """Fixed evaluation points for error metrics such as the relative L2 error.

        Deterministic: the same problem gives the same array every call. With ``eval_method == "grid"`` this is
        ``domain.grid(eval_size)`` (tensor grid including the boundary; space-time grids include t0 and t1),
        otherwise ``domain.sample("interior", eval_size, eval_method, seed=0)``.

        Returns:
            float64 numpy array ``(M, d)``; ``M`` depends only on the problem, not on the call.
        """
        if self.eval_method == "grid":
            return self.domain.grid(self.eval_size)
        return self.domain.sample("interior", self.eval_size, self.eval_method, seed=0)


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
