"""Sentinel-1 backscatter: units, polarisation identity, speckle filtering and features.

Backscatter is a power quantity. Everything that averages it (resampling, speckle filtering,
temporal means) works in linear power; decibels are only a presentation:
``dB = 10 log10(linear)``. Non-positive linear values have no dB value and become invalid.
"""

from __future__ import annotations

import os
import re
import warnings
from typing import Optional, Sequence

import numpy as np

#: Polarisations LandFusion understands, co-polarised first.
POLARISATIONS = ("VV", "VH", "HH", "HV")

#: Equivalent number of looks of Sentinel-1 IW GRD high-resolution products (ESA product
#: definition), the default noise level of the Lee filter.
DEFAULT_ENL = 4.4

_POL_TOKEN = re.compile(r"(?<![A-Za-z0-9])(VV|VH|HH|HV)(?![A-Za-z0-9])", re.IGNORECASE)
_DATE_TOKEN = re.compile(r"(?<!\d)((?:19|20)\d{2})(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])(?!\d)")
_ISO_DATE = re.compile(r"((?:19|20)\d{2})-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])")


def db_to_linear(values: np.ndarray) -> np.ndarray:
    """Converts decibels to linear power (float32); NaN stays NaN."""
    return np.power(np.float32(10.0), values.astype(np.float32, copy=False) / np.float32(10.0))


def linear_to_db(values: np.ndarray) -> np.ndarray:
    """Converts linear power to decibels (float32); non-positive values become NaN."""
    values = values.astype(np.float32, copy=False)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.float32(10.0) * np.log10(values)
    out[~(values > 0)] = np.nan
    return out


def polarisation_from_text(text: str) -> Optional[str]:
    """Returns the polarisation named in a band description or file name (last token wins)."""
    if not text:
        return None
    stem = re.sub(r"\.(tif{1,2}|vrt|img|jp2)$", "", os.path.basename(text.strip()), flags=re.I)
    matches = _POL_TOKEN.findall(stem.replace("-", "_"))
    return matches[-1].upper() if matches else None


def date_from_text(*texts: str) -> Optional[str]:
    """Returns the first acquisition date (``YYYYMMDD``) found in file names or metadata."""
    for text in texts:
        if not text:
            continue
        match = _DATE_TOKEN.search(text) or _ISO_DATE.search(text)
        if match:
            return "".join(match.groups())
    return None


def guess_units(sample: np.ndarray) -> Optional[str]:
    """Tells whether backscatter values look like 'dB' or 'linear' (None when unclear).

    Linear sigma0/gamma0 is non-negative and mostly below 1; dB values are mostly negative
    (about -30 to +5 dB).
    """
    values = sample[np.isfinite(sample)]
    if values.size == 0:
        return None
    negative = float(np.mean(values < 0))
    if negative > 0.05:
        return "dB"
    if float(np.median(values)) < 2.0:
        return "linear"
    return None


def window_moments(values: np.ndarray, size: int, mode: str = "nearest") -> tuple:
    """Mean, variance and valid-pixel fraction over ``size`` x ``size`` windows, NaN left out.

    float64 arrays; where a window holds no valid pixel the mean and variance are NaN.
    ``mode`` is scipy.ndimage's border mode ("nearest" repeats the edge, "constant" pads with
    invalid pixels).
    """
    from scipy.ndimage import uniform_filter

    valid = np.isfinite(values)
    x = np.where(valid, values, 0.0).astype(np.float64)
    weight = uniform_filter(valid.astype(np.float64), size, mode=mode)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = uniform_filter(x, size, mode=mode) / weight
        mean_sq = uniform_filter(x * x, size, mode=mode) / weight
        variance = np.maximum(mean_sq - mean * mean, 0.0)
    return mean, variance, weight


def lee_filter(linear: np.ndarray, size: int = 5, enl: float = DEFAULT_ENL) -> np.ndarray:
    """Applies the Lee (1980) speckle filter to linear backscatter.

    ``out = mean + k (x - mean)`` with ``k = max(0, 1 - Cu^2 / Ci^2)``, where ``Cu = 1/sqrt(ENL)``
    is the speckle's coefficient of variation and ``Ci`` the local one over a ``size`` x ``size``
    window. Invalid (NaN) pixels are left out of the window statistics and stay NaN.

    Args:
        linear: 2-D linear backscatter, NaN where invalid.
        size: odd window size in pixels.
        enl: equivalent number of looks of the input.
    """
    valid = np.isfinite(linear)
    x = np.where(valid, linear, 0.0).astype(np.float64)
    mean, variance, _ = window_moments(linear, size, mode="nearest")
    with np.errstate(divide="ignore", invalid="ignore"):
        ci2 = variance / (mean * mean)
        cu2 = 1.0 / float(enl)
        k = np.clip(1.0 - cu2 / ci2, 0.0, 1.0)
    k = np.where(np.isfinite(k), k, 0.0)
    out = mean + k * (x - mean)
    out[~valid] = np.nan
    return out.astype(np.float32)


def ratio(vv: np.ndarray, vh: np.ndarray, units: str) -> np.ndarray:
    """VV/VH ratio: a difference of dB values, or a quotient of linear values."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if units == "dB":
            return (vv - vh).astype(np.float32)
        return (vv / vh).astype(np.float32)


def rvi(vv_linear: np.ndarray, vh_linear: np.ndarray) -> np.ndarray:
    """Dual-polarisation radar vegetation index ``4 VH / (VV + VH)`` on linear values."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return (4.0 * vh_linear / (vv_linear + vh_linear)).astype(np.float32)


def temporal_statistic(stack: Sequence[np.ndarray], statistic: str, units: str) -> np.ndarray:
    """Per-pixel statistic of one polarisation across dates, ignoring invalid dates.

    ``stack`` holds linear values. The mean is taken in linear power (then converted to dB when
    ``units`` is 'dB'); std, min and max are taken in the output units.
    """
    data = np.stack(stack).astype(np.float32)
    if units == "dB" and statistic != "mean":
        data = linear_to_db(data)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels: NaN is the answer
        if statistic == "mean":
            result = np.nanmean(data, axis=0)
            return linear_to_db(result) if units == "dB" else result.astype(np.float32)
        if statistic == "std":
            return np.nanstd(data, axis=0).astype(np.float32)
        if statistic == "min":
            return np.nanmin(data, axis=0).astype(np.float32)
        if statistic == "max":
            return np.nanmax(data, axis=0).astype(np.float32)
    raise ValueError(f"unknown temporal statistic {statistic}")
