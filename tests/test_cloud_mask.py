"""Cloud masks: SCL reclassification and the optional ukis-csmask CNN on real Sentinel-2 chips."""

import glob
import importlib.util
import os

import numpy as np
import pytest
import rasterio
from cnn_fixtures import write_raster
from conftest import data_path

from landfusion.core.stack import cloud_mask
from landfusion.core.io.classmap import read_class_styling
from landfusion.core.errors import BandError, DependencyError, InputError

ALG = "landfusion:cloudmask"
BANDS = ["B02", "B03", "B04", "B08", "B11", "B12"]
needs_csmask = pytest.mark.skipif(importlib.util.find_spec("ukis_csmask") is None,
                                  reason="optional package ukis-csmask is not installed "
                                         "(pip install ukis-csmask)")


def _stack(folder, out, pattern=lambda b: b):
    """A VRT of the six bands, named B02..B12 (20 m bands resampled to 10 m by GDAL)."""
    from osgeo import gdal

    files = [os.path.join(folder, pattern(b) + ".tif") for b in BANDS]
    vrt = gdal.BuildVRT(out, files, separate=True, resolution="highest")
    for i, name in enumerate(BANDS, start=1):
        vrt.GetRasterBand(i).SetDescription(name)
    vrt = None
    return out


@pytest.fixture(scope="module")
def major_tom_stack(tmp_path_factory):
    folder = glob.glob(str(data_path("major_tom", "S2L2A")) + "/*/*/*/")
    if not folder:
        pytest.skip("major_tom chip not found")
    return _stack(folder[0], str(tmp_path_factory.mktemp("mt") / "S2_N0400_stack.vrt"))


@pytest.fixture(scope="module")
def ssl4eo_stacks(tmp_path_factory):
    folders = sorted(glob.glob(str(data_path("ssl4eo", "s2a")) + "/*/*/"))
    out = tmp_path_factory.mktemp("ssl")
    return [_stack(f, str(out / f"{i}.vrt"), lambda b: b.replace("B0", "B"))
            for i, f in enumerate(folders)]


def _scl(tmp_path, values):
    return write_raster(str(tmp_path / "scl.tif"), np.asarray(values, "uint8")[None], ["SCL"],
                        nodata=0)


def test_scl_reclassification(tmp_path):
    scl = _scl(tmp_path, [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]])
    out = str(tmp_path / "mask.tif")
    result = cloud_mask.cloud_mask_from_scl(scl, out)
    with rasterio.open(out) as ds:
        assert ds.read(1).tolist() == [[255, 255, 0, 2, 0, 0], [0, 0, 1, 1, 1, 0]]
        assert ds.nodata == 255 and ds.transform == rasterio.open(scl).transform
        assert ds.descriptions == ("class",) and ds.dtypes == ("uint8",)
    assert os.path.exists(str(tmp_path / "mask.qml"))
    assert result["valid_pixels"] == 10
    assert result["class_fractions"]["cloud"] == pytest.approx(0.3)
    assert [c.name for c in read_class_styling(out)] == ["clear", "cloud", "cloud shadow"]
    out2 = str(tmp_path / "mask2.tif")
    cloud_mask.cloud_mask_from_scl(scl, out2, cirrus_as_cloud=False)
    with rasterio.open(out2) as ds:
        assert ds.read(1)[1, 4] == 0


def test_scl_bad_inputs(tmp_path):
    not_scl = write_raster(str(tmp_path / "b.tif"), np.full((1, 4, 4), 1200, "uint16"))
    with pytest.raises(InputError, match="not scene-classification classes"):
        cloud_mask.cloud_mask_from_scl(not_scl, str(tmp_path / "m.tif"))
    floats = write_raster(str(tmp_path / "f.tif"), np.ones((2, 4, 4), "float32"))
    with pytest.raises(InputError, match="an SCL layer is one integer band"):
        cloud_mask.cloud_mask_from_scl(floats, str(tmp_path / "m.tif"))
    assert not os.path.exists(str(tmp_path / "m.tif"))


def test_csmask_missing_bands_and_package(tmp_path, monkeypatch):
    with pytest.raises((BandError, DependencyError), match="B08|ukis-csmask"):
        cloud_mask.choose_csmask_model(["B02", "B03", "B04"], "L2A")
    monkeypatch.setattr(cloud_mask, "csmask_models", lambda: {})
    with pytest.raises(DependencyError, match="pip install --user ukis-csmask"):
        cloud_mask.choose_csmask_model(BANDS, "L2A")


@needs_csmask
def test_csmask_metadata_adapted():
    models = cloud_mask.csmask_models()
    assert {"6b_l2a", "4b_l2a", "6b_l1c", "4b_l1c"} <= set(models)
    meta = cloud_mask.csmask_metadata(models["6b_l2a"][1], dn_offset=-1000.0)
    assert meta.bands == BANDS and meta.tile_size == 256
    assert meta.input_offset == [-1000.0] * 6 and meta.input_scale == [1e-4] * 6
    assert [c.name for c in meta.classes] == ["clear", "cloud", "cloud shadow"]
    assert cloud_mask.choose_csmask_model(["B02", "B03", "B04", "B08"], "L1C")[0] == "4b_l1c"


@needs_csmask
def test_cnn_mask_on_clear_ssl4eo_chips(ssl4eo_stacks, tmp_path):
    for i, stack in enumerate(ssl4eo_stacks):
        out = str(tmp_path / f"mask{i}.tif")
        result = cloud_mask.cloud_mask_with_cnn(stack, out, product_level="L2A")
        # Scene metadata reports about 2 % cloud: the chips are mostly clear.
        assert result["class_fractions"]["clear"] > 0.85, result
        with rasterio.open(out) as ds, rasterio.open(stack) as ref:
            assert (ds.width, ds.height) == (ref.width, ref.height)
            assert ds.transform.almost_equals(ref.transform) and ds.crs == ref.crs
            values = ds.read(1)
        assert set(np.unique(values)) <= {0, 1, 2, 255}
        assert (values == 0).mean() > 0.85


@needs_csmask
def test_cloudmask_algorithm_on_cloudy_major_tom(qgis_process, major_tom_stack, tmp_path):
    # The crop lies under a closed cloud deck (its bundled mask is empty, the RGB is white).
    out = str(tmp_path / "mask.tif")
    code, parsed, text = qgis_process(ALG, {"INPUT": major_tom_stack, "PRODUCT_LEVEL": 0,
                                            "OUTPUT": out})
    assert parsed["results"]["OUTPUT"] == out
    assert "DN offset -1000" in text
    with rasterio.open(out) as ds, rasterio.open(major_tom_stack) as ref:
        assert (ds.width, ds.height) == (1068, 1068) and ds.crs == ref.crs
        values = ds.read(1)
    assert (values == 1).mean() > 0.6 and (values == 0).mean() < 0.2
    assert [c.name for c in read_class_styling(out)] == ["clear", "cloud", "cloud shadow"]
    assert os.path.exists(str(tmp_path / "mask.qml"))


def test_cloudmask_algorithm_scl_pyqgis(run_algorithm, tmp_path):
    scl = _scl(tmp_path, np.tile([[4, 9, 3, 8]], (8, 2)))
    out = str(tmp_path / "mask.tif")
    result = run_algorithm(ALG, {"SCL": scl, "OUTPUT": out})
    assert result["OUTPUT"] == out
    with rasterio.open(out) as ds:
        assert ds.read(1)[0].tolist() == [0, 1, 2, 1] * 2


def test_cloudmask_algorithm_needs_an_input(run_algorithm, tmp_path):
    from qgis.core import QgsProcessingException

    with pytest.raises(QgsProcessingException, match="Give an SCL layer"):
        run_algorithm(ALG, {"OUTPUT": str(tmp_path / "m.tif")})
    bad = write_raster(str(tmp_path / "rgb.tif"), np.ones((3, 8, 8), "uint16"),
                       ["B02", "B03", "B04"])
    with pytest.raises(QgsProcessingException, match="B08"):
        run_algorithm(ALG, {"INPUT": bad, "OUTPUT": str(tmp_path / "m.tif")})
    assert not os.path.exists(str(tmp_path / "m.tif"))
