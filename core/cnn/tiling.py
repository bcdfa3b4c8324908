"""Tiling geometry of seamless CNN inference: tile origins over a mirrored raster, blending
weights that fall off towards inner tile borders, and the softmax of class scores."""

from __future__ import annotations

import numpy as np


def tile_origins(length: int, tile: int, overlap: int) -> tuple:
    """Tile origins along one axis, in raster coordinates (the first one may be negative).

    The raster is extended by ``overlap // 2`` mirrored pixels on both sides (and further at the
    far side when it is smaller than a tile); tiles step by ``tile - overlap``, the last one is
    aligned on the far edge of the extended raster.

    Returns:
        ``(origins, pad)`` with ``pad`` the mirrored margin before pixel 0.
    """
    pad = overlap // 2
    extent = max(length + 2 * pad, tile)
    last = extent - tile - pad
    step = max(1, tile - overlap)
    origins = list(range(-pad, last, step)) + [last]
    return origins, pad


def edge_weights(tile: int, overlap: int, first: bool, last: bool) -> np.ndarray:
    """Blending weights along one tile axis.

    Zero for a margin of ``overlap // 4`` pixels at each inner border, then rising linearly to 1
    over the rest of the overlap; borders on the raster's edge (``first``/``last``) keep weight 1.
    """
    weights = np.ones(tile, dtype="float32")
    if overlap <= 0:
        return weights
    margin = overlap // 4
    ramp_len = max(1, overlap - 2 * margin)
    ramp = np.clip((np.arange(tile, dtype="float32") - margin + 1) / (ramp_len + 1), 0.0, 1.0)
    if not first:
        weights = np.minimum(weights, ramp)
    if not last:
        weights = np.minimum(weights, ramp[::-1])
    return weights


def mirror(array: np.ndarray, before: int, after: int, axis: int) -> np.ndarray:
    """Pads ``array`` along ``axis`` with its mirror image (edge values for one pixel)."""
    if before <= 0 and after <= 0:
        return array
    widths = [(0, 0)] * array.ndim
    widths[axis] = (max(0, before), max(0, after))
    mode = "reflect" if array.shape[axis] > 1 else "edge"
    return np.pad(array, widths, mode=mode)


def softmax(scores: np.ndarray, axis: int = 1) -> np.ndarray:
    """Numerically stable softmax."""
    shifted = scores - scores.max(axis=axis, keepdims=True)
    np.exp(shifted, out=shifted)
    shifted /= shifted.sum(axis=axis, keepdims=True)
    return shifted
