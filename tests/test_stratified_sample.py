"""Stratified random sample engine: allocation, reproducibility, nodata, output layer."""

import os

import numpy as np
import pytest

from landfusion.core.errors import InputError, NoDataError, OutputError
from landfusion.core.accuracy.sampling import allocate, draw_stratified_sample

from conftest import data_path
from test_accuracy import _write_class_raster


def test_allocations():
    pixels = {1: 9000, 2: 800, 3: 150, 4: 50}
    assert allocate(pixels, 100, "equal") == {1: 25, 2: 25, 3: 25, 4: 25}
    assert allocate(pixels, 102, "equal") == {1: 26, 2: 26, 3: 25, 4: 25}
    assert allocate(pixels, 100, "proportional") == {1: 90, 2: 8, 3: 2, 4: 0}
    # Olofsson: 3 and 4 (and then 2) fall below the minimum; class 1 gets the rest.
    assert allocate(pixels, 100, "olofsson", 10) == {1: 70, 2: 10, 3: 10, 4: 10}
    assert allocate(pixels, 1000, "olofsson", 20) == {1: 882, 2: 78, 3: 20, 4: 20}
    for plan in (allocate(pixels, 517, a, 30) for a in ("equal", "proportional", "olofsson")):
        assert sum(plan.values()) == 517
    with pytest.raises(InputError, match="needs 200 samples, more than the sample size 100"):
        allocate(pixels, 100, "olofsson", 50)
    with pytest.raises(InputError, match="Unknown allocation"):
        allocate(pixels, 100, "neyman")


@pytest.fixture
def map_with_nodata(tmp_path):
    data = np.full((60, 50), 2, np.uint8)
    data[:10] = 255  # nodata
    data[10:20, :25] = 1
    data[50:, 40:] = 7
    return _write_class_raster(tmp_path / "map.tif", data, nodata=255,
                               names={1: "Water", 2: "Trees", 7: "Snow"})


def _read_points(path):
    from osgeo import ogr

    ds = ogr.Open(path)
    layer = ds.GetLayer(0)
    fields = [layer.GetLayerDefn().GetFieldDefn(i).GetName()
              for i in range(layer.GetLayerDefn().GetFieldCount())]
    rows = []
    for f in layer:
        g = f.GetGeometryRef()
        rows.append({"x": g.GetX(), "y": g.GetY(), **{k: f.GetField(k) for k in fields}})
    srs = layer.GetSpatialRef().ExportToWkt()
    return fields, rows, srs


def test_sample_respects_allocation_nodata_and_seed(tmp_path, map_with_nodata):
    import rasterio

    out = str(tmp_path / "sample.gpkg")
    result = draw_stratified_sample(map_with_nodata, out, 60, "olofsson", 15, seed=5)
    assert result["pixels"] == {1: 250, 2: 2150, 7: 100}
    assert result["allocation"] == {1: 15, 2: 30, 7: 15}
    fields, rows, wkt = _read_points(out)
    assert fields == ["sample_id", "map_class", "map_name", "reference"]
    assert len(rows) == 60
    assert sorted(r["sample_id"] for r in rows) == list(range(1, 61))
    assert all(r["reference"] is None for r in rows)
    with rasterio.open(map_with_nodata) as src:
        data = src.read(1)
        assert "32633" in src.crs.to_wkt() and "32633" in wkt
        cells = set()
        for r in rows:
            col, row = ~src.transform * (r["x"], r["y"])
            assert col % 1 == pytest.approx(0.5) and row % 1 == pytest.approx(0.5)  # centres
            value = data[int(row), int(col)]
            assert value == r["map_class"] != 255
            assert r["map_name"] == {1: "Water", 2: "Trees", 7: "Snow"}[value]
            cells.add((int(row), int(col)))
    assert len(cells) == 60  # without replacement
    counts = {v: sum(r["map_class"] == v for r in rows) for v in (1, 2, 7)}
    assert counts == {1: 15, 2: 30, 7: 15}
    # Same seed: same points, whatever the memory budget (block size); other seed: other points.
    again = str(tmp_path / "again.gpkg")
    draw_stratified_sample(map_with_nodata, again, 60, "olofsson", 15, seed=5, memory_mb=0.001)
    assert _read_points(again)[1] == rows
    other = str(tmp_path / "other.gpkg")
    draw_stratified_sample(map_with_nodata, other, 60, "olofsson", 15, seed=6)
    assert {(r["x"], r["y"]) for r in _read_points(other)[1]} != {(r["x"], r["y"]) for r in rows}


def test_small_class_is_capped_and_warned(tmp_path, map_with_nodata):
    warnings = []
    out = str(tmp_path / "s.gpkg")
    result = draw_stratified_sample(map_with_nodata, out, 600, "equal", seed=1,
                                    warn=warnings.append)
    assert result["allocation"] == {1: 200, 2: 200, 7: 100}
    assert any("'Snow' has only 100 pixels" in w for w in warnings)


def test_class_subset_and_bad_inputs(tmp_path, map_with_nodata):
    out = str(tmp_path / "s.gpkg")
    result = draw_stratified_sample(map_with_nodata, out, 20, "equal", classes=[1, 7, 9],
                                    seed=1, warn=lambda m: None)
    assert result["allocation"] == {1: 10, 7: 10}
    os.remove(out)
    with pytest.raises(NoDataError, match="None of the classes"):
        draw_stratified_sample(map_with_nodata, out, 20, classes=[9])
    with pytest.raises(OutputError, match="GeoPackage"):
        draw_stratified_sample(map_with_nodata, str(tmp_path / "s.xyz"), 20)
    with pytest.raises(InputError, match="needs 150 samples"):
        draw_stratified_sample(map_with_nodata, out, 100, "olofsson", 50)
    all_nodata = _write_class_raster(tmp_path / "empty.tif", np.full((5, 5), 255, np.uint8),
                                     nodata=255)
    with pytest.raises(NoDataError, match="only nodata"):
        draw_stratified_sample(all_nodata, out, 10)
    assert not [p for p in os.listdir(tmp_path) if p.startswith(("s.", ".landfusion"))]


def test_real_chip_proportional(tmp_path):
    chip = str(data_path("terramind", "LULC", "282D_485L_3_3.tif"))
    out = str(tmp_path / "chip.gpkg")
    result = draw_stratified_sample(chip, out, 200, "proportional", seed=11)
    assert result["pixels"] == {1: 25991, 2: 18690, 6: 3316, 9: 2179}
    assert result["allocation"] == {1: 104, 2: 74, 6: 13, 9: 9}  # largest remainders
    _, rows, _ = _read_points(out)
    assert len(rows) == 200 and {r["map_name"] for r in rows} == {"1", "2", "6", "9"}


def test_tiled_block_plans_give_same_counts_and_points(tmp_path):
    """A budget that makes the shared block planner cut column tiles changes nothing."""
    from landfusion.core.accuracy.areas import count_classes
    from landfusion.core.io.raster import plan_blocks

    assert len({b.col_off for b in plan_blocks(1000, 300, 25, 2)}) > 1  # really tiled
    rng = np.random.default_rng(0)
    data = rng.integers(1, 5, size=(300, 1000)).astype(np.uint8)
    path = _write_class_raster(tmp_path / "wide.tif", data)
    expected = {v: int((data == v).sum()) for v in range(1, 5)}
    assert count_classes(path, memory_mb=2).pixels == expected
    assert count_classes(path).pixels == expected
    small = str(tmp_path / "small.gpkg")
    large = str(tmp_path / "large.gpkg")
    draw_stratified_sample(path, small, 40, "equal", seed=2, memory_mb=2)
    draw_stratified_sample(path, large, 40, "equal", seed=2)
    assert _read_points(small)[1] == _read_points(large)[1]
