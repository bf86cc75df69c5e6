"""ISBT 128 Donation Identification Numbers (DINs).

A DIN is the facility identification number (5 characters, assigned by ICCBBA), the year (2 digits)
and a sequence number (6 digits), 13 characters in all, followed on labels and in keyboard entry by a
check character computed with ISO/IEC 7064 MOD 37-2 over those 13 characters. Every component made
from one donation carries the donation's DIN; the product code tells them apart.
"""

from __future__ import annotations

import re
import string

_ALPHABET = string.digits + string.ascii_uppercase + "*"  # values 0..36 of ISO 7064 MOD 37-2
_FACILITY = re.compile(r"[A-NP-Z1-9][A-Z0-9]{4}")  # the first character is never 0 or O
_DIN = re.compile(r"([A-NP-Z1-9][A-Z0-9]{4})(\d{2})(\d{6})([0-9A-Z*])?")
MAX_SEQUENCE = 999_999


class InvalidDin(ValueError):
    pass


def check_character(value: str) -> str:
    """The ISO/IEC 7064 MOD 37-2 check character of a 13-character DIN (``G151797123456`` -> ``L``)."""
    p = 0
    for ch in value:
        index = _ALPHABET.find(ch)
        if index < 0 or ch == "*":
            raise InvalidDin(f"{ch!r} cannot appear in a DIN")
        p = ((p + index) * 2) % 37
    return _ALPHABET[(38 - p) % 37]


def is_facility_code(value: str) -> bool:
    return bool(_FACILITY.fullmatch(value))


def make_din(facility_code: str, year: int, sequence: int) -> str:
    """The 14-character DIN with its check character, e.g. ``G151797123456L``."""
    if not is_facility_code(facility_code):
        raise InvalidDin("a facility identification number is 5 characters: A-N, P-Z or 1-9, then A-Z or 0-9")
    if not 1 <= sequence <= MAX_SEQUENCE:
        raise InvalidDin(f"the sequence number must be between 1 and {MAX_SEQUENCE}")
    body = f"{facility_code}{year % 100:02d}{sequence:06d}"
    return body + check_character(body)


def parse_din(value: str) -> str:
    """A DIN as typed or scanned, normalised to 14 characters; raises InvalidDin if it is not valid.

    Accepts the 13-character form (the check character is added) and rejects a wrong check character,
    which catches every single-character typo and every transposition of two characters.
    """
    normalized = value.strip().upper()
    match = _DIN.fullmatch(normalized)
    if not match:
        raise InvalidDin("a DIN is 5 facility characters, 2 year digits and 6 sequence digits")
    body = normalized[:13]
    expected = check_character(body)
    if match.group(4) is not None and match.group(4) != expected:
        raise InvalidDin("the check character does not match: the DIN was mistyped or misread")
    return body + expected
