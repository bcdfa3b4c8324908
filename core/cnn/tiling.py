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


def mirror_margins(buffer: np.ndarray, rows: slice, cols: slice) -> None:
    """Fills the margins of a (C, h, w) ``buffer`` around its part ``[:, rows, cols]`` with the
    part's mirror image, in place: the same values as :func:`mirror` of the part along the rows,
    then along the columns, without copying the part."""
    inner = buffer[:, rows, cols]
    top, bottom = rows.start, buffer.shape[1] - rows.stop
    left, right = cols.start, buffer.shape[2] - cols.stop
    if max(top, bottom) >= inner.shape[1] or max(left, right) >= inner.shape[2]:
        # Margins wider than the part: the mirror repeats (or repeats the edge); rare and small.
        buffer[...] = mirror(mirror(inner, top, bottom, axis=1), left, right, axis=2)
        return
    r0, r1 = rows.start, rows.stop
    buffer[:, :r0, cols] = buffer[:, r0 + 1:2 * r0 + 1, cols][:, ::-1]
    buffer[:, r1:, cols] = buffer[:, r1 - 1 - bottom:r1 - 1, cols][:, ::-1]
    c0, c1 = cols.start, cols.stop
    buffer[:, :, :c0] = buffer[:, :, c0 + 1:2 * c0 + 1][:, :, ::-1]
    buffer[:, :, c1:] = buffer[:, :, c1 - 1 - right:c1 - 1][:, :, ::-1]


def softmax(scores: np.ndarray, axis: int = 1) -> np.ndarray:
    """Numerically stable softmax."""
    shifted = scores - scores.max(axis=axis, keepdims=True)
    np.exp(shifted, out=shifted)
    shifted /= shifted.sum(axis=axis, keepdims=True)
    return shifted


class StripBlender:
    """Blends the overlapping tile predictions of a raster, one strip of tiles after the other.

    Each tile's class probabilities are weighted with :func:`edge_weights` (the outer product of
    the tile's row and column weights, computed once for each kind of tile) and added to
    accumulators one tile high and as wide as the mirrored raster; :meth:`take` returns the
    blended rows that no later strip covers and shifts the rest up.
    """

    def __init__(self, classes: int, tile: int, overlap: int, height: int, width: int):
        self.tile, self.overlap, self.height, self.width = tile, overlap, height, width
        self.rows, _ = tile_origins(height, tile, overlap)
        self.cols, self.pad = tile_origins(width, tile, overlap)
        self.acc = np.zeros((classes, tile, self.cols[-1] + self.pad + tile), dtype="float32")
        self.weight = np.zeros(self.acc.shape[1:], dtype="float32")
        self._weights = {}

    def _tile_weights(self, strip: int, column: int) -> np.ndarray:
        """The (tile, tile) weights of a tile, by whether it is on the raster's edges."""
        key = (strip == 0, strip == len(self.rows) - 1,
               column == 0, column == len(self.cols) - 1)
        if key not in self._weights:
            wy = edge_weights(self.tile, self.overlap, key[0], key[1])
            wx = edge_weights(self.tile, self.overlap, key[2], key[3])
            self._weights[key] = wy[:, None] * wx[None, :]
        return self._weights[key]

    def add(self, strip: int, column: int, probabilities: np.ndarray) -> None:
        """Adds a tile's (classes, tile, tile) probabilities (weighted in place)."""
        w = self._tile_weights(strip, column)
        c = self.cols[column] + self.pad
        probabilities *= w
        self.acc[:, :, c:c + self.tile] += probabilities
        self.weight[:, c:c + self.tile] += w

    def take(self, strip: int) -> tuple:
        """Returns the rows of a strip that no later strip covers, blended: ``(first raster row,
        probabilities (classes, rows, width), pixels no tile weighs (rows, width))`` (no rows when
        they lie in the mirrored margin), and shifts the accumulators to the next strip's origin."""
        row0 = self.rows[strip]
        done = (self.rows[strip + 1] if strip + 1 < len(self.rows) else row0 + self.tile) - row0
        a, b = max(0, -row0), max(0, min(self.height - row0, done))
        cols = slice(self.pad, self.pad + self.width)
        total = self.weight[a:b, cols]
        probabilities = self.acc[:, a:b, cols] / np.maximum(total, 1e-12)
        uncovered = total <= 0
        keep = self.tile - done
        self.acc[:, :keep] = self.acc[:, done:]
        self.acc[:, keep:] = 0.0
        self.weight[:keep] = self.weight[done:]
        self.weight[keep:] = 0.0
        return row0 + a, probabilities, uncovered
