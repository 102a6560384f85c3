"""Value parsing for the flight-truth data set: its many time formats and its gate spellings.

Dataset-specific, so it lives with the benchmark and never in the product. Every time in the
data is airport-local: time-zone labels (``EST``, ``(-05:00)``) only restate the airport's
zone, so they are ignored and the airport's zone from airportsdata is applied by the loader.
"""

from __future__ import annotations

import re
from datetime import date

_MONTHS = {name: index for index, name in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}

# A clock time with an optional meridiem written any of the ways the sources use
# ("PM", "p", "p.m.", "noon", "midnight"); the first one in the text is the time.
_TIME = re.compile(
    r"(?<![\d:])(?P<h>\d{1,2}):(?P<m>\d{2})(?!\d)\s*"
    r"(?P<mer>noon|midnight|[ap]\.?(?:m\.?)?)?",
    re.IGNORECASE,
)
_ISO_DATE = re.compile(r"(?<!\d)(?P<y>\d{4})-(?P<mo>\d{1,2})-(?P<d>\d{1,2})(?!\d)")
_US_DATE = re.compile(r"(?<![\d/])(?P<mo>\d{1,2})/(?P<d>\d{1,2})/(?P<y>\d{2,4})(?!\d)")
_DASH_DATE = re.compile(r"(?<![\d-])(?P<mo>\d{1,2})-(?P<d>\d{1,2})-(?P<y>\d{2})(?![\d-])")
_DAY_MONTH = re.compile(r"(?<!\d)(?P<d>\d{1,2})-(?P<mon>[A-Za-z]{3})-(?P<y>\d{4})")
_MONTH_DAY = re.compile(
    r"(?P<mon>Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\.?\s*"
    r"(?P<d>\d{1,2})(?![\d:])(?:,\s*(?P<y>\d{4}))?",
    re.IGNORECASE,
)
# Texts that stand for "no value" even though some carry a date.
_PLACEHOLDER = re.compile(
    r"cancel|not available|not provided|contact airline|unknown|possible delay", re.IGNORECASE)


def _year(text: str | None, default: int) -> int:
    if not text:
        return default
    year = int(text)
    return year + 2000 if year < 100 else year


def parse_date(text: str, default_year: int) -> date | None:
    """The calendar date written in ``text``, if any (the year defaults to ``default_year``)."""
    for pattern in (_ISO_DATE, _US_DATE, _DASH_DATE):
        found = pattern.search(text)
        if found:
            try:
                return date(_year(found["y"], default_year), int(found["mo"]), int(found["d"]))
            except ValueError:
                continue
    for pattern in (_DAY_MONTH, _MONTH_DAY):
        found = pattern.search(text)
        if found and found["mon"][:3].lower() in _MONTHS:
            try:
                return date(_year(found["y"], default_year), _MONTHS[found["mon"][:3].lower()],
                            int(found["d"]))
            except ValueError:
                continue
    return None


def parse_clock(text: str) -> int | None:
    """Minutes after local midnight of the time in ``text``; None for a placeholder."""
    if not text or _PLACEHOLDER.search(text):
        return None
    found = _TIME.search(text)
    if found is None:
        return None
    hour, minute = int(found["h"]), int(found["m"])
    meridiem = (found["mer"] or "").lower().replace(".", "")
    if meridiem in ("a", "am", "midnight") and hour == 12:
        hour = 0
    elif meridiem in ("p", "pm") and hour < 12:
        hour += 12
    if hour > 23 or minute > 59:
        return None
    return hour * 60 + minute


def parse_time(text: str, default_year: int) -> tuple[date | None, int] | None:
    """(date or None, minutes after local midnight) for one raw time cell, None for no value."""
    cleaned = text.replace("\xa0", " ").replace("&nbsp", " ").strip()
    minutes = parse_clock(cleaned)
    if minutes is None:
        return None
    return parse_date(cleaned, default_year), minutes


_TERMINAL_PREFIX = re.compile(r"^.*?\bTERM(?:INAL)?\b[^-]*-\s*", re.IGNORECASE)
_TERMINAL_ONLY = re.compile(r"^(?:.*\bTERM(?:INAL)?\b.*)$", re.IGNORECASE)
# "To be announced", "hold", "check with the airline": texts in the gate column that name no
# gate, from sources and in the gold standard alike.
_PLACEHOLDER_GATE = re.compile(
    r"^-+$|not provided|not available|^N/?A$|^(?:TBA|TBD|HOLD|CHK)$", re.IGNORECASE)


def normalize_gate(text: str) -> str | None:
    """Gate as the data README asks: no spaces, upper case, no ``?`` or ``/T4`` suffix, no
    ``Terminal X - `` prefix; a terminal alone, a dash or a placeholder (``TBA``, ``HOLD``)
    is no gate. Hyphens are spelling (``C-44`` is ``C44``). Gold and source gates alike."""
    cleaned = text.replace("\xa0", " ").strip()
    if not cleaned or _PLACEHOLDER_GATE.search(cleaned):
        return None
    without_prefix = _TERMINAL_PREFIX.sub("", cleaned)
    if without_prefix == cleaned and _TERMINAL_ONLY.match(cleaned):
        return None
    gate = without_prefix.split("/", 1)[0]
    gate = re.sub(r"\s+", "", gate).replace("?", "").replace("-", "").upper()
    return gate or None
