"""HTML, JSON and CSV reports of the change algorithms (self-contained, no external resources).

JSON follows the conventions of the accuracy report: UTF-8, indented, NaN/inf written as null,
``outputs`` listing the files written. CSV cells that a spreadsheet would run as a formula
(starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return) are prefixed with ``'``.
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
from typing import List, Optional, Sequence

from ..io.raster import atomic_output, remove_outputs

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em;color:#222;max-width:75em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:.25em .6em;
text-align:right}th{background:#f3f3f3}td.l,th.l{text-align:left}
.sw{display:inline-block;width:1em;height:1em;border:1px solid #555;vertical-align:middle;
margin-right:.4em}.note{background:#fff4e0;border-left:4px solid #f0a000;padding:.4em .8em;
margin:.4em 0}.primary{font-weight:bold}small{color:#666}
"""


def json_safe(value):
    """Returns ``value`` with NaN/inf as None and numpy scalars as Python numbers."""
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return json_safe(value.item())
    return value


def safe_cell(value):
    """Returns a CSV cell that spreadsheets show as text, never run as a formula."""
    if isinstance(value, str) and value and value[0] in "=+-@\t\r":
        try:
            float(value)
            return value
        except ValueError:
            return "'" + value
    return value


def csv_text(rows: Sequence[Sequence]) -> str:
    """Renders rows as CSV with formula-safe cells."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in rows:
        writer.writerow([safe_cell(c) for c in row])
    return out.getvalue()


def write_texts(files: Sequence[tuple]) -> None:
    """Writes ``(path, text, what)`` files atomically; on failure none of them is left behind."""
    written: List[str] = []
    try:
        for path, text, what in files:
            if not path:
                continue
            with atomic_output(path, what) as temp:
                with open(temp, "w", encoding="utf-8", newline="") as handle:
                    handle.write(text)
            written.append(path)
    except BaseException:
        remove_outputs(written)
        raise


def json_text(result: dict, outputs: dict) -> str:
    """The JSON report text (accuracy-report conventions)."""
    return json.dumps(json_safe(dict(result, outputs=outputs)), indent=2, ensure_ascii=False)


def fmt(value, digits: int = 3) -> str:
    """Formats a number for HTML ('–' for None)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "&ndash;"
    return f"{value:.{digits}f}"


def page(title: str, body: Sequence[str]) -> str:
    """Wraps HTML parts into a self-contained page."""
    e = html.escape
    return "\n".join([f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
                      f"<title>{e(title)}</title><style>{CSS}</style></head><body>",
                      f"<h1>{e(title)}</h1>", *body, "</body></html>"])


def line_chart(series: Sequence[dict], x_labels: Sequence[str], y_label: str,
               width: int = 640, height: int = 300, y_max: Optional[float] = None) -> str:
    """An inline SVG line chart; ``series`` items have ``name``, ``color``, ``values``."""
    e = html.escape
    left, right, top, bottom = 70, 170, 15, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for s in series for v in s["values"] if v is not None]
    top_value = y_max if y_max is not None else (max(values) if values else 1.0)
    top_value = _nice(top_value or 1.0)
    n = len(x_labels)

    def x(i):
        return left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y(v):
        return top + plot_h * (1 - v / top_value)

    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
             f"role='img' aria-label='{e(y_label)}' font-family='sans-serif' font-size='11'>"]
    for k in range(5):
        v = top_value * k / 4
        parts.append(f"<line x1='{left}' x2='{left + plot_w}' y1='{y(v):.1f}' y2='{y(v):.1f}' "
                     "stroke='#ddd'/>")
        parts.append(f"<text x='{left - 5}' y='{y(v) + 4:.1f}' text-anchor='end'>{v:.4g}</text>")
    for i, label in enumerate(x_labels):
        parts.append(f"<text x='{x(i):.1f}' y='{top + plot_h + 16}' text-anchor='middle'>"
                     f"{e(str(label))}</text>")
    parts.append(f"<text x='12' y='{top + plot_h / 2:.0f}' transform='rotate(-90 12 "
                 f"{top + plot_h / 2:.0f})' text-anchor='middle'>{e(y_label)}</text>")
    for k, s in enumerate(series):
        points = [(x(i), y(v)) for i, v in enumerate(s["values"]) if v is not None]
        if len(points) > 1:
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
            parts.append(f"<polyline fill='none' stroke='{e(s['color'])}' stroke-width='2' "
                         f"points='{path}'/>")
        for px, py in points:
            parts.append(f"<circle cx='{px:.1f}' cy='{py:.1f}' r='3' fill='{e(s['color'])}'/>")
        ly = top + 14 * k + 6
        parts.append(f"<rect x='{left + plot_w + 12}' y='{ly - 8}' width='10' height='10' "
                     f"fill='{e(s['color'])}'/><text x='{left + plot_w + 26}' y='{ly + 1}'>"
                     f"{e(s['name'])}</text>")
    parts.append("</svg>")
    return "".join(parts)


def _nice(value: float) -> float:
    if value <= 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * 10 ** exponent:
            return step * 10 ** exponent
    return 10 ** (exponent + 1)


# --------------------------------------------------------------------------- training report


def write_training_report(report: dict, html_path: str, json_path: str) -> None:
    """Writes the change-model training report (HTML) and its JSON beside it."""
    outputs = {"html": html_path, "json": json_path}
    write_texts([(json_path, json_text(report, outputs), "JSON report"),
                 (html_path, render_training_html(report), "HTML report")])


def _score_cells(s: Optional[dict]) -> str:
    s = s or {}
    return "".join(f"<td>{fmt(s.get(k))}</td>" for k in ("f1", "precision", "recall"))


def render_training_html(report: dict) -> str:
    """The change-model training report as one HTML page."""
    e = html.escape
    v = report["validation"]
    body = [f"<p><small>{e(report['created'])} &middot; model <code>{e(report['model'])}"
            "</code></small></p>"]
    body.append(
        f"<h2>Change detection accuracy (leave one {e(v['grouping'])} out)</h2>"
        f"<p>Decision threshold on the change probability: <b>{v['threshold']:.2f}</b>, chosen "
        "to maximise the F1 of change over the pooled held-out predictions and stored in the "
        "model. Scores are weighted to the true share of change of each pair.</p>")
    body.append("<table><tr><th class='l'>held out</th><th>change share</th>"
                "<th>threshold from other pairs</th><th>F1</th><th>precision</th><th>recall</th>"
                "<th>F1 at stored threshold</th><th>F1 at 0.5</th></tr>")
    for p in v["per_pair"]:
        other = p.get("at_threshold_from_others")
        body.append(f"<tr><td class='l'>{e(p['name'])} <small>({e(p['before'])})</small></td>"
                    f"<td>{100 * p['change_share']:.2f} %</td>"
                    f"<td>{fmt(p.get('threshold_from_others'), 2)}</td>"
                    f"{_score_cells(other or p['at_threshold'])}"
                    f"<td>{fmt(p['at_threshold']['f1'])}</td><td>{fmt(p['at_0_5']['f1'])}</td>"
                    "</tr>")
    pooled = v["pooled"]
    body.append(f"<tr class='primary'><td class='l'>all held-out pixels</td><td></td>"
                f"<td>{v['threshold']:.2f}</td>{_score_cells(pooled)}<td>{fmt(pooled['f1'])}</td>"
                f"<td>{fmt(v['pooled_at_0_5']['f1'])}</td></tr></table>")
    if v.get("mean_pair_f1_threshold_from_others") is not None:
        body.append(f"<p>Mean F1 over held-out pairs, threshold chosen without the pair: "
                    f"<b>{v['mean_pair_f1_threshold_from_others']:.3f}</b>.</p>")
    pixel = report.get("pixel_validation")
    if pixel:
        body.append(f"<p>For comparison, pixel-level {pixel['folds']}-fold validation "
                    f"(neighbouring pixels on both sides of the split, optimistic): F1 "
                    f"{fmt(pixel['f1'])}, precision {fmt(pixel['precision'])}, recall "
                    f"{fmt(pixel['recall'])}.</p>")
    curve = v["f1_curve"]
    body.append("<h2>F1 of change against the threshold (pooled held-out pixels)</h2>")
    step = max(1, len(curve["thresholds"]) // 12)
    labels = [f"{t:.2f}" if i % step == 0 else "" for i, t in enumerate(curve["thresholds"])]
    body.append(line_chart([{"name": "F1 change", "color": "#d62728", "values": curve["f1"]}],
                           labels, "F1", width=760, y_max=1.0))
    body.append("<h2>Classes</h2><table><tr><th class='l'>class</th><th>value</th></tr>")
    for c in report["classes"]:
        body.append(f"<tr><td class='l'><span class='sw' style='background:{e(c['color'])}'>"
                    f"</span>{e(c['name'])}</td><td>{c['value']}</td></tr>")
    body.append("</table><h2>Pairs</h2><table><tr><th class='l'>BEFORE</th><th class='l'>AFTER"
                "</th><th class='l'>labels</th><th class='l'>labelled pixels per class</th></tr>")
    for p in report["pairs"]:
        counts = ", ".join(f"{k}: {n}" for k, n in p["label_counts"].items())
        body.append(f"<tr><td class='l'>{e(p['before'])}</td><td class='l'>{e(p['after'])}"
                    f"{' (resampled)' if p['after_resampled'] else ''}</td>"
                    f"<td class='l'>{e(str(p['labels']))}</td><td class='l'>{e(counts)}</td></tr>")
    f = report["features"]
    body.append(f"</table><h2>Features</h2><p>{len(f['names'])} features: groups "
                f"{e(', '.join(f['groups']))}; windows {e(str(f['scales']))}; bands per date: "
                f"{e(', '.join(f['bands']))}.</p>")
    if report.get("feature_importance"):
        body.append("<table><tr><th class='l'>feature</th><th>importance</th></tr>")
        for item in report["feature_importance"][:15]:
            body.append(f"<tr><td class='l'>{e(item['feature'])}</td>"
                        f"<td>{item['importance']:.4f}</td></tr>")
        body.append("</table>")
    s = report["samples"]
    body.append(f"<h2>Model</h2><p>{e(report['algorithm'])}; imbalance: {e(report['imbalance'])}; "
                f"scaling: {e(report['scaling'])}; {s['total']} samples ({s['change']} change, "
                f"at most {s['per_pair_cap']} per pair and class); seed {report['seed']}; "
                f"trained in {report['training_seconds']} s.</p>")
    check = report.get("onnx_check") or {}
    if check:
        body.append(f"<p>ONNX check: change probabilities agree with scikit-learn within "
                    f"{check['max_change_probability_difference']:.1e} on "
                    f"{check['checked_pixels']} training pixels.</p>")
    return page(report["title"], body)
