"""The documentation's conventions table (docs/macs.md) is measured, not written by hand: every shapecalc, torchinfo
and fvcore figure in it is recomputed here with ``benchmarks/mac_conventions.py``."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchinfo")

REPO = Path(__file__).resolve().parent.parent
# fvcore traces with torch.jit, which torch 2.13 deprecates; the counts are unaffected.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.*` is deprecated:DeprecationWarning")


def load_script():
    path = REPO / "benchmarks" / "mac_conventions.py"
    spec = importlib.util.spec_from_file_location("mac_conventions", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def readme_rows() -> dict[str, list[str]]:
    """``example`` cell → [shapecalc, torchinfo, fvcore] cells of the documentation's table."""
    page = REPO / "docs" / "macs.md"
    text = (page if page.exists() else REPO / "README.md").read_text(encoding="utf-8")
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[1].startswith("`") and re.fullmatch(r"[\d,]+", cells[2]):
            rows[cells[1]] = cells[2:]
    return rows


def example_cell(name: str) -> str:
    """``Linear(768, 3072) on 1×197×768`` → ``\\`Linear(768, 3072)\\` on 1×197×768`` (prefix)."""
    layer, _, rest = name.partition(" on ")
    return f"`{layer}`"


@pytest.fixture(scope="module")
def measured():
    return load_script().measure()


def test_readme_table_equals_the_measurement(measured):
    rows = readme_rows()
    assert len(rows) == len(measured) == 8
    have_fvcore = importlib.util.find_spec("fvcore") is not None
    for name, row in measured.items():
        cells = rows[next(k for k in rows if k.startswith(example_cell(name)))]
        assert cells[0] == f"{row['shapecalc']:,}", name
        assert cells[1] == f"{row['torchinfo']:,}", name
        if have_fvcore:
            assert cells[2] == f"{row['fvcore']:,}", name


def test_rules_differ_where_the_table_says(measured):
    """The point of each row, independent of the README's wording."""
    linear = measured["Linear(768, 3072) on 1×197×768"]
    assert linear["shapecalc"] == 197 * linear["torchinfo"]  # per position vs once per sample
    attention = measured["MultiheadAttention(768, 12) on 1×197×768"]
    assert attention["shapecalc"] - 4 * 197 * (768 * 768 + 768) == 2 * 197 * 197 * 768
    lstm = measured["LSTM(32, 64, num_layers=2) on 1×20×32"]
    assert lstm["shapecalc"] == lstm["torchinfo"]


def test_fvcore_sees_nothing_of_attention_on_the_fast_path():
    pytest.importorskip("fvcore")
    script = load_script()
    module = script._FirstOutput(torch.nn.MultiheadAttention(768, 12, batch_first=True)).eval()
    with torch.no_grad():
        assert script.fvcore_macs(module, torch.zeros(1, 197, 768)) == 0
