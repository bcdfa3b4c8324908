"""Reading bands of many rasters onto one grid, block by block.

Each raster is read through a :class:`BandReader`: a plain windowed read when it already lies on
the grid (same CRS and pixel size, whole-pixel offset), else a rasterio ``WarpedVRT`` onto the
grid. Sentinel-1 bands in dB are turned into linear power *before* resampling (a VRT with GDAL's
``dB2pow`` pixel function under the warp), because backscatter must be averaged as power.
"""

from __future__ import annotations

import functools
import math
import os
import re
import uuid
from typing import Optional, Sequence

import numpy as np

from ..errors import InputError, NoOverlapError
from ..sensors import sentinel1 as sar
from ..stack.coregister.grid import Grid as StackGrid
from ..stack.coregister.grid import bounds_in
from ..stack import masks as mask_rules


#: Data types whose every value float32 holds exactly and that GDAL converts to float32 as it
#: reads (not int8: GDAL 3.6 reads signed bytes into float32 as unsigned, -1 becoming 255).
EXACT_IN_FLOAT32 = ("uint8", "uint16", "int16", "float32")


class Grid(StackGrid):
    """The output grid of a time-series run: a stack grid that knows its dataset and pixel size."""

    @classmethod
    def of(cls, dataset) -> "Grid":
        """The grid of an open dataset."""
        return cls(dataset.crs, dataset.transform, dataset.width, dataset.height)

    @property
    def pixel_size(self) -> float:
        """Mean pixel size in CRS units."""
        return 0.5 * sum(self.resolution)

    def describe(self) -> dict:
        """Returns a JSON-friendly description."""
        return {"crs": self.crs.to_string() if self.crs else None,
                "transform": list(self.transform)[:6], "width": self.width, "height": self.height}


def check_overlap(dataset, grid: Grid, what: str) -> None:
    """Raises :class:`NoOverlapError` when ``dataset`` does not cover any of the grid."""
    if dataset.crs is None and grid.crs is not None:
        raise InputError(f"{what} has no coordinate reference system; assign one (Raster ▸ "
                         "Projections ▸ Assign Projection) before compositing.")
    left, bottom, right, top = bounds_in(dataset, grid.crs)
    west, south, east, north = grid.bounds
    g = (min(west, east), min(south, north), max(west, east), max(south, north))
    if min(right, g[2]) <= max(left, g[0]) or min(top, g[3]) <= max(bottom, g[1]):
        raise NoOverlapError(f"{what} does not overlap the output grid; give rasters of the same "
                             "area (or another reference grid).")


def aligned_offset(dataset, grid: Grid) -> Optional[tuple]:
    """(col, row) of the grid's origin in ``dataset`` when both share pixel size and alignment."""
    if dataset.crs != grid.crs:
        return None
    s, g = dataset.transform, grid.transform
    if s.b or s.d or g.b or g.d:
        return None
    if abs(s.a - g.a) > 1e-6 * abs(g.a) or abs(s.e - g.e) > 1e-6 * abs(g.e):
        return None
    col, row = (g.c - s.c) / s.a, (g.f - s.f) / s.e
    if abs(col - round(col)) > 1e-3 or abs(row - round(row)) > 1e-3:
        return None
    return int(round(col)), int(round(row))


def _linear_power_vrt(path: str, bands: Sequence[int], folder: str) -> str:
    """Writes a VRT presenting ``bands`` of ``path`` (dB) as linear power (GDAL's dB2pow)."""
    from osgeo import gdal

    target = os.path.join(folder, f"linear-{uuid.uuid4().hex[:8]}.vrt")
    result = gdal.Translate(target, os.path.abspath(path), format="VRT", bandList=list(bands),
                            outputType=gdal.GDT_Float32)
    if result is None:
        raise InputError(f"'{path}' cannot be opened by GDAL to convert dB to linear power.")
    result = None
    with open(target, encoding="utf-8") as handle:
        xml = handle.read()
    xml = re.sub(r"\s*<Metadata>.*?</Metadata>", "", xml, flags=re.S)
    xml = re.sub(r"\s*<NoDataValue>.*?</NoDataValue>", "", xml, flags=re.S)
    xml = re.sub(r'(<VRTRasterBand [^>]*?)(/?)>',
                 r'\1 subClass="VRTDerivedRasterBand">'
                 r"<PixelFunctionType>dB2pow</PixelFunctionType>", xml)
    with open(target, "w", encoding="utf-8") as handle:
        handle.write(xml)
    return target


class BandReader:
    """Reads some bands of one raster onto a grid as float32, NaN where invalid.

    Args:
        dataset: the open rasterio dataset.
        grid: the output grid.
        bands: 1-based band indexes to read.
        kind: 'data' (continuous values), 'db' (Sentinel-1 dB, returned as linear power),
            'linear' (Sentinel-1 linear power; non-positive values invalid) or 'mask'
            (class values, nearest neighbour).
        workdir: folder for the intermediate VRT of 'db' bands that need resampling.
    """

    def __init__(self, dataset, grid: Grid, bands: Sequence[int], kind: str = "data",
                 workdir: Optional[str] = None):
        from rasterio.enums import Resampling
        from rasterio.vrt import WarpedVRT

        self.dataset = dataset
        self.bands = list(bands)
        self.kind = kind
        self.nodata = dataset.nodata
        self.offset = aligned_offset(dataset, grid)
        self.vrt = None
        self._sources = []
        #: Every band converts to float32 exactly (bytes, 16-bit integers, float32).
        self._exact_float32 = all(dataset.dtypes[b - 1] in EXACT_IN_FLOAT32 for b in self.bands)
        if self.offset is not None:
            return
        source = dataset
        src_nodata = dataset.nodata
        read_bands = self.bands
        if kind == "db":
            import rasterio

            source = rasterio.open(_linear_power_vrt(dataset.name, self.bands, workdir))
            self._sources.append(source)
            src_nodata, read_bands = 0.0, list(range(1, len(self.bands) + 1))
        if kind == "mask":
            resampling = Resampling.nearest
        else:
            in_size = 0.5 * sum(abs(v) for v in _pixel_size_in(dataset, grid.crs))
            resampling = Resampling.average if in_size < grid.pixel_size / 1.2 \
                else Resampling.bilinear
        self.read_bands = read_bands
        options = {"src_nodata": src_nodata} if src_nodata is not None else {}
        self.vrt = WarpedVRT(source, crs=grid.crs, transform=grid.transform, width=grid.width,
                             height=grid.height, resampling=resampling, nodata=np.nan,
                             dtype="float32", warp_mem_limit=64, **options)
        self.resampling = resampling.name

    @property
    def how(self) -> str:
        """How the raster reaches the grid, for the log."""
        return "read as is" if self.offset is not None else f"warped ({self.resampling})"

    def read(self, window) -> np.ndarray:
        """Reads a window of the grid: array (bands, rows, cols), float32, NaN where invalid."""
        if self.vrt is not None:
            data = self.vrt.read(self.read_bands, window=window)
            data = data.astype(np.float32, copy=False)
        else:
            data = self._read_aligned(window)
            if self.kind == "db":
                data = sar.db_to_linear(data)
        if self.kind in ("db", "linear"):
            data[~(data > 0)] = np.nan
        return data

    def _read_aligned(self, window) -> np.ndarray:
        from rasterio.windows import Window

        col_off, row_off = int(window.col_off), int(window.row_off)
        width, height = int(window.width), int(window.height)
        ds = self.dataset
        out_shape = (len(self.bands), height, width)
        col0, row0 = self.offset
        c0, r0 = max(0, col0 + col_off), max(0, row0 + row_off)
        c1 = min(ds.width, col0 + col_off + width)
        r1 = min(ds.height, row0 + row_off + height)
        if c1 <= c0 or r1 <= r0:
            return np.full(out_shape, np.nan, dtype=np.float32)
        inner = Window(c0, r0, c1 - c0, r1 - r0)
        if self._exact_float32:  # GDAL converts while it reads: no second copy
            data = ds.read(self.bands, window=inner, out_dtype="float32")
        else:
            data = ds.read(self.bands, window=inner).astype(np.float32)
        if self.nodata is not None and not math.isnan(self.nodata):
            data[data == np.float32(self.nodata)] = np.nan
        if data.shape == out_shape:
            return data
        out = np.full(out_shape, np.nan, dtype=np.float32)
        dc, dr = c0 - col0 - col_off, r0 - row0 - row_off
        out[:, dr:dr + data.shape[1], dc:dc + data.shape[2]] = data
        return out

    def close(self) -> None:
        """Closes the warped view and the intermediate datasets."""
        if self.vrt is not None:
            self.vrt.close()
        for source in self._sources:
            source.close()


def _pixel_size_in(dataset, crs) -> tuple:
    left, bottom, right, top = bounds_in(dataset, crs)
    return ((right - left) / dataset.width, (top - bottom) / dataset.height)


def sample_values(dataset, band: int, size: int = 256) -> np.ndarray:
    """Reads a central sample of one band (float32, nodata as NaN), for unit checks."""
    from rasterio.windows import Window

    width, height = min(size, dataset.width), min(size, dataset.height)
    window = Window((dataset.width - width) // 2, (dataset.height - height) // 2, width, height)
    values = dataset.read(band, window=window).astype(np.float32)
    if dataset.nodata is not None and not math.isnan(dataset.nodata):
        values[values == np.float32(dataset.nodata)] = np.nan
    return values


@functools.lru_cache(maxsize=1)
def _clear_tables() -> dict:
    return {t: mask_rules.clear_lookup(t) for t in mask_rules.MASK_TYPES}


def read_clear(reader: BandReader, window, mask_type: str, band: int = 0) -> np.ndarray:
    """Reads a window of a mask band through ``reader``: True where the observation is clear."""
    values = reader.read(window)[band]
    return mask_rules.clear_from_values(values, _clear_tables()[mask_type], mask_type)
