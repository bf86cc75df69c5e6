"""The campaign queue adapter against moto's SQS: jobs arrive whole, ten a request, and a queue that
refuses is an outage, never a silent drop."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from bloodbank.adapters.sqs import SqsQueue
from bloodbank.errors import DependencyUnavailable


@pytest.fixture
def sqs(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield boto3.client("sqs", region_name="eu-west-2")


def test_every_job_arrives_as_json_in_batches_of_ten(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="campaigns")["QueueUrl"]
    calls: list[int] = []
    sqs.meta.events.register(
        "provide-client-params.sqs.SendMessageBatch", lambda params, **_: calls.append(len(params["Entries"]))
    )
    jobs = [{"kind": "send", "campaign": "c1", "recipients": [f"r{n}"]} for n in range(23)]
    SqsQueue(sqs, url).send(jobs)
    assert calls == [10, 10, 3]
    received: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not batch:
            break
        for message in batch:
            received.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    assert sorted(received, key=lambda j: j["recipients"][0]) == sorted(
        jobs, key=lambda j: j["recipients"][0]
    )


def test_failed_entries_are_sent_again_and_a_refusal_is_an_outage() -> None:
    client = boto3.client("sqs", region_name="eu-west-2", aws_access_key_id="x", aws_secret_access_key="x")
    url = "https://sqs.eu-west-2.amazonaws.com/123456789012/campaigns"
    queue = SqsQueue(client, url)
    with Stubber(client) as stub:
        partial = {"Successful": [{"Id": "0", "MessageId": "m0", "MD5OfMessageBody": "x"}],
                   "Failed": [{"Id": "1", "SenderFault": False, "Code": "InternalError"}]}  # fmt: skip
        stub.add_response("send_message_batch", partial)
        stub.add_response(
            "send_message_batch",
            {"Successful": [{"Id": "1", "MessageId": "m1", "MD5OfMessageBody": "x"}], "Failed": []},
        )
        queue.send([{"kind": "requeue", "campaign": "a"}, {"kind": "requeue", "campaign": "b"}])
        stub.add_client_error(
            "send_message_batch", "AWS.SimpleQueueService.NonExistentQueue", http_status_code=400
        )
        with pytest.raises(DependencyUnavailable, match="NonExistentQueue"):
            queue.send([{"kind": "requeue", "campaign": "c"}])
    with pytest.raises(DependencyUnavailable, match="not configured"):
        SqsQueue(client, "").send([{"kind": "requeue"}])
