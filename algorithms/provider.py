"""The LandFusion Processing provider (id ``landfusion``)."""

import os

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from .accuracy_report import AccuracyReportAlgorithm
from .change_detection import ChangeDetectionAlgorithm
from .classify_raster import ClassifyRasterAlgorithm
from .cloud_mask import CloudMaskAlgorithm
from .cnn_classify import CnnClassifyAlgorithm
from .coregister_stack import CoregisterStackAlgorithm
from .land_cover_change import LandCoverChangeAlgorithm
from .model_info import ModelInfoAlgorithm
from .spectral_indices import SpectralIndicesAlgorithm
from .stratified_sample import StratifiedSampleAlgorithm
from .train_change_model import TrainChangeModelAlgorithm
from .train_classifier import TrainClassifierAlgorithm
from .train_cnn import TrainCnnAlgorithm

ICON = os.path.join(os.path.dirname(os.path.dirname(__file__)), "resources", "icons", "landfusion.svg")


def algorithm_classes():
    """Returns the algorithm classes the provider offers, in toolbox order."""
    return [CloudMaskAlgorithm, SpectralIndicesAlgorithm, CoregisterStackAlgorithm,
            TrainClassifierAlgorithm, ClassifyRasterAlgorithm, TrainCnnAlgorithm,
            CnnClassifyAlgorithm, ModelInfoAlgorithm,
            StratifiedSampleAlgorithm, AccuracyReportAlgorithm,
            TrainChangeModelAlgorithm, ChangeDetectionAlgorithm, LandCoverChangeAlgorithm]


class LandFusionProvider(QgsProcessingProvider):
    """Offers the LandFusion algorithms to QGIS Processing."""

    def id(self):
        """Returns the provider id used in algorithm ids (``landfusion:...``)."""
        return "landfusion"

    def name(self):
        """Returns the provider name shown in the toolbox."""
        return "LandFusion"

    def longName(self):
        """Returns the provider's long name."""
        return "LandFusion - Sentinel-1/Sentinel-2 land-cover mapping"

    def icon(self):
        """Returns the provider icon."""
        return QIcon(ICON)

    def svgIconPath(self):
        """Returns the provider icon path."""
        return ICON

    def warningMessage(self):
        """Returns install instructions, shown in the toolbox, when a package is missing."""
        from ..core.dependencies import missing_message

        return missing_message()

    def loadAlgorithms(self):
        """Adds one instance of each algorithm."""
        for cls in algorithm_classes():
            self.addAlgorithm(cls())
