"""The engine's checks before work (core/io/preflight.py), without QGIS."""

import os
import shutil

import numpy as np
import pytest

from cnn_fixtures import write_raster
from conftest import ROOT, data_path

from landfusion.core.errors import InputError, OutputError
from landfusion.core.io import preflight


def test_files_are_described_by_what_they_are(tmp_path):
    chip = data_path("terramind", "S2L2A", "433D_629L_3_1.tif")
    text = tmp_path / "notes"
    text.write_text("no extension, plain text\n")
    html = tmp_path / "report.html"
    html.write_text("<html></html>")
    empty = tmp_path / "empty.tif"
    empty.write_bytes(b"")
    binary = tmp_path / "blob.bin"
    binary.write_bytes(bytes(range(256)) * 4)
    from osgeo import gdal

    vector = tmp_path / "v.geojson"
    vector.write_text('{"type": "FeatureCollection", "features": [{"type": "Feature", '
                      '"properties": {}, "geometry": {"type": "Point", "coordinates": [0, 0]}}]}')
    assert gdal.OpenEx(str(vector)) is not None
    assert preflight.describe_file(str(chip)) == "a raster"
    assert preflight.describe_file(str(vector)) == "a vector layer"
    assert preflight.describe_file(str(text)) == "a text file"
    assert preflight.describe_file(str(html)) == "an HTML file"
    assert preflight.describe_file(str(empty)) == "an empty file"
    assert preflight.describe_file(str(binary)) == "a binary file no GDAL driver reads"
    assert preflight.describe_file(str(tmp_path / "nothing.tif")) == "missing"
    assert preflight.describe_file(str(ROOT / "resources" / "models" / "s1_water_unet.onnx")) \
        == "an ONNX model file"
    with pytest.raises(InputError, match=r"'.*notes' is a text file, not a raster"):
        preflight.check_raster_input(str(text), "Input")
    with pytest.raises(InputError, match="is a raster, not a vector"):
        preflight.check_vector_input(str(chip), "Training")
    preflight.check_raster_input(str(chip))
    preflight.check_vector_input(str(vector))


def test_output_locations(tmp_path):
    preflight.check_output_location(str(tmp_path / "out.tif"))
    assert os.listdir(tmp_path) == [], "the probe file is removed"
    with pytest.raises(OutputError, match=r"'/proc' does not accept new files"):
        preflight.check_output_location("/proc/out.tif")
    with pytest.raises(OutputError, match="does not exist"):
        preflight.check_output_location(str(tmp_path / "missing" / "out.tif"))
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(OutputError, match="is not a folder"):
        preflight.check_output_location(str(tmp_path / "file.txt" / "out.tif"))
    with pytest.raises(OutputError, match="is a folder"):
        preflight.check_output_location(str(tmp_path))


def test_free_space_adds_the_outputs_of_one_disk(tmp_path, monkeypatch):
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage",
                        lambda path: type(usage)(usage.total, usage.used, 3 * 1024 * 1024))
    size = preflight.raster_bytes(1024, 512, 2, "float32")  # 4 MiB
    assert size == 4 * 1024 * 1024
    preflight.check_free_space([(str(tmp_path / "a.tif"), size // 2)])
    with pytest.raises(OutputError, match=r"4\.0 MB needed \(a\.tif, b\.tif\), 3\.0 MB free"):
        preflight.check_free_space([(str(tmp_path / "a.tif"), size // 2),
                                    (str(tmp_path / "b.tif"), size // 2)])


def test_grid_far_too_large_says_its_size():
    preflight.check_grid_size(10980, 10980, 20)
    with pytest.raises(InputError, match=r"2,240,000 x 2,240,000 pixels .* GB for 9 float32"):
        preflight.check_grid_size(2_240_000, 2_240_000, 9, what="The target grid")
    with pytest.raises(InputError, match="empty"):
        preflight.check_grid_size(0, 10)


def test_ranges_are_stated():
    preflight.check_range(5, "X", 0, 10)
    with pytest.raises(InputError, match="SCALE is 0; it must be greater than 0"):
        preflight.check_range(0, "SCALE", 0, exclusive_minimum=True)
    with pytest.raises(InputError, match="TILE_SIZE is 9000 pixels; it must be between 8 and "
                                         "8192 pixels"):
        preflight.check_range(9000, "TILE_SIZE", 8, 8192, unit="pixels")
    with pytest.raises(InputError, match="at most 3"):
        preflight.check_range(4, "N", maximum=3)


def test_tile_memory_against_the_available_memory():
    channels = preflight.first_layer_channels(
        str(ROOT / "resources" / "models" / "s1_water_unet.onnx"))
    assert channels > 0
    need = preflight.tile_memory_bytes(1000, 512, 64, 4, 2, 2, channels)
    preflight.check_tile_memory(1000, 512, 64, 4, 2, 2, channels, available=need + 1)
    with pytest.raises(InputError, match=r"Tile size 512 px .* Use a tile size of 256 px or less"):
        preflight.check_tile_memory(1000, 512, 64, 4, 2, 2, channels,
                                    available=int(need * 0.6))
    with pytest.raises(InputError, match="between 8 and 8192"):
        preflight.check_tile_memory(1000, 9000, 0, 1, 2, 2, available=1 << 50)


def test_scikit_learn_values_are_checked_without_fitting():
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    good = Pipeline([("scale", StandardScaler()), ("classifier", RandomForestClassifier())])
    preflight.validate_estimator(good, "Random Forest")
    bad = RandomForestClassifier(n_estimators=-5)
    with pytest.raises(InputError, match=r"Random Forest: The 'n_estimators' parameter .* "
                                         r"range \[1, inf\)"):
        preflight.validate_estimator(Pipeline([("classifier", bad)]), "Random Forest")
    assert not hasattr(bad, "estimators_")


def test_engine_readers_say_what_a_wrong_file_is(tmp_path):
    from landfusion.core.io.raster import open_raster
    from landfusion.core.io.vector import open_vector_layer

    notes = tmp_path / "notes.txt"
    notes.write_text("not a raster")
    raster = write_raster(str(tmp_path / "r.tif"), np.zeros((1, 4, 4), "uint8"))
    with pytest.raises(InputError, match="is a text file, not a raster"):
        open_raster(str(notes), "Input raster")
    with pytest.raises(InputError, match="is a raster, not a vector layer"):
        open_vector_layer(raster, what="Training layer")
