"""The training report: one JSON file of every number and one self-contained HTML page (accuracy
of both validations, per-class scores and confusion matrices, samples, model), written together
through :mod:`core.io.reports`."""

from __future__ import annotations

import html
import os

from ..io.reports import (
    HtmlReport, Markup, bar_chart, fmt_value, heatmap, json_text, swatch, write_report_files,
)
from .tradeoffs import tradeoffs_html


def write_reports(report: dict, html_path: str) -> str:
    """Writes the HTML report and the JSON report beside it, atomically; returns the JSON path."""
    json_path = os.path.splitext(html_path)[0] + ".json"
    write_report_files([(json_path, json_text(report), "JSON report"),
                        (html_path, lambda: render_html_report(report), "HTML report")])
    return json_path


VALIDATION_LABELS = {"grouped": "k-fold grouped by polygon (leak-free)",
                     "pixel": "k-fold by pixel (optimistic, for comparison)"}


def _fmt(value, digits=3):
    return fmt_value(value, digits)


def _class_label(c: dict) -> Markup:
    return swatch(c["name"], c["color"])


def _confusion_figure(page: HtmlReport, metrics: dict, classes: list, what: str) -> None:
    """Adds the confusion matrix as a table and a heat map (rows = predicted, columns =
    reference)."""
    matrix = [[int(v) for v in row] for row in metrics["confusion_matrix"]]
    names = [c["name"] for c in classes]
    rows = [[_class_label(c)] + row + [sum(row)] for c, row in zip(classes, matrix)]
    rows.append(["total"] + [sum(col) for col in zip(*matrix)] + [sum(map(sum, matrix))])
    page.table(["predicted \\ reference"] + names + ["total"], rows,
               caption="Rows = predicted (map) classes, columns = reference classes (pixels)",
               diagonal_from=1)
    page.figure(heatmap(names, names, matrix, "Predicted", "Reference"),
                f"Confusion matrix, {what}: rows = predicted classes, columns = reference "
                "classes; cells are pixel counts, shaded by their share of the predicted-class "
                "row (blue = correct, red = error).")


def _accuracy_section(page: HtmlReport, validation: dict) -> None:
    primary = validation.get("primary")
    rows, css = [], []
    for method in ("grouped", "pixel"):
        m = validation.get(method)
        label = VALIDATION_LABELS[method]
        if m:
            rows.append([label, m["folds"], _fmt(m["overall_accuracy"]), _fmt(m["kappa"]),
                         _fmt(m["macro_f1"])])
        else:
            rows.append([label, "not possible", "", "", ""])
        css.append("primary" if method == primary else None)
    page.heading("Accuracy")
    page.table(["validation", "folds", "overall accuracy", "kappa", "macro F1"], rows,
               row_classes=css)


def _per_class_section(page: HtmlReport, validation: dict, classes: list) -> None:
    primary = validation["primary"]
    m = validation[primary]
    label = VALIDATION_LABELS[primary]
    page.heading(f"Per class ({label})")
    page.table(["class", "value", "precision", "recall", "F1", "support (pixels)"],
               [[_class_label(c), c["value"], _fmt(pc["precision"]), _fmt(pc["recall"]),
                 _fmt(pc["f1"]), pc["support"]] for c, pc in zip(classes, m["per_class"])])
    page.figure(bar_chart([c["name"] for c in classes], [pc["f1"] for pc in m["per_class"]],
                          "F1 per class", [c["color"] for c in classes], maximum=1.0,
                          digits=3, value_label="F1"),
                f"F1 per class, {label}.")
    page.heading("Confusion matrix (pixels)")
    _confusion_figure(page, m, classes, label)
    other = "pixel" if primary == "grouped" else None
    if other and validation.get(other):
        page.heading(f"Confusion matrix, {VALIDATION_LABELS[other]}")
        _confusion_figure(page, validation[other], classes, VALIDATION_LABELS[other])


def _samples_section(page: HtmlReport, samples: dict) -> None:
    classes = samples["classes"]
    page.heading("Samples")
    page.table(["class", "value", "polygons", "samples used", "pixels available"],
               [[_class_label(c), c["value"], c["polygons"], c["samples"], c["available"]]
                for c in classes])
    page.paragraph(
        "Training layer: {features} features, {used} used; {outside} outside the raster, "
        "{null_class} without class, {repaired} repaired, {skipped_invalid} invalid and skipped, "
        "{no_pixel} covering no pixel centre. Pixels dropped: {nodata} nodata, {nonfinite} "
        "NaN/inf.".format(nodata=samples["dropped_nodata"],
                          nonfinite=samples["dropped_nonfinite"], **samples["vector"]))
    page.details("Samples per polygon", lambda p: p.table(
        ["fid", "class", "pixels", "samples used"],
        [[i["fid"], i["class"], i["pixels"], i["samples"]] for i in samples["features"]],
        left_columns=0))


def _model_section(page: HtmlReport, report: dict) -> None:
    page.heading("Model")
    page.paragraph(f"{report['algorithm']}; scaling: {report['scaling']}; seed {report['seed']}; "
                   f"trained in {report['training_seconds']} s.")
    page.table(["parameter", "value"],
               [[k, str(v)] for k, v in sorted(report["parameters"].items())], left_columns=2)
    bands = ", ".join(b or f"(band {i + 1})" for i, b in enumerate(report["band_names"]))
    page.paragraph(Markup(
        f"Input bands ({len(report['band_names'])}): {html.escape(bands)}<br>Raster: "
        f"<code>{html.escape(report['raster'])}</code><br>Pixel size: "
        f"{html.escape(str(report['pixel_size']))}"))
    check = report.get("onnx_check") or {}
    if check:
        page.paragraph(f"ONNX check: labels agree with scikit-learn on "
                       f"{100 * check['label_agreement']:.2f} % of {check['checked_pixels']} "
                       "training pixels; largest probability difference "
                       f"{check['max_probability_difference']:.2e}.")
    versions = ", ".join(f"{k} {v}" for k, v in report.get("versions", {}).items())
    page.paragraph(versions, css="small")


def render_html_report(report: dict) -> str:
    """Renders the training report as one self-contained HTML page (no external resources)."""
    samples = report["samples"]
    validation = report["validation"]
    page = HtmlReport(report["title"])
    page.paragraph(Markup(f"{html.escape(report['created'])} &middot; model "
                          f"<code>{html.escape(report['model'])}</code>"), css="small")
    page.notes(validation.get("notes", []), title="Warnings")
    _accuracy_section(page, validation)
    if validation.get("primary"):
        _per_class_section(page, validation, samples["classes"])
    _samples_section(page, samples)
    _model_section(page, report)
    page.raw(tradeoffs_html(report))
    return page.render()
