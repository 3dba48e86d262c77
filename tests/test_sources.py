"""MODEL strings: zoo names, spec files, file.py:Net, package.module:Net, factory calls — as data."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest

from shapecalc import SpecError, analyze, load_model
from shapecalc.core.errors import ArgumentError
from shapecalc.models.sources import is_torch_module, parse_target, resolve

SPEC_FACTORY = textwrap.dedent("""
    from shapecalc.core.blocks import Sequential
    from shapecalc.core.layers import Conv2d, ReLU

    CALLS = []

    def make(width=4, *, depth=1):
        CALLS.append((width, depth))
        return Sequential(*[Conv2d(None, width, 3) for _ in range(depth)], ReLU())

    def broken():
        raise RuntimeError("boom")

    NOT_A_MODEL = 3
""")

TORCH_FILE = textwrap.dedent("""
    import torch.nn as nn
    from helper import WIDTH  # a neighbour module: the file's folder is importable

    class Net(nn.Module):
        def __init__(self, num_classes=10):
            super().__init__()
            self.conv = nn.Conv2d(1, WIDTH, 3)
            self.fc = nn.Linear(WIDTH * 26 * 26, num_classes)

        def forward(self, x):
            return self.fc(self.conv(x).flatten(1))

    class Needs(nn.Module):
        def __init__(self, depth):
            super().__init__()
""")


@pytest.fixture
def spec_module(tmp_path):
    path = tmp_path / "specs.py"
    path.write_text(SPEC_FACTORY)
    return path


def test_parse_target_reads_literals_only():
    assert parse_target("Net") == (["Net"], [], {}, False)
    assert parse_target("make_net(3, num_classes=10, sizes=(1, 2))") == (
        ["make_net"], [3], {"num_classes": 10, "sizes": (1, 2)}, True)
    assert parse_target("Outer.build()") == (["Outer", "build"], [], {}, True)
    for bad, message in [
        ("make(__import__('os'))", "argument 1 must be a literal"),
        ("make(x=open('f'))", "x must be a literal"),
        ("make(**cfg)", r"\*\*kwargs is not allowed"),
        ("1 + 2", "expected a name"),
        ("make(", "cannot parse"),
    ]:
        with pytest.raises(SpecError, match=message):
            parse_target(bad)


def test_zoo_name_first(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    src = resolve("AlexNet")
    assert src.name == "alexnet" and src.default_input == (1, 1, 224, 224)
    with pytest.raises(SpecError, match="did you mean 'alexnet'.*spec file"):
        resolve("alexnett")
    with pytest.raises(SpecError, match="MODEL is empty"):
        resolve("  ")


def test_spec_file(tmp_path):
    path = tmp_path / "net.json"
    path.write_text(json.dumps({"input": [1, 1, 8, 8], "layers": [
        {"type": "Conv2d", "out_channels": 2, "kernel_size": 3}]}))
    src = load_model(str(path))
    assert src.name == "net" and src.default_input == (1, 1, 8, 8) and src.spec is not None
    assert analyze(str(path)).output_shape == (1, 2, 6, 6)


def test_file_factory_returning_a_spec_block(spec_module):
    src = load_model(f"{spec_module}:make(width=6, depth=2)")
    assert src.name == "make" and src.spec is not None
    assert analyze(src, (1, 3, 9, 9)).output_shape == (1, 6, 5, 5)


def test_file_target_errors(spec_module, tmp_path):
    with pytest.raises(SpecError, match="has no 'mak' .*did you mean 'make'"):
        load_model(f"{spec_module}:mak")
    with pytest.raises(SpecError, match=r"broken\(\) failed: RuntimeError: boom"):
        load_model(f"{spec_module}:broken")
    with pytest.raises(SpecError, match="gave a int; expected an nn.Module"):
        load_model(f"{spec_module}:NOT_A_MODEL")
    with pytest.raises(SpecError, match="no such Python file"):
        load_model(f"{tmp_path / 'nope.py'}:Net")
    with pytest.raises(SpecError, match=r"name the class or factory in it, like x\.py:Net"):
        load_model("x.py")
    bad = tmp_path / "syntax.py"
    bad.write_text("def (:\n")
    with pytest.raises(SpecError, match="importing .*syntax.py failed: SyntaxError"):
        load_model(f"{bad}:Net")


def test_package_module_target(tmp_path, monkeypatch):
    pkg = tmp_path / "mypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "nets.py").write_text(SPEC_FACTORY)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    src = load_model("mypkg.nets:make(5)")
    assert analyze(src, (1, 3, 5, 5)).output_shape == (1, 5, 3, 3)
    assert str(tmp_path) not in sys.path  # the folder was only borrowed
    with pytest.raises(SpecError, match="cannot import 'mypkg.missing'"):
        load_model("mypkg.missing:Net")


def test_torch_file_class_and_arguments(tmp_path):
    pytest.importorskip("torch")
    (tmp_path / "helper.py").write_text("WIDTH = 4\n")
    path = tmp_path / "model.py"
    path.write_text(TORCH_FILE)
    result = analyze(f"{path}:Net", (2, 1, 28, 28))
    assert result.output_shape == (2, 10) and result.total_params == 40 + 4 * 26 * 26 * 10 + 10
    assert analyze(f"{path}:Net(num_classes=3)", (1, 1, 28, 28)).output_shape == (1, 3)
    with pytest.raises(SpecError, match=r"Needs\(\) failed: TypeError: .*give arguments like"):
        load_model(f"{path}:Needs")


def test_module_instances_are_detected_without_importing_torch():
    assert not is_torch_module(3) and not is_torch_module(load_model("alexnet"))
    torch = pytest.importorskip("torch")
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU())
    assert is_torch_module(net)
    src = load_model(net)
    assert src.torch_import.route == "chain" and src.spec is not None
    assert analyze(net, (1, 1, 5, 5)).output_shape == (1, 2, 3, 3)
    with pytest.raises(ArgumentError, match="^model: cannot analyse a dict"):
        load_model({"layers": []})


def test_module_input_shape_attribute_is_the_default():
    torch = pytest.importorskip("torch")
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3))
    net.input_shape = (1, 1, 6, 6)
    assert analyze(net).output_shape == (1, 2, 4, 4)


def test_library_api_on_an_own_module(tmp_path):
    torch = pytest.importorskip("torch")
    from corpus import special

    from shapecalc.models.torch_models import build_module

    model = special.MeasuredOps()
    result = analyze(model, (1, 4, 8, 8))
    data = json.loads(result.to_json())
    chunk = next(r for r in data["layers"] if r["name"] == "getitem")
    assert chunk["origin"] == "measured" and chunk["output_shape"] == [1, 2, 16, 16]
    assert "shape and MACs measured by running torch" in result.table()
    dot = result.to_dot()
    assert dot.startswith('digraph MeasuredOps {') and "mix#2" in dot
    assert build_module(model) is model  # training a MODEL string trains the user's module
    assert isinstance(model, torch.nn.Module)


# ------------------------------------------------------------------ data is never code
@pytest.mark.parametrize("target, words", [
    ("os:system('touch {marker}')", "standard library"),
    ("subprocess:getoutput('touch {marker}')", "standard library"),
    ("builtins:exec('open(\"{marker}\", \"w\")')", "standard library"),
    ("shutil:rmtree('{folder}')", "standard library"),
])
def test_standard_library_targets_are_refused_unrun(tmp_path, target, words):
    marker, folder = tmp_path / "ran", tmp_path / "keep"
    folder.mkdir()
    with pytest.raises(SpecError, match=words):
        load_model(target.format(marker=marker, folder=folder))
    assert not marker.exists() and folder.is_dir()


def test_only_model_classes_and_model_factories_are_called(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "mymod.py"
    path.write_text(textwrap.dedent(f"""
        import os, sys
        from subprocess import getoutput, Popen
        from shutil import rmtree

        class Plain:
            def __init__(self):
                open({str(marker)!r}, "w").close()
    """))
    for target, words in [
        ("sys.exit(0)", "builtin_function_or_method, not an nn.Module class"),
        ("os.system('touch x')", "not an nn.Module class"),
        (f"getoutput('touch {marker}')", "not defined in your own code; it was not called"),
        (f"rmtree({str(tmp_path)!r})", "not defined in your own code; it was not called"),
        ("Popen(['touch', 'x'])", "is a class but not an nn.Module"),
        ("Plain", "is a class but not an nn.Module"),
        ("os.getcwd", "not an nn.Module class"),
    ]:
        with pytest.raises(SpecError, match=words):
            load_model(f"{path}:{target}")
    assert not marker.exists() and path.exists()


def test_factories_from_installed_packages_need_a_module_annotation(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    site = tmp_path / "site"
    (site / "zoopkg").mkdir(parents=True)
    (site / "zoopkg" / "__init__.py").write_text(textwrap.dedent("""
        import torch.nn as nn

        def annotated(width=2) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(1, width, 3))

        def plain(width=2):
            return nn.Sequential(nn.Conv2d(1, width, 3))
    """))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)  # the package is not the user's own code: it is outside the cwd
    monkeypatch.syspath_prepend(str(site))
    assert analyze("zoopkg:annotated(width=3)", (1, 1, 5, 5)).output_shape == (1, 3, 3, 3)
    with pytest.raises(SpecError, match="not annotated to return one"):
        load_model("zoopkg:plain")


def test_exits_from_user_code_become_one_line_and_interrupts_pass_on(tmp_path):
    path = tmp_path / "exits.py"
    path.write_text(textwrap.dedent("""
        import sys
        from shapecalc.core.blocks import Sequential

        def quits():
            sys.exit(3)

        def interrupted():
            raise KeyboardInterrupt
    """))
    with pytest.raises(SpecError, match=r"quits\(\) raised SystemExit 3"):
        load_model(f"{path}:quits")
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C is exit 130 wherever it lands
        load_model(f"{path}:interrupted")
    on_import = tmp_path / "leaves.py"
    on_import.write_text("raise SystemExit(0)\n")
    with pytest.raises(SpecError, match="importing .*leaves.py raised SystemExit 0"):
        load_model(f"{on_import}:Net")


def test_a_spec_file_on_disk_is_always_a_spec(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "ran"
    (tmp_path / "net.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    (tmp_path / "net:v2.json").write_text(json.dumps({"input": [1, 1, 8, 8], "layers": [
        {"type": "Conv2d", "out_channels": 2, "kernel_size": 3}]}))
    assert analyze("net:v2.json").output_shape == (1, 2, 6, 6)
    assert not marker.exists()
    with pytest.raises(SpecError):  # no such spec: then it is a target, and v2.json no name
        load_model("net:v3.json")
