"""``shapecalc layer``: the worked arithmetic, per-axis values, the padding solver and every
class of bad input (one line on stderr, the right exit code, never a traceback)."""

from __future__ import annotations

import json

import pytest

from shapecalc.core import arithmetic as ar
from shapecalc.cli import layer as layer_mod


def output_line(text: str) -> str:
    return next(line for line in text.splitlines() if line.startswith("output:"))


def test_alexnet_first_layer_shows_substituted_arithmetic(cli):
    out = cli("layer", "--k", "11", "--s", "4", "--p", "2", "224").stdout
    assert output_line(out) == "output: 54"
    assert "floor((224 − 11 + 2 + 4) / 4) = floor(219 / 4) = 54" in out
    assert "p is the TOTAL padding of both sides: nn.Conv2d(padding=1) is p = 2." in out
    assert "3 rows/columns at the bottom/right are never covered" in out
    # The text is the engine's own explanation, not a copy.
    for line in ar.explain_conv(224, 11, 4, 2):
        assert line.strip() in out


def test_padding_per_side_equals_total_doubled(cli):
    assert output_line(cli("layer", "--k", "11", "--s", "4", "--padding", "1", "224").stdout) == "output: 54"


def test_long_option_names(cli):
    out = cli("layer", "--kernel", "3", "--stride", "2", "--dilation", "2", "--p", "0", "15").stdout
    assert output_line(out) == f"output: {ar.conv_output_size(15, 3, 2, 0, 2)}"
    assert "k_eff = d·(k − 1) + 1 = 2·(3 − 1) + 1 = 5" in out


def test_json_has_per_axis_output_and_echoes_inputs(cli):
    data = json.loads(cli("layer", "--k", "11", "--s", "4", "--p", "2", "224x224", "--json").stdout)
    assert data["output"] == [54, 54]
    assert data["input"] == [224, 224] and data["kernel"] == [11, 11] and data["stride"] == [4, 4]
    assert data["padding_total"] == [2, 2] and data["padding_per_side"] == [1, 1]
    assert data["dropped"] == [3, 3]
    assert data["op"] == "conv"


def test_per_axis_sizes_and_kernels(cli):
    data = json.loads(cli("layer", "--k", "3x5", "--p", "2x4", "224x200", "--json").stdout)
    assert data["output"] == [ar.conv_output_size(224, 3, 1, 2), ar.conv_output_size(200, 5, 1, 4)]
    assert data["output"] == [224, 200]
    text = cli("layer", "--k", "3x5", "224").stdout
    assert output_line(text) == "output: 222x220"
    assert text.startswith("H: ") and "\nW: " in text


def test_pool_stride_defaults_to_kernel_like_torch(cli):
    data = json.loads(cli("layer", "--op", "maxpool", "--k", "3", "54", "--json").stdout)
    assert data["stride"] == [3] and data["output"] == [18]
    data = json.loads(cli("layer", "--op", "maxpool", "--k", "3", "--s", "2", "54", "--json").stdout)
    assert data["output"] == [26]


def test_ceil_mode_uses_torch_rule(cli):
    data = json.loads(cli("layer", "--op", "maxpool", "--k", "3", "--s", "2", "--ceil-mode", "54",
                          "--json").stdout)
    assert data["output"] == [ar.pool_output_size(54, 3, 2, 0, 1, True)] == [27]
    # torch drops a last window that would start inside the right padding only
    data = json.loads(cli("layer", "--op", "avgpool", "--k", "2", "--s", "2", "--p", "2", "--ceil-mode", "5",
                          "--json").stdout)
    assert data["output"] == [ar.pool_output_size(5, 2, 2, 2, 1, True)] == [3]


def test_conv_transpose_with_output_padding(cli):
    data = json.loads(cli("layer", "--op", "conv-transpose", "--k", "3", "--s", "2", "--padding", "1",
                          "--output-padding", "1", "28", "--json").stdout)
    assert data["output"] == [56]
    assert data["output_padding"] == [1]


def test_same_padding_keeps_the_size(cli):
    data = json.loads(cli("layer", "--k", "4", "--same", "31", "--json").stdout)
    assert data["output"] == [31] and data["padding_total"] == [3]
    assert data["padding_per_side"] == [None]  # odd total: torch puts the extra pixel right
    assert "padding='same' pads 1 before and 2 after" in cli("layer", "--k", "4", "--same", "31").stdout
    assert "p = 3 is odd" in cli("layer", "--k", "4", "--p", "3", "31").stdout


def test_target_lists_paddings_and_symmetric_ones(cli):
    out = cli("layer", "--k", "11", "--s", "4", "--target", "56", "224").stdout
    assert "total paddings p giving 56: 7, 8, 9, 10" in out
    assert "p = 8 → nn.Conv2d(padding=4)" in out and "p = 10 → nn.Conv2d(padding=5)" in out
    assert output_line(out) == "output: 56"
    data = json.loads(cli("layer", "--k", "11", "--s", "4", "--target", "56", "224", "--json").stdout)
    found = ar.solve_padding(224, 11, 4, 56)
    assert data["solutions"][0]["paddings"] == {"from": found[0], "to": found[-1], "step": 1}
    assert data["solutions"][0]["symmetric"] == {"from": 8, "to": 10, "step": 2}


def test_target_with_only_asymmetric_padding_says_so(cli):
    out = cli("layer", "--k", "4", "--target", "32", "32").stdout  # p must be 3: odd
    assert "total paddings p giving 32: 3" in out
    assert "none is symmetric" in out and "1 before, 2 after" in out


def test_target_without_any_padding_is_one_line_error(cli):
    code, err = cli("layer", "--k", "3", "--s", "2", "--target", "200", "--op", "maxpool", "224").error
    assert code == 1 and "--target 200: no padding gives 200" in err
    code, err = cli("layer", "--k", "3", "--target", "100", "224").error
    assert code == 1 and "already 222" in err


def test_terminal_output_uses_rich(monkeypatch, cli):
    monkeypatch.setattr(layer_mod, "is_terminal", lambda: True)
    out = cli("layer", "--k", "11", "--s", "4", "--p", "2", "224").stdout
    assert "output: 54" in out and "floor(219 / 4) = 54" in out


@pytest.mark.parametrize(
    "args, code, words",
    [
        (["--k", "abc", "224"], 2, "--k/--kernel: 'abc' is not an integer"),
        (["--k", "3", "22x"], 2, "SIZE"),
        (["--k", "3", "1.5"], 2, "SIZE: '1.5' is not an integer"),
        (["--k", "0", "224"], 2, "--k/--kernel: must be ≥ 1, got 0"),
        (["--k", "3", "--s", "0", "224"], 2, "--s/--stride: must be ≥ 1"),
        (["--k", "3", "0"], 2, "SIZE: must be ≥ 1, got 0"),
        (["--k", "3", "224x-5"], 2, "SIZE: must be ≥ 1, got -5"),
        (["--k", "3", "--p", "-1", "224"], 2, "--p: must be ≥ 0, got -1"),
        (["224"], 2, "--k/--kernel: the kernel size is required"),
        (["--k", "3", "--p", "2", "--padding", "1", "224"], 2, "--p and --padding"),
        (["--k", "3", "--s", "2", "--same", "224"], 2, "use --target"),
        (["--k", "3x3x3x3", "224"], 2, "at most 3 spatial axes"),
        (["--k", "3x5x7", "224x224"], 2, "give one value or 3"),
        (["--k", "3", "--ceil-mode", "224"], 2, "--ceil-mode: only for"),
        (["--k", "3", "--output-padding", "1", "224"], 2, "--output-padding: only for"),
        (["--op", "avgpool", "--k", "3", "--d", "2", "224"], 2, "no dilation"),
        (["--op", "maxpool", "--k", "3", "--padding", "2", "54"], 1, "--padding: padding 2 per side"),
        (["--op", "conv-transpose", "--k", "3", "--s", "2", "--output-padding", "2", "28"], 1,
         "output_padding must be smaller than the stride"),
        (["--k", "30", "20"], 1, "kernel span 30 is larger than the padded input 20 + 0 = 20"),
        (["--op", "sum", "--k", "3", "20"], 2, "--op"),
    ],
)
def test_bad_inputs_give_one_line(args, code, words, cli):
    got, err = cli("layer", *args).error
    assert got == code
    assert err.startswith("shapecalc: error: ")
    assert words in err


# ------------------------------------------------------------------ the layer classes answer
def test_pool_padding_limit_is_the_layers_for_a_single_size_and_per_axis(cli):
    # torch: nn.MaxPool2d(2, 2, 2, dilation=3) raises "pad should be smaller than or equal to
    # half of kernel size"; `5` is the square 5x5, so both are refused alike.
    for size in ("5x5", "5"):
        code, err = cli("layer", "--op", "maxpool", "--k", "2", "--s", "2", "--padding", "2",
                        "--d", "3", size).error
        assert code == 1 and "allows at most 1 per side" in err


def test_ceil_mode_uncovered_row_matches_the_layer_note(cli):
    from shapecalc.core.layers import MaxPool2d
    from shapecalc.core.notes import NoteKind

    data = json.loads(cli("layer", "--op", "maxpool", "--k", "2", "--s", "3", "--ceil-mode", "9",
                          "--json").stdout)
    assert data["output"] == [3] and data["dropped"] == [1]
    pool = MaxPool2d(2, 3, ceil_mode=True)
    out = pool.output_shape((1, 1, 9, 9))
    [note] = pool.notes(out, (1, 1, 9, 9))
    assert note.kind is NoteKind.DROPS and note.get("px") == 1
    assert "9 + 0 − ((3 − 1)·3 + 2) = 1" in cli("layer", "--op", "maxpool", "--k", "2", "--s", "3",
                                                 "--ceil-mode", "9").stdout


def test_target_with_a_huge_stride_prints_ranges_at_once(cli):
    import time

    start = time.perf_counter()
    out = cli("layer", "--k", "3", "--s", "100000000", "--target", "1", "5").stdout
    assert "total paddings p from 0 to 99,999,997 all give 1" in out
    assert "every even p from 0 to 99,999,996" in out
    data = json.loads(cli("layer", "--k", "3", "--s", "100000000", "--target", "1", "5", "--json").stdout)
    assert data["solutions"][0]["paddings"] == {"from": 0, "to": 99_999_997, "step": 1}
    assert data["solutions"][0]["symmetric"] == {"from": 0, "to": 99_999_996, "step": 2}
    out = cli("layer", "--op", "maxpool", "--k", "100000000", "--ceil-mode", "--target", "1", "5").stdout
    assert "p from 0 to 100,000,000 all give 1" in out
    assert time.perf_counter() - start < 5


@pytest.mark.parametrize("size", ["1" + "0" * 5000, "99999999999999999999"])
def test_oversized_numbers_are_one_line(size, cli):
    code, err = cli("layer", "--k", "3", size).error
    assert code == 2 and "SIZE: " in err and "is too large; at most 9,223,372,036,854,775,807" in err
    assert len(err) < 200


def test_odd_total_padding_on_a_pool_limits_the_larger_side(cli):
    code, err = cli("layer", "--op", "avgpool", "--k", "3", "--p", "3", "10").error
    assert code == 1 and "--p: padding 2 per side (p = 3 total)" in err
    data = json.loads(cli("layer", "--op", "avgpool", "--k", "3", "--p", "1", "10", "--json").stdout)
    assert data["output"] == [ar.pool_output_size(10, 3, 3, 1)] and data["padding_total"] == [1]


def test_a_padding_past_64_bits_names_the_option(cli):
    # past a field's declared maximum (issue 21), each names its option
    code, err = cli("layer", "--k", "3", "--padding", str(2**63 - 1), "5").error
    assert code == 2 and err.startswith("shapecalc: error: --padding: padding must be ≤ 2,147,483,647")
    code, err = cli("layer", "--k", "3", "--s", str(2**63 - 1), "--target", "3", "5").error
    assert code == 2 and "--s/--stride: stride must be ≤ 2,147,483,647" in err


def test_layer_imports_only_the_layer_module_it_needs():
    """`shapecalc layer` is a quick command: it loads layers.conv or layers.pool, never the
    ~100 other layer dataclasses (the layers package loads its modules on first use)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = (
        "import sys\nfrom shapecalc.cli import main\n"
        "for op in sys.argv[1:]:\n"
        "    try:\n        main(['layer', '--op', op, '--k', '3', '224'])\n"
        "    except SystemExit:\n        pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('shapecalc.core.layers.')))\n"
    )
    root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for ops, expected in ((["conv"], "conv"), (["maxpool", "avgpool"], "pool")):
        out = subprocess.run([sys.executable, "-c", script, *ops], env=env, capture_output=True,
                             text=True, check=True).stdout.strip().splitlines()[-1]
        # base + its field checks (layers/fields.py: no layer classes) + the one layer module
        assert out == str(sorted(["shapecalc.core.layers.base", "shapecalc.core.layers.fields",
                                  f"shapecalc.core.layers.{expected}"])), out
