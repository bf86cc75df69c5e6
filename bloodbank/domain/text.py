"""Checks and normal forms for text that people type: names, identifiers, e-mail, phone."""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Collection, Mapping

from bloodbank.errors import BadUserInput, FieldProblem

MAX_NAME_LENGTH = 100
MAX_EMAIL_LENGTH = 254
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
# Joiners are part of how many scripts write names; bidirectional overrides are not.
_ALLOWED_FORMAT_CHARS = {"\u200c", "\u200d"}


class Invalid(ValueError):
    """A value that fails a check; ``problem`` says which field and why."""

    def __init__(self, problem: FieldProblem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def has_control(value: str) -> bool:
    return any(unicodedata.category(ch).startswith("C") and ch not in _ALLOWED_FORMAT_CHARS for ch in value)


def short_text(limit: int, *, letters: bool = False) -> Callable[[str, object], str]:
    """A check of one line of free text up to ``limit`` characters, whitespace collapsed; with
    ``letters``, it must hold at least one letter (a title or a department, not "-")."""

    def check(where: str, value: object) -> str:
        cleaned = " ".join(str(value).split())
        if not cleaned:
            raise Invalid(FieldProblem(where, "must not be empty"))
        if len(cleaned) > limit or has_control(cleaned):
            raise Invalid(FieldProblem(where, f"must be at most {limit} characters of text"))
        if letters and not any(ch.isalpha() for ch in cleaned):
            raise Invalid(FieldProblem(where, "must contain at least one letter"))
        return cleaned

    return check


def person_name(field: str, value: str) -> str:
    """A given or family name: trimmed, NFC, single spaces, 1-100 characters, no control characters."""
    if len(value) > MAX_NAME_LENGTH * 4:
        raise Invalid(FieldProblem(field, f"must be at most {MAX_NAME_LENGTH} characters"))
    if has_control(value):
        raise Invalid(FieldProblem(field, "must not contain control or invisible formatting characters"))
    cleaned = " ".join(unicodedata.normalize("NFC", value).split())
    if not cleaned:
        raise Invalid(FieldProblem(field, "must not be empty"))
    if len(cleaned) > MAX_NAME_LENGTH:
        raise Invalid(FieldProblem(field, f"must be at most {MAX_NAME_LENGTH} characters"))
    if not any(ch.isalpha() for ch in cleaned):
        raise Invalid(FieldProblem(field, "must contain at least one letter"))
    return cleaned


def identifier(field: str, value: str) -> str:
    """An id: 1-64 letters, digits, '_', '-', '.', ':' starting with a letter or digit."""
    if not _ID.fullmatch(value):
        raise Invalid(FieldProblem(field, "is not a valid id (1-64 letters, digits, '-', '_', '.', ':')"))
    return value


def email_address(field: str, value: str) -> str:
    """A deliverable-looking address in normal form; no SMTPUTF8 (SES cannot send to those)."""
    if len(value) > MAX_EMAIL_LENGTH or has_control(value):
        raise Invalid(FieldProblem(field, "is not a valid e-mail address"))
    from email_validator import (
        EmailNotValidError,
        validate_email,
    )  # only writes need it: keeps cold starts short

    try:
        result = validate_email(value.strip(), check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise Invalid(FieldProblem(field, f"is not a valid e-mail address: {exc}")) from None
    return str(result.normalized)


def phone_number(field: str, value: str) -> str:
    """A phone number in international form, returned as E.164 (``+14155550123``)."""
    if len(value) > 32 or has_control(value):
        raise Invalid(FieldProblem(field, "is not a valid phone number"))
    import phonenumbers  # imported here: only writes need it, and cold starts stay short

    hint = "use international format with country code, e.g. +14155550123"
    if not value.strip().startswith("+"):
        raise Invalid(FieldProblem(field, hint))
    try:
        parsed = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        raise Invalid(FieldProblem(field, f"is not a valid phone number: {hint}")) from None
    if not phonenumbers.is_valid_number(parsed):
        raise Invalid(FieldProblem(field, f"is not a valid phone number: {hint}"))
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


@functools.lru_cache(maxsize=8192)
def sort_form(value: str) -> str:
    """Case- and accent-insensitive form for ordering and prefix search: 'Zoë O'Neil' -> 'zoe oneil'."""
    stripped = "".join(
        ch for ch in unicodedata.normalize("NFKD", value) if not unicodedata.combining(ch)
    ).casefold()
    return " ".join("".join(ch for ch in stripped if ch.isalnum() or ch.isspace()).split())


def with_required(
    values: Mapping[str, object],
    prefix: str,
    required: Collection[str],
    client_names: Mapping[str, str],
    clean: Callable[[Mapping[str, object], str], dict[str, object]],
) -> dict[str, object]:
    """``clean(values, prefix)`` of a new record, with the missing required fields reported in the
    same BadUserInput as the bad ones (all problems at once)."""
    missing = [FieldProblem(f"{prefix}{client_names[n]}", "is required") for n in required if n not in values]
    try:
        cleaned = clean(values, prefix)
    except BadUserInput as bad:
        raise BadUserInput.of([*missing, *bad.problems]) from None
    if missing:
        raise BadUserInput.of(missing)
    return cleaned
