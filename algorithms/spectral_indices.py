"""Processing algorithm ``landfusion:spectralindices``."""

from qgis.core import (
    QgsProcessing,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from ..core.indices.formulas import DEFAULT_INDICES, INDICES
from .base import LandFusionAlgorithm


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

    COMPRESSIONS = ["NONE", "ZSTD", "DEFLATE", "LZW"]

    GROUP = "Features"
    GROUP_ID = "features"

    def name(self):
        """Returns the algorithm id."""
        return "spectralindices"

    def displayName(self):  # noqa: N802 (QGIS API name)
        """Returns the algorithm name shown in the toolbox."""
        return self.tr("Spectral indices (Sentinel-2)")

    def shortDescription(self):  # noqa: N802 (QGIS API name)
        """Returns a one-sentence description."""
        return self.tr("Computes spectral indices such as NDVI, SAVI, BAI and NDWI from a "
                       "Sentinel-2 raster.")

    def tags(self):
        """Returns search tags."""
        return self.tr("sentinel-2,s2,index,indices,ndvi,savi,bai,bais2,ndwi,ndmi,mndwi,ndbi,evi,"
                       "nbr,bsi,ndre,reflectance,vegetation,water,burned").split(",")

    def shortHelpString(self):  # noqa: N802 (QGIS API name)
        """Returns the help text shown beside the dialog."""
        rows = "".join(
            f"<li><b>{i.name}</b> ({i.title}): {i.formula}<br><i>{i.reference}</i></li>"
            for i in INDICES.values()
        )
        return self.tr(
            "Computes spectral indices block by block from a Sentinel-2 multi-band raster and "
            "writes one float32 band per index, named after the index, on the input's grid.<br><br>"
            "<b>Band names</b>: bands are found by their Sentinel-2 names. Leave <i>Input band "
            "names</i> empty when the band descriptions name them (B2, B02 and B8A forms are "
            "accepted), or list them in band order, e.g. <code>B02,B03,B04,B08</code>.<br>"
            "<b>Reflectance</b> = (DN + offset) / scale. Sentinel-2 products from processing "
            "baseline 04.00 (acquired from 2022-01-25) carry an offset of -1000; leave "
            "<i>Offset</i> empty to detect it from the metadata or the product name (_N0400_ "
            "and later), or give it explicitly.<br>"
            "<b>Nodata</b>: input nodata, pixels whose bands are all 0 (outside the swath) and "
            "undefined values (zero denominators) are written as -9999.<br>"
            "<b>Custom expression</b>: any formula over band names with + - * / **, parentheses "
            "and sqrt, abs, log, log10, exp, min, max, e.g. <code>(B8A - B11) / (B8A + B11)</code>."
            f"<br><br><b>Indices</b><ul>{rows}</ul>"
        )

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API name)
        """Declares the parameters."""
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.INPUT, self.tr("Sentinel-2 raster")))
        bands = QgsProcessingParameterString(
            self.INPUT_BANDS, self.tr("Input band names in order (empty: from band descriptions)"),
            optional=True)
        bands.setHelp(self.tr("Sentinel-2 names of the input's bands, comma-separated, e.g. "
                              "B02,B03,B04,B08."))
        self.addParameter(bands)
        names = list(INDICES)
        indices = QgsProcessingParameterEnum(
            self.INDICES, self.tr("Indices"), options=names, allowMultiple=True,
            defaultValue=list(DEFAULT_INDICES), optional=True, usesStaticStrings=True)
        indices.setHelp(self.tr("Indices to compute; NDVI, SAVI, BAI and NDWI by default."))
        self.addParameter(indices)
        scale = QgsProcessingParameterNumber(
            self.SCALE, self.tr("Reflectance scale"), QgsProcessingParameterNumber.Double,
            defaultValue=10000.0, minValue=1e-9)
        scale.setHelp(self.tr("Reflectance = (DN + offset) / scale."))
        self.addParameter(scale)
        offset = QgsProcessingParameterNumber(
            self.OFFSET, self.tr("DN offset (empty: detect; -1000 from baseline 04.00)"),
            QgsProcessingParameterNumber.Double, optional=True)
        offset.setHelp(self.tr("Added to the DNs before scaling. Empty: read from the metadata."))
        self.addParameter(offset)
        savi = QgsProcessingParameterNumber(
            self.SAVI_L, self.tr("SAVI soil brightness factor L"),
            QgsProcessingParameterNumber.Double, defaultValue=0.5, minValue=0.0, maxValue=1.0)
        savi.setFlags(savi.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(savi)
        expression = QgsProcessingParameterString(
            self.EXPRESSION, self.tr("Custom index expression"), optional=True)
        expression.setHelp(self.tr("Formula over band names, e.g. (B08 - B11) / (B08 + B11)."))
        self.addParameter(expression)
        expression_name = QgsProcessingParameterString(
            self.EXPRESSION_NAME, self.tr("Custom index band name"), defaultValue="CUSTOM",
            optional=True)
        expression_name.setFlags(expression_name.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(expression_name)
        compression = QgsProcessingParameterEnum(
            self.COMPRESSION, self.tr("GeoTIFF compression"), options=self.COMPRESSIONS,
            defaultValue="NONE", usesStaticStrings=True)
        compression.setHelp(self.tr("NONE is fastest; ZSTD gives the smallest files."))
        compression.setFlags(compression.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(compression)
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.OUTPUT, self.tr("Indices"), defaultValue=QgsProcessing.TEMPORARY_OUTPUT))

    def _arguments(self, parameters, context):
        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        return {
            "input_path": layer.source() if layer else None,
            "indices": self.parameterAsEnumStrings(parameters, self.INDICES, context),
            "band_names": self.parameterAsString(parameters, self.INPUT_BANDS, context),
            "expression": self.parameterAsString(parameters, self.EXPRESSION, context),
            "expression_name": self.parameterAsString(parameters, self.EXPRESSION_NAME, context)
            or "CUSTOM",
        }

    def checkParameterValues(self, parameters, context):  # noqa: N802 (QGIS API name)
        """Checks band names, indices and expression before running."""
        ok, message = super().checkParameterValues(parameters, context)
        if not ok:
            return ok, message
        from ..core.errors import LandFusionError
        from ..core.indices.compute import check_spectral_indices

        try:
            check_spectral_indices(**self._arguments(parameters, context))
        except LandFusionError as exc:
            return False, str(exc)
        except ImportError as exc:
            return False, self.tr(f"A package LandFusion needs is missing: {exc}")
        return True, ""

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API name)
        """Runs the engine and returns the output path."""
        from ..core.indices.compute import compute_spectral_indices

        arguments = self._arguments(parameters, context)
        offset = parameters.get(self.OFFSET)
        offset = None if offset in (None, "") else self.parameterAsDouble(parameters, self.OFFSET, context)
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        result = self.run_engine(
            compute_spectral_indices,
            output_path=output,
            scale=self.parameterAsDouble(parameters, self.SCALE, context),
            offset=offset,
            savi_l=self.parameterAsDouble(parameters, self.SAVI_L, context),
            compress=self.parameterAsEnumString(parameters, self.COMPRESSION, context) or "NONE",
            **arguments,
            **self.callbacks(feedback),
        )
        for name, fraction in result["valid_fraction"].items():
            feedback.pushInfo(self.tr(f"{name}: {100 * fraction:.1f} % valid pixels."))
        return {self.OUTPUT: output}
