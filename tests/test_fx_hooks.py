"""Whatever stops torch.fx, the model is still analysed (with hooks) and the table says so and why;
eval mode by default, train mode on request; several inputs, dtypes and outputs end to end."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

import shapecalc  # noqa: E402
from shapecalc.core.errors import ArgumentError  # noqa: E402
from shapecalc import ShapeError  # noqa: E402
from shapecalc.core.notes import NoteKind, has_kind  # noqa: E402
from shapecalc.output.formats import to_markdown  # noqa: E402
from shapecalc.models.torch_models import verify  # noqa: E402
from shapecalc.torch_bridge import fx_ops  # noqa: E402
from shapecalc.torch_bridge.fx_hooks import recorded_modules  # noqa: E402


def fallback_reason(result) -> str:
    [note] = [n for n in result.notes if n.kind is NoteKind.HOOK_FALLBACK]
    return note.get("reason")


class DataDependent(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        y = self.conv(x)
        if y.mean() > 0:  # reads a value: fx cannot trace this
            y = y * 2
        return self.fc(y.mean((2, 3)))


def test_trace_error_falls_back_and_every_format_says_why():
    model = DataDependent()
    result = shapecalc.analyze(model, (1, 3, 9, 9))
    assert "TraceError" in fallback_reason(result)
    assert result.output_shape == (1, 2)
    assert result.total_params == sum(p.numel() for p in model.parameters())
    table = result.table()
    assert "note: torch.fx could not trace DataDependent (TraceError" in table
    data = json.loads(result.to_json())
    assert data["note_details"][0]["kind"] == "hook_fallback" and "TraceError" in data["notes"][0]


@pytest.mark.parametrize("name", ["class", 'x"y', "a b"])
def test_module_names_fx_cannot_write_as_code_are_still_traced(name):
    # fx's generated Python code would be a SyntaxError for these names; the converter and
    # verify read the traced graph itself (an Interpreter), so fx is used all the same.
    class Odd(nn.Module):
        def __init__(self):
            super().__init__()
            self.add_module(name, nn.Linear(4, 3))

        def forward(self, x):
            return torch.relu(getattr(self, name)(x))

    result = shapecalc.analyze(Odd(), (2, 4))
    assert not [n for n in result.notes if n.kind is NoteKind.HOOK_FALLBACK]
    assert [r.name for r in result.records][0] == name
    assert [r.origin for r in result.records] == ["derived", "derived"]
    assert result.output_shape == (2, 3) and result.total_params == 15
    checks = verify(Odd(), (2, 4))
    assert checks and all(c.ok and c.torch is not None for c in checks)


def test_a_conversion_failure_falls_back(monkeypatch):
    from shapecalc.torch_bridge import fx_convert

    def broken(self):
        raise RuntimeError("an op the converter cannot express")

    monkeypatch.setattr(fx_convert.FxConverter, "run", broken)
    result = shapecalc.analyze(nn.Sequential(nn.Linear(4, 4), nn.Softplus()), (1, 4))
    assert fallback_reason(result) == "RuntimeError: an op the converter cannot express"
    assert result.output_shape == (1, 4)


def test_a_traced_graph_that_fails_where_torch_does_not_falls_back(monkeypatch):
    from shapecalc.core.layers import Flatten

    class Relu(nn.Module):
        def forward(self, x):
            return torch.relu(x) + 1

    monkeypatch.setitem(fx_ops.OPS, "relu", ((), lambda: Flatten(5, -1)))  # a wrong mapping
    result = shapecalc.analyze(Relu(), (2, 3))
    assert fallback_reason(result).startswith("the traced graph fails where torch does not")
    assert result.output_shape == (2, 3)


def test_a_real_shape_error_is_reported_not_hidden_by_the_fallback():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 2)

        def forward(self, x):
            return self.fc(x) * 2

    with pytest.raises(ShapeError, match="fc"):
        shapecalc.analyze(Net(), (1, 5))


def test_torch_modules_are_recorded_whole():
    """An nn.MultiheadAttention is one recorded unit: its in_proj weights are not lost."""
    class Wrap(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
            self.seq = nn.Sequential(nn.Linear(8, 8), nn.ReLU())

        def forward(self, x):
            if x.sum() > 0:
                x = x + 1
            out, _ = self.attn(x, x, x)
            return self.seq(out)

    model = Wrap()
    assert [p for p, _ in recorded_modules(model)] == ["attn", "seq.0", "seq.1"]
    result = shapecalc.analyze(model, (2, 5, 8))
    assert result.record("attn").params == sum(p.numel() for p in model.attn.parameters())
    assert result.total_params == sum(p.numel() for p in model.parameters())
    assert result.output_shape == (2, 5, 8)


# ---------------------------------------------------------------- modes
class WithAux(nn.Module):
    """GoogLeNet's pattern: an auxiliary head only a training forward runs."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU())
        self.aux = nn.Linear(8, 5)
        self.head = nn.Linear(8, 10)

    def forward(self, x):
        h = self.body(x).mean((2, 3))
        if self.training:
            return self.head(h), self.aux(h)
        return self.head(h)


def test_eval_mode_by_default_and_the_model_mode_restored():
    model = WithAux().train()
    flags = [m.training for m in model.modules()]
    result = shapecalc.analyze(model, (1, 3, 8, 8))
    assert result.mode == "eval" and result.outputs == [("output", (1, 10))]
    assert "aux" not in {r.name for r in result.records}
    assert result.total_params == sum(p.numel() for p in model.parameters())  # aux: unused
    assert has_kind(result.notes, NoteKind.PARAMS_UNUSED)
    assert [m.training for m in model.modules()] == flags
    model.eval()
    shapecalc.analyze(model, (1, 3, 8, 8), mode="train")
    assert not any(m.training for m in model.modules())


def test_train_mode_analyses_the_training_only_branch():
    model = WithAux()
    ev = shapecalc.analyze(model, (1, 3, 8, 8))
    tr = shapecalc.analyze(model, (1, 3, 8, 8), mode="train")
    assert tr.mode == "train"
    assert tr.outputs == [("output[0]", (1, 10)), ("output[1]", (1, 5))]
    assert tr.total_macs - ev.total_macs == 8 * 5 + 5
    assert tr.total_params == ev.total_params
    assert not has_kind(tr.notes, NoteKind.PARAMS_UNUSED)
    assert all(c.ok for c in verify(model, (1, 3, 8, 8), mode="train"))
    with pytest.raises(ArgumentError, match="mode"):
        shapecalc.analyze(model, (1, 3, 8, 8), mode="training")


# ---------------------------------------------------------------- inputs, dtypes, outputs
class TextAndImage(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 4, 4)
        self.embed = nn.Embedding(100, 8)

    def forward(self, image, tokens):
        img = self.conv(image).flatten(2).mean(2)
        txt = self.embed(tokens).mean(1)
        return {"logits": img @ txt.T, "text": txt}


def test_two_inputs_with_dtypes_and_a_dict_output():
    model = TextAndImage()
    result = shapecalc.analyze(model, [(2, 3, 16, 16), (2, 7)], input_dtypes=["float32", "int64"])
    with torch.no_grad():
        real = model.eval()(torch.zeros(2, 3, 16, 16), torch.zeros(2, 7, dtype=torch.long))
    assert result.outputs == [("logits", tuple(real["logits"].shape)), ("text", tuple(real["text"].shape))]
    assert result.input_dtypes == ("float32", "int64")
    assert result.graph.input_labels == ("image", "tokens")
    assert result.input_bytes == 2 * 3 * 16 * 16 * 4 + 2 * 7 * 8
    data = result.to_dict()
    assert data["outputs"] == [{"name": "logits", "shape": [2, 2]}, {"name": "text", "shape": [2, 8]}]
    assert data["input_shapes"] == [[2, 3, 16, 16], [2, 7]] and data["input_dtypes"] == ["float32", "int64"]
    header = result.table().splitlines()[1:3]
    assert header == ["inputs: image 2×3×16×16, tokens 2×7 int64", "outputs: logits 2×2, text 2×8"]
    assert all(c.ok for c in verify(model, [(2, 3, 16, 16), (2, 7)], input_dtypes=["float32", "int64"]))
    dot = result.to_dot()  # the second input is drawn, with its edge
    assert '"tokens 2×7 int64"' in dot and "input1 -> " in dot
    assert "- outputs: logits 2×2, text 2×8" in to_markdown(result)
    with pytest.raises(ArgumentError, match="input_dtypes"):
        shapecalc.analyze(model, [(2, 3, 16, 16), (2, 7)], input_dtypes=["float32", "int65"])


def test_hook_fallback_with_two_inputs_and_a_dict_output():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(20, 6)
            self.fc = nn.Linear(6, 3)

        def forward(self, features, tokens):
            if tokens.max() > 10:  # data-dependent: recorded with hooks
                features = features * 2
            return {"score": self.fc(features + self.embed(tokens).mean(1)), "tokens": tokens}

    model = Branchy()
    result = shapecalc.analyze(model, [(2, 6), (2, 5)], input_dtypes=["float32", "int64"])
    assert "TraceError" in fallback_reason(result)
    assert result.outputs == [("score", (2, 3)), ("tokens", (2, 5))]
    assert result.graph.input_labels == ("features", "tokens")
    assert result.total_params == sum(p.numel() for p in model.parameters())
    checks = verify(model, [(2, 6), (2, 5)], input_dtypes=["float32", "int64"])
    assert all(c.ok for c in checks) and checks[-1].torch == (2, 3)


def test_a_module_reading_two_unrecorded_tensors_gets_two_input_nodes():
    # timm's CondConv2d(x, routing_weights): both tensors come from the forward's own code,
    # so each gets its own measured node (the second once named the same: a crash).
    class Routed(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.randn(4, 3))

        def forward(self, x, routing):
            return x @ (self.weight * routing.sum())

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.routed = Routed()

        def forward(self, x):
            if x.sum() > 0:  # data-dependent: recorded with hooks
                x = x * 2
            return self.routed(x * 3, x.mean(1).sigmoid())

    model = Net()
    result = shapecalc.analyze(model, (2, 4))
    assert result.output_shape == (2, 3)
    assert result.total_params == 12


RAISING_NET = '''
import torch
from torch import nn


class Refuses(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 5)

    def forward(self, x):
        x = self.conv(x)
        if x.shape[-1] > 3:
            raise ValueError("input too wide for this net\\nsecond line never shown")
        return x


class BadView(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 5)

    def forward(self, x):
        x = self.conv(x)
        if x.shape[-1] > 3:
            x = x + 1
        return x.view(7, -1, 13)
'''


@pytest.fixture
def raising_file(tmp_path):
    path = tmp_path / "raising.py"
    path.write_text(RAISING_NET)
    return path


def _line_of(path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_a_forward_that_raises_is_reported_with_its_type_message_and_line(raising_file):
    """Not 'the forward does not return a tensor': the user's own exception, where it was raised."""
    with pytest.raises(ShapeError) as info:
        shapecalc.analyze(f"{raising_file}:Refuses", (1, 3, 32, 32))
    where = f"raising.py:{_line_of(raising_file, 'raise ValueError')}"
    message = str(info.value)
    assert message.startswith("the forward raised ValueError: input too wide for this net (raised at ")
    assert message.endswith(where + ")") and "\n" not in message and "second line" not in message


def test_torch_own_error_in_the_forward_names_the_users_line(raising_file):
    with pytest.raises(ShapeError) as info:
        shapecalc.analyze(f"{raising_file}:BadView", (1, 3, 32, 32))
    message = str(info.value)
    # torch's own first line, and the user's line that called view (not a frame inside torch)
    assert "RuntimeError: shape '[7, -1, 13]' is invalid for input of size 12544" in message
    assert message.endswith(f"raising.py:{_line_of(raising_file, 'x.view(7')})")
