"""``examples/d2l_alexnet.ipynb`` runs top to bottom in a real Jupyter kernel, and its outputs
hold what it promises: the HTML table, the graph as SVG, and the diagnosis with its fix.

The kernel is this interpreter (a kernelspec written to a temporary JUPYTER_PATH), so the
notebook sees the shapecalc and torch under test, not whatever a machine-wide ``python3``
kernel points at.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("torch")

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "d2l_alexnet.ipynb"
KERNEL = "shapecalc-test"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def executed(tmp_path_factory) -> list:
    if shutil.which("dot") is None:
        pytest.skip("graphviz's `dot` is not installed (.ci/run installs it): no SVG to check")
    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "shapecalc test", "language": "python",
    }))
    patch = pytest.MonkeyPatch()
    patch.setenv("JUPYTER_PATH", str(root))
    patch.setenv("JUPYTER_RUNTIME_DIR", str(root / "runtime"))
    patch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    try:
        nb = nbformat.read(NOTEBOOK, as_version=4)
        client = nbclient.NotebookClient(nb, kernel_name=KERNEL, timeout=300,
                                         resources={"metadata": {"path": str(NOTEBOOK.parent)}})
        client.execute()
    finally:
        patch.undo()
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def outputs(cell, mime: str) -> str:
    return "".join(out.get("data", {}).get(mime, "") for out in cell.outputs)


def cell_with(cells, source: str):
    return next(cell for cell in cells if source in cell.source)


def test_no_cell_failed(executed):
    for cell in executed:
        assert not [o for o in cell.outputs if o.output_type == "error"], cell.source


def test_summary_displays_the_html_table(executed):
    html = outputs(cell_with(executed, "summary = shapecalc.summary"), "text/html")
    assert "<table>" in html and 'class="shapecalc-table"' in html
    assert "Conv2d(1→96, k=11, s=4, p=1)" in html and "1×96×54×54" in html
    assert "Total params: 46,764,746" in html
    totals = outputs(cell_with(executed, "summary.total_params,"), "text/plain")
    assert totals == "(46764746, 46764746, 938754826)"


def test_the_d2l_printout_agrees(executed):
    text = "".join(o.get("text", "") for o in cell_with(executed, "for layer in net").outputs)
    assert "Linear output shape:\t torch.Size([1, 10])" in text
    assert "Flatten output shape:\t torch.Size([1, 6400])" in text


def test_the_graph_is_inline_svg(executed):
    svg = outputs(cell_with(executed, "summary.draw()"), "image/svg+xml")
    assert svg.lstrip().startswith(("<?xml", "<svg", "<!--")) and "</svg>" in svg
    assert "Conv2d" in svg and "54" in svg


def test_the_broken_model_is_diagnosed_with_its_fix(executed):
    torch_error = "".join(o.get("text", "") for o in cell_with(executed, "broken(torch").outputs)
    assert "mat1 and mat2 shapes cannot be multiplied" in torch_error
    html = outputs(cell_with(executed, "diagnose(broken"), "text/html")
    assert "does not fit" in html and "set in_features=6400" in html
    assert "use input 2" in html  # a checked input size that makes 9216 features


def test_the_memory_cell_answers_what_dominates(executed):
    html = outputs(cell_with(executed, "memory = shapecalc.analyze"), "text/html")
    assert "Training memory and roofline" in html and "<svg" in html and "<circle" in html
    assert "14 (Linear) holds 56 %" in html  # the first fully connected layer: most weights
    assert "bandwidth at batch 1" in html and "bandwidth at batch 128" in html
    totals = outputs(cell_with(executed, "memory.parameters,"), "text/plain")
    assert totals.startswith("(187058984, 187058984, ")  # 46,764,746 float32 parameters
