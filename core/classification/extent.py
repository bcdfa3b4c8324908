"""Running a classifier on part of a raster: the extent as a pixel-aligned window of the input.

A preview (the map canvas extent, a small test area) is classified on the input's own grid: the
extent is snapped outwards to whole input pixels and clipped to the raster, and a small VRT that
points to that window of the input is classified instead of the whole raster. Outputs therefore
lie exactly on the input's pixels, only smaller.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import tempfile
from typing import Iterator, Optional, Sequence

from ..errors import InputError, NoOverlapError


def extent_window(dataset, extent: Sequence[float], extent_crs=None) -> tuple:
    """Returns ``(col_off, row_off, width, height)`` of the input pixels covering ``extent``.

    Args:
        dataset: the open input raster.
        extent: ``(xmin, ymin, xmax, ymax)``.
        extent_crs: CRS of the extent (anything rasterio's CRS accepts); None: the raster's.

    Raises:
        NoOverlapError: the extent does not overlap the raster.
        InputError: the extent is empty or the input has a rotated grid.
    """
    from rasterio.warp import transform_bounds

    xmin, ymin, xmax, ymax = (float(v) for v in extent)
    if not (xmax > xmin and ymax > ymin):
        raise InputError(f"The extent {xmin}, {ymin}, {xmax}, {ymax} is empty; give "
                         "xmin, ymin, xmax, ymax with xmax > xmin and ymax > ymin.")
    if extent_crs and dataset.crs and str(extent_crs) != str(dataset.crs):
        from rasterio.crs import CRS

        source = extent_crs if isinstance(extent_crs, CRS) else CRS.from_user_input(extent_crs)
        if source != dataset.crs:
            xmin, ymin, xmax, ymax = transform_bounds(source, dataset.crs, xmin, ymin, xmax, ymax)
    t = dataset.transform
    if t.b or t.d:
        raise InputError("The input raster has a rotated grid; an extent cannot be applied.")
    cols = sorted(((xmin - t.c) / t.a, (xmax - t.c) / t.a))
    rows = sorted(((ymax - t.f) / t.e, (ymin - t.f) / t.e))
    col0, col1 = max(0, math.floor(cols[0] + 1e-9)), min(dataset.width, math.ceil(cols[1] - 1e-9))
    row0, row1 = max(0, math.floor(rows[0] + 1e-9)), min(dataset.height, math.ceil(rows[1] - 1e-9))
    if col1 <= col0 or row1 <= row0:
        b = dataset.bounds
        raise NoOverlapError(
            f"The extent ({xmin:.6g}, {ymin:.6g}, {xmax:.6g}, {ymax:.6g} in the raster's CRS) does "
            f"not overlap the input raster ({b.left:.6g}, {b.bottom:.6g}, {b.right:.6g}, "
            f"{b.top:.6g}). Choose an extent over the raster, or none for the whole raster.")
    return col0, row0, col1 - col0, row1 - row0


@contextlib.contextmanager
def raster_part(input_path: str, extent: Optional[Sequence[float]], extent_crs=None,
                log=None) -> Iterator[str]:
    """Yields a raster path covering ``extent`` on the input's grid (the input itself when
    ``extent`` is None); a temporary VRT is removed afterwards."""
    if not extent:
        yield input_path
        return
    from osgeo import gdal

    from ..io import raster as raster_io

    with raster_io.open_raster(input_path, "Input raster") as dataset:
        col, row, width, height = extent_window(dataset, extent, extent_crs)
        full = (width, height) == (dataset.width, dataset.height)
        total = (dataset.width, dataset.height)
    if full:
        yield input_path
        return
    folder = tempfile.mkdtemp(prefix=".landfusion-extent-")
    try:
        path = os.path.join(folder, "part.vrt")
        result = gdal.Translate(path, os.path.abspath(input_path), format="VRT",
                                srcWin=[col, row, width, height])
        if result is None:
            raise InputError(f"Cannot cut the extent out of '{input_path}': "
                             f"{gdal.GetLastErrorMsg()}")
        result = None
        if log:
            log(f"Extent: {width} x {height} pixels of the {total[0]} x {total[1]} input "
                f"(columns {col}-{col + width - 1}, rows {row}-{row + height - 1}).")
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)
