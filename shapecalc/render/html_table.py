"""The per-layer table as an HTML fragment: Jupyter's ``_repr_html_`` and any HTML page.

One ``<div>`` with its own scoped ``<style>``: the same rows, columns and totals as the text
table (cells come from :mod:`.columns`, rows from :func:`.table.table_model`). Text and
backgrounds inherit from the page, so it reads in light and dark themes alike; the only
colours are thin kind markers beside each layer, and the row rules are translucent grey.
"""

from __future__ import annotations

from typing import Iterable, Sequence

from ..renderers import renderer
from .columns import BY_KEY, DEFAULT_COLUMNS, cell, note_texts, parse_columns
from .table import table_model, torch_cell

#: Kind markers: mid-tone colours that stand out on white and on near-black alike.
KIND_COLOURS = {
    "conv": "#06b6d4", "pool": "#d946ef", "norm": "#eab308", "activation": "#22c55e",
    "linear": "#3b82f6", "reshape": "#a3a3a3", "merge": "#f97316", "dropout": "#737373",
    "block": "#8b5cf6",
}

STYLE = """<style>
.shapecalc-table{color:inherit;background:transparent;margin:4px 0}
.shapecalc-table table{border-collapse:collapse;color:inherit;background:transparent;
 font-family:var(--jp-code-font-family,ui-monospace,SFMono-Regular,Menlo,Consolas,monospace);
 font-size:12px}
.shapecalc-table caption{caption-side:top;text-align:left;font-weight:bold;padding:2px 0 6px}
.shapecalc-table th,.shapecalc-table td{padding:2px 10px 2px 4px;text-align:left;
 white-space:nowrap;color:inherit;border-bottom:1px solid rgba(127,127,127,.28)}
.shapecalc-table th{border-bottom:1px solid rgba(127,127,127,.6)}
.shapecalc-table .num{text-align:right;font-variant-numeric:tabular-nums}
.shapecalc-table .name{white-space:pre}
.shapecalc-table td.layer{border-left:3px solid transparent}
.shapecalc-table tr.block td.layer{font-weight:bold}
.shapecalc-table tr.expanded td{opacity:.6}
.shapecalc-table td.explain{white-space:pre;font-style:italic;opacity:.75;border-bottom:none}
.shapecalc-table td.notes{white-space:normal;min-width:12em}
.shapecalc-table ul{margin:6px 0 0;padding-left:1.2em;font-size:12px}
""" + "".join(f".shapecalc-table td.k-{kind}{{border-left-color:{colour}}}\n"
              for kind, colour in KIND_COLOURS.items()) + "</style>"


def escape(text: str) -> str:
    """HTML-escaped text; ``html`` is imported here, not at discovery (``show`` never needs it)."""
    from html import escape as html_escape

    return html_escape(text)


def table_html(analysis, depth: int | None = None, explain: bool = False,
               columns: Sequence[str] | None = None, checks: Iterable | None = None) -> str:
    """The ``<table>`` alone (caption, header, one ``<tr>`` per row, explain rows).

    ``columns`` are :mod:`.columns` keys (default: :data:`.columns.DEFAULT_COLUMNS`); HTML
    has room for every note, so notes stay in their column.
    """
    model = table_model(analysis, depth, explain, checks)
    keys = list(parse_columns(columns, "columns") if columns is not None else DEFAULT_COLUMNS)
    ctx = model.context()
    head = ['<th class="num">#</th>'] + (['<th>name</th>'] if model.has_name else [])
    head.append("<th>layer</th>")
    for key in keys:
        if key == "notes" and model.checks is not None:
            head.append("<th>torch</th>")
        col = BY_KEY[key]
        head.append(f'<th class="{"num" if col.right else ""}">{escape(col.title)}</th>')
    out = [f"<table><caption>{escape(model.title)}</caption>",
           "<thead><tr>" + "".join(head) + "</tr></thead>", "<tbody>"]
    span = len(head)
    for row in model.rows:
        rec = row.record
        kind = "block" if rec.is_block else (rec.layer.kind if rec.layer is not None else "other")
        classes = " ".join(c for c in ("block" if rec.is_block else "layer",
                                       "expanded" if row.row_style == "dim" else "") if c)
        cells = [f'<td class="num">{escape(row.index)}</td>']
        if model.has_name:
            cells.append(f'<td class="name">{escape(row.label)}</td>')
        description = rec.description + (" (collapsed)" if row.collapsed else "")
        cells.append(f'<td class="layer k-{kind}">{escape(description)}</td>')
        for key in keys:
            if key == "notes":
                if model.checks is not None:
                    cells.append(f"<td>{escape(torch_cell(model.checks.get(rec.name)))}</td>")
                cells.append(f'<td class="notes">{escape("; ".join(note_texts(rec)))}</td>')
                continue
            right = ' class="num"' if BY_KEY[key].right else ""
            cells.append(f"<td{right}>{escape(cell(key, rec, ctx))}</td>")
        out.append(f'<tr class="{classes}">' + "".join(cells) + "</tr>")
        if row.details:
            skip = 2 if model.has_name else 1
            out.append(f'<tr class="explain"><td colspan="{skip}"></td>'
                       f'<td class="explain" colspan="{span - skip}">'
                       f'{escape(chr(10).join(row.details))}</td></tr>')
    out.append("</tbody></table>")
    return "\n".join(out)


@renderer("html_table", summary="the table and totals as a styled HTML fragment, Jupyter's "
          "display (library only)")
def analysis_html(analysis, depth: int | None = None, explain: bool = False,
                  columns: Sequence[str] | None = None, checks: Iterable | None = None) -> str:
    """The table, then the totals as a list, in one styled ``<div>``: ``Analysis._repr_html_``."""
    from .formats import footer_lines

    totals = "".join(f"<li>{escape(line)}</li>" for line in footer_lines(analysis))
    return (f'<div class="shapecalc-table">{STYLE}\n'
            f"{table_html(analysis, depth, explain, columns, checks)}\n<ul>{totals}</ul></div>")


def diagnosis_html(diagnosis) -> str:
    """A :class:`~shapecalc.diagnose.Diagnosis` as a short verdict, the failing node and fixes."""
    from .notebook import diagnosis_lines

    lines = diagnosis_lines(diagnosis)
    mark = "✓" if diagnosis.fits else "✗"
    head = escape(lines[0].removeprefix(mark).strip())
    rows = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>"
                   for k, v in diagnosis_fields(diagnosis))
    fixes = "".join(f"<li><code>{escape(f)}</code></li>" for f in diagnosis.fixes)
    return (f'<div class="shapecalc-table shapecalc-diagnosis">{STYLE}\n'
            f'<table><caption>{mark} {head}</caption><tbody>{rows}</tbody></table>'
            + (f"<p>Fixes, each checked by re-running the engine:</p><ol>{fixes}</ol>" if fixes else "")
            + "</div>")


def diagnosis_fields(diagnosis) -> list[tuple[str, str]]:
    """(label, text) pairs shown under a diagnosis' headline, in reading order."""
    from . import shape_text

    inputs = diagnosis.inputs_text()  # "input 1×3×224×224" or "inputs left …, right …"
    fields = [("model", diagnosis.model), tuple(inputs.split(" ", 1))]
    if diagnosis.fits:
        fields.append(("output", shape_text(diagnosis.output_shape)))
        if diagnosis.dropping:
            fields.append(("drops pixels at", ", ".join(diagnosis.dropping)))
        return fields
    if diagnosis.node:
        fields.append(("at node", f"'{diagnosis.node}'  {diagnosis.layer or ''}".rstrip()))
    if diagnosis.expected:
        fields += [("expected", diagnosis.expected), ("got", diagnosis.got)]
    fields.append(("problem", diagnosis.problem))
    if getattr(diagnosis, "searched", ""):
        fields.append(("searched", diagnosis.searched))
    return fields


__all__ = ["KIND_COLOURS", "STYLE", "analysis_html", "diagnosis_fields", "diagnosis_html", "table_html"]
