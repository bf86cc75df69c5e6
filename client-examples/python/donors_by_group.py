"""Count donors by blood group, paging through listDonors with nextToken (Python, httpx).

Run against the local stack: .venv/bin/python client-examples/python/donors_by_group.py
"""

from __future__ import annotations

import collections
import os
import subprocess
import sys
from pathlib import Path

import httpx

API = os.environ.get("BLOODBANK_API", "http://127.0.0.1:8000/graphql")
QUERY = """
query Page($nextToken: String) {
  listDonors(limit: 100, nextToken: $nextToken) { items { bloodGroup } nextToken }
}
"""


def token() -> str:
    if os.environ.get("TOKEN"):
        return os.environ["TOKEN"]
    cli = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "bloodbank"
    return subprocess.run(
        [cli, "token", "--as", "staff"], capture_output=True, text=True, check=True
    ).stdout.strip()


def main() -> int:
    counts: collections.Counter[str] = collections.Counter()
    headers = {"Authorization": token()}
    next_token = None
    with httpx.Client(timeout=10) as client:
        while True:
            body = client.post(
                API, json={"query": QUERY, "variables": {"nextToken": next_token}}, headers=headers
            ).json()
            if body.get("errors"):
                error = body["errors"][0]
                print(f"{error['extensions']['code']}: {error['message']}", file=sys.stderr)
                return 1
            page = body["data"]["listDonors"]
            counts.update(d["bloodGroup"] or "UNTYPED" for d in page["items"])
            next_token = page["nextToken"]
            if next_token is None:
                break
    for group, count in sorted(counts.items()):
        print(f"{group:8} {count}")
    print(f"{'total':8} {sum(counts.values())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
