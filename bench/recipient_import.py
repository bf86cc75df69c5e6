"""A 1M-row recipient CSV through the real import: rows/s and peak memory (issue 6).

The file (about 50 MB: address, first name, city; 1 % repeated addresses, 0.5 % invalid ones, 1 %
suppressed) is written to a temporary folder first. Each measured import runs in a fresh child
process, through ``RecipientListService.import_upload`` exactly as ``handler.import_recipients``
calls it: the streaming CSV reader (encoding detection, validation and normalization of every
address), the duplicate counter, the suppression check (100 a call, in-memory suppressions), the
report (a temporary file, then stored) and the member writes. Two stores:

- ``table``: ``DynamoRecipientLists`` on DynamoDB Local (BatchWriteItem, 25 a request, 8 at once);
- ``pipeline``: the same code with a store that counts the members and drops them, to show the
  import's own speed where DynamoDB Local (a single Java process on this machine) is the limit.

S3 is not in the loop: the file is read from local disk in 1 MiB chunks (the chunk size
``S3RecipientFiles`` reads with), so the figures are the import's, not the network's. Memory is the
child's peak resident set (``ru_maxrss``) and its resident set sampled every 0.2 s while importing,
which shows whether it grows with the file (goal: flat, < 150 MB). Goal for speed: >= 10k rows/s.

    .venv/bin/python bench/recipient_import.py [--quick] [--rows N] [--only table|pipeline]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import _common as c

ROWS = 1_000_000
QUICK = 100_000
# DynamoDB Local writes some 1,800 items/s on 2 cores: 1M rows would take ten minutes, so the table
# run imports the first rows of the same file only (--table-rows to change it).
TABLE_ROWS = 100_000
TABLE_QUICK = 20_000
CHUNK = 1024 * 1024
RESULT_MARK = "IMPORT-RESULT "


def write_file(path: Path, rows: int) -> tuple[int, list[str]]:
    """The CSV and the addresses to suppress; returns (bytes, suppressed addresses)."""
    rng = random.Random(6)
    suppressed: list[str] = []
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("email,first_name,city\n")
        for i in range(rows):
            draw = rng.random()
            if draw < 0.01 and i > 0:
                j = rng.randrange(i)
                email = f"PERSON.{j}@example{j % 97}.ORG"  # an earlier row's address, other case
            elif draw < 0.015:
                email = f"person.{i}.at.example.org"  # no @
            else:
                email = f"Person.{i}@Example{i % 97}.org"
                if draw > 0.99:
                    suppressed.append(email.lower())
            out.write(f"{email},First{i % 5000},City {i % 300}\n")
    return path.stat().st_size, suppressed


# --- the child: one import, measured -------------------------------------------------------------
class LocalFiles:
    """``RecipientFiles`` over the local disk: uploads read in 1 MiB chunks, reports kept in a folder."""

    def __init__(self, upload: Path, folder: Path) -> None:
        self.upload = upload
        self.folder = folder
        self.report_bytes = 0

    def open(self, key: str) -> Iterator[bytes]:
        with self.upload.open("rb") as f:
            while chunk := f.read(CHUNK):
                yield chunk

    def save(self, key: str, body: IO[bytes], content_type: str) -> None:
        with (self.folder / "report.csv").open("wb") as out:
            while piece := body.read(CHUNK):
                out.write(piece)
                self.report_bytes += len(piece)

    def download_url(self, key: str, expires_in: int) -> str:
        return f"file://{self.folder / 'report.csv'}"


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Sampler(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[tuple[float, float]] = []
        self.done = threading.Event()

    def run(self) -> None:
        started = time.perf_counter()
        while not self.done.wait(0.2):
            self.samples.append((time.perf_counter() - started, rss_mb()))


def child(mode: str, upload: Path, suppressed_path: Path, folder: Path, endpoint: str | None) -> None:
    c.use_local_aws_env()
    from bloodbank.cursor import CursorCodec
    from bloodbank.domain.campaigns import SuppressionReason, address_key
    from bloodbank.domain.identity import Group, Identity
    from bloodbank.domain.recipients import ListMember
    from bloodbank.fakes import (
        FixedClock,
        InMemoryDocumentStore,
        InMemoryRecipientLists,
        InMemorySuppressions,
        SequentialIds,
    )
    from bloodbank.services.recipients import RecipientListService

    cursors = CursorCodec(c.PAGE_SECRET)
    lists: Any
    if mode == "table":
        from bloodbank.local import stack
        from bloodbank.storage.recipients import DynamoRecipientLists

        binding = stack.open_table(endpoint, c.REGION, c.TABLE)
        lists = DynamoRecipientLists(binding, cursors)
    else:

        class CountingLists(InMemoryRecipientLists):
            """Keeps the list items, counts the members and drops them (no table in the loop)."""

            written = 0

            def add_members(self, list_id: str, members: Sequence[ListMember]) -> None:
                CountingLists.written += len(members)

        lists = CountingLists(cursors)

    suppressions = InMemorySuppressions()
    clock = FixedClock()
    for email in json.loads(suppressed_path.read_text()):
        suppressions.suppress(address_key(email), SuppressionReason.HARD_BOUNCE, clock())
    files = LocalFiles(upload, folder)
    service = RecipientListService(
        lists, files, InMemoryDocumentStore(clock=clock), suppressions, clock, SequentialIds("bench")
    )
    staff = Identity("bench-staff", "bench", frozenset({Group.STAFF}), "access")
    created = service.create(staff, {"name": "bench"})
    ticket = service.request_upload(staff, created.id)

    baseline = rss_mb()
    sampler = Sampler()
    sampler.start()
    started = time.perf_counter()
    result = service.import_upload("", ticket.key)
    seconds = time.perf_counter() - started
    sampler.done.set()
    sampler.join()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    samples = [mb for _, mb in sampler.samples]
    tenth = max(1, len(samples) // 10)
    record = {
        "mode": mode,
        "outcome": result.outcome,
        "counts": {
            k: getattr(result.counts, k) for k in ("rows", "imported", "duplicates", "invalid", "suppressed")
        },
        "seconds": seconds,
        "baseline_mb": baseline,
        "peak_mb": peak,
        "rss_first_tenth_mb": max(samples[:tenth]) if samples else baseline,
        "rss_last_tenth_mb": max(samples[-tenth:]) if samples else baseline,
        "report_bytes": files.report_bytes,
    }
    print(RESULT_MARK + json.dumps(record), flush=True)


# --- the parent ------------------------------------------------------------------------------------
def run_child(
    mode: str, upload: Path, suppressed: Path, folder: Path, endpoint: str | None
) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", mode, str(upload), str(suppressed), str(folder)]
    if endpoint:
        command.append(endpoint)
    proc = subprocess.run(command, env=c.clean_child_env(), capture_output=True, text=True, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_MARK):
            return dict(json.loads(line[len(RESULT_MARK) :]))
    raise c.BenchError(f"the {mode} import failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")


def report(record: dict[str, Any]) -> float:
    counts = record["counts"]
    rate = counts["rows"] / record["seconds"]
    print(f"\n[{record['mode']}] {record['outcome']}: {counts}")
    print(f"  time            {record['seconds']:8.1f} s")
    print(f"  rows/s          {rate:8.0f}   (goal >= 10,000: ratio {rate / 10_000:.2f})")
    print(
        f"  memory          peak RSS {record['peak_mb']:.0f} MB"
        f" (before the import {record['baseline_mb']:.0f} MB);"
        f" RSS in the first tenth {record['rss_first_tenth_mb']:.0f} MB, last tenth"
        f" {record['rss_last_tenth_mb']:.0f} MB"
    )
    print(f"  report          {record['report_bytes'] / 1024:.0f} KiB")
    return rate


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        mode, upload, suppressed, folder = sys.argv[2:6]
        endpoint = sys.argv[6] if len(sys.argv) > 6 else None
        child(mode, Path(upload), Path(suppressed), Path(folder), endpoint)
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help=f"{QUICK} rows instead of {ROWS}")
    parser.add_argument("--rows", type=int, help="rows in the file")
    parser.add_argument("--table-rows", type=int, help=f"rows imported into DynamoDB Local ({TABLE_ROWS})")
    parser.add_argument("--only", choices=("table", "pipeline"), help="run one of the two imports")
    args = parser.parse_args()
    rows = args.rows or (QUICK if args.quick else ROWS)
    table_rows = min(rows, args.table_rows or (TABLE_QUICK if args.quick else TABLE_ROWS))
    c.print_header(f"recipient_import: a {rows:,}-row CSV through the import (DynamoDB Local)", args.quick)
    c.use_local_aws_env()
    try:
        with c.workdir("recipients") as work:
            upload = work / "recipients.csv"
            started = time.perf_counter()
            size, suppressed = write_file(upload, rows)
            (work / "suppressed.json").write_text(json.dumps(suppressed))
            print(
                f"[file] {rows:,} rows, {size / 1e6:.1f} MB, {len(suppressed):,} suppressed addresses,"
                f" written in {time.perf_counter() - started:.1f} s"
            )
            rates: dict[str, float] = {}
            peaks: dict[str, float] = {}
            if args.only in (None, "pipeline"):
                record = run_child("pipeline", upload, work / "suppressed.json", work, None)
                rates["pipeline"], peaks["pipeline"] = report(record), record["peak_mb"]
            if args.only in (None, "table"):
                table_file = upload
                if table_rows < rows:
                    table_file = work / "table.csv"
                    with upload.open("rb") as src, table_file.open("wb") as dst:
                        for _ in range(table_rows + 1):
                            dst.write(src.readline())
                    print(f"\n[file] the table run imports the first {table_rows:,} rows of it")
                with c.dynamodb_local(work) as endpoint:
                    record = run_child("table", table_file, work / "suppressed.json", work, endpoint)
                rates["table"], peaks["table"] = report(record), record["peak_mb"]
    except c.BenchError as exc:
        c.fail(str(exc))
        return
    if "table" in rates and "pipeline" in rates:
        print(
            f"\nDynamoDB Local takes {rates['pipeline'] / rates['table']:.1f}x the pipeline's time per row:"
            + (
                " it is the bottleneck here."
                if rates["table"] < 0.8 * rates["pipeline"]
                else " not the bottleneck."
            )
        )
    headline = "pipeline" if "pipeline" in rates else "table"  # the import's own speed (see above)
    rate, peak = rates[headline], max(peaks.values())
    figure = (
        ", ".join(f"{mode} {value:,.0f} rows/s" for mode, value in rates.items()) + f"; peak {peak:.0f} MB"
    )
    c.print_summary("recipient_import", figure, rate / 10_000, ">= 10k rows/s", rate >= 10_000 and peak < 150)


if __name__ == "__main__":
    main()
