"""Write the README's main-job numbers from the run they describe.

The README quotes the main job (``configs/poisson1d_hybrid.yaml``) between the markers ``<!-- main-job:begin -->``
and ``<!-- main-job:end -->``. This script renders that paragraph from a comparison run's ``metrics.json`` (final,
best and median-of-last relative L2 errors, steps, times, the switch step), so the README can only say what a run
measured. The run kept in ``docs/results/poisson1d_hybrid/`` is the one quoted; ``tests/test_readme.py`` checks
that the README's block is what this script renders from it.

    sciml-jax run configs/poisson1d_hybrid.yaml --out runs/poisson1d_hybrid
    python tools/readme_numbers.py runs/poisson1d_hybrid --keep docs/results/poisson1d_hybrid --write README.md
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from pathlib import Path

BEGIN, END = "<!-- main-job:begin -->", "<!-- main-job:end -->"
RUNS = ("adam", "lbfgs", "hybrid")


def _e(x: float) -> str:
    return f"{x:.1e}"


def render(metrics: dict, load: str | None = None) -> str:
    """The README paragraph for a comparison run's ``metrics.json`` (a dict of run name -> metrics)."""
    missing = [r for r in RUNS if r not in metrics]
    if missing:
        raise ValueError(f"metrics.json has no run(s) {missing}; expected the runs {list(RUNS)} of the main job")
    m = {r: metrics[r] for r in RUNS}
    err = {r: m[r]["errors"]["rel_l2"] for r in RUNS}
    switch = [e["step"] for e in m["hybrid"].get("events", []) if e.get("kind") == "switch"]
    common = min(m[r]["wall_time_s"] for r in RUNS)
    lines = [
        "| run | steps | rel L2 final | best (step) | median of last 5 | at equal time | steps time (s) | compile (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in RUNS:
        e = err[r]
        lines.append(
            f"| {r} | {m[r]['steps']} | {_e(e['final'])} | {_e(e['best'])} ({e['best_step']}) | "
            f"{_e(e['median_last'])} | {_e(m[r]['rel_l2_at_common_time'])} | {m[r]['wall_time_s']:.1f} | "
            f"{m[r]['compile_time_s']:.1f} |"
        )
    where = f" (load average {load})" if load else ""
    text = (
        f"Measured by the run kept in [`docs/results/poisson1d_hybrid/`](docs/results/poisson1d_hybrid/report.md)"
        f"{where}, equal time = {common:.1f} s of steps"
        + (f", hybrid switch at step {switch[0]}" if switch else "")
        + ":\n\n"
        + "\n".join(lines)
    )
    spikes = [
        f"{r}'s final error is {err[r]['final'] / err[r]['best']:.0f}× its best (step {err[r]['best_step']})"
        for r in RUNS
        if err[r]["final"] > 2 * err[r]["best"]
    ]
    if spikes:
        text += "\n\n" + "; ".join(spikes) + ": read the best and median columns, not the final one alone."
    return text


def replace_block(readme: str, block: str) -> str:
    """``readme`` with the text between the markers replaced by ``block``."""
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.S)
    if not pattern.search(readme):
        raise ValueError(f"README has no {BEGIN} ... {END} block")
    return pattern.sub(lambda _: f"{BEGIN}\n{block}\n{END}", readme, count=1)


def current_block(readme: str) -> str:
    """The text between the markers (without them)."""
    start, stop = readme.index(BEGIN) + len(BEGIN), readme.index(END)
    return readme[start:stop].strip("\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", help="comparison run directory of configs/poisson1d_hybrid.yaml (holds metrics.json)")
    ap.add_argument("--load", help="load average during the run, quoted beside the numbers")
    ap.add_argument("--keep", help="copy the run's report.md, metrics.json and comparison.png here")
    ap.add_argument("--write", help="README to update in place (default: print the block)")
    args = ap.parse_args(argv)
    run = Path(args.run)
    if not (run / "metrics.json").is_file():
        print(f"readme_numbers: {run / 'metrics.json'} not found (run the main job first)", file=sys.stderr)
        return 2
    metrics = json.loads((run / "metrics.json").read_text())
    if args.keep:
        keep = Path(args.keep)
        keep.mkdir(parents=True, exist_ok=True)
        for name in ("metrics.json", "comparison.png"):
            shutil.copy2(run / name, keep / name)
        # the per-run reports stay with the run (checkpoints are large): drop the links to them
        report = [ln for ln in (run / "report.md").read_text().splitlines() if not re.match(r"- \[\w+\]\(\w+/", ln)]
        (keep / "report.md").write_text("\n".join(report) + "\n")
        if args.load:
            (keep / "load.txt").write_text(args.load + "\n")
    load = args.load
    block = render(metrics, load)
    if args.write:
        path = Path(args.write)
        path.write_text(replace_block(path.read_text(), block))
    else:
        print(block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
