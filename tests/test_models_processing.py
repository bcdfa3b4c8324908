"""Models through Processing (PyQGIS and qgis_process): modelinfo, BAND_MAP, EXTENT, STRIDE,
and models given to the algorithm that does not run them."""

import os

import numpy as np
import pytest
import rasterio
from conftest import ROOT, data_path
from test_models import S2, _patch_model, _rename

from landfusion.core.classification.train import train_classifier
from landfusion.core.models.reading import read_model

WATER = str(ROOT / "resources" / "models" / "s1_water_unet.onnx")
CHIP = "433D_629L_3_1"


@pytest.fixture(scope="module")
def dated_case(tmp_path_factory):
    """A pixel model trained on S1 bands named VV/VH, and the chip renamed as a dated stack."""
    from classification_data import label_polygons

    tmp = tmp_path_factory.mktemp("processing_models")
    folder = data_path("sen1floods11")
    chip = str(folder / "Spain_7370579_S1Hand.tif")
    polygons = label_polygons(str(folder / "Spain_7370579_LabelHand.tif"), tmp / "p.gpkg",
                              [1, 2], cell=128, label_map={0: 1, 1: 2},
                              names={1: "land", 2: "water"})
    model = str(tmp / "rf.onnx")
    train_classifier(chip, polygons, "class", model, None, parameters={"n_estimators": 10},
                     folds=2, name_field="name", max_per_class=300)
    dated = _rename(chip, tmp / "dated.tif", ["S1_20190917_VV_dB", "S1_20190917_VH_dB"])
    two_dates = str(tmp / "two_dates.tif")
    with rasterio.open(chip) as src:
        data, profile = src.read(), src.profile
    with rasterio.open(two_dates, "w", **dict(profile, count=4)) as dst:
        dst.write(np.concatenate([data, data + 1.0]))
        dst.descriptions = ("S1_T1_VV_dB", "S1_T1_VH_dB", "S1_T2_VV_dB", "S1_T2_VH_dB")
    return {"tmp": tmp, "chip": chip, "model": model, "dated": dated, "two_dates": two_dates}


def _extent_text(path, col0, row0, col1, row1):
    with rasterio.open(path) as src:
        t = src.transform
        epsg = src.crs.to_epsg()
    x0, x1 = t.c + col0 * t.a, t.c + col1 * t.a
    y0, y1 = t.f + row1 * t.e, t.f + row0 * t.e
    return f"{x0},{x1},{y0},{y1} [EPSG:{epsg}]"


def test_band_map_lets_a_model_classify_another_date(run_algorithm, dated_case, tmp_path):
    from qgis.core import QgsProcessingException

    reference = str(tmp_path / "reference.tif")
    run_algorithm("landfusion:classifyraster", {"INPUT": dated_case["chip"],
                                                "MODEL": dated_case["model"],
                                                "OUTPUT": reference})
    # Single-date stack names: matched by role, no map needed.
    by_role = str(tmp_path / "by_role.tif")
    run_algorithm("landfusion:classifyraster", {"INPUT": dated_case["dated"],
                                                "MODEL": dated_case["model"], "OUTPUT": by_role})
    # Two dates: ambiguous without a map; the map picks the second date.
    with pytest.raises(QgsProcessingException, match="BAND_MAP=VV=S1_T1_VV_dB"):
        run_algorithm("landfusion:classifyraster", {"INPUT": dated_case["two_dates"],
                                                    "MODEL": dated_case["model"],
                                                    "OUTPUT": str(tmp_path / "x.tif")})
    second = str(tmp_path / "second.tif")
    run_algorithm("landfusion:classifyraster", {
        "INPUT": dated_case["two_dates"], "MODEL": dated_case["model"],
        "BAND_MAP": "VV=S1_T2_VV_dB, VH=4", "OUTPUT": second})
    with rasterio.open(reference) as a, rasterio.open(by_role) as b, rasterio.open(second) as c:
        assert np.array_equal(a.read(1), b.read(1))
        # The second date is the first one 1 dB brighter: less water, same grid.
        assert c.transform == a.transform and not np.array_equal(a.read(1), c.read(1))
        water = lambda ds: int(np.sum(ds.read(1) == 2))  # noqa: E731
        assert water(c) < water(a)


def test_extent_preview_in_both_classifiers(run_algorithm, dated_case, tmp_path):
    chip = dated_case["chip"]
    extent = _extent_text(chip, 100, 40, 228, 200)
    full, part = str(tmp_path / "full.tif"), str(tmp_path / "part.tif")
    run_algorithm("landfusion:classifyraster", {"INPUT": chip, "MODEL": dated_case["model"],
                                                "OUTPUT": full})
    run_algorithm("landfusion:classifyraster", {"INPUT": chip, "MODEL": dated_case["model"],
                                                "EXTENT": extent, "OUTPUT": part})
    with rasterio.open(full) as a, rasterio.open(part) as b:
        assert (b.width, b.height) == (128, 160)
        assert b.transform.a == a.transform.a
        assert b.transform.c == pytest.approx(a.transform.c + 100 * a.transform.a)
        assert np.array_equal(b.read(1), a.read(1)[40:200, 100:228])
    cnn_part = str(tmp_path / "cnn_part.tif")
    run_algorithm("landfusion:cnnclassify", {"INPUT": chip, "MODEL": "s1_water_unet",
                                             "EXTENT": extent, "OUTPUT": cnn_part})
    with rasterio.open(cnn_part) as c, rasterio.open(chip) as src:
        assert (c.width, c.height) == (128, 160) and c.crs == src.crs
        assert c.transform.f == pytest.approx(src.transform.f + 40 * src.transform.e)
        assert set(np.unique(c.read(1))) <= {0, 1, 255}


def test_models_given_to_the_wrong_algorithm_name_the_right_one(run_algorithm, dated_case,
                                                               tmp_path):
    from qgis.core import QgsProcessingException

    with pytest.raises(QgsProcessingException, match=r"run it with CNN classify "
                                                     r"\(landfusion:cnnclassify\)"):
        run_algorithm("landfusion:classifyraster", {"INPUT": dated_case["chip"],
                                                    "MODEL": WATER,
                                                    "OUTPUT": str(tmp_path / "a.tif")})
    with pytest.raises(QgsProcessingException, match=r"run it with Classify raster "
                                                     r"\(landfusion:classifyraster\)"):
        run_algorithm("landfusion:cnnclassify", {"INPUT": dated_case["chip"],
                                                 "MODEL_FILE": dated_case["model"],
                                                 "OUTPUT": str(tmp_path / "b.tif")})
    assert os.listdir(tmp_path) == []


def test_modelinfo_cards_and_listing(run_algorithm, dated_case, tmp_path):
    html = str(tmp_path / "rf.html")
    result = run_algorithm("landfusion:modelinfo", {"MODEL": dated_case["model"],
                                                    "OUTPUT_HTML": html})
    assert result["TASK"] == "pixel_classifier" and result["BANDS"] == "VV,VH"
    assert result["CLASSES"] == "land,water"
    page = open(html, encoding="utf-8").read()
    card = read_model(dated_case["model"])
    for text in ("Classify raster (landfusion:classifyraster)", "Random Forest", "training min",
                 f"{card.band_stats[0]['min']:.4g}", "land", "water", "Validation",
                 card.classes[1].hex()):
        assert text in page
    water = str(tmp_path / "water.html")
    result = run_algorithm("landfusion:modelinfo", {"BUNDLED": "s1_water_unet",
                                                    "OUTPUT_HTML": water})
    page = open(water, encoding="utf-8").read()
    assert result["TASK"] == "segmentation" and result["BANDS"] == "VV,VH"
    assert "CNN classify (landfusion:cnnclassify)" in page
    assert "<td>Model format</td><td>2</td>" in page and "--upgrade" not in page
    from landfusion.core.models.info import _num
    from landfusion.core.paths import MODELS_DIR

    card = read_model(os.path.join(MODELS_DIR, "s1_water_unet.onnx"))
    assert f"{_num(card.clip_min[0])} to {_num(card.clip_max[0])}" in page  # clipping of VV
    assert "s1_water_unet.md" in page
    listing = str(tmp_path / "list.html")
    run_algorithm("landfusion:modelinfo", {"OUTPUT_HTML": listing})
    page = open(listing, encoding="utf-8").read()
    assert "s1_water_unet" in page and "Segments open water" in page


def test_patch_classifier_through_processing_with_stride(run_algorithm, tmp_path):
    s2 = _rename(str(data_path("terramind", "S2L2A", f"{CHIP}.tif")), tmp_path / "s2.tif", S2)
    weights = np.zeros((12, 2))
    weights[7, 0], weights[3, 1] = 40.0, 40.0  # B08 bright: "vegetation"; B04 bright: "other"
    model = _patch_model(str(tmp_path / "p.onnx"), weights, [0, 0], S2,
                         [{"value": 1, "name": "vegetation", "color": "#1a9850"},
                          {"value": 2, "name": "other", "color": "#bdbdbd"}], 32,
                         input_scale=1e-4, band_units=["DN"] * 12)
    out, probs = str(tmp_path / "cls.tif"), str(tmp_path / "prob.tif")
    run_algorithm("landfusion:cnnclassify", {"INPUT": s2, "MODEL_FILE": model, "STRIDE": 16,
                                             "OUTPUT": out, "OUTPUT_PROBABILITIES": probs})
    with rasterio.open(out) as c, rasterio.open(probs) as p, rasterio.open(s2) as src:
        assert (c.width, c.height) == (14, 14) and c.transform.a == 16 * src.transform.a
        assert list(p.descriptions) == ["vegetation", "other"]
        prob = p.read()
        assert np.allclose(prob.sum(axis=0), 1.0, atol=1e-5)
        nir, red = src.read(8).astype(float), src.read(4).astype(float)
        got = c.read(1)
    # Cell (r, c) is scored by the 32-px patch over input rows/cols 16r-8 .. 16r+23: vegetation
    # where its mean NIR exceeds its mean red.
    for r, col in ((3, 3), (5, 9), (10, 2), (12, 12)):
        rows, cols = slice(16 * r - 8, 16 * r + 24), slice(16 * col - 8, 16 * col + 24)
        expected = 1 if nir[rows, cols].mean() > red[rows, cols].mean() else 2
        assert got[r, col] == expected


def test_qgis_process_modelinfo_patch_stride_and_band_map(qgis_process, dated_case, tmp_path):
    html = str(tmp_path / "card.html")
    code, result, _ = qgis_process("landfusion:modelinfo",
                                   {"MODEL": dated_case["model"], "OUTPUT_HTML": html})
    assert result["results"]["TASK"] == "pixel_classifier" and os.path.exists(html)
    out = str(tmp_path / "second.tif")
    code, result, _ = qgis_process("landfusion:classifyraster", {
        "INPUT": dated_case["two_dates"], "MODEL": dated_case["model"],
        "BAND_MAP": "VV=S1_T2_VV_dB,VH=S1_T2_VH_dB",
        "EXTENT": _extent_text(dated_case["two_dates"], 0, 0, 256, 128), "OUTPUT": out})
    with rasterio.open(out) as ds:
        assert (ds.width, ds.height) == (256, 128)
    s2 = _rename(str(data_path("terramind", "S2L2A", f"{CHIP}.tif")), tmp_path / "s2.tif", S2)
    model = _patch_model(str(tmp_path / "p.onnx"), np.eye(12, 3), [0, 0, 0], S2,
                         ["a", "b", "c"], 16, input_scale=1e-4)
    out = str(tmp_path / "patches.tif")
    code, result, _ = qgis_process("landfusion:cnnclassify", {
        "INPUT": s2, "MODEL_FILE": model, "STRIDE": 8, "OUTPUT": out})
    with rasterio.open(out) as ds:
        assert (ds.width, ds.height) == (28, 28)
    # S2 numbers named VV/VH given to the water model: refused, nothing written.
    fake = _rename(str(data_path("terramind", "S2L2A", f"{CHIP}.tif")), tmp_path / "fake.tif",
                   ["VV", "VH"], bands=[4, 8])
    code, _, text = qgis_process("landfusion:cnnclassify", {
        "INPUT": fake, "MODEL": "s1_water_unet", "OUTPUT": str(tmp_path / "w.tif")},
        check=False)
    assert code != 0 and "look like digital numbers" in text
    assert not os.path.exists(tmp_path / "w.tif")


def test_water_cnn_runs_on_a_coregisterstack_output(run_algorithm, tmp_path):
    """The bundled water model finds VV/VH by role in LandFusion's own S1 + S2 stack."""
    folder = data_path("sen1floods11")
    stack = str(tmp_path / "stack.tif")
    run_algorithm("landfusion:coregisterstack", {
        "S1": [str(folder / "Spain_7370579_S1Hand.tif")],
        "S2": [str(folder / "Spain_7370579_S2Hand.tif")],
        "S2_BANDS": "B01,B02,B03,B04,B05,B06,B07,B08,B8A,B09,B10,B11,B12",
        "S2_OUTPUT_BANDS": "B04,B08", "INDICES": ["NDWI"], "OUTPUT": stack})
    with rasterio.open(stack) as ds:
        names = list(ds.descriptions)
    assert any(n.endswith("VV_dB") and n != "VV" for n in names), names
    out = str(tmp_path / "water.tif")
    run_algorithm("landfusion:cnnclassify", {"INPUT": stack, "MODEL": "s1_water_unet",
                                             "OUTPUT": out})
    direct = str(tmp_path / "direct.tif")
    run_algorithm("landfusion:cnnclassify", {"INPUT": str(folder / "Spain_7370579_S1Hand.tif"),
                                             "MODEL": "s1_water_unet", "OUTPUT": direct})
    with rasterio.open(out) as a, rasterio.open(direct) as b:
        same = np.mean(a.read(1) == b.read(1))
        assert a.shape == b.shape and same > 0.9, same
