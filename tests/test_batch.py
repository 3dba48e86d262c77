"""A model that folds the batch (``x.view(-1, 400)`` at the wrong size) is a finding, never a fit,
and no proposed fix changes the batch: each is run in real torch at two batch sizes."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import shapecalc
from shapecalc.core.blocks import Sequential
from shapecalc.core.graph import analyze_graph
from shapecalc.core.layers import Conv2d, Flatten, Linear, ReLU
from shapecalc.core.layers.functional import Permute, Reshape, Transpose
from shapecalc.diagnose import FixKind, diagnose, scan_inputs
from shapecalc.diagnose.batch import batch_fold, keeps_batch

torch = pytest.importorskip("torch")
nn = torch.nn

FOLDING_NET = '''
import torch
from torch import nn
import torch.nn.functional as F


class Net(nn.Module):
    def __init__(self, features=400):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 5)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(features, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv(x)))
        x = x.view(-1, 400)
        return self.fc(x)
'''


@pytest.fixture
def folding_file(tmp_path):
    path = tmp_path / "folding.py"
    path.write_text(FOLDING_NET)
    return path


def torch_output(path, size: int, batch: int, flatten: bool = False, features: int = 400):
    """The real model's output at ``batch`` images of ``size``×``size``; ``flatten`` runs the
    code fix (``x.flatten(1)`` instead of ``x.view(-1, 400)``)."""
    namespace: dict = {}
    source = path.read_text()
    if flatten:
        source = source.replace("x.view(-1, 400)", "x.flatten(1)")
    exec(compile(source, str(path), "exec"), namespace)
    model = namespace["Net"](features).eval()
    with torch.no_grad():
        return tuple(model(torch.zeros(batch, 3, size, size)).shape)


def test_the_issue_example_at_32_proposes_only_what_keeps_the_batch(cli, folding_file):
    line = FOLDING_NET.splitlines().index("        x = x.view(-1, 400)") + 1
    code, out, err = cli("check", f"{folding_file}:Net", "--input", "1x3x32x32")
    assert code == 1 and err == ""
    lines = out.splitlines()
    assert lines[0] == "✗ Net does not fit input 1×3×32×32"
    assert lines[4] == (f"  Reshape(-1, 400) at 'view' ({folding_file}:{line}) receives 1×16×14×14 "
                        "(3136 per sample) at input 32×32")
    assert lines[5:] == [
        f"  fix 1: write x.flatten(1) (or x.view(x.size(0), -1)) at {folding_file}:{line} instead of "
        "the reshape to (-1, 400), and set in_features=3136 on 'fc'",
        "  fix 2: use input 15×15 (gives 1×400; sizes 14 to 15 all work)"]
    assert "34×34" not in out  # 9×400 from one image: no longer proposed
    # Both fixes, in real torch: one image in, one row out; three in, three out.
    for batch in (1, 3):
        assert torch_output(folding_file, 32, batch, flatten=True, features=3136) == (batch, 10)
        assert torch_output(folding_file, 14, batch) == torch_output(folding_file, 15, batch) == (batch, 10)
    assert torch_output(folding_file, 34, 1) == (9, 10)  # what the old proposal did


def test_sizes_that_fit_by_folding_the_batch_are_a_finding_with_exit_1(cli, folding_file):
    line = FOLDING_NET.splitlines().index("        x = x.view(-1, 400)") + 1
    assert torch_output(folding_file, 64, 1) == (36, 10)  # torch runs it: the sizes "fit"
    code, out, err = cli("check", f"{folding_file}:Net", "--input", "1x3x64x64")
    assert code == 1 and err == ""
    assert out.splitlines() == [
        "✗ Net does not keep the batch at input 1×3×64×64",
        "  at node   'view'  Reshape(-1, 400)",
        "  expected  output batch 1, as the input's",
        "  got       36×10 (batch 36 from 'view')",
        f"  Reshape(-1, 400) at 'view' ({folding_file}:{line}) does not keep the batch: "
        "1×16×30×30 becomes 36×400, so 1 sample in gives 36×10 out",
        f"  fix 1: write x.flatten(1) (or x.view(x.size(0), -1)) at {folding_file}:{line} instead of "
        "the reshape to (-1, 400), and set in_features=14400 on 'fc'",
        "  fix 2: use input 15×15 (gives 1×400; sizes 14 to 15 all work)"]
    assert torch_output(folding_file, 64, 2, flatten=True, features=14400) == (2, 10)
    code, out, _ = cli("check", f"{folding_file}:Net", "--input", "1x3x64x64", "--json")
    data = json.loads(out)
    assert code == 1 and data["fits"] is False and data["output_shape"] == [36, 10]
    assert data["batch_fold"] == {"node": "view", "layer": "Reshape(-1, 400)", "where": f"{folding_file}:{line}",
                                  "before": [1, 16, 30, 30], "after": [36, 400], "output": [36, 10],
                                  "batch": 1, "fix": "x.flatten(1) (or x.view(x.size(0), -1))"}
    assert data["fix_details"][0]["also"][0]["value"] == 14400
    code, out, _ = cli("check", f"{folding_file}:Net", "--input", "1x3x14x14")
    assert code == 0 and out.startswith("✓ Net fits input 1×3×14×14 → 1×10")


def test_the_api_notebook_and_html_say_the_same(folding_file):
    diag = diagnose(f"{folding_file}:Net", (2, 3, 64, 64))
    assert not diag.fits and diag.batch_fold.node == "view" and diag.batch_fold.after == (72, 400)
    assert diag.summary().startswith("Reshape(-1, 400) at 'view' (")
    assert "so a batch of 2 in gives 72×10 out" in diag.summary()
    text = str(diag)
    assert text.splitlines()[0] == "✗ Net does not keep the batch at input 2×3×64×64"
    assert "fix 2: use input 15×15 (gives 2×400; sizes 14 to 15 all work)" in text
    assert repr(diag).startswith("<Diagnosis Net 2×3×64×64: does not keep the batch at 'view'")
    html = diag._repr_html_()
    assert "does not keep the batch" in html and "x.flatten(1)" in html
    assert "does not keep the batch" in diag._repr_markdown_()


def test_a_fold_undone_later_keeps_the_batch():
    """Heads folded into the batch and unfolded again (as attention code does) are no finding."""
    model = Sequential(Conv2d(3, 8, 3), Reshape((-1, 26, 26)), ReLU(), Reshape((-1, 8, 676)),
                       Reshape((0, -1)), Linear(5408, 10))
    assert keeps_batch(model.to_graph(), (2, 3, 28, 28)) is None
    assert diagnose(model, (2, 3, 28, 28)).fits
    folded = Sequential(Conv2d(3, 8, 3), Reshape((-1, 26, 26)), ReLU(), Reshape((-1, 676)),
                        Linear(676, 10))
    fold = keeps_batch(folded.to_graph(), (2, 3, 28, 28))
    assert (fold.node, fold.before, fold.after, fold.output) == ("1", (2, 8, 26, 26), (16, 26, 26), (16, 10))


def test_the_batch_is_found_at_any_axis():
    """A sequence-first output (L, N, E) keeps the batch in its second axis."""
    graph = Sequential(Reshape((0, -1))).to_graph()
    first, second = analyze_graph(graph, (2, 6)), analyze_graph(graph, (3, 6))
    assert batch_fold(first, second, 2) is None
    seq_first = Sequential(Reshape((4, -1, 6))).to_graph()  # (4, N, 6) from N×24
    assert batch_fold(analyze_graph(seq_first, (2, 24)), analyze_graph(seq_first, (3, 24)), 2) is None


def test_an_input_range_lists_folding_sizes_apart_from_fits(folding_file):
    scan = scan_inputs(f"{folding_file}:Net", (1, 3, 32, 32), 10, 40)
    assert scan.fits == [14, 15]
    assert scan.folds == {"view": [24, 25, 34, 35]}
    assert all(torch_output(folding_file, n, 1)[0] != 1 for n in scan.folds["view"])
    assert scan.to_dict()["folds_batch"] == {"view": [[24, 25], [34, 35]]}


class Folding(nn.Module):
    def __init__(self, channels: int, kernel: int, pool: int, features: int):
        super().__init__()
        self.conv = nn.Conv2d(3, channels, kernel)
        self.pool = nn.MaxPool2d(pool)
        self.fc = nn.Linear(features, 4)
        self.features = features

    def forward(self, x):
        return self.fc(self.pool(self.conv(x)).view(-1, self.features))


class Flattening(Folding):
    def forward(self, x):
        return self.fc(self.pool(self.conv(x)).flatten(1))


@settings(max_examples=25, deadline=None)
@given(channels=st.integers(1, 4), kernel=st.integers(1, 5), pool=st.integers(1, 3),
       side=st.integers(2, 8), size=st.integers(6, 40), batch=st.integers(1, 3))
def test_every_verdict_and_fix_keeps_the_batch_in_torch(channels, kernel, pool, side, size, batch):
    """Random view(-1, K) models at random sizes: a fit is one in torch with the batch kept; a
    fold is one torch really makes; every fix, run in torch, keeps the batch at two sizes."""
    features = channels * side * side
    model = Folding(channels, kernel, pool, features).eval()
    diag = diagnose(model, (batch, 3, size, size))

    def out(m, n, b):
        try:
            with torch.no_grad():
                return tuple(m(torch.zeros(b, 3, n, n)).shape)
        except RuntimeError:
            return None

    real = out(model, size, batch)
    if diag.fits:
        assert real == (batch, 4) and diag.output_shape == real
    elif diag.batch_fold is not None:
        assert real is not None and real[0] != batch and diag.output_shape == real
    else:
        assert real is None  # torch refuses it too
    for fix in diag.fixes:
        if fix.kind is FixKind.INPUT:
            assert fix.size is not None
            for b in (batch, batch + 1):
                assert out(model, fix.size, b) == (b, 4)
        else:  # the code fix: flatten(1), and the Linear's in_features it names
            assert (fix.field, fix.value) == ("shape", (0, -1))
            wide = fix.also[0].value if fix.also else features
            fixed = Flattening(channels, kernel, pool, wide).eval()
            for b in (batch, batch + 1):
                assert out(fixed, size, b) == (b, 4)


def test_every_input_fix_keeps_the_non_spatial_dims(folding_file):
    diag = diagnose(f"{folding_file}:Net", (2, 3, 64, 64))
    [size_fix] = [f for f in diag.fixes if f.kind is FixKind.INPUT]
    from shapecalc.diagnose.fixes import fixed_input

    assert fixed_input((2, 3, 64, 64), size_fix) == (2, 3, 15, 15)
    assert shapecalc.analyze(f"{folding_file}:Net", (2, 3, 15, 15)).output_shape == (2, 10)


def test_show_and_the_report_name_the_fold(cli, folding_file, tmp_path):
    """``show`` and ``report`` say what ``check`` says: the operation, its line, the code fix."""
    line = FOLDING_NET.splitlines().index("        x = x.view(-1, 400)") + 1
    fix = "x.flatten(1) (or x.view(x.size(0), -1))"
    note = (f"Reshape(-1, 400) at 'view' ({folding_file}:{line}) does not keep the batch: "
            f"1×16×30×30 becomes 36×400, so 1 sample in gives 36×10 out; write {fix} there "
            "instead (shapecalc check verifies it and finds the sizes that work)")
    code, out, err = cli("show", f"{folding_file}:Net", "--input", "1x3x64x64")
    assert code == 0 and err == "" and out.splitlines()[1] == f"note: {note}"
    code, out, _ = cli("show", f"{folding_file}:Net", "--input", "1x3x64x64", "--json")
    data = json.loads(out)
    assert data["batch_fold"]["text"] == note and data["batch_fold"]["fix"] == fix
    assert (data["batch_fold"]["after"], data["output_shape"]) == ([36, 400], [36, 10])
    assert torch_output(folding_file, 64, 1) == (36, 10)  # what torch does, as the note says
    page = tmp_path / "fold.html"
    assert cli("report", f"{folding_file}:Net", "--input", "1x3x64x64", "--no-graph", "-o", str(page))[0] == 0
    html = page.read_text()
    assert '<li class="sc-finding">Reshape(-1, 400) at &#x27;view&#x27; (' in html
    assert f"{line}) does not keep the batch" in html and "x.flatten(1)" in html
    code, out, _ = cli("show", f"{folding_file}:Net", "--input", "1x3x14x14", "--json")
    assert code == 0 and json.loads(out)["batch_fold"] is None  # 1×400: the batch is kept
    code, out, err = cli("show", f"{folding_file}:Net", "--input", "1x3x32x32")
    assert code == 1 and "3136 is not divisible by 400" in err and len(err.splitlines()) == 1


def test_a_recorded_model_names_the_fold_too(cli, tmp_path):
    """A forward fx cannot trace is recorded with hooks: the fold is found by recording it
    again at the next batch size, and named with its code fix (no line: hooks do not know it)."""
    path = tmp_path / "recorded.py"
    path.write_text(FOLDING_NET.replace("        x = x.view(-1, 400)",
                                        "        if x.sum() >= 0 or True:  # fx cannot trace this\n"
                                        "            x = x.view(-1, 400)"))
    code, out, _ = cli("show", f"{path}:Net", "--input", "2x3x64x64", "--json")
    data = json.loads(out)
    assert code == 0 and data["output_shape"] == [72, 10]
    assert data["note_details"][0]["kind"] == "hook_fallback"
    assert data["batch_fold"]["node"] == "view" and data["batch_fold"]["after"] == [72, 400]
    assert data["batch_fold"]["fix"] == "x.flatten(1) (or x.view(x.size(0), -1))"


def test_models_that_keep_the_batch_are_analysed_once():
    """:func:`may_fold` follows the batch's axis: the zoo, and torchvision's and timm's ViTs
    (their attention permutes the batch to axis 1 and back), need no second analysis; Swin's
    windows fold into the batch and out again, so it is checked, and kept."""
    from shapecalc.diagnose.batch import find_fold, may_fold
    from shapecalc.models.api import load_model
    from shapecalc.models.zoo import ZOO

    assert not [name for name in ZOO if may_fold(shapecalc.analyze(name))]
    timm = pytest.importorskip("timm")
    tvm = pytest.importorskip("torchvision.models")
    for model, folds_inside in [(tvm.vit_b_16(), False), (timm.create_model("vit_small_patch16_224"), False),
                                (timm.create_model("swin_tiny_patch4_window7_224"), True)]:
        src = load_model(model)
        inputs = src.inputs((1, 3, 224, 224))
        result = shapecalc.analyze(src, inputs)
        assert may_fold(result) is folds_inside
        assert find_fold(src, inputs, result) is None


_OPS = st.sampled_from([Permute((0, 2, 3, 1)), Permute((1, 0, 2, 3)), Permute((2, 3, 0, 1)),
                        Transpose(0, 1), Transpose(1, 3), Flatten(1), Flatten(0, 1), Flatten(2),
                        Reshape((-1, 72)), Reshape((0, -1)), Reshape((1, -1)), Reshape((-1, 6, 6)),
                        ReLU()])


@settings(max_examples=200, deadline=None)
@given(ops=st.lists(_OPS, min_size=1, max_size=4), batch=st.integers(1, 3))
def test_may_fold_misses_no_fold(ops, batch):
    """Random chains of permutes, transposes, flattens and reshapes: whenever the batch is
    lost (the two-batch comparison says so), :func:`may_fold` said it might be."""
    from shapecalc.core.errors import LayerError
    from shapecalc.diagnose.batch import may_fold

    graph = Sequential(Conv2d(3, 2, 1), *ops).to_graph()
    try:
        result = analyze_graph(graph, (batch, 3, 6, 6))
    except LayerError:
        return
    fold = keeps_batch(graph, (batch, 3, 6, 6), result)
    if fold is not None:  # a fold, or a batch written into the chain (fails at batch + 1)
        assert may_fold(result)
