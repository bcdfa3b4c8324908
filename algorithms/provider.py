"""The LandFusion Processing provider (id ``landfusion``)."""

import glob
import os

from qgis.core import QgsApplication, QgsProcessingModelAlgorithm, QgsProcessingProvider
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
from .temporal_composite import TemporalCompositeAlgorithm
from .temporal_features import TemporalFeaturesAlgorithm
from .train_change_model import TrainChangeModelAlgorithm
from .train_classifier import TrainClassifierAlgorithm
from .train_cnn import TrainCnnAlgorithm

ICON = os.path.join(os.path.dirname(os.path.dirname(__file__)), "resources", "icons", "landfusion.svg")
MODELS = os.path.join(os.path.dirname(os.path.dirname(__file__)), "resources", "models3")


def algorithm_classes():
    """Returns the algorithm classes the provider offers, in toolbox order."""
    return [CloudMaskAlgorithm, SpectralIndicesAlgorithm, CoregisterStackAlgorithm,
            TrainClassifierAlgorithm, ClassifyRasterAlgorithm, TrainCnnAlgorithm,
            CnnClassifyAlgorithm, ModelInfoAlgorithm,
            StratifiedSampleAlgorithm, AccuracyReportAlgorithm, TemporalCompositeAlgorithm,
            TemporalFeaturesAlgorithm,
            TrainChangeModelAlgorithm, ChangeDetectionAlgorithm, LandCoverChangeAlgorithm]


def model_paths():
    """Returns the workflow models (.model3) the provider offers."""
    return sorted(glob.glob(os.path.join(MODELS, "*.model3")))


class WorkflowModel(QgsProcessingModelAlgorithm):
    """A workflow model loaded from resources/models3, shown under a readable name."""

    TITLES = {
        "monitoring": "Monitoring workflow: scenes of one year to a land-cover map",
        "classificationworkflow": "Classification workflow: S1/S2 stack to an assessed map",
    }

    def __init__(self, path):
        super().__init__()
        self.path = path
        if not self.fromFile(path):
            raise ValueError(f"cannot read the workflow model {path}")

    def displayName(self):  # noqa: N802 (QGIS API name)
        """Returns the name shown in the toolbox."""
        return self.TITLES.get(self.name(), self.name())

    def createInstance(self):  # noqa: N802 (QGIS API name)
        """Returns a new instance read from the same file."""
        return WorkflowModel(self.path)


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
        # A model finds its steps through the registry, which knows this provider only once it
        # is added: load the workflows then (refreshing the algorithms), not before.
        registry = QgsApplication.processingRegistry()
        if registry.providerById(self.id()) is self:
            for path in model_paths():
                self.addAlgorithm(WorkflowModel(path))
        else:
            registry.providerAdded.connect(self._provider_added)

    def _provider_added(self, provider_id):
        if provider_id != self.id():
            return
        QgsApplication.processingRegistry().providerAdded.disconnect(self._provider_added)
        self.refreshAlgorithms()
