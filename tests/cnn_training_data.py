"""Small real training sets for the CNN training tests, cut from ../shared/data chips."""

import os

import numpy as np
import rasterio
from conftest import data_path
from rasterio.windows import Window

#: Sen1Floods11 chips and the top-left corner (row, col) of a 192 px crop with 26-38 % water.
S1_CHIPS = {"USA_905409": (192, 320), "Nigeria_812045": (256, 64), "Spain_7370579": (64, 192)}
TERRAMIND = ("282D_485L_3_3", "433D_629L_3_1", "637U_59R_1_3")
S2_NO_B10 = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12"]
EUROSAT_ORDER = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B09", "B10", "B11",
                 "B12", "B8A"]


def s1_chip(name):
    """(S1 raster, label raster) of a Sen1Floods11 chip."""
    for folder in ("sen1floods11_s1only", "sen1floods11"):
        path = data_path() / folder / f"{name}_S1Hand.tif"
        if path.exists():
            return str(path), str(path).replace("_S1Hand.tif", "_LabelHand.tif")
    raise FileNotFoundError(name)


def crop(src_path, dst_path, window, descriptions=None):
    """Copies a window of a raster (same CRS, the window's transform), keeping band names."""
    with rasterio.open(src_path) as src:
        profile = src.profile.copy()
        profile.update(width=window.width, height=window.height,
                       transform=src.window_transform(window), tiled=False)
        profile.pop("blockxsize", None)
        profile.pop("blockysize", None)
        data = src.read(window=window)
        with rasterio.open(dst_path, "w", **profile) as dst:
            dst.write(data)
            for i, name in enumerate(descriptions or src.descriptions, start=1):
                if name:
                    dst.set_band_description(i, name)
    return str(dst_path)


def s1_crops(folder, size=192, chips=S1_CHIPS):
    """Crops of Sen1Floods11 chips: [(s1, label)], the top-left ``size`` px of each chip."""
    pairs = []
    for name, (row, col) in chips.items():
        s1, label = s1_chip(name)
        window = Window(col, row, size, size)
        pairs.append((crop(s1, os.path.join(folder, f"{name}_s1.tif"), window),
                      crop(label, os.path.join(folder, f"{name}_label.tif"), window)))
    return pairs


def terramind_stacks(folder):
    """Per TerraMind chip: (float32 stack of S1RTC VV, VH and the 12 S2L2A bands with band
    names, LULC label path) — what the co-registration stack produces."""
    root = data_path("terramind")
    stacks = []
    for chip in TERRAMIND:
        with rasterio.open(root / "S1RTC" / f"{chip}.tif") as s1, \
                rasterio.open(root / "S2L2A" / f"{chip}.tif") as s2:
            data = np.concatenate([s1.read(), s2.read()]).astype("float32")
            profile = s2.profile.copy()
        profile.update(count=14, dtype="float32", nodata=None)
        path = os.path.join(folder, f"{chip}.tif")
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(data)
            for i, name in enumerate(["VV", "VH"] + S2_NO_B10, start=1):
                dst.set_band_description(i, name)
        stacks.append((path, str(root / "LULC" / f"{chip}.tif")))
    return stacks


def eurosat_subset(folder, classes=("Forest", "SeaLake", "AnnualCrop", "Residential"),
                   per_class=10):
    """A EuroSAT folder with a few classes and patches (symlinks to the real patches)."""
    root = data_path("eurosat_ms", "train")
    for name in classes:
        os.makedirs(os.path.join(folder, name))
        for f in sorted(os.listdir(root / name))[:per_class]:
            os.symlink(root / name / f, os.path.join(folder, name, f))
    return str(folder)


def label_points(label_path, out_path, per_class=40, seed=3):
    """Writes a GeoPackage of points on labelled pixels (field ``cover``: land or water)."""
    from osgeo import ogr, osr

    rng = np.random.default_rng(seed)
    with rasterio.open(label_path) as src:
        label = src.read(1)
        transform, wkt = src.transform, src.crs.to_wkt()
    driver = ogr.GetDriverByName("GPKG")
    ds = driver.CreateDataSource(str(out_path))
    srs = osr.SpatialReference()
    srs.ImportFromWkt(wkt)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    layer = ds.CreateLayer("points", srs, ogr.wkbPoint)
    layer.CreateField(ogr.FieldDefn("cover", ogr.OFTString))
    for value, name in ((0, "land"), (1, "water")):
        rows, cols = np.nonzero(label == value)
        for k in rng.choice(rows.size, min(per_class, rows.size), replace=False):
            x, y = transform * (cols[k] + 0.5, rows[k] + 0.5)
            feature = ogr.Feature(layer.GetLayerDefn())
            feature.SetField("cover", name)
            point = ogr.Geometry(ogr.wkbPoint)
            point.AddPoint_2D(x, y)
            feature.SetGeometry(point)
            layer.CreateFeature(feature)
    ds = None
    return str(out_path)


def label_polygons(label_path, out_path):
    """Polygonises a label raster into a GeoPackage with an integer field ``class``."""
    from osgeo import ogr, osr
    from rasterio.features import shapes

    with rasterio.open(label_path) as src:
        label = src.read(1).astype("int32")
        transform, wkt = src.transform, src.crs.to_wkt()
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(out_path))
    srs = osr.SpatialReference()
    srs.ImportFromWkt(wkt)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    layer = ds.CreateLayer("labels", srs, ogr.wkbPolygon)
    layer.CreateField(ogr.FieldDefn("class", ogr.OFTInteger))
    import json

    for geometry, value in shapes(label, mask=label >= 0, transform=transform):
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetField("class", int(value))
        feature.SetGeometry(ogr.CreateGeometryFromJson(json.dumps(geometry)))
        layer.CreateFeature(feature)
    ds = None
    return str(out_path)
