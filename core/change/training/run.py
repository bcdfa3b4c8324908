"""The engine functions of change-model training: :func:`check_training` (no pixel read) and
:func:`train_change_model` (the model file and its reports)."""

from __future__ import annotations

import contextlib
import os
import time
from typing import Optional, Sequence

import numpy as np

from ...choices import CLASSIFIERS
from ...errors import InputError
from ...io import raster as raster_io
from ...io.classmap import choose_nodata
from ...io.outputs import check_writable, remove_outputs
from ...io.reports import json_safe
from ...runtime import (
    IsCancelled, Log, Progress, check_cancelled, never_cancelled, no_log, no_progress, sub_progress,
)
from .options import TrainingOptions
from .plan import TrainingPlan, plan_training
from .samples import TILE_GROUP, Samples, extract_samples
from .validation import ChangeEstimator, fmt, leave_group_out, pixel_validation


def check_training(**options) -> TrainingOptions:
    """Checks the options of :func:`train_change_model` without opening a raster.

    Raises:
        InputError: naming the option and the fix.
    """
    return TrainingOptions(**options).validated()


def train_change_model(
    before: Sequence[str],
    after: Sequence[str],
    model_path: str,
    report_path: Optional[str] = None,
    progress: Progress = no_progress,
    is_cancelled: IsCancelled = never_cancelled,
    log: Log = no_log,
    warn: Log = no_log,
    **options,
) -> dict:
    """Trains a change model on BEFORE/AFTER pairs; writes the ONNX model and the reports.

    Args:
        before, after: the pairs' rasters, in the same order; bands matched by name, AFTER warped
            onto BEFORE's grid when needed.
        model_path: ``.onnx`` file to write.
        report_path: HTML report (a JSON report is written beside it); optional.
        options: the fields of :class:`TrainingOptions`:

            - ``labels``: one label raster per pair (any grid; nearest resampling); class ids
              as values; ``label_nodata``: value of unlabelled pixels (default: the label
              raster's nodata; 0 is always unlabelled for burnt polygons).
            - ``training``, ``class_field``: polygons with integer class ids instead of label
              rasters.
            - ``class_names``: ``"1=no change,2=change"``; the class named "no change" (else
              the lowest id) is the no-change class.
            - ``algorithm``: the classifier (key, name or index of
              :data:`core.choices.CLASSIFIERS`); ``parameters``: scikit-learn parameters
              overriding the defaults.
            - ``feature_groups``, ``scales``: see :class:`~core.change.features.FeatureSpec`.
            - ``samples_per_pair``: cap of samples drawn per pair and class;
              ``pixel_folds``: folds of the pixel-level validation reported beside (0: none).
            - ``seed``, ``threads``, ``memory_mb``.

    Returns:
        Output paths, per-pair and pooled scores, the threshold and sample counts.
    """
    started = time.time()
    o = TrainingOptions(before=before, after=after, **options).validated()
    json_path = _check_outputs(o, model_path, report_path)
    with contextlib.ExitStack() as stack:
        stack.enter_context(raster_io.gdal_env())
        plan = plan_training(o, stack, log, warn)
        samples = extract_samples(plan, o, sub_progress(progress, 0.0, 0.3), is_cancelled)
    y_change = samples.y != plan.no_change
    log(f"Samples: {samples.y.size} ({int(y_change.sum())} change) from {len(o.before)} "
        "pair(s).")
    estimator = ChangeEstimator(o.key, o.parameters, o.seed, o.threads, samples, plan.no_change)
    validation, pixel = _validate(estimator, o, progress, is_cancelled, log, warn)
    check_cancelled(is_cancelled)
    log(f"Fitting the final {CLASSIFIERS.title(o.key)} on all {samples.y.size} samples...")
    model = estimator.fit(np.arange(samples.y.size))
    progress(0.92)
    check_cancelled(is_cancelled)
    onnx_model, agreement = _export(model, samples, plan.no_change, o.seed, warn)
    importance = feature_importance(model, plan.spec.names())
    report = training_report(o, plan, samples, model, model_path, validation, pixel,
                             dict(onnx_check=agreement, feature_importance=importance,
                                  training_seconds=round(time.time() - started, 2)))
    _write_model(onnx_model, model_path, o, plan, samples, report)
    written = {"model": model_path, "report": None, "report_json": None}
    if report_path:
        _write_reports(report, report_path, json_path, model_path)
        written.update(report=report_path, report_json=json_path)
    progress(1.0)
    return dict(written, threshold=validation["threshold"], scores=report["scores"],
                validation=validation, pixel_validation=pixel, classes=plan.classes,
                no_change=plan.no_change, features=plan.spec.names(),
                samples=int(samples.y.size), importance=importance)


def _check_outputs(o: TrainingOptions, model_path: str, report_path: Optional[str]):
    """Checks that the outputs can be written and are no input; returns the JSON report path."""
    check_writable(model_path, "Model file")
    json_path = None
    if report_path:
        check_writable(report_path, "Report")
        json_path = os.path.splitext(report_path)[0] + ".json"
    inputs = {os.path.realpath(p) for p in o.inputs()}
    for out in [model_path, report_path, json_path]:
        if out and os.path.realpath(out) in inputs:
            raise InputError(f"The output '{out}' is also an input; choose another file name.")
    return json_path


def _validate(estimator: ChangeEstimator, o: TrainingOptions, progress: Progress,
              is_cancelled: IsCancelled, log: Log, warn: Log) -> tuple:
    """Grouped validation (pairs, or spatial tiles of a single pair) and the pixel-level folds."""
    if len(o.before) >= 2:
        groups, grouping = estimator.samples.pair_of, "pair"
    else:
        groups, grouping = estimator.samples.tile, "tile"
        warn(f"A single pair: validation leaves out spatial tiles of {TILE_GROUP} x "
             f"{TILE_GROUP} pixels of the pair instead of whole pairs; give several pairs "
             "(cities, scenes) for an estimate of how the model does on new places.")
    validation = leave_group_out(estimator, groups, grouping, o.before,
                                 sub_progress(progress, 0.3, 0.75), is_cancelled, log)
    pixel = None
    if o.pixel_folds and o.pixel_folds >= 2:
        pixel = pixel_validation(estimator, validation["threshold"], o.pixel_folds, o.seed,
                                 sub_progress(progress, 0.75, 0.85), is_cancelled)
        log(f"Pixel-level {o.pixel_folds}-fold validation (optimistic, for comparison): F1 "
            f"{fmt(pixel['f1'])}, precision {fmt(pixel['precision'])}, recall "
            f"{fmt(pixel['recall'])}.")
    return validation, pixel


def _export(model, samples: Samples, no_change: int, seed: int, warn: Log) -> tuple:
    """The fitted pipeline as ONNX with the change output, checked against scikit-learn."""
    from ...models.pixel_model import sklearn_to_onnx
    from ..model import add_change_output

    onnx_model = add_change_output(sklearn_to_onnx(model, samples.X.shape[1]),
                                   list(model.classes_).index(no_change))
    agreement = verify_change_onnx(onnx_model, model, samples.X, no_change, seed)
    if agreement["max_change_probability_difference"] > 1e-3:
        warn("The ONNX model's change probabilities differ from the trained model's by up to "
             f"{agreement['max_change_probability_difference']:.2e}.")
    return onnx_model, agreement


def verify_change_onnx(onnx_model, model, X: np.ndarray, no_change: int, seed: int,
                       limit: int = 5000) -> dict:
    """Compares the ONNX change probabilities with scikit-learn's on training rows."""
    from ...models.export_check import run_on_sample
    from ..model import CHANGE_OUTPUT

    rows, (change,) = run_on_sample(onnx_model, X, [CHANGE_OUTPUT], seed, limit, "change model")
    expected = 1.0 - model.predict_proba(rows)[:, list(model.classes_).index(no_change)]
    return {"checked_pixels": int(rows.shape[0]),
            "max_change_probability_difference": float(np.max(np.abs(change - expected)))}


def feature_importance(model, names) -> list:
    """The 25 most important features of a tree ensemble (empty for other estimators)."""
    estimator = model.steps[-1][1]
    values = getattr(estimator, "feature_importances_", None)
    if values is None:
        return []
    order = np.argsort(values)[::-1]
    return [{"feature": names[i], "importance": float(values[i])} for i in order[:25]]


def training_report(o: TrainingOptions, plan: TrainingPlan, samples: Samples, model,
                    model_path: str, validation: dict, pixel: Optional[dict],
                    extra: dict) -> dict:
    """The JSON-ready training report (also the source of the model card's entries)."""
    estimator = model.steps[-1][1]
    scores = {"method": f"leave one {validation['grouping']} out",
              "threshold": validation["threshold"], "f1": validation["pooled"]["f1"],
              "precision": validation["pooled"]["precision"],
              "recall": validation["pooled"]["recall"],
              "pixel_f1": pixel["f1"] if pixel else None}
    return {
        "title": "LandFusion change model training report",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "pairs": [{"before": os.path.abspath(b), "after": os.path.abspath(a),
                   "labels": o.labels[i] if o.labels else "(training polygons)",
                   "label_counts": {str(k): v for k, v in plan.labels[i].counts.items()},
                   "after_resampled": plan.pairs[i].resampled}
                  for i, (b, a) in enumerate(zip(o.before, o.after))],
        "algorithm": CLASSIFIERS.title(o.key), "algorithm_key": o.key,
        "parameters": json_safe(estimator.get_params()),
        "scaling": ("standardisation inside the model" if "scale" in model.named_steps else
                    "none needed"),
        "imbalance": ("balanced class weights" if "class_weight" in estimator.get_params()
                      else "balanced training samples"),
        "features": plan.spec.to_dict(),
        "classes": [c.to_dict() for c in plan.classes], "no_change_class": plan.no_change,
        "samples": {"total": int(samples.y.size),
                    "change": int((samples.y != plan.no_change).sum()),
                    "per_pair_cap": o.samples_per_pair},
        "validation": validation, "pixel_validation": pixel, "scores": scores,
        "threshold": validation["threshold"],
        "feature_importance": extra["feature_importance"], "onnx_check": extra["onnx_check"],
        "model": os.path.abspath(model_path), "seed": o.seed,
        "training_seconds": extra["training_seconds"],
    }


def _write_model(onnx_model, model_path: str, o: TrainingOptions, plan: TrainingPlan,
                 samples: Samples, report: dict) -> None:
    from ...models.statistics import band_statistics
    from ..model import write_change_model

    with raster_io.open_raster(o.before[0], "BEFORE raster") as src:
        crs_wkt = src.crs.to_wkt() if src.crs else ""
        pixel_size = [abs(src.transform.a), abs(src.transform.e)]
    write_change_model(
        onnx_model, model_path, plan.spec, plan.classes, plan.no_change, report["threshold"],
        f"maximum F1 of change over leave-one-{report['validation']['grouping']}-out "
        "predictions", choose_nodata(plan.classes), crs_wkt, pixel_size,
        extra={"algorithm": report["algorithm"], "parameters": report["parameters"],
               "scores": report["scores"], "samples": int(samples.y.size),
               "pairs": [os.path.basename(b) for b in o.before]},
        band_stats=band_statistics(samples.X))


def _write_reports(report: dict, report_path: str, json_path: str, model_path: str) -> None:
    """Writes the HTML and JSON reports; on failure the model is removed too."""
    from ..report import write_training_report

    try:
        write_training_report(report, report_path, json_path)
    except BaseException:
        remove_outputs([model_path])
        raise
