"""Checks made before any heavy work starts, with messages that name the problem and the fix.

Every engine and the Processing base class use these, so a problem is reported the same way by
every algorithm:

- :func:`describe_file` says what a file is ("a text file", "a raster", "a vector layer");
  :func:`check_raster_input` / :func:`check_vector_input` refuse the wrong kind by saying so;
- :func:`check_output_location` refuses an output whose folder is missing, is not a folder or
  does not accept new files (``/proc``, a read-only folder or file system);
- :func:`raster_bytes` estimates an output from its grid, bands and data type and
  :func:`check_free_space` compares the estimates with the free space of each file system;
- :func:`check_grid_size` refuses a grid far too large to be meant (a pixel size given in the
  wrong units) and says the size it would have;
- :func:`check_range` checks a numeric option against its allowed range;
- :func:`check_tile_memory` refuses a tile size whose buffers cannot fit in memory;
- :func:`validate_estimator` checks scikit-learn parameters without fitting anything.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from typing import Iterable, Optional, Sequence, Tuple

from ..errors import InputError, OutputError

MB = 1024 * 1024
GB = 1024 * MB
#: Widths and heights GDAL can address (int32).
MAX_SIDE = 2 ** 31 - 1
#: Pixels per band above which a grid is refused as certainly unintended (a 10 m grid of the
#: whole land surface of the Earth has about 1.5e12 pixels).
MAX_PIXELS = 2 * 10 ** 12
#: Largest tile edge the tiled engines accept.
MAX_TILE = 8192

_DTYPE_BYTES = {"uint8": 1, "int8": 1, "byte": 1, "uint16": 2, "int16": 2, "uint32": 4,
                "int32": 4, "float32": 4, "float64": 8, "int64": 8, "uint64": 8}

#: What a file is, by extension, when GDAL cannot open it.
_KINDS = {
    ".txt": "a text file", ".md": "a text file", ".log": "a text file",
    ".csv": "a CSV table", ".html": "an HTML file", ".htm": "an HTML file",
    ".json": "a JSON file", ".xml": "an XML file", ".qml": "a QGIS style file",
    ".onnx": "an ONNX model file", ".pkl": "a Python pickle", ".pickle": "a Python pickle",
    ".joblib": "a Python pickle", ".py": "a Python script", ".zip": "a ZIP archive",
    ".pdf": "a PDF document", ".png": "a PNG image", ".jpg": "a JPEG image",
    ".model3": "a QGIS model",
}


def _gdal_kind(path: str) -> Optional[str]:
    """Returns 'raster', 'vector', 'raster and vector' or None, as GDAL sees ``path``."""
    try:
        from osgeo import gdal
    except ImportError:  # without GDAL only the extension can tell
        return None
    kinds = []
    with _quiet_gdal(gdal):
        for flag, name in ((gdal.OF_RASTER, "raster"), (gdal.OF_VECTOR, "vector")):
            try:
                dataset = gdal.OpenEx(path, flag)
            except RuntimeError:
                dataset = None
            if dataset is not None and (name == "raster" or dataset.GetLayerCount() > 0):
                kinds.append(name)
            dataset = None
    return " and ".join(kinds) or None


@contextlib.contextmanager
def _quiet_gdal(gdal):
    gdal.PushErrorHandler("CPLQuietErrorHandler")
    try:
        yield
    finally:
        gdal.PopErrorHandler()


def describe_file(path: str) -> str:
    """Returns what ``path`` is, for messages: 'a raster', 'a vector layer', 'a text file'…"""
    if not path:
        return "no file"
    if not os.path.exists(path):
        return "missing"
    if os.path.isdir(path):
        kind = _gdal_kind(path)
        return f"a folder ({kind} dataset)" if kind else "a folder"
    if os.path.getsize(path) == 0:
        return "an empty file"
    kind = _gdal_kind(path)
    if kind == "raster":
        return "a raster"
    if kind == "vector":
        return "a vector layer"
    if kind:
        return "a raster and vector dataset"
    ext = os.path.splitext(path)[1].lower()
    if ext in _KINDS:
        return _KINDS[ext]
    with open(path, "rb") as handle:
        head = handle.read(4096)
    if b"\0" in head:
        return "a binary file no GDAL driver reads"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return "a binary file no GDAL driver reads"
    return "a text file"


def _require(path: str, kind: str, what: str, fix: str) -> None:
    if not path or path.startswith(("/vsi", "NETCDF:", "HDF5:")) or "|" in path:
        return
    description = describe_file(path)
    if description == "missing":
        raise InputError(f"{what} '{path}' does not exist.")
    if kind not in description:
        raise InputError(f"{what} '{path}' is {description}, not a {kind}. {fix}")


def check_raster_input(path: str, what: str = "Input") -> None:
    """Raises :class:`InputError` when ``path`` is missing or not a raster GDAL reads."""
    _require(path, "raster", what, "Choose a raster GDAL can read (e.g. a GeoTIFF).")


def check_vector_input(path: str, what: str = "Input") -> None:
    """Raises :class:`InputError` when ``path`` is missing or not a vector layer OGR reads."""
    _require(path, "vector", what,
             "Choose a vector layer OGR can read (e.g. GeoPackage, shapefile, GeoJSON).")


def check_output_location(path: str, what: str = "Output") -> None:
    """Raises :class:`OutputError` unless a file can be created at ``path``.

    The folder must exist, be a folder and accept a new file: a file is created there and
    removed at once, which is the only test that holds for ``/proc``, read-only file systems and
    permissions (the super-user passes ``os.access`` everywhere).
    """
    if not path:
        raise OutputError(f"{what}: no file name given.")
    if os.path.isdir(path):
        raise OutputError(f"{what} '{path}' is a folder; give a file name inside it.")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.exists(folder):
        raise OutputError(f"{what}: the folder '{folder}' does not exist; create it or choose "
                          "another location.")
    if not os.path.isdir(folder):
        raise OutputError(f"{what}: '{folder}' is not a folder, so '{os.path.basename(path)}' "
                          "cannot be created in it; choose another location.")
    from .outputs import temporary_path

    probe = temporary_path(folder, ".probe")  # a later run removes it, should this one die here
    try:
        handle = os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise OutputError(f"{what}: the folder '{folder}' does not accept new files ({reason}); "
                          "choose a folder you can write to.") from exc
    os.close(handle)
    with contextlib.suppress(OSError):
        os.remove(probe)


def dtype_bytes(dtype: str) -> int:
    """Returns the bytes of one value of a numpy/GDAL data type name."""
    return _DTYPE_BYTES.get(str(dtype).lower(), 4)


def raster_bytes(width: int, height: int, count: int, dtype: str = "float32") -> int:
    """Returns the uncompressed size of a raster, in bytes."""
    return int(width) * int(height) * int(count) * dtype_bytes(dtype)


def format_bytes(size: float) -> str:
    """Returns a size in MB below 10 GB, else in GB ('1,234 MB', '56.7 GB')."""
    if size >= 10 * GB:
        return f"{size / GB:,.1f} GB"
    return f"{max(size / MB, 0.1 if size else 0):,.{0 if size >= 10 * MB else 1}f} MB"


def _existing_folder(path: str) -> str:
    folder = os.path.dirname(os.path.abspath(path))
    while folder and not os.path.isdir(folder):
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    return folder


def check_free_space(outputs: Iterable[Tuple[str, int]], what: str = "The outputs") -> None:
    """Raises :class:`OutputError` when the estimated outputs do not fit the free space.

    Args:
        outputs: (path, estimated bytes) per output file; outputs on one file system add up.
    """
    needs = {}
    for path, size in outputs:
        if not path or not size:
            continue
        folder = _existing_folder(path)
        try:
            device = os.stat(folder).st_dev
        except OSError:
            continue
        total, paths, first = needs.get(device, (0, [], folder))
        needs[device] = (total + int(size), paths + [path], first)
    for total, paths, folder in needs.values():
        try:
            free = shutil.disk_usage(folder).free
        except OSError:
            continue
        if total > free:
            names = ", ".join(os.path.basename(p) for p in paths)
            raise OutputError(
                f"No space left for {what[0].lower() + what[1:]} in '{folder}': "
                f"{format_bytes(total)} needed ({names}), "
                f"{format_bytes(free)} free. Free some disk space or write to another disk.")


def check_grid_size(width: int, height: int, count: int = 1, dtype: str = "float32",
                    what: str = "The output grid",
                    fix: str = "Use a larger pixel size or a smaller extent.") -> None:
    """Raises :class:`InputError` for a grid far too large to be meant, saying its size."""
    width, height = int(width), int(height)
    if width < 1 or height < 1:
        raise InputError(f"{what} would be {width} x {height} pixels, which is empty. {fix}")
    if width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
        size = raster_bytes(width, height, max(1, count), dtype)
        raise InputError(
            f"{what} would be {width:,} x {height:,} pixels ({width * height:.2g} pixels, about "
            f"{size / GB:,.0f} GB for {max(1, count)} {dtype} band(s)), far larger than any raster "
            f"LandFusion can write. {fix}")


def check_range(value, name: str, minimum=None, maximum=None, exclusive_minimum: bool = False,
                unit: str = "") -> None:
    """Raises :class:`InputError` unless ``minimum <= value <= maximum`` (``>`` when exclusive)."""
    unit = f" {unit}" if unit else ""
    if value is None:
        return
    low_ok = minimum is None or (value > minimum if exclusive_minimum else value >= minimum)
    high_ok = maximum is None or value <= maximum
    if low_ok and high_ok:
        return
    if minimum is not None and maximum is not None and not exclusive_minimum:
        allowed = f"between {minimum:g} and {maximum:g}{unit}"
    elif minimum is not None and maximum is not None:
        allowed = f"greater than {minimum:g} and at most {maximum:g}{unit}"
    elif minimum is not None:
        allowed = f"{'greater than' if exclusive_minimum else 'at least'} {minimum:g}{unit}"
    else:
        allowed = f"at most {maximum:g}{unit}"
    raise InputError(f"{name} is {value:g}{unit}; it must be {allowed}.")


def available_memory() -> int:
    """Returns the memory available to a new allocation, in bytes (MemAvailable on Linux)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    with contextlib.suppress(ValueError, OSError, AttributeError):
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return 0


def first_layer_channels(model_path: str) -> int:
    """Returns the output channels of the first convolution of an ONNX model (0: unknown).

    A convolutional network holds at least this many full-resolution feature maps per tile.
    """
    try:
        import onnx

        model = onnx.load(model_path, load_external_data=False)
    except Exception:  # any unreadable graph: the estimate falls back to the data buffers
        return 0
    shapes = {init.name: list(init.dims) for init in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Conv" and len(node.input) > 1:
            dims = shapes.get(node.input[1])
            if dims and len(dims) == 4:
                return int(dims[0])
    return 0


def tile_memory_bytes(width: int, tile: int, overlap: int, batch: int, bands: int, classes: int,
                      feature_channels: int = 0) -> int:
    """Returns the bytes tiled inference holds at least: one strip, one batch and its features."""
    strip_width = int(width) + int(overlap) + int(tile)
    strip = strip_width * int(tile) * (int(bands) + int(classes) + 1) * 4
    tensors = int(batch) * int(tile) * int(tile) * (int(bands) + int(classes)) * 4
    features = int(batch) * int(tile) * int(tile) * 2 * int(feature_channels) * 4
    return strip + tensors + features


def check_tile_memory(width: int, tile: int, overlap: int, batch: int, bands: int, classes: int,
                      feature_channels: int = 0, available: Optional[int] = None) -> None:
    """Raises :class:`InputError` when the tile size or batch cannot fit the free memory."""
    check_range(tile, "The tile size", 8, MAX_TILE, unit="pixels")
    need = tile_memory_bytes(width, tile, overlap, batch, bands, classes, feature_channels)
    free = available_memory() if available is None else available
    if free and need > free:
        smaller = max(8, tile // 2)
        while smaller > 8 and tile_memory_bytes(width, smaller, min(overlap, smaller // 2),
                                                batch, bands, classes,
                                                feature_channels) > free:
            smaller //= 2
        raise InputError(
            f"Tile size {tile} px with {batch} tile(s) per batch needs at least "
            f"{format_bytes(need)} of memory; {format_bytes(free)} are available. Use a tile "
            f"size of {smaller} px or less (TILE_SIZE) or a smaller batch (BATCH_SIZE).")


def validate_estimator(estimator, what: str) -> None:
    """Checks a scikit-learn estimator's parameter values without fitting it.

    Raises:
        InputError: with scikit-learn's own explanation of the allowed values.
    """
    steps: Sequence = getattr(estimator, "steps", None) or [(None, estimator)]
    for _, step in steps:
        validate = getattr(step, "_validate_params", None)
        if validate is None or not hasattr(step, "_parameter_constraints"):
            continue  # an estimator outside scikit-learn (LightGBM) checks its values when fit
        try:
            validate()
        except (ValueError, TypeError) as exc:
            raise InputError(f"Invalid parameter for {what}: {exc}") from exc


def model_class_count(path: str) -> int:
    """Returns the number of classes a LandFusion model file declares (0: unknown)."""
    import json

    try:
        import onnx

        props = {p.key: p.value for p in onnx.load(path, load_external_data=False).metadata_props}
    except Exception:  # not a readable model: the engine's own check names the problem
        return 0
    for key, value in props.items():
        try:
            parsed = json.loads(value)
        except ValueError:
            continue
        if key.endswith("classes") and isinstance(parsed, list):
            return len(parsed)
        if isinstance(parsed, dict) and isinstance(parsed.get("classes"), list):
            return len(parsed["classes"])
    return 0
