"""Every key string of the single table is spelled here, and only here.

Item keys are ``pk``/``sk``; three overloaded global secondary indexes (``gsi1``..``gsi3``) serve
the list patterns. ``ACCESS_PATTERNS.md`` beside this module lists which pattern uses which key.
Partition keys never contain personal data in clear (an e-mail address is hashed).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime

from bloodbank.domain.blood import BloodGroup

NO_GROUP = "UNTYPED"  # donors whose blood group the lab has not determined yet


@dataclass(frozen=True, slots=True)
class Key:
    pk: str
    sk: str


@dataclass(frozen=True, slots=True)
class IndexKey:
    index: str
    pk: str
    sk: str


def _group(group: BloodGroup | None) -> str:
    return group.value if group else NO_GROUP


# --- donors -------------------------------------------------------------------------------------
def donor(donor_id: str) -> Key:
    return Key(f"DONOR#{donor_id}", "DONOR")


def donor_email(email: str) -> Key:
    digest = hashlib.sha256(email.casefold().encode()).hexdigest()
    return Key(f"DONOREMAIL#{digest}", "DONOREMAIL")


def donor_by_site(site_id: str, group: BloodGroup | None, sort_name: str, donor_id: str) -> IndexKey:
    return IndexKey("gsi1", f"DONORS#SITE#{site_id}", f"{_group(group)}#{sort_name}#{donor_id}")


def donor_by_site_prefix(
    site_id: str, group: BloodGroup | None = None, name_prefix: str | None = None
) -> tuple[str, str | None]:
    """Partition and sort-key prefix of the site's donors (of one group, and a sort-name prefix, if given)."""
    if group is None:
        return f"DONORS#SITE#{site_id}", None
    return f"DONORS#SITE#{site_id}", f"{_group(group)}#{name_prefix or ''}"


def donor_by_group(group: BloodGroup | None, sort_name: str, donor_id: str) -> IndexKey:
    return IndexKey("gsi2", f"DONORS#GROUP#{_group(group)}", f"{sort_name}#{donor_id}")


def donor_by_group_partition(group: BloodGroup | None) -> str:
    return f"DONORS#GROUP#{_group(group)}"


def all_donors(sort_name: str, donor_id: str) -> IndexKey:
    return IndexKey("gsi3", ALL_DONORS, f"{sort_name}#{donor_id}")


ALL_DONORS = "DONORS"


# --- donations, units, DIN sequences, reminders -------------------------------------------------
def _instant(at: datetime) -> str:
    """A UTC timestamp that sorts as text in time order."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def donation(donor_id: str, collected_at: datetime, din: str) -> Key:
    """In the donor's partition, ordered by collection time (newest first when read backwards)."""
    return Key(f"DONOR#{donor_id}", f"{DONATION_PREFIX}{_instant(collected_at)}#{din}")


DONATION_PREFIX = "DONATION#"


def donation_by_din(din: str) -> IndexKey:
    return IndexKey("gsi1", f"DONATION#{din}", "DONATION")


def unit(unit_id: str) -> Key:
    return Key(f"UNIT#{unit_id}", "UNIT")


def units_in_stock_by_expiry(site_id: str, expires_at: datetime, unit_id: str) -> IndexKey:
    """Units still in stock at a site, first to expire first (sparse: set only while in stock)."""
    return IndexKey("gsi1", f"STOCK#SITE#{site_id}", f"{_instant(expires_at)}#{unit_id}")


def din_sequence(facility_code: str, year: int) -> Key:
    """The last sequence number given out for a facility and year (an atomic counter)."""
    return Key(f"DINSEQ#{facility_code}#{year % 100:02d}", "DINSEQ")


def reminder(due: date, donor_id: str, din: str) -> Key:
    """An "eligible again" reminder, in the partition of the day it falls due."""
    return Key(f"{REMINDER_PREFIX}{due.isoformat()}", f"{donor_id}#{din}")


def reminders_due(due: date) -> str:
    return f"{REMINDER_PREFIX}{due.isoformat()}"


REMINDER_PREFIX = "REMINDERS#"


# --- directory: sites, hospitals, hospital users ------------------------------------------------
def site(site_id: str) -> Key:
    return Key(f"SITE#{site_id}", "SITE")


def all_sites(name: str, site_id: str) -> IndexKey:
    return IndexKey("gsi3", ALL_SITES, f"{name}#{site_id}")


ALL_SITES = "SITES"


def hospital(hospital_id: str) -> Key:
    return Key(f"HOSPITAL#{hospital_id}", "HOSPITAL")


def all_hospitals(name: str, hospital_id: str) -> IndexKey:
    return IndexKey("gsi3", ALL_HOSPITALS, f"{name}#{hospital_id}")


ALL_HOSPITALS = "HOSPITALS"


def hospital_membership(user_sub: str) -> Key:
    return Key(f"USER#{user_sub}", "HOSPITAL_MEMBER")


# --- notifications ------------------------------------------------------------------------------
NOTIFY_PREFIX = "NOTIFY#"


def notification(donor_id: str, key: str) -> Key:
    """One notification's send claim, in the donor's partition (beside ``DONOR``, ``DONATION#...``)."""
    return Key(f"DONOR#{donor_id}", f"{NOTIFY_PREFIX}{key}")


# --- inventory: units, ledger, stock levels, requests, test results, idempotency --------------
LEDGER_PREFIX = "LEDGER#"


def unit_ledger(unit_id: str, version: int) -> Key:
    """One change of a unit, beside the unit in its partition, numbered by the unit's new version."""
    return Key(f"UNIT#{unit_id}", f"{LEDGER_PREFIX}{version:08d}")


def units_available(
    site_id: str, component: str, group: BloodGroup, expires_at: datetime, unit_id: str
) -> IndexKey:
    """AVAILABLE units of a site, component and group, first to expire first (sparse)."""
    return IndexKey(
        "gsi2", units_available_partition(site_id, component, group), f"{_instant(expires_at)}#{unit_id}"
    )


def units_available_partition(site_id: str, component: str, group: BloodGroup) -> str:
    return f"AVAILABLE#{site_id}#{component}#{group.value}"


def units_in_stock_partition(site_id: str) -> str:
    return f"STOCK#SITE#{site_id}"


def expiry_bound(at: datetime) -> str:
    """Sort keys of the expiry-ordered indexes below this one expire before ``at``."""
    return _instant(at)


def units_of_din(din: str, unit_id: str) -> IndexKey:
    return IndexKey("gsi3", f"DIN#{din}", f"UNIT#{unit_id}")


def units_of_din_partition(din: str) -> str:
    return f"DIN#{din}"


STOCK_LEVELS = "STOCKLEVELS"  # gsi3 partition: every site's levels and daily issue counts
LEVEL_PREFIX = "LEVEL#"
DAY_PREFIX = "DAY#"


def stock_level(site_id: str, group: BloodGroup, component: str) -> Key:
    return Key(f"STOCKLEVEL#{site_id}", f"{LEVEL_PREFIX}{group.value}#{component}")


def stock_level_index(site_id: str, group: BloodGroup, component: str) -> IndexKey:
    return IndexKey("gsi3", STOCK_LEVELS, f"{LEVEL_PREFIX}{site_id}#{group.value}#{component}")


def issued_on(site_id: str, group: BloodGroup, component: str, day: date) -> Key:
    """Units of a level issued on one day (a counter); ``DAY#`` sorts before ``LEVEL#``, so one
    Query from ``DAY#<first day>`` reads the window's counters and every level."""
    return Key(f"STOCKLEVEL#{site_id}", f"{DAY_PREFIX}{day.isoformat()}#{group.value}#{component}")


def issued_on_index(site_id: str, group: BloodGroup, component: str, day: date) -> IndexKey:
    return IndexKey(
        "gsi3", STOCK_LEVELS, f"{DAY_PREFIX}{day.isoformat()}#{site_id}#{group.value}#{component}"
    )


def stock_partition(site_id: str) -> str:
    return f"STOCKLEVEL#{site_id}"


def stock_from(day: date) -> str:
    return f"{DAY_PREFIX}{day.isoformat()}"


def blood_request(request_id: str) -> Key:
    return Key(f"REQUEST#{request_id}", "REQUEST")


def requests_of_hospital(hospital_id: str, created_at: datetime, request_id: str) -> IndexKey:
    return IndexKey(
        "gsi1", requests_of_hospital_partition(hospital_id), f"{_instant(created_at)}#{request_id}"
    )


def requests_of_hospital_partition(hospital_id: str) -> str:
    return f"REQUESTS#HOSPITAL#{hospital_id}"


def requests_by_status(status: str, needed_by: datetime, request_id: str) -> IndexKey:
    """Requests in one status, soonest needed first: the staff's work list."""
    return IndexKey("gsi2", requests_by_status_partition(status), f"{_instant(needed_by)}#{request_id}")


def requests_by_status_partition(status: str) -> str:
    return f"REQUESTS#STATUS#{status}"


ALL_REQUESTS = "REQUESTS"


def all_requests(created_at: datetime, request_id: str) -> IndexKey:
    return IndexKey("gsi3", ALL_REQUESTS, f"{_instant(created_at)}#{request_id}")


def shortage_alert(alert_id: str) -> Key:
    return Key(f"ALERT#{alert_id}", "ALERT")


def alerts_of_site(site_id: str, raised_at: datetime, alert_id: str) -> IndexKey:
    return IndexKey("gsi1", alerts_of_site_partition(site_id), f"{_instant(raised_at)}#{alert_id}")


def alerts_of_site_partition(site_id: str) -> str:
    return f"ALERTS#SITE#{site_id}"


ALL_ALERTS = "ALERTS"


def all_alerts(raised_at: datetime, alert_id: str) -> IndexKey:
    return IndexKey("gsi3", ALL_ALERTS, f"{_instant(raised_at)}#{alert_id}")


# --- API Gateway WebSocket connections and their subscriptions -----------------------------------
ALL_CONNECTIONS = "WSCONNS"
EVERY_SITE = "*"  # the index partition of subscriptions to every site's alerts


def ws_connection_partition(connection_id: str) -> str:
    return f"WSCONN#{connection_id}"


def ws_connection(connection_id: str) -> Key:
    return Key(ws_connection_partition(connection_id), "CONNECTION")


def ws_connection_index(connection_id: str) -> IndexKey:
    return IndexKey("gsi3", ALL_CONNECTIONS, connection_id)


WS_SUBSCRIPTION_PREFIX = "SUB#"


def ws_subscription(connection_id: str, subscription_id: str) -> Key:
    return Key(ws_connection_partition(connection_id), f"{WS_SUBSCRIPTION_PREFIX}{subscription_id}")


def ws_subscriptions_of_site_partition(site_id: str | None) -> str:
    return f"WSSUBS#SITE#{site_id or EVERY_SITE}"


def ws_subscription_index(site_id: str | None, connection_id: str, subscription_id: str) -> IndexKey:
    return IndexKey("gsi1", ws_subscriptions_of_site_partition(site_id), f"{connection_id}#{subscription_id}")


# --- campaigns and their send ledger -------------------------------------------------------------
STATS_SHARDS = 8  # a campaign's counters, spread so that concurrent senders rarely collide
ALL_CAMPAIGNS = "CAMPAIGNS"


def campaign(campaign_id: str) -> Key:
    return Key(f"CAMPAIGN#{campaign_id}", "CAMPAIGN")


def campaigns_by_status(status: str, at: datetime, campaign_id: str) -> IndexKey:
    """``at``: when it is due (sendAt) for SCHEDULED campaigns, else when it was created."""
    return IndexKey("gsi1", campaigns_by_status_partition(status), f"{_instant(at)}#{campaign_id}")


def campaigns_by_status_partition(status: str) -> str:
    return f"CAMPAIGNS#STATUS#{status}"


def all_campaigns(created_at: datetime, campaign_id: str) -> IndexKey:
    return IndexKey("gsi3", ALL_CAMPAIGNS, f"{_instant(created_at)}#{campaign_id}")


STATS_PREFIX = "STATS#"


def campaign_stats(campaign_id: str, shard: int) -> Key:
    return Key(campaign(campaign_id).pk, f"{STATS_PREFIX}{shard:02d}")


def stats_shard(recipient: str) -> int:
    """The counter shard a recipient's changes go to (its key is a hex digest)."""
    return int(recipient[:8], 16) % STATS_SHARDS


def campaign_chunk(campaign_id: str, chunk: int) -> Key:
    """The marker of one page of the audience put in the ledger (counted once, enqueued once)."""
    return Key(campaign(campaign_id).pk, f"CHUNK#{chunk:06d}")


def delivery(campaign_id: str, recipient: str) -> Key:
    """One recipient of one campaign: a partition each, so that sends spread over the table."""
    return Key(f"DELIVERY#{campaign_id}#{recipient}", "DELIVERY")


def deliveries_by_stage(campaign_id: str, stage: str, recipient: str) -> IndexKey:
    return IndexKey("gsi1", deliveries_by_stage_partition(campaign_id, stage), recipient)


def deliveries_by_stage_partition(campaign_id: str, stage: str) -> str:
    return f"DELIVERIES#{campaign_id}#{stage}"


def deliveries_of_campaign(campaign_id: str, recipient: str) -> IndexKey:
    return IndexKey("gsi2", deliveries_of_campaign_partition(campaign_id), recipient)


def deliveries_of_campaign_partition(campaign_id: str) -> str:
    return f"DELIVERIES#{campaign_id}"


def test_results(din: str) -> Key:
    return Key(f"TESTS#{din}", "TESTS")


def idempotency(scope: str, token: str) -> Key:
    """A mutation's client request token, per caller and operation (hashed: tokens are the client's)."""
    digest = hashlib.sha256(f"{scope}\x00{token}".encode()).hexdigest()
    return Key(f"IDEMPOTENCY#{digest}", "IDEMPOTENCY")


# --- donor appeals ------------------------------------------------------------------------------
APPEAL_SK = "APPEAL"


def appeal(donor_id: str) -> Key:
    """When the donor was last appealed to, and for which alert: one item in the donor's partition
    (beside ``DONOR``, ``DONATION#...``, ``NOTIFY#...``; no pattern reads that partition unranged)."""
    return Key(f"DONOR#{donor_id}", APPEAL_SK)


# --- campaigns: suppressed addresses -----------------------------------------------------------
SUPPRESSION_SK = "SUPPRESSION"
TRANSIENT_BOUNCES_SK = "TRANSIENT"


def suppression_partition(address_key: str) -> str:
    """An address's partition, by its ``campaigns.address_key`` (a hash: no address in any key)."""
    return f"SUPPRESS#{address_key}"


def suppression(address_key: str) -> Key:
    return Key(suppression_partition(address_key), SUPPRESSION_SK)


def transient_bounces(address_key: str) -> Key:
    """The address's transient bounce count, beside (not in) its suppression: counting never suppresses."""
    return Key(suppression_partition(address_key), TRANSIENT_BOUNCES_SK)


# --- campaigns: e-mail templates and recipient lists ---------------------------------------------
ALL_EMAIL_TEMPLATES = "TEMPLATES"
ALL_RECIPIENT_LISTS = "LISTS"
LIST_MEMBER_PREFIX = "MEMBER#"


def email_template(template_id: str) -> Key:
    return Key(f"TEMPLATE#{template_id}", "TEMPLATE")


def all_email_templates(created_at: datetime, template_id: str) -> IndexKey:
    return IndexKey("gsi3", ALL_EMAIL_TEMPLATES, f"{_instant(created_at)}#{template_id}")


def recipient_list_partition(list_id: str) -> str:
    """A list's partition: the ``LIST`` item and one ``MEMBER#<address key>`` per member."""
    return f"LIST#{list_id}"


def recipient_list(list_id: str) -> Key:
    return Key(recipient_list_partition(list_id), "LIST")


def all_recipient_lists(created_at: datetime, list_id: str) -> IndexKey:
    return IndexKey("gsi3", ALL_RECIPIENT_LISTS, f"{_instant(created_at)}#{list_id}")


def list_member(list_id: str, address_key: str) -> Key:
    """One member, keyed by its ``campaigns.address_key``: an address written twice is one item."""
    return Key(recipient_list_partition(list_id), f"{LIST_MEMBER_PREFIX}{address_key}")


# --- employees ------------------------------------------------------------------------------------
ALL_EMPLOYEES = "EMPLOYEES"


def employee(employee_id: str) -> Key:
    """A staff profile, keyed by the employee's Cognito ``sub``."""
    return Key(f"EMPLOYEE#{employee_id}", "EMPLOYEE")


def employees_by_name(sort_name: str, employee_id: str) -> IndexKey:
    """Every profile in name order: a name prefix is a ``begins_with`` on the sort key."""
    return IndexKey("gsi3", ALL_EMPLOYEES, f"{sort_name}#{employee_id}")


def employees_of_department(department_key: str, sort_name: str, employee_id: str) -> IndexKey:
    """A department's profiles in name order (``department_key``: the department's sort form)."""
    return IndexKey("gsi1", employees_of_department_partition(department_key), f"{sort_name}#{employee_id}")


def employees_of_department_partition(department_key: str) -> str:
    return f"EMPLOYEES#DEPT#{department_key}"


# --- audit trail ---------------------------------------------------------------------------------
# The infra denies UpdateItem and DeleteItem on these partitions (AuditRecordsAreAppendOnly).
AUDIT_PREFIX = "AUDIT#"
ALL_AUDIT_EVENTS = "AUDIT"


def audit_event(event_id: str) -> Key:
    return Key(f"{AUDIT_PREFIX}{event_id}", "AUDIT")


def all_audit_events(at: datetime, event_id: str) -> IndexKey:
    return IndexKey("gsi1", ALL_AUDIT_EVENTS, f"{_instant(at)}#{event_id}")


def audit_events_of_actor_partition(actor: str) -> str:
    return f"{AUDIT_PREFIX}ACTOR#{actor}"


def audit_events_of_actor(actor: str, at: datetime, event_id: str) -> IndexKey:
    return IndexKey("gsi2", audit_events_of_actor_partition(actor), f"{_instant(at)}#{event_id}")


def audit_events_of_target_partition(target_type: str, target_id: str) -> str:
    return f"{AUDIT_PREFIX}TARGET#{target_type}#{target_id}"


def audit_events_of_target(target_type: str, target_id: str, at: datetime, event_id: str) -> IndexKey:
    return IndexKey(
        "gsi3", audit_events_of_target_partition(target_type, target_id), f"{_instant(at)}#{event_id}"
    )


def audit_instant(at: datetime) -> str:
    """The sort-key form of an instant, for time-range conditions on the audit indexes."""
    return _instant(at)


# The record a write changed, for the audit trail: the GraphQL type of each item partition the
# mutations write first. Counters, ledgers and markers are never a mutation's first write.
_TARGET_TYPES = {
    "DONOR": "Donor",
    "UNIT": "BloodUnit",
    "REQUEST": "BloodRequest",
    "STOCKLEVEL": "StockLevel",
    "CAMPAIGN": "Campaign",
    "TEMPLATE": "EmailTemplate",
    "LIST": "RecipientList",
    "EMPLOYEE": "Employee",
    "TESTS": "Donation",
    "SITE": "Site",
    "HOSPITAL": "Hospital",
}


def audit_target(key: Key) -> tuple[str, str] | None:
    """(GraphQL type, id) of the record at ``key``, or None for an item that is not one."""
    prefix, _, rest = key.pk.partition("#")
    kind = _TARGET_TYPES.get(prefix)
    if kind is None or not rest:
        return None
    if prefix == "DONOR" and key.sk.startswith(DONATION_PREFIX):
        return "Donation", key.sk.rsplit("#", 1)[-1]  # DONATION#<instant>#<din>
    if prefix == "STOCKLEVEL":
        return kind, f"{rest}:{key.sk.removeprefix(LEVEL_PREFIX).replace('#', ':')}"
    return kind, rest
