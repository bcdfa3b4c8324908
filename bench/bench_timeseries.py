"""Temporal composite: 24 and 48 dates x 4 bands over 4000 x 4000 pixels against numpy in memory.

Generates once, under bench/data/timeseries/, one 4-band uint16 raster per date (B02, B03, B04,
B08; tiled, DEFLATE; 0 = nodata where a cloud blob covers the date, about a quarter of each
scene), then measures in the same run, each in its own process (peak memory = max RSS):
  - numpy baseline: for each band, the 24 dates' arrays loaded whole into memory (float32, NaN
    where nodata) and ``numpy.nanmedian`` over them — the time of ``nanmedian`` alone and of
    load + nanmedian;
  - LandFusion ``temporal_composite`` (median, whole range) of the 24 dates, from the files to
    a written composite, block by block with its default memory budget;
  - the same with 48 dates: memory must stay bounded as dates grow.
Checks that both give the same median, and prints a Markdown table.
``LANDFUSION_BENCH_TS_SIZE`` sets a smaller size for a quick try.
"""

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data" / "timeseries"
SIZE = int(os.environ.get("LANDFUSION_BENCH_TS_SIZE", "4000"))
BANDS = ("B02", "B03", "B04", "B08")
PLUGINS = str(HERE.parent / ".qgis" / "plugins")
sys.path.insert(0, PLUGINS)


def scene_paths(count):
    """Paths of the first ``count`` dated scenes (two per month from 2019-01-05)."""
    start = dt.date(2019, 1, 5)
    dates = [start + dt.timedelta(days=15 * k) for k in range(count)]
    return [DATA / f"S2_{SIZE}_{d:%Y%m%d}.tif" for d in dates]


def make_scenes(count):
    """Writes the dated scenes that are missing (smooth fields, seasonal change, noise, clouds)."""
    import numpy as np
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


def timed(code):
    """Runs Python code in a child process; returns (seconds, peak RSS MiB, last stdout line)."""
    start = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-f", "%M", sys.executable, "-c", code],
                          capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    peak_kb = int(proc.stderr.strip().splitlines()[-1])
    lines = proc.stdout.strip().splitlines()
    return elapsed, peak_kb / 1024, lines[-1] if lines else ""


NUMPY = """
import time, warnings
import numpy as np, rasterio
paths = {paths!r}
compute = 0.0
medians = []
for band in range(1, 5):
    stack = np.empty((len(paths), {size}, {size}), dtype=np.float32)
    for k, path in enumerate(paths):
        with rasterio.open(path) as ds:
            stack[k] = ds.read(band)
    stack[stack == 0] = np.nan
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        median = np.nanmedian(stack, axis=0)
    compute += time.perf_counter() - start
    medians.append(median[::97, ::89].copy())
    del stack
np.save({sample!r}, np.stack(medians))
print(compute)
"""

OURS = """
from landfusion.core.timeseries.composite import temporal_composite
import sys
sys.path.insert(0, {plugins!r})
temporal_composite({paths!r}, {out!r}, period="whole", method="median")
"""


def main():
    import numpy as np
    import rasterio

    make_scenes(48)
    paths24 = [str(p) for p in scene_paths(24)]
    paths48 = [str(p) for p in scene_paths(48)]
    out = str(DATA / f"composite_{SIZE}.tif")
    sample = str(DATA / f"numpy_sample_{SIZE}.npy")
    header = f"import sys\nsys.path.insert(0, {PLUGINS!r})\n"
    rows = []
    numpy_total, numpy_peak, numpy_compute = timed(
        NUMPY.format(paths=paths24, size=SIZE, sample=sample))
    numpy_compute = float(numpy_compute)
    ours24, peak24, _ = timed(header + OURS.format(plugins=PLUGINS, paths=paths24, out=out))
    with rasterio.open(out) as ds:
        ours = ds.read([1, 2, 3, 4])[:, ::97, ::89]
        ours = np.where(ours == ds.nodata, np.nan, ours)
    same = np.allclose(ours, np.load(sample), equal_nan=True, atol=1e-3)
    os.remove(out)
    ours48, peak48, _ = timed(header + OURS.format(plugins=PLUGINS, paths=paths48, out=out))
    os.remove(out)
    rows = [
        ("numpy nanmedian, 24 dates in memory (compute only)", numpy_compute, numpy_peak),
        ("numpy load + nanmedian, 24 dates in memory", numpy_total, numpy_peak),
        ("LandFusion temporal_composite, 24 dates (read, composite, write)", ours24, peak24),
        ("LandFusion temporal_composite, 48 dates (read, composite, write)", ours48, peak48),
    ]
    print(f"Scenes: {SIZE} x {SIZE} px, 4 bands uint16 DEFLATE, about a quarter cloudy per date; "
          f"median of the whole range; {os.cpu_count()} CPU cores. Same median as numpy: "
          f"{'yes' if same else 'NO'}.\n")
    print("| run | seconds | x numpy nanmedian (compute) | x numpy load + nanmedian | peak MiB |")
    print("|---|---:|---:|---:|---:|")
    for name, seconds, peak in rows:
        print(f"| {name} | {seconds:.1f} | {seconds / numpy_compute:.2f} | "
              f"{seconds / numpy_total:.2f} | {peak:.0f} |")
    print(f"\nPeak memory, 48 vs 24 dates: {peak48 / peak24:.2f} x. In memory, one band of 48 "
          f"dates is {4 * 48 * SIZE * SIZE / 2**20:.0f} MiB of float32 before any copy.")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
