"""SnsNotifier against the moto server: e-mail through a topic to SQS subscribers, SMS to a phone."""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.config import Config

from bloodbank.adapters.sns import SnsNotifier
from bloodbank.domain.notifications import (
    Channel,
    Contact,
    NotificationKind,
    NotificationPreferences,
    OutgoingMessage,
    compose,
)
from bloodbank.errors import DependencyUnavailable
from bloodbank.local import engines
from tests.conftest import REGION

PHONE = "+447700900123"
EMAIL = "ann.lee@example.org"
ANN = Contact("donor-1", "Ann", EMAIL, PHONE)
BOTH = NotificationPreferences(datetime(2026, 1, 5, tzinfo=UTC), frozenset(Channel))
FACTS = {"site": "North Leeds Donor Centre", "donation_type": "whole blood", "component": "red cells"}


def _client(service: str, endpoint: str, **config: Any) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(**config),
    )


def message(kind: NotificationKind, channel: Channel) -> OutgoingMessage:
    [composed] = [m for m in compose(kind, ANN, BOTH, "G151726000001", FACTS) if m.channel is channel]
    return composed


@dataclass
class Sns:
    endpoint: str
    notifier: SnsNotifier
    sqs: Any
    topic_arn: str
    all_queue: str  # every message, in SNS's JSON envelope (raw delivery off)
    issued_queue: str  # BLOOD_ISSUED e-mails only, raw (a filter policy on the message attributes)
    publishes: list[dict[str, Any]]  # the parameters of each Publish request, as sent


def _queue(sqs: Any, sns: Any, topic_arn: str, name: str, **attributes: str) -> str:
    url: str = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn, Attributes=attributes)
    return url


@pytest.fixture
def aws(moto_server: str) -> Iterator[Sns]:
    sns = _client("sns", moto_server)
    sqs = _client("sqs", moto_server)
    publishes: list[dict[str, Any]] = []

    def capture(params: dict[str, Any], **_: Any) -> None:
        publishes.append(json.loads(json.dumps(params)))

    sns.meta.events.register("provide-client-params.sns.Publish", capture)
    suffix = uuid.uuid4().hex[:8]
    topic_arn: str = sns.create_topic(Name=f"donors-{suffix}")["TopicArn"]
    all_queue = _queue(sqs, sns, topic_arn, f"mail-all-{suffix}")
    issued_queue = _queue(
        sqs,
        sns,
        topic_arn,
        f"mail-issued-{suffix}",
        RawMessageDelivery="true",
        FilterPolicy=json.dumps({"channel": ["EMAIL"], "kind": ["BLOOD_ISSUED"]}),
    )
    yield Sns(moto_server, SnsNotifier(sns, topic_arn), sqs, topic_arn, all_queue, issued_queue, publishes)
    sns.delete_topic(TopicArn=topic_arn)
    for url in (all_queue, issued_queue):
        sqs.delete_queue(QueueUrl=url)


def receive(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=1
    ).get("Messages", [])
    return messages


def test_an_email_reaches_the_topic_subscribers_with_its_attributes(aws: Sns) -> None:
    email = message(NotificationKind.DONATION_THANKS, Channel.EMAIL)
    message_id = aws.notifier.send(email)

    [delivered] = receive(aws.sqs, aws.all_queue)
    envelope = json.loads(delivered["Body"])
    assert envelope["Type"] == "Notification"
    assert envelope["MessageId"] == message_id
    assert envelope["TopicArn"] == aws.topic_arn
    assert envelope["Subject"] == "Thank you for your donation"
    assert envelope["MessageAttributes"] == {
        "channel": {"Type": "String", "Value": "EMAIL"},
        "kind": {"Type": "String", "Value": "DONATION_THANKS"},
    }
    assert json.loads(envelope["Message"]) == {
        "to": EMAIL,
        "subject": "Thank you for your donation",
        "text": email.text,
        "kind": "DONATION_THANKS",
    }
    # Filtered out: not a BLOOD_ISSUED message.
    assert receive(aws.sqs, aws.issued_queue) == []


def test_subscribers_filter_on_kind_and_channel(aws: Sns) -> None:
    aws.notifier.send(message(NotificationKind.DONATION_THANKS, Channel.EMAIL))
    issued = message(NotificationKind.BLOOD_ISSUED, Channel.EMAIL)
    aws.notifier.send(issued)

    [delivered] = receive(aws.sqs, aws.issued_queue)
    assert json.loads(delivered["Body"])["text"] == issued.text  # raw delivery: the document itself
    attributes = {k: v["StringValue"] for k, v in delivered["MessageAttributes"].items()}
    assert attributes == {"channel": "EMAIL", "kind": "BLOOD_ISSUED"}
    assert len(receive(aws.sqs, aws.all_queue)) == 2


def test_a_non_ascii_name_travels_intact(aws: Sns) -> None:
    zoe = Contact("donor-2", "Zoë", "zoe@example.org", None)
    [email] = compose(NotificationKind.ELIGIBLE_AGAIN, zoe, BOTH, "G151726000002", FACTS)
    aws.notifier.send(email)
    [delivered] = receive(aws.sqs, aws.all_queue)
    assert json.loads(json.loads(delivered["Body"])["Message"])["text"].startswith("Dear Zoë,\n")


def _sent_sms(endpoint: str) -> list[dict[str, str]]:
    """moto keeps every SMS it accepted; its API lists them (sns -> SMS) in /moto-api/data.json."""
    with urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=5) as response:
        data = json.load(response)
    sms: list[dict[str, str]] = data.get("sns", {}).get("SMS", [])
    return sms


def test_an_sms_goes_to_the_phone_as_transactional(aws: Sns) -> None:
    sms = message(NotificationKind.DONATION_THANKS, Channel.SMS)
    message_id = aws.notifier.send(sms)

    assert aws.publishes == [
        {
            "PhoneNumber": PHONE,
            "Message": sms.text,
            "MessageAttributes": {
                "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"}
            },
        }
    ]
    assert {"message_id": message_id, "phone_number": PHONE, "message": sms.text} in _sent_sms(aws.endpoint)
    # Not through the topic: no e-mail subscriber sees an SMS.
    assert receive(aws.sqs, aws.all_queue) == []


def test_a_sender_id_is_sent_when_configured(aws: Sns, moto_server: str) -> None:
    sns = _client("sns", moto_server)
    seen: list[dict[str, Any]] = []
    sns.meta.events.register("provide-client-params.sns.Publish", lambda params, **_: seen.append(params))
    SnsNotifier(sns, aws.topic_arn, sender_id="BloodSvc").send(message(NotificationKind.APPEAL, Channel.SMS))
    assert seen[0]["MessageAttributes"]["AWS.SNS.SMS.SenderID"] == {
        "DataType": "String",
        "StringValue": "BloodSvc",
    }


def _no_personal_data(error: DependencyUnavailable, *personal: str) -> None:
    assert error.__cause__ is None
    assert error.__suppress_context__
    for value in personal:
        assert value not in str(error)
        assert value not in repr(error.args)


def test_a_refused_publish_is_unavailable_without_the_number(aws: Sns) -> None:
    # moto's E.164 check takes the "+" as optional; a leading 0 fails it (as it does on AWS).
    bad = OutgoingMessage("donor-1", "k", NotificationKind.APPEAL, Channel.SMS, "+07700900123", "s", "text")
    with pytest.raises(DependencyUnavailable, match="InvalidParameter") as caught:
        aws.notifier.send(bad)
    _no_personal_data(caught.value, "7700900123")


def test_a_missing_topic_is_unavailable_without_the_address(aws: Sns) -> None:
    gone = SnsNotifier(aws.notifier._client, aws.topic_arn + "-missing")
    with pytest.raises(DependencyUnavailable, match="NotFound") as caught:
        gone.send(message(NotificationKind.DONATION_THANKS, Channel.EMAIL))
    _no_personal_data(caught.value, EMAIL)


def test_email_without_a_topic_configured_is_unavailable(aws: Sns) -> None:
    with pytest.raises(DependencyUnavailable, match="not configured"):
        SnsNotifier(aws.notifier._client, "").send(message(NotificationKind.DONATION_THANKS, Channel.EMAIL))


@pytest.mark.parametrize("channel", list(Channel))
def test_an_unreachable_endpoint_is_unavailable(channel: Channel) -> None:
    closed = f"http://127.0.0.1:{engines.free_port()}"  # nothing listens there
    sns = _client("sns", closed, retries={"max_attempts": 1}, connect_timeout=1, read_timeout=1)
    notifier = SnsNotifier(sns, f"arn:aws:sns:{REGION}:123456789012:donors")
    with pytest.raises(DependencyUnavailable, match="unreachable") as caught:
        notifier.send(message(NotificationKind.DONATION_THANKS, channel))
    _no_personal_data(caught.value, PHONE, EMAIL)


def test_a_shortage_alert_reaches_the_alerts_topic_with_filterable_attributes(aws: Sns) -> None:
    from bloodbank.adapters.sns import SnsAlertPublisher
    from bloodbank.domain.alerts import ShortageAlert
    from bloodbank.domain.blood import BloodGroup, Component
    from bloodbank.domain.inventory import StockStatus

    alert = ShortageAlert(
        "alert-1",
        "site-north",
        BloodGroup.O_NEG,
        Component.RED_CELLS,
        StockStatus.RED,
        StockStatus.AMBER,
        1,
        6,
        0.5,
        datetime(2026, 12, 1, 7, 30, tzinfo=UTC),
    )
    sns = _client("sns", aws.endpoint)
    red_queue = _queue(
        aws.sqs,
        sns,
        aws.topic_arn,
        f"red-only-{uuid.uuid4().hex[:8]}",
        RawMessageDelivery="true",
        FilterPolicy=json.dumps({"status": ["RED"], "bloodGroup": ["O_NEG"]}),
    )
    SnsAlertPublisher(sns, aws.topic_arn).publish(alert)
    SnsAlertPublisher(sns, aws.topic_arn).publish(replace(alert, id="alert-2", status=StockStatus.AMBER))
    [delivered] = receive(aws.sqs, red_queue)
    assert json.loads(delivered["Body"]) == {
        "id": "alert-1",
        "siteId": "site-north",
        "bloodGroup": "O_NEG",
        "component": "RED_CELLS",
        "status": "RED",
        "previousStatus": "AMBER",
        "available": 1,
        "threshold": 6,
        "daysOfSupply": 0.5,
        "raisedAt": "2026-12-01T07:30:00Z",
    }
    attributes = {k: v["StringValue"] for k, v in delivered["MessageAttributes"].items()}
    assert attributes == {
        "siteId": "site-north",
        "bloodGroup": "O_NEG",
        "component": "RED_CELLS",
        "status": "RED",
    }
    assert len(receive(aws.sqs, aws.all_queue)) == 2
