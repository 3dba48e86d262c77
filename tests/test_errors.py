"""The error classes' own text is printable: a Python caller who prints ``str(err)`` cannot
have the terminal rewritten, the text reordered or the print fail (issue 21)."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from shapecalc.core.errors import (ArgumentError, ConfigError, FieldError, LayerError, ShapeError,
                                   ShapecalcError, SpecError, UsageError)
from shapecalc.core.safetext import UNSAFE
from shapecalc.train.errors import DataError, TrainError

HOSTILE = ["\x1b[31mred\x1b[0m", "\x1b]0;title\x07", "evil\u202egnp.exe", "a\u2066b", "lone\ud800x",
           "\x9b2J", "del\x7f"]


def _builders(name: str) -> list[ShapecalcError]:
    return [
        ShapecalcError(f"model {name} failed"),
        SpecError(f"{name}.json: invalid", detail=f"bad {name}"),
        UsageError(f"--input {name}"),
        ArgumentError(name, f"expected an integer, got {name}"),
        LayerError(f"needs {name}", node=name, layer=f"Conv2d {name}"),
        ShapeError("too small", node=f"features.{name}", layer="MaxPool2d"),
        ConfigError("stride 0", layer=name),
        FieldError(name, f"must be positive ({name})", layer="Conv2d", node=name),
        DataError(f"data {name}"),
        TrainError(f"train {name}"),
    ]


def _safe(text: str) -> None:
    assert UNSAFE.search(text) is None, text
    text.encode("utf-8")  # a lone surrogate would raise here, as print() does


@pytest.mark.parametrize("name", HOSTILE)
def test_every_error_class_prints_hostile_names_escaped(name):
    for err in _builders(name):
        _safe(str(err))
        for part in ("detail", "message"):
            if hasattr(err, part):
                _safe(getattr(err, part))


@given(st.text(max_size=30))
def test_any_name_gives_printable_error_text(name):
    for err in _builders(name):
        _safe(str(err))


def test_an_escaped_character_is_shown_as_its_code_and_the_rest_is_kept():
    err = LayerError("needs more", node="a\x1bb", layer="Conv2d")
    assert str(err) == "node 'a\\u001bb' Conv2d: needs more"
    assert err.node == "a\x1bb"  # kept as the model spells it: tools look nodes up by name
    assert str(ArgumentError("x\u202e", "bad")) == "x\\u202e: bad"


def test_plain_text_and_replaced_errors_are_unchanged():
    err = FieldError("kernel_size", "must be positive, got 0", layer="Conv2d")
    assert str(err) == "Conv2d: kernel_size: must be positive, got 0"
    assert str(err.located("features.0")) == "node 'features.0' Conv2d: kernel_size: must be positive, got 0"
    assert SpecError("x.json: bad").detail == "x.json: bad"
