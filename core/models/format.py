"""The LandFusion model format: one ONNX file that describes itself.

A LandFusion model is a single ``.onnx`` file. Its description (the *model card*) is stored in
the model's ``metadata_props`` as three entries:

=============================  ==================================================================
``landfusion.format``          ``"landfusion-model"``
``landfusion.format_version``  ``"2"``
``landfusion.card``            the card as one JSON document (see :class:`ModelCard`)
=============================  ==================================================================

The format is documented once, for users and for code that writes models, in
``resources/models/README.md``. This module defines the card (:class:`ModelCard`, its JSON form,
the tasks); the other modules of the package do one thing each with it::

    card = build_card(task, bands, classes, **entries)  # .card: made and checked
    card = read_model(path)                             # .reading: or ModelError naming the fix
    write_model(onnx_model_or_path, card, path)         # .writing
    band_statistics(values, band_axis)                  # .statistics: for ``band_stats``

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
#: Normalisation entries of the card, and their neutral values.
NORMALISATION = ("offset", "scale", "clip_min", "clip_max", "mean", "std")
NORMALISATION_DEFAULTS = {"offset": 0.0, "scale": 1.0, "clip_min": None, "clip_max": None,
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
        for key in NORMALISATION:
            attr = normalisation_field(key)
            setattr(self, attr, fill(getattr(self, attr), NORMALISATION_DEFAULTS[key]))
        self.classes = [c if isinstance(c, ClassInfo) else class_info(c, i, "The model")
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
        for key in NORMALISATION:
            values = getattr(self, normalisation_field(key))
            if not all(v == NORMALISATION_DEFAULTS[key] for v in values):
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


def normalisation_field(key: str) -> str:
    """The :class:`ModelCard` field of a normalisation entry (``mean`` is ``input_mean``)."""
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


def class_info(item, index: int, what: str) -> ClassInfo:
    """One class of a card from a name or ``{"value", "name", "color"}`` (colour from the
    palette when not given)."""
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
