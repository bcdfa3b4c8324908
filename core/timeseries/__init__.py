"""Time series: dated scenes into per-period composites, and multi-date stacks into temporal
features for classification.

- :mod:`.options` holds one options dataclass per engine, validated once for check and run.
- :mod:`.dates` finds the acquisition date of each input (given, file name, GDAL metadata).
- :mod:`.periods` plans the periods (month, season, year, whole range, custom ranges).
- :mod:`.inputs` opens and checks the dated inputs, masks, grid and outputs of both engines.
- :mod:`.reading` reads bands of many rasters onto one grid, block by block.
- :mod:`.composite_plan` and :mod:`.composite` composite dated rasters onto one grid.
- :mod:`.features_plan` and :mod:`.features` turn a multi-date stack into per-band temporal
  statistics (:mod:`.statistics`).
- :mod:`.outputs` writes rasters and sidecars atomically; :mod:`.style` styles them.
"""
