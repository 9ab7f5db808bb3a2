"""Command line: ``sciml-jax run CONFIG.yaml [--out DIR] [--set key=value ...] [--resume | --overwrite]`` and
``sciml-jax list``.

Exit status of ``sciml-jax run``:

* **0** every run completed (or was stopped by a callback).
* **1** training failed: a run ended on a non-finite loss (``nonfinite``) or diverged (``diverged``: the loss stayed
  above ``train.divergence_factor`` x its best for a whole evaluation chunk). Its report, metrics.json, plots and
  checkpoint are written all the same.
* **2** bad input, one line on stderr and nothing compiled or written: an invalid config or ``--set`` value, an
  output folder in use by another run, holding an earlier run (without ``--resume``/``--overwrite``), not a
  directory or not writable, or a ``--resume`` that cannot continue (no checkpoint, a damaged one, a changed model,
  problem, points, loss, optimizer, seed or dtype, nothing left to train).
* **130** interrupted by SIGINT (Ctrl-C), **143** by SIGTERM: the checkpoint at the last completed chunk,
  metrics.json and report.md (status ``interrupted``) are written and stderr says how to resume.

The output folder is locked while a run uses it (``.sciml-jax.lock``, an advisory ``flock`` holding the pid and
host); a lock left by a process that no longer runs is taken over, with a line saying so.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import shlex
import signal
import socket
import sys
import time
from collections.abc import Sequence

LOCK_NAME = ".sciml-jax.lock"
# files that mark a folder as holding a run (written by the experiments), and the checkpoint's own files
_RUN_MARKERS = ("checkpoint.json", "metrics.json", "report.md")
_RUN_FILES = ("checkpoint.json", "checkpoint.eqx", "checkpoint_batch.eqx", "metrics.json", "report.md",
              "history.csv", "config.yaml")


class _UsageError(Exception):
    """A problem with the command line or the output folder: one line, exit 2."""


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


# ------------------------------------------------------------------------------------------- output folder


class _FolderLock:
    """An advisory lock on the output folder (``fcntl.flock`` on ``LOCK_NAME``), released when the process ends.

    The kernel drops a ``flock`` when its holder dies (even by SIGKILL), so a lock file nobody holds is stale by
    construction and is taken over; the file records pid, host and command for the message a second run prints.
    """

    def __init__(self, directory: str):
        self.path = os.path.join(directory, LOCK_NAME)
        self.fd: int | None = None

    def acquire(self) -> str | None:
        """Take the lock; return a note when a stale lock was taken over. Raises _UsageError when it is held."""
        import fcntl  # noqa: PLC0415 - POSIX only

        for _ in range(5):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = self._read(fd)
                os.close(fd)
                who = (f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}, started "
                       f"{holder.get('started', '?')}") if holder else "another process"
                raise _UsageError(
                    f"{os.path.dirname(self.path)!r} is in use by another run ({who}); wait for it to finish or "
                    "choose another --out"
                ) from None
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # the holder removed the file between our open and flock: try the new file
                os.close(fd)
                continue
            previous = self._read(fd)
            info = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                    "command": " ".join(sys.argv)}
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(info).encode(), 0)
            self.fd = fd
            if previous:
                return (f"taking over the lock left in {os.path.dirname(self.path)!r} by pid "
                        f"{previous.get('pid', '?')} on {previous.get('host', '?')} (no longer running)")
            return None
        raise _UsageError(f"{os.path.dirname(self.path)!r}: could not take the folder lock (it keeps changing)")

    @staticmethod
    def _read(fd: int) -> dict:
        try:
            data = os.pread(fd, 4096, 0)
            info = json.loads(data.decode()) if data else {}
            return info if isinstance(info, dict) else {}
        except (OSError, ValueError):
            return {"pid": "?", "host": "?"}

    def release(self) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.path)  # while still holding it: a waiting opener of the old file re-checks the inode
        os.close(self.fd)
        self.fd = None


def _run_dirs(cfg, out: str) -> dict:
    """Run name -> (run config, folder): ``out`` itself, or ``out/<name>`` for each ``compare`` entry."""
    runs = cfg.runs()
    if not cfg.compare:
        return {cfg.name: (cfg, out)}
    return {name: (sub, os.path.join(out, name)) for name, sub in runs.items()}


def _prepare_out(out: str) -> None:
    """Create ``out`` (one line, exit 2, when it is a file, cannot be created or is not writable)."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise _UsageError(f"--out {out!r} exists and is not a directory")
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as e:
        raise _UsageError(f"--out {out!r}: cannot create the directory ({e.strerror})") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise _UsageError(f"--out {out!r}: the directory is not writable")


def _describe_existing(cfg, out: str) -> str | None:
    """What earlier run lives in ``out`` (None if nothing)."""
    from . import train  # noqa: PLC0415

    dirs = [out] + [d for _, d in _run_dirs(cfg, out).values() if d != out]
    for d in dirs:
        if train.has_checkpoint(d):
            try:
                meta = train.read_checkpoint_meta(d, verify=False)
                return f"a checkpoint at step {meta['step']}, status {meta.get('status', '?')!r}, in {d!r}"
            except (OSError, ValueError):
                return f"a checkpoint in {d!r}"
    for d in dirs[:1]:
        found = [m for m in _RUN_MARKERS if os.path.exists(os.path.join(d, m))]
        if found:
            return f"{', '.join(found)} in {d!r}"
    return None


def _clear_run_files(cfg, out: str) -> None:
    """``--overwrite``: remove the earlier run's checkpoint and reports (only files the runs write)."""
    dirs = {out, *(d for _, d in _run_dirs(cfg, out).values())}
    for d in dirs:
        # the checkpoint record first: from then on no half-removed checkpoint can be resumed
        for name in _RUN_FILES:
            with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                os.remove(os.path.join(d, name))
        for path in glob.glob(os.path.join(d, "checkpoint-*.eqx")) + glob.glob(os.path.join(d, "checkpoint*.tmp")):
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)


def _check_resume(cfg, out: str) -> list[str]:
    """Refuse a resume that cannot continue (exit 2); return notes for the runs that have nothing left to do."""
    from . import config, train  # noqa: PLC0415

    if cfg.experiment != "train":
        raise _UsageError(f"--resume: the {cfg.experiment} experiment does not checkpoint; run it again without --resume")
    if cfg.train.stages:
        raise _UsageError("--resume is not supported for runs with train.stages")
    found, todo, notes = 0, 0, []
    for name, (run_cfg, d) in _run_dirs(cfg, out).items():
        label = f"run {name!r} in {d!r}" if cfg.compare else repr(d)
        if not train.has_checkpoint(d):
            todo += 1  # a comparison interrupted before this run: it starts afresh
            continue
        found += 1
        try:
            meta = train.read_checkpoint_meta(d)
        except train.CheckpointError as e:
            raise _UsageError(f"--resume: {e}") from None
        saved = meta.get("config")
        if saved is None and os.path.isfile(os.path.join(d, "config.yaml")):  # written before configs were stored
            try:
                with open(os.path.join(d, "config.yaml"), encoding="utf-8") as f:
                    saved = config.parse_yaml(f.read(), "config.yaml")
            except (config.ConfigError, OSError, UnicodeDecodeError):
                saved = None
        if saved is None:
            raise _UsageError(f"--resume: the checkpoint in {label} records no config; it cannot be checked, refusing")
        conflicts = config.resume_conflicts(saved, run_cfg)
        if conflicts:
            raise _UsageError(
                f"--resume: {label}: the config differs from the checkpoint's in {'; '.join(conflicts)}; only "
                f"{', '.join(k for k in config.RESUME_SAFE if k.startswith('train.'))} may change (start a new run: "
                "another --out, or --overwrite)"
            )
        if meta.get("status") == "nonfinite":
            raise _UsageError(
                f"--resume: {label} ended on a non-finite loss at step {meta['step']}; it cannot be continued "
                "(start a new run with other settings: another --out, or --overwrite)"
            )
        if meta["step"] >= run_cfg.train.steps:
            notes.append(
                f"{label} is already at step {meta['step']} and train.steps is {run_cfg.train.steps}: nothing to "
                f"train (raise it, e.g. --set train.steps={max(2 * meta['step'], 1)}, to continue)"
            )
        else:
            todo += 1
    if not found:
        raise _UsageError(f"--resume: no checkpoint in {out!r} (run without --resume first)")
    if not todo:
        raise _UsageError(notes[0] if len(notes) == 1 else "nothing to train: " + "; ".join(notes))
    return notes


# ------------------------------------------------------------------------------------------- run


@contextlib.contextmanager
def _interrupts_raise():
    """SIGINT and SIGTERM raise ``train.Interrupted(signum)`` (fit turns it into a checkpoint and a report)."""
    from .train import Interrupted  # noqa: PLC0415

    received: list[int] = []

    def handler(signum, frame):  # noqa: ARG001
        received.append(signum)
        raise Interrupted(signum)

    previous = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)
    except ValueError:  # not the main thread: leave the handlers alone (Ctrl-C still raises KeyboardInterrupt)
        pass
    try:
        yield received
    finally:
        for sig, h in previous.items():
            signal.signal(sig, h)


def _resume_command(args: argparse.Namespace, out: str) -> str:
    cmd = ["sciml-jax", "run", args.config, "--out", out, "--resume"]
    for item in args.set or []:
        cmd += ["--set", item]
    if args.no_progress:
        cmd.append("--no-progress")
    return shlex.join(cmd)


def _cmd_run(args: argparse.Namespace) -> int:
    from . import config  # noqa: PLC0415 - keep `sciml-jax --help` fast

    def fail(msg: str) -> int:
        print(f"sciml-jax: {msg}", file=sys.stderr)
        return 2

    if args.resume and args.overwrite:
        return fail("--resume and --overwrite exclude each other (continue the run, or replace it)")
    try:
        cfg = config.load(_resolve_config(args.config), args.set or [])
    except config.ConfigError as e:
        return fail(f"config error: {e}")
    out = args.out or os.path.join("runs", cfg.name)
    lock = None
    with _interrupts_raise() as received:
        try:
            _prepare_out(out)
            lock = _FolderLock(out)
            try:
                note = lock.acquire()
            except OSError as e:
                raise _UsageError(f"--out {out!r}: cannot write the lock file ({e.strerror})") from None
            if note:
                print(f"sciml-jax: {note}", file=sys.stderr)
            if args.resume:
                for line in _check_resume(cfg, out):
                    print(f"sciml-jax: {line}", file=sys.stderr)
            else:
                existing = _describe_existing(cfg, out)
                if existing and not args.overwrite:
                    raise _UsageError(
                        f"{out!r} already holds a run ({existing}); continue it with --resume, replace it with "
                        "--overwrite, or choose another --out"
                    )
                if existing:
                    _clear_run_files(cfg, out)
                    print(f"sciml-jax: --overwrite: removed the earlier run's checkpoint and reports in {out!r}",
                          file=sys.stderr)
            from . import experiments, train  # noqa: PLC0415

            progress = False if args.no_progress else None
            try:
                results = experiments.run_config(cfg, out, resume=args.resume, progress=progress)
            except train.CheckpointError as e:
                raise _UsageError(f"--resume: {e}") from None
        except _UsageError as e:
            return fail(str(e))
        except KeyboardInterrupt as e:  # outside fit (setup, compilation, report writing): the checkpoint is intact
            from .train import Interrupted  # noqa: PLC0415

            signum = e.signum if isinstance(e, Interrupted) else signal.SIGINT
            from . import train  # noqa: PLC0415

            saved = cfg.experiment == "train" and any(train.has_checkpoint(d) for _, d in _run_dirs(cfg, out).values())
            tail = (f"the last checkpoint is intact; resume with: {_resume_command(args, out)}" if saved
                    else "nothing was saved; run again")
            print(f"sciml-jax: interrupted by {signal.Signals(signum).name}; {tail}", file=sys.stderr)
            return 128 + signum
        finally:
            if lock is not None:
                lock.release()
    print()
    _print_table(results)
    print(f"\nreport: {os.path.join(out, 'report.md')}")
    for name, s in results.items():
        if s["status"] != "completed":
            print(f"{name}: {s['message']}", file=sys.stderr)
    interrupted = [s for s in results.values() if s["status"] == "interrupted"]
    if interrupted or (cfg.compare and len(results) < len(cfg.compare)):
        msg = interrupted[0]["message"] if interrupted else "interrupted"
        signum = received[-1] if received else signal.SIGINT
        print(f"sciml-jax: {msg}; checkpoint saved; resume with: {_resume_command(args, out)}", file=sys.stderr)
        return 128 + signum
    return 1 if any(s["status"] in ("nonfinite", "diverged") for s in results.values()) else 0


def _cmd_list(args: argparse.Namespace) -> int:
    from . import optim, problems  # noqa: PLC0415

    d = _configs_dir()
    print("configs:")
    if d is None:
        print("  (no configs/ directory found)")
    else:
        for path in sorted(glob.glob(os.path.join(d, "**", "*.yaml"), recursive=True)):
            print(f"  {os.path.relpath(path)}")
    print("problems:")
    for name in problems.names():
        print(f"  {name}")
    print("optimizers:")
    for name in optim.names():
        print(f"  {name}")
    from . import experiments  # noqa: PLC0415 - the experiment registry

    print("experiments (config key `experiment`):")
    for name in experiments.names():
        print(f"  {name}")
    print("your own problem: `problem: {factory: my_pde.py:make, ...options}` (see docs/OWN_PROBLEM.md)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sciml-jax", description="Train and analyse physics-informed networks.")
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser(
        "run",
        help="train from a YAML config and write a report directory",
        description="Train from a YAML config and write a report directory (report.md, metrics.json, plots, "
        "checkpoint).",
        epilog="exit status: 0 completed; 1 training failed (non-finite loss or diverged; reports still written); "
        "2 bad input (config, --set, output folder in use / holding a run / not writable, a resume that cannot "
        "continue; nothing written); 130 interrupted by SIGINT, 143 by SIGTERM (checkpoint and reports of the last "
        "completed chunk written, the resume command printed).",
    )
    p_run.add_argument("config", help="path to a YAML config, or a name in configs/ (e.g. quickstart)")
    p_run.add_argument("--out", help="output directory (default runs/<name>)")
    p_run.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="override a config key, e.g. optimizer.learning_rate=1e-3"
    )
    p_run.add_argument(
        "--resume", action="store_true",
        help="continue from the checkpoint in the output directory (only train.steps and cadences may change)",
    )
    p_run.add_argument(
        "--overwrite", action="store_true", help="replace an earlier run in the output directory (its checkpoint too)"
    )
    p_run.add_argument("--no-progress", action="store_true", help="no progress bar")
    p_run.set_defaults(func=_cmd_run)
    p_list = sub.add_parser("list", help="list configs, problems and optimizers")
    p_list.set_defaults(func=_cmd_list)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
