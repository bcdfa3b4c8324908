"""The shipped graphical model "S1/S2 stack -> train -> classify -> accuracy" runs as one
algorithm on a real Sentinel-1/Sentinel-2 chip."""

import re
from pathlib import Path

import numpy as np
import pytest
from conftest import data_path
from osgeo import gdal, ogr, osr

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "resources" / "models3" / "classificationworkflow.model3"
CHIP = "282D_485L_3_3"  # S Brazil coast: water, trees, bare ground, rangeland
S2_BANDS = "B01,B02,B03,B04,B05,B06,B07,B08,B8A,B09,B11,B12"
BLOCK = 6  # reference squares of 6 x 6 pixels (60 m), all of one class


def reference_squares(lulc_path, folder):
    """Writes pure-class squares from the chip's land-cover map, alternately to training and
    validation (whole squares, so no square is in both): returns the two GeoPackages."""
    ds = gdal.Open(str(lulc_path))
    lulc = ds.ReadAsArray()
    x0, dx, _, y0, _, dy = ds.GetGeoTransform()
    srs = osr.SpatialReference()
    srs.ImportFromWkt(ds.GetProjection())
    picked = {}
    for row in range(0, lulc.shape[0] - BLOCK + 1, BLOCK):
        for col in range(0, lulc.shape[1] - BLOCK + 1, BLOCK):
            block = lulc[row:row + BLOCK, col:col + BLOCK]
            if block.min() == block.max() and block[0, 0] != 0:
                picked.setdefault(int(block[0, 0]), []).append((row, col))
    paths = []
    for part in (0, 1):
        path = folder / ("training.gpkg" if part == 0 else "validation.gpkg")
        source = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
        layer = source.CreateLayer(path.stem, srs, ogr.wkbPolygon)
        layer.CreateField(ogr.FieldDefn("cid", ogr.OFTInteger))
        for cid, squares in picked.items():
            for row, col in squares[part::2][:15]:
                left, top = x0 + col * dx, y0 + row * dy
                right, bottom = left + BLOCK * dx, top + BLOCK * dy
                feature = ogr.Feature(layer.GetLayerDefn())
                feature.SetField("cid", cid)
                feature.SetGeometry(ogr.CreateGeometryFromWkt(
                    f"POLYGON(({left} {top},{right} {top},{right} {bottom},{left} {bottom},"
                    f"{left} {top}))"))
                layer.CreateFeature(feature)
        source = layer = None
        paths.append(path)
    return paths, {cid: len(squares) for cid, squares in picked.items()}


@pytest.mark.slow
def test_classification_model_runs_the_chain(qgis_app, tmp_path):
    import processing
    from qgis.core import (
        QgsApplication,
        QgsProcessingContext,
        QgsProcessingFeedback,
        QgsProcessingModelAlgorithm,
    )

    s2 = data_path("terramind", "S2L2A", f"{CHIP}.tif")
    s1_source = data_path("terramind", "S1RTC", f"{CHIP}.tif")
    lulc = data_path("terramind", "LULC", f"{CHIP}.tif")
    s1 = tmp_path / "S1_20210721.tif"  # the date is read from the name
    s1.symlink_to(s1_source)
    (training, validation), counts = reference_squares(lulc, tmp_path)
    assert set(counts) == {1, 2, 6, 9} and min(counts.values()) >= 4

    model = QgsProcessingModelAlgorithm()
    assert model.fromFile(str(MODEL))
    steps = {c.algorithmId() for c in model.childAlgorithms().values()}
    assert steps == {"landfusion:coregisterstack", "landfusion:trainclassifier",
                     "landfusion:classifyraster", "landfusion:accuracyreport"}
    for child in model.childAlgorithms().values():
        assert QgsApplication.processingRegistry().algorithmById(child.algorithmId()), child
    ok, errors = model.validate()
    assert ok, errors
    outputs = {name: str(tmp_path / file) for name, file in (
        ("stack:Stack", "stack.tif"), ("train:Model", "rf.onnx"),
        ("train:Training report", "training.html"), ("classify:Land-cover map", "map.tif"),
        ("accuracy:Accuracy report", "accuracy.html"))}
    result = processing.run(model, {
        "S2": [str(s2)], "S2_BANDS": S2_BANDS, "S1": [str(s1)], "TRAINING": str(training),
        "CLASS_FIELD": "cid", "VALIDATION": str(validation), "VALIDATION_FIELD": "cid",
        **outputs}, context=QgsProcessingContext(), feedback=QgsProcessingFeedback())

    stack = gdal.Open(outputs["stack:Stack"])
    names = [stack.GetRasterBand(i).GetDescription() for i in range(1, stack.RasterCount + 1)]
    assert (stack.RasterXSize, stack.RasterYSize) == (224, 224)
    assert any("VV" in n for n in names) and any("B08" in n for n in names)
    classes = gdal.Open(outputs["classify:Land-cover map"])
    assert classes.GetGeoTransform() == stack.GetGeoTransform()
    values = np.unique(classes.ReadAsArray())
    assert set(values.tolist()) >= {1, 2}
    assert Path(result["train:Model"]).stat().st_size > 1000
    assert Path(result["train:Training report"]).is_file()
    html = Path(result["accuracy:Accuracy report"]).read_text(encoding="utf-8")
    text = re.sub(r"<[^>]+>", " ", html)
    overall = re.search(r"Overall accuracy[^0-9]*([01]\.[0-9]+)", text)
    assert overall, "no overall accuracy in the report"
    # held-out squares of a 10 m land-cover product over its own imagery: easy, but every
    # class must be mapped, and the samples are the validation squares, one per square
    assert float(overall.group(1)) >= 0.8
    validation_squares = sum(min(15, n // 2) for n in counts.values())
    assert re.search(rf"\b{validation_squares}\b", text)
