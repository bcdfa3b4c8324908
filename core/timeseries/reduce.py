"""Per-pixel reductions over time that ignore NaN (invalid or cloudy observations).

They work on ``(dates, pixels)`` arrays in chunks of pixels, so temporaries stay small whatever
the number of dates, and spread the chunks over threads (numpy sorts and reductions release the
GIL). The median sorts each pixel's values once (NaN last) and takes the middle one or two, which
gives exactly ``numpy.nanmedian`` many times faster.
"""

from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import numpy as np

from ..runtime import thread_count

METHODS = ("median", "mean", "maxndvi", "min", "max")

#: Values per chunk handed to one thread (about 16 MiB of float32).
CHUNK_VALUES = 4 * 1024 * 1024


def _median(chunk: np.ndarray) -> np.ndarray:
    values = np.sort(chunk.T, axis=1)  # (pixels, dates), NaN sorted last
    count = np.count_nonzero(np.isfinite(values), axis=1)
    lo = np.maximum(count - 1, 0) // 2
    hi = count // 2
    rows = np.arange(values.shape[0])
    hi = np.minimum(hi, values.shape[1] - 1)
    out = 0.5 * (values[rows, lo] + values[rows, hi])
    out[count == 0] = np.nan
    return out.astype(np.float32)


def _quiet(function: Callable) -> Callable:
    def run(chunk):
        with warnings.catch_warnings(), np.errstate(invalid="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels: NaN is the answer
            return function(chunk, axis=0).astype(np.float32)
    return run


REDUCERS = {
    "median": _median,
    "mean": _quiet(np.nanmean),
    "min": _quiet(np.nanmin),
    "max": _quiet(np.nanmax),
}


def reduce_over_time(stack: np.ndarray, method: str, threads: int = 0,
                     pool: ThreadPoolExecutor = None) -> np.ndarray:
    """Reduces ``stack`` (dates, ...) over its first axis, ignoring NaN.

    Args:
        threads: threads of ``pool`` (0: every core); chunks are spread evenly over them.
        pool: the threads to use; None reduces on the calling thread.

    Returns:
        float32 array of ``stack.shape[1:]``, NaN where no date is valid.
    """
    shape = stack.shape[1:]
    flat = stack.reshape(stack.shape[0], -1)
    reducer = REDUCERS[method]
    step = _chunk_pixels(flat.shape[1], flat.shape[0], thread_count(threads) if pool else 1)
    starts = range(0, flat.shape[1], step)
    if pool is None or flat.shape[1] <= step:
        parts = [reducer(flat[:, s:s + step]) for s in starts]
    else:
        parts = list(pool.map(lambda s: reducer(flat[:, s:s + step]), starts))
    out = np.concatenate(parts) if parts else np.empty(0, np.float32)
    return out.reshape(shape)


def _chunk_pixels(pixels: int, dates: int, threads: int) -> int:
    """Pixels per chunk: at most :data:`CHUNK_VALUES` values, and as many chunks as a multiple
    of ``threads`` so that every thread gets the same share (three chunks on two threads would
    leave one idle for a third of the time)."""
    step = max(1024, CHUNK_VALUES // max(1, dates))
    if threads > 1:
        chunks = -(-pixels // step)
        chunks = max(threads, -(-chunks // threads) * threads)
        step = max(1024, -(-pixels // chunks))
    return step


def best_index(score: np.ndarray) -> np.ndarray:
    """Index of the date with the highest score per pixel (dates, ...); -1 where none is valid."""
    filled = np.where(np.isfinite(score), score, -np.inf)
    index = np.argmax(filled, axis=0)
    index[~np.isfinite(score).any(axis=0)] = -1
    return index


def open_pool(stack, threads: int, name: str) -> ThreadPoolExecutor:
    """A pool of :func:`thread_count` threads for the per-pixel work, shut down with ``stack``."""
    return stack.enter_context(ThreadPoolExecutor(thread_count(threads),
                                                  thread_name_prefix=f"landfusion-{name}"))
