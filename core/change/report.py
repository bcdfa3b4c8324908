"""Reports of the change algorithms, written with the shared report writer (core/io/reports.py).

JSON follows the conventions of the accuracy report (indented, NaN/inf as null, ``outputs``
listing the files written); CSV cells are safe against formula injection; files are written all
or none.
"""

from __future__ import annotations

import html
import math
from typing import Optional, Sequence

from ..io import reports


def json_text(result: dict, outputs: dict) -> str:
    """The JSON report text (accuracy-report conventions)."""
    return reports.json_text(dict(result, outputs=outputs))


csv_text = reports.csv_text
write_texts = reports.write_report_files


def fmt(value, digits: int = 3) -> str:
    """Formats a number for HTML ('n/a' when undefined)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return reports.NA
    return f"{value:.{digits}f}"


def page(title: str, body: Sequence[str]) -> str:
    """A self-contained page made of HTML parts built from escaped pieces."""
    report = reports.HtmlReport(title)
    for part in body:
        report.raw(part)
    return report.render()


def line_chart(series: Sequence[dict], x_labels: Sequence[str], y_label: str,
               title: str = "", y_max: Optional[float] = None) -> str:
    """An inline SVG line chart; ``series`` items have ``name``, ``color``, ``values``."""
    del y_max  # the shared chart scales the axis itself
    return reports.line_chart(list(x_labels), {s["name"]: s["values"] for s in series},
                              title or y_label, colours={s["name"]: s["color"] for s in series},
                              y_label=y_label)


def swatch(c: dict) -> str:
    """A class colour swatch and name (escaped)."""
    return str(reports.swatch(c["name"], c["color"]))


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
                           labels, "F1", "F1 of change against the decision threshold"))
    body.append("<h2>Classes</h2><table><tr><th class='l'>class</th><th>value</th></tr>")
    for c in report["classes"]:
        body.append(f"<tr><td class='l'><span XX</td><td>{c['value']}</td></tr>")
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
