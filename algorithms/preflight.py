"""Checks every algorithm gets before it runs: input kinds, numbers, output places, disk space.

The checks iterate the parameter definitions, so an algorithm added later is checked without a
line of its own. The engine functions in :mod:`core.io.preflight` do the work and write the
messages; this module finds what to check in the Processing parameters:

- a layer input given as a file that is not of the kind asked for ("'notes.txt' is a text file,
  not a raster") or that does not exist;
- a number outside the range declared on its parameter, with the allowed range;
- an output whose folder is missing, is not a folder, or does not accept files (``/proc``);
- outputs whose estimated size (grid × bands × data type) exceeds the free disk space.
"""

import os

from qgis.core import QgsMapLayer, QgsProcessingUtils

from ..core.errors import InputError
from ..core.io import preflight as checks
from .safety import _strip_uri

#: Parameter types that take a layer, and the kind of file each needs.
_LAYER_KINDS = {"raster": "raster", "vector": "vector", "source": "vector", "layer": None,
                "multilayer": None}
#: Bounds QGIS uses for "no limit" on numeric parameters.
_UNBOUNDED = 1e300


def _label(definition):
    return f"{definition.description()} ({definition.name()})"


def _expected_kind(definition):
    kind = definition.type()
    if kind == "multilayer":
        from qgis.core import QgsProcessing

        layer_type = definition.layerType()
        if layer_type == QgsProcessing.TypeRaster:
            return "raster"
        if layer_type in (QgsProcessing.TypeVector, QgsProcessing.TypeVectorAnyGeometry,
                          QgsProcessing.TypeVectorPoint, QgsProcessing.TypeVectorLine,
                          QgsProcessing.TypeVectorPolygon):
            return "vector"
        return None
    return _LAYER_KINDS.get(kind)


def _layer_matches(value, kind, context):
    """Whether QGIS loads ``value`` (a string) as a layer of ``kind`` (None: any)."""
    try:
        layer = QgsProcessingUtils.mapLayerFromString(value, context)
    except Exception:  # an unloadable string is reported below
        layer = None
    if layer is None or not layer.isValid():
        return False
    if kind == "raster":
        return layer.type() == QgsMapLayer.RasterLayer
    if kind == "vector":
        return layer.type() == QgsMapLayer.VectorLayer
    return True


def check_input_kinds(algorithm, parameters, context):
    """Raises InputError for a layer input that is missing or a file of another kind."""
    for definition in algorithm.parameterDefinitions():
        kind_name = definition.type()
        if definition.isDestination() or kind_name not in _LAYER_KINDS:
            continue
        value = parameters.get(definition.name())
        values = value if isinstance(value, (list, tuple)) else [value]
        kind = _expected_kind(definition)
        for item in values:
            if not isinstance(item, str) or not item.strip() or _layer_matches(item, kind,
                                                                                context):
                continue
            path = _strip_uri(item)
            if not path or not (os.sep in path or os.path.splitext(path)[1]):
                continue  # a layer name or id QGIS reports itself
            what = _label(definition)
            if not os.path.exists(path):
                raise InputError(f"{what}: '{path}' does not exist; check the path.")
            if kind == "raster":
                checks.check_raster_input(path, what)
            elif kind == "vector":
                checks.check_vector_input(path, what)
            description = checks.describe_file(path)
            if "raster" not in description and "vector" not in description:
                raise InputError(f"{what}: '{path}' is {description}, not a layer QGIS can "
                                 "open. Choose a raster or a vector layer.")


def check_numbers(algorithm, parameters):
    """Raises InputError for a number outside its declared range, saying the range."""
    for definition in algorithm.parameterDefinitions():
        if definition.type() != "number":
            continue
        value = parameters.get(definition.name())
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            if not isinstance(value, str):
                continue  # an expression or property: QGIS evaluates it
            raise InputError(f"{_label(definition)} is '{value}', which is not a number.") \
                from None
        low, high = definition.minimum(), definition.maximum()
        low = None if low <= -_UNBOUNDED else low
        high = None if high >= _UNBOUNDED else high
        # A tiny positive minimum stands for "greater than 0" (e.g. a scale or a pixel size).
        exclusive = low is not None and 0 < low <= 1e-6
        checks.check_range(number, _label(definition), 0 if exclusive else low, high,
                           exclusive_minimum=exclusive)


def output_paths(algorithm, parameters, context):
    """Yields (definition, path) for every output that will be written to a file."""
    for definition in algorithm.destinationParameterDefinitions():
        name, kind = definition.name(), definition.type()
        if parameters.get(name) is None and not definition.defaultValue():
            continue
        if kind in ("rasterDestination", "vectorDestination", "sink"):
            path = _strip_uri(algorithm.parameterAsOutputLayer(parameters, name, context))
        else:
            path = algorithm.parameterAsFileOutput(parameters, name, context)
        if path and path != "TEMPORARY_OUTPUT":
            yield definition, path


def check_output_places(algorithm, parameters, context):
    """Raises OutputError for an output that cannot be created where it is asked for."""
    for definition, path in output_paths(algorithm, parameters, context):
        if definition.type() == "folderDestination":
            if os.path.isdir(path):
                continue
            path = path.rstrip(os.sep)
        checks.check_output_location(path, _label(definition))


def check_disk_space(algorithm, parameters, context):
    """Raises OutputError when the outputs' estimated sizes exceed the free space."""
    sizes = algorithm.estimate_outputs(parameters, context)
    paths = dict((d.name(), p) for d, p in output_paths(algorithm, parameters, context))
    checks.check_free_space([(paths[name], size) for name, size in sizes.items()
                             if name in paths])


def raster_output_layouts(algorithm, parameters, context):
    """Returns {output name: (bands, dtype)} for raster outputs, from their declared style."""
    layouts = {}
    for definition in algorithm.destinationParameterDefinitions():
        if definition.type() != "rasterDestination":
            continue
        style = (definition.metadata().get("landfusion") or {}).get("style")
        if style == "probability":
            model = algorithm.model_path(parameters, context)
            layouts[definition.name()] = (max(1, checks.model_class_count(model or "")),
                                          "float32")
            continue
        layouts[definition.name()] = {"classes": (1, "uint8"), "confidence": (2, "float32")}.get(
            style, (1, "float32"))
    return layouts


def first_raster_grid(algorithm, parameters, context):
    """Returns (width, height) of the first raster input given, or None."""
    for definition in algorithm.parameterDefinitions():
        if definition.isDestination() or definition.type() not in ("raster", "multilayer"):
            continue
        if parameters.get(definition.name()) in (None, "", []):
            continue
        if definition.type() == "raster":
            layers = [algorithm.parameterAsRasterLayer(parameters, definition.name(), context)]
        else:
            layers = algorithm.parameterAsLayerList(parameters, definition.name(), context)
        for layer in layers:
            if layer is not None and layer.type() == QgsMapLayer.RasterLayer:
                return layer.width(), layer.height()
    return None
