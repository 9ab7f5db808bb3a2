"""The README quotes the main job from the run it describes (tools/readme_numbers.py renders the block)."""

import json
import runpy
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
KEPT = REPO / "docs" / "results" / "poisson1d_hybrid"


@pytest.fixture(scope="module")
def tool():
    return runpy.run_path(str(REPO / "tools" / "readme_numbers.py"))


def test_readme_main_job_block_is_rendered_from_the_kept_run(tool):
    metrics = json.loads((KEPT / "metrics.json").read_text())
    load = (KEPT / "load.txt").read_text().strip() if (KEPT / "load.txt").exists() else None
    readme = (REPO / "README.md").read_text()
    assert tool["current_block"](readme) == tool["render"](metrics, load)
    # the kept report is the same run: its table quotes the same final errors
    report = (KEPT / "report.md").read_text()
    for run in ("adam", "lbfgs", "hybrid"):
        assert f"{metrics[run]['errors']['rel_l2']['final']:.3e}" in report


def test_render_flags_a_final_value_on_a_spike_and_refuses_missing_runs(tool):
    err = {"final": 1e-3, "best": 1e-5, "best_step": 10, "median_last": 1e-4}
    run = {"errors": {"rel_l2": err}, "steps": 100, "rel_l2_at_common_time": 1e-3, "wall_time_s": 1.0,
           "compile_time_s": 1.0, "events": []}
    text = tool["render"]({"adam": run, "lbfgs": run, "hybrid": run})
    assert "100× its best (step 10)" in text
    with pytest.raises(ValueError, match="no run"):
        tool["render"]({"adam": run})
