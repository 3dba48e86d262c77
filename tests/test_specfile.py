"""Spec files: the three formats, inference, blocks, round trips of the whole zoo, located errors."""

from __future__ import annotations

import json
import sys

import pytest

from shapecalc import SpecError, analyze, load_model
from shapecalc.core.blocks import Branches, Residual, Sequential
from shapecalc.core.graph import analyze_graph
from shapecalc.core.layers import Conv2d, ReLU
from shapecalc.models.specfile import load_spec, parse_spec, save_spec, spec_to_dict
from shapecalc.models.spec_writer import dumps_toml
from shapecalc.models.zoo import ZOO

TINY = {
    "name": "tiny", "input": [1, 3, 32, 32],
    "layers": [
        {"type": "Conv2d", "out_channels": 16, "kernel_size": 3, "padding": 1},
        {"type": "ReLU"},
        {"type": "Residual", "body": [{"type": "Conv2d", "out_channels": 16, "kernel_size": 3, "padding": 1},
                                      {"type": "BatchNorm2d"}],
         "post": {"type": "ReLU"}},
        {"type": "Concat", "branches": [[{"type": "Conv2d", "out_channels": 8, "kernel_size": 1}], []]},
        {"type": "Sequential", "name": "stage", "repeat": 2,
         "layers": [{"type": "Conv2d", "out_channels": 24, "kernel_size": 3, "stride": 2}]},
        {"type": "Flatten"},
        {"type": "Linear", "out_features": 10},
    ],
}


def record_key(result):
    rows = [(r.name, r.type, r.description, r.input_shapes, r.output_shape, r.params, r.macs,
             tuple(r.notes), r.origin, r.shared, r.rf) for r in result.records]
    blocks = {k: (b.type, b.input_shapes, b.output_shape, b.params, b.macs, tuple(b.notes), b.depth)
              for k, b in result.blocks.items()}
    return rows, blocks, result.total_params, result.total_macs, result.output_shape


def test_parse_builds_blocks_and_infers_sizes():
    doc = parse_spec(TINY)
    assert doc.name == "tiny" and doc.input_shape == (1, 3, 32, 32)
    result = analyze(doc.block, doc.input_shape)
    names = [r.name for r in result.records]
    assert names[:8] == ["0", "1", "2.body.0", "2.body.1", "2.add", "2.post", "3.0.0", "3.cat"]
    assert "stage_0.0" in names and "stage_1.0" in names
    assert result.record("3.cat").output_shape == (1, 24, 32, 32)  # 8 + identity 16
    assert result.record("stage_1.0").output_shape == (1, 24, 7, 7)
    assert result.record("7").layer.in_features == 24 * 7 * 7  # inferred; index = position
    assert result.record("0").layer.in_channels == 3
    assert result.blocks["2"].type == "Residual" and result.blocks["3"].type == "Branches"


@pytest.mark.parametrize("suffix", [".json", ".yaml", ".toml"])
def test_each_format_reads_the_same(tmp_path, suffix):
    path = save_spec(parse_spec(TINY).block, tmp_path / f"tiny{suffix}", "tiny", (1, 3, 32, 32))
    doc = load_spec(path)
    assert record_key(analyze(doc.block, doc.input_shape)) == record_key(
        analyze(parse_spec(TINY).block, (1, 3, 32, 32)))


@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_round_trip_all_formats(tmp_path, name):
    entry = ZOO[name]
    spec = entry.spec()
    expected = record_key(analyze_graph(spec.to_graph(name), entry.default_input))
    for suffix in (".json", ".yaml", ".toml"):
        path = save_spec(spec, tmp_path / f"{name}{suffix}", name, entry.default_input)
        src = load_model(str(path))  # through the MODEL-string resolver, as the CLI does
        assert src.name == name and src.default_input == entry.default_input
        assert record_key(analyze(src)) == record_key(analyze_graph(src.graph, entry.default_input))
        assert record_key(analyze_graph(src.graph, entry.default_input)) == expected, suffix


def test_labels_names_and_dim_survive(tmp_path):
    block = Sequential({
        "res": Residual(Sequential(stem=Conv2d(None, 8, 3, padding=1)), label="Basic block"),
        "mix": Branches(a=Sequential(Conv2d(8, 4, 1)), b=Conv2d(8, 4, 3, padding=1), dim=-3,
                        label="Inception"),
        "head": Sequential(ReLU(), label="Head"),
    })
    data = spec_to_dict(block)
    assert data["layers"][0] == {"type": "Residual", "name": "res", "label": "Basic block", "body": {
        "type": "Sequential", "layers": [{"type": "Conv2d", "name": "stem", "out_channels": 8,
                                          "kernel_size": 3, "padding": 1}]}}
    assert "in_channels" not in json.dumps(data["layers"][0])  # inferred sizes are left out
    assert data["layers"][1]["dim"] == -3 and data["layers"][1]["label"] == "Inception"
    for suffix in (".json", ".yaml", ".toml"):
        doc = load_spec(save_spec(block, tmp_path / f"b{suffix}"))
        assert record_key(analyze(doc.block, (1, 8, 8, 8))) == record_key(analyze(block, (1, 8, 8, 8)))


def test_bare_list_and_stem_name(tmp_path):
    path = tmp_path / "net.json"
    path.write_text(json.dumps([{"type": "Conv2d", "out_channels": 4, "kernel_size": 3}]))
    doc = load_spec(path)
    assert doc.name == "net" and doc.input_shape is None
    assert analyze(doc.block, (1, 2, 5, 5)).output_shape == (1, 4, 3, 3)


def test_save_never_overwrites(tmp_path):
    path = tmp_path / "keep.json"
    path.write_text("precious")
    with pytest.raises(SpecError, match="already exists"):
        save_spec(Sequential(ReLU()), path)
    assert path.read_text() == "precious"
    save_spec(Sequential(ReLU()), path, overwrite=True)
    assert load_spec(path).block.children()[0][1] == ReLU()


# ------------------------------------------------------------------ located errors
def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_json_syntax_error_has_line(tmp_path):
    path = write(tmp_path, "bad.json", '{"layers": [\n  {"type": "ReLU"},\n  {"type": }\n]}')
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert str(err.value).startswith(f"{path}:3:12: invalid JSON: Expecting value")


def test_yaml_syntax_error_has_line(tmp_path):
    path = write(tmp_path, "bad.yaml", "layers:\n  - type: ReLU\n   - type: Tanh\n")
    with pytest.raises(SpecError, match=r"bad\.yaml:3:\d+: invalid YAML"):
        load_spec(path)


def test_toml_syntax_error_has_line(tmp_path):
    path = write(tmp_path, "bad.toml", 'name = "x"\n[[layers]]\ntype = ReLU\n')
    with pytest.raises(SpecError, match=r"bad\.toml: invalid TOML: .*line 3"):
        load_spec(path)


@pytest.mark.parametrize("layers, message", [
    ([{"type": "Conv2D", "out_channels": 4, "kernel_size": 3}],
     "layers[0].type: unknown layer type 'Conv2D' (did you mean 'Conv2d'?)"),
    ([{"type": "ReLU"}, {"type": "Conv2d", "out_channels": 4, "kernel_size": "3"}],
     "layers[1].kernel_size: expected an integer or a list of integers, got '3'"),
    ([{"type": "Conv2d", "out_channels": 4}], "layers[0]: Conv2d needs kernel_size"),
    ([{"type": "Conv2d", "out_channels": 4, "kernel_size": 3, "strides": 2}],
     "layers[0].strides: Conv2d does not take 'strides'"),
    ([{"type": "Conv2d", "out_channels": 4, "kernel_size": 0}],
     "layers[0]: Conv2d: kernel_size must be positive, got 0"),
    ([{"type": "Residual", "body": [{"type": "ReLU"}, {"kernel_size": 3}]}],
     "layers[0].body[1]: missing 'type'"),
    ([{"type": "Branches", "branches": [[{"type": "ReLU"}]]}],
     "layers[0].branches: expected a list of at least two branches"),
    ([{"type": "ReLU", "repeat": 0}], "layers[0].repeat: expected a positive integer, got 0"),
    ([{"type": "Sequential", "layers": [{"type": "Linear", "out_features": True}]}],
     "layers[0].layers[0].out_features: expected an integer, got True"),
    ([{"type": "ReLU", "name": "a.b"}], "layers[0].name: expected a non-empty name without '.'"),
    ("ReLU", "layers: expected a list of layer entries, got a string"),
])
def test_semantic_errors_have_key_path(tmp_path, layers, message):
    path = write(tmp_path, "m.json", json.dumps({"layers": layers}, indent=1))
    with pytest.raises(SpecError) as err:
        load_spec(path)
    where, _, rest = str(err.value).partition(": ")
    assert rest.startswith(message)
    line = int(where.rsplit(":", 1)[1])  # the line of the offending key
    assert where == f"{path}:{line}"
    key = message.split(":")[0].split(".")[-1].split("[")[0]
    if key in ("kernel_size", "strides", "repeat", "out_features", "name", "branches"):
        assert f'"{key}"' in path.read_text().splitlines()[line - 1]


def test_yaml_semantic_error_has_line_and_path(tmp_path):
    path = write(tmp_path, "m.yaml", "name: m\nlayers:\n  - type: ReLU\n  - type: Concat\n"
                 "    branches:\n      - [{type: Conv2d, out_channels: 8, kernel_size: one}]\n      - []\n")
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert str(err.value) == (f"{path}:6: layers[1].branches[0][0].kernel_size: expected an integer "
                              "or a list of integers, got 'one'")
    toml = write(tmp_path, "m.toml", '[[layers]]\ntype = "Conv2d"\nout_channels = 8\nkernel_size = "3"\n')
    with pytest.raises(SpecError, match=r"m\.toml: layers\[0\]\.kernel_size: expected an integer"):
        load_spec(toml)


def test_top_level_errors(tmp_path):
    for data, message in [
        ({"layers": [], "inputs": [1]}, "unknown top-level key 'inputs'"),
        ({"name": "x"}, "missing 'layers'"),
        ({"layers": [], "input": [1, 0, 3]}, "input: expected a list of 2 to 5 positive integers"),
        (3, "expected a mapping with a 'layers' list"),
    ]:
        with pytest.raises(SpecError, match=message):
            load_spec(write(tmp_path, "t.json", json.dumps(data)))
    with pytest.raises(SpecError, match="no such spec file"):
        load_spec(tmp_path / "missing.yaml")
    with pytest.raises(SpecError, match="spec files end in"):
        load_spec(tmp_path / "model.txt")


def test_yaml_missing_gives_install_hint(tmp_path, monkeypatch):
    path = write(tmp_path, "m.yaml", "layers: []\n")
    monkeypatch.setitem(sys.modules, "yaml", None)
    with pytest.raises(SpecError, match=r"needs PyYAML, which is not installed: pip install (-e \S+\[yaml\]|pyyaml)"):
        load_spec(path)


def test_toml_refuses_null_instead_of_dropping_it():
    with pytest.raises(SpecError, match=r"layers\[0\]\.momentum: TOML has no null"):
        dumps_toml({"layers": [{"type": "BatchNorm2d", "momentum": None}]})
    text = dumps_toml({"name": "a b", "input": [1, 2], "layers": [{"type": "X", "weird key": 1.5}]})
    import tomllib

    assert tomllib.loads(text) == {"name": "a b", "input": [1, 2], "layers": [{"type": "X", "weird key": 1.5}]}


def test_spec_files_need_no_torch(tmp_path):
    import subprocess

    path = save_spec(parse_spec(TINY).block, tmp_path / "t.toml", "t", (1, 3, 32, 32))
    code = ("import sys, shapecalc; r = shapecalc.analyze(%r); "
            "assert 'torch' not in sys.modules; print(r.output_shape)" % str(path))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "(1, 10)"


# ------------------------------------------------------------------ bounded expansion
def _one_line(err) -> str:
    text = str(err.value)
    assert "\n" not in text and len(text) < 400
    return text


def test_huge_repeat_fails_fast_naming_the_budget(tmp_path):
    import time

    path = write(tmp_path, "r.json", json.dumps({"layers": [{"type": "ReLU", "repeat": 1_000_000_000}]}))
    start = time.perf_counter()
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert time.perf_counter() - start < 1
    assert "200,000" in _one_line(err) and "node budget" in str(err.value) and "--max-nodes" in str(err.value)
    assert err.value.key_path == "layers[0].repeat" and err.value.line == 1


def test_nested_repeats_count_against_the_budget_and_max_nodes_raises_it(tmp_path):
    inner = {"type": "Sequential", "repeat": 100, "layers": [{"type": "ReLU", "repeat": 100}]}
    data = {"layers": [{"type": "Sequential", "repeat": 30, "layers": [inner]}]}
    path = write(tmp_path, "n.json", json.dumps(data))
    with pytest.raises(SpecError, match="node budget"):
        load_spec(path)
    doc = load_spec(path, max_nodes=400_000)
    assert len(list(doc.block.walk())) > 300_000
    with pytest.raises(SpecError, match="more than 1,000 layers"):
        load_model(str(write(tmp_path, "small.json", json.dumps({"layers": [inner]}))), max_nodes=1_000)


def test_billion_laughs_yaml_stops_at_the_budget(tmp_path):
    import time

    text = "layers:\n  - &l0 {type: ReLU}\n"
    for i in range(1, 10):  # level i holds ten of level i - 1: 10**9 layers in a 1 kB file
        text += f"  - &l{i} {{type: Sequential, layers: [{', '.join([f'*l{i - 1}'] * 10)}]}}\n"
    path = write(tmp_path, "laughs.yaml", text)
    start = time.perf_counter()
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert time.perf_counter() - start < 10
    assert "node budget" in _one_line(err) and err.value.line is not None


def test_recursive_yaml_alias_hits_the_nesting_limit(tmp_path):
    path = write(tmp_path, "loop.yaml", "layers: &x\n  - type: Sequential\n    layers: *x\n")
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert "nesting limit" in _one_line(err)


@pytest.mark.parametrize("suffix, text", [
    (".json", '{"layers": ' + "[" * 5000 + "]" * 5000 + "}"),
    (".yaml", "layers: " + "[" * 50000 + "]" * 50000 + "\n"),  # libyaml itself would crash here
    (".toml", "layers = " + "[" * 3000 + "]" * 3000 + "\n"),
    (".json", json.dumps({"layers": [_deep := {"type": "Sequential", "layers": []}]})),
])
def test_deep_nesting_is_one_line(tmp_path, suffix, text):
    if suffix == ".json" and "Sequential" in text:
        data = {"type": "ReLU"}
        for _ in range(400):
            data = {"type": "Residual", "body": [data]}
        text = json.dumps({"layers": [data]})
    with pytest.raises(SpecError) as err:
        load_spec(write(tmp_path, f"deep{suffix}", text))
    assert "nesting limit" in _one_line(err) or "nested" in str(err.value)


def test_python_blocks_nested_too_deep_or_shared_too_often():
    block = Sequential(ReLU())
    for _ in range(400):
        block = Sequential(block)
    with pytest.raises(SpecError, match="nesting limit"):
        analyze(block, (1, 2, 3, 3))
    shared = Sequential(ReLU(), ReLU())
    for _ in range(40):
        shared = Sequential(shared, shared)
    with pytest.raises(SpecError, match="node budget"):
        analyze(shared, (1, 2, 3, 3))


def test_numbers_beyond_the_digit_limit(tmp_path):
    for suffix, text in [(".json", '{"layers": [{"type": "Linear", "out_features": %s}]}' % ("9" * 5000)),
                         (".yaml", "layers:\n  - {type: Linear, out_features: %s}\n" % ("9" * 5000)),
                         (".toml", '[[layers]]\ntype = "Linear"\nout_features = %s\n' % ("9" * 5000))]:
        with pytest.raises(SpecError) as err:
            load_spec(write(tmp_path, f"big{suffix}", text))
        _one_line(err)
    path = write(tmp_path, "big.json", json.dumps({"layers": [{"type": "Linear", "out_features": 10**30}]}))
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert "layers[0].out_features" in _one_line(err) and "too large" in str(err.value)


def test_oversized_spec_file_is_refused_unread(tmp_path, monkeypatch):
    from shapecalc.models import spec_decode, specfile

    monkeypatch.setattr(specfile, "MAX_SPEC_BYTES", 1000)
    path = write(tmp_path, "huge.json", json.dumps({"layers": [{"type": "ReLU"}] * 200}))
    with pytest.raises(SpecError, match="size limit for spec files"):
        load_spec(path)
    assert spec_decode.MAX_SPEC_BYTES >= 16 * 2**20


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_error_line_costs_no_second_parse(tmp_path, monkeypatch, suffix):
    """A big spec with one bad layer at the end: the line is found without re-reading the file."""
    layers = [{"type": "Conv2d", "out_channels": 4, "kernel_size": 3, "padding": 1}] * 3000
    layers = layers + [{"type": "Conv2d", "out_channels": 4, "kernel_size": -3}]
    path = tmp_path / f"big{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps({"layers": layers}, indent=1))
    else:
        import yaml

        path.write_text(yaml.safe_dump({"layers": layers}))
    import yaml

    calls = {"json": 0}
    real_loads = json.loads
    monkeypatch.setattr(json, "loads", lambda *a, **k: (calls.__setitem__("json", calls["json"] + 1), real_loads(*a, **k))[1])
    monkeypatch.setattr(yaml, "compose", lambda *a, **k: pytest.fail("second YAML parse"))
    monkeypatch.setattr(yaml, "safe_load", lambda *a, **k: pytest.fail("second YAML parse"))
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert err.value.key_path == "layers[3000]" and calls["json"] == (1 if suffix == ".json" else 0)
    line = err.value.line
    assert line is not None and str(err.value).startswith(f"{path}:{line}: layers[3000]: Conv2d: kernel_size")
    text_lines = path.read_text().splitlines()
    assert line > len(text_lines) - 8  # the last entry, not the top of the file


@pytest.mark.parametrize("name", ["training", "forward", "to", "_modules", "dim"])
def test_names_that_are_torch_attributes_are_refused_under_verify(tmp_path, capsys, name):
    pytest.importorskip("torch")
    from shapecalc.models.torch_models import build_module

    layers = [{"type": "Conv2d", "name": name, "out_channels": 4, "kernel_size": 3}, {"type": "ReLU"}]
    if name == "dim":  # an attribute of the Branches module only
        layers = [{"type": "Branches", "branches": [{"name": "dim", "type": "ReLU"}, []]}]
    path = write(tmp_path, "clash.json", json.dumps({"input": [1, 3, 8, 8], "layers": layers}))
    assert analyze(load_model(str(path))).output_shape[0] == 1  # the engine itself is fine
    with pytest.raises(SpecError, match=f"layer name '{name}' .* is an attribute of torch's"):
        build_module(str(path))
    code, _, err = run_main(capsys, "show", str(path), "--verify")
    assert code != 0 and err.count("\n") == 1 and f"layer name '{name}'" in err


def run_main(capsys, *args: str) -> tuple[int, str, str]:
    """The console entry point in-process: (exit status, stdout, stderr)."""
    from shapecalc.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(list(args))
    out, err = capsys.readouterr()
    return exit_.value.code, out, err


def test_cli_max_nodes_flag(tmp_path, capsys):
    path = write(tmp_path, "wide.json", json.dumps({"input": [1, 2, 4, 4], "layers": [{"type": "ReLU", "repeat": 300}]}))
    for command in ("show", "check", "graph"):
        code, _, err = run_main(capsys, command, str(path), "--max-nodes", "100")
        assert code != 0 and err.count("\n") == 1 and "more than 100 layers and blocks" in err, command
    code, out, _ = run_main(capsys, "show", str(path), "--max-nodes", "1000", "--format", "csv")
    assert code == 0 and out.count("ReLU") == 300
    code, _, err = run_main(capsys, "show", str(path), "--max-nodes", "0")
    assert code == 2 and "--max-nodes" in err and err.count("\n") == 1
    # the flag lasts one run: the next run without it has the default budget again
    assert run_main(capsys, "show", str(path), "--format", "csv")[0] == 0
    assert run_main(capsys, "show", str(write(tmp_path, "big.json", json.dumps(
        {"input": [1, 2, 4, 4], "layers": [{"type": "ReLU", "repeat": 250_000}]}))))[0] != 0
