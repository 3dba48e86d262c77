"""Every public function × every parameter × the wrong values a caller could pass (issue 21: "29
wrong values are accepted in all"; the list was not kept, so the whole matrix is checked).

A wrong value must raise the package's typed error naming the parameter — never be accepted,
and never surface as a plain ``TypeError``/``ValueError``/``ZeroDivisionError`` from inside.
Each case says only which values are wrong for that parameter; the test finds what each does.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import pytest

import shapecalc
from shapecalc import arithmetic
from shapecalc.core.errors import ArgumentError, ShapecalcError

NAN = float("nan")
HUGE = 10**30
#: Wrong for a size or count that must be ≥ 1.
POSITIVE = {"text": "3", "float": 3.5, "bool": True, "None": None, "list": [3], "negative": -1,
            "zero": 0, "huge": HUGE, "NaN": NAN}
#: Wrong for a size, padding or count that may be 0.
NON_NEGATIVE = {k: v for k, v in POSITIVE.items() if k != "zero"}
#: Wrong for a word parameter (a dtype, a mode, an optimizer).
WORD = {"number": 5, "float": 3.5, "bool": True, "list": ["x"], "unknown": "bogus", "empty": "",
        "NaN": NAN}
FLAG = {"number": 1, "text": "yes", "None": None, "list": [True], "NaN": NAN}
SHAPE = {"text": "1x1x28x28", "float": 3.5, "bool": True, "flat list of text": ["1", "1", "28", "28"],
         "negative": (1, 1, -28, 28), "zero": (1, 1, 0, 28), "huge": (1, 1, HUGE, 28),
         "NaN": (1, 1, NAN, 28), "float size": (1, 1, 28.0, 28), "one axis": (1,),
         "too many axes": (1,) * 9}


def _cases() -> list[tuple[str, Callable[..., Any], dict[str, Any], str, dict[str, Any]]]:
    """(label, function, valid keyword arguments, parameter, its wrong values)."""
    analysis = shapecalc.analyze("lenet")
    cases = []

    def add(label: str, fn: Callable, base: dict, param: str, wrong: dict) -> None:
        cases.append((label, fn, base, param, wrong))

    # the model entry points
    add("analyze", shapecalc.analyze, {"model": "lenet"}, "input_shape", SHAPE)
    add("analyze", shapecalc.analyze, {"model": "lenet"}, "dtype", {**WORD, "None": None})
    add("analyze", shapecalc.analyze, {"model": "lenet"}, "mode", {**WORD, "None": None})
    add("analyze", shapecalc.analyze, {"model": "lenet"}, "input_dtypes", {"number": 5, "float": 3.5, "bool": True,
                                                                         "unknown": ["bogus"], "two": ["float32"] * 2})
    add("summary", shapecalc.summary, {"model": "lenet"}, "input_size", SHAPE)
    # a depth past the deepest block shows every row, as in torchinfo: huge is not wrong
    add("summary", shapecalc.summary, {"model": "lenet"}, "depth", {k: v for k, v in POSITIVE.items()
                                                                    if k not in ("zero", "None", "huge")})
    add("summary", shapecalc.summary, {"model": "lenet"}, "col_names", {"number": 5, "unknown": ["bogus"],
                                                                        "bool": True, "float": 3.5})
    add("summary", shapecalc.summary, {"model": "lenet"}, "mode", {**WORD, "None": None})
    add("summary", shapecalc.summary, {"model": "lenet"}, "verbose", {"text": "1", "float": 1.5, "negative": -1,
                                                                       "huge": HUGE, "list": [1], "NaN": NAN})
    add("summary", shapecalc.summary, {"model": "lenet"}, "dtypes", {"number": 5, "unknown": ["bogus"]})
    add("load_model", shapecalc.load_model, {"model": "lenet"}, "max_nodes",
        {k: v for k, v in POSITIVE.items() if k != "None"})  # None: the default budget
    add("load_model", shapecalc.load_model, {"model": "lenet"}, "meta", {"number": 1, "text": "yes", "list": [True]})
    add("load_model", shapecalc.load_model, {"model": "lenet"}, "seq_len", {k: v for k, v in POSITIVE.items()
                                                                            if k != "None"})
    add("minimum_input", shapecalc.minimum_input, {"model": "lenet"}, "input_shape", SHAPE)
    add("load_trained", shapecalc.load_trained, {"run_dir": "/nonexistent"}, "run_dir",
        {"number": 5, "float": 3.5, "bool": True, "None": None, "list": ["x"], "empty": "", "NUL": "a\x00b"})
    add("load_trained", shapecalc.load_trained, {"run_dir": "/nonexistent"}, "device",
        {"number": 5, "float": 3.5, "bool": True, "None": None, "list": ["cpu"]})
    for fn_name in ("analyze", "summary", "load_model", "minimum_input"):
        add(fn_name, getattr(shapecalc, fn_name), {}, "model",
            {"number": 5, "float": 3.5, "bool": True, "None": None, "list": [], "empty": "", "NaN": NAN,
             "unknown": "no-such-model-anywhere"})

    # Analysis methods
    add("Analysis.memory", analysis.memory, {}, "batch", {k: v for k, v in POSITIVE.items() if k != "None"})
    add("Analysis.memory", analysis.memory, {}, "optimizer", {**WORD, "None": None})
    add("Analysis.memory", analysis.memory, {}, "dtype", WORD)
    add("Analysis.memory", analysis.memory, {}, "amp", {k: v for k, v in FLAG.items() if k != "None"})
    add("Analysis.memory", analysis.memory, {}, "mode", {**WORD, "None": None})
    add("Analysis.memory", analysis.memory, {}, "device", {"number": 5, "bool": True, "list": ["cpu"], "empty": "",
                                                            "unknown": "bogus"})
    depth = {k: v for k, v in POSITIVE.items() if k not in ("None", "zero", "huge")}
    add("Analysis.table", analysis.table, {}, "depth", depth)
    add("Analysis.table", analysis.table, {}, "width", {k: v for k, v in POSITIVE.items() if k != "None"})
    add("Analysis.table", analysis.table, {}, "columns", {"number": 5, "unknown": ["bogus"], "bool": True})
    add("Analysis.table", analysis.table, {}, "explain", {k: v for k, v in FLAG.items() if k != "None"})
    add("Analysis.to_json", analysis.to_json, {}, "indent", {"text": "2", "float": 2.5, "negative": -1,
                                                               "huge": HUGE, "bool": True, "list": [2]})
    add("Analysis.to_json", analysis.to_json, {}, "explain", {k: v for k, v in FLAG.items() if k != "None"})
    add("Analysis.to_dot", analysis.to_dot, {}, "rankdir", {**WORD, "None": None})
    add("Analysis.to_dot", analysis.to_dot, {}, "depth", depth)
    add("Analysis.to_dot", analysis.to_dot, {}, "expand", {k: v for k, v in FLAG.items() if k != "None"})
    add("Analysis.rows", lambda **kw: list(analysis.rows(**kw)), {}, "depth", depth)
    add("Analysis.render", analysis.render, {}, "fmt", {**WORD, "None": None})
    add("Analysis.record", analysis.record, {}, "name", {"number": 5, "None": None, "unknown": "bogus"})

    # the arithmetic helpers: every size, each with its own lower bound
    sizes = {"n": POSITIVE, "k": POSITIVE, "s": POSITIVE, "d": POSITIVE, "p": NON_NEGATIVE,
             "target": POSITIVE, "out": POSITIVE, "output_padding": NON_NEGATIVE, "per_side": NON_NEGATIVE,
             "max_total": {k: v for k, v in NON_NEGATIVE.items() if k != "None"}}
    valid = {"n": 32, "k": 3, "s": 2, "p": 1, "d": 1, "target": 16, "out": 16, "output_padding": 1,
             "per_side": 1, "max_total": 8}
    import inspect

    for name in ("conv_output_size", "pool_output_size", "transposed_conv_output_size", "dropped_pixels",
                 "effective_kernel", "same_padding", "solve_padding", "solve_pool_padding",
                 "solve_transposed_padding", "solve_input_sizes", "total_padding", "explain_conv",
                 "explain_pool", "explain_transposed", "explain_dropped", "adaptive_output_size"):
        fn = getattr(arithmetic, name)
        params = inspect.signature(fn).parameters
        base = {p: valid[p] for p, spec in params.items() if p in valid}
        if name == "adaptive_output_size":
            base = {"n": 32, "out": 16}
        for param in params:
            if param in sizes:
                wrong = dict(sizes[param])
                if param == "per_side":
                    wrong.pop("negative")  # a conversion: the layer refuses it, in one place
                if param == "s" and name == "pool_output_size":
                    wrong.pop("None")  # None means the kernel size, as in torch
                if param == "out" and name == "adaptive_output_size":
                    wrong.pop("None")  # None keeps the input size, as in torch
                    wrong.pop("zero")  # torch's adaptive pooling gives an empty axis
                if param in ("target", "out") and name.startswith("solve_"):
                    # documented: no padding or input size gives an output below 1 (empty range)
                    wrong.pop("zero"), wrong.pop("negative")
                add(f"arithmetic.{name}", fn, base, param, wrong)
            elif param == "ceil_mode":
                add(f"arithmetic.{name}", fn, base, param, {k: v for k, v in FLAG.items()})
    return cases


CASES = [(label, fn, base, param, kind, value)
         for label, fn, base, param, wrong in _cases() for kind, value in wrong.items()]


def _outcome(fn: Callable, kwargs: dict) -> str | BaseException:
    try:
        fn(**kwargs)
    except ShapecalcError as err:
        return err
    except Exception as err:  # noqa: BLE001  (what the test reports)
        return f"raised a plain {type(err).__name__}: {str(err)[:120]}"
    return "accepted"


@pytest.mark.parametrize("label, fn, base, param, kind, value", CASES,
                         ids=[f"{c[0]}-{c[3]}-{c[4]}" for c in CASES])
def test_a_wrong_value_is_a_typed_error_naming_its_parameter(label, fn, base, param, kind, value):
    outcome = _outcome(fn, {**base, param: value})
    assert isinstance(outcome, BaseException), f"{label}({param}={value!r}): {outcome}"
    text = str(outcome)
    assert "\n" not in text and len(text) < 400, text
    if isinstance(outcome, ArgumentError):
        assert outcome.param == param or outcome.param.startswith(param), (outcome.param, text)
    else:  # a model or run folder that cannot be found or read says so, naming the path
        assert param in ("model", "run_dir") or param in text, \
            f"{label}({param}={value!r}): {type(outcome).__name__}: {text}"
