"""Post-classification change: transitions between class maps, class areas and SDG 11.3.1.

The first map defines the grid; later maps are warped onto it with nearest-neighbour resampling.
One pass over the maps, block by block, counts the pixels and areas of every class on every date
and of every from-to pair between the first and the last date; a second pass writes the from-to
raster.

From-to code: ``from * 100 + to`` when every class id is below 100 (e.g. 502 = class 5 to class
2; 505 = class 5 unchanged). With larger ids, transitions are numbered 1, 2, ... in the order of
(from, to) and the code table (in the legend, the JSON and the CSV) gives each code's classes.
Pixels that are nodata on the first or the last date are nodata in the from-to raster and are
reported separately (from nodata / to nodata), never mixed into the matrix.

Class sets: a class may exist on some dates only (land that becomes built-up, a new lake): the
classes are the union over all maps, and a note names the classes missing from some dates. Maps
whose legends disagree (the same id named differently) or that share no class at all are refused:
they are not classifications of the same legend.

Areas are in hectares: pixel width x height for projected CRSs (in metres), and for geographic
CRSs the exact area of each row's cells on a sphere of the authalic radius (6 371 007 m).
"""

from __future__ import annotations

import contextlib
import datetime
import math
import os
import re
from typing import List, Optional, Sequence

import numpy as np

from ..errors import InputError, NoDataError
from ..io import raster as raster_io
from ..io.outputs import check_writable, remove_outputs
from ..io.classmap import ClassInfo, palette_color, read_class_styling
from ..runtime import (
    IsCancelled, Log, Progress, check_cancelled, never_cancelled, no_log, no_progress, sub_progress,
)
from .pairs import check_overlap, warped_on

AUTHALIC_RADIUS = 6371007.181
_KEY = 1 << 20  # key = (from + 1) * _KEY + (to + 1); nodata is -1 -> 0


def parse_dates(text: Optional[str], count: int) -> Optional[List[datetime.date]]:
    """Parses comma-separated ISO dates (``2016-07-01`` or ``20160701``), one per map."""
    if not text or not str(text).strip():
        return None
    items = [t.strip() for t in re.split(r"[,;\s]+", str(text).strip()) if t.strip()]
    if len(items) != count:
        raise InputError(f"{len(items)} date(s) given for {count} maps; give one ISO date per map "
                         "(e.g. 2016-07-01,2021-07-01).")
    return [_parse_date(t) for t in items]


def _parse_date(text: str) -> datetime.date:
    for fmt in ("%Y-%m-%d", "%Y%m%d", "%Y-%m", "%Y"):
        try:
            return datetime.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise InputError(f"'{text}' is not a date; use ISO dates such as 2016-07-01.")


def dates_from_names(paths: Sequence[str], datasets) -> tuple:
    """Dates read from file names, else from GDAL metadata; (dates or None, source)."""
    from ..sensors.sentinel1 import date_from_text

    found = [date_from_text(os.path.basename(p)) for p in paths]
    if all(found):
        return [_parse_date(d) for d in found], "file names"
    found = []
    for ds in datasets:
        tags = ds.tags()
        text = next((str(tags[k]) for k in ("DATE", "ACQUISITION_DATE", "date",
                                            "TIFFTAG_DATETIME") if k in tags), "")
        found.append(date_from_text(text.replace(":", "-", 2) if text[4:5] == ":" else text))
    if all(found):
        return [_parse_date(d) for d in found], "raster metadata"
    return None, None


def parse_population(text: Optional[str], count: int) -> Optional[List[float]]:
    """Parses comma-separated population figures, one per map, all positive."""
    if text is None or not str(text).strip():
        return None
    items = [t.strip() for t in re.split(r"[;,\s]+", str(text).strip()) if t.strip()]
    if len(items) != count:
        raise InputError(f"{len(items)} population figure(s) for {count} maps; give one per "
                         "map, in the same order.")
    try:
        values = [float(t) for t in items]
    except ValueError as exc:
        raise InputError(f"Population figures must be numbers ({exc}).") from exc
    if any(not math.isfinite(v) or v <= 0 for v in values):
        raise InputError("Population figures must be positive numbers.")
    return values


def row_areas(dataset) -> np.ndarray:
    """Area, in m², of one pixel of each row of ``dataset``'s grid."""
    t = dataset.transform
    if t.b != 0 or t.d != 0:
        raise InputError("Rotated grids are not supported; warp the first map to a north-up grid.")
    crs = dataset.crs
    if crs is None:
        raise InputError("The first map has no CRS, so areas cannot be computed; assign one.")
    if crs.is_geographic:
        lat_top = t.f + t.e * np.arange(dataset.height)
        lat_bottom = lat_top + t.e
        return (AUTHALIC_RADIUS ** 2 * abs(math.radians(t.a)) *
                np.abs(np.sin(np.radians(lat_top)) - np.sin(np.radians(lat_bottom))))
    factor = crs.linear_units_factor[1] if crs.linear_units_factor else 1.0
    return np.full(dataset.height, abs(t.a * t.e) * factor * factor)


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


def land_cover_change(
    maps: Sequence[str],
    output_path: Optional[str] = None,
    html_path: Optional[str] = None,
    json_path: Optional[str] = None,
    csv_path: Optional[str] = None,
    dates: Optional[str] = None,
    focus_class: Optional[int] = None,
    population: Optional[str] = None,
    memory_mb: float = raster_io.DEFAULT_MEMORY_MB,
    progress: Progress = no_progress,
    is_cancelled: IsCancelled = never_cancelled,
    log: Log = no_log,
    warn: Log = no_log,
) -> dict:
    """Compares class maps in time order: transitions, areas, gains/losses, SDG 11.3.1.

    Args:
        maps: class rasters (integer values, same legend), oldest first.
        output_path: from-to raster (first -> last), styled with a legend.
        html_path, json_path, csv_path: reports.
        dates: ISO dates, one per map; default: from the file names, then raster metadata.
        focus_class: class id followed over time (e.g. built-up).
        population: population per date (for SDG 11.3.1; needs ``focus_class`` and dates).

    Returns:
        The result dictionary written to the JSON report.
    """
    maps = list(maps or [])
    if len(maps) < 2:
        raise InputError("Give at least two class maps, oldest first.")
    outputs = [p for p in (output_path, html_path, json_path, csv_path) if p]
    if not outputs:
        raise InputError("Choose at least one output (from-to raster or a report).")
    real_inputs = {os.path.realpath(p): p for p in maps}
    if len(real_inputs) != len(maps):
        raise InputError("The same map is given twice; give one map per date.")
    seen = set()
    for p in outputs:
        check_writable(p, "Output")
        real = os.path.realpath(p)
        if real in real_inputs:
            raise InputError(f"The output '{p}' is also an input map; choose another file name.")
        if real in seen:
            raise InputError(f"'{p}' is chosen for two outputs; give each output its own file.")
        seen.add(real)
    pop = parse_population(population, len(maps))
    if pop and focus_class is None:
        raise InputError("POPULATION needs FOCUS_CLASS (the built-up class) for SDG 11.3.1.")
    parsed_dates = parse_dates(dates, len(maps))
    notes = []
    with contextlib.ExitStack() as stack:
        stack.enter_context(raster_io.gdal_env())
        datasets = [stack.enter_context(raster_io.open_raster(p, f"Map {i + 1}"))
                    for i, p in enumerate(maps)]
        first = datasets[0]
        date_source = "DATES"
        if parsed_dates is None:
            parsed_dates, date_source = dates_from_names(maps, datasets)
            if parsed_dates is None:
                if pop:
                    raise InputError("SDG 11.3.1 needs the date of each map, and no date was "
                                     "found in the file names or metadata; give DATES.")
                notes.append("No dates were given or found in the file names; rates per year "
                             "are not computed.")
                warn(notes[-1])
            else:
                log(f"Dates from the {date_source}: "
                    f"{', '.join(d.isoformat() for d in parsed_dates)}.")
        if parsed_dates and any(b <= a for a, b in zip(parsed_dates, parsed_dates[1:])):
            raise InputError("The maps must be in time order with distinct dates (got "
                             f"{', '.join(d.isoformat() for d in parsed_dates)}); reorder them "
                             "or fix DATES.")
        for i, ds in enumerate(datasets):
            if ds.count != 1:
                warn(f"Map {i + 1} has {ds.count} bands; band 1 is used.")
            if np.dtype(ds.dtypes[0]).kind == "f":
                raise InputError(f"Map {i + 1} ('{maps[i]}') holds floating-point values; a class "
                                 "map holds integer class ids.")
        readers, nodata = [], []
        for i, ds in enumerate(datasets):
            if i:
                coverage = check_overlap(first, ds, maps[0], maps[i])
                if coverage < 0.999:
                    warn(f"Map {i + 1} covers {100 * coverage:.1f} % of the first map; pixels "
                         "outside are nodata on that date.")
            reader = warped_on(first, ds, True, stack)
            readers.append(reader)
            nd = ds.nodata if reader is ds else (ds.nodata if ds.nodata is not None else -1)
            nodata.append(None if nd is None else int(nd))
        names = _legend(maps, datasets)
        areas_m2 = row_areas(first)
        blocks = raster_io.plan_blocks(first.width, first.height, 8 * (len(maps) + 4),
                                       memory_mb / 2)
        per_date = [dict() for _ in maps]
        transitions = {}
        for k, block in enumerate(blocks):
            check_cancelled(is_cancelled)
            weight = np.repeat(areas_m2[block.row_off:block.row_off + block.height],
                               block.width)
            layers = []
            for i, reader in enumerate(readers):
                values = reader.read(1, window=block.window).astype(np.int64).ravel()
                if nodata[i] is not None:
                    values[values == nodata[i]] = -1
                layers.append(values)
                _accumulate(per_date[i], values, weight)
            keys = (layers[0] + 1) * _KEY + (layers[-1] + 1)
            _accumulate(transitions, keys, weight)
            progress(0.6 * (k + 1) / len(blocks) if output_path else (k + 1) / len(blocks))
        result = _summarise(maps, parsed_dates, date_source, per_date, transitions, names,
                            focus_class, pop, first, notes, warn)
        if output_path:
            _write_from_to(output_path, first, readers, nodata, result, blocks,
                           sub_progress(progress, 0.6, 0.95), is_cancelled)
    from .report import write_texts, json_text, csv_text
    from .landcover_report import render_csv_rows, render_html

    out = {"raster": output_path, "html": html_path, "json": json_path, "csv": csv_path}
    result["outputs"] = {k: v for k, v in out.items() if v}
    try:
        write_texts([(html_path, render_html(result) if html_path else "", "HTML report"),
                     (json_path, json_text(result, result["outputs"]) if json_path else "",
                      "JSON report"),
                     (csv_path, csv_text(render_csv_rows(result)) if csv_path else "",
                      "CSV report")])
    except BaseException:
        if output_path:
            remove_outputs([output_path, os.path.splitext(output_path)[0] + ".qml"])
        raise
    progress(1.0)
    log(f"{len(result['transitions'])} transitions between {len(result['classes'])} classes; "
        f"{result['changed_area_ha']:.2f} ha changed of {result['compared_area_ha']:.2f} ha "
        "compared.")
    return result


def _accumulate(table: dict, keys: np.ndarray, weight: np.ndarray) -> None:
    unique, inverse = np.unique(keys, return_inverse=True)
    counts = np.bincount(inverse)
    areas = np.bincount(inverse, weights=weight)
    for u, c, a in zip(unique.tolist(), counts.tolist(), areas.tolist()):
        old = table.get(u, (0, 0.0))
        table[u] = (old[0] + c, old[1] + a)


def _legend(paths, datasets) -> dict:
    names = {}
    source = {}
    for i, (path, ds) in enumerate(zip(paths, datasets)):
        try:
            styled = read_class_styling(path)
        except InputError:
            styled = []
        for c in styled:
            if c.value in names and names[c.value][0].strip().lower() != c.name.strip().lower():
                raise InputError(
                    f"The maps' legends disagree: class {c.value} is '{names[c.value][0]}' in map "
                    f"{source[c.value] + 1} but '{c.name}' in map {i + 1}. Reclassify the maps to "
                    "one legend first.")
            if c.value not in names:
                names[c.value] = (c.name, c.color)
                source[c.value] = i
    return names


def _summarise(maps, dates, date_source, per_date, transitions, names, focus, pop, first, notes,
               warn) -> dict:
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
    classes = [ClassInfo(v, _name(v, names), names[v][1] if v in names else palette_color(k))
               for k, v in enumerate(values)]
    index = {v: k for k, v in enumerate(values)}
    n = len(values)
    pixels = np.zeros((n, n), np.int64)
    hectares = np.zeros((n, n))
    nodata_rows = []
    for key, (count, area) in sorted(transitions.items()):
        f, t = key // _KEY - 1, key % _KEY - 1
        if f >= 0 and t >= 0:
            pixels[index[f], index[t]] += count
            hectares[index[f], index[t]] += area / 1e4
        else:
            nodata_rows.append({"from": None if f < 0 else f, "to": None if t < 0 else t,
                                "from_name": "nodata" if f < 0 else _name(f, names),
                                "to_name": "nodata" if t < 0 else _name(t, names),
                                "pixels": int(count), "hectares": area / 1e4})
    labels = [d.isoformat() for d in dates] if dates else [f"map {i + 1}" for i in range(len(maps))]
    area_rows = []
    for c in classes:
        area_rows.append({"value": c.value, "name": c.name,
                          "pixels": [int(t.get(c.value, (0, 0))[0]) for t in per_date],
                          "hectares": [t.get(c.value, (0, 0.0))[1] / 1e4 for t in per_date]})
    gains = hectares.sum(axis=0) - np.diag(hectares)
    losses = hectares.sum(axis=1) - np.diag(hectares)
    compact = max(values) > 99
    observed = [(values[i], values[j]) for i in range(n) for j in range(n) if pixels[i, j]]
    table = []
    for k, (f, t) in enumerate(observed, start=1):
        code = k if compact else f * 100 + t
        table.append({"code": code, "from": f, "to": t,
                      "name": f"{_name(f, names)} \u2192 {_name(t, names)}" if f != t else
                      f"{_name(f, names)} (unchanged)",
                      "pixels": int(pixels[index[f], index[t]]),
                      "hectares": float(hectares[index[f], index[t]])})
    years = None
    if dates:
        years = (dates[-1] - dates[0]).days / 365.25
    result = {
        "title": "LandFusion land-cover change report",
        "created": datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat(),
        "maps": [os.path.abspath(p) for p in maps],
        "dates": labels, "date_source": date_source if dates else None,
        "years_first_to_last": years,
        "crs": first.crs.to_string() if first.crs else None,
        "pixel_size": [abs(first.transform.a), abs(first.transform.e)],
        "area_method": ("per-row cell area on the authalic sphere (geographic CRS)"
                        if first.crs and first.crs.is_geographic else "pixel width x height"),
        "classes": [c.to_dict() for c in classes],
        "matrix_orientation": "rows = from (first date), columns = to (last date)",
        "transition_pixels": pixels.tolist(),
        "transition_hectares": hectares.tolist(),
        "nodata_transitions": nodata_rows,
        "code": ("compact: codes 1..n, see the code table" if compact else
                 "from * 100 + to (e.g. 502 = class 5 to class 2)"),
        "transitions": table,
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


def _write_from_to(path, first, readers, nodata, result, blocks, progress, is_cancelled) -> None:
    from ..io.class_writer import ClassificationWriter

    classes = transition_classes(result)
    lookup = {(t["from"], t["to"]): t["code"] for t in result["transitions"]}
    keys = np.array([(f + 1) * _KEY + (t + 1) for f, t in lookup], np.int64)
    codes = np.array(list(lookup.values()), np.int64)
    order = np.argsort(keys)
    keys, codes = keys[order], codes[order]
    out_nodata = 65535 if max(codes) > 254 else 255
    with ClassificationWriter(first, classes, path, nodata=out_nodata) as writer:
        for k, block in enumerate(blocks):
            check_cancelled(is_cancelled)
            a = readers[0].read(1, window=block.window).astype(np.int64)
            b = readers[-1].read(1, window=block.window).astype(np.int64)
            valid = np.ones(a.shape, bool)
            for values, nd in ((a, nodata[0]), (b, nodata[-1])):
                if nd is not None:
                    valid &= values != nd
            key = (a + 1) * _KEY + (b + 1)
            position = np.clip(np.searchsorted(keys, key), 0, len(keys) - 1)
            labels = codes[position]
            valid &= keys[position] == key
            writer.write(block.window, labels, valid)
            progress((k + 1) / len(blocks))
