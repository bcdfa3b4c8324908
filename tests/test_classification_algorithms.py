"""Processing tests of landfusion:trainclassifier and landfusion:classifyraster."""

import json
import os
import pickle
import re

import numpy as np
import pytest
import rasterio

from classification_data import label_polygons, terramind_stack, write_stack
from conftest import data_path

CHIP = "433D_629L_3_1"
S2_13 = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12"]


def _category_names(path):
    from osgeo import gdal

    dataset = gdal.Open(str(path))
    band = dataset.GetRasterBand(1)
    band.GetDescription()  # loads the .aux.xml
    names = band.GetCategoryNames()
    table = band.GetColorTable()
    colours = {i: table.GetColorEntry(i)[:3] for i, n in enumerate(names) if n}
    return {i: n for i, n in enumerate(names) if n}, colours


@pytest.fixture(scope="module")
def chip(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("chip")
    stack = terramind_stack(tmp, CHIP)
    polygons = label_polygons(str(data_path("terramind", "LULC", f"{CHIP}.tif")),
                              tmp / "lulc.gpkg", [1, 2, 4, 5, 9], epsg=3857, text_class=True)
    return {"tmp": tmp, "stack": stack, "polygons": polygons}


def test_help_texts_follow_the_house_rules(qgis_app):
    from qgis.core import QgsApplication

    for name in ("trainclassifier", "classifyraster"):
        algorithm = QgsApplication.processingRegistry().algorithmById(f"landfusion:{name}")
        assert algorithm is not None, name
        description = algorithm.shortDescription()
        assert re.match(r"^[A-Z][a-z]+s ", description) and description.endswith(".")
        assert "<" not in description
        assert algorithm.tags() and algorithm.shortHelpString()
        for parameter in algorithm.parameterDefinitions():
            assert parameter.name() == parameter.name().upper()
            assert parameter.help(), (name, parameter.name())


def test_train_then_classify_through_pyqgis(chip, run_algorithm):
    """Text classes, reprojected polygons; outputs styled and on the input grid."""
    from qgis.core import QgsRasterLayer

    tmp = chip["tmp"]
    trained = run_algorithm("landfusion:trainclassifier", {
        "INPUT": chip["stack"], "TRAINING": chip["polygons"], "CLASS_FIELD": "class",
        "COLOR_FIELD": "colour", "ALGORITHM": 0, "FOLDS": 3, "MAX_SAMPLES": 1500, "TREES": 30,
        "OUTPUT_MODEL": str(tmp / "model.onnx"), "OUTPUT_REPORT": str(tmp / "report.html")})
    assert trained["OUTPUT_MODEL"] == str(tmp / "model.onnx")
    assert trained["VALIDATION"] == "grouped"
    assert 0.5 < trained["OVERALL_ACCURACY"] <= 1.0
    report = json.loads((tmp / "report.json").read_text())
    assert [c["name"] for c in report["samples"]["classes"]] == [
        "built area", "crops", "rangeland", "trees", "water"]
    assert report["validation"]["pixel"]["overall_accuracy"] > trained["OVERALL_ACCURACY"]

    result = run_algorithm("landfusion:classifyraster", {
        "INPUT": chip["stack"], "MODEL": str(tmp / "model.onnx"), "OUTPUT": str(tmp / "map.tif"),
        "OUTPUT_CONFIDENCE": str(tmp / "confidence.tif")})
    assert result["CLASSIFIED_PIXELS"] == 224 * 224
    names, colours = _category_names(tmp / "map.tif")
    assert names == {1: "built area", 2: "crops", 3: "rangeland", 4: "trees", 5: "water"}
    assert colours[5] == (0x41, 0x9B, 0xDF) and colours[4] == (0x39, 0x7D, 0x49)
    with rasterio.open(tmp / "map.tif") as out, rasterio.open(chip["stack"]) as src:
        assert out.crs == src.crs and out.transform == src.transform
        assert out.dtypes[0] == "uint8" and out.nodata == 0
        values = set(np.unique(out.read(1)).tolist())
        assert values <= {1, 2, 3, 4, 5} and len(values) >= 4
    with rasterio.open(tmp / "confidence.tif") as conf:
        assert conf.descriptions == ("confidence", "margin")
        confidence = conf.read(1)
        assert confidence.min() > 0.19 and confidence.max() <= 1.0
    # Added to a project, the layer shows the classes by name and colour (.qml beside it).
    layer = QgsRasterLayer(str(tmp / "map.tif"), "map")
    assert layer.isValid()
    renderer = layer.renderer()
    assert renderer.type() == "paletted"
    assert {c.value: c.label for c in renderer.classes()} == names


def test_classification_loaded_into_the_project_is_styled(chip, qgis_app):
    """Through runAndLoadResults, as the toolbox does: the map layer shows class names."""
    import processing
    from qgis.core import QgsProject

    tmp = chip["tmp"]
    if not (tmp / "model.onnx").exists():
        pytest.skip("needs the model of test_train_then_classify_through_pyqgis")
    result = processing.runAndLoadResults("landfusion:classifyraster", {
        "INPUT": chip["stack"], "MODEL": str(tmp / "model.onnx"),
        "OUTPUT": str(tmp / "loaded.tif")})
    layers = [layer for layer in QgsProject.instance().mapLayers().values()
              if layer.source() == result["OUTPUT"]]
    assert len(layers) == 1
    renderer = layers[0].renderer()
    assert renderer.type() == "paletted"
    assert [c.label for c in renderer.classes()] == [
        "built area", "crops", "rangeland", "trees", "water"]
    QgsProject.instance().removeAllMapLayers()


def test_train_then_classify_through_qgis_process(tmp_path, qgis_process):
    """Sen1Floods11 Spain, S1+S2 stack, water/land polygons; qgis_process end to end."""
    folder = data_path("sen1floods11")
    s1 = str(folder / "Spain_7370579_S1Hand.tif")
    s2 = str(folder / "Spain_7370579_S2Hand.tif")
    stack = write_stack(tmp_path / "fused.tif", [(s1, ["VV", "VH"]), (s2, S2_13)], s1)
    polygons = label_polygons(str(folder / "Spain_7370579_LabelHand.tif"), tmp_path / "p.gpkg",
                              [1, 2], cell=128, label_map={0: 1, 1: 2},
                              names={1: "land", 2: "water"}, colours={1: "#b0a070",
                                                                      2: "#2060ff"})
    model = str(tmp_path / "water.onnx")
    _, trained, _ = qgis_process("landfusion:trainclassifier", {
        "INPUT": stack, "TRAINING": polygons, "CLASS_FIELD": "class", "NAME_FIELD": "name",
        "COLOR_FIELD": "colour", "FOLDS": 3, "MAX_SAMPLES": 1000, "TREES": 20,
        "OUTPUT_MODEL": model, "OUTPUT_REPORT": str(tmp_path / "water.html")})
    assert trained["results"]["OVERALL_ACCURACY"] > 0.9
    assert os.path.exists(tmp_path / "water.json")
    out = str(tmp_path / "water.tif")
    probabilities = str(tmp_path / "water_prob.tif")
    _, classified, _ = qgis_process("landfusion:classifyraster", {
        "INPUT": stack, "MODEL": model, "OUTPUT": out, "OUTPUT_PROBABILITIES": probabilities,
        "THREADS": 1})
    assert classified["results"]["OUTPUT"] == out
    names, colours = _category_names(out)
    assert names == {1: "land", 2: "water"}
    assert colours == {1: (0xB0, 0xA0, 0x70), 2: (0x20, 0x60, 0xFF)}
    with rasterio.open(out) as src, rasterio.open(probabilities) as prob:
        classes = src.read(1)
        assert prob.descriptions == ("land", "water")
        p = prob.read()
    assert np.allclose(p.sum(axis=0), 1.0, atol=1e-5)
    assert np.array_equal(classes, np.argmax(p, axis=0) + 1)
    with rasterio.open(folder / "Spain_7370579_LabelHand.tif") as src:
        label = src.read(1)
    known = label >= 0
    assert np.mean(classes[known] == label[known] + 1) > 0.93


def test_bad_models_and_bands_give_clear_messages_and_no_output(chip, tmp_path, run_algorithm,
                                                                 qgis_process):
    from qgis.core import QgsProcessingException

    out = str(tmp_path / "map.tif")
    pickled = tmp_path / "model.pkl"
    pickled.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(QgsProcessingException, match="pickle"):
        run_algorithm("landfusion:classifyraster", {
            "INPUT": chip["stack"], "MODEL": str(pickled), "OUTPUT": out})
    # A model trained on S1+S2 offered an S1-only raster: both band lists in the message.
    stack_model = chip["tmp"] / "model.onnx"
    if not stack_model.exists():
        pytest.skip("needs the model of test_train_then_classify_through_pyqgis")
    s1 = str(data_path("terramind", "S1RTC", f"{CHIP}.tif"))
    s1_only = write_stack(tmp_path / "s1.tif", [(s1, ["VV", "VH"])], s1)
    code, _, text = qgis_process("landfusion:classifyraster", {
        "INPUT": s1_only, "MODEL": str(stack_model), "OUTPUT": out}, check=False)
    assert code != 0
    assert "needs bands VV, VH, B01" in text and "the raster has VV, VH" in text
    assert not os.path.exists(out) and not os.path.exists(tmp_path / "map.qml")


def test_training_errors_surface_as_processing_errors(chip, tmp_path, run_algorithm):
    from qgis.core import QgsProcessingException

    model = str(tmp_path / "m.onnx")
    with pytest.raises(QgsProcessingException, match="Random Forest has no parameter nonsense"):
        run_algorithm("landfusion:trainclassifier", {
            "INPUT": chip["stack"], "TRAINING": chip["polygons"], "CLASS_FIELD": "class",
            "PARAMETERS": "nonsense=3", "OUTPUT_MODEL": model})
    far = data_path("sen1floods11", "Spain_7370579_S1Hand.tif")
    with pytest.raises(QgsProcessingException, match="outside the raster"):
        run_algorithm("landfusion:trainclassifier", {
            "INPUT": str(far), "TRAINING": chip["polygons"], "CLASS_FIELD": "class",
            "OUTPUT_MODEL": model})
    assert not os.path.exists(model)


def test_default_classifier_is_a_30_tree_forest_and_100_trees_one_parameter_away(chip,
                                                                                  run_algorithm):
    """The dialog's defaults train 30 full-depth trees; Trees=100 gives the classic forest."""
    from qgis.core import QgsApplication, QgsProcessingContext

    from landfusion.core.classification.train import DEFAULT_PARAMETERS
    from landfusion.core.models.pixel_model import open_model

    algorithm = QgsApplication.processingRegistry().algorithmById("landfusion:trainclassifier")
    assert algorithm.parameterDefinition("ALGORITHM").defaultValue() == 0  # Random Forest
    assert algorithm.parameterDefinition("TREES").defaultValue() == 0  # the algorithm's default
    assert DEFAULT_PARAMETERS["random_forest"]["n_estimators"] == 30
    assert DEFAULT_PARAMETERS["random_forest"]["max_depth"] is None
    tmp = chip["tmp"]
    trees = {}
    for label, extra in (("default", {}), ("classic", {"TREES": 100})):
        model = str(tmp / f"{label}.onnx")
        run_algorithm("landfusion:trainclassifier", {
            "INPUT": chip["stack"], "TRAINING": chip["polygons"], "CLASS_FIELD": "class",
            "FOLDS": 0, "MAX_SAMPLES": 300, "OUTPUT_MODEL": model, **extra})
        _, card = open_model(model, 1)
        assert card.training["algorithm"] == "Random Forest"
        trees[label] = (card.training["parameters"]["n_estimators"],
                        card.training["parameters"]["max_depth"])
    assert trees == {"default": (30, None), "classic": (100, None)}
    # 0 trees leaves the boosting algorithms at their own defaults, not at 30
    context = QgsProcessingContext()
    for index, key, expected in ((6, "n_estimators", 100), (5, "max_iter", 200)):
        chosen_key, chosen = algorithm.create()._parameters(
            {"ALGORITHM": index, "TREES": 0, "MAX_DEPTH": 0}, context)
        assert key not in chosen
        assert DEFAULT_PARAMETERS[chosen_key][key] == expected
