"""The plan of a features run: the layout of the inputs (one multi-date stack or several dated
rasters), every variable's time steps, masks, grid and outputs, checked before any pixel is read.

A multi-date stack has band names with a period or date prefix (``2019-09_NDVI``, a
``temporalcomposite`` output, with its ``CLEAR_COUNT`` bands), a rank prefix (``T1_VV_dB``, dates
from the band metadata or given), band descriptions that are timestamps (one variable, named from
the file), or the same bands repeated once per date (dates given).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np

from ..errors import BandError, InputError
from ..io import raster as raster_io
from ..runtime import Log
from ..sensors import sentinel1 as sar
from ..sensors.bands import S2_BAND_NAMES, is_s2_band_name, normalise_s2_band
from ..stack import masks as mask_rules
from .composite_plan import CLEAR_COUNT
from .dates import parse_date, raster_dates
from .inputs import (
    band_variable, check_distinct, check_output, check_overlaps, open_rasters, pair_masks,
    reference_grid,
)
from .options import FeatureOptions
from .outputs import sidecar_path
from .periods import period_from_label, split_period_prefix
from .reading import Grid

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


def plan_features(stack: contextlib.ExitStack, o: FeatureOptions, log: Log) -> tuple:
    """Opens every raster (kept open in ``stack``) and resolves the plan.

    Returns:
        The plan, the input datasets and the mask datasets.

    Raises:
        LandFusionError: naming the problem and the fix.
    """
    check_distinct(o.inputs, "'{path}' is given twice as input; give each raster once.")
    datasets = open_rasters(stack, o.inputs, "Input raster")
    mask_sets = open_rasters(stack, o.masks, "Mask raster")
    if len(o.inputs) == 1:
        variables, layout, order = _resolve_stack(o.inputs[0], datasets[0], o.given_dates, log)
        mask_types = _stack_masks(o, datasets[0], mask_sets, variables, log)
        db_variables = [name for name in variables if name.endswith("_dB")]
    else:
        layout = "dated rasters"
        variables, order, db_variables, found = _resolve_dated(o, datasets, log)
        mask_types = _dated_masks(o, found, mask_sets, variables, log)
    for name in variables:
        variables[name].sort(key=lambda obs: obs.date)
    grid = reference_grid(stack, o.reference) or Grid.of(datasets[0])
    if grid.crs is None:
        raise InputError("The input has no coordinate reference system; assign one first.")
    check_overlaps(((ds, f"'{os.path.basename(path)}'")
                    for path, ds in zip(o.inputs + o.masks, datasets + mask_sets)), grid)
    band_names = [f"{v}_{s}" for v in order for s in o.statistics]
    check_output(o.output_path, [o.output_path,
                                 sidecar_path(o.output_path) if o.output_path else None],
                 o.sources, "Temporal features")
    all_dates = sorted({obs.date for series in variables.values() for obs in series})
    plan = FeaturePlan(o.inputs, o.masks, layout, {v: variables[v] for v in order}, db_variables,
                       o.statistics, grid, band_names, all_dates, mask_types)
    return plan, datasets, mask_sets


def _stack_masks(o: FeatureOptions, dataset, mask_sets: list, variables: dict,
                 log: Log) -> Dict[int, str]:
    """For a multi-date stack: one mask raster with one band per stack band."""
    if not o.masks:
        return {}
    if len(o.masks) != 1 or mask_sets[0].count not in (1, len(dataset.descriptions)):
        raise InputError(
            f"For a multi-date stack give one mask raster with one band per band of the "
            f"stack ({dataset.count}); got {len(o.masks)} raster(s) with "
            f"{', '.join(str(m.count) for m in mask_sets)} band(s).")
    if mask_sets[0].count == 1:
        raise InputError("The mask has one band but the stack has many dates; give a mask "
                         "with one band per band of the stack.")
    for series in variables.values():
        for obs in series:
            obs.mask = (0, obs.band)
    return {0: _multiband_mask_type(o.masks[0], mask_sets[0], o.mask_type, log)}


def _resolve_dated(o: FeatureOptions, datasets: list, log: Log) -> tuple:
    """Variables, their order, the dB ones and the dates of several dated rasters with the same
    bands."""
    found, sources = raster_dates(o.inputs, datasets, o.given_dates)
    log(f"Dates of {len(o.inputs)} rasters from {', '.join(sorted(set(sources)))}.")
    names_of, kinds_of = zip(*(_dated_bands(path, ds) for path, ds in zip(o.inputs, datasets)))
    for path, names in zip(o.inputs[1:], names_of[1:]):
        if sorted(names) != sorted(names_of[0]):
            raise BandError(
                f"'{os.path.basename(path)}' has bands {', '.join(names)} but "
                f"'{os.path.basename(o.inputs[0])}' has {', '.join(names_of[0])}; every dated "
                "raster must have the same bands.")
    order = list(names_of[0])
    variables = {name: [] for name in order}
    for k, (date, names) in enumerate(zip(found, names_of)):
        for band, name in enumerate(names, start=1):
            variables[name].append(Observation(date, k, band))
    db_variables = [name for name, kind in zip(names_of[0], kinds_of[0])
                    if kind in ("db", "s1", "linear")]
    return variables, order, db_variables, found


def _dated_bands(path: str, ds) -> tuple:
    """Variable names and kinds of the bands of one dated raster."""
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
    return names, kinds


def _dated_masks(o: FeatureOptions, dates: list, mask_sets: list, variables: dict,
                 log: Log) -> Dict[int, str]:
    """For dated rasters: one mask per raster, paired by date, else by order."""
    if not o.masks:
        return {}
    pairing, types = pair_masks(dates, o.inputs, o.masks, mask_sets, o.mask_type, log)
    for series in variables.values():
        for obs in series:
            obs.mask = (pairing[obs.source], 1)
    return {m: types[m] for m in pairing}


def _multiband_mask_type(path, dataset, chosen, log) -> str:
    if mask_rules.is_landfusion_cloud_mask(path, dataset):
        return "cloudmask"
    if chosen == "scl" and not np.issubdtype(np.dtype(dataset.dtypes[0]), np.integer):
        raise InputError(f"Mask '{os.path.basename(path)}' is {dataset.dtypes[0]}, not SCL; choose "
                         "the binary mask type if non-zero means cloud.")
    return chosen
