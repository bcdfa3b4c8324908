"""Cloud and cloud-shadow masks for Sentinel-2: from the L2A scene classification (SCL), or with
the U-Net models of the optional ``ukis-csmask`` package run through the LandFusion CNN engine.

Both write the same class raster: 0 clear, 1 cloud, 2 cloud shadow, 255 nodata, so "not 0" is the
mask to apply (the convention of cloud-mask inputs elsewhere in LandFusion).
"""

from __future__ import annotations

import importlib.util
import json
import os
import tempfile
from types import SimpleNamespace
from typing import Optional

import numpy as np

from ..io import raster as raster_io
from ..io.outputs import TEMP_PREFIX, atomic_raster_output
from ..io.class_writer import ClassificationWriter, class_fractions
from ..sensors import sentinel2 as s2
from ..sensors.bands import input_band_names, normalise_s2_band
from ..io.classmap import ClassInfo, apply_class_styling, write_paletted_qml
from ..cnn.inference import classify_with_cnn
from ..errors import BandError, DependencyError, InputError, NoDataError
from ..models.card import build_card
from ..models.format import ModelCard
from ..runtime import IsCancelled, Log, Progress, never_cancelled, no_log, no_progress, sub_progress

CLEAR, CLOUD, SHADOW = 0, 1, 2
MASK_NODATA = 255
CLOUD_CLASSES = [
    ClassInfo(CLEAR, "clear", (77, 175, 74)),
    ClassInfo(CLOUD, "cloud", (240, 240, 240)),
    ClassInfo(SHADOW, "cloud shadow", (90, 90, 110)),
]

#: Band names used by ukis-csmask and their Sentinel-2 names.
CSMASK_BANDS = {"blue": "B02", "green": "B03", "red": "B04", "nir": "B08", "swir16": "B11",
                "swir22": "B12"}


def scl_lookup(cirrus_as_cloud: bool = True, medium_as_cloud: bool = True) -> np.ndarray:
    """Returns a 256-entry table from SCL values to mask classes."""
    table = np.full(256, MASK_NODATA, dtype="uint8")
    table[list(s2.SCL_CLEAR_CLASSES)] = CLEAR
    table[s2.SCL_CLOUD_SHADOW] = SHADOW
    table[s2.SCL_CLOUD_HIGH] = CLOUD
    table[s2.SCL_CLOUD_MEDIUM] = CLOUD if medium_as_cloud else CLEAR
    table[s2.SCL_THIN_CIRRUS] = CLOUD if cirrus_as_cloud else CLEAR
    return table


def cloud_mask_from_scl(
    scl_path: str,
    output_path: str,
    cirrus_as_cloud: bool = True,
    medium_as_cloud: bool = True,
    memory_mb: float = raster_io.DEFAULT_MEMORY_MB,
    progress: Progress = no_progress,
    is_cancelled: IsCancelled = never_cancelled,
    log: Log = no_log,
    warn: Log = no_log,
) -> dict:
    """Turns a Sentinel-2 L2A scene classification layer (SCL) into a cloud/shadow mask.

    SCL 3 is cloud shadow; 9 (and 8, 10 unless switched off) is cloud; 0 and 1 (no data,
    saturated) are nodata; everything else is clear. Written on the SCL's own grid.
    """
    table = scl_lookup(cirrus_as_cloud, medium_as_cloud)
    with raster_io.gdal_env(), raster_io.open_raster(scl_path, "SCL layer") as src:
        if src.count != 1 or not np.issubdtype(np.dtype(src.dtypes[0]), np.integer):
            raise InputError(
                f"'{os.path.basename(scl_path)}' has {src.count} band(s) of type {src.dtypes[0]}; "
                "an SCL layer is one integer band with values 0-11 (the L2A product's SCL_20m).")
        seen = np.zeros(256, dtype=bool)
        with ClassificationWriter(src, CLOUD_CLASSES, output_path, nodata=MASK_NODATA) as writer:

            def read(block):
                return src.read(1, window=block.window)

            def work(block, data):
                values = np.clip(data, 0, 255).astype("uint8")
                seen[np.unique(values)] = True
                out = table[values]
                if src.nodata is not None:
                    out[data == src.nodata] = MASK_NODATA
                writer.write(block.window, out, out != MASK_NODATA)

            blocks = raster_io.plan_blocks(src.width, src.height, 4, memory_mb)
            raster_io.run_blocks(blocks, read, work, progress, is_cancelled)
            unknown = np.flatnonzero(seen[s2.SCL_MAX + 1:]) + s2.SCL_MAX + 1
            if unknown.size:
                raise InputError(
                    f"'{os.path.basename(scl_path)}' holds values {unknown[:5].tolist()} that are "
                    "not scene-classification classes (0-11); is it really an SCL layer?")
            if writer.valid_pixels == 0:
                raise NoDataError(f"The SCL layer '{os.path.basename(scl_path)}' holds only "
                                  "nodata; no mask was written.")
    fractions = class_fractions(CLOUD_CLASSES, writer.class_counts)
    log("Mask fractions: " + ", ".join(f"{k} {100 * v:.1f} %" for k, v in fractions.items()))
    return {"valid_pixels": writer.valid_pixels, "class_fractions": fractions}


# --- ukis-csmask models -------------------------------------------------------------------------

def csmask_models() -> dict:
    """Returns ``{"6b_l2a": (onnx path, json path), ...}`` from an installed ukis-csmask, or {}."""
    spec = importlib.util.find_spec("ukis_csmask")
    if spec is None or not spec.submodule_search_locations:
        return {}
    folder = list(spec.submodule_search_locations)[0]
    models = {}
    for bands in ("6b", "4b"):
        for level in ("l2a", "l1c"):
            onnx_path = os.path.join(folder, f"model_{bands}_{level}.onnx")
            json_path = os.path.join(folder, f"model_{bands}_{level}.json")
            if os.path.isfile(onnx_path) and os.path.isfile(json_path):
                models[f"{bands}_{level}"] = (onnx_path, json_path)
    return models


def csmask_metadata(json_path: str, dn_offset: float = 0.0,
                    dn_scale: float = s2.DN_SCALE) -> ModelCard:
    """Describes a ukis-csmask model in LandFusion terms (from the package's JSON metadata).

    The models take top-of-atmosphere (L1C) or surface (L2A) reflectance standardised with the
    package's band statistics, in 256 px tiles, and output logits for background, cloud and cloud
    shadow; they were trained at about 30 m.
    """
    with open(json_path, encoding="utf-8") as handle:
        info = json.load(handle)
    stats = info["data"]["dataset_statistics"]
    names = [CSMASK_BANDS[b.lower()] for b in stats["band_names"]]
    size = int(info["data"].get("target_size", [256, 256])[0])
    count = len(names)
    return build_card(
        task="segmentation", bands=names,
        band_units=["DN" if dn_scale > 100 else "reflectance"] * count, classes=list(CLOUD_CLASSES),
        input_offset=[float(dn_offset)] * count, input_scale=[1.0 / dn_scale] * count,
        clip_min=[None] * count, clip_max=[None] * count,
        input_mean=[float(v) for v in stats["img"][0]], input_std=[float(v) for v in stats["img"][1]],
        nodata_values=[0.0], nodata_fill=0.0, output_type="logits", tile_size=size,
        tile_overlap=size // 4, size_divisor=32, pixel_size=30.0,
        name=f"ukis-csmask {info.get('model', {}).get('version', '')}".strip(),
        description="Cloud and cloud-shadow U-Net for Sentinel-2 (ukis-csmask, Apache-2.0).",
    )


def choose_csmask_model(band_names, product_level: str) -> tuple:
    """Picks the 6-band model when B02, B03, B04, B08, B11, B12 are there, else the 4-band one.

    Raises:
        DependencyError: ukis-csmask is not installed.
        BandError: the raster lacks B02, B03, B04 or B08.
    """
    models = csmask_models()
    if not models:
        raise DependencyError(
            "The CNN cloud mask needs the optional package ukis-csmask (Apache-2.0), which is not "
            "installed. Install it into QGIS's Python: python3 -m pip install --user ukis-csmask "
            "(no extras needed; LandFusion brings onnxruntime), or give an SCL layer instead.")
    level = product_level.lower()
    if level not in ("l1c", "l2a"):
        raise InputError(f"Product level '{product_level}' is unknown; use L1C or L2A.")
    available = {normalise_s2_band(n) for n in band_names if n}
    if set(CSMASK_BANDS.values()) <= available:
        key = f"6b_{level}"
    elif {"B02", "B03", "B04", "B08"} <= available:
        key = f"4b_{level}"
    else:
        missing = [b for b in ("B02", "B03", "B04", "B08") if b not in available]
        raise BandError(
            f"The CNN cloud mask needs Sentinel-2 bands B02, B03, B04 and B08 (better also B11 "
            f"and B12); the input lacks {', '.join(missing)}. Name the bands (band descriptions "
            "or input band names) or use a raster that has them.")
    return key, models[key]


def _resampled_vrt(input_path: str, factor: float, folder: str) -> str:
    """A VRT averaging the input to pixels ``factor`` times larger (same CRS); no pixel copied."""
    from osgeo import gdal

    info = gdal.Open(os.path.abspath(input_path))
    if info is None:
        raise InputError(f"'{input_path}' cannot be opened by GDAL.")
    _, res_x, _, _, _, res_y = info.GetGeoTransform()
    info = None
    vrt = os.path.join(folder, "input_resampled.vrt")
    result = gdal.Translate(vrt, os.path.abspath(input_path), format="VRT",
                            xRes=abs(res_x) * factor, yRes=abs(res_y) * factor,
                            resampleAlg="average")
    if result is None:
        raise InputError(f"'{input_path}' cannot be resampled to coarser pixels.")
    result = None
    return vrt


def _nearest_onto(source: str, reference, output_path: str, what: str) -> None:
    """Resamples the cloud mask onto the grid of ``reference`` (nearest), written atomically and
    styled like the masks written directly (colour table, category names, .qml)."""
    from osgeo import gdal

    bounds = reference.bounds
    with atomic_raster_output(output_path, what) as temp:
        result = gdal.Warp(
            temp, source, format="GTiff", width=reference.width, height=reference.height,
            outputBounds=(bounds.left, bounds.bottom, bounds.right, bounds.top),
            dstSRS=reference.crs.to_wkt(), resampleAlg="near",
            creationOptions=["TILED=YES", "COMPRESS=DEFLATE", "BIGTIFF=IF_SAFER"],
            warpMemoryLimit=64 * 1024 * 1024)
        if result is None:
            raise InputError(f"{what} could not be resampled onto the input grid.")
        result = None
        apply_class_styling(temp, CLOUD_CLASSES, MASK_NODATA, qml=False)
    write_paletted_qml(os.path.splitext(output_path)[0] + ".qml", CLOUD_CLASSES)


def cloud_mask_with_cnn(
    input_path: str,
    output_path: str,
    band_names=None,
    product_level: str = "L2A",
    dn_offset: Optional[float] = None,
    dn_scale: float = s2.DN_SCALE,
    model_resolution: bool = True,
    tile_size: Optional[int] = None,
    overlap: Optional[int] = None,
    batch_size: int = 2,
    threads: int = 0,
    progress: Progress = no_progress,
    is_cancelled: IsCancelled = never_cancelled,
    log: Log = no_log,
    warn: Log = no_log,
) -> dict:
    """Masks clouds and cloud shadows in a Sentinel-2 raster with a ukis-csmask U-Net.

    Args:
        input_path: Sentinel-2 raster (digital numbers) with B02, B03, B04, B08 (and B11, B12).
        band_names: the bands' names when the descriptions do not name them.
        product_level: ``L1C`` or ``L2A`` (picks the model trained on that level).
        dn_offset: added to the DNs before dividing by ``dn_scale``; None detects it from the
            metadata or product name (-1000 from processing baseline 04.00), else 0.
        model_resolution: run at the models' 30 m (averaging finer input through a VRT) and
            write the mask back on the input grid; False runs at the input resolution.

    Returns:
        ``{"valid_pixels", "class_fractions", "model", "dn_offset"}``.
    """
    with raster_io.gdal_env(), raster_io.open_raster(input_path, "Sentinel-2 raster") as src:
        names = input_band_names(src, band_names)
        key, (onnx_path, json_path) = choose_csmask_model(names, product_level)
        if dn_offset is None:
            detected, reason = s2.detect_offset(src, input_path)
            dn_offset = 0.0 if detected is None else detected
            log(f"DN offset {dn_offset:g} ({reason}).")
        metadata = csmask_metadata(json_path, dn_offset, dn_scale)
        pixel = raster_io.pixel_size_m(src)
        grid = {"width": src.width, "height": src.height, "crs": src.crs,
                "transform": src.transform, "bounds": src.bounds}
    log(f"Cloud mask model: ukis-csmask {key} ({', '.join(metadata.bands)}).")
    finer = pixel is not None and pixel < metadata.pixel_size / 1.5
    if not (model_resolution and finer):
        metadata.pixel_size = None if not model_resolution else metadata.pixel_size
        result = classify_with_cnn(
            input_path, onnx_path, output_path, band_names=names, tile_size=tile_size,
            overlap=overlap, batch_size=batch_size, threads=threads, metadata=metadata,
            progress=progress, is_cancelled=is_cancelled, log=log, warn=warn)
    else:
        log(f"Masking at {metadata.pixel_size:g} m (input {pixel:.3g} m); the mask is written on "
            "the input grid.")
        prefix = f"{TEMP_PREFIX}{os.getpid()}-cloudmask-"  # recognisable if killed
        with tempfile.TemporaryDirectory(prefix=prefix,
                                         dir=os.path.dirname(os.path.abspath(output_path))) as work:
            vrt = _resampled_vrt(input_path, metadata.pixel_size / pixel, work)
            coarse_mask = os.path.join(work, "mask_30m.tif")
            result = classify_with_cnn(
                vrt, onnx_path, coarse_mask, band_names=names, tile_size=tile_size,
                overlap=overlap, batch_size=batch_size, threads=threads, metadata=metadata,
                progress=sub_progress(progress, 0.0, 0.95), is_cancelled=is_cancelled, log=log,
                warn=warn)
            _nearest_onto(coarse_mask, SimpleNamespace(**grid), output_path, "Cloud mask")
        progress(1.0)
    return {"valid_pixels": result["valid_pixels"], "class_fractions": result["class_fractions"],
            "model": key, "dn_offset": dn_offset}
