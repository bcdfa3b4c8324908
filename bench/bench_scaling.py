"""Benchmark: time and peak memory of classify, indices and stack against raster size.

For each size (``--sizes``, default 2000,4000,10980) runs, each in its own process (peak memory
from /usr/bin/time): classification of the real-spectra mosaic (realdata.py) with the default
LightGBM model and with the 100-tree Random Forest (models of bench_classify.py), the four default
spectral indices (bench_indices.py data) and the full co-registration stack (bench_coregister.py
data). Memory must stay flat as the size grows; time should grow with the pixels.

Usage: python bench/bench_scaling.py [--sizes 2000,4000,10980] [--steps classify,indices,stack]
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


def prepare(step: str, size: int) -> list:
    """Generates the step's data at ``size`` (not timed); returns (label, argv) pairs to time."""
    py = sys.executable
    plugins = common.import_landfusion()
    env = dict(os.environ, LANDFUSION_BENCH_SIZE=str(size))
    if step == "classify":
        import bench_classify

        raster = realdata.mosaic(size)
        # The models do not depend on the raster size: reuse those of any earlier run.
        ready = sorted(common.DATA.glob("classify_real_*/models.json"))
        workdir = ready[0].parent if ready else common.DATA / f"classify_real_{size}"
        workdir.mkdir(parents=True, exist_ok=True)
        bench_classify.prepare_models(workdir)
        return [(f"classify, {name}", [py, "-c", CLASSIFY.format(
            plugins=plugins, raster=str(raster), model=str(workdir / model),
            out=str(common.DATA / f"scaling_classify_{size}.tif"))])
            for name, model in (("LightGBM 100 x 31 (compiled)", "gbm.onnx"),
                                ("RF 100 (onnxruntime)", "rf100.onnx"))]
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
    script = subprocess.run([py, "-c", code], cwd=HERE, env=env, capture_output=True, text=True,
                            check=True).stdout
    label = ("indices: NDVI, SAVI, BAI, NDWI (uncompressed)" if step == "indices"
             else "stack: warps + 10 m bands + mask + VV/VH + NDVI (9 bands)")
    return [(label, [py, "-c", script])]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="2000,4000,10980")
    parser.add_argument("--steps", default="classify,indices,stack")
    args = parser.parse_args()
    before = common.load_average()
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        for step in args.steps.split(","):
            if step == "classify" and not realdata.available():
                continue
            for label, argv in prepare(step, size):
                env = common.child_env({"LANDFUSION_CACHE_DIR": common.DATA / "compiled_cache",
                                        "LANDFUSION_COMPILE": "always"})
                result = common.measure(argv, env)
                rows.append((label, size, result))
                print(f"  {label} {size}: {result['seconds']:.1f} s", file=sys.stderr, flush=True)
    print(f"Scaling (one run each; load average before: {before}, after: "
          f"{common.load_average()}; {common.CORES} cores; GDAL_CACHEMAX={common.GDAL_CACHE_MB} MB)"
          "\n")
    print("| step | size | time (s) | M px/s | cores used | peak memory (MB) |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, size, r in sorted(rows, key=lambda row: (row[0], row[1])):
        print(f"| {label} | {size}² | {r['seconds']:.1f} | {size * size / r['seconds'] / 1e6:.2f} "
              f"| {r['cores']:.2f} | {r['peak_mb']:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
