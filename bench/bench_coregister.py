"""Co-registration stack on a full Sentinel-2 tile grid (10980 x 10980 at 10 m) against gdalwarp.

Generates once, under bench/data/coregister_<size>/, a structured synthetic scene laid out like
real products:
  - Sentinel-2 B02, B03, B04, B08: one 4-band uint16 raster on the 10 m UTM grid (DEFLATE);
  - Sentinel-2 B11 at 20 m and an SCL layer at 20 m (uint8), on the same UTM tile;
  - one Sentinel-1 date, VV and VH in dB (float32), in EPSG:4326 at about 10 m, as delivered by
    many catalogues: it has to be reprojected.
Then measures in the same run:
  - gdalwarp doing the same warps onto the same grid (S1 VV+VH bilinear, B11 bilinear, SCL
    nearest; float32, tiled, ZSTD, 2 warp threads), i.e. the resampling alone;
  - the same plus gdal_translate gathering warped and on-grid bands into one stack;
  - LandFusion doing the same warps (S1 in linear power, B11, SCL as cloud mask) into one
    3-band stack;
  - LandFusion's full stack: the same warps, 10 m bands read as is, cloud mask, VV/VH ratio,
    NDVI, one 9-band float32 GeoTIFF with names and sidecar.
Every run writes new files (its previous outputs are deleted before it, untimed). Set
LANDFUSION_BENCH_SIZE (pixels per side) for a smaller grid.
"""

import os
import shlex
import sys
import time
from pathlib import Path

import common

HERE = Path(__file__).resolve().parent
SIZE = int(os.environ.get("LANDFUSION_BENCH_SIZE", "10980"))
DATA = HERE / "data" / f"coregister_{SIZE}"
sys.path.insert(0, str(HERE.parent))
from plugin_import import make_importable  # noqa: E402

PLUGINS = make_importable()
ORIGIN = (300000.0, 5000040.0)
CRS = "EPSG:32631"
S2_10M = DATA / "S2_20190918_B02_B03_B04_B08.tif"
S2_B11 = DATA / "S2_20190918_B11.tif"
SCL = DATA / "S2_20190918_SCL.tif"
S1 = DATA / "S1_20190917_VV_VH.tif"


def _field(x, y):
    import numpy as np

    return np.sin(x / 97.0) * np.cos(y / 131.0) + 0.5 * np.sin((x + y) / 41.0)


def make_data():
    """Writes the inputs once (smooth structure + noise, real value ranges)."""
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.warp import transform_bounds

    if S1.exists():
        return
    DATA.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    common = dict(driver="GTiff", crs=CRS, tiled=True, blockxsize=512, blockysize=512,
                  compress="DEFLATE", ZLEVEL=1)
    strip = 512

    levels = {"B02": 600, "B03": 900, "B04": 1000, "B08": 2800}
    with rasterio.open(S2_10M, "w", width=SIZE, height=SIZE, count=4, dtype="uint16", nodata=0,
                       transform=from_origin(*ORIGIN, 10, 10), **common) as dst:
        for i, name in enumerate(levels, start=1):
            dst.set_band_description(i, name)
        for row in range(0, SIZE, strip):
            h = min(strip, SIZE - row)
            field = _field(np.arange(SIZE)[None, :], np.arange(row, row + h)[:, None])
            for i, (name, level) in enumerate(levels.items(), start=1):
                sign = -1 if name == "B04" else 1
                data = level + sign * 700 * field + rng.normal(0, 60, size=(h, SIZE))
                dst.write(np.clip(data, 1, 12000).astype("uint16"), i,
                          window=((row, row + h), (0, SIZE)))

    half = (SIZE + 1) // 2
    with rasterio.open(S2_B11, "w", width=half, height=half, count=1, dtype="uint16", nodata=0,
                       transform=from_origin(*ORIGIN, 20, 20), **common) as b11, \
            rasterio.open(SCL, "w", width=half, height=half, count=1, dtype="uint8",
                          transform=from_origin(*ORIGIN, 20, 20), **common) as scl:
        b11.set_band_description(1, "B11")
        for row in range(0, half, strip):
            h = min(strip, half - row)
            field = _field(2 * np.arange(half)[None, :], 2 * np.arange(row, row + h)[:, None])
            data = 1800 + 500 * field + rng.normal(0, 60, size=(h, half))
            b11.write(np.clip(data, 1, 12000).astype("uint16"), 1,
                      window=((row, row + h), (0, half)))
            classes = np.where(field > 1.2, 9, np.where(field < -1.3, 3, 4)).astype("uint8")
            scl.write(classes, 1, window=((row, row + h), (0, half)))

    left, bottom, right, top = transform_bounds(
        CRS, "EPSG:4326", ORIGIN[0], ORIGIN[1] - 10 * SIZE, ORIGIN[0] + 10 * SIZE, ORIGIN[1])
    dx, dy = 0.000125, 0.00009  # about 10 m at 45 degrees north
    width, height = int((right - left) / dx) + 2, int((top - bottom) / dy) + 2
    with rasterio.open(S1, "w", width=width, height=height, count=2, dtype="float32",
                       nodata=None, transform=from_origin(left, top, dx, dy),
                       **{**common, "crs": "EPSG:4326", "predictor": 3}) as dst:
        dst.set_band_description(1, "VV")
        dst.set_band_description(2, "VH")
        for row in range(0, height, strip):
            h = min(strip, height - row)
            field = _field(0.8 * np.arange(width)[None, :], 1.1 * np.arange(row, row + h)[:, None])
            speckle = rng.gamma(4.4, 1 / 4.4, size=(2, h, width))
            vv = 10 * np.log10(10 ** ((-11 + 3 * field) / 10) * speckle[0])
            vh = 10 * np.log10(10 ** ((-18 + 3 * field) / 10) * speckle[1])
            dst.write(np.stack([vv, vh]).astype("float32"), window=((row, row + h), (0, width)))


def gdalwarp(source, out, resampling):
    """A gdalwarp command onto the benchmark grid."""
    args = ["gdalwarp", "-q", "-overwrite", "-t_srs", CRS, "-te", str(ORIGIN[0]),
            str(ORIGIN[1] - 10 * SIZE), str(ORIGIN[0] + 10 * SIZE), str(ORIGIN[1]),
            "-ts", str(SIZE), str(SIZE), "-r", resampling, "-ot", "Float32", "-dstnodata", "-9999",
            "-multi", "-wo", "NUM_THREADS=ALL_CPUS", "-wm", "256",
            "-co", "TILED=YES", "-co", "COMPRESS=ZSTD", "-co", "PREDICTOR=3", "-co", "ZSTD_LEVEL=1",
            "-co", "NUM_THREADS=ALL_CPUS", "-co", "BIGTIFF=IF_SAFER"]
    return args + [str(source), str(out)]


OURS = """
import sys
sys.path.insert(0, {plugins!r})
from landfusion.core.stack.coregister import coregister_stack
coregister_stack({out!r}, s2={s2!r}, s2_mask={scl!r}, s1=[{s1!r}], s2_bands={bands!r},
                 indices={indices!r}, s1_ratio={ratio!r}, reference={reference!r})
"""


def main():
    """Generates the data once, runs both sides and prints a Markdown table."""
    started = time.perf_counter()
    make_data()
    generated = time.perf_counter() - started
    out = DATA / "out"
    out.mkdir(exist_ok=True)
    warps = [
        gdalwarp(S1, out / "s1.tif", "bilinear"),
        gdalwarp(S2_B11, out / "b11.tif", "bilinear"),
        gdalwarp(SCL, out / "scl.tif", "near"),
    ]
    vrt = out / "stack.vrt"
    gather = [
        ["gdalbuildvrt", "-q", "-overwrite", "-separate", str(vrt), str(out / "s1.tif"),
         str(S2_10M), str(out / "b11.tif")],
        ["gdal_translate", "-q", "-ot", "Float32", "-co", "TILED=YES", "-co", "COMPRESS=ZSTD",
         "-co", "PREDICTOR=3", "-co", "ZSTD_LEVEL=1", "-co", "NUM_THREADS=ALL_CPUS",
         "-co", "BIGTIFF=IF_SAFER", str(vrt),
         str(out / "gdal_stack.tif")],
    ]
    same_warps = [sys.executable, "-c", OURS.format(
        plugins=PLUGINS, out=str(out / "warps.tif"), s2=[str(S2_B11)], scl=str(SCL), s1=str(S1),
        bands=["B11"], indices=[], ratio=False, reference=str(S2_10M))]
    full = [sys.executable, "-c", OURS.format(
        plugins=PLUGINS, out=str(out / "stack.tif"), s2=[str(S2_10M), str(S2_B11)], scl=str(SCL),
        s1=str(S1), bands=["B02", "B03", "B04", "B08", "B11"], indices=["NDVI"], ratio=True,
        reference=None)]
    # Warm the page cache with one read of every input.
    for path in (S2_10M, S2_B11, SCL, S1):
        with open(path, "rb") as handle:
            while handle.read(1 << 24):
                pass

    def shell(commands):
        return ["/bin/sh", "-c", " && ".join(shlex.join(c) for c in commands)]

    gdal_files = [out / name for name in ("s1.tif", "b11.tif", "scl.tif")]

    label_warps = ("gdalwarp -multi -wo NUM_THREADS=ALL_CPUS: S1 VV+VH (EPSG:4326 -> UTM, "
                   "bilinear), B11 20 m (bilinear), SCL 20 m (nearest), 3 files")
    methods = [
        common.Method(label_warps, shell(warps), before=common.removing(*gdal_files)),
        common.Method("LandFusion, the same warps: S1 VV+VH (in linear power), B11, SCL as mask; "
                      "one 3-band stack", same_warps, before=common.removing(out / "warps.tif*")),
        common.Method("gdal stack: the gdalwarp runs + gdalbuildvrt/gdal_translate into one "
                      "7-band stack (no mask, no features)", shell(warps + gather),
                      before=common.removing(*gdal_files, out / "stack.vrt",
                                             out / "gdal_stack.tif")),
        common.Method("LandFusion full stack: the same warps + 10 m bands + cloud mask + VV/VH + "
                      "NDVI, one named 9-band stack", full, before=common.removing(out / "stack.tif*")),
    ]
    common.compare(methods, label_warps, as_time_ratio=True,
                   title=f"Co-registration: {SIZE} x {SIZE} grid at 10 m ({CRS}); data generated "
                         f"in {generated:.0f} s (0 when cached).")
    import rasterio

    for path in (out / "warps.tif", out / "stack.tif", out / "s1.tif"):
        with rasterio.open(path) as ds:
            if (ds.width, ds.height, ds.transform.a) != (SIZE, SIZE, 10.0):
                raise SystemExit(f"{path} is not on the {SIZE} x {SIZE} 10 m grid")


if __name__ == "__main__":
    main()
