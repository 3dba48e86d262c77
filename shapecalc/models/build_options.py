"""How a model named by architecture (``timm:…``, ``hf:…``) is built: on the meta device or with
real weights, and the token count its default input has.

These are settings of one run, like the node budget of a spec file: the command line sets them
once (``--meta``, ``--seq-len``) and the library takes them as keyword arguments of
:func:`~shapecalc.models.api.load_model`; both end in :data:`BUILD_OPTIONS`, so no resolver
signature carries them through every caller.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any, Iterator

from shapecalc.core.argcheck import exact_int
from shapecalc.core.errors import ArgumentError
from shapecalc.core.safetext import preview

#: Above this many parameters a model is built on the meta device even without ``--meta``:
#: 100 M float32 weights are 400 MB the analysis never reads.
META_THRESHOLD = 100_000_000
#: Tokens in a text model's default input (``1×128``), as Hugging Face examples use.
DEFAULT_SEQ_LEN = 128
#: Longest default token input: beyond this even a meta forward builds attention matrices
#: whose shapes alone take seconds to propagate, and no config's positions reach it.
MAX_SEQ_LEN = 1 << 20


@dataclass(frozen=True)
class BuildOptions:
    """``meta``: ``True`` always builds on the meta device, ``False`` never (training needs real
    weights), ``None`` decides by size (:data:`META_THRESHOLD`). ``seq_len``: tokens in the
    default input of a text model."""

    meta: bool | None = None
    seq_len: int = DEFAULT_SEQ_LEN

    def __post_init__(self) -> None:
        if self.meta is not None and not isinstance(self.meta, bool):
            raise ArgumentError("meta", f"expected True, False or None, got {preview(self.meta)}")
        seq_len = exact_int("seq_len", self.seq_len, "a token count")
        if not 1 <= seq_len <= MAX_SEQ_LEN:
            raise ArgumentError("seq_len", f"expected 1 to {MAX_SEQ_LEN:,} tokens, got {seq_len}")
        object.__setattr__(self, "seq_len", seq_len)  # numpy integers become int


BUILD_OPTIONS: ContextVar[BuildOptions] = ContextVar("shapecalc_build_options", default=BuildOptions())


@contextmanager
def build_options(**changes: Any) -> Iterator[BuildOptions]:
    """The current options with ``changes`` (``meta=True``, ``seq_len=256``; ``None`` values
    leave a setting as it is) for the duration of the block."""
    given = {k: v for k, v in changes.items() if v is not None}
    unknown = set(given) - {"meta", "seq_len"}
    if unknown:
        raise ArgumentError(sorted(unknown)[0], "not a build option; expected meta or seq_len")
    options = replace(BUILD_OPTIONS.get(), **given)
    token = BUILD_OPTIONS.set(options)
    try:
        yield options
    finally:
        BUILD_OPTIONS.reset(token)


__all__ = ["BUILD_OPTIONS", "BuildOptions", "DEFAULT_SEQ_LEN", "MAX_SEQ_LEN", "META_THRESHOLD",
           "build_options"]
