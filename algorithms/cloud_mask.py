"""Processing algorithm ``landfusion:cloudmask``."""

from ..core.choices import PRODUCT_LEVELS
from .base import LandFusionAlgorithm
from .groups import PREPROCESSING


class CloudMaskAlgorithm(LandFusionAlgorithm):
    """Masks clouds and cloud shadows in Sentinel-2 from the SCL layer or with a CNN."""

    INPUT = "INPUT"
    SCL = "SCL"
    INPUT_BANDS = "INPUT_BANDS"
    PRODUCT_LEVEL = "PRODUCT_LEVEL"
    OFFSET = "OFFSET"
    MODEL_RESOLUTION = "MODEL_RESOLUTION"
    CIRRUS_AS_CLOUD = "CIRRUS_AS_CLOUD"
    BATCH_SIZE = "BATCH_SIZE"
    OUTPUT = "OUTPUT"

    PARAMETER_ALIASES = {"DN_OFFSET": OFFSET}
    GROUP = PREPROCESSING

    def name(self):
        """Returns the algorithm id."""
        return "cloudmask"

    def displayName(self):
        """Returns the algorithm name shown in the toolbox."""
        return self.tr("Cloud and shadow mask (S2)")

    def shortDescription(self):
        """Returns a one-sentence description."""
        return self.tr("Masks clouds and cloud shadows in a Sentinel-2 scene, from its scene "
                       "classification layer or with a convolutional network.")

    def tags(self):
        """Returns search tags."""
        return self.tr("cloud,shadow,mask,scl,scene classification,sentinel-2,s2,cnn,u-net,onnx,"
                       "ukis-csmask,preprocessing").split(",")

    def initAlgorithm(self, config=None):
        """Declares the parameters."""
        self.addParameterRasterLayer(
            self.INPUT, "Sentinel-2 raster (for the CNN)", optional=True,
            help="Bands B02, B03, B04, B08 (better also B11, B12), found by name.")
        self.addParameterRasterLayer(
            self.SCL, "SCL layer (scene classification; used instead of the CNN)", optional=True,
            help="The L2A product's SCL band (SCL_20m).")
        self.addParameterString(
            self.INPUT_BANDS, "Input band names in order (empty: from band descriptions)",
            optional=True,
            help="Sentinel-2 names of the input's bands, e.g. B02,B03,B04,B08,B11,B12.")
        self.addParameterEnum(self.PRODUCT_LEVEL, "Product level (CNN)", PRODUCT_LEVELS,
                              help="L2A or L1C: picks the network trained on that level.")
        self.addParameterFloat(
            self.OFFSET, "DN offset (empty: detect; -1000 from baseline 04.00)", optional=True,
            help="Added to the DNs before dividing by 10000.")
        self.addParameterBool(self.MODEL_RESOLUTION, "Mask at the model's 30 m resolution (CNN)",
                              True, advanced=True,
                              help="Averages finer input to 30 m for masking; the mask is "
                                   "written back on the input grid.")
        self.addParameterBool(self.CIRRUS_AS_CLOUD, "Count thin cirrus as cloud (SCL)", True,
                              advanced=True, help="SCL class 10 counts as cloud.")
        self.addParameterInt(self.BATCH_SIZE, "Batch size (CNN)", 2, 1, 64, advanced=True,
                             help="Tiles per network call.")
        self.addParameterThreads()
        self.addParameterRasterOutput(self.OUTPUT, "Cloud mask", style="classes",
                                      help="0 clear, 1 cloud, 2 cloud shadow, 255 nodata.")

    def check(self, parameters, context):
        """Checks that an SCL layer or a usable Sentinel-2 raster is given."""
        from ..core.errors import InputError

        if self.parameterAsSourcePath(parameters, self.SCL, context):
            return
        source = self.parameterAsSourcePath(parameters, self.INPUT, context)
        if not source:
            raise InputError(self.tr("Give an SCL layer, or a Sentinel-2 raster for the CNN "
                                     "mask."))
        from ..core.sensors.bands import input_band_names
        from ..core.io import raster as raster_io
        from ..core.stack.cloud_mask import choose_csmask_model

        with raster_io.open_raster(source, "Sentinel-2 raster") as dataset:
            names = input_band_names(
                dataset, self.parameterAsString(parameters, self.INPUT_BANDS, context) or None)
        choose_csmask_model(names, self.parameterAsChoice(parameters, self.PRODUCT_LEVEL, context))

    def process(self, parameters, context, feedback):
        """Runs the SCL reclassification or the CNN and returns the mask path."""
        from ..core.stack.cloud_mask import cloud_mask_from_scl, cloud_mask_with_cnn

        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        scl = self.parameterAsSourcePath(parameters, self.SCL, context)
        if scl:
            result = cloud_mask_from_scl(
                scl, output,
                cirrus_as_cloud=self.parameterAsBool(parameters, self.CIRRUS_AS_CLOUD, context),
                **self.callbacks(feedback))
        else:
            result = cloud_mask_with_cnn(
                self.parameterAsSourcePath(parameters, self.INPUT, context), output,
                band_names=self.parameterAsString(parameters, self.INPUT_BANDS, context) or None,
                product_level=self.parameterAsChoice(parameters, self.PRODUCT_LEVEL, context),
                dn_offset=self.parameterAsOptionalDouble(parameters, self.OFFSET, context),
                model_resolution=self.parameterAsBool(parameters, self.MODEL_RESOLUTION, context),
                batch_size=self.parameterAsInt(parameters, self.BATCH_SIZE, context),
                threads=self.parameterAsInt(parameters, self.THREADS, context),
                **self.callbacks(feedback))
        for name, fraction in result["class_fractions"].items():
            feedback.pushInfo(self.tr("{}: {:.1f} %").format(name, 100 * fraction))
        return {self.OUTPUT: output}
