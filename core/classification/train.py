"""Training pixel classifiers from labelled polygons, with leak-free validation and ONNX export.

The pipeline: extract samples (:mod:`samples`), validate by k-fold grouped by polygon (each
polygon's pixels all in one fold, so neighbouring, near-identical pixels never sit on both sides
of a split) with a pixel-level random k-fold beside it for comparison, fit the final model on all
samples, export it to a self-describing ONNX file (:mod:`onnx_model`) and write a JSON and a
self-contained HTML report.
"""

from __future__ import annotations

import html
import json
import os
import time
from collections import OrderedDict
from typing import Optional

import numpy as np

from ..choices import CLASSIFIERS
from ..io import raster as raster_io
from ..io.classmap import choose_nodata
from ..errors import InputError, ModelError, NoDataError
from ..runtime import (
    IsCancelled, Log, Progress, check_cancelled, never_cancelled, no_log, no_progress, sub_progress,
)
from .samples import Samples, extract_samples, samples_summary

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
    aliases = {"rf": "random_forest", "knn": "knn", "dt": "decision_tree", "hgb":
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


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, classes) -> dict:
    """Returns OA, kappa, macro-F1, per-class precision/recall/F1/support and the confusion matrix.

    The confusion matrix has the reference classes in rows and the predicted classes in columns,
    both in the order of ``classes``.
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
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
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
    samples = extract_samples(raster_path, vector_path, class_field, layer_name, name_field,
                              color_field, max_per_class, seed, memory_mb,
                              sub_progress(progress, 0.0, 0.2), is_cancelled, log, warn)
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

    from ..models.pixel_model import PIXEL_CLASSIFIER, build_metadata, sklearn_to_onnx, write_model

    onnx_model = sklearn_to_onnx(model, X.shape[1])
    agreement = verify_onnx(onnx_model, model, X, seed)
    if agreement["label_agreement"] < 0.999:
        share = 100 * agreement["label_agreement"]
        warn(f"The ONNX model agrees with the trained model on {share:.2f} % of the checked "
             "training pixels only.")

    with raster_io.open_raster(raster_path, "Input raster") as src:
        crs_wkt = src.crs.to_wkt() if src.crs else ""
        pixel_size = [abs(src.transform.a), abs(src.transform.e)]
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
        "parameters": _jsonable(model.steps[-1][1].get_params()),
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
        "model": os.path.abspath(model_path),
        "training_seconds": round(time.time() - started, 2),
    }
    metadata = build_metadata(
        PIXEL_CLASSIFIER, samples.band_names, samples.classes, input_nodata=input_nodata,
        output_nodata=output_nodata, crs_wkt=crs_wkt, pixel_size=pixel_size,
        extra={"algorithm": ALGORITHM_NAMES[key], "parameters": report["parameters"],
               "scores": scores, "samples": int(y.size)})
    from ..models.pixel_model import library_versions

    report["versions"] = library_versions()
    write_model(onnx_model, model_path, metadata,
                doc=f"LandFusion {ALGORITHM_NAMES[key]} pixel classifier")
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


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def write_reports(report: dict, html_path: str) -> str:
    """Writes the HTML report and the JSON report beside it; returns the JSON path."""
    json_path = os.path.splitext(html_path)[0] + ".json"
    with raster_io.atomic_output(json_path, "JSON report") as temp:
        with open(temp, "w", encoding="utf-8") as handle:
            json.dump(_jsonable(report), handle, indent=2)
    try:
        with raster_io.atomic_output(html_path, "HTML report") as temp:
            with open(temp, "w", encoding="utf-8") as handle:
                handle.write(render_html_report(report))
    except BaseException:
        raster_io.remove_outputs([json_path])
        raise
    return json_path


_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em;color:#222;max-width:70em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:.25em .6em;
text-align:right}th{background:#f3f3f3}td.l,th.l{text-align:left}
.sw{display:inline-block;width:1em;height:1em;border:1px solid #555;vertical-align:middle;
margin-right:.4em}.warn{background:#fff4e0;border-left:4px solid #f0a000;padding:.4em .8em;
margin:.4em 0}.primary{font-weight:bold}small{color:#666}
"""


def _fmt(value, digits=3):
    return "&ndash;" if value is None else f"{value:.{digits}f}"


def _confusion_html(metrics: dict, classes: list) -> str:
    matrix = np.array(metrics["confusion_matrix"])
    names = [html.escape(c["name"]) for c in classes]
    head = "".join(f"<th>{n}</th>" for n in names)
    rows = []
    for i, row in enumerate(matrix):
        total = max(1, int(row.sum()))
        cells = []
        for j, value in enumerate(row):
            share = value / total
            colour = f"rgba(44,160,44,{share:.2f})" if i == j else f"rgba(214,39,40,{share:.2f})"
            cells.append(f'<td style="background:{colour}">{int(value)}</td>')
        rows.append(f"<tr><th class='l'>{names[i]}</th>{''.join(cells)}"
                    f"<td>{int(row.sum())}</td></tr>")
    return (f"<table><tr><th class='l'>reference \\ predicted</th>{head}<th>total</th></tr>"
            f"{''.join(rows)}</table>")


def render_html_report(report: dict) -> str:
    """Renders the training report as one self-contained HTML page (no external resources)."""
    e = html.escape
    samples = report["samples"]
    classes = samples["classes"]
    validation = report["validation"]
    primary = validation.get("primary")
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
             f"<title>{e(report['title'])}</title><style>{_CSS}</style></head><body>",
             f"<h1>{e(report['title'])}</h1>",
             f"<p><small>{e(report['created'])} &middot; model <code>{e(report['model'])}</code>"
             "</small></p>"]
    for note in validation.get("notes", []):
        parts.append(f"<div class='warn'>{e(note)}</div>")
    parts.append("<h2>Accuracy</h2><table><tr><th class='l'>validation</th><th>folds</th>"
                 "<th>overall accuracy</th><th>kappa</th><th>macro F1</th></tr>")
    labels = {"grouped": "k-fold grouped by polygon (leak-free)",
              "pixel": "k-fold by pixel (optimistic, for comparison)"}
    for method in ("grouped", "pixel"):
        m = validation.get(method)
        css = " class='primary'" if method == primary else ""
        if m:
            parts.append(f"<tr{css}><td class='l'>{labels[method]}</td><td>{m['folds']}</td>"
                         f"<td>{_fmt(m['overall_accuracy'])}</td><td>{_fmt(m['kappa'])}</td>"
                         f"<td>{_fmt(m['macro_f1'])}</td></tr>")
        else:
            parts.append(f"<tr><td class='l'>{labels[method]}</td><td colspan='4'>not possible"
                         "</td></tr>")
    parts.append("</table>")
    if primary:
        m = validation[primary]
        parts.append(f"<h2>Per class ({e(labels[primary])})</h2><table><tr><th class='l'>class"
                     "</th><th>value</th><th>precision</th><th>recall</th><th>F1</th>"
                     "<th>support (pixels)</th></tr>")
        for c, pc in zip(classes, m["per_class"]):
            parts.append(f"<tr><td class='l'><span class='sw' style='background:{e(c['color'])}'>"
                         f"</span>{e(c['name'])}</td><td>{c['value']}</td>"
                         f"<td>{_fmt(pc['precision'])}</td><td>{_fmt(pc['recall'])}</td>"
                         f"<td>{_fmt(pc['f1'])}</td>"
                         f"<td>{pc['support']}</td></tr>")
        parts.append("</table><h2>Confusion matrix (pixels)</h2>")
        parts.append(_confusion_html(m, classes))
        other = "pixel" if primary == "grouped" else None
        if other and validation.get(other):
            parts.append(f"<h2>Confusion matrix, {e(labels[other])}</h2>")
            parts.append(_confusion_html(validation[other], classes))
    parts.append("<h2>Samples</h2><table><tr><th class='l'>class</th><th>value</th>"
                 "<th>polygons</th><th>samples used</th><th>pixels available</th></tr>")
    for c in classes:
        parts.append(f"<tr><td class='l'><span class='sw' style='background:{e(c['color'])}'>"
                     f"</span>{e(c['name'])}</td><td>{c['value']}</td><td>{c['polygons']}</td>"
                     f"<td>{c['samples']}</td><td>{c['available']}</td></tr>")
    parts.append("</table>")
    vector = samples["vector"]
    parts.append(
        "<p>Training layer: {features} features, {used} used; {outside} outside the raster, "
        "{null_class} without class, {repaired} repaired, {skipped_invalid} invalid and skipped, "
        "{no_pixel} covering no pixel centre. Pixels dropped: {nodata} nodata, {nonfinite} NaN/inf."
        "</p>".format(nodata=samples["dropped_nodata"], nonfinite=samples["dropped_nonfinite"],
                      **vector))
    parts.append("<details><summary>Samples per polygon</summary><table><tr><th>fid</th>"
                 "<th>class</th><th>pixels</th><th>samples used</th></tr>")
    for item in samples["features"]:
        parts.append(f"<tr><td>{item['fid']}</td><td>{item['class']}</td><td>{item['pixels']}</td>"
                     f"<td>{item['samples']}</td></tr>")
    parts.append("</table></details>")
    parts.append(f"<h2>Model</h2><p>{e(report['algorithm'])}; scaling: {e(report['scaling'])}; "
                 f"seed {report['seed']}; trained in {report['training_seconds']} s.</p>")
    parts.append("<table><tr><th class='l'>parameter</th><th class='l'>value</th></tr>")
    for k, v in sorted(report["parameters"].items()):
        parts.append(f"<tr><td class='l'>{e(k)}</td><td class='l'>{e(str(v))}</td></tr>")
    parts.append("</table>")
    bands = ", ".join(b or f"(band {i + 1})" for i, b in enumerate(report["band_names"]))
    parts.append(f"<p>Input bands ({len(report['band_names'])}): {e(bands)}<br>Raster: "
                 f"<code>{e(report['raster'])}</code><br>Pixel size: "
                 f"{e(str(report['pixel_size']))}</p>")
    check = report.get("onnx_check") or {}
    if check:
        parts.append(f"<p>ONNX check: labels agree with scikit-learn on "
                     f"{100 * check['label_agreement']:.2f} % of {check['checked_pixels']} "
                     "training pixels; largest probability difference "
                     f"{check['max_probability_difference']:.2e}.</p>")
    versions = ", ".join(f"{k} {v}" for k, v in report.get("versions", {}).items())
    parts.append(f"<p><small>{e(versions)}</small></p></body></html>")
    return "\n".join(parts)
