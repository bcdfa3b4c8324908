"""Training samples from a raster and a vector layer of labelled polygons or points.

Every pixel whose centre lies in a polygon (or the pixel under each point) becomes one sample.
The polygons are reprojected to the raster's CRS with OGR, invalid geometries are repaired (or
skipped and counted), and the polygon ids are rasterised ONCE onto the raster grid; the raster is
then read block by block and only the blocks that hold polygon pixels are read at all. This keeps
extraction linear in the polygon area and independent of the number of polygons.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..errors import InputError, NoDataError, NoOverlapError
from ..io import raster as raster_io
from ..io.vector import srs_from_wkt
from ..runtime import (
    IsCancelled, Log, Progress, check_cancelled, never_cancelled, no_log, no_progress, sub_progress,
)

from .training_layer import TrainingVector, VectorStats, read_training_vector

#: Largest id raster kept in memory; larger ones go to a temporary compressed GeoTIFF.
_ID_RASTER_IN_MEMORY_MB = 256


@dataclass
class Samples:
    """Pixels sampled under the training geometries.

    Attributes:
        X: (n_samples, n_bands) float32 pixel values.
        y: (n_samples,) int64 class values.
        groups: (n_samples,) int64 index of the feature (polygon or point) each pixel came from;
            the key of leak-free validation.
        classes: classes present in the samples, in increasing value.
        band_names: the raster's band descriptions ('' where unnamed).
        polygon_pixels: per feature: fid, class value, pixels extracted, pixels kept.
        stats: what happened to the training layer.
        dropped_nodata: polygon pixels dropped because a band was nodata.
        dropped_nonfinite: polygon pixels dropped because a band was NaN or infinite.
    """

    X: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    classes: list
    band_names: list
    polygon_pixels: list
    stats: VectorStats
    dropped_nodata: int = 0
    dropped_nonfinite: int = 0
    subsampled: dict = field(default_factory=dict)
    geometry_kind: str = "polygon"

    def class_counts(self) -> "OrderedDict[int, int]":
        """Returns the number of samples per class value."""
        values, counts = np.unique(self.y, return_counts=True)
        return OrderedDict((int(v), int(c)) for v, c in zip(values, counts))

    def polygons_per_class(self) -> "OrderedDict[int, int]":
        """Returns the number of distinct features (polygons or points) per class value."""
        result = OrderedDict()
        for c in self.classes:
            result[c.value] = int(np.unique(self.groups[self.y == c.value]).size)
        return result


def _pixel_window(transform, width: int, height: int, envelope: tuple) -> Optional[tuple]:
    """Returns (col_off, row_off, cols, rows) of the raster covering an (x0, x1, y0, y1) box."""
    inverse = ~transform
    xs, ys = (envelope[0], envelope[1]), (envelope[2], envelope[3])
    cols, rows = [], []
    for x in xs:
        for y in ys:
            c, r = inverse * (x, y)
            cols.append(c)
            rows.append(r)
    c0 = max(0, int(math.floor(min(cols))) - 1)
    c1 = min(width, int(math.ceil(max(cols))) + 1)
    r0 = max(0, int(math.floor(min(rows))) - 1)
    r1 = min(height, int(math.ceil(max(rows))) + 1)
    if c1 <= c0 or r1 <= r0:
        return None
    return c0, r0, c1 - c0, r1 - r0


def rasterise_feature_ids(features, dataset, window: tuple, wkt: str, path: Optional[str] = None):
    """Burns feature index + 1 of each training geometry into an int32 raster over ``window``.

    Pixels whose centre lies inside a polygon, and the pixel under each point, get the feature's
    index + 1; all others 0. Later features win where they overlap.

    Returns:
        An open GDAL dataset (in memory, or a GeoTIFF at ``path`` for big windows).
    """
    from osgeo import gdal, ogr

    col_off, row_off, cols, rows = window
    memory = ogr.GetDriverByName("Memory").CreateDataSource("landfusion_samples")
    srs = srs_from_wkt(wkt)
    layer = memory.CreateLayer("samples", srs=srs, geom_type=ogr.wkbUnknown)
    layer.CreateField(ogr.FieldDefn("sample_id", ogr.OFTInteger))
    definition = layer.GetLayerDefn()
    for index, item in enumerate(features):
        feature = ogr.Feature(definition)
        feature.SetField(0, index + 1)
        feature.SetGeometry(item.geometry)
        layer.CreateFeature(feature)
    a, b, c, d, e, f = (dataset.transform.a, dataset.transform.b, dataset.transform.c,
                        dataset.transform.d, dataset.transform.e, dataset.transform.f)
    origin_x = c + col_off * a + row_off * b
    origin_y = f + col_off * d + row_off * e
    if path is None:
        ids = gdal.GetDriverByName("MEM").Create("", cols, rows, 1, gdal.GDT_Int32)
    else:
        ids = gdal.GetDriverByName("GTiff").Create(
            path, cols, rows, 1, gdal.GDT_Int32,
            ["TILED=YES", "COMPRESS=DEFLATE", "ZLEVEL=1", "BIGTIFF=IF_SAFER", "SPARSE_OK=TRUE"])
    ids.SetGeoTransform((origin_x, a, b, origin_y, d, e))
    if wkt:
        ids.SetProjection(wkt)
    error = gdal.RasterizeLayer(ids, [1], layer, options=["ATTRIBUTE=sample_id"])
    if error != 0:
        raise InputError("The training geometries could not be rasterised onto the raster grid.")
    return ids


@dataclass
class SampleOptions:
    """Which training features to read and how many of their pixels to keep (see
    :func:`extract_samples`)."""

    layer_name: Optional[str] = None
    name_field: Optional[str] = None
    color_field: Optional[str] = None
    max_per_class: int = 0
    seed: int = 0
    memory_mb: float = raster_io.DEFAULT_MEMORY_MB

    def validated(self) -> "SampleOptions":
        """Returns a checked copy; raises :class:`InputError` naming the bad option."""
        o = dataclasses.replace(self, max_per_class=int(self.max_per_class or 0))
        if o.max_per_class < 0:
            raise InputError("The cap of samples per class must be 0 (no cap) or more.")
        if not o.memory_mb or o.memory_mb <= 0:
            raise InputError("The memory budget must be a positive number of megabytes.")
        return o


def extract_samples(
    raster_path: str,
    vector_path: str,
    class_field: str,
    progress: Progress = no_progress,
    is_cancelled: IsCancelled = never_cancelled,
    log: Log = no_log,
    warn: Log = no_log,
    **options,
) -> Samples:
    """Extracts the pixels under the training polygons (or points) of a vector layer.

    Args:
        raster_path: feature raster (any number of bands, any data type).
        vector_path: training layer OGR reads (``path|layername=name`` accepted), any CRS.
        class_field: integer or text field holding each feature's class.
        options: the fields of :class:`SampleOptions`: ``layer_name`` (layer of a multi-layer
            source); ``name_field``, ``color_field`` (optional fields with class names and
            colours); ``max_per_class`` (when > 0, classes with more polygon pixels are randomly
            subsampled to this many before any pixel is read; nodata pixels among them are then
            dropped); ``seed`` (of the subsampling); ``memory_mb`` (budget of one raster block).

    Raises:
        InputError, NoDataError, NoOverlapError: see the messages; each names the fix.
    """
    o = SampleOptions(**options).validated()
    with raster_io.gdal_env(), raster_io.open_raster(raster_path, "Input raster") as src:
        if abs(src.transform.b) > 1e-12 or abs(src.transform.d) > 1e-12:
            raise InputError("The input raster is rotated (its geotransform has rotation terms); "
                             "warp it to a north-up grid first.")
        wkt = src.crs.to_wkt() if src.crs else ""
        descriptions = raster_io.band_descriptions(src)
        vector = read_training_vector(vector_path, class_field, wkt, tuple(src.bounds),
                                      o.layer_name, o.name_field, o.color_field, warn)
        _log_vector(vector, class_field, log, warn)
        envelopes = np.array([f.geometry.GetEnvelope() for f in vector.features])
        window = _pixel_window(src.transform, src.width, src.height, (
            envelopes[:, 0].min(), envelopes[:, 1].max(),
            envelopes[:, 2].min(), envelopes[:, 3].max()))
        if window is None:
            raise NoOverlapError("The training features and the raster do not overlap.")
        check_cancelled(is_cancelled)
        extraction = _extract(src, vector, window, wkt, o, progress, is_cancelled)
    return _samples(extraction, vector, descriptions, o.max_per_class, log, warn)


def _log_vector(vector: TrainingVector, class_field: str, log: Log, warn: Log) -> None:
    """Says what happened to the features of the training layer."""
    stats = vector.stats
    if stats.reprojected:
        log(f"Training features reprojected from {vector.source_crs or 'their CRS'} to the "
            "raster's CRS.")
    if stats.repaired:
        warn(f"{stats.repaired} invalid training geometries were repaired.")
    if stats.skipped_invalid:
        warn(f"{stats.skipped_invalid} invalid training geometries could not be repaired and "
             "were skipped.")
    if stats.outside:
        warn(f"{stats.outside} training feature(s) lie outside the raster and were ignored.")
    if stats.null_class:
        warn(f"{stats.null_class} feature(s) have no class (null '{class_field}') and were "
             "ignored.")
    if stats.unsupported_geometry:
        warn(f"{stats.unsupported_geometry} feature(s) are neither polygons nor points and "
             "were ignored.")


def _extract(src, vector: TrainingVector, window: tuple, wkt: str, o: SampleOptions,
             progress: Progress, is_cancelled: IsCancelled) -> "_Extraction":
    """Rasterises the feature ids (to a temporary file when large) and reads their pixels."""
    temp_dir = None
    id_path = None
    _, _, cols, rows = window
    if cols * rows * 4 > _ID_RASTER_IN_MEMORY_MB * 1024 * 1024:
        temp_dir = tempfile.TemporaryDirectory(prefix="landfusion-samples-")
        id_path = os.path.join(temp_dir.name, "ids.tif")
    try:
        ids_ds = rasterise_feature_ids(vector.features, src, window, wkt, id_path)
        progress(0.1)
        extraction = _read_samples(src, ids_ds, window, vector, o,
                                   sub_progress(progress, 0.1, 1.0), is_cancelled)
        ids_ds = None
    finally:
        if temp_dir is not None:
            temp_dir.cleanup()
    return extraction


def _samples(extraction: "_Extraction", vector: TrainingVector, descriptions, max_per_class: int,
             log: Log, warn: Log) -> Samples:
    """The samples, with what was dropped said and classes without a sample left out."""
    groups, y, extracted = extraction.groups, extraction.y, extraction.extracted[1:]
    stats = vector.stats
    kept = np.bincount(groups, minlength=len(vector.features)) if groups.size else \
        np.zeros(len(vector.features), dtype=np.int64)
    polygon_pixels = [
        {"fid": int(f.fid), "class": int(f.class_value), "pixels": int(extracted[i]),
         "samples": int(kept[i])}
        for i, f in enumerate(vector.features)
    ]
    stats.no_pixel = int(np.sum(extracted == 0))
    if stats.no_pixel:
        noun = "points fall" if vector.geometry_kind == "point" else "polygons cover"
        warn(f"{stats.no_pixel} training {noun} no pixel centre of the raster (too small or "
             "outside) and gave no sample.")
    if extraction.nonfinite:
        warn(f"{extraction.nonfinite} training pixels hold NaN or infinite values in the raster "
             "and were dropped; set a nodata value or fill them.")
    if extraction.nodata_pixels:
        log(f"{extraction.nodata_pixels} training pixels are nodata in at least one band and "
            "were dropped.")
    if y.size == 0:
        raise NoDataError(
            "The training features cover no valid pixel of the raster (all their pixels are "
            "nodata, NaN or outside). Check the raster's nodata and the features' location.")
    present = sorted(int(v) for v in np.unique(y))
    for c in vector.classes:
        if c.value not in present:
            warn(f"Class '{c.name}' ({c.value}) has no valid sample pixel and is left out of the "
                 "model.")
    classes = [c for c in vector.classes if c.value in present]
    if extraction.subsampled:
        log("Subsampled to at most {} pixels per class: {}.".format(
            max_per_class, ", ".join(f"{v} ({n} available)"
                                     for v, n in extraction.subsampled.items())))
    return Samples(extraction.X, y, groups, classes, descriptions, polygon_pixels, stats,
                   extraction.nodata_pixels, extraction.nonfinite, extraction.subsampled,
                   vector.geometry_kind)


@dataclass
class _Extraction:
    """Gathers the valid pixels under the feature ids, block by block, into preallocated arrays.

    ``selection`` holds, per subsampled class, which of its pixels (in scan order) to keep.
    """

    src: object  # read only in ``read`` (the reader thread): GDAL handles are not shared
    ids_band: object
    window: tuple
    nodata: tuple  # nodata value of each band
    feature_class: np.ndarray  # class value of feature id (0: no feature)
    extracted: np.ndarray  # pixels per feature id, before subsampling and nodata
    selection: dict
    subsampled: dict
    X: np.ndarray
    groups: np.ndarray
    filled: int = 0
    nodata_pixels: int = 0
    nonfinite: int = 0
    taken: dict = field(default_factory=dict)

    def read(self, block) -> tuple:
        """The ids of a block and the raster rows that hold any (None when none does)."""
        from rasterio.windows import Window

        col_off, row_off, cols, _ = self.window
        ids = self.ids_band.ReadAsArray(0, block.row_off, cols, block.height)
        if not ids.any():
            return ids, None
        rows_with = np.flatnonzero(ids.any(axis=1))
        r0, r1 = int(rows_with[0]), int(rows_with[-1]) + 1
        data = self.src.read(window=Window(col_off, row_off + block.row_off + r0, cols, r1 - r0),
                             out_dtype="float32")
        return ids[r0:r1], data

    def work(self, block, item: tuple) -> None:
        ids, data = item
        if data is None:
            return
        inside = ids > 0
        pixel_ids = ids[inside]
        chosen = self._chosen(pixel_ids)
        pixels = data[:, inside][:, chosen]  # (bands, n)
        pixel_ids = pixel_ids[chosen]
        valid = np.isfinite(pixels).all(axis=0)
        self.nonfinite += int(np.sum(~valid))
        for b, value in enumerate(self.nodata):
            if value is not None and not (isinstance(value, float) and math.isnan(value)):
                is_nodata = valid & (pixels[b] == np.float32(value))
                self.nodata_pixels += int(np.sum(is_nodata))
                valid &= ~is_nodata
        n = int(valid.sum())
        self.X[self.filled:self.filled + n] = pixels[:, valid].T
        self.groups[self.filled:self.filled + n] = pixel_ids[valid].astype(np.int64) - 1
        self.filled += n

    def _chosen(self, pixel_ids: np.ndarray) -> np.ndarray:
        """Which pixels of a block the per-class subsample keeps (in scan order)."""
        chosen = np.ones(pixel_ids.size, dtype=bool)
        if self.selection:
            classes = self.feature_class[pixel_ids]
            for v, keep in self.selection.items():
                where = np.flatnonzero(classes == v)
                if where.size:
                    start = self.taken.get(v, 0)
                    chosen[where] = keep[start:start + where.size]
                    self.taken[v] = start + where.size
        return chosen

    def finish(self) -> None:
        """Gives the unused tail back (nodata pixels were dropped); a copy only when worth it."""
        capacity = self.X.shape[0]
        if self.filled < capacity:
            self.X = (self.X[:self.filled].copy() if self.filled < 0.9 * capacity
                      else self.X[:self.filled])
            self.groups = self.groups[:self.filled].copy()

    @property
    def y(self) -> np.ndarray:
        return (self.feature_class[self.groups + 1] if self.filled
                else np.zeros(0, dtype=np.int64))


def _read_samples(src, ids_ds, window: tuple, vector: TrainingVector, o: SampleOptions,
                  progress: Progress, is_cancelled: IsCancelled) -> _Extraction:
    """Reads the raster block-wise where the id raster is non-zero.

    A first pass over the (small, int32) id raster counts the pixels of every feature, so the
    per-class cap is drawn before any raster pixel is read and the sample array is allocated once.
    """
    _, _, cols, rows = window
    # Per pixel: the bands as float32 (read, then gathered) plus the int32 id and the masks.
    blocks = raster_io.plan_blocks(cols, rows, 8 * src.count + 16, o.memory_mb)
    ids_band = ids_ds.GetRasterBand(1)
    feature_class = np.array([0] + [f.class_value for f in vector.features], dtype=np.int64)
    extracted = np.zeros(len(feature_class), dtype=np.int64)
    for i, block in enumerate(blocks):
        check_cancelled(is_cancelled)
        ids = ids_band.ReadAsArray(0, block.row_off, cols, block.height)
        extracted += np.bincount(ids.ravel(), minlength=len(feature_class))
        progress(0.2 * (i + 1) / len(blocks))
    extracted[0] = 0
    totals = {v: int(extracted[feature_class == v].sum())
              for v in sorted({f.class_value for f in vector.features})}
    selection, subsampled = _subsample(totals, o.max_per_class, o.seed)
    capacity = sum(o.max_per_class if v in selection else n for v, n in totals.items())
    extraction = _Extraction(src, ids_band, window, tuple(src.nodatavals), feature_class,
                             extracted, selection, subsampled,
                             np.empty((capacity, src.count), dtype=np.float32),
                             np.empty(capacity, dtype=np.int64))
    raster_io.run_blocks(blocks, extraction.read, extraction.work,
                         sub_progress(progress, 0.2, 1.0), is_cancelled)
    extraction.finish()
    return extraction


def _subsample(totals: dict, max_per_class: int, seed: int) -> tuple:
    """Draws which pixels (by rank in scan order) of each over-full class to keep.

    Returns:
        ``({class: keep mask}, {class: pixels available})`` for the classes above the cap.
    """
    selection, subsampled = {}, {}
    rng = np.random.default_rng(seed)
    for v, total in totals.items():
        if max_per_class and 0 < max_per_class < total:
            keep = np.zeros(total, dtype=bool)
            keep[rng.choice(total, size=max_per_class, replace=False)] = True
            selection[v] = keep
            subsampled[v] = total
    return selection, subsampled


def samples_summary(samples: Samples) -> dict:
    """Returns per-class sample and polygon counts, and the per-polygon table, for reports."""
    counts = samples.class_counts()
    polygons = samples.polygons_per_class()
    return {
        "classes": [
            {**c.to_dict(), "samples": counts.get(c.value, 0), "polygons": polygons.get(c.value, 0),
             "available": samples.subsampled.get(c.value, counts.get(c.value, 0))}
            for c in samples.classes
        ],
        "total_samples": int(samples.y.size),
        "geometry": samples.geometry_kind,
        "dropped_nodata": samples.dropped_nodata,
        "dropped_nonfinite": samples.dropped_nonfinite,
        "vector": samples.stats.to_dict(),
        "features": samples.polygon_pixels,
    }
