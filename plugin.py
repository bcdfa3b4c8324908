"""Registers the LandFusion Processing provider with QGIS."""

from qgis.core import QgsApplication

from .algorithms.provider import LandFusionProvider


class LandFusionPlugin:
    """QGIS plugin entry point: adds and removes the Processing provider."""

    def __init__(self, iface):
        """Stores the QGIS interface (None when loaded by qgis_process)."""
        self.iface = iface
        self.provider = None

    def initProcessing(self):
        """Adds the provider; qgis_process calls this without a GUI."""
        if self.provider is None:
            self.provider = LandFusionProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self):
        """Adds the provider when the QGIS desktop loads the plugin."""
        self.initProcessing()

    def unload(self):
        """Removes the provider when the plugin is unloaded."""
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
