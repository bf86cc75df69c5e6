"""The composition root: the one place that chooses real adapters or fakes and wires services."""

from __future__ import annotations

import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from bloodbank.adapters.broker import FanOut, LocalAlertBroker
from bloodbank.cursor import CursorCodec
from bloodbank.domain.alerts import ShortageAlert
from bloodbank.observability import DISCARDED
from bloodbank.ports import (
    AlertPublisher,
    AlertStore,
    AnnouncedLevels,
    AppealLedger,
    AuditLog,
    CampaignQueue,
    CampaignStore,
    Clock,
    ConnectionPoster,
    ConnectionStore,
    DeliveryLedger,
    DinSequences,
    DirectoryRepository,
    DocumentStore,
    DonationRepository,
    DonorRepository,
    EmailTemplates,
    EmployeeEvents,
    EmployeeRepository,
    FieldCipher,
    HealthProbe,
    IdGenerator,
    InventoryStore,
    KeySetSource,
    MailSender,
    Metrics,
    NotificationLedger,
    Notifier,
    PhotoFiles,
    PhotoRenderer,
    RecipientFiles,
    RecipientLists,
    Reminders,
    Suppressions,
    UnitRepository,
)
from bloodbank.services.alerts import AlertService
from bloodbank.services.appeals import AppealService
from bloodbank.services.audit import AuditService
from bloodbank.services.authn import Authenticator, KeySet, TokenVerifier
from bloodbank.services.campaigns import CampaignService, Sending
from bloodbank.services.documents import DocumentService
from bloodbank.services.donations import DonationService
from bloodbank.services.donors import DonorService
from bloodbank.services.email import EmailTemplateService
from bloodbank.services.employees import EmployeeService
from bloodbank.services.inventory import InventoryService
from bloodbank.services.notifications import NotificationService
from bloodbank.services.recipients import RecipientListService
from bloodbank.services.segments import DonorSegments
from bloodbank.services.unsubscribe import UnsubscribeService
from bloodbank.settings import Settings, SettingsError

log = logging.getLogger("bloodbank.bootstrap")


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_uuid() -> str:
    return str(uuid.uuid4())


class DonationStore(DinSequences, DonationRepository, UnitRepository, Reminders, Protocol):
    """One adapter serves the donation ports (DynamoDonations, InMemoryDonations)."""


class StockStore(InventoryStore, AlertStore, Protocol):
    """One adapter serves inventory and its shortage alerts (DynamoInventory, InMemoryInventory)."""


@dataclass
class Container:
    settings: Settings
    donors: DonorService
    directory: DirectoryRepository
    authenticator: Authenticator
    documents: DocumentService
    donations: DonationService
    notifications: NotificationService
    inventory: InventoryService
    alerts: AlertService
    appeals: AppealService
    connections: ConnectionStore  # API Gateway WebSocket subscriptions (bloodbank/websocket.py)
    poster: ConnectionPoster
    suppressions: Suppressions  # campaigns: addresses no campaign may mail
    mailer: MailSender  # campaigns: SES
    unsubscribe: UnsubscribeService  # /unsubscribe/{token}
    email_templates: EmailTemplateService  # campaigns: templates and previews
    recipient_lists: RecipientListService  # campaigns: uploaded recipient lists and their import
    campaigns: CampaignService  # campaigns: launch, the queue's jobs, SES events
    employees: EmployeeService  # staff profiles, their photos and search
    audit: AuditService  # the audit trail of every mutation
    clock: Clock = utc_now
    probes: list[HealthProbe] = field(default_factory=list)
    metrics: Metrics = DISCARDED  # business metrics (bloodbank.observability), flushed per invocation


class InProcessAppeals:
    """Implements ``AlertPublisher`` for the local server, where no Lambda hears the alerts topic:
    each shortage's appeal runs on a background thread, one at a time, after the mutation answered."""

    def __init__(self, appeals: AppealService) -> None:
        self._appeals = appeals
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="appeals")

    def publish(self, alert: ShortageAlert) -> None:
        if alert.is_shortage:
            self._pool.submit(self._run, alert)

    def _run(self, alert: ShortageAlert) -> None:
        try:
            report = self._appeals.appeal(alert)
        except Exception as exc:
            log.error("appeal failed", extra={"alert": alert.id, "exception": type(exc).__name__})
        else:
            log.info("appeal done", extra=report.counts())

    def drain(self) -> None:
        """Waits for the appeals submitted so far (tests)."""
        self._pool.submit(lambda: None).result()


@dataclass
class _KeySetProbe:
    """The identity provider's key set is reachable."""

    source: KeySetSource
    name: str = "cognito"

    def check(self) -> None:
        self.source.fetch()


@dataclass
class CachedProbe:
    """Remembers a success for a while, so a public /health cannot hammer a dependency."""

    probe: HealthProbe
    ttl_seconds: float = 10.0
    _ok_until: float = 0.0

    @property
    def name(self) -> str:
        return self.probe.name

    def check(self) -> None:
        if time.monotonic() < self._ok_until:
            return
        self.probe.check()
        self._ok_until = time.monotonic() + self.ttl_seconds


def _kms_cipher(settings: Settings) -> FieldCipher:
    """Personal data is never stored without its key: no key configured is a start-up error."""
    if not settings.pii_key_id:
        raise SettingsError(
            "BLOODBANK_PII_KEY_ID is not set: donors' personal data cannot be stored without it"
        )
    from bloodbank.adapters.kms import KmsFieldCipher
    from bloodbank.adapters.provisioning import LazyClient, client

    return KmsFieldCipher(
        LazyClient(lambda: client("kms", settings.aws_endpoint, settings.region)), settings.pii_key_id
    )


def _document_store(settings: Settings) -> DocumentStore:
    """The documents bucket on S3 (presigning with SigV4); without a bucket, a store that says so."""
    from bloodbank.adapters.s3_documents import S3DocumentStore, UnconfiguredDocumentStore

    if not settings.documents_bucket:
        return UnconfiguredDocumentStore()
    from bloodbank.adapters.provisioning import LazyClient, s3_client

    s3 = LazyClient(lambda: s3_client(settings.aws_endpoint, settings.region))
    return S3DocumentStore(s3, settings.documents_bucket, settings.pii_key_id)


def _recipient_files(settings: Settings) -> RecipientFiles:
    """Recipient uploads and their reports live in the documents bucket, under ``recipient-lists/``."""
    from bloodbank.adapters.s3_recipients import S3RecipientFiles, UnconfiguredRecipientFiles

    if not settings.documents_bucket:
        return UnconfiguredRecipientFiles()
    from bloodbank.adapters.provisioning import LazyClient, s3_client

    s3 = LazyClient(lambda: s3_client(settings.aws_endpoint, settings.region))
    return S3RecipientFiles(s3, settings.documents_bucket, settings.pii_key_id)


def _photo_files(settings: Settings) -> PhotoFiles:
    """Employee photos live in the documents bucket, under ``employee-photos/``."""
    from bloodbank.adapters.s3_photos import S3PhotoFiles, UnconfiguredPhotoFiles

    if not settings.documents_bucket:
        return UnconfiguredPhotoFiles()
    from bloodbank.adapters.provisioning import LazyClient, s3_client

    s3 = LazyClient(lambda: s3_client(settings.aws_endpoint, settings.region))
    return S3PhotoFiles(s3, settings.documents_bucket, settings.pii_key_id)


def build_container(
    settings: Settings,
    *,
    donors: DonorRepository | None = None,
    directory: DirectoryRepository | None = None,
    donations: DonationStore | None = None,
    inventory: StockStore | None = None,
    alert_publisher: AlertPublisher | None = None,
    cipher: FieldCipher | None = None,
    notifier: Notifier | None = None,
    ledger: NotificationLedger | None = None,
    documents: DocumentStore | None = None,
    key_source: KeySetSource | None = None,
    connections: ConnectionStore | None = None,
    poster: ConnectionPoster | None = None,
    appeal_ledger: AppealLedger | None = None,
    announced_levels: AnnouncedLevels | None = None,
    suppressions: Suppressions | None = None,
    mailer: MailSender | None = None,
    email_templates: EmailTemplates | None = None,
    recipient_lists: RecipientLists | None = None,
    recipient_files: RecipientFiles | None = None,
    campaign_store: CampaignStore | None = None,
    delivery_ledger: DeliveryLedger | None = None,
    campaign_queue: CampaignQueue | None = None,
    employees: EmployeeRepository | None = None,
    photo_files: PhotoFiles | None = None,
    photo_renderer: PhotoRenderer | None = None,
    employee_events: EmployeeEvents | None = None,
    audit_log: AuditLog | None = None,
    appeals_in_process: bool = False,
    clock: Clock = utc_now,
    new_id: IdGenerator = new_uuid,
    probes: list[HealthProbe] | None = None,
    metrics: Metrics | None = None,
) -> Container:
    """Real adapters for whatever is not passed in; tests pass fakes or moto-backed adapters."""
    cursors = CursorCodec(settings.page_token_secret)
    real_probes: list[HealthProbe] = []
    if donors is None or directory is None or donations is None or ledger is None or inventory is None:
        from bloodbank.storage.directory import DynamoDirectory
        from bloodbank.storage.donations import DynamoDonations
        from bloodbank.storage.donors import DynamoDonorRepository
        from bloodbank.storage.health import TableProbe
        from bloodbank.storage.inventory import DynamoInventory
        from bloodbank.storage.models import TableBinding, bind
        from bloodbank.storage.notifications import DynamoNotificationLedger

        binding = TableBinding(settings.table_name, settings.region, settings.dynamodb_endpoint)
        bind(binding)
        cipher = cipher or _kms_cipher(settings)
        donors = donors or DynamoDonorRepository(binding, cursors, cipher)
        directory = directory or DynamoDirectory()
        donations = donations or DynamoDonations(binding, cursors, cipher)
        ledger = ledger or DynamoNotificationLedger(binding)
        inventory = inventory or DynamoInventory(binding, cursors)
        real_probes.append(CachedProbe(TableProbe(binding)))
        if connections is None:
            from bloodbank.storage.connections import DynamoConnections

            connections = DynamoConnections(binding)
        if campaign_store is None or delivery_ledger is None:
            from bloodbank.storage.campaigns import DynamoCampaigns, DynamoDeliveries

            campaign_store = campaign_store or DynamoCampaigns(binding, cursors)
            delivery_ledger = delivery_ledger or DynamoDeliveries(binding, cursors)
        if suppressions is None:
            from bloodbank.storage.suppressions import DynamoSuppressions

            suppressions = DynamoSuppressions(binding)
        if email_templates is None or recipient_lists is None:
            from bloodbank.storage.recipients import DynamoRecipientLists
            from bloodbank.storage.templates import DynamoEmailTemplates

            email_templates = email_templates or DynamoEmailTemplates(binding, cursors)
            recipient_lists = recipient_lists or DynamoRecipientLists(binding, cursors)
        if audit_log is None:
            from bloodbank.storage.audit import DynamoAuditLog

            audit_log = DynamoAuditLog(binding, cursors)
        if employees is None:
            from bloodbank.storage.employees import DynamoEmployees

            employees = DynamoEmployees(binding, cursors, cipher)
        if appeal_ledger is None or announced_levels is None:
            from bloodbank.storage.appeals import DynamoAppeals

            appeals_store = DynamoAppeals(binding)
            appeal_ledger = appeal_ledger or appeals_store
            announced_levels = announced_levels or appeals_store
    if connections is None:  # every store was passed in: keep these in memory too
        from bloodbank.fakes import InMemoryConnections

        connections = InMemoryConnections()
    if campaign_store is None or delivery_ledger is None:  # every store was passed in
        from bloodbank.fakes import InMemoryCampaigns

        in_memory = InMemoryCampaigns()
        campaign_store = campaign_store or in_memory
        delivery_ledger = delivery_ledger or in_memory
    if campaign_queue is None:
        from bloodbank.adapters.provisioning import LazyClient, client
        from bloodbank.adapters.sqs import SqsQueue

        sqs = LazyClient(lambda: client("sqs", settings.aws_endpoint, settings.region))
        campaign_queue = SqsQueue(sqs, settings.campaign_queue_url)
    if audit_log is None:  # every store was passed in
        from bloodbank.fakes import InMemoryAuditLog

        audit_log = InMemoryAuditLog(cursors)
    if employees is None:  # every store was passed in
        from bloodbank.fakes import InMemoryEmployees

        employees = InMemoryEmployees(cursors)
    if photo_files is None:
        photo_files = _photo_files(settings)
    if photo_renderer is None:
        from bloodbank.adapters.images import PillowThumbnails

        photo_renderer = PillowThumbnails()
    if employee_events is None:
        from bloodbank.adapters.provisioning import LazyClient, client
        from bloodbank.adapters.sns import SnsEmployeeEvents

        sns_employees = LazyClient(lambda: client("sns", settings.aws_endpoint, settings.region))
        employee_events = SnsEmployeeEvents(sns_employees, settings.employee_topic_arn)
    if suppressions is None:
        from bloodbank.fakes import InMemorySuppressions

        suppressions = InMemorySuppressions()
    if mailer is None:
        from bloodbank.adapters.provisioning import LazyClient, client
        from bloodbank.adapters.ses import SesMailer

        ses = LazyClient(lambda: client("ses", settings.aws_endpoint, settings.region))
        mailer = SesMailer(ses, configuration_set=settings.ses_configuration_set)
    if email_templates is None or recipient_lists is None:  # every store was passed in
        from bloodbank.fakes import InMemoryEmailTemplates, InMemoryRecipientLists

        email_templates = email_templates or InMemoryEmailTemplates(cursors)
        recipient_lists = recipient_lists or InMemoryRecipientLists(cursors)
    if recipient_files is None:
        recipient_files = _recipient_files(settings)
    if appeal_ledger is None or announced_levels is None:
        from bloodbank.fakes import InMemoryAnnouncedLevels, InMemoryAppealLedger, InMemoryInventory

        if not isinstance(inventory, InMemoryInventory):
            raise TypeError("pass announced_levels with an inventory store of your own")
        appeal_ledger = appeal_ledger or InMemoryAppealLedger()
        announced_levels = announced_levels or InMemoryAnnouncedLevels(inventory)
    if poster is None:
        from bloodbank.adapters.apigateway import ApiGatewayConnections
        from bloodbank.adapters.provisioning import connections_client

        local = settings.aws_endpoint is not None
        poster = ApiGatewayConnections(
            lambda endpoint: connections_client(endpoint, settings.region, local=local)
        )
    if notifier is None:
        from bloodbank.adapters.provisioning import LazyClient, client
        from bloodbank.adapters.sns import SnsNotifier

        sns = LazyClient(lambda: client("sns", settings.aws_endpoint, settings.region))
        notifier = SnsNotifier(sns, settings.donor_topic_arn)
    if documents is None:
        documents = _document_store(settings)
    if key_source is None:
        from bloodbank.adapters.jwks import HttpKeySetSource

        key_source = HttpKeySetSource(settings.jwks_url)
    real_probes.append(CachedProbe(_KeySetProbe(key_source), ttl_seconds=30))
    verifier = TokenVerifier(
        KeySet(key_source), settings.token_issuer, settings.client_ids, machine_scope=settings.machine_scope
    )
    notifications = NotificationService(notifier, ledger, clock)
    broker = LocalAlertBroker()  # this process's subscriptions
    if alert_publisher is None:
        from bloodbank.adapters.provisioning import LazyClient, client
        from bloodbank.adapters.sns import SnsAlertPublisher

        sns_alerts = LazyClient(lambda: client("sns", settings.aws_endpoint, settings.region))
        alert_publisher = SnsAlertPublisher(sns_alerts, settings.alerts_topic_arn)
    appeals = AppealService(
        donors=donors,
        directory=directory,
        ledger=appeal_ledger,
        levels=announced_levels,
        notifications=notifications,
        clock=clock,
        window=timedelta(days=settings.appeal_window_days),
        period=timedelta(days=settings.appeal_period_days),
    )
    publishers: list[AlertPublisher] = [broker, alert_publisher]
    if appeals_in_process:  # the local server: no Lambda hears the alerts topic there
        publishers.append(InProcessAppeals(appeals))
    if metrics is None:
        from bloodbank.adapters.metrics import EmfMetrics

        metrics = EmfMetrics()
    alerts = AlertService(inventory, FanOut(publishers), broker, clock, new_id, metrics=metrics)
    donation_service = DonationService(
        donors=donors,
        donations=donations,
        sequences=donations,
        units=donations,
        reminders=donations,
        directory=directory,
        notifications=notifications,
        clock=clock,
        new_id=new_id,
        metrics=metrics,
    )
    unsubscribe = UnsubscribeService(
        suppressions,
        clock,
        settings.page_token_secret,
        public_url=settings.public_url,
        on_unsubscribed=lambda campaign, recipient, at: campaign_service.unsubscribed(
            campaign, recipient, at
        ),
    )
    campaign_service = CampaignService(
        campaigns=campaign_store,
        deliveries=delivery_ledger,
        queue=campaign_queue,
        templates=email_templates,
        lists=recipient_lists,
        audience_segments=DonorSegments(donors, directory, clock),
        suppressions=suppressions,
        mailer=mailer,
        sending=Sending(settings.email_from, settings.ses_configuration_set, unsubscribe.link),
        clock=clock,
        new_id=new_id,
        metrics=metrics,
    )
    return Container(
        settings=settings,
        donors=DonorService(donors, clock, new_id),
        directory=directory,
        documents=DocumentService(donors, documents, new_id),
        donations=donation_service,
        notifications=notifications,
        inventory=InventoryService(
            inventory,
            directory,
            clock,
            new_id,
            on_issued=donation_service.notify_unit_issued,
            alerts=alerts,
            metrics=metrics,
        ),
        alerts=alerts,
        appeals=appeals,
        connections=connections,
        poster=poster,
        suppressions=suppressions,
        mailer=mailer,
        unsubscribe=unsubscribe,
        campaigns=campaign_service,
        email_templates=EmailTemplateService(email_templates, clock, new_id),
        audit=AuditService(audit_log, clock, new_uuid),  # random ids, apart from the records' ids
        recipient_lists=RecipientListService(
            recipient_lists,
            recipient_files,
            documents,
            suppressions,
            clock,
            new_id,
            bucket=settings.documents_bucket,
        ),
        employees=EmployeeService(
            employees,
            documents,
            photo_files,
            photo_renderer,
            employee_events,
            clock,
            new_id,
            bucket=settings.documents_bucket,
        ),
        clock=clock,
        authenticator=Authenticator(verifier, directory),
        probes=real_probes if probes is None else probes,
        metrics=metrics,
    )
