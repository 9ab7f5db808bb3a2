"""ENGD (rebuilt), scale-aware LM damping, CG status and preconditioning: behaviour the contract suite does not see.

Small problems only (the ENGD accuracy target on the paper's setting is a benchmark: benchmarks/engd_poisson2d.py,
and a slow test below).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import sciml_jax as sj


def _problem(n=40, p=12, seed=0):
    """r(θ) = tanh(A w) + B c - b with θ = {"w": (p-2,), "c": (2,)}: non-zero residual, P < N."""
    rng = np.random.default_rng(seed)
    a = jnp.asarray(rng.normal(size=(n, p - 2)) / np.sqrt(p))
    bm = jnp.asarray(rng.normal(size=(n, 2)))
    b = jnp.asarray(rng.normal(size=n))
    theta = {"w": jnp.asarray(rng.normal(size=p - 2) * 0.3), "c": jnp.asarray(rng.normal(size=2))}

    def residual(th):
        return jnp.tanh(a @ th["w"]) + bm @ th["c"] - b

    return residual, theta


def _step(opt, residual, theta, state=None):
    state = opt.init(theta) if state is None else state
    return jax.jit(lambda s, t: opt.update(None, s, t, residual_fn=residual))(state, theta)


# ------------------------------------------------------------------------------------------- ENGD


def test_engd_is_invariant_to_the_loss_scale():
    """μ is relative to diag(JᵀJ): r -> c·r (any c) gives the same step, the same accepted η and the same μ."""
    residual, theta = _problem()
    opt = sj.optim.engd()
    u1, s1 = _step(opt, residual, theta)
    u2, s2 = _step(opt, lambda t: 1e3 * residual(t), theta)
    for a, b in zip(jax.tree.leaves(u1), jax.tree.leaves(u2)):
        # the scaled Gram system is identical up to rounding (κ of the damped system < 1e6 here)
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-8, atol=1e-12)
    assert float(s1.step_size) == float(s2.step_size) and float(s1.damping) == float(s2.damping)


@pytest.mark.parametrize("n,p", [(40, 12), (12, 40)])
def test_engd_parameter_and_sample_space_agree(n, p):
    """Push-through identity: the P × P and the N × N (Woodbury) forms give the same step."""
    residual, theta = _problem(n, p, seed=n + p)
    outs = [_step(sj.optim.engd(solver=sol), residual, theta) for sol in ("dense_param", "dense_sample", "qr")]
    ref = np.concatenate([np.ravel(x) for x in jax.tree.leaves(outs[0][0])])
    for u, _ in outs[1:]:
        got = np.concatenate([np.ravel(x) for x in jax.tree.leaves(u)])
        # μ = 1e-3 relative: κ(G̃ + μI) <= 1e3 · κ-free, so the forms agree to ~1e-12 relative
        np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-12 * np.abs(ref).max())


def test_engd_always_moves_by_raising_the_damping():
    """From a tiny μ whose factorisation fails (Cholesky of a singular system gives inf/NaN) ENGD retries with a
    larger damping inside the same step and still decreases the loss; the old pseudo-inverse ENGD stalled (η = 0
    forever once no grid step decreased the loss)."""
    # a rank-deficient J: two identical columns (w[0] and w[1] enter only through their sum)
    a = jnp.asarray(np.random.default_rng(1).normal(size=(20, 1)))

    def residual(th):
        return jnp.tanh(a[:, 0] * (th[0] + th[1])) - 0.3

    # μ = 1e-20 relative: 1 + μ == 1 in float64, the Cholesky factor of the singular Gram matrix has a zero pivot
    opt = sj.optim.engd(damping=1e-20, min_damping=1e-20, scaling=False, etas=(1.0,), retry_factor=1e4)
    theta = jnp.asarray([0.4, 0.4])
    u, s = _step(opt, residual, theta)
    loss = lambda t: 0.5 * float(jnp.sum(residual(t) ** 2))  # noqa: E731
    assert loss(theta + u) < loss(theta)
    assert int(s.retries) >= 1 and int(s.accepted) == 1 and float(s.step_size) == 1.0
    assert float(s.lam) >= 1e-16  # the μ that worked (after the retries) ...
    assert float(s.damping) in (float(s.lam) / 2.0, float(s.lam) * 3.0)  # ... is where the next step starts from


def test_engd_damping_follows_the_line_search():
    """η = 1 accepted: μ /= decrease; a shorter η: μ *= increase."""
    residual, theta = _problem()
    opt = sj.optim.engd(damping=1e-2, decrease=2.0, increase=3.0)
    _, s = _step(opt, residual, theta)
    full = float(s.step_size) == 1.0
    assert float(s.damping) == pytest.approx(1e-2 / 2.0 if full else 3e-2, rel=1e-12)
    # a problem where the full step overshoots: r = θ³ - 1 from θ = 0.1 (GN step 1/(3θ²)·(1-θ³)/... is huge)
    cubic = lambda t: t**3 - jnp.asarray([1.0])  # noqa: E731
    _, s = _step(sj.optim.engd(damping=1e-6, scaling=False), cubic, jnp.asarray([0.1]))
    assert float(s.step_size) < 1.0 and float(s.damping) == pytest.approx(3e-6, rel=1e-12)


def test_engd_options_are_validated():
    with pytest.raises(ValueError, match="etas: .*starting with 1"):
        sj.optim.engd(etas=(0.5, 0.25))
    with pytest.raises(ValueError, match="increase: expected a number > 1"):
        sj.optim.engd(increase=1.0)
    with pytest.raises(ValueError, match="damping: expected a relative damping > 0"):
        sj.optim.engd(damping=0.0)
    with pytest.raises(ValueError, match="geodesic_acceleration: expected true or false"):
        sj.optim.get("engd", geodesic_acceleration="yes")


# ------------------------------------------------------------------------------------------- LM: damping and CG


def test_levenberg_marquardt_scale_aware_initial_damping():
    """λ₀ = τ · max diag(JᵀJ) (Madsen, Nielsen & Tingleff): scaling r by c scales λ₀ by c²."""
    residual, theta = _problem()
    flat, unravel = jax.flatten_util.ravel_pytree(theta)
    jac = jax.jacfwd(lambda v: residual(unravel(v)))(flat)
    top = float(jnp.max(jnp.sum(jac**2, axis=0)))
    for c in (1.0, 30.0):
        opt = sj.optim.levenberg_marquardt(relative_damping=1e-3)
        s0 = opt.init(theta)
        assert float(s0.damping) < 0  # not yet set: the first step sets it from J
        _, s1 = _step(opt, lambda t, c=c: c * residual(t), theta, s0)
        lam0 = 1e-3 * c**2 * top
        rho = float(s1.gain_ratio)
        expected = lam0 * max(1 / 3, 1 - (2 * rho - 1) ** 3) if int(s1.accepted) else 2 * lam0
        assert float(s1.damping) == pytest.approx(expected, rel=1e-9)


def test_levenberg_marquardt_cg_status_is_recorded_and_logged():
    residual, theta = _problem()
    capped = sj.optim.levenberg_marquardt(solver="cg", cg_max_steps=2, cg_rtol=1e-14)
    _, s = _step(capped, residual, theta)
    assert int(s.solve_steps) == 2 and int(s.solve_status) == 1 and int(s.solve_failures) == 1
    full = sj.optim.levenberg_marquardt(solver="cg")
    _, s = _step(full, residual, theta)
    # converged well before the default cap 10·P = 120 (exact arithmetic: <= P = 12; rounding adds a few)
    assert 0 < int(s.solve_steps) < 60 and int(s.solve_status) == 0 and int(s.solve_failures) == 0
    info = sj.optim.logged_info(s)
    assert {"lsq.solve_steps", "lsq.solve_status", "lsq.solve_failures"} <= set(info)


def test_nystrom_factors_recover_a_low_rank_psd_matrix():
    """G = JᵀJ of rank 6 with sketch size 8: the randomised Nyström approximation is exact to rounding."""
    rng = np.random.default_rng(2)
    jac = jnp.asarray(rng.normal(size=(6, 30)) * np.logspace(0, -3, 6)[:, None])
    g = jac.T @ jac
    f = sj.optim.nystrom_factors(lambda v: g @ v, 30, 8, jax.random.key(0), jnp.float64)
    approx = f.u @ jnp.diag(f.lam) @ f.u.T
    np.testing.assert_allclose(np.asarray(approx), np.asarray(g), rtol=0, atol=1e-10 * float(jnp.max(jnp.abs(g))))
    np.testing.assert_allclose(np.sort(np.asarray(f.lam))[::-1][:6], np.linalg.eigvalsh(np.asarray(g))[::-1][:6],
                               rtol=1e-8)


def test_nystrom_preconditioner_cuts_cg_iterations():
    """An ill-conditioned J (singular values 1 .. 1e-4, a few large ones): the Nyström-preconditioned CG converges
    in far fewer iterations than plain CG on the same damped system, to the same direction."""
    rng = np.random.default_rng(3)
    n, p = 60, 40
    u, _ = np.linalg.qr(rng.normal(size=(n, p)))
    v, _ = np.linalg.qr(rng.normal(size=(p, p)))
    sv = np.concatenate([np.logspace(2, 0, 10), np.logspace(-1, -2, p - 10)])
    a = jnp.asarray(u @ np.diag(sv) @ v.T)
    b = jnp.asarray(rng.normal(size=n))
    residual = lambda t: a @ t - b  # noqa: E731
    theta = jnp.zeros(p)
    kw = dict(damping=1e-3, solver="cg", cg_rtol=1e-10)
    plain = sj.optim.levenberg_marquardt(**kw)
    pre = sj.optim.levenberg_marquardt(preconditioner="nystrom", precond_rank=12, **kw)
    u1, s1 = _step(plain, residual, theta)
    u2, s2 = _step(pre, residual, theta)
    assert int(s1.solve_status) == 0 and int(s2.solve_status) == 0
    assert int(s2.solve_steps) * 3 <= int(s1.solve_steps), (int(s1.solve_steps), int(s2.solve_steps))
    # both solve (AᵀA + λI) d = -Aᵀb to CG's tolerance; κ <= 1e4/1e-3: agreement to ~1e-6 relative
    np.testing.assert_allclose(np.asarray(u2), np.asarray(u1), rtol=0, atol=1e-6 * float(jnp.max(jnp.abs(u1))))


def test_preconditioner_needs_cg():
    with pytest.raises(ValueError, match="preconditioner='nystrom' needs solver='cg'"):
        sj.optim.levenberg_marquardt(preconditioner="nystrom")
    with pytest.raises(ValueError, match="preconditioner: unknown 'ilu'"):
        sj.optim.levenberg_marquardt(solver="cg", preconditioner="ilu")


# ------------------------------------------------------------------------------------------- high-accuracy flag


def test_high_accuracy_states_are_marked():
    for cls in (sj.optim.LBFGSState, sj.optim.BFGSState, sj.optim.SSBFGSState, sj.optim.SSBroydenState,
                sj.optim.LeastSquaresState, sj.optim.NewtonState, sj.optim.ENGDState):
        assert getattr(cls, "high_accuracy", False) is True, cls
    assert not getattr(type(optax.adam(1e-3).init(jnp.zeros(2))), "high_accuracy", False)
