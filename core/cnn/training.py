"""Training CNNs (segmentation or patch classification) into LandFusion ONNX models.

PyTorch is optional: it is imported only here, only while training; without it
:func:`train_cnn` raises a :class:`DependencyError` saying how to install it. The trained network
is exported with ``torch.onnx.export``, checked against onnxruntime, and given LandFusion
metadata (bands by name, classes, normalisation from the training data, tile or patch size), so
``landfusion:cnnclassify`` runs it without PyTorch.

The run is deterministic on the CPU for a given seed: torch is seeded, deterministic kernels are
required, batches are drawn in the main thread from a seeded generator.
"""

from __future__ import annotations

import copy
import math
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from typing import Optional

import numpy as np

from ..errors import CancelledError, DependencyError, InputError, ModelError, NoDataError
from ..io.classmap import ClassInfo
from ..models.card import build_card
from ..models.format import ModelCard
from ..models.statistics import band_statistics
from ..models.writing import write_model
from ..runtime import (IsCancelled, Log, Progress, check_cancelled, never_cancelled, no_log,
                       no_progress, sub_progress)
from . import datasets
from .architectures import TASKS, arrange_bands, get_architecture

TORCH_VERSION = "2.13.0"


def install_torch_message() -> str:
    """How to install PyTorch (its CPU build), for the missing-torch error."""
    return (
        "Training CNNs needs PyTorch, which is not installed in the Python that runs QGIS. "
        f"Install its CPU build (no GPU needed): python3 -m pip install --user "
        f"\"torch=={TORCH_VERSION}\" --index-url https://download.pytorch.org/whl/cpu (on "
        "Debian 12 add "
        "--break-system-packages, or in a LandFusion checkout run 'make setup', which installs it "
        "into .venv), then restart QGIS. Running trained models (Classify raster with a CNN) "
        "needs no PyTorch.")


#: Softmax probabilities of the ONNX model and of the trained network must agree this closely.
EXPORT_TOLERANCE = 1e-4


class TrainingMemoryError(InputError):
    """Training ran out of memory."""


@dataclass
class TrainingOptions:
    """Everything one ``traincnn`` run needs; see :func:`train_cnn`."""

    output_model: str
    output_report: Optional[str] = None
    task: str = "segmentation"
    architecture: str = ""
    inputs: list = field(default_factory=list)
    labels: list = field(default_factory=list)
    label_nodata: Optional[float] = None
    training: Optional[str] = None
    class_field: Optional[str] = None
    patch_folder: Optional[str] = None
    bands: Optional[list] = None
    input_band_names: Optional[list] = None
    patch_size: int = 64
    epochs: int = 30
    batch_size: int = 16
    learning_rate: float = 1e-3
    augment: bool = True
    seed: int = 42
    validation: str = "inputs"
    validation_fraction: float = 0.2
    validation_block: int = 0
    patience: int = 8
    width: int = 16
    threads: int = 0
    device: str = "auto"
    class_names: Optional[dict] = None
    model_name: str = ""
    description: str = ""

    def settings(self) -> dict:
        """The settings as written in the report and the model card."""
        return {k: v for k, v in asdict(self).items() if v not in (None, [], "")}


def parse_class_names(text) -> dict:
    """Parses ``"0:land:#d9c9a3,1:water:#1f78b4"`` (colour optional) into ``{value: (name,
    colour or None)}``.

    Raises:
        InputError: for an entry without a numeric value and a name.
    """
    if not text:
        return {}
    if isinstance(text, dict):
        return text
    result = {}
    for item in (p.strip() for p in str(text).split(",") if p.strip()):
        parts = [p.strip() for p in item.split(":")]
        try:
            value = int(parts[0])
        except ValueError:
            raise InputError(f"Class names must read value:name or value:name:#rrggbb, "
                             f"e.g. 0:land:#d9c9a3,1:water; got '{item}'.") from None
        if len(parts) < 2 or not parts[1]:
            raise InputError(f"Class names: '{item}' has no name (write value:name).")
        result[value] = (parts[1], parts[2] if len(parts) > 2 and parts[2] else None)
    return result


def _name_classes(samples, names: dict) -> None:
    from ..io.classmap import parse_color

    classes = []
    for c in samples.classes:
        if c.value in names:
            name, colour = names[c.value]
            classes.append(ClassInfo(c.value, name, parse_color(colour) if colour else c.color))
        else:
            classes.append(c)
    samples.classes = classes


def import_torch():
    """Imports PyTorch or raises :class:`DependencyError` with install instructions."""
    try:
        import torch
    except ImportError as exc:
        raise DependencyError(install_torch_message()) from exc
    return torch


def _clean_list(values) -> Optional[list]:
    if values is None:
        return None
    if isinstance(values, str):
        values = values.split(",")
    values = [str(v).strip() for v in values if str(v).strip()]
    return values or None


def check_training_inputs(options: TrainingOptions) -> dict:
    """Checks parameters, outputs and input headers without reading pixels or loading torch.

    Returns:
        ``{"architecture": Architecture, ...}`` with what was found.

    Raises:
        InputError (and subclasses) naming the problem and its fix.
    """
    from ..io import raster as raster_io
    from ..io.outputs import check_writable

    task = options.task
    if task not in TASKS:
        raise InputError(f"Unknown task '{task}'; use segmentation or patch_classification.")
    arch = get_architecture(options.architecture, task)
    for name, value, low in (("Epochs", options.epochs, 1), ("Batch size", options.batch_size, 1),
                             ("Patch size", options.patch_size, 8), ("Width", options.width, 4)):
        if int(value) < low:
            raise InputError(f"{name} must be at least {low}, got {value}.")
    if not options.learning_rate > 0:
        raise InputError(f"The learning rate must be positive, got {options.learning_rate}.")
    if options.validation not in datasets.VALIDATION_MODES:
        raise InputError(f"Unknown validation '{options.validation}'; use inputs or blocks.")
    if task == "segmentation" and options.patch_size % arch.size_divisor:
        divisor = arch.size_divisor
        raise InputError(f"The {arch.label} needs a patch size that is a multiple of {divisor}; "
                         f"{options.patch_size} is not (try "
                         f"{max(divisor, options.patch_size // divisor * divisor)}).")
    if not options.output_model or not options.output_model.lower().endswith(".onnx"):
        raise InputError("The output model must be a .onnx file.")
    outputs = [os.path.abspath(p) for p in (options.output_model, options.output_report) if p]
    if len(set(outputs)) != len(outputs):
        raise InputError("The model and the report must be different files.")
    sources = [*options.inputs, *options.labels, options.training or "", options.patch_folder or ""]
    sources = {os.path.abspath(s.split("|")[0]) for s in sources if s}
    clash = [p for p in outputs if p in sources]
    if clash:
        raise InputError(f"The output '{clash[0]}' would overwrite an input; choose another file.")
    for path in outputs:
        check_writable(path, "Output")
    parse_class_names(options.class_names)
    found = {"architecture": arch}
    if task == "patch_classification" and options.patch_folder:
        scan = datasets.scan_patch_folder(options.patch_folder, options.input_band_names,
                                          options.bands)
        found["bands"] = scan["bands"]
    else:
        if not options.inputs:
            raise InputError("Choose the input raster(s)" + (
                " or a patch folder." if task == "patch_classification" else "."))
        if task == "patch_classification" and not (options.training and options.class_field):
            raise InputError("Patch classification needs a patch folder, or input rasters with "
                             "labelled points (training layer and class field).")
        if task == "segmentation" and not options.labels and not (
                options.training and options.class_field):
            raise InputError("Segmentation needs label rasters (one per input) or training "
                             "polygons with a class field.")
        if options.labels and len(options.labels) != len(options.inputs):
            raise InputError(f"Give one label raster per input raster: {len(options.inputs)} "
                             f"input(s), {len(options.labels)} label raster(s), in the same order.")
        with raster_io.gdal_env():
            for i, path in enumerate(options.inputs):
                what = f"Input raster '{os.path.basename(path)}'"
                with raster_io.open_raster(path, "Input raster") as ds:
                    names = datasets.raster_band_names(ds, options.input_band_names, what)
                    _, picked = datasets._band_indexes(names, options.bands, what)
                    datasets._check_size(ds, options.patch_size, what)
                    found.setdefault("bands", picked)
                    if options.labels and task == "segmentation":
                        datasets.check_label_overlap(ds, options.labels[i])
    arrange_bands(arch.key, found["bands"])
    return found


def _read_samples(options: TrainingOptions, progress, is_cancelled, warn):
    if options.task == "segmentation":
        return datasets.segmentation_samples(
            options.inputs, options.patch_size, options.bands, options.input_band_names,
            options.labels or None, options.label_nodata, options.training, options.class_field,
            options.validation, options.validation_block, progress, is_cancelled, warn)
    if options.patch_folder:
        return datasets.folder_samples(options.patch_folder, options.bands,
                                       options.input_band_names, progress, is_cancelled)
    return datasets.point_samples(options.inputs, options.training, options.class_field,
                                  options.patch_size, options.bands, options.input_band_names,
                                  options.validation, options.validation_block, progress,
                                  is_cancelled, warn)


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


# --- torch parts ---------------------------------------------------------------------------------

def _augment(torch, x, y, generator, segmentation: bool):
    """Random flips and 90-degree turns, one of the 8 per sample."""
    k = torch.randint(0, 8, (x.shape[0],), generator=generator)
    x = x.clone()
    y = y.clone() if segmentation else y
    for t in range(1, 8):
        chosen = (k == t).nonzero(as_tuple=True)[0]
        if chosen.numel() == 0:
            continue
        xt = torch.rot90(x[chosen], t % 4, dims=(2, 3))
        if t >= 4:
            xt = torch.flip(xt, dims=(3,))
        x[chosen] = xt
        if segmentation:
            yt = torch.rot90(y[chosen], t % 4, dims=(1, 2))
            if t >= 4:
                yt = torch.flip(yt, dims=(2,))
            y[chosen] = yt
    return x, y


def _evaluate(torch, network, x, y, loss_fn, batch_size, device):
    """Mean loss and predicted class indexes over a set (eval mode, no gradients)."""
    network.eval()
    total, weight, predictions = 0.0, 0, []
    with torch.no_grad():
        for start in range(0, x.shape[0], batch_size):
            xb = x[start:start + batch_size].to(device)
            yb = y[start:start + batch_size].to(device)
            logits = network(xb)
            n = int((yb != datasets.IGNORE).sum()) if yb.dim() > 1 else yb.shape[0]
            if n:
                total += float(loss_fn(logits, yb)) * n
                weight += n
            predictions.append(logits.argmax(1).cpu())
    return total / max(weight, 1), torch.cat(predictions)


def fit(torch, network, train_x, train_y, val_x, val_y, loss_fn, options: TrainingOptions,
        device, progress: Progress = no_progress, is_cancelled: IsCancelled = never_cancelled,
        log: Log = no_log) -> dict:
    """The training loop: epochs of shuffled batches (augmented), validation loss per epoch,
    early stopping; the best weights (lowest validation loss) are restored. With ``patience`` 0
    there is no early stopping and the last epoch's weights are kept (fixed-length training).

    Returns:
        ``{"history": [...], "best_epoch": int, "stopped_early": bool, "samples_seen": int}``.
    """
    segmentation = train_y.dim() > 1
    generator = torch.Generator().manual_seed(int(options.seed))
    optimiser = torch.optim.AdamW(network.parameters(), lr=options.learning_rate,
                                  weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=options.epochs)
    history, best = [], (math.inf, 0, None)
    n = train_x.shape[0]
    batches = max(1, math.ceil(n / options.batch_size))
    seen, stopped = 0, False
    for epoch in range(options.epochs):
        network.train()
        order = torch.randperm(n, generator=generator)
        running, count = 0.0, 0
        for b in range(batches):
            check_cancelled(is_cancelled)
            index = order[b * options.batch_size:(b + 1) * options.batch_size]
            if index.numel() < 2 and n > 1:
                continue  # batch norm needs two samples
            xb, yb = train_x[index], train_y[index]
            if options.augment:
                xb, yb = _augment(torch, xb, yb, generator, segmentation)
            xb, yb = xb.to(device), yb.to(device)
            optimiser.zero_grad(set_to_none=True)
            loss = loss_fn(network(xb), yb)
            if torch.isfinite(loss):
                loss.backward()
                optimiser.step()
                running += float(loss.detach()) * index.numel()
                count += index.numel()
            seen += index.numel()
            progress((epoch + (b + 1) / batches) / options.epochs)
        schedule.step()
        val_loss, predicted = _evaluate(torch, network, val_x, val_y, loss_fn,
                                        options.batch_size, device)
        valid = val_y != datasets.IGNORE
        accuracy = float((predicted[valid] == val_y[valid]).float().mean()) if valid.any() else \
            float("nan")
        row = {"epoch": epoch + 1, "train_loss": running / max(count, 1), "val_loss": val_loss,
               "val_accuracy": accuracy}
        history.append(row)
        log(f"Epoch {epoch + 1}/{options.epochs}: training loss {row['train_loss']:.4f}, "
            f"validation loss {val_loss:.4f}, validation accuracy {accuracy:.3f}")
        if val_loss < best[0] - 1e-6:
            best = (val_loss, epoch + 1, copy.deepcopy(network.state_dict()))
        elif options.patience and epoch + 1 - best[1] >= options.patience:
            log(f"Early stop: no lower validation loss for {options.patience} epochs; keeping "
                f"epoch {best[1]}.")
            stopped = True
            break
    if options.patience and best[2] is not None:
        network.load_state_dict(best[2])
    kept = best[1] if options.patience else len(history)
    return {"history": history, "best_epoch": kept, "stopped_early": stopped,
            "samples_seen": seen}


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


def _metrics(reference: np.ndarray, predicted: np.ndarray, groups: np.ndarray, classes) -> dict:
    """Validation metrics: confusion matrix (rows = predicted, columns = reference), per-class
    precision/recall/F1/IoU, overall accuracy, kappa, and accuracy per held-out group."""
    from sklearn.metrics import cohen_kappa_score, confusion_matrix

    k = len(classes)
    matrix = confusion_matrix(reference, predicted, labels=list(range(k))).T
    per_class = []
    for i, c in enumerate(classes):
        tp = matrix[i, i]
        predicted_i, reference_i = matrix[i].sum(), matrix[:, i].sum()
        precision = tp / predicted_i if predicted_i else float("nan")
        recall = tp / reference_i if reference_i else float("nan")
        f1 = 2 * tp / (predicted_i + reference_i) if predicted_i + reference_i else float("nan")
        union = predicted_i + reference_i - tp
        per_class.append({"class": c.name, "value": c.value, "reference": int(reference_i),
                          "precision": float(precision), "recall": float(recall),
                          "f1": float(f1), "iou": float(tp / union) if union else float("nan")})
    present = [p for p in per_class if p["reference"]]
    by_group = []
    for key in sorted(set(groups)):
        chosen = groups == key
        if chosen.any():
            by_group.append({"group": str(key), "samples": int(chosen.sum()),
                             "accuracy": float((reference[chosen] == predicted[chosen]).mean())})
    accuracies = [g["accuracy"] for g in by_group]
    return {
        "confusion_matrix": matrix.tolist(),
        "overall_accuracy": float(np.trace(matrix) / max(matrix.sum(), 1)),
        "kappa": float(cohen_kappa_score(reference, predicted)) if len(set(reference)) > 1 else
        float("nan"),
        "macro_f1": float(np.nanmean([p["f1"] for p in present])) if present else float("nan"),
        "per_class": per_class,
        "groups": by_group,
        "group_accuracy_mean": float(np.mean(accuracies)) if accuracies else float("nan"),
        "group_accuracy_min": float(np.min(accuracies)) if accuracies else float("nan"),
        "group_accuracy_max": float(np.max(accuracies)) if accuracies else float("nan"),
        "count": int(matrix.sum()),
    }


def _normalise(samples, metadata: ModelCard) -> np.ndarray:
    """Applies the model's own normalisation (the inference engine's Normaliser) to the samples."""
    from .batches import Normaliser

    normaliser = Normaliser(metadata, [None] * len(samples.bands))
    x = samples.x
    n, c, h, w = x.shape
    stacked = np.ascontiguousarray(x.transpose(1, 0, 2, 3)).reshape(c, n * h, w)
    out, _ = normaliser(stacked)
    return np.ascontiguousarray(out.reshape(c, n, h, w).transpose(1, 0, 2, 3))


def _device(torch, choice: str):
    if choice == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda")


def train_cnn(options: TrainingOptions, progress: Progress = no_progress,
              is_cancelled: IsCancelled = never_cancelled, log: Log = no_log,
              warn: Log = no_log) -> dict:
    """Trains a CNN and writes it as a LandFusion ONNX model, with an HTML report.

    Steps: check inputs (no pixels read), read labelled tiles/patches, hold out whole
    inputs/patches or spatial blocks for validation, compute normalisation statistics and class
    weights from the training part, train with early stopping on the validation loss, export to
    ONNX, check onnxruntime against torch, write model and report (both or neither).

    Returns:
        A summary dict (settings, data, history, validation metrics, timings, export check).

    Raises:
        DependencyError: PyTorch is missing (with install instructions).
        InputError and subclasses: bad input, named with the fix.
        TrainingMemoryError: out of memory (with a smaller batch/patch suggested).
        CancelledError: cancelled; nothing is written.
    """
    started = time.time()
    options.bands = _clean_list(options.bands)
    options.input_band_names = _clean_list(options.input_band_names)
    options.inputs = list(options.inputs or [])
    options.labels = list(options.labels or [])
    if options.task == "patch_classification" and options.patch_folder and options.validation == \
            "blocks":
        log("Patches from a folder are separate places: each patch is held out whole.")
    found = check_training_inputs(options)
    arch = found["architecture"]
    torch = import_torch()

    samples = _read_samples(options, sub_progress(progress, 0.0, 0.1), is_cancelled, warn)
    _name_classes(samples, parse_class_names(options.class_names))
    ordered, layout = arrange_bands(arch.key, samples.bands)
    if ordered != samples.bands:
        permutation = [samples.bands.index(b) for b in ordered]
        samples.x = samples.x[:, permutation]
        samples.bands = ordered
    k = len(samples.classes)
    segmentation = samples.task == "segmentation"
    labels_all = samples.y[samples.y != datasets.IGNORE] if segmentation else samples.y
    present = np.bincount(labels_all, minlength=k)
    if k < 2 or (present > 0).sum() < 2:
        only = samples.classes[int(np.argmax(present))].name if k else "none"
        raise NoDataError(f"The labels hold a single class ({only}); a classifier needs at least "
                          "two classes. Label other classes too (e.g. background).")
    val_mask = datasets.split_validation(samples, options.validation_fraction, options.seed,
                                         options.validation)
    train_counts = np.bincount(samples.y[~val_mask][samples.y[~val_mask] != datasets.IGNORE]
                               if segmentation else samples.y[~val_mask], minlength=k)
    val_counts = np.bincount(samples.y[val_mask][samples.y[val_mask] != datasets.IGNORE]
                             if segmentation else samples.y[val_mask], minlength=k)
    absent_train = [c.name for c, n in zip(samples.classes, train_counts) if n == 0]
    if absent_train:
        raise NoDataError(
            f"Class(es) {', '.join(absent_train)} only occur in the validation part, so the "
            "network could never learn them. Use spatial blocks for validation, another seed, or "
            "label these classes in more inputs.")
    absent_val = [c.name for c, n in zip(samples.classes, val_counts) if n == 0]
    if absent_val:
        warn(f"Class(es) {', '.join(absent_val)} are absent from the validation part: no "
             "validation figures for them. Use spatial blocks, another seed or a larger "
             "validation fraction to validate every class.")
    log(f"{samples.x.shape[0]} {'tiles' if segmentation else 'patches'} of "
        f"{samples.patch_size} px ({samples.nbytes / 2 ** 20:.0f} MiB), bands "
        f"{', '.join(samples.bands)}; {int((~val_mask).sum())} for training, "
        f"{int(val_mask.sum())} held out ({len(set(samples.groups[val_mask]))} whole "
        f"{'inputs/patches' if options.validation == 'inputs' else 'spatial blocks'}).")

    stats = datasets.band_statistics(samples.x[~val_mask], options.seed)
    metadata = build_metadata(samples, stats, options, arch, {}, ~val_mask)
    x = _normalise(samples, metadata)
    weights = datasets.class_weights(np.maximum(train_counts, 1))

    previous = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled())
    try:
        if options.threads:
            torch.set_num_threads(int(options.threads))
        torch.manual_seed(int(options.seed))
        torch.use_deterministic_algorithms(True)
        device = _device(torch, options.device)
        from .networks import build_network

        network = build_network(arch.key, samples.task, len(samples.bands), k, layout,
                                options.width).to(device)
        parameters = sum(p.numel() for p in network.parameters())
        log(f"{arch.label}: {parameters:,} parameters, on {device.type.upper()}; class weights "
            + ", ".join(f"{c.name} {w:.2f}" for c, w in zip(samples.classes, weights)))
        loss_fn = torch.nn.CrossEntropyLoss(weight=torch.from_numpy(weights).to(device),
                                            ignore_index=datasets.IGNORE)
        tx, ty = torch.from_numpy(x[~val_mask]), torch.from_numpy(samples.y[~val_mask])
        vx, vy = torch.from_numpy(x[val_mask]), torch.from_numpy(samples.y[val_mask])
        fit_started = time.time()
        try:
            result = fit(torch, network, tx, ty, vx, vy, loss_fn, options, device,
                         sub_progress(progress, 0.1, 0.9), is_cancelled, log)
        except (RuntimeError, MemoryError) as exc:
            if isinstance(exc, MemoryError) or "memory" in str(exc).lower():
                raise TrainingMemoryError(
                    f"Training ran out of memory with batches of {options.batch_size} "
                    f"{samples.patch_size}-pixel {'tiles' if segmentation else 'patches'}. Use a "
                    f"smaller batch size (e.g. {max(1, options.batch_size // 2)}) or patch size "
                    f"(e.g. {max(8, samples.patch_size // 2)}), or a smaller network "
                    "width.") from exc
            raise
        fit_seconds = time.time() - fit_started
        network = network.cpu().eval()
        _, predicted = _evaluate(torch, network, vx, vy, loss_fn, options.batch_size,
                                 torch.device("cpu"))
        reference = samples.y[val_mask]
        predicted = predicted.numpy()
        groups = samples.groups[val_mask]
        if segmentation:
            groups = np.repeat(groups, reference.shape[1] * reference.shape[2])
            reference, predicted = reference.ravel(), predicted.ravel()
            keep = reference != datasets.IGNORE
            reference, predicted, groups = reference[keep], predicted[keep], groups[keep]
        metrics = _metrics(reference, predicted, groups, samples.classes)
        progress(0.92)
        check_cancelled(is_cancelled)
        summary = {
            "task": samples.task, "architecture": arch.key, "architecture_label": arch.label,
            "layout": layout, "bands": samples.bands,
            "classes": [c.to_dict() for c in samples.classes], "parameters": parameters,
            "settings": options.settings(), "device": device.type,
            "samples": {"total": int(samples.x.shape[0]), "training": int((~val_mask).sum()),
                        "validation": int(val_mask.sum()),
                        "validation_groups": sorted(set(samples.groups[val_mask].tolist())),
                        "training_labels": train_counts.tolist(),
                        "validation_labels": val_counts.tolist(),
                        "patch_size": samples.patch_size, "inputs": samples.inputs},
            "class_weights": [float(w) for w in weights],
            "normalisation": stats, "history": result["history"],
            "best_epoch": result["best_epoch"], "stopped_early": result["stopped_early"],
            "validation": metrics, "absent_from_validation": absent_val,
            "training_seconds": round(fit_seconds, 2),
            "samples_per_second": round(result["samples_seen"] / max(fit_seconds, 1e-9), 1),
            "torch_version": torch.__version__,
        }
        held_out = "inputs/patches" if options.validation == "inputs" else "blocks"
        summary["headline"] = (f"overall accuracy {metrics['overall_accuracy']:.3f}, macro F1 "
                               f"{metrics['macro_f1']:.3f} on held-out {held_out}")
        metadata = build_metadata(samples, stats, options, arch, summary, ~val_mask)
        example = vx[: min(4, vx.shape[0])].contiguous()
        _write_outputs(torch, network, example, metadata, summary, options, segmentation)
    finally:
        torch.set_num_threads(previous[0])
        torch.use_deterministic_algorithms(previous[1])
    summary["total_seconds"] = round(time.time() - started, 2)
    progress(1.0)
    log(f"Validation: {summary['headline']}; model written to {options.output_model}.")
    return summary


def _write_outputs(torch, network, example, metadata, summary, options, segmentation) -> None:
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
    except CancelledError:
        raise
    finally:
        if os.path.exists(exported):
            os.remove(exported)
