"""Time-series engine on real data (no QGIS): dates, periods, composites, temporal features."""

import datetime as dt
import json
import os
import shutil
import warnings

import numpy as np
import pytest
import rasterio
from rasterio.enums import Resampling
from rasterio.warp import reproject

from landfusion.core.errors import BandError, CancelledError, InputError, NoOverlapError, \
    OutputError
from landfusion.core.timeseries.composite import check_composite, temporal_composite
from landfusion.core.timeseries.dates import parse_date, parse_date_list
from landfusion.core.timeseries.features import check_features, temporal_features
from landfusion.core.timeseries.periods import parse_custom_periods, plan_periods
from landfusion.core.timeseries.statistics import STATISTICS
from timeseries_data import eolearn_arrays, eolearn_series, file_digests, ssl4eo_series

NODATA = -9999.0


class Messages:
    def __init__(self):
        self.logs, self.warnings = [], []

    def kwargs(self):
        return {"log": self.logs.append, "warn": self.warnings.append}


def _read(path):
    with rasterio.open(path) as ds:
        data = ds.read()
        return np.where(data == ds.nodata, np.nan, data), list(ds.descriptions), ds.crs, \
            ds.transform, ds.tags()


def _quiet(function, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return function(*args, **kwargs)


@pytest.fixture(scope="module")
def eolearn(tmp_path_factory):
    return eolearn_series(tmp_path_factory.mktemp("eolearn"))


# --- dates and periods ------------------------------------------------------------------------

def test_dates_from_names_and_text():
    assert parse_date("S2B_MSIL2A_20190917T101029_N0213") == dt.date(2019, 9, 17)
    assert parse_date("ndvi_2019-09-17.tif") == dt.date(2019, 9, 17)
    assert parse_date("2015-07-11T10:00:08") == dt.date(2015, 7, 11)
    assert parse_date("S1_T1_VV") is None
    assert parse_date_list("2019-01-05, 2019-01-17") == [dt.date(2019, 1, 5), dt.date(2019, 1, 17)]
    with pytest.raises(InputError, match="'2019-13-01' is not a date"):
        parse_date_list("2019-01-05,2019-13-01")


def test_periods():
    dates = [dt.date(2019, 11, 20), dt.date(2020, 3, 2)]
    months = plan_periods(dates, "month")
    assert [p.label for p in months] == ["2019-11", "2019-12", "2020-01", "2020-02", "2020-03"]
    assert months[3].end == dt.date(2020, 2, 29)
    seasons = plan_periods(dates, "season")
    assert [p.label for p in seasons] == ["2019-SON", "2020-DJF", "2020-MAM"]
    assert seasons[1].start == dt.date(2019, 12, 1) and seasons[1].end == dt.date(2020, 2, 29)
    assert [p.label for p in plan_periods(dates, "year")] == ["2019", "2020"]
    assert plan_periods(dates, "whole")[0].label == "ALL"
    custom = parse_custom_periods("2019-01-01/2019-03-31;2019-04-01/2019-06-30")
    assert [p.label for p in custom] == ["2019-01-01_2019-03-31", "2019-04-01_2019-06-30"]
    with pytest.raises(InputError, match="ends before it starts"):
        parse_custom_periods("2019-03-31/2019-01-01")
    with pytest.raises(InputError, match="YYYY-MM-DD/YYYY-MM-DD"):
        parse_custom_periods("2019-01-01-2019-03-31")


# --- composites on the eo-learn series ----------------------------------------------------------

def test_monthly_median_equals_numpy_over_clear_observations(eolearn, tmp_path):
    ndvi, masks, stamps = eolearn
    out = str(tmp_path / "monthly.tif")
    messages = Messages()
    result = temporal_composite(ndvi, out, masks=masks, mask_type="binary", memory_mb=1,
                                **messages.kwargs())
    data, dates = eolearn_arrays()
    composite, names, crs, transform, tags = _read(out)
    with rasterio.open(str(eolearn_series.__globals__["data_path"]("eolearn_timeseries",
                                                                   "NDVI_timeseries.tif"))) as ref:
        assert crs == ref.crs and transform == ref.transform
        assert composite.shape[1:] == (ref.height, ref.width)
    months = sorted({d.strftime("%Y-%m") for d in dates})
    assert names[:4] == ["2015-07_NDVI", "2015-07_CLEAR_COUNT", "2015-08_NDVI",
                         "2015-08_CLEAR_COUNT"]
    assert tags["LANDFUSION_ALGORITHM"] == "temporalcomposite"
    for month in months:
        chosen = [i for i, d in enumerate(dates) if d.strftime("%Y-%m") == month]
        expected = _quiet(np.nanmedian, data[chosen], axis=0)
        got = composite[names.index(f"{month}_NDVI")]
        np.testing.assert_allclose(got, expected, atol=1e-6, equal_nan=True)
        count = composite[names.index(f"{month}_CLEAR_COUNT")]
        np.testing.assert_array_equal(count, np.isfinite(data[chosen]).sum(axis=0))
    # months without acquisition are nodata bands with a warning naming them
    assert "2015-10_NDVI" in names and np.isnan(composite[names.index("2015-10_NDVI")]).all()
    assert any("2015-10" in w and "2015-11" in w for w in messages.warnings)
    # a month whose only acquisition is cloudy everywhere is nodata, named in a warning
    assert any("No clear observation" in w and "2016-04" in w for w in messages.warnings)
    assert any("from the file name" in m for m in messages.logs)
    assert any("matched to inputs by date" in m for m in messages.logs)
    sidecar = json.loads(open(result["sidecar"]).read())
    december = next(p for p in sidecar["periods"] if p["label"] == "2015-12")
    # two acquisitions of 2015-12-08 (adjacent orbits) both count
    assert december["dates"].count("2015-12-08") == 2
    assert sidecar["method"] == "median" and sidecar["period_kind"] == "month"
    assert os.path.exists(str(tmp_path / "monthly.qml"))


def test_dates_read_on_every_thread_give_the_same_composite(eolearn, tmp_path, monkeypatch):
    """With two threads the dates of a block are read at once, each on one thread; the composite
    is bit for bit the one read on a single thread."""
    import threading

    from landfusion.core.timeseries import reading

    ndvi, masks, _ = eolearn
    readers = {1: set(), 2: set()}
    threads = {"count": 1}
    original = reading.BandReader.read

    def read(self, window):
        readers[threads["count"]].add(threading.current_thread().name)
        return original(self, window)

    monkeypatch.setattr(reading.BandReader, "read", read)
    outputs = {}
    for count in (1, 2):
        threads["count"] = count
        outputs[count] = str(tmp_path / f"threads{count}.tif")
        temporal_composite(ndvi, outputs[count], masks=masks, mask_type="binary",
                           period="season", memory_mb=0.2, threads=count)
    assert len(readers[1]) == 1 and len(readers[2]) == 2, readers
    with rasterio.open(outputs[1]) as one, rasterio.open(outputs[2]) as two:
        assert one.descriptions == two.descriptions
        assert one.read().tobytes() == two.read().tobytes()


@pytest.mark.parametrize("method,function", [
    ("mean", np.nanmean), ("min", np.nanmin), ("max", np.nanmax)])
def test_seasonal_statistics_equal_numpy(eolearn, tmp_path, method, function):
    ndvi, masks, _ = eolearn
    out = str(tmp_path / f"{method}.tif")
    temporal_composite(ndvi, out, masks=masks, mask_type="binary", period="season", method=method)
    data, dates = eolearn_arrays()
    composite, names, *_ = _read(out)
    season = [i for i, d in enumerate(dates) if d.year == 2017 and d.month in (6, 7, 8)]
    expected = _quiet(function, data[season], axis=0)
    np.testing.assert_allclose(composite[names.index("2017-JJA_NDVI")], expected, atol=1e-6,
                               equal_nan=True)


def test_max_ndvi_best_pixel_and_custom_periods(eolearn, tmp_path):
    ndvi, masks, _ = eolearn
    out = str(tmp_path / "best.tif")
    folder = tmp_path / "periods"
    folder.mkdir()
    result = temporal_composite(ndvi, out, masks=masks, mask_type="binary", period="custom",
                                custom_periods="2016-04-01/2016-09-30;2017-04-01/2017-09-30",
                                method="maxndvi", output_folder=str(folder))
    data, dates = eolearn_arrays()
    composite, names, *_ = _read(out)
    assert names == ["2016-04-01_2016-09-30_NDVI", "2016-04-01_2016-09-30_CLEAR_COUNT",
                     "2017-04-01_2017-09-30_NDVI", "2017-04-01_2017-09-30_CLEAR_COUNT"]
    chosen = [i for i, d in enumerate(dates) if dt.date(2017, 4, 1) <= d <= dt.date(2017, 9, 30)]
    np.testing.assert_allclose(composite[2], _quiet(np.nanmax, data[chosen], axis=0), atol=1e-6,
                               equal_nan=True)
    # one raster per period with period-free band names, the period in the metadata
    assert len(result["period_files"]) == 2
    period_data, period_names, _, _, period_tags = _read(result["period_files"][1])
    assert period_names == ["NDVI", "CLEAR_COUNT"]
    assert period_tags["PERIOD"] == "2017-04-01_2017-09-30"
    np.testing.assert_array_equal(period_data, composite[2:4])


def test_landfusion_cloud_mask_recognised_whatever_the_type(eolearn, tmp_path):
    """Masks written by the cloudmask engine are read as such even when 'SCL' is chosen."""
    from landfusion.core.stack.cloud_mask import cloud_mask_from_scl

    ndvi, masks, _ = eolearn
    ndvi, masks = ndvi[:6], masks[:6]
    lf_masks = []
    for path in masks:
        with rasterio.open(path) as src:
            cloud = src.read(1)
            profile = dict(driver="GTiff", dtype="uint8", count=1, width=src.width,
                           height=src.height, crs=src.crs, transform=src.transform)
        scl = tmp_path / ("scl_" + os.path.basename(path))
        with rasterio.open(scl, "w", **profile) as dst:
            dst.write(np.where(cloud == 1, 9, 4).astype("uint8"), 1)
        mask = str(tmp_path / ("lfmask_" + os.path.basename(path)))
        cloud_mask_from_scl(str(scl), mask)
        lf_masks.append(mask)
    messages = Messages()
    a = str(tmp_path / "lf.tif")
    b = str(tmp_path / "binary.tif")
    temporal_composite(ndvi, a, masks=lf_masks, mask_type="scl", **messages.kwargs())
    temporal_composite(ndvi, b, masks=masks, mask_type="binary")
    assert any("landfusion:cloudmask output" in m for m in messages.logs)
    np.testing.assert_array_equal(_read(a)[0], _read(b)[0])


# --- Sentinel-1 and Sentinel-2 together, different grids (SSL4EO) --------------------------------

def test_s1_composited_in_linear_power_s2_on_its_grid(tmp_path):
    s2, s1 = ssl4eo_series(tmp_path / "ssl4eo")
    out = str(tmp_path / "fused.tif")
    messages = Messages()
    temporal_composite(s2 + s1, out, period="whole", **messages.kwargs())
    composite, names, crs, transform, _ = _read(out)
    assert names == ["ALL_B02", "ALL_B03", "ALL_B04", "ALL_B08", "ALL_VV_dB", "ALL_VH_dB",
                     "ALL_CLEAR_COUNT"]
    with rasterio.open(s2[0]) as ref:
        assert crs == ref.crs and transform == ref.transform  # the finer Sentinel-2 grid
        grid = dict(dst_transform=ref.transform, dst_crs=ref.crs)
        shape = (ref.height, ref.width)
        s2_values = []
        for path in s2:
            with rasterio.open(path) as ds:
                s2_values.append(ds.read().astype(np.float32))
    np.testing.assert_allclose(composite[:4], np.median(np.stack(s2_values), axis=0), rtol=1e-6)
    linear, db = [], []
    for path in s1:
        with rasterio.open(path) as ds:
            values = ds.read(1).astype(np.float32)
            warped = np.full(shape, np.nan, np.float32)
            reproject(10 ** (values / 10), warped, src_transform=ds.transform, src_crs=ds.crs,
                      resampling=Resampling.bilinear, dst_nodata=np.nan, **grid)
            linear.append(warped)
            warped_db = np.full(shape, np.nan, np.float32)
            reproject(values, warped_db, src_transform=ds.transform, src_crs=ds.crs,
                      resampling=Resampling.bilinear, dst_nodata=np.nan, **grid)
            db.append(warped_db)
    expected = 10 * np.log10(np.mean(linear, axis=0))
    inner = (slice(5, -5), slice(5, -5))
    got = composite[4][inner]
    np.testing.assert_allclose(got, expected[inner], atol=0.02)
    # averaging dB values would be biased low by a fraction of a dB on average
    assert np.nanmean(expected[inner] - np.mean(db, axis=0)[inner]) > 0.2
    assert abs(np.nanmean(got - expected[inner])) < 0.005
    assert np.array_equal(composite[6][inner], np.full(got.shape, 4.0))
    assert any("warped (bilinear)" in m for m in messages.logs)


# --- temporal features ---------------------------------------------------------------------------

def _expected_features(data, dates):
    years = np.array([d.year + (d - dt.date(d.year, 1, 1)).days /
                      (366 if d.year % 4 == 0 else 365) for d in dates])
    doy = np.array([d.timetuple().tm_yday for d in dates])
    expected = {
        "mean": _quiet(np.nanmean, data, axis=0), "std": _quiet(np.nanstd, data, axis=0),
        "min": _quiet(np.nanmin, data, axis=0), "max": _quiet(np.nanmax, data, axis=0),
        "p10": _quiet(np.nanpercentile, data, 10, axis=0),
        "p90": _quiet(np.nanpercentile, data, 90, axis=0),
        "count": np.isfinite(data).sum(axis=0).astype(float)}
    expected["amplitude"] = expected["max"] - expected["min"]
    trend = np.full(data.shape[1:], np.nan)
    doymax = np.full(data.shape[1:], np.nan)
    for r in range(data.shape[1]):
        for c in range(data.shape[2]):
            values = data[:, r, c]
            ok = np.isfinite(values)
            if ok.sum() >= 2:
                trend[r, c] = np.polyfit(years[ok], values[ok], 1)[0]
            if ok.any():
                doymax[r, c] = doy[np.nanargmax(values)]
    expected["trend"], expected["doymax"] = trend, doymax
    return expected


def test_features_of_the_eolearn_stack_equal_numpy(tmp_path):
    from conftest import data_path

    src = data_path("eolearn_timeseries")
    out = str(tmp_path / "features.tif")
    messages = Messages()
    result = temporal_features([str(src / "NDVI_timeseries.tif")], out,
                               masks=[str(src / "CLM_cloudmask_timeseries.tif")],
                               mask_type="binary", memory_mb=1, statistics=STATISTICS,
                               **messages.kwargs())
    features, names, crs, transform, _ = _read(out)
    assert names == [f"NDVI_{s}" for s in ("mean", "std", "min", "max", "p10", "p90",
                                            "amplitude", "trend", "doymax", "count")]
    with rasterio.open(src / "NDVI_timeseries.tif") as ref:
        assert crs == ref.crs and transform == ref.transform
    data, dates = eolearn_arrays()
    expected = _expected_features(data, dates)
    for k, name in enumerate(names):
        statistic = name.split("_", 1)[1]
        got = features[k]
        if statistic == "count":
            got = np.nan_to_num(got)
        np.testing.assert_allclose(got, expected[statistic], atol=1e-5, rtol=1e-4,
                                   equal_nan=True, err_msg=name)
    assert result["dates"][0] == "2015-07-11"


def test_features_of_a_monthly_composite(eolearn, tmp_path):
    ndvi, masks, _ = eolearn
    composite = str(tmp_path / "monthly.tif")
    temporal_composite(ndvi, composite, masks=masks, mask_type="binary")
    out = str(tmp_path / "features.tif")
    temporal_features([composite], out, statistics=["mean", "max", "doymax", "count"])
    features, names, *_ = _read(out)
    assert names == ["NDVI_mean", "NDVI_max", "NDVI_doymax", "NDVI_count"]
    monthly, monthly_names, *_ = _read(composite)
    ndvi_bands = [i for i, n in enumerate(monthly_names) if n.endswith("_NDVI")]
    counts = [i for i, n in enumerate(monthly_names) if n.endswith("_CLEAR_COUNT")]
    values = np.where(monthly[counts] > 0, monthly[ndvi_bands], np.nan)
    np.testing.assert_allclose(features[0], _quiet(np.nanmean, values, axis=0), atol=1e-6,
                               equal_nan=True)
    np.testing.assert_array_equal(np.nan_to_num(features[3]), np.isfinite(values).sum(axis=0))
    # the month of the maximum, at the middle day of that month
    best = np.argmax(np.where(np.isfinite(values), values, -np.inf), axis=0)
    labels = [monthly_names[i].split("_")[0] for i in ndvi_bands]
    middle = [(dt.date(int(m[:4]), int(m[5:]), 1) + dt.timedelta(days=14)).timetuple().tm_yday
              for m in labels]
    some = np.isfinite(features[2])
    assert abs(np.take(middle, best)[some] - features[2][some]).max() <= 1


def test_features_of_dated_rasters_with_s1_in_db(tmp_path):
    s2, s1 = ssl4eo_series(tmp_path / "ssl4eo")
    out = str(tmp_path / "s1_features.tif")
    temporal_features(s1, out, statistics=["mean", "min", "count"])
    features, names, *_ = _read(out)
    assert names == ["VV_dB_mean", "VV_dB_min", "VV_dB_count", "VH_dB_mean", "VH_dB_min",
                     "VH_dB_count"]
    with rasterio.open(s1[0]) as a, rasterio.open(s1[1]) as b:
        vv = np.stack([a.read(1), b.read(1)]).astype(np.float32)
    expected_mean = 10 * np.log10(np.mean(10 ** (vv / 10), axis=0))
    np.testing.assert_allclose(features[0], expected_mean, atol=1e-4)
    np.testing.assert_allclose(features[1], vv.min(axis=0), atol=1e-6)


# --- bad input: clear messages, nothing written, inputs untouched --------------------------------

def test_bad_inputs(eolearn, tmp_path):
    ndvi, masks, _ = eolearn
    ndvi, masks = ndvi[:8], masks[:8]
    before = file_digests(ndvi + masks)
    out = str(tmp_path / "out.tif")
    undated = tmp_path / "scene.tif"
    shutil.copy(ndvi[0], undated)
    with pytest.raises(InputError, match="No acquisition date found for scene.tif"):
        temporal_composite([str(undated)] + ndvi[1:], out)
    with pytest.raises(InputError, match="3 date.* for 8 raster"):
        temporal_composite(ndvi, out, dates="2019-01-01,2019-01-02,2019-01-03")
    with pytest.raises(InputError, match="given twice as input"):
        temporal_composite(ndvi + [ndvi[0]], out)
    with pytest.raises(InputError, match="7 mask.* for 8 input"):
        temporal_composite(ndvi, out, masks=masks[:7], mask_type="binary")
    renamed = tmp_path / "clm_20990101.tif"
    shutil.copy(masks[0], renamed)
    with pytest.raises(InputError, match="no mask dated 2015-07-11.*2099-01-01 match no input"):
        temporal_composite(ndvi, out, masks=[str(renamed)] + masks[1:], mask_type="binary")
    with pytest.raises(InputError, match="given both as an input and as a mask"):
        temporal_composite(ndvi, out, masks=ndvi, mask_type="binary")
    float_masks = []
    for path in ndvi:
        copy = tmp_path / os.path.basename(path).replace("ndvi_", "float_")
        shutil.copy(path, copy)
        float_masks.append(str(copy))
    with pytest.raises(InputError, match="float32, not an SCL layer"):
        temporal_composite(ndvi, out, masks=float_masks, mask_type="scl")
    with pytest.raises(OutputError, match="is one of the inputs"):
        temporal_composite(ndvi, ndvi[2])
    with pytest.raises(InputError, match="no custom periods"):
        temporal_composite(ndvi, out, period="custom")
    assert file_digests(ndvi + masks) == before
    assert not [p for p in os.listdir(tmp_path) if p.startswith(("out", ".landfusion"))]
    assert not os.path.exists(out + ".json")


def test_different_band_sets_and_no_overlap(tmp_path):
    from osgeo import gdal

    s2, s1 = ssl4eo_series(tmp_path / "ssl4eo")
    three = str(tmp_path / "s2_20200901.vrt")
    ds = gdal.BuildVRT(three, [s2[0]], bandList=[1, 2, 3])
    for k, name in enumerate(("B02", "B03", "B04"), start=1):
        ds.GetRasterBand(k).SetDescription(name)
    ds = None
    out = str(tmp_path / "out.tif")
    with pytest.raises(BandError, match="different band sets.*B08"):
        check_composite(s2 + [three], output_path=out)
    far = str(tmp_path / "s2_20201001.tif")
    with rasterio.open(s2[0]) as src:
        profile = src.profile | {"driver": "GTiff"}
        profile["transform"] = src.transform * src.transform.translation(5000, 0)
        with rasterio.open(far, "w", **profile) as dst:
            dst.write(src.read())
            dst.descriptions = src.descriptions
    with pytest.raises(NoOverlapError, match="s2_20201001.tif' does not overlap"):
        temporal_composite(s2 + [far], out)
    assert not os.path.exists(out)



def test_options_checked_before_any_file_is_opened(tmp_path):
    """The check and the run share one options check, made before any raster is opened (the
    inputs here do not exist, so a later check would fail on opening them instead)."""
    out = str(tmp_path / "out.tif")
    missing = [str(tmp_path / "ndvi_20190917.tif")]
    with pytest.raises(InputError, match="No input raster given; give one raster per acquisition"):
        check_composite([], output_path=out)
    for options, message in (({"method": "mode"}, "Unknown method 'mode'; use one of median, "),
                             ({"period": "week"}, "Unknown period 'week'; use one of month, "),
                             ({"mask_type": "fmask"}, "Unknown mask type 'fmask'; use one of ")):
        with pytest.raises(InputError, match=message):
            check_composite(missing, output_path=out, **options)
        with pytest.raises(InputError, match=message):
            temporal_composite(missing, out, **options)
    with pytest.raises(InputError, match="give a multi-date stack or several dated rasters"):
        check_features([])
    with pytest.raises(InputError, match=r"Unknown statistic\(s\) median; use mean, std"):
        temporal_features(missing, out, statistics=["mean", "median"])
    with pytest.raises(InputError, match="Unknown mask type 'fmask'; use one of "):
        temporal_features(missing, out, mask_type="fmask")
    assert os.listdir(tmp_path) == []


def test_features_bad_dated_rasters(eolearn, tmp_path):
    ndvi, masks, _ = eolearn
    s2, s1 = ssl4eo_series(tmp_path / "ssl4eo")
    out = str(tmp_path / "features.tif")
    with pytest.raises(InputError, match="given twice as input; give each raster once"):
        check_features(ndvi[:3] + [ndvi[0]], output_path=out)
    with pytest.raises(BandError, match="has bands VV_dB, VH_dB but .* every dated raster must "
                                        "have the same bands"):
        temporal_features(s2[:1] + s1[:1], out)
    with pytest.raises(InputError, match="2 mask.* for 3 input"):
        temporal_features(ndvi[:3], out, masks=masks[:2], mask_type="binary")
    plan = check_features(ndvi[:3], masks=list(reversed(masks[:3])), mask_type="binary",
                          output_path=out)
    assert plan.layout == "dated rasters" and list(plan.variables) == ["NDVI"]
    # masks are paired by date, whatever their order
    assert [plan.masks[o.mask[0]] for o in plan.variables["NDVI"]] == masks[:3]
    assert not os.path.exists(out)
    # the JSON sidecar may not overwrite an input either
    named_like_sidecar = str(tmp_path / "ndvi_20990101.tif.json")
    shutil.copy(ndvi[0], named_like_sidecar)
    with pytest.raises(OutputError, match="is one of the inputs"):
        check_features(ndvi[1:3] + [named_like_sidecar],
                       output_path=str(tmp_path / "ndvi_20990101.tif"))

def test_cancel_leaves_nothing(eolearn, tmp_path):
    ndvi, masks, _ = eolearn
    out = str(tmp_path / "cancelled.tif")
    calls = []

    def cancel_after_a_few():
        calls.append(1)
        return len(calls) > 3

    with pytest.raises(CancelledError):
        temporal_composite(ndvi, out, masks=masks, mask_type="binary", memory_mb=0.05,
                           is_cancelled=cancel_after_a_few)
    assert os.listdir(tmp_path) == []


def test_memory_stays_bounded_as_dates_grow(tmp_path):
    """Peak numpy memory of a whole-range median does not grow with the number of dates."""
    import tracemalloc

    from rasterio.transform import from_origin

    rng = np.random.default_rng(1)
    paths = []
    for k in range(32):
        path = tmp_path / f"ndvi_2019{1 + k // 3:02d}{1 + 9 * (k % 3):02d}.tif"
        with rasterio.open(path, "w", driver="GTiff", width=512, height=512, count=1,
                           dtype="float32", crs="EPSG:32633", nodata=-2,
                           transform=from_origin(500000, 5100000, 10, 10)) as dst:
            dst.write(rng.uniform(-1, 1, (1, 512, 512)).astype("float32"))
            dst.set_band_description(1, "NDVI")
        paths.append(str(path))
    peaks = {}
    for count in (8, 32):
        tracemalloc.start()
        temporal_composite(paths[:count], str(tmp_path / f"c{count}.tif"), period="whole",
                           memory_mb=4, threads=2)
        peaks[count] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    in_memory_32 = 32 * 512 * 512 * 4 / 2**20  # 32 MiB for the stack alone
    assert peaks[32] < 12 and peaks[32] < in_memory_32 / 2, peaks
    assert peaks[32] < 1.6 * peaks[8], peaks
    with rasterio.open(tmp_path / "c32.tif") as ds:
        stack = np.stack([rasterio.open(p).read(1) for p in paths])
        np.testing.assert_allclose(ds.read(1), np.median(stack, axis=0), atol=1e-6)


def test_features_of_a_monthly_s1_s2_stack_with_repeated_bands(tmp_path):
    """CropHarvest's Togo stack: 12 months x [VV, VH, B1..B12, weather] + elevation, slope."""
    from conftest import data_path

    src = str(data_path("cropharvest_togo", "98-togo_2019-02-06_2020-02-01.tif"))
    months = [dt.date(2019 + (m > 12), (m - 1) % 12 + 1, 15) for m in range(2, 14)]
    out = str(tmp_path / "togo.tif")
    messages = Messages()
    with pytest.raises(InputError, match="repeats its bands .* 12 times .* give the 12 dates"):
        temporal_features([src], out)
    temporal_features([src], out, dates=",".join(d.isoformat() for d in months),
                      statistics=["mean", "max", "trend"], **messages.kwargs())
    features, names, *_ = _read(out)
    assert names[:3] == ["VV_dB_mean", "VV_dB_max", "VV_dB_trend"]
    assert "B04_max" in names and not any(n.startswith(("elevation", "slope")) for n in names)
    assert any("elevation, slope do not repeat" in m for m in messages.logs)
    with rasterio.open(src) as ds:
        descriptions = list(ds.descriptions)

        def monthly(name):
            labels = [name] + [f"{name}_{k}" for k in range(1, 12)]
            return ds.read([descriptions.index(label) + 1 for label in labels]).astype(np.float64)

        vv, b4 = monthly("VV"), monthly("B4")
    assert np.nanmax(vv) < 5  # dB
    np.testing.assert_allclose(features[0], 10 * np.log10(np.mean(10 ** (vv / 10), axis=0)),
                               atol=1e-4)
    np.testing.assert_allclose(features[names.index("B04_max")], b4.max(axis=0), rtol=1e-6)
    years = np.array([d.year + (d.timetuple().tm_yday - 1) / (365 + (d.year % 4 == 0))
                      for d in months])
    slope = np.polyfit(years, b4.reshape(12, -1).astype(np.float64), 1)[0].reshape(b4.shape[1:])
    np.testing.assert_allclose(features[names.index("B04_trend")], slope, rtol=1e-4, atol=1e-2)


def test_features_of_a_rank_named_stack(tmp_path):
    """Multi-date stacks name dates by rank (S1_T1_VV_dB...), the dates in band metadata."""
    from rasterio.transform import from_origin

    rng = np.random.default_rng(3)
    values = rng.uniform(-22, -5, (3, 20, 30)).astype("float32")
    dates = ["2021-03-02", "2021-05-13", "2021-09-30"]
    path = tmp_path / "stack.tif"
    with rasterio.open(path, "w", driver="GTiff", width=30, height=20, count=3, dtype="float32",
                       crs="EPSG:32631", transform=from_origin(600000, 5000000, 10, 10)) as dst:
        dst.write(values)
        for k, date in enumerate(dates, start=1):
            dst.set_band_description(k, f"S1_T{k}_VV_dB")
            dst.update_tags(k, DATE=date)
    out = str(tmp_path / "features.tif")
    temporal_features([str(path)], out, statistics=["max", "doymax", "trend"])
    features, names, *_ = _read(out)
    assert names == ["VV_dB_max", "VV_dB_doymax", "VV_dB_trend"]
    doy = np.array([dt.date.fromisoformat(d).timetuple().tm_yday for d in dates])
    np.testing.assert_array_equal(features[1], doy[np.argmax(values, axis=0)])
    years = 2021 + (doy - 1) / 365
    slope = np.polyfit(years, values.reshape(3, -1).astype(np.float64), 1)[0].reshape(20, 30)
    np.testing.assert_allclose(features[2], slope, rtol=1e-4, atol=1e-3)
    with rasterio.open(path, "r+") as dst:
        dst.update_tags(2, DATE="")
    with pytest.raises(InputError, match="Time step 'T2' of 'stack.tif' has no date"):
        temporal_features([str(path)], str(tmp_path / "again.tif"))
    temporal_features([str(path)], str(tmp_path / "given.tif"), dates=",".join(dates))
    assert not os.path.exists(tmp_path / "again.tif")


def test_output_formats(eolearn, tmp_path):
    """Erdas Imagine outputs are converted when complete; formats that cannot hold the stack
    are refused before any pixel is read."""
    ndvi, masks, _ = eolearn
    img = str(tmp_path / "monthly.img")
    temporal_composite(ndvi[:6], img, masks=masks[:6], mask_type="binary")
    tif = str(tmp_path / "monthly.tif")
    temporal_composite(ndvi[:6], tif, masks=masks[:6], mask_type="binary")
    with rasterio.open(img) as a, rasterio.open(tif) as b:
        assert a.driver == "HFA" and list(a.descriptions) == list(b.descriptions)
        np.testing.assert_array_equal(a.read(), b.read())
    with pytest.raises(OutputError, match="GeoTIFF"):
        temporal_composite(ndvi[:6], str(tmp_path / "monthly.png"))
    assert not os.path.exists(tmp_path / "monthly.png")


@pytest.mark.parametrize("dtype,nodata", [("int8", -1), ("int16", -32768), ("uint8", 255),
                                          ("uint16", 0), ("float32", -9999.0)])
def test_dates_of_every_integer_type_are_read_with_their_sign_and_nodata(tmp_path, dtype,
                                                                       nodata):
    from rasterio.transform import from_origin

    from landfusion.core.timeseries.reading import BandReader, Grid

    info = np.iinfo(dtype) if dtype != "float32" else None
    low, high = (info.min + 1, info.max) if info else (-500.0, 500.0)
    values = np.linspace(low, high, 64 * 64).reshape(1, 64, 64).astype(dtype)
    values[0, :3, :5] = nodata
    path = str(tmp_path / f"{dtype}.tif")
    with rasterio.open(path, "w", driver="GTiff", width=64, height=64, count=1, dtype=dtype,
                       nodata=nodata, crs="EPSG:32631",
                       transform=from_origin(500000, 5000000, 10, 10)) as dst:
        dst.write(values)
    with rasterio.open(path) as ds:
        reader = BandReader(ds, Grid.of(ds), [1])
        got = reader.read(rasterio.windows.Window(0, 0, 64, 64))
        reader.close()
    expected = values.astype(np.float32)
    expected[values == nodata] = np.nan
    np.testing.assert_array_equal(got, expected)
    if low < 0:  # negative values stay negative
        assert np.nanmin(got) == np.nanmin(expected) < -100


@pytest.mark.parametrize("pixels,dates", [(200_000, 24), (100_000, 24), (5_000, 48),
                                          (3_000_000, 12)])
def test_reductions_are_spread_evenly_over_the_threads(pixels, dates):
    from landfusion.core.timeseries.reduce import _chunk_pixels, CHUNK_VALUES

    step = _chunk_pixels(pixels, dates, 2)
    sizes = [min(step, pixels - s) for s in range(0, pixels, step)]
    assert len(sizes) % 2 == 0 or step == 1024
    assert max(sizes) * dates <= max(CHUNK_VALUES, 1024 * dates)
    if step > 1024:
        # every thread gets the same share, to within a chunk rounding
        assert max(sizes) - min(sizes) <= len(sizes)
