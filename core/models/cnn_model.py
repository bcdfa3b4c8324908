"""The LandFusion ONNX model convention: metadata a CNN carries in its ``metadata_props``.

A LandFusion model describes itself, so the inference engine needs nothing but the ``.onnx``
file. All values are strings; lists and objects are JSON. The convention is documented in
``resources/models/README.md``. Summary:

Required keys
    ``task``      ``segmentation`` (per-pixel class scores, input ``(N, C, H, W)`` -> output
                  ``(N, K, H, W)``) or ``patch_classification`` (one label per patch, input
                  ``(N, C, P, P)`` -> output ``(N, K)``, applied to the patch centre with a stride).
    ``bands``     JSON list of the input band names, in the model's channel order.
    ``classes``   JSON list of ``{"value": int, "name": str, "color": "#rrggbb"}``, one per output
                  channel, in channel order (``color`` optional).

Optional keys (defaults in :data:`DEFAULTS`)
    ``input_offset``, ``input_scale``   per band (JSON list) or one number: ``x1 = (x + offset) * scale``
    ``clip_min``, ``clip_max``          per band or one number, applied to ``x1`` (null: no clip)
    ``input_mean``, ``input_std``       per band or one number: ``x2 = (x1 - mean) / std``
    ``nodata_values``                   JSON list of input values that mean "no data" (besides
                                        the raster's nodata value and NaN)
    ``nodata_fill``                     value given to nodata pixels after normalisation
    ``output_type``                     ``logits`` (softmax applied) or ``probabilities``
    ``tile_size``, ``tile_overlap``     segmentation tile and overlap in pixels
    ``size_divisor``                    tile sizes must be a multiple of it (e.g. 8 for a U-Net
                                        with three poolings)
    ``patch_size``, ``patch_stride``    patch classification window and output cell size
    ``pixel_size``                      expected pixel size in metres (a warning when far off)
    ``input_name``, ``output_name``     graph input/output to use (default: the first ones)
    ``name``, ``description``, ``version``, ``license``, ``author``   informative
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import Mapping, Optional, Sequence

from ..io.classmap import ClassInfo, palette_color, parse_color
from ..errors import InputError, ModelError

FORMAT_VERSION = "1"
TASKS = ("segmentation", "patch_classification")
OUTPUT_TYPES = ("logits", "probabilities")

#: Keys a model must have.
REQUIRED_KEYS = ("task", "bands", "classes")

#: Optional keys and their defaults (as Python values). ``None`` means "not set / not used".
DEFAULTS = {
    "format_version": FORMAT_VERSION,
    "name": "",
    "description": "",
    "version": "",
    "license": "",
    "author": "",
    "input_offset": 0.0,
    "input_scale": 1.0,
    "clip_min": None,
    "clip_max": None,
    "input_mean": 0.0,
    "input_std": 1.0,
    "nodata_values": [],
    "nodata_fill": 0.0,
    "output_type": "logits",
    "tile_size": 256,
    "tile_overlap": None,  # default: a quarter of the tile size
    "size_divisor": 1,
    "patch_size": None,  # patch classification: from the model's static input shape
    "patch_stride": None,  # default: a quarter of the patch size
    "pixel_size": None,
    "input_name": "",
    "output_name": "",
}

_PER_BAND = ("input_offset", "input_scale", "clip_min", "clip_max", "input_mean", "input_std")
_TEXT = ("format_version", "name", "description", "version", "license", "author", "input_name",
         "output_name")
ALL_KEYS = REQUIRED_KEYS + tuple(DEFAULTS)


@dataclass
class ModelMetadata:
    """The validated description of a LandFusion model (see the module docstring)."""

    task: str
    bands: list
    classes: list
    input_offset: list = field(default_factory=list)
    input_scale: list = field(default_factory=list)
    clip_min: list = field(default_factory=list)
    clip_max: list = field(default_factory=list)
    input_mean: list = field(default_factory=list)
    input_std: list = field(default_factory=list)
    nodata_values: list = field(default_factory=list)
    nodata_fill: float = 0.0
    output_type: str = "logits"
    tile_size: int = 256
    tile_overlap: Optional[int] = None
    size_divisor: int = 1
    patch_size: Optional[int] = None
    patch_stride: Optional[int] = None
    pixel_size: Optional[float] = None
    input_name: str = ""
    output_name: str = ""
    name: str = ""
    description: str = ""
    version: str = ""
    license: str = ""
    author: str = ""
    format_version: str = FORMAT_VERSION

    @property
    def band_count(self) -> int:
        """Number of input bands (channels)."""
        return len(self.bands)

    @property
    def class_count(self) -> int:
        """Number of output classes (channels)."""
        return len(self.classes)

    def default_overlap(self, tile_size: Optional[int] = None) -> int:
        """Returns the overlap to use with ``tile_size`` (a quarter of the tile by default)."""
        tile = tile_size or self.tile_size
        if self.tile_overlap is not None and tile_size in (None, self.tile_size):
            return int(self.tile_overlap)
        return int(tile // 4)

    def to_props(self) -> dict:
        """Returns the metadata as ``metadata_props`` strings (only keys that differ from defaults
        are written, plus the required ones and the format version)."""
        props = {
            "format_version": self.format_version or FORMAT_VERSION,
            "task": self.task,
            "bands": json.dumps(list(self.bands)),
            "classes": json.dumps([c.to_dict() for c in self.classes]),
        }
        for key, default in DEFAULTS.items():
            if key in props:
                continue
            value = getattr(self, key)
            if key in _PER_BAND:
                if _is_default_list(value, default):
                    continue
                props[key] = json.dumps(_compact(value))
            elif key == "nodata_values":
                if value:
                    props[key] = json.dumps([_json_number(v) for v in value])
            elif value is None or value == default:
                continue
            else:
                props[key] = str(value)
        return props


def _json_number(value):
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return value


def _compact(values: Sequence):
    """One number when all bands share it, else the list."""
    if values and all(v == values[0] for v in values):
        return values[0]
    return list(values)


def _is_default_list(values: Sequence, default) -> bool:
    return all((v is None and default is None) or v == default for v in values)


def _parse_json(key: str, text: str, what: str):
    try:
        return json.loads(text)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{what}: metadata key '{key}' is not valid JSON ({exc}): {text!r}.") from exc


def _per_band(key: str, raw, count: int, what: str) -> list:
    default = DEFAULTS[key]
    if raw is None or raw == "":
        return [default] * count
    value = _parse_json(key, raw, what) if isinstance(raw, str) else raw
    if value is None or isinstance(value, (int, float)):
        return [None if value is None else float(value)] * count
    if not isinstance(value, list) or len(value) != count:
        raise ModelError(
            f"{what}: metadata key '{key}' must be one number or a list of {count} numbers (one per "
            f"band), got {raw!r}."
        )
    try:
        return [None if v is None else float(v) for v in value]
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{what}: metadata key '{key}' holds a non-number: {raw!r}.") from exc


def _int_key(props: Mapping, key: str, what: str, minimum: int = 0) -> Optional[int]:
    raw = props.get(key)
    if raw is None or str(raw).strip() == "":
        return DEFAULTS[key]
    try:
        value = int(float(str(raw)))
    except ValueError as exc:
        raise ModelError(f"{what}: metadata key '{key}' must be an integer, got {raw!r}.") from exc
    if value < minimum:
        raise ModelError(f"{what}: metadata key '{key}' must be at least {minimum}, got {value}.")
    return value


def parse_classes(raw, what: str = "The model") -> list:
    """Parses the ``classes`` key (JSON list of value/name/color objects) into ClassInfo."""
    value = _parse_json("classes", raw, what) if isinstance(raw, str) else raw
    if not isinstance(value, list) or not value:
        raise ModelError(f"{what}: metadata key 'classes' must be a non-empty JSON list of "
                         '{"value": 1, "name": "water", "color": "#1f78b4"} objects.')
    classes = []
    for i, item in enumerate(value):
        if isinstance(item, str):
            item = {"value": i, "name": item}
        if not isinstance(item, dict) or "name" not in item:
            raise ModelError(f"{what}: class {i + 1} in 'classes' needs at least a name "
                             f"(and a value), got {item!r}.")
        try:
            class_value = int(item.get("value", i))
            color = parse_color(item["color"]) if item.get("color") else palette_color(i)
        except (TypeError, ValueError, InputError) as exc:
            raise ModelError(f"{what}: class {i + 1} in 'classes' is invalid ({exc}).") from exc
        if not 0 <= class_value <= 65534:
            raise ModelError(f"{what}: class value {class_value} is outside 0..65534.")
        classes.append(ClassInfo(class_value, str(item["name"]), color))
    values = [c.value for c in classes]
    duplicates = sorted({v for v in values if values.count(v) > 1})
    if duplicates:
        raise ModelError(f"{what}: class value(s) {duplicates} appear more than once in 'classes'.")
    return classes


def metadata_from_props(props: Mapping[str, str], what: str = "The model") -> ModelMetadata:
    """Validates ``metadata_props`` and returns the model description.

    Raises:
        ModelError: naming the missing or invalid keys and how to add them.
    """
    missing = [k for k in REQUIRED_KEYS if not str(props.get(k, "") or "").strip()]
    if missing:
        raise ModelError(
            f"{what} is not a LandFusion model: its metadata lacks the required key(s) "
            f"{', '.join(missing)}. Add them with scripts/write_model_metadata.py (see "
            "resources/models/README.md for the convention), e.g. --task segmentation "
            "--bands VV,VH --classes land,water."
        )
    version = str(props.get("format_version", FORMAT_VERSION)).strip() or FORMAT_VERSION
    if version.split(".")[0] != FORMAT_VERSION:
        raise ModelError(f"{what} uses metadata format {version}; this LandFusion reads format "
                         f"{FORMAT_VERSION}. Update LandFusion or re-export the model.")
    task = str(props["task"]).strip().lower()
    if task not in TASKS:
        raise ModelError(f"{what}: metadata 'task' is {props['task']!r}; use one of "
                         f"{', '.join(TASKS)}.")
    bands = _parse_json("bands", props["bands"], what)
    if isinstance(bands, str):
        bands = [b.strip() for b in bands.split(",")]
    if not isinstance(bands, list) or not bands or not all(isinstance(b, str) and b.strip()
                                                            for b in bands):
        raise ModelError(f"{what}: metadata 'bands' must be a non-empty JSON list of band names, "
                         f'e.g. ["VV", "VH"]; got {props["bands"]!r}.')
    bands = [b.strip() for b in bands]
    dupes = sorted({b for b in bands if [x.upper() for x in bands].count(b.upper()) > 1})
    if dupes:
        raise ModelError(f"{what}: band(s) {', '.join(dupes)} appear more than once in 'bands'.")
    count = len(bands)
    meta = ModelMetadata(task=task, bands=bands, classes=parse_classes(props["classes"], what))
    for key in _PER_BAND:
        setattr(meta, key, _per_band(key, props.get(key), count, what))
    if any(s is None or s == 0 for s in meta.input_std):
        raise ModelError(f"{what}: 'input_std' must be non-zero for every band.")
    if any(s is None for s in meta.input_scale + meta.input_offset + meta.input_mean):
        raise ModelError(f"{what}: 'input_offset', 'input_scale' and 'input_mean' cannot be null.")
    for lo, hi in zip(meta.clip_min, meta.clip_max):
        if lo is not None and hi is not None and lo > hi:
            raise ModelError(f"{what}: 'clip_min' ({lo}) is above 'clip_max' ({hi}).")
    raw_nodata = props.get("nodata_values")
    if raw_nodata not in (None, ""):
        values = _parse_json("nodata_values", raw_nodata, what)
        values = values if isinstance(values, list) else [values]
        try:
            meta.nodata_values = [float(v) for v in values]
        except (TypeError, ValueError) as exc:
            raise ModelError(f"{what}: 'nodata_values' must be numbers, got {raw_nodata!r}.") from exc
    try:
        meta.nodata_fill = float(props.get("nodata_fill", DEFAULTS["nodata_fill"]) or 0.0)
        pixel = props.get("pixel_size")
        meta.pixel_size = float(pixel) if pixel not in (None, "") else None
    except ValueError as exc:
        raise ModelError(f"{what}: 'nodata_fill' and 'pixel_size' must be numbers ({exc}).") from exc
    if meta.pixel_size is not None and meta.pixel_size <= 0:
        raise ModelError(f"{what}: 'pixel_size' must be positive (metres), got {meta.pixel_size}.")
    output_type = str(props.get("output_type", "logits") or "logits").strip().lower()
    if output_type not in OUTPUT_TYPES:
        raise ModelError(f"{what}: 'output_type' is {output_type!r}; use logits or probabilities.")
    meta.output_type = output_type
    meta.tile_size = _int_key(props, "tile_size", what, minimum=1)
    meta.tile_overlap = _int_key(props, "tile_overlap", what, minimum=0)
    meta.size_divisor = _int_key(props, "size_divisor", what, minimum=1)
    meta.patch_size = _int_key(props, "patch_size", what, minimum=1)
    meta.patch_stride = _int_key(props, "patch_stride", what, minimum=1)
    if meta.tile_overlap is not None and meta.tile_overlap >= meta.tile_size:
        raise ModelError(f"{what}: 'tile_overlap' ({meta.tile_overlap}) must be smaller than "
                         f"'tile_size' ({meta.tile_size}).")
    for key in _TEXT:
        setattr(meta, key, str(props.get(key, DEFAULTS[key]) or DEFAULTS[key]))
    meta.format_version = version
    return meta


def read_props(path: str) -> dict:
    """Returns the ``metadata_props`` of an ONNX file as a dict (no validation).

    Raises:
        ModelError: when the file is missing or not an ONNX model.
    """
    import onnx

    if not path or not os.path.isfile(path):
        raise ModelError(f"Model file '{path}' does not exist.")
    try:
        model = onnx.load(path, load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError, ValueError, ... for non-models
        raise ModelError(f"'{path}' is not an ONNX model ({type(exc).__name__}: {exc}). Choose "
                         "a .onnx file exported from PyTorch, TensorFlow or scikit-learn.") from exc
    if not model.graph.node and not model.graph.input:
        raise ModelError(f"'{path}' is not an ONNX model: it holds no graph.")
    return {p.key: p.value for p in model.metadata_props}


def read_model_metadata(path: str) -> ModelMetadata:
    """Reads and validates the LandFusion metadata of an ONNX file."""
    return metadata_from_props(read_props(path), what=f"Model '{os.path.basename(path)}'")


def write_model_metadata(path: str, metadata, output_path: Optional[str] = None) -> str:
    """Writes LandFusion metadata into an ONNX file (in place, or to ``output_path``).

    Args:
        path: the ONNX model.
        metadata: a :class:`ModelMetadata` or a mapping of ``metadata_props`` strings; it is
            validated first, so an invalid description is never written.
        output_path: where to write; ``path`` itself when None.

    Returns:
        The path written. Existing LandFusion keys are replaced, other keys are kept.
    """
    import onnx

    if isinstance(metadata, ModelMetadata):
        props = metadata.to_props()
    else:
        props = {k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}
    metadata_from_props(props, what="The metadata to write")  # validate before writing
    unknown = sorted(set(props) - set(ALL_KEYS) - {"model_card"})
    if unknown:
        raise ModelError(f"Unknown metadata key(s) {', '.join(unknown)}; known keys: "
                         f"{', '.join(ALL_KEYS)}.")
    read_props(path)
    model = onnx.load(path)
    kept = [(p.key, p.value) for p in model.metadata_props if p.key not in ALL_KEYS]
    del model.metadata_props[:]
    for key, value in kept + sorted(props.items()):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    target = output_path or path
    from ..io.raster import atomic_output

    with atomic_output(target, "Model file") as temp:
        onnx.save(model, temp)
    return target
