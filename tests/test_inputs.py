"""One ``Inputs`` value and one element-type table, the same at every entry point.

The API (``analyze``, ``diagnose``, ``summary``) and the CLI's ``--input SHAPE:DTYPE`` accept
exactly the names of ``DTYPE_BYTES`` and refuse every other name, each naming its own parameter.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import shapecalc
from shapecalc.cli import cli
from shapecalc.cli.model_input import parse_input
from shapecalc.core.errors import ArgumentError, UsageError
from shapecalc.core.inputs import DTYPE_BYTES, Input, Inputs, dtype_name
from shapecalc.diagnose import diagnose

NAMES = sorted(DTYPE_BYTES)
shapes = st.lists(st.integers(1, 64), min_size=2, max_size=5).map(tuple)


@given(st.lists(st.tuples(shapes, st.sampled_from(NAMES)), min_size=1, max_size=4))
def test_inputs_keep_every_shape_and_element_type_in_order(items):
    several = [s for s, _ in items] if len(items) > 1 else items[0][0]
    inputs = Inputs.of(several, [k for _, k in items])
    assert inputs.shapes == tuple(s for s, _ in items)
    assert inputs.dtypes == tuple(k for _, k in items)
    assert inputs.first == items[0][0] and len(inputs) == len(items)
    assert inputs.all_default == all(k == "float32" for _, k in items)


def test_one_element_type_is_every_input_s():
    assert Inputs.of([(1, 3, 8, 8), (1, 7)], "int64").dtypes == ("int64", "int64")
    assert Inputs.of((1, 3, 8, 8)).dtypes == ("float32",)


@pytest.mark.parametrize("name", NAMES)
def test_every_known_element_type_is_accepted_everywhere(name):
    assert dtype_name(name, "x") == name
    assert parse_input(f"1x1x28x28:{name}") == Input((1, 1, 28, 28), name)
    api = shapecalc.analyze("lenet", input_dtypes=[name])
    assert api.input_dtypes == (name,)
    assert api.input_bytes == 28 * 28 * DTYPE_BYTES[name]
    assert diagnose("lenet", input_dtypes=[name]).input_dtypes == (name,)
    out = CliRunner().invoke(cli, ["show", "lenet", "--input", f"1x1x28x28:{name}", "--format", "json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["input_dtypes"] == [name]


@settings(max_examples=30)
@given(st.text(min_size=1, max_size=12).filter(lambda t: t.strip() not in DTYPE_BYTES and ":" not in t
                                                 and t.strip()))
def test_every_other_name_is_refused_everywhere_naming_the_parameter(name):
    with pytest.raises(ArgumentError, match="^input_dtypes: "):
        shapecalc.analyze("lenet", input_dtypes=[name])
    with pytest.raises(ArgumentError, match="^dtype: "):
        shapecalc.analyze("lenet", dtype=name)
    with pytest.raises(UsageError, match="^--input: element type"):
        parse_input(f"1x1x28x28:{name}")


def test_a_torch_dtype_is_read_by_its_name():
    torch = pytest.importorskip("torch")
    assert dtype_name(torch.int64, "dtypes") == "int64"
    assert dtype_name(torch.bfloat16, "dtypes") == "bfloat16"
    with pytest.raises(ArgumentError, match="^dtypes: expected one of"):
        dtype_name(torch.complex64, "dtypes")


def test_a_measured_node_takes_every_element_type():
    """float8 was accepted by the API but crashed measuring a traced module (``torch.float8``
    does not exist); the one table says which torch type each name is made with."""
    torch = pytest.importorskip("torch")

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.shrink = torch.nn.Hardshrink()  # no layer class: measured on the meta device

        def forward(self, x):
            return self.shrink(x)

    for name in ("float8", "float16", "bfloat16", "int64"):
        result = shapecalc.analyze(Net(), (2, 3, 8, 8), input_dtypes=[name])
        assert result.output_shape == (2, 3, 8, 8) and result.input_dtypes == (name,)
        assert type(result.records[0].layer).__name__ == "MeasuredLayer"


def test_an_analysis_holds_one_inputs_value():
    result = shapecalc.analyze("lenet")
    assert isinstance(result.inputs, Inputs)
    assert result.input_shape == result.inputs.first == (1, 1, 28, 28)
    assert result.input_shapes == ((1, 1, 28, 28),) and result.input_dtypes == ("float32",)
