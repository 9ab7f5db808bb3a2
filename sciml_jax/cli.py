"""Command line: ``sciml-jax run CONFIG.yaml [--out DIR] [--set key=value ...] [--resume]`` and ``sciml-jax list``.

Exit status: 0 on success, 1 when training ended on a non-finite loss, 2 on a configuration or usage error
(one line on stderr naming the key and the allowed values; nothing is compiled before the config is valid).
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
from collections.abc import Sequence


def _configs_dir() -> str | None:
    """The repository's ``configs/`` (next to the package in a source checkout), else ``./configs``."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for candidate in (os.path.join(here, "configs"), os.path.join(os.getcwd(), "configs")):
        if os.path.isdir(candidate):
            return candidate
    return None


def _resolve_config(path: str) -> str:
    """Accept a path, or a bare config name found in ``configs/`` (``quickstart`` -> ``configs/quickstart.yaml``)."""
    if os.path.exists(path):
        return path
    d = _configs_dir()
    if d is not None:
        for cand in (os.path.join(d, path), os.path.join(d, path + ".yaml")):
            if os.path.exists(cand):
                return cand
    return path  # config.load reports the missing file


def _print_table(results: dict) -> None:
    rows = [("run", "rel L2", "final loss", "steps", "time (s)", "compile (s)", "status")]
    for name, s in results.items():
        rel = s.get("rel_l2")
        loss = s.get("final_loss")
        rows.append(
            (
                name,
                "—" if rel is None else f"{rel:.3e}",
                "—" if loss is None else f"{loss:.3e}",
                str(s["steps"]),
                f"{s['wall_time_s']:.1f}",
                f"{s['compile_time_s']:.1f}",
                s["status"],
            )
        )
        for term, v in s.get("term_mse", {}).items():
            rows.append((f"  mse {term}", "", "—" if v is None else f"{v:.3e}", "", "", "", ""))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for i, r in enumerate(rows):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
        if i == 0:
            print("  ".join("-" * w for w in widths))


def _cmd_run(args: argparse.Namespace) -> int:
    from . import config  # noqa: PLC0415 - keep `sciml-jax --help` fast

    try:
        cfg = config.load(_resolve_config(args.config), args.set or [])
    except config.ConfigError as e:
        print(f"sciml-jax: config error: {e}", file=sys.stderr)
        return 2
    out = args.out or os.path.join("runs", cfg.name)
    if args.resume and not os.path.exists(os.path.join(out, "checkpoint.json")):
        print(f"sciml-jax: --resume: no checkpoint in {out!r} (run without --resume first)", file=sys.stderr)
        return 2
    from . import experiments  # noqa: PLC0415

    progress = False if args.no_progress else None
    results = experiments.run_config(cfg, out, resume=args.resume, progress=progress)
    print()
    _print_table(results)
    print(f"\nreport: {os.path.join(out, 'report.md')}")
    for name, s in results.items():
        if s["status"] != "completed":
            print(f"{name}: {s['message']}", file=sys.stderr)
    return 1 if any(s["status"] == "nonfinite" for s in results.values()) else 0


def _cmd_list(args: argparse.Namespace) -> int:
    from . import optim, problems  # noqa: PLC0415

    d = _configs_dir()
    print("configs:")
    if d is None:
        print("  (no configs/ directory found)")
    else:
        for path in sorted(glob.glob(os.path.join(d, "*.yaml"))):
            print(f"  {os.path.relpath(path)}")
    print("problems:")
    for name in problems.names():
        print(f"  {name}")
    print("optimizers:")
    for name in optim.names():
        print(f"  {name}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sciml-jax", description="Train and analyse physics-informed networks.")
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="train from a YAML config and write a report directory")
    p_run.add_argument("config", help="path to a YAML config, or a name in configs/ (e.g. quickstart)")
    p_run.add_argument("--out", help="output directory (default runs/<name>)")
    p_run.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="override a config key, e.g. optimizer.learning_rate=1e-3"
    )
    p_run.add_argument("--resume", action="store_true", help="continue from the checkpoint in the output directory")
    p_run.add_argument("--no-progress", action="store_true", help="no progress bar")
    p_run.set_defaults(func=_cmd_run)
    p_list = sub.add_parser("list", help="list configs, problems and optimizers")
    p_list.set_defaults(func=_cmd_list)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
