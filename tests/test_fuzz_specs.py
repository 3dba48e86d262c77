"""Hostile layer arguments, through spec files and the Python API: never anything but one line.

Every layer type (``LAYER_TYPES``, so layers added later are covered without editing this
file) × every argument × every class of bad value (wrong type, negative, zero, NaN, ±Infinity,
null, huge, beyond Python's digit limit, nested, ...) is built through the API and through a
spec file on disk, then analysed at a few input ranks. The outcome must be a typed
``ShapecalcError`` whose text is one short line, or a valid result whose JSON serialises —
never another exception, a hang or a blow-up. A hypothesis property then mixes random values
into several arguments at once, in JSON, YAML and TOML.

The cases run in a child process with an address-space limit (``RLIMIT_AS``) and a per-case
timer, so a case that allocates gigabytes or loops fails as that case instead of taking the
test run (or the machine) down.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import typing
from pathlib import Path

import pytest

HERE = Path(__file__).resolve()
REPO = HERE.parent.parent
CASE_SECONDS = 5  # per case; a case is one construction plus a few tiny analyses
MEMORY_BYTES = 2 * 2**30  # the child's whole address space (no torch is imported there)
SHAPES = [(1, 4, 8, 8), (2, 4, 6), (1, 4, 4, 4, 4), (3, 8)]

INF = float("inf")
BAD_VALUES: dict[str, typing.Any] = {
    "string": "3",
    "mapping": {"a": 1},
    "negative": -1,
    "zero": 0,
    "NaN": float("nan"),
    "+Infinity": INF,
    "-Infinity": -INF,
    "null": None,
    "huge": 10**30,
    "beyond the digit limit": 10**5000,
    "nested": [[[1]]],
    "float": 2.5,
    "bool": True,
    "list with a negative": [1, -1],
    "list with NaN": [1, float("nan")],
    "long list": [1] * 1000,
    "empty list": [],
    "big but int64": 2**62,
}


# ------------------------------------------------------------------ one case
def _base_kwargs(cls) -> dict[str, typing.Any]:
    """The smallest arguments that let ``cls`` be built: 1 for each required int, (1,) for tuples."""
    hints = typing.get_type_hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        if not f.init or f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING:
            continue
        if f.name in cls.inferred:
            out[f.name] = None
            continue
        text = str(hints[f.name])
        out[f.name] = 1 if "int" in text.split("tuple")[0] else [1]
    return out


def _check_result(layer, outcomes: list[str]) -> None:
    from shapecalc import analyze
    from shapecalc.core.blocks import Sequential
    from shapecalc.core.errors import ShapecalcError
    from shapecalc.core.layers import layer_to_dict

    json.dumps(layer_to_dict(layer), allow_nan=True)  # the layer serialises (numpy ints normalised)
    for shape in SHAPES:
        try:
            result = analyze(Sequential(layer), shape)
        except ShapecalcError as err:
            _one_line(err)
            outcomes.append("error")
            continue
        assert all(isinstance(d, int) and d >= 0 for d in result.output_shape), result.output_shape
        json.loads(result.to_json())
        outcomes.append("ok")


def _one_line(err: Exception) -> None:
    text = str(err)
    assert text and "\n" not in text and len(text) < 500, f"not one short line: {text[:300]!r}"


def _json_text(value: typing.Any) -> str:
    """JSON as a user could write it: NaN/Infinity tokens and 5,000-digit numbers included."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 10**4000:
        return "9" * 5000
    return json.dumps(value)


def run_case(type_name: str, field: str | None, value: typing.Any, folder: Path) -> list[str]:
    """API then spec file for one (layer, field, bad value); raises AssertionError on a bad outcome."""
    from shapecalc.core.errors import ShapecalcError
    from shapecalc.core.layers import LAYER_TYPES, MERGE_TYPES
    from shapecalc.models.specfile import load_spec

    cls = LAYER_TYPES[type_name]
    kwargs = _base_kwargs(cls)
    if field is not None:
        kwargs[field] = value
    outcomes: list[str] = []
    try:
        layer = cls(**kwargs)
    except ShapecalcError as err:
        _one_line(err)
        outcomes.append("refused")
    else:
        _check_result(layer, outcomes)
    if type_name in MERGE_TYPES:
        return outcomes  # merges are written as Residual/Branches blocks in spec files
    body = ", ".join(f'"{k}": {_json_text(v)}' for k, v in kwargs.items() if v is not None)
    text = '{"layers": [{"type": "%s"%s}]}' % (type_name, (", " + body) if body else "")
    path = folder / f"{type_name}.json"
    path.write_text(text)
    try:
        doc = load_spec(path)
    except ShapecalcError as err:
        _one_line(err)
        assert str(err).startswith(str(path)), str(err)[:200]
        outcomes.append("refused")
    else:
        _check_result(doc.block.children()[0][1], outcomes)
    return outcomes


# ------------------------------------------------------------------ the child process
class _Timeout(BaseException):
    """Raised by the per-case timer; a BaseException so that no ``except Exception`` eats it."""


def _guarded(label: str, case, failures: list[str], counts: dict[str, int]) -> None:
    import signal

    def expire(*_):
        raise _Timeout

    signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, CASE_SECONDS)
    start = time.perf_counter()
    try:
        for outcome in case():
            counts[outcome] = counts.get(outcome, 0) + 1
    except _Timeout:
        failures.append(f"{label}: still running after {CASE_SECONDS} s")
    except MemoryError:
        failures.append(f"{label}: ran out of the {MEMORY_BYTES // 2**30} GiB memory limit")
    except AssertionError as err:
        failures.append(f"{label}: {str(err)[:300]}")
    except Exception as err:  # noqa: BLE001 - any other exception is the finding
        failures.append(f"{label}: {type(err).__name__}: {str(err)[:200]}")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    counts["cases"] = counts.get("cases", 0) + 1
    counts["slowest_ms"] = max(counts.get("slowest_ms", 0), int((time.perf_counter() - start) * 1000))


def sweep() -> dict:
    """Every layer type × argument × bad value (plus each type with its base arguments)."""
    from shapecalc.core.layers import LAYER_TYPES

    failures: list[str] = []
    counts: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for type_name, cls in sorted(LAYER_TYPES.items()):
            _guarded(f"{type_name}()", lambda: run_case(type_name, None, None, folder), failures, counts)
            for f in dataclasses.fields(cls):
                if not f.init:
                    continue
                for label, value in BAD_VALUES.items():
                    _guarded(f"{type_name}.{f.name} = {label}",
                             lambda: run_case(type_name, f.name, value, folder), failures, counts)
    return {"failures": failures, "counts": counts}


def random_specs(examples: int) -> dict:
    """Hypothesis: several arguments at once, random and hostile values, all three formats."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from shapecalc.core.layers import LAYER_TYPES, MERGE_TYPES

    names = sorted(set(LAYER_TYPES) - MERGE_TYPES)
    scalars = st.one_of(
        st.integers(-3, 20), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
        st.booleans(), st.none(), st.text(max_size=5),
        st.sampled_from(["same", "valid", "nearest", "tanh", "zeros", "constant", "reflect"]))
    values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4), max_leaves=8)
    failures: list[str] = []
    counts: dict[str, int] = {}
    folder = Path(tempfile.mkdtemp())

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(names), st.data(), st.sampled_from([".json", ".yaml", ".toml"]))
    def prop(type_name, data, suffix):
        cls = LAYER_TYPES[type_name]
        fields = [f.name for f in dataclasses.fields(cls) if f.init]
        chosen = data.draw(st.lists(st.sampled_from(fields), unique=True, max_size=len(fields))) if fields else []
        entry = {"type": type_name, **{k: v for k, v in _base_kwargs(cls).items() if v is not None}}
        for name in chosen:
            entry[name] = data.draw(values)
        _guarded(f"{suffix} {entry!r:.200}", lambda: _spec_and_api(entry, suffix, folder), failures, counts)

    prop()
    return {"failures": failures, "counts": counts}


def _spec_and_api(entry: dict, suffix: str, folder: Path) -> list[str]:
    from shapecalc.core.errors import ShapecalcError
    from shapecalc.core.layers import layer_from_dict
    from shapecalc.models.specfile import load_spec

    outcomes: list[str] = []
    try:
        layer = layer_from_dict(entry)
    except ShapecalcError as err:
        _one_line(err)
        outcomes.append("refused")
    else:
        _check_result(layer, outcomes)
    data = {"layers": [entry]}
    path = folder / f"spec{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps(data))
    elif suffix == ".yaml":
        import yaml

        path.write_text(yaml.safe_dump(data))
    else:
        import tomli_w

        try:
            path.write_text(tomli_w.dumps(data))
        except (TypeError, ValueError):  # TOML has no null (or nested None): nothing to read
            return outcomes
    try:
        doc = load_spec(path)
    except ShapecalcError as err:
        _one_line(err)
        outcomes.append("refused")
    else:
        _check_result(doc.block.children()[0][1], outcomes)
    return outcomes


def _child_main(mode: str, examples: int) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))
    sys.setrecursionlimit(1000)
    report = sweep() if mode == "sweep" else random_specs(examples)
    print(json.dumps(report))


def _run_child(mode: str, examples: int = 0) -> dict:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, str(HERE), mode, str(examples)], capture_output=True,
                          text=True, timeout=600, env=env, cwd=str(REPO))
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    report["seconds"] = round(time.perf_counter() - start, 1)
    print(mode, report["counts"], f"{report['seconds']} s")
    return report


# ------------------------------------------------------------------ the tests
@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_AS and SIGALRM are POSIX")
def test_every_layer_field_and_bad_value_is_one_line_or_a_result():
    report = _run_child("sweep")
    from shapecalc.core.layers import LAYER_TYPES

    assert report["counts"]["cases"] >= len(LAYER_TYPES) * len(BAD_VALUES)
    assert not report["failures"], "\n".join(report["failures"][:40])


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_AS and SIGALRM are POSIX")
def test_random_hostile_specs_in_every_format():
    examples = 400 if os.environ.get("CI") else 80
    report = _run_child("random", examples)
    assert report["counts"]["cases"] == examples
    assert not report["failures"], "\n".join(report["failures"][:40])


def test_the_sweep_sees_a_layer_added_later():
    """A layer class defined in a module of the package registers itself, so the sweep covers it
    (and its field types are checked) without any list to edit."""
    import types

    from shapecalc.core.layers import LAYER_TYPES

    module = types.ModuleType("shapecalc.core.layers.fuzzprobe")  # as if a new layer file were added
    sys.modules[module.__name__] = module
    try:
        exec("from dataclasses import dataclass\nfrom shapecalc.core.layers.base import Layer\n\n"
             "@dataclass(frozen=True)\nclass FuzzProbe(Layer):\n    width: int = 1\n", module.__dict__)
        assert LAYER_TYPES["FuzzProbe"] is module.FuzzProbe
        with tempfile.TemporaryDirectory() as tmp:
            assert run_case("FuzzProbe", "width", 2.5, Path(tmp)) == ["refused", "refused"]
            assert set(run_case("FuzzProbe", "width", 3, Path(tmp))) == {"ok"}
    finally:
        LAYER_TYPES.pop("FuzzProbe", None)
        sys.modules.pop(module.__name__, None)


if __name__ == "__main__":
    _child_main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 0)
