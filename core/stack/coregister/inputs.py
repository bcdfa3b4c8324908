"""The inputs of a stack: which file and band is which Sentinel-2 band, which Sentinel-1 date
and polarisation, opened once."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

from ...errors import BandError, InputError
from ...io import raster as raster_io
from ...runtime import Log
from ...sensors import sentinel1 as sar
from ...sensors.bands import normalise_s2_band, resolve_s2_band_names
from ...sensors.units import polarisation_problems, units_problem
from .options import StackOptions


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


def s2_file_bands(datasets, paths, explicit: Optional[str]) -> List[Tuple[str, str, int]]:
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
        names = resolve_s2_band_names(explicit, [None] * total,
                                      f"the Sentinel-2 input ({len(paths)} files, in order)")
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


def s1_dates(datasets, paths, log: Log) -> List[S1Date]:
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


def _invalid_to_nan(values: np.ndarray, nodata) -> np.ndarray:
    values = values.astype(np.float32)
    if nodata is not None and not np.isnan(nodata):
        values[values == np.float32(nodata)] = np.nan
    return values


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


def check_units(datasets, s1_dates: List[S1Date], units: str, warn: Log) -> None:
    """Warns when a Sentinel-1 band's values do not look like the units it is said to be in, or
    when a date's cross-polarised band is brighter than its co-polarised one (swapped bands)."""
    for date in s1_dates:
        samples = {}
        for pol, layer in date.layers.items():
            samples[pol] = _sample(datasets[layer.path], layer.band, layer.nodata)
            problem = units_problem(pol, samples[pol], units)
            if problem:
                warn(f"Sentinel-1 {pol} of {date.label} ('{os.path.basename(layer.path)}'): "
                     f"{problem}. Check the input units parameter.")
        for problem in polarisation_problems(list(samples), list(samples.values())):
            warn(f"Sentinel-1 {date.label}: {problem}. Check the polarisation of each band "
                 "(band descriptions or file names).")


def open_inputs(options: StackOptions, stack: contextlib.ExitStack) -> Dict[str, object]:
    """Opens every input once (in ``stack``); returns ``{path: dataset}``.

    Raises:
        InputError: naming the input that is missing or not a raster.
    """
    paths: Dict[str, str] = {}
    for path in options.s2:
        paths.setdefault(path, "Sentinel-2 input")
    if options.s2_mask:
        paths.setdefault(options.s2_mask, "Sentinel-2 mask")
    for path in options.s1:
        paths.setdefault(path, "Sentinel-1 input")
    if options.reference:
        paths.setdefault(options.reference, "Reference grid raster")
    return {path: stack.enter_context(raster_io.open_raster(path, what))
            for path, what in paths.items()}
