"""Temporal features: per-band statistics over time, for classification.

Inputs are either one multi-date stack — band names with a period or date prefix
(``2019-09_NDVI``, a ``temporalcomposite`` output, with its ``CLEAR_COUNT`` bands), a rank
prefix (``T1_VV_dB``, dates from the band metadata or given), or band descriptions that are
timestamps (one variable, named from the file) — or several dated rasters with the same bands.

For every variable (``NDVI``, ``B04``, ``VV_dB``...) and pixel, over the clear observations only
(not nodata, ``CLEAR_COUNT`` > 0, mask clear): mean, standard deviation (population), minimum,
maximum, 10th and 90th percentiles (linear interpolation, as ``numpy.nanpercentile``), amplitude
(max − min), linear trend (ordinary least squares slope per year against the decimal year) and
the day of year (1-366) of the maximum. Sentinel-1 dB variables are averaged in linear power
(the mean is written in dB); the other statistics are taken on the dB values.
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

from ..errors import BandError, InputError
from ..io import raster as raster_io
from ..io.outputs import atomic_output, atomic_raster_output, check_raster_output
from ..runtime import IsCancelled, Log, Progress, never_cancelled, no_log, no_progress
from ..sensors import sentinel1 as sar
from ..sensors.bands import S2_BAND_NAMES, is_s2_band_name, normalise_s2_band
from ..stack import masks as mask_rules
from .composite import CLEAR_COUNT, band_variable, check_outputs_not_inputs, _same_file
from .dates import date_from_metadata, date_from_name, decimal_year, parse_date, parse_date_list, \
    raster_dates
from .periods import period_from_label, split_period_prefix
from .reading import BandReader, Grid, check_overlap
from .reduce import thread_count
from .style import write_stack_style

STATISTICS = ("mean", "std", "min", "max", "p10", "p90", "amplitude", "trend", "doymax", "count")
#: Statistics written by default: those describing the land cover. ``count`` (clear
#: observations) describes the weather of a year, so a model trained on it does not travel.
DEFAULT_STATISTICS = STATISTICS[:-1]
STATISTIC_NAMES = {
    "mean": "mean", "std": "standard deviation", "min": "minimum", "max": "maximum",
    "p10": "10th percentile", "p90": "90th percentile", "amplitude": "amplitude (max - min)",
    "trend": "linear trend per year", "doymax": "day of year of the maximum",
    "count": "number of clear observations",
}
_DATE_ONLY = re.compile(r"^\d{4}-?\d{2}-?\d{2}(?:[T ]\d{2}:?\d{2}(?::?\d{2}(?:\.\d+)?)?Z?)?$")
_RANK = re.compile(r"^T(\d+)$")
_RANK_SUFFIX = re.compile(r"(.+?)_(\d{1,3})")


@dataclass
class Observation:
    """One time step of one variable: where to read it and how to tell it is clear."""

    date: dt.date
    source: int  # input index
    band: int
    count_band: Optional[int] = None  # CLEAR_COUNT band of the same period, same input
    mask: Optional[tuple] = None  # (mask index, band)


@dataclass
class FeaturePlan:
    """What a features run will do, checked before any pixel is read."""

    inputs: List[str]
    masks: List[str]
    layout: str
    variables: Dict[str, List[Observation]]
    db_variables: List[str]
    statistics: List[str]
    grid: Grid
    band_names: List[str]
    dates: List[dt.date] = field(default_factory=list)
    mask_types: Dict[int, str] = field(default_factory=dict)


def _variable_from_file(path: str, dataset) -> str:
    """Names the single variable of a stack whose band descriptions are dates."""
    from ..indices.formulas import INDICES

    tags = {k.upper(): v for k, v in (dataset.tags() or {}).items()}
    for key in ("VARIABLE", "BAND_NAME", "NAME"):
        if tags.get(key):
            return tags[key]
    stem = os.path.splitext(os.path.basename(path))[0]
    known = set(INDICES) | set(S2_BAND_NAMES) | set(sar.POLARISATIONS)
    for token in re.split(r"[_\-. ]+", stem):
        if token.upper() in known:
            return token.upper()
        if is_s2_band_name(token):
            return normalise_s2_band(token)
    return stem


def _band_date(dataset, band: int) -> Optional[dt.date]:
    tags = {k.upper(): v for k, v in (dataset.tags(band) or {}).items()}
    for key in ("ACQUISITION_DATE", "DATE", "DATES", "PERIOD_START"):
        if key in tags:
            date = parse_date(tags[key].split(",")[0])
            if date:
                return date
    return None


def _resolve_stack(path: str, ds, given: List[dt.date], log) -> tuple:
    """Variables and time steps of one multi-date stack."""
    descriptions = raster_io.band_descriptions(ds)
    if all(d and _DATE_ONLY.match(d.strip()) for d in descriptions):
        name = _variable_from_file(path, ds)
        dates = [parse_date(d) for d in descriptions]
        if given:
            if len(given) != len(dates):
                raise InputError(f"{len(given)} dates given for {len(dates)} bands of "
                                 f"'{os.path.basename(path)}'; give one date per band.")
            dates = given
        log(f"'{os.path.basename(path)}': {len(dates)} dated bands (dates from the band "
            f"descriptions), variable '{name}'.")
        observations = {name: [Observation(d, 0, b + 1) for b, d in enumerate(dates)]}
        return observations, "timestamps", [name]
    if all(split_period_prefix((d or "").strip())[0] is None for d in descriptions):
        return _resolve_repeated(path, descriptions, given, log)
    steps: Dict[str, Dict[str, int]] = {}
    for band, description in enumerate(descriptions, start=1):
        label, rest = split_period_prefix((description or "").strip())
        if label is None:
            raise BandError(
                f"Band {band} of '{os.path.basename(path)}' ('{description}') names no period or "
                "date: a multi-date stack needs band names such as 2019-09_NDVI (a "
                "temporalcomposite output), T1_VV_dB, or timestamps as band descriptions. For "
                "one raster per date, give several rasters.")
        name, _ = band_variable(rest, path, 2)
        steps.setdefault(label, {})[name] = band
    labels = list(steps)
    dates: Dict[str, dt.date] = {}
    ranks = [lab for lab in labels if _RANK.match(lab)]
    if ranks and given:
        if len(given) != len(labels):
            raise InputError(f"{len(given)} dates given for {len(labels)} time steps "
                             f"({', '.join(labels)}); give one date per time step.")
        dates = dict(zip(labels, given))
    for label in labels:
        if label in dates:
            continue
        if _RANK.match(label):
            date = _band_date(ds, next(iter(steps[label].values())))
            if date is None:
                raise InputError(f"Time step '{label}' of '{os.path.basename(path)}' has no date "
                                 "(no ACQUISITION_DATE/DATE band metadata); give the dates "
                                 "(DATES, one per time step in order).")
            dates[label] = date
        else:
            dates[label] = period_from_label(label).middle
    variables: Dict[str, List[Observation]] = {}
    order: List[str] = []
    for label in labels:
        count_band = steps[label].get(CLEAR_COUNT)
        for name, band in steps[label].items():
            if name == CLEAR_COUNT:
                continue
            if name not in variables:
                order.append(name)
            variables.setdefault(name, []).append(
                Observation(dates[label], 0, band, count_band))
    log(f"'{os.path.basename(path)}': {len(labels)} time steps ({labels[0]} ... {labels[-1]}), "
        f"variables {', '.join(order)}; a period's time is its middle day"
        + (", CLEAR_COUNT 0 is not clear." if any(CLEAR_COUNT in s for s in steps.values())
           else "."))
    return variables, "stack", order


def _resolve_repeated(path: str, descriptions, given: List[dt.date], log) -> tuple:
    """A stack repeating the same bands once per date.

    Either the same names again (VV, VH, B1, ..., VV, VH, B1, ...) or with a rank suffix
    (VV, VH, ..., VV_1, VH_1, ..., VV_2, ...: CropHarvest's layout); dates must be given.
    """
    from collections import Counter

    ranked = [_RANK_SUFFIX.fullmatch((d or "").strip()) for d in descriptions]
    if any(ranked):
        bases = [m.group(1) if m else (d or "").strip() for m, d in zip(ranked, descriptions)]
        ranks = [int(m.group(2)) if m else 0 for m in ranked]
    else:
        bases, ranks = [(d or "").strip() for d in descriptions], list(range(len(descriptions)))
    names = [band_variable(b, path, 2)[0] for b in bases]
    if any(n is None for n in names):
        raise BandError(f"'{os.path.basename(path)}' has unnamed bands; a multi-date stack needs "
                        "named bands.")
    counts = Counter(names)
    steps = max(counts.values())
    if steps < 2:
        raise BandError(
            f"The bands of '{os.path.basename(path)}' ({', '.join(names[:6])}...) name no period "
            "or date and none repeats: a multi-date stack needs band names such as 2019-09_NDVI "
            "(a temporalcomposite output), T1_VV_dB, timestamps as band descriptions, or the "
            "same bands repeated once per date. For one raster per date, give several rasters.")
    series = [n for n in dict.fromkeys(names) if counts[n] == steps]
    static = [n for n in dict.fromkeys(names) if counts[n] != steps]
    if len(given) != steps:
        raise InputError(
            f"'{os.path.basename(path)}' repeats its bands ({', '.join(series[:4])}...) "
            f"{steps} times but its band names carry no dates; give the {steps} dates (DATES), "
            f"in band order{f' (got {len(given)})' if given else ''}.")
    variables = {}
    for name in series:
        bands = sorted((r, i + 1) for i, (n, r) in enumerate(zip(names, ranks)) if n == name)
        variables[name] = [Observation(given[k], 0, b) for k, (_, b) in enumerate(bands)]
    log(f"'{os.path.basename(path)}': bands repeated {steps} times (dates as given), variables "
        f"{', '.join(series)}"
        + (f"; {', '.join(static)} do not repeat and are left out." if static else "."))
    return variables, "repeated bands", series


def _open_plan(stack, inputs, masks, mask_type, dates, statistics, reference, output_path, log):
    inputs = [str(p) for p in inputs or [] if p]
    masks = [str(p) for p in masks or [] if p]
    if not inputs:
        raise InputError("No input raster given; give a multi-date stack or several dated rasters.")
    statistics = list(statistics or DEFAULT_STATISTICS)
    unknown = [s for s in statistics if s not in STATISTICS]
    if unknown:
        raise InputError(f"Unknown statistic(s) {', '.join(unknown)}; use {', '.join(STATISTICS)}.")
    for i, path in enumerate(inputs):
        for j in range(i):
            if _same_file(path, inputs[j]):
                raise InputError(f"'{path}' is given twice as input; give each raster once.")
    datasets = [stack.enter_context(raster_io.open_raster(p, "Input raster")) for p in inputs]
    given = parse_date_list(dates) if isinstance(dates, str) else list(dates or [])
    mask_sets = [stack.enter_context(raster_io.open_raster(p, "Mask raster")) for p in masks]
    mask_types: Dict[int, str] = {}
    db_variables: List[str] = []
    if len(inputs) == 1:
        variables, layout, order = _resolve_stack(inputs[0], datasets[0], given, log)
        if masks:
            if len(masks) != 1 or mask_sets[0].count not in (1, len(datasets[0].descriptions)):
                raise InputError(
                    f"For a multi-date stack give one mask raster with one band per band of the "
                    f"stack ({datasets[0].count}); got {len(masks)} raster(s) with "
                    f"{', '.join(str(m.count) for m in mask_sets)} band(s).")
            if mask_sets[0].count == 1:
                raise InputError("The mask has one band but the stack has many dates; give a mask "
                                 "with one band per band of the stack.")
            for obs in variables.values():
                for o in obs:
                    o.mask = (0, o.band)
            mask_types[0] = _multiband_mask_type(masks[0], mask_sets[0], mask_type, log)
        for name, obs in variables.items():
            if name.endswith("_dB"):
                db_variables.append(name)
    else:
        layout = "dated rasters"
        found, sources = raster_dates(inputs, datasets, given)
        log(f"Dates of {len(inputs)} rasters from {', '.join(sorted(set(sources)))}.")
        names_of = []
        kinds_of = []
        for path, ds in zip(inputs, datasets):
            names, kinds = [], []
            for band, description in enumerate(raster_io.band_descriptions(ds), start=1):
                if split_period_prefix(description or "")[0] is not None:
                    raise BandError(f"'{os.path.basename(path)}' is a multi-date stack "
                                    f"('{description}'); give it alone, not with other rasters.")
                name, kind = band_variable(description, path, ds.count)
                if name is None:
                    raise BandError(f"Band {band} of '{os.path.basename(path)}' has no name; name "
                                    "the bands (B04, NDVI, VV...).")
                names.append(name)
                kinds.append(kind)
            names_of.append(names)
            kinds_of.append(kinds)
        for path, names in zip(inputs[1:], names_of[1:]):
            if sorted(names) != sorted(names_of[0]):
                raise BandError(
                    f"'{os.path.basename(path)}' has bands {', '.join(names)} but "
                    f"'{os.path.basename(inputs[0])}' has {', '.join(names_of[0])}; every dated "
                    "raster must have the same bands.")
        order = list(names_of[0])
        variables = {name: [] for name in order}
        for k, (date, names) in enumerate(zip(found, names_of)):
            for band, name in enumerate(names, start=1):
                variables[name].append(Observation(date, k, band))
        for name, kind in zip(names_of[0], kinds_of[0]):
            if kind in ("db", "s1", "linear"):
                db_variables.append(name)
        if masks:
            mask_dates = [date_from_name(p) or date_from_metadata(d)
                          for p, d in zip(masks, mask_sets)]
            pairing = mask_rules.match_masks(found, inputs, masks, mask_dates, log)
            for k, m in enumerate(pairing):
                mask_types[m] = mask_rules.check_mask_raster(masks[m], mask_sets[m], mask_type, log)
            for obs in variables.values():
                for o in obs:
                    o.mask = (pairing[o.source], 1)
    for name in variables:
        variables[name].sort(key=lambda o: o.date)
    if reference:
        ref = stack.enter_context(raster_io.open_raster(reference, "Reference grid raster"))
        grid = Grid.of(ref)
    else:
        grid = Grid.of(datasets[0])
    if grid.crs is None:
        raise InputError("The input has no coordinate reference system; assign one first.")
    for path, ds in zip(inputs + masks, datasets + mask_sets):
        check_overlap(ds, grid, f"'{os.path.basename(path)}'")
    band_names = [f"{v}_{s}" for v in order for s in statistics]
    check_outputs_not_inputs([output_path], inputs + masks + ([reference] if reference else []))
    if output_path:
        check_raster_output(output_path, "Temporal features")
    all_dates = sorted({o.date for obs in variables.values() for o in obs})
    plan = FeaturePlan(inputs, masks, layout, {v: variables[v] for v in order}, db_variables,
                       statistics, grid, band_names, all_dates, mask_types)
    return plan, datasets, mask_sets


def _multiband_mask_type(path, dataset, chosen, log) -> str:
    if mask_rules.is_landfusion_cloud_mask(path, dataset):
        return "cloudmask"
    if chosen == "scl" and not np.issubdtype(np.dtype(dataset.dtypes[0]), np.integer):
        raise InputError(f"Mask '{os.path.basename(path)}' is {dataset.dtypes[0]}, not SCL; choose "
                         "the binary mask type if non-zero means cloud.")
    return chosen


def check_features(inputs, masks=(), mask_type="binary", dates=None, statistics=None,
                   reference=None, output_path=None, log: Log = no_log) -> FeaturePlan:
    """Checks a features run without reading pixels."""
    with raster_io.gdal_env(), contextlib.ExitStack() as stack:
        plan, _, _ = _open_plan(stack, inputs, masks, mask_type, dates, statistics, reference,
                                output_path, log)
    return plan


def temporal_statistics(values: np.ndarray, years: np.ndarray, doy: np.ndarray,
                        statistics: Sequence[str], db: bool = False) -> Dict[str, np.ndarray]:
    """Per-pixel statistics of ``values`` (dates, pixels), NaN where not clear.

    Args:
        values: float32 (dates, pixels).
        years: the dates as decimal years, (dates,).
        doy: the dates' day of year, (dates,).
        statistics: names from :data:`STATISTICS`.
        db: the values are dB; the mean is taken in linear power.

    Returns:
        One float32 (pixels,) array per statistic, NaN where undefined.
    """
    out: Dict[str, np.ndarray] = {}
    valid = np.isfinite(values)
    n = valid.sum(axis=0)
    none = n == 0
    with np.errstate(invalid="ignore", divide="ignore"):
        if "count" in statistics:
            out["count"] = n.astype(np.float32)
        if "mean" in statistics or "std" in statistics or "trend" in statistics:
            zeroed = np.where(valid, values, 0).astype(np.float64)
            mean = zeroed.sum(axis=0) / n
        if "mean" in statistics:
            if db:
                linear = np.where(valid, sar.db_to_linear(np.where(valid, values, 0)), 0)
                out["mean"] = sar.linear_to_db((linear.sum(axis=0, dtype=np.float64) / n)
                                               .astype(np.float32))
            else:
                out["mean"] = mean.astype(np.float32)
        if "std" in statistics:
            dev = np.where(valid, values - mean, 0.0)
            out["std"] = np.sqrt((dev * dev).sum(axis=0) / n).astype(np.float32)
        if {"min", "max", "p10", "p90", "amplitude"} & set(statistics):
            ordered = np.sort(values, axis=0)  # NaN last
            cols = np.arange(values.shape[1])
            last = np.maximum(n - 1, 0)
            low, high = ordered[0], ordered[last, cols]
            for name, value in (("min", low), ("max", high), ("amplitude", high - low)):
                if name in statistics:
                    out[name] = value.astype(np.float32)
            for name, q in (("p10", 0.1), ("p90", 0.9)):
                if name in statistics:
                    position = last * q
                    lo = np.floor(position).astype(np.intp)
                    hi = np.minimum(lo + 1, last)
                    frac = (position - lo).astype(np.float64)
                    a = ordered[lo, cols].astype(np.float64)
                    b = ordered[hi, cols].astype(np.float64)
                    out[name] = (a + (b - a) * frac).astype(np.float32)
        if "trend" in statistics:
            t = (years - years.min()).astype(np.float64)[:, None]
            tw = np.where(valid, t, 0.0)
            t_mean = tw.sum(axis=0) / n
            dt_ = np.where(valid, t - t_mean, 0.0)
            dy = np.where(valid, values - mean, 0.0)
            denominator = (dt_ * dt_).sum(axis=0)
            slope = (dt_ * dy).sum(axis=0) / denominator
            slope[(n < 2) | ~(denominator > 0)] = np.nan
            out["trend"] = slope.astype(np.float32)
        if "doymax" in statistics:
            filled = np.where(valid, values, -np.inf)
            index = np.argmax(filled, axis=0)
            out["doymax"] = doy[index].astype(np.float32)
    for name, value in out.items():
        if name != "count":
            value[none] = np.nan
    return out


def temporal_features(
    inputs: Sequence[str],
    output_path: str,
    masks: Sequence[str] = (),
    mask_type: str = "binary",
    dates=None,
    statistics: Optional[Sequence[str]] = None,
    reference: Optional[str] = None,
    memory_mb: float = raster_io.DEFAULT_MEMORY_MB,
    threads: int = 0,
    progress: Progress = no_progress,
    is_cancelled: IsCancelled = never_cancelled,
    log: Log = no_log,
    warn: Log = no_log,
) -> dict:
    """Computes per-band temporal statistics over clear observations.

    Args:
        inputs: one multi-date stack, or several rasters of one date each.
        output_path: float32 stack with bands ``<variable>_<statistic>``.
        masks: for a stack, one raster with one mask band per stack band; for dated rasters,
            one mask per raster (matched by date, else by order).
        mask_type: 'scl', 'cloudmask' or 'binary' (non-zero = not clear).
        dates: dates of the time steps (rank-named stacks) or of the rasters, when the names
            and metadata do not give them.
        statistics: subset of :data:`STATISTICS` (default :data:`DEFAULT_STATISTICS`: all but
            the count of clear observations).
        reference: optional raster whose grid the output takes (default: the first input's).

    Returns:
        ``{"output", "bands", "dates", "sidecar"}``.
    """
    import rasterio

    with raster_io.gdal_env(), contextlib.ExitStack() as stack:
        plan, datasets, mask_sets = _open_plan(stack, inputs, masks, mask_type, dates, statistics,
                                               reference, output_path, log)
        grid = plan.grid
        workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="landfusion-features-"))
        readers: Dict[tuple, BandReader] = {}

        def reader(source: int, band: int, kind: str = "data", mask: bool = False) -> BandReader:
            key = (mask, source, band)
            if key not in readers:
                ds = mask_sets[source] if mask else datasets[source]
                readers[key] = BandReader(ds, grid, [band], "mask" if mask else kind, workdir)
                stack.callback(readers[key].close)
            return readers[key]

        tables = {t: mask_rules.clear_lookup(t) for t in mask_rules.MASK_TYPES}
        series = []
        for name, obs in plan.variables.items():
            years = np.array([decimal_year(o.date) for o in obs])
            doy = np.array([o.date.timetuple().tm_yday for o in obs], dtype=np.float32)
            series.append((name, obs, years, doy))
        longest = max(len(obs) for obs in plan.variables.values())
        nvars = len(plan.variables)
        bytes_per_pixel = nvars * longest * 4 + longest * 24 + 4 * len(plan.band_names)
        blocks = raster_io.plan_blocks(grid.width, grid.height, bytes_per_pixel, memory_mb / 3)
        pool = stack.enter_context(ThreadPoolExecutor(thread_count(threads),
                                                      thread_name_prefix="landfusion-features"))
        s1_linear = set()
        if plan.db_variables:
            for name in plan.db_variables:
                first = plan.variables[name][0]
                units = sar.guess_units(reader(first.source, first.band).read(
                    rasterio.windows.Window(0, 0, min(256, grid.width), min(256, grid.height)))[0])
                if units == "linear":
                    s1_linear.add(name)
                    log(f"{name}: linear power in the inputs; statistics are taken in dB.")

        def read(block):
            window = block.window
            out = []
            clear_cache: Dict[tuple, np.ndarray] = {}
            for name, obs, _, _ in series:
                values = np.empty((len(obs), block.height, block.width), dtype=np.float32)
                for t, o in enumerate(obs):
                    values[t] = reader(o.source, o.band).read(window)[0]
                    if o.count_band is not None:
                        key = ("count", o.source, o.count_band)
                        if key not in clear_cache:
                            count = reader(o.source, o.count_band).read(window)[0]
                            clear_cache[key] = np.isfinite(count) & (count > 0)
                        values[t][~clear_cache[key]] = np.nan
                    if o.mask is not None:
                        key = ("mask",) + o.mask
                        if key not in clear_cache:
                            mtype = plan.mask_types[o.mask[0]]
                            raw = reader(o.mask[0], o.mask[1], mask=True).read(window)[0]
                            clear_cache[key] = mask_rules.clear_from_values(raw, tables[mtype],
                                                                            mtype)
                        values[t][~clear_cache[key]] = np.nan
                if name in s1_linear:
                    values = sar.linear_to_db(values)
                out.append(values)
            return out

        def work(block, data):
            pixels = block.height * block.width
            result = np.full((len(plan.band_names), pixels), np.nan, dtype=np.float32)
            step = max(1024, pixels // (2 * thread_count(threads)) + 1)
            row = 0
            for (name, obs, years, doy), values in zip(series, data):
                flat = values.reshape(len(obs), -1)
                is_db = name in plan.db_variables

                def chunk(start, flat=flat, years=years, doy=doy, is_db=is_db):
                    return start, temporal_statistics(flat[:, start:start + step], years, doy,
                                                      plan.statistics, is_db)

                for start, stats in pool.map(chunk, range(0, pixels, step)):
                    for k, statistic in enumerate(plan.statistics):
                        result[row + k, start:start + step] = stats[statistic]
                row += len(plan.statistics)
            result[~np.isfinite(result)] = raster_io.FLOAT_NODATA
            return result.reshape(len(plan.band_names), block.height, block.width)

        temp = stack.enter_context(atomic_raster_output(output_path,
                                                                  "Temporal features"))
        dst = stack.enter_context(rasterio.open(
            temp, "w", **raster_io.float_profile(grid, len(plan.band_names))))

        def write(block, result):
            dst.write(result, window=block.window)

        log(f"{len(plan.band_names)} features from {len(plan.dates)} dates "
            f"({plan.dates[0].isoformat()} to {plan.dates[-1].isoformat()}).")
        raster_io.run_blocks(blocks, read, work, progress, is_cancelled, write=write)
        k = 1
        for name in plan.variables:
            for statistic in plan.statistics:
                dst.set_band_description(k, f"{name}_{statistic}")
                tags = {"VARIABLE": name, "STATISTIC": statistic,
                        "DESCRIPTION": STATISTIC_NAMES[statistic]}
                if statistic == "trend":
                    tags["UNITS"] = ("dB" if name in plan.db_variables else "units") + " per year"
                elif statistic == "doymax":
                    tags["UNITS"] = "day of year (1-366)"
                elif name in plan.db_variables and statistic != "count":
                    tags["UNITS"] = "dB"
                dst.update_tags(k, **tags)
                k += 1
        dst.update_tags(LANDFUSION_ALGORITHM="temporalfeatures",
                        DATES=",".join(d.isoformat() for d in plan.dates))
        dst.close()
    sidecar = {
        "algorithm": "temporalfeatures", "output": output_path, "layout": plan.layout,
        "inputs": plan.inputs, "masks": plan.masks, "statistics": plan.statistics,
        "band_names": plan.band_names,
        "variables": {name: [{"date": o.date.isoformat(), "input": plan.inputs[o.source],
                              "band": o.band} for o in obs]
                      for name, obs in plan.variables.items()},
        "time_coordinate": "decimal year for the trend; day of year for doymax; a composite "
                           "period counts at its middle day",
        "grid": grid.describe(), "nodata": raster_io.FLOAT_NODATA,
    }
    write_stack_style(output_path, plan.band_names)
    with atomic_output(output_path + ".json", "Features sidecar") as temp_json:
        with open(temp_json, "w", encoding="utf-8") as handle:
            json.dump(sidecar, handle, indent=2)
    progress(1.0)
    return {"output": output_path, "bands": plan.band_names, "sidecar": output_path + ".json",
            "dates": [d.isoformat() for d in plan.dates]}
