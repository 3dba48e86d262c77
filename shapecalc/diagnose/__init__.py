"""Why a model does not fit, and fixes verified end to end on the whole model.

``from shapecalc.diagnose import diagnose`` is the front door; the modules below it each hold
one question: the failure being explained (``failure_case``), layer edits (``layer_repairs``),
the typed fix (``fixes``), which input sizes fit (``size_search``, ``input_scan``).
"""

from shapecalc.diagnose.diagnosis import (
    Diagnosis, Fix, FixKind, InputScan, compact, diagnose, runs, scan_inputs, shapes_until,
)

__all__ = ["Diagnosis", "Fix", "FixKind", "InputScan", "compact", "diagnose", "runs", "scan_inputs", "shapes_until"]
