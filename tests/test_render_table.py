"""The rich table: tree guides for nested models, depth collapsing, totals, --explain/--verify."""

from __future__ import annotations

import pytest

from shapecalc import analyze
from shapecalc.blocks import Branches, Residual, Sequential
from shapecalc.layers import AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Flatten, Linear, ReLU
from shapecalc.render import human_bytes, human_count, rf_text
from shapecalc.render.table import render_table_text, tree_labels


def residual(c: int) -> Residual:
    body = Sequential(conv1=Conv2d(c, c, 3, padding=1), bn=BatchNorm2d(c), relu=ReLU(),
                      conv2=Conv2d(c, c, 3, padding=1))
    return Residual(body, post=ReLU())


@pytest.fixture(scope="module")
def nested():
    model = Sequential(
        stem=Conv2d(3, 16, 7, stride=2, padding=3),
        stage=Sequential(residual(16), residual(16)),
        mix=Branches(a=Conv2d(16, 8, 1), b=Sequential()),
        pool=AdaptiveAvgPool2d(1), flat=Flatten(), fc=Linear(None, 10),
    )
    return analyze(model, (2, 3, 64, 64))


def test_tree_guides_follow_the_nesting(nested):
    labels = tree_labels(list(nested.rows()), nested.blocks)
    assert labels[:8] == [
        "├─stem", "├─stage", "│ ├─0", "│ │ ├─body", "│ │ │ ├─conv1", "│ │ │ ├─bn", "│ │ │ ├─relu",
        "│ │ │ └─conv2",
    ]
    assert "│   ├─body" in labels  # second residual: its parent is the last child of `stage`
    assert labels[-1] == "└─fc"


def test_flat_models_need_no_guides():
    result = analyze("alexnet")
    assert tree_labels(list(result.rows()), result.blocks) == [str(i) for i in range(21)]


def table_row(text: str, label: str) -> list[str]:
    for line in text.splitlines():
        cells = line.split()
        if len(cells) > 1 and (cells[0] == label or cells[1] == label):
            return cells
    raise AssertionError(f"no row {label!r} in\n{text}")


def test_depth_collapses_blocks_into_summed_rows(nested):
    text = render_table_text(nested, depth=0)
    stage = nested.blocks["stage"]
    row = table_row(text, "├─stage")
    assert f"{stage.params:,}" in row and f"{stage.macs:,}" in row and "(collapsed)" in row
    assert stage.params == sum(r.params for r in nested.records if r.name.startswith("stage."))
    assert "conv1" not in text and "├─0" not in text
    full = render_table_text(nested)
    assert "conv1" in full and "(collapsed)" not in full


def test_footer_states_totals_memory_and_the_macs_convention(nested):
    text = render_table_text(nested)
    assert f"Total params: {nested.total_params:,} ({human_count(nested.total_params)})" in text
    assert f"FLOPs: {2 * nested.total_macs:,}" in text
    assert f"activations {human_bytes(nested.activation_bytes)}" in text
    assert "input 96.00 KiB" in text  # 2·3·64·64 float32
    assert text.count("MACs = multiply-accumulates") == 1


def test_receptive_field_and_notes_columns():
    text = analyze("alexnet").table()
    assert table_row(text, "0")[9:] == ["11", "drops", "3", "px", "(H,", "W)"]
    assert table_row(text, "12")[7] == "195"
    assert "global" in table_row(text, "14") and "in_features=6400" in text


def test_rf_text_per_axis():
    from shapecalc.arithmetic import AxisRF

    assert rf_text(None) == "global"
    assert rf_text((AxisRF(11, 4, 0), AxisRF(7, 2, 0))) == "11×7"
    assert rf_text((AxisRF(2.5, 1, 0),)) == "2.5"


def test_explain_rows_and_verify_column():
    from shapecalc.torch_bridge import NodeCheck

    result = analyze("alexnet")
    text = result.table(explain=True)
    assert "= floor((224 − 11 + 2 + 4) / 4) = floor(219 / 4) = 54" in text
    checks = [NodeCheck(r.name, r.output_shape, r.output_shape) for r in result.records]
    checks[2] = NodeCheck("2", (1, 96, 26, 26), (1, 96, 27, 27))
    text = result.table(checks=checks)
    assert "✗ 1×96×27×27" in text and text.count("✓") == 20


def test_human_units():
    assert human_count(46_764_746) == "46.76 M" and human_count(999) == "999"
    assert human_bytes(187_058_984) == "178.39 MiB" and human_bytes(512) == "512 B"


@pytest.mark.parametrize("kwargs", [{}, {"explain": True}, {"depth": 0}])
def test_plain_text_is_exactly_the_rich_layout(nested, kwargs):
    """Pipes get the plain renderer (no rich import); it must draw what rich draws."""
    from shapecalc.render.table import capture_text, print_analysis

    for result in (nested, analyze("alexnet")):
        rich_text = capture_text(lambda console: print_analysis(result, console, **kwargs), width=400)
        assert render_table_text(result, **kwargs) == rich_text


def test_human_figures_never_overflow():
    np = pytest.importorskip("numpy")

    assert human_count(10**400) == "1.00E+400"  # float(10**400) overflows
    assert human_count(10**5000).startswith("1.00E+5000")  # beyond the int-text limit
    assert human_bytes(3 * 10**5000).endswith(" TiB") and "E+" in human_bytes(10**400)
    assert human_count(2**53 - 1) == "9007.20 T" and human_count(-1500) == "-1.50 k"
    assert human_count(np.int64(46_764_746)) == "46.76 M" and human_bytes(np.int64(512)) == "512 B"
    assert human_count(1.5e3) == "1.50 k"
    assert human_count(float("inf")) == "inf T" and human_bytes(float("inf")) == "inf TiB"
