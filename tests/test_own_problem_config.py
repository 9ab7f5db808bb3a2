"""A problem defined in the user's own file, with observations from a file, run from a config through the CLI."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from sciml_jax import cli

USER_FILE = textwrap.dedent(
    '''
    import math
    import jax.numpy as jnp
    import sciml_jax as sj
    from sciml_jax.problems import Problem, Term, Unknown, dirichlet

    def pde(u, x, c):
        return -c["a"] * sj.operators.laplacian(u)(x) - c["a"] * math.pi**2 * jnp.sin(math.pi * x[0])

    def data(u, x, y, c):
        return c["a"] * u(x) - y

    def exact(x):
        return jnp.sin(math.pi * x[0])

    def make(a_init=0.5, a_true=2.0):
        return Problem(
            "scaled_poisson", sj.geometry.Interval(0.0, 1.0),
            {"pde": Term("interior", pde), "bc": dirichlet(0.0), "data": Term("obs", data)},
            exact=exact, unknowns={"a": Unknown(a_init, transform="log", true=a_true)}, data=("obs",),
            default_points={"interior": 24, "boundary": 2},
        )
    '''
)


def _setup(tmp_path, extra=""):
    (tmp_path / "my_pde.py").write_text(USER_FILE)
    x = np.linspace(0.05, 0.95, 16)
    rows = "\n".join(f"{float(xi)!r},{float(2.0 * np.sin(np.pi * xi))!r}" for xi in x)
    (tmp_path / "obs.csv").write_text("x,u\n" + rows + "\n")
    cfg = tmp_path / "inverse.yaml"
    cfg.write_text(textwrap.dedent(
        """
        problem: {factory: my_pde.py:make, a_init: 0.5}
        model: {width: 10, depth: 1}
        data:
          obs: {file: obs.csv, inputs: [x], outputs: [u]}
        optimizer: {name: levenberg_marquardt}
        train: {steps: 60, eval_every: 20}
        """
    ) + extra)
    return cfg


@pytest.mark.slow
def test_user_factory_with_data_file_identifies_the_unknown(tmp_path, capsys):
    cfg = _setup(tmp_path)
    out = tmp_path / "run"
    code = cli.main(["run", str(cfg), "--out", str(out), "--no-progress"])
    assert code == 0, capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())
    a = metrics["unknowns"]["a"]
    assert a["true"] == 2.0 and a["rel_error"] < 1e-3, a
    assert metrics["observations"]["obs"].startswith("16 observations of u at (x)")
    report = (out / "report.md").read_text()
    assert "## Identified coefficients" in report and "| a | 5.000e-01 |" in report
    assert "median of last 5" in report
    # the saved config names the factory by absolute path: it runs from another directory too
    saved = (out / "config.yaml").read_text()
    assert os.path.join(str(tmp_path), "my_pde.py") in saved
    # and the trained model comes back in one call, with its unknown and its history
    import sciml_jax as sj

    run = sj.load_run(out)
    assert run.step == 60 and run.status == "completed"
    assert abs(float(run.unknowns["a"]) - a["final"]) < 1e-12
    x = np.linspace(0, 1, 5)[:, None]
    np.testing.assert_allclose(np.asarray(run.predict(x)), np.sin(np.pi * x[:, 0]), atol=1e-2)
    assert run.history.metrics["a"][-1] == a["final"]
    with pytest.raises(ValueError, match="holds no finished run"):
        sj.load_run(tmp_path)


@pytest.mark.parametrize(
    "change, message",
    [
        ("problem: {factory: my_pde.py:make, a_iinit: 1.0}\n", r"problem\.a_iinit: unknown option for .*allowed: a_init=0\.5, a_true=2\.0"),
        ("problem: {factory: my_pde.py:makee}\n", r"has no function 'makee'; it has .*make"),
        ("problem: {factory: nope.py:make}\n", r"problem\.factory: no file 'nope\.py'"),
        ("problem: {factory: my_pde.py:make, a_init: -1.0}\n", r"init must be > 0 with transform 'log'"),
    ],
)
def test_user_factory_errors_are_one_line_exit_2(tmp_path, capsys, change, message):
    cfg = _setup(tmp_path)
    text = cfg.read_text().replace("problem: {factory: my_pde.py:make, a_init: 0.5}\n", change)
    cfg.write_text(text)
    code = cli.main(["run", str(cfg), "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert __import__("re").search(message, err), err


def test_bad_observations_refused_before_training(tmp_path, capsys):
    cfg = _setup(tmp_path)
    (tmp_path / "obs.csv").write_text("x,u\n0.1,1.0\n0.2,nan\n0.3,inf\n")
    code = cli.main(["run", str(cfg), "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and "obs.csv" in err and "2 of 3 rows have non-finite values (column u: 2)" in err, err
    assert not (tmp_path / "r" / "metrics.json").exists()


@pytest.mark.slow
def test_list_shows_experiments_and_the_factory_syntax():
    out = subprocess.run([sys.executable, "-m", "sciml_jax.cli", "list"], capture_output=True, text=True, check=True)
    assert "experiments" in out.stdout and "train" in out.stdout and "factory:" in out.stdout
