"""Helpers shared by the experiments' report writers (private)."""

from __future__ import annotations

import json
import math
import os
import platform
from typing import Any

import jax
import numpy as np
import yaml

from .. import config as _config


def finite(x: Any) -> float | None:
    """float(x), or None when it is None or not finite (JSON has no NaN/inf)."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def check_int(value: Any, name: str, low: int) -> int:
    """An experiment option that must be an integer >= low (ValueError naming ``experiment_options.<name>``)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"experiment_options.{name}: expected an integer >= {low}, got {value!r}")
    return int(value)


def environment(cfg: _config.RunConfig) -> dict:
    """dtype, seed and the software/hardware a report's numbers were measured on."""
    return {
        "dtype": cfg.dtype,
        "seed": cfg.seed,
        "jax_version": jax.__version__,
        "backend": jax.default_backend(),
        "platform": platform.platform(),
    }


def config_block(cfg: _config.RunConfig) -> list[str]:
    """The run's configuration as a fenced YAML block (markdown lines)."""
    return ["## Configuration", "", "```yaml", yaml.safe_dump(_config.to_dict(cfg), sort_keys=False).strip(), "```", ""]


def write_outputs(out_dir: str, cfg: _config.RunConfig, lines: list[str], summary: dict) -> None:
    """Write ``report.md`` (lines), ``metrics.json`` (summary) and ``config.yaml`` into out_dir."""
    with open(os.path.join(out_dir, "report.md"), "w") as f:
        f.write("\n".join(lines))
    with open(os.path.join(out_dir, "metrics.json"), "w") as f:
        json.dump(summary, f, indent=2, default=float)
    with open(os.path.join(out_dir, "config.yaml"), "w") as f:
        yaml.safe_dump(_config.to_dict(cfg), f, sort_keys=False)


def first_at_or_below(history: Any, metric: str, level: float) -> tuple[int, float] | None:
    """(step, wall time in s, compile excluded) of the first evaluation with ``metric <= level``, or None."""
    for step, t, v in zip(history.eval_steps, history.wall_time_s, history.metrics.get(metric, [])):
        if v <= level:  # NaN compares False
            return int(step), float(t)
    return None
