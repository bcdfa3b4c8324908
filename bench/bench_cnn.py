"""Tiled CNN inference on a 4000 x 4000 stack: LandFusion's engine vs raw onnxruntime.

Ours: ``classify_with_cnn`` from a compressed GeoTIFF to a styled class raster (reading,
normalising, mirroring, blending, writing; memory bounded by one strip of tiles).
Baseline: the same model on the same tiles, cut beforehand into memory (no IO, no blending),
batched the same way, with the same onnxruntime threads.

Each method runs in its own process, in interleaved rounds (common.compare): median time and
range, median and range of the per-round time ratios, cores used, peak memory (the baseline's
includes the whole normalised raster and its tiles, which it holds in memory). Only the timed
section of each child counts (the baseline's cutting of tiles is not timed).

Within each of our runs the seconds spent inside onnxruntime (the engine's batch runner) are
added up: our wall time over that time is the engine's own overhead, independent of how the
baseline fares. Target: overhead <= 15 %.

Usage: python bench/bench_cnn.py   (BENCH_CNN_SIZE=4000, BENCH_REPEATS=3)
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

import common

SIZE = int(os.environ.get("BENCH_CNN_SIZE", "4000"))
BATCH = 4
THREADS = common.CORES
STACK = common.DATA / f"cnn_stack_{SIZE}.tif"
OUT = common.DATA / "cnn_classes.tif"
RAW = f"raw onnxruntime on pre-cut in-memory batches ({THREADS} threads)"
OURS = "LandFusion classify_with_cnn (read, normalise, blend, write)"


def make_stack(path: Path) -> None:
    """A smooth synthetic VV/VH (dB) stack, written strip by strip (generated once)."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    rng = np.random.default_rng(42)
    profile = {"driver": "GTiff", "dtype": "float32", "count": 2, "width": SIZE, "height": SIZE,
               "crs": "EPSG:32633", "transform": from_origin(400000, 5000000, 10, 10),
               "tiled": True, "blockxsize": 256, "blockysize": 256, "compress": "ZSTD",
               "predictor": 3, "nodata": float("nan")}
    coarse = rng.normal(size=(2, SIZE // 32 + 2, SIZE // 32 + 2)).astype("float32")
    partial = path.with_suffix(".partial.tif")
    with rasterio.open(partial, "w", **profile) as dst:
        dst.set_band_description(1, "VV")
        dst.set_band_description(2, "VH")
        for row in range(0, SIZE, 512):
            h = min(512, SIZE - row)
            field = coarse[:, np.arange(row, row + h) // 32][:, :, np.arange(SIZE) // 32]
            noise = rng.normal(scale=1.5, size=(2, h, SIZE)).astype("float32")
            vv = -12 + 5 * field[0] + noise[0]
            vh = -19 + 5 * field[1] + noise[1]
            dst.write(np.stack([vv, vh]), window=Window(0, row, SIZE, h))
    os.replace(partial, path)


def precut_tiles(model):
    """The engine's tile grid and batches, cut from the whole normalised raster in memory."""
    import rasterio

    from landfusion.core.cnn.batches import Normaliser
    from landfusion.core.cnn.tiling import tile_origins

    tile, overlap = model.metadata.tile_size, model.metadata.default_overlap()
    with rasterio.open(STACK) as src:
        x, _ = Normaliser(model.metadata, src.nodatavals)(src.read())
    rows, pad = tile_origins(SIZE, tile, overlap)
    cols, _ = tile_origins(SIZE, tile, overlap)
    extent = rows[-1] + pad + tile
    x = np.pad(x, ((0, 0), (pad, extent - SIZE - pad), (pad, extent - SIZE - pad)), mode="reflect")
    batches = []
    for r in rows:  # batched strip by strip, exactly as the engine batches them
        strip = [x[:, r + pad:r + pad + tile, c + pad:c + pad + tile] for c in cols]
        batches += [np.ascontiguousarray(np.stack(strip[i:i + BATCH]))
                    for i in range(0, len(strip), BATCH)]
    return batches


def run_raw(model_path: str) -> dict:
    """The baseline, in this process: tiles cut first (not timed), then only onnxruntime."""
    from landfusion.core.cnn.inference import load_model

    model = load_model(model_path, threads=THREADS)
    batches = precut_tiles(model)
    with common.Timer() as timer:
        for batch in batches:
            model.session.run([model.output_name], {model.input_name: batch})
    return {"seconds": timer.seconds, "cpu_seconds": timer.cpu_seconds,
            "tiles": sum(len(b) for b in batches)}


def run_ours(model_path: str) -> dict:
    """Our engine, in this process, with the seconds inside onnxruntime added up."""
    from landfusion.core.cnn.batches import BatchRunner
    from landfusion.core.cnn.inference import classify_with_cnn

    inside = {"seconds": 0.0}
    original = BatchRunner.__call__

    def timed(self, tiles):
        started = time.perf_counter()
        try:
            return original(self, tiles)
        finally:
            inside["seconds"] += time.perf_counter() - started

    BatchRunner.__call__ = timed
    if OUT.exists():
        OUT.unlink()
    with common.Timer() as timer:
        result = classify_with_cnn(str(STACK), model_path, str(OUT), batch_size=BATCH,
                                   threads=THREADS)
    return {"seconds": timer.seconds, "cpu_seconds": timer.cpu_seconds,
            "inside_seconds": inside["seconds"], "class_fractions": result["class_fractions"]}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", choices=("raw", "ours"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    common.import_landfusion()
    from landfusion.core.cnn.inference import bundled_models, load_model

    model_path = bundled_models().get("s1_water_unet")
    if model_path is None:
        print("bench_cnn: resources/models/s1_water_unet.onnx is missing", file=sys.stderr)
        return 1
    if args.run:
        common.report(**(run_raw if args.run == "raw" else run_ours)(model_path))
        return 0
    common.DATA.mkdir(parents=True, exist_ok=True)
    if not STACK.exists():
        make_stack(STACK)
    meta = load_model(model_path).metadata
    argv = [common.python(), __file__, "--run"]
    methods = [common.Method(RAW, argv + ["raw"]), common.Method(OURS, argv + ["ours"])]
    warm = common.measure(methods[1].argv)  # page cache, model file; not counted
    tiles = common.measure(methods[0].argv)["tiles"]
    summaries = common.summary_by_label(common.compare(
        methods, RAW, pixels=SIZE * SIZE, as_time_ratio=True,
        title=f"CNN inference: {SIZE} x {SIZE} (2 bands float32, ZSTD GeoTIFF), model "
              f"s1_water_unet, tiles {meta.tile_size} px, overlap {meta.default_overlap()} px "
              f"({tiles} tiles), batch {BATCH}, {THREADS} onnxruntime threads; after a warm-up "
              "run of each."))
    ours = summaries[OURS]
    inside = [r["seconds"] / r["inside_seconds"] for r in ours["runs"]]
    cpu = [o["cpu_seconds"] / r["cpu_seconds"]
           for o, r in zip(ours["runs"], summaries[RAW]["runs"])]
    print(f"Our wall time over the time inside onnxruntime, same run: median "
          f"{100 * (statistics.median(inside) - 1):+.1f} % (range {100 * (min(inside) - 1):+.1f} "
          f"to {100 * (max(inside) - 1):+.1f} %; target <= 15 %). Our CPU time over the "
          f"baseline's, per round: median {100 * (statistics.median(cpu) - 1):+.1f} % (range "
          f"{100 * (min(cpu) - 1):+.1f} to {100 * (max(cpu) - 1):+.1f} %). Class fractions: "
          + ", ".join(f"{k} {100 * v:.1f} %" for k, v in warm["class_fractions"].items()) + ".")
    return 0


if __name__ == "__main__":
    sys.exit(main())
