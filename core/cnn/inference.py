"""Seamless tiled CNN inference with ONNX models over rasters of any size.

A LandFusion CNN (see :mod:`core.models.format`) is run over a raster in strips of overlapping
tiles:

- The raster is mirrored by half the overlap around its edges, so edge pixels get context and are
  never on a tile border; rasters smaller than a tile are mirrored up to a tile.
- Overlapping tile predictions are blended with weights that fall off linearly towards the tile
  borders (after a short margin where they are zero, where a network's own zero padding spoils
  its output); borders on the raster edge keep full weight. Every pixel is covered by at least
  one tile with a positive weight, so the result has no seams.
- Only one strip of tiles is held in memory (the input strip plus the class-score accumulators of
  one tile height), so memory grows with the raster width and the tile size, never its height.
- Pixels where any band the model uses is nodata (the band's nodata value, NaN/inf or a value the
  model lists) are filled with the model's ``nodata_fill`` before inference and masked in every
  output; tiles without any valid pixel are not run at all.
- Patch classifiers are slid over the raster with a stride: each output cell of ``stride`` x
  ``stride`` input pixels gets the class of the patch centred on it, so the class raster and the
  probabilities are written at the stride's resolution, on a grid aligned to the input's.
- Outputs are written by the shared :class:`~landfusion.core.io.class_writer.ClassificationWriter`,
  so both engines produce the same class raster, confidence/margin raster and probability stack.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..io import raster as raster_io
from ..classification.extent import raster_part
from ..errors import InputError, ModelError, NoDataError
from ..io.class_writer import ClassificationWriter, class_fractions
from ..models.bands import check_model_bands
from ..models.format import PATCH_CLASSIFIER, SEGMENTATION, ModelCard, require_task
from ..models.reading import card_from_props, read_props, refuse_non_onnx
from ..runtime import (IsCancelled, Log, Progress, log_messages, never_cancelled, no_log,
                       no_progress)

from ..paths import MODELS_DIR
from .batches import BatchRunner, Normaliser, write_rows
from .tiling import StripBlender, mirror_margins


def bundled_models() -> dict:
    """Returns ``{model id: path}`` for the ONNX models shipped in resources/models."""
    if not os.path.isdir(MODELS_DIR):
        return {}
    return {os.path.splitext(name)[0]: os.path.join(MODELS_DIR, name)
            for name in sorted(os.listdir(MODELS_DIR)) if name.endswith(".onnx")}


@dataclass
class LoadedModel:
    """An onnxruntime session with the model's LandFusion description."""

    path: str
    metadata: ModelCard
    session: object
    input_name: str
    output_name: str
    fixed_size: Optional[int]

    @property
    def label(self) -> str:
        """How to call the model in messages."""
        return f"Model '{self.metadata.name or os.path.basename(self.path)}'"


def _static(dim) -> Optional[int]:
    return dim if isinstance(dim, int) and dim > 0 else None


def load_model(path: str, metadata: Optional[ModelCard] = None, threads: int = 0) -> LoadedModel:
    """Opens an ONNX model and checks that its graph fits its LandFusion metadata.

    Args:
        path: the ONNX file.
        metadata: a description to use instead of the file's own metadata (for models that
            describe themselves elsewhere, such as the optional cloud-mask models).
        threads: onnxruntime intra-op threads (0: onnxruntime decides).

    Raises:
        ModelError: the file is missing, not a model, not a LandFusion model, or its input and
            output shapes do not fit the metadata.
    """
    import onnxruntime as ort

    what = f"Model '{os.path.basename(path or '')}'"
    if metadata is None:
        metadata = card_from_props(read_props(path), what=f"'{os.path.basename(path)}'")
        metadata.path = path
    else:
        refuse_non_onnx(path)
    require_task(metadata, (SEGMENTATION, PATCH_CLASSIFIER), "CNN classify")
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(0, int(threads))
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    # Idle worker threads would otherwise spin between runs, taking the CPU from the reading
    # and blending done between them.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        session = ort.InferenceSession(path, sess_options=options,
                                       providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ModelError(f"{what} cannot be loaded by onnxruntime: {exc}") from exc
    inputs = {i.name: i for i in session.get_inputs()}
    outputs = {o.name: o for o in session.get_outputs()}
    input_name = metadata.input_name or session.get_inputs()[0].name
    output_name = metadata.output_name or session.get_outputs()[0].name
    if input_name not in inputs or output_name not in outputs:
        raise ModelError(f"{what}: the metadata names input '{input_name}' / output "
                         f"'{output_name}', but the graph has inputs {list(inputs)} and outputs "
                         f"{list(outputs)}.")
    shape = inputs[input_name].shape
    if len(shape) != 4:
        raise ModelError(
            f"{what} takes an input of rank {len(shape)} (shape {shape}); LandFusion CNNs take "
            "rank 4: (batch, bands, height, width). Export the model with a batch axis and "
            "channels first.")
    if "float" not in inputs[input_name].type:
        raise ModelError(f"{what} takes {inputs[input_name].type} input; LandFusion feeds "
                         "float32 (tensor(float)).")
    channels = _static(shape[1])
    if channels is not None and channels != metadata.band_count:
        raise ModelError(f"{what} takes {channels} input channels but its metadata lists "
                         f"{metadata.band_count} bands ({', '.join(metadata.bands)}).")
    out_shape = outputs[output_name].shape
    want_rank = 4 if metadata.task == SEGMENTATION else 2
    if len(out_shape) != want_rank:
        raise ModelError(
            f"{what}: task '{metadata.task}' needs an output of rank {want_rank} "
            f"({'(batch, classes, height, width)' if want_rank == 4 else '(batch, classes)'}), "
            f"the graph's output has shape {out_shape}.")
    out_classes = _static(out_shape[1])
    if out_classes is not None and out_classes != metadata.class_count:
        raise ModelError(f"{what} outputs {out_classes} class scores but its metadata lists "
                         f"{metadata.class_count} classes.")
    height, width = _static(shape[2]), _static(shape[3])
    if height is not None and width is not None and height != width:
        raise ModelError(f"{what} takes {height}x{width} tiles; only square tiles are supported.")
    fixed = height or width
    if metadata.task == PATCH_CLASSIFIER and fixed is None and metadata.patch_size is None:
        raise ModelError(f"{what}: a patch classifier with a dynamic input size needs the "
                         "metadata key 'patch_size'.")
    return LoadedModel(path, metadata, session, input_name, output_name, fixed)


@dataclass
class CnnPlan:
    """Everything decided before any pixel is read."""

    model: LoadedModel
    band_indexes: list
    tile: int
    overlap: int
    batch_size: int
    warnings: list
    notes: list
    stride: int = 0


def plan_cnn(dataset, model: LoadedModel, band_names=None, tile_size: Optional[int] = None,
             overlap: Optional[int] = None, batch_size: int = 4, band_map=None,
             stride: Optional[int] = None) -> CnnPlan:
    """Checks the raster against the model (bands, units, value ranges, size, pixel size) and
    fixes tile and overlap (segmentation) or patch and stride (patch classifiers).

    Raises:
        BandError: when the raster lacks bands the model needs or their values do not fit.
        InputError: when the tile size, overlap or stride cannot be used.
    """
    meta = model.metadata
    bands = check_model_bands(meta, dataset, band_names, band_map)
    warnings = list(bands.warnings)
    step = 0
    if meta.task == SEGMENTATION:
        tile = int(tile_size) if tile_size else (model.fixed_size or meta.tile_size)
        if model.fixed_size and tile != model.fixed_size:
            raise InputError(f"{model.label} only takes {model.fixed_size}x{model.fixed_size} "
                             f"tiles; set the tile size to {model.fixed_size} (or leave it empty).")
        if tile % meta.size_divisor:
            raise InputError(f"Tile size {tile} does not suit {model.label}: it must be a multiple "
                             f"of {meta.size_divisor}.")
        if tile < 8:
            raise InputError(f"Tile size {tile} is too small; use at least 8 pixels (the model's "
                             f"default is {meta.tile_size}).")
        lap = meta.default_overlap(tile) if overlap is None else int(overlap)
        if not 0 <= lap <= tile // 2:
            raise InputError(f"Overlap {lap} must be between 0 and half the tile size "
                             f"({tile // 2}).")
    else:
        tile = model.fixed_size or meta.patch_size
        if meta.patch_size and model.fixed_size and meta.patch_size != model.fixed_size:
            raise ModelError(f"{model.label}: patch_size {meta.patch_size} in its card differs "
                             f"from the graph's input size {model.fixed_size}.")
        lap = 0
        step = int(stride) if stride else (meta.patch_stride or max(1, tile // 4))
        if not 1 <= step <= tile:
            raise InputError(f"Stride {step} must be between 1 and the patch size ({tile} px) of "
                             f"{model.label}; the class raster gets one cell per stride x stride "
                             "input pixels.")
    if batch_size < 1:
        raise InputError(f"Batch size must be at least 1, got {batch_size}.")
    if dataset.width < tile or dataset.height < tile:
        warnings.append(
            f"The raster ({dataset.width}x{dataset.height} px) is smaller than one "
            f"{tile}x{tile} {'tile' if meta.task == SEGMENTATION else 'patch'}; it is mirrored at "
            "its edges to fill it, so results near its edges are less reliable.")
    expected = meta.pixel_size
    actual = raster_io.pixel_size_m(dataset)
    if expected and actual and not 1 / 1.5 <= actual / expected <= 1.5:
        warnings.append(f"{model.label} expects {expected:g} m pixels; the raster has about "
                        f"{actual:.3g} m pixels. Resample the input for reliable results.")
    return CnnPlan(model, bands.indexes, tile, lap, int(batch_size), warnings, bands.notes, step)


def _read_strip(dataset, indexes, row0: int, height: int, col_pad: int, width: int,
                normalise: Normaliser) -> tuple:
    """Reads virtual rows [row0, row0 + height) mirrored beyond the raster, with column padding.

    The raster's part is read straight into the strip (converted to float32 as numpy would) and
    normalised there; only the margins are mirrored.

    Returns ``(model input (C, height, col_pad + W + extra), nodata mask of raster rows,
    first raster row)``.
    """
    from rasterio.windows import Window

    top, bottom = max(0, row0), min(dataset.height, row0 + height)
    window = Window(0, top, dataset.width, bottom - top)
    strip = np.empty((len(indexes), height, width), dtype="float32")
    rows, cols = slice(top - row0, bottom - row0), slice(col_pad, col_pad + dataset.width)
    if all(dataset.dtypes[i - 1] == "float32" for i in indexes):
        dataset.read(indexes, window=window, out=strip[:, rows, cols])
    else:
        strip[:, rows, cols] = dataset.read(indexes, window=window)
    _, invalid = normalise(strip[:, rows, cols])
    mirror_margins(strip, rows, cols)
    return strip, invalid, top


class _Segmentation:
    """The three steps of seamless tiled inference, walked strip by strip by
    :func:`~landfusion.core.io.raster.run_blocks`: :meth:`read` (reading thread) reads and
    normalises a strip and cuts its batches, :meth:`work` runs them through onnxruntime alone on
    the cores, :meth:`write` (writing thread) blends the tiles and writes the finished rows while
    the next strip is read."""

    def __init__(self, dataset, plan: CnnPlan, normalise: Normaliser,
                 writer: ClassificationWriter):
        self.dataset, self.plan, self.normalise, self.writer = dataset, plan, normalise, writer
        self.blender = StripBlender(plan.model.metadata.class_count, plan.tile, plan.overlap,
                                    dataset.height, dataset.width)
        self.run = BatchRunner(plan.model, plan.batch_size)
        self.blocks = [raster_io.Block(r, plan.tile, self.blender.acc.shape[2])
                       for r in self.blender.rows]
        self.strips = {r: i for i, r in enumerate(self.blender.rows)}

    def read(self, block) -> tuple:
        """Returns ``(strip index, batches, their tiles' column indexes, nodata mask, first raster
        row of the mask)``; tiles whose raster part is all nodata are left out."""
        width, tile, pad = self.dataset.width, self.plan.tile, self.blender.pad
        x, invalid, top = _read_strip(self.dataset, self.plan.band_indexes, block.row_off, tile,
                                      pad, block.width, self.normalise)
        chosen = [j for j, c in enumerate(self.blender.cols)
                  if min(width, c + tile) > max(0, c) and invalid.size
                  and not invalid[:, max(0, c):min(width, c + tile)].all()]
        tiles = [x[:, :, self.blender.cols[j] + pad:self.blender.cols[j] + pad + tile]
                 for j in chosen]
        return self.strips[block.row_off], self.run.stack(tiles), chosen, invalid, top

    def work(self, block, data) -> tuple:
        """Runs the strip's batches; returns its data with the batches' class scores."""
        strip, batches, chosen, invalid, top = data
        return strip, self.run(batches), chosen, invalid, top

    def write(self, block, result) -> None:
        """Blends the strip's tiles and writes the rows no later strip covers."""
        strip, scores, chosen, invalid, top = result
        for j, probabilities in zip(chosen, self.run.probabilities(scores)):
            self.blender.add(strip, j, probabilities)
        row, probabilities, uncovered = self.blender.take(strip)
        if probabilities.shape[1]:
            rows = slice(row - top, row - top + probabilities.shape[1])
            write_rows(self.writer, row, probabilities, invalid[rows] | uncovered)


def _segment(dataset, plan: CnnPlan, normalise: Normaliser, writer: ClassificationWriter,
             progress: Progress, is_cancelled: IsCancelled) -> None:
    steps = _Segmentation(dataset, plan, normalise, writer)
    raster_io.run_blocks(steps.blocks, steps.read, steps.work, progress, is_cancelled,
                         write=steps.write, work_alone=True)


@dataclass
class PatchGrid:
    """The output grid of a patch classifier: one cell per ``stride`` x ``stride`` input pixels,
    with the input's origin and CRS (the last row/column of cells may be partly outside)."""

    width: int
    height: int
    crs: object
    transform: object
    stride: int


def patch_grid(dataset, stride: int) -> PatchGrid:
    """Returns the output grid of a patch classification of ``dataset`` with ``stride``."""
    from rasterio.transform import Affine

    return PatchGrid(-(-dataset.width // stride), -(-dataset.height // stride), dataset.crs,
                     dataset.transform * Affine.scale(stride), stride)


def _classify_patches(dataset, plan: CnnPlan, normalise: Normaliser, writer: ClassificationWriter,
                      progress: Progress, is_cancelled: IsCancelled) -> None:
    """Slides the patch over the raster: output cell (r, c) covers input rows r*s..(r+1)*s-1 and
    columns c*s..(c+1)*s-1 and gets the scores of the patch centred on it (mirrored beyond the
    raster's edges). Cells without any valid input pixel are nodata and not run."""
    from rasterio.windows import Window

    meta = plan.model.metadata
    patch, stride = plan.tile, plan.stride
    grid = patch_grid(dataset, stride)
    before = patch // 2 - stride // 2  # input pixels of the patch before its cell's first pixel
    col_pad = max(0, before)
    virtual_width = col_pad + grid.width * stride + patch
    run = BatchRunner(plan.model, plan.batch_size)
    blocks = [raster_io.Block(r * stride - before, patch, virtual_width)
              for r in range(grid.height)]

    def read(block):
        return _read_strip(dataset, plan.band_indexes, block.row_off, patch, col_pad,
                           virtual_width, normalise)

    def work(block, data):
        x, invalid, top = data
        row = (block.row_off + before) // stride
        r0, r1 = row * stride, min(dataset.height, (row + 1) * stride)
        cell_rows = invalid[r0 - top:r1 - top]
        valid = np.zeros((1, grid.width), dtype=bool)
        chosen, patches = [], []
        for c in range(grid.width):
            c0, c1 = c * stride, min(dataset.width, (c + 1) * stride)
            if not cell_rows[:, c0:c1].all():
                left = c0 - before + col_pad
                chosen.append(c)
                patches.append(x[:, :, left:left + patch])
        probs = np.zeros((meta.class_count, 1, grid.width), dtype="float32")
        for c, p in zip(chosen, run.probabilities(run(run.stack(patches)))):
            probs[:, 0, c] = p
            valid[0, c] = True
        writer.write(Window(0, row, grid.width, 1), None, valid, probs)

    raster_io.run_blocks(blocks, read, work, progress, is_cancelled)


def check_cnn_inputs(input_path: str, model_path: str, band_names=None,
                     tile_size: Optional[int] = None, overlap: Optional[int] = None,
                     batch_size: int = 4, metadata: Optional[ModelCard] = None, band_map=None,
                     stride: Optional[int] = None, extent=None, extent_crs=None) -> CnnPlan:
    """Runs every check of :func:`classify_with_cnn` without classifying (a few small windows
    are sampled for the units and value-range checks)."""
    model = load_model(model_path, metadata)
    with raster_io.gdal_env(), raster_part(input_path, extent, extent_crs) as part, \
            raster_io.open_raster(part, "Input raster") as dataset:
        return _plan_within_memory(dataset, model, band_names, tile_size, overlap,
                                     batch_size, band_map, stride)


def _plan_within_memory(dataset, model: LoadedModel, *plan_args) -> CnnPlan:
    """:func:`plan_cnn` followed by :func:`check_plan_memory`."""
    plan = plan_cnn(dataset, model, *plan_args)
    check_plan_memory(dataset, plan)
    return plan


def check_plan_memory(dataset, plan: CnnPlan) -> None:
    """Refuses a tile size or batch whose buffers cannot fit in the available memory."""
    from ..io.preflight import check_tile_memory, first_layer_channels

    if plan.model.metadata.task != SEGMENTATION:
        return
    check_tile_memory(dataset.width, plan.tile, plan.overlap, plan.batch_size,
                      len(plan.band_indexes), len(plan.model.metadata.classes),
                      first_layer_channels(plan.model.path))


def classify_with_cnn(
    input_path: str,
    model_path: str,
    output_path: str,
    probabilities_path: Optional[str] = None,
    confidence_path: Optional[str] = None,
    band_names=None,
    tile_size: Optional[int] = None,
    overlap: Optional[int] = None,
    batch_size: int = 4,
    threads: int = 0,
    metadata: Optional[ModelCard] = None,
    band_map=None,
    stride: Optional[int] = None,
    extent=None,
    extent_crs=None,
    progress: Progress = no_progress,
    is_cancelled: IsCancelled = never_cancelled,
    log: Log = no_log,
    warn: Log = no_log,
) -> dict:
    """Classifies a raster with a LandFusion ONNX CNN: segmentation in seamless tiles, or patch
    classification with a sliding window.

    Args:
        input_path: the raster (typically a co-registered S1/S2 stack).
        model_path: the ONNX model (a LandFusion segmentation or patch classifier).
        output_path: class raster (colour table, category names and a .qml beside it); for a
            patch classifier at the stride's resolution, aligned to the input's grid.
        probabilities_path: optional float32 stack, one band per class, named after it.
        confidence_path: optional 2-band float32 raster: ``confidence`` (the winning class's
            probability) and ``margin`` (top-1 minus top-2 probability).
        band_names: names of the raster's bands (comma-separated or a list), when its band
            descriptions do not name them.
        tile_size, overlap: segmentation tiling in pixels (defaults from the model).
        batch_size: tiles (or patches) per onnxruntime call.
        threads: onnxruntime threads (0: all cores).
        metadata: a card to use instead of the model's own.
        band_map: ``model_band=raster_band,...`` for bands neither names nor roles match.
        stride: patch classifiers: output cell size in input pixels (default: the model's
            patch_stride, else a quarter of the patch).
        extent: optional ``(xmin, ymin, xmax, ymax)`` to classify only that part (on the input's
            grid); ``extent_crs`` its CRS (default: the input's).

    Returns:
        ``{"classes": [...], "valid_pixels": int, "class_fractions": {name: fraction},
        "class_pixels": {name: count}, "tile_size": int, "overlap": int, "stride": int,
        "nodata": int}``.

    Raises:
        ModelError, BandError, InputError, NoDataError, CancelledError, OutputError.
    """
    model = load_model(model_path, metadata, threads)
    meta = model.metadata
    _check_outputs(input_path, [output_path, probabilities_path, confidence_path])
    with raster_io.gdal_env(), raster_part(input_path, extent, extent_crs, log) as part, \
            raster_io.open_raster(part, "Input raster") as dataset:
        plan = _plan_within_memory(dataset, model, band_names, tile_size, overlap,
                                     batch_size, band_map, stride)
        _log_plan(model, plan, log, warn)
        normalise = Normaliser(meta, [dataset.nodatavals[i - 1] for i in plan.band_indexes])
        reference = dataset if meta.task == SEGMENTATION else patch_grid(dataset, plan.stride)
        with ClassificationWriter(reference, meta.classes, output_path, confidence_path,
                                  probabilities_path) as writer:
            if meta.task == SEGMENTATION:
                _segment(dataset, plan, normalise, writer, progress, is_cancelled)
            else:
                _classify_patches(dataset, plan, normalise, writer, progress, is_cancelled)
            if writer.valid_pixels == 0:
                raise NoDataError(
                    f"The input raster '{os.path.basename(input_path)}' has no valid pixel in the "
                    f"bands {', '.join(meta.bands)} (all nodata); nothing was classified and no "
                    "output was written. Check the input's nodata value and extent.")
    fractions = class_fractions(meta.classes, writer.class_counts)
    log("Class fractions: " + ", ".join(f"{k} {100 * v:.1f} %" for k, v in fractions.items()))
    return {"classes": meta.classes, "valid_pixels": writer.valid_pixels,
            "class_fractions": fractions,
            "class_pixels": {c.name: int(n) for c, n in zip(meta.classes, writer.class_counts)},
            "tile_size": plan.tile, "overlap": plan.overlap, "stride": plan.stride,
            "nodata": writer.nodata}


def _check_outputs(input_path: str, paths) -> None:
    """Refuses outputs that are the same file, or the input."""
    outputs = [p for p in paths if p]
    if len({os.path.abspath(p) for p in outputs}) != len(outputs):
        raise InputError("The class, probability and confidence outputs must be different files.")
    if os.path.abspath(input_path) in {os.path.abspath(p) for p in outputs}:
        raise InputError("An output would overwrite the input raster; choose another file name.")


def _log_plan(model: LoadedModel, plan: CnnPlan, log: Log, warn: Log) -> None:
    """Says how the model reads the raster: bands, tiles or patches, batch size."""
    meta = model.metadata
    log_messages(log, warn, plan.notes, plan.warnings)
    log(f"{model.label}: {meta.task}, bands {', '.join(meta.bands)} read from raster band(s) "
        f"{', '.join(map(str, plan.band_indexes))}; "
        + (f"tiles {plan.tile} px, overlap {plan.overlap} px, " if meta.task == SEGMENTATION
           else f"patches {plan.tile} px, stride {plan.stride} px (output cells of "
                f"{plan.stride} x {plan.stride} input pixels), ")
        + f"batch {plan.batch_size}.")
