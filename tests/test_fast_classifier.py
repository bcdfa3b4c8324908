"""The LightGBM classifier path: exact ONNX export, compiled inference as a checked cache, and
the onnxruntime fallback, on real TerraMind S1+S2 pixels with real land-cover labels."""

import os

import numpy as np
import pytest
import rasterio

from conftest import data_path
from landfusion.core.classification import compiled, gbm
from landfusion.core.classification.classify import classify_raster
from landfusion.core.io.classmap import ClassInfo, palette_color
from landfusion.core.models.card import build_card
from landfusion.core.models.format import PIXEL_CLASSIFIER
from landfusion.core.models.writing import write_model
from landfusion.core.models.pixel_model import open_model

pytest.importorskip("lightgbm")
pytest.importorskip("onnxmltools")

CHIP = "433D_629L_3_1"  # Chile: water, trees, crops, built area, rangeland


@pytest.fixture(scope="module")
def chip(tmp_path_factory):
    """The chip's 14 bands (12 L2A reflectances, VV, VH) as a raster, and labelled pixels split
    into training and held-out 32-pixel cells."""
    s2 = data_path("terramind", "S2L2A", f"{CHIP}.tif")
    s1 = data_path("terramind", "S1RTC", f"{CHIP}.tif")
    labels_path = data_path("terramind", "LULC", f"{CHIP}.tif")
    with rasterio.open(s2) as src:
        optical = src.read().astype(np.float32) / 10000
        profile = src.profile
    with rasterio.open(s1) as src:
        radar = src.read().astype(np.float32)
    with rasterio.open(labels_path) as src:
        labels = src.read(1)
    stack = np.concatenate([optical, radar])
    names = [f"S2_{i + 1}" for i in range(optical.shape[0])] + ["VV", "VH"]
    tmp = tmp_path_factory.mktemp("gbm")
    raster = tmp / "stack.tif"
    profile.update(count=len(stack), dtype="float32", nodata=None, driver="GTiff")
    with rasterio.open(raster, "w", **profile) as dst:
        dst.write(stack)
        for i, name in enumerate(names, start=1):
            dst.set_band_description(i, name)
    rows, cols = labels.shape
    rr, cc = np.mgrid[0:rows, 0:cols]
    held_out = ((rr // 32) + 2 * (cc // 32)) % 3 == 0
    X = stack.reshape(len(stack), -1).T
    y = labels.ravel()
    keep = y > 0
    train = keep & ~held_out.ravel()
    test = keep & held_out.ravel()
    model = gbm.build_lightgbm({"n_estimators": 12}, seed=0, threads=2)  # quick to compile
    model.fit(X[train], y[train])
    classes = [ClassInfo(int(v), f"class {v}", palette_color(i))
               for i, v in enumerate(model.classes_)]
    model_path = tmp / "gbm.onnx"
    write_model(gbm.lightgbm_to_onnx(model, len(names)),
                build_card(PIXEL_CLASSIFIER, names, classes, input_name="X", output_nodata=0,
                           extra={gbm.METADATA_KEY: gbm.model_text(model)}), str(model_path))
    return {"tmp": tmp, "raster": raster, "model": model, "model_path": model_path,
            "X_test": X[test], "y_test": y[test], "X": X}


def test_float32_floor_keeps_every_float32_decision():
    thresholds = np.array([0.1, 0.30000000000000004, -15.359375, 1e-40, 2.5, -0.7])
    snapped = gbm.float32_floor(thresholds)
    assert np.all(snapped <= thresholds)
    assert np.all(snapped.astype(np.float32).astype(np.float64) == snapped)
    for t, s in zip(thresholds, snapped):
        neighbours = np.array([np.float32(t), np.nextafter(np.float32(t), np.float32(-1)),
                               np.nextafter(np.float32(t), np.float32(1))], dtype=np.float32)
        assert np.array_equal(neighbours.astype(np.float64) <= t, neighbours <= np.float32(s))


def test_onnx_predictions_equal_lightgbm_on_held_out_pixels(chip):
    session, info = open_model(str(chip["model_path"]), 1)
    X = np.ascontiguousarray(chip["X_test"], dtype=np.float32)
    labels, probabilities = session.run(["label", "probabilities"], {"X": X})
    expected = chip["model"].predict(X)
    assert np.array_equal(labels, expected)
    assert np.max(np.abs(probabilities - chip["model"].predict_proba(X))) < 1e-5
    # A real model, not a trivial one: held-out accuracy on real labels.
    assert np.mean(expected == chip["y_test"]) > 0.6
    assert len(info.classes) == 6  # water, trees, flooded vegetation, crops, built, rangeland


def test_compiled_classes_equal_onnxruntime_classes(chip, monkeypatch):
    pytest.importorskip("lleaves")
    monkeypatch.setenv("LANDFUSION_CACHE_DIR", str(chip["tmp"] / "cache"))
    outputs = {}
    logs = {}
    for mode in ("never", "always"):
        monkeypatch.setenv("LANDFUSION_COMPILE", mode)
        out = chip["tmp"] / f"classes_{mode}.tif"
        conf = chip["tmp"] / f"confidence_{mode}.tif"
        logs[mode] = []
        classify_raster(str(chip["raster"]), str(chip["model_path"]), str(out), str(conf),
                        log=logs[mode].append)
        with rasterio.open(out) as a, rasterio.open(conf) as b:
            outputs[mode] = (a.read(1), b.read(1))
    assert any("Using the compiled model" in m for m in logs["always"]), logs["always"]
    assert not any("compiled" in m for m in logs["never"]), logs["never"]
    assert np.array_equal(outputs["never"][0], outputs["always"][0])
    assert np.allclose(outputs["never"][1], outputs["always"][1], atol=1e-5)
    assert len(np.unique(outputs["always"][0])) >= 4
    cached = list((chip["tmp"] / "cache").glob("*.o"))
    assert len(cached) == 1
    # A second run reuses the cache (no compile message), and the cache is keyed by the file.
    again = []
    classify_raster(str(chip["raster"]), str(chip["model_path"]), str(chip["tmp"] / "again.tif"),
                    log=again.append)
    assert not any("Compiling" in m for m in again) and any("compiled" in m for m in again)
    assert cached[0].stem == compiled.cache_key(str(chip["model_path"]))


def test_onnxruntime_runs_the_model_when_lleaves_is_missing(chip, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_lleaves(name, *args, **kwargs):
        if name == "lleaves" or name.startswith("lleaves."):
            raise ImportError("No module named 'lleaves'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_lleaves)
    monkeypatch.setenv("LANDFUSION_COMPILE", "always")
    monkeypatch.setenv("LANDFUSION_CACHE_DIR", str(chip["tmp"] / "cache_missing"))
    messages = []
    out = chip["tmp"] / "fallback.tif"
    classify_raster(str(chip["raster"]), str(chip["model_path"]), str(out), log=messages.append)
    assert any("'lleaves' is not installed" in m for m in messages), messages
    assert not (chip["tmp"] / "cache_missing").exists()
    with rasterio.open(out) as src:
        labels = src.read(1).reshape(-1)
    assert np.array_equal(labels, chip["model"].predict(chip["X"]))


def test_a_compiled_model_that_disagrees_with_onnx_is_not_used(chip, monkeypatch):
    pytest.importorskip("lleaves")
    monkeypatch.setenv("LANDFUSION_CACHE_DIR", str(chip["tmp"] / "cache_bad"))
    monkeypatch.setenv("LANDFUSION_COMPILE", "always")
    session, info = open_model(str(chip["model_path"]), 1)
    # Embedded model text whose thresholds were shifted: it no longer matches the graph.
    text = info.extra[gbm.METADATA_KEY]
    shifted = gbm._THRESHOLD_LINE.sub(
        lambda m: "threshold=" + " ".join(repr(float(v) + 0.05) for v in m.group(1).split()),
        text)
    info.extra[gbm.METADATA_KEY] = shifted
    messages = []
    assert compiled.load_compiled(str(chip["model_path"]), info, session, 2, 0,
                                  messages.append) is None
    assert any("does not reproduce" in m for m in messages), messages
    assert not list((chip["tmp"] / "cache_bad").glob("*.o"))


def test_small_rasters_are_not_worth_compiling(chip, monkeypatch):
    pytest.importorskip("lleaves")
    monkeypatch.setenv("LANDFUSION_CACHE_DIR", str(chip["tmp"] / "cache_small"))
    monkeypatch.delenv("LANDFUSION_COMPILE", raising=False)
    session, info = open_model(str(chip["model_path"]), 1)
    assert compiled.load_compiled(str(chip["model_path"]), info, session, 2,
                                  224 * 224) is None
    assert not (chip["tmp"] / "cache_small").exists()
    assert os.path.getsize(chip["model_path"]) > 0


def test_training_report_shows_the_speed_and_accuracy_trade_off(tmp_path):
    from classification_data import label_polygons, terramind_stack
    from landfusion.core.classification.train import train_classifier

    stack = terramind_stack(tmp_path, CHIP)
    polygons = label_polygons(str(data_path("terramind", "LULC", f"{CHIP}.tif")),
                              tmp_path / "lulc.gpkg", [1, 2, 4, 5, 9], epsg=4326)
    result = train_classifier(stack, polygons, "class", str(tmp_path / "gbm.onnx"),
                              str(tmp_path / "report.html"), algorithm="lightgbm",
                              parameters={"n_estimators": 10}, folds=2, max_per_class=400)
    import json

    report = json.loads((tmp_path / "report.json").read_text())
    speed = report["speed"]
    assert speed["onnxruntime_kpx_s"] > 0 and speed["trees"] == 10 * 5
    assert speed["nodes_per_tree"] > 1 and speed["max_depth"] >= 1
    assert report["tradeoffs"]["rows"], report["tradeoffs"]
    page = (tmp_path / "report.html").read_text()
    assert "Speed and accuracy trade-off" in page and "nodes per tree" in page
    assert result["scores"]["overall_accuracy"] > 0.5
    session, info = open_model(str(tmp_path / "gbm.onnx"), 1)
    assert info.extra[gbm.METADATA_KEY].startswith("tree")
