"""Per-pixel temporal statistics over clear observations (the values of
:func:`~.features.temporal_features`).

Over the clear observations only (NaN elsewhere): mean, standard deviation (population), minimum,
maximum, 10th and 90th percentiles (linear interpolation, as ``numpy.nanpercentile``), amplitude
(max − min), linear trend (ordinary least squares slope per year against the decimal year) and
the day of year (1-366) of the maximum. Sentinel-1 dB variables are averaged in linear power
(the mean is written in dB); the other statistics are taken on the dB values.
"""

from __future__ import annotations

from typing import Dict, Sequence

import numpy as np

from ..sensors import sentinel1 as sar

STATISTICS = ("mean", "std", "min", "max", "p10", "p90", "amplitude", "trend", "doymax", "count")
#: Statistics written by default: those describing the land cover. ``count`` (clear
#: observations) describes the weather of a year, so a model trained on it does not travel.
DEFAULT_STATISTICS = STATISTICS[:-1]
STATISTIC_NAMES = {
    "mean": "mean", "std": "standard deviation", "min": "minimum", "max": "maximum",
    "p10": "10th percentile", "p90": "90th percentile", "amplitude": "amplitude (max - min)",
    "trend": "linear trend per year", "doymax": "day of year of the maximum",
    "count": "number of clear observations",
}


def temporal_statistics(values: np.ndarray, years: np.ndarray, doy: np.ndarray,
                        statistics: Sequence[str], db: bool = False) -> Dict[str, np.ndarray]:
    """Per-pixel statistics of ``values`` (dates, pixels), NaN where not clear.

    Args:
        values: float32 (dates, pixels).
        years: the dates as decimal years, (dates,).
        doy: the dates' day of year, (dates,).
        statistics: names from :data:`STATISTICS`.
        db: the values are dB; the mean is taken in linear power.

    Returns:
        One float32 (pixels,) array per statistic, NaN where undefined.
    """
    out: Dict[str, np.ndarray] = {}
    valid = np.isfinite(values)
    n = valid.sum(axis=0)
    none = n == 0
    with np.errstate(invalid="ignore", divide="ignore"):
        if "count" in statistics:
            out["count"] = n.astype(np.float32)
        if "mean" in statistics or "std" in statistics or "trend" in statistics:
            zeroed = np.where(valid, values, 0).astype(np.float64)
            mean = zeroed.sum(axis=0) / n
        if "mean" in statistics:
            if db:
                linear = np.where(valid, sar.db_to_linear(np.where(valid, values, 0)), 0)
                out["mean"] = sar.linear_to_db((linear.sum(axis=0, dtype=np.float64) / n)
                                               .astype(np.float32))
            else:
                out["mean"] = mean.astype(np.float32)
        if "std" in statistics:
            dev = np.where(valid, values - mean, 0.0)
            out["std"] = np.sqrt((dev * dev).sum(axis=0) / n).astype(np.float32)
        if {"min", "max", "p10", "p90", "amplitude"} & set(statistics):
            ordered = np.sort(values, axis=0)  # NaN last
            cols = np.arange(values.shape[1])
            last = np.maximum(n - 1, 0)
            low, high = ordered[0], ordered[last, cols]
            for name, value in (("min", low), ("max", high), ("amplitude", high - low)):
                if name in statistics:
                    out[name] = value.astype(np.float32)
            for name, q in (("p10", 0.1), ("p90", 0.9)):
                if name in statistics:
                    position = last * q
                    lo = np.floor(position).astype(np.intp)
                    hi = np.minimum(lo + 1, last)
                    frac = (position - lo).astype(np.float64)
                    a = ordered[lo, cols].astype(np.float64)
                    b = ordered[hi, cols].astype(np.float64)
                    out[name] = (a + (b - a) * frac).astype(np.float32)
        if "trend" in statistics:
            t = (years - years.min()).astype(np.float64)[:, None]
            tw = np.where(valid, t, 0.0)
            t_mean = tw.sum(axis=0) / n
            dt_ = np.where(valid, t - t_mean, 0.0)
            dy = np.where(valid, values - mean, 0.0)
            denominator = (dt_ * dt_).sum(axis=0)
            slope = (dt_ * dy).sum(axis=0) / denominator
            slope[(n < 2) | ~(denominator > 0)] = np.nan
            out["trend"] = slope.astype(np.float32)
        if "doymax" in statistics:
            filled = np.where(valid, values, -np.inf)
            index = np.argmax(filled, axis=0)
            out["doymax"] = doy[index].astype(np.float32)
    for name, value in out.items():
        if name != "count":
            value[none] = np.nan
    return out
