"""Processing algorithm ``landfusion:classifyraster``."""

import os

from qgis.core import (
    QgsProcessing,
    QgsProcessingLayerPostProcessorInterface,
    QgsProcessingOutputNumber,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
)

from .base import LandFusionAlgorithm

#: QGIS does not own layer post-processors; keep the recent ones alive until the layers load.
_POST_PROCESSORS = []


class ClassStylePostProcessor(QgsProcessingLayerPostProcessorInterface):
    """Loads the class style (.qml beside the raster) when the output is added to the project."""

    def __init__(self, qml_path):
        super().__init__()
        self.qml_path = qml_path

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 (QGIS API name)
        """Applies the QML style to the loaded layer."""
        if layer is not None and os.path.exists(self.qml_path):
            layer.loadNamedStyle(self.qml_path)
            layer.triggerRepaint()


class ClassifyRasterAlgorithm(LandFusionAlgorithm):
    """Classifies a raster with a LandFusion ONNX model."""

    INPUT = "INPUT"
    MODEL = "MODEL"
    MASK = "MASK"
    THREADS = "THREADS"
    OUTPUT = "OUTPUT"
    OUTPUT_CONFIDENCE = "OUTPUT_CONFIDENCE"
    OUTPUT_PROBABILITIES = "OUTPUT_PROBABILITIES"

    GROUP = "Classification"
    GROUP_ID = "classification"

    def name(self):
        """Returns the algorithm id."""
        return "classifyraster"

    def displayName(self):  # noqa: N802 (QGIS API name)
        """Returns the algorithm name shown in the toolbox."""
        return self.tr("Classify raster")

    def shortDescription(self):  # noqa: N802 (QGIS API name)
        """Returns a one-sentence description."""
        return self.tr("Classifies a raster of any size with a LandFusion ONNX model into a styled "
                       "class raster.")

    def tags(self):
        """Returns search tags."""
        return self.tr("classification,classify,predict,prediction,onnx,model,land cover,map,"
                       "confidence,probability,random forest,sentinel-1,sentinel-2").split(",")

    def shortHelpString(self):  # noqa: N802 (QGIS API name)
        """Returns the help text shown beside the dialog."""
        return self.tr(
            "Classifies every pixel of a raster with a model trained by <i>Train classifier</i> "
            "(a LandFusion <b>.onnx</b> file), block by block with onnxruntime, so memory does not "
            "depend on the raster size.<br><br>"
            "<b>Bands</b>: before any pixel is read, the raster's bands are checked against the "
            "model's: by name when both are named (extra bands are ignored), else by count and "
            "order. A mismatch stops with both band lists.<br>"
            "<b>Nodata</b>: pixels where any band is nodata, NaN or infinite, or outside the mask "
            "(mask value 0 or nodata), are written as nodata; blocks without a valid pixel are not "
            "classified.<br>"
            "<b>Outputs</b>: a class raster (8 or 16 bit) with colour table, category names and a "
            ".qml style beside it; optionally a 2-band confidence raster (maximum class "
            "probability, and the margin between the two most probable classes) and a probability "
            "raster with one band per class.<br>"
            "Model files are ONNX only; pickled models are refused because loading them can run "
            "arbitrary code.")

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API name)
        """Declares the parameters."""
        raster = QgsProcessingParameterRasterLayer(self.INPUT, self.tr("Raster to classify"))
        raster.setHelp(self.tr("Raster with the bands the model was trained on."))
        self.addParameter(raster)
        model = QgsProcessingParameterFile(
            self.MODEL, self.tr("Model file (.onnx)"),
            fileFilter=self.tr("ONNX models (*.onnx);;All files (*.*)"))
        model.setHelp(self.tr("A LandFusion ONNX model, e.g. from Train classifier."))
        self.addParameter(model)
        mask = QgsProcessingParameterRasterLayer(self.MASK, self.tr("Mask (optional)"),
                                                 optional=True)
        mask.setHelp(self.tr("Pixels where the mask is 0 or nodata are not classified."))
        self.addParameter(mask)
        threads = QgsProcessingParameterNumber(
            self.THREADS, self.tr("CPU threads (0: all)"), QgsProcessingParameterNumber.Integer,
            defaultValue=0, minValue=0)
        threads.setFlags(threads.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        threads.setHelp(self.tr("Threads that predict each block's pixels in parallel."))
        self.addParameter(threads)
        output = QgsProcessingParameterRasterDestination(
            self.OUTPUT, self.tr("Classification"), defaultValue=QgsProcessing.TEMPORARY_OUTPUT)
        output.setHelp(self.tr("Class raster (GeoTIFF) with colour table, category names and a "
                               ".qml style beside it."))
        self.addParameter(output)
        confidence = QgsProcessingParameterRasterDestination(
            self.OUTPUT_CONFIDENCE, self.tr("Confidence and margin"), optional=True,
            createByDefault=False)
        confidence.setHelp(self.tr("Band 1: maximum probability; band 2: top-1 minus top-2."))
        self.addParameter(confidence)
        probabilities = QgsProcessingParameterRasterDestination(
            self.OUTPUT_PROBABILITIES, self.tr("Class probabilities"), optional=True,
            createByDefault=False)
        probabilities.setHelp(self.tr("One float32 band per class, named after the class."))
        self.addParameter(probabilities)
        self.addOutput(QgsProcessingOutputNumber("CLASSIFIED_PIXELS",
                                                 self.tr("Classified pixels")))

    def checkParameterValues(self, parameters, context):  # noqa: N802 (QGIS API name)
        """Checks the model file and the bands before running."""
        ok, message = super().checkParameterValues(parameters, context)
        if not ok:
            return ok, message
        from ..core.classification.classify import check_classification
        from ..core.errors import LandFusionError

        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        try:
            check_classification(layer.source() if layer else "",
                                 self.parameterAsFile(parameters, self.MODEL, context))
        except LandFusionError as exc:
            return False, str(exc)
        except ImportError as exc:
            return False, self.tr(f"A package LandFusion needs is missing: {exc}")
        return True, ""

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API name)
        """Runs the engine and returns the output paths."""
        from ..core.classification.classify import classify_raster

        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        mask = self.parameterAsRasterLayer(parameters, self.MASK, context)
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        confidence = self.parameterAsOutputLayer(parameters, self.OUTPUT_CONFIDENCE, context)
        probabilities = self.parameterAsOutputLayer(parameters, self.OUTPUT_PROBABILITIES, context)
        result = self.run_engine(
            classify_raster,
            input_path=layer.source() if layer else None,
            model_path=self.parameterAsFile(parameters, self.MODEL, context),
            output_path=output,
            confidence_path=confidence or None,
            probability_path=probabilities or None,
            mask_path=mask.source() if mask else None,
            threads=self.parameterAsInt(parameters, self.THREADS, context),
            **self.callbacks(feedback),
        )
        if context.willLoadLayerOnCompletion(output):
            processor = ClassStylePostProcessor(os.path.splitext(output)[0] + ".qml")
            _POST_PROCESSORS[:] = _POST_PROCESSORS[-15:] + [processor]
            context.layerToLoadOnCompletionDetails(output).setPostProcessor(processor)
        return {self.OUTPUT: output, self.OUTPUT_CONFIDENCE: confidence or None,
                self.OUTPUT_PROBABILITIES: probabilities or None,
                "CLASSIFIED_PIXELS": result["classified_pixels"]}
