"""Execute every notebook in ``notebooks/`` in small mode (SCIML_JAX_SMALL=1): a broken notebook fails the suite.

The kernel is this interpreter's ipykernel, started from an explicit kernel spec (``sys.executable -m
ipykernel_launcher``), so no ``jupyter kernelspec install`` is needed and a user-installed ``python3`` spec that
points at another Python cannot be picked up by mistake.
"""

import glob
import os
import sys

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

from jupyter_client.kernelspec import KernelSpec, KernelSpecManager  # noqa: E402
from jupyter_client.manager import KernelManager  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = sorted(glob.glob(os.path.join(REPO, "notebooks", "*.ipynb")))
CELL_TIMEOUT_S = 240  # the slowest small-mode cell takes well under a minute on 2 shared cores


class _ThisPython(KernelSpecManager):
    """Kernel specs that all run ipykernel in the interpreter running the tests."""

    def get_kernel_spec(self, kernel_name):
        return KernelSpec(
            argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            display_name=f"Python ({sys.executable})",
            language="python",
            resource_dir=os.path.dirname(sys.executable),
        )


def test_all_notebooks_present():
    names = [os.path.basename(p) for p in NOTEBOOKS]
    assert names == [
        "01_quickstart.ipynb",
        "02_custom_optax_chains.ipynb",
        "03_ntk_spectra.ipynb",
        "04_adaptive_sampling.ipynb",
        "05_inverse_problem.ipynb",
        "06_operator_learning.ipynb",
    ]


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[os.path.basename(p) for p in NOTEBOOKS])
def test_notebook_runs_in_small_mode(path, tmp_path, monkeypatch):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    # committed without outputs: execution happens here
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), "strip the outputs"
    first = code[0].source
    assert "google.colab" in first and "SCIML_JAX_SMALL" in first and "jax_enable_x64" in first

    monkeypatch.setenv("SCIML_JAX_SMALL", "1")
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    monkeypatch.delenv("MPLBACKEND", raising=False)  # ipykernel selects its inline backend
    km = KernelManager(kernel_name="python3", kernel_spec_manager=_ThisPython())
    client = nbclient.NotebookClient(
        nb, km=km, timeout=CELL_TIMEOUT_S, resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError (with the traceback) if any cell fails

    outputs = [o for c in code for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("small mode" in o.get("text", "") for o in code[0].outputs)  # the switch was read
    images = [o for o in outputs if o.output_type == "display_data" and "image/png" in o.get("data", {})]
    assert images, "every notebook shows at least one figure inline"
