"""Subprocess worker for tests/test_sharding.py: single-device vs data-parallel runs on forced host devices.

Run with ``XLA_FLAGS=--xla_force_host_platform_device_count=4 JAX_ENABLE_X64=1 JAX_PLATFORMS=cpu``; prints one
JSON object (the last line of stdout) with the differences between a single-device run and a run whose points are
split over the 4 devices: loss, gradient, per-point Jacobian, and 50-step trajectories (loss per step, final
parameters) of Adam (loss weights kept in the batch as replicated scalars), L-BFGS and Levenberg-Marquardt
(dense Cholesky of JᵀJ with J from fit's per-point Jacobian).
Nothing is asserted here; the test does that.
"""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

import sciml_jax as sj

STEPS = 50


def rel(a, b) -> float:
    """max |a - b| / max |b| (0 when both vanish)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = float(np.max(np.abs(b))) or 1.0
    return float(np.max(np.abs(a - b))) / scale


def main() -> None:
    out: dict = {"devices": len(jax.devices()), "x64": bool(jax.config.jax_enable_x64)}
    prob = sj.problems.get("poisson_nd", dim=2, k=1)
    model = sj.nn.MLP(2, 1, 8, 2, activation="tanh", key=jax.random.PRNGKey(0))
    params, apply = sj.nn.functional(model)
    residual = sj.pinn.residual(prob, apply)
    batch = sj.sampling.sample(prob.domain, {"interior": 64, "boundary": 16}, "sobol", 0)
    spec = sj.train.data_parallel(4)

    sharded = sj.train.shard_batch(batch, spec)
    out["shard_rows"] = {k: sorted({int(s.data.shape[0]) for s in v.addressable_shards}) for k, v in sharded.items()}
    out["shard_devices"] = {k: len({s.device for s in v.addressable_shards}) for k, v in sharded.items()}

    vg = jax.jit(jax.value_and_grad(residual.loss))
    (l1, g1), (l4, g4) = vg(params, batch), vg(sj.train.replicate(params, spec), sharded)
    out["loss_rel"] = rel(l4, l1)
    out["grad_rel"] = rel(ravel_pytree(g4)[0], ravel_pytree(g1)[0])

    jac = jax.jit(lambda p, b: sj.analysis.jacobian(residual, p, b))
    j1, j4 = jac(params, batch), jac(params, sharded)
    out["jacobian_rel"] = rel(j4, j1)
    out["jacobian_devices"] = len(j4.sharding.device_set)

    # scalar batch leaves (loss weights read from the batch) are replicated, point arrays split
    weighted = sj.analysis.WeightsFromBatch(residual)
    wbatch = sj.analysis.with_weights(batch, {"pde": 1.0, "bc": 10.0})

    runs = {
        "adam": (weighted, wbatch, lambda: optax.adam(1e-3)),
        "lbfgs": (residual, batch, lambda: sj.optim.lbfgs()),
        "lm_dense": (residual, batch, lambda: sj.optim.levenberg_marquardt(solver="dense_param")),
    }
    out["runs"] = {}
    for name, (res, b, make) in runs.items():
        r1 = sj.train.fit(res, params, b, make(), STEPS, eval_every=STEPS, progress=False)
        r4 = sj.train.fit(res, params, b, make(), STEPS, eval_every=STEPS, progress=False, sharding=spec)
        loss1, loss4 = np.asarray(r1.history.loss), np.asarray(r4.history.loss)
        out["runs"][name] = {
            "steps": [r1.step, r4.step],
            "status": [r1.status, r4.status],
            "loss_first_last": [float(loss1[0]), float(loss1[-1])],
            "loss_traj_rel": rel(loss4, loss1) if loss1.shape == loss4.shape else float("inf"),
            "loss_step_rel": (np.abs(loss4 - loss1) / np.abs(loss1)).tolist() if loss1.shape == loss4.shape else None,
            "params_rel": rel(ravel_pytree(r4.params)[0], ravel_pytree(r1.params)[0]),
            "params_devices": len(jax.tree.leaves(r4.params)[0].sharding.device_set),
            "wall_s": [r1.wall_time_s, r4.wall_time_s],
            "compile_s": [r1.compile_time_s, r4.compile_time_s],
        }

    try:
        sj.train.shard_batch({"interior": jnp.zeros((130, 2))}, spec)
        out["indivisible_error"] = None
    except ValueError as e:
        out["indivisible_error"] = str(e)
    try:
        sj.train.data_parallel(5)
        out["too_many_devices_error"] = None
    except ValueError as e:
        out["too_many_devices_error"] = str(e)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
