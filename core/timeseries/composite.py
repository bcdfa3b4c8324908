"""Temporal composites: many dated rasters onto one grid, one composite per period.

Each input is one acquisition date (a Sentinel-2 band-named raster or stack, Sentinel-1 VV/VH,
or any named bands such as indices); :mod:`.composite_plan` groups them by band set and checks
everything before a pixel is read.

Work is split into (block, period) items walked by :func:`core.io.raster.run_blocks`: an item
reads only the dates of its period (:func:`read_period`), composites them
(:func:`composite_period`) and writes them (:func:`write_period`). Blocks are sized from the
memory budget divided by the largest number of dates in a period, so memory stays bounded
whatever the number of dates. Sentinel-1 backscatter is composited in linear power and written
in dB.
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np

from ..io import raster as raster_io
from ..runtime import (IsCancelled, Log, Progress, never_cancelled, no_log, no_progress,
                       thread_count)
from ..sensors import sentinel1 as sar
from .composite_plan import CompositePlan, Group, plan_composite
from .options import CompositeOptions
from .outputs import open_float_output, sidecar_path, write_sidecar
from .reading import BandReader, read_clear
from .reduce import best_index, open_pool, reduce_over_time
from .style import write_stack_style

METHOD_NAMES = {"median": "median of clear observations", "mean": "mean of clear observations",
                "maxndvi": "max-NDVI best pixel", "min": "minimum", "max": "maximum"}


@dataclass
class CompositeContext:
    """What the block functions share: the plan, a reader per input, the pool and the outputs."""

    plan: CompositePlan
    #: Per input: ``[(reader, positions in its group's variables)]`` and its mask reader or None.
    readers: list
    pool: ThreadPoolExecutor
    #: Threads reading the dates of a block at once (None: one after the other).
    read_pool: Optional[ThreadPoolExecutor] = None
    #: Open output datasets: ``"main"``, and the index of every period with a raster of its own.
    outputs: dict = field(default_factory=dict)
    #: Clear observations counted per period.
    clear_total: List[int] = field(default_factory=list)
    #: Threads of ``pool`` (the reductions are cut into a multiple of them).
    threads: int = 1


def check_composite(inputs, log: Log = no_log, warn: Log = no_log, **options) -> CompositePlan:
    """Checks a compositing run without reading pixels (dates, bands, masks, grid, outputs).

    Args:
        inputs: one raster per acquisition, as for :func:`temporal_composite`.
        options: the other fields of :class:`~.options.CompositeOptions` (``output_path`` and
            ``output_folder`` optional).

    Raises:
        LandFusionError: naming the problem and the fix.
    """
    o = CompositeOptions(inputs=inputs, **options).validated()
    with raster_io.gdal_env(), contextlib.ExitStack() as stack:
        plan, _, _ = plan_composite(stack, o, log, warn)
    return plan


def temporal_composite(inputs, output_path: str, progress: Progress = no_progress,
                       is_cancelled: IsCancelled = never_cancelled, log: Log = no_log,
                       warn: Log = no_log, **options) -> dict:
    """Composites dated rasters per period onto one grid.

    Args:
        inputs: one raster per acquisition (named bands: B04..., NDVI..., VV/VH).
        output_path: the float32 stack (``<period>_<band>``, then ``<period>_CLEAR_COUNT``).
        options: the fields of :class:`~.options.CompositeOptions`:

            - ``masks``: optional cloud masks, one per input (matched by date, else by order).
            - ``mask_type``: 'scl', 'cloudmask' or 'binary' (LandFusion cloud masks are
              recognised whatever this says).
            - ``dates``: ISO dates (list or comma-separated text), one per input; None reads
              them from the file names, then from the GDAL metadata.
            - ``period``: 'month', 'season', 'year', 'whole' or 'custom'.
            - ``custom_periods``: ``start/end;start/end`` when ``period`` is 'custom'.
            - ``method``: 'median', 'mean', 'maxndvi', 'min' or 'max'.
            - ``reference``: optional raster whose grid the output takes (default: the finest
              input).
            - ``output_folder``: optional folder for one raster per period with period-free
              band names.
            - ``memory_mb``: budget for the pixel arrays alive at once.
            - ``threads``: threads for the per-pixel work (0: every core).

    Returns:
        ``{"output", "sidecar", "period_files", "periods", "empty_periods",
        "periods_without_clear_observation", "bands"}``.
    """
    o = CompositeOptions(inputs=inputs, output_path=output_path, **options).validated()
    with raster_io.gdal_env(), contextlib.ExitStack() as stack:
        plan, datasets, mask_datasets = plan_composite(stack, o, log, warn)
        _log_plan(plan, log, warn)
        readers = _open_readers(stack, plan, datasets, mask_datasets, log)
        work_items = _work_items(plan, o.memory_mb)
        ctx = CompositeContext(plan, readers, open_pool(stack, o.threads, "composite"),
                               _read_pool(stack, o.threads),
                               clear_total=[0] * len(plan.periods),
                               threads=thread_count(o.threads))
        ctx.outputs = _open_outputs(stack, plan, output_path)
        raster_io.run_blocks(work_items, functools.partial(read_period, ctx),
                             functools.partial(composite_period, ctx), progress, is_cancelled,
                             write=functools.partial(write_period, ctx))
        _describe(plan, ctx.outputs, output_path)
        for dataset in ctx.outputs.values():
            dataset.close()
        cloudy = [p.label for p, m, n in zip(plan.periods, plan.members, ctx.clear_total)
                  if m and not n]
        if cloudy:
            warn(f"No clear observation in period(s) {', '.join(cloudy)} (every acquisition masked "
                 "or nodata): their bands are nodata.")
        sidecar = _sidecar(plan, output_path, ctx.clear_total, cloudy)
    write_stack_style(output_path, plan.band_names, _preferred_bands(plan))
    for path in plan.period_files:
        if path:
            write_stack_style(path, plan.variables)
    write_sidecar(sidecar_path(output_path), sidecar, "Composite sidecar")
    progress(1.0)
    return {"output": output_path, "sidecar": sidecar_path(output_path),
            "period_files": [p for p in plan.period_files if p],
            "periods": [p.label for p in plan.periods], "empty_periods": plan.empty_periods,
            "periods_without_clear_observation": cloudy,
            "bands": plan.band_names}


def _log_plan(plan: CompositePlan, log: Log, warn: Log) -> None:
    grid = plan.grid
    log(f"Output grid: {grid.width} x {grid.height} pixels, {grid.crs.to_string()}, from "
        f"{plan.grid_source}.")
    log(f"{len(plan.periods)} period(s) ({plan.period_kind}); method: "
        f"{METHOD_NAMES[plan.method]}.")
    if plan.empty_periods:
        warn(f"No acquisition in period(s) {', '.join(plan.empty_periods)}: their bands are "
             "nodata (CLEAR_COUNT 0).")


def _open_readers(stack: contextlib.ExitStack, plan: CompositePlan, datasets: list,
                  mask_datasets: Dict[str, object], log: Log) -> list:
    """A reader per input and kind of band (and one per mask), closed with ``stack``."""
    workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="landfusion-composite-"))
    readers = []
    for item, ds in zip(plan.inputs, datasets):
        by_kind: Dict[str, List[int]] = {}
        for band, kind in enumerate(item.kinds, start=1):
            by_kind.setdefault(kind, []).append(band)
        group_vars = plan.groups[item.group].variables
        parts = []
        for kind, bands in by_kind.items():
            reader = BandReader(ds, plan.grid, bands, kind, workdir)
            stack.callback(reader.close)
            positions = [group_vars.index(item.variables[b - 1]) for b in bands]
            parts.append((reader, positions))
        mask_reader = None
        if item.mask:
            mask_reader = BandReader(mask_datasets[item.mask], plan.grid, [1], "mask")
            stack.callback(mask_reader.close)
        readers.append((parts, mask_reader))
        log(f"{item.date.isoformat()} {os.path.basename(item.path)}: "
            f"{', '.join(r.how for r, _ in parts)}"
            + (f"; mask {os.path.basename(item.mask)} ({item.mask_type})" if item.mask else ""))
    return readers


def _read_pool(stack: contextlib.ExitStack, threads: int) -> Optional[ThreadPoolExecutor]:
    """Threads that read the dates of a block in parallel, or None for one thread. Reading
    (decompressing, warping) is as heavy as the median: on a reader thread of its own it would
    leave the other cores idle while every date of the next block is decoded."""
    return open_pool(stack, threads, "composite-read") if thread_count(threads) > 1 else None


def _work_items(plan: CompositePlan, memory_mb: float) -> list:
    """(block, period) pairs, blocks sized for the period with the most dates."""
    most = max(len(m) for m in plan.members)
    nvars = len(plan.variables)
    bytes_per_pixel = most * (4 * (nvars - 1) + 4) + 8 * nvars
    blocks = raster_io.plan_blocks(plan.grid.width, plan.grid.height, bytes_per_pixel,
                                   memory_mb / 3)
    return [(block, p) for block in blocks for p in range(len(plan.periods))]


def _open_outputs(stack: contextlib.ExitStack, plan: CompositePlan, output_path: str) -> dict:
    """The composite stack and every period's raster, open for writing."""
    outputs = {"main": open_float_output(stack, output_path, "Composite", plan.grid,
                                         len(plan.band_names))}
    for p, path in enumerate(plan.period_files):
        if path:
            outputs[p] = open_float_output(stack, path, "Period composite", plan.grid,
                                           len(plan.variables))
    return outputs


def read_period(ctx: CompositeContext, item: tuple) -> tuple:
    """Reads the dates of one (block, period): per group (dates, bands, rows, cols), NaN where
    not clear, and the count of clear observations per pixel.

    The dates are read on ``ctx.read_pool`` when there is one: every date has its own input and
    mask datasets, each read by one thread at a time, and fills its own slice of the arrays."""
    block, p = item
    plan = ctx.plan
    arrays = [np.full((sum(1 for k in plan.members[p] if plan.inputs[k].group == g),
                       len(group.variables), block.height, block.width), np.nan,
                      dtype=np.float32) for g, group in enumerate(plan.groups)]
    slot = [0] * len(plan.groups)
    targets = []
    for k in plan.members[p]:
        g = plan.inputs[k].group
        targets.append((k, arrays[g][slot[g]]))
        slot[g] += 1
    read = functools.partial(_read_date, ctx, block.window)
    if ctx.read_pool is not None and len(targets) > 1:
        clear = ctx.read_pool.map(read, targets)
    else:
        clear = map(read, targets)
    count = np.zeros((block.height, block.width), dtype=np.float32)
    for observed in clear:
        count += observed
    return arrays, count


def _read_date(ctx: CompositeContext, window, target: tuple) -> np.ndarray:
    """Reads input ``k`` into ``array`` (bands, rows, cols), NaN where not clear; returns where
    at least one of its bands is valid."""
    k, array = target
    parts, mask_reader = ctx.readers[k]
    for reader, positions in parts:
        array[positions] = reader.read(window)
    if mask_reader is not None:
        array[:, ~read_clear(mask_reader, window, ctx.plan.inputs[k].mask_type)] = np.nan
    return np.isfinite(array).any(axis=0)


def composite_period(ctx: CompositeContext, item: tuple, data: tuple) -> np.ndarray:
    """Composites one (block, period): (variables, rows, cols), CLEAR_COUNT last, nodata set."""
    block, p = item
    arrays, count = data
    nvars = len(ctx.plan.variables)
    out = np.full((nvars, block.height, block.width), np.nan, dtype=np.float32)
    row = 0
    for group, stack_g in zip(ctx.plan.groups, arrays):
        n = len(group.variables)
        if stack_g.shape[0]:
            out[row:row + n] = _composite_group(stack_g, group, ctx.pool, ctx.threads)
        row += n
    out[-1] = count
    ctx.clear_total[p] += int(count.sum())
    out[~np.isfinite(out)] = raster_io.FLOAT_NODATA
    return out


def write_period(ctx: CompositeContext, item: tuple, out: np.ndarray) -> None:
    """Writes one (block, period) into the stack and into the period's own raster."""
    block, p = item
    nvars = len(ctx.plan.variables)
    first = p * nvars + 1
    ctx.outputs["main"].write(out, list(range(first, first + nvars)), window=block.window)
    if p in ctx.outputs:
        ctx.outputs[p].write(out, window=block.window)


def _composite_group(stack_g: np.ndarray, group: Group, pool, threads: int) -> np.ndarray:
    """Composites one group's (dates, bands, rows, cols) array into (bands, rows, cols)."""
    if group.method == "maxndvi":
        names = group.variables
        if group.ndvi == ("NDVI",):
            score = stack_g[:, names.index("NDVI")]
        else:
            red, nir = stack_g[:, names.index("B04")], stack_g[:, names.index("B08")]
            with np.errstate(divide="ignore", invalid="ignore"):
                score = (nir - red) / (nir + red)
        best = best_index(score)
        chosen = np.take_along_axis(stack_g, np.maximum(best, 0)[None, None], axis=0)[0]
        chosen[:, best < 0] = np.nan
        out = chosen
    else:
        out = reduce_over_time(stack_g, group.method, threads, pool)
    for k, name in enumerate(group.variables):
        if name in group.s1:
            out[k] = sar.linear_to_db(out[k])
    return out


def _preferred_bands(plan: CompositePlan) -> List[str]:
    """The bands of the first period with acquisitions (shown by the style)."""
    for period, members in zip(plan.periods, plan.members):
        if members:
            return [f"{period.label}_{v}" for v in plan.variables]
    return []


def _describe(plan: CompositePlan, outputs: dict, output_path: str) -> None:
    """Band names and metadata of the composite and of the per-period rasters."""
    nvars = len(plan.variables)
    s1 = {v for g in plan.groups for v in g.s1}
    main = outputs["main"]
    for p, (period, members) in enumerate(zip(plan.periods, plan.members)):
        dates = ",".join(sorted({plan.inputs[k].date.isoformat() for k in members}))
        for v, variable in enumerate(plan.variables):
            tags = {"PERIOD": period.label, "PERIOD_START": period.start.isoformat(),
                    "PERIOD_END": period.end.isoformat(), "VARIABLE": variable,
                    "DATES": dates, "OBSERVATIONS": str(len(members))}
            if variable in s1:
                tags["UNITS"] = "dB"
            main.set_band_description(p * nvars + v + 1, f"{period.label}_{variable}")
            main.update_tags(p * nvars + v + 1, **tags)
            if p in outputs:
                outputs[p].set_band_description(v + 1, variable)
                outputs[p].update_tags(v + 1, **tags)
        if p in outputs:
            outputs[p].update_tags(LANDFUSION_ALGORITHM="temporalcomposite",
                                   PERIOD=period.label, PERIOD_START=period.start.isoformat(),
                                   PERIOD_END=period.end.isoformat(), DATES=dates,
                                   METHOD=plan.method)
    main.update_tags(LANDFUSION_ALGORITHM="temporalcomposite", METHOD=plan.method,
                     PERIOD_KIND=plan.period_kind,
                     PERIODS=",".join(p.label for p in plan.periods))


def _sidecar(plan: CompositePlan, output_path: str, clear_total: List[int],
             cloudy: List[str]) -> dict:
    """The JSON sidecar: method, periods with their dates and files, inputs and grid."""
    periods = []
    for period, members, path in zip(plan.periods, plan.members, plan.period_files):
        entry = period.to_dict()
        entry["dates"] = [plan.inputs[k].date.isoformat() for k in members]
        entry["files"] = [plan.inputs[k].path for k in members]
        entry["empty"] = not members
        if path:
            entry["raster"] = path
        periods.append(entry)
    sidecar = {
        "algorithm": "temporalcomposite",
        "output": output_path,
        "method": plan.method,
        "method_name": METHOD_NAMES[plan.method],
        "period_kind": plan.period_kind,
        "periods": periods,
        "empty_periods": plan.empty_periods,
        "band_names": plan.band_names,
        "variables": plan.variables,
        "sentinel1_bands": {v: "composited in linear power, written in dB"
                            for g in plan.groups for v in g.s1},
        "group_methods": {", ".join(g.variables): g.method for g in plan.groups},
        "inputs": [{"path": i.path, "date": i.date.isoformat(), "date_source": i.date_source,
                    "bands": i.variables, "mask": i.mask, "mask_type": i.mask_type}
                   for i in plan.inputs],
        "grid": plan.grid.describe(),
        "grid_source": plan.grid_source,
        "nodata": raster_io.FLOAT_NODATA,
    }
    sidecar["periods_without_clear_observation"] = cloudy
    for entry, n in zip(sidecar["periods"], clear_total):
        entry["clear_observations"] = n
    return sidecar
