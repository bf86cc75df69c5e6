"""ISBT 128 DINs: the ISO 7064 MOD 37-2 check character and the DIN layout."""

from __future__ import annotations

import itertools
import string

import pytest

from bloodbank.domain.isbt import InvalidDin, check_character, make_din, parse_din


def test_the_issues_example_has_check_character_l() -> None:
    assert check_character("G151797123456") == "L"
    assert _valid("G151797123456L")


def _valid(din: str) -> bool:
    """ISO/IEC 7064's validation of a pure MOD 37-2 string: the weighted sum with the check is 1 mod 37."""
    values = [(string.digits + string.ascii_uppercase + "*").index(ch) for ch in din]
    total = sum(v * pow(2, len(values) - 1 - i, 37) for i, v in enumerate(values))
    return total % 37 == 1


@pytest.mark.parametrize("sequence", [1, 7, 123456, 999999])
@pytest.mark.parametrize("facility", ["G1517", "W1234", "A9Z9Z", "12345"])
def test_every_din_made_passes_the_standards_validation(facility: str, sequence: int) -> None:
    din = make_din(facility, 2026, sequence)
    assert len(din) == 14
    assert _valid(din)
    assert not _valid(din[:13] + ("0" if din[13] != "0" else "1"))


def test_make_din_pads_year_and_sequence() -> None:
    din = make_din("G1517", 2097, 123456)
    assert din == "G151797123456L"
    assert make_din("W1234", 2026, 1)[:13] == "W12342600000" + "1"


@pytest.mark.parametrize(
    ("facility", "sequence"),
    [("O1234", 1), ("01234", 1), ("G151", 1), ("g1517", 1), ("G1517", 0), ("G1517", 1_000_000)],
)
def test_make_din_refuses_bad_parts(facility: str, sequence: int) -> None:
    with pytest.raises(InvalidDin):
        make_din(facility, 2026, sequence)


def test_parse_accepts_13_or_14_characters_and_rejects_a_wrong_check() -> None:
    assert parse_din("g151797123456") == "G151797123456L"
    assert parse_din(" G151797123456L ") == "G151797123456L"
    with pytest.raises(InvalidDin, match="check character"):
        parse_din("G151797123456M")
    with pytest.raises(InvalidDin):
        parse_din("G15179712345")


def test_the_check_catches_every_single_substitution_and_adjacent_transposition() -> None:
    body = "G151797123456"
    check = check_character(body)
    alphabet = string.digits + string.ascii_uppercase
    for i, ch in itertools.product(range(len(body)), alphabet):
        if ch != body[i]:
            assert check_character(body[:i] + ch + body[i + 1 :]) != check
    for i in range(len(body) - 1):
        if body[i] != body[i + 1]:
            swapped = body[:i] + body[i + 1] + body[i] + body[i + 2 :]
            assert check_character(swapped) != check
