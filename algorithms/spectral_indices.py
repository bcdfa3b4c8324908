"""Processing algorithm ``landfusion:spectralindices``."""

from ..core.choices import COMPRESSIONS
from ..core.indices.formulas import DEFAULT_INDICES, INDICES
from .base import LandFusionAlgorithm
from .groups import FEATURES


class SpectralIndicesAlgorithm(LandFusionAlgorithm):
    """Computes spectral indices from a Sentinel-2 multi-band raster."""

    INPUT = "INPUT"
    INPUT_BANDS = "INPUT_BANDS"
    INDICES = "INDICES"
    SCALE = "SCALE"
    OFFSET = "OFFSET"
    SAVI_L = "SAVI_L"
    EXPRESSION = "EXPRESSION"
    EXPRESSION_NAME = "EXPRESSION_NAME"
    COMPRESSION = "COMPRESSION"
    OUTPUT = "OUTPUT"

    GROUP = FEATURES

    def name(self):
        """Returns the algorithm id."""
        return "spectralindices"

    def displayName(self):
        """Returns the algorithm name shown in the toolbox."""
        return self.tr("Spectral indices (S2)")

    def shortDescription(self):
        """Returns a one-sentence description."""
        return self.tr("Computes spectral indices such as NDVI, SAVI, BAI and NDWI from a "
                       "Sentinel-2 raster.")

    def tags(self):
        """Returns search tags."""
        return self.tr("sentinel-2,s2,index,indices,ndvi,savi,bai,bais2,ndwi,ndmi,mndwi,ndbi,evi,"
                       "nbr,bsi,ndre,reflectance,vegetation,water,burned").split(",")

    def help_values(self):
        """Lists every index with its formula and reference."""
        return {"indices": "".join(
            f"<li><b>{i.name}</b> ({i.title}): {i.formula}<br><i>{i.reference}</i></li>"
            for i in INDICES.values())}

    def initAlgorithm(self, config=None):
        """Declares the parameters."""
        self.addParameterRasterLayer(self.INPUT, "Sentinel-2 raster",
                                     help="Sentinel-2 bands as digital numbers or reflectance.")
        self.addParameterString(
            self.INPUT_BANDS, "Input band names in order (empty: from band descriptions)",
            optional=True,
            help="Sentinel-2 names of the input's bands, comma-separated, e.g. B02,B03,B04,B08.")
        self.addParameterEnum(
            self.INDICES, "Indices", list(INDICES), default=list(DEFAULT_INDICES), multiple=True,
            optional=True, static=True,
            help="Indices to compute; NDVI, SAVI, BAI and NDWI by default.")
        self.addParameterFloat(self.SCALE, "Reflectance scale", 10000.0, 1e-9,
                               help="Reflectance = (DN + offset) / scale.")
        self.addParameterFloat(
            self.OFFSET, "DN offset (empty: detect; -1000 from baseline 04.00)", optional=True,
            help="Added to the DNs before scaling. Empty: read from the metadata.")
        self.addParameterFloat(self.SAVI_L, "SAVI soil brightness factor L", 0.5, 0.0, 1.0,
                               advanced=True, help="Soil adjustment of SAVI (0.5 in most uses).")
        self.addParameterString(
            self.EXPRESSION, "Custom index expression", optional=True,
            help="Formula over band names, e.g. (B08 - B11) / (B08 + B11).")
        self.addParameterString(self.EXPRESSION_NAME, "Custom index band name", "CUSTOM",
                                optional=True, advanced=True,
                                help="Band name of the custom index.")
        self.addParameterEnum(self.COMPRESSION, "GeoTIFF compression", COMPRESSIONS,
                              default="NONE", static=True, advanced=True,
                              help="NONE is fastest; ZSTD gives the smallest files.")
        self.addParameterRasterOutput(self.OUTPUT, "Indices",
                                      help="One float32 band per index, named after it.")

    def _arguments(self, parameters, context):
        return {
            "input_path": self.parameterAsSourcePath(parameters, self.INPUT, context),
            "indices": self.parameterAsChoice(parameters, self.INDICES, context),
            "band_names": self.parameterAsString(parameters, self.INPUT_BANDS, context),
            "expression": self.parameterAsString(parameters, self.EXPRESSION, context),
            "expression_name": self.parameterAsString(parameters, self.EXPRESSION_NAME, context)
            or "CUSTOM",
        }

    def output_layouts(self, parameters, context):
        """One float32 band per index (and the custom expression)."""
        arguments = self._arguments(parameters, context)
        count = len(arguments["indices"] or []) + (1 if arguments["expression"] else 0)
        return {self.OUTPUT: (max(1, count), "float32")}

    def check(self, parameters, context):
        """Checks band names, indices and expression before running."""
        from ..core.indices.compute import check_spectral_indices

        check_spectral_indices(**self._arguments(parameters, context))

    def process(self, parameters, context, feedback):
        """Runs the engine and returns the output path."""
        from ..core.indices.compute import compute_spectral_indices

        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        result = compute_spectral_indices(
            output_path=output,
            scale=self.parameterAsDouble(parameters, self.SCALE, context),
            offset=self.parameterAsOptionalDouble(parameters, self.OFFSET, context),
            savi_l=self.parameterAsDouble(parameters, self.SAVI_L, context),
            compress=self.parameterAsChoice(parameters, self.COMPRESSION, context) or "NONE",
            **self._arguments(parameters, context),
            **self.callbacks(feedback),
        )
        for name, fraction in result["valid_fraction"].items():
            feedback.pushInfo(self.tr("{}: {:.1f} % valid pixels.").format(name, 100 * fraction))
        return {self.OUTPUT: output}
