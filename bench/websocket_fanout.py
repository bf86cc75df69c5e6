"""The AWS subscription path: one shortage alert fanned out to stored WebSocket subscriptions.

DynamoDB Local holds the connections and subscriptions (``storage/connections.py``); the fan-out
(``ApiGatewaySubscriptions.fan_out``, what ``handler.fan_out_alerts`` runs per alert) reads the
alert's site's and every site's subscriptions, runs each matching one through the schema with the
alert, and posts the results (here to a recording poster, so what is timed is our side of it, not
API Gateway). Printed: time per alert, per delivered subscription, DynamoDB requests per alert.

Subscriptions: a quarter to every site, the rest spread over the seeded sites; a third of them
filter on a blood group. Goal (issue 5): an alert reaches its subscribers within a second.

    .venv/bin/python bench/websocket_fanout.py [--quick]
"""

from __future__ import annotations

import argparse
import time
import uuid
from collections import Counter
from datetime import UTC, datetime

import _common as c

SUBSCRIPTIONS = 2000
QUICK = 300
ROUNDS = 5


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK} subscriptions instead of {SUBSCRIPTIONS}"
    )
    args = parser.parse_args()
    wanted = QUICK if args.quick else SUBSCRIPTIONS
    c.print_header("websocket_fanout: one alert to stored subscriptions (DynamoDB Local)", args.quick)
    c.use_local_aws_env()

    from bloodbank.domain.alerts import AlertFilter, ShortageAlert
    from bloodbank.domain.blood import BloodGroup, Component
    from bloodbank.domain.identity import Group
    from bloodbank.domain.inventory import StockStatus
    from bloodbank.domain.subscriptions import KEEP_ITEMS, Connection, StoredSubscription, Subscriber
    from bloodbank.fakes import RecordingPoster
    from bloodbank.local import seed, stack
    from bloodbank.storage.connections import DynamoConnections
    from bloodbank.websocket import ApiGatewaySubscriptions

    calls: Counter[str] = Counter()
    c.count_aws_calls(calls, "dynamodb")

    with c.workdir("ws") as wd, c.dynamodb_local(wd) as ddb_url:
        binding = stack.open_table(ddb_url, "us-east-1", f"bench-{uuid.uuid4().hex[:8]}")
        store = DynamoConnections(binding)
        poster = RecordingPoster()
        key = c.new_signing_key()
        settings = c.bench_settings()
        container = c.fake_container(settings, key, connections=store, poster=poster)
        fan_out = ApiGatewaySubscriptions(container)
        now = datetime.now(UTC)
        sites = [s.id for s in seed.SITES]
        groups = list(BloodGroup)
        query = (
            "subscription($s: ID, $g: BloodGroup) { onShortageAlert(siteId: $s, bloodGroup: $g) {"
            " id siteId bloodGroup status available daysOfSupply raisedAt } }"
        )
        staff = Subscriber("bench-staff", frozenset({Group.STAFF}), None, int(time.time()) + 7200)
        started = time.perf_counter()
        for n in range(wanted):
            connection = f"conn-{n // 5}"
            if n % 5 == 0:
                store.save_connection(
                    Connection(connection, "https://x.execute-api.us-east-1.amazonaws.com/p", now, staff)
                )
            site = None if n % 4 == 0 else sites[n % len(sites)]
            group = groups[n % len(groups)] if n % 3 == 0 else None
            store.save_subscription(
                StoredSubscription(
                    connection, f"s{n}", "https://x.execute-api.us-east-1.amazonaws.com/p", query,
                    {"s": site, "g": group.value if group else None}, None,
                    AlertFilter(site, group, None), staff, now, now + KEEP_ITEMS,
                )
            )  # fmt: skip
        print(
            f"stored {wanted} subscriptions on {wanted // 5} connections"
            f" in {time.perf_counter() - started:.1f} s"
        )

        alert = ShortageAlert(
            "bench-alert", sites[1], BloodGroup.O_NEG, Component.RED_CELLS, StockStatus.RED,
            StockStatus.AMBER, 0, 4, 0.0, now,
        )  # fmt: skip
        times: list[float] = []
        requests: list[int] = []
        delivered = 0
        for _ in range(ROUNDS):
            calls.clear()
            poster.sent.clear()
            began = time.perf_counter()
            counts = fan_out.fan_out(alert)
            times.append(time.perf_counter() - began)
            requests.append(sum(calls.values()))
            delivered = counts["delivered"]
            if delivered == 0:
                raise c.BenchError("no subscription heard the alert")
        per_alert = c.median(times)
        print(
            f"\n{ROUNDS} fan-outs of one alert: {delivered} of {wanted} subscriptions want it;"
            f" median {c.ms(per_alert)} per alert, {c.ms(per_alert / delivered)} per delivery,"
            f" {requests[-1]} DynamoDB requests per alert ({dict(calls)})"
        )
    c.print_summary(
        "websocket_fanout",
        f"{delivered} deliveries in {c.ms(per_alert)}, {requests[-1]} DynamoDB requests",
        round(per_alert, 3),
        "< 1 s per alert",
        per_alert < 1.0,
    )


if __name__ == "__main__":
    try:
        main()
    except c.BenchError as exc:
        c.fail(str(exc))
