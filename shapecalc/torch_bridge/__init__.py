"""Everything that touches torch (with ``shapecalc.train``), imported lazily.

``build``: spec → ``nn.Module`` and verification against a real forward. Importing this
package does not import torch; calling its functions does.
"""

from .build import NodeCheck, build_module, layer_to_module, trace_shapes, verify

__all__ = ["NodeCheck", "build_module", "layer_to_module", "trace_shapes", "verify"]
