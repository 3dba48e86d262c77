"""models.torch_models.verify on a module the caller passes: it measures, never changes it."""

from __future__ import annotations

import pytest

from shapecalc.models.torch_models import build_module, verify

torch = pytest.importorskip("torch")

SHAPE = (2, 1, 28, 28)


def _state(module):
    """Everything of the module a caller can see: each submodule's flag, each tensor's object,
    storage, device, dtype, grad flag and values."""
    flags = [(name, m.training) for name, m in module.named_modules()]
    tensors = [(name, t, t.data_ptr(), t.device, t.dtype, t.requires_grad, t.detach().clone())
               for name, t in [*module.named_parameters(), *module.named_buffers()]]
    return flags, tensors


def _same(before, after) -> None:
    assert before[0] == after[0]
    for (name, t, ptr, dev, dtype, grad, value), (_, t2, ptr2, dev2, dtype2, grad2, _) in zip(
            before[1], after[1], strict=True):
        assert t2 is t and ptr2 == ptr and dev2 == dev and dtype2 == dtype and grad2 == grad, name
        assert torch.equal(t2.detach(), value), name


@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_verify_leaves_the_callers_module_as_it_was(device, monkeypatch):
    module = build_module("lenet-bn", SHAPE)
    module.train()
    module[1].eval()  # a frozen BatchNorm inside a training model keeps its own flag
    before = _state(module)
    moved = []
    real_apply = torch.nn.Module._apply

    def watch_apply(self, *args, **kwargs):  # Module.to/cuda/half all end here
        moved.append(type(self).__name__)
        return real_apply(self, *args, **kwargs)

    monkeypatch.setattr(torch.nn.Module, "_apply", watch_apply)
    checks = verify("lenet-bn", SHAPE, device=device, module=module)
    assert checks and all(c.ok and c.torch for c in checks)
    assert moved == []  # the caller's module was never sent through .to()
    _same(before, _state(module))

