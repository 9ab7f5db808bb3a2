"""Operator learning: stochastic first-order vs full-batch (or large-batch) second-order training of DeepONet and
FNO, float64, with the test relative L2 error against wall time and the NTK spectrum of the trained networks.

Question: does the PINN finding (curvature-aware optimizers - L-BFGS, Levenberg-Marquardt - reach far lower errors
than Adam in the same time) carry over to data-driven operator learning, where the loss is a plain regression over
many input functions and mini-batches are natural?

Every (case, method, seed) run trains from the same θ_0 (per seed) for the same wall-time budget of steps
(compilation excluded: ``fit`` reports it apart), evaluating the test rel L2 at every chunk. The report compares
final / best / median-of-last-k errors, the error every method had at the same wall time, time to accuracy levels,
and the NTK spectrum (condition number, eigenvalue decay) of each trained network on a subset of functions and
points; the conclusion is computed from that table. Writes report.md, curves.png, ntk_spectrum.png,
predictions.png, metrics.json and runs.csv into ``out_dir``.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import math
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .. import analysis, datasets, nn, optim, pinn, train
from .. import config as _config
from . import _report
from ._report import environment, finite, write_outputs
from ._train import register, set_dtype

# ----------------------------------------------------------------------------------------------- options

DATASETS = ("antiderivative", "burgers", "diffusion_reaction")
FIRST_ORDER = ("adam", "sgd")  # optimizer names counted as first-order methods (every other one is curvature-aware)
_CASE_KEYS = ("label", "dataset", "dataset_options", "model", "layout", "query_bounds", "physics", "budget_s",
              "target", "ntk")
_METHOD_KEYS = ("label", "optimizer", "minibatch", "stages", "functions", "eval_every", "max_steps", "family",
                "cases")
_DEEPONET_KEYS = ("kind", "width", "depth", "latent", "activation")
_FNO_KEYS = ("kind", "width", "modes", "layers", "activation", "grid_features", "projection_width")
_NTK_KEYS = ("functions", "points")


def _where(path: str) -> str:
    return f"experiment_options.{path}"


def _pos_int(value: Any, path: str, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{_where(path)}: expected an integer >= {low}, got {value!r}")
    return int(value)


def _pos_float(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{_where(path)}: expected a finite number > 0, got {value!r}")
    return float(value)


def _mapping(value: Any, path: str, allowed: Sequence[str]) -> dict:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"{_where(path)}: expected a mapping, got {value!r}")
    extra = [k for k in value if k not in allowed]
    if extra:
        raise ValueError(f"{_where(path)}.{extra[0]}: unknown key; allowed: {', '.join(allowed)}")
    return copy.deepcopy(dict(value))


def _check_ntk(value: Any, path: str) -> dict | None:
    if value is None:
        return None
    ntk = _mapping(value, path, _NTK_KEYS)
    return {"functions": _pos_int(ntk.get("functions", 8), f"{path}.functions"),
            "points": _pos_int(ntk.get("points", 32), f"{path}.points")}


def _check_levels(levels: Any) -> tuple[float, ...]:
    if not isinstance(levels, (list, tuple)) or not levels:
        raise ValueError(f"{_where('levels')}: expected a non-empty list of numbers in (0, 1), got {levels!r}")
    for v in levels:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < 1:
            raise ValueError(f"{_where('levels')}: expected numbers in (0, 1), got {v!r} in {levels!r}")
    return tuple(sorted((float(v) for v in levels), reverse=True))


def _check_seeds(seeds: Any, base: int) -> list[int]:
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool) and seeds >= 1:
        return [base + i for i in range(int(seeds))]
    if (isinstance(seeds, (list, tuple)) and seeds and len(set(seeds)) == len(seeds)
            and all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 0 for s in seeds)):
        return [int(s) for s in seeds]
    raise ValueError(f"{_where('seeds')}: expected an integer >= 1 or a list of distinct integers >= 0, got {seeds!r}")


def _check_model(value: Any, path: str) -> dict:
    if not isinstance(value, Mapping) or value.get("kind") not in ("deeponet", "fno"):
        raise ValueError(f"{_where(path)}: expected a mapping with kind: deeponet or kind: fno, got {value!r}")
    kind = value["kind"]
    m = _mapping(value, path, _DEEPONET_KEYS if kind == "deeponet" else _FNO_KEYS)
    defaults = ({"width": 40, "depth": 2, "latent": 40, "activation": "tanh"} if kind == "deeponet" else
                {"width": 16, "modes": 12, "layers": 4, "activation": "gelu", "grid_features": "periodic",
                 "projection_width": None})
    out = {**defaults, **m}
    for k in ("width", "depth", "latent", "modes", "layers"):
        if k in out:
            _pos_int(out[k], f"{path}.{k}")
    if out.get("projection_width") is not None:
        _pos_int(out["projection_width"], f"{path}.projection_width")
    if out["activation"] not in nn.ACTIVATIONS:
        raise ValueError(f"{_where(path)}.activation: {out['activation']!r} is not allowed; allowed: "
                         f"{', '.join(nn.ACTIVATIONS)}")
    if kind == "fno" and out["grid_features"] not in nn._operator.GRID_FEATURES:
        raise ValueError(f"{_where(path)}.grid_features: {out['grid_features']!r} is not allowed; allowed: "
                         f"{', '.join(nn._operator.GRID_FEATURES)}")
    return out


def _check_cases(cases: Any) -> list[dict]:
    if not isinstance(cases, (list, tuple)) or not cases:
        raise ValueError(f"{_where('cases')}: expected a non-empty list of case mappings (label, dataset, model, ...), "
                         f"got {cases!r}")
    out, seen = [], set()
    for i, raw in enumerate(cases):
        path = f"cases[{i}]"
        c = _mapping(raw, path, _CASE_KEYS)
        if c.get("dataset") not in DATASETS:
            raise ValueError(f"{_where(path)}.dataset: expected one of {', '.join(DATASETS)}, got {c.get('dataset')!r}")
        c["label"] = str(c.get("label") or c["dataset"])
        if c["label"] in seen:
            raise ValueError(f"{_where(path)}.label: duplicate label {c['label']!r}; labels must be unique")
        seen.add(c["label"])
        c["dataset_options"] = _mapping(c.get("dataset_options"), f"{path}.dataset_options",
                                        list(_dataset_options(c["dataset"])))
        c["model"] = _check_model(c.get("model", {"kind": "deeponet"}), f"{path}.model")
        c["layout"] = c.get("layout", "sensors" if c["model"]["kind"] == "deeponet" else None)
        if c["model"]["kind"] == "deeponet" and c["layout"] not in pinn._operator.LAYOUTS:
            raise ValueError(f"{_where(path)}.layout: expected one of {', '.join(pinn._operator.LAYOUTS)}, got "
                             f"{c['layout']!r}")
        if c["model"]["kind"] == "deeponet" and c["layout"] == "sensors" and c["dataset"] == "diffusion_reaction":
            raise ValueError(f"{_where(path)}.layout: 'sensors' needs a 1-D query coordinate; diffusion_reaction has "
                             "(x, t): use 'queries'")
        qb = c.get("query_bounds")
        if qb is not None and (c["model"]["kind"] != "deeponet" or not isinstance(qb, (list, tuple)) or len(qb) != 2):
            raise ValueError(f"{_where(path)}.query_bounds: expected [lo, hi] for a DeepONet case, got {qb!r}")
        phys = c.get("physics")
        if phys is not None:
            if c["dataset"] != "antiderivative" or c["model"]["kind"] != "deeponet":
                raise ValueError(f"{_where(path)}.physics: only the antiderivative DeepONet has physics terms "
                                 "(dG/dy = u, G(u)(0) = 0)")
            phys = _mapping(phys, f"{path}.physics", ("ode", "ic", "data"))
            c["physics"] = {k: _weight(phys.get(k, 1.0), f"{path}.physics.{k}") for k in ("data", "ode", "ic")}
        if "budget_s" in c:
            c["budget_s"] = _pos_float(c["budget_s"], f"{path}.budget_s")
        if c.get("target") is not None:
            t = c["target"]
            if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 < t < 1:
                raise ValueError(f"{_where(path)}.target: expected a number in (0, 1), got {t!r}")
        if "ntk" in c:
            c["ntk"] = _check_ntk(c["ntk"], f"{path}.ntk")
        out.append(c)
    return out


def _weight(v: Any, path: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
        raise ValueError(f"{_where(path)}: expected a finite number >= 0, got {v!r}")
    return float(v)


def _dataset_options(name: str) -> dict:
    import inspect  # noqa: PLC0415

    sig = inspect.signature(getattr(datasets, name))
    return {k: p.default for k, p in sig.parameters.items() if p.kind == p.KEYWORD_ONLY}


def _check_methods(methods: Any, cases: list[dict]) -> list[dict]:
    if not isinstance(methods, (list, tuple)) or not methods:
        raise ValueError(f"{_where('methods')}: expected a non-empty list of method mappings (label, optimizer, ...), "
                         f"got {methods!r}")
    labels = [c["label"] for c in cases]
    out, seen = [], set()
    for i, raw in enumerate(methods):
        path = f"methods[{i}]"
        m = _mapping(raw, path, _METHOD_KEYS)
        spec = m.get("optimizer")
        if not isinstance(spec, Mapping) or "name" not in spec:
            raise ValueError(f"{_where(path)}.optimizer: expected a mapping with a name, e.g. {{name: adam, "
                             f"learning_rate: 1.0e-3}}, got {spec!r}")
        opts = {k: v for k, v in spec.items() if k != "name"}
        try:
            optim.get(spec["name"], **copy.deepcopy(opts))
        except (ValueError, TypeError) as e:
            raise ValueError(f"{_where(path)}.{e}" if str(e).startswith("optimizer") else
                             f"{_where(path)}.optimizer: {e}") from None
        m["optimizer"] = dict(spec)
        m["label"] = str(m.get("label") or spec["name"])
        if m["label"] in seen:
            raise ValueError(f"{_where(path)}.label: duplicate label {m['label']!r}; labels must be unique")
        seen.add(m["label"])
        family = m.get("family", "first" if spec["name"] in FIRST_ORDER else "second")
        if family not in ("first", "second"):
            raise ValueError(f"{_where(path)}.family: expected first or second, got {family!r}")
        m["family"] = family
        m["minibatch"] = None if m.get("minibatch") is None else _pos_int(m["minibatch"], f"{path}.minibatch")
        m["functions"] = None if m.get("functions") is None else _pos_int(m["functions"], f"{path}.functions")
        m["stages"] = m.get("stages")
        if m["stages"] is not None:
            if m.get("minibatch") is not None:
                raise ValueError(f"{_where(path)}.stages: give either minibatch or stages (each with its own "
                                 "minibatch), not both")
            st = m["stages"]
            if not isinstance(st, (list, tuple)) or not st:
                raise ValueError(f"{_where(path)}.stages: expected a non-empty list of {{steps, minibatch}}, got {st!r}")
            stages = []
            for j, s in enumerate(st):
                s = _mapping(s, f"{path}.stages[{j}]", ("steps", "minibatch"))
                steps = _pos_int(s.get("steps"), f"{path}.stages[{j}].steps")
                mb = s.get("minibatch")
                stages.append({"steps": steps,
                               "minibatch": None if mb is None else _pos_int(mb, f"{path}.stages[{j}].minibatch")})
            m["stages"] = stages
        m["eval_every"] = _pos_int(m.get("eval_every", 100), f"{path}.eval_every")
        m["max_steps"] = _pos_int(m.get("max_steps", 10_000_000), f"{path}.max_steps")
        cs = m.get("cases")
        if cs is not None:
            if not isinstance(cs, (list, tuple)) or not cs or any(c not in labels for c in cs):
                raise ValueError(f"{_where(path)}.cases: expected a non-empty list of case labels among "
                                 f"{labels}, got {cs!r}")
            m["cases"] = list(cs)
        else:
            m["cases"] = list(labels)
        out.append(m)
    for c in cases:
        if not any(c["label"] in m["cases"] for m in out):
            raise ValueError(f"{_where('methods')}: no method runs on case {c['label']!r}")
    return out


_SMALL_DATA = {
    "antiderivative": {"n_train": 32, "n_test": 16, "n_sensors": 16, "n_queries": 8, "n_grf": 201},
    "burgers": {"n_train": 16, "n_test": 8, "n_grid": 32, "n_queries": 8, "refine": 4},
    "diffusion_reaction": {"n_train": 8, "n_test": 4, "n_sensors": 9, "n_times": 5, "n_queries": 8, "n_grf": 201},
}


def _shrink(cases: list[dict], methods: list[dict]) -> tuple[list[dict], list[dict]]:
    """The small mode: data sets of a few dozen functions, 8-wide networks, at most 20 steps and 2 s per run."""
    small_cases = []
    for c in cases:
        c = copy.deepcopy(c)
        c["dataset_options"] = {**{k: v for k, v in c["dataset_options"].items() if k not in ("n_train", "n_test")},
                                **_SMALL_DATA[c["dataset"]]}
        m = c["model"]
        m.update({"width": 8, "depth": 2, "latent": 8} if m["kind"] == "deeponet" else
                 {"width": 6, "modes": 4, "layers": 2, "projection_width": None})
        c.pop("budget_s", None)
        c["ntk"] = {"functions": 4, "points": 8}
        small_cases.append(c)
    small_methods = []
    for m in methods:
        m = copy.deepcopy(m)
        m["max_steps"] = min(m["max_steps"], 20)
        m["eval_every"] = min(m["eval_every"], 5)
        if m.get("minibatch"):
            m["minibatch"] = min(m["minibatch"], 8)
        if m.get("functions"):
            m["functions"] = min(m["functions"], 16)
        if m.get("stages"):
            m["stages"] = [{"steps": 5, "minibatch": None if s["minibatch"] is None else min(s["minibatch"], 8)}
                           for s in m["stages"]]
        if m["optimizer"].get("cg_max_steps"):
            m["optimizer"]["cg_max_steps"] = min(m["optimizer"]["cg_max_steps"], 20)
        small_methods.append(m)
    return small_cases, small_methods


@dataclasses.dataclass
class OperatorOptions(_report.Options):
    """``experiment_options`` of operator_learning (checked when the config is loaded, before anything runs).

    cases: ``[{label, dataset, dataset_options, model, layout, query_bounds, physics, budget_s, target, ntk}]``:
        ``dataset`` one of antiderivative, burgers, diffusion_reaction (its generator's keyword options in
        ``dataset_options``, seeded by the config's ``seed``); ``model`` ``{kind: deeponet, width, depth, latent,
        activation}`` or ``{kind: fno, width, modes, layers, activation, grid_features, projection_width}``;
        ``layout`` sensors | queries (DeepONet: observed at the shared sensors or at each function's random
        queries); ``query_bounds`` [lo, hi] mapped to [-1, 1] for the trunk; ``physics`` ``{data, ode, ic}``
        weights of the physics-informed DeepONet terms (antiderivative only); ``budget_s`` and ``ntk`` override the
        global ones; ``target`` a test rel L2 level whose time to reach is reported. Required.
    methods: ``[{label, optimizer, minibatch, stages, functions, eval_every, max_steps, family, cases}]``:
        ``optimizer`` a registry mapping (``{name: adam, learning_rate: {name: exponential_decay, ...}}``);
        ``minibatch`` functions per step (drawn inside the compiled loop, one permutation per epoch) or ``stages``
        ``[{steps, minibatch}]`` (batch-size progression with ``fit_stages``, one compilation per stage; null: the
        full batch); ``functions`` trains on the first n training functions only; ``family`` first | second
        (default: first for adam/sgd); ``cases`` the case labels it runs on (default all). Required.
    budget_s: wall time of steps per run (compile excluded); a run stops at the first evaluation past it.
    seeds: number of seeds (from the config's ``seed``) or a list; the seed fixes θ_0 (the same for all methods).
    levels: test rel L2 levels for the time-to-accuracy table.
    ntk: ``{functions, points}``: NTK spectrum of every trained network (first seed) and of θ_0 on that subset of
        training functions and points (null: skipped).
    select, select_methods: case / method labels to run (default all), e.g.
        ``--set "experiment_options.select=[Burgers FNO]"``.
    small: a smoke-test version of the same cases and methods (:func:`_shrink`): a few dozen functions, tiny
        networks, at most 20 steps and 2 s per run; checks that everything runs, not what it finds.
    """

    cases: Any = None
    methods: Any = None
    budget_s: float = 60.0
    seeds: Any = 1
    levels: Any = dataclasses.field(default_factory=lambda: [1e-1, 1e-2, 3e-3, 1e-3])
    ntk: Any = None
    select: Any = None
    select_methods: Any = None
    small: bool = False

    def check(self, cfg: Any) -> None:
        self.cases = _check_cases(self.cases)
        self.methods = _check_methods(self.methods, self.cases)
        self.budget_s = _pos_float(self.budget_s, "budget_s")
        self.seeds = _check_seeds(self.seeds, cfg.seed)
        self.levels = list(_check_levels(self.levels))
        self.ntk = _check_ntk(self.ntk, "ntk")
        if self.small:
            self.cases, self.methods = _shrink(self.cases, self.methods)
            self.budget_s = min(self.budget_s, 2.0)
        if self.select is not None:
            labels = [c["label"] for c in self.cases]
            if not isinstance(self.select, (list, tuple)) or not self.select or any(x not in labels for x in self.select):
                raise ValueError(f"{_where('select')}: expected a non-empty list of case labels among {labels}, got "
                                 f"{self.select!r}")
            self.cases = [c for c in self.cases if c["label"] in self.select]
            self.methods = [{**m, "cases": [c for c in m["cases"] if c in self.select]} for m in self.methods]
            self.methods = [m for m in self.methods if m["cases"]]
        if self.select_methods is not None:
            labels = [m["label"] for m in self.methods]
            sm = self.select_methods
            if not isinstance(sm, (list, tuple)) or not sm or any(x not in labels for x in sm):
                raise ValueError(f"{_where('select_methods')}: expected a non-empty list of method labels among "
                                 f"{labels}, got {sm!r}")
            self.methods = [m for m in self.methods if m["label"] in sm]
            ran = {c for m in self.methods for c in m["cases"]}
            self.cases = [c for c in self.cases if c["label"] in ran]


# ----------------------------------------------------------------------------------------------- one case


class _Case:
    """A case's data, network, residual, batches and metrics (built once, shared by its methods and seeds)."""

    def __init__(self, spec: Mapping[str, Any], seed: int):
        self.spec = spec
        t0 = time.perf_counter()
        try:
            self.data = getattr(datasets, spec["dataset"])(seed, **spec["dataset_options"])
        except ValueError as e:
            raise ValueError(f"experiment_options.cases[{spec['label']!r}].dataset_options: {e}") from None
        self.data_seconds = time.perf_counter() - t0
        self.kind = spec["model"]["kind"]
        self.layout = spec["layout"] if self.kind == "deeponet" else None
        self.n_train = int(self.data.train.u.shape[0])
        terms, weights = None, None
        if spec.get("physics") is not None:
            terms = {
                "data": pinn.OperatorTerm("data", "queries", description="G(u)(y) - s = 0"),
                "ode": pinn.OperatorTerm("physics", "collocation", derivative=0, description="dG(u)/dy - u = 0"),
                "ic": pinn.OperatorTerm("initial", "origin", description="G(u)(0) = 0"),
            }
            weights = dict(spec["physics"])
        self.terms, self.weights = terms, weights
        self.query_bounds = None if spec.get("query_bounds") is None else tuple(spec["query_bounds"])

    def model(self, seed: int) -> Any:
        m = self.spec["model"]
        key = jax.random.key(seed)
        if self.kind == "deeponet":
            return nn.DeepONet(self.data.n_sensors, self.data.coord_dim, m["width"], m["depth"], m["latent"],
                               m["activation"], key=key)
        return nn.FNO1d(1, 1, m["width"], m["modes"], m["layers"], m["activation"], key=key,
                        n_grid=self.data.n_sensors, projection_width=m["projection_width"],
                        grid_features=m["grid_features"])

    def residual(self, apply: Any) -> pinn.OperatorResidual:
        return pinn.OperatorResidual(apply, self.terms, self.weights, query_bounds=self.query_bounds)

    def batch(self, functions: int | None = None) -> dict:
        n = self.n_train if functions is None else min(functions, self.n_train)
        b = pinn.operator_batch(self.data, self.kind, layout=self.layout or "queries", functions=n)
        if self.terms is not None:  # antiderivative physics: dG/dy = u at the sensors, G(u)(0) = 0
            U = b["data"][0]
            b["physics"] = (U, U)
            b["collocation"] = jnp.asarray(self.data.sensors[:, None], U.dtype)
            b["initial"] = (U, jnp.zeros((U.shape[0], 1), U.dtype))
            b["origin"] = jnp.zeros((1, 1), U.dtype)
        return b

    def metrics(self, res: pinn.OperatorResidual) -> dict:
        test = pinn.operator_rel_l2(res, self.data, split="test", layout="queries")
        # the training functions, where the data term compares them (sensors or their own queries)
        train_ = pinn.operator_rel_l2(res, self.data, split="train", layout=self.layout or "queries")
        return {"test_rel_l2": test, "train_rel_l2": train_}


class _Budget:
    """A ``fit`` callback that stops training once ``seconds`` of step wall time (compile excluded) are spent;
    across ``fit_stages`` stages it adds up the stages' times."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.offset = 0.0
        self.last = 0.0
        self.history = None
        self.hit = False

    def __call__(self, *, history, **_):
        if history is not self.history:
            self.offset += self.last
            self.history = history
        self.last = history.last_wall_time()
        if self.offset + self.last >= self.seconds:
            self.hit = True
            return "stop"
        return None


def _train(case: _Case, method: Mapping[str, Any], seed: int, budget_s: float, progress: Any, label: str) -> dict:
    model = case.model(seed)
    params, apply = nn.functional(model)
    res = case.residual(apply)
    batch = case.batch(method.get("functions"))
    n_fun = int(batch["data"][0].shape[0])
    metrics = case.metrics(res)
    spec = method["optimizer"]
    optimizer = optim.get(spec["name"], **{k: copy.deepcopy(v) for k, v in spec.items() if k != "name"})
    budget = _Budget(budget_s)
    common = dict(metrics=metrics, eval_every=method["eval_every"], progress=progress, callbacks=[budget],
                  key=seed, label=label)
    for name, mb in ([("minibatch", method.get("minibatch"))] +
                     [(f"stages[{j}].minibatch", s["minibatch"]) for j, s in enumerate(method.get("stages") or [])]):
        if mb is not None and mb > n_fun:
            raise ValueError(f"experiment_options.methods[{method['label']!r}].{name}: {mb} functions per step, but "
                             f"case {case.spec['label']!r} trains on {n_fun}")
    if method.get("stages"):
        stages = method["stages"]
        result = train.fit_stages(
            res, params, batch, [s["steps"] for s in stages], optimizer,
            stage_kwargs=[{"minibatch": {"data": s["minibatch"]}} if s["minibatch"] else {} for s in stages],
            **common,
        )
    else:
        mb = method.get("minibatch")
        result = train.fit(res, params, batch, optimizer, method["max_steps"],
                           minibatch=None if mb is None else {"data": mb}, **common)
    status = "budget" if budget.hit and result.status == "stopped" else result.status
    h = result.history
    return {
        "params": result.params,
        "params0": params,
        "apply": apply,
        "residual": res,
        "history": h,
        "status": status,
        "steps": int(result.step),
        "wall_time_s": float(result.wall_time_s),
        "compile_time_s": float(result.compile_time_s),
        "functions": n_fun,
        "num_params": nn.num_params(params),
    }


# ----------------------------------------------------------------------------------------------- NTK


class _Rows(eqx.Module):
    """The rows ``rows`` of a residual vector (a subset of output points for the NTK of an FNO)."""

    base: pinn.OperatorResidual
    rows: jax.Array

    def __call__(self, params, batch):
        return self.base(params, batch)[self.rows]


def _ntk_batch(case: _Case, spec: Mapping[str, int]) -> tuple[dict, np.ndarray | None]:
    """A small batch for the NTK: the first F training functions and Q of their points (evenly spaced); for an FNO
    the rows to keep instead of cutting points."""
    F = min(spec["functions"], case.n_train)
    full = case.batch(F)
    if case.kind == "fno":
        n = case.data.n_sensors
        idx = np.unique(np.linspace(0, n - 1, min(spec["points"], n)).round().astype(int))
        rows = (np.arange(F)[:, None] * n + idx[None, :]).ravel()
        return full, rows
    if case.layout == "sensors":
        m = case.data.n_sensors
        idx = np.unique(np.linspace(0, m - 1, min(spec["points"], m)).round().astype(int))
        out = dict(full)
        U, S = full["data"]
        out["data"] = (U, S[:, idx])
        out["queries"] = full["queries"][idx]
        if "physics" in full:
            out["physics"] = (U, U[:, idx])
            out["collocation"] = full["collocation"][idx]
        return out, None
    U, Y, S = full["data"]
    q = min(spec["points"], Y.shape[1])
    return {"data": (U, Y[:, :q], S[:, :q])}, None


def _ntk_summary(res: Any, params: Any, batch: dict, rows: np.ndarray | None) -> dict:
    fn = res if rows is None else _Rows(res, jnp.asarray(rows))
    K = analysis.ntk(fn, params, batch, chunk_size=256)
    s = analysis.spectrum(K)
    ev = np.asarray(s.eigenvalues, dtype=float)
    top = float(ev[0]) if ev.size else math.nan
    decay = {f"{t:.0e}": int(np.sum(ev > t * top)) for t in (1e-2, 1e-4, 1e-6, 1e-8)}
    out = {
        "rows": int(K.size),
        "num_params": int(K.num_params),
        "lambda_max": top,
        "lambda_min_nonzero": float(top / float(s.condition_number)) if np.isfinite(s.condition_number) else None,
        "condition_number": finite(s.condition_number),
        "numerical_rank": int(s.numerical_rank),
        "effective_rank": finite(s.effective_rank),
        "count_above": decay,
        "eigenvalues": [float(v) for v in ev],
        "trace": float(K.trace),
    }
    if len(K.term_names) > 1:
        out["block_traces"] = {k: float(v) for k, v in K.block_traces().items()}
    return out


# ----------------------------------------------------------------------------------------------- statistics


def _med(values: Sequence[Any]) -> dict:
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    if v.size == 0:
        return {"median": None, "min": None, "max": None, "n": 0}
    return {"median": float(np.median(v)), "min": float(v.min()), "max": float(v.max()), "n": int(v.size)}


def _fmt(v: Any, spec: str = ".2e") -> str:
    if v is None:
        return "—"
    if isinstance(v, (float, np.floating)):
        return format(float(v), spec) if math.isfinite(float(v)) else "—"
    return str(v)


def _cell(st: Mapping[str, Any], n_seeds: int) -> str:
    if st["median"] is None:
        return "—"
    if n_seeds == 1 or st["n"] == 1:
        return _fmt(st["median"])
    return f"{_fmt(st['median'])} [{_fmt(st['min'])} – {_fmt(st['max'])}]"


def _conclusion(table: Mapping[str, Any], methods: Sequence[Mapping[str, Any]]) -> dict:
    """Per case: the best first-order and the best curvature-aware method by the median test error at equal wall
    time; the answer counts the cases in which the curvature-aware one is lower."""
    family = {m["label"]: m["family"] for m in methods}
    per_case, wins, decided = {}, 0, 0
    for case, rows in table.items():
        best = {}
        for fam in ("first", "second"):
            cands = [(r["at_equal_time"]["median"], label) for label, r in rows.items()
                     if family[label] == fam and r["at_equal_time"]["median"] is not None]
            best[fam] = min(cands) if cands else None
        entry = {"equal_time_s": next(iter(rows.values()))["equal_time_s"] if rows else None}
        for fam in ("first", "second"):
            entry[f"best_{fam}"] = None if best[fam] is None else {"method": best[fam][1], "test_rel_l2": best[fam][0]}
        if best["first"] is not None and best["second"] is not None:
            decided += 1
            ratio = best["first"][0] / best["second"][0]
            entry["ratio_first_over_second"] = ratio
            entry["winner"] = "second" if ratio > 1 else "first"
            wins += ratio > 1
        per_case[case] = entry
    if decided == 0:
        answer = "undecided (no case has both a first-order and a curvature-aware method)"
    elif wins == decided:
        answer = "yes"
    elif wins == 0:
        answer = "no"
    else:
        answer = "partly"
    return {"answer": answer, "cases_second_order_wins": wins, "cases_compared": decided, "per_case": per_case}


# ----------------------------------------------------------------------------------------------- figures


def _plt():
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    return plt


def _plot_curves(runs: list[dict], cases: list[str], methods: list[str], path: str) -> str:
    plt = _plt()
    fig, axes = plt.subplots(len(cases), 2, figsize=(12, 3.8 * len(cases)), squeeze=False)
    colors = {m: plt.cm.tab10(i % 10) for i, m in enumerate(methods)}
    for row, case in zip(axes, cases):
        for r in runs:
            if r["case"] != case:
                continue
            c = r["curve"]
            first = r["seed_index"] == 0
            kw = dict(color=colors[r["method"]], lw=1.5 if first else 0.7, alpha=1.0 if first else 0.5,
                      label=r["method"] if first else None)
            t = np.asarray(c["wall_time_s"], float)
            e = np.asarray(c["test_rel_l2"], float)
            row[0].semilogy(t, e, **kw)
            row[1].semilogy(np.asarray(c["step"]), e, **kw)
            if first:
                row[0].semilogy(t, np.asarray(c["train_rel_l2"], float), color=colors[r["method"]], lw=0.8, ls=":")
        row[0].set(xlabel="wall time of steps (s, compile excluded)", ylabel="test rel L2",
                   title=f"{case}: test rel L2 vs wall time (dotted: train)")
        row[1].set(xlabel="step", ylabel="test rel L2", title=f"{case}: vs step")
        row[1].set_xscale("symlog", linthresh=10)
        for ax in row:
            ax.grid(True, which="both", alpha=0.3)
        row[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _plot_ntk(ntk: Mapping[str, Mapping[str, Any]], path: str) -> str:
    plt = _plt()
    cases = list(ntk)
    fig, axes = plt.subplots(1, len(cases), figsize=(6 * len(cases), 4.2), squeeze=False)
    for ax, case in zip(axes[0], cases):
        for i, (label, s) in enumerate(ntk[case].items()):
            ev = np.asarray(s["eigenvalues"], float)
            ev = np.where(ev > 0, ev, np.nan)
            ls = "--" if label == "initial θ_0" else "-"
            cond = _fmt(s["condition_number"], ".1e")
            ax.semilogy(np.arange(1, ev.size + 1), ev / ev[0], ls=ls, color=plt.cm.tab10(i % 10),
                        label=f"{label} (κ = {cond})")
        ax.set(xlabel="index i", ylabel="λ_i / λ_1", title=f"{case}: NTK eigenvalues ({next(iter(ntk[case].values()))['rows']} rows)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _plot_predictions(preds: Mapping[str, Mapping[str, Any]], path: str) -> str:
    plt = _plt()
    cases = list(preds)
    fig, axes = plt.subplots(1, len(cases), figsize=(6 * len(cases), 4.0), squeeze=False)
    for ax, case in zip(axes[0], cases):
        p = preds[case]
        for j, (x, s, g) in enumerate(zip(p["x"], p["true"], p["pred"])):
            color = plt.cm.tab10(j % 10)
            ax.plot(x, s, color=color, lw=2.2, alpha=0.45, label="reference" if j == 0 else None)
            ax.plot(x, g, color=color, lw=1.0, ls="--", label=f"{p['method']}" if j == 0 else None)
        ax.set(xlabel=p["xlabel"], ylabel="output", title=f"{case}: {len(p['x'])} test functions")
        ax.legend(fontsize=8)
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _predictions(case: _Case, run: Mapping[str, Any], n: int = 3) -> dict:
    res, params = run["residual"], run["params"]
    sp = case.data.test
    if case.kind == "fno":
        x = [case.data.sensors] * n
        pred = np.asarray(res.predict(params, jnp.asarray(sp.u[:n])))
        return {"x": x, "true": list(sp.s_grid[:n]), "pred": list(pred), "xlabel": "x", "method": run["method"]}
    order = np.argsort(sp.y[:n, :, -1], axis=1) if case.data.coord_dim == 1 else np.tile(np.arange(sp.y.shape[1]),
                                                                                          (n, 1))
    Y = np.take_along_axis(sp.y[:n], order[..., None], axis=1)
    S = np.take_along_axis(sp.s[:n], order, axis=1)
    pred = np.asarray(res.predict(params, jnp.asarray(sp.u[:n]), jnp.asarray(Y)))
    xlabel = "y" if case.data.coord_dim == 1 else "query index (sorted by t, x)"
    x = list(Y[..., 0]) if case.data.coord_dim == 1 else [np.arange(Y.shape[1])] * n
    return {"x": x, "true": list(S), "pred": list(pred), "xlabel": xlabel, "method": run["method"]}


# ----------------------------------------------------------------------------------------------- experiment


def operator_learning(cfg: _config.RunConfig, out_dir: str, opts: OperatorOptions, *, resume: bool = False,
                      progress: bool | None = None) -> dict:
    """Operator learning with first- and second-order optimizers (module docstring; options: :class:`OperatorOptions`).

    For each case, each method and each seed: the case's network from PRNG key ``seed`` (the same θ_0 for every
    method), trained with ``fit`` (or ``fit_stages`` for a batch-size progression) until ``budget_s`` seconds of
    steps, evaluating the test and train rel L2 every ``eval_every`` steps. Then per case: the table (final, best,
    median of the last ``train.median_of_last`` evaluations, error at equal wall time, time to levels), the NTK
    spectra of the first seed's networks, and the conclusion (:func:`_conclusion`).
    """
    _report.no_resume("operator_learning", resume)
    set_dtype(cfg.dtype)
    case_specs, method_specs = opts.cases, opts.methods
    budget_s, seed_list, levels_t, ntk_spec = opts.budget_s, opts.seeds, tuple(opts.levels), opts.ntk
    k = cfg.train.median_of_last
    os.makedirs(out_dir, exist_ok=True)
    load_before = os.getloadavg()
    t_start = time.perf_counter()

    runs: list[dict] = []
    table: dict = {}
    ntk_out: dict = {}
    preds: dict = {}
    case_info: dict = {}
    for cs in case_specs:
        case = _Case(cs, cfg.seed)
        label = cs["label"]
        budget = cs.get("budget_s", budget_s)
        case_methods = [m for m in method_specs if label in m["cases"]]
        trained: dict = {}
        for si, seed in enumerate(seed_list):
            for m in case_methods:
                run = _train(case, m, seed, budget, progress, f"{label} / {m['label']} / seed {seed}")
                h = run["history"]
                rec = {
                    "case": label, "method": m["label"], "family": m["family"], "seed": seed, "seed_index": si,
                    "status": run["status"], "steps": run["steps"], "wall_time_s": run["wall_time_s"],
                    "compile_time_s": run["compile_time_s"], "functions_per_step": _per_step(m, run["functions"]),
                    "functions": run["functions"], "num_params": run["num_params"],
                    "test": train.summary_stats(h, "test_rel_l2", k), "train": train.summary_stats(h, "train_rel_l2", k),
                    "reached": {f"{lv:g}": _reached(h, lv) for lv in levels_t},
                    "curve": {"step": list(h.eval_steps), "wall_time_s": list(h.wall_time_s),
                              "test_rel_l2": list(h.metrics["test_rel_l2"]),
                              "train_rel_l2": list(h.metrics["train_rel_l2"])},
                    "final_loss": finite(h.loss[-1]) if h.loss else None,
                }
                if cs.get("target") is not None:
                    rec["target"] = {"level": cs["target"], **(_reached(h, cs["target"]) or {"step": None,
                                                                                             "time_s": None})}
                runs.append(rec)
                if si == 0:
                    trained[m["label"]] = {**run, "method": m["label"]}
        # equal wall time per seed: the shortest run's time
        case_runs = [r for r in runs if r["case"] == label]
        for seed in seed_list:
            rs = [r for r in case_runs if r["seed"] == seed]
            t_eq = min(r["wall_time_s"] for r in rs)
            for r in rs:
                r["equal_time_s"] = t_eq
                r["at_equal_time"] = finite(
                    _report.value_at_time(r["curve"]["wall_time_s"], r["curve"]["test_rel_l2"], t_eq))
        table[label] = {}
        for m in case_methods:
            rs = [r for r in case_runs if r["method"] == m["label"]]
            table[label][m["label"]] = {
                "family": m["family"],
                "functions_per_step": rs[0]["functions_per_step"],
                "final": _med([r["test"]["final"] for r in rs]),
                "best": _med([r["test"]["best"] for r in rs]),
                "median_last": _med([r["test"]["median_last"] for r in rs]),
                "train_final": _med([r["train"]["final"] for r in rs]),
                "at_equal_time": _med([r["at_equal_time"] for r in rs]),
                "equal_time_s": float(np.median([r["equal_time_s"] for r in rs])),
                "steps": _med([r["steps"] for r in rs]),
                "wall_time_s": _med([r["wall_time_s"] for r in rs]),
                "compile_time_s": _med([r["compile_time_s"] for r in rs]),
                "reached": {f"{lv:g}": _med([(r["reached"][f"{lv:g}"] or {}).get("time_s") for r in rs])
                            for lv in levels_t},
                "status": sorted({r["status"] for r in rs}),
                "n": len(rs),
            }
            if cs.get("target") is not None:
                table[label][m["label"]]["target"] = _med([r["target"]["time_s"] for r in rs])
        spec_ntk = cs.get("ntk", ntk_spec)
        if spec_ntk is not None:
            nb, rows = _ntk_batch(case, spec_ntk)
            first = next(iter(trained.values()))
            ntk_out[label] = {"initial θ_0": _ntk_summary(first["residual"], first["params0"], nb, rows)}
            for name, run in trained.items():
                ntk_out[label][name] = _ntk_summary(run["residual"], run["params"], nb, rows)
        best_method = min(trained, key=lambda n: (finite(trained[n]["history"].metrics["test_rel_l2"][-1]) or math.inf))
        preds[label] = _predictions(case, trained[best_method])
        first = next(iter(trained.values()))
        st = case.data.test.s if case.kind != "fno" else case.data.test.s_grid
        case_info[label] = {
            # the error of the best constant per test function (its true mean): what a network must beat
            "oracle_constant_rel_l2": float(np.linalg.norm(st - st.mean(axis=1, keepdims=True)) / np.linalg.norm(st)),
            "dataset": cs["dataset"], "dataset_options": cs["dataset_options"], "data_seconds": case.data_seconds,
            "train_functions": case.n_train, "test_functions": int(case.data.test.u.shape[0]),
            "sensors": case.data.n_sensors, "model": cs["model"], "num_params": first["num_params"],
            "layout": case.layout, "query_bounds": cs.get("query_bounds"), "physics": cs.get("physics"),
            "budget_s": budget, "target": cs.get("target"),
            "rows_full_batch": int(sum(math.prod(tuple(b)[-1].shape) for key, b in case.batch().items()
                                       if isinstance(b, tuple))),
        }
    total = time.perf_counter() - t_start
    load_after = os.getloadavg()
    concl = _conclusion(table, method_specs)

    figures = {}
    cases_l = [c["label"] for c in case_specs]
    methods_l = [m["label"] for m in method_specs]
    figures["curves"] = _plot_curves(runs, cases_l, methods_l, os.path.join(out_dir, "curves.png"))
    if ntk_out:
        figures["ntk"] = _plot_ntk(ntk_out, os.path.join(out_dir, "ntk_spectrum.png"))
    figures["predictions"] = _plot_predictions(preds, os.path.join(out_dir, "predictions.png"))
    _write_csv(os.path.join(out_dir, "runs.csv"), runs, levels_t)

    lines = _report_lines(cfg, case_specs, method_specs, case_info, table, ntk_out, concl, figures, levels_t,
                          seed_list, k, total, load_before, load_after)
    summary = {
        "name": cfg.name,
        "experiment": "operator_learning",
        "status": "completed" if all(r["status"] in ("completed", "budget") for r in runs) else "failed",
        "message": f"{len(case_specs)} cases x {len(method_specs)} methods x {len(seed_list)} seeds",
        "steps": int(sum(r["steps"] for r in runs)),
        "wall_time_s": float(sum(r["wall_time_s"] for r in runs)),
        "compile_time_s": float(sum(r["compile_time_s"] for r in runs)),
        "total_time_s": total,
        "load_before": list(load_before),
        "load_after": list(load_after),
        "rel_l2": None,
        "final_loss": None,
        "levels": list(levels_t),
        "seeds": seed_list,
        "budget_s": budget_s,
        "cases": case_info,
        "methods": method_specs,
        "table": table,
        "ntk": ntk_out,
        "conclusion": concl,
        "runs": runs,
        "figures": figures,
        "report": os.path.join(out_dir, "report.md"),
        **environment(cfg),
    }
    write_outputs(out_dir, cfg, lines, summary)
    return summary


def _per_step(m: Mapping[str, Any], n: int) -> str:
    if m.get("stages"):
        return " → ".join(str(s["minibatch"] or n) for s in m["stages"])
    return str(m["minibatch"] or n)


def _reached(h: train.History, level: float) -> dict | None:
    hit = train.time_to_level(h, "test_rel_l2", level)
    return None if hit is None else {"step": hit[0], "time_s": hit[1]}


def _write_csv(path: str, runs: list[dict], levels: Sequence[float]) -> None:
    cols = ["case", "method", "family", "seed", "status", "steps", "wall_time_s", "compile_time_s",
            "functions_per_step", "equal_time_s", "at_equal_time", "test_final", "test_best", "test_median_last",
            "train_final"] + [f"time_to_{lv:g}" for lv in levels]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for r in runs:
            w.writerow([r["case"], r["method"], r["family"], r["seed"], r["status"], r["steps"],
                        f"{r['wall_time_s']:.3f}", f"{r['compile_time_s']:.3f}", r["functions_per_step"],
                        f"{r['equal_time_s']:.3f}", r["at_equal_time"], r["test"]["final"], r["test"]["best"],
                        r["test"]["median_last"], r["train"]["final"]]
                       + [(r["reached"][f"{lv:g}"] or {}).get("time_s") for lv in levels])


def _model_text(info: Mapping[str, Any]) -> str:
    m = info["model"]
    if m["kind"] == "deeponet":
        return (f"DeepONet branch/trunk {m['depth']} x {m['width']}, p = {m['latent']}, {m['activation']} "
                f"({info['num_params']} params)")
    return (f"FNO1d width {m['width']}, {m['modes']} modes, {m['layers']} layers, {m['activation']}, "
            f"{m['grid_features']} grid features ({info['num_params']} params)")


def _report_lines(cfg, case_specs, method_specs, case_info, table, ntk_out, concl, figures, levels, seeds, k, total,
                  load_before, load_after) -> list[str]:
    n_seeds = len(seeds)
    lines = [
        f"# {cfg.name}: does curvature-aware training win in operator learning?",
        "",
        cfg.description or "",
        "",
        f"{len(case_specs)} cases × {len(method_specs)} methods × {n_seeds} seed(s) {seeds}, {cfg.dtype}; "
        f"{total:.0f} s in all (data, compile and NTK included). Machine load (1/5/15-min averages) "
        f"{' / '.join(f'{x:.1f}' for x in load_before)} before, {' / '.join(f'{x:.1f}' for x in load_after)} after, "
        f"on {os.cpu_count()} CPU cores: wall times are comparable within this report only.",
        "",
        "## Cases",
        "",
        "| case | data set | model | training data | test (rel L2 of the per-function mean) | budget of steps per run |",
        "|---|---|---|---|---|---|",
    ]
    for label, info in case_info.items():
        layout = {"sensors": "each function at the m sensors (shared points)",
                  "queries": "each function at its own random queries", None: "input → output on the grid"}
        phys = "" if not info["physics"] else f"; physics terms dG/dy = u, G(u)(0) = 0, weights {info['physics']}"
        lines.append(
            f"| {label} | {info['dataset']} {info['dataset_options'] or ''} | {_model_text(info)} | "
            f"{info['train_functions']} functions, {layout[info['layout']]} ({info['rows_full_batch']} residual rows)"
            f"{phys} | {info['test_functions']} functions "
            f"{'on the grid' if info['model']['kind'] == 'fno' else 'at random queries'} "
            f"({info['oracle_constant_rel_l2']:.2e}) | "
            f"{info['budget_s']:g} s |"
        )
    lines += ["", "## Methods", ""]
    for m in method_specs:
        opt = ", ".join(f"{kk}={v}" for kk, v in m["optimizer"].items() if kk != "name")
        how = (f"stages {[(s['steps'], s['minibatch'] or 'full') for s in m['stages']]} (steps, functions per step)"
               if m.get("stages") else (f"mini-batches of {m['minibatch']} functions" if m.get("minibatch")
                                        else "full batch"))
        sub = f", on the first {m['functions']} training functions" if m.get("functions") else ""
        lines.append(f"- **{m['label']}** ({'first-order' if m['family'] == 'first' else 'curvature-aware'}): "
                     f"`{m['optimizer']['name']}` ({opt}); {how}{sub}; evaluated every {m['eval_every']} steps; "
                     f"cases: {', '.join(m['cases'])}.")
    lines += [
        "",
        "## Results",
        "",
        f"Test relative L2 error over all test functions and query points: final, best, median of the last {k} "
        "evaluations, and the error at **equal wall time** t* (the last evaluation at or before the shortest run's "
        "time of steps; compile excluded)"
        + (f"; median [min – max] over {n_seeds} seeds" if n_seeds > 1 else "")
        + ". Time to level: wall time (s) of the first evaluation from which the test error stays at or below it "
          "(median over the seeds that reach it; — : never). status budget: stopped by the time budget.",
        "",
    ]
    lv = [f"{x:g}" for x in levels]
    for case, rows in table.items():
        t_eq = next(iter(rows.values()))["equal_time_s"]
        lines += [
            f"### {case}",
            "",
            f"t* = {t_eq:.1f} s. "
            + (f"Target test rel L2 ≤ {case_info[case]['target']:g}: the 'target' column gives the time to reach it."
               if case_info[case]["target"] else ""),
            "",
            "| method | functions / step | final | best | median of last | at t* | train (final) | "
            + " | ".join(f"≤ {x} (s)" for x in lv)
            + (" | target (s)" if case_info[case]["target"] else "")
            + " | steps | wall (s) | compile (s) | status |",
            "|---" * (11 + len(lv) + (1 if case_info[case]["target"] else 0)) + "|",
        ]
        for name, st in rows.items():
            lines.append(
                f"| {name} | {st['functions_per_step']} | {_cell(st['final'], n_seeds)} | {_cell(st['best'], n_seeds)}"
                f" | {_cell(st['median_last'], n_seeds)} | **{_cell(st['at_equal_time'], n_seeds)}** | "
                f"{_cell(st['train_final'], n_seeds)} | "
                + " | ".join(_fmt(st["reached"][x]["median"], ".1f") for x in lv)
                + (f" | {_fmt(st['target']['median'], '.1f')}" if case_info[case]["target"] else "")
                + f" | {_fmt(st['steps']['median'], '.0f')} | {_fmt(st['wall_time_s']['median'], '.1f')} | "
                f"{_fmt(st['compile_time_s']['median'], '.1f')} | {', '.join(st['status'])} |"
            )
        lines.append("")
    if ntk_out:
        lines += [
            "## NTK spectrum of the trained networks",
            "",
            "Empirical NTK K = J Jᵀ of the residual rows on a subset of training functions and points (first seed), at "
            "θ_0 and after each method; κ = λ_max / λ_min over the numerically nonzero eigenvalues (threshold "
            "max(N, P)·eps·λ_max), effective rank exp(entropy), and how many eigenvalues lie above 1e-2 … 1e-8 of "
            "λ_max (the decay).",
            "",
        ]
        for case, rows in ntk_out.items():
            first = next(iter(rows.values()))
            lines += [
                f"### {case} ({first['rows']} rows, P = {first['num_params']})",
                "",
                "| network | λ_max | λ_min⁺ | κ | numerical rank | effective rank | # > 1e-2 | # > 1e-4 | # > 1e-6 | "
                "# > 1e-8 |" + (" tr K per term |" if "block_traces" in first else ""),
                "|---" * (10 + (1 if "block_traces" in first else 0)) + "|",
            ]
            for name, s in rows.items():
                c = s["count_above"]
                lines.append(
                    f"| {name} | {_fmt(s['lambda_max'])} | {_fmt(s['lambda_min_nonzero'])} | "
                    f"{_fmt(s['condition_number'])} | {s['numerical_rank']} | {_fmt(s['effective_rank'], '.1f')} | "
                    f"{c['1e-02']} | {c['1e-04']} | {c['1e-06']} | {c['1e-08']} |"
                    + (" " + ", ".join(f"{kk}: {_fmt(v)}" for kk, v in s["block_traces"].items()) + " |"
                       if "block_traces" in s else "")
                )
            lines.append("")
    lines += ["## Conclusion", "", "Computed from the tables above:", ""]
    lines += _conclusion_lines(concl, table, ntk_out, case_info)
    lines += [""]
    lines += [f"![test error curves]({os.path.basename(figures['curves'])})", ""]
    if "ntk" in figures:
        lines += [f"![NTK spectra]({os.path.basename(figures['ntk'])})", ""]
    lines += [f"![predictions]({os.path.basename(figures['predictions'])})", "",
              "Per-run numbers: [runs.csv](runs.csv); everything: [metrics.json](metrics.json).", ""]
    return lines


def _conclusion_lines(concl, table, ntk_out, case_info) -> list[str]:
    out = []
    for case, e in concl["per_case"].items():
        f, s = e.get("best_first"), e.get("best_second")
        if f is None or s is None:
            out.append(f"- **{case}**: not compared (needs a first-order and a curvature-aware method).")
            continue
        ratio = e["ratio_first_over_second"]
        if ratio > 1:
            verdict = (f"the curvature-aware **{s['method']}** wins: {_fmt(s['test_rel_l2'])} against "
                       f"{_fmt(f['test_rel_l2'])} for {f['method']}, {ratio:.1f}× lower")
        else:
            verdict = (f"the first-order **{f['method']}** wins: {_fmt(f['test_rel_l2'])} against "
                       f"{_fmt(s['test_rel_l2'])} for {s['method']}, {1 / ratio:.1f}× lower")
        text = f"- **{case}**, at equal wall time t* = {e['equal_time_s']:.1f} s: {verdict}."
        target = case_info[case]["target"]
        if target:
            hit = {m: r["target"]["median"] for m, r in table[case].items() if r["target"]["median"] is not None}
            text += (f" Target ≤ {target:g}: reached by " + ", ".join(f"{m} ({t:.0f} s)" for m, t in sorted(
                hit.items(), key=lambda kv: kv[1])) if hit else f" Target ≤ {target:g}: reached by no method")
            text += "."
        rows = table[case]
        gaps = {m: r["final"]["median"] / r["train_final"]["median"] for m, r in rows.items()
                if r["final"]["median"] and r["train_final"]["median"]}
        if gaps:
            worst = max(gaps, key=gaps.get)
            text += (f" Generalisation: test/train error ratio {min(gaps.values()):.1f}–{max(gaps.values()):.1f} "
                     f"(largest for {worst}).")
        if case in ntk_out:
            ks = {m: s["condition_number"] for m, s in ntk_out[case].items() if s["condition_number"]}
            if ks:
                text += (" NTK condition number κ: " + ", ".join(f"{m} {_fmt(v, '.1e')}" for m, v in ks.items())
                         + ".")
        out.append(text)
    n, w = concl["cases_compared"], concl["cases_second_order_wins"]
    out += ["", f"**Answer: {concl['answer']}** — the best curvature-aware method has the lower test error at equal "
                f"wall time in {w} of {n} case(s)."]
    return out


register("operator_learning", operator_learning, OperatorOptions)
