"""HTML and CSV renderings of the land-cover change result (see :mod:`landcover`)."""

from __future__ import annotations

import html
from typing import List

from .report import fmt, line_chart, page, swatch


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


def _swatch(c: dict) -> str:
    return swatch(c)


def render_html(result: dict) -> str:
    """The land-cover change report as one self-contained HTML page."""
    e = html.escape
    classes = result["classes"]
    body = [f"<p><small>{e(result['created'])} &middot; {len(result['maps'])} maps: "
            f"{e(', '.join(result['dates']))}; CRS {e(str(result['crs']))}; areas: "
            f"{e(result['area_method'])}</small></p>"]
    for note in result["notes"]:
        body.append(f"<div class='notes'>{e(note)}</div>")
    body.append(f"<p>Compared area {result['compared_area_ha']:.2f} ha, of which "
                f"<b>{result['changed_area_ha']:.2f} ha changed</b> between the first and the last "
                "date.</p>")
    body.append("<h2>Class areas per date (ha)</h2>")
    series = [{"name": c["name"], "color": c["color"], "values": r["hectares"]}
              for c, r in zip(classes, result["class_areas"])]
    body.append(line_chart(series, result["dates"], "area (ha)", "Class areas per date"))
    body.append("<table><tr><th class='l'>class</th>" +
                "".join(f"<th>{e(d)}</th>" for d in result["dates"]) + "</tr>")
    for c, r in zip(classes, result["class_areas"]):
        body.append(f"<tr><td class='l'>{_swatch(c)}</td>" +
                    "".join(f"<td>{v:.2f}</td>" for v in r["hectares"]) + "</tr>")
    body.append("</table>")
    for key, unit, digits in (("transition_hectares", "ha", 2), ("transition_pixels", "pixels",
                                                                 0)):
        body.append(f"<h2>Transitions {e(result['dates'][0])} &rarr; {e(result['dates'][-1])} "
                    f"({unit}; rows = from, columns = to)</h2><table><tr><th class='l'>from \\ to"
                    "</th>" + "".join(f"<th>{_swatch(c)}</th>" for c in classes) +
                    "<th>total</th></tr>")
        for c, row in zip(classes, result[key]):
            cells = "".join(f"<td>{v:.{digits}f}</td>" for v in row)
            body.append(f"<tr><td class='l'>{_swatch(c)}</td>{cells}"
                        f"<td>{sum(row):.{digits}f}</td></tr>")
        body.append("</table>")
    body.append("<h2>Gains, losses and net change (ha)</h2><table><tr><th class='l'>class</th>"
                "<th>gain</th><th>loss</th><th>net</th></tr>")
    for c, r in zip(classes, result["gains_losses"]):
        body.append(f"<tr><td class='l'>{_swatch(c)}</td><td>{r['gain_ha']:.2f}</td>"
                    f"<td>{r['loss_ha']:.2f}</td><td>{r['net_ha']:+.2f}</td></tr>")
    body.append("</table>")
    if result["nodata_transitions"]:
        body.append("<h2>Pixels with nodata on the first or last date (not in the matrix)</h2>"
                    "<table><tr><th class='l'>from</th><th class='l'>to</th><th>pixels</th>"
                    "<th>ha</th></tr>")
        for t in result["nodata_transitions"]:
            body.append(f"<tr><td class='l'>{e(t['from_name'])}</td><td class='l'>"
                        f"{e(t['to_name'])}</td><td>{t['pixels']}</td>"
                        f"<td>{t['hectares']:.2f}</td></tr>")
        body.append("</table>")
    focus = result.get("focus")
    if focus:
        body.append(f"<h2>Focus class: {e(focus['name'])} ({focus['value']})</h2>")
        body.append("<table><tr><th class='l'>from</th><th class='l'>to</th><th>years</th>"
                    "<th>area from (ha)</th><th>area to (ha)</th><th>annual growth</th>"
                    "<th>LCR</th><th>PGR</th><th>LCRPGR</th></tr>")
        for i in focus["intervals"]:
            growth = i.get("annual_growth_rate")
            body.append(f"<tr><td class='l'>{e(i['from'])}</td><td class='l'>{e(i['to'])}</td>"
                        f"<td>{i['years']:.2f}</td><td>{i['area_from_ha']:.2f}</td>"
                        f"<td>{i['area_to_ha']:.2f}</td>"
                        f"<td>{'&ndash;' if growth is None else f'{100 * growth:.2f} %'}</td>"
                        f"<td>{fmt(i.get('LCR'), 4)}</td><td>{fmt(i.get('PGR'), 4)}</td>"
                        f"<td>{fmt(i.get('LCRPGR'), 3)}</td></tr>")
        body.append("</table><p><small>SDG indicator 11.3.1: LCR = ln(Urb<sub>t2</sub>/"
                    "Urb<sub>t1</sub>)/y, PGR = ln(Pop<sub>t2</sub>/Pop<sub>t1</sub>)/y, "
                    "LCRPGR = LCR/PGR (y: years between the dates). Annual growth: "
                    "(A<sub>t2</sub>/A<sub>t1</sub>)<sup>1/y</sup> &minus; 1.</small></p>")
        for note in focus["notes"]:
            body.append(f"<div class='notes'>{e(note)}</div>")
    body.append(f"<h2>From-to raster legend</h2><p>Code: {e(result['code'])}.</p><table><tr>"
                "<th>code</th><th class='l'>transition</th><th>pixels</th><th>ha</th></tr>")
    for t in result["transitions"]:
        body.append(f"<tr><td>{t['code']}</td><td class='l'>{e(t['name'])}</td>"
                    f"<td>{t['pixels']}</td><td>{t['hectares']:.2f}</td></tr>")
    body.append("</table>")
    return page(result["title"], body)
