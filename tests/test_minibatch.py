"""Stochastic mini-batch training inside fit: fixed shapes, one compilation, epochs, bit-identical resume."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import sciml_jax as sj
from sciml_jax.problems import Problem, Term


def _regression(n=64):
    x = np.linspace(-1, 1, n)[:, None]
    prob = Problem("sine_fit", sj.geometry.Interval(-1.0, 1.0), {"data": Term("obs", lambda u, x, y: u(x) - y)},
                   observations={"obs": (x, np.sin(3 * x[:, 0]))})
    params, apply = sj.nn.functional(sj.nn.MLP(1, 1, 16, 2, key=jax.random.PRNGKey(0)))
    return prob, params, apply, prob.batch()


def test_minibatches_cover_every_row_once_per_epoch():
    batch = {"obs": (jnp.arange(10.0)[:, None], jnp.arange(10.0))}
    key = jax.random.key(3)
    seen = [np.asarray(sj.train._fit._minibatch(batch, {"obs": 4}, key, jnp.asarray(s))["obs"][1]) for s in range(4)]
    epoch0 = np.concatenate(seen[:2])  # 10 // 4 = 2 steps per epoch, 2 rows wait for a later epoch
    assert len(set(epoch0.tolist())) == 8
    assert not np.array_equal(np.sort(seen[0]), np.sort(seen[2]))  # a new permutation in the next epoch
    for s in seen:  # x and y rows stay paired
        assert s.shape == (4,)


def test_minibatch_fit_compiles_once_and_learns():
    prob, params, apply, batch = _regression()
    res = sj.pinn.residual(prob, apply)
    opt = optax.adam(1e-2)
    before = sj.train.cache_info()["misses"]
    out = sj.train.fit(res, params, batch, opt, 300, eval_every=50, minibatch={"obs": 16}, key=1, progress=False)
    assert sj.train.cache_info()["misses"] == before + 1  # one program for every chunk and every epoch
    full = float(res.loss(out.params, batch))
    assert full < 0.1 * float(res.loss(params, batch))
    # another key, same shapes: no new compilation, other mini-batches
    other = sj.train.fit(res, params, batch, opt, 300, eval_every=50, minibatch={"obs": 16}, key=2, progress=False)
    assert sj.train.cache_info()["misses"] == before + 1
    assert other.history.loss[5] != out.history.loss[5]
    with pytest.raises(ValueError, match=r"minibatch\['obs'\]: expected an integer in \[1, 64\]"):
        sj.train.fit(res, params, batch, opt, 10, minibatch={"obs": 100}, progress=False)
    with pytest.raises(ValueError, match="'nope' is not a batch entry"):
        sj.train.fit(res, params, batch, opt, 10, minibatch={"nope": 4}, progress=False)


def test_minibatch_resume_mid_epoch_is_bit_identical(tmp_path):
    prob, params, apply, batch = _regression(60)
    res = sj.pinn.residual(prob, apply)
    opt = optax.adam(3e-3)
    kw = dict(eval_every=7, minibatch={"obs": 8}, key=5, progress=False)  # 7 steps per epoch of 60 // 8: mid-epoch
    straight = sj.train.fit(res, params, batch, opt, 35, **kw)
    sj.train.fit(res, params, batch, opt, 17, checkpoint_dir=tmp_path, chunk=7, **{k: v for k, v in kw.items()
                                                                                    if k != "eval_every"},
                 eval_every=7)
    resumed = sj.train.fit(res, params, batch, opt, 35, checkpoint_dir=tmp_path, resume=True, **kw)
    for a, b in zip(jax.tree.leaves(straight.params), jax.tree.leaves(resumed.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert straight.history.loss == resumed.history.loss
