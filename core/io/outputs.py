"""Outputs that appear whole or not at all.

- :func:`atomic_output` writes to a temporary file and moves it (with every file of its format)
  into place on success, so a failure, a cancel or SIGTERM never leaves a half-written output
  behind; temporaries of killed runs are recognised by their process id and removed.
  :func:`atomic_raster_output` does the same for rasters, in the format of the extension.
- :func:`check_writable` and :func:`check_raster_output` refuse an output before any work.
- :func:`remove_outputs` removes finished outputs (with their side files) after a later step
  failed.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import secrets
from typing import Iterator, Optional, Sequence

from ..errors import OutputError
from ..runtime import sigterm_cancels, termination_deferred


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
