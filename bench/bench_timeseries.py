"""Temporal composite: 24 and 48 dates x 4 bands against numpy's nanmedian in memory.

Generates once, under bench/data/timeseries/, one 4-band uint16 raster per date (B02, B03, B04,
B08; tiled, DEFLATE; 0 = nodata where a cloud blob covers the date, about a quarter of each
scene), then measures in interleaved rounds, each run in its own process with the same GDAL
cache (common.compare: load average before/after, median time and range, median and range of
the per-round ratios, cores used, peak memory):
  - numpy baseline: for each band, the 24 dates' arrays loaded whole into memory (float32, NaN
    where nodata) and ``numpy.nanmedian`` over them (the time of ``nanmedian`` alone is printed
    too);
  - LandFusion ``temporal_composite`` (median, whole range) of the 24 dates, from the files to
    a written composite, block by block with its default memory budget;
  - the same with 48 dates: memory must stay bounded as dates grow.
Checks that both give the same median (exit status 1 if not).

The scenes are 2000 x 2000 by default (``LANDFUSION_BENCH_TS_SIZE`` sets another size): the
numpy baseline holds 24 dates of a band in memory and takes minutes per run at 4000 x 4000, and
three rounds of all three runs should stay within about a quarter of an hour on two cores.
"""

import argparse
import datetime as dt
import os
import shutil
import statistics
import sys
import warnings

import numpy as np

import common

DATA = common.DATA / "timeseries"
SIZE = int(os.environ.get("LANDFUSION_BENCH_TS_SIZE", "2000"))
BANDS = ("B02", "B03", "B04", "B08")
#: Every 97th row and 89th column: the pixels on which both medians are compared.
SAMPLE = (slice(None), slice(None, None, 97), slice(None, None, 89))


def scene_paths(count):
    """Paths of the first ``count`` dated scenes (two per month from 2019-01-05)."""
    start = dt.date(2019, 1, 5)
    dates = [start + dt.timedelta(days=15 * k) for k in range(count)]
    return [DATA / f"S2_{SIZE}_{d:%Y%m%d}.tif" for d in dates]


def make_scenes(count):
    """Writes the dated scenes that are missing (smooth fields, seasonal change, noise, clouds)."""
    import rasterio
    from rasterio.transform import from_origin

    DATA.mkdir(parents=True, exist_ok=True)
    profile = dict(driver="GTiff", width=SIZE, height=SIZE, count=4, dtype="uint16",
                   crs="EPSG:32633", transform=from_origin(500000, 5100000, 10, 10), tiled=True,
                   blockxsize=256, blockysize=256, compress="DEFLATE", zlevel=1, nodata=0)
    levels = np.array([600, 900, 1000, 2800], dtype=np.float32)[:, None, None]
    signs = np.array([1, 1, -1, 1], dtype=np.float32)[:, None, None]
    rng = np.random.default_rng(0)
    pool = rng.normal(0, 60, size=(4, 512, SIZE + 512)).astype(np.float32)
    for k, path in enumerate(scene_paths(count)):
        if path.exists():
            continue
        season = np.float32(np.sin(2 * np.pi * k / 24))
        temp = path.with_suffix(".part.tif")
        with rasterio.open(temp, "w", **profile) as dst:
            for i, name in enumerate(BANDS, start=1):
                dst.set_band_description(i, name)
            for row in range(0, SIZE, 512):
                h = min(512, SIZE - row)
                y = np.arange(row, row + h, dtype=np.float32)[:, None]
                x = np.arange(SIZE, dtype=np.float32)[None, :]
                field = np.sin(x / 97.0) * np.cos(y / 131.0) + 0.5 * np.sin((x + y) / 41.0)
                shift = (37 * k) % 512
                noise = pool[:, :h, shift:shift + SIZE]
                data = levels + signs * (700 + 300 * season) * field + noise
                cloud = np.sin(x / 300.0 + k) * np.cos(y / 250.0 - 2 * k) > 0.45
                data = np.clip(data, 1, 12000).astype("uint16")
                data[:, cloud] = 0
                dst.write(data, window=((row, row + h), (0, SIZE)))
        os.replace(temp, path)


def numpy_median(dates: int) -> dict:
    """The baseline: per band, all dates loaded whole, NaN where nodata, nanmedian over dates."""
    import rasterio

    paths = scene_paths(dates)
    compute, medians = 0.0, []
    with common.Timer() as timer:
        for band in range(1, len(BANDS) + 1):
            stack = np.empty((len(paths), SIZE, SIZE), dtype=np.float32)
            for k, path in enumerate(paths):
                with rasterio.open(path) as ds:
                    stack[k] = ds.read(band)
            stack[stack == 0] = np.nan
            with common.Timer() as median_timer, warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                median = np.nanmedian(stack, axis=0)
            compute += median_timer.seconds
            medians.append(median[SAMPLE[1:]].copy())
            del stack
    np.save(DATA / f"numpy_sample_{SIZE}.npy", np.stack(medians))
    return {"seconds": timer.seconds, "cpu_seconds": timer.cpu_seconds, "nanmedian": compute}


def ours(dates: int) -> dict:
    """LandFusion: the median composite of the whole range, from the files to a written raster."""
    common.import_landfusion()
    from landfusion.core.timeseries.composite import temporal_composite

    folder = output_folder(dates)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    with common.Timer() as timer:
        temporal_composite([str(p) for p in scene_paths(dates)], str(folder / "composite.tif"),
                           period="whole", method="median")
    return {"seconds": timer.seconds, "cpu_seconds": timer.cpu_seconds}


def output_folder(dates: int):
    return DATA / f"composite_{SIZE}_{dates}"


def same_median() -> bool:
    """True when LandFusion's 24-date composite equals numpy's nanmedian on the sampled pixels."""
    import rasterio

    with rasterio.open(output_folder(24) / "composite.tif") as ds:
        composite = ds.read(list(range(1, len(BANDS) + 1)))[SAMPLE]
        composite = np.where(composite == ds.nodata, np.nan, composite)
    return bool(np.allclose(composite, np.load(DATA / f"numpy_sample_{SIZE}.npy"),
                            equal_nan=True, atol=1e-3))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", choices=("numpy", "ours"), help=argparse.SUPPRESS)
    parser.add_argument("--dates", type=int, default=24, help=argparse.SUPPRESS)
    args = parser.parse_args()
    make_scenes(48)
    if args.run:
        common.report(**{"numpy": numpy_median, "ours": ours}[args.run](args.dates))
        return 0
    baseline = "numpy load + nanmedian, 24 dates in memory"
    ours_label = "LandFusion temporal_composite, {} dates (read, composite, write)"
    methods = [common.Method(name, [common.python(), __file__, "--run", run, "--dates", str(n)])
               for name, run, n in ((baseline, "numpy", 24), (ours_label.format(24), "ours", 24),
                                    (ours_label.format(48), "ours", 48))]
    summaries = common.compare(
        methods, baseline, pixels=SIZE * SIZE,
        title=f"Temporal composite (median of the whole range): {SIZE} x {SIZE} px, 4 bands "
              "uint16 DEFLATE, about a quarter cloudy per date.")
    same = same_median()
    for dates in (24, 48):
        shutil.rmtree(output_folder(dates), ignore_errors=True)
    nanmedian = statistics.median(r["nanmedian"] for r in methods[0].runs)
    peaks = common.summary_by_label(summaries)
    print(f"numpy nanmedian alone (without loading): {nanmedian:.1f} s median. Same median as "
          f"numpy: {'yes' if same else 'NO'}. Peak memory, 48 vs 24 dates: "
          f"{peaks[methods[2].label]['peak_mb'] / peaks[methods[1].label]['peak_mb']:.2f} x; "
          f"one band of 48 dates in memory is {4 * 48 * SIZE * SIZE / 2**20:.0f} MiB of float32.")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
