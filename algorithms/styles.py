"""Styles for raster outputs, applied by one layer post-processor when QGIS loads the output.

- ``classes``: the ``.qml`` the engine writes beside every class raster (colours and names, see
  ``core/io/classmap.py``: ``<output without extension>.qml``);
- ``probability``: a 0–1 pseudocolour ramp (Viridis) on the first class band; each band is named
  after its class, so another class is one band switch away in the layer properties;
- ``confidence``: a sequential 0–1 ramp (Blues) on the confidence band.

Algorithms declare the style of an output with ``addParameterRasterOutput(..., style=...)``; the
base class attaches the post-processor for every such output after the run.
"""

import os

from qgis.core import (
    QgsColorRampShader,
    QgsProcessingLayerPostProcessorInterface,
    QgsRasterShader,
    QgsSingleBandPseudoColorRenderer,
    QgsStyle,
)

#: Style kind -> default colour ramp for layers without a .qml.
RAMPS = {"probability": "Viridis", "confidence": "Blues"}

#: QGIS does not own layer post-processors; keep the recent ones alive until the layers load.
_ALIVE = []


def qml_path(raster_path):
    """Returns the path of the style the engine writes beside a raster (core/io/classmap.py)."""
    return os.path.splitext(raster_path)[0] + ".qml"


def ramp_renderer(layer, ramp_name, band=1, minimum=0.0, maximum=1.0):
    """Returns a single-band pseudocolour renderer with a named QGIS colour ramp."""
    ramp = QgsStyle.defaultStyle().colorRamp(ramp_name)
    function = QgsColorRampShader(minimum, maximum, ramp)
    function.classifyColorRamp(5, band)
    shader = QgsRasterShader()
    shader.setRasterShaderFunction(function)
    renderer = QgsSingleBandPseudoColorRenderer(layer.dataProvider(), band, shader)
    renderer.setClassificationMin(minimum)
    renderer.setClassificationMax(maximum)
    return renderer


def apply_style(layer, kind, path):
    """Styles a loaded raster output: its .qml when there is one, else the ramp of ``kind``."""
    if layer is None or not layer.isValid():
        return False
    style = qml_path(path)
    if os.path.exists(style):
        _, ok = layer.loadNamedStyle(style)
    elif kind in RAMPS:
        layer.setRenderer(ramp_renderer(layer, RAMPS[kind]))
        ok = True
    else:
        ok = False
    layer.triggerRepaint()
    return bool(ok)


class StylePostProcessor(QgsProcessingLayerPostProcessorInterface):
    """Applies :func:`apply_style` to an output layer when Processing loads it."""

    def __init__(self, kind, path):
        super().__init__()
        self.kind = kind
        self.path = path

    def postProcessLayer(self, layer, context, feedback):
        """Styles the loaded layer."""
        apply_style(layer, self.kind, self.path)


def attach(algorithm, outputs, context):
    """Attaches a style post-processor to every styled raster output that QGIS will load."""
    if not isinstance(outputs, dict):
        return []
    attached = []
    for definition in algorithm.destinationParameterDefinitions():
        kind = (definition.metadata().get("landfusion") or {}).get("style")
        path = outputs.get(definition.name())
        if not kind or not isinstance(path, str) or not path:
            continue
        if not context.willLoadLayerOnCompletion(path):
            continue
        processor = StylePostProcessor(kind, path)
        _ALIVE[:] = _ALIVE[-31:] + [processor]
        context.layerToLoadOnCompletionDetails(path).setPostProcessor(processor)
        attached.append(processor)
    return attached
