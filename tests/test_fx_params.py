"""Parameter totals of imported nn.Modules: every distinct parameter once, at the node that uses it.

The reference is always torch itself: ``sum(p.numel() for p in model.parameters())`` (which
yields a tied tensor once) and the same sum over ``requires_grad`` for trainable parameters.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

import shapecalc  # noqa: E402
from shapecalc.core.notes import NoteKind, has_kind  # noqa: E402


def distinct(model) -> tuple[int, int]:
    """(all, frozen) over the distinct parameters, as torch counts them."""
    params = list(model.parameters())
    return sum(p.numel() for p in params), sum(p.numel() for p in params if not p.requires_grad)


def kinds(notes) -> set:
    return {n.kind for n in notes if hasattr(n, "kind")}


class FunctionalUses(nn.Module):
    """Parameters read outside modules: F.linear weights, a layer scale, a class token."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(6, 4))
        self.b = nn.Parameter(torch.zeros(6))
        self.gamma = nn.Parameter(torch.ones(6))
        self.token = nn.Parameter(torch.zeros(1, 1, 6))
        self.head = nn.Linear(6, 3)

    def forward(self, x):  # x: N×L×4
        y = F.linear(x, self.w, self.b) * self.gamma
        y = torch.cat([self.token.expand(x.shape[0], -1, -1), y], dim=1)
        return self.head(y[:, 0])


def test_functional_parameters_are_attributed_to_the_op_that_reads_them():
    model = FunctionalUses()
    result = shapecalc.analyze(model, (2, 5, 4))
    assert (result.total_params, result.frozen_params) == distinct(model)
    by_op = {r.name: r for r in result.records}
    assert by_op["linear"].type == "Linear"  # F.linear with parameter weights: a derived layer
    assert by_op["linear"].params == 6 * 4 + 6
    assert by_op["mul"].params == 6
    assert by_op["cat"].params == 6
    notes = [str(n) for n in by_op["mul"].notes]
    assert "uses parameter gamma (6) through mul" in notes
    assert any("token" in str(n) and "through cat" in str(n) for n in by_op["cat"].notes)
    assert result.output_shape == tuple(model.eval()(torch.zeros(2, 5, 4)).shape)


def test_unused_parameters_are_named_and_still_counted():
    class Spare(nn.Module):
        def __init__(self):
            super().__init__()
            self.used = nn.Linear(4, 2)
            self.spare = nn.Linear(4, 7)
            self.bias_table = nn.Parameter(torch.zeros(3, 5))

        def forward(self, x):
            return self.used(x)

    model = Spare()
    result = shapecalc.analyze(model, (1, 4))
    assert result.total_params == distinct(model)[0] == 10 + 35 + 15
    [note] = [n for n in result.notes if n.kind is NoteKind.PARAMS_UNUSED]
    assert note.get("count") == 50
    assert set(note.get("names")) == {"spare.weight", "spare.bias", "bias_table"}
    data = json.loads(result.to_json())
    assert data["total_params"] == 60
    assert any(n["kind"] == "params_unused" and n["count"] == 50 for n in data["note_details"])
    assert any("50 parameters that no forward uses" in n for n in data["notes"])
    assert "no forward uses" in result.table()


def test_tied_weight_counts_once_with_a_note_on_the_second_user():
    class TiedLM(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(50, 16)
            self.mix = nn.Linear(16, 16)
            self.decoder = nn.Linear(16, 50)
            self.decoder.weight = self.embed.weight  # weight tying, as in GPT-2

        def forward(self, tokens):
            return self.decoder(torch.tanh(self.mix(self.embed(tokens))))

    model = TiedLM()
    result = shapecalc.analyze(model, (2, 9), input_dtypes=["int64"])
    assert result.total_params == distinct(model)[0] == 50 * 16 + 16 * 16 + 16 + 50
    decoder = result.record("decoder")
    assert decoder.params == 50 and not decoder.shared  # its own bias only
    [tied] = [n for n in decoder.notes if getattr(n, "kind", None) is NoteKind.PARAM_TIED]
    assert tied.get("owner") == "embed" and tied.get("names") == ("embed.weight",)
    assert result.output_shape == (2, 9, 50)


def test_repeated_module_call_is_shared_not_recounted():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.f = nn.Linear(4, 4)

        def forward(self, x):
            return self.f(torch.relu(self.f(x)))

    model = Twice()
    result = shapecalc.analyze(model, (1, 4))
    assert result.total_params == 20
    assert [r.shared for r in result.records if r.name.startswith("f")] == [False, True]


def test_frozen_and_trainable_are_counted_apart():
    backbone = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU())
    for p in backbone.parameters():
        p.requires_grad_(False)

    class Head(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = backbone
            self.fc = nn.Linear(8, 2)

        def forward(self, x):
            return self.fc(self.backbone(x).mean((2, 3)))

    model = Head()
    result = shapecalc.analyze(model, (1, 3, 8, 8))
    assert (result.total_params, result.frozen_params) == distinct(model) == (240 + 18, 240)
    assert result.trainable_params == 18
    data = result.to_dict()
    assert (data["trainable_params"], data["frozen_params"]) == (18, 240)
    assert "trainable 18 · frozen 240" in result.table()
    chain = shapecalc.analyze(backbone, (1, 3, 8, 8))  # the nn.Sequential fast path too
    assert (chain.total_params, chain.frozen_params) == (240, 240)


def test_hook_fallback_counts_a_parameter_the_forwards_code_reads_at_that_op():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)
            self.scale = nn.Parameter(torch.ones(4))

        def forward(self, x):
            if x.sum() > 0:  # data-dependent: fx cannot trace it
                x = -x
            return self.fc(x) * self.scale

    model = Branchy()
    result = shapecalc.analyze(model, (2, 4))
    assert result.total_params == distinct(model)[0] == 24
    assert NoteKind.HOOK_FALLBACK in kinds(result.notes)
    assert NoteKind.PARAMS_UNPLACED not in kinds(result.notes)
    mul = next(r for r in result.records if r.name == "mul")
    assert mul.params == 4 and "uses parameter scale (4) through mul" in map(str, mul.notes)


# ---------------------------------------------------------------- property
@st.composite
def parameter_layouts(draw):
    """A small model whose parameters are used in every way a forward can: by a module, through
    a functional op, tied between two modules, frozen, or never."""
    width = draw(st.integers(2, 6))
    n_layers = draw(st.integers(1, 4))
    tie = draw(st.booleans()) and n_layers >= 2
    scale = draw(st.booleans())
    spare = draw(st.integers(0, 3))
    frozen = draw(st.lists(st.booleans(), min_size=n_layers, max_size=n_layers))
    repeat = draw(st.booleans())
    return width, n_layers, tie, scale, spare, frozen, repeat


class Layout(nn.Module):
    def __init__(self, width, n_layers, tie, scale, spare, frozen, repeat):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(width, width, bias=i % 2 == 0) for i in range(n_layers))
        if tie:
            self.layers[-1].weight = self.layers[0].weight
        for layer, off in zip(self.layers, frozen):
            layer.weight.requires_grad_(not off)
        self.scale = nn.Parameter(torch.ones(width)) if scale else None
        self.spares = nn.ParameterList(nn.Parameter(torch.zeros(k + 1)) for k in range(spare))
        self.repeat = repeat

    def forward(self, x):
        for layer in self.layers:
            x = torch.relu(layer(x))
        if self.repeat:
            x = self.layers[0](x)
        return x * self.scale if self.scale is not None else x


@settings(max_examples=40)
@given(parameter_layouts())
def test_totals_equal_torch_for_any_parameter_layout(layout):
    model = Layout(*layout)
    width = layout[0]
    result = shapecalc.analyze(model, (2, width))
    assert (result.total_params, result.frozen_params) == distinct(model)
    assert sum(r.params for r in result.records if not r.shared) + result.graph.loose_params == \
        result.total_params
    assert has_kind(result.notes, NoteKind.PARAMS_UNUSED) == (layout[4] > 0)
