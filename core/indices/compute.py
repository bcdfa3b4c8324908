"""Block-wise computation of spectral indices from a Sentinel-2 multi-band raster.

The engine reads top-down: :class:`IndexOptions` (validated once, for the check and the run),
:func:`plan_spectral_indices` (everything decided before a pixel is read), and the block
function :func:`index_block`, walked by :func:`~landfusion.core.io.raster.run_blocks`.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..errors import InputError, LandFusionError, OutputError
from ..io import raster as raster_io
from ..io.outputs import atomic_raster_output, check_raster_output
from ..runtime import (IsCancelled, Log, Progress, never_cancelled, no_log, no_progress,
                       thread_count)
from ..sensors.bands import require_bands, resolve_s2_band_names
from ..sensors.units import check_units, sample_bands
from ..sensors.sentinel2 import DN_SCALE, detect_offset
from .formulas import DEFAULT_INDICES, INDICES, Expression, evaluate_index, needed_bands


@dataclass
class IndexOptions:
    """What to compute and how (see :func:`compute_spectral_indices` for each option)."""

    indices: Sequence[str] = DEFAULT_INDICES
    band_names: Optional[str] = None
    scale: float = DN_SCALE
    offset: Optional[float] = None
    savi_l: float = 0.5
    expression: Optional[str] = None
    expression_name: str = "CUSTOM"
    memory_mb: float = raster_io.DEFAULT_MEMORY_MB
    compress: str = "NONE"

    def validated(self) -> "IndexOptions":
        """Returns a normalised, checked copy.

        Raises:
            InputError: unknown index, empty choice, invalid expression or scale.
        """
        indices = [i.strip().upper() for i in self.indices if i and i.strip()]
        unknown = [i for i in indices if i not in INDICES]
        if unknown:
            raise InputError(
                f"Unknown index(es): {', '.join(unknown)}. Available: {', '.join(INDICES)}."
            )
        has_custom = bool(self.expression and self.expression.strip())
        if has_custom:
            Expression(self.expression)  # raises InputError naming what is wrong with it
        if not indices and not has_custom:
            raise InputError("Choose at least one index or give a custom expression.")
        name = (self.expression_name or "CUSTOM").strip()
        if has_custom and name.upper() in indices:
            raise InputError(f"The custom index is named '{name}' like a chosen index; rename it.")
        if not self.scale or not np.isfinite(self.scale):
            raise InputError("The reflectance scale must be a non-zero number (10000 for "
                             "Sentinel-2).")
        return dataclasses.replace(self, indices=indices, expression_name=name)


@dataclass
class IndexPlan:
    """What a spectral-index run will compute, resolved before any pixel is read."""

    band_names: list
    indices: list
    custom: Optional[Expression]
    out_names: list
    used: list
    band_index: dict
    nodata: Dict[str, Optional[float]] = dataclasses.field(default_factory=dict)
    integer_input: bool = False
    scale: float = DN_SCALE
    offset: float = 0.0
    offset_reason: str = "as given"
    savi_l: float = 0.5


def plan_spectral_indices(dataset, options: IndexOptions, path: Optional[str] = None
                          ) -> IndexPlan:
    """Checks the validated options against an open raster's bands and fixes the offset.

    Args:
        dataset: the open input raster.
        options: :meth:`IndexOptions.validated` options.
        path: the input's path (its product name may tell the processing baseline).

    Raises:
        InputError: invalid expression.
        BandError: band names unknown or a band an index needs is missing.
    """
    o = options
    custom = Expression(o.expression) if o.expression and o.expression.strip() else None
    out_names = list(o.indices) + ([o.expression_name] if custom is not None else [])
    names = resolve_s2_band_names(o.band_names, raster_io.band_descriptions(dataset), "the input",
                                  others_allowed=True)
    for name in o.indices:
        require_bands(names, INDICES[name].bands, name)
    if custom is not None:
        require_bands(names, custom.bands, f"The custom expression '{custom.text}'")
    used = needed_bands(o.indices, custom)
    band_index = {name: names.index(name) + 1 for name in used}
    check_units(used, sample_bands(dataset, [band_index[n] for n in used]), what="The input")
    offset, reason = o.offset, "as given"
    if offset is None:
        detected, reason = detect_offset(dataset, path or dataset.name)
        offset = detected if detected is not None else 0.0
    return IndexPlan(
        names, list(o.indices), custom, out_names, used, band_index,
        nodata={name: dataset.nodatavals[band_index[name] - 1] for name in used},
        integer_input=all(np.issubdtype(np.dtype(dataset.dtypes[band_index[n] - 1]), np.integer)
                          for n in used),
        scale=float(o.scale), offset=float(offset), offset_reason=reason,
        savi_l=float(o.savi_l))


def check_spectral_indices(input_path: str, **options) -> IndexPlan:
    """Opens the input and validates the choice without reading pixels.

    Args:
        options: the fields of :class:`IndexOptions`.
    """
    o = IndexOptions(**options).validated()
    with raster_io.gdal_env(), raster_io.open_raster(input_path, "Input raster") as src:
        return plan_spectral_indices(src, o, input_path)


#: Pixels worked at once inside a block: the few float32 temporaries of one index then stay in
#: the core's cache instead of streaming megabytes through memory for every operation.
CHUNK_PIXELS = 32 * 1024


def index_block(plan: IndexPlan, block, data: np.ndarray, out: Optional[np.ndarray] = None
                ) -> tuple:
    """Computes the indices of one block of the used bands (in ``plan.used`` order).

    Args:
        out: (indices, rows, cols) float32 array to fill; a new one when None.

    Returns:
        ``(indices, valid_counts)``: (indices, rows, cols) float32, nodata where an input is
        nodata or an index undefined, and the number of valid pixels per index.
    """
    rows, cols = data.shape[1:]
    if out is None:
        out = np.empty((len(plan.out_names), rows, cols), dtype=np.float32)
    counts = np.zeros(len(plan.out_names), dtype=np.int64)
    step = max(1, CHUNK_PIXELS // max(1, cols))
    for row in range(0, rows, step):
        _index_chunk(plan, data[:, row:row + step], out[:, row:row + step], counts)
    return out, counts


def _index_chunk(plan: IndexPlan, data: np.ndarray, out: np.ndarray, counts: np.ndarray) -> None:
    """Writes the indices of a few rows into ``out`` and adds their valid pixels to ``counts``."""
    valid = valid_inputs(plan, data)
    reflectance = {name: _reflectance(data[k], plan.offset, plan.scale)
                   for k, name in enumerate(plan.used)}
    params = {"L": plan.savi_l}
    nodata = np.float32(raster_io.FLOAT_NODATA)
    for k, name in enumerate(plan.out_names):
        if name in INDICES:
            _, ok = evaluate_index(name, reflectance, params, out=out[k])
        else:
            values, ok = plan.custom.evaluate(reflectance)
            np.copyto(out[k], values)
        if valid is not None:
            ok &= valid
        count = int(np.count_nonzero(ok))
        counts[k] += count
        if count < ok.size:
            np.copyto(out[k], nodata, where=np.logical_not(ok, out=ok))


def valid_inputs(plan: IndexPlan, data: np.ndarray) -> Optional[np.ndarray]:
    """Pixels where no used band holds its nodata value and, for integer DNs, not every band is
    0 (Sentinel-2's NO_DATA); None when the bands have no nodata value to test."""
    valid = None
    nodatas = [plan.nodata[name] for name in plan.used]
    for k, nodata in enumerate(nodatas):
        if nodata is not None and not np.isnan(nodata):
            differs = data[k] != _in_dtype(nodata, data.dtype)
            valid = differs if valid is None else np.logical_and(valid, differs, out=valid)
    # With nodata 0 on every band, "no band is 0" already implies "not every band is 0".
    if plan.integer_input and not all(nodata == 0 for nodata in nodatas):
        nonzero = data[0] != 0
        for k in range(1, len(data)):
            nonzero |= data[k] != 0
        valid = nonzero if valid is None else np.logical_and(valid, nonzero, out=valid)
    return valid


def _in_dtype(value: float, dtype: np.dtype):
    """``value`` as a scalar of ``dtype`` when it is exactly one (comparing integer DNs with a
    float would convert the whole array to float first), else unchanged."""
    if np.issubdtype(dtype, np.integer) and float(value).is_integer():
        limits = np.iinfo(dtype)
        if limits.min <= value <= limits.max:
            return dtype.type(int(value))
    return value


def _reflectance(dn: np.ndarray, offset: float, scale: float) -> np.ndarray:
    """(DN + offset) / scale in float32, computed in place in one new array."""
    values = dn.astype(np.float32)
    if offset:
        values += np.float32(offset)
    values /= np.float32(scale)
    return values


def compute_spectral_indices(
    input_path: str,
    output_path: str,
    indices: Sequence[str] = DEFAULT_INDICES,
    progress: Progress = no_progress,
    is_cancelled: IsCancelled = never_cancelled,
    log: Log = no_log,
    warn: Log = no_log,
    **options,
) -> dict:
    """Computes spectral indices block by block and writes them as a float32 GeoTIFF.

    Reflectance is ``(DN + offset) / scale``. Pixels where an input band holds its nodata value,
    where all needed bands are 0 (Sentinel-2's NO_DATA outside the swath), or where an index is
    undefined are written as nodata (-9999).

    Args:
        input_path: Sentinel-2 multi-band raster.
        output_path: GeoTIFF to write; one band per index, described by the index name.
        indices: index names from :data:`indices.INDICES`.
        options: the other fields of :class:`IndexOptions`:

            - ``band_names``: comma-separated Sentinel-2 names of the input bands in order;
              empty to read them from the band descriptions.
            - ``scale``: reflectance scale factor of the DNs; ``offset``: DN offset, None
              detects it from the metadata (-1000 from baseline 04.00, else 0).
            - ``savi_l``: soil brightness factor L of SAVI.
            - ``expression``: optional custom index over band names, e.g.
              ``(B08 - B11) / (B08 + B11)``; ``expression_name``: its band name.
            - ``memory_mb``: memory budget for one block of pixels.
            - ``compress``: GeoTIFF compression ('NONE', 'ZSTD', 'DEFLATE' or 'LZW').
              Uncompressed is the fastest (float indices compress to about 70 % only) and
              QGIS's own default.

    Returns:
        A summary: output path, band names, offset and scale used, valid-pixel fraction per band.

    Raises:
        InputError, BandError, OutputError, CancelledError.
    """
    o = IndexOptions(indices=indices, **options).validated()
    check_raster_output(output_path)
    with raster_io.gdal_env(), raster_io.open_raster(input_path, "Input raster") as src:
        plan = plan_spectral_indices(src, o, input_path)
        log(f"Reflectance offset {plan.offset:g} "
            + ("as given" if plan.offset_reason == "as given" else f"({plan.offset_reason})")
            + f"; reflectance = (DN + offset) / {plan.scale:g}.")
        valid_counts = np.zeros(len(plan.out_names), dtype=np.int64)
        _write_indices(src, input_path, output_path, plan, o, valid_counts, progress,
                       is_cancelled)
        total = src.width * src.height
    fractions = {name: float(valid_counts[k]) / total for k, name in enumerate(plan.out_names)}
    for name, fraction in fractions.items():
        if fraction == 0.0:
            warn(f"{name} has no valid pixel: every pixel is nodata or undefined for this index.")
    return {
        "output": output_path,
        "bands": plan.out_names,
        "offset": plan.offset,
        "scale": plan.scale,
        "valid_fraction": fractions,
    }


def _write_indices(src, input_path: str, output_path: str, plan: IndexPlan, o: IndexOptions,
                   valid_counts: np.ndarray, progress: Progress,
                   is_cancelled: IsCancelled) -> None:
    """Writes the index raster atomically, block by block, blocks read and worked on every
    core."""
    import rasterio

    workers = thread_count()
    order = [plan.band_index[n] for n in plan.used]
    # Per block alive: the input values and the index planes (the temporaries are per chunk).
    itemsize = max(np.dtype(src.dtypes[i - 1]).itemsize for i in order)
    bytes_per_pixel = itemsize * len(order) + 4 * len(plan.out_names)
    blocks = raster_io.plan_blocks(src.width, src.height, bytes_per_pixel,
                                   o.memory_mb / (workers + 2),
                                   align=raster_io.input_alignment(src))
    with atomic_raster_output(output_path) as temp, \
            raster_io.DatasetPerThread(input_path, "Input raster") as inputs:
        try:
            profile = raster_io.float_profile(src, len(plan.out_names), compress=o.compress)
            with rasterio.open(temp, "w", **profile) as dst:
                _describe(dst, plan, input_path)
                steps = IndexBlocks(plan, order, src.dtypes[order[0] - 1], inputs, dst,
                                    valid_counts, raster_io.ArrayPool(keep=workers + 2))
                raster_io.run_blocks(blocks, steps.read, steps.work, progress, is_cancelled,
                                     write=steps.write, workers=workers)
        except LandFusionError:
            raise
        except (OSError, ValueError) as exc:
            raise OutputError(f"Writing '{output_path}' failed: {exc}") from exc


@dataclass
class IndexBlocks:
    """The three steps of one block, for :func:`~landfusion.core.io.raster.run_blocks`:
    ``read`` and ``work`` run on several threads at once, ``write`` on one; block arrays are
    recycled through ``pool``."""

    plan: IndexPlan
    order: list
    dtype: str
    inputs: raster_io.DatasetPerThread
    dst: object
    valid_counts: np.ndarray
    pool: raster_io.ArrayPool

    def read(self, block) -> np.ndarray:
        """The used bands of ``block``, in ``plan.used`` order."""
        buffer = self.pool.take((len(self.order), block.height, block.width), self.dtype)
        return self.inputs.read(self.order, block.window, out=buffer)

    def work(self, block, data: np.ndarray) -> tuple:
        """The indices of ``block`` and their valid-pixel counts (see :func:`index_block`)."""
        out = self.pool.take((len(self.plan.out_names), block.height, block.width), np.float32)
        result = index_block(self.plan, block, data, out)
        self.pool.give(data)
        return result

    def write(self, block, result: tuple) -> None:
        """Writes the indices of ``block`` and counts its valid pixels."""
        out, counts = result
        self.dst.write(out, window=block.window)
        self.valid_counts += counts
        self.pool.give(out)


def _describe(dst, plan: IndexPlan, input_path: str) -> None:
    """Band names, formulas and references, scale and offset in the output's metadata."""
    for i, name in enumerate(plan.out_names, start=1):
        dst.set_band_description(i, name)
        if name in INDICES:
            dst.update_tags(i, FORMULA=INDICES[name].formula, REFERENCE=INDICES[name].reference)
        else:
            dst.update_tags(i, FORMULA=plan.custom.text)
    dst.update_tags(
        LANDFUSION_ALGORITHM="spectralindices",
        REFLECTANCE_SCALE=f"{plan.scale:g}",
        REFLECTANCE_OFFSET=f"{plan.offset:g}",
        SOURCE=os.path.basename(input_path),
    )


__all__: List[str] = ["IndexBlocks", "IndexOptions", "IndexPlan", "check_spectral_indices",
                      "compute_spectral_indices", "index_block", "plan_spectral_indices"]
