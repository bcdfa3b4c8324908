"""Processing algorithm ``landfusion:coregisterstack``."""

from qgis.core import (
    QgsProcessingOutputFile,
    QgsProcessingParameterCrs,
    QgsProcessingParameterExtent,
)

from ..core.choices import (
    MASK_TYPES,
    PRESETS,
    S1_UNITS,
    S2_VALUES,
    SPECKLE_FILTERS,
    TEMPORAL_STATISTICS,
)
from ..core.indices.formulas import DEFAULT_INDICES, INDICES
from .base import LandFusionAlgorithm
from .groups import FEATURES


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

    GROUP = FEATURES

    def name(self):
        """Returns the algorithm id."""
        return "coregisterstack"

    def displayName(self):
        """Returns the algorithm name shown in the toolbox."""
        return self.tr("Co-register S1/S2 stack")

    def shortDescription(self):
        """Returns a one-sentence description."""
        return self.tr("Puts Sentinel-1 dates and Sentinel-2 bands and indices on one pixel grid "
                       "as one multi-band raster with named bands.")

    def tags(self):
        """Returns search tags."""
        return self.tr("sentinel-1,sentinel-2,s1,s2,sar,radar,optical,fusion,stack,coregistration,"
                       "co-registration,warp,resample,reproject,vv,vh,ratio,rvi,lee,speckle,scl,"
                       "cloud,mask,ndvi,savi,bai,ndwi,rouen").split(",")

    def initAlgorithm(self, config=None):
        """Declares the parameters."""
        self.addParameterMultipleRasters(
            self.S2, "Sentinel-2 raster, or one file per band", optional=True,
            help="One multi-band Sentinel-2 raster, or single-band files named after their band.")
        self.addParameterString(
            self.S2_BANDS, "Sentinel-2 band names in order (empty: from descriptions or file "
                           "names)", optional=True,
            help="Comma-separated, e.g. B02,B03,B04,B08: one per band of the raster, or one per "
                 "file.")
        self.addParameterRasterLayer(
            self.S2_MASK, "Sentinel-2 scene classification (SCL) or cloud mask", optional=True,
            help="Cloudy pixels become nodata in the Sentinel-2 bands and indices.")
        self.addParameterEnum(
            self.S2_MASK_TYPE, "Mask type", MASK_TYPES,
            help="SCL: classes 3, 8, 9, 10 are masked. Cloud mask: every non-zero value is "
                 "masked.")
        self.addParameterBool(self.MASK_SNOW, "Also mask snow and ice (SCL 11)", advanced=True,
                              help="Masks SCL class 11 as well.")
        self.addParameterBool(self.MASK_SATURATED,
                              "Also mask saturated or defective pixels (SCL 1)", advanced=True,
                              help="Masks SCL class 1 as well.")
        self.addParameterString(self.S2_OUTPUT_BANDS, "Sentinel-2 bands to write",
                                "B02,B03,B04,B08", optional=True,
                                help="Comma-separated band names; empty writes indices only.")
        self.addParameterEnum(
            self.INDICES, "Spectral indices", list(INDICES), default=list(DEFAULT_INDICES),
            multiple=True, optional=True, static=True,
            help="Indices from the spectral-index definitions; NDVI, SAVI, BAI, NDWI by default.")
        self.addParameterEnum(self.S2_VALUES, "Sentinel-2 band values", S2_VALUES,
                              advanced=True,
                              help="Reflectance, or the digital numbers as stored.")
        self.addParameterFloat(self.S2_SCALE, "Reflectance scale", 10000.0, 1e-9, advanced=True,
                               help="Reflectance = (DN + offset) / scale.")
        self.addParameterFloat(
            self.S2_OFFSET, "DN offset (empty: detect; -1000 from baseline 04.00)",
            optional=True, advanced=True,
            help="Added to the DNs before scaling. Empty: read from the metadata or product "
                 "name.")
        self.addParameterMultipleRasters(
            self.S1, "Sentinel-1 rasters (one per date, or one per date and polarisation)",
            optional=True,
            help="2-band VV/VH rasters, or files named ..._VV.tif / ..._VH.tif; dates from the "
                 "names.")
        self.addParameterEnum(
            self.S1_UNITS, "Sentinel-1 input units", S1_UNITS,
            help="Units of the Sentinel-1 values; a warning is given when they look like the "
                 "other.")
        self.addParameterEnum(self.S1_OUTPUT_UNITS, "Sentinel-1 output units", S1_UNITS,
                              help="Units of the Sentinel-1 bands written.")
        self.addParameterBool(self.S1_RATIO, "Write the VV/VH ratio", True,
                              help="dB difference VV - VH, or linear quotient VV / VH, per date.")
        self.addParameterBool(self.S1_RVI, "Write the radar vegetation index (RVI)",
                              help="RVI = 4 VH / (VV + VH) in linear power, per date.")
        self.addParameterEnum(self.SPECKLE_FILTER, "Speckle filter", SPECKLE_FILTERS,
                              help="Lee filter, applied in linear power on the target grid.")
        self.addParameterInt(self.SPECKLE_WINDOW, "Speckle filter window (pixels, odd)", 5, 3,
                             31, advanced=True, help="Window size of the Lee filter.")
        self.addParameterFloat(
            self.SPECKLE_ENL, "Equivalent number of looks of the input", 4.4, 0.1, advanced=True,
            help="Speckle level the Lee filter assumes; 4.4 for Sentinel-1 IW GRD high "
                 "resolution.")
        self.addParameterEnum(
            self.TEMPORAL_STATS, "Temporal statistics per polarisation", TEMPORAL_STATISTICS,
            default=None, multiple=True, optional=True, static=True,
            help="Across dates, ignoring dates without data; the mean is taken in linear power.")
        self.addParameterEnum(
            self.PRESET, "Preset", PRESETS,
            help="The Rouen preset fixes bands, indices, units and order (20 bands).")
        self.addParameterRasterLayer(
            self.REFERENCE, "Reference grid raster", optional=True,
            help="Its CRS, pixel size and extent become the grid; default: the Sentinel-2 10 m "
                 "grid.")
        self._add(QgsProcessingParameterCrs(self.TARGET_CRS, self.tr("Target CRS"),
                                            optional=True),
                  "CRS of the grid when no reference raster is given, e.g. the UTM zone.", True)
        self.addParameterFloat(
            self.TARGET_RESOLUTION, "Target pixel size (CRS units, 0: from the input)", 0.0, 0.0,
            advanced=True, help="Pixel size of the grid when no reference raster is given.")
        self._add(QgsProcessingParameterExtent(self.TARGET_EXTENT, self.tr("Target extent"),
                                               optional=True),
                  "Extent of the grid when no reference raster is given; snapped to the pixel "
                  "size.", True)
        self.addParameterRasterOutput(
            self.OUTPUT, "Stack",
            help="Float32 GeoTIFF with named bands and a JSON sidecar (output.json).")
        self.addOutput(QgsProcessingOutputFile(self.SIDECAR, self.tr("Band description (JSON)")))

    def _layer_sources(self, parameters, name, context):
        layers = self.parameterAsLayerList(parameters, name, context)
        return [layer.source() for layer in layers]

    def _arguments(self, parameters, context):
        def enum(name):
            return self.parameterAsChoice(parameters, name, context)

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
        return {
            "s2": self._layer_sources(parameters, self.S2, context),
            "s2_band_names": self.parameterAsString(parameters, self.S2_BANDS, context) or None,
            "s2_mask": self.parameterAsSourcePath(parameters, self.S2_MASK, context),
            "mask_type": enum(self.S2_MASK_TYPE),
            "mask_snow": self.parameterAsBool(parameters, self.MASK_SNOW, context),
            "mask_saturated": self.parameterAsBool(parameters, self.MASK_SATURATED, context),
            "s2_bands": [b.strip() for b in bands.split(",") if b.strip()],
            "indices": self.parameterAsChoice(parameters, self.INDICES, context),
            "s2_values": enum(self.S2_VALUES),
            "s2_scale": self.parameterAsDouble(parameters, self.S2_SCALE, context),
            "s2_offset": self.parameterAsOptionalDouble(parameters, self.S2_OFFSET, context),
            "s1": self._layer_sources(parameters, self.S1, context),
            "s1_units": enum(self.S1_UNITS),
            "s1_output_units": enum(self.S1_OUTPUT_UNITS),
            "s1_ratio": self.parameterAsBool(parameters, self.S1_RATIO, context),
            "s1_rvi": self.parameterAsBool(parameters, self.S1_RVI, context),
            "temporal": self.parameterAsChoice(parameters, self.TEMPORAL_STATS, context),
            "preset": enum(self.PRESET) or None,
            "reference": self.parameterAsSourcePath(parameters, self.REFERENCE, context),
            "target_crs": target_crs,
            "target_resolution": self.parameterAsDouble(
                parameters, self.TARGET_RESOLUTION, context) or None,
            "target_extent": extent,
        }

    def estimate_outputs(self, parameters, context):
        """One float32 band per planned output band, on the target grid."""
        from ..core.io.preflight import raster_bytes
        from ..core.stack.coregister import check_stack

        plan = check_stack(**self._arguments(parameters, context))
        return {self.OUTPUT: raster_bytes(plan.grid.width, plan.grid.height, len(plan.outputs),
                                          "float32")}

    def check(self, parameters, context):
        """Checks inputs, band names, dates and overlap before running."""
        from ..core.stack.coregister import check_stack

        check_stack(**self._arguments(parameters, context))

    def process(self, parameters, context, feedback):
        """Runs the engine and returns the stack and its sidecar."""
        from ..core.stack.coregister import coregister_stack

        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        result = coregister_stack(
            output_path=output,
            speckle_filter=self.parameterAsChoice(parameters, self.SPECKLE_FILTER, context),
            speckle_window=self.parameterAsInt(parameters, self.SPECKLE_WINDOW, context),
            enl=self.parameterAsDouble(parameters, self.SPECKLE_ENL, context),
            **self._arguments(parameters, context),
            **self.callbacks(feedback),
        )
        feedback.pushInfo(self.tr("{} bands: {}.").format(len(result["bands"]),
                                                          ", ".join(result["bands"])))
        return {self.OUTPUT: output, self.SIDECAR: result["sidecar"]}
