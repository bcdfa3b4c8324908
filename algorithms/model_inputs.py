"""Parameters shared by the algorithms that apply a model: band map and preview extent."""

from qgis.core import QgsProcessingParameterExtent

BAND_MAP = "BAND_MAP"
EXTENT = "EXTENT"
#: The Processing widget wrapper that shows a model's card (ui/model_card_widget.py).
MODEL_CARD_WRAPPER = __name__.rsplit(".", 2)[0] + ".ui.model_card_widget.ModelCardWidgetWrapper"


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

    def showModelCard(self, parameter, empty_text=""):  # noqa: N802 (QGIS naming)
        """Shows the chosen model's card below the file selector of ``parameter`` in the
        algorithm dialog (named by path: headless runs never import the widget)."""
        metadata = dict(parameter.metadata())
        metadata["widget_wrapper"] = {"class": MODEL_CARD_WRAPPER, "empty_text": empty_text}
        parameter.setMetadata(metadata)
        return parameter

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
