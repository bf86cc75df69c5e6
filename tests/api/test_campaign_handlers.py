"""handler.campaign_worker, handler.ses_events and handler.campaign_scheduler with real-shaped events
(an SQS batch as the event source mapping hands it over; SES event publishing through SNS) over the
fakes' container."""

from __future__ import annotations

import copy
import json
from types import ModuleType
from typing import Any

from bloodbank.domain.campaigns import SuppressionReason, address_key
from bloodbank.domain.recipients import ImportCounts, ListMember, ListStatus, RecipientList
from tests.api.test_campaigns_api import create, template
from tests.api.test_websocket import sns_event
from tests.conftest import Api, World
from tests.unit.test_ses_events import BOUNCE, KEY, RECIPIENT


def sqs_event(jobs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"m-{n}",
                "receiptHandle": f"rh-{n}",
                "body": json.dumps(job),
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1764579600000"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:eu-west-2:123456789012:bloodbank-dev-campaigns",
                "awsRegion": "eu-west-2",
            }
            for n, job in enumerate(jobs)
        ]
    }


def launched(api: Api, world: World, members: list[str]) -> str:
    lists = world.container.campaigns.lists
    now = world.clock()
    lists.create(
        RecipientList("l1", "L", ListStatus.READY, ("first_name",), ImportCounts(), now, now, "staff-1")
    )
    lists.add_members("l1", [ListMember(email, {"first_name": "X"}) for email in members])
    campaign = create(api, name="C", templateId=template(api), listId="l1")["id"]
    api.gql("mutation($id: ID!) { launchCampaign(id: $id) { status } }", {"id": campaign},
            token=api.tokens("Staff", sub="staff-1"))  # fmt: skip
    return str(campaign)


def test_the_worker_runs_jobs_and_reports_only_the_failed_ones_back(
    handler: ModuleType, api: Api, world: World
) -> None:
    campaign = launched(api, world, ["a@example.org", "b@example.org"])
    [materialize] = world.campaign_queue.jobs
    world.campaign_queue.jobs.clear()
    broken = {"kind": "nonsense", "campaign": campaign}
    result = handler.campaign_worker(sqs_event([materialize, broken]), None)
    assert result == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
    sends = list(world.campaign_queue.jobs)
    assert [j["kind"] for j in sends] == ["send"]
    assert handler.campaign_worker(sqs_event(sends), None) == {"batchItemFailures": []}
    assert sorted(e.to for _, e in world.mailer.sent) == ["a@example.org", "b@example.org"]


def test_ses_events_move_the_recipient_and_suppress_a_hard_bounce_once(
    handler: ModuleType, api: Api, world: World
) -> None:
    campaign = launched(api, world, [RECIPIENT])
    world.campaign_queue.drain(world.container.campaigns.handle)
    bounce = copy.deepcopy(BOUNCE)
    bounce["mail"]["tags"]["campaign"] = [campaign]
    assert bounce["mail"]["tags"]["recipient"] == [KEY]
    message = json.dumps(bounce)
    totals = handler.ses_events(sns_event(message, message, "not json"), None)
    assert totals == {"events": 2, "applied": 1, "unreadable": 1}  # SNS delivered it twice
    assert world.suppressions.entries[address_key(RECIPIENT)][0] is SuppressionReason.HARD_BOUNCE
    stats = world.container.campaigns.stats(campaign)
    assert (stats.sent, stats.bounced) == (1, 1)


def test_the_scheduler_reports_what_it_did(handler: ModuleType, world: World) -> None:
    assert handler.campaign_scheduler({"source": "aws.events"}, None) == {
        "started": 0,
        "expired": 0,
        "reclaimed": 0,
    }
