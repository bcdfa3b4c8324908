"""Per-pixel change features of a BEFORE/AFTER pair, computed block by block with a halo.

Feature groups (a model stores the groups and scales it was trained with, so detection computes
exactly the same features):

- ``dates``: every band of both dates;
- ``diff``: AFTER - BEFORE per band;
- ``logratio``: ln((AFTER + eps) / (BEFORE + eps)) for bands where a ratio is physical
  (Sentinel-2 reflectance bands and Sentinel-1 backscatter in linear units; not indices, which
  may be negative, nor dB values, whose difference already is a log-ratio);
- ``context``: mean and standard deviation of each band's difference over square windows of the
  given sizes (spatial context: a changed building block differs from its whole neighbourhood);
- ``context_dates``: mean of each band of both dates over the largest window;
- ``diff_z``: the difference standardised by the mean and standard deviation of that band's
  difference over the whole pair, and its mean over each window. Two dates differ everywhere by
  sun angle, season and atmosphere; standardising per pair removes that shift, so a model trained
  on some places transfers to others. The statistics come from a pass over the pair
  (:func:`difference_statistics`) before the features are computed.

Neighbourhood statistics ignore NaN pixels and treat pixels beyond the raster as missing, so a
block read with a halo of half the largest window gives exactly the values of the whole image.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Sequence

import numpy as np

from ..errors import InputError
from ..sensors.bands import is_s2_band_name
from ..sensors.sentinel1 import window_moments

GROUPS = ("dates", "diff", "logratio", "context", "context_dates", "diff_z")
DEFAULT_GROUPS = ("dates", "diff", "logratio", "context", "diff_z")
DEFAULT_SCALES = (5, 15)
_EPS = 1e-4


def ratio_band(name: str) -> bool:
    """Tells whether a ratio of two dates of band ``name`` is physical."""
    text = name.upper()
    if is_s2_band_name(name):
        return True
    return any(p in text for p in ("VV", "VH", "HH", "HV")) and "DB" not in text and \
        "RATIO" not in text and "RVI" not in text


@dataclass
class FeatureSpec:
    """Which features a change model uses: the bands of each date, groups and window sizes."""

    bands: List[str]
    groups: List[str] = field(default_factory=lambda: list(DEFAULT_GROUPS))
    scales: List[int] = field(default_factory=lambda: list(DEFAULT_SCALES))

    def __post_init__(self):
        unknown = [g for g in self.groups if g not in GROUPS]
        if unknown:
            raise InputError(f"Unknown change feature group(s) {', '.join(unknown)}; choose from "
                             f"{', '.join(GROUPS)}.")
        if any(int(s) < 3 or int(s) % 2 == 0 for s in self.scales):
            raise InputError("Neighbourhood window sizes must be odd numbers of at least 3.")
        self.scales = sorted(int(s) for s in self.scales)

    @property
    def ratio_bands(self) -> List[int]:
        """Indexes of the bands that get a log-ratio."""
        return [i for i, b in enumerate(self.bands) if ratio_band(b)]

    @property
    def halo(self) -> int:
        """Extra pixels to read around a block so the windows see their whole neighbourhood."""
        if not ({"context", "context_dates", "diff_z"} & set(self.groups)) or not self.scales:
            return 0
        return max(self.scales) // 2

    def names(self) -> List[str]:
        """Feature names in the order of :func:`compute_features`' output."""
        names = []
        if "dates" in self.groups:
            names += [f"T1_{b}" for b in self.bands] + [f"T2_{b}" for b in self.bands]
        if "diff" in self.groups:
            names += [f"diff_{b}" for b in self.bands]
        if "logratio" in self.groups:
            names += [f"logratio_{self.bands[i]}" for i in self.ratio_bands]
        if "context" in self.groups:
            for s in self.scales:
                names += [f"diff_{b}_mean{s}" for b in self.bands]
                names += [f"diff_{b}_std{s}" for b in self.bands]
        if "context_dates" in self.groups and self.scales:
            s = self.scales[-1]
            names += [f"T1_{b}_mean{s}" for b in self.bands]
            names += [f"T2_{b}_mean{s}" for b in self.bands]
        if "diff_z" in self.groups:
            names += [f"diffz_{b}" for b in self.bands]
            for s in self.scales:
                names += [f"diffz_{b}_mean{s}" for b in self.bands]
        return names

    @property
    def needs_statistics(self) -> bool:
        """Whether the features need the pair's difference statistics."""
        return "diff_z" in self.groups

    def to_dict(self) -> dict:
        """Returns a JSON-friendly description."""
        return {"bands": list(self.bands), "groups": list(self.groups),
                "scales": list(self.scales), "names": self.names()}

    @classmethod
    def from_dict(cls, item: dict) -> "FeatureSpec":
        """Builds a spec from :meth:`to_dict` output."""
        return cls(list(item["bands"]), list(item["groups"]), list(item.get("scales", [])))


def local_mean_std(values: np.ndarray, size: int) -> tuple:
    """Mean and standard deviation over ``size`` x ``size`` windows, ignoring NaN pixels."""
    mean, variance, count = window_moments(values, size, mode="constant")
    std = np.sqrt(variance)
    none = count < 1e-9
    mean[none] = np.nan
    std[none] = np.nan
    return mean.astype(np.float32), std.astype(np.float32)


def difference_statistics(pair, memory_mb: float = 64, is_cancelled=None) -> np.ndarray:
    """Mean and standard deviation of AFTER - BEFORE per band over a pair's valid pixels.

    Returns:
        float64 ``(2, bands)``: means, standard deviations (1 where a band does not vary).
    """
    from ..io.raster import plan_blocks
    from ..runtime import check_cancelled

    n = len(pair.bands)
    total = np.zeros(n)
    square = np.zeros(n)
    count = 0
    for block in plan_blocks(pair.width, pair.height, 16 * n, memory_mb):
        if is_cancelled is not None:
            check_cancelled(is_cancelled)
        before, after = pair.read(block)
        diff = (after - before).reshape(n, -1).astype(np.float64)
        valid = np.all(np.isfinite(diff), axis=0)
        diff = diff[:, valid]
        total += diff.sum(axis=1)
        square += (diff * diff).sum(axis=1)
        count += diff.shape[1]
    if count == 0:
        raise InputError("The pair has no pixel valid on both dates.")
    mean = total / count
    std = np.sqrt(np.maximum(square / count - mean * mean, 0.0))
    std[std < 1e-12] = 1.0
    return np.stack([mean, std])


def compute_features(spec: FeatureSpec, before: np.ndarray, after: np.ndarray, halo: int,
                     statistics: np.ndarray = None) -> tuple:
    """Computes the features of a block read with ``halo`` extra pixels on each side.

    Args:
        spec: the features to compute.
        before, after: float32 ``(bands, rows + 2 halo, cols + 2 halo)`` with NaN for nodata.
        halo: the halo the arrays were read with (at least ``spec.halo``).
        statistics: the pair's :func:`difference_statistics` (for ``diff_z``).

    Returns:
        ``(features, valid)``: float32 ``(n_features, rows, cols)`` for the inner block and a
        boolean ``(rows, cols)`` that is True where every band of both dates is valid.
    """
    inner = (slice(None), slice(halo, before.shape[1] - halo), slice(halo, before.shape[2] - halo))
    b, a = before[inner], after[inner]
    valid = np.all(np.isfinite(b), axis=0) & np.all(np.isfinite(a), axis=0)
    parts = []
    if "dates" in spec.groups:
        parts += [b, a]
    diff = after - before
    if "diff" in spec.groups:
        parts.append(diff[inner])
    if "logratio" in spec.groups and spec.ratio_bands:
        idx = spec.ratio_bands
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.log((np.maximum(a[idx], 0) + _EPS) / (np.maximum(b[idx], 0) + _EPS))
        parts.append(ratio.astype(np.float32))
    if "context" in spec.groups:
        for s in spec.scales:
            stats = [local_mean_std(diff[i], s) for i in range(diff.shape[0])]
            parts.append(np.stack([m for m, _ in stats])[inner])
            parts.append(np.stack([d for _, d in stats])[inner])
    if "context_dates" in spec.groups and spec.scales:
        s = spec.scales[-1]
        for dated in (before, after):
            parts.append(np.stack([local_mean_std(dated[i], s)[0]
                                   for i in range(dated.shape[0])])[inner])
    if "diff_z" in spec.groups:
        if statistics is None:
            raise InputError("The diff_z features need the pair's difference statistics.")
        z = (diff - statistics[0][:, None, None].astype(np.float32)) / \
            statistics[1][:, None, None].astype(np.float32)
        parts.append(z[inner])
        for s in spec.scales:
            parts.append(np.stack([local_mean_std(z[i], s)[0] for i in range(z.shape[0])])[inner])
    features = np.concatenate(parts, axis=0).astype(np.float32, copy=False)
    valid &= np.all(np.isfinite(features), axis=0)
    return features, valid


def bytes_per_pixel(spec: FeatureSpec) -> int:
    """Memory one pixel of a block costs while its features are computed (for block planning)."""
    n = len(spec.bands)
    return 4 * (4 * n + len(spec.names())) + 8 * 6 * (1 if spec.halo else 0) + 16


def check_bands(bands: Sequence[str]) -> None:
    """Raises when no band is left to build features from."""
    if not bands:
        raise InputError("No band is common to both dates; nothing to compare.")
