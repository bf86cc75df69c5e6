"""SES event publishing and feedback notifications read into DeliveryEvents (AWS documentation shapes)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from bloodbank.domain.campaigns import BounceType, DeliveryEventKind, address_key
from bloodbank.domain.ses_events import parse, parse_message

RECIPIENT = "recipient@example.com"
KEY = address_key(RECIPIENT)
CAMPAIGN = "3f1c7b1e-5c4e-4d0a-9a57-1f0e2b8c9d10"
MESSAGE_ID = "EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000"


def mail(**tags: list[str]) -> dict[str, Any]:
    """``mail`` of an event-publishing record (docs: "Examples of event data that Amazon SES publishes")."""
    return {
        "timestamp": "2017-08-05T00:40:02.012Z",
        "source": "Sender Name <sender@example.com>",
        "sourceArn": "arn:aws:ses:us-east-1:123456789012:identity/sender@example.com",
        "sendingAccountId": "123456789012",
        "messageId": MESSAGE_ID,
        "destination": [RECIPIENT],
        "headersTruncated": False,
        "headers": [
            {"name": "From", "value": "Sender Name <sender@example.com>"},
            {"name": "To", "value": RECIPIENT},
            {"name": "Subject", "value": "Message sent from Amazon SES"},
            {"name": "MIME-Version", "value": "1.0"},
        ],
        "commonHeaders": {
            "from": ["Sender Name <sender@example.com>"],
            "to": [RECIPIENT],
            "messageId": MESSAGE_ID,
            "subject": "Message sent from Amazon SES",
        },
        "tags": {
            "ses:configuration-set": ["bloodbank"],
            "ses:source-ip": ["192.0.2.0"],
            "ses:from-domain": ["example.com"],
            "ses:caller-identity": ["ses_user"],
            **tags,
        },
    }


OURS = {"campaign": [CAMPAIGN], "recipient": [KEY]}

BOUNCE = {
    "eventType": "Bounce",
    "bounce": {
        "bounceType": "Permanent",
        "bounceSubType": "General",
        "bouncedRecipients": [
            {
                "emailAddress": RECIPIENT,
                "action": "failed",
                "status": "5.1.1",
                "diagnosticCode": "smtp; 550 5.1.1 user unknown",
            }
        ],
        "timestamp": "2017-08-05T00:41:02.669Z",
        "feedbackId": "01000157c44f053b-61b59c11-9236-11e6-8f96-7be8aexample-000000",
        "reportingMTA": "dsn; mta.example.com",
    },
    "mail": mail(**OURS),
}
COMPLAINT = {
    "eventType": "Complaint",
    "complaint": {
        "complainedRecipients": [{"emailAddress": RECIPIENT}],
        "timestamp": "2017-08-05T00:41:02.669Z",
        "feedbackId": "01000157c44f053b-61b59c11-9236-11e6-8f96-7be8aexample-000000",
        "userAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
        "complaintFeedbackType": "abuse",
        "arrivalDate": "2017-08-05T00:41:02.669Z",
    },
    "mail": mail(**OURS),
}
DELIVERY = {
    "eventType": "Delivery",
    "mail": mail(**OURS),
    "delivery": {
        "timestamp": "2016-10-19T23:21:04.133Z",
        "processingTimeMillis": 11893,
        "recipients": [RECIPIENT],
        "smtpResponse": "250 2.6.0 Message received",
        "reportingMTA": "mta.example.com",
    },
}
SEND = {"eventType": "Send", "mail": mail(**OURS), "send": {}}
REJECT = {"eventType": "Reject", "mail": mail(**OURS), "reject": {"reason": "Bad content"}}
OPEN = {
    "eventType": "Open",
    "mail": mail(**OURS),
    "open": {
        "ipAddress": "192.0.2.1",
        "timestamp": "2017-08-09T22:00:19.652Z",
        "userAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 10_3_3 like Mac OS X)",
    },
}
CLICK = {
    "eventType": "Click",
    "click": {
        "ipAddress": "192.0.2.1",
        "link": "https://donate.example.org/appointments",
        "linkTags": {"samplekey0": ["samplevalue0"]},
        "timestamp": "2017-08-09T23:51:25.570Z",
        "userAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
    },
    "mail": mail(**OURS),
}
DELAY = {
    "eventType": "DeliveryDelay",
    "mail": mail(**OURS),
    "deliveryDelay": {
        "timestamp": "2020-06-16T00:15:40.641Z",
        "delayType": "TransientCommunicationFailure",
        "expirationTime": "2020-06-16T00:25:40.914Z",
        "delayedRecipients": [
            {
                "emailAddress": RECIPIENT,
                "status": "4.4.1",
                "diagnosticCode": "smtp; 421 4.4.0 Unable to lookup DNS",
            }
        ],
    },
}
RENDERING_FAILURE = {
    "eventType": "Rendering Failure",
    "mail": mail(**OURS),
    "failure": {
        "errorMessage": "Attribute 'attributeName' is not present in the rendering data.",
        "templateName": "MyTemplate",
    },
}
SUBSCRIPTION = {
    "eventType": "Subscription",
    "mail": mail(**OURS),
    "subscription": {
        "contactList": "ContactListName",
        "timestamp": "2022-01-12T01:00:17.910Z",
        "source": "UnsubscribeHeader",
        "newTopicPreferences": {"unsubscribeAll": True},
        "oldTopicPreferences": {"unsubscribeAll": False},
    },
}


@pytest.mark.parametrize(
    ("document", "kind", "at"),
    [
        (SEND, DeliveryEventKind.SEND, "2017-08-05T00:40:02.012+00:00"),
        (DELIVERY, DeliveryEventKind.DELIVERY, "2016-10-19T23:21:04.133+00:00"),
        (BOUNCE, DeliveryEventKind.BOUNCE, "2017-08-05T00:41:02.669+00:00"),
        (COMPLAINT, DeliveryEventKind.COMPLAINT, "2017-08-05T00:41:02.669+00:00"),
        (REJECT, DeliveryEventKind.REJECT, "2017-08-05T00:40:02.012+00:00"),
        (OPEN, DeliveryEventKind.OPEN, "2017-08-09T22:00:19.652+00:00"),
        (CLICK, DeliveryEventKind.CLICK, "2017-08-09T23:51:25.570+00:00"),
        (DELAY, DeliveryEventKind.DELIVERY_DELAY, "2020-06-16T00:15:40.641+00:00"),
        (RENDERING_FAILURE, DeliveryEventKind.RENDERING_FAILURE, "2017-08-05T00:40:02.012+00:00"),
        (SUBSCRIPTION, DeliveryEventKind.SUBSCRIPTION, "2022-01-12T01:00:17.910+00:00"),
    ],
)
def test_every_event_type_gives_one_event_for_the_recipient(
    document: dict[str, Any], kind: DeliveryEventKind, at: str
) -> None:
    [event] = parse(document)
    assert event.kind is kind
    assert (event.campaign_id, event.recipient, event.email) == (CAMPAIGN, KEY, RECIPIENT)
    assert event.message_id == MESSAGE_ID
    assert event.at == datetime.fromisoformat(at)
    assert event.at.tzinfo is not None
    assert event.bounce_type == (BounceType.PERMANENT if kind is DeliveryEventKind.BOUNCE else None)


@pytest.mark.parametrize(
    ("bounce_type", "expected"),
    [
        ("Permanent", BounceType.PERMANENT),
        ("Transient", BounceType.TRANSIENT),
        ("Undetermined", BounceType.UNDETERMINED),
        ("SomethingNew", BounceType.UNDETERMINED),
    ],
)
def test_bounce_types(bounce_type: str, expected: BounceType) -> None:
    document = copy.deepcopy(BOUNCE)
    document["bounce"]["bounceType"] = bounce_type
    assert [e.bounce_type for e in parse(document)] == [expected]


def test_one_event_per_bounced_recipient_and_addresses_in_normal_form() -> None:
    document = copy.deepcopy(BOUNCE)
    document["bounce"]["bouncedRecipients"] = [
        {"emailAddress": "Ann <Ann.Lee@Example.ORG>"},
        {"emailAddress": " bob@example.org "},
        {"emailAddress": "eva@bücher.example"},
    ]
    emails = [e.email for e in parse(document)]
    assert emails == ["ann.lee@example.org", "bob@example.org", "eva@xn--bcher-kva.example"]
    assert address_key(emails[0]) == address_key("ann.lee@example.org")


def test_messages_not_about_a_campaign_give_no_events() -> None:
    untagged = copy.deepcopy(DELIVERY)
    untagged["mail"] = mail()
    half = copy.deepcopy(DELIVERY)
    half["mail"] = mail(campaign=[CAMPAIGN])
    assert parse(untagged) == []
    assert parse(half) == []
    assert parse({"notificationType": "AmazonSnsSubscriptionSucceeded", "message": "ok"}) == []


# moto 5's feedback samples (moto/ses/feedback.py, from "Contents of notifications for Amazon SES"):
# what it publishes to an identity's notification topics for the mailbox simulator. No tags.
FEEDBACK_MAIL = {
    "timestamp": "2018-10-08T14:05:45 +0000",
    "messageId": "000001378603177f-7a5433e7-8edb-42ae-af10-f0181f34d6ee-000000",
    "source": "sender@example.com",
    "sourceArn": "arn:aws:ses:us-west-2:888888888888:identity/example.com",
    "sourceIp": "127.0.3.0",
    "sendingAccountId": "123456789012",
    "destination": ["recipient@example.com"],
    "headersTruncated": False,
    "headers": [
        {"name": "From", "value": '"Sender Name" <sender@example.com>'},
        {"name": "To", "value": '"Recipient Name" <recipient@example.com>'},
    ],
    "commonHeaders": {
        "from": ["Sender Name <sender@example.com>"],
        "date": "Mon, 08 Oct 2018 14:05:45 +0000",
        "to": ["Recipient Name <recipient@example.com>"],
        "messageId": " custom-message-ID",
        "subject": "Message sent using Amazon SES",
    },
}
FEEDBACK_BOUNCE = {
    "notificationType": "Bounce",
    "mail": FEEDBACK_MAIL,
    "bounce": {
        "bounceType": "Permanent",
        "bounceSubType": "General",
        "bouncedRecipients": [
            {
                "status": "5.0.0",
                "action": "failed",
                "diagnosticCode": "smtp; 550 user unknown",
                "emailAddress": "recipient1@example.com",
            },
            {"status": "4.0.0", "action": "delayed", "emailAddress": "recipient2@example.com"},
        ],
        "reportingMTA": "example.com",
        "timestamp": "2012-05-25T14:59:38.605Z",
        "feedbackId": "000001378603176d-5a4b5ad9-6f30-4198-a8c3-b1eb0c270a1d-000000",
        "remoteMtaIp": "127.0.2.0",
    },
}


def with_tag_headers(document: dict[str, Any]) -> dict[str, Any]:
    tagged = copy.deepcopy(document)
    tagged["mail"]["headers"] += [
        {"name": "X-Bloodbank-Tag-campaign", "value": CAMPAIGN},
        {"name": "X-Bloodbank-Tag-recipient", "value": KEY},
    ]
    return tagged


def test_feedback_notifications_without_our_headers_give_no_events() -> None:
    assert parse(FEEDBACK_BOUNCE) == []


def test_feedback_notifications_carry_the_campaign_in_the_headers_the_mailer_writes() -> None:
    events = parse(with_tag_headers(FEEDBACK_BOUNCE))
    assert [(e.kind, e.email, e.campaign_id, e.recipient) for e in events] == [
        (DeliveryEventKind.BOUNCE, "recipient1@example.com", CAMPAIGN, KEY),
        (DeliveryEventKind.BOUNCE, "recipient2@example.com", CAMPAIGN, KEY),
    ]
    assert events[0].at == datetime(2012, 5, 25, 14, 59, 38, 605000, tzinfo=UTC)
    complaint = with_tag_headers(
        {
            "notificationType": "Complaint",
            "mail": FEEDBACK_MAIL,
            "complaint": {
                "complainedRecipients": [{"emailAddress": "recipient1@example.com"}],
                "complaintFeedbackType": "abuse",
                "timestamp": "2012-05-25T14:59:38.623Z",
            },
        }
    )
    assert [e.kind for e in parse(complaint)] == [DeliveryEventKind.COMPLAINT]
    delivery = with_tag_headers(
        {
            "notificationType": "Delivery",
            "mail": FEEDBACK_MAIL,
            "delivery": {"recipients": ["success@simulator.amazonses.com"]},
        }
    )
    [delivered] = parse(delivery)
    assert delivered.email == "success@simulator.amazonses.com"
    assert delivered.at == datetime(2018, 10, 8, 14, 5, 45, tzinfo=UTC)  # moto's mail timestamp


def test_parse_message_reads_the_sns_message_string() -> None:
    assert parse_message(json.dumps(BOUNCE)) == parse(BOUNCE)
    with pytest.raises(ValueError, match=r"^SES"):
        parse_message("not json")


def _without(document: dict[str, Any], *path: str) -> dict[str, Any]:
    broken = copy.deepcopy(document)
    target = broken
    for name in path[:-1]:
        target = target[name]
    del target[path[-1]]
    return broken


def _with(document: dict[str, Any], value: Any, *path: str) -> dict[str, Any]:
    broken = copy.deepcopy(document)
    target = broken
    for name in path[:-1]:
        target = target[name]
    target[path[-1]] = value
    return broken


@pytest.mark.parametrize(
    "document",
    [
        [],
        "Bounce",
        {},
        {"eventType": "Teleport", "mail": mail(**OURS)},
        {"notificationType": "Open", "mail": mail(**OURS)},
        _without(BOUNCE, "mail"),
        _without(BOUNCE, "mail", "messageId"),
        _without(BOUNCE, "bounce", "bounceType"),
        _without(BOUNCE, "bounce", "bouncedRecipients"),
        _with(BOUNCE, [], "bounce", "bouncedRecipients"),
        _with(BOUNCE, [{"emailAddress": "no-at-sign"}], "bounce", "bouncedRecipients"),
        _with(BOUNCE, "yesterday", "bounce", "timestamp"),
        _with(BOUNCE, "not a list", "mail", "headers"),
        _with(BOUNCE, {"campaign": [1], "recipient": [KEY]}, "mail", "tags"),
        _with(SEND, "recipient@example.com", "mail", "destination"),
        _with(DELIVERY, "recipient@example.com", "delivery", "recipients"),
        _with(SEND, "sent", "send"),
    ],
)
def test_malformed_documents_raise_value_error(document: Any) -> None:
    with pytest.raises(ValueError, match=r"^SES"):
        parse(document)


def test_a_notification_with_moto_placeholder_type_is_typed_by_its_detail() -> None:
    placeholder = with_tag_headers({**FEEDBACK_BOUNCE, "notificationType": "Bounce, Complaint, or Delivery."})
    assert {e.kind for e in parse(placeholder)} == {DeliveryEventKind.BOUNCE}
    both = {**placeholder, "delivery": {"recipients": [RECIPIENT]}}
    with pytest.raises(ValueError, match=r"^SES"):
        parse(both)
