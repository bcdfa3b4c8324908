"""landfusion:coregisterstack through QGIS Processing (PyQGIS and qgis_process)."""

import json
from pathlib import Path
import os

import numpy as np
import pytest
import rasterio

from conftest import data_path

NODATA = -9999.0


def _bigearthnet():
    root = data_path("bigearthnet")
    s2 = sorted(str(p) for p in root.glob("BigEarthNet-S2-Example/*_87_48/*_B*.tif"))
    s1 = sorted(str(p) for p in root.glob("BigEarthNet-S1-Example/*_87_48/*_V?.tif"))
    return s2, s1


def test_processing_run_bigearthnet(run_algorithm, tmp_path):
    s2, s1 = _bigearthnet()
    out = str(tmp_path / "stack.tif")
    result = run_algorithm("landfusion:coregisterstack", {
        "S2": s2, "S1": s1, "S2_OUTPUT_BANDS": "B04,B08,B11", "INDICES": ["NDVI", "NDWI"],
        "S1_RVI": True, "OUTPUT": out})
    assert result["OUTPUT"] == out
    assert result["SIDECAR"] == out + ".json"
    b04 = [p for p in s2 if p.endswith("_B04.tif")][0]
    vv = [p for p in s1 if p.endswith("_VV.tif")][0]
    vh = [p for p in s1 if p.endswith("_VH.tif")][0]
    names = ["S1_VV_dB", "S1_VH_dB", "S1_VVVH_dB", "S1_RVI",
             "S2_B04", "S2_B08", "S2_B11", "NDVI", "NDWI"]
    with rasterio.open(out) as ds, rasterio.open(b04) as ref, rasterio.open(vv) as v, \
            rasterio.open(vh) as h:
        assert ds.crs == ref.crs and ds.crs.to_epsg() == 32633
        assert ds.transform == ref.transform and ds.shape == (120, 120)
        assert list(ds.descriptions) == names
        assert ds.dtypes[0] == "float32" and ds.nodata == NODATA
        np.testing.assert_array_equal(ds.read(1), v.read(1))
        np.testing.assert_array_equal(ds.read(3), v.read(1) - h.read(1))
        np.testing.assert_array_equal(ds.read(5), ref.read(1).astype(np.float32) / np.float32(1e4))
        red, nir = ds.read(5).astype(np.float64), ds.read(6).astype(np.float64)
        np.testing.assert_allclose(ds.read(8), (nir - red) / (nir + red), rtol=1e-5, atol=1e-6)
        assert ds.tags(1)["UNITS"] == "dB" and ds.tags(1)["DATE"] == "20170613"
    sidecar = json.loads(Path(out + ".json").read_text())
    assert sidecar["band_names"] == names
    assert sidecar["bands"][6]["sources"][0].endswith("_B11.tif")
    assert sidecar["resampling"]["S2:B11"] == "bilinear"


def test_processing_no_overlap_is_a_clear_error(run_algorithm, tmp_path):
    from qgis.core import QgsProcessingException

    s2, _ = _bigearthnet()
    s1 = sorted(str(p) for p in data_path("ssl4eo").glob("s1/0000200/*/V?.tif"))
    out = tmp_path / "stack.tif"
    with pytest.raises(QgsProcessingException) as info:
        run_algorithm("landfusion:coregisterstack", {"S2": s2, "S1": s1, "OUTPUT": str(out)})
    assert "does not overlap" in str(info.value)
    assert "Sentinel-1 extent is [" in str(info.value) and "EPSG:32633" in str(info.value)
    assert not out.exists()
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".landfusion")]


def test_processing_reports_partial_overlap_in_the_log(run_algorithm, tmp_path):
    from qgis.core import QgsProcessingFeedback

    class Recorder(QgsProcessingFeedback):
        def __init__(self):
            super().__init__()
            self.warnings, self.infos = [], []

        def pushWarning(self, text):
            self.warnings.append(text)

        def pushInfo(self, text):
            self.infos.append(text)

    s2 = str(data_path("terramind", "S2L2A", "282D_485L_3_3.tif"))
    src_path = str(data_path("terramind", "S1RTC", "282D_485L_3_3.tif"))
    top = str(tmp_path / "S1_20210721_top.tif")
    with rasterio.open(src_path) as src:
        profile = src.profile
        data = src.read(window=((0, 56), (0, 224)))
    profile.update(height=56)
    with rasterio.open(top, "w", **profile) as dst:
        dst.write(data)
    feedback = Recorder()
    out = str(tmp_path / "stack.tif")
    run_algorithm("landfusion:coregisterstack", {
        "S2": [s2], "S2_BANDS": "B01,B02,B03,B04,B05,B06,B07,B08,B8A,B09,B11,B12", "S1": [top],
        "INDICES": [], "OUTPUT": out}, feedback=feedback)
    assert any("covers only 25.0 % of the target grid" in w for w in feedback.warnings)
    assert any("band 1 is taken as VV" in i for i in feedback.infos)
    with rasterio.open(out) as ds:
        assert ds.shape == (224, 224)
        assert np.all(ds.read(1)[56:] == NODATA)
        assert np.all(ds.read(4) != NODATA)


@pytest.mark.qgis_process
def test_qgis_process_ssl4eo_onto_utm(qgis_process, tmp_path):
    root = data_path("ssl4eo")
    s2_dir = sorted((root / "s2a" / "0000200").iterdir())[0]
    s2 = [str(s2_dir / f"B{b}.tif") for b in ("2", "3", "4", "8", "8A", "11")]
    s1 = sorted(str(p) for p in (root / "s1" / "0000200").glob("*/V?.tif"))
    out = tmp_path / "stack.tif"
    code, result, _ = qgis_process("landfusion:coregisterstack", {
        "S2": s2, "S1": s1, "TARGET_CRS": "EPSG:32643", "TARGET_RESOLUTION": 10,
        "INDICES": ["NDVI", "NDMI"], "TEMPORAL_STATS": ["mean"], "SPECKLE_FILTER": 1,
        "OUTPUT": out})
    assert code == 0
    assert result["results"]["OUTPUT"] == str(out)
    with rasterio.open(out) as ds:
        assert ds.crs.to_epsg() == 32643
        assert (ds.transform.a, ds.transform.e) == (10.0, -10.0)
        assert ds.transform.c % 10 == 0 and ds.transform.f % 10 == 0
        assert 255 <= ds.width <= 275 and 255 <= ds.height <= 275
        names = list(ds.descriptions)
        assert names == [
            "S1_T1_VV_dB", "S1_T1_VH_dB", "S1_T1_VVVH_dB",
            "S1_T2_VV_dB", "S1_T2_VH_dB", "S1_T2_VVVH_dB",
            "S1_VV_mean_dB", "S1_VH_mean_dB", "S2_B02", "S2_B03", "S2_B04", "S2_B08", "NDVI",
            "NDMI"]
        vv = ds.read(1)
        ok = vv != NODATA
        assert ok.mean() > 0.95 and -30 < np.median(vv[ok]) < 5
        b04, b08 = ds.read(11), ds.read(12)
        ok = (b04 != NODATA) & (b08 != NODATA)
        assert 0.0 < np.median(b04[ok]) < 0.5
        np.testing.assert_allclose(ds.read(13)[ok], ((b08 - b04) / (b08 + b04))[ok],
                                   rtol=1e-5, atol=1e-6)
    sidecar = json.loads((tmp_path / "stack.tif.json").read_text())
    assert sidecar["band_names"] == names
    assert "Lee" in sidecar["processing"]["speckle_filter"]


@pytest.mark.qgis_process
def test_qgis_process_missing_band_is_named(qgis_process, tmp_path):
    s2, s1 = _bigearthnet()
    out = tmp_path / "stack.tif"
    code, _, text = qgis_process("landfusion:coregisterstack", {
        "S2": [p for p in s2 if not p.endswith("_B03.tif")], "S1": s1, "INDICES": ["NDWI"],
        "S2_OUTPUT_BANDS": "B04", "OUTPUT": out}, check=False)
    assert code != 0
    assert "NDWI needs band(s) B03" in text
    assert "Traceback" not in text
    assert not out.exists()
