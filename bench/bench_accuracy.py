"""Accuracy assessment on a full Sentinel-2 tile class map (10980 x 10980) against baselines.

Generates once a uint8 class map (7 classes with patchy structure, nodata border; tiled,
DEFLATE), then compares, each method in its own process, in interleaved rounds with the same
GDAL cache (common.compare: median time and range, median and range of the per-round ratios,
cores used, peak memory from /usr/bin/time, load average before and after):

  - mapped class areas: a whole-array numpy count (np.bincount after reading the whole band,
    the baseline), QGIS's native:rasterlayeruniquevaluesreport (through qgis_process) and
    LandFusion's block-wise count;
  - stratified random sample of 1,000 points: a whole-array numpy draw (np.flatnonzero per
    class, the baseline) and LandFusion's block-wise draw written to a GeoPackage;
  - the full accuracy report (pixel counts, 1,000 reference points, HTML/JSON/CSV), alone.

Each child process is timed whole (interpreter or QGIS start-up included, as a user running the
step pays it).

Usage: python bench/bench_accuracy.py   (LANDFUSION_BENCH_SIZE=10980, BENCH_REPEATS=3)
"""

import os
import sys

import common

DATA = common.DATA
SIZE = int(os.environ.get("LANDFUSION_BENCH_SIZE", "10980"))
MAP = DATA / f"class_map_{SIZE}.tif"
ROOT = common.ROOT
PLUGINS = common.import_landfusion()


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
r = assess_accuracy({map!r}, {points!r}, class_field="reference", output_html={html!r},
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
    fmt = dict(plugins=PLUGINS, map=str(MAP), points=points, out=str(DATA / "sample.gpkg"),
               html=str(DATA / "r.html"), js=str(DATA / "r.json"), csv=str(DATA / "r.csv"))
    numpy_count = "numpy, whole band in memory"
    numpy_sample = "numpy, whole band in memory (flatnonzero per class)"
    areas = {
        numpy_count: [py, "-c", NUMPY_COUNT.format(**fmt)],
        "QGIS native:rasterlayeruniquevaluesreport (qgis_process)": [
            str(ROOT / "scripts" / "qgis_process.sh"), "run", "native:rasterlayeruniquevaluesreport",
            "--", f"INPUT={MAP}", "BAND=1", f"OUTPUT_HTML_FILE={DATA / 'unique.html'}"],
        "LandFusion block-wise count": [py, "-c", OURS_COUNT.format(**fmt)],
    }
    sample = {
        numpy_sample: [py, "-c", NUMPY_SAMPLE.format(**fmt)],
        "LandFusion stratifiedsample, block-wise (GeoPackage)": [
            py, "-c", OURS_SAMPLE.format(**fmt)],
    }
    report = {"LandFusion assess: counts + 1,000 points + HTML/JSON/CSV": [
        py, "-c", OURS_REPORT.format(**fmt)]}
    # Not timed: warm the page cache; the labelled reference points of the report.
    common.measure(areas[numpy_count])
    common.removing(points)()
    common.measure([py, "-c", OURS_SAMPLE.format(**dict(fmt, out=points))])
    label(points)
    print(f"Class map: {SIZE} x {SIZE} uint8 DEFLATE (512 tiles), 7 classes.\n")
    for title, runs, baseline in (("Mapped class areas.", areas, numpy_count),
                                  ("Stratified sample of 1,000 points.", sample, numpy_sample),
                                  ("Accuracy report.", report, next(iter(report)))):
        common.compare([common.Method(k, v, before=common.removing(fmt["out"])) for k, v in
                        runs.items()], baseline, title=title, pixels=SIZE * SIZE)


if __name__ == "__main__":
    main()
