"""temporalcomposite, temporalfeatures and the monitoring workflow through QGIS Processing."""

import json
import os
import warnings

import numpy as np
import pytest
import rasterio

from conftest import data_path
from timeseries_data import eolearn_arrays, eolearn_series, file_digests, ssl4eo_series


def _read(path):
    with rasterio.open(path) as ds:
        data = ds.read()
        return np.where(data == ds.nodata, np.nan, data), list(ds.descriptions), ds.crs, \
            ds.transform


@pytest.fixture(scope="module")
def eolearn(tmp_path_factory):
    return eolearn_series(tmp_path_factory.mktemp("eolearn"))


def test_processing_run_composite_and_features(run_algorithm, eolearn, tmp_path):
    ndvi, masks, _ = eolearn
    folder = tmp_path / "months"
    result = run_algorithm("landfusion:temporalcomposite", {
        "INPUT": ndvi, "MASKS": masks, "MASK_TYPE": 2, "PERIOD": 0, "METHOD": 0,
        "OUTPUT": str(tmp_path / "monthly.tif"), "OUTPUT_FOLDER": str(folder)})
    assert result["SIDECAR"] == str(tmp_path / "monthly.tif") + ".json"
    composite, names, crs, transform = _read(result["OUTPUT"])
    data, dates = eolearn_arrays()
    chosen = [i for i, d in enumerate(dates) if d.strftime("%Y-%m") == "2017-07"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = np.nanmedian(data[chosen], axis=0)
    np.testing.assert_allclose(composite[names.index("2017-07_NDVI")], expected, atol=1e-6,
                               equal_nan=True)
    with rasterio.open(data_path("eolearn_timeseries", "NDVI_timeseries.tif")) as ref:
        assert crs == ref.crs and transform == ref.transform
    july = folder / "monthly_2017-07.tif"
    assert july.exists()
    assert _read(str(july))[1] == ["NDVI", "CLEAR_COUNT"]

    features = run_algorithm("landfusion:temporalfeatures", {
        "INPUT": [result["OUTPUT"]], "STATISTICS": [0, 3, 7],
        "OUTPUT": str(tmp_path / "features.tif")})
    values, feature_names, crs, transform = _read(features["OUTPUT"])
    assert feature_names == ["NDVI_mean", "NDVI_max", "NDVI_trend"]
    ndvi_bands = [i for i, n in enumerate(names) if n.endswith("_NDVI")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        np.testing.assert_allclose(values[1], np.nanmax(composite[ndvi_bands], axis=0),
                                   atol=1e-6, equal_nan=True)


def test_processing_refuses_bad_input_before_running(run_algorithm, eolearn, tmp_path):
    from qgis.core import QgsProcessingException

    ndvi, masks, _ = eolearn
    before = file_digests(ndvi[:4] + masks[:4])
    with pytest.raises(QgsProcessingException, match="given twice as input"):
        run_algorithm("landfusion:temporalcomposite", {
            "INPUT": ndvi[:4] + [ndvi[1]], "OUTPUT": str(tmp_path / "out.tif")})
    with pytest.raises(QgsProcessingException, match="3 mask.* for 4 input"):
        run_algorithm("landfusion:temporalcomposite", {
            "INPUT": ndvi[:4], "MASKS": masks[:3], "MASK_TYPE": 2,
            "OUTPUT": str(tmp_path / "out.tif")})
    with pytest.raises(QgsProcessingException, match="every dated raster must have the same"):
        s2, s1 = ssl4eo_series(tmp_path / "ssl4eo")
        run_algorithm("landfusion:temporalfeatures", {
            "INPUT": [s2[0], s1[1]], "OUTPUT": str(tmp_path / "out.tif")})
    assert file_digests(ndvi[:4] + masks[:4]) == before
    assert not [p for p in os.listdir(tmp_path) if p.startswith(("out", ".landfusion"))]


@pytest.mark.qgis_process
def test_qgis_process_composite_with_s1_and_s2(qgis_process, tmp_path):
    s2, s1 = ssl4eo_series(tmp_path / "ssl4eo")
    out = str(tmp_path / "fused.tif")
    _, result, _ = qgis_process("landfusion:temporalcomposite", {
        "INPUT": s2 + s1, "PERIOD": 3, "METHOD": 1, "OUTPUT": out})
    assert result["results"]["OUTPUT"] == out
    composite, names, crs, transform = _read(out)
    assert names == ["ALL_B02", "ALL_B03", "ALL_B04", "ALL_B08", "ALL_VV_dB", "ALL_VH_dB",
                     "ALL_CLEAR_COUNT"]
    with rasterio.open(s2[0]) as a, rasterio.open(s2[1]) as b:
        assert crs == a.crs and transform == a.transform
        mean = (a.read().astype(np.float64) + b.read()) / 2
    np.testing.assert_allclose(composite[:4], mean, rtol=1e-6)
    sidecar = json.loads(open(out + ".json").read())
    assert sidecar["sentinel1_bands"] == {"VV_dB": "composited in linear power, written in dB",
                                          "VH_dB": "composited in linear power, written in dB"}
    assert [p["dates"] for p in sidecar["periods"]] == [
        ["2020-06-04", "2020-06-07", "2020-08-13", "2020-09-03"]]


@pytest.mark.qgis_process
def test_qgis_process_features_of_the_eolearn_stack(qgis_process, tmp_path):
    src = data_path("eolearn_timeseries")
    out = str(tmp_path / "features.tif")
    _, result, _ = qgis_process("landfusion:temporalfeatures", {
        "INPUT": str(src / "NDVI_timeseries.tif"),
        "MASKS": str(src / "CLM_cloudmask_timeseries.tif"),
        "MASK_TYPE": 2, "STATISTICS": [4, 5, 9], "OUTPUT": out})
    assert result["results"]["OUTPUT"] == out
    values, names, *_ = _read(out)
    assert names == ["NDVI_p10", "NDVI_p90", "NDVI_count"]
    data, _ = eolearn_arrays()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        np.testing.assert_allclose(values[1], np.nanpercentile(data, 90, axis=0), atol=1e-6,
                                   equal_nan=True)
    np.testing.assert_array_equal(np.nan_to_num(values[2]), np.isfinite(data).sum(axis=0))


def test_monitoring_workflow_runs_headless(run_algorithm, tmp_path):
    """Scenes of 2017 -> monthly composites -> features -> map -> change against the 2016 map."""
    from qgis.core import QgsApplication, QgsVectorLayer

    registry = QgsApplication.processingRegistry()
    workflow = registry.algorithmById("landfusion:monitoring")
    assert workflow is not None and workflow.group() == "5 · Change and time series"
    assert workflow.displayName().startswith("Monitoring workflow")

    ndvi16, masks16, _ = eolearn_series(tmp_path / "2016", years={2016})
    composite = run_algorithm("landfusion:temporalcomposite", {
        "INPUT": ndvi16, "MASKS": masks16, "MASK_TYPE": 2,
        "OUTPUT": str(tmp_path / "monthly_2016.tif")})
    features = run_algorithm("landfusion:temporalfeatures", {
        "INPUT": [composite["OUTPUT"]], "OUTPUT": str(tmp_path / "features_2016.tif")})
    polygons = QgsVectorLayer(str(data_path("eolearn_timeseries", "LULC.gpkg")) + "|layername=LULC",
                              "lulc", "ogr")
    polygons.setSubsetString('"LULC_ID" > 0')
    trained = run_algorithm("landfusion:trainclassifier", {
        "INPUT": features["OUTPUT"], "TRAINING": polygons, "CLASS_FIELD": "LULC_ID",
        "ALGORITHM": 0, "TREES": 50, "OUTPUT_MODEL": str(tmp_path / "lulc.onnx")})

    previous = run_algorithm("landfusion:classifyraster", {
        "INPUT": features["OUTPUT"], "MODEL": trained["OUTPUT_MODEL"],
        "OUTPUT": str(tmp_path / "map_2016.tif")})
    ndvi17, masks17, _ = eolearn_series(tmp_path / "2017", years={2017})
    before = file_digests(ndvi17 + masks17)
    result = run_algorithm("landfusion:monitoring", {
        "SCENES": ndvi17, "MASKS": masks17, "MASK_TYPE": 2, "MODEL": trained["OUTPUT_MODEL"],
        "PREVIOUS_MAP": previous["OUTPUT"], "DATES": "2016-07-01,2017-07-01",
        "change:Land-cover change": str(tmp_path / "change.tif"),
        "change:Change report": str(tmp_path / "change.html"),
        "composite:Monthly composites": str(tmp_path / "monthly_2017.tif"),
        "features:Temporal features": str(tmp_path / "features_2017.tif"),
        "classify:Land-cover map": str(tmp_path / "map_2017.tif")})
    assert result["classify:Land-cover map"] == str(tmp_path / "map_2017.tif")
    monthly = _read(str(tmp_path / "monthly_2017.tif"))[1]
    assert monthly[:2] == ["2017-01_NDVI", "2017-01_CLEAR_COUNT"] and len(monthly) == 24
    assert _read(str(tmp_path / "features_2017.tif"))[1][0] == "NDVI_mean"
    with rasterio.open(tmp_path / "map_2017.tif") as classes, \
            rasterio.open(data_path("eolearn_timeseries", "LULC.tif")) as reference:
        assert classes.crs == reference.crs and classes.transform == reference.transform
        predicted, truth = classes.read(1), reference.read(1)
    labelled = truth > 0
    assert set(np.unique(predicted[labelled])) <= {1, 2, 3, 4, 8}
    # a sanity check of the chain (same places, another year), not an accuracy claim
    assert np.mean(predicted[labelled] == truth[labelled]) > 0.5
    assert file_digests(ndvi17 + masks17) == before
    # the last step: land-cover change against the 2016 map, on the same grid
    with rasterio.open(tmp_path / "change.tif") as change, \
            rasterio.open(tmp_path / "map_2016.tif") as before_map:
        assert change.transform == before_map.transform and change.crs == before_map.crs
        codes = change.read(1)
        old = before_map.read(1)
    same = (codes % 100 == codes // 100) & (codes > 0) & (codes != change.nodata)
    assert same.any() and np.array_equal(codes[same] // 100, old[same])
    assert "2016" in (tmp_path / "change.html").read_text()
