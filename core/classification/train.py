"""Training pixel classifiers from labelled polygons, with leak-free validation and ONNX export.

The steps: extract samples (:mod:`.samples`), validate by k-fold grouped by polygon with a
pixel-level k-fold beside it for comparison (:mod:`.validation`), fit the final model on all
samples, export it to a self-describing ONNX file (:mod:`core.models.pixel_model`) and write a
JSON and a self-contained HTML report (:mod:`.training_report`).
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..choices import CLASSIFIERS
from ..errors import InputError, NoDataError
from ..io import raster as raster_io
from ..io.outputs import check_writable, remove_outputs
from ..io.classmap import choose_nodata
from ..io.preflight import validate_estimator
from ..io.reports import json_safe
from ..runtime import (
    IsCancelled, Log, Progress, check_cancelled, never_cancelled, no_log, no_progress, sub_progress,
)
from . import gbm
from .samples import SampleOptions, Samples, extract_samples, samples_summary
from .tradeoffs import TRADEOFFS, prediction_speed
from .validation import cross_validate, plan_validation, short_scores

#: Defaults per algorithm; any scikit-learn parameter of the estimator may be overridden.
#: Random Forest: 30 full-depth trees, within 0.3 points OA of 100 trees on held-out cells of
#: real labelled chips at a third of the prediction time (bench/bench_models.py; README).
DEFAULT_PARAMETERS = {
    "random_forest": {"n_estimators": 30, "max_depth": None, "min_samples_leaf": 1,
                      "max_features": "sqrt"},
    "svm": {"C": 10.0, "gamma": "scale"},
    "knn": {"n_neighbors": 5, "weights": "uniform"},
    "decision_tree": {"max_depth": None, "min_samples_leaf": 1},
    "mlp": {"hidden_layer_sizes": (100,), "alpha": 1e-4, "max_iter": 300,
            "early_stopping": True},
    "hist_gradient_boosting": {"max_iter": 200, "learning_rate": 0.1, "max_depth": None},
    "lightgbm": dict(gbm.DEFAULT_PARAMETERS),
}

#: Algorithms that need standardised features (scaling is part of the exported pipeline).
_SCALED = {"svm", "knn", "mlp"}


def algorithm_key(algorithm) -> str:
    """Returns the algorithm key for a key, display name or enum index."""
    if isinstance(algorithm, int):
        if not 0 <= algorithm < len(CLASSIFIERS):
            raise InputError(f"Algorithm index {algorithm} is not between 0 and "
                             f"{len(CLASSIFIERS) - 1}.")
        return CLASSIFIERS[algorithm]
    text = str(algorithm).strip().lower()
    for key, name in zip(CLASSIFIERS, CLASSIFIERS.titles):
        if text in (key, name.lower(), key.replace("_", " ")):
            return key
    aliases = {"lgbm": "lightgbm", "gbm": "lightgbm", "rf": "random_forest", "knn": "knn",
               "dt": "decision_tree", "hgb": "hist_gradient_boosting", "svc": "svm"}
    if text in aliases:
        return aliases[text]
    raise InputError(f"Unknown algorithm '{algorithm}'. Choose one of: "
                     f"{', '.join(CLASSIFIERS.titles)}.")


def build_classifier(algorithm: str, parameters: Optional[dict] = None, seed: int = 0,
                     threads: int = 0):
    """Returns an unfitted scikit-learn pipeline for ``algorithm`` with defaults and overrides.

    Raises:
        InputError: unknown algorithm or a parameter the estimator does not have.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC
    from sklearn.tree import DecisionTreeClassifier

    key = algorithm_key(algorithm)
    n_jobs = threads if threads and threads > 0 else -1
    settings = dict(DEFAULT_PARAMETERS[key])
    settings.update({k: v for k, v in (parameters or {}).items()})
    if key == "random_forest":
        estimator = RandomForestClassifier(random_state=seed, n_jobs=n_jobs)
    elif key == "svm":
        estimator = SVC(kernel="rbf", probability=True, random_state=seed)
    elif key == "knn":
        estimator = KNeighborsClassifier(n_jobs=n_jobs)
    elif key == "decision_tree":
        estimator = DecisionTreeClassifier(random_state=seed)
    elif key == "mlp":
        estimator = MLPClassifier(random_state=seed)
    elif key == "lightgbm":
        estimator = gbm.build_lightgbm(None, seed, threads)
    else:
        estimator = HistGradientBoostingClassifier(random_state=seed)
    valid = estimator.get_params()
    unknown = [k for k in settings if k not in valid]
    if unknown:
        raise InputError(
            f"{CLASSIFIERS.title(key)} has no parameter {', '.join(unknown)}; valid parameters: "
            f"{', '.join(sorted(valid))}.")
    try:
        estimator.set_params(**settings)
    except (ValueError, TypeError) as exc:
        raise InputError(f"Invalid parameter for {CLASSIFIERS.title(key)}: {exc}") from exc
    validate_estimator(estimator, CLASSIFIERS.title(key))
    steps = [("scale", StandardScaler())] if key in _SCALED else []
    steps.append(("classifier", estimator))
    return Pipeline(steps)


def parse_parameters(text: str) -> dict:
    """Parses ``"key=value; key=value"`` (values as Python literals where possible)."""
    import ast

    result = {}
    for item in (part.strip() for part in (text or "").replace("\n", ";").split(";")):
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"'{item}' is not of the form key=value (e.g. max_depth=20; "
                             "min_samples_leaf=2).")
        try:
            result[key.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            result[key.strip()] = value.strip()
    return result


def check_training_samples(samples: Samples) -> None:
    """Raises when the samples cannot train a classifier (fewer than two classes)."""
    if len(samples.classes) < 2:
        only = samples.classes[0].name if samples.classes else "none"
        raise NoDataError(
            f"The training samples hold one class only ({only}); a classifier needs at least two "
            "classes. Add polygons of other classes or check the class field.")


@dataclass
class TrainOptions:
    """How to sample, validate and fit (see :func:`train_classifier` for each option)."""

    algorithm: object = "random_forest"
    parameters: Optional[dict] = None
    folds: int = 5
    layer_name: Optional[str] = None
    name_field: Optional[str] = None
    color_field: Optional[str] = None
    max_per_class: int = 0
    seed: int = 0
    threads: int = 0
    memory_mb: float = raster_io.DEFAULT_MEMORY_MB

    def validated(self) -> "TrainOptions":
        """Returns a checked copy with the algorithm as its key; raises :class:`InputError`
        naming a bad option (an estimator parameter included) before any pixel is read."""
        o = dataclasses.replace(self, algorithm=algorithm_key(self.algorithm))
        SampleOptions(**o.sampling).validated()
        o.make_model()  # fail fast on bad parameters
        return o

    @property
    def sampling(self) -> dict:
        """The options of :func:`.samples.extract_samples`."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(SampleOptions)}

    @property
    def title(self) -> str:
        return CLASSIFIERS.title(self.algorithm)

    def make_model(self):
        """A new, unfitted pipeline of the chosen classifier."""
        return build_classifier(self.algorithm, self.parameters, self.seed, self.threads)


def train_classifier(
    raster_path: str,
    vector_path: str,
    class_field: str,
    model_path: str,
    report_path: Optional[str] = None,
    progress: Progress = no_progress,
    is_cancelled: IsCancelled = never_cancelled,
    log: Log = no_log,
    warn: Log = no_log,
    **options,
) -> dict:
    """Trains a pixel classifier from a raster and training polygons; writes ONNX and reports.

    Args:
        raster_path: feature raster (any bands; band descriptions become the model's band names).
        vector_path: polygons or points with a class field, any CRS (OGR source).
        class_field: integer or text field with the class of each feature.
        model_path: the ``.onnx`` model file to write.
        report_path: HTML report to write (a JSON report is written beside it); optional.
        options: the fields of :class:`TrainOptions`:

            - ``algorithm``: key, display name or enum index (see :data:`core.choices.CLASSIFIERS`);
              ``parameters``: scikit-learn parameters overriding :data:`DEFAULT_PARAMETERS`.
            - ``folds``: number of validation folds (< 2 switches validation off).
            - ``layer_name``, ``name_field``, ``color_field``, ``memory_mb``: see
              :func:`.samples.extract_samples`; ``max_per_class``: cap of samples per class
              (stratified random subsampling), 0 for all.
            - ``seed``: seed of subsampling, folds and estimators; ``threads``: CPU threads for
              training (0: all cores).

    Returns:
        Output paths, the validation scores and the sample counts.
    """
    started = time.time()
    o = TrainOptions(**options).validated()
    check_writable(model_path, "Model file")
    if report_path:
        check_writable(report_path, "Report")
    log("Extracting training samples...")
    samples = extract_samples(raster_path, vector_path, class_field,
                              sub_progress(progress, 0.0, 0.2), is_cancelled, log, warn,
                              **o.sampling)
    check_training_samples(samples)
    _log_samples(samples, o.algorithm, log, warn)
    validation = _validate(samples, o, sub_progress(progress, 0.2, 0.8), is_cancelled, log, warn)
    check_cancelled(is_cancelled)
    log(f"Fitting the final {o.title} on all {samples.y.size} samples...")
    model = o.make_model()
    model.fit(samples.X, samples.y)
    progress(0.9)
    check_cancelled(is_cancelled)
    onnx_model, agreement, extra = _export(model, samples.X, o, warn)
    grid = _raster_grid(raster_path)
    report = _report(raster_path, vector_path, class_field, model_path, o, samples,
                     (model, onnx_model), validation, agreement, grid, started)
    json_path = _write(onnx_model, model_path, report_path, report, samples, grid, o, extra)
    progress(1.0)
    return {"model": model_path, "report": report_path, "report_json": json_path,
            "scores": report["scores"],
            "samples": int(samples.y.size), "classes": samples.classes,
            "validation": validation, "model_object": model}


def _log_samples(samples: Samples, key: str, log: Log, warn: Log) -> None:
    """Says what each class got, and warns where the algorithm struggles with many samples."""
    counts = samples.class_counts()
    per_class = samples.polygons_per_class()
    for c in samples.classes:
        log(f"Class {c.value} '{c.name}': {counts[c.value]} samples from {per_class[c.value]} "
            f"{'points' if samples.geometry_kind == 'point' else 'polygons'}.")
    if key == "knn" and samples.y.size > 200_000:
        warn(f"K-nearest neighbours stores all {samples.y.size} samples in the model file and "
             "compares every pixel with them; set a cap per class to keep the model small and "
             "fast.")
    if key == "svm" and samples.y.size > 50_000:
        warn(f"SVM training time grows with the square of the samples ({samples.y.size}); set a "
             "cap per class (e.g. 5000) if training takes too long.")


def _validate(samples: Samples, o: TrainOptions, progress: Progress, is_cancelled: IsCancelled,
              log: Log, warn: Log) -> dict:
    """Grouped (leak-free) and pixel-level k-fold validation, as the samples allow."""
    plan = plan_validation(samples, o.folds)
    for note in plan["notes"]:
        warn(note)
    validation = {"grouped": None, "pixel": None, "primary": None, "notes": plan["notes"]}
    fits = (plan["grouped_folds"] or 0) + (plan["pixel_folds"] or 0)
    args = (o.make_model, samples.X, samples.y, samples.groups, samples.classes)
    done = 0
    if plan["grouped_folds"]:
        log(f"Validating: {plan['grouped_folds']}-fold grouped by polygon...")
        validation["grouped"] = cross_validate(
            *args, plan["grouped_folds"], True, o.seed,
            sub_progress(progress, 0.0, plan["grouped_folds"] / fits), is_cancelled)
        done = plan["grouped_folds"]
    if plan["pixel_folds"]:
        log(f"Validating: {plan['pixel_folds']}-fold by pixel (for comparison)...")
        validation["pixel"] = cross_validate(
            *args, plan["pixel_folds"], False, o.seed,
            sub_progress(progress, done / fits, 1.0), is_cancelled)
    validation["primary"] = "grouped" if validation["grouped"] else (
        "pixel" if validation["pixel"] else None)
    for method in ("grouped", "pixel"):
        scores = short_scores(validation[method])
        if scores:
            log(f"{'Grouped by polygon' if method == 'grouped' else 'Pixel-level'} validation: "
                f"OA {scores['overall_accuracy']:.3f}, kappa {scores['kappa']:.3f}, "
                f"macro-F1 {scores['macro_f1']:.3f}.")
    return validation


def _export(model, X: np.ndarray, o: TrainOptions, warn: Log) -> tuple:
    """The ONNX model, its agreement with the fitted model on training pixels, and the extra
    card entries (LightGBM: the booster's own text)."""
    from ..models.pixel_model import sklearn_to_onnx

    extra = {}
    if o.algorithm == "lightgbm":
        onnx_model = gbm.lightgbm_to_onnx(model, X.shape[1])
        extra[gbm.METADATA_KEY] = gbm.model_text(model)
    else:
        onnx_model = sklearn_to_onnx(model, X.shape[1])
    agreement = verify_onnx(onnx_model, model, X, o.seed)
    if agreement["label_agreement"] < 0.999:
        share = 100 * agreement["label_agreement"]
        warn(f"The ONNX model agrees with the trained model on {share:.2f} % of the checked "
             "training pixels only.")
    return onnx_model, agreement, extra


def _raster_grid(raster_path: str) -> dict:
    """CRS (WKT), pixel size and per-band nodata of the training raster, for the model file."""
    with raster_io.open_raster(raster_path, "Input raster") as src:
        return {"crs": src.crs.to_wkt() if src.crs else "",
                "pixel_size": [abs(src.transform.a), abs(src.transform.e)],
                "pixel_size_m": raster_io.pixel_size_m(src),
                "nodata": list(src.nodatavals)}


def _report(raster_path: str, vector_path: str, class_field: str, model_path: str,
            o: TrainOptions, samples: Samples, models: tuple, validation: dict,
            agreement: dict, grid: dict, started: float) -> dict:
    """The training report as a JSON-friendly dict; ``models``: the fitted model and its ONNX
    export."""
    from ..models.format import library_versions

    model, onnx_model = models
    primary = validation[validation["primary"]] if validation["primary"] else None
    scores = dict(short_scores(primary) or {}, method=validation["primary"] or "none",
                  grouped=short_scores(validation["grouped"]),
                  pixel=short_scores(validation["pixel"]))
    return {
        "title": "LandFusion classifier training report",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "raster": os.path.abspath(raster_path),
        "training_layer": vector_path,
        "class_field": class_field,
        "algorithm": o.title,
        "algorithm_key": o.algorithm,
        "parameters": json_safe(model.steps[-1][1].get_params()),
        "scaling": "standardisation inside the model" if o.algorithm in _SCALED
        else "none needed",
        "band_names": samples.band_names,
        "crs": grid["crs"],
        "pixel_size": grid["pixel_size"],
        "samples": samples_summary(samples),
        "max_per_class": o.max_per_class,
        "seed": o.seed,
        "validation": validation,
        "scores": scores,
        "onnx_check": agreement,
        "speed": prediction_speed(onnx_model, model, samples.X, o.threads),
        "tradeoffs": TRADEOFFS,
        "model": os.path.abspath(model_path),
        "training_seconds": round(time.time() - started, 2),
        "versions": library_versions(),
    }


def _write(onnx_model, model_path: str, report_path: Optional[str], report: dict,
           samples: Samples, grid: dict, o: TrainOptions, extra: dict) -> Optional[str]:
    """Writes the model with its card (bands, units and statistics, classes, scores, training),
    then the reports (the model is removed when they fail); returns the JSON report's path."""
    from ..models.card import build_card
    from ..models.format import PIXEL_CLASSIFIER
    from ..models.statistics import band_statistics
    from ..models.writing import write_model
    from ..sensors.units import infer_unit
    from .training_report import write_reports

    X, validation, counts = samples.X, report["validation"], samples.class_counts()
    primary = validation[validation["primary"]] if validation["primary"] else None
    card = build_card(
        PIXEL_CLASSIFIER, samples.band_names, samples.classes, input_name="X",
        output_nodata=choose_nodata(samples.classes), crs=grid["crs"],
        pixel_size=grid["pixel_size_m"], band_stats=band_statistics(X),
        band_units=[infer_unit(n, X[:, i]) for i, n in enumerate(samples.band_names)],
        metrics=dict(report["scores"], per_class=primary["per_class"] if primary else []),
        training={"algorithm": o.title, "parameters": report["parameters"],
                  "samples": int(samples.y.size), "raster": os.path.basename(report["raster"]),
                  "training_layer": os.path.basename(str(report["training_layer"])),
                  "class_field": report["class_field"], "input_nodata": grid["nodata"],
                  "class_samples": {c.name: int(counts[c.value]) for c in samples.classes},
                  "validation": validation["primary"] or "none"},
        description=f"{o.title} pixel classifier trained by LandFusion", extra=extra)
    write_model(onnx_model, card, model_path)
    if not report_path:
        return None
    try:
        return write_reports(report, report_path)
    except BaseException:
        remove_outputs([model_path])
        raise


def verify_onnx(onnx_model, model, X: np.ndarray, seed: int = 0, limit: int = 20000) -> dict:
    """Runs the ONNX model on (up to ``limit``) training pixels and compares with scikit-learn."""
    from ..models.export_check import run_on_sample

    Xs, (labels, probabilities) = run_on_sample(onnx_model, X, ["label", "probabilities"], seed,
                                                limit)
    expected = model.predict(Xs)
    expected_probabilities = model.predict_proba(Xs)
    return {
        "checked_pixels": int(Xs.shape[0]),
        "label_agreement": float(np.mean(labels == expected)),
        "max_probability_difference": float(np.max(np.abs(probabilities - expected_probabilities))),
    }
