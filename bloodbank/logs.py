"""Structured JSON logs (aws-lambda-powertools formatter) for the ``bloodbank`` loggers.

Library code logs through ``logging.getLogger("bloodbank...")`` with fields in ``extra``; it never
logs tokens, request bodies or personal data.

Every record made inside ``request_scope`` carries that request's ids: ``request_id`` (Lambda's
``aws_request_id`` in every handler of ``handler.py``; for HTTP the id ``server.request_id_of``
gives, echoed as ``x-request-id``) and, where there is one, ``api_request_id`` (API Gateway's
``requestContext.requestId``). A record that names its own ``request_id`` in ``extra`` keeps it.
On Lambda the formatter adds ``xray_trace_id`` (from ``_X_AMZN_TRACE_ID``) to every record too.
"""

from __future__ import annotations

import logging
import sys
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar

_ids: ContextVar[Mapping[str, str]] = ContextVar("bloodbank_request_ids", default={})  # noqa: B039


@contextmanager
def request_scope(request_id: str | None = None, **more: str | None) -> Iterator[str]:
    """Records logged inside (in this context: asyncio tasks and threadpool calls made from it
    inherit it) carry ``request_id`` (a new one if None) and each of ``more`` that is set."""
    rid = request_id or str(uuid.uuid4())
    token = _ids.set({**_ids.get(), "request_id": rid, **{k: v for k, v in more.items() if v}})
    try:
        yield rid
    finally:
        _ids.reset(token)


def current_request_id() -> str | None:
    return _ids.get().get("request_id")


class RequestIds(logging.Filter):
    """Copies the current request's ids onto each record that has none of its own."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in _ids.get().items():
            if getattr(record, name, None) is None:
                setattr(record, name, value)
        return True


class _StdoutJsonHandler(logging.Handler):
    """JSON lines on whatever ``sys.stdout`` is at the time (Lambda and test runners replace it).

    The powertools formatter is imported on the first record, not at start: most cold starts log
    nothing, and the import costs milliseconds there.
    """

    def __init__(self) -> None:
        super().__init__()
        self._formatter: logging.Formatter | None = None
        self.addFilter(RequestIds())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if self._formatter is None:
                from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

                self._formatter = LambdaPowertoolsFormatter(service="bloodbank")
            sys.stdout.write(self._formatter.format(record) + "\n")
            sys.stdout.flush()
        except Exception:
            self.handleError(record)


_configured = False


def configure(level: str = "INFO") -> None:
    global _configured
    if _configured:
        return
    root = logging.getLogger("bloodbank")
    root.handlers[:] = [_StdoutJsonHandler()]
    root.setLevel(level)
    root.propagate = False
    _configured = True
