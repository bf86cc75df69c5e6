"""AWS AppSync's real-time WebSocket protocol on ``/graphql/realtime``, for Amplify JS subscriptions.

The client opens the socket with the subprotocols ``graphql-ws`` and ``header-<base64url JSON of its
auth headers>`` (or, the legacy form, ``?header=<base64 JSON>&payload=<base64 of {}>``); the server
selects ``graphql-ws``. Then, as Amplify JS v6 speaks it::

    client {"type":"connection_init"}
    server {"type":"connection_ack","payload":{"connectionTimeoutMs":300000}}, then {"type":"ka"} now
           and every minute
    client {"id":"1","type":"start","payload":{"data":"{\\"query\\":...,\\"variables\\":...}",
            "extensions":{"authorization":{"Authorization":"<jwt>","host":"..."}}}}
    server {"id":"1","type":"start_ack"}, then {"id":"1","type":"data","payload":{"data":{...}}} per event
    client {"id":"1","type":"stop"}
    server {"id":"1","type":"complete"}

A start signs in with ``payload.extensions.authorization``, else with the connection's header, and runs
through ``schema.subscribe`` exactly as on ``/graphql`` (permissions, filters, error masking). A start
that fails, and a subscription that ends in an error (an expired token), get
``{"id":"1","type":"error","payload":{"errors":[{"errorType":...,"errorCode":...,"message":...,
"extensions":{"code":...}}]}}``. A bad token (or a garbled header) in the connection's header is a
``connection_error`` in answer to the client's first message, and the socket is closed (code 4401,
4400). Only subscriptions run here: queries and mutations go to /graphql.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import uuid
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from graphql import GraphQLError, GraphQLSyntaxError, OperationType, parse
from graphql.utilities import get_operation_ast
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from bloodbank.bootstrap import Container
from bloodbank.domain.identity import Identity
from bloodbank.errors import AppError, Unauthenticated
from schema import schema
from schema.context import RequestContext
from schema.root import MAX_TOKENS

log = logging.getLogger("bloodbank.realtime")

SUBPROTOCOL = "graphql-ws"
MAX_SUBSCRIPTIONS = 100  # per connection, as AppSync
# The errorCode sent with each of our extensions.code (HTTP-like, as AppSync: 401 for Unauthorized).
ERROR_CODES = {
    "BAD_USER_INPUT": 400,
    "UNAUTHENTICATED": 401,
    "FORBIDDEN": 403,
    "NOT_FOUND": 404,
    "CONFLICT": 409,
    "RATE_LIMITED": 429,
    "INTERNAL_SERVER_ERROR": 500,
}


class BadRequest(AppError):
    code = "BAD_USER_INPUT"
    error_type = "BadRequestException"


class MalformedQuery(AppError):
    code = "BAD_USER_INPUT"
    error_type = "MalformedQueryException"


class UnsupportedOperation(AppError):
    code = "BAD_USER_INPUT"
    error_type = "UnsupportedOperation"


class LimitExceeded(AppError):
    code = "RATE_LIMITED"
    error_type = "LimitExceededError"


def app_error(error: AppError) -> dict[str, object]:
    """An error of ours as AppSync words it."""
    return {
        "errorType": error.error_type,
        "errorCode": ERROR_CODES.get(error.code, 500),
        "message": error.message,
        "extensions": error.extensions(),
    }


def graphql_error(error: GraphQLError) -> dict[str, object]:
    """A public GraphQL error (``schema.errors.public_error`` made it) as AppSync words it."""
    extensions = dict(error.extensions or {})
    code = str(extensions.get("code", "INTERNAL_SERVER_ERROR"))
    return {
        "errorType": extensions.get("errorType", "InternalFailure"),
        "errorCode": ERROR_CODES.get(code, 500),
        "message": error.message,
        "extensions": extensions,
    }


def decode_header(text: str) -> dict[str, Any]:
    """A JSON object in base64 or base64url, padded or not."""
    try:
        raw = base64.b64decode(
            text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4), validate=True
        )
        value = orjson.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise BadRequest("The connection's auth header is not base64 of a JSON object")
    return value


def handshake_headers(scope: Scope, query: Mapping[str, str]) -> dict[str, Any]:
    """The auth headers of the ``header-...`` subprotocol, else of ``?header=``; {} when neither."""
    for protocol in scope.get("subprotocols", []):
        if protocol.startswith("header-"):
            return decode_header(protocol.removeprefix("header-"))
    legacy = query.get("header")
    # Legacy clients put plain base64 in the URL unescaped, so a '+' arrives as a space.
    return decode_header(legacy.replace(" ", "+")) if legacy else {}


def authorization_of(headers: Mapping[str, Any]) -> str | None:
    token = next((v for k, v in headers.items() if k.lower() == "authorization"), None)
    if token is not None and not isinstance(token, str):
        raise Unauthenticated("Authorization must be a token string")
    return token


@dataclass(frozen=True)
class Start:
    query: str
    variables: dict[str, Any] | None
    operation_name: str | None
    authorization: dict[str, Any]  # payload.extensions.authorization


def read_start(payload: object) -> Start:
    """A start message's payload; ``data`` is a JSON string of ``{query, variables, operationName}``."""
    if not isinstance(payload, dict):
        raise BadRequest("start needs a payload with data and extensions.authorization")
    data = payload.get("data")
    if isinstance(data, str):
        try:
            data = orjson.loads(data)
        except orjson.JSONDecodeError:
            data = None
    if not isinstance(data, dict) or not isinstance(data.get("query"), str):
        raise BadRequest('payload.data must be a JSON string of {"query": ..., "variables": {...}}')
    variables, name = data.get("variables"), data.get("operationName")
    if variables is not None and not isinstance(variables, dict):
        raise BadRequest("variables must be a JSON object")
    if name is not None and not isinstance(name, str):
        raise BadRequest("operationName must be a string")
    extensions = payload.get("extensions")
    auth = extensions.get("authorization") if isinstance(extensions, dict) else None
    return Start(data["query"], variables, name, auth if isinstance(auth, dict) else {})


def require_subscription(query: str, operation_name: str | None) -> None:
    try:
        document = parse(query, max_tokens=MAX_TOKENS)
    except GraphQLSyntaxError as bad:
        raise MalformedQuery(bad.message) from None
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        raise BadRequest(
            f"The document has no operation named {operation_name}"
            if operation_name
            else "The document has several operations: name the one to run with operationName"
        )
    if operation.operation is not OperationType.SUBSCRIPTION:
        raise UnsupportedOperation(
            f"{operation.operation.value} not supported through the realtime channel: send it to /graphql"
        )


class AppSyncRealtime:
    """The ASGI endpoint. ``keep_alive_seconds`` between ``ka`` messages; a start is acknowledged once
    it has settled (``settle_seconds`` without being refused), so that it already hears alerts."""

    def __init__(
        self,
        container: Container,
        *,
        keep_alive_seconds: float = 60.0,
        connection_timeout_ms: int = 300_000,
        settle_seconds: float = 0.05,
    ) -> None:
        self.container = container
        self.keep_alive_seconds = keep_alive_seconds
        self.connection_timeout_ms = connection_timeout_ms
        self.settle_seconds = settle_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        websocket: WebSocket = WebSocket(scope, receive, send)
        if SUBPROTOCOL not in scope.get("subprotocols", []):
            await websocket.close(code=1002)  # before accepting: the handshake is refused (403)
            return
        await websocket.accept(subprotocol=SUBPROTOCOL)
        await Connection(self, websocket).serve()


class Connection:
    def __init__(self, endpoint: AppSyncRealtime, websocket: WebSocket) -> None:
        self.endpoint = endpoint
        self.websocket = websocket
        self.request_id = str(websocket.scope.get("state", {}).get("request_id") or uuid.uuid4())
        self.header_token: str | None = None
        self.subscriptions: dict[str, asyncio.Task[None]] = {}
        self.keep_alive: asyncio.Task[None] | None = None
        self.sending = asyncio.Lock()

    async def serve(self) -> None:
        refused: AppError | None = None
        try:
            self.header_token = authorization_of(
                handshake_headers(self.websocket.scope, self.websocket.query_params)
            )
            if self.header_token is not None:
                await self.identify(self.header_token)  # AppSync checks it at connect
        except AppError as problem:
            refused = problem
        try:
            while True:
                message = await self.websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                if refused is not None:  # told in answer to the client's first message, which it hears
                    await self.send({"type": "connection_error", "payload": {"errors": [app_error(refused)]}})
                    status = ERROR_CODES.get(refused.code, 500)
                    await self.websocket.close(code=4000 + status if status < 500 else 1011)
                    return
                await self.handle(message.get("text") or message.get("bytes") or b"")
        except WebSocketDisconnect:
            return
        finally:
            running = [*self.subscriptions.values(), *([self.keep_alive] if self.keep_alive else [])]
            for task in running:
                task.cancel()
            if running:  # (wait, not gather: a cancellation of this task stays this task's own)
                await asyncio.wait(running)

    async def handle(self, raw: str | bytes) -> None:
        try:
            message = orjson.loads(raw)
        except orjson.JSONDecodeError:
            message = None
        if not isinstance(message, dict):
            await self.error(None, BadRequest("Messages are JSON objects with a type"))
            return
        kind, sub_id = message.get("type"), message.get("id")
        if kind == "connection_init":
            await self.send({"type": "connection_ack", "payload": {"connectionTimeoutMs": self.timeout_ms}})
            if self.keep_alive is None:
                self.keep_alive = asyncio.create_task(self.keep_alive_loop())
        elif kind not in ("start", "stop"):
            refused = UnsupportedOperation(
                f"{kind} not supported through the realtime channel: send connection_init, start or stop"
            )
            await self.error(sub_id if isinstance(sub_id, str) else None, refused)
        elif not isinstance(sub_id, str) or not sub_id:
            await self.error(None, BadRequest(f"A {kind} message needs an id (a non-empty string)"))
        elif kind == "stop":
            await self.stop(sub_id)
        else:
            try:
                await self.start(sub_id, message.get("payload"))
            except AppError as refused_start:
                await self.error(sub_id, refused_start)

    @property
    def timeout_ms(self) -> int:
        return self.endpoint.connection_timeout_ms

    async def keep_alive_loop(self) -> None:
        while True:
            await self.send({"type": "ka"})
            await asyncio.sleep(self.endpoint.keep_alive_seconds)

    async def start(self, sub_id: str, payload: object) -> None:
        if sub_id in self.subscriptions:
            raise BadRequest(f"Subscription {sub_id} is running: stop it first, or start with another id")
        if len(self.subscriptions) >= MAX_SUBSCRIPTIONS:
            raise LimitExceeded(f"A connection runs at most {MAX_SUBSCRIPTIONS} subscriptions")
        start = read_start(payload)
        token = authorization_of(start.authorization)
        identity = await self.identify(token if token is not None else self.header_token)
        require_subscription(start.query, start.operation_name)
        context = RequestContext(
            services=self.endpoint.container,
            request_id=self.request_id,
            identity=identity,
            headers=self.websocket.headers,
            request=self.websocket,
        )
        results = await schema.subscribe(
            start.query,
            variable_values=start.variables,
            context_value=context,
            operation_name=start.operation_name,
        )
        self.subscriptions[sub_id] = asyncio.create_task(self.deliver(sub_id, results))

    async def deliver(self, sub_id: str, results: AsyncGenerator[Any, None]) -> None:
        """start_ack once settled, then a data message per result; an error (a refusal, or the token's
        expiry) ends the subscription."""
        upcoming = asyncio.ensure_future(anext(results, None))
        acknowledged = False
        try:
            settled, _ = await asyncio.wait({upcoming}, timeout=self.endpoint.settle_seconds)
            if not settled:  # no refusal: it waits for alerts
                await self.send({"id": sub_id, "type": "start_ack"})
                acknowledged = True
            result = await upcoming
            while result is not None:
                errors = [graphql_error(e) for e in result.errors or []]
                if errors and result.data is None:
                    await self.send({"id": sub_id, "type": "error", "payload": {"errors": errors}})
                    return
                if not acknowledged:
                    await self.send({"id": sub_id, "type": "start_ack"})
                    acknowledged = True
                payload = {"data": result.data, **({"errors": errors} if errors else {})}
                await self.send({"id": sub_id, "type": "data", "payload": payload})
                result = await anext(results, None)
            await self.send({"id": sub_id, "type": "complete"})
        except Exception as failed:
            log.error(
                "realtime subscription failed",
                extra={"request_id": self.request_id, "exception": type(failed).__name__},
            )
            internal = f"Internal server error. Quote request id {self.request_id} when reporting it."
            await self.error(sub_id, AppError(internal))
        finally:
            if not upcoming.done():
                upcoming.cancel()
                await asyncio.wait({upcoming})
            await results.aclose()
            if self.subscriptions.get(sub_id) is asyncio.current_task():
                del self.subscriptions[sub_id]

    async def stop(self, sub_id: str) -> None:
        task = self.subscriptions.pop(sub_id, None)
        if task is not None:
            task.cancel()
            await asyncio.wait({task})
        await self.send({"id": sub_id, "type": "complete"})

    async def identify(self, token: str | None) -> Identity:
        """The caller of this token; Unauthenticated without one. Never logs the token."""
        authenticator = self.endpoint.container.authenticator
        identity = await run_in_threadpool(authenticator.sign_in, token, self.request_id)
        if identity is None:
            raise Unauthenticated(
                "Sign in first: send your Cognito access token in payload.extensions.authorization"
                ".Authorization (or in the connection's header)"
            )
        return identity

    async def error(self, sub_id: str | None, error: AppError) -> None:
        message: dict[str, object] = {"type": "error", "payload": {"errors": [app_error(error)]}}
        if sub_id is not None:
            message["id"] = sub_id
        await self.send(message)

    async def send(self, message: Mapping[str, object]) -> None:
        """One JSON text frame; nothing once the socket has gone (its tasks are being cancelled)."""
        async with self.sending:
            if self.websocket.application_state is not WebSocketState.CONNECTED:
                return
            try:
                await self.websocket.send_text(orjson.dumps(message).decode())
            except (WebSocketDisconnect, RuntimeError, OSError):
                return
