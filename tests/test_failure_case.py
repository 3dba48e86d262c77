"""Diagnoses of models whose forward takes several tensors: which input a fix resizes, and
every fix, applied, makes the real torch model run."""

from __future__ import annotations

import json

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import shapecalc
from shapecalc.diagnose import diagnose, shapes_until
from shapecalc.core.errors import ArgumentError
from shapecalc.diagnose.failure_case import resizable
from shapecalc.diagnose.fixes import FixKind, apply_fix, fixed_input

torch = pytest.importorskip("torch")
nn = torch.nn


class PairNet(nn.Module):
    """A siamese pair: one encoder on two images, features concatenated into a head."""

    def __init__(self, in_features: int = 2 * 16 * 14 * 14, kernel: int = 3) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                     nn.Conv2d(8, 16, kernel), nn.Flatten())
        self.head = nn.Linear(in_features, 10)

    def forward(self, left, right):
        return self.head(torch.cat([self.encoder(left), self.encoder(right)], 1))


class ImageText(nn.Module):
    """An image and token ids: a conv branch and an embedding branch into one Linear."""

    def __init__(self, fc_in: int = 16 * 8 * 8 + 16) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 4, stride=4)
        self.embed = nn.Embedding(1000, 16)
        self.fc = nn.Linear(fc_in, 5)

    def forward(self, image, tokens):
        txt = self.embed(tokens).mean(1)
        return self.fc(torch.cat([self.conv(image).flatten(1), txt], 1))


class TwoBranches(nn.Module):
    """Two images through their own convs, concatenated along channels: paddings must agree."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.b = nn.Conv2d(3, 4, 3)

    def forward(self, x, y):
        return torch.cat([self.a(x), self.b(y)], 1)


PAIR = [(1, 3, 32, 32), (1, 3, 32, 32)]
IMAGE_TEXT = [(1, 3, 32, 32), (1, 77)]


def runs_in_torch(model, shapes, kinds=("float32", "float32")) -> bool:
    xs = [torch.zeros(s, dtype=torch.long) if k == "int64" else torch.zeros(s) for s, k in zip(shapes, kinds)]
    try:
        with torch.no_grad():
            model.eval()(*xs)
        return True
    except RuntimeError:
        return False


def test_a_fitting_pair_names_both_inputs():
    d = diagnose(PairNet(), PAIR)
    assert d.fits and d.output_shape == (1, 10)
    assert d.summary() == "PairNet fits inputs left 1×3×32×32, right 1×3×32×32 → 1×10"
    assert d.input_shapes == tuple(PAIR) and d.input_labels == ("left", "right")


def test_broken_pair_gets_fixes_that_make_torch_run():
    model = PairNet(2 * 16 * 6 * 6)
    assert not runs_in_torch(model, PAIR)
    d = diagnose(model, PAIR)
    assert not d.fits and d.node == "head"
    assert d.problem == ("Linear(1152, 10) receives 6,272 features at inputs left 1×3×32×32, "
                         "right 1×3×32×32")
    assert d.fixes == ["set in_features=6272",
                       "use 17×17 for inputs 1 and 2 ('left', 'right') (gives 1,152; sizes 16 to 17 all work)"]
    set_fix, size_fix = d.fixes
    assert (size_fix.kind, size_fix.value, size_fix.size) == (FixKind.INPUT, (0, 1), 17)
    assert runs_in_torch(PairNet(set_fix.value), PAIR)
    assert runs_in_torch(model, fixed_input(PAIR, size_fix))
    assert not runs_in_torch(model, [(1, 3, 17, 17), (1, 3, 32, 32)])  # one input alone: no
    graph = shapecalc.load_model(model).graph
    for fix in d.fixes:  # the typed fields alone (never the text) fix the engine's graph too
        shapecalc.analyze(*apply_fix(graph, PAIR, fix))
    assert str(d).splitlines()[0] == "✗ PairNet does not fit inputs left 1×3×32×32, right 1×3×32×32"
    assert repr(d) == ("<Diagnosis PairNet 1×3×32×32 + 1×3×32×32: does not fit at 'head' "
                       "Linear(1152→10); 2 fixes>")
    assert "<th>inputs</th><td>left 1×3×32×32, right 1×3×32×32</td>" in d._repr_html_()


def test_only_the_image_is_resized_never_the_token_ids():
    model = ImageText(32)
    kinds = ("float32", "int64")
    d = diagnose(model, IMAGE_TEXT, input_dtypes=list(kinds))
    assert d.fixes == ["set in_features=1040",
                       "use 7×7 for input 1 ('image') (gives 32; sizes 4 to 7 all work)"]
    assert d.fixes[1].value == (0,) and d.inputs_text() == "inputs image 1×3×32×32, tokens 1×77 int64"
    assert fixed_input(IMAGE_TEXT, d.fixes[1]) == [(1, 3, 7, 7), (1, 77)]
    assert runs_in_torch(ImageText(1040), IMAGE_TEXT, kinds)
    assert runs_in_torch(model, fixed_input(IMAGE_TEXT, d.fixes[1]), kinds)
    data = json.loads(json.dumps(d.to_dict(), default=list))
    assert data["input_shapes"] == [[1, 3, 32, 32], [1, 77]] and data["input_dtypes"] == list(kinds)
    assert data["input_labels"] == ["image", "tokens"] and data["fix_details"][1]["value"] == [0]
    assert diagnose(ImageText(), IMAGE_TEXT, input_dtypes=list(kinds)).fits


def test_a_concat_of_two_inputs_gets_branch_edits_and_one_input_resized():
    model = TwoBranches()
    d = diagnose(model, PAIR)
    assert d.node == "cat" and d.problem.startswith("the concatenation 'cat' gets 1×4×32×32 from 'a'")
    # No size of both images together can fit (the branches differ by 2 at every size), so
    # each image alone is resized.
    assert d.fixes == ["set padding=0 on 'a' (Conv2d(3→4, k=3, p=1))",
                       "set padding=1 on 'b' (Conv2d(3→4, k=3))",
                       "use 30×30 for input 1 ('x') (gives 1×8×30×30)",
                       "use 34×34 for input 2 ('y') (gives 1×8×32×32)"]
    graph = shapecalc.load_model(model).graph
    for fix in d.fixes:
        shapecalc.analyze(*apply_fix(graph, PAIR, fix))
    assert [runs_in_torch(model, fixed_input(PAIR, f)) for f in d.fixes[2:]] == [True, True]
    # Two images of different sizes given by mistake: the fix says which one to change.
    wrong = [(1, 3, 32, 32), (1, 3, 30, 30)]
    assert "use 34×34 for input 2 ('y') (gives 1×8×32×32)" in diagnose(model, wrong).fixes


def test_resizable_groups_follow_the_failing_node():
    graph = shapecalc.load_model(ImageText(32)).graph
    assert resizable(graph, IMAGE_TEXT, graph.node("fc")) == [(0,)]  # tokens have no sizes
    assert resizable(graph, IMAGE_TEXT, graph.node("embed")) == []  # only the ids feed it
    pair = shapecalc.load_model(PairNet()).graph
    assert resizable(pair, PAIR, pair.node("head")) == [(0, 1)]
    assert resizable(pair, [(1, 3, 32, 32), (1, 3, 40, 40)], pair.node("head")) == [(0,), (1,)]
    assert shapes_until(pair, PAIR, "head")["cat"] == (1, 6272)


def test_wrong_number_of_inputs_or_dtypes_names_the_parameter():
    with pytest.raises(ArgumentError, match=r"^input_shape: PairNet takes 2 input\(s\) \(left, right\)"):
        diagnose(PairNet(), (1, 3, 32, 32))
    with pytest.raises(ArgumentError, match="^input_dtypes: "):
        diagnose(ImageText(), IMAGE_TEXT, input_dtypes=["float32", "int65"])


@settings(max_examples=12, deadline=None)
@given(size=st.integers(6, 40), kernel=st.integers(1, 5), features=st.integers(16, 4000))
def test_every_fix_of_a_random_broken_pair_makes_torch_run(size, kernel, features):
    """Whatever the sizes and the head's width, each proposed fix (applied from its typed
    fields) lets the real model run on real tensors."""
    model = PairNet(features, kernel)
    shapes = [(1, 3, size, size)] * 2
    d = diagnose(model, shapes)
    assert d.fits == runs_in_torch(model, shapes)
    for fix in d.fixes:
        if fix.kind is FixKind.INPUT:
            assert runs_in_torch(model, fixed_input(shapes, fix)), fix
        elif fix.field == "in_features":
            assert runs_in_torch(PairNet(fix.value, kernel), shapes), fix
        else:
            shapecalc.analyze(*apply_fix(shapecalc.load_model(model).graph, shapes, fix))


def test_an_untraceable_two_input_model_is_explained_where_torch_refused():
    """A data-dependent forward is recorded with hooks, cut where torch refused: the verdict
    names the node and both inputs by the forward's own argument names."""

    class Branchy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(20, 6)
            self.fc = nn.Linear(7, 3)

        def forward(self, features, tokens):
            if tokens.max() > 10:  # data-dependent: torch.fx cannot trace it
                features = features * 2
            return self.fc(features + self.embed(tokens).mean(1))

    d = diagnose(Branchy(), [(2, 6), (2, 5)], input_dtypes=["float32", "int64"])
    assert not d.fits and d.node == "fc"
    assert d.problem == "Linear(7, 3) receives 6 features at inputs features 2×6, tokens 2×5 int64"
    assert d.inputs_text() == "inputs features 2×6, tokens 2×5 int64"
    assert not any(f.kind is FixKind.INPUT for f in d.fixes)  # a recording at one size: no scan
    # The recording so far starts from both inputs, so the layer fix is found and checked.
    assert [str(f) for f in d.fixes] == ["set in_features=6"]
    fixed = Branchy()
    fixed.fc = nn.Linear(6, 3)
    assert diagnose(fixed, [(2, 6), (2, 5)], input_dtypes=["float32", "int64"]).fits


def test_an_input_without_spatial_size_is_shown_whole():
    from shapecalc.diagnose.failure_case import size_text

    assert size_text((1, 3, 224, 224)) == "224×224" and size_text((2, 6)) == "2×6"
    model = nn.Sequential(nn.Linear(7, 3))
    d = diagnose(model, (2, 6))
    assert d.problem == "Linear(7, 3) receives 6 features at input 2×6"


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 6), min_size=3, max_size=6), st.integers(1, 6),
       st.integers(0, 5), st.integers(1, 6))
def test_a_fix_checked_from_the_failing_node_agrees_with_a_whole_analysis(widths, first, at, value):
    # FailureCase.fits analyses only from the first node that changed, when the nodes before
    # it are the case's own and come before the failure (checked by the verdict's analysis)
    from shapecalc.core.blocks import Sequential
    from shapecalc.core.errors import LayerError
    from shapecalc.core.graph import analyze_graph
    from shapecalc.core.layers import Linear, ReLU
    from shapecalc.diagnose.batch import BatchFold, keeps_batch
    from shapecalc.diagnose.failure_case import FailureCase
    from shapecalc.diagnose.fixes import Fix

    layers = []
    for i, (a, b) in enumerate(zip(widths, widths[1:])):
        layers += [Linear(a, b), ReLU()]
    graph = Sequential(*layers).to_graph("m")
    shape = (2, first)
    try:
        analyze_graph(graph, shape)
        assume(False)  # fits: nothing to explain
    except LayerError as err:
        failing = graph.node(err.node)
    diag = diagnose(Sequential(*layers), shape)
    case = FailureCase(graph, [shape], failing, [], [], diag)
    linears = [n for n in graph.nodes if isinstance(n.layer, Linear)]
    node = linears[at % len(linears)]
    fix = Fix(f"set in_features={value}", FixKind.SET, node.name, "in_features", value)
    fixed, shapes = apply_fix(graph, [shape], fix)
    try:
        whole = not isinstance(keeps_batch(fixed, shapes, analyze_graph(fixed, shapes[0])), BatchFold)
    except LayerError:
        whole = False
    assert case.verified(fix) is whole
