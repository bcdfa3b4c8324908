"""Processing algorithm ``landfusion:traincnn``."""

from qgis.core import QgsProcessing, QgsProcessingParameterField, QgsProcessingParameterFile

from .base import LandFusionAlgorithm
from .groups import CLASSIFICATION


def _choices():
    from ..core.cnn import architectures

    return architectures


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
    OUTPUT_MODEL = "OUTPUT_MODEL"
    OUTPUT_REPORT = "OUTPUT_REPORT"

    GROUP = CLASSIFICATION

    def name(self):
        """Returns the algorithm id."""
        return "traincnn"

    def displayName(self):
        """Returns the algorithm name shown in the toolbox."""
        return self.tr("Train a CNN")

    def shortDescription(self):
        """Returns a one-sentence description."""
        return self.tr("Trains a convolutional network on labelled rasters or patches and saves "
                       "it as an ONNX model that Classify raster with a CNN runs.")

    def tags(self):
        """Returns search tags."""
        return self.tr("cnn,deep learning,training,pytorch,onnx,u-net,unet,resnet,segmentation,"
                       "patch,eurosat,fusion,sentinel-1,sentinel-2,time series").split(",")

    def initAlgorithm(self, config=None):
        """Declares the parameters."""
        choices = _choices()
        self.addParameterEnum(self.TASK, "Task", choices.TASKS, default=0,
                              help="Per-pixel labels (segmentation) or one label per patch.")
        self.addParameterMultipleRasters(
            self.INPUT, "Input rasters", optional=True,
            help="One or more rasters or stacks (not needed with a patch folder).")
        self.addParameterString(
            self.INPUT_BANDS, "Input band names in order (empty: band descriptions)",
            optional=True, help="Names of all bands of each input, comma-separated (e.g. VV,VH), "
                                "when the band descriptions do not name them.")
        self.addParameterString(self.BANDS, "Bands to train on (empty: all)", optional=True,
                                help="Band names, comma-separated; the model records them.")
        self.addParameterMultipleRasters(
            self.LABELS, "Label rasters (one per input, same order)", optional=True,
            help="Class values per pixel, on any grid (resampled with nearest neighbour).")
        self.addParameterInt(self.LABEL_NODATA, "Label nodata (empty: the label raster's nodata)",
                             optional=True, help="Label value of unlabelled pixels, e.g. -1.")
        self.addParameterFeatureSource(
            self.TRAINING, "Training polygons or points",
            [QgsProcessing.TypeVectorPolygon, QgsProcessing.TypeVectorPoint], optional=True,
            help="Polygons rasterised on the input grid (segmentation), or points around which "
                 "patches are cut (patch classification).")
        self._add(QgsProcessingParameterField(
            self.CLASS_FIELD, self.tr("Class field"), parentLayerParameterName=self.TRAINING,
            optional=True), "Integer class ids or class names.")
        self.addParameterString(
            self.CLASS_NAMES, "Class names and colours (value:name:#rrggbb, ...)", optional=True,
            help="For label rasters without category names, e.g. 0:land:#d9c9a3,1:water:#1f78b4.")
        self._add(QgsProcessingParameterFile(
            self.PATCH_FOLDER, self.tr("Patch folder (one sub-folder per class)"),
            behavior=QgsProcessingParameterFile.Folder, optional=True),
            "EuroSAT layout: one sub-folder per class, named after it, holding its patches.")
        self.addParameterEnum(self.ARCHITECTURE, "Architecture", choices.ARCHITECTURE_CHOICES,
                              default=0, help="Network design (see the help).")
        self.addParameterInt(self.PATCH_SIZE, "Patch size (pixels)", 64, 8, 1024,
                             help="Tile edge for segmentation, patch edge around points.")
        self.addParameterInt(self.EPOCHS, "Epochs", 30, 1, 10000,
                             help="Passes over the training samples (at most, with early stopping).")
        self.addParameterInt(self.BATCH_SIZE, "Batch size", 16, 1, 4096,
                             help="Samples per optimisation step; lower it when memory runs out.")
        self.addParameterFloat(self.LEARNING_RATE, "Learning rate", 0.001, 1e-7, 1.0,
                               help="AdamW learning rate, lowered along a cosine over the epochs.")
        self.addParameterBool(self.AUGMENT, "Augment (flips and 90° rotations)", True,
                              help="Each sample gets one of the 8 flips/rotations per batch.")
        self.addParameterInt(self.SEED, "Random seed", 42, 0,
                             help="The same seed gives the same model on the CPU.")
        self.addParameterEnum(self.VALIDATION, "Validation", choices.VALIDATIONS, default=0,
                              help="Held-out part: whole inputs/patches, or spatial blocks.")
        self.addParameterFloat(self.VALIDATION_FRACTION, "Validation fraction", 0.2, 0.01, 0.9,
                               help="Share of the samples held out (whole groups).")
        self.addParameterInt(self.VALIDATION_BLOCK,
                             "Validation block size in pixels (0: two patches)", 0, 0,
                             advanced=True, help="Edge of the spatial blocks held out.")
        self.addParameterInt(self.PATIENCE, "Early stopping patience in epochs (0: off)", 8, 0,
                             advanced=True,
                             help="Stops after this many epochs without a lower validation loss "
                                  "and keeps the best epoch; 0 trains all epochs, keeps the last.")
        self.addParameterInt(self.WIDTH, "Network width (channels of the first layer)", 16, 4,
                             256, advanced=True, help="Wider networks learn more, train slower.")
        self.addParameterThreads(help="CPU threads for PyTorch; 0 uses its default.")
        self.addParameterFileOutput(self.OUTPUT_MODEL, "Model (ONNX)", "ONNX model (*.onnx)",
                                    help="The trained network with LandFusion metadata.")
        self.addParameterFileOutput(self.OUTPUT_REPORT, "Training report (HTML)",
                                    "HTML files (*.html)", optional=True, created=True,
                                    help="Learning curves, validation figures and settings.")

    def _options(self, parameters, context):
        from ..core.cnn.training_options import TrainingOptions

        def sources(name):
            return [layer.source() for layer in
                    self.parameterAsLayerList(parameters, name, context) or []]

        def names(name):
            text = self.parameterAsString(parameters, name, context) or ""
            return [t.strip() for t in text.split(",") if t.strip()] or None

        training = None
        if parameters.get(self.TRAINING):
            layer = self.parameterAsVectorLayer(parameters, self.TRAINING, context)
            training = layer.source() if layer else \
                self.parameterAsString(parameters, self.TRAINING, context)
        return TrainingOptions(
            output_model=self.parameterAsFileOutput(parameters, self.OUTPUT_MODEL, context),
            output_report=self.parameterAsFileOutput(parameters, self.OUTPUT_REPORT, context)
            or None,
            task=self.parameterAsChoice(parameters, self.TASK, context),
            architecture=self.parameterAsChoice(parameters, self.ARCHITECTURE, context),
            inputs=sources(self.INPUT), labels=sources(self.LABELS),
            label_nodata=self.parameterAsOptionalInt(parameters, self.LABEL_NODATA, context),
            training=training,
            class_field=self.parameterAsString(parameters, self.CLASS_FIELD, context) or None,
            class_names=self.parameterAsString(parameters, self.CLASS_NAMES, context) or None,
            patch_folder=self.parameterAsFile(parameters, self.PATCH_FOLDER, context) or None,
            bands=names(self.BANDS), input_band_names=names(self.INPUT_BANDS),
            patch_size=self.parameterAsInt(parameters, self.PATCH_SIZE, context),
            epochs=self.parameterAsInt(parameters, self.EPOCHS, context),
            batch_size=self.parameterAsInt(parameters, self.BATCH_SIZE, context),
            learning_rate=self.parameterAsDouble(parameters, self.LEARNING_RATE, context),
            augment=self.parameterAsBool(parameters, self.AUGMENT, context),
            seed=self.parameterAsInt(parameters, self.SEED, context),
            validation=self.parameterAsChoice(parameters, self.VALIDATION, context),
            validation_fraction=self.parameterAsDouble(parameters, self.VALIDATION_FRACTION,
                                                       context),
            validation_block=self.parameterAsInt(parameters, self.VALIDATION_BLOCK, context),
            patience=self.parameterAsInt(parameters, self.PATIENCE, context),
            width=self.parameterAsInt(parameters, self.WIDTH, context),
            threads=self.parameterAsInt(parameters, self.THREADS, context),
        )

    def check(self, parameters, context):
        """Checks inputs, bands, labels and outputs (headers only) and that PyTorch is there."""
        from ..core.cnn.training import check_training_inputs
        from ..core.cnn.training_options import import_torch

        check_training_inputs(self._options(parameters, context))
        import_torch()

    def process(self, parameters, context, feedback):
        """Trains the network and returns the model and report paths."""
        from ..core.cnn.training import train_cnn

        options = self._options(parameters, context)
        summary = train_cnn(options, **self.callbacks(feedback))
        feedback.pushInfo(self.tr("Validation: {}.").format(summary["headline"]))
        return {self.OUTPUT_MODEL: options.output_model,
                self.OUTPUT_REPORT: options.output_report}
