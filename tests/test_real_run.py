"""A small model's hook recording may run for real: same answer as on meta, nothing of the user's changed."""

from __future__ import annotations

import warnings

import pytest

torch = pytest.importorskip("torch")

import shapecalc
from shapecalc.torch_bridge import real_run
from shapecalc.torch_bridge.real_run import GaveUp, real_run_guard

nn = torch.nn


class Counting(nn.Module):
    """Not traceable by fx (a Python branch on a tensor's size) and writes into its own buffer."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.norm = nn.LayerNorm(8)
        self.fc = nn.Linear(8, 4)
        self.register_buffer("calls", torch.zeros(()))

    def forward(self, x):
        if x.shape[-1] > 4:  # fx cannot trace a branch on a size it was not given
            self.calls.add_(1)
        y = self.conv(x).mean((2, 3))
        return self.fc(self.norm(y) @ torch.eye(8))


class Plain(Counting):
    def forward(self, x):
        if x.shape[-1] > 4:
            x = x * 2
        y = self.conv(x).mean((2, 3))
        return self.fc(self.norm(y) @ torch.eye(8))


def analysed(model, shape, real_first: bool, monkeypatch) -> str:
    monkeypatch.setattr(real_run, "REAL_FIRST_PARAMETERS", 5_000_000 if real_first else -1)
    result = shapecalc.analyze(model, shape)
    return result.to_json(explain=True)


@pytest.mark.parametrize("kind, ran_for_real", [(Plain, True), (Counting, False)])
def test_real_first_gives_what_meta_gives_and_changes_nothing(kind, ran_for_real, monkeypatch):
    model = kind().eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    guards = []
    made = real_run.real_run_guard
    monkeypatch.setattr(real_run, "real_run_guard", lambda *a, **k: guards.append(made(*a, **k))
                        or guards[-1])
    real_first = analysed(model, (1, 3, 16, 16), True, monkeypatch)
    # Counting gives up at its first op, the write into its buffer, before it runs.
    assert len(guards) == 1 and (guards[0].made > 0) is ran_for_real
    assert real_first == analysed(model, (1, 3, 16, 16), False, monkeypatch)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the buffer never counted


def test_a_write_into_the_models_own_tensor_is_refused_before_it_runs():
    model = Counting().eval()
    with pytest.raises(GaveUp), real_run_guard(model, 2**30), torch.no_grad():
        model(torch.zeros(1, 3, 8, 8))
    assert model.calls.item() == 0


def test_the_byte_and_work_budgets_stop_a_real_run():
    model = Plain().eval()
    x = torch.zeros(1, 3, 64, 64)
    with torch.no_grad():
        with pytest.raises(GaveUp, match="tensors"), real_run_guard(model, 1000):
            model(x)
        with pytest.raises(GaveUp, match="computes"), real_run_guard(model, 2**30, macs=10_000):
            model(x)
        with real_run_guard(model, 2**30):  # within both budgets it just runs
            assert model(x).shape == (1, 4)


def test_a_transformer_recorded_for_real_equals_its_meta_recording(monkeypatch):
    transformers = pytest.importorskip("transformers")
    config = transformers.BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                     intermediate_size=64, vocab_size=100)
    model = transformers.BertModel(config).eval()
    monkeypatch.setattr(real_run, "REAL_FIRST_PARAMETERS", 5_000_000)
    real = shapecalc.analyze(model, (1, 12), input_dtypes=["int64"])
    monkeypatch.setattr(real_run, "REAL_FIRST_PARAMETERS", -1)
    meta = shapecalc.analyze(model, (1, 12), input_dtypes=["int64"])
    assert real.to_json(explain=True) == meta.to_json(explain=True)
    assert real.total_macs is not None and real.total_macs > 0


def test_a_lazy_module_stays_lazy(monkeypatch):
    """A real forward would give the user's lazy module its weights: it is recorded on meta."""

    class Lazy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.LazyLinear(4)

        def forward(self, x):
            if x.shape[-1] > 2:
                x = x * 2
            return self.fc(x)

    def outcome(real_first: bool) -> str:
        monkeypatch.setattr(real_run, "REAL_FIRST_PARAMETERS", 5_000_000 if real_first else -1)
        try:
            return shapecalc.analyze(model, (1, 8)).to_json()
        except shapecalc.ShapecalcError as err:
            return str(err)

    model = Lazy()
    assert not real_run.cheaper_for_real(model, 32, 2**30)
    assert outcome(True) == outcome(False)
    assert isinstance(model.fc.weight, nn.parameter.UninitializedParameter)


class Masked(nn.Module):
    """Skips an all-ones mask as transformers' mask helpers do: a branch on tensor values."""

    def __init__(self, device_check: bool = False) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)
        self.device_check = device_check

    def forward(self, x):
        if x.shape[-1] > 2:  # fx cannot trace a branch on a size it was not given
            x = x * 1
        mask = torch.ones(x.shape[0], x.shape[-1], dtype=torch.bool, device=x.device)
        if (not self.device_check or mask.device.type != "meta") and bool(mask.all()):
            mask = None
        y = self.fc(x)
        return y if mask is None else y.masked_fill(~mask, 0.0)


def counting_forwards(model, monkeypatch) -> list:
    """Every run of ``model``'s forward on tensors (real or meta, not fx's trace) appends its
    input's device type."""
    runs: list = []
    forward = type(model).forward

    def counted(self, x):
        if isinstance(x, torch.Tensor):
            runs.append(x.device.type)
        return forward(self, x)

    monkeypatch.setattr(type(model), "forward", counted)
    return runs


def test_a_forward_that_reads_values_is_recorded_in_one_real_run(monkeypatch):
    """On meta the value read raises, and the forward is recorded for real on zeros: the real
    first try is that run, so it goes on through the read instead of giving up there (which
    cost a meta try that fails at the same read, then a third run)."""
    model = Masked().eval()
    runs = counting_forwards(model, monkeypatch)
    real_first = analysed(model, (2, 8), True, monkeypatch)
    assert runs == ["cpu"]
    runs.clear()
    assert real_first == analysed(model, (2, 8), False, monkeypatch)
    assert runs == ["meta", "cpu"]  # meta refused the read; the real run answered
    # Nothing about it is remembered: the next analysis tries for real again.
    monkeypatch.setattr(real_run, "REAL_FIRST_PARAMETERS", 5_000_000)
    assert real_run.cheaper_for_real(model, 64, 2**30)
    with real_run_guard(model, 2**30), torch.no_grad():
        assert model(torch.zeros(2, 8)).shape == (2, 8)


def test_a_forward_that_branches_on_the_device_is_recorded_as_it_runs_there(monkeypatch):
    """Code that looks at the device itself may take another branch on meta than for real:
    the real first try records what torch does on the module's own device (the mask skipped),
    meta alone what it does there (the mask applied)."""
    model = Masked(device_check=True).eval()
    real_first = shapecalc.analyze(model, (2, 8))
    monkeypatch.setattr(real_run, "REAL_FIRST_PARAMETERS", -1)
    meta_only = shapecalc.analyze(model, (2, 8))
    assert [r.name for r in real_first.records] == ["mul", "fc"]
    assert [r.name for r in meta_only.records] == ["mul", "ones", "fc", "invert", "masked_fill"]
    assert real_first.total_params == meta_only.total_params == 72


# --------------------------------------------------------------- the per-call guard
def test_only_calls_that_cannot_write_run_without_the_guard():
    from shapecalc.torch_bridge.hook_recorder import function_label
    from shapecalc.torch_bridge.real_run import unwatched

    F = torch.nn.functional
    x, w = torch.zeros(2, 3), torch.zeros(4, 3)

    def free(func, *args, **kwargs):
        return unwatched(func, function_label(func), args, kwargs)

    assert free(torch.Tensor.view, x, 6) and free(torch.transpose, x, 0, 1)
    assert free(F.linear, x, w) and free(torch.matmul, x, w.t()) and free(F.gelu, x)
    assert free(torch.Tensor.shape.__get__, x)  # an attribute read
    assert not free(torch.Tensor.add_, x, 1)  # spelt in place
    assert not free(torch.Tensor.__iadd__, x, 1)
    assert not free(torch.ops.aten.add_.Tensor, x, x)
    assert not free(torch.add, x, 1, out=x)
    assert not free(F.relu, x, inplace=True)
    assert not free(F.linear, x, weight=w)  # a product's operands not where the estimate reads
    assert not free(torch.Tensor.index_put_, x, (torch.tensor([0]),), torch.tensor(1.0))
    assert not free(F.batch_norm, x, torch.zeros(3), torch.ones(3))  # may update its stats


def guards_made(monkeypatch) -> list:
    guards: list = []
    made = real_run.real_run_guard
    monkeypatch.setattr(real_run, "real_run_guard",
                        lambda *a, **k: guards.append(made(*a, **k)) or guards[-1])
    return guards


def _bump(t: torch.Tensor) -> None:
    t.add_(1)  # in TorchScript: no torch function mode sees this write


def _product(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return a @ b  # nor this product


with warnings.catch_warnings():  # torch ≥ 2.10 deprecates TorchScript; models still use it
    warnings.simplefilter("ignore", DeprecationWarning)
    _bump = torch.jit.script(_bump)
    _product = torch.jit.script(_product)


class ScriptedWrite(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 4)
        self.register_buffer("calls", torch.zeros(()))

    def forward(self, x):
        if x.shape[-1] > 4:  # fx cannot trace a branch on a size it was not given
            x = x * 2
        _bump(self.calls)
        return self.fc(x)


def test_a_write_no_function_mode_sees_is_put_back_and_the_run_gives_up(monkeypatch):
    """Under the per-call guard only the recorder's calls are watched before they run; a
    write from TorchScript is caught by the tensor's version counter after it, put back
    from the copy taken first, and the forward is recorded on meta instead."""
    model = ScriptedWrite().eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    guards = guards_made(monkeypatch)
    real_first = analysed(model, (2, 8), True, monkeypatch)
    assert [g.per_call for g in guards] == [True]
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert model in real_run._NOT_FOR_REAL  # not tried for real again
    assert real_first == analysed(model, (2, 8), False, monkeypatch)


class Mixer(nn.Module):
    """A module the engine has no rule for (its MACs are torch's count), whose product runs
    in TorchScript."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(8, 8))

    def forward(self, x):
        return _product(x, self.w) * 2


class WithMixer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.mix = Mixer()
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        if x.shape[-1] > 4:
            x = x * 1
        return self.fc(self.mix(x))


def test_work_no_function_mode_sees_is_still_counted(monkeypatch):
    """The product inside ``Mixer`` is invisible to the recorder's function mode: its output
    comes from no call the recorder saw, so the run is made again with every op watched,
    and the product is counted (5 rows × 8 × 8), as on meta."""
    model = WithMixer().eval()
    guards = guards_made(monkeypatch)
    monkeypatch.setattr(real_run, "REAL_FIRST_PARAMETERS", 5_000_000)
    real_first = shapecalc.analyze(model, (5, 8))
    assert [g.per_call for g in guards] == [True, False]
    mix = next(r for r in real_first.records if r.name == "mix")
    assert mix.macs == 5 * 8 * 8
    assert real_first.to_json(explain=True) == analysed(model, (5, 8), False, monkeypatch)


def test_a_run_over_budget_is_not_tried_again_at_the_same_inputs(monkeypatch):
    model = Plain().eval()
    runs = counting_forwards(model, monkeypatch)
    monkeypatch.setattr(real_run, "REAL_FIRST_MACS", 1_000)
    first = analysed(model, (1, 3, 16, 16), True, monkeypatch)
    assert runs == ["cpu", "meta"]  # the real try stopped halfway, meta answered
    runs.clear()
    assert analysed(model, (1, 3, 16, 16), True, monkeypatch) == first
    assert runs == ["meta"]
    runs.clear()
    analysed(model, (1, 3, 8, 8), True, monkeypatch)  # other inputs: tried for real again
    assert runs == ["cpu", "meta"]


@pytest.mark.parametrize("name", ["bert", "gpt2", "llama", "t5"])
def test_transformers_recorded_under_the_per_call_guard_equal_their_meta_recording(name, monkeypatch):
    """The per-call guard watches a fraction of the ops the whole-run guard did, with the
    same answer (MACs included) as meta gives."""
    transformers = pytest.importorskip("transformers")
    small = dict(num_hidden_layers=2, num_attention_heads=4, vocab_size=100)
    make = {
        "bert": lambda: transformers.BertModel(transformers.BertConfig(
            hidden_size=32, intermediate_size=64, **small)),
        "gpt2": lambda: transformers.GPT2Model(transformers.GPT2Config(
            n_embd=32, n_layer=2, n_head=4, vocab_size=100)),
        "llama": lambda: transformers.LlamaModel(transformers.LlamaConfig(
            hidden_size=32, intermediate_size=64, num_key_value_heads=2, **small)),
        "t5": lambda: transformers.T5EncoderModel(transformers.T5Config(
            d_model=32, d_ff=64, d_kv=8, num_layers=2, num_heads=4, vocab_size=100)),
    }
    model = make[name]().eval()
    guards = guards_made(monkeypatch)
    monkeypatch.setattr(real_run, "REAL_FIRST_PARAMETERS", 5_000_000)
    watched: list = []
    guard_class = real_run._guard_class()
    seen = guard_class.__torch_dispatch__
    monkeypatch.setattr(guard_class, "__torch_dispatch__",
                        lambda self, func, *a, **k: watched.append(func) or seen(self, func, *a, **k))
    real = shapecalc.analyze(model, (1, 12), input_dtypes=["int64"])
    assert [g.per_call for g in guards] == [True]
    monkeypatch.setattr(real_run, "REAL_FIRST_PARAMETERS", -1)
    meta = shapecalc.analyze(model, (1, 12), input_dtypes=["int64"])
    assert real.to_json(explain=True) == meta.to_json(explain=True)
    # Watched on every op, the same forward dispatches several times as many.
    per_call = len(watched)
    monkeypatch.setattr(real_run, "REAL_FIRST_PARAMETERS", 5_000_000)
    monkeypatch.setattr(real_run, "PER_CALL_MAX_BYTES", -1)
    watched.clear()
    assert shapecalc.analyze(model, (1, 12), input_dtypes=["int64"]).to_json(explain=True) == \
        meta.to_json(explain=True)
    assert per_call * 2 < len(watched)
