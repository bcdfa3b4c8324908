"""Dialogs and docks of the LandFusion plugin (QGIS desktop only)."""
