"""Observability: the business metrics' names, and how metrics, logs and traces are produced.

**Metrics.** Services count business events through the ``ports.Metrics`` port, by one of the names
in ``METRICS`` (all unit Count; one dimension, ``service=bloodbank``), each only once the change it
counts is committed and once per business event (a redelivered SQS/SNS message that changes nothing
counts nothing: the count sits where the service knows its conditional write won):

- ``DonationsRecorded``: a donation recorded (``services.donations``);
- ``UnitsIssued``: units issued to a hospital, by the number of units (``services.inventory``);
- ``ShortagesRaised``: a new shortage alert recorded, AMBER or RED (a recovery to GREEN is no
  shortage); ``StockRedAlerts``: those of them that are RED (``services.alerts``);
- ``EmailsSent``: a campaign e-mail SES accepted (``services.campaigns``, the campaign worker);
- ``EmailsBounced``, ``EmailsComplained``: an SES Bounce (any type) or Complaint event the
  recipient's ledger took (``services.campaigns.record_event``);
- ``AuditRecordsAltered``: an audit record modified or removed (``handler.watch_audit_records``).

The adapter (``adapters.metrics.EmfMetrics``) adds the counts up in memory and writes them as one
CloudWatch EMF line (aws-lambda-powertools' EMF serializer; namespace from
``POWERTOOLS_METRICS_NAMESPACE``, else ``Bloodbank/local``) when ``flush`` is called: every handler
of ``handler.py`` flushes at the end of its invocation, failed or not, and an invocation that
counted nothing prints nothing. Counting and flushing never raise into the business path.

*Locally* (``bloodbank serve``, tests) no EMF blob reaches the console: outside Lambda (no
``AWS_LAMBDA_FUNCTION_NAME``) the EMF line is logged on ``bloodbank.metrics`` at DEBUG instead of
being printed, and the local server flushes after each HTTP request; run with
``BLOODBANK_LOG_LEVEL=DEBUG`` to see them. On Lambda the line goes to stdout, where CloudWatch
Logs turns it into metrics.

**Logs.** ``bloodbank.logs``: JSON lines (powertools' formatter) in which every record made during
a request or invocation carries ``request_id`` (Lambda's ``aws_request_id``; locally the HTTP
request's id, also echoed as ``x-request-id``) and, for API Gateway, ``api_request_id``.

**Traces.** Not powertools' ``Tracer``: creating it costs about 120 ms of cold start (it imports and
patches through aws-xray-sdk), against a cold-start goal it would miss further. Instead the functions
run with X-Ray active tracing (``Tracing: Active`` in ``infra/``: Lambda records the invocation's
segments), and every log record carries the invocation's ``xray_trace_id`` (the formatter reads
``_X_AMZN_TRACE_ID``), so a trace leads to its logs and back.
"""

from __future__ import annotations

from typing import Literal, get_args

MetricName = Literal[
    "DonationsRecorded",
    "UnitsIssued",
    "ShortagesRaised",
    "StockRedAlerts",
    "EmailsSent",
    "EmailsBounced",
    "EmailsComplained",
    "AuditRecordsAltered",
]
METRICS: tuple[MetricName, ...] = get_args(MetricName)

SERVICE = "bloodbank"  # the metrics' one dimension, service=bloodbank (and the logs' "service")
DEFAULT_NAMESPACE = "Bloodbank/local"
NAMESPACE_VARIABLE = "POWERTOOLS_METRICS_NAMESPACE"


class DiscardedMetrics:
    """Implements ``ports.Metrics`` by counting nothing: the default of services built without a
    metrics sink (the composition root always passes one)."""

    def count(self, name: MetricName, value: int = 1) -> None:
        pass

    def flush(self) -> None:
        pass


DISCARDED = DiscardedMetrics()
