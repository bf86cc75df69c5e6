"""Structured JSON logs (aws-lambda-powertools formatter) for the ``bloodbank`` loggers.

Library code logs through ``logging.getLogger("bloodbank...")`` with fields in ``extra``; it never
logs tokens, request bodies or personal data.
"""

from __future__ import annotations

import logging
import sys

_configured = False


class _StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stdout`` is at the time (Lambda and test runners replace it)."""

    @property
    def stream(self) -> object:
        return sys.stdout

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


def configure(level: str = "INFO") -> None:
    global _configured
    if _configured:
        return
    from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

    handler = _StdoutHandler()
    handler.setFormatter(LambdaPowertoolsFormatter(service="bloodbank"))
    root = logging.getLogger("bloodbank")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    _configured = True
