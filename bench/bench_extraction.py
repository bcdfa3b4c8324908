"""Benchmark: training-sample extraction against a plain-GDAL approach.

Polygons: ``count`` non-overlapping 50 x 50-pixel squares in EPSG:4326 over the real-spectra
mosaic (realdata.py; the raster is in UTM, so both methods reproject). Measured in interleaved
rounds, each in its own process with the same GDAL block cache (common.compare):

- LandFusion ``extract_samples`` (validation of the layer, reprojection, rasterised feature ids,
  block-wise reads of the pixels under them, per-polygon bookkeeping);
- plain GDAL: ``gdal.VectorTranslate`` to the raster's CRS, ``gdal.Rasterize`` of the class into
  an in-memory raster, then block-wise reads keeping the labelled pixels — what a user scripting
  GDAL would write. No GDAL option makes these steps use more cores (the raster is uncompressed,
  so ``GDAL_NUM_THREADS`` has no decoding to share), so the baseline is single-threaded by
  nature; the table's cores column shows what each side used (LandFusion overlaps reading with
  gathering the pixels on a second thread).

A first run of the baseline, not counted, puts the raster in the page cache for every round.

Usage: python bench/bench_extraction.py [--size 4000]
"""

import argparse
import os
import sys
from pathlib import Path

import numpy as np

import common
import realdata

SIDE = 50


def make_polygons(raster: Path, path: Path, count: int = 3000, seed: int = 0) -> None:
    """Writes ``count`` non-overlapping squares of SIDE x SIDE pixels in EPSG:4326."""
    import rasterio
    from osgeo import ogr, osr

    with rasterio.open(raster) as src:
        transform, crs, size = src.transform, src.crs, src.width
    rng = np.random.default_rng(seed)
    cells = size // SIDE
    chosen = rng.choice(cells * cells, size=min(count, cells * cells), replace=False)
    source = osr.SpatialReference()
    source.ImportFromWkt(crs.to_wkt())
    target = osr.SpatialReference()
    target.ImportFromEPSG(4326)
    for srs in (source, target):
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    to_wgs84 = osr.CoordinateTransformation(source, target)
    tmp = path.with_suffix(".part.gpkg")
    if tmp.exists():
        tmp.unlink()
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(tmp))
    layer = ds.CreateLayer("training", srs=target, geom_type=ogr.wkbPolygon)
    layer.CreateField(ogr.FieldDefn("class", ogr.OFTInteger))
    layer.StartTransaction()
    for i, cell in enumerate(chosen):
        r, c = divmod(int(cell), cells)
        x0, y0 = transform * (c * SIDE, r * SIDE)
        x1, y1 = transform * ((c + 1) * SIDE, (r + 1) * SIDE)
        geometry = ogr.CreateGeometryFromWkt(
            f"POLYGON(({x0} {y0},{x1} {y0},{x1} {y1},{x0} {y1},{x0} {y0}))")
        geometry.Transform(to_wgs84)
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetField("class", 1 + i % 6)
        feature.SetGeometry(geometry)
        layer.CreateFeature(feature)
    layer.CommitTransaction()
    ds = None
    os.replace(tmp, path)


def ours(raster: Path, polygons: Path) -> dict:
    common.import_landfusion()
    from landfusion.core.classification.samples import extract_samples

    with common.Timer() as timer:
        samples = extract_samples(str(raster), str(polygons), "class")
    return {"seconds": timer.seconds, "cpu_seconds": timer.cpu_seconds,
            "pixels": int(samples.y.size)}


def plain_gdal(raster: Path, polygons: Path) -> dict:
    from osgeo import gdal

    gdal.UseExceptions()
    with common.Timer() as timer:
        src = gdal.Open(str(raster))
        vector = gdal.VectorTranslate("/vsimem/polygons.gpkg", str(polygons), format="GPKG",
                                      dstSRS=src.GetProjection())
        vector = None
        labels = gdal.GetDriverByName("MEM").Create("", src.RasterXSize, src.RasterYSize, 1,
                                                    gdal.GDT_Int32)
        labels.SetGeoTransform(src.GetGeoTransform())
        labels.SetProjection(src.GetProjection())
        gdal.Rasterize(labels, "/vsimem/polygons.gpkg", attribute="class")
        xs, ys = [], []
        step = 256
        for row in range(0, src.RasterYSize, step):
            rows = min(step, src.RasterYSize - row)
            y = labels.GetRasterBand(1).ReadAsArray(0, row, src.RasterXSize, rows)
            keep = y > 0
            if keep.any():
                data = src.ReadAsArray(0, row, src.RasterXSize, rows)
                xs.append(data[:, keep].T)
                ys.append(y[keep])
        X, y = np.concatenate(xs), np.concatenate(ys)
        gdal.Unlink("/vsimem/polygons.gpkg")
    return {"seconds": timer.seconds, "cpu_seconds": timer.cpu_seconds, "pixels": int(y.size)}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int,
                        default=int(os.environ.get("BENCH_CLASSIFY_SIZE", 4000)))
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--run", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not realdata.available():
        print("(TerraMind chips not found under ../shared/data: extraction benchmark skipped)")
        return 0
    raster = realdata.mosaic(args.size)
    polygons = common.DATA / f"polygons_{args.size}_{args.count}.gpkg"
    if not polygons.exists():
        make_polygons(raster, polygons, args.count)
    if args.run:
        common.report(**{"ours": ours, "gdal": plain_gdal}[args.run](raster, polygons))
        return 0
    methods = [common.Method(label, [common.python(), __file__, "--size", str(args.size),
                                     "--count", str(args.count), "--run", key])
               for key, label in (("ours", "LandFusion extract_samples"),
                                  ("gdal", "plain GDAL (VectorTranslate, Rasterize, block reads)"))]
    common.measure(methods[1].argv)
    summaries = common.compare(
        methods, methods[1].label,
        title=f"Training-sample extraction: {args.count} polygons (EPSG:4326) over a "
              f"{args.size} x {args.size} x {len(realdata.FEATURES)} float32 raster (UTM).")
    pixels = summaries[0]["runs"][0].get("pixels")
    print(f"Pixels extracted: {pixels} (LandFusion), "
          f"{summaries[1]['runs'][0].get('pixels')} (plain GDAL).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
