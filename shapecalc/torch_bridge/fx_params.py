"""Which node owns which parameter, so that a model's total is ``sum(p.numel())`` of its distinct
parameters, whatever its forward does with them.

A layer formula knows the weights of a ``Conv2d``; it cannot know a class token, a layer-scale
``gamma`` read with ``x * self.gamma``, a relative-position bias table indexed in ``forward``,
or a decoder that reuses the embedding's weight. The ledger below holds every distinct
parameter of the user's module once (tied ones under their first name) and hands each to the
first node that uses it; a later user gets a note naming where it is counted, and whatever no
node claims is reported (names and count) and still counted in the total.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shapecalc.core.notes import Note, NoteKind
from shapecalc.torch_bridge.measure import torch_module


@dataclass(slots=True)
class ParamInfo:
    name: str  # first name under which the module holds it
    numel: int
    frozen: bool  # requires_grad is False


@dataclass(slots=True)
class Claim:
    """What one node owns: parameters counted there, how many are frozen, notes on the rest."""

    params: int | None
    frozen: int
    notes: tuple[Note, ...]
    shared_with: str | None  # every parameter it uses is counted at this earlier node
    tensors: int = 0  # trainable parameter tensors counted here (an optimizer's step per tensor)


class ParamLedger:
    """Every distinct parameter of ``root``, and the node that counts it."""

    def __init__(self, root: Any, named: list[tuple[str, Any]] | None = None) -> None:
        """``named``: ``root.named_parameters(remove_duplicate=False)``, if already read."""
        torch = torch_module()
        lazy = torch.nn.parameter.UninitializedTensorMixin
        self.info: dict[int, ParamInfo] = {}
        self.lazy: set[int] = set()
        if named is None:
            named = list(root.named_parameters(remove_duplicate=False))
        for name, p in named:
            if id(p) in self.info or id(p) in self.lazy:
                continue
            if isinstance(p, lazy):  # size unknown until it runs: the layer formula counts it
                self.lazy.add(id(p))
                continue
            self.info[id(p)] = ParamInfo(name, p.numel(), not p.requires_grad)
        self.owner: dict[int, str] = {}
        self.key: dict[str, str] = {}  # node → its param_key
        self._of_module: dict[int, list[int]] = {}

    def module_params(self, module: Any) -> list[int]:
        """Ids of the parameters a module call uses (its own and its children's, each once)."""
        found = self._of_module.get(id(module))
        if found is None:  # a module called again (a shared block) costs a lookup
            params = module._parameters.values() if not module._modules else module.parameters()
            found = list(dict.fromkeys(id(p) for p in params if p is not None))
            self._of_module[id(module)] = found
        return found

    def claim(self, node: str, ids: list[int], how: str | None = None) -> Claim:
        """Give ``node`` the parameters ``ids`` that nobody counted yet.

        ``how`` says how a parameter read outside a module is used (``"through mul"``); module
        calls pass ``None`` (their parameters need no note). A node whose parameters are all
        counted elsewhere shows them as shared; a node with some of each counts its own and
        names the others.
        """
        lazy, info, owner = self.lazy, self.info, self.owner
        if lazy and any(i in lazy for i in ids):
            return Claim(None, 0, (), None)  # a lazy module: the layer formula knows its size
        # Each known id once, in order: ``new`` nobody counted yet, ``old`` counted elsewhere;
        # one pass, with the counts of ``new`` (_count, _frozen, _trainable) taken on the way.
        new: list[int] = []
        old: list[int] = []
        count = frozen = trainable = 0
        for i in ids:
            held = info.get(i)
            if held is None:
                continue
            first = owner.get(i)
            if first is None:
                owner[i] = node
                new.append(i)
                count += held.numel
                if held.frozen:
                    frozen += held.numel
                else:
                    trainable += 1
            elif first != node and i not in old:
                old.append(i)
        notes: list[Note] = []
        if new and how is not None:
            notes.append(Note.of(NoteKind.PARAM_USED, names=self._names(new),
                                 count=self._count(new), how=how))
        if old and not new:  # all counted earlier: a repeated call or a fully tied layer
            owners = {owner[i] for i in old}
            if len(owners) == 1:
                return Claim(self._count(old), self._frozen(old), tuple(notes), owners.pop(),
                             self._trainable(old))
        if old:
            for first in dict.fromkeys(owner[i] for i in old):
                mine = [i for i in old if owner[i] == first]
                notes.append(Note.of(NoteKind.PARAM_TIED, names=self._names(mine),
                                     count=self._count(mine), owner=first))
        return Claim(count, frozen, tuple(notes), None, trainable)

    def _trainable(self, ids: list[int]) -> int:
        return sum(1 for i in ids if not self.info[i].frozen)

    def unclaimed(self) -> tuple[int, int, tuple[str, ...]]:
        """Parameters no node claimed: count, frozen count, names."""
        rest = [i for i in self.info if i not in self.owner]
        return self._count(rest), self._frozen(rest), self._names(rest)

    def _count(self, ids: list[int]) -> int:
        return sum(self.info[i].numel for i in ids)

    def _frozen(self, ids: list[int]) -> int:
        return sum(self.info[i].numel for i in ids if self.info[i].frozen)

    def _names(self, ids: list[int]) -> tuple[str, ...]:
        return tuple(self.info[i].name for i in ids)


def attribute(ledger: ParamLedger, nodes: list, uses: dict[str, list]) -> list:
    """Engine nodes with their parameters claimed in execution order.

    ``uses`` maps a node name to a list of (parameter ids, how): a module call's own weights
    (``how`` None) and parameters an op reads (``"through mul"``). Returns new ``Node`` values
    (they are frozen dataclasses).
    """
    out = []
    for node in nodes:
        used = uses.get(node.name)
        if not used:
            out.append(node)
            continue
        if len(used) == 1:  # most nodes: a module call's own weights
            claim = ledger.claim(node.name, *used[0])
            if claim.params is None:  # lazy: the layer formula counts it
                out.append(node)
                continue
            shared = claim.shared_with
            key = ledger.key.get(shared, shared) if shared else node.name
            ledger.key[node.name] = key
            out.append(node.counted(claim.params, claim.frozen, node.notes + claim.notes, key,
                                    claim.tensors))
            continue
        claims = [ledger.claim(node.name, ids, how) for ids, how in used]
        if any(c.params is None for c in claims):
            out.append(node)
            continue
        notes = tuple(n for c in claims for n in c.notes)
        ledger.key[node.name] = node.name
        out.append(node.counted(sum(c.params for c in claims), sum(c.frozen for c in claims),
                                node.notes + notes, node.name, sum(c.tensors for c in claims)))
    return out


def loose_notes(ledger: ParamLedger, unplaced: bool = False) -> tuple[int, int, list[Note]]:
    """Total and frozen count of the unclaimed parameters, and the note that names them."""
    count, frozen, names = ledger.unclaimed()
    if not names:
        return 0, 0, []
    kind = NoteKind.PARAMS_UNPLACED if unplaced else NoteKind.PARAMS_UNUSED
    return count, frozen, [Note.of(kind, names=names, count=count)]
