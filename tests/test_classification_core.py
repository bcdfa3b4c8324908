"""Engine tests of training and classification on real chips (no QGIS)."""

import json
import os
import re
import xml.etree.ElementTree as ET
import pickle

import numpy as np
import pytest
import rasterio

from classification_data import (
    label_polygons, rasterise_reference, split_polygons, terramind_stack, write_stack,
)
from conftest import data_path
from landfusion.core.classification.classify import classify_raster
from landfusion.core.io.classmap import read_class_styling
from landfusion.core.errors import (
    BandError, CancelledError, InputError, ModelError, NoDataError, NoOverlapError,
)
from landfusion.core.models.reading import read_model
from landfusion.core.classification.samples import extract_samples
from landfusion.core.choices import CLASSIFIERS
from landfusion.core.classification.train import train_classifier

CHIP = "433D_629L_3_1"  # Chile: water, trees, crops, built area, rangeland
CHIP_CLASSES = [1, 2, 4, 5, 9]
S2_13 = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12"]
FAST_RF = {"n_estimators": 40}


def _held_out(feature):
    return (feature.GetField("cell_row") + feature.GetField("cell_col")) % 3 == 0


@pytest.fixture(scope="module")
def terramind(tmp_path_factory):
    """S1+S2 stack of a TerraMind chip and LULC polygons (in EPSG:4326) split by grid cell."""
    tmp = tmp_path_factory.mktemp("terramind")
    stack = terramind_stack(tmp, CHIP)
    polygons = label_polygons(str(data_path("terramind", "LULC", f"{CHIP}.tif")),
                              tmp / "lulc.gpkg", CHIP_CLASSES, epsg=4326)
    train, test = split_polygons(polygons, tmp / "train.gpkg", tmp / "test.gpkg", _held_out)
    return {"tmp": tmp, "stack": stack, "polygons": polygons, "train": train, "test": test}


@pytest.fixture(scope="module")
def terramind_model(terramind):
    """A Random Forest trained on the training polygons, with its classification."""
    tmp = terramind["tmp"]
    warnings = []
    result = train_classifier(
        terramind["stack"], terramind["train"], "class", str(tmp / "rf.onnx"),
        str(tmp / "rf.html"), parameters=FAST_RF, folds=3, name_field="name",
        color_field="colour", max_per_class=2000, warn=warnings.append)
    classified = classify_raster(terramind["stack"], str(tmp / "rf.onnx"), str(tmp / "rf.tif"),
                                 str(tmp / "rf_conf.tif"), str(tmp / "rf_prob.tif"))
    return {"result": result, "classified": classified, "warnings": warnings}


def test_samples_are_the_pixels_whose_centre_is_in_a_polygon(terramind):
    """Reprojected polygons made of label pixels give back exactly those pixels."""
    from osgeo import ogr

    samples = extract_samples(terramind["stack"], terramind["polygons"], "class")
    dataset = ogr.Open(terramind["polygons"])
    expected = {f.GetFID(): f.GetField("pixels") for f in dataset.GetLayer(0)}
    got = {p["fid"]: p["pixels"] for p in samples.polygon_pixels}
    assert got == expected
    assert samples.stats.reprojected and samples.stats.outside == 0
    assert samples.X.shape == (sum(expected.values()), 14)
    assert [c.value for c in samples.classes] == CHIP_CLASSES
    # Every sample carries the LULC class of its pixel.
    with rasterio.open(data_path("terramind", "LULC", f"{CHIP}.tif")) as src:
        lulc = src.read(1)
    with rasterio.open(terramind["stack"]) as src:
        stack = src.read()
    flat = stack.reshape(14, -1).T
    lookup = {tuple(row): lulc.reshape(-1)[i] for i, row in enumerate(flat[:, :4])}
    rows = np.random.default_rng(0).choice(samples.y.size, 300, replace=False)
    assert all(lookup[tuple(samples.X[r, :4])] == samples.y[r] for r in rows)


def test_cap_per_class_is_stratified_and_seeded(terramind):
    a = extract_samples(terramind["stack"], terramind["train"], "class", max_per_class=500, seed=3)
    b = extract_samples(terramind["stack"], terramind["train"], "class", max_per_class=500, seed=3)
    counts = a.class_counts()
    assert max(counts.values()) == 500
    assert all(n <= 500 for n in counts.values())
    assert np.array_equal(a.X, b.X)
    assert a.subsampled  # the big classes report how many pixels they had


def test_terramind_s1_s2_training_and_held_out_accuracy(terramind, terramind_model):
    """RF on S1+S2 reaches >= 0.60 overall accuracy on spatially held-out LULC polygons.

    Measured: grouped 3-fold OA 0.64 (pixel 3-fold 0.86) on the training polygons; 0.64 on the
    61 held-out polygons (14 269 pixels). LULC is a 10-class global product, so its labels are
    themselves approximate.
    """
    result = terramind_model["result"]
    with rasterio.open(terramind["tmp"] / "rf.tif") as src:
        classes = src.read(1)
        assert src.crs == rasterio.open(terramind["stack"]).crs
        assert src.transform == rasterio.open(terramind["stack"]).transform
    reference = rasterise_reference(terramind["test"], terramind["stack"])
    held = reference > 0
    accuracy = float(np.mean(classes[held] == reference[held]))
    assert held.sum() > 5000
    assert accuracy >= 0.60, accuracy
    scores = result["scores"]
    assert scores["method"] == "grouped"
    # Pixel-level k-fold leaks neighbouring pixels into training: it must look better.
    assert scores["pixel"]["overall_accuracy"] > scores["grouped"]["overall_accuracy"]


def test_onnx_predictions_equal_the_in_memory_model(terramind, terramind_model):
    model = terramind_model["result"]["model_object"]
    with rasterio.open(terramind["stack"]) as src:
        pixels = src.read().reshape(src.count, -1).T
    with rasterio.open(terramind["tmp"] / "rf.tif") as src:
        onnx_labels = src.read(1).reshape(-1)
    with rasterio.open(terramind["tmp"] / "rf_prob.tif") as src:
        onnx_probabilities = src.read().reshape(src.count, -1).T
        assert list(src.descriptions) == ["water", "trees", "crops", "built area", "rangeland"]
    expected = model.predict(pixels)
    expected_probabilities = model.predict_proba(pixels)
    # Exact ties between the two most probable classes (a few pixels in 50 000 with 40 trees) may
    # break either way: scikit-learn sums in float64, onnxruntime in float32.
    top_two = np.sort(expected_probabilities, axis=1)[:, -2:]
    decided = top_two[:, 1] - top_two[:, 0] > 1e-6
    assert decided.mean() > 0.97
    assert np.array_equal(onnx_labels[decided], expected[decided])
    assert np.allclose(onnx_probabilities, expected_probabilities, atol=1e-5)
    with rasterio.open(terramind["tmp"] / "rf_conf.tif") as src:
        confidence, margin = src.read()
        assert src.descriptions == ("confidence", "margin")
    ordered = np.sort(onnx_probabilities, axis=1)
    assert np.allclose(confidence.reshape(-1), ordered[:, -1], atol=1e-6)
    assert np.allclose(margin.reshape(-1), ordered[:, -1] - ordered[:, -2], atol=1e-6)


def test_class_raster_styling_and_model_metadata(terramind, terramind_model):
    classes = read_class_styling(str(terramind["tmp"] / "rf.tif"))
    assert [(c.value, c.name, c.hex()) for c in classes] == [
        (1, "water", "#419bdf"), (2, "trees", "#397d49"), (4, "crops", "#e49635"),
        (5, "built area", "#c4281b"), (9, "rangeland", "#e3e2c3")]
    assert os.path.exists(terramind["tmp"] / "rf.qml")
    info = read_model(str(terramind["tmp"] / "rf.onnx"))
    assert info.task == "pixel_classifier" and info.format_version == 2
    assert info.band_names == ["VV", "VH", "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08",
                               "B8A", "B09", "B11", "B12"]
    assert [c.name for c in info.classes] == ["water", "trees", "crops", "built area", "rangeland"]
    assert info.output_nodata == 0
    assert info.pixel_size == pytest.approx(10.0)
    assert "UTM zone 18S" in info.crs
    assert info.metrics["method"] == "grouped" and len(info.metrics["per_class"]) == 5
    assert "scikit-learn" in info.software and "onnxruntime" in info.software
    # Per-band training statistics: VV in dB is negative, B04 in DN positive.
    vv, b04 = info.band_stats[0], info.band_stats[5]
    assert vv["max"] < 5 and vv["min"] < vv["mean"] < vv["max"] and vv["std"] > 0
    assert b04["min"] >= 0 and b04["mean"] > 100
    report = json.loads((terramind["tmp"] / "rf.json").read_text())
    grouped = report["validation"]["grouped"]
    # One orientation across reports (the accuracy report's): rows = predicted, columns =
    # reference, so the column sums are the reference supports.
    assert grouped["orientation"].startswith("rows = predicted")
    matrix = np.array(grouped["confusion_matrix"])
    assert matrix.sum(axis=0).tolist() == [c["support"] for c in grouped["per_class"]]
    assert len(report["validation"]["pixel"]["per_class"]) == 5
    html = (terramind["tmp"] / "rf.html").read_text()
    assert "k-fold grouped by polygon" in html and "built area" in html
    assert "Rows = predicted (map) classes, columns = reference classes" in html
    assert "<script" not in html and not re.search(r"(src|href)=\"https?:", html)
    svgs = re.findall(r"<svg.*?</svg>", html, flags=re.S)
    assert len(svgs) == 3  # F1 bars, grouped and pixel confusion heat maps
    for svg in svgs:
        ET.fromstring(svg)
    assert "F1 per class" in svgs[0] and "Predicted (rows)" in svgs[1]


def test_sen1floods11_fusion_is_not_worse_than_the_best_single_source(tmp_path):
    """Water/land on Sen1Floods11 Spain, held-out polygons (checkerboard of 64-pixel cells).

    Measured: S1 only 0.883, S2 only 0.974, S1+S2 0.975.
    """
    folder = data_path("sen1floods11")
    s1 = str(folder / "Spain_7370579_S1Hand.tif")
    s2 = str(folder / "Spain_7370579_S2Hand.tif")
    stacks = {
        "s1": write_stack(tmp_path / "s1.tif", [(s1, ["VV", "VH"])], s1),
        "s2": write_stack(tmp_path / "s2.tif", [(s2, S2_13)], s1),
        "fused": write_stack(tmp_path / "fused.tif", [(s1, ["VV", "VH"]), (s2, S2_13)], s1),
    }
    polygons = label_polygons(str(folder / "Spain_7370579_LabelHand.tif"), tmp_path / "p.gpkg",
                              [1, 2], cell=64, label_map={0: 1, 1: 2},
                              names={1: "land", 2: "water"},
                              colours={1: "#b0a070", 2: "#2060ff"}, epsg=3857)
    train, test = split_polygons(
        polygons, tmp_path / "train.gpkg", tmp_path / "test.gpkg",
        lambda f: (f.GetField("cell_row") + f.GetField("cell_col")) % 2 == 0)
    reference = rasterise_reference(test, stacks["s1"])
    held = reference > 0
    accuracy = {}
    for name, stack in stacks.items():
        model = str(tmp_path / f"{name}.onnx")
        train_classifier(stack, train, "class", model, None, parameters={"n_estimators": 50},
                         folds=0, name_field="name", color_field="colour", max_per_class=2000)
        classify_raster(stack, model, str(tmp_path / f"{name}.tif"))
        with rasterio.open(tmp_path / f"{name}.tif") as src:
            predicted = src.read(1)
        accuracy[name] = float(np.mean(predicted[held] == reference[held]))
    assert accuracy["s1"] >= 0.85, accuracy
    assert accuracy["s2"] >= 0.95, accuracy
    assert accuracy["fused"] >= max(accuracy["s1"], accuracy["s2"]), accuracy


def test_every_algorithm_exports_an_onnx_model_that_agrees_with_scikit_learn(terramind):
    parameters = {"random_forest": {"n_estimators": 10}, "mlp": {"max_iter": 60},
                  "hist_gradient_boosting": {"max_iter": 15}}
    for key in CLASSIFIERS:
        model_path = str(terramind["tmp"] / f"{key}.onnx")
        result = train_classifier(terramind["stack"], terramind["train"], "class", model_path,
                                  None, algorithm=key, parameters=parameters.get(key), folds=0,
                                  max_per_class=150)
        report_check = result["model_object"]
        with rasterio.open(terramind["stack"]) as src:
            pixels = src.read(window=((0, 40), (0, 224))).reshape(src.count, -1).T
        out = terramind["tmp"] / f"{key}.tif"
        classify_raster(terramind["stack"], model_path, str(out))
        with rasterio.open(out) as src:
            labels = src.read(1, window=((0, 40), (0, 224))).reshape(-1)
        agreement = np.mean(labels == report_check.predict(pixels))
        assert agreement >= 0.999, (key, agreement)


def test_text_class_field_gets_alphabetical_ids_and_keeps_names(tmp_path):
    folder = data_path("sen1floods11")
    s1 = str(folder / "Spain_7370579_S1Hand.tif")
    polygons = label_polygons(str(folder / "Spain_7370579_LabelHand.tif"), tmp_path / "p.gpkg",
                              [1, 2], cell=128, label_map={0: 1, 1: 2},
                              names={1: "land", 2: "water"}, text_class=True)
    samples = extract_samples(s1, polygons, "class", max_per_class=100)
    assert [(c.value, c.name) for c in samples.classes] == [(1, "land"), (2, "water")]


def test_points_sample_the_pixel_under_each_point(tmp_path):
    from osgeo import ogr, osr

    s1 = str(data_path("sen1floods11", "Spain_7370579_S1Hand.tif"))
    with rasterio.open(s1) as src:
        data, transform = src.read(), src.transform
    rng = np.random.default_rng(1)
    rows, cols = rng.choice(512, 40, replace=False), rng.choice(512, 40, replace=False)
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(tmp_path / "points.gpkg"))
    layer = ds.CreateLayer("points", srs=srs, geom_type=ogr.wkbPoint)
    layer.CreateField(ogr.FieldDefn("class", ogr.OFTInteger))
    for i, (r, c) in enumerate(zip(rows, cols)):
        # A point off the pixel centre still samples that pixel.
        x, y = transform * (c + 0.3, r + 0.8)
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetField("class", 1 + i % 2)
        point = ogr.Geometry(ogr.wkbPoint)
        point.AddPoint_2D(x, y)
        feature.SetGeometry(point)
        layer.CreateFeature(feature)
    ds = None
    samples = extract_samples(s1, str(tmp_path / "points.gpkg"), "class")
    assert samples.geometry_kind == "point"
    order = np.argsort(samples.groups)
    expected = data[:, rows, cols].T
    assert np.allclose(samples.X[order], expected)
    assert list(samples.y[order]) == [1 + i % 2 for i in range(40)]


# --- bad input ------------------------------------------------------------------------------


def _polygon_layer(path, crs_epsg, polygons, field_type="int"):
    """Writes (wkt, class) polygons to a GeoPackage; class None means null."""
    from osgeo import ogr, osr

    srs = osr.SpatialReference()
    srs.ImportFromEPSG(crs_epsg)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    layer = ds.CreateLayer("training", srs=srs, geom_type=ogr.wkbPolygon)
    layer.CreateField(ogr.FieldDefn("class", ogr.OFTInteger if field_type == "int"
                                    else ogr.OFTString))
    for wkt, value in polygons:
        feature = ogr.Feature(layer.GetLayerDefn())
        if value is not None:
            feature.SetField("class", value)
        feature.SetGeometry(ogr.CreateGeometryFromWkt(wkt))
        layer.CreateFeature(feature)
    ds = None
    return str(path)


def _box(x0, y0, x1, y1):
    return f"POLYGON(({x0} {y0},{x1} {y0},{x1} {y1},{x0} {y1},{x0} {y0}))"


@pytest.fixture(scope="module")
def s1_chip():
    path = str(data_path("sen1floods11", "Spain_7370579_S1Hand.tif"))
    with rasterio.open(path) as src:
        return path, src.bounds


def _inner_box(bounds, fx0, fy0, fx1, fy1):
    w, h = bounds.right - bounds.left, bounds.top - bounds.bottom
    return _box(bounds.left + fx0 * w, bounds.bottom + fy0 * h, bounds.left + fx1 * w,
                bounds.bottom + fy1 * h)


def _no_outputs(*paths):
    return not any(os.path.exists(p) for p in paths)


def test_missing_and_null_class_fields_are_named(tmp_path, s1_chip):
    raster, bounds = s1_chip
    layer = _polygon_layer(tmp_path / "null.gpkg", 4326, [
        (_inner_box(bounds, 0.1, 0.1, 0.2, 0.2), None), (_inner_box(bounds, 0.5, 0.5, 0.6, 0.6),
                                                         None)])
    model = str(tmp_path / "m.onnx")
    with pytest.raises(InputError, match="no field 'landcover'.*class"):
        train_classifier(raster, layer, "landcover", model)
    with pytest.raises(NoDataError, match="empty \\(null\\) in all 2 features"):
        train_classifier(raster, layer, "class", model)
    assert _no_outputs(model)


def test_one_class_only_is_refused(tmp_path, s1_chip):
    raster, bounds = s1_chip
    layer = _polygon_layer(tmp_path / "one.gpkg", 4326, [
        (_inner_box(bounds, 0.1, 0.1, 0.2, 0.2), 3), (_inner_box(bounds, 0.5, 0.5, 0.6, 0.6), 3)])
    model, report = str(tmp_path / "m.onnx"), str(tmp_path / "r.html")
    with pytest.raises(NoDataError, match="one class only.*at least two classes"):
        train_classifier(raster, layer, "class", model, report)
    assert _no_outputs(model, report, str(tmp_path / "r.json"))


def test_single_polygon_class_falls_back_to_pixel_validation_with_a_warning(tmp_path, s1_chip):
    raster, bounds = s1_chip
    layer = _polygon_layer(tmp_path / "single.gpkg", 4326, [
        (_inner_box(bounds, 0.05, 0.05, 0.2, 0.2), 1), (_inner_box(bounds, 0.3, 0.3, 0.4, 0.4), 1),
        (_inner_box(bounds, 0.6, 0.6, 0.8, 0.8), 2)])
    warnings = []
    result = train_classifier(raster, layer, "class", str(tmp_path / "m.onnx"), None,
                              parameters=FAST_RF, folds=3, warn=warnings.append)
    assert result["scores"]["method"] == "pixel"
    assert result["validation"]["grouped"] is None
    assert any("'Class 2' have a single polygon" in w and "optimistic" in w for w in warnings)


def test_fewer_polygons_than_folds_reduces_the_folds_with_a_warning(tmp_path, s1_chip):
    raster, bounds = s1_chip
    boxes = [(_inner_box(bounds, 0.05 + 0.1 * i, 0.05, 0.1 + 0.1 * i, 0.1), 1 + i % 2)
             for i in range(6)]
    warnings = []
    result = train_classifier(raster, _polygon_layer(tmp_path / "few.gpkg", 4326, boxes), "class",
                              str(tmp_path / "m.onnx"), None, parameters=FAST_RF, folds=5,
                              warn=warnings.append)
    assert result["validation"]["grouped"]["folds"] == 3
    assert any("Too few polygons for 5 folds" in w and "uses 3 folds" in w for w in warnings)


def test_polygons_outside_are_counted_and_all_outside_is_an_error(tmp_path, s1_chip):
    raster, bounds = s1_chip
    far = _box(10, 10, 10.1, 10.1)
    layer = _polygon_layer(tmp_path / "some.gpkg", 4326, [
        (_inner_box(bounds, 0.1, 0.1, 0.2, 0.2), 1), (_inner_box(bounds, 0.5, 0.5, 0.6, 0.6), 2),
        (far, 1), (far, 2)])
    warnings = []
    samples = extract_samples(raster, layer, "class", warn=warnings.append)
    assert samples.stats.outside == 2
    assert any("2 training feature(s) lie outside the raster" in w for w in warnings)
    outside = _polygon_layer(tmp_path / "all.gpkg", 4326, [(far, 1), (far, 2)])
    model = str(tmp_path / "m.onnx")
    with pytest.raises(NoOverlapError, match="All 2 training features lie outside the raster"):
        train_classifier(raster, outside, "class", model)
    assert _no_outputs(model)


def test_vector_in_another_crs_without_overlap_is_an_error(tmp_path, s1_chip):
    raster, _ = s1_chip
    # Valid UTM polygons in Finland; the raster is in Spain.
    layer = _polygon_layer(tmp_path / "utm.gpkg", 32635, [
        (_box(400000, 6700000, 401000, 6701000), 1), (_box(402000, 6700000, 403000, 6701000), 2)])
    with pytest.raises(NoOverlapError, match="outside the raster.*same area"):
        train_classifier(raster, layer, "class", str(tmp_path / "m.onnx"))


def test_invalid_geometries_are_repaired_and_counted(tmp_path, s1_chip):
    raster, bounds = s1_chip
    w, h = bounds.right - bounds.left, bounds.top - bounds.bottom
    x0, y0 = bounds.left + 0.1 * w, bounds.bottom + 0.1 * h
    d = 0.1 * w
    bow_tie = f"POLYGON(({x0} {y0},{x0 + d} {y0 + d},{x0 + d} {y0},{x0} {y0 + d},{x0} {y0}))"
    layer = _polygon_layer(tmp_path / "bowtie.gpkg", 4326, [
        (bow_tie, 1), (_inner_box(bounds, 0.5, 0.5, 0.6, 0.6), 2)])
    warnings = []
    samples = extract_samples(raster, layer, "class", warn=warnings.append)
    assert samples.stats.repaired == 1
    assert any("1 invalid training geometries were repaired" in w for w in warnings)
    # The repaired bow tie keeps both triangles: about half of its bounding box in pixels.
    box_pixels = (d / 8.983152841195215e-05) ** 2
    assert 0.4 * box_pixels < samples.class_counts()[1] < 0.6 * box_pixels


def test_nan_and_inf_pixels_are_dropped_from_training_and_left_unclassified(tmp_path, s1_chip):
    raster, bounds = s1_chip
    with rasterio.open(raster) as src:
        profile, data = src.profile, src.read()
    data[:, 100:300, :] = np.nan
    data[0, 350:360, :] = np.inf
    bad = str(tmp_path / "nan.tif")
    with rasterio.open(bad, "w", **profile) as dst:
        dst.write(data)
        dst.descriptions = ("VV", "VH")
    layer = _polygon_layer(tmp_path / "p.gpkg", 4326, [
        (_inner_box(bounds, 0.1, 0.1, 0.9, 0.9), 1), (_inner_box(bounds, 0.0, 0.0, 0.05, 0.05), 2),
        (_inner_box(bounds, 0.92, 0.92, 0.99, 0.99), 2)])
    warnings = []
    model = str(tmp_path / "m.onnx")
    train_classifier(bad, layer, "class", model, None, parameters=FAST_RF, folds=0,
                     warn=warnings.append)
    assert any("NaN or infinite" in w for w in warnings)
    out = str(tmp_path / "c.tif")
    result = classify_raster(bad, model, out, memory_mb=1)
    assert result["skipped_blocks"] >= 1
    with rasterio.open(out) as src:
        classes = src.read(1)
        assert src.nodata == 0
    assert (classes[100:300] == 0).all()
    assert (classes[350:360] == 0).all()
    assert (classes[:100] > 0).all()


def test_models_that_are_not_landfusion_onnx_are_refused(tmp_path, s1_chip, terramind_model,
                                                         terramind):
    raster, _ = s1_chip
    out = str(tmp_path / "c.tif")
    pickled = tmp_path / "model.onnx"
    pickled.write_bytes(pickle.dumps({"not": "a model"}))
    with pytest.raises(ModelError, match="pickle.*never loads pickles"):
        classify_raster(raster, str(pickled), out)
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07\x12\x0bnot really" + os.urandom(200))
    with pytest.raises(ModelError, match="corrupt"):
        classify_raster(raster, str(corrupt), out)
    with pytest.raises(ModelError, match="corrupt"):
        read_model(str(corrupt))
    import onnx

    foreign = onnx.load(str(terramind["tmp"] / "rf.onnx"))
    del foreign.metadata_props[:]
    onnx.save(foreign, str(tmp_path / "foreign.onnx"))
    with pytest.raises(ModelError, match="not a LandFusion model"):
        classify_raster(raster, str(tmp_path / "foreign.onnx"), out)
    assert _no_outputs(out, str(tmp_path / "c.qml"))


def test_band_mismatch_is_reported_before_reading_pixels(tmp_path, s1_chip, terramind,
                                                         terramind_model):
    raster, _ = s1_chip
    out, confidence = str(tmp_path / "c.tif"), str(tmp_path / "conf.tif")
    with pytest.raises(BandError) as error:
        classify_raster(raster, str(terramind["tmp"] / "rf.onnx"), out, confidence)
    message = str(error.value)
    assert "VV, VH, B01" in message and "missing: B01" in message
    assert _no_outputs(out, confidence)


def test_bands_are_found_by_name_in_a_raster_with_other_band_order(tmp_path, terramind,
                                                                   terramind_model):
    with rasterio.open(terramind["stack"]) as src:
        profile, data, names = src.profile, src.read(), list(src.descriptions)
    order = list(range(len(names)))[::-1]
    shuffled = str(tmp_path / "reversed.tif")
    with rasterio.open(shuffled, "w", **dict(profile, count=len(names) + 1)) as dst:
        dst.write(np.concatenate([data[order], data[:1] * 0]))
        dst.descriptions = tuple([names[i] for i in order] + ["extra"])
    classify_raster(shuffled, str(terramind["tmp"] / "rf.onnx"), str(tmp_path / "c.tif"))
    with rasterio.open(tmp_path / "c.tif") as a, rasterio.open(terramind["tmp"] / "rf.tif") as b:
        assert np.array_equal(a.read(1), b.read(1))


def test_cancel_leaves_no_output(tmp_path, terramind, terramind_model):
    out = str(tmp_path / "c.tif")
    calls = []

    def cancel_after_first_block():
        calls.append(1)
        return len(calls) > 1

    with pytest.raises(CancelledError):
        classify_raster(terramind["stack"], str(terramind["tmp"] / "rf.onnx"), out,
                        str(tmp_path / "p.tif"), memory_mb=0.1,
                        is_cancelled=cancel_after_first_block)
    assert _no_outputs(out, str(tmp_path / "p.tif"), str(tmp_path / "c.qml"))
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".landfusion")]


def test_large_class_ids_give_uint16_and_the_mask_limits_classification(tmp_path, s1_chip):
    raster, bounds = s1_chip
    boxes = [(_inner_box(bounds, 0.05 + 0.15 * i, 0.1, 0.15 + 0.15 * i, 0.2), (300, 1000)[i % 2])
             for i in range(6)]
    model = str(tmp_path / "m.onnx")
    train_classifier(raster, _polygon_layer(tmp_path / "big.gpkg", 4326, boxes), "class", model,
                     None, parameters=FAST_RF, folds=0)
    with rasterio.open(raster) as src:
        profile = dict(src.profile, count=1, dtype="uint8", nodata=None)
    # The plugin's mask convention: 0 = clear (classified), non-zero = left out.
    mask = np.zeros((512, 512), dtype="uint8")
    mask[:, :200] = 1
    mask_path = str(tmp_path / "mask.tif")
    with rasterio.open(mask_path, "w", **profile) as dst:
        dst.write(mask, 1)
    out = str(tmp_path / "c.tif")
    result = classify_raster(raster, model, out, mask_path=mask_path)
    with rasterio.open(out) as src:
        classes = src.read(1)
        assert src.dtypes[0] == "uint16" and src.nodata == 0
    assert (classes[:, :200] == 0).all()
    assert set(np.unique(classes[:, 200:]).tolist()) <= {300, 1000}
    assert result["classified_pixels"] == 512 * 312
    assert [(c.value, c.name) for c in read_class_styling(out)] == [(300, "Class 300"),
                                                                     (1000, "Class 1000")]
    # A landfusion:cloudmask output (0 clear, 1 cloud, 2 shadow) chains in as it is, and an SCL
    # layer read by class leaves out the same pixels (9 = cloud, 4 = vegetation).
    cloud_mask = str(tmp_path / "cloudmask.tif")
    with rasterio.open(cloud_mask, "w", **dict(profile, nodata=255)) as dst:
        dst.write(np.where(mask == 1, np.where(np.arange(512) % 2, 1, 2)[:, None], 0)
                  .astype("uint8"), 1)
        dst.update_tags(LANDFUSION_ALGORITHM="cloudmask")
    scl = str(tmp_path / "scl.tif")
    with rasterio.open(scl, "w", **profile) as dst:
        dst.write(np.where(mask == 1, 9, 4).astype("uint8"), 1)
    for path, kind in ((cloud_mask, "scl"), (scl, "scl")):
        again = str(tmp_path / f"c_{os.path.basename(path)}")
        result = classify_raster(raster, model, again, mask_path=path, mask_type=kind)
        assert result["classified_pixels"] == 512 * 312
        with rasterio.open(again) as src:
            assert (src.read(1) == classes).all()


# --- shared pieces of the classification engines (also used by the CNN engine) ---------------

def _grid_raster(path, rows=5, cols=6):
    profile = {"driver": "GTiff", "dtype": "float32", "count": 1, "width": cols, "height": rows,
               "crs": "EPSG:32633",
               "transform": rasterio.transform.from_origin(500000, 4e6, 10, 10)}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.zeros((1, rows, cols), "float32"))
    return path


def test_best_two_matches_sorting_and_argmax():
    from landfusion.core.io.class_writer import best_two

    rng = np.random.default_rng(5)
    p = rng.integers(0, 4, size=(4, 7, 9)).astype("float32") / 4  # many exact ties
    best, top, margin = best_two(p)
    ordered = np.sort(p, axis=0)
    np.testing.assert_array_equal(best, np.argmax(p, axis=0))
    np.testing.assert_array_equal(top, ordered[-1])
    np.testing.assert_array_equal(margin, ordered[-1] - ordered[-2])
    one = best_two(p[:1])
    np.testing.assert_array_equal(one[2], p[0])
    quick = best_two(p, margin=False)
    np.testing.assert_array_equal(quick[0], best)
    np.testing.assert_array_equal(quick[1], top)
    assert quick[2] is None


def test_writer_takes_full_probability_arrays_like_pixel_rows(tmp_path):
    """A CNN's (K, rows, cols) probabilities give the same outputs as a pixel classifier's
    labels plus (n_valid, K) probabilities."""
    from rasterio.windows import Window

    from landfusion.core.io.class_writer import FLOAT_NODATA, ClassificationWriter
    from landfusion.core.io.classmap import ClassInfo

    classes = [ClassInfo(7, "b", (0, 0, 255)), ClassInfo(2, "a", (255, 0, 0)),
               ClassInfo(4, "c", (0, 255, 0))]  # values deliberately not sorted
    ref = _grid_raster(str(tmp_path / "ref.tif"))
    rng = np.random.default_rng(1)
    p = rng.random((3, 5, 6)).astype("float32")
    p /= p.sum(axis=0)
    valid = rng.random((5, 6)) > 0.3
    values = np.array([c.value for c in classes])
    outputs = {}
    with rasterio.open(ref) as src:
        for form in ("pixels", "full"):
            paths = [str(tmp_path / f"{form}_{n}.tif") for n in ("cls", "conf", "prob")]
            with ClassificationWriter(src, classes, *paths) as writer:
                for row in (0, 3):  # two blocks of rows
                    rows = slice(row, min(5, row + 3))
                    window = Window(0, row, 6, rows.stop - row)
                    if form == "pixels":
                        labels = values[np.argmax(p[:, rows], axis=0)]
                        writer.write(window, labels, valid[rows], p[:, rows][:, valid[rows]].T)
                    else:
                        writer.write(window, None, valid[rows], p[:, rows])
            outputs[form] = ([rasterio.open(x).read() for x in paths],
                             writer.class_counts.tolist(), writer.valid_pixels)
    (cls, conf, prob), counts, n_valid = outputs["full"]
    for a, b in zip(outputs["pixels"][0], outputs["full"][0]):
        np.testing.assert_array_equal(a, b)
    assert outputs["pixels"][1:] == outputs["full"][1:]
    expected = values[np.argmax(p, axis=0)]
    np.testing.assert_array_equal(cls[0][valid], expected[valid])
    assert (cls[0][~valid] == 0).all()  # 0 is free: the class raster's nodata
    assert counts == [int(np.sum(expected[valid] == v)) for v in values] and n_valid == valid.sum()
    ordered = np.sort(p, axis=0)
    np.testing.assert_allclose(conf[0][valid], ordered[-1][valid])
    np.testing.assert_allclose(conf[1][valid], (ordered[-1] - ordered[-2])[valid])
    assert (conf[:, ~valid] == FLOAT_NODATA).all() and (prob[:, ~valid] == FLOAT_NODATA).all()
    with rasterio.open(tmp_path / "full_conf.tif") as ds:
        assert ds.descriptions == ("confidence", "margin") and ds.nodata == FLOAT_NODATA
        assert ds.compression.name == "zstd"  # the writer's default
    with rasterio.open(tmp_path / "full_prob.tif") as ds:
        assert ds.descriptions == ("b", "a", "c")
    assert [c.name for c in read_class_styling(str(tmp_path / "full_cls.tif"))] == ["a", "c", "b"]
    assert os.path.exists(tmp_path / "full_cls.qml")


def test_valid_pixels_with_several_nodata_values_per_band():
    from landfusion.core.io.class_writer import valid_pixels

    data = np.array([[[1, 0, 5, np.inf]], [[-9999, 2, 3, 4]]], "float32")
    assert valid_pixels(data, [None, -9999.0]).tolist() == [[False, True, True, False]]
    assert valid_pixels(data, [[0.0, 5.0], [-9999.0, None]]).tolist() == \
        [[False, False, False, False]]
    assert valid_pixels(data, [[0.0], [float("nan")]]).tolist() == [[True, False, True, False]]


def test_check_model_bands_with_given_band_names(tmp_path):
    from landfusion.core.models.bands import check_model_bands
    from landfusion.core.models.card import build_card

    card = build_card("segmentation", ["VV"], ["land", "water"])
    with rasterio.open(_grid_raster(str(tmp_path / "r.tif"))) as src:
        assert check_model_bands(card, src, band_names=["vv"], check_values=False).indexes == [1]
        with pytest.raises(BandError, match="missing: VH"):
            check_model_bands(build_card("segmentation", ["VH"], ["a", "b"]), src,
                              band_names=["VV"])


def test_forest_export_drops_zero_leaf_weights_without_changing_predictions(monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    import onnxruntime as ort
    from sklearn.ensemble import RandomForestClassifier

    from landfusion.core.models import pixel_model as onnx_model
    from landfusion.core.classification.classify import predict_pixels, predict_pixels_parallel

    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 6)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int) + 2 * (X[:, 1] > 0.3) + (X[:, 2] > 1)
    model = RandomForestClassifier(n_estimators=20, random_state=0).fit(X, y)
    pruned = onnx_model.sklearn_to_onnx(model, 6)
    monkeypatch.setattr(onnx_model, "_drop_zero_leaf_weights", lambda m: None)
    full = onnx_model.sklearn_to_onnx(model, 6)

    def weights(m):
        return [a for a in m.graph.node[0].attribute if a.name == "class_weights"][0].floats

    assert 0 not in weights(pruned) and 0 in weights(full)
    assert len(weights(pruned)) < len(weights(full)) / 2

    class Info:
        input_name, label_output, probability_output = "X", "label", "probabilities"

    Xt = rng.normal(size=(50000, 6)).astype(np.float32)
    runs = []
    for m in (pruned, full):
        session = ort.InferenceSession(m.SerializeToString(), onnx_model.session_options(1),
                                       providers=["CPUExecutionProvider"])
        runs.append(predict_pixels(session, Info, Xt))
    with ThreadPoolExecutor(2) as pool:
        runs.append(predict_pixels_parallel(session, Info, Xt, pool, 2))
    for labels, probabilities in runs[1:]:
        assert np.array_equal(labels, runs[0][0])
        assert np.array_equal(probabilities, runs[0][1])
    assert np.array_equal(runs[0][0], model.predict(Xt))
    assert np.allclose(runs[0][1], model.predict_proba(Xt), atol=1e-5)
    assert runs[0][1].max() <= 1.0


def test_sample_options_are_checked_before_any_input_is_opened(tmp_path):
    with pytest.raises(InputError, match="cap of samples per class"):
        extract_samples(str(tmp_path / "absent.tif"), str(tmp_path / "absent.gpkg"), "class",
                        max_per_class=-1)
    with pytest.raises(InputError, match="memory budget"):
        extract_samples(str(tmp_path / "absent.tif"), str(tmp_path / "absent.gpkg"), "class",
                        memory_mb=0)
