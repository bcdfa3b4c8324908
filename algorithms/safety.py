"""No output may overwrite an input or another output — checked for every algorithm.

Every destination parameter is compared with every input parameter (layers, files, lists of
layers, folders) and with every other destination, by resolved real path, including the files
written or kept beside them: ``.aux.xml``, ``.qml`` and ``.json`` sidecars, shapefile parts,
GeoPackage/SQLite journals. The comparison is generic (it iterates the parameter definitions), so
an algorithm added later is protected without a line of its own.
"""

import os

from qgis.core import QgsProviderRegistry

#: Files that make up one dataset of a multi-file format, by the main file's extension.
_PARTS = {
    ".shp": (".shp", ".shx", ".dbf", ".prj", ".cpg", ".qix", ".sbn", ".sbx", ".qpj", ".shp.xml"),
    ".tab": (".tab", ".dat", ".id", ".map", ".ind"),
}
#: Journals SQLite-based formats keep beside the database.
_JOURNALS = ("-wal", "-shm", "-journal")
_SQLITE = (".gpkg", ".sqlite", ".db", ".spatialite")
_LAYER_TYPES = ("raster", "vector", "source", "layer", "mesh", "pointcloud")


def _real(path):
    return os.path.normcase(os.path.realpath(os.path.abspath(os.path.expanduser(path))))


def _strip_uri(text):
    """Returns the file path of a layer source or output string (None for non-file sources)."""
    text = str(text or "").strip()
    if not text or text.startswith(("memory:", "postgres:", "postgis:", "mssql:", "oracle:")):
        return None
    for prefix in ("ogr:", "gdal:"):
        if text.startswith(prefix):
            text = text[len(prefix):]
    if "dbname=" in text or text.startswith(("/vsicurl", "http://", "https://")):
        return None
    return text.split("|")[0] or None


def _layer_path(layer):
    """Returns the file a layer reads, or None (memory layers, databases, web services)."""
    if layer is None:
        return None
    try:
        decoded = QgsProviderRegistry.instance().decodeUri(layer.providerType(), layer.source())
        path = decoded.get("path")
    except Exception:  # providers without decodeUri
        path = None
    return path or _strip_uri(layer.source())


def _family(path, kind, sidecars=(), existing_only=False):
    """Returns the real paths of the files that belong to ``path``."""
    stem, ext = os.path.splitext(path)
    ext = ext.lower()
    names = {path}
    names.update(stem + part for part in _PARTS.get(ext, ()))
    if ext in _SQLITE:
        names.update(path + j for j in _JOURNALS)
    if kind == "raster":
        names.update((path + ".aux.xml", stem + ".qml", path + ".json", path + ".ovr",
                      path + ".msk"))
    names.update(stem + s for s in sidecars)
    if existing_only:
        names = {n for n in names if n == path or os.path.exists(n)}
    return {_real(n): n for n in names}


def _inputs(algorithm, parameters, context):
    """Yields (definition, path) for every file an input parameter reads."""
    for definition in algorithm.parameterDefinitions():
        if definition.isDestination():
            continue
        name, kind = definition.name(), definition.type()
        value = parameters.get(name)
        if value is None or value == "":
            continue
        paths = []
        if kind in _LAYER_TYPES:
            try:
                paths.append(_layer_path(algorithm.parameterAsLayer(parameters, name, context)))
            except Exception:  # unreadable input: QGIS reports it
                pass
            if not any(paths) and isinstance(value, str):
                paths.append(_strip_uri(value))
        elif kind == "multilayer":
            for layer in algorithm.parameterAsLayerList(parameters, name, context):
                paths.append(_layer_path(layer))
            if isinstance(value, (list, tuple)):
                paths += [_strip_uri(v) for v in value if isinstance(v, str)]
        elif kind == "file":
            paths.append(algorithm.parameterAsFile(parameters, name, context))
        for path in paths:
            if path and path != "TEMPORARY_OUTPUT":
                yield definition, path


def _outputs(algorithm, parameters, context):
    """Yields (definition, path, family) for every output that will be written to a file."""
    for definition in algorithm.destinationParameterDefinitions():
        name, kind = definition.name(), definition.type()
        if kind in ("rasterDestination", "vectorDestination", "sink"):
            path = _strip_uri(algorithm.parameterAsOutputLayer(parameters, name, context))
        else:
            path = algorithm.parameterAsFileOutput(parameters, name, context)
        if not path:
            continue
        sidecars = (definition.metadata().get("landfusion") or {}).get("sidecars", ())
        family = _family(path, "raster" if kind == "rasterDestination" else "other", sidecars)
        yield definition, path, family


def _label(definition):
    return f"'{definition.description()}' ({definition.name()})"


def _clash(output, family, other, other_family, path, other_path, role):
    common = sorted(set(family) & set(other_family))
    if not common:
        return None
    written = family[common[0]]
    if _real(path) == _real(other_path):
        detail = f"both are {path}"
    else:
        detail = f"writing {written} would destroy a file of {other_path}"
    return (f"The output {_label(output)} would overwrite the {role} {_label(other)}: {detail}. "
            f"Choose another file name for {output.name()}; LandFusion never overwrites an "
            f"input or another output of the same run.")


def output_conflict(algorithm, parameters, context):
    """Returns a message when an output would overwrite an input or another output, else None."""
    outputs = list(_outputs(algorithm, parameters, context))
    if not outputs:
        return None
    inputs = [(d, p, _family(p, "raster", existing_only=True))
              for d, p in _inputs(algorithm, parameters, context)]
    for index, (output, path, family) in enumerate(outputs):
        for other, other_path, other_family in inputs:
            message = _clash(output, family, other, other_family, path, other_path, "input")
            if message:
                return message
        for other, other_path, other_family in outputs[index + 1:]:
            message = _clash(output, family, other, other_family, path, other_path, "output")
            if message:
                return message
    return None
