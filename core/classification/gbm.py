"""LightGBM pixel classifiers: training, exact float32 thresholds, ONNX export.

LightGBM grows trees leaf-wise with a bound on the leaves per tree (``num_leaves``), so a
boosted model of 100 rounds x 31 leaves visits about 5 nodes per tree and class, where a
full-depth Random Forest trained on real land-cover labels visits 30 or more: on held-out real
chips it classifies several times faster at an overall accuracy within about a point of a
100-tree forest (see the model-choice benchmark, bench/bench_models.py).

Exactness. LightGBM compares ``x <= threshold`` in double precision; an ONNX tree ensemble
stores its thresholds as float32, and rounding a threshold to the nearest float32 can put it on
the other side of a pixel value (a real-data case flipped a class probability from 0.98 to
0.02). Since pixels are float32, ``x <= t`` holds exactly when ``x <= t32`` with ``t32`` the
largest float32 not above ``t``. :class:`LightGBMClassifier` therefore replaces every threshold
by that value right after fitting: LightGBM's own predictions on float32 pixels do not change,
and the ONNX graph (and any compiled form of the same trees) takes identical decisions.

The model file stays ONNX (converted with onnxmltools' LightGBM converter); the LightGBM model
text is embedded in its metadata so that :mod:`compiled` can build a faster native form as a
cache, checked against the ONNX graph.
"""

from __future__ import annotations

import re
from typing import Optional

import numpy as np

from ..errors import DependencyError, ModelError
from ..runtime import thread_count

#: Key of the LightGBM model text in a model file's metadata (without the ``landfusion.`` prefix).
METADATA_KEY = "lightgbm_model"

#: Defaults; any LightGBM scikit-learn parameter may be overridden. Chosen on held-out cells of
#: real chips (bench/bench_models.py): more leaves or rounds bought no accuracy there.
DEFAULT_PARAMETERS = {"n_estimators": 100, "num_leaves": 31, "learning_rate": 0.1,
                      "min_child_samples": 20, "subsample": 1.0, "colsample_bytree": 1.0}

_THRESHOLD_LINE = re.compile(r"^threshold=(.*)$", re.MULTILINE)
_TREE_SIZES_LINE = re.compile(r"^tree_sizes=.*\n", re.MULTILINE)


def lightgbm_available() -> bool:
    """True when the ``lightgbm`` package can be imported."""
    try:
        import lightgbm  # noqa: F401
    except ImportError:
        return False
    return True


def require_lightgbm() -> None:
    """Raises DependencyError naming the package and the fix when LightGBM is missing."""
    if not lightgbm_available():
        raise DependencyError(
            "LightGBM is not installed. Install the Python package 'lightgbm' (and 'onnxmltools' "
            "to save the model) with the LandFusion dependency installer, or choose another "
            "algorithm such as Random Forest.")


def float32_floor(values: np.ndarray) -> np.ndarray:
    """The largest float32 not above each (float64) value, returned as float64."""
    values = np.asarray(values, dtype=np.float64)
    rounded = values.astype(np.float32)
    above = rounded.astype(np.float64) > values
    rounded[above] = np.nextafter(rounded[above], np.float32(-np.inf))
    return rounded.astype(np.float64)


def snap_model_text(text: str) -> str:
    """Returns LightGBM model text with every threshold replaced by :func:`float32_floor` of
    it (printed with 17 significant digits, so it reads back exactly)."""

    def replace(match):
        values = np.array([float(v) for v in match.group(1).split()], dtype=np.float64)
        snapped = float32_floor(values)
        return "threshold=" + " ".join(repr(float(v)) for v in snapped)

    # The header's byte sizes of the trees no longer hold; LightGBM reads trees without them.
    return _TREE_SIZES_LINE.sub("", _THRESHOLD_LINE.sub(replace, text))


def _classifier_class():
    import lightgbm

    class LightGBMClassifier(lightgbm.LGBMClassifier):
        """``lightgbm.LGBMClassifier`` whose thresholds are float32-exact after fitting (see the
        module documentation), with integer class values kept as int64."""

        def fit(self, X, y, *args, **kwargs):
            y = np.asarray(y)
            if y.dtype.kind in "iub":
                y = y.astype(np.int64)
            super().fit(np.asarray(X, dtype=np.float32), y, *args, **kwargs)
            text = snap_model_text(self.booster_.model_to_string())
            self._Booster = lightgbm.Booster(model_str=text)
            return self

    return LightGBMClassifier


def build_lightgbm(parameters: Optional[dict] = None, seed: int = 0, threads: int = 0):
    """Returns an unfitted LightGBM classifier with :data:`DEFAULT_PARAMETERS` and overrides."""
    require_lightgbm()
    cls = _classifier_class()
    settings = dict(DEFAULT_PARAMETERS)
    settings.update(parameters or {})
    cores = thread_count(threads)
    return cls(random_state=seed, n_jobs=cores, verbose=-1, **settings)


def model_text(estimator) -> str:
    """The LightGBM model text of a fitted classifier (or a pipeline ending with one)."""
    final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    return final.booster_.model_to_string()


def lightgbm_to_onnx(estimator, band_count: int, input_name: str = "X"):
    """Converts a fitted LightGBM classifier (or a pipeline ending with one) to ONNX.

    The graph has the LandFusion layout: float32 input ``[N, band_count]``, outputs ``label``
    (int64 class values) and ``probabilities`` (float32 ``[N, n_classes]``).

    Raises:
        DependencyError: onnxmltools is missing.
        ModelError: the converter produced another layout.
    """
    try:
        from onnxmltools import convert_lightgbm
        from onnxmltools.convert.common.data_types import FloatTensorType
    except ImportError as exc:
        raise DependencyError(
            "Saving a LightGBM model needs the Python package 'onnxmltools'; install it with the "
            "LandFusion dependency installer.") from exc
    import copy

    import lightgbm

    final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    # onnxmltools finds its converter by exact type: hand it the same fitted model as a plain
    # LGBMClassifier (a shallow copy; the booster with snapped thresholds is shared).
    plain = copy.copy(final)
    plain.__class__ = lightgbm.LGBMClassifier
    model = convert_lightgbm(
        plain, initial_types=[(input_name, FloatTensorType([None, band_count]))], zipmap=False,
        target_opset=15)
    outputs = [o.name for o in model.graph.output]
    if outputs != ["label", "probabilities"]:
        raise ModelError(f"Unexpected outputs {outputs} after converting the LightGBM model.")
    # The converter declares the label output with one row; it has one per pixel.
    dims = model.graph.output[0].type.tensor_type.shape.dim
    if len(dims) == 1:
        dims[0].ClearField("dim_value")
        dims[0].dim_param = "N"
    return model


def tree_summary(estimator) -> dict:
    """Trees, leaves per tree and the deepest leaf of a fitted LightGBM classifier."""
    final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    info = final.booster_.dump_model()["tree_info"]

    def depth(node):
        if "split_index" not in node:
            return 0
        return 1 + max(depth(node["left_child"]), depth(node["right_child"]))

    leaves = [t["num_leaves"] for t in info]
    return {"trees": len(info), "nodes_per_tree": float(np.mean([2 * n - 1 for n in leaves])),
            "max_depth": int(max(depth(t["tree_structure"]) for t in info))}
