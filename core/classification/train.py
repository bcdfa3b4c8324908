"""Training pixel classifiers from labelled polygons, with leak-free validation and ONNX export.

The pipeline: extract samples (:mod:`samples`), validate by k-fold grouped by polygon (each
polygon's pixels all in one fold, so neighbouring, near-identical pixels never sit on both sides
of a split) with a pixel-level random k-fold beside it for comparison, fit the final model on all
samples, export it to a self-describing ONNX file (:mod:`onnx_model`) and write a JSON and a
self-contained HTML report.
"""

from __future__ import annotations

import html
import os
import time
from collections import OrderedDict
from typing import Optional

import numpy as np

from ..choices import CLASSIFIERS
from ..io import raster as raster_io
from ..io.classmap import choose_nodata
from ..io.reports import (
    HtmlReport, Markup, bar_chart, fmt_value, heatmap, json_safe, json_text, swatch,
    write_report_files,
)
from ..io.preflight import validate_estimator
from ..errors import InputError, ModelError, NoDataError
from ..runtime import (
    IsCancelled, Log, Progress, check_cancelled, never_cancelled, no_log, no_progress, sub_progress,
)
from . import gbm
from .samples import Samples, extract_samples, samples_summary
from .tradeoffs import TRADEOFFS, prediction_speed, tradeoffs_html

#: Classifier keys (the vocabulary lives in core.choices; stable API).
ALGORITHMS = CLASSIFIERS

ALGORITHM_NAMES = OrderedDict(zip(CLASSIFIERS, CLASSIFIERS.titles))

#: Defaults per algorithm; any scikit-learn parameter of the estimator may be overridden.
DEFAULT_PARAMETERS = {
    "random_forest": {"n_estimators": 100, "max_depth": None, "min_samples_leaf": 1,
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
        if not 0 <= algorithm < len(ALGORITHMS):
            raise InputError(f"Algorithm index {algorithm} is not between 0 and "
                             f"{len(ALGORITHMS) - 1}.")
        return ALGORITHMS[algorithm]
    text = str(algorithm).strip().lower()
    for key, name in ALGORITHM_NAMES.items():
        if text in (key, name.lower(), key.replace("_", " ")):
            return key
    aliases = {"lgbm": "lightgbm", "gbm": "lightgbm", "rf": "random_forest", "knn": "knn", "dt": "decision_tree", "hgb":
               "hist_gradient_boosting", "svc": "svm"}
    if text in aliases:
        return aliases[text]
    raise InputError(f"Unknown algorithm '{algorithm}'. Choose one of: "
                     f"{', '.join(ALGORITHM_NAMES.values())}.")


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
            f"{ALGORITHM_NAMES[key]} has no parameter {', '.join(unknown)}; valid parameters: "
            f"{', '.join(sorted(valid))}.")
    try:
        estimator.set_params(**settings)
    except (ValueError, TypeError) as exc:
        raise InputError(f"Invalid parameter for {ALGORITHM_NAMES[key]}: {exc}") from exc
    validate_estimator(estimator, ALGORITHM_NAMES[key])
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


#: Orientation of every confusion matrix LandFusion reports (the accuracy report's).
MATRIX_ORIENTATION = "rows = predicted (map) classes, columns = reference classes"


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, classes) -> dict:
    """Returns OA, kappa, macro-F1, per-class precision/recall/F1/support and the confusion matrix.

    The confusion matrix is oriented as in the accuracy report: predicted (map) classes in rows,
    reference classes in columns, both in the order of ``classes``.
    """
    from sklearn.metrics import (
        accuracy_score, cohen_kappa_score, confusion_matrix, f1_score,
        precision_recall_fscore_support,
    )

    labels = [c.value for c in classes]
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0)
    return {
        "overall_accuracy": float(accuracy_score(y_true, y_pred)),
        "kappa": float(cohen_kappa_score(y_true, y_pred, labels=labels)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=labels, average="macro",
                                   zero_division=0)),
        "per_class": [
            {"value": c.value, "name": c.name, "precision": float(p), "recall": float(r),
             "f1": float(f), "support": int(s)}
            for c, p, r, f, s in zip(classes, precision, recall, f1, support)
        ],
        "confusion_matrix": confusion_matrix(y_pred, y_true, labels=labels).tolist(),
        "orientation": MATRIX_ORIENTATION,
        "labels": labels,
    }


def plan_validation(samples: Samples, folds: int) -> dict:
    """Decides how to validate: grouped by polygon when possible, with the number of folds.

    Returns:
        ``{"grouped_folds": k or 0, "pixel_folds": k or 0, "notes": [warnings]}``.
    """
    notes = []
    if folds < 2:
        return {"grouped_folds": 0, "pixel_folds": 0,
                "notes": ["Validation was switched off (fewer than 2 folds); the model has no "
                          "accuracy estimate."]}
    per_class = samples.polygons_per_class()
    kind = "points" if samples.geometry_kind == "point" else "polygons"
    single = [c for c in samples.classes if per_class.get(c.value, 0) < 2]
    grouped = 0
    if single:
        names = ", ".join(f"'{c.name}'" for c in single)
        notes.append(
            f"Class(es) {names} have a single {kind[:-1]}: validation grouped by {kind[:-1]} is "
            "impossible, so validation falls back to pixel-level k-fold, whose scores are "
            f"optimistic (neighbouring pixels of the same {kind[:-1]} are in training and test). "
            f"Digitise at least {folds} {kind} per class for a leak-free estimate.")
    else:
        fewest = min(per_class[c.value] for c in samples.classes)
        grouped = min(folds, fewest)
        if grouped < folds:
            lacking = ", ".join(f"'{c.name}' ({per_class[c.value]})" for c in samples.classes
                                if per_class[c.value] < folds)
            notes.append(
                f"Too few {kind} for {folds} folds grouped by {kind[:-1]} (class {lacking}); "
                f"grouped validation uses {grouped} folds instead.")
    class_counts = samples.class_counts()
    pixel = min(folds, min(class_counts.values()))
    if pixel < 2:
        pixel = 0
        notes.append("A class has a single sample pixel: pixel-level validation is impossible.")
    return {"grouped_folds": grouped, "pixel_folds": pixel, "notes": notes}


def cross_validate(make_model, X, y, groups, classes, n_folds: int, grouped: bool, seed: int,
                   progress: Progress = no_progress, is_cancelled: IsCancelled = never_cancelled
                   ) -> dict:
    """Runs (grouped) stratified k-fold; returns metrics on the pooled out-of-fold predictions."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    if grouped:
        splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        splits = list(splitter.split(X, y, groups))
    else:
        splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        splits = list(splitter.split(X, y))
    predicted = np.zeros_like(y)
    fold_scores = []
    for i, (train, test) in enumerate(splits):
        check_cancelled(is_cancelled)
        model = make_model()
        model.fit(X[train], y[train])
        predicted[test] = model.predict(X[test])
        fold_scores.append(float(np.mean(predicted[test] == y[test])))
        progress((i + 1) / len(splits))
    metrics = classification_metrics(y, predicted, classes)
    metrics["folds"] = n_folds
    metrics["fold_overall_accuracy"] = fold_scores
    metrics["method"] = "grouped" if grouped else "pixel"
    return metrics


def _short_scores(metrics: Optional[dict]) -> Optional[dict]:
    if not metrics:
        return None
    return {k: round(metrics[k], 4) for k in ("overall_accuracy", "kappa", "macro_f1")}


def check_training_samples(samples: Samples) -> None:
    """Raises when the samples cannot train a classifier (fewer than two classes)."""
    if len(samples.classes) < 2:
        only = samples.classes[0].name if samples.classes else "none"
        raise NoDataError(
            f"The training samples hold one class only ({only}); a classifier needs at least two "
            "classes. Add polygons of other classes or check the class field.")


def train_classifier(
    raster_path: str,
    vector_path: str,
    class_field: str,
    model_path: str,
    report_path: Optional[str] = None,
    algorithm="random_forest",
    parameters: Optional[dict] = None,
    folds: int = 5,
    layer_name: Optional[str] = None,
    name_field: Optional[str] = None,
    color_field: Optional[str] = None,
    max_per_class: int = 0,
    seed: int = 0,
    threads: int = 0,
    memory_mb: float = raster_io.DEFAULT_MEMORY_MB,
    progress: Progress = no_progress,
    is_cancelled: IsCancelled = never_cancelled,
    log: Log = no_log,
    warn: Log = no_log,
) -> dict:
    """Trains a pixel classifier from a raster and training polygons; writes ONNX and reports.

    Args:
        raster_path: feature raster (any bands; band descriptions become the model's band names).
        vector_path: polygons or points with a class field, any CRS (OGR source).
        class_field: integer or text field with the class of each feature.
        model_path: the ``.onnx`` model file to write.
        report_path: HTML report to write (a JSON report is written beside it); optional.
        algorithm: key, display name or enum index (see :data:`ALGORITHMS`).
        parameters: scikit-learn parameters overriding :data:`DEFAULT_PARAMETERS`.
        folds: number of validation folds (< 2 switches validation off).
        layer_name, name_field, color_field: see :func:`samples.extract_samples`.
        max_per_class: cap of samples per class (stratified random subsampling); 0 for all.
        seed: seed of subsampling, folds and estimators.
        threads: CPU threads for training (0: all).

    Returns:
        Output paths, the validation scores and the sample counts.
    """
    started = time.time()
    key = algorithm_key(algorithm)
    raster_io.check_writable(model_path, "Model file")
    if report_path:
        raster_io.check_writable(report_path, "Report")
    build_classifier(key, parameters, seed, threads)  # fail fast on bad parameters

    log("Extracting training samples...")
    samples = extract_samples(raster_path, vector_path, class_field,
                              sub_progress(progress, 0.0, 0.2), is_cancelled, log, warn,
                              layer_name=layer_name, name_field=name_field,
                              color_field=color_field, max_per_class=max_per_class, seed=seed,
                              memory_mb=memory_mb)
    check_training_samples(samples)
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

    def make_model():
        return build_classifier(key, parameters, seed, threads)

    plan = plan_validation(samples, folds)
    for note in plan["notes"]:
        warn(note)
    validation = {"grouped": None, "pixel": None, "primary": None, "notes": plan["notes"]}
    X, y, groups = samples.X, samples.y, samples.groups
    fits = (plan["grouped_folds"] or 0) + (plan["pixel_folds"] or 0)
    done = 0
    if plan["grouped_folds"]:
        log(f"Validating: {plan['grouped_folds']}-fold grouped by polygon...")
        validation["grouped"] = cross_validate(
            make_model, X, y, groups, samples.classes, plan["grouped_folds"], True, seed,
            sub_progress(progress, 0.2, 0.2 + 0.6 * plan["grouped_folds"] / fits), is_cancelled)
        done = plan["grouped_folds"]
    if plan["pixel_folds"]:
        log(f"Validating: {plan['pixel_folds']}-fold by pixel (for comparison)...")
        validation["pixel"] = cross_validate(
            make_model, X, y, groups, samples.classes, plan["pixel_folds"], False, seed,
            sub_progress(progress, 0.2 + 0.6 * done / fits, 0.8), is_cancelled)
    validation["primary"] = "grouped" if validation["grouped"] else (
        "pixel" if validation["pixel"] else None)
    for method in ("grouped", "pixel"):
        scores = _short_scores(validation[method])
        if scores:
            log(f"{'Grouped by polygon' if method == 'grouped' else 'Pixel-level'} validation: "
                f"OA {scores['overall_accuracy']:.3f}, kappa {scores['kappa']:.3f}, "
                f"macro-F1 {scores['macro_f1']:.3f}.")

    check_cancelled(is_cancelled)
    log(f"Fitting the final {ALGORITHM_NAMES[key]} on all {y.size} samples...")
    model = make_model()
    model.fit(X, y)
    progress(0.9)
    check_cancelled(is_cancelled)

    from ..models.format import PIXEL_CLASSIFIER, band_statistics, build_card, library_versions
    from ..models.format import write_model
    from ..models.pixel_model import sklearn_to_onnx
    from ..sensors.units import infer_unit

    extra = {}
    if key == "lightgbm":
        onnx_model = gbm.lightgbm_to_onnx(model, X.shape[1])
        extra[gbm.METADATA_KEY] = gbm.model_text(model)
    else:
        onnx_model = sklearn_to_onnx(model, X.shape[1])
    agreement = verify_onnx(onnx_model, model, X, seed)
    if agreement["label_agreement"] < 0.999:
        share = 100 * agreement["label_agreement"]
        warn(f"The ONNX model agrees with the trained model on {share:.2f} % of the checked "
             "training pixels only.")

    with raster_io.open_raster(raster_path, "Input raster") as src:
        crs_wkt = src.crs.to_wkt() if src.crs else ""
        pixel_size = [abs(src.transform.a), abs(src.transform.e)]
        pixel_size_m = raster_io.pixel_size_m(src)
        input_nodata = list(src.nodatavals)
    output_nodata = choose_nodata(samples.classes)
    primary = validation[validation["primary"]] if validation["primary"] else None
    scores = dict(_short_scores(primary) or {}, method=validation["primary"] or "none",
                  grouped=_short_scores(validation["grouped"]),
                  pixel=_short_scores(validation["pixel"]))
    report = {
        "title": "LandFusion classifier training report",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "raster": os.path.abspath(raster_path),
        "training_layer": vector_path,
        "class_field": class_field,
        "algorithm": ALGORITHM_NAMES[key],
        "algorithm_key": key,
        "parameters": json_safe(model.steps[-1][1].get_params()),
        "scaling": "standardisation inside the model" if key in _SCALED else "none needed",
        "band_names": samples.band_names,
        "crs": crs_wkt,
        "pixel_size": pixel_size,
        "samples": samples_summary(samples),
        "max_per_class": max_per_class,
        "seed": seed,
        "validation": validation,
        "scores": scores,
        "onnx_check": agreement,
        "speed": prediction_speed(onnx_model, model, X, threads),
        "tradeoffs": TRADEOFFS,
        "model": os.path.abspath(model_path),
        "training_seconds": round(time.time() - started, 2),
    }
    card = build_card(
        PIXEL_CLASSIFIER, samples.band_names, samples.classes, input_name="X",
        output_nodata=output_nodata, crs=crs_wkt, pixel_size=pixel_size_m,
        band_stats=band_statistics(X),
        band_units=[infer_unit(n, X[:, i]) for i, n in enumerate(samples.band_names)],
        metrics=dict(scores, per_class=primary["per_class"] if primary else []),
        training={"algorithm": ALGORITHM_NAMES[key], "parameters": report["parameters"],
                  "samples": int(y.size), "raster": os.path.basename(raster_path),
                  "training_layer": os.path.basename(str(vector_path)),
                  "class_field": class_field, "input_nodata": input_nodata,
                  "class_samples": {c.name: int(counts[c.value]) for c in samples.classes},
                  "validation": validation["primary"] or "none"},
        description=f"{ALGORITHM_NAMES[key]} pixel classifier trained by LandFusion",
        extra=extra)
    report["versions"] = library_versions()
    write_model(onnx_model, card, model_path)
    json_path = None
    if report_path:
        try:
            json_path = write_reports(report, report_path)
        except BaseException:
            raster_io.remove_outputs([model_path])
            raise
    progress(1.0)
    return {"model": model_path, "report": report_path, "report_json": json_path,
            "scores": scores, "samples": int(y.size), "classes": samples.classes,
            "validation": validation, "model_object": model}


def verify_onnx(onnx_model, model, X: np.ndarray, seed: int = 0, limit: int = 20000) -> dict:
    """Runs the ONNX model on (up to ``limit``) training pixels and compares with scikit-learn."""
    import onnxruntime as ort

    from ..models.pixel_model import session_options

    rng = np.random.default_rng(seed)
    index = rng.choice(X.shape[0], size=min(limit, X.shape[0]), replace=False)
    Xs = np.ascontiguousarray(X[index], dtype=np.float32)
    try:
        session = ort.InferenceSession(onnx_model.SerializeToString(), session_options(),
                                       providers=["CPUExecutionProvider"])
        labels, probabilities = session.run(["label", "probabilities"], {"X": Xs})
    except Exception as exc:
        raise ModelError(f"The exported ONNX model cannot be run by onnxruntime: {exc}") from exc
    expected = model.predict(Xs)
    expected_probabilities = model.predict_proba(Xs)
    return {
        "checked_pixels": int(Xs.shape[0]),
        "label_agreement": float(np.mean(labels == expected)),
        "max_probability_difference": float(np.max(np.abs(probabilities - expected_probabilities))),
    }


def write_reports(report: dict, html_path: str) -> str:
    """Writes the HTML report and the JSON report beside it, atomically; returns the JSON path."""
    json_path = os.path.splitext(html_path)[0] + ".json"
    write_report_files([(json_path, json_text(report), "JSON report"),
                        (html_path, lambda: render_html_report(report), "HTML report")])
    return json_path


VALIDATION_LABELS = {"grouped": "k-fold grouped by polygon (leak-free)",
                     "pixel": "k-fold by pixel (optimistic, for comparison)"}


def _fmt(value, digits=3):
    return fmt_value(value, digits)


def _class_label(c: dict) -> Markup:
    return swatch(c["name"], c["color"])


def _confusion_figure(page: HtmlReport, metrics: dict, classes: list, what: str) -> None:
    """Adds the confusion matrix as a table and a heat map (rows = predicted, columns =
    reference)."""
    matrix = [[int(v) for v in row] for row in metrics["confusion_matrix"]]
    names = [c["name"] for c in classes]
    rows = [[_class_label(c)] + row + [sum(row)] for c, row in zip(classes, matrix)]
    rows.append(["total"] + [sum(col) for col in zip(*matrix)] + [sum(map(sum, matrix))])
    page.table(["predicted \\ reference"] + names + ["total"], rows,
               caption="Rows = predicted (map) classes, columns = reference classes (pixels)",
               diagonal_from=1)
    page.figure(heatmap(names, names, matrix, "Predicted", "Reference"),
                f"Confusion matrix, {what}: rows = predicted classes, columns = reference "
                "classes; cells are pixel counts, shaded by their share of the predicted-class "
                "row (blue = correct, red = error).")


def _accuracy_section(page: HtmlReport, validation: dict) -> None:
    primary = validation.get("primary")
    rows, css = [], []
    for method in ("grouped", "pixel"):
        m = validation.get(method)
        label = VALIDATION_LABELS[method]
        if m:
            rows.append([label, m["folds"], _fmt(m["overall_accuracy"]), _fmt(m["kappa"]),
                         _fmt(m["macro_f1"])])
        else:
            rows.append([label, "not possible", "", "", ""])
        css.append("primary" if method == primary else None)
    page.heading("Accuracy")
    page.table(["validation", "folds", "overall accuracy", "kappa", "macro F1"], rows,
               row_classes=css)


def _per_class_section(page: HtmlReport, validation: dict, classes: list) -> None:
    primary = validation["primary"]
    m = validation[primary]
    label = VALIDATION_LABELS[primary]
    page.heading(f"Per class ({label})")
    page.table(["class", "value", "precision", "recall", "F1", "support (pixels)"],
               [[_class_label(c), c["value"], _fmt(pc["precision"]), _fmt(pc["recall"]),
                 _fmt(pc["f1"]), pc["support"]] for c, pc in zip(classes, m["per_class"])])
    page.figure(bar_chart([c["name"] for c in classes], [pc["f1"] for pc in m["per_class"]],
                          "F1 per class", [c["color"] for c in classes], maximum=1.0,
                          digits=3, value_label="F1"),
                f"F1 per class, {label}.")
    page.heading("Confusion matrix (pixels)")
    _confusion_figure(page, m, classes, label)
    other = "pixel" if primary == "grouped" else None
    if other and validation.get(other):
        page.heading(f"Confusion matrix, {VALIDATION_LABELS[other]}")
        _confusion_figure(page, validation[other], classes, VALIDATION_LABELS[other])


def _samples_section(page: HtmlReport, samples: dict) -> None:
    classes = samples["classes"]
    page.heading("Samples")
    page.table(["class", "value", "polygons", "samples used", "pixels available"],
               [[_class_label(c), c["value"], c["polygons"], c["samples"], c["available"]]
                for c in classes])
    page.paragraph(
        "Training layer: {features} features, {used} used; {outside} outside the raster, "
        "{null_class} without class, {repaired} repaired, {skipped_invalid} invalid and skipped, "
        "{no_pixel} covering no pixel centre. Pixels dropped: {nodata} nodata, {nonfinite} "
        "NaN/inf.".format(nodata=samples["dropped_nodata"],
                          nonfinite=samples["dropped_nonfinite"], **samples["vector"]))
    page.details("Samples per polygon", lambda p: p.table(
        ["fid", "class", "pixels", "samples used"],
        [[i["fid"], i["class"], i["pixels"], i["samples"]] for i in samples["features"]],
        left_columns=0))


def _model_section(page: HtmlReport, report: dict) -> None:
    page.heading("Model")
    page.paragraph(f"{report['algorithm']}; scaling: {report['scaling']}; seed {report['seed']}; "
                   f"trained in {report['training_seconds']} s.")
    page.table(["parameter", "value"],
               [[k, str(v)] for k, v in sorted(report["parameters"].items())], left_columns=2)
    bands = ", ".join(b or f"(band {i + 1})" for i, b in enumerate(report["band_names"]))
    page.paragraph(Markup(
        f"Input bands ({len(report['band_names'])}): {html.escape(bands)}<br>Raster: "
        f"<code>{html.escape(report['raster'])}</code><br>Pixel size: "
        f"{html.escape(str(report['pixel_size']))}"))
    check = report.get("onnx_check") or {}
    if check:
        page.paragraph(f"ONNX check: labels agree with scikit-learn on "
                       f"{100 * check['label_agreement']:.2f} % of {check['checked_pixels']} "
                       "training pixels; largest probability difference "
                       f"{check['max_probability_difference']:.2e}.")
    versions = ", ".join(f"{k} {v}" for k, v in report.get("versions", {}).items())
    page.paragraph(versions, css="small")


def render_html_report(report: dict) -> str:
    """Renders the training report as one self-contained HTML page (no external resources)."""
    samples = report["samples"]
    validation = report["validation"]
    page = HtmlReport(report["title"])
    page.paragraph(Markup(f"{html.escape(report['created'])} &middot; model "
                          f"<code>{html.escape(report['model'])}</code>"), css="small")
    page.notes(validation.get("notes", []), title="Warnings")
    _accuracy_section(page, validation)
    if validation.get("primary"):
        _per_class_section(page, validation, samples["classes"])
    _samples_section(page, samples)
    _model_section(page, report)
    page.raw(tradeoffs_html(report))
    return page.render()
