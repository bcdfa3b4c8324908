"""Block-wise classification of rasters of any size with a LandFusion ONNX model.

- the model's bands are found in the raster (and their values checked) by
  :func:`~core.models.bands.check_model_bands` BEFORE any block is read;
- :func:`predict_pixels` runs an onnxruntime session on an (N, bands) array
  (:func:`predict_pixels_parallel` on several threads);
- the class raster is written by :class:`~landfusion.core.io.class_writer.ClassificationWriter`.
"""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from ..errors import InputError, ModelError, NoDataError, NoOverlapError
from ..io import raster as raster_io
from ..io.class_writer import ClassificationWriter, valid_pixels
from .extent import raster_part
from ..runtime import (IsCancelled, Log, Progress, log_messages, never_cancelled, no_log,
                       no_progress, thread_count)




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


def _open_mask(mask_path: str, src, stack: contextlib.ExitStack, mask_type: str = "binary",
               log: Log = no_log):
    """Opens a mask on the grid of ``src`` (nearest neighbour if needed) as a :class:`UsableMask`.

    The plugin's mask convention holds (0 = clear, anything else or nodata = not classified); a
    ``landfusion:cloudmask`` output is recognised by its metadata, an SCL layer read by class.
    """
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT

    from ..stack.masks import MASK_TYPES, UsableMask, check_mask_raster

    if mask_type not in MASK_TYPES:
        raise InputError(f"The mask type must be one of {', '.join(MASK_TYPES)}, not '{mask_type}'.")
    mask = stack.enter_context(raster_io.open_raster(mask_path, "Mask raster"))
    _check_mask_overlap(mask, src, mask_path)
    kind = check_mask_raster(mask_path, mask, mask_type, log)
    same_grid = (mask.width, mask.height) == (src.width, src.height) and \
        mask.transform.almost_equals(src.transform) and (mask.crs == src.crs or not mask.crs)
    if same_grid:
        return UsableMask(mask, kind)
    if not mask.crs or not src.crs:
        raise InputError("The mask raster is not on the input's grid and one of them has no CRS; "
                         "use a mask on the same grid.")
    return UsableMask(stack.enter_context(WarpedVRT(
        mask, crs=src.crs, transform=src.transform, width=src.width, height=src.height,
        resampling=Resampling.nearest)), kind)


def _check_mask_overlap(mask, src, mask_path: str) -> None:
    """Raises NoOverlapError when the mask raster does not overlap the input at all."""
    from rasterio.warp import transform_bounds

    bounds = mask.bounds
    if mask.crs and src.crs and mask.crs != src.crs:
        bounds = transform_bounds(mask.crs, src.crs, *bounds)
    left, bottom, right, top = bounds
    own = src.bounds
    if right <= own.left or left >= own.right or top <= own.bottom or bottom >= own.top:
        raise NoOverlapError(
            f"The mask '{os.path.basename(mask_path)}' does not overlap the input raster, so no "
            "pixel could be classified. Use a mask that covers the input (or no mask).")


def check_classification(input_path: str, model_path: str, band_map=None, extent=None,
                         extent_crs=None, mask_path: Optional[str] = None,
                         mask_type: str = "binary") -> tuple:
    """Runs every check of :func:`classify_raster` without classifying: the model (its task, its
    graph), the bands (name, role or band map; units; training ranges), the extent and the mask.

    Returns:
        ``(card, band_check)``.
    """
    from ..models.bands import check_model_bands
    from ..models.pixel_model import open_model

    _, card = open_model(model_path, 1)
    with raster_io.gdal_env(), raster_part(input_path, extent, extent_crs) as part, \
            raster_io.open_raster(part, "Input raster") as src, contextlib.ExitStack() as stack:
        bands = check_model_bands(card, src, band_map=band_map)
        if mask_path:
            _open_mask(mask_path, src, stack, mask_type)
    return card, bands


def classify_raster(
    input_path: str,
    model_path: str,
    output_path: str,
    confidence_path: Optional[str] = None,
    probabilities_path: Optional[str] = None,
    mask_path: Optional[str] = None, mask_type: str = "binary",
    threads: int = 0,
    memory_mb: float = raster_io.DEFAULT_MEMORY_MB,
    band_map=None,
    extent: Optional[Sequence[float]] = None,
    extent_crs=None,
    progress: Progress = no_progress,
    is_cancelled: IsCancelled = never_cancelled,
    log: Log = no_log,
    warn: Log = no_log,
) -> dict:
    """Classifies a raster block by block with a LandFusion ONNX pixel classifier.

    Args:
        input_path: raster with the model's bands (by name, or same count and order).
        model_path: ``.onnx`` model written by :func:`.train.train_classifier`.
        output_path: class raster (GeoTIFF, uint8 or uint16, colour table, category names, .qml).
        confidence_path: optional 2-band float32 raster: max probability and top-1 − top-2 margin.
        probabilities_path: optional float32 raster with one probability band per class.
        mask_path, mask_type: optional mask (0 = classified, non-zero or nodata = left out; a
            cloud-mask output as it is) read as 'binary', 'cloudmask' or 'scl' (by class).
        band_map: ``model_band=raster_band,...`` (text or dict) for bands that neither names nor
            roles match (see :func:`core.sensors.bands.match_model_bands`).
        extent: optional ``(xmin, ymin, xmax, ymax)``: classify only the input pixels covering it
            (output on the input's grid, clipped); ``extent_crs`` is its CRS (default: input's).
        threads: prediction threads (0: all cores); each block's pixels are split among them.
        memory_mb: memory budget of one block.

    Returns:
        Output paths, the number of classified pixels and the pixel count per class.

    Raises:
        ModelError: not a LandFusion model (pickles and corrupt files included).
        BandError: the raster's bands do not match the model's (checked before reading pixels).
        NoDataError: no pixel could be classified (all nodata, or masked out); nothing written.
    """
    from concurrent.futures import ThreadPoolExecutor

    from ..models.info import card_text

    workers = thread_count(threads)
    session, info = _open_classifier(model_path)
    log(card_text(info))
    with raster_io.gdal_env(), contextlib.ExitStack() as stack:
        part = stack.enter_context(raster_part(input_path, extent, extent_crs, log))
        src = stack.enter_context(raster_io.open_raster(part, "Input raster"))
        indexes = _model_bands(info, src, band_map, log, warn)
        _check_pixel_size(info, src, warn)
        run = _Classification(
            src, indexes, tuple(src.nodatavals[i - 1] for i in indexes),
            _open_mask(mask_path, src, stack, mask_type, log) if mask_path else None, session, info,
            stack.enter_context(ThreadPoolExecutor(
                max_workers=workers, thread_name_prefix="landfusion-predict"))
            if workers > 1 else None, workers,
            stack.enter_context(ClassificationWriter(
                src, info.classes, output_path, confidence_path, probabilities_path,
                info.output_nodata)))
        n_classes = len(info.classes)
        bytes_per_pixel = (4 * len(indexes) * 3 + 4 * n_classes * (3 if probabilities_path else 2)
                           + 24)
        blocks = raster_io.plan_blocks(src.width, src.height, bytes_per_pixel, memory_mb)
        log(f"Classifying {src.width} x {src.height} pixels in {len(blocks)} blocks with "
            f"{n_classes} classes, {len(indexes)} bands.")
        run.fast = _fast_kernel(model_path, run, src.width * src.height, log)
        raster_io.run_blocks(blocks, run.read, run.work, progress, is_cancelled)
        run.check_classified(input_path)
    if run.skipped_blocks:
        log(f"{run.skipped_blocks} block(s) held no valid pixel and were not classified.")
    class_pixels = {c.name: int(n) for c, n in zip(info.classes, run.writer.class_counts)}
    log("Pixels per class: " + ", ".join(f"{k}: {v}" for k, v in class_pixels.items()) + ".")
    return {"output": output_path, "confidence": confidence_path,
            "probabilities": probabilities_path, "classified_pixels": run.writer.valid_pixels,
            "class_pixels": class_pixels, "skipped_blocks": run.skipped_blocks}


def _fast_kernel(model_path: str, run: "_Classification", pixels: int, log: Log):
    """A faster form of the model with its classes, when one serves: a compiled LightGBM model or
    a Random Forest walked in groups of trees (None: the whole graph in onnxruntime)."""
    from .compiled import load_compiled
    from .forest_groups import load_grouped_forest

    return load_compiled(model_path, run.info, run.session, run.workers, pixels, log) or \
        load_grouped_forest(model_path, run.info, run.session, run.pool, run.workers, log)


def _open_classifier(model_path: str) -> tuple:
    """``(session, card)`` of a pixel classifier whose outputs match its class list."""
    from ..models.pixel_model import open_model

    session, info = open_model(model_path, 1)
    n_classes = len(info.classes)
    shape = session.get_outputs()[[o.name for o in session.get_outputs()].index(
        info.probability_output)].shape
    if len(shape) == 2 and isinstance(shape[1], int) and shape[1] != n_classes:
        raise ModelError(f"The model lists {n_classes} classes but outputs {shape[1]} "
                         "probabilities; its metadata is damaged.")
    return session, info


def _model_bands(info, src, band_map, log: Log, warn: Log) -> list:
    """The raster's band indexes feeding the model, with the matching's notes and warnings."""
    from ..models.bands import check_model_bands

    bands = check_model_bands(info, src, band_map=band_map)
    log_messages(log, warn, bands.notes, bands.warnings)
    return bands.indexes


def _check_pixel_size(info, src, warn: Log) -> None:
    """Warns when the raster's pixels differ from the training raster's by more than 10 %."""
    actual = raster_io.pixel_size_m(src)
    if info.pixel_size and actual and not math.isclose(actual, info.pixel_size, rel_tol=0.1):
        warn(f"The model was trained on {info.pixel_size:.3g} m pixels, the input has "
             f"{actual:.3g} m pixels; results may be unreliable.")


@dataclass
class _Classification:
    """Reads the model's bands (and the mask) of a block, predicts its valid pixels, writes."""

    src: object
    indexes: list
    nodata: tuple
    mask: object
    session: object
    info: object
    pool: object
    workers: int
    writer: ClassificationWriter
    skipped_blocks: int = 0
    fast: object = None  # a compiled model or a grouped forest, when one serves


    def read(self, block) -> tuple:
        data = self.src.read(indexes=self.indexes, window=block.window, out_dtype="float32")
        usable = self.mask.usable(block.window) if self.mask is not None else None
        return data, valid_pixels(data, self.nodata, usable)

    def work(self, block, item: tuple) -> None:
        data, valid = item
        if not valid.any():
            self.skipped_blocks += 1
            self.writer.write(block.window, None, valid)
            return
        X = data[:, valid].T
        if self.fast is not None:
            labels, probabilities = self.fast.predict(X)
        else:
            labels, probabilities = predict_pixels_parallel(self.session, self.info, X,
                                                            self.pool, self.workers)
        self.writer.write(block.window, labels, valid, probabilities)

    def check_classified(self, input_path: str) -> None:
        """Raises (and the writer leaves nothing) when not one pixel was classified."""
        if self.writer.valid_pixels == 0:
            where = " inside the mask" if self.mask is not None else ""
            raise NoDataError(
                f"The input raster '{os.path.basename(input_path)}' has no valid pixel{where} in "
                f"the bands the model uses (all nodata, NaN or masked out); nothing was "
                "classified and no output was written. Check the input's nodata value, the "
                "mask (pixels where it is not 0, or nodata, are skipped) and the extent.")
