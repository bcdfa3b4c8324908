"""Checks an exported model against the estimator it came from, on rows of its training data."""

from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np

from ..errors import ModelError


def run_on_sample(onnx_model, X: np.ndarray, outputs: Sequence[str], seed: int = 0,
                  limit: int = 20000, what: str = "ONNX model") -> Tuple[np.ndarray, list]:
    """Runs an in-memory ONNX model on up to ``limit`` rows of ``X`` drawn at random.

    Args:
        outputs: names of the graph outputs to return.
        what: the model, as named in the error message ('ONNX model', 'change model').

    Returns:
        The rows run (float32) and the outputs, in the order of ``outputs``.

    Raises:
        ModelError: onnxruntime cannot load or run the model.
    """
    import onnxruntime as ort

    from .pixel_model import session_options

    rng = np.random.default_rng(seed)
    index = rng.choice(X.shape[0], size=min(limit, X.shape[0]), replace=False)
    rows = np.ascontiguousarray(X[index], dtype=np.float32)
    try:
        session = ort.InferenceSession(onnx_model.SerializeToString(), session_options(),
                                       providers=["CPUExecutionProvider"])
        return rows, session.run(list(outputs), {"X": rows})
    except Exception as exc:
        raise ModelError(f"The exported {what} cannot be run by onnxruntime: {exc}") from exc
