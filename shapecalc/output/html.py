"""HTML pages: ``show --format html`` (the table as a page) and ``shapecalc report`` (one
self-contained interactive page).

The report is a single file that works offline and from ``file://``: CSS, JavaScript, the data
and Graphviz's SVG are all inline, and a Content-Security-Policy forbids every request. The
script builds the details panel from an embedded JSON document with ``textContent`` only, so a
layer name is never markup. The CSS and JavaScript live in ``assets/`` as plain files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Sequence

from shapecalc.core.arithmetic import FieldRule
from shapecalc.core.image_fields import fields_in_image
from shapecalc.core.notes import NoteKind
from shapecalc.output.registry import DIAGNOSIS, renderer
from shapecalc.output import record_kind, record_notes, rf_text, shape_text, total_macs_text
from shapecalc.output.dot_runner import DOT_TIMEOUT
from shapecalc.output.columns import default_columns
from shapecalc.output.html_table import escape

ASSETS = Path(__file__).parent / "assets"
#: Nothing may be fetched: styles and scripts are inline, images are data: URLs or inline SVG.
CSP = ("default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
       "img-src data:")
#: The page's data columns (:mod:`.columns` keys): a page has room for the input shape too.
PAGE_COLUMNS = ("input_size", "output_size", "num_params", "mult_adds", "receptive_field", "notes")


def _asset(name: str) -> str:
    return (ASSETS / name).read_text(encoding="utf-8")


def table_html(analysis, depth: int | None = None, explain: bool = False,
               columns: Sequence[str] | None = PAGE_COLUMNS, checks: Iterable | None = None,
               table_id: str = "", ops: bool = False) -> str:
    """The page's table (``<table class="sc-table">``), drawn by the one HTML table writer
    (:func:`.html_table.table_html`): one row per layer and per block (blocks cut at ``depth``),
    each carrying ``data-row`` and ``data-name``; ``explain`` adds each layer's arithmetic under
    its description, in its cell. Styled by :func:`table_css`; the header says the model."""
    from shapecalc.output.html_table import table_html as write_table

    return write_table(analysis, depth, explain, columns, checks, table_class="sc-table",
                       table_id=table_id, caption=False, explain_rows=False, ops=ops)


def page_columns(analysis) -> tuple[str, ...]:
    """:data:`PAGE_COLUMNS`, without the receptive field when no input has spatial axes."""
    shown = default_columns(analysis)
    return tuple(c for c in PAGE_COLUMNS if c != "receptive_field" or c in shown)


def table_css() -> str:
    """The table's CSS: readable in light and dark themes (``prefers-color-scheme``), each layer
    kind in its palette colour."""
    from shapecalc.output.palette import page_css

    return _asset("table.css") + page_css()


def header_html(analysis) -> str:
    """Model, input → output, and the totals, as a ``<header>``."""
    from shapecalc.output.formats import footer_lines

    totals = "".join(f"<li>{escape(line)}</li>" for line in footer_lines(analysis))
    return (f'<header class="sc-header"><h1>{escape(analysis.model)}</h1>'
            f'<p class="sc-io">input {escape(shape_text(analysis.input_shape))} → output '
            f'{escape(shape_text(analysis.output_shape))} · {analysis.total_params:,} params · '
            f'{escape(total_macs_text(analysis, human=False))} MACs</p>{_notes_html(analysis)}'
            f'<ul class="sc-totals">{totals}</ul></header>')


def _notes_html(analysis) -> str:
    """The model-wide notes (hook fallback, a folded batch), as the text table's header says
    them; a folded batch is a finding, so it stands out (``sc-finding``)."""
    items = []
    for note in getattr(analysis, "notes", []) or []:
        finding = getattr(note, "kind", None) is NoteKind.BATCH_FOLD
        attrs = ' class="sc-finding"' if finding else ""
        items.append(f"<li{attrs}>{escape(str(note))}</li>")
    return f'<ul class="sc-notes">{"".join(items)}</ul>' if items else ""


def _page(title: str, css: str, body: str) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<link rel="icon" href="data:,">'
            f"<title>{escape(title)}</title><style>{css}</style></head>\n<body class=\"sc-root\">{body}"
            "</body></html>\n")


@renderer("html", summary="the table as an HTML page", suffixes=("html", "htm"), commands=("show",))
def to_html(analysis, depth: int | None = None, explain: bool = False,
            columns: Sequence[str] | None = None, checks: Iterable | None = None,
            ops: bool = False) -> str:
    """``show --format html``: header, totals and the table as one self-contained page;
    ``columns`` (default :data:`PAGE_COLUMNS`), ``checks`` (``--verify``) and ``ops`` as for
    the table."""
    body = header_html(analysis) + table_html(analysis, depth, explain,
                                              page_columns(analysis) if columns is None else columns,
                                              checks, ops=ops)
    return _page(f"{analysis.model} · shapecalc", table_css(), body)


# ---------------------------------------------------------------- the interactive report
def _rf_geometry(rf, inside) -> list[dict[str, Any]] | str | None:
    """Per axis, what the report draws for any output pixel: the theoretical field (first and
    last pixel of one period of outputs, and the shift per period) and the part inside the
    image for every output index (``null`` where it reads none). ``"unknown"`` where a layer
    on the way has no rule; ``None`` for a global field."""
    if rf is None:
        return None
    if isinstance(rf, FieldRule) or not isinstance(inside, tuple):
        return "unknown"
    return [{"size": a.size, "jump": float(a.jump), "lo": list(a.lo), "hi": list(a.hi),
             "shift": a.shift, "inside": [list(s) if s else None for s in spans]}
            for a, spans in zip(rf, inside)]


def report_data(analysis, graph_ids: dict[str, str] | None = None, ops: bool = False) -> dict[str, Any]:
    """What the report's script needs: per layer and block its shapes, costs, notes, the
    arithmetic (``explain``) and the receptive-field geometry; and graph node id → name."""
    records = list(analysis.records) + list(analysis.blocks.values())
    inside = fields_in_image(analysis)
    blocks = analysis.graph.blocks if analysis.graph is not None else {}
    layers = {}
    for rec in records:
        node = blocks[rec.name].output if rec.is_block and rec.name in blocks else rec.name
        layers[rec.name] = {
            "name": rec.name, "type": rec.type, "description": rec.description, "kind": record_kind(rec),
            "is_block": rec.is_block, "depth": rec.depth,
            "input_shapes": [list(s) for s in rec.input_shapes], "output_shape": list(rec.output_shape),
            "params": rec.params, "macs": rec.macs, "rf": _rf_geometry(rec.rf, inside.get(node)),
            "rf_text": rf_text(rec.rf), "notes": [str(n) for n in record_notes(rec)],
            "explain": [] if rec.is_block else rec.explain(),
        }
    return {"model": analysis.model, "input_shape": list(analysis.input_shape),
            "output_shape": list(analysis.output_shape), "layers": layers,
            "rows": [rec.name for rec in analysis.rows(ops=ops)], "graph_ids": graph_ids or {}}


def _script_json(data: Any) -> str:
    """JSON safe inside ``<script>``: no ``<`` at all, so no ``</script>`` or ``<!--``; ASCII, so
    any name (a lone surrogate from a spec file included) survives the UTF-8 file."""
    return json.dumps(data, ensure_ascii=True, separators=(",", ":")).replace("<", "\\u003c")


def _graph_section(analysis, rankdir: str, depth: int | None, expand: bool,
                   dot_timeout: float) -> tuple[str, dict]:
    from shapecalc.output.dot_runner import check_timeout, pipe
    from shapecalc.output.graph_build import build_graph

    check_timeout(dot_timeout)  # before the (possibly long) drawing is built
    digraph, ids = build_graph(analysis, rankdir, depth, expand)
    svg = pipe(digraph, "svg", dot_timeout).decode("utf-8")
    svg = svg[svg.index("<svg"):]  # drop the XML declaration and doctype: inline in HTML
    graph_ids = {node_id: name for node_id, name in ids.items() if node_id != "input"}
    return svg, graph_ids


@renderer("report", summary="one self-contained interactive HTML page", suffixes=("html", "htm"),
          commands=("report",))
def to_report(analysis, rankdir: str = "TB", depth: int | None = None, expand: bool = False,
              graph: bool = True, dot_timeout: float = DOT_TIMEOUT, memory: bool = True,
              ops: bool = False, diagnosis=None) -> str:
    """The report: header and totals, the verdict (when a ``diagnosis`` of the same inputs is
    given, as ``shapecalc report`` gives it), a filter box, the table, the Graphviz drawing
    (unless ``graph`` is false) and a details panel; clicking a row or a node shows that layer's
    arithmetic, notes and receptive field drawn to scale on the input grid. Graphviz's ``dot``
    is stopped after ``dot_timeout`` seconds (``render.dot_runner.GraphvizTimeout``); ``ops``
    adds table rows for an imported module's functional glue."""
    from shapecalc.output.diagnosis import report_section

    svg, graph_ids = (_graph_section(analysis, rankdir, depth, expand, dot_timeout) if graph
                      else ("", {}))
    data = _script_json(report_data(analysis, graph_ids, ops))
    graph_part = (f'<section class="sc-graph-box"><h2>Graph <button type="button" id="sc-fit">fit width'
                  f'</button></h2><div id="sc-graph">{svg}</div></section>' if graph else "")
    body = (
        header_html(analysis)
        + (report_section(diagnosis) if diagnosis is not None else "")
        + '<div class="sc-main"><section class="sc-table-box"><label class="sc-filter">Filter '
        '<input type="search" id="sc-filter" placeholder="name, layer, note…" autocomplete="off">'
        '</label><span id="sc-count"></span>'
        + table_html(analysis, columns=page_columns(analysis), table_id="sc-table", ops=ops)
        + '</section><aside id="sc-details" class="sc-details"><p class="sc-hint">Click a row or a '
        "graph node to see its arithmetic, notes and receptive field.</p></aside></div>"
        + graph_part
        + (_memory_section(analysis) if memory else "")
        + f'<script type="application/json" id="sc-data">{data}</script>'
        + f"<script>{_asset('report.js')}</script>"
    )
    return _page(f"{analysis.model} · shapecalc report", table_css() + _asset("report.css"), body)


@renderer("report", summary="the verdict and its verified fixes as a page, for a model that does not fit",
          suffixes=("html", "htm"), commands=("report",), subject=DIAGNOSIS)
def diagnosis_report(diagnosis) -> str:
    """``shapecalc report`` of a model that does not fit its input: there is no table to draw,
    so the page holds the model, its inputs and the verdict with the fixes (each verified
    through the whole model), worded as ``check`` words them."""
    from shapecalc.output.diagnosis import report_section

    body = (f'<header class="sc-header"><h1>{escape(diagnosis.model)}</h1>'
            f'<p class="sc-io">{escape(diagnosis.inputs_text())}</p></header>' + report_section(diagnosis))
    return _page(f"{diagnosis.model} · shapecalc report", table_css() + _asset("report.css"), body)


def _memory_section(analysis) -> str:
    """``shapecalc memory``'s figures at the analysed batch (Adam, float32, the default device)."""
    from shapecalc.output.memory import memory_html, view

    return memory_html(view(analysis))


__all__ = ["PAGE_COLUMNS", "diagnosis_report", "header_html", "page_columns", "report_data", "table_css", "table_html",
           "to_html", "to_report"]
