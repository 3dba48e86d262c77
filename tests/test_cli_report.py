"""``shapecalc report``: one self-contained page for zoo names, spec files and own modules,
written atomically; one-line errors. What the page does in a browser: test_report_browser."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap

import pytest

from shapecalc import analyze
from shapecalc.cli import main

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` not installed")


def layers_of(page: str) -> dict:
    data = re.search(r'<script type="application/json" id="sc-data">(.*?)</script>', page, re.S)
    return json.loads(data.group(1))["layers"]


@needs_dot
def test_zoo_model_report(tmp_path, cli):
    target = tmp_path / "alexnet.html"
    code, out, err = cli("report", "alexnet", "-o", str(target))
    assert code == 0 and out == "" and f"written to {target}" in err
    page = target.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page
    assert layers_of(page)["0"]["explain"] == analyze("alexnet").records[0].explain()
    assert [p.name for p in tmp_path.iterdir()] == ["alexnet.html"]


def test_spec_file_report_to_stdout(tmp_path, capfd):
    spec = tmp_path / "tiny.json"
    spec.write_text(json.dumps({"input": [1, 3, 32, 32], "layers": [
        {"type": "Conv2d", "in_channels": 3, "out_channels": 8, "kernel_size": 5, "stride": 2},
        {"type": "ReLU"}]}))
    with pytest.raises(SystemExit) as exc:
        main(["report", str(spec), "-o", "-", "--no-graph"])
    out, err = capfd.readouterr()
    assert exc.value.code == 0 and err == ""
    layers = layers_of(out)
    assert layers["0"]["output_shape"] == [1, 8, 14, 14]
    # --no-graph: no graph drawing; the memory section's roofline is the only picture
    assert out.count("<svg") == 1 and 'aria-label="roofline"' in out


@needs_dot
def test_own_module_report(tmp_path, cli):
    pytest.importorskip("torch")
    source = tmp_path / "mynet.py"
    source.write_text(textwrap.dedent("""
        import torch.nn as nn
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.features = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
                self.head = nn.Linear(4 * 14 * 14, 10)
            def forward(self, x):
                return self.head(self.features(x).flatten(1))
    """))
    target = tmp_path / "mynet.html"
    code, _, err = cli("report", f"{source}:Net", "--input", "1x1x28x28", "-o", str(target))
    assert code == 0, err
    layers = layers_of(target.read_text(encoding="utf-8"))
    conv = next(v for v in layers.values() if v["type"] == "Conv2d")
    assert conv["output_shape"] == [1, 4, 28, 28] and [a["size"] for a in conv["rf"]] == [3, 3]


@pytest.mark.parametrize("args,code,words", [
    (["alexnet"], 2, "-o"),
    (["alexnet", "-o", "/nonexistent-dir/r.html"], 2, "-o: folder '/nonexistent-dir' does not exist"),
    (["alexnet", "-o", "r.txt"], 2, "-o: cannot tell the format"),
    (["alexnet", "-o", "r.html", "--depth", "1", "--expand"], 2, "--depth and --expand"),
    (["resnet5", "-o", "r.html"], 2, "did you mean"),  # could not be loaded: 2
])
def test_bad_input_is_one_line(cli, args, code, words):
    got, out, err = cli("report", *args)
    assert got == code and out == ""
    assert len(err.strip().splitlines()) == 1 and words in err


def test_an_existing_report_is_replaced_whole_or_kept(tmp_path, cli):
    target = tmp_path / "r.html"
    target.write_text("old")
    code, _, err = cli("report", "alexnet", "--input", "1x1xax2", "-o", str(target), "--no-graph")
    assert code == 2 and "--input" in err
    assert target.read_text() == "old"
    code, _, err = cli("report", "alexnet", "--input", "1x1x2x2", "-o", str(target), "--no-graph")
    assert code == 1 and "too small" in err and err.count("\n") == 1
    assert target.read_text().startswith("<!DOCTYPE html>") and [p.name for p in tmp_path.iterdir()] == ["r.html"]


def verdict_of(page: str) -> list[str]:
    """The report's diagnosis section as the lines a reader sees: the verdict, then each field
    or fix."""
    section = re.search(r'<section class="sc-diagnosis[^"]*">(.*?)</section>', page, re.S).group(1)
    texts = re.findall(r"<(?:p|caption|li|th|td)[^>]*>(.*?)</(?:p|caption|li|th|td)>", section, re.S)
    return [html.unescape(re.sub(r"<[^>]+>", "", t)) for t in texts]


def test_the_report_gives_checks_verdict_for_a_model_that_fits(tmp_path, cli):
    target = tmp_path / "a.html"
    assert cli("report", "alexnet", "-o", str(target), "--no-graph").code == 0
    code, out, _ = cli("check", "alexnet")
    assert code == 0
    verdict = verdict_of(target.read_text(encoding="utf-8"))
    assert verdict == [line.strip() for line in out.splitlines()]
    assert verdict[0] == "✓ alexnet fits input 1×1×224×224 → 1×10"


def test_the_report_of_a_model_that_does_not_fit_gives_the_verdict_and_the_fixes(tmp_path, cli):
    target = tmp_path / "small.html"
    code, out, err = cli("report", "alexnet", "--input", "1x1x32x32", "-o", str(target), "--no-graph")
    assert code == 1 and out == "" and err.count("\n") == 1
    assert err.rstrip().endswith(f"the report in {target} gives the verdict and 1 verified fix")
    page = target.read_text(encoding="utf-8")
    assert 'class="sc-table' not in page and 'id="sc-data"' not in page  # no table: nothing to draw
    verdict = verdict_of(page)
    _, checked, _ = cli("check", "alexnet", "--input", "1x1x32x32")
    lines = checked.splitlines()
    assert verdict[0] == lines[0] == "✗ alexnet does not fit input 1×1×32×32"
    assert verdict[-1] == lines[-1].removeprefix("  fix 1: ")
    assert verdict[-1] == "use input 65×65 (gives 1×256×3×3; any size from 65 up works)"
    assert ["at node", "'5'  MaxPool2d(k=3, s=2)"] == verdict[verdict.index("at node"):verdict.index("at node") + 2]


def test_the_report_of_a_model_that_folds_the_batch_says_so(tmp_path, cli):
    pytest.importorskip("torch")
    source = tmp_path / "folding.py"
    source.write_text(textwrap.dedent("""
        import torch.nn as nn
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(3, 16, 5)
                self.pool = nn.MaxPool2d(2)
                self.fc = nn.Linear(400, 10)
            def forward(self, x):
                return self.fc(self.pool(self.conv(x)).view(-1, 400))
    """))
    target = tmp_path / "fold.html"
    code, _, err = cli("report", f"{source}:Net", "--input", "1x3x64x64", "-o", str(target), "--no-graph")
    assert code == 0, err
    page = target.read_text(encoding="utf-8")
    verdict = verdict_of(page)
    _, checked, _ = cli("check", f"{source}:Net", "--input", "1x3x64x64")
    fixes = [line.split(": ", 1)[1] for line in checked.splitlines() if line.startswith("  fix ")]
    assert verdict[0] == checked.splitlines()[0] == "✗ Net does not keep the batch at input 1×3×64×64"
    assert len(fixes) == 2 and verdict[-2:] == fixes
    assert layers_of(page)  # the table is there too: the model runs, at 36 samples for one


def test_missing_dot_names_the_way_round_it(tmp_path):
    env = {**os.environ, "PATH": str(tmp_path / "empty")}
    proc = subprocess.run([sys.executable, "-m", "shapecalc", "report", "lenet", "-o", str(tmp_path / "l.html")],
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1
    assert "apt-get install graphviz" in proc.stderr and "--no-graph" in proc.stderr
    assert not (tmp_path / "l.html").exists()


def test_show_format_html(capfd):
    with pytest.raises(SystemExit) as exc:
        main(["show", "lenet", "--format", "html"])
    out, _ = capfd.readouterr()
    assert exc.value.code == 0 and out.startswith("<!DOCTYPE html>")
    assert out.count('<tr class="sc-row') == len(analyze("lenet").records)


@needs_dot
def test_dot_running_too_long_is_stopped_with_one_line(tmp_path, cli):
    target = tmp_path / "r50.html"
    code, out, err = cli("report", "resnet50", "--expand", "--dot-timeout", "0.001", "-o", str(target))
    assert code == 1 and out == "" and not target.exists()
    assert err.count("\n") == 1 and "`dot -Tsvg` did not finish within 0.001 s" in err
    assert "--depth N" in err and "--no-graph" in err and "raise --dot-timeout" in err


TWO_INPUTS = textwrap.dedent("""
    import torch.nn as nn
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.emb = nn.Embedding(10, 4)
        def forward(self, img, tokens):
            return self.conv(img).mean(dim=(2, 3)) + self.emb(tokens).mean(dim=1)
""")


def test_a_two_input_model_takes_one_input_flag_each(tmp_path, cli):
    pytest.importorskip("torch")
    source = tmp_path / "two.py"
    source.write_text(TWO_INPUTS)
    target = tmp_path / "two.html"
    code, _, err = cli("report", f"{source}:Net", "--input", "1x3x8x8", "--input", "1x5:int64",
                       "-o", str(target), "--no-graph")
    assert code == 0, err
    layers = layers_of(target.read_text(encoding="utf-8"))
    emb = next(v for v in layers.values() if v["type"] == "Embedding")
    assert emb["output_shape"] == [1, 5, 4]
    code, out, err = cli("report", f"{source}:Net", "--input", "1x3x8x8", "-o", str(target))
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "--input: Net takes 2 input(s) (img, tokens), got 1 shape(s)" in err
