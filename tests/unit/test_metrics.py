"""Business metrics: the EMF adapter, the recording fake, and each service that counts, counting
once a change is committed, never for a refused change and never twice for a repeat."""

from __future__ import annotations

import json
import logging
import threading
import warnings
from dataclasses import replace
from typing import Any

import pytest

from bloodbank.adapters.metrics import EmfMetrics
from bloodbank.domain.alerts import NEVER
from bloodbank.domain.blood import BloodGroup, Component
from bloodbank.domain.campaigns import BounceType, DeliveryEventKind
from bloodbank.domain.identity import Group, Identity
from bloodbank.domain.inventory import LevelKey, StockStatus, Threshold, WastageReason, level
from bloodbank.errors import AppError, NotEligible
from bloodbank.fakes import RecordingMailer, RecordingMetrics, RecordingQueue
from bloodbank.observability import METRICS
from tests.conftest import World
from tests.unit.test_alerts import set_par_four
from tests.unit.test_campaign_sending import STAFF as CAMPAIGN_STAFF
from tests.unit.test_campaign_sending import Rig, event, make_rig
from tests.unit.test_donation_service import Setup
from tests.unit.test_inventory_service import ST_MARY, STAFF, order, put

ADMIN = Identity("admin-1", "admin-1", frozenset({Group.ADMINS}), "access")
EXPECTED = (
    "DonationsRecorded",
    "UnitsIssued",
    "ShortagesRaised",
    "StockRedAlerts",
    "EmailsSent",
    "EmailsBounced",
    "EmailsComplained",
    "AuditRecordsAltered",
)


def emf_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith('{"_aws"')]


def test_the_metric_names_are_the_published_ones() -> None:
    assert METRICS == EXPECTED


# --- the EMF adapter -----------------------------------------------------------------------------
def test_a_flush_writes_one_emf_line_of_the_totals(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Bloodbank/test")
    metrics = EmfMetrics(to_stdout=True)
    metrics.count("UnitsIssued", 3)
    metrics.count("UnitsIssued", 2)
    metrics.count("DonationsRecorded")
    metrics.flush()
    [line] = emf_lines(capsys.readouterr().out)
    [directive] = line["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "Bloodbank/test"
    assert directive["Dimensions"] == [["service"]]
    assert {m["Name"]: m["Unit"] for m in directive["Metrics"]} == {
        "DonationsRecorded": "Count",
        "UnitsIssued": "Count",
    }
    assert line["service"] == "bloodbank"
    assert (line["UnitsIssued"], line["DonationsRecorded"]) == ([5.0], [1.0])
    metrics.flush()  # flushed already: nothing more
    assert emf_lines(capsys.readouterr().out) == []


def test_the_namespace_defaults_to_local(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("POWERTOOLS_METRICS_NAMESPACE", raising=False)
    metrics = EmfMetrics(to_stdout=True)
    metrics.count("EmailsSent")
    metrics.flush()
    [line] = emf_lines(capsys.readouterr().out)
    assert line["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Bloodbank/local"


def test_nothing_counted_prints_nothing_and_warns_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    metrics = EmfMetrics(to_stdout=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # powertools' "No application metrics to publish" would raise
        metrics.flush()
        metrics.count("EmailsSent", 0)
        metrics.flush()
    assert emf_lines(capsys.readouterr().out) == []


def test_outside_lambda_the_emf_line_goes_to_the_debug_log(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    metrics = EmfMetrics()
    metrics.count("ShortagesRaised")
    with caplog.at_level(logging.DEBUG, logger="bloodbank.metrics"):
        metrics.flush()
    assert emf_lines(capsys.readouterr().out) == []
    [record] = [r for r in caplog.records if r.name == "bloodbank.metrics"]
    assert record.levelno == logging.DEBUG
    assert '"ShortagesRaised":[1.0]' in record.getMessage()

    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "bloodbank-api-HttpFunction")  # on Lambda: stdout
    metrics.count("ShortagesRaised")
    metrics.flush()
    assert len(emf_lines(capsys.readouterr().out)) == 1


def test_disabled_metrics_print_nothing(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    metrics = EmfMetrics(to_stdout=True)
    metrics.count("EmailsSent")
    metrics.flush()
    assert emf_lines(capsys.readouterr().out) == []


def test_metrics_never_raise_into_the_business_path(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    metrics = EmfMetrics(to_stdout=True)
    metrics.count("NoSuchMetric")  # type: ignore[arg-type]
    metrics.count("EmailsSent", -1)
    metrics.count("EmailsSent", 1.5)  # type: ignore[arg-type]
    metrics.flush()
    assert emf_lines(capsys.readouterr().out) == []

    def broken(counts: dict[str, int]) -> str:
        raise RuntimeError("serializer down")

    monkeypatch.setattr(metrics, "emf", broken)
    metrics.count("EmailsSent")
    with caplog.at_level(logging.WARNING, logger="bloodbank.metrics"):
        metrics.flush()  # logged and dropped
    assert [r.getMessage() for r in caplog.records if r.name == "bloodbank.metrics"][-1] == (
        "metrics not published"
    )
    assert emf_lines(capsys.readouterr().out) == []


def test_counts_from_many_threads_add_up(capsys: pytest.CaptureFixture[str]) -> None:
    metrics = EmfMetrics(to_stdout=True)

    def send() -> None:
        for _ in range(500):
            metrics.count("EmailsSent")

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    metrics.flush()
    [line] = emf_lines(capsys.readouterr().out)
    assert line["EmailsSent"] == [4000.0]


# --- the fake ------------------------------------------------------------------------------------
def test_the_recording_fake_keeps_each_count_and_each_flush() -> None:
    metrics = RecordingMetrics()
    metrics.flush()
    metrics.count("UnitsIssued", 2)
    metrics.count("DonationsRecorded")
    metrics.count("UnitsIssued")
    assert metrics.counted == [("UnitsIssued", 2), ("DonationsRecorded", 1), ("UnitsIssued", 1)]
    metrics.flush()
    metrics.flush()
    assert metrics.flushed == [{"UnitsIssued": 3, "DonationsRecorded": 1}]
    assert metrics.totals() == {"UnitsIssued": 3, "DonationsRecorded": 1}


# --- the services --------------------------------------------------------------------------------
@pytest.fixture
def recorded(world: World) -> RecordingMetrics:
    """The container's services counting into one recording fake."""
    metrics = RecordingMetrics()
    container = world.container
    for service in (container.donations, container.inventory, container.alerts, container.campaigns):
        service.metrics = metrics
    container.inventory.sleep = lambda _seconds: None
    return metrics


def test_the_composition_root_gives_every_counting_service_the_containers_metrics(world: World) -> None:
    container = world.container
    assert isinstance(container.metrics, EmfMetrics)
    for service in (container.donations, container.inventory, container.alerts, container.campaigns):
        assert service.metrics is container.metrics


def test_a_recorded_donation_counts_once_and_a_refused_one_not_at_all() -> None:
    s = Setup()
    s.service.metrics = metrics = RecordingMetrics()
    donor_id = s.donor()
    s.record(donor_id)
    assert metrics.counted == [("DonationsRecorded", 1)]
    s.clock.advance(days=10)
    with pytest.raises(NotEligible):
        s.record(donor_id)  # too soon: refused, nothing written
    with pytest.raises(NotEligible):
        s.record(s.donor(), haemoglobin_g_dl=11.0)
    assert metrics.counted == [("DonationsRecorded", 1)]


def test_issued_units_count_by_unit_once_per_token(world: World, recorded: RecordingMetrics) -> None:
    svc = world.container.inventory
    for _ in range(3):
        put(world)
    request = order(svc, ST_MARY, quantity=3)
    svc.fulfil(STAFF, request.id)
    assert [c for c in recorded.counted if c[0] == "UnitsIssued"] == []  # reserved is not issued
    first = svc.issue(STAFF, request.id, "tok-issue")
    assert svc.issue(STAFF, request.id, "tok-issue") == first  # the same token: replayed
    with pytest.raises(AppError):
        svc.issue(STAFF, request.id)  # nothing left to issue: refused
    assert [c for c in recorded.counted if c[0] == "UnitsIssued"] == [("UnitsIssued", 3)]


def test_shortages_count_when_raised_and_red_ones_apart(world: World, recorded: RecordingMetrics) -> None:
    inventory = world.container.inventory
    units = [put(world) for _ in range(4)]
    set_par_four(world)
    assert recorded.totals() == {}  # 4 on the shelf, par 4: GREEN
    inventory.discard(STAFF, {"unit_id": units[0].id, "reason": WastageReason.DAMAGED})  # 3: AMBER
    assert recorded.totals() == {"ShortagesRaised": 1}
    inventory.discard(STAFF, {"unit_id": units[1].id, "reason": WastageReason.DAMAGED})  # 2: still AMBER
    assert recorded.totals() == {"ShortagesRaised": 1}
    for u in units[2:]:
        inventory.discard(STAFF, {"unit_id": u.id, "reason": WastageReason.DAMAGED})  # 0: RED
    assert recorded.totals() == {"ShortagesRaised": 2, "StockRedAlerts": 1}
    for _ in range(6):
        put(world)
    world.clock.advance(minutes=31)
    inventory.expire_due()  # GREEN again: a recovery is told, but it is no shortage
    assert [a.status for a in world.alerts.published][-1] is StockStatus.GREEN
    assert recorded.totals() == {"ShortagesRaised": 2, "StockRedAlerts": 1}


def test_an_announcement_that_lost_its_race_counts_nothing(world: World, recorded: RecordingMetrics) -> None:
    alerts = world.container.alerts
    key = LevelKey("site-north", BloodGroup.O_NEG, Component.RED_CELLS)
    red = level(key, 0, 0, Threshold(par_level=4), 0)
    raised, lost = alerts.consider([(red, NEVER)])
    assert (len(raised), lost) == (1, False)
    raised, lost = alerts.consider([(red, NEVER)])  # someone announced since NEVER was read
    assert (raised, lost) == ([], True)
    assert recorded.totals() == {"ShortagesRaised": 1, "StockRedAlerts": 1}


@pytest.fixture
def rig() -> Rig:
    rig = make_rig(queue=RecordingQueue(duplicate_every=1))  # every job delivered twice
    rig.service.metrics = RecordingMetrics()
    return rig


def counted(rig: Rig) -> dict[str, int]:
    metrics = rig.service.metrics
    assert isinstance(metrics, RecordingMetrics)
    return metrics.totals()


def test_each_email_sent_counts_once_through_duplicate_jobs(rig: Rig) -> None:
    campaign_id = rig.campaign(120)
    rig.service.launch(CAMPAIGN_STAFF, campaign_id)
    rig.run()
    assert len(rig.mailer.sent) == 120
    assert counted(rig) == {"EmailsSent": 120}


def test_a_refused_send_is_not_counted() -> None:
    rig = make_rig(mailer=RecordingMailer(rejected={"donor00001@example.org": "MessageRejected"}))
    rig.service.metrics = RecordingMetrics()
    campaign_id = rig.campaign(3)
    rig.service.launch(CAMPAIGN_STAFF, campaign_id)
    rig.run()
    assert len(rig.mailer.sent) == 2
    assert counted(rig) == {"EmailsSent": 2}


def test_bounces_and_complaints_count_once_per_recipient(rig: Rig) -> None:
    campaign_id = rig.campaign(5)
    rig.service.launch(CAMPAIGN_STAFF, campaign_id)
    rig.run()
    hard = event(rig, campaign_id, 1, DeliveryEventKind.BOUNCE, BounceType.PERMANENT)
    soft = event(rig, campaign_id, 2, DeliveryEventKind.BOUNCE, BounceType.TRANSIENT)
    complaint = event(rig, campaign_id, 3, DeliveryEventKind.COMPLAINT)
    for repeat in range(2):  # SNS delivers each event again: the second changes nothing
        assert rig.service.record_event(hard) is (repeat == 0)
        assert rig.service.record_event(soft) is (repeat == 0)
        assert rig.service.record_event(complaint) is (repeat == 0)
    rig.service.record_event(event(rig, campaign_id, 4, DeliveryEventKind.DELIVERY))  # not counted
    rig.service.record_event(event(rig, campaign_id, 4, DeliveryEventKind.BOUNCE, BounceType.PERMANENT))
    unknown = replace(event(rig, campaign_id, 0, DeliveryEventKind.COMPLAINT), recipient="nobody")
    assert rig.service.record_event(unknown) is False
    assert counted(rig) == {"EmailsSent": 5, "EmailsBounced": 3, "EmailsComplained": 1}
