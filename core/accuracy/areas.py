"""Mapped class areas of a class raster: block-wise pixel counts and pixel areas in hectares.

Used by the accuracy report (the strata weights of the area estimators) and by the stratified
sample (the allocation). Pixel areas are exact for projected rasters; for geographic rasters each
row's pixel area is computed on the WGS 84 ellipsoid, so hectares stay right away from the equator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, Optional

import numpy as np

from ..errors import CrsError, NoDataError
from ..io.raster import gdal_env, open_raster, plan_blocks, run_blocks
from ..runtime import IsCancelled, Progress, never_cancelled, no_progress

_WGS84_A = 6378137.0
_WGS84_F = 1 / 298.257223563


@dataclass
class ClassCounts:
    """Pixel counts and areas of each class value of a class raster (nodata excluded)."""

    pixels: Dict[int, int] = field(default_factory=dict)
    area_ha: Dict[int, float] = field(default_factory=dict)
    nodata: Optional[float] = None
    nodata_pixels: int = 0
    pixel_area_ha: Optional[float] = None  # None for geographic rasters (varies by row)

    @property
    def total_pixels(self) -> int:
        """Number of classified (non-nodata) pixels."""
        return int(sum(self.pixels.values()))

    @property
    def total_area_ha(self) -> float:
        """Classified area in hectares."""
        return float(sum(self.area_ha.values()))


def _band_area_per_radian(lat_rad: np.ndarray) -> np.ndarray:
    """Area between the equator and ``lat`` per radian of longitude on the WGS 84 ellipsoid."""
    e2 = _WGS84_F * (2 - _WGS84_F)
    e = math.sqrt(e2)
    b2 = (_WGS84_A * (1 - _WGS84_F)) ** 2
    s = np.sin(lat_rad)
    return b2 / 2 * (s / (1 - e2 * s * s) + np.log((1 + e * s) / (1 - e * s)) / (2 * e))


def row_pixel_areas_ha(dataset) -> np.ndarray:
    """Returns the area in hectares of one pixel in each row of ``dataset``.

    Raises:
        CrsError: when the raster has no CRS, is rotated, or uses an unknown linear unit.
    """
    from osgeo import osr

    crs = dataset.crs
    if crs is None:
        raise CrsError(f"Raster '{dataset.name}' has no coordinate reference system, so class "
                       "areas cannot be computed; assign its CRS (Raster > Projections > Assign "
                       "Projection) and run again.")
    t = dataset.transform
    if t.b != 0 or t.d != 0:
        raise CrsError(f"Raster '{dataset.name}' is rotated; warp it to a north-up grid first.")
    srs = osr.SpatialReference()
    srs.ImportFromWkt(crs.to_wkt())
    if srs.IsGeographic():
        tops = t.f + t.e * np.arange(dataset.height + 1)
        lat = np.radians(np.clip(tops, -90.0, 90.0))
        bands = np.abs(np.diff(_band_area_per_radian(lat)))
        return bands * math.radians(abs(t.a)) / 10000.0
    metres = srs.GetLinearUnits()
    if not metres or metres <= 0:
        raise CrsError(f"Raster '{dataset.name}' uses an unknown linear unit; reproject it to a "
                       "CRS in metres.")
    area = abs(t.a * t.e) * metres * metres / 10000.0
    return np.full(dataset.height, area)


@dataclass
class _Tally:
    """Pixels and hectares of each class value, added block by block."""

    src: object
    nodata: Optional[float]
    areas: np.ndarray  # pixel area (ha) of each row
    pixels: Dict[int, int] = field(default_factory=dict)
    area_ha: Dict[int, float] = field(default_factory=dict)
    nodata_pixels: int = 0
    #: Equal pixel areas; with small unsigned values too (``fast``): raw bincounts per block and
    #: areas from counts.
    uniform: bool = field(init=False)
    fast: bool = field(init=False)

    def __post_init__(self):
        self.uniform = bool(np.all(self.areas == self.areas[0]))
        self.fast = self.uniform and np.dtype(self.src.dtypes[0]) in (np.dtype("uint8"),
                                                                       np.dtype("uint16"))

    def read(self, block) -> np.ndarray:
        return self.src.read(1, window=block.window)

    def work(self, block, data: np.ndarray) -> None:
        nodata = self.nodata
        if self.fast:
            # One bincount over the raw block, nodata's bin taken out after.
            counts = np.bincount(data.ravel())
            if nodata is not None and not np.isnan(nodata) and 0 <= nodata < counts.size \
                    and float(nodata).is_integer():
                self.nodata_pixels += int(counts[int(nodata)])
                counts[int(nodata)] = 0
            for value in np.flatnonzero(counts):
                self.pixels[int(value)] = self.pixels.get(int(value), 0) + int(counts[value])
            return
        valid = (np.ones(data.shape, bool) if nodata is None or np.isnan(nodata)
                 else data != nodata)
        self.nodata_pixels += int(valid.size - valid.sum())
        values = data[valid].astype(np.int64)
        if values.size == 0:
            return
        rows = np.broadcast_to(self.areas[block.row_off:block.row_off + block.height, None],
                               data.shape)[valid]
        low = int(values.min())
        counts = np.bincount(values - low)
        weights = np.bincount(values - low, weights=rows)
        for offset in np.flatnonzero(counts):
            value = low + int(offset)
            self.pixels[value] = self.pixels.get(value, 0) + int(counts[offset])
            self.area_ha[value] = self.area_ha.get(value, 0.0) + float(weights[offset])


def count_classes(
    path: str,
    nodata: Optional[float] = None,
    memory_mb: float = 64,
    progress: Progress = no_progress,
    is_cancelled: IsCancelled = never_cancelled,
) -> ClassCounts:
    """Counts the pixels and the area of every class value of band 1, block by block.

    Args:
        path: class raster (integer values).
        nodata: value to exclude; defaults to the raster's nodata value.

    Raises:
        InputError: when the raster cannot be read or is not an integer raster.
        NoDataError: when the raster holds no classified pixel.
    """
    with gdal_env(), open_raster(path, "Classification raster") as src:
        _check_integer(src)
        tally = _Tally(src, src.nodata if nodata is None else nodata, row_pixel_areas_ha(src))
        blocks = plan_blocks(src.width, src.height, np.dtype(src.dtypes[0]).itemsize + 24,
                             memory_mb)
        run_blocks(blocks, tally.read, tally.work, progress, is_cancelled)
    pixels, area_ha, areas = tally.pixels, tally.area_ha, tally.areas
    if not pixels:
        raise NoDataError(f"Classification raster '{path}' holds only nodata pixels; choose a "
                          "classified raster with at least one class.")
    order = sorted(pixels)
    if tally.uniform:  # exact products rather than sums of many equal floats
        area_ha = {v: pixels[v] * float(areas[0]) for v in order}
    return ClassCounts({v: pixels[v] for v in order}, {v: area_ha[v] for v in order},
                       tally.nodata, tally.nodata_pixels,
                       float(areas[0]) if tally.uniform else None)


def _check_integer(src) -> None:
    from ..errors import InputError

    if not np.issubdtype(np.dtype(src.dtypes[0]), np.integer):
        raise InputError(f"Classification raster '{src.name}' has {src.dtypes[0]} values; a class "
                         "raster must hold integer class values (use a classified raster, or "
                         "round/convert it with Raster > Conversion > Translate).")
