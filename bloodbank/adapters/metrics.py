"""Business metrics as CloudWatch Embedded Metric Format, serialized by aws-lambda-powertools.

Implements ``ports.Metrics``. Counts add up in memory (thread-safe: the campaign worker sends from
several threads) and ``flush`` writes them as one EMF line: every metric of the invocation, unit
Count, one dimension ``service=bloodbank``, the namespace from ``POWERTOOLS_METRICS_NAMESPACE``
(read at flush; ``Bloodbank/local`` when unset). Adding up first keeps one value per metric and
line, far below EMF's 100 values, and CloudWatch's Sum is the same.

Where the line goes (see ``bloodbank.observability``): on Lambda (``AWS_LAMBDA_FUNCTION_NAME`` set)
to stdout, where CloudWatch Logs extracts the metrics; anywhere else to the ``bloodbank.metrics``
log at DEBUG, so the local server's console stays quiet. Nothing counted: nothing written, and
powertools' "no metrics" warning never fires (its serializer is only called with metrics, and
imported on the first flush that has some: most cold starts count nothing). ``POWERTOOLS_METRICS_
DISABLED`` is honoured. Neither ``count`` nor ``flush`` ever raises: a metric that could not be
published is logged (its name and the exception type) and dropped.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from typing import Any

from bloodbank.observability import DEFAULT_NAMESPACE, METRICS, NAMESPACE_VARIABLE, SERVICE, MetricName

log = logging.getLogger("bloodbank.metrics")


def on_lambda() -> bool:
    """The Lambda runtime sets this in every function's environment."""
    return bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))


class EmfMetrics:
    def __init__(self, namespace: str | None = None, *, to_stdout: bool | None = None) -> None:
        """``namespace`` None: from the environment at each flush. ``to_stdout`` None: on Lambda only."""
        self._namespace = namespace
        self._to_stdout = to_stdout
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def count(self, name: MetricName, value: int = 1) -> None:
        try:
            if name not in METRICS or isinstance(value, bool) or not isinstance(value, int) or value < 0:
                log.warning("metric not counted", extra={"metric": str(name)[:64]})
                return
            if value:
                with self._lock:
                    self._counts[name] = self._counts.get(name, 0) + value
        except Exception as exc:  # never into the business path
            log.warning("metric not counted", extra={"exception": type(exc).__name__})

    def flush(self) -> None:
        with self._lock:
            counts, self._counts = self._counts, {}
        if not counts:
            return
        try:
            line = self.emf(counts)
            if line is None:
                return
            if self._to_stdout if self._to_stdout is not None else on_lambda():
                sys.stdout.write(line + "\n")
                sys.stdout.flush()
            else:
                log.debug("metrics %s", line)
        except Exception as exc:
            log.warning(
                "metrics not published", extra={"metrics": sorted(counts), "exception": type(exc).__name__}
            )

    def emf(self, counts: dict[str, int]) -> str | None:
        """The EMF document of ``counts`` as one JSON line (None when powertools metrics are disabled)."""
        from aws_lambda_powertools.metrics.functions import is_metrics_disabled
        from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import (
            AmazonCloudWatchEMFProvider,
        )

        if is_metrics_disabled():
            return None
        namespace = self._namespace or os.environ.get(NAMESPACE_VARIABLE) or DEFAULT_NAMESPACE
        provider = AmazonCloudWatchEMFProvider(namespace=namespace, service=SERVICE)
        for name, total in sorted(counts.items()):
            provider.add_metric(name=name, unit="Count", value=total)
        document: Any = provider.serialize_metric_set()
        return json.dumps(document, separators=(",", ":"))
