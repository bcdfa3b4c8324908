"""Processing algorithm ``landfusion:trainclassifier``."""

from qgis.core import (
    QgsProcessing,
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterField,
)

from ..core.choices import CLASSIFIERS
from .base import LandFusionAlgorithm
from .groups import CLASSIFICATION


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

    GROUP = CLASSIFICATION

    def name(self):
        """Returns the algorithm id."""
        return "trainclassifier"

    def displayName(self):
        """Returns the algorithm name shown in the toolbox."""
        return self.tr("Train classifier")

    def shortDescription(self):
        """Returns a one-sentence description."""
        return self.tr("Trains a pixel classifier from a raster and labelled polygons or points "
                       "and saves it as an ONNX model with a validation report.")

    def tags(self):
        """Returns search tags."""
        return self.tr("classification,classifier,train,training,supervised,random forest,svm,knn,"
                       "decision tree,mlp,gradient boosting,onnx,accuracy,validation,land cover,"
                       "sentinel-1,sentinel-2").split(",")

    def initAlgorithm(self, config=None):
        """Declares the parameters."""
        self.addParameterRasterLayer(
            self.INPUT, "Feature raster",
            help="Raster whose bands are the features, e.g. a Sentinel-1/2 stack.")
        self.addParameterFeatureSource(
            self.TRAINING, "Training polygons or points",
            [QgsProcessing.TypeVectorPolygon, QgsProcessing.TypeVectorPoint],
            help="Labelled polygons or points in any CRS.")
        for key, label, optional, help_text in (
                (self.CLASS_FIELD, "Class field", False, "Integer class ids or text class names."),
                (self.NAME_FIELD, "Class name field", True, "Optional field with the class names."),
                (self.COLOR_FIELD, "Class colour field", True,
                 "Optional field with class colours (#rrggbb or r,g,b); else a palette.")):
            self._add(QgsProcessingParameterField(
                key, self.tr(label), parentLayerParameterName=self.TRAINING, optional=optional),
                help_text)
        self.addParameterEnum(
            self.ALGORITHM, "Algorithm", CLASSIFIERS,
            help="Random Forest (the default: 30 full-depth trees) is robust and fast; set Trees "
                 "to 100 for the classic 100-tree forest.")
        self.addParameterInt(
            self.FOLDS, "Validation folds (0: no validation)", 5, 0, 20,
            help="Number of folds of the grouped-by-polygon and pixel k-fold.")
        self.addParameterInt(self.MAX_SAMPLES, "Maximum samples per class (0: all)", 20000, 0,
                             help="Stratified random subsampling cap, per class.")
        self.addParameterInt(
            self.TREES, "Trees (Random Forest) / iterations (gradient boosting) (0: default)", 0,
            0, advanced=True,
            help="Number of trees of Random Forest, boosting iterations of gradient boosting; 0 "
                 "uses the algorithm's default: 30 trees for Random Forest (within a few tenths "
                 "of a point of 100 trees on held-out real chips, about 3x faster to apply), "
                 "100 iterations for LightGBM, 200 for histogram gradient boosting.")
        self.addParameterInt(
            self.MAX_DEPTH, "Maximum tree depth (0: unlimited)", 0, 0, advanced=True,
            help="Depth limit of tree-based algorithms; smaller trees give smaller, faster "
                 "models.")
        self.addParameterFloat(self.SVM_C, "SVM regularisation C", 10.0, 1e-6, advanced=True,
                               help="Inverse regularisation strength of the SVM.")
        self.addParameterInt(self.NEIGHBORS, "Neighbours (K-nearest neighbours)", 5, 1,
                             advanced=True, help="Number of neighbours of K-nearest neighbours.")
        self.addParameterString(
            self.HIDDEN_LAYERS, "Hidden layer sizes (MLP)", "100", advanced=True,
            help="Comma-separated neurons per hidden layer of the MLP, e.g. 100,50.")
        self.addParameterString(
            self.PARAMETERS, "Other parameters (key=value; ...)", optional=True, advanced=True,
            help="Any scikit-learn parameter of the chosen estimator, e.g. min_samples_leaf=2.")
        self.addParameterInt(
            self.SEED, "Random seed", 0, 0, advanced=True,
            help="Seed of subsampling, folds and the estimators (same seed, same model).")
        self.addParameterThreads(help="Threads used for training.")
        self.addParameterFileOutput(self.OUTPUT_MODEL, "Model file", "ONNX model (*.onnx)",
                                    help="The trained model, a single .onnx file.")
        self.addParameterFileOutput(
            self.OUTPUT_REPORT, "Validation report", "HTML files (*.html)", optional=True,
            created=True, sidecars=(".json",),
            help="HTML report; a JSON report with the same name is written beside.")
        for key, label in (("OVERALL_ACCURACY", "Overall accuracy"), ("KAPPA", "Kappa"),
                           ("MACRO_F1", "Macro F1"), ("SAMPLES", "Training samples")):
            self.addOutput(QgsProcessingOutputNumber(key, self.tr(label)))
        self.addOutput(QgsProcessingOutputString("VALIDATION", self.tr("Validation method")))

    def _parameters(self, parameters, context):
        from ..core.classification.train import parse_parameters

        key = self.parameterAsChoice(parameters, self.ALGORITHM, context)
        depth = self.parameterAsInt(parameters, self.MAX_DEPTH, context) or None
        trees = self.parameterAsInt(parameters, self.TREES, context) or None
        chosen = {
            "random_forest": {"n_estimators": trees, "max_depth": depth},
            "svm": {"C": self.parameterAsDouble(parameters, self.SVM_C, context)},
            "knn": {"n_neighbors": self.parameterAsInt(parameters, self.NEIGHBORS, context)},
            "decision_tree": {"max_depth": depth},
            "mlp": {"hidden_layer_sizes": self._hidden_layers(parameters, context)},
            "hist_gradient_boosting": {"max_iter": trees, "max_depth": depth},
            "lightgbm": {"n_estimators": trees, "max_depth": depth or -1},
        }[key]
        chosen = {k: v for k, v in chosen.items()  # 0 trees: the algorithm's default
                  if v is not None or k not in ("n_estimators", "max_iter")}
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

    def check(self, parameters, context):
        """Checks the hyper-parameters before running."""
        from ..core.classification.train import build_classifier

        build_classifier(*self._parameters(parameters, context))

    def process(self, parameters, context, feedback):
        """Runs the engine and returns the model and report paths."""
        from ..core.classification.train import train_classifier

        vector_path, layer_name = self.parameterAsCompatibleSourceLayerPathAndLayerName(
            parameters, self.TRAINING, context, ["gpkg", "shp", "geojson", "sqlite"],
            "gpkg", feedback)
        key, chosen = self._parameters(parameters, context)
        model = self.parameterAsFileOutput(parameters, self.OUTPUT_MODEL, context)
        report = self.parameterAsFileOutput(parameters, self.OUTPUT_REPORT, context) or None
        result = train_classifier(
            raster_path=self.parameterAsSourcePath(parameters, self.INPUT, context),
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
