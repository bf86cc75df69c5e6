"""Lambda entry points. Settings come from the environment (``bloodbank.settings``); the container
is built once per Lambda container and shared by the handlers below.

- ``http_handler``: the GraphQL API behind API Gateway (HTTP API v2 or REST v1 events), through Mangum.
- ``eligibility_reminders``: an EventBridge schedule (hourly); tells donors whose donation interval
  has ended that they may give again. Safe to run twice: a handled reminder is deleted, and each
  message is claimed in the notification ledger before it is sent.
- ``expire_units``: an EventBridge schedule (every 15 minutes); expires blood units past their expiry.
"""

from __future__ import annotations

import gc

# Cold start: building the app makes hundreds of thousands of long-lived objects, and the cyclic
# garbage collector would scan them again and again while they are made (tens of milliseconds).
# Collect nothing until the app is built, then move it all out of the collector's sight.
gc.disable()

from typing import Any  # noqa: E402

from mangum import Mangum  # noqa: E402

from bloodbank.bootstrap import Container, build_container  # noqa: E402
from bloodbank.server import create_app  # noqa: E402
from bloodbank.settings import Settings  # noqa: E402

container: Container = build_container(Settings.from_env())
app = create_app(container)
http_handler = Mangum(app, lifespan="off", api_gateway_base_path="/")
gc.freeze()
gc.enable()


def eligibility_reminders(event: dict[str, Any], context: Any) -> dict[str, int]:
    """EventBridge scheduled event in, the number of donors told out (reminders of the last 3 days)."""
    return {"sent": container.donations.send_due_reminders(days_back=2)}


def expire_units(event: dict[str, Any], context: Any) -> dict[str, int]:
    """EventBridge scheduled event in (every 15 minutes), the number of units expired out.

    One Query per site on the expiry-ordered stock index; each unit expires in a conditional
    transaction with its ledger entry and stock counters, so overlapping runs expire it once.
    """
    return {"expired": container.inventory.expire_due()}
