"""QGIS Processing algorithms of LandFusion: thin adapters around ``core``."""
