"""landfusion:traincnn through Processing (PyQGIS and qgis_process), feeding cnnclassify."""

import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from cnn_training_data import EUROSAT_ORDER, eurosat_subset, s1_chip, s1_crops, terramind_stacks

from landfusion.core.io.classmap import read_class_styling
from landfusion.core.models.reading import read_model

pytest.importorskip("torch")

ALG = "landfusion:traincnn"


@pytest.fixture(scope="module")
def crops(tmp_path_factory):
    return s1_crops(str(tmp_path_factory.mktemp("s1crops")))


def test_segmentation_through_processing_then_cnnclassify(run_algorithm, crops, tmp_path):
    from qgis.core import QgsProcessingFeedback

    class Feedback(QgsProcessingFeedback):
        def __init__(self):
            super().__init__()
            self.progress_values, self.infos = [], []
            self.progressChanged.connect(self.progress_values.append)

        def pushInfo(self, info):  # noqa: N802 (QGIS API name)
            self.infos.append(info)

    feedback = Feedback()
    model, report = str(tmp_path / "water.onnx"), str(tmp_path / "water.html")
    result = run_algorithm(ALG, {
        "TASK": 0, "INPUT": [p[0] for p in crops], "LABELS": [p[1] for p in crops],
        "LABEL_NODATA": -1, "CLASS_NAMES": "0:land:#d9c9a3,1:water:#1f78b4", "PATCH_SIZE": 64,
        "EPOCHS": 2, "BATCH_SIZE": 8, "WIDTH": 4, "THREADS": 1, "SEED": 3,
        "OUTPUT_MODEL": model, "OUTPUT_REPORT": report}, feedback)
    assert result["OUTPUT_MODEL"] == model and result["OUTPUT_REPORT"] == report
    assert any(i.startswith("Epoch 2/2") for i in feedback.infos)
    assert feedback.progress_values and max(feedback.progress_values) == 100
    meta = read_model(model)
    assert meta.bands == ["VV", "VH"] and [c.name for c in meta.classes] == ["land", "water"]
    assert "Confusion matrix" in Path(report).read_text(encoding="utf-8")
    # An unseen chip, through cnnclassify.
    chip = s1_chip("Pakistan_849790")[0]
    out = str(tmp_path / "classes.tif")
    run_algorithm("landfusion:cnnclassify", {"INPUT": chip, "MODEL_FILE": model, "OUTPUT": out})
    with rasterio.open(out) as ds, rasterio.open(chip) as ref:
        assert ds.crs == ref.crs and ds.transform == ref.transform
        assert set(np.unique(ds.read(1))) <= {0, 1, ds.nodata}
    assert [(c.value, c.name) for c in read_class_styling(out)] == [(0, "land"), (1, "water")]


def test_patch_classification_through_qgis_process(qgis_process, tmp_path, run_algorithm):
    """qgis_process.bin imports torch from .venv (scripts/qgis_process.sh puts it on the path)."""
    folder = eurosat_subset(tmp_path / "patches", per_class=6)
    model = str(tmp_path / "eurosat.onnx")
    _, result, log = qgis_process(ALG, {
        "TASK": 1, "PATCH_FOLDER": folder, "INPUT_BANDS": ",".join(EUROSAT_ORDER),
        "BANDS": "B02,B03,B04,B08,B11,B12", "EPOCHS": 1, "BATCH_SIZE": 8, "WIDTH": 4,
        "THREADS": 1, "OUTPUT_MODEL": model, "OUTPUT_REPORT": str(tmp_path / "eurosat.html")})
    assert result["results"]["OUTPUT_MODEL"] == model, log
    meta = read_model(model)
    assert meta.task == "patch_classifier" and meta.patch_size == 64
    assert [c.name for c in meta.classes] == ["AnnualCrop", "Forest", "Residential", "SeaLake"]
    # The patch classifier maps a named Sentinel-2 stack through cnnclassify.
    stack = terramind_stacks(str(tmp_path))[0][0]
    out = str(tmp_path / "patches.tif")
    run_algorithm("landfusion:cnnclassify", {"INPUT": stack, "MODEL_FILE": model, "OUTPUT": out})
    with rasterio.open(out) as ds:
        values = set(np.unique(ds.read(1))) - {ds.nodata}
    assert values and values <= {0, 1, 2, 3}


def test_bad_input_is_refused_before_training(run_algorithm, crops, tmp_path, monkeypatch):
    from qgis.core import QgsProcessingException

    base = {"TASK": 0, "INPUT": [p[0] for p in crops], "LABELS": [crops[0][1]],
            "OUTPUT_MODEL": str(tmp_path / "m.onnx")}
    with pytest.raises(QgsProcessingException, match="one label raster per input"):
        run_algorithm(ALG, base)
    with pytest.raises(QgsProcessingException, match="larger than"):
        run_algorithm(ALG, dict(base, LABELS=[p[1] for p in crops], PATCH_SIZE=512))
    monkeypatch.setitem(sys.modules, "torch", None)
    # The provider's dependency check names torch and how to install it.
    with pytest.raises(QgsProcessingException, match=r"needs torch.*install.*torch"):
        run_algorithm(ALG, dict(base, LABELS=[p[1] for p in crops]))
    assert not list(tmp_path.iterdir())
