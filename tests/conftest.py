"""Shared fixtures: signed tokens, a container of fakes, an HTTP client, and the real engines.

Real engines (DynamoDB Local, a moto server) start once per session, only when a test asks for them.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

# Nothing in the tests may reach real AWS: dummy credentials and a fixed region for every client.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }
)
os.environ.pop("AWS_PROFILE", None)

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose import jwk, jwt
from starlette.testclient import TestClient

from bloodbank.bootstrap import Container, build_container
from bloodbank.cursor import CursorCodec
from bloodbank.fakes import (
    FakeProbe,
    FixedClock,
    InMemoryDirectory,
    InMemoryDocumentStore,
    InMemoryDonations,
    InMemoryDonorRepository,
    InMemoryEmployees,
    InMemoryInventory,
    InMemoryNotificationLedger,
    InMemoryPhotoFiles,
    InMemoryRecipientFiles,
    InMemorySuppressions,
    RecordingAlertPublisher,
    RecordingEmployeeEvents,
    RecordingMailer,
    RecordingNotifier,
    RecordingQueue,
    SequentialIds,
    StaticKeySet,
)
from bloodbank.local import seed
from bloodbank.settings import Settings

REGION = "us-east-1"
POOL_ID = "us-east-1_TESTPOOL"
ISSUER = f"https://cognito-idp.{REGION}.amazonaws.com/{POOL_ID}"
CLIENT_ID = "5testclient0web0app0client"
KID = "test-key-1"
PAGE_SECRET = "test-page-token-secret-of-sufficient-length"


@dataclass(frozen=True)
class SigningKey:
    private_pem: bytes
    public_pem: bytes
    public_der: bytes
    public_jwk: dict[str, Any]


def _new_key(kid: str) -> SigningKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key()
    public_pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    public_der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    public_jwk = {**jwk.construct(public_pem, "RS256").to_dict(), "kid": kid, "use": "sig"}
    return SigningKey(private_pem, public_pem, public_der, public_jwk)


@pytest.fixture(scope="session")
def signing_key() -> SigningKey:
    return _new_key(KID)


@pytest.fixture(scope="session")
def foreign_key() -> SigningKey:
    """A key the pool never published."""
    return _new_key("foreign")


class TokenFactory:
    """Cognito-shaped tokens signed with the test pool's key (or any other, to forge)."""

    def __init__(self, key: SigningKey, clock: Callable[[], float]) -> None:
        self.key = key
        self.clock = clock

    def __call__(
        self,
        *groups: str,
        sub: str | None = None,
        token_use: str = "access",
        client_id: str = CLIENT_ID,
        issuer: str = ISSUER,
        expires_in: int = 3600,
        kid: str = KID,
        key: bytes | str | None = None,
        algorithm: str = "RS256",
        extra: dict[str, Any] | None = None,
        drop: tuple[str, ...] = (),
    ) -> str:
        now = int(self.clock())
        claims: dict[str, Any] = {
            "sub": sub or str(uuid.uuid4()),
            "iss": issuer,
            "token_use": token_use,
            "iat": now,
            "auth_time": now,
            "exp": now + expires_in,
            "jti": str(uuid.uuid4()),
            "cognito:groups": list(groups),
        }
        if token_use == "id":
            claims["aud"] = client_id
            claims["cognito:username"] = "user"
        else:
            claims["client_id"] = client_id
            claims["username"] = "user"
            claims["scope"] = "aws.cognito.signin.user.admin"
        claims.update(extra or {})
        for name in drop:
            claims.pop(name, None)
        return jwt.encode(claims, key or self.key.private_pem, algorithm=algorithm, headers={"kid": kid})


@pytest.fixture
def tokens(signing_key: SigningKey) -> TokenFactory:
    import time

    return TokenFactory(signing_key, time.time)


@pytest.fixture
def settings() -> Settings:
    return Settings(
        region=REGION,
        table_name="bloodbank-test",
        user_pool_id=POOL_ID,
        client_ids=frozenset({CLIENT_ID}),
        page_token_secret=PAGE_SECRET,
    )


@dataclass
class World:
    """A container of fakes and the fakes themselves, to arrange state and inspect what happened."""

    container: Container
    donors: InMemoryDonorRepository
    directory: InMemoryDirectory
    keyset: StaticKeySet
    clock: FixedClock
    probes: list[FakeProbe]
    donations: InMemoryDonations
    notifier: RecordingNotifier
    inventory: InMemoryInventory
    alerts: RecordingAlertPublisher
    suppressions: InMemorySuppressions = field(default_factory=InMemorySuppressions)
    mailer: RecordingMailer = field(default_factory=RecordingMailer)
    recipient_files: InMemoryRecipientFiles = field(default_factory=InMemoryRecipientFiles)
    campaign_queue: RecordingQueue = field(default_factory=RecordingQueue)
    employees: InMemoryEmployees = field(default_factory=lambda: InMemoryEmployees(CursorCodec(PAGE_SECRET)))
    photo_files: InMemoryPhotoFiles = field(default_factory=InMemoryPhotoFiles)
    employee_events: RecordingEmployeeEvents = field(default_factory=RecordingEmployeeEvents)


@pytest.fixture
def world(settings: Settings, signing_key: SigningKey) -> World:
    directory = InMemoryDirectory(
        site_list=list(seed.SITES),
        hospital_list=list(seed.HOSPITALS),
        memberships={"hospital-user": "hosp-st-mary"},
    )
    donors = InMemoryDonorRepository(directory, CursorCodec(settings.page_token_secret))
    keyset = StaticKeySet({"keys": [signing_key.public_jwk]})
    clock = FixedClock()
    probes = [FakeProbe("dynamodb"), FakeProbe("cognito")]
    donations = InMemoryDonations(donors, CursorCodec(settings.page_token_secret))
    notifier = RecordingNotifier()
    inventory = InMemoryInventory(donations, CursorCodec(settings.page_token_secret))
    alerts = RecordingAlertPublisher()
    suppressions = InMemorySuppressions()
    mailer = RecordingMailer(max_send_rate=10_000.0)  # paced, but tests never wait
    recipient_files = InMemoryRecipientFiles()
    campaign_queue = RecordingQueue()
    employees = InMemoryEmployees(CursorCodec(settings.page_token_secret))
    photo_files = InMemoryPhotoFiles()
    employee_events = RecordingEmployeeEvents()
    container = build_container(
        settings,
        donors=donors,
        directory=directory,
        documents=InMemoryDocumentStore(clock=clock),
        donations=donations,
        inventory=inventory,
        alert_publisher=alerts,
        notifier=notifier,
        ledger=InMemoryNotificationLedger(),
        key_source=keyset,
        clock=clock,
        new_id=SequentialIds("donor"),
        probes=list(probes),
        suppressions=suppressions,
        mailer=mailer,
        recipient_files=recipient_files,
        campaign_queue=campaign_queue,
        employees=employees,
        photo_files=photo_files,
        employee_events=employee_events,
    )
    return World(
        container,
        donors,
        directory,
        keyset,
        clock,
        probes,
        donations,
        notifier,
        inventory,
        alerts,
        suppressions=suppressions,
        mailer=mailer,
        recipient_files=recipient_files,
        campaign_queue=campaign_queue,
        employees=employees,
        photo_files=photo_files,
        employee_events=employee_events,
    )


@pytest.fixture
def handler(monkeypatch: pytest.MonkeyPatch, world: World) -> ModuleType:
    """handler.py as Lambda imports it (settings from the environment), its container the fakes'."""
    for name, value in {
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "BLOODBANK_USER_POOL_ID": POOL_ID,
        "BLOODBANK_USER_POOL_CLIENT_IDS": CLIENT_ID,
        "BLOODBANK_PAGE_TOKEN_SECRET": "a-page-token-secret-that-is-long-enough-0123",
        "BLOODBANK_PII_KEY_ID": "alias/bloodbank-pii",
    }.items():
        monkeypatch.setenv(name, value)
    module = sys.modules.get("handler") or importlib.import_module("handler")
    monkeypatch.setattr(module, "container", world.container)
    from bloodbank.websocket import ApiGatewaySubscriptions

    monkeypatch.setattr(module, "subscriptions", ApiGatewaySubscriptions(world.container))
    return module


@dataclass
class S3World:
    """The fakes' world and ``handler.py`` with one service's files in an in-process moto bucket."""

    world: World
    handler: ModuleType
    s3: Any


@contextlib.contextmanager
def moto_bucket(bucket: str) -> Iterator[tuple[Any, str]]:
    """In-process moto S3 with ``bucket`` and a KMS key to encrypt with: the client and the key's ARN."""
    from moto import mock_aws

    from bloodbank.adapters.provisioning import client, s3_client

    with mock_aws():
        s3 = s3_client(None, REGION)
        s3.create_bucket(Bucket=bucket)
        yield s3, client("kms", None, REGION).create_key()["KeyMetadata"]["Arn"]


def s3_event(key: str, size: int, bucket: str, name: str = "ObjectCreated:Post") -> dict[str, Any]:
    """What S3 sends Lambda for one new object: the key URL-encoded, as S3 does."""
    import urllib.parse

    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": REGION,
                "eventTime": "2026-11-22T09:00:00.000Z",
                "eventName": name,
                "userIdentity": {"principalId": "AWS:AROAEXAMPLE:uploader"},
                "requestParameters": {"sourceIPAddress": "203.0.113.7"},
                "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810", "x-amz-id-2": "FMyUVURIY8/IgAt"},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "uploads",
                    "bucket": {
                        "name": bucket,
                        "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                        "arn": f"arn:aws:s3:::{bucket}",
                    },
                    "object": {
                        "key": urllib.parse.quote_plus(key, safe="/"),
                        "size": size,
                        "eTag": "0123456789abcdef0123456789abcdef",
                        "versionId": "096fKKXTRTtl3on89fVO.nfljtsv6qko",
                        "sequencer": "0055AED6DCD90281E5",
                    },
                },
            }
        ]
    }


class Api:
    """GraphQL over real HTTP semantics (Starlette's test client) against the app."""

    def __init__(self, client: TestClient, tokens: TokenFactory) -> None:
        self.client = client
        self.tokens = tokens

    def gql(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = token
        response = self.client.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=sent
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture
def api(world: World, tokens: TokenFactory) -> Iterator[Api]:
    from bloodbank.server import create_app

    with TestClient(create_app(world.container)) as client:
        yield Api(client, tokens)


def error_codes(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors") or []]


# --- real engines -------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def dynamodb_local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Amazon's DynamoDB Local, in memory, for the whole session: its endpoint URL."""
    from bloodbank.local import engines

    port = engines.free_port()
    logs = Path(tmp_path_factory.mktemp("dynamodb-local")) / "dynamodb.log"
    engine = engines.dynamodb_local(port, None, logs)
    engine.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        engine.stop()


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto server in its own process (in-process mocks would reset its state): its endpoint URL."""
    from bloodbank.local import engines

    port = engines.free_port()
    logs = Path(tmp_path_factory.mktemp("moto")) / "moto.log"
    engine = engines.moto_server(port, logs)
    engine.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        engine.stop()
