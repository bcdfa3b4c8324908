"""Raster input/output shared by every engine function.

- :func:`open_raster` opens a raster with a message that names the file when it cannot.
- :func:`plan_blocks` sizes row strips from a memory budget so no function ever holds a whole
  scene; :func:`run_blocks` walks them, owning progress, cancellation and read-ahead.
- :func:`atomic_output` writes to a temporary file and moves it (with every file of its format)
  into place on success, so a failure, a cancel or SIGTERM never leaves a half-written output
  behind; temporaries of killed runs are recognised by their process id and removed.
  :func:`atomic_raster_output` does the same for rasters, in the format of the extension.
- :func:`gdal_env` bounds GDAL's block cache, which would otherwise grow to 5 % of the RAM.
"""

from __future__ import annotations

import contextlib
import glob
import math
import os
import re
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Iterator, Optional, Sequence

from ..errors import InputError, OutputError
from ..runtime import (
    IsCancelled, Progress, check_cancelled, never_cancelled, no_progress, sigterm_cancels,
    termination_deferred,
)

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
    ``RasterizeLayer`` re-walking every feature once per scanline). ``GDAL_NUM_THREADS`` is left
    unset: with GDAL 3.6.2 its multi-threaded block decoding aborted the process when blocks were
    read on the read-ahead thread while another thread used GDAL (the engines overlap reading,
    computing and writing instead, and write with ``NUM_THREADS=ALL_CPUS``).
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
    width: int, height: int, bytes_per_pixel: int, memory_mb: float = DEFAULT_MEMORY_MB
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

    Returns:
        Blocks covering the raster, row by row, left to right.
    """
    budget = max(1e-3, memory_mb) * 1024 * 1024
    rows = int(budget // max(1, width * bytes_per_pixel))
    cols = width
    if rows >= height:
        rows = height
    elif rows >= TILE:
        rows -= rows % TILE
    elif width > TILE and budget >= TILE * TILE * bytes_per_pixel:
        rows = min(TILE, height)
        cols = int(budget // (rows * bytes_per_pixel))
        cols -= cols % TILE
    else:  # a budget below one tile: honour it with thin strips
        rows = max(1, rows)
    return [
        Block(r, min(rows, height - r), min(cols, width - c), c)
        for r in range(0, height, rows)
        for c in range(0, width, cols)
    ]


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
) -> None:
    """Reads, works and writes blocks in order, overlapping the three.

    The next block is read while the current one is worked, and when ``write`` is given, the
    previous block's result (what ``work`` returned) is written meanwhile. ``read`` must only
    touch input datasets and ``write`` only output datasets; GDAL and numpy release the GIL
    while they work, so the three run in parallel. Up to three blocks are alive at once: size
    blocks with a third of the memory budget. Errors in any step stop the walk and propagate.
    """
    if not blocks:
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
                if i + 1 < len(blocks):
                    pending = reader.submit(read, blocks[i + 1])
                result = work(block, data)
                del data
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


def check_writable(path: str, what: str = "Output") -> None:
    """Raises :class:`OutputError` when ``path`` cannot be created (see
    :func:`.preflight.check_output_location`)."""
    from .preflight import check_output_location

    check_output_location(path, what)


#: Raster extensions LandFusion writes, with their GDAL drivers. Engines write GeoTIFF; other
#: formats are copied from a temporary GeoTIFF when the output is complete.
RASTER_DRIVERS = {".tif": "GTiff", ".tiff": "GTiff", ".img": "HFA"}
#: Prefix of every temporary file or folder: ``.landfusion-<pid>-<random>…``.
TEMP_PREFIX = ".landfusion-"
_TEMP_NAME = re.compile(r"^\.landfusion-(\d+)-")
#: Parts of a shapefile besides the .shp (removed with it, never left stale beside a new one).
SHAPEFILE_PARTS = (".shx", ".dbf", ".prj", ".cpg", ".qix", ".sbn", ".sbx", ".shp.xml")
#: GDAL side files of a raster, named ``<raster>.aux.xml`` etc.
GDAL_SIDE_SUFFIXES = (".aux.xml", ".ovr", ".msk")


def raster_driver(path: str, what: str = "Output") -> str:
    """Returns the GDAL driver writing ``path`` (by extension).

    Raises:
        OutputError: for an extension LandFusion does not write (e.g. .png cannot hold float
            bands or georeferencing reliably, a .vrt would point at temporary files).
    """
    ext = os.path.splitext(path or "")[1].lower()
    if ext in RASTER_DRIVERS:
        return RASTER_DRIVERS[ext]
    shown = f"'{ext}'" if ext else "no extension"
    raise OutputError(
        f"{what} '{path}' has {shown}; LandFusion writes rasters as GeoTIFF (.tif, .tiff) or "
        "Erdas Imagine (.img). Choose a .tif name (convert afterwards with GDAL if you need "
        "another format).")


def check_raster_output(path: str, what: str = "Output") -> None:
    """Raises :class:`OutputError` when ``path`` cannot be written as a raster."""
    check_writable(path, what)
    raster_driver(path, what)


def temporary_path(folder: str, suffix: str = "") -> str:
    """Returns an unused path ``<folder>/.landfusion-<pid>-<random><suffix>``.

    The process id lets a later run tell the temporaries of a dead process (removed by
    :func:`remove_stale_temporaries`) from those of a live one (never touched)."""
    return os.path.join(folder, f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(6)}{suffix}")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    if os.name == "nt":
        import ctypes

        kernel32 = ctypes.windll.kernel32
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        code = ctypes.c_ulong()
        try:
            kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        finally:
            kernel32.CloseHandle(handle)
        return code.value == 259  # STILL_ACTIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but belongs to someone else
        return True
    return True


def remove_stale_temporaries(folder: str, log=None) -> list:
    """Removes LandFusion temporaries left in ``folder`` by processes that no longer run (a
    killed run); the files of live runs are left alone.

    Returns:
        The names removed.
    """
    import shutil

    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        match = _TEMP_NAME.match(name)
        if not match or _pid_alive(int(match.group(1))):
            continue
        path = os.path.join(folder, name)
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.remove(path)
            removed.append(name)
        except OSError:
            continue
    if removed and log is not None:
        log(f"Removed {len(removed)} temporary file(s) left by an interrupted run in '{folder}'.")
    return removed


def _family(temp: str) -> list:
    """Every file written under a temporary's unique stem (the main file, GDAL side files,
    shapefile parts, sidecars), main file excluded."""
    folder = os.path.dirname(temp)
    stem = os.path.basename(os.path.splitext(temp)[0])
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return [os.path.join(folder, n) for n in sorted(names)
            if n.startswith(stem) and os.path.join(folder, n) != temp]


def _target_of(member: str, temp: str, path: str) -> str:
    """Where a member of a temporary's family goes: ``<temp>.aux.xml`` → ``<path>.aux.xml``,
    ``<temp stem>.dbf`` → ``<path stem>.dbf``."""
    if member.startswith(temp):
        return path + member[len(temp):]
    stem = os.path.splitext(temp)[0]
    return os.path.splitext(path)[0] + member[len(stem):]


def output_files(path: str) -> list:
    """The files that make up an existing output: the file itself, its GDAL side files and,
    for a shapefile, its other parts."""
    files = [path] + [path + s for s in GDAL_SIDE_SUFFIXES]
    if path.lower().endswith(".shp"):
        stem = os.path.splitext(path)[0]
        files += [stem + part for part in SHAPEFILE_PARTS]
        files += [stem + part.upper() for part in SHAPEFILE_PARTS]
    return [f for f in dict.fromkeys(files) if os.path.lexists(f)]


def _move_into_place(temp: str, path: str) -> None:
    """Moves a finished temporary and its family onto ``path``; the main file goes last, so the
    output appears complete. Stale parts of an older output at ``path`` are removed."""
    moves = {member: _target_of(member, temp, path) for member in _family(temp)}
    for old in output_files(path):
        if old != path and old not in moves.values():
            os.remove(old)
    for member, target in moves.items():
        os.replace(member, target)
    os.replace(temp, path)


@contextlib.contextmanager
def atomic_output(path: str, what: str = "Output") -> Iterator[str]:
    """Yields a temporary path beside ``path``; moves it (with every file of its format) to
    ``path`` only on success.

    The temporary is named ``.landfusion-<pid>-<random><extension of path>``; whatever the
    writer creates under that name moves with it (shapefile .dbf/.shx/.prj/.cpg/.qix, GDAL
    .aux.xml, .json sidecars). On any exception (including cancellation, and SIGTERM in the main
    thread) every temporary file is removed and ``path`` is left untouched. Temporaries of
    killed runs in the same folder are removed first.
    """
    check_writable(path, what)
    folder = os.path.dirname(os.path.abspath(path))
    remove_stale_temporaries(folder)
    temp = temporary_path(folder, os.path.splitext(path)[1] or ".tif")
    with sigterm_cancels():
        try:
            yield temp
        except BaseException:
            _remove_family(temp)
            raise
        with termination_deferred():
            try:
                _move_into_place(temp, path)
            except OSError as exc:
                _remove_family(temp)
                raise OutputError(f"{what} '{path}' cannot be written: {exc}") from exc


@contextlib.contextmanager
def atomic_raster_output(path: str, what: str = "Output") -> Iterator[str]:
    """Like :func:`atomic_output` for a raster: yields a temporary GeoTIFF path to write; when
    ``path`` is another format LandFusion writes (see :data:`RASTER_DRIVERS`), the finished
    GeoTIFF is copied into it with the right GDAL driver (band names, metadata, colour table and
    category names included) before it is moved into place.

    Raises:
        OutputError: before anything is written, for an extension LandFusion cannot write.
    """
    driver = raster_driver(path, what)
    with atomic_output(path, what) as temp:
        if driver == "GTiff":
            yield temp
            return
        work = os.path.splitext(temp)[0] + ".tif"
        yield work
        _copy_raster(work, temp, driver, what)


def _copy_raster(source: str, target: str, driver: str, what: str) -> None:
    from osgeo import gdal

    options = ["COMPRESSED=YES"] if driver == "HFA" else []
    result = gdal.Translate(target, source, format=driver, creationOptions=options)
    if result is None:
        raise OutputError(f"{what}: GDAL could not write the {driver} file: "
                          f"{gdal.GetLastErrorMsg()}")
    result = None
    for side in [source] + [source + s for s in GDAL_SIDE_SUFFIXES]:
        if os.path.exists(side):
            os.remove(side)
    for member in glob.glob(glob.escape(source) + ".*"):  # sidecars such as <raster>.json
        os.replace(member, target + member[len(source):])


def _remove_family(temp: str) -> None:
    for leftover in [temp] + _family(temp):
        with contextlib.suppress(OSError):
            os.remove(leftover)


def remove_outputs(paths: Sequence[Optional[str]]) -> None:
    """Removes finished outputs (with their side files and parts) after a later step failed."""
    for path in paths:
        if path:
            for leftover in output_files(path) + glob.glob(glob.escape(path) + ".*"):
                with contextlib.suppress(OSError):
                    os.remove(leftover)
