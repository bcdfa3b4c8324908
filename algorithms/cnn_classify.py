"""Processing algorithm ``landfusion:cnnclassify``."""

from qgis.core import (
    QgsProcessing,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from .base import LandFusionAlgorithm


def _bundled_models():
    from ..core.cnn.inference import bundled_models

    return bundled_models()


class CnnClassifyAlgorithm(LandFusionAlgorithm):
    """Classifies a raster with a convolutional network (ONNX) in seamless overlapping tiles."""

    INPUT = "INPUT"
    INPUT_BANDS = "INPUT_BANDS"
    MODEL = "MODEL"
    MODEL_FILE = "MODEL_FILE"
    TILE_SIZE = "TILE_SIZE"
    OVERLAP = "OVERLAP"
    BATCH_SIZE = "BATCH_SIZE"
    THREADS = "THREADS"
    OUTPUT = "OUTPUT"
    OUTPUT_PROBABILITIES = "OUTPUT_PROBABILITIES"
    OUTPUT_CONFIDENCE = "OUTPUT_CONFIDENCE"

    GROUP = "Classification"
    GROUP_ID = "classification"

    def name(self):
        """Returns the algorithm id."""
        return "cnnclassify"

    def displayName(self):  # noqa: N802 (QGIS API name)
        """Returns the algorithm name shown in the toolbox."""
        return self.tr("Classify raster with a CNN (ONNX)")

    def shortDescription(self):  # noqa: N802 (QGIS API name)
        """Returns a one-sentence description."""
        return self.tr("Classifies a raster with a convolutional network stored as an ONNX model, "
                       "in overlapping tiles blended without seams.")

    def tags(self):
        """Returns search tags."""
        return self.tr("cnn,deep learning,onnx,u-net,unet,segmentation,classification,land cover,"
                       "water,sentinel-1,sentinel-2,sar,tiles,inference").split(",")

    def shortHelpString(self):  # noqa: N802 (QGIS API name)
        """Returns the help text shown beside the dialog."""
        models = _bundled_models()
        listed = "".join(f"<li><b>{m}</b></li>" for m in models) or "<li>(none installed)</li>"
        return self.tr(
            "Runs a convolutional network over the whole raster with onnxruntime (no PyTorch or "
            "TensorFlow needed) and writes a class raster with colours, class names and a QGIS "
            "style, plus optional class probabilities and confidence.<br><br>"
            "<b>Model</b>: a bundled model, or any ONNX file carrying LandFusion metadata (band "
            "names, scaling, classes, tile size; see resources/models/README.md and "
            "scripts/write_model_metadata.py). <i>Model file</i> overrides <i>Model</i>.<br>"
            "<b>Bands</b> are found by name in the input's band descriptions, so a stack with "
            "more bands than the model needs works; give <i>Input band names</i> when the "
            "descriptions are empty. Bands are checked before any pixel is read.<br>"
            "<b>Tiles</b>: the raster is processed in strips of overlapping tiles; predictions "
            "are blended with weights that fall off towards tile borders, so there are no seams. "
            "Edges are mirrored, so edge pixels get context. Leave tile size and overlap at 0 to "
            "use the model's defaults. Memory depends on the raster width and the tile size, not "
            "on the raster height.<br>"
            "<b>Nodata</b>: pixels where a used band is nodata (or NaN) are nodata in every "
            "output; tiles without valid pixels are skipped.<br>"
            "<b>Outputs</b> are laid out as in <i>Classify raster</i>: the confidence raster has "
            "two bands, <i>confidence</i> (probability of the chosen class) and <i>margin</i> "
            "(its lead over the second most probable class); the probability raster has one band "
            "per class, named after it; float outputs use nodata -9999.<br><br>"
            f"<b>Bundled models</b><ul>{listed}</ul>"
        )

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API name)
        """Declares the parameters."""
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, self.tr("Input raster")))
        bands = QgsProcessingParameterString(
            self.INPUT_BANDS, self.tr("Input band names in order (empty: from band descriptions)"),
            optional=True)
        bands.setHelp(self.tr("Names of all the input's bands, comma-separated, e.g. VV,VH or "
                              "VV,VH,B02,B03,B04,B08. Only needed when the band descriptions do "
                              "not name them."))
        self.addParameter(bands)
        models = list(_bundled_models())
        model = QgsProcessingParameterEnum(
            self.MODEL, self.tr("Bundled model"), options=models, usesStaticStrings=True,
            defaultValue=models[0] if models else None, optional=True)
        model.setHelp(self.tr("A model shipped with LandFusion (see its model card in "
                              "resources/models). Ignored when a model file is given."))
        self.addParameter(model)
        model_file = QgsProcessingParameterFile(
            self.MODEL_FILE, self.tr("Model file (ONNX, overrides the bundled model)"),
            extension="onnx", optional=True)
        model_file.setHelp(self.tr("An ONNX model with LandFusion metadata."))
        self.addParameter(model_file)
        tile = QgsProcessingParameterNumber(
            self.TILE_SIZE, self.tr("Tile size in pixels (0: model default)"),
            QgsProcessingParameterNumber.Integer, defaultValue=0, minValue=0, maxValue=8192)
        tile.setHelp(self.tr("Edge length of the square tiles fed to the network."))
        self.addParameter(tile)
        overlap = QgsProcessingParameterNumber(
            self.OVERLAP, self.tr("Tile overlap in pixels (-1: model default)"),
            QgsProcessingParameterNumber.Integer, defaultValue=-1, minValue=-1, maxValue=4096)
        overlap.setHelp(self.tr("Pixels shared by neighbouring tiles, at most half the tile; "
                                "more overlap blends more smoothly but costs time."))
        self.addParameter(overlap)
        batch = QgsProcessingParameterNumber(
            self.BATCH_SIZE, self.tr("Batch size (tiles per network call)"),
            QgsProcessingParameterNumber.Integer, defaultValue=4, minValue=1, maxValue=256)
        batch.setFlags(batch.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(batch)
        threads = QgsProcessingParameterNumber(
            self.THREADS, self.tr("Threads (0: all cores)"),
            QgsProcessingParameterNumber.Integer, defaultValue=0, minValue=0, maxValue=256)
        threads.setFlags(threads.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(threads)
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.OUTPUT, self.tr("Classes"), defaultValue=QgsProcessing.TEMPORARY_OUTPUT))
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.OUTPUT_PROBABILITIES, self.tr("Class probabilities"), optional=True,
            createByDefault=False))
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.OUTPUT_CONFIDENCE, self.tr("Confidence and margin"),
            optional=True, createByDefault=False))

    def _arguments(self, parameters, context):
        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        model_path = self.parameterAsFile(parameters, self.MODEL_FILE, context)
        if not model_path:
            chosen = self.parameterAsEnumString(parameters, self.MODEL, context)
            model_path = _bundled_models().get(chosen, "")
        overlap = self.parameterAsInt(parameters, self.OVERLAP, context)
        return {
            "input_path": layer.source() if layer else None,
            "model_path": model_path,
            "band_names": self.parameterAsString(parameters, self.INPUT_BANDS, context) or None,
            "tile_size": self.parameterAsInt(parameters, self.TILE_SIZE, context) or None,
            "overlap": None if overlap < 0 else overlap,
            "batch_size": self.parameterAsInt(parameters, self.BATCH_SIZE, context),
        }

    def checkParameterValues(self, parameters, context):  # noqa: N802 (QGIS API name)
        """Checks the model, bands and tiling before running."""
        ok, message = super().checkParameterValues(parameters, context)
        if not ok:
            return ok, message
        arguments = self._arguments(parameters, context)
        if not arguments["model_path"]:
            return False, self.tr("Choose a bundled model or give an ONNX model file.")
        if not arguments["input_path"]:
            return False, self.tr("Choose an input raster.")
        from ..core.cnn.inference import check_cnn_inputs
        from ..core.errors import LandFusionError

        try:
            check_cnn_inputs(**arguments)
        except LandFusionError as exc:
            return False, str(exc)
        except ImportError as exc:
            return False, self.tr(f"A package LandFusion needs is missing: {exc}")
        return True, ""

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API name)
        """Runs the engine and returns the output paths."""
        from ..core.cnn.inference import classify_with_cnn

        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        probabilities = self.parameterAsOutputLayer(parameters, self.OUTPUT_PROBABILITIES, context)
        confidence = self.parameterAsOutputLayer(parameters, self.OUTPUT_CONFIDENCE, context)
        result = self.run_engine(
            classify_with_cnn,
            output_path=output,
            probabilities_path=probabilities or None,
            confidence_path=confidence or None,
            threads=self.parameterAsInt(parameters, self.THREADS, context),
            **self._arguments(parameters, context),
            **self.callbacks(feedback),
        )
        feedback.pushInfo(self.tr(f"{result['valid_pixels']} pixels classified."))
        return {self.OUTPUT: output,
                self.OUTPUT_PROBABILITIES: probabilities or None,
                self.OUTPUT_CONFIDENCE: confidence or None}
