"""Which route ``import_module`` takes: torch.fx is not tried on a transformers 5 model (it cannot
trace one), and the note says so; every other model, and an older transformers, still tries fx."""

from __future__ import annotations

import sys

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
nn = torch.nn

import shapecalc  # noqa: E402
from shapecalc.core.notes import NoteKind  # noqa: E402
from shapecalc.torch_bridge import fx_import  # noqa: E402
from shapecalc.torch_bridge.fx_import import Route, import_module  # noqa: E402


def tiny_bert() -> nn.Module:
    config = transformers.BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=64, vocab_size=100)
    return transformers.BertModel(config).eval()


class Head(nn.Module):
    """A user's module around a transformers model: fx would trace into it and fail there."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = tiny_bert()
        self.fc = nn.Linear(32, 3)

    def forward(self, ids):
        return self.fc(self.backbone(ids).last_hidden_state)


class Branches(nn.Module):
    """Plain torch whose forward branches on a tensor: fx is tried and fails."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return self.fc(x) if x.sum() > 0 else x


@pytest.fixture
def traces(monkeypatch):
    """Every module the fx tracer is asked to trace."""
    asked: list = []
    real = fx_import.trace_graph

    def counting(module, *args, **kwargs):
        asked.append(module)
        return real(module, *args, **kwargs)

    monkeypatch.setattr(fx_import, "trace_graph", counting)
    return asked


def major() -> int:
    return int(transformers.__version__.split(".")[0])


@pytest.mark.parametrize("build, where", [(tiny_bert, ""), (Head, " at 'backbone'")])
def test_a_transformers_5_model_is_recorded_without_trying_fx(traces, build, where):
    if major() < 5:
        pytest.skip("transformers 4 models may trace")
    model = build()
    imp = import_module(model)
    assert imp.route is Route.HOOKS and traces == []
    [note] = [n for n in imp.notes if n.kind is NoteKind.HOOK_FALLBACK]
    assert note.get("tried") is False
    text = str(note)
    assert text.startswith(f"torch.fx was not tried on {type(model).__name__} (it runs a "
                           f"transformers {major()} model (BertModel{where}); "
                           "transformers 5 models do not trace")
    assert "recorded in one run at the requested input" in text
    result = shapecalc.analyze(model, (1, 8), input_dtypes=["int64"])
    assert result.notes[0] == note and text in result.table()
    assert result.total_params == sum(p.numel() for p in model.parameters())
    assert traces == []


def test_an_older_transformers_is_still_traced_first(traces, monkeypatch):
    # transformers 4 had its own fx tracer and models that trace; which do is for fx to say.
    model = tiny_bert()  # (transformers puts another module in sys.modules as it loads)
    monkeypatch.setattr(sys.modules["transformers"], "__version__", "4.46.0")
    imp = import_module(model)
    assert traces == [model]
    [note] = [n for n in imp.notes if n.kind is NoteKind.HOOK_FALLBACK]
    assert note.get("tried") is True and str(note).startswith("torch.fx could not trace BertModel (")


def test_other_models_still_try_fx_and_say_why_it_failed(traces):
    model = Branches()
    imp = import_module(model)
    assert traces == [model] and imp.route is Route.HOOKS
    [note] = [n for n in imp.notes if n.kind is NoteKind.HOOK_FALLBACK]
    assert note.get("tried") is True
    assert str(note).startswith("torch.fx could not trace Branches (TraceError: ")


def test_without_transformers_imported_nothing_imports_it(traces, monkeypatch):
    for name in ("transformers", "transformers.modeling_utils"):
        monkeypatch.delitem(sys.modules, name)
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU())
    model.add_module("loop", Branches())
    imp = import_module(model)
    assert traces == [model] and imp.route is Route.HOOKS
    assert "transformers" not in sys.modules
