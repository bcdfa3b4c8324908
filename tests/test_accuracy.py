"""Accuracy assessment engine: Olofsson et al. (2014) estimators, plain metrics, reference
extraction, reports and bad input (no QGIS)."""

import csv
import json
import math
import os
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from landfusion.core.accuracy.assess import assess_accuracy
from landfusion.core.accuracy.estimates import error_matrix, plain_metrics, stratified_estimates
from landfusion.core.accuracy.areas import count_classes
from landfusion.core.io.classmap import ClassInfo, apply_class_styling
from landfusion.core.errors import (CrsError, InputError, LandFusionError, NoDataError,
                                    NoOverlapError)

from conftest import data_path

# Olofsson et al. (2014), section 5: rows = map, columns = reference.
OLOFSSON_COUNTS = np.array([[66, 0, 5, 4], [0, 55, 8, 12], [1, 0, 153, 11], [2, 1, 9, 313]])
OLOFSSON_PIXELS = [200_000, 150_000, 3_200_000, 6_450_000]
OLOFSSON_NAMES = ["Deforestation", "Forest gain", "Stable forest", "Stable non-forest"]


def _text(path):
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def _json(path):
    return json.loads(_text(path))


def _csv(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def olofsson_by_hand(n, pixels, pixel_ha):
    """The paper's equations written out term by term, without numpy vectorisation."""
    q = len(pixels)
    total = float(sum(pixels))
    w = [p / total for p in pixels]
    ni = [sum(row) for row in n]
    p = [[w[i] * n[i][j] / ni[i] for j in range(q)] for i in range(q)]
    pk = [sum(p[i][k] for i in range(q)) for k in range(q)]
    oa = sum(p[j][j] for j in range(q))
    ua = [n[i][i] / ni[i] for i in range(q)]
    pa = [p[j][j] / pk[j] for j in range(q)]
    v_oa = sum(w[i] ** 2 * ua[i] * (1 - ua[i]) / (ni[i] - 1) for i in range(q))
    v_ua = [ua[i] * (1 - ua[i]) / (ni[i] - 1) for i in range(q)]
    # eq. 7 with pixel counts N
    n_hat = [sum(pixels[i] * n[i][j] / ni[i] for i in range(q)) for j in range(q)]
    v_pa = []
    for j in range(q):
        a = pixels[j] ** 2 * (1 - pa[j]) ** 2 * ua[j] * (1 - ua[j]) / (ni[j] - 1)
        b = pa[j] ** 2 * sum(pixels[i] ** 2 * n[i][j] / ni[i] * (1 - n[i][j] / ni[i])
                             / (ni[i] - 1) for i in range(q) if i != j)
        v_pa.append((a + b) / n_hat[j] ** 2)
    se_pk = [math.sqrt(sum((w[i] * p[i][k] - p[i][k] ** 2) / (ni[i] - 1) for i in range(q)))
             for k in range(q)]
    total_ha = total * pixel_ha
    return {
        "p": p, "oa": oa, "ua": ua, "pa": pa, "oa_ci": 1.96 * math.sqrt(v_oa),
        "ua_ci": [1.96 * math.sqrt(v) for v in v_ua], "pa_ci": [1.96 * math.sqrt(v) for v in v_pa],
        "area": [total_ha * v for v in pk], "area_ci": [1.96 * total_ha * s for s in se_pk],
    }


def test_olofsson_2014_worked_example():
    est = stratified_estimates(OLOFSSON_COUNTS, OLOFSSON_PIXELS, pixel_area_ha=0.09,
                               names=OLOFSSON_NAMES)
    # Numbers printed in the paper (section 5): deforestation 21,158 ± 6,158 ha, OA 0.95 ± 0.02.
    assert round(est["area_ha"][0]) == 21158
    assert round(est["area_ha_ci95"][0]) == 6158
    assert round(est["overall_accuracy"], 2) == 0.95
    assert round(est["overall_accuracy_ci95"], 2) == 0.02
    # The paper's other rounded values (areas in ha; accuracies to two decimals).
    assert [round(a) for a in est["area_ha"]] == [21158, 11686, 285770, 581386]
    assert [round(a) for a in est["area_ha_ci95"]] == [6158, 3756, 15510, 16282]
    assert [round(v, 2) for v in est["users_accuracy"]] == [0.88, 0.73, 0.93, 0.96]
    assert [round(v, 2) for v in est["users_accuracy_ci95"]] == [0.07, 0.10, 0.04, 0.02]
    assert [round(v, 2) for v in est["producers_accuracy"]] == [0.75, 0.85, 0.93, 0.96]
    assert [round(v, 2) for v in est["producers_accuracy_ci95"]] == [0.21, 0.25, 0.03, 0.02]
    assert est["total_area_ha"] == pytest.approx(900_000)
    assert est["mapped_area_ha"] == pytest.approx([18_000, 13_500, 288_000, 580_500])
    # Every number equals the paper's formulas written out by hand.
    hand = olofsson_by_hand(OLOFSSON_COUNTS.tolist(), OLOFSSON_PIXELS, 0.09)
    np.testing.assert_allclose(est["proportions"], hand["p"], rtol=1e-12)
    assert est["overall_accuracy"] == pytest.approx(hand["oa"], rel=1e-12)
    assert est["overall_accuracy_ci95"] == pytest.approx(hand["oa_ci"], rel=1e-12)
    np.testing.assert_allclose(est["users_accuracy"], hand["ua"], rtol=1e-12)
    np.testing.assert_allclose(est["users_accuracy_ci95"], hand["ua_ci"], rtol=1e-12)
    np.testing.assert_allclose(est["producers_accuracy"], hand["pa"], rtol=1e-12)
    np.testing.assert_allclose(est["producers_accuracy_ci95"], hand["pa_ci"], rtol=1e-12)
    np.testing.assert_allclose(est["area_ha"], hand["area"], rtol=1e-12)
    np.testing.assert_allclose(est["area_ha_ci95"], hand["area_ci"], rtol=1e-12)
    # Proportions sum to one; rows sum to the mapped weights.
    assert np.sum(est["proportions"]) == pytest.approx(1.0)
    np.testing.assert_allclose(np.sum(est["proportions"], axis=1), est["weights"])
    assert est["notes"] == []


def test_plain_metrics_equal_scikit_learn():
    from sklearn.metrics import (accuracy_score, cohen_kappa_score, confusion_matrix, f1_score,
                                 precision_recall_fscore_support)

    rng = np.random.default_rng(7)
    reference = rng.choice([0, 1, 2, 3, 5], size=400, p=[0.1, 0.3, 0.3, 0.2, 0.1])
    mapped = np.where(rng.random(400) < 0.7, reference, rng.choice([0, 1, 2, 3, 4], size=400))
    mapped[reference == 5] = rng.choice([1, 2], size=int((reference == 5).sum()))
    classes = [0, 1, 2, 3, 4, 5]  # 4 only mapped, 5 only in the reference; 0 is a real class
    counts = error_matrix(mapped, reference, classes)
    np.testing.assert_array_equal(counts, confusion_matrix(reference, mapped, labels=classes).T)
    m = plain_metrics(counts)
    assert m["overall_accuracy"] == pytest.approx(accuracy_score(reference, mapped))
    assert m["kappa"] == pytest.approx(cohen_kappa_score(reference, mapped))
    precision, recall, f1, _ = precision_recall_fscore_support(
        reference, mapped, labels=classes, zero_division=0)
    assert m["users_accuracy"][4] == pytest.approx(0.0)  # mapped, never correct
    assert m["users_accuracy"][5] is None  # never mapped: undefined, not 0
    np.testing.assert_allclose([v or 0.0 for v in m["users_accuracy"]], precision)
    np.testing.assert_allclose([v or 0.0 for v in m["producers_accuracy"]], recall)
    np.testing.assert_allclose(m["f1"], f1)
    assert m["macro_f1"] == pytest.approx(f1_score(reference, mapped, average="macro",
                                                   zero_division=0))
    assert m["n"] == 400
    assert m["map_samples"] == counts.sum(axis=1).tolist()


def test_single_sample_stratum_gives_note_not_crash():
    counts = np.array([[10, 2, 0], [1, 0, 0], [1, 2, 20]])  # stratum 2 has one sample
    est = stratified_estimates(counts, [100, 50, 850], names=["a", "b", "c"])
    assert est["users_accuracy"][1] == 0.0
    assert est["users_accuracy_se"][1] is None and est["users_accuracy_ci95"][1] is None
    assert est["users_accuracy_ci95"][0] is not None  # other strata keep their CI
    assert est["overall_accuracy_ci95"] is None
    assert all(v is None for v in est["area_ha_ci95"])
    assert est["area_ha"] == pytest.approx(np.array(est["area_proportion"]) * 1000)
    assert any("'b' has a single sample" in n and "undefined" in n for n in est["notes"])


def test_mapped_class_without_sample_is_refused_with_reason():
    counts = np.array([[10, 2], [0, 0]])
    with pytest.raises(NoDataError, match="'water'.*no reference sample"):
        stratified_estimates(counts, [100, 50], names=["land", "water"])


def test_reference_class_never_mapped_has_zero_weight():
    counts = np.array([[30, 3, 2], [4, 40, 1], [0, 0, 0]])  # class 3 never mapped
    est = stratified_estimates(counts, [600, 400, 0], pixel_area_ha=1.0)
    assert est["users_accuracy"][2] is None
    assert est["producers_accuracy"][2] == 0.0
    assert est["area_ha"][2] == pytest.approx(600 * 2 / 35 + 400 * 1 / 45)
    assert est["area_ha_ci95"][2] > 0


# ----------------------------------------------------------------------------- fixtures


def _write_class_raster(path, data, crs="EPSG:32633", transform=None, nodata=None, names=None):
    import rasterio
    from rasterio.transform import from_origin

    transform = transform or from_origin(500000, 5000000, 10, 10)
    profile = {"driver": "GTiff", "width": data.shape[1], "height": data.shape[0], "count": 1,
               "dtype": data.dtype.name, "crs": crs, "transform": transform}
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)
    if names:
        apply_class_styling(str(path), [ClassInfo(v, n, (10 * v, 100, 50)) for v, n in names.items()],
                            nodata=nodata, qml=False)
    return str(path)


def _write_points(path, points, field="ref", epsg=32633, field_type="int", geom="point"):
    from osgeo import ogr, osr

    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    layer = ds.CreateLayer("samples", srs, ogr.wkbPoint if geom == "point" else ogr.wkbPolygon)
    layer.CreateField(ogr.FieldDefn(field, ogr.OFTInteger if field_type == "int" else ogr.OFTString))
    for item in points:
        feature = ogr.Feature(layer.GetLayerDefn())
        if geom == "point":
            x, y, label = item
            g = ogr.Geometry(ogr.wkbPoint)
            g.AddPoint_2D(x, y)
        else:
            wkt, label = item
            g = ogr.CreateGeometryFromWkt(wkt)
        feature.SetGeometry(g)
        if label is not None:
            feature.SetField(field, label)
        layer.CreateFeature(feature)
    ds = None
    return str(path)


@pytest.fixture
def small_map(tmp_path):
    """40x40 map at 10 m: class 1 left half, 2 right half, 3 in a 10x10 corner, 0 nodata row."""
    data = np.ones((40, 40), np.uint8)
    data[:, 20:] = 2
    data[30:, 30:] = 3
    data[0, :] = 0
    return _write_class_raster(tmp_path / "map.tif", data, nodata=0,
                               names={1: "Forest", 2: "Crops", 3: "Water"})


def _centre(row, col):
    return 500000 + 10 * col + 5, 5000000 - 10 * row - 5


def test_count_classes_projected_and_geographic(tmp_path, small_map):
    counts = count_classes(small_map)
    assert counts.pixels == {1: 39 * 20, 2: 39 * 20 - 100, 3: 100}
    assert counts.nodata_pixels == 40
    assert counts.pixel_area_ha == pytest.approx(0.01)
    assert counts.area_ha[3] == pytest.approx(1.0)
    from rasterio.transform import from_origin

    geo = _write_class_raster(tmp_path / "geo.tif", np.ones((10, 10), np.uint8), crs="EPSG:4326",
                              transform=from_origin(10.0, 60.0, 0.001, 0.001))
    counts = count_classes(geo)
    assert counts.pixel_area_ha is None
    pyproj = pytest.importorskip("pyproj")
    area, _ = pyproj.Geod(ellps="WGS84").polygon_area_perimeter([10.0, 10.01, 10.01, 10.0],
                                                                  [60.0, 60.0, 59.99, 59.99])
    assert counts.total_area_ha == pytest.approx(abs(area) / 10000, rel=1e-6)


def _assess(tmp_path, classification, reference, **kwargs):
    out = {k: str(tmp_path / f"report.{k}") for k in ("html", "json", "csv")}
    result = assess_accuracy(classification, reference, output_html=out["html"],
                             output_json=out["json"], output_csv=out["csv"], **kwargs)
    return result, out


def test_points_with_reprojection_names_and_outputs(tmp_path, small_map):
    from osgeo import osr

    # Samples: 12 forest (2 labelled crops), 10 crops (1 labelled water), 6 water, 1 nodata,
    # 1 outside, 1 without label; written in EPSG:4326 so they must be reprojected.
    samples = [(_centre(r, 2 + r % 10), 1 if r not in (5, 6) else 2) for r in range(1, 13)]
    samples += [(_centre(r, 22), 2 if r != 9 else 3) for r in range(1, 11)]
    samples += [(_centre(31 + r, 31 + r), 3) for r in range(6)]
    samples += [(_centre(0, 5), 1), ((400000.0, 4000000.0), 1), (_centre(3, 3), None)]
    utm = osr.SpatialReference()
    utm.ImportFromEPSG(32633)
    wgs = osr.SpatialReference()
    wgs.ImportFromEPSG(4326)
    for s in (utm, wgs):
        s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    to_wgs = osr.CoordinateTransformation(utm, wgs)
    points = [(*to_wgs.TransformPoint(x, y)[:2], label) for (x, y), label in samples]
    reference = _write_points(tmp_path / "ref.gpkg", points, epsg=4326)
    logs = []
    result, out = _assess(tmp_path, small_map, reference, class_field="ref", log=logs.append)
    assert any("reprojected" in m for m in logs)
    assert [c["name"] for c in result["classes"]] == ["Forest", "Crops", "Water"]
    assert result["error_matrix"] == [[10, 2, 0], [0, 9, 1], [0, 0, 6]]
    assert result["samples"] == {"count": 28, "kind": "points", "polygon_mode": None,
                                 "independent": True, "features": 31, "outside_map": 1,
                                 "on_map_nodata": 1, "unlabelled": 1}
    assert result["metrics"]["overall_accuracy"] == pytest.approx(25 / 28)
    est = result["area_adjusted"]
    assert result["map"]["pixels"] == [780, 680, 100]
    assert est["total_area_ha"] == pytest.approx(15.6)
    # Hand check of one estimate: area of Crops = A * (W_forest * 2/12 + W_crops * 9/10).
    w = np.array([780, 680, 100]) / 1560
    assert est["area_ha"][1] == pytest.approx(15.6 * (w[0] * 2 / 12 + w[1] * 9 / 10))
    assert any("outside the classification" in n for n in result["notes"])
    assert any("nodata" in n for n in result["notes"])

    saved = _json(out["json"])
    assert saved["error_matrix"] == result["error_matrix"]
    assert saved["area_adjusted"]["area_ha"] == pytest.approx(est["area_ha"])
    assert saved["orientation"] == "rows = map classes, columns = reference classes"
    rows = _csv(out["csv"])
    assert rows[0][0].startswith("# Error matrix, sample counts (rows = map")
    assert rows[1] == ["map \\ reference", "Forest", "Crops", "Water", "total"]
    assert rows[2] == ["Forest", "10", "2", "0", "12"]
    html = _text(out["html"])
    assert "rows = map classes, columns = reference classes" in html
    assert "<script" not in html and not re.search(r"(src|href)=\"https?:", html)
    svgs = re.findall(r"<svg.*?</svg>", html, flags=re.S)
    assert len(svgs) == 2
    for svg in svgs:
        ET.fromstring(svg)  # well-formed
    assert f"{est['overall_accuracy']:.3f} ± {est['overall_accuracy_ci95']:.3f}" in html


def test_reference_names_string_field_and_unknown_design(tmp_path, small_map):
    points = [(*_centre(5, 5), "forest"), (*_centre(6, 6), "Crops"), (*_centre(7, 25), "crops"),
              (*_centre(35, 35), "Wetland"), (*_centre(36, 36), "water")]
    reference = _write_points(tmp_path / "ref.gpkg", points, field="label", field_type="str")
    warnings = []
    result, out = _assess(tmp_path, small_map, reference, class_field="LABEL", design="unknown",
                          warn=warnings.append)
    names = [c["name"] for c in result["classes"]]
    assert names == ["Forest", "Crops", "Water", "Wetland"]
    assert result["error_matrix"] == [[1, 1, 0, 0], [0, 1, 0, 0], [0, 0, 1, 1], [0, 0, 0, 0]]
    assert result["area_adjusted"] is None
    assert any("design unknown" in n for n in result["notes"])
    assert any("'Wetland' occurs in the reference but the map never assigns it" in n
               for n in result["notes"])
    assert any("Wetland" in w for w in warnings)
    assert _json(out["json"])["area_adjusted"] is None


def test_polygons_majority_centroid_and_all_pixels(tmp_path, small_map):
    def square(r0, c0, size):
        x0, y0 = 500000 + 10 * c0, 5000000 - 10 * r0
        x1, y1 = x0 + 10 * size, y0 - 10 * size
        return f"POLYGON(({x0} {y0},{x1} {y0},{x1} {y1},{x0} {y1},{x0} {y0}))"

    polygons = [(square(5, 16, 6), 1),   # 4 columns forest, 2 crops: majority forest
                (square(10, 18, 6), 2),  # 2 forest, 4 crops: majority crops
                (square(31, 31, 3), 3)]  # water
    reference = _write_points(tmp_path / "poly.gpkg", polygons, geom="polygon")
    majority, _ = _assess(tmp_path, small_map, reference, class_field="ref")
    assert majority["error_matrix"] == [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
    assert majority["samples"]["independent"] is True
    centroid, _ = _assess(tmp_path, small_map, reference, class_field="ref",
                          polygon_mode="centroid")
    # centroid of the first square is on column 19 (forest), of the second on column 21 (crops)
    assert centroid["error_matrix"] == [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
    pixels, out = _assess(tmp_path, small_map, reference, class_field="ref",
                          polygon_mode="all_pixels")
    assert pixels["error_matrix"] == [[24, 12, 0], [12, 24, 0], [0, 0, 9]]
    assert pixels["samples"]["independent"] is False
    assert any("NOT independent" in n for n in pixels["notes"])
    assert "not independent" in _text(out["html"])


def test_reference_raster_on_other_grid(tmp_path, small_map):
    from rasterio.transform import from_origin

    # Reference at 20 m: 20x20 pixels, class 1 left, 2 right; upper-left 5x5 block unlabelled.
    ref = np.ones((20, 20), np.int16)
    ref[:, 10:] = 2
    ref[:5, :5] = -1
    path = _write_class_raster(tmp_path / "ref.tif", ref, transform=from_origin(500000, 5000000,
                                                                                 20, 20), nodata=-1)
    result, _ = _assess(tmp_path, small_map, path)
    counts = np.array(result["error_matrix"])
    assert counts.sum() == 1560 - 9 * 10  # the unlabelled block minus its map-nodata row
    assert counts[0, 0] == 780 - 90 and counts[1, 1] == 680 and counts[2, 1] == 100
    assert result["samples"]["kind"] == "raster" and result["samples"]["independent"] is False


def test_numeric_ids_when_no_category_names(tmp_path):
    data = np.array([[1, 1, 2, 2]] * 4, np.uint8)
    path = _write_class_raster(tmp_path / "plain.tif", data)
    points = [(*_centre(0, 0), 1), (*_centre(1, 1), 1), (*_centre(2, 2), 2), (*_centre(3, 3), 1),
              (*_centre(0, 3), 2), (*_centre(1, 0), 1)]
    reference = _write_points(tmp_path / "ref.gpkg", points)
    result, _ = _assess(tmp_path, path, reference, class_field="ref")
    assert [c["name"] for c in result["classes"]] == ["1", "2"]
    assert result["error_matrix"] == [[3, 0], [1, 2]]


@pytest.mark.parametrize("case", ["outside", "field", "no_labels", "crs", "design"])
def test_bad_input_names_problem_and_leaves_nothing(tmp_path, small_map, case):
    points = [(*_centre(5, 5), 1), (*_centre(6, 25), 2)]
    kwargs = {"class_field": "ref"}
    if case == "outside":
        points = [(100.0, 200.0, 1), (300.0, 400.0, 2)]
        error, match = NoOverlapError, "none of its 2 features lies inside"
    elif case == "field":
        kwargs["class_field"] = "klass"
        error, match = InputError, "no field 'klass'.*fields are: ref"
    elif case == "no_labels":
        points = [(*_centre(5, 5), None), (*_centre(6, 25), None)]
        error, match = NoDataError, "no feature has a reference class"
    elif case == "design":
        kwargs["design"] = "cluster"
        error, match = InputError, "Unknown sampling design 'cluster'"
    else:
        error, match = CrsError, "has no CRS"
    reference = _write_points(tmp_path / "ref.gpkg", points)
    if case == "crs":
        from osgeo import ogr

        ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(tmp_path / "nocrs.gpkg"))
        layer = ds.CreateLayer("x", None, ogr.wkbPoint)
        layer.CreateField(ogr.FieldDefn("ref", ogr.OFTInteger))
        f = ogr.Feature(layer.GetLayerDefn())
        f.SetGeometry(ogr.CreateGeometryFromWkt("POINT(500055 4999945)"))
        f.SetField("ref", 1)
        layer.CreateFeature(f)
        ds = None
        reference = str(tmp_path / "nocrs.gpkg")
    with pytest.raises(error, match=match):
        _assess(tmp_path, small_map, reference, **kwargs)
    assert not [p for p in os.listdir(tmp_path) if p.startswith(("report", ".landfusion"))]


def test_single_sample_class_end_to_end(tmp_path, small_map):
    points = [(*_centre(r, 3), 1) for r in range(1, 6)] + [(*_centre(r, 25), 2) for r in range(1, 6)]
    points.append((*_centre(35, 35), 3))
    reference = _write_points(tmp_path / "ref.gpkg", points)
    result, out = _assess(tmp_path, small_map, reference, class_field="ref")
    est = result["area_adjusted"]
    assert est["overall_accuracy"] == pytest.approx(1.0)
    assert est["overall_accuracy_ci95"] is None
    assert any("'Water' has a single sample" in n for n in result["notes"])
    assert "1.000 ± n/a" in _text(out["html"])


def test_unsampled_map_class_keeps_plain_metrics(tmp_path, small_map):
    points = [(*_centre(r, 3), 1) for r in range(1, 6)] + [(*_centre(r, 25), 2) for r in range(1, 6)]
    reference = _write_points(tmp_path / "ref.gpkg", points)
    result, _ = _assess(tmp_path, small_map, reference, class_field="ref")
    assert result["area_adjusted"] is None
    assert result["metrics"]["overall_accuracy"] == 1.0
    assert any("'Water'" in n and "no reference sample" in n for n in result["notes"])


def test_real_chip_labels_with_known_errors(tmp_path):
    """A TerraMind LULC chip as the map; reference = map with known, deliberate errors."""
    import rasterio

    chip = str(data_path("terramind", "LULC", "433D_629L_3_1.tif"))
    with rasterio.open(chip) as src:
        data = src.read(1)
        transform = src.transform
        epsg = src.crs.to_epsg()
    rng = np.random.default_rng(3)
    rows = rng.integers(0, data.shape[0], 150)
    cols = rng.integers(0, data.shape[1], 150)
    rare_rows, rare_cols = np.nonzero(data == 3)  # make sure the rare class has samples
    rows[:3], cols[:3] = rare_rows[:3], rare_cols[:3]
    mapped = data[rows, cols].astype(int)
    reference = mapped.copy()
    flip = rng.random(150) < 0.2
    reference[flip] = 4  # crops
    xs, ys = transform * (cols + 0.5, rows + 0.5)
    path = _write_points(tmp_path / "ref.gpkg", list(zip(xs, ys, reference.tolist())), epsg=epsg)
    result, _ = _assess(tmp_path, chip, path, class_field="ref", design="simple")
    values = [c["value"] for c in result["classes"]]
    assert values == [1, 2, 3, 4, 5, 9]
    expected = error_matrix(mapped, reference, values)
    assert result["error_matrix"] == expected.tolist()
    assert result["metrics"]["overall_accuracy"] == pytest.approx(np.mean(mapped == reference))
    assert result["map"]["pixels"] == [int((data == v).sum()) for v in values]
    assert result["map"]["total_area_ha"] == pytest.approx(224 * 224 * 0.01)
    assert any("post-strata" in n for n in result["notes"])


def test_engine_errors_are_landfusion_errors():
    with pytest.raises(LandFusionError):
        error_matrix([1, 2], [1], [1, 2])


def test_error_matrix_pair_counts_and_unknown_labels():
    counts = error_matrix([1, 2, 7], [1, 1, 2], [7, 1, 2], counts=[5, 3, 2])
    assert counts.tolist() == [[0, 0, 2], [0, 5, 0], [0, 3, 0]]  # rows/cols in the given order
    with pytest.raises(InputError, match=r"Labels \[9\] are not among the classes \[1, 2\]"):
        error_matrix([1, 9], [1, 2], [1, 2])


def test_reference_raster_elsewhere_is_refused(tmp_path, small_map):
    from rasterio.transform import from_origin

    path = _write_class_raster(tmp_path / "ref.tif", np.ones((10, 10), np.uint8),
                               transform=from_origin(600000, 5000000, 10, 10), nodata=0)
    with pytest.raises(NoOverlapError, match="no labelled pixel on a classified pixel"):
        _assess(tmp_path, small_map, path)
    assert not [p for p in os.listdir(tmp_path) if p.startswith(("report", ".landfusion"))]


def test_polygon_pixels_read_in_strips_give_same_histogram(small_map):
    import rasterio
    from osgeo import ogr

    from landfusion.core.accuracy.reference import polygon_pixels

    polygon = ogr.CreateGeometryFromWkt(
        "POLYGON((500050 4999950,500350 4999950,500350 4999650,500050 4999650,500050 4999950))")
    with rasterio.open(small_map) as src:
        whole = polygon_pixels(src, polygon, 0)
        strips = polygon_pixels(src, polygon, 0, budget_pixels=7)
    # rows and columns 5..34: 15 columns of forest, 15 of crops less the 5 x 5 water corner
    assert whole == strips == {1: 450, 2: 425, 3: 25}


def test_count_classes_fast_and_general_paths_agree(tmp_path):
    """uint8 maps are counted with raw bincounts, others value by value: the same numbers."""
    rng = np.random.default_rng(3)
    data = rng.choice([0, 1, 2, 5, 9], size=(37, 23)).astype(np.uint8)
    fast = count_classes(_write_class_raster(tmp_path / "u8.tif", data, nodata=0))
    general = count_classes(_write_class_raster(tmp_path / "i16.tif", data.astype(np.int16),
                                                nodata=0))
    assert fast.pixels == general.pixels == {v: int((data == v).sum()) for v in (1, 2, 5, 9)}
    assert fast.nodata_pixels == general.nodata_pixels == int((data == 0).sum())
    assert fast.area_ha == pytest.approx(general.area_ha)
    assert fast.pixel_area_ha == general.pixel_area_ha == pytest.approx(0.01)


@pytest.mark.parametrize("option, match", [
    ({"polygon_mode": "bogus"}, "Unknown polygon mode 'bogus'"),
    ({"design": "cluster"}, "Unknown sampling design 'cluster'"),
    ({"output_html": None}, "at least one report output"),
])
def test_options_are_checked_before_any_input_is_opened(tmp_path, option, match):
    options = dict({"class_field": "ref", "output_html": str(tmp_path / "r.html")}, **option)
    with pytest.raises(InputError, match=match):
        assess_accuracy(str(tmp_path / "absent.tif"), str(tmp_path / "absent.gpkg"), **options)
    assert os.listdir(tmp_path) == []
