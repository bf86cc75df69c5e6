"""Donor notifications: what compose makes of preferences and facts, and sending each message once."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from bloodbank.domain.notifications import (
    GSM7_BASIC,
    SMS_MAX_CHARS,
    Channel,
    ClaimLost,
    Contact,
    Fact,
    NotificationKind,
    NotificationPreferences,
    compose,
    gsm7,
    is_gsm7,
    message_key,
)
from bloodbank.errors import DependencyUnavailable
from bloodbank.fakes import FixedClock, InMemoryNotificationLedger, RecordingNotifier
from bloodbank.services.notifications import NotificationService

CONSENTED = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
PHONE = "+447700900123"
EMAIL = "ann.lee@example.org"
ANN = Contact("donor-1", "Ann", EMAIL, PHONE)
BOTH = NotificationPreferences(CONSENTED, frozenset(Channel))
FACTS = {
    Fact.SITE: "North Leeds Donor Centre",
    Fact.DONATION_TYPE: "whole blood",
    Fact.ELIGIBLE_ON: "22 November 2026",
    Fact.COMPONENT: "red cells",
    Fact.DONATED_ON: "3 March 2026",
}
ALL_KINDS = list(NotificationKind)


def prefs(
    *channels: Channel, kinds: frozenset[NotificationKind] | None = None, consented: bool = True
) -> NotificationPreferences:
    return NotificationPreferences(
        CONSENTED if consented else None,
        frozenset(channels),
        frozenset(NotificationKind) if kinds is None else kinds,
    )


# --- who gets what ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("case", "contact", "preferences", "expected"),
    [
        ("no consent, all channels", ANN, prefs(Channel.SMS, Channel.EMAIL, consented=False), []),
        ("default preferences: consent but no channel", ANN, NotificationPreferences(CONSENTED), []),
        ("kind turned off", ANN, prefs(Channel.EMAIL, kinds=frozenset({NotificationKind.APPEAL})), []),
        ("e-mail only", ANN, prefs(Channel.EMAIL), [Channel.EMAIL]),
        ("SMS only", ANN, prefs(Channel.SMS), [Channel.SMS]),
        ("both, SMS first", ANN, prefs(Channel.EMAIL, Channel.SMS), [Channel.SMS, Channel.EMAIL]),
        ("SMS wanted, no phone", Contact("donor-1", "Ann", EMAIL, None), prefs(Channel.SMS), []),
        (
            "both wanted, no phone",
            Contact("donor-1", "Ann", EMAIL, None),
            prefs(Channel.SMS, Channel.EMAIL),
            [Channel.EMAIL],
        ),
        ("phone not E.164", Contact("donor-1", "Ann", EMAIL, "07700 900123"), prefs(Channel.SMS), []),
        (
            "blank e-mail",
            Contact("donor-1", "Ann", "", PHONE),
            prefs(Channel.EMAIL, Channel.SMS),
            [Channel.SMS],
        ),
    ],
)
def test_channels_follow_consent_preferences_and_reachability(
    case: str, contact: Contact, preferences: NotificationPreferences, expected: list[Channel]
) -> None:
    messages = compose(NotificationKind.DONATION_THANKS, contact, preferences, "G151726000001", FACTS)
    assert [m.channel for m in messages] == expected, case
    for m in messages:
        assert m.to == (contact.phone if m.channel is Channel.SMS else contact.email)
        assert m.donor_id == contact.donor_id
        assert m.kind is NotificationKind.DONATION_THANKS


@pytest.mark.parametrize(
    ("kind", "reference", "channel", "key"),
    [
        (NotificationKind.DONATION_THANKS, "G151726000001", Channel.SMS, "DONATION_THANKS#G151726000001#SMS"),
        (NotificationKind.ELIGIBLE_AGAIN, "2026-11-22", Channel.EMAIL, "ELIGIBLE_AGAIN#2026-11-22#EMAIL"),
        (
            NotificationKind.BLOOD_ISSUED,
            "G151726000001X-RC2",
            Channel.SMS,
            "BLOOD_ISSUED#G151726000001X-RC2#SMS",
        ),
        (NotificationKind.APPEAL, "appeal-42", Channel.EMAIL, "APPEAL#appeal-42#EMAIL"),
    ],
)
def test_message_keys(kind: NotificationKind, reference: str, channel: Channel, key: str) -> None:
    assert message_key(kind, reference, channel) == key
    [message] = compose(kind, ANN, prefs(channel), reference, FACTS)
    assert message.key == key


def test_only_the_kinds_the_donor_wants() -> None:
    only_thanks = prefs(Channel.EMAIL, kinds=frozenset({NotificationKind.DONATION_THANKS}))
    sent = {k for k in ALL_KINDS if compose(k, ANN, only_thanks, "ref-1", FACTS)}
    assert sent == {NotificationKind.DONATION_THANKS}


@pytest.mark.parametrize("reference", ["", " G1", "G1 2", "a" * 129, "G1\n", "#G1"])
def test_a_reference_must_be_a_plain_identifier(reference: str) -> None:
    with pytest.raises(ValueError, match="reference"):
        compose(NotificationKind.DONATION_THANKS, ANN, BOTH, reference, FACTS)


# --- texts --------------------------------------------------------------------------------------
NAMES = [
    "Ann",
    "Zoë",  # ë is not GSM-7: spelled e
    "Renée",  # é is GSM-7
    "Łukasz",  # Ł does not decompose: spelled L
    "Seán O\u2019Neil",  # typographic apostrophe
    "李华",  # no GSM-7 spelling: greeted without a name
    "Ann 🙂",
    "Bartholomew-Maximilian Alexander",  # longer than an SMS name may be
]
FACT_SETS = [
    {},
    FACTS,
    {k: "Very Long Community Hall Name With Many Words In It, West" for k in FACTS},
    {Fact.SITE: "Zürich Spital Centre", Fact.DONATION_TYPE: "platelets"},
    {Fact.SITE: "Центр крови"},  # no GSM-7 spelling: left out of the SMS
    {Fact.SITE: "Leeds\nDonor\tCentre\x00"},
]


@pytest.mark.parametrize("kind", ALL_KINDS)
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("facts", FACT_SETS)
def test_sms_is_one_gsm7_segment_with_an_opt_out(
    kind: NotificationKind, name: str, facts: dict[str, str]
) -> None:
    [sms] = compose(kind, Contact("d", name, EMAIL, PHONE), prefs(Channel.SMS), "ref-1", facts)
    assert len(sms.text) <= SMS_MAX_CHARS
    assert is_gsm7(sms.text), [ch for ch in sms.text if ch not in GSM7_BASIC]
    assert "Reply STOP to opt out." in sms.text
    assert "\n" not in sms.text


@pytest.mark.parametrize("kind", ALL_KINDS)
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("facts", FACT_SETS)
def test_email_has_an_ascii_subject_and_an_opt_out(
    kind: NotificationKind, name: str, facts: dict[str, str]
) -> None:
    [email] = compose(kind, Contact("d", name, EMAIL, PHONE), prefs(Channel.EMAIL), "ref-1", facts)
    assert email.subject.isascii()
    assert 0 < len(email.subject) < 100
    assert name not in email.subject
    assert "notification settings in the donor app" in email.text
    assert "\x00" not in email.text
    assert "\t" not in email.text


@pytest.mark.parametrize(
    ("name", "sms_opening", "email_opening"),
    [
        ("Ann", "Thank you, Ann!", "Dear Ann,"),
        ("Zoë", "Thank you, Zoe!", "Dear Zoë,"),
        ("Łukasz", "Thank you, Lukasz!", "Dear Łukasz,"),
        ("Seán O\u2019Neil", "Thank you, Sean O'Neil!", "Dear Seán O\u2019Neil,"),
        ("李华", "Thank you!", "Dear 李华,"),
        ("Bartholomew-Maximilian Alexander", "Thank you!", "Dear Bartholomew-Maximilian Alexander,"),
    ],
)
def test_names_are_spelled_for_each_channel(name: str, sms_opening: str, email_opening: str) -> None:
    sms, email = compose(
        NotificationKind.DONATION_THANKS, Contact("d", name, EMAIL, PHONE), BOTH, "ref-1", FACTS
    )
    assert sms.text.startswith(sms_opening + " ")
    assert email.text.startswith(email_opening + "\n")


@pytest.mark.parametrize(
    ("kind", "facts", "sms"),
    [
        (
            NotificationKind.DONATION_THANKS,
            FACTS,
            "Thank you, Ann! Your whole blood donation at North Leeds Donor Centre can help save lives. "
            "Reply STOP to opt out.",
        ),
        (
            NotificationKind.DONATION_THANKS,
            {},
            "Thank you, Ann! Your donation can help save lives. Reply STOP to opt out.",
        ),
        (
            NotificationKind.ELIGIBLE_AGAIN,
            {Fact.DONATION_TYPE: "platelets", Fact.SITE: "Leeds"},
            "Good news, Ann: you can give platelets again. We would love to see you at Leeds. "
            "Book in the donor app. Reply STOP to opt out.",
        ),
        (
            # Too long with every fact: the site goes first.
            NotificationKind.ELIGIBLE_AGAIN,
            FACTS,
            "Good news, Ann: you can give whole blood again from 22 November 2026. We would love to "
            "see you. Book in the donor app. Reply STOP to opt out.",
        ),
        (
            NotificationKind.BLOOD_ISSUED,
            {Fact.COMPONENT: "red cells"},
            "Good news, Ann: we have sent red cells from your donation to a hospital, to help a "
            "patient. Thank you! Reply STOP to opt out.",
        ),
        (
            NotificationKind.BLOOD_ISSUED,
            {},
            "Good news, Ann: we have sent blood from your donation to a hospital, to help a patient. "
            "Thank you! Reply STOP to opt out.",
        ),
        (
            NotificationKind.APPEAL,
            {Fact.DONATION_TYPE: "platelets"},
            "Ann, we urgently need donations of platelets. If you are well, please book in the donor "
            "app. Reply STOP to opt out.",
        ),
    ],
)
def test_sms_texts(kind: NotificationKind, facts: dict[str, str], sms: str) -> None:
    [message] = compose(kind, ANN, prefs(Channel.SMS), "ref-1", facts)
    assert message.text == sms


@pytest.mark.parametrize("kind", ALL_KINDS)
@pytest.mark.parametrize("channel", list(Channel))
def test_no_hospital_patient_or_unknown_fact_reaches_a_donor(
    kind: NotificationKind, channel: Channel
) -> None:
    facts = {
        **FACTS,
        "hospital": "St Mary's Hospital",
        "patient": "John Smith",
        "haemoglobin": "13.5 g/dL",
        "blood_group": "O_NEG",
    }
    [message] = compose(kind, ANN, prefs(channel), "ref-1", facts)
    for secret in ("St Mary", "John Smith", "13.5", "O_NEG", "g/dL"):
        assert secret not in message.text
        assert secret not in message.subject


def test_blood_issued_never_names_where_it_went() -> None:
    [sms, email] = compose(NotificationKind.BLOOD_ISSUED, ANN, BOTH, "G1X-RC1", FACTS)
    for text in (sms.text, email.text):
        assert "a hospital" in text
        assert "red cells" in text


@pytest.mark.parametrize(
    ("value", "spelled"),
    [
        ("Zoë", "Zoe"),
        ("Renée", "Renée"),
        ("Ærøskøbing", "Ærøskøbing"),
        ("Łódź", "Lodz"),
        ("Dvořák", "Dvorak"),
        ("a\u2013b", "a-b"),
        ("李", None),
        ("€5", None),  # an extension character costs two septets: not used
        ("[x]", None),
        ("  spaced\n\tout  ", "spaced out"),
        ("", None),
        ("x" * 21, None),
    ],
)
def test_gsm7_spelling(value: str, spelled: str | None) -> None:
    assert gsm7(value, 20) == spelled


# --- sending once -------------------------------------------------------------------------------
@pytest.fixture
def notifier() -> RecordingNotifier:
    return RecordingNotifier()


@pytest.fixture
def ledger() -> InMemoryNotificationLedger:
    return InMemoryNotificationLedger()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def service(
    notifier: RecordingNotifier, ledger: InMemoryNotificationLedger, clock: FixedClock
) -> NotificationService:
    return NotificationService(notifier, ledger, clock)


def thanks(service: NotificationService, preferences: NotificationPreferences = BOTH) -> list[str]:
    return service.notify(NotificationKind.DONATION_THANKS, ANN, preferences, "G151726000001", FACTS)


KEYS = ["DONATION_THANKS#G151726000001#SMS", "DONATION_THANKS#G151726000001#EMAIL"]


def test_sends_each_message_and_records_it(
    service: NotificationService,
    notifier: RecordingNotifier,
    ledger: InMemoryNotificationLedger,
    clock: FixedClock,
) -> None:
    assert thanks(service) == KEYS
    assert [(m.channel, m.to) for m in notifier.sent] == [(Channel.SMS, PHONE), (Channel.EMAIL, EMAIL)]
    records = {key: ledger.records[("donor-1", key)] for key in KEYS}
    assert {r.status for r in records.values()} == {"SENT"}
    assert {r.message_id for r in records.values()} == {"msg-000001", "msg-000002"}
    assert {r.sent_at for r in records.values()} == {clock.now}


def test_a_retried_call_sends_nothing(service: NotificationService, notifier: RecordingNotifier) -> None:
    assert thanks(service) == KEYS
    assert thanks(service) == []
    assert len(notifier.sent) == 2


def test_no_consent_sends_and_claims_nothing(
    service: NotificationService, notifier: RecordingNotifier, ledger: InMemoryNotificationLedger
) -> None:
    assert thanks(service, prefs(Channel.SMS, Channel.EMAIL, consented=False)) == []
    assert notifier.attempts == 0
    assert ledger.records == {}


def test_a_failed_send_releases_its_claim_so_the_retry_sends_it(
    service: NotificationService, notifier: RecordingNotifier, ledger: InMemoryNotificationLedger
) -> None:
    notifier.fail_next = 1
    with pytest.raises(DependencyUnavailable):
        thanks(service, prefs(Channel.SMS))
    assert notifier.sent == []
    assert ledger.records == {}
    assert thanks(service, prefs(Channel.SMS)) == [KEYS[0]]
    assert thanks(service, prefs(Channel.SMS)) == []
    assert [m.channel for m in notifier.sent] == [Channel.SMS]


def test_one_channel_failing_does_not_hold_back_the_other(
    service: NotificationService, notifier: RecordingNotifier
) -> None:
    notifier.fail_next = 1  # the SMS, sent first
    with pytest.raises(DependencyUnavailable):
        thanks(service)
    assert [m.channel for m in notifier.sent] == [Channel.EMAIL]
    assert thanks(service) == [KEYS[0]]  # the retry sends only what is missing
    assert [m.channel for m in notifier.sent] == [Channel.EMAIL, Channel.SMS]


class _CompleteFails(InMemoryNotificationLedger):
    def complete(self, donor_id: str, key: str, message_id: str, at: datetime) -> None:
        raise DependencyUnavailable("ledger down")


def test_a_message_sent_but_not_recorded_is_not_sent_again(notifier: RecordingNotifier) -> None:
    """The crash window: the claim stays, so at most once holds."""
    ledger = _CompleteFails()
    service = NotificationService(notifier, ledger, FixedClock())
    assert thanks(service, prefs(Channel.SMS)) == [KEYS[0]]
    assert ledger.records[("donor-1", KEYS[0])].status == "CLAIMED"
    assert thanks(service, prefs(Channel.SMS)) == []
    assert len(notifier.sent) == 1


class _ReleaseFails(InMemoryNotificationLedger):
    def release(self, donor_id: str, key: str) -> None:
        raise DependencyUnavailable("ledger down")


def test_a_claim_that_cannot_be_released_keeps_the_message_from_going_twice(
    notifier: RecordingNotifier,
) -> None:
    ledger = _ReleaseFails()
    service = NotificationService(notifier, ledger, FixedClock())
    notifier.fail_next = 1
    with pytest.raises(DependencyUnavailable, match="simulated"):  # the send's error, not the ledger's
        thanks(service, prefs(Channel.SMS))
    assert thanks(service, prefs(Channel.SMS)) == []
    assert notifier.sent == []


def test_any_send_error_releases_the_claim_and_is_raised(
    ledger: InMemoryNotificationLedger, clock: FixedClock
) -> None:
    class Broken:
        def send(self, message: object) -> str:
            raise RuntimeError("bug")

    with pytest.raises(RuntimeError, match="bug"):
        thanks(NotificationService(Broken(), ledger, clock))
    assert ledger.records == {}


def test_ledger_semantics(ledger: InMemoryNotificationLedger, clock: FixedClock) -> None:
    assert ledger.claim("d", "k", clock.now)
    assert not ledger.claim("d", "k", clock.now)
    assert ledger.claim("other-donor", "k", clock.now)
    ledger.release("d", "k")
    assert ledger.claim("d", "k", clock.now)
    ledger.complete("d", "k", "m-1", clock.now)
    ledger.release("d", "k")  # a sent message stays recorded
    assert not ledger.claim("d", "k", clock.now)
    with pytest.raises(ClaimLost):
        ledger.complete("d", "k", "m-2", clock.now)
    with pytest.raises(ClaimLost):
        ledger.complete("d", "never-claimed", "m-3", clock.now)


def test_logs_carry_no_address_or_text(
    service: NotificationService, caplog: pytest.LogCaptureFixture
) -> None:
    logger = logging.getLogger("bloodbank.notifications")
    logger.addHandler(caplog.handler)  # "bloodbank" may not propagate once logs are configured
    caplog.set_level(logging.DEBUG, logger="bloodbank.notifications")
    try:
        thanks(service)
        thanks(service)
    finally:
        logger.removeHandler(caplog.handler)
    assert caplog.records
    for record in caplog.records:
        dump = repr(record.__dict__)
        for personal in (PHONE, EMAIL, "Thank you"):
            assert personal not in dump
