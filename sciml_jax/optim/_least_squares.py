"""Gauss-Newton, Levenberg-Marquardt and energy natural gradient (ENGD): one implementation, three policies.

All three minimise L(θ) = ½‖r(θ)‖² from the residual vector r: (N,) and its Jacobian J = ∂r/∂θ: (N, P).
They share the damped Gauss-Newton direction

    d(λ) = argmin_d ½‖r + J d‖² + ½ λ‖d‖²  =  -(JᵀJ + λI)⁻¹ Jᵀ r  =  -Jᵀ(JJᵀ + λI)⁻¹ r     (push-through identity)

computed in one of these ways (``solver``):

    "dense_param"   Cholesky of the P × P matrix JᵀJ + λI                       cost O(N P² + P³)
    "dense_sample"  Cholesky of the N × N kernel JJᵀ + λI, then d = -Jᵀα        cost O(N² P + N³)
    "cg"            conjugate gradients on (JᵀJ + λI) d = -Jᵀr with products Jv (jvp) and Jᵀw (vjp):
                    J is never formed; memory O(N + P) beyond the residual's own; optionally preconditioned by a
                    randomised Nyström approximation of JᵀJ (``preconditioner="nystrom"``)
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
                         least-squares PINN losses) with Tikhonov damping relative to the Gram diagonal (Moré's
                         scaling), SPRING momentum and geodesic acceleration, and a grid line search over the step
                         size η that decides the damping and always moves (retrying with more damping)

Scale-aware damping: ``levenberg_marquardt`` (by default) and ``engd`` (always) measure λ relative to
max diag(JᵀJ) = max_j ‖J e_j‖², the rule of Madsen, Nielsen & Tingleff (2004, eq. 3.14: λ₀ = τ · max_i (JᵀJ)_ii),
so the same option suits a loss of 1e-6 and one of 1e3. The dense solvers have the diagonal exactly (column
norms of J); "cg" estimates it with Hutchinson's estimator diag(G) ≈ mean_k z_k ⊙ G z_k over Rademacher probes.

Solve status: the states record the iterations of the last linear solve (CG; 0 for direct solvers) and a status
code (0: converged, 1: iteration cap reached, 2: non-finite result), taken from lineax's ``RESULTS`` instead of
being discarded, and logged per step (see ``_info.py``).

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
from ._util import memoized

SOLVERS = ("auto", "dense_param", "dense_sample", "cg", "qr", "lstsq")
PRECONDITIONERS = ("none", "nystrom", "jacobi")

# status codes of the last linear solve (states' ``solve_status``)
SOLVE_OK, SOLVE_MAX_STEPS, SOLVE_NONFINITE = 0, 1, 2


def _flat_residual(residual_fn: Callable, params: Any) -> tuple[Callable, jax.Array, Callable]:
    flat, unravel = jax.flatten_util.ravel_pytree(params)
    return (lambda v: residual_fn(unravel(v))), flat, unravel


def _dense_jacobian(f: Callable, x: jax.Array, n: int) -> jax.Array:
    """J: (N, P); forward mode when P <= N (P jvps), reverse mode otherwise (N vjps)."""
    return jax.jacfwd(f)(x) if x.shape[0] <= n else jax.jacrev(f)(x)


class _Linearisation(NamedTuple):
    """r, J and the Gram matrix of the chosen solver at θ (private; built inside a traced update).

    ``jac`` is None for "cg"; ``gram`` is JᵀJ (dense_param), JJᵀ (dense_sample) or None.
    """

    x: jax.Array
    r: jax.Array
    unravel: Callable
    jvp: Callable  # (P,) -> (N,)
    vjp: Callable  # (N,) -> (P,)
    jac: jax.Array | None
    gram: jax.Array | None
    solver: str


def _linearise(
    residual_fn: Callable, params: Any, solver: str, *, jacobian_fn: Callable | None = None, with_gram: bool = True
) -> _Linearisation:
    if solver not in SOLVERS:
        raise ValueError(f"solver: unknown {solver!r}; allowed: {', '.join(SOLVERS)}")
    f, x, unravel = _flat_residual(residual_fn, params)
    r, jvp_fn = jax.linearize(f, x)
    n, p = r.shape[0], x.shape[0]
    if solver == "auto":
        solver = "dense_sample" if n < p else "dense_param"
    if solver == "cg":
        vjp_fn = jax.linear_transpose(jvp_fn, x)
        return _Linearisation(x, r, unravel, jvp_fn, lambda w: vjp_fn(w)[0], None, None, solver)
    jac = jacobian_fn(params) if jacobian_fn is not None else _dense_jacobian(f, x, n)
    gram = None
    if with_gram:
        gram = jac.T @ jac if solver == "dense_param" else (jac @ jac.T if solver == "dense_sample" else None)
    return _Linearisation(x, r, unravel, lambda d: jac @ d, lambda w: jac.T @ w, jac, gram, solver)


def _gram_diagonal(lin: _Linearisation, probes: int = 8, seed: int = 0) -> jax.Array:
    """diag(JᵀJ): (P,), exact from J's column norms, or Hutchinson's estimate mean_k z_k ⊙ JᵀJ z_k (Rademacher z_k,
    ``probes`` jvp/vjp pairs) when J is not formed."""
    if lin.jac is not None:
        return jnp.sum(lin.jac**2, axis=0)
    p = lin.x.shape[0]
    z = jax.random.rademacher(jax.random.key(seed), (probes, p), dtype=lin.x.dtype)
    gz = jax.vmap(lambda v: lin.vjp(lin.jvp(v)))(z)
    return jnp.mean(z * gz, axis=0)


def _damping_scale(lin: _Linearisation, probes: int = 8) -> jax.Array:
    """max diag(JᵀJ) (1 when J = 0 or the estimate is not positive): the unit of the relative damping."""
    s = jnp.max(_gram_diagonal(lin, probes))
    return jnp.where(jnp.isfinite(s) & (s > 0), s, jnp.ones_like(s))


class NystromFactors(NamedTuple):
    """Randomised Nyström approximation G ≈ U diag(lam) Uᵀ of G = JᵀJ (rank ℓ).

    Attributes:
        u: (P, ℓ) orthonormal columns.
        lam: (ℓ,) eigenvalue estimates, descending, >= 0.
    """

    u: jax.Array
    lam: jax.Array


def nystrom_factors(matvec: Callable, p: int, rank: int, key: jax.Array, dtype: Any) -> NystromFactors:
    """Randomised Nyström approximation of a P × P PSD operator from ``rank`` products (Tropp, Yurtsever, Udell &
    Cevher 2017, Alg. 3, the numerically stable form with a shift ν = eps·‖Y‖_F; used as a CG preconditioner by
    Frangella, Tropp & Udell 2023 and, for PINNs, by Rathore et al. 2024, "NysNewton-CG").

        Ω: (P, ℓ) orthonormalised Gaussian;  Y = G Ω + νΩ;  C = chol(Ωᵀ Y);  B = Y C⁻ᵀ = U Σ Vᵀ;
        G ≈ U diag(max(Σ² - ν, 0)) Uᵀ

    Written by hand: no JAX library provides a matrix-free Nyström sketch.
    """
    omega, _ = jnp.linalg.qr(jax.random.normal(key, (p, rank), dtype))
    y = jax.vmap(matvec, in_axes=1, out_axes=1)(omega)
    nu = jnp.finfo(dtype).eps * jnp.linalg.norm(y)
    y = y + nu * omega
    m = omega.T @ y
    c = jnp.linalg.cholesky(0.5 * (m + m.T))
    b = jsl.solve_triangular(c, y.T, lower=True).T  # B = Y C⁻ᵀ
    u, s, _ = jnp.linalg.svd(b, full_matrices=False)
    lam = jnp.maximum(s**2 - nu, 0.0)
    ok = jnp.all(jnp.isfinite(lam)) & jnp.all(jnp.isfinite(u))
    # a failed sketch (non-finite Cholesky) degrades to no preconditioning: U = 0 gives P⁻¹ = I below
    return NystromFactors(jnp.where(ok, u, 0.0).astype(dtype), jnp.where(ok, lam, 0.0).astype(dtype))


def _nystrom_inverse(factors: NystromFactors, lam: jax.Array) -> Callable:
    """v ↦ P⁻¹v for the Nyström preconditioner of G + λI:
    P⁻¹ = (λ̂_ℓ + λ) U (Λ̂ + λI)⁻¹ Uᵀ + (I - UUᵀ)  (Frangella, Tropp & Udell 2023, eq. 5.3)."""
    u, lh = factors
    scale = (lh[-1] + lam) / (lh + lam)

    def apply(v):
        uv = u.T @ v
        return v + u @ ((scale - 1.0) * uv)

    return apply


class _Solve(NamedTuple):
    """solve(v) -> (-(JᵀJ + λI)⁻¹ Jᵀ v: (P,), CG iterations: int32, status: int32) (private)."""

    solve: Callable


def _damped_solve(
    lin: _Linearisation,
    damping: jax.Array,
    *,
    cg_rtol: float = 1e-10,
    cg_max_steps: int | None = None,
    lstsq_rcond: float | None = None,
    preconditioner: Callable | None = None,
) -> Callable:
    """v ↦ (d, cg_steps, status) with d = -(JᵀJ + λI)⁻¹ Jᵀ v. Dense solvers factorise once (reusable)."""
    x = lin.x
    n, p = lin.r.shape[0], x.shape[0]
    lam = jnp.asarray(damping, x.dtype)
    zero = jnp.zeros((), jnp.int32)

    def status_of(d):
        return jnp.where(jnp.all(jnp.isfinite(d)), SOLVE_OK, SOLVE_NONFINITE).astype(jnp.int32)

    if lin.solver == "dense_param":
        cho = jsl.cho_factor(lin.gram + lam * jnp.eye(p, dtype=x.dtype), lower=True)
        base = lambda v: -jsl.cho_solve(cho, lin.jac.T @ v)  # noqa: E731
    elif lin.solver == "dense_sample":
        cho = jsl.cho_factor(lin.gram + lam * jnp.eye(n, dtype=x.dtype), lower=True)
        base = lambda v: -lin.jac.T @ jsl.cho_solve(cho, v)  # noqa: E731
    elif lin.solver == "qr":
        base = _qr_solver(lin.jac, lam)
    elif lin.solver == "lstsq":
        u, sv, vt = jnp.linalg.svd(lin.jac, full_matrices=False)
        rcond = jnp.finfo(x.dtype).eps * max(n, p) if lstsq_rcond is None else lstsq_rcond
        filt = jnp.where(sv > rcond * sv[0], sv / (sv**2 + lam), 0.0)
        base = lambda v: -vt.T @ (filt * (u.T @ v))  # noqa: E731
    else:
        def normal_op(v):
            return lin.vjp(lin.jvp(v)) + lam * v

        shape = jax.ShapeDtypeStruct((p,), x.dtype)
        op = lx.FunctionLinearOperator(normal_op, shape, lx.positive_semidefinite_tag)
        cg = lx.CG(rtol=cg_rtol, atol=0.0, max_steps=cg_max_steps if cg_max_steps else 10 * p)
        options = {}
        if preconditioner is not None:
            options["preconditioner"] = lx.FunctionLinearOperator(preconditioner, shape, lx.positive_semidefinite_tag)

        def solve_cg(v):
            sol = lx.linear_solve(op, -lin.vjp(v), cg, options=options, throw=False)
            d = sol.value
            status = jnp.where(
                ~jnp.all(jnp.isfinite(d)),
                SOLVE_NONFINITE,
                jnp.where(sol.result == lx.RESULTS.successful, SOLVE_OK, SOLVE_MAX_STEPS),
            ).astype(jnp.int32)
            return d, jnp.asarray(sol.stats["num_steps"], jnp.int32), status

        return solve_cg

    def solve_direct(v):
        d = base(v)
        return d, zero, status_of(d)

    return solve_direct


def _qr_solver(jac: jax.Array, lam: jax.Array) -> Callable:
    """v ↦ argmin_d ½‖v + J d‖² + ½λ‖d‖², by QR, without forming JᵀJ or JJᵀ.

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
        damping: λ >= 0 (scalar, absolute).
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
    lin = _linearise(residual_fn, params, solver, jacobian_fn=jacobian_fn)
    solve = _damped_solve(lin, damping, cg_rtol=cg_rtol, cg_max_steps=cg_max_steps, lstsq_rcond=lstsq_rcond)
    d, _, _ = solve(lin.r)
    return lin.unravel(d), lin.r, _predicted_decrease(lin.r, lin.jvp(d))


def _predicted_decrease(r: jax.Array, jd: jax.Array) -> jax.Array:
    """L(θ) - m(d) = -(rᵀJd + ½‖Jd‖²) for the Gauss-Newton model m(d) = ½‖r + Jd‖²."""
    return -(jnp.vdot(r, jd) + 0.5 * jnp.vdot(jd, jd))


def _nielsen(damping, nu, rho, ok):
    """Nielsen's rule: accepted (ρ > 0) λ·max(1/3, 1 - (2ρ - 1)³), ν = 2; rejected λ·ν, ν = 2ν."""
    lam = jnp.where(ok, damping * jnp.maximum(1.0 / 3.0, 1.0 - (2.0 * rho - 1.0) ** 3), damping * nu)
    return lam, jnp.where(ok, 2.0, 2.0 * nu)


class LeastSquaresState(NamedTuple):
    """State of the Gauss-Newton family (``gauss_newton``, ``levenberg_marquardt``).

    Attributes:
        damping: current λ (absolute); negative before the first step of a scale-aware LM (set there to
            τ · max diag(JᵀJ)).
        nu: Nielsen's growth factor for λ after a rejected step.
        gain_ratio: ρ of the last step (actual / predicted decrease).
        step_size: η of the last step (1 for LM; 0 for a rejected step).
        accepted: number of accepted steps.
        rejected: number of rejected steps.
        solve_steps: CG iterations of the last linear solve (0 for direct solvers).
        solve_status: status of the last solve: 0 converged, 1 CG iteration cap reached, 2 non-finite.
        solve_failures: number of steps whose solve did not converge (status != 0).
        precond: Nyström factors of the CG preconditioner (zero-size arrays when not used).
        precond_age: steps since ``precond`` was computed.
    """

    damping: jax.Array
    nu: jax.Array
    gain_ratio: jax.Array
    step_size: jax.Array
    accepted: jax.Array
    rejected: jax.Array
    solve_steps: jax.Array
    solve_status: jax.Array
    solve_failures: jax.Array
    precond: NystromFactors
    precond_age: jax.Array

    _log_name = "lsq"
    _log_fields = ("damping", "gain_ratio", "step_size", "accepted", "rejected", "solve_steps", "solve_status",
                   "solve_failures")
    # a NamedTuple cannot annotate a ClassVar; this is a plain class attribute read by ``fit``
    high_accuracy = True


def _init_state(params: Any, damping: float, precond_rank: int = 0) -> LeastSquaresState:
    dtype = param_dtype(params)
    z = jnp.zeros((), jnp.int32)
    p = sum(x.size for x in jax.tree.leaves(params)) if precond_rank else 0
    factors = NystromFactors(jnp.zeros((p, precond_rank), dtype), jnp.zeros((precond_rank,), dtype))
    return LeastSquaresState(
        jnp.asarray(damping, dtype), jnp.asarray(2.0, dtype), jnp.asarray(0.0, dtype), jnp.asarray(0.0, dtype), z, z,
        z, z, z, factors, z,
    )


def _scale(tree: Any, s: jax.Array) -> Any:
    """s · tree, with s = 0 giving exact zeros even where the tree holds NaN (a failed solve)."""
    return jax.tree.map(lambda x: jnp.where(s == 0, jnp.zeros_like(x), (s * x).astype(x.dtype)), tree)


def _need(residual_fn: Any, name: str) -> None:
    if residual_fn is None:
        raise ValueError(
            f"{name}.update needs the extra argument residual_fn (θ ↦ r(θ)); sciml_jax.train.fit passes it"
        )


def _check_common(solver: str, damping: float | None) -> None:
    if solver not in SOLVERS:
        raise ValueError(f"solver: unknown {solver!r}; allowed: {', '.join(SOLVERS)}")
    if damping is not None and (isinstance(damping, bool) or not damping >= 0):
        raise ValueError(f"damping: expected a number >= 0, got {damping!r}")


def _positive_int(value: Any, name: str, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}: expected a positive integer{' or None' if allow_none else ''}, got {value!r}")


def _check_precond(preconditioner: str, solver: str, precond_rank: int, precond_every: int) -> None:
    if preconditioner not in PRECONDITIONERS:
        raise ValueError(f"preconditioner: unknown {preconditioner!r}; allowed: {', '.join(PRECONDITIONERS)}")
    if preconditioner != "none" and solver != "cg":
        raise ValueError(f"preconditioner={preconditioner!r} needs solver='cg' (the dense solvers are direct)")
    _positive_int(precond_rank, "precond_rank")
    _positive_int(precond_every, "precond_every")


def _status_update(state, steps, status):
    return dict(
        solve_steps=steps.astype(jnp.int32),
        solve_status=status.astype(jnp.int32),
        solve_failures=state.solve_failures + (status != SOLVE_OK).astype(jnp.int32),
    )


def _cg_preconditioner(lin, state, lam, kind, rank, every, probes):
    """(v ↦ P⁻¹v or None, new Nyström factors, new age) for the CG solve at this step."""
    if kind == "none" or lin.solver != "cg":
        return None, state.precond, state.precond_age
    if kind == "jacobi":
        diag = _gram_diagonal(lin, probes)
        inv = 1.0 / (jnp.maximum(diag, 0.0) + lam)
        return (lambda v: inv * v), state.precond, state.precond_age
    p = lin.x.shape[0]
    refresh = (state.precond_age % every == 0) | ~jnp.any(state.precond.lam > 0)

    def build(_):
        key = jax.random.fold_in(jax.random.key(0), state.accepted + state.rejected)
        return nystrom_factors(lambda v: lin.vjp(lin.jvp(v)), p, rank, key, lin.x.dtype)

    factors = jax.lax.cond(refresh, build, lambda _: state.precond, None)
    age = jnp.where(refresh, 1, state.precond_age + 1).astype(jnp.int32)
    return _nystrom_inverse(factors, lam), factors, age


@memoized
def levenberg_marquardt(
    damping: float | None = None,
    solver: str = "auto",
    *,
    relative_damping: float = 1e-3,
    min_damping: float = 1e-15,
    max_damping: float = 1e15,
    cg_rtol: float = 1e-10,
    cg_max_steps: int | None = None,
    preconditioner: str = "none",
    precond_rank: int = 50,
    precond_every: int = 20,
    hutchinson_probes: int = 8,
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

    Initial damping: ``damping`` (absolute λ₀) if given, else the scale-aware λ₀ = τ · max diag(JᵀJ) at the first
    step with τ = ``relative_damping`` (Madsen, Nielsen & Tingleff 2004, eq. 3.14: τ = 1e-6 for a good start,
    1e-3 or even 1 otherwise). For "cg" the diagonal is a Hutchinson estimate from ``hutchinson_probes`` jvp/vjp
    pairs (an overestimate of the max by sampling noise only makes λ₀ a little larger).

    Preconditioning ("cg" only): ``preconditioner="nystrom"`` applies the randomised Nyström preconditioner of
    JᵀJ + λI (rank ``precond_rank``, recomputed every ``precond_every`` steps from ``precond_rank`` jvp/vjp
    pairs; Frangella, Tropp & Udell 2023; Rathore et al. 2024); ``"jacobi"`` the inverse of a Hutchinson estimate
    of diag(JᵀJ) + λ. The state records CG's iterations and status every step.

    Geodesic acceleration (Transtrum & Sethna 2012) adds the second-order correction of the step along the
    curved model manifold: with the velocity v = d above and the directional second derivative
    r_vv = d²/dt² r(θ + t v) at t = 0 (one nested jvp, exact), the acceleration a = -(JᵀJ + λI)⁻¹ Jᵀ r_vv is
    solved with the same factorisation and the step becomes δ = v + ½a. It is accepted only when
    2‖a‖ / ‖v‖ <= ``acceleration_ratio`` (the truncation of the geodesic expansion is small) and ρ > 0, with ρ
    measured against the second-order model r + Jv + ½(Ja + r_vv). On PINN losses, whose small singular
    directions are strongly curved, this lets λ fall much further before steps are rejected.

    Args:
        damping: initial λ (absolute), or None for the scale-aware τ · max diag(JᵀJ).
        solver: "auto", "dense_param", "dense_sample", "cg", "qr" or "lstsq" (see module docstring).
        relative_damping: τ of the scale-aware initial damping (> 0).
        min_damping, max_damping: bounds of λ.
        cg_rtol, cg_max_steps: CG options for solver "cg".
        preconditioner: "none", "nystrom" or "jacobi" (solver "cg" only).
        precond_rank: sketch size ℓ of the Nyström preconditioner (P × ℓ floats in the state).
        precond_every: steps between Nyström recomputations.
        hutchinson_probes: probes of the diagonal estimate (solver "cg").
        geodesic_acceleration: add the geodesic acceleration correction (one more solve with the same
            factorisation, a second-order jvp and, for "cg", a second CG run).
        acceleration_ratio: the largest accepted 2‖a‖/‖v‖ (> 0; Transtrum & Sethna suggest 0.75).
    """
    _check_common(solver, damping)
    if not relative_damping > 0:
        raise ValueError(f"relative_damping: expected a number > 0, got {relative_damping!r}")
    if not acceleration_ratio > 0:
        raise ValueError(f"acceleration_ratio: expected a number > 0, got {acceleration_ratio!r}")
    if not 0 < min_damping <= max_damping:
        raise ValueError(f"min_damping/max_damping: need 0 < min <= max, got {min_damping!r}, {max_damping!r}")
    _positive_int(cg_max_steps, "cg_max_steps", allow_none=True)
    _positive_int(hutchinson_probes, "hutchinson_probes")
    _check_precond(preconditioner, solver, precond_rank, precond_every)
    rank = precond_rank if preconditioner == "nystrom" else 0

    def init(params):
        return _init_state(params, -1.0 if damping is None else damping, rank)

    def update(updates, state: LeastSquaresState, params=None, *, residual_fn=None, jacobian_fn=None, **extra):
        _need(residual_fn, "levenberg_marquardt")
        lin = _linearise(residual_fn, params, solver, jacobian_fn=jacobian_fn)
        lam0 = jax.lax.cond(
            state.damping < 0,
            lambda _: relative_damping * _damping_scale(lin, hutchinson_probes),
            lambda _: state.damping,
            None,
        )
        lam0 = jnp.clip(lam0, min_damping, max_damping).astype(state.damping.dtype)
        precond, factors, age = _cg_preconditioner(
            lin, state, lam0, preconditioner, precond_rank, precond_every, hutchinson_probes
        )
        solve = _damped_solve(lin, lam0, cg_rtol=cg_rtol, cg_max_steps=cg_max_steps, preconditioner=precond)
        r = lin.r
        v, cg_steps, status = solve(r)
        jv = lin.jvp(v)
        if geodesic_acceleration:
            f = lambda y: residual_fn(lin.unravel(y))  # noqa: E731
            r_vv = jax.jvp(lambda y: jax.jvp(f, (y,), (v,))[1], (lin.x,), (v,))[1]
            a, steps_a, status_a = solve(r_vv)
            cg_steps, status = cg_steps + steps_a, jnp.maximum(status, status_a)
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
        lam, nu = _nielsen(lam0, state.nu, rho, ok)
        lam = jnp.clip(lam, min_damping, max_damping).astype(state.damping.dtype)
        step = _scale(d, ok.astype(state.damping.dtype))
        new_state = state._replace(
            damping=lam,
            nu=nu.astype(state.nu.dtype),
            gain_ratio=jnp.where(jnp.isfinite(rho), rho, -jnp.inf).astype(state.gain_ratio.dtype),
            step_size=ok.astype(state.step_size.dtype),
            accepted=state.accepted + ok.astype(jnp.int32),
            rejected=state.rejected + (~ok).astype(jnp.int32),
            precond=factors,
            precond_age=age,
            **_status_update(state, cg_steps, status),
        )
        return step, new_state

    return optax.GradientTransformationExtraArgs(init, update)


def _trial_losses(residual_fn: Callable, params: Any, d: Any, etas: jax.Array) -> jax.Array:
    """½‖r(θ + η d)‖² for every η in ``etas`` (one vmapped pass); non-finite trials give +inf."""

    def loss_at(eta):
        r = residual_fn(optax.apply_updates(params, _scale(d, eta)))
        v = 0.5 * jnp.vdot(r, r)
        return jnp.where(jnp.isfinite(v), v, jnp.inf)

    return jax.vmap(loss_at)(etas)


def _gn_with_search(name: str, damping: float, solver: str, etas: jax.Array | None, **solve_kwargs):
    """Gauss-Newton direction with fixed λ and either η = 1 (``etas=None``) or the best η of a grid."""

    def init(params):
        return _init_state(params, damping)

    def update(updates, state: LeastSquaresState, params=None, *, residual_fn=None, jacobian_fn=None, **extra):
        _need(residual_fn, name)
        lin = _linearise(residual_fn, params, solver, jacobian_fn=jacobian_fn)
        flat_d, cg_steps, status = _damped_solve(lin, state.damping, **solve_kwargs)(lin.r)
        r = lin.r
        predicted = _predicted_decrease(r, lin.jvp(flat_d))
        d = lin.unravel(flat_d)
        value = 0.5 * jnp.vdot(r, r)
        if etas is not None:
            losses = _trial_losses(residual_fn, params, d, etas.astype(value.dtype))
            i = jnp.argmin(losses)
            better = losses[i] < value
            eta = jnp.where(better, etas.astype(value.dtype)[i], 0.0)
            new_value = jnp.where(better, losses[i], value)
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
            **_status_update(state, cg_steps, status),
        )

    return optax.GradientTransformationExtraArgs(init, update)


@memoized
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
    _positive_int(cg_max_steps, "cg_max_steps", allow_none=True)
    solve = "lstsq" if (damping == 0 and solver == "auto") else solver
    etas = 0.5 ** jnp.arange(16.0) if linesearch else None
    return _gn_with_search("gauss_newton", damping, solve, etas, cg_rtol=cg_rtol, cg_max_steps=cg_max_steps)


class ENGDState(NamedTuple):
    """State of :func:`engd`.

    Attributes:
        damping: relative damping μ of the next step: the Tikhonov term is λ = μ·D with D the column scaling.
        lam: μ used by the last step (after its retries).
        gain_ratio: ρ₁ of the last step: actual / model-predicted decrease of the full step η = 1.
        step_size: η taken by the last step (0: no decrease found even after the retries).
        retries: damping increases inside the last step before some η decreased the loss.
        accepted: steps that decreased the loss.
        rejected: steps that did not (θ unchanged; only at a minimum to rounding level or a broken residual).
        solve_steps, solve_status, solve_failures: as in :class:`LeastSquaresState`.
        scale: D, the running maximum of diag(JᵀJ) (Moré's scaling): (P,).
        previous: the last step taken (flat, (P,)), the momentum term's s_prev.
    """

    damping: jax.Array
    lam: jax.Array
    gain_ratio: jax.Array
    step_size: jax.Array
    retries: jax.Array
    accepted: jax.Array
    rejected: jax.Array
    solve_steps: jax.Array
    solve_status: jax.Array
    solve_failures: jax.Array
    scale: jax.Array
    previous: jax.Array

    _log_name = "engd"
    _log_fields = ("damping", "gain_ratio", "step_size", "retries", "accepted", "rejected", "solve_status")
    high_accuracy = True


def _column_scaled(lin: _Linearisation, col: jax.Array) -> _Linearisation:
    """The linearisation of J̃ = J diag(1/col) (col: (P,) > 0); solving it and dividing by col gives
    -(JᵀJ + λ diag(col²))⁻¹ Jᵀ v."""
    jac = None if lin.jac is None else lin.jac / col
    if lin.solver == "dense_param":
        gram = lin.gram / col[:, None] / col[None, :] if lin.gram is not None else jac.T @ jac
    elif lin.solver == "dense_sample":
        gram = jac @ jac.T
    else:
        gram = None
    return lin._replace(
        jvp=lambda v: lin.jvp(v / col), vjp=lambda w: lin.vjp(w) / col, jac=jac, gram=gram
    )


@memoized
def engd(
    damping: float = 1e-3,
    solver: str = "auto",
    *,
    etas: tuple[float, ...] | None = None,
    momentum: float = 0.9,
    geodesic_acceleration: bool = True,
    scaling: bool = True,
    decrease: float = 2.0,
    increase: float = 3.0,
    max_retries: int = 6,
    retry_factor: float = 10.0,
    min_damping: float = 1e-14,
    max_damping: float = 1e8,
    cg_rtol: float = 1e-10,
    cg_max_steps: int | None = None,
    hutchinson_probes: int = 8,
) -> optax.GradientTransformationExtraArgs:
    """Energy natural gradient descent (Müller & Zeinhofer, ICML 2023) with adaptive Tikhonov damping, geodesic
    acceleration and a grid line search that always moves.

    For a least-squares PINN loss L(θ) = ½‖r(θ)‖² (r: (N,), J: (N, P)) the energy Gram matrix is the Gauss-Newton
    matrix G = JᵀJ and the natural-gradient direction is d = -G⁺∇L. The paper computes it with a least-squares
    pseudo-inverse and picks η from {0.5^k, k = 0..30}; measured on its own setting that direction is dominated by
    the smallest singular values of J whenever the cutoff keeps them, and once no grid step decreases the loss
    nothing changes any more. Here:

    * direction: the damped natural gradient with momentum in the SPRING form (Goldshlager, Abrahamsen & Lin,
      J. Comput. Phys. 2024; for ENGD: Guzmán-Cordero, Dangel, Goldshlager & Zeinhofer 2025),

          v = argmin_d ½‖r + Jd‖² + ½μ ‖d - m s_prev‖²_D = m s_prev - (JᵀJ + μD)⁻¹ Jᵀ(r + m J s_prev),

      with s_prev the previous step, m = ``momentum`` (0: the plain damped natural gradient -(G + μD)⁻¹∇L) and
      D = diag of the running maximum of diag(JᵀJ) (Moré's scaling, as MINPACK's LM; ``scaling=False``:
      D = max diag(JᵀJ)·I). The damping μ is therefore relative to the Gram matrix's own scale: invariant to
      rescaling the loss and each parameter. The Tikhonov term pulls towards the decayed previous step instead of
      towards 0, so directions the current Jacobian barely sees keep their momentum; as μ → 0 the step tends to
      the Gauss-Newton step whatever m. The system is solved in the smaller space (``solver="auto"``: P × P
      Cholesky when P <= N, else the N × N kernel J̃J̃ᵀ + μI — the push-through / Woodbury form — with
      J̃ = JD^{-1/2}).
    * geodesic acceleration (Transtrum & Sethna 2012): a = -(JᵀJ + μD)⁻¹ Jᵀ r_vv with r_vv the second directional
      derivative of r along v (one nested jvp, exact; same factorisation); the step follows the curve
      θ + ηv + ½η²a, which tracks the curved model manifold where the natural-gradient direction alone overshoots.
    * line search: the loss at every η of ``etas`` (default {1, ½, …, 2⁻¹⁵}; the first must be 1), one batched
      pass; the best is taken. If none decreases the loss, μ is multiplied by ``retry_factor`` and the step is
      retried from the same linearisation without momentum (at most ``max_retries`` times): as μ grows the
      direction turns to the (scaled) gradient, so a smooth loss decreases unless θ is stationary.
    * damping update: the line search decides. η = 1 best: μ /= ``decrease`` (the model is trusted further);
      a shorter step: μ *= ``increase``. μ stays in [``min_damping``, ``max_damping``]. Near the minimiser full
      steps are taken and μ falls to ``min_damping``: the method becomes Gauss-Newton.

    Measured (``benchmarks/engd_poisson2d.py``, float64, defaults, default initialisation, seeds 0/1/2) on the
    paper's 2-D Poisson setting: rel. L2 <= 4e-7 first at steps 120/170/130, 3.2e-8/8.3e-8/2.0e-8 after 300
    steps (LM: 6.7e-6/1.2e-6/3.9e-6); not tuned on: poisson_1d k = 2 9e-10/3e-8/1e-8, heat_1d 9e-9/8e-9/2e-8. Cost per step: one Jacobian, one Gram product and Cholesky
    (dense solvers), one second-order jvp and a second triangular solve, len(etas) loss evaluations; a retry repeats
    all but the Jacobian and Gram product.

    Args:
        damping: initial relative damping μ₀ (> 0).
        solver: "auto", "dense_param", "dense_sample", "qr", "cg" or "lstsq" (module docstring).
        etas: step-size grid, positive, starting with 1.
        momentum: m in [0, 1), the weight of the previous step in the Tikhonov term (SPRING).
        geodesic_acceleration: follow θ + ηv + ½η²a instead of θ + ηv.
        scaling: Moré's column scaling D (else D = max diag(JᵀJ)·I).
        decrease, increase: factors (> 1) of μ after a full / a shortened step.
        max_retries: damping increases tried within one step when no η decreases the loss (>= 0).
        retry_factor: factor (> 1) of each such increase.
        min_damping, max_damping: bounds of μ.
        cg_rtol, cg_max_steps: CG options for ``solver="cg"``.
        hutchinson_probes: probes of the diagonal estimate for ``solver="cg"``.
    """
    _check_common(solver, damping)
    if not damping > 0:
        raise ValueError(f"damping: expected a relative damping > 0, got {damping!r}")
    if not 0 < min_damping <= max_damping:
        raise ValueError(f"min_damping/max_damping: need 0 < min <= max, got {min_damping!r}, {max_damping!r}")
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise ValueError(f"max_retries: expected a non-negative integer, got {max_retries!r}")
    if isinstance(momentum, bool) or not 0 <= momentum < 1:
        raise ValueError(f"momentum: expected a number in [0, 1), got {momentum!r}")
    for name, value in (("retry_factor", retry_factor), ("decrease", decrease), ("increase", increase)):
        if isinstance(value, bool) or not value > 1:
            raise ValueError(f"{name}: expected a number > 1, got {value!r}")
    for name, value in (("geodesic_acceleration", geodesic_acceleration), ("scaling", scaling)):
        if not isinstance(value, bool):
            raise ValueError(f"{name}: expected true or false, got {value!r}")
    _positive_int(cg_max_steps, "cg_max_steps", allow_none=True)
    _positive_int(hutchinson_probes, "hutchinson_probes")
    grid = tuple(float(e) for e in (etas if etas is not None else [0.5**k for k in range(16)]))
    if not grid or any(not e > 0 for e in grid) or grid[0] != 1.0:
        raise ValueError(f"etas: expected a non-empty sequence of positive step sizes starting with 1, got {etas!r}")

    def init(params):
        dtype = param_dtype(params)
        z = jnp.zeros((), jnp.int32)
        f = lambda v: jnp.asarray(v, dtype)  # noqa: E731
        p = sum(x.size for x in jax.tree.leaves(params))
        zp = jnp.zeros((p,), dtype)
        return ENGDState(f(damping), f(damping), f(0.0), f(0.0), z, z, z, z, z, z, zp, zp)

    def update(updates, state: ENGDState, params=None, *, residual_fn=None, jacobian_fn=None, **extra):
        _need(residual_fn, "engd")
        lin = _linearise(residual_fn, params, solver, jacobian_fn=jacobian_fn, with_gram=False)
        r = lin.r
        dtype = state.damping.dtype
        value = 0.5 * jnp.vdot(r, r)
        diag = _gram_diagonal(lin, hutchinson_probes).astype(dtype)
        top = jnp.max(diag)
        top = jnp.where(jnp.isfinite(top) & (top > 0), top, 1.0)
        if scaling:
            d_new = jnp.maximum(state.scale, diag)
            # floor: a parameter that never mattered (zero column so far) gets the smallest scale considered
            col = jnp.sqrt(jnp.maximum(d_new, 1e-8 * top))
        else:
            d_new = state.scale
            col = jnp.full(diag.shape, jnp.sqrt(top), dtype)
        slin = _column_scaled(lin, col)
        grid_arr = jnp.asarray(grid, dtype)
        p = lin.x.shape[0]
        f_flat = lambda y: residual_fn(lin.unravel(y))  # noqa: E731

        def second_derivative(v):
            return jax.jvp(lambda y: jax.jvp(f_flat, (y,), (v,))[1], (lin.x,), (v,))[1]

        def attempt(mu, m):
            solve = _damped_solve(slin, mu, cg_rtol=cg_rtol, cg_max_steps=cg_max_steps)
            prev = m * state.previous
            v, steps, status = solve(r + lin.jvp(prev))
            v = jnp.where(jnp.all(jnp.isfinite(v)), prev + v / col, 0.0)  # a failed factorisation: retry
            if geodesic_acceleration:
                r_vv = second_derivative(v)
                a, steps_a, status_a = solve(r_vv)
                a = jnp.where(jnp.all(jnp.isfinite(a)), a / col, 0.0)
                steps, status = steps + steps_a, jnp.maximum(status, status_a)
            else:
                a, r_vv = jnp.zeros_like(v), jnp.zeros_like(r)

            def loss_at(eta):
                rr = f_flat(lin.x + eta * v + 0.5 * eta**2 * a)
                val = 0.5 * jnp.vdot(rr, rr)
                return jnp.where(jnp.isfinite(val), val, jnp.inf)  # a non-finite trial is never chosen

            return jnp.stack([v, a]), r_vv, jax.vmap(loss_at)(grid_arr), steps, status

        def cond(carry):
            _, k, _, _, _, found, _, _ = carry
            return (~found) & (k <= max_retries)

        def body(carry):
            mu, k, *_ = carry
            # a retry drops the momentum: with a larger μ the direction then turns to the (scaled) gradient
            va, r_vv, losses, steps, status = attempt(mu, jnp.where(k == 0, momentum, 0.0))
            found = jnp.min(losses) < value
            mu_next = jnp.where(found, mu, jnp.minimum(mu * retry_factor, max_damping)).astype(dtype)
            return mu_next, k + 1, va, r_vv, losses, found, steps, status

        carry0 = (
            state.damping, jnp.zeros((), jnp.int32), jnp.zeros((2, p), dtype), jnp.zeros_like(r),
            jnp.full(grid_arr.shape, jnp.inf, dtype), jnp.asarray(False), jnp.zeros((), jnp.int32),
            jnp.zeros((), jnp.int32),
        )
        mu, tries, va, r_vv, losses, found, steps, status = jax.lax.while_loop(cond, body, carry0)
        v, a = va[0], va[1]
        i = jnp.argmin(losses)
        eta = jnp.where(found, grid_arr[i], 0.0).astype(dtype)
        jv = lin.jvp(v)
        if geodesic_acceleration:
            # model of the full step along the curve: r + Jv + ½(Ja + r_vv) (the geodesic's second-order term)
            r_model = r + jv + 0.5 * (lin.jvp(a) + r_vv)
            predicted = -0.5 * jnp.vdot(r_model - r, r_model + r)
        else:
            predicted = _predicted_decrease(r, jv)
        rho = (value - losses[0]) / predicted
        mu_new = jnp.where(i == 0, mu / decrease, mu * increase)
        mu_new = jnp.where(found, mu_new, mu)  # no decrease at all: μ was already raised by the retries
        mu_new = jnp.clip(mu_new, min_damping, max_damping).astype(dtype)
        flat_step = jnp.where(found, eta * v + 0.5 * eta**2 * a, 0.0).astype(dtype)
        step = lin.unravel(flat_step)
        return step, state._replace(
            previous=flat_step,
            damping=mu_new,
            lam=mu.astype(dtype),
            gain_ratio=jnp.where(jnp.isfinite(rho), rho, -jnp.inf).astype(dtype),
            step_size=eta,
            retries=(tries - 1).astype(jnp.int32),
            accepted=state.accepted + found.astype(jnp.int32),
            rejected=state.rejected + (~found).astype(jnp.int32),
            scale=d_new.astype(dtype),
            **_status_update(state, steps, status),
        )

    return optax.GradientTransformationExtraArgs(init, update)


class NewtonState(NamedTuple):
    """State of :func:`newton` (same meaning as :class:`LeastSquaresState`)."""

    damping: jax.Array
    nu: jax.Array
    gain_ratio: jax.Array
    accepted: jax.Array
    rejected: jax.Array

    _log_name = "newton"
    _log_fields = ("damping", "gain_ratio", "accepted", "rejected")
    high_accuracy = True


@memoized
def newton(damping: float = 1e-3, *, min_damping: float = 1e-15, max_damping: float = 1e15):
    """Damped Newton for small P: d = -(H + λI)⁻¹ ∇L with the dense Hessian H (P × P) of ``value_fn``.

    λ follows the Levenberg-Marquardt gain-ratio rule on the quadratic model m(d) = L + gᵀd + ½dᵀHd; when H + λI
    is not positive definite (Cholesky gives non-finite values) the step is rejected and λ grows, which is the
    standard way to regularise an indefinite Hessian. Needs ``value_fn``.
    """
    if not damping > 0:
        raise ValueError(f"damping: expected a number > 0, got {damping!r}")

    def init(params):
        dtype = param_dtype(params)
        z = jnp.zeros((), jnp.int32)
        return NewtonState(jnp.asarray(damping, dtype), jnp.asarray(2.0, dtype), jnp.asarray(0.0, dtype), z, z)

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
        lam, nu = _nielsen(state.damping, state.nu, rho, ok)
        lam = jnp.clip(lam, min_damping, max_damping).astype(state.damping.dtype)
        step = jnp.where(ok, d, 0.0).astype(flat.dtype)
        return unravel(step), NewtonState(
            lam,
            nu.astype(state.nu.dtype),
            jnp.where(jnp.isfinite(rho), rho, -jnp.inf).astype(state.gain_ratio.dtype),
            state.accepted + ok.astype(jnp.int32),
            state.rejected + (~ok).astype(jnp.int32),
        )

    return optax.GradientTransformationExtraArgs(init, update)
