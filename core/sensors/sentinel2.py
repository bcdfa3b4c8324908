"""Sentinel-2 knowledge in one place: band names, digital-number scaling and the L2A scene
classification (SCL) codes.

Band-name parsing (``B2`` → ``B02``, ``S2_B8A``) lives in :mod:`.bands`, which uses these names.
"""

from __future__ import annotations

import os
import re

#: Sentinel-2 MSI bands in ESA order.
S2_BAND_NAMES = (
    "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12",
)

#: Common names, useful in messages and help texts.
S2_BAND_COMMON_NAMES = {
    "B01": "coastal aerosol", "B02": "blue", "B03": "green", "B04": "red",
    "B05": "red edge 1", "B06": "red edge 2", "B07": "red edge 3", "B08": "NIR",
    "B8A": "narrow NIR", "B09": "water vapour", "B10": "SWIR cirrus", "B11": "SWIR 1",
    "B12": "SWIR 2",
}

#: Reflectance = (DN + offset) / DN_SCALE for Level-1C and Level-2A products.
DN_SCALE = 10000.0
#: Offset of Sentinel-2 products from processing baseline 04.00 (acquired from 2022-01-25).
BASELINE_04_OFFSET = -1000.0

# L2A scene classification (SCL) values.
SCL_NO_DATA = 0
SCL_SATURATED = 1
SCL_DARK_AREA = 2
SCL_CLOUD_SHADOW = 3
SCL_VEGETATION = 4
SCL_NOT_VEGETATED = 5
SCL_WATER = 6
SCL_UNCLASSIFIED = 7
SCL_CLOUD_MEDIUM = 8
SCL_CLOUD_HIGH = 9
SCL_THIN_CIRRUS = 10
SCL_SNOW = 11
#: Highest SCL value; anything above is not a scene classification.
SCL_MAX = SCL_SNOW
#: Classes masked as cloud or cloud shadow by default.
SCL_CLOUD_CLASSES = (SCL_CLOUD_SHADOW, SCL_CLOUD_MEDIUM, SCL_CLOUD_HIGH, SCL_THIN_CIRRUS)
#: Classes that are clear ground whatever the options.
SCL_CLEAR_CLASSES = (SCL_DARK_AREA, SCL_VEGETATION, SCL_NOT_VEGETATED, SCL_WATER,
                     SCL_UNCLASSIFIED, SCL_SNOW)

_BASELINE_IN_NAME = re.compile(r"_N(\d{2})(\d{2})_")
_OFFSET_TAGS = ("BOA_ADD_OFFSET", "RADIO_ADD_OFFSET")


def _offset_of_baseline(baseline: float) -> float:
    return BASELINE_04_OFFSET if baseline >= 4.0 else 0.0


def detect_offset(dataset, path: str) -> tuple:
    """Works out the DN offset of a Sentinel-2 raster from its metadata.

    Looks, in order, for an explicit ``BOA_ADD_OFFSET`` / ``RADIO_ADD_OFFSET`` tag (dataset or
    band level), a ``PROCESSING_BASELINE`` tag, and a product name with ``_Nxxyy_`` in the file
    path. Baselines 04.00 and later use an offset of -1000.

    Returns:
        ``(offset, reason)`` with offset None when nothing in the metadata tells.
    """
    tag_sets = [dataset.tags()] + [dataset.tags(i) for i in dataset.indexes]
    for tags in tag_sets:
        for key, value in tags.items():
            if key.upper().endswith(_OFFSET_TAGS) or key.upper().startswith(_OFFSET_TAGS):
                try:
                    return float(value), f"metadata {key}={value}"
                except ValueError:
                    continue
    for tags in tag_sets:
        for key, value in tags.items():
            if key.upper() == "PROCESSING_BASELINE":
                try:
                    baseline = float(value)
                except ValueError:
                    continue
                return _offset_of_baseline(baseline), f"processing baseline {value} in the metadata"
    names = [os.path.abspath(path)] + list(getattr(dataset, "files", []) or [])
    match = next((m for m in (_BASELINE_IN_NAME.search(n) for n in names) if m), None)
    if match:
        baseline = int(match.group(1)) + int(match.group(2)) / 100.0
        return (_offset_of_baseline(baseline),
                f"processing baseline {baseline:05.2f} in the product name")
    return None, "no processing baseline in the metadata"
