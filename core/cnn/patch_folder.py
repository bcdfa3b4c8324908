"""Patch-classification samples from a folder with one sub-folder of patch rasters per class (the
EuroSAT layout); each patch is its own validation group."""

from __future__ import annotations

import os

import numpy as np

from ..errors import InputError, NoDataError
from ..io import raster as raster_io
from ..io.classmap import ClassInfo, palette_color
from ..runtime import IsCancelled, Progress, check_cancelled, never_cancelled, no_progress
from .datasets import SampleSet, input_bands, read_bands

_RASTER_EXTENSIONS = (".tif", ".tiff", ".jp2", ".img", ".vrt")


def _patch_files(folder: str) -> list:
    if not folder or not os.path.isdir(folder):
        raise InputError(f"Patch folder '{folder}' does not exist or is not a folder.")
    classes = []
    for name in sorted(os.listdir(folder)):
        sub = os.path.join(folder, name)
        if not os.path.isdir(sub):
            continue
        files = sorted(os.path.join(sub, f) for f in os.listdir(sub)
                       if f.lower().endswith(_RASTER_EXTENSIONS))
        if files:
            classes.append((name, files))
    if not classes:
        raise NoDataError(
            f"The patch folder '{folder}' holds no sub-folder with rasters. Use one sub-folder per "
            "class, named after the class, holding that class's patch rasters (GeoTIFF).")
    return classes


def scan_patch_folder(folder: str, input_band_names=None, bands=None) -> dict:
    """Checks a patch folder without reading pixels: classes, band count and size of every patch.

    Returns:
        ``{"classes": [(name, files)], "bands": chosen names, "indexes": [...], "size": int}``.

    Raises:
        InputError: for mixed band counts or sizes (naming two files that differ), non-square
            patches or a single class.
    """
    classes = _patch_files(folder)
    if len(classes) < 2:
        raise NoDataError(f"The patch folder '{folder}' holds a single class "
                          f"({classes[0][0]}); a classifier needs at least two class sub-folders.")
    first = None
    with raster_io.gdal_env():
        for _, files in classes:
            for path in files:
                with raster_io.open_raster(path, "Patch") as ds:
                    shape = (ds.count, ds.height, ds.width)
                    if first is None:
                        first = (path, shape)
                        picked = input_bands(ds, f"Patch '{path}'", input_band_names, bands)
                    elif shape != first[1]:
                        raise InputError(
                            "The patch folder mixes band counts or sizes: "
                            f"'{os.path.relpath(first[0], folder)}' has {first[1][0]} bands of "
                            f"{first[1][2]} x {first[1][1]} px, '{os.path.relpath(path, folder)}' "
                            f"has {shape[0]} bands of {shape[2]} x {shape[1]} px. All patches "
                            "must have the same bands and size.")
    count, height, width = first[1]
    if height != width:
        raise InputError(f"Patches must be square; '{first[0]}' is {width} x {height} px.")
    return {"classes": classes, "bands": picked.names, "indexes": picked.indexes, "size": width,
            "pixel_size": picked.pixel_size}


def folder_samples(folder: str, bands=None, input_band_names=None,
                   progress: Progress = no_progress,
                   is_cancelled: IsCancelled = never_cancelled) -> SampleSet:
    """Reads every patch of a EuroSAT-style folder; each patch is its own validation group."""
    scan = scan_patch_folder(folder, input_band_names, bands)
    total = sum(len(f) for _, f in scan["classes"])
    xs, ys, groups, sources = [], [], [], []
    done = 0
    with raster_io.gdal_env():
        for index, (name, files) in enumerate(scan["classes"]):
            for path in files:
                check_cancelled(is_cancelled)
                with raster_io.open_raster(path, "Patch") as ds:
                    xs.append(read_bands(ds, scan["indexes"]))
                ys.append(index)
                groups.append(os.path.relpath(path, folder))
                sources.append(index)
                done += 1
                progress(done / total)
    classes = [ClassInfo(i, name, palette_color(i)) for i, (name, _) in enumerate(scan["classes"])]
    return SampleSet(np.stack(xs), np.array(ys, dtype="int64"), np.array(groups),
                     np.array(sources), scan["bands"], classes, [folder], "patch_classification",
                     scan["size"], scan["pixel_size"])
