"""Processing algorithm ``landfusion:temporalcomposite``."""

import os

from qgis.core import (
    QgsProcessing,
    QgsProcessingOutputFile,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from .base import LandFusionAlgorithm

MASK_TYPES = ["scl", "cloudmask", "binary"]
MASK_TYPE_LABELS = ["Sentinel-2 scene classification (SCL)",
                    "LandFusion cloud mask (landfusion:cloudmask output)",
                    "Binary mask (non-zero = not clear)"]
PERIODS = ["month", "season", "year", "whole", "custom"]
PERIOD_LABELS = ["Month", "Season (DJF, MAM, JJA, SON)", "Year", "Whole date range",
                 "Custom periods"]
METHODS = ["median", "mean", "maxndvi", "min", "max"]
METHOD_LABELS = ["Median of clear observations", "Mean of clear observations",
                 "Max-NDVI best pixel", "Minimum", "Maximum"]
HELP = os.path.join(os.path.dirname(__file__), "help")


def read_help(name):
    """Returns the help text kept in algorithms/help/<name>.html, as one line of HTML."""
    with open(os.path.join(HELP, name + ".html"), encoding="utf-8") as handle:
        lines = [line.strip() for line in handle if not line.lstrip().startswith("<!--")]
    return " ".join(line for line in lines if line)


class TemporalCompositeAlgorithm(LandFusionAlgorithm):
    """Composites dated rasters per month, season, year or custom period onto one grid."""

    INPUT = "INPUT"
    MASKS = "MASKS"
    MASK_TYPE = "MASK_TYPE"
    DATES = "DATES"
    PERIOD = "PERIOD"
    CUSTOM_PERIODS = "CUSTOM_PERIODS"
    METHOD = "METHOD"
    REFERENCE = "REFERENCE"
    THREADS = "THREADS"
    OUTPUT = "OUTPUT"
    OUTPUT_FOLDER = "OUTPUT_FOLDER"
    SIDECAR = "SIDECAR"

    GROUP = "5 · Change and time series"
    GROUP_ID = "change"

    def name(self):
        """Returns the algorithm id."""
        return "temporalcomposite"

    def displayName(self):  # noqa: N802 (QGIS API name)
        """Returns the algorithm name shown in the toolbox."""
        return self.tr("Temporal composite")

    def shortDescription(self):  # noqa: N802 (QGIS API name)
        """Returns a one-sentence description."""
        return self.tr("Composites dated Sentinel-1/Sentinel-2 rasters per month, season, year or "
                       "custom period onto one grid, over clear observations only.")

    def tags(self):
        """Returns search tags."""
        return self.tr("composite,temporal,time series,monthly,season,median,mean,max ndvi,best "
                       "pixel,cloud free,mosaic,sentinel-1,sentinel-2,monitoring").split(",")

    def shortHelpString(self):  # noqa: N802 (QGIS API name)
        """Returns the help text."""
        return read_help(self.name())

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API name)
        """Declares the parameters."""
        def add(parameter, help_text, advanced=False):
            parameter.setHelp(self.tr(help_text))
            if advanced:
                parameter.setFlags(parameter.flags()
                                   | QgsProcessingParameterDefinition.FlagAdvanced)
            self.addParameter(parameter)

        add(QgsProcessingParameterMultipleLayers(
            self.INPUT, self.tr("Rasters, one per acquisition date"), QgsProcessing.TypeRaster),
            "Sentinel-2 rasters or stacks with named bands (B04, NDVI...), or Sentinel-1 VV/VH "
            "rasters; dates from the file names unless given.")
        add(QgsProcessingParameterMultipleLayers(
            self.MASKS, self.tr("Cloud masks (one per input, matched by date or order)"),
            QgsProcessing.TypeRaster, optional=True),
            "One mask per input; matched by the date in the file names, else in the same order.")
        add(QgsProcessingParameterEnum(
            self.MASK_TYPE, self.tr("Mask type"), options=[self.tr(t) for t in MASK_TYPE_LABELS],
            defaultValue=0),
            "How to read the masks. A landfusion:cloudmask output is recognised by its metadata "
            "whatever is chosen here.")
        add(QgsProcessingParameterString(
            self.DATES, self.tr("Acquisition dates (empty: from file names, then metadata)"),
            optional=True),
            "Comma-separated ISO dates, one per input in order, e.g. 2019-09-17,2019-09-22.")
        add(QgsProcessingParameterEnum(
            self.PERIOD, self.tr("Period"), options=[self.tr(t) for t in PERIOD_LABELS],
            defaultValue=0), "One composite per period.")
        add(QgsProcessingParameterString(
            self.CUSTOM_PERIODS, self.tr("Custom periods (start/end;start/end)"), optional=True),
            "For the custom period, e.g. 2019-01-01/2019-03-31;2019-04-01/2019-06-30.")
        add(QgsProcessingParameterEnum(
            self.METHOD, self.tr("Compositing method"), options=[self.tr(t) for t in METHOD_LABELS],
            defaultValue=0), "How the clear observations of a period are combined.")
        add(QgsProcessingParameterRasterLayer(
            self.REFERENCE, self.tr("Reference grid (optional)"), optional=True),
            "The output takes this raster's CRS, extent and pixel size; default: the input with "
            "the finest pixels.")
        add(QgsProcessingParameterNumber(
            self.THREADS, self.tr("Threads (0: all cores)"), QgsProcessingParameterNumber.Integer,
            defaultValue=0, minValue=0, maxValue=1024),
            "Threads for the per-pixel work.", advanced=True)
        add(QgsProcessingParameterRasterDestination(
            self.OUTPUT, self.tr("Composite stack"), defaultValue=QgsProcessing.TEMPORARY_OUTPUT),
            "Float32 stack: <period>_<band> for every period, then <period>_CLEAR_COUNT.")
        add(QgsProcessingParameterFolderDestination(
            self.OUTPUT_FOLDER, self.tr("Folder for one raster per period (optional)"),
            optional=True, createByDefault=False),
            "One raster per period with period-free band names (B04, NDVI, VV_dB, CLEAR_COUNT), "
            "so one model classifies every period.")
        self.addOutput(QgsProcessingOutputFile(self.SIDECAR, self.tr("JSON sidecar")))

    def _arguments(self, parameters, context):
        layers = self.parameterAsLayerList(parameters, self.INPUT, context)
        masks = self.parameterAsLayerList(parameters, self.MASKS, context)
        reference = self.parameterAsRasterLayer(parameters, self.REFERENCE, context)
        return {
            "inputs": [layer.source() for layer in layers],
            "masks": [layer.source() for layer in masks],
            "mask_type": MASK_TYPES[self.parameterAsEnum(parameters, self.MASK_TYPE, context)],
            "dates": self.parameterAsString(parameters, self.DATES, context) or None,
            "period": PERIODS[self.parameterAsEnum(parameters, self.PERIOD, context)],
            "custom_periods": self.parameterAsString(parameters, self.CUSTOM_PERIODS, context),
            "method": METHODS[self.parameterAsEnum(parameters, self.METHOD, context)],
            "reference": reference.source() if reference else None,
        }

    def checkParameterValues(self, parameters, context):  # noqa: N802 (QGIS API name)
        """Checks dates, bands, masks and grid before any pixel is read."""
        ok, message = super().checkParameterValues(parameters, context)
        if not ok:
            return ok, message
        from ..core.errors import LandFusionError
        from ..core.timeseries.composite import check_composite

        try:
            check_composite(**self._arguments(parameters, context))
        except LandFusionError as exc:
            return False, str(exc)
        return True, ""

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API name)
        """Runs the engine and returns the stack, the period folder and the sidecar."""
        from ..core.timeseries.composite import temporal_composite

        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        folder = None
        if parameters.get(self.OUTPUT_FOLDER) not in (None, ""):
            folder = self.parameterAsString(parameters, self.OUTPUT_FOLDER, context) or None
            if folder:
                os.makedirs(folder, exist_ok=True)
        result = self.run_engine(
            temporal_composite, output_path=output, output_folder=folder,
            threads=self.parameterAsInt(parameters, self.THREADS, context),
            **self._arguments(parameters, context), **self.callbacks(feedback))
        outputs = {self.OUTPUT: output, self.SIDECAR: result["sidecar"]}
        if folder:
            outputs[self.OUTPUT_FOLDER] = folder
        return outputs
