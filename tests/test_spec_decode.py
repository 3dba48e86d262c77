"""YAML specs stop, with the line, as soon as they hold what no spec within the node budget can
(issue 21: a 31 MB file took 46 s under load only to reach the event budget)."""

from __future__ import annotations

import pytest

from shapecalc.core.errors import SpecError
from shapecalc.models.spec_decode import (MAX_KEYS, MAX_LIST_VALUES, MIN_YAML_CHARS,
                                          YAML_CHARS_PER_NODE, decode, yaml_char_limit)

HEADER = "input: [1, 3, 8, 8]\nlayers:\n"


def test_the_yaml_size_cap_follows_the_node_budget():
    assert yaml_char_limit(200_000) == 200_000 * YAML_CHARS_PER_NODE
    assert yaml_char_limit(10) == MIN_YAML_CHARS
    text = HEADER + "  - {type: ReLU}\n" * (MIN_YAML_CHARS // 17 + 1)
    with pytest.raises(SpecError, match=r"^big.yaml: [\d,]+ characters of YAML; within the node "
                                        r"budget of 1,000 a YAML spec is at most 1,048,576 .*--max-nodes"):
        decode(text, ".yaml", "big.yaml", 1_000)
    data, _ = decode(text, ".yaml", "big.yaml", 200_000)
    assert len(data["layers"]) == MIN_YAML_CHARS // 17 + 1


def test_more_mappings_than_the_node_budget_stop_at_their_line():
    text = HEADER + "  - {type: ReLU}\n" * 11
    assert len(decode(text, ".yaml", "m.yaml", 11)[0]["layers"]) == 11
    with pytest.raises(SpecError, match=r"^m.yaml:13: more than 10 layer or block entries"):
        decode(text, ".yaml", "m.yaml", 10)


def test_a_long_list_of_plain_values_stops_where_no_field_can_hold_it():
    fits = HEADER + "  - {type: ReLU, name: [" + ", ".join(["1"] * MAX_LIST_VALUES) + "]}\n"
    assert len(decode(fits, ".yaml", "l.yaml", 100)[0]["layers"][0]["name"]) == MAX_LIST_VALUES
    over = fits.replace("[1,", "[1, 1,")
    with pytest.raises(SpecError, match=rf"^l.yaml:3: a list of more than {MAX_LIST_VALUES} entries"):
        decode(over, ".yaml", "l.yaml", 100)


def test_a_mapping_of_too_many_keys_stops_at_its_line():
    keys = ", ".join(f"k{i}: 1" for i in range(MAX_KEYS + 1))
    with pytest.raises(SpecError, match=rf"^k.yaml:3: a mapping of more than {MAX_KEYS} keys"):
        decode(HEADER + "  - {" + keys + "}\n", ".yaml", "k.yaml", 100)


def test_repeated_scalars_keep_their_types_and_anchors_are_shared():
    data, _ = decode("a: [1, '1', 1.0, true, 'true', null, ~, 2001-12-14]\nb: &x [1]\nc: *x\n",
                     ".yaml", "t.yaml", 100)
    assert [type(v).__name__ for v in data["a"]] == ["int", "str", "float", "bool", "str",
                                                     "NoneType", "NoneType", "date"]
    assert data["b"] is data["c"]
