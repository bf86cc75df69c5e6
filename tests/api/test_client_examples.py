"""The client examples (client-examples/) against one `bloodbank serve`, run as their users run them:
curl scripts, the Python client, Amplify JS v6 in Node, and the hospital integration that orders
units and waits while staff fulfil and issue them (signed in as a hospital user, or as the hospital's
own app client by the OAuth client-credentials grant from the local /oauth2/token). A small
fault-injecting proxy in front of the server answers RATE_LIMITED, UNAUTHENTICATED or 503, or drops a
response after the server applied the request, so the retries, the token renewal and the idempotency
key are exercised for real."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.test_local_stack import Stack

pytestmark = pytest.mark.stack

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "client-examples"
ORDER_AND_WAIT = EXAMPLES / "hospital" / "order_and_wait.py"
FAST = ["--poll", "0.1", "--max-poll", "0.4"]  # the defaults (5 s up to 60 s) suit a real night job


@dataclass
class Fault:
    """Answer the next POST whose body contains ``when`` with ``action`` instead of (or after)
    forwarding it: ``rate_limited`` (a GraphQL RATE_LIMITED error with a retry hint), ``http_503``
    (with Retry-After), ``drop`` (forward, let the server apply it, then close without an answer),
    ``unauthenticated`` (the API's answer to an expired or revoked token)."""

    when: str
    action: str


@dataclass
class Proxy:
    upstream: str
    faults: list[Fault] = field(default_factory=list)
    seen: list[dict[str, Any]] = field(default_factory=list)  # bodies of the POSTs, in order
    credentials: list[str] = field(default_factory=list)  # their Authorization headers, in order
    url: str = ""

    def posts(self, containing: str) -> list[dict[str, Any]]:
        return [body for body in self.seen if containing in body["query"]]


def _handler(proxy: Proxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: object) -> None:
            pass

        def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for name, value in {"content-type": "application/json", **headers}.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers["content-length"]))
            body = json.loads(raw)
            proxy.seen.append(body)
            proxy.credentials.append(self.headers.get("authorization", ""))
            fault = next((f for f in proxy.faults if f.when in body["query"]), None)
            if fault is not None:
                proxy.faults.remove(fault)
            if fault is not None and fault.action == "rate_limited":
                error = {
                    "message": "Slow down",
                    "extensions": {"code": "RATE_LIMITED", "retryAfterSeconds": 0.1},
                }
                self._answer(200, json.dumps({"data": None, "errors": [error]}).encode(), {})
                return
            if fault is not None and fault.action == "unauthenticated":
                error = {"message": "Invalid token: expired", "extensions": {"code": "UNAUTHENTICATED"}}
                self._answer(200, json.dumps({"data": None, "errors": [error]}).encode(), {})
                return
            if fault is not None and fault.action == "http_503":
                self._answer(503, b'{"message":"Service Unavailable"}', {"retry-after": "0"})
                return
            headers = {"content-type": "application/json", "authorization": self.headers["authorization"]}
            answer = httpx.post(proxy.upstream, content=raw, headers=headers, timeout=30)
            if fault is not None and fault.action == "drop":
                self.close_connection = True  # the server did it; the client never hears
                return
            self._answer(answer.status_code, answer.content, {})

    return Handler


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(tmp_path_factory.mktemp("client-examples") / "state")
    with stack.running():
        yield stack


@pytest.fixture(scope="module")
def tokens(stack: Stack) -> dict[str, str]:
    return {role: stack.token(role) for role in ("staff", "hospital")}


@pytest.fixture
def proxy(stack: Stack) -> Iterator[Proxy]:
    proxy = Proxy(upstream=f"{stack.url}/graphql")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(proxy))
    proxy.url = f"http://127.0.0.1:{server.server_port}/graphql"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def run(command: list[str], api: str, token: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "BLOODBANK_API": api, "TOKEN": token, **env}
    return subprocess.run(command, capture_output=True, text=True, env=environment, timeout=60, check=False)


def gql(api: str, token: str, query: str, variables: dict[str, Any] | None = None) -> Any:
    body = httpx.post(
        api, json={"query": query, "variables": variables or {}}, headers={"Authorization": token}, timeout=30
    ).json()
    assert "errors" not in body, body
    return body["data"]


def hospital_request_ids(stack: Stack, staff: str) -> set[str]:
    page = gql(
        f"{stack.url}/graphql",
        staff,
        '{ listBloodRequests(filter: {hospitalId: {eq: "hosp-st-mary"}}, limit: 100) { items { id } } }',
    )
    return {item["id"] for item in page["listBloodRequests"]["items"]}


class Lines:
    """A running example's stdout, line by line, read on a thread (so waiting never blocks on a pipe)."""

    @classmethod
    @contextlib.contextmanager
    def running(cls, command: list[str], env: dict[str, str], cwd: Path | None = None) -> Iterator[Lines]:
        """Start ``command``; on the way out, kill it if it still runs."""
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd
        )
        try:
            yield cls(process)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.seen: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def expect(self, pattern: str) -> re.Match[str]:
        while True:
            try:
                line = self._queue.get(timeout=30)
            except queue.Empty:
                raise AssertionError(f"no line matching {pattern!r}; saw {self.seen}") from None
            if line is None:
                raise AssertionError(f"exited before a line matching {pattern!r}; saw {self.seen}")
            self.seen.append(line)
            if found := re.search(pattern, line):
                return found


def test_curl_examples_list_donors_and_order_with_an_idempotency_key(
    stack: Stack, tokens: dict[str, str]
) -> None:
    api = f"{stack.url}/graphql"
    donors = run([str(EXAMPLES / "curl" / "list-donors.sh"), "site-south"], api, tokens["staff"])
    assert donors.returncode == 0, donors.stderr
    assert {d["id"] for d in json.loads(donors.stdout)["data"]["listDonors"]["items"]}

    order = [str(EXAMPLES / "curl" / "hospital-order.sh"), "O_POS", "RED_CELLS", "1", "URGENT"]
    first = run(order, api, tokens["hospital"], REQUEST_KEY="curl-example-key-1")
    assert first.returncode == 0, first.stderr
    stock, created = (json.loads(line)["data"] for line in first.stdout.splitlines())
    assert {level["siteId"] for level in stock["stockLevels"]} >= {"site-north", "site-south"}
    assert created["createBloodRequest"]["status"] == "PENDING"
    again = run(order, api, tokens["hospital"], REQUEST_KEY="curl-example-key-1")
    assert json.loads(again.stdout.splitlines()[1])["data"] == created  # the same request, not a second

    refused = run([*order[:3], "99"], api, tokens["hospital"])
    assert refused.returncode == 1
    assert "error: BAD_USER_INPUT" in refused.stderr
    expired = run(order, api, "not-a-token")
    assert (expired.returncode, expired.stderr.splitlines()[-1]) == (3, "error: UNAUTHENTICATED")


def test_python_example_pages_and_retries_rate_limits_and_503s(
    stack: Stack, tokens: dict[str, str], proxy: Proxy
) -> None:
    everyone = gql(f"{stack.url}/graphql", tokens["staff"], "{ listDonors(limit: 100) { items { id } } }")
    proxy.faults = [Fault("listDonors", "rate_limited"), Fault("listDonors", "http_503")]
    counted = run(
        [sys.executable, str(EXAMPLES / "python" / "donors_by_group.py")], proxy.url, tokens["staff"]
    )
    assert counted.returncode == 0, counted.stderr
    assert f"total    {len(everyone['listDonors']['items'])}" in counted.stdout
    assert "RATE_LIMITED: retrying" in counted.stderr
    assert len(proxy.posts("listDonors")) == 3  # answered on the third attempt

    hospital = run(
        [sys.executable, str(EXAMPLES / "python" / "donors_by_group.py")], proxy.url, tokens["hospital"]
    )
    assert hospital.returncode == 1
    assert hospital.stderr.startswith("FORBIDDEN: ")
    expired = run([sys.executable, str(EXAMPLES / "python" / "donors_by_group.py")], proxy.url, "x.y.z")
    assert expired.returncode == 3
    assert "UNAUTHENTICATED" in expired.stderr


def test_amplify_js_queries_the_stock_and_orders_blood(stack: Stack, tokens: dict[str, str]) -> None:
    node = shutil.which("node")
    assert node, "Node is needed for the Amplify JS examples (the machine has Node 20)"
    assert (ROOT / "node_modules" / "aws-amplify").is_dir(), "run `make test`: it installs aws-amplify"
    example = [node, str(EXAMPLES / "amplify" / "query-and-mutate.mjs")]
    api = f"{stack.url}/graphql"
    done = run(example, api, tokens["hospital"], BLOOD_GROUP="A_POS", QUANTITY="2")
    assert done.returncode == 0, done.stderr
    board, created = (json.loads(line) for line in done.stdout.splitlines())
    assert len(board) == 8
    assert {level["siteId"] for level in board} == {"site-north"}
    assert {level["status"] for level in board} <= {"GREEN", "AMBER", "RED"}
    assert (created["hospitalId"], created["bloodGroup"], created["quantity"], created["status"]) == (
        "hosp-st-mary",
        "A_POS",
        2,
        "PENDING",
    )
    refused = run(example, api, tokens["hospital"], QUANTITY="99")
    assert refused.returncode == 1
    assert json.loads(refused.stderr.splitlines()[-1])["code"] == "BAD_USER_INPUT"


def test_hospital_integration_orders_once_through_a_dropped_answer_and_waits_for_the_units(
    stack: Stack, tokens: dict[str, str], proxy: Proxy, tmp_path: Path
) -> None:
    api, staff = f"{stack.url}/graphql", tokens["staff"]
    before = hospital_request_ids(stack, staff)
    key_file = tmp_path / "ward-7.key"
    order = [sys.executable, str(ORDER_AND_WAIT), "--blood-group", "O_POS", "--component", "RED_CELLS",
             "--quantity", "2", "--urgency", "URGENT", "--key-file", str(key_file), *FAST]  # fmt: skip
    # The server applies the first createBloodRequest, but its answer is lost; a poll is throttled.
    proxy.faults = [Fault("createBloodRequest", "drop"), Fault("getBloodRequest", "rate_limited")]
    env = {**os.environ, "BLOODBANK_API": proxy.url, "TOKEN": tokens["hospital"]}
    with Lines.running(order, env, tmp_path) as lines:
        request_id = lines.expect(r" ordered request=(\S+) status=PENDING reserved=0 issued=0/2")[1]
        fulfilled = gql(
            api, staff, "mutation($id: ID!) { fulfillBloodRequest(id: $id) { status } }", {"id": request_id}
        )
        assert fulfilled["fulfillBloodRequest"]["status"] == "FULFILLED"
        lines.expect(rf" status request={request_id} status=FULFILLED reserved=2 issued=0/2 outstanding=0")
        gql(api, staff, "mutation($id: ID!) { issueBloodRequest(id: $id) { status } }", {"id": request_id})
        lines.expect(rf" status request={request_id} status=FULFILLED reserved=0 issued=2/2")
        done = lines.expect(rf" done request={request_id} status=FULFILLED until=issued units=(\S+)")
        _, err = lines.process.communicate(timeout=30)
    process = lines.process
    assert process.returncode == 0, err
    assert len(done[1].split(",")) == 2
    # Two createBloodRequest attempts with one key, and one request on the server.
    key = key_file.read_text().strip()
    attempts = proxy.posts("createBloodRequest")
    assert [a["variables"]["input"]["clientRequestToken"] for a in attempts] == [key, key]
    assert "NETWORK_ERROR: retrying" in err
    assert "RATE_LIMITED: retrying" in err
    assert hospital_request_ids(stack, staff) - before == {request_id}
    assert tokens["hospital"] not in "\n".join(lines.seen) + err

    # A re-run of the job with the same key file gets the same request back, done already.
    again = run(order, proxy.url, tokens["hospital"])
    assert again.returncode == 0, again.stderr
    assert f" ordered request={request_id} status=FULFILLED reserved=0 issued=2/2" in again.stdout
    assert hospital_request_ids(stack, staff) - before == {request_id}
    # The same key for another order is refused, and nothing is ordered.
    other = run([*order[:7], "3", *order[8:]], proxy.url, tokens["hospital"])
    assert other.returncode == 1
    assert "CONFLICT" in other.stderr


def test_hospital_integration_deadline_cancellation_and_expired_token(
    stack: Stack, tokens: dict[str, str], tmp_path: Path
) -> None:
    api, staff = f"{stack.url}/graphql", tokens["staff"]
    key = "0b6a4f5e-8c1d-4c2b-9a7e-3f5d6c7b8a90"
    order = [sys.executable, str(ORDER_AND_WAIT), "--blood-group", "AB_NEG", "--component", "PLATELETS",
             "--quantity", "1", "--key", key, *FAST]  # fmt: skip
    late = run([*order, "--deadline", "0.3"], api, tokens["hospital"])
    assert late.returncode == 4, late.stderr
    request_id = re.search(r" deadline request=(\S+) status=PENDING key=" + key, late.stdout)[1]  # type: ignore[index]

    env = {**os.environ, "BLOODBANK_API": api, "TOKEN": tokens["hospital"]}
    with Lines.running(order, env) as lines:
        lines.expect(rf" ordered request={request_id} status=PENDING")  # the same order, still waiting
        cancel = 'mutation($id: ID!) { cancelBloodRequest(id: $id, reason: "Patient Jane Doe") { id } }'
        gql(api, staff, cancel, {"id": request_id})
        lines.expect(rf" status request={request_id} status=CANCELLED")
        lines.expect(rf" cancelled request={request_id} issued=0")
        _, err = lines.process.communicate(timeout=30)
    process = lines.process
    assert process.returncode == 6, err
    assert "Jane" not in "\n".join(lines.seen) + err  # free text may hold personal data: never logged

    expired = run(order, api, "eyJhbGciOiJSUzI1NiJ9.e30.c2lnbmF0dXJl")
    assert expired.returncode == 3
    assert "UNAUTHENTICATED" in expired.stderr
    assert f"--key {key}" in expired.stderr  # how to run again without ordering twice
    assert "eyJhbGciOiJSUzI1NiJ9" not in expired.stdout + expired.stderr


def client_credentials_env(stack: Stack, api: str, client_id: str, secret: str) -> dict[str, str]:
    """The integration's environment with the hospital's app client instead of a token."""
    environment = {k: v for k, v in os.environ.items() if k not in {"TOKEN", "TOKEN_COMMAND"}}
    return {
        **environment,
        "BLOODBANK_API": api,
        "CLIENT_ID": client_id,
        "CLIENT_SECRET": secret,
        "TOKEN_URL": f"{stack.url}/oauth2/token",
    }


def test_hospital_integration_signs_in_with_client_credentials_and_renews_a_refused_token(
    stack: Stack, tokens: dict[str, str], proxy: Proxy, tmp_path: Path
) -> None:
    api, staff = f"{stack.url}/graphql", tokens["staff"]
    demo = json.loads((stack.data_dir / "hospital-client.json").read_text())
    assert (demo["hospital_id"], demo["token_url"]) == ("hosp-st-mary", f"{stack.url}/oauth2/token")
    before = hospital_request_ids(stack, staff)
    key_file = tmp_path / "night.key"
    order = [sys.executable, str(ORDER_AND_WAIT), "--blood-group", "O_POS", "--component", "RED_CELLS",
             "--quantity", "1", "--urgency", "EMERGENCY", "--key-file", str(key_file), *FAST]  # fmt: skip
    # The first poll is answered as if the token had expired: the job gets a new one and goes on.
    proxy.faults = [Fault("getBloodRequest", "unauthenticated")]
    env = client_credentials_env(stack, proxy.url, demo["client_id"], demo["client_secret"])
    with Lines.running(order, env) as lines:
        request_id = lines.expect(r" ordered request=(\S+) status=PENDING reserved=0 issued=0/1")[1]
        gql(api, staff, "mutation($id: ID!) { fulfillBloodRequest(id: $id) { status } }", {"id": request_id})
        lines.expect(rf" status request={request_id} status=FULFILLED reserved=1 issued=0/1")
        gql(api, staff, "mutation($id: ID!) { issueBloodRequest(id: $id) { status } }", {"id": request_id})
        lines.expect(rf" done request={request_id} status=FULFILLED until=issued units=\S+")
        _, err = lines.process.communicate(timeout=30)
    process = lines.process
    assert process.returncode == 0, err
    assert hospital_request_ids(stack, staff) - before == {request_id}  # ordered for St Mary's
    assert "token rejected: fetching a new one" in err
    used = list(dict.fromkeys(proxy.credentials))
    assert len(used) == 2, "one token, then a new one after UNAUTHENTICATED, kept for every later request"
    printed = "\n".join(lines.seen) + err
    for credential in (demo["client_secret"], *used):
        assert credential not in printed
    # A wrong secret: the token endpoint refuses it, and the job says so without echoing it.
    wrong = subprocess.run(
        order, capture_output=True, text=True, timeout=60, check=False,
        env=client_credentials_env(stack, api, demo["client_id"], "not-the-secret-0123"),
    )  # fmt: skip
    assert wrong.returncode == 3, wrong.stderr
    assert "invalid_client" in wrong.stderr
    assert "not-the-secret-0123" not in wrong.stdout + wrong.stderr


def test_a_hospital_client_registered_with_the_cli_orders_only_for_itself_until_revoked(
    stack: Stack, tokens: dict[str, str]
) -> None:
    api = f"{stack.url}/graphql"
    made = json.loads(stack.cli("hospital-client", "create", "--hospital", "hosp-riverside", "--json").stdout)
    token_url = f"{stack.url}/oauth2/token"
    assert made["token_url"] == token_url

    def fetch() -> httpx.Response:
        return httpx.post(
            token_url,
            data={"grant_type": "client_credentials", "scope": "bloodbank/hospital"},
            auth=(made["client_id"], made["client_secret"]),
            timeout=30,
        )

    answer = fetch()
    assert answer.status_code == 200, answer.text
    token = answer.json()["access_token"]
    created = gql(
        api,
        f"Bearer {token}",
        "mutation($input: CreateBloodRequestInput!) { createBloodRequest(input: $input) { hospitalId } }",
        {"input": {"bloodGroup": "A_POS", "component": "RED_CELLS", "quantity": 1}},
    )
    assert created["createBloodRequest"]["hospitalId"] == "hosp-riverside"

    def codes(query: str, variables: dict[str, Any] | None = None, bearer: str = token) -> list[str]:
        body = httpx.post(
            api,
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": bearer},
            timeout=30,
        ).json()
        return [e["extensions"]["code"] for e in body.get("errors") or []]

    other = {
        "input": {
            "bloodGroup": "A_POS",
            "component": "RED_CELLS",
            "quantity": 1,
            "hospitalId": "hosp-st-mary",
        }
    }
    order = "mutation($input: CreateBloodRequestInput!) { createBloodRequest(input: $input) { id } }"
    assert codes(order, other) == ["FORBIDDEN"]
    assert codes("{ listDonors(limit: 1) { items { id } } }") == ["FORBIDDEN"]

    # The demo client of the local stack, through `bloodbank token --as hospital-client`.
    demo = stack.token("hospital-client")
    assert codes('{ stockLevels(siteId: "site-north") { available } }', bearer=demo) == []

    revoked = stack.cli("hospital-client", "revoke", "--client-id", made["client_id"])
    assert "Revoked" in revoked.stdout
    assert codes('{ stockLevels(siteId: "site-south") { available } }') == ["UNAUTHENTICATED"]
    assert (fetch().status_code, fetch().json()) == (401, {"error": "invalid_client"})


def test_client_credentials_keep_the_token_and_renew_it_shortly_before_it_expires(stack: Stack) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "bloodbank_client", EXAMPLES / "python" / "bloodbank_client.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    demo = json.loads((stack.data_dir / "hospital-client.json").read_text())
    now = [1000.0]
    credentials = module.ClientCredentials(
        f"{stack.url}/oauth2/token", demo["client_id"], demo["client_secret"], clock=lambda: now[0]
    )
    try:
        first = credentials.current()
        assert credentials.current() == first
        assert credentials.fetched == 1
        now[0] += 3600 - 361  # more than a tenth of its hour left (and more than a minute): kept
        assert credentials.current() == first
        now[0] += 2  # less: a new one, well before the API would refuse it
        second = credentials.current()
        assert (second != first, credentials.fetched) == (True, 2)
        assert credentials() != second  # calling it always gets a new one (after UNAUTHENTICATED)
        assert demo["client_secret"] not in repr(credentials)
        with pytest.raises(ValueError, match="https"):
            module.ClientCredentials("http://tokens.example/oauth2/token", "id", "secret")
        wrong = module.ClientCredentials(f"{stack.url}/oauth2/token", demo["client_id"], "wrong-secret-42")
        with pytest.raises(module.ApiError) as refused:
            wrong.current()
        assert refused.value.code == "UNAUTHENTICATED"
        assert "invalid_client" in str(refused.value)
        assert "wrong-secret-42" not in str(refused.value)
    finally:
        credentials.close()
