"""Processing algorithm ``landfusion:cnnclassify``."""

from .base import LandFusionAlgorithm
from .groups import CLASSIFICATION
from .model_inputs import ModelInputParameters


def _bundled_models():
    from ..core.cnn.inference import bundled_models

    return bundled_models()


class CnnClassifyAlgorithm(ModelInputParameters, LandFusionAlgorithm):
    """Classifies a raster with a convolutional network (ONNX): segmentation in seamless
    overlapping tiles, or patch classification with a sliding window."""

    INPUT = "INPUT"
    INPUT_BANDS = "INPUT_BANDS"
    MODEL = "MODEL"
    MODEL_FILE = "MODEL_FILE"
    TILE_SIZE = "TILE_SIZE"
    OVERLAP = "OVERLAP"
    STRIDE = "STRIDE"
    BATCH_SIZE = "BATCH_SIZE"
    OUTPUT = "OUTPUT"
    OUTPUT_PROBABILITIES = "OUTPUT_PROBABILITIES"
    OUTPUT_CONFIDENCE = "OUTPUT_CONFIDENCE"

    GROUP = CLASSIFICATION

    def name(self):
        """Returns the algorithm id."""
        return "cnnclassify"

    def displayName(self):
        """Returns the algorithm name shown in the toolbox."""
        return self.tr("Classify raster with a CNN")

    def shortDescription(self):
        """Returns a one-sentence description."""
        return self.tr("Classifies a raster with a convolutional network stored as an ONNX model: "
                       "segmentation in overlapping tiles blended without seams, or patch "
                       "classification with a sliding window.")

    def tags(self):
        """Returns search tags."""
        return self.tr("cnn,deep learning,onnx,u-net,unet,segmentation,classification,land cover,"
                       "water,sentinel-1,sentinel-2,sar,tiles,inference,patch,eurosat,"
                       "sliding window").split(",")

    def help_values(self):
        """Lists the bundled models."""
        models = _bundled_models()
        return {"listed": "".join(f"<li><b>{m}</b></li>" for m in models)
                or "<li>(none installed)</li>"}

    def initAlgorithm(self, config=None):
        """Declares the parameters."""
        self.addParameterRasterLayer(self.INPUT, "Input raster",
                                     help="Raster with the bands the network needs, by name.")
        self.addParameterString(
            self.INPUT_BANDS, "Input band names in order (empty: from band descriptions)",
            optional=True,
            help="Names of all the input's bands, comma-separated, e.g. VV,VH or "
                 "VV,VH,B02,B03,B04,B08. Only needed when the band descriptions do not name "
                 "them.")
        models = list(_bundled_models())
        self.addParameterEnum(
            self.MODEL, "Bundled model", models, default=models[0] if models else None,
            optional=True, static=True,
            help="A model shipped with LandFusion (see its model card in resources/models). "
                 "Ignored when a model file is given.")
        self.showModelCard(
            self.addParameterFile(self.MODEL_FILE,
                                  "Model file (ONNX, overrides the bundled model)",
                                  extension="onnx", optional=True,
                                  help="A LandFusion segmentation or patch-classifier model "
                                       "(.onnx)."),
            empty_text="No file chosen: the bundled model above is used.")
        self.addParameterInt(self.TILE_SIZE, "Tile size in pixels (0: model default)", 0, 0,
                             8192, help="Edge length of the square tiles fed to the network.")
        self.addParameterInt(
            self.OVERLAP, "Tile overlap in pixels (-1: model default)", -1, -1, 4096,
            help="Pixels shared by neighbouring tiles, at most half the tile; more overlap "
                 "blends more smoothly but costs time.")
        self.addParameterInt(
            self.STRIDE, "Patch stride in pixels (patch classifiers; 0: model default)", 0, 0,
            4096, help="Step of the sliding patch and size of the output cells, in input pixels; "
                       "at most the patch size. Ignored by segmentation models.")
        self.addParameterBandMapAndExtent()
        self.addParameterInt(self.BATCH_SIZE, "Batch size (tiles per network call)", 4, 1, 256,
                             advanced=True, help="Tiles (or patches) sent to the network at once.")
        self.addParameterThreads()
        self.addParameterRasterOutput(self.OUTPUT, "Classes", style="classes",
                                      help="Class raster with colours, names and a .qml style.")
        self.addParameterRasterOutput(
            self.OUTPUT_PROBABILITIES, "Class probabilities", optional=True, style="probability",
            help="One float32 band per class, named after the class.")
        self.addParameterRasterOutput(
            self.OUTPUT_CONFIDENCE, "Confidence and margin", optional=True, style="confidence",
            help="Band 1: probability of the chosen class; band 2: its lead over the second.")

    def model_path(self, parameters, context):
        """The model file or bundled model (its classes size the probability output)."""
        return self._arguments(parameters, context)["model_path"]

    def _arguments(self, parameters, context):
        model_path = self.parameterAsFile(parameters, self.MODEL_FILE, context)
        if not model_path:
            chosen = self.parameterAsChoice(parameters, self.MODEL, context)
            model_path = _bundled_models().get(chosen, "")
        overlap = self.parameterAsInt(parameters, self.OVERLAP, context)
        return {
            "input_path": self.parameterAsSourcePath(parameters, self.INPUT, context),
            "model_path": model_path,
            "band_names": self.parameterAsString(parameters, self.INPUT_BANDS, context) or None,
            "tile_size": self.parameterAsInt(parameters, self.TILE_SIZE, context) or None,
            "overlap": None if overlap < 0 else overlap,
            "batch_size": self.parameterAsInt(parameters, self.BATCH_SIZE, context),
            "stride": self.parameterAsInt(parameters, self.STRIDE, context) or None,
            "band_map": self.parameterAsBandMap(parameters, context),
            "extent": self.parameterAsInputExtent(parameters, context),
        }

    def check(self, parameters, context):
        """Checks the model, bands and tiling before running."""
        from ..core.cnn.inference import check_cnn_inputs
        from ..core.errors import InputError

        arguments = self._arguments(parameters, context)
        if not arguments["model_path"]:
            raise InputError(self.tr("Choose a bundled model or give an ONNX model file."))
        if not arguments["input_path"]:
            raise InputError(self.tr("Choose an input raster."))
        check_cnn_inputs(**arguments)

    def process(self, parameters, context, feedback):
        """Runs the engine and returns the output paths."""
        from ..core.cnn.inference import classify_with_cnn

        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        probabilities = self.parameterAsOutputLayer(parameters, self.OUTPUT_PROBABILITIES, context)
        confidence = self.parameterAsOutputLayer(parameters, self.OUTPUT_CONFIDENCE, context)
        result = classify_with_cnn(
            output_path=output,
            probabilities_path=probabilities or None,
            confidence_path=confidence or None,
            threads=self.parameterAsInt(parameters, self.THREADS, context),
            **self._arguments(parameters, context),
            **self.callbacks(feedback),
        )
        feedback.pushInfo(self.tr("{} pixels classified.").format(result["valid_pixels"]))
        return {self.OUTPUT: output,
                self.OUTPUT_PROBABILITIES: probabilities or None,
                self.OUTPUT_CONFIDENCE: confidence or None}
