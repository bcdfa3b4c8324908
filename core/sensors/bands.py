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
    explicit: Optional[str], descriptions: Sequence[Optional[str]], source: str = "the raster",
    others_allowed: bool = False,
) -> list:
    """Decides the Sentinel-2 name of each band of a raster.

    Args:
        explicit: user-given comma-separated list (takes precedence when not empty).
        descriptions: the raster's band descriptions, one per band (may be empty strings).
        source: how to call the raster in messages.
        others_allowed: bands whose descriptions name something else (``S1_VV_dB``, ``NDVI``)
            get '' instead of an error, as long as some band is a Sentinel-2 one.

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
    if others_allowed and any(names):
        # A LandFusion stack: S2_B04 beside S1_VV_dB, NDVI ...; the other bands are not S2 ones.
        names = [n or "" for n in names]
    elif any(n is None for n in names):
        missing = [str(i + 1) for i, n in enumerate(names) if n is None]
        raise BandError(
            f"The Sentinel-2 name of band(s) {', '.join(missing)} of {source} is unknown: the band "
            "descriptions do not name them. Give the band names in order, for example "
            "'B02,B03,B04,B08' or 'B01,B02,B03,B04,B05,B06,B07,B08,B8A,B09,B11,B12'."
        )
    duplicates = sorted({n for n in names if n and names.count(n) > 1})
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


# --- band roles: matching a model's bands to a stack's, whatever the stack's naming ----------------
#
# Band names follow the naming rule of docs/coregistration.md; the matching by role is documented
# for users in resources/models/README.md ("How a model finds its bands"). As parsed here:
#
#     [SENSOR_][TIME_]QUANTITY[_UNIT][_STATISTIC]
#
# SENSOR is ``S1`` or ``S2``; TIME a rank in a multi-date stack (``T1``, ``T2`` ...), a date
# (``20190917``, ``2019-09-17``) or a period (``2019-09``); QUANTITY a polarisation (``VV``), a
# Sentinel-2 band (``B04``, also ``B4``), an index (``NDVI``) or a feature name; UNIT ``dB`` or
# ``lin``. The *role* of a band is its quantity with its time and statistic, without sensor and
# unit: ``VV``, ``S1_VV_dB`` and ``VV_dB`` all have the role ``VV``; ``S1_T1_VV_dB`` has ``T1:VV``.

_UNIT_TOKENS = {"DB": "dB", "LIN": "linear", "LINEAR": "linear"}
_SENSOR_TOKENS = ("S1", "S2")
_TIME_TOKEN = re.compile(r"^(T\d{1,3}|(?:19|20)\d{2}(?:-?(?:0[1-9]|1[0-2]))(?:-?(?:0[1-9]|[12]\d|3[01]))?)$",
                         re.IGNORECASE)
_POLARISATIONS = ("VV", "VH", "HH", "HV")


class BandRole:
    """What a band name says: sensor, time, quantity and unit (see the naming rule above)."""

    __slots__ = ("name", "sensor", "time", "quantity", "unit")

    def __init__(self, name: str, sensor: str, time: str, quantity: str, unit: str):
        self.name, self.sensor, self.time, self.quantity, self.unit = (
            name, sensor, time, quantity, unit)

    @property
    def key(self) -> str:
        """The role: ``QUANTITY`` or ``TIME:QUANTITY``."""
        return f"{self.time}:{self.quantity}" if self.time else self.quantity

    @property
    def is_s1(self) -> bool:
        """True for Sentinel-1 backscatter (a polarisation)."""
        return self.quantity in _POLARISATIONS

    @property
    def is_s2(self) -> bool:
        """True for a Sentinel-2 reflectance band."""
        return self.quantity in S2_BAND_NAMES

    def __repr__(self):
        return (f"BandRole({self.name!r}: sensor={self.sensor!r}, time={self.time!r}, "
                f"quantity={self.quantity!r}, unit={self.unit!r})")


def band_role(name: str) -> BandRole:
    """Parses a band name into its :class:`BandRole` (see the naming rule above)."""
    text = (name or "").strip()
    tokens = [t for t in re.split(r"[_\s]+", text) if t]
    sensor = time = unit = ""
    if tokens and tokens[0].upper() in _SENSOR_TOKENS and len(tokens) > 1:
        sensor = tokens.pop(0).upper()
    if len(tokens) > 1 and _TIME_TOKEN.match(tokens[0]):
        time = tokens.pop(0).upper().replace("-", "")
    rest = []
    for token in tokens:
        if token.upper() in _UNIT_TOKENS and not unit and rest:
            unit = _UNIT_TOKENS[token.upper()]
            continue
        if is_s2_band_name(token):
            token = normalise_s2_band(token)
        rest.append(token.upper())
    quantity = "_".join(rest)
    if not sensor:
        if quantity.split("_")[0] in _POLARISATIONS:
            sensor = "S1"
        elif quantity in S2_BAND_NAMES:
            sensor = "S2"
    return BandRole(text, sensor, time, quantity, unit)


def parse_band_map(text) -> dict:
    """Parses ``BAND_MAP`` text ``model_band=raster_band, ...`` into an ordered dict.

    ``raster_band`` is a band name or a 1-based band number.

    Raises:
        BandError: an entry is not of the form ``a=b`` or a model band is mapped twice.
    """
    if isinstance(text, dict):
        return dict(text)
    result = {}
    for item in (p.strip() for p in re.split(r"[,;\n]", text or "")):
        if not item:
            continue
        model_band, sep, raster_band = item.partition("=")
        if not sep or not model_band.strip() or not raster_band.strip():
            raise BandError(f"Band map entry '{item}' is not of the form model_band=raster_band "
                            "(e.g. VV=S1_20210721_VV_dB, VH=2).")
        key = model_band.strip()
        if key.upper() in (k.upper() for k in result):
            raise BandError(f"The band map gives model band '{key}' twice.")
        result[key] = raster_band.strip()
    return result


def _same(a: str, b: str) -> bool:
    return _comparable(a) == _comparable(b)


def match_model_bands(required: Sequence[str], available: Sequence[str],
                      band_map: Optional[dict] = None, units: Optional[Sequence[str]] = None,
                      what: str = "The model") -> tuple:
    """Finds the raster bands feeding a model, in the model's order: the one matching function.

    For each model band, in this order: the band map (``{model band: raster name or number}``),
    then the same name (case-insensitive, Sentinel-2 forms normalised), then the same role
    (:func:`band_role`: ``VV`` reads ``S1_VV_dB``, ``VV_dB`` or ``S1_T1_VV_dB`` when that is the
    only VV band). Roles with a different known unit (``VV_lin`` for a model in dB) never match;
    several candidates are an error asking for a band map. When the raster's bands are all
    unnamed, bands are taken by position (same count needed).

    Args:
        required: the model's band names in order.
        available: the raster's band names ('' where unnamed).
        band_map: explicit choices (see :func:`parse_band_map`).
        units: the model's band units ('' where unknown), one per required band.
        what: how to call the model in messages.

    Returns:
        ``(indexes, notes)``: 1-based raster band indexes, and one line per band matched by the
        map or by role (for the log).

    Raises:
        BandError: naming the missing or ambiguous bands, both band lists and the fix.
    """
    available = [a or "" for a in available]
    required = [r or "" for r in required]
    units = list(units or [""] * len(required))
    band_map = dict(band_map or {})
    shown = ", ".join(a or f"(band {i + 1} unnamed)" for i, a in enumerate(available))
    _check_band_map_names(band_map, required, what)
    if not any(available) and not band_map:
        if len(available) != len(required):
            raise BandError(
                f"{what} needs {len(required)} bands ({', '.join(required)}) but the raster has "
                f"{len(available)} unnamed band(s). Use a raster with exactly these bands in "
                "this order, name its bands (band descriptions), or give a band map.")
        return list(range(1, len(required) + 1)), []
    roles = [band_role(a) for a in available]
    indexes, notes, missing, ambiguous = [], [], [], []
    for position, name in enumerate(required):
        mapped = next((v for k, v in band_map.items() if _same(k, name)), None)
        if mapped is not None:
            index = _mapped_band(name, mapped, available, shown)
            indexes.append(index)
            notes.append(f"{name} read from band {index} ({available[index - 1] or 'unnamed'}) "
                         "as the band map says.")
            continue
        exact = [i for i, a in enumerate(available, 1) if a and name and _same(a, name)]
        if exact:
            indexes.append(exact[0])
            continue
        want = band_role(name)
        candidates = _role_candidates(want, units[position] if position < len(units) else "",
                                      roles)
        if len(candidates) == 1:
            indexes.append(candidates[0])
            notes.append(f"{name} read from band {candidates[0]} "
                         f"({available[candidates[0] - 1]}), same role ({want.key}).")
        elif candidates:
            ambiguous.append((name, candidates))
        else:
            missing.append(name)
    _raise_unmatched(required, available, shown, indexes, missing, ambiguous, what)
    return indexes, notes


def _check_band_map_names(band_map: dict, required: list, what: str) -> None:
    """Refuses a band map naming bands the model does not use."""
    unknown = [k for k in band_map if not any(_same(k, r) for r in required if r)]
    if unknown:
        raise BandError(f"The band map names {', '.join(unknown)}, which {what} does not use "
                        f"(its bands: {', '.join(required)}).")


def _mapped_band(name: str, mapped: str, available: list, shown: str) -> int:
    """The 1-based raster band the band map sends model band ``name`` to (number or name)."""
    if mapped.isdigit():
        index = int(mapped)
        if not 1 <= index <= len(available):
            raise BandError(f"The band map sends {name} to band {index}, but the raster "
                            f"has {len(available)} band(s).")
        return index
    hits = [i for i, a in enumerate(available, 1) if a and _same(a, mapped)]
    if not hits:
        raise BandError(f"The band map sends {name} to '{mapped}', which the raster "
                        f"does not have (it has {shown}).")
    return hits[0]


def _role_candidates(want: BandRole, unit: str, roles: list) -> list:
    """The 1-based raster bands whose role is ``want``'s: same quantity, sensor and time when
    stated, no contradicting unit; an untimed band wins among timed ones when ``want`` has no
    time."""
    unit = unit or want.unit
    candidates = []
    for i, role in enumerate(roles, 1):
        if not role.quantity or role.quantity != want.quantity:
            continue
        if want.sensor and role.sensor and want.sensor != role.sensor:
            continue
        if want.time and role.time != want.time:
            continue
        if unit in ("dB", "linear") and role.unit in ("dB", "linear") and unit != role.unit:
            continue
        candidates.append(i)
    if len(candidates) > 1 and not want.time:
        untimed = [i for i in candidates if not roles[i - 1].time]
        candidates = untimed if len(untimed) == 1 else candidates
    return candidates


def _raise_unmatched(required: list, available: list, shown: str, indexes: list, missing: list,
                     ambiguous: list, what: str) -> None:
    """Raises :class:`BandError` for ambiguous, missing or doubly used bands, in that order."""
    if ambiguous:
        parts = "; ".join(f"{n}: " + ", ".join(available[i - 1] for i in c) for n, c in ambiguous)
        example = ",".join(f"{n}={available[c[0] - 1]}" for n, c in ambiguous)
        raise BandError(f"{what} needs bands that the raster has several candidates for ({parts}). "
                        f"Say which with a band map, e.g. BAND_MAP={example}.")
    if missing:
        raise BandError(
            f"{what} needs bands {', '.join(required)} but the raster has {shown}; missing: "
            f"{', '.join(missing)}. Build the input with the same bands (for example with the "
            "co-registration stack used for training), or map the bands with a band map "
            "(model_band=raster_band, ...).")
    duplicates = sorted({i for i in indexes if indexes.count(i) > 1})
    if duplicates:
        raise BandError(f"Several model bands would read the same raster band "
                        f"({', '.join(available[i - 1] or str(i) for i in duplicates)}); check the "
                        "band map.")
