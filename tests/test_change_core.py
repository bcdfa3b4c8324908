"""Engine tests of core/change (no QGIS): features, Otsu, detection methods, land-cover change."""

import hashlib
import json
import math
import os
import shutil

import numpy as np
import pytest
import rasterio

from change_data import build_oscd_stack, build_s1_pair, f1_of_change, oscd_label
from conftest import data_path

from landfusion.core.change import detect, features, landcover, transitions
from landfusion.core.change.pairs import Pair
from landfusion.core.errors import InputError, NoDataError, NoOverlapError
from landfusion.core.accuracy.areas import row_pixel_areas_ha
from landfusion.core.io.raster import Block


@pytest.fixture(scope="module")
def paris(tmp_path_factory):
    folder = tmp_path_factory.mktemp("oscd")
    return build_oscd_stack("paris", 1, folder), build_oscd_stack("paris", 2, folder)


def _digest(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_features_block_wise_equal_whole_image(paris):
    """Neighbourhood features of blocks read with a halo equal those of the whole image."""
    spec = features.FeatureSpec(["S2_B04", "S2_B08", "NDVI"], list(features.GROUPS), [5, 15])
    with Pair(*paris, bands=spec.bands) as pair:
        assert pair.bands == ["S2_B04", "S2_B08", "NDVI"] and not pair.resampled
        stats = features.difference_statistics(pair, memory_mb=0.05)
        whole_block = Block(0, pair.height, pair.width)
        b, a = pair.read(whole_block)
        diff = (a - b).reshape(3, -1).astype(np.float64)
        np.testing.assert_allclose(stats[0], diff.mean(axis=1), rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(stats[1], diff.std(axis=1), rtol=1e-6)
        whole, whole_valid = features.compute_features(spec, *pair.read(whole_block, spec.halo),
                                                       spec.halo, stats)
        block = Block(100, 57, 90, 33)
        part, part_valid = features.compute_features(spec, *pair.read(block, spec.halo),
                                                     spec.halo, stats)
    assert whole.shape[0] == len(spec.names())
    inner = whole[:, 100:157, 33:123]
    np.testing.assert_allclose(part, inner, rtol=1e-4, atol=1e-5)
    assert np.array_equal(part_valid, whole_valid[100:157, 33:123])
    # the difference feature is AFTER - BEFORE of the named band, the log-ratio only for bands
    names = spec.names()
    assert "logratio_NDVI" not in names and "logratio_S2_B04" in names
    with rasterio.open(paris[0]) as a, rasterio.open(paris[1]) as b:
        red = b.read(3)[100:157, 33:123] - a.read(3)[100:157, 33:123]
    np.testing.assert_allclose(part[names.index("diff_S2_B04")], red, rtol=1e-5, atol=1e-6)


def test_otsu_matches_brute_force():
    rng = np.random.default_rng(1)
    values = np.concatenate([rng.normal(1.0, 0.3, 9000), rng.normal(4.0, 0.5, 1000)])
    values = values[values > 0]
    edges = np.linspace(0, values.max(), detect.OTSU_BINS + 1)
    threshold = detect.otsu_threshold(np.histogram(values, edges)[0], edges)
    candidates = np.linspace(0.5, 4.5, 801)

    def between(t):
        low, high = values[values < t], values[values >= t]
        return low.size * high.size * (low.mean() - high.mean()) ** 2

    best = candidates[np.argmax([between(t) for t in candidates])]
    assert abs(threshold - best) < 0.02
    assert 2.0 < threshold < 3.0


def test_cva_on_real_pair_with_otsu(paris, tmp_path):
    before_hash = _digest(paris[0])
    out, mag = str(tmp_path / "cva.tif"), str(tmp_path / "cva_mag.tif")
    result = detect.change_detection(*paris, out, "cva", mag)
    with rasterio.open(paris[0]) as a, rasterio.open(paris[1]) as b, rasterio.open(mag) as m, \
            rasterio.open(out) as c:
        reflectance = [i for i, d in enumerate(a.descriptions) if d.startswith("S2_B")]
        expected = np.sqrt(np.sum((b.read()[reflectance] - a.read()[reflectance]) ** 2, axis=0))
        np.testing.assert_allclose(m.read(1), expected, rtol=1e-5)
        assert m.descriptions[0] == "cva_magnitude"
        classes = c.read(1)
        assert c.crs == a.crs and c.transform == a.transform
        assert np.array_equal(classes == 1, expected >= result["threshold"])
    assert result["threshold_method"] == "Otsu" and 0 < result["changed_fraction"] < 0.5
    assert os.path.exists(str(tmp_path / "cva.qml")) and os.path.exists(str(tmp_path /
                                                                            "cva_mag.qml"))
    assert _digest(paris[0]) == before_hash
    assert sorted(os.listdir(tmp_path)) == ["cva.qml", "cva.tif", "cva.tif.aux.xml",
                                            "cva_mag.qml", "cva_mag.tif"]
    label = rasterio.open(oscd_label("paris")).read(1)
    assert f1_of_change(classes, label, 1)["recall"] > 0.05


def test_index_difference_uses_index_band_and_given_threshold(paris, tmp_path):
    out, mag = str(tmp_path / "ndbi.tif"), str(tmp_path / "ndbi_mag.tif")
    result = detect.change_detection(*paris, out, 3, mag, index="ndbi", threshold=0.2)
    with rasterio.open(paris[0]) as a, rasterio.open(paris[1]) as b, rasterio.open(mag) as m:
        band = list(a.descriptions).index("NDBI") + 1
        diff = b.read(band) - a.read(band)
        np.testing.assert_allclose(m.read(2), diff, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(m.read(1), np.abs(diff), rtol=1e-5, atol=1e-6)
    assert result["threshold"] == 0.2
    assert rasterio.open(out).read(1).max() == 1


def test_log_ratio_in_linear_units_on_real_s1_dates(tmp_path):
    before, after = build_s1_pair(tmp_path)
    out, mag = str(tmp_path / "lr.tif"), str(tmp_path / "lr_mag.tif")
    logs = []
    result = detect.change_detection(before, after, out, "log_ratio", mag, log=logs.append)
    assert any("dB, converted to linear" in m for m in logs)
    with rasterio.open(before) as a, rasterio.open(after) as b, rasterio.open(mag) as m:
        lin_a, lin_b = 10 ** (a.read() / 10.0), 10 ** (b.read() / 10.0)
        expected = np.mean(np.abs(10 * np.log10(lin_b / lin_a)), axis=0)
        got = m.read(1)
        valid = got != -9999
        assert valid.mean() > 0.95
        np.testing.assert_allclose(got[valid], expected[valid], rtol=1e-4, atol=1e-4)
    assert 0 < result["changed_fraction"] < 0.6


def test_pair_without_overlap_is_refused(paris, tmp_path):
    other = str(data_path("terramind", "S2L1C"))
    chip = sorted(os.path.join(other, f) for f in os.listdir(other) if f.endswith(".tif"))[0]
    out = str(tmp_path / "x.tif")
    with pytest.raises(NoOverlapError, match="does not overlap"):
        detect.change_detection(paris[0], chip, out, "cva")
    assert os.listdir(tmp_path) == []


def test_no_valid_pixel_on_both_dates_leaves_nothing(tmp_path):
    """The later date is nodata everywhere: refused, and neither the class raster, the kept
    magnitude nor their styles are left behind."""
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    before, after = build_s1_pair(inputs)
    with rasterio.open(after, "r+") as ds:
        ds.nodata = -9999.0
        ds.write(np.full((ds.count, ds.height, ds.width), -9999.0, np.float32))
    out, mag = str(tmp_path / "change.tif"), str(tmp_path / "magnitude.tif")
    with pytest.raises(InputError, match="No pixel is valid on both dates"):
        detect.change_detection(before, after, out, "log_ratio", mag, threshold=1.0)
    assert sorted(os.listdir(tmp_path)) == ["inputs"]


def test_output_may_not_overwrite_an_input(paris):
    before_hash = _digest(paris[1])
    with pytest.raises(InputError, match="also an input"):
        detect.change_detection(paris[0], paris[1], paris[1], "cva")
    assert _digest(paris[1]) == before_hash


def test_label_raster_without_change_is_refused(paris, tmp_path):
    from landfusion.core.change.training import train_change_model

    labels = str(tmp_path / "stable.tif")
    with rasterio.open(oscd_label("paris")) as src:
        profile = src.profile
        with rasterio.open(labels, "w", **profile) as dst:
            dst.write(np.ones((src.height, src.width), np.uint8), 1)
    model = str(tmp_path / "m.onnx")
    with pytest.raises(NoDataError, match="only class 1|no change pixel"):
        train_change_model([paris[0]], [paris[1]], model, str(tmp_path / "r.html"),
                           labels=[labels])
    assert sorted(os.listdir(tmp_path)) == ["stable.tif"]


# ------------------------------------------------------------------------ land-cover change


def _write_map(path, data, reference, nodata=0, names=None):
    from landfusion.core.io.classmap import ClassInfo, apply_class_styling, palette_color

    with rasterio.open(reference) as src:
        profile = dict(src.profile, dtype="uint16", count=1, nodata=nodata, driver="GTiff")
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data.astype(np.uint16), 1)
    if names:
        apply_class_styling(path, [ClassInfo(v, n, palette_color(v)) for v, n in names.items()],
                            nodata, qml=False)
    return path


@pytest.fixture
def lulc_maps(tmp_path):
    """The eo-learn land-cover map and a later map with real-looking changes and nodata."""
    reference = str(data_path("eolearn_timeseries", "LULC.tif"))
    first = rasterio.open(reference).read(1)
    dem = rasterio.open(str(data_path("eolearn_timeseries", "DEM.tif"))).read(1)
    last = first.copy()
    low = dem < np.percentile(dem, 30)
    last[low & np.isin(first, [1, 3])] = 8      # low cultivated land and grassland built up
    last[:5, :] = 0                              # a strip of nodata on the last date
    a = _write_map(str(tmp_path / "lulc_2017-06-01.tif"), first, reference)
    b = _write_map(str(tmp_path / "lulc_2021-06-01.tif"), last, reference)
    return a, b, first, last


def test_transition_matrix_and_areas_equal_numpy_count(lulc_maps, tmp_path):
    a, b, first, last = lulc_maps
    hashes = [_digest(a), _digest(b)]
    out = str(tmp_path / "fromto.tif")
    html, js, csv_path = (str(tmp_path / n) for n in ("r.html", "r.json", "r.csv"))
    result = landcover.land_cover_change([a, b], out, html, js, csv_path, focus_class=8)
    assert result["dates"] == ["2017-06-01", "2021-06-01"]
    values = [c["value"] for c in result["classes"]]
    both = (first != 0) & (last != 0)
    expected = np.zeros((len(values), len(values)), np.int64)
    for i, f in enumerate(values):
        for j, t in enumerate(values):
            expected[i, j] = np.sum(both & (first == f) & (last == t))
    assert np.array_equal(np.array(result["transition_pixels"]), expected)
    with rasterio.open(a) as src:
        pixel_ha = abs(src.transform.a * src.transform.e) / 1e4
    np.testing.assert_allclose(np.array(result["transition_hectares"]), expected * pixel_ha,
                               rtol=1e-9)
    for row in result["class_areas"]:
        v = row["value"]
        assert row["pixels"] == [int(np.sum(first == v)), int(np.sum(last == v))]
    # nodata on the last date is reported apart, never in the matrix
    to_nodata = sum(t["pixels"] for t in result["nodata_transitions"]
                    if t["to"] is None and t["from"] is not None)
    assert to_nodata == int(np.sum((first != 0) & (last == 0)))
    # the from-to raster holds from*100+to and nodata where either date is nodata
    with rasterio.open(out) as src:
        codes = src.read(1)
        assert src.nodata == 65535
    assert np.array_equal(codes[both], first[both].astype(int) * 100 + last[both])
    assert np.all(codes[~both] == 65535)
    gl = {r["value"]: r for r in result["gains_losses"]}
    k = values.index(8)
    assert gl[8]["gain_ha"] == pytest.approx((expected[:, k].sum() - expected[k, k]) * pixel_ha)
    assert result["focus"]["area_ha"][1] > result["focus"]["area_ha"][0]
    saved = json.load(open(js))
    assert saved["transition_pixels"] == expected.tolist() and saved["outputs"]["csv"] == csv_path
    text = open(csv_path).read()
    assert "from \\ to" in text and "rows = from" in text
    assert "<svg" in open(html).read()
    assert [_digest(a), _digest(b)] == hashes
    assert os.path.exists(str(tmp_path / "fromto.qml"))


def test_sdg_11_3_1_worked_example():
    # Urban area 2000 ha -> 2600 ha, population 100 000 -> 120 000 over 10 years:
    # LCR = ln(1.3)/10 = 0.0262364, PGR = ln(1.2)/10 = 0.0182322, LCRPGR = 1.43901
    out = transitions.sdg_11_3_1((2000.0, 2600.0), (100000.0, 120000.0), 10.0)
    assert out["LCR"] == pytest.approx(0.0262364, abs=1e-7)
    assert out["PGR"] == pytest.approx(0.0182322, abs=1e-7)
    assert out["LCRPGR"] == pytest.approx(1.43901, abs=1e-5)
    same = transitions.sdg_11_3_1((2000.0, 2600.0), (5000.0, 5000.0), 10.0)
    assert same["PGR"] == 0 and same["LCRPGR"] is None and "PGR = 0" in same["notes"][0]


def test_sdg_figures_of_a_run_follow_the_formulas(lulc_maps, tmp_path):
    a, b, first, last = lulc_maps
    result = landcover.land_cover_change([a, b], None, None, str(tmp_path / "r.json"),
                                         dates="2011-01-01,2021-01-01", focus_class=8,
                                         population="100000,120000")
    interval = result["focus"]["intervals"][0]
    with rasterio.open(a) as src:
        pixel_ha = abs(src.transform.a * src.transform.e) / 1e4
    urb1, urb2 = np.sum(first == 8) * pixel_ha, np.sum(last == 8) * pixel_ha
    years = 3653 / 365.25
    assert interval["years"] == pytest.approx(years)
    assert interval["LCR"] == pytest.approx(math.log(urb2 / urb1) / years)
    assert interval["PGR"] == pytest.approx(math.log(1.2) / years)
    assert interval["LCRPGR"] == pytest.approx(interval["LCR"] / interval["PGR"])
    assert interval["annual_growth_rate"] == pytest.approx((urb2 / urb1) ** (1 / years) - 1)


def test_geographic_areas_are_those_of_the_accuracy_report(tmp_path):
    """On a map in EPSG:4326 (an OSCD label), class areas are the sums of each row's cell area on
    the WGS 84 ellipsoid, the same areas as the accuracy report's area-adjusted estimates."""
    label = oscd_label("paris")
    with rasterio.open(label) as src:
        values = src.read(1)
        row_ha = row_pixel_areas_ha(src)
        west, south, east, north = src.bounds
    again = str(tmp_path / "paris_again.tif")
    shutil.copy(label, again)
    result = landcover.land_cover_change([label, again], None, None, str(tmp_path / "r.json"))
    for row in result["class_areas"]:
        expected = float(((values == row["value"]) * row_ha[:, None]).sum())
        assert row["hectares"][0] == pytest.approx(expected, rel=1e-9)
        assert row["hectares"][1] == row["hectares"][0]  # the same map twice: no change
    assert result["changed_area_ha"] == 0
    total = sum(row["hectares"][0] for row in result["class_areas"])
    # within 0.5 % of the sphere's figure, and ~10 m pixels at 49 degrees north
    r = 6371007.181
    sphere = r * r * math.radians(east - west) * (math.sin(math.radians(north)) -
                                                  math.sin(math.radians(south))) / 1e4
    assert total == pytest.approx(sphere, rel=5e-3)
    assert 0.009 < row_ha.mean() < 0.014


def test_maps_classified_in_different_places_are_refused_before_any_output(lulc_maps, tmp_path):
    """The first map holds classes only in its top half, the last only in its bottom half: no
    pixel can be compared, which is an error, not an empty report."""
    a, _, first, _ = lulc_maps
    half = first.shape[0] // 2
    top, bottom = first.copy(), first.copy()
    top[half:] = 0
    bottom[:half] = 0
    early = _write_map(str(tmp_path / "top_2017-06-01.tif"), top, a)
    late = _write_map(str(tmp_path / "bottom_2021-06-01.tif"), bottom, a)
    before = set(os.listdir(tmp_path))
    outputs = [str(tmp_path / name) for name in ("fromto.tif", "r.html", "r.json", "r.csv")]
    with pytest.raises(NoDataError, match="No pixel is classified on both"):
        landcover.land_cover_change([early, late], *outputs)
    assert set(os.listdir(tmp_path)) == before


def test_maps_with_different_class_sets_are_united_with_a_note(lulc_maps, tmp_path):
    a, b, first, last = lulc_maps
    fewer = first.copy()
    fewer[fewer == 4] = 2  # no shrubland on the first date
    c = _write_map(str(tmp_path / "lulc_2016-06-01.tif"), fewer, a)
    warnings = []
    result = landcover.land_cover_change([c, b], None, None, str(tmp_path / "r.json"),
                                         warn=warnings.append)
    assert 4 in [cl["value"] for cl in result["classes"]]
    assert result["class_areas"][[r["value"] for r in result["class_areas"]].index(4)][
        "pixels"][0] == 0
    assert any("no pixel of class" in n for n in result["notes"]) and warnings


def test_maps_with_conflicting_legends_are_refused(lulc_maps, tmp_path):
    a, b, first, last = lulc_maps
    one = _write_map(str(tmp_path / "a_2016.tif"), first, a, names={1: "cultivated land"})
    two = _write_map(str(tmp_path / "b_2020.tif"), last, a, names={1: "water"})
    with pytest.raises(InputError, match="legends disagree"):
        landcover.land_cover_change([one, two], str(tmp_path / "out.tif"))
    assert not os.path.exists(str(tmp_path / "out.tif"))


def test_dates_out_of_order_and_population_count_are_refused(lulc_maps, tmp_path):
    a, b, _, _ = lulc_maps
    with pytest.raises(InputError, match="time order"):
        landcover.land_cover_change([b, a], None, None, str(tmp_path / "r.json"))
    with pytest.raises(InputError, match="one per map"):
        landcover.land_cover_change([a, b], None, None, str(tmp_path / "r.json"), focus_class=8,
                                    population="100")
    assert not os.path.exists(str(tmp_path / "r.json"))


def test_cancelled_detection_leaves_nothing_behind(paris, tmp_path):
    from landfusion.core.errors import CancelledError

    calls = []

    def cancel_later():
        calls.append(1)
        return len(calls) > 4

    with pytest.raises(CancelledError):
        detect.change_detection(*paris, str(tmp_path / "c.tif"), "cva", str(tmp_path / "m.tif"),
                                memory_mb=0.3, is_cancelled=cancel_later)
    assert len(calls) > 4 and os.listdir(tmp_path) == []


def test_training_polygons_single_pair_validates_by_tiles(tmp_path):
    """Polygons (from the Rennes labels) train a model; one pair: spatial tiles are the groups."""
    from osgeo import gdal, ogr, osr

    from landfusion.core.change.model import read_change_model
    from landfusion.core.change.training import train_change_model

    before = build_oscd_stack("rennes", 1, tmp_path)
    after = build_oscd_stack("rennes", 2, tmp_path)
    source = gdal.Open(oscd_label("rennes"))
    srs = osr.SpatialReference(wkt=source.GetProjection())
    vector = str(tmp_path / "labels.gpkg")
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(vector)
    layer = ds.CreateLayer("labels", srs, ogr.wkbPolygon)
    layer.CreateField(ogr.FieldDefn("class", ogr.OFTInteger))
    gdal.Polygonize(source.GetRasterBand(1), None, layer, 0)
    ds = None
    warnings = []
    result = train_change_model([before], [after], str(tmp_path / "m.onnx"),
                                training=vector, class_field="class",
                                parameters={"n_estimators": 15}, feature_groups=["dates", "diff"],
                                samples_per_pair=600, pixel_folds=0, warn=warnings.append)
    assert result["validation"]["grouping"] == "tile"
    assert any("single pair" in w for w in warnings)
    assert [c.value for c in result["classes"]] == [1, 2] and result["no_change"] == 1
    _, info, change = read_change_model(str(tmp_path / "m.onnx"))
    assert change["threshold"] == result["threshold"]
    assert info.bands == result["features"]


def test_after_on_another_grid_is_warped_onto_before(paris, tmp_path):
    from osgeo import gdal

    utm = str(tmp_path / "after_utm.tif")
    gdal.Warp(utm, paris[1], dstSRS="EPSG:32631", xRes=10, yRes=10, resampleAlg="bilinear")
    logs = []
    same = detect.change_detection(*paris, str(tmp_path / "a.tif"), "cva",
                                   str(tmp_path / "a_mag.tif"))
    warped = detect.change_detection(paris[0], utm, str(tmp_path / "b.tif"), "cva",
                                     str(tmp_path / "b_mag.tif"), log=logs.append)
    assert any("warped onto the BEFORE grid" in m for m in logs)
    with rasterio.open(str(tmp_path / "a_mag.tif")) as a, \
            rasterio.open(str(tmp_path / "b_mag.tif")) as b, rasterio.open(paris[0]) as ref:
        assert b.crs == ref.crs and b.transform == ref.transform
        x, y = a.read(1), b.read(1)
    valid = (x != -9999) & (y != -9999)
    assert valid.mean() > 0.95
    assert np.corrcoef(x[valid], y[valid])[0, 1] > 0.7
    assert warped["valid_pixels"] > 0.95 * x.size
    assert same["valid_pixels"] == x.size


def test_options_are_checked_without_opening_a_file(tmp_path):
    """The option checks shared by the algorithms' checks and the engines read no raster: the
    paths below do not exist, yet each bad option is named."""
    from landfusion.core.change.detect import check_detection
    from landfusion.core.change.landcover import check_land_cover
    from landfusion.core.change.training import check_training

    a, b, c = (str(tmp_path / n) for n in ("a.tif", "b.tif", "c.tif"))
    pair = dict(before=[a], after=[b], labels=[c])
    assert check_training(**pair).key == "random_forest"
    for options, message in (
            (dict(pair, samples_per_pair=50), "at least 100 samples"),
            (dict(pair, class_names="1:no change"), "not of the form id=name"),
            (dict(pair, feature_groups=["dates", "texture"]), "Unknown change feature group"),
            (dict(pair, scales=[4]), "odd numbers"),
            (dict(pair, labels=[c, c]), "1 pair\\(s\\) but 2 label raster"),
            (dict(before=[a], after=[a], labels=[c]), "given twice"),
            (dict(before=[a], after=[b], training="polygons.gpkg"), "class field"),
            (dict(pair, algorithm="no_such_classifier"), "no_such_classifier")):
        with pytest.raises(InputError, match=message):
            check_training(**options)
    assert check_detection(method=2).key == "log_ratio"
    for options, message in ((dict(method=0), "needs a MODEL"),
                             (dict(method="model", model_path=c, threshold=1.5), "between 0"),
                             (dict(method=3), "needs an index"),
                             (dict(method="cva", threshold=float("nan")), "must be a number")):
        with pytest.raises(InputError, match=message):
            check_detection(**options)
    checked = check_land_cover(maps=[a, b], dates="2016-07-01,2021-07-01", focus_class=2,
                               population="1000,1200")
    assert [d.year for d in checked.parsed_dates] == [2016, 2021]
    assert checked.parsed_population == [1000.0, 1200.0]
    for options, message in ((dict(maps=[a]), "at least two"),
                             (dict(maps=[a, a]), "given twice"),
                             (dict(maps=[a, b], population="1000,1200"), "needs FOCUS_CLASS"),
                             (dict(maps=[a, b], dates="2016-07-01"), "1 date")):
        with pytest.raises(InputError, match=message):
            check_land_cover(**options)
    assert os.listdir(tmp_path) == []
