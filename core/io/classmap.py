"""Class rasters that explain themselves: colour table, category names, nodata and a QML style.

Every classification output (pixel classifiers, CNNs, cloud masks, change maps) is written
through :func:`class_profile` and finished with :func:`apply_class_styling`, so QGIS shows the
classes by name and colour as soon as the layer is added (it loads the ``.qml`` beside the file).
"""

from __future__ import annotations

import colorsys
import contextlib
import os
import re
from dataclasses import dataclass
from typing import Optional, Sequence
from xml.sax.saxutils import quoteattr

from ..errors import InputError

#: A qualitative palette for classes without colours (colour-blind friendly first entries).
_PALETTE = (
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
    (174, 199, 232), (255, 187, 120), (152, 223, 138), (255, 152, 150), (197, 176, 213),
    (196, 156, 148), (247, 182, 210), (199, 199, 199), (219, 219, 141), (158, 218, 229),
)


@dataclass(frozen=True)
class ClassInfo:
    """One class of a class raster: its pixel value, name and RGB colour."""

    value: int
    name: str
    color: tuple

    def hex(self) -> str:
        """Returns the colour as ``#rrggbb``."""
        return "#%02x%02x%02x" % tuple(self.color)

    def to_dict(self) -> dict:
        """Returns a JSON-friendly dict."""
        return {"value": self.value, "name": self.name, "color": self.hex()}

    @classmethod
    def from_dict(cls, item: dict) -> "ClassInfo":
        """Builds a class from :meth:`to_dict` output."""
        return cls(int(item["value"]), str(item["name"]), parse_color(item["color"]))


def palette_color(index: int) -> tuple:
    """Returns a distinct RGB colour for the ``index``-th class (any number of classes)."""
    if index < len(_PALETTE):
        return _PALETTE[index]
    hue = (index * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.65, 0.9)
    return (int(r * 255), int(g * 255), int(b * 255))


def parse_color(text) -> tuple:
    """Parses ``#rrggbb``, ``#rgb`` or ``r,g,b`` into an RGB tuple.

    Raises:
        InputError: when the text is not a colour.
    """
    if isinstance(text, (tuple, list)) and len(text) >= 3:
        return tuple(int(c) for c in text[:3])
    value = str(text).strip()
    match = re.fullmatch(r"#?([0-9a-fA-F]{6})([0-9a-fA-F]{2})?", value)
    if match:
        h = match.group(1)
        return tuple(int(h[i:i + 2], 16) for i in (0, 2, 4))
    match = re.fullmatch(r"#([0-9a-fA-F]{3})", value)
    if match:
        return tuple(int(c * 2, 16) for c in match.group(1))
    parts = [p for p in re.split(r"[,\s;]+", value) if p]
    if len(parts) in (3, 4) and all(p.isdigit() and int(p) <= 255 for p in parts):
        return tuple(int(p) for p in parts[:3])
    raise InputError(f"'{text}' is not a colour; use #rrggbb or r,g,b.")


def class_dtype(classes: Sequence[ClassInfo], nodata: int) -> str:
    """Returns 'uint8' when all values and nodata fit, else 'uint16'."""
    top = max([c.value for c in classes] + [nodata])
    if min([c.value for c in classes] + [nodata]) < 0 or top > 65535:
        raise InputError("Class values must be integers between 0 and 65535.")
    return "uint8" if top <= 255 else "uint16"


def choose_nodata(classes: Sequence[ClassInfo]) -> int:
    """Returns 0 when no class uses it, else 255 or 65535 (whichever is free)."""
    values = {c.value for c in classes}
    for candidate in (0, 255, 65535):
        if candidate not in values:
            return candidate
    raise InputError("Classes use 0, 255 and 65535; no value is left for nodata.")


def class_profile(reference, classes: Sequence[ClassInfo], nodata: Optional[int] = None) -> dict:
    """Returns a GeoTIFF profile for a class raster on the grid of ``reference`` (DEFLATE, the
    blocks compressed on every core)."""
    from .raster import tiled_profile

    nodata = choose_nodata(classes) if nodata is None else nodata
    return dict(tiled_profile(reference, 1, class_dtype(classes, nodata), nodata),
                compress="DEFLATE", NUM_THREADS="ALL_CPUS")


def apply_class_styling(path: str, classes: Sequence[ClassInfo], nodata: Optional[int] = None,
                        qml: bool = True) -> Optional[str]:
    """Embeds the colour table and category names in a class raster and writes a QML beside it.

    Returns:
        The QML path (or None when ``qml`` is False).
    """
    with _side_files_enabled():
        _style_band(path, classes, nodata)
    if not qml:
        return None
    qml_path = os.path.splitext(path)[0] + ".qml"
    write_paletted_qml(qml_path, classes)
    return qml_path


@contextlib.contextmanager
def _side_files_enabled():
    """Makes sure GDAL writes the .aux.xml where GeoTIFF keeps category names.

    A caller's environment (or the user's GDAL settings) may have switched side files off.
    """
    from osgeo import gdal

    previous = (gdal.GetConfigOption("GDAL_PAM_ENABLED"),
                gdal.GetThreadLocalConfigOption("GDAL_PAM_ENABLED", None))
    gdal.SetConfigOption("GDAL_PAM_ENABLED", "YES")
    gdal.SetThreadLocalConfigOption("GDAL_PAM_ENABLED", "YES")
    try:
        yield
    finally:
        gdal.SetConfigOption("GDAL_PAM_ENABLED", previous[0])
        gdal.SetThreadLocalConfigOption("GDAL_PAM_ENABLED", previous[1])


def _style_band(path: str, classes: Sequence[ClassInfo], nodata: Optional[int]) -> None:
    from osgeo import gdal

    dataset = gdal.Open(path, gdal.GA_Update)
    if dataset is None:
        raise InputError(f"Cannot open '{path}' to add the class colours.")
    band = dataset.GetRasterBand(1)
    top = max(c.value for c in classes) if classes else 0
    table = gdal.ColorTable()
    names = [""] * (top + 1)
    for value in range(top + 1):
        table.SetColorEntry(value, (0, 0, 0, 0))
    for c in classes:
        table.SetColorEntry(c.value, (*c.color, 255))
        names[c.value] = c.name
    band.SetColorTable(table)
    band.SetCategoryNames(names)
    band.SetColorInterpretation(gdal.GCI_PaletteIndex)
    if nodata is not None:
        band.SetNoDataValue(nodata)
    dataset.FlushCache()
    dataset = None


def write_paletted_qml(path: str, classes: Sequence[ClassInfo], band: int = 1) -> None:
    """Writes a QGIS paletted-renderer style listing each class by value, colour and name."""
    entries = "\n".join(
        f'        <paletteEntry value="{c.value}" color="{c.hex()}" alpha="255" '
        f"label={quoteattr(c.name)}/>"
        for c in classes
    )
    text = f"""<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<qgis version="3.22.0" styleCategories="AllStyleCategories">
  <pipe>
    <rasterrenderer type="paletted" band="{band}" opacity="1" alphaBand="-1" nodataColor="">
      <rasterTransparency/>
      <colorPalette>
{entries}
      </colorPalette>
      <colorramp type="randomcolors" name="[source]"/>
    </rasterrenderer>
    <brightnesscontrast brightness="0" contrast="0" gamma="1"/>
    <huesaturation saturation="0" grayscaleMode="0" colorizeOn="0"/>
    <rasterresampler maxOversampling="2"/>
  </pipe>
  <blendMode>0</blendMode>
</qgis>
"""
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def read_class_styling(path: str) -> list:
    """Reads classes back from a class raster's category names and colour table.

    Returns:
        The named classes (values with a non-empty category name); empty when the raster has no
        category names.
    """
    from osgeo import gdal

    dataset = gdal.Open(path)
    if dataset is None:
        raise InputError(f"Cannot open '{path}' as a raster.")
    band = dataset.GetRasterBand(1)
    # The GeoTIFF driver of GDAL 3.6 loads the .aux.xml (where category names live) lazily, and
    # GetCategoryNames() alone does not trigger it: read the colour table first.
    table = band.GetColorTable()
    names = band.GetCategoryNames() or []
    classes = []
    for value, name in enumerate(names):
        if not name:
            continue
        color = table.GetColorEntry(value)[:3] if table and value < table.GetCount() else palette_color(value)
        classes.append(ClassInfo(value, name, tuple(color)))
    return classes
