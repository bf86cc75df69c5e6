"""GraphQL subscriptions on AWS: the API Gateway WebSocket Lambda and the alerts fan-out (handler.py).

Events are shaped as API Gateway sends them (``requestContext.routeKey``, ``connectionId``,
``domainName``, ``stage``; the subprotocols in ``Sec-WebSocket-Protocol``); messages follow AppSync's
real-time protocol, as Amplify JS v6 sends them. Most tests read what was posted from a recording
poster; one posts through boto3 to moto's API Gateway management API.
"""

from __future__ import annotations

import dataclasses
import json
from types import ModuleType
from typing import Any
from urllib.parse import quote

import pytest
from moto import mock_aws
from moto.apigatewaymanagementapi.models import apigatewaymanagementapi_backends

from bloodbank.adapters.sns import SnsAlertPublisher, alert_document
from bloodbank.domain.alerts import ShortageAlert
from bloodbank.domain.subscriptions import MAX_SUBSCRIPTIONS
from bloodbank.fakes import InMemoryConnections, RecordingPoster
from bloodbank.websocket import ApiGatewaySubscriptions
from tests.api.test_appsync_realtime import ALERT_FIELDS, SUBSCRIBE, base64_plain, base64url
from tests.api.test_subscriptions import set_par
from tests.conftest import Api, TokenFactory, World

DOMAIN = "abc123.execute-api.us-east-1.amazonaws.com"
ENDPOINT = f"https://{DOMAIN}/prod"


def ws_event(
    route: str,
    connection: str = "conn-1",
    *,
    body: object | None = None,
    protocols: list[str] | None = None,
    query: dict[str, str] | None = None,
) -> dict[str, Any]:
    kinds = {"$connect": "CONNECT", "$disconnect": "DISCONNECT"}
    event: dict[str, Any] = {
        "requestContext": {
            "routeKey": route,
            "eventType": kinds.get(route, "MESSAGE"),
            "messageDirection": "IN",
            "connectionId": connection,
            "domainName": DOMAIN,
            "stage": "prod",
            "apiId": "abc123",
            "requestId": f"req-{route}",
            "connectedAt": 1764000000000,
        },
        "isBase64Encoded": False,
    }
    if protocols is not None:
        event["headers"] = {"Host": DOMAIN, "Sec-WebSocket-Protocol": ", ".join(protocols)}
    if query is not None:
        event["queryStringParameters"] = query
    if body is not None:
        event["body"] = body if isinstance(body, str) else json.dumps(body)
    return event


@dataclasses.dataclass
class Gateway:
    """The WebSocket API as a client sees it: open connections, send messages, read what came back."""

    subscriptions: ApiGatewaySubscriptions
    store: InMemoryConnections
    poster: RecordingPoster

    def connect(self, connection: str = "conn-1", token: str | None = None, **kw: Any) -> dict[str, Any]:
        headers = {"host": DOMAIN, **({"Authorization": token} if token else {})}
        protocols = kw.pop("protocols", ["graphql-ws", f"header-{base64url(headers)}"])
        return self.subscriptions.route(ws_event("$connect", connection, protocols=protocols, **kw))

    def send(self, message: object, connection: str = "conn-1") -> list[dict[str, object]]:
        """What the connection was sent in answer to ``message``."""
        before = len(self.poster.of(connection))
        answer = self.subscriptions.route(ws_event("$default", connection, body=message))
        assert answer == {"statusCode": 200}
        return self.poster.of(connection)[before:]

    def start(
        self, token: str | None, variables: dict[str, Any], sub_id: str = "1", connection: str = "conn-1",
        query: str = SUBSCRIBE,
    ) -> list[dict[str, object]]:  # fmt: skip
        auth = {"host": DOMAIN, **({"Authorization": token} if token else {})}
        data = json.dumps({"query": query, "variables": variables})
        message = {
            "id": sub_id,
            "type": "start",
            "payload": {"data": data, "extensions": {"authorization": auth}},
        }
        return self.send(message, connection)


@pytest.fixture
def gateway(world: World) -> Gateway:
    store, poster = InMemoryConnections(), RecordingPoster()
    container = dataclasses.replace(world.container, connections=store, poster=poster)
    return Gateway(ApiGatewaySubscriptions(container), store, poster)


def raise_alert(api: Api, tokens: TokenFactory, world: World, site: str, group: str) -> ShortageAlert:
    """An admin's par level over an empty shelf puts the level in RED: the alert the topic carries."""
    before = len(world.alerts.published)
    set_par(api, tokens, site, group, 4)
    [alert] = world.alerts.published[before:]
    return alert


def only(messages: list[dict[str, object]]) -> dict[str, object]:
    [message] = messages
    return message


def error_of(message: dict[str, object]) -> dict[str, Any]:
    assert message["type"] == "error", message
    payload: Any = message["payload"]
    [error] = payload["errors"]
    return dict(error)


# --- $connect ---------------------------------------------------------------------------------------
def test_connect_selects_graphql_ws_and_remembers_who_signed_in(
    gateway: Gateway, tokens: TokenFactory
) -> None:
    answer = gateway.connect(token=tokens("Hospitals", sub="hospital-user"))
    assert answer == {"statusCode": 200, "headers": {"Sec-WebSocket-Protocol": "graphql-ws"}}
    connection = gateway.store.connection("conn-1")
    assert connection is not None
    assert connection.endpoint == ENDPOINT
    assert connection.subscriber is not None
    assert (connection.subscriber.sub, connection.subscriber.hospital_id) == ("hospital-user", "hosp-st-mary")


def test_behind_cloudfront_replies_go_to_the_apis_own_endpoint(world: World, tokens: TokenFactory) -> None:
    """Clients that came through the CloudFront host are posted to through the configured endpoint."""
    own = "https://xyz789.execute-api.eu-west-2.amazonaws.com/dev"
    settings = dataclasses.replace(world.container.settings, websocket_endpoint=own)
    store, poster = InMemoryConnections(), RecordingPoster()
    container = dataclasses.replace(world.container, settings=settings, connections=store, poster=poster)
    gateway = Gateway(ApiGatewaySubscriptions(container), store, poster)
    gateway.connect(token=tokens("Hospitals", sub="hospital-user"))
    connection = store.connection("conn-1")
    assert connection is not None
    assert connection.endpoint == own
    gateway.send({"type": "connection_init"})
    assert poster.endpoints == {own}


def test_connect_without_a_token_is_allowed_and_the_legacy_header_form_works(
    gateway: Gateway, tokens: TokenFactory
) -> None:
    assert gateway.connect("anonymous", protocols=["graphql-ws"])["statusCode"] == 200
    header = base64_plain({"host": DOMAIN, "Authorization": tokens("Staff", sub="staff-1")})
    legacy = gateway.connect("legacy", protocols=["graphql-ws"], query={"header": header, "payload": "e30="})
    assert legacy["statusCode"] == 200
    connection = gateway.store.connection("legacy")
    assert connection is not None
    assert connection.subscriber is not None
    assert connection.subscriber.sub == "staff-1"


def test_connect_refuses_a_bad_token_a_garbled_header_and_another_protocol(
    gateway: Gateway, tokens: TokenFactory
) -> None:
    forged = gateway.connect(token=tokens("Staff", issuer="https://evil.example"))
    assert forged["statusCode"] == 401
    assert json.loads(forged["body"])["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert gateway.connect(protocols=["graphql-ws", "header-%%%"])["statusCode"] == 400
    assert gateway.connect(protocols=["graphql-transport-ws"])["statusCode"] == 400
    assert gateway.store.by_id == {}


# --- messages ---------------------------------------------------------------------------------------
def test_connection_init_is_acknowledged_with_a_timeout_and_a_keep_alive(gateway: Gateway) -> None:
    gateway.connect(protocols=["graphql-ws"])
    ack, keep_alive = gateway.send({"type": "connection_init"})
    assert ack == {"type": "connection_ack", "payload": {"connectionTimeoutMs": 300000}}
    assert keep_alive == {"type": "ka"}


def test_a_started_subscription_hears_the_alert_it_asked_for_with_the_fields_it_selected(
    gateway: Gateway, api: Api, tokens: TokenFactory, world: World
) -> None:
    gateway.connect(protocols=["graphql-ws"])
    gateway.send({"type": "connection_init"})
    token = tokens("Hospitals", sub="hospital-user")
    assert gateway.start(token, {"site": "site-north", "group": "O_NEG"}) == [
        {"id": "1", "type": "start_ack"}
    ]
    slim = 'subscription { onShortageAlert(siteId: "site-north") { status available } }'
    assert gateway.start(token, {}, sub_id="slim", query=slim) == [{"id": "slim", "type": "start_ack"}]

    other = raise_alert(api, tokens, world, "site-south", "O_NEG")
    assert gateway.subscriptions.fan_out(other)["delivered"] == 0  # another site: not even read
    assert gateway.poster.of("conn-1", "data") == []

    alert = raise_alert(api, tokens, world, "site-north", "O_NEG")
    assert gateway.subscriptions.fan_out(alert) == {"delivered": 2, "expired": 0, "gone": 0, "skipped": 0}
    full, slim_data = gateway.poster.of("conn-1", "data")
    assert full["id"] == "1"
    payload: Any = full["payload"]
    received = payload["data"]["onShortageAlert"]
    assert set(received) == ALERT_FIELDS
    assert received | {"raisedAt": None} == alert_document(alert) | {"raisedAt": None}
    assert slim_data == {"id": "slim", "type": "data", "payload": {"data": {"onShortageAlert": {
        "status": "RED", "available": 0}}}}  # fmt: skip

    other_group = raise_alert(api, tokens, world, "site-north", "A_POS")
    assert gateway.subscriptions.fan_out(other_group) == {
        "delivered": 1,
        "expired": 0,
        "gone": 0,
        "skipped": 0,
    }


def test_the_connection_header_signs_in_starts_without_their_own_token(
    gateway: Gateway, api: Api, tokens: TokenFactory, world: World
) -> None:
    gateway.connect(token=tokens("Staff", sub="staff-1"))
    assert gateway.start(None, {}) == [{"id": "1", "type": "start_ack"}]
    [stored] = gateway.store.subscriptions.values()
    assert (stored.subscriber.sub, stored.wanted.site_id) == ("staff-1", None)
    gateway.subscriptions.fan_out(raise_alert(api, tokens, world, "site-south", "B_NEG"))
    assert len(gateway.poster.of("conn-1", "data")) == 1  # every site's alerts, from the * partition


@pytest.mark.parametrize(
    ("groups", "code", "error_type"),
    [(("Donors",), "FORBIDDEN", "Unauthorized"), ((), "FORBIDDEN", "Unauthorized")],
)
def test_who_may_not_see_stock_is_refused_and_nothing_is_stored(
    gateway: Gateway, tokens: TokenFactory, groups: tuple[str, ...], code: str, error_type: str
) -> None:
    gateway.connect(protocols=["graphql-ws"])
    error = error_of(only(gateway.start(tokens(*groups), {})))
    assert (error["extensions"]["code"], error["errorType"], error["errorCode"]) == (code, error_type, 403)
    assert gateway.store.subscriptions == {}


def test_refused_starts_say_why(gateway: Gateway, tokens: TokenFactory) -> None:
    gateway.connect(protocols=["graphql-ws"])
    staff = tokens("Staff")
    anonymous = error_of(only(gateway.start(None, {})))
    assert (anonymous["errorType"], anonymous["errorCode"]) == ("UnauthorizedException", 401)
    forged = error_of(only(gateway.start(tokens("Staff", issuer="https://evil.example"), {})))
    assert forged["extensions"]["code"] == "UNAUTHENTICATED"
    garbled = error_of(only(gateway.start(staff, {}, query="subscription {")))
    assert garbled["errorType"] == "MalformedQueryException"
    mutation = error_of(only(gateway.start(staff, {}, query="mutation { __typename }")))
    assert mutation["errorType"] == "UnsupportedOperation"
    unknown = error_of(only(gateway.start(staff, {}, query="subscription { onNothing { id } }")))
    assert (unknown["errorType"], unknown["extensions"]["code"]) == ("ValidationError", "BAD_USER_INPUT")
    bad_variable = error_of(only(gateway.start(staff, {"group": "Z_POS"})))
    assert bad_variable["extensions"]["code"] in {"BAD_USER_INPUT", "GRAPHQL_VALIDATION_FAILED"}
    bad_id = error_of(only(gateway.start(staff, {}, sub_id="has space")))
    assert bad_id["errorType"] == "BadRequestException"
    assert gateway.store.subscriptions == {}

    assert gateway.start(staff, {}) == [{"id": "1", "type": "start_ack"}]
    twice = error_of(only(gateway.start(staff, {})))
    assert "running" in twice["message"]
    assert error_of(only(gateway.send("not json")))["errorType"] == "BadRequestException"
    assert (
        error_of(only(gateway.send({"type": "subscribe", "id": "2"})))["errorType"] == "UnsupportedOperation"
    )


def test_a_connection_holds_at_most_a_hundred_subscriptions(gateway: Gateway, tokens: TokenFactory) -> None:
    gateway.connect(token=tokens("Staff"))
    for n in range(MAX_SUBSCRIPTIONS):
        assert gateway.start(None, {}, sub_id=f"s{n}")[0]["type"] == "start_ack"
    error = error_of(only(gateway.start(None, {}, sub_id="one-more")))
    assert error["errorType"] == "LimitExceededError"


def test_stop_completes_and_disconnect_forgets_everything(
    gateway: Gateway, api: Api, tokens: TokenFactory, world: World
) -> None:
    gateway.connect(token=tokens("Staff"))
    gateway.start(None, {}, sub_id="a")
    gateway.start(None, {}, sub_id="b")
    assert gateway.send({"id": "a", "type": "stop"}) == [{"id": "a", "type": "complete"}]
    assert list(gateway.store.subscriptions) == [("conn-1", "b")]
    gateway.subscriptions.route(ws_event("$disconnect"))
    assert gateway.store.subscriptions == {}
    assert gateway.store.by_id == {}
    assert (
        gateway.subscriptions.fan_out(raise_alert(api, tokens, world, "site-north", "O_NEG"))["delivered"]
        == 0
    )


# --- delivery ---------------------------------------------------------------------------------------
def test_an_expired_token_ends_the_subscription_with_an_unauthorized_error(
    gateway: Gateway, api: Api, tokens: TokenFactory, world: World
) -> None:
    gateway.connect(protocols=["graphql-ws"])
    gateway.start(tokens("Staff"), {})
    key = ("conn-1", "1")
    stored = gateway.store.subscriptions[key]
    gateway.store.subscriptions[key] = dataclasses.replace(
        stored, subscriber=dataclasses.replace(stored.subscriber, expires_at=1_000_000_000)
    )
    counts = gateway.subscriptions.fan_out(raise_alert(api, tokens, world, "site-north", "O_NEG"))
    assert counts == {"delivered": 0, "expired": 1, "gone": 0, "skipped": 0}
    error = error_of(only(gateway.poster.of("conn-1", "error")))
    assert (error["errorType"], error["extensions"]["code"]) == ("UnauthorizedException", "UNAUTHENTICATED")
    assert gateway.store.subscriptions == {}


def test_a_gone_connection_is_forgotten_with_its_subscriptions(
    gateway: Gateway, api: Api, tokens: TokenFactory, world: World
) -> None:
    gateway.connect("alive", token=tokens("Staff"))
    gateway.connect("gone", token=tokens("Staff"))
    for connection in ("alive", "gone"):
        gateway.start(None, {}, sub_id="x", connection=connection)
        gateway.start(None, {"site": "site-north"}, sub_id="y", connection=connection)
    gateway.poster.gone.add("gone")
    counts = gateway.subscriptions.fan_out(raise_alert(api, tokens, world, "site-north", "O_NEG"))
    assert counts == {"delivered": 2, "expired": 0, "gone": 1, "skipped": 0}
    assert set(gateway.store.by_id) == {"alive"}
    assert {k[0] for k in gateway.store.subscriptions} == {"alive"}


def test_keep_alive_reaches_every_connection_and_drops_the_gone(
    gateway: Gateway, tokens: TokenFactory
) -> None:
    for connection in ("a", "b", "c"):
        gateway.connect(connection, protocols=["graphql-ws"])
    gateway.poster.gone.add("b")
    assert gateway.subscriptions.keep_alive() == {"connections": 2, "gone": 1}
    assert gateway.poster.of("a") == [{"type": "ka"}] == gateway.poster.of("c")
    assert set(gateway.store.by_id) == {"a", "c"}


# --- handler.py, with moto's API Gateway management API -----------------------------------------------


def sns_event(*messages: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": "arn:aws:sns:us-east-1:123456789012:bloodbank-alerts:1",
                "Sns": {
                    "Type": "Notification",
                    "MessageId": f"message-{n}",
                    "TopicArn": "arn:aws:sns:us-east-1:123456789012:bloodbank-alerts",
                    "Subject": "Blood stock AMBER",
                    "Message": message,
                    "Timestamp": "2026-11-22T09:00:00.000Z",
                    "MessageAttributes": {},
                },
            }
            for n, message in enumerate(messages)
        ]
    }


def test_the_serverless_path_posts_to_the_stored_connection_through_moto(
    handler: ModuleType, api: Api, tokens: TokenFactory, world: World
) -> None:
    with mock_aws():
        token = tokens("Hospitals", sub="hospital-user")
        headers = {"host": DOMAIN, "Authorization": token}
        protocols = ["graphql-ws", f"header-{base64url(headers)}"]
        assert handler.websocket(ws_event("$connect", "Zx1=", protocols=protocols), None)["statusCode"] == 200
        start = {"id": "1", "type": "start", "payload": {
            "data": json.dumps({"query": SUBSCRIBE, "variables": {"site": "site-north"}}),
            "extensions": {"authorization": headers}}}  # fmt: skip
        assert handler.websocket(ws_event("$default", "Zx1=", body=start), None) == {"statusCode": 200}

        alert = raise_alert(api, tokens, world, "site-north", "O_NEG")
        message = SnsAlertPublisher(None, "arn").request(alert)["Message"]  # what the topic carries
        counts = handler.fan_out_alerts(sns_event(message, "not an alert", "[1]"), None)
        assert counts == {"alerts": 1, "delivered": 1, "expired": 0, "gone": 0, "skipped": 0, "unreadable": 2}

        backend = apigatewaymanagementapi_backends["123456789012"]["us-east-1"]
        frames = backend.connections[quote("Zx1=", safe="")].data.decode()  # (moto keeps it URL-encoded)
        ack, data = (json.loads(f) for f in frames.replace("}{", "}\n{").splitlines())
        assert ack == {"id": "1", "type": "start_ack"}
        assert data["type"] == "data"
        assert data["payload"]["data"]["onShortageAlert"]["id"] == alert.id

        assert handler.websocket_keep_alive({}, None) == {"connections": 1, "gone": 0}
        assert backend.connections[quote("Zx1=", safe="")].data.decode().endswith('{"type":"ka"}')
        assert handler.websocket(ws_event("$disconnect", "Zx1="), None) == {"statusCode": 200}
        assert handler.websocket_keep_alive({}, None) == {"connections": 0, "gone": 0}
