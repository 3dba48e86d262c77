"""Make PyPI's torchvision importable beside the CPU build of torch, for the tests only.

PyPI's torchvision wheels are linked against the CUDA build of torch. Beside the CPU build that
CI installs, its compiled ops fail to load, and ``import torchvision`` then dies in
``torchvision._meta_registrations`` / ``_autograd_registrations``, which register meta and
autograd kernels for those ops (``operator torchvision::nms does not exist``). The
classification models that timm and transformers build never call those ops, so the two modules
are replaced by empty ones before torchvision is imported. Nothing else changes.

The test suite applies this in-process (``conftest.py``) and, for the commands it runs as
subprocesses, by putting this folder on ``PYTHONPATH``: Python imports a ``sitecustomize``
module from there at start-up. A user's environment, with a matching torch and torchvision,
needs none of this.
"""

import sys
import types


def skip_torchvision_registrations() -> None:
    for name in ("torchvision._meta_registrations", "torchvision._autograd_registrations"):
        sys.modules.setdefault(name, types.ModuleType(name))


skip_torchvision_registrations()
