"""Typed notes: every kind has words, the JSON form round-trips, code asks kinds not text."""

from __future__ import annotations

import json

import pytest

from shapecalc import analyze
from shapecalc.core.blocks import Sequential
from shapecalc.core.layers import Conv2d, Flatten, Linear, MaxPool2d
from shapecalc.core.notes import Note, NoteKind, has_kind, text_note

EXAMPLES = {
    NoteKind.DROPS: (dict(px=3, axes=("H", "W")), "drops 3 px (H, W)"),
    NoteKind.INFERRED: (dict(field="in_channels", value=5), "in_channels=5 inferred"),
    NoteKind.DERIVED: (dict(field="in_features", value=9216), "in_features=9216 derived from the input"),
    NoteKind.UPSAMPLES: (dict(size=3, target=7), "upsamples 3→7 (windows overlap)"),
    NoteKind.FLATTENS: (dict(factors=(256, 5, 5), total=6400), "256×5×5 = 6,400"),
    NoteKind.MEASURED: ({}, "shape and MACs measured by running torch"),
    NoteKind.SHARED: ({}, "weights shared with an earlier node (counted once)"),
    NoteKind.TEXT: (dict(text="anything"), "anything"),
    NoteKind.PARAM_USED: (dict(names=("gamma",), count=96, how="through mul"),
                          "uses parameter gamma (96) through mul"),
    NoteKind.PARAM_TIED: (dict(names=("embed.weight",), count=8000, owner="embed"),
                          "uses embed.weight (8,000), tied to 'embed' where it is counted (counted once)"),
    NoteKind.PARAMS_UNUSED: (dict(names=("a", "b", "c", "d", "e", "f", "g"), count=1234),
                             "1,234 parameters that no forward uses: a, b, c, d, e, f and 1 more "
                             "(counted in the total)"),
    NoteKind.PARAMS_UNPLACED: (dict(names=("cls",), count=768),
                               "768 parameters in no recorded module (read by the forward's own "
                               "code, or by nothing; hooks cannot tell): cls (counted in the total)"),
    NoteKind.HOOK_FALLBACK: (dict(model="Net", reason="TraceError: control flow"),
                             "torch.fx could not trace Net (TraceError: control flow); its modules "
                             "and the torch functions between them were recorded in one run at the "
                             "requested input, so shapes and MACs outside known layers are measured"),
    NoteKind.OUTPUTS: (dict(count=2, labels=("logits", "boxes")), "forward returns 2 outputs: logits, boxes"),
    NoteKind.TUPLE_ITEM: (dict(index="[1][-1]", owner="gru"),
                          "item [1][-1] of the tuple computed (and counted) at 'gru'"),
    NoteKind.BATCH_FOLD: (dict(node="view", layer="Reshape(-1, 400)", where="net.py:14",
                               before=(1, 16, 30, 30), after=(36, 400), output=(36, 10), batch=1,
                               fix="x.flatten(1)"),
                          "Reshape(-1, 400) at 'view' (net.py:14) does not keep the batch: "
                          "1×16×30×30 becomes 36×400, so 1 sample in gives 36×10 out; write "
                          "x.flatten(1) there instead (shapecalc check verifies it and finds the "
                          "sizes that work)"),
    NoteKind.EXPERTS: (dict(top_k=2, experts=8),
                       "mixture of experts: every token runs 2 of 8 experts, whatever the router "
                       "picks (transformers' batched_mm experts kernel: the chosen experts' "
                       "weights gathered per token), so MACs count those experts per token and "
                       "activations include the gathered weights"),
}


@pytest.mark.parametrize("kind", list(NoteKind))
def test_every_kind_has_its_words_and_a_json_form(kind):
    data, text = EXAMPLES[kind]
    note = Note.of(kind, **data)
    assert str(note) == text
    as_dict = note.to_dict()
    assert as_dict["kind"] == kind.value and as_dict["text"] == text
    assert json.loads(json.dumps(as_dict)) == as_dict


def test_a_hook_fallback_says_whether_fx_was_tried():
    skipped = Note.of(NoteKind.HOOK_FALLBACK, model="Head", reason="it runs a transformers 5 model",
                      tried=False)
    assert str(skipped) == ("torch.fx was not tried on Head (it runs a transformers 5 model); its "
                            "modules and the torch functions between them were recorded in one run "
                            "at the requested input, so shapes and MACs outside known layers are "
                            "measured")
    assert skipped.to_dict()["tried"] is False
    failed = Note.of(NoteKind.HOOK_FALLBACK, model="Head", reason="TraceError: x", tried=True)
    assert str(failed).startswith("torch.fx could not trace Head (TraceError: x); its modules")


def test_has_kind_ignores_text_that_only_looks_like_a_note():
    assert has_kind([Note.of(NoteKind.DROPS, px=1, axes=("L",))], NoteKind.DROPS)
    assert not has_kind([text_note("drops 3 px (H, W)"), "drops 1 px (L)"], NoteKind.DROPS)


def test_blocks_collect_their_childrens_drop_notes_by_kind():
    body = Sequential(conv=Conv2d(1, 4, 3, stride=2), pool=MaxPool2d(2), flat=Flatten(), fc=Linear(None, 2))
    result = analyze(Sequential(body=body), (1, 1, 10, 10))
    block = result.blocks["body"]
    assert [n.kind for n in block.notes] == [NoteKind.DROPS]
    assert str(block.notes[0]) == "drops 1 px (H, W)"


def test_ceil_mode_pool_that_never_reads_a_row_is_not_called_exact():
    # issue 10: `layer --op maxpool --k 2 --s 3 --ceil-mode 9` reports row 8 unread; the
    # analysis (behind `show` and `check --input-range`) must say the same.
    result = analyze(Sequential(pool=MaxPool2d(2, 3, ceil_mode=True)), (1, 1, 9, 9))
    [note] = result.records[0].notes
    assert note.kind is NoteKind.DROPS and str(note) == "drops 1 px (H, W)"
    exact = analyze(Sequential(pool=MaxPool2d(2, 3, ceil_mode=True)), (1, 1, 8, 8))
    assert exact.records[0].notes == []
