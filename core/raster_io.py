"""Raster input/output shared by every engine function.

- :func:`open_raster` opens a raster with a message that names the file when it cannot.
- :func:`plan_blocks` sizes row strips from a memory budget so no function ever holds a whole
  scene; :func:`run_blocks` walks them, owning progress, cancellation and read-ahead.
- :func:`atomic_output` writes to a temporary file and renames it on success, so a failure or a
  cancel never leaves a half-written output behind.
- :func:`gdal_env` bounds GDAL's block cache, which would otherwise grow to 5 % of the RAM.
"""

from __future__ import annotations

import contextlib
import glob
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Iterator, Optional, Sequence

from .errors import InputError, OutputError
from .runtime import IsCancelled, Progress, check_cancelled, never_cancelled, no_progress

#: Default memory budget, in MiB, for the pixel arrays of one block (all bands, all steps).
DEFAULT_MEMORY_MB = 256
#: GDAL block cache, in MiB, while LandFusion works.
DEFAULT_GDAL_CACHE_MB = 128
#: Tile size of written GeoTIFFs; strips are aligned on it.
TILE = 256

FLOAT_NODATA = -9999.0


def gdal_env(cache_mb: int = DEFAULT_GDAL_CACHE_MB, **options):
    """Returns a rasterio environment with a bounded GDAL cache (and any extra options)."""
    import rasterio

    return rasterio.Env(GDAL_CACHEMAX=int(cache_mb), GDAL_PAM_ENABLED="NO", **options)


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
        raise InputError(f"{what} '{path}' cannot be read as a raster: {exc}") from exc


def band_descriptions(dataset) -> list:
    """Returns the band descriptions of an open dataset, '' where unset."""
    return [d or "" for d in dataset.descriptions]


@dataclass(frozen=True)
class Block:
    """A row strip of a raster: rows [row_off, row_off + height) over the full width."""

    row_off: int
    height: int
    width: int

    @property
    def window(self):
        """The rasterio window of this block."""
        from rasterio.windows import Window

        return Window(0, self.row_off, self.width, self.height)


def plan_blocks(
    width: int, height: int, bytes_per_pixel: int, memory_mb: float = DEFAULT_MEMORY_MB
) -> list:
    """Splits a raster into full-width row strips that fit a memory budget.

    Args:
        width, height: raster size in pixels.
        bytes_per_pixel: bytes one pixel costs across all arrays alive while a block is worked
            (inputs, temporaries and outputs).
        memory_mb: budget for one block. Two blocks are alive at once with read-ahead.

    Returns:
        Blocks covering the raster top to bottom. Strip heights are multiples of the output tile
        size when the budget allows it, so each strip writes whole tiles.
    """
    budget = max(1e-3, memory_mb) * 1024 * 1024
    rows = int(budget // max(1, width * bytes_per_pixel))
    rows = max(1, min(rows, height))
    if rows >= TILE:
        rows -= rows % TILE
    return [Block(r, min(rows, height - r), width) for r in range(0, height, rows)]


def run_blocks(
    blocks: Sequence[Block],
    read: Callable[[Block], object],
    work: Callable[[Block, object], None],
    progress: Progress = no_progress,
    is_cancelled: IsCancelled = never_cancelled,
    read_ahead: bool = True,
) -> None:
    """Reads and works blocks in order, reading the next block while the current one is worked.

    ``read`` must only touch input datasets and ``work`` only output datasets, so the two may run
    in different threads (GDAL and numpy release the GIL while they work).
    """
    if not blocks:
        return
    if not read_ahead:
        for i, block in enumerate(blocks):
            check_cancelled(is_cancelled)
            work(block, read(block))
            progress((i + 1) / len(blocks))
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="landfusion-read") as pool:
        pending = pool.submit(read, blocks[0])
        try:
            for i, block in enumerate(blocks):
                check_cancelled(is_cancelled)
                data = pending.result()
                if i + 1 < len(blocks):
                    pending = pool.submit(read, blocks[i + 1])
                work(block, data)
                progress((i + 1) / len(blocks))
        finally:
            pending.cancel()


def float_profile(reference, count: int, nodata: float = FLOAT_NODATA, compress: str = "ZSTD"):
    """Returns a GeoTIFF profile for a float32 output on the grid of ``reference``."""
    profile = {
        "driver": "GTiff",
        "dtype": "float32",
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
        "NUM_THREADS": "ALL_CPUS",
    }
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


def check_writable(path: str, what: str = "Output") -> None:
    """Raises :class:`OutputError` when ``path`` cannot be created."""
    if not path:
        raise OutputError(f"{what}: no file name given.")
    folder = os.path.dirname(os.path.abspath(path)) or "."
    if not os.path.isdir(folder):
        raise OutputError(f"{what} folder '{folder}' does not exist; create it or choose another.")
    if not os.access(folder, os.W_OK):
        raise OutputError(f"{what} folder '{folder}' is not writable; choose another location.")
    if os.path.isdir(path):
        raise OutputError(f"{what} '{path}' is a folder; give a file name.")


@contextlib.contextmanager
def atomic_output(path: str, what: str = "Output") -> Iterator[str]:
    """Yields a temporary path beside ``path``; renames it to ``path`` only on success.

    On any exception (including cancellation) the temporary file and its GDAL side files are
    removed and ``path`` is left untouched.
    """
    check_writable(path, what)
    folder = os.path.dirname(os.path.abspath(path))
    suffix = os.path.splitext(path)[1] or ".tif"
    handle, temp = tempfile.mkstemp(prefix=".landfusion-", suffix=suffix, dir=folder)
    os.close(handle)
    os.remove(temp)
    try:
        yield temp
    except BaseException:
        _remove_with_side_files(temp)
        raise
    try:
        os.replace(temp, path)
        for side in glob.glob(glob.escape(temp) + ".*"):
            os.replace(side, path + side[len(temp):])
    except OSError as exc:
        _remove_with_side_files(temp)
        raise OutputError(f"{what} '{path}' cannot be written: {exc}") from exc


def _remove_with_side_files(path: str) -> None:
    for leftover in [path] + glob.glob(glob.escape(path) + ".*"):
        with contextlib.suppress(OSError):
            os.remove(leftover)


def remove_outputs(paths: Sequence[Optional[str]]) -> None:
    """Removes finished outputs (and GDAL side files) after a later step failed."""
    for path in paths:
        if path and os.path.exists(path):
            _remove_with_side_files(path)
