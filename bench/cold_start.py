"""Cold start: a fresh Lambda-like process importing ``handler`` and serving its first request.

Numerator: a fresh ``python`` that imports ``handler`` (settings from BLOODBANK_* pointing at
DynamoDB Local and at a JWKS served on loopback) and answers an authenticated ``getDonor(id)``
of a seeded donor through ``handler.http_handler(event, context)`` with an API Gateway HTTP API
v2 event, so the JWKS fetch, the token check and a real DynamoDB GetItem all happen.
Denominator: a fresh ``python`` that only does ``import boto3, strawberry``.

Both are timed from just before the parent spawns the process (its ``perf_counter``, the same
CLOCK_MONOTONIC the child reads) to the response / the end of the imports. Runs alternate
(app, baseline, baseline, app, ...) to share noise. Goal: median ratio <= 1.5.

    .venv/bin/python bench/cold_start.py [--quick] [--runs N]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import _common as c

GOAL = 1.5
CHILD = Path(__file__).with_name("_cold_child.py")
QUERY = (
    "query GetDonor($id: ID!) {\n"
    "  getDonor(id: $id) { id firstName lastName email bloodGroup siteId createdAt version }\n"
    "}"
)
SHARED_CLOCK = "CLOCK_MONOTONIC" in time.get_clock_info("perf_counter").implementation


def run_child(mode: str, env: dict[str, str]) -> dict[str, Any]:
    spawn = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(CHILD), mode],
        env={**env, "BENCH_SPAWN_T": repr(spawn)},
        cwd=c.ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    wall = time.perf_counter() - spawn
    if proc.returncode != 0:
        raise c.BenchError(f"cold-start child ({mode}) failed:\n{proc.stderr[-3000:]}{proc.stdout[-1000:]}")
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    result: dict[str, Any] = json.loads(lines[-1])
    result["wall"] = wall
    if not SHARED_CLOCK:  # no clock shared across processes: fall back to the parent's view
        result["total"] = wall
    return result


def import_profile(env: dict[str, str], statement: str = "import handler") -> list[tuple[int, int, int, str]]:
    """``python -X importtime -c <statement>``: (self us, cumulative us, depth, module) per module."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", statement],
        env=env,
        cwd=c.ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if proc.returncode != 0:
        raise c.BenchError(f"python -X importtime failed:\n{proc.stderr[-3000:]}")
    rows = []
    pattern = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S.*)$")
    for line in proc.stderr.splitlines():
        m = pattern.match(line)
        if m:
            rows.append((int(m[1]), int(m[2]), (len(m[3]) - 1) // 2, m[4].strip()))
    return rows


def print_import_breakdown(
    rows: list[tuple[int, int, int, str]], baseline: list[tuple[int, int, int, str]]
) -> None:
    total = sum(cum for _s, cum, depth, _n in rows if depth == 0)
    handler_cum = next((cum for _s, cum, _d, name in rows if name == "handler"), 0)
    handler_self = next((s for s, _c, _d, name in rows if name == "handler"), 0)
    print("\n-- python -X importtime -c 'import handler' (one run; importtime adds overhead) --")
    print(
        f"handler cumulative {handler_cum / 1000:.0f} ms; of which handler.py's own body "
        f"(Settings.from_env + build_container + create_app) {handler_self / 1000:.1f} ms"
    )
    print("\nTop 10 modules by cumulative import time (nested modules included in their parents):")
    print(f"  {'cumulative':>10}  {'self':>8}  depth  module")
    for self_us, cum, depth, name in sorted(rows, key=lambda r: -r[1])[:10]:
        print(f"  {cum / 1000:8.1f}ms  {self_us / 1000:6.1f}ms  {depth:5d}  {name}")

    by_package: dict[str, int] = defaultdict(int)
    counts: dict[str, int] = defaultdict(int)
    for self_us, _cum, _depth, name in rows:
        by_package[name.split(".")[0]] += self_us
        counts[name.split(".")[0]] += 1
    print(
        f"\nTop 12 top-level packages by own import time (sum of self; all imports of the process, "
        f"interpreter start-up included: {total / 1000:.0f} ms):"
    )
    print(f"  {'self':>8}  {'share':>5}  {'modules':>7}  package")
    for package, self_us in sorted(by_package.items(), key=lambda kv: -kv[1])[:12]:
        share = self_us / total if total else 0
        print(f"  {self_us / 1000:6.1f}ms  {share:5.0%}  {counts[package]:7d}  {package}")

    # What handler imports beyond the baseline's boto3 + strawberry: the part of import the goal is about.
    floor = {name for _s, _c, _d, name in baseline}
    floor_total = sum(cum for _s, cum, depth, _n in baseline if depth == 0)
    extra: dict[str, int] = defaultdict(int)
    extra_count: dict[str, int] = defaultdict(int)
    for self_us, _cum, _depth, name in rows:
        if name not in floor:
            extra[name.split(".")[0]] += self_us
            extra_count[name.split(".")[0]] += 1
    print(
        "\nModules handler imports that `import boto3, strawberry` does not "
        f"({sum(extra.values()) / 1000:.0f} ms self in total; the baseline process's imports took "
        f"{floor_total / 1000:.0f} ms in its -X importtime run), by package:"
    )
    print(f"  {'self':>8}  {'modules':>7}  package")
    for package, self_us in sorted(extra.items(), key=lambda kv: -kv[1])[:15]:
        print(f"  {self_us / 1000:6.1f}ms  {extra_count[package]:7d}  {package}")

    # Which heavy packages come in through which of our modules.
    ours = ("handler", "bloodbank", "schema", "resolvers")
    print("\nOur modules with the largest cumulative import (what they drag in):")
    for self_us, cum, depth, name in sorted(rows, key=lambda r: -r[1]):
        if name.split(".")[0] in ours and depth <= 3 and cum > 5000:
            print(f"  {cum / 1000:8.1f}ms  (self {self_us / 1000:5.1f}ms)  {'  ' * depth}{name}")


# Stages of the first request worth naming: (label, file suffix, function).
STAGES = (
    ("Mangum handler, whole request", "mangum/adapter.py", "__call__"),
    ("  GraphQL view: get_context (authentication)", "bloodbank/server.py", "get_context"),
    ("    Authenticator.identify", "services/authn.py", "identify"),
    ("      KeySet fetch (JWKS over HTTP)", "adapters/jwks.py", "fetch"),
    ("      jose jwt.decode (RS256 verify)", "jose/jwt.py", "decode"),
    ("  strawberry execute", "strawberry/schema/schema.py", "execute"),
    ("    graphql-core parse", "graphql/language/parser.py", "parse"),
    ("    graphql-core validate", "graphql/validation/validate.py", "validate"),
    ("    resolver Query.get_donor", "schema/root.py", "get_donor"),
    ("      DynamoDonorRepository.get", "storage/donors.py", "get"),
    ("        pynamodb Model._get_connection", "pynamodb/models.py", "_get_connection"),
    ("        botocore Session.create_client", "botocore/session.py", "create_client"),
    ("          botocore Loader.load_service_model", "botocore/loaders.py", "load_service_model"),
    ("        botocore BaseClient._make_api_call", "botocore/client.py", "_make_api_call"),
    ("          botocore Endpoint._send (HTTP)", "botocore/endpoint.py", "_send"),
    ("imports done during the request", "<frozen importlib._bootstrap>", "_find_and_load"),
)


def print_first_request_profile(profiled: dict[str, Any]) -> None:
    rows = profiled["stats"]
    print(
        f"\n-- cProfile of the first request only (one run; {profiled['first'] * 1000:.0f} ms under the "
        "profiler, which inflates Python-heavy parts) --"
    )
    print(f"  {'cumulative':>10}  {'calls':>6}  stage")
    for label, suffix, func in STAGES:
        found = [r for r in rows if r[0].endswith(suffix) and r[2] == func]
        if found:
            cum = max(r[5] for r in found)
            calls = sum(r[3] for r in found)
            print(f"  {cum * 1000:8.1f}ms  {calls:6d}  {label}")
    print("\n  Top 15 functions of the first request by own time (tottime):")
    print(f"  {'tottime':>9}  {'cumtime':>9}  {'calls':>6}  function")
    for filename, line, func, ncalls, tottime, cumtime in sorted(rows, key=lambda r: -r[4])[:15]:
        where = "/".join(filename.split("/")[-2:])
        print(f"  {tottime * 1000:7.1f}ms  {cumtime * 1000:7.1f}ms  {ncalls:6d}  {where}:{line}({func})")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="3 runs each, for a smoke test")
    parser.add_argument("--runs", type=int, default=None, help="runs of each process (default 7)")
    args = parser.parse_args()
    runs = args.runs or (3 if args.quick else 7)

    c.print_header("cold_start: fresh process, import handler + first authenticated getDonor", args.quick)
    c.use_local_aws_env()
    key = c.new_signing_key()
    token = c.sign_token(key, "Staff")
    with c.workdir("cold") as wd, c.dynamodb_local(wd) as ddb_url, c.jwks_server(key.jwks) as jwks_url:
        seeded = c.provision_and_seed(ddb_url)
        donor_id = seeded["donor_ids"][0]
        event = c.http_api_event(QUERY, {"id": donor_id}, token)
        env = c.clean_child_env(
            {
                **c.settings_env(ddb_url, jwks_url),
                "BENCH_EVENT": json.dumps(event),
                "BENCH_DONOR_ID": donor_id,
                "BENCH_ROOT": str(c.ROOT),
                # Bytecode caches of this run live in the work folder, not beside the sources.
                "PYTHONPYCACHEPREFIX": str(wd / "pycache"),
            }
        )
        print(f"[setup] JWKS at {jwks_url}; Staff access token signed by a per-run RSA key")
        print(f"[setup] clock shared with children: {SHARED_CLOCK} ({time.get_clock_info('perf_counter')})")

        # Warm-up (discarded): compiles every module into the run's bytecode cache and warms the OS
        # page cache, so the measured runs see a package deployed with compiled bytecode.
        started = time.perf_counter()
        run_child("app", env)
        run_child("baseline", env)
        print(
            "[setup] warm-up runs (compiling bytecode into the run's cache) "
            f"{time.perf_counter() - started:.1f} s"
        )

        apps: list[dict[str, Any]] = []
        bases: list[dict[str, Any]] = []
        print(f"\n{runs} runs of each, alternating (times from spawn):")
        print(
            f"  {'run':>3}  {'app total':>10}  {'= start':>8}  {'+ import':>9}  {'+ 1st req':>9}  "
            f"{'(warm req)':>10}  {'baseline':>9}  {'ratio':>6}"
        )
        for i in range(runs):
            order = ("app", "baseline") if i % 2 == 0 else ("baseline", "app")
            got = {mode: run_child(mode, env) for mode in order}
            app, base = got["app"], got["baseline"]
            apps.append(app)
            bases.append(base)
            print(
                f"  {i + 1:3d}  {app['total'] * 1000:8.0f}ms  {app['interpreter'] * 1000:6.0f}ms  "
                f"{app['import'] * 1000:7.0f}ms  {app['first'] * 1000:7.0f}ms  {app['warm'] * 1000:8.1f}ms  "
                f"{base['total'] * 1000:7.0f}ms  {app['total'] / base['total']:6.2f}"
            )

        def med(rows: list[dict[str, Any]], name: str) -> float:
            return c.median([r[name] for r in rows])

        app_total, base_total = med(apps, "total"), med(bases, "total")
        ratio = app_total / base_total
        print("\nMedians:")
        print(f"  app: fresh process -> first getDonor response   {c.ms(app_total)}")
        print(f"       interpreter start (spawn -> first line)     {c.ms(med(apps, 'interpreter'))}")
        print(f"       import handler (incl. building the app)     {c.ms(med(apps, 'import'))}")
        print(f"       first request (JWKS, JWT, client, GetItem)  {c.ms(med(apps, 'first'))}")
        print(f"       second request, same process (warm)         {c.ms(med(apps, 'warm'))}")
        once = med(apps, "first") - med(apps, "warm")
        print(f"       => one-time work in the first request       {c.ms(once)}")
        print(f"  baseline: fresh process -> import boto3, strawberry {c.ms(base_total)}")
        print(f"       interpreter start                           {c.ms(med(bases, 'interpreter'))}")
        print(f"       import boto3, strawberry                    {c.ms(med(bases, 'import'))}")
        print(f"  ratio app / baseline (medians)                   {ratio:8.2f}   goal <= {GOAL}")
        print(
            f"  app budget at the goal                           {c.ms(GOAL * base_total)}  "
            f"(over by {c.ms(max(0.0, app_total - GOAL * base_total)).strip()})"
        )

        no_pyc_runs = 1 if args.quick else 2
        no_pyc_env = {**env, "PYTHONPYCACHEPREFIX": str(wd / "no-pycache"), "PYTHONDONTWRITEBYTECODE": "1"}
        no_pyc_app, no_pyc_base = [], []
        for _ in range(no_pyc_runs):
            no_pyc_app.append(run_child("app", no_pyc_env)["total"])
            no_pyc_base.append(run_child("baseline", no_pyc_env)["total"])
        print(
            f"\nWithout any bytecode cache (a package deployed without .pyc on a read-only file system; "
            f"{no_pyc_runs} run(s) each):\n  app {c.ms(c.median(no_pyc_app)).strip()}, baseline "
            f"{c.ms(c.median(no_pyc_base)).strip()}, ratio {c.median(no_pyc_app) / c.median(no_pyc_base):.2f}"
        )

        print_import_breakdown(import_profile(env), import_profile(env, "import boto3, strawberry"))

        print_first_request_profile(run_child("profile", env))

    met = ratio <= GOAL
    c.print_summary(
        "cold_start",
        f"app {app_total * 1000:.0f} ms vs import boto3+strawberry {base_total * 1000:.0f} ms "
        f"(median of {runs})",
        round(ratio, 2),
        f"<= {GOAL}",
        met,
    )


if __name__ == "__main__":
    try:
        main()
    except c.BenchError as exc:
        c.fail(str(exc))
