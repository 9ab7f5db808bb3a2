"""L-BFGS: optax's implementation with its zoom line search, plus stall detection reported in the state."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from ._util import param_dtype
from ._util import memoized


class LBFGSState(NamedTuple):
    """State of :func:`lbfgs`.

    Attributes:
        inner: optax's ``lbfgs`` chain state (memory, line-search state).
        stalls: total steps whose update was (numerically) zero — the line search found no decrease.
        consecutive_stalls: current run of such steps; a PINN trained in float32 typically stalls this way near
            gradient norm ~1e-3, which is why this is surfaced rather than hidden.
        step_norm: global norm of the last update.
        linesearch_steps: line-search iterations of the last step.
        decrease_error: the zoom line search's sufficient-decrease error of the last step (> 0: it failed).
    """

    inner: Any
    stalls: jax.Array
    consecutive_stalls: jax.Array
    step_norm: jax.Array
    linesearch_steps: jax.Array
    decrease_error: jax.Array

    _log_name = "lbfgs"
    _log_fields = ("stalls", "step_norm", "linesearch_steps", "decrease_error")
    # a NamedTuple cannot annotate a ClassVar; a plain class attribute, read by ``fit`` (float32 warning)
    high_accuracy = True

    def next_value_and_grad(self) -> tuple[jax.Array, Any, jax.Array]:
        """See :func:`linesearch_value_and_grad`."""
        return linesearch_value_and_grad(self.inner)


def linesearch_value_and_grad(inner_state: Any) -> tuple[jax.Array, Any, jax.Array]:
    """``(value, grad, valid)`` that the zoom line search computed at the parameters its last step returned.

    The accepted trial point of the line search is θ + update, exactly the parameters ``fit`` steps to, so the
    next step can start from this value and gradient instead of evaluating them again (one value-and-gradient
    evaluation per iteration saved; scipy's L-BFGS-B reuses them the same way). ``valid`` is false before the first
    step (optax initialises the value to inf). ``fit`` uses it only when this optimizer is the whole transform (not
    followed by other transforms in a chain) and the batch has not changed since.
    """
    value = optax.tree_utils.tree_get(inner_state, "value")
    grad = optax.tree_utils.tree_get(inner_state, "grad")
    return value, grad, jnp.isfinite(value)


def zoom_linesearch(max_linesearch_steps: int, max_learning_rate: float | None):
    """optax's zoom (strong Wolfe) line search, starting every search at the quasi-Newton step 1.

    optax's default initial guess "keep" restarts from the previous step size, which destroys the superlinear
    convergence of quasi-Newton methods.
    """
    return optax.scale_by_zoom_linesearch(
        max_linesearch_steps=max_linesearch_steps,
        max_learning_rate=max_learning_rate,
        initial_guess_strategy="one",
        verbose=False,
    )


def check_linesearch_options(max_linesearch_steps: Any, max_learning_rate: Any, stall_rtol: Any) -> None:
    """Boundary validation shared by the line-searched quasi-Newton methods."""
    if isinstance(max_linesearch_steps, bool) or not isinstance(max_linesearch_steps, int) or max_linesearch_steps < 1:
        raise ValueError(f"max_linesearch_steps: expected a positive integer, got {max_linesearch_steps!r}")
    if max_learning_rate is not None and not max_learning_rate > 0:
        raise ValueError(f"max_learning_rate: expected a number > 0 or None, got {max_learning_rate!r}")
    if not stall_rtol >= 0:
        raise ValueError(f"stall_rtol: expected >= 0, got {stall_rtol!r}")


def final_types(tree: Any) -> Any:
    """Make every leaf strongly typed: optax's line-search info starts weak-typed and comes back strong-typed, so a
    jitted step would see two state signatures (a recompilation)."""
    return jax.tree.map(lambda x: jax.lax.convert_element_type(x, x.dtype), tree)


def linesearch_step(inner, inner_state, updates, params, value, grad, value_fn, stall_rtol, dtype):
    """One update of a chain ending in optax's zoom line search, with the diagnostics the states record.

    Returns (updates, inner_state, step_norm, stalled, linesearch_steps, decrease_error).
    """
    # optax's zoom line search passes every extra keyword on to value_fn and rejects the ones it does not take;
    # quasi-Newton methods need none of them (residual_fn, jacobian_fn, ...), so value_fn only ever sees θ.
    fn = None if value_fn is None else (lambda p: value_fn(p))
    new_updates, inner_state = inner.update(updates, inner_state, params, value=value, grad=grad, value_fn=fn)
    norm = optax.tree.norm(new_updates)
    ref = optax.tree.norm(params) if params is not None else jnp.ones((), norm.dtype)
    stalled = norm <= stall_rtol * ref
    info = optax.tree_utils.tree_get(inner_state, "info")
    zero = jnp.zeros((), jnp.int32)
    ls_steps = jnp.asarray(info.num_linesearch_steps, jnp.int32) if info is not None else zero
    dec_err = jnp.asarray(info.decrease_error if info is not None else 0.0, dtype)
    return new_updates, inner_state, norm.astype(dtype), stalled, ls_steps, dec_err


@memoized
def lbfgs(
    memory_size: int = 10,
    max_linesearch_steps: int = 30,
    max_learning_rate: float | None = None,
    stall_rtol: float = 0.0,
) -> optax.GradientTransformationExtraArgs:
    """Limited-memory BFGS with a zoom (strong Wolfe) line search, float64-clean.

    Two-loop recursion over the last ``memory_size`` pairs (s_k = θ_{k+1} - θ_k, y_k = g_{k+1} - g_k) gives the
    direction d = -H_k g; the zoom line search picks a step satisfying the strong Wolfe conditions. The optimizer
    itself is optax's (``optax.lbfgs``); this wrapper records line-search diagnostics and stalls in the state.

    A stall is a step with ‖Δθ‖ <= stall_rtol · ‖θ‖ (default: exactly zero) — the line search returned no step.

    Must receive the extra arguments ``value``, ``grad`` and ``value_fn`` in ``update`` (``sciml_jax.train.fit``
    passes them).

    Args:
        memory_size: number of curvature pairs kept (P × memory_size floats of memory).
        max_linesearch_steps: maximum zoom line-search iterations per step.
        max_learning_rate: optional cap on the line-search step.
        stall_rtol: relative update size below which a step counts as a stall.

    Extra arguments other than ``value``, ``grad`` and ``value_fn`` are accepted and ignored.
    """
    if isinstance(memory_size, bool) or not isinstance(memory_size, int) or memory_size < 1:
        raise ValueError(f"memory_size: expected a positive integer, got {memory_size!r}")
    check_linesearch_options(max_linesearch_steps, max_learning_rate, stall_rtol)
    inner = optax.lbfgs(memory_size=memory_size, linesearch=zoom_linesearch(max_linesearch_steps, max_learning_rate))

    def init(params):
        dtype = param_dtype(params)
        zero = jnp.zeros((), jnp.int32)
        return LBFGSState(final_types(inner.init(params)), zero, zero, jnp.zeros((), dtype), zero, jnp.zeros((), dtype))

    def update(updates, state, params=None, *, value=None, grad=None, value_fn=None, **extra):
        new_updates, inner_state, norm, stalled, ls_steps, dec_err = linesearch_step(
            inner, state.inner, updates, params, value, grad, value_fn, stall_rtol, state.step_norm.dtype
        )
        return new_updates, LBFGSState(
            inner_state,
            state.stalls + stalled.astype(jnp.int32),
            jnp.where(stalled, state.consecutive_stalls + 1, 0).astype(jnp.int32),
            norm,
            ls_steps,
            dec_err,
        )

    return optax.GradientTransformationExtraArgs(init, update)
