"""Spectral indices engine: values against independent numpy on real Sentinel-2 chips."""

import glob
import os
import subprocess

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from conftest import data_path
from landfusion.core.errors import BandError, CancelledError, InputError, OutputError
from landfusion.core.indices.formulas import INDICES, Expression
from landfusion.core.indices.compute import compute_spectral_indices

L2A_12 = "B01,B02,B03,B04,B05,B06,B07,B08,B8A,B09,B11,B12"
NODATA = -9999.0


def reference_indices(r, L=0.5):
    """Independent formulas, written out per index from the papers (float64)."""
    b = {k: v.astype(np.float64) for k, v in r.items()}
    with np.errstate(divide="ignore", invalid="ignore"):
        formulas = {
            "NDVI": lambda: (b["B08"] - b["B04"]) / (b["B08"] + b["B04"]),
            "SAVI": lambda: (1 + L) * (b["B08"] - b["B04"]) / (b["B08"] + b["B04"] + L),
            "BAI": lambda: 1.0 / ((0.1 - b["B04"]) ** 2 + (0.06 - b["B08"]) ** 2),
            "BAIS2": lambda: (1 - np.sqrt(b["B06"] * b["B07"] * b["B8A"] / b["B04"]))
            * ((b["B12"] - b["B8A"]) / np.sqrt(b["B12"] + b["B8A"]) + 1),
            "NDWI": lambda: (b["B03"] - b["B08"]) / (b["B03"] + b["B08"]),
            "NDMI": lambda: (b["B08"] - b["B11"]) / (b["B08"] + b["B11"]),
            "MNDWI": lambda: (b["B03"] - b["B11"]) / (b["B03"] + b["B11"]),
            "NDBI": lambda: (b["B11"] - b["B08"]) / (b["B11"] + b["B08"]),
            "EVI": lambda: 2.5 * (b["B08"] - b["B04"]) / (b["B08"] + 6 * b["B04"] - 7.5 * b["B02"] + 1),
            "NBR": lambda: (b["B08"] - b["B12"]) / (b["B08"] + b["B12"]),
            "BSI": lambda: ((b["B11"] + b["B04"]) - (b["B08"] + b["B02"]))
            / ((b["B11"] + b["B04"]) + (b["B08"] + b["B02"])),
            "NDRE": lambda: (b["B08"] - b["B05"]) / (b["B08"] + b["B05"]),
        }
        return {name: formula() for name, formula in formulas.items()
                if all(band in b for band in INDICES[name].bands)}


def read_bands(path, names, offset=0.0):
    with rasterio.open(path) as src:
        data = src.read().astype(np.float64)
    return {n: (data[i] + offset) / 10000.0 for i, n in enumerate(names)}


def assert_matches(out_path, expected, names):
    with rasterio.open(out_path) as out:
        assert list(out.descriptions) == names
        assert out.dtypes[0] == "float32" and out.nodata == NODATA
        for i, name in enumerate(names, start=1):
            got = out.read(i).astype(np.float64)
            want = expected[name]
            defined = np.isfinite(want)
            assert np.all(np.isfinite(got)), f"{name}: inf/NaN leaked"
            np.testing.assert_allclose(got[defined], want[defined], rtol=2e-5, atol=2e-5,
                                       err_msg=name)
            assert np.all(got[~defined] == NODATA), name


def test_all_indices_on_terramind_l2a(tmp_path):
    chip = data_path("terramind", "S2L2A", "282D_485L_3_3.tif")
    names = L2A_12.split(",")
    out = tmp_path / "indices.tif"
    result = compute_spectral_indices(str(chip), str(out), indices=list(INDICES), band_names=L2A_12)
    assert result["offset"] == 0.0  # 2021 acquisition: no baseline-04.00 offset
    assert_matches(out, reference_indices(read_bands(chip, names)), list(INDICES))
    with rasterio.open(chip) as src, rasterio.open(out) as dst:
        assert dst.crs == src.crs and dst.transform == src.transform
        assert (dst.width, dst.height) == (src.width, src.height)
    with rasterio.open(out) as dst:  # a vegetated chip: NDVI spans bare to dense vegetation
        ndvi = dst.read(1)
        assert ndvi.max() > 0.6 and ndvi.min() < 0.1


@pytest.fixture
def major_tom_vrt(tmp_path):
    folder = data_path("major_tom", "S2L2A")
    product = glob.glob(str(folder / "*" / "*" / "S2A_MSIL2A_*N0400*"))[0]
    files = [os.path.join(product, f"{b}.tif") for b in ("B02", "B03", "B04", "B08")]
    vrt = tmp_path / "major_tom.vrt"
    subprocess.run(["gdalbuildvrt", "-q", "-separate", str(vrt), *files], check=True)
    return vrt


def test_baseline_0400_offset_detected_on_major_tom(major_tom_vrt, tmp_path):
    names = ["B02", "B03", "B04", "B08"]
    out = tmp_path / "ndvi.tif"
    messages = []
    result = compute_spectral_indices(str(major_tom_vrt), str(out), indices=["NDVI", "NDWI"],
                                      band_names=",".join(names), log=messages.append)
    assert result["offset"] == -1000.0
    assert any("baseline 04.00" in m for m in messages)
    expected = reference_indices(read_bands(major_tom_vrt, names, offset=-1000.0))
    with rasterio.open(major_tom_vrt) as src:  # all-zero pixels are outside the swath
        swath = np.any(src.read() != 0, axis=0)
    for name in ("NDVI", "NDWI"):
        expected[name] = np.where(swath, expected[name], np.nan)
    assert_matches(out, expected, ["NDVI", "NDWI"])
    # Without the offset the values differ measurably: the detection matters.
    plain = tmp_path / "plain.tif"
    compute_spectral_indices(str(major_tom_vrt), str(plain), indices=["NDVI"],
                             band_names=",".join(names), offset=0.0)
    with rasterio.open(out) as a, rasterio.open(plain) as b:
        diff = np.abs(a.read(1) - b.read(1))[a.read(1) != NODATA]
        assert np.median(diff) > 0.01


def write_fixture(path, bands, names=None, nodata=None, dtype="uint16"):
    count, height, width = bands.shape
    with rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=count,
                       dtype=dtype, crs="EPSG:32631", transform=from_origin(500000, 4900000, 10, 10),
                       nodata=nodata) as dst:
        dst.write(bands.astype(dtype))
        for i, name in enumerate(names or [], start=1):
            dst.set_band_description(i, name)


def test_nodata_and_zero_denominator(tmp_path):
    b03 = np.full((4, 5), 800)
    b04 = np.full((4, 5), 1200)
    b08 = np.full((4, 5), 3000)
    b04[0, 0] = b08[0, 0] = 1000        # reflectance 0 and 0 after the -1000 offset: 0/0
    b08[1, 1] = 65535                   # the file's nodata value
    b03[2, 2] = b04[2, 2] = b08[2, 2] = 0  # outside the swath
    src = tmp_path / "s2.tif"
    write_fixture(src, np.stack([b03, b04, b08]), ["B3", "B4", "B8"], nodata=65535)
    out = tmp_path / "out.tif"
    result = compute_spectral_indices(str(src), str(out), indices=["NDVI", "NDWI"], offset=-1000)
    with rasterio.open(out) as dst:
        ndvi, ndwi = dst.read(1), dst.read(2)
    assert ndvi[0, 0] == NODATA and ndvi[1, 1] == NODATA and ndvi[2, 2] == NODATA
    assert ndwi[0, 0] != NODATA  # (-0.02 - 0) / (-0.02 + 0) is defined: 1
    assert ndwi[0, 0] == pytest.approx(1.0)
    assert ndvi[3, 4] == pytest.approx((0.2 - 0.02) / (0.2 + 0.02), rel=1e-6)
    assert result["valid_fraction"]["NDVI"] == pytest.approx(17 / 20)


def test_custom_expression_and_band_order(tmp_path):
    chip = data_path("terramind", "S2L2A", "433D_629L_3_1.tif")
    out = tmp_path / "custom.tif"
    compute_spectral_indices(str(chip), str(out), indices=["NDVI"], band_names=L2A_12,
                             expression="(B8 - B4) / (B8 + B4)", expression_name="MYNDVI")
    with rasterio.open(out) as dst:
        assert dst.descriptions == ("NDVI", "MYNDVI")
        np.testing.assert_array_equal(dst.read(1), dst.read(2))


@pytest.mark.parametrize("text", [
    "__import__('os').system('true')", "B04.real", "[B04]", "lambda: 1", "B04 if B08 else B03",
    "open('x')", "B13 + 1", "NIR - RED",
])
def test_expression_rejects_anything_but_arithmetic(text):
    with pytest.raises(InputError):
        Expression(text)


def test_missing_band_is_named(tmp_path):
    src = tmp_path / "rgb.tif"
    write_fixture(src, np.ones((3, 8, 8)) * 1000, ["B02", "B03", "B04"])
    out = tmp_path / "out.tif"
    with pytest.raises(BandError, match=r"NDVI needs band\(s\) B08 \(NIR\)"):
        compute_spectral_indices(str(src), str(out), indices=["NDVI"])
    assert not out.exists()


def test_not_a_raster_is_named(tmp_path):
    bogus = tmp_path / "notes.tif"
    bogus.write_text("not a raster")
    with pytest.raises(InputError, match="notes.tif' is a text file, not a raster"):
        compute_spectral_indices(str(bogus), str(tmp_path / "o.tif"), band_names="B04,B08")


def test_unwritable_output(tmp_path):
    chip = data_path("terramind", "S2L2A", "282D_485L_3_3.tif")
    with pytest.raises(OutputError, match="does not exist"):
        compute_spectral_indices(str(chip), str(tmp_path / "missing" / "o.tif"), band_names=L2A_12)


def test_blocks_do_not_change_values_and_cancel_leaves_nothing(tmp_path):
    chip = data_path("terramind", "S2L2A", "637U_59R_1_3.tif")
    whole, strips = tmp_path / "whole.tif", tmp_path / "strips.tif"
    fractions = []
    compute_spectral_indices(str(chip), str(whole), band_names=L2A_12)
    compute_spectral_indices(str(chip), str(strips), band_names=L2A_12, memory_mb=0.05,
                             progress=fractions.append)
    assert len(fractions) > 10 and fractions == sorted(fractions) and fractions[-1] == 1.0
    with rasterio.open(whole) as a, rasterio.open(strips) as b:
        np.testing.assert_array_equal(a.read(), b.read())
    calls = []

    def cancel_after_three():
        calls.append(1)
        return len(calls) > 3

    target = tmp_path / "cancelled.tif"
    with pytest.raises(CancelledError):
        compute_spectral_indices(str(chip), str(target), band_names=L2A_12, memory_mb=0.05,
                                 is_cancelled=cancel_after_three)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["strips.tif", "whole.tif"]
