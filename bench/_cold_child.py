"""One cold start, in a fresh interpreter started by cold_start.py (not a benchmark on its own).

Modes:
  app       import handler, serve the first authenticated request, then a second (warm) one
  baseline  import boto3, strawberry (the floor any Python GraphQL-on-AWS Lambda pays)
  profile   like app, with cProfile around the first request only

The parent passes ``BENCH_SPAWN_T``: its ``time.perf_counter()`` just before it spawned us
(CLOCK_MONOTONIC on Linux, one clock for every process), and ``BENCH_EVENT``: the API Gateway
event. We print one JSON line of timings.
"""

import time

T_TOP = time.perf_counter()  # the first statement: how long the interpreter took to get here

import json  # noqa: E402 - after the clock on purpose
import os  # noqa: E402
import sys  # noqa: E402


class Context:
    function_name = "bloodbank-graphql"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bloodbank-graphql"
    memory_limit_in_mb = 1024
    log_group_name = "/aws/lambda/bloodbank-graphql"
    log_stream_name = "2026/11/22/[$LATEST]0123456789abcdef"

    def __init__(self, request_id: str) -> None:
        self.aws_request_id = request_id

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def check(response: dict, expected_id: str) -> None:
    if response.get("statusCode") != 200:
        raise SystemExit(f"cold child: HTTP {response.get('statusCode')}: {response.get('body')}")
    body = json.loads(response["body"])
    donor = (body.get("data") or {}).get("getDonor")
    if body.get("errors") or not donor or donor.get("id") != expected_id:
        raise SystemExit(f"cold child: unexpected response {response['body'][:500]}")


def main() -> None:
    mode = sys.argv[1]
    spawn = float(os.environ["BENCH_SPAWN_T"])
    out: dict[str, object] = {"mode": mode, "interpreter": T_TOP - spawn}
    if mode == "baseline":
        t0 = time.perf_counter()
        import boto3  # noqa: F401
        import strawberry  # noqa: F401

        t1 = time.perf_counter()
        out.update({"import": t1 - t0, "total": t1 - spawn})
        print(json.dumps(out))
        return

    sys.path.insert(0, os.environ["BENCH_ROOT"])
    t0 = time.perf_counter()
    import handler

    t1 = time.perf_counter()
    event = json.loads(os.environ["BENCH_EVENT"])
    expected = os.environ["BENCH_DONOR_ID"]
    profiler = None
    if mode == "profile":
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    first = handler.http_handler(event, Context("c0ld5tart-0000-0000-0000-000000000001"))
    t2 = time.perf_counter()
    if profiler is not None:
        profiler.disable()
    check(first, expected)
    t3 = time.perf_counter()
    second = handler.http_handler(event, Context("c0ld5tart-0000-0000-0000-000000000002"))
    t4 = time.perf_counter()
    check(second, expected)
    out.update({"import": t1 - t0, "first": t2 - t1, "total": t2 - spawn, "warm": t4 - t3})
    if profiler is not None:
        import pstats

        stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
        out["stats"] = [
            [filename, line, name, ncalls, tottime, cumtime]
            for (filename, line, name), (_cc, ncalls, tottime, cumtime, _callers) in stats.items()
        ]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
