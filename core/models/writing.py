"""Writing model files: the card checked against the graph, then saved atomically."""

from __future__ import annotations

import json
import os
from typing import Optional

from ..errors import ModelError
from .card import card_from_json
from .format import (
    CARD_KEY, FORMAT, FORMAT_VERSION, PIXEL_CLASSIFIER, PREFIX, TASK_NAMES, ModelCard,
)
from .reading import load_onnx

#: Format-1 entries of CNNs (bare keys), removed when a model is written as format 2.
_FORMAT1_KEYS = {"task", "bands", "classes", "format_version", "name", "description", "version",
                 "license", "author", "input_offset", "input_scale", "clip_min", "clip_max",
                 "input_mean", "input_std", "nodata_values", "nodata_fill", "output_type",
                 "tile_size", "tile_overlap", "size_divisor", "patch_size", "patch_stride",
                 "pixel_size", "input_name", "output_name"}


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
        model = load_onnx(source, weights=True)
        path = path or source
    else:
        copied = onnx.ModelProto()
        copied.CopyFrom(model)
        model = copied
    if not path:
        raise ModelError("write_model needs the path of the .onnx file to write.")
    card = card_from_json(card.to_json(), "The model card to write")  # validate
    check_graph(card, model, f"'{os.path.basename(path)}'")
    kept = [(p.key, p.value) for p in model.metadata_props
            if not p.key.startswith(PREFIX) and p.key not in _FORMAT1_KEYS]
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
