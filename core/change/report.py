"""Reports of the change algorithms, built on the shared report writer (:mod:`core.io.reports`).

Both reports have one skeleton: a JSON file of the whole result (NaN/inf as null, ``outputs``
listing the files written), an HTML page made of :class:`~core.io.reports.HtmlReport` headings,
paragraphs, tables and figures, and, for land-cover change, the same tables as CSV (cells safe
against formula injection). Files are written all or none.
"""

from __future__ import annotations

from html import escape
from typing import List, Optional

from ..io.reports import (
    HtmlReport, Markup, csv_text, fmt_value, json_text, line_chart, swatch, write_report_files,
)


def _page(title: str, created: str, about: str) -> HtmlReport:
    """A report page: the title, then when it was made and what it is about (escaped)."""
    page = HtmlReport(title)
    page.paragraph(Markup(f"<small>{escape(created)} &middot; {escape(about)}</small>"))
    return page


def _class(c: dict) -> Markup:
    return swatch(c["name"], c["color"])


def _scores(s: Optional[dict]) -> List[str]:
    s = s or {}
    return [fmt_value(s.get(k)) for k in ("f1", "precision", "recall")]


# --------------------------------------------------------------------------- training report


def write_training_report(report: dict, html_path: str, json_path: str) -> None:
    """Writes the change-model training report (HTML) and its JSON beside it."""
    outputs = {"html": html_path, "json": json_path}
    write_report_files([(json_path, json_text(dict(report, outputs=outputs)), "JSON report"),
                        (html_path, render_training_html(report), "HTML report")])


def render_training_html(report: dict) -> str:
    """The change-model training report as one HTML page."""
    page = _page(report["title"], report["created"], f"model {report['model']}")
    _validation_section(page, report)
    page.heading("Classes")
    page.table(["class", "value"], [[_class(c), c["value"]] for c in report["classes"]])
    page.heading("Pairs")
    page.table(["BEFORE", "AFTER", "labels", "labelled pixels per class"],
               [[p["before"], p["after"] + (" (resampled)" if p["after_resampled"] else ""),
                 str(p["labels"]), ", ".join(f"{k}: {n}" for k, n in p["label_counts"].items())]
                for p in report["pairs"]], left_columns=4)
    f = report["features"]
    page.heading("Features")
    page.paragraph(f"{len(f['names'])} features: groups {', '.join(f['groups'])}; windows "
                   f"{f['scales']}; bands per date: {', '.join(f['bands'])}.")
    if report.get("feature_importance"):
        page.table(["feature", "importance"], [[item["feature"], f"{item['importance']:.4f}"]
                                               for item in report["feature_importance"][:15]])
    s = report["samples"]
    page.heading("Model")
    page.paragraph(f"{report['algorithm']}; imbalance: {report['imbalance']}; scaling: "
                   f"{report['scaling']}; {s['total']} samples ({s['change']} change, at most "
                   f"{s['per_pair_cap']} per pair and class); seed {report['seed']}; trained in "
                   f"{report['training_seconds']} s.")
    check = report.get("onnx_check") or {}
    if check:
        page.paragraph(f"ONNX check: change probabilities agree with scikit-learn within "
                       f"{check['max_change_probability_difference']:.1e} on "
                       f"{check['checked_pixels']} training pixels.")
    return page.render()


def _validation_section(page: HtmlReport, report: dict) -> None:
    v = report["validation"]
    page.heading(f"Change detection accuracy (leave one {v['grouping']} out)")
    page.paragraph(Markup(
        f"Decision threshold on the change probability: <b>{v['threshold']:.2f}</b>, chosen to "
        "maximise the F1 of change over the pooled held-out predictions and stored in the model. "
        "Scores are weighted to the true share of change of each pair."))
    rows = [[Markup(f"{escape(p['name'])} <small>({escape(p['before'])})</small>"),
             f"{100 * p['change_share']:.2f} %", fmt_value(p.get("threshold_from_others"), 2)]
            + _scores(p.get("at_threshold_from_others") or p["at_threshold"])
            + [fmt_value(p["at_threshold"]["f1"]), fmt_value(p["at_0_5"]["f1"])]
            for p in v["per_pair"]]
    pooled = v["pooled"]
    rows.append(["all held-out pixels", "", f"{v['threshold']:.2f}"] + _scores(pooled)
                + [fmt_value(pooled["f1"]), fmt_value(v["pooled_at_0_5"]["f1"])])
    page.table(["held out", "change share", "threshold from other pairs", "F1", "precision",
                "recall", "F1 at stored threshold", "F1 at 0.5"], rows,
               row_classes=[None] * (len(rows) - 1) + ["primary"])
    if v.get("mean_pair_f1_threshold_from_others") is not None:
        page.paragraph(Markup(f"Mean F1 over held-out pairs, threshold chosen without the pair: "
                              f"<b>{v['mean_pair_f1_threshold_from_others']:.3f}</b>."))
    pixel = report.get("pixel_validation")
    if pixel:
        page.paragraph(f"For comparison, pixel-level {pixel['folds']}-fold validation "
                       f"(neighbouring pixels on both sides of the split, optimistic): F1 "
                       f"{fmt_value(pixel['f1'])}, precision {fmt_value(pixel['precision'])}, "
                       f"recall {fmt_value(pixel['recall'])}.")
    curve = v["f1_curve"]
    page.heading("F1 of change against the threshold (pooled held-out pixels)")
    step = max(1, len(curve["thresholds"]) // 12)
    labels = [f"{t:.2f}" if i % step == 0 else "" for i, t in enumerate(curve["thresholds"])]
    page.figure(line_chart(labels, {"F1 change": curve["f1"]},
                           "F1 of change against the decision threshold",
                           colours={"F1 change": "#d62728"}, y_label="F1"))


# ------------------------------------------------------------------------ land-cover change


def write_land_cover_reports(result: dict, html_path: Optional[str], json_path: Optional[str],
                             csv_path: Optional[str]) -> None:
    """Writes the land-cover change reports that have a path (all or none)."""
    write_report_files([(html_path, lambda: render_land_cover_html(result), "HTML report"),
                        (json_path, lambda: json_text(result), "JSON report"),
                        (csv_path, lambda: csv_text(render_csv_rows(result)), "CSV report")])


def render_land_cover_html(result: dict) -> str:
    """The land-cover change report as one self-contained HTML page."""
    classes = result["classes"]
    page = _page(result["title"], result["created"],
                 f"{len(result['maps'])} maps: {', '.join(result['dates'])}; CRS "
                 f"{result['crs']}; areas: {result['area_method']}")
    page.notes(result["notes"])
    page.paragraph(Markup(f"Compared area {result['compared_area_ha']:.2f} ha, of which "
                          f"<b>{result['changed_area_ha']:.2f} ha changed</b> between the first "
                          "and the last date."))
    page.heading("Class areas per date (ha)")
    page.figure(line_chart(result["dates"], {c["name"]: r["hectares"] for c, r in
                                             zip(classes, result["class_areas"])},
                           "Class areas per date", colours={c["name"]: c["color"]
                                                            for c in classes},
                           y_label="area (ha)"))
    page.table(["class"] + result["dates"], [[_class(c)] + [f"{v:.2f}" for v in r["hectares"]]
                                             for c, r in zip(classes, result["class_areas"])])
    for key, unit, digits in (("transition_hectares", "ha", 2),
                              ("transition_pixels", "pixels", 0)):
        page.heading(f"Transitions {result['dates'][0]} \u2192 {result['dates'][-1]} ({unit}; "
                     "rows = from, columns = to)")
        page.table(["from \\ to"] + [_class(c) for c in classes] + ["total"],
                   [[_class(c)] + [f"{v:.{digits}f}" for v in row] + [f"{sum(row):.{digits}f}"]
                    for c, row in zip(classes, result[key])])
    page.heading("Gains, losses and net change (ha)")
    page.table(["class", "gain", "loss", "net"],
               [[_class(c), f"{r['gain_ha']:.2f}", f"{r['loss_ha']:.2f}", f"{r['net_ha']:+.2f}"]
                for c, r in zip(classes, result["gains_losses"])])
    if result["nodata_transitions"]:
        page.heading("Pixels with nodata on the first or last date (not in the matrix)")
        page.table(["from", "to", "pixels", "ha"],
                   [[t["from_name"], t["to_name"], t["pixels"], f"{t['hectares']:.2f}"]
                    for t in result["nodata_transitions"]], left_columns=2)
    if result.get("focus"):
        _focus_section(page, result["focus"])
    page.heading("From-to raster legend")
    page.paragraph(f"Code: {result['code']}.")
    page.table(["code", "transition", "pixels", "ha"],
               [[t["code"], t["name"], t["pixels"], f"{t['hectares']:.2f}"]
                for t in result["transitions"]], left_columns=0)
    return page.render()


def _focus_section(page: HtmlReport, focus: dict) -> None:
    page.heading(f"Focus class: {focus['name']} ({focus['value']})")
    rows = []
    for i in focus["intervals"]:
        growth = i.get("annual_growth_rate")
        rows.append([i["from"], i["to"], f"{i['years']:.2f}", f"{i['area_from_ha']:.2f}",
                     f"{i['area_to_ha']:.2f}",
                     Markup("&ndash;") if growth is None else f"{100 * growth:.2f} %",
                     fmt_value(i.get("LCR"), 4), fmt_value(i.get("PGR"), 4),
                     fmt_value(i.get("LCRPGR"), 3)])
    page.table(["from", "to", "years", "area from (ha)", "area to (ha)", "annual growth", "LCR",
                "PGR", "LCRPGR"], rows, left_columns=2)
    page.paragraph(Markup(
        "<small>SDG indicator 11.3.1: LCR = ln(Urb<sub>t2</sub>/Urb<sub>t1</sub>)/y, PGR = "
        "ln(Pop<sub>t2</sub>/Pop<sub>t1</sub>)/y, LCRPGR = LCR/PGR (y: years between the "
        "dates). Annual growth: (A<sub>t2</sub>/A<sub>t1</sub>)<sup>1/y</sup> &minus; 1."
        "</small>"))
    page.notes(focus["notes"])


def render_csv_rows(result: dict) -> List[list]:
    """The CSV report as rows: sections separated by blank rows, each headed by a '#' line."""
    names = [c["name"] for c in result["classes"]]
    rows: List[list] = [["# Transition matrix, pixels (" + result["matrix_orientation"] + ")"],
                        ["from \\ to"] + names + ["total"]]
    for name, row in zip(names, result["transition_pixels"]):
        rows.append([name] + row + [sum(row)])
    rows += [[], ["# Transition matrix, hectares (" + result["matrix_orientation"] + ")"],
             ["from \\ to"] + names + ["total"]]
    for name, row in zip(names, result["transition_hectares"]):
        rows.append([name] + [f"{v:.4f}" for v in row] + [f"{sum(row):.4f}"])
    rows += [[], ["# Class areas per date, hectares"],
             ["class", "value"] + [f"{d} (ha)" for d in result["dates"]] +
             [f"{d} (pixels)" for d in result["dates"]]]
    for r in result["class_areas"]:
        rows.append([r["name"], r["value"]] + [f"{v:.4f}" for v in r["hectares"]] + r["pixels"])
    rows += [[], ["# Gains, losses and net change, first to last date, hectares"],
             ["class", "value", "gain_ha", "loss_ha", "net_ha"]]
    for r in result["gains_losses"]:
        rows.append([r["name"], r["value"], f"{r['gain_ha']:.4f}", f"{r['loss_ha']:.4f}",
                     f"{r['net_ha']:.4f}"])
    rows += [[], ["# From-to raster codes (" + result["code"] + ")"],
             ["code", "from", "to", "name", "pixels", "hectares"]]
    for t in result["transitions"]:
        rows.append([t["code"], t["from"], t["to"], t["name"], t["pixels"],
                     f"{t['hectares']:.4f}"])
    rows += [[], ["# Transitions from or to nodata (not in the matrix)"],
             ["from", "to", "pixels", "hectares"]]
    for t in result["nodata_transitions"]:
        rows.append([t["from_name"], t["to_name"], t["pixels"], f"{t['hectares']:.4f}"])
    focus = result.get("focus")
    if focus:
        rows += [[], [f"# Focus class {focus['value']} ({focus['name']})"],
                 ["from", "to", "years", "area_from_ha", "area_to_ha", "annual_growth_rate",
                  "population_from", "population_to", "LCR", "PGR", "LCRPGR"]]
        for i in focus["intervals"]:
            rows.append([i["from"], i["to"], f"{i['years']:.4f}", f"{i['area_from_ha']:.4f}",
                         f"{i['area_to_ha']:.4f}", _num(i.get("annual_growth_rate")),
                         _num(i.get("population_from"), 0), _num(i.get("population_to"), 0),
                         _num(i.get("LCR")), _num(i.get("PGR")), _num(i.get("LCRPGR"))])
    for note in result.get("notes", []) + (focus or {}).get("notes", []):
        rows.append(["# note", note])
    return rows


def _num(value, digits: int = 6) -> str:
    return "" if value is None else f"{value:.{digits}f}"
