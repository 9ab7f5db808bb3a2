"""Name -> optimizer factory registry used by configs and the CLI."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import optax

_REGISTRY: dict[str, Callable[..., optax.GradientTransformation]] = {}


def register(name: str, factory: Callable[..., optax.GradientTransformation]) -> None:
    """Make ``factory`` selectable by ``name`` in configs (its keyword arguments become the allowed options)."""
    _REGISTRY[name] = factory


def names() -> list[str]:
    """Registered optimizer names."""
    return sorted(_REGISTRY)


def options(name: str) -> dict[str, Any]:
    """Allowed options of optimizer ``name`` with their defaults (``inspect.Parameter.empty`` if required)."""
    _check_name(name)
    sig = inspect.signature(_REGISTRY[name])
    return {
        p.name: p.default
        for p in sig.parameters.values()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }


def _check_name(name: str) -> None:
    if name not in _REGISTRY:
        raise ValueError(f"optimizer: unknown name {name!r}; allowed: {', '.join(names())}")


def get(name: str, **kwargs: Any) -> optax.GradientTransformation:
    """Build optimizer ``name`` with validated options.

    Raises:
        ValueError: unknown name, unknown option (the message lists the allowed ones) or a missing required option.
    """
    allowed = options(name)
    for key in kwargs:
        if key not in allowed:
            listing = ", ".join(f"{k}={v!r}" if v is not inspect.Parameter.empty else k for k, v in allowed.items())
            raise ValueError(f"optimizer.{key}: unknown option for {name!r}; allowed: {listing}")
    missing = [k for k, v in allowed.items() if v is inspect.Parameter.empty and k not in kwargs]
    if missing:
        raise ValueError(f"optimizer {name!r}: missing required option(s) {missing}")
    return _REGISTRY[name](**kwargs)


def _learning_rate(value: Any, where: str) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value <= 0:
            raise ValueError(f"{where}: learning rate must be > 0, got {value!r}")
        return float(value)
    if isinstance(value, dict):
        return schedule(**value)
    if callable(value):
        return value
    raise ValueError(f"{where}: expected a positive number, a schedule mapping or a callable, got {value!r}")


_SCHEDULES = {
    "constant": optax.constant_schedule,
    "exponential_decay": optax.exponential_decay,
    "cosine_decay": optax.cosine_decay_schedule,
    "warmup_cosine_decay": optax.warmup_cosine_decay_schedule,
    "piecewise_constant": optax.piecewise_constant_schedule,
    "linear": optax.linear_schedule,
}


def schedule(name: str, **kwargs: Any) -> optax.Schedule:
    """An optax learning-rate schedule by name (``constant``, ``exponential_decay``, ``cosine_decay``,
    ``warmup_cosine_decay``, ``piecewise_constant``, ``linear``) with optax's keyword arguments."""
    if name not in _SCHEDULES:
        raise ValueError(f"schedule: unknown name {name!r}; allowed: {', '.join(sorted(_SCHEDULES))}")
    fn = _SCHEDULES[name]
    allowed = list(inspect.signature(fn).parameters)
    for key in kwargs:
        if key not in allowed:
            raise ValueError(f"schedule.{key}: unknown option for {name!r}; allowed: {', '.join(allowed)}")
    if name == "piecewise_constant" and "boundaries_and_scales" in kwargs:
        kwargs["boundaries_and_scales"] = {int(k): float(v) for k, v in kwargs["boundaries_and_scales"].items()}
    return fn(**kwargs)


def _with_plateau(tx: optax.GradientTransformation, reduce_on_plateau: dict | None):
    """Chain ``optax.contrib.reduce_on_plateau`` (options as in optax) after ``tx`` when asked for."""
    if reduce_on_plateau is None:
        return tx
    if not isinstance(reduce_on_plateau, dict):
        raise ValueError(f"optimizer.reduce_on_plateau: expected a mapping of options, got {reduce_on_plateau!r}")
    allowed = list(inspect.signature(optax.contrib.reduce_on_plateau).parameters)
    for key in reduce_on_plateau:
        if key not in allowed:
            raise ValueError(f"optimizer.reduce_on_plateau.{key}: unknown option; allowed: {', '.join(allowed)}")
    return optax.chain(tx, optax.contrib.reduce_on_plateau(**reduce_on_plateau))


def _adam(
    learning_rate: Any = 1e-3,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    reduce_on_plateau: dict | None = None,
):
    tx = optax.adam(_learning_rate(learning_rate, "optimizer.learning_rate"), b1=b1, b2=b2, eps=eps)
    return _with_plateau(tx, reduce_on_plateau)


def _sgd(
    learning_rate: Any = 1e-3,
    momentum: float | None = None,
    nesterov: bool = False,
    reduce_on_plateau: dict | None = None,
):
    tx = optax.sgd(_learning_rate(learning_rate, "optimizer.learning_rate"), momentum=momentum, nesterov=nesterov)
    return _with_plateau(tx, reduce_on_plateau)


_CRITERIA = {
    "after_steps": "after_steps",
    "plateau": "on_plateau",
    "grad_norm": "grad_norm_below",
    "curvature": "curvature_model",
}


def criterion(spec: Any):
    """Build a switch criterion from a config mapping.

    ``{after_steps: 1000}``, ``{plateau: {window: 200, rtol: 1e-2}}``, ``{grad_norm: {tol: 1e-3}}``,
    ``{curvature: {ratio: 0.1}}``; several entries combine with ``mode: any`` (default) or ``mode: all``.
    """
    from . import _hybrid

    if isinstance(spec, _hybrid.Criterion):
        return spec
    if not isinstance(spec, dict) or not spec:
        raise ValueError(f"optimizer.switch: expected a mapping such as {{after_steps: 1000}}, got {spec!r}")
    spec = dict(spec)
    mode = spec.pop("mode", "any")
    if mode not in ("any", "all"):
        raise ValueError(f"optimizer.switch.mode: {mode!r} is not allowed; allowed: any, all")
    parts = []
    for name, opts in spec.items():
        if name not in _CRITERIA:
            raise ValueError(f"optimizer.switch.{name}: unknown criterion; allowed: {', '.join(_CRITERIA)}, mode")
        factory = getattr(_hybrid, _CRITERIA[name])
        if name == "after_steps" and not isinstance(opts, dict):
            opts = {"steps": opts}
        if opts is None:
            opts = {}
        if not isinstance(opts, dict):
            raise ValueError(f"optimizer.switch.{name}: expected a mapping of options, got {opts!r}")
        allowed = list(inspect.signature(factory).parameters)
        for key in opts:
            if key not in allowed:
                raise ValueError(f"optimizer.switch.{name}.{key}: unknown option; allowed: {', '.join(allowed)}")
        parts.append(factory(**opts))
    out = parts[0]
    for p in parts[1:]:
        out = (out | p) if mode == "any" else (out & p)
    return out


def _sub_optimizer(spec: Any, where: str):
    if not isinstance(spec, dict) or "name" not in spec:
        raise ValueError(f"optimizer.{where}: expected a mapping with a name, e.g. {{name: adam, learning_rate: 1e-3}}")
    spec = dict(spec)
    name = spec.pop("name")
    try:
        return get(name, **spec)
    except ValueError as e:
        raise ValueError(f"optimizer.{where}: {e}") from None


def _hybrid(
    first: dict | None = None,
    second: dict | None = None,
    switch: dict | None = None,
    guard_factor: float | None = 10.0,
    fallback_steps: int = 500,
    max_fallbacks: int = 3,
):
    from ._hybrid import hybrid

    first = {"name": "adam", "learning_rate": 1e-3} if first is None else first
    second = {"name": "lbfgs"} if second is None else second
    switch = {"after_steps": 1000} if switch is None else switch
    return hybrid(
        _sub_optimizer(first, "first"),
        _sub_optimizer(second, "second"),
        criterion(switch),
        guard_factor=guard_factor,
        fallback_steps=fallback_steps,
        max_fallbacks=max_fallbacks,
    )


def _register_builtins() -> None:
    from . import _lbfgs, _least_squares

    register("adam", _adam)
    register("sgd", _sgd)
    register("lbfgs", _lbfgs.lbfgs)
    register("gauss_newton", _least_squares.gauss_newton)
    register("levenberg_marquardt", _least_squares.levenberg_marquardt)
    register("engd", _least_squares.engd)
    register("newton", _least_squares.newton)
    register("hybrid", _hybrid)
    from . import _bfgs

    register("bfgs", _bfgs.bfgs)
    register("ssbfgs", _bfgs.ssbfgs)
    register("ssbroyden", _bfgs.ssbroyden)


_register_builtins()
