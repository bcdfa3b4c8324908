"""Benchmark: accuracy and speed of candidate pixel classifiers on real labels.

Trains each candidate on the training cells of the three TerraMind S1+S2 chips (20 features,
7 land-cover classes; see realdata.py) and of the Sen1Floods11 Spain chip (16 features,
water/land), and reports on the held-out cells: overall accuracy and macro-F1, the trees' size
(nodes per tree, deepest leaf), the ONNX file size, and the prediction throughput of the engine's
kernels on real pixels (onnxruntime with the engine's per-chunk threads; for LightGBM also the
compiled form), measured in interleaved rounds (median and range) with the load printed.

Usage: python bench/bench_models.py [--pixels 400000] [--rounds 3]
"""

import argparse
import os
import statistics
import sys
import time
import types
from concurrent.futures import ThreadPoolExecutor

import numpy as np

import common
import realdata

common.import_landfusion()

CANDIDATES = {
    "RF 100 trees, full depth": ("random_forest", {"n_estimators": 100}),
    "RF 100 trees, depth 20": ("random_forest", {"n_estimators": 100, "max_depth": 20}),
    "RF 50 trees, min 3 per leaf": ("random_forest", {"n_estimators": 50, "min_samples_leaf": 3}),
    "RF 30 trees, full depth": ("random_forest", {"n_estimators": 30}),
    "RF 30 trees, min 3 per leaf": ("random_forest", {"n_estimators": 30, "min_samples_leaf": 3}),
    "LightGBM 100 x 31 leaves": ("lightgbm", {}),
}
#: Candidates also scored on Sen1Floods11 (the default and its reference).
ON_FLOODS = ("RF 100 trees, full depth", "RF 30 trees, full depth", "RF 30 trees, min 3 per leaf",
             "LightGBM 100 x 31 leaves")


def fit(key, parameters, X, y):
    from landfusion.core.classification.train import build_classifier

    model = build_classifier(key, parameters, seed=0, threads=common.CORES)
    model.fit(X, y)
    return model


def to_onnx(key, model, bands):
    from landfusion.core.classification import gbm
    from landfusion.core.models.pixel_model import sklearn_to_onnx

    if key == "lightgbm":
        return gbm.lightgbm_to_onnx(model, bands)
    return sklearn_to_onnx(model, bands)


def scores(model, X, y):
    from sklearn.metrics import accuracy_score, f1_score

    predicted = model.predict(X)
    return accuracy_score(y, predicted), f1_score(y, predicted, average="macro")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pixels", type=int, default=400_000)
    parser.add_argument("--rounds", type=int, default=common.REPEATS)
    args = parser.parse_args()
    if not realdata.available():
        print("(TerraMind chips not found under ../shared/data: model benchmark skipped)")
        return 0
    import onnxruntime as ort

    from landfusion.core.classification import compiled as compiled_mod
    from landfusion.core.classification import forest_groups
    from landfusion.core.classification import gbm
    from landfusion.core.classification.classify import predict_pixels_parallel
    from landfusion.core.classification.tradeoffs import tree_structure
    from landfusion.core.models.pixel_model import session_options

    data = realdata.terramind()
    floods = realdata.floods()
    pixels = np.ascontiguousarray(np.resize(data["X_test"], (args.pixels, data["X_test"].shape[1])))
    workers = common.CORES
    kernels, rows = {}, []
    cache = common.DATA / "compiled_cache"
    cache.mkdir(parents=True, exist_ok=True)
    os.environ["LANDFUSION_CACHE_DIR"] = str(cache)
    for label, (key, parameters) in CANDIDATES.items():
        started = time.perf_counter()
        model = fit(key, parameters, data["X_train"], data["y_train"])
        train_seconds = time.perf_counter() - started
        oa, f1 = scores(model, data["X_test"], data["y_test"])
        flood_oa = float("nan")
        if floods and label in ON_FLOODS:
            flood_model = fit(key, parameters, floods["X_train"], floods["y_train"])
            flood_oa = scores(flood_model, floods["X_test"], floods["y_test"])[0]
        onnx_model = to_onnx(key, model, pixels.shape[1])
        session = ort.InferenceSession(onnx_model.SerializeToString(), session_options(1),
                                       providers=["CPUExecutionProvider"])

        class Info:
            input_name, label_output, probability_output = "X", "label", "probabilities"

        kernels[label + " (onnxruntime)"] = (session, Info)
        card = types.SimpleNamespace(input_name="X", label_output="label",
                                     probability_output="probabilities",
                                     classes=[types.SimpleNamespace(value=v)
                                              for v in model.classes_])
        grouped = forest_groups.grouped_forest(onnx_model, session, card, None, workers)
        if grouped is not None:
            kernels[label + " (grouped)"] = (grouped, None)
        shape = tree_structure(model)
        row = {"label": label, "oa": oa, "f1": f1, "flood_oa": flood_oa,
               "mb": onnx_model.ByteSize() / 2 ** 20, "train_s": train_seconds, **shape}
        if key == "lightgbm" and compiled_mod.compiler_versions():
            import lleaves

            path = common.DATA / "lightgbm_model.txt"
            path.write_text(gbm.model_text(model))
            lleaves_model = lleaves.Model(model_file=str(path))
            started = time.perf_counter()
            lleaves_model.compile(cache=str(cache / f"bench_{abs(hash(label))}.o"))
            row["compile_s"] = time.perf_counter() - started
            kernels[label + " (compiled)"] = (compiled_mod.CompiledModel(
                lleaves_model, model.classes_, workers), None)
            same = np.array_equal(kernels[label + " (compiled)"][0].predict(data["X_test"])[0],
                                  session.run(["label"], {"X": data["X_test"]})[0])
            row["compiled_identical"] = same
        rows.append(row)
        print(f"  trained {label} in {train_seconds:.0f} s", file=sys.stderr, flush=True)

    before = common.load_average()
    timings = {name: [] for name in kernels}
    cores = {name: [] for name in kernels}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for _, (kernel, info) in kernels.items():
            if info is None and hasattr(kernel, "pool"):
                kernel.pool = pool
        for r in range(args.rounds):
            names = list(kernels) if r % 2 == 0 else list(reversed(kernels))
            for name in names:
                kernel, info = kernels[name]
                start, cpu = time.perf_counter(), time.process_time()
                if info is None:
                    kernel.predict(pixels)
                else:
                    predict_pixels_parallel(kernel, info, pixels, pool, workers)
                timings[name].append(time.perf_counter() - start)
                cores[name].append((time.process_time() - cpu) / timings[name][-1])
    after = common.load_average()

    print(f"Candidate pixel classifiers on real labels: trained on the training cells, scored on "
          f"held-out 32-pixel cells. TerraMind: 3 chips, 20 features, 7 classes, "
          f"{data['y_train'].size} training / {data['y_test'].size} test pixels. Sen1Floods11 "
          f"Spain: 16 features, water/land. Throughput: {args.pixels} real pixels, {workers} "
          f"threads, {args.rounds} interleaved rounds (median, range).\n")
    print(f"Load average before: {before}; after: {after}.\n")
    print("| model | OA TerraMind | macro-F1 | OA Sen1Floods11 | trees | nodes per tree | "
          "depth | ONNX MB | one session k px/s | engine k px/s | engine cores | "
          "engine k px/s per core |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")

    def speed(name):
        if name not in timings:
            return "–"
        values = [args.pixels / t / 1e3 for t in timings[name]]
        return f"{statistics.median(values):.0f} ({min(values):.0f}–{max(values):.0f})"

    def engine(label):
        for kind in ("compiled", "grouped", "onnxruntime"):
            if f"{label} ({kind})" in timings:
                return f"{label} ({kind})", kind
        return None, "–"

    for row in rows:
        flood = "–" if np.isnan(row["flood_oa"]) else f"{row['flood_oa']:.3f}"
        name, kind = engine(row["label"])
        used = statistics.median(cores[name])
        per_core = statistics.median(args.pixels / t / 1e3 / c
                                     for t, c in zip(timings[name], cores[name]))
        print(f"| {row['label']} | {row['oa']:.3f} | {row['f1']:.3f} | {flood} | "
              f"{row.get('trees', '–')} | {row.get('nodes_per_tree', 0):.0f} | "
              f"{row.get('max_depth', '–')} | {row['mb']:.1f} | "
              f"{speed(row['label'] + ' (onnxruntime)')} | {speed(name)} ({kind}) | "
              f"{used:.2f} | {per_core:.0f} |")
    for row in rows:
        if "compile_s" in row:
            print(f"\n{row['label']}: compiled in {row['compile_s']:.0f} s (once per model and "
                  f"CPU, then cached); compiled classes identical to onnxruntime's on the test "
                  f"pixels: {row['compiled_identical']}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
