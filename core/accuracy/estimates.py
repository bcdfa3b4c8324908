"""Accuracy assessment of a class map: error matrix, plain metrics and area-adjusted estimators.

Orientation everywhere: **rows = map classes, columns = reference classes** (as in Olofsson et
al. 2014), so ``counts[i, j]`` is the number of samples mapped as class i and labelled j.

- :func:`error_matrix` builds the sample-count matrix from paired labels.
- :func:`plain_metrics` gives overall accuracy, Cohen's kappa, user's / producer's accuracy, F1
  and macro-F1 from sample counts (equal to scikit-learn's on the same labels).
- :func:`stratified_estimates` gives the estimators of Olofsson et al. (2013, 2014) for a sample
  stratified by map class (or a simple random sample post-stratified by map class): the error
  matrix in estimated area proportions, overall / user's / producer's accuracy and class areas
  with 95 % confidence intervals.

The engine behind ``landfusion:accuracyreport`` is :func:`.assess.assess_accuracy`.

References: Olofsson, P., Foody, G. M., Herold, M., Stehman, S. V., Woodcock, C. E., Wulder, M. A.
(2014). Good practices for estimating area and assessing accuracy of land change. Remote Sensing
of Environment 148, 42-57. Olofsson, P., Foody, G. M., Stehman, S. V., Woodcock, C. E. (2013).
Making better use of accuracy data in land change studies. Remote Sensing of Environment 129,
122-131.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np

from ..errors import InputError, NoDataError

#: Normal quantile of a two-sided 95 % confidence interval.
Z95 = 1.96


def error_matrix(map_labels: Sequence[int], reference_labels: Sequence[int],
                 classes: Sequence[int], counts: Optional[Sequence[int]] = None) -> np.ndarray:
    """Returns the sample-count matrix, rows = map, columns = reference, in ``classes`` order.

    Args:
        map_labels, reference_labels: the two labels of each sample (or of each distinct pair).
        classes: class values, in matrix order.
        counts: number of samples of each pair (default: 1 each).

    Raises:
        InputError: when a label is not one of ``classes``.
    """
    order = np.asarray([int(c) for c in classes], dtype=np.int64)
    m = np.asarray(map_labels, dtype=np.int64).ravel()
    r = np.asarray(reference_labels, dtype=np.int64).ravel()
    if m.shape != r.shape:
        raise InputError("Map and reference labels differ in number; pair each sample's labels.")
    k = order.size
    sorter = np.argsort(order)
    indices = []
    for labels in (m, r):
        pos = np.clip(np.searchsorted(order, labels, sorter=sorter), 0, max(k - 1, 0))
        idx = sorter[pos] if k else pos
        bad = order[idx] != labels if k else np.ones(labels.shape, bool)
        if bad.any():
            raise InputError(f"Labels {sorted(set(labels[bad].tolist()))} are not among the "
                             f"classes {order.tolist()}.")
        indices.append(idx)
    weights = None if counts is None else np.asarray(counts, dtype=np.float64).ravel()
    flat = np.bincount(indices[0] * k + indices[1], weights=weights, minlength=k * k)
    return np.rint(flat).astype(np.int64).reshape(k, k)


def _ratio(num: float, den: float) -> Optional[float]:
    return float(num) / float(den) if den else None


def _kappa(counts: np.ndarray) -> Optional[float]:
    """Cohen's kappa of an error matrix (scikit-learn's, on the cells weighted by their counts);
    None when undefined (no sample, or every sample in one class on both sides)."""
    import warnings

    from sklearn.metrics import cohen_kappa_score

    rows, cols = np.nonzero(counts)
    if rows.size == 0:
        return None
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        kappa = cohen_kappa_score(rows, cols, labels=np.arange(len(counts)),
                                  sample_weight=counts[rows, cols])
    return float(kappa) if np.isfinite(kappa) else None


def plain_metrics(counts: np.ndarray) -> dict:
    """Sample-count metrics of an error matrix (rows = map, columns = reference).

    Returns a dict with ``n``, ``overall_accuracy``, ``kappa``, and per class (lists in matrix
    order) ``users_accuracy`` (precision of the map class), ``producers_accuracy`` (recall of the
    reference class), ``f1``, ``map_samples``, ``reference_samples``; ``macro_f1`` is the mean F1
    over the classes present in the sample (map or reference side), as scikit-learn's
    ``f1_score(average='macro')``. Undefined values (0 / 0) are None, except F1, which is 0 for
    a class present in the sample but never correct (scikit-learn's convention).
    """
    counts = np.asarray(counts, dtype=np.float64)
    n = counts.sum()
    rows = counts.sum(axis=1)
    cols = counts.sum(axis=0)
    diag = np.diag(counts)
    ua = [_ratio(d, r) for d, r in zip(diag, rows)]
    pa = [_ratio(d, c) for d, c in zip(diag, cols)]
    f1 = []
    for d, r, c in zip(diag, rows, cols):
        f1.append(None if r + c == 0 else float(2 * d / (r + c)))
    present = [v for v in f1 if v is not None]
    return {
        "n": int(n),
        "overall_accuracy": _ratio(diag.sum(), n),
        "kappa": _kappa(counts),
        "users_accuracy": ua,
        "producers_accuracy": pa,
        "f1": f1,
        "macro_f1": float(np.mean(present)) if present else None,
        "map_samples": [int(v) for v in rows],
        "reference_samples": [int(v) for v in cols],
    }


def _ci(se: Optional[float]) -> Optional[float]:
    return None if se is None else Z95 * se


@dataclass
class _Strata:
    """A sample stratified by map class, in the notation of Olofsson et al. (2014)."""

    n: np.ndarray  # sample counts n_ij, rows = map class (stratum)
    w: np.ndarray  # mapped-area weights W_i
    names: List[str]

    @property
    def k(self) -> int:
        return self.n.shape[0]

    @property
    def n_i(self) -> np.ndarray:
        return self.n.sum(axis=1)

    @property
    def sampled(self) -> np.ndarray:
        return self.n_i > 0

    @property
    def strata(self) -> np.ndarray:
        return self.w > 0

    @property
    def frac(self) -> np.ndarray:
        """n_ij / n_i. (0 in strata without samples)."""
        frac = np.zeros_like(self.n)
        frac[self.sampled] = self.n[self.sampled] / self.n_i[self.sampled, None]
        return frac

    @property
    def p(self) -> np.ndarray:
        """Estimated area proportions p_ij."""
        return self.w[:, None] * self.frac

    @property
    def single(self) -> List[int]:
        """Mapped strata with a single sample (their variance is undefined)."""
        return [i for i in range(self.k) if self.w[i] > 0 and self.n_i[i] == 1]

    @property
    def users_hat(self) -> np.ndarray:
        frac = self.frac
        return np.array([frac[i, i] if self.sampled[i] else np.nan for i in range(self.k)])


def _strata(counts: np.ndarray, mapped_area: Sequence[float],
            names: Optional[Sequence[str]]) -> _Strata:
    """Checks that every mapped class has samples and returns the strata."""
    n = np.asarray(counts, dtype=np.float64)
    area = np.asarray(mapped_area, dtype=np.float64)
    names = list(names) if names is not None else [str(i) for i in range(n.shape[0])]
    if area.sum() <= 0:
        raise NoDataError("The map has no classified area; nothing to estimate.")
    s = _Strata(n, area / area.sum(), names)
    missing = [names[i] for i in range(s.k) if s.w[i] > 0 and s.n_i[i] == 0]
    if missing:
        raise NoDataError(
            "Map class(es) " + ", ".join(f"'{m}'" for m in missing) + " cover part of the map but "
            "have no reference sample; the stratified estimators need samples in every mapped "
            "class. Add samples there (Stratified random sample with a minimum per class).")
    return s


def _overall_se(s: _Strata) -> Optional[float]:
    """Standard error of the overall accuracy (Olofsson et al. 2014, eq. 5)."""
    if s.single:
        return None
    ua, denom = s.users_hat, np.where(s.n_i > 1, s.n_i - 1, np.nan)
    return math.sqrt(float(np.nansum((s.w ** 2 * ua * (1 - ua) / denom)[s.strata])))


def _users(s: _Strata) -> tuple:
    """User's accuracy of each map class and its standard error (eq. 6)."""
    ua, n_i = s.users_hat, s.n_i
    users = [float(ua[i]) if s.sampled[i] else None for i in range(s.k)]
    users_se = [float(math.sqrt(ua[i] * (1 - ua[i]) / (n_i[i] - 1)))
                if s.sampled[i] and n_i[i] > 1 else None for i in range(s.k)]
    return users, users_se


def _producers(s: _Strata) -> tuple:
    """Producer's accuracy of each reference class and its standard error (eq. 7)."""
    p, frac, w, n_i, ua = s.p, s.frac, s.w, s.n_i, s.users_hat
    p_col = p.sum(axis=0)
    producers, producers_se = [], []
    for j in range(s.k):
        if p_col[j] <= 0:
            producers.append(None)
            producers_se.append(None)
            continue
        pa = float(p[j, j] / p_col[j])
        producers.append(pa)
        if s.single:
            producers_se.append(None)
            continue
        # Olofsson et al. 2014, eq. 7, with mapped-area weights in place of pixel counts.
        first = (w[j] ** 2 * (1 - pa) ** 2 * ua[j] * (1 - ua[j]) / (n_i[j] - 1)
                 if s.sampled[j] and n_i[j] > 1 else 0.0)
        second = sum(w[i] ** 2 * frac[i, j] * (1 - frac[i, j]) / (n_i[i] - 1)
                     for i in range(s.k) if i != j and s.strata[i])
        producers_se.append(float(math.sqrt((first + pa ** 2 * second) / p_col[j] ** 2)))
    return producers, producers_se


def _area_se(s: _Strata) -> List[Optional[float]]:
    """Standard error of each reference class's area proportion (eq. 10):
    S(p_.k) = sqrt(sum_i (W_i p_ik - p_ik^2) / (n_i. - 1))."""
    if s.single:
        return [None] * s.k
    p, strata = s.p, s.strata
    return [float(math.sqrt(max(((s.w * p[:, j] - p[:, j] ** 2)[strata]
                                 / (s.n_i[strata] - 1)).sum(), 0.0)))
            for j in range(s.k)]


def stratified_estimates(counts: np.ndarray, mapped_area: Sequence[float],
                         pixel_area_ha: Optional[float] = None,
                         total_area_ha: Optional[float] = None,
                         names: Optional[Sequence[str]] = None) -> dict:
    """Olofsson et al. (2014) estimators for a sample stratified by map class.

    Args:
        counts: sample counts, rows = map class (= stratum), columns = reference class.
        mapped_area: mapped area of each map class (pixels or hectares: only the proportions
            W_i matter), in matrix order.
        total_area_ha: total mapped area in hectares; class areas are ``total * p_.k``. When
            None, ``pixel_area_ha * sum(mapped_area)`` is used; when both are None the areas are
            reported in the units of ``mapped_area``.
        names: class names used in the notes.

    Returns:
        A dict with the weights, the matrix of estimated area proportions, overall / user's /
        producer's accuracy, estimated area proportions and areas, each with a standard error
        and a 95 % confidence half-width (``*_ci95``), and ``notes``. A quantity whose variance
        is undefined (a stratum with a single sample) has a None standard error and a note.

    Raises:
        NoDataError: when a mapped class has no sample (its stratum cannot be estimated).
    """
    s = _strata(counts, mapped_area, names)
    notes = [f"Map class '{s.names[i]}' has a single sample: the variance within its stratum "
             "is undefined (n - 1 = 0), so every standard error and confidence interval that "
             "depends on it is not reported. Add samples to this class." for i in s.single]
    p = s.p
    p_col = p.sum(axis=0)  # estimated area proportion of each reference class
    oa_se = _overall_se(s)
    users, users_se = _users(s)
    producers, producers_se = _producers(s)
    area_se = _area_se(s)
    mapped_total = float(np.sum(np.asarray(mapped_area, dtype=np.float64)))
    if total_area_ha is None and pixel_area_ha is not None:
        total_area_ha = float(pixel_area_ha * mapped_total)
    scale = total_area_ha if total_area_ha is not None else mapped_total
    return {
        "weights": s.w.tolist(),
        "proportions": p.tolist(),
        "map_proportions": p.sum(axis=1).tolist(),
        "reference_proportions": p_col.tolist(),
        "overall_accuracy": float(np.trace(p)),
        "overall_accuracy_se": oa_se,
        "overall_accuracy_ci95": _ci(oa_se),
        "users_accuracy": users,
        "users_accuracy_se": users_se,
        "users_accuracy_ci95": [_ci(se) for se in users_se],
        "producers_accuracy": producers,
        "producers_accuracy_se": producers_se,
        "producers_accuracy_ci95": [_ci(se) for se in producers_se],
        "area_proportion": p_col.tolist(),
        "area_proportion_se": area_se,
        "area_proportion_ci95": [_ci(se) for se in area_se],
        "total_area_ha": scale,
        "mapped_area_ha": (s.w * scale).tolist(),
        "area_ha": (p_col * scale).tolist(),
        "area_ha_se": [None if se is None else se * scale for se in area_se],
        "area_ha_ci95": [None if se is None else Z95 * se * scale for se in area_se],
        "notes": notes,
    }
