"""A torch module for a TF-'SAME' layer whose padding comes from timm, not from shapecalc.

``layer_to_module`` builds a TF-'SAME' layer with shapecalc's own padding rule, so a test that
compared the engine with that module would compare the rule with itself. Here the layer's
module runs unpadded, on its input padded by timm's ``get_same_padding`` (the function timm's
``Conv2dSame``, ``MaxPool2dSame`` … use), split as timm's ``pad_same`` splits it.
"""

from __future__ import annotations

import pytest

from shapecalc.core.layers import Layer

torch = pytest.importorskip("torch")
padding = pytest.importorskip("timm.layers.padding")


class TimmPadded(torch.nn.Module):
    """``layer``'s unpadded torch module after timm's 'SAME' padding of every spatial axis."""

    def __init__(self, layer: Layer):
        from shapecalc.torch_bridge import layer_to_module

        super().__init__()
        self.inner = layer_to_module(layer.with_total_padding(0))
        self.axes = [(w.k, w.s, w.d) for w in layer.windows]
        self.fill = float("-inf") if layer.type_name.startswith("MaxPool") else 0.0

    def forward(self, x):
        pads: list[int] = []
        for (k, s, d), n in zip(reversed(self.axes), reversed(x.shape[2:])):
            total = padding.get_same_padding(int(n), k, s, d)
            pads += [total // 2, total - total // 2]
        return self.inner(torch.nn.functional.pad(x, pads, value=self.fill))


def reference_module(layer: Layer):
    """The torch module of ``layer``: timm-padded for TF 'SAME', else ``layer_to_module``'s."""
    from shapecalc.torch_bridge import layer_to_module

    return TimmPadded(layer) if getattr(layer, "padding", None) == "tf_same" else layer_to_module(layer)
