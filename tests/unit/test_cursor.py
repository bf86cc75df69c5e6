"""Page tokens are opaque, tamper-evident, bound to their query, and expire."""

from __future__ import annotations

import base64

import pytest

from bloodbank.cursor import CursorCodec
from bloodbank.errors import BadUserInput

SECRET = "a-page-token-secret-that-is-long-enough"
POSITION = {"pk": {"S": "DONOR#1"}, "gsi3sk": {"S": "lee ann#1"}}


def test_round_trip_and_opacity() -> None:
    codec = CursorCodec(SECRET)
    token = codec.encode(POSITION, "donors|gsi3")
    assert codec.decode(token, "donors|gsi3") == POSITION
    assert "lee ann" not in token
    assert b"lee ann" not in base64.urlsafe_b64decode(token + "==")


def test_tampered_token_is_refused() -> None:
    codec = CursorCodec(SECRET)
    token = codec.encode(POSITION, "q")
    flipped = token[:-10] + ("A" if token[-10] != "A" else "B") + token[-9:]
    with pytest.raises(BadUserInput, match="invalid or expired"):
        codec.decode(flipped, "q")


@pytest.mark.parametrize("garbage", ["", "abc", "x" * 5000, "gAAAAA" + "=" * 10, "🩸"])
def test_garbage_is_bad_input(garbage: str) -> None:
    with pytest.raises(BadUserInput):
        CursorCodec(SECRET).decode(garbage, "q")


def test_token_of_another_query_or_secret_is_refused() -> None:
    token = CursorCodec(SECRET).encode(POSITION, "donors|gsi1|site-north")
    with pytest.raises(BadUserInput, match="different query"):
        CursorCodec(SECRET).decode(token, "donors|gsi1|site-south")
    with pytest.raises(BadUserInput, match="invalid or expired"):
        CursorCodec("another-secret-that-is-also-long-enough").decode(token, "donors|gsi1|site-north")


def test_expired_token_is_refused() -> None:
    token = CursorCodec(SECRET).encode(POSITION, "q")
    with pytest.raises(BadUserInput, match="expired"):
        CursorCodec(SECRET, lifetime_seconds=-1).decode(token, "q")
