"""Processing algorithm ``landfusion:temporalfeatures``."""

from ..core.choices import TEMPORAL_FEATURES
from .base import LandFusionAlgorithm
from .groups import CHANGE
from .time_series_inputs import TimeSeriesParameters


class TemporalFeaturesAlgorithm(TimeSeriesParameters, LandFusionAlgorithm):
    """Turns a multi-date stack into per-band temporal statistics for classification."""

    STATISTICS = "STATISTICS"

    GROUP = CHANGE

    def name(self):
        """Returns the algorithm id."""
        return "temporalfeatures"

    def displayName(self):
        """Returns the algorithm name shown in the toolbox."""
        return self.tr("Temporal features")

    def shortDescription(self):
        """Returns a one-sentence description."""
        return self.tr("Computes per-band temporal statistics (mean, spread, percentiles, trend, "
                       "date of maximum) over the clear observations of a multi-date stack.")

    def tags(self):
        """Returns search tags."""
        return self.tr("temporal,time series,features,statistics,phenology,trend,percentile,"
                       "amplitude,ndvi,sentinel-1,sentinel-2,classification,monitoring").split(",")

    def initAlgorithm(self, config=None):
        """Declares the parameters."""
        self.addParameterDatedInputs(
            ("Multi-date stack, or rasters one per date",
             "A temporalcomposite output (2019-09_NDVI...), a stack whose band descriptions are "
             "dates, a rank-named stack (T1_VV_dB...), a stack repeating its bands once per "
             "date, or several dated rasters with the same bands."),
            ("Cloud masks (optional)",
             "For a stack: one raster with one mask band per stack band. For dated rasters: one "
             "mask per raster, matched by date or order."),
            ("Mask type", "binary", "How to read the masks (a landfusion:cloudmask output is "
                                    "recognised by its metadata)."),
            ("Dates (empty: from band names, file names or metadata)",
             "Comma-separated ISO dates, one per time step or raster, in order."))
        self.addParameterEnum(
            self.STATISTICS, "Statistics", TEMPORAL_FEATURES,
            default=list(range(len(TEMPORAL_FEATURES) - 1)), multiple=True,
            help="Statistics written for every band, in this order. The count of clear "
                 "observations is off by default: it describes a year's clouds, not the land "
                 "cover, and would keep a model from travelling to another year.")
        self.addParameterRasterLayer(
            self.REFERENCE, "Reference grid (optional)", optional=True, advanced=True,
            help="The output takes this raster's grid; default: the first input's.")
        self.addParameterThreads(help="Threads for the per-pixel work.")
        self.addParameterMemory(default=256, help="Memory budget for the pixel arrays alive at "
                                                  "once, in megabytes.")
        self.addParameterRasterOutput(
            self.OUTPUT, "Temporal features",
            help="Float32 stack with bands <band>_<statistic> (NDVI_mean, VV_dB_p90...), ready "
                 "for trainclassifier and classifyraster.")
        self.add_sidecar_output()

    def _arguments(self, parameters, context):
        chosen = self.parameterAsChoice(parameters, self.STATISTICS, context) or []
        return {
            **self.series_arguments(parameters, context),
            "statistics": [key for key in TEMPORAL_FEATURES if key in chosen] or None,
        }

    def check(self, parameters, context):
        """Checks the layout of the inputs, the dates and the masks before any pixel is read."""
        from ..core.timeseries.features import check_features

        check_features(**self._arguments(parameters, context))

    def process(self, parameters, context, feedback):
        """Runs the engine and returns the feature stack and its sidecar."""
        from ..core.timeseries.features import temporal_features

        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        result = temporal_features(
            output_path=output, **self.engine_resources(parameters, context),
            **self._arguments(parameters, context), **self.callbacks(feedback))
        return {self.OUTPUT: output, self.SIDECAR: result["sidecar"]}
