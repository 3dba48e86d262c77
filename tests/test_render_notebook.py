"""Analyses and diagnoses in Python: a one-line repr, the table as str, IPython's printer."""

from __future__ import annotations

import pytest

from shapecalc import analyze
from shapecalc.diagnose import diagnose
from shapecalc.output.formats import to_markdown


def test_repr_is_one_short_line_with_model_shapes_and_totals():
    result = analyze("alexnet")
    text = repr(result)
    assert "\n" not in text and len(text) < 200
    for part in ("alexnet", "1×1×224×224", "1×10", "46,764,746", "938,754,826", "21 layers"):
        assert part in text
    assert repr([result]) == f"[{text}]"


def test_str_is_the_table_and_markdown_the_markdown_table():
    result = analyze("alexnet")
    assert str(result) == result.table()
    assert result._repr_markdown_() == to_markdown(result)


def test_table_keywords_are_explicit_and_checked():
    import inspect

    from shapecalc.core.errors import UsageError
    from shapecalc.core.graph import Analysis

    params = inspect.signature(Analysis.table).parameters
    assert list(params) == ["self", "depth", "explain", "columns", "width", "checks"]
    with pytest.raises(UsageError, match="columns: unknown column 'parms'"):
        analyze("alexnet").table(columns=["parms"])


def test_ipython_pretty_printer_shows_the_fitted_table(monkeypatch):
    pretty = pytest.importorskip("IPython.lib.pretty")
    monkeypatch.setenv("COLUMNS", "80")
    result = analyze("resnet18")
    text = pretty.pretty(result)
    assert text == result.table(width=80).rstrip("\n")
    assert all(len(line) <= 80 for line in text.splitlines())


def test_diagnosis_repr_str_and_pretty():
    pretty = pytest.importorskip("IPython.lib.pretty")
    broken = diagnose("alexnet", (1, 1, 28, 28))
    count = len(broken.fixes)
    assert count >= 1
    assert repr(broken) == (f"<Diagnosis alexnet 1×1×28×28: does not fit at '{broken.node}' "
                            f"{broken.layer}; {count} fix{'es' if count > 1 else ''}>")
    lines = str(broken).splitlines()
    assert lines[0] == "✗ alexnet does not fit input 1×1×28×28"
    assert [line for line in lines if line.startswith("  fix ")] == [
        f"  fix {i}: {fix}" for i, fix in enumerate(broken.fixes, 1)]
    assert pretty.pretty(broken) == str(broken)
    assert broken._repr_markdown_().startswith("**✗ alexnet does not fit")
    fine = diagnose("alexnet")
    assert repr(fine) == "<Diagnosis alexnet 1×1×224×224: fits → 1×10>"
    assert str(fine).startswith("✓ alexnet fits input 1×1×224×224 → 1×10")
