"""Messages to WebSocket clients through API Gateway's management API (``post_to_connection``).

The management API lives at the WebSocket API's own URL (``https://<domain>/<stage>``), so there is
one client per endpoint, made on first use and kept for the container's life.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from botocore.exceptions import BotoCoreError, ClientError

from bloodbank.errors import DependencyUnavailable

GONE = frozenset({"GoneException", "410"})


def _code(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    return str(error.get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))


class ApiGatewayConnections:
    """Implements ``ConnectionPoster``. ``client_for(endpoint)`` makes a boto3
    ``apigatewaymanagementapi`` client for that endpoint."""

    def __init__(self, client_for: Callable[[str], Any]) -> None:
        self._client_for = client_for
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _client(self, endpoint: str) -> Any:
        with self._lock:
            client = self._clients.get(endpoint)
            if client is None:
                client = self._clients[endpoint] = self._client_for(endpoint)
            return client

    def post(self, endpoint: str, connection_id: str, message: Mapping[str, object]) -> bool:
        try:
            self._client(endpoint).post_to_connection(
                ConnectionId=connection_id, Data=orjson.dumps(dict(message))
            )
        except ClientError as exc:
            if _code(exc) in GONE:
                return False
            raise DependencyUnavailable(f"API Gateway refused a WebSocket message: {_code(exc)}") from None
        except (BotoCoreError, OSError) as exc:
            raise DependencyUnavailable(
                f"API Gateway unreachable, WebSocket message not sent: {type(exc).__name__}"
            ) from None
        return True

    def close(self, endpoint: str, connection_id: str) -> None:
        try:
            self._client(endpoint).delete_connection(ConnectionId=connection_id)
        except ClientError as exc:
            if _code(exc) not in GONE:
                raise DependencyUnavailable(
                    f"API Gateway refused to close a WebSocket: {_code(exc)}"
                ) from None
        except (BotoCoreError, OSError) as exc:
            raise DependencyUnavailable(
                f"API Gateway unreachable, WebSocket not closed: {type(exc).__name__}"
            ) from None
