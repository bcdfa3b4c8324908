"""The plugin's dependencies work inside qgis_process.bin itself, on any machine.

Trains a model and classifies a small generated raster entirely through
``scripts/qgis_process.sh``: rasterio (Debian's, on QGIS's GDAL), OGR, scikit-learn, skl2onnx
and onnxruntime all run inside the QGIS process. Needs no shared data.
"""

import numpy as np
import pytest
import rasterio
from osgeo import ogr, osr
from rasterio.transform import from_origin

TRANSFORM = from_origin(600000, 5400000, 10, 10)


@pytest.fixture
def two_class_scene(tmp_path):
    """A 2-band 64x64 raster: darker left half (class 1), brighter right half (class 2)."""
    rng = np.random.default_rng(3)
    data = np.empty((2, 64, 64), dtype=np.float32)
    data[:, :, :32] = 0.1 + rng.normal(0, 0.01, (2, 64, 32))
    data[:, :, 32:] = 0.6 + rng.normal(0, 0.01, (2, 64, 32))
    raster = tmp_path / "scene.tif"
    with rasterio.open(raster, "w", driver="GTiff", width=64, height=64, count=2,
                       dtype="float32", crs="EPSG:32631", transform=TRANSFORM) as dst:
        dst.write(data)
        dst.set_band_description(1, "S2_B04")
        dst.set_band_description(2, "S2_B08")
    polygons = tmp_path / "training.gpkg"
    source = ogr.GetDriverByName("GPKG").CreateDataSource(str(polygons))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32631)
    layer = source.CreateLayer("training", srs, ogr.wkbPolygon)
    layer.CreateField(ogr.FieldDefn("label", ogr.OFTString))
    # Three polygons per class, so validation grouped by polygon can run.
    for label, x0 in (("dark", 0), ("bright", 330)):
        for k in range(3):
            y0 = 5400000 - 20 - k * 200
            ring = (f"POLYGON(({600000 + x0 + 20} {y0}, {600000 + x0 + 280} {y0}, "
                    f"{600000 + x0 + 280} {y0 - 150}, {600000 + x0 + 20} {y0 - 150}, "
                    f"{600000 + x0 + 20} {y0}))")
            feature = ogr.Feature(layer.GetLayerDefn())
            feature.SetField("label", label)
            feature.SetGeometry(ogr.CreateGeometryFromWkt(ring))
            layer.CreateFeature(feature)
    source = None
    return raster, polygons


@pytest.mark.qgis_process
def test_train_and_classify_inside_qgis_process(two_class_scene, tmp_path, qgis_process):
    raster, polygons = two_class_scene
    model = tmp_path / "model.onnx"
    code, trained, _ = qgis_process("landfusion:trainclassifier", {
        "INPUT": raster, "TRAINING": polygons, "CLASS_FIELD": "label", "FOLDS": 3, "TREES": 10,
        "OUTPUT_MODEL": model, "OUTPUT_REPORT": tmp_path / "report.html"})
    assert code == 0 and model.stat().st_size > 0
    assert trained["results"]["OVERALL_ACCURACY"] == pytest.approx(1.0)
    out = tmp_path / "classes.tif"
    code, classified, _ = qgis_process("landfusion:classifyraster", {
        "INPUT": raster, "MODEL": model, "OUTPUT": out})
    assert code == 0 and classified["results"]["OUTPUT"] == str(out)
    with rasterio.open(out) as src:
        assert src.crs.to_epsg() == 32631 and src.transform == TRANSFORM
        classes = src.read(1)
    # Text classes get ids in alphabetical order: bright = 1, dark = 2.
    assert np.all(classes[:, :32] == 2) and np.all(classes[:, 32:] == 1)
    from landfusion.core.io.classmap import read_class_styling

    assert [(c.value, c.name) for c in read_class_styling(str(out))] == [(1, "bright"), (2, "dark")]
    assert (tmp_path / "classes.qml").exists()
