"""Masks: one convention for the whole plugin, and cloud masks matched to dated inputs.

The convention: a mask marks what to leave out. 0 means clear (use the pixel); any other value,
and the mask's nodata, mean "leave it out". ``landfusion:cloudmask`` writes exactly that (0 clear,
1 cloud, 2 cloud shadow), so its output chains into every algorithm that takes a mask; a
Sentinel-2 SCL layer is read through its classes instead (``scl``).

A mask written by ``landfusion:cloudmask`` is recognised by its metadata (its class names
``clear``/``cloud``/``cloud shadow`` in the band's category names, or a ``LANDFUSION_ALGORITHM``
tag) whatever mask type the user chose, because reading it as an SCL layer would hide every clear
pixel (0 is "no data" in SCL).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np

from ..errors import InputError

MASK_TYPES = ("scl", "cloudmask", "binary")
MASK_TYPE_NAMES = {"scl": "Sentinel-2 SCL layer", "cloudmask": "landfusion:cloudmask output",
                   "binary": "binary mask (non-zero = not clear)"}


def is_landfusion_cloud_mask(path: str, dataset) -> bool:
    """Tells whether a raster is a ``landfusion:cloudmask`` output, from its metadata."""
    tags = {k.upper(): v for k, v in (dataset.tags() or {}).items()}
    if tags.get("LANDFUSION_ALGORITHM", "").lower() == "cloudmask":
        return True
    if dataset.count != 1:
        return False
    from osgeo import gdal

    info = gdal.Open(os.path.abspath(path))
    if info is None:
        return False
    band = info.GetRasterBand(1)
    band.GetColorTable()  # loads the .aux.xml, where GeoTIFF keeps category names
    names = [n.strip().lower() for n in (band.GetCategoryNames() or [])]
    return names[:3] == ["clear", "cloud", "cloud shadow"]


def clear_lookup(mask_type: str) -> np.ndarray:
    """Returns a 256-entry table: True for mask values that mean a clear observation."""
    table = np.zeros(256, dtype=bool)
    if mask_type == "scl":
        from .cloud_mask import CLEAR, scl_lookup

        table[:] = scl_lookup() == CLEAR
    else:
        table[0] = True
    return table


def clear_from_values(values: np.ndarray, table: np.ndarray, mask_type: str) -> np.ndarray:
    """Turns mask values (float, NaN where nodata) into a clear/not-clear boolean array."""
    valid = np.isfinite(values)
    if mask_type == "binary":
        return valid & (values == 0)
    index = np.where(valid, np.clip(values, 0, 255), 255).astype(np.intp)
    return valid & table[index]


def check_mask_raster(path: str, dataset, chosen: str, log) -> str:
    """Checks a mask raster and returns the type it will be read as.

    Raises:
        InputError: when the raster cannot be a mask of the chosen type.
    """
    if is_landfusion_cloud_mask(path, dataset):
        if chosen != "cloudmask":
            log(f"'{os.path.basename(path)}' is a landfusion:cloudmask output (from its metadata); "
                f"read as such rather than as a {MASK_TYPE_NAMES[chosen]}.")
        return "cloudmask"
    if dataset.count != 1:
        raise InputError(f"Mask '{os.path.basename(path)}' has {dataset.count} bands; a mask "
                         "is one band per date (give one mask raster per input).")
    if chosen == "scl" and not np.issubdtype(np.dtype(dataset.dtypes[0]), np.integer):
        raise InputError(f"Mask '{os.path.basename(path)}' is {dataset.dtypes[0]}, not an SCL "
                         "layer (one integer band, values 0-11). Choose the binary mask type if "
                         "non-zero means cloud.")
    return chosen


def match_masks(input_dates: Sequence, input_names: Sequence[str], mask_paths: Sequence[str],
                mask_dates: Sequence, log) -> List[Optional[int]]:
    """Pairs masks with inputs: by date when every mask has one, else by order.

    Returns:
        For each input, the index of its mask.

    Raises:
        InputError: when the counts or the dates do not match.
    """
    if len(mask_paths) != len(input_dates):
        raise InputError(f"{len(mask_paths)} mask(s) were given for {len(input_dates)} input "
                         "raster(s); give exactly one mask per input (matched by date, or in "
                         "the same order), or no masks.")
    if all(d is not None for d in mask_dates):
        if sorted(mask_dates) != sorted(input_dates):
            missing = sorted({str(d) for d in input_dates} - {str(d) for d in mask_dates})
            extra = sorted({str(d) for d in mask_dates} - {str(d) for d in input_dates})
            raise InputError(
                "The masks' dates do not match the inputs' dates"
                + (f" (no mask dated {', '.join(missing)}" if missing else " (")
                + (f"; masks dated {', '.join(extra)} match no input" if extra else "")
                + "). Give one mask per input date.")
        free = list(range(len(mask_paths)))
        matched = []
        for date in input_dates:
            k = next(i for i in free if mask_dates[i] == date)
            free.remove(k)
            matched.append(k)
        log("Masks matched to inputs by date.")
        return matched
    log("Masks matched to inputs by order (not every mask has a date in its name).")
    return list(range(len(input_dates)))


@dataclass
class UsableMask:
    """A mask raster on an input's grid, read as "usable pixel" arrays block by block."""

    dataset: object
    kind: str

    def __post_init__(self):
        self.table = clear_lookup(self.kind)

    def usable(self, window) -> np.ndarray:
        """True where the mask lets the pixel be used (clear), False where it leaves it out."""
        values = self.dataset.read(1, window=window, masked=True)
        return clear_from_values(values.astype("float32").filled(np.nan), self.table, self.kind)
