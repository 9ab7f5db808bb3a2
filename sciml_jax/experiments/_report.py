"""Helpers shared by the experiments: option specs checked by the config layer, formatting, robust statistics and
report files (private)."""

from __future__ import annotations

import json
import math
import os
import platform
from collections.abc import Mapping, Sequence
from typing import Any

import equinox as eqx
import jax
import numpy as np
import yaml

from .. import config as _config
from .. import train

K_LAST = 5  # evaluations in the "median of the last k" statistic
ROBUST_NOTE = (
    f"final = the last evaluation; best = the smallest over all evaluations; median last {K_LAST} = the median of "
    f"the last {K_LAST} evaluations."
)
TIME_RULE = "the first evaluation from which rel L2 stays at or below the level (it never rises above it again)"

# (fn, *args) -> fn(*args), compiled once per structure and shapes of (fn, args): e.g. ``call(residual.loss, p, b)``
# for every problem of a family (coefficients are array leaves) and every point set of the same size.
call = eqx.filter_jit(lambda fn, *args: fn(*args))


class Options:
    """Base of an experiment's options dataclass: :meth:`validate` is the hook the config layer calls.

    Keys and types are checked like any config section (``experiment_options.<key>: ...``); :meth:`check` adds
    the experiment's own rules (ranges, names, consistency with the rest of the config) and may normalise values.
    """

    @classmethod
    def validate(cls, raw: Mapping[str, Any], cfg: Any) -> Options:
        opts = _config._build(cls, dict(raw or {}), "experiment_options")
        opts.check(cfg)
        return opts

    def check(self, cfg: Any) -> None:  # noqa: ARG002 - overridden
        return None


def check_int(value: Any, name: str, low: int) -> int:
    """An option that must be an integer >= low (ValueError naming ``experiment_options.<name>``)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"experiment_options.{name}: expected an integer >= {low}, got {value!r}")
    return int(value)


def check_names(values: Any, name: str, allowed: Sequence[str], *, empty: bool = False) -> list[str]:
    """A list of distinct names among ``allowed`` (non-empty unless ``empty``)."""
    ok = isinstance(values, (list, tuple)) and (empty or values) and len(set(values)) == len(values)
    if not ok or any(v not in allowed for v in values):
        raise ValueError(f"experiment_options.{name}: expected distinct names among {', '.join(allowed)}; got {values!r}")
    return list(values)


def no_resume(name: str, resume: bool) -> None:
    if resume:
        raise ValueError(f"resume: the {name} experiment does not checkpoint; run it again without --resume")


def finite(x: Any) -> float | None:
    """float(x), or None when it is None or not finite (JSON has no NaN/inf)."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def fmt(v: Any, spec: str = ".3e") -> str:
    """A number for a report table: None and NaN as "—", ±inf as "∞"; other values as str."""
    if v is None:
        return "—"
    if isinstance(v, (float, int, np.floating, np.integer)) and not isinstance(v, bool):
        v = float(v)
        return "—" if math.isnan(v) else ("∞" if v > 0 else "-∞") if math.isinf(v) else format(v, spec)
    return str(v)


def value_at_time(wall_times: Sequence[float], values: Sequence[Any], t: float) -> Any:
    """The value of the last evaluation whose wall time is <= t (None if there is none): a run's metric at a common
    wall time, for equal-time comparisons."""
    out = None
    for tt, v in zip(wall_times, values):
        if tt <= t + 1e-9:
            out = v
    return out


def robust(history: Any, metric: str = "rel_l2") -> dict:
    """``{metric: final, metric_best, metric_median_last}`` of a run (see :func:`sciml_jax.train.summary_stats`)."""
    s = train.summary_stats(history, metric, K_LAST)
    return {metric: s["final"], f"{metric}_best": s["best"], f"{metric}_median_last": s["median_last"]}


def stats(values: Sequence[Any]) -> dict:
    """Mean, std, min, max and geometric mean of the finite values (None when there are none)."""
    v = np.asarray([np.nan if x is None else x for x in values], dtype=float)
    ok = v[np.isfinite(v)]
    if not ok.size:
        return dict.fromkeys(("mean", "std", "min", "max", "geomean"))
    gm = float(np.exp(np.mean(np.log(ok)))) if np.all(ok > 0) else None
    return {"mean": float(ok.mean()), "std": float(ok.std()), "min": float(ok.min()), "max": float(ok.max()), "geomean": gm}


def environment(cfg: Any) -> dict:
    """dtype, seed and the software/hardware a report's numbers were measured on."""
    return {"dtype": cfg.dtype, "seed": cfg.seed, "jax_version": jax.__version__, "backend": jax.default_backend(),
            "platform": platform.platform()}


def config_block(cfg: Any) -> list[str]:
    """The run's configuration as a fenced YAML block (markdown lines)."""
    return ["## Configuration", "", "```yaml", yaml.safe_dump(_config.to_dict(cfg), sort_keys=False).strip(), "```", ""]


def figure_lines(figs: Mapping[str, str]) -> list[str]:
    return ["## Figures", ""] + [f"![{k}]({os.path.basename(v)})" for k, v in figs.items()] + [""]


def clean(o: Any) -> Any:
    """JSON-safe copy: numpy arrays to lists, numpy scalars to Python, non-finite floats to None, private ``_keys``
    dropped."""
    if isinstance(o, Mapping):
        return {str(k): clean(v) for k, v in o.items() if not str(k).startswith("_")}
    if isinstance(o, (list, tuple)):
        return [clean(v) for v in o]
    if isinstance(o, np.ndarray):
        return clean(o.tolist())
    if isinstance(o, (np.floating, np.integer, np.bool_)):
        o = o.item()
    return None if isinstance(o, float) and not math.isfinite(o) else o


def write_outputs(out_dir: str, cfg: Any, lines: list[str], summary: dict) -> dict:
    """Write ``report.md`` (lines + the configuration), ``metrics.json`` (summary) and ``config.yaml``."""
    summary["report"] = os.path.join(out_dir, "report.md")
    with open(summary["report"], "w") as f:
        f.write("\n".join(lines + config_block(cfg)))
    with open(os.path.join(out_dir, "metrics.json"), "w") as f:
        json.dump(clean(summary), f, indent=2, default=str)
    with open(os.path.join(out_dir, "config.yaml"), "w") as f:
        yaml.safe_dump(_config.to_dict(cfg), f, sort_keys=False)
    return summary


def save(fig: Any, path: str, tight: bool = True) -> str:
    import matplotlib.pyplot as plt  # noqa: PLC0415 - matplotlib loads with the first figure

    if tight:
        fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
