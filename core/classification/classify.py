"""Block-wise classification of rasters of any size with a LandFusion ONNX model.

The pieces are public so that other predictors (for example patch-based CNNs) reuse them:

- :func:`check_model_bands` matches the model's bands to the raster's by name (or count) BEFORE
  any pixel is read;
- :func:`valid_pixels` decides which pixels can be classified (nodata, NaN/inf, mask);
- :class:`ClassificationWriter` writes the class raster (uint8/uint16 with colour table, category
  names and a ``.qml`` beside it), the confidence/margin raster and the probability stack, block by
  block, atomically: on any failure or cancel no output is left behind. It takes either class
  labels with the valid pixels' probabilities (pixel classifiers) or a full (classes, rows, cols)
  probability array (CNNs), and counts the pixels per class;
- :func:`predict_pixels` runs an onnxruntime session on an (N, bands) array
  (:func:`predict_pixels_parallel` on several threads).
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from typing import Optional, Sequence

import numpy as np

from ..io import raster as raster_io
from ..sensors.bands import match_bands
from ..io.classmap import ClassInfo, apply_class_styling, class_profile, write_paletted_qml
from ..errors import BandError, InputError, ModelError
from ..runtime import IsCancelled, Log, Progress, never_cancelled, no_log, no_progress

#: Nodata of the float outputs (confidence, margin, probabilities).
FLOAT_NODATA = raster_io.FLOAT_NODATA


def check_model_bands(model_band_names: Sequence[str], dataset, what: str = "The model",
                      band_names: Optional[Sequence[str]] = None) -> list:
    """Returns the raster's 1-based band indexes feeding the model, in the model's band order.

    Bands are matched by name when both the model and the raster name them (the raster may have
    extra bands), else by count and order.

    Args:
        band_names: the raster's band names to use instead of its band descriptions (for
            example names the user typed in); '' where unnamed.

    Raises:
        BandError: listing both band lists when they do not match.
    """
    available = (raster_io.band_descriptions(dataset) if band_names is None
                 else [n or "" for n in band_names])
    required = [b or "" for b in model_band_names]
    if not all(required):
        if len(available) != len(required):
            shown = ", ".join(b or f"(band {i + 1})" for i, b in enumerate(required))
            raster_shown = ", ".join(a or f"(band {i + 1} unnamed)"
                                     for i, a in enumerate(available))
            raise BandError(
                f"{what} needs {len(required)} bands ({shown}) but the raster has {len(available)} "
                f"({raster_shown}). Use a raster with the same bands, in the same order, as the "
                "training raster.")
        return list(range(1, len(required) + 1))
    return match_bands(available, required, what)


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


def predict_pixels(session, info, X: np.ndarray) -> tuple:
    """Runs the model on (N, bands) float32 pixels; returns (labels, probabilities).

    Probabilities are capped at 1: a forest's average summed tree by tree in float32 can end a
    few ulps above 1 (for example 1.0000004 for 30 trees that all agree)."""
    labels, probabilities = session.run([info.label_output, info.probability_output],
                                        {info.input_name: np.ascontiguousarray(X, np.float32)})
    probabilities = np.require(probabilities, np.float32, ["W"])
    np.minimum(probabilities, np.float32(1), out=probabilities)
    return np.asarray(labels).reshape(-1), probabilities


#: Fewest pixels worth a prediction thread of their own.
MIN_PIXELS_PER_THREAD = 20000


def predict_pixels_parallel(session, info, X: np.ndarray, pool=None, workers: int = 1) -> tuple:
    """:func:`predict_pixels` with the pixels split into ``workers`` chunks run concurrently on
    ``pool`` (a ThreadPoolExecutor; onnxruntime releases the GIL and a session may run from
    several threads at once). Use a session with one intra-op thread: whole chunks per thread
    scale better than onnxruntime's own row batches over tree ensembles on shared cores."""
    parts = min(workers, X.shape[0] // MIN_PIXELS_PER_THREAD)
    if pool is None or parts < 2:
        return predict_pixels(session, info, X)
    X = np.ascontiguousarray(X, np.float32)
    results = list(pool.map(lambda chunk: predict_pixels(session, info, chunk),
                            np.array_split(X, parts)))
    return (np.concatenate([r[0] for r in results]), np.concatenate([r[1] for r in results]))


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

        with ClassificationWriter(src, classes, class_path, confidence_path, probability_path,
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
                 confidence_path: Optional[str] = None, probability_path: Optional[str] = None,
                 nodata: Optional[int] = None, compress: str = "ZSTD"):
        self.reference = reference
        self.classes = list(classes)
        self.paths = {"class": class_path, "confidence": confidence_path,
                      "probabilities": probability_path}
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
                raster_io.check_writable(path, f"{key.capitalize()} output")
        self._stack = contextlib.ExitStack()
        self._stack.__enter__()
        try:
            temp = self._stack.enter_context(raster_io.atomic_output(self.paths["class"],
                                                                     "Class raster"))
            self._temps["class"] = temp
            self.datasets["class"] = self._stack.enter_context(
                rasterio.open(temp, "w", **self.profile))
            self.datasets["class"].set_band_description(1, "class")
            if self.paths["confidence"]:
                temp = self._stack.enter_context(raster_io.atomic_output(
                    self.paths["confidence"], "Confidence raster"))
                dataset = self._stack.enter_context(rasterio.open(
                    temp, "w", **raster_io.float_profile(self.reference, 2, FLOAT_NODATA,
                                                         self.compress)))
                dataset.set_band_description(1, "confidence")
                dataset.set_band_description(2, "margin")
                self.datasets["confidence"] = dataset
            if self.paths["probabilities"]:
                temp = self._stack.enter_context(raster_io.atomic_output(
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


def _open_mask(mask_path: str, src, stack: contextlib.ExitStack):
    """Opens a mask raster on the grid of ``src`` (warped with nearest neighbour if needed)."""
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT

    mask = stack.enter_context(raster_io.open_raster(mask_path, "Mask raster"))
    same_grid = (mask.width, mask.height) == (src.width, src.height) and \
        mask.transform.almost_equals(src.transform) and (mask.crs == src.crs or not mask.crs)
    if same_grid:
        return mask
    if not mask.crs or not src.crs:
        raise InputError("The mask raster is not on the input's grid and one of them has no CRS; "
                         "use a mask on the same grid.")
    return stack.enter_context(WarpedVRT(mask, crs=src.crs, transform=src.transform,
                                         width=src.width, height=src.height,
                                         resampling=Resampling.nearest))


def check_classification(input_path: str, model_path: str) -> tuple:
    """Opens the model and the raster and checks the bands, without reading pixels.

    Returns:
        ``(info, band_indexes)``.
    """
    from ..models.pixel_model import read_model_info

    info = read_model_info(model_path)
    with raster_io.gdal_env(), raster_io.open_raster(input_path, "Input raster") as src:
        indexes = check_model_bands(info.band_names, src)
    return info, indexes


def classify_raster(
    input_path: str,
    model_path: str,
    output_path: str,
    confidence_path: Optional[str] = None,
    probability_path: Optional[str] = None,
    mask_path: Optional[str] = None,
    threads: int = 0,
    memory_mb: float = raster_io.DEFAULT_MEMORY_MB,
    progress: Progress = no_progress,
    is_cancelled: IsCancelled = never_cancelled,
    log: Log = no_log,
    warn: Log = no_log,
) -> dict:
    """Classifies a raster block by block with a LandFusion ONNX pixel classifier.

    Args:
        input_path: raster with the model's bands (by name, or same count and order).
        model_path: ``.onnx`` model written by :func:`train_classifier.train_classifier`.
        output_path: class raster (GeoTIFF, uint8 or uint16, colour table, category names, .qml).
        confidence_path: optional 2-band float32 raster: max probability and top-1 − top-2 margin.
        probability_path: optional float32 raster with one probability band per class.
        mask_path: optional raster; pixels where it is 0 or nodata are not classified.
        threads: prediction threads (0: all cores); each block's pixels are split among them.
        memory_mb: memory budget of one block.

    Returns:
        Output paths, the number of classified pixels and the pixel count per class.

    Raises:
        ModelError: not a LandFusion model (pickles and corrupt files included).
        BandError: the raster's bands do not match the model's (checked before reading pixels).
    """
    from concurrent.futures import ThreadPoolExecutor

    from ..models.pixel_model import open_model

    workers = int(threads) if threads and threads > 0 else (os.cpu_count() or 1)
    session, info = open_model(model_path, 1)
    n_classes = len(info.classes)
    shape = session.get_outputs()[[o.name for o in session.get_outputs()].index(
        info.probability_output)].shape
    if len(shape) == 2 and isinstance(shape[1], int) and shape[1] != n_classes:
        raise ModelError(f"The model lists {n_classes} classes but outputs {shape[1]} "
                         "probabilities; its metadata is damaged.")

    with raster_io.gdal_env(), contextlib.ExitStack() as stack:
        src = stack.enter_context(raster_io.open_raster(input_path, "Input raster"))
        indexes = check_model_bands(info.band_names, src)
        pool = stack.enter_context(ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="landfusion-predict")) if workers > 1 else None
        pixel_size = info.json("pixel_size")
        if pixel_size and not math.isclose(abs(src.transform.a), pixel_size[0], rel_tol=0.05):
            warn(f"The model was trained on {pixel_size[0]:g}-unit pixels, the input has "
                 f"{abs(src.transform.a):g}-unit pixels; results may be unreliable.")
        mask = _open_mask(mask_path, src, stack) if mask_path else None
        nodata = [src.nodatavals[i - 1] for i in indexes]
        bands = len(indexes)
        bytes_per_pixel = 4 * bands * 3 + 4 * n_classes * (3 if probability_path else 2) + 24
        blocks = raster_io.plan_blocks(src.width, src.height, bytes_per_pixel, memory_mb)
        log(f"Classifying {src.width} x {src.height} pixels in {len(blocks)} blocks with "
            f"{len(info.classes)} classes, {bands} bands.")
        stats = {"skipped_blocks": 0}

        def read(block):
            data = src.read(indexes=indexes, window=block.window, out_dtype="float32")
            block_mask = None
            if mask is not None:
                m = mask.read(1, window=block.window, masked=True)
                block_mask = np.asarray(m.filled(0) != 0)
            return data, valid_pixels(data, nodata, block_mask)

        writer = stack.enter_context(ClassificationWriter(
            src, info.classes, output_path, confidence_path, probability_path,
            info.output_nodata))

        def work(block, item):
            data, valid = item
            if not valid.any():
                stats["skipped_blocks"] += 1
                writer.write(block.window, None, valid)
                return
            X = data[:, valid].T
            labels, probabilities = predict_pixels_parallel(session, info, X, pool, workers)
            writer.write(block.window, labels, valid, probabilities)

        raster_io.run_blocks(blocks, read, work, progress, is_cancelled)
    if stats["skipped_blocks"]:
        log(f"{stats['skipped_blocks']} block(s) held no valid pixel and were not classified.")
    class_pixels = {c.name: int(n) for c, n in zip(info.classes, writer.class_counts)}
    log("Pixels per class: " + ", ".join(f"{k}: {v}" for k, v in class_pixels.items()) + ".")
    return {"output": output_path, "confidence": confidence_path,
            "probabilities": probability_path, "classified_pixels": writer.valid_pixels,
            "class_pixels": class_pixels, "skipped_blocks": stats["skipped_blocks"]}
