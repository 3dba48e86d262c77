"""``shapecalc show`` and ``shapecalc models`` through click's runner and the entry point."""

from __future__ import annotations

import csv
import io
import json
import shutil

import pytest

from shapecalc import analyze
from shapecalc.cli import show as show_mod
from shapecalc.models.zoo import ZOO

#: The seed's (d2l §8.1) printout: the spatial size (or features) after every layer that changes it.
SEED_SIZES = [54, 26, 26, 12, 12, 12, 12, 5, 6400, 4096, 4096, 10]


def seed_sizes(layers: list[dict]) -> list[int]:
    """The seed prints conv/pool/linear outputs (and Flatten): their last dimension."""
    keep = ("Conv2d", "MaxPool2d", "Flatten", "Linear")
    return [layer["output_shape"][-1] for layer in layers if layer["type"] in keep]


def test_json_reproduces_the_seed_listing(cli):
    data = json.loads(cli("show", "alexnet", "--json").stdout)
    assert data["model"] == "alexnet"
    assert data["input_shape"] == [1, 1, 224, 224] and data["output_shape"] == [1, 10]
    assert seed_sizes(data["layers"]) == SEED_SIZES
    assert data["total_params"] == 46_764_746
    assert data["total_macs"] == sum(layer["macs"] for layer in data["layers"])
    for layer in data["layers"]:
        assert {"name", "type", "input_shape", "output_shape", "params", "macs"} <= set(layer)
        assert layer["flops"] == 2 * layer["macs"]
    first = data["layers"][0]
    assert first["output_shape"] == [1, 96, 54, 54] and first["params"] == 96 * 121 + 96
    assert first["rf"] == [11, 11] and first["notes"] == ["drops 3 px (H, W)"]


def test_format_json_equals_json_flag(cli):
    assert cli("show", "alexnet", "--format", "json").stdout == cli("show", "alexnet", "--json").stdout


def test_table_lists_every_layer_and_totals(cli):
    out = cli("show", "alexnet").stdout
    rows = [line.split() for line in out.splitlines() if line[:3].strip().isdigit()]
    assert len(rows) == 21
    shapes = [next(c for c in row if c.startswith("1×")) for row in rows]
    assert [int(s.split("×")[-1]) for s in shapes if s] == [
        54, 54, 26, 26, 26, 12, 12, 12, 12, 12, 12, 12, 5, 6400, 4096, 4096, 4096, 4096, 4096, 4096, 10
    ]
    assert "Total params: 46,764,746" in out
    assert "FLOPs: 1,877,509,652" in out and "every weight and bias once per position" in out
    assert "Memory (float32): parameters 178.39 MiB" in out
    assert "drops 3 px (H, W)" in out and "global" in out
    assert not any(line != line.rstrip() for line in out.splitlines())  # piped: no padding


def test_table_in_a_terminal(monkeypatch, cli):
    monkeypatch.setattr(show_mod, "is_terminal", lambda: True)
    monkeypatch.setenv("COLUMNS", "200")  # rich sizes a terminal table from COLUMNS
    out = cli("show", "alexnet", "--depth", "0").stdout
    assert "Total params: 46,764,746" in out and "Conv2d(1→96, k=11, s=4, p=1)" in out


def test_explain_adds_each_layers_arithmetic(cli):
    out = cli("show", "alexnet", "--explain").stdout
    assert "floor((224 − 11 + 2 + 4) / 4) = floor(219 / 4) = 54" in out
    assert "floor((12 − 3 + 0 + 2) / 2) = floor(11 / 2) = 5" in out
    data = json.loads(cli("show", "alexnet", "--json", "--explain").stdout)
    assert data["layers"][0]["explain"][1].strip().endswith("= 54")


def test_input_227_derives_in_features(cli):
    out = cli("show", "alexnet", "--input", "1x1x227x227").stdout
    assert "in_features=9216 derived from the input" in out
    assert "Linear(9216→4096)" in out


def test_dtype_changes_memory(cli):
    data32 = json.loads(cli("show", "alexnet", "--json").stdout)
    data16 = json.loads(cli("show", "alexnet", "--json", "--dtype", "float16").stdout)
    assert data16["param_bytes"] * 2 == data32["param_bytes"] == 46_764_746 * 4
    assert "Memory (float16)" in cli("show", "alexnet", "--dtype", "float16").stdout


def test_csv_and_markdown_have_the_table_columns(cli):
    rows = list(csv.DictReader(io.StringIO(cli("show", "alexnet", "--format", "csv").stdout)))
    assert len(rows) == 21 and rows[0]["output_shape"] == "1x96x54x54"
    assert rows[0]["layer"] == "Conv2d(1→96, k=11, s=4, p=1)" and rows[14]["notes"].startswith("in_features=6400")
    md = cli("show", "alexnet", "--format", "markdown").stdout
    assert md.splitlines()[0].startswith("| # | name | layer | output shape")
    assert "| 0 | 0 | Conv2d(1→96, k=11, s=4, p=1) | 1×96×54×54 | 11,712 |" in md


@pytest.mark.parametrize("name", sorted(ZOO))
def test_every_zoo_model_shows_and_depth_collapses(name, cli):
    full = json.loads(cli("show", name, "--json").stdout)
    result = analyze(name)
    assert full["output_shape"] == list(result.output_shape)
    assert full["total_params"] == result.total_params
    shallow = cli("show", name, "--depth", "0", "--format", "csv").stdout
    rows = list(csv.DictReader(io.StringIO(shallow)))
    # collapsed blocks still account for every parameter exactly once
    assert sum(int(r["params"]) for r in rows) == result.total_params


def test_verify_marks_every_node(cli):
    pytest.importorskip("torch")
    out = cli("show", "alexnet", "--verify").stdout
    header = next(line for line in out.splitlines() if "torch" in line and "layer" in line)
    assert "torch" in header
    assert out.count("✓") == 21 and "✗" not in out


def test_verify_exits_1_on_disagreement(monkeypatch, cli):
    from shapecalc.torch_bridge import NodeCheck  # the dataclass only: no torch import

    monkeypatch.setattr(show_mod, "_verify",
                        lambda src, shape: [NodeCheck("0", (1, 96, 54, 54), (1, 96, 55, 55))])
    run = cli("show", "alexnet", "--verify")
    (code, err), out = run.error, run.out
    assert code == 1 and "torch disagrees with the engine at 1 node(s); first at '0'" in err
    assert "✗ 1×96×55×55" in out  # the table is printed before the error line
    rows = [line for line in out.splitlines() if line[:3].strip().isdigit()]
    assert sum(" · " in row or row.endswith(" ·") for row in rows) == 20  # nodes the (fake) check did not measure


def test_graph_option_writes_a_file(tmp_path, cli):
    pytest.importorskip("shapecalc.output.dot")
    target = tmp_path / "alexnet.dot"
    assert cli("show", "alexnet", "--graph", str(target)).code == 0
    assert "Conv2d" in target.read_text()


def test_graph_to_a_missing_directory_fails_before_printing(tmp_path, cli):
    pytest.importorskip("shapecalc.output.dot")
    run = cli("show", "alexnet", "--graph", str(tmp_path / "no" / "g.dot"))
    (code, err), out = run.error, run.out
    assert code == 2 and err.startswith("shapecalc: error: --graph:") and out == ""


def test_models_lists_every_registered_model(cli):
    out = cli("models").stdout
    for name in ZOO:
        assert name in out
    data = json.loads(cli("models", "--json").stdout)
    assert [row["name"] for row in data] == list(ZOO)
    alexnet = next(row for row in data if row["name"] == "alexnet")
    assert alexnet["params"] == 46_764_746 and alexnet["default_input"] == [1, 1, 224, 224]
    assert all(row["params"] == analyze(row["name"]).total_params for row in data)


@pytest.mark.parametrize(
    "args, code, words",
    [
        (["show", "alexnet", "--input", "1x1x64x64"], 1,
         "the size collapses at node '12' MaxPool2d(k=3, s=2)"),
        (["show", "alexnett"], 2, "unknown model 'alexnett' (did you mean 'alexnet'"),
        (["show", "alexnet", "--input", "1xax224"], 2, "--input: 'a' is not an integer"),
        (["show", "alexnet", "--input", "224"], 2, "--input: expected a shape like 1x1x224x224"),
        (["show", "alexnet", "--input", "1x1x0x224"], 2, "--input: must be ≥ 1, got 0"),
        (["show", "alexnet", "--input", "1x1x-3x224"], 2, "--input: must be ≥ 1, got -3"),
        (["show", "alexnet", "--input", "1x3x224x224"], 1, "expects 1 input channels, got 3"),
        (["show", "alexnet", "--format", "xml"], 2, "--format"),
        (["show", "alexnet", "--depth", "-1"], 2, "--depth"),
        (["shwo", "alexnet"], 2, "did you mean 'show'"),
        (["show", "alexnet", "--columns", "params,flops"], 2,
         "--columns: unknown column 'flops'; choose from input_size, output_size"),
        (["show", "alexnet", "--width", "5"], 2, "--width"),
    ],
)
def test_bad_inputs_give_one_line(args, code, words, cli):
    got, err = cli(*args).error
    assert got == code
    assert words in err


def test_columns_and_width_for_pipes(cli):
    out = cli("show", "alexnet", "--columns", "input,output,params,percent", "--width", "80").stdout
    header = out.splitlines()[1].split()
    assert header == ["#", "layer", "input", "shape", "output", "shape", "params", "params", "%"]
    assert "56.06%" in out and all(len(line) <= 80 for line in out.splitlines())
    assert "in_features=6400" not in out  # notes were not chosen


def test_too_small_input_names_the_smallest_that_works(cli):
    _, err = cli("show", "alexnet", "--input", "1x1x64x64").error
    assert "the smallest input that works is 65 (--input 1x1x65x65)" in err
    data = json.loads(cli("show", "alexnet", "--input", "1x1x65x65", "--json").stdout)
    assert data["output_shape"] == [1, 10]


def test_repeated_input_with_dtype_and_train_mode(tmp_path, cli):
    """A two-input nn.Module (an int64 token input) through --input twice, and --train-mode."""
    pytest.importorskip("torch")
    source = tmp_path / "two.py"
    source.write_text(
        "import torch\nfrom torch import nn\n"
        "class Two(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.embed = nn.Embedding(10, 4)\n"
        "        self.fc = nn.Linear(4, 4)\n"
        "    def forward(self, x, tokens):\n"
        "        return self.fc(x) + self.embed(tokens).mean(1)\n")
    model = f"{source}:Two"
    data = json.loads(cli("show", model, "--input", "1x4", "--input", "1x5:int64", "--json").stdout)
    assert data["input_dtypes"] == ["float32", "int64"] and data["output_shape"] == [1, 4]
    assert data["mode"] == "eval"
    train = cli("show", model, "--input", "1x4", "--input", "1x5:int64", "--train-mode").stdout
    assert "(train mode)" in train.splitlines()[0]
    for args, expected in ((["--input", "1x4:int65", "--input", "1x5"], "--input: element type 'int65'"),
                           (["--input", "1x4"], "--input: Two takes 2 input(s)")):
        _code, err = cli("show", model, *args).error
        assert expected in err, err


def test_graph_errors_name_the_graph_option(tmp_path, cli):
    # The library names its parameter ("path"); show maps it to its own flag, not graph's -o.
    link = tmp_path / "g.svg"
    link.symlink_to(tmp_path / "elsewhere.svg")
    run = cli("show", "lenet", "--graph", str(link))
    (code, err), out = run.error, run.out
    assert code == 2 and out == ""
    assert err.startswith("shapecalc: error: --graph: ") and "symbolic link" in err
    code, err = cli("show", "lenet", "--graph", str(tmp_path / "g.txt")).error
    assert err.startswith("shapecalc: error: --graph: cannot tell the format")


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` not installed")
def test_graph_beside_the_table_is_bounded_in_time(tmp_path, cli):
    target = tmp_path / "r50.svg"
    code, out, err = cli("show", "resnet50", "--graph", str(target), "--dot-timeout", "0.001")
    assert code == 1 and out == "" and not target.exists()
    assert err.count("\n") == 1 and "did not finish within 0.001 s" in err and "--dot-timeout" in err
