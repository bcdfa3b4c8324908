"""The PyTorch networks of ``landfusion:traincnn`` (see :mod:`architectures`).

Imported only while training: it needs PyTorch, which inference never does. Every network takes
``(batch, bands, height, width)`` float32 and returns class scores (logits): ``(batch, classes,
height, width)`` for segmentation, ``(batch, classes)`` for patch classification. All of them
export to ONNX (opset 17) with dynamic batch (and, for segmentation, spatial) axes.
"""

from __future__ import annotations

import torch
from torch import nn


def _conv_block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class Encoder(nn.Module):
    """U-Net encoder: ``depth`` poolings; returns the features of every scale, finest first."""

    def __init__(self, in_channels: int, width: int, depth: int = 3):
        super().__init__()
        self.widths = [width * 2 ** i for i in range(depth + 1)]
        self.blocks = nn.ModuleList()
        cin = in_channels
        for w in self.widths:
            self.blocks.append(_conv_block(cin, w))
            cin = w
        self.pool = nn.MaxPool2d(2)

    def forward(self, x):
        features = []
        for i, block in enumerate(self.blocks):
            x = block(x if i == 0 else self.pool(x))
            features.append(x)
        return features


class Decoder(nn.Module):
    """U-Net decoder: upsamples the coarsest features, merging the skips of each scale."""

    def __init__(self, widths: list):
        super().__init__()
        self.up = nn.ModuleList()
        self.merge = nn.ModuleList()
        cin = widths[-1]
        for w in reversed(widths[:-1]):
            self.up.append(nn.ConvTranspose2d(cin, w, 2, stride=2))
            self.merge.append(_conv_block(2 * w, w))
            cin = w
        self.out_channels = cin

    def forward(self, features):
        x = features[-1]
        for i, (up, merge) in enumerate(zip(self.up, self.merge)):
            x = merge(torch.cat([up(x), features[-2 - i]], dim=1))
        return x


class UNet(nn.Module):
    """Small U-Net for segmentation."""

    def __init__(self, in_channels: int, classes: int, width: int = 16, depth: int = 3):
        super().__init__()
        self.encoder = Encoder(in_channels, width, depth)
        self.decoder = Decoder(self.encoder.widths)
        self.out_channels = self.decoder.out_channels
        self.head = nn.Conv2d(self.out_channels, classes, 1)

    def features(self, x):
        """Full-resolution features before the classifier."""
        return self.decoder(self.encoder(x))

    def forward(self, x):
        return self.head(self.features(x))


class FusionUNet(nn.Module):
    """Two encoders (radar bands, optical bands), features concatenated at every scale, one
    decoder: late fusion of Sentinel-1 and Sentinel-2."""

    def __init__(self, radar_bands: int, optical_bands: int, classes: int, width: int = 16,
                 depth: int = 3):
        super().__init__()
        self.radar_bands = radar_bands
        half = max(4, width // 2)
        self.radar = Encoder(radar_bands, half, depth)
        self.optical = Encoder(optical_bands, half, depth)
        widths = [2 * w for w in self.radar.widths]
        self.decoder = Decoder(widths)
        self.head = nn.Conv2d(self.decoder.out_channels, classes, 1)

    def forward(self, x):
        radar = self.radar(x[:, :self.radar_bands])
        optical = self.optical(x[:, self.radar_bands:])
        fused = [torch.cat([r, o], dim=1) for r, o in zip(radar, optical)]
        return self.head(self.decoder(fused))


class _Residual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout))
        self.skip = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu(self.body(x) + self.skip(x))


class PatchResNet(nn.Module):
    """ResNet-style patch classifier: a stem, three residual stages (the last two halve the
    resolution), global average pooling and a linear classifier."""

    def __init__(self, in_channels: int, classes: int, width: int = 16, dropout: float = 0.2):
        super().__init__()
        widths = [width, 2 * width, 4 * width]
        self.stem = nn.Sequential(nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False),
                                  nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True))
        self.stages = nn.Sequential(_Residual(widths[0], widths[0], 1),
                                    _Residual(widths[0], widths[1], 2),
                                    _Residual(widths[1], widths[2], 2))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.out_channels = widths[2]
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.out_channels, classes)

    def features(self, x):
        """Pooled features ``(batch, channels)``."""
        return torch.flatten(self.pool(self.stages(self.stem(x))), 1)

    def forward(self, x):
        return self.head(self.dropout(self.features(x)))


class FusionPatchNet(nn.Module):
    """Two ResNet branches (radar, optical), pooled features concatenated, one classifier."""

    def __init__(self, radar_bands: int, optical_bands: int, classes: int, width: int = 16):
        super().__init__()
        self.radar_bands = radar_bands
        half = max(4, width // 2)
        self.radar = PatchResNet(radar_bands, classes, half)
        self.optical = PatchResNet(optical_bands, classes, half)
        self.dropout = nn.Dropout(0.2)
        self.head = nn.Linear(self.radar.out_channels + self.optical.out_channels, classes)

    def forward(self, x):
        fused = torch.cat([self.radar.features(x[:, :self.radar_bands]),
                           self.optical.features(x[:, self.radar_bands:])], dim=1)
        return self.head(self.dropout(fused))


class TemporalNet(nn.Module):
    """One encoder shared by all dates; attention weights over the dates (per pixel for
    segmentation, per patch for patches) pool the per-date features before the classifier.

    Input bands are date-major: ``dates`` groups of ``variables`` bands.
    """

    def __init__(self, dates: int, variables: int, classes: int, task: str, width: int = 16):
        super().__init__()
        self.dates, self.variables = dates, variables
        self.spatial = task == "segmentation"
        if self.spatial:
            self.backbone = UNet(variables, classes, width)
            channels = self.backbone.out_channels
            self.score = nn.Conv2d(channels, 1, 1)
            self.head = nn.Conv2d(channels, classes, 1)
        else:
            self.backbone = PatchResNet(variables, classes, width)
            channels = self.backbone.out_channels
            self.score = nn.Linear(channels, 1)
            self.head = nn.Linear(channels, classes)

    def forward(self, x):
        height, width = x.shape[2], x.shape[3]
        per_date = x.reshape(-1, self.variables, height, width)
        features = self.backbone.features(per_date)
        if self.spatial:
            features = features.reshape(-1, self.dates, features.shape[1], height, width)
            scores = self.score(features.flatten(0, 1)).reshape(-1, self.dates, 1, height, width)
        else:
            features = features.reshape(-1, self.dates, features.shape[1])
            scores = self.score(features.flatten(0, 1)).reshape(-1, self.dates, 1)
        weights = torch.softmax(scores, dim=1)
        return self.head((features * weights).sum(dim=1))


def build_network(architecture: str, task: str, bands: int, classes: int, layout: dict,
                  width: int = 16) -> nn.Module:
    """Returns a freshly initialised network (call after seeding torch)."""
    if architecture == "unet":
        return UNet(bands, classes, width)
    if architecture == "resnet":
        return PatchResNet(bands, classes, width)
    if architecture == "fusion":
        radar = int(layout["radar_bands"])
        if task == "segmentation":
            return FusionUNet(radar, bands - radar, classes, width)
        return FusionPatchNet(radar, bands - radar, classes, width)
    if architecture == "temporal":
        dates, variables = len(layout["dates"]), len(layout["variables"])
        return TemporalNet(dates, variables, classes, task, width)
    raise ValueError(f"unknown architecture {architecture!r}")
