"""Notes: small typed facts the engine states about a node ("drops 3 px", "inferred", "recorded
with hooks because …"), kept as kind + data and turned into words only at the edge.

Code that needs to know whether a layer drops pixels asks ``note.kind is NoteKind.DROPS``; it
never parses the text. ``str(note)`` is the one place a note becomes English, so the table,
JSON, HTML and the notebook all say the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable, Iterable, Mapping


class NoteKind(str, Enum):
    """What a note is about. Add a kind here together with its text in ``_TEXT``."""

    DROPS = "drops"                  # data: px, axes — rows/columns the stride never reads
    INFERRED = "inferred"            # data: field, value — an argument taken from the input
    DERIVED = "derived"              # data: field, value, how — e.g. in_features from Flatten
    UPSAMPLES = "upsamples"          # data: size, target — adaptive pooling that enlarges
    FLATTENS = "flattens"            # data: factors, total — Flatten's product
    MEASURED = "measured"            # data: — shape and MACs measured by running torch
    SHARED = "shared"                # data: with — weights shared with an earlier node
    TEXT = "text"                    # data: text — a free sentence (fallback while migrating)
    # nn.Module imports (torch_bridge): how parameters were found and how the forward was read
    PARAM_USED = "param_used"        # data: names, count, how — a parameter read outside a module
    PARAM_TIED = "param_tied"        # data: names, count, owner — a weight counted at another node
    PARAMS_UNUSED = "params_unused"  # data: names, count — parameters no forward uses
    PARAMS_UNPLACED = "params_unplaced"  # data: names, count — used outside the recorded modules
    HOOK_FALLBACK = "hook_fallback"  # data: model, reason, tried — recorded with hooks because fx
    #                                  failed (tried) or cannot work on this model (not tried)
    OUTPUTS = "outputs"              # data: count, labels — a forward with several outputs
    TUPLE_ITEM = "tuple_item"        # data: index, owner — one more item of a module's tuple
    EXPERTS = "experts"              # data: top_k, experts — a mixture of experts, how it is counted
    BATCH_FOLD = "batch_fold"        # data: node, layer, where, before, after, output, batch, fix


@dataclass(frozen=True, slots=True)
class Note:
    """One fact about one node: ``kind`` says what it is, ``data`` holds its numbers."""

    kind: NoteKind
    data: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def of(cls, kind: NoteKind, **data: Any) -> "Note":
        return cls(kind, tuple(data.items()))

    def get(self, key: str, default: Any = None) -> Any:
        for k, v in self.data:
            if k == key:
                return v
        return default

    @property
    def fields(self) -> dict[str, Any]:
        return dict(self.data)

    def to_dict(self) -> dict[str, Any]:
        """JSON form: ``{"kind": "drops", "text": "drops 3 px (H, W)", "px": 3, ...}``.

        Tuples in the data become lists, so the dict equals its own JSON round trip.
        """
        data = {k: list(v) if isinstance(v, tuple) else v for k, v in self.data}
        return {"kind": self.kind.value, "text": str(self), **data}

    def __str__(self) -> str:
        return _TEXT.get(self.kind, _plain)(self.fields)


def _plain(d: Mapping[str, Any]) -> str:
    return str(d.get("text", ""))


def _axes(axes: Iterable[str]) -> str:
    return ", ".join(axes)


_TEXT: dict[NoteKind, Callable[[Mapping[str, Any]], str]] = {
    NoteKind.DROPS: lambda d: f"drops {d['px']:,} px ({_axes(d['axes'])})",
    NoteKind.INFERRED: lambda d: f"{d['field']}={d['value']} inferred",
    NoteKind.DERIVED: lambda d: f"{d['field']}={d['value']} derived from the input",
    NoteKind.UPSAMPLES: lambda d: f"upsamples {d['size']}→{d['target']} (windows overlap)",
    NoteKind.FLATTENS: lambda d: f"{'×'.join(str(f) for f in d['factors'])} = {d['total']:,}",
    NoteKind.MEASURED: lambda d: "shape and MACs measured by running torch",
    NoteKind.SHARED: lambda d: "weights shared with an earlier node (counted once)",
    NoteKind.TEXT: _plain,
    NoteKind.PARAM_USED: lambda d: f"uses parameter {_names(d['names'])} ({d['count']:,}) {d['how']}",
    NoteKind.PARAM_TIED: lambda d: (f"uses {_names(d['names'])} ({d['count']:,}), tied to "
                                    f"'{d['owner']}' where it is counted (counted once)"),
    NoteKind.PARAMS_UNUSED: lambda d: (f"{d['count']:,} parameters that no forward uses: "
                                       f"{_names(d['names'])} (counted in the total)"),
    NoteKind.PARAMS_UNPLACED: lambda d: (f"{d['count']:,} parameters in no recorded module (read "
                                         f"by the forward's own code, or by nothing; hooks cannot "
                                         f"tell): {_names(d['names'])} (counted in the total)"),
    NoteKind.HOOK_FALLBACK: lambda d: (
        (f"torch.fx could not trace {d['model']} ({d['reason']}); " if d.get("tried", True) else
         f"torch.fx was not tried on {d['model']} ({d['reason']}); ") +
        "its modules and the torch functions between them were recorded in one run at the "
        "requested input, so shapes and MACs outside known layers are measured"),
    NoteKind.EXPERTS: lambda d: (f"mixture of experts: every token runs {d['top_k']} of "
                                 f"{d['experts']} experts, whatever the router picks (transformers' "
                                 "batched_mm experts kernel: the chosen experts' weights gathered "
                                 "per token), so MACs count those experts per token and activations "
                                 "include the gathered weights"),
    NoteKind.OUTPUTS: lambda d: (f"forward returns {d['count']} output{'' if d['count'] == 1 else 's'}: "
                                 f"{', '.join(d['labels'])}"),
    NoteKind.TUPLE_ITEM: lambda d: (f"item {d['index']} of the tuple computed (and counted) at "
                                    f"'{d['owner']}'"),
    NoteKind.BATCH_FOLD: lambda d: _batch_fold(d),
}


def _batch_fold(d: Mapping[str, Any]) -> str:
    """``Reshape(-1, 400) at 'view' (net.py:14) does not keep the batch: …`` and, when there
    is one, the batch-keeping code to write there."""
    def shape(s: Iterable[int]) -> str:
        return "×".join(map(str, s))

    at = f"'{d['node']}'" + (f" ({d['where']})" if d.get("where") else "")
    samples = "1 sample" if d["batch"] == 1 else f"a batch of {d['batch']}"
    text = (f"{d['layer']} at {at} does not keep the batch: {shape(d['before'])} becomes "
            f"{shape(d['after'])}, so {samples} in gives {shape(d['output'])} out")
    if d.get("fix"):
        text += f"; write {d['fix']} there instead (shapecalc check verifies it and finds the sizes that work)"
    return text


def _names(names: Iterable[str], limit: int = 6) -> str:
    names = list(names)
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")



def text_note(text: str) -> Note:
    """A note that is only a sentence (torch's own message, a user-facing remark)."""
    return Note.of(NoteKind.TEXT, text=text)


def has_kind(notes: Iterable[Note | str], kind: NoteKind) -> bool:
    return any(isinstance(n, Note) and n.kind is kind for n in notes)


__all__ = ["Note", "NoteKind", "has_kind", "text_note"]
