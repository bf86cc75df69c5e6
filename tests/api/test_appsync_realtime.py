"""onShortageAlert over AppSync's real-time protocol on /graphql/realtime, as Amplify JS v6 speaks it.

``AppSyncClient`` follows the protocol's message list: the ``graphql-ws`` and ``header-<base64url>``
subprotocols (or the legacy ``?header=&payload=`` query), ``connection_init``, ``start`` with
``payload.data`` a JSON string and the token in ``payload.extensions.authorization``, ``stop``.
Also: ``bloodbank serve --tls``'s self-signed certificate.
"""

from __future__ import annotations

import base64
import datetime
import json
import ssl
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from bloodbank import cli
from bloodbank.local import stack
from bloodbank.realtime import AppSyncRealtime
from bloodbank.server import create_app
from tests.api.test_subscriptions import SET_PAR, set_par
from tests.conftest import Api, SigningKey, TokenFactory, World

pytestmark = pytest.mark.timeout(60)  # a missing message fails the test instead of hanging it

HOST = "127.0.0.1:8000"
SUBSCRIBE = """subscription OnShortage($site: ID, $group: BloodGroup) {
  onShortageAlert(siteId: $site, bloodGroup: $group) {
    id siteId bloodGroup component status previousStatus available threshold daysOfSupply raisedAt
  }
}"""
ALERT_FIELDS = {
    "id", "siteId", "bloodGroup", "component", "status", "previousStatus", "available", "threshold",
    "daysOfSupply", "raisedAt",
}  # fmt: skip


def base64url(value: object) -> str:
    """What Amplify JS v6 puts in the ``header-`` subprotocol: base64url without padding."""
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def base64_plain(value: object) -> str:
    """What Amplify JS up to v5 put in ``?header=`` and ``&payload=``: plain base64, not URL-escaped."""
    return base64.b64encode(json.dumps(value).encode()).decode()


class AppSyncClient:
    """A real-time client of AppSync's protocol; ``receive`` counts and skips ``ka`` keep-alives."""

    def __init__(self, client: TestClient, token: str | None = None, *, legacy: bool = False) -> None:
        self.client = client
        self.token = token
        self.legacy = legacy
        self.keep_alives = 0

    def __enter__(self) -> AppSyncClient:
        headers = {"host": HOST, **({"Authorization": self.token} if self.token else {})}
        if self.legacy:
            # Three characters in a row whose last six bits encode as '+' or '/' in plain base64: one
            # of them lands last in a 3-byte group, so the header has what an unescaped URL mangles.
            self.header = base64_plain({**headers, "x-amz-user-agent": "aws-amplify/5.3.0 ~?>"})
            url = f"/graphql/realtime?header={self.header}&payload={base64_plain({})}"
            protocols = ["graphql-ws"]
        else:
            url, protocols = "/graphql/realtime", ["graphql-ws", f"header-{base64url(headers)}"]
        self.ws: Any = self.client.websocket_connect(url, subprotocols=protocols).__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.ws.__exit__(None, None, None)

    def send(self, message: dict[str, Any]) -> None:
        self.ws.send_text(json.dumps(message))

    def connection_init(self) -> dict[str, Any]:
        self.send({"type": "connection_init"})
        return self.receive()

    def start(
        self,
        sub_id: str,
        query: str = SUBSCRIBE,
        variables: dict[str, Any] | None = None,
        *,
        token: Any = ...,
    ) -> None:
        """As Amplify does: the token of the connection unless told otherwise (None: no token)."""
        token = self.token if token is ... else token
        authorization = {"host": HOST, **({"Authorization": token} if token else {})}
        data = json.dumps({"query": query, "variables": variables or {}})
        self.send(
            {
                "id": sub_id,
                "type": "start",
                "payload": {"data": data, "extensions": {"authorization": authorization}},
            }
        )

    def stop(self, sub_id: str) -> None:
        self.send({"id": sub_id, "type": "stop"})

    def receive(self) -> dict[str, Any]:
        while True:
            message: dict[str, Any] = self.ws.receive_json()
            if message != {"type": "ka"}:
                return message
            self.keep_alives += 1

    def subscribed(self, sub_id: str, variables: dict[str, Any] | None = None) -> None:
        self.start(sub_id, variables=variables)
        assert self.receive() == {"id": sub_id, "type": "start_ack"}


def only_error(message: dict[str, Any], sub_id: str | None) -> dict[str, Any]:
    assert message["type"] == "error", message
    assert message.get("id") == sub_id
    [error] = message["payload"]["errors"]
    assert isinstance(error["message"], str)
    assert error["message"]
    return dict(error)


def subscribers(world: World) -> int:
    return int(world.container.alerts.feed.subscribers)  # type: ignore[attr-defined]


# --- the connection ------------------------------------------------------------------------------
def test_connection_ack_then_keep_alives(world: World, tokens: TokenFactory) -> None:
    endpoint = AppSyncRealtime(world.container, keep_alive_seconds=0.05)
    app = Starlette(routes=[WebSocketRoute("/graphql/realtime", endpoint)])
    with TestClient(app) as client, AppSyncClient(client, tokens("Staff")) as appsync:
        assert appsync.ws.accepted_subprotocol == "graphql-ws"
        appsync.send({"type": "connection_init"})
        assert appsync.ws.receive_json() == {
            "type": "connection_ack",
            "payload": {"connectionTimeoutMs": 300000},
        }
        assert [appsync.ws.receive_json() for _ in range(3)] == [{"type": "ka"}] * 3
    served = [r for r in create_app(world.container).routes if getattr(r, "path", "") == "/graphql/realtime"]
    assert [r.endpoint.keep_alive_seconds for r in served] == [60.0]  # type: ignore[attr-defined]


def test_a_handshake_without_graphql_ws_is_refused(api: Api) -> None:
    with (
        pytest.raises(WebSocketDisconnect),
        api.client.websocket_connect("/graphql/realtime", subprotocols=["graphql-transport-ws"]),
    ):
        pass  # fmt: skip


def test_a_bad_header_is_a_connection_error(api: Api, tokens: TokenFactory) -> None:
    with AppSyncClient(api.client, tokens("Staff", expires_in=-120)) as appsync:
        message = appsync.connection_init()
        assert message["type"] == "connection_error"
        [error] = message["payload"]["errors"]
        assert (error["errorType"], error["errorCode"]) == ("UnauthorizedException", 401)
        with pytest.raises(WebSocketDisconnect) as closed:
            appsync.ws.receive_json()
        assert closed.value.code == 4401
    garbled = ["graphql-ws", "header-not*base64"]
    with api.client.websocket_connect("/graphql/realtime", subprotocols=garbled) as ws:
        ws.send_json({"type": "connection_init"})
        message = ws.receive_json()
        assert message["type"] == "connection_error"
        assert message["payload"]["errors"][0]["errorType"] == "BadRequestException"
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 4400


# --- subscriptions -------------------------------------------------------------------------------
def test_start_ack_then_the_full_alert_of_a_shortage(api: Api, tokens: TokenFactory, world: World) -> None:
    with AppSyncClient(api.client, tokens("Hospitals", sub="hospital-user")) as appsync:
        assert appsync.connection_init()["type"] == "connection_ack"
        appsync.subscribed("1", {"site": "site-north", "group": "O_NEG"})
        set_par(api, tokens, "site-north", "O_NEG", 4)  # none on the shelf, par 4: RED
        message = appsync.receive()
        assert (message["id"], message["type"], list(message["payload"])) == ("1", "data", ["data"])
        alert = message["payload"]["data"]["onShortageAlert"]
        assert set(alert) == ALERT_FIELDS  # the whole alert, whatever the mutation selected
        assert {k: alert[k] for k in ("siteId", "bloodGroup", "component", "status", "previousStatus")} == {
            "siteId": "site-north",
            "bloodGroup": "O_NEG",
            "component": "RED_CELLS",
            "status": "RED",
            "previousStatus": "GREEN",
        }
        assert (alert["available"], alert["threshold"], alert["daysOfSupply"]) == (0, 4, None)
        assert alert["id"] == world.alerts.published[0].id
        assert datetime.datetime.fromisoformat(alert["raisedAt"].replace("Z", "+00:00"))
        assert appsync.keep_alives == 1  # one right after the ack; the next a minute later


def test_alerts_are_filtered_on_the_server(api: Api, tokens: TokenFactory, world: World) -> None:
    with AppSyncClient(api.client, tokens("Staff")) as appsync:
        appsync.connection_init()
        appsync.subscribed("north", {"site": "site-north", "group": "O_NEG"})
        appsync.subscribed("south", {"site": "site-south"})
        set_par(api, tokens, "site-north", "A_POS", 4)  # another group: neither hears it
        set_par(api, tokens, "site-south", "O_NEG", 4)  # only "south" hears it
        set_par(api, tokens, "site-north", "O_NEG", 4)  # only "north" hears it
        heard = [appsync.receive() for _ in range(2)]
        assert [(m["id"], m["type"], m["payload"]["data"]["onShortageAlert"]["siteId"]) for m in heard] == [
            ("south", "data", "site-south"),
            ("north", "data", "site-north"),
        ]
        assert len(world.alerts.published) == 3  # the A_POS alert was raised, and told to nobody here


def test_stop_completes_and_ends_the_subscription(api: Api, tokens: TokenFactory, world: World) -> None:
    with AppSyncClient(api.client, tokens("Staff")) as appsync:
        appsync.connection_init()
        appsync.subscribed("1")
        assert subscribers(world) == 1
        appsync.stop("1")
        assert appsync.receive() == {"id": "1", "type": "complete"}
        assert subscribers(world) == 0
        appsync.subscribed("2")
        set_par(api, tokens, "site-north", "O_NEG", 4)
        assert appsync.receive()["id"] == "2"  # "1" hears nothing any more
    assert subscribers(world) == 0  # closing the socket ends its subscriptions


def test_the_legacy_query_string_form(api: Api, tokens: TokenFactory) -> None:
    with AppSyncClient(api.client, tokens("Staff"), legacy=True) as appsync:
        assert "+" in appsync.header or "/" in appsync.header
        assert appsync.ws.accepted_subprotocol == "graphql-ws"
        assert appsync.connection_init()["type"] == "connection_ack"
        appsync.start("1", variables={"site": "site-london"}, token=None)  # signed in by the header
        assert appsync.receive() == {"id": "1", "type": "start_ack"}
        set_par(api, tokens, "site-london", "B_NEG", 4)
        message = appsync.receive()
        assert message["type"] == "data"
        assert message["payload"]["data"]["onShortageAlert"]["siteId"] == "site-london"


def test_a_start_without_a_valid_token_is_unauthorized(
    api: Api, tokens: TokenFactory, foreign_key: SigningKey, world: World
) -> None:
    forged = tokens("Staff", key=foreign_key.private_pem)
    with AppSyncClient(api.client) as appsync:  # no token in the header either
        appsync.connection_init()
        for sub_id, token in (
            ("none", None),
            ("forged", forged),
            ("expired", tokens("Staff", expires_in=-120)),
        ):
            appsync.start(sub_id, token=token)
            error = only_error(appsync.receive(), sub_id)  # and no start_ack
            assert (error["errorType"], error["errorCode"]) == ("UnauthorizedException", 401)
            assert error["extensions"]["code"] == "UNAUTHENTICATED"
        assert subscribers(world) == 0


def test_a_donor_may_not_subscribe(api: Api, tokens: TokenFactory, world: World) -> None:
    with AppSyncClient(api.client, tokens("Donors")) as appsync:
        appsync.connection_init()
        appsync.start("1")
        error = only_error(appsync.receive(), "1")
        assert (error["errorType"], error["errorCode"], error["extensions"]["code"]) == (
            "Unauthorized",
            403,
            "FORBIDDEN",
        )
        assert "onShortageAlert" in error["message"]
        assert subscribers(world) == 0


def test_the_subscription_ends_unauthorized_when_the_token_expires(
    api: Api, tokens: TokenFactory, world: World
) -> None:
    expiring = tokens("Staff", extra={"exp": time.time() + 0.6})
    with AppSyncClient(api.client, expiring) as appsync:
        appsync.connection_init()
        appsync.subscribed("1")
        error = only_error(appsync.receive(), "1")  # within a second, with no alert in between
        assert (error["errorType"], error["errorCode"]) == ("UnauthorizedException", 401)
        assert "expired" in error["message"]
        assert subscribers(world) == 0
        appsync.stop("1")  # gone already; stopping it again is harmless
        assert appsync.receive() == {"id": "1", "type": "complete"}


def test_only_subscriptions_run_here(api: Api, tokens: TokenFactory, world: World) -> None:
    with AppSyncClient(api.client, tokens("Admins")) as appsync:
        appsync.connection_init()
        appsync.start("query", "{ listSites { id } }")
        error = only_error(appsync.receive(), "query")
        assert (error["errorType"], error["errorCode"]) == ("UnsupportedOperation", 400)
        assert error["message"].startswith("query not supported through the realtime channel")
        appsync.start("mutation", SET_PAR, {"site": "site-north", "group": "O_NEG", "par": 4})
        assert only_error(appsync.receive(), "mutation")["errorType"] == "UnsupportedOperation"
        assert world.alerts.published == []  # the mutation did not run
        appsync.start("typo", "subscription { onShortageAlert { id ")
        assert only_error(appsync.receive(), "typo")["errorType"] == "MalformedQueryException"
        appsync.start("unknown", "subscription { onShortageAlert { nope } }")
        error = only_error(appsync.receive(), "unknown")
        assert (error["errorType"], error["extensions"]["code"]) == ("ValidationError", "BAD_USER_INPUT")
        appsync.send({"id": "raw", "type": "start", "payload": {"data": "not json"}})
        assert only_error(appsync.receive(), "raw")["errorType"] == "BadRequestException"
        appsync.send({"type": "subscribe", "id": "x"})
        assert only_error(appsync.receive(), "x")["errorType"] == "UnsupportedOperation"
        appsync.ws.send_text("[1, 2]")
        assert only_error(appsync.receive(), None)["errorType"] == "BadRequestException"


def test_one_id_runs_one_subscription(api: Api, tokens: TokenFactory, world: World) -> None:
    with AppSyncClient(api.client, tokens("Staff")) as appsync:
        appsync.connection_init()
        appsync.subscribed("1")
        appsync.start("1")
        assert only_error(appsync.receive(), "1")["errorType"] == "BadRequestException"
        assert subscribers(world) == 1


# --- bloodbank serve --tls -----------------------------------------------------------------------
def _handshake(server: ssl.SSLContext, client: ssl.SSLContext, hostname: str) -> str:
    """A TLS handshake in memory: the version agreed, or the verification error raised."""
    client_in, client_out, server_in, server_out = (ssl.MemoryBIO() for _ in range(4))
    server_side = server.wrap_bio(server_in, server_out, server_side=True)
    client_side = client.wrap_bio(client_in, client_out, server_hostname=hostname)
    for _ in range(10):
        finished = 0
        for side, outgoing, incoming in (
            (client_side, client_out, server_in),
            (server_side, server_out, client_in),
        ):
            try:
                side.do_handshake()
                finished += 1
            except ssl.SSLWantReadError:
                pass
            incoming.write(outgoing.read())
        if finished == 2:
            return str(client_side.version())
    raise AssertionError("the handshake did not finish")


def test_serve_tls_makes_a_certificate_for_loopback_and_reuses_it(tmp_path: Path) -> None:
    assert cli.parser().parse_args(["serve", "--tls"]).tls is True
    cert_path, key_path = stack.tls_certificate(tmp_path, ["127.0.0.1"])
    assert key_path.stat().st_mode & 0o077 == 0  # the key is the owner's alone
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    assert cert.public_key() == key.public_key()
    assert cert.issuer == cert.subject  # self-signed
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"localhost"} <= set(names.get_values_for_type(x509.DNSName))
    assert {"127.0.0.1", "::1"} <= {str(ip) for ip in names.get_values_for_type(x509.IPAddress)}
    assert cert.not_valid_after_utc > datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=300)

    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_path, key_path)  # what uvicorn does with ssl_certfile/ssl_keyfile
    trusting = ssl.create_default_context(cafile=str(cert_path))
    for hostname in ("localhost", "127.0.0.1"):
        assert _handshake(server, trusting, hostname).startswith("TLS")
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(server, trusting, "example.org")

    made = cert_path.read_bytes()
    assert stack.tls_certificate(tmp_path, ["localhost"]) == (cert_path, key_path)
    assert cert_path.read_bytes() == made  # reused
    stack.tls_certificate(tmp_path, ["bloodbank.test"])
    remade = x509.load_pem_x509_certificate(cert_path.read_bytes())  # a new name: made again
    names = remade.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"localhost", "bloodbank.test"} <= set(names.get_values_for_type(x509.DNSName))
    cert_path.write_text("not a certificate")
    stack.tls_certificate(tmp_path)
    x509.load_pem_x509_certificate(cert_path.read_bytes())  # a broken one is replaced
