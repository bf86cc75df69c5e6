"""SesMailer against in-process moto (SES v1): the raw MIME message, its headers, tags and
configuration set, the send quota, and moto's simulator feedback; error mapping with botocore's Stubber."""

from __future__ import annotations

import email
import email.policy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError
from botocore.stub import Stubber
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

from bloodbank.adapters.ses import SesMailer, tag
from bloodbank.domain.campaigns import address_key
from bloodbank.domain.mail import (
    OutgoingEmail,
    QuotaExhausted,
    SendQuota,
    SendRejected,
    SendThrottled,
    unsubscribe_headers,
)
from bloodbank.domain.ses_events import parse_message
from bloodbank.errors import DependencyUnavailable
from tests.conftest import REGION

SENDER = "Blood Service <no-reply@bloodbank.example>"
TO = "ann.lee@example.org"
CAMPAIGN = "3f1c7b1e-5c4e-4d0a-9a57-1f0e2b8c9d10"
UNSUBSCRIBE = "https://api.blood.example/unsubscribe/u1.abc.def.ghi"
NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def message(to: str = TO, **changes: Any) -> OutgoingEmail:
    fields: dict[str, Any] = {
        "to": to,
        "sender": SENDER,
        "subject": "Ann, O negative is running low — can you give this week?",
        "html": "<p>Dear Ann,</p><p>Stocks of <b>O−</b> are low. Book at the Café centre.</p>",
        "text": "Dear Ann,\n\nStocks of O− are low. Book at the Café centre.\n",
        "headers": unsubscribe_headers(UNSUBSCRIBE),
        "tags": {"campaign": CAMPAIGN, "recipient": address_key(to)},
        "configuration_set": "bloodbank",
    }
    fields.update(changes)
    return OutgoingEmail(**fields)


@dataclass
class Ses:
    client: Any
    mailer: SesMailer
    requests: list[dict[str, Any]]

    def raw_sent(self) -> list[email.message.EmailMessage]:
        backend = ses_backends[DEFAULT_ACCOUNT_ID][REGION]
        return [
            email.message_from_string(m.raw_data, policy=email.policy.default)  # type: ignore[misc]
            for m in backend.sent_messages
        ]


@pytest.fixture
def ses() -> Iterator[Ses]:
    with mock_aws():
        client = boto3.client("ses", region_name=REGION)
        client.verify_domain_identity(Domain="bloodbank.example")
        client.create_configuration_set(ConfigurationSet={"Name": "bloodbank"})
        requests: list[dict[str, Any]] = []
        client.meta.events.register(
            "provide-client-params.ses.SendRawEmail", lambda params, **_: requests.append(dict(params))
        )
        yield Ses(client, SesMailer(client, clock=lambda: NOW), requests)


def test_sends_one_raw_multipart_message_with_the_one_click_headers(ses: Ses) -> None:
    message_id = ses.mailer.send(message())
    assert message_id
    [sent] = ses.raw_sent()
    assert sent["To"] == TO
    assert sent["From"] == SENDER
    assert sent["Subject"] == "Ann, O negative is running low — can you give this week?"
    assert sent["List-Unsubscribe"] == f"<{UNSUBSCRIBE}>"
    assert sent["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert sent["Message-ID"].endswith("@bloodbank.example>")
    assert sent["Date"] == "Sun, 22 Nov 2026 09:00:00 +0000"
    assert sent["X-Bloodbank-Tag-campaign"] == CAMPAIGN
    assert sent["X-Bloodbank-Tag-recipient"] == address_key(TO)
    assert sent.get_content_type() == "multipart/alternative"
    text, html = sent.iter_parts()
    assert (text.get_content_type(), html.get_content_type()) == ("text/plain", "text/html")
    assert text.get_content_charset() == html.get_content_charset() == "utf-8"
    assert "O− are low. Book at the Café centre." in text.get_content()
    assert "<b>O−</b>" in html.get_content()


def test_the_request_names_the_configuration_set_and_the_tags(ses: Ses) -> None:
    ses.mailer.send(message())
    [request] = ses.requests
    assert request["ConfigurationSetName"] == "bloodbank"
    assert request["Tags"] == [
        {"Name": "campaign", "Value": CAMPAIGN},
        {"Name": "recipient", "Value": address_key(TO)},
    ]
    assert request["Source"] == SENDER
    assert "Destinations" not in request  # SES takes the To header (moto would count it twice)
    raw = request["RawMessage"]["Data"]
    assert b"\r\n" in raw  # SMTP line endings
    assert raw.isascii()  # 7-bit safe: UTF-8 parts are encoded
    assert f"List-Unsubscribe: <{UNSUBSCRIBE}>\r\n".encode() in raw  # one line, not folded


def test_the_mailer_default_configuration_set_serves_messages_that_name_none(ses: Ses) -> None:
    SesMailer(ses.client, configuration_set="bloodbank").send(message(configuration_set=None))
    SesMailer(ses.client).send(message(configuration_set=None))
    assert [r.get("ConfigurationSetName") for r in ses.requests] == ["bloodbank", None]


def test_tags_are_made_acceptable_to_ses(ses: Ses) -> None:
    assert tag("campaign:2026/winter appeal") == "campaign_2026_winter_appeal"
    assert tag("") == "_"
    assert len(tag("x" * 300)) == 255
    ses.mailer.send(message(tags={"campaign": "c:1", "recipient": "k"}))
    assert ses.requests[0]["Tags"][0] == {"Name": "campaign", "Value": "c_1"}


def test_header_injection_is_refused_before_anything_is_sent(ses: Ses) -> None:
    with pytest.raises(SendRejected) as refused:
        ses.mailer.send(message(headers={"List-Unsubscribe": "<https://x>\r\nBcc: everyone@example.org"}))
    assert refused.value.reason == "InvalidHeader"
    assert ses.raw_sent() == []


def test_an_unverified_sender_is_rejected(ses: Ses) -> None:
    with pytest.raises(SendRejected) as refused:
        ses.mailer.send(message(sender="someone@elsewhere.example"))
    assert refused.value.reason == "MessageRejected"
    assert "elsewhere" not in str(refused.value)


def test_send_quota_is_read_from_ses(ses: Ses) -> None:
    before = ses.mailer.send_quota()
    assert before.max_send_rate > 0
    assert before.max_24h > 0
    ses.mailer.send(message())
    ses.mailer.send(message("bob@example.org"))
    assert ses.mailer.send_quota().sent_last_24h == before.sent_last_24h + 2


def test_moto_simulator_feedback_has_no_tags_so_it_is_no_campaign_event(ses: Ses) -> None:
    """moto publishes its fixed samples (moto/ses/feedback.py) to the identity's topics: no tags,
    none of our headers, its own message id. They parse, and are about no campaign."""
    sns = boto3.client("sns", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    topic = sns.create_topic(Name="ses-feedback")["TopicArn"]
    queue = sqs.create_queue(QueueName="ses-feedback")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    for kind in ("Bounce", "Complaint", "Delivery"):
        ses.client.set_identity_notification_topic(
            Identity="bloodbank.example", NotificationType=kind, SnsTopic=topic
        )
    for to in ("bounce@simulator.amazonses.com", "complaint@simulator.amazonses.com"):
        # a bare sender: moto takes the domain of a display-name source with its '>'
        ses.mailer.send(message(to, sender="no-reply@bloodbank.example"))
    received = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    messages = [json.loads(m["Body"])["Message"] for m in received]  # moto: an object, not a string
    documents = [m if isinstance(m, dict) else json.loads(m) for m in messages]
    assert sorted(next(k for k in ("bounce", "complaint") if k in d) for d in documents) == [
        "bounce",
        "complaint",
    ]
    # moto leaves its sample's placeholder as the type; the parser goes by the detail object instead
    assert {d["notificationType"] for d in documents} == {"Bounce, Complaint, or Delivery."}
    assert all("tags" not in d["mail"] for d in documents)
    assert [parse_message(m) for m in messages] == [[], []]


# --- error mapping (botocore's Stubber) -------------------------------------------------------------
@pytest.fixture
def stubbed() -> Iterator[tuple[SesMailer, Stubber]]:
    client = boto3.client("ses", region_name=REGION)
    with Stubber(client) as stubber:
        yield SesMailer(client), stubber


@pytest.mark.parametrize(
    ("code", "text", "raised", "reason"),
    [
        ("Throttling", "Maximum sending rate exceeded.", SendThrottled, None),
        ("ThrottlingException", "Rate exceeded", SendThrottled, None),
        ("Throttling", "Daily message quota exceeded.", QuotaExhausted, None),
        ("MessageRejected", "Daily message quota exceeded.", QuotaExhausted, None),
        ("AccountSendingPausedException", "Account sending paused.", QuotaExhausted, None),
        ("ConfigurationSetSendingPausedException", "Paused.", QuotaExhausted, None),
        ("MessageRejected", f"Email address is not verified: {TO}", SendRejected, "MessageRejected"),
        (
            "MailFromDomainNotVerifiedException",
            "Not verified.",
            SendRejected,
            "MailFromDomainNotVerifiedException",
        ),
        ("InvalidParameterValue", f"Illegal address: {TO}", SendRejected, "InvalidAddress"),
        ("InvalidParameterValue", "Missing final '@domain'", SendRejected, "InvalidAddress"),
        ("InvalidParameterValue", "Tag value is too long", DependencyUnavailable, None),
        (
            "ConfigurationSetDoesNotExist",
            "Configuration set <x> does not exist.",
            DependencyUnavailable,
            None,
        ),
        ("InternalFailure", "Something broke", DependencyUnavailable, None),
    ],
)
def test_send_errors_are_sorted_for_the_sender(
    stubbed: tuple[SesMailer, Stubber], code: str, text: str, raised: type[Exception], reason: str | None
) -> None:
    mailer, stubber = stubbed
    stubber.add_client_error(
        "send_raw_email", service_error_code=code, service_message=text, http_status_code=400
    )
    with pytest.raises(raised) as caught:
        mailer.send(message())
    assert TO not in str(caught.value)  # SES may quote the address: it never reaches our errors
    if reason is not None:
        assert isinstance(caught.value, SendRejected)
        assert caught.value.reason == reason


@pytest.mark.parametrize(
    "failure",
    [
        EndpointConnectionError(endpoint_url="https://email.us-east-1.amazonaws.com"),
        ConnectTimeoutError(endpoint_url="x"),
    ],
)
def test_network_failures_are_unavailable(failure: Exception) -> None:
    class Unreachable:
        def send_raw_email(self, **_: Any) -> None:
            raise failure

        def get_send_quota(self) -> None:
            raise failure

    mailer = SesMailer(Unreachable())
    with pytest.raises(DependencyUnavailable, match="unreachable"):
        mailer.send(message())
    with pytest.raises(DependencyUnavailable, match="unreachable"):
        mailer.send_quota()


def test_quota_is_read_and_its_errors_are_unavailable(stubbed: tuple[SesMailer, Stubber]) -> None:
    mailer, stubber = stubbed
    stubber.add_response(
        "get_send_quota", {"Max24HourSend": 50000.0, "MaxSendRate": 14.0, "SentLast24Hours": 120.0}
    )
    stubber.add_client_error("get_send_quota", service_error_code="Throttling", http_status_code=400)
    assert mailer.send_quota() == SendQuota(50000.0, 14.0, 120.0)
    with pytest.raises(DependencyUnavailable, match="GetSendQuota"):
        mailer.send_quota()
