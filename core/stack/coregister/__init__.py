"""Co-registration of Sentinel-1 dates and Sentinel-2 bands onto one grid, as one named stack.

The stack is a float32 GeoTIFF whose band descriptions say what each band is, never when
(``S1_VV_dB`` for one Sentinel-1 date, ``S1_T1_VV_dB``, ``S1_T2_VV_dB`` by rank for several;
``S2_B04``, ``NDVI``), so one model classifies the stacks of other dates. Acquisition dates are
band and raster metadata and are listed in a JSON sidecar (``<output>.json``) with bands,
sources, units and processing choices (docs/coregistration.md, "The naming rule").

How inputs reach the target grid:

- an input already on the grid (same CRS, same pixel size, origin on the grid) is read as is,
  so its values come through bit-identical;
- other inputs are warped with GDAL, block by block: bilinear for continuous values (average
  when the input is finer than the grid), nearest for masks; Sentinel-1 backscatter is warped in
  linear power, never in dB.

The steps, one module each: :mod:`.options` (one dataclass, validated once for the check and the
run), :mod:`.inputs` (band identity, dates), :mod:`.grid` (the target grid), :mod:`.plan`
(everything decided before a pixel is read), :mod:`.pixels` (the block functions) and
:mod:`.run` (the engine functions).
"""

from .grid import Grid, target_grid
from .options import DEFAULT_S2_BANDS, StackOptions
from .plan import OutBand, StackPlan, plan_stack
from .run import SIDECAR_SUFFIX, check_stack, coregister_stack, sidecar_path

__all__ = [
    "DEFAULT_S2_BANDS", "SIDECAR_SUFFIX", "Grid", "OutBand",
    "StackOptions", "StackPlan", "check_stack", "coregister_stack", "plan_stack", "sidecar_path",
    "target_grid",
]
