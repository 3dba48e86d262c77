"""The data columns: names (torchinfo's col_names and short forms), cells, compact numbers."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from shapecalc import analyze
from shapecalc.core.errors import UsageError
from shapecalc.output.columns import (
    COLUMNS, CellContext, cell, frozen_params, kernel_text, parse_columns, short_count, trainable_text,
)


def test_parse_columns_takes_torchinfo_names_and_short_ones_in_order():
    assert parse_columns("output_size,num_params") == ("output_size", "num_params")
    assert parse_columns("rf, MACS,input") == ("receptive_field", "mult_adds", "input_size")
    assert parse_columns(["kernel_size", "trainable"]) == ("kernel_size", "trainable")
    assert {c.key for c in COLUMNS} >= {"input_size", "output_size", "num_params",
                                        "params_percent", "kernel_size", "mult_adds", "trainable"}


@pytest.mark.parametrize("text, words", [
    ("outptu", ["--columns", "'outptu'", "output_size"]),
    ("rf,receptive_field", ["--columns", "twice"]),
    ("", ["--columns", "at least one"]),
])
def test_bad_column_names_say_what_is_allowed(text, words):
    with pytest.raises(UsageError) as err:
        parse_columns(text)
    assert all(w in str(err.value) for w in words)


@given(st.integers(0, 10**15))
def test_short_count_is_short_and_close(n):
    text = short_count(n)
    assert len(text) <= 5 or text.endswith("T")
    units = {"k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
    value = float(text[:-1]) * units[text[-1]] if text[-1] in units else float(text)
    assert abs(value - n) <= 0.005 * n + 0.5


def test_cells_of_alexnets_first_conv():
    result = analyze("alexnet")
    conv = result.records[0]
    ctx = CellContext(result.total_params, {})
    assert cell("input_size", conv, ctx) == "1×1×224×224"
    assert cell("num_params", conv, ctx) == "11,712" and cell("num_params", conv, ctx, True) == "11.7k"
    assert cell("params_percent", conv, ctx) == f"{100 * 11712 / 46_764_746:.2f}%"
    assert cell("params_percent", result.records[1], ctx) == "-"
    assert kernel_text(conv) == "11×11" and kernel_text(result.records[1]) == "-"
    assert kernel_text(result.records[2]) == "3×3"
    shares = sum(100 * r.params / result.total_params for r in result.records)
    assert shares == pytest.approx(100)


def test_trainable_column_reads_frozen_counts():
    result = analyze("alexnet")
    conv, relu = result.records[0], result.records[1]
    assert trainable_text(conv, {}) == "yes" and trainable_text(relu, {}) == "-"
    assert trainable_text(conv, {"0": 11_712}) == "no"
    assert trainable_text(conv, {"0": 96}) == "partial"
    nested = analyze("resnet18")
    block = nested.blocks["b1"]
    assert trainable_text(block, {"b1": 3_200}) == "partial"


def test_a_block_holds_the_frozen_parameters_of_its_nodes():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    model = nn.Sequential(nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3)), nn.Flatten(),
                          nn.Linear(4 * 4 * 4, 2))
    model[0][0].requires_grad_(False)
    result = analyze(model, (1, 1, 8, 8))
    frozen = frozen_params(result)
    assert frozen == {"0.0": 40, "0": 40}
    assert trainable_text(result.blocks["0"], frozen) == "partial"
    model[0][2].requires_grad_(False)
    frozen = frozen_params(analyze(model, (1, 1, 8, 8)))
    assert trainable_text(result.blocks["0"], frozen) == "no"
