"""``bloodbank serve``: the whole system on one machine, with Amazon's and moto's engines.

The stack's facts (ports, user pool, app client) go to ``<state dir>/stack.json`` so that
``bloodbank token`` and ``bloodbank seed`` can find a running stack. The demo hospital integration's
app client (client-credentials grant) goes to ``<state dir>/hospital-client.json`` (mode 600).
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import secrets
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bloodbank.adapters import provisioning
from bloodbank.local import engines, seed
from bloodbank.local.engines import StackError
from bloodbank.settings import Settings

if TYPE_CHECKING:
    from bloodbank.storage.directory import DynamoDirectory
    from bloodbank.storage.models import TableBinding

REGION = "us-east-1"
TABLE = "bloodbank"
POOL_NAME = "bloodbank-local"
PII_KEY_ALIAS = "alias/bloodbank-pii"
DONOR_TOPIC = "bloodbank-donor-notifications"
ALERTS_TOPIC = "bloodbank-shortage-alerts"
EMPLOYEE_TOPIC = "bloodbank-employee-profiles"
DOCUMENTS_BUCKET = "bloodbank-donor-documents"
CAMPAIGN_QUEUE = "bloodbank-campaigns"
UPLOADS_QUEUE = provisioning.RECIPIENT_UPLOADS.queue_name
PHOTO_UPLOADS = provisioning.UploadRoute("bloodbank-employee-photo-uploads", "employee-photos/uploads/")
EMAIL_FROM = "appeals@bloodbank.example"
SES_CONFIGURATION_SET = "bloodbank"


@dataclass(frozen=True)
class StackInfo:
    region: str
    table_name: str
    dynamodb_endpoint: str
    aws_endpoint: str
    user_pool_id: str
    client_id: str
    api_url: str
    pii_key_id: str = ""
    donor_topic_arn: str = ""
    documents_bucket: str = ""
    alerts_topic_arn: str = ""
    campaign_queue_url: str = ""
    uploads_queue_url: str = ""  # S3 upload notifications (the import's trigger on AWS)
    photos_queue_url: str = ""  # S3 notifications of employee photo uploads (the photo function's trigger)
    employee_topic_arn: str = ""
    token_url: str = ""  # the local stand-in for the pool domain's /oauth2/token (bloodbank.local.oauth)

    def settings(self, page_token_secret: str) -> Settings:
        return Settings(
            region=self.region,
            table_name=self.table_name,
            user_pool_id=self.user_pool_id,
            client_ids=frozenset({self.client_id}),
            page_token_secret=page_token_secret,
            dynamodb_endpoint=self.dynamodb_endpoint,
            aws_endpoint=self.aws_endpoint,
            jwks_url=f"{self.aws_endpoint}/{self.user_pool_id}/.well-known/jwks.json",
            pii_key_id=self.pii_key_id,
            donor_topic_arn=self.donor_topic_arn,
            documents_bucket=self.documents_bucket,
            alerts_topic_arn=self.alerts_topic_arn,
            campaign_queue_url=self.campaign_queue_url,
            employee_topic_arn=self.employee_topic_arn,
            email_from=EMAIL_FROM,
            ses_configuration_set=SES_CONFIGURATION_SET,
            public_url=self.api_url.removesuffix("/graphql"),
        )

    @property
    def pool(self) -> provisioning.LocalUserPool:
        return provisioning.LocalUserPool(self.user_pool_id, self.client_id)


def use_local_credentials() -> None:
    """Local engines accept any credentials; never let a developer's real ones reach them."""
    os.environ["AWS_ACCESS_KEY_ID"] = "local"
    os.environ["AWS_SECRET_ACCESS_KEY"] = "local"
    os.environ.pop("AWS_SESSION_TOKEN", None)
    os.environ.pop("AWS_PROFILE", None)
    os.environ.setdefault("AWS_REGION", REGION)


def page_token_secret(state: Path) -> str:
    """A secret kept in the state folder, so page tokens survive restarts."""
    path = state / "page-token-secret"
    if not path.exists():
        state.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
CERTIFICATE_DAYS = 365


def tls_certificate(state: Path, hosts: Sequence[str] = ()) -> tuple[Path, Path]:
    """A self-signed certificate for loopback (and ``hosts``) and its key, in the state folder.

    Made once and reused while it is valid for a day more and names every host; returns the
    (certificate, key) PEM paths for uvicorn's ``ssl_certfile`` and ``ssl_keyfile``. Clients must be
    told to trust it (a browser exception, or ``NODE_EXTRA_CA_CERTS=<certificate>`` for Node).
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    cert_path, key_path = state / "tls-cert.pem", state / "tls-key.pem"
    wildcards = {"", "0.0.0.0", "::"}  # noqa: S104 - names to leave out, not addresses to bind
    names = list(dict.fromkeys([*LOOPBACK_NAMES, *(h for h in hosts if h not in wildcards)]))
    wanted: list[x509.GeneralName] = []
    for name in names:
        try:
            wanted.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            wanted.append(x509.DNSName(name))
    now = datetime.datetime.now(datetime.UTC)
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        covered = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        if (
            cert.public_key() == key.public_key()
            and cert.not_valid_after_utc > now + datetime.timedelta(days=1)
            and all(name in covered for name in wanted)
        ):
            return cert_path, key_path
    except (OSError, ValueError, TypeError, x509.ExtensionNotFound):
        pass  # missing, unreadable or not ours: make a new one
    private_key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "bloodbank local stack"),
            x509.NameAttribute(NameOID.COMMON_NAME, "localhost"),
        ]
    )
    public = private_key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CERTIFICATE_DAYS))
        .add_extension(x509.SubjectAlternativeName(wanted), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(private_key, hashes.SHA256())
    )
    state.mkdir(parents=True, exist_ok=True)
    key_path.unlink(missing_ok=True)
    descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as key_file:
        key_file.write(
            private_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def write_info(state: Path, info: StackInfo) -> None:
    state.mkdir(parents=True, exist_ok=True)
    (state / "stack.json").write_text(json.dumps(asdict(info), indent=2))


def read_info(state: Path | None = None) -> StackInfo:
    path = (state or engines.state_dir()) / "stack.json"
    try:
        return StackInfo(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        raise StackError("The local stack is not running: start it with `make serve`") from None


def open_table(endpoint: str | None, region: str, name: str) -> TableBinding:
    """Create the table if it is missing and bind the models to it."""
    from bloodbank.storage.models import TableBinding, bind

    provisioning.ensure_table(endpoint, region, name)
    binding = TableBinding(name, region, endpoint)
    bind(binding)
    return binding


def load_reference_data() -> DynamoDirectory:
    """The demo sites and hospitals, written into the bound table (overwriting is harmless)."""
    from bloodbank.storage.directory import DynamoDirectory

    directory = DynamoDirectory()
    for site in seed.SITES:
        directory.put_site(site)
    for hospital in seed.HOSPITALS:
        directory.put_hospital(hospital)
    return directory


def provision_and_seed(info: StackInfo, secret: str) -> dict[str, str]:
    """Create the table, user pool and demo users, and load demo data; returns role -> user sub."""
    from bloodbank.cursor import CursorCodec
    from bloodbank.storage.donors import DynamoDonorRepository
    from bloodbank.storage.employees import DynamoEmployees

    binding = open_table(info.dynamodb_endpoint, info.region, info.table_name)
    directory = load_reference_data()
    from bloodbank.adapters.kms import KmsFieldCipher

    cipher = KmsFieldCipher(provisioning.client("kms", info.aws_endpoint, info.region), info.pii_key_id)
    donors = DynamoDonorRepository(binding, CursorCodec(secret), cipher)
    employees = DynamoEmployees(binding, CursorCodec(secret), cipher)
    now = seed.now()
    for donor_id, fields in seed.demo_donors():
        seed.seed_donor(donors, donor_id, fields, now)

    seed_stock(binding, directory, secret)

    subs: dict[str, str] = {}
    for user in seed.DEMO_USERS:
        attributes = {"custom:hospital_id": user.hospital_id} if user.hospital_id else None
        sub = provisioning.ensure_user(
            info.aws_endpoint, info.region, info.pool, user.email, seed.DEMO_PASSWORD, user.group, attributes
        )
        subs[user.role] = sub
        if user.hospital_id:
            directory.put_membership(sub, user.hospital_id)
        if user.group.value == "Donors":
            seed.seed_donor(donors, sub, seed.demo_donor_fields(), now)
        if user.role in seed.DEMO_EMPLOYEES:
            seed.seed_employee(employees, sub, seed.DEMO_EMPLOYEES[user.role], now)
    return subs


DEMO_HOSPITAL_CLIENT = "hospital-hosp-st-mary-demo"  # the app client's name in the local pool
DEMO_CLIENT_HOSPITAL = "hosp-st-mary"


def hospital_client_path(state: Path) -> Path:
    return state / "hospital-client.json"


def ensure_demo_hospital_client(info: StackInfo, state: Path) -> dict[str, str]:
    """The demo hospital's integration client (client credentials, ``hosp-st-mary``), created once
    per moto server (with the same id and secret each time, as the demo users keep their ``sub``),
    registered to its hospital in the table, and written to ``hospital-client.json`` (mode 600):
    ``client_id``, ``client_secret``, ``token_url``, ``scope``, ``hospital_id``."""
    from bloodbank.storage.directory import DynamoDirectory

    scope = provisioning.ensure_resource_server(info.aws_endpoint, info.region, info.user_pool_id)
    found = next(
        (
            c
            for c in provisioning.list_app_clients(info.aws_endpoint, info.region, info.user_pool_id)
            if c.name == DEMO_HOSPITAL_CLIENT
        ),
        None,
    )
    if found is None:
        provisioning._moto_seed(info.aws_endpoint, f"client:{POOL_NAME}:{DEMO_HOSPITAL_CLIENT}")
        made = provisioning.create_machine_client(
            info.aws_endpoint, info.region, info.user_pool_id, DEMO_HOSPITAL_CLIENT, scope
        )
        client_id, secret = made.client_id, made.secret
    else:
        described = provisioning.describe_app_client(
            info.aws_endpoint, info.region, info.user_pool_id, found.client_id
        )
        client_id, secret = found.client_id, str((described or {}).get("ClientSecret", ""))
    DynamoDirectory().put_membership(client_id, DEMO_CLIENT_HOSPITAL)
    facts = {
        "client_id": client_id,
        "client_secret": secret,
        "token_url": info.token_url,
        "scope": scope,
        "hospital_id": DEMO_CLIENT_HOSPITAL,
    }
    path = hospital_client_path(state)
    state.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(json.dumps(facts, indent=2) + "\n")
    return facts


def seed_stock(binding: TableBinding, directory: DynamoDirectory, secret: str) -> int:
    """Demo units released through the lab's own path (negative results and typing), par levels.

    Idempotent: a unit that is already in the table is left as it is. Returns the units added.
    """
    from pynamodb.exceptions import PutError

    from bloodbank.cursor import CursorCodec
    from bloodbank.domain.blood import Component
    from bloodbank.domain.identity import Group, Identity
    from bloodbank.domain.inventory import REQUIRED_MARKERS, LevelKey, TestOutcome, Threshold
    from bloodbank.services.inventory import InventoryService
    from bloodbank.storage.inventory import DynamoInventory, unit_item
    from bloodbank.storage.models import UnitItem

    store = DynamoInventory(binding, CursorCodec(secret))
    service = InventoryService(store, directory, seed.now, lambda: str(uuid.uuid4()))
    lab = Identity(sub="system:seed", username="seed", groups=frozenset({Group.STAFF}), token_use="access")
    jurisdictions = {s.id: s.jurisdiction for s in seed.SITES}
    added = 0
    for unit in seed.demo_units(seed.now()):
        try:
            unit_item(unit).save(condition=UnitItem.pk.does_not_exist())
        except PutError:
            continue  # seeded before
        markers = REQUIRED_MARKERS[jurisdictions[unit.site_id]]
        results = [
            {"marker": m, "outcome": TestOutcome.NEGATIVE} for m in sorted(markers, key=lambda m: m.value)
        ]
        service.record_test_results(
            lab, {"din": unit.din, "blood_group": unit.blood_group, "results": results}
        )
        added += 1
    for site in seed.SITES:
        for group, par in seed.DEMO_PAR_LEVELS.items():
            store.set_threshold(LevelKey(site.id, group, Component.RED_CELLS), Threshold(par_level=par))
    return added


@contextmanager
def running_engines(
    dynamodb_port: int, moto_port: int, state: Path, *, persistent: bool = True
) -> Iterator[tuple[str, str]]:
    """DynamoDB Local and the moto server, stopped in reverse order however the block ends."""
    engines.ensure_port_free(dynamodb_port, "DynamoDB Local", "--dynamodb-port")
    engines.ensure_port_free(moto_port, "the moto server", "--moto-port")
    logs = state / "logs"
    started: list[engines.Engine] = []
    try:
        for engine in (
            engines.dynamodb_local(
                dynamodb_port, state / "dynamodb" if persistent else None, logs / "dynamodb.log"
            ),
            engines.moto_server(moto_port, logs / "moto.log"),
        ):
            engine.start()
            started.append(engine)
        yield f"http://127.0.0.1:{dynamodb_port}", f"http://127.0.0.1:{moto_port}"
    finally:
        for engine in reversed(started):
            engine.stop()


@contextmanager
def start(
    host: str, port: int, dynamodb_port: int, moto_port: int, state: Path, *, tls: bool = False
) -> Iterator[tuple[StackInfo, Settings, dict[str, str]]]:
    """Bring the engines up, provision and seed; yields what the API needs, then tears down.

    ``tls``: the API will be served over https/wss (its URL in the stack's facts says so)."""
    engines.ensure_port_free(port, "the API", "--port")
    use_local_credentials()
    with running_engines(dynamodb_port, moto_port, state) as (ddb_url, moto_url):
        pool = provisioning.ensure_user_pool(moto_url, REGION, POOL_NAME)
        pii_key = provisioning.ensure_pii_key(
            moto_url, REGION, PII_KEY_ALIAS, str(state / "pii-key.material")
        )
        topic = provisioning.ensure_topic(moto_url, REGION, DONOR_TOPIC)
        alerts_topic = provisioning.ensure_topic(moto_url, REGION, ALERTS_TOPIC)
        employee_topic = provisioning.ensure_topic(moto_url, REGION, EMPLOYEE_TOPIC)
        # moto applies a bucket policy's Deny whatever its condition, so no TLS-only policy locally.
        provisioning.ensure_documents_bucket(moto_url, REGION, DOCUMENTS_BUCKET, pii_key, require_tls=False)
        queue_url = provisioning.ensure_campaign_queue(moto_url, REGION, CAMPAIGN_QUEUE)
        upload_queues = provisioning.ensure_upload_notifications(
            moto_url, REGION, DOCUMENTS_BUCKET, (provisioning.RECIPIENT_UPLOADS, PHOTO_UPLOADS)
        )
        provisioning.ensure_sender(moto_url, REGION, EMAIL_FROM, SES_CONFIGURATION_SET)
        info = StackInfo(
            region=REGION,
            table_name=TABLE,
            dynamodb_endpoint=ddb_url,
            aws_endpoint=moto_url,
            user_pool_id=pool.pool_id,
            client_id=pool.client_id,
            api_url=f"{'https' if tls else 'http'}://{host}:{port}/graphql",
            pii_key_id=pii_key,
            donor_topic_arn=topic,
            documents_bucket=DOCUMENTS_BUCKET,
            alerts_topic_arn=alerts_topic,
            campaign_queue_url=queue_url,
            uploads_queue_url=upload_queues[UPLOADS_QUEUE],
            photos_queue_url=upload_queues[PHOTO_UPLOADS.queue_name],
            employee_topic_arn=employee_topic,
            token_url=f"{'https' if tls else 'http'}://{host}:{port}/oauth2/token",
        )
        secret = page_token_secret(state)
        subs = provision_and_seed(info, secret)
        ensure_demo_hospital_client(info, state)
        write_info(state, info)
        try:
            yield info, info.settings(secret), subs
        finally:
            (state / "stack.json").unlink(missing_ok=True)
