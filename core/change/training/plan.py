"""Everything decided before a sample is drawn: the pairs on one band list, the feature spec,
one label raster per pair (training polygons burnt onto each BEFORE grid), the labelled pixels
per class, the no-change class and the legend."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from dataclasses import dataclass
from typing import List

import numpy as np

from ...errors import InputError, NoDataError
from ...io import raster as raster_io
from ...io.classmap import ClassInfo, palette_color
from ...runtime import Log
from ..features import FeatureSpec
from ..pairs import Pair, check_overlap, comparable_band, warped_on
from .options import TrainingOptions

_NO_CHANGE_NAMES = re.compile(r"^\s*(no[\s_-]*change|unchanged|stable|no)\s*$", re.I)


@dataclass
class LabelInfo:
    """The labels of one pair on its BEFORE grid: reader, nodata and pixels per class id."""

    reader: object
    nodata: object
    counts: dict

    def change_pixels(self, no_change: int) -> int:
        """Labelled pixels of every class but the no-change class."""
        return sum(c for v, c in self.counts.items() if v != no_change)


@dataclass
class TrainingPlan:
    """The pairs, their features and labels, decided before any sample is drawn."""

    pairs: List[Pair]
    bands: List[str]
    spec: FeatureSpec
    label_paths: List[str]
    labels: List[LabelInfo]
    no_change: int
    classes: List[ClassInfo]


def plan_training(o: TrainingOptions, stack: contextlib.ExitStack, log: Log,
                  warn: Log) -> TrainingPlan:
    """Opens the pairs and the labels (inside ``stack``) and checks that they can train a model.

    Raises:
        InputError, BandError, NoOverlapError, NoDataError: naming the pair and the fix.
    """
    pairs = [stack.enter_context(Pair(b, a, what=f"Pair {i + 1}"))
             for i, (b, a) in enumerate(zip(o.before, o.after))]
    bands = common_bands(pairs)
    spec = FeatureSpec(bands, list(o.feature_groups), list(o.scales))
    for i, pair in enumerate(pairs):
        if pair.coverage < 0.999:
            warn(f"Pair {i + 1}: the AFTER raster covers {100 * pair.coverage:.1f} % of the "
                 "BEFORE raster; pixels outside are left out.")
    label_paths = label_sources(o, stack, log)
    labels = [count_labels(p, lp, o.label_nodata, stack) for p, lp in zip(pairs, label_paths)]
    values = sorted({v for info in labels for v in info.counts})
    if len(values) < 2:
        raise NoDataError(
            f"The labels hold {'only class ' + str(values[0]) if values else 'no class'}: a "
            "change model needs labelled no-change AND change pixels. Check the label "
            "rasters and LABEL_NODATA.")
    no_change = no_change_class(values, o.names)
    plan = TrainingPlan(pairs, bands, spec, label_paths, labels, no_change,
                        change_classes(values, no_change, o.names))
    check_label_counts(plan, log, warn)
    log(f"Features ({len(spec.names())}): {', '.join(spec.groups)} over bands "
        f"{', '.join(bands)}; windows {spec.scales}.")
    return plan


def common_bands(pairs: List[Pair]) -> List[str]:
    """The bands of the first pair that every pair has; each pair is set to read them."""
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


def label_sources(o: TrainingOptions, stack: contextlib.ExitStack, log: Log) -> List[str]:
    """Returns one label raster path per pair (polygons are burnt onto each BEFORE grid)."""
    if o.labels:
        return list(o.labels)
    from osgeo import ogr

    from ...io.vector import open_vector_layer, split_ogr_source

    dataset, layer = open_vector_layer(o.training, what="Training layer")
    definition = layer.GetLayerDefn()
    index = definition.GetFieldIndex(o.class_field)
    if index < 0:
        raise InputError(f"The training layer has no field '{o.class_field}'.")
    if definition.GetFieldDefn(index).GetType() not in (ogr.OFTInteger, ogr.OFTInteger64):
        raise InputError(f"The class field '{o.class_field}' must hold integer class ids (for "
                         "example 1 = no change, 2 = change).")
    folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="landfusion-labels-"))
    path, _ = split_ogr_source(o.training)
    paths = [burn_labels(before, os.path.join(folder, f"labels_{i}.tif"), path, layer.GetName(),
                         o.class_field)
             for i, before in enumerate(o.before)]
    log(f"Training polygons burnt onto {len(paths)} BEFORE grid(s) (class 0 = unlabelled).")
    del dataset
    return paths


def burn_labels(before: str, out: str, vector_path: str, layer_name: str,
                class_field: str) -> str:
    """Burns the class field of the polygons onto the grid of ``before`` (0 = unlabelled)."""
    from osgeo import gdal

    with raster_io.open_raster(before, "BEFORE raster") as src:
        driver = gdal.GetDriverByName("GTiff")
        target = driver.Create(out, src.width, src.height, 1, gdal.GDT_UInt16,
                               ["TILED=YES", "COMPRESS=DEFLATE"])
        target.SetGeoTransform(src.transform.to_gdal())
        target.SetProjection(src.crs.to_wkt() if src.crs else "")
        target.GetRasterBand(1).SetNoDataValue(0)
        target.GetRasterBand(1).Fill(0)
        result = gdal.Rasterize(target, vector_path, layers=[layer_name], attribute=class_field)
        target = None
        if result is None:
            raise InputError(f"The training polygons cannot be burnt onto '{before}'.")
    return out


def count_labels(pair: Pair, label_path: str, label_nodata, stack) -> LabelInfo:
    """Pixels per class id of a label raster on the pair's grid (nodata excluded)."""
    src = stack.enter_context(raster_io.open_raster(label_path, "Label raster"))
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
    return LabelInfo(labels, nodata, counts)


def no_change_class(values: List[int], names: dict) -> int:
    """The class named "no change" (or unchanged, stable, no), else the lowest id."""
    for value, name in names.items():
        if _NO_CHANGE_NAMES.match(name):
            if value not in values:
                raise InputError(f"Class {value} ('{name}') does not occur in the labels (they "
                                 f"hold {', '.join(map(str, values))}).")
            return value
    return min(values)


def change_classes(values: List[int], no_change: int, names: dict) -> List[ClassInfo]:
    """The legend: grey no change, red change (or palette colours for several change classes)."""
    binary = len(values) == 2
    return [ClassInfo(v, names.get(v, "no change" if v == no_change else
                                   ("change" if binary else f"change {v}")),
                      (200, 200, 200) if v == no_change else
                      ((220, 30, 30) if binary else palette_color(i)))
            for i, v in enumerate(values)]


def check_label_counts(plan: TrainingPlan, log: Log, warn: Log) -> None:
    """Logs the labelled and change pixels of each pair; refuses pairs that cannot train.

    Raises:
        NoDataError: a pair without labelled pixels, or no change pixel at all.
    """
    for i, (pair, info) in enumerate(zip(plan.pairs, plan.labels)):
        n_change = info.change_pixels(plan.no_change)
        total = sum(info.counts.values())
        log(f"Pair {i + 1} ({os.path.basename(pair.before_path)}): {total} labelled pixels, "
            f"{n_change} change ({100 * n_change / max(total, 1):.2f} %).")
        if total == 0:
            raise NoDataError(f"Pair {i + 1}: the label raster '{plan.label_paths[i]}' has no "
                              "labelled pixel over the pair (check its extent and nodata).")
        if n_change == 0:
            if len(plan.pairs) == 1:
                raise NoDataError(
                    f"The label raster '{plan.label_paths[i]}' has no change pixel (only class "
                    f"{plan.no_change}): a change model cannot learn change from it. Use labels "
                    "with change pixels, or check CLASS_NAMES and LABEL_NODATA.")
            warn(f"Pair {i + 1}: the labels hold no change pixel; the pair only gives "
                 "no-change examples and its own F1 is undefined.")
    if all(info.change_pixels(plan.no_change) == 0 for info in plan.labels):
        raise NoDataError("No label raster holds a change pixel; a change model cannot be "
                          "trained.")
