"""Periods of a composite: calendar months, meteorological seasons, years, the whole range, or
ranges the user gives.

Labels are what prefixes the band names of a composite: ``2019-09`` (month), ``2019-JJA``
(season; December belongs to the next year's ``DJF``, as in meteorology), ``2019`` (year),
``ALL`` (the whole range), ``2019-01-01_2019-03-31`` (custom).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import List, Sequence

from ..errors import InputError

PERIOD_KINDS = ("month", "season", "year", "whole", "custom")
SEASONS = {12: "DJF", 1: "DJF", 2: "DJF", 3: "MAM", 4: "MAM", 5: "MAM", 6: "JJA", 7: "JJA",
           8: "JJA", 9: "SON", 10: "SON", 11: "SON"}
_SEASON_START = {"DJF": 12, "MAM": 3, "JJA": 6, "SON": 9}

#: A period label at the start of a band name (after an optional sensor prefix ``S1_``/``S2_``),
#: then ``_`` and the band's own name: ``2019-09_NDVI``, ``S1_T2_VV_dB``, ``S1_20210721_VV_dB``.
PERIOD_PREFIX = re.compile(
    r"^(?:S[12]_)?(?P<label>\d{4}-\d{2}-\d{2}_\d{4}-\d{2}-\d{2}|\d{4}-\d{2}-\d{2}"
    r"|\d{4}-(?:DJF|MAM|JJA|SON)|\d{4}-\d{2}|\d{8}|\d{4}|ALL|T\d+)_(?P<name>.+)$")


@dataclass(frozen=True)
class Period:
    """A period: its label and its first and last day (inclusive)."""

    label: str
    start: dt.date
    end: dt.date

    def contains(self, date: dt.date) -> bool:
        """Tells whether ``date`` falls in the period."""
        return self.start <= date <= self.end

    @property
    def middle(self) -> dt.date:
        """The period's middle day (the time coordinate of its composite)."""
        return self.start + (self.end - self.start) / 2

    def to_dict(self) -> dict:
        """Returns a JSON-friendly dict."""
        return {"label": self.label, "start": self.start.isoformat(), "end": self.end.isoformat()}


def _month_end(year: int, month: int) -> dt.date:
    nxt = dt.date(year + (month == 12), month % 12 + 1, 1)
    return nxt - dt.timedelta(days=1)


def _month(date: dt.date) -> Period:
    return Period(f"{date.year:04d}-{date.month:02d}", dt.date(date.year, date.month, 1),
                  _month_end(date.year, date.month))


def _season(date: dt.date) -> Period:
    name = SEASONS[date.month]
    year = date.year + 1 if date.month == 12 else date.year
    first_month = _SEASON_START[name]
    start_year = year - 1 if name == "DJF" else year
    start = dt.date(start_year, first_month, 1)
    last_month = (first_month + 1) % 12 + 1
    end = _month_end(year, last_month)
    return Period(f"{year:04d}-{name}", start, end)


def _year(date: dt.date) -> Period:
    return Period(f"{date.year:04d}", dt.date(date.year, 1, 1), dt.date(date.year, 12, 31))


def parse_custom_periods(text: str) -> List[Period]:
    """Parses ``2019-01-01/2019-03-31;2019-04-01/2019-06-30`` into periods.

    Raises:
        InputError: naming a range that cannot be read, is reversed or is given twice.
    """
    periods = []
    for item in (part.strip() for part in str(text or "").replace(",", ";").split(";")):
        if not item:
            continue
        bits = [b.strip() for b in item.split("/")]
        try:
            if len(bits) != 2:
                raise ValueError
            start, end = dt.date.fromisoformat(bits[0]), dt.date.fromisoformat(bits[1])
        except ValueError:
            raise InputError(f"Custom period '{item}' cannot be read; write start/end as "
                             "YYYY-MM-DD/YYYY-MM-DD, periods separated by ';'.") from None
        if end < start:
            raise InputError(f"Custom period '{item}' ends before it starts.")
        periods.append(Period(f"{start.isoformat()}_{end.isoformat()}", start, end))
    if not periods:
        raise InputError("The period is 'custom' but no custom periods are given; write them as "
                         "2019-01-01/2019-03-31;2019-04-01/2019-06-30.")
    labels = [p.label for p in periods]
    twice = sorted({label for label in labels if labels.count(label) > 1})
    if twice:
        raise InputError(f"Custom period(s) given twice: {', '.join(twice)}.")
    return sorted(periods, key=lambda p: (p.start, p.end))


def plan_periods(dates: Sequence[dt.date], kind: str, custom: str = "") -> List[Period]:
    """Returns the periods of a composite, in time order.

    Calendar periods run from the first date's period to the last date's, so a month without
    acquisition inside the range is still a period (written as nodata, with a warning); this
    keeps band positions the same from one year to the next.

    Args:
        dates: acquisition dates of the inputs.
        kind: one of :data:`PERIOD_KINDS`.
        custom: the custom ranges, when ``kind`` is 'custom'.
    """
    if kind not in PERIOD_KINDS:
        raise InputError(f"Unknown period '{kind}'; use one of {', '.join(PERIOD_KINDS)}.")
    if kind == "custom":
        return parse_custom_periods(custom)
    if not dates:
        raise InputError("No dated input to composite.")
    first, last = min(dates), max(dates)
    if kind == "whole":
        return [Period("ALL", first, last)]
    step = {"month": _month, "season": _season, "year": _year}[kind]
    periods = [step(first)]
    while periods[-1].end < last:
        periods.append(step(periods[-1].end + dt.timedelta(days=1)))
    return periods


def split_period_prefix(name: str):
    """Splits ``2019-09_VV_dB`` into ('2019-09', 'VV_dB'); returns (None, name) without prefix."""
    match = PERIOD_PREFIX.match(name or "")
    if not match:
        return None, name
    return match.group("label"), match.group("name")


def period_from_label(label: str) -> Period:
    """Rebuilds the period a label names (the inverse of the labels made here)."""
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}_\d{4}-\d{2}-\d{2}", label):
        start, end = (dt.date.fromisoformat(x) for x in label.split("_"))
        return Period(label, start, end)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}|\d{8}", label):
        digits = label.replace("-", "")
        day = dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
        return Period(label, day, day)
    if re.fullmatch(r"\d{4}-(DJF|MAM|JJA|SON)", label):
        year, name = int(label[:4]), label[5:]
        month = _SEASON_START[name]
        return _season(dt.date(year, month if name != "DJF" else 1, 1))
    if re.fullmatch(r"\d{4}-\d{2}", label):
        return _month(dt.date(int(label[:4]), int(label[5:7]), 1))
    if re.fullmatch(r"\d{4}", label):
        return _year(dt.date(int(label), 1, 1))
    raise InputError(f"'{label}' does not name a period with dates.")
