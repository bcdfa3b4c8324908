"""Benchmark: classify a 20-band float32 raster of real spectra with realistic models.

The raster (``--size``, default 4000 x 4000 x 20) mosaics the TerraMind S1+S2 feature chips
(realdata.py), so the trees walk real pixels. The models are trained on the real land-cover
labels of those chips (training cells only): LandFusion's default model (``trainclassifier``
with its default parameters: a Random Forest of 30 full-depth trees), a Random Forest of 100
full-depth trees (the forest a user gets from scikit-learn and the baseline of every ratio) and
the LightGBM option. Nodes per tree and depth are printed with the table.

Methods, each in its own process, run in interleaved rounds (common.compare):

- LandFusion ``classify_raster`` with the default model and with the RF 100 ONNX model
  (onnxruntime, block-wise, direct engine call with default threads);
- with ``--methods``: LandFusion ``classify_raster`` with the LightGBM model, compiled (lleaves)
  or through onnxruntime alone; block-wise scikit-learn with the default model's forest;
- naive scikit-learn: read all, ``predict`` with ``n_jobs`` = the cores LandFusion uses, write;
- block-wise scikit-learn: LandFusion's blocks, same ``n_jobs``;
- with ``--methods`` including ``otb``: OTB ``otbcli_ImageClassifier`` with a forest of 100
  trees trained by OTB on the same pixels (bench/otb.py; its configuration is printed).

Every method gets the same GDAL block cache. The scikit-learn baselines load the forest the way
a scikit-learn user keeps one (joblib, in bench/data; loading is not timed); LandFusion's own
model files are ONNX.

Usage: python bench/bench_classify.py [--size 4000] [--methods ours_default,ours_rf,naive,blockwise]
"""

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

import common
import otb
import realdata

BANDS = len(realdata.FEATURES)
LABELS = {
    "ours_default": "LandFusion classify_raster, default model (RF 30, onnxruntime)",
    "ours_rf": "LandFusion classify_raster, RF 100 (onnxruntime)",
    "ours_gbm": "LandFusion classify_raster, LightGBM 100 x 31 leaves (compiled)",
    "ours_gbm_ort": "LandFusion classify_raster, LightGBM 100 x 31 leaves (onnxruntime only)",
    "naive": "naive scikit-learn RF 100 (read all, predict all, n_jobs={cores})",
    "naive_default": "naive scikit-learn, the default model's RF 30 (read all, predict all, "
                     "n_jobs={cores})",
    "blockwise": "block-wise scikit-learn RF 100 (n_jobs={cores})",
    "blockwise_default": "block-wise scikit-learn, the default model's RF 30 (n_jobs={cores})",
    "otb": "OTB ImageClassifier, OpenCV RF 100 on the same pixels ({cores} threads)",
}
BASELINE = "naive"


def forest(workdir: Path = None, name: str = "rf100"):
    """The realistic Random Forest on the TerraMind training cells: ``rf100`` (100 trees, full
    depth) or ``default`` (``trainclassifier``'s default Random Forest)."""
    from landfusion.core.classification.train import build_classifier

    if workdir is not None and (workdir / f"{name}.joblib").exists():
        import joblib

        model = joblib.load(workdir / f"{name}.joblib")
        model.n_jobs = common.CORES
        return model
    data = realdata.terramind()
    parameters = {"n_estimators": 100} if name == "rf100" else None
    model = build_classifier("random_forest", parameters, seed=0, threads=common.CORES)
    model = model.steps[-1][1].fit(data["X_train"], data["y_train"].astype(np.int64))
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
    files = ("rf100.onnx", "default.onnx", "gbm.onnx", "rf100.joblib", "default.joblib")
    if shapes_file.exists() and all((workdir / f).exists() for f in files):
        return json.loads(shapes_file.read_text())
    data = realdata.terramind()
    import joblib

    shapes = {}
    for name in ("rf100", "default"):
        rf = forest(name=name)
        joblib.dump(rf, workdir / f"{name}.joblib")
        write_model(sklearn_to_onnx(rf, BANDS),
                    build_card(PIXEL_CLASSIFIER, realdata.FEATURES, classes_of(rf),
                               input_name="X", output_nodata=0), str(workdir / f"{name}.onnx"))
        shapes[name] = tree_structure(rf)
    model = gbm.build_lightgbm(None, 0, common.CORES)
    model.fit(data["X_train"], data["y_train"])
    write_model(gbm.lightgbm_to_onnx(model, BANDS),
                build_card(PIXEL_CLASSIFIER, realdata.FEATURES, classes_of(model), input_name="X",
                           output_nodata=0, extra={gbm.METADATA_KEY: gbm.model_text(model)}),
                str(workdir / "gbm.onnx"))
    shapes["gbm"] = tree_structure(model)
    shapes_file.write_text(json.dumps(shapes))
    return shapes


def run_method(method: str, raster: Path, workdir: Path) -> dict:
    """Runs one method in this process; reports its timed section."""
    import rasterio

    common.import_landfusion()
    out = workdir / f"{method}.tif"
    if method.startswith("ours"):
        from landfusion.core.classification.classify import classify_raster

        model = workdir / {"ours_rf": "rf100.onnx", "ours_default": "default.onnx"}.get(
            method, "gbm.onnx")
        with common.Timer() as timer:
            classify_raster(str(raster), str(model), str(out))
    else:
        rf = forest(workdir, "default" if method.endswith("_default") else "rf100")
        profile = None
        with common.Timer() as timer:
            with rasterio.open(raster) as src:
                profile = dict(src.profile, count=1, dtype="uint8", nodata=0)
                if method.startswith("naive"):
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


#: OTB's ``-ram``: LandFusion's memory budget for a classification (core/io/raster.py).
OTB_RAM_MB = 256


def otb_method(workdir: Path, raster: Path, depth: int) -> "common.Method":
    """OTB's classifier as a method: its forest is trained once, outside the timed runs."""
    if not otb.available():
        raise SystemExit("OTB is not installed (Debian package otb-bin): drop 'otb' from --methods")
    data = realdata.terramind()
    model = otb.train(data["X_train"], data["y_train"], workdir, 100, depth)
    return common.Method(LABELS["otb"].format(cores=common.CORES),
                         otb.classify_argv(raster, model, workdir / "otb.tif", OTB_RAM_MB),
                         common.child_env(otb.classify_env(common.CORES, OTB_RAM_MB)))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=int(os.environ.get("BENCH_CLASSIFY_SIZE", 4000)))
    parser.add_argument("--methods", default="ours_default,ours_rf,naive,blockwise")
    parser.add_argument("--run", help=argparse.SUPPRESS)
    parser.add_argument("--prepare", action="store_true",
                        help="only write the raster and the models (run before taking the lock)")
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
    if args.prepare:
        return 0
    cache = common.DATA / "compiled_cache"
    env = {"LANDFUSION_CACHE_DIR": str(cache)}
    methods = []
    for key in args.methods.split(","):
        if key == "otb":
            methods.append(otb_method(workdir, raster, shapes["rf100"]["max_depth"]))
            continue
        extra = dict(env, LANDFUSION_COMPILE={"ours_gbm": "always",
                                              "ours_gbm_ort": "never"}.get(key, "auto"))
        methods.append(common.Method(LABELS[key].format(cores=common.CORES),
                                     [common.python(), __file__, "--size", str(args.size),
                                      "--run", key], common.child_env(extra)))
    if "ours_gbm" in args.methods.split(","):  # compile once outside the timed runs
        common.measure(methods[[m.strip() for m in args.methods.split(",")].index("ours_gbm")]
                       .argv, common.child_env(dict(env, LANDFUSION_COMPILE="always")))
    pixels = args.size * args.size
    chosen = args.methods.split(",")
    baseline = next((m for m in (BASELINE, "blockwise", "blockwise_default") if m in chosen),
                    chosen[0])
    rf, default, gb = shapes["rf100"], shapes["default"], shapes["gbm"]
    common.compare(
        methods, LABELS[baseline].format(cores=common.CORES),
        title=f"Classify {args.size} x {args.size} x {BANDS} float32 ({pixels / 1e6:.1f} M px, "
              f"real TerraMind spectra). Default model: {default['trees']} trees, "
              f"{default['nodes_per_tree']:.0f} nodes per tree, depth up to {default['max_depth']}. "
              f"RF 100: {rf['nodes_per_tree']:.0f} nodes per tree, depth up to "
              f"{rf['max_depth']}; both trained on real labels. LightGBM (default parameters): "
              f"{gb['trees']} trees ({gb['trees'] // 7} rounds x 7 classes), "
              f"{gb['nodes_per_tree']:.0f} nodes per tree, depth up to {gb['max_depth']}.",
        pixels=pixels)
    if "otb" in chosen:
        print(otb.describe(100, shapes["rf100"]["max_depth"], common.CORES, OTB_RAM_MB) + "\n")
    elif not otb.available():
        print("OTB is not installed on this machine (Debian package otb-bin); no OTB row.\n")
    for ours, theirs, what in (("ours_default", "blockwise_default", "default model (RF 30)"),
                               ("ours_rf", "naive", "RF 100")):
        if ours in args.methods.split(",") and theirs in args.methods.split(","):
            print(f"LandFusion and scikit-learn classes agree on "
                  f"{100 * agreement(workdir / f'{ours}.tif', workdir / f'{theirs}.tif'):.3f} % "
                  f"of the pixels ({what}).")
    if "otb" in chosen and "naive" in chosen:
        print(f"OTB's forest and scikit-learn's RF 100 (trained apart on the same pixels) agree on "
              f"{100 * agreement(workdir / 'otb.tif', workdir / 'naive.tif'):.3f} % of the pixels.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
