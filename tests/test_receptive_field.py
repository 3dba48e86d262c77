"""Receptive fields against torch autograd: backprop one output pixel, see which inputs it reached.

Both figures are checked: the theoretical field (on an unbounded input) and the part inside
the image (:mod:`shapecalc.core.image_fields`), which must equal the gradient's reach exactly,
at the borders too.

With all-ones weights, zero bias and average pools every path carries a positive gradient, so
the input pixels with a non-zero gradient (beyond rounding residue) are exactly the pixels the
output pixel reads (max
pooling would route the gradient to one pixel per window, hence average pools here). The
engine's :class:`AxisRF` claims, for every output ``j``, the first and last input pixel it reads
on an unbounded input (``bounds(j)``). Where nothing on the way is clipped by a border the
gradient's extent must be exactly that; at the borders it can only be smaller. Chains mix
convs, pools, transposed convs, upsampling (nearest, linear, by a factor or to a size) and
adaptive pools: fields with fractional jumps, whose outputs see different numbers of pixels.
"""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from shapecalc.core.arithmetic import AxisRF, AxisStep, FieldRule
from shapecalc.core.arithmetic.field_axes import Permuted
from shapecalc.core.blocks import Sequential
from shapecalc.core.graph import analyze_graph
from shapecalc.core.image_fields import fields_in_image
from shapecalc.core.layers import (
    AdaptiveAvgPool1d, AvgPool1d, BatchNorm2d, Conv1d, Conv2d, ConvTranspose1d, Flatten, GroupNorm,
    Layer, Linear, MaxPool2d, ReLU, Upsample,
)
from shapecalc.core.layers.functional import Pad, Permute

torch = pytest.importorskip("torch")
from tf_same_helpers import reference_module  # noqa: E402


def conv(k: int, s: int, p: int, d: int) -> Layer:
    return Conv1d(1, 1, k, stride=s, padding=p, dilation=d, bias=False)


windows = st.one_of(
    st.builds(conv, st.integers(1, 5), st.integers(1, 3), st.integers(0, 2), st.integers(1, 3)),
    st.integers(1, 4).flatmap(lambda k: st.builds(
        AvgPool1d, st.just(k), st.integers(1, 3), st.integers(0, k // 2))),
    # TensorFlow 'SAME' (timm's *Same layers): the padding, often odd, follows each input size
    st.builds(lambda k, s, d: Conv1d(1, 1, k, stride=s, padding="tf_same", dilation=d, bias=False),
              st.integers(1, 5), st.integers(1, 3), st.integers(1, 3)),
    st.builds(lambda k, s: AvgPool1d(k, s, padding="tf_same"), st.integers(1, 4), st.integers(1, 3)),
)
scalings = st.one_of(
    st.builds(lambda k, s, p, d: ConvTranspose1d(1, 1, k, stride=s, padding=p, dilation=d, bias=False),
              st.integers(1, 5), st.integers(1, 3), st.integers(0, 2), st.integers(1, 2)),
    st.builds(lambda f, mode: Upsample(scale_factor=float(f), mode=mode),
              st.integers(2, 3), st.sampled_from(["nearest", "linear", "nearest-exact"])),
    st.builds(lambda f: Upsample(scale_factor=float(f), mode="linear", align_corners=True),
              st.integers(2, 3)),
)
resizes = st.one_of(  # to a size, from the input size: scale in/out
    st.builds(lambda ratio, mode: ("size", ratio, mode), st.sampled_from([(3, 2), (2, 1), (5, 3)]),
              st.sampled_from(["nearest", "linear"])),
    st.builds(lambda ratio: ("adaptive", ratio, None), st.sampled_from([(1, 2), (2, 3), (1, 3)])),
)


def ones_module(layers: list[Layer]):
    """The torch chain of ``layers`` with every weight 1: gradients never cancel."""
    modules = [reference_module(layer) for layer in layers]
    with torch.no_grad():
        for m in (sub for top in modules for sub in top.modules()):
            if getattr(m, "weight", None) is not None:
                m.weight.fill_(1.0)
    return torch.nn.Sequential(*modules).double().eval()


def input_gradients(module, input_shape: tuple[int, ...]):
    """d output / d input for EVERY output pixel at once (one vectorised autograd call), the
    output's channels summed (a pixel's field is what any of its channels reads).

    Shape ``(*output spatial, *input spatial)``: entry ``[j…, i…]`` is the gradient that output
    pixel ``j`` sends to input pixel ``i`` (of the first input channel).
    """
    x = torch.ones(input_shape, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda t: module(t)[0].sum(0), x, vectorize=True)
    return jac[..., 0, 0, *([slice(None)] * (len(input_shape) - 2))]


def gradient_support(grads, out_index: tuple[int, ...]) -> list[tuple[int, int]] | None:
    """Per spatial axis, the (first, last) input index with a non-zero gradient from one output;
    ``None`` when the output reads no input pixel (padding only, or a transposed conv's gap).

    An interpolation whose source position is a whole pixel gives the next pixel weight 0; in
    floating point that weight can come out as a rounding residue (1e-16 of the others in
    float64), which is not reading the pixel: gradients below 1e-9 of the largest are zero.
    """
    g = grads[out_index].abs()
    nz = (g > 1e-9 * g.max()).nonzero()
    if not len(nz):
        return None
    return [(int(nz[:, a].min()), int(nz[:, a].max())) for a in range(nz.shape[1])]


def unclipped(steps: list[AxisStep], sizes: list[int], j: int) -> bool:
    """Whether output ``j``'s reads, traced back layer by layer, stay inside every layer's input."""
    wanted = {j}
    for step, n in zip(reversed(steps), reversed(sizes[:-1])):
        wanted = {i for o in wanted for i in step.reads(o)}
        if not wanted or min(wanted) < 0 or max(wanted) > n - 1:
            return False
    return True


def measurable(layers: list[Layer], n: int) -> bool:
    """Whether the chain fits size ``n`` with a known field (not a period beyond MAX_PERIOD)."""
    try:
        result = analyze_graph(Sequential(*layers).to_graph(), (1, 1, n))
    except Exception:  # the chain collapses at this size: nothing to measure
        return False
    return result.records[-1].rf is not FieldRule.UNKNOWN


def check_against_autograd(layers: list[Layer], n: int) -> AxisRF:
    result = analyze_graph(Sequential(*layers).to_graph(), (1, 1, n))
    (rf,) = result.records[-1].rf
    sizes = [n] + [r.output_shape[-1] for r in result.records]
    steps = [r.layer.field_steps(r.input_shapes[0])[0] for r in result.records]
    grads = input_gradients(ones_module(layers), (1, 1, n))
    (in_image,) = fields_in_image(result)[result.records[-1].name]
    # Nearest at a scale like 28/46: torch's float32 index falls one pixel short at whole
    # numbers; the theory is exact arithmetic, so it is compared where torch computes exactly.
    exact = all(step.torch_reads is None for step in steps)
    widest = 0
    inside = 0
    for j in range(sizes[-1]):
        support = gradient_support(grads, (j,))
        claimed = rf.bounds(j)
        # Inside the image, borders and dropped pixels included: exactly what autograd reaches.
        assert in_image[j] == (tuple(support[0]) if support else None), f"output {j} inside the image"
        if support is None:
            continue
        ((first, last),) = support
        if exact:  # borders only clip the field in theory
            assert claimed is not None, f"output {j} reads [{first}, {last}], engine says nothing"
            assert claimed[0] <= first and last <= claimed[1], \
                f"output {j} reaches [{first}, {last}] beyond the claimed {claimed}"
        if exact and unclipped(steps, sizes, j):  # nothing clipped: exactly the claimed pixels
            assert (first, last) == claimed, f"output {j}: autograd [{first}, {last}], engine {claimed}"
            widest = max(widest, last - first + 1)
            inside += 1
    if exact and inside >= rf.period:  # a whole period unclipped: the widest is among them
        assert widest == rf.size
    return rf


@settings(max_examples=50, deadline=None)
@given(chain=st.lists(st.one_of(windows, scalings), min_size=1, max_size=4),
       extra=st.integers(8, 24))
def test_chains_with_upsampling_and_transposed_convs_read_what_autograd_reaches(chain, extra):
    rf = AxisRF.identity()
    for layer in chain:  # a size where the chain fits, with room for unclipped outputs
        rf = rf.through(layer.field_steps((1, 1, 64))[0])
        assume(rf is not None)
    n = int(2 * rf.size + 2 * rf.jump) + extra
    assume(measurable(chain, n))
    check_against_autograd(chain, n)


@settings(max_examples=25, deadline=None)
@given(chain=st.lists(st.one_of(windows, scalings), min_size=0, max_size=2),
       resize=resizes, n=st.integers(12, 60))
def test_resizing_to_a_size_and_adaptive_pools(chain, resize, n):
    """Upsampling to a given size reads with scale in/out, adaptive pools their windows: both
    depend on the sizes, so the layer is built for the size it gets."""
    try:
        before = analyze_graph(Sequential(*chain).to_graph(), (1, 1, n)).output_shape[-1] if chain else n
    except Exception:
        assume(False)
    kind, (a, b), mode = resize
    if kind == "size":
        layer = Upsample(size=max(1, before * a // b), mode=mode)
    else:
        layer = AdaptiveAvgPool1d(max(1, before * a // b))
    layers = [*chain, layer, conv(3, 1, 1, 1)]
    assume(measurable(layers, n))
    check_against_autograd(layers, n)


def test_the_issue_examples_equal_autograd():
    """Conv(3) → MaxPool(2) → Upsample(×2) → Conv(3) reads 6 pixels (was 8); two upsampling
    stages read 18 (was 34). Average pools stand in for max pools in torch (same windows)."""
    one = [Conv1d(1, 1, 3, bias=False), AvgPool1d(2), Upsample(scale_factor=2.0), Conv1d(1, 1, 3, bias=False)]
    assert check_against_autograd(one, 64).size == 6
    two = [Conv1d(1, 1, 3, bias=False), AvgPool1d(2), Conv1d(1, 1, 3, bias=False), AvgPool1d(2),
           Upsample(scale_factor=2.0), Conv1d(1, 1, 3, bias=False), Upsample(scale_factor=2.0),
           Conv1d(1, 1, 3, bias=False)]
    rf = check_against_autograd(two, 96)
    assert (rf.size, rf.jump) == (18, 1)
    two_d = Sequential(Conv2d(1, 1, 3), MaxPool2d(2), Upsample(scale_factor=2), Conv2d(1, 1, 3))
    assert [a.size for a in analyze_graph(two_d.to_graph(), (1, 1, 32, 32)).records[-1].rf] == [6, 6]


def test_fractional_jumps_and_the_widest_output():
    """After ×2 nearest upsampling outputs are ½ pixel apart; a 2-wide kernel then reads one
    source pixel or two, by parity: the size is the wider."""
    rf = AxisRF.identity().through(Upsample(scale_factor=2.0).field_steps((1, 1, 8))[0])
    assert rf.jump == 0.5 and rf.size == 1
    rf = rf.through(AxisStep.window(2, 1, 0))
    assert [rf.bounds(j) for j in range(4)] == [(0, 0), (0, 1), (1, 1), (1, 2)]
    assert rf.size == 2 and rf.jump == 0.5 and rf.period == 2


def test_alexnet_first_layers_field():
    """d2l AlexNet's conv1 (k11 s4 p1) then max pool (k3 s2): 11, then 11 + 2·4 = 19 pixels."""
    rf = AxisRF.identity().through(AxisStep.window(11, 4, 1))
    assert (rf.size, rf.jump, rf.start) == (11, 4, 4.0)  # first window centred at 5 − 1
    rf = rf.through(AxisStep.window(3, 2, 0))
    assert (rf.size, rf.jump, rf.start) == (19, 8, 8.0)


def test_two_d_field_is_per_axis() -> None:
    """A (3, 5) kernel at stride (1, 2): 3 rows by 5 columns, then through a second conv."""
    layers = [Conv2d(1, 1, (3, 5), stride=(1, 2), bias=False), Conv2d(1, 1, 3, bias=False)]
    result = analyze_graph(Sequential(*layers).to_graph(), (1, 1, 20, 30))
    rf_h, rf_w = result.records[-1].rf
    assert (rf_h.size, rf_w.size) == (5, 5 + 2 * 2)
    assert (rf_h.jump, rf_w.jump) == (1, 2)
    grads = input_gradients(ones_module(layers), (1, 1, 20, 30))
    assert gradient_support(grads, (4, 5)) == [rf_h.bounds(4), rf_w.bounds(5)]


def test_layers_say_how_they_treat_positions():
    """No silent 'unchanged': element-wise layers say so; statistics over positions (GroupNorm,
    LayerNorm over the spatial dims) and Linear after Flatten read everything; a layer with no
    rule leaves the field unknown; a permutation moves the fields with their axes."""
    shape = (1, 4, 8, 8)
    assert ReLU().field_steps(shape) is FieldRule.POINTWISE
    assert BatchNorm2d(4).field_steps(shape) is FieldRule.POINTWISE
    assert GroupNorm(2, 4).field_steps(shape) is FieldRule.GLOBAL
    assert Flatten().field_steps(shape) is FieldRule.GLOBAL
    assert Layer().field_steps(shape) is FieldRule.UNKNOWN
    assert Permute((0, 2, 3, 1)).field_steps(shape) == Permuted(shape, (0, 2, 3, 1))
    result = analyze_graph(Sequential(Conv2d(4, 4, 3), Permute((0, 2, 3, 1)), ReLU(),
                                      Conv2d(6, 4, 3)).to_graph(), shape)
    permuted, relu, conv_nhwc = (r.rf for r in result.records[1:])
    assert permuted == relu == result.records[0].rf and [a.size for a in relu] == [3, 3]
    assert [w.axis for w in relu.where] == [1, 2]  # H and W now sit on axes 1 and 2
    assert conv_nhwc is FieldRule.UNKNOWN  # a conv reads axes 2 and 3: W and the channels
    result = analyze_graph(Sequential(Conv2d(4, 4, 3), Flatten(), Linear(144, 2)).to_graph(), shape)
    assert result.records[-1].rf is None


def test_group_norm_and_linear_fields_are_what_autograd_sees():
    """GroupNorm's statistics reach every pixel; a Linear on (N, C, H, W) mixes each row only."""
    x = torch.ones(1, 2, 5, 6, dtype=torch.float64, requires_grad=True)
    norm = torch.nn.GroupNorm(1, 2).double()
    (norm(x + torch.arange(30.0, dtype=torch.float64).view(5, 6)) ** 2)[0, :, 2, 3].sum().backward()
    assert (x.grad[0, 0] != 0).all()  # one pixel's output depends on every input pixel
    (rf_h, rf_w) = Linear(6, 3).receptive_field((AxisRF.identity(), AxisRF.identity()), (1, 2, 5, 6))
    assert (rf_h.size, rf_w.size) == (1, 6)
    lin = ones_module([Linear(6, 3)])
    grads = torch.autograd.functional.jacobian(lambda t: lin(t)[0].sum(0), torch.ones(1, 2, 5, 6, dtype=torch.float64))
    nz = (grads[2, 1, 0, 0] != 0).nonzero()  # output (row 2, feature 1)
    assert nz[:, 0].unique().tolist() == [2] and nz[:, 1].tolist() == list(range(6))


def test_padding_moves_the_field():
    rf = AxisRF.identity().through(Pad((2, 1)).field_steps((1, 1, 8))[0])
    assert rf.bounds(0) == (-2, -2) and rf.bounds(5) == (3, 3)


def test_alexnet_row_5_inside_the_image_is_what_autograd_reaches():
    """The issue's example: AlexNet's pool after conv2 ('5'), output (11, 5): rows 159…225 in
    theory, 159…217 inside the 224×224 image (rows 218…223 are dropped by conv1 and pools)."""
    import shapecalc
    from shapecalc.core.layers import AvgPool2d, MaxPool2d
    from shapecalc.models.torch_models import build_module

    analysis = shapecalc.analyze("alexnet")
    record = next(r for r in analysis.records if r.name == "5")
    rf_h, rf_w = record.rf
    assert (rf_h.bounds(11), rf_w.bounds(5)) == ((159, 225), (63, 129))
    rows, cols = fields_in_image(analysis)["5"]
    assert (rows[11], cols[5]) == ((159, 217), (63, 129))
    model = build_module("alexnet").double().eval()
    for i, m in enumerate(model):  # max pools route the gradient to one pixel: average instead
        if isinstance(m, torch.nn.MaxPool2d):
            model[i] = torch.nn.AvgPool2d(m.kernel_size, m.stride, m.padding)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(1.0)
    x = torch.ones(1, 1, 224, 224, dtype=torch.float64, requires_grad=True)
    model[:6](x)[0, :, 11, 5].sum().backward()
    hit = (x.grad[0, 0] != 0).nonzero()
    assert (int(hit[:, 0].min()), int(hit[:, 0].max())) == (159, 217)
    assert (int(hit[:, 1].min()), int(hit[:, 1].max())) == (63, 129)
    del AvgPool2d, MaxPool2d
