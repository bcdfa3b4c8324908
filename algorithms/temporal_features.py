"""Processing algorithm ``landfusion:temporalfeatures``."""

from qgis.core import (
    QgsProcessing,
    QgsProcessingOutputFile,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from .base import LandFusionAlgorithm
from .temporal_composite import MASK_TYPE_LABELS, MASK_TYPES, read_help

STATISTICS = ["mean", "std", "min", "max", "p10", "p90", "amplitude", "trend", "doymax", "count"]
STATISTIC_LABELS = ["Mean", "Standard deviation", "Minimum", "Maximum", "10th percentile",
                    "90th percentile", "Amplitude (max - min)", "Linear trend per year",
                    "Day of year of the maximum", "Number of clear observations"]


class TemporalFeaturesAlgorithm(LandFusionAlgorithm):
    """Turns a multi-date stack into per-band temporal statistics for classification."""

    INPUT = "INPUT"
    MASKS = "MASKS"
    MASK_TYPE = "MASK_TYPE"
    DATES = "DATES"
    STATISTICS = "STATISTICS"
    REFERENCE = "REFERENCE"
    THREADS = "THREADS"
    OUTPUT = "OUTPUT"
    SIDECAR = "SIDECAR"

    GROUP = "5 · Change and time series"
    GROUP_ID = "change"

    def name(self):
        """Returns the algorithm id."""
        return "temporalfeatures"

    def displayName(self):  # noqa: N802 (QGIS API name)
        """Returns the algorithm name shown in the toolbox."""
        return self.tr("Temporal features")

    def shortDescription(self):  # noqa: N802 (QGIS API name)
        """Returns a one-sentence description."""
        return self.tr("Computes per-band temporal statistics (mean, spread, percentiles, trend, "
                       "date of maximum) over the clear observations of a multi-date stack.")

    def tags(self):
        """Returns search tags."""
        return self.tr("temporal,time series,features,statistics,phenology,trend,percentile,"
                       "amplitude,ndvi,sentinel-1,sentinel-2,classification,monitoring").split(",")

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
            self.INPUT, self.tr("Multi-date stack, or rasters one per date"),
            QgsProcessing.TypeRaster),
            "A temporalcomposite output (2019-09_NDVI...), a stack whose band descriptions are "
            "dates, a rank-named stack (T1_VV_dB...), or several dated rasters with the same "
            "bands.")
        add(QgsProcessingParameterMultipleLayers(
            self.MASKS, self.tr("Cloud masks (optional)"), QgsProcessing.TypeRaster, optional=True),
            "For a stack: one raster with one mask band per stack band. For dated rasters: one "
            "mask per raster, matched by date or order.")
        add(QgsProcessingParameterEnum(
            self.MASK_TYPE, self.tr("Mask type"), options=[self.tr(t) for t in MASK_TYPE_LABELS],
            defaultValue=2), "How to read the masks (a landfusion:cloudmask output is recognised "
                             "by its metadata).")
        add(QgsProcessingParameterString(
            self.DATES, self.tr("Dates (empty: from band names, file names or metadata)"),
            optional=True), "Comma-separated ISO dates, one per time step or raster, in order.")
        add(QgsProcessingParameterEnum(
            self.STATISTICS, self.tr("Statistics"), options=[self.tr(t) for t in STATISTIC_LABELS],
            allowMultiple=True, defaultValue=list(range(len(STATISTICS)))),
            "Statistics written for every band, in this order.")
        add(QgsProcessingParameterRasterLayer(
            self.REFERENCE, self.tr("Reference grid (optional)"), optional=True),
            "The output takes this raster's grid; default: the first input's.", advanced=True)
        add(QgsProcessingParameterNumber(
            self.THREADS, self.tr("Threads (0: all cores)"), QgsProcessingParameterNumber.Integer,
            defaultValue=0, minValue=0, maxValue=1024), "Threads for the per-pixel work.",
            advanced=True)
        add(QgsProcessingParameterRasterDestination(
            self.OUTPUT, self.tr("Temporal features"), defaultValue=QgsProcessing.TEMPORARY_OUTPUT),
            "Float32 stack with bands <band>_<statistic> (NDVI_mean, VV_dB_p90...), ready for "
            "trainclassifier and classifyraster.")
        self.addOutput(QgsProcessingOutputFile(self.SIDECAR, self.tr("JSON sidecar")))

    def _arguments(self, parameters, context):
        layers = self.parameterAsLayerList(parameters, self.INPUT, context)
        masks = self.parameterAsLayerList(parameters, self.MASKS, context)
        reference = self.parameterAsRasterLayer(parameters, self.REFERENCE, context)
        chosen = self.parameterAsEnums(parameters, self.STATISTICS, context)
        return {
            "inputs": [layer.source() for layer in layers],
            "masks": [layer.source() for layer in masks],
            "mask_type": MASK_TYPES[self.parameterAsEnum(parameters, self.MASK_TYPE, context)],
            "dates": self.parameterAsString(parameters, self.DATES, context) or None,
            "statistics": [STATISTICS[i] for i in sorted(chosen)] or None,
            "reference": reference.source() if reference else None,
        }

    def checkParameterValues(self, parameters, context):  # noqa: N802 (QGIS API name)
        """Checks the layout of the inputs, the dates and the masks before any pixel is read."""
        ok, message = super().checkParameterValues(parameters, context)
        if not ok:
            return ok, message
        from ..core.errors import LandFusionError
        from ..core.timeseries.features import check_features

        try:
            check_features(**self._arguments(parameters, context))
        except LandFusionError as exc:
            return False, str(exc)
        return True, ""

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API name)
        """Runs the engine and returns the feature stack and its sidecar."""
        from ..core.timeseries.features import temporal_features

        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        result = self.run_engine(
            temporal_features, output_path=output,
            threads=self.parameterAsInt(parameters, self.THREADS, context),
            **self._arguments(parameters, context), **self.callbacks(feedback))
        return {self.OUTPUT: output, self.SIDECAR: result["sidecar"]}
