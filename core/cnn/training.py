"""Training CNNs (segmentation or patch classification) into LandFusion ONNX models.

The engine reads top-down: :func:`check_training_inputs` (called by the algorithm's parameter
check; no pixel read, no PyTorch), :func:`plan_training` (labelled samples, the held-out part,
normalisation and class weights) and :func:`train_cnn`, which trains in
:mod:`.training_loop`, validates (:mod:`.training_metrics`) and writes the model and its report
(:mod:`.trained_model`). The options are :class:`.training_options.TrainingOptions`; samples
come from :mod:`.raster_chips` and :mod:`.patch_folder`.

The trained network is exported with ``torch.onnx.export``, checked against onnxruntime, and given
LandFusion metadata (bands by name, classes, normalisation from the training data, tile or patch
size), so ``landfusion:cnnclassify`` runs it without PyTorch.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np

from ..errors import InputError, NoDataError
from ..runtime import (IsCancelled, Log, Progress, check_cancelled, never_cancelled, no_log,
                       no_progress, sub_progress)
from . import datasets
from .architectures import TASKS, Architecture, arrange_bands, get_architecture
from .chip_labels import check_label_overlap
from .patch_folder import folder_samples, scan_patch_folder
from .raster_chips import point_samples, segmentation_samples
from .trained_model import build_metadata, normalise_samples, write_outputs
from .training_loop import choose_device, fit_within_memory, torch_settings
from .training_metrics import held_out_predictions, validation_metrics
from .training_options import TrainingOptions, import_torch, name_classes, parse_class_names


def check_training_inputs(options: TrainingOptions) -> dict:
    """Checks parameters, outputs and input headers without reading pixels or loading torch.

    Returns:
        ``{"architecture": Architecture, "bands": [...]}`` with what was found.

    Raises:
        InputError (and subclasses) naming the problem and its fix.
    """
    arch = _check_settings(options)
    _check_outputs(options)
    parse_class_names(options.class_names)
    found = {"architecture": arch}
    if options.task == "patch_classification" and options.patch_folder:
        found["bands"] = scan_patch_folder(options.patch_folder, options.input_band_names,
                                           options.bands)["bands"]
    else:
        found["bands"] = _check_input_rasters(options)
    arrange_bands(arch.key, found["bands"])
    return found


def _check_settings(options: TrainingOptions) -> Architecture:
    """The task, the network and the numbers of the run; returns the network design."""
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
    return arch


def _check_outputs(options: TrainingOptions) -> None:
    """A .onnx model and a report that differ from each other and from every input."""
    from ..io.outputs import check_writable

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


def _check_input_rasters(options: TrainingOptions) -> list:
    """The label sources the task needs, and every input raster's bands, size and labels;
    returns the bands taken from the first input."""
    from ..io import raster as raster_io

    task = options.task
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
    bands = None
    with raster_io.gdal_env():
        for i, path in enumerate(options.inputs):
            with raster_io.open_raster(path, "Input raster") as ds:
                picked = datasets.input_bands(ds, f"Input raster '{os.path.basename(path)}'",
                                              options.input_band_names, options.bands,
                                              options.patch_size)
                if bands is None:
                    bands = picked.names
                if options.labels and task == "segmentation":
                    check_label_overlap(ds, options.labels[i])
    return bands


@dataclass
class TrainingPlan:
    """What training works on, decided before the network is built.

    Attributes:
        samples: the labelled samples, bands in the network's order.
        layout: how the network reads the bands (see :func:`.architectures.arrange_bands`).
        val_mask: the held-out samples (whole groups).
        train_counts, val_counts: labels per class in the training and held-out parts.
        absent_from_validation: names of the classes without a held-out label.
        stats: per-band normalisation statistics of the training part.
        x: the samples normalised as the model will normalise its input.
        weights: the loss weight of each class.
    """

    arch: Architecture
    samples: datasets.SampleSet
    layout: dict
    val_mask: np.ndarray
    train_counts: np.ndarray
    val_counts: np.ndarray
    absent_from_validation: list
    stats: dict
    x: np.ndarray
    weights: np.ndarray

    @property
    def segmentation(self) -> bool:
        """Whether the network labels pixels (else whole patches)."""
        return self.samples.task == "segmentation"


def plan_training(options: TrainingOptions, arch: Architecture, progress: Progress = no_progress,
                  is_cancelled: IsCancelled = never_cancelled, log: Log = no_log,
                  warn: Log = no_log) -> TrainingPlan:
    """Reads the labelled samples, holds out whole groups for validation, and computes the
    normalisation statistics and class weights from the training part.

    Raises:
        NoDataError: a single class, or a class found only in the held-out part.
    """
    samples = _read_samples(options, progress, is_cancelled, warn)
    name_classes(samples, parse_class_names(options.class_names))
    layout = _arrange_bands(samples, arch)
    _check_two_classes(samples)
    val_mask = datasets.split_validation(samples, options.validation_fraction, options.seed,
                                         options.validation)
    train_counts, val_counts = _label_counts(samples, ~val_mask), _label_counts(samples, val_mask)
    absent = _check_classes_trained(samples, train_counts, val_counts, warn)
    _log_samples(samples, val_mask, options.validation, log)
    stats = datasets.band_statistics(samples.x[~val_mask], options.seed)
    x = normalise_samples(samples, build_metadata(samples, stats, options, arch, {}, ~val_mask))
    weights = datasets.class_weights(np.maximum(train_counts, 1))
    return TrainingPlan(arch, samples, layout, val_mask, train_counts, val_counts, absent, stats,
                        x, weights)


def _read_samples(options: TrainingOptions, progress, is_cancelled, warn) -> datasets.SampleSet:
    if options.task == "segmentation":
        return segmentation_samples(
            options.inputs, options.patch_size, options.bands, options.input_band_names,
            options.labels or None, options.label_nodata, options.training, options.class_field,
            options.validation, options.validation_block, progress, is_cancelled, warn)
    if options.patch_folder:
        return folder_samples(options.patch_folder, options.bands, options.input_band_names,
                              progress, is_cancelled)
    return point_samples(options.inputs, options.training, options.class_field,
                         options.patch_size, options.bands, options.input_band_names,
                         options.validation, options.validation_block, progress, is_cancelled,
                         warn)


def _arrange_bands(samples: datasets.SampleSet, arch: Architecture) -> dict:
    """Puts the sample bands in the order the network reads them; returns the band layout."""
    ordered, layout = arrange_bands(arch.key, samples.bands)
    if ordered != samples.bands:
        permutation = [samples.bands.index(b) for b in ordered]
        samples.x = samples.x[:, permutation]
        samples.bands = ordered
    return layout


def _label_counts(samples: datasets.SampleSet, chosen: np.ndarray) -> np.ndarray:
    """Labels per class among the chosen samples (labelled pixels of segmentation tiles)."""
    y = samples.y[chosen]
    if samples.task == "segmentation":
        y = y[y != datasets.IGNORE]
    return np.bincount(y, minlength=len(samples.classes))


def _check_two_classes(samples: datasets.SampleSet) -> None:
    k = len(samples.classes)
    present = _label_counts(samples, slice(None))
    if k < 2 or (present > 0).sum() < 2:
        only = samples.classes[int(np.argmax(present))].name if k else "none"
        raise NoDataError(f"The labels hold a single class ({only}); a classifier needs at least "
                          "two classes. Label other classes too (e.g. background).")


def _check_classes_trained(samples, train_counts, val_counts, warn: Log) -> list:
    """Refuses a class the training part lacks; warns of (and returns) classes the held-out
    part lacks."""
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
    return absent_val


def _log_samples(samples, val_mask: np.ndarray, validation: str, log: Log) -> None:
    segmentation = samples.task == "segmentation"
    log(f"{samples.x.shape[0]} {'tiles' if segmentation else 'patches'} of "
        f"{samples.patch_size} px ({samples.nbytes / 2 ** 20:.0f} MiB), bands "
        f"{', '.join(samples.bands)}; {int((~val_mask).sum())} for training, "
        f"{int(val_mask.sum())} held out ({len(set(samples.groups[val_mask]))} whole "
        f"{'inputs/patches' if validation == 'inputs' else 'spatial blocks'}).")


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
    options.clean_lists()
    if options.task == "patch_classification" and options.patch_folder and options.validation == \
            "blocks":
        log("Patches from a folder are separate places: each patch is held out whole.")
    arch = check_training_inputs(options)["architecture"]
    torch = import_torch()
    plan = plan_training(options, arch, sub_progress(progress, 0.0, 0.1), is_cancelled, log, warn)
    with torch_settings(torch, options.threads, options.seed):
        summary = _train_and_write(torch, plan, options, progress, is_cancelled, log)
    summary["total_seconds"] = round(time.time() - started, 2)
    progress(1.0)
    log(f"Validation: {summary['headline']}; model written to {options.output_model}.")
    return summary


def _train_and_write(torch, plan: TrainingPlan, options: TrainingOptions, progress: Progress,
                     is_cancelled: IsCancelled, log: Log) -> dict:
    """Builds and trains the network, validates it on the held-out part, and writes the model
    and the report; returns the summary."""
    device = choose_device(torch, options.device)
    network, parameters = _build_network(torch, plan, options.width, device, log)
    loss_fn = torch.nn.CrossEntropyLoss(weight=torch.from_numpy(plan.weights).to(device),
                                        ignore_index=datasets.IGNORE)
    val = plan.val_mask
    tx, ty = torch.from_numpy(plan.x[~val]), torch.from_numpy(plan.samples.y[~val])
    vx, vy = torch.from_numpy(plan.x[val]), torch.from_numpy(plan.samples.y[val])
    fit_started = time.time()
    result = fit_within_memory(torch, network, tx, ty, vx, vy, loss_fn, options, device,
                               plan.samples.patch_size, sub_progress(progress, 0.1, 0.9),
                               is_cancelled, log)
    fit_seconds = time.time() - fit_started
    network = network.cpu().eval()
    metrics = validation_metrics(*held_out_predictions(
        torch, network, vx, vy, loss_fn, options.batch_size, plan.samples, val),
        plan.samples.classes)
    progress(0.92)
    check_cancelled(is_cancelled)
    summary = _summary(plan, options, torch, device, parameters, result, metrics, fit_seconds)
    metadata = build_metadata(plan.samples, plan.stats, options, plan.arch, summary, ~val)
    example = vx[: min(4, vx.shape[0])].contiguous()
    write_outputs(torch, network, example, metadata, summary, options, plan.segmentation)
    return summary


def _build_network(torch, plan: TrainingPlan, width: int, device, log: Log) -> tuple:
    """``(network on the device, number of parameters)``."""
    from .networks import build_network

    samples = plan.samples
    network = build_network(plan.arch.key, samples.task, len(samples.bands),
                            len(samples.classes), plan.layout, width).to(device)
    parameters = sum(p.numel() for p in network.parameters())
    log(f"{plan.arch.label}: {parameters:,} parameters, on {device.type.upper()}; class weights "
        + ", ".join(f"{c.name} {w:.2f}" for c, w in zip(samples.classes, plan.weights)))
    return network, parameters


def _summary(plan: TrainingPlan, options: TrainingOptions, torch, device, parameters: int,
             result: dict, metrics: dict, fit_seconds: float) -> dict:
    """What the run did, for the report, the model card and the caller."""
    samples, val = plan.samples, plan.val_mask
    summary = {
        "task": samples.task, "architecture": plan.arch.key,
        "architecture_label": plan.arch.label, "layout": plan.layout, "bands": samples.bands,
        "classes": [c.to_dict() for c in samples.classes], "parameters": parameters,
        "settings": options.settings(), "device": device.type,
        "samples": {"total": int(samples.x.shape[0]), "training": int((~val).sum()),
                    "validation": int(val.sum()),
                    "validation_groups": sorted(set(samples.groups[val].tolist())),
                    "training_labels": plan.train_counts.tolist(),
                    "validation_labels": plan.val_counts.tolist(),
                    "patch_size": samples.patch_size, "inputs": samples.inputs},
        "class_weights": [float(w) for w in plan.weights],
        "normalisation": plan.stats, "history": result["history"],
        "best_epoch": result["best_epoch"], "stopped_early": result["stopped_early"],
        "validation": metrics, "absent_from_validation": plan.absent_from_validation,
        "training_seconds": round(fit_seconds, 2),
        "samples_per_second": round(result["samples_seen"] / max(fit_seconds, 1e-9), 1),
        "torch_version": torch.__version__,
    }
    held_out = "inputs/patches" if options.validation == "inputs" else "blocks"
    summary["headline"] = (f"overall accuracy {metrics['overall_accuracy']:.3f}, macro F1 "
                           f"{metrics['macro_f1']:.3f} on held-out {held_out}")
    return summary
