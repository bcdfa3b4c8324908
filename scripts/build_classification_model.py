"""Writes resources/models3/classificationworkflow.model3, the chain S1/S2 stack -> train -> classify ->
accuracy, with QGIS's model API.

Run with QGIS's Python from the repository root when the chain changes:
``/usr/bin/python3 scripts/build_classification_model.py``. The file is committed because QGIS's
graphical modeler opens and edits it as it is; the provider lists every file of
resources/models3 in the toolbox.
"""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.path.join(ROOT, "resources", "models3", "classificationworkflow.model3")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from qgis.core import (  # noqa: E402 (QGIS must find the platform variable first)
    QgsApplication,
    QgsProcessing,
    QgsProcessingModelAlgorithm,
    QgsProcessingModelChildAlgorithm,
    QgsProcessingModelChildParameterSource,
    QgsProcessingModelOutput,
    QgsProcessingModelParameter,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterField,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorLayer,
)
from qgis.PyQt.QtCore import QPointF  # noqa: E402

Source = QgsProcessingModelChildParameterSource

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
        "S2": [Source.fromModelParameter("S2")],
        "S2_BANDS": [Source.fromModelParameter("S2_BANDS")],
        "S1": [Source.fromModelParameter("S1")],
    }, {"OUTPUT": "Stack"}),
    ("train", "landfusion:trainclassifier", "Train classifier (Random Forest)", {
        "INPUT": [Source.fromChildOutput("stack", "OUTPUT")],
        "TRAINING": [Source.fromModelParameter("TRAINING")],
        "CLASS_FIELD": [Source.fromModelParameter("CLASS_FIELD")],
        "ALGORITHM": [Source.fromStaticValue(0)],
    }, {"OUTPUT_MODEL": "Model", "OUTPUT_REPORT": "Training report"}),
    ("classify", "landfusion:classifyraster", "Classify the stack", {
        "INPUT": [Source.fromChildOutput("stack", "OUTPUT")],
        "MODEL": [Source.fromChildOutput("train", "OUTPUT_MODEL")],
    }, {"OUTPUT": "Land-cover map"}),
    ("accuracy", "landfusion:accuracyreport", "Accuracy on the held-out reference", {
        "CLASSIFICATION": [Source.fromChildOutput("classify", "OUTPUT")],
        "REFERENCE": [Source.fromModelParameter("VALIDATION")],
        "CLASS_FIELD": [Source.fromModelParameter("VALIDATION_FIELD")],
        "SAMPLING_DESIGN": [Source.fromStaticValue(2)],
        "POLYGON_SAMPLES": [Source.fromStaticValue(0)],
    }, {"OUTPUT_HTML": "Accuracy report"}),
)


def build() -> QgsProcessingModelAlgorithm:
    """Builds the classification chain model."""
    model = QgsProcessingModelAlgorithm("classificationworkflow", "3 · Classification",
                                        "classification")
    for row, (parameter, help_text) in enumerate(INPUTS):
        parameter.setHelp(help_text)
        component = QgsProcessingModelParameter(parameter.name())
        component.setPosition(QPointF(120, 80 + 80 * row))
        model.addModelParameter(parameter, component)
    for row, (child_id, algorithm, description, sources, outputs) in enumerate(STEPS):
        child = QgsProcessingModelChildAlgorithm(algorithm)
        child.setChildId(child_id)
        child.setDescription(description)
        child.setPosition(QPointF(460, 120 + 150 * row))
        for name, value in sources.items():
            child.addParameterSources(name, value)
        # The modeler stores every other mandatory option with its default, as a user would see
        # it in the step's dialog (a model only validates with a value for each).
        definition = QgsApplication.processingRegistry().algorithmById(algorithm)
        for parameter in definition.parameterDefinitions():
            if parameter.name() in sources or parameter.isDestination() or (
                    parameter.flags() & QgsProcessingParameterDefinition.FlagOptional):
                continue
            child.addParameterSources(parameter.name(),
                                      [Source.fromStaticValue(parameter.defaultValue())])
        model_outputs = {}
        for child_output, name in outputs.items():
            output = QgsProcessingModelOutput(name, name)
            output.setChildId(child_id)
            output.setChildOutputName(child_output)
            output.setPosition(QPointF(700, 150 + 150 * row + 40 * len(model_outputs)))
            model_outputs[name] = output
        child.setModelOutputs(model_outputs)
        model.addChildAlgorithm(child)
    model.setHelpContent({
        "ALG_DESC": (
            "Classification chain: Sentinel-2 bands (and Sentinel-1 VV/VH when given) are "
            "co-registered onto one grid with indices (coregisterstack), a Random Forest is "
            "trained from the training polygons with validation grouped by polygon "
            "(trainclassifier), the whole stack is classified block by block (classifyraster), "
            "and the map is assessed on reference samples that did not train it "
            "(accuracyreport). Open it in the graphical modeler to change a step's options."),
        "ALG_CREATOR": "LandFusion",
        **{parameter.name(): help_text for parameter, help_text in INPUTS},
    })
    return model


def main() -> int:
    """Registers the provider, builds the model and writes it."""
    app = QgsApplication([], False)
    app.initQgis()
    sys.path.insert(0, os.path.join(ROOT, ".qgis", "plugins"))
    sys.path.append("/usr/share/qgis/python/plugins")
    from processing.core.Processing import Processing

    Processing.initialize()
    from landfusion.algorithms.provider import LandFusionProvider

    provider = LandFusionProvider()
    QgsApplication.processingRegistry().addProvider(provider)
    model = build()
    os.makedirs(os.path.dirname(TARGET), exist_ok=True)
    if not model.toFile(TARGET):
        print(f"cannot write {TARGET}", file=sys.stderr)
        return 1
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
