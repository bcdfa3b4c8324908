"""The LandFusion model format: one ONNX file that describes itself, read and written here only.

A LandFusion model is a single ``.onnx`` file. Its description (the *model card*) is stored in
the model's ``metadata_props`` as three entries:

=============================  ==================================================================
``landfusion.format``          ``"landfusion-model"``
``landfusion.format_version``  ``"2"``
``landfusion.card``            the card as one JSON document (see :class:`ModelCard`)
=============================  ==================================================================

The format is documented once, for users and for code that writes models, in
``resources/models/README.md``. Everything that trains or runs models goes through two
functions::

    card = read_model(path)                 # ModelCard, or ModelError naming the fix
    write_model(onnx_model_or_path, card, path)

Files of format version 1 (pixel classifiers with ``landfusion.*`` keys, CNNs with bare keys such
as ``task``/``bands``/``classes``) are still read, converted to a card in memory;
``scripts/write_model_metadata.py MODEL --upgrade`` rewrites them as version 2.

Models are never pickles: pickled files can run arbitrary code when loaded, so they are detected
and refused before any parsing.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import math
import os
from dataclasses import dataclass, field
from typing import Mapping, Optional, Sequence

from ..errors import InputError, ModelError
from ..io.classmap import ClassInfo, palette_color, parse_color

FORMAT = "landfusion-model"
FORMAT_VERSION = 2
PREFIX = "landfusion."
CARD_KEY = PREFIX + "card"

#: Tasks, and the algorithm that runs each (display name, algorithm id).
PIXEL_CLASSIFIER = "pixel_classifier"
SEGMENTATION = "segmentation"
PATCH_CLASSIFIER = "patch_classifier"
CHANGE_MODEL = "change_model"
TASKS = (PIXEL_CLASSIFIER, SEGMENTATION, PATCH_CLASSIFIER, CHANGE_MODEL)
RUNNERS = {
    PIXEL_CLASSIFIER: ("Classify raster", "landfusion:classifyraster"),
    SEGMENTATION: ("CNN classify", "landfusion:cnnclassify"),
    PATCH_CLASSIFIER: ("CNN classify", "landfusion:cnnclassify"),
    CHANGE_MODEL: ("Change detection", "landfusion:changedetection"),
}
TASK_NAMES = {
    PIXEL_CLASSIFIER: "pixel classifier",
    SEGMENTATION: "segmentation CNN",
    PATCH_CLASSIFIER: "patch classifier CNN",
    CHANGE_MODEL: "change model",
}
#: Band units LandFusion knows ('' = not stated).
UNITS = ("", "dB", "linear", "reflectance", "DN", "index", "count", "other")
OUTPUT_TYPES = ("logits", "probabilities")

_PICKLE_EXTENSIONS = (".pkl", ".pickle", ".joblib", ".sav", ".pk", ".p")
_NORMALISATION = ("offset", "scale", "clip_min", "clip_max", "mean", "std")
_NORMALISATION_DEFAULTS = {"offset": 0.0, "scale": 1.0, "clip_min": None, "clip_max": None,
                           "mean": 0.0, "std": 1.0}
_UNIT_ALIASES = {"db": "dB", "decibel": "dB", "decibels": "dB", "lin": "linear",
                 "linear power": "linear", "power": "linear", "refl": "reflectance",
                 "sr": "reflectance", "dn": "DN", "digital number": "DN"}


@dataclass
class ModelCard:
    """The description of a LandFusion model (the JSON card, parsed and checked).

    Per-band lists (``band_units``, ``band_roles``, ``band_stats`` and the normalisation lists)
    have one entry per band, in the order of ``bands``. Only ``task``, ``bands`` and ``classes``
    are required; everything else has a default.
    """

    task: str
    bands: list
    classes: list
    band_units: list = field(default_factory=list)
    band_roles: list = field(default_factory=list)
    #: Per band: ``{"min", "max", "mean", "std", "count"}`` of the training data, or None.
    band_stats: list = field(default_factory=list)
    # Normalisation, in this order: x1 = (x + offset) * scale; clip(x1); x2 = (x1 - mean) / std.
    input_offset: list = field(default_factory=list)
    input_scale: list = field(default_factory=list)
    clip_min: list = field(default_factory=list)
    clip_max: list = field(default_factory=list)
    input_mean: list = field(default_factory=list)
    input_std: list = field(default_factory=list)
    nodata_values: list = field(default_factory=list)
    nodata_fill: float = 0.0
    output_nodata: Optional[int] = None
    # Tiling (segmentation) and patches (patch classifiers).
    tile_size: int = 256
    tile_overlap: Optional[int] = None
    size_divisor: int = 1
    patch_size: Optional[int] = None
    patch_stride: Optional[int] = None
    # Graph: CNNs use input_name/output_name (first ones when empty); pixel classifiers name
    # their label and probability outputs.
    input_name: str = ""
    output_name: str = ""
    label_output: str = "label"
    probability_output: str = "probabilities"
    output_type: str = "logits"
    # Grid of the training data.
    pixel_size: Optional[float] = None
    crs: str = ""
    # Informative.
    name: str = ""
    description: str = ""
    version: str = ""
    license: str = ""
    author: str = ""
    created: str = ""
    software: dict = field(default_factory=dict)
    #: Training summary: algorithm/architecture, parameters, data, samples, time ...
    training: dict = field(default_factory=dict)
    #: Validation metrics: method, overall_accuracy, kappa, macro_f1, per_class, iou ...
    metrics: dict = field(default_factory=dict)
    #: Task-specific entries (e.g. a change model's decision threshold).
    extra: dict = field(default_factory=dict)
    #: Format version of the file this card was read from.
    format_version: int = FORMAT_VERSION
    path: str = ""

    def __post_init__(self):
        self.bands = [str(b).strip() for b in self.bands]
        count = len(self.bands)

        def fill(values, default):
            values = list(values) if values else []
            return values if len(values) == count else (
                [values[0]] * count if len(values) == 1 else [default] * count)

        self.band_units = [normalise_unit(u) for u in fill(self.band_units, "")]
        self.band_stats = fill(self.band_stats, None)
        if not self.band_roles or len(self.band_roles) != count:
            from ..sensors.bands import band_role

            self.band_roles = [band_role(b).key for b in self.bands]
        for key in _NORMALISATION:
            attr = _attr(key)
            setattr(self, attr, fill(getattr(self, attr), _NORMALISATION_DEFAULTS[key]))
        self.classes = [c if isinstance(c, ClassInfo) else _class_from(c, i, "The model")
                        for i, c in enumerate(self.classes)]

    # --- convenience ---------------------------------------------------------------------------

    @property
    def band_count(self) -> int:
        """Number of input bands."""
        return len(self.bands)

    @property
    def band_names(self) -> list:
        """The input band names in order (same as ``bands``)."""
        return list(self.bands)

    @property
    def class_count(self) -> int:
        """Number of classes (output channels)."""
        return len(self.classes)

    @property
    def label(self) -> str:
        """How to call the model in messages."""
        return f"Model '{self.name or os.path.basename(self.path) or 'model'}'"

    @property
    def is_cnn(self) -> bool:
        """True for segmentation and patch classifiers (image tensors in)."""
        return self.task in (SEGMENTATION, PATCH_CLASSIFIER)

    def default_overlap(self, tile_size: Optional[int] = None) -> int:
        """Returns the overlap to use with ``tile_size`` (a quarter of the tile by default)."""
        tile = tile_size or self.tile_size
        if self.tile_overlap is not None and tile_size in (None, self.tile_size):
            return int(self.tile_overlap)
        return int(tile // 4)

    def band_description(self, index: int) -> str:
        """``NAME (unit)`` of a band, for messages."""
        unit = self.band_units[index]
        return f"{self.bands[index]} ({unit})" if unit else self.bands[index]

    # --- JSON ----------------------------------------------------------------------------------

    def to_json(self) -> dict:
        """Returns the card as the JSON document stored in ``landfusion.card``."""
        self.__post_init__()  # per-band lists follow ``bands`` after edits
        bands = []
        for i, name in enumerate(self.bands):
            entry = {"name": name, "unit": self.band_units[i], "role": self.band_roles[i]}
            if self.band_stats[i]:
                entry["stats"] = {k: _json_float(v) for k, v in self.band_stats[i].items()}
            bands.append(entry)
        normalisation = {}
        for key in _NORMALISATION:
            values = getattr(self, _attr(key))
            if not all(v == _NORMALISATION_DEFAULTS[key] for v in values):
                normalisation[key] = [_json_float(v) for v in values]
        return {
            "format_version": FORMAT_VERSION,
            "task": self.task,
            "name": self.name, "description": self.description, "version": self.version,
            "license": self.license, "author": self.author,
            "created": self.created or _now(), "software": self.software or library_versions(),
            "bands": bands,
            "classes": [c.to_dict() for c in self.classes],
            "normalisation": normalisation,
            "nodata": {"values": [_json_float(v) for v in self.nodata_values],
                       "fill": self.nodata_fill, "output": self.output_nodata},
            "tiling": {"tile_size": self.tile_size, "tile_overlap": self.tile_overlap,
                       "size_divisor": self.size_divisor, "patch_size": self.patch_size,
                       "patch_stride": self.patch_stride},
            "graph": {"input": self.input_name, "output": self.output_name,
                      "label_output": self.label_output,
                      "probability_output": self.probability_output,
                      "output_type": self.output_type},
            "grid": {"pixel_size": self.pixel_size, "crs": self.crs},
            "training": _jsonable(self.training),
            "metrics": _jsonable(self.metrics),
            "extra": _jsonable(self.extra),
        }

    @classmethod
    def from_json(cls, doc: Mapping, what: str = "The model") -> "ModelCard":
        """Builds and checks a card from the JSON document (see :meth:`to_json`).

        Raises:
            ModelError: naming the entry that is missing or wrong.
        """
        if not isinstance(doc, Mapping):
            raise ModelError(f"{what}: the LandFusion card is not a JSON object.")
        missing = [k for k in ("task", "bands", "classes") if not doc.get(k)]
        if missing:
            raise ModelError(f"{what}: the LandFusion card lacks {', '.join(missing)}.")
        raw_bands = doc["bands"]
        if not isinstance(raw_bands, list):
            raise ModelError(f"{what}: 'bands' must be a list of band objects or names.")
        names, units, roles, stats = [], [], [], []
        for i, item in enumerate(raw_bands):
            if isinstance(item, str):
                item = {"name": item}
            if not isinstance(item, Mapping) or not str(item.get("name", "")).strip():
                raise ModelError(f"{what}: band {i + 1} in 'bands' has no name: {item!r}.")
            names.append(str(item["name"]))
            units.append(item.get("unit", "") or "")
            roles.append(item.get("role", "") or "")
            stats.append(_parse_stats(item.get("stats"), what, names[-1]))
        normalisation = doc.get("normalisation") or {}
        nodata = doc.get("nodata") or {}
        tiling = doc.get("tiling") or {}
        graph = doc.get("graph") or {}
        grid = doc.get("grid") or {}
        values = {
            "task": doc["task"], "bands": names, "classes": parse_classes(doc["classes"], what),
            "band_units": units, "band_roles": roles if all(roles) else [],
            "band_stats": stats,
            "nodata_values": nodata.get("values") or [], "nodata_fill": nodata.get("fill", 0.0),
            "output_nodata": nodata.get("output"),
            "tile_size": tiling.get("tile_size"), "tile_overlap": tiling.get("tile_overlap"),
            "size_divisor": tiling.get("size_divisor"), "patch_size": tiling.get("patch_size"),
            "patch_stride": tiling.get("patch_stride"),
            "input_name": graph.get("input", ""), "output_name": graph.get("output", ""),
            "label_output": graph.get("label_output"),
            "probability_output": graph.get("probability_output"),
            "output_type": graph.get("output_type"),
            "pixel_size": grid.get("pixel_size"), "crs": grid.get("crs", ""),
            "training": doc.get("training") or {}, "metrics": doc.get("metrics") or {},
            "extra": doc.get("extra") or {}, "software": doc.get("software") or {},
        }
        for key in ("name", "description", "version", "license", "author", "created"):
            values[key] = doc.get(key, "")
        for key in _NORMALISATION:
            values[_attr(key)] = normalisation.get(key)
        return build_card(what=what, format_version=int(doc.get("format_version", 2)), **values)


def _attr(key: str) -> str:
    return key if key.startswith("clip") else f"input_{key}"


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()


def _json_float(value):
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return str(value)
    return value


def _jsonable(value):
    """Returns ``value`` with numpy scalars/arrays and tuples turned into JSON types."""
    return json.loads(json.dumps(value, default=_json_default))


def _json_default(value):
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)


def normalise_unit(unit) -> str:
    """Returns the canonical unit name (``dB``, ``linear``, ``reflectance``, ``DN`` ...)."""
    text = str(unit or "").strip()
    canonical = _UNIT_ALIASES.get(text.lower(), text)
    for known in UNITS:
        if canonical.lower() == known.lower():
            return known
    return canonical


def _parse_stats(raw, what: str, band: str) -> Optional[dict]:
    if not raw:
        return None
    if not isinstance(raw, Mapping):
        raise ModelError(f"{what}: statistics of band {band} must be an object with min, max, "
                         "mean, std.")
    try:
        stats = {k: float(raw[k]) for k in ("min", "max", "mean", "std") if raw.get(k) is not None}
        if raw.get("count") is not None:
            stats["count"] = int(raw["count"])
        for key in ("p02", "p98"):
            if raw.get(key) is not None:
                stats[key] = float(raw[key])
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{what}: statistics of band {band} hold a non-number ({exc}).") from exc
    return stats


def _class_from(item, index: int, what: str) -> ClassInfo:
    if isinstance(item, str):
        item = {"value": index, "name": item}
    if not isinstance(item, Mapping) or "name" not in item:
        raise ModelError(f"{what}: class {index + 1} needs at least a name (and a value), got "
                         f"{item!r}.")
    try:
        value = int(item.get("value", index))
        color = parse_color(item["color"]) if item.get("color") else palette_color(index)
    except (TypeError, ValueError, InputError) as exc:
        raise ModelError(f"{what}: class {index + 1} is invalid ({exc}).") from exc
    if not 0 <= value <= 65534:
        raise ModelError(f"{what}: class value {value} is outside 0..65534.")
    return ClassInfo(value, str(item["name"]), color)


def parse_classes(raw, what: str = "The model") -> list:
    """Parses classes (JSON text or list of ``{"value", "name", "color"}`` or plain names)."""
    value = _loads("classes", raw, what) if isinstance(raw, str) else raw
    if not isinstance(value, list) or not value:
        raise ModelError(f"{what}: 'classes' must be a non-empty list of "
                         '{"value": 1, "name": "water", "color": "#1f78b4"} objects.')
    classes = [c if isinstance(c, ClassInfo) else _class_from(c, i, what)
               for i, c in enumerate(value)]
    values = [c.value for c in classes]
    duplicates = sorted({v for v in values if values.count(v) > 1})
    if duplicates:
        raise ModelError(f"{what}: class value(s) {duplicates} appear more than once in 'classes'.")
    return classes


def _loads(key: str, text: str, what: str):
    try:
        return json.loads(text)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{what}: '{key}' is not valid JSON ({exc}): {text!r}.") from exc


def _per_band(key: str, raw, count: int, what: str) -> list:
    default = _NORMALISATION_DEFAULTS[key]
    if raw is None or raw == "" or raw == []:
        return [default] * count
    value = _loads(key, raw, what) if isinstance(raw, str) else raw
    if value is None or isinstance(value, (int, float)):
        return [default if value is None else float(value)] * count
    if not isinstance(value, (list, tuple)) or len(value) != count:
        raise ModelError(f"{what}: normalisation '{key}' must be one number or a list of {count} "
                         f"numbers (one per band), got {raw!r}.")
    try:
        return [None if v is None else float(v) for v in value]
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{what}: normalisation '{key}' holds a non-number: {raw!r}.") from exc


def _int_value(key: str, raw, default, what: str, minimum: int = 0):
    if raw is None or str(raw).strip() == "":
        return default
    try:
        value = int(float(str(raw)))
    except ValueError as exc:
        raise ModelError(f"{what}: '{key}' must be an integer, got {raw!r}.") from exc
    if value < minimum:
        raise ModelError(f"{what}: '{key}' must be at least {minimum}, got {value}.")
    return value


def build_card(task: str, bands: Sequence[str], classes, what: str = "The model",
               **values) -> ModelCard:
    """Builds a :class:`ModelCard` from plain values and checks it (the one validator).

    ``values`` are any :class:`ModelCard` fields; normalisation entries may be one number for all
    bands. Unknown names raise ``ModelError`` (a typo must not be silently dropped).

    Raises:
        ModelError: naming the invalid entry.
    """
    known = set(ModelCard.__dataclass_fields__)
    unknown = sorted(set(values) - known)
    if unknown:
        raise ModelError(f"{what}: unknown model card entr{'y' if len(unknown) == 1 else 'ies'} "
                         f"{', '.join(unknown)}.")
    task = str(task or "").strip().lower()
    task = {"patch_classification": PATCH_CLASSIFIER}.get(task, task)
    if task not in TASKS:
        raise ModelError(f"{what}: task {task!r} is unknown; use one of {', '.join(TASKS)}.")
    if isinstance(bands, str):
        bands = [b.strip() for b in bands.split(",")]
    if not isinstance(bands, (list, tuple)) or not bands:
        raise ModelError(f"{what}: 'bands' must be a non-empty list of band names, e.g. "
                         '["VV", "VH"].')
    bands = [str(b).strip() for b in bands]
    named = [b for b in bands if b]
    if task != PIXEL_CLASSIFIER and len(named) != len(bands):
        raise ModelError(f"{what}: every band needs a name (bands {bands}).")
    folded = [b.upper() for b in named]
    dupes = sorted({b for b in named if folded.count(b.upper()) > 1})
    if dupes:
        raise ModelError(f"{what}: band(s) {', '.join(dupes)} appear more than once in 'bands'.")
    count = len(bands)
    fields = {k: v for k, v in values.items() if v is not None}
    for key in _NORMALISATION:
        fields[_attr(key)] = _per_band(key, values.get(_attr(key)), count, what)
    if any(s is None or s == 0 for s in fields["input_std"]):
        raise ModelError(f"{what}: normalisation 'std' must be non-zero for every band.")
    if any(s is None for s in fields["input_scale"] + fields["input_offset"] +
           fields["input_mean"]):
        raise ModelError(f"{what}: normalisation 'offset', 'scale' and 'mean' cannot be null.")
    for lo, hi in zip(fields["clip_min"], fields["clip_max"]):
        if lo is not None and hi is not None and lo > hi:
            raise ModelError(f"{what}: 'clip_min' ({lo}) is above 'clip_max' ({hi}).")
    for key in ("band_units", "band_roles", "band_stats"):
        given = fields.get(key)
        if given and len(given) != count:
            raise ModelError(f"{what}: '{key}' has {len(given)} entries for {count} bands.")
    units = [normalise_unit(u) for u in fields.get("band_units") or [""] * count]
    strange = [u for u in units if u not in UNITS]
    if strange:
        raise ModelError(f"{what}: unknown band unit(s) {', '.join(strange)}; use "
                         f"{', '.join(u for u in UNITS if u)}.")
    fields["band_units"] = units
    if fields.get("band_stats"):
        fields["band_stats"] = [_parse_stats(s, what, b) for s, b in zip(fields["band_stats"],
                                                                         bands)]
    raw_nodata = values.get("nodata_values")
    if raw_nodata not in (None, "", []):
        raw_nodata = _loads("nodata_values", raw_nodata, what) if isinstance(raw_nodata, str) \
            else raw_nodata
        raw_nodata = raw_nodata if isinstance(raw_nodata, (list, tuple)) else [raw_nodata]
        try:
            fields["nodata_values"] = [float(v) for v in raw_nodata]
        except (TypeError, ValueError) as exc:
            raise ModelError(f"{what}: 'nodata_values' must be numbers, got {raw_nodata!r}.") \
                from exc
    try:
        fields["nodata_fill"] = float(values.get("nodata_fill") or 0.0)
        pixel = values.get("pixel_size")
        if isinstance(pixel, (list, tuple)):
            pixel = pixel[0] if pixel else None
        fields["pixel_size"] = float(pixel) if pixel not in (None, "") else None
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{what}: 'nodata_fill' and 'pixel_size' must be numbers ({exc}).") \
            from exc
    if fields["pixel_size"] is not None and fields["pixel_size"] <= 0:
        raise ModelError(f"{what}: 'pixel_size' must be positive, got {fields['pixel_size']}.")
    output_type = str(values.get("output_type") or "logits").strip().lower()
    if output_type not in OUTPUT_TYPES:
        raise ModelError(f"{what}: 'output_type' is {output_type!r}; use logits or probabilities.")
    fields["output_type"] = output_type
    fields["tile_size"] = _int_value("tile_size", values.get("tile_size"), 256, what, 1)
    fields["tile_overlap"] = _int_value("tile_overlap", values.get("tile_overlap"), None, what)
    fields["size_divisor"] = _int_value("size_divisor", values.get("size_divisor"), 1, what, 1)
    fields["patch_size"] = _int_value("patch_size", values.get("patch_size"), None, what, 1)
    fields["patch_stride"] = _int_value("patch_stride", values.get("patch_stride"), None, what, 1)
    if fields["tile_overlap"] is not None and fields["tile_overlap"] >= fields["tile_size"]:
        raise ModelError(f"{what}: 'tile_overlap' ({fields['tile_overlap']}) must be smaller than "
                         f"'tile_size' ({fields['tile_size']}).")
    if values.get("output_nodata") is not None:
        fields["output_nodata"] = _int_value("output_nodata", values["output_nodata"], None, what)
    for key in ("name", "description", "version", "license", "author", "created", "crs",
                "input_name", "output_name"):
        fields[key] = str(values.get(key) or "")
    for key, default in (("label_output", "label"), ("probability_output", "probabilities")):
        fields[key] = str(values.get(key) or default)
    for key in ("training", "metrics", "extra", "software"):
        value = values.get(key) or {}
        if not isinstance(value, Mapping):
            raise ModelError(f"{what}: '{key}' must be an object.")
        fields[key] = dict(value)
    return ModelCard(task=task, bands=bands, classes=parse_classes(classes, what), **fields)


# --- reading --------------------------------------------------------------------------------------

def refuse_non_onnx(path: str) -> None:
    """Raises ModelError for missing files, pickles and other obvious non-ONNX files.

    Runs before any parsing: a pickle is recognised by its extension or its first bytes.
    """
    if not path:
        raise ModelError("No model file given; choose a .onnx file written by LandFusion.")
    if not os.path.isfile(path):
        raise ModelError(f"Model file '{path}' does not exist.")
    with open(path, "rb") as handle:
        head = handle.read(16)
    pickled = (len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5) or \
        path.lower().endswith(_PICKLE_EXTENSIONS)
    if pickled:
        raise ModelError(
            f"'{os.path.basename(path)}' is a Python pickle (or joblib) file. LandFusion never "
            "loads pickles, because loading one can run arbitrary code. Use a .onnx model "
            "trained with 'Train classifier' (landfusion:trainclassifier) or exported to ONNX.")
    if not head:
        raise ModelError(f"Model file '{path}' is empty.")
    if head.startswith((b"\x89HDF", b"PK\x03\x04", b"\x1f\x8b", b"{", b"<")):
        raise ModelError(
            f"'{os.path.basename(path)}' is not an ONNX file (HDF5, zip, gzip, JSON or XML "
            "content). Use a .onnx model trained with LandFusion or exported to ONNX.")


def _load_onnx(path: str, weights: bool = False):
    refuse_non_onnx(path)
    import onnx

    try:
        model = onnx.load_model(path, load_external_data=weights)
    except Exception as exc:  # protobuf raises DecodeError and friends
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(f"'{os.path.basename(path)}' is not a valid ONNX file (corrupt or another "
                         f"format): {first}.") from exc
    if not model.graph.node:
        raise ModelError(f"'{os.path.basename(path)}' is not a valid ONNX model (it has no graph; "
                         "the file is corrupt or of another format).")
    return model


def read_props(path: str) -> dict:
    """Returns the raw ``metadata_props`` of an ONNX file (no validation beyond the file)."""
    return {p.key: p.value for p in _load_onnx(path).metadata_props}


def read_model(path: str) -> ModelCard:
    """Reads the card of a LandFusion model (format 2, or 1 converted), without a session.

    Raises:
        ModelError: missing file, pickle, corrupt or non-ONNX file, not a LandFusion model, or a
            newer format; the message says what to do.
    """
    card = card_from_props(read_props(path), f"'{os.path.basename(path)}'")
    card.path = path
    return card


def card_from_props(props: Mapping[str, str], what: str = "The model") -> ModelCard:
    """Parses ``metadata_props`` of any LandFusion format version into a :class:`ModelCard`."""
    if props.get(PREFIX + "format") == FORMAT:
        version = str(props.get(PREFIX + "format_version", "")).strip()
        if version == "1":
            return _card_from_v1_pixel(props, what)
        if version == str(FORMAT_VERSION):
            if CARD_KEY not in props:
                raise ModelError(f"{what}: LandFusion model without its card "
                                 f"('{CARD_KEY}'); the file is damaged. Retrain or re-export it.")
            card = ModelCard.from_json(_loads("card", props[CARD_KEY], what), what)
            return card
        raise ModelError(
            f"{what} uses LandFusion model format {version or '?'}, which this version of "
            f"LandFusion does not read (it reads formats 1 and {FORMAT_VERSION}). Update "
            "LandFusion, or retrain the model with this version.")
    if any(k in props for k in ("task", "bands", "classes")):
        return _card_from_v1_cnn(props, what)
    raise ModelError(
        f"{what} is an ONNX model but not a LandFusion model: it carries no LandFusion "
        "description (task, bands, classes). Train one with 'Train classifier' "
        "(landfusion:trainclassifier) or 'Train CNN' (landfusion:traincnn), or describe your own "
        "ONNX model with scripts/write_model_metadata.py (see resources/models/README.md), e.g. "
        "--task segmentation --bands VV,VH --classes land,water.")


def _card_from_v1_pixel(props: Mapping[str, str], what: str) -> ModelCard:
    """Format 1 of pixel classifiers: ``landfusion.*`` keys."""
    def value(key, default=None, parse=True):
        text = props.get(PREFIX + key)
        if text is None:
            return default
        if not parse:
            return text
        try:
            return json.loads(text)
        except ValueError:
            return text

    try:
        bands = value("band_names")
        band_count = int(value("band_count"))
        classes = value("classes")
    except (TypeError, ValueError) as exc:
        raise ModelError(f"The LandFusion metadata of {what} is damaged ({exc}); retrain or "
                         "re-export the model.") from exc
    if not isinstance(bands, list) or len(bands) != band_count or band_count < 1:
        raise ModelError(f"The LandFusion metadata of {what} is inconsistent: {band_count} bands "
                         f"but band names {bands!r}.")
    outputs = value("outputs", {}) or {}
    nodata = value("nodata", {}) or {}
    scores = value("scores", {}) or {}
    training = {k: value(k) for k in ("algorithm", "parameters", "samples") if
                value(k) is not None}
    if nodata.get("input") is not None:
        training["input_nodata"] = nodata.get("input")
    task = value("model_type", PIXEL_CLASSIFIER, parse=False)
    return build_card(
        task, bands, classes, what=what, format_version=1,
        input_name=value("input_name", "X", parse=False),
        label_output=outputs.get("label"), probability_output=outputs.get("probabilities"),
        output_nodata=nodata.get("output"), crs=value("crs", "", parse=False),
        pixel_size=value("pixel_size"), created=value("created", "", parse=False),
        software=value("versions", {}) or {}, training=training,
        metrics=scores if isinstance(scores, dict) else {})


def _card_from_v1_cnn(props: Mapping[str, str], what: str) -> ModelCard:
    """Format 1 of CNNs: bare keys (``task``, ``bands``, ``classes``, ``input_mean`` ...)."""
    missing = [k for k in ("task", "bands", "classes") if not str(props.get(k, "") or "").strip()]
    if missing:
        raise ModelError(
            f"{what} is not a complete LandFusion model: its metadata lacks {', '.join(missing)}. "
            "Add them with scripts/write_model_metadata.py (see resources/models/README.md), "
            "e.g. --task segmentation --bands VV,VH --classes land,water.")
    version = str(props.get("format_version", "1")).strip() or "1"
    if version.split(".")[0] != "1":
        raise ModelError(f"{what} uses metadata format {version}; this LandFusion reads formats 1 "
                         f"and {FORMAT_VERSION}. Update LandFusion or re-export the model.")
    bands = props["bands"]
    try:
        bands = json.loads(bands)
    except ValueError:
        if bands.strip().startswith("["):
            raise ModelError(f"{what}: 'bands' is not valid JSON: {bands!r}.") from None
        bands = [b.strip() for b in bands.split(",")]
    if not isinstance(bands, list) or not all(isinstance(b, str) and b.strip() for b in bands):
        raise ModelError(f"{what}: 'bands' must be a non-empty JSON list of band names, e.g. "
                         f'["VV", "VH"]; got {props["bands"]!r}.')
    values = {}
    for key in ("input_offset", "input_scale", "clip_min", "clip_max", "input_mean", "input_std",
                "nodata_values", "nodata_fill", "output_type", "tile_size", "tile_overlap",
                "size_divisor", "patch_size", "patch_stride", "pixel_size", "input_name",
                "output_name", "name", "description", "version", "license", "author"):
        if props.get(key) not in (None, ""):
            values[key] = props[key]
    card = build_card(props["task"], bands, props["classes"], what=what, format_version=1,
                      **values)
    # Format 1 had no units: S1 polarisations standardised around negative means are in dB.
    for i, role in enumerate(card.band_roles):
        if role in ("VV", "VH", "HH", "HV") and not card.band_units[i]:
            card.band_units[i] = "dB" if card.input_mean[i] < 0 or (
                card.clip_max[i] is not None and card.clip_max[i] <= 10) else ""
    if "model_card" in props:
        card.extra["model_card"] = props["model_card"]
    return card


def require_task(card: ModelCard, tasks: Sequence[str], here: str) -> None:
    """Raises ModelError when this algorithm (``here``) cannot run the card's task, naming the
    algorithm that runs it."""
    if card.task in tasks:
        return
    runner, algorithm_id = RUNNERS.get(card.task, ("", ""))
    kind = TASK_NAMES.get(card.task, card.task)
    raise ModelError(
        f"'{os.path.basename(card.path) or card.name}' is a {kind} ({card.task}), which {here} "
        f"does not run; run it with {runner} ({algorithm_id}).")


# --- writing --------------------------------------------------------------------------------------

def library_versions() -> dict:
    """Returns the versions of the libraries that train, export and run models."""
    versions = {}
    for name in ("numpy", "sklearn", "skl2onnx", "onnx", "onnxruntime", "torch"):
        with contextlib.suppress(Exception):
            import sys

            module = sys.modules.get(name) or (__import__(name) if name != "torch" else None)
            if module is not None:
                versions["scikit-learn" if name == "sklearn" else name] = module.__version__
    with contextlib.suppress(Exception):
        from osgeo import gdal

        versions["gdal"] = gdal.__version__
    from ..paths import METADATA_TXT

    with contextlib.suppress(OSError):
        with open(METADATA_TXT, encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("version="):
                    versions["landfusion"] = line.split("=", 1)[1].strip()
    return versions


def check_graph(card: ModelCard, model, what: str = "The model") -> None:
    """Checks an ``onnx.ModelProto``'s inputs and outputs against the card.

    Raises:
        ModelError: when the graph cannot take the card's bands or give its classes.
    """
    def dims(value_info):
        shape = value_info.type.tensor_type.shape
        return [d.dim_value if d.HasField("dim_value") else None for d in shape.dim]

    inputs = {i.name: i for i in model.graph.input}
    initialisers = {i.name for i in model.graph.initializer}
    inputs = {k: v for k, v in inputs.items() if k not in initialisers}
    outputs = {o.name: o for o in model.graph.output}
    if card.task == PIXEL_CLASSIFIER:
        name = card.input_name or next(iter(inputs), "")
        if name not in inputs:
            raise ModelError(f"{what}: the card names input '{name}' but the graph has "
                             f"{list(inputs)}.")
        shape = dims(inputs[name])
        if len(shape) != 2 or (shape[1] and shape[1] != card.band_count):
            raise ModelError(f"{what}: the graph takes input shape {shape}, not "
                             f"[N, {card.band_count}] as the card says.")
        for needed in (card.label_output, card.probability_output):
            if needed not in outputs:
                raise ModelError(f"{what}: the graph has no output '{needed}' (it has "
                                 f"{', '.join(outputs)}).")
        return
    name = card.input_name or next(iter(inputs), "")
    out = card.output_name or next(iter(outputs), "")
    if name not in inputs or out not in outputs:
        raise ModelError(f"{what}: the card names input '{name}' / output '{out}', but the graph "
                         f"has inputs {list(inputs)} and outputs {list(outputs)}.")
    shape = dims(inputs[name])
    if card.is_cnn:
        if len(shape) != 4:
            raise ModelError(f"{what}: a {card.task} model takes (batch, bands, height, width) "
                             f"input; the graph's input has shape {shape}.")
        if shape[1] and shape[1] != card.band_count:
            raise ModelError(f"{what}: the graph takes {shape[1]} channels but the card lists "
                             f"{card.band_count} bands ({', '.join(card.bands)}).")
        out_shape = dims(outputs[out])
        if len(out_shape) >= 2 and out_shape[1] and out_shape[1] != card.class_count:
            raise ModelError(f"{what}: the graph outputs {out_shape[1]} class scores but the card "
                             f"lists {card.class_count} classes.")


def write_model(model, card: ModelCard, path: Optional[str] = None) -> str:
    """Writes ``card`` into an ONNX model and saves it atomically.

    Args:
        model: an ``onnx.ModelProto``, or the path of an ONNX file (its metadata is replaced).
        card: the description; checked against the graph before anything is written.
        path: where to write; the model's own path when ``model`` is a path and ``path`` is None.

    Returns:
        The path written. Other (non-LandFusion) ``metadata_props`` entries are kept; older
        LandFusion entries (format 1) are removed.

    Raises:
        ModelError: the card does not fit the graph, or no path was given.
    """
    import onnx

    from ..io.outputs import atomic_output

    if isinstance(model, (str, os.PathLike)):
        source = os.fspath(model)
        model = _load_onnx(source, weights=True)
        path = path or source
    else:
        copied = onnx.ModelProto()
        copied.CopyFrom(model)
        model = copied
    if not path:
        raise ModelError("write_model needs the path of the .onnx file to write.")
    card = ModelCard.from_json(card.to_json(), "The model card to write")  # validate
    check_graph(card, model, f"'{os.path.basename(path)}'")
    legacy = {"task", "bands", "classes", "format_version", "name", "description", "version",
              "license", "author", "input_offset", "input_scale", "clip_min", "clip_max",
              "input_mean", "input_std", "nodata_values", "nodata_fill", "output_type",
              "tile_size", "tile_overlap", "size_divisor", "patch_size", "patch_stride",
              "pixel_size", "input_name", "output_name"}
    kept = [(p.key, p.value) for p in model.metadata_props
            if not p.key.startswith(PREFIX) and p.key not in legacy]
    del model.metadata_props[:]
    entries = kept + [(PREFIX + "format", FORMAT), (PREFIX + "format_version", str(FORMAT_VERSION)),
                      (CARD_KEY, json.dumps(card.to_json(), ensure_ascii=False))]
    for key, value in entries:
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    model.producer_name = model.producer_name or "LandFusion"
    if not model.doc_string:
        model.doc_string = f"LandFusion {TASK_NAMES.get(card.task, card.task)}" + (
            f": {card.name}" if card.name else "")
    with atomic_output(path, "Model file") as temp:
        onnx.save_model(model, temp)
    return path


def band_statistics(values, band_axis: int = 1) -> list:
    """Per-band training statistics (min, max, mean, std, 2nd/98th percentile, count).

    Args:
        values: an array of training values; ``band_axis`` is the band axis (1 for an
            ``(N, bands)`` sample table, 0 or 1 for image stacks, e.g. ``(bands, H, W)`` or
            ``(N, bands, H, W)``). NaN and infinite values are left out.

    Returns:
        One dict per band, for :attr:`ModelCard.band_stats`.
    """
    import numpy as np

    data = np.moveaxis(np.asarray(values, dtype=np.float64), band_axis, 0)
    data = data.reshape(data.shape[0], -1)
    stats = []
    for band in data:
        band = band[np.isfinite(band)]
        if band.size == 0:
            stats.append(None)
            continue
        p02, p98 = np.percentile(band, [2, 98])
        stats.append({"min": float(band.min()), "max": float(band.max()),
                      "mean": float(band.mean()), "std": float(band.std()),
                      "p02": float(p02), "p98": float(p98), "count": int(band.size)})
    return stats
