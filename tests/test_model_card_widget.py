"""The model card shown under the model file selector of classifyraster and cnnclassify, driven
offscreen through the real Processing algorithm dialog."""

import pytest
from classification_data import label_polygons, split_polygons, terramind_stack
from conftest import ROOT, data_path

from landfusion.core.classification.train import train_classifier
from landfusion.core.models.reading import read_model

WATER = str(ROOT / "resources" / "models" / "s1_water_unet.onnx")
CHIP = "433D_629L_3_1"


@pytest.fixture(scope="module")
def pixel_model(tmp_path_factory):
    """A small Random Forest trained on a TerraMind chip, validated on held-out polygons."""
    tmp = tmp_path_factory.mktemp("card")
    stack = terramind_stack(tmp, CHIP)
    polygons = label_polygons(str(data_path("terramind", "LULC", f"{CHIP}.tif")),
                              tmp / "lulc.gpkg", [1, 2, 4, 5, 9], epsg=4326)
    train, _ = split_polygons(polygons, tmp / "train.gpkg", tmp / "test.gpkg",
                              lambda f: f.GetField("cell_row") % 3 == 0)
    model = str(tmp / "rf.onnx")
    train_classifier(stack, train, "class", model, None, parameters={"n_estimators": 10},
                     folds=2, name_field="name", max_per_class=200)
    return model


def _dialog_wrapper(algorithm_id, name):
    from processing.gui.AlgorithmDialog import AlgorithmDialog
    from qgis.core import QgsApplication

    algorithm = QgsApplication.processingRegistry().createAlgorithmById(algorithm_id)
    dialog = AlgorithmDialog(algorithm)
    return dialog, dialog.mainWidget().wrappers[name]


def test_classify_dialog_shows_the_card_of_the_chosen_model(qgis_app, pixel_model,
                                                             tmp_path):
    from landfusion.ui.model_card_widget import ModelCardWidget

    card = read_model(pixel_model)
    dialog, wrapper = _dialog_wrapper("landfusion:classifyraster", "MODEL")
    assert isinstance(wrapper.widget, ModelCardWidget)
    assert wrapper.widget.cardText() == ""
    changed = []
    wrapper.widgetValueHasChanged.connect(lambda w: changed.append(w.value()))

    wrapper.widget.file_widget.setFilePath(pixel_model)  # as when the user picks the file
    assert changed[-1] == pixel_model and wrapper.value() == pixel_model
    assert dialog.mainWidget().wrappers["MODEL"].parameterValue() == pixel_model
    text = wrapper.widget.cardText()
    assert wrapper.widget.ok
    assert "pixel classifier (pixel_classifier)" in text
    bands = text.split("Bands in order: ")[1].split("\n")[0]
    expected = ", ".join(f"{i + 1} {card.band_description(i)}" for i in range(card.band_count))
    assert bands == expected
    assert len(card.bands) >= 6 and "VV (dB)" in bands
    for c in card.classes:
        assert f"{c.value} {c.name}" in text
        assert c.hex() in wrapper.widget.card_label.text()  # its colour swatch
    scores = [k for k, v in card.metrics.items() if isinstance(v, float)]
    assert scores and "Validation: " in text
    assert all(k.replace("_", " ") in text for k in scores)

    not_a_model = tmp_path / "notes.onnx"
    not_a_model.write_text("these are notes, not a network")
    wrapper.setValue(str(not_a_model))
    assert not wrapper.widget.ok
    assert wrapper.widget.cardText().startswith("Not a usable LandFusion model: ")
    assert "Bands in order" not in wrapper.widget.cardText()
    wrapper.setValue(str(tmp_path / "missing.onnx"))
    assert wrapper.widget.cardText() == f"No such file: {tmp_path / 'missing.onnx'}"


def test_cnn_dialog_shows_the_bundled_water_model_and_rejects_foreign_onnx(qgis_app,
                                                                            tmp_path):
    import onnx

    _, wrapper = _dialog_wrapper("landfusion:cnnclassify", "MODEL_FILE")
    assert wrapper.widget.cardText() == "No file chosen: the bundled model above is used."
    wrapper.setValue(WATER)
    text = wrapper.widget.cardText()
    assert "segmentation CNN (segmentation)" in text
    assert "Bands in order: 1 VV (dB), 2 VH (dB)" in text
    assert "0 land" in text and "1 water" in text

    foreign = onnx.load(WATER)
    del foreign.metadata_props[:]
    onnx.save(foreign, str(tmp_path / "foreign.onnx"))
    wrapper.setValue(str(tmp_path / "foreign.onnx"))
    assert "not a LandFusion model" in wrapper.widget.cardText()
    assert wrapper.value() == str(tmp_path / "foreign.onnx")


def test_batch_and_modeler_keep_the_plain_file_widget(qgis_app):
    from processing.gui.wrappers import DIALOG_BATCH, WidgetWrapperFactory
    from qgis.core import QgsApplication

    from landfusion.ui.model_card_widget import ModelCardWidget, ModelCardWidgetWrapper

    algorithm = QgsApplication.processingRegistry().createAlgorithmById(
        "landfusion:classifyraster")

    class BatchAlgorithmDialog:  # the batch dialog, as the wrapper factory recognises it
        pass

    wrapper = WidgetWrapperFactory.create_wrapper(algorithm.parameterDefinition("MODEL"),
                                                  BatchAlgorithmDialog())
    assert isinstance(wrapper, ModelCardWidgetWrapper) and wrapper.dialogType == DIALOG_BATCH
    assert not isinstance(wrapper.widget, ModelCardWidget)
    wrapper.setValue(WATER)
    assert wrapper.value() == WATER
