"""Benchmark: classify a 20-band float32 raster with a 100-tree Random Forest.

Compares in the same run, each in its own process (so peak memory is per method):

- LandFusion ``classify_raster``: block-wise, onnxruntime, bounded memory;
- naive scikit-learn: read the whole raster, ``predict`` all pixels, write;
- block-wise scikit-learn: the same blocks as LandFusion, ``predict`` per block;
- OTB ``otbcli_ImageClassifier`` (OpenCV RF, 100 trees, depth 25, 256 MB RAM) when the Debian
  package ``otb-bin`` is installed.

The raster (default 4000 x 4000 x 20, set ``BENCH_CLASSIFY_SIZE`` or ``--size`` to scale it) is
generated once under bench/data/: a smooth map of 6 classes, each with its own spectrum, plus
noise. The model is trained from a fixed seed on 30 000 of its pixels, once per process (models
are never pickled), and that time is not counted.

Usage: python bench/bench_classify.py [--size 4000] [--threads 0]
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BANDS = 20
CLASSES = 6
TREES = 100


def _import_landfusion():
    sys.path.insert(0, str(ROOT))
    from plugin_import import make_importable

    make_importable()


def class_spectra(seed: int = 0) -> np.ndarray:
    """The mean spectrum of each class."""
    return np.random.default_rng(seed + 1).uniform(0.05, 0.5, size=(CLASSES, BANDS)).astype(
        np.float32)


def generate(path: Path, size: int, seed: int = 0) -> None:
    """Writes a size x size x 20 float32 GeoTIFF block by block."""
    import rasterio
    from rasterio.transform import from_origin
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, CLASSES, size=(size // 50 + 2, size // 50 + 2))
    spectra = class_spectra(seed)
    profile = {"driver": "GTiff", "dtype": "float32", "count": BANDS, "width": size,
               "height": size, "crs": "EPSG:32633", "transform": from_origin(500000, 5000000, 10, 10),
               "tiled": True, "blockxsize": 256, "blockysize": 256, "BIGTIFF": "YES"}
    tmp = path.with_suffix(".part.tif")
    with rasterio.open(tmp, "w", **profile) as dst:
        for i in range(BANDS):
            dst.set_band_description(i + 1, f"F{i + 1:02d}")
        step = 256
        for row in range(0, size, step):
            rows = min(step, size - row)
            yy = (np.arange(row, row + rows) / 50.0)[:, None] + np.zeros((1, size))
            xx = (np.arange(size) / 50.0)[None, :] + np.zeros((rows, 1))
            classes = ndimage.map_coordinates(coarse, [yy, xx], order=0, mode="nearest")
            data = spectra[classes].transpose(2, 0, 1)
            data = data + rng.normal(0, 0.08, size=data.shape).astype(np.float32)
            dst.write(data.astype(np.float32), window=((row, row + rows), (0, size)))
    os.replace(tmp, path)


def train_model(path: Path, seed: int = 0):
    """Trains the benchmark Random Forest on 30 000 pixels with labels from the class spectra."""
    import rasterio
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(seed)
    with rasterio.open(path) as src:
        window = ((0, min(src.height, 600)), (0, min(src.width, 600)))
        data = src.read(window=window).reshape(BANDS, -1).T
    sample = data[rng.choice(data.shape[0], size=min(30000, data.shape[0]), replace=False)]
    spectra = class_spectra(seed)
    labels = np.argmin(((sample[:, None, :] - spectra[None]) ** 2).sum(axis=2), axis=1) + 1
    model = RandomForestClassifier(n_estimators=TREES, random_state=seed, n_jobs=-1)
    model.fit(sample, labels)
    return model


def peak_mb() -> float:
    """Peak resident memory of this process in MB.

    Read from /proc (VmHWM, reset by exec) rather than getrusage, whose maximum survives exec and
    would include the parent's memory at fork time.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_method(method: str, raster: Path, workdir: Path, threads: int) -> dict:
    """Runs one method in this process and returns its timing and peak memory."""
    import rasterio

    _import_landfusion()
    model = train_model(raster)
    out = workdir / (f"{method}_{raster.stem}.tif" if raster.suffix == ".vrt" else f"{method}.tif")
    baseline_mb = peak_mb()
    if method == "ours":
        from landfusion.core.classification.classify import classify_raster
        from landfusion.core.io.classmap import ClassInfo, palette_color
        from landfusion.core.models.pixel_model import (
            PIXEL_CLASSIFIER, build_metadata, sklearn_to_onnx, write_model,
        )

        onnx_path = workdir / "rf.onnx"
        classes = [ClassInfo(int(v), f"class {v}", palette_color(i))
                   for i, v in enumerate(model.classes_)]
        with rasterio.open(raster) as src:
            names = list(src.descriptions)
        write_model(sklearn_to_onnx(model, BANDS), str(onnx_path),
                    build_metadata(PIXEL_CLASSIFIER, names, classes, output_nodata=0))
        model = None
        start = time.perf_counter()
        classify_raster(str(raster), str(onnx_path), str(out), threads=threads)
        seconds = time.perf_counter() - start
    elif method == "naive_sklearn":
        start = time.perf_counter()
        with rasterio.open(raster) as src:
            data = src.read()
            profile = dict(src.profile, count=1, dtype="uint8", nodata=0)
        pixels = data.reshape(BANDS, -1).T
        labels = model.predict(pixels).astype("uint8").reshape(data.shape[1:])
        with rasterio.open(out, "w", **profile) as dst:
            dst.write(labels, 1)
        seconds = time.perf_counter() - start
    elif method == "blockwise_sklearn":
        from landfusion.core.io import raster as raster_io

        start = time.perf_counter()
        with rasterio.open(raster) as src:
            profile = dict(src.profile, count=1, dtype="uint8", nodata=0)
            blocks = raster_io.plan_blocks(src.width, src.height, 4 * BANDS * 3 + 24)
            with rasterio.open(out, "w", **profile) as dst:
                raster_io.run_blocks(
                    blocks, lambda b: src.read(window=b.window),
                    lambda b, d: dst.write(model.predict(d.reshape(BANDS, -1).T).astype(
                        "uint8").reshape(d.shape[1:]), 1, window=b.window))
        seconds = time.perf_counter() - start
    else:
        raise SystemExit(f"unknown method {method}")
    return {"method": method, "seconds": seconds, "peak_mb": peak_mb(),
            "model_mb": baseline_mb}


def mosaic_vrt(raster: Path, size: int) -> Path:
    """A size x size VRT tiling the generated raster (no extra disk), for memory runs."""
    from osgeo import gdal

    source = gdal.Open(str(raster))
    base = source.RasterXSize
    path = raster.parent / f"mosaic_{size}x{size}x{BANDS}.vrt"
    driver = gdal.GetDriverByName("VRT")
    vrt = driver.Create(str(path), size, size, 0)
    vrt.SetProjection(source.GetProjection())
    vrt.SetGeoTransform(source.GetGeoTransform())
    for band in range(1, BANDS + 1):
        vrt.AddBand(gdal.GDT_Float32)
        target = vrt.GetRasterBand(band)
        target.SetDescription(source.GetRasterBand(band).GetDescription())
        xml = []
        for row in range(0, size, base):
            for col in range(0, size, base):
                w, h = min(base, size - col), min(base, size - row)
                xml.append(
                    f"<SimpleSource><SourceFilename relativeToVRT='0'>{raster}</SourceFilename>"
                    f"<SourceBand>{band}</SourceBand><SrcRect xOff='0' yOff='0' xSize='{w}' "
                    f"ySize='{h}'/><DstRect xOff='{col}' yOff='{row}' xSize='{w}' ySize='{h}'/>"
                    "</SimpleSource>")
        target.SetMetadata({f"source_{i}": x for i, x in enumerate(xml)}, "new_vrt_sources")
    vrt = None
    return path


def make_polygons(raster: Path, path: Path, count: int = 3000, side: int = 50, seed: int = 0):
    """Writes ``count`` non-overlapping square polygons of side x side pixels (EPSG:4326)."""
    import rasterio
    from osgeo import ogr, osr

    with rasterio.open(raster) as src:
        transform, crs, size = src.transform, src.crs, src.width
    rng = np.random.default_rng(seed)
    cells = size // side
    chosen = rng.choice(cells * cells, size=min(count, cells * cells), replace=False)
    source = osr.SpatialReference()
    source.ImportFromWkt(crs.to_wkt())
    target = osr.SpatialReference()
    target.ImportFromEPSG(4326)
    for srs in (source, target):
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    to_wgs84 = osr.CoordinateTransformation(source, target)
    if path.exists():
        path.unlink()
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    layer = ds.CreateLayer("training", srs=target, geom_type=ogr.wkbPolygon)
    layer.CreateField(ogr.FieldDefn("class", ogr.OFTInteger))
    layer.StartTransaction()
    for i, cell in enumerate(chosen):
        r, c = divmod(int(cell), cells)
        x0, y0 = transform * (c * side, r * side)
        x1, y1 = transform * ((c + 1) * side, (r + 1) * side)
        geometry = ogr.CreateGeometryFromWkt(
            f"POLYGON(({x0} {y0},{x1} {y0},{x1} {y1},{x0} {y1},{x0} {y0}))")
        geometry.Transform(to_wgs84)
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetField("class", 1 + i % CLASSES)
        feature.SetGeometry(geometry)
        layer.CreateFeature(feature)
    layer.CommitTransaction()
    ds = None


def run_extraction(raster: Path, workdir: Path) -> dict:
    """Times sample extraction of all pixels under 3000 reprojected polygons."""
    _import_landfusion()
    from landfusion.core.classification.samples import extract_samples

    polygons = workdir / "polygons.gpkg"
    make_polygons(raster, polygons)
    start = time.perf_counter()
    samples = extract_samples(str(raster), str(polygons), "class")
    seconds = time.perf_counter() - start
    return {"method": "extract", "seconds": seconds, "peak_mb": peak_mb(),
            "pixels": int(samples.y.size), "polygons": len(samples.polygon_pixels)}


def run_otb(raster: Path, workdir: Path) -> dict:
    """Trains an OTB Random Forest (OpenCV, 100 trees, depth 25) on the same 30 000 labelled
    pixels as the other methods and times ``otbcli_ImageClassifier`` on the whole raster."""
    import rasterio
    from osgeo import ogr, osr

    rng = np.random.default_rng(0)
    with rasterio.open(raster) as src:
        window = ((0, min(src.height, 600)), (0, min(src.width, 600)))
        data = src.read(window=window).reshape(BANDS, -1).T
        transform, crs = src.transform, src.crs
    width = window[1][1]
    index = rng.choice(data.shape[0], size=min(30000, data.shape[0]), replace=False)
    spectra = class_spectra(0)
    labels = np.argmin(((data[index][:, None, :] - spectra[None]) ** 2).sum(axis=2), axis=1) + 1
    points = workdir / "otb_points.gpkg"
    if points.exists():
        points.unlink()
    srs = osr.SpatialReference()
    srs.ImportFromWkt(crs.to_wkt())
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(points))
    layer = ds.CreateLayer("points", srs=srs, geom_type=ogr.wkbPoint)
    layer.CreateField(ogr.FieldDefn("class", ogr.OFTInteger))
    layer.StartTransaction()
    for i, label in zip(index, labels):
        x, y = transform * (i % width + 0.5, i // width + 0.5)
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetField("class", int(label))
        point = ogr.Geometry(ogr.wkbPoint)
        point.AddPoint_2D(x, y)
        feature.SetGeometry(point)
        layer.CreateFeature(feature)
    layer.CommitTransaction()
    ds = None
    model = workdir / "otb_rf.txt"
    train = subprocess.run(
        ["otbcli_TrainImagesClassifier", "-io.il", str(raster), "-io.vd", str(points),
         "-sample.vfn", "class", "-sample.mt", "-1", "-sample.mv", "-1", "-sample.vtr", "0",
         "-sample.bm", "0", "-classifier", "rf", "-classifier.rf.nbtrees", str(TREES),
         "-classifier.rf.max", "25", "-classifier.rf.min", "2", "-classifier.rf.acc", "0",
         "-io.out", str(model)], capture_output=True, text=True)
    if train.returncode != 0:
        raise SystemExit("OTB training failed:\n" + train.stdout[-2000:] + train.stderr[-2000:])
    out = workdir / "otb.tif"
    command = ["otbcli_ImageClassifier", "-in", str(raster), "-model", str(model), "-out",
               str(out), "uint8", "-ram", "256"]
    timer = ["/usr/bin/time", "-f", "MAXRSS_KB %M"] if os.path.exists("/usr/bin/time") else []
    start = time.perf_counter()
    run = subprocess.run(timer + command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if run.returncode != 0:
        raise SystemExit("OTB classification failed:\n" + run.stdout[-2000:] + run.stderr[-2000:])
    peaks = [int(line.split()[1]) for line in run.stderr.splitlines()
             if line.startswith("MAXRSS_KB ")]
    peak = peaks[-1] / 1024.0 if peaks else float("nan")
    return {"method": "otb", "seconds": seconds, "peak_mb": peak}


def agreement(workdir: Path) -> float:
    import rasterio

    with rasterio.open(workdir / "ours.tif") as a, rasterio.open(workdir / "naive_sklearn.tif") as b:
        total, same = 0, 0
        for _, window in a.block_windows(1):
            x, y = a.read(1, window=window), b.read(1, window=window)
            total += x.size
            same += int(np.sum(x == y))
    return same / total


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=int(os.environ.get("BENCH_CLASSIFY_SIZE", 4000)))
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--methods", default="ours,blockwise_sklearn,naive_sklearn")
    parser.add_argument("--mosaic", type=int, default=0,
                        help="also classify a MOSAIC x MOSAIC VRT tiling the raster (ours only)")
    parser.add_argument("--run", help=argparse.SUPPRESS)
    parser.add_argument("--raster", help=argparse.SUPPRESS)
    args = parser.parse_args()
    data = HERE / "data"
    data.mkdir(exist_ok=True)
    raster = data / f"classify_{args.size}x{args.size}x{BANDS}.tif"
    workdir = data / f"classify_{args.size}_out"
    workdir.mkdir(exist_ok=True)
    if args.run == "otb":
        print(json.dumps(run_otb(raster, workdir)))
        return 0
    if args.run == "extract":
        print(json.dumps(run_extraction(raster, workdir)))
        return 0
    if args.run:
        target = Path(args.raster) if args.raster else raster
        print(json.dumps(run_method(args.run, target, workdir, args.threads)))
        return 0
    if not raster.exists():
        start = time.perf_counter()
        generate(raster, args.size)
        print(f"(generated {raster.name} in {time.perf_counter() - start:.0f} s)", file=sys.stderr)
    results = []
    for method in args.methods.split(","):
        proc = subprocess.run([sys.executable, __file__, "--size", str(args.size), "--threads",
                               str(args.threads), "--run", method], capture_output=True, text=True)
        if proc.returncode != 0:
            sys.stderr.write(proc.stderr[-3000:])
            return 1
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    if shutil.which("otbcli_ImageClassifier") and shutil.which("otbcli_TrainImagesClassifier"):
        proc = subprocess.run([sys.executable, __file__, "--size", str(args.size), "--run", "otb"],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            sys.stderr.write(proc.stderr[-3000:])
            return 1
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    else:
        print("(OTB otbcli_ImageClassifier not installed: Debian package otb-bin)", file=sys.stderr)
    pixels = args.size * args.size
    naive = next((r for r in results if r["method"] == "naive_sklearn"), None)
    names = {"ours": "LandFusion classify_raster (onnxruntime, block-wise)",
             "naive_sklearn": "naive scikit-learn (read all, predict all)",
             "blockwise_sklearn": "block-wise scikit-learn predict",
             "otb": "OTB otbcli_ImageClassifier (OpenCV RF, 100 trees, depth 25)"}
    print(f"Classify {args.size} x {args.size} x {BANDS} float32 ({pixels / 1e6:.1f} M pixels), "
          f"Random Forest {TREES} trees, {os.cpu_count()} CPUs\n")
    print("| method | time (s) | throughput (k px/s) | peak memory (MB) | vs naive sklearn |")
    print("|---|---:|---:|---:|---:|")
    for r in results:
        ratio = f"{naive['seconds'] / r['seconds']:.2f}x" if naive else "–"
        print(f"| {names[r['method']]} | {r['seconds']:.1f} | {pixels / r['seconds'] / 1e3:.0f} | "
              f"{r['peak_mb']:.0f} | {ratio} |")
    if args.mosaic:
        vrt = mosaic_vrt(raster, args.mosaic)
        proc = subprocess.run([sys.executable, __file__, "--size", str(args.size), "--threads",
                               str(args.threads), "--run", "ours", "--raster", str(vrt)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            sys.stderr.write(proc.stderr[-3000:])
            return 1
        m = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"\nLandFusion on a {args.mosaic} x {args.mosaic} x {BANDS} mosaic: "
              f"{m['seconds']:.0f} s, {args.mosaic ** 2 / m['seconds'] / 1e3:.0f} k px/s, "
              f"peak {m['peak_mb']:.0f} MB.")
    if args.size >= 2000:
        proc = subprocess.run([sys.executable, __file__, "--size", str(args.size), "--run",
                               "extract"], capture_output=True, text=True)
        if proc.returncode == 0:
            e = json.loads(proc.stdout.strip().splitlines()[-1])
            print(f"\nSample extraction: {e['pixels'] / 1e6:.2f} M pixels under {e['polygons']} "
                  f"polygons (EPSG:4326, reprojected) in {e['seconds']:.1f} s, peak "
                  f"{e['peak_mb']:.0f} MB.")
        else:
            sys.stderr.write(proc.stderr[-3000:])
    if naive and any(r["method"] == "ours" for r in results):
        print(f"\nLandFusion and naive scikit-learn agree on {100 * agreement(workdir):.3f} % of "
              "the pixels (the rest are exact probability ties broken differently).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
