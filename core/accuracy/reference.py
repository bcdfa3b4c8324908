"""Reference samples for an accuracy assessment: pairs of (map class, reference class).

Reference data may be a vector layer (points, or polygons with one sample per polygon by
majority or centroid, or every pixel of each polygon) read with OGR, or a reference class raster.
Vector data in another CRS is reprojected to the map's CRS. Samples outside the map, on map
nodata, or without a reference label are dropped and counted, never silently kept as a class.
"""

from __future__ import annotations

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


def _add_pair(pairs: Dict[tuple, int], map_value: int, reference_value: int,
              count: int = 1) -> None:
    key = (int(map_value), int(reference_value))
    pairs[key] = pairs.get(key, 0) + count


def _parse_label(value, name_to_value: Dict[str, int], new_names: Dict[str, int],
                 next_value: List[int]):
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
        key = text.lower()
        if key in name_to_value:
            return name_to_value[key]
        if key not in new_names:
            new_names[key] = (next_value[0], text)
            next_value[0] += 1
        return new_names[key][0]
    if number != int(number):
        raise InputError(f"Reference class '{text}' is not an integer class value.")
    return int(number)


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
    from osgeo import ogr

    if polygon_mode not in POLYGON_MODES:
        raise InputError(f"Unknown polygon mode '{polygon_mode}'; use one of {POLYGON_MODES}.")
    path, _ = split_ogr_source(reference)
    ds, layer = open_vector_layer(reference, layer_name, "Reference layer")
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
    field_index = definition.GetFieldIndex(matches[0])
    geom_type = ogr.GT_Flatten(layer.GetGeomType())
    kind = {ogr.wkbPoint: "points", ogr.wkbMultiPoint: "points", ogr.wkbPolygon: "polygons",
            ogr.wkbMultiPolygon: "polygons"}.get(geom_type, "unknown")

    name_to_value = {name.lower(): value for value, name in class_names.items()}
    new_names: Dict[str, int] = {}
    next_value = [max(list(class_names) + [0]) + 1]

    with gdal_env(), open_raster(classification, "Classification raster") as src:
        nodata = src.nodata if map_nodata is None else map_nodata
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
        inverse = ~src.transform
        total = max(1, layer.GetFeatureCount())
        pairs: Dict[tuple, int] = {}  # (map value, reference value) -> number of samples
        features = outside = on_nodata = unlabelled = 0
        points: List[tuple] = []  # (row, col, reference) for points and centroids
        layer.ResetReading()
        for number, feature in enumerate(layer):
            if number % 200 == 0:
                check_cancelled(is_cancelled)
                progress(0.9 * number / total)
            features += 1
            geometry = feature.GetGeometryRef()
            if geometry is None or geometry.IsEmpty():
                outside += 1
                continue
            label = _parse_label(feature.GetField(field_index) if feature.IsFieldSet(field_index)
                                 and not feature.IsFieldNull(field_index) else None,
                                 name_to_value, new_names, next_value)
            if label is None:
                unlabelled += 1
                continue
            geometry = geometry.Clone()
            if transform is not None:
                geometry.Transform(transform)
            flat = ogr.GT_Flatten(geometry.GetGeometryType())
            if flat in (ogr.wkbPoint, ogr.wkbMultiPoint):
                parts = ([geometry.GetGeometryRef(i) for i in range(geometry.GetGeometryCount())]
                         if flat == ogr.wkbMultiPoint else [geometry])
                for part in parts:
                    points.append((part.GetX(), part.GetY(), label))
                continue
            if flat not in (ogr.wkbPolygon, ogr.wkbMultiPolygon):
                raise InputError(f"Reference layer '{path}' holds {geometry.GetGeometryName()} "
                                 "geometries; use points or polygons.")
            if polygon_mode == "centroid":
                centre = geometry.Centroid()
                if not geometry.Contains(centre):
                    centre = geometry.PointOnSurface()
                points.append((centre.GetX(), centre.GetY(), label))
                continue
            histogram = polygon_pixels(src, geometry, nodata)
            if histogram is None:
                outside += 1
                continue
            if not histogram:
                on_nodata += 1
                continue
            if polygon_mode == "majority":
                # ties go to the smallest class value, so the result never depends on order
                top = max(histogram.values())
                _add_pair(pairs, min(v for v, n in histogram.items() if n == top), label)
            else:
                for value, count in histogram.items():
                    _add_pair(pairs, value, label, count)

        if points:
            xy = np.array([(x, y) for x, y, _ in points], dtype=np.float64)
            labels = np.array([lab for _, _, lab in points], dtype=np.int64)
            cols, rows = inverse * (xy[:, 0], xy[:, 1])
            finite = np.isfinite(rows) & np.isfinite(cols)
            rows = np.floor(np.where(finite, rows, -1)).astype(np.int64)
            cols = np.floor(np.where(finite, cols, -1)).astype(np.int64)
            inside = (rows >= 0) & (rows < src.height) & (cols >= 0) & (cols < src.width)
            outside += int((~inside).sum())
            values = _values_at(src, rows[inside], cols[inside], is_cancelled)
            keep = np.ones(values.size, bool) if nodata is None else values != nodata
            on_nodata += int((~keep).sum())
            for value, label in zip(values[keep].tolist(), labels[inside][keep].tolist()):
                _add_pair(pairs, int(value), int(label))
    progress(1.0)
    ds = None

    keys = np.array(list(pairs), dtype=np.int64).reshape(-1, 2)
    samples = ReferenceSamples(
        keys[:, 0], keys[:, 1], path,
        "polygons" if kind == "polygons" else "points",
        independent=not (kind == "polygons" and polygon_mode == "all_pixels"),
        mode=polygon_mode if kind == "polygons" else "", features=features, outside=outside,
        on_map_nodata=on_nodata, unlabelled=unlabelled,
        reference_names={v: text for v, text in new_names.values()},
        weights=np.array(list(pairs.values()), dtype=np.int64))
    _finish(samples, warn)
    return samples


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
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT

    with gdal_env(), open_raster(classification, "Classification raster") as src, \
            open_raster(reference, "Reference raster") as ref:
        if not np.issubdtype(np.dtype(ref.dtypes[0]), np.integer):
            raise InputError(f"Reference raster '{reference}' has {ref.dtypes[0]} values; it must "
                             "hold integer class values.")
        if ref.crs is None or src.crs is None:
            raise CrsError("The classification or the reference raster has no CRS; assign one.")
        nodata = src.nodata if map_nodata is None else map_nodata
        ref_nodata = ref.nodata if reference_nodata is None else reference_nodata
        warp_nodata = ref_nodata
        if warp_nodata is None:
            warp_nodata = np.iinfo(np.dtype(ref.dtypes[0])).max
            log("Reference raster has no nodata value; pixels outside it are marked "
                f"{warp_nodata}.")
        same_grid = (ref.crs == src.crs and ref.transform == src.transform
                     and ref.shape == src.shape)
        if not same_grid:
            log("Reference raster is on another grid; warping it onto the classification grid "
                "(nearest neighbour).")
        reader = ref if same_grid else WarpedVRT(
            ref, crs=src.crs, transform=src.transform, width=src.width, height=src.height,
            resampling=Resampling.nearest, nodata=warp_nodata)
        pairs: Dict[tuple, int] = {}
        state = {"nodata": 0, "outside": 0}

        def read(block):
            return src.read(1, window=block.window), reader.read(1, window=block.window)

        def work(block, data):
            m, r = data
            valid_ref = np.ones(r.shape, bool) if warp_nodata is None else r != warp_nodata
            state["outside"] += int((~valid_ref).sum())
            valid = valid_ref.copy()
            if nodata is not None:
                on_nodata = valid_ref & (m == nodata)
                state["nodata"] += int(on_nodata.sum())
                valid &= ~on_nodata
            mv = m[valid].astype(np.int64)
            rv = r[valid].astype(np.int64)
            if mv.size == 0:
                return
            keys, counts = np.unique(np.stack([mv, rv]), axis=1, return_counts=True)
            for (a, b), c in zip(keys.T.tolist(), counts.tolist()):
                pairs[(a, b)] = pairs.get((a, b), 0) + c

        blocks = plan_blocks(src.width, src.height, 48, memory_mb)
        run_blocks(blocks, read, work, progress, is_cancelled, read_ahead=False)
        if not same_grid:
            reader.close()
    keys = np.array(list(pairs), dtype=np.int64).reshape(-1, 2)
    reps = np.array(list(pairs.values()), dtype=np.int64)
    samples = ReferenceSamples(keys[:, 0], keys[:, 1], reference, "raster", independent=False,
                               mode="all_pixels", features=int(reps.sum() + state["nodata"]),
                               outside=0, on_map_nodata=state["nodata"], weights=reps)
    _finish(samples, warn)
    return samples


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
