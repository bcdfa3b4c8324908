"""Leak-free validation of a pixel classifier: k-fold grouped by polygon (each polygon's pixels
all in one fold, so neighbouring, near-identical pixels never sit on both sides of a split), with a
pixel-level random k-fold beside it for comparison."""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..runtime import IsCancelled, Progress, check_cancelled, never_cancelled, no_progress
from .samples import Samples


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


def short_scores(metrics: Optional[dict]) -> Optional[dict]:
    if not metrics:
        return None
    return {k: round(metrics[k], 4) for k in ("overall_accuracy", "kappa", "macro_f1")}
