"""Config validation (one clear line, exit 2, before any compile) and the CLI end to end."""

import json
import os

import numpy as np
import pytest
import yaml

from sciml_jax import cli, config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUICKSTART = os.path.join(REPO, "configs", "quickstart.yaml")


def _write(tmp_path, data, name="c.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return str(path)


def _base():
    """A small Adam config (the error-message cases below name Adam's options)."""
    return {
        "name": "base",
        "dtype": "float64",
        "problem": {"name": "poisson_1d", "k": 2},
        "model": {"width": 8, "depth": 2, "activation": "tanh"},
        "sampling": {"method": "sobol", "points": {"interior": 32, "boundary": 2}},
        "loss": {"weights": {"bc": 10.0}},
        "optimizer": {"name": "adam", "learning_rate": 1e-3},
        "train": {"steps": 100, "eval_every": 50},
    }


def test_every_shipped_config_validates():
    import glob

    paths = sorted(glob.glob(os.path.join(REPO, "configs", "**", "*.yaml"), recursive=True))
    assert len(paths) > 10 and any(os.sep + "own" + os.sep in p for p in paths)
    for path in paths:
        cfg = config.load(path)
        assert cfg.runs()


@pytest.mark.parametrize("name", ["allen_cahn", "burgers_inverse", "helmholtz_mixed", "kovasznay", "lshape_poisson"])
def test_own_problem_configs_build_and_pass_the_shape_check(name):
    """Each worked own-problem config builds (problem, model, points, observations, residual) and its residual's
    shape check passes: a config whose term lacks its points (allen_cahn did) fails here, not after a long run."""
    from sciml_jax.experiments._train import build

    cfg = config.load(os.path.join(REPO, "configs", "own", f"{name}.yaml"))
    for run_cfg in cfg.runs().values():
        setup = build(run_cfg)
        setup.residual.check(setup.params, setup.batch)


def test_quickstart_values():
    cfg = config.load(QUICKSTART)
    assert cfg.problem.name == "poisson_1d" and cfg.problem.options == {"k": 2}
    assert cfg.dtype == "float64" and cfg.optimizer.name == "hybrid"
    assert isinstance(cfg.optimizer.options["first"]["learning_rate"], float)  # "3.0e-3" read as a number
    hybrid = config.load(os.path.join(REPO, "configs", "poisson1d_hybrid.yaml"))
    assert set(hybrid.runs()) == {"adam", "lbfgs", "hybrid"}
    assert hybrid.runs()["lbfgs"].optimizer.options == {"memory_size": 50}


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda d: d.update(bogus=1), r"^bogus: unknown key; allowed: name, problem, model"),
        (lambda d: d["model"].update(widht=3), r"^model\.widht: unknown key; allowed: width, depth"),
        (lambda d: d["model"].update(width="wide"), r"^model\.width: expected an integer, got 'wide'"),
        (lambda d: d["model"].update(width=0), r"^model\.width: expected a positive integer"),
        (lambda d: d["model"].update(activation="cube"), r"^model\.activation: 'cube' is not allowed; allowed: tanh"),
        (lambda d: d.update(dtype="float16"), r"^dtype: 'float16' is not allowed; allowed: float32, float64"),
        (lambda d: d["sampling"].update(method="grid"), r"^sampling\.method: 'grid' is not allowed"),
        (lambda d: d["problem"].update(name="navier"), r"^problem: .*navier.*poisson_1d"),
        (lambda d: d["problem"].update(kk=3), r"^problem\.kk: unknown option for .poisson_1d.; allowed: k=1"),
        (lambda d: d["optimizer"].update(name="adamax"), r"^optimizer: unknown name 'adamax'; allowed: .*adam"),
        (lambda d: d["optimizer"].update(lr=1e-3), r"^optimizer\.lr: unknown option for 'adam'; allowed: learning_rate"),
        (lambda d: d["sampling"]["points"].update(edge=4), r"^sampling\.points\.edge: unknown point set"),
        (lambda d: d["loss"]["weights"].update(pdee=1.0), r"^loss\.weights\.pdee: unknown term; allowed"),
        (lambda d: d["train"].update(steps=1.5), r"^train\.steps: expected an integer, got 1\.5"),
        (lambda d: d.update(compare={"a": {"model": {"depth": "x"}}}), r"^compare\.a\.model\.depth: expected an integer"),
    ],
)
def test_config_errors_name_the_key_and_allowed_values(tmp_path, mutate, match):
    data = _base()
    mutate(data)
    with pytest.raises(config.ConfigError, match=match):
        config.load(_write(tmp_path, data))


def test_set_overrides_and_compare_merging(tmp_path):
    data = _base()
    data["compare"] = {"small": {"model": {"width": 8}}, "sgd": {"optimizer": {"name": "sgd", "learning_rate": 0.1}}}
    cfg = config.load(_write(tmp_path, data), ["train.steps=7", "model.depth=2", "optimizer.b1=0.8"])
    assert cfg.train.steps == 7 and cfg.model.depth == 2
    runs = cfg.runs()
    assert runs["small"].model.width == 8 and runs["small"].model.depth == 2
    assert runs["small"].optimizer.options["b1"] == 0.8
    # a different optimizer name starts its options afresh instead of inheriting Adam's
    assert runs["sgd"].optimizer.options == {"learning_rate": 0.1}
    with pytest.raises(config.ConfigError, match="expected key=value"):
        config.load(_write(tmp_path, data), ["train.steps"])


def test_cli_config_error_is_one_line_exit_2(tmp_path, capsys):
    data = _base()
    data["optimizer"]["name"] = "adamax"
    code = cli.main(["run", _write(tmp_path, data), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and "optimizer: unknown name 'adamax'" in err[0]
    assert not (tmp_path / "out").exists()  # nothing ran
    assert cli.main(["run", str(tmp_path / "missing.yaml")]) == 2


@pytest.mark.slow
def test_cli_run_writes_report_and_resume_continues(tmp_path, capsys):
    base = _base()
    base["train"].update(steps=40, eval_every=20, checkpoint_every=20)
    cfg = _write(tmp_path, base)
    out = tmp_path / "run"
    assert cli.main(["run", cfg, "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "rel L2" in printed and "report:" in printed
    for name in ("metrics.json", "history.csv", "report.md", "loss.png", "solution.png", "checkpoint.json",
                 "config.yaml"):
        assert (out / name).exists(), name
    m = json.loads((out / "metrics.json").read_text())
    for key in ("rel_l2", "final_loss", "steps", "wall_time_s", "dtype"):
        assert key in m
    assert m["steps"] == 40 and m["dtype"] == "float64" and 0 < m["rel_l2"] < 10
    rows = (out / "history.csv").read_text().strip().splitlines()
    assert rows[0].startswith("step,loss,grad_norm") and len(rows) == 1 + 41  # steps 0..39 + the eval at 40

    # resume to 80 steps == a straight 80-step run
    assert cli.main(["run", cfg, "--out", str(out), "--resume", "--no-progress", "--set", "train.steps=80"]) == 0
    straight = tmp_path / "straight"
    assert cli.main(["run", cfg, "--out", str(straight), "--no-progress", "--set", "train.steps=80"]) == 0
    a = json.loads((out / "metrics.json").read_text())
    b = json.loads((straight / "metrics.json").read_text())
    assert a["steps"] == b["steps"] == 80
    assert a["final_loss"] == b["final_loss"] and a["rel_l2"] == b["rel_l2"]  # bit-identical continuation
    ha = np.genfromtxt(out / "history.csv", delimiter=",", skip_header=1)[:, 1]
    hb = np.genfromtxt(straight / "history.csv", delimiter=",", skip_header=1)[:, 1]
    np.testing.assert_array_equal(ha, hb)
    # --resume without a checkpoint is a usage error
    assert cli.main(["run", cfg, "--out", str(tmp_path / "none"), "--resume"]) == 2


def test_cli_list(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert "quickstart.yaml" in out and "poisson_1d" in out and "adam" in out
