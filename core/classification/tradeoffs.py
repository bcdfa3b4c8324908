"""The accuracy/speed trade-off of pixel classifiers, for the training report.

Two pieces of data the report shows side by side so users choose a model knowingly:

- :func:`prediction_speed`: the trained model's own prediction throughput on this machine
  (onnxruntime as the classification engine runs it, all cores, on the training pixels), with
  its tree sizes and file size;
- :data:`TRADEOFFS`: accuracy and speed of the candidate models measured on held-out cells of
  real labelled chips by bench/bench_models.py (figures copied from its output, with the load
  the machine had).
"""

from __future__ import annotations

import html
import time
from types import SimpleNamespace

import numpy as np

from ..runtime import thread_count

#: Held-out accuracy and throughput of candidate models (bench/bench_models.py; TerraMind
#: S1+S2 chips, 20 features, 7 classes, held-out 32-pixel cells; 2 cores). Speeds are those of
#: the classification engine's kernel (forests in groups of trees, LightGBM compiled), given
#: per CPU core-second because the machine was shared: a process with both cores to itself gets
#: up to about twice that.
TRADEOFFS = {
    "source": "bench/bench_models.py on held-out 32-pixel cells of three TerraMind S1+S2 chips "
              "(20 features, 7 classes), 2 threads, 2026-11-30, load average 8-11 on 2 cores; "
              "speed in k pixels per CPU core-second of the classification engine",
    "rows": [
        {"model": "RF 30 trees, full depth (default)", "oa": 0.826, "macro_f1": 0.597,
         "nodes_per_tree": 14284, "depth": 40, "kpx_s": "449 per core"},
        {"model": "RF 30 trees, min 3 samples per leaf", "oa": 0.826, "macro_f1": 0.594,
         "nodes_per_tree": 9775, "depth": 37, "kpx_s": "450 per core"},
        {"model": "RF 50 trees, min 3 samples per leaf", "oa": 0.827, "macro_f1": 0.598,
         "nodes_per_tree": 9788, "depth": 38, "kpx_s": "282 per core"},
        {"model": "RF 100 trees, depth 20", "oa": 0.828, "macro_f1": 0.599,
         "nodes_per_tree": 9745, "depth": 20, "kpx_s": "163 per core"},
        {"model": "RF 100 trees, full depth (Trees = 100)", "oa": 0.829, "macro_f1": 0.6,
         "nodes_per_tree": 14307, "depth": 44, "kpx_s": "143 per core"},
        {"model": "LightGBM 100 x 31 leaves (compiled)", "oa": 0.798, "macro_f1": 0.566,
         "nodes_per_tree": 60, "depth": 21, "kpx_s": "444 per core"},
    ],
}


def tree_structure(model) -> dict:
    """Trees, mean nodes per tree and deepest tree of a fitted tree ensemble ({} otherwise)."""
    final = model.steps[-1][1] if hasattr(model, "steps") else model
    if hasattr(final, "booster_"):
        from .gbm import tree_summary

        return tree_summary(final)
    trees = getattr(final, "estimators_", None)
    if trees is None and hasattr(final, "tree_"):
        trees = [final]
    if trees is None or not len(trees) or not hasattr(np.ravel(trees)[0], "tree_"):
        return {}
    trees = list(np.ravel(trees))
    return {"trees": len(trees),
            "nodes_per_tree": float(np.mean([t.tree_.node_count for t in trees])),
            "max_depth": int(max(t.tree_.max_depth for t in trees))}


def prediction_speed(onnx_model, model, X: np.ndarray, threads: int = 0,
                     pixels: int = 200_000) -> dict:
    """Measures the ONNX model's throughput (k pixels/s, onnxruntime, all cores) on ``pixels``
    training pixels (repeated when fewer), and describes the model's size."""
    from concurrent.futures import ThreadPoolExecutor

    import onnxruntime as ort

    from ..models.pixel_model import session_options
    from .classify import predict_pixels_parallel
    from .forest_groups import grouped_forest

    workers = thread_count(threads)
    data = np.ascontiguousarray(np.resize(X.astype(np.float32), (pixels, X.shape[1])))
    session = ort.InferenceSession(onnx_model.SerializeToString(), session_options(1),
                                   providers=["CPUExecutionProvider"])
    classes = getattr(model, "classes_", None)
    info = SimpleNamespace(input_name="X", label_output="label",
                           probability_output="probabilities",
                           classes=[SimpleNamespace(value=v) for v in
                                    (classes if classes is not None else [])])

    with ThreadPoolExecutor(max_workers=workers) as pool:
        forest = grouped_forest(onnx_model, session, info, pool, workers)

        def predict(pixels_):
            if forest is not None:
                return forest.predict(pixels_)
            return predict_pixels_parallel(session, info, pixels_, pool, workers)

        predict(data[:20000])  # warm up
        start = time.perf_counter()
        predict(data)
        seconds = time.perf_counter() - start
    result = {"onnxruntime_kpx_s": round(pixels / seconds / 1e3, 1), "threads": workers,
              "model_mb": round(onnx_model.ByteSize() / 2 ** 20, 2),
              "tree_groups": len(forest.sessions) if forest is not None else 0}
    result.update(tree_structure(model))
    return result


def tradeoffs_html(report: dict) -> str:
    """The report's 'Speed' section: this model's measured speed and the reference table."""
    e = html.escape
    speed = report.get("speed") or {}
    parts = ["<h2>Speed and accuracy trade-off</h2>"]
    if speed:
        shape = ""
        if "trees" in speed:
            shape = (f"; {speed['trees']} trees, {speed['nodes_per_tree']:.0f} nodes per tree, "
                     f"depth up to {speed['max_depth']}")
        groups = (f" as {speed['tree_groups']} groups of trees, as Classify raster runs it"
                  if speed.get("tree_groups") else "")
        parts.append(f"<p>This model predicts {speed['onnxruntime_kpx_s']:.0f} k pixels/s with "
                     f"onnxruntime{groups} on {speed['threads']} threads of this machine (measured "
                     f"on the training pixels); model file {speed['model_mb']:.1f} MB{e(shape)}."
                     "</p>")
    table = report.get("tradeoffs") or {}
    if table.get("rows"):
        parts.append(f"<p><small>Reference: {e(table['source'])}.</small></p><table><tr>"
                     "<th class='l'>model</th><th>overall accuracy</th><th>macro F1</th>"
                     "<th>nodes per tree</th><th>depth</th><th>k px/s</th></tr>")
        for row in table["rows"]:
            parts.append(f"<tr><td class='l'>{e(row['model'])}</td><td>{row['oa']:.3f}</td>"
                         f"<td>{row['macro_f1']:.3f}</td><td>{row['nodes_per_tree']:.0f}</td>"
                         f"<td>{row['depth']}</td><td>{e(str(row['kpx_s']))}</td></tr>")
        parts.append("</table>")
    return "\n".join(parts)
