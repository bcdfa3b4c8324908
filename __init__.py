"""LandFusion QGIS plugin: Sentinel-1/Sentinel-2 fusion for land-cover mapping."""


def classFactory(iface):
    """Loads the LandFusion plugin class; QGIS calls this when it loads the plugin."""
    from .plugin import LandFusionPlugin

    return LandFusionPlugin(iface)
