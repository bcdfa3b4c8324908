"""Writes resources/models3/monitoring.model3 with QGIS's model API.

Run with QGIS's Python from the repository root when the chain changes:
``/usr/bin/python3 scripts/build_monitoring_model.py``. The file is committed, because QGIS's
graphical modeler opens and edits it as it is.
"""

import sys

from processing_models import add_input, add_step, from_output, from_parameter, save, \
    start_processing, static
from qgis.core import (
    QgsProcessing,
    QgsProcessingModelAlgorithm,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterMultipleLayers,
)

#: The last step; without it (an older checkout) the chain stops at classification.
CHANGE_ALGORITHM = "landfusion:landcoverchange"


def build(with_change: bool) -> QgsProcessingModelAlgorithm:
    """Builds the monitoring chain (with the land-cover change step when available)."""
    model = QgsProcessingModelAlgorithm("monitoring", "5 · Change and time series", "change")
    add_input(model, QgsProcessingParameterMultipleLayers(
        "SCENES", "Scenes of one year (one raster per date, named bands)",
        QgsProcessing.TypeRaster), 120, 80,
        "Sentinel-2 (and/or Sentinel-1) rasters of one year; dates from the file names.")
    add_input(model, QgsProcessingParameterMultipleLayers(
        "MASKS", "Cloud masks (optional, one per scene)", QgsProcessing.TypeRaster,
        optional=True), 120, 160, "Matched to the scenes by date, else by order.")
    add_input(model, QgsProcessingParameterEnum(
        "MASK_TYPE", "Mask type", options=[
            "Sentinel-2 scene classification (SCL)",
            "LandFusion cloud mask (landfusion:cloudmask output)",
            "Binary mask (non-zero = not clear)"], defaultValue=0), 120, 240,
        "How the masks are read; LandFusion cloud masks are recognised whatever is chosen.")
    add_input(model, QgsProcessingParameterFile(
        "MODEL", "Classification model (.onnx) trained on temporal features", extension="onnx"),
        120, 320, "A trainclassifier model whose bands are temporalfeatures bands (NDVI_mean...).")
    if with_change:
        from qgis.core import (QgsProcessingParameterNumber, QgsProcessingParameterRasterLayer,
                               QgsProcessingParameterString)

        add_input(model, QgsProcessingParameterRasterLayer(
            "PREVIOUS_MAP", "Previous land-cover map"), 120, 400,
            "The map of an earlier year, same classes, compared with this year's map.")
        add_input(model, QgsProcessingParameterString(
            "DATES", "Dates of the previous and the new map (ISO, comma-separated)"), 120, 480,
            "e.g. 2019-07-01,2020-07-01.")
        add_input(model, QgsProcessingParameterNumber(
            "FOCUS_CLASS", "Focus class id (optional, e.g. built-up)",
            QgsProcessingParameterNumber.Integer, optional=True, minValue=0), 120, 560,
            "Class followed over time: area per date and annual growth rate.")
    add_step(model, "composite", "landfusion:temporalcomposite", "Monthly composites", {
        "INPUT": from_parameter("SCENES"), "MASKS": from_parameter("MASKS"),
        "MASK_TYPE": from_parameter("MASK_TYPE"), "PERIOD": static(0), "METHOD": static(0),
    }, {"OUTPUT": ("Monthly composites", "Monthly composites", 620, 180)}, 420, 120)
    add_step(model, "features", "landfusion:temporalfeatures", "Temporal features", {
        "INPUT": from_output("composite", "OUTPUT"), "MASK_TYPE": static(2),
    }, {"OUTPUT": ("Temporal features", "Temporal features", 620, 320)}, 420, 260)
    add_step(model, "classify", "landfusion:classifyraster", "Land-cover map", {
        "INPUT": from_output("features", "OUTPUT"), "MODEL": from_parameter("MODEL"),
    }, {"OUTPUT": ("Land-cover map", "Land-cover map", 620, 460)}, 420, 400)
    if with_change:
        add_step(model, "change", CHANGE_ALGORITHM, "Land-cover change", {
            "MAPS": from_parameter("PREVIOUS_MAP") + from_output("classify", "OUTPUT"),
            "DATES": from_parameter("DATES"), "FOCUS_CLASS": from_parameter("FOCUS_CLASS"),
        }, {"OUTPUT": ("Land-cover change", "From-to change raster", 620, 600),
            "OUTPUT_HTML": ("Change report", "Change report (HTML)", 620, 600)}, 420, 540)
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
    """Registers the provider, builds the model (with the change step when the provider has it)
    and writes it."""
    registry = start_processing()
    with_change = registry.algorithmById(CHANGE_ALGORITHM) is not None
    return save(build(with_change), "monitoring.model3",
                f" ({'with' if with_change else 'without'} the land-cover change step)")


if __name__ == "__main__":
    sys.exit(main())
