"""Transformer tables read as trees, whichever route imported the model (fx or hooks): block
rows follow the module hierarchy, ``depth`` cuts it, functional glue is folded into its
module's row unless asked for, shapes read ``1×128``, and token models show no RF column."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
timm = pytest.importorskip("timm")

from shapecalc import analyze, load_model  # noqa: E402
from shapecalc.torch_bridge.fx_import import Route  # noqa: E402

DATA = Path(__file__).resolve().parent / "data" / "hf"


@pytest.fixture(scope="module")
def bert():
    """BERT-base's shape on the meta device, recorded with hooks (fx cannot trace it)."""
    src = load_model("hf:bert", meta=True)
    assert src.torch_import.route is Route.HOOKS
    return src, analyze(src)


@pytest.fixture(scope="module")
def vit():
    """A timm ViT, traced with torch.fx."""
    src = load_model("timm:vit_tiny_patch16_224(img_size=32, patch_size=8, num_classes=10)")
    return src, analyze(src)


def module_tree(module) -> dict[str, str]:
    """Every submodule: path → class name."""
    return {path: type(sub).__name__ for path, sub in module.named_modules() if path}


def test_depth_2_gives_the_12_bert_layers(bert):
    _src, result = bert
    text = result.table(depth=2)
    rows = [line for line in text.splitlines() if "BertLayer" in line]
    assert len(rows) == 12 and all("(collapsed)" in r for r in rows)
    assert "query" not in text and "BertSelfAttention" not in text  # deeper rows are folded into them


@pytest.mark.parametrize("which", ["bert", "vit"])
def test_block_rows_are_the_module_hierarchy(request, which):
    src, result = request.getfixturevalue(which)
    tree = module_tree(src.torch_import.module)
    assert result.blocks, "no tree at all"
    for path, block in result.blocks.items():
        assert tree.get(path) == block.label, path
    layers = [p for p, name in tree.items() if name in ("BertLayer", "Block")]
    assert layers and all(p in result.blocks for p in layers)


@pytest.mark.parametrize("which", ["bert", "vit"])
def test_glue_is_folded_into_its_modules_row(request, which):
    _src, result = request.getfixturevalue(which)
    glue = [r for r in result.records if result.is_glue(r)]
    assert glue, "the forward's own code ran no functions?"
    folded = [r.name for r in result.rows()]
    shown = {r.name for r in result.rows(ops=False)}
    assert not shown & {r.name for r in glue}
    assert set(folded) - shown == {r.name for r in glue}
    # the block that holds a folded row counts its MACs: a block's MACs are all of its nodes'
    for path, block in result.blocks.items():
        inside = [r.macs for r in result.records if r.name.startswith(path + ".")]
        if all(m is not None for m in inside):
            assert block.macs == sum(inside), path
    assert any(r.macs for r in glue if r.macs is not None)  # attention's matmuls, for one


def test_ops_shows_the_glue_rows(bert):
    _src, result = bert
    plain, with_ops = result.render("table"), result.render("table", ops=True)
    assert "matmul" not in plain and "matmul" in with_ops
    assert len(with_ops.splitlines()) > len(plain.splitlines())


def test_shapes_read_with_times_signs(bert):
    _src, result = bert
    text = result.render("table", ops=True)
    assert not re.search(r"\(1, \d+", text) and "ops → (" not in text
    assert "1×128×768" in text


def header(result) -> list[str]:
    line = next(line for line in result.table().splitlines() if "output shape" in line)
    return line.split()


def test_rf_column_only_for_spatial_inputs(bert, vit):
    assert "RF" not in header(bert[1])
    assert "RF" in header(vit[1])


def test_outputs_are_counted_in_words(bert):
    _src, result = bert
    assert "forward returns 2 outputs: last_hidden_state, pooler_output" in result.table()
    one = analyze(f"hf:{DATA / 'gpt2-tiny'}")
    assert "forward returns 1 output: logits" in one.table()


def test_spec_models_keep_their_merge_rows():
    """A zoo model's merges are layers its author wrote: never folded."""
    result = analyze("resnet18")
    assert not any(result.is_glue(r) for r in result.records)
    assert len(list(result.rows(ops=False))) == len(list(result.rows()))
