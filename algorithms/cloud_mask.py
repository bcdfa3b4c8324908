"""Processing algorithm ``landfusion:cloudmask``."""

from qgis.core import (
    QgsProcessing,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from .base import LandFusionAlgorithm


class CloudMaskAlgorithm(LandFusionAlgorithm):
    """Masks clouds and cloud shadows in Sentinel-2 from the SCL layer or with a CNN."""

    INPUT = "INPUT"
    SCL = "SCL"
    INPUT_BANDS = "INPUT_BANDS"
    PRODUCT_LEVEL = "PRODUCT_LEVEL"
    DN_OFFSET = "DN_OFFSET"
    MODEL_RESOLUTION = "MODEL_RESOLUTION"
    CIRRUS_AS_CLOUD = "CIRRUS_AS_CLOUD"
    BATCH_SIZE = "BATCH_SIZE"
    THREADS = "THREADS"
    OUTPUT = "OUTPUT"

    LEVELS = ["L2A", "L1C"]
    GROUP = "Preprocessing"
    GROUP_ID = "preprocessing"

    def name(self):
        """Returns the algorithm id."""
        return "cloudmask"

    def displayName(self):  # noqa: N802 (QGIS API name)
        """Returns the algorithm name shown in the toolbox."""
        return self.tr("Cloud and cloud-shadow mask (Sentinel-2)")

    def shortDescription(self):  # noqa: N802 (QGIS API name)
        """Returns a one-sentence description."""
        return self.tr("Masks clouds and cloud shadows in a Sentinel-2 scene, from its scene "
                       "classification layer or with a convolutional network.")

    def tags(self):
        """Returns search tags."""
        return self.tr("cloud,shadow,mask,scl,scene classification,sentinel-2,s2,cnn,u-net,onnx,"
                       "ukis-csmask,preprocessing").split(",")

    def shortHelpString(self):  # noqa: N802 (QGIS API name)
        """Returns the help text shown beside the dialog."""
        return self.tr(
            "Writes a class raster: <b>0 clear, 1 cloud, 2 cloud shadow</b>, 255 nodata, with "
            "colours and names. Any value other than 0 is a pixel to mask, so the output can be "
            "used directly as a cloud mask.<br><br>"
            "<b>From the SCL layer</b> (when <i>SCL layer</i> is given): the L2A scene "
            "classification is reclassified (3 shadow; 8, 9 and optionally 10 cirrus cloud; 0, 1 "
            "nodata; the rest clear), on the SCL's grid.<br>"
            "<b>With a CNN</b> (otherwise): the U-Net models of the optional package "
            "<i>ukis-csmask</i> (install with <code>python3 -m pip install --user "
            "ukis-csmask</code>) run through LandFusion's tiled ONNX engine. The input needs "
            "bands B02, B03, B04, B08 (better also B11, B12), found by name; digital numbers are "
            "turned into reflectance as (DN + offset) / 10000, the offset detected from the "
            "metadata or product name when left empty (-1000 from processing baseline 04.00). "
            "The models were trained at about 30 m: by default finer input is averaged to 30 m "
            "for masking and the mask is written back on the input grid."
        )

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API name)
        """Declares the parameters."""
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.INPUT, self.tr("Sentinel-2 raster (for the CNN)"), optional=True))
        scl = QgsProcessingParameterRasterLayer(
            self.SCL, self.tr("SCL layer (scene classification; used instead of the CNN)"),
            optional=True)
        scl.setHelp(self.tr("The L2A product's SCL band (SCL_20m)."))
        self.addParameter(scl)
        bands = QgsProcessingParameterString(
            self.INPUT_BANDS, self.tr("Input band names in order (empty: from band descriptions)"),
            optional=True)
        bands.setHelp(self.tr("Sentinel-2 names of the input's bands, e.g. B02,B03,B04,B08,B11,B12."))
        self.addParameter(bands)
        self.addParameter(QgsProcessingParameterEnum(
            self.PRODUCT_LEVEL, self.tr("Product level (CNN)"), options=self.LEVELS,
            defaultValue=0))
        offset = QgsProcessingParameterNumber(
            self.DN_OFFSET, self.tr("DN offset (empty: detect; -1000 from baseline 04.00)"),
            QgsProcessingParameterNumber.Double, optional=True)
        offset.setHelp(self.tr("Added to the DNs before dividing by 10000."))
        self.addParameter(offset)
        resolution = QgsProcessingParameterBoolean(
            self.MODEL_RESOLUTION, self.tr("Mask at the model's 30 m resolution (CNN)"),
            defaultValue=True)
        resolution.setFlags(resolution.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(resolution)
        cirrus = QgsProcessingParameterBoolean(
            self.CIRRUS_AS_CLOUD, self.tr("Count thin cirrus as cloud (SCL)"), defaultValue=True)
        cirrus.setFlags(cirrus.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(cirrus)
        batch = QgsProcessingParameterNumber(
            self.BATCH_SIZE, self.tr("Batch size (CNN)"), QgsProcessingParameterNumber.Integer,
            defaultValue=2, minValue=1, maxValue=64)
        batch.setFlags(batch.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(batch)
        threads = QgsProcessingParameterNumber(
            self.THREADS, self.tr("Threads (0: all cores)"), QgsProcessingParameterNumber.Integer,
            defaultValue=0, minValue=0, maxValue=256)
        threads.setFlags(threads.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(threads)
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.OUTPUT, self.tr("Cloud mask"), defaultValue=QgsProcessing.TEMPORARY_OUTPUT))

    def _layer_path(self, parameters, name, context):
        layer = self.parameterAsRasterLayer(parameters, name, context)
        return layer.source() if layer else None

    def checkParameterValues(self, parameters, context):  # noqa: N802 (QGIS API name)
        """Checks that an SCL layer or a usable Sentinel-2 raster is given."""
        ok, message = super().checkParameterValues(parameters, context)
        if not ok:
            return ok, message
        if self._layer_path(parameters, self.SCL, context):
            return True, ""
        source = self._layer_path(parameters, self.INPUT, context)
        if not source:
            return False, self.tr("Give an SCL layer, or a Sentinel-2 raster for the CNN mask.")
        from ..core.io import raster as raster_io
        from ..core.stack.cloud_mask import choose_csmask_model
        from ..core.cnn.inference import _input_band_names
        from ..core.errors import LandFusionError

        level = self.LEVELS[self.parameterAsEnum(parameters, self.PRODUCT_LEVEL, context)]
        try:
            with raster_io.open_raster(source, "Sentinel-2 raster") as dataset:
                names = _input_band_names(
                    dataset, self.parameterAsString(parameters, self.INPUT_BANDS, context) or None)
            choose_csmask_model(names, level)
        except LandFusionError as exc:
            return False, str(exc)
        return True, ""

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API name)
        """Runs the SCL reclassification or the CNN and returns the mask path."""
        from ..core.stack.cloud_mask import cloud_mask_from_scl, cloud_mask_with_cnn

        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        scl = self._layer_path(parameters, self.SCL, context)
        if scl:
            result = self.run_engine(
                cloud_mask_from_scl, scl, output,
                cirrus_as_cloud=self.parameterAsBool(parameters, self.CIRRUS_AS_CLOUD, context),
                **self.callbacks(feedback))
        else:
            offset = parameters.get(self.DN_OFFSET)
            offset = None if offset in (None, "") else self.parameterAsDouble(
                parameters, self.DN_OFFSET, context)
            result = self.run_engine(
                cloud_mask_with_cnn, self._layer_path(parameters, self.INPUT, context), output,
                band_names=self.parameterAsString(parameters, self.INPUT_BANDS, context) or None,
                product_level=self.LEVELS[self.parameterAsEnum(parameters, self.PRODUCT_LEVEL,
                                                               context)],
                dn_offset=offset,
                model_resolution=self.parameterAsBool(parameters, self.MODEL_RESOLUTION, context),
                batch_size=self.parameterAsInt(parameters, self.BATCH_SIZE, context),
                threads=self.parameterAsInt(parameters, self.THREADS, context),
                **self.callbacks(feedback))
        for name, fraction in result["class_fractions"].items():
            feedback.pushInfo(self.tr(f"{name}: {100 * fraction:.1f} %"))
        return {self.OUTPUT: output}
