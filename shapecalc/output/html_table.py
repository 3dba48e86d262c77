"""The per-layer table as HTML: the one writer of its rows and cells, for every HTML output.

``show --format html`` and ``shapecalc report`` (:mod:`.html`) and Jupyter's ``_repr_html_``
(:func:`analysis_html` here) all draw their table with :func:`table_html`, so a cell reads the
same in each (``tests/test_render_html_table.py`` compares them). Rows come from
:func:`.table.table_model` (tree labels, collapsed blocks, explain lines, torch checks), cell
texts from :mod:`.columns`, and all text goes through one :func:`escape`. What differs between
the outputs is only where they put the table: the page styles it with ``assets/table.css``, the
report's script finds each row by ``data-row``, and the notebook fragment carries its own scoped
style, which inherits text and background from the page so it reads in light and dark themes
alike (the only colours are thin kind markers beside each layer, and translucent grey rules).
"""

from __future__ import annotations

from typing import Iterable, Sequence

from shapecalc.output.registry import renderer
from shapecalc.output import BLOCK_KIND, macs_cell, record_kind, visible_text
from shapecalc.output.palette import BLOCK, PALETTE
from shapecalc.output.columns import BY_KEY, cell, default_columns, note_texts, parse_columns
from shapecalc.output.table_rows import row_description, table_model, torch_cell

#: Kind markers: the palette's mid-tone shades, which stand out on white and on near-black alike.
KIND_COLOURS = {**{kind: colour.marker for kind, colour in PALETTE.items()}, BLOCK_KIND: BLOCK.marker}

#: Every rule starts with the class twice and names the table: Jupyter styles output tables
#: with rules as specific as ``:not(.jp-RenderedMarkdown).jp-RenderedHTMLCommon td`` (JupyterLab,
#: Notebook 7: right-aligned cells) or ``.rendered_html td`` (classic Notebook), and these must
#: win wherever the page puts its own sheet (tests/test_notebook_css.py checks both).
_S = ".shapecalc-table.shapecalc-table"
STYLE = ("<style>\n" + f"""{_S}{{color:inherit;background:transparent;margin:4px 0}}
{_S} table{{border-collapse:collapse;color:inherit;background:transparent;margin:0;
 table-layout:auto;font-family:var(--jp-code-font-family,ui-monospace,SFMono-Regular,Menlo,Consolas,monospace);
 font-size:12px}}
{_S} caption{{caption-side:top;text-align:left;font-weight:bold;padding:2px 0 6px}}
{_S} table tr{{background:transparent}}
{_S} table th,{_S} table td{{padding:2px 10px 2px 4px;text-align:left;vertical-align:top;
 white-space:nowrap;color:inherit;border:none;border-bottom:1px solid rgba(127,127,127,.28)}}
{_S} table th{{border-bottom:1px solid rgba(127,127,127,.6)}}
{_S} table .num{{text-align:right;font-variant-numeric:tabular-nums}}
{_S} table .name{{white-space:pre}}
{_S} table td.layer{{border-left:3px solid transparent}}
{_S} table tr.sc-block td.layer{{font-weight:bold}}
{_S} table tr.sc-expanded td{{opacity:.6}}
{_S} table td.sc-explain{{white-space:pre;font-style:italic;opacity:.75;border-bottom:none}}
{_S} table td.notes{{white-space:normal;min-width:12em}}
{_S} ul{{margin:6px 0 0;padding-left:1.2em;font-size:12px}}
""" + "".join(f"{_S} table tr.sc-{kind} td.layer{{border-left-color:{colour}}}\n"
              for kind, colour in KIND_COLOURS.items()) + "</style>")


def escape(text: object) -> str:
    """Text as HTML: unprintable characters shown as in the graph (:func:`.visible_text`), then
    ``html.escape`` with quotes (safe in attributes too). ``html`` is imported here, not at
    discovery: ``show`` never needs it."""
    from html import escape as html_escape

    return html_escape(visible_text(text), quote=True)


def escape_lines(lines: Iterable[str], sep: str = "\n") -> str:
    """Several lines, each escaped (a line break is layout here, not a character to show)."""
    return sep.join(escape(line) for line in lines)


def _column_class(key: str) -> str:
    if BY_KEY[key].right:
        return "num"
    return {"input_size": "shape", "output_size": "shape", "notes": "notes"}.get(key, "text")


def _data_cell(key: str, rec, ctx) -> str:
    """One data cell's inner HTML: MACs read as ``1.08 G`` with the exact count on hover."""
    if key == "notes":
        return escape("; ".join(note_texts(rec)))
    if key == "mult_adds":
        return f'<span title="{macs_cell(rec.macs)}">{escape(macs_cell(rec.macs, human=True))}</span>'
    return escape(cell(key, rec, ctx))


def table_html(analysis, depth: int | None = None, explain: bool = False,
               columns: Sequence[str] | None = None, checks: Iterable | None = None, *,
               table_class: str = "", table_id: str = "", caption: bool = True,
               explain_rows: bool = True, ops: bool = False) -> str:
    """The ``<table>``: optional caption, header, one ``<tr>`` per row (blocks cut at ``depth``).

    ``columns`` are :mod:`.columns` keys (default: :data:`.columns.DEFAULT_COLUMNS`); HTML has
    room for every note, so notes stay in their column; ``checks`` (torch verification) add a
    ``torch`` column before the notes. Every row is ``<tr class="sc-row sc-KIND" data-row=N
    data-name=NAME>``: N is its place in ``analysis.rows(depth)``, which a script maps back to
    the exact name (an HTML parser may alter control characters in ``data-name``); expanded
    blocks (their children carry the numbers) add ``sc-expanded``. ``explain`` puts each layer's
    arithmetic in a row of its own under it (``explain_rows``), or in a ``<pre>`` inside its
    layer cell. ``ops`` adds the rows of an imported module's functional glue.
    """
    model = table_model(analysis, depth, explain, checks, ops)
    keys = list(parse_columns(columns, "columns") if columns is not None else default_columns(analysis))
    ctx = model.context()
    # (title, CSS class, key): the identity columns first, then the data columns.
    heads = [("#", "num", "#")] + ([("name", "name", "name")] if model.has_name else [])
    heads.append(("layer", "layer", "layer"))
    for key in keys:
        if key == "notes" and model.checks is not None:
            heads.append(("torch", "text", "torch"))
        heads.append((BY_KEY[key].title, _column_class(key), key))
    if model.checks is not None and "notes" not in keys:
        heads.append(("torch", "text", "torch"))
    attrs = (f' id="{escape(table_id)}"' if table_id else "") + \
        (f' class="{escape(table_class)}"' if table_class else "")
    out = [f"<table{attrs}>"]
    if caption:
        out.append(f"<caption>{escape_lines(model.title.split(chr(10)), '<br>')}</caption>")
    out.append("<thead><tr>" + "".join(f'<th class="{cls}">{escape(title)}</th>'
                                       for title, cls, _ in heads) + "</tr></thead>")
    out.append("<tbody>")
    for position, row in enumerate(model.rows):
        rec = row.record
        layer = escape(row_description(row))
        if row.details and not explain_rows:
            layer += f'<pre class="sc-explain">{escape_lines(row.details)}</pre>'
        cells = []
        for _, cls, key in heads:
            if key == "#":
                text = escape(row.index)
            elif key == "name":
                text = escape(row.label)
            elif key == "layer":
                text = layer
            elif key == "torch":
                text = escape(torch_cell(model.checks.get(rec.name)))
            else:
                text = _data_cell(key, rec, ctx)
            cells.append(f'<td class="{cls}">{text}</td>')
        classes = f"sc-row sc-{record_kind(rec)}" + (" sc-expanded" if row.row_style == "dim" else "")
        out.append(f'<tr class="{classes}" data-row="{position}" data-name="{escape(rec.name)}">'
                   + "".join(cells) + "</tr>")
        if row.details and explain_rows:
            skip = 2 if model.has_name else 1
            out.append(f'<tr class="sc-explain-row"><td colspan="{skip}"></td>'
                       f'<td class="sc-explain" colspan="{len(heads) - skip}">'
                       f"{escape_lines(row.details)}</td></tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


@renderer("html_table", summary="the table and totals as a styled HTML fragment, Jupyter's "
          "display (library only)")
def analysis_html(analysis, depth: int | None = None, explain: bool = False,
                  columns: Sequence[str] | None = None, checks: Iterable | None = None) -> str:
    """The table, then the totals as a list, in one styled ``<div>``: ``Analysis._repr_html_``."""
    from shapecalc.output.formats import footer_lines

    totals = "".join(f"<li>{escape(line)}</li>" for line in footer_lines(analysis))
    return (f'<div class="shapecalc-table">{STYLE}\n'
            f"{table_html(analysis, depth, explain, columns, checks)}\n<ul>{totals}</ul></div>")


__all__ = ["KIND_COLOURS", "STYLE", "analysis_html", "escape", "escape_lines", "table_html"]
