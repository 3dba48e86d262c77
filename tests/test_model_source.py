"""The loaded-model value and the library's argument checks: one rule for "which input", typed
errors that name the parameter, numpy integers accepted and made ``int``."""

from __future__ import annotations

import json
import math

import pytest

import shapecalc
from shapecalc import ArgumentError, ShapecalcError, SpecError, analyze, load_model, minimum_input
from shapecalc.diagnose import diagnose, scan_inputs
from shapecalc.models.model_source import ModelSource, shape_arg, size_arg

np = pytest.importorskip("numpy")


def test_numpy_integers_become_int_everywhere():
    shape = (np.int64(1), np.int32(1), np.int64(224), np.uint16(224))
    result = analyze("alexnet", shape)
    assert result.input_shape == (1, 1, 224, 224)
    assert all(type(v) is int for v in result.input_shape)
    assert json.loads(result.to_json())["input_shape"] == [1, 1, 224, 224]
    assert minimum_input("alexnet", np.array([1, 1, 224, 224])) == 65
    assert diagnose("alexnet", shape).fits
    assert scan_inputs("alexnet", shape, np.int64(64), np.int64(66)).fits == [65, 66]


@pytest.mark.parametrize("bad, words", [
    (None, r"input_shape\[2\]: expected an integer \(a size\), got None \(NoneType\)"),
    ("224", r"input_shape\[2\]: expected an integer \(a size\), got '224' \(str\)"),
    (224.0, r"input_shape\[2\]: expected an integer \(a size\), got the float 224.0"),
    (math.nan, r"input_shape\[2\]: expected an integer \(a size\), got the float nan"),
    (True, r"input_shape\[2\]: expected an integer \(a size\), got the bool True"),
    (np.bool_(True), r"input_shape\[2\]: expected an integer \(a size\), got the bool (np\.)?True"),
    (0, r"input_shape\[2\]: expected a size ≥ 1, got 0"),
    (-5, r"input_shape\[2\]: expected a size ≥ 1, got -5"),
    ([224], r"input_shape\[2\]: expected an integer \(a size\), got \[224\] \(list\)"),
])
def test_bad_sizes_are_typed_errors_naming_the_parameter(bad, words):
    shape = (1, 1, bad, 224)
    for call in (lambda: analyze("alexnet", shape), lambda: minimum_input("alexnet", shape),
                 lambda: diagnose("alexnet", shape)):
        with pytest.raises(ArgumentError, match=words) as err:
            call()
        assert err.value.param == "input_shape[2]" and isinstance(err.value, ShapecalcError)


@pytest.mark.parametrize("bad, words", [
    ("1x1x224x224", "expected a tuple of 2 to 5 positive integers"),
    (224, "expected a tuple of 2 to 5 positive integers"),
    ((224,), "expected 2 to 5 sizes"),
    ((1, 1, 1, 1, 1, 1), "expected 2 to 5 sizes"),
])
def test_bad_shapes_are_typed_errors(bad, words):
    with pytest.raises(ArgumentError, match=f"^input_shape: {words}"):
        analyze("alexnet", bad)


def test_other_arguments_are_checked():
    with pytest.raises(ArgumentError, match="^dtype: expected one of float64, float32"):
        analyze("alexnet", dtype="float33")
    with pytest.raises(ArgumentError, match="^dtype: "):
        analyze("alexnet", dtype=None)
    with pytest.raises(ArgumentError, match="^model: cannot analyse a int"):
        load_model(3)
    with pytest.raises(ArgumentError, match="^high: must be ≥ low"):
        scan_inputs("alexnet", None, 70, 60)
    assert size_arg(np.int8(3), "x") == 3 and shape_arg([np.int64(2), 3]) == (2, 3)


def test_input_shape_is_the_given_one_or_the_default():
    src = load_model("lenet")
    assert src.input_shape() == (1, 1, 28, 28)
    assert src.input_shape((2, 1, 32, 32)) == (2, 1, 32, 32)
    bare = ModelSource("bare", src.graph, None)
    with pytest.raises(ArgumentError, match="^--input: bare has no default input shape; give one$"):
        bare.input_shape(None, "--input")
    assert bare.graph_at((1, 1, 28, 28)) is src.graph and bare.scannable


def test_a_model_recorded_at_one_size_is_not_scanned(tmp_path):
    pytest.importorskip("torch")
    path = tmp_path / "branchy.py"
    path.write_text(
        "import torch.nn as nn\n"
        "class Net(nn.Module):\n"
        "    input_shape = (1, 1, 8, 8)\n"
        "    def __init__(self):\n        super().__init__()\n        self.conv = nn.Conv2d(1, 2, 3)\n"
        "    def forward(self, x):\n"
        "        if x.sum() > 0:\n            return self.conv(x)\n        return self.conv(x)\n")
    src = load_model(f"{path}:Net")
    assert not src.scannable and src.graph is not None
    assert analyze(src, (1, 1, 10, 10)).output_shape == (1, 2, 8, 8)  # recorded again at 10×10
    with pytest.raises(SpecError, match="recorded at one input size.*cannot be scanned"):
        minimum_input(src)
    with pytest.raises(SpecError, match="an input range cannot be scanned"):
        scan_inputs(src, None, 8, 12)


def test_the_package_exports_the_error_tree():
    assert issubclass(shapecalc.ShapeError, shapecalc.LayerError)
    assert issubclass(shapecalc.ConfigError, shapecalc.LayerError)
    assert not issubclass(shapecalc.ConfigError, shapecalc.ShapeError)
    assert shapecalc.ModelSource is ModelSource


def test_oversized_sizes_are_one_line_without_printing_them():
    huge = 10 ** 5000  # beyond Python's 4,300-digit str() limit
    with pytest.raises(ArgumentError, match=r"^input_shape\[2\]: a size has about 500\d digits; "
                                            r"at most 9,223,372,036,854,775,807"):
        analyze("alexnet", (1, 1, huge, 4))
    assert analyze("alexnet", (1, 1, 2 ** 40, 2 ** 40)).output_shape == (1, 10)


def test_an_exit_in_a_forward_recorded_per_size_is_one_line(tmp_path):
    pytest.importorskip("torch")
    path = tmp_path / "quitter.py"
    path.write_text(
        "import sys\nimport torch.nn as nn\n"
        "class Net(nn.Module):\n"
        "    input_shape = (1, 1, 8, 8)\n"
        "    def __init__(self):\n        super().__init__()\n        self.conv = nn.Conv2d(1, 2, 3)\n"
        "    def forward(self, x):\n"
        "        if x.shape[-1] > 8 and x.sum() >= 0:\n            sys.exit(4)\n"
        "        return self.conv(x)\n")
    src = load_model(f"{path}:Net")
    assert not src.scannable
    with pytest.raises(SpecError, match=r"running Net.forward raised SystemExit 4"):
        analyze(src, (1, 1, 10, 10))
