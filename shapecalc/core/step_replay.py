"""Replaying a training step (or an inference forward) in execution order, freeing memory as
PyTorch does, to find its peak. :mod:`shapecalc.core.memory` builds the :class:`Timeline`.

* forward: a storage lives from the layer that makes it until its last reader ran, or, when a
  layer keeps it for backward, until the backward of the earliest layer keeping it; the batch
  lives through the step, the model's outputs until backward starts;
* backward, in reverse order: a layer's output gradient and its inputs' new gradients are alive
  together (a view's input gradient is a view of its output's); parameter gradients appear as
  their layer's backward runs, and stay;
* optimizer step: parameters, gradients and state, plus the update's temporaries.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Step:
    """One layer as the replay sees it: storages by index in :attr:`Timeline.sizes`."""

    name: str
    creates: tuple[int, ...]  # its output (unless a view) and the new tensors it keeps
    reads: tuple[int, ...]  # its inputs' storages
    output: int
    #: per input wanting a gradient: (its storage, the gradient's bytes; 0 for a view's input)
    input_grads: tuple[tuple[int, int], ...]
    records: bool  # autograd runs a backward for it
    param_grads: int  # bytes of the parameter gradients its backward makes


@dataclass
class Timeline:
    sizes: list[int] = field(default_factory=list)  # storage → bytes
    steps: list[Step] = field(default_factory=list)
    inputs: tuple[int, ...] = ()
    outputs: frozenset[int] = frozenset()
    keepers: dict[int, list[int]] = field(default_factory=dict)  # storage → steps keeping it

    def storage(self, nbytes: int) -> int:
        self.sizes.append(nbytes)
        return len(self.sizes) - 1

    def _last_reads(self) -> dict[int, int]:
        last: dict[int, int] = {}
        for i, step in enumerate(self.steps):
            for s in step.reads:
                last[s] = i
        for s in self.outputs:
            last[s] = len(self.steps)
        return last

    def inference_peak(self) -> int:
        """Activations alive at once without autograd (for a chain, one layer's input and
        output), the batch and the outputs throughout."""
        last = self._last_reads()
        alive = {s: self.sizes[s] for s in self.inputs}
        peak = sum(alive.values())
        for i, step in enumerate(self.steps):
            alive.update((s, self.sizes[s]) for s in step.creates)
            peak = max(peak, sum(alive.values()))
            for s in step.reads + step.creates:
                if last.get(s, -1) <= i and s not in self.outputs and s not in self.inputs:
                    alive.pop(s, None)
        return peak

    def training_peak(self, persistent: int, gradients: int, optimizer_step: int) -> tuple[int, str]:
        """The peak of one step over ``persistent`` bytes (parameters and optimizer state),
        ``gradients`` bytes of them at the update and ``optimizer_step`` bytes of its
        temporaries; and where it falls."""
        last = self._last_reads()
        release = {s: min(held) for s, held in self.keepers.items()}
        alive = {s: self.sizes[s] for s in self.inputs}
        peak, where = persistent + sum(alive.values()), "forward"
        for i, step in enumerate(self.steps):
            alive.update((s, self.sizes[s]) for s in step.creates)
            now = persistent + sum(alive.values())
            if now > peak:
                peak, where = now, "forward"
            for s in step.reads + step.creates:
                if (last.get(s, -1) <= i and s not in release and s not in self.outputs
                        and s not in self.inputs):
                    alive.pop(s, None)
        pending = {s: self.sizes[s] for s in self.outputs if s in alive}  # the loss's gradients
        for s in self.outputs:
            if s not in release:
                alive.pop(s, None)  # the loss has read them
        param_grads = 0
        for i in range(len(self.steps) - 1, -1, -1):
            step = self.steps[i]
            if not step.records:
                continue
            param_grads += step.param_grads
            for s, size in step.input_grads:
                pending.setdefault(s, size)
            now = persistent + sum(alive.values()) + sum(pending.values()) + param_grads
            if now > peak:
                peak, where = now, f"backward of {step.name}"
            if step.output not in step.reads:
                pending.pop(step.output, None)
            for s, first in release.items():
                if first == i:
                    alive.pop(s, None)
        now = persistent + gradients + optimizer_step + sum(self.sizes[s] for s in self.inputs)
        if now > peak:
            peak, where = now, "optimizer step"
        return peak, where


__all__ = ["Step", "Timeline"]
