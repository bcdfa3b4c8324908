"""Parameters shared by the time-series algorithms (temporalcomposite, temporalfeatures): dated
rasters, their cloud masks and dates, the reference grid and the JSON sidecar."""

from qgis.core import QgsProcessingOutputFile

from ..core.choices import CLEAR_MASK_TYPES


class TimeSeriesParameters:
    """Mixin for :class:`~.base.LandFusionAlgorithm` subclasses that read dated rasters."""

    INPUT = "INPUT"
    MASKS = "MASKS"
    MASK_TYPE = "MASK_TYPE"
    DATES = "DATES"
    REFERENCE = "REFERENCE"
    OUTPUT = "OUTPUT"
    SIDECAR = "SIDECAR"

    def addParameterDatedInputs(self, inputs, masks, mask_type, dates):
        """Declares INPUT, MASKS, MASK_TYPE and DATES; each argument is (label, help), and
        ``mask_type`` (label, default, help)."""
        self.addParameterMultipleRasters(self.INPUT, inputs[0], help=inputs[1])
        self.addParameterMultipleRasters(self.MASKS, masks[0], optional=True, help=masks[1])
        self.addParameterEnum(self.MASK_TYPE, mask_type[0], CLEAR_MASK_TYPES,
                              default=mask_type[1], help=mask_type[2])
        self.addParameterString(self.DATES, dates[0], optional=True, help=dates[1])

    def add_sidecar_output(self):
        """Declares the SIDECAR output (the JSON file written beside the raster)."""
        self.addOutput(QgsProcessingOutputFile(self.SIDECAR, self.tr("JSON sidecar")))

    def series_arguments(self, parameters, context):
        """The engine arguments both algorithms share: inputs, masks, mask type, dates and
        reference grid."""
        return {
            "inputs": [layer.source() for layer in
                       self.parameterAsLayerList(parameters, self.INPUT, context)],
            "masks": [layer.source() for layer in
                      self.parameterAsLayerList(parameters, self.MASKS, context)],
            "mask_type": self.parameterAsChoice(parameters, self.MASK_TYPE, context),
            "dates": self.parameterAsString(parameters, self.DATES, context) or None,
            "reference": self.parameterAsSourcePath(parameters, self.REFERENCE, context),
        }

    def engine_resources(self, parameters, context):
        """The THREADS and MEMORY parameters as engine arguments."""
        return {"threads": self.parameterAsInt(parameters, self.THREADS, context),
                "memory_mb": self.parameterAsInt(parameters, self.MEMORY, context)}
