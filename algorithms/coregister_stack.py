"""Processing algorithm ``landfusion:coregisterstack``."""

from qgis.core import (
    QgsProcessing,
    QgsProcessingOutputFile,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterCrs,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterExtent,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from ..core.indices.formulas import DEFAULT_INDICES, INDICES
from .base import LandFusionAlgorithm

UNITS = ["dB", "linear"]
MASK_TYPES = ["scl", "binary"]
MASK_TYPE_LABELS = ["Scene classification (SCL)", "Cloud mask (non-zero = cloud)"]
S2_VALUES = ["reflectance", "dn"]
S2_VALUE_LABELS = ["Reflectance ((DN + offset) / scale)", "Digital numbers as stored"]
SPECKLE = ["none", "lee"]
SPECKLE_LABELS = ["None", "Lee"]
TEMPORAL = ["mean", "std", "min", "max"]
PRESETS = ["", "rouen"]
PRESET_LABELS = ["None (use the options below)",
                 "Rouen study: 20 bands from 4 Sentinel-1 dates + 1 Sentinel-2 scene"]


class CoregisterStackAlgorithm(LandFusionAlgorithm):
    """Co-registers Sentinel-1 dates and Sentinel-2 bands and indices into one named stack."""

    S2 = "S2"
    S2_BANDS = "S2_BANDS"
    S2_MASK = "S2_MASK"
    S2_MASK_TYPE = "S2_MASK_TYPE"
    MASK_SNOW = "MASK_SNOW"
    MASK_SATURATED = "MASK_SATURATED"
    S2_OUTPUT_BANDS = "S2_OUTPUT_BANDS"
    INDICES = "INDICES"
    S2_VALUES = "S2_VALUES"
    S2_SCALE = "S2_SCALE"
    S2_OFFSET = "S2_OFFSET"
    S1 = "S1"
    S1_UNITS = "S1_UNITS"
    S1_OUTPUT_UNITS = "S1_OUTPUT_UNITS"
    S1_RATIO = "S1_RATIO"
    S1_RVI = "S1_RVI"
    SPECKLE_FILTER = "SPECKLE_FILTER"
    SPECKLE_WINDOW = "SPECKLE_WINDOW"
    SPECKLE_ENL = "SPECKLE_ENL"
    TEMPORAL_STATS = "TEMPORAL_STATS"
    PRESET = "PRESET"
    REFERENCE = "REFERENCE"
    TARGET_CRS = "TARGET_CRS"
    TARGET_RESOLUTION = "TARGET_RESOLUTION"
    TARGET_EXTENT = "TARGET_EXTENT"
    OUTPUT = "OUTPUT"
    SIDECAR = "SIDECAR"

    GROUP = "Features"
    GROUP_ID = "features"

    def name(self):
        """Returns the algorithm id."""
        return "coregisterstack"

    def displayName(self):  # noqa: N802 (QGIS API name)
        """Returns the algorithm name shown in the toolbox."""
        return self.tr("Co-register and stack Sentinel-1 / Sentinel-2")

    def shortDescription(self):  # noqa: N802 (QGIS API name)
        """Returns a one-sentence description."""
        return self.tr("Puts Sentinel-1 dates and Sentinel-2 bands and indices on one pixel grid "
                       "as one multi-band raster with named bands.")

    def tags(self):
        """Returns search tags."""
        return self.tr("sentinel-1,sentinel-2,s1,s2,sar,radar,optical,fusion,stack,coregistration,"
                       "co-registration,warp,resample,reproject,vv,vh,ratio,rvi,lee,speckle,scl,"
                       "cloud,mask,ndvi,savi,bai,ndwi,rouen").split(",")

    def shortHelpString(self):  # noqa: N802 (QGIS API name)
        """Returns the help text shown beside the dialog."""
        return self.tr(
            "Brings Sentinel-1 radar dates and a Sentinel-2 scene onto one pixel grid and writes "
            "them as one float32 GeoTIFF whose bands are named (<code>S1_20190917_VV_dB</code>, "
            "<code>S1_20190917_VVVH_dB</code>, <code>S2_B04</code>, <code>NDVI</code>), with a "
            "JSON sidecar (<i>output</i>.json) listing bands, sources, dates, units and the "
            "processing choices. Nodata is -9999.<br><br>"
            "<b>Sentinel-2</b>: one multi-band raster, or one file per band named like "
            "<code>..._B04.tif</code>, <code>B8A.tif</code>. When neither the band descriptions "
            "nor the file names name the bands, list them in order in <i>Sentinel-2 band "
            "names</i>.<br>"
            "<b>Sentinel-1</b>: one item per date, either a 2-band VV/VH raster or one file per "
            "polarisation (<code>..._VV.tif</code>, <code>..._VH.tif</code>); the date is read "
            "from the file name (YYYYMMDD). A single polarisation gives only its own band.<br>"
            "<b>Grid</b>: by default the grid of the finest Sentinel-2 band (10 m); or a "
            "reference raster; or a CRS, resolution and extent. Inputs already on the grid are "
            "copied as is (bit-identical). Others are warped with GDAL: bilinear (average when "
            "the input is finer than the grid) for values, nearest for masks; backscatter is "
            "always resampled in linear power, not in dB.<br>"
            "<b>Cloud mask</b>: with an SCL layer, cloud shadow (3), cloud medium/high "
            "probability (8, 9) and cirrus (10), optionally snow (11) and saturated (1) pixels "
            "become nodata in the Sentinel-2 bands and indices; Sentinel-1 bands are kept. The "
            "clear-sky fraction is reported in the log.<br>"
            "<b>Sentinel-1 features</b>: VV, VH, the VV/VH ratio (a difference in dB or a "
            "quotient in linear units, as the band name says), optionally RVI = 4 VH / (VV + "
            "VH), a Lee speckle filter (in linear power) and temporal mean / std / min / max "
            "per polarisation (the mean is taken in linear power).<br>"
            "<b>Rouen preset</b>: the 20-band layout VV_1..4, VH_1..4, VVVH_1..4, NDVI, SAVI, "
            "BAI, NDWI, B2, B3, B4, B8 from four Sentinel-1 dates and one Sentinel-2 scene.")

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API name)
        """Declares the parameters."""
        advanced = QgsProcessingParameterDefinition.FlagAdvanced

        def add(parameter, help_text, is_advanced=False):
            parameter.setHelp(self.tr(help_text))
            if is_advanced:
                parameter.setFlags(parameter.flags() | advanced)
            self.addParameter(parameter)

        add(QgsProcessingParameterMultipleLayers(
            self.S2, self.tr("Sentinel-2 raster, or one file per band"),
            QgsProcessing.TypeRaster, optional=True),
            "One multi-band Sentinel-2 raster, or single-band files named after their band.")
        add(QgsProcessingParameterString(
            self.S2_BANDS, self.tr("Sentinel-2 band names in order (empty: from descriptions or "
                                   "file names)"), optional=True),
            "Comma-separated, e.g. B02,B03,B04,B08: one per band of the raster, or one per file.")
        add(QgsProcessingParameterRasterLayer(
            self.S2_MASK, self.tr("Sentinel-2 scene classification (SCL) or cloud mask"),
            optional=True), "Cloudy pixels become nodata in the Sentinel-2 bands and indices.")
        add(QgsProcessingParameterEnum(
            self.S2_MASK_TYPE, self.tr("Mask type"), options=MASK_TYPE_LABELS, defaultValue=0),
            "SCL: classes 3, 8, 9, 10 are masked. Cloud mask: every non-zero value is masked.")
        add(QgsProcessingParameterBoolean(
            self.MASK_SNOW, self.tr("Also mask snow and ice (SCL 11)"), defaultValue=False),
            "Masks SCL class 11 as well.", True)
        add(QgsProcessingParameterBoolean(
            self.MASK_SATURATED, self.tr("Also mask saturated or defective pixels (SCL 1)"),
            defaultValue=False), "Masks SCL class 1 as well.", True)
        add(QgsProcessingParameterString(
            self.S2_OUTPUT_BANDS, self.tr("Sentinel-2 bands to write"),
            defaultValue="B02,B03,B04,B08", optional=True),
            "Comma-separated band names; empty writes indices only.")
        add(QgsProcessingParameterEnum(
            self.INDICES, self.tr("Spectral indices"), options=list(INDICES), allowMultiple=True,
            defaultValue=list(DEFAULT_INDICES), optional=True, usesStaticStrings=True),
            "Indices from the spectral-index definitions; NDVI, SAVI, BAI, NDWI by default.")
        add(QgsProcessingParameterEnum(
            self.S2_VALUES, self.tr("Sentinel-2 band values"), options=S2_VALUE_LABELS,
            defaultValue=0), "Reflectance, or the digital numbers as stored.", True)
        add(QgsProcessingParameterNumber(
            self.S2_SCALE, self.tr("Reflectance scale"), QgsProcessingParameterNumber.Double,
            defaultValue=10000.0, minValue=1e-9), "Reflectance = (DN + offset) / scale.", True)
        add(QgsProcessingParameterNumber(
            self.S2_OFFSET, self.tr("DN offset (empty: detect; -1000 from baseline 04.00)"),
            QgsProcessingParameterNumber.Double, optional=True),
            "Added to the DNs before scaling. Empty: read from the metadata or product name.",
            True)
        add(QgsProcessingParameterMultipleLayers(
            self.S1, self.tr("Sentinel-1 rasters (one per date, or one per date and "
                             "polarisation)"), QgsProcessing.TypeRaster, optional=True),
            "2-band VV/VH rasters, or files named ..._VV.tif / ..._VH.tif; dates from the names.")
        add(QgsProcessingParameterEnum(
            self.S1_UNITS, self.tr("Sentinel-1 input units"), options=UNITS, defaultValue=0),
            "Units of the Sentinel-1 values; a warning is given when they look like the other.")
        add(QgsProcessingParameterEnum(
            self.S1_OUTPUT_UNITS, self.tr("Sentinel-1 output units"), options=UNITS,
            defaultValue=0), "Units of the Sentinel-1 bands written.")
        add(QgsProcessingParameterBoolean(
            self.S1_RATIO, self.tr("Write the VV/VH ratio"), defaultValue=True),
            "dB difference VV - VH, or linear quotient VV / VH, per date.")
        add(QgsProcessingParameterBoolean(
            self.S1_RVI, self.tr("Write the radar vegetation index (RVI)"), defaultValue=False),
            "RVI = 4 VH / (VV + VH) in linear power, per date.")
        add(QgsProcessingParameterEnum(
            self.SPECKLE_FILTER, self.tr("Speckle filter"), options=SPECKLE_LABELS,
            defaultValue=0), "Lee filter, applied in linear power on the target grid.")
        add(QgsProcessingParameterNumber(
            self.SPECKLE_WINDOW, self.tr("Speckle filter window (pixels, odd)"),
            QgsProcessingParameterNumber.Integer, defaultValue=5, minValue=3, maxValue=31),
            "Window size of the Lee filter.", True)
        add(QgsProcessingParameterNumber(
            self.SPECKLE_ENL, self.tr("Equivalent number of looks of the input"),
            QgsProcessingParameterNumber.Double, defaultValue=4.4, minValue=0.1),
            "Speckle level the Lee filter assumes; 4.4 for Sentinel-1 IW GRD high resolution.",
            True)
        add(QgsProcessingParameterEnum(
            self.TEMPORAL_STATS, self.tr("Temporal statistics per polarisation"),
            options=TEMPORAL, allowMultiple=True, optional=True, usesStaticStrings=True),
            "Across dates, ignoring dates without data; the mean is taken in linear power.")
        add(QgsProcessingParameterEnum(
            self.PRESET, self.tr("Preset"), options=PRESET_LABELS, defaultValue=0),
            "The Rouen preset fixes bands, indices, units and order (20 bands).")
        add(QgsProcessingParameterRasterLayer(
            self.REFERENCE, self.tr("Reference grid raster"), optional=True),
            "Its CRS, pixel size and extent become the grid; default: the Sentinel-2 10 m grid.")
        add(QgsProcessingParameterCrs(
            self.TARGET_CRS, self.tr("Target CRS"), optional=True),
            "CRS of the grid when no reference raster is given, e.g. the UTM zone.", True)
        add(QgsProcessingParameterNumber(
            self.TARGET_RESOLUTION, self.tr("Target pixel size (CRS units, 0: from the input)"),
            QgsProcessingParameterNumber.Double, defaultValue=0.0, minValue=0.0),
            "Pixel size of the grid when no reference raster is given.", True)
        add(QgsProcessingParameterExtent(
            self.TARGET_EXTENT, self.tr("Target extent"), optional=True),
            "Extent of the grid when no reference raster is given; snapped to the pixel size.",
            True)
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.OUTPUT, self.tr("Stack"), defaultValue=QgsProcessing.TEMPORARY_OUTPUT))
        self.addOutput(QgsProcessingOutputFile(self.SIDECAR, self.tr("Band description (JSON)")))

    def _layer_sources(self, parameters, name, context):
        layers = self.parameterAsLayerList(parameters, name, context)
        return [layer.source() for layer in layers]

    def _arguments(self, parameters, context):
        def enum(name, values):
            return values[self.parameterAsEnum(parameters, name, context)]

        reference = self.parameterAsRasterLayer(parameters, self.REFERENCE, context)
        mask = self.parameterAsRasterLayer(parameters, self.S2_MASK, context)
        crs = self.parameterAsCrs(parameters, self.TARGET_CRS, context)
        target_crs = (crs.authid() if crs.authid().startswith("EPSG:") else crs.toWkt()) \
            if crs.isValid() else None
        extent = None
        if parameters.get(self.TARGET_EXTENT) not in (None, ""):
            rectangle = self.parameterAsExtent(parameters, self.TARGET_EXTENT, context,
                                               crs if crs.isValid() else None)
            if not rectangle.isNull() and not rectangle.isEmpty():
                extent = (rectangle.xMinimum(), rectangle.yMinimum(), rectangle.xMaximum(),
                          rectangle.yMaximum())
        bands = self.parameterAsString(parameters, self.S2_OUTPUT_BANDS, context)
        offset = parameters.get(self.S2_OFFSET)
        return {
            "s2": self._layer_sources(parameters, self.S2, context),
            "s2_band_names": self.parameterAsString(parameters, self.S2_BANDS, context) or None,
            "s2_mask": mask.source() if mask else None,
            "mask_type": enum(self.S2_MASK_TYPE, MASK_TYPES),
            "mask_snow": self.parameterAsBool(parameters, self.MASK_SNOW, context),
            "mask_saturated": self.parameterAsBool(parameters, self.MASK_SATURATED, context),
            "s2_bands": [b.strip() for b in bands.split(",") if b.strip()],
            "indices": self.parameterAsEnumStrings(parameters, self.INDICES, context),
            "s2_values": enum(self.S2_VALUES, S2_VALUES),
            "s2_scale": self.parameterAsDouble(parameters, self.S2_SCALE, context),
            "s2_offset": None if offset in (None, "") else self.parameterAsDouble(
                parameters, self.S2_OFFSET, context),
            "s1": self._layer_sources(parameters, self.S1, context),
            "s1_units": enum(self.S1_UNITS, UNITS),
            "s1_output_units": enum(self.S1_OUTPUT_UNITS, UNITS),
            "s1_ratio": self.parameterAsBool(parameters, self.S1_RATIO, context),
            "s1_rvi": self.parameterAsBool(parameters, self.S1_RVI, context),
            "temporal": self.parameterAsEnumStrings(parameters, self.TEMPORAL_STATS, context),
            "preset": enum(self.PRESET, PRESETS) or None,
            "reference": reference.source() if reference else None,
            "target_crs": target_crs,
            "target_resolution": self.parameterAsDouble(
                parameters, self.TARGET_RESOLUTION, context) or None,
            "target_extent": extent,
        }

    def checkParameterValues(self, parameters, context):  # noqa: N802 (QGIS API name)
        """Checks inputs, band names, dates and overlap before running."""
        ok, message = super().checkParameterValues(parameters, context)
        if not ok:
            return ok, message
        from ..core.stack.coregister import check_stack
        from ..core.errors import LandFusionError

        try:
            check_stack(**self._arguments(parameters, context))
        except LandFusionError as exc:
            return False, str(exc)
        except ImportError as exc:
            return False, self.tr(f"A package LandFusion needs is missing: {exc}")
        return True, ""

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API name)
        """Runs the engine and returns the stack and its sidecar."""
        from ..core.stack.coregister import coregister_stack

        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        result = self.run_engine(
            coregister_stack,
            output_path=output,
            speckle_filter=SPECKLE[self.parameterAsEnum(parameters, self.SPECKLE_FILTER, context)],
            speckle_window=self.parameterAsInt(parameters, self.SPECKLE_WINDOW, context),
            enl=self.parameterAsDouble(parameters, self.SPECKLE_ENL, context),
            **self._arguments(parameters, context),
            **self.callbacks(feedback),
        )
        feedback.pushInfo(self.tr(f"{len(result['bands'])} bands: {', '.join(result['bands'])}."))
        return {self.OUTPUT: output, self.SIDECAR: result["sidecar"]}
