"""Co-registration and stacking engine on real Sentinel-1/Sentinel-2 chips (no QGIS)."""

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.enums import Resampling
from rasterio.transform import rowcol
from rasterio.warp import reproject, transform as transform_points

from conftest import data_path
from landfusion.core.sensors import sentinel1 as sar
from landfusion.core.stack.coregister import coregister_stack, sidecar_path
from landfusion.core.errors import BandError, CancelledError, InputError, NoOverlapError

NODATA = -9999.0
TERRAMIND_BANDS = "B01,B02,B03,B04,B05,B06,B07,B08,B8A,B09,B11,B12"


class Messages:
    """Collects log and warning messages."""

    def __init__(self):
        self.logs, self.warnings = [], []

    def kwargs(self):
        return {"log": self.logs.append, "warn": self.warnings.append}


def _ssl4eo():
    root = data_path("ssl4eo")
    s2_dir = sorted((root / "s2a" / "0000200").iterdir())[0]
    s2 = sorted(str(p) for p in s2_dir.glob("B*.tif"))
    s1 = sorted(str(p) for p in (root / "s1" / "0000200").glob("*/V?.tif"))
    return s2, s1


def _bigearthnet(patch="87_48"):
    root = data_path("bigearthnet")
    s2 = sorted(str(p) for p in root.glob(f"BigEarthNet-S2-Example/*_{patch}/*_B*.tif"))
    s1 = sorted(str(p) for p in root.glob(f"BigEarthNet-S1-Example/*_{patch}/*_V?.tif"))
    return s2, s1


def _band(path, name):
    with rasterio.open(path) as ds:
        return ds.read(list(ds.descriptions).index(name) + 1)


def _masked(values):
    return np.where(values == NODATA, np.nan, values)


def _leftovers(folder):
    return sorted(p for p in os.listdir(folder) if p.startswith((".landfusion", "out")))


# ---------------------------------------------------------------------------------------------
# Real co-registration cases
# ---------------------------------------------------------------------------------------------


def test_ssl4eo_geographic_inputs_onto_utm_10m_grid(tmp_path):
    """S1 and S2 in EPSG:4326 with different pixel sizes land on one UTM 10 m grid."""
    s2, s1 = _ssl4eo()
    out = str(tmp_path / "stack.tif")
    messages = Messages()
    # A small memory budget gives 256 x 256 blocks: block seams cross the chip.
    fractions = []
    result = coregister_stack(out, s2=s2, s1=s1, target_crs="EPSG:32643", target_resolution=10,
                              memory_mb=18.5, progress=fractions.append, **messages.kwargs())
    assert len(fractions) >= 4 and fractions[-1] == 1.0
    with rasterio.open(out) as ds:
        assert ds.crs.to_epsg() == 32643
        assert ds.transform.a == 10.0 and ds.transform.e == -10.0
        assert ds.transform.c % 10 == 0 and ds.transform.f % 10 == 0
        assert ds.count == len(result["bands"]) == 14
        names = list(ds.descriptions)
        grid = (ds.transform, ds.width, ds.height)
        assert ds.nodata == NODATA
    assert names[:3] == ["S1_T1_VV_dB", "S1_T1_VH_dB", "S1_T1_VVVH_dB"]
    assert names[6:] == ["S2_B02", "S2_B03", "S2_B04", "S2_B08", "NDVI", "SAVI", "BAI", "NDWI"]
    assert any("warped (bilinear, in linear power)" in m for m in messages.logs)

    # The brightest Sentinel-1 target lands on the pixel that holds its coordinates.
    vv_path = [p for p in s1 if "20200607" in p and p.endswith("VV.tif")][0]
    with rasterio.open(vv_path) as src:
        vv = src.read(1)
        row, col = np.unravel_index(np.argmax(vv), vv.shape)
        lon, lat = src.xy(row, col)
    xs, ys = transform_points("EPSG:4326", "EPSG:32643", [lon], [lat])
    expected = rowcol(grid[0], xs[0], ys[0])
    out_vv = _masked(_band(out, "S1_T1_VV_dB"))
    window = out_vv[expected[0] - 6:expected[0] + 7, expected[1] - 6:expected[1] + 7]
    peak = np.unravel_index(np.nanargmax(window), window.shape)
    assert abs(peak[0] - 6) <= 1 and abs(peak[1] - 6) <= 1

    # Sentinel-2 B04 equals one GDAL warp of the whole file (no seams, no shift).
    b4 = [p for p in s2 if p.endswith("/B4.tif")][0]
    with rasterio.open(b4) as src:
        expected_b4 = np.full((grid[2], grid[1]), np.nan, dtype=np.float32)
        reproject(src.read(1).astype(np.float32), expected_b4, src_transform=src.transform,
                  src_crs=src.crs, src_nodata=np.nan, dst_transform=grid[0],
                  dst_crs="EPSG:32643", dst_nodata=np.nan, resampling=Resampling.bilinear)
    got = _masked(_band(out, "S2_B04"))
    both = np.isfinite(got) & np.isfinite(expected_b4)
    assert both.mean() > 0.95
    # Up to 2 DN: GDAL approximates the transformation to 1/8 pixel, per block.
    np.testing.assert_allclose(got[both], expected_b4[both] / 10000.0, atol=2e-4)
    assert np.mean(np.abs(got[both] - expected_b4[both] / 10000.0)) < 2e-5

    # NDVI from the spectral-index core, on the stacked reflectance.
    b8 = _masked(_band(out, "S2_B08"))
    red = got
    ndvi = _masked(_band(out, "NDVI"))
    ok = np.isfinite(ndvi)
    np.testing.assert_allclose(ndvi[ok], ((b8 - red) / (b8 + red))[ok], rtol=1e-5, atol=1e-6)

    sidecar = json.loads(Path(sidecar_path(out)).read_text())
    assert sidecar["band_names"] == names
    assert sidecar["grid"]["crs"] == "EPSG:32643"
    assert sidecar["bands"][0]["date"] == "2020-06-07" and sidecar["bands"][0]["units"] == "dB"
    assert sidecar["resampling"]["S1:20200607:VV"] == "bilinear"


def test_ssl4eo_temporal_statistics_in_linear_power(tmp_path):
    s2, s1 = _ssl4eo()
    out = str(tmp_path / "stack.tif")
    result = coregister_stack(out, s1=s1, reference=None, target_crs="EPSG:32643",
                              target_resolution=20, temporal=["mean", "std", "min", "max"],
                              s1_rvi=True)
    assert "S1_VV_mean_dB" in result["bands"] and "S1_VH_max_dB" in result["bands"]
    first = _masked(_band(out, "S1_T1_VV_dB"))
    second = _masked(_band(out, "S1_T2_VV_dB"))
    ok = np.isfinite(first) & np.isfinite(second)
    mean = _masked(_band(out, "S1_VV_mean_dB"))
    expected = 10 * np.log10((10 ** (first / 10) + 10 ** (second / 10)) / 2)
    np.testing.assert_allclose(mean[ok], expected[ok], atol=1e-3)
    assert np.all(mean[ok] >= (first[ok] + second[ok]) / 2 - 1e-4)  # linear mean >= dB mean
    np.testing.assert_allclose(_masked(_band(out, "S1_VV_std_dB"))[ok],
                               np.abs(first - second)[ok] / 2, atol=1e-3)
    np.testing.assert_allclose(_masked(_band(out, "S1_VV_max_dB"))[ok],
                               np.maximum(first, second)[ok], atol=1e-4)
    vh = _masked(_band(out, "S1_T1_VH_dB"))
    rvi = _masked(_band(out, "S1_T1_RVI"))
    ok = np.isfinite(first) & np.isfinite(vh)
    lin_vv, lin_vh = 10 ** (first / 10), 10 ** (vh / 10)
    np.testing.assert_allclose(rvi[ok], (4 * lin_vh / (lin_vv + lin_vh))[ok], rtol=1e-3)


def test_bigearthnet_10_20_60m_bands_onto_10m_grid(tmp_path):
    s2, s1 = _bigearthnet()
    out = str(tmp_path / "stack.tif")
    messages = Messages()
    coregister_stack(out, s2=s2, s1=s1, s2_bands=["B02", "B05", "B8A", "B11", "B01"],
                     indices=["NDVI", "NDMI"], **messages.kwargs())
    b02 = [p for p in s2 if p.endswith("_B02.tif")][0]
    b05 = [p for p in s2 if p.endswith("_B05.tif")][0]
    vv = [p for p in s1 if p.endswith("_VV.tif")][0]
    with rasterio.open(out) as ds, rasterio.open(b02) as ref:
        assert ds.transform == ref.transform and ds.crs == ref.crs
        assert (ds.width, ds.height) == (120, 120)
        assert list(ds.descriptions) == [
            "S1_VV_dB", "S1_VH_dB", "S1_VVVH_dB", "S2_B02", "S2_B05",
            "S2_B8A", "S2_B11", "S2_B01", "NDVI", "NDMI"]
        # 10 m bands and S1 already on the grid come through unchanged.
        np.testing.assert_array_equal(
            ds.read(4), ref.read(1).astype(np.float32) / np.float32(10000))
    with rasterio.open(vv) as src:
        np.testing.assert_array_equal(_band(out, "S1_VV_dB"), src.read(1))
    # 20 m B05 brought to 10 m: bilinear, and 2x2 means stay close to the 20 m values.
    with rasterio.open(b05) as src:
        coarse = src.read(1).astype(np.float32) / 10000
    fine = _band(out, "S2_B05")
    assert fine.shape == (120, 120) and np.all(fine != NODATA)
    block_means = fine.reshape(60, 2, 60, 2).mean(axis=(1, 3))
    inner = (slice(2, -2), slice(2, -2))
    assert np.corrcoef(block_means[inner].ravel(), coarse[inner].ravel())[0, 1] > 0.97
    assert len(np.unique(fine)) > len(np.unique(coarse))  # interpolated, not duplicated
    assert any("S2 B05" in m and "warped (bilinear)" in m for m in messages.logs)
    assert any("S2 B02" in m and "read as is" in m for m in messages.logs)


def test_s1_20m_scene_onto_10m_grid_resampled_in_linear_power(tmp_path):
    path = str(data_path("s1_grd_rtc", "S1A__IW___A_20150309T173017_VV_grd_mli_geo_norm_db.tif"))
    out = str(tmp_path / "db.tif")
    messages = Messages()
    result = coregister_stack(out, s1=[path], target_resolution=10, **messages.kwargs())
    assert result["bands"] == ["S1_VV_dB"]
    assert any("has only VV" in m for m in messages.logs)
    with rasterio.open(path) as src:
        db = src.read(1)
        valid = db != src.nodata
        src_transform, src_crs = src.transform, src.crs
    with rasterio.open(out) as ds:
        assert ds.crs == src_crs and ds.transform.a == 10.0
        assert (ds.transform.c, ds.transform.f) == (src_transform.c, src_transform.f)
        assert (ds.width, ds.height) == (536, 434)
        got = _masked(ds.read(1))
        grid = ds.transform
    linear = np.where(valid, 10 ** (db / 10), np.nan).astype(np.float32)

    def warp(values):
        dst = np.full(got.shape, np.nan, dtype=np.float32)
        reproject(values, dst, src_transform=src_transform, src_crs=src_crs, src_nodata=np.nan,
                  dst_transform=grid, dst_crs=src_crs, dst_nodata=np.nan,
                  resampling=Resampling.bilinear)
        return dst

    expected = 10 * np.log10(warp(linear))
    ok = np.isfinite(got) & np.isfinite(expected)
    assert ok.mean() > 0.95
    np.testing.assert_allclose(got[ok], expected[ok], atol=2e-4)
    in_db = warp(np.where(valid, db, np.nan).astype(np.float32))
    assert np.nanmean(got - in_db) > 0.01  # averaging in dB would be biased low
    # Nodata (-99 dB marker) of the input is nodata in the stack, not a value.
    assert np.nanmin(got) > -60

    # dB -> linear -> dB round trip: the same scene given in linear units.
    linear_file = str(tmp_path / "S1A_20150309_VV_linear.tif")
    with rasterio.open(path) as src:
        profile = src.profile
    profile.update(nodata=-1.0)
    with rasterio.open(linear_file, "w", **profile) as dst:
        dst.write(np.where(valid, linear, -1.0).astype(np.float32), 1)
    out_lin = str(tmp_path / "lin.tif")
    coregister_stack(out_lin, s1=[linear_file], s1_units="linear", s1_output_units="linear",
                     target_resolution=10)
    lin_values = _masked(_band(out_lin, "S1_VV_lin"))
    np.testing.assert_allclose(10 * np.log10(lin_values[ok]), got[ok], atol=2e-4)
    out_back = str(tmp_path / "back.tif")
    coregister_stack(out_back, s1=[linear_file], s1_units="linear", target_resolution=10)
    np.testing.assert_allclose(_masked(_band(out_back, "S1_VV_dB"))[ok], got[ok],
                               atol=2e-4)


def test_lee_filter_reduces_speckle_and_blocks_do_not_show(tmp_path):
    path = str(data_path("s1_grd_rtc", "S1A__IW___A_20150309T173017_VV_grd_mli_geo_norm_db.tif"))
    small = str(tmp_path / "small.tif")
    large = str(tmp_path / "large.tif")
    coregister_stack(small, s1=[path], speckle_filter="lee", speckle_window=7, memory_mb=0.05)
    coregister_stack(large, s1=[path], speckle_filter="lee", speckle_window=7)
    np.testing.assert_allclose(_band(small, "S1_VV_dB"),
                               _band(large, "S1_VV_dB"), atol=1e-5)
    with rasterio.open(path) as src:
        db = np.where(src.read(1) == src.nodata, np.nan, src.read(1))
    filtered = _masked(_band(large, "S1_VV_dB"))
    assert np.array_equal(np.isfinite(filtered), np.isfinite(db))
    # Less pixel-to-pixel noise, same overall backscatter (in linear power).
    assert np.nanstd(np.diff(filtered, axis=1)) < 0.7 * np.nanstd(np.diff(db, axis=1))
    assert abs(np.nanmean(10 ** (filtered / 10)) / np.nanmean(10 ** (db / 10)) - 1) < 0.02


def test_lee_filter_keeps_flat_areas_and_edges():
    flat = np.full((20, 20), 0.1, dtype=np.float32)
    np.testing.assert_allclose(sar.lee_filter(flat, 5), flat, rtol=1e-6)
    edge = np.where(np.arange(40)[None, :] < 20, 0.01, 1.0).repeat(40, axis=0).astype(np.float32)
    filtered = sar.lee_filter(edge, 5)
    np.testing.assert_allclose(filtered[:, :18], 0.01, rtol=1e-5)
    np.testing.assert_allclose(filtered[:, 22:], 1.0, rtol=1e-5)


def test_terramind_inputs_on_the_grid_come_through_bit_identical(tmp_path):
    s2 = str(data_path("terramind", "S2L2A", "282D_485L_3_3.tif"))
    s1 = str(data_path("terramind", "S1RTC", "282D_485L_3_3.tif"))
    out = str(tmp_path / "stack.tif")
    messages = Messages()
    coregister_stack(out, s2=[s2], s2_band_names=TERRAMIND_BANDS, s2_values="dn", s1=[s1],
                     **messages.kwargs())
    with rasterio.open(out) as ds, rasterio.open(s2) as optical, rasterio.open(s1) as radar:
        assert ds.transform == optical.transform and ds.crs == optical.crs
        assert (ds.width, ds.height) == (optical.width, optical.height)
        names = list(ds.descriptions)
        assert names[:3] == ["S1_VV_dB", "S1_VH_dB", "S1_VVVH_dB"]
        for k, band in ((4, 2), (5, 3), (6, 4), (7, 8)):
            assert names[k - 1] == f"S2_B0{band}"
            src_index = TERRAMIND_BANDS.split(",").index(f"B0{band}") + 1
            np.testing.assert_array_equal(ds.read(k), optical.read(src_index).astype(np.float32))
        vv, vh = radar.read(1).astype(np.float32), radar.read(2).astype(np.float32)
        np.testing.assert_array_equal(ds.read(1), vv)
        np.testing.assert_array_equal(ds.read(2), vh)
        np.testing.assert_array_equal(ds.read(3), vv - vh)
    assert sum("read as is" in m for m in messages.logs) == 6
    assert any("band 1 is taken as VV" in m for m in messages.logs)
    # Reflectance output: exactly (DN + offset) / scale of the same DNs.
    out_r = str(tmp_path / "reflectance.tif")
    coregister_stack(out_r, s2=[s2], s2_band_names=TERRAMIND_BANDS, s1=[s1])
    with rasterio.open(s2) as optical:
        np.testing.assert_array_equal(
            _band(out_r, "S2_B04"), optical.read(4).astype(np.float32) / np.float32(10000))


def _dated_s1_copies(tmp_path, count):
    """Four 'dates' of the terramind S1 chip, each shifted by a known number of dB."""
    src_path = str(data_path("terramind", "S1RTC", "282D_485L_3_3.tif"))
    paths = []
    with rasterio.open(src_path) as src:
        data = src.read().astype(np.float32)
        profile = src.profile
    profile.update(dtype="float32")
    for k in range(count):
        path = str(tmp_path / f"S1B_IW_GRDH_2019091{k + 1}_VVVH.tif")
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(data + np.float32(k), )
            dst.set_band_description(1, "VV")
            dst.set_band_description(2, "VH")
        paths.append(path)
    return paths, data


def test_rouen_preset_gives_the_20_band_layout(tmp_path):
    s2 = str(data_path("terramind", "S2L2A", "282D_485L_3_3.tif"))
    s1, data = _dated_s1_copies(tmp_path, 4)
    out = str(tmp_path / "out_rouen.tif")
    result = coregister_stack(out, s2=[s2], s2_band_names=TERRAMIND_BANDS, s1=list(reversed(s1)),
                              preset="rouen", s1_rvi=True, temporal=["mean"])
    dates = [f"2019091{k}" for k in range(1, 5)]
    ranks = [f"T{k}" for k in range(1, 5)]  # multi-date stacks name dates by rank
    expected = ([f"S1_{t}_VV_dB" for t in ranks] + [f"S1_{t}_VH_dB" for t in ranks]
                + [f"S1_{t}_VVVH_dB" for t in ranks] + ["NDVI", "SAVI", "BAI", "NDWI"]
                + ["S2_B02", "S2_B03", "S2_B04", "S2_B08"])
    assert result["bands"] == expected and len(expected) == 20
    with rasterio.open(out) as ds:
        assert list(ds.descriptions) == expected
        for k in range(4):
            np.testing.assert_array_equal(ds.read(k + 1), data[0] + np.float32(k))
            np.testing.assert_array_equal(ds.read(k + 5), data[1] + np.float32(k))
            # The real dates are in the metadata (ranks follow the dates, not the input order).
            assert ds.tags(k + 1)["DATE"] == dates[k] and ds.tags(k + 9)["DATE"] == dates[k]
        assert ds.tags()["SENTINEL1_DATES"] == ";".join(
            f"S1_T{k}=2019-09-1{k}" for k in range(1, 5))
    sidecar = json.loads(Path(sidecar_path(out)).read_text())
    assert sidecar["processing"]["preset"] == "rouen"
    assert [(d["rank"], d["band_prefix"], d["date"]) for d in sidecar["sentinel1_dates"]] == [
        (k, f"S1_T{k}_", f"2019-09-1{k}") for k in range(1, 5)]
    with pytest.raises(InputError, match="four Sentinel-1 dates"):
        coregister_stack(str(tmp_path / "out_3.tif"), s2=[s2], s2_band_names=TERRAMIND_BANDS,
                         s1=s1[:3], preset="rouen")


def test_single_date_stacks_of_different_dates_share_band_names(tmp_path):
    """A model trained on one date's stack reads another date's: names carry no date."""
    s2 = str(data_path("terramind", "S2L2A", "282D_485L_3_3.tif"))
    s1, _ = _dated_s1_copies(tmp_path, 2)
    names, dates = [], []
    for k, path in enumerate(s1):
        out = str(tmp_path / f"stack_{k}.tif")
        result = coregister_stack(out, s2=[s2], s2_band_names=TERRAMIND_BANDS, s1=[path])
        with rasterio.open(out) as ds:
            names.append(list(ds.descriptions))
            dates.append((ds.tags(1)["DATE"], ds.tags()["SENTINEL1_DATES"]))
        sidecar = json.loads(Path(sidecar_path(out)).read_text())
        assert sidecar["bands"][0]["date"] == f"2019-09-1{k + 1}"
        assert sidecar["sentinel1_dates"][0]["band_prefix"] == "S1_"
        assert result["bands"] == names[-1]
    assert names[0] == names[1]
    assert names[0][:3] == ["S1_VV_dB", "S1_VH_dB", "S1_VVVH_dB"]
    assert dates == [("20190911", "S1=2019-09-11"), ("20190912", "S1=2019-09-12")]


def test_scl_cloud_mask_blanks_optical_bands_only(tmp_path):
    s2, s1 = _bigearthnet()
    b05 = [p for p in s2 if p.endswith("_B05.tif")][0]
    scl_path = str(tmp_path / "SCL_20m.tif")
    with rasterio.open(b05) as src:
        profile = src.profile
    profile.update(dtype="uint8", nodata=None)
    scl = np.full((60, 60), 4, dtype=np.uint8)  # vegetation
    scl[0:10, 0:30] = 9  # cloud high probability
    scl[10:20, 0:30] = 3  # cloud shadow
    scl[20:30, 0:30] = 11  # snow: kept unless asked
    with rasterio.open(scl_path, "w", **profile) as dst:
        dst.write(scl, 1)
    out = str(tmp_path / "stack.tif")
    messages = Messages()
    result = coregister_stack(out, s2=s2, s1=s1, s2_mask=scl_path, **messages.kwargs())
    b04 = _band(out, "S2_B04")
    ndvi = _band(out, "NDVI")
    cloudy = np.zeros((120, 120), dtype=bool)
    cloudy[0:40, 0:60] = True
    assert np.all(b04[cloudy] == NODATA) and np.all(ndvi[cloudy] == NODATA)
    assert np.all(b04[~cloudy] != NODATA)
    assert np.all(_band(out, "S1_VV_dB") != NODATA)  # radar sees through clouds
    clear = 1 - cloudy.mean()
    assert result["clear_fraction"] == pytest.approx(clear)
    assert any(f"Clear-sky fraction of the Sentinel-2 pixels: {100 * clear:.1f} %" in m
               for m in messages.logs)
    snow = str(tmp_path / "snow.tif")
    coregister_stack(snow, s2=s2, s1=s1, s2_mask=scl_path, mask_snow=True)
    assert np.all(_band(snow, "S2_B04")[40:60, 0:60] == NODATA)


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------


def test_no_overlap_names_both_extents_and_writes_nothing(tmp_path):
    s2, _ = _bigearthnet()
    _, s1 = _ssl4eo()
    out = str(tmp_path / "out.tif")
    with pytest.raises(NoOverlapError) as info:
        coregister_stack(out, s2=s2, s1=s1)
    message = str(info.value)
    assert "does not overlap" in message
    assert "Sentinel-1 extent is [" in message and "Sentinel-2 extent is [" in message
    assert "EPSG:32633" in message
    assert _leftovers(tmp_path) == []


def test_partial_overlap_warns_with_covered_fraction(tmp_path):
    s2 = str(data_path("terramind", "S2L2A", "282D_485L_3_3.tif"))
    src_path = str(data_path("terramind", "S1RTC", "282D_485L_3_3.tif"))
    half = str(tmp_path / "S1_20210721_left.tif")
    with rasterio.open(src_path) as src:
        profile = src.profile
        data = src.read(window=((0, 224), (0, 112)))
    profile.update(width=112)
    with rasterio.open(half, "w", **profile) as dst:
        dst.write(data)
    out = str(tmp_path / "stack.tif")
    messages = Messages()
    result = coregister_stack(out, s2=[s2], s2_band_names=TERRAMIND_BANDS, s1=[half],
                              **messages.kwargs())
    assert any("covers only 50.0 % of the target grid" in w for w in messages.warnings)
    vv = _band(out, "S1_VV_dB")
    assert np.all(vv[:, 112:] == NODATA)
    np.testing.assert_array_equal(vv[:, :112], data[0].astype(np.float32))
    assert np.all(_band(out, "S2_B04") != NODATA)
    assert result["valid_fraction"]["S1_VV_dB"] == pytest.approx(0.5)


def test_missing_band_for_an_index_is_named(tmp_path):
    s2, _ = _bigearthnet()
    without_nir = [p for p in s2 if not p.endswith("_B08.tif")]
    out = str(tmp_path / "out.tif")
    with pytest.raises(BandError, match=r"NDVI needs band\(s\) B08"):
        coregister_stack(out, s2=without_nir, s2_bands=["B02"], indices=["NDVI"])
    assert _leftovers(tmp_path) == []


def test_unreadable_file_is_named(tmp_path):
    s2, _ = _bigearthnet()
    broken = tmp_path / "S1A_20170613_VV.tif"
    broken.write_text("not a raster")
    out = str(tmp_path / "out.tif")
    with pytest.raises(InputError, match="S1A_20170613_VV.tif' is a text file, not a raster"):
        coregister_stack(out, s2=s2, s1=[str(broken)])
    with pytest.raises(InputError, match="does not exist"):
        coregister_stack(out, s2=s2 + [str(tmp_path / "missing_B12.tif")])
    assert _leftovers(tmp_path) == []


def test_unit_mismatch_is_warned(tmp_path):
    path = str(data_path("s1_grd_rtc", "S1A__IW___A_20150309T173017_VV_grd_mli_geo_norm_db.tif"))
    messages = Messages()
    coregister_stack(str(tmp_path / "out.tif"), s1=[path], s1_units="linear", **messages.kwargs())
    assert any("should hold linear Sentinel-1 backscatter, but its values look like dB" in w
               for w in messages.warnings)


def test_cancel_leaves_no_output(tmp_path):
    s2, s1 = _ssl4eo()
    out = str(tmp_path / "out.tif")
    calls = []

    def cancel_after_first_block():
        calls.append(1)
        return len(calls) > 1

    with pytest.raises(CancelledError):
        coregister_stack(out, s2=s2, s1=s1, target_crs="EPSG:32643", target_resolution=10,
                         memory_mb=18.5, is_cancelled=cancel_after_first_block)
    assert len(calls) == 2
    assert _leftovers(tmp_path) == []
    assert not os.path.exists(sidecar_path(out))


def test_failure_keeps_an_existing_output(tmp_path):
    s2, s1 = _bigearthnet()
    out = str(tmp_path / "out.tif")
    coregister_stack(out, s2=s2, s1=s1)
    before = Path(out).read_bytes()
    shutil.copy(out, tmp_path / "copy.tif")
    with pytest.raises(BandError):
        coregister_stack(out, s2=s2, s1=s1, indices=["BAIS2"], s2_bands=["B10"])
    assert Path(out).read_bytes() == before
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".landfusion")]


def test_mixed_multiband_and_per_band_files_and_binary_cloud_mask(tmp_path):
    """A 10 m 4-band raster plus a 20 m B11 file; a binary cloud mask at 10 m."""
    s2, _ = _bigearthnet()
    ten = [p for p in s2 if p.endswith(("_B02.tif", "_B03.tif", "_B04.tif", "_B08.tif"))]
    b11 = [p for p in s2 if p.endswith("_B11.tif")][0]
    with rasterio.open(ten[0]) as src:
        profile = src.profile
    profile.update(count=4)
    multi = str(tmp_path / "S2_10m.tif")
    with rasterio.open(multi, "w", **profile) as dst:
        for i, path in enumerate(ten, start=1):
            with rasterio.open(path) as src:
                dst.write(src.read(1), i)
            dst.set_band_description(i, f"B0{[2, 3, 4, 8][i - 1]}")
    cloud = str(tmp_path / "clouds.tif")
    profile.update(count=1, dtype="uint8")
    mask = np.zeros((120, 120), dtype=np.uint8)
    mask[60:, 60:] = 255
    with rasterio.open(cloud, "w", **profile) as dst:
        dst.write(mask, 1)
    out = str(tmp_path / "stack.tif")
    result = coregister_stack(out, s2=[multi, b11], s2_mask=cloud, mask_type="binary",
                              s2_bands=["B04", "B11"], indices=["NDMI"])
    assert result["bands"] == ["S2_B04", "S2_B11", "NDMI"]
    assert result["clear_fraction"] == pytest.approx(0.75)
    with rasterio.open(ten[2]) as src:
        red = src.read(1).astype(np.float32) / np.float32(10000)
    got = _band(out, "S2_B04")
    np.testing.assert_array_equal(got[:60], red[:60])
    assert np.all(got[60:, 60:] == NODATA) and np.all(_band(out, "NDMI")[60:, 60:] == NODATA)
    assert result["resampling"]["S2:B11"] == "bilinear"
    assert result["resampling"]["MASK"] == "none"


def test_single_polarisation_skips_ratio_and_rvi_and_says_so(tmp_path):
    _, s1 = _bigearthnet()
    vh = [p for p in s1 if p.endswith("_VH.tif")]
    messages = Messages()
    result = coregister_stack(str(tmp_path / "out.tif"), s1=vh, s1_rvi=True, **messages.kwargs())
    assert result["bands"] == ["S1_VH_dB"]
    assert any("has only VH: no ratio and RVI" in m for m in messages.logs)


def test_s1_outside_a_reference_grid_names_both_extents(tmp_path):
    _, s1 = _ssl4eo()
    reference = str(data_path("terramind", "S2L2A", "637U_59R_1_3.tif"))
    with pytest.raises(NoOverlapError) as info:
        coregister_stack(str(tmp_path / "out.tif"), s1=s1, reference=reference)
    message = str(info.value)
    assert "does not overlap the target grid" in message
    assert "Sentinel-1 extent is [" in message and "target grid extent is [" in message
    assert "EPSG:32632" in message


def test_names_dates_and_units_from_files():
    assert sar.polarisation_from_text("S1A_IW_GRDH_1SDV_20170613T165043_33UUP_87_48_VH.tif") == "VH"
    assert sar.polarisation_from_text("VV.tif") == "VV"
    assert sar.polarisation_from_text("s1_vv_db.tif") == "VV"
    assert sar.polarisation_from_text("S1_20190917_scene.tif") is None
    assert sar.date_from_text("S1A_IW_GRDH_1SDV_20170613T165043_33UUP_87_48_VH.tif") == "20170613"
    assert sar.date_from_text("VV.tif", "/x/S1A_20200903T131212_y/VV.tif") == "20200903"
    assert sar.date_from_text("2021-07-21T08:40:10.000000000") == "20210721"
    assert sar.date_from_text("B4.tif") is None
    rng = np.random.default_rng(0)
    linear = rng.gamma(4.4, 0.05 / 4.4, size=1000).astype(np.float32)
    assert sar.guess_units(linear) == "linear"
    assert sar.guess_units(10 * np.log10(linear)) == "dB"
    np.testing.assert_allclose(sar.linear_to_db(sar.db_to_linear(np.float32([-25, -3, 0, 4]))),
                               [-25, -3, 0, 4], atol=1e-5)
    assert np.isnan(sar.linear_to_db(np.float32([0.0, -1.0]))).all()


def test_a_polarisation_given_twice_for_one_date_is_refused(tmp_path):
    """A 2-band VV/VH raster and a VV file of the same acquisition: VV is ambiguous."""
    _, s1 = _bigearthnet()
    vv = [p for p in s1 if p.endswith("_VV.tif")][0]
    both = tmp_path / os.path.basename(vv).replace("_VV.tif", ".tif")
    with rasterio.open(vv) as src:
        profile = src.profile
        data = src.read(1)
    profile.update(count=2)
    with rasterio.open(both, "w", **profile) as dst:
        dst.write(np.stack([data, data - 7]))
        dst.set_band_description(1, "VV")
        dst.set_band_description(2, "VH")
    shutil.copy(vv, tmp_path / os.path.basename(vv))
    with pytest.raises(InputError, match="Polarisation VV .* is given twice"):
        coregister_stack(str(tmp_path / "out.tif"),
                         s1=[str(both), str(tmp_path / os.path.basename(vv))])
    assert _leftovers(tmp_path) == []


def test_sentinel1_on_the_grid_in_db_written_in_linear_power(tmp_path):
    """Sentinel-1 read as is (already on the grid) in dB, written in linear power, no RVI."""
    _, s1 = _bigearthnet()
    out = str(tmp_path / "linear.tif")
    result = coregister_stack(out, s1=s1, s1_output_units="linear", s1_ratio=False)
    assert result["bands"] == ["S1_VV_lin", "S1_VH_lin"]
    assert set(result["resampling"].values()) == {"none"}
    vv = [p for p in s1 if p.endswith("_VV.tif")][0]
    with rasterio.open(vv) as src:
        expected = 10 ** (src.read(1).astype(np.float64) / 10)
    np.testing.assert_allclose(_band(out, "S1_VV_lin"), expected, rtol=1e-5)
