"""Adversarial suite, MODEL strings and spec files: a name that says "spec file" never runs
Python, a Python target that would exec a string is refused, and spec files built to expand,
to block or to be quoted at length end in one line, in bounded time and memory.

Each test is one fault an adversarial tester found (issue 21); the runs that used to take
minutes or gigabytes go through a subprocess with a memory ceiling and a short timeout."""

from __future__ import annotations

import os
import textwrap

import pytest

from adversarial_helpers import assert_one_line, shapecalc
from shapecalc.core.errors import SpecError
from shapecalc.models.sources import resolve

MARKER = "ran.txt"
NET_PY = textwrap.dedent(f"""
    open({MARKER!r}, "w").write("net.py ran")
    import torch.nn as nn
    v3 = nn.Linear(2, 2)
    dir = nn.Linear(2, 2)
""")


@pytest.mark.parametrize("model, words", [
    ("net:v3.json", "no such spec file"),
    ("net:v3.yaml", "no such spec file"),
    ("net:v3.yml", "no such spec file"),
    ("net:v3.toml", "no such spec file"),
    ("net:dir.json", "is a folder"),
])
def test_a_spec_name_beside_a_python_file_never_imports_it(tmp_path, monkeypatch, model, words):
    (tmp_path / "net.py").write_text(NET_PY)
    (tmp_path / "net:dir.json").mkdir()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SpecError, match=words):
        resolve(model)
    assert not (tmp_path / MARKER).exists()


def test_a_spec_name_on_the_command_line_is_one_line_and_runs_nothing(tmp_path):
    (tmp_path / "net.py").write_text(NET_PY)
    outcome = shapecalc("show", "net:v3.json", cwd=tmp_path, timeout=60)
    assert_one_line(outcome, 2, "net:v3.json", "no such spec file")
    assert not (tmp_path / MARKER).exists()


def test_a_fifo_given_as_a_spec_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "f.json")
    outcome = shapecalc("show", "f.json", cwd=tmp_path, timeout=60)
    assert_one_line(outcome, 2, "f.json", "FIFO")


def test_a_device_given_as_a_spec_is_refused(tmp_path):
    (tmp_path / "zero.json").symlink_to("/dev/zero")
    with pytest.raises(SpecError, match="character device"):
        resolve(str(tmp_path / "zero.json"))


def test_reduce_graph_module_is_refused_and_its_code_never_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = f"open({MARKER!r}, 'w').write('pwned')\\ndef forward(self): pass"
    target = 'torch.fx.graph_module:reduce_graph_module({"code": "' + code + '"}, "")'
    with pytest.raises(SpecError, match="function of torch.*not called"):
        resolve(target)
    assert not (tmp_path / MARKER).exists()


def test_a_private_name_is_refused_before_import(tmp_path, monkeypatch):
    (tmp_path / "net.py").write_text(NET_PY)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SpecError, match="private name"):
        resolve("net.py:_hidden")
    assert not (tmp_path / MARKER).exists()


@pytest.mark.parametrize("raised", ["GeneratorExit()", "Custom('boom')"])
def test_base_exceptions_from_user_code_are_one_error(tmp_path, monkeypatch, raised):
    (tmp_path / "bad.py").write_text(textwrap.dedent(f"""
        class Custom(BaseException):
            pass
        def make():
            raise {raised}
    """))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SpecError, match="raised (GeneratorExit|Custom)"):
        resolve("bad.py:make()")


def _alias_bomb(field_line: str) -> str:
    """A 9-level billion-laughs chain (9**9 leaves once expanded) defined in layer names, and
    ``field_line`` quoting its last alias ``*i``."""
    names = "abcdefghi"
    lines = ["layers:", "  - {type: ReLU, name: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]}"]
    for prev, name in zip(names, names[1:]):
        lines.append(f"  - {{type: ReLU, name: &{name} [" + ",".join([f"*{prev}"] * 9) + "]}")
    return "\n".join(lines) + "\n" + field_line + "\n"


@pytest.mark.parametrize("field_line", ["name: *i", "description: *i", "input: *i"])
def test_a_yaml_alias_bomb_quoted_in_a_message_is_one_short_line(tmp_path, field_line):
    (tmp_path / "bomb.yaml").write_text(_alias_bomb(field_line))
    outcome = shapecalc("show", "bomb.yaml", cwd=tmp_path, timeout=60, memory=2 * 2**30)
    line = assert_one_line(outcome, 2, "bomb.yaml")
    assert len(line) < 400


@pytest.mark.parametrize("key", ["kernel_size", "repeat", "label", "dim", "name"])
def test_a_yaml_alias_bomb_in_a_layer_field_is_quoted_briefly(key):
    from shapecalc.models.specfile import parse_spec

    bomb: list = ["lol"] * 9
    for _ in range(8):
        bomb = [bomb] * 9  # shared, as YAML aliases are: 9**9 leaves if expanded
    entry = {"type": "MaxPool2d", "kernel_size": 2, key: bomb}
    if key in ("label", "dim"):
        entry = {"type": "Branches", "branches": [[], []], key: bomb}
    with pytest.raises(SpecError) as caught:
        parse_spec({"layers": [entry]})
    assert len(str(caught.value)) < 400


def test_a_huge_rnn_num_layers_is_counted_in_closed_form(tmp_path):
    # 2**63 - 1 layers never finished; the count is closed-form, and past the declared maximum
    # (FIELD_LIMITS, 1,024) the value is refused in one line before anything is built
    from shapecalc.core.layers import LSTM
    from shapecalc.core.layers.fields import MAX_RECURRENT_LAYERS

    big = LSTM(input_size=3, hidden_size=4, num_layers=MAX_RECURRENT_LAYERS)
    first, rest = big.layer_params(0), big.layer_params(1)
    assert big.param_count() == first + (MAX_RECURRENT_LAYERS - 1) * rest
    assert LSTM(input_size=3, hidden_size=4, num_layers=3).param_count() == first + 2 * rest
    (tmp_path / "rnn.json").write_text(
        '{"input": [1, 5, 3], "layers": [{"type": "LSTM", "input_size": 3, "hidden_size": 4, '
        '"num_layers": 9223372036854775807}]}')
    outcome = shapecalc("show", "rnn.json", cwd=tmp_path, timeout=60)
    assert_one_line(outcome, 2, "layers[0].num_layers", "must be ≤ 1,024")


def test_check_on_a_100000_node_misfit_is_linear(tmp_path):
    # Was quadratic (a name lookup scanned every node): 199,999 nodes ran past 180 s.
    (tmp_path / "misfit.json").write_text(
        '{"input": [1, 4], "layers": [{"type": "ReLU", "repeat": 99998}, '
        '{"type": "Linear", "in_features": 5, "out_features": 2}]}')
    outcome = shapecalc("check", "misfit.json", cwd=tmp_path, timeout=150)
    assert outcome.code == 1 and "set in_features=4" in outcome.stdout


def test_verify_builds_the_spec_on_the_meta_device():
    import subprocess
    import sys

    from shapecalc.models.torch_models import build_module

    module = build_module("vgg16", device="meta")
    assert {p.device.type for p in module.parameters()} == {"meta"}
    # A fresh parent, so the peak it reports is this run's alone.
    probe = ("import resource, subprocess, sys; done = subprocess.run([sys.executable, '-m', "
             "'shapecalc', 'show', 'vgg16', '--verify'], capture_output=True); "
             "print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    code, peak_kib = map(int, proc.stdout.split())
    assert code == 0
    # vgg16's weights are 553 MB; torch's import alone is ~250 MB. Was 753 MB in all.
    assert peak_kib < 500 * 1024, peak_kib


DEEP_PY = textwrap.dedent("""
    import time
    import torch.nn as nn

    def deep():
        m = nn.ReLU()
        for _ in range(3000):
            m = nn.Sequential(m)
        return m

    class Nested(nn.Module):
        def forward(self, x):
            out = x
            for _ in range(2000):
                out = [out]
            return out

    class ReadsValues(nn.Module):
        def forward(self, x):
            return x if x.sum() > 0 else x * 2

    class Hangs(nn.Module):
        def __init__(self):
            super().__init__()
            open("started", "w").close()
            time.sleep(600)

    class HangsInForward(nn.Module):
        def forward(self, x):
            open("started", "w").close()
            time.sleep(600)
""")


@pytest.mark.parametrize("target, words", [
    ("deep.py:deep", "recursion limit"),
    ("deep.py:Nested", "recursion limit"),
])
def test_models_nested_past_the_recursion_limit_are_one_line(tmp_path, target, words):
    (tmp_path / "deep.py").write_text(DEEP_PY)
    outcome = shapecalc("show", target, "--input", "1x3", cwd=tmp_path, timeout=120)
    assert_one_line(outcome, 2, words)


def test_a_real_run_above_the_limit_is_refused_before_allocating(tmp_path):
    (tmp_path / "deep.py").write_text(DEEP_PY)
    outcome = shapecalc("show", "deep.py:ReadsValues", "--input", "1x1x20000x20000",
                        cwd=tmp_path, timeout=120)
    assert_one_line(outcome, 2, "1,526 MiB", "--max-run-mb")
    raised = shapecalc("show", "deep.py:ReadsValues", "--input", "1x1x9000x9000",
                       "--max-run-mb", "400", cwd=tmp_path, timeout=120)
    assert raised.code == 0 and "input 1×1×9000×9000 → output 1×1×9000×9000" in raised.stdout


@pytest.mark.parametrize("target", ["deep.py:Hangs", "deep.py:HangsInForward"])
def test_ctrl_c_in_user_code_exits_130(tmp_path, target):
    import signal
    import subprocess
    import sys
    import time

    (tmp_path / "deep.py").write_text(DEEP_PY)
    # The child gets Ctrl-C's default disposition: a suite started in the background by a
    # non-interactive shell runs with SIGINT ignored, children inherit that, and Python then
    # installs no handler, so the signal would never arrive (what a user's terminal delivers).
    proc = subprocess.Popen([sys.executable, "-m", "shapecalc", "show", target, "--input", "1x3"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        for _ in range(1200):
            if (tmp_path / "started").exists() or proc.poll() is not None:
                break
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err


def test_a_yaml_spec_past_the_node_budget_stops_while_it_is_read(tmp_path):
    # issue 21: a 31 MB YAML spec (under the 32 MiB cap) reached 3.56 GB and a MemoryError.
    # The data is now built from the event stream (no node tree) and the events are counted.
    (tmp_path / "big.yaml").write_text("input: [1, 3, 8, 8]\nlayers:\n" + "  - {type: ReLU}\n" * 30_000)
    outcome = shapecalc("show", "big.yaml", "--max-nodes", "1000", cwd=tmp_path, timeout=120,
                        memory=2 * 2**30)
    assert_one_line(outcome, 2, "big.yaml:1003", "more than 1,000 layer or block entries",
                    "--max-nodes")


def test_yaml_merge_keys_anchors_and_line_numbers_survive_the_event_reader(tmp_path):
    from shapecalc.models.specfile import load_spec

    (tmp_path / "m.yaml").write_text(
        "input: [1, 1, 8, 8]\nlayers:\n"
        "  - &b {type: Conv2d, out_channels: 2, kernel_size: 3}\n"
        "  - {<<: *b, kernel_size: 1}\n"
        "  - *b\n")
    layers = list(load_spec(tmp_path / "m.yaml").block.children())
    assert [layer.kernel_size for _, layer in layers] == [3, 1, 3]
    (tmp_path / "bad.yaml").write_text(
        "layers:\n  - type: ReLU\n  - type: Conv2d\n    out_channels: 2\n    kernel_size: x\n")
    with pytest.raises(SpecError, match=r"bad.yaml:5: layers\[1\].kernel_size"):
        load_spec(tmp_path / "bad.yaml")


def test_a_dotted_toml_key_of_40000_parts_is_refused_before_parsing(tmp_path):
    (tmp_path / "d.toml").write_text("layers = []\n" + ".".join(["a"] * 40_000) + " = 1\n")
    outcome = shapecalc("show", "d.toml", cwd=tmp_path, timeout=60, memory=2 * 2**30)
    assert_one_line(outcome, 2, "d.toml:2", "dotted key")


@pytest.mark.parametrize("layer, code", [
    ('{"type": "Linear", "out_features": 2147483647}', 0),
    ('{"type": "Embedding", "num_embeddings": 2147483647, "embedding_dim": 100000}', 1),
    ('{"type": "Linear", "out_features": 4000000000000}', 2),  # past its declared maximum
])
def test_verify_on_a_huge_layer_is_bounded_and_one_line(tmp_path, layer, code):
    # A 16 TB weight is built on the meta device; torch refusing a float index is one line.
    (tmp_path / "huge.json").write_text('{"input": [1, 4], "layers": [' + layer + ']}')
    outcome = shapecalc("show", "huge.json", "--verify", cwd=tmp_path, timeout=180)
    assert outcome.code == code, outcome.stderr[-2000:]
    assert "Traceback" not in outcome.stderr
    if code == 2:
        assert_one_line(outcome, code, "out_features: must be ≤ 2,147,483,647")
    elif code:
        assert_one_line(outcome, code, "torch's forward refused")
