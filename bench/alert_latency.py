"""Shortage alert latency: from sending the mutation that causes a crossing to the subscriber
receiving the alert over graphql-transport-ws, through the real app (Starlette's test client, the
fakes behind the ports: what is measured is the API, the service and the broker, not a database).

Each round an admin sets a par level that turns one stock level RED; a staff subscriber on
``onShortageAlert(siteId)`` waits for the alert. Goal (issue 5): within a second.

    .venv/bin/python bench/alert_latency.py [--quick]
"""

from __future__ import annotations

import argparse
import time

import _common as c

ROUNDS = 200
QUICK = 20


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help=f"{QUICK} rounds instead of {ROUNDS}")
    args = parser.parse_args()
    rounds = QUICK if args.quick else ROUNDS
    c.print_header("alert_latency: mutation to subscriber, graphql-transport-ws", args.quick)
    c.use_local_aws_env()

    from starlette.testclient import TestClient

    from bloodbank.fakes import FixedClock, SequentialIds
    from bloodbank.server import create_app

    key = c.new_signing_key()
    settings = c.bench_settings()
    container = c.fake_container(settings, key, clock=FixedClock(), new_id=SequentialIds("bench"))
    staff, admin = c.sign_token(key, "Staff"), c.sign_token(key, "Admins")
    mutation = """mutation($site: ID!, $par: Int!) { setStockThreshold(input: {siteId: $site,
        bloodGroup: O_NEG, component: RED_CELLS, parLevel: $par}) { status } }"""
    subscription = 'subscription { onShortageAlert(siteId: "site-north") { status available threshold } }'
    latencies = []
    with (
        TestClient(create_app(container)) as client,
        client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws,
    ):
        ws.send_json({"type": "connection_init", "payload": {"Authorization": staff}})
        if ws.receive_json()["type"] != "connection_ack":
            raise c.BenchError("no connection_ack")
        ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": subscription}})
        for n in range(rounds):
            # Alternate between two sites' worth of crossings: north turns RED, then GREEN again
            # after the quiet period (the clock is moved on), so every round is a crossing.
            container_clock = container.inventory.clock
            container_clock.advance(hours=1)  # type: ignore[attr-defined]
            par = 3 if n % 2 == 0 else 0
            started = time.perf_counter()
            body = client.post(
                "/graphql",
                json={"query": mutation, "variables": {"site": "site-north", "par": par}},
                headers={"Authorization": admin},
            ).json()
            if "errors" in body:
                raise c.BenchError(f"mutation failed: {body['errors']}")
            message = ws.receive_json()
            latencies.append(time.perf_counter() - started)
            if message.get("type") != "next":
                raise c.BenchError(f"unexpected message {message}")
    p50, p95, worst = c.median(latencies), c.percentile(latencies, 95), max(latencies)
    print(
        f"\n{rounds} crossings: p50 {c.ms(p50)}, p95 {c.ms(p95)}, max {c.ms(worst)}"
        " (mutation sent -> alert received)"
    )
    c.print_summary(
        "alert_latency", f"p95 {c.ms(p95)}, max {c.ms(worst)}", round(worst, 3), "max < 1 s", worst < 1.0
    )


if __name__ == "__main__":
    try:
        main()
    except c.BenchError as exc:
        c.fail(str(exc))
