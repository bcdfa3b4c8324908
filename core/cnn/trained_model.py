"""The trained model: its model card (bands with their training statistics, classes,
normalisation, tiling, training summary and validation figures), its ONNX export checked against
the network in onnxruntime, and the model file written with the training report (both or
neither). Trained networks run in ``landfusion:cnnclassify`` without PyTorch.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np

from ..errors import ModelError
from ..models.card import build_card
from ..models.format import ModelCard
from ..models.statistics import band_statistics
from ..models.writing import write_model
from .training_options import TrainingOptions

#: Softmax probabilities of the ONNX model and of the trained network must agree this closely.
EXPORT_TOLERANCE = 1e-4


def build_metadata(samples, stats: dict, options: TrainingOptions, arch, report: dict,
                   train_mask=None) -> ModelCard:
    """The model card of a trained network (the one place that composes it): bands in order with
    their training statistics, classes, normalisation, tiling, and the training summary and
    validation metrics when ``report`` has them."""
    from ..sensors.units import infer_unit

    count = len(samples.bands)
    segmentation = samples.task == "segmentation"
    name = options.model_name or os.path.splitext(os.path.basename(options.output_model))[0]
    x = samples.x if train_mask is None else samples.x[train_mask]
    sample = x[: min(len(x), 64)]
    training, metrics = {}, {}
    if report:
        training = {"algorithm": "landfusion:traincnn", "architecture": report["architecture"],
                    "layout": report["layout"], "parameters": report["parameters"],
                    "settings": report["settings"], "samples": report["samples"],
                    "best_epoch": report["best_epoch"],
                    "training_seconds": report["training_seconds"],
                    "torch_version": report["torch_version"]}
        validation = report["validation"]
        metrics = {"method": f"held-out {options.validation} ({report['headline']})",
                   **{k: validation[k] for k in ("overall_accuracy", "kappa", "macro_f1",
                                                 "group_accuracy_mean", "per_class",
                                                 "confusion_matrix")}}
    return build_card(
        samples.task, list(samples.bands), list(samples.classes),
        band_units=[infer_unit(b, sample[:, i][np.isfinite(sample[:, i])])
                    for i, b in enumerate(samples.bands)],
        band_stats=band_statistics(x[:, :, ::4, ::4] if x.size > 4e7 else x, band_axis=1),
        input_offset=[0.0] * count, input_scale=[1.0] * count,
        clip_min=[_round(v) for v in stats["clip_min"]],
        clip_max=[_round(v) for v in stats["clip_max"]],
        input_mean=[_round(v) for v in stats["mean"]],
        input_std=[_round(v) for v in stats["std"]],
        nodata_values=[], nodata_fill=0.0, output_type="logits",
        tile_size=256, tile_overlap=64 if segmentation else None,
        size_divisor=arch.size_divisor if segmentation else 1,
        patch_size=None if segmentation else samples.patch_size,
        pixel_size=round(samples.pixel_size, 3) if samples.pixel_size else None,
        name=name, version="1",
        description=options.description or (
            f"{arch.label}, trained with landfusion:traincnn on {len(samples.inputs)} input(s); "
            f"validation {report.get('headline', '')}").strip(),
        training=training, metrics=metrics)


def _round(value: float) -> float:
    return float(f"{value:.6g}")


def save_model_metadata(onnx_path: str, card: ModelCard, output_path: str) -> str:
    """Writes the model card into the exported model at ``output_path``; every trained model's
    description goes through here."""
    return write_model(onnx_path, card, output_path)


def export_onnx(torch, network, example, path: str, segmentation: bool) -> None:
    """Exports the network (eval mode, CPU) to ONNX opset 17; dynamic batch axis, and dynamic
    height/width for segmentation."""
    import warnings

    network.eval()
    axes = {0: "batch", 2: "height", 3: "width"} if segmentation else {0: "batch"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(network, example, path, input_names=["input"],
                          output_names=["logits"],
                          dynamic_axes={"input": axes, "logits": axes if segmentation else
                                        {0: "batch"}},
                          opset_version=17, dynamo=False)


def compare_with_onnx(torch, network, path: str, x) -> float:
    """Largest absolute difference between the softmax probabilities of the ONNX model (in
    onnxruntime) and of the network (in torch) on ``x``."""
    import onnxruntime as ort

    from .tiling import softmax

    network.eval()
    with torch.no_grad():
        reference = torch.softmax(network(x), dim=1).numpy()
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    out = session.run(None, {"input": x.numpy()})[0]
    return float(np.abs(softmax(out.astype("float32")) - reference).max())


def normalise_samples(samples, metadata: ModelCard) -> np.ndarray:
    """Applies the model's own normalisation (the inference engine's Normaliser) to the samples."""
    from .batches import Normaliser

    normaliser = Normaliser(metadata, [None] * len(samples.bands))
    x = samples.x
    n, c, h, w = x.shape
    stacked = np.ascontiguousarray(x.transpose(1, 0, 2, 3)).reshape(c, n * h, w)
    out, _ = normaliser(stacked)
    return np.ascontiguousarray(out.reshape(c, n, h, w).transpose(1, 0, 2, 3))


def write_outputs(torch, network, example, metadata, summary, options, segmentation) -> None:
    """Exports, checks and writes the model and the report: both are written, or neither."""
    from ..io.outputs import atomic_output
    from .training_report import write_training_report

    folder = os.path.dirname(os.path.abspath(options.output_model))
    handle, exported = tempfile.mkstemp(prefix=".landfusion-export-", suffix=".onnx", dir=folder)
    os.close(handle)
    try:
        export_onnx(torch, network, example, exported, segmentation)
        difference = compare_with_onnx(torch, network, exported, example)
        summary["export_max_difference"] = difference
        if not difference <= EXPORT_TOLERANCE:
            raise ModelError(f"The exported ONNX model disagrees with the trained network "
                             f"(probabilities differ by up to {difference:.2g}, tolerance "
                             f"{EXPORT_TOLERANCE:g}); the model was not written.")
        with atomic_output(options.output_model, "Model file") as model_temp:
            save_model_metadata(exported, metadata, model_temp)
            if options.output_report:
                with atomic_output(options.output_report, "Report") as report_temp:
                    write_training_report(report_temp, summary)
    finally:
        if os.path.exists(exported):
            os.remove(exported)
