"""The network designs ``landfusion:traincnn`` offers, and how bands are arranged for them.

This module needs no PyTorch: it checks that the chosen bands suit a design before any pixel is
read. The networks themselves live in :mod:`networks` (imported only while training).

- ``unet``: a small U-Net (segmentation; three poolings, tiles must be multiples of 8).
- ``resnet``: a ResNet-style patch CNN (patch classification: one label per patch).
- ``fusion``: two branches, one encoder for the Sentinel-1 bands and one for the optical bands,
  fused after encoding (late fusion); a U-Net decoder for segmentation, pooled features for
  patches.
- ``temporal``: for multi-date stacks, one encoder shared by all dates, then attention over the
  dates (a learnt weight per date and pixel, or per date and patch) before the classifier.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from ..choices import Choices
from ..errors import BandError, InputError
from ..sensors.bands import normalise_s2_band

#: What a network is trained to do (the index is the Processing value).
TASKS = Choices((
    ("segmentation", "Semantic segmentation (per-pixel labels)"),
    ("patch_classification", "Patch classification (one label per patch)"),
))
#: Network designs ('' : the default of the task).
ARCHITECTURE_CHOICES = Choices((
    ("", "Automatic (U-Net for segmentation, ResNet for patches)"),
    ("unet", "U-Net"),
    ("resnet", "ResNet-style patch CNN"),
    ("fusion", "Sentinel-1/Sentinel-2 late fusion (two encoders)"),
    ("temporal", "Multi-date (shared encoder, attention over dates)"),
))
#: What validation holds out.
VALIDATIONS = Choices((
    ("inputs", "Hold out whole inputs (or patches)"),
    ("blocks", "Hold out spatial blocks"),
))


@dataclass(frozen=True)
class Architecture:
    """One network design: its id, label, the tasks it serves and its size divisor."""

    key: str
    label: str
    tasks: tuple
    size_divisor: int


ARCHITECTURES = (
    Architecture("unet", "U-Net (segmentation)", ("segmentation",), 8),
    Architecture("resnet", "ResNet-style patch CNN (patch classification)",
                 ("patch_classification",), 1),
    Architecture("fusion", "Sentinel-1/Sentinel-2 late fusion (two encoders)", TASKS, 8),
    Architecture("temporal", "Multi-date: shared encoder per date + temporal attention", TASKS, 8),
)
BY_KEY = {a.key: a for a in ARCHITECTURES}

#: Sentinel-1 band names (a band is radar when a token of its name is one of these).
_S1_TOKENS = {"VV", "VH", "HH", "HV", "RVI", "RATIO", "SIGMA0", "GAMMA0"}
_DATE = re.compile(r"(?<!\d)(\d{4})-?(\d{2})-?(\d{2})(?:[T ]\d{2}:?\d{2}(?::?\d{2})?Z?)?(?!\d)")


def default_architecture(task: str) -> str:
    """Returns the design used when none is chosen: U-Net for segmentation, ResNet for patches."""
    return "unet" if task == "segmentation" else "resnet"


def get_architecture(key: str, task: str) -> Architecture:
    """Returns the design ``key`` after checking that it serves ``task``.

    Raises:
        InputError: for an unknown design or one that does not serve the task.
    """
    key = (key or default_architecture(task)).strip().lower()
    if key not in BY_KEY:
        raise InputError(f"Unknown architecture '{key}'; use one of {', '.join(BY_KEY)}.")
    arch = BY_KEY[key]
    if task not in arch.tasks:
        other = "resnet, fusion or temporal" if task == "patch_classification" else \
            "unet, fusion or temporal"
        raise InputError(f"The {arch.label} does not do {task.replace('_', ' ')}; choose {other}.")
    return arch


def is_radar_band(name: str) -> bool:
    """Tells whether a band name denotes a Sentinel-1 band (VV, VH, S1_VV, VV_2020-01-05, ...)."""
    tokens = re.split(r"[^A-Za-z0-9]+", _DATE.sub(" ", name).upper())
    return any(t in _S1_TOKENS for t in tokens)


def split_sensors(bands: Sequence[str]) -> tuple:
    """Orders bands radar first, then optical, for the fusion network.

    Returns:
        ``(ordered band names, number of radar bands)``.

    Raises:
        BandError: when either sensor has no band.
    """
    radar = [b for b in bands if is_radar_band(b)]
    optical = [b for b in bands if not is_radar_band(b)]
    if not radar or not optical:
        found = "only radar bands" if radar else "no radar band (VV, VH, ...)"
        raise BandError(
            f"The fusion network needs Sentinel-1 bands (named VV, VH, ...) and optical bands "
            f"(B02, B03, ..., indices); the chosen bands ({', '.join(bands)}) hold {found}. Name "
            "the bands (band descriptions or the input band names) or choose the U-Net or ResNet.")
    return radar + optical, len(radar)


def date_of(name: str) -> str:
    """Returns the date (YYYY-MM-DD) written in a band name, or ''."""
    match = _DATE.search(name)
    return f"{match.group(1)}-{match.group(2)}-{match.group(3)}" if match else ""


def variable_of(name: str) -> str:
    """Returns a band name without its date (``VV_2020-01-05``: ``VV``; a bare date: ``VALUE``)."""
    rest = _DATE.sub("", name).strip(" _-.:T").upper()
    return normalise_s2_band(rest) or rest or "VALUE"


def split_dates(bands: Sequence[str]) -> tuple:
    """Arranges the bands of a multi-date stack date by date for the temporal network.

    Band names carry their date (``VV_2020-01-05``, ``2020-01-05_B04``, ``B04_20200105`` or a bare
    timestamp for single-variable stacks); every date must have the same variables.

    Returns:
        ``(ordered band names (date-major), dates, variables)``.

    Raises:
        BandError: when a band has no date, fewer than two dates are found, or dates differ in
            their variables.
    """
    undated = [b for b in bands if not date_of(b)]
    if undated:
        raise BandError(
            f"The temporal network needs a date in every band name (e.g. VV_2020-01-05 or "
            f"B04_20200105); these bands have none: {', '.join(undated[:6])}"
            f"{' ...' if len(undated) > 6 else ''}. Choose another architecture or name the bands.")
    by_date: dict = {}
    for band in bands:
        by_date.setdefault(date_of(band), {})[variable_of(band)] = band
    dates = sorted(by_date)
    if len(dates) < 2:
        raise BandError(f"The temporal network needs at least two dates; the bands hold one "
                        f"({dates[0]}). Choose the U-Net or ResNet for a single date.")
    variables = list(by_date[dates[0]])
    for date in dates[1:]:
        if set(by_date[date]) != set(variables):
            raise BandError(
                f"Every date must have the same bands for the temporal network: {dates[0]} has "
                f"{', '.join(variables)}, {date} has {', '.join(by_date[date])}. Choose the "
                "bands (BANDS) so that every date has the same ones.")
    ordered = [by_date[d][v] for d in dates for v in variables]
    return ordered, dates, variables


def arrange_bands(architecture: str, bands: Sequence[str]) -> tuple:
    """Orders the chosen bands as the network takes them and returns its layout.

    Returns:
        ``(ordered band names, layout dict)``; the layout holds ``radar_bands`` (fusion) or
        ``dates`` and ``variables`` (temporal), else nothing.
    """
    if architecture == "fusion":
        ordered, radar = split_sensors(bands)
        return ordered, {"radar_bands": radar}
    if architecture == "temporal":
        ordered, dates, variables = split_dates(bands)
        return ordered, {"dates": dates, "variables": variables}
    return list(bands), {}
