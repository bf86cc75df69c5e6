"""A campaign through the real handlers against local services: DynamoDB Local for the table and the
send ledger, the moto server for SQS (the campaign queue) and SES v1 (SendRawEmail).

The list's members are written straight to the table (the CSV import has its own bench:
recipient_import.py). Launch puts the first job on the queue; two worker threads play the Lambda
event source mapping (MaximumConcurrency 2 in the template): each receives up to 2 messages, hands
them to ``handler.campaign_worker`` as an SQS event, and deletes those not reported as failed.

The send rate: moto's SES reports 1 message/s for every account (a sandbox's rate), so the mailer is
wrapped to report the rate given here (``--rate``), as a production account's GetSendQuota would;
the pacer reads it from there, as on AWS. Printed: recipients/s against that rate (goal >= 0.95),
SES and SQS requests per 1,000 recipients, the process's peak memory.

    .venv/bin/python bench/campaign_send.py [--quick] [--recipients N] [--rate R]
"""

from __future__ import annotations

import argparse
import importlib
import os
import resource
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import _common as c

RECIPIENTS = 100_000
QUICK = 3_000
RATE = 100.0
WORKERS = 2


class ReportedRate:
    """The real SES adapter, reporting ``rate`` as the account's send rate."""

    def __init__(self, mailer: Any, rate: float) -> None:
        self._mailer = mailer
        self._rate = rate

    def send(self, email: Any) -> str:
        return str(self._mailer.send(email))

    def send_quota(self) -> Any:
        from bloodbank.domain.mail import SendQuota

        real = self._mailer.send_quota()
        return SendQuota(max_24h=-1.0, max_send_rate=self._rate, sent_last_24h=real.sent_last_24h)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help=f"{QUICK} recipients instead of {RECIPIENTS}")
    parser.add_argument("--recipients", type=int, default=None)
    parser.add_argument(
        "--rate", type=float, default=RATE, help=f"the account's send rate (default {RATE}/s)"
    )
    args = parser.parse_args()
    wanted = args.recipients or (QUICK if args.quick else RECIPIENTS)
    c.print_header(
        f"campaign_send: {wanted} recipients at {args.rate:g}/s (DynamoDB Local, moto SQS+SES)", args.quick
    )
    c.use_local_aws_env()

    calls: Counter[str] = Counter()
    c.count_aws_calls(calls)

    from bloodbank.local import engines

    with c.workdir("campaign") as wd, c.dynamodb_local(wd) as ddb_url:
        moto_port = engines.free_port()
        moto = engines.moto_server(moto_port, wd / "moto.log")
        moto.start()
        try:
            run(ddb_url, f"http://127.0.0.1:{moto_port}", wanted, args.rate, calls)
        finally:
            moto.stop()


def run(ddb_url: str, moto_url: str, wanted: int, rate: float, calls: Counter[str]) -> None:
    from bloodbank.adapters.provisioning import client
    from bloodbank.domain.identity import Group, Identity
    from bloodbank.domain.recipients import ImportCounts, ListMember, ListStatus, RecipientList
    from bloodbank.fakes import InMemoryFieldCipher, StaticKeySet
    from bloodbank.local import stack
    from bloodbank.settings import Settings

    region = "us-east-1"
    sqs = client("sqs", moto_url, region)
    queue_url = sqs.create_queue(QueueName="bench-campaigns", Attributes={"VisibilityTimeout": "900"})[
        "QueueUrl"
    ]
    ses = client("ses", moto_url, region)
    ses.verify_email_identity(EmailAddress="appeals@bloodbank.example")
    ses.create_configuration_set(ConfigurationSet={"Name": "bloodbank"})
    table = f"bench-{uuid.uuid4().hex[:8]}"
    stack.open_table(ddb_url, region, table)
    settings = Settings(
        region=region,
        table_name=table,
        user_pool_id="us-east-1_bench",
        client_ids=frozenset({"bench"}),
        page_token_secret="a-page-token-secret-that-is-long-enough-0123",
        dynamodb_endpoint=ddb_url,
        aws_endpoint=moto_url,
        email_from="appeals@bloodbank.example",
        ses_configuration_set="bloodbank",
        campaign_queue_url=queue_url,
        public_url="https://api.bloodbank.example",
        log_level="WARNING",
    )
    os.environ.update(settings.as_env())
    os.environ["BLOODBANK_PII_KEY_ID"] = "alias/bench"
    handler = importlib.import_module("handler")
    from bloodbank.bootstrap import build_container

    container = build_container(settings, cipher=InMemoryFieldCipher(), key_source=StaticKeySet({"keys": []}))
    container.campaigns.mailer = ReportedRate(container.campaigns.mailer, rate)
    handler.container = container  # the handler module's container, with the bench's mailer

    staff = Identity("bench-staff", "bench-staff", frozenset({Group.STAFF}), "access")
    template = container.email_templates.create(
        staff,
        {
            "name": "Bench",
            "subject": "We need you, {{ first_name }}",
            "html": "<p>Dear {{ first_name }},</p><p>Please give blood.</p>"
            "<a href='{{ unsubscribe_url }}'>Stop</a>",
            "text": "Dear {{ first_name }}, please give blood. Stop: {{ unsubscribe_url }}",
        },
    )
    lists = container.campaigns.lists
    now = datetime.now(UTC)
    lists.create(
        RecipientList(
            "bench-list", "Bench", ListStatus.READY, ("first_name",), ImportCounts(), now, now, "bench"
        )
    )
    started = time.perf_counter()
    batch: list[ListMember] = []
    for n in range(wanted):
        batch.append(ListMember(f"donor{n:07d}@example.org", {"first_name": f"Donor{n}"}))
        if len(batch) == 1000:
            lists.add_members("bench-list", batch)
            batch = []
    if batch:
        lists.add_members("bench-list", batch)
    print(f"{wanted} list members written in {time.perf_counter() - started:.1f} s")

    campaign = container.campaigns.create(
        staff, {"name": "Bench", "template_id": template.id, "list_id": "bench-list"}
    )
    calls.clear()
    began = time.perf_counter()
    container.campaigns.launch(staff, campaign.id)
    done = threading.Event()
    failures: list[str] = []

    def worker() -> None:
        receiver = client("sqs", moto_url, region)
        while not done.is_set():
            messages = receiver.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=2, WaitTimeSeconds=1
            ).get("Messages", [])
            if not messages:
                continue
            event = {"Records": [sqs_record(m, queue_url) for m in messages]}
            result = handler.campaign_worker(event, None)
            failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
            failures.extend(failed)
            for m in messages:
                if m["MessageId"] not in failed:
                    receiver.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(WORKERS)]
    for thread in threads:
        thread.start()
    last = 0
    while True:
        time.sleep(2)
        found = container.campaigns.campaigns.get(campaign.id)
        stats = container.campaigns.stats(campaign.id)
        if stats.sent - last >= max(1000, wanted // 10):
            elapsed = time.perf_counter() - began
            print(f"  {stats.sent:>7} sent in {elapsed:6.1f} s ({stats.sent / elapsed:6.1f}/s)", flush=True)
            last = stats.sent
        if found is not None and found.status.value in ("SENT", "PAUSED", "CANCELLED", "EXPIRED"):
            break
    elapsed = time.perf_counter() - began
    done.set()
    for thread in threads:
        thread.join()
    stats = container.campaigns.stats(campaign.id)
    per_second = stats.sent / elapsed
    ratio = per_second / rate
    per_k = {name: count * 1000 / max(stats.sent, 1) for name, count in sorted(calls.items())}
    ses_k = sum(v for k, v in per_k.items() if k.startswith("ses:"))
    sqs_k = sum(v for k, v in per_k.items() if k.startswith("sqs:"))
    ddb_k = sum(v for k, v in per_k.items() if k.startswith("dynamodb:"))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"\n{stats.sent} of {wanted} sent in {elapsed:.1f} s: {per_second:.1f} recipients/s at a send rate of"
        f" {rate:g}/s (ratio {ratio:.3f}); status {found.status.value if found else '?'};"
        f" job failures {len(failures)}"
    )
    print(f"per 1,000 recipients: SES {ses_k:.0f} requests, SQS {sqs_k:.0f}, DynamoDB {ddb_k:.0f}")
    for name, value in per_k.items():
        print(f"  {name:<40} {value:8.1f}")
    print(f"peak memory of this process (ru_maxrss): {peak_mb:.0f} MB")
    c.print_summary(
        "campaign_send",
        f"{per_second:.1f}/s at {rate:g}/s; SES {ses_k:.0f}, SQS {sqs_k:.0f} per 1k; {peak_mb:.0f} MB",
        round(ratio, 3),
        ">= 0.95 of the send rate",
        ratio >= 0.95,
    )


def sqs_record(message: dict[str, Any], queue_url: str) -> dict[str, Any]:
    """A message as Lambda's SQS event source hands it over."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": str(int(time.time() * 1000))},
        "messageAttributes": {},
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:bench-campaigns",
        "awsRegion": "us-east-1",
    }


if __name__ == "__main__":
    try:
        main()
    except c.BenchError as exc:
        c.fail(str(exc))
