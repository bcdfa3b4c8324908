"""Benchmark: classify a 20-band float32 raster of real spectra with realistic models.

The raster (``--size``, default 4000 x 4000 x 20) mosaics the TerraMind S1+S2 feature chips
(realdata.py), so the trees walk real pixels. The models are trained on the real land-cover
labels of those chips (training cells only): a Random Forest of 100 full-depth trees, the
forest a user gets from scikit-learn and the baseline of every ratio, and LandFusion's default
LightGBM model. Nodes per tree and depth are printed with the table.

Methods, each in its own process, run in interleaved rounds (common.compare):

- LandFusion ``classify_raster`` with the RF 100 ONNX model (onnxruntime, block-wise, direct
  engine call with default threads);
- LandFusion ``classify_raster`` with the default LightGBM model, compiled (lleaves) and,
  with ``--methods``, through onnxruntime alone;
- naive scikit-learn: read all, ``predict`` with ``n_jobs`` = the cores LandFusion uses, write;
- block-wise scikit-learn: LandFusion's blocks, same ``n_jobs``;
- OTB ``otbcli_ImageClassifier`` when installed (said so when not).

Every method gets the same GDAL block cache. The scikit-learn baselines load the forest the way
a scikit-learn user keeps one (joblib, in bench/data; loading is not timed); LandFusion's own
model files are ONNX.

Usage: python bench/bench_classify.py [--size 4000] [--methods ours_rf,ours_gbm,naive,blockwise]
"""

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np

import common
import realdata

BANDS = len(realdata.FEATURES)
LABELS = {
    "ours_rf": "LandFusion classify_raster, RF 100 (onnxruntime)",
    "ours_gbm": "LandFusion classify_raster, LightGBM 100 x 31 leaves (compiled)",
    "ours_gbm_ort": "LandFusion classify_raster, LightGBM 100 x 31 leaves (onnxruntime only)",
    "naive": "naive scikit-learn RF 100 (read all, predict all, n_jobs={cores})",
    "blockwise": "block-wise scikit-learn RF 100 (n_jobs={cores})",
}
BASELINE = "naive"


def forest(workdir: Path = None):
    """The realistic Random Forest (100 trees, full depth) on the TerraMind training cells."""
    from sklearn.ensemble import RandomForestClassifier

    if workdir is not None and (workdir / "rf100.joblib").exists():
        import joblib

        model = joblib.load(workdir / "rf100.joblib")
        model.n_jobs = common.CORES
        return model
    data = realdata.terramind()
    model = RandomForestClassifier(n_estimators=100, random_state=0, n_jobs=common.CORES)
    model.fit(data["X_train"], data["y_train"].astype(np.int64))
    return model


def classes_of(model):
    from landfusion.core.io.classmap import ClassInfo, palette_color

    return [ClassInfo(int(v), realdata.CLASS_NAMES.get(int(v), f"class {v}"), palette_color(i))
            for i, v in enumerate(model.classes_)]


def prepare_models(workdir: Path) -> dict:
    """Writes rf100.onnx and gbm.onnx once; returns their tree shapes."""
    from landfusion.core.classification import gbm
    from landfusion.core.classification.tradeoffs import tree_structure
    from landfusion.core.models.card import build_card
    from landfusion.core.models.format import PIXEL_CLASSIFIER
    from landfusion.core.models.writing import write_model
    from landfusion.core.models.pixel_model import sklearn_to_onnx

    shapes_file = workdir / "models.json"
    if shapes_file.exists() and all((workdir / f).exists()
                                    for f in ("rf100.onnx", "gbm.onnx", "rf100.joblib")):
        return json.loads(shapes_file.read_text())
    data = realdata.terramind()
    import joblib

    rf = forest()
    joblib.dump(rf, workdir / "rf100.joblib")
    write_model(sklearn_to_onnx(rf, BANDS),
                build_card(PIXEL_CLASSIFIER, realdata.FEATURES, classes_of(rf), input_name="X",
                           output_nodata=0), str(workdir / "rf100.onnx"))
    model = gbm.build_lightgbm(None, 0, common.CORES)
    model.fit(data["X_train"], data["y_train"])
    write_model(gbm.lightgbm_to_onnx(model, BANDS),
                build_card(PIXEL_CLASSIFIER, realdata.FEATURES, classes_of(model), input_name="X",
                           output_nodata=0, extra={gbm.METADATA_KEY: gbm.model_text(model)}),
                str(workdir / "gbm.onnx"))
    shapes = {"rf": tree_structure(rf), "gbm": tree_structure(model)}
    shapes_file.write_text(json.dumps(shapes))
    return shapes


def run_method(method: str, raster: Path, workdir: Path) -> dict:
    """Runs one method in this process; reports its timed section."""
    import rasterio

    common.import_landfusion()
    out = workdir / f"{method}.tif"
    if method.startswith("ours"):
        from landfusion.core.classification.classify import classify_raster

        model = workdir / ("rf100.onnx" if method == "ours_rf" else "gbm.onnx")
        with common.Timer() as timer:
            classify_raster(str(raster), str(model), str(out))
    else:
        rf = forest(workdir)
        profile = None
        with common.Timer() as timer:
            with rasterio.open(raster) as src:
                profile = dict(src.profile, count=1, dtype="uint8", nodata=0)
                if method == "naive":
                    data = src.read()
                    labels = rf.predict(data.reshape(BANDS, -1).T).astype("uint8")
                    with rasterio.open(out, "w", **profile) as dst:
                        dst.write(labels.reshape(data.shape[1:]), 1)
                else:
                    from landfusion.core.io import raster as raster_io

                    blocks = raster_io.plan_blocks(src.width, src.height, 4 * BANDS * 3 + 24)
                    with rasterio.open(out, "w", **profile) as dst:
                        raster_io.run_blocks(
                            blocks, lambda b: src.read(window=b.window),
                            lambda b, d: dst.write(rf.predict(d.reshape(BANDS, -1).T).astype(
                                "uint8").reshape(d.shape[1:]), 1, window=b.window))
    return {"seconds": timer.seconds, "cpu_seconds": timer.cpu_seconds}


def agreement(a: Path, b: Path) -> float:
    import rasterio

    with rasterio.open(a) as x, rasterio.open(b) as y:
        total = same = 0
        for _, window in x.block_windows(1):
            p, q = x.read(1, window=window), y.read(1, window=window)
            total += p.size
            same += int(np.sum(p == q))
    return same / total


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=int(os.environ.get("BENCH_CLASSIFY_SIZE", 4000)))
    parser.add_argument("--methods", default="ours_rf,ours_gbm,naive,blockwise")
    parser.add_argument("--run", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not realdata.available():
        print("(TerraMind chips not found under ../shared/data: classification benchmark skipped)")
        return 0
    common.import_landfusion()
    workdir = common.DATA / f"classify_real_{args.size}"
    workdir.mkdir(parents=True, exist_ok=True)
    raster = realdata.mosaic(args.size)
    if args.run:
        common.report(**run_method(args.run, raster, workdir))
        return 0
    shapes = prepare_models(workdir)
    cache = common.DATA / "compiled_cache"
    env = {"LANDFUSION_CACHE_DIR": str(cache)}
    methods = []
    for key in args.methods.split(","):
        extra = dict(env, LANDFUSION_COMPILE={"ours_gbm": "always",
                                              "ours_gbm_ort": "never"}.get(key, "auto"))
        methods.append(common.Method(LABELS[key].format(cores=common.CORES),
                                     [common.python(), __file__, "--size", str(args.size),
                                      "--run", key], common.child_env(extra)))
    if "ours_gbm" in args.methods.split(","):  # compile once outside the timed runs
        common.measure(methods[[m.strip() for m in args.methods.split(",")].index("ours_gbm")]
                       .argv, common.child_env(dict(env, LANDFUSION_COMPILE="always")))
    pixels = args.size * args.size
    rf, gb = shapes["rf"], shapes["gbm"]
    common.compare(
        methods, LABELS[BASELINE].format(cores=common.CORES),
        title=f"Classify {args.size} x {args.size} x {BANDS} float32 ({pixels / 1e6:.1f} M px, "
              f"real TerraMind spectra). RF 100: {rf['nodes_per_tree']:.0f} nodes per tree, "
              f"depth up to {rf['max_depth']}, trained on real labels. LightGBM (default parameters): "
              f"{gb['trees']} trees ({gb['trees'] // 7} rounds x 7 classes), "
              f"{gb['nodes_per_tree']:.0f} nodes per tree, depth up to {gb['max_depth']}.",
        pixels=pixels)
    if not (shutil.which("otbcli_ImageClassifier") and shutil.which("otbcli_TrainImagesClassifier")):
        print("OTB is not installed on this machine (Debian package otb-bin); no OTB row.\n")
    if (workdir / "ours_rf.tif").exists() and (workdir / "naive.tif").exists():
        print(f"LandFusion RF 100 and scikit-learn agree on "
              f"{100 * agreement(workdir / 'ours_rf.tif', workdir / 'naive.tif'):.3f} % of the "
              "pixels.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
