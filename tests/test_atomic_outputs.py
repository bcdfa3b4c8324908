"""Atomic outputs: multi-file formats moved whole, extensions honoured or refused, temporaries of
killed runs recognised and removed, SIGTERM handled like cancel."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from conftest import ROOT, data_path
from landfusion.core.errors import OutputError
from landfusion.core.io.outputs import atomic_output
from plugin_import import make_importable
from test_accuracy import _write_class_raster

CHIP = ("terramind", "LULC", "433D_629L_3_1.tif")
SAMPLE_FIELDS = ["sample_id", "map_class", "map_name", "reference"]


def _hidden(folder):
    return sorted(n for n in os.listdir(folder) if n.startswith(".landfusion-"))


def _shapefile(temp, fields=("name",), features=3):
    from osgeo import ogr, osr

    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32633)
    ds = ogr.GetDriverByName("ESRI Shapefile").CreateDataSource(temp)
    layer = ds.CreateLayer("points", srs, ogr.wkbPoint, ["ENCODING=UTF-8"])
    for name in fields:
        layer.CreateField(ogr.FieldDefn(name, ogr.OFTString))
    for i in range(features):
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetField(fields[0], f"f{i}")
        point = ogr.Geometry(ogr.wkbPoint)
        point.AddPoint_2D(500000.0 + i, 5000000.0)
        feature.SetGeometry(point)
        layer.CreateFeature(feature)
    ds.ExecuteSQL(f'CREATE SPATIAL INDEX ON "{layer.GetName()}"')
    ds = None


def test_shapefile_moves_whole_and_replaces_stale_parts(tmp_path):
    from osgeo import ogr

    out = str(tmp_path / "points.shp")
    with atomic_output(out) as temp:
        _shapefile(temp, fields=("name", "extra"))
    first = sorted(os.listdir(tmp_path))
    assert first == ["points.cpg", "points.dbf", "points.prj", "points.qix", "points.shp",
                     "points.shx"]
    # Overwrite with a version without spatial index: the old .qix must not survive beside it.
    with atomic_output(out) as temp:
        _shapefile(temp, fields=("name",), features=5)
        os.remove(os.path.splitext(temp)[0] + ".qix")
    assert sorted(os.listdir(tmp_path)) == [n for n in first if not n.endswith(".qix")]
    ds = ogr.Open(out)
    layer = ds.GetLayer(0)
    assert layer.GetFeatureCount() == 5
    assert [layer.GetLayerDefn().GetFieldDefn(i).GetName()
            for i in range(layer.GetLayerDefn().GetFieldCount())] == ["name"]
    assert layer.GetSpatialRef().GetAuthorityCode(None) == "32633"


def test_failure_leaves_nothing_and_the_old_output_untouched(tmp_path):
    out = str(tmp_path / "points.shp")
    with atomic_output(out) as temp:
        _shapefile(temp)
    before = {n: os.path.getmtime(tmp_path / n) for n in os.listdir(tmp_path)}
    with pytest.raises(RuntimeError):
        with atomic_output(out) as temp:
            _shapefile(temp, features=9)
            raise RuntimeError("disk on fire")
    assert {n: os.path.getmtime(tmp_path / n) for n in os.listdir(tmp_path)} == before


@pytest.mark.parametrize("name", ["out.png", "out.jpg", "out.vrt", "out.nc", "out"])
def test_raster_extensions_we_cannot_write_are_refused_before_work(tmp_path, name):
    from landfusion.core.indices.compute import compute_spectral_indices

    source = _small_s2(tmp_path)
    with pytest.raises(OutputError, match=r"GeoTIFF \(\.tif, \.tiff\) or Erdas Imagine"):
        compute_spectral_indices(source, str(tmp_path / name), ["NDVI"],
                                 band_names="B04,B08")
    assert sorted(os.listdir(tmp_path)) == ["s2.tif"]


def _small_s2(folder, size=64):
    path = str(folder / "s2.tif")
    rng = np.random.default_rng(0)
    with rasterio.open(path, "w", driver="GTiff", width=size, height=size, count=2,
                       dtype="uint16", crs="EPSG:32633",
                       transform=from_origin(500000, 5000000, 10, 10)) as dst:
        dst.write(rng.integers(200, 4000, (2, size, size)).astype("uint16"))
    return path


def test_img_output_is_written_by_the_hfa_driver_with_names_and_styles(tmp_path):
    from landfusion.core.indices.compute import compute_spectral_indices
    from landfusion.core.io.classmap import read_class_styling
    from landfusion.core.stack.cloud_mask import cloud_mask_from_scl

    source = _small_s2(tmp_path)
    out = str(tmp_path / "ndvi.img")
    compute_spectral_indices(source, out, ["NDVI"], band_names="B04,B08")
    with rasterio.open(out) as ds, rasterio.open(source) as src:
        assert ds.driver == "HFA" and ds.descriptions == ("NDVI",)
        red, nir = src.read().astype(np.float64) / 10000
        np.testing.assert_allclose(ds.read(1), (nir - red) / (nir + red), atol=1e-6)
    scl = np.array([[4, 9, 3, 8], [10, 0, 6, 4]], np.uint8)
    scl_path = _write_class_raster(tmp_path / "scl.tif", scl)
    mask = str(tmp_path / "mask.img")
    cloud_mask_from_scl(scl_path, mask)
    with rasterio.open(mask) as ds:
        assert ds.driver == "HFA"
        assert ds.read(1).tolist() == [[0, 1, 2, 1], [1, 255, 0, 0]]
    classes = read_class_styling(mask)
    assert [(c.value, c.name) for c in classes] == [(0, "clear"), (1, "cloud"),
                                                    (2, "cloud shadow")]
    assert classes[1].color[:3] == (240, 240, 240)
    assert os.path.exists(tmp_path / "mask.qml")
    assert _hidden(tmp_path) == []


@pytest.mark.parametrize("ext", [".shp", ".gpkg", ".geojson", ".fgb", ".sqlite"])
def test_stratified_sample_every_vector_format_opens_with_all_fields(run_algorithm, tmp_path,
                                                                      ext):
    from osgeo import ogr

    out = str(tmp_path / f"sample{ext}")
    result = run_algorithm("landfusion:stratifiedsample", {
        "INPUT": str(data_path(*CHIP)), "SAMPLE_SIZE": 40, "ALLOCATION": 0, "SEED": 1,
        "OUTPUT": out})
    assert result["COUNT"] == 40
    assert _hidden(tmp_path) == []
    ds = ogr.Open(out)
    assert ds is not None, os.listdir(tmp_path)
    layer = ds.GetLayer(0)
    defn = layer.GetLayerDefn()
    fields = [defn.GetFieldDefn(i).GetName() for i in range(defn.GetFieldCount())]
    assert fields == SAMPLE_FIELDS
    rows = [(f.GetField("sample_id"), f.GetField("map_class"), f.GetField("map_name"))
            for f in layer]
    assert len(rows) == 40 and sorted(r[0] for r in rows) == list(range(1, 41))
    assert all(r[1] is not None and r[2] for r in rows)
    assert layer.GetSpatialRef() is not None
    if ext == ".shp":
        assert {os.path.splitext(n)[1] for n in os.listdir(tmp_path)} >= {
            ".shp", ".dbf", ".shx", ".prj"}


def test_stale_temporaries_of_dead_processes_only_are_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_pid = int(dead.stdout)
    stale = tmp_path / f".landfusion-{dead_pid}-0123456789ab.tif"
    stale.write_bytes(b"x")
    (tmp_path / f".landfusion-{dead_pid}-0123456789ab.tif.aux.xml").write_text("<x/>")
    stale_dir = tmp_path / f".landfusion-{dead_pid}-cloudmask-abc"
    stale_dir.mkdir()
    (stale_dir / "mask_30m.tif").write_bytes(b"x")
    live = tmp_path / f".landfusion-{os.getppid()}-ba9876543210.tif"  # the test runner's parent
    live.write_bytes(b"y")
    other = tmp_path / ".landfusion-notapid.tif"  # not ours to judge
    other.write_bytes(b"z")
    with atomic_output(str(tmp_path / "report.html")) as temp:
        with open(temp, "w") as handle:
            handle.write("<html></html>")
    assert _hidden(tmp_path) == sorted([live.name, other.name])
    assert (tmp_path / "report.html").read_text() == "<html></html>"


_KILLED_RUN = textwrap.dedent("""
    import sys
    sys.path.insert(0, {plugins!r})
    from landfusion.core.indices.compute import compute_spectral_indices
    def progress(fraction):
        print(f"progress {{fraction:.3f}}", flush=True)
    compute_spectral_indices({source!r}, {output!r}, ["NDVI", "SAVI", "NDWI"],
                             band_names="B03,B04,B08", memory_mb=0.5, progress=progress)
    print("finished", flush=True)
""")


def _big_s2(folder, size):
    """A 3-band (B03, B04, B08) uint16 raster large enough to take seconds to process."""
    path = str(folder / "big.tif")
    rng = np.random.default_rng(size)
    with rasterio.open(path, "w", driver="GTiff", width=size, height=size, count=3,
                       dtype="uint16", crs="EPSG:32633", tiled=True,
                       transform=from_origin(500000, 5000000, 10, 10)) as dst:
        for b in range(1, 4):
            dst.write(rng.integers(200, 4000, (size, size)).astype("uint16"), b)
    return path


def _start_slow_run(tmp_path):
    source = _big_s2(tmp_path, 3000)
    output = str(tmp_path / "out" / "indices.tif")
    os.mkdir(tmp_path / "out")
    script = _KILLED_RUN.format(plugins=make_importable(), source=source,
                                output=output)
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    for line in process.stdout:  # wait until blocks are being written
        if line.startswith("progress") and float(line.split()[1]) > 0.05:
            break
    assert process.poll() is None, process.stderr.read()
    assert _hidden(tmp_path / "out"), "the run should be writing its temporary"
    return process, output


def test_sigterm_is_a_cancel_and_leaves_nothing(tmp_path):
    process, output = _start_slow_run(tmp_path)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode != 0
    assert "SIGTERM" in stderr and "CancelledError" in stderr
    assert os.listdir(tmp_path / "out") == []


def test_sigkill_leaves_a_temporary_that_the_next_run_removes(tmp_path):
    from landfusion.core.indices.compute import compute_spectral_indices

    process, output = _start_slow_run(tmp_path)
    process.kill()
    process.communicate(timeout=60)
    left = _hidden(tmp_path / "out")
    assert left and all(f".landfusion-{process.pid}-" in n for n in left)
    time.sleep(0.1)
    small = _small_s2(tmp_path)
    compute_spectral_indices(small, str(tmp_path / "out" / "next.tif"), ["NDVI"],
                             band_names="B04,B08")
    assert sorted(os.listdir(tmp_path / "out")) == ["next.tif"]


def test_sigterm_to_qgis_process_leaves_nothing(tmp_path):
    """qgis_process runs the algorithm's Python in its main thread: SIGTERM cancels it there."""
    source = _big_s2(tmp_path, 4000)
    os.mkdir(tmp_path / "out")
    process = subprocess.Popen(
        [str(ROOT / "scripts" / "qgis_process.sh"), "run", "landfusion:spectralindices",
         "--", f"INPUT={source}", "INPUT_BANDS=B03,B04,B08", "INDICES=NDVI", "INDICES=SAVI",
         "INDICES=NDWI", f"OUTPUT={tmp_path / 'out' / 'indices.tif'}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = ""
    while "10..." not in seen and process.poll() is None:
        seen += process.stdout.read(1)
    assert process.poll() is None, seen
    assert _hidden(tmp_path / "out")
    process.send_signal(signal.SIGTERM)
    rest, _ = process.communicate(timeout=120)
    assert process.returncode != 0
    assert "Stopped by a termination signal (SIGTERM)" in seen + rest
    assert os.listdir(tmp_path / "out") == []


def test_processing_refuses_a_png_output_with_the_reason(run_algorithm, tmp_path):
    from qgis.core import QgsProcessingException

    source = _small_s2(tmp_path)
    with pytest.raises(QgsProcessingException, match=r"writes rasters as GeoTIFF"):
        run_algorithm("landfusion:spectralindices", {
            "INPUT": source, "INPUT_BANDS": "B04,B08", "INDICES": ["NDVI"],
            "OUTPUT": str(tmp_path / "c.png")})
    assert sorted(os.listdir(tmp_path)) == ["s2.tif"]
