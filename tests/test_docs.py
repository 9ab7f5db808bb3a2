"""The Python blocks of docs/OWN_PROBLEM.md run as written, top to bottom, in one namespace (docs cannot rot)."""

import os
import re

DOC = os.path.join(os.path.dirname(__file__), "..", "docs", "OWN_PROBLEM.md")


def test_own_problem_guide_runs(capsys):
    text = open(DOC, encoding="utf-8").read()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 5
    namespace: dict = {}
    for i, block in enumerate(blocks):
        exec(compile(block, f"OWN_PROBLEM.md block {i}", "exec"), namespace)  # noqa: S102 - our own documentation
    out = capsys.readouterr().out
    # what the guide's comments promise
    assert "True 0.0" in out
    a = namespace["found"].history.metrics["a"][-1]
    assert abs(a - 2.0) < 1e-2, a
    assert list(namespace["reduced"].terms) == ["pde"]
