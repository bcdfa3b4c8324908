"""QGIS styles (.qml) for float stacks: true colour when B04/B03/B02 are there, an NDVI colour
ramp for index bands, grey for the rest; value ranges from a 2-98 % cut of a sample."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Optional, Sequence

import numpy as np

_NDVI_RAMP = ("#a50026", "#f46d43", "#fee08b", "#d9ef8b", "#66bd63", "#006837")
_HEADER = ("<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
           '<qgis version="3.22.0" styleCategories="AllStyleCategories">\n  <pipe>\n')
_FOOTER = ('    <brightnesscontrast brightness="0" contrast="0" gamma="1"/>\n'
           '    <huesaturation saturation="0" grayscaleMode="0" colorizeOn="0"/>\n'
           '    <rasterresampler maxOversampling="2"/>\n  </pipe>\n  <blendMode>0</blendMode>\n'
           "</qgis>\n")
_MINMAX = ("      <minMaxOrigin><limits>CumulativeCut</limits><extent>WholeRaster</extent>"
           "<statAccuracy>Estimated</statAccuracy><cumulativeCutLower>0.02</cumulativeCutLower>"
           "<cumulativeCutUpper>0.98</cumulativeCutUpper><stdDevFactor>2</stdDevFactor>"
           "</minMaxOrigin>\n")


def _range(dataset, band: int) -> tuple:
    """2 and 98 % of a decimated read of one band (nodata left out)."""
    scale = max(1, int(max(dataset.width, dataset.height) / 512))
    shape = (max(1, dataset.height // scale), max(1, dataset.width // scale))
    values = dataset.read(band, out_shape=shape).astype(np.float64)
    if dataset.nodata is not None:
        values = values[values != dataset.nodata]
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0, 1.0
    low, high = np.percentile(values, [2, 98])
    return float(low), float(high if high > low else low + 1.0)


def _ranges(path: str, bands: Sequence[int]) -> list:
    """:func:`_range` of several bands, read at once on as many threads (one handle each)."""
    from ..io.raster import DatasetPerThread

    with DatasetPerThread(path, "Styled raster") as datasets, \
            ThreadPoolExecutor(len(bands), thread_name_prefix="landfusion-style") as pool:
        return list(pool.map(lambda band: _range(datasets.get(), band), bands))


def _find(names: Sequence[str], wanted: str, suffix: bool = False) -> Optional[int]:
    for i, name in enumerate(names):
        if name == wanted or (suffix and name.endswith("_" + wanted)):
            return i + 1
    return None


def _contrast(tag: str, low: float, high: float) -> str:
    return (f"      <{tag}><minValue>{low:.6g}</minValue><maxValue>{high:.6g}</maxValue>"
            f"<algorithm>StretchToMinimumMaximum</algorithm></{tag}>\n")


def write_stack_style(path: str, band_names: Sequence[str], prefer: Sequence[str] = ()) -> str:
    """Writes ``<path stem>.qml`` for a float stack and returns its path.

    Args:
        path: the raster (already written).
        band_names: its band names in order.
        prefer: band names to show first (e.g. the first non-empty period's bands).
    """
    import rasterio

    qml = os.path.splitext(path)[0] + ".qml"
    names = list(band_names)
    order = list(prefer) + names
    with rasterio.open(path) as dataset:
        rgb = [next((n for n in order if n == b or n.endswith("_" + b)), None)
               for b in ("B04", "B03", "B02")]
        ndvi = next((n for n in order if n == "NDVI" or n.endswith("_NDVI")
                     or n.startswith("NDVI_")), None)
        if all(rgb) and len({n.rsplit("_", 1)[0] for n in rgb}) == 1:
            bands = [names.index(n) + 1 for n in rgb]
            body = (f'    <rasterrenderer type="multibandcolor" redBand="{bands[0]}" '
                    f'greenBand="{bands[1]}" blueBand="{bands[2]}" opacity="1" alphaBand="-1" '
                    'nodataColor="">\n      <rasterTransparency/>\n' + _MINMAX)
            for tag, limits in zip(("redContrastEnhancement", "greenContrastEnhancement",
                                    "blueContrastEnhancement"), _ranges(path, bands)):
                body += _contrast(tag, *limits)
            body += "    </rasterrenderer>\n"
        elif ndvi is not None and not ndvi.endswith(("_std", "_trend", "_doymax", "_count")):
            band = names.index(ndvi) + 1
            low, high = -0.2, 0.9
            items = "".join(
                f'          <item value="{low + (high - low) * k / 5:.4g}" color="{c}" '
                f'label="{low + (high - low) * k / 5:.2f}" alpha="255"/>\n'
                for k, c in enumerate(_NDVI_RAMP))
            body = (f'    <rasterrenderer type="singlebandpseudocolor" band="{band}" opacity="1" '
                    f'alphaBand="-1" classificationMin="{low}" classificationMax="{high}" '
                    'nodataColor="">\n      <rasterTransparency/>\n' + _MINMAX +
                    '      <rastershader>\n        <colorrampshader colorRampType="INTERPOLATED" '
                    f'classificationMode="1" clip="0" minimumValue="{low}" maximumValue="{high}">\n'
                    + items + "        </colorrampshader>\n      </rastershader>\n"
                    "    </rasterrenderer>\n")
        else:
            band = 1
            body = ('    <rasterrenderer type="singlebandgray" grayBand="1" '
                    'gradient="BlackToWhite" opacity="1" alphaBand="-1" nodataColor="">\n'
                    '      <rasterTransparency/>\n'
                    + _MINMAX + _contrast("contrastEnhancement", *_range(dataset, band))
                    + "    </rasterrenderer>\n")
    with open(qml, "w", encoding="utf-8") as handle:
        handle.write(_HEADER + body + _FOOTER)
    return qml
