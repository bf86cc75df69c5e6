"""Observability through the real handlers of handler.py: the EMF metrics they flush to stdout, the
JSON log lines they write (request id, level, service, trace id; no personal data, no token), and
``watch_audit_records`` with real-shaped DynamoDB stream events."""

from __future__ import annotations

import copy
import json
from types import ModuleType
from typing import Any

import pytest

from bloodbank.observability import METRICS
from tests.api.test_campaign_handlers import launched, sqs_event
from tests.api.test_donations_api import register
from tests.api.test_lambda import (
    REGISTER,
    REGISTER_INPUT,
    LambdaContext,
    graphql_post,
    header,
    http_api_v2_event,
    json_body,
)
from tests.api.test_websocket import sns_event
from tests.conftest import Api, TokenFactory, World
from tests.unit.test_ses_events import BOUNCE, KEY, RECIPIENT

TRACE = "Root=1-673f4b7e-0f1e2d3c4b5a69788796a5b4;Parent=53995c3f42cd8ad8;Sampled=1"
RECORD = "mutation($input: RecordDonationInput!) { recordDonation(input: $input) { din } }"


@pytest.fixture
def on_lambda(monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment the Lambda runtime and the template give every function."""
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "bloodbank-dev-CampaignWorkerFunction-1A2B3C")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "bloodbank")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Bloodbank/dev")
    monkeypatch.setenv("_X_AMZN_TRACE_ID", TRACE)


def emf(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith('{"_aws"')]


def logged(out: str) -> list[dict[str, Any]]:
    return [
        record
        for record in (json.loads(line) for line in out.splitlines() if line.startswith("{"))
        if "_aws" not in record
    ]


@pytest.fixture
def http_handler(handler: ModuleType, world: World) -> Any:
    """handler.http_handler as handler.py builds it, over the fakes' container."""
    from bloodbank.server import create_app

    return handler.LambdaHttp(
        create_app(world.container), world.container.metrics, lifespan="off", api_gateway_base_path="/"
    )


def only_metric(lines: list[dict[str, Any]], name: str) -> dict[str, Any]:
    [line] = [line for line in lines if name in line]
    return line


# --- metrics ---------------------------------------------------------------------------------------
def test_the_campaign_worker_flushes_its_emails_as_emf_on_stdout(
    on_lambda: None, handler: ModuleType, api: Api, world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    campaign = launched(api, world, ["a@example.org", "b@example.org", RECIPIENT])
    [materialize] = world.campaign_queue.jobs
    world.campaign_queue.jobs.clear()
    assert handler.campaign_worker(sqs_event([materialize]), LambdaContext()) == {"batchItemFailures": []}
    assert "EmailsSent" not in capsys.readouterr().out  # materializing sends nothing
    sends = list(world.campaign_queue.jobs)
    assert handler.campaign_worker(sqs_event(sends + sends), LambdaContext()) == {"batchItemFailures": []}
    out = capsys.readouterr().out
    line = only_metric(emf(out), "EmailsSent")
    [directive] = line["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "Bloodbank/dev"
    assert directive["Dimensions"] == [["service"]]
    assert directive["Metrics"] == [{"Name": "EmailsSent", "Unit": "Count"}]
    assert line["service"] == "bloodbank"
    assert line["EmailsSent"] == [3.0]  # each job delivered twice: each e-mail counted once
    assert len(world.mailer.sent) == 3

    # SES events: a bounce, delivered twice by SNS, counts once
    bounce = copy.deepcopy(BOUNCE)
    bounce["mail"]["tags"]["campaign"] = [campaign]
    assert bounce["mail"]["tags"]["recipient"] == [KEY]
    message = json.dumps(bounce)
    totals = handler.ses_events(sns_event(message, message), LambdaContext())
    assert totals == {"events": 2, "applied": 1, "unreadable": 0}
    [line] = emf(capsys.readouterr().out)
    assert line["EmailsBounced"] == [1.0]
    assert set(line) - {"_aws", "service"} <= set(METRICS)


def test_a_donation_through_the_http_handler_is_counted_after_the_response(
    on_lambda: None,
    http_handler: Any,
    api: Api,
    tokens: TokenFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    donor_id = register(api)
    capsys.readouterr()
    values = {"donorId": donor_id, "donationType": "WHOLE_BLOOD", "haemoglobinGdl": 13.4}
    event = http_api_v2_event(
        "POST",
        "/graphql",
        body=graphql_post(RECORD, {"input": values}),
        headers={"Authorization": tokens("Staff", sub="nurse-1")},
    )
    first = http_handler(event, LambdaContext())
    assert "errors" not in json_body(first), first["body"]
    refused = http_handler(event, LambdaContext())  # too soon after the first: not eligible
    assert json_body(refused)["errors"]
    [line] = emf(capsys.readouterr().out)
    assert line["DonationsRecorded"] == [1.0]
    assert line["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Bloodbank/dev"


def test_an_invocation_that_counts_nothing_prints_no_emf(
    on_lambda: None, handler: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    assert handler.campaign_scheduler({"source": "aws.events"}, LambdaContext())["started"] == 0
    assert handler.expire_units({"source": "aws.events"}, LambdaContext()) == {"expired": 0}
    assert emf(capsys.readouterr().out) == []


# --- logs ------------------------------------------------------------------------------------------
def test_a_log_line_of_an_invocation_is_json_with_its_request_id_and_no_personal_data(
    on_lambda: None,
    http_handler: Any,
    world: World,
    tokens: TokenFactory,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the table said no")

    monkeypatch.setattr(world.donors, "create", explode)
    token = tokens("Staff")
    context = LambdaContext()
    event = http_api_v2_event(
        "POST", "/graphql", body=graphql_post(REGISTER, REGISTER_INPUT), headers={"Authorization": token}
    )
    response = http_handler(event, context)
    assert header(response, "x-request-id") == context.aws_request_id
    out = capsys.readouterr().out
    [line] = [r for r in logged(out) if r.get("message") == "internal error"]
    assert line["level"] == "ERROR"
    assert line["service"] == "bloodbank"
    assert line["request_id"] == context.aws_request_id
    assert line["api_request_id"] == event["requestContext"]["requestId"]
    assert line["xray_trace_id"] == "1-673f4b7e-0f1e2d3c4b5a69788796a5b4"
    for secret in (token, token.split(".")[1], "ada@example.org", "Ada", "Okafor"):
        assert secret not in out


def test_every_record_of_an_invocation_carries_its_request_id(
    handler: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    context = LambdaContext()
    totals = handler.ses_events(
        {"Records": [{"EventSource": "aws:sns", "Sns": {"MessageId": "m-1", "Message": "nope"}}]}, context
    )
    assert totals["unreadable"] == 1
    [line] = [r for r in logged(capsys.readouterr().out) if r["message"] == "not an SES event"]
    assert (line["request_id"], line["message_id"]) == (context.aws_request_id, "m-1")


def test_the_local_server_logs_with_its_request_id_and_prints_no_emf(
    api: Api, world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    donor_id = register(api)
    values = {"donorId": donor_id, "donationType": "WHOLE_BLOOD", "haemoglobinGdl": 13.4}
    assert "errors" not in api.gql(RECORD, {"input": values}, token=api.tokens("Staff"))

    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the table said no")

    monkeypatch.setattr(world.donors, "list", explode)
    response = api.client.post(
        "/graphql",
        json={"query": "{ listDonors { items { id } } }"},
        headers={"Authorization": api.tokens("Staff"), "x-request-id": "local-request-0001"},
    )
    assert response.headers["x-request-id"] == "local-request-0001"
    out = capsys.readouterr().out
    assert emf(out) == []  # the donation's metric went to the DEBUG log, not the console
    [line] = [r for r in logged(out) if r.get("message") == "internal error"]
    assert line["request_id"] == "local-request-0001"
    assert "api_request_id" not in line


# --- the audit watcher -------------------------------------------------------------------------------
def stream_record(name: str, pk: str, sk: str, n: int) -> dict[str, Any]:
    """One record of a NEW_AND_OLD_IMAGES stream, as DynamoDB Streams hands it to Lambda."""
    keys = {"pk": {"S": pk}, "sk": {"S": sk}}
    image = {
        **keys,
        "entity": {"S": "AuditEvent"},
        "actor": {"S": "staff-1"},
        "action": {"S": "updateDonor"},
        "note": {"S": "changed by grace.hopper@example.org"},
    }
    dynamodb: dict[str, Any] = {
        "ApproximateCreationDateTime": 1795338000,
        "Keys": keys,
        "SequenceNumber": f"11100000000{n:04d}",
        "SizeBytes": 250,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    if name in ("MODIFY", "REMOVE"):
        dynamodb["OldImage"] = image
    if name in ("INSERT", "MODIFY"):
        dynamodb["NewImage"] = {**image, "action": {"S": "deleteEverything"}}
    return {
        "eventID": f"c4ca4238a0b923820dcc509a6f75849{n}",
        "eventName": name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "eu-west-2",
        "dynamodb": dynamodb,
        "eventSourceARN": (
            "arn:aws:dynamodb:eu-west-2:123456789012:table/bloodbank-dev/stream/2026-11-22T09:00:00.000"
        ),
    }


def test_the_audit_watcher_warns_of_and_counts_each_altered_audit_record(
    on_lambda: None, handler: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    event = {
        "Records": [
            stream_record("MODIFY", "AUDIT#evt-1", "AUDIT", 1),
            stream_record("REMOVE", "AUDIT#evt-2", "AUDIT", 2),
            stream_record("INSERT", "AUDIT#evt-3", "AUDIT", 3),  # written: that is what audit records are for
            stream_record("MODIFY", "DONOR#d-1", "DONOR", 4),  # not an audit record
            stream_record("REMOVE", "CONN#c-1", "CONN", 5),
        ]
    }
    context = LambdaContext()
    assert handler.watch_audit_records(event, context) == {"altered": 2}
    out = capsys.readouterr().out
    warnings = [r for r in logged(out) if r.get("message") == "audit record altered"]
    assert [(w["event_name"], w["pk"], w["sk"], w["event_id"]) for w in warnings] == [
        ("MODIFY", "AUDIT#evt-1", "AUDIT", "c4ca4238a0b923820dcc509a6f758491"),
        ("REMOVE", "AUDIT#evt-2", "AUDIT", "c4ca4238a0b923820dcc509a6f758492"),
    ]
    assert all(w["level"] == "WARNING" and w["request_id"] == context.aws_request_id for w in warnings)
    for image_content in ("grace.hopper@example.org", "deleteEverything", "updateDonor", "staff-1"):
        assert image_content not in out
    [line] = emf(out)
    assert line["AuditRecordsAltered"] == [2.0]


def test_the_audit_watcher_ignores_what_is_no_altered_audit_record(
    on_lambda: None, handler: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    odd = stream_record("MODIFY", "AUDIT#evt-9", "AUDIT", 9)
    odd["dynamodb"]["Keys"] = {"pk": {"N": "7"}}
    event = {
        "Records": [
            stream_record("INSERT", "AUDIT#evt-1", "AUDIT", 1),
            stream_record("MODIFY", "DONATION#W1", "DONATION", 2),
            odd,
            {"eventName": "REMOVE"},
        ]
    }
    assert handler.watch_audit_records(event, LambdaContext()) == {"altered": 0}
    assert handler.watch_audit_records({}, LambdaContext()) == {"altered": 0}
    out = capsys.readouterr().out
    assert "audit record altered" not in out
    assert emf(out) == []
