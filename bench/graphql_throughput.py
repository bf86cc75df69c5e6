"""Requests per second through the Lambda handler for a 100-donor page, vs a naive graphql-core server.

Ours: ``Mangum(create_app(build_container(...)))`` exactly as handler.py builds it, but with the
in-memory fakes (InMemoryDonorRepository holding 250 donors, InMemoryDirectory, StaticKeySet) and a
pre-made Staff access token, serving API Gateway HTTP API v2 events of

    listDonors(limit: 100) { items { id firstName lastName email phone bloodGroup siteId createdAt
                                     updatedAt version } nextToken }

Baseline: a naive server on graphql-core: ``json.loads`` of the same body, ``graphql_sync`` (parse +
validate + execute every time, nothing cached) over ``graphql.build_schema(str(schema.schema))`` (the
exported SDL, custom directive declared and accepted) with a root resolver returning the same 100
donors as plain dicts, then ``json.dumps`` of the result. No authentication, no HTTP layer.

Both run the same number of requests, in interleaved rounds. Goal: ours / baseline >= 1.2.

    .venv/bin/python bench/graphql_throughput.py [--quick] [--profile] [--seconds S]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import time
from collections.abc import Callable
from typing import Any

import _common as c

GOAL = 1.2
DONORS_IN_STORE = 250
QUERY = """query ListDonors {
  listDonors(limit: 100) {
    items { id firstName lastName email phone bloodGroup siteId createdAt updatedAt version }
    nextToken
  }
}"""


def build_ours(key: c.SigningKey) -> tuple[Any, Any]:
    from mangum import Mangum

    from bloodbank.bootstrap import build_container
    from bloodbank.cursor import CursorCodec
    from bloodbank.fakes import (
        FixedClock,
        InMemoryDirectory,
        InMemoryDonations,
        InMemoryDonorRepository,
        InMemoryInventory,
        InMemoryNotificationLedger,
        RecordingNotifier,
        SequentialIds,
        StaticKeySet,
    )
    from bloodbank.local import seed
    from bloodbank.server import create_app

    settings = c.bench_settings()
    directory = InMemoryDirectory(site_list=list(seed.SITES), hospital_list=list(seed.HOSPITALS))
    repository = InMemoryDonorRepository(directory, CursorCodec(settings.page_token_secret))
    demo = seed.demo_donors()
    now = seed.now()
    for donor_id, fields in [*demo, *c.extra_donor_fields(DONORS_IN_STORE - len(demo))]:
        if not seed.seed_donor(repository, donor_id, fields, now):
            raise c.BenchError(f"could not seed donor {donor_id}")
    donations = InMemoryDonations(repository, CursorCodec(settings.page_token_secret))
    container = build_container(
        settings,
        donors=repository,
        directory=directory,
        donations=donations,
        inventory=InMemoryInventory(donations, CursorCodec(settings.page_token_secret)),
        notifier=RecordingNotifier(),
        ledger=InMemoryNotificationLedger(),
        key_source=StaticKeySet(key.jwks),
        clock=FixedClock(),
        new_id=SequentialIds("donor"),
        probes=[],
    )
    handler = Mangum(create_app(container), lifespan="off", api_gateway_base_path="/")
    return handler, container


def build_baseline(items: list[dict[str, Any]], next_token: str | None) -> tuple[Callable[[str], str], Any]:
    import graphql

    import schema

    sdl = str(schema.schema)
    gql_schema = graphql.build_schema(sdl)  # the directive is declared in the SDL, so it is accepted

    def list_donors(info: Any, limit: int | None = None, **_: Any) -> dict[str, Any]:
        return {"items": items[: limit or 20], "nextToken": next_token}

    root = {"listDonors": list_donors}

    def serve(body: str) -> str:
        payload = json.loads(body)
        result = graphql.graphql_sync(
            gql_schema,
            payload["query"],
            root_value=root,
            variable_values=payload.get("variables"),
            operation_name=payload.get("operationName"),
        )
        return json.dumps(result.formatted)

    return serve, gql_schema


def timed(fn: Callable[[], object], count: int) -> tuple[float, list[float]]:
    """Run ``fn`` ``count`` times; (wall seconds, per-call seconds)."""
    latencies = []
    clock = time.perf_counter
    start = clock()
    for _ in range(count):
        t0 = clock()
        fn()
        latencies.append(clock() - t0)
    return clock() - start, latencies


def per_call(fn: Callable[[], object], count: int) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(count):
        fn()
    return (time.perf_counter() - start) / count


def layers(
    container: Any, token: str, ours_call: Callable[[], object], gql_schema: Any, iterations: int, items: Any
) -> None:
    """Where one of our requests spends its time, layer by layer (each layer timed on its own)."""
    import graphql
    import orjson

    from schema import schema
    from schema.context import RequestContext

    identity = container.authenticator.identify(token)
    loop = asyncio.new_event_loop()

    def execute() -> Any:
        context = RequestContext(services=container, request_id="bench-layers", identity=identity)
        result = loop.run_until_complete(schema.execute(QUERY, context_value=context))
        if result.errors:
            raise c.BenchError(f"strawberry execute errors: {result.errors}")
        return result

    result = execute()
    document = graphql.parse(QUERY)
    root = {"listDonors": lambda info, **_: {"items": items, "nextToken": "x"}}
    figures = [
        ("full request: Mangum -> Starlette -> strawberry view -> JSON", per_call(ours_call, iterations)),
        (
            "  Authenticator.identify (JWT RS256 verify + claims)",
            per_call(lambda: container.authenticator.identify(token), iterations),
        ),
        ("  strawberry schema.execute (async, caches warm; incl. resolver)", per_call(execute, iterations)),
        (
            "    resolver's service + in-memory store list(limit=100)",
            per_call(lambda: container.donors.list(identity, None, 100, None), iterations),
        ),
        ("  orjson.dumps of the result", per_call(lambda: orjson.dumps({"data": result.data}), iterations)),
        (
            "reference: graphql-core execute_sync, pre-parsed, no validation",
            per_call(lambda: graphql.execute_sync(gql_schema, document, root_value=root), iterations),
        ),
    ]
    loop.close()
    full, auth, execute_t, store, encode, _ref = (f for _label, f in figures)
    print(f"\nWhere one request goes (each layer timed alone, {iterations} calls, mean):")
    for label, seconds in figures:
        share = f"{seconds / full:5.0%}" if not label.startswith("reference") else "     "
        print(f"  {seconds * 1e6:9.0f} us  {share}  {label}")
    rest = full - auth - execute_t - encode
    print(
        f"  {rest * 1e6:9.0f} us  {rest / full:5.0%}  = remainder: Mangum event/response, Starlette, "
        "middleware, strawberry HTTP view, context"
    )
    engine = execute_t - store
    print(f"  {engine * 1e6:9.0f} us  {engine / full:5.0%}  = strawberry + graphql-core, store excluded")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="about 3 s of measurement, for a smoke test")
    parser.add_argument(
        "--seconds", type=float, default=None, help="measurement time, both sides (default 24)"
    )
    parser.add_argument("--profile", action="store_true", help="also cProfile our requests (top 25)")
    args = parser.parse_args()
    seconds = args.seconds or (3.0 if args.quick else 24.0)
    rounds = 4 if args.quick else 12

    c.print_header(
        "graphql_throughput: listDonors(limit: 100) through Mangum vs naive graphql_sync", args.quick
    )
    c.use_local_aws_env()
    key = c.new_signing_key()
    token = c.sign_token(key, "Staff")
    handler, container = build_ours(key)
    event = c.http_api_event(QUERY, token=token)
    context = c.LambdaContext()

    first = c.graphql_body(handler(event, context))
    if first.get("errors"):
        raise c.BenchError(f"our handler answered with errors: {first['errors']}")
    page = first["data"]["listDonors"]
    if len(page["items"]) != 100:
        raise c.BenchError(f"expected 100 donors, got {len(page['items'])}")
    baseline, gql_schema = build_baseline(page["items"], page["nextToken"])
    same = json.loads(baseline(event["body"]))["data"] == first["data"]
    print(
        f"[setup] store: {DONORS_IN_STORE} donors; response: 100 items, {len(event['body'])} B request, "
        f"{len(handler(event, context)['body'])} B response; baseline data identical to ours: {same}"
    )
    if not same:
        raise c.BenchError("the baseline does not return the same data as our handler")

    def ours() -> None:
        if handler(event, context)["statusCode"] != 200:
            raise c.BenchError("non-200 response during the run")

    body = event["body"]

    def base() -> None:
        baseline(body)

    # Warm-up, and a per-request estimate to size the rounds.
    warm_ours = per_call(ours, 30)
    warm_base = per_call(base, 30)
    per_round = max(10, int(seconds / rounds / (warm_ours + warm_base)))
    print(
        f"[setup] warm-up: ours {warm_ours * 1e3:.2f} ms, baseline {warm_base * 1e3:.2f} ms per request; "
        f"{rounds} rounds x {per_round} requests each, interleaved"
    )

    wall = {"ours": 0.0, "base": 0.0}
    round_times: dict[str, list[float]] = {"ours": [], "base": []}
    lat: dict[str, list[float]] = {"ours": [], "base": []}
    print(f"\n  {'round':>5}  {'ours req/s':>10}  {'baseline req/s':>14}  {'ratio':>6}")
    for r in range(rounds):
        order = (("ours", ours), ("base", base)) if r % 2 == 0 else (("base", base), ("ours", ours))
        got = {}
        for name, fn in order:
            gc.collect()
            spent, latencies = timed(fn, per_round)
            wall[name] += spent
            round_times[name].append(spent)
            lat[name] += latencies
            got[name] = per_round / spent
        print(f"  {r + 1:5d}  {got['ours']:10.0f}  {got['base']:14.0f}  {got['ours'] / got['base']:6.2f}")

    total = per_round * rounds
    ours_rps, base_rps = total / wall["ours"], total / wall["base"]
    ratio = ours_rps / base_rps
    print(f"\nRequests/s over {total} requests each:")

    def spread(name: str) -> str:
        return "  ".join(f"p{p} {c.percentile(lat[name], p) * 1e3:6.2f} ms" for p in (50, 95, 99))

    print(f"  ours (Mangum handler, auth, strawberry)   {ours_rps:8.0f} req/s   {spread('ours')}")
    print(f"  baseline (json + graphql_sync + json)     {base_rps:8.0f} req/s   {spread('base')}")
    print(f"  ratio ours / baseline                     {ratio:8.2f}        goal >= {GOAL}")
    round_ratios = [b / o for o, b in zip(round_times["ours"], round_times["base"], strict=True)]
    p50_ratio = c.percentile(lat["base"], 50) / c.percentile(lat["ours"], 50)
    print(
        f"  noise checks: median of per-round ratios {c.median(round_ratios):.2f} "
        f"(range {min(round_ratios):.2f}-{max(round_ratios):.2f}); baseline p50 / ours p50 {p50_ratio:.2f}"
    )

    layers(container, token, ours, gql_schema, 60 if args.quick else 300, page["items"])

    if args.profile:
        count = 100 if args.quick else 400
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(count):
            ours()
        profiler.disable()
        c.print_profile(profiler, count)

    c.print_summary(
        "graphql_throughput",
        f"ours {ours_rps:.0f} req/s (p50 {c.percentile(lat['ours'], 50) * 1e3:.2f} ms, "
        f"p95 {c.percentile(lat['ours'], 95) * 1e3:.2f} ms) vs graphql_sync {base_rps:.0f} req/s",
        round(ratio, 2),
        f">= {GOAL}",
        ratio >= GOAL,
    )


if __name__ == "__main__":
    try:
        main()
    except c.BenchError as exc:
        c.fail(str(exc))
