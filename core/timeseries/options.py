"""The options of the time-series engines: one dataclass per engine, validated once and shared by
the check (:func:`~.composite.check_composite`, :func:`~.features.check_features`) and the run."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import List, Optional, Sequence

from ..errors import InputError
from ..io import raster as raster_io
from ..stack import masks as mask_rules
from .dates import parse_date_list
from .periods import PERIOD_KINDS
from .reduce import METHODS
from .statistics import DEFAULT_STATISTICS, STATISTICS


@dataclass
class SeriesOptions:
    """What both engines take: dated inputs, their masks and dates, the grid and the budget.

    Args:
        inputs: the input rasters.
        masks: optional cloud masks (see each engine for how they pair with the inputs).
        mask_type: 'scl', 'cloudmask' or 'binary'.
        dates: ISO dates (list or comma-separated text); None reads them from the inputs.
        reference: optional raster whose grid the output takes.
        output_path: the output raster (None in a check run without outputs).
        memory_mb: budget for the pixel arrays alive at once.
        threads: threads for the per-pixel work (0: every core).
    """

    inputs: Sequence[str] = ()
    masks: Sequence[str] = ()
    mask_type: str = "scl"
    dates: object = None
    reference: Optional[str] = None
    output_path: Optional[str] = None
    memory_mb: float = raster_io.DEFAULT_MEMORY_MB
    threads: int = 0

    def _normalised(self, no_input: str):
        """A copy with the input and mask lists as non-empty path strings."""
        o = dataclasses.replace(self, inputs=[str(p) for p in self.inputs or [] if p],
                                masks=[str(p) for p in self.masks or [] if p])
        if not o.inputs:
            raise InputError(no_input)
        if o.mask_type not in mask_rules.MASK_TYPES:
            raise InputError(f"Unknown mask type '{o.mask_type}'; use one of "
                             f"{', '.join(mask_rules.MASK_TYPES)}.")
        return o

    @property
    def given_dates(self) -> list:
        """The dates given by the user, parsed (empty when none were given)."""
        return parse_date_list(self.dates) if isinstance(self.dates, str) else list(self.dates or [])

    @property
    def sources(self) -> List[str]:
        """Every file read: inputs, masks and the reference grid."""
        return list(self.inputs) + list(self.masks) + ([self.reference] if self.reference else [])


@dataclass
class CompositeOptions(SeriesOptions):
    """A compositing run (see :func:`~.composite.temporal_composite` for each option)."""

    period: str = "month"
    custom_periods: str = ""
    method: str = "median"
    output_folder: Optional[str] = None

    def validated(self) -> "CompositeOptions":
        """Returns a normalised, checked copy.

        Raises:
            InputError: naming the option and the values allowed.
        """
        o = self._normalised("No input raster given; give one raster per acquisition date.")
        if o.method not in METHODS:
            raise InputError(f"Unknown method '{o.method}'; use one of {', '.join(METHODS)}.")
        if o.period not in PERIOD_KINDS:
            raise InputError(f"Unknown period '{o.period}'; use one of "
                             f"{', '.join(PERIOD_KINDS)}.")
        return o


@dataclass
class FeatureOptions(SeriesOptions):
    """A features run (see :func:`~.features.temporal_features` for each option)."""

    mask_type: str = "binary"
    statistics: Optional[Sequence[str]] = None

    def validated(self) -> "FeatureOptions":
        """Returns a normalised, checked copy (the default statistics filled in).

        Raises:
            InputError: naming the option and the values allowed.
        """
        o = self._normalised("No input raster given; give a multi-date stack or several dated "
                             "rasters.")
        o.statistics = list(o.statistics or DEFAULT_STATISTICS)
        unknown = [s for s in o.statistics if s not in STATISTICS]
        if unknown:
            raise InputError(f"Unknown statistic(s) {', '.join(unknown)}; use "
                             f"{', '.join(STATISTICS)}.")
        return o
