"""Checks on what people type: names, ids, e-mail addresses, phone numbers."""

from __future__ import annotations

import pytest

from bloodbank.domain import text


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ("Ann", "Ann"),
        ("  Mary   Jane ", "Mary Jane"),
        ("O'Neill-Smith", "O'Neill-Smith"),
        ("Zoe\u0308", "Zoë"),  # decomposed input is stored composed (NFC)
        ("\u0645\u062d\u0645\u062f", "\u0645\u062d\u0645\u062f"),  # Arabic script
        (
            "\u0928\u093f\u0930\u094d\u200d\u092e\u0932",
            "\u0928\u093f\u0930\u094d\u200d\u092e\u0932",
        ),  # ZWJ kept
    ],
)
def test_names_are_trimmed_and_normalised(raw: str, cleaned: str) -> None:
    assert text.person_name("firstName", raw) == cleaned


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("", "must not be empty"),
        ("   ", "must not be empty"),
        ("x" * 101, "at most 100"),
        ("x" * 10_000, "at most 100"),
        ("Ann\x00", "control"),
        ("Ann\nLee", "control"),
        ("Ann\x1b[31m", "control"),
        ("\u202eAnn", "control"),  # right-to-left override
        ("1234", "at least one letter"),
    ],
    ids=[
        "empty",
        "blank",
        "101-chars",
        "10k-chars",
        "nul",
        "newline",
        "ansi-escape",
        "bidi-override",
        "digits",
    ],
)
def test_bad_names_are_refused_with_the_reason(raw: str, why: str) -> None:
    with pytest.raises(text.Invalid) as caught:
        text.person_name("input.firstName", raw)
    assert caught.value.problem.field == "input.firstName"
    assert why in caught.value.problem.message


@pytest.mark.parametrize("raw", ["site-north", "a", "7c34fdd6-d408-5874-918f-669016063fe0", "us-east-1:abc"])
def test_identifiers(raw: str) -> None:
    assert text.identifier("id", raw) == raw


@pytest.mark.parametrize("raw", ["", "-lead", "has space", "DONOR#x", "x" * 65, "a/b", "é"])
def test_bad_identifiers(raw: str) -> None:
    with pytest.raises(text.Invalid):
        text.identifier("id", raw)


@pytest.mark.parametrize(
    ("raw", "normal"),
    [("Ann.Lee@Example.ORG", "Ann.Lee@example.org"), (" ann@example.org ", "ann@example.org")],
)
def test_email_normal_form(raw: str, normal: str) -> None:
    assert text.email_address("email", raw) == normal


@pytest.mark.parametrize(
    "raw",
    [
        "plainaddress",
        "a@",
        "@example.org",
        "a@b@example.org",
        "a@localhost",
        "a@demo.test",
        "ü@example.org",
        "a\n@example.org",
        "a@" + "x" * 250 + ".org",
    ],
    ids=[
        "no-at",
        "no-domain",
        "no-local",
        "two-at",
        "no-tld",
        "special-use",
        "smtputf8",
        "newline",
        "too-long",
    ],
)
def test_bad_email_addresses(raw: str) -> None:
    with pytest.raises(text.Invalid) as caught:
        text.email_address("input.email", raw)
    assert caught.value.problem.field == "input.email"


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("+1 415 555 0123", "+14155550123"),
        ("+1-312-555-0000", "+13125550000"),
        ("+44 20 7946 0958", "+442079460958"),
    ],
)
def test_phone_numbers_become_e164(raw: str, e164: str) -> None:
    assert text.phone_number("phone", raw) == e164


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("4155550123", "international"),
        ("+1 555", "not a valid"),
        ("+999 1234567", "not a valid"),
        ("call me", "international"),
        ("+1" + "5" * 40, "not a valid"),
        ("+14155550123\x00", "not a valid"),
    ],
)
def test_bad_phone_numbers(raw: str, why: str) -> None:
    with pytest.raises(text.Invalid) as caught:
        text.phone_number("phone", raw)
    assert why in caught.value.problem.message


@pytest.mark.parametrize(
    ("raw", "form"),
    [("Zoë O'Neil", "zoe oneil"), ("GARCÍA", "garcia"), ("Yılmaz", "yılmaz"), ("  Ann  Lee ", "ann lee")],
)
def test_sort_form_ignores_case_accents_and_punctuation(raw: str, form: str) -> None:
    assert text.sort_form(raw) == form
