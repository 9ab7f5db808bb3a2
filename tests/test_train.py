"""fit(): convergence, single compilation, bit-identical resume, non-finite guard, optax compatibility."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import sciml_jax as sj


def _setup(counter=None):
    prob = sj.problems.get("poisson_1d", k=1)
    model = sj.nn.MLP(1, 1, 16, 2, key=jax.random.PRNGKey(0))
    params, apply = sj.nn.functional(model)
    if counter is not None:
        inner = apply

        def apply(p, x):  # counts Python-level traces of the model
            counter.append(1)
            return inner(p, x)

    batch = sj.sampling.sample(prob.domain, {"interior": 32, "boundary": 2}, "sobol", 0)
    return prob, params, apply, batch, sj.pinn.residual(prob, apply)


def _leaves_equal(a, b):
    return all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


@pytest.mark.slow
def test_adam_reduces_loss_and_records_history():
    prob, params, apply, batch, res = _setup()
    out = sj.train.fit(res, params, batch, optax.adam(1e-2), 300, metrics={"rel_l2": sj.pinn.rel_l2(prob, apply)},
                       eval_every=100, progress=False)
    h = out.history
    assert out.status == "completed" and out.step == 300
    assert len(h.loss) == 300 and h.steps == list(range(300))
    assert h.eval_steps == [0, 100, 200, 300]
    assert set(h.terms) == set(prob.terms)
    assert h.loss[-1] < 1e-2 * h.loss[0]  # Adam on a k=1 Poisson problem: two orders of magnitude in 300 steps
    assert h.metrics["rel_l2"][-1] < h.metrics["rel_l2"][0]
    # per-step history equals the loss evaluated independently at the start parameters
    assert h.loss[0] == pytest.approx(float(res.loss(params, batch)), rel=1e-13)
    assert jax.tree.leaves(out.params)[0].dtype == jnp.float64


def test_compiles_once_regardless_of_chunk_count():
    counts = []
    for steps in (10, 45):  # one chunk vs five chunks (the last one partial, masked)
        counter = []
        _, params, _, batch, res = _setup(counter)
        sj.train.fit(res, params, batch, optax.adam(1e-3), steps, eval_every=10, progress=False)
        counts.append(len(counter))
    assert counts[0] == counts[1] > 0


def test_resume_is_bit_identical(tmp_path):
    _, params, _, batch, res = _setup()
    opt = optax.adam(3e-3)
    straight = sj.train.fit(res, params, batch, opt, 100, eval_every=25, progress=False)
    first = sj.train.fit(res, params, batch, opt, 50, eval_every=25, progress=False, checkpoint_dir=tmp_path)
    assert first.step == 50
    second = sj.train.fit(res, params, batch, opt, 100, eval_every=25, progress=False, checkpoint_dir=tmp_path,
                          resume=True)
    assert second.step == 100
    assert _leaves_equal(straight.params, second.params)
    assert _leaves_equal(straight.opt_state, second.opt_state)
    assert straight.history.loss == second.history.loss  # exact float equality, every step


def test_periodic_checkpoint_then_resume(tmp_path):
    _, params, _, batch, res = _setup()
    opt = optax.adam(3e-3)
    straight = sj.train.fit(res, params, batch, opt, 60, eval_every=20, progress=False)
    # a run that is "interrupted" after its checkpoint at step 40: simulate by asking for 40 steps with checkpoints
    sj.train.fit(res, params, batch, opt, 40, eval_every=20, checkpoint_every=20, checkpoint_dir=tmp_path,
                 progress=False)
    resumed = sj.train.fit(res, params, batch, opt, 60, eval_every=20, checkpoint_dir=tmp_path, resume=True,
                           progress=False)
    assert _leaves_equal(straight.params, resumed.params)


def test_nonfinite_loss_stops_and_returns_last_finite_params():
    _, params, _, batch, res = _setup()
    out = sj.train.fit(res, params, batch, optax.sgd(1e4), 200, eval_every=50, progress=False)
    assert out.status == "nonfinite"
    assert "non-finite" in out.message and str(out.step) in out.message
    assert out.step < 200
    assert np.isfinite(float(res.loss(out.params, batch)))
    assert all(np.isfinite(v) for v in out.history.loss)
    assert len(out.history.loss) == out.step


@pytest.mark.slow
def test_optax_lbfgs_works_as_is_and_inside_a_chain():
    _, params, _, batch, res = _setup()
    adam = sj.train.fit(res, params, batch, optax.adam(1e-2), 200, eval_every=100, progress=False)
    for opt in (optax.lbfgs(), optax.chain(optax.clip_by_global_norm(1e3), optax.lbfgs())):
        out = sj.train.fit(res, adam.params, batch, opt, 100, eval_every=50, progress=False)
        assert out.status == "completed"
        assert out.history.loss[-1] < 1e-2 * adam.history.loss[-1]  # quasi-Newton refines far beyond Adam's loss


@pytest.mark.slow
def test_extra_args_reach_the_optimizer():
    _, params, _, batch, res = _setup()

    def init(p):
        return jnp.zeros((), jnp.float64)

    def update(updates, state, p=None, *, value, grad, value_fn, residual_fn, **extra):
        r = residual_fn(p)
        # the state records how far value, value_fn(p), ½‖residual_fn(p)‖² and grad are from each other
        mismatch = jnp.abs(0.5 * jnp.sum(r**2) - value) + jnp.abs(value_fn(p) - value)
        mismatch += optax.tree.norm(jax.tree.map(lambda a, b: a - b, grad, updates))
        return jax.tree.map(jnp.zeros_like, updates), jnp.maximum(state, mismatch)

    out = sj.train.fit(res, params, batch, optax.GradientTransformationExtraArgs(init, update), 3, eval_every=3,
                       progress=False)
    assert out.status == "completed"
    assert float(out.opt_state) < 1e-12  # float64 round-off


@pytest.mark.slow
def test_callbacks_stop_and_replace_batch():
    prob, params, _, batch, res = _setup()
    calls = []

    def cb(step, params, opt_state, batch, history):
        calls.append(step)
        if step == 20:
            new = sj.sampling.sample(prob.domain, {"interior": 32, "boundary": 2}, "uniform", 5)
            return {"batch": new}
        if step == 40:
            return "stop"
        return None

    out = sj.train.fit(res, params, batch, optax.adam(1e-3), 100, eval_every=10, callbacks=[cb], progress=False)
    assert out.status == "stopped" and out.step == 40 and calls == [10, 20, 30, 40]
    assert not np.array_equal(np.asarray(out.batch["interior"]), np.asarray(batch["interior"]))

    def bad(step, **_):
        return {"batch": {"interior": batch["interior"][:5], "boundary": batch["boundary"]}}

    with pytest.raises(ValueError, match="shapes"):
        sj.train.fit(res, params, batch, optax.adam(1e-3), 20, eval_every=10, callbacks=[bad], progress=False)


@pytest.mark.parametrize(
    "kwargs, match",
    [({"steps": -1}, "steps"), ({"eval_every": 0}, "eval_every"), ({"chunk": 0}, "chunk"),
     ({"resume": True}, "checkpoint_dir"), ({"optimizer": "adam"}, "optimizer")],
)
def test_fit_validates_arguments(kwargs, match):
    _, params, _, batch, res = _setup()
    args = {"optimizer": optax.adam(1e-3), "steps": 10}
    args.update(kwargs)
    opt, steps = args.pop("optimizer"), args.pop("steps")
    with pytest.raises(ValueError, match=match):
        sj.train.fit(res, params, batch, opt, steps, progress=False, **args)


@pytest.mark.slow
def test_fit_stages_compiles_once_per_stage_and_concatenates_history():
    prob = sj.problems.get("poisson_1d", k=1)
    counter = []
    _, params, apply, _, res = _setup(counter)
    key = 3
    batches = [sj.sampling.sample(prob.domain, {"interior": n, "boundary": 2}, "sobol", key) for n in (8, 16, 32)]
    # Sobol points with the same key are nested prefixes: growing the set keeps the earlier points
    np.testing.assert_array_equal(np.asarray(batches[2]["interior"][:16]), np.asarray(batches[1]["interior"]))
    out = sj.train.fit_stages(res, params, batches, [30, 30, 40], optax.adam(1e-2), eval_every=10, progress=False)
    assert out.status == "completed" and out.step == 100
    h = out.history
    assert h.steps == list(range(100)) and len(h.loss) == 100
    assert [e["step"] for e in h.events if e["kind"] == "stage"] == [0, 30, 60]
    assert h.eval_steps == list(range(10, 101, 10))  # no metrics: no evaluation at step 0
    assert sorted(h.wall_time_s) == h.wall_time_s  # cumulative across stages
    # one compile per stage (three shapes), and none when the same stages run again with one optimizer object
    opt = optax.adam(1e-2)
    before = sj.train.cache_info()["misses"]
    sj.train.fit_stages(res, params, batches, [10, 10, 10], opt, eval_every=10, progress=False)
    assert sj.train.cache_info()["misses"] == before + 3
    sj.train.fit_stages(res, params, batches, [20, 10, 10], opt, eval_every=10, progress=False)
    assert sj.train.cache_info()["misses"] == before + 3
    with pytest.raises(ValueError, match="same non-zero length"):
        sj.train.fit_stages(res, params, batches, [10, 10], optax.adam(1e-2))


def test_lbfgs_reuses_the_line_search_evaluation_and_resumes_bit_identically(tmp_path):
    _, params, _, batch, res = _setup()
    opt = sj.optim.lbfgs(memory_size=10)
    out = sj.train.fit(res, params, batch, opt, 60, eval_every=20, progress=False)
    h = out.history
    cached = np.asarray(h.info[sj.train.CACHED_KEY])
    assert cached[0] == 0 and cached[1:].mean() > 0.9  # the first step evaluates, later ones start from the search
    evals_per_iteration = np.mean(h.info["lbfgs.linesearch_steps"]) + 1.0 - cached.mean()
    assert evals_per_iteration < 1.5, evals_per_iteration
    # a reused loss is the loss at those parameters: the logged loss of the last step equals a fresh evaluation
    # at the parameters before it (replay the run to step 59 and evaluate)
    replay = sj.train.fit(res, params, batch, opt, 59, eval_every=20, progress=False)
    assert h.loss[59] == pytest.approx(float(res.loss(replay.params, batch)), rel=1e-12, abs=1e-300)
    # resuming continues from the stored value and gradient: bit-identical to the uninterrupted run
    sj.train.fit(res, params, batch, opt, 40, eval_every=20, checkpoint_dir=tmp_path, progress=False)
    resumed = sj.train.fit(res, params, batch, opt, 60, eval_every=20, checkpoint_dir=tmp_path, resume=True,
                           progress=False)
    assert _leaves_equal(resumed.params, out.params) and resumed.history.loss == h.loss
