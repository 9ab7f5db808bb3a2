"""Run configurations: YAML -> validated dataclasses, before anything is compiled.

A config is a mapping with the sections below; every key is checked (unknown key, wrong type, value outside the
allowed set -> :class:`ConfigError` naming the dotted key and what is allowed). Problem and optimizer options are
checked against the factory's signature by ``sciml_jax.problems.get`` / ``sciml_jax.optim.get``. Every number must be
finite (``.nan``/``.inf`` are refused wherever they appear).

Files and ``--set`` values are read by one YAML loader (PyYAML's safe loader with two changes): ``1e-3``/``1E5``
are numbers, as in YAML 1.2 (YAML 1.1 wants ``1.0e-3``), and a key repeated in one mapping is an error instead of
silently keeping the last value. Files must be UTF-8.

Example::

    name: quickstart
    dtype: float64
    seed: 0
    problem: {name: poisson_1d, k: 2}
    model: {width: 32, depth: 3, activation: tanh}
    sampling: {method: sobol, points: {interior: 128, boundary: 2}}
    loss: {weights: {bc: 10.0}}
    optimizer: {name: adam, learning_rate: 1.0e-3}
    train: {steps: 5000, eval_every: 250}
    compare:                      # optional: several runs, each a partial override of the sections above
      adam: {}
      lbfgs: {optimizer: {name: lbfgs}}
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import re
import typing
from collections.abc import Mapping
from typing import Any

import yaml


class ConfigError(ValueError):
    """A configuration mistake; the message names the dotted key and the allowed values."""


@dataclasses.dataclass(frozen=True)
class ProblemConfig:
    """``problem``: a registered ``name`` or a ``factory`` in the user's file (``my_pde.py:make``), plus options."""

    name: str | None = None
    options: dict = dataclasses.field(default_factory=dict)
    factory: str | None = None  # "path/to/file.py:function"; a relative path is resolved against the config's folder

    def build(self) -> Any:
        """The problem (raises ValueError naming the option on a bad one)."""
        from . import problems  # noqa: PLC0415 - keep `import sciml_jax.config` light

        return problems.build(self.name, self.factory, **self.options)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    width: int = 32
    depth: int = 3
    activation: str = "tanh"
    fourier_features: int = 0
    fourier_sigma: float = 1.0
    # exact periodicity: coordinate index -> period (sciml_jax.nn.PeriodicEmbedding), e.g. {0: 6.283185307179586}
    periodic: dict | None = None
    # the problem's hard constraint (an output transform) replaces the terms it satisfies exactly
    hard_constraint: bool = False


@dataclasses.dataclass(frozen=True)
class AdaptiveSamplingConfig:
    """``sampling.adaptive``: residual-based resampling during training (:class:`sciml_jax.sampling.Resampler`)."""

    method: str = "none"  # none | rad | rar_d | r3
    every: int | None = None  # steps between events (a multiple of the fit chunk, train.eval_every by default)
    on_plateau: dict | None = None  # {patience: steps, min_delta: relative improvement}
    k: float | None = None  # RAD exponent (default: rad 1, rar_d 2)
    c: float | None = None  # RAD uniform share (default: rad 1, rar_d 0)
    candidates: int | None = None  # candidate pool size (default 10 x the term's points)
    replace: float = 0.1  # rar_d: fraction of the points exchanged per event
    term: str = "pde"  # residual term driving the sampling; its point set is moved
    sampler: str = "sobol"  # static sampler of the candidate pool
    # no events from this global step on (then the points stay fixed, so a second-order method can converge on
    # them); null: until the run's last step
    until: int | None = None


@dataclasses.dataclass(frozen=True)
class SamplingConfig:
    method: str = "sobol"
    points: dict | None = None  # point set -> count; default: the problem's default_points
    adaptive: AdaptiveSamplingConfig = AdaptiveSamplingConfig()


@dataclasses.dataclass(frozen=True)
class LossConfig:
    weights: dict = dataclasses.field(default_factory=dict)
    # causal weighting over time slices (sciml_jax.pinn.Causal): {term: pde, chunks: 32, epsilon: 1.0}
    causal: dict | None = None


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    name: str = "adam"
    options: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    steps: int = 1000
    eval_every: int = 100
    chunk: int | None = None
    checkpoint_every: int | None = None
    progress: bool | None = None
    # batch-size progression: [{points: {interior: 64, ...}, steps: 500}, ...]; replaces `steps` and
    # `sampling.points` (nested Sobol/Halton prefixes when the sampling method is quasi-random)
    stages: list | None = None
    # a finite blow-up ends the run as "diverged" when the smallest loss of a whole chunk exceeds this factor times
    # the best loss so far (null: off); see sciml_jax.train.fit
    divergence_factor: float | None = 1e4
    # reports quote each metric's final value, its best and the median of its last `median_of_last` evaluations
    median_of_last: int = 5
    # time-marching (sciml_jax.pinn.TimeWindows, sciml_jax.train.fit_windows): the time interval split into this
    # many equal windows trained one after another, each from the previous one's solution; `steps` is then the total,
    # split equally. Or a mapping {windows: 10, local_time: true} (local_time: each window's network sees
    # tau = (t - t_k) / (t_{k+1} - t_k), the default)
    time_windows: int | dict | None = None


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """A whole validated run configuration."""

    name: str
    problem: ProblemConfig
    model: ModelConfig = ModelConfig()
    sampling: SamplingConfig = SamplingConfig()
    loss: LossConfig = LossConfig()
    optimizer: OptimizerConfig = OptimizerConfig()
    train: TrainConfig = TrainConfig()
    dtype: str = "float64"
    seed: int = 0
    description: str = ""
    compare: dict | None = None  # run name -> raw override mapping (validated into RunConfig by `runs()`)
    experiment: str = "train"  # registered experiment (sciml_jax.experiments.names())
    experiment_options: dict = dataclasses.field(default_factory=dict)  # checked by the experiment's options hook
    # observations per data entry: {entry: {file, inputs, outputs, drop_nonfinite, subsample, noise, seed}}
    data: dict = dataclasses.field(default_factory=dict)

    def runs(self) -> dict[str, "RunConfig"]:
        """The runs this config asks for: itself, or one per ``compare`` entry (base deep-merged with override)."""
        if not self.compare:
            return {self.name: self}
        base = to_dict(self)
        base.pop("compare")
        return {
            name: from_dict(_deep_merge(base, override or {}), path=f"compare.{name}")
            for name, override in self.compare.items()
        }


_CHOICES = {
    "dtype": ("float32", "float64"),
    "model.activation": ("tanh", "sin", "gelu", "silu", "swish", "relu", "softplus", "sigmoid"),
    "sampling.method": ("uniform", "sobol", "halton", "lhs"),
    "sampling.adaptive.method": ("none", "rad", "rar_d", "r3"),
    "sampling.adaptive.sampler": ("uniform", "sobol", "halton", "lhs"),
}

_POSITIVE = {
    "model.width", "model.depth", "train.eval_every", "train.chunk", "train.checkpoint_every", "train.median_of_last",
    "sampling.adaptive.every", "sampling.adaptive.candidates", "sampling.adaptive.until",
}
_NONNEGATIVE = {"model.fourier_features", "train.steps", "seed"}


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp)).replace("NoneType", "null")


def _check_type(value: Any, tp: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _check_type(value, a, path)
            except ConfigError as e:  # try the next member of the union
                errors.append(e)
        raise ConfigError(f"{path}: expected {' or '.join(_type_name(a) for a in args)}, got {value!r}")
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{path}: expected a finite number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {value!r}")
        return value
    if tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: expected a mapping, got {value!r}")
        return dict(value)
    return value


def _build(cls: type, data: Any, path: str, flat_options: bool = False) -> Any:
    """Build dataclass ``cls`` from ``data``, checking keys, types and choices.

    With ``flat_options`` (problem, optimizer sections), keys other than ``name`` go into ``options``.
    """
    prefix = f"{path}." if path else ""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path or 'config'}: expected a mapping, got {data!r}")
    data = dict(data)
    if flat_options:
        named = ("name", "factory") if cls is ProblemConfig else ("name",)
        options = {k: data.pop(k) for k in list(data) if k not in named}
        data = {**{k: data[k] for k in named if k in data}, "options": options}
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in data.items():
        if key not in fields:
            raise ConfigError(f"{prefix}{key}: unknown key; allowed: {', '.join(fields)}")
        sub = f"{prefix}{key}"
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            kwargs[key] = _build(tp, value, sub, flat_options=key in ("problem", "optimizer"))
            continue
        value = _check_type(value, tp, sub)
        if sub in _CHOICES and value not in _CHOICES[sub]:
            raise ConfigError(f"{sub}: {value!r} is not allowed; allowed: {', '.join(_CHOICES[sub])}")
        if sub in _POSITIVE and value is not None and value <= 0:
            raise ConfigError(f"{sub}: expected a positive integer, got {value!r}")
        if sub in _NONNEGATIVE and value is not None and value < 0:
            raise ConfigError(f"{sub}: expected a non-negative integer, got {value!r}")
        kwargs[key] = value
    missing = [
        name
        for name, f in fields.items()
        if name not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError(f"{prefix}{missing[0]}: required key is missing")
    return cls(**kwargs)


def _validate_semantics(cfg: RunConfig, path: str) -> None:
    """Check names and options against the registries (no compilation happens here)."""
    from . import optim, problems  # local: keep `import sciml_jax.config` light

    prefix = f"{path}." if path else ""
    try:
        prob = cfg.problem.build()
    except ValueError as e:
        msg = str(e)
        raise ConfigError(f"{prefix}{msg if msg.startswith('problem') else 'problem: ' + msg}") from None
    problem_label = cfg.problem.name or cfg.problem.factory
    sets = problems.point_sets(prob.domain)
    point_specs = [("sampling.points", cfg.sampling.points)]
    if cfg.train.stages is not None:
        if not cfg.train.stages:
            raise ConfigError(f"{prefix}train.stages: expected a non-empty list of {{points: ..., steps: ...}}")
        for i, stage in enumerate(cfg.train.stages):
            where = f"{prefix}train.stages[{i}]"
            if not isinstance(stage, Mapping) or set(stage) != {"points", "steps"}:
                raise ConfigError(f"{where}: expected a mapping with exactly the keys points, steps; got {stage!r}")
            n = stage["steps"]
            if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
                raise ConfigError(f"{where}.steps: expected a positive integer, got {n!r}")
            if not isinstance(stage["points"], Mapping):
                raise ConfigError(f"{where}.points: expected a mapping point set -> count, got {stage['points']!r}")
            point_specs.append((f"train.stages[{i}].points", stage["points"]))
    if cfg.train.time_windows is not None:
        _validate_time_windows(cfg, prob, prefix)
    for where, spec in point_specs:
        if spec is None:
            continue
        for k, n in spec.items():
            if k not in sets:
                raise ConfigError(
                    f"{prefix}{where}.{k}: unknown point set for {problem_label!r}; "
                    f"allowed: {', '.join(sets) or '(none: the problem has no domain)'}"
                )
            if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
                raise ConfigError(f"{prefix}{where}.{k}: expected a positive integer, got {n!r}")
    _validate_adaptive(cfg, prob, prefix)
    _validate_model(cfg, prob, prefix)
    if cfg.loss.causal is not None:
        from . import pinn  # noqa: PLC0415

        allowed = ("term", "chunks", "epsilon")
        for key in cfg.loss.causal:
            if key not in allowed:
                raise ConfigError(f"{prefix}loss.causal.{key}: unknown key; allowed: {', '.join(allowed)}")
        try:
            pinn.residual(prob, lambda p, x: 0.0, causal=pinn.Causal(**cfg.loss.causal))
        except ValueError as e:
            raise ConfigError(f"{prefix}loss.causal: {e}") from None
    _validate_data(cfg, prob, prefix)
    for k, w in cfg.loss.weights.items():
        if k not in prob.terms:
            raise ConfigError(f"{prefix}loss.weights.{k}: unknown term; allowed: {', '.join(prob.terms)}")
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
            raise ConfigError(f"{prefix}loss.weights.{k}: expected a finite number >= 0, got {w!r}")
    if not cfg.model.fourier_sigma > 0:
        raise ConfigError(f"{prefix}model.fourier_sigma: expected a number > 0, got {cfg.model.fourier_sigma!r}")
    if cfg.train.divergence_factor is not None and not cfg.train.divergence_factor > 1:
        raise ConfigError(
            f"{prefix}train.divergence_factor: expected a number > 1 or null (off), got {cfg.train.divergence_factor!r}"
        )
    _check_positive_option(cfg.optimizer.options, f"{prefix}optimizer", "max_learning_rate")
    from . import experiments  # noqa: PLC0415

    try:
        experiments.check_options(cfg.experiment, cfg.experiment_options, cfg)
    except ValueError as e:
        raise ConfigError(f"{prefix}{e}") from None
    try:
        optim.get(cfg.optimizer.name, **cfg.optimizer.options)
    except (ValueError, TypeError) as e:
        msg = str(e)
        raise ConfigError(f"{prefix}{msg if msg.startswith('optimizer') else 'optimizer: ' + msg}") from None


def time_windows_options(value: Any) -> dict:
    """``train.time_windows`` as ``{"windows": K, "local_time": bool}`` (an int K is ``{"windows": K}``)."""
    if isinstance(value, Mapping):
        unknown = [k for k in value if k not in ("windows", "local_time")]
        if unknown:
            raise ConfigError(f"train.time_windows.{unknown[0]}: unknown key; allowed: windows, local_time")
        out = {"windows": value.get("windows"), "local_time": value.get("local_time", True)}
    else:
        out = {"windows": value, "local_time": True}
    k = out["windows"]
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConfigError(f"train.time_windows: expected a number of windows >= 1 (or {{windows: K, local_time: "
                          f"true}}), got {value!r}")
    if not isinstance(out["local_time"], bool):
        raise ConfigError(f"train.time_windows.local_time: expected true or false, got {out['local_time']!r}")
    return out


def _validate_time_windows(cfg: RunConfig, prob: Any, prefix: str) -> None:
    """``train.time_windows``: a time-dependent problem with an initial term, and nothing it cannot compose with."""
    from . import pinn  # noqa: PLC0415

    try:
        opts = time_windows_options(cfg.train.time_windows)
    except ConfigError as e:
        raise ConfigError(f"{prefix}{e}") from None
    where = f"{prefix}train.time_windows"
    clashes = [(cfg.train.stages is not None, "train.stages"),
               (cfg.sampling.adaptive.method != "none", "sampling.adaptive"),
               (bool(cfg.model.hard_constraint), "model.hard_constraint")]
    for clash, what in clashes:
        if clash:
            raise ConfigError(f"{where}: cannot be combined with {what} (remove one of them)")
    if cfg.train.steps < opts["windows"]:
        raise ConfigError(f"{where}: train.steps = {cfg.train.steps} is the total over {opts['windows']} windows; "
                          "it must be at least one step per window")
    try:
        pinn.TimeWindows(prob, opts["windows"], local_time=opts["local_time"])
    except ValueError as e:
        raise ConfigError(f"{where}: {e}") from None
    if "initial" not in (cfg.sampling.points or prob.default_points):
        raise ConfigError(f"{where}: sampling.points needs an 'initial' count (each window's initial points)")


def _validate_adaptive(cfg: RunConfig, prob: Any, prefix: str) -> None:
    """``sampling.adaptive``: a schedule when a method is set, a known term, k/c >= 0, replace in (0, 1]."""
    ad = cfg.sampling.adaptive
    where = f"{prefix}sampling.adaptive"
    if ad.method == "none":
        return
    if ad.every is None and ad.on_plateau is None:
        raise ConfigError(f"{where}: method {ad.method!r} needs a schedule: every (steps) and/or on_plateau")
    if ad.term not in prob.terms:
        raise ConfigError(f"{where}.term: unknown term {ad.term!r}; allowed: {', '.join(prob.terms)}")
    for name in ("k", "c"):
        v = getattr(ad, name)
        if v is not None and v < 0:
            raise ConfigError(f"{where}.{name}: expected a number >= 0, got {v!r}")
    if not 0.0 < ad.replace <= 1.0:
        raise ConfigError(f"{where}.replace: expected a fraction in (0, 1], got {ad.replace!r}")
    if ad.on_plateau is not None:
        allowed = ("patience", "min_delta")
        for key, v in ad.on_plateau.items():
            if key not in allowed:
                raise ConfigError(f"{where}.on_plateau.{key}: unknown key; allowed: {', '.join(allowed)}")
        p = ad.on_plateau.get("patience", 500)
        if isinstance(p, bool) or not isinstance(p, int) or p <= 0:
            raise ConfigError(f"{where}.on_plateau.patience: expected a positive integer, got {p!r}")
        d = ad.on_plateau.get("min_delta", 0.01)
        if isinstance(d, bool) or not isinstance(d, (int, float)) or not 0.0 <= d < 1.0:
            raise ConfigError(f"{where}.on_plateau.min_delta: expected a number in [0, 1), got {d!r}")


def _validate_model(cfg: RunConfig, prob: Any, prefix: str) -> None:
    """``model.periodic`` axes within the problem's coordinates and periods > 0; a hard constraint to use."""
    where = f"{prefix}model"
    if cfg.model.periodic is not None:
        dim = prob.domain.dim if prob.domain is not None else None
        if not cfg.model.periodic:
            raise ConfigError(f"{where}.periodic: expected a mapping coordinate index -> period, e.g. {{0: 2.0}}")
        for axis, period in cfg.model.periodic.items():
            if isinstance(axis, bool) or not isinstance(axis, int) or dim is None or not 0 <= axis < dim:
                raise ConfigError(
                    f"{where}.periodic: {axis!r} is not a coordinate index; allowed: "
                    f"{', '.join(map(str, range(dim))) if dim else '(none: no domain)'}"
                )
            if isinstance(period, bool) or not isinstance(period, (int, float)) or not period > 0:
                raise ConfigError(f"{where}.periodic.{axis}: expected a period > 0, got {period!r}")
    if cfg.model.hard_constraint and prob.hard_constraint is None:
        raise ConfigError(
            f"{where}.hard_constraint: problem {cfg.problem.name or cfg.problem.factory!r} defines no hard "
            "constraint (Problem(..., hard_constraint=(transform, terms)))"
        )


DATA_KEYS = ("file", "inputs", "outputs", "drop_nonfinite", "subsample", "noise", "seed")


def _validate_data(cfg: RunConfig, prob: Any, prefix: str) -> None:
    """``data``: each entry a declared data entry of the problem, read and checked now (before any compilation)."""
    for entry, spec in cfg.data.items():
        where = f"{prefix}data.{entry}"
        if entry not in prob.data:
            raise ConfigError(
                f"{where}: {entry!r} is not a data entry of the problem; its data entries: "
                f"{', '.join(prob.data) or '(none)'}"
            )
        if not isinstance(spec, Mapping):
            raise ConfigError(f"{where}: expected a mapping with keys {', '.join(DATA_KEYS)}, got {spec!r}")
        for key in spec:
            if key not in DATA_KEYS:
                raise ConfigError(f"{where}.{key}: unknown key; allowed: {', '.join(DATA_KEYS)}")
        for key in ("file", "inputs", "outputs"):
            if key not in spec:
                raise ConfigError(f"{where}.{key}: required key is missing")
        try:
            load_data_entry(spec)
        except ValueError as e:
            raise ConfigError(f"{where}: {e}") from None


def load_data_entry(spec: Mapping[str, Any]) -> Any:
    """The :class:`sciml_jax.problems.Observations` of one ``data`` entry (cached per file state and options)."""
    from . import problems  # noqa: PLC0415

    path = spec["file"]
    if not isinstance(path, str):
        raise ValueError(f"file: expected a path, got {path!r}")
    stamp = os.path.getmtime(path) if os.path.isfile(path) else None
    key = json.dumps({**dict(spec), "_stamp": stamp}, sort_keys=True, default=str)
    if key not in _DATA_CACHE:
        opts = {k: v for k, v in spec.items() if k not in ("file", "inputs", "outputs")}
        _DATA_CACHE[key] = problems.load_observations(path, spec["inputs"], spec["outputs"], **opts)
    return _DATA_CACHE[key]


_DATA_CACHE: dict = {}


def _check_positive_option(options: Any, where: str, key: str) -> None:
    """``key`` anywhere in an optimizer section (also in ``first``/``second`` of a hybrid) must be > 0 or null.

    Used for L-BFGS's ``max_learning_rate``, which its factory passes to optax unchecked.
    """
    if isinstance(options, Mapping):
        for k, v in options.items():
            if k == key and v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0):
                raise ConfigError(f"{where}.{k}: expected a number > 0 or null, got {v!r}")
            _check_positive_option(v, f"{where}.{k}", key)


def _check_finite(obj: Any, path: str) -> None:
    """Every number in the raw config must be finite (NaN or infinity would only fail later, inside training)."""
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            _check_finite(v, f"{path}.{k}" if path else str(k))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _check_finite(v, f"{path}[{i}]")
    elif isinstance(obj, float) and not math.isfinite(obj):
        raise ConfigError(f"{path or 'config'}: expected a finite number, got {obj!r}")


def _resolve_paths(data: dict, base_dir: str) -> dict:
    """Relative paths of ``problem.factory`` and ``data.<entry>.file`` resolved against the config's folder (when
    the file is there), so a run directory's config.yaml works from anywhere."""

    def resolve(p: Any) -> Any:
        if isinstance(p, str) and not os.path.isabs(p) and os.path.exists(os.path.join(base_dir, p)):
            return os.path.abspath(os.path.join(base_dir, p))
        return p

    def fix(section: Any) -> Any:
        if not isinstance(section, Mapping):
            return section
        section = dict(section)
        problem = section.get("problem")
        if isinstance(problem, Mapping) and isinstance(problem.get("factory"), str) and ":" in problem["factory"]:
            file, _, func = problem["factory"].rpartition(":")
            section["problem"] = {**problem, "factory": f"{resolve(file)}:{func}"}
        if isinstance(section.get("data"), Mapping):
            section["data"] = {
                k: ({**v, "file": resolve(v.get("file"))} if isinstance(v, Mapping) else v)
                for k, v in section["data"].items()
            }
        return section

    out = fix(data)
    if isinstance(out.get("compare"), Mapping):
        out["compare"] = {k: fix(v) for k, v in out["compare"].items()}
    return out


def from_dict(data: Mapping[str, Any], path: str = "") -> RunConfig:
    """Validate a raw mapping into a :class:`RunConfig` (raises :class:`ConfigError`)."""
    _check_finite(data, path)
    cfg = _build(RunConfig, data, path)
    if cfg.compare is not None:
        for name, override in cfg.compare.items():
            if override is not None and not isinstance(override, Mapping):
                raise ConfigError(f"compare.{name}: expected a mapping of overrides, got {override!r}")
    for name, run in cfg.runs().items():
        _validate_semantics(run, f"compare.{name}" if cfg.compare else path)
    return cfg


def _deep_merge(base: Mapping, override: Mapping) -> dict:
    out = copy.deepcopy(dict(base))
    for k, v in override.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            if k in ("problem", "optimizer") and "name" in v and v["name"] != out[k].get("name"):
                out[k] = copy.deepcopy(dict(v))  # a different problem/optimizer: its options start afresh
            else:
                out[k] = _deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def to_dict(cfg: RunConfig) -> dict:
    """The config as a plain mapping in the YAML layout (problem/optimizer options flattened)."""
    d = dataclasses.asdict(cfg)
    for key in ("problem", "optimizer"):
        section = d[key]
        named = {k: section[k] for k in ("name", "factory") if section.get(k) is not None}
        d[key] = {**named, **section["options"]}
    return d


class _DuplicateKey(Exception):
    def __init__(self, key: Any, line: int):
        super().__init__(key, line)
        self.key, self.line = key, line


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, plus YAML 1.2 exponent floats (``1e-3``) and an error on duplicate keys."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _construct_mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # `<<: *anchor` merges may be overridden by explicit keys (YAML semantics)
        key = loader.construct_object(key_node, deep=True)
        try:
            if key in seen:
                raise _DuplicateKey(key, key_node.start_mark.line + 1)
            seen.add(key)
        except TypeError:  # an unhashable key: PyYAML reports it below
            pass
    return loader.construct_mapping(node, deep=deep)


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)


def _yaml_error_line(e: yaml.YAMLError) -> str:
    """One line for a PyYAML error: its problem and the line where it was found."""
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    mark = getattr(e, "problem_mark", None)
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else problem


def parse_yaml(text: str, where: str) -> Any:
    """Parse YAML ``text`` with the config loader; errors become one-line :class:`ConfigError` naming ``where``."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except _DuplicateKey as e:
        raise ConfigError(f"{where}: duplicate key {e.key!r} at line {e.line} (each key may appear once)") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{where} is not valid YAML: {_yaml_error_line(e)}") from None


def _parse_set(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected key=value, e.g. optimizer.learning_rate=1e-3")
    key, raw = item.split("=", 1)
    keys = [k for k in key.strip().split(".") if k]
    if not keys:
        raise ConfigError(f"--set {item!r}: empty key")
    return keys, parse_yaml(raw, f"--set {item!r}: value")


def load(path: str | os.PathLike, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Read a YAML config (UTF-8), apply ``key.sub=value`` overrides (values read by the same YAML loader) and
    validate it.

    Raises:
        ConfigError: unreadable or non-UTF-8 file, invalid YAML, duplicate key, unknown key, wrong type, non-finite
            number, unknown problem/optimizer or option.
    """
    where = f"config file {os.fspath(path)!r}"
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise ConfigError(f"{where}: {e.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(
            f"{where} is not UTF-8 text (byte 0x{raw[e.start]:02x} at offset {e.start}); save it as UTF-8"
        ) from None
    data = parse_yaml(text, where)
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: top level must be a mapping")
    data = dict(data)
    data.setdefault("name", os.path.splitext(os.path.basename(os.fspath(path)))[0])
    for item in overrides:
        keys, value = _parse_set(item)
        node = data
        for k in keys[:-1]:
            if not isinstance(node.get(k), Mapping):
                node[k] = {}
            node = node[k]
        node[keys[-1]] = value
    return from_dict(_resolve_paths(data, os.path.dirname(os.path.abspath(os.fspath(path)))))


# Keys a resumed run may change: they decide how long and how often, not what is trained.
RESUME_SAFE = (
    "name", "description", "compare", "train.steps", "train.eval_every", "train.chunk", "train.checkpoint_every",
    "train.progress", "train.divergence_factor", "train.median_of_last",
)


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, Mapping) and d:
        out = {}
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: d}


def resume_conflicts(saved: Mapping[str, Any], cfg: RunConfig) -> list[str]:
    """Keys whose values differ between a checkpoint's saved config and ``cfg`` and may not change on resume.

    Everything but :data:`RESUME_SAFE` (how long and how often: steps, cadences, progress) is unsafe: model,
    problem, sampling and points, loss, optimizer, seed, dtype, stages, experiment. Returns ``"key (old -> new)"``
    strings, sorted; empty when the resume is safe.
    """
    old = _flatten(json.loads(json.dumps(dict(saved))))
    new = _flatten(json.loads(json.dumps(to_dict(cfg))))
    out = []
    for key in sorted(set(old) | set(new)):
        if any(key == s or key.startswith(s + ".") for s in RESUME_SAFE):
            continue
        a, b = old.get(key, "(absent)"), new.get(key, "(absent)")
        if a != b:
            out.append(f"{key} ({a!r} -> {b!r})")
    return out


__all__ = [
    "ConfigError",
    "RunConfig",
    "ProblemConfig",
    "ModelConfig",
    "SamplingConfig",
    "AdaptiveSamplingConfig",
    "LossConfig",
    "OptimizerConfig",
    "TrainConfig",
    "RESUME_SAFE",
    "from_dict",
    "load",
    "parse_yaml",
    "resume_conflicts",
    "to_dict",
]
