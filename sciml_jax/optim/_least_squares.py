"""Gauss-Newton, Levenberg-Marquardt and energy natural gradient (ENGD): one implementation, three policies.

All three minimise L(θ) = ½‖r(θ)‖² from the residual vector r: (N,) and its Jacobian J = ∂r/∂θ: (N, P).
They share the damped Gauss-Newton direction

    d(λ) = argmin_d ½‖r + J d‖² + ½ λ‖d‖²  =  -(JᵀJ + λI)⁻¹ Jᵀ r  =  -Jᵀ(JJᵀ + λI)⁻¹ r     (push-through identity)

computed in one of four ways (``solver``):

    "dense_param"   Cholesky of the P × P matrix JᵀJ + λI                       cost O(N P² + P³)
    "dense_sample"  Cholesky of the N × N kernel JJᵀ + λI, then d = -Jᵀα        cost O(N² P + N³)
    "cg"            conjugate gradients on (JᵀJ + λI) d = -Jᵀr with products Jv (jvp) and Jᵀw (vjp):
                    J is never formed; memory O(N + P) beyond the residual's own
    "qr"            QR of the stacked matrix [J; √λ I] (N ≥ P) or [Jᵀ; √λ I] (N < P, minimum-norm form): the
                    damped least-squares problem solved without forming JᵀJ, so the condition number is not
                    squared; cost O((N + P) · min(N, P)²)
    "lstsq"         minimum-norm least squares via SVD of J (the pseudo-inverse, λ only as Tikhonov term);
                    exact rank handling, but XLA's CPU SVD is ~50× slower than its QR at N × P = 1100 × 921
    "auto"          dense_sample if N < P else dense_param

and differ in how the step is globalised (the "search"):

    gauss_newton         fixed damping λ, step 1 (or a backtracking line search)
    levenberg_marquardt  λ adapted from the gain ratio ρ = actual / predicted decrease (Nielsen's rule); a step is
                         taken only when ρ > 0
    engd                 the Gauss-Newton/Gram direction (the energy natural gradient of Müller & Zeinhofer 2023 for
                         least-squares PINN losses) with a grid line search over the step size η

The residual arrives as the extra argument ``residual_fn`` (θ ↦ r(θ) at the current batch) of ``update``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.flatten_util
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import lineax as lx
import optax

from ._util import param_dtype

SOLVERS = ("auto", "dense_param", "dense_sample", "cg", "qr", "lstsq")


def _flat_residual(residual_fn: Callable, params: Any) -> tuple[Callable, jax.Array, Callable]:
    flat, unravel = jax.flatten_util.ravel_pytree(params)
    return (lambda v: residual_fn(unravel(v))), flat, unravel


def _dense_jacobian(f: Callable, x: jax.Array, n: int) -> jax.Array:
    """J: (N, P); forward mode when P <= N (P jvps), reverse mode otherwise (N vjps)."""
    return jax.jacfwd(f)(x) if x.shape[0] <= n else jax.jacrev(f)(x)


class _DampedSolve(NamedTuple):
    """One damped Gauss-Newton linearisation at θ, reusable for several right-hand sides (private).

    ``solve(v)`` returns -(JᵀJ + λI)⁻¹ Jᵀ v for a residual-space vector v: (N,) as a flat (P,) array; the dense
    solvers factorise once, CG runs again per call.
    """

    x: jax.Array
    r: jax.Array
    jvp: Callable
    solve: Callable
    unravel: Callable


def _damped_solver(
    residual_fn: Callable,
    params: Any,
    damping: jax.Array,
    solver: str,
    *,
    cg_rtol: float = 1e-10,
    cg_max_steps: int | None = None,
    lstsq_rcond: float | None = None,
    jacobian_fn: Callable | None = None,
) -> _DampedSolve:
    if solver not in SOLVERS:
        raise ValueError(f"solver: unknown {solver!r}; allowed: {', '.join(SOLVERS)}")
    f, x, unravel = _flat_residual(residual_fn, params)
    r, jvp_fn = jax.linearize(f, x)
    n, p = r.shape[0], x.shape[0]
    lam = jnp.asarray(damping, x.dtype)
    if solver == "auto":
        solver = "dense_sample" if n < p else "dense_param"

    if solver in ("dense_param", "dense_sample", "qr", "lstsq"):
        jac = jacobian_fn(params) if jacobian_fn is not None else _dense_jacobian(f, x, n)
        if solver == "dense_param":
            cho = jsl.cho_factor(jac.T @ jac + lam * jnp.eye(p, dtype=x.dtype), lower=True)
            solve = lambda v: -jsl.cho_solve(cho, jac.T @ v)  # noqa: E731
        elif solver == "qr":
            solve = _qr_solver(jac, lam)
        elif solver == "dense_sample":
            cho = jsl.cho_factor(jac @ jac.T + lam * jnp.eye(n, dtype=x.dtype), lower=True)
            solve = lambda v: -jac.T @ jsl.cho_solve(cho, v)  # noqa: E731
        else:
            u, sv, vt = jnp.linalg.svd(jac, full_matrices=False)
            rcond = jnp.finfo(x.dtype).eps * max(n, p) if lstsq_rcond is None else lstsq_rcond
            filt = jnp.where(sv > rcond * sv[0], sv / (sv**2 + lam), 0.0)
            solve = lambda v: -vt.T @ (filt * (u.T @ v))  # noqa: E731
        jvp_out = lambda d: jac @ d  # noqa: E731
    else:
        vjp_fn = jax.linear_transpose(jvp_fn, x)

        def normal_op(v):
            return vjp_fn(jvp_fn(v))[0] + lam * v

        op = lx.FunctionLinearOperator(normal_op, jax.ShapeDtypeStruct((p,), x.dtype), lx.positive_semidefinite_tag)
        solver_obj = lx.CG(rtol=cg_rtol, atol=0.0, max_steps=cg_max_steps if cg_max_steps else 10 * p)
        solve = lambda v: lx.linear_solve(op, -vjp_fn(v)[0], solver_obj, throw=False).value  # noqa: E731
        jvp_out = jvp_fn
    return _DampedSolve(x, r, jvp_out, solve, unravel)


def _qr_solver(jac: jax.Array, lam: jax.Array) -> Callable:
    """v ↦ argmin_d ½‖v + J d‖² + ½λ‖d‖² by QR, without forming JᵀJ or JJᵀ.

    N >= P: [J; √λ I] = QR, d = -R⁻¹ Q₁ᵀ v (Q₁: the first N rows of Q).
    N <  P: [Jᵀ; √λ I] = QR, so JJᵀ + λI = RᵀR and d = -Jᵀ(JJᵀ + λI)⁻¹ v = -Q₁ R⁻ᵀ v (Q₁: first P rows).
    """
    n, p = jac.shape
    if n >= p:
        q, rr = jnp.linalg.qr(jnp.concatenate([jac, jnp.sqrt(lam) * jnp.eye(p, dtype=jac.dtype)]))
        return lambda v: -jsl.solve_triangular(rr, q[:n].T @ v, lower=False)
    q, rr = jnp.linalg.qr(jnp.concatenate([jac.T, jnp.sqrt(lam) * jnp.eye(n, dtype=jac.dtype)]))
    return lambda v: -q[:p] @ jsl.solve_triangular(rr.T, v, lower=True)


def damped_gn_direction(
    residual_fn: Callable,
    params: Any,
    damping: jax.Array,
    solver: str = "auto",
    *,
    cg_rtol: float = 1e-10,
    cg_max_steps: int | None = None,
    lstsq_rcond: float | None = None,
    jacobian_fn: Callable | None = None,
) -> tuple[Any, jax.Array, jax.Array]:
    """Damped Gauss-Newton direction d = -(JᵀJ + λI)⁻¹ Jᵀ r.

    Args:
        residual_fn: θ ↦ r(θ), r: (N,).
        params: θ (pytree, P scalars in total).
        damping: λ >= 0 (scalar).
        solver: one of ``SOLVERS`` (see the module docstring).
        cg_rtol: relative tolerance of CG (mode "cg").
        cg_max_steps: CG iteration cap (default 10·P).
        lstsq_rcond: relative singular-value cutoff for "lstsq" (default: machine eps · max(N, P)).
        jacobian_fn: optional θ ↦ J(θ): (N, P) over the flattened parameters (``ravel_pytree`` order) for the
            dense solvers; ``sciml_jax.train.fit`` passes one assembled from per-point gradients. Without it J
            comes from ``jax.jacfwd``/``jax.jacrev`` of the whole residual vector, which cannot exploit that each
            row depends on one point (cost O(N·P²) or O(N²·P) instead of O(N·P)).

    Returns:
        (d as a pytree like params, r at params: (N,), predicted decrease L(θ) - m(d) with
        m(d) = ½‖r + J d‖²; this is > 0 unless Jᵀr = 0).
    """
    lin = _damped_solver(
        residual_fn, params, damping, solver, cg_rtol=cg_rtol, cg_max_steps=cg_max_steps,
        lstsq_rcond=lstsq_rcond, jacobian_fn=jacobian_fn,
    )
    d = lin.solve(lin.r)
    return lin.unravel(d), lin.r, _predicted_decrease(lin.r, lin.jvp(d))


def _predicted_decrease(r: jax.Array, jd: jax.Array) -> jax.Array:
    """L(θ) - m(d) = -(rᵀJd + ½‖Jd‖²) for the Gauss-Newton model m(d) = ½‖r + Jd‖²."""
    return -(jnp.vdot(r, jd) + 0.5 * jnp.vdot(jd, jd))


class LeastSquaresState(NamedTuple):
    """State of the Gauss-Newton family.

    Attributes:
        damping: current λ.
        nu: Nielsen's growth factor for λ after a rejected step.
        gain_ratio: ρ of the last step (actual / predicted decrease).
        step_size: η of the last step (ENGD's line search; 1 otherwise; 0 for a rejected step).
        accepted: number of accepted steps.
        rejected: number of rejected steps.
    """

    damping: jax.Array
    nu: jax.Array
    gain_ratio: jax.Array
    step_size: jax.Array
    accepted: jax.Array
    rejected: jax.Array

    _log_name = "lsq"
    _log_fields = ("damping", "gain_ratio", "step_size", "accepted", "rejected")


def _init_state(params: Any, damping: float) -> LeastSquaresState:
    dtype = param_dtype(params)
    z = jnp.zeros((), jnp.int32)
    return LeastSquaresState(
        jnp.asarray(damping, dtype), jnp.asarray(2.0, dtype), jnp.asarray(0.0, dtype), jnp.asarray(0.0, dtype), z, z
    )


def _scale(tree: Any, s: jax.Array) -> Any:
    """s · tree, with s = 0 giving exact zeros even where the tree holds NaN (a failed solve)."""
    return jax.tree.map(lambda x: jnp.where(s == 0, jnp.zeros_like(x), (s * x).astype(x.dtype)), tree)


def _need(residual_fn: Any, name: str) -> None:
    if residual_fn is None:
        raise ValueError(
            f"{name}.update needs the extra argument residual_fn (θ ↦ r(θ)); sciml_jax.train.fit passes it"
        )


def _check_common(solver: str, damping: float) -> None:
    if solver not in SOLVERS:
        raise ValueError(f"solver: unknown {solver!r}; allowed: {', '.join(SOLVERS)}")
    if not damping >= 0:
        raise ValueError(f"damping: expected a number >= 0, got {damping!r}")


def levenberg_marquardt(
    damping: float = 1e-3,
    solver: str = "auto",
    *,
    min_damping: float = 1e-15,
    max_damping: float = 1e15,
    cg_rtol: float = 1e-10,
    cg_max_steps: int | None = None,
    geodesic_acceleration: bool = False,
    acceleration_ratio: float = 0.75,
) -> optax.GradientTransformationExtraArgs:
    """Levenberg-Marquardt with Nielsen's damping update and optional geodesic acceleration.

    Each step solves (JᵀJ + λI) d = -Jᵀr, evaluates the gain ratio ρ = (L(θ) - L(θ+d)) / (L(θ) - m(d)) with
    m(d) = ½‖r + Jd‖², and then:
        ρ > 0 (accept): θ <- θ + d,  λ <- λ · max(1/3, 1 - (2ρ - 1)³),  ν <- 2
        ρ <= 0 (reject): θ unchanged, λ <- λ · ν,  ν <- 2ν
    (Nielsen 1999; Madsen, Nielsen & Tingleff 2004). λ is clipped to [min_damping, max_damping].
    Cost per step: one Jacobian (or CG iterations) and one extra evaluation of r.

    Geodesic acceleration (Transtrum & Sethna 2012) adds the second-order correction of the step along the
    curved model manifold: with the velocity v = d above and the directional second derivative
    r_vv = d²/dt² r(θ + t v) at t = 0 (one nested jvp, exact), the acceleration a = -(JᵀJ + λI)⁻¹ Jᵀ r_vv is
    solved with the same factorisation and the step becomes δ = v + ½a. It is accepted only when
    2‖a‖ / ‖v‖ <= ``acceleration_ratio`` (the truncation of the geodesic expansion is small) and ρ > 0, with ρ
    measured against the second-order model r + Jv + ½(Ja + r_vv). On PINN losses, whose small singular
    directions are strongly curved, this lets λ fall much further before steps are rejected.

    Args:
        damping: initial λ (absolute: the loss scale matters; the rule adapts it within a few steps).
        solver: "auto", "dense_param", "dense_sample", "cg" or "lstsq" (see module docstring).
        min_damping, max_damping: bounds of λ.
        cg_rtol, cg_max_steps: CG options for solver "cg".
        geodesic_acceleration: add the geodesic acceleration correction (one more solve with the same
            factorisation, a second-order jvp and, for "cg", a second CG run).
        acceleration_ratio: the largest accepted 2‖a‖/‖v‖ (> 0; Transtrum & Sethna suggest 0.75).
    """
    _check_common(solver, damping)
    if not acceleration_ratio > 0:
        raise ValueError(f"acceleration_ratio: expected a number > 0, got {acceleration_ratio!r}")
    if not 0 < min_damping <= max_damping:
        raise ValueError(f"min_damping/max_damping: need 0 < min <= max, got {min_damping!r}, {max_damping!r}")

    def init(params):
        return _init_state(params, damping)

    def update(updates, state: LeastSquaresState, params=None, *, residual_fn=None, jacobian_fn=None, **extra):
        _need(residual_fn, "levenberg_marquardt")
        lin = _damped_solver(
            residual_fn, params, state.damping, solver, cg_rtol=cg_rtol, cg_max_steps=cg_max_steps,
            jacobian_fn=jacobian_fn,
        )
        r = lin.r
        v = lin.solve(r)
        jv = lin.jvp(v)
        if geodesic_acceleration:
            f = lambda y: residual_fn(lin.unravel(y))  # noqa: E731
            r_vv = jax.jvp(lambda y: jax.jvp(f, (y,), (v,))[1], (lin.x,), (v,))[1]
            a = lin.solve(r_vv)
            flat_step = v + 0.5 * a
            r_model = r + jv + 0.5 * (lin.jvp(a) + r_vv)
            predicted = -0.5 * jnp.vdot(r_model - r, r_model + r)
            small = 2.0 * jnp.linalg.norm(a) <= acceleration_ratio * jnp.linalg.norm(v)
        else:
            flat_step = v
            predicted = _predicted_decrease(r, jv)
            small = jnp.asarray(True)
        d = lin.unravel(flat_step)
        r_new = residual_fn(optax.apply_updates(params, d))
        # actual decrease ½‖r‖² - ½‖r_new‖² written as -½ (r_new - r)ᵀ(r_new + r): no cancellation near a
        # non-zero-residual minimum, where both losses agree to many digits
        actual = -0.5 * jnp.vdot(r_new - r, r_new + r)
        rho = actual / predicted
        ok = jnp.isfinite(rho) & (rho > 0) & (predicted > 0) & small
        lam_acc = state.damping * jnp.maximum(1.0 / 3.0, 1.0 - (2.0 * rho - 1.0) ** 3)
        lam = jnp.where(ok, lam_acc, state.damping * state.nu)
        lam = jnp.clip(lam, min_damping, max_damping).astype(state.damping.dtype)
        nu = jnp.where(ok, 2.0, 2.0 * state.nu).astype(state.nu.dtype)
        step = _scale(d, ok.astype(state.damping.dtype))
        new_state = LeastSquaresState(
            lam,
            nu,
            jnp.where(jnp.isfinite(rho), rho, -jnp.inf).astype(state.gain_ratio.dtype),
            ok.astype(state.step_size.dtype),
            state.accepted + ok.astype(jnp.int32),
            state.rejected + (~ok).astype(jnp.int32),
        )
        return step, new_state

    return optax.GradientTransformationExtraArgs(init, update)


def _grid_search(residual_fn, params, d, value, etas):
    """Loss at θ + η d for every η in ``etas`` (one vmapped pass); returns the best η (0 if none decreases) and its loss."""

    def loss_at(eta):
        r = residual_fn(optax.apply_updates(params, _scale(d, eta)))
        v = 0.5 * jnp.vdot(r, r)
        return jnp.where(jnp.isfinite(v), v, jnp.inf)  # a non-finite trial is never chosen

    losses = jax.vmap(loss_at)(etas)
    i = jnp.argmin(losses)
    better = losses[i] < value
    return jnp.where(better, etas[i], 0.0), jnp.where(better, losses[i], value)


def _gn_with_search(name: str, damping: float, solver: str, etas: jax.Array | None, **direction_kwargs):
    """Gauss-Newton direction with fixed λ and either η = 1 (``etas=None``) or the best η of a grid."""

    def init(params):
        return _init_state(params, damping)

    def update(updates, state: LeastSquaresState, params=None, *, residual_fn=None, jacobian_fn=None, **extra):
        _need(residual_fn, name)
        d, r, predicted = damped_gn_direction(
            residual_fn, params, state.damping, solver, jacobian_fn=jacobian_fn, **direction_kwargs
        )
        value = 0.5 * jnp.vdot(r, r)
        if etas is not None:
            eta, new_value = _grid_search(residual_fn, params, d, value, etas.astype(value.dtype))
        else:
            eta = jnp.ones((), value.dtype)
            r1 = residual_fn(optax.apply_updates(params, d))
            new_value = 0.5 * jnp.vdot(r1, r1)
        rho = (value - new_value) / predicted
        ok = eta > 0
        return _scale(d, eta), state._replace(
            gain_ratio=jnp.where(jnp.isfinite(rho), rho, -jnp.inf).astype(value.dtype),
            step_size=eta.astype(value.dtype),
            accepted=state.accepted + ok.astype(jnp.int32),
            rejected=state.rejected + (~ok).astype(jnp.int32),
        )

    return optax.GradientTransformationExtraArgs(init, update)


def gauss_newton(
    damping: float = 0.0,
    solver: str = "auto",
    *,
    linesearch: bool = True,
    cg_rtol: float = 1e-10,
    cg_max_steps: int | None = None,
) -> optax.GradientTransformationExtraArgs:
    """Gauss-Newton: d = -(JᵀJ + λI)⁻¹ Jᵀ r with fixed λ, then θ <- θ + η d.

    With ``linesearch`` η is the best of a geometric grid {1, ½, ¼, …, 2⁻¹⁵} (evaluated in one batched pass); a
    grid without decrease gives η = 0. Without it η = 1. ``damping=0`` needs ``solver="lstsq"`` (or a full-rank
    J for "dense_param"/"dense_sample", else Cholesky fails); the default solver "auto" with damping 0 therefore
    uses the least-squares (pseudo-inverse) solve.
    """
    _check_common(solver, damping)
    solve = "lstsq" if (damping == 0 and solver == "auto") else solver
    etas = 0.5 ** jnp.arange(16.0) if linesearch else None
    return _gn_with_search("gauss_newton", damping, solve, etas, cg_rtol=cg_rtol, cg_max_steps=cg_max_steps)


def engd(
    damping: float = 0.0,
    solver: str = "lstsq",
    *,
    etas: tuple[float, ...] | None = None,
    rcond: float | None = None,
) -> optax.GradientTransformationExtraArgs:
    """Energy natural gradient descent (Müller & Zeinhofer 2023) for least-squares PINN losses.

    For L(θ) = ½‖r(θ)‖² the energy Gram matrix is the Gauss-Newton matrix G = JᵀJ, and the natural gradient is
    d = -G⁺ ∇L = -J⁺ r (minimum-norm least-squares solution, via SVD with relative cutoff ``rcond``; a positive
    ``damping`` adds Tikhonov regularisation). The step size η is chosen by a grid line search over ``etas``
    (default: the paper's {0.5^k, k = 0..30}), evaluated as one batched pass of loss evaluations.

    From a random initialisation the pseudo-inverse direction can be dominated by the smallest singular values of
    J, so that the line search accepts only η ~ 1e-8 for many steps (measured on the 2-D Poisson PINN);
    ``levenberg_marquardt`` (with ``geodesic_acceleration``) or a hybrid that starts with it is the robust choice.
    """
    _check_common(solver, damping)
    grid = jnp.asarray(etas if etas is not None else [0.5**k for k in range(31)])
    if grid.ndim != 1 or grid.shape[0] < 1 or bool(jnp.any(grid <= 0)):
        raise ValueError(f"etas: expected a non-empty sequence of positive step sizes, got {etas!r}")
    kwargs = {"lstsq_rcond": rcond} if solver == "lstsq" else {}
    return _gn_with_search("engd", damping, solver, grid, **kwargs)


class NewtonState(NamedTuple):
    """State of :func:`newton` (same meaning as :class:`LeastSquaresState`)."""

    damping: jax.Array
    nu: jax.Array
    gain_ratio: jax.Array
    accepted: jax.Array
    rejected: jax.Array

    _log_name = "newton"
    _log_fields = ("damping", "gain_ratio", "accepted", "rejected")


def newton(damping: float = 1e-3, *, min_damping: float = 1e-15, max_damping: float = 1e15):
    """Damped Newton for small P: d = -(H + λI)⁻¹ ∇L with the dense Hessian H (P × P) of ``value_fn``.

    λ follows the Levenberg-Marquardt gain-ratio rule on the quadratic model m(d) = L + gᵀd + ½dᵀHd; when H + λI
    is not positive definite (Cholesky gives non-finite values) the step is rejected and λ grows, which is the
    standard way to regularise an indefinite Hessian. Needs ``value_fn``.
    """
    if not damping > 0:
        raise ValueError(f"damping: expected a number > 0, got {damping!r}")

    def init(params):
        s = _init_state(params, damping)
        return NewtonState(s.damping, s.nu, s.gain_ratio, s.accepted, s.rejected)

    def update(updates, state: NewtonState, params=None, *, value_fn=None, **extra):
        if value_fn is None:
            raise ValueError("newton.update needs the extra argument value_fn; sciml_jax.train.fit passes it")
        flat, unravel = jax.flatten_util.ravel_pytree(params)
        fv = lambda v: value_fn(unravel(v))  # noqa: E731
        value, g = jax.value_and_grad(fv)(flat)
        h = jax.hessian(fv)(flat)
        a = h + state.damping * jnp.eye(flat.shape[0], dtype=flat.dtype)
        d = -jsl.cho_solve(jsl.cho_factor(a, lower=True), g)
        predicted = -(jnp.vdot(g, d) + 0.5 * jnp.vdot(d, h @ d))
        new_value = fv(flat + d)
        rho = (value - new_value) / predicted
        ok = jnp.isfinite(rho) & (rho > 0) & (predicted > 0) & jnp.all(jnp.isfinite(d))
        lam = jnp.where(ok, state.damping * jnp.maximum(1.0 / 3.0, 1.0 - (2.0 * rho - 1.0) ** 3),
                        state.damping * state.nu)
        lam = jnp.clip(lam, min_damping, max_damping).astype(state.damping.dtype)
        nu = jnp.where(ok, 2.0, 2.0 * state.nu).astype(state.nu.dtype)
        step = jnp.where(ok, d, 0.0).astype(flat.dtype)
        return unravel(step), NewtonState(
            lam,
            nu,
            jnp.where(jnp.isfinite(rho), rho, -jnp.inf).astype(state.gain_ratio.dtype),
            state.accepted + ok.astype(jnp.int32),
            state.rejected + (~ok).astype(jnp.int32),
        )

    return optax.GradientTransformationExtraArgs(init, update)
