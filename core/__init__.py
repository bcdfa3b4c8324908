"""LandFusion engine: QGIS-free raster processing for Sentinel-1/Sentinel-2 land-cover mapping.

Nothing in this package imports qgis; the Processing algorithms in ``algorithms/`` are thin
adapters around the functions defined here.
"""

import os as _os

# OpenMP threads (LightGBM, scikit-learn) spin while idle by default; on cores shared with QGIS,
# GDAL or other processes that starves the working threads: a 2-thread LightGBM fit took 163 s
# instead of 6 s on a busy 2-core machine. Passive waiting must be chosen before the OpenMP
# runtime loads, hence here; a value the user set is kept.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
