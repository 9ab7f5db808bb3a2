"""Faults: torn checkpoints, unsafe resumes, interrupts, output-folder races, config gaps, diverged runs.

Each test injects one fault and checks that nothing is lost (checkpoint, report) and nothing is silent (one line,
the documented exit code: 0 completed, 1 training failed, 2 bad input, 130/143 interrupted).
"""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import yaml

import sciml_jax as sj
from sciml_jax import cli, config, plotting
from sciml_jax.train import _checkpoint, _faults

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TINY = {
    "name": "tiny",
    "dtype": "float64",
    "problem": {"name": "poisson_1d", "k": 1},
    "model": {"width": 8, "depth": 2},
    "sampling": {"method": "sobol", "points": {"interior": 16, "boundary": 2}},
    "optimizer": {"name": "adam", "learning_rate": 1e-2},
    "train": {"steps": 20, "eval_every": 10, "checkpoint_every": 10},
}


def _write_cfg(tmp_path, data=None, name="tiny.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data or TINY))
    return str(path)


def _setup():
    prob = sj.problems.get("poisson_1d", k=1)
    params, apply = sj.nn.functional(sj.nn.MLP(1, 1, 8, 2, key=jax.random.PRNGKey(0)))
    batch = sj.sampling.sample(prob.domain, {"interior": 16, "boundary": 2}, "sobol", 0)
    return params, batch, sj.pinn.residual(prob, apply)


def _same(a, b):
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    return len(la) == len(lb) and all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(la, lb))


def _err_lines(capsys):
    return [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]


# ------------------------------------------------------------------------------------------- 1. checkpoints


def test_crash_during_checkpoint_write_keeps_the_previous_one(tmp_path, monkeypatch):
    params, batch, res = _setup()
    opt = optax.adam(1e-2)
    straight = sj.train.fit(res, params, batch, opt, 30, eval_every=10, progress=False)
    sj.train.fit(res, params, batch, opt, 10, eval_every=10, progress=False, checkpoint_dir=tmp_path)
    before = sj.train.read_checkpoint_meta(tmp_path)
    real = _checkpoint._write_bytes
    for crash_at in (0, 1):  # a kill while writing the arrays, then one while writing the record
        calls = []

        def dying_writer(path, data, calls=calls, crash_at=crash_at):  # half a temporary file, then the process is gone
            calls.append(path)
            if len(calls) - 1 == crash_at:
                with open(f"{path}.{os.getpid()}.tmp", "wb") as f:
                    f.write(data[: len(data) // 2])
                raise KeyboardInterrupt
            real(path, data)

        monkeypatch.setattr(_checkpoint, "_write_bytes", dying_writer)
        with pytest.raises(KeyboardInterrupt):  # it lands in fit's own save on the way out: it propagates
            sj.train.fit(res, params, batch, opt, 20, eval_every=10, progress=False, checkpoint_dir=tmp_path,
                         resume=True)
        monkeypatch.setattr(_checkpoint, "_write_bytes", real)
        assert [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]  # the dead writer's half file
        after = sj.train.read_checkpoint_meta(tmp_path)  # verified: size and hash match
        assert after["step"] == before["step"] == 10 and after["arrays"] == before["arrays"]
    resumed = sj.train.fit(res, params, batch, opt, 30, eval_every=10, progress=False, checkpoint_dir=tmp_path,
                           resume=True)
    assert _same(resumed.params, straight.params) and resumed.history.loss == straight.history.loss
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]  # the next save cleared the dead writer's
    assert len([p for p in os.listdir(tmp_path) if p.endswith(".eqx")]) == 1  # and the orphaned array file


def _saved(tmp_path):
    params, batch, res = _setup()
    opt = optax.adam(1e-2)
    sj.train.fit(res, params, batch, opt, 10, eval_every=10, progress=False, checkpoint_dir=tmp_path)
    return params, batch, res, opt


def _one_line_refusal(tmp_path, match):
    params, batch, res = _setup()
    with pytest.raises(sj.train.CheckpointError, match=match) as info:
        sj.train.fit(res, params, batch, optax.adam(1e-2), 20, eval_every=10, progress=False,
                     checkpoint_dir=tmp_path, resume=True)
    assert "\n" not in str(info.value)


def test_torn_damaged_or_mismatched_checkpoints_are_refused(tmp_path):
    _saved(tmp_path)
    meta = json.loads((tmp_path / "checkpoint.json").read_text())
    arrays = tmp_path / meta["arrays"]["file"]
    good = arrays.read_bytes()
    arrays.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))  # one flipped bit
    _one_line_refusal(tmp_path, r"torn or damaged: .* does not match its record \(step 10")
    arrays.write_bytes(good[: len(good) // 2])  # truncated
    _one_line_refusal(tmp_path, r"torn or damaged")
    arrays.unlink()  # the record names a file that is gone
    _one_line_refusal(tmp_path, r"torn: its record \(step 10\) names .* which is missing")
    arrays.write_bytes(good)
    (tmp_path / "checkpoint.json").write_text(json.dumps({**meta, "step": 110}))  # metadata and arrays disagree
    _one_line_refusal(tmp_path, r"record's step 110 does not match its history")
    (tmp_path / "checkpoint.json").write_text(json.dumps(meta)[:-20])  # a damaged record
    _one_line_refusal(tmp_path, r"checkpoint.json is damaged")


def test_load_checks_structure_shape_and_dtype(tmp_path):
    tree = {"w": jnp.ones((3,), jnp.float64), "b": jnp.zeros((), jnp.float64)}
    sj.train.save_checkpoint(tmp_path, tree, 0, sj.train.History())
    out, meta, batch = sj.train.load_checkpoint(tmp_path, tree)
    assert _same(out, tree) and meta["step"] == 0 and batch is None
    assert out["w"].dtype == jnp.float64
    cases = [
        ({"w": jnp.ones((3,), jnp.float32), "b": jnp.zeros((), jnp.float64)},
         r"\['w'\] was saved as float64, this run expects float32 .*refusing to convert"),
        ({"w": jnp.ones((4,), jnp.float64), "b": jnp.zeros((), jnp.float64)}, r"\['w'\] \(3,\) does not match"),
        ({"w": jnp.ones((3,), jnp.float64)}, r"has 2 leaves, this run expects 1"),
        ({"w": jnp.ones((3,)), "b": jnp.zeros(()), "c": jnp.zeros(())}, r"has 2 leaves, this run expects 3"),
    ]
    for like, match in cases:
        with pytest.raises(sj.train.CheckpointError, match=match):
            sj.train.load_checkpoint(tmp_path, like)


def test_failed_run_checkpoint_cannot_be_continued(tmp_path):
    theta = jnp.asarray([1.0])  # r(θ) = θ; steps of 1e100: θ = -1e100, then 1e200, whose loss overflows
    out = sj.train.fit(lambda p, b: p, theta, {}, optax.sgd(1e100), 20, eval_every=10, progress=False,
                       checkpoint_dir=tmp_path)
    assert out.status == "nonfinite"
    with pytest.raises(sj.train.CheckpointError, match=r"ended on a non-finite loss at step 2; it cannot be continued"):
        sj.train.fit(lambda p, b: p, theta, {}, optax.sgd(1e100), 20, eval_every=10, progress=False,
                     checkpoint_dir=tmp_path, resume=True)


# ------------------------------------------------------------------------------------------- 3. interrupts (fit)


def test_interrupt_in_fit_rolls_back_saves_and_resumes_bit_identically(tmp_path, monkeypatch):
    params, batch, res = _setup()
    opt = optax.adam(1e-2)
    straight = sj.train.fit(res, params, batch, opt, 40, eval_every=10, progress=False)

    def ctrl_c(step, **_):  # Ctrl-C while the chunk ending at step 30 is being booked: back to step 20
        if step == 30:
            raise KeyboardInterrupt

    out = sj.train.fit(res, params, batch, opt, 40, eval_every=10, progress=False, checkpoint_dir=tmp_path,
                       callbacks=[ctrl_c])
    assert out.status == "interrupted" and out.step == 20
    assert out.message == "interrupted by SIGINT at step 20 (the last completed chunk)"
    assert len(out.history.loss) == 20 and out.history.eval_steps[-1] == 20
    meta = sj.train.read_checkpoint_meta(tmp_path)
    assert meta["step"] == 20 and meta["status"] == "interrupted"
    # a SIGTERM (train.Interrupted) that lands inside the periodic checkpoint write at step 30
    real, fired = _checkpoint._write_bytes, []

    def term_in_write(path, data):
        if "000000030" in os.path.basename(path) and not fired:
            fired.append(path)
            raise sj.train.Interrupted(signal.SIGTERM)
        real(path, data)

    monkeypatch.setattr(_checkpoint, "_write_bytes", term_in_write)
    out = sj.train.fit(res, params, batch, opt, 40, eval_every=10, checkpoint_every=10, progress=False,
                       checkpoint_dir=tmp_path, resume=True)
    monkeypatch.setattr(_checkpoint, "_write_bytes", real)
    assert fired and out.status == "interrupted" and out.step == 30 and "SIGTERM" in out.message  # chunk complete
    assert sj.train.read_checkpoint_meta(tmp_path)["step"] == 30
    resumed = sj.train.fit(res, params, batch, opt, 40, eval_every=10, progress=False, checkpoint_dir=tmp_path,
                           resume=True)
    assert resumed.status == "completed" and resumed.step == 40
    assert _same(resumed.params, straight.params) and resumed.history.loss == straight.history.loss
    assert resumed.history.eval_steps == straight.history.eval_steps
    again = sj.train.fit(res, params, batch, opt, 30, eval_every=10, progress=False, checkpoint_dir=tmp_path,
                         resume=True)  # fewer steps than done: nothing runs, and the message says so
    assert again.step == 40 and again.status == "completed" and len(again.history.loss) == 40
    assert again.message == ("no steps run: the checkpoint is already at step 40 (steps = 30); its status was "
                             "'completed'")


# ------------------------------------------------------------------------------------------- 6. divergence


def test_finite_blow_up_ends_as_diverged():
    # r(θ) = θ, L = ½θ², plain gradient steps of size 3: θ <- -2θ, the loss grows 4x per step and stays finite
    theta = jnp.asarray([1.0])
    out = sj.train.fit(lambda p, b: p, theta, {}, optax.sgd(3.0), 40, eval_every=5, progress=False)
    assert out.status == "diverged" and out.step == 15  # chunk [10, 15): its smallest loss 4^10/2 > 1e4 x 1/2
    assert np.all(np.isfinite(out.history.loss))
    assert "stayed above 10000 x its best 5.000e-01 (step 0) for steps 10-14" in out.message
    off = sj.train.fit(lambda p, b: p, theta, {}, optax.sgd(3.0), 40, eval_every=5, progress=False,
                       divergence_factor=None)
    assert off.status == "completed"
    with pytest.raises(ValueError, match="divergence_factor: expected a finite number > 1 or None"):
        sj.train.fit(lambda p, b: p, theta, {}, optax.sgd(3.0), 4, divergence_factor=0.5)


def test_run_ending_far_above_its_best_is_diverged():
    # θ halves for 18 steps, then one step of size 1e4 throws it out: the last chunk's minimum is fine, the end is not
    lr = optax.piecewise_constant_schedule(0.5, {18: 2e4})
    out = sj.train.fit(lambda p, b: p, jnp.asarray([1.0]), {}, optax.sgd(lr), 20, eval_every=10, progress=False)
    assert out.status == "diverged" and out.step == 20
    assert out.message.startswith("diverged: the final loss") and "(step 19) is above 10000 x its best" in out.message


def test_divergence_test_ignores_spikes_within_a_chunk():
    spike = np.array([1e-9, 1.0, 1e-9])  # 1e9 x the best for one step, then back
    assert _faults.divergence(spike, 10, 1e-9, 3, 1e4)[2] is None
    best, step, msg = _faults.divergence(np.array([1.0, 2.0]), 10, 1e-9, 3, 1e4)
    assert msg is not None and (best, step) == (1e-9, 3)
    assert _faults.divergence(np.array([0.5]), 10, 1.0, 0, 1e4)[:2] == (0.5, 10)


# ------------------------------------------------------------------------------------------- 6. plots


def test_plots_survive_non_finite_and_huge_values(tmp_path):
    h = sj.train.History(term_names=("pde",), metric_names=("rel_l2",))
    values = np.array([1.0, 1e300, np.inf, np.nan, 0.0, -1.0, 1e-320])
    h.add_steps(0, values, {"pde": values[::-1]}, values)
    h.add_eval(7, 1.0, {"rel_l2": np.inf})
    h.add_eval(7, 2.0, {"rel_l2": 1e250})
    assert os.path.exists(plotting.plot_history(h, tmp_path / "h.png"))
    assert os.path.exists(plotting.plot_comparison({"a": h, "b": h}, tmp_path / "c.png"))
    empty = sj.train.History(metric_names=("rel_l2",))
    empty.add_steps(0, np.array([np.nan]), {}, np.array([np.nan]))
    assert os.path.exists(plotting.plot_history(empty, tmp_path / "e.png"))
    prob = sj.problems.get("helmholtz_2d")
    params, apply = sj.nn.functional(sj.nn.MLP(2, 1, 4, 1, key=jax.random.PRNGKey(0)))
    huge = jax.tree.map(lambda a: a * 1e150, params)
    for p in (huge, jax.tree.map(lambda a: a * jnp.nan, params)):
        assert os.path.exists(plotting.plot_solution(prob, apply, p, tmp_path / "s.png"))


# ------------------------------------------------------------------------------------------- 7. from_nnx


def test_from_nnx_params_follow_x64():
    nnx = pytest.importorskip("flax.nnx")
    params, apply = sj.nn.from_nnx(nnx.Linear(2, 1, rngs=nnx.Rngs(0)))  # flax builds float32 parameters
    assert {a.dtype for a in jax.tree.leaves(params)} == {jnp.dtype(jnp.result_type(float))} == {jnp.dtype("float64")}
    assert apply(params, jnp.ones(2)).dtype == jnp.float64


# ------------------------------------------------------------------------------------------- 5. validation


@pytest.mark.parametrize(
    "sets, match",
    [
        (["loss.weights.bc=.nan"], r"loss\.weights\.bc: expected a finite number, got nan$"),
        (["loss.weights.bc=.inf"], r"loss\.weights\.bc: expected a finite number, got inf$"),
        (["model.fourier_features=4", "model.fourier_sigma=-1"], r"model\.fourier_sigma: expected a number > 0"),
        (["optimizer={name: hybrid, first: {name: adam, learning_rate: .nan}}"],
         r"optimizer\.first\.learning_rate: expected a finite number, got nan"),
        (["optimizer.b1=2"], r"optimizer\.b1: expected a finite number in \[0, 1\), got 2$"),
        (["optimizer.b2=1"], r"optimizer\.b2: expected a finite number in \[0, 1\)"),
        (["optimizer.eps=-1"], r"optimizer\.eps: expected a finite number > 0, got -1$"),
        (["optimizer.learning_rate=0"], r"learning rate must be a finite number > 0"),
        (["optimizer={name: lbfgs, max_learning_rate: -1}"], r"optimizer\.max_learning_rate: expected a number > 0"),
        ([("optimizer.learning_rate={name: warmup_cosine_decay, init_value: 0, peak_value: -1e-3, "
           "warmup_steps: 10, decay_steps: 100}")], r"optimizer\.learning_rate: schedule\.peak_value: expected a finite number > 0"),
        (["optimizer.learning_rate={name: exponential_decay, init_value: 1e-3, transition_steps: 10, decay_rate: 2}"],
         r"optimizer\.learning_rate: schedule\.decay_rate: expected a finite number in \(0, 1\]"),
        (["optimizer={name: sgd, learning_rate: 1e-3, momentum: 1.5}"], r"optimizer\.momentum: expected"),
        (["train.divergence_factor=1"], r"train\.divergence_factor: expected a number > 1 or null"),
        (["problem.k=.nan"], r"problem\.k: expected a finite number, got nan"),
        (["optimizer={name: adam, b1: 0.9, b1: 0.8}"], r"duplicate key 'b1' at line 1"),
    ],
)
def test_config_gaps_are_one_line_exit_2(tmp_path, capsys, sets, match):
    args = ["run", _write_cfg(tmp_path), "--out", str(tmp_path / "out")]
    for s in sets:
        args += ["--set", s]
    assert cli.main(args) == 2
    (line,) = _err_lines(capsys)
    assert line.startswith("sciml-jax: config error: ")
    import re

    assert re.search(match, line), line
    assert not (tmp_path / "out").exists()


def test_set_reads_values_like_a_file(tmp_path):
    cfg = config.load(_write_cfg(tmp_path), ["optimizer={name: adam, learning_rate: 1e-3}"])
    assert cfg.optimizer.options == {"learning_rate": 1e-3}
    path = tmp_path / "f.yaml"
    path.write_text(yaml.safe_dump(TINY).replace("0.01", "1e-2"))
    assert config.load(str(path)).optimizer.options["learning_rate"] == 1e-2  # YAML 1.2 float in a file
    with pytest.raises(config.ConfigError, match=r"train\.steps: expected an integer, got 10\.0"):
        config.load(str(path), ["train.steps=1e1"])  # a number, as in a file, and then the type check


def test_bad_files_are_one_line(tmp_path):
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(config.ConfigError, match=r"is not UTF-8 text \(byte 0xe9 at offset 9\)"):
        config.load(str(bad))
    dup = tmp_path / "dup.yaml"
    dup.write_text(yaml.safe_dump(TINY) + "seed: 1\nseed: 2\n")
    with pytest.raises(config.ConfigError, match=r"duplicate key 'seed' at line \d+"):
        config.load(str(dup))
    anchors = tmp_path / "anchors.yaml"  # a merge key overridden by an explicit key is not a duplicate
    anchors.write_text("base: &b {width: 8, depth: 2}\nname: a\nproblem: {name: poisson_1d}\n"
                       "model: {<<: *b, depth: 3}\n")
    with pytest.raises(config.ConfigError, match=r"^base: unknown key"):
        config.load(str(anchors))


# ------------------------------------------------------------------------------------------- 4. output folder


def test_out_that_is_a_file_or_unusable_is_exit_2(tmp_path, capsys):
    cfg = _write_cfg(tmp_path)
    f = tmp_path / "afile"
    f.write_text("x")
    assert cli.main(["run", cfg, "--out", str(f)]) == 2
    assert _err_lines(capsys) == [f"sciml-jax: --out {str(f)!r} exists and is not a directory"]
    assert cli.main(["run", cfg, "--out", str(f / "sub")]) == 2
    assert _err_lines(capsys) == [f"sciml-jax: --out {str(f / 'sub')!r}: cannot create the directory (Not a directory)"]
    assert cli.main(["run", cfg, "--resume", "--overwrite", "--out", str(tmp_path / "o")]) == 2
    assert "exclude each other" in _err_lines(capsys)[0]


def test_locked_folder_is_refused_with_the_holder(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    holder = cli._FolderLock(str(out))  # another open file description: flock conflicts as with another process
    assert holder.acquire() is None
    try:
        assert cli.main(["run", _write_cfg(tmp_path), "--out", str(out)]) == 2
        (line,) = _err_lines(capsys)
        assert f"is in use by another run (pid {os.getpid()} on " in line
    finally:
        holder.release()
    assert not (out / cli.LOCK_NAME).exists() and os.listdir(out) == []


def test_library_resume_of_another_config_is_refused(tmp_path):
    from sciml_jax import experiments

    cfg = config.load(_write_cfg(tmp_path))
    other = config.load(_write_cfg(tmp_path), ["model.width=16"])
    sj.train.save_checkpoint(tmp_path / "run", {"x": jnp.zeros(1)}, 0, sj.train.History(),
                             {"config": config.to_dict(other)})
    with pytest.raises(sj.train.CheckpointError, match=r"belongs to another config \(differs in model\.width \(16 -> 8\)\)"):
        experiments.run(cfg, str(tmp_path / "run"), resume=True)


# ------------------------------------------------------------------------------------------- CLI scenarios


def test_cli_resume_guard(tmp_path, capsys):
    """Run, then: unsafe changes refused (nothing written), nothing-to-train refused, safe change continues."""
    cfg, out = _write_cfg(tmp_path), tmp_path / "run"
    assert cli.main(["run", cfg, "--out", str(out), "--no-progress"]) == 0
    capsys.readouterr()
    first = json.loads((out / "metrics.json").read_text())
    snapshot = {p: (out / p).read_bytes() for p in os.listdir(out)}

    def refused(sets, *expect):
        args = ["run", cfg, "--out", str(out), "--no-progress", "--resume"]
        for s in sets:
            args += ["--set", s]
        assert cli.main(args) == 2
        (line,) = _err_lines(capsys)
        for e in expect:
            assert e in line, line
        assert {p: (out / p).read_bytes() for p in os.listdir(out)} == snapshot  # config.yaml, checkpoint untouched
        return line

    refused(["problem.k=6", "train.steps=40"], "the config differs from the checkpoint's in problem.k (1 -> 6)")
    refused(["model.width=16"], "model.width (8 -> 16)")
    refused(["dtype=float32", "seed=3"], "dtype ('float64' -> 'float32'); seed (0 -> 3)")
    refused(["optimizer.learning_rate=0.1", "sampling.points.interior=32"], "optimizer.learning_rate (0.01 -> 0.1)",
            "sampling.points.interior (16 -> 32)")
    refused([], "is already at step 20 and train.steps is 20: nothing to train (raise it, e.g. "
            "--set train.steps=40, to continue)")
    # without --resume an existing run folder is refused
    assert cli.main(["run", cfg, "--out", str(out), "--no-progress"]) == 2
    (line,) = _err_lines(capsys)
    assert "already holds a run (a checkpoint at step 20, status 'completed'" in line and "--overwrite" in line
    # safe: more steps, other cadences
    assert cli.main(["run", cfg, "--out", str(out), "--no-progress", "--resume", "--set", "train.steps=30",
                     "--set", "train.eval_every=5", "--set", "train.checkpoint_every=5"]) == 0
    second = json.loads((out / "metrics.json").read_text())
    assert second["steps"] == 30 and second["status"] == "completed"
    assert second["compile_time_s"] > first["compile_time_s"]  # both calls' compile time, like the wall time
    assert second["wall_time_s"] >= first["wall_time_s"]
    assert yaml.safe_load((out / "config.yaml").read_text())["train"]["steps"] == 30


def test_cli_sigterm_saves_reports_and_exits_143(tmp_path, capsys, monkeypatch):
    """A real SIGTERM to this process mid-run (sent by a fit callback); a stale lock in the folder is taken over."""
    from sciml_jax.experiments import _train

    class Killer:
        snapshots = ()

        def __call__(self, step, **_):
            if step == 20:
                os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(_train, "make_resampler", lambda setup: Killer())
    out = tmp_path / "run"
    out.mkdir()
    (out / cli.LOCK_NAME).write_text(json.dumps({"pid": 2**22 + 7, "host": "gone"}))  # left by a killed run
    data = {**TINY, "train": {"steps": 40, "eval_every": 10, "checkpoint_every": 10}}
    cfg = _write_cfg(tmp_path, data)
    assert cli.main(["run", cfg, "--out", str(out), "--no-progress"]) == 143
    err = _err_lines(capsys)
    assert err[0] == f"sciml-jax: taking over the lock left in {str(out)!r} by pid {2**22 + 7} on gone (no longer running)"
    assert err[-1].startswith("sciml-jax: interrupted by SIGTERM at step 10 (the last completed chunk); checkpoint "
                              "saved; resume with: sciml-jax run ")
    assert err[-1].endswith(f"--out {out} --resume --no-progress")
    m = json.loads((out / "metrics.json").read_text())
    assert m["status"] == "interrupted" and m["steps"] == 10
    assert "interrupted" in (out / "report.md").read_text()
    assert sj.train.read_checkpoint_meta(out)["step"] == 10
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # handlers restored
    assert not (out / cli.LOCK_NAME).exists()


def test_cli_diverged_run_still_reports_exit_1(tmp_path, capsys):
    """The issue's case in 1-D: SGD with learning rate 10 overflows; reports and plots are still written."""
    data = {**TINY, "optimizer": {"name": "sgd", "learning_rate": 10}, "train": {"steps": 60, "eval_every": 20}}
    out = tmp_path / "run"
    assert cli.main(["run", _write_cfg(tmp_path, data), "--out", str(out), "--no-progress"]) == 1
    m = json.loads((out / "metrics.json").read_text())  # strict JSON: non-finite values are null
    assert m["status"] in ("nonfinite", "diverged")
    for name in ("report.md", "loss.png", "solution.png", "history.csv"):
        assert (out / name).exists(), name
    assert "figures_not_drawn" not in m


# ------------------------------------------------------------------------------------------- slow: real processes


def _cli(*args, **kw):
    env = {**os.environ, "PYTHONPATH": REPO, "MPLBACKEND": "Agg"}
    return subprocess.Popen([sys.executable, "-m", "sciml_jax.cli", "run", *args], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _wait_for(path, timeout=120):
    t = time.time()
    while not os.path.exists(path):
        if time.time() - t > timeout:
            raise TimeoutError(path)
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_two_processes_on_one_folder_and_a_signal(tmp_path, sig):
    """Two real `sciml-jax run` processes on one --out: the second is refused; the first, signalled, saves."""
    data = {**TINY, "train": {"steps": 10**6, "eval_every": 50, "checkpoint_every": 50}}
    cfg, out = _write_cfg(tmp_path, data), tmp_path / "run"
    first = _cli(cfg, "--out", str(out), "--no-progress")
    try:
        _wait_for(out / "checkpoint.json")
        second = _cli(cfg, "--out", str(out), "--no-progress")
        _, err = second.communicate(timeout=120)
        assert second.returncode == 2
        assert err.strip() == (f"sciml-jax: {str(out)!r} is in use by another run (pid {first.pid} on "
                               f"{os.uname().nodename}, started " + err.split("started ")[1].strip())
        first.send_signal(sig)
        _, err = first.communicate(timeout=120)
    finally:
        first.kill()
    assert first.returncode == 128 + sig
    assert f"interrupted by {signal.Signals(sig).name} at step" in err and "--resume" in err.splitlines()[-1]
    m = json.loads((out / "metrics.json").read_text())
    assert m["status"] == "interrupted" and m["steps"] % 50 == 0 and m["steps"] > 0
    assert sj.train.read_checkpoint_meta(out)["step"] == m["steps"]


@pytest.mark.slow
def test_overwrite_and_compare_resume(tmp_path, capsys):
    cfg = _write_cfg(tmp_path, {**TINY, "compare": {"a": {}, "b": {"optimizer": {"name": "sgd", "learning_rate": 0.01}}}})
    out = tmp_path / "cmp"
    assert cli.main(["run", cfg, "--out", str(out), "--no-progress"]) == 0
    assert cli.main(["run", cfg, "--out", str(out), "--no-progress", "--resume", "--set", "train.steps=30"]) == 0
    for name in ("a", "b"):
        assert json.loads((out / name / "metrics.json").read_text())["steps"] == 30
    capsys.readouterr()
    assert cli.main(["run", cfg, "--out", str(out), "--no-progress", "--overwrite"]) == 0
    assert "--overwrite: removed the earlier run's checkpoint and reports" in capsys.readouterr().err
    for name in ("a", "b"):
        assert sj.train.read_checkpoint_meta(out / name)["step"] == 20
