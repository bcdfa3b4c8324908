"""Parameters shared by the algorithms that apply a model: band map and preview extent."""

from qgis.core import QgsProcessingParameterExtent

BAND_MAP = "BAND_MAP"
EXTENT = "EXTENT"


class ModelInputParameters:
    """Mixin for :class:`~.base.LandFusionAlgorithm` subclasses that run a model on a raster."""

    BAND_MAP = BAND_MAP
    EXTENT = EXTENT

    def addParameterBandMapAndExtent(self):
        """Declares the optional BAND_MAP and EXTENT parameters."""
        self.addParameterString(
            BAND_MAP, "Band map (optional): model_band=raster_band,...", optional=True,
            help="For bands that neither names nor roles match, e.g. "
                 "VV=S1_20210721_VV_dB,VH=S1_20210721_VH_dB, or raster band numbers: VV=1,VH=2.")
        self._add(QgsProcessingParameterExtent(EXTENT, self.tr("Classify only this extent"),
                                               optional=True),
                  help="Optional: classify only the input pixels covering this extent (e.g. the "
                       "map canvas) to try the model on a small area first. The output lies on "
                       "the input's grid, clipped.")

    def parameterAsBandMap(self, parameters, context):
        """The BAND_MAP text, or None."""
        return self.parameterAsString(parameters, BAND_MAP, context) or None

    def parameterAsInputExtent(self, parameters, context, input_name="INPUT"):
        """The EXTENT parameter in the input layer's CRS as (xmin, ymin, xmax, ymax), or None."""
        layer = self.parameterAsRasterLayer(parameters, input_name, context)
        if layer is None or not parameters.get(EXTENT):
            return None
        rect = self.parameterAsExtent(parameters, EXTENT, context, layer.crs())
        if rect.isNull() or rect.isEmpty():
            return None
        return (rect.xMinimum(), rect.yMinimum(), rect.xMaximum(), rect.yMaximum())
