"""``shapecalc check``: exit 0 fits, 1 does not, 2 usage; --input-range; --json."""

from __future__ import annotations

import json

import pytest

from shapecalc.models.specfile import save_spec
from test_diagnose import alexnet_with


@pytest.fixture
def buggy_spec(tmp_path):
    return str(save_spec(alexnet_with(9216), tmp_path / "buggy.json", "buggy", (1, 1, 224, 224)))


def test_fits_exit_0(cli):
    code, out, _ = cli("check", "alexnet")
    assert code == 0
    assert out.splitlines()[0] == "✓ alexnet fits input 1×1×224×224 → 1×10"
    assert "pixels are dropped at '0', '2', '5', '12'" in out
    code, out, _ = cli("check", "alexnet", "--input", "1x1x225x225")
    assert code == 0 and "dropped" not in out


def test_does_not_fit_exit_1(cli, buggy_spec):
    code, out, err = cli("check", buggy_spec)
    assert code == 1 and err == ""
    lines = out.splitlines()
    assert lines[0] == "✗ buggy does not fit input 1×1×224×224"
    assert lines[1] == "  at node   '14'  Linear(9216→4096)"
    assert lines[2:4] == ["  expected  9,216 input features", "  got       6,400 features (256×5×5)"]
    assert lines[4] == "  Linear(9216, 4096) receives 6,400 features (256×5×5) at input 224×224"
    assert lines[5:] == ["  fix 1: set in_features=6400",
                         "  fix 2: use input 225×225 (gives 256×6×6 = 9,216; sizes 225 to 256 all work)"]
    code, _, _ = cli("check", buggy_spec, "--input", "1x1x227x227")
    assert code == 0


def test_json_verdict(cli, buggy_spec):
    code, out, _ = cli("check", buggy_spec, "--json")
    data = json.loads(out)
    assert code == 1 and data["fits"] is False and data["node"] == "14"
    assert data["fixes"][0] == "set in_features=6400" and data["input_shape"] == [1, 1, 224, 224]


def test_input_range(cli):
    code, out, _ = cli("check", "alexnet", "--input-range", "32..512")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "alexnet: input 1×1×N×N, N = 32..512"
    assert lines[1] == "  fits       65–512  (448 sizes)"
    assert lines[2] == "  exact      65, 97, …, 481 (every 32)  (no remainder at any layer)"
    assert lines[-2:] == ["  fails at '5'  32", "  fails at '12'  33–64"]
    # The wording is the diagnosis renderer's: the library's scan prints the very same lines.
    from shapecalc.diagnose import scan_inputs

    assert str(scan_inputs("alexnet", None, 32, 512)) == out.rstrip("\n")


def test_input_range_json_and_no_fit(cli, buggy_spec):
    code, out, _ = cli("check", buggy_spec, "--input-range", "200..230", "--json")
    data = json.loads(out)
    assert code == 0 and data["fits"] == [[225, 230]] and data["exact"] == [225]
    assert data["fails"] == {"14": [[200, 224]]}
    code, out, _ = cli("check", buggy_spec, "--input-range", "100..120")
    assert code == 1 and "fits       none" in out


@pytest.mark.parametrize("argv, message", [
    (["check", "alexnet", "--input", "1x1xax3"], "--input: 'a' is not an integer"),
    (["check", "alexnet", "--input-range", "32-"], "--input-range: expected LOW..HIGH like 32..512"),
    (["check", "alexnet", "--input-range", "64..32"], "--input-range: need 1 ≤ LOW ≤ HIGH, got 64..32"),
    (["check", "alexnet", "--input-range", "1..100000"], "--input-range: at most 8192 sizes"),
])
def test_usage_errors_exit_2(cli, argv, message):
    code, out, err = cli(*argv)
    assert code == 2 and out == ""
    assert err.startswith(f"shapecalc: error: {message}") and err.count("\n") == 1


def test_model_load_errors_exit_2_in_one_line(cli, tmp_path):
    """2 means "could not load the model", never "does not fit" (1)."""
    code, _, err = cli("check", "alexnett")
    assert code == 2 and "did you mean 'alexnet'" in err and err.count("\n") == 1
    bad = tmp_path / "bad.json"
    bad.write_text('{"layers": [}')
    code, _, err = cli("check", str(bad), "--input", "1x1x8x8")
    assert code == 2 and f"{bad}:1:13: invalid JSON" in err
    syntax = tmp_path / "broken.py"
    syntax.write_text("def (:\n")
    for model in (f"{syntax}:Net", f"{tmp_path / 'missing.py'}:Net", str(tmp_path / "missing.json")):
        code, out, err = cli("check", model)
        assert code == 2 and out == "" and err.count("\n") == 1, (model, err)


def test_python_target_without_default_input(cli, tmp_path):
    pytest.importorskip("torch")
    path = tmp_path / "m.py"
    path.write_text("import torch.nn as nn\nclass Net(nn.Sequential):\n"
                    "    def __init__(self):\n        super().__init__(nn.Conv2d(1, 2, 3), nn.Linear(10, 2))\n")
    code, _, err = cli("check", f"{path}:Net")
    assert code == 2 and "--input: Net has no default input shape" in err
    code, out, _ = cli("check", f"{path}:Net", "--input", "1x1x12x12")
    assert code == 0 and out.startswith("✓ Net fits input 1×1×12×12 → 1×2×10×2")


def test_check_of_zoo_and_spec_models_never_imports_torch(buggy_spec):
    import subprocess
    import sys

    code = ("import sys\nfrom shapecalc.cli import main\n"
            f"for argv in (['check', 'alexnet'], ['check', {buggy_spec!r}, '--input-range', '220..230']):\n"
            "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_proposed_size_is_checked_through_the_whole_model(cli):
    code, out, _ = cli("check", "alexnet", "--input", "1x1x1x1")
    assert code == 1
    assert out.splitlines()[-1] == "  fix 1: use input 65×65 (gives 1×96×15×15; any size from 65 up works)"


def test_unfixable_sizes_say_what_was_searched(cli, tmp_path):
    spec = tmp_path / "odd.json"  # 9215 features is not 8·k² for any k: no input size can fit
    spec.write_text('{"input": [1, 3, 100000, 100000], "layers": [{"type": "Conv2d", '
                    '"out_channels": 8, "kernel_size": 3}, {"type": "MaxPool2d", "kernel_size": 2}, '
                    '{"type": "Flatten"}, {"type": "Linear", "in_features": 9215, "out_features": 10}]}')
    code, out, _ = cli("check", str(spec))
    assert code == 1 and out.splitlines()[-1] == "  searched  no square input size gives 9,215 features here"


def test_configuration_errors_stop_the_range_scan(cli, tmp_path):
    spec = tmp_path / "cfg.json"
    spec.write_text('{"input": [1, 3, 8, 8], "layers": [{"type": "ConvTranspose2d", "out_channels": 3, '
                    '"kernel_size": 3, "stride": 2, "output_padding": 2}]}')
    code, out, err = cli("check", str(spec), "--input-range", "1..8192")
    assert code == 1 and out == "" and "output_padding must be smaller" in err and err.count("\n") == 1


def test_range_scan_stops_at_its_time_budget_and_says_where(cli, monkeypatch):
    import shapecalc.diagnose.input_scan as input_scan

    monkeypatch.setattr(input_scan, "SCAN_SECONDS", 0.0)  # only the first size fits the budget
    code, out, _ = cli("check", "alexnet", "--input-range", "65..8000")
    assert code == 0
    assert out.splitlines()[-1] == ("  stopped    at N = 66 after 0 s; sizes 66..8000 were not "
                                    "scanned (give a narrower range)")
    code, out, _ = cli("check", "alexnet", "--input-range", "65..8000", "--json")
    assert json.loads(out)["stopped_at"] == 66 and json.loads(out)["fits"] == [[65, 65]]


# ------------------------------------------------------------------ several inputs
TWO_INPUTS = '''import torch
from torch import nn


class Net(nn.Module):
    """A siamese pair whose head was sized for 14x14 inputs."""

    def __init__(self, in_features=2 * 16 * 6 * 6):
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                     nn.Conv2d(8, 16, 3), nn.Flatten())
        self.head = nn.Linear(in_features, 10)

    def forward(self, left, right):
        return self.head(torch.cat([self.encoder(left), self.encoder(right)], 1))


class Good(Net):
    def __init__(self):
        super().__init__(2 * 16 * 14 * 14)


class ImageText(nn.Module):
    def __init__(self, fc_in=32):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 4, stride=4)
        self.embed = nn.Embedding(1000, 16)
        self.fc = nn.Linear(fc_in, 5)

    def forward(self, image, tokens):
        txt = self.embed(tokens).mean(1)
        return self.fc(torch.cat([self.conv(image).flatten(1), txt], 1))
'''


@pytest.fixture
def two_inputs(tmp_path):
    pytest.importorskip("torch")
    path = tmp_path / "siamese.py"
    path.write_text(TWO_INPUTS)
    return str(path)


def test_two_inputs_fit_exit_0(cli, two_inputs):
    code, out, err = cli("check", f"{two_inputs}:Good", "--input", "1x3x32x32", "--input", "1x3x32x32")
    assert (code, err) == (0, "")
    assert out == "✓ Good fits inputs left 1×3×32×32, right 1×3×32×32 → 1×10\n"


def test_two_inputs_do_not_fit_and_the_fix_names_the_inputs(cli, two_inputs):
    code, out, err = cli("check", f"{two_inputs}:Net", "--input", "1x3x32x32", "--input", "1x3x32x32")
    assert (code, err) == (1, "")
    assert out.splitlines() == [
        "✗ Net does not fit inputs left 1×3×32×32, right 1×3×32×32",
        "  at node   'head'  Linear(1152→10)",
        "  expected  1,152 input features",
        "  got       6,272 features",
        "  Linear(1152, 10) receives 6,272 features at inputs left 1×3×32×32, right 1×3×32×32",
        "  fix 1: set in_features=6272",
        "  fix 2: use 17×17 for inputs 1 and 2 ('left', 'right') (gives 1,152; sizes 16 to 17 all work)",
        "          --input 1x3x17x17 --input 1x3x17x17",
    ]
    # The proposed inputs, given back to check: the model fits them.
    code, out, _ = cli("check", f"{two_inputs}:Net", "--input", "1x3x17x17", "--input", "1x3x17x17")
    assert code == 0 and out.startswith("✓ Net fits inputs left 1×3×17×17, right 1×3×17×17 → 1×10")


def test_image_and_token_ids_keep_their_element_type(cli, two_inputs):
    argv = ["check", f"{two_inputs}:ImageText", "--input", "1x3x32x32", "--input", "1x77:int64"]
    code, out, _ = cli(*argv)
    assert code == 1 and out.splitlines()[0] == "✗ ImageText does not fit inputs image 1×3×32×32, tokens 1×77 int64"
    assert out.splitlines()[-2:] == ["  fix 2: use 7×7 for input 1 ('image') (gives 32; sizes 4 to 7 all work)",
                                     "          --input 1x3x7x7 --input 1x77:int64"]
    code, out, _ = cli(*argv, "--json")
    data = json.loads(out)
    assert code == 1 and data["input_shapes"] == [[1, 3, 32, 32], [1, 77]]
    assert data["input_dtypes"] == ["float32", "int64"] and data["input_labels"] == ["image", "tokens"]
    assert data["fix_details"][1]["kind"] == "input" and data["fix_details"][1]["value"] == [0]
    code, _, _ = cli("check", f"{two_inputs}:ImageText", "--input", "1x3x7x7", "--input", "1x77:int64")
    assert code == 0


@pytest.mark.parametrize("args, message", [
    (["--input", "1x3x32x32"], "--input: Net takes 2 input(s) (left, right), got 1 shape(s)"),
    ([], "--input: Net has no default input shape; give one"),
    (["--input", "1x3x32x32", "--input", "1x3x32x32:int65"], "--input: element type 'int65' is not one of"),
    (["--input", "1x3x32x32", "--input", "1x3x0x32"], "--input: must be ≥ 1, got 0"),
    (["--input", "1x3x32x32", "--input", "1x3x32x32", "--input-range", "8..64"],
     "--input-range: scans the square sizes of a model's only input, but Net takes 2 inputs (left, right)"),
    (["--input-range", "8..64"], "--input-range: scans the square sizes of a model's only input"),
])
def test_two_input_usage_errors_exit_2_in_one_line(cli, two_inputs, args, message):
    code, out, err = cli("check", f"{two_inputs}:Net", *args)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith(f"shapecalc: error: {message}"), err


def test_input_range_takes_one_input_only(cli):
    code, out, err = cli("check", "alexnet", "--input", "1x1x224x224", "--input", "1x1x224x224",
                         "--input-range", "64..128")
    assert code == 2 and out == "" and err == (
        "shapecalc: error: --input-range: scans the square sizes of a model's only input, but 2 --input "
        "were given; check several inputs without --input-range, one --input per input\n")
    code, _, err = cli("check", "alexnet", "--input", "1x1x224x224", "--input", "1x1x224x224")
    assert code == 2 and "--input: alexnet takes 1 input(s) (input), got 2 shape(s)" in err


def test_a_forward_that_raises_is_one_line_with_exit_1(cli, tmp_path):
    from test_fx_hooks import RAISING_NET

    path = tmp_path / "raising.py"
    path.write_text(RAISING_NET)
    line = next(i for i, t in enumerate(RAISING_NET.splitlines(), 1) if "raise ValueError" in t)
    code, out, err = cli("check", f"{path}:Refuses", "--input", "1x3x32x32")
    assert code == 1 and err == ""
    assert out.splitlines() == [
        "✗ Refuses does not fit input 1×3×32×32",
        f"  the forward raised ValueError: input too wide for this net (raised at {path}:{line})"]
    code, out, err = cli("show", f"{path}:Refuses", "--input", "1x3x32x32")
    assert code == 1 and out == "" and "Traceback" not in err
    assert err.strip().splitlines() == [
        f"shapecalc: error: the forward raised ValueError: input too wide for this net (raised at {path}:{line})"]
    code, out, _ = cli("check", f"{path}:Refuses", "--input", "1x3x6x6")  # 2×2: no raise
    assert code == 0 and out.startswith("✓ Refuses fits input 1×3×6×6 → 1×16×2×2")


@pytest.mark.parametrize("model, shape", [("alexnet", "1x1x224x224"), ("alexnet", "1x1x64x64"),
                                          ("lenet", "1x1x28x28"), ("resnet18", "1x3x31x31")])
def test_check_prints_the_verdict_the_notebook_shows(cli, model, shape):
    """One wording of the verdict: ``check`` prints what ``str(diagnose(...))`` says."""
    from shapecalc.diagnose import diagnose

    code, out, _ = cli("check", model, "--input", shape)
    diag = diagnose(model, tuple(int(v) for v in shape.split("x")))
    assert out == str(diag) + "\n" and code == (0 if diag.fits else 1)
