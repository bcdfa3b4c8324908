"""Real time series for the time-series tests, laid out as users have them.

The eo-learn patch (68 dated NDVI observations with cloud masks, Slovenia) is split into one
raster per date (``ndvi_20150711T100008.tif``, band description NDVI) and one mask per date
(``clm_...tif``, 1 = cloud); the SSL4EO location (India, 2020) gives one 4-band Sentinel-2 raster
and one VV/VH Sentinel-1 raster per date, on their own, different grids.
"""

import datetime as dt
import json
from pathlib import Path

import numpy as np
import rasterio

from conftest import data_path

S2_BANDS = ("B02", "B03", "B04", "B08")


def eolearn_series(folder: Path, years=None):
    """Writes per-date VRTs of the eo-learn stack; returns (ndvi paths, mask paths, timestamps)."""
    from osgeo import gdal

    src = data_path("eolearn_timeseries")
    stamps = json.loads((src / "timestamps.json").read_text())
    folder.mkdir(parents=True, exist_ok=True)
    ndvi, masks, kept = [], [], []
    for band, stamp in enumerate(stamps, start=1):
        if years and int(stamp[:4]) not in years:
            continue
        tag = stamp.replace("-", "").replace(":", "")
        for kind, name, description, out in (
                ("ndvi", "NDVI_timeseries.tif", "NDVI", ndvi),
                ("clm", "CLM_cloudmask_timeseries.tif", "", masks)):
            path = folder / f"{kind}_{tag}.tif"
            if not path.exists():
                ds = gdal.Translate(str(path), str(src / name), bandList=[band],
                                    creationOptions=["COMPRESS=DEFLATE"])
                if description:
                    ds.GetRasterBand(1).SetDescription(description)
                ds = None
            out.append(str(path))
        kept.append(stamp)
    return ndvi, masks, kept


def eolearn_arrays(stamps=None):
    """The eo-learn NDVI observations with clouds as NaN, and their dates (independent read)."""
    src = data_path("eolearn_timeseries")
    all_stamps = json.loads((src / "timestamps.json").read_text())
    with rasterio.open(src / "NDVI_timeseries.tif") as ds:
        ndvi = ds.read().astype(np.float32)
    with rasterio.open(src / "CLM_cloudmask_timeseries.tif") as ds:
        cloud = ds.read()
    keep = [i for i, s in enumerate(all_stamps) if stamps is None or s in stamps]
    data = np.where(cloud == 0, ndvi, np.nan)[keep]
    dates = [dt.date.fromisoformat(all_stamps[i][:10]) for i in keep]
    return data, dates


def ssl4eo_series(folder: Path):
    """Writes one S2 (B02, B03, B04, B08) and one S1 (VV, VH) VRT per date; returns both lists."""
    from osgeo import gdal

    root = data_path("ssl4eo")
    folder.mkdir(parents=True, exist_ok=True)
    s2, s1 = [], []
    for scene in sorted((root / "s2a" / "0000200").iterdir()):
        date = scene.name[:8]
        path = folder / f"s2_{date}.vrt"
        files = [str(scene / f"B{int(b[1:])}.tif") for b in S2_BANDS]
        ds = gdal.BuildVRT(str(path), files, separate=True)
        for k, name in enumerate(S2_BANDS, start=1):
            ds.GetRasterBand(k).SetDescription(name)
        ds = None
        s2.append(str(path))
    for scene in sorted((root / "s1" / "0000200").iterdir()):
        date = scene.name.split("_")[4][:8]
        path = folder / f"s1_{date}.vrt"
        ds = gdal.BuildVRT(str(path), [str(scene / "VV.tif"), str(scene / "VH.tif")],
                           separate=True)
        ds.GetRasterBand(1).SetDescription("VV")
        ds.GetRasterBand(2).SetDescription("VH")
        ds = None
        s1.append(str(path))
    return s2, s1


def file_digests(paths):
    """SHA-256 of files, to show inputs are left byte-identical."""
    import hashlib

    return {str(p): hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths}
