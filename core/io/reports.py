"""One writer for every report LandFusion produces: HTML, CSV and JSON, written atomically.

- :class:`HtmlReport` builds a self-contained page (one stylesheet, no network, no JavaScript):
  headings, paragraphs, key/value tables, data tables and figures. Text is always escaped; only
  markup built here (or passed explicitly as :class:`Markup`) goes in unescaped.
- :func:`bar_chart`, :func:`line_chart` and :func:`heatmap` draw inline SVG figures with
  readable font sizes; captions are HTML ``<figcaption>`` elements below the figure, so they wrap
  with the page and are never cut off.
- :func:`csv_text` writes rows as CSV with every text cell neutralised against formula injection
  (OWASP: a cell starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return gets a leading
  apostrophe; numbers are left as they are).
- :func:`json_text` writes JSON with NaN/inf as null and numpy scalars as numbers.
- :func:`write_report_files` writes several report files atomically: all of them or none.
"""

from __future__ import annotations

import csv
import io
import json
import math
import numbers
from html import escape
from typing import Dict, Iterable, List, Optional, Sequence

from .outputs import atomic_output, remove_outputs

#: Shown for an undefined value (0 / 0) in tables.
NA = "n/a"

CSS = """
body{font-family:"Helvetica Neue",Arial,sans-serif;color:#222;margin:24px;max-width:1100px;
line-height:1.4}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:8px 0 4px 0;font-size:0.92em}
th,td{border:1px solid #bbb;padding:3px 8px;text-align:right}
th{background:#f0f0f0}td.l,th.l{text-align:left}
td.diag{font-weight:bold;background:#eef6ee}tr.primary td{font-weight:bold}
caption{caption-side:top;text-align:left;font-weight:bold;padding:4px 0}
.notes{background:#fff6e0;border:1px solid #e0c070;padding:6px 12px;margin:12px 0}
.meta td{border:none;text-align:left;padding:1px 10px 1px 0}
.small{font-size:0.85em;color:#555}
.swatch{display:inline-block;width:0.9em;height:0.9em;border:1px solid #888;margin-right:4px;
vertical-align:middle}
figure{margin:12px 0}figcaption{font-size:0.9em;color:#444;max-width:760px}
svg text{font-family:Arial,sans-serif}
"""

#: Font sizes of the SVG figures, in pixels.
FONT = 13
SMALL_FONT = 12
#: Approximate width of one character at :data:`FONT`, for sizing labels.
CHAR_WIDTH = 7.5


class Markup(str):
    """Text that is already HTML (built by this module); written without escaping."""


def html_text(value) -> str:
    """Returns ``value`` as HTML: :class:`Markup` as it is, anything else escaped."""
    if isinstance(value, Markup):
        return str(value)
    return escape("" if value is None else str(value))


def fmt_value(value: Optional[float], digits: int = 3) -> str:
    """Formats a number with ``digits`` decimals ('0.946'), or 'n/a' when undefined."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return NA
    return f"{value:.{digits}f}"


def swatch(name: str, colour: str) -> Markup:
    """A colour swatch followed by the (escaped) name."""
    return Markup(f'<span class="swatch" style="background:{escape(colour)}"></span>'
                  f'{escape(name)}')


class HtmlReport:
    """Builds one self-contained HTML page, top to bottom.

    Example::

        page = HtmlReport("Accuracy assessment")
        page.meta([("Map", path), ("Samples", "1,200")])
        page.heading("Summary")
        page.table(["Measure", "Value"], [["Overall accuracy", "0.912"]])
        page.figure(heatmap(...), "Rows = map, columns = reference.")
        text = page.render()
    """

    def __init__(self, title: str):
        self.title = title
        self.parts: List[str] = [f"<h1>{escape(title)}</h1>"]

    def heading(self, text: str, level: int = 2) -> None:
        """Adds a section heading."""
        self.parts.append(f"<h{level}>{html_text(text)}</h{level}>")

    def paragraph(self, text, css: Optional[str] = None) -> None:
        """Adds a paragraph (escaped unless :class:`Markup`)."""
        attr = f' class="{css}"' if css else ""
        self.parts.append(f"<p{attr}>{html_text(text)}</p>")

    def notes(self, notes: Sequence[str], title: str = "Notes") -> None:
        """Adds a highlighted list of notes or warnings (nothing when empty)."""
        if notes:
            items = "".join(f"<li>{html_text(n)}</li>" for n in notes)
            self.parts.append(f'<div class="notes"><b>{escape(title)}</b><ul>{items}</ul></div>')

    def meta(self, pairs: Iterable[tuple]) -> None:
        """Adds a borderless two-column table of (label, value) pairs."""
        rows = "".join(f"<tr><td>{html_text(k)}</td><td>{html_text(v)}</td></tr>"
                       for k, v in pairs)
        self.parts.append(f'<table class="meta">{rows}</table>')

    def table(self, header: Sequence, rows: Iterable[Sequence], caption: Optional[str] = None,
              left_columns: int = 1, diagonal_from: Optional[int] = None,
              row_classes: Optional[Sequence[Optional[str]]] = None) -> None:
        """Adds a data table.

        Args:
            header: column titles.
            rows: cells (numbers are written as they are; use :func:`fmt_value` to round).
            caption: optional caption above the table.
            left_columns: how many leading columns are left-aligned labels.
            diagonal_from: for a matrix, the column of the first class: cell (i, diagonal_from
                + i) is highlighted.
            row_classes: optional CSS class per row.
        """
        out = ["<table>"]
        if caption:
            out.append(f"<caption>{html_text(caption)}</caption>")
        out.append("<tr>" + "".join(
            f'<th{" class=l" if j < left_columns else ""}>{html_text(h)}</th>'
            for j, h in enumerate(header)) + "</tr>")
        for i, row in enumerate(rows):
            css = row_classes[i] if row_classes and i < len(row_classes) else None
            cells = []
            for j, value in enumerate(row):
                attr = ' class="l"' if j < left_columns else ""
                if diagonal_from is not None and j == diagonal_from + i:
                    attr = ' class="diag"'
                cells.append(f"<td{attr}>{html_text(value)}</td>")
            out.append(f'<tr{f" class={css}" if css else ""}>{"".join(cells)}</tr>')
        out.append("</table>")
        self.parts.append("\n".join(out))

    def figure(self, svg: str, caption: Optional[str] = None) -> None:
        """Adds an SVG figure (from :func:`bar_chart`, :func:`line_chart`, :func:`heatmap`)."""
        text = f"<figcaption>{html_text(caption)}</figcaption>" if caption else ""
        self.parts.append(f"<figure>{svg}{text}</figure>")

    def details(self, summary: str, build) -> None:
        """Adds a collapsed section; ``build(report)`` fills it with this report's methods."""
        self.parts.append(f"<details><summary>{html_text(summary)}</summary>")
        build(self)
        self.parts.append("</details>")

    def raw(self, markup: str) -> None:
        """Adds markup built by the caller from escaped pieces."""
        self.parts.append(str(markup))

    def render(self) -> str:
        """Returns the whole page."""
        return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                f"<title>{escape(self.title)}</title><style>{CSS}</style></head><body>\n"
                + "\n".join(self.parts) + "\n</body></html>\n")


# ------------------------------------------------------------------------------------- figures


def _svg_open(width: float, height: float, label: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
            f'viewBox="0 0 {width:.0f} {height:.0f}" font-size="{FONT}" role="img" '
            f'aria-label="{escape(label)}">')


def nice_ceiling(value: float) -> float:
    """The smallest 'round' number (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8 × 10^k) ≥ ``value``."""
    exponent = math.floor(math.log10(value)) if value > 0 else 0
    for step in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        candidate = step * 10 ** exponent
        if candidate >= value:
            return candidate
    return 10 ** (exponent + 1)


def tick_label(value: float, top: float) -> str:
    """Formats an axis tick with as few decimals as the axis range needs."""
    step = top / 5
    digits = 0 if step >= 10 or float(step).is_integer() else (1 if step >= 1 else 2)
    return f"{value:,.{digits}f}"


def y_grid(left: float, width: float, y, top: float, steps: int, gap: float = 6,
           baseline: float = 5) -> List[str]:
    """SVG gridlines and tick labels of a vertical value axis from 0 to ``top``.

    Args:
        y: maps a value to its SVG y coordinate.
        steps: intervals between 0 and ``top`` (``steps + 1`` lines).
        gap, baseline: offset of the labels left of ``left`` and below their line.
    """
    out = []
    for step in range(steps + 1):
        value = top * step / steps
        out.append(f'<line x1="{left}" x2="{left + width}" y1="{y(value):.1f}" '
                   f'y2="{y(value):.1f}" stroke="#e4e4e4"/>')
        out.append(f'<text x="{left - gap}" y="{y(value) + baseline:.1f}" text-anchor="end" '
                   f'font-size="{SMALL_FONT}">{tick_label(value, top)}</text>')
    return out


def _text_width(text: str, size: float = FONT) -> float:
    return len(text) * CHAR_WIDTH * size / FONT


def bar_chart(labels: Sequence[str], values: Sequence[Optional[float]], title: str,
              colours: Optional[Sequence[str]] = None, maximum: Optional[float] = None,
              digits: int = 2, value_label: str = "") -> str:
    """Horizontal bar chart, one bar per label, the value written at the end of each bar.

    Args:
        maximum: end of the value axis (default: a round number above the largest value).
        value_label: axis title (for example 'F1').
    """
    finite = [v for v in values if v is not None and math.isfinite(v)]
    top = maximum or nice_ceiling(max(finite) if finite else 1.0)
    label_w = max([_text_width(str(lab)) for lab in labels] + [40]) + 16
    plot_w, bar_h, gap = 420, 22, 8
    height = 40 + len(labels) * (bar_h + gap) + 40
    width = label_w + plot_w + 70
    out = [_svg_open(width, height, title)]
    out.append(f'<text x="{label_w}" y="20" font-weight="bold">{escape(title)}</text>')
    y0 = 34
    for i, (label, value) in enumerate(zip(labels, values)):
        y = y0 + i * (bar_h + gap)
        out.append(f'<text x="{label_w - 8}" y="{y + bar_h / 2 + 5}" text-anchor="end">'
                   f'{escape(str(label))}</text>')
        if value is None or not math.isfinite(value):
            out.append(f'<text x="{label_w + 4}" y="{y + bar_h / 2 + 5}" fill="#777">{NA}</text>')
            continue
        w = plot_w * max(0.0, min(value, top)) / top
        colour = colours[i] if colours else "#4a7ab5"
        out.append(f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" '
                   f'fill="{escape(colour)}" stroke="#444"><title>{escape(str(label))}: '
                   f'{value:.{digits}f}</title></rect>')
        out.append(f'<text x="{label_w + w + 6:.1f}" y="{y + bar_h / 2 + 5}">'
                   f'{value:.{digits}f}</text>')
    axis_y = y0 + len(labels) * (bar_h + gap)
    out.append(f'<line x1="{label_w}" x2="{label_w + plot_w}" y1="{axis_y}" y2="{axis_y}" '
               'stroke="#000"/>')
    for step in range(6):
        value = top * step / 5
        x = label_w + plot_w * step / 5
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{axis_y}" y2="{axis_y + 5}" '
                   'stroke="#000"/>')
        out.append(f'<text x="{x:.1f}" y="{axis_y + 19}" text-anchor="middle" '
                   f'font-size="{SMALL_FONT}">{tick_label(value, top)}</text>')
    if value_label:
        out.append(f'<text x="{label_w + plot_w / 2}" y="{axis_y + 35}" text-anchor="middle">'
                   f'{escape(value_label)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def line_chart(x_labels: Sequence[str], series: Dict[str, Sequence[Optional[float]]], title: str,
               colours: Optional[Dict[str, str]] = None, y_label: str = "") -> str:
    """Line chart of several series over the same categorical x axis (dates, periods…).

    Missing values (None/NaN) break the line.
    """
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
               "#7f7f7f", "#bcbd22", "#17becf"]
    finite = [v for vals in series.values() for v in vals if v is not None and math.isfinite(v)]
    top = nice_ceiling(max(finite) if finite else 1.0)
    plot_w, plot_h = max(360, 70 * len(x_labels)), 260
    left, top_margin = 80, 36
    legend_w = max([_text_width(name) for name in series] + [40]) + 40
    width = left + plot_w + 20 + legend_w
    height = top_margin + plot_h + 70
    out = [_svg_open(width, height, title)]
    out.append(f'<text x="{left}" y="20" font-weight="bold">{escape(title)}</text>')
    y0 = top_margin + plot_h

    def x(i):
        return left + (plot_w * (i + 0.5) / max(1, len(x_labels)))

    def y(v):
        return y0 - plot_h * v / top

    out.extend(y_grid(left, plot_w, y, top, 5))
    out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y0}" y2="{y0}" stroke="#000"/>')
    for i, label in enumerate(x_labels):
        out.append(f'<text x="{x(i):.1f}" y="{y0 + 20}" text-anchor="middle" '
                   f'font-size="{SMALL_FONT}">{escape(str(label))}</text>')
    if y_label:
        out.append(f'<text transform="translate(16,{top_margin + plot_h / 2}) rotate(-90)" '
                   f'text-anchor="middle">{escape(y_label)}</text>')
    for k, (name, values) in enumerate(series.items()):
        colour = (colours or {}).get(name) or palette[k % len(palette)]
        segment: List[str] = []
        segments = [segment]
        for i, v in enumerate(values):
            if v is None or not math.isfinite(v):
                segment = []
                segments.append(segment)
                continue
            segment.append(f"{x(i):.1f},{y(v):.1f}")
            out.append(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3.5" fill="{escape(colour)}">'
                       f'<title>{escape(name)}, {escape(str(x_labels[i]))}: {v:,.4g}</title>'
                       '</circle>')
        for points in segments:
            if len(points) > 1:
                out.append(f'<polyline points="{" ".join(points)}" fill="none" '
                           f'stroke="{escape(colour)}" stroke-width="2"/>')
        ly = top_margin + 10 + k * 20
        lx = left + plot_w + 20
        out.append(f'<line x1="{lx}" x2="{lx + 22}" y1="{ly}" y2="{ly}" '
                   f'stroke="{escape(colour)}" stroke-width="3"/>')
        out.append(f'<text x="{lx + 28}" y="{ly + 5}">{escape(name)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def heatmap(row_labels: Sequence[str], column_labels: Sequence[str],
            matrix: Sequence[Sequence[float]], row_title: str, column_title: str,
            diagonal: bool = True, digits: int = 0) -> str:
    """Heat map of a matrix, each row shaded by its share of the row total.

    With ``diagonal`` (a confusion matrix), diagonal cells are shaded blue and off-diagonal
    cells red; otherwise all cells are shaded blue. Cell values are written in the cells. Give the
    explanation of the shading as the figure's caption (:meth:`HtmlReport.figure`).
    """
    k_rows, k_cols = len(row_labels), len(column_labels)
    cell = max(40, min(72, 640 // max(k_rows, k_cols, 1)))
    label_w = 40 + max(_text_width(str(n)) for n in row_labels)
    longest = max(_text_width(str(n)) for n in column_labels)
    top = 36 + longest * 0.87  # column labels rotated by 60°
    width = label_w + k_cols * cell + 20 + longest * 0.5
    height = top + k_rows * cell + 16
    out = [_svg_open(width, height, f"{row_title} (rows) by {column_title} (columns)")]
    out.append(f'<text x="{label_w + k_cols * cell / 2}" y="18" text-anchor="middle" '
               f'font-weight="bold">{escape(column_title)} (columns)</text>')
    out.append(f'<text transform="translate(18,{top + k_rows * cell / 2}) rotate(-90)" '
               f'text-anchor="middle" font-weight="bold">{escape(row_title)} (rows)</text>')
    for j, name in enumerate(column_labels):
        x = label_w + j * cell + cell / 2
        out.append(f'<text transform="translate({x + 4},{top - 8}) rotate(-60)">'
                   f'{escape(str(name))}</text>')
    for i, name in enumerate(row_labels):
        y = top + i * cell
        out.append(f'<text x="{label_w - 8}" y="{y + cell / 2 + 5}" text-anchor="end">'
                   f'{escape(str(name))}</text>')
        total = sum(matrix[i])
        for j in range(k_cols):
            v = matrix[i][j]
            share = v / total if total else 0.0
            shade = (int(255 - 200 * share), int(255 - 120 * share), int(255 - 40 * share))
            if diagonal and i != j and v:
                shade = (int(255 - 30 * share), int(255 - 190 * share), int(255 - 190 * share))
            text = f"{v:,.{digits}f}"
            out.append(f'<rect x="{label_w + j * cell}" y="{y}" width="{cell}" height="{cell}" '
                       f'fill="rgb{shade}" stroke="#999"><title>{escape(str(name))} / '
                       f'{escape(str(column_labels[j]))}: {text}</title></rect>')
            colour = "#fff" if share > 0.55 else "#222"
            size = FONT if _text_width(text) < cell - 4 else SMALL_FONT - 1
            out.append(f'<text x="{label_w + j * cell + cell / 2}" y="{y + cell / 2 + 5}" '
                       f'text-anchor="middle" font-size="{size}" fill="{colour}">{text}</text>')
    out.append("</svg>")
    return "\n".join(out)


# ----------------------------------------------------------------------------------------- CSV

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value) -> object:
    """Neutralises a CSV cell against formula injection; numbers pass unchanged.

    Text starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return gets a leading
    apostrophe (spreadsheets then show it as text), unless the text is a plain number such as
    ``-3.5``.
    """
    if value is None:
        return ""
    if isinstance(value, (numbers.Number,)) and not isinstance(value, bool):
        return value
    text = str(value)
    if text.startswith(_FORMULA_START) and not _is_number(text):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return text.strip() == text and text[:1] in "+-" and len(text) > 1


def csv_text(rows: Iterable[Sequence]) -> str:
    """Returns rows as CSV text (``\\n`` line ends), every cell passed through :func:`csv_cell`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in rows:
        writer.writerow([csv_cell(v) for v in row])
    return out.getvalue()


# ---------------------------------------------------------------------------------------- JSON


def json_safe(value):
    """Returns ``value`` with NaN/inf as None, numpy scalars and arrays as Python values, tuples
    as lists and keys as strings."""
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "tolist"):
        return json_safe(value.tolist())
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def json_text(value) -> str:
    """Returns indented JSON of ``value`` (through :func:`json_safe`)."""
    return json.dumps(json_safe(value), indent=2, ensure_ascii=False)


# --------------------------------------------------------------------------------------- files


def write_text(path: str, text: str, what: str = "Report") -> None:
    """Writes ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_output(path, what) as temp:
        with open(temp, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)


def write_report_files(files: Sequence[tuple]) -> List[str]:
    """Writes ``(path, text, what)`` entries atomically, in order; entries with no path are
    skipped. On any failure the files already written are removed, so none is left behind.

    Returns:
        The paths written.
    """
    written: List[str] = []
    try:
        for path, text, what in files:
            if not path:
                continue
            write_text(path, text() if callable(text) else text, what)
            written.append(path)
    except BaseException:
        remove_outputs(written)
        raise
    return written
