"""What ``shapecalc layer`` prints: the worked arithmetic line by line (each with a style), the
notes on padding and unread pixels, the paddings that reach ``--target``, or one JSON object.

The numbers come from :mod:`.layer`, which asks the real layer object; this module only words
them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shapecalc.cli.layer import Axis, Query

#: At most this many paddings are listed one by one; a longer run is printed as a range.
LISTED = 8


def report_lines(q: Query, axes: list[Axis]) -> list[tuple[str, str]]:
    """The text, line by line, each with a style name (``""``, ``result``, ``note``, ``dim``)."""
    lines: list[tuple[str, str]] = []
    seen: dict[tuple, str] = {}
    for a in axes:
        w = a.window
        key = (a.n, w)
        prefix = f"{a.name}: " if a.name else ""
        if key in seen:
            lines.append((f"{prefix}same as {seen[key]}", "dim"))
            continue
        seen[key] = a.name
        lines.append((f"{prefix}{q.op}  n = {a.n:,}, k = {w.k:,}, s = {w.s:,}, p = {w.p:,}, d = {w.d:,}"
                      + (f", output_padding = {w.output_padding:,}" if q.op == "conv-transpose" else "")
                      + (", ceil_mode" if q.ceil_mode else ""), "dim"))
        if a.solutions is not None:
            lines.extend(_target_lines(a, q.module))
        lines.extend((("   " if prefix else "") + line, "") for line in a.explain)
    lines.append((f"output: {'x'.join(_count(a.output) for a in axes)}", "result"))
    lines.extend((note, "note") for note in _notes(q, axes))
    return lines


def _count(x: int) -> str:
    """A number as every line prints one: with thousands separators (``21,125``)."""
    return f"{x:,}"


def _target_lines(a: Axis, module: str) -> list[tuple[str, str]]:
    sols = a.solutions or range(0)
    last = sols.stop - 1  # never len(): a range of 10^20 paddings has no len()
    if last - sols.start < LISTED:
        out = [(f"   total paddings p giving {a.output:,}: {', '.join(map(_count, sols))}", "")]
    else:
        out = [(f"   total paddings p from {_count(sols.start)} to {_count(last)} all give {a.output:,}", "")]
    first_even = sols.start + sols.start % 2
    last_even = last - last % 2
    if first_even > last:
        p = sols.start
        out.append((f"   none is symmetric, so torch's padding= cannot give it; pad first with "
                    f"nn.ZeroPad2d: {p // 2:,} before, {p - p // 2:,} after (p = {p:,})", "note"))
    elif (last_even - first_even) // 2 < LISTED:
        out.append(("   torch-expressible (symmetric): "
                    + ", ".join(f"p = {p} → {module}(padding={p // 2})"
                                for p in range(first_even, last_even + 1, 2)), "result"))
    else:
        out.append((f"   torch-expressible (symmetric): every even p from {_count(first_even)} to "
                    f"{_count(last_even)} → {module}(padding={_count(first_even // 2)} … "
                    f"{_count(last_even // 2)})", "result"))
    return out


def _notes(q: Query, axes: list[Axis]) -> list[str]:
    notes = []
    module = q.module
    ps = sorted({a.window.p for a in axes})
    if q.same:
        sides = sorted({(a.window.p_left, a.window.p - a.window.p_left) for a in axes})
        notes.append("p is the TOTAL padding of both sides; padding='same' pads "
                     + ", ".join(f"{l} before and {r} after" for l, r in sides)
                     + " (torch puts an odd pixel after).")
    elif q.op == "conv-transpose":
        notes.append("p is the TOTAL padding removed from both sides: "
                     f"{module}(padding=1) is p = 2.")
    elif all(p % 2 == 0 for p in ps):
        example = ps[-1] // 2 or 1
        notes.append(f"p is the TOTAL padding of both sides: {module}(padding={example}) is "
                     f"p = {2 * example}.")
    else:
        odd = [p for p in ps if p % 2]
        notes.append(f"p is the TOTAL padding of both sides; p = {odd[0]} is odd, which torch's integer "
                     f"padding= cannot express: pad first ({odd[0] // 2} before, "
                     f"{odd[0] - odd[0] // 2} after) with nn.ZeroPad2d or F.pad.")
    for a in axes:
        where = f" (axis {a.name})" if a.name else ""
        w = a.window
        if a.dropped:
            pad_right = w.p - w.p_left
            real = max(0, a.dropped - pad_right)
            if real == a.dropped:
                of_pad = ""
            elif a.dropped == 1:
                of_pad = "; it is padding, so no input pixel is lost"
            else:
                of_pad = f"; {a.dropped - real:,} of them padding"
            rows, verb = ("row/column", "is") if a.dropped == 1 else ("rows/columns", "are")
            notes.append(f"{a.dropped:,} {rows} at the bottom/right {verb} never covered by a "
                         f"window{where}: {a.dropped_explain}{of_pad}.")
        if q.op != "conv-transpose" and w.s > w.span:
            notes.append(f"stride {w.s:,} > kernel span {w.span:,}{where}: {w.s - w.span:,} of every {w.s:,} "
                         "rows/columns fall between windows and are never read.")
    return notes


def _range_json(found: range, step: int = 1) -> dict[str, int] | None:
    return {"from": found.start, "to": found[-1], "step": step} if found else None


def to_json(q: Query, axes: list[Axis], notes: list[str]) -> str:
    import json

    data: dict[str, Any] = {
        "op": q.op,
        "input": [a.n for a in axes],
        "kernel": [a.window.k for a in axes],
        "stride": [a.window.s for a in axes],
        "padding_total": [a.window.p for a in axes],
        "padding_per_side": [a.window.p // 2 if a.window.p % 2 == 0 else None for a in axes],
        "dilation": [a.window.d for a in axes],
        "output": [a.output for a in axes],
        "dropped": [a.dropped for a in axes],
        "explain": [a.explain for a in axes],
        "notes": notes,
        "module": q.module,
    }
    if q.op == "conv-transpose":
        data["output_padding"] = [a.window.output_padding for a in axes]
    if q.op in ("maxpool", "avgpool"):
        data["ceil_mode"] = q.ceil_mode
    if axes[0].solutions is not None:
        data["solutions"] = []
        for a in axes:
            sols = a.solutions or range(0)
            even = range(sols.start + sols.start % 2, sols.stop, 2)
            data["solutions"].append({"axis": a.name or None, "paddings": _range_json(sols),
                                      "symmetric": _range_json(even, 2)})
    return json.dumps(data, ensure_ascii=False)


__all__ = ["LISTED", "report_lines", "to_json"]
