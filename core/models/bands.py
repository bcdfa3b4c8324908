"""Does a raster fit a model? Bands by name, role or band map; units; training value ranges.

:func:`check_model_bands` is run by every algorithm that applies a model (pixel classifiers,
CNNs), before any block is processed. It reads only a few small windows of the raster.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import BandError
from ..sensors.bands import input_band_names, match_model_bands, parse_band_map
from ..sensors.units import check_units, sample_bands
from .format import ModelCard

#: Share of sampled values that must fall in the widened training range of every band; below it
#: the raster is refused as clearly incompatible with the model.
MIN_SHARE_IN_RANGE = 0.2


@dataclass
class BandCheck:
    """The raster bands feeding a model and what the checks found."""

    indexes: list
    notes: list = field(default_factory=list)
    warnings: list = field(default_factory=list)


def check_model_bands(card: ModelCard, dataset, band_names=None, band_map=None,
                      check_values: bool = True) -> BandCheck:
    """Finds the model's bands in the raster and checks their values, before any block is read.

    Bands are matched by :func:`~core.sensors.bands.match_model_bands` (band map, name, role,
    or position when the raster's bands are unnamed). Then a few windows are sampled:

    - units: a band whose values contradict the model's band (S2 digital numbers fed as ``VV``
      in dB, dB values fed as ``B04``) is refused;
    - training ranges: when the model stores per-band training statistics and less than
      :data:`MIN_SHARE_IN_RANGE` of a band's values lie within its training range widened by the
      range's width on both sides, the raster is refused (e.g. S1 and S2 bands in reverse order);
      a band whose median lies outside the training range gets a warning.

    Raster bands matched by position (unnamed) always get a loud warning.

    Raises:
        BandError: naming the bands, their values and the fix.
    """
    names = input_band_names(dataset, band_names)
    mapping = parse_band_map(band_map) if band_map else {}
    indexes, notes = match_model_bands(card.bands, names, mapping, card.band_units, card.label)
    result = BandCheck(indexes, notes)
    unnamed = [i for i in indexes if not names[i - 1]]
    if unnamed and any(card.bands) and not mapping:
        result.warnings.append(
            f"The raster's bands are unnamed, so they are taken BY POSITION as "
            f"{', '.join(card.band_description(i) for i in range(card.band_count))}. If the "
            "order differs from the training raster, the map is wrong without any error: name "
            "the bands (band descriptions, or the input band names parameter) or give a band map.")
    if not check_values:
        return result
    samples = sample_bands(dataset, indexes)
    named = [n or f"band {i + 1}" for i, n in enumerate(card.bands)]
    check_units(named, samples, card.band_units, f"{card.label} cannot use this raster")
    problems = []
    for position, stats in enumerate(card.band_stats):
        if not stats or "min" not in stats or "max" not in stats:
            continue
        values = samples[position][np.isfinite(samples[position])]
        if values.size < 10:
            continue
        low, high = stats["min"], stats["max"]
        width = max(high - low, abs(stats.get("std", 0.0)) * 2, 1e-6)
        inside = float(np.mean((values >= low - width) & (values <= high + width)))
        median = float(np.median(values))
        raster_name = names[indexes[position] - 1] or f"band {indexes[position]}"
        shown = (f"{named[position]} (raster {raster_name}): median {median:.4g}, trained on "
                 f"{low:.4g} to {high:.4g}")
        if inside < MIN_SHARE_IN_RANGE:
            problems.append(f"{shown}, only {100 * inside:.0f} % of the values near that range")
        elif not low <= median <= high:
            result.warnings.append(f"{card.label}: the values of {shown}; the results may be "
                                   "unreliable.")
    if problems:
        raise BandError(
            f"{card.label} cannot use this raster: its values are far from those the model was "
            "trained on — " + "; ".join(problems) + ". The bands are probably in another order, "
            "another unit or scaling, or from another sensor. Check the band order and names "
            "(or give a band map).")
    return result
