"""Unsubscribe tokens (signed, URL-safe, tamper-evident) and the service that honours them."""

from __future__ import annotations

import string
from datetime import datetime

import pytest

from bloodbank.domain.campaigns import SuppressionReason, address_key
from bloodbank.domain.unsubscribe import InvalidToken, UnsubscribeTokens, Unsubscription
from bloodbank.fakes import FixedClock, InMemorySuppressions
from bloodbank.services.unsubscribe import UnsubscribeService

SECRET = "test-page-token-secret-of-sufficient-length"
KEY = address_key("ann.lee@example.org")
URL_SAFE = set(string.ascii_letters + string.digits + "-_.")


def test_a_token_round_trips_and_is_url_safe() -> None:
    tokens = UnsubscribeTokens(SECRET)
    token = tokens.issue("campaign-1", KEY)
    assert set(token) <= URL_SAFE
    assert "ann.lee" not in token
    assert tokens.verify(token) == Unsubscription("campaign-1", KEY)
    odd = tokens.issue("c:ü/1", KEY)  # any id survives the trip
    assert set(odd) <= URL_SAFE
    assert tokens.verify(odd).campaign_id == "c:ü/1"


def _flip(token: str, index: int) -> str:
    replacement = "A" if token[index] != "A" else "B"
    return token[:index] + replacement + token[index + 1 :]


def test_every_altered_character_is_refused() -> None:
    tokens = UnsubscribeTokens(SECRET)
    token = tokens.issue("campaign-1", KEY)
    for index in range(len(token)):
        if token[index] == ".":
            continue
        with pytest.raises(InvalidToken):
            tokens.verify(_flip(token, index))


@pytest.mark.parametrize(
    "token",
    [
        "",
        "u1",
        "u1.a.b",
        "u1.a.b.c.d",
        "v2.YQ.Yg.Yw",
        "u1.!!.Yg.Yw",
        "x" * 600,
        "u1.YQ.Yg.AAAAAAAAAAAAAAAAAAAAAA",
        "ü",
    ],
)
def test_garbage_is_refused(token: str) -> None:
    with pytest.raises(InvalidToken):
        UnsubscribeTokens(SECRET).verify(token)


def test_a_token_of_another_key_or_for_another_recipient_is_refused() -> None:
    token = UnsubscribeTokens("another-secret-of-sufficient-length-too").issue("campaign-1", KEY)
    with pytest.raises(InvalidToken):
        UnsubscribeTokens(SECRET).verify(token)
    mine = UnsubscribeTokens(SECRET).issue("campaign-1", KEY)
    theirs = UnsubscribeTokens(SECRET).issue("campaign-1", address_key("bob@example.org"))
    spliced = ".".join([*mine.split(".")[:3], theirs.split(".")[3]])
    with pytest.raises(InvalidToken):
        UnsubscribeTokens(SECRET).verify(spliced)


def test_the_key_is_not_the_page_token_key() -> None:
    """The label separates the two uses of one secret: equal inputs, different MACs."""
    assert UnsubscribeTokens(SECRET)._key != UnsubscribeTokens(SECRET + "x")._key
    from bloodbank.cursor import CursorCodec

    assert UnsubscribeTokens(SECRET)._key not in (CursorCodec(SECRET)._key,)


class Told:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, datetime]] = []

    def __call__(self, campaign_id: str, recipient_key: str, at: datetime) -> None:
        self.calls.append((campaign_id, recipient_key, at))


def service(store: InMemorySuppressions, told: Told, clock: FixedClock) -> UnsubscribeService:
    return UnsubscribeService(store, clock, SECRET, told, public_url="https://api.blood.example/")


def test_link_points_at_the_public_url() -> None:
    svc = service(InMemorySuppressions(), Told(), FixedClock())
    link = svc.link("campaign-1", KEY)
    assert link.startswith("https://api.blood.example/unsubscribe/")
    assert svc.check(link.rsplit("/", 1)[1]) == Unsubscription("campaign-1", KEY)


def test_unsubscribe_suppresses_and_tells_the_campaign_idempotently() -> None:
    store, told, clock = InMemorySuppressions(), Told(), FixedClock()
    svc = service(store, told, clock)
    token = svc.link("campaign-1", KEY).rsplit("/", 1)[1]
    first_at = clock.now
    assert svc.unsubscribe(token) == Unsubscription("campaign-1", KEY)
    clock.advance(minutes=5)
    svc.unsubscribe(token)  # the mail client retried
    assert store.entries == {KEY: (SuppressionReason.UNSUBSCRIBED, first_at)}  # the first reason stays
    assert told.calls == [("campaign-1", KEY, first_at), ("campaign-1", KEY, clock.now)]


def test_check_changes_nothing_and_a_bad_token_changes_nothing() -> None:
    store, told = InMemorySuppressions(), Told()
    svc = service(store, told, FixedClock())
    svc.check(svc.link("campaign-1", KEY).rsplit("/", 1)[1])
    with pytest.raises(InvalidToken):
        svc.unsubscribe("u1.YQ.Yg.Yw")
    assert store.entries == {}
    assert told.calls == []


def test_the_default_callback_does_nothing() -> None:
    store = InMemorySuppressions()
    svc = UnsubscribeService(store, FixedClock(), SECRET)
    svc.unsubscribe(svc.link("c", KEY).rsplit("/", 1)[1])
    assert set(store.entries) == {KEY}
    assert svc.link("c", KEY).startswith("http://127.0.0.1:8000/unsubscribe/")
