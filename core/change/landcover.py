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

Areas are in hectares, computed like the accuracy report's
(:func:`~landfusion.core.accuracy.areas.row_pixel_areas_ha`): pixel width x height for projected
CRSs (in their linear unit), and for geographic CRSs the exact area of each row's cells on the
WGS 84 ellipsoid.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import math
import os
import re
from dataclasses import dataclass, field
from typing import List, Optional, Sequence

import numpy as np

from ..accuracy.areas import row_pixel_areas_ha
from ..errors import InputError
from ..io import raster as raster_io
from ..io.classmap import read_class_styling
from ..io.outputs import check_writable, remove_outputs
from ..runtime import (
    IsCancelled, Log, Progress, check_cancelled, never_cancelled, no_log, no_progress, sub_progress,
)
from .pairs import check_overlap, warped_on
from .transitions import KEY, summarise, transition_classes

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


@dataclass
class LandCoverOptions:
    """What to compare and write (see :func:`land_cover_change` for each option).

    :meth:`validated` returns a checked copy with the parsed dates and population figures, or
    raises :class:`InputError` naming the bad option; the algorithm's check and the run both
    use it.
    """

    maps: Sequence[str] = ()
    dates: Optional[str] = None
    focus_class: Optional[int] = None
    population: Optional[str] = None
    memory_mb: float = raster_io.DEFAULT_MEMORY_MB
    #: Filled by :meth:`validated`.
    parsed_dates: Optional[List[datetime.date]] = None
    parsed_population: Optional[List[float]] = None

    def validated(self) -> "LandCoverOptions":
        """Returns a checked copy; opens no file.

        Raises:
            InputError: naming the option and the fix.
        """
        o = dataclasses.replace(self, maps=list(self.maps or []))
        if len(o.maps) < 2:
            raise InputError("Give at least two class maps, oldest first.")
        if len({os.path.realpath(p) for p in o.maps}) != len(o.maps):
            raise InputError("The same map is given twice; give one map per date.")
        o.parsed_population = parse_population(o.population, len(o.maps))
        if o.parsed_population and o.focus_class is None:
            raise InputError("POPULATION needs FOCUS_CLASS (the built-up class) for SDG 11.3.1.")
        o.parsed_dates = parse_dates(o.dates, len(o.maps))
        return o

    def check_outputs(self, outputs: Sequence[Optional[str]]) -> None:
        """Checks that at least one output is chosen, each writable, none an input or twice.

        Raises:
            InputError, OutputError: naming the output.
        """
        outputs = [p for p in outputs if p]
        if not outputs:
            raise InputError("Choose at least one output (from-to raster or a report).")
        inputs = {os.path.realpath(p) for p in self.maps}
        seen = set()
        for p in outputs:
            check_writable(p, "Output")
            real = os.path.realpath(p)
            if real in inputs:
                raise InputError(f"The output '{p}' is also an input map; choose another file "
                                 "name.")
            if real in seen:
                raise InputError(f"'{p}' is chosen for two outputs; give each output its own "
                                 "file.")
            seen.add(real)


@dataclass
class MapsPlan:
    """The maps on the first map's grid, decided before a pixel is read; the counts of the
    counting pass are added to it."""

    maps: List[str]
    first: object
    readers: list
    nodata: List[Optional[int]]
    names: dict
    dates: Optional[List[datetime.date]]
    date_source: Optional[str]
    blocks: list
    areas_m2: np.ndarray
    notes: List[str] = field(default_factory=list)
    per_date: List[dict] = field(default_factory=list)
    transitions: dict = field(default_factory=dict)


def check_land_cover(**options) -> LandCoverOptions:
    """Checks the options of :func:`land_cover_change` without opening a map."""
    return LandCoverOptions(**options).validated()


def land_cover_change(
    maps: Sequence[str],
    output_path: Optional[str] = None,
    html_path: Optional[str] = None,
    json_path: Optional[str] = None,
    csv_path: Optional[str] = None,
    progress: Progress = no_progress,
    is_cancelled: IsCancelled = never_cancelled,
    log: Log = no_log,
    warn: Log = no_log,
    **options,
) -> dict:
    """Compares class maps in time order: transitions, areas, gains/losses, SDG 11.3.1.

    Args:
        maps: class rasters (integer values, same legend), oldest first.
        output_path: from-to raster (first -> last), styled with a legend.
        html_path, json_path, csv_path: reports.
        options: the fields of :class:`LandCoverOptions`: ``dates`` (ISO dates, one per map;
            default: from the file names, then raster metadata), ``focus_class`` (class id
            followed over time, e.g. built-up), ``population`` (population per date, for SDG
            11.3.1; needs ``focus_class`` and dates), ``memory_mb``.

    Returns:
        The result dictionary written to the JSON report.
    """
    o = LandCoverOptions(maps=maps, **options).validated()
    o.check_outputs([output_path, html_path, json_path, csv_path])
    with contextlib.ExitStack() as stack:
        stack.enter_context(raster_io.gdal_env())
        plan = plan_maps(o, stack, log, warn)
        count_pass(plan, progress if not output_path else sub_progress(progress, 0.0, 0.6),
                   is_cancelled)
        result = summarise(plan, plan.names, o.focus_class, o.parsed_population, plan.notes, warn)
        if output_path:
            _write_from_to(output_path, plan.first, plan.readers, plan.nodata, result,
                           plan.blocks, sub_progress(progress, 0.6, 0.95), is_cancelled)
    result["outputs"] = {k: v for k, v in {"raster": output_path, "html": html_path,
                                            "json": json_path, "csv": csv_path}.items() if v}
    _write_reports(result, output_path, html_path, json_path, csv_path)
    progress(1.0)
    log(f"{len(result['transitions'])} transitions between {len(result['classes'])} classes; "
        f"{result['changed_area_ha']:.2f} ha changed of {result['compared_area_ha']:.2f} ha "
        "compared.")
    return result


def plan_maps(o: LandCoverOptions, stack: contextlib.ExitStack, log: Log, warn: Log) -> MapsPlan:
    """Opens the maps (inside ``stack``), finds their dates and puts them on the first grid.

    Raises:
        InputError, NoOverlapError: dates out of order, float maps, maps that do not overlap.
    """
    datasets = [stack.enter_context(raster_io.open_raster(p, f"Map {i + 1}"))
                for i, p in enumerate(o.maps)]
    notes: List[str] = []
    dates, date_source = _map_dates(o, datasets, notes, log, warn)
    for i, ds in enumerate(datasets):
        if ds.count != 1:
            warn(f"Map {i + 1} has {ds.count} bands; band 1 is used.")
        if np.dtype(ds.dtypes[0]).kind == "f":
            raise InputError(f"Map {i + 1} ('{o.maps[i]}') holds floating-point values; a class "
                             "map holds integer class ids.")
    first = datasets[0]
    readers, nodata = [], []
    for i, ds in enumerate(datasets):
        if i:
            coverage = check_overlap(first, ds, o.maps[0], o.maps[i])
            if coverage < 0.999:
                warn(f"Map {i + 1} covers {100 * coverage:.1f} % of the first map; pixels "
                     "outside are nodata on that date.")
        reader = warped_on(first, ds, True, stack)
        readers.append(reader)
        nd = ds.nodata if reader is ds else (ds.nodata if ds.nodata is not None else -1)
        nodata.append(None if nd is None else int(nd))
    names = _legend(o.maps, datasets)
    areas_m2 = row_pixel_areas_ha(first) * 1e4
    blocks = raster_io.plan_blocks(first.width, first.height, 8 * (len(o.maps) + 4),
                                   o.memory_mb / 2)
    return MapsPlan(list(o.maps), first, readers, nodata, names, dates, date_source, blocks,
                    areas_m2, notes)


def _map_dates(o: LandCoverOptions, datasets, notes: List[str], log: Log, warn: Log) -> tuple:
    """The maps' dates (given, from file names or metadata, or None) and where they came from."""
    dates, source = o.parsed_dates, "DATES"
    if dates is None:
        dates, source = dates_from_names(o.maps, datasets)
        if dates is None:
            if o.parsed_population:
                raise InputError("SDG 11.3.1 needs the date of each map, and no date was "
                                 "found in the file names or metadata; give DATES.")
            notes.append("No dates were given or found in the file names; rates per year "
                         "are not computed.")
            warn(notes[-1])
        else:
            log(f"Dates from the {source}: {', '.join(d.isoformat() for d in dates)}.")
    if dates and any(b <= a for a, b in zip(dates, dates[1:])):
        raise InputError("The maps must be in time order with distinct dates (got "
                         f"{', '.join(d.isoformat() for d in dates)}); reorder them "
                         "or fix DATES.")
    return dates, source


def count_pass(plan: MapsPlan, progress: Progress, is_cancelled: IsCancelled) -> None:
    """Counts pixels and areas per class and date, and per (first, last) pair, block by block."""
    plan.per_date = [dict() for _ in plan.maps]
    plan.transitions = {}
    for k, block in enumerate(plan.blocks):
        check_cancelled(is_cancelled)
        count_block(plan, block)
        progress((k + 1) / len(plan.blocks))


def count_block(plan: MapsPlan, block) -> None:
    """Adds one block's pixels and areas to the plan's tables."""
    weight = np.repeat(plan.areas_m2[block.row_off:block.row_off + block.height], block.width)
    layers = []
    for i, reader in enumerate(plan.readers):
        values = reader.read(1, window=block.window).astype(np.int64).ravel()
        if plan.nodata[i] is not None:
            values[values == plan.nodata[i]] = -1
        layers.append(values)
        _accumulate(plan.per_date[i], values, weight)
    _accumulate(plan.transitions, (layers[0] + 1) * KEY + (layers[-1] + 1), weight)


def _write_reports(result: dict, output_path, html_path, json_path, csv_path) -> None:
    """Writes the reports (all or none); on failure the from-to raster is removed too."""
    from .report import write_land_cover_reports

    try:
        write_land_cover_reports(result, html_path, json_path, csv_path)
    except BaseException:
        if output_path:
            remove_outputs([output_path, os.path.splitext(output_path)[0] + ".qml"])
        raise


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


def _write_from_to(path, first, readers, nodata, result, blocks, progress, is_cancelled) -> None:
    from ..io.class_writer import ClassificationWriter

    classes = transition_classes(result)
    lookup = {(t["from"], t["to"]): t["code"] for t in result["transitions"]}
    keys = np.array([(f + 1) * KEY + (t + 1) for f, t in lookup], np.int64)
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
            key = (a + 1) * KEY + (b + 1)
            position = np.clip(np.searchsorted(keys, key), 0, len(keys) - 1)
            labels = codes[position]
            valid &= keys[position] == key
            writer.write(block.window, labels, valid)
            progress((k + 1) / len(blocks))
