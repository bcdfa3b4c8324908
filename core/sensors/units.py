"""Units sanity: do a band's values look like what its name (or a model) says they are?

One check shared by every algorithm that reads named bands. Sentinel-1 backscatter in dB is
mostly negative (about -30 to +5 dB); linear power is non-negative and mostly below 1; a
Sentinel-2 band holds reflectance (0 to about 1.5) or scaled digital numbers (reflectance x
10000, 0 to about 20000), never mostly negative values. A reflectance band that looks like dB, or
a ``VV`` band that holds digital numbers, gives plausible-looking garbage downstream (a water
model fed Sentinel-2 DNs as VV/VH returns "100 % land"), so it is caught before any work.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

from ..errors import BandError
from .bands import band_role


#: How Sentinel-1 backscatter in a stated unit is called, and how values contradicting it look.
_S1_HOLDS = {"dB": "Sentinel-1 backscatter in dB", "linear": "linear Sentinel-1 backscatter"}
_S1_CONTRADICTIONS = {
    "dB": {"linear": "linear power", "DN": "digital numbers or reflectance"},
    "linear": {"dB": "dB", "DN": "digital numbers"},
}


def looks_like(sample: np.ndarray) -> Optional[str]:
    """Tells what values look like: 'dB', 'linear', 'reflectance', 'DN' or None (unclear).

    'linear' and 'reflectance' share a range (non-negative, mostly below 2); the caller decides
    between them from the band's role.
    """
    values = np.asarray(sample, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None
    negative = float(np.mean(values < 0))
    median = float(np.median(values))
    if negative > 0.05 and median < 1.0:
        return "dB"
    if negative <= 0.01 and median < 2.0:
        return "linear"
    if negative <= 0.01 and median >= 20.0:
        return "DN"
    return None


def units_problem(name: str, sample: np.ndarray, unit: str = "") -> Optional[str]:
    """Returns why ``sample`` cannot hold band ``name`` in ``unit`` (None when it can).

    Args:
        name: the band name (its role decides what is expected: S1 polarisation or S2 band).
        sample: some of the band's values (NaN where invalid).
        unit: the expected unit ('dB', 'linear', 'reflectance', 'DN'); '' takes the unit from
            the name (``VV_dB``, ``VV_lin``); when neither says, Sentinel-1 backscatter may be dB
            or linear but not digital numbers, and Sentinel-2 anything but dB.
    """
    role = band_role(name)
    values = np.asarray(sample, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size < 10:
        return None
    seen = looks_like(values)
    median = float(np.median(values))
    described = f"median {median:.4g}, {100 * float(np.mean(values < 0)):.0f} % negative"
    if role.is_s1:
        expected = unit or role.unit
        if not expected and seen == "DN":
            return (f"band {name} should hold Sentinel-1 backscatter, but its values look like "
                    f"digital numbers or scaled reflectance ({described})")
        kind = _S1_CONTRADICTIONS.get(expected, {}).get(seen)
        if kind:
            return (f"band {name} should hold {_S1_HOLDS[expected]}, but its values look like "
                    f"{kind} ({described})")
        if expected == "dB" and seen is None and float(np.mean(values < 0)) < 0.01 and median > 2:
            return (f"band {name} should hold Sentinel-1 backscatter in dB, but its values are "
                    f"not (no negative values, {described})")
    elif role.is_s2:
        if seen == "dB" or float(np.mean(values < 0)) > 0.25:
            return (f"band {name} should hold Sentinel-2 reflectance, but its values look like "
                    f"radar backscatter in dB ({described})")
        if unit == "reflectance" and seen == "DN":
            return (f"band {name} should hold reflectance (0 to about 1), but its values look "
                    f"like digital numbers, reflectance x 10000 ({described})")
        if unit == "DN" and seen == "linear" and median < 1.0:
            return (f"band {name} should hold digital numbers (reflectance x 10000), but its "
                    f"values look like reflectance 0-1 ({described})")
    return None


def infer_unit(name: str, sample: np.ndarray) -> str:
    """The unit a band's name and values say it holds ('' when they do not tell).

    Used at training to record units in the model card: Sentinel-1 bands are 'dB' or 'linear',
    Sentinel-2 bands 'reflectance' (0 to about 1) or 'DN' (reflectance x 10000); a unit in the
    name (``VV_dB``) wins.
    """
    role = band_role(name)
    seen = looks_like(sample)
    if role.is_s1:
        return role.unit or (seen if seen in ("dB", "linear") else "")
    if role.is_s2:
        return {"DN": "DN", "linear": "reflectance"}.get(seen, "")
    return role.unit


def sample_bands(dataset, indexes: Sequence[int], size: int = 128) -> np.ndarray:
    """Reads a few small windows spread over the raster: ``(len(indexes), n)`` float64 values
    with NaN where the band is nodata (cheap, even on huge scenes)."""
    from rasterio.windows import Window

    w, h = min(size, dataset.width), min(size, dataset.height)
    spots = ((0.5, 0.5), (0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75))
    seen, parts = set(), []
    for fx, fy in spots:
        col = int(min(max(0, fx * dataset.width - w / 2), dataset.width - w))
        row = int(min(max(0, fy * dataset.height - h / 2), dataset.height - h))
        if (col, row) in seen:
            continue
        seen.add((col, row))
        parts.append(dataset.read(list(indexes), window=Window(col, row, w, h),
                                  out_dtype="float64").reshape(len(indexes), -1))
    data = np.concatenate(parts, axis=1)
    for b, index in enumerate(indexes):
        nodata = dataset.nodatavals[index - 1]
        if nodata is not None and not (isinstance(nodata, float) and math.isnan(nodata)):
            data[b][data[b] == nodata] = np.nan
    return data


#: Co-polarised and cross-polarised channel of each Sentinel-1 polarisation pair.
_POLARISATION_PAIRS = (("VV", "VH"), ("HH", "HV"))


def polarisation_problems(names: Sequence[str], samples: np.ndarray,
                          units: Sequence[str] = ()) -> list:
    """Why co- and cross-polarised bands of the same date look swapped (empty when they don't).

    Cross-polarised backscatter (VH, HV) is weaker than co-polarised (VV, HH) over land and
    water alike, typically by 5 to 15 dB on a scene. A ``VH`` band brighter than the ``VV`` band
    of the same date therefore means the two were swapped (both are in the same plausible range,
    so the units check alone cannot tell). Compared in the bands' common unit; bands in
    different units are left alone.
    """
    units = list(units) or [""] * len(names)
    roles = [band_role(name) for name in names]
    where = {(r.sensor, r.time, r.quantity): k for k, r in enumerate(roles)}
    problems = []
    for k, role in enumerate(roles):
        for co, cross in _POLARISATION_PAIRS:
            j = where.get((role.sensor, role.time, cross)) if role.quantity == co else None
            if j is None or (units[k] or role.unit) != (units[j] or roles[j].unit):
                continue
            co_values, cross_values = (np.asarray(samples[i], dtype=np.float64) for i in (k, j))
            co_values, cross_values = (v[np.isfinite(v)] for v in (co_values, cross_values))
            if min(co_values.size, cross_values.size) < 10:
                continue
            co_median, cross_median = float(np.median(co_values)), float(np.median(cross_values))
            if cross_median > co_median:
                problems.append(
                    f"band {names[j]} is brighter than band {names[k]} (median {cross_median:.4g}"
                    f" against {co_median:.4g}), but {cross}-polarised backscatter is weaker than"
                    f" {co}: the two bands look swapped")
    return problems


def check_units(names: Sequence[str], samples: np.ndarray, units: Sequence[str] = (),
                what: str = "The input") -> None:
    """Raises :class:`BandError` listing every band whose values contradict its name or unit.

    Args:
        names: the band names (model names or raster names) that decide the role.
        samples: ``(len(names), n)`` values, see :func:`sample_bands`.
        units: expected units per band ('' where the name decides).
    """
    units = list(units) or [""] * len(names)
    problems = [p for p in (units_problem(n, s, u) for n, s, u in zip(names, samples, units)) if p]
    problems += polarisation_problems(names, samples, units)
    if problems:
        raise BandError(
            f"{what}: the values do not match the band names: " + "; ".join(problems) + ". "
            "Check that the bands are the right ones, in the right order and units (Sentinel-1 "
            "in dB: 10*log10(linear); Sentinel-2 as reflectance or DN), or name/map the bands "
            "correctly.")
