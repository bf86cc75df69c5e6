"""Structured JSON logs (aws-lambda-powertools formatter) for the ``bloodbank`` loggers.

Library code logs through ``logging.getLogger("bloodbank...")`` with fields in ``extra``; it never
logs tokens, request bodies or personal data.
"""

from __future__ import annotations

import logging
import sys

_configured = False


def configure(level: str = "INFO") -> None:
    global _configured
    if _configured:
        return
    from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(LambdaPowertoolsFormatter(service="bloodbank"))
    root = logging.getLogger("bloodbank")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    _configured = True
