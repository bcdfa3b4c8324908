"""Report files of an accuracy assessment: self-contained HTML, CSV of the matrices, JSON.

Written with the shared report writer (:mod:`landfusion.core.io.reports`): the HTML needs no
network and no JavaScript; its two figures are inline SVG (the error matrix as a heat map, and
mapped vs estimated class areas with 95 % confidence intervals, drawn here).
Numbers are formatted for publication: accuracies with three decimals and their 95 % confidence
half-width, areas in whole hectares with thousands separators.
"""

from __future__ import annotations

from html import escape
from typing import Optional

from ..io.reports import (
    FONT, NA, SMALL_FONT, HtmlReport, Markup, csv_text, fmt_value, heatmap, json_text,
    nice_ceiling, write_report_files, y_grid,
)

_DIAG = ' class="diag"'


def fmt_ci(value: Optional[float], ci: Optional[float], digits: int = 3) -> str:
    """Formats 'value ± half-width' ('0.946 ± 0.018'), 'value ± n/a' when it is undefined."""
    if value is None:
        return NA
    if ci is None:
        return f"{value:.{digits}f} ± {NA}"
    return f"{value:.{digits}f} ± {ci:.{digits}f}"


def area_digits(total_area_ha: float) -> int:
    """Decimals for the areas of a report: whole hectares from 10,000 ha, else two decimals."""
    return 0 if total_area_ha >= 10000 else 2


def fmt_area(value: Optional[float], digits: int = 0) -> str:
    """Formats an area in hectares with thousands separators ('21,158')."""
    if value is None:
        return NA
    return f"{value:,.{digits}f}"


def fmt_area_ci(value: Optional[float], ci: Optional[float], digits: int = 0) -> str:
    """Formats 'area ± half-width' in hectares ('21,158 ± 6,158')."""
    if value is None:
        return NA
    return f"{fmt_area(value, digits)} ± {fmt_area(ci, digits) if ci is not None else NA}"


def write_reports(result: dict, html_path: Optional[str], json_path: Optional[str],
                  csv_path: Optional[str]) -> dict:
    """Writes the requested report files atomically; on failure none of them is left behind."""
    outputs = {k: p for k, p in (("html", html_path), ("csv", csv_path), ("json", json_path)) if p}
    write_report_files([
        (html_path, lambda: render_html(result), "HTML report"),
        (csv_path, lambda: render_csv(result), "CSV report"),
        (json_path, lambda: json_text(dict(result, outputs=dict(outputs))), "JSON report"),
    ])
    return outputs


# ------------------------------------------------------------------------------------------ CSV


def render_csv(result: dict) -> str:
    """Returns the matrices and per-class tables as CSV sections separated by blank lines.

    Class names come from users: every cell is neutralised against formula injection."""
    rows = []
    names = [c["name"] for c in result["classes"]]
    matrix = result["error_matrix"]
    rows.append(["# Error matrix, sample counts (rows = map, columns = reference)"])
    rows.append(["map \\ reference"] + names + ["total"])
    for name, row in zip(names, matrix):
        rows.append([name] + row + [sum(row)])
    rows.append(["total"] + [sum(col) for col in zip(*matrix)] + [sum(map(sum, matrix))])
    rows.append([])
    m = result["metrics"]
    rows.append(["# Per-class metrics from sample counts"])
    rows.append(["class", "value", "map_samples", "reference_samples", "users_accuracy",
                     "producers_accuracy", "f1"])
    for i, c in enumerate(result["classes"]):
        rows.append([c["name"], c["value"], m["map_samples"][i], m["reference_samples"][i],
                     _num(m["users_accuracy"][i]), _num(m["producers_accuracy"][i]),
                     _num(m["f1"][i])])
    rows.append(["overall_accuracy", _num(m["overall_accuracy"])])
    rows.append(["kappa", _num(m["kappa"])])
    rows.append(["macro_f1", _num(m["macro_f1"])])
    est = result.get("area_adjusted")
    if est:
        rows.append([])
        rows.append(["# Error matrix, estimated area proportions (rows = map, columns = "
                     "reference)"])
        rows.append(["map \\ reference"] + names + ["total", "W_i"])
        for name, row, w in zip(names, est["proportions"], est["weights"]):
            rows.append([name] + [_num(v, 6) for v in row] + [_num(sum(row), 6), _num(w, 6)])
        rows.append(["total"] + [_num(v, 6) for v in est["reference_proportions"]]
                        + [_num(sum(est["reference_proportions"]), 6), ""])
        rows.append([])
        rows.append(["# Area-adjusted accuracy and area (95 % confidence half-widths)"])
        rows.append(["class", "value", "users_accuracy", "users_accuracy_ci95",
                     "producers_accuracy", "producers_accuracy_ci95", "mapped_area_ha",
                     "estimated_area_ha", "estimated_area_ci95_ha"])
        for i, c in enumerate(result["classes"]):
            rows.append([c["name"], c["value"], _num(est["users_accuracy"][i]),
                             _num(est["users_accuracy_ci95"][i]),
                             _num(est["producers_accuracy"][i]),
                             _num(est["producers_accuracy_ci95"][i]),
                             _num(est["mapped_area_ha"][i], 2), _num(est["area_ha"][i], 2),
                             _num(est["area_ha_ci95"][i], 2)])
        rows.append(["overall_accuracy", _num(est["overall_accuracy"]),
                     "overall_accuracy_ci95", _num(est["overall_accuracy_ci95"])])
    return csv_text(rows)


def _num(value, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}f}"


# ----------------------------------------------------------------------------------------- HTML

def _class_cell(c: dict) -> str:
    return (f'<td class="l"><span class="swatch" style="background:{escape(c["color"])}"></span>'
            f'{escape(c["name"])}</td>')


def render_html(result: dict) -> str:
    """Returns the self-contained HTML report."""
    classes = result["classes"]
    m = result["metrics"]
    est = result.get("area_adjusted")
    s = result["samples"]
    page = HtmlReport(result["title"])
    reference = escape(result["reference"]) + (
        f" (field <i>{escape(result['class_field'])}</i>)" if result.get("class_field") else "")
    page.meta([
        ("Classification (map)", result["classification"]),
        ("Reference", Markup(reference)),
        ("Reference samples", f"{s['count']:,} ({_sample_text(s)})"),
        ("Sampling design", result["design_title"]),
        ("Orientation", Markup("<b>rows = map classes, columns = reference classes</b>")),
        ("Generated", f"{result['generated_utc']} UTC"),
    ])
    page.notes(result["notes"])
    parts = []
    parts.append("<h2>Summary</h2><table><tr><th class=\"l\">Measure</th><th>Value</th></tr>")
    parts.append(f"<tr><td class=\"l\">Overall accuracy (sample counts)</td>"
                 f"<td>{fmt_value(m['overall_accuracy'])}</td></tr>")
    parts.append(f"<tr><td class=\"l\">Cohen's kappa</td><td>{fmt_value(m['kappa'])}</td></tr>")
    parts.append(f"<tr><td class=\"l\">Macro-F1</td><td>{fmt_value(m['macro_f1'])}</td></tr>")
    if est:
        parts.append("<tr><td class=\"l\">Overall accuracy, area-adjusted (± 95 % CI)</td>"
                     f"<td>{fmt_ci(est['overall_accuracy'], est['overall_accuracy_ci95'])}"
                     "</td></tr>")
    parts.append(f"<tr><td class=\"l\">Samples</td><td>{m['n']:,}</td></tr></table>")

    parts.append("<h2>Error matrix (sample counts)</h2>")
    parts.append(_count_table(result))
    parts.append(_matrix_figure(result))

    parts.append("<h2>Per-class accuracy (sample counts)</h2><table><tr><th class=\"l\">Class"
                 "</th><th>Value</th><th>Map samples</th><th>Reference samples</th>"
                 "<th>User's accuracy</th><th>Producer's accuracy</th><th>F1</th></tr>")
    for i, c in enumerate(classes):
        parts.append(f"<tr>{_class_cell(c)}<td>{c['value']}</td><td>{m['map_samples'][i]:,}</td>"
                     f"<td>{m['reference_samples'][i]:,}</td>"
                     f"<td>{fmt_value(m['users_accuracy'][i])}</td>"
                     f"<td>{fmt_value(m['producers_accuracy'][i])}</td>"
                     f"<td>{fmt_value(m['f1'][i])}</td></tr>")
    parts.append("</table><p class=\"small\">User's accuracy = correct / samples mapped as the "
                 "class; producer's accuracy = correct / samples whose reference is the class; "
                 "n/a = undefined (no sample on that side).</p>")

    if est:
        d = area_digits(est["total_area_ha"])
        parts.append("<h2>Error matrix in estimated area proportions</h2>")
        parts.append(_proportion_table(result))
        parts.append("<h2>Area-adjusted accuracy and area (95 % confidence intervals)</h2>")
        parts.append("<table><tr><th class=\"l\">Class</th><th>User's accuracy</th>"
                     "<th>Producer's accuracy</th><th>Mapped area (ha)</th>"
                     "<th>Estimated area (ha)</th><th>Estimated area (% of map)</th></tr>")
        for i, c in enumerate(classes):
            share = est["area_proportion"][i]
            share_ci = est["area_proportion_ci95"][i]
            parts.append(
                f"<tr>{_class_cell(c)}"
                f"<td>{fmt_ci(est['users_accuracy'][i], est['users_accuracy_ci95'][i])}</td>"
                f"<td>{fmt_ci(est['producers_accuracy'][i], est['producers_accuracy_ci95'][i])}"
                f"</td><td>{fmt_area(est['mapped_area_ha'][i], d)}</td>"
                f"<td>{fmt_area_ci(est['area_ha'][i], est['area_ha_ci95'][i], d)}</td>"
                f"<td>{fmt_ci(100 * share, None if share_ci is None else 100 * share_ci, 2)}"
                "</td></tr>")
        parts.append(
            f"<tr><td class=\"l\"><b>Overall</b></td><td colspan=\"2\">overall accuracy "
            f"{fmt_ci(est['overall_accuracy'], est['overall_accuracy_ci95'])}</td>"
            f"<td>{fmt_area(est['total_area_ha'], d)}</td>"
            f"<td>{fmt_area(est['total_area_ha'], d)}</td>"
            "<td>100</td></tr></table>")
        parts.append("<p class=\"small\">Estimators of Olofsson et al. (2014), Remote Sensing of "
                     "Environment 148:42-57 (eqs. 1-11): stratified by map class; ± values are "
                     "95 % confidence half-widths (1.96 standard errors).</p>")
        parts.append(_area_figure(result))
    elif result["design"] != "unknown":
        parts.append("<p>Area-adjusted estimates are not available; see the notes.</p>")
    page.raw("\n".join(parts))
    return page.render()


def _sample_text(s: dict) -> str:
    if s["kind"] == "raster":
        return "all pixels of a reference raster, not independent"
    if s["kind"] == "polygons":
        return {"majority": "one per polygon, majority map class",
                "centroid": "one per polygon, at the centroid",
                "all_pixels": "all pixels of the polygons, not independent"}.get(
                    s["polygon_mode"], "polygons")
    return "points"


def _count_table(result: dict) -> str:
    classes = result["classes"]
    matrix = result["error_matrix"]
    head = "".join(f"<th>{escape(c['name'])}</th>" for c in classes)
    rows = [f"<table><caption>Rows = map, columns = reference</caption><tr>"
            f"<th class=\"l\">Map \\ Reference</th>{head}<th>Total</th><th>User's acc.</th></tr>"]
    ua = result["metrics"]["users_accuracy"]
    for i, (c, row) in enumerate(zip(classes, matrix)):
        cells = "".join(f"<td{_DIAG if i == j else ''}>{v:,}</td>" for j, v in enumerate(row))
        rows.append(f"<tr>{_class_cell(c)}{cells}<td>{sum(row):,}</td>"
                    f"<td>{fmt_value(ua[i])}</td></tr>")
    totals = "".join(f"<td>{sum(col):,}</td>" for col in zip(*matrix))
    rows.append(f"<tr><th class=\"l\">Total</th>{totals}<td>{sum(map(sum, matrix)):,}</td>"
                "<td></td></tr>")
    pa = "".join(f"<td>{fmt_value(v)}</td>" for v in result["metrics"]["producers_accuracy"])
    rows.append(f"<tr><th class=\"l\">Producer's acc.</th>{pa}<td></td>"
                f"<td>{fmt_value(result['metrics']['overall_accuracy'])}</td></tr></table>")
    return "\n".join(rows)


def _proportion_table(result: dict) -> str:
    classes = result["classes"]
    est = result["area_adjusted"]
    d = area_digits(est["total_area_ha"])
    head = "".join(f"<th>{escape(c['name'])}</th>" for c in classes)
    rows = [f"<table><caption>Rows = map, columns = reference; cells p<sub>ij</sub> = "
            f"W<sub>i</sub> n<sub>ij</sub> / n<sub>i·</sub></caption><tr>"
            f"<th class=\"l\">Map \\ Reference</th>{head}<th>Total (W<sub>i</sub>)</th>"
            f"<th>Mapped area (ha)</th></tr>"]
    for i, c in enumerate(classes):
        cells = "".join(f"<td{_DIAG if i == j else ''}>{fmt_value(v, 4)}</td>"
                        for j, v in enumerate(est["proportions"][i]))
        rows.append(f"<tr>{_class_cell(c)}{cells}<td>{fmt_value(est['weights'][i], 4)}</td>"
                    f"<td>{fmt_area(est['mapped_area_ha'][i], d)}</td></tr>")
    totals = "".join(f"<td>{fmt_value(v, 4)}</td>" for v in est["reference_proportions"])
    rows.append(f"<tr><th class=\"l\">Total</th>{totals}<td>1.0000</td>"
                f"<td>{fmt_area(est['total_area_ha'], d)}</td></tr></table>")
    return "\n".join(rows)


def _matrix_figure(result: dict) -> str:
    """Heat map of the error matrix with its caption, rows = map, columns = reference."""
    names = [c["name"] for c in result["classes"]]
    svg = heatmap(names, names, result["error_matrix"], "Map", "Reference")
    return ("<figure>" + svg + "<figcaption>Error matrix: rows = map classes, columns = "
            "reference classes; cells are sample counts, shaded by their share of the map-class "
            "row (blue = correct, red = error).</figcaption></figure>")


def _area_figure(result: dict) -> str:
    """Mapped vs estimated area with its 95 % confidence interval, one panel per class.

    Each class has its own scale, so the rare classes, often the ones of interest (change),
    stay readable next to the large stable ones.
    """
    classes = result["classes"]
    est = result["area_adjusted"]
    d = area_digits(est["total_area_ha"])
    mapped = est["mapped_area_ha"]
    area = est["area_ha"]
    cis = est["area_ha_ci95"]
    per_row = 5
    panel_w, panel_h, plot_h = 210, 224, 140
    rows = (len(classes) + per_row - 1) // per_row
    width = panel_w * min(len(classes), per_row) + 10
    height = panel_h * rows + 10
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="Arial,sans-serif" font-size="{FONT}" role="img" '
           f'aria-label="Mapped and estimated area per class, 95 % confidence intervals">']
    for i, c in enumerate(classes):
        ox = 10 + (i % per_row) * panel_w
        oy = (i // per_row) * panel_h
        ci = cis[i] or 0.0
        top = nice_ceiling(max(mapped[i], area[i] + ci, 1e-9))
        left, y0 = ox + 62, oy + 30 + plot_h

        def y(value, top=top, y0=y0):
            return y0 - plot_h * value / top

        name = c["name"] if len(c["name"]) <= 24 else c["name"][:23] + "…"
        out.append(f'<text x="{ox + panel_w / 2}" y="{oy + 16}" text-anchor="middle" '
                   f'font-weight="bold"><title>{escape(c["name"])}</title>{escape(name)}</text>')
        out.extend(y_grid(left, 112, y, top, 2, gap=4, baseline=4))
        out.append(f'<rect x="{left + 8}" y="{y(mapped[i]):.1f}" width="32" '
                   f'height="{y0 - y(mapped[i]):.1f}" fill="#bbbbbb" stroke="#666">'
                   f'<title>mapped {fmt_area(mapped[i], d)} ha</title></rect>')
        out.append(f'<rect x="{left + 64}" y="{y(area[i]):.1f}" width="32" '
                   f'height="{y0 - y(area[i]):.1f}" fill="{escape(c["color"])}" stroke="#333">'
                   f'<title>estimated {fmt_area_ci(area[i], cis[i], d)} ha</title></rect>')
        if cis[i] is not None:
            cx = left + 80
            lo, hi = y(max(area[i] - ci, 0.0)), y(area[i] + ci)
            out.append(f'<line x1="{cx}" x2="{cx}" y1="{lo:.1f}" y2="{hi:.1f}" stroke="#000" '
                       'stroke-width="1.5"/>')
            for yy in (lo, hi):
                out.append(f'<line x1="{cx - 6}" x2="{cx + 6}" y1="{yy:.1f}" y2="{yy:.1f}" '
                           'stroke="#000" stroke-width="1.5"/>')
        out.append(f'<line x1="{left}" x2="{left + 112}" y1="{y0}" y2="{y0}" stroke="#000"/>')
        small = f'text-anchor="middle" font-size="{SMALL_FONT}"'
        out.append(f'<text x="{left + 24}" y="{y0 + 15}" {small}>mapped</text>')
        out.append(f'<text x="{left + 80}" y="{y0 + 15}" {small}>estimated</text>')
        label = fmt_area_ci(area[i], cis[i], d)
        out.append(f'<text x="{left + 52}" y="{y0 + 32}" {small} fill="#444">'
                   f'{escape(label)} ha</text>')
    out.append("</svg>")
    return ("<figure>" + "\n".join(out) + "<figcaption>Area in hectares; each class on its own "
            "scale; error bars: 95 % confidence interval of the estimated area.</figcaption>"
            "</figure>")
