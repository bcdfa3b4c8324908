"""Processing algorithm ``landfusion:changedetection``."""

from qgis.core import (
    QgsProcessingOutputNumber,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from .base import LandFusionAlgorithm
from .train_change_model import GROUP, GROUP_ID

#: Display names in the order of the METHOD enum (stable API: the index is the value).
METHOD_OPTIONS = ("Change model", "Change-vector analysis (reflectance bands)",
                  "Sentinel-1 log-ratio (linear units)", "Index difference")


class ChangeDetectionAlgorithm(LandFusionAlgorithm):
    """Maps change between two rasters of the same area."""

    BEFORE = "BEFORE"
    AFTER = "AFTER"
    METHOD = "METHOD"
    MODEL = "MODEL"
    INDEX = "INDEX"
    THRESHOLD = "THRESHOLD"
    THREADS = "THREADS"
    OUTPUT = "OUTPUT"
    OUTPUT_MAGNITUDE = "OUTPUT_MAGNITUDE"

    GROUP = GROUP
    GROUP_ID = GROUP_ID

    def name(self):
        """Returns the algorithm id."""
        return "changedetection"

    def displayName(self):  # noqa: N802 (QGIS API name)
        """Returns the algorithm name shown in the toolbox."""
        return self.tr("Change detection")

    def shortDescription(self):  # noqa: N802 (QGIS API name)
        """Returns a one-sentence description."""
        return self.tr("Maps change between two rasters of the same area with a change model, "
                       "change-vector analysis, a radar log-ratio or an index difference.")

    def tags(self):
        """Returns search tags."""
        return self.tr("change,change detection,bi-temporal,cva,change vector,log-ratio,sar,"
                       "sentinel-1,sentinel-2,ndvi,ndbi,otsu,threshold,onnx").split(",")

    def shortHelpString(self):  # noqa: N802 (QGIS API name)
        """Returns the help text shown beside the dialog."""
        return self.tr(
            "Compares a BEFORE and an AFTER raster of the same area (bands matched by name; the "
            "AFTER raster is warped onto the BEFORE grid when needed) and writes a class raster "
            "and a magnitude raster.<br><br>"
            "<b>Methods</b>: 0 <i>change model</i> trained with <i>Train change model</i> "
            "(magnitude = change probability); 1 <i>change-vector analysis</i>: length of the "
            "difference vector over the common Sentinel-2 reflectance bands; 2 <i>Sentinel-1 "
            "log-ratio</i>: |10 log10(I2/I1)| with backscatter in linear power (dB bands are "
            "converted), averaged over VV/VH; 3 <i>index difference</i>: |index after - index "
            "before| for INDEX (a band of that name, or computed, e.g. NDVI, NDBI); the signed "
            "difference is the magnitude raster's second band.<br>"
            "<b>Threshold</b>: empty uses the model's stored threshold, or Otsu's threshold of "
            "the magnitude (histogram of 4096 bins, exact to a bin width) for methods 1-3.<br>"
            "<b>Output</b>: 0 no change / 1 change (a model's own class ids and names for method "
            "0), with colours and names; pixels without valid data on both dates are nodata.")

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API name)
        """Declares the parameters."""
        for key, label, help_text in (
                (self.BEFORE, "BEFORE raster", "The first date; its grid is the output grid."),
                (self.AFTER, "AFTER raster", "The second date, with the same band names.")):
            parameter = QgsProcessingParameterRasterLayer(key, self.tr(label))
            parameter.setHelp(self.tr(help_text))
            self.addParameter(parameter)
        method = QgsProcessingParameterEnum(
            self.METHOD, self.tr("Method"), options=[self.tr(o) for o in METHOD_OPTIONS],
            defaultValue=1)
        method.setHelp(self.tr("A change model is the most accurate when one fits the area."))
        self.addParameter(method)
        model = QgsProcessingParameterFile(
            self.MODEL, self.tr("Change model (method 0)"), extension="onnx", optional=True)
        model.setHelp(self.tr("A .onnx model from 'Train change model'."))
        self.addParameter(model)
        index = QgsProcessingParameterString(
            self.INDEX, self.tr("Index (method 3)"), defaultValue="NDVI", optional=True)
        index.setHelp(self.tr("e.g. NDVI, NDBI, NDWI, NBR, or the name of a band of both dates."))
        self.addParameter(index)
        threshold = QgsProcessingParameterNumber(
            self.THRESHOLD, self.tr("Threshold (empty: model's or Otsu's)"),
            QgsProcessingParameterNumber.Double, optional=True)
        threshold.setHelp(self.tr("Pixels whose magnitude reaches it are change."))
        self.addParameter(threshold)
        threads = QgsProcessingParameterNumber(
            self.THREADS, self.tr("CPU threads for the model (0: all)"),
            QgsProcessingParameterNumber.Integer, defaultValue=0, minValue=0)
        threads.setFlags(threads.flags() | threads.FlagAdvanced)
        threads.setHelp(self.tr("Threads of the model inference."))
        self.addParameter(threads)
        output = QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Change map"))
        output.setHelp(self.tr("Class raster with colours and names."))
        self.addParameter(output)
        magnitude = QgsProcessingParameterRasterDestination(
            self.OUTPUT_MAGNITUDE, self.tr("Change magnitude / probability"), optional=True,
            createByDefault=False)
        magnitude.setHelp(self.tr("Float raster of the thresholded magnitude."))
        self.addParameter(magnitude)
        for key, label in (("THRESHOLD_USED", "Threshold used"),
                           ("CHANGED_FRACTION", "Share of valid pixels changed")):
            self.addOutput(QgsProcessingOutputNumber(key, self.tr(label)))

    def checkParameterValues(self, parameters, context):  # noqa: N802 (QGIS API name)
        """Checks that the chosen method has what it needs."""
        ok, message = super().checkParameterValues(parameters, context)
        if not ok:
            return ok, message
        method = self.parameterAsEnum(parameters, self.METHOD, context)
        if method == 0 and not self.parameterAsFile(parameters, self.MODEL, context):
            return False, self.tr("The change-model method needs a MODEL (.onnx from 'Train "
                                  "change model').")
        if method == 3 and not self.parameterAsString(parameters, self.INDEX, context).strip():
            return False, self.tr("The index-difference method needs an INDEX, e.g. NDVI.")
        return True, ""

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API name)
        """Runs the engine and returns the output paths."""
        from ..core.change.detect import METHODS, change_detection

        before = self.parameterAsRasterLayer(parameters, self.BEFORE, context)
        after = self.parameterAsRasterLayer(parameters, self.AFTER, context)
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        magnitude = self.parameterAsOutputLayer(parameters, self.OUTPUT_MAGNITUDE, context) or None
        threshold = parameters.get(self.THRESHOLD)
        result = self.run_engine(
            change_detection,
            before=before.source() if before else None,
            after=after.source() if after else None,
            output_path=output,
            method=METHODS[self.parameterAsEnum(parameters, self.METHOD, context)],
            magnitude_path=magnitude,
            model_path=self.parameterAsFile(parameters, self.MODEL, context) or None,
            index=self.parameterAsString(parameters, self.INDEX, context) or None,
            threshold=None if threshold in (None, "") else
            self.parameterAsDouble(parameters, self.THRESHOLD, context),
            threads=self.parameterAsInt(parameters, self.THREADS, context),
            **self.callbacks(feedback),
        )
        return {self.OUTPUT: output, self.OUTPUT_MAGNITUDE: magnitude,
                "THRESHOLD_USED": result["threshold"],
                "CHANGED_FRACTION": result["changed_fraction"]}
