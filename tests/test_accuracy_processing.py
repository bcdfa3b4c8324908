"""landfusion:stratifiedsample and landfusion:accuracyreport through Processing (PyQGIS and
qgis_process) on a real TerraMind land-cover chip used as the map."""

import csv
import json
import os

import numpy as np
import pytest

from landfusion.core.accuracy.estimates import error_matrix
from landfusion.core.io.classmap import ClassInfo, apply_class_styling

from conftest import data_path

CHIP = ("terramind", "LULC", "433D_629L_3_1.tif")
NAMES = {1: "Water", 2: "Trees", 3: "Flooded vegetation", 4: "Crops", 5: "Built area",
         9: "Rangeland"}


def _text(path):
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def _json(path):
    return json.loads(_text(path))


def _csv(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def _label_sample(path, field="reference", as_names=False):
    """Fills the reference field from the map class with known errors: every 4th sample is
    labelled Crops (4), every 9th Trees (2). Returns (map classes, reference classes)."""
    from osgeo import ogr

    ds = ogr.Open(path, 1)
    layer = ds.GetLayer(0)
    mapped, reference = [], []
    for feature in layer:
        sid = int(feature.GetField("sample_id"))  # text after -mapFieldType
        m = int(feature.GetField("map_class"))
        r = 4 if sid % 4 == 0 else 2 if sid % 9 == 0 else m
        feature.SetField(field, NAMES[r] if as_names else r)
        layer.SetFeature(feature)
        mapped.append(m)
        reference.append(r)
    ds = None
    return np.array(mapped), np.array(reference)


def _to_wgs84(src, dst, field_type=None):
    from osgeo import gdal

    options = ["-t_srs", "EPSG:4326"]
    if field_type:
        options += ["-mapFieldType", field_type]
    gdal.VectorTranslate(dst, src, options=options)
    return dst


def test_sample_then_report_pyqgis(run_algorithm, tmp_path):
    import rasterio

    chip = str(data_path(*CHIP))
    sample = str(tmp_path / "sample.gpkg")
    out = run_algorithm("landfusion:stratifiedsample", {
        "INPUT": chip, "SAMPLE_SIZE": 180, "ALLOCATION": 2, "MIN_PER_CLASS": 20, "SEED": 3,
        "OUTPUT": sample})
    assert out["OUTPUT"] == sample and out["COUNT"] == 180
    mapped, reference = _label_sample(sample)
    # The reference layer arrives in another CRS: the report must reproject it.
    reference_layer = _to_wgs84(sample, str(tmp_path / "reference_4326.gpkg"))
    html, js, cs = (str(tmp_path / f"report.{e}") for e in ("html", "json", "csv"))
    result = run_algorithm("landfusion:accuracyreport", {
        "CLASSIFICATION": chip, "REFERENCE": reference_layer, "CLASS_FIELD": "reference",
        "SAMPLING_DESIGN": 0, "OUTPUT_HTML": html, "OUTPUT_JSON": js, "OUTPUT_CSV": cs})
    classes = [1, 2, 3, 4, 5, 9]
    expected = error_matrix(mapped, reference, classes)
    report = _json(js)
    assert [c["value"] for c in report["classes"]] == classes
    assert report["error_matrix"] == expected.tolist()
    assert result["SAMPLES"] == 180
    assert result["OVERALL_ACCURACY"] == pytest.approx(np.mean(mapped == reference))
    # map pixel counts come from the raster itself, at 10 m = 0.01 ha per pixel
    with rasterio.open(chip) as src:
        data = src.read(1)
    assert report["map"]["pixels"] == [int((data == v).sum()) for v in classes]
    est = report["area_adjusted"]
    assert est["total_area_ha"] == pytest.approx(501.76)
    w = np.array(report["map"]["pixels"]) / data.size
    p = w[:, None] * expected / expected.sum(axis=1, keepdims=True)
    assert result["AREA_ADJUSTED_OA"] == pytest.approx(np.trace(p))
    np.testing.assert_allclose(est["area_ha"], p.sum(axis=0) * 501.76)
    assert all(ci is not None and ci > 0 for ci in est["area_ha_ci95"])
    rows = _csv(cs)
    assert rows[1] == ["map \\ reference", "1", "2", "3", "4", "5", "9", "total"]
    text = _text(html)
    assert "rows = map classes, columns = reference classes" in text and "<svg" in text


def test_memory_layer_and_polygon_reference_pyqgis(run_algorithm, tmp_path):
    from qgis.core import QgsFeature, QgsGeometry, QgsRasterLayer, QgsVectorLayer

    chip = str(data_path(*CHIP))
    raster = QgsRasterLayer(chip, "map")
    e = raster.extent()
    crs = raster.crs().authid()
    layer = QgsVectorLayer(f"Polygon?crs={crs}&field=cls:integer", "ref", "memory")
    features = []
    for i in range(6):  # 30 m squares 2 m inside the pixel grid: 3 x 3 pixel centres each
        x0 = e.xMinimum() + 200 * i + 2
        y0 = e.yMinimum() + 2
        f = QgsFeature(layer.fields())
        f.setGeometry(QgsGeometry.fromWkt(
            f"POLYGON(({x0} {y0},{x0 + 30} {y0},{x0 + 30} {y0 + 30},{x0} {y0 + 30},{x0} {y0}))"))
        f.setAttributes([4])
        features.append(f)
    layer.dataProvider().addFeatures(features)
    js = str(tmp_path / "r.json")
    result = run_algorithm("landfusion:accuracyreport", {
        "CLASSIFICATION": chip, "REFERENCE": layer, "CLASS_FIELD": "cls", "SAMPLING_DESIGN": 2,
        "POLYGON_SAMPLES": 2, "OUTPUT_HTML": str(tmp_path / "r.html"), "OUTPUT_JSON": js})
    report = _json(js)
    assert report["samples"]["kind"] == "polygons"
    assert report["samples"]["independent"] is False
    assert report["samples"]["count"] == 6 * 9  # 3 x 3 pixel centres per 30 m square
    assert result["SAMPLES"] == 54
    assert report["area_adjusted"] is None
    crops = [c["value"] for c in report["classes"]].index(4)
    assert sum(row[crops] for row in report["error_matrix"]) == 54


def test_bad_inputs_pyqgis(run_algorithm, tmp_path):
    from qgis.core import QgsProcessingException

    chip = str(data_path(*CHIP))
    sample = str(tmp_path / "sample.gpkg")
    run_algorithm("landfusion:stratifiedsample", {
        "INPUT": chip, "SAMPLE_SIZE": 30, "ALLOCATION": 0, "SEED": 1, "OUTPUT": sample})
    html = str(tmp_path / "r.html")
    with pytest.raises(QgsProcessingException, match="no field 'klass'.*reference"):
        run_algorithm("landfusion:accuracyreport", {
            "CLASSIFICATION": chip, "REFERENCE": sample, "CLASS_FIELD": "klass",
            "OUTPUT_HTML": html})
    # Unlabelled sample (reference field still empty): says to label first.
    with pytest.raises(QgsProcessingException, match="no feature has a reference class"):
        run_algorithm("landfusion:accuracyreport", {
            "CLASSIFICATION": chip, "REFERENCE": sample, "CLASS_FIELD": "reference",
            "OUTPUT_HTML": html})
    # Reference from another chip (another place): nothing inside the map.
    other = str(tmp_path / "other.gpkg")
    run_algorithm("landfusion:stratifiedsample", {
        "INPUT": str(data_path("terramind", "LULC", "637U_59R_1_3.tif")), "SAMPLE_SIZE": 20,
        "ALLOCATION": 0, "OUTPUT": other})
    _label_sample(other)
    with pytest.raises(QgsProcessingException, match="none of its 20 features lies inside"):
        run_algorithm("landfusion:accuracyreport", {
            "CLASSIFICATION": chip, "REFERENCE": other, "CLASS_FIELD": "reference",
            "OUTPUT_HTML": html})
    with pytest.raises(QgsProcessingException, match="needs 300 samples"):
        run_algorithm("landfusion:stratifiedsample", {
            "INPUT": chip, "SAMPLE_SIZE": 100, "ALLOCATION": 2, "MIN_PER_CLASS": 50,
            "OUTPUT": str(tmp_path / "too_small.gpkg")})
    left = sorted(os.listdir(tmp_path))
    assert left == ["other.gpkg", "sample.gpkg"], left


@pytest.mark.qgis_process
def test_qgis_process_named_classes(qgis_process, tmp_path):
    import rasterio

    chip = str(data_path(*CHIP))
    styled = str(tmp_path / "map.tif")
    with rasterio.open(chip) as src:
        profile = src.profile
        data = src.read(1)
    profile.update(nodata=0)
    with rasterio.open(styled, "w", **profile) as dst:
        dst.write(data, 1)
    apply_class_styling(styled, [ClassInfo(v, n, (20 * v, 120, 60)) for v, n in NAMES.items()],
                        nodata=0)
    sample = str(tmp_path / "sample.gpkg")
    rc, out, _ = qgis_process("landfusion:stratifiedsample", {
        "INPUT": styled, "SAMPLE_SIZE": 150, "ALLOCATION": 2, "MIN_PER_CLASS": 15, "SEED": 9,
        "OUTPUT": sample})
    assert rc == 0 and out["results"]["COUNT"] == 150
    from osgeo import ogr

    ds = ogr.Open(sample)  # keep the dataset alive while its layer is read
    names = {f.GetField("map_name") for f in ds.GetLayer(0)}
    ds = None
    assert names == set(NAMES.values())
    # Label with class names in a text field, as an interpreter would.
    text_sample = str(tmp_path / "named.gpkg")
    _to_wgs84(sample, text_sample, field_type="Integer=String")
    mapped, reference = _label_sample(text_sample, as_names=True)
    js = str(tmp_path / "r.json")
    rc, out, log = qgis_process("landfusion:accuracyreport", {
        "CLASSIFICATION": styled, "REFERENCE": text_sample, "CLASS_FIELD": "reference",
        "SAMPLING_DESIGN": 0, "OUTPUT_HTML": str(tmp_path / "r.html"), "OUTPUT_JSON": js,
        "OUTPUT_CSV": str(tmp_path / "r.csv")})
    assert rc == 0, log
    report = _json(js)
    assert [c["name"] for c in report["classes"]] == list(NAMES.values())
    assert report["error_matrix"] == error_matrix(mapped, reference, list(NAMES)).tolist()
    assert out["results"]["OVERALL_ACCURACY"] == pytest.approx(np.mean(mapped == reference))
    assert out["results"]["OUTPUT_JSON"] == js
    assert "Flooded vegetation" in _text(str(tmp_path / "r.html"))


@pytest.mark.qgis_process
def test_qgis_process_bad_input_leaves_nothing(qgis_process, tmp_path):
    chip = str(data_path(*CHIP))
    sample = str(tmp_path / "sample.gpkg")
    qgis_process("landfusion:stratifiedsample", {"INPUT": chip, "SAMPLE_SIZE": 30,
                                                 "ALLOCATION": 0, "OUTPUT": sample})
    rc, _, log = qgis_process("landfusion:accuracyreport", {
        "CLASSIFICATION": chip, "REFERENCE": sample, "CLASS_FIELD": "reference",
        "OUTPUT_HTML": str(tmp_path / "r.html"), "OUTPUT_JSON": str(tmp_path / "r.json")},
        check=False)
    assert rc != 0
    assert "no feature has a reference class" in log
    assert sorted(os.listdir(tmp_path)) == ["sample.gpkg"]


def test_reference_raster_pyqgis(run_algorithm, tmp_path):
    import rasterio

    chip = str(data_path(*CHIP))
    with rasterio.open(chip) as src:
        profile = src.profile
        data = src.read(1)
    reference = data.copy()
    reference[:20] = 4  # the reference disagrees on the top 20 rows
    reference[-5:] = 0  # and is unlabelled (nodata) on the last 5
    profile.update(nodata=0)
    path = str(tmp_path / "reference.tif")
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(reference, 1)
    js = str(tmp_path / "r.json")
    result = run_algorithm("landfusion:accuracyreport", {
        "CLASSIFICATION": chip, "REFERENCE": path, "SAMPLING_DESIGN": 1,
        "OUTPUT_HTML": str(tmp_path / "r.html"), "OUTPUT_JSON": js})
    report = _json(js)
    values = [c["value"] for c in report["classes"]]
    keep = reference != 0
    expected = error_matrix(data[keep], reference[keep], values)
    assert report["error_matrix"] == expected.tolist()
    assert result["SAMPLES"] == 224 * 219
    assert report["samples"]["kind"] == "raster" and report["samples"]["independent"] is False
    assert any("NOT independent" in n for n in report["notes"])
    assert result["OVERALL_ACCURACY"] == pytest.approx(np.mean(data[keep] == reference[keep]))
