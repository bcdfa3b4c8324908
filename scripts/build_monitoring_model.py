"""Writes resources/models3/monitoring.model3 with QGIS's model API.

Run with QGIS's Python from the repository root when the chain changes:
``/usr/bin/python3 scripts/build_monitoring_model.py``. The file is committed, because QGIS's
graphical modeler opens and edits it as it is.
"""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.path.join(ROOT, "resources", "models3", "monitoring.model3")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from qgis.core import (  # noqa: E402 (QGIS must find the platform variable first)
    QgsApplication,
    QgsProcessing,
    QgsProcessingModelAlgorithm,
    QgsProcessingModelChildAlgorithm,
    QgsProcessingModelChildParameterSource,
    QgsProcessingModelOutput,
    QgsProcessingModelParameter,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterMultipleLayers,
)
from qgis.PyQt.QtCore import QPointF  # noqa: E402

#: The last step; without it (an older checkout) the chain stops at classification.
CHANGE_ALGORITHM = "landfusion:landcoverchange"


def source_parameter(name):
    return [QgsProcessingModelChildParameterSource.fromModelParameter(name)]


def source_output(child, output):
    return [QgsProcessingModelChildParameterSource.fromChildOutput(child, output)]


def static(value):
    return [QgsProcessingModelChildParameterSource.fromStaticValue(value)]


def add_parameter(model, parameter, x, y, help_text):
    parameter.setHelp(help_text)
    component = QgsProcessingModelParameter(parameter.name())
    component.setPosition(QPointF(x, y))
    model.addModelParameter(parameter, component)


def add_child(model, child_id, algorithm, description, sources, outputs, x, y, depends=()):
    child = QgsProcessingModelChildAlgorithm(algorithm)
    child.setChildId(child_id)
    child.setDescription(description)
    child.setPosition(QPointF(x, y))
    for name, value in sources.items():
        child.addParameterSources(name, value)
    model_outputs = {}
    for child_output, (name, description_text) in outputs.items():
        output = QgsProcessingModelOutput(name, description_text)
        output.setChildId(child_id)
        output.setChildOutputName(child_output)
        output.setPosition(QPointF(x + 200, y + 60))
        model_outputs[name] = output
    child.setModelOutputs(model_outputs)
    child.setDependencies(list(depends))
    model.addChildAlgorithm(child)


def build(with_change: bool) -> QgsProcessingModelAlgorithm:
    """Builds the monitoring chain (with the land-cover change step when available)."""
    model = QgsProcessingModelAlgorithm("monitoring", "5 · Change and time series", "change")
    add_parameter(model, QgsProcessingParameterMultipleLayers(
        "SCENES", "Scenes of one year (one raster per date, named bands)",
        QgsProcessing.TypeRaster), 120, 80,
        "Sentinel-2 (and/or Sentinel-1) rasters of one year; dates from the file names.")
    add_parameter(model, QgsProcessingParameterMultipleLayers(
        "MASKS", "Cloud masks (optional, one per scene)", QgsProcessing.TypeRaster,
        optional=True), 120, 160, "Matched to the scenes by date, else by order.")
    add_parameter(model, QgsProcessingParameterEnum(
        "MASK_TYPE", "Mask type", options=[
            "Sentinel-2 scene classification (SCL)",
            "LandFusion cloud mask (landfusion:cloudmask output)",
            "Binary mask (non-zero = not clear)"], defaultValue=0), 120, 240,
        "How the masks are read; LandFusion cloud masks are recognised whatever is chosen.")
    add_parameter(model, QgsProcessingParameterFile(
        "MODEL", "Classification model (.onnx) trained on temporal features", extension="onnx"),
        120, 320, "A trainclassifier model whose bands are temporalfeatures bands (NDVI_mean...).")
    if with_change:
        from qgis.core import (QgsProcessingParameterNumber, QgsProcessingParameterRasterLayer,
                               QgsProcessingParameterString)

        add_parameter(model, QgsProcessingParameterRasterLayer(
            "PREVIOUS_MAP", "Previous land-cover map"), 120, 400,
            "The map of an earlier year, same classes, compared with this year's map.")
        add_parameter(model, QgsProcessingParameterString(
            "DATES", "Dates of the previous and the new map (ISO, comma-separated)"), 120, 480,
            "e.g. 2019-07-01,2020-07-01.")
        add_parameter(model, QgsProcessingParameterNumber(
            "FOCUS_CLASS", "Focus class id (optional, e.g. built-up)",
            QgsProcessingParameterNumber.Integer, optional=True, minValue=0), 120, 560,
            "Class followed over time: area per date and annual growth rate.")
    add_child(model, "composite", "landfusion:temporalcomposite", "Monthly composites", {
        "INPUT": source_parameter("SCENES"), "MASKS": source_parameter("MASKS"),
        "MASK_TYPE": source_parameter("MASK_TYPE"), "PERIOD": static(0), "METHOD": static(0),
    }, {"OUTPUT": ("Monthly composites", "Monthly composites")}, 420, 120)
    add_child(model, "features", "landfusion:temporalfeatures", "Temporal features", {
        "INPUT": source_output("composite", "OUTPUT"), "MASK_TYPE": static(2),
    }, {"OUTPUT": ("Temporal features", "Temporal features")}, 420, 260)
    add_child(model, "classify", "landfusion:classifyraster", "Land-cover map", {
        "INPUT": source_output("features", "OUTPUT"), "MODEL": source_parameter("MODEL"),
    }, {"OUTPUT": ("Land-cover map", "Land-cover map")}, 420, 400)
    if with_change:
        add_child(model, "change", CHANGE_ALGORITHM, "Land-cover change", {
            "MAPS": [QgsProcessingModelChildParameterSource.fromModelParameter("PREVIOUS_MAP"),
                     QgsProcessingModelChildParameterSource.fromChildOutput("classify", "OUTPUT")],
            "DATES": source_parameter("DATES"), "FOCUS_CLASS": source_parameter("FOCUS_CLASS"),
        }, {"OUTPUT": ("Land-cover change", "From-to change raster"),
            "OUTPUT_HTML": ("Change report", "Change report (HTML)")}, 420, 540)
    model.setHelpContent({
        "ALG_DESC": (
            "Monitoring chain: the scenes of one year become monthly composites over clear "
            "observations (temporalcomposite, median), then per-band temporal statistics "
            "(temporalfeatures: mean, std, percentiles, trend, date of maximum), then a land-cover "
            "map with a model trained on such features (classifyraster)"
            + (", then the land-cover change against a previous map (landcoverchange)."
               if with_change else ".")),
        "ALG_CREATOR": "LandFusion",
        "SCENES": "One raster per acquisition date, with named bands.",
        "MASKS": "Optional cloud masks, one per scene.",
        "MODEL": "An ONNX model from trainclassifier, trained on temporalfeatures output.",
    })
    return model


def main() -> int:
    app = QgsApplication([], False)
    app.initQgis()
    plugins = os.path.join(ROOT, ".qgis", "plugins")
    os.makedirs(plugins, exist_ok=True)
    if not os.path.exists(os.path.join(plugins, "landfusion")):
        os.symlink(ROOT, os.path.join(plugins, "landfusion"), target_is_directory=True)
    sys.path.insert(0, plugins)
    sys.path.append("/usr/share/qgis/python/plugins")
    from processing.core.Processing import Processing

    Processing.initialize()
    from landfusion.algorithms.provider import LandFusionProvider

    provider = LandFusionProvider()
    QgsApplication.processingRegistry().addProvider(provider)
    with_change = QgsApplication.processingRegistry().algorithmById(CHANGE_ALGORITHM) is not None
    model = build(with_change)
    os.makedirs(os.path.dirname(TARGET), exist_ok=True)
    if not model.toFile(TARGET):
        print(f"cannot write {TARGET}", file=sys.stderr)
        return 1
    print(f"wrote {TARGET} ({'with' if with_change else 'without'} the land-cover change step)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
