"""Band identity by name: the convention for the whole plugin.

Sentinel-2 bands are called by their ESA names in the canonical two-digit form (``B02``, ``B8A``);
the forms ``B2``, ``b02``, ``S2_B04`` or a file name ending in ``_B05.tif`` are all accepted and
normalised. Users give band names either as a comma-separated list (``INPUT_BANDS``) or through
the raster's band descriptions.
"""

from __future__ import annotations

import os
import re
from typing import Optional, Sequence

from ..errors import BandError
from .sentinel2 import S2_BAND_COMMON_NAMES, S2_BAND_NAMES

_BAND_ITEM = re.compile(r"(?:S2_)?[Bb]0?(8[Aa]|1[0-2]|[1-9])")
_S2_TOKEN = re.compile(r"(?<![A-Za-z0-9])[Bb]0?(8[Aa]|1[0-2]|[1-9])(?![A-Za-z0-9])")


def normalise_s2_band(name: str) -> Optional[str]:
    """Returns the canonical Sentinel-2 band name found in ``name``, or None.

    The last band-like token wins, so ``S2A_MSIL2A_..._B05.tif`` gives ``B05`` and ``S2_B8A``
    gives ``B8A``.
    """
    base = os.path.basename(name.strip())
    stem = re.sub(r"\.(tif{1,2}|jp2|vrt|img)$", "", base, flags=re.IGNORECASE)
    matches = _S2_TOKEN.findall(stem)
    if not matches:
        return None
    token = matches[-1].upper()
    return "B8A" if token == "8A" else f"B{int(token):02d}"


def is_s2_band_name(text: str) -> bool:
    """Tells whether ``text`` is exactly a Sentinel-2 band name (``B2``, ``B02``, ``S2_B8A``)."""
    return bool(_BAND_ITEM.fullmatch(text.strip()))


def parse_band_list(text: str) -> list:
    """Parses a comma-separated band list such as ``"B2, B03,B8A"`` into canonical names.

    Raises:
        BandError: when an entry is not a Sentinel-2 band name, or a band is listed twice.
    """
    names = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        if not is_s2_band_name(item):
            raise BandError(
                f"'{item}' is not a Sentinel-2 band name. Use names such as B02, B8A or B4 "
                f"(known bands: {', '.join(S2_BAND_NAMES)})."
            )
        canonical = normalise_s2_band(item)
        names.append(canonical)
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise BandError(f"Band(s) listed more than once: {', '.join(duplicates)}.")
    return names


def resolve_s2_band_names(
    explicit: Optional[str], descriptions: Sequence[Optional[str]], source: str = "the raster"
) -> list:
    """Decides the Sentinel-2 name of each band of a raster.

    Args:
        explicit: user-given comma-separated list (takes precedence when not empty).
        descriptions: the raster's band descriptions, one per band (may be empty strings).
        source: how to call the raster in messages.

    Returns:
        One canonical band name per band, in band order.

    Raises:
        BandError: when the list does not match the band count or names cannot be found.
    """
    count = len(descriptions)
    if explicit and explicit.strip():
        names = parse_band_list(explicit)
        if len(names) != count:
            raise BandError(
                f"{len(names)} band names were given ({', '.join(names)}) but {source} has "
                f"{count} band(s). Give exactly one name per band, in band order."
            )
        return names
    names = [normalise_s2_band(d) if d else None for d in descriptions]
    if any(n is None for n in names):
        missing = [str(i + 1) for i, n in enumerate(names) if n is None]
        raise BandError(
            f"The Sentinel-2 name of band(s) {', '.join(missing)} of {source} is unknown: the band "
            "descriptions do not name them. Give the band names in order, for example "
            "'B02,B03,B04,B08' or 'B01,B02,B03,B04,B05,B06,B07,B08,B8A,B09,B11,B12'."
        )
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise BandError(
            f"The band descriptions of {source} name {', '.join(duplicates)} more than once; "
            "give the band names explicitly."
        )
    return names


def require_bands(available: Sequence[str], needed: Sequence[str], what: str) -> None:
    """Raises :class:`BandError` naming the bands ``what`` needs that are not available."""
    missing = [b for b in needed if b not in available]
    if missing:
        described = ", ".join(f"{b} ({S2_BAND_COMMON_NAMES.get(b, '?')})" for b in missing)
        raise BandError(
            f"{what} needs band(s) {described}, which the input does not have "
            f"(it has {', '.join(available) or 'no named bands'})."
        )


def _comparable(name: str) -> str:
    canonical = normalise_s2_band(name) if is_s2_band_name(name) else None
    return canonical or name.strip().upper()


def match_bands(available: Sequence[str], required: Sequence[str], what: str = "The model") -> list:
    """Finds the bands a model (or any consumer) needs in a raster, by name, in the needed order.

    Band names are compared case-insensitively, with Sentinel-2 forms normalised (``B4`` =
    ``B04`` = ``S2_B04``). When the raster's bands are unnamed, the band count must match and
    bands are taken in order.

    Args:
        available: the raster's band names (descriptions), '' where unnamed.
        required: the names the consumer needs, in its order.
        what: how to call the consumer in messages.

    Returns:
        1-based band indexes into the raster, one per required band.

    Raises:
        BandError: listing both band lists when names or counts do not match.
    """
    available = [a or "" for a in available]
    if not required:
        return list(range(1, len(available) + 1))
    shown_available = ", ".join(a or f"(band {i + 1} unnamed)" for i, a in enumerate(available))
    if not any(available):
        if len(available) != len(required):
            raise BandError(
                f"{what} needs {len(required)} bands ({', '.join(required)}) but the raster has "
                f"{len(available)} unnamed band(s). Use a raster with exactly these bands in "
                "this order, or name its bands (band descriptions)."
            )
        return list(range(1, len(required) + 1))
    lookup = {}
    for i, name in enumerate(available, start=1):
        if name:
            lookup.setdefault(_comparable(name), i)
    missing = [r for r in required if _comparable(r) not in lookup]
    if missing:
        raise BandError(
            f"{what} needs bands {', '.join(required)} but the raster has {shown_available}; "
            f"missing: {', '.join(missing)}. Build the input with the same bands (for example "
            "with the co-registration stack used for training)."
        )
    return [lookup[_comparable(r)] for r in required]


def input_band_names(dataset, band_names=None) -> list:
    """Returns the names of a raster's bands: ``band_names`` when given (a comma-separated string
    or a list, one per band), else the band descriptions ('' where unset).

    Raises:
        BandError: when the number of names given differs from the number of bands.
    """
    descriptions = [d or "" for d in dataset.descriptions]
    if band_names is None or (isinstance(band_names, str) and not band_names.strip()):
        return descriptions
    names = band_names if not isinstance(band_names, str) else [
        n.strip() for n in band_names.split(",") if n.strip()]
    if len(names) != dataset.count:
        raise BandError(f"{len(names)} band names were given ({', '.join(names)}) but the raster "
                        f"has {dataset.count} band(s). Give one name per band, in band order.")
    return list(names)
