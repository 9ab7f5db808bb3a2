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


def _adam(learning_rate: Any = 1e-3, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8):
    return optax.adam(_learning_rate(learning_rate, "optimizer.learning_rate"), b1=b1, b2=b2, eps=eps)


def _sgd(learning_rate: Any = 1e-3, momentum: float | None = None, nesterov: bool = False):
    return optax.sgd(_learning_rate(learning_rate, "optimizer.learning_rate"), momentum=momentum, nesterov=nesterov)


def _optax_lbfgs(memory_size: int = 10, max_linesearch_steps: int = 20):
    return optax.lbfgs(
        memory_size=memory_size,
        linesearch=optax.scale_by_zoom_linesearch(max_linesearch_steps=max_linesearch_steps, verbose=False),
    )


register("adam", _adam)
register("sgd", _sgd)
register("optax_lbfgs", _optax_lbfgs)
