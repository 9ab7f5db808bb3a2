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


# ---------------------------------------------------------------------------------------- user factories


def _load_module(path: str) -> Any:
    """Import a Python file as a module (cached per path and modification time)."""
    import importlib.util  # noqa: PLC0415
    import os  # noqa: PLC0415
    import sys  # noqa: PLC0415

    stamp = os.path.getmtime(path)
    key = (os.path.abspath(path), stamp)
    if key in _MODULES:
        return _MODULES[key]
    name = f"sciml_jax_user_{abs(hash(key[0])):x}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ValueError(f"problem.factory: {path!r} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look modules up by name
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # noqa: BLE001 - any error in the user's file becomes one line
        sys.modules.pop(name, None)
        line = ""
        tb = e.__traceback__
        while tb is not None:
            if os.path.abspath(tb.tb_frame.f_code.co_filename) == os.path.abspath(path):
                line = f" (line {tb.tb_lineno})"
            tb = tb.tb_next
        raise ValueError(f"problem.factory: importing {path!r} failed{line}: {type(e).__name__}: {e}") from None
    _MODULES[key] = module
    return module


_MODULES: dict = {}


def load_factory(spec: str, base_dir: str | None = None) -> Callable[..., Problem]:
    """The problem factory named by ``"path/to/file.py:function"`` (a path relative to ``base_dir``, else to the
    working directory).

    Raises:
        ValueError: a malformed spec, a missing file, an import error (with its line) or no such function.
    """
    import os  # noqa: PLC0415

    if not isinstance(spec, str) or ":" not in spec:
        raise ValueError(f"problem.factory: expected 'file.py:function', got {spec!r}")
    path, _, func = spec.rpartition(":")
    if not path.endswith(".py") or not func.isidentifier():
        raise ValueError(f"problem.factory: expected 'file.py:function', got {spec!r}")
    candidates = [os.path.join(base_dir, path)] if base_dir and not os.path.isabs(path) else []
    candidates.append(path)
    found = next((c for c in candidates if os.path.isfile(c)), None)
    if found is None:
        raise ValueError(f"problem.factory: no file {path!r} (looked in {', '.join(map(repr, candidates))})")
    module = _load_module(found)
    factory = getattr(module, func, None)
    if not callable(factory):
        names_ = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_"))
        raise ValueError(f"problem.factory: {found!r} has no function {func!r}; it has {', '.join(names_) or '(none)'}")
    return factory


def from_factory(spec: str, base_dir: str | None = None, **kwargs: Any) -> Problem:
    """Build a problem from a factory in the user's file, with its options checked against the signature.

    Raises:
        ValueError: as :func:`load_factory`, an option the factory does not take (listing those it takes), an
            error inside the factory, or a result that is not a :class:`Problem`.
    """
    factory = load_factory(spec, base_dir)
    sig = inspect.signature(factory)
    takes_any = any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values())
    allowed = {p.name: p.default for p in sig.parameters.values() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    for key in kwargs:
        if key not in allowed and not takes_any:
            raise ValueError(f"problem.{key}: unknown option for {spec!r}; allowed: {_listing(allowed)}")
    missing = [k for k, v in allowed.items() if v is inspect.Parameter.empty and k not in kwargs]
    if missing:
        raise ValueError(f"problem: {spec!r} needs option(s) {', '.join(missing)}")
    try:
        out = factory(**kwargs)
    except ValueError as e:
        raise ValueError(f"problem ({spec}): {e}") from None
    except Exception as e:  # noqa: BLE001
        raise ValueError(f"problem ({spec}): the factory raised {type(e).__name__}: {e}") from None
    if not isinstance(out, Problem):
        raise ValueError(f"problem.factory: {spec!r} returned a {type(out).__name__}, not a sciml_jax.problems.Problem")
    return out


def build(name: str | None = None, factory: str | None = None, base_dir: str | None = None, **kwargs: Any) -> Problem:
    """A problem from a config section: a registered ``name`` or a ``factory`` in the user's file (one of them)."""
    if (name is None) == (factory is None):
        raise ValueError("problem: give exactly one of name (a registered problem) or factory ('file.py:function')")
    if factory is not None:
        return from_factory(factory, base_dir, **kwargs)
    return get(name, **kwargs)
