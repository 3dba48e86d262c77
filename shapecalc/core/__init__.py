"""The engine: errors, notes, per-axis arithmetic, one dataclass per layer kind, the graph and its
analysis, and blocks. Plain Python on plain ints: nothing here imports torch or any layer above
(``models``, ``diagnose``, ``output``, ``torch_bridge``, ``train``, ``cli``)."""
