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
- :func:`assess_accuracy` is the engine function behind ``landfusion:accuracyreport``.

References: Olofsson, P., Foody, G. M., Herold, M., Stehman, S. V., Woodcock, C. E., Wulder, M. A.
(2014). Good practices for estimating area and assessing accuracy of land change. Remote Sensing
of Environment 148, 42-57. Olofsson, P., Foody, G. M., Stehman, S. V., Woodcock, C. E. (2013).
Making better use of accuracy data in land change studies. Remote Sensing of Environment 129,
122-131.
"""

from __future__ import annotations

import math
from typing import List, Optional, Sequence

import numpy as np

from ..choices import SAMPLING_DESIGNS
from ..errors import InputError, NoDataError
from ..runtime import (IsCancelled, Log, Progress, check_cancelled, never_cancelled, no_log,
                      no_progress, sub_progress)

#: Normal quantile of a two-sided 95 % confidence interval.
Z95 = 1.96

#: Sampling designs understood by :func:`assess_accuracy` (the vocabulary lives in core.choices).
DESIGNS = SAMPLING_DESIGNS
DESIGN_TITLES = {
    "stratified": "stratified random, strata = map classes",
    "simple": "simple random",
    "unknown": "unknown",
}


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
    n = np.asarray(counts, dtype=np.float64)
    area = np.asarray(mapped_area, dtype=np.float64)
    k = n.shape[0]
    names = list(names) if names is not None else [str(i) for i in range(k)]
    if area.sum() <= 0:
        raise NoDataError("The map has no classified area; nothing to estimate.")
    w = area / area.sum()
    n_i = n.sum(axis=1)
    missing = [names[i] for i in range(k) if w[i] > 0 and n_i[i] == 0]
    if missing:
        raise NoDataError(
            "Map class(es) " + ", ".join(f"'{m}'" for m in missing) + " cover part of the map but "
            "have no reference sample; the stratified estimators need samples in every mapped "
            "class. Add samples there (Stratified random sample with a minimum per class).")
    notes: List[str] = []
    sampled = n_i > 0
    frac = np.zeros_like(n)
    frac[sampled] = n[sampled] / n_i[sampled, None]
    p = w[:, None] * frac  # estimated area proportions p_ij
    single = [i for i in range(k) if w[i] > 0 and n_i[i] == 1]
    for i in single:
        notes.append(f"Map class '{names[i]}' has a single sample: the variance within its stratum "
                     "is undefined (n - 1 = 0), so every standard error and confidence interval "
                     "that depends on it is not reported. Add samples to this class.")
    variance_ok = not single
    denom = np.where(n_i > 1, n_i - 1, np.nan)
    strata = w > 0

    ua_hat = np.array([frac[i, i] if sampled[i] else np.nan for i in range(k)])
    oa = float(np.trace(p))
    oa_var = None
    if variance_ok:
        oa_var = float(np.nansum((w ** 2 * ua_hat * (1 - ua_hat) / denom)[strata]))

    p_col = p.sum(axis=0)  # estimated area proportion of each reference class
    users, users_se, producers, producers_se, area_se = [], [], [], [], []
    for i in range(k):
        if not sampled[i]:
            users.append(None)
            users_se.append(None)
        else:
            users.append(float(ua_hat[i]))
            users_se.append(float(math.sqrt(ua_hat[i] * (1 - ua_hat[i]) / (n_i[i] - 1)))
                            if n_i[i] > 1 else None)
    for j in range(k):
        if p_col[j] <= 0:
            producers.append(None)
            producers_se.append(None)
        else:
            pa = float(p[j, j] / p_col[j])
            producers.append(pa)
            if variance_ok:
                # Olofsson et al. 2014, eq. 7, with mapped-area weights in place of pixel counts.
                first = (w[j] ** 2 * (1 - pa) ** 2 * ua_hat[j] * (1 - ua_hat[j]) / (n_i[j] - 1)
                         if sampled[j] and n_i[j] > 1 else 0.0)
                second = sum(w[i] ** 2 * frac[i, j] * (1 - frac[i, j]) / (n_i[i] - 1)
                             for i in range(k) if i != j and strata[i])
                producers_se.append(float(math.sqrt((first + pa ** 2 * second) / p_col[j] ** 2)))
            else:
                producers_se.append(None)
        if variance_ok:
            # Olofsson et al. 2014, eq. 10: S(p_.k) = sqrt(sum_i (W_i p_ik - p_ik^2) / (n_i. - 1)).
            terms = (w * p[:, j] - p[:, j] ** 2)[strata] / (n_i[strata] - 1)
            area_se.append(float(math.sqrt(max(terms.sum(), 0.0))))
        else:
            area_se.append(None)

    if total_area_ha is None and pixel_area_ha is not None:
        total_area_ha = float(pixel_area_ha * area.sum())
    scale = total_area_ha if total_area_ha is not None else float(area.sum())
    oa_se = math.sqrt(oa_var) if oa_var is not None else None
    return {
        "weights": w.tolist(),
        "proportions": p.tolist(),
        "map_proportions": p.sum(axis=1).tolist(),
        "reference_proportions": p_col.tolist(),
        "overall_accuracy": oa,
        "overall_accuracy_se": oa_se,
        "overall_accuracy_ci95": _ci(oa_se),
        "users_accuracy": users,
        "users_accuracy_se": users_se,
        "users_accuracy_ci95": [_ci(s) for s in users_se],
        "producers_accuracy": producers,
        "producers_accuracy_se": producers_se,
        "producers_accuracy_ci95": [_ci(s) for s in producers_se],
        "area_proportion": p_col.tolist(),
        "area_proportion_se": area_se,
        "area_proportion_ci95": [_ci(s) for s in area_se],
        "total_area_ha": scale,
        "mapped_area_ha": (w * scale).tolist(),
        "area_ha": (p_col * scale).tolist(),
        "area_ha_se": [None if s is None else s * scale for s in area_se],
        "area_ha_ci95": [None if s is None else Z95 * s * scale for s in area_se],
        "notes": notes,
    }


def _is_vector(path: str) -> bool:
    from osgeo import gdal

    from ..io.vector import split_ogr_source

    file_path, _ = split_ogr_source(path)
    gdal.PushErrorHandler("CPLQuietErrorHandler")
    try:
        ds = gdal.OpenEx(file_path, gdal.OF_VECTOR)
        return ds is not None and ds.GetLayerCount() > 0
    finally:
        gdal.PopErrorHandler()


def assess_accuracy(
    classification: str,
    reference: str,
    class_field: Optional[str] = None,
    design: str = "stratified",
    polygon_mode: str = "majority",
    output_html: Optional[str] = None,
    output_json: Optional[str] = None,
    output_csv: Optional[str] = None,
    map_nodata: Optional[float] = None,
    title: Optional[str] = None,
    progress: Progress = no_progress,
    is_cancelled: IsCancelled = never_cancelled,
    log: Log = no_log,
    warn: Log = no_log,
) -> dict:
    """Assesses a class map against reference samples and writes the report files.

    Args:
        classification: the class raster (the map).
        reference: reference points/polygons (any OGR vector; ``file|layername=x`` accepted) or a
            reference class raster.
        class_field: field of the reference layer holding the reference class (integer value or
            class name); not used for a reference raster.
        design: 'stratified' (stratified random by map class), 'simple' (simple random) or
            'unknown'. The area-adjusted estimators are computed for the first two only.
        polygon_mode: for polygon references: 'majority', 'centroid' or 'all_pixels'.
        output_html, output_json, output_csv: report files to write (each optional).
        map_nodata: overrides the classification raster's nodata value.

    Returns:
        The report as a JSON-friendly dict (the content of the JSON output), with the written
        paths under ``outputs``.

    Raises:
        LandFusionError subclasses naming the problem; no output is left behind on failure.
    """
    from .areas import count_classes
    from ..io.classmap import read_class_styling

    _check_request(design, {"html": output_html, "json": output_json, "csv": output_csv})
    log("Counting mapped pixels per class...")
    counts = count_classes(classification, map_nodata, progress=sub_progress(progress, 0, 0.4),
                           is_cancelled=is_cancelled)
    styled = {c.value: c for c in read_class_styling(classification)}
    if not styled:
        log("The classification raster has no category names; classes are shown by value.")
    samples = _read_reference(classification, reference, class_field, styled, polygon_mode,
                              counts.nodata, sub_progress(progress, 0.4, 0.8), is_cancelled, log,
                              warn)
    log(f"{samples.count} reference samples paired with the map.")

    values = sorted(set(counts.pixels) | set(np.unique(samples.map_values).tolist())
                    | set(np.unique(samples.reference_values).tolist()))
    if len(values) > 1000:
        raise InputError(f"The classification and reference hold {len(values)} distinct values; "
                         "a class raster has a few classes. Check that the inputs are class maps.")
    classes = _class_list(values, styled, samples.reference_names)
    names = [c["name"] for c in classes]
    matrix = error_matrix(samples.map_values, samples.reference_values, values, samples.weights)
    notes = list(samples.notes) + _class_notes(values, names, matrix, counts.pixels)
    mapped_ha = [counts.area_ha.get(v, 0.0) for v in values]
    estimates = _area_adjusted(design, matrix, mapped_ha, counts.total_area_ha, names,
                               samples.independent, notes, warn)
    for note in notes[len(samples.notes):]:
        warn(note)

    from datetime import datetime, timezone

    result = {
        "title": title or "Accuracy assessment",
        "generated_utc": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
        "classification": classification,
        "reference": samples.source,
        "class_field": class_field if samples.kind != "raster" else None,
        "orientation": "rows = map classes, columns = reference classes",
        "design": design,
        "design_title": DESIGN_TITLES[design],
        "classes": classes,
        "samples": {
            "count": samples.count, "kind": samples.kind, "polygon_mode": samples.mode or None,
            "independent": samples.independent, "features": samples.features,
            "outside_map": samples.outside, "on_map_nodata": samples.on_map_nodata,
            "unlabelled": samples.unlabelled,
        },
        "map": {
            "nodata": counts.nodata,
            "pixel_area_ha": counts.pixel_area_ha,
            "pixels": [int(counts.pixels.get(v, 0)) for v in values],
            "area_ha": mapped_ha,
            "total_area_ha": counts.total_area_ha,
        },
        "error_matrix": matrix.tolist(),
        "metrics": plain_metrics(matrix),
        "area_adjusted": estimates,
        "confidence_level": 0.95,
        "notes": notes,
    }
    check_cancelled(is_cancelled)
    from .report import write_reports

    result["outputs"] = write_reports(result, output_html, output_json, output_csv)
    progress(1.0)
    return result


def _check_request(design: str, outputs: dict) -> None:
    """Checks the design and the report outputs before any work."""
    from ..io.raster import check_writable

    if design not in DESIGNS:
        raise InputError(f"Unknown sampling design '{design}'; use one of {', '.join(DESIGNS)}.")
    for key, path in outputs.items():
        if path:
            check_writable(path, f"{key.upper()} report")
    if not any(outputs.values()):
        raise InputError("Choose at least one report output (HTML, JSON or CSV).")


def _read_reference(classification, reference, class_field, styled, polygon_mode, map_nodata,
                    progress, is_cancelled, log, warn):
    """Pairs the reference (vector or raster) with the map."""
    from .reference import read_raster_reference, read_vector_reference

    if _is_vector(reference):
        return read_vector_reference(
            classification, reference, class_field or "",
            {v: c.name for v, c in styled.items()}, polygon_mode, map_nodata=map_nodata,
            progress=progress, is_cancelled=is_cancelled, log=log, warn=warn)
    return read_raster_reference(classification, reference, map_nodata=map_nodata,
                                 progress=progress, is_cancelled=is_cancelled, log=log,
                                 warn=warn)


def _class_list(values, styled, reference_names) -> list:
    """``[{"value", "name", "color"}]``: the map's names and colours, else the reference's names
    and palette colours."""
    from ..io.classmap import palette_color

    classes = []
    for index, value in enumerate(values):
        if value in styled:
            c = styled[value]
            classes.append({"value": value, "name": c.name, "color": c.hex()})
        else:
            name = reference_names.get(value, str(value))
            classes.append({"value": value, "name": name,
                            "color": "#%02x%02x%02x" % palette_color(index)})
    return classes


def _class_notes(values, names, matrix: np.ndarray, pixels: dict) -> list:
    """Notes on classes only one side (map or reference) knows."""
    notes = []
    for i, value in enumerate(values):
        if matrix[:, i].sum() > 0 and pixels.get(value, 0) == 0:
            notes.append(f"Class '{names[i]}' occurs in the reference but the map never assigns "
                         "it (its producer's accuracy is 0).")
        elif pixels.get(value, 0) > 0 and matrix[:, i].sum() == 0 and matrix[i].sum() > 0:
            notes.append(f"Map class '{names[i]}' is never found in the reference sample (its "
                         "user's accuracy is 0).")
    return notes


def _area_adjusted(design: str, matrix: np.ndarray, mapped_ha, total_area_ha: float, names,
                   independent: bool, notes: list, warn: Log) -> Optional[dict]:
    """The area-adjusted estimates for a known design (None otherwise), with their notes."""
    if design == "unknown":
        notes.append("Sampling design unknown: the area-adjusted estimators are not computed, "
                     "because the sample need not represent the map's classes in known "
                     "proportions. The sample-count metrics describe this sample only.")
        return None
    try:
        estimates = stratified_estimates(matrix, mapped_ha, total_area_ha=total_area_ha,
                                         names=names)
    except NoDataError as exc:
        notes.append(f"Area-adjusted estimates not computed: {exc}")
        warn(str(exc))
        return None
    notes.extend(estimates.pop("notes"))
    if design == "simple":
        notes.append("Simple random sample: the stratified estimators are applied with the "
                     "map classes as post-strata (Olofsson et al. 2014).")
    if not independent:
        notes.append("The confidence intervals assume independent samples; with all "
                     "pixels of polygons or of a reference raster they are too narrow.")
    return estimates
