"""Spectral indices on a full Sentinel-2 tile (10980 x 10980) against the I/O floor and gdal_calc.

Generates once a 4-band uint16 tile (B02, B03, B04, B08; tiled, DEFLATE like a converted L2A
product) with realistic spatial structure, then measures in the same run:
  - I/O floor: reading the bands the indices need, block by block, once, on one thread; and the
    same reads on every core, as LandFusion reads (a second ratio column is printed against it);
  - gdal_calc.py computing NDVI;
  - LandFusion NDVI alone, and the four default indices (NDVI, SAVI, BAI, NDWI).
Every run is its own process, in interleaved rounds with the same GDAL cache (common.compare):
median time and range, time / read floor, cores used, peak memory. Each run writes a new file:
the previous run's output is deleted before it, untimed.
"""

import os
import sys
from pathlib import Path

import common

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
SIZE = int(os.environ.get("LANDFUSION_BENCH_SIZE", "10980"))
TILE = DATA / f"s2_tile_{SIZE}.tif"
sys.path.insert(0, str(HERE.parent))
from plugin_import import make_importable  # noqa: E402

PLUGINS = make_importable()


def make_tile():
    """Writes the synthetic-but-structured tile once (smooth fields + noise, real value ranges)."""
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    if TILE.exists():
        return
    DATA.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    profile = dict(driver="GTiff", width=SIZE, height=SIZE, count=4, dtype="uint16",
                   crs="EPSG:32631", transform=from_origin(300000, 5000040, 10, 10), tiled=True,
                   blockxsize=512, blockysize=512, compress="DEFLATE", nodata=0)
    base = {"B02": 600, "B03": 900, "B04": 1000, "B08": 2800}
    with rasterio.open(TILE, "w", **profile) as dst:
        for i, name in enumerate(base, start=1):
            dst.set_band_description(i, name)
        for row in range(0, SIZE, 512):
            h = min(512, SIZE - row)
            y = np.arange(row, row + h)[:, None]
            x = np.arange(SIZE)[None, :]
            field = np.sin(x / 97.0) * np.cos(y / 131.0) + 0.5 * np.sin((x + y) / 41.0)
            for i, (name, level) in enumerate(base.items(), start=1):
                noise = rng.normal(0, 60, size=(h, SIZE))
                sign = -1 if name == "B04" else 1
                data = level + sign * 700 * field + noise
                dst.write(np.clip(data, 1, 12000).astype("uint16"), i,
                          window=((row, row + h), (0, SIZE)))


READ_FLOOR = """
import sys
sys.path.insert(0, {plugins!r})
from landfusion.core.io import raster as raster_io
with raster_io.gdal_env(), raster_io.open_raster({tile!r}) as src:
    blocks = raster_io.plan_blocks(src.width, src.height, 4 * 3 * 3 + 4 * 2 * 4 + 8, 128)
    for b in blocks:
        src.read([2, 3, 4], window=b.window)
"""

READ_FLOOR_ALL_CORES = """
import sys
sys.path.insert(0, {plugins!r})
from landfusion.core.io import raster as raster_io
from landfusion.core.runtime import thread_count
with raster_io.gdal_env(), raster_io.open_raster({tile!r}) as src, \\
        raster_io.DatasetPerThread({tile!r}) as inputs:
    workers = thread_count()
    blocks = raster_io.plan_blocks(src.width, src.height, 2 * 3 + 4 * 4,
                                   raster_io.DEFAULT_MEMORY_MB / (workers + 2),
                                   align=raster_io.input_alignment(src))
    raster_io.run_blocks(blocks, lambda b: inputs.read([2, 3, 4], b.window), lambda b, d: None,
                         workers=workers)
"""

READ_WRITE_FLOOR = """
import sys
import numpy as np
import rasterio
sys.path.insert(0, {plugins!r})
from landfusion.core.io import raster as raster_io
with raster_io.gdal_env(), raster_io.open_raster({tile!r}) as src:
    profile = raster_io.float_profile(src, 4, compress="NONE")
    with rasterio.open({out!r}, "w", **profile) as dst:
        blocks = raster_io.plan_blocks(src.width, src.height, 4 * 3 * 3 + 4 * 2 * 4 + 8, 256 / 3,
                                       align=raster_io.input_alignment(src))
        def read(block):
            return src.read([2, 3, 4], window=block.window)
        def work(block, data):
            return np.repeat(data[:1].astype(np.float32), 4, axis=0)
        def write(block, out):
            dst.write(out, window=block.window)
        raster_io.run_blocks(blocks, read, work, write=write)
"""

OURS = """
import sys
sys.path.insert(0, {plugins!r})
from landfusion.core.indices.compute import compute_spectral_indices
compute_spectral_indices({tile!r}, {out!r}, indices={indices!r}, compress={compress!r})
"""


def main():
    make_tile()
    plugins = PLUGINS
    py = sys.executable
    out = str(DATA / "out.tif")

    def ours(indices, compress):
        return [py, "-c", OURS.format(plugins=plugins, tile=str(TILE), out=out, indices=indices,
                                      compress=compress)]

    floor = "read floor (B03, B04, B08 once, block-wise)"
    floor_all = "read floor on every core (the same reads, LandFusion's blocks and workers)"
    runs = {
        floor: [py, "-c", READ_FLOOR.format(plugins=plugins, tile=str(TILE))],
        floor_all: [py, "-c", READ_FLOOR_ALL_CORES.format(plugins=plugins, tile=str(TILE))],
        "read + write floor (4 float32 bands, no index, uncompressed)": [
            py, "-c", READ_WRITE_FLOOR.format(plugins=plugins, tile=str(TILE), out=out)],
        # Configured like LandFusion: float32 arithmetic and output, ZSTD level 1 with all cores.
        "gdal_calc.py NDVI (float32, ZSTD level 1, NUM_THREADS=ALL_CPUS)": [
            "/usr/bin/python3", "/usr/bin/gdal_calc.py", "--quiet", "--overwrite",
            "-A", str(TILE), "--A_band=3", "-B", str(TILE), "--B_band=4",
            "--calc=(B.astype(numpy.float32)-A)/(B.astype(numpy.float32)+A)", "--type=Float32",
            "--co=TILED=YES", "--co=COMPRESS=ZSTD", "--co=PREDICTOR=3", "--co=ZSTD_LEVEL=1",
            "--co=NUM_THREADS=ALL_CPUS", f"--outfile={out}"],
        "LandFusion NDVI (ZSTD level 1)": ours(["NDVI"], "ZSTD"),
        "LandFusion NDVI, SAVI, BAI, NDWI (uncompressed)": ours(
            ["NDVI", "SAVI", "BAI", "NDWI"], "NONE"),
        "LandFusion NDVI, SAVI, BAI, NDWI (ZSTD level 1)": ours(
            ["NDVI", "SAVI", "BAI", "NDWI"], "ZSTD"),
    }
    # Warm the page cache so every run reads from memory.
    common.measure(runs[floor])

    summaries = common.compare(
        [common.Method(k, v, before=common.removing(out)) for k, v in runs.items()], floor,
        title=f"Spectral indices: {SIZE} x {SIZE}, 4 bands uint16 DEFLATE (512 tiles).",
        pixels=SIZE * SIZE, as_time_ratio=True)
    common.print_ratios(summaries, floor_all)
    if os.path.exists(out):
        os.remove(out)


if __name__ == "__main__":
    main()
