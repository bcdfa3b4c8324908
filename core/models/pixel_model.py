"""LandFusion model files: ONNX graphs that describe themselves.

A LandFusion model is a single ``.onnx`` file. Everything a consumer needs to use it correctly is
stored as string entries in the model's ``metadata_props`` under keys starting with
``landfusion.`` (JSON where the value is structured):

=============================  ==================================================================
``landfusion.format``          ``"landfusion-model"`` (marks a LandFusion file)
``landfusion.format_version``  ``"1"``
``landfusion.model_type``      ``"pixel_classifier"`` (one pixel's bands in, one class out);
                               other consumers (e.g. patch CNNs) use their own type
``landfusion.band_count``      number of input bands
``landfusion.band_names``      JSON list of the input band names in order ('' where unnamed)
``landfusion.classes``         JSON list of ``{"value", "name", "color"}`` in the order of the
                               probability columns
``landfusion.nodata``          JSON: ``input`` (per-band nodata of the training raster),
                               ``output`` (class raster nodata) and ``policy``
``landfusion.input_name``      name of the float32 input tensor (shape [N, band_count])
``landfusion.outputs``         JSON: ``label`` and ``probabilities`` output names
``landfusion.crs``             WKT of the training raster's CRS
``landfusion.pixel_size``      JSON ``[x, y]`` pixel size of the training raster
``landfusion.algorithm``       e.g. ``"Random Forest"``; ``landfusion.parameters`` JSON
``landfusion.scores``          JSON validation summary (OA, kappa, macro-F1, method)
``landfusion.versions``        JSON library versions used to train and export
``landfusion.created``         ISO-8601 UTC time
=============================  ==================================================================

Models are never pickles: pickled files can run arbitrary code when loaded, so they are detected
and refused before any parsing.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
from dataclasses import dataclass, field
from typing import Optional, Sequence

from ..io.classmap import ClassInfo
from ..errors import ModelError

FORMAT = "landfusion-model"
FORMAT_VERSION = "1"
PIXEL_CLASSIFIER = "pixel_classifier"
PREFIX = "landfusion."

#: Opsets that onnxruntime >= 1.16 runs and that hold every scikit-learn converter we use.
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}

_PICKLE_EXTENSIONS = (".pkl", ".pickle", ".joblib", ".sav", ".pk", ".p")


@dataclass
class ModelInfo:
    """The metadata of a LandFusion model file, parsed and checked."""

    path: str
    model_type: str
    band_names: list
    classes: list
    input_name: str
    label_output: str
    probability_output: str
    output_nodata: Optional[int]
    metadata: dict = field(default_factory=dict)

    @property
    def band_count(self) -> int:
        """Number of input bands the model needs."""
        return len(self.band_names)

    def json(self, key: str, default=None):
        """Returns a JSON metadata entry (without the prefix) parsed, or ``default``."""
        text = self.metadata.get(PREFIX + key)
        if text is None:
            return default
        try:
            return json.loads(text)
        except ValueError:
            return default


def library_versions() -> dict:
    """Returns the versions of the libraries that train, export and run models."""
    versions = {}
    for name in ("numpy", "sklearn", "skl2onnx", "onnx", "onnxruntime"):
        with contextlib.suppress(Exception):
            module = __import__(name)
            versions["scikit-learn" if name == "sklearn" else name] = module.__version__
    with contextlib.suppress(Exception):
        from osgeo import gdal

        versions["gdal"] = gdal.__version__
    from ..paths import METADATA_TXT as metadata_txt

    with contextlib.suppress(OSError):
        with open(metadata_txt, encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("version="):
                    versions["landfusion"] = line.split("=", 1)[1].strip()
    return versions


def build_metadata(
    model_type: str,
    band_names: Sequence[str],
    classes: Sequence[ClassInfo],
    input_name: str = "X",
    outputs: Optional[dict] = None,
    input_nodata: Optional[Sequence] = None,
    output_nodata: Optional[int] = None,
    crs_wkt: str = "",
    pixel_size: Optional[Sequence[float]] = None,
    extra: Optional[dict] = None,
) -> dict:
    """Returns the ``metadata_props`` entries of a LandFusion model (all values strings).

    ``extra`` adds entries (key without prefix; non-string values are stored as JSON).
    """
    entries = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_type": model_type,
        "band_count": str(len(band_names)),
        "band_names": json.dumps(list(band_names)),
        "classes": json.dumps([c.to_dict() for c in classes]),
        "input_name": input_name,
        "outputs": json.dumps(outputs or {"label": "label", "probabilities": "probabilities"}),
        "nodata": json.dumps({
            "input": list(input_nodata) if input_nodata is not None else None,
            "output": output_nodata,
            "policy": "pixels where any band is nodata, NaN or infinite are written as the "
                      "output nodata",
        }),
        "crs": crs_wkt or "",
        "pixel_size": json.dumps(list(pixel_size) if pixel_size is not None else None),
        "versions": json.dumps(library_versions()),
        "created": datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat(),
    }
    for key, value in (extra or {}).items():
        entries[key] = value if isinstance(value, str) else json.dumps(value)
    return {PREFIX + k: v for k, v in entries.items()}


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


def write_model(model, path: str, metadata: dict, doc: str = "") -> None:
    """Embeds ``metadata`` into an ONNX model and writes it atomically to ``path``."""
    import onnx

    from ..io.raster import atomic_output

    del model.metadata_props[:]
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key = key
        entry.value = str(value)
    model.producer_name = "LandFusion"
    if doc:
        model.doc_string = doc
    with atomic_output(path, "Model file") as temp:
        onnx.save_model(model, temp)


def _refuse_non_onnx(path: str) -> None:
    """Raises ModelError for missing files, pickles and other obvious non-ONNX files."""
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
            "trained with 'Train classifier' (landfusion:trainclassifier).")
    if not head:
        raise ModelError(f"Model file '{path}' is empty.")
    if head.startswith((b"\x89HDF", b"PK\x03\x04", b"\x1f\x8b", b"{", b"<")):
        raise ModelError(
            f"'{os.path.basename(path)}' is not an ONNX file (HDF5, zip, gzip, JSON or XML "
            "content). Use a .onnx model trained with 'Train classifier'.")


def parse_metadata(metadata: dict, path: str, expected_type: Optional[str] = PIXEL_CLASSIFIER
                   ) -> ModelInfo:
    """Checks LandFusion metadata (``metadata_props`` as a dict) and returns it parsed.

    Raises:
        ModelError: not a LandFusion model, a model of another type, or damaged metadata.
    """
    name = os.path.basename(path)
    if metadata.get(PREFIX + "format") != FORMAT:
        raise ModelError(
            f"'{name}' is an ONNX model but not a LandFusion model (it has no LandFusion "
            "metadata: band names, classes). Train a model with 'Train classifier' "
            "(landfusion:trainclassifier), or use a model made for LandFusion.")
    version = metadata.get(PREFIX + "format_version", "")
    if version != FORMAT_VERSION:
        raise ModelError(
            f"'{name}' uses LandFusion model format version {version or '?'}, which this version "
            f"of LandFusion does not read (it reads version {FORMAT_VERSION}). Update LandFusion "
            "or retrain the model.")
    model_type = metadata.get(PREFIX + "model_type", "")
    if expected_type and model_type != expected_type:
        raise ModelError(
            f"'{name}' is a LandFusion model of type '{model_type}', but a '{expected_type}' is "
            "needed here.")
    try:
        band_names = json.loads(metadata[PREFIX + "band_names"])
        band_count = int(metadata[PREFIX + "band_count"])
        classes = [ClassInfo.from_dict(c) for c in json.loads(metadata[PREFIX + "classes"])]
        outputs = json.loads(metadata.get(PREFIX + "outputs", "{}")) or {}
        nodata = json.loads(metadata.get(PREFIX + "nodata", "{}")) or {}
    except (KeyError, ValueError, TypeError) as exc:
        raise ModelError(f"The LandFusion metadata of '{name}' is damaged ({exc}); retrain or "
                         "re-export the model.") from exc
    if len(band_names) != band_count or band_count < 1:
        raise ModelError(f"The LandFusion metadata of '{name}' is inconsistent: {band_count} bands "
                         f"but {len(band_names)} band names.")
    if not classes:
        raise ModelError(f"The LandFusion model '{name}' lists no classes.")
    return ModelInfo(
        path=path,
        model_type=model_type,
        band_names=[str(b) for b in band_names],
        classes=classes,
        input_name=metadata.get(PREFIX + "input_name", "X"),
        label_output=outputs.get("label", "label"),
        probability_output=outputs.get("probabilities", "probabilities"),
        output_nodata=nodata.get("output"),
        metadata=dict(metadata),
    )


def read_model_info(path: str, expected_type: Optional[str] = PIXEL_CLASSIFIER) -> ModelInfo:
    """Reads and checks the metadata of a LandFusion ONNX file without building a session.

    Raises:
        ModelError: missing file, pickle, corrupt or non-ONNX file, or not a LandFusion model.
    """
    _refuse_non_onnx(path)
    import onnx

    try:
        model = onnx.load_model(path, load_external_data=False)
    except Exception as exc:  # protobuf raises DecodeError and friends
        raise ModelError(
            f"'{os.path.basename(path)}' is not a valid ONNX file (corrupt or another format): "
            f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}.") from exc
    if not model.graph.node:
        raise ModelError(f"'{os.path.basename(path)}' is not a valid ONNX model (it has no graph; "
                         "the file is corrupt or of another format).")
    metadata = {p.key: p.value for p in model.metadata_props}
    return parse_metadata(metadata, path, expected_type)


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


def open_model(path: str, threads: int = 0, expected_type: Optional[str] = PIXEL_CLASSIFIER):
    """Opens a LandFusion ONNX model for inference.

    Returns:
        ``(session, info)``: the onnxruntime session and the checked :class:`ModelInfo`.

    Raises:
        ModelError: see :func:`read_model_info`; also when the graph's inputs and outputs do not
            match the metadata.
    """
    _refuse_non_onnx(path)
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(path, sess_options=session_options(threads),
                                       providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidProtobuf types
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(f"'{os.path.basename(path)}' cannot be loaded as an ONNX model (corrupt "
                         f"or another format): {first}") from exc
    metadata = dict(session.get_modelmeta().custom_metadata_map)
    info = parse_metadata(metadata, path, expected_type)
    inputs = session.get_inputs()
    if [i.name for i in inputs] != [info.input_name]:
        raise ModelError(f"'{os.path.basename(path)}' has inputs {[i.name for i in inputs]} but "
                         f"its metadata names '{info.input_name}'.")
    shape = inputs[0].shape
    if len(shape) != 2 or (isinstance(shape[1], int) and shape[1] != info.band_count):
        raise ModelError(f"'{os.path.basename(path)}' takes input shape {shape}, not "
                         f"[N, {info.band_count}] as its metadata says.")
    outputs = [o.name for o in session.get_outputs()]
    for needed in (info.label_output, info.probability_output):
        if needed not in outputs:
            raise ModelError(f"'{os.path.basename(path)}' has no output '{needed}' (it has "
                             f"{', '.join(outputs)}).")
    return session, info
