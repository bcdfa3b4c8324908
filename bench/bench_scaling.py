"""Benchmark: time and peak memory of classify, indices and stack against raster size.

For each step (``--steps``) the sizes (``--sizes``, default 2000,4000,10980 pixels per side)
are the methods of one comparison (common.compare): every run in its own process, the sizes in
interleaved rounds (order alternating), the same GDAL cache, peak memory from /usr/bin/time,
cores used, load average before and after; every step's previous output is deleted before each
run, untimed. The ratio column is time / time of the smallest size;
for linear scaling it equals the ratio of pixels. Memory must stay flat as the size grows.

Steps:

- ``classify``: ``classify_raster`` on the real-spectra mosaic (realdata.py) with the forest
  ``train_classifier`` builds by default (Random Forest, 30 full-depth trees, trained on the real
  TerraMind labels; bench_classify.py's ``default.onnx``); ``--classify-models default,rf,gbm``
  adds the 100-tree forest and LightGBM 100 x 31, compiled;
- ``indices``: the four default spectral indices, uncompressed (bench_indices.py data);
- ``stack``: the full co-registration stack (bench_coregister.py data).

Usage: python bench/bench_scaling.py [--sizes 2000,4000,10980] [--steps classify,indices,stack]
       [--repeats 3] [--classify-models default]
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

import common
import realdata

HERE = Path(__file__).resolve().parent

CLASSIFY = """
import sys
sys.path.insert(0, {plugins!r})
from landfusion.core.classification.classify import classify_raster
classify_raster({raster!r}, {model!r}, {out!r})
"""
CLASSIFY_MODELS = {"default": ("default model: RF 30 full depth (onnxruntime)", "default.onnx",
                               "auto"),
                   "rf": ("RF 100 full depth (onnxruntime)", "rf100.onnx", "auto"),
                   "gbm": ("LightGBM 100 x 31 (compiled)", "gbm.onnx", "always")}
#: Deletes every step's previous output before each run (untimed).
SCALING_OUTPUTS = common.removing(common.DATA / "scaling*",
                                  common.DATA / "coregister_*" / "out" / "scaling*")
STEP_LABELS = {"indices": "indices: NDVI, SAVI, BAI, NDWI (uncompressed)",
               "stack": "stack: warps + 10 m bands + mask + VV/VH + NDVI (9 bands)"}


def models_dir() -> Path:
    """The folder of bench_classify.py's models (they do not depend on the raster size)."""
    import bench_classify

    ready = sorted(common.DATA.glob("classify_real_*/models.json"))
    workdir = ready[0].parent if ready else common.DATA / "classify_real_2000"
    workdir.mkdir(parents=True, exist_ok=True)
    bench_classify.prepare_models(workdir)
    return workdir


def prepare(step: str, size: int, model: str = "default") -> list:
    """Generates the step's data at ``size`` (not timed); returns the command to time."""
    py = sys.executable
    plugins = common.import_landfusion()
    if step == "classify":
        out = common.DATA / f"scaling_classify_{size}.tif"
        return [py, "-c", CLASSIFY.format(plugins=plugins, raster=str(realdata.mosaic(size)),
                                          model=str(models_dir() / CLASSIFY_MODELS[model][1]),
                                          out=str(out))]
    if step == "indices":
        code = ("import bench_indices as b; b.make_tile(); print(b.OURS.format(plugins=b.PLUGINS, "
                "tile=str(b.TILE), out=str(b.DATA / 'scaling.tif'), "
                "indices=['NDVI', 'SAVI', 'BAI', 'NDWI'], compress='NONE'))")
    else:
        code = ("import bench_coregister as b; b.make_data(); out = b.DATA / 'out'; "
                "out.mkdir(exist_ok=True); print(b.OURS.format(plugins=b.PLUGINS, "
                "out=str(out / 'scaling.tif'), s2=[str(b.S2_10M), str(b.S2_B11)], "
                "scl=str(b.SCL), s1=str(b.S1), bands=['B02', 'B03', 'B04', 'B08', 'B11'], "
                "indices=['NDVI'], ratio=True, reference=None))")
    env = dict(os.environ, LANDFUSION_BENCH_SIZE=str(size))
    script = subprocess.run([py, "-c", code], cwd=HERE, env=env, capture_output=True, text=True,
                            check=True).stdout
    return [py, "-c", script]


def comparisons(steps, sizes, models) -> list:
    """(step label, [Method per size]) for every step to measure."""
    found = []
    for step in steps:
        if step == "classify":
            if not realdata.available():
                print("(TerraMind chips not found under ../shared/data: classify not measured)\n")
                continue
            for key in models:
                label, _, compile_mode = CLASSIFY_MODELS[key]
                env = common.child_env({"LANDFUSION_CACHE_DIR": common.DATA / "compiled_cache",
                                        "LANDFUSION_COMPILE": compile_mode})
                methods = [common.Method(f"{size}²", prepare(step, size, key), env,
                                         before=SCALING_OUTPUTS) for size in sizes]
                if compile_mode == "always":  # compile once, outside the timed runs
                    common.measure(methods[0].argv, env)
                found.append((f"classify: {label}", methods))
        else:
            found.append((STEP_LABELS[step],
                          [common.Method(f"{size}²", prepare(step, size), before=SCALING_OUTPUTS)
                           for size in sizes]))
    return found


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="2000,4000,10980")
    parser.add_argument("--steps", default="classify,indices,stack")
    parser.add_argument("--repeats", type=int, default=common.REPEATS)
    parser.add_argument("--classify-models", default="default",
                        help="comma-separated: default (the default forest, RF 30), rf (RF 100), "
                             "gbm (LightGBM, compiled)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    for label, methods in comparisons(args.steps.split(","), sizes,
                                      args.classify_models.split(",")):
        summaries = common.compare(methods, methods[0].label, repeats=args.repeats,
                                   as_time_ratio=True, title=f"Scaling, {label}.")
        rows += [(label, size, s) for size, s in zip(sizes, summaries)]
    print("| step | size | median time (s) | range (s) | k px/s | time per pixel vs "
          f"{sizes[0]}² | cores used | peak memory (MB) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, size, s in rows:
        first = next(r for r in rows if r[0] == label)
        per_pixel = (s["seconds"] / size ** 2) / (first[2]["seconds"] / first[1] ** 2)
        print(f"| {label} | {size}² | {s['seconds']:.1f} | {s['seconds_range'][0]:.1f}–"
              f"{s['seconds_range'][1]:.1f} | {size * size / s['seconds'] / 1e3:.0f} | "
              f"{per_pixel:.2f} | {s['cores']:.2f} | {s['peak_mb']:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
