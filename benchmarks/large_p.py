"""Large parameter counts: matrix-free Levenberg-Marquardt (CG on the damped Gauss-Newton system) in bounded memory,
and its loss-vs-wall-time curve against Adam and L-BFGS.

Problem: 5D Poisson on the unit cube, -Δu = 5π² Π sin(πx_i) (``sj.problems.get("poisson_nd", dim=5, k=1)``),
tanh MLP with 4 hidden layers, ``--interior`` + ``--boundary`` Sobol points (default 512 + 128, N = 640 residuals).

Part 1, memory (one subprocess per width, so each process's peak RSS is its own):
    widths 64, 128, 256 -> P = 12,929 / 50,433 / 199,169 parameters. For one LM-CG step
    (``sj.optim.levenberg_marquardt(solver="cg", cg_max_steps=...)`` inside ``sj.train.make_step``, jitted) we record
      * XLA's compiled memory analysis: temporaries, arguments, outputs (bytes), the device memory the step needs;
      * the process's peak RSS (``resource.getrusage``) after compiling and running 2 steps, and its RSS before the
        step was built (imports + data), so the step's own share is the difference;
      * for reference, the bytes the dense solvers would need: J (N × P) and JᵀJ (P × P) in float64.
    Linear vs quadratic growth: P grows ~4x per size; we fit log(memory) = a + b·log(P) (b ≈ 1: linear, b ≈ 2:
    quadratic) and also report the ratio of the step's temporaries to the bytes of J (< 1 means J is never formed).

Part 2, loss vs wall time at the largest width (P ≈ 199k), each optimizer from the same initial network for
``--budget-s`` seconds of ``fit`` wall time (compile excluded), the loss and relative L2 error (8192 Sobol points)
recorded as it goes:
      adam      optax.adam(1e-3)
      lbfgs     sj.optim.lbfgs()
      lm_cg     sj.optim.levenberg_marquardt(solver="cg", cg_max_steps=--cg-max-steps): truncated CG, J never formed
The runs are sequential (a curve needs a continuous run); the load average before and after each is recorded.

      lm_cg_nys the same with the randomised Nyström preconditioner (``preconditioner="nystrom"``)
      lm_cg_abs the former default absolute λ₀ = 1e-3 (the scale-aware default is τ · max diag(JᵀJ))
      lm_sample the exact step from the N × N system (JJᵀ + λI), J formed (N × P floats): the solver "auto" picks
                when N < P, as here (N = 640)
Each LM run records per step the CG iterations and status (``lsq.solve_steps``, ``lsq.solve_status``) and the
accepted/rejected counts; ``info_last`` in the JSON holds their final values.

Usage::

    nice -n 19 python benchmarks/large_p.py                  # memory at 3 sizes + curves at width 256
    python benchmarks/large_p.py --quick                     # smoke test: small widths, short budget
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def _rss_mib() -> float:
    """Current resident set size (Linux /proc), MiB."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _loadavg():
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _setup(width: int, depth: int, interior: int, boundary: int, seed: int = 0):
    import jax

    import sciml_jax as sj

    prob = sj.problems.get("poisson_nd", dim=5, k=1)
    model = sj.nn.MLP(5, 1, width, depth, activation="tanh", key=jax.random.PRNGKey(seed))
    params, apply = sj.nn.functional(model)
    residual = sj.pinn.residual(prob, apply)
    batch = sj.sampling.sample(prob.domain, {"interior": interior, "boundary": boundary}, "sobol", 0)
    return sj, prob, params, apply, residual, batch


def memory_worker(cfg: dict) -> dict:
    """One width: compiled memory analysis and peak RSS of an LM-CG step (run in its own process)."""
    import jax

    rss0 = _rss_mib()
    sj, prob, params, apply, residual, batch = _setup(cfg["width"], cfg["depth"], cfg["interior"], cfg["boundary"])
    n = cfg["interior"] + cfg["boundary"]
    p = int(sum(x.size for x in jax.tree.leaves(params)))
    itemsize = jax.tree.leaves(params)[0].dtype.itemsize
    opt = sj.optim.levenberg_marquardt(solver="cg", cg_max_steps=cfg["cg_max_steps"])
    state = opt.init(params)
    step = jax.jit(sj.train.make_step(residual, opt))
    rss_before = _rss_mib()
    t0 = time.perf_counter()
    compiled = step.lower(params, state, batch).compile()
    compile_s = time.perf_counter() - t0
    peak_after_compile = _peak_rss_mib()
    ma = compiled.memory_analysis()
    mem = {k: int(getattr(ma, k)) for k in ("temp_size_in_bytes", "argument_size_in_bytes", "output_size_in_bytes",
                                            "generated_code_size_in_bytes")} if ma is not None else {}
    times = []
    for _ in range(2):
        t0 = time.perf_counter()
        params, state, loss, *_ = compiled(params, state, batch)
        jax.block_until_ready(params)
        times.append(time.perf_counter() - t0)
    # Adam step for comparison (the cheapest first-order step)
    import optax

    adam = optax.adam(1e-3)
    adam_c = jax.jit(sj.train.make_step(residual, adam)).lower(params, adam.init(params), batch).compile()
    ma_adam = adam_c.memory_analysis()
    return {
        "width": cfg["width"], "P": p, "N": n, "dtype": str(jax.tree.leaves(params)[0].dtype),
        "lm_cg": {**mem, "compile_s": compile_s, "step_s": times},
        "adam_temp_size_in_bytes": int(ma_adam.temp_size_in_bytes) if ma_adam is not None else None,
        "rss_start_mib": rss0, "rss_before_step_mib": rss_before, "peak_rss_after_compile_mib": peak_after_compile,
        "peak_rss_mib": _peak_rss_mib(),
        "dense_J_bytes": n * p * itemsize, "dense_JtJ_bytes": p * p * itemsize, "loss_after_2_steps": float(loss),
    }


def curves(args) -> dict:
    import jax
    import optax

    sj, prob, params, apply, residual, batch = _setup(args.width, args.depth, args.interior, args.boundary)
    p = int(sum(x.size for x in jax.tree.leaves(params)))
    err = sj.pinn.rel_l2(prob, apply)
    runs = {
        "adam": (optax.adam(1e-3), args.eval_adam),
        "lbfgs": (sj.optim.lbfgs(), args.eval_lbfgs),
        # scale-aware λ₀ = 1e-3 · max diag(JᵀJ) (Hutchinson estimate), truncated CG
        "lm_cg": (sj.optim.levenberg_marquardt(solver="cg", cg_max_steps=args.cg_max_steps), args.eval_lm),
        # the same with the randomised Nyström preconditioner (rank --precond-rank, refreshed every 10 steps)
        "lm_cg_nys": (sj.optim.levenberg_marquardt(solver="cg", cg_max_steps=args.cg_max_steps,
                                                   preconditioner="nystrom", precond_rank=args.precond_rank,
                                                   precond_every=10), args.eval_lm),
        # the old default: absolute λ₀ = 1e-3 (what the issue measured: 5 of 6 steps rejected)
        "lm_cg_abs": (sj.optim.levenberg_marquardt(damping=1e-3, solver="cg", cg_max_steps=args.cg_max_steps),
                      args.eval_lm),
        # N << P: the exact damped Gauss-Newton step from the N × N system (JJᵀ + λI) (J is N × P: 1 GB at
        # N = 640, P = 199k in float64); what "auto" picks when N < P
        "lm_sample": (sj.optim.levenberg_marquardt(solver="dense_sample"), args.eval_lm),
    }
    out = {"P": p, "N": args.interior + args.boundary, "width": args.width, "runs": {}}
    for name in args.optimizers:
        opt, every = runs[name]

        def budget(history, **_):
            return "stop" if history.wall_time_s and history.wall_time_s[-1] >= args.budget_s else None

        load0 = _loadavg()
        res = sj.train.fit(residual, params, batch, opt, 10**7, eval_every=every, metrics={"rel_l2": err},
                           callbacks=[budget], progress=False)
        h = res.history
        loss = np.asarray(h.loss)
        evals = np.asarray(h.eval_steps)
        # loss at each evaluation: the loss recorded at that step (i.e. before its update); the last one after the
        # run is evaluated directly
        loss_at = [float(loss[s]) if s < len(loss) else float(residual.loss(res.params, res.batch)) for s in evals]
        out["runs"][name] = {
            "steps": int(res.step), "compile_s": res.compile_time_s, "wall_s": res.wall_time_s,
            "ms_per_step": 1e3 * res.wall_time_s / max(res.step, 1),
            "curve": {"step": evals.tolist(), "wall_s": list(h.wall_time_s), "loss": loss_at,
                      "rel_l2": list(h.metrics["rel_l2"])},
            "final_loss": loss_at[-1], "final_rel_l2": h.metrics["rel_l2"][-1],
            "loadavg": [load0, _loadavg()], "info_last": h.last_info(),
        }
        if "lsq.solve_steps" in h.info:
            info = {k: np.asarray(v) for k, v in h.info.items()}
            out["runs"][name]["lm_stats"] = {
                "mean_cg_steps": float(np.mean(info["lsq.solve_steps"])),
                "steps_cg_not_converged": int(np.sum(info["lsq.solve_status"] != 0)),
                "accepted": int(info["lsq.accepted"][-1]), "rejected": int(info["lsq.rejected"][-1]),
                "damping_first_last": [float(info["lsq.damping"][0]), float(info["lsq.damping"][-1])],
            }
            print(f"[curve] {name}: {out['runs'][name]['lm_stats']}", flush=True)
        print(f"[curve] {name}: {res.step} steps in {res.wall_time_s:.1f} s, loss {loss_at[-1]:.3e}, "
              f"rel L2 {h.metrics['rel_l2'][-1]:.3e}", flush=True)
    # who is ahead at which time: loss of each run interpolated on a common time grid
    grid = np.linspace(0.0, args.budget_s, 7)[1:]
    ahead = []
    for t in grid:
        vals = {}
        for name, r in out["runs"].items():
            c = r["curve"]
            vals[name] = float(np.exp(np.interp(t, c["wall_s"], np.log(c["loss"]))))
        ahead.append({"t_s": float(t), "loss": vals, "best": min(vals, key=vals.get)})
    out["leader_over_time"] = ahead
    return out


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--widths", nargs="+", type=int, default=[64, 128, 256])
    ap.add_argument("--width", type=int, default=256, help="width of the loss-vs-time comparison")
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--interior", type=int, default=512)
    ap.add_argument("--boundary", type=int, default=128)
    ap.add_argument("--cg-max-steps", type=int, default=20)
    ap.add_argument("--budget-s", type=float, default=180.0, help="fit wall time per optimizer")
    ap.add_argument("--eval-adam", type=int, default=50)
    ap.add_argument("--eval-lbfgs", type=int, default=10)
    ap.add_argument("--eval-lm", type=int, default=2)
    ap.add_argument("--precond-rank", type=int, default=50)
    ap.add_argument("--optimizers", nargs="+",
                    choices=("adam", "lbfgs", "lm_cg", "lm_cg_nys", "lm_cg_abs", "lm_sample"),
                    default=["adam", "lbfgs", "lm_cg", "lm_cg_nys"])
    ap.add_argument("--no-curves", action="store_true")
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--quick", action="store_true", help="widths 16 32 64, 128 + 32 points, 10 s budget")
    ap.add_argument("--out", default=None)
    ap.add_argument("--memory-worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.memory_worker is None:
        for name in ("depth", "interior", "boundary", "cg_max_steps", "width"):
            if getattr(args, name) < 1:
                ap.error(f"--{name.replace('_', '-')}: expected a positive integer, got {getattr(args, name)}")
        if args.quick:
            args.widths, args.width, args.interior, args.boundary, args.budget_s = [16, 32, 64], 64, 128, 32, 10.0
            args.eval_adam, args.eval_lbfgs = 20, 5
        if args.out is None:
            args.out = str(HERE / "results" / ("large_p_quick.json" if args.quick else "large_p.json"))
    return args


def markdown(result: dict) -> str:
    lines = []
    mem = result.get("memory")
    if mem:
        lines.append(f"Memory of one LM-CG step (N = {mem['sizes'][0]['N']}, {mem['sizes'][0]['dtype']}, "
                     f"cg_max_steps = {result['config']['cg_max_steps']}):\n")
        lines.append("| width | P | XLA temp MiB | args+out MiB | peak RSS MiB | RSS growth in step MiB | "
                     "temp / bytes(J) | bytes(J) MiB | bytes(JᵀJ) GiB | s/step |")
        lines.append("|---|---|---|---|---|---|---|---|---|---|")
        for s in mem["sizes"]:
            lm = s["lm_cg"]
            lines.append(
                f"| {s['width']} | {s['P']:,} | {lm['temp_size_in_bytes'] / 2**20:.1f} | "
                f"{(lm['argument_size_in_bytes'] + lm['output_size_in_bytes']) / 2**20:.1f} | {s['peak_rss_mib']:.0f} | "
                f"{s['peak_rss_mib'] - s['rss_before_step_mib']:.0f} | "
                f"{lm['temp_size_in_bytes'] / s['dense_J_bytes']:.3f} | {s['dense_J_bytes'] / 2**20:.0f} | "
                f"{s['dense_JtJ_bytes'] / 2**30:.1f} | {np.median(lm['step_s']):.2f} |")
        lines.append("")
        lines.append(f"Fitted exponent b in memory ∝ P^b: XLA temp {mem['exponent_temp']:.2f}, "
                     f"step RSS growth {mem['exponent_rss_growth']:.2f} (1 = linear, 2 = quadratic).\n")
    cur = result.get("curves")
    if cur:
        lines.append(f"Loss vs wall time, width {cur['width']} (P = {cur['P']:,}, N = {cur['N']}), "
                     f"{result['config']['budget_s']:.0f} s of fit wall time each:\n")
        lines.append("| optimizer | steps | ms/step | final loss | final rel L2 | compile s |")
        lines.append("|---|---|---|---|---|---|")
        for name, r in cur["runs"].items():
            lines.append(f"| {name} | {r['steps']} | {r['ms_per_step']:.0f} | {r['final_loss']:.3e} | "
                         f"{r['final_rel_l2']:.3e} | {r['compile_s']:.1f} |")
        lines.append("")
        lines.append("| t (s) | " + " | ".join(cur["runs"]) + " | lowest loss |")
        lines.append("|---|" + "---|" * (len(cur["runs"]) + 1))
        for row in cur["leader_over_time"]:
            lines.append(f"| {row['t_s']:.0f} | " + " | ".join(f"{row['loss'][k]:.3e}" for k in cur["runs"])
                         + f" | {row['best']} |")
        lines.append("")
    return "\n".join(lines)


def _write(result: dict, out: str) -> None:
    result["loadavg_end"] = _loadavg()
    result["markdown"] = markdown(result)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump(result, f, indent=1)
    with open(os.path.splitext(out)[0] + ".md", "w") as f:
        f.write(result["markdown"])


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.memory_worker is not None:
        print("@@" + json.dumps(memory_worker(json.loads(args.memory_worker))), flush=True)
        return {}
    result = {
        "benchmark": "large_p",
        "config": {k: getattr(args, k) for k in ("widths", "width", "depth", "interior", "boundary", "cg_max_steps",
                                                 "budget_s")},
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count()},
        "loadavg_start": _loadavg(),
    }
    env = dict(os.environ)
    env.setdefault("JAX_ENABLE_X64", "1")
    if not args.no_memory:
        sizes = []
        for w in args.widths:
            cfg = {"width": w, "depth": args.depth, "interior": args.interior, "boundary": args.boundary,
                   "cg_max_steps": args.cg_max_steps}
            proc = subprocess.run([sys.executable, __file__, "--memory-worker", json.dumps(cfg)], env=env,
                                  capture_output=True, text=True)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("@@")]
            if proc.returncode != 0 or not lines:
                raise SystemExit(f"memory worker for width {w} failed:\n{proc.stderr[-3000:]}")
            s = json.loads(lines[-1][2:])
            sizes.append(s)
            print(f"[memory] width {w}: P = {s['P']:,}, XLA temp {s['lm_cg']['temp_size_in_bytes'] / 2**20:.1f} MiB, "
                  f"peak RSS {s['peak_rss_mib']:.0f} MiB, step {np.median(s['lm_cg']['step_s']):.2f} s", flush=True)
        ps = np.log([s["P"] for s in sizes])
        temp = np.log([s["lm_cg"]["temp_size_in_bytes"] for s in sizes])
        growth = np.log([max(s["peak_rss_mib"] - s["rss_before_step_mib"], 1e-3) for s in sizes])
        result["memory"] = {
            "sizes": sizes,
            "exponent_temp": float(np.polyfit(ps, temp, 1)[0]) if len(sizes) > 1 else None,
            "exponent_rss_growth": float(np.polyfit(ps, growth, 1)[0]) if len(sizes) > 1 else None,
        }
        _write(result, args.out)  # the memory part on disk before the (long) curves
    if not args.no_curves:
        os.environ.setdefault("JAX_ENABLE_X64", "1")
        import jax

        jax.config.update("jax_enable_x64", os.environ["JAX_ENABLE_X64"] not in ("0", "false", "False"))
        result["curves"] = curves(args)
    _write(result, args.out)
    print(result["markdown"])
    print(f"load average: start {result['loadavg_start']}, end {result['loadavg_end']}; wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
