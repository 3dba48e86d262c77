"""PixelShuffle and PixelUnshuffle end to end: shapes, parameters and MACs against real torch,
receptive fields against autograd, spec files, the torch build and the fx mapping of both the
modules and ``F.pixel_shuffle``/``torch.pixel_unshuffle``."""

from __future__ import annotations

import json

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import shapecalc
from shapecalc.core.blocks import Sequential
from shapecalc.core.errors import ConfigError, ShapeError
from shapecalc.core.graph import analyze_graph
from shapecalc.core.image_fields import fields_in_image
from shapecalc.core.layers import Conv2d, layer_from_dict, layer_to_dict
from shapecalc.core.layers.shuffle import PixelShuffle, PixelUnshuffle

torch = pytest.importorskip("torch")
nn = torch.nn
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402
from shapecalc.models.torch_models import verify  # noqa: E402
from shapecalc.torch_bridge import layer_to_module  # noqa: E402


def torch_shape(module, shape):
    try:
        with torch.no_grad():
            return tuple(module(torch.zeros(shape, device="meta")).shape)
    except RuntimeError:
        return None


@settings(max_examples=40, deadline=None)
@given(r=st.integers(1, 3), c=st.integers(1, 20), h=st.integers(1, 9), w=st.integers(1, 9),
       batch=st.lists(st.integers(1, 2), max_size=2), unshuffle=st.booleans())
def test_shapes_params_and_macs_equal_torch(r, c, h, w, batch, unshuffle):
    layer = PixelUnshuffle(r) if unshuffle else PixelShuffle(r)
    shape = (*batch, c, h, w)
    module = layer_to_module(layer)
    assert type(module) is (nn.PixelUnshuffle if unshuffle else nn.PixelShuffle)
    expected = torch_shape(module, shape)
    try:
        out = layer.output_shape(shape)
    except ShapeError:
        assert expected is None  # torch refuses it too
        return
    assert out == expected
    assert layer.param_count(shape) == sum(p.numel() for p in module.parameters()) == 0
    with FlopCounterMode(display=False) as counter:
        module(torch.zeros(shape))
    assert layer.mac_count(out, shape) == counter.get_total_flops() // 2 == 0
    assert layer_from_dict(layer_to_dict(layer)) == layer


def test_refusals_name_the_numbers():
    with pytest.raises(ShapeError, match="channels 5 are not divisible by upscale_factor² = 4"):
        PixelShuffle(2).output_shape((1, 5, 3, 3))
    with pytest.raises(ShapeError, match="W = 5 is not divisible by downscale_factor 2") as info:
        PixelUnshuffle(2).output_shape((1, 1, 4, 5))
    assert info.value.axis == "W"
    with pytest.raises(ShapeError, match="at least 3 dims"):
        PixelShuffle(2).output_shape((4, 4))
    with pytest.raises(ConfigError):
        PixelShuffle(0)


def ones(module):
    with torch.no_grad():
        for p in module.parameters():
            p.fill_(1.0)
    return module.double().eval()


@settings(max_examples=25, deadline=None)
@given(k=st.integers(1, 3), r=st.integers(2, 3), k2=st.integers(1, 3), r2=st.integers(1, 2),
       n=st.integers(4, 8))
def test_fields_through_shuffles_equal_autograd(k, r, k2, r2, n):
    """conv → PixelShuffle(r) → conv → PixelUnshuffle(r2): every output pixel's field, in theory
    and inside the image, against the gradient of that pixel (all its channels)."""
    layers = [Conv2d(1, r * r, k, bias=False), PixelShuffle(r), Conv2d(1, r2 * r2, k2, bias=False),
              PixelUnshuffle(r2)]
    sizes = [s for s in range(n, n + 2 * r2) if ((s - k + 1) * r - k2 + 1) % r2 == 0]
    assume(sizes)  # the shuffled map minus k2 − 1 must divide by r2
    size = sizes[0]
    result = analyze_graph(Sequential(*layers).to_graph(), (1, 1, size, size))
    rf_h, rf_w = result.records[-1].rf
    inside_h, inside_w = fields_in_image(result)[result.records[-1].name]
    model = ones(nn.Sequential(*[layer_to_module(layer) for layer in layers]))
    x = torch.ones(1, 1, size, size, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda t: model(t)[0].sum(0), x, vectorize=True)
    out_h, out_w = result.output_shape[2:]
    for i in range(out_h):
        for j in range(out_w):
            hit = (jac[i, j, 0, 0] != 0).nonzero()
            rows = (int(hit[:, 0].min()), int(hit[:, 0].max()))
            cols = (int(hit[:, 1].min()), int(hit[:, 1].max()))
            assert (inside_h[i], inside_w[j]) == (rows, cols)
            assert (rf_h.bounds(i), rf_w.bounds(j)) == (rows, cols)  # no padding: nothing clipped
    assert rf_h.jump == r2 / r and rf_h.size == max(b - a + 1 for a, b in inside_h)


class Shuffles(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 12, 3, padding=1)
        self.up = nn.PixelShuffle(2)
        self.down = nn.PixelUnshuffle(2)

    def forward(self, x):
        y = self.down(self.up(self.conv(x)))
        return torch.pixel_unshuffle(nn.functional.pixel_shuffle(y, 2), downscale_factor=2)


def test_modules_and_functions_are_derived_layers():
    result = shapecalc.analyze(Shuffles(), (2, 3, 8, 8))
    rows = {r.name: (r.type, r.origin, r.output_shape) for r in result.records}
    assert rows["up"] == ("PixelShuffle", "derived", (2, 3, 16, 16))
    assert rows["down"] == ("PixelUnshuffle", "derived", (2, 12, 8, 8))
    assert rows["pixel_shuffle"] == ("PixelShuffle", "derived", (2, 3, 16, 16))
    assert rows["pixel_unshuffle"] == ("PixelUnshuffle", "derived", (2, 12, 8, 8))
    checks = verify(Shuffles(), (2, 3, 8, 8))
    assert all(c.ok for c in checks)


def test_a_spec_file_with_shuffles_builds_the_same_torch_module(tmp_path):
    spec = tmp_path / "shuffle.json"
    spec.write_text(json.dumps({
        "name": "shuffles", "input": [1, 3, 8, 8],
        "layers": [{"type": "Conv2d", "in_channels": 3, "out_channels": 12, "kernel_size": 3,
                    "padding": 1},
                   {"type": "PixelShuffle", "upscale_factor": 2},
                   {"type": "PixelUnshuffle", "downscale_factor": 4}]}))
    result = shapecalc.analyze(str(spec))
    assert result.output_shape == (1, 48, 4, 4)
    assert [r.type for r in result.records] == ["Conv2d", "PixelShuffle", "PixelUnshuffle"]
    assert all(c.ok for c in verify(str(spec)))
