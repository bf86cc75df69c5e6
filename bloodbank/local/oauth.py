"""A local stand-in for a Cognito user pool domain's OAuth 2.0 token endpoint (client credentials).

moto's Cognito has no ``/oauth2/token``, so ``bloodbank serve`` answers ``POST /oauth2/token`` as the
pool's domain does for the client-credentials grant, and nothing else:

- the body is ``application/x-www-form-urlencoded``: ``grant_type=client_credentials``, an optional
  ``scope`` (space-separated; default: every custom scope the client is allowed), and the client's
  credentials either in ``Authorization: Basic base64(client_id:client_secret)`` or as the
  ``client_id`` / ``client_secret`` fields;
- the client, its secret, its OAuth flows and scopes and its token validity are read from moto's
  ``DescribeUserPoolClient``, so a client made with ``CreateUserPoolClient`` (``bloodbank
  hospital-client create``) and deleted with ``DeleteUserPoolClient`` behaves as on AWS;
- the answer is ``{"access_token", "expires_in", "token_type": "Bearer"}``, or Cognito's error JSON
  ``{"error": "invalid_request" | "invalid_client" | "unauthorized_client" | "unsupported_grant_type"
  | "invalid_scope"}`` (401 for ``invalid_client``, with ``WWW-Authenticate`` when Basic was used;
  400 otherwise).

The token is what Cognito issues for the grant (``sub`` and ``client_id`` the client, ``scope``,
``token_use: access``, no ``username``, no groups), signed the way moto signs its own tokens: RS256
with the private JWK shipped in the moto package (kid ``dummy``) and the pool's issuer
``https://cognito-idp.<region>.amazonaws.com/<pool id>``, so the API verifies it with the same JWKS
as moto's user tokens. Local only: the Lambda app never mounts it. Neither secrets nor tokens are
logged.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hmac
import json
import time
import urllib.parse
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from typing import Any

from jose import jwt
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from bloodbank.adapters import provisioning

TOKEN_PATH = "/oauth2/token"
MOTO_KID = "dummy"  # the kid of moto's key, as in its jwks-public.json
MAX_FORM_BYTES = 8 * 1024
_VALIDITY_UNITS = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}
DEFAULT_VALIDITY_SECONDS = 3600  # Cognito's default access-token validity: 60 minutes


class OAuthError(Exception):
    """An error answer of the token endpoint (RFC 6749 section 5.2, as Cognito spells them)."""

    def __init__(self, error: str, status: int = 400) -> None:
        super().__init__(error)
        self.error = error
        self.status = status


@dataclass(frozen=True)
class IssuedToken:
    access_token: str = ""
    expires_in: int = 0

    def __repr__(self) -> str:  # a token is a credential: never in a log line or a traceback
        return f"IssuedToken(expires_in={self.expires_in})"


def moto_signing_key() -> dict[str, Any]:
    """moto's private JWK (``moto/cognitoidp/resources/jwks-private.json``, shipped gzipped)."""
    folder = resources.files("moto") / "cognitoidp" / "resources"
    packed = folder / "jwks-private.json.gz"
    raw = (
        gzip.decompress(packed.read_bytes())
        if packed.is_file()
        else (folder / "jwks-private.json").read_bytes()
    )
    key: dict[str, Any] = json.loads(raw)
    return key


def _validity_seconds(described: Mapping[str, Any]) -> int:
    amount = described.get("AccessTokenValidity")
    if not isinstance(amount, int) or amount <= 0:
        return DEFAULT_VALIDITY_SECONDS
    unit = (described.get("TokenValidityUnits") or {}).get("AccessToken", "hours")
    return amount * _VALIDITY_UNITS.get(str(unit), 3600)


@dataclass
class ClientCredentialsIssuer:
    """Issues client-credentials access tokens for the app clients of one (moto) user pool."""

    aws_endpoint: str
    region: str
    user_pool_id: str
    clock: Callable[[], float] = time.time

    @property
    def issuer(self) -> str:
        return f"https://cognito-idp.{self.region}.amazonaws.com/{self.user_pool_id}"

    @cached_property
    def _key(self) -> dict[str, Any]:
        return moto_signing_key()

    def issue(self, client_id: str, client_secret: str, scope: str | None = None) -> IssuedToken:
        """A token for the client, or OAuthError (``invalid_client`` whatever is wrong with the
        credentials, so a caller learns nothing about which client ids exist)."""
        if not client_id or not client_secret:
            raise OAuthError("invalid_client", 401)
        described = provisioning.describe_app_client(
            self.aws_endpoint, self.region, self.user_pool_id, client_id
        )
        secret = str((described or {}).get("ClientSecret") or "")
        if not described or not secret or not hmac.compare_digest(secret.encode(), client_secret.encode()):
            raise OAuthError("invalid_client", 401)
        flows = described.get("AllowedOAuthFlows") or []
        if "client_credentials" not in flows or not described.get("AllowedOAuthFlowsUserPoolClient"):
            raise OAuthError("unauthorized_client")
        # Only a resource server's scopes ("<identifier>/<name>") go with this grant, not openid etc.
        allowed = [s for s in described.get("AllowedOAuthScopes") or [] if "/" in s]
        requested = scope.split() if scope and scope.strip() else allowed
        if not requested or any(s not in allowed for s in requested):
            raise OAuthError("invalid_scope")
        now = int(self.clock())
        lifetime = _validity_seconds(described)
        claims = {
            "sub": client_id,
            "token_use": "access",
            "scope": " ".join(dict.fromkeys(requested)),
            "auth_time": now,
            "iss": self.issuer,
            "exp": now + lifetime,
            "iat": now,
            "version": 2,
            "jti": str(uuid.uuid4()),
            "client_id": client_id,
        }
        token = jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": MOTO_KID})
        return IssuedToken(token, lifetime)


def _credentials(request: Request, form: Mapping[str, str]) -> tuple[str, str, bool]:
    """(client id, secret, whether Basic was used). Both ways at once is an invalid request."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if header and scheme.lower() == "basic":
        if "client_secret" in form:
            raise OAuthError("invalid_request")
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise OAuthError("invalid_client", 401) from None
        client_id, sep, secret = decoded.partition(":")
        if not sep:
            raise OAuthError("invalid_client", 401)
        # RFC 6749 section 2.3.1: both parts are form-urlencoded before they are joined.
        return urllib.parse.unquote_plus(client_id), urllib.parse.unquote_plus(secret), True
    return form.get("client_id", ""), form.get("client_secret", ""), False


def _error(problem: OAuthError, basic: bool) -> Response:
    headers = {"cache-control": "no-store", "pragma": "no-cache"}
    if problem.status == 401 and basic:
        headers["www-authenticate"] = 'Basic realm="bloodbank-local"'
    return JSONResponse({"error": problem.error}, status_code=problem.status, headers=headers)


def token_endpoint(issuer: ClientCredentialsIssuer) -> Callable[[Request], Any]:
    """The ``POST /oauth2/token`` endpoint (a Starlette request handler)."""

    async def endpoint(request: Request) -> Response:
        basic = request.headers.get("authorization", "").lower().startswith("basic ")
        try:
            if request.method != "POST":
                return JSONResponse({"error": "invalid_request"}, status_code=405, headers={"allow": "POST"})
            media = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if media != "application/x-www-form-urlencoded":
                raise OAuthError("invalid_request")
            body = b""
            async for chunk in request.stream():
                body += chunk
                if len(body) > MAX_FORM_BYTES:
                    raise OAuthError("invalid_request")
            try:
                pairs = urllib.parse.parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=False)
            except (UnicodeDecodeError, ValueError):
                raise OAuthError("invalid_request") from None
            names = [name for name, _ in pairs]
            if len(names) != len(set(names)):  # RFC 6749 section 3.2: no parameter twice
                raise OAuthError("invalid_request")
            form = dict(pairs)
            client_id, secret, basic = _credentials(request, form)
            grant = form.get("grant_type", "")
            if not grant:
                raise OAuthError("invalid_request")
            if grant != "client_credentials":
                raise OAuthError("unsupported_grant_type")
            issued = await run_in_threadpool(issuer.issue, client_id, secret, form.get("scope"))
        except OAuthError as problem:
            return _error(problem, basic)
        return JSONResponse(
            {"access_token": issued.access_token, "expires_in": issued.expires_in, "token_type": "Bearer"},
            headers={"cache-control": "no-store", "pragma": "no-cache"},
        )

    return endpoint


def with_token_endpoint(app: ASGIApp, issuer: ClientCredentialsIssuer) -> ASGIApp:
    """``app`` with ``/oauth2/token`` answered in front of it (the local server only)."""
    endpoint = token_endpoint(issuer)

    async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == TOKEN_PATH:
            response = await endpoint(Request(scope, receive))
            await response(scope, receive, send)
            return
        await app(scope, receive, send)

    return asgi
