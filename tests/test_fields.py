"""Field checks (layers/fields.py): real annotations, NumPy normalisation, API shapes, messages."""

from __future__ import annotations

import json
import math

import pytest

import shapecalc
from shapecalc.core.errors import FieldError, ShapecalcError
from shapecalc.core.layers import Conv2d, Upsample, layer_to_dict
from shapecalc.core.layers.fields import MAX_INT, conform, describe_type, short_repr

np = pytest.importorskip("numpy")


@pytest.mark.parametrize("hint, words", [
    (int, "an integer"),
    (int | None, "an integer or null"),
    (int | tuple[int, ...], "an integer or a list of integers"),
    (float | tuple[float, ...] | None, "a number, a list of numbers or null"),
    (bool | None, "true or false or null"),
])
def test_types_are_described_in_words(hint, words):
    assert describe_type(hint) == words


def test_conform_normalises_numpy_and_lists():
    assert conform(np.int64(3), int, "k") == 3 and type(conform(np.int64(3), int, "k")) is int
    assert conform([np.int32(1), 2], tuple[int, ...], "k") == (1, 2)
    assert type(conform(np.float32(0.5), float, "p")) is float
    assert conform(np.bool_(True), bool, "b") is True
    with pytest.raises(FieldError, match="k: expected an integer"):
        conform(np.float64(3.0), int, "k")
    with pytest.raises(FieldError, match="finite"):
        conform(math.inf, float, "alpha")
    assert conform(-math.inf, float, "value", non_finite=True) == -math.inf
    with pytest.raises(FieldError, match="too large"):
        conform(MAX_INT + 1, int, "n")
    with pytest.raises(FieldError, match="more than a tensor has dimensions"):
        conform([1] * 100, tuple[int, ...], "dims")


def test_short_repr_survives_the_digit_limit():
    assert short_repr(10**5000) == "an integer of about 5001 digits"
    assert len(short_repr("x" * 10_000)) <= 60
    nested: list = []
    nested.append(nested)
    assert short_repr(nested)  # a recursive list is printed by repr as [[...]]


@pytest.mark.parametrize("shape", [(1, 1, 224.0, 224), (1, 1, math.nan, 224), (1, True, 224, 224),
                                   (1, None, 224, 224), "1x1x224x224", (1, 0, 8, 8), (1, -3, 8, 8),
                                   None, (1, 1, 10**30, 8), ()])
def test_api_refuses_bad_input_shapes_naming_the_parameter(shape):
    with pytest.raises(ShapecalcError) as err:
        shapecalc.analyze("alexnet", shape) if shape is not None else shapecalc.analyze(shapecalc.core.blocks.Sequential())
    assert "input_shape" in str(err.value) or shape is None
    assert "\n" not in str(err.value)


def test_api_accepts_numpy_sizes_everywhere_and_json_works():
    shape = tuple(np.int64(v) for v in (1, 1, 224, 224))
    result = shapecalc.analyze("alexnet", shape)
    assert result.input_shape == (1, 1, 224, 224) and type(result.input_shape[2]) is int
    json.loads(result.to_json())
    assert shapecalc.minimum_input("alexnet", np.array([1, 1, 224, 224])) == shapecalc.minimum_input(
        "alexnet", (1, 1, 224, 224))
    layer = Upsample(size=(np.int64(4), np.int64(4)), scale_factor=None)
    assert json.dumps(layer_to_dict(layer)) and layer.size == (4, 4)
    conv = Conv2d(np.int8(3), np.int64(8), np.int16(3), padding=np.int32(1))
    assert layer_to_dict(conv) == {"type": "Conv2d", "in_channels": 3, "out_channels": 8, "kernel_size": 3,
                                   "padding": 1}
