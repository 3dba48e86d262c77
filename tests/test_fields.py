"""Field checks (layers/fields.py): real annotations, NumPy normalisation, API shapes, messages."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


# ------------------------------------------------------------------ declared maxima (issue 21)
def _number_fields() -> list[tuple[str, str]]:
    import dataclasses
    import typing

    from shapecalc.core.layers import LAYER_TYPES

    out = []
    for type_name, cls in sorted(LAYER_TYPES.items()):
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            text = str(hints.get(f.name))
            if f.init and ("int" in text.replace("Literal", "")) and "bool" not in text.split("|")[0]:
                out.append((type_name, f.name))
    return out


NUMBER_FIELDS = _number_fields()


def test_every_integer_field_of_every_layer_has_a_declared_maximum():
    from shapecalc.core.layers.fields import FIELD_LIMITS

    missing = sorted({name for _, name in NUMBER_FIELDS} - set(FIELD_LIMITS))
    assert not missing, missing
    assert all(bound.high is not None for bound in FIELD_LIMITS.values())


def _minimal(cls) -> dict:
    import dataclasses
    import typing

    hints = typing.get_type_hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        if f.init and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            out[f.name] = None if f.name in cls.inferred else (1 if "int" in str(hints[f.name]).split("tuple")[0] else (1,))
    return out


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(NUMBER_FIELDS), st.integers(1, 2**70), st.booleans())
def test_a_field_past_its_maximum_is_one_line_naming_it_and_the_range(case, over, as_tuple):
    from shapecalc.core.layers import LAYER_TYPES, layer_from_dict
    from shapecalc.core.layers.fields import FIELD_LIMITS

    type_name, name = case
    cls = LAYER_TYPES[type_name]
    bound = FIELD_LIMITS[name]
    value = int(bound.high) + over
    kwargs = {**_minimal(cls), name: (value,) if as_tuple else value}
    for build in (lambda: cls(**kwargs), lambda: layer_from_dict({"type": type_name, **kwargs})):
        with pytest.raises(ShapecalcError) as err:
            build()
        text = str(err.value)
        assert "\n" not in text and name in text, text
        if isinstance(err.value, FieldError) and err.value.field == name:
            assert f"≤ {int(bound.high):,}" in text or "too large" in text or "expected" in text, text


def test_a_field_at_its_maximum_is_accepted_and_analysed():
    from shapecalc import analyze
    from shapecalc.core.blocks import Sequential
    from shapecalc.core.layers import LSTM
    from shapecalc.core.layers.fields import MAX_FIELD_SIZE, MAX_RECURRENT_LAYERS

    assert analyze(Sequential(Conv2d(3, 8, 3, stride=MAX_FIELD_SIZE)), (1, 3, 8, 8)).output_shape == (1, 8, 1, 1)
    lstm = LSTM(4, 8, num_layers=MAX_RECURRENT_LAYERS)
    assert analyze(Sequential(lstm), (5, 1, 4)).total_params > 0
    with pytest.raises(FieldError, match=r"^LSTM: num_layers: must be ≤ 1,024 \(torch builds one module "
                                         r"per layer\), got 1025$"):
        LSTM(4, 8, num_layers=MAX_RECURRENT_LAYERS + 1)
