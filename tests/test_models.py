"""The model format, band roles, units and value-range checks, patch classification and extents
(engine level, real chips; no QGIS)."""

import json
import os
import pickle
import subprocess
import sys

import numpy as np
import onnx
import pytest
import rasterio
from classification_data import label_polygons, split_polygons, terramind_stack
from cnn_fixtures import LAND_WATER, conv_model, write_raster
from conftest import ROOT, data_path
from onnx import TensorProto, helper, numpy_helper

from landfusion.core.classification.classify import classify_raster
from landfusion.core.classification.samples import extract_samples
from landfusion.core.classification.train import train_classifier
from landfusion.core.cnn import inference as cnn
from landfusion.core.errors import (
    BandError, CancelledError, ModelError, NoDataError, NoOverlapError)
from landfusion.core.models.card import build_card
from landfusion.core.models.format import FORMAT_VERSION
from landfusion.core.models.info import card_html
from landfusion.core.models.reading import read_model, read_props
from landfusion.core.models.writing import write_model
from landfusion.core.sensors.bands import band_role, match_model_bands, parse_band_map
from landfusion.core.sensors.units import units_problem

WATER = str(ROOT / "resources" / "models" / "s1_water_unet.onnx")
CHIP = "433D_629L_3_1"
S2 = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12"]


def _messages():
    logs, warnings = [], []
    return logs, warnings, {"log": logs.append, "warn": warnings.append}


def _rename(source, target, names, bands=None, nodata=None):
    """Copies ``source`` (bands ``bands``, 1-based, default all) with new band names."""
    with rasterio.open(source) as src:
        bands = bands or list(range(1, src.count + 1))
        data = src.read(bands)
        profile = dict(src.profile, count=len(bands))
        if nodata is not None:
            profile["nodata"] = nodata
    with rasterio.open(target, "w", **profile) as dst:
        dst.write(data)
        for i, name in enumerate(names, start=1):
            dst.set_band_description(i, name or "")
    return str(target)


# --- the format --------------------------------------------------------------------------------

def _format1_water_model(path):
    """A small water CNN written the way LandFusion 0.x wrote CNNs: format 1, bare keys, no
    units (a 1x1 convolution on the standardised bands: dark backscatter scores as water)."""
    props = {"task": "segmentation", "bands": ["VV", "VH"], "classes": LAND_WATER,
             "input_mean": [-11.1, -19.2], "input_std": [4.0, 5.6],
             "clip_min": [-27.4, -46.7], "clip_max": [5.4, -6.1],
             "tile_size": 64, "tile_overlap": 16, "size_divisor": 8, "pixel_size": 10,
             "name": "format-1 water sample", "version": "1",
             "model_card": json.dumps({"architecture": "1x1 convolution"})}
    return conv_model(path, [[1.0, 1.0], [-1.0, -1.0]], task_props=props)


def test_format1_cnn_reads_with_units_and_upgrades(tmp_path):
    old = _format1_water_model(str(tmp_path / "water1.onnx"))
    card = read_model(old)
    assert card.format_version == 1 and card.task == "segmentation"
    assert card.bands == ["VV", "VH"] and card.band_units == ["dB", "dB"]  # negative means
    assert card.band_roles == ["VV", "VH"] and card.input_mean == [-11.1, -19.2]
    assert card.tile_size == 64 and card.default_overlap() == 16 and card.pixel_size == 10.0
    assert card.extra["model_card"] == json.dumps({"architecture": "1x1 convolution"})
    assert "rewrites it as format 2" in card_html(card)
    # --upgrade rewrites the same graph with a format-2 card; predictions are unchanged.
    upgraded = str(tmp_path / "water2.onnx")
    script = str(ROOT / "scripts" / "write_model_metadata.py")
    proc = subprocess.run([sys.executable, script, old, "--upgrade", "--output", upgraded],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    props = read_props(upgraded)
    assert props["landfusion.format_version"] == str(FORMAT_VERSION)
    assert "task" not in props and "bands" not in props  # format-1 keys are gone
    again = read_model(upgraded)
    assert again.format_version == FORMAT_VERSION and again.band_units == ["dB", "dB"]
    assert again.input_std == card.input_std and again.clip_max == card.clip_max
    assert again.tile_overlap == 16 and again.name == "format-1 water sample"
    assert "rewrites it as format" not in card_html(again)
    assert onnx.load(upgraded).graph == onnx.load(old).graph
    chip = str(data_path("sen1floods11", "Spain_7370579_S1Hand.tif"))
    a, b = str(tmp_path / "a.tif"), str(tmp_path / "b.tif")
    cnn.classify_with_cnn(chip, old, a)
    cnn.classify_with_cnn(chip, upgraded, b)
    with rasterio.open(a) as x, rasterio.open(b) as y:
        classes = x.read(1)
        assert np.array_equal(classes, y.read(1))
    assert 0 < np.mean(classes == 1) < 1  # both classes occur: a real comparison


def test_bundled_water_model_is_current_format():
    props = read_props(WATER)
    assert props["landfusion.format_version"] == str(FORMAT_VERSION)
    assert not {"task", "bands", "classes", "input_mean"} & set(props)
    card = read_model(WATER)
    assert card.format_version == FORMAT_VERSION and card.task == "segmentation"
    assert card.bands == ["VV", "VH"] and card.band_units == ["dB", "dB"]
    assert [c.name for c in card.classes] == ["land", "water"]
    assert card.tile_size == 256 and card.default_overlap() == 64 and card.size_divisor == 8
    assert card.input_mean[0] < 0 and card.clip_max[1] < 0


def test_foreign_newer_and_pickled_models_get_clear_messages(tmp_path):
    model = onnx.load(WATER)
    del model.metadata_props[:]
    onnx.save(model, str(tmp_path / "foreign.onnx"))
    with pytest.raises(ModelError, match="not a LandFusion model.*write_model_metadata.py"):
        read_model(str(tmp_path / "foreign.onnx"))
    helper.set_model_props(model, {"landfusion.format": "landfusion-model",
                                   "landfusion.format_version": "7", "landfusion.card": "{}"})
    onnx.save(model, str(tmp_path / "newer.onnx"))
    with pytest.raises(ModelError, match="format 7.*Update LandFusion"):
        read_model(str(tmp_path / "newer.onnx"))
    pickled = tmp_path / "model.onnx"
    pickled.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(ModelError, match="pickle"):
        read_model(str(pickled))


def _patch_model(path, weights, bias, bands, classes, patch, **card):
    """A patch classifier: mean of each band over the patch -> linear layer -> logits."""
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", len(bands), patch, patch])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", len(classes)])
    nodes = [helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
             helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
             helper.make_node("MatMul", ["flat", "w"], ["scores"]),
             helper.make_node("Add", ["scores", "b"], ["logits"])]
    graph = helper.make_graph(nodes, "patch", [x], [y],
                              [numpy_helper.from_array(np.asarray(weights, "float32"), "w"),
                               numpy_helper.from_array(np.asarray(bias, "float32"), "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return write_model(model, build_card("patch_classifier", bands, classes, patch_size=patch,
                                         **card), path)


def test_tasks_name_the_algorithm_that_runs_them(tmp_path):
    model = _patch_model(str(tmp_path / "p.onnx"), np.zeros((2, 2)), [0, 0], ["B04", "B08"],
                         ["a", "b"], 8)
    raster = write_raster(str(tmp_path / "r.tif"), np.ones((2, 16, 16), "float32"),
                          ["B04", "B08"])
    with pytest.raises(ModelError, match=r"patch classifier CNN.*run it with CNN classify "
                                         r"\(landfusion:cnnclassify\)"):
        classify_raster(raster, model, str(tmp_path / "c.tif"))
    pixel = write_model(_pixel_graph(2), build_card("pixel_classifier", ["B04", "B08"],
                                                    ["a", "b"]), str(tmp_path / "px.onnx"))
    with pytest.raises(ModelError, match=r"pixel classifier.*run it with Classify raster "
                                         r"\(landfusion:classifyraster\)"):
        cnn.classify_with_cnn(raster, pixel, str(tmp_path / "d.tif"))
    assert sorted(os.listdir(tmp_path)) == ["p.onnx", "px.onnx", "r.tif"]


def _pixel_graph(bands):
    """A tiny pixel classifier graph: label = 0, probabilities = [1, 0]."""
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", bands])
    label = helper.make_tensor_value_info("label", TensorProto.INT64, ["N"])
    probs = helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 2])
    nodes = [helper.make_node("MatMul", ["X", "w"], ["probabilities"]),
             helper.make_node("ArgMax", ["probabilities"], ["label"], axis=1, keepdims=0)]
    w = np.zeros((bands, 2), "float32")
    graph = helper.make_graph(nodes, "px", [x], [label, probs], [numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


# --- band roles ---------------------------------------------------------------------------------

def test_band_roles_and_the_matching_rule():
    role = band_role("S1_20190917_VV_dB")
    assert (role.sensor, role.time, role.quantity, role.unit) == ("S1", "20190917", "VV", "dB")
    assert band_role("S1_T2_VH_dB").key == "T2:VH" and band_role("VV_dB").key == "VV"
    assert band_role("S2_B4").key == "B04" and band_role("2019-09_NDVI").key == "201909:NDVI"
    stack = ["S1_VV_dB", "S1_VH_dB", "S2_B04", "NDVI"]
    assert match_model_bands(["VV", "VH", "B4"], stack, units=["dB", "dB", ""])[0] == [1, 2, 3]
    assert match_model_bands(["VV", "VH"], ["S1_T1_VV_dB", "S1_T1_VH_dB"])[0] == [1, 2]
    # Two dates: ambiguous, the message proposes a band map.
    with pytest.raises(BandError, match="BAND_MAP=VV=S1_T1_VV_dB"):
        match_model_bands(["VV"], ["S1_T1_VV_dB", "S1_T2_VV_dB"])
    indexes, notes = match_model_bands(["VV"], ["S1_T1_VV_dB", "S1_T2_VV_dB"],
                                       parse_band_map("VV=S1_T2_VV_dB"))
    assert indexes == [2] and "band map" in notes[0]
    assert match_model_bands(["VV", "VH"], ["a", "b", "c"], parse_band_map("VV=3, VH=a"))[0] \
        == [3, 1]
    # A model in dB never reads a band that says it is linear.
    with pytest.raises(BandError, match="missing: VV"):
        match_model_bands(["VV"], ["S1_VV_lin"], units=["dB"])
    with pytest.raises(BandError, match="does not use"):
        match_model_bands(["VV"], ["S1_VV_dB"], parse_band_map("HH=1"))
    with pytest.raises(BandError, match="not of the form"):
        parse_band_map("VV:1")


def test_units_problems_are_named():
    rng = np.random.default_rng(0)
    db = rng.normal(-14, 4, 500)
    dn = rng.uniform(200, 3000, 500)
    assert units_problem("VV", db, "dB") is None and units_problem("B04", dn) is None
    assert "look like digital numbers" in units_problem("VV", dn, "dB")
    assert "look like digital numbers" in units_problem("VV", dn)
    assert "look like linear power" in units_problem("VV", 10 ** (db / 10), "dB")
    assert "look like radar backscatter in dB" in units_problem("S2_B04", db)


def test_water_cnn_reads_landfusion_stack_names_by_role(tmp_path):
    chip = str(data_path("sen1floods11", "Spain_7370579_S1Hand.tif"))
    direct = str(tmp_path / "direct.tif")
    cnn.classify_with_cnn(chip, WATER, direct, tile_size=128)
    for names in (["S1_VV_dB", "S1_VH_dB"], ["S1_T1_VV_dB", "S1_T1_VH_dB"],
                  ["S1_20190917_VV_dB", "S1_20190917_VH_dB"]):
        stack = _rename(chip, tmp_path / f"{names[0]}.tif", names)
        out = str(tmp_path / f"{names[0]}_classes.tif")
        logs, warnings, kwargs = _messages()
        cnn.classify_with_cnn(stack, WATER, out, tile_size=128, **kwargs)
        assert any(f"VV read from band 1 ({names[0]}), same role" in m for m in logs)
        with rasterio.open(out) as a, rasterio.open(direct) as b:
            assert np.array_equal(a.read(), b.read())


def test_sentinel2_numbers_named_vv_vh_are_refused(tmp_path):
    """S2 DNs named VV/VH gave '100 % land' before; now the run stops before any tile."""
    s2 = str(data_path("terramind", "S2L2A", f"{CHIP}.tif"))
    fake = _rename(s2, tmp_path / "fake.tif", ["VV", "VH"], bands=[4, 8])
    out = str(tmp_path / "c.tif")
    with pytest.raises(BandError, match="band VV should hold Sentinel-1 backscatter in dB, but "
                                        "its values look like digital numbers"):
        cnn.classify_with_cnn(fake, WATER, out)
    assert not os.path.exists(out)


# --- pixel classifier: statistics, unnamed bands, nodata, case of class names -----------------

@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    """A Random Forest on a 6-band S1+S2 TerraMind stack (VV, VH, B02, B03, B04, B08)."""
    tmp = tmp_path_factory.mktemp("models")
    full = terramind_stack(tmp, CHIP)
    keep = [1, 2, 4, 5, 6, 10]
    names = ["VV", "VH", "B02", "B03", "B04", "B08"]
    stack = _rename(full, tmp / "stack.tif", names, bands=keep)
    polygons = label_polygons(str(data_path("terramind", "LULC", f"{CHIP}.tif")),
                              tmp / "lulc.gpkg", [1, 2, 4, 5, 9], epsg=4326)
    train, _ = split_polygons(polygons, tmp / "train.gpkg", tmp / "test.gpkg",
                              lambda f: f.GetField("cell_row") % 3 == 0)
    model = str(tmp / "rf.onnx")
    train_classifier(stack, train, "class", model, None, parameters={"n_estimators": 20},
                     folds=2, name_field="name", max_per_class=500)
    return {"tmp": tmp, "stack": stack, "model": model, "names": names, "keep": keep}


def test_training_stores_band_statistics_of_the_samples(small_model):
    card = read_model(small_model["model"])
    assert card.format_version == FORMAT_VERSION and card.task == "pixel_classifier"
    with rasterio.open(small_model["stack"]) as src:
        data = src.read(masked=True)
    for i, stats in enumerate(card.band_stats):
        band = data[i].compressed()
        # Sample statistics lie within the raster's own range.
        assert band.min() - 1e-3 <= stats["min"] <= stats["mean"] <= stats["max"] <= \
            band.max() + 1e-3
        assert stats["std"] > 0 and stats["count"] > 100
    assert card.band_stats[0]["max"] < 0 < card.band_stats[4]["min"]  # VV dB vs B04 DN
    assert card.band_units == ["dB", "dB", "DN", "DN", "DN", "DN"]
    assert card.training["algorithm"] == "Random Forest" and card.training["samples"] > 100


def test_unnamed_bands_warn_and_reversed_order_is_refused(tmp_path, small_model):
    names = small_model["names"]
    same = _rename(small_model["stack"], tmp_path / "unnamed.tif", [""] * 6)
    logs, warnings, kwargs = _messages()
    classify_raster(same, small_model["model"], str(tmp_path / "ok.tif"), **kwargs)
    assert any("unnamed, so they are taken BY POSITION" in w for w in warnings)
    with rasterio.open(tmp_path / "ok.tif") as a, \
            rasterio.open(small_model["stack"]) as _:
        assert a.read(1).any()
    # S2 bands first, S1 last: the stored ranges (and units) catch it.
    swapped = _rename(small_model["stack"], tmp_path / "swapped.tif", [""] * 6,
                      bands=[3, 4, 5, 6, 1, 2])
    out = str(tmp_path / "bad.tif")
    with pytest.raises(BandError) as error:
        classify_raster(swapped, small_model["model"], out)
    assert "VV" in str(error.value) and "trained on" in str(error.value) or \
        "should hold Sentinel-1 backscatter" in str(error.value)
    assert not os.path.exists(out)
    # Fully reversed order of all six bands.
    reversed_ = _rename(small_model["stack"], tmp_path / "reversed.tif", [""] * 6,
                        bands=list(range(6, 0, -1)))
    with pytest.raises(BandError, match="should hold Sentinel-1 backscatter"):
        classify_raster(reversed_, small_model["model"], out)
    # Bands whose names say nothing about units: the stored training ranges catch the order.
    card = read_model(small_model["model"])
    card.bands, card.band_roles = [f"feature{i}" for i in range(6)], []
    anonymous = write_model(small_model["model"], card, str(tmp_path / "anonymous.onnx"))
    with pytest.raises(BandError, match=r"far from those the model was trained on.*feature0 "
                                        r"\(raster band 1\): median"):
        classify_raster(reversed_, anonymous, out)
    classify_raster(same, anonymous, str(tmp_path / "ok2.tif"))
    assert names == ["VV", "VH", "B02", "B03", "B04", "B08"]


def test_reflectance_given_to_a_model_trained_on_digital_numbers_is_refused(tmp_path,
                                                                          small_model):
    with rasterio.open(small_model["stack"]) as src:
        data, profile = src.read(), src.profile
    data[2:] = data[2:] / 10000.0
    scaled = str(tmp_path / "reflectance.tif")
    with rasterio.open(scaled, "w", **profile) as dst:
        dst.write(data)
        dst.descriptions = tuple(small_model["names"])
    with pytest.raises(BandError, match="band B02 should hold digital numbers"):
        classify_raster(scaled, small_model["model"], str(tmp_path / "c.tif"))


def test_all_nodata_input_and_mask_without_overlap_are_errors(tmp_path, small_model):
    with rasterio.open(small_model["stack"]) as src:
        profile = src.profile
    empty = str(tmp_path / "empty.tif")
    with rasterio.open(empty, "w", **profile) as dst:
        dst.write(np.full((6, profile["height"], profile["width"]), -9999.0, "float32"))
        dst.descriptions = tuple(small_model["names"])
    out = str(tmp_path / "c.tif")
    with pytest.raises(NoDataError, match="no valid pixel"):
        classify_raster(empty, small_model["model"], out)
    assert not os.path.exists(out)
    from rasterio.transform import from_origin

    far = write_raster(str(tmp_path / "mask.tif"), np.ones((1, 10, 10), "uint8"),
                       crs=profile["crs"], transform=from_origin(0, 0, 10, 10))
    with pytest.raises(NoOverlapError, match="does not overlap the input"):
        classify_raster(small_model["stack"], small_model["model"], out, mask_path=far)
    cloudy = str(tmp_path / "cloudy.tif")  # non-zero everywhere: every pixel left out
    with rasterio.open(cloudy, "w", **dict(profile, count=1, dtype="uint8", nodata=None)) as dst:
        dst.write(np.ones((1, profile["height"], profile["width"]), "uint8"))
    with pytest.raises(NoDataError, match="inside the mask"):
        classify_raster(small_model["stack"], small_model["model"], out, mask_path=cloudy)
    assert sorted(os.listdir(tmp_path)) == ["cloudy.tif", "empty.tif", "mask.tif"]


def test_extent_classifies_a_pixel_aligned_part(tmp_path, small_model):
    full, part = str(tmp_path / "full.tif"), str(tmp_path / "part.tif")
    classify_raster(small_model["stack"], small_model["model"], full)
    with rasterio.open(small_model["stack"]) as src:
        t = src.transform
        # An extent that cuts pixels: columns 50.3..120.6, rows 20.5..90.2.
        x0, x1 = t.c + 50.3 * t.a, t.c + 120.6 * t.a
        y0, y1 = t.f + 90.2 * t.e, t.f + 20.5 * t.e
    logs, _, kwargs = _messages()
    classify_raster(small_model["stack"], small_model["model"], part, extent=(x0, y0, x1, y1),
                    **kwargs)
    with rasterio.open(full) as a, rasterio.open(part) as b:
        assert (b.width, b.height) == (71, 71)
        assert b.transform.a == a.transform.a and b.crs == a.crs
        assert b.transform.c == pytest.approx(t.c + 50 * t.a)
        assert b.transform.f == pytest.approx(t.f + 20 * t.e)
        assert np.array_equal(b.read(1), a.read(1)[20:91, 50:121])
    assert any("71 x 71 pixels" in m for m in logs)
    with pytest.raises(NoOverlapError, match="does not overlap"):
        classify_raster(small_model["stack"], small_model["model"], str(tmp_path / "x.tif"),
                        extent=(0, 0, 1, 1))


def test_class_names_differing_by_case_are_one_class(tmp_path):
    folder = data_path("sen1floods11")
    s1 = str(folder / "Spain_7370579_S1Hand.tif")
    polygons = label_polygons(str(folder / "Spain_7370579_LabelHand.tif"), tmp_path / "p.gpkg",
                              [1, 2], cell=128, label_map={0: 1, 1: 2},
                              names={1: "land", 2: "water"}, text_class=True)
    from osgeo import ogr

    ds = ogr.Open(polygons, 1)
    layer = ds.GetLayer(0)
    spellings = ["Water", "water ", "WATER"]
    for i, feature in enumerate(layer):
        if feature.GetField("class") == "water":
            feature.SetField("class", spellings[i % 3])
            layer.SetFeature(feature)
    ds = None
    warnings = []
    samples = extract_samples(s1, polygons, "class", max_per_class=100, warn=warnings.append)
    assert [c.name for c in samples.classes] in (["land", "Water"], ["land", "water"],
                                                 ["land", "WATER"])
    assert any("differ only by case or spaces" in w and "merged" in w for w in warnings)


# --- patch classification ---------------------------------------------------------------------

def test_patch_classifier_on_real_sentinel2_matches_an_independent_computation(tmp_path):
    s2 = str(data_path("terramind", "S2L2A", f"{CHIP}.tif"))
    raster = _rename(s2, tmp_path / "s2.tif", S2)
    rng = np.random.default_rng(3)
    weights = rng.normal(0, 20, (12, 3))
    bias = np.array([0.5, 0.0, -0.5])
    classes = [{"value": 1, "name": "one", "color": "#ff0000"},
               {"value": 2, "name": "two", "color": "#00ff00"},
               {"value": 3, "name": "three", "color": "#0000ff"}]
    patch, stride = 16, 8
    model = _patch_model(str(tmp_path / "patch.onnx"), weights, bias, S2, classes, patch,
                         input_scale=1e-4, band_units=["DN"] * 12)
    out, probs = str(tmp_path / "classes.tif"), str(tmp_path / "probs.tif")
    logs, _, kwargs = _messages()
    result = cnn.classify_with_cnn(raster, model, out, probabilities_path=probs, stride=stride,
                                   batch_size=64, **kwargs)
    assert result["stride"] == stride
    with rasterio.open(raster) as src:
        data = src.read().astype("float64") * 1e-4
        transform, height, width = src.transform, src.height, src.width
    with rasterio.open(out) as c, rasterio.open(probs) as p:
        assert (c.width, c.height) == (-(-width // stride), -(-height // stride))
        assert c.transform.a == transform.a * stride and c.transform.e == transform.e * stride
        assert (c.transform.c, c.transform.f) == (transform.c, transform.f)
        assert list(p.descriptions) == ["one", "two", "three"]
        got, got_p = c.read(1), p.read()
    before = patch // 2 - stride // 2
    checked = 0
    for r in range(c.height):
        for col in range(c.width):
            top, left = r * stride - before, col * stride - before
            if top < 0 or left < 0 or top + patch > height or left + patch > width:
                continue  # mirrored patches at the edges
            mean = data[:, top:top + patch, left:left + patch].mean(axis=(1, 2))
            logits = mean @ weights + bias
            expected = np.exp(logits - logits.max())
            expected /= expected.sum()
            assert got[r, col] == classes[int(np.argmax(logits))]["value"]
            assert np.allclose(got_p[:, r, col], expected, atol=1e-4)
            checked += 1
    assert checked >= 600 and len(np.unique(got)) >= 2


def test_patch_stride_checks_and_nodata_cells(tmp_path):
    data = np.full((2, 40, 40), 500.0, "float32")
    data[:, :16, :] = -9999.0  # the top 16 rows are nodata
    raster = write_raster(str(tmp_path / "r.tif"), data, ["B04", "B08"], nodata=-9999.0)
    model = _patch_model(str(tmp_path / "p.onnx"), np.eye(2), [0, 0], ["B04", "B08"],
                         ["a", "b"], 8)
    with pytest.raises(Exception, match="Stride 9 must be between 1 and the patch size"):
        cnn.classify_with_cnn(raster, model, str(tmp_path / "x.tif"), stride=9)
    out = str(tmp_path / "c.tif")
    fractions = []
    cnn.classify_with_cnn(raster, model, out, stride=4, progress=fractions.append)
    assert fractions[-1] == pytest.approx(1.0) and len(fractions) >= 10
    with rasterio.open(out) as ds:
        got = ds.read(1)
        assert got.shape == (10, 10)
        assert (got[:4] == ds.nodata).all() and (got[4:] != ds.nodata).all()
    calls = []
    cancelled = str(tmp_path / "cancelled.tif")
    with pytest.raises(CancelledError):
        cnn.classify_with_cnn(raster, model, cancelled, stride=4,
                              is_cancelled=lambda: len(calls.append(1) or calls) > 3)
    assert not os.path.exists(cancelled)
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".landfusion")]


def test_card_json_is_what_the_readme_documents(tmp_path, small_model):
    doc = json.loads(read_props(small_model["model"])["landfusion.card"])
    for key in ("format_version", "task", "bands", "classes", "normalisation", "nodata",
                "tiling", "graph", "grid", "training", "metrics"):
        assert key in doc
        assert f"`{key}`" in (ROOT / "resources" / "models" / "README.md").read_text()
    assert set(doc["bands"][0]) == {"name", "unit", "role", "stats"}


def test_spectral_indices_accept_landfusion_stacks_and_check_units(tmp_path):
    from landfusion.core.indices.compute import compute_spectral_indices

    s1 = str(data_path("terramind", "S1RTC", f"{CHIP}.tif"))
    s2 = str(data_path("terramind", "S2L2A", f"{CHIP}.tif"))
    with rasterio.open(s1) as a, rasterio.open(s2) as b:
        data = np.concatenate([a.read().astype("float32"), b.read([4, 8]).astype("float32")])
        profile = dict(b.profile, count=5, dtype="float32", nodata=None)
    red, nir = data[2] / 1e4, data[3] / 1e4
    ndvi = (nir - red) / (nir + red)
    stack = str(tmp_path / "stack.tif")
    with rasterio.open(stack, "w", **profile) as dst:
        dst.write(np.concatenate([data, ndvi[None]]))
        dst.descriptions = ("S1_VV_dB", "S1_VH_dB", "S2_B04", "S2_B08", "NDVI")
    out = str(tmp_path / "ndvi.tif")
    compute_spectral_indices(stack, out, ["NDVI"])
    with rasterio.open(out) as ds:
        assert np.allclose(ds.read(1), ndvi, atol=1e-5)
    # dB values in a band named B04: refused before any block.
    wrong = str(tmp_path / "wrong.tif")
    with rasterio.open(wrong, "w", **dict(profile, count=2)) as dst:
        dst.write(data[[0, 3]])
        dst.descriptions = ("B04", "B08")
    with pytest.raises(BandError, match="band B04 should hold Sentinel-2 reflectance, but its "
                                        "values look like radar backscatter in dB"):
        compute_spectral_indices(wrong, str(tmp_path / "x.tif"), ["NDVI"])
    assert not os.path.exists(tmp_path / "x.tif")


def test_format1_pixel_classifier_still_classifies(tmp_path, small_model):
    """A pixel classifier written by an older LandFusion (``landfusion.*`` keys) keeps working."""
    model = onnx.load(small_model["model"])
    card = read_model(small_model["model"])
    del model.metadata_props[:]
    helper.set_model_props(model, {
        "landfusion.format": "landfusion-model", "landfusion.format_version": "1",
        "landfusion.model_type": "pixel_classifier", "landfusion.band_count": "6",
        "landfusion.band_names": json.dumps(card.bands),
        "landfusion.classes": json.dumps([c.to_dict() for c in card.classes]),
        "landfusion.input_name": "X",
        "landfusion.outputs": json.dumps({"label": "label", "probabilities": "probabilities"}),
        "landfusion.nodata": json.dumps({"input": [None] * 6, "output": 0}),
        "landfusion.pixel_size": "[10.0, 10.0]", "landfusion.algorithm": "Random Forest",
        "landfusion.scores": json.dumps({"overall_accuracy": 0.9, "method": "grouped"})})
    old = str(tmp_path / "old.onnx")
    onnx.save(model, old)
    again = read_model(old)
    assert again.format_version == 1 and again.metrics["overall_accuracy"] == 0.9
    assert again.training["algorithm"] == "Random Forest" and again.output_nodata == 0
    a, b = str(tmp_path / "a.tif"), str(tmp_path / "b.tif")
    classify_raster(small_model["stack"], old, a)
    classify_raster(small_model["stack"], small_model["model"], b)
    with rasterio.open(a) as x, rasterio.open(b) as y:
        assert np.array_equal(x.read(), y.read())
