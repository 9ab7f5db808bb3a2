"""ENGD on the setting of Müller & Zeinhofer (ICML 2023), from the default initialisation, with default options.

The paper's setting (github.com/MariusZeinhofer/Natural-Gradient-PINNs-ICML23, ``engd_poisson_2d.py``):
  -Δu = 2π² sin(πx) sin(πy) on (0, 1)², u = 0 on the boundary, exact u* = sin(πx) sin(πy);
  tanh MLP [2, 32, 1] (P = 129);
  interior: the 30 × 30 grid of [0, 1]² without its boundary rows, i.e. 28² = 784 points (spacing 1/29);
  boundary: 4 × 29 = 116 points, 29 per side (``linspace(0, 1, 30)`` without the last point, corners once);
  loss = mean_interior (Δu + f)² + 4 · mean_boundary u² (the boundary integral has measure 4), float64;
  the paper initialises N(0, 0.1²) and uses a pseudo-inverse and a 31-point grid line search.
Here: ``sj.nn.MLP(2, 1, width=32, depth=1)`` with its default (Glorot) initialisation, ``sj.problems.get("poisson_nd",
dim=2, k=1)`` with loss weight 4 on ``bc`` (so ½‖r‖² is half the paper's loss: the same minimiser and natural
gradient), ``sj.train.fit``, and rel. L2 error on the problem's 100 × 100 evaluation grid.

Reported per optimizer and seed: the first evaluation step with rel. L2 <= 4e-7 (evaluated every ``--eval-every``
steps), final, best and median of the last 5 evaluations; and ms per step of ENGD and LM (dense, same size)
timed side by side: each optimizer's jitted step (``sj.train.make_step``) compiled ahead of time and timed round
robin (``--repeats`` rounds), so machine load hits both alike.

Transfer check (``--transfer``): the same defaults on problems ENGD's defaults were not tuned on: poisson_1d k = 2
(MLP 1-20-20-20-1, 512 interior Sobol points) and heat_1d (MLP 2-20-20-1, 400 + 80 + 40 Sobol points).

Usage::

    nice -n 10 python benchmarks/engd_poisson2d.py                      # seeds 0 1 2, ENGD and LM, 300 steps
    nice -n 10 python benchmarks/engd_poisson2d.py --transfer --steps 200
    python benchmarks/engd_poisson2d.py --quick                         # smoke test (seed 0, 30 steps)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

TARGET = 4e-7


def engd_setting(seed: int):
    """(residual, params, batch, rel_l2, apply) for the paper's setting with seed ``seed``."""
    import jax
    import jax.numpy as jnp

    import sciml_jax as sj

    prob = sj.problems.get("poisson_nd", dim=2, k=1)
    g = np.linspace(0.0, 1.0, 30)
    xx, yy = np.meshgrid(g[1:-1], g[1:-1], indexing="ij")
    interior = np.stack([xx.ravel(), yy.ravel()], axis=1)
    fwd, back = g[:-1], g[::-1][:-1]
    zero, one = np.zeros(29), np.ones(29)
    boundary = np.concatenate([np.stack(c, axis=1) for c in ((fwd, zero), (one, fwd), (back, one), (zero, back))])
    batch = {"interior": jnp.asarray(interior), "boundary": jnp.asarray(boundary)}
    model = sj.nn.MLP(2, 1, width=32, depth=1, key=jax.random.PRNGKey(seed))
    params, apply = sj.nn.functional(model)
    residual = sj.pinn.residual(prob, apply, weights={"bc": 4.0})
    return residual, params, batch, sj.pinn.rel_l2(prob, apply)


def transfer_setting(name: str, seed: int):
    import jax

    import sciml_jax as sj

    if name == "poisson_1d_k2":
        prob = sj.problems.get("poisson_1d", k=2)
        model = sj.nn.MLP(1, 1, width=20, depth=3, key=jax.random.PRNGKey(seed))
        counts = {"interior": 512, "boundary": 2}
    else:
        prob = sj.problems.get("heat_1d")
        model = sj.nn.MLP(2, 1, width=20, depth=2, key=jax.random.PRNGKey(seed))
        counts = {"interior": 400, "boundary": 80, "initial": 40}
    params, apply = sj.nn.functional(model)
    batch = sj.sampling.sample(prob.domain, counts, "sobol", 0)
    return sj.pinn.residual(prob, apply), params, batch, sj.pinn.rel_l2(prob, apply)


def optimizers():
    import sciml_jax as sj

    return {"engd": sj.optim.engd, "lm": sj.optim.levenberg_marquardt}


def summarise(errors: np.ndarray, steps: np.ndarray) -> dict:
    hit = np.flatnonzero(errors <= TARGET)
    return {
        "first_step_at_target": int(steps[hit[0]]) if hit.size else None,
        "final": float(errors[-1]), "best": float(np.min(errors)), "median_last5": float(np.median(errors[-5:])),
    }


def run_accuracy(setting, names, seeds, steps, eval_every) -> dict:
    import sciml_jax as sj

    out = {}
    for name in names:
        for seed in seeds:
            residual, params, batch, err = setting(seed)
            opt = optimizers()[name]()
            load0 = os.getloadavg()[0]
            res = sj.train.fit(residual, params, batch, opt, steps, eval_every=eval_every, metrics={"rel_l2": err},
                               progress=False)
            h = res.history
            e = np.asarray(h.metrics["rel_l2"])
            row = {"optimizer": name, "seed": seed, **summarise(e, np.asarray(h.eval_steps)),
                   "fit_wall_s": res.wall_time_s, "compile_s": res.compile_time_s,
                   "loadavg": [load0, os.getloadavg()[0]], "status": res.status, "last_info": h.last_info(),
                   "curve": {"step": list(h.eval_steps), "rel_l2": e.tolist()}}
            out[f"{name}/seed{seed}"] = row
            print(f"[{name} seed {seed}] first <= {TARGET:g} at step {row['first_step_at_target']}, final "
                  f"{row['final']:.2e}, best {row['best']:.2e}, median(last 5) {row['median_last5']:.2e}, "
                  f"fit {res.wall_time_s:.1f} s (load {load0:.1f})", flush=True)
    return out


def run_timing(repeats: int, warmup: int) -> dict:
    """ms per step of ENGD and LM on the ENGD setting, compiled ahead of time, timed round robin."""
    import jax

    import sciml_jax as sj

    residual, params, batch, _ = engd_setting(0)
    compiled, states = {}, {}
    for name, factory in optimizers().items():
        opt = factory()
        state = opt.init(params)
        step = jax.jit(sj.train.make_step(residual, opt))
        c = step.lower(params, state, batch).compile()
        p, s = params, state
        for _ in range(warmup):  # a typical state (damping settled), as in optim_step.py
            p, s, *_ = c(p, s, batch)
        compiled[name], states[name] = c, (p, s)
    times = {k: [] for k in compiled}
    for _ in range(repeats):
        for name, c in compiled.items():
            p, s = states[name]
            t0 = time.perf_counter()
            jax.block_until_ready(c(p, s, batch))
            times[name].append(time.perf_counter() - t0)
    med = {k: 1e3 * float(np.median(v)) for k, v in times.items()}
    print(f"[timing] ms/step (median of {repeats}): " + ", ".join(f"{k} {v:.2f}" for k, v in med.items())
          + f"; engd/lm = {med['engd'] / med['lm']:.2f}", flush=True)
    return {"median_ms": med, "min_ms": {k: 1e3 * float(np.min(v)) for k, v in times.items()},
            "ratio_engd_to_lm": med["engd"] / med["lm"], "warmup_steps": warmup}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--eval-every", type=int, default=10)
    ap.add_argument("--optimizers", nargs="+", choices=("engd", "lm"), default=["engd", "lm"])
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--transfer", action="store_true", help="also poisson_1d k=2 and heat_1d")
    ap.add_argument("--no-timing", action="store_true")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    if args.quick:
        args.seeds, args.steps, args.repeats = [0], 30, 3
    import jax

    jax.config.update("jax_enable_x64", True)
    report = {"benchmark": "engd_poisson2d", "target_rel_l2": TARGET, "steps": args.steps, "seeds": args.seeds,
              "jax": jax.__version__, "platform": platform.platform(), "cpus": os.cpu_count(),
              "loadavg_start": os.getloadavg()}
    report["paper_setting"] = run_accuracy(engd_setting, args.optimizers, args.seeds, args.steps, args.eval_every)
    if args.transfer:
        for name in ("poisson_1d_k2", "heat_1d"):
            report[name] = run_accuracy(lambda s, n=name: transfer_setting(n, s), args.optimizers, args.seeds,
                                        args.steps, args.eval_every)
    if not args.no_timing:
        report["timing"] = run_timing(args.repeats, warmup=20)
    report["loadavg_end"] = os.getloadavg()
    out = args.out or str(Path(__file__).resolve().parent / "results" / (
        "engd_poisson2d_quick.json" if args.quick else "engd_poisson2d.json"))
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump(report, f, indent=1)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
