"""Processing algorithm ``landfusion:trainclassifier``."""

from qgis.core import (
    QgsProcessing,
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from .base import LandFusionAlgorithm

#: Display names in the order of the ALGORITHM enum (stable API: the index is the value).
ALGORITHM_OPTIONS = ("Random Forest", "SVM (RBF kernel)", "K-nearest neighbours", "Decision tree",
                     "MLP (neural network)", "Histogram gradient boosting")


class TrainClassifierAlgorithm(LandFusionAlgorithm):
    """Trains a pixel classifier from a raster and labelled polygons or points."""

    INPUT = "INPUT"
    TRAINING = "TRAINING"
    CLASS_FIELD = "CLASS_FIELD"
    NAME_FIELD = "NAME_FIELD"
    COLOR_FIELD = "COLOR_FIELD"
    ALGORITHM = "ALGORITHM"
    FOLDS = "FOLDS"
    MAX_SAMPLES = "MAX_SAMPLES"
    TREES = "TREES"
    MAX_DEPTH = "MAX_DEPTH"
    SVM_C = "SVM_C"
    NEIGHBORS = "NEIGHBORS"
    HIDDEN_LAYERS = "HIDDEN_LAYERS"
    PARAMETERS = "PARAMETERS"
    SEED = "SEED"
    THREADS = "THREADS"
    OUTPUT_MODEL = "OUTPUT_MODEL"
    OUTPUT_REPORT = "OUTPUT_REPORT"

    GROUP = "Classification"
    GROUP_ID = "classification"

    def name(self):
        """Returns the algorithm id."""
        return "trainclassifier"

    def displayName(self):  # noqa: N802 (QGIS API name)
        """Returns the algorithm name shown in the toolbox."""
        return self.tr("Train classifier")

    def shortDescription(self):  # noqa: N802 (QGIS API name)
        """Returns a one-sentence description."""
        return self.tr("Trains a pixel classifier from a raster and labelled polygons or points "
                       "and saves it as an ONNX model with a validation report.")

    def tags(self):
        """Returns search tags."""
        return self.tr("classification,classifier,train,training,supervised,random forest,svm,knn,"
                       "decision tree,mlp,gradient boosting,onnx,accuracy,validation,land cover,"
                       "sentinel-1,sentinel-2").split(",")

    def shortHelpString(self):  # noqa: N802 (QGIS API name)
        """Returns the help text shown beside the dialog."""
        return self.tr(
            "Trains a classifier on the pixels under labelled polygons (every pixel whose centre "
            "lies inside) or points (the pixel under each point) and writes one <b>.onnx</b> model "
            "file that holds the whole pipeline (scaling included) and describes itself: band "
            "names, classes with names and colours, nodata, CRS, pixel size, scores. Use it with "
            "<i>Classify raster</i>.<br><br>"
            "<b>Training layer</b>: any CRS (reprojected to the raster's); invalid geometries are "
            "repaired or skipped and counted. The class field is an integer (ids kept) or text "
            "(ids 1, 2, ... alphabetically, names kept); optional fields give class names and "
            "colours (#rrggbb).<br>"
            "<b>Validation</b>: k-fold grouped by polygon (all pixels of a polygon in the same "
            "fold, stratified by class) is the leak-free estimate; a pixel-level random k-fold is "
            "reported beside it to show how optimistic it is. With too few polygons per class the "
            "number of folds is reduced or validation falls back to pixels, with a warning.<br>"
            "<b>Report</b>: overall accuracy, kappa, macro-F1, per-class precision/recall/F1 and "
            "confusion matrices in a self-contained HTML page and a JSON file beside it.<br>"
            "<b>Samples per class</b>: classes with more pixels are randomly subsampled (seeded) "
            "to keep training fast; 0 uses every pixel.<br>"
            "<b>Hyper-parameters</b>: the main ones are exposed; <i>Other parameters</i> takes "
            "scikit-learn parameters as <code>key=value; key=value</code>.")

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API name)
        """Declares the parameters."""
        raster = QgsProcessingParameterRasterLayer(self.INPUT, self.tr("Feature raster"))
        raster.setHelp(self.tr("Raster whose bands are the features, e.g. a Sentinel-1/2 stack."))
        self.addParameter(raster)
        training = QgsProcessingParameterFeatureSource(
            self.TRAINING, self.tr("Training polygons or points"),
            [QgsProcessing.TypeVectorPolygon, QgsProcessing.TypeVectorPoint])
        training.setHelp(self.tr("Labelled polygons or points in any CRS."))
        self.addParameter(training)
        field = QgsProcessingParameterField(
            self.CLASS_FIELD, self.tr("Class field"), parentLayerParameterName=self.TRAINING)
        field.setHelp(self.tr("Integer class ids or text class names."))
        self.addParameter(field)
        for key, label, help_text in (
                (self.NAME_FIELD, "Class name field", "Optional field with the class names."),
                (self.COLOR_FIELD, "Class colour field",
                 "Optional field with class colours (#rrggbb or r,g,b); else a palette.")):
            parameter = QgsProcessingParameterField(
                key, self.tr(label), parentLayerParameterName=self.TRAINING, optional=True)
            parameter.setHelp(self.tr(help_text))
            self.addParameter(parameter)
        algorithm = QgsProcessingParameterEnum(
            self.ALGORITHM, self.tr("Algorithm"), options=[self.tr(o) for o in ALGORITHM_OPTIONS],
            defaultValue=0)
        algorithm.setHelp(self.tr("Random Forest is a robust default."))
        self.addParameter(algorithm)
        folds = QgsProcessingParameterNumber(
            self.FOLDS, self.tr("Validation folds (0: no validation)"),
            QgsProcessingParameterNumber.Integer, defaultValue=5, minValue=0, maxValue=20)
        folds.setHelp(self.tr("Number of folds of the grouped-by-polygon and pixel k-fold."))
        self.addParameter(folds)
        samples = QgsProcessingParameterNumber(
            self.MAX_SAMPLES, self.tr("Maximum samples per class (0: all)"),
            QgsProcessingParameterNumber.Integer, defaultValue=20000, minValue=0)
        samples.setHelp(self.tr("Stratified random subsampling cap, per class."))
        self.addParameter(samples)
        advanced = [
            QgsProcessingParameterNumber(
                self.TREES, self.tr("Trees (Random Forest) / iterations (gradient boosting)"),
                QgsProcessingParameterNumber.Integer, defaultValue=100, minValue=1),
            QgsProcessingParameterNumber(
                self.MAX_DEPTH, self.tr("Maximum tree depth (0: unlimited)"),
                QgsProcessingParameterNumber.Integer, defaultValue=0, minValue=0),
            QgsProcessingParameterNumber(
                self.SVM_C, self.tr("SVM regularisation C"), QgsProcessingParameterNumber.Double,
                defaultValue=10.0, minValue=1e-6),
            QgsProcessingParameterNumber(
                self.NEIGHBORS, self.tr("Neighbours (K-nearest neighbours)"),
                QgsProcessingParameterNumber.Integer, defaultValue=5, minValue=1),
            QgsProcessingParameterString(
                self.HIDDEN_LAYERS, self.tr("Hidden layer sizes (MLP)"), defaultValue="100"),
            QgsProcessingParameterString(
                self.PARAMETERS, self.tr("Other parameters (key=value; ...)"), optional=True),
            QgsProcessingParameterNumber(
                self.SEED, self.tr("Random seed"), QgsProcessingParameterNumber.Integer,
                defaultValue=0, minValue=0),
            QgsProcessingParameterNumber(
                self.THREADS, self.tr("CPU threads (0: all)"), QgsProcessingParameterNumber.Integer,
                defaultValue=0, minValue=0),
        ]
        helps = ("Number of trees of Random Forest, boosting iterations of gradient boosting.",
                 "Depth limit of tree-based algorithms; smaller trees give smaller, faster models.",
                 "Inverse regularisation strength of the SVM.",
                 "Number of neighbours of K-nearest neighbours.",
                 "Comma-separated neurons per hidden layer of the MLP, e.g. 100,50.",
                 "Any scikit-learn parameter of the chosen estimator, e.g. min_samples_leaf=2.",
                 "Seed of subsampling, folds and the estimators (same seed, same model).",
                 "Threads used for training.")
        for parameter, help_text in zip(advanced, helps):
            parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
            parameter.setHelp(self.tr(help_text))
            self.addParameter(parameter)
        model = QgsProcessingParameterFileDestination(
            self.OUTPUT_MODEL, self.tr("Model file"), self.tr("ONNX model (*.onnx)"))
        model.setHelp(self.tr("The trained model, a single .onnx file."))
        self.addParameter(model)
        report = QgsProcessingParameterFileDestination(
            self.OUTPUT_REPORT, self.tr("Validation report"), self.tr("HTML files (*.html)"),
            optional=True)
        report.setHelp(self.tr("HTML report; a JSON report with the same name is written beside."))
        self.addParameter(report)
        for key, label in (("OVERALL_ACCURACY", "Overall accuracy"), ("KAPPA", "Kappa"),
                           ("MACRO_F1", "Macro F1"), ("SAMPLES", "Training samples")):
            self.addOutput(QgsProcessingOutputNumber(key, self.tr(label)))
        self.addOutput(QgsProcessingOutputString("VALIDATION", self.tr("Validation method")))

    def _parameters(self, parameters, context):
        from ..core.classification.train import ALGORITHMS, parse_parameters

        key = ALGORITHMS[self.parameterAsEnum(parameters, self.ALGORITHM, context)]
        depth = self.parameterAsInt(parameters, self.MAX_DEPTH, context) or None
        trees = self.parameterAsInt(parameters, self.TREES, context)
        chosen = {
            "random_forest": {"n_estimators": trees, "max_depth": depth},
            "svm": {"C": self.parameterAsDouble(parameters, self.SVM_C, context)},
            "knn": {"n_neighbors": self.parameterAsInt(parameters, self.NEIGHBORS, context)},
            "decision_tree": {"max_depth": depth},
            "mlp": {"hidden_layer_sizes": self._hidden_layers(parameters, context)},
            "hist_gradient_boosting": {"max_iter": trees, "max_depth": depth},
        }[key]
        chosen.update(parse_parameters(self.parameterAsString(parameters, self.PARAMETERS,
                                                               context)))
        return key, chosen

    def _hidden_layers(self, parameters, context):
        from ..core.errors import InputError

        text = self.parameterAsString(parameters, self.HIDDEN_LAYERS, context) or "100"
        try:
            sizes = tuple(int(p) for p in text.replace(";", ",").split(",") if p.strip())
        except ValueError as exc:
            raise InputError(f"Hidden layer sizes '{text}' must be integers separated by commas, "
                             "e.g. 100,50.") from exc
        if not sizes or min(sizes) < 1:
            raise InputError(f"Hidden layer sizes '{text}' must be positive integers, e.g. 100.")
        return sizes

    def checkParameterValues(self, parameters, context):  # noqa: N802 (QGIS API name)
        """Checks the hyper-parameters before running."""
        ok, message = super().checkParameterValues(parameters, context)
        if not ok:
            return ok, message
        from ..core.errors import LandFusionError

        try:
            from ..core.classification.train import build_classifier

            key, chosen = self._parameters(parameters, context)
            build_classifier(key, chosen)
        except LandFusionError as exc:
            return False, str(exc)
        except ImportError as exc:
            return False, self.tr(f"A package LandFusion needs is missing: {exc}")
        return True, ""

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API name)
        """Runs the engine and returns the model and report paths."""
        from ..core.classification.train import train_classifier

        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        vector_path, layer_name = self.parameterAsCompatibleSourceLayerPathAndLayerName(
            parameters, self.TRAINING, context, ["gpkg", "shp", "geojson", "sqlite"],
            "gpkg", feedback)
        key, chosen = self._parameters(parameters, context)
        model = self.parameterAsFileOutput(parameters, self.OUTPUT_MODEL, context)
        report = self.parameterAsFileOutput(parameters, self.OUTPUT_REPORT, context) or None
        result = self.run_engine(
            train_classifier,
            raster_path=layer.source() if layer else None,
            vector_path=vector_path,
            layer_name=layer_name or None,
            class_field=self.parameterAsString(parameters, self.CLASS_FIELD, context),
            name_field=self.parameterAsString(parameters, self.NAME_FIELD, context) or None,
            color_field=self.parameterAsString(parameters, self.COLOR_FIELD, context) or None,
            model_path=model,
            report_path=report,
            algorithm=key,
            parameters=chosen,
            folds=self.parameterAsInt(parameters, self.FOLDS, context),
            max_per_class=self.parameterAsInt(parameters, self.MAX_SAMPLES, context),
            seed=self.parameterAsInt(parameters, self.SEED, context),
            threads=self.parameterAsInt(parameters, self.THREADS, context),
            **self.callbacks(feedback),
        )
        scores = result["scores"]
        outputs = {self.OUTPUT_MODEL: model, self.OUTPUT_REPORT: report,
                   "SAMPLES": result["samples"], "VALIDATION": scores.get("method")}
        for name in ("overall_accuracy", "kappa", "macro_f1"):
            outputs[name.upper()] = scores.get(name)
        return outputs
