"""Reading model files: pickles and non-ONNX files refused first, then the card of any format.

:func:`read_model` reads the card without starting a session; files of format 1 (pixel
classifiers with ``landfusion.*`` keys, CNNs with bare keys) are converted to a card in memory.
"""

from __future__ import annotations

import json
import os
from typing import Mapping

from ..errors import ModelError
from .card import build_card, card_from_json, json_entry
from .format import CARD_KEY, FORMAT, FORMAT_VERSION, PIXEL_CLASSIFIER, PREFIX, ModelCard

_PICKLE_EXTENSIONS = (".pkl", ".pickle", ".joblib", ".sav", ".pk", ".p")


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


def load_onnx(path: str, weights: bool = False):
    """Loads an ONNX file (weights too when asked) after :func:`refuse_non_onnx`.

    Raises:
        ModelError: the file is corrupt, of another format, or has no graph.
    """
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
    return {p.key: p.value for p in load_onnx(path).metadata_props}


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
            card = card_from_json(json_entry("card", props[CARD_KEY], what), what)
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

