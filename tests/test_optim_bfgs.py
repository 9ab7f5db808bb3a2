"""Dense BFGS, SSBFGS and SSBroyden (``sj.optim.bfgs/ssbfgs/ssbroyden``) against independent references, float64.

* extended Rosenbrock (10-D, MGH #21) and an MGH problem (Powell badly scaled, #3) against scipy's BFGS minimiser;
* finite termination: on a strictly convex quadratic with exact line searches the inverse-Hessian update reproduces
  the conjugate-direction property, so ``scale_by_bfgs`` reaches the minimiser in <= n steps (Nocedal & Wright,
  Thm 6.4 / Dixon's theorem for the Broyden class) — up to rounding, checked with a tolerance from κ(A);
* the self-scaling factors against a numpy transcription of the formulas (one update);
* state shape/dtype stability (as optax's ``test_state_shape_dtype_shard_stability``), ``optax.chain`` with clipping,
  and the second phase of ``hybrid`` through ``fit``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.optimize as so

import sciml_jax as sj

NAMES = ("bfgs", "ssbfgs", "ssbroyden")


def _factory(name):
    return getattr(sj.optim, name)


def _rosen(x):
    """Extended Rosenbrock (MGH #21): independent pairs, unique minimiser (1, ..., 1) (the chained form has a
    second local minimiser near x₁ = -1 for n >= 4, which scipy's BFGS finds from the standard start)."""
    odd, even = x[0::2], x[1::2]
    return jnp.sum(100.0 * (even - odd**2) ** 2 + (1.0 - odd) ** 2)


def _powell_badly_scaled(x):  # MGH #3: minimiser (1.098e-5, 9.106), zero residual, badly scaled
    r = jnp.stack([1e4 * x[0] * x[1] - 1.0, jnp.exp(-x[0]) + jnp.exp(-x[1]) - 1.0001])
    return jnp.sum(r**2)


def _minimise(opt, f, x0, steps):
    vg = jax.value_and_grad(f)

    @jax.jit
    def run(x):
        def body(_, c):
            x, s = c
            v, g = vg(x)
            u, s = opt.update(g, s, x, value=v, grad=g, value_fn=f)
            return x + u, s

        return jax.lax.fori_loop(0, steps, body, (x, opt.init(x)))

    return run(jnp.asarray(x0, jnp.float64))


def _scipy_bfgs(f, x0):
    fn = jax.jit(jax.value_and_grad(f))
    res = so.minimize(lambda x: tuple(np.asarray(v) for v in fn(jnp.asarray(x))), np.asarray(x0, float), jac=True,
                      method="BFGS", options={"gtol": 1e-12, "maxiter": 20_000, "xrtol": 0.0})
    return res.x


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_rosenbrock_reaches_scipy_minimiser(name):
    x0 = np.tile([-1.2, 1.0], 5)
    ref = _scipy_bfgs(_rosen, x0)
    np.testing.assert_allclose(ref, np.ones(10), atol=1e-6)  # the reference itself found the minimiser
    x, state = _minimise(_factory(name)(), _rosen, x0, 200)
    assert x.dtype == jnp.float64
    # zero-residual problem, Hessian at (1, ..., 1) has λ_min ≈ 0.4: |x - x*| <= |∇f| / λ_min and superlinear
    # convergence drives |∇f| to rounding (~1e-14): 1e-10 leaves four orders of margin
    np.testing.assert_allclose(np.asarray(x), np.ones(10), rtol=0, atol=1e-10)
    np.testing.assert_allclose(np.asarray(x), ref, rtol=0, atol=1e-5)  # scipy's BFGS stops at its gtol
    assert int(state.decrease_error) == 0 or float(_rosen(x)) == 0.0


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_mgh_powell_badly_scaled(name):
    x0 = [0.0, 1.0]
    xstar = np.array([1.098159e-5, 9.106146])  # MGH's published minimiser (7 digits)
    ref = _scipy_bfgs(_powell_badly_scaled, x0)
    x, _ = _minimise(_factory(name)(), _powell_badly_scaled, x0, 400)
    f = float(_powell_badly_scaled(x))
    assert f <= 1e-20, f  # zero-residual minimum reached to rounding level
    np.testing.assert_allclose(np.asarray(x), xstar, rtol=1e-6)  # MGH's 7 digits
    np.testing.assert_allclose(np.asarray(x), ref, rtol=1e-5)


def _exact_linesearch_run(variant, a_mat, b, x0, steps):
    """scale_by_bfgs with exact line searches on f = ½xᵀAx - bᵀx: α = -gᵀd / dᵀAd along d = -H g."""
    tx = sj.optim.scale_by_bfgs(variant)
    x = jnp.asarray(x0)
    state = tx.init(x)
    grads = []
    for _ in range(steps):
        g = a_mat @ x - b
        grads.append(float(jnp.linalg.norm(g)))
        h_g, state = tx.update(g, state, x)
        d = -h_g
        alpha = -jnp.vdot(g, d) / jnp.vdot(d, a_mat @ d)
        x = x + alpha * d
    grads.append(float(jnp.linalg.norm(a_mat @ x - b)))
    return x, np.array(grads)


@pytest.mark.parametrize("variant", sj.optim._bfgs.VARIANTS)
def test_quadratic_terminates_within_n_exact_steps(variant):
    n = 8
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    eig = np.logspace(0, 2, n)  # κ(A) = 100
    a_mat = jnp.asarray(q @ np.diag(eig) @ q.T)
    b = jnp.asarray(rng.normal(size=n))
    xstar = np.linalg.solve(np.asarray(a_mat), np.asarray(b))
    x, grads = _exact_linesearch_run(variant, a_mat, b, np.zeros(n), n + 1)
    # finite termination after n exact steps (conjugate directions); rounding grows with κ(A): the error after n
    # steps is a few κ(A)·eps relative, tolerance 1e3·κ·eps
    tol = 1e3 * 100 * np.finfo(float).eps * np.linalg.norm(xstar)
    assert np.linalg.norm(np.asarray(x) - xstar) <= tol, (variant, grads)
    assert grads[n] <= 1e-10 * grads[0], (variant, grads)  # terminated by step n (n + 1 iterates)
    assert grads[n // 2] > 1e-6 * grads[0]  # not already converged halfway: the test is not vacuous


def _np_update(variant, h, s, y, u_prev, d_prev, p):
    """numpy transcription of the module docstring's update (the reference for one step)."""
    alpha = -(s @ d_prev) / (d_prev @ d_prev)
    sy = s @ y
    hy = h @ y
    yhy = y @ hy
    b = -alpha * (s @ u_prev) / sy
    hh = yhy / sy
    a = b * hh - 1.0
    if variant == "bfgs":
        theta, tau = 0.0, 1.0
    elif variant == "ssbfgs":
        theta, tau = 0.0, min(1.0, 1.0 / b)
    else:
        c = np.sqrt(a / (1 + a))
        rho_m = min(1.0, hh * (1 - c))
        theta_m, theta_p = (rho_m - 1) / a, 1 / rho_m
        theta = max(theta_m, min(theta_p, (1 - b) / b))
        sigma = 1 + a * theta
        sh = abs(sigma) ** (1 / (1 - p))
        r = min(1.0, 1 / b)
        tau = min(r * sh, sigma) if theta <= 0 else r * min(sh, 1 / theta)
    phi = (1 - theta) / (1 + a * theta)
    v = s / sy - hy / yhy
    return (h - np.outer(hy, hy) / yhy + phi * yhy * np.outer(v, v)) / tau + np.outer(s, s) / sy, theta, tau


@pytest.mark.parametrize("variant", sj.optim._bfgs.VARIANTS)
def test_one_update_matches_numpy_transcription(variant):
    """Third call of scale_by_bfgs (second update) on a non-quadratic function vs the formula in numpy."""
    f = lambda x: jnp.sum(jnp.cosh(x) * jnp.arange(1.0, 6.0)) + 0.1 * jnp.sum(x) ** 4  # noqa: E731
    tx = sj.optim.scale_by_bfgs(variant)
    x = jnp.asarray([0.3, -0.2, 0.5, 0.1, -0.4])
    state = tx.init(x)
    for _ in range(2):
        d, state = tx.update(jax.grad(f)(x), state, x)
        x = x - 0.7 * d  # any step size: b is recovered from the step
    h_prev = np.asarray(state.hinv)
    s = np.asarray(x - state.params)
    g = jax.grad(f)(x)
    y = np.asarray(g - state.updates)
    ref_h, theta, tau = _np_update(variant, h_prev, s, y, np.asarray(state.updates), np.asarray(state.direction), 5)
    _, new_state = tx.update(g, state, x)
    # the update is a few O(1) rank-one terms: rounding ~1e-15 relative to |H|
    np.testing.assert_allclose(np.asarray(new_state.hinv), ref_h, rtol=0, atol=1e-12 * np.abs(ref_h).max())
    assert float(new_state.tau) == pytest.approx(tau, rel=1e-12)
    assert float(new_state.theta) == pytest.approx(theta, rel=1e-12, abs=1e-15)
    np.testing.assert_allclose(np.asarray(new_state.hinv @ y), s, rtol=1e-10)  # the secant equation H₊y = s


@pytest.mark.slow
def test_self_scaling_changes_the_iterates():
    """SSBFGS/SSBroyden are not BFGS in disguise: on Rosenbrock their τ/θ move away from (1, 0) and the iterates
    differ from BFGS's after a few steps."""
    x0 = np.tile([-1.2, 1.0], 2)
    xs = {name: _minimise(_factory(name)(), _rosen, x0, 6) for name in NAMES}
    assert float(jnp.linalg.norm(xs["ssbfgs"][0] - xs["bfgs"][0])) > 1e-6
    assert float(jnp.linalg.norm(xs["ssbroyden"][0] - xs["bfgs"][0])) > 1e-6
    assert float(xs["bfgs"][1].tau) == 1.0 and float(xs["bfgs"][1].theta) == 0.0


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_state_shape_dtype_stable_and_float32(name):
    for dtype in (jnp.float32, jnp.float64):
        opt = _factory(name)()
        f = lambda x: _rosen(x.astype(dtype))  # noqa: E731
        x = jnp.asarray([-1.2, 1.0, -1.2, 1.0], dtype)
        s0 = opt.init(x)

        @jax.jit
        def step(x, s):
            v, g = jax.value_and_grad(f)(x)
            u, s = opt.update(g, s, x, value=v, grad=g, value_fn=f)
            return x + u, s

        sig = lambda t: (jax.tree.structure(t), [(a.shape, a.dtype) for a in jax.tree.leaves(t)])  # noqa: E731
        x1, s1 = step(x, s0)
        for _ in range(5):
            x1, s1 = step(x1, s1)
        assert sig(s0) == sig(s1), name
        assert x1.dtype == dtype
        # our state (the dense H, the previous pair, the diagnostics) keeps the parameters' dtype; optax's zoom
        # line search keeps its own info scalars in the default float dtype, which does not reach the iterates
        ours = (s1.inner[0], s1.step_norm, s1.decrease_error, s1.tau, s1.theta)
        floats = [a for a in jax.tree.leaves(ours) if jnp.issubdtype(a.dtype, jnp.floating)]
        assert all(a.dtype == dtype for a in floats), (name, dtype, {a.dtype for a in floats})
        assert float(f(x1)) < float(f(x))


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_inside_chain_with_clipping(name):
    """chain(clip_by_global_norm(10), ·): the first steps see clipped gradients (‖∇f(x₀)‖ ≈ 230), later ones
    the true gradient, so the method still reaches the minimiser (the line search uses the true loss)."""
    opt = optax.chain(optax.clip_by_global_norm(10.0), _factory(name)())
    x, _ = _minimise(opt, _rosen, [-1.2, 1.0], 100)
    np.testing.assert_allclose(np.asarray(x), [1.0, 1.0], rtol=0, atol=1e-8)


def test_registry_options_are_validated():
    assert {"bfgs", "ssbfgs", "ssbroyden"} <= set(sj.optim.names())
    with pytest.raises(ValueError, match=r"optimizer\.memory_size: unknown option for 'bfgs'"):
        sj.optim.get("bfgs", memory_size=5)
    with pytest.raises(ValueError, match=r"scaling: unknown 'x'; allowed: al_baali, oren_luenberger"):
        sj.optim.get("ssbfgs", scaling="x")
    with pytest.raises(ValueError, match=r"max_linesearch_steps: expected a positive integer"):
        sj.optim.get("ssbroyden", max_linesearch_steps=0)
    with pytest.raises(ValueError, match=r"variant: unknown"):
        sj.optim.scale_by_bfgs("sr1")


@pytest.mark.slow
def test_as_hybrid_second_phase_through_fit():
    """Adam warm-up, then SSBroyden from the registry (config form) on a small curve fit, through fit()."""
    t = jnp.linspace(0.0, 2.0, 30)[:, None]
    y = 1.5 * jnp.exp(-0.7 * t[:, 0]) + 0.2

    def residual(params, batch):
        tt, yy = batch["data"]
        return params["a"] * jnp.exp(-params["b"] * tt[:, 0]) + params["c"] - yy

    params = {"a": jnp.asarray(1.0), "b": jnp.asarray(1.0), "c": jnp.asarray(0.0)}
    opt = sj.optim.get("hybrid", first={"name": "adam", "learning_rate": 1e-2}, second={"name": "ssbroyden"},
                       switch={"after_steps": 20})
    out = sj.train.fit(residual, params, {"data": (t, y)}, opt, 80, eval_every=20, progress=False)
    assert out.status == "completed"
    assert out.history.loss[-1] < 1e-20  # zero-residual fit: the quasi-Newton phase reaches rounding level
    np.testing.assert_allclose([float(out.params[k]) for k in "abc"], [1.5, 0.7, 0.2], atol=1e-9)
    info = out.history.info
    assert info["hybrid.phase"][-1] == 1 and "ssbroyden.tau" in info and "ssbroyden.linesearch_steps" in info


@pytest.mark.parametrize("name", NAMES)
def test_failed_linesearch_restarts_from_the_identity(name):
    """A negative-definite H (as rounding can leave after many updates) proposes an ascent direction: the line
    search finds no decrease. With the default restart, H is reset and the run recovers; without it the iterate
    never moves again (the stall seen on the heat benchmark)."""
    f = lambda x: jnp.sum((x - jnp.arange(1.0, 5.0)) ** 2 * jnp.arange(1.0, 5.0))  # noqa: E731
    vg = jax.value_and_grad(f)
    x0 = jnp.zeros(4, jnp.float64)

    def run(opt, steps):
        s = opt.init(x0)
        x = x0
        for _ in range(2):  # two ordinary steps, then corrupt H
            v, g = vg(x)
            u, s = opt.update(g, s, x, value=v, grad=g, value_fn=f)
            x = x + u
        qn = s.inner[0]
        s = s._replace(inner=(qn._replace(hinv=-jnp.eye(4)), *s.inner[1:]))
        x_bad = x
        for _ in range(steps):
            v, g = vg(x)
            u, s = opt.update(g, s, x, value=v, grad=g, value_fn=f)
            x = x + u
        return x_bad, x, s

    x_bad, x, s = run(_factory(name)(), 30)
    assert int(s.restarts) >= 1
    assert float(f(x)) < float(f(x_bad))
    np.testing.assert_allclose(np.asarray(x), np.arange(1.0, 5.0), rtol=0, atol=1e-8)
    x_bad, x, s = run(_factory(name)(restart=False), 10)
    assert int(s.restarts) == 0
    # no progress at all without the restart, and no harm either: a step that would raise the loss is not taken
    np.testing.assert_array_equal(np.asarray(x), np.asarray(x_bad))
    assert int(s.stalls) >= 10
    with pytest.raises(ValueError, match=r"restart: expected true or false"):
        _factory(name)(restart="yes")
