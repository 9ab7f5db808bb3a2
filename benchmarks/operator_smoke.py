"""Smoke check of operator learning: data-set generation times and a DeepONet trained with Adam on the antiderivative.

    PYTHONPATH=$PWD nice -n 10 python benchmarks/operator_smoke.py [--steps 10000] [--seeds 0 1 2] [--out FILE.json]

Float64. Generates each data set at its default size (timed, JAX start-up excluded), then trains the DeepONet of
Lu et al. (2021) for the antiderivative (branch and trunk 2 x 40, p = 40, tanh) with Adam through
``sj.train.fit`` on a plain residual built from ``sj.nn.deeponet_grid``, and reports the test relative L2 error
(over all test functions and query points) at every evaluation: final, best and median of the last five.

Two training layouts of the same 1000 training functions:
  * ``grid``: every function observed at the 100 sensors (s_grid), query points shared by all functions, so the
    trunk runs 100 times per step (1e5 pairs);
  * ``random``: the paper's layout, Q = 10 random query points per function (1e4 triplets), trunk per point.

``--lbfgs-after K`` switches from Adam to L-BFGS after K steps (``sj.optim.hybrid``).
"""

from __future__ import annotations

import argparse
import json
import os
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

import sciml_jax as sj  # noqa: E402


def time_generators() -> dict:
    jax.random.key(0)  # JAX start-up outside the timings
    out = {}
    for name in ("antiderivative", "diffusion_reaction", "burgers"):
        t0, c0 = time.perf_counter(), time.process_time()
        data = getattr(sj.datasets, name)(key=0)
        out[name] = {
            "seconds": time.perf_counter() - t0,
            "cpu_seconds": time.process_time() - c0,
            "train": {k: list(getattr(data.train, k).shape) for k in data.train._fields},
            "test": {k: list(getattr(data.test, k).shape) for k in data.test._fields},
        }
    return out


def train(layout: str, seed: int, steps: int, lr: float, lbfgs_after: int | None = None) -> dict:
    data = sj.datasets.antiderivative(key=100 + seed, n_queries=10 if layout == "random" else 100)
    model = sj.nn.DeepONet(100, 1, 40, 2, 40, "tanh", key=jax.random.key(seed))
    params, _ = sj.nn.functional(model)
    if layout == "grid":
        U, S = data.fno_entry("train")
        Y = jnp.asarray(data.sensors[:, None])
        batch = {"data": (U, S)}

        def residual(p, batch):
            U, S = batch["data"]
            return (sj.nn.deeponet_grid(p, model, U, Y) - S).ravel() / jnp.sqrt(S.size)
    else:
        batch = {"data": data.deeponet_grid_entry("train")}

        def residual(p, batch):
            U, Yb, S = batch["data"]
            return (sj.nn.deeponet_grid(p, model, U, Yb) - S).ravel() / jnp.sqrt(S.size)

    Ut, Yt, St = data.deeponet_grid_entry("test")
    norm = jnp.linalg.norm(St)

    def test_rel_l2(p):
        return jnp.linalg.norm(sj.nn.deeponet_grid(p, model, Ut, Yt) - St) / norm

    schedule = optax.exponential_decay(lr, transition_steps=steps, decay_rate=0.1)  # lr -> lr / 10 at the end
    optimizer = optax.adam(schedule)
    if lbfgs_after is not None:  # Adam, then L-BFGS (sj.optim.hybrid)
        optimizer = sj.optim.hybrid(optimizer, sj.optim.lbfgs(), sj.optim.after_steps(lbfgs_after))
    result = sj.train.fit(
        residual,
        params,
        batch,
        optimizer,
        steps=steps,
        eval_every=max(steps // 20, 1),
        metrics={"test_rel_l2": test_rel_l2},
        progress=False,
    )
    errs = np.asarray(result.history.metrics["test_rel_l2"])  # evaluation 0 is the initial model
    times = np.asarray(result.history.wall_time_s)
    hit = np.nonzero(errs <= 1e-2)[0]
    return {
        "layout": layout,
        "optimizer": "adam" if lbfgs_after is None else f"adam, lbfgs from step {lbfgs_after}",
        "seed": seed,
        "steps": steps,
        "status": result.status,
        "wall_s": result.wall_time_s,
        "compile_s": result.compile_time_s,
        "final": float(errs[-1]),
        "best": float(np.min(errs)),
        "median_last5": float(np.median(errs[-5:])),
        "curve": [float(e) for e in errs],
        "first_below_1e-2": None
        if hit.size == 0
        else {"step": int(result.history.eval_steps[hit[0]]), "wall_s": float(times[hit[0]])},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=10000)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--layouts", nargs="+", default=["grid", "random"])
    parser.add_argument("--lbfgs-after", type=int, default=None, help="switch Adam -> L-BFGS after this many steps")
    parser.add_argument("--skip-generators", action="store_true")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    report = {"load_before": os.getloadavg()}
    if not args.skip_generators:
        report["generators"] = time_generators()
        print(json.dumps(report["generators"], indent=1), flush=True)
    report["runs"] = []
    for layout in args.layouts:
        for seed in args.seeds:
            run = train(layout, seed, args.steps, args.lr, args.lbfgs_after)
            report["runs"].append(run)
            print(json.dumps({k: v for k, v in run.items() if k != "curve"}), flush=True)
    report["load_after"] = os.getloadavg()
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
