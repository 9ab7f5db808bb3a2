"""Empirical NTK K = JJᵀ with per-term blocks, Gauss-Newton G = JᵀJ, Hessians; dense and matrix-free."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from ._jacobian import Batch, _structured, jacobian_product, term_rows


class NTK(eqx.Module):
    """Empirical neural tangent kernel of a residual vector, with named per-term blocks.

        K = J Jᵀ: (N, N),   K_ab = J_a J_bᵀ: (N_a, N_b)   (J_a: rows of term a)

    For r = concat_k sqrt(γ_k / N_k) r_k the gradient-flow dynamics of the loss ½‖r‖² are dr/dt = -K r, i.e.
    per term dr_a/dt = -Σ_b K_ab r_b (Wang, Yu & Perdikaris 2022, "When and why PINNs fail to train", with the
    weights and 1/N_k of the mean-squared loss folded into the rows).

    Attributes:
        K: (N, N) symmetric positive semi-definite matrix.
        rows: static ``((term, start, stop), ...)`` row ranges, in row order.
        num_params: P, the number of scalar parameters (J is N × P).
    """

    K: jax.Array
    rows: tuple[tuple[str, int, int], ...] = eqx.field(static=True)
    num_params: int = eqx.field(static=True)

    @property
    def term_names(self) -> tuple[str, ...]:
        return tuple(name for name, _, _ in self.rows)

    @property
    def slices(self) -> dict[str, slice]:
        """``{term: slice}`` row ranges."""
        return {name: slice(a, b) for name, a, b in self.rows}

    @property
    def size(self) -> int:
        """N, the number of residual rows."""
        return int(self.K.shape[0])

    def block(self, a: str, b: str | None = None) -> jax.Array:
        """K_ab = J_a J_bᵀ: (N_a, N_b); ``b`` defaults to ``a`` (a diagonal block).

        Raises:
            ValueError: a term name that is not one of ``term_names``.
        """
        b = a if b is None else b
        sl = self.slices
        for name in (a, b):
            if name not in sl:
                raise ValueError(f"block: unknown term {name!r}; terms are {list(sl)}")
        return self.K[sl[a], sl[b]]

    @property
    def blocks(self) -> dict[tuple[str, str], jax.Array]:
        """All blocks ``{(a, b): K_ab}`` over ordered term pairs."""
        return {(a, b): self.block(a, b) for a in self.term_names for b in self.term_names}

    @property
    def trace(self) -> jax.Array:
        """tr(K) = ‖J‖_F²."""
        return jnp.trace(self.K)

    def block_traces(self) -> dict[str, jax.Array]:
        """``{term: tr(K_kk)}``."""
        return {name: jnp.trace(self.block(name)) for name in self.term_names}


def _rows_tuple(slices: Mapping[str, slice]) -> tuple[tuple[str, int, int], ...]:
    return tuple((name, int(s.start), int(s.stop)) for name, s in slices.items())


def ntk(
    residual: Callable,
    params: Any,
    batch: Batch,
    *,
    weights: Mapping[str, Any] | None = None,
    chunk_size: int | None = None,
    mode: str = "auto",
) -> NTK:
    """Empirical NTK K = J Jᵀ of the residual vector, with per-term blocks.

    J comes from :func:`jacobian` (per-point, chunked); K is symmetrised, (K + Kᵀ)/2, so it is exactly symmetric
    in floating point. Memory: J (N × P) and K (N × N); use :func:`ntk_matvec` when they do not fit.

    Args:
        residual: ``residual(params, batch) -> (N,)``.
        params: parameter pytree.
        batch: the residual's batch.
        weights, chunk_size, mode: as in :func:`jacobian`.

    Returns:
        An :class:`NTK` (K: (N, N); ``.block("pde", "bc")``, ``.blocks``).
    """
    K = jacobian_product("K", residual, params, batch, weights, chunk_size, mode)
    return NTK(K=K, rows=_rows_tuple(term_rows(residual, params, batch)), num_params=_num_params(params))


def _num_params(params: Any) -> int:
    return int(sum(jnp.size(x) for x in jax.tree.leaves(params)))


def _flat_residual(residual: Callable, params: Any, batch: Batch, weights: Mapping[str, Any] | None):
    """``(f, flat, w)`` with ``f(theta, batch, w) -> r: (N,)`` over the flattened parameters."""
    flat, unravel = ravel_pytree(params)
    structured = _structured(residual, batch, weights)
    if structured is not None:
        res, w = structured
        return (lambda th, b, w: res(unravel(th), b, w)), flat, w
    if weights is not None:
        raise ValueError(
            f"weights: only a sciml_jax.pinn.Residual accepts weights here; got a {type(residual).__name__}"
        )
    return (lambda th, b, w: residual(unravel(th), b)), flat, None


def ntk_matvec(
    residual: Callable, params: Any, batch: Batch, *, weights: Mapping[str, Any] | None = None
) -> Callable[[jax.Array], jax.Array]:
    """Matrix-free NTK product ``v: (N,) -> K v = J (Jᵀ v): (N,)`` without forming J or K.

    Each product is one ``jax.vjp`` (w = Jᵀ v) and one ``jax.jvp`` (J w) of the residual at θ, in one jitted
    function (compiled on the first call): memory is that of one forward/backward pass, not N × P; the forward
    pass is recomputed per product rather than stored (a stored ``jax.linearize`` would keep every intermediate of
    all N points alive between products). Works eagerly and inside ``jit`` (where the inner jit is inlined), e.g.
    ``jax.jit(lambda p: spectrum(ntk_matvec(res, p, batch), k=10, size=N))(params)``.
    """
    f, flat, w = _flat_residual(residual, params, batch, weights)

    @jax.jit
    def kv(flat, batch, w, v):
        r = lambda th: f(th, batch, w)  # noqa: E731
        _, vjp = jax.vjp(r, flat)
        return jax.jvp(r, (flat,), vjp(v))[1]

    return lambda v: kv(flat, batch, w, v)


def gn_matvec(
    residual: Callable, params: Any, batch: Batch, *, weights: Mapping[str, Any] | None = None
) -> Callable[[jax.Array], jax.Array]:
    """Matrix-free Gauss-Newton product ``v: (P,) -> G v = Jᵀ (J v): (P,)`` over the flattened parameters
    (one jvp and one vjp per product, jitted; see :func:`ntk_matvec`)."""
    f, flat, w = _flat_residual(residual, params, batch, weights)

    @jax.jit
    def gv(flat, batch, w, v):
        r = lambda th: f(th, batch, w)  # noqa: E731
        jv = jax.jvp(r, (flat,), (v,))[1]
        _, vjp = jax.vjp(r, flat)
        return vjp(jv)[0]

    return lambda v: gv(flat, batch, w, v)


def gauss_newton(
    residual: Callable,
    params: Any,
    batch: Batch,
    *,
    weights: Mapping[str, Any] | None = None,
    chunk_size: int | None = None,
    mode: str = "auto",
) -> jax.Array:
    """Dense Gauss-Newton matrix G = Jᵀ J: (P, P) over the flattened parameters (symmetrised).

    G is the Hessian of ½‖r‖² without the second-order term Σ_i r_i ∇²r_i; its nonzero eigenvalues equal those of
    the NTK K = JJᵀ.
    """
    return jacobian_product("G", residual, params, batch, weights, chunk_size, mode)


def _check_loss_fn(loss_fn: Any) -> None:
    if not callable(loss_fn):
        raise ValueError(f"loss_fn: expected a callable params -> scalar, got {type(loss_fn).__name__}")


def hessian(loss_fn: Callable[[Any], jax.Array], params: Any) -> jax.Array:
    """Dense Hessian H = ∇²L(θ): (P, P) of a scalar loss over the flattened parameters (forward over reverse).

    Memory P² and P Hessian-vector products: meant for small P (a few thousand); use :func:`hvp` otherwise.

    Args:
        loss_fn: ``params -> ()``, e.g. ``lambda p: residual.loss(p, batch)``.
        params: parameter pytree.
    """
    _check_loss_fn(loss_fn)
    flat, unravel = ravel_pytree(params)

    def dense(flat):  # jitted: eager dispatch of P Hessian-vector products is far slower than one compile
        H = jax.hessian(lambda th: loss_fn(unravel(th)))(flat)
        return 0.5 * (H + H.T)

    return jax.jit(dense)(flat)


def hvp(loss_fn: Callable[[Any], jax.Array], params: Any) -> Callable[[jax.Array], jax.Array]:
    """Matrix-free Hessian product ``v: (P,) -> H v: (P,)`` (forward-over-reverse: jvp of the gradient), jitted
    (compiled on the first call); memory of one gradient evaluation, never P × P."""
    _check_loss_fn(loss_fn)
    flat, unravel = ravel_pytree(params)
    grad = jax.grad(lambda th: loss_fn(unravel(th)))

    @jax.jit
    def hv(flat, v):
        return jax.jvp(grad, (flat,), (v,))[1]

    return lambda v: hv(flat, v)
