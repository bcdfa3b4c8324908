"""Drawing training samples from the pairs, block by block.

Change is rare, so samples are drawn per pair and class: every change pixel up to a cap, a
uniform share of the no-change pixels. Each sample carries the inverse of its drawing rate as a
weight, so scores are estimated for the true class proportions of every pair, and the spatial
tile it falls in (the validation groups when there is a single pair).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np

from ...errors import NoDataError
from ...io import raster as raster_io
from ...runtime import IsCancelled, Progress, check_cancelled
from ..features import bytes_per_pixel, compute_features, difference_statistics
from .options import TrainingOptions
from .plan import LabelInfo, TrainingPlan

#: Size, in pixels, of the spatial tiles used as groups when there is a single pair.
TILE_GROUP = 64


@dataclass
class Samples:
    """Feature rows with their class id, weight, pair index and spatial tile."""

    X: np.ndarray
    y: np.ndarray
    w: np.ndarray
    pair_of: np.ndarray
    tile: np.ndarray


@dataclass
class _PairDraw:
    """What one block of a pair needs to draw its samples."""

    index: int
    pair: object
    info: LabelInfo
    no_change: int
    rate_change: float
    rate_stable: float
    statistics: Optional[dict]
    tiles_x: int
    parts: List[tuple] = field(default_factory=list)


def extract_samples(plan: TrainingPlan, o: TrainingOptions, progress: Progress,
                    is_cancelled: IsCancelled) -> Samples:
    """Draws the samples of every pair.

    Raises:
        NoDataError: no labelled pixel has valid values on both dates.
    """
    rng = np.random.default_rng(o.seed)
    bpp = bytes_per_pixel(plan.spec) + 8
    block_plans = [raster_io.plan_blocks(pair.width, pair.height, bpp, o.memory_mb / 2)
                   for pair in plan.pairs]
    total_blocks = sum(len(blocks) for blocks in block_plans)
    done = 0
    parts = []
    for p, (info, blocks) in enumerate(zip(plan.labels, block_plans)):
        draw = _pair_draw(p, plan, info, o.samples_per_pair, is_cancelled)
        for block in blocks:
            check_cancelled(is_cancelled)
            sample_block(draw, plan, block, rng)
            done += 1
            progress(done / total_blocks)
        parts += draw.parts
    if not parts:
        raise NoDataError("No labelled pixel has valid values on both dates; check that the "
                          "labels and the pairs cover the same area and that the pairs hold "
                          "data.")
    return Samples(*(np.concatenate(column) for column in zip(*parts)))


def _pair_draw(p: int, plan: TrainingPlan, info: LabelInfo, cap: int,
               is_cancelled: IsCancelled) -> _PairDraw:
    pair = plan.pairs[p]
    n_change = info.change_pixels(plan.no_change)
    n_stable = info.counts.get(plan.no_change, 0)
    statistics = difference_statistics(pair, is_cancelled=is_cancelled) \
        if plan.spec.needs_statistics else None
    return _PairDraw(p, pair, info, plan.no_change,
                     min(1.0, cap / n_change) if n_change else 1.0,
                     min(1.0, cap / n_stable) if n_stable else 1.0,
                     statistics, (pair.width + TILE_GROUP - 1) // TILE_GROUP)


def sample_block(draw: _PairDraw, plan: TrainingPlan, block, rng) -> None:
    """Draws the samples of one block of a pair into ``draw.parts``."""
    info = draw.info
    label = info.reader.read(1, window=block.window)
    labelled = np.isin(label, list(info.counts.keys()))
    if info.nodata is not None:
        labelled &= label != info.nodata
    if not labelled.any():
        return
    halo = plan.spec.halo
    b, a = draw.pair.read(block, halo)
    features, valid = compute_features(plan.spec, b, a, halo, draw.statistics)
    keep = labelled & valid
    rate = np.where(label == draw.no_change, draw.rate_stable, draw.rate_change)
    keep &= rng.random(label.shape) < rate
    rows, cols = np.nonzero(keep)
    if not rows.size:
        return
    tile = ((rows + block.row_off) // TILE_GROUP) * draw.tiles_x + \
        (cols + block.col_off) // TILE_GROUP
    draw.parts.append((features[:, rows, cols].T.copy(), label[rows, cols].astype(np.int64),
                       (1.0 / rate[rows, cols]).astype(np.float64),
                       np.full(rows.size, draw.index, np.int32), tile))


def balance(X: np.ndarray, y: np.ndarray, no_change: int, seed: int) -> tuple:
    """As many no-change rows as change rows, drawn at random (for estimators without class
    weights)."""
    rng = np.random.default_rng(seed)
    change = np.flatnonzero(y != no_change)
    stable = np.flatnonzero(y == no_change)
    if change.size and stable.size > change.size:
        stable = rng.choice(stable, change.size, replace=False)
    index = np.sort(np.concatenate([change, stable]))
    return X[index], y[index]
