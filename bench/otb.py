"""Orfeo ToolBox as a classification baseline (Debian package ``otb-bin``).

OTB's Random Forest is OpenCV's. It is trained here on the same training pixels as the
benchmark's scikit-learn forest (``otbcli_TrainVectorClassifier`` on a point layer holding the
feature values), with the same number of trees, the same features per split (square root of
the band count) and splits down to two samples; OpenCV caps a tree's depth at 25, so the depth
asked for is ``min(depth of the scikit-learn forest, 25)``. OTB classifies with
``otbcli_ImageClassifier`` given LandFusion's memory budget as ``-ram`` and as many threads as
LandFusion uses. :func:`describe` prints that configuration with the table.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np

#: OpenCV's largest tree depth (``DTrees::setMaxDepth`` keeps ``min(depth, 25)``).
OPENCV_MAX_DEPTH = 25
TRAIN = "otbcli_TrainVectorClassifier"
CLASSIFY = "otbcli_ImageClassifier"


def available() -> bool:
    """True when OTB's command-line applications are installed."""
    return bool(shutil.which(TRAIN) and shutil.which(CLASSIFY))


def forest_settings(trees: int, depth: int) -> Dict[str, str]:
    """OTB's parameters for a forest shaped like a scikit-learn default forest."""
    return {
        "classifier": "rf",
        "classifier.rf.nbtrees": str(trees),
        "classifier.rf.max": str(min(depth, OPENCV_MAX_DEPTH)),
        "classifier.rf.min": "2",  # scikit-learn's min_samples_split
        "classifier.rf.var": "0",  # square root of the number of features, as scikit-learn
        "classifier.rf.acc": "0",  # grow every tree instead of stopping on OOB accuracy
        "rand": "0",
    }


def _write_samples(X: np.ndarray, y: np.ndarray, path: Path, fields: Sequence[str]) -> None:
    """One point per training pixel, with its feature values and class as attributes."""
    from osgeo import ogr, osr

    driver = ogr.GetDriverByName("GPKG")
    if path.exists():
        driver.DeleteDataSource(str(path))
    source = driver.CreateDataSource(str(path))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32633)
    layer = source.CreateLayer("samples", srs, ogr.wkbPoint)
    for name in fields:
        layer.CreateField(ogr.FieldDefn(name, ogr.OFTReal))
    layer.CreateField(ogr.FieldDefn("class", ogr.OFTInteger))
    definition = layer.GetLayerDefn()
    layer.StartTransaction()
    for i in range(X.shape[0]):
        feature = ogr.Feature(definition)
        for j, name in enumerate(fields):
            feature.SetField(name, float(X[i, j]))
        feature.SetField("class", int(y[i]))
        point = ogr.Geometry(ogr.wkbPoint)
        point.AddPoint_2D(float(i % 1000), float(i // 1000))
        feature.SetGeometry(point)
        layer.CreateFeature(feature)
    layer.CommitTransaction()
    source = None


def train(X: np.ndarray, y: np.ndarray, workdir: Path, trees: int, depth: int) -> Path:
    """Trains OTB's forest once (kept in ``workdir``); returns the model file."""
    model = workdir / f"otb_rf{trees}_depth{min(depth, OPENCV_MAX_DEPTH)}.txt"
    if model.exists():
        return model
    fields = [f"f{j:02d}" for j in range(X.shape[1])]
    samples = workdir / "otb_samples.gpkg"
    _write_samples(X, y, samples, fields)
    argv = [TRAIN, "-io.vd", str(samples), "-io.out", str(model), "-cfield", "class",
            "-feat", *fields]
    for key, value in forest_settings(trees, depth).items():
        argv += [f"-{key}", value]
    subprocess.run(argv, check=True, capture_output=True, text=True)
    return model


def classify_argv(raster: Path, model: Path, out: Path, ram_mb: int) -> List[str]:
    """The ImageClassifier command (uint8 classes)."""
    return [CLASSIFY, "-in", str(raster), "-model", str(model), "-out", str(out), "uint8",
            "-ram", str(ram_mb)]


def classify_env(threads: int, ram_mb: int) -> Dict[str, str]:
    """Threads and memory for OTB (ITK's thread pool; OTB's RAM hint)."""
    return {"ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS": str(threads),
            "OTB_MAX_RAM_HINT": str(ram_mb)}


def describe(trees: int, depth: int, threads: int, ram_mb: int) -> str:
    """One sentence giving OTB's configuration in the benchmark."""
    settings = " ".join(f"-{k} {v}" for k, v in forest_settings(trees, depth).items())
    return (f"OTB 8 (Debian otb-bin): {TRAIN} {settings} on the same training pixels; "
            f"{CLASSIFY} -ram {ram_mb} with ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS={threads}. "
            f"OpenCV caps tree depth at {OPENCV_MAX_DEPTH}.")
