"""Accuracy assessment on a full Sentinel-2 tile class map (10980 x 10980) against baselines.

Generates once a uint8 class map (7 classes with patchy structure, nodata border; tiled,
DEFLATE), then measures in the same run:
  - mapped class areas: QGIS's native:rasterlayeruniquevaluesreport (through qgis_process),
    a whole-array numpy count (np.bincount after reading the whole band), and LandFusion's
    block-wise count;
  - stratified random sample of 1,000 points: a whole-array numpy draw (np.flatnonzero per class)
    and LandFusion's block-wise draw written to a GeoPackage;
  - the full accuracy report (pixel counts, 1,000 reference points, HTML/JSON/CSV).
Prints a Markdown table with times and peak memory (max RSS of each run's process).
"""

import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
SIZE = int(os.environ.get("LANDFUSION_BENCH_SIZE", "10980"))
MAP = DATA / f"class_map_{SIZE}.tif"
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
from plugin_import import make_importable  # noqa: E402

PLUGINS = make_importable()


def make_map():
    """Writes the class map once: smooth fields cut into classes, 0 = nodata on the border."""
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    if MAP.exists():
        return
    DATA.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    profile = dict(driver="GTiff", width=SIZE, height=SIZE, count=1, dtype="uint8",
                   crs="EPSG:32631", transform=from_origin(300000, 5000040, 10, 10), tiled=True,
                   blockxsize=512, blockysize=512, compress="DEFLATE", nodata=0)
    edges = np.array([-1.1, -0.6, 0.0, 0.5, 0.9, 1.2])
    partial = MAP.with_suffix(".partial.tif")
    with rasterio.open(partial, "w", **profile) as dst:
        for row in range(0, SIZE, 512):
            h = min(512, SIZE - row)
            y = np.arange(row, row + h)[:, None]
            x = np.arange(SIZE)[None, :]
            field = (np.sin(x / 97.0) * np.cos(y / 131.0) + 0.5 * np.sin((x + y) / 41.0)
                     + rng.normal(0, 0.05, size=(h, SIZE)))
            classes = (np.searchsorted(edges, field) + 1).astype("uint8")
            classes[:, :200] = 0
            dst.write(classes, 1, window=((row, row + h), (0, SIZE)))
    partial.rename(MAP)


def timed(args, env=None):
    """Runs a command and returns (seconds, peak RSS in MiB) of the child process."""
    start = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-f", "%M", *args], capture_output=True, text=True,
                          env=env)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(proc.stdout[-2000:] + proc.stderr[-2000:])
    peak_kb = int(proc.stderr.strip().splitlines()[-1])
    return elapsed, peak_kb / 1024


NUMPY_COUNT = """
import numpy as np, rasterio
with rasterio.open({map!r}) as src:
    data = src.read(1)
counts = np.bincount(data.ravel(), minlength=256)
print(counts[1:8].sum())
"""

OURS_COUNT = """
import sys
sys.path.insert(0, {plugins!r})
from landfusion.core.accuracy.areas import count_classes
print(count_classes({map!r}).total_pixels)
"""

NUMPY_SAMPLE = """
import numpy as np, rasterio
with rasterio.open({map!r}) as src:
    data = src.read(1).ravel()
rng = np.random.default_rng(1)
picked = []
for value in range(1, 8):
    where = np.flatnonzero(data == value)
    picked.append(rng.choice(where, size=min(143, where.size), replace=False))
print(sum(p.size for p in picked))
"""

OURS_SAMPLE = """
import sys
sys.path.insert(0, {plugins!r})
from landfusion.core.accuracy.sampling import draw_stratified_sample
draw_stratified_sample({map!r}, {out!r}, 1000, "olofsson", 50, seed=1)
"""

OURS_REPORT = """
import sys
sys.path.insert(0, {plugins!r})
from landfusion.core.accuracy.assess import assess_accuracy
r = assess_accuracy({map!r}, {points!r}, "reference", output_html={html!r},
                    output_json={js!r}, output_csv={csv!r})
print(r["area_adjusted"]["overall_accuracy"])
"""


def label(points):
    """Fills the reference field: the map class, with every sixth sample wrong."""
    from osgeo import ogr

    ds = ogr.Open(points, 1)
    layer = ds.GetLayer(0)
    ds.StartTransaction()
    for f in layer:
        m = f.GetField("map_class")
        f.SetField("reference", m if f.GetField("sample_id") % 6 else (m % 7) + 1)
        layer.SetFeature(f)
    ds.CommitTransaction()
    ds = None


def main():
    make_map()
    py = sys.executable
    points = str(DATA / "points.gpkg")
    fmt = dict(plugins=PLUGINS, map=str(MAP), out=points, points=points,
               html=str(DATA / "r.html"), js=str(DATA / "r.json"), csv=str(DATA / "r.csv"))
    runs = {
        "class areas: QGIS native:rasterlayeruniquevaluesreport (qgis_process)": [
            str(ROOT / "scripts" / "qgis_process.sh"), "run", "native:rasterlayeruniquevaluesreport",
            "--", f"INPUT={MAP}", "BAND=1", f"OUTPUT_HTML_FILE={DATA / 'unique.html'}"],
        "class areas: numpy, whole band in memory": [py, "-c", NUMPY_COUNT.format(**fmt)],
        "class areas: LandFusion block-wise count": [py, "-c", OURS_COUNT.format(**fmt)],
        "1,000-point sample: numpy, whole band in memory": [py, "-c", NUMPY_SAMPLE.format(**fmt)],
        "1,000-point sample: LandFusion stratifiedsample (GeoPackage)": [
            py, "-c", OURS_SAMPLE.format(**fmt)],
        "accuracy report: counts + 1,000 points + HTML/JSON/CSV": [
            py, "-c", OURS_REPORT.format(**fmt)],
    }
    timed(runs["class areas: numpy, whole band in memory"])  # warm the page cache
    rows = []
    for name, args in runs.items():
        if name.startswith("1,000") and os.path.exists(points):
            os.remove(points)
        best = min((timed(args) for _ in range(2)), key=lambda r: r[0])
        rows.append((name, *best))
        if name.startswith("1,000-point sample: LandFusion"):
            label(points)
    base = {"class areas": rows[1][1], "1,000-point sample": rows[3][1]}
    print(f"Class map: {SIZE} x {SIZE} uint8 DEFLATE, {os.cpu_count()} CPU cores.\n")
    print("| run | seconds | x numpy whole-array | peak MiB |")
    print("|---|---:|---:|---:|")
    for name, seconds, peak in rows:
        ref = base.get(name.split(":")[0])
        ratio = f"{seconds / ref:.2f}" if ref else "-"
        print(f"| {name} | {seconds:.1f} | {ratio} | {peak:.0f} |")


if __name__ == "__main__":
    main()
