"""The engine functions of co-registration: :func:`check_stack` (no pixel read) and
:func:`coregister_stack` (the stack and its JSON sidecar)."""

from __future__ import annotations

import contextlib
import json
import os
from typing import Optional

import numpy as np

from ...errors import LandFusionError, OutputError
from ...indices.formulas import INDICES
from ...io import raster as raster_io
from ...io.outputs import atomic_raster_output, check_raster_output
from ...runtime import (IsCancelled, Log, Progress, log_messages, never_cancelled, no_log,
                        no_progress)
from .inputs import check_units, open_inputs
from .options import StackOptions
from .pixels import BlockContext, group_layers, read_block, work_block
from .plan import StackPlan, plan_stack

SIDECAR_SUFFIX = ".json"


def sidecar_path(output_path: str) -> str:
    """Returns the path of the JSON sidecar written beside a stack."""
    return output_path + SIDECAR_SUFFIX


def check_stack(log: Log = no_log, **options) -> StackPlan:
    """Opens the inputs and checks them and the options without reading pixels.

    Args:
        options: the fields of :class:`StackOptions` (as for :func:`coregister_stack`).
    """
    o = StackOptions(**options).validated()
    with raster_io.gdal_env(), contextlib.ExitStack() as stack:
        return plan_stack(open_inputs(o, stack), o, log)


def coregister_stack(
    output_path: str,
    progress: Progress = no_progress,
    is_cancelled: IsCancelled = never_cancelled,
    log: Log = no_log,
    warn: Log = no_log,
    **options,
) -> dict:
    """Puts Sentinel-1 dates and Sentinel-2 bands and indices on one grid as one named stack.

    Args:
        output_path: GeoTIFF to write (float32, tiled, compressed, nodata -9999); the JSON
            sidecar is written to ``output_path + '.json'``.
        options: the fields of :class:`StackOptions`:

            - ``s2``: one multi-band Sentinel-2 raster, or one single-band file per band;
              ``s2_band_names``: comma-separated band names in order (of the bands, or of the
              files) when descriptions and file names do not name them.
            - ``s2_mask``: optional scene classification (SCL) or cloud mask raster;
              ``mask_type``: 'scl' (classes 3, 8, 9, 10 masked) or 'binary' (non-zero =
              cloud); ``mask_snow``, ``mask_saturated``: with SCL, also mask snow (11) /
              saturated pixels (1).
            - ``s2_bands``: Sentinel-2 bands to write; ``indices``: spectral indices to write
              (names from :data:`indices.INDICES`); ``savi_l``: SAVI soil factor.
            - ``s2_offset``, ``s2_scale``: reflectance = (DN + offset) / scale; offset None
              detects it; ``s2_values``: 'reflectance' or 'dn' (bands as stored).
            - ``s1``: Sentinel-1 rasters: per date a 2-band VV/VH raster or one file per
              polarisation; ``s1_units``, ``s1_output_units``: 'dB' or 'linear';
              ``s1_ratio``, ``s1_rvi``: the VV/VH ratio and the radar vegetation index per date;
              ``speckle_filter``: None or 'lee', ``speckle_window``: odd window size, ``enl``:
              looks of the input; ``temporal``: statistics across dates per polarisation
              ('mean', 'std', 'min', 'max').
            - ``preset``: None or 'rouen' (20-band layout of the Rouen study).
            - ``reference``: raster whose grid to use; otherwise the finest Sentinel-2 band's
              grid, or ``target_crs`` / ``target_resolution`` / ``target_extent`` when given.
            - ``memory_mb``: memory budget for the pixels of one block; ``compress``: GeoTIFF
              compression; ``threads``: GDAL warping threads (0: all cores).

    Returns:
        A summary: output, sidecar, band names, grid, valid fraction per band, clear-sky fraction.

    Raises:
        InputError, BandError, NoOverlapError, OutputError, CancelledError.
    """
    o = StackOptions(**options).validated()
    check_raster_output(output_path)
    with raster_io.gdal_env(), contextlib.ExitStack() as stack:
        datasets = open_inputs(o, stack)
        plan = plan_stack(datasets, o, log)
        _log_plan(datasets, plan, o, log, warn)
        ctx = BlockContext(plan, o, datasets, group_layers(plan.layers),
                           np.zeros(len(plan.outputs), dtype=np.int64))
        _write_stack(output_path, ctx, progress, is_cancelled)
    fractions = _valid_fractions(ctx)
    clear = ctx.counts["clear"] / ctx.counts["s2"] if ctx.counts["s2"] else None
    if plan.mask_layer is not None and clear is not None:
        log(f"Clear-sky fraction of the Sentinel-2 pixels: {100 * clear:.1f} % (masked SCL "
            f"classes {plan.mask_classes})." if plan.mask_type == "scl" else
            f"Clear-sky fraction of the Sentinel-2 pixels: {100 * clear:.1f} %.")
    for name, fraction in fractions.items():
        if fraction == 0.0:
            warn(f"{name} has no valid pixel on the target grid.")
    grid = plan.grid
    return {
        "output": output_path,
        "sidecar": sidecar_path(output_path),
        "bands": [b.name for b in plan.outputs],
        "crs": grid.crs.to_string(),
        "transform": tuple(grid.transform)[:6],
        "width": grid.width,
        "height": grid.height,
        "valid_fraction": fractions,
        "clear_fraction": clear,
        "s1_coverage": plan.s1_coverage,
        "resampling": {layer.key: layer.resampling for layer in plan.layers},
    }


def _log_plan(datasets, plan: StackPlan, o: StackOptions, log: Log, warn: Log) -> None:
    log_messages(log, warn, plan.notes, plan.warnings)
    check_units(datasets, plan.s1_dates, o.s1_units, warn)
    for layer in plan.layers:
        how = ("already on the grid, read as is" if layer.resampling == "none"
               else f"warped ({layer.resampling}"
               + (", in linear power)" if layer.kind == "s1" else ")"))
        log(f"{layer.key.replace(':', ' ')} from '{os.path.basename(layer.path)}': {how}.")
    if plan.s2_used:
        log(f"Sentinel-2 reflectance = (DN + {plan.s2_offset:g}) / {o.s2_scale:g} "
            f"(offset {plan.s2_offset_reason}).")


def _valid_fractions(ctx: BlockContext) -> dict:
    total = ctx.plan.grid.width * ctx.plan.grid.height
    return {b.name: float(ctx.valid[k]) / total for k, b in enumerate(ctx.plan.outputs)}


def _write_stack(output_path: str, ctx: BlockContext, progress: Progress,
                 is_cancelled: IsCancelled) -> None:
    """Writes the stack and its sidecar atomically, block by block."""
    import rasterio

    plan, o = ctx.plan, ctx.options
    n_out, n_layers = len(plan.outputs), len(plan.layers)
    # Alive per pixel over the three blocks in flight: the block read ahead (its layers and
    # their warp sources), the block worked (layers, outputs, features, temporaries) and the
    # block being written (outputs).
    bytes_per_pixel = 4 * (2 * n_layers) + 4 * (n_layers + 2 * n_out + 6) + 4 * n_out
    blocks = raster_io.plan_tiles(plan.grid.width, plan.grid.height, bytes_per_pixel,
                                  o.memory_mb)
    with atomic_raster_output(output_path) as temp:
        try:
            profile = raster_io.float_profile(plan.grid, n_out, compress=o.compress)
            with rasterio.open(temp, "w", **profile) as dst:
                _describe(dst, plan, o.s1_output_units)
                raster_io.run_blocks(
                    blocks, lambda block: read_block(ctx, block),
                    lambda block, sources: work_block(ctx, block, sources), progress, is_cancelled,
                    write=lambda block, out: dst.write(out, window=block.window))
            clear = ctx.counts["clear"] / ctx.counts["s2"] if ctx.counts["s2"] else None
            sidecar = _sidecar(plan, output_path, _valid_fractions(ctx), clear,
                               _processing(o, plan))
            with open(temp + SIDECAR_SUFFIX, "w", encoding="utf-8") as handle:
                json.dump(sidecar, handle, indent=2)
        except LandFusionError:
            raise
        except (OSError, ValueError) as exc:
            raise OutputError(f"Writing '{output_path}' failed: {exc}") from exc


def _processing(o: StackOptions, plan: StackPlan) -> dict:
    """The processing choices recorded in the sidecar."""
    speckle = (f"Lee, {o.speckle_window}x{o.speckle_window} window, ENL {o.enl:g}, in linear "
               "power on the target grid") if o.speckle_filter else None
    return dict(
        s1_input_units=o.s1_units, s1_output_units=o.s1_output_units, speckle_filter=speckle,
        s2_values=o.s2_values, s2_scale=o.s2_scale, s2_offset=plan.s2_offset, savi_l=o.savi_l,
        mask_type=o.mask_type if o.s2_mask else None,
        mask_classes=plan.mask_classes if o.s2_mask and o.mask_type == "scl" else None,
        preset=o.preset or None, compress=o.compress)


def _describe(dst, plan: StackPlan, s1_units: str) -> None:
    for i, band in enumerate(plan.outputs, start=1):
        dst.set_band_description(i, band.name)
        tags = {"SENSOR": band.sensor, "KIND": band.kind, "UNITS": band.units,
                "DESCRIPTION": band.description,
                "SOURCES": ";".join(os.path.basename(s) for s in band.sources)}
        if band.date:
            tags["DATE"] = band.date
        if band.polarisation:
            tags["POLARISATION"] = band.polarisation
        if band.name in INDICES:
            tags["FORMULA"] = INDICES[band.name].formula
        dst.update_tags(i, **tags)
    dst.update_tags(LANDFUSION_ALGORITHM="coregisterstack",
                    BAND_NAMES=",".join(b.name for b in plan.outputs))
    if plan.s1_dates:
        dst.update_tags(SENTINEL1_DATES=";".join(
            f"{d.band_prefix[:-1]}={_iso_date(d.date) or 'unknown'}" for d in plan.s1_dates))


def _iso_date(date: Optional[str]) -> Optional[str]:
    """``20190917`` → ``2019-09-17``."""
    return f"{date[:4]}-{date[4:6]}-{date[6:8]}" if date else None


def _sidecar(plan: StackPlan, output_path: str, fractions, clear, processing) -> dict:
    grid = plan.grid
    resampling = {}
    for layer in plan.layers:
        resampling[layer.key] = layer.resampling
    bands = []
    for i, band in enumerate(plan.outputs, start=1):
        entry = {
            "index": i, "name": band.name, "sensor": band.sensor, "kind": band.kind,
            "units": band.units, "description": band.description,
            "sources": [os.path.abspath(s) for s in band.sources],
            "valid_fraction": round(fractions[band.name], 6),
        }
        if band.date:
            entry["date"] = _iso_date(band.date)
        if band.polarisation:
            entry["polarisation"] = band.polarisation
        if band.name in INDICES:
            entry["formula"] = INDICES[band.name].formula
            entry["reference"] = INDICES[band.name].reference
        bands.append(entry)
    return {
        "landfusion": "stack",
        "version": 1,
        "algorithm": "coregisterstack",
        "raster": os.path.basename(output_path),
        "band_names": [b.name for b in plan.outputs],
        "nodata": raster_io.FLOAT_NODATA,
        "grid": {"crs": grid.crs.to_string(), "crs_wkt": grid.crs.to_wkt(),
                 "transform": list(tuple(grid.transform)[:6]), "width": grid.width,
                 "height": grid.height, "resolution": list(grid.resolution)},
        "bands": bands,
        "sentinel1_dates": [
            {"label": d.label, "rank": i, "band_prefix": d.band_prefix,
             "date": _iso_date(d.date), "polarisations": sorted(d.layers),
             "files": [os.path.abspath(f) for f in d.files],
             "covered_fraction": round(plan.s1_coverage.get(d.label, 0.0), 6)}
            for i, d in enumerate(plan.s1_dates, start=1)],
        "sentinel2": {"bands_found": plan.s2_names, "offset_reason": plan.s2_offset_reason,
                      "clear_sky_fraction": None if clear is None else round(clear, 6),
                      "mask": os.path.abspath(plan.mask_layer.path) if plan.mask_layer else None},
        "resampling": resampling,
        "processing": processing,
    }
