"""Random Forests run as groups of trees: the whole graph's classes, its probabilities to float
rounding, on a real TerraMind chip with real land-cover labels."""

import numpy as np
import onnxruntime as ort
import pytest
import rasterio
from sklearn.ensemble import RandomForestClassifier

from classification_data import terramind_stack
from conftest import data_path
from landfusion.core.classification import forest_groups
from landfusion.core.classification.classify import classify_raster
from landfusion.core.io.classmap import ClassInfo, palette_color
from landfusion.core.models.card import build_card
from landfusion.core.models.format import PIXEL_CLASSIFIER
from landfusion.core.models.pixel_model import session_options, sklearn_to_onnx
from landfusion.core.models.writing import write_model

CHIP = "433D_629L_3_1"  # Chile: water, trees, crops, built area, rangeland


@pytest.fixture(scope="module")
def forest(tmp_path_factory):
    """A 24-tree full-depth forest trained on half of the chip's labelled pixels, as a model file,
    with the chip's raster and pixels."""
    tmp = tmp_path_factory.mktemp("groups")
    raster = terramind_stack(tmp, CHIP)
    with rasterio.open(raster) as src:
        stack = src.read()
        names = list(src.descriptions)
    with rasterio.open(data_path("terramind", "LULC", f"{CHIP}.tif")) as src:
        labels = src.read(1).ravel()
    X = stack.reshape(len(stack), -1).T
    train = (labels > 0) & (np.arange(labels.size) % 2 == 0)
    model = RandomForestClassifier(n_estimators=24, random_state=0, n_jobs=2)
    model.fit(X[train], labels[train])
    onnx_model = sklearn_to_onnx(model, len(names))
    classes = [ClassInfo(int(v), f"class {v}", palette_color(i))
               for i, v in enumerate(model.classes_)]
    path = tmp / "rf24.onnx"
    write_model(onnx_model, build_card(PIXEL_CLASSIFIER, names, classes, input_name="X",
                                       output_nodata=0), str(path))
    return {"tmp": tmp, "raster": raster, "path": path, "onnx": onnx_model, "X": X,
            "model": model}


def test_grouped_forest_gives_the_whole_graphs_classes(forest):
    whole = ort.InferenceSession(forest["onnx"].SerializeToString(), session_options(1),
                                 providers=["CPUExecutionProvider"])
    labels, probabilities = whole.run(["label", "probabilities"], {"X": forest["X"]})
    groups = forest_groups.split_forest(forest["onnx"])
    assert len(groups) == 3  # 24 trees, 8 per group
    out = forest["tmp"] / "classes.tif"
    logged = []
    classify_raster(str(forest["raster"]), str(forest["path"]), str(out),
                    probabilities_path=str(forest["tmp"] / "p.tif"), threads=2,
                    log=logged.append)
    assert any("3 groups" in line for line in logged), logged
    with rasterio.open(out) as src:
        classes = src.read(1).ravel()
    with rasterio.open(forest["tmp"] / "p.tif") as src:
        mine = src.read().reshape(src.count, -1).T
    assert np.array_equal(classes, np.asarray(labels).reshape(-1))
    assert np.max(np.abs(mine - np.minimum(probabilities, 1))) < 1e-5
    # votes split evenly happen on real pixels: those are the ones the whole graph decides
    top = np.sort(probabilities, axis=1)
    assert np.sum(top[:, -1] - top[:, -2] < forest_groups.TIE_MARGIN) > 0
    assert np.mean(classes == forest["model"].predict(forest["X"])) > 0.998


def test_only_plain_forests_of_enough_trees_are_grouped(forest):
    small = RandomForestClassifier(n_estimators=8, random_state=0).fit(
        forest["X"][::50], forest["model"].predict(forest["X"][::50]))
    assert forest_groups.split_forest(sklearn_to_onnx(small, forest["X"].shape[1])) is None
    binary = RandomForestClassifier(n_estimators=24, random_state=0).fit(
        forest["X"][::50], forest["X"][::50, 0] > np.median(forest["X"][::50, 0]))
    assert forest_groups.split_forest(sklearn_to_onnx(binary, forest["X"].shape[1])) is None


def test_training_report_speed_is_the_engines_grouped_forest(forest):
    from landfusion.core.classification.tradeoffs import TRADEOFFS, prediction_speed, tradeoffs_html

    speed = prediction_speed(forest["onnx"], forest["model"], forest["X"], threads=2,
                             pixels=40000)
    assert speed["tree_groups"] == 3 and speed["trees"] == 24 and speed["onnxruntime_kpx_s"] > 0
    page = tradeoffs_html({"speed": speed, "tradeoffs": TRADEOFFS})
    assert "as 3 groups of trees" in page
    default_rows = [row for row in TRADEOFFS["rows"] if "(default)" in row["model"]]
    assert len(default_rows) == 1 and default_rows[0]["model"].startswith("RF 30 trees")
