"""The plan of a stacking run: everything decided from the open inputs before a pixel is read
(band identity, dates, the target grid, coverage, how each layer reaches the grid, the output
bands)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np

from ...errors import InputError, NoOverlapError
from ...indices.formulas import INDICES
from ...io.preflight import check_grid_size
from ...runtime import Log, no_log
from ...sensors import sentinel1 as sar
from ...sensors.bands import require_bands
from ...sensors.sentinel2 import detect_offset
from .grid import (
    Grid, aligned_offset, bounds_in, choose_resampling, crs_name, format_bounds,
    overlap_fraction, target_grid,
)
from .inputs import Layer, S1Date, s1_dates as read_s1_dates, s2_file_bands
from .options import StackOptions


@dataclass
class OutBand:
    """One band of the stack."""

    name: str
    sensor: str
    kind: str
    units: str
    sources: list
    date: Optional[str] = None
    polarisation: Optional[str] = None
    description: str = ""


@dataclass
class StackPlan:
    """What a stacking run will do, resolved and checked before any pixel is read."""

    grid: Grid
    layers: List[Layer]
    s1_dates: List[S1Date]
    s2_names: List[str]
    s2_used: List[str]
    s2_bands: List[str]
    indices: List[str]
    temporal: List[str]
    outputs: List[OutBand]
    s2_offset: float
    s2_offset_reason: str
    mask_layer: Optional[Layer]
    mask_type: str
    mask_classes: List[int]
    notes: List[str]
    warnings: List[str]
    s1_coverage: Dict[str, float]
    s2_coverage: Optional[float]


def plan_stack(datasets: Dict[str, object], options: StackOptions, log: Log = no_log
               ) -> StackPlan:
    """Resolves band identity, dates, the target grid and the output bands from open inputs.

    Args:
        datasets: every input path mapped to its open rasterio dataset.
        options: validated options (:meth:`StackOptions.validated`).

    Raises:
        InputError, BandError, NoOverlapError: with messages naming the input and the fix.
    """
    o = options
    notes: List[str] = list(o.notes)
    warnings: List[str] = []
    s2_files, needed = _sentinel2_bands(datasets, o)
    dates = _sentinel1_dates(datasets, o, log)
    grid = _grid(datasets, o, s2_files, dates, notes)
    s2_coverage, s1_coverage = _coverage(datasets, o, grid, s2_files, dates, warnings)
    layers, mask_layer = _layers(datasets, o, grid, s2_files, needed, dates)
    s2_offset, offset_reason = _reflectance_offset(datasets, o, s2_files)
    outputs = output_bands(dates, o, s2_files, notes)
    if not outputs:
        raise InputError("Nothing to write: choose Sentinel-2 bands, indices or Sentinel-1 inputs.")
    return StackPlan(grid, layers, dates, [name for name, _, _ in s2_files], needed,
                     list(o.s2_bands), o.indices, o.temporal, outputs, s2_offset, offset_reason,
                     mask_layer, o.mask_type, o.mask_classes, notes, warnings, s1_coverage,
                     s2_coverage)


def _sentinel2_bands(datasets, o: StackOptions) -> tuple:
    """Names the Sentinel-2 bands; returns ``(s2 files, bands needed)``. Without Sentinel-2,
    the band and index selections are emptied (in ``o``)."""
    s2_files = s2_file_bands(datasets, o.s2, o.s2_band_names) if o.s2 else []
    s2_names = [name for name, _, _ in s2_files]
    if s2_files:
        for name in o.indices:
            require_bands(s2_names, INDICES[name].bands, f"The index {name}")
        require_bands(s2_names, o.s2_bands, "The Sentinel-2 band selection")
    else:
        if o.preset:
            raise InputError("The Rouen preset needs one Sentinel-2 scene; none was given.")
        o.s2_bands, o.indices = [], []
    needed = sorted(set(o.s2_bands) | {b for i in o.indices for b in INDICES[i].bands})
    return s2_files, needed


def _sentinel1_dates(datasets, o: StackOptions, log: Log) -> List[S1Date]:
    dates = read_s1_dates(datasets, list(o.s1), log)
    if o.preset == "rouen":
        complete = [d for d in dates if {"VV", "VH"} <= set(d.layers)]
        if len(dates) != 4 or len(complete) != 4:
            raise InputError(
                f"The Rouen preset needs four Sentinel-1 dates with VV and VH; {len(dates)} "
                f"date(s) were given ({len(complete)} with both). Give four dates or choose no "
                "preset.")
    return dates


def _grid(datasets, o: StackOptions, s2_files, dates: List[S1Date], notes: List[str]) -> Grid:
    """The target grid: the reference's, else the finest Sentinel-2 band's (or the first
    Sentinel-1 date's), changed by the target CRS, resolution and extent when given."""
    if s2_files:
        base = min((datasets[p] for _, p, _ in s2_files), key=lambda d: abs(d.transform.a))
    else:
        base = datasets[dates[0].files[0]]
    grid, reason = target_grid(
        base, datasets[o.reference] if o.reference else None, o.target_crs, o.target_resolution,
        o.target_extent)
    if grid.crs is None:
        raise InputError(f"'{base.name}' has no CRS; the target grid needs one. Assign it first.")
    check_grid_size(grid.width, grid.height, what=f"The target grid ({reason})",
                    fix="Give the target pixel size in the units of the target CRS (metres for "
                        "UTM, degrees for EPSG:4326), or a smaller target extent.")
    notes.append(f"Target grid: {reason}; {grid.width} x {grid.height} pixels, "
                 f"{crs_name(grid.crs)}.")
    if grid.crs.is_geographic:
        notes.append("The target grid is in geographic coordinates; give a projected target "
                     "CRS (e.g. the UTM zone) for square metric pixels.")
    return grid


def _coverage(datasets, o: StackOptions, grid: Grid, s2_files, dates: List[S1Date],
              warnings: List[str]) -> tuple:
    """Returns ``(Sentinel-2 coverage, {date label: Sentinel-1 coverage})`` of the grid.

    Raises:
        NoOverlapError: when an input does not overlap the grid at all.
    """
    target_text = format_bounds(grid.bounds, grid.crs)
    s2_coverage = None
    if s2_files:
        paths = sorted({p for _, p, _ in s2_files})
        bounds = bounds_in(datasets[paths[0]], grid.crs)
        s2_coverage = overlap_fraction(bounds, grid)
        if s2_coverage <= 0:
            raise NoOverlapError(
                f"Sentinel-2 '{os.path.basename(paths[0])}' with extent "
                f"{format_bounds(bounds, grid.crs)} does not overlap the target grid "
                f"{target_text}. Choose a reference grid or extent that covers the scene.")
        if s2_coverage < 0.999:
            warnings.append(f"Sentinel-2 covers {100 * s2_coverage:.1f} % of the target grid; "
                            "Sentinel-2 bands are nodata elsewhere.")
    s1_coverage = {}
    for date in dates:
        path = date.files[0]
        bounds = bounds_in(datasets[path], grid.crs)
        fraction = overlap_fraction(bounds, grid)
        s1_coverage[date.label] = fraction
        if fraction <= 0:
            on_s2 = bool(s2_files) and not o.reference and o.target_extent is None
            other = "Sentinel-2" if on_s2 else "the target grid"
            raise NoOverlapError(
                f"Sentinel-1 '{os.path.basename(path)}' does not overlap {other}: the "
                f"Sentinel-1 extent is {format_bounds(bounds, grid.crs)} and the "
                f"{'Sentinel-2' if on_s2 else 'target grid'} extent is {target_text}. "
                + ("Give Sentinel-1 and Sentinel-2 scenes of the same area." if on_s2 else
                   "Choose a reference grid or extent that the Sentinel-1 scene covers."))
        if fraction < 0.999:
            warnings.append(
                f"Sentinel-1 of {date.label} covers only {100 * fraction:.1f} % of the target "
                f"grid ('{os.path.basename(path)}'); its bands are nodata outside that part.")
    return s2_coverage, s1_coverage


def _layers(datasets, o: StackOptions, grid: Grid, s2_files, needed, dates: List[S1Date]
            ) -> tuple:
    """Returns ``(layers, mask layer or None)``: every input band to bring onto the grid, with
    how (read as is, or warped with which resampling)."""
    layers: List[Layer] = []
    for name, path, band in s2_files:
        if name not in needed:
            continue
        ds = datasets[path]
        integer = np.issubdtype(np.dtype(ds.dtypes[band - 1]), np.integer)
        layers.append(Layer(f"S2:{name}", path, band, "s2", ds.nodatavals[band - 1], integer))
    for date in dates:
        layers.extend(date.layers.values())
    mask_layer = None
    if o.s2_mask:
        if not s2_files:
            raise InputError("A Sentinel-2 mask was given without a Sentinel-2 input.")
        ds = datasets[o.s2_mask]
        mask_layer = Layer("MASK", o.s2_mask, 1, "mask", ds.nodatavals[0], True)
        layers.append(mask_layer)
    for layer in layers:
        ds = datasets[layer.path]
        layer.offset = aligned_offset(ds, grid)
        layer.resampling = "none" if layer.offset else choose_resampling(ds, grid, layer.kind)
        bounds = bounds_in(ds, grid.crs)
        layer.scale = ((bounds[2] - bounds[0]) / ds.width / grid.resolution[0],
                       (bounds[3] - bounds[1]) / ds.height / grid.resolution[1])
    return layers, mask_layer


def _reflectance_offset(datasets, o: StackOptions, s2_files) -> tuple:
    """Returns ``(DN offset, where it comes from)``."""
    if not s2_files:
        return float(o.s2_offset or 0.0), "not used"
    if o.s2_offset is not None:
        return float(o.s2_offset), "as given"
    detected, reason = detect_offset(datasets[s2_files[0][1]], s2_files[0][1])
    return float(detected or 0.0), reason


def output_bands(s1_dates: List[S1Date], o: StackOptions, s2_files, notes: List[str]
                 ) -> List[OutBand]:
    """The bands of the stack, in order, named by the naming rule (docs/coregistration.md)."""
    units, with_ratio, with_rvi, temporal = (o.s1_output_units, o.s1_ratio, o.s1_rvi,
                                             o.temporal)
    s2_bands, indices, s2_values, preset = o.s2_bands, o.indices, o.s2_values, o.preset
    suffix = "dB" if units == "dB" else "lin"
    s1_bands: Dict[str, List[OutBand]] = {"VV": [], "VH": [], "HH": [], "HV": [], "RATIO": [],
                                          "RVI": []}
    for date in s1_dates:
        pols = [p for p in sar.POLARISATIONS if p in date.layers]
        files = [date.layers[p].path for p in pols]
        for pol in pols:
            s1_bands[pol].append(OutBand(
                f"{date.band_prefix}{pol}_{suffix}", "S1", "backscatter", units,
                [date.layers[pol].path], date.date, pol, f"Sentinel-1 {pol} backscatter"))
        pair = cross_pair(pols)
        if pair is None:
            missing = [f for f in ("ratio" if with_ratio else "", "RVI" if with_rvi else "") if f]
            notes.append(f"Sentinel-1 {date.label} has only {', '.join(pols)}: "
                         + (f"no {' and '.join(missing)} for this date." if missing
                            else "single-polarisation features only."))
            continue
        co, cross = pair
        if with_ratio:
            kind = "difference of dB values" if units == "dB" else "quotient of linear values"
            s1_bands["RATIO"].append(OutBand(
                f"{date.band_prefix}{co}{cross}_{suffix}", "S1", "ratio", units, files, date.date,
                f"{co}/{cross}", f"{co}/{cross} ratio as a {kind}"))
        if with_rvi:
            s1_bands["RVI"].append(OutBand(
                f"{date.band_prefix}RVI", "S1", "rvi", "unitless", files, date.date,
                f"{co}+{cross}", f"Radar vegetation index 4 {cross} / ({co} + {cross}), linear"))
    stats: List[OutBand] = []
    if temporal:
        for pol in sar.POLARISATIONS:
            dates = [d for d in s1_dates if pol in d.layers]
            if len(dates) < 2:
                if dates:
                    notes.append(f"Temporal statistics of {pol} need at least two dates; skipped.")
                continue
            for statistic in temporal:
                stat_units = units
                stats.append(OutBand(
                    f"S1_{pol}_{statistic}_{suffix}", "S1", f"temporal_{statistic}", stat_units,
                    [d.layers[pol].path for d in dates], None, pol,
                    f"Temporal {statistic} of {pol} over {len(dates)} dates"
                    + (" (mean taken in linear power)" if statistic == "mean" else "")))
    s2_units = "reflectance" if s2_values == "reflectance" else "DN"
    s2_source = {name: path for name, path, _ in s2_files}
    optical = [OutBand(f"S2_{b}", "S2", "band", s2_units, [s2_source[b]], None, None,
                       f"Sentinel-2 {b}") for b in s2_bands]
    index_bands = [OutBand(i, "S2", "index", "unitless",
                           sorted({s2_source[b] for b in INDICES[i].bands}), None, None,
                           f"{INDICES[i].title}: {INDICES[i].formula}") for i in indices]
    if preset == "rouen":
        order = s1_bands["VV"] + s1_bands["VH"] + s1_bands["RATIO"] + index_bands + optical
    else:
        by_date = []
        for date in s1_dates:
            for group in ("VV", "VH", "HH", "HV", "RATIO", "RVI"):
                by_date += [b for b in s1_bands[group] if b.name.startswith(date.band_prefix)]
        order = by_date + stats + optical + index_bands
    return order


def cross_pair(pols) -> Optional[Tuple[str, str]]:
    """The co- and cross-polarisation pair among ``pols`` (VV/VH or HH/HV), or None."""
    if "VV" in pols and "VH" in pols:
        return "VV", "VH"
    if "HH" in pols and "HV" in pols:
        return "HH", "HV"
    return None
