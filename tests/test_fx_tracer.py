"""The tracer's lean paths record exactly the graph torch.fx's own paths record."""

from __future__ import annotations

import operator
from collections import namedtuple

import pytest
from hypothesis import given, settings, strategies as st

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

from shapecalc.torch_bridge import fx_tracer  # noqa: E402
from shapecalc.torch_bridge.fx_common import ModuleIndex, module_to_layer  # noqa: E402
from shapecalc.torch_bridge.fx_forwards import recorded_forwards  # noqa: E402
from shapecalc.torch_bridge.fx_tracer import LeanFx, tracer_class  # noqa: E402
from shapecalc.torch_bridge.measure import run_mode  # noqa: E402

FX_PATHS = LeanFx(trace=None, nodes=False)  # every step as torch.fx does it


def _traced(module, lean):
    """(the traced graph, the tracer, the root's attribute names after) with the given paths."""
    index = ModuleIndex.of(module)
    known = {id(m) for m in index.unique if module_to_layer(m) is not None}
    with run_mode(module, False):
        tracer = tracer_class(known, recorded_forwards(index.unique, False), index, lean)()
        graph = tracer.trace(module)
    return graph, tracer, sorted(vars(module))


def _described(graph, tracer):
    nodes = [(n.name, n.op, repr(n.target), repr(n.args), repr(n.kwargs), n.type,
              repr(list(n.meta.get("nn_module_stack", {}).items())), [u.name for u in n.users],
              sorted(n.meta)) for n in graph.nodes]
    return nodes, dict(tracer.node_name_to_scope), {k: v for k, v in tracer.returned.items()}


def assert_same_trace(make):
    """``make()`` builds the module afresh for each trace: fx may add constants to the root."""
    lean = LeanFx.found()
    graph, tracer, attrs = _traced(make(), lean)
    fx_graph, fx_tracer_, fx_attrs = _traced(make(), FX_PATHS)
    assert _described(graph, tracer)[0] == _described(fx_graph, fx_tracer_)[0]
    assert repr(_described(graph, tracer)[1:]) == repr(_described(fx_graph, fx_tracer_)[1:])
    assert attrs == fx_attrs
    assert graph.python_code("self").src == fx_graph.python_code("self").src


class Held(nn.Module):
    """A plain tensor attribute (not a buffer), a constant made in forward, shared modules,
    a tied weight, several outputs and keyword arguments: every path of fx's create_arg."""

    Out = namedtuple("Out", "a b")

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.ones(1, 4, 1, 1)  # fx finds it through its tensor-attribute map
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.again = self.conv  # one module under two paths
        self.head = nn.Linear(4, 4)
        self.tail = nn.Linear(4, 4)
        self.tail.weight = self.head.weight  # tied
        self.register_buffer("offset", torch.zeros(4))
        self.gamma = nn.Parameter(torch.ones(4))

    def forward(self, x, y=None):
        x = self.again(self.conv(x)) * self.scale
        x = x + torch.tensor([2.0])  # a constant: fx stows it on the root
        v = F.adaptive_avg_pool2d(x, 1).flatten(1)
        v = self.head(v) * self.gamma + self.offset
        n, c = v.shape
        w = operator.mul(self.tail(v), c)
        # torch functions on plain arguments (a list, keywords, a dtype) and on others (a
        # torch.Size, a tuple to pytree): fx's __torch_function__ and the lean one
        w = torch.cat([w, F.softmax(w, dim=-1, dtype=torch.float32)], dim=1)
        w = torch.reshape(torch.reshape(w, (n, 2 * c)), torch.Size([1, -1]))
        return self.Out(a=v, b=w.softmax(dim=-1))


def _timm(name):
    timm = pytest.importorskip("timm")
    return lambda: timm.create_model(name, pretrained=False)


@pytest.mark.parametrize("make", [
    Held,
    lambda: nn.Sequential(nn.Linear(16, 16), nn.TransformerEncoder(  # layer by layer
        nn.TransformerEncoderLayer(16, 2, 32, batch_first=True), 2)),
    _timm("mobilenetv3_small_050"),  # BatchNormAct2d recorded directly, SE blocks
    _timm("vit_tiny_patch16_224"),  # unpacking proxies, attention
    _timm("hrnet_w18_small"),  # modules that return lists
], ids=["held", "transformer", "mobilenetv3", "vit", "hrnet"])
def test_lean_paths_record_the_same_graph(make):
    assert_same_trace(make)


def test_the_vetted_torch_takes_the_lean_paths():
    """On a torch whose fx functions are the vetted ones, every lean path is on; a changed
    function (its fingerprint differs) turns its path off."""
    from torch.fx import _symbolic_trace, graph, proxy

    lean = LeanFx.found()
    matches = {name: fx_tracer.fx_fingerprint(f) == fx_tracer.VETTED[name] for name, f in (
        ("Tracer.trace", _symbolic_trace.Tracer.trace),
        ("Graph.create_node", graph.Graph.create_node),
        ("TracerBase.create_node", proxy.TracerBase.create_node),
        ("TracerBase.create_proxy", proxy.TracerBase.create_proxy),
        ("TracerBase.create_arg", proxy.TracerBase.create_arg),
        ("Proxy.__torch_function__", proxy.Proxy.__torch_function__.__func__),
        ("is_tensor_method_or_property", torch.overrides.is_tensor_method_or_property.__wrapped__),
        ("_patch_wrapped_functions", _symbolic_trace._patch_wrapped_functions),
        ("_autowrap_check", _symbolic_trace._autowrap_check),
        ("_create_wrapped_func", _symbolic_trace._create_wrapped_func))}
    assert (lean.trace is not None) == matches["Tracer.trace"]
    assert lean.nodes == (matches["Graph.create_node"] and matches["TracerBase.create_node"])
    assert lean.proxies == (matches["TracerBase.create_proxy"] and matches["TracerBase.create_arg"])
    assert lean.torch_functions == (lean.names and matches["Proxy.__torch_function__"]
                                    and matches["is_tensor_method_or_property"])
    assert lean.wrappers == (matches["_patch_wrapped_functions"] and matches["_autowrap_check"]
                             and matches["_create_wrapped_func"])
    wrapped = nn.Module._wrapped_call_impl
    matches["_wrapped_call_impl"] = nn.Module.__call__ is wrapped and \
        fx_tracer.fx_fingerprint(wrapped) == fx_tracer.VETTED["_wrapped_call_impl"]
    assert (lean.call_impl is nn.Module._call_impl) == matches["_wrapped_call_impl"]
    if torch.__version__.startswith("2.13."):  # the version vetted: a new one must be re-vetted
        assert all(matches.values()) and lean.names and lean.scopes and lean.proxies \
            and lean.torch_functions and lean.wrappers


def test_a_changed_fx_function_is_not_vetted(monkeypatch):
    monkeypatch.setitem(fx_tracer.VETTED, "Graph.create_node", "0" * 16)
    LeanFx.found.cache_clear()
    try:
        assert not LeanFx.found().nodes
    finally:
        monkeypatch.undo()
        LeanFx.found.cache_clear()


def test_an_older_fx_without_the_pieces_takes_fx_paths(monkeypatch):
    """A torch without a piece a lean path needs (as older releases lack some) gets fx's own
    path for it, and the same graph."""
    from torch.fx import _symbolic_trace, graph, proxy

    monkeypatch.delattr(proxy, "ScopeContextManager")
    monkeypatch.delattr(_symbolic_trace, "_constant_attribute_types")
    monkeypatch.delattr(graph, "_Namespace")
    monkeypatch.delattr(nn.Module, "_wrapped_call_impl")
    LeanFx.found.cache_clear()
    try:
        lean = LeanFx.found()
        assert lean.trace is None and not lean.scopes and not lean.names and lean.call_impl is None
    finally:
        monkeypatch.undo()
        LeanFx.found.cache_clear()
    graph_, tracer, _ = _traced(Held(), lean)
    fx_graph, fx_tracer_, _ = _traced(Held(), FX_PATHS)
    assert _described(graph_, tracer)[0] == _described(fx_graph, fx_tracer_)[0]


def test_module_calls_are_seen_through_call_impl_only_where_they_all_go_there():
    """A compiled module, or one that overrides ``_call_impl``, keeps fx's ``__call__``."""
    impl = LeanFx.found().call_impl
    if impl is None:
        pytest.skip("this torch's Module.__call__ is not the vetted one")
    held = Held()
    assert fx_tracer._calls_through_call_impl(ModuleIndex.of(held), impl)
    held.conv._compiled_call_impl = held.conv._call_impl
    assert not fx_tracer._calls_through_call_impl(ModuleIndex.of(held), impl)

    class Own(nn.ReLU):
        def _call_impl(self, *args, **kwargs):
            return super()._call_impl(*args, **kwargs)

    mixed = nn.Sequential(nn.Linear(2, 2), Own())
    assert not fx_tracer._calls_through_call_impl(ModuleIndex.of(mixed), impl)
    assert_same_trace(lambda: nn.Sequential(nn.Linear(2, 2), Own()))


class Delegating(nn.Module):
    """A module with its own ``__getattr__`` that hands reads on to nn.Module's (as wrappers
    around a model do): only fx's module-wide patch sees its parameter reads."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(3))
        self.inner = nn.Linear(3, 3)

    def __getattr__(self, name):
        return super().__getattr__(name)

    def forward(self, x):
        return self.inner(x) * self.scale


def test_reads_through_a_modules_own_getattr_are_seen():
    assert fx_tracer._getattr_classes(ModuleIndex.of(Delegating())) is None
    assert fx_tracer._getattr_classes(ModuleIndex.of(Held())) is not None
    assert_same_trace(Delegating)
    graph, _, _ = _traced(Delegating(), LeanFx.found())
    assert [n.target for n in graph.nodes if n.op == "get_attr"] == ["scale"]


def test_classes_are_restored_after_a_trace():
    """Every class patched for the trace is as it was, whether the trace ends or fails, and
    nn.Module keeps its own __getattr__ when a plain nn.Module() is in the tree."""
    before = {cls: dict(vars(cls)) for cls in (Held, nn.Conv2d, nn.Linear, nn.Module)}
    _traced(Held(), LeanFx.found())

    class Boxed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.box = nn.Module()  # a plain container
            self.box.conv = nn.Conv2d(3, 3, 1)
            self.gamma = nn.Parameter(torch.ones(1))

        def forward(self, x):
            return self.box.conv(x) * self.gamma

    assert fx_tracer._getattr_classes(ModuleIndex.of(Boxed())) is None
    assert_same_trace(Boxed)

    class Failing(Held):
        def forward(self, x):
            if x.sum() > 0:  # control flow on a tensor: fx refuses
                return x
            return x

    with pytest.raises(Exception):
        _traced(Failing(), LeanFx.found())
    for cls, attrs in before.items():
        assert dict(vars(cls)) == attrs


def test_a_module_made_in_the_forward_fails_both_ways():
    """fx refuses a module that is not in the tree; so does the lean trace."""
    class Inline(nn.Module):
        def forward(self, x):
            return nn.ReLU()(x)

    for lean in (LeanFx.found(), FX_PATHS):
        with pytest.raises(NameError, match="not installed as a submodule"):
            _traced(Inline(), lean)


def test_stack_traces_take_fx_path():
    """Source lines (recorded only on fx's own path) are still recorded."""
    module = Held()
    index = ModuleIndex.of(module)
    tracer = tracer_class(set(), {}, index)()
    tracer.record_stack_traces = True
    graph = tracer.trace(module)
    assert all(n.stack_trace for n in graph.nodes if n.op == "call_module")


def test_tensor_attribute_map_is_fx_own():
    """Without plain tensor attributes the map is empty (as fx's); with one, it is fx's."""
    from torch.fx._symbolic_trace import _constant_attribute_types as kinds

    plain = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU())
    assert fx_tracer._tensor_attrs(plain, ModuleIndex.of(plain), kinds) == {}
    held = Held()
    found = fx_tracer._tensor_attrs(held, ModuleIndex.of(held), kinds)
    assert found == {held.scale: "scale"}


# ------------------------------------------------------------------ ModuleIndex
@st.composite
def module_trees(draw):
    """Random trees of containers and leaves, some modules and parameters shared."""
    made: list = []
    params: list = []

    def build(depth: int):
        if made and draw(st.integers(0, 4)) == 0:
            return draw(st.sampled_from(made))  # a module reached again
        if depth == 0 or draw(st.booleans()):
            leaf = nn.Linear(2, 2, bias=draw(st.booleans()))
            if params and draw(st.integers(0, 3)) == 0:
                leaf.weight = draw(st.sampled_from(params))  # a tied weight
            if draw(st.booleans()):
                leaf.register_buffer("stat", torch.zeros(1))
            params.append(leaf.weight)
            made.append(leaf)
            return leaf
        box = nn.Module()
        for i in range(draw(st.integers(1, 3))):
            box.add_module(f"c{i}", build(depth - 1))
        if draw(st.booleans()):
            box.add_module("gone", None)
        made.append(box)
        return box

    return build(3)


@settings(max_examples=60, deadline=None)
@given(module_trees())
def test_module_index_is_what_torch_walks_give(root):
    index = ModuleIndex.of(root)
    assert list(index.modules.items()) == list(dict(root.named_modules(remove_duplicate=False)).items())
    assert [(p, id(t)) for p, t in index.params] == \
        [(p, id(t)) for p, t in root.named_parameters(remove_duplicate=False)]
    assert [(p, id(t)) for p, t in index.buffers] == \
        [(p, id(t)) for p, t in root.named_buffers(remove_duplicate=False)]
    assert [id(m) for m in index.unique] == [id(m) for m in root.modules()]
    assert index.first_paths == {m: p for p, m in root.named_modules()}
    firsts = fx_tracer._first_paths(root, index)
    assert firsts == fx_tracer._first_paths(root, None)


# ------------------------------------------------------------------ node names
@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet="ab_.09Zé-", max_size=8)
                | st.sampled_from(["input", "list", "for", "a_1", "a_01", "a__2", "_1", "x_"]),
                max_size=12))
def test_plain_names_are_the_names_fx_gives(targets):
    """A run of targets named by fx's own derivation and by plain_name (where it gives one,
    made unique by _fresh_name) gets the same unique names, numbering included; builtins and
    keywords are numbered as fx numbers them."""
    from torch.fx import graph as fx_graph
    from torch.fx.graph import Graph, _Namespace

    graph = Graph()
    theirs, ours = _Namespace(), _Namespace()
    for target in targets + targets:
        if not target:
            continue
        plain = fx_tracer.plain_name(target)
        expected = theirs.create_name(graph._target_to_str(target), None)
        got = fx_tracer._fresh_name(ours, plain, fx_graph._illegal_names) if plain is not None \
            else ours.create_name(graph._target_to_str(target), None)
        assert got == expected
    assert ours._base_count == theirs._base_count and ours._used_names == theirs._used_names


@pytest.mark.parametrize("target, name", [
    ("blocks.0.conv_pw", "blocks_0_conv_pw"), ("0.weight", "_0_weight"), ("__getitem__", "getitem"),
    ("size", "size"), ("convBlock.x", None), ("a..b", None), ("", None), ("__", None)])
def test_plain_name_examples(target, name):
    assert fx_tracer.plain_name(target) == name
