"""JSON, CSV and Markdown renderings: the documented keys, the same numbers as the engine."""

from __future__ import annotations

import csv
import io
import json

import pytest

from shapecalc import analyze
from shapecalc.core.blocks import Residual, Sequential
from shapecalc.core.layers import BatchNorm2d, Conv2d, ReLU
from shapecalc.output.formats import COLUMNS, to_csv, to_dict, to_json, to_markdown


@pytest.fixture(scope="module")
def alexnet():
    return analyze("alexnet")


@pytest.fixture(scope="module")
def nested():
    body = Sequential(conv=Conv2d(8, 8, 3, padding=1), bn=BatchNorm2d(8), relu=ReLU())
    return analyze(Sequential(stem=Conv2d(3, 8, 3), res=Residual(body)), (1, 3, 16, 16))


def test_dict_contract(alexnet):
    data = to_dict(alexnet)
    assert data["model"] == "alexnet"
    assert data["input_shape"] == [1, 1, 224, 224] and data["output_shape"] == [1, 10]
    assert data["total_params"] == alexnet.total_params and data["total_macs"] == alexnet.total_macs
    assert data["total_flops"] == 2 * alexnet.total_macs
    assert len(data["layers"]) == len(alexnet.records)
    for layer, rec in zip(data["layers"], alexnet.records):
        assert layer["name"] == rec.name and layer["type"] == rec.type
        assert layer["input_shape"] == list(rec.input_shape)
        assert layer["output_shape"] == list(rec.output_shape)
        assert (layer["params"], layer["macs"]) == (rec.params, rec.macs)
    assert data["layers"][13]["rf"] is None  # Flatten: every output sees the whole input
    assert data["layers"][2]["rf"] == [19, 19]
    assert "explain" not in data["layers"][0]


def test_json_round_trips_and_matches_the_analysis_method(alexnet):
    text = to_json(alexnet)
    assert json.loads(text) == to_dict(alexnet)
    assert alexnet.to_json() == text and alexnet.to_dict() == to_dict(alexnet)
    assert "Conv2d(1→96" in text and "\\u2192" not in text  # readable UTF-8, not escapes
    compact = to_json(alexnet, indent=None, explain=True)
    assert "\n" not in compact and json.loads(compact)["layers"][0]["explain"]


def test_notes_are_text_for_old_readers_and_typed_in_note_details(alexnet):
    layers = to_dict(alexnet)["layers"]
    assert layers[0]["notes"] == ["drops 3 px (H, W)"]
    assert layers[0]["note_details"] == [
        {"kind": "drops", "text": "drops 3 px (H, W)", "px": 3, "axes": ["H", "W"]}]
    flatten = layers[13]
    assert [d["kind"] for d in flatten["note_details"]] == ["flattens"]
    assert flatten["note_details"][0]["total"] == 6400 and flatten["notes"] == ["256×5×5 = 6,400"]
    for layer in layers:  # one detail per text note, in the same order
        assert [d["text"] for d in layer["note_details"]] == layer["notes"]


def test_blocks_are_listed_with_summed_children(nested):
    data = to_dict(nested)
    assert sorted(b["name"] for b in data["blocks"]) == ["res", "res.body"]
    block = next(b for b in data["blocks"] if b["name"] == "res")
    assert block["name"] == "res" and block["type"] == "Residual"
    assert block["params"] == sum(l["params"] for l in data["layers"] if l["name"].startswith("res."))
    assert block["output_shape"] == [1, 8, 14, 14]


def test_csv_has_the_table_columns_in_tree_order(nested):
    rows = list(csv.DictReader(io.StringIO(to_csv(nested))))
    assert tuple(rows[0]) == COLUMNS
    assert [r["name"] for r in rows] == ["stem", "res", "res.body", "res.body.conv", "res.body.bn",
                                         "res.body.relu", "res.add"]
    assert [r["kind"] for r in rows[:3]] == ["layer", "block", "block"]
    assert rows[0]["output_shape"] == "1x8x14x14" and rows[0]["params"] == str(3 * 8 * 9 + 8)
    collapsed = list(csv.DictReader(io.StringIO(to_csv(nested, depth=0))))
    assert [r["name"] for r in collapsed] == ["stem", "res"]


def test_markdown_table_and_totals(nested):
    md = to_markdown(nested)
    lines = md.splitlines()
    assert lines[0] == "| # | name | layer | output shape | params | MACs | RF | notes |"
    assert lines[1] == "|---|---|---|---|---|---|---|---|"
    assert any(line.startswith("|  | **res** | Residual |") for line in lines)
    assert f"- Total params: {nested.total_params:,}" in md
    # every row has the same number of cells as the header
    assert {line.count(" | ") for line in lines if line.startswith("| ")} == {7}
