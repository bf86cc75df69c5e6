"""PynamoDB models over the single table: generic keys, an ``entity`` discriminator, three GSIs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pynamodb.attributes import (
    BinaryAttribute,
    DiscriminatorAttribute,
    ListAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.connection import Connection
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from bloodbank.storage import keys


class _Gsi1(GlobalSecondaryIndex["TableItem"]):  # type: ignore[no-untyped-call]
    class Meta:
        index_name = "gsi1"
        projection = AllProjection()

    gsi1pk = UnicodeAttribute(hash_key=True)
    gsi1sk = UnicodeAttribute(range_key=True)


class _Gsi2(GlobalSecondaryIndex["TableItem"]):  # type: ignore[no-untyped-call]
    class Meta:
        index_name = "gsi2"
        projection = AllProjection()

    gsi2pk = UnicodeAttribute(hash_key=True)
    gsi2sk = UnicodeAttribute(range_key=True)


class _Gsi3(GlobalSecondaryIndex["TableItem"]):  # type: ignore[no-untyped-call]
    class Meta:
        index_name = "gsi3"
        projection = AllProjection()

    gsi3pk = UnicodeAttribute(hash_key=True)
    gsi3sk = UnicodeAttribute(range_key=True)


class TableItem(Model):
    """Every item of the table. Subclasses are told apart by ``entity``."""

    class Meta:
        table_name = "bloodbank"
        region = "us-east-1"
        host: str | None = None
        max_retry_attempts = 3

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    entity = DiscriminatorAttribute()
    gsi1pk = UnicodeAttribute(null=True)
    gsi1sk = UnicodeAttribute(null=True)
    gsi2pk = UnicodeAttribute(null=True)
    gsi2sk = UnicodeAttribute(null=True)
    gsi3pk = UnicodeAttribute(null=True)
    gsi3sk = UnicodeAttribute(null=True)

    gsi1 = _Gsi1()
    gsi2 = _Gsi2()
    gsi3 = _Gsi3()

    def set_key(self, key: keys.Key) -> None:
        self.pk, self.sk = key.pk, key.sk

    def set_index(self, key: keys.IndexKey) -> None:
        setattr(self, f"{key.index}pk", key.pk)
        setattr(self, f"{key.index}sk", key.sk)


class SealedAttribute(BinaryAttribute):
    """Ciphertext of one personal field (see FieldCipher): raw reads of the table show only this."""

    def __init__(self) -> None:
        super().__init__(null=True, legacy_encoding=False)


class DonorItem(TableItem, discriminator="Donor"):
    donor_id = UnicodeAttribute()
    first_name = UnicodeAttribute()
    last_name = UnicodeAttribute()
    email = UnicodeAttribute()
    blood_group = UnicodeAttribute(null=True)
    site_id = UnicodeAttribute()
    sex = UnicodeAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    version = NumberAttribute()
    donation_count = NumberAttribute(default=0)
    last_donation_at = UTCDateTimeAttribute(null=True)
    recent_donations = UnicodeAttribute(null=True)  # JSON [[type, collected at], ...] of the last year
    consented_at = UTCDateTimeAttribute(null=True)
    channels = UnicodeSetAttribute(null=True)
    notify_kinds = UnicodeSetAttribute(null=True)
    # Envelope encryption: the wrapped data key, then one ciphertext per personal field.
    pii_key = BinaryAttribute(null=True, legacy_encoding=False)
    date_of_birth = SealedAttribute()
    phone = SealedAttribute()
    address = SealedAttribute()
    weight_kg = SealedAttribute()
    medical_notes = SealedAttribute()
    deferrals = SealedAttribute()


class DonorEmailItem(TableItem, discriminator="DonorEmail"):
    """Claims an e-mail address for one donor, so two records cannot share it."""

    donor_id = UnicodeAttribute()


class SiteItem(TableItem, discriminator="Site"):
    site_id = UnicodeAttribute()
    name = UnicodeAttribute()
    jurisdiction = UnicodeAttribute()
    facility_code = UnicodeAttribute()
    timezone = UnicodeAttribute()


class HospitalItem(TableItem, discriminator="Hospital"):
    hospital_id = UnicodeAttribute()
    name = UnicodeAttribute()
    site_id = UnicodeAttribute()


class HospitalMemberItem(TableItem, discriminator="HospitalMember"):
    """Which hospital a Hospitals-group user acts for, keyed by the user's ``sub``."""

    user_sub = UnicodeAttribute()
    hospital_id = UnicodeAttribute()


class DonationItem(TableItem, discriminator="Donation"):
    din = UnicodeAttribute()
    donor_id = UnicodeAttribute()
    site_id = UnicodeAttribute()
    donation_type = UnicodeAttribute()
    collected_at = UTCDateTimeAttribute()
    recorded_by = UnicodeAttribute()
    unit_ids = ListAttribute(of=UnicodeAttribute)
    anticoagulant = UnicodeAttribute(null=True)
    pii_key = BinaryAttribute(null=True, legacy_encoding=False)
    haemoglobin_g_dl = SealedAttribute()


class UnitItem(TableItem, discriminator="Unit"):
    unit_id = UnicodeAttribute()
    din = UnicodeAttribute()
    component = UnicodeAttribute()
    blood_group = UnicodeAttribute(null=True)
    status = UnicodeAttribute()
    site_id = UnicodeAttribute()
    donor_id = UnicodeAttribute()
    collected_at = UTCDateTimeAttribute()
    expires_at = UTCDateTimeAttribute()
    version = NumberAttribute()
    request_id = UnicodeAttribute(null=True)
    updated_at = UTCDateTimeAttribute(null=True)


class LedgerItem(TableItem, discriminator="Ledger"):
    """One change of one unit (pk ``UNIT#<id>``, sk ``LEDGER#<version>``). Written once, never changed."""

    unit_id = UnicodeAttribute()
    version = NumberAttribute()
    at = UTCDateTimeAttribute()
    by = UnicodeAttribute()
    from_status = UnicodeAttribute()
    to_status = UnicodeAttribute()
    why = UnicodeAttribute()
    site_id = UnicodeAttribute()
    to_site_id = UnicodeAttribute(null=True)
    request_id = UnicodeAttribute(null=True)
    wastage = UnicodeAttribute(null=True)


class StockLevelItem(TableItem, discriminator="StockLevel"):
    """Counters of one site x blood group x component, moved in the transactions that move units."""

    site_id = UnicodeAttribute()
    blood_group = UnicodeAttribute()
    component = UnicodeAttribute()
    available = NumberAttribute(default=0)
    reserved = NumberAttribute(default=0)
    par_level = NumberAttribute(null=True)
    amber_days = NumberAttribute(null=True)
    red_days = NumberAttribute(null=True)
    window_days = NumberAttribute(null=True)
    # The shortage status last announced (alerts), when, and a version for announcing it once.
    announced_status = UnicodeAttribute(null=True)
    announced_at = UTCDateTimeAttribute(null=True)
    alert_version = NumberAttribute(null=True)


class AlertItem(TableItem, discriminator="ShortageAlert"):
    """A shortage alert as raised (pk ``ALERT#<id>``); listed by site and for every site."""

    alert_id = UnicodeAttribute()
    site_id = UnicodeAttribute()
    blood_group = UnicodeAttribute()
    component = UnicodeAttribute()
    status = UnicodeAttribute()
    previous_status = UnicodeAttribute()
    available = NumberAttribute()
    threshold = NumberAttribute()
    days_of_supply = NumberAttribute(null=True)
    raised_at = UTCDateTimeAttribute()


class WsConnectionItem(TableItem, discriminator="WsConnection"):
    """An API Gateway WebSocket connection (pk ``WSCONN#<id>``); no personal data, never a token."""

    connection_id = UnicodeAttribute()
    endpoint = UnicodeAttribute()
    connected_at = UTCDateTimeAttribute()
    subscriber = UnicodeAttribute(null=True)  # JSON of ``Subscriber.as_item``
    expires = NumberAttribute()  # epoch seconds: the table's TTL removes connections never closed


class WsSubscriptionItem(TableItem, discriminator="WsSubscription"):
    """A subscription a connection holds (``WSCONN#<id>`` / ``SUB#<id>``), indexed by the site it
    wants alerts of."""

    connection_id = UnicodeAttribute()
    subscription_id = UnicodeAttribute()
    endpoint = UnicodeAttribute()
    document = UnicodeAttribute()  # the subscription's GraphQL query
    variables = UnicodeAttribute(null=True)  # JSON
    operation_name = UnicodeAttribute(null=True)
    site_id = UnicodeAttribute(null=True)
    blood_group = UnicodeAttribute(null=True)
    component = UnicodeAttribute(null=True)
    subscriber = UnicodeAttribute()  # JSON of ``Subscriber.as_item``
    created_at = UTCDateTimeAttribute()
    expires = NumberAttribute()


class CampaignItem(TableItem, discriminator="Campaign"):
    """A bulk e-mail campaign (``CAMPAIGN#<id>`` / ``CAMPAIGN``); listed by status and for all."""

    campaign_id = UnicodeAttribute()
    name = UnicodeAttribute()
    template_id = UnicodeAttribute()
    audience = UnicodeAttribute()  # JSON: {"listId": ...} or {"segment": {...}}
    status = UnicodeAttribute()
    created_by = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    send_at = UTCDateTimeAttribute(null=True)
    expires_at = UTCDateTimeAttribute(null=True)
    launched_at = UTCDateTimeAttribute(null=True)
    finished_at = UTCDateTimeAttribute(null=True)
    pause_reason = UnicodeAttribute(null=True)
    materialized = NumberAttribute(null=True)  # 1 once every recipient is in the ledger
    version = NumberAttribute()


class CampaignStatsItem(TableItem, discriminator="CampaignStats"):
    """One shard of a campaign's counters (``CAMPAIGN#<id>`` / ``STATS#<nn>``), moved by ADD."""

    campaign_id = UnicodeAttribute()
    recipients = NumberAttribute(null=True)
    queued = NumberAttribute(null=True)
    sent = NumberAttribute(null=True)
    delivered = NumberAttribute(null=True)
    bounced = NumberAttribute(null=True)
    complained = NumberAttribute(null=True)
    opened = NumberAttribute(null=True)
    clicked = NumberAttribute(null=True)
    unsubscribed = NumberAttribute(null=True)
    suppressed = NumberAttribute(null=True)
    failed = NumberAttribute(null=True)


class CampaignChunkItem(TableItem, discriminator="CampaignChunk"):
    """One page of the audience put in the ledger: counted once (with the marker), then enqueued."""

    campaign_id = UnicodeAttribute()
    chunk = NumberAttribute()
    recipients = NumberAttribute()
    enqueued = NumberAttribute(null=True)  # 1 once its send batches are on the queue
    next_token = UnicodeAttribute(null=True)  # where the audience's next page starts
    at = UTCDateTimeAttribute()


class DeliveryItem(TableItem, discriminator="Delivery"):
    """One recipient of one campaign in the send ledger (``DELIVERY#<campaign>#<address key>``)."""

    campaign_id = UnicodeAttribute()
    recipient = UnicodeAttribute()
    email = UnicodeAttribute()
    variables = UnicodeAttribute(null=True)  # JSON of the template's values for this recipient
    stage = UnicodeAttribute()
    seen = UnicodeSetAttribute(null=True)
    claim = UnicodeAttribute(null=True)
    claimed_at = UTCDateTimeAttribute(null=True)
    message_id = UnicodeAttribute(null=True)
    sent_at = UTCDateTimeAttribute(null=True)
    updated_at = UTCDateTimeAttribute(null=True)
    reason = UnicodeAttribute(null=True)
    version = NumberAttribute()


class IssuedDayItem(TableItem, discriminator="IssuedDay"):
    """Units of one level issued on one day: the trailing issue rate is read from these."""

    site_id = UnicodeAttribute()
    blood_group = UnicodeAttribute()
    component = UnicodeAttribute()
    day = UnicodeAttribute()
    issued = NumberAttribute(null=True)
    wasted = NumberAttribute(null=True)  # discarded or expired
    expires = NumberAttribute(null=True)  # epoch seconds: the table's TTL removes old days


class BloodRequestItem(TableItem, discriminator="BloodRequest"):
    request_id = UnicodeAttribute()
    hospital_id = UnicodeAttribute()
    site_id = UnicodeAttribute()
    blood_group = UnicodeAttribute()
    component = UnicodeAttribute()
    quantity = NumberAttribute()
    urgency = UnicodeAttribute()
    needed_by = UTCDateTimeAttribute()
    status = UnicodeAttribute()
    unit_ids = ListAttribute(of=UnicodeAttribute, null=True)
    issued_unit_ids = ListAttribute(of=UnicodeAttribute, null=True)
    created_by = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    version = NumberAttribute()
    cancel_reason = UnicodeAttribute(null=True)


class TestResultsItem(TableItem, discriminator="TestResults"):
    __test__ = False

    din = UnicodeAttribute()
    results = UnicodeAttribute()  # JSON {marker: outcome}
    blood_group = UnicodeAttribute(null=True)
    recorded_by = UnicodeAttribute()
    recorded_at = UTCDateTimeAttribute()
    version = NumberAttribute()


class IdempotencyItem(TableItem, discriminator="Idempotency"):
    """A mutation's client request token: one effect, and the same answer when it is retried."""

    scope = UnicodeAttribute()
    fingerprint = UnicodeAttribute()
    result = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    expires = NumberAttribute(null=True)  # epoch seconds (TTL)


class DinSequenceItem(TableItem, discriminator="DinSequence"):
    """The last DIN sequence number given out for one facility and year."""

    last = NumberAttribute(default=0)


class ReminderItem(TableItem, discriminator="Reminder"):
    """Tell a donor they may donate again, on the day the interval of their donation ends."""

    donor_id = UnicodeAttribute()
    din = UnicodeAttribute()
    donation_type = UnicodeAttribute()
    due_at = UTCDateTimeAttribute()


class NotificationItem(TableItem, discriminator="Notification"):
    """A donor notification's send claim: CLAIMED while it is being sent, SENT once SNS took it.

    Holds no address and no text, only which message it was (kind, reference, channel in the key).
    """

    donor_id = UnicodeAttribute()
    notification_key = UnicodeAttribute()
    status = UnicodeAttribute()
    claimed_at = UTCDateTimeAttribute()
    message_id = UnicodeAttribute(null=True)
    sent_at = UTCDateTimeAttribute(null=True)


class EmployeeItem(TableItem, discriminator="Employee"):
    """A staff profile (``EMPLOYEE#<sub>`` / ``EMPLOYEE``); in name order on gsi3 and, with a
    department, on gsi1. The phone is sealed like donors' personal fields."""

    employee_id = UnicodeAttribute()
    email = UnicodeAttribute()
    first_name = UnicodeAttribute()
    last_name = UnicodeAttribute()
    preferred_name = UnicodeAttribute(null=True)
    job_title = UnicodeAttribute(null=True)
    department = UnicodeAttribute(null=True)
    role = UnicodeAttribute(null=True)
    status = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    created_by = UnicodeAttribute()
    approved_at = UTCDateTimeAttribute(null=True)
    approved_by = UnicodeAttribute(null=True)
    version = NumberAttribute()
    photo = UnicodeAttribute(null=True)  # JSON: upload id, processed at, thumbnails (size, key, type, bytes)
    last_upload = UnicodeAttribute(null=True)  # JSON: upload id, status, at, reason
    pii_key = BinaryAttribute(null=True, legacy_encoding=False)
    phone = SealedAttribute()


def all_models() -> list[type[TableItem]]:
    return [TableItem, *TableItem.__subclasses__()]


@dataclass(frozen=True)
class TableBinding:
    """Where the table lives: its name and region, and an endpoint for DynamoDB Local (None on AWS)."""

    name: str
    region: str
    host: str | None = None

    def connection(self) -> Connection:
        """The one connection (one botocore client) every model and transaction uses."""
        return TableItem._get_connection().connection

    def clients(self) -> list[Any]:
        """The botocore client this binding uses, for request-counting hooks."""
        return [self.connection().client]


def bind(binding: TableBinding) -> None:
    """Point every model at the binding's table, sharing one connection. One table per process."""
    for model in all_models():
        model.Meta.table_name = binding.name
        model.Meta.region = binding.region
        model.Meta.host = binding.host
        model._connection = None
    # Every entity has the table's keys and indexes, so they can share TableItem's connection:
    # one botocore client to create (and count requests on), not one per model class.
    shared = TableItem._get_connection()
    for model in all_models():
        model._connection = shared


class AppealItem(TableItem, discriminator="Appeal"):
    """The last appeal sent to a donor (``DONOR#<id>`` / ``APPEAL``): when, for which alert. A new
    alert may claim it once ``appealed_at`` is older than the appeal period. No address, no text."""

    donor_id = UnicodeAttribute()
    alert_id = UnicodeAttribute()
    appealed_at = UTCDateTimeAttribute()
    expires = NumberAttribute(null=True)  # epoch seconds (TTL): gone once the period is over


class SuppressionItem(TableItem, discriminator="Suppression"):
    """An address no campaign may mail (``SUPPRESS#<address key>`` / ``SUPPRESSION``): why and since
    when. The first reason stays. No address: the key is its hash."""

    reason = UnicodeAttribute()
    suppressed_at = UTCDateTimeAttribute()


class TransientBouncesItem(TableItem, discriminator="TransientBounces"):
    """How many transient bounces an address had (``SUPPRESS#<address key>`` / ``TRANSIENT``), made
    by the first ADD. Forgotten (TTL) a while after the last one: old soft bounces do not add up."""

    bounces = NumberAttribute(default=0)
    last_bounce_at = UTCDateTimeAttribute(null=True)
    expires = NumberAttribute(null=True)  # epoch seconds (TTL)


class EmailTemplateItem(TableItem, discriminator="EmailTemplate"):
    """An e-mail template (``TEMPLATE#<id>`` / ``TEMPLATE``), written once; listed on gsi3.

    At most 256 KiB of HTML and 128 KiB of text, so the item stays under DynamoDB's 400 KB."""

    template_id = UnicodeAttribute()
    name = UnicodeAttribute()
    subject = UnicodeAttribute()
    html = UnicodeAttribute(null=True)
    text = UnicodeAttribute(null=True)
    template_variables = UnicodeAttribute()  # JSON list, sorted
    created_at = UTCDateTimeAttribute()
    created_by = UnicodeAttribute()


class AuditEventItem(TableItem, discriminator="AuditEvent"):
    """One audit record (``AUDIT#<id>`` / ``AUDIT``), written once and never changed (the application's
    roles are denied UpdateItem and DeleteItem on ``AUDIT#`` keys). Listed newest first on gsi1
    (``AUDIT``), by actor on gsi2, by target on gsi3."""

    event_id = UnicodeAttribute()
    at = UTCDateTimeAttribute()
    actor = UnicodeAttribute()
    groups = ListAttribute(of=UnicodeAttribute)
    action = UnicodeAttribute()
    target_type = UnicodeAttribute(null=True)
    target_id = UnicodeAttribute(null=True)
    request_id = UnicodeAttribute()
    hospital_id = UnicodeAttribute(null=True)


class RecipientListItem(TableItem, discriminator="RecipientList"):
    """A recipient list (``LIST#<id>`` / ``LIST``): its import's state and counts; listed on gsi3."""

    list_id = UnicodeAttribute()
    name = UnicodeAttribute()
    status = UnicodeAttribute()
    list_variables = UnicodeAttribute()  # JSON list, in the file's column order
    rows = NumberAttribute(default=0)
    imported = NumberAttribute(default=0)
    duplicates = NumberAttribute(default=0)
    invalid = NumberAttribute(default=0)
    suppressed = NumberAttribute(default=0)
    upload_id = UnicodeAttribute(null=True)
    report_key = UnicodeAttribute(null=True)
    failure = UnicodeAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    created_by = UnicodeAttribute()


class ListMemberItem(TableItem, discriminator="ListMember"):
    """A member of a list (``LIST#<id>`` / ``MEMBER#<address key>``): the address, to send to, and
    the values of its row, to personalize with."""

    email = UnicodeAttribute()
    member_variables = UnicodeAttribute(null=True)  # JSON object of strings
