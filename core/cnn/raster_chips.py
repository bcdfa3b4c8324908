"""Training chips cut from input rasters.

- Segmentation (:func:`segmentation_samples`): every input raster is cut into a grid of
  ``patch_size`` tiles; labels come from a label raster per input (any grid: warped onto the
  input grid with nearest resampling) or from training polygons/points rasterised on the input
  grid (:mod:`.chip_labels`). Tiles without labelled pixels are dropped.
- Patch classification (:func:`point_samples`): patches of ``patch_size`` cut around labelled
  points of input rasters.

Each chip's validation group is its input, or its spatial block of the input.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Iterator, Optional, Sequence

import numpy as np

from ..errors import InputError, NoDataError
from ..io import raster as raster_io
from ..io.classmap import ClassInfo
from ..runtime import (IsCancelled, Log, Progress, check_cancelled, never_cancelled, no_log,
                       no_progress)
from .chip_labels import LABEL_SENTINEL, LabelSource, label_classes, training_on_input
from .datasets import (IGNORE, MAX_SAMPLES_MB, InputBands, SampleSet, block_key, input_bands,
                       input_key, read_bands)


@dataclass
class _Chips:
    """The chips gathered input by input, and how they are grouped for validation."""

    inputs: Sequence[str]
    patch_size: int
    validation: str
    block: int
    xs: list = field(default_factory=list)
    ys: list = field(default_factory=list)
    groups: list = field(default_factory=list)
    sources: list = field(default_factory=list)
    named: dict = field(default_factory=dict)
    first: Optional[InputBands] = None

    def each_input(self, given_names, wanted) -> Iterator[tuple]:
        """Opens the inputs in turn: ``(index, dataset, its bands)``; the first input's bands
        are the run's."""
        with raster_io.gdal_env():
            for i, path in enumerate(self.inputs):
                with raster_io.open_raster(path, "Input raster") as ds:
                    picked = input_bands(ds, f"Input raster '{os.path.basename(path)}'",
                                         given_names, wanted, self.patch_size)
                    if self.first is None:
                        self.first = picked
                    yield i, ds, picked

    def add(self, x: np.ndarray, y, source: int, row: int, col: int) -> None:
        """Keeps one chip, grouped by its input or by the spatial block of (row, col)."""
        self.xs.append(x)
        self.ys.append(y)
        self.groups.append(input_key(self.inputs, source) if self.validation == "inputs"
                           else block_key(source, row, col, self.block))
        self.sources.append(source)


def segmentation_samples(
    inputs: Sequence[str],
    patch_size: int,
    bands: Optional[Sequence[str]] = None,
    input_band_names: Optional[Sequence[str]] = None,
    labels: Optional[Sequence[str]] = None,
    label_nodata: Optional[float] = None,
    training: Optional[str] = None,
    class_field: Optional[str] = None,
    validation: str = "inputs",
    block_size: int = 0,
    progress: Progress = no_progress,
    is_cancelled: IsCancelled = never_cancelled,
    warn: Log = no_log,
) -> SampleSet:
    """Cuts labelled ``patch_size`` tiles from the inputs (see the module docstring).

    Raises:
        InputError, BandError, NoOverlapError, NoDataError, CancelledError.
    """
    _check_label_sources(inputs, labels, training)
    chips = _Chips(inputs, patch_size, validation, max(patch_size,
                                                       int(block_size or 2 * patch_size)))
    planned = 0
    for i, ds, picked in chips.each_input(input_band_names, bands):
        planned = _check_tile_memory(planned, ds, patch_size, len(picked.indexes))
        vector = None
        if not labels:
            found = training_on_input(training, class_field, ds, picked.what, len(inputs) == 1,
                                      "feature", warn)
            if found is None:
                continue
            for c in found[0].classes:
                chips.named.setdefault(c.value, c)
            vector = (found[0].features, found[1])
        source = LabelSource(ds, labels[i] if labels else None, label_nodata, vector)
        try:
            kept = _cut_tiles(ds, picked, source, i, chips, progress, is_cancelled)
        finally:
            source.close()
        if kept == 0:
            warn(f"{picked.what}: no {patch_size} x {patch_size} tile holds labelled pixels "
                 "with valid data; the input is not used.")
    if not chips.xs:
        raise NoDataError(
            "No labelled pixel with valid input data was found in any input (labels all nodata, "
            "outside the inputs, or where the inputs are nodata). Check the label nodata value "
            "and that the labels cover the inputs.")
    return _segmentation_set(chips, labels, label_nodata)


def _check_label_sources(inputs, labels, training) -> None:
    """Refuses a segmentation run without inputs, or without one label source per input."""
    if not inputs:
        raise InputError("Segmentation needs at least one input raster.")
    if labels and len(labels) != len(inputs):
        raise InputError(f"Give one label raster per input raster: {len(inputs)} input(s), "
                         f"{len(labels)} label raster(s), in the same order.")
    if not labels and not training:
        raise InputError("Segmentation needs labels: label rasters (one per input) or training "
                         "polygons with a class field.")


def _check_tile_memory(planned: int, dataset, patch_size: int, band_count: int) -> int:
    """Adds the tiles of one input to the bytes planned so far; refuses more than
    :data:`MAX_SAMPLES_MB`."""
    planned += (dataset.width // patch_size) * (dataset.height // patch_size) * \
        patch_size ** 2 * (4 * band_count + 8)
    if planned > MAX_SAMPLES_MB * 2 ** 20:
        raise InputError(
            f"The inputs would need about {planned / 2 ** 20:.0f} MiB of training "
            f"tiles (limit {MAX_SAMPLES_MB} MiB). Crop the inputs to the labelled "
            "areas, use fewer inputs or fewer bands.")
    return planned


def _cut_tiles(dataset, picked: InputBands, source: LabelSource, index: int, chips: _Chips,
               progress: Progress, is_cancelled: IsCancelled) -> int:
    """Keeps the tiles of one input with at least 1 % labelled, valid pixels; returns how many.

    The input is read strip by strip, and only strips holding labels."""
    from rasterio.windows import Window

    size = chips.patch_size
    kept = 0
    for row in range(0, dataset.height - size + 1, size):
        check_cancelled(is_cancelled)
        window = Window(0, row, dataset.width, size)
        strip_y = source.read(window)
        if not (strip_y != LABEL_SENTINEL).any():
            continue
        strip_x = read_bands(dataset, picked.indexes, window)
        for col in range(0, dataset.width - size + 1, size):
            y = strip_y[:, col:col + size]
            x = strip_x[:, :, col:col + size]
            usable = (y != LABEL_SENTINEL) & np.isfinite(x).all(axis=0)
            if usable.sum() < max(1, size * size // 100):
                continue
            chips.add(x.copy(), np.where(usable, y, LABEL_SENTINEL), index, row, col)
            kept += 1
        progress((index + (row + size) / dataset.height) / len(chips.inputs))
    return kept


def _segmentation_set(chips: _Chips, labels, label_nodata) -> SampleSet:
    """The tiles as a sample set: label values become class indexes (``IGNORE`` unlabelled)."""
    raw_y = np.stack(chips.ys)
    values = sorted(int(v) for v in np.unique(raw_y) if v != LABEL_SENTINEL)
    if label_nodata is not None:
        values = [v for v in values if v != int(label_nodata)]
    classes = label_classes(values, labels[0] if labels else None, chips.named)
    y = np.full(raw_y.shape, IGNORE, dtype="int64")
    for index, value in enumerate(values):
        y[raw_y == value] = index
    return SampleSet(np.stack(chips.xs), y, np.array(chips.groups), np.array(chips.sources),
                     list(chips.first.names), classes, list(chips.inputs), "segmentation",
                     chips.patch_size, chips.first.pixel_size)


def point_samples(inputs: Sequence[str], training: str, class_field: str, patch_size: int,
                  bands=None, input_band_names=None, validation: str = "inputs",
                  block_size: int = 0, progress: Progress = no_progress,
                  is_cancelled: IsCancelled = never_cancelled, warn: Log = no_log) -> SampleSet:
    """Cuts a ``patch_size`` patch centred on every labelled point (polygons: their centroid)."""
    if not inputs:
        raise InputError("Patches around points need at least one input raster.")
    chips = _Chips(inputs, patch_size, validation, max(patch_size,
                                                       int(block_size or 4 * patch_size)))
    skipped = 0
    for i, ds, picked in chips.each_input(input_band_names, bands):
        found = training_on_input(training, class_field, ds, picked.what, len(inputs) == 1,
                                  "point", warn)
        if found is None:
            continue
        if found[0].geometry_kind != "point":
            warn("Patch classification takes the centroid of each training polygon.")
        skipped += _cut_point_patches(ds, picked, found[0], i, chips, progress, is_cancelled)
    if skipped:
        warn(f"{skipped} point(s) were skipped: their {patch_size} x {patch_size} patch reaches "
             "beyond the raster or holds no valid pixel.")
    if not chips.xs:
        raise NoDataError(f"No training point has a full {patch_size} x {patch_size} patch "
                          "inside an input raster; use a smaller patch size or points further "
                          "from the raster edges.")
    values = sorted(set(chips.ys))
    index = {v: k for k, v in enumerate(values)}
    classes = [ClassInfo(v, chips.named[v].name, chips.named[v].color) for v in values]
    return SampleSet(np.stack(chips.xs), np.array([index[v] for v in chips.ys], dtype="int64"),
                     np.array(chips.groups), np.array(chips.sources), list(chips.first.names),
                     classes, list(inputs), "patch_classification", patch_size,
                     chips.first.pixel_size)


def _cut_point_patches(dataset, picked: InputBands, vector, index: int, chips: _Chips,
                       progress: Progress, is_cancelled: IsCancelled) -> int:
    """Keeps the patch around every point of one input; returns how many points were skipped
    (patch beyond the raster, or without a valid pixel)."""
    from rasterio.windows import Window

    size, half = chips.patch_size, chips.patch_size // 2
    inverse = ~dataset.transform
    skipped = 0
    for n, feature in enumerate(vector.features):
        check_cancelled(is_cancelled)
        chips.named.setdefault(feature.class_value, next(
            c for c in vector.classes if c.value == feature.class_value))
        point = feature.geometry.Centroid()
        col, row = inverse * (point.GetX(), point.GetY())
        col0, row0 = int(math.floor(col)) - half, int(math.floor(row)) - half
        if col0 < 0 or row0 < 0 or col0 + size > dataset.width or \
                row0 + size > dataset.height:
            skipped += 1
            continue
        x = read_bands(dataset, picked.indexes, Window(col0, row0, size, size))
        if not np.isfinite(x).all(axis=0).any():
            skipped += 1
            continue
        chips.add(x, feature.class_value, index, row0 + half, col0 + half)
        progress((index + (n + 1) / len(vector.features)) / len(chips.inputs))
    return skipped
