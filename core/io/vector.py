"""Vector input shared by the engine: opening OGR layers and matching them to a raster's CRS.

Layers come as file paths or QGIS-style sources (``file.gpkg|layername=points``); coordinates
are handled in traditional GIS order (x = easting/longitude) whatever the CRS's axis order.
"""

from __future__ import annotations

import os
from typing import Optional

from ..errors import InputError, OutputError

#: Vector extensions LandFusion writes, with their OGR drivers.
VECTOR_DRIVERS = {".gpkg": "GPKG", ".shp": "ESRI Shapefile", ".geojson": "GeoJSON",
                  ".json": "GeoJSON", ".fgb": "FlatGeobuf", ".sqlite": "SQLite"}


def vector_driver(path: str, what: str = "Output") -> str:
    """Returns the OGR driver writing ``path`` (by extension).

    Raises:
        OutputError: for an extension LandFusion does not write, or a driver GDAL lacks.
    """
    from osgeo import ogr

    ext = os.path.splitext(path or "")[1].lower()
    if ext not in VECTOR_DRIVERS:
        raise OutputError(f"{what} '{path}': use a GeoPackage (.gpkg) or one of "
                          f"{', '.join(sorted(VECTOR_DRIVERS))}.")
    if ogr.GetDriverByName(VECTOR_DRIVERS[ext]) is None:
        raise OutputError(f"GDAL has no {VECTOR_DRIVERS[ext]} driver; write a GeoPackage instead.")
    return VECTOR_DRIVERS[ext]


def split_ogr_source(source: str) -> tuple:
    """Splits a QGIS-style OGR source ``path|layername=name`` into ``(path, layer_name)``."""
    path, _, rest = (source or "").partition("|")
    layer = None
    for part in rest.split("|") if rest else []:
        key, _, value = part.partition("=")
        if key.strip().lower() == "layername":
            layer = value.strip()
    return path, layer


def open_vector_layer(source: str, layer_name: Optional[str] = None, what: str = "Vector layer"):
    """Opens a vector layer with OGR.

    Args:
        source: file path, optionally with ``|layername=...``.
        layer_name: layer to open (overrides the one in ``source``); default the first layer.
        what: how to call the layer in messages.

    Returns:
        ``(dataset, layer)``; keep the dataset referenced while the layer is used.

    Raises:
        InputError: naming the file when it is missing, unreadable or lacks the layer.
    """
    from osgeo import ogr

    path, embedded = split_ogr_source(source)
    layer_name = layer_name or embedded
    if not path or not os.path.exists(path):
        raise InputError(f"{what} '{path}' does not exist.")
    exceptions = ogr.GetUseExceptions()
    ogr.UseExceptions()
    try:
        dataset = ogr.Open(path)
    except RuntimeError as exc:
        raise InputError(f"{what} '{path}' cannot be read as a vector layer by OGR: {exc}") from exc
    finally:
        if not exceptions:
            ogr.DontUseExceptions()
    if dataset is None or dataset.GetLayerCount() == 0:
        from .preflight import describe_file

        raise InputError(f"{what} '{path}' is {describe_file(path)}, not a vector layer. Choose "
                         "a layer OGR can read (e.g. GeoPackage, shapefile, GeoJSON).")
    layer = dataset.GetLayerByName(layer_name) if layer_name else dataset.GetLayer(0)
    if layer is None:
        raise InputError(f"{what} '{path}' has no layer named '{layer_name}'.")
    return dataset, layer


def srs_from_wkt(wkt: str):
    """Returns an OSR spatial reference (traditional GIS axis order) from WKT, or None."""
    from osgeo import osr

    if not wkt:
        return None
    srs = osr.SpatialReference()
    if srs.ImportFromWkt(wkt) != 0:
        return None
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return srs


def transform_to_raster(layer_srs, raster_wkt: str) -> tuple:
    """Works out how a layer's coordinates reach a raster's CRS.

    Returns:
        ``(transformation, status)``: status is ``"same"`` (transformation None), ``"reprojected"``
        (an OSR coordinate transformation) or ``"missing"`` when the layer or the raster has no
        CRS (transformation None; the caller decides whether that is an error).
    """
    from osgeo import osr

    target = srs_from_wkt(raster_wkt)
    # GeoPackage layers written without CRS report an 'Undefined geographic/cartesian SRS'.
    if layer_srs is None or (layer_srs.GetName() or "").startswith("Undefined") or target is None:
        return None, "missing"
    source = layer_srs.Clone()
    source.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    if source.IsSame(target):
        return None, "same"
    return osr.CoordinateTransformation(source, target), "reprojected"
