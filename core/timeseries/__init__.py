"""Time series: dated scenes into per-period composites, and multi-date stacks into temporal
features for classification.

- :mod:`.dates` finds the acquisition date of each input (given, file name, GDAL metadata).
- :mod:`.periods` plans the periods (month, season, year, whole range, custom ranges).
- :mod:`.composite` composites dated rasters onto one grid, block by block.
- :mod:`.features` turns a multi-date stack into per-band temporal statistics.
"""
