"""The change algorithms through QGIS Processing (PyQGIS and qgis_process) on real data.

OSCD: both dates of each city are co-registered onto the label grid with
``landfusion:coregisterstack``; a change model is trained on three cities and evaluated on a
fourth it never saw, against the hand-made labels (counted with numpy).
"""

import json
import os

import numpy as np
import pytest
import rasterio

from change_data import OSCD_BANDS, build_s1_pair, f1_of_change, oscd_files, oscd_label
from conftest import data_path

TRAIN_CITIES = ("paris", "bordeaux", "rennes")
TEST_CITY = "nantes"


@pytest.fixture(scope="module")
def oscd_stacks(qgis_app, tmp_path_factory):
    """{city: (before, after)} built with landfusion:coregisterstack onto the label grid."""
    import processing
    from qgis.core import QgsProcessingContext, QgsProcessingFeedback

    folder = tmp_path_factory.mktemp("oscd_stacks")
    stacks = {}
    for city in TRAIN_CITIES + (TEST_CITY,):
        pair = []
        for date in (1, 2):
            out = str(folder / f"{city}_{date}.tif")
            processing.run("landfusion:coregisterstack", {
                "S2": oscd_files(city, date), "S2_OUTPUT_BANDS": ",".join(OSCD_BANDS),
                "INDICES": ["NDVI", "NDBI"], "REFERENCE": oscd_label(city), "OUTPUT": out},
                context=QgsProcessingContext(), feedback=QgsProcessingFeedback())
            pair.append(out)
        stacks[city] = tuple(pair)
    return stacks


@pytest.fixture(scope="module")
def change_model(oscd_stacks, tmp_path_factory):
    """A small change model trained on three OSCD cities through processing.run."""
    import processing
    from qgis.core import QgsProcessingContext, QgsProcessingFeedback

    folder = tmp_path_factory.mktemp("change_model")
    model, report = str(folder / "change.onnx"), str(folder / "change.html")
    result = processing.run("landfusion:trainchangemodel", {
        "BEFORE": [oscd_stacks[c][0] for c in TRAIN_CITIES],
        "AFTER": [oscd_stacks[c][1] for c in TRAIN_CITIES],
        "LABELS": [oscd_label(c) for c in TRAIN_CITIES],
        "CLASS_NAMES": "1=no change,2=urban change", "ALGORITHM": 0, "TREES": 40,
        "SAMPLES": 1500, "THREADS": 2, "OUTPUT_MODEL": model, "OUTPUT_REPORT": report},
        context=QgsProcessingContext(), feedback=QgsProcessingFeedback())
    return result


def test_train_change_model_reports_leave_one_city_out(change_model):
    from landfusion.core.change.model import read_change_model

    with open(os.path.splitext(change_model["OUTPUT_REPORT"])[0] + ".json") as handle:
        report = json.load(handle)
    validation = report["validation"]
    assert validation["grouping"] == "pair" and validation["folds"] == 3
    assert [p["pair"] for p in validation["per_pair"]] == [1, 2, 3]
    for entry in validation["per_pair"]:
        assert 0 < entry["change_share"] < 0.2
        assert entry["at_threshold_from_others"]["f1"] is not None
    assert report["pixel_validation"]["folds"] == 3
    assert 0.02 <= change_model["THRESHOLD"] <= 0.98
    assert change_model["THRESHOLD"] == pytest.approx(validation["threshold"])
    assert change_model["F1"] == pytest.approx(validation["pooled"]["f1"])
    # the model describes itself: a change model, the bands of each date, the threshold
    session, info, change = read_change_model(change_model["OUTPUT_MODEL"])
    assert info.task == "change_model"
    assert change["before_bands"][:3] == ["S2_B02", "S2_B03", "S2_B04"]
    assert change["threshold"] == pytest.approx(change_model["THRESHOLD"])
    assert [c.name for c in info.classes] == ["no change", "urban change"]
    with open(change_model["OUTPUT_REPORT"]) as handle:
        report = handle.read()
    assert "<svg" in report
    # the classes table shows each class with its colour and name
    assert 'style="background:#c8c8c8"></span>no change' in report
    assert 'style="background:#dc1e1e"></span>urban change' in report


def test_change_model_on_an_unseen_city_beats_cva(change_model, oscd_stacks, run_algorithm,
                                                 tmp_path):
    before, after = oscd_stacks[TEST_CITY]
    out, prob = str(tmp_path / "change.tif"), str(tmp_path / "probability.tif")
    result = run_algorithm("landfusion:changedetection", {
        "BEFORE": before, "AFTER": after, "METHOD": 0, "MODEL": change_model["OUTPUT_MODEL"],
        "OUTPUT": out, "OUTPUT_MAGNITUDE": prob})
    assert result["THRESHOLD_USED"] == pytest.approx(change_model["THRESHOLD"])
    label = rasterio.open(oscd_label(TEST_CITY)).read(1)
    with rasterio.open(out) as ds, rasterio.open(prob) as p, rasterio.open(before) as ref:
        assert ds.crs == ref.crs and ds.transform == ref.transform
        predicted = ds.read(1)
        assert set(np.unique(predicted)) <= {1, 2}
        assert p.descriptions[0] == "change_probability"
        probability = p.read(1)
        assert np.array_equal(predicted == 2, probability >= result["THRESHOLD_USED"])
    model_scores = f1_of_change(predicted, label, 2)
    cva = run_algorithm("landfusion:changedetection", {
        "BEFORE": before, "AFTER": after, "METHOD": 1, "OUTPUT": str(tmp_path / "cva.tif")})
    cva_scores = f1_of_change(rasterio.open(cva["OUTPUT"]).read(1), label, 1)
    assert model_scores["f1"] > cva_scores["f1"]
    assert model_scores["f1"] > 0.1


def test_change_detection_qgis_process_log_ratio(qgis_process, tmp_path):
    before, after = build_s1_pair(tmp_path)
    out = str(tmp_path / "lr.tif")
    _, result, _ = qgis_process("landfusion:changedetection", {
        "BEFORE": before, "AFTER": after, "METHOD": 2, "OUTPUT": out})
    assert result["results"]["OUTPUT"] == out
    assert 0 < result["results"]["CHANGED_FRACTION"] < 0.6
    with rasterio.open(out) as ds:
        assert set(np.unique(ds.read(1))) <= {0, 1, ds.nodata}


def test_train_change_model_qgis_process(oscd_stacks, qgis_process, tmp_path):
    cities = TRAIN_CITIES[:2]
    model = str(tmp_path / "m.onnx")
    _, result, _ = qgis_process("landfusion:trainchangemodel", {
        "BEFORE": [oscd_stacks[c][0] for c in cities],
        "AFTER": [oscd_stacks[c][1] for c in cities],
        "LABELS": [oscd_label(c) for c in cities], "TREES": 20, "SAMPLES": 800,
        "FEATURES": "dates,diff", "OUTPUT_MODEL": model})
    assert result["results"]["OUTPUT_MODEL"] == model and os.path.getsize(model) > 0
    assert 0 < result["results"]["THRESHOLD"] < 1


def test_mismatched_pairs_and_labels_are_refused_before_work(oscd_stacks, run_algorithm,
                                                             tmp_path):
    from qgis.core import QgsProcessingException

    model = str(tmp_path / "m.onnx")
    with pytest.raises(QgsProcessingException, match="label raster"):
        run_algorithm("landfusion:trainchangemodel", {
            "BEFORE": [oscd_stacks["rennes"][0]], "AFTER": [oscd_stacks["rennes"][1]],
            "LABELS": [oscd_label("rennes"), oscd_label("paris")], "OUTPUT_MODEL": model})
    with pytest.raises(QgsProcessingException, match="does not overlap"):
        run_algorithm("landfusion:changedetection", {
            "BEFORE": oscd_stacks["rennes"][0], "AFTER": oscd_stacks["paris"][1], "METHOD": 1,
            "OUTPUT": str(tmp_path / "x.tif")})
    # the algorithms' checks are the engines' option checks
    with pytest.raises(QgsProcessingException, match="needs a MODEL"):
        run_algorithm("landfusion:changedetection", {
            "BEFORE": oscd_stacks["rennes"][0], "AFTER": oscd_stacks["rennes"][1], "METHOD": 0,
            "OUTPUT": str(tmp_path / "x.tif")})
    with pytest.raises(QgsProcessingException, match="not of the form id=name"):
        run_algorithm("landfusion:trainchangemodel", {
            "BEFORE": [oscd_stacks["rennes"][0]], "AFTER": [oscd_stacks["rennes"][1]],
            "LABELS": [oscd_label("rennes")], "CLASS_NAMES": "1:no change",
            "OUTPUT_MODEL": model})
    with pytest.raises(QgsProcessingException, match="needs FOCUS_CLASS"):
        run_algorithm("landfusion:landcoverchange", {
            "MAPS": [oscd_label("rennes"), oscd_label("paris")], "POPULATION": "1000,1200",
            "OUTPUT_JSON": str(tmp_path / "lc.json")})
    assert os.listdir(tmp_path) == []


def _lulc_pair(tmp_path):
    reference = str(data_path("eolearn_timeseries", "LULC.tif"))
    with rasterio.open(reference) as src:
        first, profile = src.read(1), dict(src.profile, driver="GTiff")
    last = first.copy()
    last[40:70, 20:60][np.isin(first[40:70, 20:60], [1, 3])] = 8
    paths = []
    for name, data in (("lc_2016-05-01.tif", first), ("lc_2021-05-01.tif", last)):
        path = str(tmp_path / name)
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(data, 1)
        paths.append(path)
    return paths, first, last


def test_land_cover_change_processing_and_qgis_process(run_algorithm, qgis_process, tmp_path):
    (a, b), first, last = _lulc_pair(tmp_path)
    out = str(tmp_path / "fromto.tif")
    js = str(tmp_path / "lc.json")
    result = run_algorithm("landfusion:landcoverchange", {
        "MAPS": [a, b], "FOCUS_CLASS": 8, "POPULATION": "1000,1100", "OUTPUT": out,
        "OUTPUT_JSON": js, "OUTPUT_HTML": str(tmp_path / "lc.html"),
        "OUTPUT_CSV": str(tmp_path / "lc.csv")})
    with open(js) as handle:
        report = json.load(handle)
    with rasterio.open(a) as src:
        pixel_ha = abs(src.transform.a * src.transform.e) / 1e4
    urb1, urb2 = np.sum(first == 8) * pixel_ha, np.sum(last == 8) * pixel_ha
    years = (1826) / 365.25
    lcr = np.log(urb2 / urb1) / years
    pgr = np.log(1.1) / years
    assert result["LCRPGR"] == pytest.approx(lcr / pgr)
    assert report["focus"]["intervals"][0]["LCR"] == pytest.approx(lcr)
    changed = np.sum((first != last) & (first != 0) & (last != 0)) * pixel_ha
    assert result["CHANGED_HA"] == pytest.approx(changed)
    with rasterio.open(out) as ds:
        codes = ds.read(1)
        valid = (first != 0) & (last != 0)
        assert np.array_equal(codes[valid], first[valid].astype(int) * 100 + last[valid])
    out2 = str(tmp_path / "fromto2.tif")
    _, qp, _ = qgis_process("landfusion:landcoverchange", {
        "MAPS": [a, b], "DATES": "2016-05-01,2021-05-01", "OUTPUT": out2,
        "OUTPUT_CSV": str(tmp_path / "qp.csv")})
    assert qp["results"]["CHANGED_HA"] == pytest.approx(changed)
    assert np.array_equal(rasterio.open(out2).read(1), codes)
