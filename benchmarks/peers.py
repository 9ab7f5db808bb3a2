"""Benchmark against the toolkits a user would pick instead: a hand-written jitted optax loop, scipy L-BFGS-B on
JAX gradients, and DeepXDE (JAX backend; PyTorch backend when torch is installed).

Problem (same for every contender): 2D Poisson on the unit square, -Δu = 2π² sin(πx) sin(πy), u = 0 on the
boundary (``sj.problems.get("poisson_nd", dim=2, k=1)``), a tanh MLP with 4 hidden layers of width 64
(P = 12,737), loss = mean square of the PDE residual + mean square of the boundary residual (sciml_jax's
L = ½ Σ_k mean r_k² is half of it: the same minimiser; Adam is invariant to the factor up to its ε).

Fairness rules (printed at the top of the output and stored in the JSON/markdown, see ``fairness_rules``):
  * Same points: the 1024 interior + 256 boundary Sobol points of ``sj.sampling.sample`` for every contender.
    DeepXDE gets them as ``anchors`` (interior; ``num_domain = num_boundary = 0``) and a ``PointSetBC`` on the
    boundary points, so its PDE loss is the mean over the same 1024 interior points and its boundary loss the
    mean over the same 256 boundary points (before, ``num_domain=1024, num_boundary=256`` gave it a PDE residual
    on 1280 points and 1536 network rows). What cannot be equalised: DeepXDE evaluates the network *and its
    Hessian* on every training row (1280) and then discards the PDE residual on the 256 boundary rows; sciml_jax
    takes the Laplacian on the 1024 interior points only. That is DeepXDE's design and is counted against it.
  * Same initialisation: every contender starts from the weights of ``sj.nn.MLP(..., key=PRNGKey(seed))``;
    DeepXDE's flax ``FNN`` gets them copied in (kernel = Wᵀ, bias = b) before ``model.compile``, checked by the
    largest difference of the two networks' initial outputs on the evaluation grid (reported).
  * Same threads: every worker process runs with ``OMP/OPENBLAS/MKL_NUM_THREADS = --threads`` and, for
    ``--threads 1`` (the default), ``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1``;
    scipy's L-BFGS-B also runs inside ``threadpoolctl.threadpool_limits(--threads)``. CPU seconds per timed call
    are recorded beside the wall seconds (cpu/wall ≈ 1 means the run was single-threaded and got a full core).
  * Same dtype per comparison: float32 and float64 are separate worker processes; DeepXDE runs float64 when asked
    (``dde.config.set_default_float("float64")`` with ``JAX_ENABLE_X64=1``; the dtype it actually produced is
    recorded).
  * Interleaving: the driver runs one timed call per contender round-robin, so load from other processes hits
    all alike; speed ratios are taken *per round* (fit / hand loop, DeepXDE / fit: ms per step, > 1 = the first
    is slower) and reported as the median over rounds with min and max. Compilation is measured apart.

Contenders
    Adam (lr 1e-3), ms per step:
      sciml_jax.fit          ``sj.train.fit`` with ``optax.adam``; timed from outside, per call of ``--chunk`` steps,
                             its own compile time subtracted (everything else fit does -- history, checks -- counts)
      optax_scan_forward     the floor: a hand-written jitted ``lax.scan`` of ``--chunk`` optax Adam steps, the
                             Laplacian by folx's forward Laplacian (what a careful user writes)
      optax_scan_hessian     the same loop with the Laplacian as trace(vmap(jax.hessian)) (what most users write)
      deepxde_jax            DeepXDE ``model.train(iterations=chunk)`` (JAX backend, float32 and float64)
      deepxde_pytorch        DeepXDE PyTorch backend, if ``torch`` imports
    L-BFGS from the initial network to ``--target-loss`` (in sciml_jax's L), wall time and iterations:
      sciml_jax.lbfgs        ``sj.train.fit`` with ``sj.optim.lbfgs()`` (optax L-BFGS, zoom line search, memory 10),
                             stopped by a callback checked every ``--lbfgs-check`` steps (iterations: first step at
                             the target; the time to target is also pro-rated to that step). Value-and-gradient
                             evaluations = iterations whose step did not reuse the line search's evaluation
                             (``history.info["fit.reused_value_grad"]``) + line-search evaluations
                             (``history.info["lbfgs.linesearch_steps"]``); a reused step still runs one forward
                             residual evaluation for the per-term log (counted apart).
      scipy.L-BFGS-B         ``scipy.optimize.minimize(method="L-BFGS-B", jac=True, maxcor=10)`` on a jitted
                             ``jax.value_and_grad`` of the same loss, float64 on the scipy side; evaluations = nfev
      deepxde_*              DeepXDE's L-BFGS where its backend has one (not the JAX backend)
    Accuracy at equal wall time: every Adam contender's relative L2 error on the 100 × 100 evaluation grid after
    each timed round, interpolated (log-linear) at the wall time the slowest contender reached.

Method: every contender lives in a worker process per (library, dtype) -- float32 and float64 need a different
``jax_enable_x64`` -- that waits on stdin; the driver sends "run N steps of contender c" round-robin over *all*
contenders, ``--repeats`` rounds at least (more until every contender has trained ``--budget-s`` seconds).
Results: JSON (``--out``) and a markdown table beside it.

CPU numbers on a shared machine are pessimistic: the load average before and after is recorded in the JSON.

Usage::

    nice -n 5 python benchmarks/peers.py --repeats 5 --out benchmarks/results/peers_fair.json
    python benchmarks/peers.py --quick                             # smoke test
    python benchmarks/peers.py --dtypes float64 --no-deepxde --repeats 7
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ADAM_LR = 1e-3


# ============================================================================================ worker side


def _blas_threads() -> list[dict]:
    """The BLAS/OpenMP pools this process has loaded and their thread counts (threadpoolctl), for the record."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return [{"note": "threadpoolctl not installed"}]
    return [{k: d.get(k) for k in ("user_api", "internal_api", "num_threads")} for d in threadpool_info()]


def _emit(obj) -> None:
    sys.stdout.write("@@" + json.dumps(obj) + "\n")
    sys.stdout.flush()


class _SjWorker:
    """sciml_jax, hand-written optax loops and scipy, in one dtype (the process's jax_enable_x64)."""

    def __init__(self, cfg: dict):
        import tempfile

        import jax

        # fit compiles its chunk on every call; the persistent cache makes repeated calls cheap (compile time is
        # subtracted anyway, this only shortens the benchmark)
        jax.config.update("jax_compilation_cache_dir", tempfile.mkdtemp(prefix="sj_peers_cache_"))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        import folx
        import jax.numpy as jnp
        import optax

        import sciml_jax as sj

        self.jax, self.jnp, self.optax, self.sj = jax, jnp, optax, sj
        self.cfg = cfg
        self.dtype = jnp.result_type(float)
        self.prob = sj.problems.get("poisson_nd", dim=2, k=1)
        model = sj.nn.MLP(2, 1, cfg["width"], cfg["depth"], activation="tanh", key=jax.random.PRNGKey(cfg["seed"]))
        self.params0, self.apply = sj.nn.functional(model)
        self.residual = sj.pinn.residual(self.prob, self.apply)
        self.batch = sj.sampling.sample(
            self.prob.domain, {"interior": cfg["interior"], "boundary": cfg["boundary"]}, "sobol", 0
        )
        self.err = jax.jit(sj.pinn.rel_l2(self.prob, self.apply))
        self.loss = jax.jit(self.residual.loss)
        self.num_params = int(sum(x.size for x in jax.tree.leaves(self.params0)))
        self.state: dict = {}
        apply, prob = self.apply, self.prob

        # ---- the hand-written loss: what a user writes without a toolkit (network shared to isolate overhead)
        def make_loss(laplacian):
            def loss(params, xi, xb):
                def pde(x):
                    u = lambda y: apply(params, y)  # noqa: E731
                    return -laplacian(u, x) - prob.forcing(x)

                r_pde = jax.vmap(pde)(xi)
                r_bc = jax.vmap(lambda x: apply(params, x) - prob.exact(x))(xb)
                return 0.5 * jnp.mean(r_pde**2) + 0.5 * jnp.mean(r_bc**2)

            return loss

        lap_forward = lambda u, x: folx.forward_laplacian(u, sparsity_threshold=0)(x).laplacian  # noqa: E731
        lap_hessian = lambda u, x: jnp.trace(jax.hessian(u)(x))  # noqa: E731
        self.hand_losses = {"optax_scan_forward": make_loss(lap_forward), "optax_scan_hessian": make_loss(lap_hessian)}

    # -- Adam contenders
    def contenders(self) -> list[str]:
        return ["sciml_jax.fit", "optax_scan_forward", "optax_scan_hessian"]

    def _scan_runner(self, loss, chunk):
        jax, optax = self.jax, self.optax
        opt = optax.adam(ADAM_LR)

        def run(params, state, xi, xb):
            def body(carry, _):
                p, s = carry
                value, g = jax.value_and_grad(loss)(p, xi, xb)
                u, s = opt.update(g, s, p)
                return (optax.apply_updates(p, u), s), value

            return jax.lax.scan(body, (params, state), None, length=chunk)

        return opt, jax.jit(run)

    def setup(self, name: str) -> dict:
        chunk = self.cfg["chunk"]
        t0 = time.perf_counter()
        if name == "sciml_jax.fit":
            opt = self.optax.adam(ADAM_LR)
            # warms the persistent cache with the timed program (same chunk length); the result is discarded and
            # the timed calls start from params0
            self.sj.train.fit(self.residual, self.params0, self.batch, opt, chunk, eval_every=chunk, progress=False,
                              opt_state=opt.init(self.params0))
            self.state[name] = (self.params0, opt.init(self.params0), opt)
        else:
            opt, run = self._scan_runner(self.hand_losses[name], chunk)
            st = opt.init(self.params0)
            xi, xb = self.batch["interior"], self.batch["boundary"]
            run = run.lower(self.params0, st, xi, xb).compile()
            self.state[name] = (self.params0, st, run)
        return {"compile_s": time.perf_counter() - t0, "num_params": self.num_params, "dtype": str(self.dtype),
                "rel_l2_init": float(self.err(self.params0))}

    def adam(self, name: str, steps: int) -> dict:
        jax = self.jax
        if name == "sciml_jax.fit":
            params, st, opt = self.state[name]
            t0, c0 = time.perf_counter(), time.process_time()
            res = self.sj.train.fit(self.residual, params, self.batch, opt, steps, eval_every=steps, progress=False,
                                    opt_state=st)
            seconds = time.perf_counter() - t0 - res.compile_time_s
            cpu_s = time.process_time() - c0 - res.compile_time_s  # compile time subtracted as wall (approximate)
            self.state[name] = (res.params, res.opt_state, opt)
            params, compile_s = res.params, res.compile_time_s
        else:
            params, st, run = self.state[name]
            assert steps == self.cfg["chunk"]
            t0, c0 = time.perf_counter(), time.process_time()
            (params, st), _ = run(params, st, self.batch["interior"], self.batch["boundary"])
            jax.block_until_ready(params)
            seconds = time.perf_counter() - t0
            cpu_s = time.process_time() - c0
            self.state[name] = (params, st, run)
            compile_s = 0.0
        return {"seconds": seconds, "cpu_s": cpu_s, "compile_s": compile_s, "rel_l2": float(self.err(params)),
                "loss": float(self.loss(params, self.batch))}

    # -- L-BFGS contenders
    def lbfgs_contenders(self) -> list[str]:
        return ["sciml_jax.lbfgs", "scipy.L-BFGS-B"]

    def lbfgs(self, name: str, target: float, max_iter: int) -> dict:
        jax, jnp, sj = self.jax, self.jnp, self.sj
        if name == "sciml_jax.lbfgs":
            from sciml_jax.train._fit import CACHED_KEY

            def stop(history, **_):
                return "stop" if history.loss and min(history.loss[-self.cfg["lbfgs_check"]:]) <= target else None

            warm_s = 0.0
            if "lbfgs_opt" not in self.state:
                # one optimizer object for all repeats (fit memoises its compiled chunk per optimizer identity);
                # an untimed warm-up of one chunk compiles it, so the timed runs (wall and CPU) hold no compilation
                self.state["lbfgs_opt"] = sj.optim.lbfgs()
                t0 = time.perf_counter()
                sj.train.fit(self.residual, self.params0, self.batch, self.state["lbfgs_opt"],
                             self.cfg["lbfgs_check"], eval_every=self.cfg["lbfgs_check"], progress=False)
                warm_s = time.perf_counter() - t0
            t0, c0 = time.perf_counter(), time.process_time()
            res = sj.train.fit(self.residual, self.params0, self.batch, self.state["lbfgs_opt"], max_iter,
                               eval_every=self.cfg["lbfgs_check"], progress=False, callbacks=[stop])
            seconds = time.perf_counter() - t0 - res.compile_time_s
            cpu_s = time.process_time() - c0 - res.compile_time_s
            losses = np.asarray(res.history.loss)
            n = len(losses)  # steps run (history.loss[s]: the loss before update s)
            hit = np.nonzero(losses <= target)[0]
            final = float(self.loss(res.params, self.batch))
            info = res.history.info
            reused = np.asarray(info.get(CACHED_KEY, [0.0] * n), float)[:n]
            ls = np.asarray(info.get("lbfgs.linesearch_steps", [math.nan] * n), float)[:n]

            def evals(k):  # value-and-gradient evaluations over the first k steps
                return float(np.sum(1.0 - reused[:k]) + np.sum(ls[:k]))

            it = int(hit[0]) if hit.size else None
            # updates 0..it-1 took the parameters to the target; the loss there (history.loss[it]) is the accepted
            # trial of update it-1's line search, already counted, unless step it did not reuse it (then +1). The
            # same count as scipy's nfev, which includes the evaluation at its last accepted point.
            n_to = n if it is None else it
            vg_evals = evals(n) if it is None else evals(it) + (1.0 - reused[it])
            return {"seconds": seconds, "cpu_s": cpu_s, "compile_s": res.compile_time_s, "warmup_s": warm_s,
                    "iterations": it,
                    "steps_run": n, "reached": bool(hit.size) or final <= target, "final_loss": final,
                    "seconds_to_target": None if it is None else seconds * it / n,
                    "value_grad_evals": vg_evals, "value_grad_evals_per_iter": vg_evals / max(n_to, 1),
                    "linesearch_evals": float(np.sum(ls[:n_to])), "reused_steps": int(np.sum(reused[:n_to])),
                    "forward_only_evals": int(np.sum(reused[:n_to])),
                    "rel_l2": float(self.err(res.params))}
        from jax.flatten_util import ravel_pytree
        from scipy.optimize import minimize

        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # the env variables set by the driver still apply
            import contextlib

            threadpool_limits = lambda limits: contextlib.nullcontext()  # noqa: E731

        flat0, unravel = ravel_pytree(self.params0)
        vg = jax.jit(jax.value_and_grad(lambda th: self.residual.loss(unravel(th), self.batch)))
        t0 = time.perf_counter()
        jax.block_until_ready(vg(flat0))
        compile_s = time.perf_counter() - t0
        dtype = flat0.dtype
        trace = {"nfev": 0, "nit": 0, "nfev_at_target": None, "t_at_target": None}

        def fun(x):
            trace["nfev"] += 1
            v, g = vg(jnp.asarray(x, dtype=dtype))
            return float(v), np.asarray(g, dtype=np.float64)

        def callback(intermediate_result):
            trace["nit"] += 1
            if intermediate_result.fun <= target:
                trace["nfev_at_target"] = trace["nfev"]
                raise StopIteration

        with threadpool_limits(limits=self.cfg["threads"]):
            blas = _blas_threads()
            t0, c0 = time.perf_counter(), time.process_time()
            out = minimize(fun, np.asarray(flat0, np.float64), jac=True, method="L-BFGS-B", callback=callback,
                           options={"maxiter": max_iter, "maxcor": 10, "ftol": 0.0, "gtol": 0.0,
                                    "maxfun": 20 * max_iter})
            seconds = time.perf_counter() - t0
            cpu_s = time.process_time() - c0
        theta = unravel(jnp.asarray(out.x, dtype=dtype))
        reached = bool(out.fun <= target)
        return {"seconds": seconds, "cpu_s": cpu_s, "compile_s": compile_s, "compile_apart": True,
                "iterations": int(out.nit) if reached else None, "nfev": int(out.nfev), "nit": int(out.nit),
                "steps_run": int(out.nit), "reached": reached, "final_loss": float(out.fun),
                "seconds_to_target": seconds if reached else None,
                "value_grad_evals": int(out.nfev), "value_grad_evals_per_iter": out.nfev / max(int(out.nit), 1),
                "message": str(out.message), "blas_threads": blas, "rel_l2": float(self.err(theta))}


class _DeepXDEWorker:
    """DeepXDE on one backend (DDE_BACKEND set by the driver before import)."""

    def __init__(self, cfg: dict):
        import deepxde as dde
        import jax

        import sciml_jax as sj

        self.dde, self.cfg = dde, cfg
        self.backend = dde.backend.backend_name
        if cfg["dtype"] == "float64":
            dde.config.set_default_float("float64")
        dde.config.set_random_seed(cfg["seed"])
        if self.backend == "jax":
            import jax.numpy as bk

            self.sin = bk.sin
        else:
            import torch

            self.sin = torch.sin
        pi = math.pi
        sin = self.sin

        if self.backend == "jax":
            def pde(x, y):
                d_xx, _ = dde.grad.hessian(y, x, i=0, j=0)
                d_yy, _ = dde.grad.hessian(y, x, i=1, j=1)
                return -d_xx - d_yy - 2 * pi**2 * sin(pi * x[:, 0:1]) * sin(pi * x[:, 1:2])
        else:
            def pde(x, y):
                d_xx = dde.grad.hessian(y, x, i=0, j=0)
                d_yy = dde.grad.hessian(y, x, i=1, j=1)
                return -d_xx - d_yy - 2 * pi**2 * sin(pi * x[:, 0:1]) * sin(pi * x[:, 1:2])

        # the same points as sciml_jax: interior as anchors (and nothing else in the PDE set), boundary through a
        # PointSetBC with the exact solution's values there
        prob = sj.problems.get("poisson_nd", dim=2, k=1)
        batch = sj.sampling.sample(prob.domain, {"interior": cfg["interior"], "boundary": cfg["boundary"]}, "sobol", 0)
        xi, xb = np.asarray(batch["interior"]), np.asarray(batch["boundary"])
        ub = np.asarray(jax.vmap(prob.exact)(batch["boundary"])).reshape(-1, 1)
        geom = dde.geometry.Rectangle([0.0, 0.0], [1.0, 1.0])
        bc = dde.icbc.PointSetBC(xb, ub)
        data = dde.data.PDE(geom, pde, bc, num_domain=0, num_boundary=0, anchors=xi, num_test=256)
        net = dde.nn.FNN([2] + [cfg["width"]] * cfg["depth"] + [1], "tanh", "Glorot normal")
        # the same initial weights as sciml_jax (sj.nn.MLP with the same key, in this process's dtype)
        model = sj.nn.MLP(2, 1, cfg["width"], cfg["depth"], activation="tanh", key=jax.random.PRNGKey(cfg["seed"]))
        sj_params, sj_apply = sj.nn.functional(model)
        layers = [(np.asarray(l.weight), np.asarray(l.bias)) for l in sj_params.layers]
        self._copy_weights(net, data, layers)
        self.model = dde.Model(data, net)
        if self.backend == "jax":
            # Model._compile_jax draws fresh weights whenever Model.params is None (a new Model's); a non-None
            # placeholder keeps the copied net.params, which compile then takes as [net.params, external vars]
            self.model.params = [net.params, []]
        g = np.linspace(0.0, 1.0, 100)
        xx, yy = np.meshgrid(g, g, indexing="ij")
        self.x_eval = np.stack([xx.ravel(), yy.ravel()], axis=1)
        self.u_eval = np.sin(pi * self.x_eval[:, 0]) * np.sin(pi * self.x_eval[:, 1])
        self.u0_sj = np.asarray(jax.vmap(lambda x: sj_apply(sj_params, x))(jax.numpy.asarray(self.x_eval))).reshape(-1)
        self.num_train_points = int(len(data.train_x))
        self.point_counts = {"train_rows": int(len(data.train_x)), "pde_points": int(len(data.train_x_all)),
                             "bc_points": int(sum(data.num_bcs)),
                             "same_points_as_sj": bool(np.array_equal(data.train_x_all, xi.astype(data.train_x_all.dtype))
                                                       and np.array_equal(data.train_x_bc, xb.astype(data.train_x_bc.dtype)))}

    def _copy_weights(self, net, data, layers) -> None:
        """Puts sciml_jax's initial weights (W: (out, in), b: (out,)) into DeepXDE's FNN."""
        if self.backend == "jax":
            import jax

            x0 = data.test()[0]
            params = net.init(jax.random.PRNGKey(self.cfg["seed"]), x0)
            inner = params["params"]
            if len(inner) != len(layers):
                raise ValueError(f"DeepXDE FNN has {len(inner)} layers, sciml_jax's MLP {len(layers)}")
            new = {}
            for i, (w, b) in enumerate(layers):
                old = inner[f"denses_{i}"]
                if old["kernel"].shape != w.T.shape or old["bias"].shape != b.shape:
                    raise ValueError(f"layer {i}: DeepXDE kernel {old['kernel'].shape} vs sciml_jax weight {w.shape}")
                # in the run's dtype: DeepXDE 1.15's flax FNN creates float32 parameters even after
                # set_default_float("float64") (flax's param_dtype default); float64 parameters make its network
                # float64 end to end, as the float64 comparison requires
                dt = np.dtype(self.cfg["dtype"])
                new[f"denses_{i}"] = {"kernel": jax.numpy.asarray(w.T, dt), "bias": jax.numpy.asarray(b, dt)}
            self.param_dtypes = {"stock_deepxde": str(inner["denses_0"]["kernel"].dtype), "used": self.cfg["dtype"]}
            net.params = {**params, "params": new}
        else:
            import torch

            self.param_dtypes = {"stock_deepxde": str(net.linears[0].weight.dtype),
                                 "used": str(net.linears[0].weight.dtype)}
            with torch.no_grad():
                for lin, (w, b) in zip(net.linears, layers, strict=True):
                    lin.weight.copy_(torch.as_tensor(w, dtype=lin.weight.dtype))
                    lin.bias.copy_(torch.as_tensor(b, dtype=lin.bias.dtype))

    def _metrics(self) -> dict:
        u = np.asarray(self.model.predict(self.x_eval)).reshape(-1)
        err = float(np.linalg.norm(u - self.u_eval) / np.linalg.norm(self.u_eval))
        loss = float(np.sum(self.model.train_state.loss_train)) if self.model.train_state.loss_train is not None else math.nan
        return {"rel_l2": err, "loss": 0.5 * loss}  # reported in sciml_jax's convention L = ½ Σ mse

    def contenders(self) -> list[str]:
        return [f"deepxde_{self.backend}"]

    def lbfgs_contenders(self) -> list[str]:
        return [] if self.backend == "jax" else [f"deepxde_{self.backend}.lbfgs"]

    def setup(self, name: str) -> dict:
        t0 = time.perf_counter()
        self.model.compile("adam", lr=ADAM_LR)
        compile_s = time.perf_counter() - t0
        u0 = np.asarray(self.model.predict(self.x_eval))
        self._dtype = str(u0.dtype)
        self._init_diff = float(np.max(np.abs(u0.reshape(-1) - self.u0_sj)))
        e0 = self._metrics()["rel_l2"]
        t0 = time.perf_counter()
        self.model.train(iterations=1, display_every=10**9, verbose=0)  # compiles (jit) the step
        compile_s += time.perf_counter() - t0
        return {"compile_s": compile_s, "dtype": self._dtype, "num_train_points": self.num_train_points,
                **self.point_counts, "param_dtypes": self.param_dtypes, "init_max_abs_diff_vs_sj": self._init_diff, "rel_l2_init": e0,
                "note": "one Adam step taken during setup (the jit compile)"}

    def adam(self, name: str, steps: int) -> dict:
        t0, c0 = time.perf_counter(), time.process_time()
        self.model.train(iterations=steps, display_every=steps, verbose=0)
        seconds = time.perf_counter() - t0
        cpu_s = time.process_time() - c0
        return {"seconds": seconds, "cpu_s": cpu_s, "compile_s": 0.0, **self._metrics()}

    def lbfgs(self, name: str, target: float, max_iter: int) -> dict:
        dde = self.dde
        dde.optimizers.config.set_LBFGS_options(maxiter=max_iter, ftol=0.0, gtol=0.0, maxcor=10)
        # restart from a fresh network so every repeat starts alike
        self.__init__(self.cfg)
        self.model.compile("L-BFGS")
        t0 = time.perf_counter()
        self.model.train(display_every=10, verbose=0)
        seconds = time.perf_counter() - t0
        losses = 0.5 * np.asarray([np.sum(v) for v in self.model.losshistory.loss_train])
        steps = np.asarray(self.model.losshistory.steps)
        hit = np.nonzero(losses <= target)[0]
        m = self._metrics()
        return {"seconds": seconds, "compile_s": 0.0, "iterations": int(steps[hit[0]]) if hit.size else None,
                "steps_run": int(steps[-1]), "reached": bool(hit.size), "final_loss": float(losses[-1]),
                "rel_l2": m["rel_l2"], "note": "DeepXDE's L-BFGS runs to maxiter; time is for the whole run"}


def worker_main(kind: str, cfg: dict) -> None:
    w = _SjWorker(cfg) if kind == "sj" else _DeepXDEWorker(cfg)
    _emit({"ok": True, "contenders": w.contenders(), "lbfgs_contenders": w.lbfgs_contenders()})
    for line in sys.stdin:
        cmd = json.loads(line)
        try:
            if cmd["cmd"] == "setup":
                out = w.setup(cmd["name"])
            elif cmd["cmd"] == "adam":
                out = w.adam(cmd["name"], cmd["steps"])
            elif cmd["cmd"] == "lbfgs":
                out = w.lbfgs(cmd["name"], cmd["target"], cmd["max_iter"])
            elif cmd["cmd"] == "quit":
                return
            else:
                out = {"error": f"unknown command {cmd['cmd']!r}"}
        except Exception as e:  # noqa: BLE001 - reported to the driver, which marks the contender failed
            out = {"error": f"{type(e).__name__}: {e}"}
        _emit(out)


# ============================================================================================ driver side


class _Proc:
    def __init__(self, kind: str, dtype: str, cfg: dict, env_extra: dict):
        env = dict(os.environ)
        env.update(thread_env(cfg["threads"]))
        env.update(env_extra)
        env["JAX_PLATFORMS"] = env.get("JAX_PLATFORMS", "") or ("cuda,cpu" if cfg.get("gpu") else "cpu")
        self.label = f"{kind}/{dtype}"
        self.p = subprocess.Popen(
            [sys.executable, __file__, "--worker", kind, "--worker-cfg", json.dumps({**cfg, "dtype": dtype})],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )
        self.hello = self._read()

    def _read(self) -> dict:
        for line in self.p.stdout:
            if line.startswith("@@"):
                return json.loads(line[2:])
        err = self.p.stderr.read()
        return {"error": f"worker {self.label} exited: {err.strip().splitlines()[-1] if err.strip() else '?'}",
                "stderr_tail": err[-2000:]}

    def call(self, **cmd) -> dict:
        if self.p.poll() is not None:
            return {"error": f"worker {self.label} is not running"}
        self.p.stdin.write(json.dumps(cmd) + "\n")
        self.p.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.p.poll() is None:
            try:
                self.p.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                self.p.stdin.flush()
                self.p.wait(timeout=30)
            except Exception:  # noqa: BLE001
                self.p.kill()


def thread_env(threads: int) -> dict:
    """The environment every worker gets: the same thread settings for all contenders."""
    n = str(threads)
    env = {"OMP_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n, "MKL_NUM_THREADS": n}
    flags = os.environ.get("XLA_FLAGS", "")
    if threads == 1:
        flags = (flags + " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1").strip()
    if flags:
        env["XLA_FLAGS"] = flags
    return env


def fairness_rules(args) -> list[str]:
    """The rules this run applied, in words (printed first, stored in the JSON and the markdown)."""
    thr = (f"every worker process: OMP/OPENBLAS/MKL_NUM_THREADS={args.threads}"
           + (", XLA_FLAGS=--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1 (single-threaded XLA CPU)"
              if args.threads == 1 else " (XLA's own thread pool left at its default)")
           + f"; scipy's L-BFGS-B inside threadpoolctl.threadpool_limits({args.threads}); cpu seconds per call recorded")
    return [
        f"same points: {args.interior} interior + {args.boundary} boundary Sobol points of sj.sampling.sample for every "
        "contender; DeepXDE gets the interior points as anchors (num_domain = num_boundary = 0) and the boundary "
        "points in a PointSetBC, so its PDE loss averages over the same interior points and its boundary loss over "
        "the same boundary points",
        f"not equalised: DeepXDE evaluates the network and its Hessian on all {args.interior + args.boundary} training "
        f"rows and discards the PDE residual on the {args.boundary} boundary rows (its design); sciml_jax and the "
        f"hand loops take the Laplacian on the {args.interior} interior points only",
        f"same initial weights: sj.nn.MLP(2, 1, {args.width}, {args.depth}, tanh, key=PRNGKey({args.seed})) for every "
        "contender; copied into DeepXDE's FNN (kernel = W^T, bias = b), checked by the largest difference of the "
        "initial outputs on the 100 x 100 grid",
        "same threads: " + thr,
        "same dtype within a comparison: float32 and float64 run in separate processes; DeepXDE float64 via "
        "dde.config.set_default_float('float64') with JAX_ENABLE_X64=1 and float64 parameters (DeepXDE 1.15's flax "
        "FNN would create float32 parameters: flax's param_dtype default; its output and parameter dtypes recorded)",
        f"same optimiser settings: Adam lr {ADAM_LR} (optax defaults otherwise, DeepXDE's JAX backend uses optax.adam "
        "too); L-BFGS memory 10, no gradient/function tolerance stop, stop at the first iterate with "
        f"L = 1/2 sum_k mean r_k^2 <= {args.target_loss:g}",
        f"interleaved: one timed call of {args.chunk} Adam steps per contender, round-robin; speed ratios are taken "
        "per round (ms/step of A over ms/step of B, > 1: A slower) and reported as median [min, max] over rounds "
        "both ran; compile time is measured apart and not in any ratio",
        f"L-BFGS: sciml_jax's time to target is the run's time pro-rated to the target iteration (its stop callback "
        f"looks every {args.lbfgs_check} steps); scipy stops at the target iteration by callback. Evaluations: "
        "scipy's nfev; sciml_jax's value-and-gradient evaluations = non-reused steps + line-search evaluations",
    ]


def _ratio_stats(a: list[dict], b: list[dict]) -> dict | None:
    """Per-round ratios of seconds (same steps per round): median, min, max over the rounds both ran."""
    n = min(len(a), len(b))
    if n == 0:
        return None
    r = np.asarray([a[i]["seconds"] / b[i]["seconds"] for i in range(n)])
    out = {"median": float(np.median(r)), "min": float(np.min(r)), "max": float(np.max(r)), "rounds": int(n),
           "per_round": [round(float(x), 4) for x in r]}
    # the same ratio in CPU seconds (less sensitive to how much of a core each process got under load)
    c = [_cpu(a[i]) / _cpu(b[i]) for i in range(n) if _cpu(a[i]) and _cpu(b[i])]
    if c:
        out["cpu_median"], out["cpu_min"], out["cpu_max"] = float(np.median(c)), float(np.min(c)), float(np.max(c))
    return out


def _cpu(rec: dict) -> float | None:
    """CPU seconds of a timed call; None when the call compiled (its compile time, subtracted as wall time, makes
    the CPU figure meaningless) or none was recorded. ``compile_apart``: compiled before the timed call."""
    c = rec.get("cpu_s")
    compiled_in_call = not rec.get("compile_apart", False) and rec.get("compile_s", 0.0) > 0.05 * rec["seconds"]
    if c is None or compiled_in_call or c <= 0:
        return None
    return float(c)


def _interp_log(t: np.ndarray, e: np.ndarray, at: float) -> float:
    """log-linear interpolation of error e(t) at time ``at`` (t increasing, starts at 0 with the initial error)."""
    return float(np.exp(np.interp(at, t, np.log(e))))


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dtypes", nargs="+", choices=("float32", "float64"), default=["float32", "float64"])
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--interior", type=int, default=1024)
    ap.add_argument("--boundary", type=int, default=256)
    ap.add_argument("--chunk", type=int, default=100, help="Adam steps per timed call")
    ap.add_argument("--repeats", type=int, default=5, help="interleaved rounds of Adam timing")
    ap.add_argument("--budget-s", type=float, default=30.0,
                    help="Adam wall-time budget per contender for the accuracy-at-equal-time comparison")
    ap.add_argument("--lbfgs-repeats", type=int, default=3)
    ap.add_argument("--target-loss", type=float, default=1e-3, help="L-BFGS target in L = ½ Σ mean r_k²")
    ap.add_argument("--max-iter", type=int, default=1000, help="L-BFGS iteration cap")
    ap.add_argument("--lbfgs-check", type=int, default=10,
                    help="sciml_jax L-BFGS: steps per fit chunk, after which the stop callback checks the target")
    ap.add_argument("--threads", type=int, default=1,
                    help="threads for every worker: BLAS/OpenMP pools, and single-threaded XLA CPU when 1")
    ap.add_argument("--no-deepxde", action="store_true")
    ap.add_argument("--no-lbfgs", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--gpu", action="store_true", help="let workers use the GPU (JAX_PLATFORMS=cuda,cpu)")
    ap.add_argument("--quick", action="store_true", help="smoke test: small net, few points, 2 rounds")
    ap.add_argument("--out", default=None)
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--worker-cfg", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker is None:
        for name in ("width", "depth", "interior", "boundary", "chunk", "repeats", "lbfgs_repeats", "max_iter",
                     "lbfgs_check", "threads"):
            if getattr(args, name) < 1:
                ap.error(f"--{name.replace('_', '-')}: expected a positive integer, got {getattr(args, name)}")
        if args.quick:
            args.width, args.depth, args.interior, args.boundary = 16, 2, 128, 32
            args.chunk, args.repeats, args.lbfgs_repeats, args.max_iter, args.target_loss = 20, 2, 1, 200, 1e-2
            args.budget_s = 0.5
        if args.out is None:
            args.out = str(HERE / "results" / ("peers_quick.json" if args.quick else "peers.json"))
    return args


def _fmt(x, spec=".3g") -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def markdown(result: dict) -> str:
    cfg = result["config"]
    lines = ["Fairness rules:\n"] + [f"- {r}" for r in result["fairness_rules"]] + [""]
    lines.append(f"Load average (1, 5, 15 min): start {result['loadavg_start']}, end {result.get('loadavg_end')}; "
                 f"{result['machine']['cpus']} CPUs.\n")
    for dtype, sec in result["dtypes"].items():
        if sec.get("ratios"):
            lines.append(f"**{dtype}: per-round time ratios** (ms/step of A / ms/step of B over interleaved rounds of "
                         f"{cfg['chunk']} Adam steps; > 1: A is slower)\n")
            lines.append("| A / B | median | min | max | rounds | CPU-seconds ratio: median [min, max] |")
            lines.append("|---|---|---|---|---|---|")
            for key, r in sec["ratios"].items():
                cpu = (f"{r['cpu_median']:.3f} [{r['cpu_min']:.3f}, {r['cpu_max']:.3f}]" if "cpu_median" in r else "–")
                lines.append(f"| {key} | {r['median']:.3f} | {r['min']:.3f} | {r['max']:.3f} | {r['rounds']} | {cpu} |")
            lines.append("")
        lines.append(f"**{dtype}: Adam** (ms per step over all rounds; cpu/wall: median CPU seconds per wall second of "
                     "a timed call; rel L2 error after the same Adam wall time)\n")
        lines.append("| contender | ms/step (median) | ms/step (min) | cpu/wall | compile s | rel L2 init | "
                     f"rel L2 at t = {sec.get('equal_time_s', float('nan')):.1f} s |")
        lines.append("|---|---|---|---|---|---|---|")
        for name, a in sec["adam"].items():
            if "skipped" in a:
                lines.append(f"| {name} | skipped: {a['skipped']} | | | | | |")
                continue
            lines.append(f"| {name} | {a['ms_per_step_median']:.2f} | {a['ms_per_step_min']:.2f} | "
                         f"{_fmt(a.get('cpu_per_wall'), '.2f')} | {a['compile_s']:.1f} | "
                         f"{a['setup']['rel_l2_init']:.4e} | {a.get('rel_l2_at_equal_time', float('nan')):.3e} |")
        dde = {k: v for k, v in sec["adam"].items() if k.startswith("deepxde") and "setup" in v}
        for k, v in dde.items():
            st = v["setup"]
            lines.append(f"\n{k}: dtype {st.get('dtype')}, PDE points {st.get('pde_points')}, BC points "
                         f"{st.get('bc_points')}, training rows {st.get('train_rows')}, parameter dtype {st.get('param_dtypes')}, "
                         "same points as sciml_jax "
                         f"{st.get('same_points_as_sj')}, max |u0_dde - u0_sj| on the grid "
                         f"{_fmt(st.get('init_max_abs_diff_vs_sj'), '.1e')}")
        if sec.get("lbfgs"):
            lines.append("")
            lines.append(f"**{dtype}: L-BFGS to L <= {cfg['target_loss']:g}** (median of {cfg['lbfgs_repeats']} runs; "
                         "time to target excludes compilation; evals = value-and-gradient evaluations)\n")
            lines.append("| contender | s to target | CPU s to target | ms/iter | iterations | evals | evals/iter | "
                         "reached | final loss | rel L2 |")
            lines.append("|---|---|---|---|---|---|---|---|---|---|")
            for name, b in sec["lbfgs"].items():
                if "skipped" in b or "seconds_median" not in b:
                    lines.append(f"| {name} | skipped: {b.get('skipped', b.get('status'))} | | | | | | | | |")
                    continue
                lines.append(f"| {name} | {_fmt(b.get('seconds_to_target_median'), '.2f')} | "
                             f"{_fmt(b.get('cpu_to_target_median'), '.2f')} | {_fmt(b.get('ms_per_iter_median'), '.1f')} | "
                             f"{_fmt(b['iterations'], 'd')} | "
                             f"{_fmt(b.get('value_grad_evals'), '.0f')} | "
                             f"{_fmt(b.get('value_grad_evals_per_iter'), '.2f')} | {b['reached']} | "
                             f"{b['final_loss']:.3e} | {b['rel_l2']:.3e} |")
            if sec.get("lbfgs_ratio"):
                r = sec["lbfgs_ratio"]
                lines.append(f"\ntime to target, sciml_jax.lbfgs / scipy.L-BFGS-B per repeat: median {r['median']:.3f} "
                             f"[{r['min']:.3f}, {r['max']:.3f}] over {r['rounds']} repeats"
                             + (f"; in CPU seconds: median {r['cpu_median']:.3f} [{r['cpu_min']:.3f}, "
                                f"{r['cpu_max']:.3f}] over {r['cpu_rounds']}" if "cpu_median" in r else ""))
        lines.append("")
    return "\n".join(lines)


def _finish(result: dict, args) -> None:
    """Summaries (medians, ratios, equal-time accuracy) and the JSON/markdown files; safe to call repeatedly."""
    for dtype, sec in result["dtypes"].items():
        adam = sec["adam"]
        for name, a in adam.items():
            if "skipped" in a or not a["rounds"]:
                a.setdefault("skipped", "no successful round")
                continue
            ms = np.asarray([r["seconds"] for r in a["rounds"]]) / args.chunk * 1e3
            a["ms_per_step_median"] = float(np.median(ms))
            a["ms_per_step_min"] = float(np.min(ms))
            a["compile_s"] = float(a["setup"]["compile_s"])
            cw = [_cpu(r) / r["seconds"] for r in a["rounds"] if _cpu(r) and r["seconds"] > 0]
            a["cpu_per_wall"] = float(np.median(cw)) if cw else None
            t = np.concatenate([[0.0], np.cumsum([r["seconds"] for r in a["rounds"]])])
            a["curve"] = {"wall_s": t.tolist(), "rel_l2": [a["setup"]["rel_l2_init"]] + [r["rel_l2"] for r in a["rounds"]],
                          "steps": [0] + [args.chunk * (i + 1) for i in range(len(a["rounds"]))],
                          "loss": [None] + [r["loss"] for r in a["rounds"]]}
        ok = {k: v for k, v in adam.items() if "skipped" not in v}
        ratios = {}
        if "sciml_jax.fit" in ok:
            fit_rounds = ok["sciml_jax.fit"]["rounds"]
            for k, v in ok.items():
                if k == "sciml_jax.fit":
                    continue
                key = f"{k} / sciml_jax.fit" if k.startswith("deepxde") else f"sciml_jax.fit / {k}"
                r = (_ratio_stats(v["rounds"], fit_rounds) if k.startswith("deepxde")
                     else _ratio_stats(fit_rounds, v["rounds"]))
                if r is not None:
                    ratios[key] = r
        sec["ratios"] = ratios
        if "sciml_jax.fit" in ok:
            for v in ok.values():
                v["speed_vs_fit"] = ok["sciml_jax.fit"]["ms_per_step_median"] / v["ms_per_step_median"]
        if ok:
            t_eq = min(args.budget_s, min(v["curve"]["wall_s"][-1] for v in ok.values()))
            sec["equal_time_s"] = t_eq
            for v in ok.values():
                c = v["curve"]
                v["rel_l2_at_equal_time"] = _interp_log(np.asarray(c["wall_s"]), np.asarray(c["rel_l2"]), t_eq)
                v["steps_at_equal_time"] = float(np.interp(t_eq, c["wall_s"], c["steps"]))
        for name, b in sec["lbfgs"].items():
            if "skipped" in b:
                continue
            if not b["runs"]:
                b["status"] = "not run (--no-lbfgs)" if args.no_lbfgs else "no completed run (yet)"
                continue
            secs = [r["seconds"] for r in b["runs"]]
            b["seconds_median"] = float(np.median(secs))
            tt = [r["seconds_to_target"] for r in b["runs"] if r.get("seconds_to_target") is not None]
            b["seconds_to_target_median"] = float(np.median(tt)) if len(tt) == len(secs) else None
            ct = [_cpu(r) * r["seconds_to_target"] / r["seconds"] for r in b["runs"]
                  if _cpu(r) and r.get("seconds_to_target") is not None]
            b["cpu_to_target_median"] = float(np.median(ct)) if ct else None
            mi = [1e3 * r["seconds"] / r["steps_run"] for r in b["runs"] if r.get("steps_run")]
            b["ms_per_iter_median"] = float(np.median(mi)) if mi else None
            last = b["runs"][int(np.argsort(secs)[len(secs) // 2])]
            b.update({k: last.get(k) for k in ("iterations", "reached", "final_loss", "rel_l2", "value_grad_evals",
                                               "value_grad_evals_per_iter")})
        runs = {k: sec["lbfgs"].get(k, {}).get("runs", []) for k in ("sciml_jax.lbfgs", "scipy.L-BFGS-B")}
        pairs = [(a["seconds_to_target"], b["seconds_to_target"]) for a, b in zip(*runs.values())
                 if a.get("seconds_to_target") and b.get("seconds_to_target")]
        if pairs:
            r = np.asarray([x / y for x, y in pairs])
            sec["lbfgs_ratio"] = {"median": float(np.median(r)), "min": float(np.min(r)), "max": float(np.max(r)),
                                  "rounds": len(pairs), "what": "seconds to target, sciml_jax.lbfgs / scipy.L-BFGS-B"}
            c = [(_cpu(a) * a["seconds_to_target"] / a["seconds"]) / (_cpu(b) * b["seconds_to_target"] / b["seconds"])
                 for a, b in zip(*runs.values()) if _cpu(a) and _cpu(b) and a.get("seconds_to_target")
                 and b.get("seconds_to_target")]
            if c:
                sec["lbfgs_ratio"].update({"cpu_median": float(np.median(c)), "cpu_min": float(np.min(c)),
                                           "cpu_max": float(np.max(c)), "cpu_rounds": len(c)})
    result["loadavg_end"] = _loadavg()
    result["markdown"] = markdown(result)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    with open(os.path.splitext(args.out)[0] + ".md", "w") as f:
        f.write(result["markdown"])


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.worker is not None:
        worker_main(args.worker, json.loads(args.worker_cfg))
        return {}
    cfg = {k: getattr(args, k) for k in ("width", "depth", "interior", "boundary", "chunk", "seed", "gpu",
                                         "threads", "lbfgs_check")}
    result = {
        "benchmark": "peers",
        "config": {**cfg, "repeats": args.repeats, "budget_s": args.budget_s, "lbfgs_repeats": args.lbfgs_repeats, "target_loss": args.target_loss,
                   "max_iter": args.max_iter, "adam_lr": ADAM_LR, "problem": "poisson_nd(dim=2, k=1)"},
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count()},
        "fairness_rules": fairness_rules(args),
        "thread_env": thread_env(args.threads),
        "loadavg_start": _loadavg(),
        "dtypes": {},
        "skipped": {},
    }
    print("Fairness rules:\n" + "\n".join(f"  - {r}" for r in result["fairness_rules"]), flush=True)
    print(f"load average at start: {result['loadavg_start']}", flush=True)
    have_torch = importlib.util.find_spec("torch") is not None
    have_dde = importlib.util.find_spec("deepxde") is not None
    procs: list[tuple[str, _Proc]] = []
    try:
        for dtype in args.dtypes:
            x64 = "1" if dtype == "float64" else "0"
            procs.append((dtype, _Proc("sj", dtype, cfg, {"JAX_ENABLE_X64": x64})))
            if args.no_deepxde:
                result["skipped"][f"deepxde/{dtype}"] = "--no-deepxde"
            elif not have_dde:
                result["skipped"][f"deepxde/{dtype}"] = "deepxde is not installed (pip install -e '.[bench]')"
            else:
                # DeepXDE's JAX backend truncates float64 to float32 unless x64 is on; we switch it on to try
                procs.append((dtype, _Proc("deepxde", dtype, cfg, {"DDE_BACKEND": "jax", "JAX_ENABLE_X64": x64})))
                if have_torch:
                    procs.append((dtype, _Proc("deepxde", dtype, cfg, {"DDE_BACKEND": "pytorch"})))
                else:
                    result["skipped"][f"deepxde_pytorch/{dtype}"] = "torch is not installed in this environment"
        # ---- set up every contender (compile apart)
        adam_jobs, lbfgs_jobs = [], []
        for dtype, proc in procs:
            sec = result["dtypes"].setdefault(dtype, {"adam": {}, "lbfgs": {}})
            if "error" in proc.hello:
                result["skipped"][proc.label] = proc.hello["error"]
                print(f"[skip] {proc.label}: {proc.hello['error']}", flush=True)
                continue
            for name in proc.hello["contenders"]:
                info = proc.call(cmd="setup", name=name)
                if "error" in info:
                    sec["adam"][name] = {"skipped": info["error"]}
                    print(f"[skip] {name} {dtype}: {info['error']}", flush=True)
                    continue
                sec["adam"][name] = {"setup": info, "rounds": []}
                adam_jobs.append((dtype, name, proc))
                print(f"[setup] {dtype} {name}: {info}", flush=True)
            for name in proc.hello["lbfgs_contenders"]:
                sec["lbfgs"][name] = {"runs": []}
                lbfgs_jobs.append((dtype, name, proc))
            if proc.hello["contenders"] and proc.hello["contenders"][0] == "deepxde_jax":
                sec["lbfgs"]["deepxde_jax.lbfgs"] = {
                    "skipped": "DeepXDE's JAX backend has no L-BFGS (its jax optimizers: adam, rmsprop, sgd)"}
        # ---- Adam: interleaved rounds; at least --repeats rounds, and until every contender has trained for
        # --budget-s seconds (the equal wall time of the accuracy comparison)
        rnd = 0
        while True:
            busy = False
            for dtype, name, proc in adam_jobs:
                entry = result["dtypes"][dtype]["adam"][name]
                if "skipped" in entry:
                    continue
                if rnd >= args.repeats and sum(r["seconds"] for r in entry["rounds"]) >= args.budget_s:
                    continue
                busy = True
                out = proc.call(cmd="adam", name=name, steps=args.chunk)
                if "error" in out:
                    entry["skipped"] = out["error"]
                    continue
                entry["rounds"].append(out)
            rnd += 1
            if rnd % 5 == 0 or not busy:
                print(f"[adam] round {rnd} done, load {_loadavg()}", flush=True)
            if not busy:
                break
        _finish(result, args)  # partial results on disk before the (long) L-BFGS phase
        # ---- L-BFGS: interleaved repeats
        if not args.no_lbfgs:
            for rep in range(args.lbfgs_repeats):
                for dtype, name, proc in lbfgs_jobs:
                    entry = result["dtypes"][dtype]["lbfgs"][name]
                    if "skipped" in entry:
                        continue
                    out = proc.call(cmd="lbfgs", name=name, target=args.target_loss, max_iter=args.max_iter)
                    if "error" in out:
                        entry["skipped"] = out["error"]
                        continue
                    entry["runs"].append(out)
                    print(f"[lbfgs] {dtype} {name}: {out['seconds']:.2f} s, {out['iterations']} it, "
                          f"reached {out['reached']}", flush=True)
    finally:
        for _, proc in procs:
            proc.close()

    _finish(result, args)
    print(result["markdown"])
    print(f"load average: start {result['loadavg_start']}, end {result['loadavg_end']}; wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
