"""Benchmark: time per optimisation step of Adam, L-BFGS, Gauss-Newton and Levenberg-Marquardt on a 2D Poisson PINN.

Problem: ``sj.problems.get("poisson_nd", dim=2, k=1)`` (-Δu = f on the unit square, u = sin(πx) sin(πy)), a tanh
MLP from ``sj.nn.MLP`` and the weighted residual ``sj.pinn.residual``; the batch is a fixed Sobol sample of
``--interior`` interior and ``--boundary`` boundary points (default 1024 + 256, so N = 1280 residuals).

Sizes (``--sizes``, default both):

* ``small``: width 20, depth 3  (P = 921 parameters)
* ``large``: width 64, depth 4  (P = 12,737 parameters)

Optimizers: ``adam`` (optax.adam), ``lbfgs`` (sj.optim.lbfgs), and for each solve mode of the damped Gauss-Newton
direction (``dense_param``: Cholesky of the P × P matrix JᵀJ + λI; ``dense_sample``: Cholesky of the N × N kernel
JJᵀ + λI; ``cg``: matrix-free conjugate gradients) ``gn_<mode>`` (sj.optim.gauss_newton, fixed λ = 1e-8, its default
16-point step-size grid), ``lm_<mode>`` (sj.optim.levenberg_marquardt) and ``lmga_<mode>`` (the same with geodesic
acceleration: one more solve with the same factorisation and a second-order jvp). CG runs at most ``--cg-max-steps``
iterations (default 100; the library default 10·P would make undamped GN-CG take hours per step at P = 12.7k).

A dense mode is skipped, with the reason in the table and the JSON, when its estimated cost per step exceeds
``--max-dense-s`` seconds (default 30: the brief's ~10 s for the solve, with room for the load of a shared 2-core
machine) or its dense matrices exceed ``--max-dense-gb`` GiB. The estimate: ``fit`` (and ``make_step``) pass the
optimizers a per-point Jacobian (``analysis.jacobian``), whose cost is a few loss gradients (``--jac-grads``, default
4, from the ``jacobian`` section below), plus the Gram product and the Cholesky factorisation at ``--gflops``
(default 20 GFlop/s).

Method: every step is ``sj.train.make_step(residual, optimizer)`` under ``jax.jit``, compiled ahead of time
(``.lower().compile()``, reported as ``compile_s``). Each optimizer is first advanced ``--warmup`` steps from its
initial state (so L-BFGS has curvature pairs and LM a settled λ); the timed call then repeats one step from that fixed
state. Timing is round-robin: in each of ``--repeats`` rounds every optimizer runs once in turn, so load from other
processes hits all alike. We report the median and minimum seconds per step and ``ratio = median / median(adam)``.

Jacobian formation (section ``jacobian`` of the JSON, ``--no-jacobian`` to skip): without ``jacobian_fn``,
``damped_gn_direction`` builds J with ``jax.jacfwd`` of θ ↦ r(θ) (P <= N, else ``jax.jacrev``), min(N, P) passes over
*all* points. Because r is a concatenation of per-point residuals, the same J is also ``vmap`` over points of
``grad`` of one point's residual (O(N) point passes in total, what ``fit`` uses); we time both and report their
maximum difference.

Usage::

    python benchmarks/optim_step.py                    # float64, both sizes, JSON to benchmarks/results/
    python benchmarks/optim_step.py --quick            # smoke test: small size, 2 repeats, fewer points
    python benchmarks/optim_step.py --dtype float32 --repeats 9 --out /tmp/optim_step_f32.json
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

SIZES = {"small": (20, 3), "large": (64, 4)}
MODES = ("dense_param", "dense_sample", "cg")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    ap.add_argument("--sizes", nargs="+", choices=tuple(SIZES), default=list(SIZES))
    ap.add_argument("--interior", type=int, default=1024)
    ap.add_argument("--boundary", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=5, help="round-robin rounds (one timed call each)")
    ap.add_argument("--warmup", type=int, default=2, help="steps taken before timing, from the initial state")
    ap.add_argument("--optimizers", nargs="+", default=None, help="subset, e.g. adam lbfgs lm_cg")
    ap.add_argument("--max-dense-s", type=float, default=30.0)
    ap.add_argument("--max-dense-gb", type=float, default=4.0)
    ap.add_argument("--gflops", type=float, default=20.0)
    ap.add_argument("--jac-grads", type=float, default=4.0, help="cost of the per-point J in loss gradients")
    ap.add_argument("--cg-max-steps", type=int, default=100)
    ap.add_argument("--no-jacobian", action="store_true", help="skip the Jacobian-formation comparison")
    ap.add_argument("--quick", action="store_true", help="smoke test: small size, 256 + 64 points, 2 repeats")
    ap.add_argument("--out", default=None, help="JSON path (default benchmarks/results/optim_step[_quick].json)")
    args = ap.parse_args(argv)
    for name in ("interior", "boundary", "repeats", "cg_max_steps"):
        if getattr(args, name) < 1:
            ap.error(f"--{name}: expected a positive integer, got {getattr(args, name)}")
    if args.warmup < 0:
        ap.error(f"--warmup: expected a non-negative integer, got {args.warmup}")
    if args.quick:
        args.sizes, args.interior, args.boundary, args.repeats, args.warmup = ["small"], 256, 64, 2, 1
    if args.out is None:
        here = Path(__file__).resolve().parent / "results"
        args.out = str(here / ("optim_step_quick.json" if args.quick else "optim_step.json"))
    return args


def dense_estimate(
    mode: str, n: int, p: int, itemsize: int, gflops: float, t_grad: float, jac_grads: float
) -> tuple[float, float, float]:
    """(Jacobian seconds, Gram + Cholesky seconds, GiB) estimate of one dense step: the per-point J at ``jac_grads``
    loss gradients; the Gram product and Cholesky at ``gflops``; memory of J and the Gram matrix."""
    if mode == "dense_param":
        flops = n * p * p + p**3 / 3
        mem = (n * p + p * p) * itemsize
    else:
        flops = n * n * p + n**3 / 3
        mem = (n * p + n * n) * itemsize
    return jac_grads * t_grad, flops / (gflops * 1e9), mem / 2**30


def build_optimizers(names, cg_max_steps):
    import optax

    import sciml_jax as sj

    table = {"adam": lambda: optax.adam(1e-3), "lbfgs": lambda: sj.optim.lbfgs()}
    for mode in MODES:
        kw = {"cg_max_steps": cg_max_steps} if mode == "cg" else {}
        table[f"gn_{mode}"] = lambda m=mode, kw=kw: sj.optim.gauss_newton(damping=1e-8, solver=m, **kw)
        table[f"lm_{mode}"] = lambda m=mode, kw=kw: sj.optim.levenberg_marquardt(solver=m, **kw)
        table[f"lmga_{mode}"] = lambda m=mode, kw=kw: sj.optim.levenberg_marquardt(
            solver=m, geodesic_acceleration=True, **kw)
    if names is not None:
        unknown = [n for n in names if n not in table]
        if unknown:
            raise SystemExit(f"--optimizers: unknown {unknown}; allowed: {', '.join(table)}")
        table = {k: v for k, v in table.items() if k in names}
    return table


def run_size(size: str, args, dtype) -> dict:
    import jax
    import jax.numpy as jnp

    import sciml_jax as sj

    width, depth = SIZES[size]
    prob = sj.problems.get("poisson_nd", dim=2, k=1)
    model = sj.nn.MLP(2, 1, width, depth, activation="tanh", key=jax.random.PRNGKey(0))
    params, apply = sj.nn.functional(model)
    params = jax.tree.map(lambda x: x.astype(dtype), params)
    residual = sj.pinn.residual(prob, apply)
    batch = sj.sampling.sample(prob.domain, {"interior": args.interior, "boundary": args.boundary}, "sobol", 0)
    batch = jax.tree.map(lambda x: x.astype(dtype), batch)
    p = sum(x.size for x in jax.tree.leaves(params))
    n = args.interior + args.boundary
    itemsize = jnp.dtype(dtype).itemsize
    print(f"\n== {size}: width {width}, depth {depth}, P = {p}, N = {n} ({args.interior} + {args.boundary}), "
          f"{jnp.dtype(dtype).name}", flush=True)
    # cost of one loss gradient: the unit of the dense-mode estimate
    grad_fn = jax.jit(jax.grad(lambda q: residual.loss(q, batch)))
    jax.block_until_ready(grad_fn(params))
    t0 = time.perf_counter()
    for _ in range(5):
        jax.block_until_ready(grad_fn(params))
    t_grad = (time.perf_counter() - t0) / 5
    print(f"  one loss gradient: {1e3 * t_grad:.2f} ms", flush=True)

    entries, skipped, steps = {}, {}, {}
    for name, factory in build_optimizers(args.optimizers, args.cg_max_steps).items():
        mode = next((m for m in MODES if name.endswith(m)), None)
        if mode in ("dense_param", "dense_sample"):
            jac_s, solve_s, est_gb = dense_estimate(mode, n, p, itemsize, args.gflops, t_grad, args.jac_grads)
            if jac_s + solve_s > args.max_dense_s or est_gb > args.max_dense_gb:
                dim = f"P × P = {p} × {p}" if mode == "dense_param" else f"N × N = {n} × {n}"
                skipped[name] = (f"{dim}: est. {jac_s + solve_s:.0f} s/step (per-point J {jac_s:.1f} s, "
                                 f"Gram + Cholesky {solve_s:.1f} s), {est_gb:.1f} GiB; limits "
                                 f"{args.max_dense_s:g} s, {args.max_dense_gb:g} GiB")
                print(f"  {name:16s} skipped: {skipped[name]}", flush=True)
                continue
        opt = factory()
        state = opt.init(params)
        step = jax.jit(sj.train.make_step(residual, opt))
        t0 = time.perf_counter()
        compiled = step.lower(params, state, batch).compile()
        compile_s = time.perf_counter() - t0
        pw, sw = params, state
        for _ in range(args.warmup):
            pw, sw, *_ = compiled(pw, sw, batch)
        out = compiled(pw, sw, batch)  # one untimed call from the timed state (first-call effects)
        jax.block_until_ready(out)
        loss = float(out[2])
        steps[name] = (compiled, pw, sw)
        info = {k: float(v) for k, v in sj.optim.logged_info(out[1]).items()}
        entries[name] = {"compile_s": compile_s, "times_s": [], "loss_at_timed_state": loss, "info": info}
        print(f"  {name:16s} compiled in {compile_s:6.2f} s, loss {loss:.3e}", flush=True)

    for _ in range(args.repeats):
        for name, (compiled, pw, sw) in steps.items():
            t0 = time.perf_counter()
            jax.block_until_ready(compiled(pw, sw, batch))
            entries[name]["times_s"].append(time.perf_counter() - t0)

    for e in entries.values():
        e["median_s"] = float(np.median(e["times_s"]))
        e["min_s"] = float(np.min(e["times_s"]))
    jac = None if args.no_jacobian else time_jacobians(prob, apply, residual, params, batch, n, p, t_grad, args)
    base = entries.get("adam", {}).get("median_s")
    for e in entries.values():
        e["ratio_to_adam"] = e["median_s"] / base if base else None
    return {"width": width, "depth": depth, "params": p, "points": n, "grad_s": t_grad, "results": entries,
            "skipped": skipped, "jacobian": jac}


def time_jacobians(prob, apply, residual, params, batch, n, p, t_grad, args) -> dict:
    """Time J: (N, P) built as damped_gn_direction does (jacfwd/jacrev of the flat residual) and per point."""
    import jax
    import jax.flatten_util
    import jax.numpy as jnp

    flat, unravel = jax.flatten_util.ravel_pytree(params)
    scales = residual.scales(batch)

    def per_point(v):
        blocks = []
        for name, term in prob.terms.items():
            def r_point(v, x, fn=term.fn):
                return fn(lambda y: apply(unravel(v), y), x)

            blocks.append(scales[name] * jax.vmap(jax.grad(r_point), in_axes=(None, 0))(v, batch[term.points]))
        return jnp.concatenate(blocks)

    f = lambda v: residual(unravel(v), batch)  # noqa: E731
    full = jax.jacfwd(f) if p <= n else jax.jacrev(f)
    fns = {"per_point_vmap_grad": jax.jit(per_point)}
    out = {"library": "jacfwd" if p <= n else "jacrev"}
    est = 1.1 * min(n, p) * t_grad
    if est <= args.max_dense_s:
        fns["library_full_residual"] = jax.jit(full)
    else:
        out["library_skipped"] = f"estimated {est:.0f} s (> {args.max_dense_s:g} s)"
    mats = {k: jax.block_until_ready(fn(flat)) for k, fn in fns.items()}  # compile + first call
    times = {k: [] for k in fns}
    for _ in range(min(3, args.repeats)):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            jax.block_until_ready(fn(flat))
            times[k].append(time.perf_counter() - t0)
    for k, ts in times.items():
        out[k] = {"median_s": float(np.median(ts)), "min_s": float(np.min(ts))}
    if len(mats) == 2:
        out["max_abs_diff"] = float(jnp.max(jnp.abs(mats["per_point_vmap_grad"] - mats["library_full_residual"])))
        out["max_abs_entry"] = float(jnp.max(jnp.abs(mats["library_full_residual"])))
    timed = [f"{k} {1e3 * v['median_s']:.1f} ms" for k, v in out.items() if isinstance(v, dict)]
    print("  jacobian: " + ", ".join(timed), flush=True)
    return out


def print_table(report: dict) -> None:
    for size, res in report["sizes"].items():
        print(f"\n{size}: width {res['width']}, depth {res['depth']}, P = {res['params']}, N = {res['points']}, "
              f"{report['dtype']}, {report['repeats']} repeats")
        print(f"| {'optimizer':16s} | {'median ms':>10s} | {'min ms':>10s} | {'x Adam':>8s} | {'compile s':>9s} |")
        print(f"|{'-' * 18}|{'-' * 12}|{'-' * 12}|{'-' * 10}|{'-' * 11}|")
        for name, e in res["results"].items():
            ratio = f"{e['ratio_to_adam']:8.1f}" if e["ratio_to_adam"] is not None else f"{'-':>8s}"
            print(f"| {name:16s} | {1e3 * e['median_s']:10.2f} | {1e3 * e['min_s']:10.2f} | {ratio} | "
                  f"{e['compile_s']:9.2f} |")
        for name, why in res["skipped"].items():
            print(f"| {name:16s} | {'skipped':>10s} | {'':>10s} | {'':>8s} | {'':>9s} |  {why}")
        jac = res.get("jacobian")
        if jac:
            lib = jac.get("library_full_residual")
            lib_txt = f"{1e3 * lib['median_s']:.1f} ms" if lib else f"skipped ({jac['library_skipped']})"
            diff = f", max |difference| {jac['max_abs_diff']:.1e}" if "max_abs_diff" in jac else ""
            print(f"J (N × P): {jac['library']} of the residual vector (damped_gn_direction without jacobian_fn) {lib_txt}; "
                  f"per-point vmap(grad) {1e3 * jac['per_point_vmap_grad']['median_s']:.1f} ms{diff}")


def main(argv=None) -> int:
    args = parse_args(argv)
    import jax

    if args.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    dtype = jnp.float64 if args.dtype == "float64" else jnp.float32
    report = {
        "benchmark": "optim_step",
        "problem": "poisson_nd(dim=2, k=1), tanh MLP, Sobol batch",
        "dtype": args.dtype,
        "repeats": args.repeats,
        "warmup": args.warmup,
        "cg_max_steps": args.cg_max_steps,
        "quick": args.quick,
        "jax": jax.__version__,
        "device": str(jax.devices()[0]),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "sizes": {},
    }
    for size in args.sizes:
        report["sizes"][size] = run_size(size, args, dtype)
    print_table(report)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=1)
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
