"""Processing algorithm ``landfusion:traincnn``."""

from qgis.core import (
    QgsProcessing,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
)

from .base import LandFusionAlgorithm

TASKS = ["segmentation", "patch_classification"]
ARCHITECTURES = ["", "unet", "resnet", "fusion", "temporal"]
VALIDATIONS = ["inputs", "blocks"]


class TrainCnnAlgorithm(LandFusionAlgorithm):
    """Trains a CNN (U-Net, patch ResNet, S1/S2 fusion or multi-date) into an ONNX model."""

    TASK = "TASK"
    INPUT = "INPUT"
    INPUT_BANDS = "INPUT_BANDS"
    BANDS = "BANDS"
    LABELS = "LABELS"
    LABEL_NODATA = "LABEL_NODATA"
    TRAINING = "TRAINING"
    CLASS_FIELD = "CLASS_FIELD"
    CLASS_NAMES = "CLASS_NAMES"
    PATCH_FOLDER = "PATCH_FOLDER"
    ARCHITECTURE = "ARCHITECTURE"
    PATCH_SIZE = "PATCH_SIZE"
    EPOCHS = "EPOCHS"
    BATCH_SIZE = "BATCH_SIZE"
    LEARNING_RATE = "LEARNING_RATE"
    AUGMENT = "AUGMENT"
    SEED = "SEED"
    VALIDATION = "VALIDATION"
    VALIDATION_FRACTION = "VALIDATION_FRACTION"
    VALIDATION_BLOCK = "VALIDATION_BLOCK"
    PATIENCE = "PATIENCE"
    WIDTH = "WIDTH"
    THREADS = "THREADS"
    OUTPUT_MODEL = "OUTPUT_MODEL"
    OUTPUT_REPORT = "OUTPUT_REPORT"

    GROUP = "Classification"
    GROUP_ID = "classification"

    def name(self):
        """Returns the algorithm id."""
        return "traincnn"

    def displayName(self):  # noqa: N802 (QGIS API name)
        """Returns the algorithm name shown in the toolbox."""
        return self.tr("Train a CNN (segmentation or patch classification)")

    def shortDescription(self):  # noqa: N802 (QGIS API name)
        """Returns a one-sentence description."""
        return self.tr("Trains a convolutional network on labelled rasters or patches and saves "
                       "it as an ONNX model that Classify raster with a CNN runs.")

    def tags(self):
        """Returns search tags."""
        return self.tr("cnn,deep learning,training,pytorch,onnx,u-net,unet,resnet,segmentation,"
                       "patch,eurosat,fusion,sentinel-1,sentinel-2,time series").split(",")

    def shortHelpString(self):  # noqa: N802 (QGIS API name)
        """Returns the help text shown beside the dialog."""
        return self.tr(
            "Trains a CNN with PyTorch (CPU is enough; a GPU is used when present) and writes a "
            "self-describing ONNX model for <i>Classify raster with a CNN</i>, which needs no "
            "PyTorch. Without PyTorch this algorithm says how to install it.<br><br>"
            "<b>Segmentation</b>: input rasters with one label raster each (any grid: labels are "
            "resampled onto the input grid with nearest neighbour; <i>Label nodata</i> marks "
            "unlabelled pixels), or training polygons with a class field rasterised on the input "
            "grid. Inputs are cut into tiles of <i>Patch size</i>.<br>"
            "<b>Patch classification</b>: a folder with one sub-folder of patch rasters per class "
            "(the EuroSAT layout), or input rasters with labelled points, around which patches "
            "are cut.<br>"
            "<b>Architectures</b>: U-Net; ResNet-style patch CNN; Sentinel-1/Sentinel-2 late "
            "fusion (one encoder for the radar bands VV/VH, one for the optical bands, chosen by "
            "name); multi-date (bands named with their date, e.g. VV_2020-01-05: one encoder "
            "shared by all dates and attention over the dates).<br>"
            "<b>Bands</b> are chosen by name (band descriptions, or <i>Input band names</i>) and "
            "recorded in the model with the normalisation computed on the training part.<br>"
            "<b>Validation</b> holds out whole inputs (or patches), or spatial blocks — never "
            "pixels of a training tile; it drives early stopping and the report's figures. Class "
            "weights balance rare classes. The same seed gives the same model on the CPU.<br>"
            "<b>Report</b> (HTML): learning curves, per-class validation figures, confusion "
            "matrix (rows = predicted, columns = reference), training time and all settings.")

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API name)
        """Declares the parameters."""
        def advanced(parameter):
            parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
            return parameter

        task = QgsProcessingParameterEnum(
            self.TASK, self.tr("Task"),
            options=[self.tr("Semantic segmentation (per-pixel labels)"),
                     self.tr("Patch classification (one label per patch)")], defaultValue=0)
        self.addParameter(task)
        inputs = QgsProcessingParameterMultipleLayers(
            self.INPUT, self.tr("Input rasters"), QgsProcessing.TypeRaster, optional=True)
        inputs.setHelp(self.tr("One or more rasters or stacks (not needed with a patch folder)."))
        self.addParameter(inputs)
        names = QgsProcessingParameterString(
            self.INPUT_BANDS, self.tr("Input band names in order (empty: band descriptions)"),
            optional=True)
        names.setHelp(self.tr("Names of all bands of each input, comma-separated (e.g. VV,VH), "
                              "when the band descriptions do not name them."))
        self.addParameter(names)
        bands = QgsProcessingParameterString(
            self.BANDS, self.tr("Bands to train on (empty: all)"), optional=True)
        bands.setHelp(self.tr("Band names, comma-separated; the model records them."))
        self.addParameter(bands)
        labels = QgsProcessingParameterMultipleLayers(
            self.LABELS, self.tr("Label rasters (one per input, same order)"),
            QgsProcessing.TypeRaster, optional=True)
        self.addParameter(labels)
        self.addParameter(QgsProcessingParameterNumber(
            self.LABEL_NODATA, self.tr("Label nodata (empty: the label raster's nodata)"),
            QgsProcessingParameterNumber.Integer, optional=True))
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.TRAINING, self.tr("Training polygons or points"),
            [QgsProcessing.TypeVectorPolygon, QgsProcessing.TypeVectorPoint], optional=True))
        self.addParameter(QgsProcessingParameterField(
            self.CLASS_FIELD, self.tr("Class field"), parentLayerParameterName=self.TRAINING,
            optional=True))
        class_names = QgsProcessingParameterString(
            self.CLASS_NAMES, self.tr("Class names and colours (value:name:#rrggbb, ...)"),
            optional=True)
        class_names.setHelp(self.tr("For label rasters without category names, e.g. "
                                    "0:land:#d9c9a3,1:water:#1f78b4."))
        self.addParameter(class_names)
        self.addParameter(QgsProcessingParameterFile(
            self.PATCH_FOLDER, self.tr("Patch folder (one sub-folder per class)"),
            behavior=QgsProcessingParameterFile.Folder, optional=True))
        self.addParameter(QgsProcessingParameterEnum(
            self.ARCHITECTURE, self.tr("Architecture"),
            options=[self.tr("Automatic (U-Net for segmentation, ResNet for patches)"),
                     self.tr("U-Net"), self.tr("ResNet-style patch CNN"),
                     self.tr("Sentinel-1/Sentinel-2 late fusion"),
                     self.tr("Multi-date (temporal attention)")], defaultValue=0))
        for name, label, default, low, high in (
                (self.PATCH_SIZE, "Patch size (pixels)", 64, 8, 1024),
                (self.EPOCHS, "Epochs", 30, 1, 10000),
                (self.BATCH_SIZE, "Batch size", 16, 1, 4096)):
            self.addParameter(QgsProcessingParameterNumber(
                name, self.tr(label), QgsProcessingParameterNumber.Integer, defaultValue=default,
                minValue=low, maxValue=high))
        self.addParameter(QgsProcessingParameterNumber(
            self.LEARNING_RATE, self.tr("Learning rate"), QgsProcessingParameterNumber.Double,
            defaultValue=0.001, minValue=1e-7, maxValue=1.0))
        self.addParameter(QgsProcessingParameterBoolean(
            self.AUGMENT, self.tr("Augment (flips and 90° rotations)"), defaultValue=True))
        self.addParameter(QgsProcessingParameterNumber(
            self.SEED, self.tr("Random seed"), QgsProcessingParameterNumber.Integer,
            defaultValue=42, minValue=0))
        self.addParameter(QgsProcessingParameterEnum(
            self.VALIDATION, self.tr("Validation"),
            options=[self.tr("Hold out whole inputs (or patches)"),
                     self.tr("Hold out spatial blocks")], defaultValue=0))
        self.addParameter(QgsProcessingParameterNumber(
            self.VALIDATION_FRACTION, self.tr("Validation fraction"),
            QgsProcessingParameterNumber.Double, defaultValue=0.2, minValue=0.01, maxValue=0.9))
        self.addParameter(advanced(QgsProcessingParameterNumber(
            self.VALIDATION_BLOCK, self.tr("Validation block size in pixels (0: 2 patches)"),
            QgsProcessingParameterNumber.Integer, defaultValue=0, minValue=0)))
        self.addParameter(advanced(QgsProcessingParameterNumber(
            self.PATIENCE, self.tr("Early stopping patience in epochs (0: off)"),
            QgsProcessingParameterNumber.Integer, defaultValue=8, minValue=0)))
        self.addParameter(advanced(QgsProcessingParameterNumber(
            self.WIDTH, self.tr("Network width (channels of the first layer)"),
            QgsProcessingParameterNumber.Integer, defaultValue=16, minValue=4, maxValue=256)))
        self.addParameter(advanced(QgsProcessingParameterNumber(
            self.THREADS, self.tr("CPU threads (0: PyTorch default)"),
            QgsProcessingParameterNumber.Integer, defaultValue=0, minValue=0, maxValue=256)))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT_MODEL, self.tr("Model (ONNX)"), fileFilter="ONNX model (*.onnx)"))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT_REPORT, self.tr("Training report (HTML)"),
            fileFilter="HTML files (*.html)", optional=True, createByDefault=True))

    def _options(self, parameters, context):
        from ..core.cnn.training import TrainingOptions

        def sources(name):
            return [layer.source() for layer in
                    self.parameterAsLayerList(parameters, name, context) or []]

        training = None
        if parameters.get(self.TRAINING):
            training_layer = self.parameterAsVectorLayer(parameters, self.TRAINING, context)
            training = training_layer.source() if training_layer else \
                self.parameterAsString(parameters, self.TRAINING, context)
        nodata = parameters.get(self.LABEL_NODATA)
        return TrainingOptions(
            output_model=self.parameterAsFileOutput(parameters, self.OUTPUT_MODEL, context),
            output_report=self.parameterAsFileOutput(parameters, self.OUTPUT_REPORT, context)
            or None,
            task=TASKS[self.parameterAsEnum(parameters, self.TASK, context)],
            architecture=ARCHITECTURES[self.parameterAsEnum(parameters, self.ARCHITECTURE,
                                                            context)],
            inputs=sources(self.INPUT), labels=sources(self.LABELS),
            label_nodata=None if nodata in (None, "") else
            self.parameterAsInt(parameters, self.LABEL_NODATA, context),
            training=training,
            class_field=self.parameterAsString(parameters, self.CLASS_FIELD, context) or None,
            class_names=self.parameterAsString(parameters, self.CLASS_NAMES, context) or None,
            patch_folder=self.parameterAsFile(parameters, self.PATCH_FOLDER, context) or None,
            bands=self.parameterAsString(parameters, self.BANDS, context) or None,
            input_band_names=self.parameterAsString(parameters, self.INPUT_BANDS, context) or None,
            patch_size=self.parameterAsInt(parameters, self.PATCH_SIZE, context),
            epochs=self.parameterAsInt(parameters, self.EPOCHS, context),
            batch_size=self.parameterAsInt(parameters, self.BATCH_SIZE, context),
            learning_rate=self.parameterAsDouble(parameters, self.LEARNING_RATE, context),
            augment=self.parameterAsBool(parameters, self.AUGMENT, context),
            seed=self.parameterAsInt(parameters, self.SEED, context),
            validation=VALIDATIONS[self.parameterAsEnum(parameters, self.VALIDATION, context)],
            validation_fraction=self.parameterAsDouble(parameters, self.VALIDATION_FRACTION,
                                                       context),
            validation_block=self.parameterAsInt(parameters, self.VALIDATION_BLOCK, context),
            patience=self.parameterAsInt(parameters, self.PATIENCE, context),
            width=self.parameterAsInt(parameters, self.WIDTH, context),
            threads=self.parameterAsInt(parameters, self.THREADS, context),
        )

    def checkParameterValues(self, parameters, context):  # noqa: N802 (QGIS API name)
        """Checks inputs, bands, labels and outputs (headers only) before training."""
        ok, message = super().checkParameterValues(parameters, context)
        if not ok:
            return ok, message
        from ..core.cnn.training import check_training_inputs, import_torch
        from ..core.errors import LandFusionError

        try:
            options = self._options(parameters, context)
            options.bands = _split(options.bands)
            options.input_band_names = _split(options.input_band_names)
            check_training_inputs(options)
            import_torch()
        except LandFusionError as exc:
            return False, str(exc)
        return True, ""

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API name)
        """Trains the network and returns the model and report paths."""
        from ..core.cnn.training import train_cnn

        options = self._options(parameters, context)
        summary = self.run_engine(train_cnn, options, **self.callbacks(feedback))
        feedback.pushInfo(self.tr(f"Validation: {summary['headline']}."))
        return {self.OUTPUT_MODEL: options.output_model,
                self.OUTPUT_REPORT: options.output_report}


def _split(text):
    if not text:
        return None
    return [t.strip() for t in text.split(",") if t.strip()]
