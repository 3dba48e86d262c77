"""The rich table: tree guides for nested models, depth collapsing, totals, --explain/--verify."""

from __future__ import annotations

import pytest

from shapecalc import analyze
from shapecalc.core.blocks import Branches, Residual, Sequential
from shapecalc.core.layers import AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Flatten, Linear, ReLU
from shapecalc.core.arithmetic import FieldRule
from shapecalc.output import human_bytes, human_count, rf_text
from shapecalc.output.table import render_table_text, tree_labels


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
    labels = tree_labels(list(nested.rows()), nested)
    assert labels[:8] == [
        "├─stem", "├─stage", "│ ├─0", "│ │ ├─body", "│ │ │ ├─conv1", "│ │ │ ├─bn", "│ │ │ ├─relu",
        "│ │ │ └─conv2",
    ]
    assert "│   ├─body" in labels  # second residual: its parent is the last child of `stage`
    assert labels[-1] == "└─fc"


def test_flat_models_need_no_guides():
    result = analyze("alexnet")
    assert tree_labels(list(result.rows()), result) == [str(i) for i in range(21)]


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
    # flat model: no name column (it would repeat the index)
    assert table_row(text, "0")[8:] == ["11", "drops", "3", "px", "(H,", "W)"]
    assert table_row(text, "12")[6] == "195"
    assert "global" in table_row(text, "14") and "in_features=6400" in text


def test_rf_text_per_axis():
    from shapecalc.core.arithmetic import AxisRF, FieldRule

    assert rf_text(None) == "global"
    assert rf_text((AxisRF.uniform(11, 4, 0), AxisRF.uniform(7, 2, 0))) == "11×7"
    assert rf_text(FieldRule.UNKNOWN) == "?"  # a layer on the way without a rule: never a guess


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
    from shapecalc.output.table import capture_text, print_analysis

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


# ------------------------------------------------------------------ width fitting
from hypothesis import given, settings, strategies as st  # noqa: E402

from shapecalc.output.table import (  # noqa: E402
    LADDER, Layout, choose_layout, display_width, draw, layout_table, plain_lines, table_model,
)
from shapecalc.models.zoo import ZOO  # noqa: E402

ANALYSES = {name: analyze(name) for name in ZOO}


def table_lines(drawn) -> list[str]:
    """Header, rule and rows (title, footnotes and totals are wrapped text, checked apart)."""
    lines = plain_lines(drawn)
    rule = next(i for i, line in enumerate(lines) if line.startswith("──"))
    return lines[rule - 1: rule + 1 + sum(1 for line in drawn.lines[rule + 1:]
                                         if len(line) > 1)]


def narrowest(model) -> Layout:
    """The layout at the bottom of the ladder: what the table falls back to at any width."""
    return choose_layout(model, 1)


@settings(max_examples=40)
@given(name=st.sampled_from(sorted(ZOO)), depth=st.sampled_from([None, 0, 1, 2]),
       width=st.integers(60, 260))
def test_a_table_fits_any_width_its_narrowest_layout_fits(name, depth, width):
    result = ANALYSES[name]
    model = table_model(result, depth)
    drawn = draw(model, choose_layout(model, width), width)
    floor = draw(model, narrowest(model), None).width
    if floor <= width:
        assert drawn.width <= width
        assert all(display_width(line) <= width for line in plain_lines(drawn))
    # never a cut description: every row's layer text is whole, in row order
    rows = [line for line in drawn.lines[3:] if len(line) > 1]
    assert len(rows) == len(model.rows)
    for segs, row in zip(rows, model.rows):
        assert row.record.description in "".join(t for t, _ in segs)


@settings(max_examples=30)
@given(name=st.sampled_from(sorted(ZOO)), widths=st.tuples(st.integers(60, 240), st.integers(0, 120)))
def test_a_wider_terminal_never_shows_less(name, widths):
    narrow, extra = widths
    model = table_model(ANALYSES[name], 1)
    small, large = choose_layout(model, narrow), choose_layout(model, narrow + extra)
    assert set(small.keys) <= set(large.keys)
    assert (small.index <= large.index and large.footnotes <= small.footnotes
            and large.compact <= small.compact and small.gap <= large.gap)


def test_the_ladder_order_at_80_columns():
    alexnet = choose_layout(table_model(ANALYSES["alexnet"]), 80)
    assert alexnet == Layout(("output_size", "num_params", "mult_adds", "receptive_field", "notes"),
                             index=True, footnotes=True, compact=True)
    resnet = choose_layout(table_model(ANALYSES["resnet18"], 1), 80)
    assert "receptive_field" not in resnet.keys and resnet.compact and resnet.index
    assert [what for what, _ in LADDER][0] == "footnotes"  # notes give way first


def test_footnotes_number_each_distinct_note_once():
    result = ANALYSES["resnet18"]
    text = result.table(width=80)
    lines = text.splitlines()
    notes = [line for line in lines if line.startswith("[")]
    texts = [line.split("] ", 1)[1] for line in notes]
    assert len(texts) == len(set(texts))
    every = {str(n) for r in result.records for n in r.notes}
    assert every <= set(texts)
    # each row's markers name exactly its own notes
    model = table_model(result)
    drawn = draw(model, choose_layout(model, 80), 80)
    numbered = {str(i): t for i, t in enumerate(texts, 1)}
    for segs, row in zip([l for l in drawn.lines[3:] if len(l) > 1], model.rows):
        marks = "".join(t for t, _ in segs).rstrip().rsplit(" ", 1)[-1]
        want = [str(n) for n in row.record.notes]
        got = [numbered[m] for m in marks.strip("[]").split(",")] if marks.startswith("[") else []
        assert got[:len(want)] == want


def test_piped_layout_is_the_default_and_independent_of_width():
    model = table_model(ANALYSES["alexnet"])
    assert choose_layout(model) == Layout(("output_size", "num_params", "mult_adds",
                                           "receptive_field", "notes"))
    text = ANALYSES["alexnet"].table()
    assert "in_features=6400 derived from the input" in text and "[1]" not in text


def test_chosen_columns_keep_their_order_and_only_change_form():
    result = ANALYSES["alexnet"]
    text = result.table(columns=["mult_adds", "input_size", "num_params"], width=60)
    header = text.splitlines()[1].split()
    assert header == ["#", "layer", "MACs", "input", "shape", "params"]
    assert "34.2M" in text  # compact, to fit 60 columns
    assert "34,152,192" in result.table(columns=["mult_adds"])


def test_explain_lines_sit_under_their_row_at_the_layer_column():
    drawn = layout_table(ANALYSES["alexnet"], explain=True, width=80)
    lines = plain_lines(drawn)
    at = lines.index(next(l for l in lines if "Conv2d(1→96" in l))
    assert lines[at + 1].strip().startswith("H: out = floor(")
    assert lines[at + 1].index("H:") == lines[at].index("Conv2d")


def test_explain_says_the_field_in_theory_and_inside_the_image():
    """--explain: per axis the theoretical field and what the first and last outputs read of
    the image (AlexNet's '5': output 11 reads rows 159…217 of 159…225; autograd agrees, see
    tests/test_receptive_field.py); element-wise rows add nothing; an unknown field says where
    it starts."""
    from shapecalc.core.blocks import Sequential
    from shapecalc.core.layers import Conv2d, ReLU
    from shapecalc.core.layers.functional import Permute

    text = analyze("alexnet").table(explain=True)
    assert ("RF H: 67 in theory, outputs 16 apart; inside the image 50 to 67: output 0 reads "
            "0…49 of -17…49, output 11 159…217 of 159…225") in text
    assert text.count("RF W: same as H") == 8  # 5 convs and 3 pools, not the ReLUs
    odd = analyze(Sequential(Conv2d(1, 2, 3), Permute((0, 2, 3, 1)), ReLU(), Conv2d(6, 2, (3, 1)), ReLU()),
                  (1, 1, 8, 8))
    lines = odd.table(explain=True)
    assert lines.count("RF: unknown from here: Conv2d reads the last axes, but the fields sit on "
                       "axes 1, 2 (channels-last)") == 1
    assert [r.rf for r in odd.records][3:] == [FieldRule.UNKNOWN] * 2
    assert table_row(lines, "2")[-1] == "3" and table_row(lines, "4")[-1] == "?"
