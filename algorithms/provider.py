"""The LandFusion Processing provider (id ``landfusion``)."""

import os

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from .classify_raster import ClassifyRasterAlgorithm
from .spectral_indices import SpectralIndicesAlgorithm
from .train_classifier import TrainClassifierAlgorithm

ICON = os.path.join(os.path.dirname(os.path.dirname(__file__)), "resources", "icons", "landfusion.svg")


def algorithm_classes():
    """Returns the algorithm classes the provider offers, in toolbox order."""
    return [SpectralIndicesAlgorithm, TrainClassifierAlgorithm, ClassifyRasterAlgorithm]


class LandFusionProvider(QgsProcessingProvider):
    """Offers the LandFusion algorithms to QGIS Processing."""

    def id(self):
        """Returns the provider id used in algorithm ids (``landfusion:...``)."""
        return "landfusion"

    def name(self):
        """Returns the provider name shown in the toolbox."""
        return "LandFusion"

    def longName(self):  # noqa: N802 (QGIS API name)
        """Returns the provider's long name."""
        return "LandFusion - Sentinel-1/Sentinel-2 land-cover mapping"

    def icon(self):
        """Returns the provider icon."""
        return QIcon(ICON)

    def svgIconPath(self):  # noqa: N802 (QGIS API name)
        """Returns the provider icon path."""
        return ICON

    def loadAlgorithms(self):  # noqa: N802 (QGIS API name)
        """Adds one instance of each algorithm."""
        for cls in algorithm_classes():
            self.addAlgorithm(cls())
