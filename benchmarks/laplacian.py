"""Benchmark: exact Laplacian paths of ``sciml_jax.operators.laplacian`` on a tanh MLP.

The network is a plain-jnp tanh MLP (width 64, 4 hidden layers, Glorot-normal weights, zero biases, scalar
output), written here so the benchmark depends only on ``sciml_jax.operators``. For each input dimension ``d``
every method computes ``Delta u`` at ``N`` points with ``jax.vmap`` under ``jax.jit``:

* ``hessian-baseline``: ``trace(jax.hessian(u)(x))`` written directly with JAX (the reference and the baseline),
* ``jacfwd``, ``hessian``, ``hvp``, ``forward`` (folx), ``auto``: ``sciml_jax.operators.laplacian``,
* ``jet``: Taylor mode, a candidate measured here but not offered by ``laplacian`` (written below): for each unit
  vector ``e_j`` a second-order ``jax.experimental.jet`` of ``t -> u(x + t e_j)``, vmapped over ``j``.

Compile time is the first call (``block_until_ready``). Run time is then measured in ``--repeats`` rounds; in
each round the methods run in turn (interleaved, so load from other processes hits all methods alike), each timed
over ``--calls`` consecutive calls. We report the median and the minimum per call, and
``speedup = t_baseline / t_method`` of the medians. ``max_abs_diff`` is the largest deviation from the baseline.

With ``--grad`` it also times the gradient, with respect to the network parameters, of the PINN-style loss
``mean(Delta u(x_n)^2)``: what a training step pays.

Usage::

    python benchmarks/laplacian.py                   # float64, d = 2, 10, 100
    python benchmarks/laplacian.py --quick           # smoke test
    python benchmarks/laplacian.py --dtype float32 --repeats 30 --out /tmp/lap.json
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np

# (d, N): the number of points is smaller at d = 100 so the Hessian baseline stays affordable.
CASES = ((2, 1024), (10, 1024), (100, 256))
WIDTH, DEPTH = 64, 4
METHODS = ("hessian-baseline", "jacfwd", "hessian", "hvp", "jet", "forward", "auto")


def init_mlp(key, d: int, width: int, depth: int, dtype):
    """Glorot-normal weights (std = sqrt(2 / (fan_in + fan_out))), zero biases; returns a list of (W, b)."""
    import jax
    import jax.numpy as jnp

    sizes = [d] + [width] * depth + [1]
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        key, sub = jax.random.split(key)
        w = jax.random.normal(sub, (fan_in, fan_out), dtype) * np.sqrt(2.0 / (fan_in + fan_out))
        params.append((w, jnp.zeros((fan_out,), dtype)))
    return params


def mlp(params, x):
    """u(x) = W_L^T tanh(... tanh(W_1^T x + b_1) ...) + b_L for one point x: (d,) -> ()."""
    import jax.numpy as jnp

    h = x
    for w, b in params[:-1]:
        h = jnp.tanh(h @ w + b)
    w, b = params[-1]
    return (h @ w + b)[0]


def jet_laplacian(u, x):
    """sum_j d^2/dt^2 u(x + t e_j) at t = 0 by second-order Taylor mode (jet terms are derivatives)."""
    import jax
    import jax.numpy as jnp
    from jax.experimental import jet

    def second_directional(v):
        _, (_, d2) = jet.jet(u, (x,), ((v, jnp.zeros_like(v)),))
        return d2

    return jnp.sum(jax.vmap(second_directional)(jnp.eye(x.shape[0], dtype=x.dtype)))


def build(method: str, grad: bool):
    """Returns a jittable ``(params, X) -> (N,)`` Laplacian (or, with grad, ``-> grads`` of mean(lap^2))."""
    import jax
    import jax.numpy as jnp

    from sciml_jax.operators import laplacian

    def lap_at(params, x):
        u = lambda y: mlp(params, y)  # noqa: E731
        if method == "hessian-baseline":
            return jnp.trace(jax.hessian(u)(x))
        if method == "jet":
            return jet_laplacian(u, x)
        return laplacian(u, method=method)(x)

    def laps(params, X):
        return jax.vmap(lambda x: lap_at(params, x))(X)

    if not grad:
        return jax.jit(laps)
    return jax.jit(jax.grad(lambda params, X: jnp.mean(laps(params, X) ** 2)))


def tune_glibc_malloc() -> bool:
    """Keeps freed memory in the process instead of returning it to the OS after every call (glibc only).

    XLA on CPU allocates its temporaries per call. With glibc's defaults, buffers of several MB are served by
    ``mmap`` and unmapped when freed, so every call pays page faults proportional to its temporary memory (the
    "faults/call" column). This sets what the environment variables ``MALLOC_MMAP_THRESHOLD_=33554432`` and
    ``MALLOC_TRIM_THRESHOLD_=1073741824`` would (tcmalloc or jemalloc via ``LD_PRELOAD`` behave similarly).
    Returns whether both settings were accepted.
    """
    name = ctypes.util.find_library("c")
    if name is None or platform.system() != "Linux":
        return False
    libc = ctypes.CDLL(name)
    m_trim_threshold, m_mmap_threshold = -1, -3  # from <malloc.h>
    return bool(libc.mallopt(m_mmap_threshold, 32 * 2**20)) and bool(libc.mallopt(m_trim_threshold, 2**30))


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _block(tree):
    import jax

    return jax.block_until_ready(tree)


def run_case(d: int, n: int, dtype, repeats: int, calls: int, methods, grad: bool, seed: int = 0):
    import jax

    from sciml_jax.operators import auto_method

    key_p, key_x = jax.random.split(jax.random.PRNGKey(seed + d))
    params = init_mlp(key_p, d, WIDTH, DEPTH, dtype)
    X = jax.random.uniform(key_x, (n, d), dtype, -1.0, 1.0)
    fns = {m: build(m, grad) for m in methods}

    compile_s, outputs = {}, {}
    for m, fn in fns.items():
        t0 = time.perf_counter()
        outputs[m] = _block(fn(params, X))
        compile_s[m] = time.perf_counter() - t0
    ref = outputs[methods[0]]
    max_diff = {
        m: float(max(np.max(np.abs(np.asarray(a) - np.asarray(b))) for a, b in
                     zip(jax.tree.leaves(out), jax.tree.leaves(ref))))
        for m, out in outputs.items()
    }
    times = {m: [] for m in methods}
    faults = {m: [] for m in methods}
    for _ in range(repeats):
        for m, fn in fns.items():  # interleaved round-robin
            f0, t0 = _faults(), time.perf_counter()
            for _ in range(calls):
                out = fn(params, X)
            _block(out)
            times[m].append((time.perf_counter() - t0) / calls)
            faults[m].append((_faults() - f0) / calls)
    base = float(np.median(times[methods[0]]))
    rows = []
    for m in methods:
        med, mn = float(np.median(times[m])), float(np.min(times[m]))
        rows.append(dict(method=m, median_s=med, min_s=mn, compile_s=compile_s[m], speedup=base / med,
                         max_abs_diff=max_diff[m], page_faults_per_call=float(np.median(faults[m]))))
    return dict(d=d, n=n, auto_path=auto_method(d), quantity="grad of mean(lap^2)" if grad else "laplacian",
                rows=rows)


def print_case(case):
    print(f"\nd = {case['d']}, N = {case['n']}, {case['quantity']}  (auto -> {case['auto_path']})")
    print(f"{'method':<17} {'median ms':>10} {'min ms':>9} {'speedup':>8} {'compile s':>10} {'max|diff|':>10} "
          f"{'faults/call':>12}")
    for r in case["rows"]:
        print(f"{r['method']:<17} {1e3 * r['median_s']:>10.3f} {1e3 * r['min_s']:>9.3f} {r['speedup']:>7.2f}x "
              f"{r['compile_s']:>10.2f} {r['max_abs_diff']:>10.1e} {r['page_faults_per_call']:>12.0f}")
    sys.stdout.flush()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float64")
    parser.add_argument("--repeats", type=int, default=20, help="interleaved rounds (default 20)")
    parser.add_argument("--calls", type=int, default=3, help="calls per timing (default 3)")
    parser.add_argument("--dims", type=int, nargs="+", default=[c[0] for c in CASES],
                        help="input dimensions (default 2 10 100); N = 1024, or 256 for d >= 100")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS),
                        help="methods; the first one is the baseline of the speedups (default: all)")
    parser.add_argument("--grad", action="store_true", help="also time the parameter gradient of mean(lap^2)")
    parser.add_argument("--tune-malloc", action="store_true",
                        help="glibc: keep freed memory in the process (see tune_glibc_malloc); recorded in the JSON")
    parser.add_argument("--quick", action="store_true", help="smoke test: 3 repeats of 1 call, d = 2 and 10")
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON output (default benchmarks/results/laplacian.json, or laplacian_quick.json)")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.calls < 1:
        parser.error(f"--repeats and --calls must be >= 1, got {args.repeats} and {args.calls}")
    if min(args.dims) < 1:
        parser.error(f"--dims must be >= 1, got {args.dims}")
    if args.quick:
        args.repeats, args.calls = 3, 1
        args.dims = [d for d in args.dims if d <= 10] or [2]
    if args.out is None:
        stem = "laplacian" + ("_quick" if args.quick else "") + ("_malloc_tuned" if args.tune_malloc else "")
        args.out = Path(__file__).parent / "results" / f"{stem}.json"

    malloc_tuned = tune_glibc_malloc() if args.tune_malloc else False
    if args.tune_malloc and not malloc_tuned:
        print("warning: --tune-malloc had no effect (not glibc/Linux)")

    import jax

    if args.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    import folx
    import jaxlib

    dtype = np.dtype(args.dtype)
    methods = tuple(args.methods)
    device = jax.devices()[0]
    meta = dict(jax=jax.__version__, jaxlib=jaxlib.__version__,
                folx=folx.__version__, python=platform.python_version(), dtype=args.dtype,
                device=f"{device.platform}:{device.device_kind}", cpu_cores=os.cpu_count(), cpu_model=_cpu_model(),
                width=WIDTH, depth=DEPTH, repeats=args.repeats, calls=args.calls, machine=platform.machine(),
                malloc_tuned=malloc_tuned, command=" ".join(sys.argv),
                load_average_at_start=os.getloadavg()[0] if hasattr(os, "getloadavg") else None)
    print(", ".join(f"{k}={v}" for k, v in meta.items()))
    cases = []
    for d in args.dims:
        n = 256 if d >= 100 else 1024
        for grad in (False, True) if args.grad else (False,):
            case = run_case(d, n, dtype, args.repeats, args.calls, methods, grad)
            print_case(case)
            cases.append(case)
    meta["load_average_at_end"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(dict(meta=meta, cases=cases), indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
