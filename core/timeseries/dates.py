"""Acquisition dates: parsing, and finding the date of a raster.

A date is looked for, in this order, in the dates the user gives, in the file name (and its
folder names: ``..._20190917T...``, ``2019-09-17``) and in the GDAL metadata (``ACQUISITION_DATE``,
``DATE``, ``TIFFTAG_DATETIME``, ``SENSING_TIME``...). The caller is told which source gave it.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from typing import List, Optional, Sequence, Tuple

from ..errors import InputError

_COMPACT = re.compile(r"(?<!\d)((?:19|20)\d{2})(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])(?!\d)")
_ISO = re.compile(r"(?<!\d)((?:19|20)\d{2})-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])(?!\d)")
_COLON = re.compile(r"(?<!\d)((?:19|20)\d{2}):(0[1-9]|1[0-2]):(0[1-9]|[12]\d|3[01])(?!\d)")

#: Metadata keys that may hold an acquisition date, most specific first.
DATE_KEYS = ("ACQUISITION_DATE", "DATE_ACQUIRED", "SENSING_TIME", "SENSING_DATE",
             "DATATAKE_SENSING_START", "PRODUCT_START_TIME", "START_TIME", "DATE", "TIMESTAMP",
             "TIFFTAG_DATETIME")


def parse_date(text: str) -> Optional[dt.date]:
    """Returns the first date written as ``YYYY-MM-DD``, ``YYYYMMDD`` or ``YYYY:MM:DD`` in ``text``.

    ISO forms win over compact ones, so ``2019-09-17T10:00:08`` gives 2019-09-17.
    """
    if not text:
        return None
    for pattern in (_ISO, _COMPACT, _COLON):
        for match in pattern.finditer(str(text)):
            try:
                return dt.date(*(int(g) for g in match.groups()))
            except ValueError:  # 2019-02-30
                continue
    return None


def parse_date_list(text: str) -> List[dt.date]:
    """Parses the comma-separated ISO dates a user gives (``2019-01-05, 2019-01-17``).

    Raises:
        InputError: naming any entry that is not a date.
    """
    dates = []
    for item in (part.strip() for part in str(text or "").replace(";", ",").split(",")):
        if not item:
            continue
        try:
            dates.append(dt.date.fromisoformat(item[:10]))
        except ValueError:
            raise InputError(f"'{item}' is not a date; write dates as YYYY-MM-DD, separated by "
                             "commas.") from None
    return dates


def date_from_name(path: str) -> Optional[dt.date]:
    """Returns the date in a file name, else in the names of its folders (nearest first)."""
    parts = os.path.abspath(path).split(os.sep)
    for part in reversed(parts[-4:]):
        date = parse_date(part)
        if date is not None:
            return date
    return None


def date_from_metadata(dataset) -> Optional[dt.date]:
    """Returns the date in a dataset's GDAL metadata (dataset tags, then band 1's), or None."""
    for tags in (dataset.tags(), dataset.tags(1) if dataset.count else {}):
        upper = {str(k).upper(): v for k, v in (tags or {}).items()}
        for key in DATE_KEYS:
            if key in upper:
                date = parse_date(upper[key])
                if date is not None:
                    return date
    return None


def raster_dates(paths: Sequence[str], datasets: Sequence, given: Optional[Sequence[dt.date]] = None
                 ) -> Tuple[List[dt.date], List[str]]:
    """Finds one acquisition date per raster.

    Args:
        paths: the rasters' paths.
        datasets: the open rasterio datasets, in the same order.
        given: user-given dates, one per raster in the same order, or None/empty.

    Returns:
        (dates, sources), a source ('given', 'file name' or 'metadata') per raster.

    Raises:
        InputError: when the number of given dates does not match, or a date cannot be found.
    """
    if given:
        if len(given) != len(paths):
            raise InputError(f"{len(given)} date(s) were given for {len(paths)} raster(s); give "
                             "exactly one date per input raster, in the same order, or leave "
                             "the dates empty to read them from the file names.")
        return list(given), ["given"] * len(paths)
    dates, sources, missing = [], [], []
    for path, dataset in zip(paths, datasets):
        date = date_from_name(path)
        source = "file name"
        if date is None:
            date, source = date_from_metadata(dataset), "metadata"
        if date is None:
            missing.append(os.path.basename(path))
        dates.append(date)
        sources.append(source)
    if missing:
        raise InputError(
            f"No acquisition date found for {', '.join(missing[:5])}"
            f"{' and others' if len(missing) > 5 else ''}: neither the file name "
            "(e.g. S2_20190917.tif or 2019-09-17) nor the GDAL metadata (ACQUISITION_DATE, "
            "TIFFTAG_DATETIME...) holds one. Give the dates (DATES, YYYY-MM-DD, one per input "
            "in order) or rename the files.")
    return dates, sources


def decimal_year(date: dt.date) -> float:
    """Returns the date as a decimal year (2019-07-02 is about 2019.5)."""
    start = dt.date(date.year, 1, 1)
    length = (dt.date(date.year + 1, 1, 1) - start).days
    return date.year + (date - start).days / length
