"""Aircraft types compared across code systems: IATA aircraft codes to ICAO type designators.

Airlines (Lufthansa, Air France-KLM, British Airways) and Amadeus report the IATA aircraft
code (IATA SSIM, Appendix A: ``32N``, ``738``, ``77W``); FlightAware reports the ICAO type
designator (ICAO Doc 8643, Aircraft Type Designators: ``A20N``, ``B738``, ``B77W``). Both
name one type, so ``aircraft_key`` maps either to the ICAO designator and the policy compares
keys, not spellings.

The table is many-to-one only: several IATA codes (a type with and without winglets, its
freighter or combi) may name one ICAO designator, never the reverse. An IATA code that covers
several ICAO designators (a family code such as ``32S``, ``330``, ``787``, ``E75`` for the
E175's two wings, ``AT7`` for every ATR 72 series) is left out: mapping it to one of them
would call it equal to that one and different from the others. Such a code keys as itself,
so it still disagrees with a specific designator, as an honest ambiguity should.
"""

from __future__ import annotations

# Written from IATA SSIM Appendix A (aircraft type codes) and ICAO Doc 8643 (type
# designators) for the airliners the providers report; IATA code -> ICAO designator. A plain
# dict, read-only by contract: the resolver looks a code up for every compared value.
_ICAO_BY_IATA: dict[str, str] = {
    # Airbus
    "AB3": "A30B", "AB6": "A306", "ABY": "A306",
    "310": "A310", "312": "A310", "313": "A310",
    "318": "A318", "319": "A319", "320": "A320", "321": "A321",
    "32A": "A320", "32B": "A321",                       # with sharklets
    "31N": "A19N", "32N": "A20N", "32Q": "A21N",        # neo
    "221": "BCS1", "223": "BCS3",                       # A220-100, A220-300
    "332": "A332", "333": "A333", "338": "A338", "339": "A339",
    "342": "A342", "343": "A343", "345": "A345", "346": "A346",
    "359": "A359", "351": "A35K",
    "380": "A388", "388": "A388",                       # the A380-800 is the only A380
    # Boeing
    "717": "B712",
    "733": "B733", "734": "B734", "735": "B735", "736": "B736",
    "73G": "B737", "73W": "B737",                       # 737-700, with winglets
    "738": "B738", "73H": "B738",                       # 737-800, with winglets
    "739": "B739", "73J": "B739",                       # 737-900, with winglets
    "7M7": "B37M", "7M8": "B38M", "7M9": "B39M",        # 737 MAX 7, 8, 9
    "744": "B744", "74E": "B744", "74Y": "B744",        # 747-400, combi, freighter
    "74H": "B748", "74N": "B748",                       # 747-8I, 747-8F
    "752": "B752", "753": "B753",
    "762": "B762", "763": "B763", "76W": "B763", "764": "B764",
    "772": "B772", "77L": "B77L", "773": "B773", "77W": "B77W",
    "778": "B778", "779": "B779",
    "788": "B788", "789": "B789", "781": "B78X",
    # Embraer
    "ER3": "E135", "ER4": "E145",
    "E70": "E170", "E90": "E190", "E95": "E195", "290": "E290", "295": "E295",
    # Bombardier / De Havilland Canada
    "CR1": "CRJ1", "CR2": "CRJ2", "CR7": "CRJ7", "CR9": "CRJ9", "CRK": "CRJX",
    "DH1": "DH8A", "DH2": "DH8B", "DH3": "DH8C", "DH4": "DH8D",
    # ATR
    "AT4": "AT43", "AT5": "AT45",
    # Others still in airline service
    "100": "F100", "F70": "F70", "SU9": "SU95",
    "AR1": "RJ1H", "AR8": "RJ85",
    "M11": "MD11", "M88": "MD88", "M90": "MD90",
    "SF3": "SF34", "S20": "SB20", "D38": "D328",
}


# The table's designators key as themselves: with them in the same dict, a clean code from
# either system (what providers send) is found by the first lookup.
_KEYS: dict[str, str] = {**{icao: icao for icao in _ICAO_BY_IATA.values()}, **_ICAO_BY_IATA}


def aircraft_key(value: str) -> str:
    """The ICAO designator for an IATA code in the table; anything else (an ICAO designator,
    a family code, an unknown code) as itself, upper-cased and stripped."""
    found = _KEYS.get(value)
    if found is not None:
        return found
    code = value.strip().upper()
    return _KEYS.get(code, code)
