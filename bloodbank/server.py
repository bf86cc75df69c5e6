"""The one Starlette app, served by uvicorn locally and by Mangum on Lambda.

Routes: ``/graphql`` (POST; GET for queries; GraphiQL in a browser; WebSocket subscriptions over
graphql-transport-ws and graphql-ws), ``/graphql/realtime`` (AppSync's real-time protocol, for
Amplify JS), ``/health`` and ``/unsubscribe/{token}`` (RFC 8058 one-click unsubscribe).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Mapping
from typing import Any

import orjson
from cross_web import HTTPException
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocketDisconnect
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.types import ExecutionResult
from strawberry.types.unset import UNSET

from bloodbank import logs
from bloodbank.bootstrap import Container
from bloodbank.domain.unsubscribe import InvalidToken
from bloodbank.errors import AppError, DependencyUnavailable
from bloodbank.ports import Metrics
from bloodbank.realtime import AppSyncRealtime
from schema import schema
from schema.context import RequestContext
from schema.errors import public_error

log = logging.getLogger("bloodbank.server")

# Headers the Amplify JS client and API Gateway clients send.
CORS_HEADERS = [
    "authorization",
    "content-type",
    "x-api-key",
    "x-amz-user-agent",
    "x-amz-date",
    "x-amz-security-token",
    "x-request-id",
]
_REQUEST_ID = re.compile(r"[A-Za-z0-9-]{8,64}")
_API_REQUEST_ID = re.compile(r"[A-Za-z0-9+/=_-]{8,64}")  # API Gateway's (HTTP APIs: base64-like)


def request_id_of(scope: Scope) -> str:
    """Lambda's request id on AWS, a sane ``x-request-id`` from the caller, or a new one."""
    context = scope.get("aws.context")
    if context is not None and getattr(context, "aws_request_id", None):
        return str(context.aws_request_id)
    event = scope.get("aws.event")
    if isinstance(event, dict):
        rid = event.get("requestContext", {}).get("requestId")
        if isinstance(rid, str) and _REQUEST_ID.fullmatch(rid):
            return rid
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            candidate = str(value.decode("latin-1"))
            if _REQUEST_ID.fullmatch(candidate):
                return candidate
    return str(uuid.uuid4())


def api_request_id_of(scope: Scope) -> str | None:
    """API Gateway's own id of the request (``requestContext.requestId``), when Mangum carries one."""
    event = scope.get("aws.event")
    rid = event.get("requestContext", {}).get("requestId") if isinstance(event, dict) else None
    return rid if isinstance(rid, str) and _API_REQUEST_ID.fullmatch(rid) else None


class RequestIds:
    """Gives each request an id, kept in ``scope["state"]``, echoed as ``x-request-id`` and on every
    log record made while it runs (``logs.request_scope``). After each HTTP request the business
    metrics it counted are flushed (locally to the DEBUG log: ``bloodbank.observability``)."""

    def __init__(self, app: ASGIApp, metrics: Metrics | None = None) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        rid = request_id_of(scope)
        scope.setdefault("state", {})["request_id"] = rid
        with logs.request_scope(rid, api_request_id=api_request_id_of(scope)):
            try:
                await self._run(rid, scope, receive, send)
            finally:
                if self.metrics is not None and scope["type"] == "http":
                    self.metrics.flush()

    async def _run(self, rid: str, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k != b"x-request-id"]
                message["headers"] = [*headers, (b"x-request-id", rid.encode())]
            await send(message)

        await self.app(scope, receive, send_with_id)


class BodyLimit:
    """Refuses request bodies over the limit (by Content-Length, or while reading) with a 413."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = scope.get("state", {}).get("request_id", "-")
        for name, value in scope.get("headers", []):
            if name == b"content-length" and (not value.isdigit() or int(value) > self.max_body_bytes):
                await too_large(rid, self.max_body_bytes)(scope, receive, send)
                return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_body_bytes:
                raise _BodyTooLarge
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _BodyTooLarge:
            await too_large(rid, self.max_body_bytes)(scope, receive, send)


_HTTP_ERROR_TYPES = {
    400: "BadRequestException",
    405: "MethodNotAllowedException",
    413: "PayloadTooLarge",
    415: "UnsupportedMediaTypeException",
}


class _BodyTooLarge(Exception):
    pass


def too_large(rid: str, limit: int) -> Response:
    return _error_response(
        413, f"Request body is larger than {limit} bytes", "BAD_USER_INPUT", "PayloadTooLarge", rid
    )


def _error_response(status: int, message: str, code: str, error_type: str, rid: str) -> Response:
    body = {
        "data": None,
        "errors": [{"message": message, "extensions": {"code": code, "errorType": error_type}}],
    }
    return Response(orjson.dumps(body), status, media_type="application/json", headers={"x-request-id": rid})


class TextFrames(ASGIWebSocketAdapter):
    """GraphQL over WebSockets in text frames, as every client of both protocols expects."""

    async def send_json(self, message: Mapping[str, object]) -> None:
        try:
            await self.ws.send_text(orjson.dumps(message).decode())
        except WebSocketDisconnect as exc:
            raise WebSocketDisconnected from exc


class BloodBankGraphQL(GraphQL[RequestContext, None]):
    websocket_adapter_class = TextFrames

    def __init__(self, container: Container) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql" if container.settings.graphiql else None,
            allow_queries_via_get=True,
        )
        self.container = container

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        try:
            response = await self.run(Request(scope=scope, receive=receive))
        except HTTPException as refused:  # malformed request, GET with a mutation, ...: a GraphQL error too
            rid = scope.get("state", {}).get("request_id", "-")
            response = _error_response(
                refused.status_code,
                refused.reason,
                "BAD_USER_INPUT",
                _HTTP_ERROR_TYPES.get(refused.status_code, "BadRequestException"),
                rid,
            )
            if refused.status_code == 405:
                response.headers["allow"] = "POST" if scope["method"] == "GET" else "GET, POST"
        await response(scope, receive, send)

    async def process_result(self, request: Any, result: ExecutionResult) -> GraphQLHTTPResponse:
        """Errors raised before the error policy could see them (e.g. in parsing) get the same treatment."""
        if result.errors:
            rid = request.scope.get("state", {}).get("request_id", "-")
            result.errors = [public_error(e, rid) for e in result.errors]
        return await super().process_result(request, result)

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    async def get_context(self, request: Any, response: Any) -> RequestContext:
        rid = request.scope.get("state", {}).get("request_id") or str(uuid.uuid4())
        context = RequestContext(
            services=self.container,
            request_id=rid,
            headers=request.headers,
            request=request,
            response=response,
        )
        self._sign_in(context, request.headers.get("authorization"))
        return context

    def _sign_in(self, context: RequestContext, token: str | None) -> None:
        try:
            context.identity = self.container.authenticator.sign_in(token, context.request_id)
            context.auth_error = None
        except AppError as rejected:
            context.auth_error = rejected

    async def on_ws_connect(self, context: RequestContext) -> Any:
        """Subscriptions sign in like queries: the token in connection_init's payload (browsers
        cannot set WebSocket headers), or the Authorization header. A token that fails is refused
        at once; none at all leaves public fields only (subscribing is then UNAUTHENTICATED)."""
        params = context.connection_params or {}
        token = params.get("Authorization") or params.get("authorization")
        if isinstance(token, str) and token:
            await run_in_threadpool(self._sign_in, context, token)
        if context.auth_error is not None:
            raise ConnectionRejectionError(
                {"message": context.auth_error.message, **context.auth_error.extensions()}
            )
        return UNSET


def health_endpoint(container: Container) -> Any:
    async def health(request: Request) -> Response:
        def run_probes() -> dict[str, dict[str, object]]:
            results: dict[str, dict[str, object]] = {}
            for probe in container.probes:
                started = time.perf_counter()
                try:
                    probe.check()
                    state: dict[str, object] = {"ok": True}
                except Exception as exc:
                    state = {"ok": False, "error": type(exc).__name__}
                state["latencyMs"] = round((time.perf_counter() - started) * 1000, 1)
                results[probe.name] = state
            return results

        dependencies = await run_in_threadpool(run_probes)
        healthy = all(d["ok"] for d in dependencies.values())
        body = {"status": "ok" if healthy else "unavailable", "dependencies": dependencies}
        return JSONResponse(body, status_code=200 if healthy else 503, headers={"cache-control": "no-store"})

    return health


# Unsubscribe pages: no token, no address, nothing from the request in them (nothing to escape), and
# nothing cached or passed on (the URL is the token: no Referer, no caching, no indexing).
_PAGE_HEADERS = {
    "cache-control": "no-store",
    "referrer-policy": "no-referrer",
    "x-robots-tag": "noindex",
    "x-content-type-options": "nosniff",
    "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
}
_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem}}
button{{font-size:1rem;padding:.6rem 1.2rem}}</style></head>
<body><h1>{title}</h1>{body}</body></html>
"""
_CONFIRM = _PAGE.format(
    title="Unsubscribe from these e-mails?",
    body="<p>You will get no more campaign e-mails from the blood service at this address.</p>"
    '<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click">'
    '<button type="submit">Unsubscribe</button></form>',
)
_DONE = _PAGE.format(
    title="You are unsubscribed",
    body="<p>You will get no more campaign e-mails from the blood service at this address.</p>",
)
_NOT_VALID = _PAGE.format(title="This link is not valid", body="<p>This link is not valid.</p>")
_UNAVAILABLE = _PAGE.format(
    title="Please try again later",
    body="<p>We could not unsubscribe you just now. Please try again in a few minutes.</p>",
)


def unsubscribe_endpoint(container: Container) -> Any:
    """RFC 8058: a POST (the mail client's one-click ``List-Unsubscribe=One-Click``, or the
    confirmation page's button; any body) unsubscribes, without signing in: the signed token is the
    authority. A GET never changes anything (mail scanners follow links): it shows a button that
    POSTs to the same URL. A token that is not ours is a 400 that says only that the link is not
    valid. Nothing logs the token."""

    async def unsubscribe(request: Request) -> Response:
        token = request.path_params["token"]
        try:
            if request.method == "POST":
                await request.body()  # read whatever the client sent; the token decides
                await run_in_threadpool(container.unsubscribe.unsubscribe, token)
                return HTMLResponse(_DONE, 200, headers=_PAGE_HEADERS)
            container.unsubscribe.check(token)
            return HTMLResponse(_CONFIRM, 200, headers=_PAGE_HEADERS)
        except InvalidToken:
            return HTMLResponse(_NOT_VALID, 400, headers=_PAGE_HEADERS)
        except DependencyUnavailable as exc:
            rid = request.scope.get("state", {}).get("request_id", "-")
            log.error("unsubscribe failed", extra={"request_id": rid, "cause": str(exc)})
            return HTMLResponse(_UNAVAILABLE, 503, headers={**_PAGE_HEADERS, "retry-after": "60"})

    return unsubscribe


def create_app(container: Container) -> Starlette:
    logs.configure(container.settings.log_level)
    graphql = BloodBankGraphQL(container)
    return Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),  # graphql-transport-ws and graphql-ws
            WebSocketRoute("/graphql/realtime", AppSyncRealtime(container)),  # AppSync's, for Amplify JS
            Route("/health", health_endpoint(container), methods=["GET"]),
            Route("/unsubscribe/{token}", unsubscribe_endpoint(container), methods=["GET", "POST"]),
        ],
        middleware=[  # outermost first: every response, errors included, has an id and CORS headers
            Middleware(RequestIds, metrics=container.metrics),
            Middleware(
                CORSMiddleware,
                allow_origins=list(container.settings.cors_origins),
                allow_methods=["GET", "POST", "OPTIONS"],
                allow_headers=CORS_HEADERS,
                expose_headers=["x-request-id"],
                max_age=600,
            ),
            Middleware(BodyLimit, max_body_bytes=container.settings.max_body_bytes),
        ],
    )
