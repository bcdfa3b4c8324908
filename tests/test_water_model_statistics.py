"""The bundled Sentinel-1 water U-Net carries the per-band statistics of its training chips
(added after training by scripts/water_model_statistics.py, weights unchanged), so cnnclassify's
training-range check works for it: scaled dB is refused, real dB on a chip it never saw passes."""

import copy
import hashlib
import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
import rasterio
from conftest import data_path

from landfusion.core.errors import BandError
from landfusion.core.models.bands import check_model_bands
from landfusion.core.models.reading import read_model

ROOT = Path(__file__).resolve().parents[1]
WATER = ROOT / "resources" / "models" / "s1_water_unet.onnx"
METRICS = ROOT / "resources" / "models" / "s1_water_unet.metrics.json"
#: SHA-256 of the serialised graph (nodes and weights) of the network as trained (before its card
#: got the band statistics): rewriting the card must never change it.
TRAINED_GRAPH = "acc7e21e8be988028da83701457a02930fd9d36cb7b1a3abd4342f9ffd6dd016"
HELD_OUT_CHIP = ("sen1floods11_s1only", "USA_905409_S1Hand.tif")


def _script():
    spec = importlib.util.spec_from_file_location(
        "water_model_statistics", ROOT / "scripts" / "water_model_statistics.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _held_out():
    return json.loads(METRICS.read_text())["final"]["validation_groups"]


def test_bundled_water_model_has_its_training_statistics():
    card = read_model(str(WATER))
    assert card.bands == ["VV", "VH"] and card.band_units == ["dB", "dB"]
    for i, stats in enumerate(card.band_stats):
        assert stats, f"no training statistics for {card.bands[i]}"
        assert stats["min"] < stats["p02"] < stats["mean"] < stats["p98"] < stats["max"]
        assert stats["count"] > 1_000_000  # every valid pixel of 444 training tiles of 64 px
        # the normalisation is the mean/std of the same pixels clipped to 0.1-99.9 %
        assert abs(stats["mean"] - card.input_mean[i]) < 0.05
        assert abs(stats["std"] / card.input_std[i] - 1) < 0.02
    vv, vh = card.band_stats
    assert vh["mean"] < vv["mean"] - 5  # cross-polarised backscatter is weaker
    source = card.extra["band_stats_source"]
    assert "7 training chips" in source and "Nigeria_812045" in source
    assert not any(chip.replace("_S1Hand.tif", "") in source for chip in _held_out())
    graph = onnx.load(str(WATER)).graph.SerializeToString()
    assert hashlib.sha256(graph).hexdigest() == TRAINED_GRAPH


def test_statistics_are_those_of_the_training_chips(tmp_path):
    """Recomputed with traincnn's reader, split and card builder, they reproduce the model's
    normalisation and equal the stored ones; a copy without them is rewritten identically,
    weights byte for byte."""
    data_path("sen1floods11", "Spain_7370579_S1Hand.tif")  # skips without the shared data
    script = _script()
    script.import_landfusion()
    card = read_model(str(WATER))
    found = script.training_statistics(card, log=lambda m: None)
    assert found["held_out_chips"] == sorted(c.replace("_S1Hand.tif", "") for c in _held_out())
    assert len(found["training_chips"]) == 7
    assert found["band_stats"] == card.band_stats
    for recomputed, stored in found["normalisation"].values():
        np.testing.assert_allclose(recomputed, stored, rtol=1e-5)
    assert not script.rewrite(str(WATER), check_only=True, log=lambda m: None)

    # the model as it was before: no statistics in its card
    bare = tmp_path / "bare.onnx"
    model = onnx.load(str(WATER))
    entry = next(p for p in model.metadata_props if p.key == "landfusion.card")
    document = json.loads(entry.value)
    for band in document["bands"]:
        band.pop("stats")
    document["extra"].pop("band_stats_source")
    entry.value = json.dumps(document)
    onnx.save(model, str(bare))
    assert not any(read_model(str(bare)).band_stats)
    before = bare.read_bytes()
    assert script.rewrite(str(bare), log=lambda m: None)
    assert read_model(str(bare)).band_stats == card.band_stats
    assert onnx.load(str(bare)).graph.SerializeToString() == \
        onnx.load_model_from_string(before).graph.SerializeToString()
    chip = str(data_path(*HELD_OUT_CHIP))
    assert script.same_outputs(str(WATER), str(bare), chip)


def _raster(path, values, like, dtype="float32", nodata=None):
    with rasterio.open(like) as src:
        profile = dict(src.profile, dtype=dtype, count=values.shape[0])
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(values.astype(dtype))
        dst.descriptions = ("VV", "VH")
    return str(path)


@pytest.fixture(scope="module")
def chip_variants(tmp_path_factory):
    """A chip the model never trained on, as it is (dB) and as common wrong inputs."""
    folder = tmp_path_factory.mktemp("water_inputs")
    chip = str(data_path(*HELD_OUT_CHIP))
    with rasterio.open(chip) as src:
        db = src.read()
    return {
        "dB": chip,
        # dB stored as scaled integers (centi-dB), as some archives do
        "centi-dB": _raster(folder / "centi.tif", np.where(np.isfinite(db), np.round(db * 100),
                                                           -32768), chip, "int16", -32768),
        "deci-dB": _raster(folder / "deci.tif", db * 10, chip),
        "linear power": _raster(folder / "linear.tif", 10 ** (db / 10), chip),
    }


def test_range_check_refuses_scaled_db_and_passes_real_db(chip_variants):
    card = read_model(str(WATER))
    without = copy.deepcopy(card)
    without.band_stats = [None, None]
    with rasterio.open(chip_variants["dB"]) as ds:
        result = check_model_bands(card, ds)
    assert result.indexes == [1, 2] and not result.warnings
    for wrong in ("centi-dB", "deci-dB"):
        with rasterio.open(chip_variants[wrong]) as ds:
            with pytest.raises(BandError, match="far from those the model was trained on"):
                check_model_bands(card, ds)
            # without the training statistics the same raster passed as dB
            assert check_model_bands(without, ds).indexes == [1, 2]
    with rasterio.open(chip_variants["centi-dB"]) as ds:
        with pytest.raises(BandError, match=r"VV \(raster VV\): median -\d+, trained on -42\.9"):
            check_model_bands(card, ds)
    with rasterio.open(chip_variants["linear power"]) as ds:
        with pytest.raises(BandError, match="look like linear power"):
            check_model_bands(card, ds)


def test_cnnclassify_refuses_centi_db_before_any_work(run_algorithm, chip_variants, tmp_path):
    from qgis.core import QgsProcessingException

    out = str(tmp_path / "water.tif")
    with pytest.raises(QgsProcessingException, match="trained on -42.93 to 25.65"):
        run_algorithm("landfusion:cnnclassify", {"INPUT": chip_variants["centi-dB"],
                                                 "MODEL": "s1_water_unet", "OUTPUT": out})
    assert not os.path.exists(out) and not list(tmp_path.iterdir())
    run_algorithm("landfusion:cnnclassify", {"INPUT": chip_variants["dB"],
                                             "MODEL": "s1_water_unet", "OUTPUT": out})
    label = data_path(HELD_OUT_CHIP[0], HELD_OUT_CHIP[1].replace("S1Hand", "LabelHand"))
    with rasterio.open(out) as ds, rasterio.open(label) as lab:
        predicted, truth = ds.read(1), lab.read(1)
    valid = truth >= 0
    # hand labels: 17 % water; the model's share is within 5 points
    assert abs(np.mean(predicted[valid] == 1) - np.mean(truth[valid] == 1)) < 0.05
