"""Building and checking model cards: the one validator of every entry of the format.

:func:`build_card` makes a :class:`~.format.ModelCard` from plain values (training code, the
metadata script, format-1 files); :func:`card_from_json` from the JSON document stored in a
format-2 file. Both raise :class:`~landfusion.core.errors.ModelError` naming the invalid entry.
"""

from __future__ import annotations

import json
from typing import Mapping, Optional, Sequence

from ..errors import ModelError
from ..io.classmap import ClassInfo
from .format import (
    NORMALISATION, NORMALISATION_DEFAULTS, OUTPUT_TYPES, PATCH_CLASSIFIER, PIXEL_CLASSIFIER,
    TASKS, UNITS, ModelCard, class_info, normalisation_field, normalise_unit,
)

#: Free-text entries of a card, and the two output names with their defaults.
_TEXT_ENTRIES = ("name", "description", "version", "license", "author", "created", "crs",
                 "input_name", "output_name")
_OUTPUT_NAMES = (("label_output", "label"), ("probability_output", "probabilities"))
#: Entries that are JSON objects.
_SECTIONS = ("training", "metrics", "extra", "software")


def json_entry(key: str, text: str, what: str):
    """Parses the JSON text of entry ``key``.

    Raises:
        ModelError: naming the entry when the text is not valid JSON.
    """
    try:
        return json.loads(text)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{what}: '{key}' is not valid JSON ({exc}): {text!r}.") from exc


def parse_classes(raw, what: str = "The model") -> list:
    """Parses classes (JSON text or list of ``{"value", "name", "color"}`` or plain names)."""
    value = json_entry("classes", raw, what) if isinstance(raw, str) else raw
    if not isinstance(value, list) or not value:
        raise ModelError(f"{what}: 'classes' must be a non-empty list of "
                         '{"value": 1, "name": "water", "color": "#1f78b4"} objects.')
    classes = [c if isinstance(c, ClassInfo) else class_info(c, i, what)
               for i, c in enumerate(value)]
    values = [c.value for c in classes]
    duplicates = sorted({v for v in values if values.count(v) > 1})
    if duplicates:
        raise ModelError(f"{what}: class value(s) {duplicates} appear more than once in 'classes'.")
    return classes


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


def _per_band(key: str, raw, count: int, what: str) -> list:
    default = NORMALISATION_DEFAULTS[key]
    if raw is None or raw == "" or raw == []:
        return [default] * count
    value = json_entry(key, raw, what) if isinstance(raw, str) else raw
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


# --- the steps of build_card, in the order their checks run ---------------------------------------

def _check_known(values: Mapping, what: str) -> None:
    unknown = sorted(set(values) - set(ModelCard.__dataclass_fields__))
    if unknown:
        raise ModelError(f"{what}: unknown model card entr{'y' if len(unknown) == 1 else 'ies'} "
                         f"{', '.join(unknown)}.")


def _task(task, what: str) -> str:
    task = str(task or "").strip().lower()
    task = {"patch_classification": PATCH_CLASSIFIER}.get(task, task)
    if task not in TASKS:
        raise ModelError(f"{what}: task {task!r} is unknown; use one of {', '.join(TASKS)}.")
    return task


def _band_names(bands, task: str, what: str) -> list:
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
    return bands


def _normalisation(values: Mapping, count: int, what: str) -> dict:
    fields = {normalisation_field(key): _per_band(key, values.get(normalisation_field(key)),
                                                  count, what)
              for key in NORMALISATION}
    if any(s is None or s == 0 for s in fields["input_std"]):
        raise ModelError(f"{what}: normalisation 'std' must be non-zero for every band.")
    if any(s is None for s in fields["input_scale"] + fields["input_offset"] +
           fields["input_mean"]):
        raise ModelError(f"{what}: normalisation 'offset', 'scale' and 'mean' cannot be null.")
    for lo, hi in zip(fields["clip_min"], fields["clip_max"]):
        if lo is not None and hi is not None and lo > hi:
            raise ModelError(f"{what}: 'clip_min' ({lo}) is above 'clip_max' ({hi}).")
    return fields


def _band_lists(fields: Mapping, bands: list, what: str) -> dict:
    """Units (checked against :data:`UNITS`) and training statistics, one per band."""
    count = len(bands)
    for key in ("band_units", "band_roles", "band_stats"):
        given = fields.get(key)
        if given and len(given) != count:
            raise ModelError(f"{what}: '{key}' has {len(given)} entries for {count} bands.")
    units = [normalise_unit(u) for u in fields.get("band_units") or [""] * count]
    strange = [u for u in units if u not in UNITS]
    if strange:
        raise ModelError(f"{what}: unknown band unit(s) {', '.join(strange)}; use "
                         f"{', '.join(u for u in UNITS if u)}.")
    result = {"band_units": units}
    if fields.get("band_stats"):
        result["band_stats"] = [_parse_stats(s, what, b)
                                for s, b in zip(fields["band_stats"], bands)]
    return result


def _nodata_and_pixel_size(values: Mapping, what: str) -> dict:
    fields = {}
    raw_nodata = values.get("nodata_values")
    if raw_nodata not in (None, "", []):
        raw_nodata = json_entry("nodata_values", raw_nodata, what) \
            if isinstance(raw_nodata, str) else raw_nodata
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
    return fields


def _outputs_and_tiling(values: Mapping, what: str) -> dict:
    output_type = str(values.get("output_type") or "logits").strip().lower()
    if output_type not in OUTPUT_TYPES:
        raise ModelError(f"{what}: 'output_type' is {output_type!r}; use logits or probabilities.")
    fields = {"output_type": output_type}
    for key, default, minimum in (("tile_size", 256, 1), ("tile_overlap", None, 0),
                                  ("size_divisor", 1, 1), ("patch_size", None, 1),
                                  ("patch_stride", None, 1)):
        fields[key] = _int_value(key, values.get(key), default, what, minimum)
    if fields["tile_overlap"] is not None and fields["tile_overlap"] >= fields["tile_size"]:
        raise ModelError(f"{what}: 'tile_overlap' ({fields['tile_overlap']}) must be smaller than "
                         f"'tile_size' ({fields['tile_size']}).")
    if values.get("output_nodata") is not None:
        fields["output_nodata"] = _int_value("output_nodata", values["output_nodata"], None, what)
    return fields


def _texts_and_sections(values: Mapping, what: str) -> dict:
    fields = {key: str(values.get(key) or "") for key in _TEXT_ENTRIES}
    for key, default in _OUTPUT_NAMES:
        fields[key] = str(values.get(key) or default)
    for key in _SECTIONS:
        value = values.get(key) or {}
        if not isinstance(value, Mapping):
            raise ModelError(f"{what}: '{key}' must be an object.")
        fields[key] = dict(value)
    return fields


def build_card(task: str, bands: Sequence[str], classes, what: str = "The model",
               **values) -> ModelCard:
    """Builds a :class:`ModelCard` from plain values and checks it (the one validator).

    ``values`` are any :class:`ModelCard` fields; normalisation entries may be one number for all
    bands. Unknown names raise ``ModelError`` (a typo must not be silently dropped).

    Raises:
        ModelError: naming the invalid entry.
    """
    _check_known(values, what)
    task = _task(task, what)
    bands = _band_names(bands, task, what)
    fields = {k: v for k, v in values.items() if v is not None}
    fields.update(_normalisation(values, len(bands), what))
    fields.update(_band_lists(fields, bands, what))
    fields.update(_nodata_and_pixel_size(values, what))
    fields.update(_outputs_and_tiling(values, what))
    fields.update(_texts_and_sections(values, what))
    return ModelCard(task=task, bands=bands, classes=parse_classes(classes, what), **fields)


def _bands_from_json(raw_bands, what: str) -> tuple:
    """``(names, units, roles, stats)`` of the card's ``bands`` (objects or plain names)."""
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
    return names, units, roles, stats


def card_from_json(doc: Mapping, what: str = "The model") -> ModelCard:
    """Builds and checks a card from the JSON document (see :meth:`ModelCard.to_json`).

    Raises:
        ModelError: naming the entry that is missing or wrong.
    """
    if not isinstance(doc, Mapping):
        raise ModelError(f"{what}: the LandFusion card is not a JSON object.")
    missing = [k for k in ("task", "bands", "classes") if not doc.get(k)]
    if missing:
        raise ModelError(f"{what}: the LandFusion card lacks {', '.join(missing)}.")
    names, units, roles, stats = _bands_from_json(doc["bands"], what)
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
    for key in NORMALISATION:
        values[normalisation_field(key)] = normalisation.get(key)
    return build_card(what=what, format_version=int(doc.get("format_version", 2)), **values)
