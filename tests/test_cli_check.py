"""``shapecalc check``: exit 0 fits, 1 does not, 2 usage; --input-range; --json."""

from __future__ import annotations

import json

import pytest

from shapecalc.cli import main
from shapecalc.specfile import save_spec
from test_diagnose import alexnet_with


def run(capsys, *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


@pytest.fixture
def buggy_spec(tmp_path):
    return str(save_spec(alexnet_with(9216), tmp_path / "buggy.json", "buggy", (1, 1, 224, 224)))


def test_fits_exit_0(capsys):
    code, out, _ = run(capsys, "check", "alexnet")
    assert code == 0
    assert out.splitlines()[0] == "✓ alexnet fits input 1×1×224×224 → 1×10"
    assert "pixels are dropped at '0', '2', '5', '12'" in out
    code, out, _ = run(capsys, "check", "alexnet", "--input", "1x1x225x225")
    assert code == 0 and "dropped" not in out


def test_does_not_fit_exit_1(capsys, buggy_spec):
    code, out, err = run(capsys, "check", buggy_spec)
    assert code == 1 and err == ""
    lines = out.splitlines()
    assert lines[0] == "✗ buggy does not fit input 1×1×224×224"
    assert lines[1] == "  at node   '14'  Linear(9216→4096)"
    assert lines[2:4] == ["  expected  9216 input features", "  got       6400 features (256×5×5)"]
    assert lines[4] == "  Linear(9216, 4096) receives 6400 features (256×5×5) at input 224×224"
    assert lines[5:] == ["  fix 1: set in_features=6400",
                         "  fix 2: use input 225×225 (gives 256×6×6 = 9216; sizes 225 to 256 all work)"]
    code, _, _ = run(capsys, "check", buggy_spec, "--input", "1x1x227x227")
    assert code == 0


def test_json_verdict(capsys, buggy_spec):
    code, out, _ = run(capsys, "check", buggy_spec, "--json")
    data = json.loads(out)
    assert code == 1 and data["fits"] is False and data["node"] == "14"
    assert data["fixes"][0] == "set in_features=6400" and data["input_shape"] == [1, 1, 224, 224]


def test_input_range(capsys):
    code, out, _ = run(capsys, "check", "alexnet", "--input-range", "32..512")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "alexnet: input 1×1×N×N, N = 32..512"
    assert lines[1] == "  fits       65–512  (448 sizes)"
    assert lines[2] == "  exact      65, 97, …, 481 (every 32)  (no remainder at any layer)"
    assert lines[-2:] == ["  fails at '5'  32", "  fails at '12'  33–64"]


def test_input_range_json_and_no_fit(capsys, buggy_spec):
    code, out, _ = run(capsys, "check", buggy_spec, "--input-range", "200..230", "--json")
    data = json.loads(out)
    assert code == 0 and data["fits"] == [[225, 230]] and data["exact"] == [225]
    assert data["fails"] == {"14": [[200, 224]]}
    code, out, _ = run(capsys, "check", buggy_spec, "--input-range", "100..120")
    assert code == 1 and "fits       none" in out


@pytest.mark.parametrize("argv, message", [
    (["check", "alexnet", "--input", "1x1xax3"], "--input: 'a' is not an integer"),
    (["check", "alexnet", "--input-range", "32-"], "--input-range: expected LOW..HIGH like 32..512"),
    (["check", "alexnet", "--input-range", "64..32"], "--input-range: need 1 ≤ LOW ≤ HIGH, got 64..32"),
    (["check", "alexnet", "--input-range", "1..100000"], "--input-range: at most 8192 sizes"),
])
def test_usage_errors_exit_2(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith(f"shapecalc: error: {message}") and err.count("\n") == 1


def test_model_load_errors_exit_2_in_one_line(capsys, tmp_path):
    """2 means "could not load the model", never "does not fit" (1)."""
    code, _, err = run(capsys, "check", "alexnett")
    assert code == 2 and "did you mean 'alexnet'" in err and err.count("\n") == 1
    bad = tmp_path / "bad.json"
    bad.write_text('{"layers": [}')
    code, _, err = run(capsys, "check", str(bad), "--input", "1x1x8x8")
    assert code == 2 and f"{bad}:1:13: invalid JSON" in err
    syntax = tmp_path / "broken.py"
    syntax.write_text("def (:\n")
    for model in (f"{syntax}:Net", f"{tmp_path / 'missing.py'}:Net", str(tmp_path / "missing.json")):
        code, out, err = run(capsys, "check", model)
        assert code == 2 and out == "" and err.count("\n") == 1, (model, err)


def test_python_target_without_default_input(capsys, tmp_path):
    pytest.importorskip("torch")
    path = tmp_path / "m.py"
    path.write_text("import torch.nn as nn\nclass Net(nn.Sequential):\n"
                    "    def __init__(self):\n        super().__init__(nn.Conv2d(1, 2, 3), nn.Linear(10, 2))\n")
    code, _, err = run(capsys, "check", f"{path}:Net")
    assert code == 2 and "--input: Net has no default input shape" in err
    code, out, _ = run(capsys, "check", f"{path}:Net", "--input", "1x1x12x12")
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


def test_proposed_size_is_checked_through_the_whole_model(capsys):
    code, out, _ = run(capsys, "check", "alexnet", "--input", "1x1x1x1")
    assert code == 1
    assert out.splitlines()[-1] == "  fix 1: use input 65×65 (gives 1×96×15×15; any size from 65 up works)"


def test_unfixable_sizes_say_what_was_searched(capsys, tmp_path):
    spec = tmp_path / "odd.json"  # 9215 features is not 8·k² for any k: no input size can fit
    spec.write_text('{"input": [1, 3, 100000, 100000], "layers": [{"type": "Conv2d", '
                    '"out_channels": 8, "kernel_size": 3}, {"type": "MaxPool2d", "kernel_size": 2}, '
                    '{"type": "Flatten"}, {"type": "Linear", "in_features": 9215, "out_features": 10}]}')
    code, out, _ = run(capsys, "check", str(spec))
    assert code == 1 and out.splitlines()[-1] == "  searched  no square input size gives 9215 features here"


def test_configuration_errors_stop_the_range_scan(capsys, tmp_path):
    spec = tmp_path / "cfg.json"
    spec.write_text('{"input": [1, 3, 8, 8], "layers": [{"type": "ConvTranspose2d", "out_channels": 3, '
                    '"kernel_size": 3, "stride": 2, "output_padding": 2}]}')
    code, out, err = run(capsys, "check", str(spec), "--input-range", "1..8192")
    assert code == 1 and out == "" and "output_padding must be smaller" in err and err.count("\n") == 1


def test_range_scan_stops_at_its_time_budget_and_says_where(capsys, monkeypatch):
    import shapecalc.input_scan as input_scan

    monkeypatch.setattr(input_scan, "SCAN_SECONDS", 0.0)  # only the first size fits the budget
    code, out, _ = run(capsys, "check", "alexnet", "--input-range", "65..8000")
    assert code == 0
    assert out.splitlines()[-1] == ("  stopped    at N = 66 after 0 s; sizes 66..8000 were not "
                                    "scanned (give a narrower range)")
    code, out, _ = run(capsys, "check", "alexnet", "--input-range", "65..8000", "--json")
    assert json.loads(out)["stopped_at"] == 66 and json.loads(out)["fits"] == [[65, 65]]
