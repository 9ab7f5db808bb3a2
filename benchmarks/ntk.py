"""Benchmark: the full empirical NTK K = JJᵀ of a PINN residual and its eigendecomposition, sciml_jax vs naive.

Problem: 2-D Poisson PINN (``poisson_nd``, dim 2, k = 1) with a tanh MLP of width 70, depth 3 (P = 10221
parameters), N residual rows (7/8 interior Sobol points, 1/8 boundary points), float64.

* ``sciml_jax``: ``sj.analysis.ntk`` — J from per-point gradients (``vmap`` over points of the per-point
  ``jax.jacrev``), then K = J Jᵀ.
* ``naive``: ``jax.jacrev`` of the whole residual vector over the flattened parameters (N vjps, each through the
  whole N-point batch: O(N²) point evaluations), then K = J @ J.T.
* ``eigh``: ``jnp.linalg.eigh(K)`` (eigenvalues and eigenvectors), the same for both.

Measurement (``--repeats`` rounds): for each N a worker process compiles every method ahead of time (compile time
reported apart), checks the two K agree, then runs the methods in turn, round after round (interleaved, so load
from other processes hits all alike), reporting the median and minimum wall time. Memory: one more worker per
(N, method) runs the method once and reports its peak resident set size (``ru_maxrss``, which includes the
Python/JAX baseline of ~0.3-0.5 GiB and the compiler), next to XLA's own ``compiled.memory_analysis()`` (temp +
output bytes of the executable). A method whose XLA temp memory would exceed ``--max-gib`` is compiled but not run.
``--probe`` compiles (without running) the sciml_jax NTK and eigh at larger N to find where memory runs out.

Usage::

    python benchmarks/ntk.py                      # N = 1024, 4096; writes benchmarks/results/ntk.json
    python benchmarks/ntk.py --quick --out /tmp/ntk_quick.json
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

WIDTH, DEPTH, DIM = 70, 3, 2
GIB = 2.0**30


def _setup(n: int):
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    import sciml_jax as sj

    prob = sj.problems.get("poisson_nd", dim=DIM, k=1)
    params, apply = sj.nn.functional(sj.nn.MLP(DIM, 1, WIDTH, DEPTH, key=jax.random.PRNGKey(0)))
    nb = n // 8
    batch = sj.sampling.sample(prob.domain, {"interior": n - nb, "boundary": nb}, "sobol", 0)
    res = sj.pinn.residual(prob, apply)
    return jax, jnp, sj, res, params, batch


def _methods(n: int):
    jax, jnp, sj, res, params, batch = _setup(n)
    flat, unravel = jax.flatten_util.ravel_pytree(params)

    def ours(p, b):
        return sj.analysis.ntk(res, p, b).K

    def naive(p, b):
        f, th = jax.flatten_util.ravel_pytree(p)
        J = jax.jacrev(lambda t: res(th(t), b))(f)
        return J @ J.T

    def eigh(K):
        return jnp.linalg.eigh(K)

    return jax, jnp, {"sciml_jax": ours, "naive": naive}, eigh, params, batch, int(flat.size)


def _mem(compiled) -> dict:
    try:
        m = compiled.memory_analysis()
        return {
            "temp_gib": m.temp_size_in_bytes / GIB,
            "output_gib": m.output_size_in_bytes / GIB,
            "argument_gib": m.argument_size_in_bytes / GIB,
        }
    except Exception as e:  # noqa: BLE001 - memory analysis is optional per backend
        return {"error": repr(e)}


def _maxrss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB  # Linux: KiB


def worker_time(n: int, repeats: int, max_gib: float) -> dict:
    jax, jnp, methods, eigh, params, batch, P = _methods(n)
    out = {"N": n, "P": P, "methods": {}}
    compiled = {}
    for name, fn in methods.items():
        t0 = time.perf_counter()
        c = jax.jit(fn).lower(params, batch).compile()
        ct = time.perf_counter() - t0
        mem = _mem(c)
        runnable = "temp_gib" in mem and mem["temp_gib"] + mem["output_gib"] <= max_gib
        out["methods"][name] = {"compile_s": ct, "xla_memory": mem, "ran": runnable}
        if runnable:
            compiled[name] = c
        else:
            out["methods"][name]["skipped"] = f"XLA needs {mem.get('temp_gib', float('nan')):.1f} GiB temp > {max_gib} GiB"
    K = None
    for name, c in compiled.items():
        Kn = jax.block_until_ready(c(params, batch))  # warm-up run
        if K is None:
            K = Kn
        else:
            out["max_abs_diff_K"] = float(jnp.max(jnp.abs(Kn - K)))
            out["max_abs_K"] = float(jnp.max(jnp.abs(K)))
    t0 = time.perf_counter()
    ce = jax.jit(eigh).lower(K).compile()
    out["methods"]["eigh"] = {"compile_s": time.perf_counter() - t0, "xla_memory": _mem(ce), "ran": True}
    jax.block_until_ready(ce(K))
    times = {name: [] for name in list(compiled) + ["eigh"]}
    for _ in range(repeats):
        for name, c in compiled.items():
            t0 = time.perf_counter()
            jax.block_until_ready(c(params, batch))
            times[name].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        w, _ = jax.block_until_ready(ce(K))
        times["eigh"].append(time.perf_counter() - t0)
    for name, ts in times.items():
        out["methods"][name].update({"median_s": float(np.median(ts)), "min_s": float(np.min(ts)), "times_s": ts})
    w = np.asarray(w)
    tau = max(n, P) * np.finfo(float).eps * w[-1]
    out["spectrum"] = {
        "lambda_max": float(w[-1]),
        "numerical_rank": int(np.sum(np.abs(w) > tau)),
        "condition_number": float(w[-1] / np.min(w[np.abs(w) > tau])),
    }
    return out


def worker_mem(n: int, method: str, max_gib: float) -> dict:
    jax, jnp, methods, eigh, params, batch, P = _methods(n)
    base = _maxrss_gib()
    if method == "eigh":
        K = jax.block_until_ready(jax.jit(methods["sciml_jax"])(params, batch))
        rss_before = _maxrss_gib()
        c = jax.jit(eigh).lower(K).compile()
        args = (K,)
    else:
        rss_before = base
        c = jax.jit(methods[method]).lower(params, batch).compile()
        args = (params, batch)
    mem = _mem(c)
    rec = {"N": n, "P": P, "method": method, "rss_before_gib": rss_before, "xla_memory": mem}
    if "temp_gib" in mem and mem["temp_gib"] + mem["output_gib"] > max_gib:
        rec["skipped"] = f"XLA needs {mem['temp_gib']:.1f} GiB temp > {max_gib} GiB"
        return rec
    jax.block_until_ready(c(*args))
    rec["peak_rss_gib"] = _maxrss_gib()
    return rec


def worker_probe(n: int) -> dict:
    """Compile only: XLA memory of the sciml_jax NTK and of eigh at size N (nothing is allocated)."""
    jax, jnp, methods, eigh, params, batch, P = _methods(n)
    c = jax.jit(methods["sciml_jax"]).lower(params, batch).compile()
    K_spec = jax.ShapeDtypeStruct((n, n), jnp.float64)
    ce = jax.jit(eigh).lower(K_spec).compile()
    return {"N": n, "P": P, "ntk": _mem(c), "eigh": _mem(ce)}


def _run_worker(args: list[str], timeout: float) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", *args]
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {timeout:.0f} s", "args": args}
    if p.returncode != 0:
        return {"error": f"exit {p.returncode}", "stderr": p.stderr[-2000:], "args": args}
    rec = json.loads(p.stdout.strip().splitlines()[-1])
    rec["process_wall_s"] = time.perf_counter() - t0
    return rec


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1024, 4096])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--max-gib", type=float, default=12.0, help="do not run executables needing more XLA memory")
    ap.add_argument("--probe", type=int, nargs="*", default=[8192, 16384, 24576, 32768])
    ap.add_argument("--quick", action="store_true", help="N = 256, 2 repeats, no probe")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "ntk.json"))
    ap.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker:
        kind, n = a.worker[0], int(a.worker[1])
        if kind == "time":
            rec = worker_time(n, int(a.worker[2]), float(a.worker[3]))
        elif kind == "mem":
            rec = worker_mem(n, a.worker[2], float(a.worker[3]))
        else:
            rec = worker_probe(n)
        print(json.dumps(rec))
        return 0
    if a.quick:
        a.sizes, a.repeats, a.probe = [256], 2, []
    results = {"time": [], "memory": [], "probe": []}
    for n in a.sizes:
        reps = a.repeats if n <= 2048 else max(2, a.repeats // 2)
        print(f"N = {n}: timing ...", flush=True)
        results["time"].append(_run_worker(["time", str(n), str(reps), str(a.max_gib)], timeout=3600))
        for method in ("sciml_jax", "naive", "eigh"):
            print(f"N = {n}: peak memory of {method} ...", flush=True)
            results["memory"].append(_run_worker(["mem", str(n), method, str(a.max_gib)], timeout=3600))
    for n in a.probe:
        print(f"probe N = {n} ...", flush=True)
        results["probe"].append(_run_worker(["probe", str(n)], timeout=1800))
    import jax

    results["meta"] = {
        "problem": f"poisson_nd dim={DIM}, MLP width {WIDTH} depth {DEPTH} tanh, float64",
        "jax_version": jax.__version__,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg(),
        "memory_total_gib": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GIB,
        "max_gib": a.max_gib,
        "repeats": a.repeats,
    }
    results["limits"] = _limits(results)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(results, f, indent=2)
    _print(results)
    print(f"wrote {a.out}")
    return 0


def _limits(results: dict) -> dict:
    """Which probed N fit in this machine's memory for the dense path (NTK, then eigh while K is held).

    Peak of the NTK stage = XLA temp + output of the jitted ``ntk`` (J, K and the symmetrised copy); peak of the
    eigh stage = K (its argument) + eigh's temp + output (eigenvectors, workspace). A process baseline (the largest
    peak RSS minus XLA memory measured above, ~0.5 GiB) is added. Run times are extrapolated from the measured
    N = max(sizes): NTK ∝ N² P (the K = JJᵀ product dominates), eigh ∝ N³.
    """
    total = results["meta"]["memory_total_gib"]
    base = 0.6
    timed = [r for r in results["time"] if "error" not in r]
    ref = max(timed, key=lambda r: r["N"]) if timed else None
    rows = []
    for rec in results["probe"]:
        if "error" in rec or "temp_gib" not in rec["ntk"]:
            continue
        n = rec["N"]
        k_gib = n * n * 8 / GIB
        ntk_peak = rec["ntk"]["temp_gib"] + rec["ntk"]["output_gib"] + base
        eigh_peak = k_gib + rec["eigh"]["temp_gib"] + rec["eigh"]["output_gib"] + base
        row = {
            "N": n,
            "P": rec["P"],
            "N_times_P": n * rec["P"],
            "ntk_peak_gib": ntk_peak,
            "eigh_peak_gib": eigh_peak,
            "fits": max(ntk_peak, eigh_peak) <= total,
        }
        if ref is not None:
            scale = n / ref["N"]
            row["ntk_time_s_extrapolated"] = ref["methods"]["sciml_jax"]["median_s"] * scale**2
            row["eigh_time_s_extrapolated"] = ref["methods"]["eigh"]["median_s"] * scale**3
        rows.append(row)
    fitting = [r for r in rows if r["fits"]]
    return {
        "memory_total_gib": total,
        "probes": rows,
        "largest_fitting": max(fitting, key=lambda r: r["N"]) if fitting else None,
    }


def _print(results: dict) -> None:
    for rec in results["time"]:
        if "error" in rec:
            print("time worker failed:", rec)
            continue
        print(f"\nN = {rec['N']}, P = {rec['P']}")
        for name, m in rec["methods"].items():
            med = m.get("median_s")
            print(
                f"  {name:10s} compile {m['compile_s']:7.2f} s   run median "
                + (f"{med:8.3f} s (min {m['min_s']:.3f})" if med is not None else f"— ({m.get('skipped', '')})")
                + f"   XLA temp {m['xla_memory'].get('temp_gib', float('nan')):.2f} GiB"
            )
        if "max_abs_diff_K" in rec:
            print(f"  max |K_naive - K_ours| = {rec['max_abs_diff_K']:.2e} (max |K| = {rec['max_abs_K']:.2e})")
    for rec in results["memory"]:
        if "error" in rec:
            print("memory worker failed:", rec.get("args"), rec.get("error"))
            continue
        print(
            f"  N = {rec['N']:5d} {rec['method']:10s} peak RSS "
            + (f"{rec['peak_rss_gib']:.2f} GiB" if "peak_rss_gib" in rec else rec.get("skipped", "—"))
        )
    for row in results.get("limits", {}).get("probes", []):
        print(
            f"  probe N = {row['N']} (N·P = {row['N_times_P']:.2e}): NTK peak {row['ntk_peak_gib']:.1f} GiB, eigh peak "
            f"{row['eigh_peak_gib']:.1f} GiB -> {'fits' if row['fits'] else 'does not fit'} in "
            f"{results['limits']['memory_total_gib']:.1f} GiB"
            + (
                f"; extrapolated NTK {row['ntk_time_s_extrapolated']:.0f} s, eigh {row['eigh_time_s_extrapolated']:.0f} s"
                if "ntk_time_s_extrapolated" in row
                else ""
            )
        )


if __name__ == "__main__":
    sys.exit(main())
