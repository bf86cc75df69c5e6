"""Count donors by blood group, paging through listDonors with nextToken (Python, httpx).

Run against the local stack (as the demo staff user):

    .venv/bin/python client-examples/python/donors_by_group.py

BLOODBANK_API (default http://127.0.0.1:8000/graphql) and TOKEN (a Cognito access token; default the
local stack's staff user) point it elsewhere. Errors are shown by ``extensions.code``; throttling and
network failures are retried with backoff by ``bloodbank_client`` (next to this file).
Exit codes: 0 done, 1 the API refused (the code says why), 3 not signed in (UNAUTHENTICATED), 5 the
API could not be reached (after retries).
"""

from __future__ import annotations

import collections
import os
import sys

from bloodbank_client import DEFAULT_API, ApiError, BloodbankClient, can_refresh_token, token_from_env

API = os.environ.get("BLOODBANK_API", DEFAULT_API)
QUERY = """
query Page($nextToken: String) {
  listDonors(limit: 100, nextToken: $nextToken) { items { bloodGroup } nextToken }
}
"""


def main() -> int:
    counts: collections.Counter[str] = collections.Counter()
    tokens = token_from_env("staff")
    try:
        with BloodbankClient(
            API,
            tokens(),
            token_provider=tokens if can_refresh_token() else None,
            log=lambda line: print(line, file=sys.stderr),
        ) as client:
            next_token = None
            while True:
                page = client.execute(QUERY, {"nextToken": next_token})["listDonors"]
                counts.update(d["bloodGroup"] or "UNTYPED" for d in page["items"])
                next_token = page["nextToken"]
                if next_token is None:
                    break
    except ApiError as error:
        print(error, file=sys.stderr)
        if error.code == "UNAUTHENTICATED":
            print("Sign in again: TOKEN must be a current Cognito access token", file=sys.stderr)
            return 3
        return 5 if error.retryable else 1
    for group, count in sorted(counts.items()):
        print(f"{group:8} {count}")
    print(f"{'total':8} {sum(counts.values())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
