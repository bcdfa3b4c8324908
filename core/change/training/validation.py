"""Validation of a change model: leave one pair (or spatial tile) out, the decision threshold
that maximises the F1 of change over the pooled held-out predictions, and the optimistic
pixel-level folds reported beside.

Scores are weighted by each sample's inverse drawing rate, so they hold for the true class
proportions of every pair.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np

from ...classification.train import build_classifier
from ...errors import NoDataError
from ...runtime import IsCancelled, Log, Progress, check_cancelled
from .samples import Samples, balance

#: Thresholds tried when choosing the decision threshold.
THRESHOLDS = np.round(np.arange(0.02, 0.99, 0.01), 2)


def binary_scores(y_change: np.ndarray, predicted: np.ndarray, weight: np.ndarray) -> dict:
    """Weighted precision, recall and F1 of the change class (None where undefined)."""
    tp = float(np.sum(weight[y_change & predicted]))
    fp = float(np.sum(weight[~y_change & predicted]))
    fn = float(np.sum(weight[y_change & ~predicted]))
    precision = tp / (tp + fp) if tp + fp > 0 else None
    recall = tp / (tp + fn) if tp + fn > 0 else None
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn > 0 else None
    return {"precision": precision, "recall": recall, "f1": f1}


def f1_curve(y_change: np.ndarray, probability: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Weighted F1 of change at each of :data:`THRESHOLDS`."""
    out = []
    for t in THRESHOLDS:
        out.append(binary_scores(y_change, probability >= t, weight)["f1"] or 0.0)
    return np.array(out)


def best_threshold(y_change, probability, weight) -> float:
    """The threshold among :data:`THRESHOLDS` with the highest weighted F1 of change."""
    curve = f1_curve(y_change, probability, weight)
    return float(THRESHOLDS[int(np.argmax(curve))])


def fmt(value) -> str:
    """A score with three decimals, or 'n/a'."""
    return "n/a" if value is None else f"{value:.3f}"


@dataclass
class ChangeEstimator:
    """Builds, fits and applies the classifier on rows of the samples.

    Estimators that accept class weights get balanced class weights (unless the parameters set
    them); the others are fitted on balanced rows.
    """

    key: str
    parameters: Optional[dict]
    seed: int
    threads: int
    samples: Samples
    no_change: int

    def make(self):
        """An unfitted pipeline."""
        model = build_classifier(self.key, self.parameters, self.seed, self.threads)
        estimator = model.steps[-1][1]
        if "class_weight" in estimator.get_params() and \
                "class_weight" not in (self.parameters or {}):
            estimator.set_params(class_weight="balanced")
        return model

    def fit(self, index: np.ndarray):
        """A new pipeline fitted on the sample rows ``index``."""
        model = self.make()
        x_part, y_part = self.samples.X[index], self.samples.y[index]
        if "class_weight" not in model.steps[-1][1].get_params():
            x_part, y_part = balance(x_part, y_part, self.no_change, self.seed)
        model.fit(x_part, y_part)
        return model

    def change_probability(self, model, index: np.ndarray) -> np.ndarray:
        """1 - the probability of no change, for the sample rows ``index``."""
        proba = model.predict_proba(self.samples.X[index])
        return 1.0 - proba[:, list(model.classes_).index(self.no_change)]


def group_splits(groups: np.ndarray, grouping: str, estimator: ChangeEstimator) -> list:
    """(train, test) rows: one split per pair, or four folds of spatial tiles."""
    from sklearn.model_selection import GroupKFold

    unique = np.unique(groups)
    if grouping == "pair":
        return [(np.flatnonzero(groups != g), np.flatnonzero(groups == g)) for g in unique]
    k = min(4, unique.size)
    if k < 2:
        raise NoDataError("The labelled pixels fall in one spatial tile only; label a larger "
                          "area or give several pairs.")
    y_change = estimator.samples.y != estimator.no_change
    return list(GroupKFold(n_splits=k).split(estimator.samples.X, y_change, groups))


def leave_group_out(estimator: ChangeEstimator, groups: np.ndarray, grouping: str,
                    before: Sequence[str], progress: Progress, is_cancelled: IsCancelled,
                    log: Log) -> dict:
    """Held-out change probabilities per group, the threshold, pooled and per-pair scores.

    Raises:
        NoDataError: no held-out change pixel could be scored.
    """
    s = estimator.samples
    y_change = s.y != estimator.no_change
    splits = group_splits(groups, grouping, estimator)
    oof = np.full(y_change.size, np.nan)
    for i, (train, test) in enumerate(splits):
        check_cancelled(is_cancelled)
        if not y_change[train].any():
            continue
        oof[test] = estimator.change_probability(estimator.fit(train), test)
        progress((i + 1) / len(splits))
    scored = np.isfinite(oof)
    if not y_change[scored].any():
        raise NoDataError("No held-out change pixel could be scored; give more pairs with "
                          "change.")
    curve = f1_curve(y_change[scored], oof[scored], s.w[scored])
    threshold = float(THRESHOLDS[int(np.argmax(curve))])
    pooled = binary_scores(y_change[scored], oof[scored] >= threshold, s.w[scored])
    pooled_05 = binary_scores(y_change[scored], oof[scored] >= 0.5, s.w[scored])
    per_pair = [entry for p in range(len(before))
                if (entry := pair_scores(p, y_change, oof, scored, s, threshold, grouping,
                                         before)) is not None]
    _log_scores(per_pair, grouping, threshold, pooled, pooled_05, log)
    honest = [e["at_threshold_from_others"]["f1"] for e in per_pair
              if e.get("at_threshold_from_others") and e["at_threshold_from_others"]["f1"]
              is not None]
    return {"grouping": grouping, "folds": len(splits), "threshold": threshold,
            "pooled": pooled, "pooled_at_0_5": pooled_05, "per_pair": per_pair,
            "mean_pair_f1_threshold_from_others": float(np.mean(honest)) if honest else None,
            "f1_curve": {"thresholds": THRESHOLDS.tolist(), "f1": curve.tolist()}}


def pair_scores(p: int, y_change, oof, scored, s: Samples, threshold: float, grouping: str,
                before: Sequence[str]) -> Optional[dict]:
    """Scores of pair ``p``'s held-out pixels; with pairs as groups also at the threshold chosen
    on the other pairs only. None when the pair has no scored pixel."""
    mine = scored & (s.pair_of == p)
    if not mine.any():
        return None
    w = s.w
    others = scored & (s.pair_of != p)
    entry = {"pair": p + 1, "name": os.path.basename(os.path.dirname(before[p])) or
             os.path.basename(before[p]), "before": os.path.basename(before[p]),
             "change_share": float(np.sum(w[mine & y_change]) / np.sum(w[mine])),
             "at_threshold": binary_scores(y_change[mine], oof[mine] >= threshold, w[mine]),
             "at_0_5": binary_scores(y_change[mine], oof[mine] >= 0.5, w[mine])}
    if grouping == "pair" and others.any() and y_change[others].any():
        t_other = best_threshold(y_change[others], oof[others], w[others])
        entry["threshold_from_others"] = t_other
        entry["at_threshold_from_others"] = binary_scores(y_change[mine], oof[mine] >= t_other,
                                                          w[mine])
    return entry


def _log_scores(per_pair: List[dict], grouping: str, threshold: float, pooled: dict,
                pooled_05: dict, log: Log) -> None:
    if grouping == "pair":
        for entry in per_pair:
            s = entry.get("at_threshold_from_others", entry["at_threshold"])
            log(f"Pair {entry['pair']} held out: F1 {fmt(s['f1'])}, precision "
                f"{fmt(s['precision'])}, recall {fmt(s['recall'])} (threshold chosen on the "
                f"other pairs); F1 at 0.5: {fmt(entry['at_0_5']['f1'])}.")
    log(f"Leave-one-{grouping}-out: threshold {threshold:.2f} maximises the pooled F1 of change "
        f"({fmt(pooled['f1'])}; precision {fmt(pooled['precision'])}, recall "
        f"{fmt(pooled['recall'])}); at 0.5 the F1 is {fmt(pooled_05['f1'])}.")


def pixel_validation(estimator: ChangeEstimator, threshold: float, folds: int, seed: int,
                     progress: Progress, is_cancelled: IsCancelled) -> dict:
    """Scores of pixel-level stratified folds (optimistic: neighbours on both sides)."""
    from sklearn.model_selection import StratifiedKFold

    s = estimator.samples
    y_change = s.y != estimator.no_change
    oof = np.zeros(y_change.size)
    splits = list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(s.X, y_change))
    for i, (train, test) in enumerate(splits):
        check_cancelled(is_cancelled)
        oof[test] = estimator.change_probability(estimator.fit(train), test)
        progress((i + 1) / len(splits))
    return dict(binary_scores(y_change, oof >= threshold, s.w), folds=folds, threshold=threshold)
