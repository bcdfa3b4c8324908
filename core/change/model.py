"""Change-model files: a scikit-learn classifier exported to ONNX with LandFusion metadata.

A change model is a LandFusion model (see :mod:`core.models.pixel_model`) of type
``change_model``. Its input is the feature vector of :mod:`features` (the feature names are the
model's ``band_names``); besides the usual ``label`` and ``probabilities`` outputs, the graph has
a ``change_probability`` output (1 - probability of the no-change class) so the detection engine
applies the decision threshold itself. The entry ``landfusion.change`` (JSON) holds what a user
of the model needs: the bands each date must have, the feature groups and window sizes, the
no-change class, the decision threshold chosen by grouped validation and how it was chosen.

All metadata is written by :func:`write_change_model` and read by :func:`read_change_model`.
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
                       extra: Optional[dict] = None) -> None:
    """Writes a change model with its metadata (the one place change-model metadata is made)."""
    from ..models.pixel_model import build_metadata, write_model

    change = {
        "before_bands": list(spec.bands),
        "after_bands": list(spec.bands),
        "features": spec.to_dict(),
        "no_change_class": int(no_change),
        "threshold": float(threshold),
        "threshold_method": threshold_method,
        "change_output": CHANGE_OUTPUT,
    }
    metadata = build_metadata(
        CHANGE_MODEL, spec.names(), classes, output_nodata=output_nodata, crs_wkt=crs_wkt,
        pixel_size=pixel_size,
        outputs={"label": "label", "probabilities": "probabilities", "change": CHANGE_OUTPUT},
        extra=dict(extra or {}, change=change))
    write_model(onnx_model, path, metadata, doc="LandFusion bi-temporal change model")


def read_change_model(path: str, threads: int = 0) -> tuple:
    """Opens a change model; returns ``(session, info, change)``.

    ``change`` is the parsed ``landfusion.change`` entry with ``spec`` (a FeatureSpec) added.

    Raises:
        ModelError: not a LandFusion change model, or damaged metadata.
    """
    from ..models.pixel_model import open_model, read_model_info

    info = read_model_info(path, expected_type=None)
    if info.model_type != CHANGE_MODEL:
        raise ModelError(
            f"'{path}' is a LandFusion '{info.model_type}' model, not a change model. Train one "
            "with 'Train change model' (landfusion:trainchangemodel), or use change-vector "
            "analysis, log-ratio or index difference, which need no model.")
    change = info.json("change")
    try:
        spec = FeatureSpec.from_dict(change["features"])
        threshold = float(change["threshold"])
        int(change["no_change_class"])
    except (TypeError, KeyError, ValueError) as exc:
        raise ModelError(f"The change metadata of '{path}' is damaged ({exc}); retrain the "
                         "model.") from exc
    if spec.names() != info.band_names:
        raise ModelError(f"The change metadata of '{path}' does not match its inputs; retrain "
                         "the model.")
    if not 0.0 <= threshold <= 1.0:
        raise ModelError(f"'{path}' stores the threshold {threshold}, outside 0-1.")
    session, info = open_model(path, threads, expected_type=CHANGE_MODEL)
    if CHANGE_OUTPUT not in [o.name for o in session.get_outputs()]:
        raise ModelError(f"'{path}' has no '{CHANGE_OUTPUT}' output; retrain the model.")
    change["spec"] = spec
    return session, info, change


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
