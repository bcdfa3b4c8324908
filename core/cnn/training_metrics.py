"""Validation figures of a trained network on the held-out part: confusion matrix, per-class
precision, recall, F1 and IoU, overall accuracy, kappa, and accuracy per held-out group."""

from __future__ import annotations

import numpy as np

from .datasets import IGNORE
from .training_loop import evaluate


def held_out_predictions(torch, network, val_x, val_y, loss_fn, batch_size: int, samples,
                         val_mask: np.ndarray) -> tuple:
    """``(reference, predicted, groups)`` of the held-out samples, as flat class indexes (pixels
    of segmentation tiles: labelled ones only), predicted on the CPU."""
    _, predicted = evaluate(torch, network, val_x, val_y, loss_fn, batch_size,
                            torch.device("cpu"))
    reference = samples.y[val_mask]
    predicted = predicted.numpy()
    groups = samples.groups[val_mask]
    if samples.task == "segmentation":
        groups = np.repeat(groups, reference.shape[1] * reference.shape[2])
        reference, predicted = reference.ravel(), predicted.ravel()
        keep = reference != IGNORE
        reference, predicted, groups = reference[keep], predicted[keep], groups[keep]
    return reference, predicted, groups


def validation_metrics(reference: np.ndarray, predicted: np.ndarray, groups: np.ndarray, classes) -> dict:
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
