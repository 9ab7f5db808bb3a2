"""Per-step diagnostics of optimizer states, recorded by ``fit`` into the history.

A state class opts in by defining a class attribute ``_log_name`` (a short prefix) and ``_log_fields`` (names of
scalar fields). :func:`logged_info` walks any optimizer state (chains, ``inject_hyperparams`` wrappers, hybrids)
and returns ``{"<prefix>.<field>": scalar}``; it is traced inside the training scan, so values are per step.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._hybrid import reason_names


def _is_logged(x: Any) -> bool:
    return hasattr(type(x), "_log_fields") and hasattr(type(x), "_log_name")


def logged_info(state: Any) -> dict[str, jax.Array]:
    """Scalars exposed by the logged states inside ``state`` (outermost first; repeated prefixes get ``#2``...)."""
    out: dict[str, jax.Array] = {}
    seen: dict[str, int] = {}

    def visit(x: Any) -> None:
        if _is_logged(x):
            name = type(x)._log_name
            seen[name] = seen.get(name, 0) + 1
            prefix = name if seen[name] == 1 else f"{name}#{seen[name]}"
            for field in type(x)._log_fields:
                out[f"{prefix}.{field}"] = jnp.asarray(getattr(x, field))
        children = (
            x
            if isinstance(x, (tuple, list))
            else (x.values() if isinstance(x, dict) else None)
        )
        if children is not None:
            for c in children:
                visit(c)

    visit(state)
    return out


def events_from_info(steps: np.ndarray, info: dict[str, np.ndarray], previous: dict[str, float] | None = None) -> list:
    """Discrete events from per-step logged values: hybrid switches and divergence-guard fallbacks.

    Counters are compared step to step (a switch and its rollback can happen within one step): ``switches``
    increasing is a ``switch`` (with the criteria that fired), ``fallbacks`` increasing a ``fallback`` (``final``
    when the hybrid then stays with its first optimizer for good, phase 2).
    """
    previous = previous or {}
    events = []
    for key, values in info.items():
        if not key.endswith(".switches"):
            continue
        prefix = key[: -len(".switches")]
        switches = np.asarray(values)
        fallbacks = np.asarray(info.get(f"{prefix}.fallbacks", np.zeros_like(switches)))
        reasons = np.asarray(info.get(f"{prefix}.reason", np.zeros_like(switches)))
        phases = np.asarray(info.get(f"{prefix}.phase", np.zeros_like(switches)))
        prev_s = previous.get(key, 0)
        prev_f = previous.get(f"{prefix}.fallbacks", 0)
        for i in range(len(switches)):
            if switches[i] > prev_s:
                code = int(reasons[i])
                events.append({"step": int(steps[i]), "kind": "switch", "optimizer": prefix, "reason": code,
                               "criteria": reason_names(code)})
            if fallbacks[i] > prev_f:
                events.append({"step": int(steps[i]), "kind": "fallback", "optimizer": prefix,
                               "fallbacks": int(fallbacks[i]), "final": bool(phases[i] == 2)})
            prev_s, prev_f = switches[i], fallbacks[i]
    return sorted(events, key=lambda e: e["step"])
