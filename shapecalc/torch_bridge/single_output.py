"""Torch twins of the modules whose ``forward`` returns more than one tensor, for spec builds.

A spec chains layers one tensor to the next, as ``nn.Sequential`` does; ``nn.LSTM`` returns
``(output, (h_n, c_n))`` and ``nn.MultiheadAttention`` wants ``(query, key, value)``. The twins
are subclasses (same parameters, same ``state_dict`` keys) whose ``forward(x)`` returns the
output tensor alone, self-attending for attention, so a spec's model builds and runs as the
table describes it. ``shapecalc_type`` maps a twin back onto the same layer spec.
"""

from __future__ import annotations

from typing import Any

_TWINS: dict[str, Any] = {}


def single_output_class(torch_cls: Any) -> Any:
    """The single-output subclass of ``torch_cls`` (made once, then reused)."""
    name = torch_cls.__name__
    twin = _TWINS.get(name)
    if twin is not None:
        return twin
    if name == "MultiheadAttention":
        def forward(self, x):
            return torch_cls.forward(self, x, x, x, need_weights=False)[0]
    else:
        def forward(self, x):
            return torch_cls.forward(self, x)[0]
    forward.__doc__ = f"``{name}``'s first output only (a spec chains one tensor)."
    twin = type(f"{name}Output", (torch_cls,), {
        "forward": forward, "shapecalc_type": name, "__module__": __name__,
        "__doc__": f"``nn.{name}`` returning only its output tensor (built from a spec).",
    })
    _TWINS[name] = twin
    return twin
