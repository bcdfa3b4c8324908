"""Pixel classifiers: scikit-learn models exported to ONNX, and onnxruntime sessions to run them.

The model file format (the card embedded in every LandFusion ``.onnx``) lives in
:mod:`.format`; this module only converts fitted scikit-learn estimators and opens sessions.
"""

from __future__ import annotations

import contextlib
import os

from ..errors import ModelError
from .format import PIXEL_CLASSIFIER, require_task
from .reading import card_from_props, refuse_non_onnx

#: Opsets that onnxruntime >= 1.16 runs and that hold every scikit-learn converter we use.
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}


@contextlib.contextmanager
def _hist_gradient_boosting_fix():
    """Works around skl2onnx writing booleans into an integer ONNX attribute.

    With scikit-learn 1.2, skl2onnx passes the missing-value direction of HistGradientBoosting
    nodes as a bool, which onnx refuses for the integer attribute
    ``nodes_missing_value_tracks_true``; casting it to int is what the attribute means.
    """
    try:
        from skl2onnx.common import tree_ensemble
    except ImportError:  # pragma: no cover - layout of other skl2onnx versions
        yield
        return
    original = tree_ensemble.add_node

    def add_node(*args, nodes_missing_value_tracks_true=0, **kwargs):
        return original(*args, nodes_missing_value_tracks_true=int(nodes_missing_value_tracks_true),
                        **kwargs)

    tree_ensemble.add_node = add_node
    try:
        yield
    finally:
        tree_ensemble.add_node = original


def sklearn_to_onnx(estimator, band_count: int, input_name: str = "X"):
    """Converts a fitted scikit-learn classifier or pipeline to an ONNX model.

    The graph has one float32 input ``[N, band_count]`` and two outputs: ``label`` (int64 class
    values) and ``probabilities`` (float32 ``[N, n_classes]`` in the order of ``classes_``).
    """
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    with _hist_gradient_boosting_fix():
        model = to_onnx(
            estimator,
            initial_types=[(input_name, FloatTensorType([None, band_count]))],
            options={id(final): {"zipmap": False}},
            target_opset=TARGET_OPSET,
        )
    _drop_zero_leaf_weights(model)
    outputs = [o.name for o in model.graph.output]
    if outputs != ["label", "probabilities"]:
        raise ModelError(f"Unexpected outputs {outputs} after converting the model to ONNX.")
    return model


def _drop_zero_leaf_weights(model) -> None:
    """Removes the zero class weights of tree-ensemble leaves (in place).

    skl2onnx writes every class's weight for every leaf of a forest classifier, zeros included,
    and onnxruntime adds each of them to the pixel's scores at every leaf it reaches: with 6
    classes and mostly pure leaves, 5 of the 6 additions add 0. Leaving the zeros out gives the
    same sums (hence identical probabilities and labels) for a sixth of the work. Only done with
    more than two classes (onnxruntime treats a two-class ensemble with weights for a single class
    specially); every class keeps at least one entry.
    """
    for node in model.graph.node:
        if node.op_type != "TreeEnsembleClassifier" or node.domain != "ai.onnx.ml":
            continue
        attrs = {a.name: a for a in node.attribute}
        labels = attrs.get("classlabels_int64s") or attrs.get("classlabels_strings")
        needed = ("class_ids", "class_nodeids", "class_treeids", "class_weights")
        if labels is None or len(labels.ints) + len(labels.strings) <= 2 or \
                not all(k in attrs for k in needed) or not attrs["class_weights"].floats:
            continue
        weights = list(attrs["class_weights"].floats)
        ids = list(attrs["class_ids"].ints)
        keep = [w != 0.0 for w in weights]
        kept_classes = {c for c, k in zip(ids, keep) if k}
        for i, c in enumerate(ids):
            if c not in kept_classes:
                keep[i] = True
                kept_classes.add(c)
        if all(keep):
            continue
        for name in ("class_ids", "class_nodeids", "class_treeids"):
            values = [v for v, k in zip(attrs[name].ints, keep) if k]
            del attrs[name].ints[:]
            attrs[name].ints.extend(values)
        del attrs["class_weights"].floats[:]
        attrs["class_weights"].floats.extend([w for w, k in zip(weights, keep) if k])


def session_options(threads: int = 0):
    """Returns onnxruntime session options for CPU inference with ``threads`` (0: all cores)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = max(0, int(threads or 0))
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    # Block sizes vary (all-nodata pixels are left out); an arena would keep the largest block's
    # buffers for the whole run, plain allocations are returned after each block.
    options.enable_cpu_mem_arena = False
    # Idle onnxruntime workers spin by default; on a machine whose cores are busy with anything
    # else (QGIS rendering, GDAL, other processes) spinning threads starve the working ones and a
    # 2-thread session ran 2-3x slower than a 1-thread one. Without spinning it scales.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return options


def open_model(path: str, threads: int = 0, here: str = "Classify raster"):
    """Opens a LandFusion pixel classifier for inference.

    Returns:
        ``(session, card)``: the onnxruntime session and the checked :class:`ModelCard`.

    Raises:
        ModelError: see :func:`.format.read_model`; a model of another task (naming the
            algorithm that runs it); a graph that does not fit the card.
    """
    refuse_non_onnx(path)
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(path, sess_options=session_options(threads),
                                       providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidProtobuf types
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(f"'{os.path.basename(path)}' cannot be loaded as an ONNX model (corrupt "
                         f"or another format): {first}") from exc
    card = card_from_props(dict(session.get_modelmeta().custom_metadata_map),
                           f"'{os.path.basename(path)}'")
    card.path = path
    require_task(card, (PIXEL_CLASSIFIER,), here)
    inputs = session.get_inputs()
    input_name = card.input_name or inputs[0].name
    if [i.name for i in inputs] != [input_name]:
        raise ModelError(f"'{os.path.basename(path)}' has inputs {[i.name for i in inputs]} but "
                         f"its card names '{input_name}'.")
    card.input_name = input_name
    shape = inputs[0].shape
    if len(shape) != 2 or (isinstance(shape[1], int) and shape[1] != card.band_count):
        raise ModelError(f"'{os.path.basename(path)}' takes input shape {shape}, not "
                         f"[N, {card.band_count}] as its card says.")
    outputs = [o.name for o in session.get_outputs()]
    for needed in (card.label_output, card.probability_output):
        if needed not in outputs:
            raise ModelError(f"'{os.path.basename(path)}' has no output '{needed}' (it has "
                             f"{', '.join(outputs)}).")
    return session, card
