"""The small interfaces services depend on. Storage and adapters implement them; fakes record calls."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import IO, Generic, Protocol, TypeVar

from bloodbank.domain.alerts import NEVER, AlertFilter, Announced, ShortageAlert
from bloodbank.domain.audit import AuditEvent, AuditFilter
from bloodbank.domain.blood import BloodGroup, Component
from bloodbank.domain.campaigns import Campaign, CampaignStatus, Stats, SuppressionReason
from bloodbank.domain.deliveries import Change, Delivery, Stage
from bloodbank.domain.documents import DocumentVersion
from bloodbank.domain.donations import BloodUnit, Donation, Reminder
from bloodbank.domain.donors import Donor
from bloodbank.domain.email_templates import EmailTemplate
from bloodbank.domain.employees import Employee, EmployeeEvent, RenderedThumbnail, Search
from bloodbank.domain.filters import Expr
from bloodbank.domain.inventory import (
    BloodRequest,
    LedgerEntry,
    LevelKey,
    RequestStatus,
    TestMarker,
    TestOutcome,
    Threshold,
    UnitChange,
)
from bloodbank.domain.mail import OutgoingEmail, SendQuota
from bloodbank.domain.notifications import OutgoingMessage
from bloodbank.domain.organisations import Hospital, Site
from bloodbank.domain.recipients import ListMember, ListStatus, RecipientList
from bloodbank.domain.subscriptions import Connection, StoredSubscription
from bloodbank.domain.uploads import UploadTicket
from bloodbank.observability import MetricName

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: Sequence[T]
    next_token: str | None


class DonorRepository(Protocol):
    def get(self, donor_id: str, *, consistent: bool = False) -> Donor | None:
        """The donor, or None. ``consistent`` reads the latest write (for read-modify-write)."""

    def create(self, donor: Donor) -> None:
        """Store a new donor. Conflict if the id or e-mail is taken; BadUserInput if the site is unknown."""

    def update(self, donor: Donor, previous: Donor) -> None:
        """Replace ``previous`` by ``donor`` if nobody changed it since (Conflict otherwise)."""

    def list(self, where: Expr | None, limit: int, next_token: str | None) -> Page[Donor]: ...


class DinSequences(Protocol):
    def next(self, facility_code: str, year: int) -> int:
        """A sequence number never given out before for this facility and year (gaps are allowed)."""


class DonationRepository(Protocol):
    def record(
        self,
        donation: Donation,
        units: Sequence[BloodUnit],
        donor: Donor,
        previous: Donor,
        reminder: Reminder | None,
    ) -> None:
        """In one transaction: the donation, its units, the donor's counters and the reminder.

        Conflict if the donor changed since ``previous`` was read (another donation, an edit);
        BadUserInput if the donation's site is unknown. Nothing is written when it fails.
        """

    def page(self, donor_id: str, limit: int, next_token: str | None) -> Page[Donation]:
        """The donor's donations, newest first."""


class UnitRepository(Protocol):
    def get_many(self, unit_ids: Sequence[str]) -> list[BloodUnit]:
        """The units that exist among ``unit_ids``, in the order asked."""


class Reminders(Protocol):
    def due(self, day: date) -> list[Reminder]:
        """Reminders falling due on ``day``."""

    def done(self, reminder: Reminder) -> None:
        """Forget a reminder that was handled."""


class DirectoryRepository(Protocol):
    """Reference data: sites, hospitals, and which hospital a user acts for."""

    def sites(self) -> Sequence[Site]: ...

    def hospitals(self) -> Sequence[Hospital]: ...

    def hospital_of(self, user_sub: str) -> str | None: ...


class Clock(Protocol):
    def __call__(self) -> datetime: ...


class IdGenerator(Protocol):
    def __call__(self) -> str: ...


class Metrics(Protocol):
    """Business metrics (``bloodbank.observability``): counted once the change is committed."""

    def count(self, name: MetricName, value: int = 1) -> None:
        """Add ``value`` to the metric ``name``; never raises."""

    def flush(self) -> None:
        """Publish what was counted since the last flush (nothing if nothing was); never raises."""


class HealthProbe(Protocol):
    @property
    def name(self) -> str: ...

    def check(self) -> None:
        """Return if the dependency answers; raise with a short reason otherwise."""


class KeySetSource(Protocol):
    """Where the identity provider publishes its signing keys (a JWKS document)."""

    def fetch(self) -> dict[str, object]: ...


# --- personal data at rest ----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SealedFields:
    """Attributes of one item encrypted under one data key.

    ``wrapped_key`` is the data key encrypted by the KMS key (with the item's encryption context);
    ``fields`` maps each attribute name to its nonce + ciphertext + tag (AES-256-GCM, the
    attribute's name and the context bound as associated data).
    """

    wrapped_key: bytes
    fields: Mapping[str, bytes]


class FieldCipher(Protocol):
    """Envelope encryption of an item's personal fields. Fails closed: no key, no plaintext."""

    def seal(self, context: Mapping[str, str], fields: Mapping[str, str]) -> SealedFields:
        """Encrypt each value under a new data key bound to ``context`` (table and item key).

        Raises DependencyUnavailable when KMS cannot be used, so nothing is written in clear.
        """

    def unseal(self, context: Mapping[str, str], sealed: SealedFields) -> dict[str, str]:
        """Decrypt every field; raises DependencyUnavailable if KMS cannot be used, and
        SealBroken (bloodbank.sealing) if a value or the context was tampered with."""


# --- donor notifications ------------------------------------------------------------------------
class Notifier(Protocol):
    """Sends one message to one donor through SNS (SMS to a phone number, e-mail through a topic)."""

    def send(self, message: OutgoingMessage) -> str:
        """The provider's message id. Raises DependencyUnavailable if it could not be handed over."""


class NotificationLedger(Protocol):
    """Remembers which notifications went out, so a retried handler never sends one twice."""

    def claim(self, donor_id: str, key: str, at: datetime) -> bool:
        """True if this caller may send ``key`` now (nobody claimed it before); False if it was claimed."""

    def complete(self, donor_id: str, key: str, message_id: str, at: datetime) -> None:
        """Record that the claimed notification was handed to the provider."""

    def release(self, donor_id: str, key: str) -> None:
        """Give up a claim whose send failed, so a retry sends it."""


# --- donor documents (and other direct uploads) -------------------------------------------------


class DocumentStore(Protocol):
    """Private, versioned object storage that clients upload to and download from directly."""

    def upload_ticket(self, key: str, content_type: str, max_bytes: int, expires_in: int) -> UploadTicket:
        """A signed form for one upload to exactly ``key``: this content type, 1..max_bytes bytes,
        encrypted with the store's key, valid ``expires_in`` seconds. Uploading to a key that
        exists makes a new version. DependencyUnavailable if it cannot be signed."""

    def versions(self, prefix: str) -> list[tuple[str, DocumentVersion]]:
        """Every version of every object under ``prefix`` as (key, version): keys in order, each
        key's versions newest first; deletions are left out. DependencyUnavailable on failure."""

    def download_url(self, key: str, version_id: str, expires_in: int) -> str:
        """A link that downloads this version as an attachment for ``expires_in`` seconds."""


# --- inventory ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TestRecord:
    """The screening results and ABO/RhD typing recorded so far for one donation."""

    __test__ = False

    din: str
    results: Mapping[TestMarker, TestOutcome]
    blood_group: BloodGroup | None
    recorded_by: str
    recorded_at: datetime
    version: int = 1


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    """A mutation's ``clientRequestToken``: what was asked (fingerprint) and what it answered."""

    scope: str  # the caller and the operation
    token: str
    fingerprint: str  # a digest of the arguments: the same token with other arguments is refused
    result: str  # the id(s) of what the first call returned
    created_at: datetime


@dataclass(frozen=True, slots=True)
class InventoryWrite:
    """Everything one transaction writes: unit changes with their ledger entries and the stock
    counters they move, a hospital request (created, or replaced if its version is unchanged),
    test results, and the idempotency record of the mutation. All or nothing."""

    at: datetime
    units: Sequence[UnitChange] = ()
    request: BloodRequest | None = None
    request_version: int | None = None  # the version read; None creates the request
    tests: TestRecord | None = None
    tests_version: int | None = None  # None creates the record
    # Other requests replaced in the same transaction, each if its version (the int) is unchanged:
    # the requests of reserved units that leave stock (a reactive test result discards them).
    released: Sequence[tuple[BloodRequest, int]] = ()
    idempotency: IdempotencyRecord | None = None


@dataclass(frozen=True, slots=True)
class StockCounts:
    """One stock level as stored: counters, the threshold set by admins, issues per day."""

    key: LevelKey
    available: int
    reserved: int
    threshold: Threshold | None
    issued_by_day: Mapping[date, int]
    wasted_by_day: Mapping[date, int] = field(default_factory=dict)
    announced: Announced = NEVER  # the shortage status subscribers last heard


class InventoryStore(Protocol):
    """Units, stock levels, hospital requests and test results (DynamoInventory, InMemoryInventory)."""

    def units(self, unit_ids: Sequence[str]) -> list[BloodUnit]:
        """The units that exist among ``unit_ids``, in the order asked (one batched read)."""

    def units_of_donation(self, din: str) -> list[BloodUnit]:
        """Every unit labelled with this DIN (siblings made from one donation)."""

    def available_units(
        self, site_id: str, component: Component, group: BloodGroup, after: datetime, limit: int
    ) -> list[BloodUnit]:
        """AVAILABLE units of a site, component and group expiring after ``after``, first to expire
        first. May be slightly stale (an index): the write's conditions decide."""

    def in_stock(
        self, site_id: str, expiring_before: datetime | None, limit: int, next_token: str | None
    ) -> Page[BloodUnit]:
        """Units on a site's shelves (QUARANTINED, AVAILABLE, RESERVED), first to expire first."""

    def ledger(self, unit_id: str) -> list[LedgerEntry]:
        """The unit's changes, oldest first."""

    def commit(self, write: InventoryWrite) -> None:
        """Write it all in one transaction, or nothing: StaleWrite names what was not as read."""

    def stock(self, site_id: str | None, since: date) -> list[StockCounts]:
        """Stock levels of one site (or every site), with issues per day from ``since``."""

    def set_threshold(self, key: LevelKey, threshold: Threshold) -> None: ...

    def request(self, request_id: str) -> BloodRequest | None: ...

    def requests(
        self, hospital_id: str | None, status: RequestStatus | None, limit: int, next_token: str | None
    ) -> Page[BloodRequest]:
        """A hospital's requests newest first; or, for staff, by status (soonest needed first), or all."""

    def tests(self, din: str) -> TestRecord | None: ...

    def idempotency(self, scope: str, token: str) -> IdempotencyRecord | None: ...


# --- shortage alerts ------------------------------------------------------------------------------
class AlertStore(Protocol):
    def announce(self, alert: ShortageAlert, previous: Announced) -> bool:
        """Record the alert and make its status the level's announced one, in one transaction, if
        nobody announced anything since ``previous`` was read; False (nothing written) otherwise."""

    def alerts(self, site_id: str | None, limit: int, next_token: str | None) -> Page[ShortageAlert]:
        """Alerts newest first, of one site or of every site."""


class AlertPublisher(Protocol):
    """Hands an alert to whoever listens (SNS topic, subscriptions of this process, WebSockets)."""

    def publish(self, alert: ShortageAlert) -> None: ...


class AlertFeed(Protocol):
    """Alerts as they are raised, for the GraphQL subscriptions this process serves."""

    def subscribe(self, wanted: AlertFilter) -> AsyncIterator[ShortageAlert]:
        """Every alert matching ``wanted`` published from now on, until the iterator is closed."""


# --- WebSocket subscriptions on AWS (API Gateway) ------------------------------------------------
class ConnectionStore(Protocol):
    """API Gateway WebSocket connections and the subscriptions they hold."""

    def save_connection(self, connection: Connection) -> None: ...

    def connection(self, connection_id: str) -> Connection | None: ...

    def drop_connection(self, connection_id: str) -> None:
        """The connection and every subscription it holds; nothing if it is gone already."""

    def subscription_count(self, connection_id: str) -> int: ...

    def save_subscription(self, subscription: StoredSubscription) -> bool:
        """Store it if the connection holds no subscription of that id; False otherwise."""

    def drop_subscription(self, connection_id: str, subscription_id: str) -> None: ...

    def subscriptions_for(self, site_id: str) -> Iterator[StoredSubscription]:
        """Every subscription that may want an alert of this site (of the site, or of every site)."""

    def connections(self) -> Iterator[Connection]: ...


class ConnectionPoster(Protocol):
    """Sends to a client through API Gateway's management API (``post_to_connection``)."""

    def post(self, endpoint: str, connection_id: str, message: Mapping[str, object]) -> bool:
        """One JSON text frame; False when the connection is gone (the caller forgets it)."""

    def close(self, endpoint: str, connection_id: str) -> None:
        """Closes the connection (a gone one is no error)."""


# --- donor appeals on a shortage ------------------------------------------------------------------
class AppealLedger(Protocol):
    """At most one appeal per donor per period: a claim in the donor's record, taken before sending."""

    def claim(self, donor_id: str, alert_id: str, at: datetime, period: timedelta) -> bool:
        """True if ``alert_id`` may appeal to the donor at ``at``: nobody appealed to them in the
        ``period`` before, or it was this alert (a retried run). One conditional write: of two
        runs racing for one donor, exactly one wins. The claim is kept ``period`` after ``at``."""

    def release(self, donor_id: str, alert_id: str) -> None:
        """Give up this alert's claim (its appeal could not be sent at all); nothing if another
        alert holds the claim, or none does."""


class AnnouncedLevels(Protocol):
    """What a stock level announces now, to stop an appeal once its shortage is over."""

    def announced(self, key: LevelKey) -> Announced:
        """The level's announced status, read consistently; NEVER (GREEN) if nothing was announced."""


# --- campaigns and their send ledger -------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ChunkMarker:
    """A page of the audience in the ledger: its recipients were counted; ``enqueued`` once their
    send batches are on the queue; ``next_token`` where the next page starts (None: the last)."""

    chunk: int
    recipients: int
    enqueued: bool
    next_token: str | None


class CampaignStore(Protocol):
    def create(self, campaign: Campaign) -> None: ...

    def get(self, campaign_id: str) -> Campaign | None:
        """Read consistently (what was just written)."""

    def save(self, campaign: Campaign, previous: Campaign) -> bool:
        """Replace ``previous`` if its version is unchanged; False (nothing written) otherwise."""

    def campaigns(self, status: CampaignStatus | None, limit: int, next_token: str | None) -> Page[Campaign]:
        """Newest first; SCHEDULED ones soonest due first."""

    def due(self, now: datetime) -> list[Campaign]:
        """SCHEDULED campaigns whose sendAt has come."""

    def stats(self, campaign_id: str) -> Stats: ...

    def chunk(self, campaign_id: str, chunk: int) -> ChunkMarker | None: ...

    def count_chunk(self, campaign_id: str, marker: ChunkMarker, at: datetime) -> bool:
        """The marker and its recipients added to the counters, in one transaction, once: False if
        this chunk was counted before."""

    def chunk_enqueued(self, campaign_id: str, chunk: int) -> None: ...


class DeliveryLedger(Protocol):
    """The per-recipient send ledger (``domain.deliveries``)."""

    def add(self, deliveries: Sequence[Delivery]) -> int:
        """Put each delivery that is not in the ledger yet (never overwrites one); how many were new."""

    def delivery(self, campaign_id: str, recipient: str) -> Delivery | None:
        """Read consistently."""

    def get_many(self, campaign_id: str, recipients: Sequence[str]) -> list[Delivery]:
        """Read consistently; those not in the ledger are left out."""

    def apply(self, change: Change, previous: Delivery) -> bool:
        """Write ``change.delivery`` if ``previous.version`` is still stored, with its counter deltas
        on the campaign's stats, in one transaction; False (nothing written) if it changed."""

    def by_stage(
        self, campaign_id: str, stage: Stage | None, limit: int, next_token: str | None
    ) -> Page[Delivery]:
        """Recipients in one stage (or all), in key order."""


class CampaignQueue(Protocol):
    """The work queue of campaigns (SQS): JSON jobs, delivered at least once."""

    def send(self, jobs: Sequence[Mapping[str, object]]) -> None:
        """Every job on the queue, or an exception (none is silently dropped)."""


# --- campaigns: suppressed addresses --------------------------------------------------------------
class Suppressions(Protocol):
    """Addresses no campaign may mail (hard bounces, complaints, repeated transient bounces,
    unsubscribes), by ``campaigns.address_key``: the store holds no address."""

    def suppressed(self, keys: Sequence[str]) -> set[str]:
        """Those of ``keys`` that are suppressed (any number; read in batches)."""

    def suppress(self, key: str, reason: SuppressionReason, at: datetime) -> bool:
        """Suppress the address (the first reason stays); False if it already was."""

    def count_transient(self, key: str, at: datetime) -> int:
        """One more transient bounce of the address; the count so far, this one included."""


# --- campaigns: sending e-mail --------------------------------------------------------------------
class MailSender(Protocol):
    """Sends one e-mail through SES (raw MIME, with the configuration set and the message's tags).

    Fails with ``mail.SendThrottled`` (retry slower), ``mail.QuotaExhausted`` (the daily quota is
    spent), ``mail.SendRejected`` (never retry this message) or ``DependencyUnavailable`` (retry)."""

    def send(self, email: OutgoingEmail) -> str:
        """SES's message id of the message sent."""

    def send_quota(self) -> SendQuota: ...


# --- campaigns: e-mail templates and recipient lists ----------------------------------------------


class AuditLog(Protocol):
    """The audit trail. Records are only ever added; none is changed or removed."""

    def record(self, event: AuditEvent) -> None:
        """Store a record on its own (for a mutation whose change carried none); a repeat is a no-op."""

    def list(self, f: AuditFilter, limit: int, next_token: str | None) -> Page[AuditEvent]:
        """Records matching ``f``, newest first."""


class EmailTemplates(Protocol):
    """Stored e-mail templates (written once: a template a campaign used never changes under it)."""

    def create(self, template: EmailTemplate) -> None:
        """Store a new template; Conflict if its id is taken."""

    def get(self, template_id: str) -> EmailTemplate | None: ...

    def list(self, limit: int, next_token: str | None) -> Page[EmailTemplate]:
        """Templates, newest first."""


class RecipientLists(Protocol):
    """Recipient lists and their members, each member keyed by its address (``address_key``), so
    writing an address twice leaves one member."""

    def create(self, recipient_list: RecipientList) -> None:
        """Store a new list; Conflict if its id is taken."""

    def get(self, list_id: str) -> RecipientList | None:
        """The list as last written (a consistent read)."""

    def list(self, limit: int, next_token: str | None) -> Page[RecipientList]:
        """Lists, newest first."""

    def save(
        self, recipient_list: RecipientList, expected: Sequence[ListStatus], upload_id: str | None = None
    ) -> bool:
        """Replace the list if its status is one of ``expected`` and, when ``upload_id`` is given,
        it takes that upload; False (nothing written) otherwise."""

    def add_members(self, list_id: str, members: Sequence[ListMember]) -> None:
        """Write members (distinct addresses) in batches, retrying what the store left unprocessed;
        DependencyUnavailable if some could not be written."""

    def members(self, list_id: str, limit: int, next_token: str | None) -> Page[ListMember]:
        """A page of the list's members, in key order (stable: a page never repeats or skips one)."""


class RecipientFiles(Protocol):
    """Uploaded recipient files and their import reports, in the documents bucket."""

    def open(self, key: str) -> Iterator[bytes]:
        """The object's bytes in chunks, as they arrive (never the whole file at once). LookupError
        if there is no such object; DependencyUnavailable if it cannot be read to the end."""

    def save(self, key: str, body: IO[bytes], content_type: str) -> None:
        """Store ``body`` (read from its current position to the end, in parts) at ``key``."""

    def download_url(self, key: str, expires_in: int) -> str:
        """A link that downloads the object's latest version as an attachment for ``expires_in`` s."""


# --- employees ----------------------------------------------------------------------------------
class EmployeeRepository(Protocol):
    def get(self, employee_id: str, *, consistent: bool = False) -> Employee | None: ...

    def create(self, employee: Employee) -> None:
        """Store a new profile; Conflict if the employee already has one."""

    def save(self, employee: Employee, previous: Employee) -> None:
        """Replace ``previous`` by ``employee`` if nobody changed it since (Conflict otherwise)."""

    def search(self, wanted: Search, limit: int, next_token: str | None) -> Page[Employee]:
        """Profiles whose sort name starts with the prefix (of one department, of one status), in
        name order: one index Query a page."""


@dataclass(frozen=True, slots=True)
class StoredFile:
    data: bytes
    content_type: str


class PhotoFiles(Protocol):
    """Employee photos in the documents bucket: the uploads, read once; the thumbnails, written and
    shown through short-lived links."""

    def read(self, key: str, max_bytes: int) -> StoredFile:
        """The object, if at most ``max_bytes`` (FileTooLarge otherwise, without reading it);
        LookupError if it is gone; DependencyUnavailable on failure."""

    def write(self, key: str, data: bytes, content_type: str) -> None: ...

    def url(self, key: str, expires_in: int) -> str:
        """A link that shows the object inline for ``expires_in`` seconds."""


class FileTooLarge(Exception):
    """An object larger than the caller would read; ``size`` is its size in bytes."""

    def __init__(self, size: int) -> None:
        super().__init__(f"{size} bytes")
        self.size = size


class PhotoRenderer(Protocol):
    def render(self, data: bytes, content_type: str) -> list[RenderedThumbnail]:
        """The thumbnails of an uploaded photo, without its metadata; PhotoRejected (with the
        reason) when the bytes are not an acceptable image."""


class EmployeeEvents(Protocol):
    def publish(self, event: EmployeeEvent) -> None:
        """Announce a profile's creation or approval (DependencyUnavailable if it could not)."""
