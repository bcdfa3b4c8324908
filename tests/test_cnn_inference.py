"""Core tests of the ONNX CNN engine on tiny generated models (no QGIS)."""

import os

import numpy as np
import pytest
import rasterio
from cnn_fixtures import LAND_WATER, conv_model, pooling_patch_model, write_raster

from landfusion.core.cnn import inference as cnn
from landfusion.core.cnn import tiling
from landfusion.core.io.classmap import read_class_styling
from landfusion.core.errors import BandError, CancelledError, ModelError, NoDataError
from landfusion.core.models.card import build_card
from landfusion.core.models.format import ModelCard
from landfusion.core.models.reading import card_from_props, read_model
from landfusion.core.models.writing import write_model

SEG_PROPS = {"task": "segmentation", "bands": ["VV", "VH"], "classes": LAND_WATER,
             "tile_size": 32, "tile_overlap": 8}


def _smooth_field(rng, bands, rows, cols):
    """A smooth random field: neighbouring pixels alike, as in real imagery."""
    coarse = rng.normal(size=(bands, rows // 8 + 2, cols // 8 + 2))
    fine = np.kron(coarse, np.ones((8, 8)))[:, :rows, :cols]
    return (fine + 0.3 * rng.normal(size=fine.shape)).astype("float32")


def _backscatter(rng, rows, cols):
    """Smooth VV and VH fields in dB at the levels of real scenes (VH weaker than VV, which the
    band check requires of bands named so)."""
    vv, vh = _smooth_field(rng, 2, rows, cols)
    return np.stack([vv - 10, vh - 17])


def _one_pass(x, weights, bias, kernel):
    """The same convolution over the whole array at once (zero padding), with softmax."""
    k = np.asarray(weights, "float32")
    if k.ndim == 2:
        k = k[:, :, None, None]
    pad = kernel // 2
    padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    rows, cols = x.shape[1:]
    out = np.zeros((k.shape[0], rows, cols), "float64")
    for o in range(k.shape[0]):
        for c in range(k.shape[1]):
            for dy in range(kernel):
                for dx in range(kernel):
                    out[o] += k[o, c, dy, dx] * padded[c, dy:dy + rows, dx:dx + cols]
        out[o] += bias[o]
    return tiling.softmax(out[None].astype("float32"))[0]


@pytest.mark.parametrize("kernel,shape,tile,overlap", [
    (1, (70, 95), 32, 8),     # pixel-wise model, raster not a multiple of the stride
    (3, (83, 61), 32, 16),    # 3x3 context: margins must hide the tiles' zero padding
    (5, (64, 64), 24, 12),
])
def test_tiled_inference_equals_one_pass(tmp_path, kernel, shape, tile, overlap):
    rng = np.random.default_rng(kernel)
    data = _backscatter(rng, *shape)
    weights = rng.normal(size=(2, 2, kernel, kernel))
    bias = np.array([0.1, -0.2], "float32")
    model = conv_model(str(tmp_path / "m.onnx"), weights, bias, task_props=SEG_PROPS)
    src = write_raster(str(tmp_path / "in.tif"), data, ["VV", "VH"])
    out, probs = str(tmp_path / "cls.tif"), str(tmp_path / "p.tif")
    result = cnn.classify_with_cnn(src, model, out, probabilities_path=probs, tile_size=tile,
                                   overlap=overlap, batch_size=3)
    assert result["tile_size"] == tile and result["overlap"] == overlap
    # One pass over the raster mirrored by half the overlap, like the engine's edge padding.
    pad = overlap // 2
    mirrored = np.pad(data, ((0, 0), (pad, pad), (pad, pad)), mode="reflect")
    expected = _one_pass(mirrored, weights, bias, kernel)[:, pad:pad + shape[0], pad:pad + shape[1]]
    with rasterio.open(probs) as ds:
        got = ds.read()
        assert ds.descriptions == ("land", "water")
    np.testing.assert_allclose(got, expected, atol=2e-5)
    with rasterio.open(out) as ds:
        classes = ds.read(1)
        assert ds.transform == rasterio.open(src).transform
    np.testing.assert_array_equal(classes, expected.argmax(axis=0))


def test_edge_weights_cover_every_pixel():
    for length, tile, overlap in [(100, 32, 8), (33, 32, 16), (10, 32, 8), (257, 64, 0), (97, 16, 4)]:
        origins, pad = tiling.tile_origins(length, tile, overlap)
        total = np.zeros(length + 2 * pad + tile)
        for i, o in enumerate(origins):
            w = tiling.edge_weights(tile, overlap, i == 0, i == len(origins) - 1)
            total[o + pad:o + pad + tile] += w
        assert (total[pad:pad + length] > 0).all(), (length, tile, overlap)
        assert origins[0] == -pad


def test_bands_selected_and_reordered_by_name(tmp_path):
    rng = np.random.default_rng(1)
    vv, vh, extra = _smooth_field(rng, 3, 40, 40)
    # The stack holds the bands in another order plus one the model does not use.
    src = write_raster(str(tmp_path / "in.tif"), np.stack([vh, extra, vv]), ["VH", "NDVI", "VV"])
    weights = np.array([[1.0, 0.0], [0.0, 1.0]])  # class score k = band k of the model
    model = conv_model(str(tmp_path / "m.onnx"), weights, task_props=SEG_PROPS)
    out = str(tmp_path / "cls.tif")
    cnn.classify_with_cnn(src, model, out, tile_size=16, overlap=4)
    with rasterio.open(out) as ds:
        np.testing.assert_array_equal(ds.read(1), (vh > vv).astype("uint8"))
    # Unnamed bands with explicit names give the same result.
    unnamed = write_raster(str(tmp_path / "unnamed.tif"), np.stack([vh, extra, vv]))
    out2 = str(tmp_path / "cls2.tif")
    cnn.classify_with_cnn(unnamed, model, out2, band_names="VH, NDVI, VV", tile_size=16, overlap=4)
    with rasterio.open(out2) as ds:
        np.testing.assert_array_equal(ds.read(1), (vh > vv).astype("uint8"))


def test_band_mismatch_is_named_before_reading(tmp_path):
    src = write_raster(str(tmp_path / "in.tif"), np.zeros((2, 20, 20), "float32"), ["B04", "B08"])
    model = conv_model(str(tmp_path / "m.onnx"), np.eye(2), task_props=SEG_PROPS)
    out = str(tmp_path / "cls.tif")
    with pytest.raises(BandError, match="needs bands VV, VH.*missing: VV, VH"):
        cnn.classify_with_cnn(src, model, out)
    assert not os.path.exists(out)
    three = write_raster(str(tmp_path / "three.tif"), np.zeros((3, 20, 20), "float32"))
    with pytest.raises(BandError, match="needs 2 bands.*3 unnamed"):
        cnn.classify_with_cnn(three, model, out)
    assert sorted(os.listdir(tmp_path)) == ["in.tif", "m.onnx", "three.tif"]


def test_scaling_clipping_and_nodata(tmp_path):
    data = np.array([[[-40.0, -20.0, 3.0, np.nan], [-10.0, -9999.0, -15.0, -25.0]],
                     [[-30.0, -30.0, -30.0, -30.0], [-30.0, -30.0, -30.0, -30.0]]], "float32")
    src = write_raster(str(tmp_path / "in.tif"), data, ["VV", "VH"], nodata=-9999.0)
    props = dict(SEG_PROPS, clip_min=[-35.0, -50.0], clip_max=[0.0, 0.0], input_mean=[-15.0, -30.0],
                 input_std=[5.0, 1.0])
    # water score = -(normalised VV): low backscatter -> water
    model = conv_model(str(tmp_path / "m.onnx"), np.array([[0.0, 0.0], [-1.0, 0.0]]),
                       task_props=props)
    out, conf = str(tmp_path / "cls.tif"), str(tmp_path / "conf.tif")
    result = cnn.classify_with_cnn(src, model, out, confidence_path=conf, tile_size=8, overlap=0)
    with rasterio.open(out) as ds:
        classes = ds.read(1)
        assert ds.nodata == 255
    assert classes.tolist() == [[1, 1, 0, 255], [0, 255, 0, 1]]
    with rasterio.open(conf) as ds:
        assert ds.descriptions == ("confidence", "margin") and ds.nodata == -9999.0
        assert ds.compression.name == "zstd"
        c, margin = ds.read()
    # VV=-40 is clipped to -35 -> normalised -4 -> p(water) = 1 / (1 + e^-4)
    p_water = 1 / (1 + np.exp(-4.0))
    assert c[0, 0] == pytest.approx(p_water, abs=1e-5)
    assert margin[0, 0] == pytest.approx(p_water - (1 - p_water), abs=1e-5)
    assert c[0, 3] == -9999.0 and c[1, 1] == -9999.0
    assert margin[0, 3] == -9999.0 and margin[1, 1] == -9999.0
    assert result["valid_pixels"] == 6
    assert result["class_fractions"]["water"] == pytest.approx(3 / 6)
    assert result["class_pixels"] == {"land": 3, "water": 3}
    styled = read_class_styling(out)
    assert [(c.value, c.name) for c in styled] == [(0, "land"), (1, "water")]
    assert os.path.exists(str(tmp_path / "cls.qml"))


def test_raster_smaller_than_tile_is_mirrored_with_warning(tmp_path):
    rng = np.random.default_rng(3)
    data = _backscatter(rng, 11, 7)
    src = write_raster(str(tmp_path / "in.tif"), data, ["VV", "VH"])
    model = conv_model(str(tmp_path / "m.onnx"), np.eye(2), task_props=SEG_PROPS)
    warnings = []
    out = str(tmp_path / "cls.tif")
    cnn.classify_with_cnn(src, model, out, warn=warnings.append)
    assert any("smaller than one 32x32 tile" in w for w in warnings)
    with rasterio.open(out) as ds:
        np.testing.assert_array_equal(ds.read(1), (data[1] > data[0]).astype("uint8"))


def test_all_nodata_raster_leaves_no_output(tmp_path):
    src = write_raster(str(tmp_path / "in.tif"), np.full((2, 30, 30), -9999.0, "float32"),
                       ["VV", "VH"], nodata=-9999.0)
    model = conv_model(str(tmp_path / "m.onnx"), np.eye(2), task_props=SEG_PROPS)
    out, probs = str(tmp_path / "cls.tif"), str(tmp_path / "p.tif")
    with pytest.raises(NoDataError, match="no valid pixel"):
        cnn.classify_with_cnn(src, model, out, probabilities_path=probs)
    assert sorted(os.listdir(tmp_path)) == ["in.tif", "m.onnx"]


def test_cancel_leaves_no_output(tmp_path):
    src = write_raster(str(tmp_path / "in.tif"), np.ones((2, 64, 64), "float32"), ["VV", "VH"])
    model = conv_model(str(tmp_path / "m.onnx"), np.eye(2), task_props=SEG_PROPS)
    calls = []

    def cancel_after_first():
        calls.append(1)
        return len(calls) > 1

    with pytest.raises(CancelledError):
        cnn.classify_with_cnn(src, model, str(tmp_path / "cls.tif"), tile_size=16, overlap=4,
                              is_cancelled=cancel_after_first)
    assert sorted(os.listdir(tmp_path)) == ["in.tif", "m.onnx"]


def test_progress_reaches_one(tmp_path):
    src = write_raster(str(tmp_path / "in.tif"), np.ones((2, 50, 20), "float32"), ["VV", "VH"])
    model = conv_model(str(tmp_path / "m.onnx"), np.eye(2), task_props=SEG_PROPS)
    seen = []
    cnn.classify_with_cnn(src, model, str(tmp_path / "cls.tif"), tile_size=16, overlap=4,
                          progress=seen.append)
    assert seen == sorted(seen) and seen[-1] == pytest.approx(1.0) and len(seen) > 2


def test_not_a_model_and_wrong_rank(tmp_path):
    src = write_raster(str(tmp_path / "in.tif"), np.ones((2, 20, 20), "float32"), ["VV", "VH"])
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"this is not a model at all \x00\x01\x02" * 10)
    with pytest.raises(ModelError, match="not a valid ONNX file"):
        cnn.classify_with_cnn(src, str(junk), str(tmp_path / "a.tif"))
    rank3 = conv_model(str(tmp_path / "r3.onnx"), np.eye(2), task_props=SEG_PROPS, input_rank=3)
    with pytest.raises(ModelError, match="rank 3.*rank 4"):
        cnn.classify_with_cnn(src, rank3, str(tmp_path / "b.tif"))
    bare = conv_model(str(tmp_path / "bare.onnx"), np.eye(2), task_props=None)
    with pytest.raises(ModelError, match="not a LandFusion model.*write_model_metadata.py"):
        cnn.classify_with_cnn(src, bare, str(tmp_path / "c.tif"))
    with pytest.raises(ModelError, match="does not exist"):
        cnn.classify_with_cnn(src, str(tmp_path / "missing.onnx"), str(tmp_path / "d.tif"))
    three_classes = conv_model(str(tmp_path / "k3.onnx"), np.ones((3, 2)), task_props=SEG_PROPS)
    with pytest.raises(ModelError, match="outputs 3 class scores but its metadata lists 2"):
        cnn.classify_with_cnn(src, three_classes, str(tmp_path / "e.tif"))
    assert sorted(os.listdir(tmp_path)) == sorted(
        ["in.tif", "junk.onnx", "r3.onnx", "bare.onnx", "k3.onnx"])


def test_fixed_size_model_and_tile_checks(tmp_path):
    data = _backscatter(np.random.default_rng(5), 50, 45)
    src = write_raster(str(tmp_path / "in.tif"), data, ["VV", "VH"])
    fixed = conv_model(str(tmp_path / "f.onnx"), np.eye(2), task_props=SEG_PROPS, spatial=16)
    out = str(tmp_path / "cls.tif")
    result = cnn.classify_with_cnn(src, fixed, out)
    assert result["tile_size"] == 16
    with rasterio.open(out) as ds:
        np.testing.assert_array_equal(ds.read(1), (data[1] > data[0]).astype("uint8"))
    with pytest.raises(Exception, match="only takes 16x16 tiles"):
        cnn.classify_with_cnn(src, fixed, str(tmp_path / "x.tif"), tile_size=32)
    divisor = conv_model(str(tmp_path / "d.onnx"), np.eye(2),
                         task_props=dict(SEG_PROPS, size_divisor=8))
    with pytest.raises(Exception, match="multiple of 8"):
        cnn.classify_with_cnn(src, divisor, str(tmp_path / "x.tif"), tile_size=20)
    with pytest.raises(Exception, match="Overlap 20 must be between 0 and half"):
        cnn.classify_with_cnn(src, divisor, str(tmp_path / "x.tif"), tile_size=32, overlap=20)


def test_patch_classification_assigns_cells(tmp_path):
    rows, cols = 40, 36
    data = np.zeros((2, rows, cols), "float32")
    data[0, :, 18:] = 1.0  # right half bright
    src = write_raster(str(tmp_path / "in.tif"), data, ["B04", "B08"])
    classes = [{"value": 1, "name": "dark"}, {"value": 2, "name": "bright"}]
    props = {"task": "patch_classifier", "bands": ["B4", "B8"], "classes": classes,
             "patch_stride": 4}
    model = pooling_patch_model(str(tmp_path / "p.onnx"), classes, ["B04", "B08"], 8, props)
    out = str(tmp_path / "cls.tif")
    cnn.classify_with_cnn(src, model, out, batch_size=5)
    with rasterio.open(out) as ds, rasterio.open(src) as source:
        got = ds.read(1)
        # One cell per 4 x 4 input pixels, on the input's origin.
        assert got.shape == (10, 9) and ds.crs == source.crs
        assert ds.transform.a == 4 * source.transform.a and ds.transform.c == source.transform.c
        assert ds.transform.f == source.transform.f
    # Cell c is scored by the patch over input columns 4c-2 .. 4c+5: wholly dark for c <= 3,
    # wholly bright for c >= 5, half and half (mean 0.5, still "bright") for c = 4.
    assert (got[:, :4] == 1).all() and (got[:, 4:] == 2).all()


def test_card_round_trip_and_errors(tmp_path):
    model = conv_model(str(tmp_path / "m.onnx"), np.eye(2), task_props=None)
    card = build_card(**SEG_PROPS, input_mean=[-12.5, -19.0], pixel_size=10.0,
                      band_units=["dB", "dB"])
    write_model(model, card)
    again = read_model(model)
    assert again.bands == ["VV", "VH"] and again.input_mean == [-12.5, -19.0]
    assert again.band_units == ["dB", "dB"] and again.band_roles == ["VV", "VH"]
    assert [c.name for c in again.classes] == ["land", "water"]
    assert again.pixel_size == 10.0 and again.tile_overlap == 8 and again.output_type == "logits"
    assert again.format_version == 2 and isinstance(again, ModelCard)
    with pytest.raises(ModelError, match="task 'detection' is unknown"):
        build_card(**dict(SEG_PROPS, task="detection"))
    with pytest.raises(ModelError, match="'std' must be one number or a list of 2"):
        build_card(**SEG_PROPS, input_std=[1, 2, 3])
    with pytest.raises(ModelError, match="not valid JSON"):
        card_from_props({"task": "segmentation", "bands": "[VV", "classes": "[]"})
    with pytest.raises(ModelError, match="appear more than once"):
        build_card(**dict(SEG_PROPS, classes=[{"value": 1, "name": "a"},
                                              {"value": 1, "name": "b"}]))
    with pytest.raises(ModelError, match="unknown model card entry colour"):
        build_card(**SEG_PROPS, colour="red")
    with pytest.raises(ModelError, match="graph takes 2 channels but the card lists 3"):
        write_model(model, build_card(**dict(SEG_PROPS, bands=["VV", "VH", "HH"])))


def test_write_metadata_script(tmp_path):
    import subprocess
    import sys

    model = conv_model(str(tmp_path / "m.onnx"), np.eye(2), task_props=None)
    script = os.path.join(os.path.dirname(__file__), "..", "scripts", "write_model_metadata.py")
    proc = subprocess.run([sys.executable, script, model, "--task", "segmentation",
                           "--bands", "VV,VH", "--classes", "0:land:#c8b58a,1:water:#1f78b4",
                           "--mean=-12,-19", "--std", "4,5", "--tile-size", "128",
                           "--pixel-size", "10"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    meta = read_model(model)
    assert meta.input_std == [4.0, 5.0] and meta.tile_size == 128
    assert [(c.value, c.name, c.hex()) for c in meta.classes] == [
        (0, "land", "#c8b58a"), (1, "water", "#1f78b4")]
    proc = subprocess.run([sys.executable, script, model, "--show"], capture_output=True, text=True)
    assert proc.returncode == 0 and '"task": "segmentation"' in proc.stdout
    proc = subprocess.run([sys.executable, script, str(tmp_path / "nope.onnx"), "--show"],
                          capture_output=True, text=True)
    assert proc.returncode != 0 and "does not exist" in proc.stderr


def test_memory_bounded_strips(tmp_path, monkeypatch):
    """Only strips of one tile height are read, whatever the raster height."""
    src = write_raster(str(tmp_path / "in.tif"), np.ones((2, 300, 40), "float32"), ["VV", "VH"])
    model = conv_model(str(tmp_path / "m.onnx"), np.eye(2), task_props=SEG_PROPS)
    heights = []
    original = cnn._read_strip

    def recording(dataset, indexes, row0, height, *args):
        x, invalid, top = original(dataset, indexes, row0, height, *args)
        heights.append(invalid.shape[0])
        assert x.shape[1] == height
        return x, invalid, top

    monkeypatch.setattr(cnn, "_read_strip", recording)
    cnn.classify_with_cnn(src, model, str(tmp_path / "cls.tif"), tile_size=32, overlap=8)
    rows, _ = tiling.tile_origins(300, 32, 8)
    assert len(heights) == len(rows) and max(heights) <= 32


def test_mirror_margins_equal_mirror():
    """Strips are read into their middle and mirrored in place, as np.pad would (also margins
    wider than the raster part, and single rows and columns)."""
    rng = np.random.default_rng(3)
    for rows, cols in [(1, 1), (2, 4), (3, 30), (20, 5), (20, 30)]:
        for top, bottom, left, right in [(0, 0, 0, 0), (1, 0, 0, 2), (3, 2, 4, 1), (10, 10, 10, 10)]:
            part = rng.normal(size=(2, rows, cols)).astype("float32")
            buffer = np.full((2, rows + top + bottom, cols + left + right), np.nan, "float32")
            buffer[:, top:top + rows, left:left + cols] = part
            tiling.mirror_margins(buffer, slice(top, top + rows), slice(left, left + cols))
            expected = tiling.mirror(tiling.mirror(part, top, bottom, axis=1), left, right, axis=2)
            np.testing.assert_array_equal(buffer, expected)


def test_onnxruntime_runs_alone(tmp_path, monkeypatch):
    """onnxruntime keeps every core: no strip is read or written while a batch runs."""
    import threading
    import time

    from landfusion.core.cnn import batches

    src = write_raster(str(tmp_path / "in.tif"), _backscatter(np.random.default_rng(5), 150, 70),
                       ["VV", "VH"])
    model = conv_model(str(tmp_path / "m.onnx"), np.eye(2), task_props=SEG_PROPS)
    active, clashes, runs, lock = {"io": 0}, [], [], threading.Lock()

    def counting(function):
        def wrapped(*args, **kwargs):
            with lock:
                active["io"] += 1
            try:
                time.sleep(0.02)  # slow storage: a read-ahead would still be reading
                return function(*args, **kwargs)
            finally:
                with lock:
                    active["io"] -= 1
        return wrapped

    def running(self, batch_list):
        clashes.append(active["io"])
        result = run(self, batch_list)
        clashes.append(active["io"])
        runs.append(len(batch_list))
        return result

    run = batches.BatchRunner.__call__
    monkeypatch.setattr(cnn, "_read_strip", counting(cnn._read_strip))
    monkeypatch.setattr(cnn, "write_rows", counting(cnn.write_rows))
    monkeypatch.setattr(batches.BatchRunner, "__call__", running)
    cnn.classify_with_cnn(src, model, str(tmp_path / "cls.tif"), tile_size=32, overlap=8)
    assert len(runs) == len(tiling.tile_origins(150, 32, 8)[0]) and sum(runs) > 0
    assert clashes and not any(clashes)


def test_bundled_unet_small_tiles_agree_with_one_tile(tmp_path):
    """A real U-Net (receptive field wider than the blending margin): small overlapping tiles
    agree with a single tile over the whole chip almost everywhere, with no seam lines."""
    from conftest import data_path

    model = cnn.bundled_models().get("s1_water_unet")
    if model is None:
        pytest.fail("bundled model s1_water_unet.onnx is missing")
    s1 = str(data_path("sen1floods11", "Spain_7370579_S1Hand.tif"))
    one, tiled = str(tmp_path / "one.tif"), str(tmp_path / "tiled.tif")
    cnn.classify_with_cnn(s1, model, str(tmp_path / "c1.tif"), probabilities_path=one,
                          tile_size=576, overlap=64)
    cnn.classify_with_cnn(s1, model, str(tmp_path / "c2.tif"), probabilities_path=tiled,
                          tile_size=128, overlap=48)
    with rasterio.open(one) as a, rasterio.open(tiled) as b:
        p1, p2 = a.read(2), b.read(2)
    difference = np.abs(p1 - p2)
    assert ((p1 > 0.5) == (p2 > 0.5)).mean() > 0.99
    assert np.median(difference) < 0.01
    # No seams: rows/columns at tile borders differ no more than the others.
    origins, _ = tiling.tile_origins(512, 128, 48)
    borders = sorted({r for o in origins for r in (o, o + 127) if 0 <= r < 512})
    inner = [r for r in range(0, 512) if r not in borders]
    assert difference[borders].mean() < 2 * difference[inner].mean() + 0.01
    assert difference[:, borders].mean() < 2 * difference[:, inner].mean() + 0.01
