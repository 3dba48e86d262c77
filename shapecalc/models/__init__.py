"""Where a model comes from: zoo specs (defined once; the same spec builds the torch module), spec
files (data, never code), Python targets (they run their code), the loaded :class:`ModelSource`
they all resolve to, and the API front door (:mod:`shapecalc.models.api`)."""
