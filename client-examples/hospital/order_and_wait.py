"""A hospital integration: order blood units, then wait until the blood service has sent them.

    .venv/bin/python client-examples/hospital/order_and_wait.py --blood-group O_POS \\
        --component RED_CELLS --quantity 2 --urgency URGENT --key-file /var/lib/orders/ward-7.key

1. Orders with ``createBloodRequest``, carrying an idempotency key (``clientRequestToken``). The key is
   fixed before the first attempt (``--key``, or kept in ``--key-file``, or a new UUID that is logged),
   and every retry sends the same key: a retry after a timeout or a dropped connection, or a re-run of
   the whole job with the same ``--key-file``, gets the same request back and never orders twice. The
   same key with other arguments is refused (CONFLICT).
2. Waits for the request's progress by polling ``getBloodRequest`` (the schema has no subscription for
   request updates; ``onShortageAlert`` is about stock): exponential backoff from ``--poll`` to
   ``--max-poll`` seconds with jitter, back to ``--poll`` after each change, until ``--deadline``.
   Prints one line per change: PENDING, PARTIALLY_FULFILLED / FULFILLED as staff reserve units, then
   the units leaving as staff issue them (the status stays FULFILLED; each unit becomes ISSUED).
3. Done at ``--until issued`` (default: every unit ordered was issued) or ``--until fulfilled`` (every
   unit reserved).

Log lines carry the request id, statuses, counts and unit DINs only: no token, no personal data, no
free text (a cancellation's reason is not printed). Settings: BLOODBANK_API (default
http://127.0.0.1:8000/graphql), and how to sign in, the first that is set:

- CLIENT_ID and CLIENT_SECRET (and TOKEN_URL, default ``bloodbank serve``'s
  http://127.0.0.1:8000/oauth2/token; SCOPE, default ``bloodbank/hospital``): the hospital's own app
  client, by the OAuth client-credentials grant (no person, no password). The token is kept and
  renewed shortly before it expires, and once more if the API refuses it; the secret and the tokens
  are never printed. ``bloodbank hospital-client create`` makes such a client (locally, the demo
  client's id and secret are in ``.local/hospital-client.json``);
- TOKEN (a Cognito access token of the hospital's integration user), or TOKEN_COMMAND (a command that
  prints one; run again when the token expires);
- else the local stack's demo hospital user (``bloodbank token --as hospital``).

BLOODBANK_TIMEOUT: seconds per HTTP request.

Exit codes: 0 done; 1 the API refused the order (BAD_USER_INPUT, FORBIDDEN, CONFLICT, NOT_FOUND) or
the key file is unusable; 2 bad arguments; 3 not signed in or the token expired (UNAUTHENTICATED); 4
the deadline passed first (the order stands: run again with the same key to keep waiting); 5 the API
could not be reached (after retries); 6 the request was cancelled.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))  # bloodbank_client.py

from bloodbank_client import (
    DEFAULT_API,
    ApiError,
    BloodbankClient,
    ClientCredentials,
    can_refresh_token,
    token_from_env,
)

FIELDS = "id status quantity allocated outstanding siteId neededBy units { id status }"
ORDER = f"""mutation Order($input: CreateBloodRequestInput!) {{
  createBloodRequest(input: $input) {{ {FIELDS} }}
}}"""
READ = f"query Read($id: ID!) {{ getBloodRequest(id: $id) {{ {FIELDS} }} }}"

DONE, REFUSED, UNAUTHENTICATED, DEADLINE, UNREACHABLE, CANCELLED = 0, 1, 3, 4, 5, 6  # 2: bad arguments
GROUPS = ["O_NEG", "O_POS", "A_NEG", "A_POS", "B_NEG", "B_POS", "AB_NEG", "AB_POS"]
COMPONENTS = ["WHOLE_BLOOD", "RED_CELLS", "PLATELETS", "PLASMA", "CRYO"]
URGENCIES = ["ROUTINE", "URGENT", "EMERGENCY"]
SENT = {"ISSUED", "TRANSFUSED"}


def log(event: str, **fields: object) -> None:
    """One line: UTC time, event, key=value pairs (what a night-time job's log needs, nothing more)."""
    at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    pairs = " ".join(f"{k}={v}" for k, v in fields.items())
    print(f"{at} {event} {pairs}".rstrip(), flush=True)


def warn(message: str) -> None:
    at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    print(f"{at} {message}", file=sys.stderr, flush=True)


def idempotency_key(args: argparse.Namespace) -> str:
    """The order's key, fixed before the first attempt; kept in --key-file so a re-run reuses it."""
    if args.key:
        return str(args.key)
    if args.key_file is None:
        return str(uuid.uuid4())
    path = Path(args.key_file)
    if path.exists() and path.read_text().strip():
        return path.read_text().strip()
    key = str(uuid.uuid4())
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".tmp")
    partial.write_text(key + "\n")
    partial.replace(path)  # written in full or not at all, before the order goes out
    return key


def progress(request: dict[str, Any]) -> tuple[str, int, int]:
    issued = sum(1 for unit in request["units"] if unit["status"] in SENT)
    return request["status"], int(request["allocated"]), issued


def show(event: str, request: dict[str, Any]) -> None:
    status, allocated, issued = progress(request)
    log(
        event,
        request=request["id"],
        status=status,
        reserved=f"{allocated - issued}",
        issued=f"{issued}/{request['quantity']}",
        outstanding=request["outstanding"],
    )


def finished(request: dict[str, Any], until: str) -> bool:
    status, _, issued = progress(request)
    if until == "fulfilled":
        return status == "FULFILLED"
    return status == "FULFILLED" and issued >= int(request["quantity"])


def wait(client: BloodbankClient, request: dict[str, Any], args: argparse.Namespace) -> int:
    deadline = time.monotonic() + args.deadline
    jitter = random.SystemRandom()
    seen = progress(request)
    interval = args.poll
    while True:
        if request["status"] == "CANCELLED":
            log("cancelled", request=request["id"], issued=progress(request)[2])
            return CANCELLED
        if finished(request, args.until):
            units = ",".join(
                u["id"] for u in request["units"] if args.until == "fulfilled" or u["status"] in SENT
            )
            log("done", request=request["id"], status=request["status"], until=args.until, units=units)
            return DONE
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            log("deadline", request=request["id"], status=request["status"], key=args.resolved_key)
            return DEADLINE
        time.sleep(min(remaining, jitter.uniform(interval / 2, interval)))
        try:
            found = client.execute(READ, {"id": request["id"]})["getBloodRequest"]
        except ApiError as error:
            if not error.retryable:
                raise
            warn(f"poll failed ({error.code}); still waiting")  # the API is briefly unavailable
            interval = min(args.max_poll, interval * 2)
            continue
        if found is None:
            raise ApiError("NOT_FOUND", f"request {request['id']} is not visible to this hospital")
        request = found
        if progress(request) != seen:
            seen = progress(request)
            show("status", request)
            interval = args.poll
        else:
            interval = min(args.max_poll, interval * 1.5)


def order(client: BloodbankClient, args: argparse.Namespace) -> dict[str, Any]:
    order_input: dict[str, Any] = {
        "bloodGroup": args.blood_group,
        "component": args.component,
        "quantity": args.quantity,
        "urgency": args.urgency,
        "clientRequestToken": args.resolved_key,
    }
    if args.needed_by:
        order_input["neededBy"] = args.needed_by
    log(
        "ordering",
        key=args.resolved_key,
        bloodGroup=args.blood_group,
        component=args.component,
        quantity=args.quantity,
        urgency=args.urgency,
    )
    # The key makes the mutation safe to send again: the client retries it on a timeout, a dropped
    # connection, throttling or a 5xx with the very same body, so the API applies it at most once.
    created: dict[str, Any] = client.execute(ORDER, {"input": order_input}, retry_mutation=True)[
        "createBloodRequest"
    ]
    return created


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Order blood units and wait until they are sent.")
    parser.add_argument("--blood-group", required=True, choices=GROUPS, help="the patient's group")
    parser.add_argument("--component", required=True, choices=COMPONENTS)
    parser.add_argument("--quantity", required=True, type=int, help="1-40 units")
    parser.add_argument("--urgency", default="ROUTINE", choices=URGENCIES)
    parser.add_argument("--needed-by", help="ISO 8601 date-time (default now)")
    keys = parser.add_mutually_exclusive_group()
    keys.add_argument("--key", type=uuid.UUID, help="the order's idempotency key (a UUID)")
    keys.add_argument("--key-file", help="keep the key here: made once, reused by every re-run")
    parser.add_argument("--until", choices=["issued", "fulfilled"], default="issued")
    parser.add_argument("--deadline", type=float, default=4 * 3600, help="seconds to wait (default 4 h)")
    parser.add_argument("--poll", type=float, default=5.0, help="first poll interval, seconds")
    parser.add_argument("--max-poll", type=float, default=60.0, help="longest poll interval, seconds")
    args = parser.parse_args(argv)
    if args.poll <= 0 or args.max_poll < args.poll:
        parser.error("need 0 < --poll <= --max-poll")
    return args


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    api = os.environ.get("BLOODBANK_API", DEFAULT_API)
    args.resolved_key = None
    try:
        tokens = token_from_env("hospital")
        args.resolved_key = idempotency_key(args)
        # Client credentials: the first request fetches the token (retried like any request).
        first = "" if isinstance(tokens, ClientCredentials) else tokens()
        with BloodbankClient(
            api, first, token_provider=tokens if can_refresh_token() else None, log=warn
        ) as client:
            request = order(client, args)
            show("ordered", request)
            return wait(client, request, args)
    except ApiError as error:
        warn(str(error))
        if error.code == "UNAUTHENTICATED":
            warn(
                "The API refused the token (expired, or not a Cognito access token of the hospital"
                " integration or of an app client registered to the hospital): fix CLIENT_ID /"
                " CLIENT_SECRET / TOKEN_URL (or get a new TOKEN, or set TOKEN_COMMAND) and run again"
                f" with --key {args.resolved_key} (or the same --key-file): the order will not be"
                " placed twice."
            )
            return UNAUTHENTICATED
        if error.code in {"BAD_USER_INPUT", "FORBIDDEN", "CONFLICT", "NOT_FOUND"}:
            return REFUSED
        return UNREACHABLE
    except OSError as error:  # the key file
        warn(f"cannot use the key file: {error.strerror}")
        return REFUSED
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
