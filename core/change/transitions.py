"""The land-cover change result from the pixel and area counts of :mod:`landcover`: classes,
transition matrices, the from-to code table, class areas, gains and losses, the focus class and
SDG indicator 11.3.1."""

from __future__ import annotations

import datetime
import math
import os
from typing import List, Sequence

import numpy as np

from ..errors import InputError, NoDataError
from ..io.classmap import ClassInfo, palette_color

#: Key of a (from, to) pair in the counts: (from + 1) * KEY + (to + 1); nodata is -1 -> 0.
KEY = 1 << 20


def sdg_11_3_1(urban: Sequence[float], population: Sequence[float], years: float) -> dict:
    """LCR, PGR and LCRPGR (UN SDG indicator 11.3.1) between two dates ``years`` apart."""
    notes = []
    lcr = pgr = ratio = None
    if years <= 0:
        notes.append("The dates are not in increasing order; rates are undefined.")
    elif urban[0] <= 0 or urban[1] <= 0:
        notes.append("The focus class has no area on one of the dates: LCR is undefined.")
    else:
        lcr = math.log(urban[1] / urban[0]) / years
    if years > 0:
        pgr = math.log(population[1] / population[0]) / years
        if pgr == 0:
            notes.append("The population did not change (PGR = 0): LCRPGR is undefined.")
        elif lcr is not None:
            ratio = lcr / pgr
    return {"LCR": lcr, "PGR": pgr, "LCRPGR": ratio, "years": years, "notes": notes}


def summarise(counts, names: dict, focus, pop, notes: List[str], warn) -> dict:
    """The result dictionary (also the JSON report) of a land-cover change run.

    Args:
        counts: the plan and counts of :mod:`landcover` (``maps``, ``dates``, ``date_source``,
            ``first``, ``per_date``, ``transitions``).
        names: class id -> (name, colour) from the maps' legends.
        focus, pop: the focus class id and population figures (or None).
        notes: notes so far; notes on classes missing from some dates are added.

    Raises:
        NoDataError: the maps hold nodata only, or no pixel is classified on both the first
            and the last map.
        InputError: the first and last maps share no class, or the focus class is absent.
    """
    values = _class_values(counts.per_date, names, notes, warn)
    classes = [ClassInfo(v, _name(v, names), names[v][1] if v in names else palette_color(k))
               for k, v in enumerate(values)]
    pixels, hectares, nodata_rows = _matrices(counts.transitions, values, names)
    if not pixels.any():
        raise NoDataError(
            "No pixel is classified on both the first and the last map: where one holds classes "
            "the other is nodata, so there is nothing to compare. Check that the maps cover the "
            "same area and that their nodata values are right.")
    dates = counts.dates
    labels = [d.isoformat() for d in dates] if dates else \
        [f"map {i + 1}" for i in range(len(counts.maps))]
    area_rows = [{"value": c.value, "name": c.name,
                  "pixels": [int(t.get(c.value, (0, 0))[0]) for t in counts.per_date],
                  "hectares": [t.get(c.value, (0, 0.0))[1] / 1e4 for t in counts.per_date]}
                 for c in classes]
    gains = hectares.sum(axis=0) - np.diag(hectares)
    losses = hectares.sum(axis=1) - np.diag(hectares)
    compact = max(values) > 99
    first = counts.first
    result = {
        "title": "LandFusion land-cover change report",
        "created": datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat(),
        "maps": [os.path.abspath(p) for p in counts.maps],
        "dates": labels, "date_source": counts.date_source if dates else None,
        "years_first_to_last": (dates[-1] - dates[0]).days / 365.25 if dates else None,
        "crs": first.crs.to_string() if first.crs else None,
        "pixel_size": [abs(first.transform.a), abs(first.transform.e)],
        "area_method": ("per-row cell area on the WGS 84 ellipsoid (geographic CRS)"
                        if first.crs and first.crs.is_geographic else "pixel width x height"),
        "classes": [c.to_dict() for c in classes],
        "matrix_orientation": "rows = from (first date), columns = to (last date)",
        "transition_pixels": pixels.tolist(),
        "transition_hectares": hectares.tolist(),
        "nodata_transitions": nodata_rows,
        "code": ("compact: codes 1..n, see the code table" if compact else
                 "from * 100 + to (e.g. 502 = class 5 to class 2)"),
        "transitions": _code_table(values, pixels, hectares, names, compact),
        "class_areas": area_rows,
        "gains_losses": [{"value": c.value, "name": c.name, "gain_ha": float(g),
                          "loss_ha": float(l_), "net_ha": float(g - l_)}
                         for c, g, l_ in zip(classes, gains, losses)],
        "compared_area_ha": float(hectares.sum()),
        "changed_area_ha": float(hectares.sum() - np.trace(hectares)),
        "notes": notes,
    }
    if focus is not None:
        result["focus"] = _focus(int(focus), values, area_rows, dates, labels, pop, names)
    return result


def _class_values(per_date: List[dict], names: dict, notes: List[str], warn) -> List[int]:
    """The class ids over all maps; notes the classes missing from some maps."""
    present = [sorted(v for v in table if v >= 0) for table in per_date]
    values = sorted(set().union(*present))
    if not values:
        raise NoDataError("The maps hold nodata only; nothing to compare.")
    if not set(present[0]) & set(present[-1]):
        raise InputError(
            f"The first and the last map share no class (first: {present[0]}, last: "
            f"{present[-1]}); they do not use one legend. Reclassify them to the same class ids.")
    for i, p in enumerate(present):
        missing = [v for v in values if v not in p]
        if missing:
            note = (f"Map {i + 1} has no pixel of class(es) "
                    f"{', '.join(_name(v, names) for v in missing)}; the classes are the union "
                    "over all maps.")
            notes.append(note)
            warn(note)
    return values


def _matrices(transitions: dict, values: List[int], names: dict) -> tuple:
    """Transition matrices in pixels and hectares (rows = from), and the rows from or to
    nodata."""
    index = {v: k for k, v in enumerate(values)}
    n = len(values)
    pixels = np.zeros((n, n), np.int64)
    hectares = np.zeros((n, n))
    nodata_rows = []
    for key, (count, area) in sorted(transitions.items()):
        f, t = key // KEY - 1, key % KEY - 1
        if f >= 0 and t >= 0:
            pixels[index[f], index[t]] += count
            hectares[index[f], index[t]] += area / 1e4
        else:
            nodata_rows.append({"from": None if f < 0 else f, "to": None if t < 0 else t,
                                "from_name": "nodata" if f < 0 else _name(f, names),
                                "to_name": "nodata" if t < 0 else _name(t, names),
                                "pixels": int(count), "hectares": area / 1e4})
    return pixels, hectares, nodata_rows


def _code_table(values: List[int], pixels, hectares, names: dict, compact: bool) -> List[dict]:
    """One row per observed transition: from-to code, classes, name, pixels, hectares."""
    n = len(values)
    observed = [(i, j) for i in range(n) for j in range(n) if pixels[i, j]]
    table = []
    for k, (i, j) in enumerate(observed, start=1):
        f, t = values[i], values[j]
        table.append({"code": k if compact else f * 100 + t, "from": f, "to": t,
                      "name": f"{_name(f, names)} \u2192 {_name(t, names)}" if f != t else
                      f"{_name(f, names)} (unchanged)",
                      "pixels": int(pixels[i, j]), "hectares": float(hectares[i, j])})
    return table


def _name(value, names) -> str:
    return names[value][0] if value in names else f"class {value}"


def _focus(focus, values, area_rows, dates, labels, pop, names) -> dict:
    if focus not in values:
        raise InputError(f"FOCUS_CLASS {focus} does not occur in the maps (classes: "
                         f"{', '.join(map(str, values))}).")
    areas = next(r["hectares"] for r in area_rows if r["value"] == focus)
    out = {"value": focus, "name": _name(focus, names), "dates": labels, "area_ha": areas,
           "intervals": [], "notes": []}
    if not dates:
        out["notes"].append("Without dates, growth rates per year are not computed.")
        return out
    pairs = list(zip(range(len(dates) - 1), range(1, len(dates))))
    if len(dates) > 2:
        pairs.append((0, len(dates) - 1))
    for i, j in pairs:
        years = (dates[j] - dates[i]).days / 365.25
        entry = {"from": labels[i], "to": labels[j], "years": years,
                 "area_from_ha": areas[i], "area_to_ha": areas[j],
                 "annual_growth_rate": ((areas[j] / areas[i]) ** (1 / years) - 1
                                        if areas[i] > 0 and years > 0 else None)}
        if pop:
            entry["population_from"], entry["population_to"] = pop[i], pop[j]
            entry.update({k: v for k, v in sdg_11_3_1((areas[i], areas[j]), (pop[i], pop[j]),
                                                      years).items()})
            for note in entry.get("notes", []):
                out["notes"].append(f"{labels[i]} to {labels[j]}: {note}")
        out["intervals"].append(entry)
    return out


def transition_classes(result: dict) -> List[ClassInfo]:
    """Legend of the from-to raster: one class per observed transition (code, name, colour)."""
    colours = {c["value"]: ClassInfo.from_dict(c).color for c in result["classes"]}
    out = []
    for t in result["transitions"]:
        colour = colours[t["to"]]
        if t["from"] == t["to"]:  # unchanged: the class colour faded towards white
            colour = tuple(int(0.35 * c + 0.65 * 255) for c in colour)
        out.append(ClassInfo(t["code"], t["name"], colour))
    return out
