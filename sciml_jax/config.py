"""Run configurations: YAML -> validated dataclasses, before anything is compiled.

A config is a mapping with the sections below; every key is checked (unknown key, wrong type, value outside the
allowed set -> :class:`ConfigError` naming the dotted key and what is allowed). Problem and optimizer options are
checked against the factory's signature by ``sciml_jax.problems.get`` / ``sciml_jax.optim.get``.

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
import os
import typing
from collections.abc import Mapping
from typing import Any

import yaml


class ConfigError(ValueError):
    """A configuration mistake; the message names the dotted key and the allowed values."""


@dataclasses.dataclass(frozen=True)
class ProblemConfig:
    name: str
    options: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    width: int = 32
    depth: int = 3
    activation: str = "tanh"
    fourier_features: int = 0
    fourier_sigma: float = 1.0


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


@dataclasses.dataclass(frozen=True)
class SamplingConfig:
    method: str = "sobol"
    points: dict | None = None  # point set -> count; default: the problem's default_points
    adaptive: AdaptiveSamplingConfig = AdaptiveSamplingConfig()


@dataclasses.dataclass(frozen=True)
class LossConfig:
    weights: dict = dataclasses.field(default_factory=dict)


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
    "model.width", "model.depth", "train.eval_every", "train.chunk", "train.checkpoint_every",
    "sampling.adaptive.every", "sampling.adaptive.candidates",
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
        options = {k: data.pop(k) for k in list(data) if k != "name"}
        data = {"name": data.get("name"), "options": options} if "name" in data else {"options": options}
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
        prob = problems.get(cfg.problem.name, **cfg.problem.options)
    except ValueError as e:
        raise ConfigError(f"{prefix}problem: {e}") from None
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
    for where, spec in point_specs:
        if spec is None:
            continue
        for k, n in spec.items():
            if k not in prob.domain.point_sets:
                raise ConfigError(
                    f"{prefix}{where}.{k}: unknown point set for {cfg.problem.name!r}; "
                    f"allowed: {', '.join(prob.domain.point_sets)}"
                )
            if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
                raise ConfigError(f"{prefix}{where}.{k}: expected a positive integer, got {n!r}")
    _validate_adaptive(cfg, prob, prefix)
    for k, w in cfg.loss.weights.items():
        if k not in prob.terms:
            raise ConfigError(f"{prefix}loss.weights.{k}: unknown term; allowed: {', '.join(prob.terms)}")
        if isinstance(w, bool) or not isinstance(w, (int, float)) or w < 0:
            raise ConfigError(f"{prefix}loss.weights.{k}: expected a number >= 0, got {w!r}")
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


def from_dict(data: Mapping[str, Any], path: str = "") -> RunConfig:
    """Validate a raw mapping into a :class:`RunConfig` (raises :class:`ConfigError`)."""
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
        d[key] = {"name": section["name"], **section["options"]}
    return d


def _parse_set(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected key=value, e.g. optimizer.learning_rate=1e-3")
    key, raw = item.split("=", 1)
    keys = [k for k in key.strip().split(".") if k]
    if not keys:
        raise ConfigError(f"--set {item!r}: empty key")
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as e:
        raise ConfigError(f"--set {item!r}: value is not valid YAML ({e.__class__.__name__})") from None
    if isinstance(value, str):  # YAML reads 1e-3 as a string; accept plain scientific notation as a number
        try:
            value = float(value) if any(c in value for c in "eE.") else value
        except ValueError:
            pass
    return keys, value


def load(path: str | os.PathLike, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Read a YAML config, apply ``key.sub=value`` overrides and validate it.

    Raises:
        ConfigError: unreadable file, invalid YAML, unknown key, wrong type, unknown problem/optimizer or option.
    """
    try:
        with open(path) as f:
            data = yaml.safe_load(f)
    except OSError as e:
        raise ConfigError(f"config file {os.fspath(path)!r}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {os.fspath(path)!r} is not valid YAML: {e}") from None
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"config file {os.fspath(path)!r}: top level must be a mapping")
    data = _normalise_numbers(dict(data))
    data.setdefault("name", os.path.splitext(os.path.basename(os.fspath(path)))[0])
    for item in overrides:
        keys, value = _parse_set(item)
        node = data
        for k in keys[:-1]:
            if not isinstance(node.get(k), Mapping):
                node[k] = {}
            node = node[k]
        node[keys[-1]] = value
    return from_dict(data)


def _normalise_numbers(obj: Any) -> Any:
    """PyYAML (YAML 1.1) reads '1e-3' as a string; turn such scientific-notation strings into floats."""
    if isinstance(obj, dict):
        return {k: _normalise_numbers(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_normalise_numbers(v) for v in obj]
    if isinstance(obj, str):
        s = obj.strip()
        try:
            if any(c in s for c in "eE") and s.lower() not in ("inf", "nan"):
                return float(s)
        except ValueError:
            return obj
    return obj


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
    "from_dict",
    "load",
    "to_dict",
]
