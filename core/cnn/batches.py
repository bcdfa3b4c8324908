"""Model input and batches of CNN inference: raw band values normalised as the model card says
(offset, scale, clipping, mean and standard deviation, nodata filled), batches run through the
onnxruntime session (softmax applied to logits), and probability rows written."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..errors import ModelError
from ..io.class_writer import ClassificationWriter, valid_pixels
from ..models.format import ModelCard
from .tiling import softmax

if TYPE_CHECKING:
    from .inference import LoadedModel


class Normaliser:
    """Turns raw band values into model input, with the nodata mask (per the metadata)."""

    def __init__(self, meta: ModelCard, raster_nodata):
        """``raster_nodata``: the nodata of the bands read (one value per band, or one value for
        all; None where unset)."""
        def column(values, default):
            return np.array([default if v is None else v for v in values],
                            dtype="float32")[:, None, None]

        self.offset = column(meta.input_offset, 0.0)
        self.scale = column(meta.input_scale, 1.0)
        self.lo = column(meta.clip_min, -np.inf)
        self.hi = column(meta.clip_max, np.inf)
        self.mean = column(meta.input_mean, 0.0)
        self.std = column(meta.input_std, 1.0)
        self.clip = any(v is not None for v in meta.clip_min + meta.clip_max)
        self.fill = np.float32(meta.nodata_fill)
        if not isinstance(raster_nodata, (list, tuple)):
            raster_nodata = [raster_nodata] * meta.band_count
        # Per band: the model's nodata values and the band's own (see valid_pixels).
        self.nodata = [list(meta.nodata_values) + [value] for value in raster_nodata]

    def __call__(self, raw: np.ndarray) -> tuple:
        """Returns ``(model input float32 (C, h, w), nodata mask (h, w))``; works in place."""
        x = raw.astype("float32", copy=False)
        invalid = ~valid_pixels(x, self.nodata)
        x += self.offset
        x *= self.scale
        if self.clip:
            np.clip(x, self.lo, self.hi, out=x)
        x -= self.mean
        x /= self.std
        if invalid.any():
            x[:, invalid] = self.fill
        return x, invalid


def write_rows(writer: ClassificationWriter, row: int, probabilities: np.ndarray,
                invalid: np.ndarray) -> None:
    """Writes raster rows from ``row`` on: class probabilities (K, h, w) and a nodata mask."""
    from rasterio.windows import Window

    height, width = invalid.shape
    writer.write(Window(0, row, width, height), None, ~invalid, probabilities)


class BatchRunner:
    """Runs model input through the session in batches.

    :meth:`stack` cuts the batches (on any thread: the reading thread prepares them while the
    session is idle), calling the runner runs them through onnxruntime and returns the raw class
    scores, and :meth:`probabilities` turns scores into probabilities (softmax of logits).
    """

    def __init__(self, model: LoadedModel, batch_size: int):
        self.model = model
        self.batch_size = batch_size
        self.logits = model.metadata.output_type == "logits"

    def stack(self, tiles: list) -> list:
        """Returns the tiles (C, h, w) as contiguous batches of up to ``batch_size`` tiles."""
        return [np.stack(tiles[start:start + self.batch_size])
                for start in range(0, len(tiles), self.batch_size)]

    def __call__(self, batches: list) -> list:
        """Runs the batches; returns their float32 class scores, one array per batch."""
        results = []
        expected = len(self.model.metadata.classes)
        for batch in batches:
            try:
                out = self.model.session.run([self.model.output_name],
                                             {self.model.input_name: batch})[0]
            except Exception as exc:  # onnxruntime's own error types
                raise ModelError(f"{self.model.label} failed on a batch of shape "
                                 f"{batch.shape}: {exc}") from exc
            if out.shape[0] != batch.shape[0] or out.shape[1] != expected or (
                    out.ndim == 4 and out.shape[2:] != batch.shape[2:]):
                raise ModelError(f"{self.model.label} returned shape {out.shape} for input "
                                 f"{batch.shape}; expected {expected} class scores per "
                                 f"{'pixel' if out.ndim == 4 else 'patch'}.")
            results.append(out.astype("float32", copy=False))
        return results

    def probabilities(self, scores: list) -> list:
        """Returns the class probabilities of each tile of the batches' ``scores``."""
        return [tile for batch in scores for tile in (softmax(batch) if self.logits else batch)]
