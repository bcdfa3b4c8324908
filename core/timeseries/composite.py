"""Temporal composites: many dated rasters onto one grid, one composite per period.

Each input is one acquisition date (a Sentinel-2 band-named raster or stack, Sentinel-1 VV/VH,
or any named bands such as indices). Inputs are grouped by band set: inputs of one group share
their bands; groups must not share bands (a Sentinel-1 group and a Sentinel-2 group can be
composited together, a Sentinel-2 input that lacks one band of the others cannot).

Work is split into (block, period) items walked by :func:`core.io.raster.run_blocks`: an item
reads only the dates of its period, and blocks are sized from the memory budget divided by the
largest number of dates in a period, so memory stays bounded whatever the number of dates.
Sentinel-1 backscatter is composited in linear power and written in dB.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..errors import BandError, InputError, NoDataError, OutputError
from ..io import raster as raster_io
from ..io.outputs import atomic_output, atomic_raster_output, check_raster_output
from ..runtime import IsCancelled, Log, Progress, never_cancelled, no_log, no_progress
from ..sensors import sentinel1 as sar
from ..sensors.bands import is_s2_band_name, normalise_s2_band
from ..stack import masks as mask_rules
from .dates import date_from_metadata, date_from_name, parse_date_list, raster_dates
from .periods import PERIOD_KINDS, Period, plan_periods
from .reading import BandReader, Grid, check_overlap, sample_values
from .reduce import METHODS, best_index, reduce_over_time, thread_count
from .style import write_stack_style

CLEAR_COUNT = "CLEAR_COUNT"
METHOD_NAMES = {"median": "median of clear observations", "mean": "mean of clear observations",
                "maxndvi": "max-NDVI best pixel", "min": "minimum", "max": "maximum"}
_S1_NAME = re.compile(r"^(?:S1_)?(?:(?:\d{8}|T\d+)_)?(VV|VH|HH|HV)(?:_(dB|lin|linear))?$",
                      re.IGNORECASE)


@dataclass
class CompositeInput:
    """One dated input raster, resolved."""

    path: str
    date: dt.date
    date_source: str
    group: int = 0
    variables: List[str] = field(default_factory=list)  # output names, in band order
    kinds: List[str] = field(default_factory=list)  # 'data', 'db' or 'linear' per band
    mask: Optional[str] = None
    mask_type: Optional[str] = None


@dataclass
class Group:
    """Inputs sharing one band set."""

    variables: List[str]
    s1: List[str]
    ndvi: Optional[tuple] = None  # ('NDVI',) or ('B04', 'B08') or None
    method: str = "median"


@dataclass
class CompositePlan:
    """What a compositing run will do, checked before any pixel is read."""

    inputs: List[CompositeInput]
    groups: List[Group]
    periods: List[Period]
    members: List[List[int]]
    grid: Grid
    grid_source: str
    method: str
    period_kind: str
    band_names: List[str]
    period_files: List[Optional[str]]

    @property
    def variables(self) -> List[str]:
        """Output variables of one period, CLEAR_COUNT last."""
        names = [v for g in self.groups for v in g.variables]
        return names + [CLEAR_COUNT]

    @property
    def empty_periods(self) -> List[str]:
        """Labels of periods without any acquisition."""
        return [p.label for p, m in zip(self.periods, self.members) if not m]


def band_variable(description: str, path: str, count: int) -> tuple:
    """Output name and kind of one input band: ('B04', 'data'), ('VV_dB', 'db'|'linear'|'s1'), ...

    The kind 's1' means Sentinel-1 of unknown units (decided from the values).
    """
    text = (description or "").strip()
    if not text and count == 1:
        pol = sar.polarisation_from_text(os.path.basename(path))
        if pol:
            text = pol
    if not text:
        return None, None
    match = _S1_NAME.match(text)
    if match:
        units = (match.group(2) or "").lower()
        kind = "db" if units == "db" else "linear" if units.startswith("lin") else "s1"
        return f"{match.group(1).upper()}_dB", kind
    if is_s2_band_name(text):
        return normalise_s2_band(text), "data"
    return text, "data"


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def check_outputs_not_inputs(outputs: Sequence[Optional[str]], inputs: Sequence[str]) -> None:
    """Raises :class:`OutputError` when an output would overwrite an input or another output."""
    outputs = [o for o in outputs if o]
    for i, out in enumerate(outputs):
        for source in inputs:
            if source and os.path.exists(out) and _same_file(out, source):
                raise OutputError(f"The output '{out}' is one of the inputs; choose another "
                                  "file name (inputs are never overwritten).")
        for other in outputs[:i]:
            if os.path.abspath(other) == os.path.abspath(out):
                raise OutputError(f"Two outputs are the same file '{out}'; give different names.")


def period_file_path(folder: str, output_path: str, label: str) -> str:
    """Path of one period's raster in the output folder."""
    stem = os.path.splitext(os.path.basename(output_path or "composite.tif"))[0]
    return os.path.join(folder, f"{stem}_{label}.tif")


def sidecar_path(output_path: str) -> str:
    """The JSON sidecar written beside a composite."""
    return output_path + ".json"


def _open_plan(stack: contextlib.ExitStack, inputs, masks, mask_type, dates, period, custom_periods,
               method, reference, output_path, output_folder, log, warn) -> tuple:
    """Opens every raster (kept open in ``stack``) and resolves the plan."""
    inputs = [str(p) for p in inputs or [] if p]
    masks = [str(p) for p in masks or [] if p]
    if not inputs:
        raise InputError("No input raster given; give one raster per acquisition date.")
    if method not in METHODS:
        raise InputError(f"Unknown method '{method}'; use one of {', '.join(METHODS)}.")
    if period not in PERIOD_KINDS:
        raise InputError(f"Unknown period '{period}'; use one of {', '.join(PERIOD_KINDS)}.")
    if mask_type not in mask_rules.MASK_TYPES:
        raise InputError(f"Unknown mask type '{mask_type}'; use one of "
                         f"{', '.join(mask_rules.MASK_TYPES)}.")
    for i, path in enumerate(inputs):
        for j in range(i):
            if _same_file(path, inputs[j]):
                raise InputError(f"'{path}' is given twice as input; give each acquisition once "
                                 "(two acquisitions of the same day are fine as two files).")
    datasets = [stack.enter_context(raster_io.open_raster(p, "Input raster")) for p in inputs]
    given = parse_date_list(dates) if isinstance(dates, str) else list(dates or [])
    found, sources = raster_dates(inputs, datasets, given)
    for source in sorted(set(sources)):
        count = sources.count(source)
        where = "the given dates" if source == "given" else "the " + source
        log(f"Acquisition dates of {count} input(s) from {where}.")
    items = [CompositeInput(p, d, s) for p, d, s in zip(inputs, found, sources)]

    # Band sets and groups
    signatures: List[tuple] = []
    for item, ds in zip(items, datasets):
        names = []
        for band, description in enumerate(raster_io.band_descriptions(ds), start=1):
            name, kind = band_variable(description, item.path, ds.count)
            if name is None:
                raise BandError(f"Band {band} of '{os.path.basename(item.path)}' has no name; "
                                "composites need named bands (band descriptions such as B04, "
                                "NDVI or VV). Name them, e.g. with landfusion:coregisterstack or "
                                "gdal_edit.py -mo, or a VRT.")
            if kind == "s1":
                units = sar.guess_units(sample_values(ds, band))
                if units is None:
                    raise BandError(f"The units of band {band} ('{description}') of "
                                    f"'{os.path.basename(item.path)}' cannot be told from its "
                                    "values; name the band VV_dB or VV_linear (VH likewise).")
                kind = "db" if units == "dB" else "linear"
            names.append(name)
            item.kinds.append(kind)
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise BandError(f"'{os.path.basename(item.path)}' has band(s) {', '.join(twice)} more "
                            "than once; each band name must be unique.")
        item.variables = names
        signature = tuple(sorted(names))
        if signature not in signatures:
            signatures.append(signature)
        item.group = signatures.index(signature)
    for a in range(len(signatures)):
        for b in range(a):
            common = set(signatures[a]) & set(signatures[b])
            if common:
                first = next(i for i in items if i.group == b)
                other = next(i for i in items if i.group == a)
                only_a = sorted(set(signatures[a]) - set(signatures[b]))
                only_b = sorted(set(signatures[b]) - set(signatures[a]))
                raise BandError(
                    f"The inputs have different band sets: '{os.path.basename(other.path)}' "
                    f"({', '.join(only_a) or 'no other band'} not in the other) vs "
                    f"'{os.path.basename(first.path)}' ({', '.join(only_b) or 'no other band'} "
                    "not in the other). Give inputs with the same bands (subset them first), or "
                    "inputs of different sensors with no band in common.")
    groups = []
    for g in range(len(signatures)):
        first = next(i for i in items if i.group == g)
        variables = list(first.variables)
        s1 = [v for v, k in zip(first.variables, first.kinds) if k in ("db", "linear")]
        for other in items:
            if other.group == g:
                other_s1 = {v for v, k in zip(other.variables, other.kinds)
                            if k in ("db", "linear")}
                if other_s1 != set(s1):
                    raise BandError(f"'{os.path.basename(other.path)}' does not have the same "
                                    "Sentinel-1 bands as the other inputs of its band set.")
        ndvi = ("NDVI",) if "NDVI" in variables else ("B04", "B08") \
            if {"B04", "B08"} <= set(variables) else None
        group_method = method
        if method == "maxndvi" and ndvi is None:
            if s1 and len(s1) == len(variables):
                group_method = "median"
                log(f"Sentinel-1 inputs ({', '.join(s1)}) have no NDVI: their composite is the "
                    "median in linear power.")
            else:
                raise BandError(
                    f"The max-NDVI best pixel needs an NDVI band, or B04 and B08, in every "
                    f"optical input; '{os.path.basename(first.path)}' has "
                    f"{', '.join(variables)}. Choose another method or add the bands.")
        groups.append(Group(variables, s1, ndvi, group_method))

    # Masks
    mask_datasets: Dict[str, object] = {}
    if masks:
        mask_sets = [stack.enter_context(raster_io.open_raster(p, "Mask raster")) for p in masks]
        mask_datasets = dict(zip(masks, mask_sets))
        for i, path in enumerate(masks):
            for j in range(i):
                if _same_file(path, masks[j]):
                    raise InputError(f"Mask '{path}' is given twice; give one mask per input.")
            for source in inputs:
                if _same_file(path, source):
                    raise InputError(f"'{path}' is given both as an input and as a mask.")
        mask_dates = [date_from_name(p) or date_from_metadata(d) for p, d in zip(masks, mask_sets)]
        pairing = mask_rules.match_masks([i.date for i in items], [i.path for i in items], masks,
                                         mask_dates, log)
        for item, k in zip(items, pairing):
            item.mask = masks[k]
            item.mask_type = mask_rules.check_mask_raster(masks[k], mask_sets[k], mask_type, log)

    # Grid
    if reference:
        ref = stack.enter_context(raster_io.open_raster(reference, "Reference grid raster"))
        grid, grid_source = Grid.of(ref), f"the reference raster '{os.path.basename(reference)}'"
    else:
        finest = min(range(len(items)), key=lambda k: (Grid.of(datasets[k]).pixel_size
                                                       if datasets[k].crs == datasets[0].crs
                                                       else float("inf"), k))
        grid = Grid.of(datasets[finest])
        grid_source = f"the finest input '{os.path.basename(items[finest].path)}'"
    if grid.crs is None:
        raise InputError("The output grid has no coordinate reference system; give georeferenced "
                         "inputs or a reference raster.")
    for item, ds in zip(items, datasets):
        check_overlap(ds, grid, f"Input '{os.path.basename(item.path)}'")
        if item.mask:
            check_overlap(mask_datasets[item.mask], grid, f"Mask '{os.path.basename(item.mask)}'")

    # Periods
    periods = plan_periods([i.date for i in items], period, custom_periods)
    members = [sorted((k for k, i in enumerate(items) if p.contains(i.date)),
                      key=lambda k: (items[k].date, k)) for p in periods]
    outside = [os.path.basename(i.path) for k, i in enumerate(items)
               if not any(k in m for m in members)]
    if outside:
        warn(f"{len(outside)} input(s) fall in no period and are not used: "
             f"{', '.join(outside[:5])}{' ...' if len(outside) > 5 else ''}.")
    if not any(members):
        raise NoDataError("No input date falls in any of the periods; check the custom periods "
                          "against the acquisition dates.")
    variables = [v for g in groups for v in g.variables] + [CLEAR_COUNT]
    band_names = [f"{p.label}_{v}" for p in periods for v in variables]
    period_files = [period_file_path(output_folder, output_path, p.label) if output_folder else None
                    for p in periods]
    if output_folder:
        if not os.path.isdir(output_folder):
            raise OutputError(f"The output folder '{output_folder}' does not exist; create it or "
                              "choose another.")
    sources = inputs + masks + ([reference] if reference else [])
    outputs = [output_path, sidecar_path(output_path) if output_path else None] + period_files
    check_outputs_not_inputs(outputs, sources)
    if output_path:
        check_raster_output(output_path, "Composite")
    plan = CompositePlan(items, groups, periods, members, grid, grid_source, method, period,
                         band_names, period_files)
    return plan, datasets, mask_datasets


def check_composite(inputs, masks=(), mask_type="scl", dates=None, period="month",
                    custom_periods="", method="median", reference=None, output_path=None,
                    output_folder=None, log: Log = no_log, warn: Log = no_log) -> CompositePlan:
    """Checks a compositing run without reading pixels (dates, bands, masks, grid, outputs).

    Raises:
        LandFusionError: naming the problem and the fix.
    """
    with raster_io.gdal_env(), contextlib.ExitStack() as stack:
        plan, _, _ = _open_plan(stack, inputs, masks, mask_type, dates, period, custom_periods,
                             method, reference, output_path, output_folder, log, warn)
    return plan


def temporal_composite(
    inputs: Sequence[str],
    output_path: str,
    masks: Sequence[str] = (),
    mask_type: str = "scl",
    dates=None,
    period: str = "month",
    custom_periods: str = "",
    method: str = "median",
    reference: Optional[str] = None,
    output_folder: Optional[str] = None,
    memory_mb: float = raster_io.DEFAULT_MEMORY_MB,
    threads: int = 0,
    progress: Progress = no_progress,
    is_cancelled: IsCancelled = never_cancelled,
    log: Log = no_log,
    warn: Log = no_log,
) -> dict:
    """Composites dated rasters per period onto one grid.

    Args:
        inputs: one raster per acquisition (named bands: B04..., NDVI..., VV/VH).
        output_path: the float32 stack (``<period>_<band>``, then ``<period>_CLEAR_COUNT``).
        masks: optional cloud masks, one per input (matched by date, else by order).
        mask_type: 'scl', 'cloudmask' or 'binary' (LandFusion cloud masks are recognised
            whatever this says).
        dates: ISO dates (list or comma-separated text), one per input; None reads them from
            the file names, then from the GDAL metadata.
        period: 'month', 'season', 'year', 'whole' or 'custom'.
        custom_periods: ``start/end;start/end`` when ``period`` is 'custom'.
        method: 'median', 'mean', 'maxndvi', 'min' or 'max'.
        reference: optional raster whose grid the output takes (default: the finest input).
        output_folder: optional folder for one raster per period with period-free band names.
        memory_mb: budget for the pixel arrays alive at once.
        threads: threads for the per-pixel work (0: every core).

    Returns:
        ``{"output", "sidecar", "period_files", "periods", "empty_periods", "bands"}``.
    """
    import rasterio

    with raster_io.gdal_env(), contextlib.ExitStack() as stack:
        plan, datasets, mask_datasets = _open_plan(stack, inputs, masks, mask_type, dates, period,
                                    custom_periods, method, reference, output_path, output_folder,
                                    log, warn)
        grid = plan.grid
        log(f"Output grid: {grid.width} x {grid.height} pixels, {grid.crs.to_string()}, from "
            f"{plan.grid_source}.")
        log(f"{len(plan.periods)} period(s) ({plan.period_kind}); method: "
            f"{METHOD_NAMES[plan.method]}.")
        if plan.empty_periods:
            warn(f"No acquisition in period(s) {', '.join(plan.empty_periods)}: their bands are "
                 "nodata (CLEAR_COUNT 0).")
        workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="landfusion-composite-"))
        readers = []
        for item, ds in zip(plan.inputs, datasets):
            by_kind: Dict[str, List[int]] = {}
            for band, kind in enumerate(item.kinds, start=1):
                by_kind.setdefault(kind, []).append(band)
            group_vars = plan.groups[item.group].variables
            parts = []
            for kind, bands in by_kind.items():
                reader = BandReader(ds, grid, bands, kind, workdir)
                stack.callback(reader.close)
                positions = [group_vars.index(item.variables[b - 1]) for b in bands]
                parts.append((reader, positions))
            mask_reader = None
            if item.mask:
                mask_reader = BandReader(mask_datasets[item.mask], grid, [1], "mask")
                stack.callback(mask_reader.close)
            readers.append((parts, mask_reader))
            log(f"{item.date.isoformat()} {os.path.basename(item.path)}: "
                f"{', '.join(r.how for r, _ in parts)}"
                + (f"; mask {os.path.basename(item.mask)} ({item.mask_type})" if item.mask else ""))
        tables = {t: mask_rules.clear_lookup(t) for t in mask_rules.MASK_TYPES}

        most = max(len(m) for m in plan.members)
        nvars = len(plan.variables)
        bytes_per_pixel = most * (4 * (nvars - 1) + 4) + 8 * nvars
        blocks = raster_io.plan_blocks(grid.width, grid.height, bytes_per_pixel, memory_mb / 3)
        work_items = [(block, p) for block in blocks for p in range(len(plan.periods))]
        pool = stack.enter_context(ThreadPoolExecutor(thread_count(threads),
                                                      thread_name_prefix="landfusion-composite"))

        def read(item):
            block, p = item
            window = block.window
            arrays = [np.full((sum(1 for k in plan.members[p] if plan.inputs[k].group == g),
                               len(group.variables), block.height, block.width), np.nan,
                              dtype=np.float32) for g, group in enumerate(plan.groups)]
            count = np.zeros((block.height, block.width), dtype=np.float32)
            slot = [0] * len(plan.groups)
            for k in plan.members[p]:
                parts, mask_reader = readers[k]
                g = plan.inputs[k].group
                target = arrays[g][slot[g]]
                slot[g] += 1
                for reader, positions in parts:
                    target[positions] = reader.read(window)
                if mask_reader is not None:
                    mtype = plan.inputs[k].mask_type
                    clear = mask_rules.clear_from_values(mask_reader.read(window)[0],
                                                         tables[mtype], mtype)
                    target[:, ~clear] = np.nan
                count += np.isfinite(target).any(axis=0)
            return arrays, count

        def work(item, data):
            block, p = item
            arrays, count = data
            out = np.full((nvars, block.height, block.width), np.nan, dtype=np.float32)
            row = 0
            for group, stack_g in zip(plan.groups, arrays):
                n = len(group.variables)
                if stack_g.shape[0]:
                    out[row:row + n] = _composite_group(stack_g, group, pool)
                row += n
            out[-1] = count
            clear_total[p] += int(count.sum())
            out[~np.isfinite(out)] = raster_io.FLOAT_NODATA
            return out

        outputs = {}
        temps = {}
        temps["main"] = stack.enter_context(atomic_raster_output(output_path,
                                                                           "Composite"))
        outputs["main"] = stack.enter_context(rasterio.open(
            temps["main"], "w", **raster_io.float_profile(grid, len(plan.band_names))))
        for p, path in enumerate(plan.period_files):
            if path:
                temps[p] = stack.enter_context(atomic_raster_output(
                    path, "Period composite"))
                outputs[p] = stack.enter_context(rasterio.open(
                    temps[p], "w", **raster_io.float_profile(grid, nvars)))

        def write(item, out):
            block, p = item
            first = p * nvars + 1
            outputs["main"].write(out, list(range(first, first + nvars)), window=block.window)
            if p in outputs:
                outputs[p].write(out, window=block.window)

        clear_total = [0] * len(plan.periods)
        raster_io.run_blocks(work_items, read, work, progress, is_cancelled, write=write)
        _describe(plan, outputs, output_path)
        for dataset in outputs.values():
            dataset.close()
        cloudy = [p.label for p, m, n in zip(plan.periods, plan.members, clear_total)
                  if m and not n]
        if cloudy:
            warn(f"No clear observation in period(s) {', '.join(cloudy)} (every acquisition masked "
                 "or nodata): their bands are nodata.")
        sidecar = _sidecar(plan, output_path)
        sidecar["periods_without_clear_observation"] = cloudy
        for entry, n in zip(sidecar["periods"], clear_total):
            entry["clear_observations"] = n
    write_stack_style(output_path, plan.band_names, _preferred_bands(plan))
    for path in plan.period_files:
        if path:
            write_stack_style(path, plan.variables)
    with atomic_output(sidecar_path(output_path), "Composite sidecar") as temp:
        with open(temp, "w", encoding="utf-8") as handle:
            json.dump(sidecar, handle, indent=2)
    progress(1.0)
    return {"output": output_path, "sidecar": sidecar_path(output_path),
            "period_files": [p for p in plan.period_files if p],
            "periods": [p.label for p in plan.periods], "empty_periods": plan.empty_periods,
            "periods_without_clear_observation": cloudy,
            "bands": plan.band_names}


def _composite_group(stack_g: np.ndarray, group: Group, pool) -> np.ndarray:
    """Composites one group's (dates, bands, rows, cols) array into (bands, rows, cols)."""
    if group.method == "maxndvi":
        names = group.variables
        if group.ndvi == ("NDVI",):
            score = stack_g[:, names.index("NDVI")]
        else:
            red, nir = stack_g[:, names.index("B04")], stack_g[:, names.index("B08")]
            with np.errstate(divide="ignore", invalid="ignore"):
                score = (nir - red) / (nir + red)
        best = best_index(score)
        chosen = np.take_along_axis(stack_g, np.maximum(best, 0)[None, None], axis=0)[0]
        chosen[:, best < 0] = np.nan
        out = chosen
    else:
        out = reduce_over_time(stack_g, group.method, pool=pool)
    for k, name in enumerate(group.variables):
        if name in group.s1:
            out[k] = sar.linear_to_db(out[k])
    return out


def _preferred_bands(plan: CompositePlan) -> List[str]:
    """The bands of the first period with acquisitions (shown by the style)."""
    for period, members in zip(plan.periods, plan.members):
        if members:
            return [f"{period.label}_{v}" for v in plan.variables]
    return []


def _describe(plan: CompositePlan, outputs: dict, output_path: str) -> None:
    """Band names and metadata of the composite and of the per-period rasters."""
    nvars = len(plan.variables)
    s1 = {v for g in plan.groups for v in g.s1}
    main = outputs["main"]
    for p, (period, members) in enumerate(zip(plan.periods, plan.members)):
        dates = ",".join(sorted({plan.inputs[k].date.isoformat() for k in members}))
        for v, variable in enumerate(plan.variables):
            tags = {"PERIOD": period.label, "PERIOD_START": period.start.isoformat(),
                    "PERIOD_END": period.end.isoformat(), "VARIABLE": variable,
                    "DATES": dates, "OBSERVATIONS": str(len(members))}
            if variable in s1:
                tags["UNITS"] = "dB"
            main.set_band_description(p * nvars + v + 1, f"{period.label}_{variable}")
            main.update_tags(p * nvars + v + 1, **tags)
            if p in outputs:
                outputs[p].set_band_description(v + 1, variable)
                outputs[p].update_tags(v + 1, **tags)
        if p in outputs:
            outputs[p].update_tags(LANDFUSION_ALGORITHM="temporalcomposite",
                                   PERIOD=period.label, PERIOD_START=period.start.isoformat(),
                                   PERIOD_END=period.end.isoformat(), DATES=dates,
                                   METHOD=plan.method)
    main.update_tags(LANDFUSION_ALGORITHM="temporalcomposite", METHOD=plan.method,
                     PERIOD_KIND=plan.period_kind,
                     PERIODS=",".join(p.label for p in plan.periods))


def _sidecar(plan: CompositePlan, output_path: str) -> dict:
    periods = []
    for period, members, path in zip(plan.periods, plan.members, plan.period_files):
        entry = period.to_dict()
        entry["dates"] = [plan.inputs[k].date.isoformat() for k in members]
        entry["files"] = [plan.inputs[k].path for k in members]
        entry["empty"] = not members
        if path:
            entry["raster"] = path
        periods.append(entry)
    return {
        "algorithm": "temporalcomposite",
        "output": output_path,
        "method": plan.method,
        "method_name": METHOD_NAMES[plan.method],
        "period_kind": plan.period_kind,
        "periods": periods,
        "empty_periods": plan.empty_periods,
        "band_names": plan.band_names,
        "variables": plan.variables,
        "sentinel1_bands": {v: "composited in linear power, written in dB"
                            for g in plan.groups for v in g.s1},
        "group_methods": {", ".join(g.variables): g.method for g in plan.groups},
        "inputs": [{"path": i.path, "date": i.date.isoformat(), "date_source": i.date_source,
                    "bands": i.variables, "mask": i.mask, "mask_type": i.mask_type}
                   for i in plan.inputs],
        "grid": plan.grid.describe(),
        "grid_source": plan.grid_source,
        "nodata": raster_io.FLOAT_NODATA,
    }
