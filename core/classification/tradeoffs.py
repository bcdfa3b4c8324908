"""The accuracy/speed trade-off of pixel classifiers, for the training report.

Two pieces of data the report shows side by side so users choose a model knowingly:

- :func:`prediction_speed`: the trained model's own prediction throughput on this machine
  (onnxruntime, all cores, on the training pixels), with its tree sizes and file size;
- :data:`TRADEOFFS`: accuracy and speed of the candidate models measured on held-out cells of
  real labelled chips by bench/bench_models.py (figures copied from its output, with the load
  the machine had).
"""

from __future__ import annotations

import html
import os
import time

import numpy as np

#: Held-out accuracy and throughput of candidate models (bench/bench_models.py; TerraMind
#: S1+S2 chips, 20 features, 7 classes, held-out 32-pixel cells; 2 cores).
TRADEOFFS = {
    "source": "bench/bench_models.py on held-out 32-pixel cells of three TerraMind S1+S2 chips "
              "(20 features, 7 classes), 2 threads; speeds measured on a machine loaded about "
              "8x over its 2 cores, so compare them with each other, not with your machine",
    "rows": [
        {"model": "RF 100 trees, full depth", "oa": 0.829, "macro_f1": 0.6,
         "nodes_per_tree": 14307, "depth": 44, "kpx_s": "11 (onnxruntime)"},
        {"model": "RF 30 trees, full depth", "oa": 0.826, "macro_f1": 0.597,
         "nodes_per_tree": 14284, "depth": 40, "kpx_s": "49 (onnxruntime)"},
        {"model": "LightGBM 100 x 31 leaves", "oa": 0.802, "macro_f1": 0.573,
         "nodes_per_tree": 59, "depth": 21, "kpx_s": "89 (compiled)"},
        {"model": "LightGBM 200 x 15 leaves", "oa": 0.811, "macro_f1": 0.588,
         "nodes_per_tree": 28, "depth": 14, "kpx_s": "50 (compiled)"},
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

    workers = threads if threads and threads > 0 else (os.cpu_count() or 1)
    data = np.ascontiguousarray(np.resize(X.astype(np.float32), (pixels, X.shape[1])))
    session = ort.InferenceSession(onnx_model.SerializeToString(), session_options(1),
                                   providers=["CPUExecutionProvider"])

    class Info:
        input_name, label_output, probability_output = "X", "label", "probabilities"

    with ThreadPoolExecutor(max_workers=workers) as pool:
        predict_pixels_parallel(session, Info, data[:20000], pool, workers)  # warm up
        start = time.perf_counter()
        predict_pixels_parallel(session, Info, data, pool, workers)
        seconds = time.perf_counter() - start
    result = {"onnxruntime_kpx_s": round(pixels / seconds / 1e3, 1), "threads": workers,
              "model_mb": round(onnx_model.ByteSize() / 2 ** 20, 2)}
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
        parts.append(f"<p>This model predicts {speed['onnxruntime_kpx_s']:.0f} k pixels/s with "
                     f"onnxruntime on {speed['threads']} threads of this machine (measured on the "
                     f"training pixels); model file {speed['model_mb']:.1f} MB{e(shape)}.</p>")
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
