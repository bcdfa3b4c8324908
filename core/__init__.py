"""LandFusion engine: QGIS-free raster processing for Sentinel-1/Sentinel-2 land-cover mapping.

Nothing in this package imports qgis; the Processing algorithms in ``algorithms/`` are thin
adapters around the functions defined here.
"""
