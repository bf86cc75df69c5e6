"""GraphQL subscriptions on AWS: an API Gateway WebSocket API speaking AppSync's real-time protocol.

Mangum carries no WebSockets, and no process stays up between messages, so a subscription lives in
the table instead of in a task:

- ``$connect``: the client offers the subprotocols ``graphql-ws`` and, optionally,
  ``header-<base64url JSON of its auth headers>`` (or the legacy ``?header=``). A token there is
  checked now: a bad one refuses the handshake (401), as API Gateway cannot send a message before
  the connection is open. The connection is stored with who signed in.
- ``$default`` carries every message, as on ``/graphql/realtime`` (``bloodbank/realtime.py``):
  ``connection_init`` -> ``connection_ack`` (and a ``ka``); ``start`` -> the subscription runs once
  through ``schema.subscribe`` exactly as on the local server (sign-in, permissions, arguments) up to
  the point where it waits for alerts; then it is stored, with the filter its resolver asked for, and
  ``start_ack`` is sent. A refusal is an ``error`` and nothing is stored. ``stop`` -> ``complete``.
- ``$disconnect``: the connection and its subscriptions are dropped.
- ``fan_out(alert)`` (the alerts topic's subscriber): reads the subscriptions of the alert's site and
  of every site (two index Queries), runs each matching one through ``schema.subscribe`` with the
  alert, so each subscriber gets the fields it selected and only what it may see, and posts the
  result with ``post_to_connection``. A subscription whose token has expired gets an Unauthorized
  ``error`` and is dropped; a connection that is gone is dropped with its subscriptions.
- ``keep_alive()`` (a schedule): a ``ka`` to every connection, so Amplify (which reconnects after
  ``connectionTimeoutMs`` without one) and API Gateway (10 minutes idle) keep it open.

Delivery is at least once: if the fan-out fails part-way, SNS retries it and some subscribers hear
the alert twice. Each alert has an ``id``, so clients can tell.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from bloodbank.bootstrap import Container
from bloodbank.domain.alerts import AlertFilter, ShortageAlert
from bloodbank.domain.identity import Identity
from bloodbank.domain.subscriptions import (
    MAX_SUBSCRIPTIONS,
    Connection,
    StoredSubscription,
    Subscriber,
    valid_subscription_id,
)
from bloodbank.errors import AppError, Unauthenticated
from bloodbank.ports import ConnectionPoster, ConnectionStore
from bloodbank.realtime import (
    ERROR_CODES,
    SUBPROTOCOL,
    BadRequest,
    LimitExceeded,
    UnsupportedOperation,
    app_error,
    authorization_of,
    decode_header,
    graphql_error,
    read_start,
    require_subscription,
)
from schema import schema
from schema.context import RequestContext

log = logging.getLogger("bloodbank.websocket")

CONNECTION_TIMEOUT_MS = (
    300_000  # Amplify reconnects after this long without a ka; the schedule sends one every 4 min
)
POST_THREADS = 16


class _Feed:
    """The alerts feed of one run of a subscription: ``alert`` (if given and wanted), then nothing.

    ``waiting`` is set once the subscription has nothing more to hear and waits (that is, its
    resolver accepted the subscriber and the arguments); ``wanted`` is what it asked for.
    """

    def __init__(self, alert: ShortageAlert | None = None) -> None:
        self.alert = alert
        self.wanted: AlertFilter | None = None
        self.waiting = asyncio.Event()

    def subscribe(self, wanted: AlertFilter) -> AsyncIterator[ShortageAlert]:
        self.wanted = wanted
        return self._alerts(wanted)

    async def _alerts(self, wanted: AlertFilter) -> AsyncIterator[ShortageAlert]:
        if self.alert is not None and wanted.matches(self.alert):
            yield self.alert
        self.waiting.set()
        await asyncio.Event().wait()  # never ends by itself: the caller closes it


@dataclass(frozen=True)
class _Outcome:
    result: Any | None  # the first ExecutionResult, or None if the subscription waited for more
    wanted: AlertFilter | None


@dataclass
class ApiGatewaySubscriptions:
    container: Container
    post_threads: int = POST_THREADS
    _pool: ThreadPoolExecutor | None = field(default=None, init=False, repr=False)

    @property
    def store(self) -> ConnectionStore:
        return self.container.connections

    @property
    def poster(self) -> ConnectionPoster:
        return self.container.poster

    # --- the WebSocket API's routes --------------------------------------------------------------
    def route(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """The Lambda proxy integration of ``$connect``, ``$disconnect`` and ``$default``."""
        context = event.get("requestContext") or {}
        route = context.get("routeKey")
        if route == "$connect":
            return self.connect(event)
        if route == "$disconnect":
            self.store.drop_connection(str(context["connectionId"]))
            return {"statusCode": 200}
        return self.message(event)

    def connect(self, event: Mapping[str, Any]) -> dict[str, Any]:
        context = event["requestContext"]
        request_id = str(context.get("requestId") or uuid.uuid4())
        headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
        offered = [p.strip() for p in headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
        if SUBPROTOCOL not in offered:
            return _refusal(BadRequest(f"Offer the {SUBPROTOCOL} subprotocol (AppSync's real-time protocol)"))
        try:
            auth: dict[str, Any] = {}
            for protocol in offered:
                if protocol.startswith("header-"):
                    auth = decode_header(protocol.removeprefix("header-"))
                    break
            else:
                legacy = (event.get("queryStringParameters") or {}).get("header")
                auth = decode_header(legacy.replace(" ", "+")) if legacy else {}
            token = authorization_of(auth)
            subscriber = Subscriber.of(self.identify(token, request_id)) if token is not None else None
        except AppError as refused:
            log.info("websocket refused", extra={"request_id": request_id, "code": refused.code})
            return _refusal(refused)
        now = self.container.clock()
        connection = Connection(str(context["connectionId"]), self._endpoint(context), now, subscriber)
        self.store.save_connection(connection)
        return {"statusCode": 200, "headers": {"Sec-WebSocket-Protocol": SUBPROTOCOL}}

    def _endpoint(self, context: Mapping[str, Any]) -> str:
        """Where ``post_to_connection`` reaches this connection: the API's own management endpoint
        when configured (clients may have come through CloudFront), else the host they connected to."""
        configured = self.container.settings.websocket_endpoint
        return configured or f"https://{context['domainName']}/{context['stage']}"

    def message(self, event: Mapping[str, Any]) -> dict[str, Any]:
        context = event["requestContext"]
        connection_id = str(context["connectionId"])
        request_id = str(context.get("requestId") or uuid.uuid4())
        connection = self.store.connection(connection_id) or Connection(
            connection_id, self._endpoint(context), self.container.clock(), None
        )
        body = event.get("body") or ""
        try:
            message = orjson.loads(body)
        except orjson.JSONDecodeError:
            message = None
        if not isinstance(message, dict):
            self._error(connection, None, BadRequest("Messages are JSON objects with a type"))
            return {"statusCode": 200}
        kind, sub_id = message.get("type"), message.get("id")
        if kind == "connection_init":
            ack = {"type": "connection_ack", "payload": {"connectionTimeoutMs": CONNECTION_TIMEOUT_MS}}
            self._send(connection, ack)
            self._send(connection, {"type": "ka"})
        elif kind not in ("start", "stop"):
            refused = UnsupportedOperation(
                f"{kind} not supported through the realtime channel: send connection_init, start or stop"
            )
            self._error(connection, sub_id if isinstance(sub_id, str) else None, refused)
        elif not isinstance(sub_id, str) or not valid_subscription_id(sub_id):
            problem = f"A {kind} message needs an id: 1-128 letters, digits or '_.:-'"
            self._error(connection, None, BadRequest(problem))
        elif kind == "stop":
            self.store.drop_subscription(connection_id, sub_id)
            self._send(connection, {"id": sub_id, "type": "complete"})
        else:
            try:
                self.start(connection, sub_id, message.get("payload"), request_id)
            except AppError as refused_start:
                self._error(connection, sub_id, refused_start)
        return {"statusCode": 200}

    def start(self, connection: Connection, sub_id: str, payload: object, request_id: str) -> None:
        if self.store.subscription_count(connection.id) >= MAX_SUBSCRIPTIONS:
            raise LimitExceeded(f"A connection runs at most {MAX_SUBSCRIPTIONS} subscriptions")
        start = read_start(payload)
        token = authorization_of(start.authorization)
        if token is not None:
            identity = self.identify(token, request_id)
        elif connection.subscriber is not None:
            identity = connection.subscriber.identity()
        else:
            raise Unauthenticated(
                "Sign in first: send your Cognito access token in payload.extensions.authorization"
                ".Authorization (or in the connection's header)"
            )
        require_subscription(start.query, start.operation_name)
        outcome = asyncio.run(
            self._run(start.query, start.variables, start.operation_name, identity, request_id, None)
        )
        if outcome.result is not None:  # refused (or it ended at once): the errors say why
            errors = [graphql_error(e) for e in outcome.result.errors or []]
            if not errors:
                raise BadRequest("The subscription ended before it started")
            self._send(connection, {"id": sub_id, "type": "error", "payload": {"errors": errors}})
            return
        if outcome.wanted is None:
            raise UnsupportedOperation("Only onShortageAlert subscriptions are served here")
        now = self.container.clock()
        stored = StoredSubscription(
            connection_id=connection.id,
            id=sub_id,
            endpoint=connection.endpoint,
            query=start.query,
            variables=start.variables,
            operation_name=start.operation_name,
            wanted=outcome.wanted,
            subscriber=Subscriber.of(identity),
            created_at=now,
            keep_until=connection.keep_until,
        )
        if not self.store.save_subscription(stored):
            raise BadRequest(f"Subscription {sub_id} is running: stop it first, or start with another id")
        self._send(connection, {"id": sub_id, "type": "start_ack"})

    # --- delivery --------------------------------------------------------------------------------
    def fan_out(self, alert: ShortageAlert, request_id: str = "-") -> dict[str, int]:
        """Every subscription that wants ``alert`` hears it; returns what happened, counted."""
        candidates = [s for s in self.store.subscriptions_for(alert.site_id) if s.wanted.matches(alert)]
        runs = asyncio.run(self._deliveries(alert, candidates, request_id))
        counts = {"delivered": 0, "expired": 0, "gone": 0, "skipped": 0}
        posts: list[tuple[StoredSubscription, dict[str, Any], bool]] = []
        for subscription, outcome in zip(candidates, runs, strict=True):
            if outcome.result is None:
                counts["skipped"] += 1
                continue
            errors = [graphql_error(e) for e in outcome.result.errors or []]
            if errors and outcome.result.data is None:
                message = {"id": subscription.id, "type": "error", "payload": {"errors": errors}}
                posts.append((subscription, message, True))
            else:
                payload = {"data": outcome.result.data, **({"errors": errors} if errors else {})}
                posts.append(
                    (subscription, {"id": subscription.id, "type": "data", "payload": payload}, False)
                )
        gone: set[str] = set()
        for (subscription, _, ends), delivered in zip(
            posts, self._post_all([(s.endpoint, s.connection_id, m) for s, m, _ in posts]), strict=True
        ):
            if not delivered:
                gone.add(subscription.connection_id)
            elif ends:
                counts["expired"] += 1
                self.store.drop_subscription(subscription.connection_id, subscription.id)
            else:
                counts["delivered"] += 1
        for connection_id in gone:
            self.store.drop_connection(connection_id)
        counts["gone"] = len(gone)
        log.info("alert fanned out", extra={"alert": alert.id, "request_id": request_id, **counts})
        return counts

    def keep_alive(self) -> dict[str, int]:
        connections = list(self.store.connections())
        sent = self._post_all([(c.endpoint, c.id, {"type": "ka"}) for c in connections])
        gone = [c.id for c, ok in zip(connections, sent, strict=True) if not ok]
        for connection_id in gone:
            self.store.drop_connection(connection_id)
        return {"connections": len(connections) - len(gone), "gone": len(gone)}

    async def _deliveries(
        self, alert: ShortageAlert, subscriptions: list[StoredSubscription], request_id: str
    ) -> list[_Outcome]:
        return [
            await self._run(
                s.query,
                dict(s.variables) if s.variables is not None else None,
                s.operation_name,
                s.subscriber.identity(),
                request_id,
                alert,
            )
            for s in subscriptions
        ]

    async def _run(
        self,
        query: str,
        variables: dict[str, Any] | None,
        operation_name: str | None,
        identity: Identity,
        request_id: str,
        alert: ShortageAlert | None,
    ) -> _Outcome:
        """The subscription's first result with this feed, or None once it waits for more."""
        feed = _Feed(alert)
        services = replace(self.container, alerts=replace(self.container.alerts, feed=feed))
        context = RequestContext(services=services, request_id=request_id, identity=identity)
        results = await schema.subscribe(
            query, variable_values=variables, context_value=context, operation_name=operation_name
        )
        first = asyncio.ensure_future(anext(results, None))
        waiting = asyncio.ensure_future(feed.waiting.wait())
        try:
            await asyncio.wait({first, waiting}, return_when=asyncio.FIRST_COMPLETED)
            return _Outcome(first.result() if first.done() else None, feed.wanted)
        finally:
            for task in (first, waiting):
                if not task.done():
                    task.cancel()
            await asyncio.wait({first, waiting})
            await results.aclose()

    def _post_all(self, messages: list[tuple[str, str, Mapping[str, object]]]) -> list[bool]:
        """Posts them concurrently; True for each delivered, False for each connection gone."""
        if not messages:
            return []
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.post_threads, thread_name_prefix="ws-post")
        return list(self._pool.map(lambda m: self.poster.post(*m), messages))

    # --- helpers ---------------------------------------------------------------------------------
    def identify(self, token: str | None, request_id: str) -> Identity:
        identity = self.container.authenticator.sign_in(token, request_id)
        if identity is None:
            raise Unauthenticated("Sign in first: send your Cognito access token")
        return identity

    def _send(self, connection: Connection, message: Mapping[str, object]) -> None:
        if not self.poster.post(connection.endpoint, connection.id, message):
            self.store.drop_connection(connection.id)

    def _error(self, connection: Connection, sub_id: str | None, error: AppError) -> None:
        message: dict[str, object] = {"type": "error", "payload": {"errors": [app_error(error)]}}
        if sub_id is not None:
            message["id"] = sub_id
        self._send(connection, message)


def _refusal(error: AppError) -> dict[str, Any]:
    """The $connect answer that refuses the handshake; the body says why (API Gateway may drop it)."""
    status = ERROR_CODES.get(error.code, 500)
    return {"statusCode": status, "body": orjson.dumps({"errors": [app_error(error)]}).decode()}
