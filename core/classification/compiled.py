"""Compiled inference for LightGBM models: native code as a cache, ONNX as the source of truth.

A LightGBM model file is an ONNX graph that onnxruntime always runs. When the optional package
``lleaves`` (LLVM-compiled LightGBM trees) is installed, the same trees, taken from the LightGBM
model text embedded in the file's metadata, are compiled to native code for this CPU once and
kept in a per-user cache folder under a key made of the model file's hash, the CPU and the
compiler versions. Before a compiled model is used it is checked against the ONNX graph on
pixels placed on both sides of every threshold of the model: classes must be identical and
probabilities equal to float precision; otherwise, or when anything about compiling fails,
onnxruntime runs the model (same classes, slower) and the reason is logged.

Compiling takes from seconds to a minute or two, so it is done only when it pays: when a
compiled form is already cached, or when the raster has at least :data:`COMPILE_MIN_PIXELS`
pixels. ``LANDFUSION_COMPILE=never`` (or ``always``) in the environment overrides that.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import tempfile
from pathlib import Path
from typing import Optional

import numpy as np

from ..runtime import Log, no_log
from .gbm import METADATA_KEY

#: Rasters with at least this many pixels are worth compiling a model for (a first compile
#: takes about as long as onnxruntime needs for this many pixels of a 100-round model).
COMPILE_MIN_PIXELS = 10_000_000
#: Pixels of the check against the ONNX graph.
CHECK_PIXELS = 4096


def cache_folder() -> Path:
    """The per-user folder of compiled models (``LANDFUSION_CACHE_DIR`` overrides it)."""
    configured = os.environ.get("LANDFUSION_CACHE_DIR")
    if configured:
        return Path(configured)
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.expanduser("~")
    elif sys.platform == "darwin":
        base = os.path.expanduser("~/Library/Caches")
    else:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(base) / "landfusion" / "compiled"


def compiler_versions() -> Optional[str]:
    """``"lleaves X / llvmlite Y"`` when both import, else None."""
    try:
        import lleaves
        import llvmlite
    except Exception:  # ImportError, or an llvmlite whose native library fails to load
        return None
    version = getattr(lleaves, "__version__", None)
    if version is None:
        with contextlib.suppress(Exception):
            from importlib.metadata import version as dist_version

            version = dist_version("lleaves")
    return f"lleaves {version} / llvmlite {llvmlite.__version__}"


def _cpu_key() -> str:
    import llvmlite.binding as llvm

    with contextlib.suppress(Exception):
        llvm.initialize_native_target()
    return f"{llvm.get_process_triple()} {llvm.get_host_cpu_name()} " \
           f"{llvm.get_host_cpu_features().flatten()}"


def cache_key(model_path: str) -> str:
    """Hash of the model file, the CPU and the compiler versions."""
    digest = hashlib.sha256()
    with open(model_path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    digest.update((compiler_versions() or "").encode())
    digest.update(_cpu_key().encode())
    return digest.hexdigest()[:32]


def check_pixels(text: str, bands: int, count: int = CHECK_PIXELS, seed: int = 0) -> np.ndarray:
    """(count, bands) float32 pixels whose values sit on and just above the model's thresholds,
    so that every split is tested on both sides."""
    features, thresholds = [], []
    for line in text.splitlines():
        if line.startswith("split_feature="):
            features.extend(int(v) for v in line.split("=", 1)[1].split())
        elif line.startswith("threshold="):
            thresholds.extend(float(v) for v in line.split("=", 1)[1].split())
    rng = np.random.default_rng(seed)
    pixels = rng.normal(0, 1, size=(count, bands)).astype(np.float32)
    by_feature = {}
    for f, t in zip(features, thresholds):
        by_feature.setdefault(f, []).append(t)
    for f, values in by_feature.items():
        values = np.asarray(values, dtype=np.float32)
        chosen = values[rng.integers(0, len(values), size=count)]
        up = rng.random(count) < 0.5
        chosen[up] = np.nextafter(chosen[up], np.float32(np.inf))
        pixels[:, f] = chosen
    return pixels


class CompiledModel:
    """A compiled LightGBM model: ``predict(X)`` returns (labels, float32 probabilities)."""

    def __init__(self, model, class_values: np.ndarray, threads: int):
        self.model = model
        self.class_values = np.asarray(class_values)
        self.threads = max(1, int(threads))

    def predict(self, X: np.ndarray) -> tuple:
        """Classes and probabilities of (N, bands) pixels (ties go to the first class)."""
        data = np.ascontiguousarray(X, dtype=np.float64)
        probabilities = self.model.predict(data, n_jobs=self.threads if len(data) >= 20000 else 1)
        probabilities = np.asarray(probabilities, dtype=np.float32).reshape(len(data), -1)
        np.minimum(probabilities, np.float32(1), out=probabilities)
        return self.class_values[np.argmax(probabilities, axis=1)], probabilities


def _compile(text: str, target: Path, log: Log):
    """Compiles model text with lleaves into ``target`` (atomically) and returns the model."""
    import lleaves

    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".compile-") as work:
        model_file = os.path.join(work, "model.txt")
        with open(model_file, "w", encoding="utf-8") as handle:
            handle.write(text)
        model = lleaves.Model(model_file=model_file)
        if target.exists():
            model.compile(cache=str(target))
            return model
        log("Compiling the model for this CPU (once; kept in the cache folder "
            f"{target.parent})...")
        temporary = os.path.join(work, "compiled.o")
        model.compile(cache=temporary)
        os.replace(temporary, target)
        return model


def load_compiled(model_path: str, info, session, threads: int, pixels: int = 0,
                  log: Log = no_log) -> Optional[CompiledModel]:
    """Returns a checked compiled form of a LightGBM model file, or None to use onnxruntime.

    Args:
        model_path: the LandFusion ONNX model file.
        info: its model card (the LightGBM text is read from its ``extra`` entries).
        session: an onnxruntime session of the file (the reference of the check).
        threads: prediction threads of the compiled model.
        pixels: pixels about to be classified (compiling pays only on large rasters).
    """
    text = (getattr(info, "extra", None) or {}).get(METADATA_KEY)
    if not text:
        return None
    mode = os.environ.get("LANDFUSION_COMPILE", "auto").strip().lower()
    if mode == "never":
        return None
    versions = compiler_versions()
    if versions is None:
        log("The optional package 'lleaves' is not installed: onnxruntime runs this LightGBM "
            "model (identical classes; installing lleaves makes it several times faster).")
        return None
    try:
        target = cache_folder() / f"{cache_key(model_path)}.o"
        if not target.exists() and mode != "always" and pixels < COMPILE_MIN_PIXELS:
            return None
        model = _compile(text, target, log)
        compiled = CompiledModel(model, [c.value for c in info.classes], threads)
        X = check_pixels(text, info.band_count)
        labels, probabilities = session.run([info.label_output, info.probability_output],
                                            {info.input_name: X})
        mine, my_probabilities = compiled.predict(X)
        reference = np.asarray(probabilities, dtype=np.float32)
        ordered = np.sort(my_probabilities, axis=1)
        clear = ordered[:, -1] - (ordered[:, -2] if ordered.shape[1] > 1 else 0) > 1e-5
        if not np.array_equal(np.asarray(labels).reshape(-1)[clear], mine[clear]) or \
                np.max(np.abs(reference - my_probabilities)) > 1e-4:
            log("The compiled model does not reproduce the ONNX model exactly; onnxruntime runs "
                "it instead.")
            with contextlib.suppress(OSError):
                target.unlink()
            return None
    except Exception as exc:  # any compiler or cache failure: fall back, never fail the run
        log(f"Compiled inference is unavailable ({type(exc).__name__}: {exc}); onnxruntime runs "
            "the model.")
        return None
    log(f"Using the compiled model ({versions}); checked against the ONNX model.")
    return compiled

