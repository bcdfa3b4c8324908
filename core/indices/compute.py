"""Block-wise computation of spectral indices from a Sentinel-2 multi-band raster."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from ..io import raster as raster_io
from ..sensors.bands import require_bands, resolve_s2_band_names
from ..sensors.sentinel2 import DN_SCALE, detect_offset
from ..errors import InputError, LandFusionError, OutputError
from .formulas import DEFAULT_INDICES, INDICES, Expression, evaluate_index, needed_bands
from ..runtime import IsCancelled, Log, Progress, never_cancelled, no_log, no_progress

@dataclass
class IndexPlan:
    """What a spectral-index run will compute, resolved before any pixel is read."""

    band_names: list
    indices: list
    custom: Optional[Expression]
    out_names: list
    used: list
    band_index: dict


def plan_spectral_indices(
    dataset,
    indices: Sequence[str],
    band_names: Optional[str] = None,
    expression: Optional[str] = None,
    expression_name: str = "CUSTOM",
) -> IndexPlan:
    """Checks the index choice against an open raster's bands.

    Raises:
        InputError: unknown index, empty choice or invalid expression.
        BandError: band names unknown or a band an index needs is missing.
    """
    indices = [i.strip().upper() for i in indices if i and i.strip()]
    unknown = [i for i in indices if i not in INDICES]
    if unknown:
        raise InputError(
            f"Unknown index(es): {', '.join(unknown)}. Available: {', '.join(INDICES)}."
        )
    custom = Expression(expression) if expression and expression.strip() else None
    if not indices and custom is None:
        raise InputError("Choose at least one index or give a custom expression.")
    out_names = list(indices)
    if custom is not None:
        expression_name = (expression_name or "CUSTOM").strip()
        if expression_name.upper() in out_names:
            raise InputError(
                f"The custom index is named '{expression_name}' like a chosen index; rename it."
            )
        out_names.append(expression_name)
    names = resolve_s2_band_names(band_names, raster_io.band_descriptions(dataset), "the input")
    for name in indices:
        require_bands(names, INDICES[name].bands, name)
    if custom is not None:
        require_bands(names, custom.bands, f"The custom expression '{custom.text}'")
    used = needed_bands(indices, custom)
    return IndexPlan(names, indices, custom, out_names, used,
                     {name: names.index(name) + 1 for name in used})


def check_spectral_indices(input_path: str, indices: Sequence[str], band_names: Optional[str] = None,
                           expression: Optional[str] = None,
                           expression_name: str = "CUSTOM") -> IndexPlan:
    """Opens the input and validates the choice (see :func:`plan_spectral_indices`)."""
    with raster_io.gdal_env(), raster_io.open_raster(input_path, "Input raster") as src:
        return plan_spectral_indices(src, indices, band_names, expression, expression_name)


def compute_spectral_indices(
    input_path: str,
    output_path: str,
    indices: Sequence[str] = DEFAULT_INDICES,
    band_names: Optional[str] = None,
    scale: float = DN_SCALE,
    offset: Optional[float] = None,
    savi_l: float = 0.5,
    expression: Optional[str] = None,
    expression_name: str = "CUSTOM",
    memory_mb: float = raster_io.DEFAULT_MEMORY_MB,
    compress: str = "NONE",
    progress: Progress = no_progress,
    is_cancelled: IsCancelled = never_cancelled,
    log: Log = no_log,
    warn: Log = no_log,
) -> dict:
    """Computes spectral indices block by block and writes them as a float32 GeoTIFF.

    Reflectance is ``(DN + offset) / scale``. Pixels where an input band holds its nodata value,
    where all needed bands are 0 (Sentinel-2's NO_DATA outside the swath), or where an index is
    undefined are written as nodata (-9999).

    Args:
        input_path: Sentinel-2 multi-band raster.
        output_path: GeoTIFF to write; one band per index, described by the index name.
        indices: index names from :data:`indices.INDICES`.
        band_names: comma-separated Sentinel-2 names of the input bands in order; empty to read
            them from the band descriptions.
        scale: reflectance scale factor of the DNs.
        offset: DN offset; None detects it from the metadata (-1000 from baseline 04.00, else 0).
        savi_l: soil brightness factor L of SAVI.
        expression: optional custom index over band names, e.g. ``(B08 - B11) / (B08 + B11)``.
        expression_name: band name of the custom index.
        memory_mb: memory budget for one block of pixels.
        compress: GeoTIFF compression ('NONE', 'ZSTD', 'DEFLATE' or 'LZW'). Uncompressed is the
            fastest (float indices compress to about 70 % only) and QGIS's own default.

    Returns:
        A summary: output path, band names, offset and scale used, valid-pixel fraction per band.

    Raises:
        InputError, BandError, OutputError, CancelledError.
    """
    if not scale or not np.isfinite(scale):
        raise InputError("The reflectance scale must be a non-zero number (10000 for Sentinel-2).")
    raster_io.check_raster_output(output_path)

    with raster_io.gdal_env(), raster_io.open_raster(input_path, "Input raster") as src:
        plan = plan_spectral_indices(src, indices, band_names, expression, expression_name)
        used, out_names, custom, band_index = plan.used, plan.out_names, plan.custom, plan.band_index
        if offset is None:
            detected, reason = detect_offset(src, input_path)
            offset = detected if detected is not None else 0.0
            log(f"Reflectance offset {offset:g} ({reason}); reflectance = (DN + offset) / {scale:g}.")
        else:
            log(f"Reflectance offset {offset:g} as given; reflectance = (DN + offset) / {scale:g}.")

        nodata = {name: src.nodatavals[band_index[name] - 1] for name in used}
        integer_input = all(np.issubdtype(np.dtype(src.dtypes[band_index[n] - 1]), np.integer)
                            for n in used)
        params = {"L": float(savi_l)}
        bytes_per_pixel = 4 * (3 * len(used) + 2 * len(out_names)) + 8
        blocks = raster_io.plan_blocks(src.width, src.height, bytes_per_pixel, memory_mb / 3)
        valid_counts = np.zeros(len(out_names), dtype=np.int64)
        order = [band_index[n] for n in used]

        def read(block):
            return src.read(order, window=block.window)

        with raster_io.atomic_raster_output(output_path) as temp:
            try:
                profile = raster_io.float_profile(src, len(out_names), compress=compress)
                import rasterio

                with rasterio.open(temp, "w", **profile) as dst:
                    for i, name in enumerate(out_names, start=1):
                        dst.set_band_description(i, name)
                        if name in INDICES:
                            dst.update_tags(i, FORMULA=INDICES[name].formula,
                                            REFERENCE=INDICES[name].reference)
                        else:
                            dst.update_tags(i, FORMULA=custom.text)
                    dst.update_tags(
                        LANDFUSION_ALGORITHM="spectralindices",
                        REFLECTANCE_SCALE=f"{scale:g}",
                        REFLECTANCE_OFFSET=f"{offset:g}",
                        SOURCE=os.path.basename(input_path),
                    )

                    def work(block, data):
                        valid = np.ones(data.shape[1:], dtype=bool)
                        for k, name in enumerate(used):
                            if nodata[name] is not None and not np.isnan(nodata[name]):
                                valid &= data[k] != nodata[name]
                        if integer_input:
                            valid &= np.any(data != 0, axis=0)
                        reflectance = {
                            name: (data[k].astype(np.float32) + np.float32(offset)) / np.float32(scale)
                            for k, name in enumerate(used)
                        }
                        out = np.empty((len(out_names),) + data.shape[1:], dtype=np.float32)
                        for k, name in enumerate(out_names):
                            if name in INDICES:
                                values, ok = evaluate_index(name, reflectance, params)
                            else:
                                values, ok = custom.evaluate(reflectance)
                            ok &= valid
                            valid_counts[k] += int(np.count_nonzero(ok))
                            np.copyto(out[k], values)
                            out[k][~ok] = raster_io.FLOAT_NODATA
                        return out

                    def write(block, out):
                        dst.write(out, window=block.window)

                    raster_io.run_blocks(blocks, read, work, progress, is_cancelled, write=write)
            except LandFusionError:
                raise
            except (OSError, ValueError) as exc:
                raise OutputError(f"Writing '{output_path}' failed: {exc}") from exc

    total = src.width * src.height
    fractions = {name: float(valid_counts[k]) / total for k, name in enumerate(out_names)}
    for name, fraction in fractions.items():
        if fraction == 0.0:
            warn(f"{name} has no valid pixel: every pixel is nodata or undefined for this index.")
    return {
        "output": output_path,
        "bands": out_names,
        "offset": offset,
        "scale": scale,
        "valid_fraction": fractions,
    }
