"""GraphQL subscriptions held by API Gateway WebSocket connections (on AWS, where no process stays up).

A connection and each of its subscriptions are stored; a fan-out function hears of every alert and
delivers it to the subscriptions it matches. What is stored of the subscriber is what a delivery
needs to decide again what they may see: their id, groups, hospital and the token's expiry; no
name, no e-mail, never the token.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bloodbank.domain.alerts import AlertFilter
from bloodbank.domain.identity import Group, Identity, parse_groups

# API Gateway closes a WebSocket after 2 hours whatever happens; its items outlive it a little, in
# case $disconnect never arrived (the table's TTL then removes them).
MAX_CONNECTION = timedelta(hours=2)
KEEP_ITEMS = MAX_CONNECTION + timedelta(minutes=15)
MAX_SUBSCRIPTIONS = 100  # per connection, as AppSync
_SUBSCRIPTION_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")


def valid_subscription_id(value: str) -> bool:
    """Client-chosen ids are part of a key: 1-128 letters, digits and ``_.:-`` (UUIDs, counters)."""
    return _SUBSCRIPTION_ID.fullmatch(value) is not None


@dataclass(frozen=True, slots=True)
class Subscriber:
    """Who subscribed, as far as a later delivery has to know."""

    sub: str
    groups: frozenset[Group]
    hospital_id: str | None
    expires_at: int | None  # the token's ``exp`` (epoch seconds)

    @classmethod
    def of(cls, identity: Identity) -> Subscriber:
        exp = identity.claims.get("exp")
        expires = int(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None
        return cls(identity.sub, identity.groups, identity.hospital_id, expires)

    def identity(self) -> Identity:
        claims: dict[str, Any] = {"sub": self.sub}
        if self.expires_at is not None:
            claims["exp"] = self.expires_at
        return Identity(self.sub, self.sub, self.groups, "access", claims, self.hospital_id)

    def as_item(self) -> dict[str, Any]:
        return {
            "sub": self.sub,
            "groups": sorted(g.value for g in self.groups),
            "hospital_id": self.hospital_id,
            "exp": self.expires_at,
        }

    @classmethod
    def from_item(cls, value: Mapping[str, Any]) -> Subscriber:
        exp = value.get("exp")
        return cls(
            str(value["sub"]),
            parse_groups(value.get("groups")),
            value.get("hospital_id"),
            int(exp) if isinstance(exp, int | float) else None,
        )


@dataclass(frozen=True, slots=True)
class Connection:
    id: str  # API Gateway's connectionId
    endpoint: str  # its management API: https://<domain>/<stage>
    connected_at: datetime
    subscriber: Subscriber | None  # signed in with the handshake's header, if it had one

    @property
    def keep_until(self) -> datetime:
        return self.connected_at + KEEP_ITEMS


@dataclass(frozen=True, slots=True)
class StoredSubscription:
    connection_id: str
    id: str  # the client's subscription id
    endpoint: str
    query: str
    variables: Mapping[str, Any] | None
    operation_name: str | None
    wanted: AlertFilter  # what the resolver asked the feed for, to pick the alerts to run it on
    subscriber: Subscriber
    created_at: datetime
    keep_until: datetime
