"""The CNN training engine (core/cnn/training.py) on real chips, without QGIS.

Runs are kept tiny (crops, a few epochs, narrow networks, one thread) so the whole file takes about
a minute on two CPU cores; they check behaviour, not accuracy.
"""

import os
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import rasterio
from cnn_training_data import (EUROSAT_ORDER, eurosat_subset, label_points, label_polygons,
                               s1_chip, s1_crops, terramind_stacks)
from conftest import data_path

from landfusion.core.cnn import architectures, datasets
from landfusion.core.cnn.inference import classify_with_cnn, load_model
from landfusion.core.cnn.trained_model import EXPORT_TOLERANCE
from landfusion.core.cnn.training import train_cnn
from landfusion.core.cnn.training_loop import TrainingMemoryError
from landfusion.core.cnn.training_options import TrainingOptions
from landfusion.core.errors import (BandError, CancelledError, DependencyError, InputError,
                                    NoDataError, NoOverlapError)
from landfusion.core.models.reading import read_model

pytest.importorskip("torch")

FAST = dict(epochs=2, batch_size=8, width=4, threads=1, patience=0)


def _seg_options(tmp_path, pairs, **extra):
    settings = dict(FAST, patch_size=64, label_nodata=-1, seed=5,
                    class_names="0:land:#d9c9a3,1:water:#1f78b4")
    settings.update(extra)
    return TrainingOptions(output_model=str(tmp_path / "model.onnx"),
                           output_report=str(tmp_path / "report.html"),
                           inputs=[p[0] for p in pairs], labels=[p[1] for p in pairs], **settings)


@pytest.fixture(scope="module")
def crops(tmp_path_factory):
    return s1_crops(str(tmp_path_factory.mktemp("s1crops")))


def test_segmentation_on_sen1floods11_writes_a_model_cnnclassify_runs(tmp_path, crops):
    logs, warnings = [], []
    options = _seg_options(tmp_path, crops)
    summary = train_cnn(options, log=logs.append, warn=warnings.append)
    meta = read_model(options.output_model)
    assert meta.task == "segmentation" and meta.bands == ["VV", "VH"]
    assert [(c.value, c.name) for c in meta.classes] == [(0, "land"), (1, "water")]
    assert meta.size_divisor == 8 and meta.pixel_size and 8 < meta.pixel_size < 12
    # Normalisation comes from the training part of the data (VV/VH in dB).
    assert -25 < meta.input_mean[0] < -5 and meta.input_std[0] > 0.5
    assert summary["export_max_difference"] <= EXPORT_TOLERANCE
    assert any(line.startswith("Epoch 2/2") for line in logs)
    # Validation held out one whole input; its name is in the summary and the report.
    held = summary["samples"]["validation_groups"]
    assert len(held) == 1 and summary["samples"]["validation"] > 0
    assert held[0] in [os.path.basename(p[0]) for p in crops]
    report = Path(options.output_report).read_text(encoding="utf-8")
    assert "rows = predicted, columns = reference" in report and "<svg" in report
    assert "land" in report and "water" in report and "learning_rate" in report
    # The card records the training and the validation figures.
    assert meta.training["settings"]["seed"] == 5 and meta.training["architecture"] == "unet"
    assert meta.metrics["overall_accuracy"] == summary["validation"]["overall_accuracy"]
    assert meta.band_units == ["dB", "dB"] and meta.band_stats[0]["count"] > 0
    # cnnclassify runs it (tiled inference over a whole chip, without torch).
    out = str(tmp_path / "classes.tif")
    result = classify_with_cnn(s1_chip("USA_905409")[0], options.output_model, out)
    with rasterio.open(out) as ds, rasterio.open(s1_chip("USA_905409")[0]) as ref:
        assert ds.crs == ref.crs and ds.transform == ref.transform
        assert set(np.unique(ds.read(1))) <= {0, 1, ds.nodata}
    assert result["valid_pixels"] > 0


def test_onnx_predictions_equal_torch_predictions(tmp_path):
    """The exported graph gives the network's probabilities within 1e-4 (absolute), for every
    architecture, including dynamic tile sizes for segmentation."""
    import onnxruntime as ort
    import torch

    from landfusion.core.cnn.networks import build_network
    from landfusion.core.cnn.trained_model import export_onnx

    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    cases = [("unet", "segmentation", 3, {}), ("resnet", "patch_classification", 4, {}),
             ("fusion", "segmentation", 5, {"radar_bands": 2}),
             ("fusion", "patch_classification", 5, {"radar_bands": 2}),
             ("temporal", "segmentation", 6, {"dates": ["a", "b", "c"], "variables": ["x", "y"]}),
             ("temporal", "patch_classification", 6,
              {"dates": ["a", "b"], "variables": ["x", "y", "z"]})]
    for arch, task, bands, layout in cases:
        network = build_network(arch, task, bands, 3, layout, width=4)
        # A few training steps so that batch-norm statistics are not the initial ones.
        optimiser = torch.optim.SGD(network.parameters(), lr=0.01)
        for _ in range(2):
            x = torch.randn(4, bands, 32, 32)
            target = torch.randint(0, 3, (4, 32, 32) if task == "segmentation" else (4,))
            optimiser.zero_grad()
            torch.nn.functional.cross_entropy(network(x), target).backward()
            optimiser.step()
        path = str(tmp_path / f"{arch}_{task}.onnx")
        export_onnx(torch, network, torch.randn(2, bands, 32, 32), path, task == "segmentation")
        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        size = 48 if task == "segmentation" else 32  # segmentation: another tile size than exported
        x = torch.randn(3, bands, size, size)
        network.eval()
        with torch.no_grad():
            expected = torch.softmax(network(x), 1).numpy()
        got = session.run(None, {"input": x.numpy()})[0]
        got = np.exp(got - got.max(1, keepdims=True))
        got /= got.sum(1, keepdims=True)
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, atol=1e-4, err_msg=f"{arch} {task}")
    torch.set_num_threads(threads)


def test_same_seed_gives_the_same_model(tmp_path, crops):
    weights = []
    for run in ("a", "b", "c"):
        folder = tmp_path / run
        folder.mkdir()
        seed = 11 if run != "c" else 12
        train_cnn(_seg_options(folder, crops[:2], seed=seed, epochs=1, validation="blocks"))
        model = onnx.load(str(folder / "model.onnx"))
        weights.append([onnx.numpy_helper.to_array(t) for t in model.graph.initializer])
    for a, b in zip(weights[0], weights[1]):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, c) for a, c in zip(weights[0], weights[2]))


def test_patch_classification_on_eurosat_folder(tmp_path):
    folder = eurosat_subset(tmp_path / "patches")
    options = TrainingOptions(
        output_model=str(tmp_path / "eurosat.onnx"), output_report=str(tmp_path / "r.html"),
        task="patch_classification", patch_folder=folder, input_band_names=EUROSAT_ORDER,
        bands=["B02", "B03", "B04", "B08", "B11", "B12"], seed=1, **FAST)
    summary = train_cnn(options)
    meta = read_model(options.output_model)
    assert meta.task == "patch_classifier" and meta.patch_size == 64
    assert meta.bands == ["B02", "B03", "B04", "B08", "B11", "B12"]
    assert [c.name for c in meta.classes] == ["AnnualCrop", "Forest", "Residential", "SeaLake"]
    # Every class is validated on held-out patches (patches are split per class).
    assert all(n > 0 for n in summary["samples"]["validation_labels"])
    model = load_model(options.output_model)
    assert model.fixed_size == 64


def test_fusion_on_terramind_s1_s2_lulc(tmp_path):
    stacks = terramind_stacks(str(tmp_path))
    options = TrainingOptions(
        output_model=str(tmp_path / "fusion.onnx"), output_report=str(tmp_path / "f.html"),
        architecture="fusion", inputs=[s for s, _ in stacks], labels=[lab for _, lab in stacks],
        label_nodata=0, patch_size=32, seed=2, validation="blocks", **FAST)
    summary = train_cnn(options)
    meta = read_model(options.output_model)
    # Radar bands first (one encoder), then the optical ones (the other encoder).
    assert meta.bands[:2] == ["VV", "VH"] and len(meta.bands) == 14
    assert summary["layout"] == {"radar_bands": 2}
    assert all(c.value != 0 for c in meta.classes)  # 0 is the LULC nodata
    out = str(tmp_path / "lulc.tif")
    classify_with_cnn(stacks[0][0], options.output_model, out)
    with rasterio.open(out) as ds:
        values = set(np.unique(ds.read(1))) - {ds.nodata}
        assert values <= {c.value for c in meta.classes}


def test_temporal_on_a_multi_date_stack_with_spatial_blocks(tmp_path):
    ndvi = data_path("eolearn_timeseries", "NDVI_timeseries.tif")
    labels = data_path("eolearn_timeseries", "LULC.tif")
    with rasterio.open(ndvi) as ds:
        names = list(ds.descriptions)
    chosen = names[10:40:6]  # five dates
    options = TrainingOptions(
        output_model=str(tmp_path / "temporal.onnx"), output_report=str(tmp_path / "t.html"),
        architecture="temporal", inputs=[str(ndvi)], labels=[str(labels)], label_nodata=0,
        bands=chosen, patch_size=16, validation="blocks", validation_block=32, seed=4, **FAST)
    summary = train_cnn(options)
    assert len(summary["layout"]["dates"]) == 5 and summary["layout"]["variables"] == ["VALUE"]
    assert read_model(options.output_model).bands == sorted(
        chosen, key=architectures.date_of)
    # Blocks: held-out groups are blocks of the single input, never the input as a whole.
    assert all(g.count(":") == 2 for g in summary["samples"]["validation_groups"])


def test_points_and_polygons_from_a_vector_layer(tmp_path, crops):
    s1, label = crops[0]
    points = label_points(label, tmp_path / "points.gpkg")
    options = TrainingOptions(
        output_model=str(tmp_path / "points.onnx"), task="patch_classification", inputs=[s1],
        training=points, class_field="cover", patch_size=16, validation="blocks",
        validation_block=48, seed=3, **FAST)
    train_cnn(options)
    assert [c.name for c in read_model(options.output_model).classes] == ["land", "water"]
    polygons = label_polygons(label, tmp_path / "polygons.gpkg")
    options = TrainingOptions(
        output_model=str(tmp_path / "polygons.onnx"), inputs=[p[0] for p in crops],
        training=polygons, class_field="class", patch_size=32, seed=3, **FAST)
    with pytest.raises(InputError, match="choose spatial blocks"):  # one input holds them all
        train_cnn(options)
    options.validation = "blocks"
    summary = train_cnn(options)
    assert summary["samples"]["total"] > 0
    assert [c.value for c in read_model(options.output_model).classes] == [0, 1]


# --- bad input: clear messages, nothing written -------------------------------------------------

def _nothing_written(tmp_path):
    left = [p.name for p in tmp_path.iterdir() if p.suffix in (".onnx", ".html")]
    assert left == [], left


def test_labels_that_do_not_overlap_the_input(tmp_path, crops):
    options = _seg_options(tmp_path, [(crops[0][0], crops[1][1])])
    with pytest.raises(NoOverlapError, match="does not overlap"):
        train_cnn(options)
    _nothing_written(tmp_path)


def test_single_class(tmp_path):
    s1, label = s1_chip("Ghana_53713")  # no water in this chip
    options = _seg_options(tmp_path, [(s1, label)], validation="blocks", patch_size=128)
    with pytest.raises(NoDataError, match="single class"):
        train_cnn(options)
    _nothing_written(tmp_path)


def test_class_absent_from_the_validation_split(tmp_path, crops):
    land_only = s1_chip("Ghana_53713")
    outcomes = set()
    for seed in range(6):
        warnings = []
        options = _seg_options(tmp_path, [land_only, crops[0]], seed=seed, epochs=1)
        try:
            train_cnn(options, warn=warnings.append)
        except NoDataError as exc:  # the only water chip was held out
            assert "only occur in the validation part" in str(exc) and "water" in str(exc)
            outcomes.add("error")
            continue
        assert any("water" in w and "absent from the validation" in w for w in warnings)
        report = Path(options.output_report).read_text(encoding="utf-8")
        assert "Absent from the validation part" in report
        outcomes.add("warning")
        if len(outcomes) == 2:
            break
    assert outcomes == {"error", "warning"}


def test_patch_folder_with_mixed_band_counts(tmp_path):
    folder = eurosat_subset(tmp_path / "patches", classes=("Forest", "SeaLake"), per_class=3)
    odd = os.path.join(folder, "SeaLake", "odd.tif")
    src = os.path.realpath(os.path.join(folder, "Forest", sorted(os.listdir(
        os.path.join(folder, "Forest")))[0]))
    with rasterio.open(src) as ds:
        profile = ds.profile.copy()
        data = ds.read()[:12]
    profile.update(count=12)
    with rasterio.open(odd, "w", **profile) as dst:
        dst.write(data)
    options = TrainingOptions(output_model=str(tmp_path / "m.onnx"), task="patch_classification",
                              patch_folder=folder, input_band_names=EUROSAT_ORDER, **FAST)
    with pytest.raises(InputError, match="mixes band counts or sizes"):
        train_cnn(options)
    _nothing_written(tmp_path)


def test_patch_size_larger_than_the_raster(tmp_path, crops):
    with pytest.raises(InputError, match="larger than"):
        train_cnn(_seg_options(tmp_path, crops, patch_size=256))
    _nothing_written(tmp_path)


def test_unnamed_bands_and_fusion_without_radar(tmp_path):
    stacks = terramind_stacks(str(tmp_path))
    options = TrainingOptions(output_model=str(tmp_path / "m.onnx"), architecture="fusion",
                              inputs=[stacks[0][0]], labels=[stacks[0][1]], label_nodata=0,
                              bands=["B02", "B03", "B04"], patch_size=32, **FAST)
    with pytest.raises(BandError, match="no radar band"):
        train_cnn(options)
    lulc_as_input = TrainingOptions(output_model=str(tmp_path / "m.onnx"),
                                    inputs=[str(data_path("terramind", "S2L2A",
                                                          "282D_485L_3_3.tif"))],
                                    labels=[stacks[0][1]], patch_size=32, **FAST)
    with pytest.raises(BandError, match="unnamed or repeated band names"):
        train_cnn(lulc_as_input)
    _nothing_written(tmp_path)


def test_torch_missing(tmp_path, crops, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes "import torch" fail
    with pytest.raises(DependencyError, match=r"pip install .*torch==2\.13\.0.*whl/cpu"):
        train_cnn(_seg_options(tmp_path, crops))
    _nothing_written(tmp_path)


def test_out_of_memory_suggests_a_smaller_batch(tmp_path, crops, monkeypatch):
    from landfusion.core.cnn import networks

    original = networks.build_network

    def exhausting(*args, **kwargs):
        network = original(*args, **kwargs)

        def forward(x):
            raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: not "
                               "enough memory: you tried to allocate 34359738368 bytes.")
        network.forward = forward
        return network

    monkeypatch.setattr(networks, "build_network", exhausting)
    with pytest.raises(TrainingMemoryError, match=r"smaller batch size \(e\.g\. 4\)"):
        train_cnn(_seg_options(tmp_path, crops))
    _nothing_written(tmp_path)


def test_cancel_between_batches_writes_nothing(tmp_path, crops):
    calls = []

    def cancelled():
        calls.append(1)
        return len(calls) > 11  # 9 checks while reading, then one per batch

    with pytest.raises(CancelledError):
        train_cnn(_seg_options(tmp_path, crops), is_cancelled=cancelled)
    _nothing_written(tmp_path)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".landfusion")]


def test_date_and_sensor_band_layouts():
    ordered, radar = architectures.split_sensors(["B04", "VV", "NDVI", "VH"])
    assert ordered == ["VV", "VH", "B04", "NDVI"] and radar == 2
    ordered, dates, variables = architectures.split_dates(
        ["VV_20200105", "VH_20200105", "2020-01-17_VH", "2020-01-17_VV"])
    assert dates == ["2020-01-05", "2020-01-17"] and variables == ["VV", "VH"]
    assert ordered == ["VV_20200105", "VH_20200105", "2020-01-17_VV", "2020-01-17_VH"]
    with pytest.raises(BandError, match="same bands"):
        architectures.split_dates(["VV_20200105", "VH_20200105", "VV_20200117"])
    with pytest.raises(InputError, match="does not do patch classification"):
        architectures.get_architecture("unet", "patch_classification")
    weights = datasets.class_weights(np.array([900, 90, 10]))
    assert weights[2] > weights[1] > weights[0]
