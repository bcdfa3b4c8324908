"""Co-registration of Sentinel-1 dates and Sentinel-2 bands onto one grid, as one named stack.

The stack is a float32 GeoTIFF whose band descriptions say what each band is, never when
(``S1_VV_dB`` for one Sentinel-1 date, ``S1_T1_VV_dB``, ``S1_T2_VV_dB`` by rank for several;
``S2_B04``, ``NDVI``), so one model classifies the stacks of other dates. Acquisition dates are
band and raster metadata and are listed in a JSON sidecar (``<output>.json``) with bands,
sources, units and processing choices (docs/coregistration.md, "The naming rule").

How inputs reach the target grid:

- an input already on the grid (same CRS, same pixel size, origin on the grid) is read as is,
  so its values come through bit-identical;
- other inputs are warped with GDAL, block by block: bilinear for continuous values (average
  when the input is finer than the grid), nearest for masks; Sentinel-1 backscatter is warped in
  linear power, never in dB.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..choices import TEMPORAL_STATISTICS
from ..io import raster as raster_io
from ..sensors import sentinel1 as sar
from ..sensors.bands import (
    normalise_s2_band, parse_band_list, require_bands, resolve_s2_band_names,
)
from ..sensors.sentinel2 import (
    DN_SCALE, S2_BAND_NAMES, SCL_CLOUD_CLASSES, SCL_NO_DATA, SCL_SATURATED, SCL_SNOW,
    detect_offset,
)
from ..errors import BandError, InputError, LandFusionError, NoOverlapError, OutputError
from ..indices.formulas import DEFAULT_INDICES, INDICES, evaluate_index
from ..runtime import IsCancelled, Log, Progress, never_cancelled, no_log, no_progress

#: Sentinel-2 bands written by default.
DEFAULT_S2_BANDS = ("B02", "B03", "B04", "B08")
PRESETS = {
    "rouen": "Rouen study, 20 bands: VV_1..4, VH_1..4, VVVH_1..4 (dB), NDVI, SAVI, BAI, NDWI, "
             "B2, B3, B4, B8 from four Sentinel-1 dates and one Sentinel-2 scene",
}
SIDECAR_SUFFIX = ".json"


def sidecar_path(output_path: str) -> str:
    """Returns the path of the JSON sidecar written beside a stack."""
    return output_path + SIDECAR_SUFFIX


# ---------------------------------------------------------------------------------------------
# Plan: everything decided before a pixel is read
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Grid:
    """The target pixel grid."""

    crs: object
    transform: object
    width: int
    height: int

    @property
    def bounds(self) -> tuple:
        """(left, bottom, right, top) in the grid's CRS."""
        from rasterio.transform import array_bounds

        b = array_bounds(self.height, self.width, self.transform)
        return (b[0], b[1], b[2], b[3])

    @property
    def resolution(self) -> tuple:
        """Pixel size (x, y), positive."""
        return (abs(self.transform.a), abs(self.transform.e))


@dataclass
class Layer:
    """One band of one input file that must be brought onto the target grid."""

    key: str
    path: str
    band: int
    kind: str  # 's2', 's1' or 'mask'
    nodata: Optional[float]
    integer: bool
    resampling: str = "none"  # 'none' (read as is), 'bilinear', 'average' or 'nearest'
    offset: Optional[Tuple[int, int]] = None  # (col, row) of the grid origin in the input
    scale: Tuple[float, float] = (1.0, 1.0)  # input / grid pixel size, per axis


@dataclass
class S1Date:
    """One Sentinel-1 acquisition: its polarisations and where they come from."""

    label: str
    date: Optional[str]
    layers: Dict[str, Layer] = field(default_factory=dict)
    #: Start of this date's band names: ``S1_`` for a single date, ``S1_T<rank>_`` otherwise.
    band_prefix: str = "S1_"

    @property
    def files(self) -> list:
        """The input files of this date."""
        return sorted({layer.path for layer in self.layers.values()})


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


def _grid_of(dataset) -> Grid:
    return Grid(dataset.crs, dataset.transform, dataset.width, dataset.height)


def _crs_name(crs) -> str:
    if crs is None:
        return "no CRS"
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.to_string()[:60]


def _format_bounds(bounds, crs) -> str:
    left, bottom, right, top = bounds
    digits = 6 if crs is not None and crs.is_geographic else 1
    return (f"[{left:.{digits}f}, {bottom:.{digits}f}, {right:.{digits}f}, {top:.{digits}f}] "
            f"({_crs_name(crs)})")


def _bounds_in(dataset, crs) -> tuple:
    from rasterio.warp import transform_bounds

    if dataset.crs is None:
        raise InputError(
            f"'{dataset.name}' has no coordinate reference system, so it cannot be placed on the "
            "target grid. Assign its CRS (Raster > Projections > Assign Projection) first.")
    if dataset.crs == crs:
        return tuple(dataset.bounds)
    return tuple(transform_bounds(dataset.crs, crs, *dataset.bounds, densify_pts=21))


def _overlap_fraction(bounds, grid: Grid) -> float:
    left, bottom, right, top = grid.bounds
    width = max(0.0, min(right, bounds[2]) - max(left, bounds[0]))
    height = max(0.0, min(top, bounds[3]) - max(bottom, bounds[1]))
    return (width * height) / ((right - left) * (top - bottom))


def _aligned_offset(dataset, grid: Grid) -> Optional[Tuple[int, int]]:
    """Returns the integer pixel offset of the grid in ``dataset`` when both share the grid."""
    if dataset.crs != grid.crs:
        return None
    s, g = dataset.transform, grid.transform
    if s.b != 0 or s.d != 0 or g.b != 0 or g.d != 0:
        return None
    tolerance = 1e-6
    if abs(s.a - g.a) > tolerance * abs(g.a) or abs(s.e - g.e) > tolerance * abs(g.e):
        return None
    col = (g.c - s.c) / s.a
    row = (g.f - s.f) / s.e
    if abs(col - round(col)) > 1e-6 or abs(row - round(row)) > 1e-6:
        return None
    return int(round(col)), int(round(row))


def _resolution_in(dataset, crs) -> float:
    """Approximate pixel size of ``dataset`` in the units of ``crs`` (mean of x and y)."""
    bounds = _bounds_in(dataset, crs)
    width, height = bounds[2] - bounds[0], bounds[3] - bounds[1]
    return 0.5 * (width / dataset.width + height / dataset.height)


def _choose_resampling(dataset, grid: Grid, kind: str) -> str:
    if kind == "mask":
        return "nearest"
    source = _resolution_in(dataset, grid.crs)
    target = 0.5 * sum(grid.resolution)
    return "average" if source < target / 1.2 else "bilinear"


def target_grid(base, reference=None, crs=None, resolution=None, extent=None) -> Tuple[Grid, str]:
    """Works out the target grid.

    Args:
        base: open dataset whose grid is the default (the finest Sentinel-2 band).
        reference: open dataset whose grid to use exactly, or None.
        crs: target CRS (anything rasterio's CRS accepts), or None for the base's.
        resolution: target pixel size in CRS units, or None for the base's.
        extent: (xmin, ymin, xmax, ymax) in the target CRS, or None for the base's footprint.

    Returns:
        The grid and a sentence saying where it comes from.
    """
    from rasterio.crs import CRS
    from rasterio.transform import from_origin

    if reference is not None:
        return _grid_of(reference), f"grid of the reference raster '{reference.name}'"
    if crs is None and not resolution and extent is None:
        return _grid_of(base), f"grid of '{os.path.basename(base.name)}'"
    try:
        target_crs = CRS.from_user_input(crs) if crs else base.crs
    except Exception as exc:  # rasterio raises CRSError, a ValueError subclass, among others
        raise InputError(f"The target CRS '{crs}' is not understood: {exc}") from exc
    if resolution is not None and resolution <= 0:
        raise InputError("The target resolution must be a positive number of CRS units.")
    if not resolution:
        if target_crs == base.crs:
            resolution = abs(base.transform.a)
        else:
            resolution = _resolution_in(base, target_crs)
    if extent is None and target_crs == base.crs and base.transform.b == base.transform.d == 0:
        # Same CRS, new pixel size: keep the input's origin so pixels nest (20 m -> 10 m).
        left, top = base.transform.c, base.transform.f
        width = max(1, int(math.ceil(base.width * abs(base.transform.a) / resolution - 1e-9)))
        height = max(1, int(math.ceil(base.height * abs(base.transform.e) / resolution - 1e-9)))
        grid = Grid(target_crs, from_origin(left, top, resolution, resolution), width, height)
        return grid, f"{_crs_name(target_crs)} grid at {resolution:g} units per pixel"
    if extent is None:
        extent = _bounds_in(base, target_crs)
    left, bottom, right, top = extent
    if not (right > left and top > bottom):
        raise InputError(f"The target extent {extent} is empty; give xmin < xmax and ymin < ymax.")
    # Snap the extent outwards onto multiples of the pixel size, as gdalwarp -tap does.
    left = math.floor(left / resolution + 1e-9) * resolution
    top = math.ceil(top / resolution - 1e-9) * resolution
    width = max(1, int(math.ceil((right - left) / resolution - 1e-9)))
    height = max(1, int(math.ceil((top - bottom) / resolution - 1e-9)))
    grid = Grid(target_crs, from_origin(left, top, resolution, resolution), width, height)
    return grid, f"{_crs_name(target_crs)} grid at {resolution:g} units per pixel"


def _s2_file_bands(datasets, paths, explicit: Optional[str]) -> List[Tuple[str, str, int]]:
    """Returns (band name, path, band index) for the Sentinel-2 input(s)."""
    if len(paths) == 1:
        ds = datasets[paths[0]]
        descriptions = raster_io.band_descriptions(ds)
        if ds.count == 1 and not (explicit and explicit.strip()) and not normalise_s2_band(
                descriptions[0] or ""):
            descriptions = [os.path.basename(paths[0])]
        names = resolve_s2_band_names(explicit, descriptions, f"'{os.path.basename(paths[0])}'")
        return [(name, paths[0], i + 1) for i, name in enumerate(names)]
    total = sum(datasets[p].count for p in paths)
    if explicit and explicit.strip():
        names = parse_band_list(explicit)
        if len(names) != total:
            raise BandError(
                f"{len(names)} Sentinel-2 band names were given ({', '.join(names)}) for "
                f"{total} bands in {len(paths)} files. Give one name per band, in the order of "
                "the files and their bands.")
        found = []
        for path in paths:
            found += [(path, band) for band in range(1, datasets[path].count + 1)]
        triples = [(name, path, band) for name, (path, band) in zip(names, found)]
    else:
        triples = []
        for path in paths:
            ds = datasets[path]
            base = os.path.basename(path)
            if ds.count > 1:
                names = resolve_s2_band_names(None, raster_io.band_descriptions(ds), f"'{base}'")
                triples += [(name, path, i + 1) for i, name in enumerate(names)]
                continue
            description = raster_io.band_descriptions(ds)[0]
            name = normalise_s2_band(description) if description else None
            name = name or normalise_s2_band(path)
            if name is None:
                raise BandError(
                    f"The Sentinel-2 band of '{base}' is unknown: neither its file name nor its "
                    "band description names it (e.g. ..._B04.tif). Rename the file or give the "
                    "band names in order.")
            triples.append((name, path, 1))
    names = [name for name, _, _ in triples]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise BandError(f"Sentinel-2 band(s) {', '.join(duplicates)} given more than once.")
    return triples


def _s1_file_bands(ds, path: str, log: Log) -> List[Tuple[str, int]]:
    """Returns (polarisation, band index) for one Sentinel-1 file."""
    base = os.path.basename(path)
    described = [sar.polarisation_from_text(d) for d in raster_io.band_descriptions(ds)]
    if any(described):
        found = [(pol, i + 1) for i, pol in enumerate(described) if pol]
        pols = [p for p, _ in found]
        if len(set(pols)) != len(pols):
            raise InputError(f"The band descriptions of '{base}' name a polarisation twice.")
        return found
    from_name = sar.polarisation_from_text(path)
    if ds.count == 1:
        if from_name is None:
            log(f"'{base}': no polarisation in the band description or file name; taken as VV.")
        return [(from_name or "VV", 1)]
    if ds.count == 2:
        log(f"'{base}': bands are not named; band 1 is taken as VV and band 2 as VH.")
        return [("VV", 1), ("VH", 2)]
    raise InputError(
        f"'{base}' has {ds.count} bands whose descriptions do not name their polarisation. Give "
        "one file per polarisation, a 2-band VV/VH raster, or name the bands (VV, VH).")


def _s1_dates(datasets, paths, log: Log) -> List[S1Date]:
    groups: Dict[tuple, S1Date] = {}
    for path in paths:
        ds = datasets[path]
        date = sar.date_from_text(os.path.basename(path), path, *(ds.tags() or {}).values())
        stem = os.path.splitext(os.path.basename(path))[0]
        pol_in_name = sar.polarisation_from_text(stem)
        if pol_in_name:
            stem = stem[: stem.upper().rfind(pol_in_name)]
        key = (os.path.dirname(os.path.abspath(path)), stem.rstrip("_-. "), date)
        group = groups.setdefault(key, S1Date(label="", date=date))
        for pol, band in _s1_file_bands(ds, path, log):
            if pol in group.layers:
                other = os.path.basename(group.layers[pol].path)
                raise InputError(
                    f"Polarisation {pol} of the Sentinel-1 acquisition of "
                    f"'{os.path.basename(path)}' is given twice (also by '{other}'). Give each "
                    "polarisation of a date once.")
            nodata = ds.nodatavals[band - 1]
            group.layers[pol] = Layer(f"S1:{pol}", path, band, "s1", nodata, False)
    dates = list(groups.values())
    if all(d.date for d in dates):
        dates.sort(key=lambda d: d.date)
    used = {}
    for i, date in enumerate(dates, start=1):
        label = date.date or f"T{i}"
        used[label] = used.get(label, 0) + 1
        date.label = label if used[label] == 1 else f"{label}_{used[label]}"
        date.band_prefix = "S1_" if len(dates) == 1 else f"S1_T{i}_"
        for pol, layer in date.layers.items():
            layer.key = f"S1:{date.label}:{pol}"
    return dates


def _sample(ds, band: int, nodata, size: int = 128) -> np.ndarray:
    """Reads a few small windows spread over a band (cheap, even on huge scenes)."""
    from rasterio.windows import Window

    w, h = min(size, ds.width), min(size, ds.height)
    spots = {(0.5, 0.5), (0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)}
    parts = []
    for fx, fy in sorted(spots):
        col = int(min(max(0, fx * ds.width - w / 2), ds.width - w))
        row = int(min(max(0, fy * ds.height - h / 2), ds.height - h))
        parts.append(ds.read(band, window=Window(col, row, w, h)).astype(np.float32).ravel())
    return _invalid_to_nan(np.concatenate(parts), nodata)


def _check_units(datasets, s1_dates: List[S1Date], units: str, warn: Log) -> None:
    for date in s1_dates:
        for pol, layer in date.layers.items():
            sample = _sample(datasets[layer.path], layer.band, layer.nodata)
            looks = sar.guess_units(sample)
            if looks and looks != units:
                warn(f"Sentinel-1 {pol} of {date.label} ('{os.path.basename(layer.path)}') is said "
                     f"to be in {units} but its values look like {looks} (median "
                     f"{float(np.nanmedian(sample)):.3g}). Check the input units parameter.")


def plan_stack(
    datasets: Dict[str, object],
    s2: Sequence[str] = (),
    s2_band_names: Optional[str] = None,
    s2_mask: Optional[str] = None,
    mask_type: str = "scl",
    mask_snow: bool = False,
    mask_saturated: bool = False,
    s2_bands: Optional[Sequence[str]] = DEFAULT_S2_BANDS,
    indices: Sequence[str] = DEFAULT_INDICES,
    s2_offset: Optional[float] = None,
    s2_scale: float = DN_SCALE,
    s2_values: str = "reflectance",
    s1: Sequence[str] = (),
    s1_units: str = "dB",
    s1_output_units: str = "dB",
    s1_ratio: bool = True,
    s1_rvi: bool = False,
    temporal: Sequence[str] = (),
    preset: Optional[str] = None,
    reference: Optional[str] = None,
    target_crs=None,
    target_resolution: Optional[float] = None,
    target_extent=None,
    log: Log = no_log,
    warn: Log = no_log,
) -> StackPlan:
    """Resolves band identity, dates, the target grid and the output bands from open inputs.

    ``datasets`` maps every input path to its open rasterio dataset. See
    :func:`coregister_stack` for the arguments.

    Raises:
        InputError, BandError, NoOverlapError: with messages naming the input and the fix.
    """
    notes: List[str] = []
    warnings: List[str] = []
    s1_units = _units(s1_units, "input")
    s1_output_units = _units(s1_output_units, "output")
    if not s2 and not s1:
        raise InputError("Give at least one Sentinel-2 or Sentinel-1 input.")
    preset = (preset or "").strip().lower() or None
    if preset and preset not in PRESETS:
        raise InputError(f"Unknown preset '{preset}'. Available: {', '.join(PRESETS)}.")
    if preset == "rouen":
        s2_bands, indices = list(DEFAULT_S2_BANDS), list(DEFAULT_INDICES)
        s1_output_units, s1_ratio, s1_rvi, temporal = "dB", True, False, []
        notes.append("Rouen preset: VV, VH and VV/VH in dB for four dates, NDVI, SAVI, BAI, "
                     "NDWI, B02, B03, B04, B08 (other feature choices are ignored).")
    indices = [i.strip().upper() for i in indices if i and i.strip()]
    unknown = [i for i in indices if i not in INDICES]
    if unknown:
        raise InputError(
            f"Unknown index(es): {', '.join(unknown)}. Available: {', '.join(INDICES)}.")
    temporal = [t.strip().lower() for t in temporal if t and t.strip()]
    bad = [t for t in temporal if t not in TEMPORAL_STATISTICS]
    if bad:
        raise InputError(f"Unknown temporal statistic(s) {', '.join(bad)}; use "
                         f"{', '.join(TEMPORAL_STATISTICS)}.")
    mask_type = (mask_type or "scl").strip().lower()
    if mask_type not in ("scl", "binary"):
        raise InputError(f"The mask type must be 'scl' or 'binary', not '{mask_type}'.")
    mask_classes = sorted(set(SCL_CLOUD_CLASSES) | ({SCL_SNOW} if mask_snow else set())
                          | ({SCL_SATURATED} if mask_saturated else set()))
    if s2_values not in ("reflectance", "dn"):
        raise InputError("Sentinel-2 values must be 'reflectance' or 'dn'.")
    if not s2_scale or not np.isfinite(s2_scale):
        raise InputError("The reflectance scale must be a non-zero number (10000 for Sentinel-2).")
    s2_bands = [normalise_s2_band(b) or b for b in (s2_bands or [])]
    not_s2 = [b for b in s2_bands if b not in S2_BAND_NAMES]
    if not_s2:
        raise BandError(f"'{not_s2[0]}' is not a Sentinel-2 band name (use B02, B8A, ...).")

    # Sentinel-2 band identity.
    s2 = list(s2)
    s2_files = _s2_file_bands(datasets, s2, s2_band_names) if s2 else []
    s2_names = [name for name, _, _ in s2_files]
    if s2_files:
        for name in indices:
            require_bands(s2_names, INDICES[name].bands, f"The index {name}")
        require_bands(s2_names, s2_bands, "The Sentinel-2 band selection")
    if not s2_files:
        if preset:
            raise InputError("The Rouen preset needs one Sentinel-2 scene; none was given.")
        s2_bands, indices = [], []
    needed = sorted(set(s2_bands) | {b for i in indices for b in INDICES[i].bands})

    # Sentinel-1 dates and polarisations.
    s1_dates = _s1_dates(datasets, list(s1), log)
    if preset == "rouen":
        complete = [d for d in s1_dates if {"VV", "VH"} <= set(d.layers)]
        if len(s1_dates) != 4 or len(complete) != 4:
            raise InputError(
                f"The Rouen preset needs four Sentinel-1 dates with VV and VH; {len(s1_dates)} "
                f"date(s) were given ({len(complete)} with both). Give four dates or choose no "
                "preset.")

    # Target grid.
    base = None
    if s2_files:
        base = min((datasets[p] for _, p, _ in s2_files), key=lambda d: abs(d.transform.a))
    elif s1_dates:
        base = datasets[s1_dates[0].files[0]]
    grid, grid_reason = target_grid(
        base, datasets[reference] if reference else None, target_crs, target_resolution,
        target_extent)
    if grid.crs is None:
        raise InputError(f"'{base.name}' has no CRS; the target grid needs one. Assign it first.")
    notes.append(f"Target grid: {grid_reason}; {grid.width} x {grid.height} pixels, "
                 f"{_crs_name(grid.crs)}.")
    if grid.crs.is_geographic:
        notes.append("The target grid is in geographic coordinates; give a projected target "
                     "CRS (e.g. the UTM zone) for square metric pixels.")
    target_text = _format_bounds(grid.bounds, grid.crs)

    # Coverage of the target grid by each input.
    s2_coverage = None
    if s2_files:
        paths = sorted({p for _, p, _ in s2_files})
        bounds = _bounds_in(datasets[paths[0]], grid.crs)
        s2_coverage = _overlap_fraction(bounds, grid)
        if s2_coverage <= 0:
            raise NoOverlapError(
                f"Sentinel-2 '{os.path.basename(paths[0])}' with extent "
                f"{_format_bounds(bounds, grid.crs)} does not overlap the target grid "
                f"{target_text}. Choose a reference grid or extent that covers the scene.")
        if s2_coverage < 0.999:
            warnings.append(f"Sentinel-2 covers {100 * s2_coverage:.1f} % of the target grid; "
                            "Sentinel-2 bands are nodata elsewhere.")
    s1_coverage = {}
    for date in s1_dates:
        path = date.files[0]
        bounds = _bounds_in(datasets[path], grid.crs)
        fraction = _overlap_fraction(bounds, grid)
        s1_coverage[date.label] = fraction
        if fraction <= 0:
            on_s2 = bool(s2_files) and not reference and target_extent is None
            other = "Sentinel-2" if on_s2 else "the target grid"
            raise NoOverlapError(
                f"Sentinel-1 '{os.path.basename(path)}' does not overlap {other}: the "
                f"Sentinel-1 extent is {_format_bounds(bounds, grid.crs)} and the "
                f"{'Sentinel-2' if on_s2 else 'target grid'} extent is {target_text}. "
                + ("Give Sentinel-1 and Sentinel-2 scenes of the same area." if on_s2 else
                   "Choose a reference grid or extent that the Sentinel-1 scene covers."))
        if fraction < 0.999:
            warnings.append(
                f"Sentinel-1 of {date.label} covers only {100 * fraction:.1f} % of the target "
                f"grid ('{os.path.basename(path)}'); its bands are nodata outside that part.")

    # Layers to bring onto the grid.
    layers: List[Layer] = []
    for name, path, band in s2_files:
        if name not in needed:
            continue
        ds = datasets[path]
        integer = np.issubdtype(np.dtype(ds.dtypes[band - 1]), np.integer)
        layers.append(Layer(f"S2:{name}", path, band, "s2", ds.nodatavals[band - 1], integer))
    for date in s1_dates:
        layers.extend(date.layers.values())
    mask_layer = None
    if s2_mask:
        if not s2_files:
            raise InputError("A Sentinel-2 mask was given without a Sentinel-2 input.")
        ds = datasets[s2_mask]
        mask_layer = Layer("MASK", s2_mask, 1, "mask", ds.nodatavals[0], True)
        layers.append(mask_layer)
    for layer in layers:
        ds = datasets[layer.path]
        layer.offset = _aligned_offset(ds, grid)
        layer.resampling = "none" if layer.offset else _choose_resampling(ds, grid, layer.kind)
        bounds = _bounds_in(ds, grid.crs)
        layer.scale = ((bounds[2] - bounds[0]) / ds.width / grid.resolution[0],
                       (bounds[3] - bounds[1]) / ds.height / grid.resolution[1])

    # Sentinel-2 reflectance offset.
    offset_reason = "not used"
    if s2_files:
        if s2_offset is None:
            detected, offset_reason = detect_offset(datasets[s2_files[0][1]], s2_files[0][1])
            s2_offset = detected if detected is not None else 0.0
        else:
            offset_reason = "as given"
    s2_offset = float(s2_offset or 0.0)

    # Output bands.
    outputs = _output_bands(s1_dates, s1_output_units, s1_ratio, s1_rvi, temporal, s2_bands,
                            indices, s2_values, s2_files, preset, notes)
    if not outputs:
        raise InputError("Nothing to write: choose Sentinel-2 bands, indices or Sentinel-1 inputs.")
    return StackPlan(grid, layers, s1_dates, s2_names, needed, list(s2_bands), indices, temporal,
                     outputs, s2_offset, offset_reason, mask_layer, mask_type, mask_classes, notes,
                     warnings, s1_coverage, s2_coverage)


def _units(text: str, what: str) -> str:
    value = (text or "dB").strip().lower()
    if value in ("db", "decibel", "decibels"):
        return "dB"
    if value in ("linear", "lin", "power"):
        return "linear"
    raise InputError(f"Sentinel-1 {what} units must be 'dB' or 'linear', not '{text}'.")


def _output_bands(s1_dates, units, with_ratio, with_rvi, temporal, s2_bands, indices, s2_values,
                  s2_files, preset, notes) -> List[OutBand]:
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
        pair = _cross_pair(pols)
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
                f"{date.band_prefix}RVI", "S1", "rvi", "unitless", files, date.date, f"{co}+{cross}",
                f"Radar vegetation index 4 {cross} / ({co} + {cross}), linear"))
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


def _cross_pair(pols) -> Optional[Tuple[str, str]]:
    if "VV" in pols and "VH" in pols:
        return "VV", "VH"
    if "HH" in pols and "HV" in pols:
        return "HH", "HV"
    return None


# ---------------------------------------------------------------------------------------------
# Pixels: reading a block of every layer on the target grid
# ---------------------------------------------------------------------------------------------


def _invalid_to_nan(values: np.ndarray, nodata) -> np.ndarray:
    values = values.astype(np.float32)
    if nodata is not None and not np.isnan(nodata):
        values[values == np.float32(nodata)] = np.nan
    return values


def _group_layers(layers: Sequence[Layer]) -> List[List[Layer]]:
    """Groups layers read together: same file, same way onto the grid (one read, one warp)."""
    groups: Dict[tuple, List[Layer]] = {}
    for layer in layers:
        key = (layer.path, layer.kind, layer.resampling, layer.offset, layer.scale)
        groups.setdefault(key, []).append(layer)
    return list(groups.values())


def _read_bands(ds, layers: Sequence[Layer], window) -> np.ndarray:
    """Reads the bands of ``layers`` as float32 with NaN where invalid."""
    data = ds.read([layer.band for layer in layers], window=window).astype(np.float32, copy=False)
    for k, layer in enumerate(layers):
        if layer.nodata is not None and not np.isnan(layer.nodata):
            data[k][data[k] == np.float32(layer.nodata)] = np.nan
    return data


def _read_aligned(ds, layers: Sequence[Layer], grid: Grid, window) -> np.ndarray:
    """Reads a window of layers that already lie on the grid (no resampling)."""
    from rasterio.windows import Window

    col_off, row_off, width, height = window
    out = np.full((len(layers), height, width), np.nan, dtype=np.float32)
    col0, row0 = layers[0].offset
    src_col = max(0, col0 + col_off)
    src_row = max(0, row0 + row_off)
    src_col_end = min(ds.width, col0 + col_off + width)
    src_row_end = min(ds.height, row0 + row_off + height)
    if src_col_end <= src_col or src_row_end <= src_row:
        return out
    data = _read_bands(ds, layers, Window(src_col, src_row, src_col_end - src_col,
                                          src_row_end - src_row))
    dst_col, dst_row = src_col - col0 - col_off, src_row - row0 - row_off
    out[:, dst_row:dst_row + data.shape[1], dst_col:dst_col + data.shape[2]] = data
    return out


def _warp(ds, layers: Sequence[Layer], grid: Grid, window, to_linear: bool,
          threads: int) -> np.ndarray:
    """Warps the part of layers under a window (col, row, width, height) of the grid."""
    from rasterio.enums import Resampling
    from rasterio.transform import array_bounds
    from rasterio.warp import reproject, transform_bounds
    from rasterio.windows import Window, from_bounds

    first = layers[0]
    col_off, row_off, width, height = window
    transform = grid.transform * grid.transform.translation(col_off, row_off)
    out = np.full((len(layers), height, width), np.nan, dtype=np.float32)
    b = array_bounds(height, width, transform)
    try:
        left, bottom, right, top = transform_bounds(grid.crs, ds.crs, *b, densify_pts=21)
    except Exception:  # pragma: no cover - block outside the source projection's domain
        return out
    window = from_bounds(left, bottom, right, top, transform=ds.transform)
    margin = 2 + int(math.ceil(1.0 / max(1e-6, min(first.scale))))  # kernel reach, input pixels
    col0 = max(0, int(math.floor(window.col_off)) - margin)
    row0 = max(0, int(math.floor(window.row_off)) - margin)
    col1 = min(ds.width, int(math.ceil(window.col_off + window.width)) + margin)
    row1 = min(ds.height, int(math.ceil(window.row_off + window.height)) + margin)
    if col1 <= col0 or row1 <= row0:
        return out
    src_window = Window(col0, row0, col1 - col0, row1 - row0)
    data = _read_bands(ds, layers, src_window)
    if first.kind == "s2" and first.integer:
        data[data == 0] = np.nan  # Sentinel-2 NO_DATA, not to be blended into its neighbours
    if to_linear:
        data = sar.db_to_linear(data)
    # GDAL's per-pixel validity checks cost about half the warp: only ask for them when needed.
    src_nodata = np.nan if np.isnan(data).any() else None
    reproject(
        data, out, src_transform=ds.window_transform(src_window), src_crs=ds.crs,
        src_nodata=src_nodata, dst_transform=transform, dst_crs=grid.crs, dst_nodata=np.nan,
        resampling=getattr(Resampling, first.resampling), num_threads=threads,
        init_dest_nodata=True,
        # The kernel scale of the whole warp, not one the warper would guess from this block.
        XSCALE=str(first.scale[0]), YSCALE=str(first.scale[1]))
    return out


# ---------------------------------------------------------------------------------------------
# The engine function
# ---------------------------------------------------------------------------------------------


def _open_all(paths: Dict[str, str], stack: "contextlib.ExitStack") -> Dict[str, object]:
    datasets = {}
    for path, what in paths.items():
        if path not in datasets:
            datasets[path] = stack.enter_context(raster_io.open_raster(path, what))
    return datasets


def _input_paths(s2, s2_mask, s1, reference) -> Dict[str, str]:
    paths: Dict[str, str] = {}
    for path in s2:
        paths.setdefault(path, "Sentinel-2 input")
    if s2_mask:
        paths.setdefault(s2_mask, "Sentinel-2 mask")
    for path in s1:
        paths.setdefault(path, "Sentinel-1 input")
    if reference:
        paths.setdefault(reference, "Reference grid raster")
    return paths


def check_stack(s2=(), s2_mask=None, s1=(), reference=None, **options) -> StackPlan:
    """Opens the inputs and checks them without reading pixels (see :func:`plan_stack`)."""
    import contextlib

    options = {k: v for k, v in options.items()
               if k not in ("output_path", "memory_mb", "compress", "progress", "is_cancelled",
                            "speckle_filter", "speckle_window", "enl", "savi_l", "threads")}
    with raster_io.gdal_env(), contextlib.ExitStack() as stack:
        datasets = _open_all(_input_paths(s2, s2_mask, s1, reference), stack)
        return plan_stack(datasets, s2=s2, s2_mask=s2_mask, s1=s1, reference=reference, **options)


def coregister_stack(
    output_path: str,
    s2: Sequence[str] = (),
    s2_band_names: Optional[str] = None,
    s2_mask: Optional[str] = None,
    mask_type: str = "scl",
    mask_snow: bool = False,
    mask_saturated: bool = False,
    s2_bands: Optional[Sequence[str]] = DEFAULT_S2_BANDS,
    indices: Sequence[str] = DEFAULT_INDICES,
    s2_offset: Optional[float] = None,
    s2_scale: float = DN_SCALE,
    s2_values: str = "reflectance",
    savi_l: float = 0.5,
    s1: Sequence[str] = (),
    s1_units: str = "dB",
    s1_output_units: str = "dB",
    s1_ratio: bool = True,
    s1_rvi: bool = False,
    speckle_filter: Optional[str] = None,
    speckle_window: int = 5,
    enl: float = sar.DEFAULT_ENL,
    temporal: Sequence[str] = (),
    preset: Optional[str] = None,
    reference: Optional[str] = None,
    target_crs=None,
    target_resolution: Optional[float] = None,
    target_extent=None,
    memory_mb: float = raster_io.DEFAULT_MEMORY_MB,
    compress: str = "ZSTD",
    threads: int = 2,
    progress: Progress = no_progress,
    is_cancelled: IsCancelled = never_cancelled,
    log: Log = no_log,
    warn: Log = no_log,
) -> dict:
    """Puts Sentinel-1 dates and Sentinel-2 bands and indices on one grid as one named stack.

    Args:
        output_path: GeoTIFF to write (float32, tiled, compressed, nodata -9999); the JSON
            sidecar is written to ``output_path + '.json'``.
        s2: one multi-band Sentinel-2 raster, or one single-band file per band.
        s2_band_names: comma-separated band names in order (of the bands, or of the files) when
            descriptions and file names do not name them.
        s2_mask: optional scene classification (SCL) or cloud mask raster.
        mask_type: 'scl' (classes 3, 8, 9, 10 masked) or 'binary' (non-zero = cloud).
        mask_snow, mask_saturated: with SCL, also mask snow (11) / saturated pixels (1).
        s2_bands: Sentinel-2 bands to write.
        indices: spectral indices to write (names from :data:`indices.INDICES`).
        s2_offset, s2_scale: reflectance = (DN + offset) / scale; offset None detects it.
        s2_values: 'reflectance' or 'dn' (bands written as stored, bit-identical on the grid).
        savi_l: SAVI soil factor.
        s1: Sentinel-1 rasters: per date a 2-band VV/VH raster or one file per polarisation.
        s1_units, s1_output_units: 'dB' or 'linear'.
        s1_ratio, s1_rvi: write the VV/VH ratio and the radar vegetation index per date.
        speckle_filter: None or 'lee'; speckle_window: odd window size; enl: looks of the input.
        temporal: statistics across dates per polarisation: 'mean', 'std', 'min', 'max'.
        preset: None or 'rouen' (20-band layout of the Rouen study).
        reference: raster whose grid to use; otherwise the finest Sentinel-2 band's grid,
            or ``target_crs`` / ``target_resolution`` / ``target_extent`` when given.
        memory_mb: memory budget for the pixels of one block.
        compress: GeoTIFF compression.
        threads: GDAL warping threads.

    Returns:
        A summary: output, sidecar, band names, grid, valid fraction per band, clear-sky fraction.

    Raises:
        InputError, BandError, NoOverlapError, OutputError, CancelledError.
    """
    import contextlib

    import rasterio

    speckle_filter = (speckle_filter or "").strip().lower() or None
    if speckle_filter not in (None, "none", "lee"):
        raise InputError(f"Unknown speckle filter '{speckle_filter}'; use 'lee' or none.")
    speckle_filter = None if speckle_filter == "none" else speckle_filter
    if speckle_filter and (speckle_window < 3 or speckle_window % 2 == 0):
        raise InputError("The speckle filter window must be an odd number of pixels, 3 or more.")
    if speckle_filter and not enl > 0:
        raise InputError("The equivalent number of looks must be positive (4.4 for IW GRDH).")
    raster_io.check_raster_output(output_path)
    s1_units_n = _units(s1_units, "input")
    out_units = _units(s1_output_units, "output")

    with raster_io.gdal_env(), contextlib.ExitStack() as stack:
        datasets = _open_all(_input_paths(s2, s2_mask, s1, reference), stack)
        plan = plan_stack(
            datasets, s2=s2, s2_band_names=s2_band_names, s2_mask=s2_mask, mask_type=mask_type,
            mask_snow=mask_snow, mask_saturated=mask_saturated, s2_bands=s2_bands,
            indices=indices, s2_offset=s2_offset, s2_scale=s2_scale, s2_values=s2_values, s1=s1,
            s1_units=s1_units, s1_output_units=s1_output_units, s1_ratio=s1_ratio, s1_rvi=s1_rvi,
            temporal=temporal, preset=preset, reference=reference, target_crs=target_crs,
            target_resolution=target_resolution, target_extent=target_extent, log=log, warn=warn)
        if preset:
            out_units = "dB"
        for note in plan.notes:
            log(note)
        for message in plan.warnings:
            warn(message)
        _check_units(datasets, plan.s1_dates, s1_units_n, warn)
        for layer in plan.layers:
            how = ("already on the grid, read as is" if layer.resampling == "none"
                   else f"warped ({layer.resampling}"
                   + (", in linear power)" if layer.kind == "s1" else ")"))
            log(f"{layer.key.replace(':', ' ')} from '{os.path.basename(layer.path)}': {how}.")
        if plan.s2_used:
            log(f"Sentinel-2 reflectance = (DN + {plan.s2_offset:g}) / {s2_scale:g} "
                f"(offset {plan.s2_offset_reason}).")

        grid = plan.grid
        groups = _group_layers(plan.layers)
        halo = speckle_window // 2 if speckle_filter else 0
        n_out = len(plan.outputs)
        # Alive per pixel over the three blocks in flight: the block read ahead (its layers and
        # their warp sources), the block worked (layers, outputs, features, temporaries) and
        # the block being written (outputs).
        n_layers = len(plan.layers)
        bytes_per_pixel = 4 * (2 * n_layers) + 4 * (n_layers + 2 * n_out + 6) + 4 * n_out
        blocks = raster_io.plan_tiles(grid.width, grid.height, bytes_per_pixel, memory_mb)
        mask_type, mask_classes = plan.mask_type, plan.mask_classes
        counts = {"valid": np.zeros(n_out, dtype=np.int64), "s2": 0, "clear": 0}
        params = {"L": float(savi_l)}
        nodata = np.float32(raster_io.FLOAT_NODATA)
        wanted = {band.name for band in plan.outputs}
        s2_integer = all(layer.integer for layer in plan.layers if layer.kind == "s2")
        need_linear = any(b.kind == "rvi" or b.kind.startswith("temporal_") for b in plan.outputs)

        def read(block):
            top = max(0, block.row_off - halo)
            bottom = min(grid.height, block.row_off + block.height + halo)
            left = max(0, block.col_off - halo)
            right = min(grid.width, block.col_off + block.width + halo)
            window = (left, top, right - left, bottom - top)
            rows = slice(block.row_off - top, block.row_off - top + block.height)
            cols = slice(block.col_off - left, block.col_off - left + block.width)
            arrays = {}
            for group in groups:
                ds = datasets[group[0].path]
                is_s1 = group[0].kind == "s1"
                if group[0].resampling == "none":
                    values = _read_aligned(ds, group, grid, window)
                    units = s1_units_n
                else:
                    values = _warp(ds, group, grid, window, is_s1 and s1_units_n == "dB", threads)
                    units = "linear"
                for layer, band_values in zip(group, values):
                    band_units = units
                    if is_s1 and speckle_filter:
                        linear = band_values if units == "linear" else sar.db_to_linear(band_values)
                        band_values = sar.lee_filter(linear, speckle_window, enl)
                        band_units = "linear"
                    crop = band_values[rows, cols]
                    arrays[layer.key] = (crop, band_units) if is_s1 else crop
            return arrays

        def features(arrays) -> Dict[str, np.ndarray]:
            result: Dict[str, np.ndarray] = {}
            if plan.s2_used:
                s2_arrays = [arrays[f"S2:{b}"] for b in plan.s2_used]
                valid = np.isfinite(s2_arrays[0])
                nonzero = s2_arrays[0] != 0
                for values in s2_arrays[1:]:
                    valid &= np.isfinite(values)
                    nonzero |= values != 0
                if s2_integer:
                    valid &= nonzero
                counts["s2"] += int(valid.sum())
                if plan.mask_layer is not None:
                    mask = arrays["MASK"]
                    if mask_type == "scl":
                        cloud = np.isin(mask, mask_classes) | (mask == SCL_NO_DATA)
                    else:
                        cloud = np.isfinite(mask) & (mask != 0)
                    valid &= ~cloud & np.isfinite(mask)
                counts["clear"] += int(valid.sum())
                reflectance = {
                    b: (arrays[f"S2:{b}"] + np.float32(plan.s2_offset)) / np.float32(s2_scale)
                    for b in plan.s2_used}
                for b in plan.s2_bands:
                    values = reflectance[b] if s2_values == "reflectance" else arrays[f"S2:{b}"]
                    result[f"S2_{b}"] = np.where(valid, values, np.nan)
                for name in plan.indices:
                    values, ok = evaluate_index(name, reflectance, params)
                    result[name] = np.where(ok & valid, values, np.nan)
            linear_by_pol: Dict[str, list] = {}
            suffix = "dB" if out_units == "dB" else "lin"
            for date in plan.s1_dates:
                got = {pol: arrays[layer.key] for pol, layer in date.layers.items()}
                for pol, (values, units) in got.items():
                    if units == "linear" or need_linear:
                        linear = values if units == "linear" else sar.db_to_linear(values)
                        linear_by_pol.setdefault(pol, []).append(linear)
                    if units == out_units:
                        shown = values
                    else:
                        shown = sar.linear_to_db(values) if out_units == "dB" else linear
                    result[f"{date.band_prefix}{pol}_{suffix}"] = shown
                pair = _cross_pair(list(got))
                if pair:
                    co, cross = pair
                    name = f"{date.band_prefix}{co}{cross}_{suffix}"
                    if name in wanted:
                        result[name] = sar.ratio(result[f"{date.band_prefix}{co}_{suffix}"],
                                                 result[f"{date.band_prefix}{cross}_{suffix}"],
                                                 out_units)
                    if f"{date.band_prefix}RVI" in wanted:
                        result[f"{date.band_prefix}RVI"] = sar.rvi(
                            linear_by_pol[co][-1], linear_by_pol[cross][-1])
            for band in plan.outputs:
                if band.kind.startswith("temporal_"):
                    pol = band.polarisation
                    result[band.name] = sar.temporal_statistic(
                        linear_by_pol[pol], band.kind[len("temporal_"):], out_units)
            return result

        with raster_io.atomic_raster_output(output_path) as temp:
            try:
                profile = raster_io.float_profile(grid, n_out, compress=compress)
                with rasterio.open(temp, "w", **profile) as dst:
                    _describe(dst, plan, out_units)

                    def work(block, arrays):
                        result = features(arrays)
                        out = np.empty((n_out, block.height, block.width), dtype=np.float32)
                        for k, band in enumerate(plan.outputs):
                            out[k] = result.pop(band.name)
                            missing = ~np.isfinite(out[k])
                            counts["valid"][k] += missing.size - int(np.count_nonzero(missing))
                            out[k][missing] = nodata
                        return out

                    def write(block, out):
                        dst.write(out, window=block.window)

                    raster_io.run_blocks(blocks, read, work, progress, is_cancelled, write=write)
                total = grid.width * grid.height
                fractions = {b.name: float(counts["valid"][k]) / total
                             for k, b in enumerate(plan.outputs)}
                clear = (counts["clear"] / counts["s2"]) if counts["s2"] else None
                sidecar = _sidecar(plan, output_path, fractions, clear, dict(
                    s1_input_units=s1_units_n, s1_output_units=out_units,
                    speckle_filter=(f"Lee, {speckle_window}x{speckle_window} window, ENL {enl:g}, "
                                    "in linear power on the target grid")
                    if speckle_filter else None,
                    s2_values=s2_values, s2_scale=s2_scale, s2_offset=plan.s2_offset,
                    savi_l=savi_l, mask_type=mask_type if s2_mask else None,
                    mask_classes=mask_classes if s2_mask and mask_type == "scl" else None,
                    preset=preset or None, compress=compress))
                with open(temp + SIDECAR_SUFFIX, "w", encoding="utf-8") as handle:
                    json.dump(sidecar, handle, indent=2)
            except LandFusionError:
                raise
            except (OSError, ValueError) as exc:
                raise OutputError(f"Writing '{output_path}' failed: {exc}") from exc

    if plan.mask_layer is not None and clear is not None:
        log(f"Clear-sky fraction of the Sentinel-2 pixels: {100 * clear:.1f} % (masked SCL "
            f"classes {mask_classes})." if mask_type == "scl" else
            f"Clear-sky fraction of the Sentinel-2 pixels: {100 * clear:.1f} %.")
    for name, fraction in fractions.items():
        if fraction == 0.0:
            warn(f"{name} has no valid pixel on the target grid.")
    return {
        "output": output_path,
        "sidecar": sidecar_path(output_path),
        "bands": [b.name for b in plan.outputs],
        "crs": grid.crs.to_string(),
        "transform": tuple(grid.transform)[:6],
        "width": grid.width,
        "height": grid.height,
        "valid_fraction": fractions,
        "clear_fraction": clear,
        "s1_coverage": plan.s1_coverage,
        "resampling": {layer.key: layer.resampling for layer in plan.layers},
    }


def _describe(dst, plan: StackPlan, s1_units: str) -> None:
    for i, band in enumerate(plan.outputs, start=1):
        dst.set_band_description(i, band.name)
        tags = {"SENSOR": band.sensor, "KIND": band.kind, "UNITS": band.units,
                "DESCRIPTION": band.description,
                "SOURCES": ";".join(os.path.basename(s) for s in band.sources)}
        if band.date:
            tags["DATE"] = band.date
        if band.polarisation:
            tags["POLARISATION"] = band.polarisation
        if band.name in INDICES:
            tags["FORMULA"] = INDICES[band.name].formula
        dst.update_tags(i, **tags)
    dst.update_tags(LANDFUSION_ALGORITHM="coregisterstack",
                    BAND_NAMES=",".join(b.name for b in plan.outputs))
    if plan.s1_dates:
        dst.update_tags(SENTINEL1_DATES=";".join(
            f"{d.band_prefix[:-1]}={_iso_date(d.date) or 'unknown'}" for d in plan.s1_dates))


def _iso_date(date: Optional[str]) -> Optional[str]:
    """``20190917`` → ``2019-09-17``."""
    return f"{date[:4]}-{date[4:6]}-{date[6:8]}" if date else None


def _sidecar(plan: StackPlan, output_path: str, fractions, clear, processing) -> dict:
    grid = plan.grid
    resampling = {}
    for layer in plan.layers:
        resampling[layer.key] = layer.resampling
    bands = []
    for i, band in enumerate(plan.outputs, start=1):
        entry = {
            "index": i, "name": band.name, "sensor": band.sensor, "kind": band.kind,
            "units": band.units, "description": band.description,
            "sources": [os.path.abspath(s) for s in band.sources],
            "valid_fraction": round(fractions[band.name], 6),
        }
        if band.date:
            entry["date"] = _iso_date(band.date)
        if band.polarisation:
            entry["polarisation"] = band.polarisation
        if band.name in INDICES:
            entry["formula"] = INDICES[band.name].formula
            entry["reference"] = INDICES[band.name].reference
        bands.append(entry)
    return {
        "landfusion": "stack",
        "version": 1,
        "algorithm": "coregisterstack",
        "raster": os.path.basename(output_path),
        "band_names": [b.name for b in plan.outputs],
        "nodata": raster_io.FLOAT_NODATA,
        "grid": {"crs": grid.crs.to_string(), "crs_wkt": grid.crs.to_wkt(),
                 "transform": list(tuple(grid.transform)[:6]), "width": grid.width,
                 "height": grid.height, "resolution": list(grid.resolution)},
        "bands": bands,
        "sentinel1_dates": [
            {"label": d.label, "rank": i, "band_prefix": d.band_prefix,
             "date": _iso_date(d.date), "polarisations": sorted(d.layers),
             "files": [os.path.abspath(f) for f in d.files],
             "covered_fraction": round(plan.s1_coverage.get(d.label, 0.0), 6)}
            for i, d in enumerate(plan.s1_dates, start=1)],
        "sentinel2": {"bands_found": plan.s2_names, "offset_reason": plan.s2_offset_reason,
                      "clear_sky_fraction": None if clear is None else round(clear, 6),
                      "mask": os.path.abspath(plan.mask_layer.path) if plan.mask_layer else None},
        "resampling": resampling,
        "processing": processing,
    }
