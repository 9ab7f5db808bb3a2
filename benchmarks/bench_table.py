"""One markdown table of every run in the given bench ``runs.jsonl`` files (the bench experiment writes one per
output folder): problem, optimizer, seed, final / best / median-of-last rel L2, steps, steps' wall time, compile
time, CPU s per step and the 1-min load average before -> after the run.

Usage::

    python benchmarks/bench_table.py runs/bench_burgers/runs.jsonl runs/bench_heat/runs.jsonl [--target burgers=1e-5]
"""

from __future__ import annotations

import argparse
import json


def _f(v, spec):
    return "—" if v is None else format(v, spec)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+", help="runs.jsonl files of bench runs")
    ap.add_argument("--target", action="append", default=[], help="problem=level: mark whether final and "
                    "median-of-last are at or below it")
    args = ap.parse_args(argv)
    targets = {}
    for t in args.target:
        p, _, v = t.partition("=")
        targets[p] = float(v)
    rows = []
    for path in args.files:
        with open(path, encoding="utf-8") as f:
            rows += [json.loads(line) for line in f if line.strip()]
    rows.sort(key=lambda r: (r["problem"], r["optimizer"], r["seed"]))
    print("| problem | optimizer | seed | final | best | median last | target met | steps | steps' wall (s) | "
          "compile (s) | CPU s/step | load |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        tgt = targets.get(r["problem"])
        met = "—" if tgt is None else ("yes" if all(v is not None and v <= tgt for v in (
            r["rel_l2"], r["rel_l2_median_last"])) else "**no**")
        print(f"| {r['problem']} | {r['optimizer']} | {r['seed']} | {_f(r['rel_l2'], '.2e')} | "
              f"{_f(r['rel_l2_best'], '.2e')} | {_f(r['rel_l2_median_last'], '.2e')} | {met} | {r['steps']} | "
              f"{r['wall_time_s']:.0f} | {r['compile_time_s']:.0f} | {_f(r.get('cpu_s_per_step'), '.3g')} | "
              f"{r['load_before']:.1f} → {r['load_after']:.1f} |")


if __name__ == "__main__":
    main()
