"""Name -> problem factory registry used by configs, the CLI and ``sciml_jax.problems.get``."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from ._core import Problem

_REGISTRY: dict[str, Callable[..., Problem]] = {}


def register(name: str, factory: Callable[..., Problem]) -> Callable[..., Problem]:
    """Makes ``factory`` selectable by ``name`` (its keyword arguments with defaults become the allowed options).

    Args:
        name: registry key, a non-empty str not registered yet.
        factory: callable whose parameters all have defaults and that returns a :class:`Problem`.

    Returns:
        ``factory`` unchanged (so ``register`` can be used as a decorator helper).

    Raises:
        ValueError: bad or already used name, or a factory parameter without a default.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"register: name must be a non-empty str, got {name!r}")
    if name in _REGISTRY:
        raise ValueError(f"register: problem name {name!r} is already registered")
    if not callable(factory):
        raise ValueError(f"register: factory must be callable, got {factory!r}")
    for p in inspect.signature(factory).parameters.values():
        if p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) or p.default is p.empty:
            raise ValueError(
                f"register: every parameter of a problem factory must be a keyword with a default; "
                f"{name!r} has {p.name!r}"
            )
    _REGISTRY[name] = factory
    return factory


def names() -> list[str]:
    """Registered problem names, sorted."""
    return sorted(_REGISTRY)


def _factory(name: Any) -> Callable[..., Problem]:
    if not isinstance(name, str) or name not in _REGISTRY:
        raise ValueError(f"problem: unknown name {name!r}; allowed: {', '.join(names())}")
    return _REGISTRY[name]


def options(name: str) -> dict[str, Any]:
    """Allowed options of problem ``name`` and their defaults, in signature order.

    Raises:
        ValueError: unknown name (the message lists the registered ones).
    """
    sig = inspect.signature(_factory(name))
    return {p.name: p.default for p in sig.parameters.values()}


def _listing(opts: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in opts.items()) or "(none)"


def get(name: str, **kwargs: Any) -> Problem:
    """Builds the problem ``name`` with validated options.

    Args:
        name: one of :func:`names`.
        **kwargs: options of the factory (see :func:`describe`); missing ones take their defaults.

    Returns:
        The :class:`Problem`; ``problem.options`` records every option value used.

    Raises:
        ValueError: unknown name, unknown option (the message names it and lists the allowed options with their
            defaults) or an invalid option value (raised by the factory, naming the option).
    """
    allowed = options(name)
    for key in kwargs:
        if key not in allowed:
            raise ValueError(f"problem.{key}: unknown option for {name!r}; allowed: {_listing(allowed)}")
    return _REGISTRY[name](**kwargs)


def describe(name: str) -> str:
    """Human-readable help for problem ``name``: the factory's docstring and its options with defaults.

    Raises:
        ValueError: unknown name.
    """
    factory = _factory(name)
    doc = inspect.cleandoc(factory.__doc__ or "(no description)")
    return f"{name}({_listing(options(name))})\n\n{doc}"
