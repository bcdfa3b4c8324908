"""landfusion:spectralindices through QGIS Processing (PyQGIS and qgis_process)."""

import numpy as np
import pytest
import rasterio

from conftest import data_path

L2A_12 = "B01,B02,B03,B04,B05,B06,B07,B08,B8A,B09,B11,B12"


def expected_ndvi_ndwi(chip):
    with rasterio.open(chip) as src:
        b = src.read().astype(np.float64) / 10000.0
    b03, b04, b08 = b[2], b[3], b[7]
    return (b08 - b04) / (b08 + b04), (b03 - b08) / (b03 + b08)


def test_processing_run(run_algorithm, tmp_path):
    chip = data_path("terramind", "S2L2A", "637U_59R_1_3.tif")
    out = str(tmp_path / "indices.tif")
    result = run_algorithm("landfusion:spectralindices", {
        "INPUT": str(chip), "INPUT_BANDS": L2A_12, "INDICES": ["NDVI", "NDWI", "SAVI", "BAI"],
        "OUTPUT": out})
    assert result["OUTPUT"] == out
    ndvi, ndwi = expected_ndvi_ndwi(chip)
    with rasterio.open(chip) as src, rasterio.open(out) as dst:
        assert dst.crs == src.crs and dst.transform == src.transform
        assert dst.shape == src.shape
        assert dst.descriptions == ("NDVI", "NDWI", "SAVI", "BAI")
        np.testing.assert_allclose(dst.read(1), ndvi, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(dst.read(2), ndwi, rtol=1e-5, atol=1e-6)


def test_processing_reports_missing_band(run_algorithm, tmp_path):
    from qgis.core import QgsProcessingException

    chip = data_path("terramind", "S2L2A", "637U_59R_1_3.tif")
    out = tmp_path / "x.tif"
    with pytest.raises(QgsProcessingException, match=r"BAIS2 needs band\(s\) B06"):
        run_algorithm("landfusion:spectralindices", {
            "INPUT": str(chip), "INPUT_BANDS": "B01,B02,B03,B04,B05,B12,B07,B08,B8A,B09,B11,B10",
            "INDICES": ["BAIS2"], "OUTPUT": str(out)})
    assert not out.exists()


@pytest.mark.qgis_process
def test_qgis_process_run(qgis_process, tmp_path):
    chip = data_path("terramind", "S2L2A", "282D_485L_3_3.tif")
    out = tmp_path / "ndvi.tif"
    code, result, _ = qgis_process("landfusion:spectralindices", {
        "INPUT": chip, "INPUT_BANDS": L2A_12, "INDICES": ["NDVI", "NDWI"],
        "EXPRESSION": "(B08 - B11) / (B08 + B11)", "EXPRESSION_NAME": "NDMI_CUSTOM",
        "COMPRESSION": "ZSTD",
        "OUTPUT": out})
    assert code == 0
    assert result["results"]["OUTPUT"] == str(out)
    ndvi, ndwi = expected_ndvi_ndwi(chip)
    with rasterio.open(chip) as src, rasterio.open(out) as dst:
        assert dst.crs == src.crs and dst.transform == src.transform
        assert dst.descriptions == ("NDVI", "NDWI", "NDMI_CUSTOM")
        assert dst.compression.name == "zstd"
        np.testing.assert_allclose(dst.read(1), ndvi, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(dst.read(2), ndwi, rtol=1e-5, atol=1e-6)
        b = src.read().astype(np.float64)
        np.testing.assert_allclose(dst.read(3), (b[7] - b[10]) / (b[7] + b[10]), rtol=1e-5,
                                   atol=1e-6)


@pytest.mark.qgis_process
def test_qgis_process_bad_expression_is_a_clear_error(qgis_process, tmp_path):
    chip = data_path("terramind", "S2L2A", "282D_485L_3_3.tif")
    out = tmp_path / "x.tif"
    code, _, text = qgis_process("landfusion:spectralindices", {
        "INPUT": chip, "INPUT_BANDS": L2A_12, "EXPRESSION": "__import__('os')", "OUTPUT": out},
        check=False)
    assert code != 0
    assert "is not allowed in a custom expression" in text
    assert "Traceback" not in text
    assert not out.exists()
