"""Kill -9 campaign: kill a checkpointing `sciml-jax run` at random moments, resume it, compare with a clean run.

Every resume must either reproduce the uninterrupted run bit for bit (the saved state, i.e. parameters, optimizer
state and guard flags, has the same SHA-256; loss, gradient norm, per-term and metric histories are equal as
floats) or be refused with one clear line (exit 2). Anything else, a resume that finishes but differs, or a
traceback, is a failure and makes this script exit 1.

    PYTHONPATH=$PWD python tools/kill_campaign.py --trials 20 --out /tmp/kill_campaign

The run is tiny (1-D Poisson, 8x2 tanh net, Adam) with a checkpoint after every 10-step chunk, so many kills land
while a checkpoint is being written. Kill moments are drawn uniformly over the training window: from the moment the
trial's first checkpoint appears to 1.1 x the reference's time from its first checkpoint to the end of training
(history.csv written), so about one kill in eleven lands while the report is written or after the run ended. Processes run under `nice -n 10`. The JSON summary
goes to OUT/summary.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CONFIG = """\
name: kill_campaign
dtype: float64
seed: 0
problem: {name: poisson_1d, k: 1}
model: {width: 8, depth: 2, activation: tanh}
sampling: {method: sobol, points: {interior: 16, boundary: 2}}
optimizer: {name: adam, learning_rate: 1.0e-2}
train: {steps: %d, eval_every: 10, checkpoint_every: 10}
"""


def _cli(args: list[str]) -> list[str]:
    return ["nice", "-n", "10", sys.executable, "-m", "sciml_jax.cli", "run", *args, "--no-progress"]


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", ""), "MPLBACKEND": "Agg"}


def _start_and_watch(cmd: list[str], out: str, capture: bool = False, poll: float = 0.01):
    """Start ``cmd``; return (process, seconds until ``out/checkpoint.json`` appeared, or None if it never did)."""
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE if capture else subprocess.DEVNULL, text=True)
    t0 = time.perf_counter()
    return proc, _wait_for(os.path.join(out, "checkpoint.json"), proc, t0, poll)


def _wait_for(path: str, proc: subprocess.Popen, t0: float, poll: float = 0.01) -> float | None:
    while not os.path.exists(path):
        if proc.poll() is not None:
            return None
        time.sleep(poll)
    return time.perf_counter() - t0


def _fingerprint(out: str) -> dict:
    """What must be identical: the saved state's hash and every per-step / per-evaluation record but wall time."""
    with open(os.path.join(out, "checkpoint.json")) as f:
        meta = json.load(f)
    h = meta["history"]
    return {
        "step": meta["step"],
        "state_sha256": meta["arrays"]["sha256"],
        "history": {k: h[k] for k in ("steps", "loss", "grad_norm", "terms", "eval_steps", "metrics", "events")},
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    p.add_argument("--out", default="/tmp/kill_campaign")
    args = p.parse_args(argv)
    shutil.rmtree(args.out, ignore_errors=True)
    os.makedirs(args.out)
    cfg = os.path.join(args.out, "config.yaml")
    with open(cfg, "w") as f:
        f.write(CONFIG % args.steps)
    rng = random.Random(args.seed)

    ref = os.path.join(args.out, "reference")
    t0 = time.perf_counter()
    proc, t_first = _start_and_watch(_cli([cfg, "--out", ref]), ref, capture=True)
    t_trained = _wait_for(os.path.join(ref, "history.csv"), proc, t0)
    _, err = proc.communicate()
    t_ref = time.perf_counter() - t0
    if proc.returncode != 0 or t_first is None or t_trained is None:
        print(err)
        return 1
    want = _fingerprint(ref)
    window = t_trained - t_first
    print(f"reference: {args.steps} steps, exit 0, {t_ref:.1f} s wall; first checkpoint after {t_first:.1f} s, "
          f"training ended {window:.1f} s later")

    rows, failures = [], 0
    for i in range(args.trials):
        out = os.path.join(args.out, f"trial{i:02d}")
        delay = rng.uniform(0.0, 1.1) * window
        proc, _ = _start_and_watch(_cli([cfg, "--out", out]), out)
        try:
            proc.wait(timeout=delay)
            killed = False
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            killed = True
        tmp_left = sorted(n for n in os.listdir(out) if n.endswith(".tmp")) if os.path.isdir(out) else []
        try:
            with open(os.path.join(out, "checkpoint.json")) as f:
                at_kill = json.load(f)["step"]
        except (OSError, ValueError, KeyError):
            at_kill = None
        res = subprocess.run(_cli([cfg, "--out", out, "--resume"]), check=False, env=_env(), capture_output=True,
                             text=True)
        err = [ln for ln in res.stderr.splitlines() if ln.startswith("sciml-jax:")]
        if res.returncode == 0:
            same = _fingerprint(out) == want
            outcome = "identical" if same else "DIFFERENT"
        elif res.returncode == 2 and len([ln for ln in res.stderr.splitlines() if "Traceback" in ln]) == 0:
            outcome = "refused"
            # a refusal because the killed run had already finished must still hold the reference's final state
            if os.path.exists(os.path.join(out, "checkpoint.json")) and at_kill == args.steps:
                outcome = "refused (finished)" if _fingerprint(out) == want else "DIFFERENT"
        else:
            outcome = f"ERROR exit {res.returncode}"
        failures += outcome.startswith(("DIFFERENT", "ERROR"))
        row = {
            "trial": i, "kill_after_first_checkpoint_s": round(delay, 2), "killed": killed, "checkpoint_step_at_kill": at_kill,
            "tmp_files_left": len(tmp_left), "resume_exit": res.returncode, "outcome": outcome,
            "line": err[-1] if res.returncode != 0 and err else "",
        }
        rows.append(row)
        print(f"trial {i:2d}: kill {delay:5.1f} s after the first checkpoint{'' if killed else ' (already finished)'}, "
              f"checkpoint step "
              f"{at_kill}, {len(tmp_left)} temp file(s) left -> resume exit {res.returncode}: {outcome}"
              + (f" | {row['line']}" if row["line"] else ""))
        if outcome.startswith(("DIFFERENT", "ERROR")):
            print(res.stderr[-2000:])
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
    print("outcomes:", ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())))
    print(f"kills that left a half-written temporary file: {sum(r['tmp_files_left'] > 0 for r in rows)}")
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump({"steps": args.steps, "reference_wall_s": t_ref, "reference_first_checkpoint_s": t_first,
                   "trials": rows, "outcomes": counts}, f, indent=1)
    print("PASS: every resume identical or refused with one line" if failures == 0 else f"FAIL: {failures} trial(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
