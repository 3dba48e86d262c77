"""Printable text and bounded previews (shapecalc.core.safetext)."""

from __future__ import annotations

import json

from hypothesis import given, strategies as st

from shapecalc.core.safetext import UNSAFE, clipped, csv_cell, one_line, preview, printable


@given(st.text())
def test_printable_text_has_nothing_unsafe_and_encodes(text):
    out = printable(text)
    assert UNSAFE.search(out) is None
    out.encode("utf-8")  # lone surrogates are gone


@given(st.text())
def test_printable_inside_json_keeps_the_same_string(text):
    dumped = json.dumps({"name": text}, ensure_ascii=False)
    assert json.loads(printable(dumped)) == {"name": text}


def test_terminal_controls_bidi_and_surrogates_are_escaped():
    assert printable("a\x1b]0;pwn\x07b") == "a\\u001b]0;pwn\\u0007b"
    assert printable("evil\u202egnp.exe") == "evil\\u202egnp.exe"
    assert printable("x\ud800y") == "x\\ud800y"
    assert printable("c1\x9bz") == "c1\\u009bz"
    assert printable("tab\tand\nnewline") == "tab\tand\nnewline"
    assert one_line("a\n\x1bb") == "a \\u001bb"


def test_preview_of_an_alias_bomb_is_short_and_quick():
    bomb: list = ["lol"] * 9
    for _ in range(30):
        bomb = [bomb] * 9  # 9**31 leaves if anything walked them all
    assert len(preview(bomb)) <= 60


def test_preview_bounds_strings_ints_and_hostile_reprs():
    class Hostile:
        def __repr__(self):
            raise RuntimeError("no")

    assert len(preview("x" * 10**6)) <= 60
    assert preview(10**5000) == "an integer of about 5001 digits"
    assert preview([Hostile()]) == "[<a Hostile>]"
    assert preview("\x1b[31m") == "'\\x1b[31m'"  # repr's own escape
    assert preview(True) == "True" and preview(None) == "None"


def test_csv_cells_that_start_a_formula_are_guarded():
    assert csv_cell("=HYPERLINK(\"x\")") == "'=HYPERLINK(\"x\")"
    assert csv_cell("@SUM(A1)") == "'@SUM(A1)"
    assert csv_cell("+cmd") == "'+cmd"
    assert csv_cell("-3") == "-3" and csv_cell("-1.5e3") == "-1.5e3"
    assert csv_cell("conv1") == "conv1"


@given(st.text(alphabet=st.sampled_from("ab .,\n"), max_size=80), st.integers(2, 60))
def test_clipped_ends_at_a_word_with_an_ellipsis(text, limit):
    out = clipped(text, limit)
    assert len(out) <= limit
    if len(text) <= limit:
        assert out == text
        return
    assert out.endswith("…") and text.startswith(out[:-1])
    # The cut falls where a word ends, unless no space leaves anything before it.
    if any(c.isspace() for c in text[1:limit]):
        assert text[len(out) - 1].isspace()


def test_clipped_torch_message():
    # hf:bert's fx failure, once cut at 200 characters mid-word ("for a more detaile").
    text = ("TraceError: symbolically traced variables cannot be used as inputs to control flow; "
            "see the torch.fx documentation for a more detailed explanation of what is happening")
    assert clipped(text, 120) == ("TraceError: symbolically traced variables cannot be used as "
                                  "inputs to control flow; see the torch.fx documentation for…")
    assert clipped(text, 500) == text
    assert clipped("abcdefghij", 5) == "abcd…"  # one word longer than the limit
