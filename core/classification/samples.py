"""Training samples from a raster and a vector layer of labelled polygons or points.

Every pixel whose centre lies in a polygon (or the pixel under each point) becomes one sample.
The polygons are reprojected to the raster's CRS with OGR, invalid geometries are repaired (or
skipped and counted), and the polygon ids are rasterised ONCE onto the raster grid; the raster is
then read block by block and only the blocks that hold polygon pixels are read at all. This keeps
extraction linear in the polygon area and independent of the number of polygons.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..io import raster as raster_io
from ..io.classmap import ClassInfo, palette_color, parse_color
from ..errors import InputError, NoDataError, NoOverlapError
from ..io.vector import open_vector_layer, srs_from_wkt, transform_to_raster
from ..runtime import (
    IsCancelled, Log, Progress, check_cancelled, never_cancelled, no_log, no_progress, sub_progress,
)

#: Largest id raster kept in memory; larger ones go to a temporary compressed GeoTIFF.
_ID_RASTER_IN_MEMORY_MB = 256


@dataclass
class VectorStats:
    """What happened to the features of the training layer."""

    features: int = 0
    used: int = 0
    null_class: int = 0
    null_geometry: int = 0
    repaired: int = 0
    skipped_invalid: int = 0
    outside: int = 0
    unsupported_geometry: int = 0
    reprojected: bool = False
    no_pixel: int = 0

    def to_dict(self) -> dict:
        """Returns a JSON-friendly dict."""
        return dict(self.__dict__)


@dataclass
class TrainingFeature:
    """One usable training polygon or point, already in the raster's CRS."""

    fid: int
    class_value: int
    geometry: object  # ogr.Geometry


@dataclass
class TrainingVector:
    """The training layer read into the raster's CRS, with its classes."""

    features: list
    classes: list
    stats: VectorStats
    geometry_kind: str  # "polygon" or "point"
    source_crs: str = ""


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


def _repair(geometry, stats: VectorStats):
    """Returns a valid geometry, or None when it cannot be repaired."""
    if geometry.IsValid():
        return geometry
    repaired = None
    try:
        repaired = geometry.MakeValid()
    except (RuntimeError, AttributeError):
        repaired = None
    if repaired is None or repaired.IsEmpty() or not repaired.IsValid():
        try:
            repaired = geometry.Buffer(0)
        except RuntimeError:
            repaired = None
    if repaired is None or repaired.IsEmpty() or not repaired.IsValid():
        stats.skipped_invalid += 1
        return None
    # MakeValid may return a collection mixing polygons and slivers of lines; keep the areas.
    from osgeo import ogr

    if ogr.GT_Flatten(repaired.GetGeometryType()) == ogr.wkbGeometryCollection:
        polygons = ogr.Geometry(ogr.wkbMultiPolygon)
        for i in range(repaired.GetGeometryCount()):
            part = repaired.GetGeometryRef(i)
            kind = ogr.GT_Flatten(part.GetGeometryType())
            if kind == ogr.wkbPolygon:
                polygons.AddGeometry(part)
            elif kind == ogr.wkbMultiPolygon:
                for j in range(part.GetGeometryCount()):
                    polygons.AddGeometry(part.GetGeometryRef(j))
        if polygons.IsEmpty():
            stats.skipped_invalid += 1
            return None
        repaired = polygons
    stats.repaired += 1
    return repaired


def read_training_vector(
    vector_path: str,
    class_field: str,
    raster_crs_wkt: str,
    raster_bounds: tuple,
    layer_name: Optional[str] = None,
    name_field: Optional[str] = None,
    color_field: Optional[str] = None,
    warn: Log = no_log,
) -> TrainingVector:
    """Reads the training layer with OGR, in the raster's CRS, with one class per feature.

    Args:
        vector_path: a file OGR reads (``path|layername=name`` accepted).
        class_field: integer or text field with the class of each feature. Integer classes keep
            their values; text classes get ids 1, 2, ... in alphabetical order.
        raster_crs_wkt: CRS of the raster (WKT), '' when unknown.
        raster_bounds: (left, bottom, right, top) of the raster in its CRS.
        layer_name: layer of a multi-layer source.
        name_field: optional field with class names (else the text class or "Class <id>").
        color_field: optional field with class colours (#rrggbb or r,g,b); else a palette.

    Raises:
        InputError: missing field, unsupported geometry or class values.
        NoDataError: no feature has a class.
        NoOverlapError: every feature lies outside the raster.
    """
    from osgeo import ogr

    dataset, layer = open_vector_layer(vector_path, layer_name, "Training vector")
    definition = layer.GetLayerDefn()
    field_names = [definition.GetFieldDefn(i).GetName() for i in range(definition.GetFieldCount())]

    def field_index(name: str, what: str) -> int:
        if not name:
            raise InputError(f"Choose the {what} of the training layer.")
        lookup = {n.lower(): i for i, n in enumerate(field_names)}
        if name.lower() not in lookup:
            raise InputError(
                f"The training layer has no field '{name}' ({what}); its fields are: "
                f"{', '.join(field_names) or 'none'}."
            )
        return lookup[name.lower()]

    class_index = field_index(class_field, "class field")
    class_defn = definition.GetFieldDefn(class_index)
    class_type = class_defn.GetType()
    numeric = class_type in (ogr.OFTInteger, ogr.OFTInteger64, ogr.OFTReal)
    name_index = field_index(name_field, "class name field") if name_field else None
    color_index = field_index(color_field, "colour field") if color_field else None

    vector_srs = layer.GetSpatialRef()
    stats = VectorStats()
    source_crs = (vector_srs.GetName() or "") if vector_srs is not None else ""
    transform, crs_status = transform_to_raster(vector_srs, raster_crs_wkt)
    stats.reprojected = crs_status == "reprojected"
    if crs_status == "missing":
        warn("The training layer or the raster has no CRS; assuming both use the same one.")

    left, bottom, right, top = raster_bounds
    raster_box = ogr.CreateGeometryFromWkt(
        f"POLYGON(({left} {bottom},{right} {bottom},{right} {top},{left} {top},{left} {bottom}))")

    raw = []  # (fid, class key, name, colour, geometry)
    kinds = set()
    layer.ResetReading()
    for feature in layer:
        stats.features += 1
        value = feature.GetField(class_index) if feature.IsFieldSetAndNotNull(class_index) else None
        if value is None or (isinstance(value, str) and not value.strip()):
            stats.null_class += 1
            continue
        geometry = feature.GetGeometryRef()
        if geometry is None or geometry.IsEmpty():
            stats.null_geometry += 1
            continue
        geometry = geometry.Clone()
        flat = ogr.GT_Flatten(geometry.GetGeometryType())
        if flat in (ogr.wkbPolygon, ogr.wkbMultiPolygon, ogr.wkbCurvePolygon, ogr.wkbMultiSurface):
            kind = "polygon"
            if flat in (ogr.wkbCurvePolygon, ogr.wkbMultiSurface):
                geometry = geometry.GetLinearGeometry()
        elif flat in (ogr.wkbPoint, ogr.wkbMultiPoint):
            kind = "point"
        else:
            stats.unsupported_geometry += 1
            continue
        geometry.FlattenTo2D()
        if kind == "polygon":
            geometry = _repair(geometry, stats)
            if geometry is None:
                continue
        if transform is not None:
            try:
                if geometry.Transform(transform) != 0:
                    raise RuntimeError("transformation failed")
            except RuntimeError:
                stats.outside += 1
                continue
        if not geometry.Intersects(raster_box):
            stats.outside += 1
            continue
        kinds.add(kind)
        name = feature.GetField(name_index) if name_index is not None and \
            feature.IsFieldSetAndNotNull(name_index) else None
        colour = feature.GetField(color_index) if color_index is not None and \
            feature.IsFieldSetAndNotNull(color_index) else None
        raw.append((feature.GetFID(), value, name, colour, geometry))
    dataset = None

    if stats.unsupported_geometry and not raw and not stats.outside:
        raise InputError(
            f"The training layer has {stats.unsupported_geometry} feature(s) that are neither "
            "polygons nor points (lines?). Use polygons or points.")
    if stats.features == 0:
        raise NoDataError("The training layer has no features; digitise polygons or points "
                          "with a class first.")
    if stats.null_class == stats.features:
        raise NoDataError(
            f"The class field '{class_field}' is empty (null) in all {stats.features} features of "
            "the training layer; fill it or choose another field.")
    if not raw:
        if stats.outside:
            raise NoOverlapError(
                f"All {stats.outside} training features lie outside the raster (after "
                f"reprojection to its CRS{' from ' + source_crs if source_crs else ''}). Check "
                "that the training layer and the raster cover the same area.")
        raise NoDataError(
            "No training feature is usable: "
            f"{stats.null_geometry} without geometry, {stats.skipped_invalid} invalid beyond "
            f"repair, {stats.unsupported_geometry} not polygons or points.")
    if len(kinds) > 1:
        warn("The training layer mixes polygons and points; both are used.")

    # Class ids: integer classes keep their value; text classes are numbered 1.. alphabetically.
    if numeric:
        for _, value, *_ in raw:
            number = float(value)
            if not number.is_integer() or number < 0 or number > 65534:
                raise InputError(
                    f"Class value {value} in field '{class_field}' is not an integer between 0 and "
                    "65534. Use integer class ids or a text field with class names.")
        keys = {value: int(float(value)) for _, value, *_ in raw}
    else:
        keys, spelled = _text_class_keys([value for _, value, *_ in raw], class_field, warn)
    names, colours = {}, {}
    features = []
    for fid, value, name, colour, geometry in raw:
        key = value if numeric else spelled[_class_key(value)]
        class_value = keys[key]
        if class_value not in names:
            names[class_value] = str(name).strip() if name not in (None, "") else (
                f"Class {class_value}" if numeric else key)
        if colour not in (None, "") and class_value not in colours:
            colours[class_value] = parse_color(colour)
        features.append(TrainingFeature(fid, class_value, geometry))
    classes = [ClassInfo(v, names[v], colours.get(v) or palette_color(i))
               for i, v in enumerate(sorted(names))]
    _refuse_same_names(classes)
    stats.used = len(features)
    return TrainingVector(features, classes, stats, "point" if kinds == {"point"} else "polygon",
                          source_crs)


def _class_key(value) -> str:
    """Class names compared without case and extra whitespace ("Forest" = "forest " = "FOREST")."""
    return " ".join(str(value).split()).casefold()


def _text_class_keys(values, class_field: str, warn: Log) -> tuple:
    """Numbers text classes 1.. alphabetically, merging spellings that differ only by case or
    whitespace into one class (named by its most frequent spelling), with a warning.

    Returns:
        ``({spelling: class id}, {class key: spelling})``.
    """
    from collections import Counter

    counts = Counter(" ".join(str(v).split()) for v in values)
    groups = {}
    for text, count in counts.items():
        groups.setdefault(_class_key(text), []).append((count, text))
    spelled = {}
    for key, variants in groups.items():
        variants.sort(key=lambda item: (-item[0], item[1]))
        spelled[key] = variants[0][1]
        if len(variants) > 1:
            shown = ", ".join(f"'{t}' ({n})" for n, t in variants)
            warn(f"Class field '{class_field}': {shown} differ only by case or spaces; they are "
                 f"merged into one class '{variants[0][1]}'. Correct the training layer if they "
                 "were meant to be different classes.")
    texts = sorted(spelled.values(), key=lambda t: (t.casefold(), t))
    return {text: i + 1 for i, text in enumerate(texts)}, spelled


def _refuse_same_names(classes) -> None:
    """Raises InputError when class ids carry names that differ only by case or whitespace."""
    seen = {}
    for c in classes:
        other = seen.setdefault(_class_key(c.name), c)
        if other is not c:
            raise InputError(
                f"Class ids {other.value} and {c.value} are both named '{other.name}'/'{c.name}' "
                "(names differing only by case or spaces). Give them distinct names, or the same "
                "class id if they are one class.")


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


def extract_samples(
    raster_path: str,
    vector_path: str,
    class_field: str,
    layer_name: Optional[str] = None,
    name_field: Optional[str] = None,
    color_field: Optional[str] = None,
    max_per_class: int = 0,
    seed: int = 0,
    memory_mb: float = raster_io.DEFAULT_MEMORY_MB,
    progress: Progress = no_progress,
    is_cancelled: IsCancelled = never_cancelled,
    log: Log = no_log,
    warn: Log = no_log,
) -> Samples:
    """Extracts the pixels under the training polygons (or points) of a vector layer.

    Args:
        raster_path: feature raster (any number of bands, any data type).
        vector_path: training layer OGR reads (``path|layername=name`` accepted), any CRS.
        class_field: integer or text field holding each feature's class.
        layer_name: layer of a multi-layer source.
        name_field, color_field: optional fields with class names and colours.
        max_per_class: when > 0, classes with more polygon pixels are randomly subsampled to this
            many before any pixel is read (nodata pixels among them are then dropped).
        seed: seed of the subsampling.
        memory_mb: memory budget of one raster block.

    Raises:
        InputError, NoDataError, NoOverlapError: see the messages; each names the fix.
    """
    with raster_io.gdal_env(), raster_io.open_raster(raster_path, "Input raster") as src:
        if abs(src.transform.b) > 1e-12 or abs(src.transform.d) > 1e-12:
            raise InputError("The input raster is rotated (its geotransform has rotation terms); "
                             "warp it to a north-up grid first.")
        wkt = src.crs.to_wkt() if src.crs else ""
        descriptions = raster_io.band_descriptions(src)
        vector = read_training_vector(vector_path, class_field, wkt, tuple(src.bounds),
                                      layer_name, name_field, color_field, warn)
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

        envelopes = np.array([f.geometry.GetEnvelope() for f in vector.features])
        envelope = (envelopes[:, 0].min(), envelopes[:, 1].max(),
                    envelopes[:, 2].min(), envelopes[:, 3].max())
        window = _pixel_window(src.transform, src.width, src.height, envelope)
        if window is None:
            raise NoOverlapError("The training features and the raster do not overlap.")
        check_cancelled(is_cancelled)

        temp_dir = None
        id_path = None
        _, _, cols, rows = window
        if cols * rows * 4 > _ID_RASTER_IN_MEMORY_MB * 1024 * 1024:
            temp_dir = tempfile.TemporaryDirectory(prefix="landfusion-samples-")
            id_path = os.path.join(temp_dir.name, "ids.tif")
        try:
            ids_ds = rasterise_feature_ids(vector.features, src, window, wkt, id_path)
            progress(0.1)
            result = _read_samples(src, ids_ds, window, vector, memory_mb, max_per_class, seed,
                                   sub_progress(progress, 0.1, 1.0), is_cancelled)
            ids_ds = None
        finally:
            if temp_dir is not None:
                temp_dir.cleanup()

    X, y, groups, dropped_nodata, dropped_nonfinite, extracted, subsampled = result
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
    if dropped_nonfinite:
        warn(f"{dropped_nonfinite} training pixels hold NaN or infinite values in the raster and "
             "were dropped; set a nodata value or fill them.")
    if dropped_nodata:
        log(f"{dropped_nodata} training pixels are nodata in at least one band and were dropped.")
    if y.size == 0:
        raise NoDataError(
            "The training features cover no valid pixel of the raster (all their pixels are "
            "nodata, NaN or outside). Check the raster's nodata and the features' location.")

    present = sorted(int(v) for v in np.unique(y))
    missing = [c for c in vector.classes if c.value not in present]
    for c in missing:
        warn(f"Class '{c.name}' ({c.value}) has no valid sample pixel and is left out of the "
             "model.")
    classes = [c for c in vector.classes if c.value in present]

    if subsampled:
        log("Subsampled to at most {} pixels per class: {}.".format(
            max_per_class, ", ".join(f"{v} ({n} available)" for v, n in subsampled.items())))

    return Samples(X, y, groups, classes, descriptions, polygon_pixels, stats, dropped_nodata,
                   dropped_nonfinite, subsampled, vector.geometry_kind)


def _read_samples(src, ids_ds, window, vector, memory_mb, max_per_class, seed, progress,
                  is_cancelled):
    """Reads the raster block-wise where the id raster is non-zero.

    A first pass over the (small, int32) id raster counts the pixels of every feature, so the
    per-class cap is drawn before any raster pixel is read and the sample array is allocated once.
    """
    from rasterio.windows import Window

    col_off, row_off, cols, rows = window
    count = src.count
    nodata = [v for v in src.nodatavals]
    # Per pixel: the bands as float32 (read, then gathered) plus the int32 id and the masks.
    blocks = raster_io.plan_blocks(cols, rows, 8 * count + 16, memory_mb)
    ids_band = ids_ds.GetRasterBand(1)
    n_features = len(vector.features)
    feature_class = np.array([0] + [f.class_value for f in vector.features], dtype=np.int64)

    extracted = np.zeros(n_features + 1, dtype=np.int64)
    for i, block in enumerate(blocks):
        check_cancelled(is_cancelled)
        ids = ids_band.ReadAsArray(0, block.row_off, cols, block.height)
        extracted += np.bincount(ids.ravel(), minlength=n_features + 1)
        progress(0.2 * (i + 1) / len(blocks))
    extracted[0] = 0

    values = sorted({f.class_value for f in vector.features})
    totals = {v: int(extracted[feature_class == v].sum()) for v in values}
    selection, subsampled = {}, {}
    rng = np.random.default_rng(seed)
    for v in values:
        if max_per_class and 0 < max_per_class < totals[v]:
            keep = np.zeros(totals[v], dtype=bool)
            keep[rng.choice(totals[v], size=max_per_class, replace=False)] = True
            selection[v] = keep
            subsampled[v] = totals[v]
    taken = {v: 0 for v in values}
    capacity = sum(min(totals[v], max_per_class) if v in selection else totals[v] for v in values)
    X = np.empty((capacity, count), dtype=np.float32)
    groups = np.empty(capacity, dtype=np.int64)
    state = {"filled": 0, "nodata": 0, "nonfinite": 0}

    def read(block):
        ids = ids_band.ReadAsArray(0, block.row_off, cols, block.height)
        if not ids.any():
            return ids, None
        rows_with = np.flatnonzero(ids.any(axis=1))
        r0, r1 = int(rows_with[0]), int(rows_with[-1]) + 1
        ids = ids[r0:r1]
        data = src.read(window=Window(col_off, row_off + block.row_off + r0, cols, r1 - r0),
                        out_dtype="float32")
        return ids, data

    def work(block, item):
        ids, data = item
        if data is None:
            return
        inside = ids > 0
        pixel_ids = ids[inside]
        chosen = np.ones(pixel_ids.size, dtype=bool)
        if selection:
            classes = feature_class[pixel_ids]
            for v, keep in selection.items():
                where = np.flatnonzero(classes == v)
                if where.size:
                    chosen[where] = keep[taken[v]:taken[v] + where.size]
                    taken[v] += where.size
        pixels = data[:, inside][:, chosen]  # (bands, n)
        pixel_ids = pixel_ids[chosen]
        valid = np.isfinite(pixels).all(axis=0)
        state["nonfinite"] += int(np.sum(~valid))
        for b in range(count):
            value = nodata[b]
            if value is not None and not (isinstance(value, float) and math.isnan(value)):
                is_nodata = valid & (pixels[b] == np.float32(nodata[b]))
                state["nodata"] += int(np.sum(is_nodata))
                valid &= ~is_nodata
        n = int(valid.sum())
        start = state["filled"]
        X[start:start + n] = pixels[:, valid].T
        groups[start:start + n] = pixel_ids[valid].astype(np.int64) - 1
        state["filled"] += n

    raster_io.run_blocks(blocks, read, work, sub_progress(progress, 0.2, 1.0), is_cancelled)
    filled = state["filled"]
    if filled < capacity:
        # Nodata pixels were dropped: give the unused tail back (a copy only when it is worth it).
        X = X[:filled].copy() if filled < 0.9 * capacity else X[:filled]
        groups = groups[:filled].copy()
    y = feature_class[groups + 1] if filled else np.zeros(0, dtype=np.int64)
    return X, y, groups, state["nodata"], state["nonfinite"], extracted[1:], subsampled


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
