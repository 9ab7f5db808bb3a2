"""Name -> optimizer factory registry used by configs and the CLI."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

import optax

from ._util import memoized

_REGISTRY: dict[str, Callable[..., optax.GradientTransformation]] = {}


def register(name: str, factory: Callable[..., optax.GradientTransformation]) -> None:
    """Make ``factory`` selectable by ``name`` in configs (its keyword arguments become the allowed options).

    Equal options give the same transform object (:func:`memoized`), so runs built from equal configs share
    fit's compiled step."""
    _REGISTRY[name] = memoized(factory)


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


def _number(value: Any, where: str, lo: float, hi: float = math.inf, *, lo_open: bool = False,
            hi_open: bool = False) -> float:
    """``value`` as a float in the interval [lo, hi] (ends open where asked); one-line ValueError otherwise."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > lo if lo_open else value >= lo) and (value < hi if hi_open else value <= hi)
    if not ok:
        if hi == math.inf:
            allowed = f"{'>' if lo_open else '>='} {lo:g}"
        else:
            allowed = f"in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
        raise ValueError(f"{where}: expected a finite number {allowed}, got {value!r}")
    return float(value)


def _count(value: Any, where: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{where}: expected an integer >= {minimum}, got {value!r}")
    return value


def _learning_rate(value: Any, where: str) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"{where}: learning rate must be a finite number > 0, got {value!r}")
        return float(value)
    if isinstance(value, dict):
        if "name" not in value:
            raise ValueError(f"{where}: a schedule mapping needs a name; allowed: {', '.join(sorted(_SCHEDULES))}")
        try:
            return schedule(**value)
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None
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


# Range of every schedule option: (lo, hi, lo_open, hi_open) for numbers, "count"/"count0" for integers >= 1 / >= 0.
# The learning rate a schedule starts from or peaks at is > 0; values it warms up from or decays to are >= 0.
_SCHEDULE_RANGES = {
    "constant": {"value": (0, math.inf, True, False)},
    "exponential_decay": {
        "init_value": (0, math.inf, True, False), "transition_steps": "count", "decay_rate": (0, 1, True, False),
        "transition_begin": "count0", "end_value": (0, math.inf, False, False),
    },
    "cosine_decay": {
        "init_value": (0, math.inf, True, False), "decay_steps": "count", "alpha": (0, 1, False, False),
        "exponent": (0, math.inf, True, False),
    },
    "warmup_cosine_decay": {
        "init_value": (0, math.inf, False, False), "peak_value": (0, math.inf, True, False), "warmup_steps": "count0",
        "decay_steps": "count", "end_value": (0, math.inf, False, False), "exponent": (0, math.inf, True, False),
    },
    "piecewise_constant": {"init_value": (0, math.inf, True, False)},
    "linear": {
        "init_value": (0, math.inf, False, False), "end_value": (0, math.inf, False, False),
        "transition_steps": "count", "transition_begin": "count0",
    },
}


def schedule(name: str, **kwargs: Any) -> optax.Schedule:
    """An optax learning-rate schedule by name (``constant``, ``exponential_decay``, ``cosine_decay``,
    ``warmup_cosine_decay``, ``piecewise_constant``, ``linear``) with optax's keyword arguments.

    Every value is checked: learning rates a schedule starts from or peaks at (``value``, ``init_value``,
    ``peak_value``) are finite and > 0 (``init_value`` of a warm-up and every ``end_value`` may be 0), step counts
    are positive integers, ``decay_rate`` is in (0, 1], ``alpha`` in [0, 1], scales of ``piecewise_constant`` are
    finite and >= 0; a ``linear`` schedule may not be 0 at both ends.
    """
    if name not in _SCHEDULES:
        raise ValueError(f"schedule: unknown name {name!r}; allowed: {', '.join(sorted(_SCHEDULES))}")
    fn = _SCHEDULES[name]
    allowed = list(inspect.signature(fn).parameters)
    for key in kwargs:
        if key not in allowed:
            raise ValueError(f"schedule.{key}: unknown option for {name!r}; allowed: {', '.join(allowed)}")
    missing = [k for k, p in inspect.signature(fn).parameters.items() if p.default is p.empty and k not in kwargs]
    if missing:
        raise ValueError(f"schedule: {name!r} needs the option(s) {', '.join(missing)}")
    for key, value in kwargs.items():
        rule = _SCHEDULE_RANGES[name].get(key)
        if value is None and key == "end_value":
            continue
        if rule == "count" or rule == "count0":
            _count(value, f"schedule.{key}", 1 if rule == "count" else 0)
        elif rule is not None:
            lo, hi, lo_open, hi_open = rule
            _number(value, f"schedule.{key}", lo, hi, lo_open=lo_open, hi_open=hi_open)
    if name == "linear" and kwargs.get("init_value", 1) == 0 and kwargs.get("end_value", 1) == 0:
        raise ValueError("schedule: a linear schedule from 0 to 0 never moves; give init_value or end_value > 0")
    if name == "piecewise_constant" and "boundaries_and_scales" in kwargs:
        bs = kwargs["boundaries_and_scales"]
        if not isinstance(bs, dict):
            raise ValueError(f"schedule.boundaries_and_scales: expected a mapping step -> scale, got {bs!r}")
        for k, v in bs.items():
            try:
                step = int(k)
            except (TypeError, ValueError):
                step = -1
            if step < 0 or (isinstance(k, float) and k != step):
                raise ValueError(f"schedule.boundaries_and_scales: expected integer steps >= 0, got {k!r}")
            _number(v, f"schedule.boundaries_and_scales.{k}", 0)
        kwargs["boundaries_and_scales"] = {int(k): float(v) for k, v in bs.items()}
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
    """Adam; ``b1``, ``b2`` in [0, 1), ``eps`` > 0, all finite; the learning rate as in :func:`_learning_rate`."""
    lr = _learning_rate(learning_rate, "optimizer.learning_rate")
    b1 = _number(b1, "optimizer.b1", 0, 1, hi_open=True)
    b2 = _number(b2, "optimizer.b2", 0, 1, hi_open=True)
    eps = _number(eps, "optimizer.eps", 0, lo_open=True)
    tx = optax.adam(lr, b1=b1, b2=b2, eps=eps)
    return _with_plateau(tx, reduce_on_plateau)


def _sgd(
    learning_rate: Any = 1e-3,
    momentum: float | None = None,
    nesterov: bool = False,
    reduce_on_plateau: dict | None = None,
):
    """SGD; ``momentum`` null or in [0, 1), ``nesterov`` a bool; the learning rate as in :func:`_learning_rate`."""
    lr = _learning_rate(learning_rate, "optimizer.learning_rate")
    if momentum is not None:
        momentum = _number(momentum, "optimizer.momentum", 0, 1, hi_open=True)
    if not isinstance(nesterov, bool):
        raise ValueError(f"optimizer.nesterov: expected true or false, got {nesterov!r}")
    tx = optax.sgd(lr, momentum=momentum, nesterov=nesterov)
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
