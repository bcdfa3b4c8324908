"""Writes resources/models3/classificationworkflow.model3, the chain S1/S2 stack -> train -> classify ->
accuracy, with QGIS's model API.

Run with QGIS's Python from the repository root when the chain changes:
``/usr/bin/python3 scripts/build_classification_model.py``. The file is committed because QGIS's
graphical modeler opens and edits it as it is; the provider lists every file of
resources/models3 in the toolbox.
"""

import sys

from processing_models import add_input, add_step, from_output, from_parameter, save, \
    start_processing, static
from qgis.core import (
    QgsProcessing,
    QgsProcessingModelAlgorithm,
    QgsProcessingParameterField,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorLayer,
)

#: (parameter, help) of the model's inputs, top to bottom in the modeler.
INPUTS = (
    (QgsProcessingParameterMultipleLayers(
        "S2", "Sentinel-2: one multi-band raster or one file per band", QgsProcessing.TypeRaster),
     "Bands named in their descriptions or file names (B02, B03, ...), reflectance x 10000."),
    (QgsProcessingParameterString("S2_BANDS", "Sentinel-2 band names in order (empty: from the "
                                  "descriptions)", optional=True),
     "e.g. B01,B02,B03,B04,B05,B06,B07,B08,B8A,B09,B11,B12 for a 12-band L2A file."),
    (QgsProcessingParameterMultipleLayers(
        "S1", "Sentinel-1 VV/VH rasters (optional)", QgsProcessing.TypeRaster, optional=True),
     "One 2-band VV/VH raster per date, or ..._VV.tif / ..._VH.tif files."),
    (QgsProcessingParameterVectorLayer(
        "TRAINING", "Training polygons", [QgsProcessing.TypeVectorPolygon]),
     "Labelled polygons (e.g. drawn in the LandFusion training-data dock)."),
    (QgsProcessingParameterField(
        "CLASS_FIELD", "Class field of the training polygons", parentLayerParameterName="TRAINING",
        type=QgsProcessingParameterField.Numeric),
     "Integer class ids."),
    (QgsProcessingParameterVectorLayer(
        "VALIDATION", "Held-out reference polygons or points (not used for training)",
        [QgsProcessing.TypeVectorAnyGeometry]),
     "Reference samples that did not train the model: other polygons, or labelled points of a "
     "stratified sample."),
    (QgsProcessingParameterField(
        "VALIDATION_FIELD", "Class field of the reference", parentLayerParameterName="VALIDATION"),
     "Same class ids as the training field."),
)

#: (child id, algorithm, description, {parameter: source}, {child output: model output name}).
STEPS = (
    ("stack", "landfusion:coregisterstack", "Co-register and stack S1/S2", {
        "S2": from_parameter("S2"),
        "S2_BANDS": from_parameter("S2_BANDS"),
        "S1": from_parameter("S1"),
    }, {"OUTPUT": "Stack"}),
    ("train", "landfusion:trainclassifier", "Train classifier (Random Forest)", {
        "INPUT": from_output("stack", "OUTPUT"),
        "TRAINING": from_parameter("TRAINING"),
        "CLASS_FIELD": from_parameter("CLASS_FIELD"),
        "ALGORITHM": static(0),
    }, {"OUTPUT_MODEL": "Model", "OUTPUT_REPORT": "Training report"}),
    ("classify", "landfusion:classifyraster", "Classify the stack", {
        "INPUT": from_output("stack", "OUTPUT"),
        "MODEL": from_output("train", "OUTPUT_MODEL"),
    }, {"OUTPUT": "Land-cover map"}),
    ("accuracy", "landfusion:accuracyreport", "Accuracy on the held-out reference", {
        "CLASSIFICATION": from_output("classify", "OUTPUT"),
        "REFERENCE": from_parameter("VALIDATION"),
        "CLASS_FIELD": from_parameter("VALIDATION_FIELD"),
        "SAMPLING_DESIGN": static(2),
        "POLYGON_SAMPLES": static(0),
    }, {"OUTPUT_HTML": "Accuracy report"}),
)


def build() -> QgsProcessingModelAlgorithm:
    """Builds the classification chain model."""
    model = QgsProcessingModelAlgorithm("classificationworkflow", "3 · Classification",
                                        "classification")
    for row, (parameter, help_text) in enumerate(INPUTS):
        add_input(model, parameter, 120, 80 + 80 * row, help_text)
    for row, (child_id, algorithm, description, sources, outputs) in enumerate(STEPS):
        add_step(model, child_id, algorithm, description, sources,
                 {child_output: (name, name, 700, 150 + 150 * row + 40 * k)
                  for k, (child_output, name) in enumerate(outputs.items())},
                 460, 120 + 150 * row, store_defaults=True)
    model.setHelpContent({
        "ALG_DESC": (
            "Classification chain: Sentinel-2 bands (and Sentinel-1 VV/VH when given) are "
            "co-registered onto one grid with indices (coregisterstack), a Random Forest "
            "(trainclassifier's default: 30 full-depth trees) is trained from the training "
            "polygons and validated grouped by polygon in the training report "
            "(trainclassifier), the whole stack is classified block by block (classifyraster), "
            "and the map is assessed on reference samples that did not train it "
            "(accuracyreport). Open it in the graphical modeler to change a step's options."),
        "ALG_CREATOR": "LandFusion",
        **{parameter.name(): help_text for parameter, help_text in INPUTS},
    })
    return model


def main() -> int:
    """Registers the provider, builds the model and writes it."""
    start_processing()
    return save(build(), "classificationworkflow.model3")


if __name__ == "__main__":
    sys.exit(main())
