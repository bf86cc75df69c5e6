"""The Lambda entry point: Mangum over the Starlette app, driven by API Gateway events shaped like AWS's.

The handler is built the way ``handler.py`` builds it, but over the fakes' container; one test imports
``handler.py`` itself in a fresh interpreter with a production-like environment (network blocked).
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from mangum import Mangum

from bloodbank.server import create_app
from tests.conftest import CLIENT_ID, POOL_ID, TokenFactory, World, error_codes

ROOT = Path(__file__).resolve().parents[2]
ORIGIN = "https://main.d1a2b3c4d5e6f7.amplifyapp.com"
API_HOST = "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com"
USER_AGENT = "aws-amplify/6.6.0 api/1 framework/2"
LIST_DONORS = "{ listDonors { items { id firstName } } }"
REGISTER = "mutation Register($input: RegisterDonorInput!) { registerDonor(input: $input) { id } }"
REGISTER_INPUT = {
    "input": {"firstName": "Ada", "lastName": "Okafor", "email": "ada@example.org", "siteId": "site-north"}
}


# --- Lambda context and events -------------------------------------------------------------------------
@dataclass
class LambdaContext:
    """What the Lambda runtime passes as ``context`` (the attributes code reads)."""

    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_name: str = "bloodbank-api-HttpFunction-1A2B3C4D5E6F"
    function_version: str = "$LATEST"
    invoked_function_arn: str = (
        "arn:aws:lambda:us-east-1:123456789012:function:bloodbank-api-HttpFunction-1A2B3C4D5E6F"
    )
    memory_limit_in_mb: int = 1024
    log_group_name: str = "/aws/lambda/bloodbank-api-HttpFunction-1A2B3C4D5E6F"
    log_stream_name: str = "2026/11/22/[$LATEST]0123456789abcdef0123456789abcdef"
    identity: Any = None
    client_context: Any = None

    def get_remaining_time_in_millis(self) -> int:
        return 29_000


def http_api_v2_event(
    method: str,
    path: str,
    *,
    body: bytes | str | None = None,
    base64_body: bool = False,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An HTTP API (payload format 2.0) event, as in the API Gateway developer guide."""
    raw_query = urlencode(query or {}, quote_via=quote)
    sent = {
        "accept": "application/json, text/plain, */*",
        "accept-encoding": "gzip, deflate, br",
        "accept-language": "en-GB,en;q=0.9",
        "host": API_HOST,
        "user-agent": USER_AGENT,
        "x-amzn-trace-id": "Root=1-673f4b7e-0f1e2d3c4b5a69788796a5b4",
        "x-forwarded-for": "203.0.113.7",
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
    }
    encoded: str | None = None
    if body is not None:
        raw = body.encode() if isinstance(body, str) else body
        sent["content-type"] = "application/json"
        sent["content-length"] = str(len(raw))
        encoded = base64.b64encode(raw).decode() if base64_body else raw.decode()
    sent.update({k.lower(): v for k, v in (headers or {}).items()})
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": sent,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "a1b2c3d4e5",
            "domainName": API_HOST,
            "domainPrefix": "a1b2c3d4e5",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": USER_AGENT,
            },
            "requestId": "JKJaXmPLvHcESHA=",
            "routeKey": f"{method} {path}",
            "stage": "$default",
            "time": "22/Nov/2026:09:00:00 +0000",
            "timeEpoch": 1795338000000,
        },
        "isBase64Encoded": base64_body,
    }
    if query:
        event["queryStringParameters"] = dict(query)
    if encoded is not None:
        event["body"] = encoded
    return event


def rest_api_v1_event(
    method: str,
    path: str,
    *,
    body: bytes | str | None = None,
    base64_body: bool = False,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A REST API proxy-integration event (payload 1.0), as in the API Gateway developer guide."""
    sent = {
        "Accept": "application/json, text/plain, */*",
        "Accept-Encoding": "gzip, deflate, br",
        "CloudFront-Forwarded-Proto": "https",
        "CloudFront-Is-Desktop-Viewer": "true",
        "CloudFront-Viewer-Country": "GB",
        "Host": API_HOST,
        "User-Agent": USER_AGENT,
        "Via": "2.0 a3650115c5e21e2b5d133ce84464bea3.cloudfront.net (CloudFront)",
        "X-Amz-Cf-Id": "0nDeiXnReyHYCkv8cc150MWCFCLFPbJoTs1mexDuKe2WJwK5ANgv2A==",
        "X-Amzn-Trace-Id": "Root=1-673f4b7e-0f1e2d3c4b5a69788796a5b4",
        "X-Forwarded-For": "203.0.113.7, 198.51.100.2",
        "X-Forwarded-Port": "443",
        "X-Forwarded-Proto": "https",
    }
    encoded: str | None = None
    if body is not None:
        raw = body.encode() if isinstance(body, str) else body
        sent["Content-Type"] = "application/json"
        sent["Content-Length"] = str(len(raw))
        encoded = base64.b64encode(raw).decode() if base64_body else raw.decode()
    sent.update(headers or {})
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": sent,
        "multiValueHeaders": {k: [v] for k, v in sent.items()},
        "queryStringParameters": dict(query) if query else None,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "a1b2c3d4e5",
            "domainName": API_HOST,
            "domainPrefix": "a1b2c3d4e5",
            "extendedRequestId": "BQGojGkNoAMFhPw=",
            "httpMethod": method,
            "identity": {
                "accessKey": None,
                "accountId": None,
                "caller": None,
                "cognitoAuthenticationProvider": None,
                "cognitoAuthenticationType": None,
                "cognitoIdentityId": None,
                "cognitoIdentityPoolId": None,
                "principalOrgId": None,
                "sourceIp": "203.0.113.7",
                "user": None,
                "userAgent": USER_AGENT,
                "userArn": None,
            },
            "path": f"/prod{path}",
            "protocol": "HTTP/1.1",
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "requestTime": "22/Nov/2026:09:00:00 +0000",
            "requestTimeEpoch": 1795338000000,
            "resourceId": "x1y2z3",
            "resourcePath": path,
            "stage": "prod",
        },
        "body": encoded,
        "isBase64Encoded": base64_body,
    }


EVENTS = {"http-api-v2": http_api_v2_event, "rest-api-v1": rest_api_v1_event}


def header(response: dict[str, Any], name: str) -> str | None:
    """A response header from either payload format (v1 may put repeated ones in multiValueHeaders)."""
    for key, value in (response.get("headers") or {}).items():
        if key.lower() == name:
            return str(value)
    for key, values in (response.get("multiValueHeaders") or {}).items():
        if key.lower() == name:
            return ",".join(values)
    return None


def json_body(response: dict[str, Any]) -> Any:
    raw = response["body"]
    return json.loads(base64.b64decode(raw) if response.get("isBase64Encoded") else raw)


def graphql_post(operation: str, variables: dict[str, Any] | None = None) -> str:
    return json.dumps({"query": operation, "variables": variables or {}})


# --- fixtures ------------------------------------------------------------------------------------------
@pytest.fixture
def lambda_handler(world: World) -> Mangum:
    """Built like handler.py's ``http_handler``, over the fakes."""
    return Mangum(create_app(world.container), lifespan="off", api_gateway_base_path="/")


@pytest.fixture
def context() -> LambdaContext:
    return LambdaContext()


@pytest.fixture(params=EVENTS.values(), ids=EVENTS.keys())
def make_event(request: pytest.FixtureRequest) -> Any:
    return request.param


@pytest.fixture
def app_log(lambda_handler: Mangum) -> Iterator[io.StringIO]:
    """What the app's ``bloodbank`` log handler writes, if it holds its own stream (else see capsys)."""
    logger = logging.getLogger("bloodbank")
    handlers = [h for h in logger.handlers if isinstance(h, logging.StreamHandler)]
    assert handlers, "create_app configures a stdout handler on the 'bloodbank' logger"
    captured = io.StringIO()
    previous = [h.setStream(captured) for h in handlers]
    try:
        yield captured
    finally:
        for h, stream in zip(handlers, previous, strict=True):
            h.setStream(stream)


# --- GraphQL over POST and GET -------------------------------------------------------------------------
@pytest.mark.parametrize("base64_body", [False, True], ids=["plain-body", "base64-body"])
def test_post_query_with_bearer_token(
    make_event: Any,
    base64_body: bool,
    lambda_handler: Mangum,
    context: LambdaContext,
    world: World,
    tokens: TokenFactory,
) -> None:
    event = make_event(
        "POST",
        "/graphql",
        body=graphql_post(LIST_DONORS),
        base64_body=base64_body,
        headers={"Authorization": f"Bearer {tokens('Staff')}"},
    )
    response = lambda_handler(event, context)
    assert response["statusCode"] == 200
    assert json_body(response) == {"data": {"listDonors": {"items": []}}}
    assert "application/json" in (header(response, "content-type") or "")
    assert world.donors.calls == [("list", "")]


def test_post_mutation_with_raw_token_writes(
    make_event: Any, lambda_handler: Mangum, context: LambdaContext, world: World, tokens: TokenFactory
) -> None:
    event = make_event(
        "POST",
        "/graphql",
        body=graphql_post(REGISTER, REGISTER_INPUT),
        headers={"Authorization": tokens("Staff")},
    )
    response = lambda_handler(event, context)
    assert response["statusCode"] == 200
    assert json_body(response) == {"data": {"registerDonor": {"id": "donor-000001"}}}
    assert list(world.donors.donors) == ["donor-000001"]


def test_get_query(
    make_event: Any, lambda_handler: Mangum, context: LambdaContext, world: World, tokens: TokenFactory
) -> None:
    event = make_event(
        "GET",
        "/graphql",
        query={"query": LIST_DONORS},
        headers={"Authorization": f"Bearer {tokens('Admins')}"},
    )
    response = lambda_handler(event, context)
    assert response["statusCode"] == 200
    assert json_body(response) == {"data": {"listDonors": {"items": []}}}
    assert world.donors.calls == [("list", "")]


def test_get_query_with_variables(
    make_event: Any, lambda_handler: Mangum, context: LambdaContext, world: World, tokens: TokenFactory
) -> None:
    query = {
        "query": "query Page($limit: Int) { listDonors(limit: $limit) { items { id } nextToken } }",
        "variables": json.dumps({"limit": 5}),
        "operationName": "Page",
    }
    response = lambda_handler(
        make_event("GET", "/graphql", query=query, headers={"Authorization": tokens("Staff")}), context
    )
    assert response["statusCode"] == 200
    assert json_body(response) == {"data": {"listDonors": {"items": [], "nextToken": None}}}


def test_get_mutation_is_refused_and_not_executed(
    make_event: Any, lambda_handler: Mangum, context: LambdaContext, world: World, tokens: TokenFactory
) -> None:
    mutation = (
        'mutation { registerDonor(input: {firstName: "Ada", lastName: "Okafor",'
        ' email: "ada@example.org", siteId: "site-north"}) { id } }'
    )
    response = lambda_handler(
        make_event("GET", "/graphql", query={"query": mutation}, headers={"Authorization": tokens("Staff")}),
        context,
    )
    assert 400 <= response["statusCode"] < 500
    assert world.donors.calls == []
    assert world.donors.donors == {}


def test_get_mutation_refusal_is_a_graphql_error(
    lambda_handler: Mangum, context: LambdaContext, tokens: TokenFactory
) -> None:
    response = lambda_handler(
        http_api_v2_event(
            "GET",
            "/graphql",
            query={"query": 'mutation { updateDonor(input: {id: "x", expectedVersion: 1}) { id } }'},
            headers={"Authorization": tokens("Staff")},
        ),
        context,
    )
    assert error_codes(json_body(response)) == ["BAD_USER_INPUT"]


def test_anonymous_post_is_unauthenticated(
    make_event: Any, lambda_handler: Mangum, context: LambdaContext, world: World
) -> None:
    response = lambda_handler(make_event("POST", "/graphql", body=graphql_post(LIST_DONORS)), context)
    assert response["statusCode"] == 200
    assert error_codes(json_body(response)) == ["UNAUTHENTICATED"]
    assert world.donors.calls == []


def test_forged_token_is_unauthenticated_through_lambda(
    make_event: Any,
    lambda_handler: Mangum,
    context: LambdaContext,
    world: World,
    tokens: TokenFactory,
    foreign_key: Any,
) -> None:
    forged = tokens("Admins", key=foreign_key.private_pem, kid="test-key-1")
    response = lambda_handler(
        make_event(
            "POST", "/graphql", body=graphql_post(REGISTER, REGISTER_INPUT), headers={"Authorization": forged}
        ),
        context,
    )
    body = json_body(response)
    assert body["data"] is None
    assert error_codes(body) == ["UNAUTHENTICATED"]
    assert world.donors.calls == []


def test_unknown_path_is_404(make_event: Any, lambda_handler: Mangum, context: LambdaContext) -> None:
    assert lambda_handler(make_event("GET", "/nothing-here"), context)["statusCode"] == 404


# --- health --------------------------------------------------------------------------------------------
def test_health_ok(make_event: Any, lambda_handler: Mangum, context: LambdaContext, world: World) -> None:
    response = lambda_handler(make_event("GET", "/health"), context)
    assert response["statusCode"] == 200
    body = json_body(response)
    assert body["status"] == "ok"
    assert set(body["dependencies"]) == {"dynamodb", "cognito"}
    assert all(d["ok"] is True for d in body["dependencies"].values())
    assert header(response, "cache-control") == "no-store"
    assert [p.checks for p in world.probes] == [1, 1]


@pytest.mark.parametrize("down", [0, 1], ids=["dynamodb-down", "cognito-down"])
def test_health_unavailable_when_a_dependency_is_down(
    down: int, make_event: Any, lambda_handler: Mangum, context: LambdaContext, world: World
) -> None:
    world.probes[down].healthy = False
    response = lambda_handler(make_event("GET", "/health"), context)
    assert response["statusCode"] == 503
    body = json_body(response)
    assert body["status"] == "unavailable"
    name = world.probes[down].name
    assert body["dependencies"][name]["ok"] is False
    assert body["dependencies"][name]["error"] == "ConnectionError"
    assert f"{name} down" not in response["body"]  # the reason is logged, not shown
    other = world.probes[1 - down].name
    assert body["dependencies"][other]["ok"] is True


# --- CORS ----------------------------------------------------------------------------------------------
REQUESTED_HEADERS = "authorization,content-type,x-api-key,x-amz-user-agent"


def test_cors_preflight(
    make_event: Any, lambda_handler: Mangum, context: LambdaContext, world: World
) -> None:
    event = make_event(
        "OPTIONS",
        "/graphql",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": REQUESTED_HEADERS,
        },
    )
    response = lambda_handler(event, context)
    assert response["statusCode"] == 200
    assert header(response, "access-control-allow-origin") in ("*", ORIGIN)
    allowed_headers = {
        h.strip().lower() for h in (header(response, "access-control-allow-headers") or "").split(",")
    }
    assert set(REQUESTED_HEADERS.split(",")) <= allowed_headers
    allowed_methods = {m.strip() for m in (header(response, "access-control-allow-methods") or "").split(",")}
    assert "POST" in allowed_methods
    assert world.donors.calls == []


def test_cors_preflight_refuses_unknown_headers(
    make_event: Any, lambda_handler: Mangum, context: LambdaContext
) -> None:
    event = make_event(
        "OPTIONS",
        "/graphql",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,x-not-allowed",
        },
    )
    assert lambda_handler(event, context)["statusCode"] == 400


def test_actual_post_carries_cors_headers(
    make_event: Any, lambda_handler: Mangum, context: LambdaContext, tokens: TokenFactory
) -> None:
    event = make_event(
        "POST",
        "/graphql",
        body=graphql_post(LIST_DONORS),
        headers={"Origin": ORIGIN, "Authorization": tokens("Staff")},
    )
    response = lambda_handler(event, context)
    assert response["statusCode"] == 200
    assert header(response, "access-control-allow-origin") in ("*", ORIGIN)
    exposed = (header(response, "access-control-expose-headers") or "").lower()
    assert "x-request-id" in exposed


# --- request ids, limits, internal errors --------------------------------------------------------------
def test_response_carries_the_lambda_request_id(
    make_event: Any, lambda_handler: Mangum, context: LambdaContext, tokens: TokenFactory
) -> None:
    event = make_event(
        "POST",
        "/graphql",
        body=graphql_post(LIST_DONORS),
        headers={"Authorization": tokens("Staff"), "x-request-id": "client-chosen-id-123"},
    )
    response = lambda_handler(event, context)
    assert header(response, "x-request-id") == context.aws_request_id


def test_health_and_preflight_carry_the_request_id_too(
    make_event: Any, lambda_handler: Mangum, context: LambdaContext
) -> None:
    assert (
        header(lambda_handler(make_event("GET", "/health"), context), "x-request-id")
        == context.aws_request_id
    )
    preflight = make_event(
        "OPTIONS", "/graphql", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}
    )
    assert header(lambda_handler(preflight, context), "x-request-id") == context.aws_request_id


@pytest.mark.parametrize(
    "declared_length", [True, False], ids=["content-length-declared", "no-content-length"]
)
def test_body_over_the_limit_is_413_with_a_graphql_error(
    declared_length: bool,
    make_event: Any,
    lambda_handler: Mangum,
    context: LambdaContext,
    world: World,
    tokens: TokenFactory,
) -> None:
    limit = world.container.settings.max_body_bytes
    padding = "#" + "x" * limit  # a GraphQL comment: the body is a valid request, only too big
    event = make_event(
        "POST",
        "/graphql",
        body=graphql_post(f"{LIST_DONORS}\n{padding}"),
        headers={"Authorization": tokens("Staff")},
    )
    if not declared_length:
        for key in ("headers", "multiValueHeaders"):
            for name in [n for n in event.get(key) or {} if n.lower() == "content-length"]:
                del event[key][name]
    response = lambda_handler(event, context)
    assert response["statusCode"] == 413
    body = json_body(response)
    assert body["data"] is None
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["errorType"] == "PayloadTooLarge"
    assert str(limit) in body["errors"][0]["message"]
    assert header(response, "x-request-id") == context.aws_request_id
    assert world.donors.calls == []


def test_body_over_the_limit_is_readable_by_a_browser(
    lambda_handler: Mangum, context: LambdaContext, world: World
) -> None:
    body = graphql_post(f"{LIST_DONORS}\n#{'x' * world.container.settings.max_body_bytes}")
    response = lambda_handler(
        http_api_v2_event("POST", "/graphql", body=body, headers={"Origin": ORIGIN}), context
    )
    assert response["statusCode"] == 413
    assert header(response, "access-control-allow-origin") in ("*", ORIGIN)


def test_body_just_under_the_limit_is_served(
    lambda_handler: Mangum, context: LambdaContext, world: World, tokens: TokenFactory
) -> None:
    limit = world.container.settings.max_body_bytes
    envelope = graphql_post(f"{LIST_DONORS}\n#")
    body = graphql_post(f"{LIST_DONORS}\n#{'x' * (limit - len(envelope.encode()))}")
    assert len(body.encode()) == limit
    event = http_api_v2_event("POST", "/graphql", body=body, headers={"Authorization": tokens("Staff")})
    response = lambda_handler(event, context)
    assert response["statusCode"] == 200, response["body"][:300]


def test_internal_error_is_masked_and_logged_without_the_secret(
    make_event: Any,
    lambda_handler: Mangum,
    app_log: io.StringIO,
    context: LambdaContext,
    world: World,
    tokens: TokenFactory,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret donor data")

    monkeypatch.setattr(world.donors, "list", explode)
    response = lambda_handler(
        make_event(
            "POST", "/graphql", body=graphql_post(LIST_DONORS), headers={"Authorization": tokens("Staff")}
        ),
        context,
    )
    assert response["statusCode"] == 200
    rid = context.aws_request_id
    body = json_body(response)
    assert body["data"] is None
    assert error_codes(body) == ["INTERNAL_SERVER_ERROR"]
    error = body["errors"][0]
    assert rid in error["message"]
    assert error["extensions"]["requestId"] == rid
    assert header(response, "x-request-id") == rid
    for leak in ("secret donor data", "Traceback", "RuntimeError", "donors.py", "bloodbank-test"):
        assert leak not in response["body"]

    out, err = capsys.readouterr()
    logged = app_log.getvalue() + out  # the handler writes to sys.stdout as it is when logging
    records = [json.loads(line) for line in logged.splitlines() if line.startswith("{")]
    internal = [r for r in records if r.get("message") == "internal error"]
    assert len(internal) == 1
    assert internal[0]["request_id"] == rid
    assert internal[0]["exception"] == "RuntimeError"
    assert internal[0]["level"] == "ERROR"
    assert "secret donor data" not in logged
    assert "Traceback" not in logged
    assert "secret donor data" not in err


def test_internal_error_in_a_mutation_writes_nothing(
    lambda_handler: Mangum,
    context: LambdaContext,
    world: World,
    tokens: TokenFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret donor data")

    monkeypatch.setattr(world.donors, "create", explode)
    response = lambda_handler(
        http_api_v2_event(
            "POST",
            "/graphql",
            body=graphql_post(REGISTER, REGISTER_INPUT),
            headers={"Authorization": tokens("Staff")},
        ),
        context,
    )
    body = json_body(response)
    assert error_codes(body) == ["INTERNAL_SERVER_ERROR"]
    assert "secret donor data" not in response["body"]
    assert world.donors.donors == {}


def test_failing_hospital_lookup_is_a_masked_internal_error(
    make_event: Any,
    lambda_handler: Mangum,
    context: LambdaContext,
    world: World,
    tokens: TokenFactory,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def explode(user_sub: str) -> None:
        raise RuntimeError("secret donor data in table bloodbank-test")

    monkeypatch.setattr(world.directory, "hospital_of", explode)
    response = lambda_handler(
        make_event(
            "POST",
            "/graphql",
            body=graphql_post("{ listSites { id } }"),
            headers={"Authorization": tokens("Hospitals", sub="hospital-user"), "Origin": ORIGIN},
        ),
        context,
    )
    logged = "\n".join(r.getMessage() + str(r.exc_info) for r in caplog.records)
    assert "secret donor data" not in logged
    assert "secret donor data" not in response["body"]
    assert header(response, "x-request-id") == context.aws_request_id
    body = json_body(response)
    assert error_codes(body) == ["INTERNAL_SERVER_ERROR"]
    assert context.aws_request_id in body["errors"][0]["message"]


def test_key_set_down_through_lambda(
    make_event: Any, lambda_handler: Mangum, context: LambdaContext, world: World, tokens: TokenFactory
) -> None:
    world.keyset.down = True
    response = lambda_handler(
        make_event(
            "POST", "/graphql", body=graphql_post(LIST_DONORS), headers={"Authorization": tokens("Staff")}
        ),
        context,
    )
    body = json_body(response)
    assert error_codes(body) == ["INTERNAL_SERVER_ERROR"]
    assert context.aws_request_id in body["errors"][0]["message"]
    assert world.donors.calls == []


# --- handler.py itself ---------------------------------------------------------------------------------
HANDLER_PROBE = textwrap.dedent(
    """
    import json, socket, sys

    def no_network(*args, **kwargs):
        raise OSError("network used while importing handler.py")

    socket.socket.connect = no_network
    socket.socket.connect_ex = no_network
    socket.create_connection = no_network
    socket.getaddrinfo = no_network

    import handler
    from mangum import Mangum

    assert isinstance(handler.http_handler, Mangum), type(handler.http_handler)
    event = json.loads(sys.argv[1])
    context = type("Context", (), {"aws_request_id": "0f0e0d0c-1111-2222-3333-444455556666"})()
    response = handler.http_handler(event, context)
    print(json.dumps(response))
    """
)


def test_handler_module_builds_from_the_environment_without_network(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLOODBANK_")}
    env.update(
        {
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "BLOODBANK_TABLE": "bloodbank-prod",
            "BLOODBANK_USER_POOL_ID": POOL_ID,
            "BLOODBANK_USER_POOL_CLIENT_IDS": f"{CLIENT_ID},another0client",
            "BLOODBANK_PAGE_TOKEN_SECRET": "a-page-token-secret-that-is-long-enough-0123",
            "BLOODBANK_PII_KEY_ID": "alias/bloodbank-pii",
            "BLOODBANK_CORS_ORIGINS": ORIGIN,
            "BLOODBANK_GRAPHIQL": "false",
            "BLOODBANK_LOG_LEVEL": "WARNING",
            "BLOODBANK_HOME": str(tmp_path),
        }
    )
    event = http_api_v2_event("POST", "/graphql", body=graphql_post(LIST_DONORS), headers={"Origin": ORIGIN})
    result = subprocess.run(
        [sys.executable, "-c", HANDLER_PROBE, json.dumps(event)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    response = json.loads(result.stdout.strip().splitlines()[-1])
    assert response["statusCode"] == 200
    assert header(response, "access-control-allow-origin") == ORIGIN
    assert header(response, "x-request-id") == "0f0e0d0c-1111-2222-3333-444455556666"
    assert error_codes(json_body(response)) == ["UNAUTHENTICATED"]


def test_handler_module_refuses_to_start_without_its_settings(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLOODBANK_")}
    result = subprocess.run(
        [sys.executable, "-c", "import handler"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "BLOODBANK_USER_POOL_ID is not set" in result.stderr
