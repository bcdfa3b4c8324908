"""The target pixel grid of a stack and where each input lies on it."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Optional, Tuple

from ...errors import InputError


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


def grid_of(dataset) -> Grid:
    """The grid of an open dataset."""
    return Grid(dataset.crs, dataset.transform, dataset.width, dataset.height)


def crs_name(crs) -> str:
    """A short name for a CRS in messages ('EPSG:32633')."""
    if crs is None:
        return "no CRS"
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.to_string()[:60]


def format_bounds(bounds, crs) -> str:
    """Bounds with their CRS, for messages."""
    left, bottom, right, top = bounds
    digits = 6 if crs is not None and crs.is_geographic else 1
    return (f"[{left:.{digits}f}, {bottom:.{digits}f}, {right:.{digits}f}, {top:.{digits}f}] "
            f"({crs_name(crs)})")


def bounds_in(dataset, crs) -> tuple:
    """The dataset's bounds in ``crs``.

    Raises:
        InputError: when the dataset has no CRS.
    """
    from rasterio.warp import transform_bounds

    if dataset.crs is None:
        raise InputError(
            f"'{dataset.name}' has no coordinate reference system, so it cannot be placed on the "
            "target grid. Assign its CRS (Raster > Projections > Assign Projection) first.")
    if dataset.crs == crs:
        return tuple(dataset.bounds)
    return tuple(transform_bounds(dataset.crs, crs, *dataset.bounds, densify_pts=21))


def overlap_fraction(bounds, grid: Grid) -> float:
    """The fraction of the grid covered by ``bounds`` (in the grid's CRS)."""
    left, bottom, right, top = grid.bounds
    width = max(0.0, min(right, bounds[2]) - max(left, bounds[0]))
    height = max(0.0, min(top, bounds[3]) - max(bottom, bounds[1]))
    return (width * height) / ((right - left) * (top - bottom))


def aligned_offset(dataset, grid: Grid) -> Optional[Tuple[int, int]]:
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


def resolution_in(dataset, crs) -> float:
    """Approximate pixel size of ``dataset`` in the units of ``crs`` (mean of x and y)."""
    bounds = bounds_in(dataset, crs)
    width, height = bounds[2] - bounds[0], bounds[3] - bounds[1]
    return 0.5 * (width / dataset.width + height / dataset.height)


def choose_resampling(dataset, grid: Grid, kind: str) -> str:
    """Nearest for masks; average when the input is finer than the grid, else bilinear."""
    if kind == "mask":
        return "nearest"
    source = resolution_in(dataset, grid.crs)
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
        return grid_of(reference), f"grid of the reference raster '{reference.name}'"
    if crs is None and not resolution and extent is None:
        return grid_of(base), f"grid of '{os.path.basename(base.name)}'"
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
            resolution = resolution_in(base, target_crs)
    if extent is None and target_crs == base.crs and base.transform.b == base.transform.d == 0:
        # Same CRS, new pixel size: keep the input's origin so pixels nest (20 m -> 10 m).
        left, top = base.transform.c, base.transform.f
        width = max(1, int(math.ceil(base.width * abs(base.transform.a) / resolution - 1e-9)))
        height = max(1, int(math.ceil(base.height * abs(base.transform.e) / resolution - 1e-9)))
        grid = Grid(target_crs, from_origin(left, top, resolution, resolution), width, height)
        return grid, f"{crs_name(target_crs)} grid at {resolution:g} units per pixel"
    if extent is None:
        extent = bounds_in(base, target_crs)
    left, bottom, right, top = extent
    if not (right > left and top > bottom):
        raise InputError(f"The target extent {extent} is empty; give xmin < xmax and ymin < ymax.")
    # Snap the extent outwards onto multiples of the pixel size, as gdalwarp -tap does.
    left = math.floor(left / resolution + 1e-9) * resolution
    top = math.ceil(top / resolution - 1e-9) * resolution
    width = max(1, int(math.ceil((right - left) / resolution - 1e-9)))
    height = max(1, int(math.ceil((top - bottom) / resolution - 1e-9)))
    grid = Grid(target_crs, from_origin(left, top, resolution, resolution), width, height)
    return grid, f"{crs_name(target_crs)} grid at {resolution:g} units per pixel"
