"""Adversarial suite, library API: every wrong argument is an ArgumentError naming the parameter
(issue 21: ZeroDivisionError, negative spans, ranges for negative sizes, plain TypeErrors)."""

from __future__ import annotations

import pytest

import shapecalc
from shapecalc import arithmetic
from shapecalc.core.bounds import Bound, ascii_int
from shapecalc.core.errors import ArgumentError
from shapecalc.models.specfile import parse_spec


@pytest.mark.parametrize("call, param", [
    (lambda: arithmetic.dropped_pixels(224, 3, s=0), "s"),
    (lambda: arithmetic.dropped_pixels(0, 3), "n"),
    (lambda: arithmetic.dropped_pixels(224, 3, p=-1), "p"),
    (lambda: arithmetic.effective_kernel(-1), "k"),
    (lambda: arithmetic.effective_kernel(3, 0), "d"),
    (lambda: arithmetic.same_padding(0), "k"),
    (lambda: arithmetic.solve_padding(-1, 3, 1, 5), "n"),
    (lambda: arithmetic.solve_padding(10, 3, 0, 5), "s"),
    (lambda: shapecalc.analyze("lenet", input_dtypes=5), "input_dtypes"),
    (lambda: shapecalc.summary("lenet", col_names=5), "col_names"),
    (lambda: shapecalc.load_model("lenet", max_nodes="x"), "max_nodes"),
    (lambda: shapecalc.load_model("lenet", max_nodes=0), "max_nodes"),
    (lambda: shapecalc.load_trained(5), "run_dir"),
    (lambda: shapecalc.load_trained("/nonexistent", device=5), "device"),
])
def test_wrong_arguments_name_their_parameter(call, param):
    with pytest.raises(ArgumentError) as caught:
        call()
    assert caught.value.param == param


def test_valid_arithmetic_is_unchanged():
    assert arithmetic.effective_kernel(3, 2) == 5
    assert arithmetic.same_padding(4) == (1, 2)
    assert arithmetic.dropped_pixels(224, 11, 4, 2) == 3
    assert list(arithmetic.solve_padding(224, 3, 1, 224)) == [2]


@pytest.mark.parametrize("text", ["٢٢٤", "３", "1_000", "+3", "-0", "0x10", " ", "1e3", "²"])
def test_only_ascii_digits_are_integers(text):
    with pytest.raises(ArgumentError):
        ascii_int(text, "size")


def test_a_bound_says_what_is_allowed():
    bound = Bound(int, 1, 1024, why="more threads abort the OpenMP runtime")
    assert bound.check("threads", 8) == 8
    with pytest.raises(ArgumentError, match=r"threads: must be ≤ 1,024 \(more threads"):
        bound.check("threads", 1_000_000)
    with pytest.raises(ArgumentError, match="expected an integer"):
        bound.check("threads", True)
    with pytest.raises(ArgumentError, match="finite"):
        Bound(float, 0, 1).check("lr", float("nan"))


def test_a_named_entry_and_an_unnamed_one_do_not_clash():
    # issue 21: the valid [{"type": "ReLU", "name": "1"}, {"type": "Tanh"}] was refused
    doc = parse_spec([{"type": "ReLU", "name": "1"}, {"type": "Tanh"}])
    assert [name for name, _ in doc.block.children()] == ["1", "1_1"]


def _alias_bomb() -> list:
    bomb: list = ["lol"] * 9
    for _ in range(30):
        bomb = [bomb] * 9  # 9**31 leaves if any message quoted it in full
    return bomb


@pytest.mark.parametrize("call", [
    lambda b: shapecalc.analyze("lenet", input_dtypes=b),
    lambda b: shapecalc.analyze("lenet", input_shape=[1, 1, b, 28]),
    lambda b: shapecalc.summary("lenet", depth=b),
    lambda b: shapecalc.summary("lenet", col_names=b),
    lambda b: shapecalc.summary("lenet", verbose=b),
    lambda b: arithmetic.conv_output_size(b, 3),
])
def test_an_alias_bomb_passed_to_the_api_is_quoted_briefly(call):
    with pytest.raises(ValueError) as caught:  # every shapecalc error is a ValueError
        call(_alias_bomb())
    assert len(str(caught.value)) < 300
