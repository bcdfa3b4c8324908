"""BEFORE/AFTER raster pairs on one grid.

The BEFORE raster defines the grid. The AFTER raster is read as it is when it is on the same
grid, else warped onto it on the fly (rasterio ``WarpedVRT``: bilinear for measurements, nearest
for class and label rasters), so nothing is resampled twice and nothing is held whole in memory.
Bands are matched by name (``B04`` = ``S2_B04``), never by position.
"""

from __future__ import annotations

import contextlib
from typing import List, Optional, Sequence

import numpy as np

from ..errors import BandError, InputError, NoOverlapError
from ..io import raster as raster_io
from ..sensors.bands import is_s2_band_name, normalise_s2_band


def comparable_band(name: str) -> str:
    """Returns the band name used to match bands between dates (``S2_B04`` -> ``B04``)."""
    text = (name or "").strip()
    if is_s2_band_name(text):
        return normalise_s2_band(text) or text.upper()
    return text.upper()


def same_grid(a, b) -> bool:
    """Tells whether two open datasets share size, transform and CRS."""
    return (a.width, a.height) == (b.width, b.height) and \
        a.transform.almost_equals(b.transform) and (a.crs == b.crs or not b.crs or not a.crs)


def check_overlap(reference, other, reference_path: str, other_path: str) -> float:
    """Returns the share of ``reference``'s extent covered by ``other``.

    Raises:
        NoOverlapError: when the two rasters do not overlap at all.
    """
    from rasterio.warp import transform_bounds

    if reference.crs and other.crs and reference.crs != other.crs:
        try:
            bounds = transform_bounds(other.crs, reference.crs, *other.bounds, densify_pts=21)
        except Exception as exc:  # noqa: BLE001 - any projection failure means no usable overlap
            raise NoOverlapError(
                f"'{other_path}' cannot be projected into the CRS of '{reference_path}' "
                f"({exc}).") from exc
    else:
        bounds = tuple(other.bounds)
    ref = tuple(reference.bounds)
    width = min(ref[2], bounds[2]) - max(ref[0], bounds[0])
    height = min(ref[3], bounds[3]) - max(ref[1], bounds[1])
    if width <= 0 or height <= 0:
        raise NoOverlapError(
            f"'{other_path}' does not overlap '{reference_path}' (extents {_fmt(bounds)} and "
            f"{_fmt(ref)} in the CRS of the first raster). Give rasters of the same area.")
    area = (ref[2] - ref[0]) * (ref[3] - ref[1])
    return float(width * height / area) if area > 0 else 0.0


def _fmt(bounds) -> str:
    return "(" + ", ".join(f"{v:.6g}" for v in bounds) + ")"


def warped_on(reference, dataset, categorical: bool, stack: contextlib.ExitStack,
              nodata: Optional[float] = None):
    """Returns ``dataset`` itself on the grid of ``reference``, or a WarpedVRT onto that grid.

    Pixels outside ``dataset`` read as ``nodata`` (its own nodata when None; else 0 for class
    rasters (-1 when it has none), NaN for measurements).
    """
    if same_grid(reference, dataset):
        return dataset
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT

    src_nodata = dataset.nodata if nodata is None else nodata
    if categorical:
        # int32 leaves room for a nodata value (-1) that no class id uses
        dst_nodata = src_nodata if src_nodata is not None else -1
        options = {"dtype": "int32"}
    else:
        dst_nodata = float("nan")
        options = {"dtype": "float32"}
    vrt = WarpedVRT(dataset, crs=reference.crs or dataset.crs, transform=reference.transform,
                    width=reference.width, height=reference.height,
                    resampling=Resampling.nearest if categorical else Resampling.bilinear,
                    src_nodata=src_nodata, nodata=dst_nodata, **options)
    return stack.enter_context(vrt)


class Pair:
    """A BEFORE/AFTER pair read on the BEFORE grid, bands matched by name.

    Use as a context manager. ``bands`` are the names read (BEFORE's spelling), in order;
    :meth:`read` returns two float32 arrays ``(bands, rows, cols)`` with NaN wherever a pixel is
    nodata, non-finite or outside the AFTER raster.
    """

    def __init__(self, before_path: str, after_path: str, bands: Optional[Sequence[str]] = None,
                 what: str = "The pair"):
        self.before_path = before_path
        self.after_path = after_path
        self.requested = list(bands) if bands else None
        self.what = what
        self._stack = None
        self.bands: List[str] = []
        self.coverage = 1.0

    def __enter__(self):
        self._stack = contextlib.ExitStack()
        try:
            self.before = self._stack.enter_context(
                raster_io.open_raster(self.before_path, "BEFORE raster"))
            after = self._stack.enter_context(raster_io.open_raster(self.after_path,
                                                                     "AFTER raster"))
            self.after_source = after
            self.coverage = check_overlap(self.before, after, self.before_path, self.after_path)
            self._match_bands(after)
            self.resampled = not same_grid(self.before, after)
            self.after = warped_on(self.before, after, False, self._stack)
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc):
        self._stack.close()
        return False

    def _match_bands(self, after) -> None:
        before_names = raster_io.band_descriptions(self.before)
        after_names = raster_io.band_descriptions(after)
        if not any(before_names) or not any(after_names):
            unnamed = self.before_path if not any(before_names) else self.after_path
            raise BandError(
                f"'{unnamed}' has no band names. Change detection matches the bands of both dates "
                "by name: build both dates with 'Co-register stack' (landfusion:coregisterstack) "
                "or set band descriptions.")
        after_lookup = {}
        for i, name in enumerate(after_names, start=1):
            if name:
                after_lookup.setdefault(comparable_band(name), i)
        before_lookup = {}
        for i, name in enumerate(before_names, start=1):
            if name:
                before_lookup.setdefault(comparable_band(name), (i, name))
        if self.requested:
            missing_b = [b for b in self.requested if comparable_band(b) not in before_lookup]
            missing_a = [b for b in self.requested if comparable_band(b) not in after_lookup]
            if missing_b or missing_a:
                raise BandError(
                    f"{self.what} needs bands {', '.join(self.requested)} on both dates; missing "
                    f"in BEFORE: {', '.join(missing_b) or 'none'}, in AFTER: "
                    f"{', '.join(missing_a) or 'none'} (BEFORE has {', '.join(before_names)}; "
                    f"AFTER has {', '.join(after_names)}). Build both dates with the bands the "
                    "model was trained with.")
            keys = [comparable_band(b) for b in self.requested]
        else:
            keys = [k for k in before_lookup if k in after_lookup]
            if not keys:
                raise BandError(
                    f"'{self.before_path}' and '{self.after_path}' have no band name in common "
                    f"(BEFORE: {', '.join(before_names)}; AFTER: {', '.join(after_names)}). Both "
                    "dates must be stacks of the same bands.")
        self.bands = [before_lookup[k][1] for k in keys]
        self.before_index = [before_lookup[k][0] for k in keys]
        self.after_index = [after_lookup[k] for k in keys]
        self.before_nodata = [self.before.nodatavals[i - 1] for i in self.before_index]
        self.after_nodata = [after.nodatavals[i - 1] for i in self.after_index]

    @property
    def width(self) -> int:
        """Width of the common grid (BEFORE's)."""
        return self.before.width

    @property
    def height(self) -> int:
        """Height of the common grid (BEFORE's)."""
        return self.before.height

    def read(self, block, halo: int = 0) -> tuple:
        """Reads both dates over ``block`` grown by ``halo`` pixels (NaN beyond the raster)."""
        before = read_padded(self.before, self.before_index, block, halo, self.before_nodata)
        after = read_padded(self.after, self.after_index, block, halo,
                            self.after_nodata if not self.resampled else
                            [None] * len(self.after_index))
        return before, after


def read_padded(dataset, indexes: Sequence[int], block, halo: int, nodata: Sequence) -> np.ndarray:
    """Reads bands over a block grown by ``halo`` pixels; NaN for nodata and outside the raster."""
    from rasterio.windows import Window

    top, left = block.row_off - halo, block.col_off - halo
    bottom, right = block.row_off + block.height + halo, block.col_off + block.width + halo
    r0, c0 = max(0, top), max(0, left)
    r1, c1 = min(dataset.height, bottom), min(dataset.width, right)
    out = np.full((len(indexes), bottom - top, right - left), np.nan, dtype=np.float32)
    if r1 <= r0 or c1 <= c0:
        return out
    data = dataset.read(list(indexes), window=Window(c0, r0, c1 - c0, r1 - r0),
                        out_dtype="float32")
    for i, value in enumerate(nodata):
        if value is not None and not np.isnan(value):
            data[i][data[i] == np.float32(value)] = np.nan
    data[~np.isfinite(data)] = np.nan
    out[:, r0 - top:r1 - top, c0 - left:c1 - left] = data
    return out


def check_pairs(before: Sequence[str], after: Sequence[str]) -> None:
    """Raises when the BEFORE and AFTER lists cannot be paired in order."""
    if not before or not after:
        raise InputError("Give at least one BEFORE and one AFTER raster.")
    if len(before) != len(after):
        raise InputError(
            f"{len(before)} BEFORE raster(s) but {len(after)} AFTER raster(s): give one AFTER "
            "raster per BEFORE raster, in the same order.")
    import os

    seen = {}
    for kind, paths in (("BEFORE", before), ("AFTER", after)):
        for path in paths:
            key = os.path.realpath(path)
            if key in seen:
                raise InputError(f"'{path}' is given twice (as {seen[key]} and {kind}); each date "
                                 "of each pair must be its own raster.")
            seen[key] = kind
