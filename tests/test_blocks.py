"""Spec blocks as DAGs: residual additions, concatenated branches, nested paths and their errors.

Errors at a merge must name the merge node's full path and BOTH shapes (and the nodes that
produced them), because "cannot add" alone does not tell anyone which branch is wrong.
"""

from __future__ import annotations

import pytest

from shapecalc import analyze
from shapecalc.core.blocks import Branches, Residual, Sequential
from shapecalc.core.errors import ShapeError, SpecError
from shapecalc.core.layers import BatchNorm2d, Conv2d, MaxPool2d, ReLU


def _stage3(stride: int) -> Sequential:
    body = Sequential(conv1=Conv2d(8, 8, 3, padding=1), bn1=BatchNorm2d(8), relu=ReLU(),
                      conv2=Conv2d(8, 8, 3, stride=stride, padding=1))
    return Sequential(stem=Conv2d(3, 8, 1), stage3=Sequential(block1=Residual(body, post=ReLU())))


def test_nested_paths_in_records_and_blocks():
    a = analyze(_stage3(1), (1, 3, 16, 16))
    names = [r.name for r in a.records]
    assert "stage3.block1.body.conv2" in names and "stage3.block1.add" in names
    assert a.record("stage3.block1.body.conv2").depth == 3
    assert a.blocks["stage3.block1"].type == "Residual"
    assert a.blocks["stage3"].output_shape == (1, 8, 16, 16)
    add = a.record("stage3.block1.add")
    assert add.input_shapes == ((1, 8, 16, 16), (1, 8, 16, 16))


def test_residual_shape_mismatch_names_node_and_both_shapes():
    with pytest.raises(ShapeError) as info:
        analyze(_stage3(2), (1, 3, 16, 16))
    err = info.value
    assert err.node == "stage3.block1.add"
    text = str(err)
    assert "'stage3.block1.add'" in text
    assert "1×8×8×8" in text and "1×8×16×16" in text
    assert "'stage3.block1.body.conv2' 1×8×8×8" in text and "'stem' 1×8×16×16" in text
    assert err.numbers["shapes"] == [[1, 8, 8, 8], [1, 8, 16, 16]]


def test_residual_with_projection_shortcut_fits():
    body = Sequential(conv=Conv2d(3, 16, 3, stride=2, padding=1))
    block = Residual(body, shortcut=Conv2d(3, 16, 1, stride=2), post=ReLU())
    a = analyze(Sequential(block1=block), (2, 3, 9, 9))
    assert a.output_shape == (2, 16, 5, 5)
    assert a.record("block1.shortcut").output_shape == (2, 16, 5, 5)


def test_concat_adds_channels():
    inc = Branches(p1=Conv2d(4, 6, 1), p2=Sequential(conv=Conv2d(4, 10, 3, padding=1)),
                   p3=MaxPool2d(3, stride=1, padding=1))
    a = analyze(Sequential(inception=inc), (1, 4, 7, 7))
    assert a.record("inception.cat").output_shape == (1, 6 + 10 + 4, 7, 7)


def test_concat_spatial_mismatch_names_node_and_both_shapes():
    inc = Branches(p1=Conv2d(4, 6, 1), p2=Sequential(conv=Conv2d(4, 10, 3)))  # 3×3 without padding
    with pytest.raises(ShapeError) as info:
        analyze(Sequential(b3=Sequential(inception1=inc)), (1, 4, 7, 7))
    text = str(info.value)
    assert info.value.node == "b3.inception1.cat"
    assert "1×6×7×7" in text and "1×10×5×5" in text
    assert "'b3.inception1.p1' 1×6×7×7" in text and "'b3.inception1.p2.conv' 1×10×5×5" in text


def test_identity_branch_is_a_dense_connection():
    dense = Branches(identity=Sequential(), conv=Conv2d(5, 3, 3, padding=1))
    a = analyze(Sequential(layer=dense), (1, 5, 6, 6))
    assert a.output_shape == (1, 8, 6, 6)
    assert a.record("layer.cat").input_shapes == ((1, 5, 6, 6), (1, 3, 6, 6))


def test_error_inside_nested_block_names_the_full_path():
    model = Sequential(stage3=Sequential(block1=Sequential(conv2=Conv2d(3, 4, 9))))
    with pytest.raises(ShapeError) as info:
        analyze(model, (1, 3, 5, 5))
    assert info.value.node == "stage3.block1.conv2"
    assert "stage3.block1.conv2" in str(info.value)


def test_bad_specs_are_refused():
    with pytest.raises(SpecError, match="at least two"):
        Branches(Conv2d(1, 1, 1))
    with pytest.raises(SpecError, match="contain no '.'"):
        Sequential(**{"a.b": ReLU()})
    with pytest.raises(SpecError, match="not both"):
        Sequential(ReLU(), named=ReLU())
