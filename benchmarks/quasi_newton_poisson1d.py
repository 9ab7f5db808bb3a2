"""BFGS, SSBFGS and SSBroyden against L-BFGS as the second phase of a hybrid after an Adam warm-up.

Problem: 1-D Poisson with k = 2 (``sj.problems.get("poisson_1d", k=2)``), tanh MLP 1 -> 20 -> 20 -> 20 -> 1
(P = 901), 512 interior Sobol points + the 2 boundary points, float64. Every run:
``sj.optim.hybrid(optax.adam(1e-3), <second>, sj.optim.after_steps(--warmup))`` through ``sj.train.fit`` for
``--steps`` steps in total, from the same initial network per seed. Reported per optimizer and seed: rel. L2 error
(the problem's 1000-point grid) final, best and median of the last 5 evaluations, the first evaluation step at
which it is <= 1e-5 / 1e-6, the loss at the end, ms per second-phase step (fit wall time of the second phase,
compile excluded: the run is timed as two ``fit`` calls, the second resuming the first's optimizer state), and the
quasi-Newton diagnostics at the end (stalls, line-search steps, τ, θ, skipped updates).

Usage::

    nice -n 10 python benchmarks/quasi_newton_poisson1d.py                # seeds 0 1 2, 2000 Adam + 1000 QN steps
    python benchmarks/quasi_newton_poisson1d.py --quick
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

import numpy as np

SECONDS = ("lbfgs", "bfgs", "ssbfgs", "ssbroyden")


def setting(seed: int):
    import jax

    import sciml_jax as sj

    prob = sj.problems.get("poisson_1d", k=2)
    model = sj.nn.MLP(1, 1, width=20, depth=3, key=jax.random.PRNGKey(seed))
    params, apply = sj.nn.functional(model)
    batch = sj.sampling.sample(prob.domain, {"interior": 512, "boundary": 2}, "sobol", 0)
    return sj.pinn.residual(prob, apply), params, batch, sj.pinn.rel_l2(prob, apply)


def first_at(errors, steps, target):
    hit = np.flatnonzero(np.asarray(errors) <= target)
    return int(steps[hit[0]]) if hit.size else None


def run(args) -> dict:
    import optax

    import sciml_jax as sj

    out = {}
    for seed in args.seeds:
        for name in args.optimizers:
            residual, params, batch, err = setting(seed)
            opt = sj.optim.hybrid(optax.adam(1e-3), sj.optim.get(name), sj.optim.after_steps(args.warmup))
            load0 = os.getloadavg()[0]
            first = sj.train.fit(residual, params, batch, opt, args.warmup, eval_every=args.eval_every,
                                 metrics={"rel_l2": err}, progress=False)
            second = sj.train.fit(residual, first.params, batch, opt, args.steps - args.warmup,
                                  eval_every=args.eval_every, metrics={"rel_l2": err}, progress=False,
                                  opt_state=first.opt_state)
            e = np.asarray(second.history.metrics["rel_l2"])
            steps = args.warmup + np.asarray(second.history.eval_steps)
            info = second.history.last_info()
            row = {
                "optimizer": name, "seed": seed, "rel_l2_after_adam": float(first.history.metrics["rel_l2"][-1]),
                "final": float(e[-1]), "best": float(e.min()), "median_last5": float(np.median(e[-5:])),
                "first_step_1e-5": first_at(e, steps, 1e-5), "first_step_1e-6": first_at(e, steps, 1e-6),
                "final_loss": float(second.history.loss[-1]),
                "ms_per_step_second_phase": 1e3 * second.wall_time_s / max(args.steps - args.warmup, 1),
                "compile_s": [first.compile_time_s, second.compile_time_s], "loadavg": [load0, os.getloadavg()[0]],
                "info_last": info, "curve": {"step": steps.tolist(), "rel_l2": e.tolist()},
            }
            out[f"{name}/seed{seed}"] = row
            print(f"[{name} seed {seed}] after Adam {row['rel_l2_after_adam']:.2e}; final {row['final']:.2e} best "
                  f"{row['best']:.2e} median5 {row['median_last5']:.2e}; <=1e-5 at {row['first_step_1e-5']}, "
                  f"<=1e-6 at {row['first_step_1e-6']}; {row['ms_per_step_second_phase']:.1f} ms/step "
                  f"(load {load0:.1f})", flush=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--warmup", type=int, default=2000)
    ap.add_argument("--steps", type=int, default=3000, help="total steps (Adam warm-up included)")
    ap.add_argument("--eval-every", type=int, default=50)
    ap.add_argument("--optimizers", nargs="+", choices=SECONDS, default=list(SECONDS))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    if args.quick:
        args.seeds, args.warmup, args.steps, args.eval_every = [0], 100, 200, 20
    if not 0 < args.warmup < args.steps:
        ap.error("need 0 < --warmup < --steps")
    import jax

    jax.config.update("jax_enable_x64", True)
    report = {"benchmark": "quasi_newton_poisson1d", "args": vars(args), "jax": jax.__version__,
              "platform": platform.platform(), "cpus": os.cpu_count(), "loadavg_start": os.getloadavg()}
    report["runs"] = run(args)
    report["loadavg_end"] = os.getloadavg()
    out = args.out or str(Path(__file__).resolve().parent / "results" / (
        "quasi_newton_poisson1d_quick.json" if args.quick else "quasi_newton_poisson1d.json"))
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump(report, f, indent=1)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
