"""The analysis pass over DAGs: merges, located errors, shared weights, block roll-ups."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import shapecalc

from shapecalc.core.blocks import Branches, Residual, Sequential
from shapecalc.core.errors import ShapeError
from shapecalc.core.graph import GraphBuilder, analyze_graph
from shapecalc.diagnose.size_search import smallest_input
from shapecalc.core.layers import (
    Add, AvgPool2d, BatchNorm2d, Concat, Conv2d, Flatten, Linear, MaxPool2d, ReLU,
)
from shapecalc.models.zoo.d2l import alexnet


def basic_block(c_in: int, c_out: int, stride: int = 1) -> Residual:
    """A ResNet basic block; a 1×1 projection when the shape changes."""
    body = Sequential(
        conv1=Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        bn1=BatchNorm2d(c_out), relu=ReLU(),
        conv2=Conv2d(c_out, c_out, 3, padding=1, bias=False), bn2=BatchNorm2d(c_out),
    )
    shortcut = None
    if stride != 1 or c_in != c_out:
        shortcut = Sequential(conv=Conv2d(c_in, c_out, 1, stride=stride, bias=False), bn=BatchNorm2d(c_out))
    return Residual(body, shortcut, post=ReLU())


def inception_like(c_in: int) -> Branches:
    return Branches(
        b1=Conv2d(c_in, 8, 1),
        b3=Sequential(Conv2d(c_in, 4, 1), ReLU(), Conv2d(4, 6, 3, padding=1)),
        pool=Sequential(MaxPool2d(3, stride=1, padding=1), Conv2d(c_in, 2, 1)),
    )


def small_net() -> Sequential:
    return Sequential(
        stem=Conv2d(3, 16, 3, padding=1),
        res=Sequential(basic_block(16, 16), basic_block(16, 32, stride=2)),
        mix=inception_like(32),
        head=Sequential(AvgPool2d(2), Flatten(), Linear(None, 10)),
    )


def test_residual_and_concat_shapes():
    result = analyze_graph(small_net().to_graph("net"), (2, 3, 16, 16))
    assert result.record("res.0.add").output_shape == (2, 16, 16, 16)
    assert result.record("res.1.shortcut.conv").output_shape == (2, 32, 8, 8)
    assert result.record("mix.cat").output_shape == (2, 8 + 6 + 2, 8, 8)
    assert result.record("head.2").description == "Linear(256→10)"  # 16 channels · 4·4, inferred
    assert result.output_shape == (2, 10)


def test_built_module_agrees_node_by_node_and_in_parameters():
    from shapecalc.models.torch_models import build_module, verify

    torch = pytest.importorskip("torch")
    spec = small_net()
    checks = verify(spec, (2, 3, 16, 16))
    assert checks and all(c.ok for c in checks)
    # Every node but the merges (functional + / cat inside their block) is measured by a hook.
    unmeasured = {c.name for c in checks if c.torch is None}
    assert unmeasured == {"res.0.add", "res.1.add", "mix.cat"}
    module = build_module(spec, (2, 3, 16, 16))
    result = analyze_graph(spec.to_graph(), (2, 3, 16, 16))
    assert result.total_params == sum(p.numel() for p in module.parameters())
    assert tuple(module(torch.zeros(2, 3, 16, 16)).shape) == result.output_shape


def test_add_mismatch_names_both_shapes_and_the_node():
    spec = Sequential(Conv2d(3, 8, 3), Residual(Conv2d(8, 8, 3)))  # body shrinks, identity doesn't
    with pytest.raises(ShapeError) as info:
        analyze_graph(spec.to_graph(), (1, 3, 12, 12))
    err = info.value
    assert err.node == "1.add"
    assert "1×8×8×8" in str(err) and "1×8×10×10" in str(err)
    assert str(err).startswith("node '1.add' Add()")


def test_concat_mismatch_names_the_dimension():
    spec = Branches(a=Conv2d(3, 4, 3), b=Conv2d(3, 4, 1))
    with pytest.raises(ShapeError) as info:
        analyze_graph(spec.to_graph(), (1, 3, 9, 9))
    assert info.value.node == "cat"
    assert "1×4×7×7" in str(info.value) and "1×4×9×9" in str(info.value) and "dim 1" in str(info.value)


def test_error_is_located_at_the_first_failing_node():
    with pytest.raises(ShapeError) as info:
        analyze_graph(alexnet().to_graph(), (1, 1, 64, 64))
    assert info.value.node == "12" and info.value.layer.startswith("MaxPool2d")


def test_shared_weights_are_counted_once_but_run_twice():
    conv = Conv2d(4, 4, 3, padding=1)
    b = GraphBuilder("tied")
    first = b.add("conv_a", conv, (b.input_name,), param_key="shared")
    second = b.add("conv_b", conv, (first,), param_key="shared")
    graph = b.finish(b.add("sum", Add(), (first, second)))
    result = analyze_graph(graph, (1, 4, 6, 6))
    per_use = 4 * 4 * 9 + 4
    assert result.total_params == per_use
    assert [r.shared for r in result.records] == [False, True, False]
    assert result.total_macs == 2 * per_use * 36


def test_block_records_sum_their_children():
    result = analyze_graph(small_net().to_graph(), (1, 3, 16, 16))
    for path, block in result.blocks.items():
        children = [r for r in result.records if r.name.startswith(path + ".")]
        assert block.params == sum(r.params for r in children if not r.shared)
        assert block.macs == sum(r.macs for r in children)
        assert block.is_block
    assert result.blocks["res.1"].input_shape == (1, 16, 16, 16)
    assert result.blocks["res.1"].output_shape == (1, 32, 8, 8)
    assert sum(result.blocks[p].params for p in ("stem", "res", "mix", "head") if p in result.blocks) \
        + result.record("stem").params == result.total_params


def test_rows_put_blocks_before_their_children_and_cut_at_depth():
    result = analyze_graph(small_net().to_graph(), (1, 3, 16, 16))
    names = [r.name for r in result.rows()]
    assert names.index("res") < names.index("res.0") < names.index("res.0.body.conv1")
    shallow = [r.name for r in result.rows(depth=0)]
    assert shallow == ["stem", "res", "mix", "head"]


def test_receptive_field_through_a_merge_is_the_widest_branch():
    result = analyze_graph(inception_like(3).to_graph(), (1, 3, 10, 10))
    rf_h = result.record("cat").rf[0]
    assert rf_h.size == 3  # the 3×3 branch (the 3×3 pool is 3 too); the 1×1 branch sees 1


def test_smallest_input_of_alexnet_is_65():
    graph = alexnet().to_graph()
    assert smallest_input(graph, (1, 1, 224, 224)) == 65
    analyze_graph(graph, (1, 1, 65, 65))
    with pytest.raises(ShapeError):
        analyze_graph(graph, (1, 1, 64, 64))


@given(n=st.integers(1, 90))
def test_smallest_input_is_the_first_size_that_works(n):
    """Valid sizes for a chain of valid-padding layers form an up-set starting at the minimum."""
    graph = Sequential(Conv2d(1, 2, 5, stride=2), MaxPool2d(3, stride=2), Conv2d(2, 2, 3)).to_graph()
    low = smallest_input(graph, (1, 1, 8, 8))
    try:
        analyze_graph(graph, (1, 1, n, n))
        works = True
    except ShapeError:
        works = False
    assert works == (n >= low)


def test_activation_and_parameter_bytes_follow_the_dtype():
    graph = Sequential(Conv2d(1, 2, 3), ReLU()).to_graph()
    r32 = analyze_graph(graph, (1, 1, 5, 5))
    r16 = analyze_graph(graph, (1, 1, 5, 5), dtype="float16")
    assert r32.activation_bytes == 2 * (2 * 3 * 3) * 4 and r16.activation_bytes == r32.activation_bytes // 2
    assert r32.param_bytes == (2 * 9 + 2) * 4
    assert r32.total_flops == 2 * r32.total_macs
    with pytest.raises(ValueError):
        analyze_graph(graph, (1, 1, 5, 5), dtype="float7")


def test_concat_then_add_dag_matches_hand_count():
    b = GraphBuilder("dag")
    x = b.input_name
    a = b.add("a", Conv2d(2, 3, 1), (x,))
    c = b.add("c", Conv2d(2, 5, 1), (x,))
    cat = b.add("cat", Concat(1), (a, c))
    proj = b.add("proj", Conv2d(2, 8, 1, bias=False), (x,))
    out = b.add("add", Add(), (cat, proj))
    result = analyze_graph(b.finish(out), (1, 2, 4, 4))
    assert result.output_shape == (1, 8, 4, 4)
    assert result.total_params == (2 * 3 + 3) + (2 * 5 + 5) + 2 * 8
    assert result.total_macs == result.total_params * 16


@pytest.mark.parametrize("name", ["resnet18", "googlenet", "alexnet"])
def test_the_graph_answers_its_block_tree(name):
    graph = shapecalc.load_model(name).graph
    parents = graph.parents()
    children = graph.children()
    members = graph.members()
    for node in graph.nodes:
        up = graph.blocks_of(node.name)
        assert list(up) == sorted((b for b in graph.blocks if node.name.startswith(b + ".")), key=len)
        assert parents[node.name] == graph.parent(node.name) == (up[-1] if up else None)
        assert node.name in children[parents[node.name] or ""]
        assert all(node.name in members[b] for b in up)
    listed = [c for kids in children.values() for c in kids]
    assert sorted(listed) == sorted([n.name for n in graph.nodes] + list(graph.blocks))
    for block, kids in children.items():
        assert all(parents[k] == (block or None) for k in kids)
