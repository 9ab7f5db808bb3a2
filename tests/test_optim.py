"""Contract suite for every optimizer in ``sj.optim.names()`` plus hybrid, LM, L-BFGS and registry behaviour.

The contract (ARCHITECTURE.md, optim):
``update(updates, state, params, *, value, grad, value_fn, residual_fn, **extra)`` returns ``(updates, state)``
with the state's structure, shapes and dtypes unchanged, float64 kept, one trace under ``jax.jit``, and composes
with optax (``chain``, ``inject_hyperparams``).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import sciml_jax as sj

# ------------------------------------------------------------------------------------------- the test problem
# r(θ) = tanh(A w + c) - tanh(A w* + c*), θ = {"w": (3,), "c": ()}: zero residual, unique minimiser θ* (A has full
# column rank), nonlinear enough that GN/LM/Newton iterate, small enough that every compile is quick.
_RNG = np.random.default_rng(0)
_A = jnp.asarray(_RNG.normal(size=(8, 3)) / np.sqrt(3.0))
_W_STAR = jnp.asarray([0.3, -0.5, 0.8])
_C_STAR = jnp.asarray(0.1)
_B = jnp.tanh(_A @ _W_STAR + _C_STAR)
P0 = {"w": jnp.zeros(3), "c": jnp.zeros(())}


def residual(p):
    dt = p["w"].dtype  # the constants follow the parameters' dtype (float32 runs stay float32)
    return jnp.tanh(_A.astype(dt) @ p["w"] + p["c"]) - _B.astype(dt)


def loss(p):
    r = residual(p)
    return 0.5 * jnp.vdot(r, r)


def value_fn(p, residual_fn=None):  # noqa: ARG001 - the signature fit's make_step uses
    return loss(p)


def error(p):
    return float(jnp.sqrt(jnp.sum((p["w"] - _W_STAR) ** 2) + (p["c"] - _C_STAR) ** 2))


def extras(p):
    v, g = jax.value_and_grad(loss)(p)
    return g, dict(value=v, grad=g, value_fn=value_fn, residual_fn=residual)


# ------------------------------------------------------------------------------------------- the table
HYBRID = dict(first={"name": "adam", "learning_rate": 1e-2}, second={"name": "lbfgs"}, switch={"after_steps": 5})


@dataclasses.dataclass(frozen=True)
class Case:
    options: dict
    steps: int
    tol: float  # |θ - θ*| after `steps` steps


CASES = {
    # first-order methods with tolerances that match their (linear) rates; curvature methods to rounding level
    "adam": Case({"learning_rate": {"name": "exponential_decay", "init_value": 0.05, "transition_steps": 100,
                                    "decay_rate": 0.5}}, 600, 1e-2),
    "sgd": Case({"learning_rate": 0.5, "momentum": 0.9}, 300, 1e-5),
    "lbfgs": Case({"memory_size": 5}, 40, 1e-10),
    "gauss_newton": Case({}, 15, 1e-12),
    "levenberg_marquardt": Case({}, 20, 1e-12),
    "engd": Case({}, 15, 1e-12),
    "newton": Case({}, 20, 1e-12),
    "hybrid": Case(HYBRID, 40, 1e-10),
    "bfgs": Case({}, 40, 1e-10),
    "ssbfgs": Case({}, 40, 1e-10),
    "ssbroyden": Case({}, 40, 1e-10),
}
# optimizers that compute their own direction from residual_fn/value_fn and ignore the incoming updates
OWN_DIRECTION = ("gauss_newton", "levenberg_marquardt", "engd", "newton")
NAMES = list(CASES)


def build(name: str) -> optax.GradientTransformationExtraArgs:
    return sj.optim.get(name, **CASES[name].options)


@dataclasses.dataclass
class Run:
    params: dict
    state0: object
    state1: object
    state_end: object
    updates: dict
    traces: int
    losses: list


@functools.lru_cache(maxsize=None)
def run(name: str) -> Run:
    """Run optimizer ``name`` for its number of steps with a jitted step; shared by the contract tests."""
    opt = build(name)
    traces = []

    @jax.jit
    def step(p, s):
        traces.append(1)  # runs once per trace: the count of compilations (test_jit_traces_once)
        g, kw = extras(p)
        u, s = opt.update(g, s, p, **kw)
        return optax.apply_updates(p, u), s, u, kw["value"]

    p, s0 = P0, opt.init(P0)
    s, losses, state1 = s0, [], None
    for i in range(CASES[name].steps):
        p, s, u, v = step(p, s)
        losses.append(float(v))
        if i == 0:
            state1 = s
    return Run(p, s0, state1, s, u, len(traces), losses)


# ------------------------------------------------------------------------------------------- contract tests


def test_table_covers_every_registered_optimizer():
    assert set(CASES) == set(sj.optim.names())  # a newly registered optimizer must be added to this suite


@pytest.mark.parametrize("name", NAMES)
def test_reaches_known_optimum(name):
    r = run(name)
    assert error(r.params) <= CASES[name].tol, (name, error(r.params))
    assert r.losses[-1] < r.losses[0]


@pytest.mark.parametrize("name", NAMES)
def test_float64_preserved(name):
    r = run(name)
    for leaf in jax.tree.leaves((r.params, r.updates)):
        assert leaf.dtype == jnp.float64, name
    floats = [x for x in jax.tree.leaves(r.state_end) if jnp.issubdtype(x.dtype, jnp.floating)]
    assert floats and all(x.dtype == jnp.float64 for x in floats), name


# optax keeps a few internal scalars in the default float dtype whatever the parameters' dtype (L-BFGS's
# ``weights_memory``, the zoom line search's ``info``); they never reach the parameters or updates
_OPTAX_INTERNAL = ("weights_memory", "info")


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_float32_preserved(name):
    """float32 parameters give float32 updates and float32 optimizer state (optax's own internals aside), with a
    state signature that does not change from step to step."""
    opt = build(name)
    p = jax.tree.map(lambda x: x.astype(jnp.float32), P0)

    @jax.jit
    def step(p, s):
        g, kw = extras(p)
        u, s = opt.update(g, s, p, **kw)
        return optax.apply_updates(p, u), s, u

    s0 = opt.init(p)
    p1, s1, u = step(p, s0)
    p2, s2, _ = step(p1, s1)
    for leaf in jax.tree.leaves((p1, p2, u)):
        assert leaf.dtype == jnp.float32, name
    wrong = [
        jax.tree_util.keystr(path)
        for path, leaf in jax.tree_util.tree_leaves_with_path(s2)
        if jnp.issubdtype(leaf.dtype, jnp.floating) and leaf.dtype != jnp.float32
        and not any(k in jax.tree_util.keystr(path) for k in _OPTAX_INTERNAL)
    ]
    assert not wrong, (name, wrong)
    assert _signature(s1, weak=False) == _signature(s2, weak=False), name
    assert float(loss(p2)) < float(loss(p)), name


def _signature(tree, weak=True):
    """Tree structure and (shape, dtype[, weak_type]) of every leaf; a weak-type flip retraces a jitted step."""
    return jax.tree.structure(tree), [
        (x.shape, x.dtype) + ((getattr(x, "weak_type", False),) if weak else ()) for x in jax.tree.leaves(tree)
    ]


@pytest.mark.parametrize("name", NAMES)
def test_state_shape_dtype_stable(name):
    """Like optax's lbfgs_test state stability check: init, one step and many steps give identical signatures."""
    r = run(name)
    assert _signature(r.state0) == _signature(r.state1) == _signature(r.state_end), name


@pytest.mark.parametrize("name", NAMES)
def test_jit_traces_once(name):
    r = run(name)
    # one compilation for all steps (hybrid: across its switch); a retrace means the state's types changed
    assert r.traces == 1, (name, r.traces)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_accepts_the_extra_arguments(name):
    opt = build(name)
    g, kw = extras(P0)
    u, s = jax.jit(lambda s: opt.update(g, s, P0, **kw))(opt.init(P0))
    assert jax.tree.structure(u) == jax.tree.structure(P0)
    assert all(np.all(np.isfinite(np.asarray(x))) for x in jax.tree.leaves(u))


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_ignores_unknown_extra_kwargs(name):
    """``**extra`` in the contract: an unknown keyword (and a plain ``value_fn: θ ↦ L``) must not break update.

    Currently FAILS for lbfgs and hybrid(adam -> lbfgs): optax's zoom line search forwards every extra keyword to
    ``value_fn`` and raises TypeError for the ones it does not accept (see the report).
    """
    opt = build(name)
    g, kw = extras(P0)
    kw["value_fn"] = loss  # θ ↦ L(θ), as ARCHITECTURE.md states it
    u, _ = jax.jit(lambda s: opt.update(g, s, P0, some_unknown_extra=1.0, **kw))(opt.init(P0))
    assert all(np.all(np.isfinite(np.asarray(x))) for x in jax.tree.leaves(u))


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_inside_chain_with_clipping(name):
    opt = build(name)
    chained = optax.chain(optax.clip_by_global_norm(0.1), opt)
    g, kw = extras(P0)
    u_chain, s = chained.update(g, chained.init(P0), P0, **kw)
    assert _signature(s, weak=False) == _signature(chained.init(P0), weak=False)
    if name in OWN_DIRECTION:
        # these compute their own direction from residual_fn/value_fn and ignore the incoming updates: identical
        u_alone, _ = opt.update(g, opt.init(P0), P0, **kw)
        for a, b in zip(jax.tree.leaves(u_chain), jax.tree.leaves(u_alone)):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    elif name in ("adam", "sgd"):
        # first-order steps see the clipped gradient; run to the optimum through the chain
        p, s = P0, chained.init(P0)
        step = jax.jit(lambda p, s: chained.update(extras(p)[0], s, p, **extras(p)[1]))
        for _ in range(CASES[name].steps):
            u, s = step(p, s)
            p = optax.apply_updates(p, u)
        assert error(p) <= CASES[name].tol
    else:  # lbfgs (also hybrid's second phase): the clipped gradient feeds the memory while the line search sees
        # the true one, so convergence speed is not comparable; the step must still descend
        assert float(loss(optax.apply_updates(P0, u_chain))) < float(loss(P0))


def test_hybrid_from_the_registry_switched_once_without_fallback():
    s = run("hybrid").state_end
    assert int(s.switch_step) == 5 and int(s.switches) == 1  # after_steps: 5 adam steps, then lbfgs
    assert int(s.fallbacks) == 0 and int(s.phase) == 1  # L-BFGS from there never triggers the guard


@pytest.mark.parametrize("factory", [optax.adam, optax.sgd])
def test_inject_hyperparams_learning_rate_takes_effect(factory):
    """inject_hyperparams(adam/sgd) alone and as a hybrid's first optimizer: changing the rate changes the step."""
    g, kw = extras(P0)
    tx = optax.inject_hyperparams(factory)(learning_rate=0.1)
    s = tx.init(P0)
    u1, _ = tx.update(g, s, P0)
    s.hyperparams["learning_rate"] = jnp.asarray(0.025)
    u2, _ = tx.update(g, s, P0)
    # first adam/sgd step is linear in the rate: exactly a quarter (up to rounding)
    np.testing.assert_allclose(np.asarray(u2["w"]), 0.25 * np.asarray(u1["w"]), rtol=1e-14)

    hyb = sj.optim.hybrid(tx, optax.sgd(1.0), sj.optim.after_steps(100))
    hs = hyb.init(P0)
    h1, _ = jax.jit(lambda s: hyb.update(g, s, P0, **kw))(hs)
    hs.first_state.hyperparams["learning_rate"] = jnp.asarray(0.025)
    h2, _ = jax.jit(lambda s: hyb.update(g, s, P0, **kw))(hs)
    np.testing.assert_allclose(np.asarray(h1["w"]), np.asarray(u1["w"]), rtol=1e-14)
    np.testing.assert_allclose(np.asarray(h2["w"]), 0.25 * np.asarray(u1["w"]), rtol=1e-14)


# ------------------------------------------------------------------------------------------- hybrid: switching
# A synthetic driver: the hybrid sees the `value` and `grad` we feed it, so criteria can be tested step by step.


def _drive(hyb, values, grads, params=None):
    """Feed (value_k, grad_k) to hyb.update; return per-step (phase, switch_step, reason, update) and final state."""
    params = jnp.zeros(2) if params is None else params
    step = jax.jit(lambda s, v, g: hyb.update(g, s, params, value=v, grad=g, value_fn=lambda p: jnp.sum(p**2)))
    s = hyb.init(params)
    out = []
    for v, g in zip(values, grads):
        u, s = step(s, jnp.asarray(v, jnp.float64), jnp.asarray(g, jnp.float64))
        out.append((int(s.phase), int(s.switch_step), int(s.reason), np.asarray(u)))
    return out, s


def _two_sgd(switch, **kw):
    # first: u = -g, second: u = -10 g — which optimizer produced a step is visible in the update itself
    return sj.optim.hybrid(optax.sgd(1.0), optax.sgd(10.0), switch, guard_factor=None, **kw)


def test_after_steps_switches_at_the_right_step():
    k = 7
    out, s = _drive(_two_sgd(sj.optim.after_steps(k)), [1.0] * 12, [[1.0, 2.0]] * 12)
    scales = [float(-u[0]) for *_, u in out]
    assert scales == [1.0] * k + [10.0] * (12 - k)  # exactly k steps of the first optimizer
    assert int(s.switch_step) == k and int(s.switches) == 1
    assert sj.optim.reason_names(int(s.reason)) == ["after_steps"]


def test_on_plateau_fires_on_the_plateau_not_before():
    window = 5
    values = [2.0 ** -min(k, 19) for k in range(40)]  # halves each step until step 19, then flat
    out, s = _drive(_two_sgd(sj.optim.on_plateau(window=window, rtol=1e-3)), values, [[1.0, 0.0]] * 40)
    phases = [o[0] for o in out]
    # best loss is constant from step 19; `window` steps later the relative decrease over the window is 0 < rtol
    assert phases.index(1) == 19 + window
    assert int(s.switch_step) == 19 + window
    assert sj.optim.reason_names(int(s.reason)) == ["plateau"]
    # a too-tight tolerance never fires on a loss that keeps halving
    out, _ = _drive(_two_sgd(sj.optim.on_plateau(window=window, rtol=0.4)), [2.0**-k for k in range(30)],
                    [[1.0, 0.0]] * 30)
    assert all(o[0] == 0 for o in out)


def test_grad_norm_below_with_patience():
    norms = [1.0, 1e-4, 1e-4, 1.0, 1e-4, 1e-4, 1e-4, 1e-4]
    grads = [[n, 0.0] for n in norms]
    out, s = _drive(_two_sgd(sj.optim.grad_norm_below(1e-3, patience=3)), [1.0] * 8, grads)
    assert int(s.switch_step) == 6  # the interrupted run of two does not count; the third in a row fires
    out, s = _drive(_two_sgd(sj.optim.grad_norm_below(1e-3)), [1.0] * 8, grads)
    assert int(s.switch_step) == 1


def test_grad_norm_below_relative_is_scale_invariant():
    # norms fall 1 -> 0.1 -> 0.01 -> 1e-3 ...; relative tol 5e-3 fires at the first norm < 5e-3 * |g_0| (step 3),
    # whatever the overall scale; the absolute form with the same tol fires at a scale-dependent step.
    for scale in (1.0, 1e3, 1e-3):
        grads = [[scale * 10.0**-k, 0.0] for k in range(8)]
        _, s = _drive(_two_sgd(sj.optim.grad_norm_below(5e-3, relative=True)), [1.0] * 8, grads)
        assert int(s.switch_step) == 3, scale
    steps = []
    for scale in (1.0, 1e3):
        grads = [[scale * 10.0**-k, 0.0] for k in range(8)]
        _, s = _drive(_two_sgd(sj.optim.grad_norm_below(5e-3)), [1.0] * 8, grads)
        steps.append(int(s.switch_step))
    assert steps == [3, 6]
    with pytest.raises(ValueError, match="relative=True, tol must be in"):
        sj.optim.grad_norm_below(2.0, relative=True)
    with pytest.raises(ValueError, match="relative must be true or false"):
        sj.optim.grad_norm_below(1e-2, relative="yes")
    # the YAML form reaches the option
    hyb = sj.optim.criterion({"grad_norm": {"tol": 1e-2, "relative": True}})
    assert hyb.relative and hyb.tol == 1e-2


def test_composition_and_reason_bits():
    grads = [[1.0, 0.0]] * 10 + [[1e-5, 0.0]] * 20
    _, s = _drive(_two_sgd(sj.optim.after_steps(25) | sj.optim.grad_norm_below(1e-3)), [1.0] * 30, grads)
    assert int(s.switch_step) == 10 and sj.optim.reason_names(int(s.reason)) == ["grad_norm"]
    _, s = _drive(_two_sgd(sj.optim.after_steps(25) & sj.optim.grad_norm_below(1e-3)), [1.0] * 30, grads)
    assert int(s.switch_step) == 25 and sj.optim.reason_names(int(s.reason)) == ["after_steps", "grad_norm"]
    _, s = _drive(_two_sgd(sj.optim.after_steps(3) & sj.optim.grad_norm_below(1e-3)), [1.0] * 10, [[1.0, 0.0]] * 10)
    assert int(s.switches) == 0  # `&` needs both at the same step
    bits = sj.optim.REASON_BITS
    assert sj.optim.reason_names(bits["after_steps"] | bits["curvature"]) == ["after_steps", "curvature"]
    assert sj.optim.reason_names(0) == []
    custom = sj.optim.FunctionCriterion(lambda ctx: ctx.value < 0.5)
    _, s = _drive(_two_sgd(custom), [1.0, 0.8, 0.4, 0.3], [[1.0, 0.0]] * 4)
    assert int(s.switch_step) == 2 and sj.optim.reason_names(int(s.reason)) == ["custom"]


# linear least squares r = A θ - b: the Gauss-Newton model is exact (agreement = 1)
_LA = jnp.asarray(np.linalg.qr(_RNG.normal(size=(10, 4)))[0] @ np.diag([3.0, 2.0, 1.5, 1.0]))
_LB = jnp.asarray(_RNG.normal(size=10))


def _lin_residual(p):
    return _LA @ p - _LB


def _lin_loss(p):
    return 0.5 * jnp.sum(_lin_residual(p) ** 2)


def _run_linear(hyb, steps):
    step = jax.jit(lambda p, s: hyb.update(jax.grad(_lin_loss)(p), s, p, value=_lin_loss(p),
                                           grad=jax.grad(_lin_loss)(p), value_fn=_lin_loss, residual_fn=_lin_residual))
    p = jnp.zeros(4)
    s = hyb.init(p)
    phases = []
    for _ in range(steps):
        u, s = step(p, s)
        p = p + u
        phases.append(int(s.phase))
    return s, phases


def test_curvature_model_fires_when_first_order_crawls_and_model_is_exact():
    crit = sj.optim.curvature_model(ratio=0.1, agreement=0.5, window=10, every=5)
    s, phases = _run_linear(sj.optim.hybrid(optax.adam(1e-5), optax.sgd(0.0), crit, guard_factor=None), 30)
    # first check: 10 steps recorded (> window) at a multiple of `every`
    assert int(s.switch_step) == 10 and phases.index(1) == 10
    assert sj.optim.reason_names(int(s.reason)) == ["curvature"]
    cs = s.criterion_state
    # linear least squares: the quadratic model is exact, so actual / predicted Cauchy decrease = 1 (to rounding)
    assert abs(float(cs.agreement) - 1.0) < 1e-10
    assert float(cs.efficiency) < 0.1  # Adam at lr 1e-5 realises a tiny fraction of a Cauchy step


def test_curvature_model_does_not_fire_while_loss_drops_fast():
    crit = sj.optim.curvature_model(ratio=0.1, agreement=0.5, window=10, every=5)
    # gradient descent at step 1/σ_max²: the loss falls by ≥ 20 % per step (σ in [1, 3])
    s, phases = _run_linear(sj.optim.hybrid(optax.sgd(1.0 / 9.0), optax.sgd(0.0), crit, guard_factor=None), 60)
    assert int(s.switches) == 0 and set(phases) == {0}
    eff = float(s.criterion_state.efficiency)
    assert np.isfinite(eff) and eff > 0.1  # measured and large, not merely skipped


# ------------------------------------------------------------------------------------------- divergence guard


def _quad_residual(params, batch):
    return batch["data"][0][:, 0] * params["w"] - batch["data"][1]


_QBATCH = {"data": (jnp.linspace(0.5, 2.0, 6)[:, None], jnp.linspace(1.0, 4.0, 6))}


def _guarded(second, max_fallbacks=2, fallback_steps=4, k=3):
    return sj.optim.hybrid(optax.adam(1e-2), second, sj.optim.after_steps(k), guard_factor=10.0,
                           fallback_steps=fallback_steps, max_fallbacks=max_fallbacks)


def test_divergence_guard_rolls_back_and_gives_up_after_max_fallbacks():
    res = lambda p: _quad_residual(p, _QBATCH)  # noqa: E731
    lossf = lambda p: 0.5 * jnp.sum(res(p) ** 2)  # noqa: E731
    hyb = _guarded(optax.sgd(1e3))  # the aggressive second optimizer overshoots by orders of magnitude

    @jax.jit
    def step(p, s):
        v, g = jax.value_and_grad(lossf)(p)
        u, s = hyb.update(g, s, p, value=v, grad=g, value_fn=lossf, residual_fn=res)
        return optax.apply_updates(p, u), s

    p, s = {"w": jnp.asarray(0.0)}, hyb.init({"w": jnp.asarray(0.0)})
    record = []
    for _ in range(30):
        before = p
        p, s = step(p, s)
        record.append((before, p, int(s.phase), int(s.fallbacks), int(s.switches)))
    # switch at 3, rollback in the same step; criterion held for fallback_steps; retry at 8 and 13; then give up
    fallbacks = [0] + [r[3] for r in record]
    rollback_steps = [i for i in range(len(record)) if fallbacks[i + 1] > fallbacks[i]]
    assert rollback_steps == [3, 8, 13]
    for i in rollback_steps:  # a rolled-back step leaves the parameters at the anchor (= params at the switch)
        assert float(record[i][1]["w"]) == float(record[i][0]["w"])
    assert int(s.fallbacks) == 3 and int(s.switches) == 3 and int(s.phase) == 2  # max_fallbacks retries, then stay
    assert [r[2] for r in record][14:] == [2] * 16
    assert np.isfinite(float(lossf(p))) and float(lossf(p)) < float(lossf({"w": jnp.asarray(0.0)}))


def test_divergence_guard_catches_non_finite_steps():
    nan_tx = optax.GradientTransformation(
        lambda p: optax.EmptyState(), lambda u, s, p=None: (jax.tree.map(lambda x: x * jnp.nan, u), s)
    )
    res = lambda p: _quad_residual(p, _QBATCH)  # noqa: E731
    lossf = lambda p: 0.5 * jnp.sum(res(p) ** 2)  # noqa: E731
    hyb = _guarded(nan_tx, max_fallbacks=0, k=2)
    p, s = {"w": jnp.asarray(0.5)}, hyb.init({"w": jnp.asarray(0.5)})
    for _ in range(6):
        v, g = jax.value_and_grad(lossf)(p)
        u, s = hyb.update(g, s, p, value=v, grad=g, value_fn=lossf)
        p = optax.apply_updates(p, u)
        assert np.isfinite(float(p["w"]))
    assert int(s.fallbacks) == 1 and int(s.phase) == 2


def test_fit_records_switch_and_fallback_events():
    out = sj.train.fit(_quad_residual, {"w": jnp.asarray(0.0)}, _QBATCH, _guarded(optax.sgd(1e3)), 30,
                       eval_every=10, progress=False)
    assert out.status == "completed" and np.isfinite(out.history.loss[-1])
    ev = [(e["step"], e["kind"], e.get("final", None), tuple(e.get("criteria", ()))) for e in out.history.events]
    assert ev == [
        (3, "switch", None, ("after_steps",)), (3, "fallback", False, ()),
        (8, "switch", None, ("after_steps",)), (8, "fallback", False, ()),
        (13, "switch", None, ("after_steps",)), (13, "fallback", True, ()),
    ]
    assert out.history.info["hybrid.phase"][-1] == 2


# ------------------------------------------------------------------------------------------- LM damping, L-BFGS stalls


def test_levenberg_marquardt_damping_follows_gain_ratio():
    """Scalar r(θ) = arctan(θ): from θ = 2 the undamped GN step overshoots (rejected); from 0.5 it is accepted."""
    f = lambda th: jnp.arctan(th)[None]  # noqa: E731
    lm = sj.optim.levenberg_marquardt(damping=1e-8, solver="dense_param")
    s0 = lm.init(jnp.asarray(2.0))
    u, s1 = lm.update(None, s0, jnp.asarray(2.0), residual_fn=f)
    assert float(u) == 0.0 and int(s1.rejected) == 1 and int(s1.accepted) == 0
    assert float(s1.damping) == pytest.approx(2e-8, rel=1e-12) and float(s1.nu) == 4.0  # λ·ν, ν doubles
    _, s2 = lm.update(None, s1, jnp.asarray(2.0), residual_fn=f)
    assert float(s2.damping) == pytest.approx(8e-8, rel=1e-12) and float(s2.nu) == 8.0

    # accepted step: check Nielsen's rule against an independent numpy evaluation of the gain ratio
    th, lam = 0.5, 1e-3
    s = lm.init(jnp.asarray(th))._replace(damping=jnp.asarray(lam), nu=jnp.asarray(8.0))
    u, s3 = lm.update(None, s, jnp.asarray(th), residual_fn=f)
    r, j = np.arctan(th), 1.0 / (1.0 + th**2)
    d = -j * r / (j * j + lam)
    pred = -(r * j * d + 0.5 * (j * d) ** 2)
    rho = (0.5 * r**2 - 0.5 * np.arctan(th + d) ** 2) / pred
    assert float(u) == pytest.approx(d, rel=1e-12) and int(s3.accepted) == 1
    assert float(s3.gain_ratio) == pytest.approx(rho, rel=1e-9)
    assert float(s3.damping) == pytest.approx(lam * max(1 / 3, 1 - (2 * rho - 1) ** 3), rel=1e-9)
    assert float(s3.damping) < lam and float(s3.nu) == 2.0  # accepted: λ decreases, ν resets


def _lbfgs_loss(p):
    return jnp.sum((p - 1.0) ** 2) + 0.1 * jnp.sum((p - 1.0) ** 4)


@pytest.mark.slow
def test_lbfgs_counts_stalls():
    opt = sj.optim.lbfgs(stall_rtol=1e-6)

    @jax.jit
    def step(p, s, offset):  # value_fn = L + offset: offset != 0 makes it inconsistent with the gradient
        v, g = jax.value_and_grad(_lbfgs_loss)(p)
        return opt.update(g, s, p, value=v, grad=g, value_fn=lambda x: _lbfgs_loss(x) + offset)

    # at the exact minimiser the gradient is zero: the update is exactly zero, a stall every step
    p, s = jnp.ones(3), opt.init(jnp.ones(3))
    for _ in range(3):
        u, s = step(p, s, 0.0)
        assert np.all(np.asarray(u) == 0.0)
    assert int(s.stalls) == 3 and int(s.consecutive_stalls) == 3 and float(s.step_norm) == 0.0
    # a productive step resets the consecutive count
    q = jnp.full(3, 0.5)
    u, s = step(q, opt.init(q), 0.0)
    assert int(s.consecutive_stalls) == 0 and int(s.stalls) == 0 and float(s.step_norm) > 1e-3

    # a value_fn inconsistent with the gradient (always 10 higher): the line search finds no sufficient decrease,
    # returns a negligible step (not zero: optax keeps its last trial) and reports the failure; relative to
    # stall_rtol that is a stall
    p, s = q, opt.init(q)
    for _ in range(2):
        u, s = step(p, s, 10.0)
        p = p + u
    assert int(s.stalls) == 2 and int(s.consecutive_stalls) == 2
    assert float(s.decrease_error) > 0  # the failed sufficient-decrease condition is visible
    assert int(s.linesearch_steps) == 30  # the full line-search budget was spent


# ------------------------------------------------------------------------------------------- registry validation


def test_unknown_optimizer_and_option_are_rejected_with_the_allowed_ones():
    with pytest.raises(ValueError, match=r"unknown name 'adamw'.*adam.*lbfgs"):
        sj.optim.get("adamw")
    with pytest.raises(ValueError, match=r"optimizer\.lr: unknown option for 'adam'; allowed: learning_rate"):
        sj.optim.get("adam", lr=1e-3)
    with pytest.raises(ValueError, match=r"memory_size"):
        sj.optim.get("lbfgs", memory=5)
    with pytest.raises(ValueError, match=r"solver: unknown 'svd'"):
        sj.optim.get("levenberg_marquardt", solver="svd")
    with pytest.raises(ValueError, match=r"optimizer\.first: .*unknown option.*learning_rate"):
        sj.optim.get("hybrid", first={"name": "adam", "lr": 1e-3})
    with pytest.raises(ValueError, match=r"schedule: unknown name 'cosine'"):
        sj.optim.get("adam", learning_rate={"name": "cosine"})


def test_unknown_switch_criterion_and_option_are_rejected():
    with pytest.raises(ValueError, match=r"switch\.plateu: unknown criterion; allowed: after_steps, plateau"):
        sj.optim.criterion({"plateu": {"window": 5}})
    with pytest.raises(ValueError, match=r"switch\.plateau\.windw: unknown option; allowed: window"):
        sj.optim.criterion({"plateau": {"windw": 5}})
    with pytest.raises(ValueError, match=r"mode: 'some'"):
        sj.optim.criterion({"after_steps": 5, "mode": "some"})
    with pytest.raises(ValueError, match=r"switch"):
        sj.optim.hybrid(optax.adam(1e-3), optax.sgd(1e-3), switch="after_steps")
    with pytest.raises(ValueError, match=r"guard_factor"):
        sj.optim.hybrid(optax.adam(1e-3), optax.sgd(1e-3), sj.optim.after_steps(1), guard_factor=0.5)


@pytest.mark.slow
def test_nested_hybrid_config_builds_and_switches_on_grad_norm():
    opt = sj.optim.get(
        "hybrid",
        first={"name": "adam", "learning_rate": 1e-3},
        second={"name": "lbfgs"},
        switch={"plateau": {"window": 50}, "grad_norm": {"tol": 1e-3}, "mode": "any"},
    )
    p = {"w": _W_STAR + 1e-6, "c": _C_STAR}  # near θ*: |∇L| << 1e-3, the grad_norm part of the `any` must fire
    g, kw = extras(p)
    _, s = opt.update(g, opt.init(p), p, **kw)
    assert int(s.phase) == 1 and int(s.switch_step) == 0
    assert sj.optim.reason_names(int(s.reason)) == ["grad_norm"]


def test_equal_options_give_the_same_transform_and_share_the_compiled_step():
    """Optimizers built twice with equal options are one object (fit's compile cache knows transforms by the
    identity of their functions), so the second fit compiles nothing; other options give another transform."""
    assert sj.optim.lbfgs() is sj.optim.lbfgs()
    assert sj.optim.lbfgs(memory_size=5) is not sj.optim.lbfgs(memory_size=6)
    spec = dict(first={"name": "adam", "learning_rate": 1e-3}, second={"name": "lbfgs"}, switch={"after_steps": 5})
    assert sj.optim.get("hybrid", **spec) is sj.optim.get("hybrid", **spec)
    assert sj.optim.get("hybrid", **{**spec, "switch": {"after_steps": 6}}) is not sj.optim.get("hybrid", **spec)
    # 1 and 1.0 are different options (types kept apart in the key)
    assert sj.optim.levenberg_marquardt(damping=1) is not sj.optim.levenberg_marquardt(damping=1.0)

    prob = sj.problems.get("poisson_1d", k=1)
    params, apply = sj.nn.functional(sj.nn.MLP(1, 1, 4, 1, key=jax.random.PRNGKey(0)))
    batch = sj.sampling.sample(prob.domain, {"interior": 8, "boundary": 2}, "sobol", 0)
    res = sj.pinn.residual(prob, apply)
    sj.train.fit(res, params, batch, sj.optim.lbfgs(memory_size=3), 4, progress=False)
    misses = sj.train.cache_info()["misses"]
    again = sj.train.fit(res, params, batch, sj.optim.lbfgs(memory_size=3), 4, progress=False)
    assert sj.train.cache_info()["misses"] == misses and again.compile_time_s == 0.0
