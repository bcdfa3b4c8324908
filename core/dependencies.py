"""The Python packages LandFusion needs, declared once.

QGIS ships numpy and GDAL; rasterio and scikit-learn come from the operating system's packages
(so they use the same GDAL as QGIS); onnxruntime and skl2onnx come from pip.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Dependency:
    """One Python package: how to install it, import it, and who needs it."""

    pip_name: str
    import_name: str
    minimum: str
    needed_for: str
    system_package: str = ""


DEPENDENCIES = (
    Dependency("numpy", "numpy", "1.21", "everything", "python3-numpy"),
    Dependency("GDAL", "osgeo.gdal", "3.4", "raster input/output", "python3-gdal"),
    Dependency("rasterio", "rasterio", "1.3", "raster input/output", "python3-rasterio"),
    Dependency("scikit-learn", "sklearn", "1.2", "training classifiers, accuracy metrics",
               "python3-sklearn"),
    Dependency("onnxruntime", "onnxruntime", "1.16", "classifying rasters, CNN inference"),
    Dependency("skl2onnx", "skl2onnx", "1.16", "saving trained classifiers as ONNX"),
    Dependency("onnx", "onnx", "1.14", "reading and writing ONNX model metadata"),
)


def _version_tuple(text: str) -> tuple:
    parts = []
    for piece in text.split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def check_dependencies() -> list:
    """Returns ``(dependency, installed_version_or_None, ok)`` for every dependency."""
    rows = []
    for dep in DEPENDENCIES:
        try:
            module = importlib.import_module(dep.import_name)
        except Exception:  # any import failure means unusable
            rows.append((dep, None, False))
            continue
        version = str(getattr(module, "__version__", "") or "")
        if dep.import_name == "osgeo.gdal":
            version = module.__version__
        ok = not version or _version_tuple(version) >= _version_tuple(dep.minimum)
        rows.append((dep, version, ok))
    return rows


def missing_message() -> str:
    """Returns install instructions for the missing or too-old packages, or ''."""
    bad = [(dep, version) for dep, version, ok in check_dependencies() if not ok]
    if not bad:
        return ""
    system = [d.system_package for d, _ in bad if d.system_package]
    pip = [d.pip_name for d, _ in bad if not d.system_package]
    lines = ["Missing or too old: " + ", ".join(
        f"{d.pip_name} (needs >= {d.minimum}, found {v or 'none'})" for d, v in bad) + "."]
    if system:
        lines.append("Install with the system package manager: sudo apt install " + " ".join(system))
    if pip:
        lines.append("Install into QGIS's Python: python3 -m pip install --user " + " ".join(pip))
    return " ".join(lines)
