"""A real patch classifier: a tiny CNN trained with PyTorch on EuroSAT patches, exported to ONNX
with a LandFusion card, slid over a mosaic of held-out patches by cnnclassify."""

import glob
import os

import numpy as np
import pytest
import rasterio
from conftest import data_path

from landfusion.core.cnn import inference as cnn
from landfusion.core.models.card import build_card
from landfusion.core.models.reading import read_model
from landfusion.core.models.statistics import band_statistics
from landfusion.core.models.writing import write_model

torch = pytest.importorskip("torch", reason="PyTorch is needed to train the test model")

EUROSAT_BANDS = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10",
                 "B11", "B12"]
CLASSES = ["AnnualCrop", "Forest", "Industrial", "SeaLake"]
COLOURS = ["#e49635", "#397d49", "#c4281b", "#419bdf"]


def _patches(folder):
    data = {}
    for name in CLASSES:
        files = sorted(glob.glob(str(folder / name / "*.tif")))
        data[name] = [(f, rasterio.open(f).read().astype("float32")) for f in files]
    return data


class TinyPatchNet(torch.nn.Module):
    """Two strided convolutions, global average pooling, a linear layer (cheap on a CPU)."""

    def __init__(self, bands, classes):
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(bands, 16, 4, stride=4), torch.nn.ReLU(),
            torch.nn.Conv2d(16, 32, 3, stride=2, padding=1), torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
        self.head = torch.nn.Linear(32, classes)

    def forward(self, x):
        return self.head(self.features(x))


def test_trained_eurosat_patch_cnn_maps_a_mosaic_like_torch(tmp_path):
    patches = _patches(data_path("eurosat_ms", "train"))
    # The first two patches of each class are held out: never seen in training.
    train = [(x, k) for k, name in enumerate(CLASSES) for _, x in patches[name][2:]]
    held = [(f, x, k) for k, name in enumerate(CLASSES) for f, x in patches[name][:2]]
    X = np.stack([x for x, _ in train]) * 1e-4
    y = np.array([k for _, k in train])
    stats = band_statistics(X, band_axis=1)
    mean = np.array([s["mean"] for s in stats], "float32")
    std = np.array([s["std"] for s in stats], "float32")

    torch.manual_seed(0)
    torch.set_num_threads(2)
    net = TinyPatchNet(len(EUROSAT_BANDS), len(CLASSES))
    optimiser = torch.optim.Adam(net.parameters(), lr=0.01)
    inputs = torch.from_numpy(((X - mean[:, None, None]) / std[:, None, None]).astype("float32"))
    targets = torch.from_numpy(y)
    for _ in range(25):
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(inputs), targets)
        loss.backward()
        optimiser.step()
    net.eval()

    def torch_probabilities(raw):
        x = (raw * 1e-4 - mean[:, None, None]) / std[:, None, None]
        with torch.no_grad():
            return torch.softmax(net(torch.from_numpy(x[None].astype("float32"))), 1)[0].numpy()

    held_accuracy = np.mean([np.argmax(torch_probabilities(x)) == k for _, x, k in held])
    path = str(tmp_path / "eurosat_patch.onnx")
    torch.onnx.export(net, torch.zeros(1, 13, 64, 64), path, input_names=["input"],
                      output_names=["logits"], dynamic_axes={"input": {0: "batch"}},
                      opset_version=17, dynamo=False)
    card = build_card(
        "patch_classifier", EUROSAT_BANDS,
        [{"value": k + 1, "name": n, "color": c} for k, (n, c) in enumerate(zip(CLASSES,
                                                                                  COLOURS))],
        band_units=["DN"] * 13, band_stats=band_statistics(X * 1e4, band_axis=1),
        input_scale=1e-4, input_mean=mean.tolist(), input_std=std.tolist(), patch_size=64,
        patch_stride=32, pixel_size=10.0, name="EuroSAT test patch CNN",
        training={"architecture": "2 conv + pooling", "patches": len(train), "epochs": 25},
        metrics={"held_out_accuracy": float(held_accuracy), "held_out_patches": len(held)})
    write_model(path, card)
    assert read_model(path).metrics["held_out_patches"] == 8

    # A 2 x 2 mosaic of held-out patches of the four classes, on the first patch's grid.
    mosaic = np.zeros((13, 128, 128), "float32")
    quadrants = [(0, 0), (0, 64), (64, 0), (64, 64)]
    chosen = [held[2 * k] for k in range(4)]
    for (r, c), (_, x, _) in zip(quadrants, chosen):
        mosaic[:, r:r + 64, c:c + 64] = x
    with rasterio.open(chosen[0][0]) as first:
        profile = dict(first.profile, width=128, height=128, dtype="float32", count=13)
    raster = str(tmp_path / "mosaic.tif")
    with rasterio.open(raster, "w", **profile) as dst:
        dst.write(mosaic)
        dst.descriptions = tuple(EUROSAT_BANDS)
    out, probs = str(tmp_path / "classes.tif"), str(tmp_path / "probs.tif")
    # Stride 64: cell (i, j) is scored by exactly quadrant (i, j).
    cnn.classify_with_cnn(raster, path, out, probabilities_path=probs, stride=64)
    with rasterio.open(out) as c, rasterio.open(probs) as p:
        assert (c.width, c.height) == (2, 2) and c.transform.a == 64 * profile["transform"].a
        got, got_p = c.read(1), p.read()
    for (i, j), (_, x, _) in zip([(0, 0), (0, 1), (1, 0), (1, 1)], chosen):
        expected = torch_probabilities(x)
        assert np.allclose(got_p[:, i, j], expected, atol=1e-4)
        assert got[i, j] == int(np.argmax(expected)) + 1
    # The default stride of the card (32) gives a 4 x 4 map of the same mosaic.
    fine = str(tmp_path / "fine.tif")
    cnn.classify_with_cnn(raster, path, fine)
    with rasterio.open(fine) as f:
        assert (f.width, f.height) == (4, 4)
    print(f"held-out accuracy {held_accuracy:.2f}")
    assert held_accuracy >= 0.5, held_accuracy  # four classes: chance is 0.25
    assert os.path.getsize(path) < 200_000
