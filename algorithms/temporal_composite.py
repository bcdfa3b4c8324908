"""Processing algorithm ``landfusion:temporalcomposite``."""

import os

from ..core.choices import COMPOSITE_METHODS, COMPOSITE_PERIODS
from .base import LandFusionAlgorithm
from .groups import CHANGE
from .time_series_inputs import TimeSeriesParameters


class TemporalCompositeAlgorithm(TimeSeriesParameters, LandFusionAlgorithm):
    """Composites dated rasters per month, season, year or custom period onto one grid."""

    PERIOD = "PERIOD"
    CUSTOM_PERIODS = "CUSTOM_PERIODS"
    METHOD = "METHOD"
    OUTPUT_FOLDER = "OUTPUT_FOLDER"

    GROUP = CHANGE

    def name(self):
        """Returns the algorithm id."""
        return "temporalcomposite"

    def displayName(self):
        """Returns the algorithm name shown in the toolbox."""
        return self.tr("Temporal composite")

    def shortDescription(self):
        """Returns a one-sentence description."""
        return self.tr("Composites dated Sentinel-1/Sentinel-2 rasters per month, season, year or "
                       "custom period onto one grid, over clear observations only.")

    def tags(self):
        """Returns search tags."""
        return self.tr("composite,temporal,time series,monthly,season,median,mean,max ndvi,best "
                       "pixel,cloud free,mosaic,sentinel-1,sentinel-2,monitoring").split(",")

    def initAlgorithm(self, config=None):
        """Declares the parameters."""
        self.addParameterDatedInputs(
            ("Rasters, one per acquisition date",
             "Sentinel-2 rasters or stacks with named bands (B04, NDVI...), or Sentinel-1 VV/VH "
             "rasters; dates from the file names unless given."),
            ("Cloud masks (one per input, matched by date or order)",
             "One mask per input; matched by the date in the file names, else in the same "
             "order."),
            ("Mask type", "scl", "How to read the masks. A landfusion:cloudmask output is "
                                 "recognised by its metadata whatever is chosen here."),
            ("Acquisition dates (empty: from file names, then metadata)",
             "Comma-separated ISO dates, one per input in order, e.g. 2019-09-17,2019-09-22."))
        self.addParameterEnum(self.PERIOD, "Period", COMPOSITE_PERIODS, default="month",
                              help="One composite per period.")
        self.addParameterString(
            self.CUSTOM_PERIODS, "Custom periods (start/end;start/end)", optional=True,
            help="For the custom period, e.g. 2019-01-01/2019-03-31;2019-04-01/2019-06-30.")
        self.addParameterEnum(self.METHOD, "Compositing method", COMPOSITE_METHODS,
                              default="median",
                              help="How the clear observations of a period are combined.")
        self.addParameterRasterLayer(
            self.REFERENCE, "Reference grid (optional)", optional=True,
            help="The output takes this raster's CRS, extent and pixel size; default: the input "
                 "with the finest pixels.")
        self.addParameterThreads(help="Threads for the per-pixel work.")
        self.addParameterMemory(default=256, help="Memory budget for the pixel arrays alive at "
                                                  "once, in megabytes; split across the dates "
                                                  "of a period.")
        self.addParameterRasterOutput(
            self.OUTPUT, "Composite stack",
            help="Float32 stack: <period>_<band> for every period, then <period>_CLEAR_COUNT.")
        self.addParameterFolderOutput(
            self.OUTPUT_FOLDER, "Folder for one raster per period (optional)", optional=True,
            help="One raster per period with period-free band names (B04, NDVI, VV_dB, "
                 "CLEAR_COUNT), so one model classifies every period.")
        self.add_sidecar_output()

    def _arguments(self, parameters, context):
        return {
            **self.series_arguments(parameters, context),
            "period": self.parameterAsChoice(parameters, self.PERIOD, context),
            "custom_periods": self.parameterAsString(parameters, self.CUSTOM_PERIODS, context),
            "method": self.parameterAsChoice(parameters, self.METHOD, context),
        }

    def check(self, parameters, context):
        """Checks dates, bands, masks and grid before any pixel is read."""
        from ..core.timeseries.composite import check_composite

        check_composite(**self._arguments(parameters, context))

    def process(self, parameters, context, feedback):
        """Runs the engine and returns the stack, the period folder and the sidecar."""
        from ..core.timeseries.composite import temporal_composite

        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        folder = None
        if parameters.get(self.OUTPUT_FOLDER) not in (None, ""):
            folder = self.parameterAsString(parameters, self.OUTPUT_FOLDER, context) or None
            if folder:
                os.makedirs(folder, exist_ok=True)
        result = temporal_composite(
            output_path=output, output_folder=folder, **self.engine_resources(parameters, context),
            **self._arguments(parameters, context), **self.callbacks(feedback))
        outputs = {self.OUTPUT: output, self.SIDECAR: result["sidecar"]}
        if folder:
            outputs[self.OUTPUT_FOLDER] = folder
        return outputs
