"""The per-request context strawberry hands to every field."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bloodbank.domain.identity import Identity
from bloodbank.errors import AppError
from resolvers.context import Services


@dataclass
class RequestContext:
    services: Services
    request_id: str
    identity: Identity | None = None
    auth_error: AppError | None = None  # credentials were sent but are not valid
    headers: Mapping[str, str] = field(default_factory=dict)
    request: Any = None
    response: Any = None
    loaders: dict[str, Any] = field(default_factory=dict)  # per-request DataLoaders, by name
    connection_params: dict[str, Any] | None = None  # a WebSocket's connection_init payload
