"""The class raster writer shared by every classifier (pixel models, CNNs, cloud masks).

- :func:`valid_pixels` decides which pixels can be classified (nodata, NaN/inf, mask);
- :class:`ClassificationWriter` writes the class raster (uint8/uint16 with colour table, category
  names and a ``.qml`` beside it), the confidence/margin raster and the probability stack, block by
  block, atomically: on any failure or cancel no output is left behind. It takes either class
  labels with the valid pixels' probabilities (pixel classifiers) or a full (classes, rows, cols)
  probability array (CNNs), and counts the pixels per class;
- :func:`class_fractions` turns the counts into fractions for reports.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from typing import Optional, Sequence

import numpy as np

from . import raster as raster_io
from .outputs import atomic_raster_output, check_raster_output
from .classmap import ClassInfo, apply_class_styling, class_profile, write_paletted_qml

#: Nodata of the float outputs (confidence, margin, probabilities).
FLOAT_NODATA = raster_io.FLOAT_NODATA


def valid_pixels(data: np.ndarray, nodata: Sequence, mask: Optional[np.ndarray] = None
                 ) -> np.ndarray:
    """Returns a (rows, cols) bool array: True where every band is finite and not nodata.

    Args:
        data: (bands, rows, cols) pixel values.
        nodata: per-band nodata: a value, None where unset, or a sequence of values (a band
            with several nodata values, such as the raster's and a model's own).
        mask: optional (rows, cols) bool array; False pixels are not valid.
    """
    valid = np.isfinite(data).all(axis=0)
    for b, values in enumerate(nodata):
        for value in (values if isinstance(values, (list, tuple)) else (values,)):
            if value is not None and not (isinstance(value, float) and math.isnan(value)):
                valid &= data[b] != np.asarray(value, dtype=data.dtype)
    if mask is not None:
        valid &= mask
    return valid


def top_two_margin(probabilities: np.ndarray) -> tuple:
    """Returns (max probability, top-1 minus top-2 probability) per row."""
    if probabilities.shape[1] == 1:
        top = probabilities[:, 0]
        return top, top.copy()
    part = np.partition(probabilities, -2, axis=1)
    return part[:, -1], part[:, -1] - part[:, -2]


def best_two(probabilities: np.ndarray, margin: bool = True) -> tuple:
    """Returns ``(index of the highest score, highest score, top-1 minus top-2 score)`` over axis
    0 of a (classes, rows, cols) array (the first index wins ties, as argmax). A class-by-class
    loop, much faster than ``argmax``/``partition`` over axis 0 of a large array. With ``margin``
    False the margin is not computed (None)."""
    top = probabilities[0].astype(np.float32, copy=True)
    best = np.zeros(top.shape, dtype=np.uint16 if len(probabilities) > 255 else np.uint8)
    if len(probabilities) == 1:
        return best, top, (top.copy() if margin else None)
    second = np.full(top.shape, -np.inf, dtype=np.float32) if margin else None
    for k in range(1, len(probabilities)):
        scores = probabilities[k]
        if margin:
            np.maximum(second, np.minimum(top, scores), out=second)
        best[scores > top] = k
        np.maximum(top, scores, out=top)
    return best, top, (top - second if margin else None)


def class_fractions(classes: Sequence[ClassInfo], counts: Sequence[int]) -> dict:
    """Returns ``{class name: fraction of the counted pixels}`` (all 0 when nothing was counted)."""
    total = int(np.sum(counts))
    return {c.name: (float(n) / total if total else 0.0) for c, n in zip(classes, counts)}


class ClassificationWriter:
    """Writes the outputs of a classification block by block, atomically, styled at the end.

    Use as a context manager on the grid of an open ``reference`` dataset::

        with ClassificationWriter(src, classes, class_path, confidence_path, probabilities_path,
                                  nodata) as writer:
            writer.write(window, labels, valid, probabilities)

    ``labels`` is a (rows, cols) array of class values (anything where ``valid`` is False is
    replaced by nodata) or the valid pixels' values in row-major order; ``probabilities`` either
    (n_valid, n_classes) for the valid pixels in row-major order, or (n_classes, rows, cols) for
    every pixel of the block, in which case ``labels`` may be None (the most probable class is
    taken). ``class_counts`` (in the order of ``classes``) and ``valid_pixels`` count what was
    written. ``compress`` is the codec of the float outputs (see raster_io.compression_options).
    On success the class raster gets its colour table, category names and ``.qml``; on failure
    every output is removed.
    """

    def __init__(self, reference, classes: Sequence[ClassInfo], class_path: str,
                 confidence_path: Optional[str] = None, probabilities_path: Optional[str] = None,
                 nodata: Optional[int] = None, compress: str = "ZSTD"):
        self.reference = reference
        self.classes = list(classes)
        self.paths = {"class": class_path, "confidence": confidence_path,
                      "probabilities": probabilities_path}
        self.profile = class_profile(reference, self.classes, nodata)
        self.nodata = self.profile["nodata"]
        self.compress = compress
        self._stack = None
        self._temps = {}
        self.datasets = {}
        values = np.array([c.value for c in self.classes], dtype=np.int64)
        self._values = values.astype(self.profile["dtype"])
        self._order = np.argsort(values, kind="stable")
        self._sorted_values = values[self._order]
        self.class_counts = np.zeros(len(self.classes), dtype=np.int64)
        self.valid_pixels = 0

    def __enter__(self):
        import rasterio

        for key, path in self.paths.items():
            if path:
                check_raster_output(path, f"{key.capitalize()} output")
        self._stack = contextlib.ExitStack()
        self._stack.__enter__()
        try:
            temp = self._stack.enter_context(atomic_raster_output(self.paths["class"],
                                                                     "Class raster"))
            self._temps["class"] = temp
            self.datasets["class"] = self._stack.enter_context(
                rasterio.open(temp, "w", **self.profile))
            self.datasets["class"].set_band_description(1, "class")
            if self.paths["confidence"]:
                temp = self._stack.enter_context(atomic_raster_output(
                    self.paths["confidence"], "Confidence raster"))
                dataset = self._stack.enter_context(rasterio.open(
                    temp, "w", **raster_io.float_profile(self.reference, 2, FLOAT_NODATA,
                                                         self.compress)))
                dataset.set_band_description(1, "confidence")
                dataset.set_band_description(2, "margin")
                self.datasets["confidence"] = dataset
            if self.paths["probabilities"]:
                temp = self._stack.enter_context(atomic_raster_output(
                    self.paths["probabilities"], "Probability raster"))
                dataset = self._stack.enter_context(rasterio.open(
                    temp, "w", **raster_io.float_profile(self.reference, len(self.classes),
                                                         FLOAT_NODATA, self.compress)))
                for i, c in enumerate(self.classes, start=1):
                    dataset.set_band_description(i, c.name)
                self.datasets["probabilities"] = dataset
        except BaseException:
            self._stack.__exit__(*sys.exc_info())
            raise
        return self

    def write(self, window, labels: Optional[np.ndarray], valid: np.ndarray,
              probabilities: Optional[np.ndarray] = None) -> None:
        """Writes one block; pixels where ``valid`` is False become nodata in every output."""
        rows, cols = valid.shape
        full = probabilities is not None and probabilities.ndim == 3
        if full:
            best, top, margin = best_two(probabilities, "confidence" in self.datasets)
            if labels is None:
                labels = self._values[best]
            self.class_counts += np.bincount(best[valid], minlength=len(self.classes))
        out = np.full((rows, cols), self.nodata, dtype=self.profile["dtype"])
        if labels is not None:
            chosen = labels[valid] if labels.shape == valid.shape else labels
            out[valid] = chosen
            if not full and chosen.size:
                self.class_counts += self._count(chosen)
        self.valid_pixels += int(np.count_nonzero(valid))
        self.datasets["class"].write(out, 1, window=window)
        if "confidence" in self.datasets:
            confidence = np.full((2, rows, cols), FLOAT_NODATA, dtype=np.float32)
            if full:
                confidence[0], confidence[1] = top, margin
                confidence[:, ~valid] = FLOAT_NODATA
            elif probabilities is not None and probabilities.size:
                top, margin = top_two_margin(probabilities)
                confidence[0][valid] = top
                confidence[1][valid] = margin
            self.datasets["confidence"].write(confidence, window=window)
        if "probabilities" in self.datasets:
            if full:
                stack = probabilities.astype(np.float32, copy=True)
                stack[:, ~valid] = FLOAT_NODATA
            else:
                stack = np.full((len(self.classes), rows, cols), FLOAT_NODATA, dtype=np.float32)
                if probabilities is not None and probabilities.size:
                    for i in range(len(self.classes)):
                        stack[i][valid] = probabilities[:, i]
            self.datasets["probabilities"].write(stack, window=window)

    def _count(self, labels: np.ndarray) -> np.ndarray:
        """Pixels per class (in the order of ``classes``) among class values; others ignored."""
        position = np.searchsorted(self._sorted_values, labels)
        position = np.minimum(position, len(self._sorted_values) - 1)
        known = self._sorted_values[position] == labels
        return np.bincount(self._order[position[known]], minlength=len(self.classes))

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            # Close the datasets (rasterio contexts inside the stack) before styling, then style
            # the temporary file so the renamed output is complete the moment it appears.
            for dataset in self.datasets.values():
                dataset.close()
            try:
                apply_class_styling(self._temps["class"], self.classes, self.nodata, qml=False)
            except BaseException:
                self._stack.__exit__(*sys.exc_info())
                raise
        suppress = self._stack.__exit__(exc_type, exc, tb)
        if exc_type is None:
            write_paletted_qml(os.path.splitext(self.paths["class"])[0] + ".qml", self.classes)
        return suppress
