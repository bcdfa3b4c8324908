"""Processing algorithm ``landfusion:modelinfo``."""

from qgis.core import QgsProcessingOutputString

from .base import LandFusionAlgorithm
from .groups import CLASSIFICATION


def _bundled_models():
    from ..core.cnn.inference import bundled_models

    return bundled_models()


class ModelInfoAlgorithm(LandFusionAlgorithm):
    """Shows the card of a LandFusion model, or lists the bundled models."""

    MODEL = "MODEL"
    BUNDLED = "BUNDLED"
    OUTPUT_HTML = "OUTPUT_HTML"
    TASK = "TASK"
    BANDS = "BANDS"
    CLASSES = "CLASSES"

    GROUP = CLASSIFICATION

    def name(self):
        """Returns the algorithm id."""
        return "modelinfo"

    def displayName(self):
        """Returns the algorithm name shown in the toolbox."""
        return self.tr("Model information")

    def shortDescription(self):
        """Returns a one-sentence description."""
        return self.tr("Describes a LandFusion model (task, bands and units, classes, training "
                       "data and validation scores) as an HTML card, or lists the bundled models.")

    def tags(self):
        """Returns search tags."""
        return self.tr("model,card,onnx,metadata,bands,classes,information,browser,bundled,"
                       "validation,training,statistics").split(",")

    def initAlgorithm(self, config=None):
        """Declares the parameters."""
        self.addParameterFile(self.MODEL, "Model file (.onnx)", optional=True,
                              file_filter="ONNX models (*.onnx);;All files (*.*)",
                              help="Any LandFusion model: pixel classifier, segmentation or "
                                   "patch CNN, change model.")
        models = list(_bundled_models())
        self.addParameterEnum(self.BUNDLED, "Bundled model (when no file is given)", models,
                              default=None, optional=True, static=True,
                              help="A model shipped with LandFusion. Leave both empty to list "
                                   "the bundled models.")
        self.addParameterFileOutput(self.OUTPUT_HTML, "Model card (HTML)", "HTML files (*.html)",
                                    temporary=True, help="The card as a self-contained HTML page.")
        self.addOutput(QgsProcessingOutputString(self.TASK, self.tr("Task")))
        self.addOutput(QgsProcessingOutputString(self.BANDS, self.tr("Bands in order")))
        self.addOutput(QgsProcessingOutputString(self.CLASSES, self.tr("Classes")))

    def _model_path(self, parameters, context):
        path = self.parameterAsFile(parameters, self.MODEL, context)
        if path:
            return path
        chosen = self.parameterAsChoice(parameters, self.BUNDLED, context)
        return _bundled_models().get(chosen, "") if chosen else ""

    def process(self, parameters, context, feedback):
        """Writes the card and returns its path and a summary."""
        from ..core.models.info import describe_model

        output = self.parameterAsFileOutput(parameters, self.OUTPUT_HTML, context)
        result = describe_model(self._model_path(parameters, context), output,
                                bundled=_bundled_models(), log=feedback.pushInfo)
        return {self.OUTPUT_HTML: output, self.TASK: result["task"],
                self.BANDS: ",".join(result["bands"]), self.CLASSES: ",".join(result["classes"])}
