"""Laplacian (several exact algorithms) and biharmonic operator.

All paths compute the same quantity, ``sum_{j in dims} d^2 f / dx_j^2``, exactly up to rounding; they differ in
cost. With ``k = len(dims)`` and ``C`` the cost of one evaluation of ``f``:

* ``"hessian"``: trace of ``jax.hessian`` (forward over reverse, builds the ``(k, k)`` matrix): about ``k`` HVPs.
* ``"jacfwd"``:  trace of ``jax.jacfwd(jax.jacrev(f))``: the same algorithm spelled explicitly.
* ``"hvp"``:     one ``jax.linearize`` of the gradient, then a ``lax.fori_loop`` over the unit vectors summing
  ``e_j^T H e_j``: the same flops as ``"hessian"`` but only O(1) Hessian-vector products live at once (memory lean,
  slower on small problems because the loop is sequential).
* ``"forward"``: the forward Laplacian of Li et al. (2023), via ``folx.forward_laplacian``: one forward pass that
  carries ``(value, Jacobian, Laplacian)`` through every operation, ``O(k C)`` with a small constant and no reverse
  pass; the fastest path at every dimension we measured, d = 1 to 100 (see ``benchmarks/laplacian.py``).
* ``"auto"``:    picks one of the above from ``k`` (see ``auto_method``).

Restriction to ``dims`` composes ``f`` with the exact embedding ``z -> x.at[dims].set(z)`` and differentiates with
respect to ``z: (k,)``, so every path works on a ``k``-dimensional problem (e.g. the spatial Laplacian of a
space-time function never touches the time direction).

Taylor mode (``jax.experimental.jet``, one second-order jet per unit vector) was also measured: it was slower than
``"hessian"`` at every dimension tried, and ``jet`` has no rules for some common primitives (scatter,
reduce_prod) and ignores ``custom_jvp`` rules, so it is not offered; ``benchmarks/laplacian.py`` still times it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import folx
import jax
import jax.numpy as jnp

from . import _validation as _v

LAPLACIAN_METHODS: tuple[str, ...] = ("auto", "forward", "jacfwd", "hessian", "hvp")
"""Names accepted by ``laplacian(..., method=...)``."""

# folx sparsity threshold. 0 keeps the Jacobian dense. A positive value (folx suggests ~0.6) lets folx track which
# input coordinates each intermediate depends on, which pays off for sums of per-coordinate terms; an MLP's first
# dense layer mixes all inputs, and on the benchmark MLP (d = 2, 10, 100; value and parameter gradient) sparse mode
# (0.6) was within noise of dense mode. Sparse mode also evaluates input-independent operations eagerly at trace
# time, one more way to fail, so we keep the dense mode.
_FOLX_SPARSITY = 0


def auto_method(k: int) -> str:
    """The Laplacian path ``method="auto"`` uses for ``k`` differentiated coordinates.

    Always ``"forward"``: on ``benchmarks/laplacian.py`` (tanh MLP, width 64, depth 4, float64, 2-core CPU) the
    folx forward Laplacian was the fastest exact path at every dimension tried (d = 1, 2, 10, 100), both for the
    Laplacian itself and for the parameter gradient of a Laplacian loss; its margin grows with ``k``. The
    function takes ``k`` so that the rule can become dimension dependent without changing callers.
    """
    del k
    return "forward"


def _trace_last2(a: jax.Array) -> jax.Array:
    return jnp.trace(a, axis1=-2, axis2=-1)


# Each path maps (g, y) -> sum_j d^2 g / dy_j^2 (y) for g: (k,) -> out, the function restricted to dims.


def _lap_hessian(g: Callable, y: jax.Array) -> jax.Array:
    return _trace_last2(jax.hessian(g)(y))


def _lap_jacfwd(g: Callable, y: jax.Array) -> jax.Array:
    return _trace_last2(jax.jacfwd(jax.jacrev(g))(y))


def _lap_hvp(g: Callable, y: jax.Array) -> jax.Array:
    k = y.shape[0]
    gradient, hvp = jax.linearize(jax.jacrev(g), y)  # gradient: out + (k,); hvp: v -> H v, out + (k,)

    def body(j, acc):
        e_j = jax.nn.one_hot(j, k, dtype=y.dtype)
        return acc + jax.lax.dynamic_index_in_dim(hvp(e_j), j, axis=-1, keepdims=False)

    return jax.lax.fori_loop(0, k, body, jnp.zeros(gradient.shape[:-1], gradient.dtype))


def _lap_forward(g: Callable, y: jax.Array) -> jax.Array:
    out = folx.forward_laplacian(g, sparsity_threshold=_FOLX_SPARSITY)(y)
    if not hasattr(out, "laplacian"):
        # folx returns the plain value when g does not depend on y (a constant, or the Laplacian of a linear
        # function inside biharmonic): its Laplacian is zero
        return jnp.zeros_like(out)
    return out.laplacian


_PATHS: dict[str, Callable[[Callable, jax.Array], jax.Array]] = {
    "forward": _lap_forward,
    "jacfwd": _lap_jacfwd,
    "hessian": _lap_hessian,
    "hvp": _lap_hvp,
}


def laplacian(f: Callable, dims: Sequence[int] | None = None, method: str = "auto") -> Callable:
    """Laplacian of a point function, optionally over a subset of coordinates.

    Math: ``Delta f(x) = sum_{j in dims} d^2 f / dx_j^2 (x)``, taken componentwise for non-scalar outputs.

    Args:
        f: Point function ``(d,) -> out``; usually a scalar model ``lambda y: apply(params, y)``.
        dims: Coordinates (``None``: all ``d``), e.g. ``tuple(range(d - 1))`` for the spatial Laplacian of a
            space-time point whose last coordinate is time.
        method: One of ``LAPLACIAN_METHODS``: ``"auto"`` (default, fastest measured path for the dimension),
            ``"forward"`` (folx forward Laplacian), ``"jacfwd"``, ``"hessian"``, ``"hvp"``. All paths
            agree to rounding error (about 1e-15 relative in float64).

    Returns:
        ``x: (d,) -> out``, jit/vmap/grad/jvp compatible (also with respect to parameters ``f`` closes over).

    Raises:
        ValueError: ``f`` not callable, ``dims`` malformed or ``method`` unknown (build time); ``dims`` out of
            range or ``x`` not a 1-D floating array (trace time).
    """
    _v.check_callable(f, "f")
    dims_ = _v.check_dims(dims)
    method = _v.check_method(method, LAPLACIAN_METHODS)

    def lap_f(x):
        x = _v.check_point(x)
        g, y = _v.restrict(f, x, _v.resolve_dims(dims_, x.shape[0]))
        path = auto_method(y.shape[0]) if method == "auto" else method
        return _PATHS[path](g, y)

    return lap_f


def biharmonic(f: Callable, dims: Sequence[int] | None = None, method: str = "auto") -> Callable:
    """Biharmonic operator ``Delta^2 f = Delta(Delta f)`` over the coordinates ``dims``.

    Math: ``Delta^2 f = sum_{i, j in dims} d^4 f / dx_i^2 dx_j^2``, computed as the Laplacian of the Laplacian,
    both with ``method`` (with the default ``"auto"`` this nests two forward Laplacians, which folx supports).

    Args:
        f: Point function ``(d,) -> out``.
        dims: Coordinates (``None``: all).
        method: A Laplacian path name, see ``laplacian``.

    Returns:
        ``x: (d,) -> out``.

    Raises:
        ValueError: as for ``laplacian``.
    """
    _v.check_callable(f, "f")
    dims_ = _v.check_dims(dims)
    method = _v.check_method(method, LAPLACIAN_METHODS)
    return laplacian(laplacian(f, dims_, method), dims_, method)
