"""Verifying Cognito JWTs the way API Gateway and AppSync do, and turning them into an Identity.

Checks, in order: a well-formed compact JWS; header ``alg`` is RS256 (nothing else, so neither
``none`` nor an HMAC signed with the public key can pass); ``kid`` is in the pool's key set
(refetched at most once per interval for an unknown kid, to follow key rotation without letting
garbage tokens hammer the identity provider); the RS256 signature; ``iss``; ``exp`` present and not
past (small leeway); ``token_use`` is ``access`` or ``id``; and the app client: ``client_id`` of an
access token, ``aud`` of an ID token, must be one of ours.

Hospital integrations sign in without a person, with Cognito's OAuth client-credentials grant: each
hospital has its own confidential app client (``bloodbank hospital-client create``), which is not one
of ours. Such an access token passes every check above except the client list, and is accepted in its
stead when it has the shape only that grant gives (the machine scope in ``scope``, no ``username``,
``sub`` equal to ``client_id``); the Authenticator then requires the client's membership of a hospital
(the directory, keyed by the client id as it is by a user's ``sub``). Revoking a client deletes that
membership, so its tokens stop working at once, whatever their expiry.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from jose import jwt
from jose.exceptions import ExpiredSignatureError, JWTClaimsError, JWTError

from bloodbank.domain.identity import Group, Identity, parse_groups
from bloodbank.errors import DependencyUnavailable, ServiceUnavailable, Unauthenticated
from bloodbank.ports import DirectoryRepository, KeySetSource

log = logging.getLogger("bloodbank.auth")

MAX_TOKEN_BYTES = 16 * 1024


class _Rejected(Unauthenticated):
    pass


def _reject(why: str) -> _Rejected:
    return _Rejected(
        f"Invalid token: {why}. Sign in again and send the Cognito token in the Authorization header"
    )


@dataclass
class KeySet:
    """The pool's public keys by ``kid``, cached; unknown kids refetch at most once per interval."""

    source: KeySetSource
    refetch_interval_seconds: float = 60.0
    retry_after_failure_seconds: float = 5.0
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self._keys: dict[str, dict[str, Any]] = {}
        self._fetched_at: float | None = None
        self._failing = False
        self._lock = threading.Lock()

    def _refresh(self) -> None:
        # An attempt counts even when it fails, so an outage is not hammered; but after a failure
        # the next attempt comes sooner than the normal interval.
        now = self.clock()
        self._fetched_at = now - self.refetch_interval_seconds + self.retry_after_failure_seconds
        self._failing = True
        document = self.source.fetch()
        found = document.get("keys")
        if not isinstance(found, list):
            raise DependencyUnavailable("key set has no 'keys' list")
        self._keys = {k["kid"]: k for k in found if isinstance(k, dict) and isinstance(k.get("kid"), str)}
        self._fetched_at, self._failing = now, False

    def get(self, kid: str) -> dict[str, Any] | None:
        """The key, None if the pool does not have it; DependencyUnavailable if that cannot be known."""
        with self._lock:
            if kid in self._keys:
                return self._keys[kid]
            due = self._fetched_at is None or self.clock() - self._fetched_at >= self.refetch_interval_seconds
            if due:
                self._refresh()
            elif self._failing:
                # Waiting to retry a failed fetch: an unknown kid may be a valid new key, so this
                # is an outage to report, not a verdict on the token.
                raise DependencyUnavailable("key set unavailable; retrying shortly")
            return self._keys.get(kid)

    def warm(self) -> None:
        with self._lock:
            if self._fetched_at is None:
                self._refresh()


def is_machine_token(claims: Mapping[str, Any], machine_scope: str) -> bool:
    """A client-credentials access token with the machine scope: no user, ``sub`` is the client."""
    scope = claims.get("scope")
    client = claims.get("client_id")
    return (
        bool(machine_scope)
        and claims.get("token_use") == "access"
        and isinstance(scope, str)
        and machine_scope in scope.split()
        and "username" not in claims
        and "cognito:username" not in claims
        and isinstance(client, str)
        and bool(client)
        and claims.get("sub") == client
    )


@dataclass
class TokenVerifier:
    keys: KeySet
    issuer: str
    client_ids: frozenset[str]
    leeway_seconds: int = 30
    machine_scope: str = ""  # empty: client-credentials tokens are not accepted

    def verify(self, token: str) -> Mapping[str, Any]:
        """The token's claims if it is a valid token of our pool and app clients; else Unauthenticated."""
        if not token or len(token) > MAX_TOKEN_BYTES or token.count(".") != 2:
            raise _reject("not a JSON Web Token")
        try:
            header = jwt.get_unverified_header(token)
        except JWTError:
            raise _reject("malformed header") from None
        if header.get("alg") != "RS256":
            raise _reject("unsupported signing algorithm")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise _reject("no key id")
        key = self.keys.get(kid)
        if key is None:
            raise _reject("signed by an unknown key")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                issuer=self.issuer,
                options={
                    "verify_aud": False,  # checked below: access tokens carry client_id, not aud
                    "require_exp": True,
                    "require_iat": False,
                    "leeway": self.leeway_seconds,
                },
            )
        except ExpiredSignatureError:
            raise _reject("expired") from None
        except JWTClaimsError as exc:
            raise _reject(f"claims rejected ({exc})") from None
        except JWTError as exc:
            missing = "missing required key" in str(exc)
            raise _reject("a required claim is missing" if missing else "bad signature") from None
        token_use = claims.get("token_use")
        if token_use == "access":  # noqa: S105 - a claim value, not a password
            client = claims.get("client_id")
        elif token_use == "id":  # noqa: S105
            client = claims.get("aud")
        else:
            raise _reject("neither an access nor an ID token")
        if not isinstance(client, str) or (
            client not in self.client_ids and not is_machine_token(claims, self.machine_scope)
        ):
            raise _reject("issued to another app client")
        if not isinstance(claims.get("sub"), str):
            raise _reject("no subject")
        return claims


@dataclass
class Authenticator:
    """Builds the caller's Identity from an ``Authorization`` header value."""

    verifier: TokenVerifier
    directory: DirectoryRepository

    def identify(self, authorization: str | None) -> Identity | None:
        """None when no credentials were sent; Unauthenticated when they are not valid."""
        if authorization is None or not authorization.strip():
            return None
        scheme, _, rest = authorization.strip().partition(" ")
        if rest and scheme.lower() == "bearer":
            token = rest.strip()
        elif not rest:
            token = scheme
        else:
            raise _reject("send 'Authorization: <token>' or 'Authorization: Bearer <token>'")
        claims = self.verifier.verify(token)
        if is_machine_token(claims, self.verifier.machine_scope):
            return self._machine_identity(claims)
        groups = parse_groups(claims.get("cognito:groups"))
        username = claims.get("username") or claims.get("cognito:username") or claims["sub"]
        hospital_id = None
        if Group.HOSPITALS in groups:  # only hospital users act for a hospital
            hospital_id = claims.get("custom:hospital_id")
            if not isinstance(hospital_id, str) or not hospital_id:
                hospital_id = self.directory.hospital_of(claims["sub"])
        return Identity(
            sub=claims["sub"],
            username=str(username),
            groups=groups,
            token_use=str(claims["token_use"]),
            claims=claims,
            hospital_id=hospital_id if isinstance(hospital_id, str) else None,
        )

    def _machine_identity(self, claims: Mapping[str, Any]) -> Identity:
        """A hospital's integration: the Hospitals group and the hospital its client is registered
        to, nothing from the token's own group or hospital claims (the directory is the authority)."""
        client_id = str(claims["sub"])
        hospital_id = self.directory.hospital_of(client_id)
        if not hospital_id:
            raise Unauthenticated(
                "Invalid token: this app client is not registered to a hospital. Ask the blood service"
                " to register your integration's app client, then get a new token"
            )
        return Identity(
            sub=client_id,
            username=f"client:{client_id}",
            groups=frozenset({Group.HOSPITALS}),
            token_use="access",  # noqa: S106 - a claim value
            claims=claims,
            hospital_id=hospital_id,
        )

    def sign_in(self, authorization: str | None, request_id: str) -> Identity | None:
        """``identify``, with an outage of the key set or the directory reported as one (logged
        with the request id, never the token) rather than as an invalid token."""
        try:
            return self.identify(authorization)
        except Unauthenticated:
            raise
        except Exception as down:
            reason = str(down) if isinstance(down, DependencyUnavailable) else type(down).__name__
            log.error("sign-in could not be checked", extra={"request_id": request_id, "reason": reason})
            raise ServiceUnavailable(
                f"Sign-in could not be checked right now; try again shortly (request id {request_id})",
                request_id,
            ) from None
