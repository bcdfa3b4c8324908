"""Training change models from labelled BEFORE/AFTER pairs.

Each pair (typically one city or one scene) gives samples: every labelled pixel's change features
(:mod:`features`). Change is rare (often 1-4 % of the pixels), so

- samples are drawn per pair and class (all change pixels up to a cap, a uniform share of the
  no-change pixels), and each sample carries the inverse of its drawing rate as a weight, so
  precision, recall and F1 are estimated for the true class proportions of every pair;
- classifiers that accept class weights are trained with balanced class weights; the others on
  balanced samples;
- validation leaves one pair out at a time (pixels of one pair never sit on both sides of a
  split; neighbouring pixels are nearly identical, so pixel-level folds are optimistic and are
  only reported beside); with a single pair, spatial tiles of the pair are the groups;
- the decision threshold on the change probability is the one that maximises the F1 of change
  over the pooled held-out predictions. It is stored in the model. The report also gives, per
  held-out pair, the F1 at the threshold chosen on the OTHER pairs only (never tuned on the pair
  it is scored on) and at 0.5.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import time
from typing import List, Optional, Sequence

import numpy as np

from ..choices import CLASSIFIERS
from ..classification.train import algorithm_key, build_classifier
from ..errors import InputError, ModelError, NoDataError
from ..io import raster as raster_io
from ..io.outputs import check_writable, remove_outputs
from ..io.reports import json_safe
from ..io.classmap import ClassInfo, choose_nodata, palette_color
from ..runtime import (
    IsCancelled, Log, Progress, check_cancelled, never_cancelled, no_log, no_progress, sub_progress,
)
from .features import (
    DEFAULT_GROUPS, DEFAULT_SCALES, FeatureSpec, bytes_per_pixel, compute_features,
    difference_statistics,
)
from .pairs import Pair, check_pairs, comparable_band, warped_on

#: Thresholds tried when choosing the decision threshold.
THRESHOLDS = np.round(np.arange(0.02, 0.99, 0.01), 2)
#: Size, in pixels, of the spatial tiles used as groups when there is a single pair.
TILE_GROUP = 64
_NO_CHANGE_NAMES = re.compile(r"^\s*(no[\s_-]*change|unchanged|stable|no)\s*$", re.I)


def parse_class_names(text: str) -> dict:
    """Parses ``"1=no change,2=change"`` into ``{1: "no change", 2: "change"}``."""
    names = {}
    for item in (p.strip() for p in re.split(r"[,;\n]", text or "")):
        if not item:
            continue
        key, sep, name = item.partition("=")
        try:
            value = int(key.strip())
        except ValueError:
            value = None
        if not sep or value is None or not name.strip():
            raise InputError(f"'{item}' in the class names is not of the form id=name "
                             "(e.g. 1=no change,2=change).")
        names[value] = name.strip()
    return names


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


class _Samples:
    def __init__(self):
        self.X, self.y, self.w, self.pair, self.tile = [], [], [], [], []

    def add(self, X, y, w, pair, tile):
        self.X.append(X)
        self.y.append(y)
        self.w.append(w)
        self.pair.append(np.full(y.size, pair, np.int32))
        self.tile.append(tile)

    def arrays(self):
        if not self.y:
            return None
        return (np.concatenate(self.X), np.concatenate(self.y), np.concatenate(self.w),
                np.concatenate(self.pair), np.concatenate(self.tile))


def _label_sources(labels, training, class_field, pairs_before, label_nodata, stack, log):
    """Returns one label raster path per pair (polygons are burnt onto each BEFORE grid)."""
    if labels:
        if len(labels) != len(pairs_before):
            raise InputError(f"{len(pairs_before)} pair(s) but {len(labels)} label raster(s): give "
                             "one label raster per pair, in the same order.")
        return list(labels)
    if not training:
        raise InputError("Give label rasters (one per pair) or training polygons with a class "
                         "field.")
    if not class_field:
        raise InputError("Training polygons need a class field (integer class ids).")
    from osgeo import gdal, ogr

    from ..io.vector import open_vector_layer, split_ogr_source

    dataset, layer = open_vector_layer(training, what="Training layer")
    definition = layer.GetLayerDefn()
    index = definition.GetFieldIndex(class_field)
    if index < 0:
        raise InputError(f"The training layer has no field '{class_field}'.")
    if definition.GetFieldDefn(index).GetType() not in (ogr.OFTInteger, ogr.OFTInteger64):
        raise InputError(f"The class field '{class_field}' must hold integer class ids (for "
                         "example 1 = no change, 2 = change).")
    folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="landfusion-labels-"))
    paths = []
    path, layer_name = split_ogr_source(training)
    for i, before in enumerate(pairs_before):
        with raster_io.open_raster(before, "BEFORE raster") as src:
            out = os.path.join(folder, f"labels_{i}.tif")
            driver = gdal.GetDriverByName("GTiff")
            target = driver.Create(out, src.width, src.height, 1, gdal.GDT_UInt16,
                                   ["TILED=YES", "COMPRESS=DEFLATE"])
            target.SetGeoTransform(src.transform.to_gdal())
            target.SetProjection(src.crs.to_wkt() if src.crs else "")
            target.GetRasterBand(1).SetNoDataValue(0)
            target.GetRasterBand(1).Fill(0)
            result = gdal.Rasterize(target, path, layers=[layer.GetName()], attribute=class_field)
            target = None
            if result is None:
                raise InputError(f"The training polygons cannot be burnt onto '{before}'.")
        paths.append(out)
    log(f"Training polygons burnt onto {len(paths)} BEFORE grid(s) (class 0 = unlabelled).")
    del dataset
    return paths


def _count_labels(pair: Pair, label_path: str, label_nodata, stack) -> dict:
    """Pixels per class id of a label raster on the pair's grid (nodata excluded)."""
    src = stack.enter_context(raster_io.open_raster(label_path, "Label raster"))
    from .pairs import check_overlap

    check_overlap(pair.before, src, pair.before_path, label_path)
    nodata = label_nodata if label_nodata is not None else src.nodata
    labels = warped_on(pair.before, src, True, stack, nodata)
    if labels is not src and nodata is None:
        nodata = -1
    counts = {}
    for block in raster_io.plan_blocks(pair.width, pair.height, 8, 64):
        values = labels.read(1, window=block.window)
        keep = values != nodata if nodata is not None else np.ones(values.shape, bool)
        unique, n = np.unique(values[keep], return_counts=True)
        for u, c in zip(unique.tolist(), n.tolist()):
            counts[int(u)] = counts.get(int(u), 0) + int(c)
    return {"reader": labels, "nodata": nodata, "counts": counts}


def train_change_model(
    before: Sequence[str],
    after: Sequence[str],
    model_path: str,
    report_path: Optional[str] = None,
    labels: Optional[Sequence[str]] = None,
    label_nodata: Optional[int] = None,
    training: Optional[str] = None,
    class_field: Optional[str] = None,
    class_names: Optional[str] = None,
    algorithm="random_forest",
    parameters: Optional[dict] = None,
    feature_groups: Sequence[str] = DEFAULT_GROUPS,
    scales: Sequence[int] = DEFAULT_SCALES,
    samples_per_pair: int = 10000,
    pixel_folds: int = 3,
    seed: int = 0,
    threads: int = 0,
    memory_mb: float = raster_io.DEFAULT_MEMORY_MB,
    progress: Progress = no_progress,
    is_cancelled: IsCancelled = never_cancelled,
    log: Log = no_log,
    warn: Log = no_log,
) -> dict:
    """Trains a change model on BEFORE/AFTER pairs; writes the ONNX model and the reports.

    Args:
        before, after: the pairs' rasters, in the same order; bands matched by name, AFTER warped
            onto BEFORE's grid when needed.
        model_path: ``.onnx`` file to write.
        report_path: HTML report (a JSON report is written beside it); optional.
        labels: one label raster per pair (any grid; nearest resampling); class ids as values.
        label_nodata: value of unlabelled pixels (default: the label raster's nodata; 0 is always
            unlabelled for burnt polygons).
        training, class_field: polygons with integer class ids instead of label rasters.
        class_names: ``"1=no change,2=change"``; the class named "no change" (else the lowest
            id) is the no-change class.
        algorithm: the classifier (key, name or index of :data:`core.choices.CLASSIFIERS`).
        parameters: scikit-learn parameters overriding the defaults.
        feature_groups, scales: see :class:`features.FeatureSpec`.
        samples_per_pair: cap of samples drawn per pair and class.
        pixel_folds: folds of the pixel-level validation reported beside (0: none).

    Returns:
        Output paths, per-pair and pooled scores, the threshold and sample counts.
    """
    started = time.time()
    before, after = list(before or []), list(after or [])
    check_pairs(before, after)
    key = algorithm_key(algorithm)
    check_writable(model_path, "Model file")
    json_path = None
    if report_path:
        check_writable(report_path, "Report")
        json_path = os.path.splitext(report_path)[0] + ".json"
    for out in [model_path, report_path, json_path]:
        if out and os.path.realpath(out) in {os.path.realpath(p) for p in
                                             before + after + list(labels or [])}:
            raise InputError(f"The output '{out}' is also an input; choose another file name.")
    build_classifier(key, parameters, seed, threads)
    names = parse_class_names(class_names) if class_names else {}
    if samples_per_pair < 100:
        raise InputError("Draw at least 100 samples per pair and class.")

    with contextlib.ExitStack() as stack:
        stack.enter_context(raster_io.gdal_env())
        pairs = [stack.enter_context(Pair(b, a, what=f"Pair {i + 1}"))
                 for i, (b, a) in enumerate(zip(before, after))]
        bands = _common_bands(pairs)
        spec = FeatureSpec(bands, list(feature_groups), list(scales))
        for i, pair in enumerate(pairs):
            if pair.coverage < 0.999:
                warn(f"Pair {i + 1}: the AFTER raster covers {100 * pair.coverage:.1f} % of the "
                     "BEFORE raster; pixels outside are left out.")
        label_paths = _label_sources(labels, training, class_field, before, label_nodata, stack,
                                     log)
        label_info = [_count_labels(p, lp, label_nodata, stack)
                      for p, lp in zip(pairs, label_paths)]
        values = sorted({v for info in label_info for v in info["counts"]})
        if len(values) < 2:
            raise NoDataError(
                f"The labels hold {'only class ' + str(values[0]) if values else 'no class'}: a "
                "change model needs labelled no-change AND change pixels. Check the label "
                "rasters and LABEL_NODATA.")
        no_change = _no_change_class(values, names)
        classes = [ClassInfo(v, names.get(v, "no change" if v == no_change else
                                          ("change" if len(values) == 2 else f"change {v}")),
                             (200, 200, 200) if v == no_change else
                             ((220, 30, 30) if len(values) == 2 else palette_color(i)))
                   for i, v in enumerate(values)]
        for i, (pair, info) in enumerate(zip(pairs, label_info)):
            n_change = sum(c for v, c in info["counts"].items() if v != no_change)
            total = sum(info["counts"].values())
            log(f"Pair {i + 1} ({os.path.basename(pair.before_path)}): {total} labelled pixels, "
                f"{n_change} change ({100 * n_change / max(total, 1):.2f} %).")
            if total == 0:
                raise NoDataError(f"Pair {i + 1}: the label raster '{label_paths[i]}' has no "
                                  "labelled pixel over the pair (check its extent and nodata).")
            if n_change == 0:
                if len(pairs) == 1:
                    raise NoDataError(
                        f"The label raster '{label_paths[i]}' has no change pixel (only class "
                        f"{no_change}): a change model cannot learn change from it. Use labels "
                        "with change pixels, or check CLASS_NAMES and LABEL_NODATA.")
                warn(f"Pair {i + 1}: the labels hold no change pixel; the pair only gives "
                     "no-change examples and its own F1 is undefined.")
        if all(sum(c for v, c in info["counts"].items() if v != no_change) == 0
               for info in label_info):
            raise NoDataError("No label raster holds a change pixel; a change model cannot be "
                              "trained.")
        log(f"Features ({len(spec.names())}): {', '.join(spec.groups)} over bands "
            f"{', '.join(bands)}; windows {spec.scales}.")
        samples = _extract(pairs, label_info, spec, no_change, samples_per_pair, seed, memory_mb,
                           sub_progress(progress, 0.0, 0.3), is_cancelled)
    X, y, w, pair_of, tile = samples
    y_change = y != no_change
    log(f"Samples: {y.size} ({int(y_change.sum())} change) from {len(before)} pair(s).")

    if len(before) >= 2:
        groups, grouping = pair_of, "pair"
    else:
        groups, grouping = tile, "tile"
        warn(f"A single pair: validation leaves out spatial tiles of {TILE_GROUP} x "
             f"{TILE_GROUP} pixels of the pair instead of whole pairs; give several pairs "
             "(cities, scenes) for an estimate of how the model does on new places.")

    def make_model(train_y=None):
        model = build_classifier(key, parameters, seed, threads)
        estimator = model.steps[-1][1]
        if "class_weight" in estimator.get_params() and "class_weight" not in (parameters or {}):
            estimator.set_params(class_weight="balanced")
        return model

    def fit(model, index):
        x_part, y_part = X[index], y[index]
        estimator = model.steps[-1][1]
        if "class_weight" not in estimator.get_params():
            x_part, y_part = _balance(x_part, y_part, no_change, seed)
        model.fit(x_part, y_part)
        return model

    def change_probability(model, index):
        proba = model.predict_proba(X[index])
        column = list(model.classes_).index(no_change)
        return 1.0 - proba[:, column]

    validation = _leave_group_out(make_model, fit, change_probability, X, y_change, w, groups,
                                  grouping, pair_of, len(before), before, seed,
                                  sub_progress(progress, 0.3, 0.75), is_cancelled, log)
    threshold = validation["threshold"]
    pixel = None
    if pixel_folds and pixel_folds >= 2:
        pixel = _pixel_validation(make_model, fit, change_probability, X, y_change, w, threshold,
                                  pixel_folds, seed, sub_progress(progress, 0.75, 0.85),
                                  is_cancelled)
        log(f"Pixel-level {pixel_folds}-fold validation (optimistic, for comparison): F1 "
            f"{_f(pixel['f1'])}, precision {_f(pixel['precision'])}, recall "
            f"{_f(pixel['recall'])}.")

    check_cancelled(is_cancelled)
    log(f"Fitting the final {CLASSIFIERS.title(key)} on all {y.size} samples...")
    model = fit(make_model(), np.arange(y.size))
    progress(0.92)
    check_cancelled(is_cancelled)

    from ..models.statistics import band_statistics
    from ..models.pixel_model import sklearn_to_onnx
    from .model import add_change_output, write_change_model

    onnx_model = add_change_output(sklearn_to_onnx(model, X.shape[1]),
                                   list(model.classes_).index(no_change))
    agreement = _verify(onnx_model, model, X, no_change, seed)
    if agreement["max_change_probability_difference"] > 1e-3:
        warn("The ONNX model's change probabilities differ from the trained model's by up to "
             f"{agreement['max_change_probability_difference']:.2e}.")
    importance = _importance(model, spec.names())
    with raster_io.open_raster(before[0], "BEFORE raster") as src:
        crs_wkt = src.crs.to_wkt() if src.crs else ""
        pixel_size = [abs(src.transform.a), abs(src.transform.e)]
    scores = {"method": f"leave one {grouping} out", "threshold": threshold,
              "f1": validation["pooled"]["f1"], "precision": validation["pooled"]["precision"],
              "recall": validation["pooled"]["recall"],
              "pixel_f1": pixel["f1"] if pixel else None}
    report = {
        "title": "LandFusion change model training report",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "pairs": [{"before": os.path.abspath(b), "after": os.path.abspath(a),
                   "labels": labels[i] if labels else "(training polygons)",
                   "label_counts": {str(k): v for k, v in label_info[i]["counts"].items()},
                   "after_resampled": pairs[i].resampled}
                  for i, (b, a) in enumerate(zip(before, after))],
        "algorithm": CLASSIFIERS.title(key), "algorithm_key": key,
        "parameters": json_safe(model.steps[-1][1].get_params()),
        "scaling": ("standardisation inside the model" if "scale" in model.named_steps else
                    "none needed"),
        "imbalance": ("balanced class weights" if "class_weight" in
                      model.steps[-1][1].get_params() else "balanced training samples"),
        "features": spec.to_dict(),
        "classes": [c.to_dict() for c in classes], "no_change_class": no_change,
        "samples": {"total": int(y.size), "change": int(y_change.sum()),
                    "per_pair_cap": samples_per_pair},
        "validation": validation, "pixel_validation": pixel, "scores": scores,
        "threshold": threshold, "feature_importance": importance,
        "onnx_check": agreement, "model": os.path.abspath(model_path), "seed": seed,
        "training_seconds": round(time.time() - started, 2),
    }
    write_change_model(
        onnx_model, model_path, spec, classes, no_change, threshold,
        f"maximum F1 of change over leave-one-{grouping}-out predictions",
        choose_nodata(classes), crs_wkt, pixel_size,
        extra={"algorithm": CLASSIFIERS.title(key), "parameters": report["parameters"],
               "scores": scores, "samples": int(y.size),
               "pairs": [os.path.basename(b) for b in before]},
        band_stats=band_statistics(X))
    written = {"model": model_path, "report": None, "report_json": None}
    if report_path:
        from .report import write_training_report

        try:
            write_training_report(report, report_path, json_path)
        except BaseException:
            remove_outputs([model_path])
            raise
        written.update(report=report_path, report_json=json_path)
    progress(1.0)
    return dict(written, threshold=threshold, scores=scores, validation=validation,
                pixel_validation=pixel, classes=classes, no_change=no_change,
                features=spec.names(), samples=int(y.size), importance=importance)


def _f(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _common_bands(pairs: List[Pair]) -> List[str]:
    bands = list(pairs[0].bands)
    for i, pair in enumerate(pairs[1:], start=2):
        keys = {comparable_band(b) for b in pair.bands}
        missing = [b for b in bands if comparable_band(b) not in keys]
        if len(missing) == len(bands):
            raise InputError(f"Pair {i} has no band in common with pair 1 ({', '.join(bands)}); "
                             "all pairs must be stacks of the same bands.")
        bands = [b for b in bands if comparable_band(b) in keys]
    for pair in pairs:
        pair.requested = bands
        pair._match_bands(pair.after_source)
    return bands


def _no_change_class(values: List[int], names: dict) -> int:
    for value, name in names.items():
        if _NO_CHANGE_NAMES.match(name):
            if value not in values:
                raise InputError(f"Class {value} ('{name}') does not occur in the labels (they "
                                 f"hold {', '.join(map(str, values))}).")
            return value
    return min(values)


def _extract(pairs, label_info, spec, no_change, cap, seed, memory_mb, progress, is_cancelled):
    rng = np.random.default_rng(seed)
    samples = _Samples()
    halo = spec.halo
    bpp = bytes_per_pixel(spec) + 8
    total_blocks = 0
    plans = []
    for pair in pairs:
        plan = raster_io.plan_blocks(pair.width, pair.height, bpp, memory_mb / 2)
        plans.append(plan)
        total_blocks += len(plan)
    done = 0
    for p, (pair, info, plan) in enumerate(zip(pairs, label_info, plans)):
        counts = info["counts"]
        n_change = sum(c for v, c in counts.items() if v != no_change)
        n_stable = counts.get(no_change, 0)
        rate_change = min(1.0, cap / n_change) if n_change else 1.0
        rate_stable = min(1.0, cap / n_stable) if n_stable else 1.0
        nodata = info["nodata"]
        statistics = difference_statistics(pair, is_cancelled=is_cancelled) \
            if spec.needs_statistics else None
        tiles_x = (pair.width + TILE_GROUP - 1) // TILE_GROUP
        for block in plan:
            check_cancelled(is_cancelled)
            label = info["reader"].read(1, window=block.window)
            labelled = np.isin(label, list(counts.keys()))
            if nodata is not None:
                labelled &= label != nodata
            if labelled.any():
                b, a = pair.read(block, halo)
                features, valid = compute_features(spec, b, a, halo, statistics)
                keep = labelled & valid
                rate = np.where(label == no_change, rate_stable, rate_change)
                keep &= rng.random(label.shape) < rate
                rows, cols = np.nonzero(keep)
                if rows.size:
                    tile = ((rows + block.row_off) // TILE_GROUP) * tiles_x + \
                        (cols + block.col_off) // TILE_GROUP
                    samples.add(features[:, rows, cols].T.copy(),
                                label[rows, cols].astype(np.int64),
                                (1.0 / rate[rows, cols]).astype(np.float64), p, tile)
            done += 1
            progress(done / total_blocks)
    arrays = samples.arrays()
    if arrays is None or arrays[0].shape[0] == 0:
        raise NoDataError("No labelled pixel has valid values on both dates; check that the "
                          "labels and the pairs cover the same area and that the pairs hold "
                          "data.")
    return arrays


def _balance(X, y, no_change, seed):
    rng = np.random.default_rng(seed)
    change = np.flatnonzero(y != no_change)
    stable = np.flatnonzero(y == no_change)
    if change.size and stable.size > change.size:
        stable = rng.choice(stable, change.size, replace=False)
    index = np.sort(np.concatenate([change, stable]))
    return X[index], y[index]


def _leave_group_out(make_model, fit, change_probability, X, y_change, w, groups, grouping,
                     pair_of, n_pairs, before, seed, progress, is_cancelled, log) -> dict:
    from sklearn.model_selection import GroupKFold

    unique = np.unique(groups)
    if grouping == "pair":
        splits = [(np.flatnonzero(groups != g), np.flatnonzero(groups == g)) for g in unique]
    else:
        k = min(4, unique.size)
        if k < 2:
            raise NoDataError("The labelled pixels fall in one spatial tile only; label a larger "
                              "area or give several pairs.")
        splits = list(GroupKFold(n_splits=k).split(X, y_change, groups))
    oof = np.full(y_change.size, np.nan)
    for i, (train, test) in enumerate(splits):
        check_cancelled(is_cancelled)
        if not y_change[train].any():
            continue
        model = fit(make_model(), train)
        oof[test] = change_probability(model, test)
        progress((i + 1) / len(splits))
    scored = np.isfinite(oof)
    if not y_change[scored].any():
        raise NoDataError("No held-out change pixel could be scored; give more pairs with "
                          "change.")
    curve = f1_curve(y_change[scored], oof[scored], w[scored])
    threshold = float(THRESHOLDS[int(np.argmax(curve))])
    pooled = binary_scores(y_change[scored], oof[scored] >= threshold, w[scored])
    pooled_05 = binary_scores(y_change[scored], oof[scored] >= 0.5, w[scored])
    per_pair = []
    for p in range(n_pairs):
        mine = scored & (pair_of == p)
        if not mine.any():
            continue
        others = scored & (pair_of != p)
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
        per_pair.append(entry)
        if grouping == "pair":
            s = entry.get("at_threshold_from_others", entry["at_threshold"])
            log(f"Pair {p + 1} held out: F1 {_f(s['f1'])}, precision {_f(s['precision'])}, "
                f"recall {_f(s['recall'])} (threshold chosen on the other pairs); F1 at 0.5: "
                f"{_f(entry['at_0_5']['f1'])}.")
    log(f"Leave-one-{grouping}-out: threshold {threshold:.2f} maximises the pooled F1 of change "
        f"({_f(pooled['f1'])}; precision {_f(pooled['precision'])}, recall "
        f"{_f(pooled['recall'])}); at 0.5 the F1 is {_f(pooled_05['f1'])}.")
    honest = [e["at_threshold_from_others"]["f1"] for e in per_pair
              if e.get("at_threshold_from_others") and e["at_threshold_from_others"]["f1"]
              is not None]
    return {"grouping": grouping, "folds": len(splits), "threshold": threshold,
            "pooled": pooled, "pooled_at_0_5": pooled_05, "per_pair": per_pair,
            "mean_pair_f1_threshold_from_others": float(np.mean(honest)) if honest else None,
            "f1_curve": {"thresholds": THRESHOLDS.tolist(), "f1": curve.tolist()}}


def _pixel_validation(make_model, fit, change_probability, X, y_change, w, threshold, folds,
                      seed, progress, is_cancelled) -> dict:
    from sklearn.model_selection import StratifiedKFold

    oof = np.zeros(y_change.size)
    splits = list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(X, y_change))
    for i, (train, test) in enumerate(splits):
        check_cancelled(is_cancelled)
        oof[test] = change_probability(fit(make_model(), train), test)
        progress((i + 1) / len(splits))
    return dict(binary_scores(y_change, oof >= threshold, w), folds=folds, threshold=threshold)


def _verify(onnx_model, model, X, no_change, seed, limit=5000) -> dict:
    import onnxruntime as ort

    from ..models.pixel_model import session_options
    from .model import CHANGE_OUTPUT

    rng = np.random.default_rng(seed)
    index = rng.choice(X.shape[0], size=min(limit, X.shape[0]), replace=False)
    Xs = np.ascontiguousarray(X[index], dtype=np.float32)
    try:
        session = ort.InferenceSession(onnx_model.SerializeToString(), session_options(),
                                       providers=["CPUExecutionProvider"])
        change, = session.run([CHANGE_OUTPUT], {"X": Xs})
    except Exception as exc:
        raise ModelError(f"The exported change model cannot be run by onnxruntime: {exc}") from exc
    expected = 1.0 - model.predict_proba(Xs)[:, list(model.classes_).index(no_change)]
    return {"checked_pixels": int(Xs.shape[0]),
            "max_change_probability_difference": float(np.max(np.abs(change - expected)))}


def _importance(model, names) -> list:
    estimator = model.steps[-1][1]
    values = getattr(estimator, "feature_importances_", None)
    if values is None:
        return []
    order = np.argsort(values)[::-1]
    return [{"feature": names[i], "importance": float(values[i])} for i in order[:25]]
