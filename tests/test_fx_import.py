"""nn.Module → engine graph: module mapping, fx op mapping, measured nodes, hooks fallback, safety."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

import shapecalc  # noqa: E402
from shapecalc.core.errors import ArgumentError  # noqa: E402
from shapecalc import SpecError  # noqa: E402
from shapecalc.diagnose import scan_inputs  # noqa: E402
from shapecalc.models.torch_models import verify  # noqa: E402
from shapecalc.torch_bridge.fx_import import module_to_layer, module_to_spec, source_line  # noqa: E402

MODULES = [
    (nn.Conv2d(3, 8, (3, 5), stride=2, padding=(1, 2), bias=False), (1, 3, 17, 19)),
    (nn.Conv1d(2, 4, 3, dilation=2, groups=2, padding_mode="reflect", padding=2), (1, 2, 20)),
    (nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1), (1, 4, 7, 7)),
    (nn.Linear(12, 5, bias=False), (3, 12)),
    (nn.BatchNorm2d(6, affine=False), (2, 6, 4, 4)),
    (nn.GroupNorm(2, 6), (2, 6, 4, 4)),
    (nn.LayerNorm([4, 4]), (2, 6, 4, 4)),
    (nn.MaxPool2d(3, 2, 1, ceil_mode=True), (1, 2, 10, 10)),
    (nn.AvgPool2d(2, count_include_pad=False), (1, 2, 9, 9)),
    (nn.AdaptiveAvgPool2d((None, 3)), (1, 2, 9, 7)),
    (nn.Flatten(2), (1, 2, 3, 4)),
    (nn.GELU(approximate="tanh"), (1, 3)),
    (nn.LeakyReLU(0.3), (1, 3)),
    (nn.Upsample(scale_factor=2, mode="bilinear"), (1, 2, 3, 5)),
    (nn.Dropout2d(0.1), (1, 2, 3, 3)),
    (nn.PReLU(4), (1, 4, 3, 3)),
    (nn.Softmax(dim=1), (2, 5)),
]


@pytest.mark.parametrize("module, shape", MODULES, ids=lambda v: type(v).__name__ if isinstance(v, nn.Module) else "")
def test_module_to_layer_matches_torch(module, shape):
    layer = module_to_layer(module)
    assert layer is not None and layer.type_name == type(module).__name__
    with torch.no_grad():
        out = module.eval()(torch.zeros(shape))
    assert layer.output_shape(shape) == tuple(out.shape)
    assert layer.param_count(shape) == sum(p.numel() for p in module.parameters())


def test_unknown_and_lazy_modules():
    assert module_to_layer(nn.ChannelShuffle(2)) is None

    class MyConv(nn.Conv2d):  # a user's subclass may change forward: never assumed
        pass

    assert module_to_layer(MyConv(1, 1, 1)) is None
    lazy = module_to_layer(nn.LazyConv2d(8, 3))
    assert lazy.type_name == "Conv2d" and lazy.in_channels is None
    assert module_to_layer(nn.LazyLinear(4)).in_features is None
    assert module_to_spec(nn.Sequential(nn.ReLU(), nn.ChannelShuffle(2))) is None


class Functional(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        y = F.relu6(self.conv(x)) * 0.5 - 1
        y = torch.sigmoid(y) + torch.tanh(y)
        y = F.max_pool2d(y, kernel_size=2, stride=2)
        y = torch.cat([y, y], 1)[:, :8]
        y = y.mean((2, 3), keepdim=True)
        y = y.view(y.size(0), -1)
        return F.softmax(self.fc(y), dim=1)


def test_functional_ops_are_derived_layers():
    result = shapecalc.analyze(Functional(), (2, 3, 12, 12))
    kinds = {r.name: (r.type, r.origin) for r in result.records}
    assert kinds["relu6"] == ("ReLU6", "derived")
    assert kinds["mul"][0] == "Elementwise" and kinds["sub"][0] == "Elementwise"
    assert kinds["add"] == ("Add", "derived")
    assert kinds["max_pool2d"] == ("MaxPool2d", "derived")
    assert kinds["cat"] == ("Concat", "derived")
    assert kinds["getitem"] == ("getitem", "measured")  # slicing has no formula: measured
    assert kinds["mean"] == ("Mean", "derived")
    assert kinds["view"] == ("Reshape", "derived")
    assert result.record("view").description == "Reshape(N, -1)"
    assert result.record("getitem").description == "getitem[(:, :8)]"
    assert result.output_shape == (2, 4)
    assert all(c.ok for c in verify(Functional(), (2, 3, 12, 12)))
    # derived nodes answer other input sizes without torch; the measured one reruns on meta
    assert shapecalc.analyze(Functional(), (1, 3, 20, 20)).record("max_pool2d").output_shape == (1, 8, 9, 9)


def test_view_with_a_foreign_dim_is_measured():
    class Odd(nn.Module):
        def forward(self, x):
            return x.view(x.size(1), -1)

    rec = shapecalc.analyze(Odd(), (2, 3, 4)).record("view")
    assert rec.origin == "measured" and rec.output_shape == (3, 8)


def test_blocks_are_labelled_with_module_classes():
    from corpus import blocks

    result = shapecalc.analyze(blocks.TinyResNet(), (1, 3, 32, 32))
    assert result.blocks["layer1"].type == "Sequential"
    assert result.blocks["layer2.0"].type == "BasicBlock"
    assert result.blocks["layer2.0"].output_shape == (1, 32, 16, 16)
    assert "layer2.0.add" in [r.name for r in result.records]


def test_the_users_module_is_left_untouched():
    from corpus import functional

    model = functional.LazyNet()
    model.train()
    shapecalc.analyze(model, (2, 3, 32, 32))
    assert all(c.ok for c in verify(model, (2, 3, 32, 32)))
    assert type(model.classifier).__name__ == "LazyLinear"  # still lazy: measured on a meta clone
    assert model.training and model.features[1].training
    with torch.no_grad():
        model(torch.zeros(2, 3, 32, 32))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert all(c.ok for c in verify(model, (2, 3, 32, 32)))
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) and after[k].device.type == "cpu" for k in before)


def test_untraceable_forward_falls_back_to_hooks():
    from corpus import special

    model = special.DataDependent()
    src = shapecalc.load_model(model)
    assert src.torch_import.route == "hooks" and src.graph is None
    assert "could not trace" in src.description and "control flow" in src.description
    result = shapecalc.analyze(model, (1, 3, 14, 14))
    # The forward's own torch calls are rows too; its `x.sum() >= 0` test feeds nothing: no row.
    assert [r.name for r in result.records] == ["conv", "relu", "extra", "max_pool2d", "flatten", "fc"]
    # Calls the engine has a rule for take it (and keep the receptive field going).
    assert {result.record(n).origin for n in ("relu", "max_pool2d", "flatten")} == {"derived"}
    from shapecalc.output import rf_text

    assert rf_text(result.record("max_pool2d").rf) == "4"
    assert result.record("conv").origin == "derived"
    with pytest.raises(shapecalc.ShapeError, match="mat1 and mat2 shapes cannot be multiplied") as err:
        shapecalc.analyze(model, (1, 3, 16, 16))
    assert err.value.node == "fc"  # cut at the leaf torch was running, explained by the engine
    from shapecalc.diagnose import diagnose

    assert diagnose(model, (1, 3, 16, 16)).summary() == (
        "Linear(288, 10) receives 392 features (8×7×7) at input 16×16: set in_features=392")
    with pytest.raises(SpecError, match="cannot be scanned"):
        scan_inputs(model, (1, 3, 14, 14), 10, 20)
    with pytest.raises(SpecError, match="recorded at one input size"):
        shapecalc.minimum_input(model, (1, 3, 14, 14))


def test_inputs_and_outputs_of_the_forward():
    class Two(nn.Module):
        def forward(self, x, y):
            return x + y

    two = shapecalc.analyze(Two(), [(1, 3), (2, 1)])
    assert two.input_shapes == ((1, 3), (2, 1)) and two.output_shape == (2, 3)
    assert two.graph.input_names == ("input", "y")
    with pytest.raises(ArgumentError, match="takes 2 input"):
        shapecalc.analyze(Two(), (1, 3))

    class Optional(nn.Module):
        def forward(self, x, scale=2.0):
            return x * scale

    assert shapecalc.analyze(Optional(), (1, 3)).output_shape == (1, 3)

    class Pair(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(3, 2), nn.Linear(3, 5)

        def forward(self, x):
            return self.a(x), self.b(x)

    src = shapecalc.load_model(Pair())
    assert [str(n) for n in src.torch_import.notes] == [
        "forward returns 2 outputs: output[0], output[1]"]
    result = shapecalc.analyze(Pair(), (1, 3))
    assert result.output_shape == (1, 2)
    assert result.outputs == [("output[0]", (1, 2)), ("output[1]", (1, 5))]


@pytest.mark.parametrize("name", sorted(__import__("shapecalc.models.zoo", fromlist=["ZOO"]).ZOO))
def test_zoo_module_imports_back_to_the_same_table(name):
    """zoo spec → nn.Module (on meta: no memory) → chain/fx import: the same nodes, node for node."""
    from shapecalc.models.torch_models import build_module
    from shapecalc.models.zoo import ZOO

    with torch.device("meta"):
        module = build_module(name)
    spec = shapecalc.analyze(name)
    imported = shapecalc.analyze(module, ZOO[name].default_input)

    def rows(result):  # fx runs a residual's shortcut first: compare by name, not by order
        return {r.name: (r.type, r.description, r.input_shapes, r.output_shape, r.params, r.macs,
                         r.shared, r.origin) for r in result.records}

    assert rows(imported) == rows(spec)
    assert (imported.total_params, imported.total_macs) == (spec.total_params, spec.total_macs)
    for path, block in imported.blocks.items():  # empty identity branches have no nodes to trace
        theirs = spec.blocks[path]
        assert (block.output_shape, block.params, block.macs) == (
            theirs.output_shape, theirs.params, theirs.macs), path


def test_tied_weights_count_once():
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = nn.Linear(4, 8, bias=False)
            self.mid = nn.Linear(8, 4, bias=False)
            self.dec = nn.Linear(4, 8, bias=False)
            self.dec.weight = self.enc.weight  # one tensor, two modules

        def forward(self, x):
            return self.dec(self.mid(self.enc(x)))

    model = Tied()
    result = shapecalc.analyze(model, (2, 4))
    assert result.total_params == sum(p.numel() for p in model.parameters()) == 64
    assert [r.shared for r in result.records] == [False, False, True]
    assert all(c.ok for c in verify(model, (2, 4)))


def test_a_models_own_train_method_decides_its_modes_in_eval():
    # model.eval() runs a module's own train(); the analysis must see the same modes
    # (here: a block that keeps its dropout in training mode) and restore them after.
    class KeepsDropout(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)
            self.drop = nn.Dropout(0.5)

        def train(self, mode=True):
            super().train(mode)
            self.drop.training = True
            return self

        def forward(self, x):
            return self.drop(self.fc(x))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.block = KeepsDropout()
            self.head = nn.Linear(4, 2)

        def forward(self, x):
            return self.head(self.block(x))

    from shapecalc.torch_bridge.measure import run_mode

    net = Net()
    before = {name: m.training for name, m in net.named_modules()}
    with run_mode(net, training=False):
        seen = {name: m.training for name, m in net.named_modules()}
    assert seen == {"": False, "block": False, "block.fc": False, "block.drop": True, "head": False}
    assert {name: m.training for name, m in net.named_modules()} == before
    net.eval()
    expected = {name: m.training for name, m in net.named_modules()}
    assert seen == expected  # exactly what the model's own eval() gives


class _TransformerStacks(nn.Module):
    def __init__(self, with_mask: bool = False):
        super().__init__()
        self.with_mask = with_mask
        self.emb = nn.Embedding(50, 16)
        layer = nn.TransformerEncoderLayer(16, 2, 32, batch_first=True)
        self.enc = nn.TransformerEncoder(layer, 3, norm=nn.LayerNorm(16), enable_nested_tensor=False)
        self.dec = nn.TransformerDecoder(nn.TransformerDecoderLayer(16, 2, 32, batch_first=True), 2)
        self.head = nn.Linear(16, 4)

    def forward(self, tokens):
        h = self.emb(tokens)
        if self.with_mask:
            causal = torch.triu(torch.full((5, 5), float("-inf")), diagonal=1)
            h = self.enc(h, mask=causal)
        else:
            h = self.enc(h)
        return self.head(self.dec(h, h).mean(dim=1))


def test_transformer_stacks_show_every_layer():
    model = _TransformerStacks()
    result = shapecalc.analyze(model, (3, 5), input_dtypes=["int64"])
    names = [r.name for r in result.records]
    assert names[1:6] == ["enc.layers.0", "enc.layers.1", "enc.layers.2", "enc.norm", "dec.layers.0"]
    assert [r.origin for r in result.records[1:5]] == ["derived"] * 4  # mapped, not measured
    assert result.blocks["enc"].params == sum(p.numel() for p in model.enc.parameters())
    assert result.blocks["dec"].params == sum(p.numel() for p in model.dec.parameters())
    assert result.total_params == sum(p.numel() for p in model.parameters())
    assert result.output_shape == tuple(model.eval()(torch.zeros(3, 5, dtype=torch.long)).shape)
    checks = verify(model, (3, 5), input_dtypes=["int64"])
    assert checks and all(c.ok and c.torch is not None for c in checks)


def test_a_masked_stack_is_measured_whole():
    # With a mask, the stack's own forward decides how the mask reaches each layer: it is run
    # as one measured node rather than unrolled.
    model = _TransformerStacks(with_mask=True)
    result = shapecalc.analyze(model, (3, 5), input_dtypes=["int64"])
    enc = result.record("enc")
    assert enc.origin == "measured" and not enc.is_block
    assert result.total_params == sum(p.numel() for p in model.parameters())
    assert all(c.ok for c in verify(model, (3, 5), input_dtypes=["int64"]))


def test_a_block_returning_a_list_shows_every_item():
    # HRNet's stages return a list of branches: the block's row shows each one's shape.
    class Branches(nn.Module):
        def __init__(self):
            super().__init__()
            self.fine = nn.Conv2d(4, 4, 3, padding=1)
            self.coarse = nn.Conv2d(4, 8, 3, stride=2, padding=1)

        def forward(self, x):
            return [self.fine(x), self.coarse(x)]

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stage = Branches()

        def forward(self, x):
            fine, coarse = self.stage(x)
            return fine.mean((2, 3)) + coarse.mean((2, 3))[:, :4]

    result = shapecalc.analyze(Net(), (1, 4, 8, 8))
    assert result.blocks["stage"].output_shapes == ((1, 4, 8, 8), (1, 8, 4, 4))
    assert "[1×4×8×8, 1×8×4×4]" in result.table(depth=0)
    layer = next(b for b in result.to_dict()["blocks"] if b["name"] == "stage")
    assert layer["output_shapes"] == [[1, 4, 8, 8], [1, 8, 4, 4]]


def test_the_read_mode_and_the_import_route_are_two_typed_values():
    from shapecalc.core.analysis import Mode
    from shapecalc.torch_bridge.fx_import import Route

    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU())
    src = shapecalc.load_model(model)
    assert src.torch_import.route is Route.CHAIN and src.torch_import.training is False
    result = shapecalc.analyze(model, (1, 1, 8, 8), mode="train")
    assert result.mode is Mode.TRAIN and result.to_dict()["mode"] == "train"
    assert shapecalc.analyze("lenet", mode=Mode.TRAIN).mode is Mode.TRAIN
    for call in (lambda: shapecalc.analyze(model, (1, 1, 8, 8), mode="fx"),
                 lambda: shapecalc.summary(model, (1, 1, 8, 8), mode="chain", verbose=0)):
        with pytest.raises(ArgumentError, match="^mode: choose 'eval' or 'train', got "):
            call()


def test_measured_is_read_from_the_layer_type():
    from shapecalc.torch_bridge.measure import MeasuredLayer

    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Hardshrink(), nn.Flatten())
    result = shapecalc.analyze(model, (1, 1, 8, 8))
    for record in result.records:
        assert record.measured == isinstance(record.layer, MeasuredLayer)
        assert record.origin == ("measured" if record.measured else "derived")
    assert [r.origin for r in result.records] == ["derived", "measured", "derived"]


def test_fx_values_are_classified_once_as_typed_kinds():
    from shapecalc.torch_bridge.fx_values import ValueKind

    class Split(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(4, 6, batch_first=True)

        def forward(self, x):
            out, _ = self.lstm(x)
            return out.reshape(x.size(0), -1)

    imp = shapecalc.load_model(Split()).torch_import
    kinds = {node.name: kind for node, kind in imp.converter.values.kind.items()}
    assert set(kinds.values()) <= set(ValueKind)
    assert kinds["x"] is ValueKind.TENSOR and kinds["lstm"] is ValueKind.TUPLE
    assert kinds["size"] is ValueKind.INT


def test_a_mask_built_in_the_forward_keeps_its_element_type_when_measured():
    # timm's EdgeNeXt builds a bool mask and inverts it: measured as float32 that failed, and
    # the whole model fell back to hooks; measured with each value's own type it stays traced.
    class Masked(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(6, 6)

        def forward(self, x):
            mask = torch.zeros_like(x[..., 0], dtype=torch.bool)
            keep = (~mask).unsqueeze(-1).to(x.dtype)
            return self.fc(x * keep)

    model = Masked()
    result = shapecalc.analyze(model, (2, 5, 6))
    from shapecalc.core.notes import NoteKind

    assert not any(n.kind is NoteKind.HOOK_FALLBACK for n in result.notes), result.notes
    assert result.output_shape == (2, 5, 6)
    assert [r.name for r in result.records if "invert" in r.name]


def test_a_long_fx_failure_is_cut_at_a_word():
    # The reason fx gave up goes into the table's header note: cut at a word, with an ellipsis.
    words = "the traced forward met a value it cannot express " * 8

    class Refuses(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 2)

        def forward(self, x):
            if isinstance(x, torch.fx.Proxy):
                raise RuntimeError(words.strip())
            return self.fc(x)

    src = shapecalc.load_model(Refuses())
    reason = src.torch_import.reason
    assert src.torch_import.route == "hooks" and reason.endswith("…") and len(reason) <= 200
    assert ("RuntimeError: " + words).startswith(reason[:-1] + " ")
    result = shapecalc.analyze(Refuses(), (1, 4))
    assert reason in result.table()


def test_a_block_returning_an_item_the_caller_drops_shows_it():
    # PiT's stages return (tokens, class token) and the model keeps only the class token: fx
    # drops the other as dead code, yet the module returns it, so its row shows both.
    class Stage(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(4, 8, 3, stride=2, padding=1)
            self.cls = nn.Linear(4, 8)

        def forward(self, pair):
            x, cls = pair
            cls = self.cls(cls)
            x = self.conv(x)
            return x.flatten(2).transpose(1, 2), cls

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stage = Stage()
            self.head = nn.Linear(8, 3)

        def forward(self, x):
            _, cls = self.stage((x, x.mean((2, 3))[:, None]))
            return self.head(cls)

    model = Net().eval()
    seen = {}
    hook = model.stage.register_forward_hook(
        lambda m, i, out: seen.update(stage=[tuple(t.shape) for t in out]))
    with torch.no_grad():
        out = model(torch.randn(1, 4, 8, 8))
    hook.remove()
    result = shapecalc.analyze(model, (1, 4, 8, 8))
    assert seen["stage"] == [(1, 16, 8), (1, 1, 8)]
    assert list(result.blocks["stage"].output_shapes) == seen["stage"]
    assert "[1×16×8, 1×1×8]" in result.table(depth=0)
    assert result.output_shape == tuple(out.shape)
    assert result.total_params == sum(p.numel() for p in model.parameters())


def resize_to(x, size: int):  # no leading _: fx wraps only public module-level names
    """A shape-dependent branch: torch.fx cannot trace it (timm's scale_image does this)."""
    if x.shape[-1] != size:
        x = torch.nn.functional.interpolate(x, size=(size, size))
    return x


def to_tokens(x):
    return x.flatten(2).transpose(1, 2)


class _ResizeNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)

    def forward(self, x):
        return to_tokens(self.conv(resize_to(x, 10)))


def test_a_timm_notrace_function_the_trace_fails_in_becomes_one_call():
    """timm registers such functions (register_notrace_function); the one the trace failed in is
    traced again as one measured call, and fx is kept. A registered function that traces keeps
    its ops as rows; without timm's registry the model goes the hook route as before."""
    registry = pytest.importorskip("timm.layers._fx")
    model, x = _ResizeNet().eval(), torch.randn(2, 3, 7, 7)
    for fn in (resize_to, to_tokens):
        registry.register_notrace_function(fn)
    try:
        src = shapecalc.load_model(model)
        assert src.torch_import.route == "fx" and src.torch_import.wrapped == (resize_to,)
        result = shapecalc.analyze(model, tuple(x.shape))
        names = [r.name for r in result.records]
        assert names[0] == "resize_to" and "flatten" in names and "transpose" in names
        assert result.output_shape == tuple(model(x).shape)
        # a second trace (for a node's source line) wraps the same function, so it succeeds
        line = source_line(src.torch_import, "flatten")
        assert line is not None and line.endswith(f":{to_tokens.__code__.co_firstlineno + 1}")
    finally:
        for fn in (resize_to, to_tokens):
            registry._autowrap_functions.discard(fn)
    assert shapecalc.load_model(_ResizeNet().eval()).torch_import.route == "hooks"
