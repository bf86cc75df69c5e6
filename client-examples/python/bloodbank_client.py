"""A small GraphQL client for the blood service API (Python, httpx): copy this file into your project.

What an integration needs beyond ``httpx.post``:

- **errors by ``extensions.code``**: every error a client can cause comes back as a GraphQL error with
  ``extensions.code`` (``UNAUTHENTICATED FORBIDDEN BAD_USER_INPUT NOT_FOUND CONFLICT RATE_LIMITED``;
  anything else is ``INTERNAL_SERVER_ERROR`` with a request id). :class:`ApiError` carries the code,
  the message and the request id, never the token or the query's variables.
- **timeouts**: a connect timeout and a read timeout on every request (``BLOODBANK_TIMEOUT`` seconds,
  default 10), so a hung connection never hangs a night-time job.
- **retries with backoff**: ``RATE_LIMITED``, HTTP 429/502/503/504 (API Gateway's throttling and
  Lambda's cold failures) and network errors are retried with exponential backoff and full jitter,
  honouring a retry hint: the ``Retry-After`` header, or ``extensions.retryAfterSeconds`` /
  ``extensions.retryAfter`` on the error. Queries are always safe to retry; a mutation is retried only
  when the caller says it is (``retry_mutation=True``), which it is when it carries a
  ``clientRequestToken``: the API then applies it once however often it arrives.
- **an expired token**: with a ``token_provider`` the client fetches a new token once on
  ``UNAUTHENTICATED`` and sends the request again; without one it raises, and the caller says so.
- **machine-to-machine sign-in**: :class:`ClientCredentials` gets access tokens from the user pool's
  OAuth 2.0 token endpoint with the client-credentials grant (a hospital's app client id and secret,
  ``CLIENT_ID`` / ``CLIENT_SECRET`` / ``TOKEN_URL`` in :func:`token_from_env`), keeps the token and
  gets a new one shortly before it expires (and on ``UNAUTHENTICATED``). Neither the secret nor a token
  is ever logged, printed or put in an error message.

    client = BloodbankClient(API, token)
    data = client.execute("{ stockLevels(siteId: \\"site-north\\") { bloodGroup available status } }")
"""

from __future__ import annotations

import email.utils
import json
import os
import random
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx

DEFAULT_API = "http://127.0.0.1:8000/graphql"
RETRIED_STATUS = {429, 502, 503, 504}
MAX_HINT = 300.0  # seconds: a longer retry hint is capped
NETWORK_ERROR = "NETWORK_ERROR"  # this client's code for "no usable answer": not one of the API's


class ApiError(Exception):
    """A GraphQL error of the API (or a failure to reach it), by its ``extensions.code``."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        request_id: str | None = None,
        extensions: Mapping[str, Any] | None = None,
        transient: bool = False,
    ) -> None:
        super().__init__(f"{code}: {message}" + (f" (request id {request_id})" if request_id else ""))
        self.code = code
        self.message = message
        self.request_id = request_id
        self.extensions = dict(extensions or {})
        self.transient = transient

    @classmethod
    def from_graphql(cls, error: Mapping[str, Any], request_id: str | None) -> ApiError:
        extensions = error.get("extensions") or {}
        return cls(
            str(extensions.get("code", "INTERNAL_SERVER_ERROR")),
            str(error.get("message", "no message")),
            request_id=str(extensions.get("requestId") or request_id or "") or None,
            extensions=extensions,
        )

    @property
    def retryable(self) -> bool:
        """Worth sending again: throttled, a dependency briefly down, or no answer at all."""
        return (
            self.transient
            or self.code == "RATE_LIMITED"
            or self.extensions.get("errorType") == "ServiceUnavailable"
        )

    @property
    def retry_after(self) -> float | None:
        """The server's hint in seconds, if it gave one."""
        for name in ("retryAfterSeconds", "retryAfter"):
            hint = self.extensions.get(name)
            if isinstance(hint, int | float) and hint >= 0:
                return float(hint)
        return None


LOCAL_TOKEN_URL = "http://127.0.0.1:8000/oauth2/token"  # noqa: S105 - `bloodbank serve`'s, not a secret
DEFAULT_SCOPE = "bloodbank/hospital"


class ClientCredentials:
    """Access tokens by the OAuth 2.0 client-credentials grant (RFC 6749 section 4.4), as a Cognito
    user pool domain's ``/oauth2/token`` gives them to a confidential app client.

    ``current()`` returns the kept token, or a new one when it expires within ``renew_before``
    seconds (at least a tenth of its lifetime); calling the object gets a new one whatever the kept
    one's expiry (what :class:`BloodbankClient` does on ``UNAUTHENTICATED``). The secret goes in the
    ``Authorization: Basic`` header only, and is never logged, printed, or put in an error.
    """

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        *,
        scope: str | None = DEFAULT_SCOPE,
        renew_before: float = 60.0,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        http: httpx.Client | None = None,
    ) -> None:
        if not token_url.startswith(("https://", "http://127.0.0.1", "http://localhost", "http://[::1]")):
            raise ValueError("TOKEN_URL must be https (plain http only on loopback, for the local stack)")
        self.token_url = token_url
        self.client_id = client_id
        self._secret = client_secret
        self.scope = scope
        self.renew_before = renew_before
        self._clock = clock
        self._http = http or httpx.Client(timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)))
        self._token: str | None = None
        self._renew_at = 0.0
        self._lock = threading.Lock()
        self.fetched = 0  # how many tokens were fetched (for logs and tests; never the tokens)

    def __repr__(self) -> str:
        return f"ClientCredentials(token_url={self.token_url!r}, client_id={self.client_id!r})"

    def current(self) -> str:
        """The kept token while it is fresh; else a new one."""
        with self._lock:
            if self._token is not None and self._clock() < self._renew_at:
                return self._token
        return self()

    def __call__(self) -> str:
        """A new token from the token endpoint."""
        form = {"grant_type": "client_credentials", **({"scope": self.scope} if self.scope else {})}
        try:
            response = self._http.post(
                self.token_url,
                data=form,
                auth=(self.client_id, self._secret),  # HTTP Basic (client_secret_basic)
                headers={"accept": "application/json"},
            )
        except httpx.TimeoutException:
            raise ApiError(
                NETWORK_ERROR, "the token endpoint did not answer in time", transient=True
            ) from None
        except httpx.TransportError as exc:
            raise ApiError(
                NETWORK_ERROR, f"no answer from the token endpoint ({type(exc).__name__})", transient=True
            ) from None
        if response.status_code in RETRIED_STATUS:
            raise ApiError(NETWORK_ERROR, f"token endpoint HTTP {response.status_code}", transient=True)
        try:
            body = response.json()
        except json.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            raise ApiError("UNAUTHENTICATED", f"token endpoint HTTP {response.status_code}, not JSON")
        if response.status_code != 200 or not isinstance(body.get("access_token"), str):
            # Only the error code: its description could echo what was sent.
            error = body.get("error") if isinstance(body.get("error"), str) else "no token"
            raise ApiError(
                "UNAUTHENTICATED",
                f"the token endpoint refused the client credentials ({error}, HTTP {response.status_code}):"
                " check CLIENT_ID, CLIENT_SECRET and TOKEN_URL, or ask the blood service whether the"
                " app client was revoked",
            )
        lifetime = body.get("expires_in")
        seconds = float(lifetime) if isinstance(lifetime, int | float) and lifetime > 0 else 300.0
        with self._lock:
            self._token = body["access_token"]
            self._renew_at = self._clock() + seconds - max(min(self.renew_before, seconds / 2), seconds / 10)
            self.fetched += 1
            return self._token

    def close(self) -> None:
        self._http.close()


def local_token(role: str) -> str:
    """A demo user's access token from the local stack (``bloodbank token --as <role>``)."""
    cli = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "bloodbank"
    done = subprocess.run([str(cli), "token", "--as", role], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ApiError("UNAUTHENTICATED", f"could not get a local {role} token: {done.stderr.strip()}")
    return done.stdout.strip()


def client_credentials_from_env() -> ClientCredentials | None:
    """``CLIENT_ID`` and ``CLIENT_SECRET`` (and ``TOKEN_URL``, default the local stack's; ``SCOPE``,
    default ``bloodbank/hospital``): the client-credentials grant; None when they are not set."""
    client_id, secret = os.environ.get("CLIENT_ID", "").strip(), os.environ.get("CLIENT_SECRET", "").strip()
    if not client_id and not secret:
        return None
    if not (client_id and secret):
        raise ApiError("UNAUTHENTICATED", "set both CLIENT_ID and CLIENT_SECRET (or neither)")
    try:
        return ClientCredentials(
            os.environ.get("TOKEN_URL", "").strip() or LOCAL_TOKEN_URL,
            client_id,
            secret,
            scope=os.environ.get("SCOPE", DEFAULT_SCOPE).strip() or None,
        )
    except ValueError as problem:
        raise ApiError("UNAUTHENTICATED", str(problem)) from None


def token_from_env(default_role: str) -> Callable[[], str]:
    """Where a token comes from: the client-credentials grant with ``CLIENT_ID`` / ``CLIENT_SECRET`` /
    ``TOKEN_URL`` (see :func:`client_credentials_from_env`), else ``TOKEN``, else ``TOKEN_COMMAND`` (a
    command that prints one, run again whenever the token expires), else the local stack's demo user
    of ``default_role``. Calling the result gives a new token."""
    machine = client_credentials_from_env()
    if machine is not None:
        return machine

    def provide() -> str:
        if os.environ.get("TOKEN"):
            return os.environ["TOKEN"].strip()
        command = os.environ.get("TOKEN_COMMAND")
        if command:
            done = subprocess.run(command, shell=True, capture_output=True, text=True, check=False)  # noqa: S602 - the operator's own command
            if done.returncode != 0 or not done.stdout.strip():
                raise ApiError("UNAUTHENTICATED", f"TOKEN_COMMAND failed (exit {done.returncode})")
            return done.stdout.strip()
        return local_token(default_role)

    return provide


def can_refresh_token() -> bool:
    """Whether :func:`token_from_env` can give a new token (not a fixed ``TOKEN``)."""
    has_client = bool(os.environ.get("CLIENT_ID") and os.environ.get("CLIENT_SECRET"))
    return has_client or not os.environ.get("TOKEN")


class BloodbankClient:
    def __init__(
        self,
        api: str,
        token: str,
        *,
        token_provider: Callable[[], str] | None = None,
        timeout: float | None = None,
        attempts: int = 6,
        base_delay: float = 0.5,
        max_delay: float = 30.0,
        log: Callable[[str], None] | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        seconds = timeout if timeout is not None else float(os.environ.get("BLOODBANK_TIMEOUT", "10"))
        self.api = api
        self._token = token
        self._token_provider = token_provider
        self.attempts = attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._log = log or (lambda _line: None)
        self._http = http or httpx.Client(timeout=httpx.Timeout(seconds, connect=min(seconds, 5.0)))
        self._random = random.SystemRandom()

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> BloodbankClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def execute(
        self,
        query: str,
        variables: Mapping[str, Any] | None = None,
        *,
        retry_mutation: bool = False,
    ) -> dict[str, Any]:
        """``data`` of the operation; :class:`ApiError` for the first error, after retries where safe."""
        retry = retry_mutation or not query.lstrip().startswith("mutation")
        refreshed = False
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._once(query, variables)
            except ApiError as error:
                if error.code == "UNAUTHENTICATED" and self._token_provider and not refreshed:
                    self._log("token rejected: fetching a new one")
                    self._token = self._token_provider()  # a new one, even from ClientCredentials
                    refreshed = True
                    attempt -= 1  # a new token is not a retry
                    continue
                if not (retry and error.retryable) or attempt >= self.attempts:
                    raise
                delay = self._delay(attempt, error.retry_after)
                self._log(f"{error.code}: retrying in {delay:.1f}s (attempt {attempt + 1}/{self.attempts})")
                time.sleep(delay)

    def _delay(self, attempt: int, hint: float | None) -> float:
        """Full jitter (0 to the exponential step); never sooner than the server asked (up to 5 min)."""
        step = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        jittered = self._random.uniform(0, step)
        return max(jittered, min(hint, MAX_HINT)) if hint is not None else jittered

    def _once(self, query: str, variables: Mapping[str, Any] | None) -> dict[str, Any]:
        if isinstance(self._token_provider, ClientCredentials):
            self._token = self._token_provider.current()  # renewed shortly before it expires
        headers = {"Authorization": self._token, "content-type": "application/json"}
        try:
            response = self._http.post(
                self.api, json={"query": query, "variables": dict(variables or {})}, headers=headers
            )
        except httpx.TimeoutException:
            raise ApiError(NETWORK_ERROR, "the API did not answer in time", transient=True) from None
        except httpx.TransportError as exc:
            message = f"no answer from the API ({type(exc).__name__})"
            raise ApiError(NETWORK_ERROR, message, transient=True) from None
        request_id = response.headers.get("x-request-id") or response.headers.get("apigw-requestid")
        if response.status_code in RETRIED_STATUS:
            code = "RATE_LIMITED" if response.status_code == 429 else NETWORK_ERROR
            hint = _retry_after_header(response.headers.get("retry-after"))
            extensions = {"retryAfterSeconds": hint} if hint is not None else {}
            raise ApiError(
                code,
                f"HTTP {response.status_code}",
                request_id=request_id,
                extensions=extensions,
                transient=True,
            )
        try:
            body = response.json()
        except json.JSONDecodeError:
            raise ApiError(
                "INTERNAL_SERVER_ERROR", f"HTTP {response.status_code}, not JSON", request_id=request_id
            ) from None
        if not isinstance(body, dict):
            raise ApiError("INTERNAL_SERVER_ERROR", "unexpected answer", request_id=request_id)
        if body.get("errors"):
            raise ApiError.from_graphql(body["errors"][0], request_id)
        if response.status_code != 200 or not isinstance(body.get("data"), dict):
            raise ApiError("INTERNAL_SERVER_ERROR", f"HTTP {response.status_code}", request_id=request_id)
        data: dict[str, Any] = body["data"]
        return data


def _retry_after_header(value: str | None) -> float | None:
    """``Retry-After``: delay seconds, or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
