"""The training layer: labelled polygons or points read with OGR into a raster's CRS.

Polygons are reprojected with OGR, invalid geometries repaired (or skipped and counted), features
outside the raster counted; every feature gets one class id (integer classes keep their value,
text classes are numbered alphabetically) and the classes their names and colours.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..errors import InputError, NoDataError, NoOverlapError
from ..io.classmap import ClassInfo, palette_color, parse_color
from ..io.vector import open_vector_layer, transform_to_raster
from ..runtime import Log, no_log

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
    dataset, layer = open_vector_layer(vector_path, layer_name, "Training vector")
    fields = _Fields.of(layer, class_field, name_field, color_field)
    stats = VectorStats()
    vector_srs = layer.GetSpatialRef()
    source_crs = (vector_srs.GetName() or "") if vector_srs is not None else ""
    transform, crs_status = transform_to_raster(vector_srs, raster_crs_wkt)
    stats.reprojected = crs_status == "reprojected"
    if crs_status == "missing":
        warn("The training layer or the raster has no CRS; assuming both use the same one.")
    raw, kinds = _read_features(layer, fields, transform, _raster_box(raster_bounds), stats)
    dataset = None
    _check_usable(raw, kinds, stats, class_field, source_crs, warn)
    features, classes = _assign_classes(raw, fields.numeric, class_field, warn)
    stats.used = len(features)
    return TrainingVector(features, classes, stats, "point" if kinds == {"point"} else "polygon",
                          source_crs)


@dataclass
class _Fields:
    """Indices of the class, name and colour fields of the training layer."""

    class_index: int
    numeric: bool
    name_index: Optional[int]
    color_index: Optional[int]

    @classmethod
    def of(cls, layer, class_field: str, name_field: Optional[str],
           color_field: Optional[str]) -> "_Fields":
        from osgeo import ogr

        definition = layer.GetLayerDefn()
        names = [definition.GetFieldDefn(i).GetName() for i in range(definition.GetFieldCount())]
        class_index = _field_index(names, class_field, "class field")
        class_type = definition.GetFieldDefn(class_index).GetType()
        return cls(class_index, class_type in (ogr.OFTInteger, ogr.OFTInteger64, ogr.OFTReal),
                   _field_index(names, name_field, "class name field") if name_field else None,
                   _field_index(names, color_field, "colour field") if color_field else None)

    @staticmethod
    def value(feature, index: Optional[int]):
        """The field's value, None when the field is not chosen, unset or null."""
        if index is None or not feature.IsFieldSetAndNotNull(index):
            return None
        return feature.GetField(index)


def _field_index(field_names, name: str, what: str) -> int:
    if not name:
        raise InputError(f"Choose the {what} of the training layer.")
    lookup = {n.lower(): i for i, n in enumerate(field_names)}
    if name.lower() not in lookup:
        raise InputError(
            f"The training layer has no field '{name}' ({what}); its fields are: "
            f"{', '.join(field_names) or 'none'}."
        )
    return lookup[name.lower()]


def _raster_box(bounds: tuple):
    from osgeo import ogr

    left, bottom, right, top = bounds
    return ogr.CreateGeometryFromWkt(
        f"POLYGON(({left} {bottom},{right} {bottom},{right} {top},{left} {top},{left} {bottom}))")


def _read_features(layer, fields: _Fields, transform, raster_box, stats: VectorStats) -> tuple:
    """Returns ``([(fid, class value as stored, name, colour, geometry)], geometry kinds)`` of the
    features with a class and a usable geometry in the raster's CRS; counts the others."""
    raw, kinds = [], set()
    layer.ResetReading()
    for feature in layer:
        stats.features += 1
        value = _Fields.value(feature, fields.class_index)
        if value is None or (isinstance(value, str) and not value.strip()):
            stats.null_class += 1
            continue
        found = _feature_geometry(feature, transform, raster_box, stats)
        if found is None:
            continue
        kinds.add(found[0])
        raw.append((feature.GetFID(), value, _Fields.value(feature, fields.name_index),
                    _Fields.value(feature, fields.color_index), found[1]))
    return raw, kinds


def _feature_geometry(feature, transform, raster_box, stats: VectorStats) -> Optional[tuple]:
    """``(kind, geometry)``: the feature's geometry, 2D, repaired, in the raster's CRS; None
    (counted in ``stats``) when it is missing, unsupported, invalid or outside the raster."""
    from osgeo import ogr

    geometry = feature.GetGeometryRef()
    if geometry is None or geometry.IsEmpty():
        stats.null_geometry += 1
        return None
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
        return None
    geometry.FlattenTo2D()
    if kind == "polygon":
        geometry = _repair(geometry, stats)
        if geometry is None:
            return None
    if transform is not None:
        try:
            if geometry.Transform(transform) != 0:
                raise RuntimeError("transformation failed")
        except RuntimeError:
            stats.outside += 1
            return None
    if not geometry.Intersects(raster_box):
        stats.outside += 1
        return None
    return kind, geometry


def _check_usable(raw, kinds, stats: VectorStats, class_field: str, source_crs: str,
                  warn: Log) -> None:
    """Raises when no feature is usable, naming why."""
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


def _assign_classes(raw, numeric: bool, class_field: str, warn: Log) -> tuple:
    """Returns ``(features, classes)``: a class id per feature, a name and colour per class.

    Integer classes keep their value; text classes are numbered 1.. alphabetically, spellings
    that differ only by case or spaces merged into one class.
    """
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
    return features, classes


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
