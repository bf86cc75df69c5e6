"""Structured JSON logs (aws-lambda-powertools formatter) for the ``bloodbank`` loggers.

Library code logs through ``logging.getLogger("bloodbank...")`` with fields in ``extra``; it never
logs tokens, request bodies or personal data.
"""

from __future__ import annotations

import logging
import sys


class _StdoutJsonHandler(logging.Handler):
    """JSON lines on whatever ``sys.stdout`` is at the time (Lambda and test runners replace it).

    The powertools formatter is imported on the first record, not at start: most cold starts log
    nothing, and the import costs milliseconds there.
    """

    def __init__(self) -> None:
        super().__init__()
        self._formatter: logging.Formatter | None = None

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
