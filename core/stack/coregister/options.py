"""The options of a stacking run: one dataclass, validated once, shared by the check and the run."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import List, Optional, Sequence

import numpy as np

from ...choices import MASK_TYPES, PRESETS, S2_VALUES, SPECKLE_FILTERS, TEMPORAL_STATISTICS
from ...errors import BandError, InputError
from ...indices.formulas import DEFAULT_INDICES, INDICES
from ...io import raster as raster_io
from ...sensors import sentinel1 as sar
from ...sensors.bands import normalise_s2_band
from ...sensors.sentinel2 import (
    DN_SCALE, S2_BAND_NAMES, SCL_CLOUD_CLASSES, SCL_SATURATED, SCL_SNOW,
)

#: Sentinel-2 bands written by default.
DEFAULT_S2_BANDS = ("B02", "B03", "B04", "B08")


def units_name(text: Optional[str], what: str) -> str:
    """Normalises a units option: 'dB' or 'linear'."""
    value = (text or "dB").strip().lower()
    if value in ("db", "decibel", "decibels"):
        return "dB"
    if value in ("linear", "lin", "power"):
        return "linear"
    raise InputError(f"Sentinel-1 {what} units must be 'dB' or 'linear', not '{text}'.")


@dataclass
class StackOptions:
    """What to stack and how (see :func:`~.run.coregister_stack` for each option).

    :meth:`validated` returns a normalised copy (names, units, preset choices applied) or raises
    :class:`InputError` naming the bad option; the check and the run both use it.
    """

    s2: Sequence[str] = ()
    s2_band_names: Optional[str] = None
    s2_mask: Optional[str] = None
    mask_type: str = "scl"
    mask_snow: bool = False
    mask_saturated: bool = False
    s2_bands: Optional[Sequence[str]] = DEFAULT_S2_BANDS
    indices: Sequence[str] = DEFAULT_INDICES
    s2_offset: Optional[float] = None
    s2_scale: float = DN_SCALE
    s2_values: str = "reflectance"
    savi_l: float = 0.5
    s1: Sequence[str] = ()
    s1_units: str = "dB"
    s1_output_units: str = "dB"
    s1_ratio: bool = True
    s1_rvi: bool = False
    speckle_filter: Optional[str] = None
    speckle_window: int = 5
    enl: float = sar.DEFAULT_ENL
    temporal: Sequence[str] = ()
    preset: Optional[str] = None
    reference: Optional[str] = None
    target_crs: object = None
    target_resolution: Optional[float] = None
    target_extent: object = None
    memory_mb: float = raster_io.DEFAULT_MEMORY_MB
    compress: str = "ZSTD"
    threads: int = 0
    #: Filled by :meth:`validated`: SCL classes masked, and sentences for the log.
    mask_classes: List[int] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    def validated(self) -> "StackOptions":
        """Returns a normalised, checked copy.

        Raises:
            InputError, BandError: naming the option and the values allowed.
        """
        o = dataclasses.replace(self, s2=list(self.s2 or ()), s1=list(self.s1 or ()), notes=[])
        if not o.s2 and not o.s1:
            raise InputError("Give at least one Sentinel-2 or Sentinel-1 input.")
        o.s1_units = units_name(o.s1_units, "input")
        o.s1_output_units = units_name(o.s1_output_units, "output")
        o._validate_speckle()
        o._apply_preset()
        o._validate_features()
        o._validate_sentinel2()
        return o

    def _validate_speckle(self) -> None:
        name = (self.speckle_filter or "").strip().lower() or None
        if name is not None and name not in SPECKLE_FILTERS:
            raise InputError(f"Unknown speckle filter '{self.speckle_filter}'; use 'lee' or none.")
        self.speckle_filter = None if name == "none" else name
        if self.speckle_filter and (self.speckle_window < 3 or self.speckle_window % 2 == 0):
            raise InputError("The speckle filter window must be an odd number of pixels, 3 or "
                             "more.")
        if self.speckle_filter and not self.enl > 0:
            raise InputError("The equivalent number of looks must be positive (4.4 for IW "
                             "GRDH).")

    def _apply_preset(self) -> None:
        self.preset = (self.preset or "").strip().lower() or None
        if self.preset and self.preset not in PRESETS:
            raise InputError(f"Unknown preset '{self.preset}'. Available: "
                             f"{', '.join(p for p in PRESETS if p)}.")
        if self.preset == "rouen":
            self.s2_bands, self.indices = list(DEFAULT_S2_BANDS), list(DEFAULT_INDICES)
            self.s1_output_units, self.s1_ratio, self.s1_rvi, self.temporal = "dB", True, False, []
            self.notes.append("Rouen preset: VV, VH and VV/VH in dB for four dates, NDVI, SAVI, "
                              "BAI, NDWI, B02, B03, B04, B08 (other feature choices are "
                              "ignored).")

    def _validate_features(self) -> None:
        self.indices = [i.strip().upper() for i in self.indices if i and i.strip()]
        unknown = [i for i in self.indices if i not in INDICES]
        if unknown:
            raise InputError(
                f"Unknown index(es): {', '.join(unknown)}. Available: {', '.join(INDICES)}.")
        self.temporal = [t.strip().lower() for t in self.temporal if t and t.strip()]
        bad = [t for t in self.temporal if t not in TEMPORAL_STATISTICS]
        if bad:
            raise InputError(f"Unknown temporal statistic(s) {', '.join(bad)}; use "
                             f"{', '.join(TEMPORAL_STATISTICS)}.")

    def _validate_sentinel2(self) -> None:
        self.mask_type = (self.mask_type or "scl").strip().lower()
        if self.mask_type not in MASK_TYPES:
            raise InputError(f"The mask type must be 'scl' or 'binary', not '{self.mask_type}'.")
        self.mask_classes = sorted(set(SCL_CLOUD_CLASSES)
                                   | ({SCL_SNOW} if self.mask_snow else set())
                                   | ({SCL_SATURATED} if self.mask_saturated else set()))
        if self.s2_values not in S2_VALUES:
            raise InputError("Sentinel-2 values must be 'reflectance' or 'dn'.")
        if not self.s2_scale or not np.isfinite(self.s2_scale):
            raise InputError("The reflectance scale must be a non-zero number (10000 for "
                             "Sentinel-2).")
        self.s2_bands = [normalise_s2_band(b) or b for b in (self.s2_bands or [])]
        not_s2 = [b for b in self.s2_bands if b not in S2_BAND_NAMES]
        if not_s2:
            raise BandError(f"'{not_s2[0]}' is not a Sentinel-2 band name (use B02, B8A, ...).")

    @property
    def band_suffix(self) -> str:
        """Suffix of Sentinel-1 band names in the output units: 'dB' or 'lin'."""
        return "dB" if self.s1_output_units == "dB" else "lin"
