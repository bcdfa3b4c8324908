"""Reference samples for an accuracy assessment: pairs of (map class, reference class).

Reference data may be a vector layer (points, or polygons with one sample per polygon by
majority or centroid, or every pixel of each polygon) read with OGR, or a reference class raster.
Vector data in another CRS is reprojected to the map's CRS. Samples outside the map, on map
nodata, or without a reference label are dropped and counted, never silently kept as a class.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np

from ..choices import POLYGON_MODES
from ..errors import CrsError, InputError, NoDataError, NoOverlapError
from ..io.raster import gdal_env, open_raster, plan_blocks, run_blocks
from ..io.vector import open_vector_layer, split_ogr_source, transform_to_raster
from ..runtime import (IsCancelled, Log, Progress, check_cancelled, never_cancelled, no_log,
                      no_progress)


@dataclass
class ReferenceSamples:
    """Paired labels and what happened to the rest of the reference data."""

    map_values: np.ndarray
    reference_values: np.ndarray
    source: str
    kind: str  # 'points', 'polygons', 'raster'
    independent: bool = True
    mode: str = ""
    features: int = 0
    outside: int = 0
    on_map_nodata: int = 0
    unlabelled: int = 0
    reference_names: Dict[int, str] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)
    #: Number of samples of each (map, reference) pair; None when each pair is one sample.
    weights: Optional[np.ndarray] = None

    @property
    def count(self) -> int:
        """Number of usable samples."""
        if self.weights is not None:
            return int(self.weights.sum())
        return int(self.map_values.size)


class _Labels:
    """Turns reference field values into integer classes: numbers as they are, names by the map's
    class names (case-insensitively), other names as new values after the map's."""

    def __init__(self, class_names: Dict[int, str]):
        self.by_name = {name.lower(): value for value, name in class_names.items()}
        self.new_names: Dict[str, tuple] = {}  # lower-case name -> (value, name as written)
        self.next_value = max(list(class_names) + [0]) + 1

    def parse(self, value) -> Optional[int]:
        """Returns the integer class of a field value, or None when it is empty."""
        if value is None:
            return None
        if isinstance(value, float):
            if np.isnan(value):
                return None
            if value != int(value):
                raise InputError(f"Reference class {value} is not an integer class value.")
            return int(value)
        if isinstance(value, (int, np.integer)):
            return int(value)
        text = str(value).strip()
        if not text:
            return None
        try:
            number = float(text)
        except ValueError:
            return self._by_name(text)
        if number != int(number):
            raise InputError(f"Reference class '{text}' is not an integer class value.")
        return int(number)

    def _by_name(self, text: str) -> int:
        key = text.lower()
        if key in self.by_name:
            return self.by_name[key]
        if key not in self.new_names:
            self.new_names[key] = (self.next_value, text)
            self.next_value += 1
        return self.new_names[key][0]

    @property
    def reference_names(self) -> Dict[int, str]:
        """Names the map does not know, by the value given to them."""
        return {v: text for v, text in self.new_names.values()}


@dataclass
class _VectorPairing:
    """Pairs the features of a reference layer with the map, one feature at a time."""

    src: object  # the open map (rasterio dataset)
    nodata: Optional[float]
    transform: object  # OGR transformation to the map's CRS, or None
    polygon_mode: str
    path: str
    labels: _Labels
    field_index: int
    pairs: Dict[tuple, int] = field(default_factory=dict)  # (map, reference) -> samples
    points: List[tuple] = field(default_factory=list)  # (x, y, reference): points, centroids
    features: int = 0
    outside: int = 0
    on_nodata: int = 0
    unlabelled: int = 0

    def add_pair(self, map_value: int, reference_value: int, count: int = 1) -> None:
        key = (int(map_value), int(reference_value))
        self.pairs[key] = self.pairs.get(key, 0) + count

    def add_feature(self, feature) -> None:
        """Counts one feature and adds its sample(s) (points are paired later, all at once)."""
        from osgeo import ogr

        self.features += 1
        geometry = feature.GetGeometryRef()
        if geometry is None or geometry.IsEmpty():
            self.outside += 1
            return
        i = self.field_index
        label = self.labels.parse(feature.GetField(i) if feature.IsFieldSet(i)
                                  and not feature.IsFieldNull(i) else None)
        if label is None:
            self.unlabelled += 1
            return
        geometry = geometry.Clone()
        if self.transform is not None:
            geometry.Transform(self.transform)
        flat = ogr.GT_Flatten(geometry.GetGeometryType())
        if flat in (ogr.wkbPoint, ogr.wkbMultiPoint):
            parts = ([geometry.GetGeometryRef(i) for i in range(geometry.GetGeometryCount())]
                     if flat == ogr.wkbMultiPoint else [geometry])
            self.points.extend((part.GetX(), part.GetY(), label) for part in parts)
        elif flat in (ogr.wkbPolygon, ogr.wkbMultiPolygon):
            self.add_polygon(geometry, label)
        else:
            raise InputError(f"Reference layer '{self.path}' holds {geometry.GetGeometryName()} "
                             "geometries; use points or polygons.")

    def add_polygon(self, geometry, label: int) -> None:
        """One sample (majority or centroid) or every pixel of a polygon."""
        if self.polygon_mode == "centroid":
            centre = geometry.Centroid()
            if not geometry.Contains(centre):
                centre = geometry.PointOnSurface()
            self.points.append((centre.GetX(), centre.GetY(), label))
            return
        histogram = polygon_pixels(self.src, geometry, self.nodata)
        if histogram is None:
            self.outside += 1
        elif not histogram:
            self.on_nodata += 1
        elif self.polygon_mode == "majority":
            # ties go to the smallest class value, so the result never depends on order
            top = max(histogram.values())
            self.add_pair(min(v for v, n in histogram.items() if n == top), label)
        else:
            for value, count in histogram.items():
                self.add_pair(value, label, count)

    def pair_points(self, is_cancelled: IsCancelled) -> None:
        """Reads the map under every point, strip by strip."""
        if not self.points:
            return
        src = self.src
        xy = np.array([(x, y) for x, y, _ in self.points], dtype=np.float64)
        labels = np.array([lab for _, _, lab in self.points], dtype=np.int64)
        cols, rows = ~src.transform * (xy[:, 0], xy[:, 1])
        finite = np.isfinite(rows) & np.isfinite(cols)
        rows = np.floor(np.where(finite, rows, -1)).astype(np.int64)
        cols = np.floor(np.where(finite, cols, -1)).astype(np.int64)
        inside = (rows >= 0) & (rows < src.height) & (cols >= 0) & (cols < src.width)
        self.outside += int((~inside).sum())
        values = _values_at(src, rows[inside], cols[inside], is_cancelled)
        keep = np.ones(values.size, bool) if self.nodata is None else values != self.nodata
        self.on_nodata += int((~keep).sum())
        for value, label in zip(values[keep].tolist(), labels[inside][keep].tolist()):
            self.add_pair(int(value), int(label))

    def samples(self, kind: str) -> ReferenceSamples:
        keys = np.array(list(self.pairs), dtype=np.int64).reshape(-1, 2)
        polygons = kind == "polygons"
        return ReferenceSamples(
            keys[:, 0], keys[:, 1], self.path, "polygons" if polygons else "points",
            independent=not (polygons and self.polygon_mode == "all_pixels"),
            mode=self.polygon_mode if polygons else "", features=self.features,
            outside=self.outside, on_map_nodata=self.on_nodata, unlabelled=self.unlabelled,
            reference_names=self.labels.reference_names,
            weights=np.array(list(self.pairs.values()), dtype=np.int64))


def read_vector_reference(
    classification: str,
    reference: str,
    class_field: str,
    class_names: Dict[int, str],
    polygon_mode: str = "majority",
    layer_name: Optional[str] = None,
    map_nodata: Optional[float] = None,
    progress: Progress = no_progress,
    is_cancelled: IsCancelled = never_cancelled,
    log: Log = no_log,
    warn: Log = no_log,
) -> ReferenceSamples:
    """Pairs the reference class of each point/polygon with the map class under it.

    Args:
        classification: class raster (the map).
        reference: vector file (any OGR format); ``file|layername=x`` is understood.
        class_field: field holding the reference class (integer value, or class name).
        class_names: map class names by value; reference names are matched case-insensitively.
        polygon_mode: 'majority', 'centroid' or 'all_pixels' (see :data:`POLYGON_MODES`).

    Raises:
        InputError: missing field, unreadable layer, mixed or unsupported geometries.
        CrsError: a layer without CRS.
        NoOverlapError: no feature inside the raster.
        NoDataError: no labelled feature on classified pixels.
    """
    if polygon_mode not in POLYGON_MODES:
        raise InputError(f"Unknown polygon mode '{polygon_mode}'; use one of {POLYGON_MODES}.")
    path, _ = split_ogr_source(reference)
    ds, layer = open_vector_layer(reference, layer_name, "Reference layer")
    field_index = _field_index(layer, class_field, path)
    with gdal_env(), open_raster(classification, "Classification raster") as src:
        pairing = _VectorPairing(
            src, src.nodata if map_nodata is None else map_nodata,
            _transform_to_map(src, layer, path, log), polygon_mode, path,
            _Labels(class_names), field_index)
        total = max(1, layer.GetFeatureCount())
        layer.ResetReading()
        for number, feature in enumerate(layer):
            if number % 200 == 0:
                check_cancelled(is_cancelled)
                progress(0.9 * number / total)
            pairing.add_feature(feature)
        pairing.pair_points(is_cancelled)
    progress(1.0)
    samples = pairing.samples(_geometry_kind(layer))
    ds = None  # the layer was alive as long as its data source
    _finish(samples, warn)
    return samples


def _field_index(layer, class_field: str, path: str) -> int:
    """The index of the reference class field (matched case-insensitively)."""
    definition = layer.GetLayerDefn()
    fields = [definition.GetFieldDefn(i).GetName() for i in range(definition.GetFieldCount())]
    if not class_field:
        raise InputError(f"Choose the reference class field of '{path}' (fields: "
                         f"{', '.join(fields) or 'none'}).")
    matches = [f for f in fields if f.lower() == class_field.lower()]
    if not matches:
        raise InputError(f"Reference layer '{path}' has no field '{class_field}'; its fields "
                         f"are: {', '.join(fields) or 'none'}. Choose the field holding the "
                         "reference class.")
    return definition.GetFieldIndex(matches[0])


def _geometry_kind(layer) -> str:
    """'points', 'polygons' or 'unknown' (from the layer's declared geometry type)."""
    from osgeo import ogr

    return {ogr.wkbPoint: "points", ogr.wkbMultiPoint: "points", ogr.wkbPolygon: "polygons",
            ogr.wkbMultiPolygon: "polygons"}.get(ogr.GT_Flatten(layer.GetGeomType()), "unknown")


def _transform_to_map(src, layer, path: str, log: Log):
    """The OGR transformation from the layer's CRS to the map's (None when they match)."""
    if src.crs is None:
        raise CrsError("The classification raster has no CRS; assign one before assessing it.")
    transform, crs_status = transform_to_raster(layer.GetSpatialRef(), src.crs.to_wkt())
    if crs_status == "missing":
        raise CrsError(f"Reference layer '{path}' has no CRS; assign its CRS (Layer "
                       "Properties > Source) so it can be matched to the classification "
                       "raster.")
    if crs_status == "reprojected":
        log(f"Reference layer reprojected on the fly to the classification raster's CRS "
            f"({src.crs.to_string()}).")
    return transform


def polygon_pixels(src, geometry, nodata,
                   budget_pixels: int = 4_000_000) -> Optional[Dict[int, int]]:
    """Histogram {map value: pixels} of the pixels whose centres fall in ``geometry``.

    Returns None when the polygon is outside the map. The polygon's window is read in row strips,
    so a polygon as large as the scene costs no more memory than a strip. A polygon smaller than
    a pixel that covers no pixel centre gets the pixel under its centroid.
    """
    import json

    from rasterio.features import geometry_mask
    from rasterio.windows import Window, from_bounds

    minx, maxx, miny, maxy = geometry.GetEnvelope()
    window = from_bounds(minx, miny, maxx, maxy, transform=src.transform)
    col0 = max(0, int(np.floor(window.col_off)))
    row0 = max(0, int(np.floor(window.row_off)))
    col1 = min(src.width, int(np.ceil(window.col_off + window.width)))
    row1 = min(src.height, int(np.ceil(window.row_off + window.height)))
    if col1 <= col0 or row1 <= row0:
        return None
    shape = json.loads(geometry.ExportToJson())
    histogram: Dict[int, int] = {}
    covered = False
    strip = max(1, budget_pixels // (col1 - col0))
    for top in range(row0, row1, strip):
        part = Window(col0, top, col1 - col0, min(strip, row1 - top))
        inside = geometry_mask([shape], out_shape=(int(part.height), int(part.width)),
                               transform=src.window_transform(part), invert=True)
        if not inside.any():
            continue
        covered = True
        values = src.read(1, window=part)[inside]
        _add_histogram(histogram, values, nodata)
    if not covered:
        centre = geometry.Centroid()
        col, row = ~src.transform * (centre.GetX(), centre.GetY())
        row, col = int(np.floor(row)), int(np.floor(col))
        if not (0 <= row < src.height and 0 <= col < src.width):
            return None
        _add_histogram(histogram, src.read(1, window=Window(col, row, 1, 1)).ravel(), nodata)
    return histogram


def _add_histogram(histogram: Dict[int, int], values: np.ndarray, nodata) -> None:
    if nodata is not None and not np.isnan(nodata):
        values = values[values != nodata]
    uniq, counts = np.unique(values, return_counts=True)
    for value, count in zip(uniq.tolist(), counts.tolist()):
        histogram[int(value)] = histogram.get(int(value), 0) + int(count)


def _values_at(src, rows: np.ndarray, cols: np.ndarray, is_cancelled: IsCancelled) -> np.ndarray:
    """Reads band 1 at the given pixels, one full-width row strip at a time (only strips that hold
    points are read)."""
    from rasterio.windows import Window

    out = np.zeros(rows.size, dtype=np.dtype(src.dtypes[0]))
    if rows.size == 0:
        return out
    strip = max(1, int(64 * 1024 * 1024 // max(1, src.width * np.dtype(src.dtypes[0]).itemsize)))
    for top in range(0, src.height, strip):
        check_cancelled(is_cancelled)
        hit = (rows >= top) & (rows < top + strip)
        if not hit.any():
            continue
        r0, r1 = int(rows[hit].min()), int(rows[hit].max()) + 1
        data = src.read(1, window=Window(0, r0, src.width, r1 - r0))
        out[hit] = data[rows[hit] - r0, cols[hit]]
    return out


@dataclass
class _RasterPairing:
    """Pairs map and reference pixels block by block (the reference read on the map's grid)."""

    src: object
    reader: object  # the reference, or a WarpedVRT of it on the map's grid
    nodata: Optional[float]
    reference_nodata: Optional[float]
    pairs: Dict[tuple, int] = field(default_factory=dict)
    on_nodata: int = 0

    def read(self, block) -> tuple:
        return (self.src.read(1, window=block.window),
                self.reader.read(1, window=block.window))

    def work(self, block, data: tuple) -> None:
        m, r = data
        valid = (np.ones(r.shape, bool) if self.reference_nodata is None
                 else r != self.reference_nodata)
        if self.nodata is not None:
            on_nodata = valid & (m == self.nodata)
            self.on_nodata += int(on_nodata.sum())
            valid &= ~on_nodata
        mv = m[valid].astype(np.int64)
        rv = r[valid].astype(np.int64)
        if mv.size == 0:
            return
        keys, counts = np.unique(np.stack([mv, rv]), axis=1, return_counts=True)
        for (a, b), c in zip(keys.T.tolist(), counts.tolist()):
            self.pairs[(a, b)] = self.pairs.get((a, b), 0) + c


def read_raster_reference(
    classification: str,
    reference: str,
    map_nodata: Optional[float] = None,
    reference_nodata: Optional[float] = None,
    memory_mb: float = 64,
    progress: Progress = no_progress,
    is_cancelled: IsCancelled = never_cancelled,
    log: Log = no_log,
    warn: Log = no_log,
) -> ReferenceSamples:
    """Pairs every valid reference-raster pixel with the map pixel at the same place.

    A reference raster on another grid or CRS is warped on the fly onto the map's grid with
    nearest-neighbour resampling. Pixels of a reference raster are not independent samples.
    """
    with gdal_env(), open_raster(classification, "Classification raster") as src, \
            open_raster(reference, "Reference raster") as ref:
        if not np.issubdtype(np.dtype(ref.dtypes[0]), np.integer):
            raise InputError(f"Reference raster '{reference}' has {ref.dtypes[0]} values; it must "
                             "hold integer class values.")
        if ref.crs is None or src.crs is None:
            raise CrsError("The classification or the reference raster has no CRS; assign one.")
        warp_nodata = ref.nodata if reference_nodata is None else reference_nodata
        if warp_nodata is None:
            warp_nodata = np.iinfo(np.dtype(ref.dtypes[0])).max
            log("Reference raster has no nodata value; pixels outside it are marked "
                f"{warp_nodata}.")
        with _on_map_grid(src, ref, warp_nodata, log) as reader:
            pairing = _RasterPairing(src, reader, src.nodata if map_nodata is None
                                     else map_nodata, warp_nodata)
            blocks = plan_blocks(src.width, src.height, 48, memory_mb)
            run_blocks(blocks, pairing.read, pairing.work, progress, is_cancelled,
                       read_ahead=False)
    keys = np.array(list(pairing.pairs), dtype=np.int64).reshape(-1, 2)
    reps = np.array(list(pairing.pairs.values()), dtype=np.int64)
    samples = ReferenceSamples(keys[:, 0], keys[:, 1], reference, "raster", independent=False,
                               mode="all_pixels", features=int(reps.sum() + pairing.on_nodata),
                               outside=0, on_map_nodata=pairing.on_nodata, weights=reps)
    _finish(samples, warn)
    return samples


@contextlib.contextmanager
def _on_map_grid(src, ref, nodata, log: Log):
    """The reference as is when it is on the map's grid, else warped onto it (nearest)."""
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT

    if ref.crs == src.crs and ref.transform == src.transform and ref.shape == src.shape:
        yield ref
        return
    log("Reference raster is on another grid; warping it onto the classification grid "
        "(nearest neighbour).")
    with WarpedVRT(ref, crs=src.crs, transform=src.transform, width=src.width,
                   height=src.height, resampling=Resampling.nearest, nodata=nodata) as vrt:
        yield vrt


def _finish(samples: ReferenceSamples, warn: Log) -> None:
    """Adds the notes and raises when no sample is usable."""
    where = f"Reference '{samples.source}'"
    if samples.kind == "raster" and samples.count == 0:
        raise NoOverlapError(f"{where} has no labelled pixel on a classified pixel of the map "
                             f"({samples.on_map_nodata} on map nodata); check that both rasters "
                             "cover the same area and that their nodata values are right.")
    if samples.features == 0:
        raise NoDataError(f"{where} holds no feature; add labelled reference samples.")
    if samples.count == 0 and samples.outside and samples.on_map_nodata == 0 \
            and samples.outside >= samples.features - samples.unlabelled:
        raise NoOverlapError(
            f"{where}: none of its {samples.features} features lies inside the classification "
            "raster. Check that both cover the same area and that the layer's CRS is right.")
    if samples.count == 0:
        if samples.unlabelled == samples.features:
            raise NoDataError(f"{where}: no feature has a reference class (the class field is "
                              "empty everywhere); label the samples first.")
        raise NoDataError(f"{where}: no labelled sample falls on a classified pixel "
                          f"({samples.outside} outside the raster, {samples.on_map_nodata} on map "
                          f"nodata, {samples.unlabelled} without a reference class).")
    if samples.outside:
        samples.notes.append(f"{samples.outside} reference feature(s) outside the classification "
                             "raster were skipped.")
    if samples.on_map_nodata:
        samples.notes.append(f"{samples.on_map_nodata} reference sample(s) on map nodata were "
                             "skipped (nodata is never counted as a class).")
    if samples.unlabelled:
        samples.notes.append(f"{samples.unlabelled} reference feature(s) without a reference "
                             "class (empty/NULL field) were skipped.")
    if samples.reference_names:
        samples.notes.append("Reference class name(s) not used by the map: "
                             + ", ".join(f"'{n}'" for n in samples.reference_names.values())
                             + "; they are kept as classes the map never assigns.")
    if not samples.independent:
        samples.notes.append(
            "Samples are all pixels of the reference " + ("polygons" if samples.kind ==
                                                          "polygons" else "raster")
            + ": neighbouring pixels are NOT independent samples, so the confidence intervals "
              "are too narrow and the sample counts overstate the evidence.")
    for note in samples.notes:
        warn(note)
