"""Change-model files: a scikit-learn classifier exported to ONNX with LandFusion metadata.

A change model is a LandFusion model (one format, :mod:`core.models.format`) of task
``change_model``. Its input is the feature vector of :mod:`features` (the feature names are the
card's ``bands``); besides the usual ``label`` and ``probabilities`` outputs, the graph has
a ``change_probability`` output (1 - probability of the no-change class) so the detection engine
applies the decision threshold itself. The card's ``extra.change`` entry holds what a user
of the model needs: the bands each date must have, the feature groups and window sizes, the
no-change class, the decision threshold chosen by grouped validation and how it was chosen.

The card is written by :func:`write_change_model` and read by :func:`read_change_model`.
"""

from __future__ import annotations

import json
from typing import Optional, Sequence

import numpy as np

from ..errors import ModelError
from ..io.classmap import ClassInfo
from .features import FeatureSpec

CHANGE_MODEL = "change_model"
CHANGE_OUTPUT = "change_probability"


def add_change_output(onnx_model, no_change_index: int):
    """Adds the ``change_probability`` output (float32 [N]) to a converted classifier graph."""
    from onnx import TensorProto, helper

    graph = onnx_model.graph
    graph.initializer.extend([
        helper.make_tensor("lf_no_change_index", TensorProto.INT64, [1], [int(no_change_index)]),
        helper.make_tensor("lf_one", TensorProto.FLOAT, [], [1.0]),
        helper.make_tensor("lf_flat", TensorProto.INT64, [1], [-1]),
    ])
    graph.node.extend([
        helper.make_node("Gather", ["probabilities", "lf_no_change_index"], ["lf_no_change"],
                         axis=1),
        helper.make_node("Reshape", ["lf_no_change", "lf_flat"], ["lf_no_change_flat"]),
        helper.make_node("Sub", ["lf_one", "lf_no_change_flat"], [CHANGE_OUTPUT]),
    ])
    graph.output.append(helper.make_tensor_value_info(CHANGE_OUTPUT, TensorProto.FLOAT, [None]))
    return onnx_model


def write_change_model(onnx_model, path: str, spec: FeatureSpec, classes: Sequence[ClassInfo],
                       no_change: int, threshold: float, threshold_method: str,
                       output_nodata: int, crs_wkt: str = "", pixel_size=None,
                       extra: Optional[dict] = None, band_stats=None) -> None:
    """Writes a change model with its card (the one place change-model metadata is made)."""
    from ..models.card import build_card
    from ..models.format import CHANGE_MODEL as TASK
    from ..models.writing import write_model

    change = {
        "before_bands": list(spec.bands),
        "after_bands": list(spec.bands),
        "features": spec.to_dict(),
        "no_change_class": int(no_change),
        "threshold": float(threshold),
        "threshold_method": threshold_method,
        "change_output": CHANGE_OUTPUT,
    }
    extra = dict(extra or {})
    card = build_card(
        TASK, spec.names(), list(classes), input_name="X", output_name=CHANGE_OUTPUT,
        output_type="probabilities", output_nodata=output_nodata, crs=crs_wkt or "",
        band_stats=band_stats or [],
        metrics=extra.pop("scores", {}), training=extra, extra={"change": change},
        description="LandFusion bi-temporal change model: features of a BEFORE/AFTER pair in, "
                    "change probability out")
    write_model(onnx_model, card, path)


def read_change_model(path: str, threads: int = 0) -> tuple:
    """Opens a change model; returns ``(session, card, change)``.

    ``change`` is the card's ``change`` entry with ``spec`` (a FeatureSpec) added.

    Raises:
        ModelError: not a LandFusion change model (naming the algorithm that runs it), or
            damaged metadata.
    """
    import onnxruntime as ort

    from ..models.format import CHANGE_MODEL as TASK, require_task
    from ..models.reading import read_model
    from ..models.pixel_model import session_options

    card = read_model(path)
    require_task(card, (TASK,), "Change detection")
    change = dict(card.extra.get("change") or {})
    try:
        spec = FeatureSpec.from_dict(change["features"])
        threshold = float(change["threshold"])
        int(change["no_change_class"])
    except (TypeError, KeyError, ValueError) as exc:
        raise ModelError(f"The change metadata of '{path}' is damaged ({exc}); retrain the "
                         "model.") from exc
    if spec.names() != list(card.bands):
        raise ModelError(f"The change metadata of '{path}' does not match its inputs; retrain "
                         "the model.")
    if not 0.0 <= threshold <= 1.0:
        raise ModelError(f"'{path}' stores the threshold {threshold}, outside 0-1.")
    try:
        session = ort.InferenceSession(path, sess_options=session_options(threads),
                                       providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ModelError(f"'{path}' cannot be loaded as an ONNX model: {exc}") from exc
    outputs = [o.name for o in session.get_outputs()]
    for needed in (CHANGE_OUTPUT, card.probability_output):
        if needed not in outputs:
            raise ModelError(f"'{path}' has no '{needed}' output; retrain the model.")
    card.input_name = card.input_name or session.get_inputs()[0].name
    change["spec"] = spec
    return session, card, change


def predict_change(session, info, X: np.ndarray) -> tuple:
    """Runs a change model on ``(N, features)``; returns (change probability, probabilities)."""
    if X.shape[0] == 0:
        return np.zeros(0, np.float32), np.zeros((0, len(info.classes)), np.float32)
    change, probabilities = session.run([CHANGE_OUTPUT, info.probability_output],
                                        {info.input_name: np.ascontiguousarray(X, np.float32)})
    return np.clip(change, 0.0, 1.0), probabilities


def describe(change: dict) -> str:
    """Returns a one-line description of a change model's needs, for logs."""
    return (f"bands per date: {', '.join(change['before_bands'])}; threshold "
            f"{change['threshold']:.3f} ({change.get('threshold_method', '?')}); "
            f"features: {json.dumps(change['features']['groups'])} at windows "
            f"{change['features'].get('scales')}")
