"""The pixels of a stack, block by block: reading every layer onto the target grid (as is, or
warped; Sentinel-1 in linear power) and computing the output bands. Module-level block functions
taking a :class:`BlockContext`, for :func:`~landfusion.core.io.raster.run_blocks`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np

from ...indices.formulas import evaluate_index
from ...io import raster as raster_io
from ...runtime import thread_count
from ...sensors import sentinel1 as sar
from ...sensors.sentinel2 import SCL_NO_DATA
from .grid import Grid
from .inputs import Layer
from .options import StackOptions
from .plan import StackPlan, cross_pair


@dataclass
class BlockContext:
    """What every block needs: the plan, the options, the open inputs, and running counts."""

    plan: StackPlan
    options: StackOptions
    datasets: Dict[str, object]
    groups: List[List[Layer]]
    valid: np.ndarray
    counts: Dict[str, int] = field(default_factory=lambda: {"s2": 0, "clear": 0})

    @property
    def halo(self) -> int:
        """Extra rows and columns read around a block for the speckle filter."""
        return self.options.speckle_window // 2 if self.options.speckle_filter else 0


def read_block(ctx: BlockContext, block) -> List[object]:
    """Reads what one block needs from every input, per layer group (:attr:`BlockContext.groups`):
    layers already on the grid as their values on the block's window (plus the speckle halo),
    layers to warp as the source window under it (:class:`Source`). Only decoding happens here,
    so that the next block is read while :func:`work_block` warps the current one."""
    window = _halo_window(ctx, block)
    sources: List[object] = []
    for group in ctx.groups:
        ds = ctx.datasets[group[0].path]
        if group[0].resampling == "none":
            sources.append(_read_aligned(ds, group, ctx.plan.grid, window))
        else:
            to_linear = group[0].kind == "s1" and ctx.options.s1_units == "dB"
            sources.append(_read_source(ds, group, ctx.plan.grid, window, to_linear))
    return sources


def _halo_window(ctx: BlockContext, block) -> tuple:
    """The window (col, row, width, height) of the grid read for a block: the block and the
    speckle filter's halo, clipped to the grid."""
    grid, halo = ctx.plan.grid, ctx.halo
    top = max(0, block.row_off - halo)
    bottom = min(grid.height, block.row_off + block.height + halo)
    left = max(0, block.col_off - halo)
    right = min(grid.width, block.col_off + block.width + halo)
    return (left, top, right - left, bottom - top)


def on_grid(ctx: BlockContext, block, sources: Sequence[object]) -> Dict[str, object]:
    """Brings the read sources of one block onto the target grid: ``{layer key: values}``
    (Sentinel-1: ``(values, units)``), NaN where invalid."""
    grid, o = ctx.plan.grid, ctx.options
    window = _halo_window(ctx, block)
    left, top = window[0], window[1]
    rows = slice(block.row_off - top, block.row_off - top + block.height)
    cols = slice(block.col_off - left, block.col_off - left + block.width)
    arrays = {}
    for group, source in zip(ctx.groups, sources):
        is_s1 = group[0].kind == "s1"
        if group[0].resampling == "none":
            values = source
            units = o.s1_units
        else:
            values = _warp(source, group, grid, window, o.threads)
            units = "linear"
        for layer, band_values in zip(group, values):
            band_units = units
            if is_s1 and o.speckle_filter:
                linear = band_values if units == "linear" else sar.db_to_linear(band_values)
                band_values = sar.lee_filter(linear, o.speckle_window, o.enl)
                band_units = "linear"
            crop = band_values[rows, cols]
            arrays[layer.key] = (crop, band_units) if is_s1 else crop
    return arrays


def work_block(ctx: BlockContext, block, sources) -> np.ndarray:
    """Warps the block's sources onto the grid (:func:`on_grid`) and computes the output bands:
    (bands, rows, cols) float32, nodata where invalid; counts the valid pixels per band."""
    arrays = on_grid(ctx, block, sources)
    result = {**_optical_features(ctx, arrays), **_radar_features(ctx, arrays)}
    nodata = np.float32(raster_io.FLOAT_NODATA)
    out = np.empty((len(ctx.plan.outputs), block.height, block.width), dtype=np.float32)
    for k, band in enumerate(ctx.plan.outputs):
        out[k] = result.pop(band.name)
        missing = ~np.isfinite(out[k])
        ctx.valid[k] += missing.size - int(np.count_nonzero(missing))
        out[k][missing] = nodata
    return out


def _clear_sentinel2(ctx: BlockContext, arrays, s2_arrays) -> np.ndarray:
    """Pixels where every Sentinel-2 band is valid and the mask (if any) says clear."""
    plan = ctx.plan
    valid = np.isfinite(s2_arrays[0])
    nonzero = s2_arrays[0] != 0
    for values in s2_arrays[1:]:
        valid &= np.isfinite(values)
        nonzero |= values != 0
    if all(layer.integer for layer in plan.layers if layer.kind == "s2"):
        valid &= nonzero
    ctx.counts["s2"] += int(valid.sum())
    if plan.mask_layer is not None:
        mask = arrays["MASK"]
        if plan.mask_type == "scl":
            cloud = np.isin(mask, plan.mask_classes) | (mask == SCL_NO_DATA)
        else:
            cloud = np.isfinite(mask) & (mask != 0)
        valid &= ~cloud & np.isfinite(mask)
    ctx.counts["clear"] += int(valid.sum())
    return valid


def _optical_features(ctx: BlockContext, arrays) -> Dict[str, np.ndarray]:
    plan, o = ctx.plan, ctx.options
    result: Dict[str, np.ndarray] = {}
    if not plan.s2_used:
        return result
    valid = _clear_sentinel2(ctx, arrays, [arrays[f"S2:{b}"] for b in plan.s2_used])
    reflectance = {
        b: (arrays[f"S2:{b}"] + np.float32(plan.s2_offset)) / np.float32(o.s2_scale)
        for b in plan.s2_used}
    for b in plan.s2_bands:
        values = reflectance[b] if o.s2_values == "reflectance" else arrays[f"S2:{b}"]
        result[f"S2_{b}"] = np.where(valid, values, np.nan)
    params = {"L": float(o.savi_l)}
    for name in plan.indices:
        values, ok = evaluate_index(name, reflectance, params)
        result[name] = np.where(ok & valid, values, np.nan)
    return result


def _radar_features(ctx: BlockContext, arrays) -> Dict[str, np.ndarray]:
    plan, o = ctx.plan, ctx.options
    out_units, suffix = o.s1_output_units, o.band_suffix
    wanted = {band.name for band in plan.outputs}
    need_linear = any(b.kind == "rvi" or b.kind.startswith("temporal_") for b in plan.outputs)
    result: Dict[str, np.ndarray] = {}
    linear_by_pol: Dict[str, list] = {}
    for date in plan.s1_dates:
        got = {pol: arrays[layer.key] for pol, layer in date.layers.items()}
        for pol, (values, units) in got.items():
            linear = values if units == "linear" else None
            if need_linear:
                linear = sar.db_to_linear(values) if linear is None else linear
                linear_by_pol.setdefault(pol, []).append(linear)
            if units == out_units:
                shown = values
            elif out_units == "dB":
                shown = sar.linear_to_db(values)
            else:
                shown = sar.db_to_linear(values) if linear is None else linear
            result[f"{date.band_prefix}{pol}_{suffix}"] = shown
        pair = cross_pair(list(got))
        if pair:
            co, cross = pair
            name = f"{date.band_prefix}{co}{cross}_{suffix}"
            if name in wanted:
                result[name] = sar.ratio(result[f"{date.band_prefix}{co}_{suffix}"],
                                         result[f"{date.band_prefix}{cross}_{suffix}"],
                                         out_units)
            if f"{date.band_prefix}RVI" in wanted:
                result[f"{date.band_prefix}RVI"] = sar.rvi(
                    linear_by_pol[co][-1], linear_by_pol[cross][-1])
    for band in plan.outputs:
        if band.kind.startswith("temporal_"):
            result[band.name] = sar.temporal_statistic(
                linear_by_pol[band.polarisation], band.kind[len("temporal_"):], out_units)
    return result


def group_layers(layers: Sequence[Layer]) -> List[List[Layer]]:
    """Groups layers read together: same file, same way onto the grid (one read, one warp)."""
    groups: Dict[tuple, List[Layer]] = {}
    for layer in layers:
        key = (layer.path, layer.kind, layer.resampling, layer.offset, layer.scale)
        groups.setdefault(key, []).append(layer)
    return list(groups.values())


def _read_bands(ds, layers: Sequence[Layer], window) -> np.ndarray:
    """Reads the bands of ``layers`` as float32 with NaN where invalid."""
    data = ds.read([layer.band for layer in layers], window=window).astype(np.float32, copy=False)
    for k, layer in enumerate(layers):
        if layer.nodata is not None and not np.isnan(layer.nodata):
            data[k][data[k] == np.float32(layer.nodata)] = np.nan
    return data


def _read_aligned(ds, layers: Sequence[Layer], grid: Grid, window) -> np.ndarray:
    """Reads a window of layers that already lie on the grid (no resampling)."""
    from rasterio.windows import Window

    col_off, row_off, width, height = window
    out = np.full((len(layers), height, width), np.nan, dtype=np.float32)
    col0, row0 = layers[0].offset
    src_col = max(0, col0 + col_off)
    src_row = max(0, row0 + row_off)
    src_col_end = min(ds.width, col0 + col_off + width)
    src_row_end = min(ds.height, row0 + row_off + height)
    if src_col_end <= src_col or src_row_end <= src_row:
        return out
    data = _read_bands(ds, layers, Window(src_col, src_row, src_col_end - src_col,
                                          src_row_end - src_row))
    dst_col, dst_row = src_col - col0 - col_off, src_row - row0 - row_off
    out[:, dst_row:dst_row + data.shape[1], dst_col:dst_col + data.shape[2]] = data
    return out


@dataclass
class Source:
    """The source window of a warped layer group under one block: values (float32, NaN where
    invalid, Sentinel-1 in linear power when ``to_linear``) and their georeferencing."""

    data: np.ndarray
    transform: object
    crs: object


def _read_source(ds, layers: Sequence[Layer], grid: Grid, window, to_linear: bool):
    """Reads the part of a layer group's input under a window (col, row, width, height) of the
    grid, with the resampling kernel's margin: a :class:`Source`, or None when the window lies
    outside the input."""
    from rasterio.transform import array_bounds
    from rasterio.warp import transform_bounds
    from rasterio.windows import Window, from_bounds

    first = layers[0]
    col_off, row_off, width, height = window
    transform = grid.transform * grid.transform.translation(col_off, row_off)
    b = array_bounds(height, width, transform)
    try:
        left, bottom, right, top = transform_bounds(grid.crs, ds.crs, *b, densify_pts=21)
    except Exception:  # pragma: no cover - block outside the source projection's domain
        return None
    src = from_bounds(left, bottom, right, top, transform=ds.transform)
    margin = 2 + int(math.ceil(1.0 / max(1e-6, min(first.scale))))  # kernel reach, input pixels
    col0 = max(0, int(math.floor(src.col_off)) - margin)
    row0 = max(0, int(math.floor(src.row_off)) - margin)
    col1 = min(ds.width, int(math.ceil(src.col_off + src.width)) + margin)
    row1 = min(ds.height, int(math.ceil(src.row_off + src.height)) + margin)
    if col1 <= col0 or row1 <= row0:
        return None
    src_window = Window(col0, row0, col1 - col0, row1 - row0)
    data = _read_bands(ds, layers, src_window)
    if first.kind == "s2" and first.integer:
        data[data == 0] = np.nan  # Sentinel-2 NO_DATA, not to be blended into its neighbours
    if to_linear:
        data = sar.db_to_linear(data)
    return Source(data, ds.window_transform(src_window), ds.crs)


def _warp(source: Optional[Source], layers: Sequence[Layer], grid: Grid, window,
          threads: int) -> np.ndarray:
    """Warps a :class:`Source` onto a window (col, row, width, height) of the grid; NaN where
    nothing maps."""
    from rasterio.enums import Resampling
    from rasterio.warp import reproject

    first = layers[0]
    col_off, row_off, width, height = window
    out = np.full((len(layers), height, width), np.nan, dtype=np.float32)
    if source is None:
        return out
    transform = grid.transform * grid.transform.translation(col_off, row_off)
    # GDAL's per-pixel validity checks cost about half the warp: only ask for them when needed.
    src_nodata = np.nan if np.isnan(source.data).any() else None
    reproject(
        source.data, out, src_transform=source.transform, src_crs=source.crs,
        src_nodata=src_nodata, dst_transform=transform, dst_crs=grid.crs, dst_nodata=np.nan,
        resampling=getattr(Resampling, first.resampling),
        num_threads=thread_count(threads),
        init_dest_nodata=True,
        # The kernel scale of the whole warp, not one the warper would guess from this block.
        XSCALE=str(first.scale[0]), YSCALE=str(first.scale[1]))
    return out
