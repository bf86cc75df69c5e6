"""Fetching the user pool's JSON Web Key Set over HTTPS (or HTTP from the local moto server)."""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass
from urllib.error import URLError

from bloodbank.errors import DependencyUnavailable

MAX_DOCUMENT_BYTES = 64 * 1024


@dataclass
class HttpKeySetSource:
    url: str
    timeout_seconds: float = 3.0

    def fetch(self) -> dict[str, object]:
        if not self.url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
            raise DependencyUnavailable("key set URL must be https (or loopback http for local runs)")
        request = urllib.request.Request(self.url, headers={"Accept": "application/json"})  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:  # noqa: S310
                body = response.read(MAX_DOCUMENT_BYTES + 1)
        except (URLError, TimeoutError, OSError) as exc:
            raise DependencyUnavailable(f"key set unreachable: {type(exc).__name__}") from None
        if len(body) > MAX_DOCUMENT_BYTES:
            raise DependencyUnavailable("key set document too large")
        try:
            document = json.loads(body)
        except ValueError:
            raise DependencyUnavailable("key set is not JSON") from None
        if not isinstance(document, dict):
            raise DependencyUnavailable("key set is not a JSON object")
        return document
