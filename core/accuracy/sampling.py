"""Stratified random sample of a class map, for reference labelling.

The strata are the map classes. The sample size of each class follows one of three allocations:
equal, proportional to the mapped area, or Olofsson et al. (2014)'s recommendation: a minimum
per class (so rare classes get enough samples for their user's accuracy) and the rest
proportional. Points are pixel centres drawn without replacement, reproducibly from a seed, and
never on nodata. The output point layer holds the map class and an empty reference field, ready
for labelling and for ``landfusion:accuracyreport`` with the stratified design.
"""

from __future__ import annotations

import os
from typing import Dict, Optional, Sequence

import numpy as np

from ..choices import ALLOCATIONS
from ..errors import InputError, NoDataError, OutputError
from ..io.outputs import atomic_output, check_writable
from ..io.raster import Block, gdal_env, open_raster, run_blocks
from ..io.vector import vector_driver
from ..runtime import (IsCancelled, Log, Progress, never_cancelled, no_log, no_progress,
                      sub_progress)


def _largest_remainder(shares: np.ndarray, total: int) -> np.ndarray:
    """Integer allocation of ``total`` proportional to ``shares`` (Hamilton's method)."""
    if total <= 0 or shares.sum() <= 0:
        return np.zeros(shares.size, dtype=np.int64)
    exact = shares / shares.sum() * total
    base = np.floor(exact).astype(np.int64)
    left = total - int(base.sum())
    order = np.argsort(-(exact - base), kind="stable")
    base[order[:left]] += 1
    return base


def allocate(pixels: Dict[int, int], sample_size: int, allocation: str = "olofsson",
             min_per_class: int = 50) -> Dict[int, int]:
    """Returns the number of samples of each class value.

    Args:
        pixels: mapped pixel count (or area) of each class.
        sample_size: total sample size.
        allocation: 'equal', 'proportional' or 'olofsson'.
        min_per_class: for 'olofsson', the minimum of each class (classes whose proportional
            share is below it get the minimum; the others share the rest proportionally).

    Raises:
        InputError: an unknown allocation, or a sample too small for the minimum per class.
    """
    if allocation not in ALLOCATIONS:
        raise InputError(f"Unknown allocation '{allocation}'; use one of {', '.join(ALLOCATIONS)}.")
    values = list(pixels)
    k = len(values)
    if sample_size < 1:
        raise InputError("The sample size must be at least 1.")
    area = np.array([pixels[v] for v in values], dtype=np.float64)
    if allocation == "equal":
        n = _largest_remainder(np.ones(k), sample_size)
    elif allocation == "proportional":
        n = _largest_remainder(area, sample_size)
    else:
        if min_per_class * k > sample_size:
            raise InputError(
                f"A minimum of {min_per_class} samples for each of the {k} classes needs "
                f"{min_per_class * k} samples, more than the sample size {sample_size}; raise the "
                "sample size or lower the minimum per class.")
        fixed = np.zeros(k, dtype=bool)
        while True:
            rest = sample_size - min_per_class * int(fixed.sum())
            n = np.where(fixed, min_per_class, 0).astype(np.int64)
            n[~fixed] = _largest_remainder(area[~fixed], rest)
            below = (~fixed) & (n < min_per_class)
            if not below.any():
                break
            fixed |= below
    return {v: int(c) for v, c in zip(values, n)}


def row_strips(width: int, height: int, bytes_per_pixel: int, memory_mb: float) -> list:
    """Full-width row strips within a memory budget.

    The sample numbers the pixels of each class in raster scan order, so the points depend only
    on the seed and the raster, never on the memory budget: strips, unlike tiles, keep that order.
    """
    budget = max(1e-3, memory_mb) * 1024 * 1024
    rows = max(1, min(height, int(budget // max(1, width * bytes_per_pixel))))
    return [Block(r, min(rows, height - r), width) for r in range(0, height, rows)]


def _strata(classification: str, classes, map_nodata, memory_mb: float, progress: Progress,
            is_cancelled: IsCancelled, warn: Log) -> Dict[int, int]:
    """Returns ``{class value: mapped pixels}`` of the classes to sample."""
    from .areas import count_classes

    counts = count_classes(classification, map_nodata, memory_mb, progress=progress,
                           is_cancelled=is_cancelled)
    pixels = dict(counts.pixels)
    if classes:
        wanted = {int(c) for c in classes}
        absent = sorted(wanted - set(pixels))
        if absent:
            warn(f"Class value(s) {absent} do not occur in the map and get no sample.")
        pixels = {v: n for v, n in pixels.items() if v in wanted}
        if not pixels:
            raise NoDataError(f"None of the classes {sorted(wanted)} occurs in the map; choose "
                              f"among {sorted(counts.pixels)}.")
    return pixels


def _sample_plan(pixels: Dict[int, int], names: Dict[int, str], sample_size: int,
                 allocation: str, min_per_class: int, log: Log, warn: Log) -> Dict[int, int]:
    """Returns ``{class value: samples}``, capped at the pixels available, with warnings."""
    plan = allocate(pixels, sample_size, allocation, min_per_class)
    for value, n in list(plan.items()):
        label = names.get(value, str(value))
        if n > pixels[value]:
            warn(f"Class '{label}' has only {pixels[value]} pixels; it gets all of them instead of "
                 f"{n} samples.")
            plan[value] = pixels[value]
        if plan[value] < 2:
            warn(f"Class '{label}' gets {plan[value]} sample(s): the accuracy report cannot give "
                 "confidence intervals for a class with fewer than 2 samples. Use the Olofsson "
                 "allocation or a larger sample.")
    for value, n in plan.items():
        log(f"Class '{names.get(value, str(value))}': {pixels[value]:,} pixels, {n} samples.")
    return plan


def _pick_block(chosen: Dict[int, np.ndarray], seen: Dict[int, int], picked: list, block,
                data: np.ndarray) -> None:
    """Finds, in one block, the pixels whose rank within their class was drawn."""
    for value, ordinals in chosen.items():
        positions = np.flatnonzero(data == value)
        start = seen[value]
        lo, hi = np.searchsorted(ordinals, [start, start + positions.size])
        seen[value] = start + positions.size
        if hi > lo:
            hits = positions[ordinals[lo:hi] - start]
            picked.append((block.row_off + hits // data.shape[1], hits % data.shape[1],
                           np.full(hits.size, value, dtype=np.int64)))


def _draw(classification: str, chosen: Dict[int, np.ndarray], memory_mb: float,
          progress: Progress, is_cancelled: IsCancelled) -> tuple:
    """Walks the map once; returns ``(rows, cols, classes, transform, crs wkt)`` of the drawn
    pixels in raster order."""
    import functools

    picked: list = []
    with gdal_env(), open_raster(classification, "Classification raster") as src:
        blocks = row_strips(src.width, src.height, np.dtype(src.dtypes[0]).itemsize + 16,
                            memory_mb)
        run_blocks(blocks, lambda block: src.read(1, window=block.window),
                   functools.partial(_pick_block, chosen, {v: 0 for v in chosen}, picked),
                   progress, is_cancelled)
        transform = src.transform
        wkt = src.crs.to_wkt() if src.crs else None
    if not picked:
        raise NoDataError("No pixel was drawn; check the classes and the sample size.")
    rows, cols, values = (np.concatenate(part) for part in zip(*picked))
    canonical = np.lexsort((cols, rows))  # raster order, whatever the block size
    return rows[canonical], cols[canonical], values[canonical], transform, wkt


def _write_points(output_path: str, driver_name: str, wkt: Optional[str], field: str,
                  description: str, points: list) -> None:
    """Writes ``(sample_id, map_class, map_name, x, y)`` points atomically, every file of the
    format moved whole."""
    from osgeo import ogr, osr

    srs = None
    if wkt:
        srs = osr.SpatialReference()
        srs.ImportFromWkt(wkt)
    layer_name = os.path.splitext(os.path.basename(output_path))[0]
    with atomic_output(output_path, "Sample output") as temp:
        ds = ogr.GetDriverByName(driver_name).CreateDataSource(temp)
        if ds is None:
            raise OutputError(f"Cannot create '{output_path}'.")
        layer = ds.CreateLayer(layer_name, srs, ogr.wkbPoint)
        for name, kind, width in (("sample_id", ogr.OFTInteger, 0),
                                  ("map_class", ogr.OFTInteger, 0),
                                  ("map_name", ogr.OFTString, 80), (field, ogr.OFTInteger, 0)):
            definition = ogr.FieldDefn(name, kind)
            if width:
                definition.SetWidth(width)
            layer.CreateField(definition)
        layer.SetMetadataItem("DESCRIPTION", description)
        ds.StartTransaction()
        defn = layer.GetLayerDefn()
        for sample_id, value, name, x, y in points:
            feature = ogr.Feature(defn)
            feature.SetField("sample_id", sample_id)
            feature.SetField("map_class", value)
            feature.SetField("map_name", name)
            feature.SetFieldNull(field)
            point = ogr.Geometry(ogr.wkbPoint)
            point.AddPoint_2D(x, y)
            feature.SetGeometry(point)
            layer.CreateFeature(feature)
        ds.CommitTransaction()
        ds = None


def draw_stratified_sample(
    classification: str,
    output_path: str,
    sample_size: int = 500,
    allocation: str = "olofsson",
    min_per_class: int = 50,
    seed: int = 42,
    classes: Optional[Sequence[int]] = None,
    reference_field: str = "reference",
    map_nodata: Optional[float] = None,
    memory_mb: float = 64,
    progress: Progress = no_progress,
    is_cancelled: IsCancelled = never_cancelled,
    log: Log = no_log,
    warn: Log = no_log,
) -> dict:
    """Draws a stratified random sample of pixel centres and writes it as a point layer.

    Args:
        classification: class raster; its classes are the strata.
        output_path: point layer to write (.gpkg recommended; .shp, .geojson, .fgb also work).
        sample_size: total number of points.
        allocation: 'equal', 'proportional' or 'olofsson' (see :func:`allocate`).
        min_per_class: minimum per class for the 'olofsson' allocation.
        seed: random seed; the same seed and raster give the same points.
        classes: class values to sample (default: every class present); others are ignored.
        reference_field: name of the empty integer field to fill with reference classes.
        map_nodata: overrides the raster's nodata value (never sampled).

    Returns:
        A dict with the allocation, the mapped pixels of each class, the number of points and
        the output path.

    Raises:
        InputError, NoDataError, OutputError: naming the problem; no output is left behind.
    """
    from ..io.classmap import read_class_styling

    driver_name = vector_driver(output_path, "Sample output")
    check_writable(output_path, "Sample output")
    field = (reference_field or "").strip()
    if not field or field.lower() in ("sample_id", "map_class", "map_name"):
        raise InputError(f"Reference field name '{reference_field}' is empty or taken; use e.g. "
                         "'reference'.")
    pixels = _strata(classification, classes, map_nodata, memory_mb,
                     sub_progress(progress, 0, 0.4), is_cancelled, warn)
    names = {c.value: c.name for c in read_class_styling(classification)}
    plan = _sample_plan(pixels, names, sample_size, allocation, min_per_class, log, warn)
    rng = np.random.default_rng(seed)
    chosen = {v: np.sort(rng.choice(pixels[v], size=n, replace=False)) if n else
              np.zeros(0, np.int64) for v, n in plan.items()}
    rows, cols, values, transform, wkt = _draw(classification, chosen, memory_mb,
                                               sub_progress(progress, 0.4, 0.9), is_cancelled)
    xs, ys = transform * (cols + 0.5, rows + 0.5)
    ids = rng.permutation(rows.size) + 1  # random ids, so labelling order is not class by class
    description = (
        f"Stratified random sample of {os.path.basename(classification)}: strata = map classes, "
        f"allocation: {ALLOCATIONS.title(allocation)}; seed {seed}. Fill '{field}' with the "
        "reference class value (without looking at map_class), then run the LandFusion "
        "accuracy report with the stratified design.")
    points = [(int(ids[i]), int(values[i]), names.get(int(values[i]), str(int(values[i]))),
               float(xs[i]), float(ys[i])) for i in np.argsort(ids)]
    _write_points(output_path, driver_name, wkt, field, description, points)
    progress(1.0)
    log(f"{rows.size} sample points written to {output_path}.")
    return {
        "output": output_path,
        "count": int(rows.size),
        "allocation": {int(v): int(n) for v, n in plan.items()},
        "pixels": {int(v): int(n) for v, n in pixels.items()},
        "seed": seed,
    }
