"""Labels of training chips, on the grid of the input they are cut from: a label raster warped
onto the input grid (nearest), or training polygons/points rasterised on it."""

from __future__ import annotations

import os
from typing import Optional, Sequence

import numpy as np

from ..errors import NoOverlapError
from ..io import raster as raster_io
from ..io.classmap import ClassInfo, palette_color
from ..runtime import Log

#: Label value of pixels without a label, while reading.
LABEL_SENTINEL = -2147483647


class LabelSource:
    """Labels of one input on the input's grid: a warped label raster or rasterised vectors."""

    def __init__(self, dataset, label_path=None, label_nodata=None, vector=None):
        self.dataset = dataset
        self.label = raster_io.open_raster(label_path, "Label raster") if label_path else None
        self.label_path = label_path
        self.vector = vector
        if self.label is not None:
            self.nodata = label_nodata if label_nodata is not None else self.label.nodata
            self._check_overlap()

    def _check_overlap(self) -> None:
        from rasterio.warp import transform_bounds

        ds, lab = self.dataset, self.label
        bounds = lab.bounds
        if lab.crs and ds.crs and lab.crs != ds.crs:
            bounds = transform_bounds(lab.crs, ds.crs, *bounds)
        left, bottom = max(bounds[0], ds.bounds.left), max(bounds[1], ds.bounds.bottom)
        right, top = min(bounds[2], ds.bounds.right), min(bounds[3], ds.bounds.top)
        if left >= right or bottom >= top:
            raise NoOverlapError(
                f"The label raster '{os.path.basename(self.label_path)}' does not overlap the "
                f"input '{os.path.basename(ds.name)}' (label extent "
                f"{tuple(round(b, 6) for b in bounds)} vs input extent "
                f"{tuple(round(b, 6) for b in ds.bounds)} in the input's CRS). "
                "Give the labels of this input, in the same order as the inputs.")

    def read(self, window) -> np.ndarray:
        """Returns int64 label values over ``window`` of the input grid, ``LABEL_SENTINEL``
        where unlabelled."""
        import rasterio
        from rasterio.warp import Resampling, reproject

        ds = self.dataset
        height, width = int(window.height), int(window.width)
        if self.label is not None:
            out = np.full((height, width), LABEL_SENTINEL, dtype="int32")
            reproject(
                source=rasterio.band(self.label, 1),
                destination=out, src_transform=self.label.transform,
                src_crs=self.label.crs or ds.crs, src_nodata=self.nodata,
                dst_transform=ds.window_transform(window), dst_crs=ds.crs or self.label.crs,
                dst_nodata=LABEL_SENTINEL, resampling=Resampling.nearest)
            return out.astype("int64")
        from ..classification.samples import rasterise_feature_ids

        features, wkt = self.vector
        ids_ds = rasterise_feature_ids(
            features, ds, (int(window.col_off), int(window.row_off), width, height), wkt)
        ids = ids_ds.GetRasterBand(1).ReadAsArray()
        lookup = np.array([LABEL_SENTINEL] + [f.class_value for f in features], dtype="int64")
        return lookup[ids]

    def close(self) -> None:
        """Closes the label raster."""
        if self.label is not None:
            self.label.close()


def check_label_overlap(dataset, label_path: str) -> None:
    """Raises :class:`NoOverlapError` when a label raster does not overlap its input."""
    LabelSource(dataset, label_path).close()


def training_on_input(training: str, class_field: str, dataset, what: str, only_input: bool,
                      kind: str, warn: Log) -> Optional[tuple]:
    """``(training vector, the input's CRS as WKT)`` of the features on one input.

    Returns None (with a warning naming the input) when no ``kind`` of the layer lies on it.

    Raises:
        NoOverlapError: when nothing lies on the input and it is the only input.
    """
    from ..classification.samples import read_training_vector

    wkt = dataset.crs.to_wkt() if dataset.crs else ""
    try:
        vector = read_training_vector(training, class_field, wkt, tuple(dataset.bounds), warn=warn)
    except NoOverlapError:
        if only_input:
            raise
        warn(f"{what}: no training {kind} lies on it; the input is not used.")
        return None
    return vector, wkt


def label_classes(values: Sequence[int], label_path: Optional[str], named: dict) -> list:
    """ClassInfo for label values, named from the label raster's categories when it has some."""
    styled = {}
    if label_path:
        try:
            from ..io.classmap import read_class_styling

            styled = {c.value: c for c in read_class_styling(label_path)}
        except Exception:  # an unstyled label raster is fine
            styled = {}
    classes = []
    for i, value in enumerate(values):
        if value in named:
            classes.append(ClassInfo(int(value), named[value].name, named[value].color))
        elif value in styled:
            classes.append(ClassInfo(int(value), styled[value].name, styled[value].color))
        else:
            classes.append(ClassInfo(int(value), f"Class {value}", palette_color(i)))
    return classes
