"""Aircraft model names in words (AeroDataBox's ``aircraft.model``: "Boeing 737-800",
"Airbus A320neo") read as ICAO type designators (ICAO Doc 8643), the code the policy compares
the airlines' IATA codes and FlightAware's designators by (``policy._aircraft``).

Only names that name one type are read; a family name ("Airbus A330", "Embraer 175") or an
unknown model stays as written, so it still disagrees with a specific designator.
"""

from __future__ import annotations

import re

_AIRBUS = re.compile(r"\bA\s?(3[0-8]\d|220)(?:\s*-\s*(\d{1,4}))?\s*(NEO)?\b")
_BOEING = re.compile(r"\b(7[0-8]7)(?:\s*-?\s*(\d{1,2})(?:00)?(ER|LR|F)?)?(?:\s*MAX\s*(\d+))?\b")
_EMBRAER = re.compile(r"\bE(?:MBRAER)?\s*-?\s*(170|190|195)(?:\s*-?\s*(E2))?\b")
_A_FIXED = {"318": "A318", "380": "A388"}
_A_FAMILY = {"319": "A19N", "320": "A20N", "321": "A21N"}
_A_SERIES = {("220", "100"): "BCS1", ("220", "300"): "BCS3", ("350", "900"): "A359",
             ("350", "1000"): "A35K"}
_B_SERIES = {("777", "3", "ER"): "B77W", ("777", "2", "LR"): "B77L",
             ("787", "10", ""): "B78X"}


def aircraft_designator(model: str) -> str:
    """The ICAO type designator of an AeroDataBox model name, or the name as given."""
    upper = model.upper()
    for pattern, read in ((_AIRBUS, _airbus), (_BOEING, _boeing), (_EMBRAER, _embraer)):
        found = pattern.search(upper)
        if found is not None:
            return read(found) or model.strip()
    return model.strip()


def _airbus(found: re.Match[str]) -> str | None:
    family, series, neo = found[1], found[2] or "", found[3]
    if family in _A_FAMILY:
        return _A_FAMILY[family] if neo else f"A{family}"
    if family in ("330", "340") and series[:1].isdigit():
        return f"A3{family[1]}{series[0]}"
    return _A_FIXED.get(family) or _A_SERIES.get((family, series))


def _boeing(found: re.Match[str]) -> str | None:
    family, series, variant, max_ = found[1], found[2] or "", found[3] or "", found[4]
    if family == "737" and max_:
        return f"B3{max_}M"
    special = _B_SERIES.get((family, series, variant))
    # ER and the like name no separate designator elsewhere (767-300ER is B763).
    return special or (f"B7{family[1]}{series}" if len(series) == 1 else None)


def _embraer(found: re.Match[str]) -> str | None:
    return f"E2{found[1][1:]}" if found[2] else f"E{found[1]}"


__all__ = ["aircraft_designator"]
