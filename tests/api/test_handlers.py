"""The event handlers of handler.py, called with real-shaped events over the fakes' container."""

from __future__ import annotations

from datetime import date
from types import ModuleType
from typing import Any

from bloodbank.domain.blood import BloodGroup
from bloodbank.domain.donations import DonationType
from bloodbank.domain.eligibility import Sex
from bloodbank.domain.identity import Group, Identity
from bloodbank.domain.notifications import Channel, NotificationKind
from tests.conftest import World

STAFF = Identity(sub="staff-1", username="staff-1", groups=frozenset({Group.STAFF}), token_use="access")
SCHEDULED_EVENT: dict[str, Any] = {
    "version": "0",
    "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "123456789012",
    "time": "2027-01-17T10:00:00Z",
    "region": "us-east-1",
    "resources": ["arn:aws:events:us-east-1:123456789012:rule/bloodbank-eligibility-reminders"],
    "detail": {},
}


def test_eligible_again_reminders_go_out_once(handler: ModuleType, world: World) -> None:
    container = world.container
    donor = container.donors.register(
        STAFF,
        {
            "first_name": "Ann",
            "last_name": "Lee",
            "email": "ann@example.org",
            "site_id": "site-north",
            "blood_group": BloodGroup.O_NEG,
            "date_of_birth": date(1990, 1, 2),
            "sex": Sex.FEMALE,
            "weight_kg": 70.0,
            "phone": "+1 415 555 0123",
            "notification_preferences": {"consent": True, "channels": [Channel.SMS]},
        },
    )
    container.donations.record(
        STAFF, {"donor_id": donor.id, "donation_type": DonationType.WHOLE_BLOOD, "haemoglobin_g_dl": 13.2}
    )
    world.notifier.sent.clear()
    world.clock.advance(days=56, hours=1)
    assert handler.eligibility_reminders(SCHEDULED_EVENT, None) == {"sent": 1}
    [message] = world.notifier.sent
    assert (message.kind, message.channel, message.to) == (
        NotificationKind.ELIGIBLE_AGAIN,
        Channel.SMS,
        "+14155550123",
    )
    # A retried or overlapping run tells nobody twice.
    assert handler.eligibility_reminders(SCHEDULED_EVENT, None) == {"sent": 0}
    assert len(world.notifier.sent) == 1


def test_no_consent_no_message(handler: ModuleType, world: World) -> None:
    container = world.container
    donor = container.donors.register(
        STAFF,
        {
            "first_name": "Bo",
            "last_name": "Chen",
            "email": "bo@example.org",
            "site_id": "site-north",
            "date_of_birth": date(1990, 1, 2),
            "weight_kg": 70.0,
        },
    )
    container.donations.record(
        STAFF, {"donor_id": donor.id, "donation_type": DonationType.PLATELETS, "haemoglobin_g_dl": 13.6}
    )
    world.clock.advance(days=8)
    assert handler.eligibility_reminders(SCHEDULED_EVENT, None) == {"sent": 0}
    assert world.notifier.sent == []
