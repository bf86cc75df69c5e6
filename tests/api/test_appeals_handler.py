"""handler.appeal_donors with real-shaped SNS events of the alerts topic, over the fakes' container;
and the local server's in-process appeals."""

from __future__ import annotations

import json
from datetime import date
from types import ModuleType
from typing import Any

import pytest

from bloodbank.adapters.sns import SnsAlertPublisher
from bloodbank.bootstrap import InProcessAppeals
from bloodbank.domain.alerts import ShortageAlert
from bloodbank.domain.blood import BloodGroup
from bloodbank.domain.eligibility import Sex
from bloodbank.domain.identity import Group, Identity
from bloodbank.domain.notifications import Channel, NotificationKind
from tests.api.test_subscriptions import set_par
from tests.api.test_websocket import sns_event
from tests.conftest import Api, TokenFactory, World

STAFF = Identity(sub="staff-1", username="staff-1", groups=frozenset({Group.STAFF}), token_use="access")


def register(world: World, first_name: str, group: BloodGroup, site: str, *, consent: bool = True) -> str:
    donor = world.container.donors.register(
        STAFF,
        {
            "first_name": first_name,
            "last_name": "Donor",
            "email": f"{first_name.lower()}@example.org",
            "site_id": site,
            "blood_group": group,
            "date_of_birth": date(1990, 1, 2),
            "sex": Sex.FEMALE,
            "weight_kg": 70.0,
            "phone": "+1 415 555 0123",
            "notification_preferences": {"consent": consent, "channels": [Channel.SMS]},
        },
    )
    return donor.id


def shortage(api: Api, tokens: TokenFactory, world: World, site: str, group: str) -> ShortageAlert:
    before = len(world.alerts.published)
    set_par(api, tokens, site, group, 4)
    [alert] = world.alerts.published[before:]
    return alert


def topic_message(alert: ShortageAlert) -> str:
    return str(SnsAlertPublisher(None, "arn").request(alert)["Message"])


class LambdaContext:
    def __init__(self, remaining_ms: int) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def appeals_sent(world: World) -> list[Any]:
    return [m for m in world.notifier.sent if m.kind is NotificationKind.APPEAL]


def test_a_shortage_asks_the_compatible_opted_in_donors_of_its_site_once(
    handler: ModuleType, api: Api, tokens: TokenFactory, world: World
) -> None:
    asked = register(world, "Ann", BloodGroup.O_NEG, "site-north")
    register(world, "Bea", BloodGroup.O_POS, "site-north")  # another group: red cells are exact
    register(world, "Cat", BloodGroup.O_NEG, "site-south")  # another site
    register(world, "Dee", BloodGroup.O_NEG, "site-north", consent=False)
    alert = shortage(api, tokens, world, "site-north", "O_NEG")

    totals = handler.appeal_donors(sns_event(topic_message(alert), "garbage"), LambdaContext(600_000))
    assert (totals["alerts"], totals["unreadable"], totals["sent"]) == (1, 1, 1)
    [message] = appeals_sent(world)
    assert (message.donor_id, message.channel) == (asked, Channel.SMS)
    assert "urgently need" in message.text

    # SNS delivers the same message again: nobody hears twice.
    handler.appeal_donors(sns_event(topic_message(alert)), LambdaContext(600_000))
    assert len(appeals_sent(world)) == 1


def test_an_appeal_out_of_time_fails_so_that_the_retry_carries_on(
    handler: ModuleType, api: Api, tokens: TokenFactory, world: World
) -> None:
    register(world, "Ann", BloodGroup.O_NEG, "site-north")
    alert = shortage(api, tokens, world, "site-north", "O_NEG")
    with pytest.raises(handler.AppealIncomplete):
        handler.appeal_donors(sns_event(topic_message(alert)), LambdaContext(1_000))
    assert appeals_sent(world) == []
    handler.appeal_donors(sns_event(topic_message(alert)), LambdaContext(600_000))
    assert len(appeals_sent(world)) == 1


def test_a_shortage_that_ended_asks_nobody(
    handler: ModuleType, api: Api, tokens: TokenFactory, world: World
) -> None:
    register(world, "Ann", BloodGroup.O_NEG, "site-north")
    alert = shortage(api, tokens, world, "site-north", "O_NEG")
    world.clock.advance(hours=1)  # past the quiet period, so the recovery is announced at once
    set_par(api, tokens, "site-north", "O_NEG", 0)
    assert world.alerts.published[-1].status.value == "GREEN"
    totals = handler.appeal_donors(sns_event(topic_message(alert)), LambdaContext(600_000))
    assert totals["sent"] == 0
    assert appeals_sent(world) == []


def test_the_local_server_appeals_in_the_background(api: Api, tokens: TokenFactory, world: World) -> None:
    asked = register(world, "Ann", BloodGroup.O_NEG, "site-north")
    alert = shortage(api, tokens, world, "site-north", "O_NEG")
    appeals = InProcessAppeals(world.container.appeals)
    appeals.publish(alert)
    appeals.drain()
    assert [m.donor_id for m in appeals_sent(world)] == [asked]
    document = json.loads(topic_message(alert))
    assert document["status"] == "RED"
