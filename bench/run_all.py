"""Run every benchmark, each in its own process, and print a summary table.

    .venv/bin/python bench/run_all.py [--quick] [--profile] [--only NAME ...]

Figures and ratios are measured in this run on this machine; nothing here asserts a time. The exit
status is non-zero only when a benchmark could not run (not when a goal is missed).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import _common as c

BENCHES = (
    "cold_start",
    "graphql_throughput",
    "dynamodb_requests",
    "alert_latency",
    "websocket_fanout",
    "recipient_import",
    "campaign_send",
)


def run(name: str, extra: list[str]) -> tuple[dict[str, object] | None, float, int]:
    script = Path(__file__).with_name(f"{name}.py")
    started = time.perf_counter()
    summary = None
    with subprocess.Popen(
        [sys.executable, str(script), *extra],
        cwd=c.ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith(c.SUMMARY_MARK):
                summary = json.loads(line[len(c.SUMMARY_MARK) :])
            else:
                print(line, end="", flush=True)
        code = proc.wait()
    return summary, time.perf_counter() - started, code


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="short smoke runs of every benchmark")
    parser.add_argument("--profile", action="store_true", help="add cProfile output to graphql_throughput")
    parser.add_argument("--only", nargs="+", choices=BENCHES, help="run only these")
    args = parser.parse_args()

    c.print_header("run_all: bloodbank benchmarks", args.quick)
    results = []
    for name in args.only or BENCHES:
        extra = ["--quick"] if args.quick else []
        if args.profile and name == "graphql_throughput":
            extra.append("--profile")
        print(f"\n\n>>> {name} {' '.join(extra)}\n", flush=True)
        summary, seconds, code = run(name, extra)
        results.append((name, summary, seconds, code))

    print("\n\n" + "=" * 100)
    print("SUMMARY (figures from this run; see bench/README.md for what each measures)")
    print("=" * 100)
    print(f"{'benchmark':<20} {'ratio':>6}  {'goal':<14} {'met':<5} {'time':>6}  figure")
    failed = False
    for name, summary, seconds, code in results:
        if summary is None or code != 0:
            failed = True
            status = f"{'-':>6}  {'-':<14} {'ERROR':<5} {seconds:5.0f}s"
            print(f"{name:<20} {status}  exited with {code}; see its output above")
            continue
        ratio = "-" if summary["ratio"] is None else f"{summary['ratio']:.2f}"
        met = {True: "yes", False: "NO", None: "-"}[summary["met"]]  # type: ignore[index]
        print(f"{name:<20} {ratio:>6}  {summary['goal']!s:<14} {met:<5} {seconds:5.0f}s  {summary['figure']}")
    total = sum(seconds for _n, _s, seconds, _c in results)
    print(f"{'total':<20} {'':>6}  {'':<14} {'':<5} {total:5.0f}s")
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
