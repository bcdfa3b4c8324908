"""landfusion:cnnclassify through Processing (PyQGIS and qgis_process) and the bundled models."""

import json
import os

import numpy as np
import pytest
import rasterio
from cnn_fixtures import LAND_WATER, conv_model, write_raster
from conftest import data_path

from landfusion.core.io.classmap import read_class_styling
from landfusion.core.cnn.inference import bundled_models

SEG_PROPS = {"task": "segmentation", "bands": ["VV", "VH"], "classes": LAND_WATER,
             "tile_size": 32, "tile_overlap": 8}
ALG = "landfusion:cnnclassify"


def _scores(truth, predicted):
    t, p = truth == 1, predicted == 1
    tp, fp, fn = np.sum(t & p), np.sum(~t & p), np.sum(t & ~p)
    return tp / (tp + fp + fn), 2 * tp / (2 * tp + fp + fn)


@pytest.fixture
def small_case(tmp_path):
    rng = np.random.default_rng(7)
    data = rng.normal(-15, 4, size=(3, 45, 60)).astype("float32")
    src = write_raster(str(tmp_path / "stack.tif"), data, ["VH", "B04", "VV"])
    model = conv_model(str(tmp_path / "m.onnx"), np.array([[1.0, 0.0], [0.0, 1.0]]),
                       task_props=SEG_PROPS)
    return src, model, data


def test_help_texts(qgis_app):
    from qgis.core import QgsApplication

    for name in ("cnnclassify", "cloudmask"):
        alg = QgsApplication.processingRegistry().algorithmById(f"landfusion:{name}")
        assert alg is not None
        text = alg.shortDescription()
        assert text.endswith(".") and "<" not in text and text.split()[0].endswith("s")
        assert alg.shortHelpString() and alg.tags()
        for parameter in alg.parameterDefinitions():
            if parameter.name() in ("INPUT", "MODEL", "MODEL_FILE", "TILE_SIZE", "OVERLAP",
                                    "OUTPUT", "OUTPUT_PROBABILITIES"):
                assert parameter.name() == parameter.name().upper()
    ids = [p.name() for p in QgsApplication.processingRegistry()
           .algorithmById(ALG).parameterDefinitions()]
    for expected in ("INPUT", "MODEL", "MODEL_FILE", "TILE_SIZE", "OVERLAP", "OUTPUT",
                     "OUTPUT_PROBABILITIES", "BATCH_SIZE", "THREADS"):
        assert expected in ids


def test_pyqgis_run_with_model_file(run_algorithm, small_case, tmp_path):
    src, model, data = small_case
    out, probs, conf = (str(tmp_path / n) for n in ("cls.tif", "p.tif", "c.tif"))
    result = run_algorithm(ALG, {"INPUT": src, "MODEL_FILE": model, "TILE_SIZE": 16,
                                 "OVERLAP": 4, "BATCH_SIZE": 3, "THREADS": 1, "OUTPUT": out,
                                 "OUTPUT_PROBABILITIES": probs, "OUTPUT_CONFIDENCE": conf})
    assert result["OUTPUT"] == out and result["OUTPUT_PROBABILITIES"] == probs
    vv, vh = data[2], data[0]
    with rasterio.open(out) as ds, rasterio.open(src) as ref:
        assert ds.crs == ref.crs and ds.transform == ref.transform
        np.testing.assert_array_equal(ds.read(1), (vh > vv).astype("uint8"))
    with rasterio.open(probs) as ds:
        assert ds.descriptions == ("land", "water")
        p = ds.read()
        np.testing.assert_allclose(p.sum(axis=0), 1.0, atol=1e-5)
        np.testing.assert_allclose(p[1], 1 / (1 + np.exp(vv - vh)), atol=1e-5)
    with rasterio.open(conf) as ds:
        # Same layout as the pixel classifier: max probability, then top-1 minus top-2.
        assert ds.descriptions == ("confidence", "margin")
        assert ds.dtypes == ("float32", "float32") and ds.nodata == -9999.0
        np.testing.assert_allclose(ds.read(1), p.max(axis=0), atol=1e-6)
        np.testing.assert_allclose(ds.read(2), np.abs(p[1] - p[0]), atol=1e-6)
    assert [c.name for c in read_class_styling(out)] == ["land", "water"]


def test_pyqgis_band_mismatch_message(run_algorithm, tmp_path):
    from qgis.core import QgsProcessingException

    src = write_raster(str(tmp_path / "s2.tif"), np.ones((2, 20, 20), "float32"), ["B04", "B08"])
    model = conv_model(str(tmp_path / "m.onnx"), np.eye(2), task_props=SEG_PROPS)
    out = str(tmp_path / "cls.tif")
    with pytest.raises(QgsProcessingException, match="missing: VV, VH"):
        run_algorithm(ALG, {"INPUT": src, "MODEL_FILE": model, "OUTPUT": out})
    assert not os.path.exists(out)


def test_qgis_process_bad_model_file(qgis_process, tmp_path):
    src = write_raster(str(tmp_path / "in.tif"), np.ones((2, 20, 20), "float32"), ["VV", "VH"])
    junk = tmp_path / "junk.onnx"
    junk.write_text("not a model")
    out = str(tmp_path / "cls.tif")
    code, _, text = qgis_process(ALG, {"INPUT": src, "MODEL_FILE": str(junk), "OUTPUT": out},
                                 check=False)
    assert code != 0 and "is not a valid ONNX file" in text
    assert not os.path.exists(out)


@pytest.fixture(scope="module")
def water_chip(tmp_path_factory):
    """A Sen1Floods11 chip the bundled model was not trained on (held out for its report),
    S1 bands named VV, VH."""
    s1 = data_path("sen1floods11_s1only", "USA_905409_S1Hand.tif")
    label = data_path("sen1floods11_s1only", "USA_905409_LabelHand.tif")
    return str(s1), str(label)


def test_bundled_water_model_through_qgis_process(qgis_process, water_chip, tmp_path):
    if "s1_water_unet" not in bundled_models():
        pytest.fail("the bundled model resources/models/s1_water_unet.onnx is missing")
    s1, label = water_chip
    out, probs = str(tmp_path / "water.tif"), str(tmp_path / "water_p.tif")
    code, parsed, text = qgis_process(ALG, {"INPUT": s1, "MODEL": "s1_water_unet",
                                            "OUTPUT": out, "OUTPUT_PROBABILITIES": probs})
    assert parsed["results"]["OUTPUT"] == out
    with rasterio.open(out) as ds, rasterio.open(s1) as ref, rasterio.open(label) as lab:
        assert ds.crs == ref.crs and ds.transform == ref.transform
        predicted, truth = ds.read(1), lab.read(1)
        vv = ref.read(1)
    valid = truth >= 0
    iou, f1 = _scores(truth[valid], predicted[valid])
    # The model card's baseline: one VV threshold tuned on the other chips.
    card = json.load(open(bundled_models()["s1_water_unet"][:-5] + ".metrics.json"))
    assert "USA_905409_S1Hand.tif" in card["final"]["validation_groups"]  # not trained on
    tuned = card["chips"]["USA_905409"]["vv_threshold_db"]
    threshold_iou = _scores(truth[valid], (vv[valid] < tuned).astype(int))[0]
    assert iou > threshold_iou + 0.05 and iou > 0.45 and f1 > 0.6, (iou, threshold_iou)
    water = (predicted[valid] == 1).mean()
    assert abs(water - (truth[valid] == 1).mean()) < 0.05  # hand label: 17 % water
    assert [c.name for c in read_class_styling(out)] == ["land", "water"]
    with rasterio.open(probs) as ds:
        assert ds.descriptions == ("land", "water")


def test_bundled_model_pyqgis_on_second_held_out_chip(run_algorithm, tmp_path):
    s1 = str(data_path("sen1floods11_s1only", "USA_905409_S1Hand.tif"))
    label = str(data_path("sen1floods11_s1only", "USA_905409_LabelHand.tif"))
    out = str(tmp_path / "water.tif")
    run_algorithm(ALG, {"INPUT": s1, "MODEL": "s1_water_unet", "TILE_SIZE": 128, "OVERLAP": 32,
                        "OUTPUT": out})
    with rasterio.open(out) as ds, rasterio.open(label) as lab:
        predicted, truth = ds.read(1), lab.read(1)
    with rasterio.open(s1) as ref:
        vv = ref.read(1)
    valid = truth >= 0
    iou, f1 = _scores(truth[valid], predicted[valid])
    # Better than the best single VV threshold chosen with hindsight on this chip.
    best_threshold_iou = max(_scores(truth[valid], (vv[valid] < t).astype(int))[0]
                             for t in np.arange(-25, -8, 0.5))
    assert iou > best_threshold_iou and iou > 0.8 and f1 > 0.85, (iou, best_threshold_iou)


def test_model_cards_and_metadata_of_bundled_models():
    from landfusion.core.models.reading import read_model

    models = bundled_models()
    assert "s1_water_unet" in models
    for name, path in models.items():
        assert os.path.getsize(path) < 10 * 1024 * 1024
        meta = read_model(path)
        assert meta.bands and meta.classes and 8 < meta.pixel_size < 12
        card = path[:-len(".onnx")] + ".md"
        assert os.path.exists(card), f"model card missing for {name}"
        metrics = json.load(open(path[:-len(".onnx")] + ".metrics.json"))
        assert metrics
