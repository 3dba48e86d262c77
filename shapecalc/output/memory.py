"""``shapecalc memory`` rendered: the per-layer table, the totals with their assumptions, what
dominates in plain words, the JSON document, an HTML section and the roofline as SVG.

The figures come from :mod:`shapecalc.core.memory` and :mod:`shapecalc.core.roofline`; this
module only words and draws them. Unknown figures are shown as ``?`` (``null`` in JSON).
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from math import log10
from typing import TYPE_CHECKING, Any

from shapecalc.core.registry import MEMORY, renderer

if TYPE_CHECKING:
    from shapecalc.core.analysis import Analysis
    from shapecalc.core.memory import MemoryReport
    from shapecalc.core.roofline import Roofline


@dataclass(frozen=True)
class MemoryView:
    """A model's training-step memory and roofline; displays as a table (text and Jupyter).
    ``at_one``: the roofline at batch 1 too, when the batch is another (what dominates compares)."""

    analysis: Analysis
    memory: MemoryReport
    roofline: Roofline
    at_one: Roofline | None = None

    def to_dict(self) -> dict[str, Any]:
        return memory_dict(self)

    def text(self) -> str:
        return memory_text(self)

    def svg(self) -> str:
        return roofline_svg(self.roofline)

    def dominates(self) -> list[str]:
        return dominates(self)

    def __str__(self) -> str:
        return self.text()

    def _repr_html_(self) -> str:
        return memory_html(self)


def view(analysis: Analysis, batch: int | None = None, optimizer: str = "adam",
         dtype: str | None = None, amp: bool = False, mode: str = "train", device: str | None = None,
         peak_flops: float | None = None, bandwidth: float | None = None) -> MemoryView:
    """The memory and roofline of ``analysis`` (arguments as :meth:`Analysis.memory`; ``device``
    defaults to :data:`~shapecalc.core.roofline.DEFAULT_DEVICE`; ``peak_flops`` in FLOP/s for
    the step's element type and ``bandwidth`` in bytes/s override the device's)."""
    from shapecalc.core import memory as core_memory
    from shapecalc.core import roofline as core_roofline

    base = core_roofline.device(device or core_roofline.DEFAULT_DEVICE)
    kind = dtype if dtype is not None else (analysis.dtype if analysis.dtype in core_memory.TRAIN_DTYPES
                                            else "float32")
    setup = core_memory.settings(kind, amp, optimizer, mode, base.cuda)
    batched = core_memory.at_batch(analysis, batch)
    report = core_memory.estimate(batched, setup, batched.saved_measure, base.name)
    dev = core_roofline.custom(base, peak_flops, bandwidth, "bfloat16" if amp else kind)
    return _with_batch_one(batched, report, dev, setup)


def _with_batch_one(analysis: Analysis, report: MemoryReport, dev, setup) -> MemoryView:
    from shapecalc.core import memory as core_memory
    from shapecalc.core import roofline as core_roofline

    at_one = None
    if report.batch != 1 and analysis.graph is not None:
        try:
            one = core_memory.at_batch(analysis, 1)
        except Exception:  # a graph recorded at one batch: no comparison, not a failure
            one = None
        if one is not None:
            at_one = core_roofline.roofline(one, core_memory.estimate(one, setup), dev)
    return MemoryView(analysis, report, core_roofline.roofline(analysis, report, dev), at_one)


def of_report(report: MemoryReport) -> MemoryView:
    """The view of an ``Analysis.memory(...)`` result, on the device it was computed for."""
    from shapecalc.core import memory as core_memory
    from shapecalc.core import roofline as core_roofline

    setup = core_memory.Settings(report.dtype, report.amp, report.optimizer,
                                 report.mode == "train", report.cuda)
    return _with_batch_one(report.analysis, report, core_roofline.device(report.device), setup)


@renderer("text", summary="the table, totals, what dominates, assumptions", subject=MEMORY)
def report_text(report: MemoryReport) -> str:
    return memory_text(of_report(report))


@renderer("html", summary="an HTML section with the roofline plot", subject=MEMORY)
def report_html(report: MemoryReport) -> str:
    return memory_html(of_report(report))


@renderer("svg", summary="the roofline plot", subject=MEMORY)
def report_svg(report: MemoryReport) -> str:
    return roofline_svg(of_report(report).roofline)


def size(n: int | None) -> str:
    """Bytes in binary units: ``1.5 MiB``; ``?`` when unknown."""
    if n is None:
        return "?"
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n} B"


def seconds(s: float | None) -> str:
    if s is None:
        return "?"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if s >= scale:
            return f"{s / scale:.3g} {unit}"
    return f"{s * 1e9:.3g} ns"


def memory_dict(view: MemoryView) -> dict[str, Any]:
    out = view.memory.to_dict()
    out["model"] = view.analysis.model
    out["unknown_saved"] = list(view.memory.unknown)
    roof = view.roofline.to_dict()
    for layer, r in zip(out["layers"], roof.pop("layers")):
        layer["roofline"] = {k: v for k, v in r.items() if k != "name"}
    out["roofline"] = roof
    out["dominates"] = view.dominates()
    return out


def _rows(view: MemoryView) -> list[list[str]]:
    rows = []
    for mem, roof, rec in zip(view.memory.layers, view.roofline.layers, view.analysis.records):
        rows.append([mem.name, rec.type, size(mem.params), size(mem.grads), size(mem.optimizer),
                     size(mem.saved), "?" if roof.intensity is None else f"{roof.intensity:.3g}",
                     roof.bound or "?", seconds(roof.seconds)])
    return rows


HEADERS = ["layer", "type", "params", "grads", "optimizer", "saved", "FLOP/B", "bound", "time"]


def memory_text(view: MemoryView) -> str:
    m, r = view.memory, view.roofline
    rows = _rows(view)
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h)
              for i, h in enumerate(HEADERS)]
    line = lambda cells: "  ".join(c.ljust(w) if i < 2 else c.rjust(w)  # noqa: E731
                                   for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
    amp = " with bf16 autocast" if m.amp else ""
    out = [f"{view.analysis.model}: batch {m.batch}, {m.dtype}{amp}, {m.optimizer.value}, "
           f"{m.mode} mode, on {r.device.label}", "", line(HEADERS),
           line(["-" * w for w in widths])]
    out += [line(row) for row in rows]
    out += ["", f"parameters         {size(m.parameters)}",
            f"gradients          {size(m.gradients)}",
            f"optimizer state    {size(m.optimizer_state)}",
            f"saved activations  {size(m.saved_activations)}",
            f"peak, training     {size(m.peak_train)}"
            + (f"  (reached in the {m.peak_train_at})" if m.peak_train_at else ""),
            f"peak, inference    {size(m.peak_eval)}  (parameters + the activations alive at once)",
            f"forward time       {seconds(r.forward_seconds)}   training step {seconds(r.train_seconds)}"
            f"   (roofline lower bound)"]
    if m.unknown:
        out.append(f"unknown saved tensors at {len(m.unknown)} node(s): {', '.join(m.unknown[:5])}"
                   + (" …" if len(m.unknown) > 5 else ""))
    out += ["", "What dominates:"] + [f"  - {s}" for s in view.dominates()]
    out += ["", "Assumptions:"] + [f"  - {a}" for a in m.assumptions]
    return "\n".join(out) + "\n"


def _share(part: float, whole: float) -> str:
    return f"{100 * part / whole:.0f} %" if whole else "?"


def dominates(view: MemoryView) -> list[str]:
    """Plain sentences: where the parameters, the compute, the saved memory and the time go."""
    m, r, recs = view.memory, view.roofline, view.analysis.records
    lines: list[str] = []
    total_params = sum(x.params for x in m.layers)
    if total_params:
        top = max(m.layers, key=lambda x: x.params)
        rec = next(x for x in recs if x.name == top.name)
        lines.append(f"parameters: {top.name} ({rec.type}) holds {_share(top.params, total_params)}"
                     f" of the weights ({size(top.params)} of {size(total_params)})")
    known = [(x.flops, x.name) for x in r.layers if x.flops is not None]
    flops = sum(f for f, _ in known)
    if flops:
        types = {rec.name: rec.type for rec in recs}
        ranked = sorted(known, key=lambda fn: -fn[0])[:3]
        names = ", ".join(f"{n} ({types[n]}) {_share(f, flops)}" for f, n in ranked)
        lines.append(f"compute: {names} of the FLOPs ({len(known)} layers counted"
                     + (f"; {len(r.layers) - len(known)} with unknown MACs" if len(known) < len(r.layers) else "")
                     + ")")
        by_kind: dict[str, int] = {}
        for rec, roof in zip(recs, r.layers):
            if roof.flops:
                kind = str(rec.layer.kind) if rec.layer is not None else "other"
                by_kind[kind] = by_kind.get(kind, 0) + roof.flops
        kind, most = max(by_kind.items(), key=lambda kv: kv[1])
        lines.append(f"compute by kind: {kind} layers do {_share(most, flops)} of the FLOPs")
    if m.saved_activations:
        top = max(m.layers, key=lambda x: x.saved or 0)
        lines.append(f"saved activations: {size(m.saved_activations)}, "
                     f"{_share(m.saved_activations, m.peak_train or 0)} of the training peak; "
                     f"the largest share is kept at {top.name} ({size(top.saved)})")
    if m.peak_train:
        state = m.parameters + m.gradients + (m.optimizer_state or 0)
        lines.append(f"training peak: weights, gradients and optimizer state are "
                     f"{_share(state, m.peak_train)} of it, activations the rest")
    for batch, roof in ((1, view.at_one), (m.batch, r)):
        if roof is None:
            continue
        lines.append(_bandwidth(roof, batch, recs))
    return lines


def _bandwidth(roof: Roofline, batch: int, recs) -> str:
    """Which layers are memory-bound at this batch, and what share of the time they take."""
    timed = [(x, rec) for x, rec in zip(roof.layers, recs) if x.seconds is not None]
    if not timed:
        return f"bandwidth: unknown on {roof.device.label} in {roof.dtype} (no peak or no MACs)"
    bound = [(x, rec) for x, rec in timed if x.bound == "memory"]
    total = sum(x.seconds for x, _ in timed)
    working = [f"{x.name} ({rec.type})" for x, rec in bound if x.flops and x.flops > 0.01 * max(
        y.flops or 0 for y, _ in timed)]
    # Not "layers with weights": attention's matmuls (QKᵀ, A·V) do real work and hold none.
    named = (": those among them doing real work (≥ 1 % of the busiest layer's FLOPs) are "
             + ", ".join(working[:6])
             + (" …" if len(working) > 6 else "")) if working else ""
    return (f"bandwidth at batch {batch}: {len(bound)} of {len(timed)} layers are memory-bound on "
            f"{roof.device.label} (ridge {roof.ridge:.3g} FLOP/byte), "
            f"{_share(sum(x.seconds for x, _ in bound), total)} of the forward time{named}")


def memory_html(view: MemoryView) -> str:
    """An HTML section: totals, the table, what dominates and the roofline plot."""
    e = html.escape
    m = view.memory
    head = "".join(f"<th>{e(h)}</th>" for h in HEADERS)
    body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in _rows(view))
    totals = "".join(f"<li>{e(k)}: {e(v)}</li>" for k, v in (
        ("parameters", size(m.parameters)), ("gradients", size(m.gradients)),
        ("optimizer state", size(m.optimizer_state)), ("saved activations", size(m.saved_activations)),
        ("peak, training", size(m.peak_train)), ("peak, inference", size(m.peak_eval))))
    words = "".join(f"<li>{e(s)}</li>" for s in view.dominates())
    assumptions = "".join(f"<li>{e(a)}</li>" for a in m.assumptions)
    return (f'<section class="shapecalc-memory"><h2>Training memory and roofline</h2>'
            f"<p>batch {m.batch}, {e(m.dtype)}{' (bf16 autocast)' if m.amp else ''}, "
            f"{e(m.optimizer.value)}, {e(view.roofline.device.label)}</p><ul>{totals}</ul>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
            f"<h3>What dominates</h3><ul>{words}</ul>{roofline_svg(view.roofline)}"
            f"<h3>Assumptions</h3><ul>{assumptions}</ul></section>")


def roofline_svg(roof: Roofline, width: int = 560, height: int = 360) -> str:
    """The roofline (log-log: FLOP/byte → FLOP/s) with one dot per layer of known, non-zero
    FLOPs (a layer that only moves data has intensity 0, off a log axis)."""
    peak = roof.device.peak(roof.dtype)
    pad = 50
    points = [(x.intensity, x.flops / x.seconds, x) for x in roof.layers
              if x.intensity and x.seconds and x.flops]
    xs = [p[0] for p in points] + ([roof.ridge] if roof.ridge else [])
    lo_x = 10 ** (int(log10(min(xs))) - 1) if xs else 0.01
    hi_x = 10 ** (int(log10(max(xs))) + 2) if xs else 1000
    top = peak or max((p[1] for p in points), default=1.0)
    lo_y, hi_y = top / 1e5, top * 3

    def px(v: float) -> float:
        return pad + (log10(v) - log10(lo_x)) / (log10(hi_x) - log10(lo_x)) * (width - 2 * pad)

    def py(v: float) -> float:
        v = max(v, lo_y)
        return height - pad - (log10(v) - log10(lo_y)) / (log10(hi_y) - log10(lo_y)) * (height - 2 * pad)

    e = html.escape
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="roofline">',
             f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<text x="{width / 2}" y="18" text-anchor="middle" font-size="13">'
             f'Roofline: {e(roof.device.label)}, {e(roof.dtype)}</text>',
             f'<text x="{width / 2}" y="{height - 10}" text-anchor="middle" font-size="11">'
             f'arithmetic intensity (FLOP/byte, log)</text>',
             f'<text x="14" y="{height / 2}" font-size="11" transform="rotate(-90 14 {height / 2})" '
             f'text-anchor="middle">FLOP/s (log)</text>']
    if peak is not None:
        ridge = peak / roof.device.bandwidth
        x0 = lo_x
        parts.append(f'<polyline fill="none" stroke="#c33" stroke-width="2" points="'
                     f'{px(x0):.1f},{py(x0 * roof.device.bandwidth):.1f} {px(ridge):.1f},{py(peak):.1f} '
                     f'{px(hi_x):.1f},{py(peak):.1f}"/>')
    for intensity, rate, layer in points:
        colour = "#36c" if layer.bound == "compute" else "#e90"
        parts.append(f'<circle cx="{px(intensity):.1f}" cy="{py(rate):.1f}" r="3.5" '
                     f'fill="{colour}" fill-opacity="0.8"><title>{e(layer.name)}: '
                     f'{intensity:.3g} FLOP/B, {layer.bound}-bound</title></circle>')
    parts.append("</svg>")
    return "".join(parts)


__all__ = ["MemoryView", "view", "dominates", "memory_dict", "memory_html", "memory_text", "roofline_svg",
           "size"]
