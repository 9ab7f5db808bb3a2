"""The weighted residual vector r(θ): the one object every loss, optimizer and analysis is derived from."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

Batch = Mapping[str, Any]


def _point_count(entry: Any) -> int:
    """Number of points in a batch entry: an array (n, d) or a tuple of arrays sharing axis 0."""
    if isinstance(entry, (tuple, list)):
        return int(entry[0].shape[0])
    return int(entry.shape[0])


@dataclasses.dataclass(frozen=True)
class Residual:
    """Weighted residual vector of a problem for a model.

    For terms k = 1..K with unweighted residuals r_k(θ) evaluated on N_k points (each point may give m_k values),
    the residual vector is

        r(θ) = concat_k sqrt(γ_k / N_k) · r_k(θ)        shape (N,),  N = Σ_k N_k m_k,

    so that the loss L(θ) = ½‖r(θ)‖² = ½ Σ_k γ_k · mean_i |r_k,i(θ)|² is a weighted sum of per-term mean squares.

    Calling ``residual(params, batch)`` returns ``r``; ``weights`` (a mapping term -> γ_k, Python floats or traced
    scalars) may be passed to override the default weights at call time, e.g. for adaptive loss weighting.

    Attributes:
        problem: the :class:`sciml_jax.problems.Problem`.
        apply: the model, ``apply(params, x) -> ()`` for one point ``x: (d,)``.
        weights: default loss weights γ_k per term name (missing terms get 1.0).
    """

    problem: Any
    apply: Callable[[Any, jax.Array], jax.Array]
    weights: Mapping[str, float]

    @property
    def term_names(self) -> tuple[str, ...]:
        return tuple(self.problem.terms)

    def terms(self, params: Any, batch: Batch) -> dict[str, jax.Array]:
        """Unweighted per-term residuals ``{name: (N_k * m_k,)}`` (flattened point-major)."""
        out = {}
        u_of = self.apply
        for name, term in self.problem.terms.items():
            if term.points not in batch:
                raise ValueError(
                    f"batch has no entry {term.points!r} needed by term {name!r}; batch entries: {sorted(batch)}"
                )
            entry = batch[term.points]
            args = tuple(entry) if isinstance(entry, (tuple, list)) else (entry,)

            def point_residual(*point_args, _fn=term.fn):
                return _fn(lambda y: u_of(params, y), *point_args)

            r_k = jax.vmap(point_residual)(*args)
            out[name] = jnp.reshape(r_k, (-1,))
        return out

    def scales(self, batch: Batch, weights: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Per-term scale sqrt(γ_k / N_k) applied to the unweighted residuals."""
        w = dict(self.weights)
        if weights is not None:
            w.update(weights)
        scales = {}
        for name, term in self.problem.terms.items():
            n_k = _point_count(batch[term.points])
            scales[name] = jnp.sqrt(jnp.asarray(w.get(name, 1.0), dtype=jnp.result_type(float)) / n_k)
        return scales

    def weighted_terms(
        self, params: Any, batch: Batch, weights: Mapping[str, Any] | None = None
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """Return ``(r, unweighted_terms)`` in one evaluation: r: (N,) and the per-term unweighted residuals."""
        raw = self.terms(params, batch)
        scales = self.scales(batch, weights)
        r = jnp.concatenate([scales[name] * raw[name] for name in self.term_names])
        return r, raw

    def __call__(self, params: Any, batch: Batch, weights: Mapping[str, Any] | None = None) -> jax.Array:
        return self.weighted_terms(params, batch, weights)[0]

    def slices(self, params: Any, batch: Batch) -> dict[str, slice]:
        """Row ranges of each term inside r (static: depends on shapes only, computed abstractly)."""
        shapes = jax.eval_shape(self.terms, params, batch)
        out, start = {}, 0
        for name in self.term_names:
            size = int(np.prod(shapes[name].shape))
            out[name] = slice(start, start + size)
            start += size
        return out

    def loss(self, params: Any, batch: Batch, weights: Mapping[str, Any] | None = None) -> jax.Array:
        """L(θ) = ½‖r(θ)‖²."""
        r = self(params, batch, weights)
        return 0.5 * jnp.sum(r**2)

    def term_mse(self, params: Any, batch: Batch) -> dict[str, jax.Array]:
        """Unweighted mean square of each term, mean_i |r_k,i|²."""
        return {name: jnp.mean(v**2) for name, v in self.terms(params, batch).items()}


def residual(problem: Any, apply: Callable, weights: Mapping[str, float] | None = None) -> Residual:
    """Build the weighted residual vector r(θ) of ``problem`` for the model ``apply``.

    Args:
        problem: a :class:`sciml_jax.problems.Problem` (domain, named residual terms, exact solution).
        apply: pure model ``apply(params, x) -> ()`` for one point ``x: (d,)``.
        weights: loss weight γ_k per term name; terms not named get 1.0. Must be finite and >= 0.

    Returns:
        A :class:`Residual`, callable as ``r = residual(params, batch)`` with ``r: (N,)``.

    Raises:
        ValueError: a weight names no term of the problem, or is negative / not finite.
    """
    weights = dict(weights or {})
    for name, value in weights.items():
        if name not in problem.terms:
            raise ValueError(f"weights: unknown term {name!r}; the problem's terms are {list(problem.terms)}")
        if not np.isfinite(value) or value < 0:
            raise ValueError(f"weights[{name!r}] = {value!r}: a loss weight must be finite and >= 0")
    return Residual(problem=problem, apply=apply, weights=weights)


def rel_l2(problem: Any, apply: Callable, points: Any = None) -> Callable[[Any], jax.Array]:
    """Relative L2 error against the exact (or reference) solution on a fixed evaluation grid.

        e(θ) = ‖u_θ(X) - u*(X)‖₂ / ‖u*(X)‖₂,   X = problem.eval_points()  (M, d)

    The exact values are computed once here (a constant of the returned function).

    Args:
        problem: problem with ``exact`` set.
        apply: model ``apply(params, x) -> ()``.
        points: optional (M, d) evaluation points replacing the problem's grid.

    Returns:
        ``params -> ()`` relative L2 error.
    """
    if problem.exact is None:
        raise ValueError(f"problem {problem.name!r} has no exact or reference solution; rel_l2 needs one")
    dtype = jnp.result_type(float)
    x = jnp.asarray(problem.eval_points() if points is None else points, dtype=dtype)
    u_star = jax.jit(jax.vmap(problem.exact))(x)
    norm = jnp.linalg.norm(u_star)

    def error(params):
        u = jax.vmap(lambda p: apply(params, p))(x)
        return jnp.linalg.norm(jnp.reshape(u, u_star.shape) - u_star) / norm

    return error
