"""Processing algorithm ``landfusion:trainchangemodel``."""

from qgis.core import (
    QgsProcessing,
    QgsProcessingOutputNumber,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
)

from ..core.choices import CLASSIFIERS
from .base import LandFusionAlgorithm
from .groups import CHANGE


def layer_sources(algorithm, parameters, name, context):
    """Returns the file paths of a multiple-layer parameter, in the given order."""
    return [layer.source().split("|")[0]
            for layer in algorithm.parameterAsLayerList(parameters, name, context)]


class TrainChangeModelAlgorithm(LandFusionAlgorithm):
    """Trains a bi-temporal change model from labelled BEFORE/AFTER pairs."""

    BEFORE = "BEFORE"
    AFTER = "AFTER"
    LABELS = "LABELS"
    LABEL_NODATA = "LABEL_NODATA"
    TRAINING = "TRAINING"
    CLASS_FIELD = "CLASS_FIELD"
    CLASS_NAMES = "CLASS_NAMES"
    ALGORITHM = "ALGORITHM"
    TREES = "TREES"
    SAMPLES = "SAMPLES"
    FEATURES = "FEATURES"
    WINDOWS = "WINDOWS"
    PARAMETERS = "PARAMETERS"
    SEED = "SEED"
    THREADS = "THREADS"
    OUTPUT_MODEL = "OUTPUT_MODEL"
    OUTPUT_REPORT = "OUTPUT_REPORT"

    GROUP = CHANGE

    def name(self):
        """Returns the algorithm id."""
        return "trainchangemodel"

    def displayName(self):
        """Returns the algorithm name shown in the toolbox."""
        return self.tr("Train change model")

    def shortDescription(self):
        """Returns a one-sentence description."""
        return self.tr("Trains a change model on labelled before/after pairs, chooses its decision "
                       "threshold by leave-one-pair-out validation and saves it as ONNX.")

    def tags(self):
        """Returns search tags."""
        return self.tr("change,change detection,bi-temporal,train,model,urban change,onnx,"
                       "random forest,threshold,f1,sentinel-2,oscd").split(",")

    def initAlgorithm(self, config=None):
        """Declares the parameters."""
        for key, label, help_text in (
                (self.BEFORE, "BEFORE rasters (one per pair)",
                 "Rasters of the first date of each pair, with named bands."),
                (self.AFTER, "AFTER rasters (same order)",
                 "Rasters of the second date, in the order of the BEFORE rasters.")):
            parameter = QgsProcessingParameterMultipleLayers(key, self.tr(label),
                                                             QgsProcessing.TypeRaster)
            parameter.setHelp(self.tr(help_text))
            self.addParameter(parameter)
        labels = QgsProcessingParameterMultipleLayers(
            self.LABELS, self.tr("Label rasters (one per pair)"), QgsProcessing.TypeRaster,
            optional=True)
        labels.setHelp(self.tr("Class ids per pixel, any grid; or use training polygons."))
        self.addParameter(labels)
        nodata = QgsProcessingParameterNumber(
            self.LABEL_NODATA, self.tr("Label nodata (unlabelled value)"),
            QgsProcessingParameterNumber.Integer, optional=True)
        nodata.setHelp(self.tr("Value of unlabelled pixels; default: the label raster's nodata."))
        self.addParameter(nodata)
        training = QgsProcessingParameterFeatureSource(
            self.TRAINING, self.tr("Training polygons"), [QgsProcessing.TypeVectorPolygon],
            optional=True)
        training.setHelp(self.tr("Polygons with an integer class field, instead of label rasters."))
        self.addParameter(training)
        field = QgsProcessingParameterField(
            self.CLASS_FIELD, self.tr("Class field"), parentLayerParameterName=self.TRAINING,
            type=QgsProcessingParameterField.Numeric, optional=True)
        field.setHelp(self.tr("Integer class ids of the training polygons."))
        self.addParameter(field)
        names = QgsProcessingParameterString(
            self.CLASS_NAMES, self.tr("Class names"), defaultValue="", optional=True)
        names.setHelp(self.tr("e.g. 1=no change,2=change"))
        self.addParameter(names)
        self.addParameterEnum(self.ALGORITHM, "Algorithm", CLASSIFIERS,
                              help="The classifiers of 'Train classifier'.")
        advanced = [
            (QgsProcessingParameterNumber(
                self.TREES, self.tr("Trees (Random Forest) / iterations (gradient boosting)"),
                QgsProcessingParameterNumber.Integer, defaultValue=100, minValue=1),
             "Number of trees or boosting iterations."),
            (QgsProcessingParameterNumber(
                self.SAMPLES, self.tr("Samples per pair and class"),
                QgsProcessingParameterNumber.Integer, defaultValue=10000, minValue=100),
             "Cap of change and of no-change samples drawn from each pair."),
            (QgsProcessingParameterString(
                self.FEATURES, self.tr("Feature groups"), defaultValue="dates,diff,logratio,"
                "context,diff_z"),
             "Any of dates, diff, logratio, context, context_dates, diff_z."),
            (QgsProcessingParameterString(
                self.WINDOWS, self.tr("Context window sizes (pixels)"), defaultValue="5,15"),
             "Odd window sizes of the neighbourhood statistics."),
            (QgsProcessingParameterString(
                self.PARAMETERS, self.tr("Other parameters (key=value; ...)"), optional=True),
             "Any scikit-learn parameter of the chosen estimator."),
            (QgsProcessingParameterNumber(
                self.SEED, self.tr("Random seed"), QgsProcessingParameterNumber.Integer,
                defaultValue=0, minValue=0), "Seed of sampling and estimators."),
            (QgsProcessingParameterNumber(
                self.THREADS, self.tr("Threads (0: all cores)"),
                QgsProcessingParameterNumber.Integer, defaultValue=0, minValue=0),
             "Threads used for training."),
        ]
        for parameter, help_text in advanced:
            parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
            parameter.setHelp(self.tr(help_text))
            self.addParameter(parameter)
        model = QgsProcessingParameterFileDestination(
            self.OUTPUT_MODEL, self.tr("Change model"), self.tr("ONNX model (*.onnx)"))
        model.setHelp(self.tr("The trained change model, a single .onnx file."))
        self.addParameter(model)
        report = QgsProcessingParameterFileDestination(
            self.OUTPUT_REPORT, self.tr("Validation report"), self.tr("HTML files (*.html)"),
            optional=True)
        report.setHelp(self.tr("HTML report; a JSON report with the same name is written beside."))
        self.addParameter(report)
        for key, label in (("THRESHOLD", "Decision threshold"), ("F1", "F1 of change (held out)"),
                           ("PRECISION", "Precision of change (held out)"),
                           ("RECALL", "Recall of change (held out)"),
                           ("SAMPLES_USED", "Training samples")):
            self.addOutput(QgsProcessingOutputNumber(key, self.tr(label)))

    def _settings(self, parameters, context):
        from ..core.classification.train import parse_parameters
        from ..core.errors import InputError

        key = self.parameterAsChoice(parameters, self.ALGORITHM, context)
        chosen = {}
        trees = self.parameterAsInt(parameters, self.TREES, context)
        if key == "random_forest":
            chosen = {"n_estimators": trees, "min_samples_leaf": 3}
        elif key == "hist_gradient_boosting":
            chosen = {"max_iter": trees}
        chosen.update(parse_parameters(self.parameterAsString(parameters, self.PARAMETERS,
                                                               context)))
        groups = [g.strip() for g in (self.parameterAsString(parameters, self.FEATURES, context)
                                      or "").split(",") if g.strip()]
        try:
            windows = [int(w) for w in (self.parameterAsString(parameters, self.WINDOWS, context)
                                        or "").split(",") if w.strip()]
        except ValueError as exc:
            raise InputError("Context window sizes must be odd integers, e.g. 5,15.") from exc
        return key, chosen, groups, windows

    def check(self, parameters, context):
        """Checks pairs, labels and hyper-parameters before running."""
        from ..core.change.training import check_training
        from ..core.errors import InputError

        labels = layer_sources(self, parameters, self.LABELS, context)
        training = parameters.get(self.TRAINING)
        if labels and training not in (None, ""):
            raise InputError("Give label rasters OR training polygons, not both.")
        key, chosen, groups, windows = self._settings(parameters, context)
        check_training(
            before=layer_sources(self, parameters, self.BEFORE, context),
            after=layer_sources(self, parameters, self.AFTER, context),
            labels=labels or None, training=None if training in (None, "") else training,
            class_field=self.parameterAsString(parameters, self.CLASS_FIELD, context) or None,
            class_names=self.parameterAsString(parameters, self.CLASS_NAMES, context) or None,
            algorithm=key, parameters=chosen, feature_groups=groups, scales=windows,
            samples_per_pair=self.parameterAsInt(parameters, self.SAMPLES, context),
            seed=self.parameterAsInt(parameters, self.SEED, context),
            threads=self.parameterAsInt(parameters, self.THREADS, context))

    def process(self, parameters, context, feedback):
        """Runs the engine and returns the model and report paths."""
        from ..core.change.training import train_change_model

        key, chosen, groups, windows = self._settings(parameters, context)
        training = layer_name = None
        if parameters.get(self.TRAINING) not in (None, ""):
            training, layer_name = self.parameterAsCompatibleSourceLayerPathAndLayerName(
                parameters, self.TRAINING, context, ["gpkg", "shp", "geojson"], "gpkg", feedback)
            if layer_name:
                training = f"{training}|layername={layer_name}"
        nodata = parameters.get(self.LABEL_NODATA)
        model = self.parameterAsFileOutput(parameters, self.OUTPUT_MODEL, context)
        report = self.parameterAsFileOutput(parameters, self.OUTPUT_REPORT, context) or None
        result = self.run_engine(
            train_change_model,
            before=layer_sources(self, parameters, self.BEFORE, context),
            after=layer_sources(self, parameters, self.AFTER, context),
            model_path=model, report_path=report,
            labels=layer_sources(self, parameters, self.LABELS, context) or None,
            label_nodata=None if nodata in (None, "") else
            self.parameterAsInt(parameters, self.LABEL_NODATA, context),
            training=training,
            class_field=self.parameterAsString(parameters, self.CLASS_FIELD, context) or None,
            class_names=self.parameterAsString(parameters, self.CLASS_NAMES, context) or None,
            algorithm=key, parameters=chosen, feature_groups=groups, scales=windows,
            samples_per_pair=self.parameterAsInt(parameters, self.SAMPLES, context),
            seed=self.parameterAsInt(parameters, self.SEED, context),
            threads=self.parameterAsInt(parameters, self.THREADS, context),
            **self.callbacks(feedback),
        )
        scores = result["scores"]
        return {self.OUTPUT_MODEL: model, self.OUTPUT_REPORT: report,
                "THRESHOLD": result["threshold"], "F1": scores["f1"],
                "PRECISION": scores["precision"], "RECALL": scores["recall"],
                "SAMPLES_USED": result["samples"]}
