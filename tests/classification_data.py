"""Test fixtures for classification: feature stacks and training polygons built from real chips.

Training polygons come from reference label rasters: each class mask is eroded by one pixel (so
polygons do not straddle class borders), cut into grid cells and polygonised; every polygon carries
its grid cell, so tests can hold whole cells out (spatially separate polygons) for an honest
accuracy on held-out polygons.
"""

import os

import numpy as np

from conftest import data_path

TERRAMIND_S2_BANDS = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09",
                      "B11", "B12"]
LULC_NAMES = {1: "water", 2: "trees", 3: "flooded vegetation", 4: "crops", 5: "built area",
              6: "bare ground", 7: "snow/ice", 8: "clouds", 9: "rangeland"}
LULC_COLOURS = {1: "#419bdf", 2: "#397d49", 3: "#7a87c6", 4: "#e49635", 5: "#c4281b",
                6: "#a59b8f", 7: "#a8ebff", 8: "#616161", 9: "#e3e2c3"}


def write_stack(path, sources, reference):
    """Stacks (file, band names) sources, all on the grid of ``reference``, into a float32 GTiff."""
    import rasterio

    arrays, names = [], []
    for source, band_names in sources:
        with rasterio.open(source) as src:
            data = src.read(out_dtype="float32")
            for b, nodata in enumerate(src.nodatavals):
                if nodata is not None and not np.isnan(nodata):
                    data[b][data[b] == nodata] = np.nan
        arrays.append(data)
        names += band_names
    data = np.concatenate(arrays)
    with rasterio.open(reference) as ref:
        profile = {"driver": "GTiff", "dtype": "float32", "count": data.shape[0],
                   "width": ref.width, "height": ref.height, "crs": ref.crs,
                   "transform": ref.transform, "nodata": -9999.0}
    data[~np.isfinite(data)] = -9999.0
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        for i, name in enumerate(names, start=1):
            dst.set_band_description(i, name)
    return str(path)


def terramind_stack(tmp_path, chip="433D_629L_3_1", s1=True, s2=True):
    """S1 (VV, VH dB) and/or S2 L2A (12 bands) of a TerraMind chip as one float32 raster."""
    sources = []
    if s1:
        sources.append((str(data_path("terramind", "S1RTC", f"{chip}.tif")), ["VV", "VH"]))
    if s2:
        sources.append((str(data_path("terramind", "S2L2A", f"{chip}.tif")), TERRAMIND_S2_BANDS))
    name = f"{chip}_{'s1' if s1 else ''}{'s2' if s2 else ''}.tif"
    return write_stack(tmp_path / name, sources, sources[0][0])


def label_polygons(label_path, out_path, classes, cell=32, min_pixels=12, erode=1,
                   epsg=4326, names=None, colours=None, text_class=False, label_map=None):
    """Polygonises a label raster into training polygons (GeoPackage) in EPSG ``epsg``.

    Fields: ``class`` (int, or text names when ``text_class``), ``name``, ``colour``, ``cell``
    (grid cell index, for spatial hold-out), ``cell_row``/``cell_col`` and ``pixels`` (the number
    of label pixels the polygon was made of).
    """
    import rasterio
    from osgeo import gdal, ogr, osr
    from scipy import ndimage

    with rasterio.open(label_path) as src:
        labels = src.read(1)
        transform, crs = src.transform, src.crs
    if label_map:
        mapped = np.full(labels.shape, -1, dtype=np.int32)
        for source, target in label_map.items():
            mapped[labels == source] = target
        labels = mapped
    rows, cols = labels.shape
    ids = np.zeros(labels.shape, dtype=np.int32)
    info = {}
    next_id = 1
    cell_row = np.arange(rows)[:, None] // cell + np.zeros((1, cols), dtype=int)
    cell_col = np.arange(cols)[None, :] // cell + np.zeros((rows, 1), dtype=int)
    n_cell_cols = (cols + cell - 1) // cell
    for value in classes:
        mask = labels == value
        if erode:
            mask = ndimage.binary_erosion(mask, iterations=erode)
        components, count = ndimage.label(mask)
        for k in range(1, count + 1):
            comp = components == k
            for cr, cc in set(zip(cell_row[comp].tolist(), cell_col[comp].tolist())):
                part = comp & (cell_row == cr) & (cell_col == cc)
                if part.sum() < min_pixels:
                    continue
                ids[part] = next_id
                info[next_id] = (value, cr, cc, int(part.sum()))
                next_id += 1
    mem = gdal.GetDriverByName("MEM").Create("", cols, rows, 1, gdal.GDT_Int32)
    mem.SetGeoTransform(transform.to_gdal())
    mem.SetProjection(crs.to_wkt())
    mem.GetRasterBand(1).WriteArray(ids)
    polygon_ds = ogr.GetDriverByName("Memory").CreateDataSource("p")
    source_srs = osr.SpatialReference()
    source_srs.ImportFromWkt(crs.to_wkt())
    layer = polygon_ds.CreateLayer("p", srs=source_srs, geom_type=ogr.wkbPolygon)
    layer.CreateField(ogr.FieldDefn("pid", ogr.OFTInteger))
    gdal.Polygonize(mem.GetRasterBand(1), mem.GetRasterBand(1), layer, 0, [])

    target_srs = osr.SpatialReference()
    target_srs.ImportFromEPSG(epsg)
    source_srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    target_srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    transform_ = osr.CoordinateTransformation(source_srs, target_srs)
    if os.path.exists(out_path):
        os.remove(out_path)
    out = ogr.GetDriverByName("GPKG").CreateDataSource(str(out_path))
    out_layer = out.CreateLayer("training", srs=target_srs, geom_type=ogr.wkbMultiPolygon)
    out_layer.CreateField(ogr.FieldDefn("class", ogr.OFTString if text_class else ogr.OFTInteger))
    for name in ("name", "colour"):
        out_layer.CreateField(ogr.FieldDefn(name, ogr.OFTString))
    for name in ("cell", "cell_row", "cell_col", "pixels"):
        out_layer.CreateField(ogr.FieldDefn(name, ogr.OFTInteger))
    geoms = {}
    for feature in layer:
        pid = feature.GetField("pid")
        geom = feature.GetGeometryRef().Clone()
        geoms.setdefault(pid, ogr.Geometry(ogr.wkbMultiPolygon)).AddGeometry(geom)
    for pid in sorted(geoms):
        value, cr, cc, pixels = info[pid]
        geom = geoms[pid]
        geom.Transform(transform_)
        feature = ogr.Feature(out_layer.GetLayerDefn())
        name = (names or LULC_NAMES).get(value, f"class {value}")
        feature.SetField("class", name if text_class else int(value))
        feature.SetField("name", name)
        feature.SetField("colour", (colours or LULC_COLOURS).get(value, "#808080"))
        feature.SetField("cell", cr * n_cell_cols + cc)
        feature.SetField("cell_row", cr)
        feature.SetField("cell_col", cc)
        feature.SetField("pixels", pixels)
        feature.SetGeometry(geom)
        out_layer.CreateFeature(feature)
    out = None
    return str(out_path)


def split_polygons(path, train_path, test_path, is_test):
    """Copies the polygons of ``path`` into a training and a held-out GeoPackage by ``is_test(f)``."""
    from osgeo import ogr

    source = ogr.Open(str(path))
    layer = source.GetLayer(0)
    outputs = {}
    for key, target in (("train", train_path), ("test", test_path)):
        if os.path.exists(target):
            os.remove(target)
        ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(target))
        out = ds.CopyLayer(layer, "training", ["OVERWRITE=YES"])
        outputs[key] = (ds, out)
    for key, (ds, out) in outputs.items():
        for feature in list(out):
            held_out = bool(is_test(feature))
            if held_out != (key == "test"):
                out.DeleteFeature(feature.GetFID())
        ds = None
    outputs.clear()
    return str(train_path), str(test_path)


def rasterise_reference(polygons_path, like_path, field="class"):
    """Rasterises a polygon layer's class field onto the grid of ``like_path`` (0 outside)."""
    import rasterio
    from osgeo import gdal

    with rasterio.open(like_path) as ref:
        width, height, transform, crs = ref.width, ref.height, ref.transform, ref.crs
    reprojected = gdal.VectorTranslate("/vsimem/reference.gpkg", str(polygons_path), format="GPKG",
                                       dstSRS=crs.to_wkt(), reproject=True)
    reprojected = None
    warped = gdal.Rasterize("", "/vsimem/reference.gpkg", format="MEM", outputType=gdal.GDT_Int32,
                            width=width, height=height,
                            outputBounds=(transform.c, transform.f + transform.e * height,
                                          transform.c + transform.a * width, transform.f),
                            attribute=field, initValues=0)
    array = warped.GetRasterBand(1).ReadAsArray()
    gdal.Unlink("/vsimem/reference.gpkg")
    return array
