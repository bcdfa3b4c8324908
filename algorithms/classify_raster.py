"""Processing algorithm ``landfusion:classifyraster``."""

from qgis.core import QgsProcessingOutputNumber

from ..core.choices import CLEAR_MASK_TYPES
from .base import LandFusionAlgorithm
from .groups import CLASSIFICATION
from .model_inputs import ModelInputParameters


class ClassifyRasterAlgorithm(ModelInputParameters, LandFusionAlgorithm):
    """Classifies a raster with a LandFusion ONNX model."""

    INPUT = "INPUT"
    MODEL = "MODEL"
    MASK = "MASK"
    MASK_TYPE = "MASK_TYPE"
    OUTPUT = "OUTPUT"
    OUTPUT_CONFIDENCE = "OUTPUT_CONFIDENCE"
    OUTPUT_PROBABILITIES = "OUTPUT_PROBABILITIES"
    CLASSIFIED_PIXELS = "CLASSIFIED_PIXELS"

    GROUP = CLASSIFICATION

    def name(self):
        """Returns the algorithm id."""
        return "classifyraster"

    def displayName(self):
        """Returns the algorithm name shown in the toolbox."""
        return self.tr("Classify raster")

    def shortDescription(self):
        """Returns a one-sentence description."""
        return self.tr("Classifies a raster of any size with a LandFusion ONNX model into a styled "
                       "class raster.")

    def tags(self):
        """Returns search tags."""
        return self.tr("classification,classify,predict,prediction,onnx,model,land cover,map,"
                       "confidence,probability,random forest,sentinel-1,sentinel-2").split(",")

    def initAlgorithm(self, config=None):
        """Declares the parameters."""
        self.addParameterRasterLayer(self.INPUT, "Raster to classify",
                                     help="Raster with the bands the model was trained on.")
        self.showModelCard(self.addParameterFile(
            self.MODEL, "Model file (.onnx)", file_filter="ONNX models (*.onnx);;All files (*.*)",
            help="A LandFusion ONNX model, e.g. from Train classifier."))
        self.addParameterRasterLayer(self.MASK, "Mask (optional)", optional=True,
                                     help="A mask marks what to leave out: pixels where it is not "
                                          "0, or nodata, are not classified. A Cloud mask output "
                                          "chains in as it is.")
        self.addParameterEnum(
            self.MASK_TYPE, "Mask type", CLEAR_MASK_TYPES, default="binary", optional=True,
            advanced=True, help="How to read the mask (a landfusion:cloudmask output is recognised by its "
                 "metadata whatever the choice).")
        self.addParameterBandMapAndExtent()
        self.addParameterThreads(help="Threads that predict each block's pixels in parallel.")
        self.addParameterRasterOutput(
            self.OUTPUT, "Classification", style="classes",
            help="Class raster (GeoTIFF) with colour table, category names and a .qml style "
                 "beside it.")
        self.addParameterRasterOutput(
            self.OUTPUT_CONFIDENCE, "Confidence and margin", optional=True, style="confidence",
            help="Band 1: maximum probability; band 2: top-1 minus top-2.")
        self.addParameterRasterOutput(
            self.OUTPUT_PROBABILITIES, "Class probabilities", optional=True, style="probability",
            help="One float32 band per class, named after the class.")
        self.addOutput(QgsProcessingOutputNumber(self.CLASSIFIED_PIXELS,
                                                 self.tr("Classified pixels")))

    def model_path(self, parameters, context):
        """The model file (its classes size the probability output)."""
        return self.parameterAsFile(parameters, self.MODEL, context)

    def mask_type(self, parameters, context):
        """How to read the mask: binary (non-zero = left out) unless chosen otherwise."""
        return self.parameterAsChoice(parameters, self.MASK_TYPE, context) or "binary"

    def check(self, parameters, context):
        """Checks the model file and the bands before running."""
        from ..core.classification.classify import check_classification

        check_classification(self.parameterAsSourcePath(parameters, self.INPUT, context) or "",
                             self.parameterAsFile(parameters, self.MODEL, context),
                             band_map=self.parameterAsBandMap(parameters, context),
                             extent=self.parameterAsInputExtent(parameters, context),
                             mask_path=self.parameterAsSourcePath(parameters, self.MASK, context),
                             mask_type=self.mask_type(parameters, context))

    def process(self, parameters, context, feedback):
        """Runs the engine and returns the output paths."""
        from ..core.classification.classify import classify_raster

        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        confidence = self.parameterAsOutputLayer(parameters, self.OUTPUT_CONFIDENCE, context)
        probabilities = self.parameterAsOutputLayer(parameters, self.OUTPUT_PROBABILITIES, context)
        result = classify_raster(
            input_path=self.parameterAsSourcePath(parameters, self.INPUT, context),
            model_path=self.parameterAsFile(parameters, self.MODEL, context),
            output_path=output,
            confidence_path=confidence or None,
            probabilities_path=probabilities or None,
            mask_path=self.parameterAsSourcePath(parameters, self.MASK, context),
            mask_type=self.mask_type(parameters, context),
            band_map=self.parameterAsBandMap(parameters, context),
            extent=self.parameterAsInputExtent(parameters, context),
            threads=self.parameterAsInt(parameters, self.THREADS, context),
            **self.callbacks(feedback),
        )
        return {self.OUTPUT: output, self.OUTPUT_CONFIDENCE: confidence or None,
                self.OUTPUT_PROBABILITIES: probabilities or None,
                self.CLASSIFIED_PIXELS: result["classified_pixels"]}
