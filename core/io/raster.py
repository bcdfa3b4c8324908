"""Raster input/output shared by every engine function.

- :func:`open_raster` opens a raster with a message that names the file when it cannot.
- :func:`plan_blocks` sizes row strips from a memory budget so no function ever holds a whole
  scene; :func:`run_blocks` walks them, owning progress, cancellation and read-ahead.
- :func:`gdal_env` bounds GDAL's block cache, which would otherwise grow to 5 % of the RAM.

Outputs are written through :mod:`.outputs` (atomic, whole or not at all).
"""

from __future__ import annotations

import collections
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Optional, Sequence, Tuple

from ..errors import InputError
from ..runtime import IsCancelled, Progress, check_cancelled, never_cancelled, no_progress

#: Default memory budget, in MiB, for the pixel arrays of one block (all bands, all steps).
DEFAULT_MEMORY_MB = 256
#: GDAL block cache, in MiB, while LandFusion works.
DEFAULT_GDAL_CACHE_MB = 128
#: Tile size of written GeoTIFFs; strips are aligned on it.
TILE = 256

FLOAT_NODATA = -9999.0


def gdal_env(cache_mb: int = DEFAULT_GDAL_CACHE_MB, **options):
    """Returns a rasterio environment with a bounded GDAL cache (and any extra options).

    rasterio hands an integer ``GDAL_CACHEMAX`` to GDAL as bytes, not megabytes:
    ``GDAL_CACHEMAX=128`` would leave GDAL a 128-byte cache (tiles decoded again at every read,
    ``RasterizeLayer`` re-walking every feature once per scanline). ``GDAL_NUM_THREADS`` (and the
    ``NUM_THREADS`` open option) is never set for reading: GDAL 3.6.0 to 3.7.0's multi-threaded
    GeoTIFF decoding crashes the process on band-interleaved files read through rasterio 1.3.5
    (rasterio issue 2847, fixed in GDAL 3.7.1). The engines read on several threads instead,
    one dataset per thread (:class:`DatasetPerThread`), overlap reading, computing and writing,
    and write with ``NUM_THREADS=ALL_CPUS``.
    """
    import rasterio

    return rasterio.Env(GDAL_CACHEMAX=int(cache_mb) * 1024 * 1024, **options)


def open_raster(path: str, what: str = "Raster"):
    """Opens ``path`` for reading with rasterio.

    Raises:
        InputError: naming the file when it is missing or not a raster GDAL can read.
    """
    import rasterio
    from rasterio.errors import RasterioIOError

    if not path:
        raise InputError(f"{what}: no file given.")
    if not os.path.exists(path) and not path.startswith(("/vsi", "NETCDF:", "HDF5:")):
        raise InputError(f"{what} '{path}' does not exist.")
    try:
        return rasterio.open(path)
    except (RasterioIOError, OSError, ValueError) as exc:
        from .preflight import describe_file

        kind = describe_file(path)
        if kind not in ("a raster", "missing"):
            raise InputError(f"{what} '{path}' is {kind}, not a raster. Choose a raster GDAL "
                             "can read (e.g. a GeoTIFF).") from exc
        raise InputError(f"{what} '{path}' cannot be read as a raster: {exc}") from exc


def band_descriptions(dataset) -> list:
    """Returns the band descriptions of an open dataset, '' where unset."""
    return [d or "" for d in dataset.descriptions]


def pixel_size_m(dataset) -> Optional[float]:
    """Mean pixel size in metres (approximate for geographic CRSs); None without a CRS."""
    if dataset.crs is None:
        return None
    res_x, res_y = abs(dataset.transform.a), abs(dataset.transform.e)
    if dataset.crs.is_geographic:
        lat = dataset.xy(dataset.height / 2, dataset.width / 2)[1]
        return 0.5 * (res_x * 111320.0 * math.cos(math.radians(lat)) + res_y * 110574.0)
    try:
        factor = dataset.crs.linear_units_factor[1]
    except Exception:  # unknown units: assume metres
        factor = 1.0
    return 0.5 * (res_x + res_y) * factor


@dataclass(frozen=True)
class Block:
    """A rectangular block of a raster: rows [row_off, row_off + height), columns likewise."""

    row_off: int
    height: int
    width: int
    col_off: int = 0

    @property
    def window(self):
        """The rasterio window of this block."""
        from rasterio.windows import Window

        return Window(self.col_off, self.row_off, self.width, self.height)


def plan_blocks(
    width: int, height: int, bytes_per_pixel: int, memory_mb: float = DEFAULT_MEMORY_MB,
    align: Tuple[int, int] = (TILE, TILE),
) -> list:
    """Splits a raster into blocks that fit a memory budget, aligned on the output tiles.

    Blocks are full-width strips when a strip of at least one tile row fits the budget, else
    one tile row high and as many whole tiles wide as fit, so block edges fall on multiples of
    :data:`TILE` and every compressed output tile is written once, whole. Only a budget smaller
    than one tile gives thin unaligned strips.

    Args:
        width, height: raster size in pixels.
        bytes_per_pixel: bytes one pixel costs across all arrays alive while a block is worked
            (inputs, temporaries and outputs).
        memory_mb: budget for one block.
        align: (rows, columns) block edges fall on multiples of: the output tile, or a common
            multiple of it and the input's blocks (:func:`input_alignment`), so that no input
            block is decoded for two blocks. When one such unit exceeds the budget, the output
            tile is used.

    Returns:
        Blocks covering the raster, row by row, left to right.
    """
    budget = max(1e-3, memory_mb) * 1024 * 1024
    unit_rows, unit_cols = align
    rows = int(budget // max(1, width * bytes_per_pixel))
    cols = width
    if rows >= height:
        rows = height
    elif rows >= unit_rows:
        rows -= rows % unit_rows
    elif width > unit_cols and budget >= unit_rows * unit_cols * bytes_per_pixel:
        rows = min(unit_rows, height)
        cols = int(budget // (rows * bytes_per_pixel))
        cols -= cols % unit_cols
    elif (unit_rows, unit_cols) != (TILE, TILE):
        return plan_blocks(width, height, bytes_per_pixel, memory_mb)
    else:  # a budget below one tile: honour it with thin strips
        rows = max(1, rows)
    return [
        Block(r, min(rows, height - r), min(cols, width - c), c)
        for r in range(0, height, rows)
        for c in range(0, width, cols)
    ]


def input_alignment(dataset, limit: int = 4 * TILE) -> Tuple[int, int]:
    """(rows, columns) multiples of both the output tile and the input's blocks (tiles or
    strips), for :func:`plan_blocks`: blocks with edges on them decode every input block once,
    whatever the GDAL cache holds. Input blocks whose common multiple with the tile exceeds
    ``limit`` (full-width strips, odd tile sizes) leave that direction on the output tile."""
    block_rows, block_cols = dataset.block_shapes[0]

    def unit(size: int) -> int:
        common = math.lcm(TILE, max(1, int(size)))
        return common if common <= limit else TILE

    return unit(block_rows), unit(block_cols)


def plan_tiles(
    width: int, height: int, bytes_per_pixel: int, memory_mb: float = DEFAULT_MEMORY_MB
) -> list:
    """Like :func:`plan_blocks`, but near-square blocks when full-width strips would be thin.

    For work that reads its inputs through a warp (co-registration): when full-width strips of
    four tile rows do not fit the budget, blocks are near-square and made of whole output tiles.
    Input tiles are then decompressed as few times as possible along block seams (a 256-row
    strip cuts every 512-row input tile in two), and every output tile is still written once.
    """
    budget = max(1e-3, memory_mb) * 1024 * 1024
    pixels = budget / max(1, bytes_per_pixel)
    if pixels >= width * min(4 * TILE, height) or pixels < TILE * TILE:
        return plan_blocks(width, height, bytes_per_pixel, memory_mb)
    rows = max(TILE, int(math.sqrt(pixels)) // TILE * TILE)
    cols = max(TILE, int(pixels / rows) // TILE * TILE)
    if cols >= width:
        return plan_blocks(width, height, bytes_per_pixel, memory_mb)
    rows = min(rows, height)
    return [
        Block(r, min(rows, height - r), min(cols, width - c), c)
        for r in range(0, height, rows)
        for c in range(0, width, cols)
    ]


def run_blocks(
    blocks: Sequence[Block],
    read: Callable[[Block], object],
    work: Callable[[Block, object], object],
    progress: Progress = no_progress,
    is_cancelled: IsCancelled = never_cancelled,
    read_ahead: bool = True,
    write: Optional[Callable[[Block, object], None]] = None,
    work_alone: bool = False,
    workers: int = 1,
) -> None:
    """Reads, works and writes blocks in order, overlapping the three.

    The next block is read while the current one is worked, and when ``write`` is given, the
    previous block's result (what ``work`` returned) is written meanwhile. ``read`` must only
    touch input datasets and ``write`` only output datasets; GDAL and numpy release the GIL
    while they work, so the three run in parallel. Up to three blocks are alive at once: size
    blocks with a third of the memory budget. Errors in any step stop the walk and propagate.

    With ``work_alone``, ``work`` runs while nothing else does (for work that already keeps every
    core busy, such as an onnxruntime session): the next block is read while the previous result
    is written, between two ``work`` calls.

    With ``workers`` > 1, that many blocks are read and worked at once, each on its own thread
    (``read`` and ``work`` must then be safe to call from several threads: read through a
    :class:`DatasetPerThread`, and return per-block results rather than update shared state);
    results are still written one at a time, in block order. Up to ``workers + 2`` blocks are
    alive at once.
    """
    if not blocks:
        return
    if workers > 1 and read_ahead and not work_alone:
        _run_in_parallel(blocks, read, work, progress, is_cancelled, write, workers)
        return
    if not read_ahead:
        for i, block in enumerate(blocks):
            check_cancelled(is_cancelled)
            result = work(block, read(block))
            if write is not None:
                write(block, result)
            progress((i + 1) / len(blocks))
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="landfusion-read") as reader, \
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="landfusion-write") as writer:
        pending = reader.submit(read, blocks[0])
        writing = None
        try:
            for i, block in enumerate(blocks):
                check_cancelled(is_cancelled)
                data = pending.result()
                if work_alone and writing is not None:
                    writing.result()
                if i + 1 < len(blocks) and not work_alone:
                    pending = reader.submit(read, blocks[i + 1])
                result = work(block, data)
                del data
                if i + 1 < len(blocks) and work_alone:
                    pending = reader.submit(read, blocks[i + 1])
                if write is not None:
                    if writing is not None:
                        writing.result()
                    writing = writer.submit(write, block, result)
                progress((i + 1) / len(blocks))
            if writing is not None:
                writing.result()
        finally:
            pending.cancel()
            if writing is not None:
                writing.cancel()


def _run_in_parallel(blocks, read, work, progress, is_cancelled, write, workers: int) -> None:
    """:func:`run_blocks` with ``workers`` blocks read and worked at once, written in order."""

    def read_and_work(block):
        return work(block, read(block))

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="landfusion-block") as pool, \
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="landfusion-write") as writer:
        queued = collections.deque(pool.submit(read_and_work, b) for b in blocks[:workers])
        writing = None
        try:
            for i, block in enumerate(blocks):
                check_cancelled(is_cancelled)
                result = queued.popleft().result()
                if i + workers < len(blocks):
                    queued.append(pool.submit(read_and_work, blocks[i + workers]))
                if write is not None:
                    if writing is not None:
                        writing.result()
                    writing = writer.submit(write, block, result)
                del result
                progress((i + 1) / len(blocks))
            if writing is not None:
                writing.result()
        finally:
            for future in queued:
                future.cancel()
            if writing is not None:
                writing.cancel()


class DatasetPerThread:
    """Opens a raster once per thread that reads it, for :func:`run_blocks` with ``workers``.

    GDAL datasets must not be used by two threads at once; each worker gets its own handle, and
    the GDAL block cache is shared. Use as a context manager: every handle is closed on exit.
    """

    def __init__(self, path: str, what: str = "Raster"):
        self.path, self.what = path, what
        self._local = threading.local()
        self._opened: list = []
        self._lock = threading.Lock()

    def get(self):
        """The calling thread's open dataset."""
        dataset = getattr(self._local, "dataset", None)
        if dataset is None:
            dataset = open_raster(self.path, self.what)
            self._local.dataset = dataset
            with self._lock:
                self._opened.append(dataset)
        return dataset

    def read(self, indexes, window, out=None):
        """Reads ``indexes`` in ``window`` with the calling thread's dataset (into ``out``)."""
        return self.get().read(indexes, window=window, out=out)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        with self._lock:
            for dataset in self._opened:
                dataset.close()
            self._opened.clear()


class ArrayPool:
    """Block arrays handed back when a block is done and reused for later blocks.

    A fresh array of tens of megabytes is new memory from the kernel, and filling it costs a
    page fault every 4 KiB: about a tenth of a second per gigabyte, on every block. Arrays are
    kept as flat buffers per dtype and handed out reshaped, so blocks of a different shape (the
    last column or row) reuse them too: the buffers never outnumber the arrays that were alive at
    once, and at most ``keep`` free ones per dtype are kept. Thread-safe.
    """

    def __init__(self, keep: int = 4):
        self.keep = keep
        self._free: dict = collections.defaultdict(list)
        self._lock = threading.Lock()

    def take(self, shape, dtype):
        """An uninitialised C-contiguous array of ``shape`` and ``dtype``."""
        import numpy as np

        dtype, size = np.dtype(dtype), math.prod(shape)
        with self._lock:
            free = self._free[dtype.str]
            fits = [k for k, buffer in enumerate(free) if buffer.size >= size]
            buffer = free.pop(min(fits, key=lambda k: free[k].size)) if fits else None
        if buffer is None:
            buffer = np.empty(size, dtype=dtype)
        return buffer[:size].reshape(shape)

    def give(self, array) -> None:
        """Hands ``array`` (from :meth:`take`) back; the caller must not use it afterwards."""
        import numpy as np

        while isinstance(array.base, np.ndarray):
            array = array.base
        with self._lock:
            free = self._free[array.dtype.str]
            free.append(array)
            if len(free) > self.keep:
                free.remove(min(free, key=lambda buffer: buffer.size))


def tiled_profile(reference, count: int, dtype: str, nodata) -> dict:
    """Returns a tiled GeoTIFF profile (no compression) on the grid of ``reference``."""
    return {
        "driver": "GTiff",
        "dtype": dtype,
        "count": count,
        "width": reference.width,
        "height": reference.height,
        "crs": reference.crs,
        "transform": reference.transform,
        "nodata": nodata,
        "tiled": True,
        "blockxsize": TILE,
        "blockysize": TILE,
        "BIGTIFF": "IF_SAFER",
    }


def float_profile(reference, count: int, nodata: float = FLOAT_NODATA, compress: str = "ZSTD"):
    """Returns a GeoTIFF profile for a float32 output on the grid of ``reference``."""
    profile = tiled_profile(reference, count, "float32", nodata)
    profile.update(interleave="band", NUM_THREADS="ALL_CPUS")
    profile.update(compression_options(compress, "float32"))
    return profile


def compression_options(compress: str, dtype: str) -> dict:
    """Creation options for a compression name ('NONE', 'DEFLATE', 'ZSTD', 'LZW')."""
    compress = (compress or "NONE").upper()
    if compress == "NONE":
        return {}
    options = {"compress": compress}
    if compress in ("DEFLATE", "ZSTD", "LZW"):
        options["predictor"] = 3 if dtype.startswith("float") else 2
    if compress == "ZSTD":
        options["ZSTD_LEVEL"] = 1
    if compress == "DEFLATE":
        options["ZLEVEL"] = 1
    return options

