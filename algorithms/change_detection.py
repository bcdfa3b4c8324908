"""Processing algorithm ``landfusion:changedetection``."""

from qgis.core import (
    QgsProcessingOutputNumber,
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from ..core.change.detect import METHODS
from .base import LandFusionAlgorithm
from .groups import CHANGE


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

    GROUP = CHANGE

    def name(self):
        """Returns the algorithm id."""
        return "changedetection"

    def displayName(self):
        """Returns the algorithm name shown in the toolbox."""
        return self.tr("Change detection")

    def shortDescription(self):
        """Returns a one-sentence description."""
        return self.tr("Maps change between two rasters of the same area with a change model, "
                       "change-vector analysis, a radar log-ratio or an index difference.")

    def tags(self):
        """Returns search tags."""
        return self.tr("change,change detection,bi-temporal,cva,change vector,log-ratio,sar,"
                       "sentinel-1,sentinel-2,ndvi,ndbi,otsu,threshold,onnx").split(",")

    def initAlgorithm(self, config=None):
        """Declares the parameters."""
        for key, label, help_text in (
                (self.BEFORE, "BEFORE raster", "The first date; its grid is the output grid."),
                (self.AFTER, "AFTER raster", "The second date, with the same band names.")):
            parameter = QgsProcessingParameterRasterLayer(key, self.tr(label))
            parameter.setHelp(self.tr(help_text))
            self.addParameter(parameter)
        self.addParameterEnum(self.METHOD, "Method", METHODS, default=1,
                              help="A change model is the most accurate when one fits the area.")
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
        self.addParameterThreads(help="Threads of the model inference.")
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

    def check(self, parameters, context):
        """Checks that the chosen method has what it needs."""
        from ..core.change.detect import check_detection

        threshold = parameters.get(self.THRESHOLD)
        check_detection(
            method=self.parameterAsChoice(parameters, self.METHOD, context),
            model_path=self.parameterAsFile(parameters, self.MODEL, context) or None,
            index=(self.parameterAsString(parameters, self.INDEX, context) or "").strip() or None,
            threshold=None if threshold in (None, "") else
            self.parameterAsDouble(parameters, self.THRESHOLD, context))

    def process(self, parameters, context, feedback):
        """Runs the engine and returns the output paths."""
        from ..core.change.detect import change_detection

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
            method=self.parameterAsChoice(parameters, self.METHOD, context),
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
