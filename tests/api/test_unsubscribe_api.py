"""/unsubscribe/{token} through the app (RFC 8058): one-click POST unsubscribes, GET never does."""

from __future__ import annotations

from datetime import datetime

import pytest

from bloodbank.domain.campaigns import SuppressionReason, address_key
from tests.conftest import Api, World

KEY = address_key("ann.lee@example.org")


@pytest.fixture
def told(world: World) -> list[tuple[str, str, datetime]]:
    calls: list[tuple[str, str, datetime]] = []
    world.container.unsubscribe.on_unsubscribed = lambda c, r, at: calls.append((c, r, at))
    return calls


def path(world: World, campaign_id: str = "campaign-1", recipient: str = KEY) -> str:
    link = world.container.unsubscribe.link(campaign_id, recipient)
    assert link.startswith("http://127.0.0.1:8000/unsubscribe/")
    return link.removeprefix("http://127.0.0.1:8000")


def test_one_click_post_unsubscribes(api: Api, world: World, told: list[tuple[str, str, datetime]]) -> None:
    response = api.client.post(
        path(world),
        content="List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "You are unsubscribed" in response.text
    assert world.suppressions.entries == {KEY: (SuppressionReason.UNSUBSCRIBED, world.clock.now)}
    assert told == [("campaign-1", KEY, world.clock.now)]


def test_get_shows_a_button_and_changes_nothing(
    api: Api, world: World, told: list[tuple[str, str, datetime]]
) -> None:
    response = api.client.get(path(world))
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert '<form method="post">' in response.text
    assert "<button" in response.text
    assert world.suppressions.entries == {}
    assert told == []


def test_the_confirmation_button_posts_a_form_and_unsubscribes(
    api: Api, world: World, told: list[tuple[str, str, datetime]]
) -> None:
    response = api.client.post(path(world), data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert set(world.suppressions.entries) == {KEY}


def test_any_post_body_unsubscribes(api: Api, world: World, told: list[tuple[str, str, datetime]]) -> None:
    assert api.client.post(path(world)).status_code == 200
    assert api.client.post(path(world, "campaign-2"), json={"whatever": 1}).status_code == 200
    assert [c for c, _, _ in told] == ["campaign-1", "campaign-2"]


def test_a_second_post_is_still_200(api: Api, world: World, told: list[tuple[str, str, datetime]]) -> None:
    first_at = world.clock.now
    assert api.client.post(path(world), content="List-Unsubscribe=One-Click").status_code == 200
    world.clock.advance(minutes=1)
    second = api.client.post(path(world), content="List-Unsubscribe=One-Click")
    assert second.status_code == 200
    assert "You are unsubscribed" in second.text
    assert world.suppressions.entries == {KEY: (SuppressionReason.UNSUBSCRIBED, first_at)}
    assert len(told) == 2


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_tampered_token_is_400_and_says_only_that_the_link_is_not_valid(
    api: Api, world: World, told: list[tuple[str, str, datetime]], method: str
) -> None:
    good = path(world)
    tampered = good[:-1] + ("A" if good[-1] != "A" else "B")
    other_recipient = path(world, recipient=address_key("bob@example.org"))
    spliced = ".".join([*good.split(".")[:3], other_recipient.split(".")[3]])
    for bad in (tampered, spliced, "/unsubscribe/not-a-token", "/unsubscribe/" + "x" * 2000):
        response = api.client.request(method, bad, content="List-Unsubscribe=One-Click")
        assert response.status_code == 400, bad
        assert "This link is not valid" in response.text
        assert response.headers["cache-control"] == "no-store"
        assert "Traceback" not in response.text
        assert "altered" not in response.text
        assert "malformed" not in response.text
    assert world.suppressions.entries == {}
    assert told == []


def test_no_other_method_and_no_sign_in_needed(api: Api, world: World) -> None:
    assert api.client.put(path(world)).status_code == 405
    assert world.suppressions.entries == {}


def test_a_suppression_store_that_is_down_is_503_and_can_be_retried(
    api: Api, world: World, told: list[tuple[str, str, datetime]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from bloodbank.errors import DependencyUnavailable

    def down(*_: object) -> bool:
        raise DependencyUnavailable("table unreachable")

    monkeypatch.setattr(world.suppressions, "suppress", down)
    response = api.client.post(path(world), content="List-Unsubscribe=One-Click")
    assert response.status_code == 503
    assert response.headers["cache-control"] == "no-store"
    assert told == []
    monkeypatch.undo()
    assert api.client.post(path(world), content="List-Unsubscribe=One-Click").status_code == 200
