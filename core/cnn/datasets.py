"""Training samples for ``landfusion:traincnn``: labelled tiles or patches, grouped for validation.

No PyTorch here: samples are numpy arrays, read window by window with rasterio.

- Segmentation: every input raster is cut into a grid of ``patch_size`` tiles; labels come from a
  label raster per input (any grid: warped onto the input grid with nearest resampling) or from
  training polygons/points rasterised on the input grid. Tiles without labelled pixels are
  dropped.
- Patch classification: a folder with one sub-folder of patch rasters per class (the EuroSAT
  layout), or patches of ``patch_size`` cut around labelled points of input rasters.

Every sample carries a group: its input (or patch file), or its spatial block. Validation holds
out whole groups, never pixels of a tile used for training.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from ..io.class_writer import valid_pixels
from ..errors import BandError, InputError, NoDataError, NoOverlapError
from ..io import raster as raster_io
from ..io.classmap import ClassInfo, palette_color
from ..runtime import (IsCancelled, Log, Progress, check_cancelled, never_cancelled, no_log,
                       no_progress)
from ..sensors.bands import input_band_names, match_bands

#: Upper bound, in MiB, of the tiles a segmentation run may hold in memory.
MAX_SAMPLES_MB = 4096
#: Label index of unlabelled pixels.
IGNORE = -1
_LABEL_SENTINEL = -2147483647
_RASTER_EXTENSIONS = (".tif", ".tiff", ".jp2", ".img", ".vrt")
VALIDATION_MODES = ("inputs", "blocks")


@dataclass
class SampleSet:
    """Labelled samples, before normalisation.

    Attributes:
        x: (n, bands, size, size) float32 physical values; NaN where a band is nodata.
        y: (n, size, size) int64 class indexes (segmentation, ``IGNORE`` where unlabelled) or (n,)
            class indexes (patch classification).
        groups: (n,) group key of each sample (input, patch file or spatial block).
        sources: (n,) index of the input (or class folder) each sample came from.
        bands: band names in channel order.
        classes: the classes, in index order (``ClassInfo`` with the label values).
        inputs: the input files (or patch folder) the samples came from.
    """

    x: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    sources: np.ndarray
    bands: list
    classes: list
    inputs: list
    task: str
    patch_size: int
    pixel_size: Optional[float] = None
    notes: list = field(default_factory=list)

    @property
    def nbytes(self) -> int:
        """Memory held by the samples."""
        return int(self.x.nbytes + self.y.nbytes)


def raster_band_names(dataset, given: Optional[Sequence[str]], what: str) -> list:
    """The names of a raster's bands: the user's list, else the band descriptions.

    Raises:
        BandError: when the names are missing, duplicated, or the list has the wrong length.
    """
    names = input_band_names(dataset, given or None)
    upper = [n.upper() for n in names]
    if not all(names) or len(set(upper)) != len(upper):
        shown = ", ".join(n or f"(band {i + 1} unnamed)" for i, n in enumerate(names))
        raise BandError(
            f"{what} has unnamed or repeated band names ({shown}); a trained model records its "
            "bands by name. Give the input band names in order (e.g. VV,VH or B02,B03,B04,B08).")
    return names


def _band_indexes(names: list, wanted: Optional[Sequence[str]], what: str) -> tuple:
    if not wanted:
        return list(range(1, len(names) + 1)), list(names)
    indexes = match_bands(names, wanted, what)
    return indexes, [names[i - 1] for i in indexes]


def _check_size(dataset, patch_size: int, what: str) -> None:
    if dataset.width < patch_size or dataset.height < patch_size:
        raise InputError(
            f"The patch size ({patch_size} px) is larger than {what} ({dataset.width} x "
            f"{dataset.height} px). Choose a patch size of at most "
            f"{min(dataset.width, dataset.height)} px.")


def _nodata_per_band(dataset, indexes) -> list:
    return [dataset.nodatavals[i - 1] for i in indexes]


def _read_bands(dataset, indexes, window, nodata) -> np.ndarray:
    raw = dataset.read(indexes, window=window).astype("float32")
    raw[:, ~valid_pixels(raw, nodata)] = np.nan
    return raw


class _LabelSource:
    """Labels of one input on the input's grid: a warped label raster or rasterised vectors."""

    def __init__(self, dataset, label_path=None, label_nodata=None, vector=None):
        self.dataset = dataset
        self.label = raster_io.open_raster(label_path, "Label raster") if label_path else None
        self.label_path = label_path
        self.vector = vector
        if self.label is not None:
            self.nodata = label_nodata if label_nodata is not None else self.label.nodata
            self._check_overlap()

    def _check_overlap(self) -> None:
        from rasterio.warp import transform_bounds

        ds, lab = self.dataset, self.label
        bounds = lab.bounds
        if lab.crs and ds.crs and lab.crs != ds.crs:
            bounds = transform_bounds(lab.crs, ds.crs, *bounds)
        left, bottom = max(bounds[0], ds.bounds.left), max(bounds[1], ds.bounds.bottom)
        right, top = min(bounds[2], ds.bounds.right), min(bounds[3], ds.bounds.top)
        if left >= right or bottom >= top:
            raise NoOverlapError(
                f"The label raster '{os.path.basename(self.label_path)}' does not overlap the "
                f"input '{os.path.basename(ds.name)}' (label extent "
                f"{tuple(round(b, 6) for b in bounds)} vs input extent "
                f"{tuple(round(b, 6) for b in ds.bounds)} in the input's CRS). "
                "Give the labels of this input, in the same order as the inputs.")

    def read(self, window) -> np.ndarray:
        """Returns int64 label values over ``window`` of the input grid, ``_LABEL_SENTINEL``
        where unlabelled."""
        import rasterio
        from rasterio.warp import Resampling, reproject

        ds = self.dataset
        height, width = int(window.height), int(window.width)
        if self.label is not None:
            out = np.full((height, width), _LABEL_SENTINEL, dtype="int32")
            reproject(
                source=rasterio.band(self.label, 1),
                destination=out, src_transform=self.label.transform,
                src_crs=self.label.crs or ds.crs, src_nodata=self.nodata,
                dst_transform=ds.window_transform(window), dst_crs=ds.crs or self.label.crs,
                dst_nodata=_LABEL_SENTINEL, resampling=Resampling.nearest)
            return out.astype("int64")
        from ..classification.samples import rasterise_feature_ids

        features, wkt = self.vector
        ids_ds = rasterise_feature_ids(
            features, ds, (int(window.col_off), int(window.row_off), width, height), wkt)
        ids = ids_ds.GetRasterBand(1).ReadAsArray()
        lookup = np.array([_LABEL_SENTINEL] + [f.class_value for f in features], dtype="int64")
        return lookup[ids]

    def close(self) -> None:
        if self.label is not None:
            self.label.close()


def check_label_overlap(dataset, label_path: str) -> None:
    """Raises :class:`NoOverlapError` when a label raster does not overlap its input."""
    _LabelSource(dataset, label_path).close()


def _vector_classes(training: str, class_field: str, dataset, warn: Log):
    from ..classification.samples import read_training_vector

    wkt = dataset.crs.to_wkt() if dataset.crs else ""
    vector = read_training_vector(training, class_field, wkt, tuple(dataset.bounds), warn=warn)
    return vector, wkt


def _label_classes(values: Sequence[int], label_path: Optional[str], named: dict) -> list:
    """ClassInfo for label values, named from the label raster's categories when it has some."""
    styled = {}
    if label_path:
        try:
            from ..io.classmap import read_class_styling

            styled = {c.value: c for c in read_class_styling(label_path)}
        except Exception:  # an unstyled label raster is fine
            styled = {}
    classes = []
    for i, value in enumerate(values):
        if value in named:
            classes.append(ClassInfo(int(value), named[value].name, named[value].color))
        elif value in styled:
            classes.append(ClassInfo(int(value), styled[value].name, styled[value].color))
        else:
            classes.append(ClassInfo(int(value), f"Class {value}", palette_color(i)))
    return classes


def _input_key(inputs: Sequence[str], index: int) -> str:
    """The validation group of a whole input: its file name (with its position when two inputs
    share a name)."""
    names = [os.path.basename(p) for p in inputs]
    name = names[index]
    return name if names.count(name) == 1 else f"{index + 1}:{name}"


def _block_key(source: int, row: int, col: int, block: int) -> str:
    return f"{source}:{row // block}:{col // block}"


def segmentation_samples(
    inputs: Sequence[str],
    patch_size: int,
    bands: Optional[Sequence[str]] = None,
    input_band_names: Optional[Sequence[str]] = None,
    labels: Optional[Sequence[str]] = None,
    label_nodata: Optional[float] = None,
    training: Optional[str] = None,
    class_field: Optional[str] = None,
    validation: str = "inputs",
    block_size: int = 0,
    progress: Progress = no_progress,
    is_cancelled: IsCancelled = never_cancelled,
    warn: Log = no_log,
) -> SampleSet:
    """Cuts labelled ``patch_size`` tiles from the inputs (see the module docstring).

    Raises:
        InputError, BandError, NoOverlapError, NoDataError, CancelledError.
    """
    if not inputs:
        raise InputError("Segmentation needs at least one input raster.")
    if labels and len(labels) != len(inputs):
        raise InputError(f"Give one label raster per input raster: {len(inputs)} input(s), "
                         f"{len(labels)} label raster(s), in the same order.")
    if not labels and not training:
        raise InputError("Segmentation needs labels: label rasters (one per input) or training "
                         "polygons with a class field.")
    block = max(patch_size, int(block_size or 2 * patch_size))
    xs, ys, groups, sources = [], [], [], []
    named: dict = {}
    chosen = None
    pixel_size = None
    budget = MAX_SAMPLES_MB * 2 ** 20
    planned = 0
    with raster_io.gdal_env():
        for i, path in enumerate(inputs):
            what = f"Input raster '{os.path.basename(path)}'"
            with raster_io.open_raster(path, "Input raster") as ds:
                names = raster_band_names(ds, input_band_names, what)
                indexes, picked = _band_indexes(names, bands, what)
                if chosen is None:
                    chosen = picked
                    pixel_size = raster_io.pixel_size_m(ds)
                _check_size(ds, patch_size, what)
                planned += (ds.width // patch_size) * (ds.height // patch_size) * \
                    patch_size ** 2 * (4 * len(indexes) + 8)
                if planned > budget:
                    raise InputError(
                        f"The inputs would need about {planned / 2 ** 20:.0f} MiB of training "
                        f"tiles (limit {MAX_SAMPLES_MB} MiB). Crop the inputs to the labelled "
                        "areas, use fewer inputs or fewer bands.")
                vector = None
                if not labels:
                    try:
                        tv, wkt = _vector_classes(training, class_field, ds, warn)
                    except NoOverlapError:
                        if len(inputs) == 1:
                            raise
                        warn(f"{what}: no training feature lies on it; the input is not used.")
                        continue
                    for c in tv.classes:
                        named.setdefault(c.value, c)
                    vector = (tv.features, wkt)
                source = _LabelSource(ds, labels[i] if labels else None, label_nodata, vector)
                nodata = _nodata_per_band(ds, indexes)
                from rasterio.windows import Window

                kept = 0
                for row in range(0, ds.height - patch_size + 1, patch_size):
                    check_cancelled(is_cancelled)
                    window = Window(0, row, ds.width, patch_size)
                    strip_y = source.read(window)
                    if not (strip_y != _LABEL_SENTINEL).any():
                        continue
                    strip_x = _read_bands(ds, indexes, window, nodata)
                    for col in range(0, ds.width - patch_size + 1, patch_size):
                        y = strip_y[:, col:col + patch_size]
                        x = strip_x[:, :, col:col + patch_size]
                        usable = (y != _LABEL_SENTINEL) & np.isfinite(x).all(axis=0)
                        if usable.sum() < max(1, patch_size * patch_size // 100):
                            continue
                        y = np.where(usable, y, _LABEL_SENTINEL)
                        xs.append(x.copy())
                        ys.append(y)
                        groups.append(_input_key(inputs, i) if validation == "inputs"
                                      else _block_key(i, row, col, block))
                        sources.append(i)
                        kept += 1
                    progress((i + (row + patch_size) / ds.height) / len(inputs))
                source.close()
                if kept == 0:
                    warn(f"{what}: no {patch_size} x {patch_size} tile holds labelled pixels with "
                         "valid data; the input is not used.")
    if not xs:
        raise NoDataError(
            "No labelled pixel with valid input data was found in any input (labels all nodata, "
            "outside the inputs, or where the inputs are nodata). Check the label nodata value "
            "and that the labels cover the inputs.")
    raw_y = np.stack(ys)
    values = sorted(int(v) for v in np.unique(raw_y) if v != _LABEL_SENTINEL)
    if label_nodata is not None:
        values = [v for v in values if v != int(label_nodata)]
    classes = _label_classes(values, labels[0] if labels else None, named)
    y = np.full(raw_y.shape, IGNORE, dtype="int64")
    for index, value in enumerate(values):
        y[raw_y == value] = index
    return SampleSet(np.stack(xs), y, np.array(groups), np.array(sources), list(chosen), classes,
                     list(inputs), "segmentation", patch_size, pixel_size)


def _patch_files(folder: str) -> list:
    if not folder or not os.path.isdir(folder):
        raise InputError(f"Patch folder '{folder}' does not exist or is not a folder.")
    classes = []
    for name in sorted(os.listdir(folder)):
        sub = os.path.join(folder, name)
        if not os.path.isdir(sub):
            continue
        files = sorted(os.path.join(sub, f) for f in os.listdir(sub)
                       if f.lower().endswith(_RASTER_EXTENSIONS))
        if files:
            classes.append((name, files))
    if not classes:
        raise NoDataError(
            f"The patch folder '{folder}' holds no sub-folder with rasters. Use one sub-folder per "
            "class, named after the class, holding that class's patch rasters (GeoTIFF).")
    return classes


def scan_patch_folder(folder: str, input_band_names=None, bands=None) -> dict:
    """Checks a patch folder without reading pixels: classes, band count and size of every patch.

    Returns:
        ``{"classes": [(name, files)], "bands": chosen names, "indexes": [...], "size": int}``.

    Raises:
        InputError: for mixed band counts or sizes (naming two files that differ), non-square
            patches or a single class.
    """
    classes = _patch_files(folder)
    if len(classes) < 2:
        raise NoDataError(f"The patch folder '{folder}' holds a single class "
                          f"({classes[0][0]}); a classifier needs at least two class sub-folders.")
    first = None
    with raster_io.gdal_env():
        for _, files in classes:
            for path in files:
                with raster_io.open_raster(path, "Patch") as ds:
                    shape = (ds.count, ds.height, ds.width)
                    if first is None:
                        first = (path, shape)
                        names = raster_band_names(ds, input_band_names, f"Patch '{path}'")
                        indexes, picked = _band_indexes(names, bands, f"Patch '{path}'")
                        pixel_size = raster_io.pixel_size_m(ds)
                    elif shape != first[1]:
                        raise InputError(
                            "The patch folder mixes band counts or sizes: "
                            f"'{os.path.relpath(first[0], folder)}' has {first[1][0]} bands of "
                            f"{first[1][2]} x {first[1][1]} px, '{os.path.relpath(path, folder)}' "
                            f"has {shape[0]} bands of {shape[2]} x {shape[1]} px. All patches "
                            "must have the same bands and size.")
    count, height, width = first[1]
    if height != width:
        raise InputError(f"Patches must be square; '{first[0]}' is {width} x {height} px.")
    return {"classes": classes, "bands": picked, "indexes": indexes, "size": width,
            "pixel_size": pixel_size}


def folder_samples(folder: str, bands=None, input_band_names=None,
                   progress: Progress = no_progress,
                   is_cancelled: IsCancelled = never_cancelled) -> SampleSet:
    """Reads every patch of a EuroSAT-style folder; each patch is its own validation group."""
    scan = scan_patch_folder(folder, input_band_names, bands)
    total = sum(len(f) for _, f in scan["classes"])
    xs, ys, groups, sources = [], [], [], []
    done = 0
    with raster_io.gdal_env():
        for index, (name, files) in enumerate(scan["classes"]):
            for path in files:
                check_cancelled(is_cancelled)
                with raster_io.open_raster(path, "Patch") as ds:
                    xs.append(_read_bands(ds, scan["indexes"], None,
                                          _nodata_per_band(ds, scan["indexes"])))
                ys.append(index)
                groups.append(os.path.relpath(path, folder))
                sources.append(index)
                done += 1
                progress(done / total)
    classes = [ClassInfo(i, name, palette_color(i)) for i, (name, _) in enumerate(scan["classes"])]
    return SampleSet(np.stack(xs), np.array(ys, dtype="int64"), np.array(groups),
                     np.array(sources), scan["bands"], classes, [folder], "patch_classification",
                     scan["size"], scan["pixel_size"])


def point_samples(inputs: Sequence[str], training: str, class_field: str, patch_size: int,
                  bands=None, input_band_names=None, validation: str = "inputs",
                  block_size: int = 0, progress: Progress = no_progress,
                  is_cancelled: IsCancelled = never_cancelled, warn: Log = no_log) -> SampleSet:
    """Cuts a ``patch_size`` patch centred on every labelled point (polygons: their centroid)."""
    from rasterio.windows import Window

    if not inputs:
        raise InputError("Patches around points need at least one input raster.")
    block = max(patch_size, int(block_size or 4 * patch_size))
    xs, ys, groups, sources = [], [], [], []
    named: dict = {}
    chosen, pixel_size, skipped = None, None, 0
    half = patch_size // 2
    with raster_io.gdal_env():
        for i, path in enumerate(inputs):
            what = f"Input raster '{os.path.basename(path)}'"
            with raster_io.open_raster(path, "Input raster") as ds:
                names = raster_band_names(ds, input_band_names, what)
                indexes, picked = _band_indexes(names, bands, what)
                if chosen is None:
                    chosen, pixel_size = picked, raster_io.pixel_size_m(ds)
                _check_size(ds, patch_size, what)
                try:
                    tv, _ = _vector_classes(training, class_field, ds, warn)
                except NoOverlapError:
                    if len(inputs) == 1:
                        raise
                    warn(f"{what}: no training point lies on it; the input is not used.")
                    continue
                if tv.geometry_kind != "point":
                    warn("Patch classification takes the centroid of each training polygon.")
                nodata = _nodata_per_band(ds, indexes)
                inverse = ~ds.transform
                for n, feature in enumerate(tv.features):
                    check_cancelled(is_cancelled)
                    named.setdefault(feature.class_value, next(
                        c for c in tv.classes if c.value == feature.class_value))
                    point = feature.geometry.Centroid()
                    col, row = inverse * (point.GetX(), point.GetY())
                    col0, row0 = int(math.floor(col)) - half, int(math.floor(row)) - half
                    if col0 < 0 or row0 < 0 or col0 + patch_size > ds.width or \
                            row0 + patch_size > ds.height:
                        skipped += 1
                        continue
                    x = _read_bands(ds, indexes, Window(col0, row0, patch_size, patch_size), nodata)
                    if not np.isfinite(x).all(axis=0).any():
                        skipped += 1
                        continue
                    xs.append(x)
                    ys.append(feature.class_value)
                    groups.append(_input_key(inputs, i) if validation == "inputs"
                                  else _block_key(i, row0 + half, col0 + half, block))
                    sources.append(i)
                    progress((i + (n + 1) / len(tv.features)) / len(inputs))
    if skipped:
        warn(f"{skipped} point(s) were skipped: their {patch_size} x {patch_size} patch reaches "
             "beyond the raster or holds no valid pixel.")
    if not xs:
        raise NoDataError(f"No training point has a full {patch_size} x {patch_size} patch "
                          "inside an input raster; use a smaller patch size or points further "
                          "from the raster edges.")
    values = sorted(set(ys))
    index = {v: k for k, v in enumerate(values)}
    classes = [ClassInfo(v, named[v].name, named[v].color) for v in values]
    return SampleSet(np.stack(xs), np.array([index[v] for v in ys], dtype="int64"),
                     np.array(groups), np.array(sources), list(chosen), classes, list(inputs),
                     "patch_classification", patch_size, pixel_size)


def split_validation(samples: SampleSet, fraction: float, seed: int, mode: str) -> np.ndarray:
    """Chooses the validation samples: whole groups (inputs, patch files or spatial blocks).

    Patch folders are split per class, so every class is validated. Returns a bool mask.

    Raises:
        InputError: when there are not enough groups to hold any out.
    """
    rng = np.random.default_rng(seed)
    n = len(samples.groups)
    mask = np.zeros(n, dtype=bool)
    if not 0.0 < fraction < 1.0:
        raise InputError(f"The validation fraction must be between 0 and 1, got {fraction}.")
    if samples.task == "patch_classification" and len(set(samples.groups)) == n:
        for k in range(len(samples.classes)):
            members = np.flatnonzero(samples.y == k)
            if members.size >= 2:
                take = max(1, int(round(fraction * members.size)))
                mask[rng.permutation(members)[:take]] = True
        return mask
    keys = sorted(set(samples.groups))
    if len(keys) < 2:
        hint = ("choose spatial blocks for validation, or give more inputs"
                if mode == "inputs" else "use a smaller validation block or a larger input")
        raise InputError(
            f"Validation holds out whole {'inputs' if mode == 'inputs' else 'spatial blocks'}, "
            f"but all samples come from one ({keys[0]}); {hint}.")
    order = [keys[i] for i in rng.permutation(len(keys))]
    counts = {k: int((samples.groups == k).sum()) for k in keys}
    held = 0
    for key in order[:-1]:
        if held >= fraction * n:
            break
        mask |= samples.groups == key
        held += counts[key]
    return mask


def band_statistics(x: np.ndarray, seed: int, max_values: int = 2_000_000) -> dict:
    """Per-band clip range (0.1th/99.9th percentile), mean and standard deviation of the clipped
    valid values of the training samples."""
    rng = np.random.default_rng(seed)
    stats = {"clip_min": [], "clip_max": [], "mean": [], "std": []}
    for b in range(x.shape[1]):
        values = x[:, b].ravel()
        values = values[np.isfinite(values)]
        if values.size == 0:
            raise NoDataError(f"Band {b + 1} holds no valid value in the training samples.")
        if values.size > max_values:
            values = rng.choice(values, max_values, replace=False)
        lo, hi = np.percentile(values, [0.1, 99.9])
        clipped = np.clip(values, lo, hi)
        std = float(clipped.std())
        stats["clip_min"].append(float(lo))
        stats["clip_max"].append(float(hi))
        stats["mean"].append(float(clipped.mean()))
        stats["std"].append(std if std > 1e-6 else 1.0)
    return stats


def class_weights(counts: np.ndarray) -> np.ndarray:
    """Median-frequency class weights (Eigen and Fergus 2015), clipped to [0.1, 10]."""
    counts = np.asarray(counts, dtype="float64")
    freq = counts / counts.sum()
    weights = np.median(freq[freq > 0]) / np.maximum(freq, 1e-12)
    return np.clip(weights, 0.1, 10.0).astype("float32")
