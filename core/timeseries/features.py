"""Temporal features: per-band statistics over time, for classification.

Inputs are either one multi-date stack or several dated rasters with the same bands
(:mod:`.features_plan` resolves the layout). For every variable (``NDVI``, ``B04``,
``VV_dB``...) and pixel, the statistics of :mod:`.statistics` are taken over the clear
observations only (not nodata, ``CLEAR_COUNT`` > 0, mask clear), block by block:
:func:`read_series` reads every variable's time steps, :func:`features_block` computes the
statistics in chunks of pixels spread over threads.
"""

from __future__ import annotations

import contextlib
import functools
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Set

import numpy as np

from ..io import raster as raster_io
from ..runtime import (IsCancelled, Log, Progress, never_cancelled, no_log, no_progress,
                       thread_count)
from ..sensors import sentinel1 as sar
from .dates import decimal_year
from .features_plan import FeaturePlan, Observation, plan_features
from .options import FeatureOptions
from .outputs import open_float_output, sidecar_path, write_sidecar
from .reading import BandReader, read_clear
from .reduce import open_pool
from .statistics import STATISTIC_NAMES, temporal_statistics
from .style import write_stack_style


@dataclass
class FeatureContext:
    """What the block functions share: the plan, the open rasters, their readers and the pool."""

    plan: FeaturePlan
    datasets: list
    mask_sets: list
    stack: contextlib.ExitStack
    workdir: str
    pool: ThreadPoolExecutor
    threads: int
    #: Per variable: (name, observations, decimal years, days of year).
    series: list = field(default_factory=list)
    #: Sentinel-1 variables stored as linear power, turned into dB when read.
    s1_linear: Set[str] = field(default_factory=set)
    readers: Dict[tuple, BandReader] = field(default_factory=dict)

    def reader(self, source: int, band: int, mask: bool = False) -> BandReader:
        """The reader of one band of an input (or mask), made on first use."""
        key = (mask, source, band)
        if key not in self.readers:
            ds = self.mask_sets[source] if mask else self.datasets[source]
            self.readers[key] = BandReader(ds, self.plan.grid, [band], "mask" if mask else "data",
                                           self.workdir)
            self.stack.callback(self.readers[key].close)
        return self.readers[key]


def check_features(inputs, log: Log = no_log, **options) -> FeaturePlan:
    """Checks a features run without reading pixels.

    Args:
        inputs: as for :func:`temporal_features`.
        options: the other fields of :class:`~.options.FeatureOptions` (``output_path``
            optional).
    """
    o = FeatureOptions(inputs=inputs, **options).validated()
    with raster_io.gdal_env(), contextlib.ExitStack() as stack:
        plan, _, _ = plan_features(stack, o, log)
    return plan


def temporal_features(inputs, output_path: str, progress: Progress = no_progress,
                      is_cancelled: IsCancelled = never_cancelled, log: Log = no_log,
                      warn: Log = no_log, **options) -> dict:
    """Computes per-band temporal statistics over clear observations.

    Args:
        inputs: one multi-date stack, or several rasters of one date each.
        output_path: float32 stack with bands ``<variable>_<statistic>``.
        options: the fields of :class:`~.options.FeatureOptions`:

            - ``masks``: for a stack, one raster with one mask band per stack band; for dated
              rasters, one mask per raster (matched by date, else by order).
            - ``mask_type``: 'scl', 'cloudmask' or 'binary' (non-zero = not clear).
            - ``dates``: dates of the time steps (rank-named stacks) or of the rasters, when
              the names and metadata do not give them.
            - ``statistics``: subset of :data:`~.statistics.STATISTICS` (default
              :data:`~.statistics.DEFAULT_STATISTICS`: all but the count of clear
              observations).
            - ``reference``: optional raster whose grid the output takes (default: the first
              input's).
            - ``memory_mb``: budget for the pixel arrays alive at once.
            - ``threads``: threads for the per-pixel work (0: every core).

    Returns:
        ``{"output", "bands", "dates", "sidecar"}``.
    """
    o = FeatureOptions(inputs=inputs, output_path=output_path, **options).validated()
    with raster_io.gdal_env(), contextlib.ExitStack() as stack:
        plan, datasets, mask_sets = plan_features(stack, o, log)
        workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="landfusion-features-"))
        ctx = FeatureContext(plan, datasets, mask_sets, stack, workdir, None, o.threads,
                             series=_series(plan))
        blocks = _blocks(plan, o.memory_mb)
        ctx.pool = open_pool(stack, o.threads, "features")
        ctx.s1_linear = _linear_variables(ctx, log)
        dst = open_float_output(stack, output_path, "Temporal features", plan.grid,
                                len(plan.band_names))
        log(f"{len(plan.band_names)} features from {len(plan.dates)} dates "
            f"({plan.dates[0].isoformat()} to {plan.dates[-1].isoformat()}).")
        raster_io.run_blocks(blocks, functools.partial(read_series, ctx),
                             functools.partial(features_block, ctx), progress, is_cancelled,
                             write=lambda block, result: dst.write(result, window=block.window))
        _describe(plan, dst)
        dst.close()
    write_stack_style(output_path, plan.band_names)
    write_sidecar(sidecar_path(output_path), _sidecar(plan, output_path), "Features sidecar")
    progress(1.0)
    return {"output": output_path, "bands": plan.band_names, "sidecar": sidecar_path(output_path),
            "dates": [d.isoformat() for d in plan.dates]}


def _series(plan: FeaturePlan) -> list:
    """Per variable: its name, observations, decimal years and days of year."""
    series = []
    for name, obs in plan.variables.items():
        years = np.array([decimal_year(o.date) for o in obs])
        doy = np.array([o.date.timetuple().tm_yday for o in obs], dtype=np.float32)
        series.append((name, obs, years, doy))
    return series


def _blocks(plan: FeaturePlan, memory_mb: float) -> list:
    """Blocks sized for every variable's longest series and the outputs."""
    longest = max(len(obs) for obs in plan.variables.values())
    nvars = len(plan.variables)
    bytes_per_pixel = nvars * longest * 4 + longest * 24 + 4 * len(plan.band_names)
    return raster_io.plan_blocks(plan.grid.width, plan.grid.height, bytes_per_pixel,
                                 memory_mb / 3)


def _linear_variables(ctx: FeatureContext, log: Log) -> Set[str]:
    """The Sentinel-1 variables whose inputs hold linear power (told from their values)."""
    from rasterio.windows import Window

    grid = ctx.plan.grid
    linear = set()
    for name in ctx.plan.db_variables:
        first = ctx.plan.variables[name][0]
        window = Window(0, 0, min(256, grid.width), min(256, grid.height))
        if sar.guess_units(ctx.reader(first.source, first.band).read(window)[0]) == "linear":
            linear.add(name)
            log(f"{name}: linear power in the inputs; statistics are taken in dB.")
    return linear


def read_series(ctx: FeatureContext, block) -> List[np.ndarray]:
    """Reads every variable's time steps in one block: (dates, rows, cols), NaN where not
    clear."""
    out = []
    clear_cache: Dict[tuple, np.ndarray] = {}
    for name, obs, _, _ in ctx.series:
        values = np.empty((len(obs), block.height, block.width), dtype=np.float32)
        for t, o in enumerate(obs):
            values[t] = ctx.reader(o.source, o.band).read(block.window)[0]
            clear = _clear(ctx, o, block.window, clear_cache)
            if clear is not None:
                values[t][~clear] = np.nan
        if name in ctx.s1_linear:
            values = sar.linear_to_db(values)
        out.append(values)
    return out


def _clear(ctx: FeatureContext, o: Observation, window,
           cache: Dict[tuple, np.ndarray]) -> Optional[np.ndarray]:
    """Where one observation is clear (its period's CLEAR_COUNT > 0 and its mask clear), or
    None when nothing tells."""
    conditions = []
    if o.count_band is not None:
        key = ("count", o.source, o.count_band)
        if key not in cache:
            count = ctx.reader(o.source, o.count_band).read(window)[0]
            cache[key] = np.isfinite(count) & (count > 0)
        conditions.append(cache[key])
    if o.mask is not None:
        key = ("mask",) + o.mask
        if key not in cache:
            mask_reader = ctx.reader(o.mask[0], o.mask[1], mask=True)
            cache[key] = read_clear(mask_reader, window, ctx.plan.mask_types[o.mask[0]])
        conditions.append(cache[key])
    return functools.reduce(np.logical_and, conditions) if conditions else None


def features_block(ctx: FeatureContext, block, data: List[np.ndarray]) -> np.ndarray:
    """The statistics of one block: (bands, rows, cols), nodata where undefined."""
    plan = ctx.plan
    pixels = block.height * block.width
    result = np.full((len(plan.band_names), pixels), np.nan, dtype=np.float32)
    step = max(1024, pixels // (2 * thread_count(ctx.threads)) + 1)
    row = 0
    for (name, obs, years, doy), values in zip(ctx.series, data):
        chunk = functools.partial(_chunk_statistics, values.reshape(len(obs), -1), years, doy,
                                  plan.statistics, name in plan.db_variables, step)
        for start, stats in ctx.pool.map(chunk, range(0, pixels, step)):
            for k, statistic in enumerate(plan.statistics):
                result[row + k, start:start + step] = stats[statistic]
        row += len(plan.statistics)
    result[~np.isfinite(result)] = raster_io.FLOAT_NODATA
    return result.reshape(len(plan.band_names), block.height, block.width)


def _chunk_statistics(flat, years, doy, statistics, is_db: bool, step: int, start: int) -> tuple:
    return start, temporal_statistics(flat[:, start:start + step], years, doy, statistics, is_db)


def _describe(plan: FeaturePlan, dst) -> None:
    """Band names, statistics and units of the feature stack."""
    k = 1
    for name in plan.variables:
        for statistic in plan.statistics:
            dst.set_band_description(k, f"{name}_{statistic}")
            tags = {"VARIABLE": name, "STATISTIC": statistic,
                    "DESCRIPTION": STATISTIC_NAMES[statistic]}
            if statistic == "trend":
                tags["UNITS"] = ("dB" if name in plan.db_variables else "units") + " per year"
            elif statistic == "doymax":
                tags["UNITS"] = "day of year (1-366)"
            elif name in plan.db_variables and statistic != "count":
                tags["UNITS"] = "dB"
            dst.update_tags(k, **tags)
            k += 1
    dst.update_tags(LANDFUSION_ALGORITHM="temporalfeatures",
                    DATES=",".join(d.isoformat() for d in plan.dates))


def _sidecar(plan: FeaturePlan, output_path: str) -> dict:
    """The JSON sidecar: layout, inputs, statistics and every variable's time steps."""
    return {
        "algorithm": "temporalfeatures", "output": output_path, "layout": plan.layout,
        "inputs": plan.inputs, "masks": plan.masks, "statistics": plan.statistics,
        "band_names": plan.band_names,
        "variables": {name: [{"date": o.date.isoformat(), "input": plan.inputs[o.source],
                              "band": o.band} for o in obs]
                      for name, obs in plan.variables.items()},
        "time_coordinate": "decimal year for the trend; day of year for doymax; a composite "
                           "period counts at its middle day",
        "grid": plan.grid.describe(), "nodata": raster_io.FLOAT_NODATA,
    }
