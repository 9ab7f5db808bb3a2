"""Shipped experiment configs, run small: reports exist and say what happened."""

import json
import os

import pytest

from sciml_jax import cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow  # ~12 s CPU; the guard's rollbacks are covered by default in test_optim and test_ablation
def test_divergence_guard_config_recovers_and_reports(tmp_path, capsys):
    out = tmp_path / "guard"
    code = cli.main(["run", os.path.join(REPO, "configs", "hybrid_guard.yaml"), "--out", str(out), "--no-progress",
                     "--set", "train.steps=800", "--set", "model.width=16"])
    assert code == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["status"] == "completed" and m["final_loss"] is not None  # finite: JSON null would mean non-finite
    kinds = [e["kind"] for e in m["events"]]
    # 3 switches (the first and two retries), 3 rollbacks, the last one final
    assert kinds.count("switch") == 3 and kinds.count("fallback") == 3
    fallbacks = [e for e in m["events"] if e["kind"] == "fallback"]
    assert fallbacks[-1]["final"] and not any(e["final"] for e in fallbacks[:-1])
    switch_steps = [e["step"] for e in m["events"] if e["kind"] == "switch"]
    assert switch_steps[0] == 20 and switch_steps[1] >= 20 + 300  # the criterion waits fallback_steps after a rollback
    report = (out / "report.md").read_text()
    assert "divergence guard rolled back" in report and "retries exhausted" in report
    # the loss at the end is below the loss at the first switch: the run recovered and kept training with Adam
    h = (out / "history.csv").read_text().strip().splitlines()
    header = h[0].split(",")
    loss = [float(r.split(",")[header.index("loss")]) for r in h[1:] if r.split(",")[header.index("loss")]]
    assert loss[-1] < loss[20]


def test_bad_experiment_option_exits_2_with_one_line(tmp_path, capsys):
    """Experiment options are checked by the config layer: exit 2 and one line naming the key, nothing compiled."""
    out = tmp_path / "never"
    code = cli.main(["run", os.path.join(REPO, "configs", "switch_ablation.yaml"), "--out", str(out), "--no-progress",
                     "--set", "experiment_options.seeds=[1, 1]"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and not out.exists()
    assert err[0].startswith("sciml-jax: config error: experiment_options.seeds: expected a positive integer")
