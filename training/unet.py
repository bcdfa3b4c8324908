"""A small U-Net and the training helpers shared by the model-training scripts.

Training needs PyTorch (CPU is enough); it runs in its own virtual environment
(scripts/train_models.sh makes it). Users of the plugin never need PyTorch: the scripts export
ONNX files with LandFusion metadata, which onnxruntime runs.
"""

from __future__ import annotations

import os
import random
import sys

import numpy as np
import torch
from torch import nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.abspath(os.path.join(ROOT, "..", "shared", "data"))


def import_landfusion():
    """Makes the plugin importable as ``landfusion`` (the repository root is the plugin)."""
    sys.path.insert(0, ROOT)
    from plugin_import import make_importable

    make_importable()


def seed_everything(seed: int) -> None:
    """Seeds Python, numpy and torch and asks torch for deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )


class SmallUNet(nn.Module):
    """U-Net with ``depth`` poolings (input sizes must be multiples of 2**depth)."""

    def __init__(self, in_channels: int, classes: int, width: int = 16, depth: int = 3,
                 dropout: float = 0.0):
        super().__init__()
        widths = [width * 2 ** i for i in range(depth + 1)]
        self.down = nn.ModuleList()
        cin = in_channels
        for w in widths:
            self.down.append(_block(cin, w))
            cin = w
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList()
        self.merge = nn.ModuleList()
        for w in reversed(widths[:-1]):
            self.up.append(nn.ConvTranspose2d(cin, w, 2, stride=2))
            self.merge.append(_block(2 * w, w))
            cin = w
        self.dropout = nn.Dropout2d(dropout) if dropout else nn.Identity()
        self.head = nn.Conv2d(cin, classes, 1)

    def forward(self, x):
        skips = []
        for i, block in enumerate(self.down):
            x = block(x)
            if i < len(self.down) - 1:
                skips.append(x)
                x = self.pool(x)
        x = self.dropout(x)
        for up, merge in zip(self.up, self.merge):
            x = up(x)
            x = merge(torch.cat([x, skips.pop()], dim=1))
        return self.head(x)


def random_crops(images, labels, size: int, count: int, rng: np.random.Generator, ignore: int):
    """Draws ``count`` random crops (with flips and 90-degree turns) from lists of chips.

    Crops with fewer than half labelled pixels are redrawn.
    """
    xs, ys = [], []
    while len(xs) < count:
        i = rng.integers(len(images))
        image, label = images[i], labels[i]
        h, w = label.shape
        r, c = rng.integers(0, h - size + 1), rng.integers(0, w - size + 1)
        x = image[:, r:r + size, c:c + size]
        y = label[r:r + size, c:c + size]
        if (y != ignore).mean() < 0.5:
            continue
        k = int(rng.integers(4))
        x, y = np.rot90(x, k, axes=(1, 2)), np.rot90(y, k)
        if rng.random() < 0.5:
            x, y = x[:, :, ::-1], y[:, ::-1]
        xs.append(np.ascontiguousarray(x))
        ys.append(np.ascontiguousarray(y))
    return torch.from_numpy(np.stack(xs)).float(), torch.from_numpy(np.stack(ys)).long()


def export_onnx(model: nn.Module, in_channels: int, path: str) -> None:
    """Exports to ONNX (opset 17) with dynamic batch, height and width."""
    model.eval()
    example = torch.zeros(1, in_channels, 64, 64)
    torch.onnx.export(
        model, example, path, input_names=["input"], output_names=["logits"],
        dynamic_axes={"input": {0: "batch", 2: "height", 3: "width"},
                      "logits": {0: "batch", 2: "height", 3: "width"}},
        opset_version=17, dynamo=False,
    )


def scores(truth: np.ndarray, predicted: np.ndarray, positive: int = 1) -> dict:
    """IoU, F1, precision and recall of one class over valid pixels."""
    t, p = truth == positive, predicted == positive
    tp = float(np.sum(t & p))
    fp = float(np.sum(~t & p))
    fn = float(np.sum(t & ~p))
    iou = tp / (tp + fp + fn) if tp + fp + fn else float("nan")
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")
    precision = tp / (tp + fp) if tp + fp else float("nan")
    recall = tp / (tp + fn) if tp + fn else float("nan")
    return {"iou": iou, "f1": f1, "precision": precision, "recall": recall}
