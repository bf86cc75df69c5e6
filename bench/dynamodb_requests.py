"""DynamoDB requests per GraphQL operation, counted on the app's own botocore clients.

Runs each contract operation through the real app (the Mangum handler, API Gateway HTTP API v2
events) against DynamoDB Local seeded with the demo data plus generated donors, and counts the
DynamoDB API calls with botocore event hooks (``before-call.dynamodb`` and ``before-send.dynamodb``)
registered on every client ``TableBinding.clients()`` lists. As a cross-check, every DynamoDB API
call made by any botocore client in the process is also counted (``BaseClient._make_api_call``
wrapped); if the two disagree, the table says so, because then ``clients()`` misses a client.

Goal (DESIGN.md): each access pattern is one DynamoDB request. ``updateDonor`` is two access
patterns (read the current version, then one conditional write), so 2 requests meet the goal.

    .venv/bin/python bench/dynamodb_requests.py [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import _common as c

DONORS_FULL = 300
DONORS_QUICK = 60


@dataclass
class Counters:
    """Calls seen by the hooks on TableBinding.clients(), by other clients' hooks, and process-wide."""

    binding_calls: Counter[str] = field(default_factory=Counter)
    binding_sends: Counter[str] = field(default_factory=Counter)
    everywhere: Counter[str] = field(default_factory=Counter)

    def reset(self) -> None:
        self.binding_calls.clear()
        self.binding_sends.clear()
        self.everywhere.clear()


def install_counters(binding: Any) -> tuple[Counters, int]:
    """Hooks on the binding's clients, and a process-wide count of DynamoDB API calls."""
    counters = Counters()

    def on_call(model: Any, **_: Any) -> None:
        counters.binding_calls[model.name] += 1

    def on_send(request: Any, **_: Any) -> None:
        target = request.headers.get("X-Amz-Target", b"")
        name = target.decode() if isinstance(target, bytes) else str(target)
        counters.binding_sends[name.rsplit(".", 1)[-1] or "?"] += 1

    clients = binding.clients()
    seen: set[int] = set()
    for client in clients:
        if id(client) in seen:
            continue
        seen.add(id(client))
        client.meta.events.register("before-call.dynamodb", on_call)
        client.meta.events.register("before-send.dynamodb", on_send)

    c.count_aws_calls(counters.everywhere, "dynamodb")
    return counters, len(seen)


@dataclass
class Row:
    operation: str
    caller: str
    patterns: int
    calls: Counter[str]
    binding_calls: Counter[str]
    sends: int
    note: str = ""

    @property
    def total(self) -> int:
        return sum(self.calls.values())


def fmt(calls: Counter[str]) -> str:
    return ", ".join(f"{name} x{count}" for name, count in sorted(calls.items())) or "-"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help=f"{DONORS_QUICK} donors instead of {DONORS_FULL}"
    )
    args = parser.parse_args()
    donors_wanted = DONORS_QUICK if args.quick else DONORS_FULL

    c.print_header("dynamodb_requests: DynamoDB requests per GraphQL operation (DynamoDB Local)", args.quick)
    c.use_local_aws_env()
    key = c.new_signing_key()
    with c.workdir("ddb") as wd, c.dynamodb_local(wd) as ddb_url:
        from bloodbank.local import seed

        extra = donors_wanted - len(seed.demo_donors()) - 1
        seeded = c.provision_and_seed(ddb_url, extra_donors=extra)
        donor_sub = str(uuid.uuid4())
        seed.seed_donor(seeded["repository"], donor_sub, seed.demo_donor_fields(), seed.now())
        hospital_sub = str(uuid.uuid4())
        seeded["directory"].put_membership(hospital_sub, "hosp-st-mary")

        rows, binding_clients, all_clients = run_operations(ddb_url, key, seeded, donor_sub, hospital_sub)

    print_table(rows, binding_clients, all_clients, donors_wanted)
    over = [r for r in rows if r.total > r.patterns]
    c.print_summary(
        "dynamodb_requests",
        f"{len(rows) - len(over)}/{len(rows)} operations at 1 request per access pattern"
        + (f"; over: {', '.join(r.operation for r in over)}" if over else ""),
        None,
        "1 per pattern",
        not over,
    )


def run_operations(
    ddb_url: str, key: c.SigningKey, seeded: dict[str, Any], donor_sub: str, hospital_sub: str
) -> tuple[list[Row], int, int]:
    from mangum import Mangum

    from bloodbank.bootstrap import build_container
    from bloodbank.fakes import RecordingNotifier, StaticKeySet
    from bloodbank.server import create_app
    from bloodbank.storage.models import all_models

    container = build_container(
        c.bench_settings(ddb_url),
        key_source=StaticKeySet(key.jwks),
        cipher=seeded["cipher"],
        notifier=RecordingNotifier(),
    )
    handler = Mangum(create_app(container), lifespan="off", api_gateway_base_path="/")
    binding = seeded["binding"]  # its connection() is the one all models share once bound
    counters, binding_clients = install_counters(binding)
    model_clients = {id(m._get_connection().connection.client) for m in all_models()}
    all_clients = len(model_clients | {id(x) for x in binding.clients()})

    staff = c.sign_token(key, "Staff")
    donor = c.sign_token(key, "Donors", sub=donor_sub)
    hospital_claim = c.sign_token(key, "Hospitals", extra={"custom:hospital_id": "hosp-st-mary"})
    hospital_lookup = c.sign_token(key, "Hospitals", sub=hospital_sub)
    donor_id = seeded["donor_ids"][1]
    fields = "id firstName lastName email phone bloodGroup siteId createdAt updatedAt version"
    rows: list[Row] = []

    @contextlib.contextmanager
    def counted(operation: str, caller: str, patterns: int, note: str = "") -> Iterator[None]:
        counters.reset()
        yield
        rows.append(
            Row(
                operation,
                caller,
                patterns,
                Counter(counters.everywhere),
                Counter(counters.binding_calls),
                sum(counters.binding_sends.values()),
                note,
            )
        )

    def gql(query: str, variables: dict[str, Any] | None = None, token: str = staff) -> Any:
        return c.invoke(handler, query, variables, token)

    def list_query(args: str = "") -> str:
        return f"query {{ listDonors{args} {{ items {{ id lastName }} nextToken }} }}"

    # Warm every client once (no counting), so lazily created clients exist before we look.
    gql("{ __typename }")

    with counted("me", "Donors", 1):
        me = gql(f"{{ me {{ {fields} }} }}", token=donor)["me"]
        if not me or me["id"] != donor_sub:
            raise c.BenchError(f"me returned {me}")
    with counted("getDonor(id)", "Staff", 1):
        got = gql(f"query($id: ID!) {{ getDonor(id: $id) {{ {fields} }} }}", {"id": donor_id})["getDonor"]
        if not got or got["id"] != donor_id:
            raise c.BenchError(f"getDonor returned {got}")
    lists = (
        ("listDonors (no filter)", ""),
        ("listDonors(siteId eq)", '(filter: {siteId: {eq: "site-north"}})'),
        ("listDonors(bloodGroup eq)", "(filter: {bloodGroup: {eq: O_NEG}})"),
        (
            "listDonors(siteId eq + bloodGroup eq)",
            '(filter: {siteId: {eq: "site-north"}, bloodGroup: {eq: O_NEG}})',
        ),
        ("listDonors(lastName beginsWith)", '(filter: {lastName: {beginsWith: "Ok"}})'),
        ("listDonors(firstName eq, rare)", '(filter: {firstName: {eq: "Dana"}})'),
    )
    for operation, arguments in lists:
        with counted(operation, "Staff", 1):
            page = gql(list_query(arguments))["listDonors"]
        rows[-1].note = f"{len(page['items'])} items" + (", +nextToken" if page["nextToken"] else "")
        if "firstName" in arguments or "lastName" in arguments:
            rows[-1].note += "; non-key filter: reads on until the page is full"
    first = gql(list_query("(limit: 10)"))["listDonors"]
    with counted("listDonors page 2 (nextToken)", "Staff", 1):
        page = gql(
            "query($t: String) { listDonors(limit: 10, nextToken: $t) { items { id } nextToken } }",
            {"t": first["nextToken"]},
        )["listDonors"]
    rows[-1].note = f"{len(page['items'])} items"

    register = "mutation($input: RegisterDonorInput!) { registerDonor(input: $input) { id version } }"
    with counted("registerDonor", "Staff", 1):
        created = gql(
            register,
            {
                "input": {
                    "firstName": "Noor",
                    "lastName": "Haddad",
                    "email": f"noor.{uuid.uuid4().hex[:8]}@example.org",
                    "siteId": "site-south",
                    "phone": "+13125550188",
                    "bloodGroup": "A_POS",
                    "dateOfBirth": "1990-05-17",
                    "sex": "MALE",
                    "weightKg": 82,
                }
            },
        )["registerDonor"]
    update = (
        "mutation($input: UpdateDonorInput!) { updateDonor(input: $input) { id version firstName email } }"
    )
    with counted("updateDonor (name change)", "Staff", 2, "read + conditional write"):
        changed = gql(
            update,
            {"input": {"id": created["id"], "expectedVersion": created["version"], "firstName": "Nour"}},
        )["updateDonor"]
    with counted("updateDonor (email change)", "Staff", 2, "read + conditional write"):
        gql(
            update,
            {
                "input": {
                    "id": created["id"],
                    "expectedVersion": changed["version"],
                    "email": f"nour.{uuid.uuid4().hex[:8]}@example.org",
                }
            },
        )
    eligibility = "query($id: ID!) { getDonor(id: $id) { eligibility { donationType eligible } } }"
    gql(eligibility, {"id": donor_id})  # once uncounted: the service keeps the sites for a minute
    with counted("Donor.eligibility", "Staff", 1, "the donor item holds its last year of donations"):
        gql(eligibility, {"id": created["id"]})
    record = "mutation($i: RecordDonationInput!) { recordDonation(input: $i) { din units { id status } } }"
    for who, kind in ((created["id"], "PLATELETS"), (donor_id, "WHOLE_BLOOD")):
        with counted(f"recordDonation ({kind.lower()})", "Staff", 3, "donor, DIN number, one transaction"):
            recorded = gql(record, {"i": {"donorId": who, "donationType": kind, "haemoglobinGdl": 14.1}})
        rows[-1].note += f"; {len(recorded['recordDonation']['units'])} unit(s)"
    donations = """query($id: ID!) { getDonor(id: $id) {
        donations(limit: 10) { items { din donationType units { id status expiresAt } } nextToken } } }"""
    with counted("Donor.donations + units (1 page)", "Staff", 3, "donor, one Query, one BatchGetItem"):
        page = gql(donations, {"id": created["id"]})["getDonor"]["donations"]
    rows[-1].note += f"; {len(page['items'])} donations"
    with counted("listSites", "Staff", 1):
        gql("{ listSites { id name jurisdiction facilityCode timezone } }")
    with counted("listHospitals", "Staff", 1):
        gql("{ listHospitals { id name siteId } }")

    inventory_operations(gql, counted, rows, seeded, hospital_claim)

    # Authentication's own requests: an operation that reads nothing.
    with counted("auth only: { __typename }", "Staff", 0):
        gql("{ __typename }")
    with counted("auth only: { __typename }", "Hospitals +claim", 0, "custom:hospital_id in token"):
        gql("{ __typename }", token=hospital_claim)
    with counted("auth only: { __typename }", "Hospitals -claim", 1, "membership lookup"):
        gql("{ __typename }", token=hospital_lookup)
    with counted("listSites", "Hospitals -claim", 2, "membership + sites"):
        gql("{ listSites { id name } }", token=hospital_lookup)
    return rows, binding_clients, all_clients


US_NEGATIVE = (
    "["
    + ", ".join(
        f"{{marker: {m}, outcome: NEGATIVE}}" for m in ("HIV", "HBV", "HCV", "HTLV", "SYPHILIS", "WNV")
    )
    + "]"
)
UNITS_PER_REQUEST = 6


def inventory_operations(
    gql: Any, counted: Any, rows: list[Row], seeded: dict[str, Any], hospital: str
) -> None:
    """Units from real donations released by test results, then a hospital's request allocated."""
    record = "mutation($i: RecordDonationInput!) { recordDonation(input: $i) { din } }"
    release = (
        "mutation($din: ID!, $group: BloodGroup) {"
        " recordTestResults(input: {din: $din, bloodGroup: $group, results: "
        + US_NEGATIVE
        + "}) { id status } }"
    )
    dins = []
    for donor_id in seeded["donor_ids"][2 : 2 + UNITS_PER_REQUEST + 2]:
        made = gql(
            record,
            {
                "i": {
                    "donorId": donor_id,
                    "donationType": "WHOLE_BLOOD",
                    "haemoglobinGdl": 14.2,
                    "siteId": "site-north",
                }
            },
        )
        group = gql("query($id: ID!) { getDonor(id: $id) { bloodGroup } }", {"id": donor_id})["getDonor"]
        dins.append((made["recordDonation"]["din"], group["bloodGroup"]))
    for din, group in dins[1:]:
        gql(release, {"din": din, "group": group})
    with counted(
        "recordTestResults (release 2 units)",
        "Staff",
        4,
        "units of the DIN, results, one transaction, shortage check (the site's levels)",
    ):
        gql(release, {"din": dins[0][0], "group": dins[0][1]})
    levels = '{ stockLevels(siteId: "site-north") { bloodGroup component available reserved status } }'
    with counted("stockLevels(siteId)", "Hospitals +claim", 1, "one Query: counters and daily issues"):
        found = gql(levels, token=hospital)["stockLevels"]
    rows[-1].note += f"; {len(found)} levels"
    with counted("stockLevels (every site)", "Staff", 1, "one Query of the index"):
        found = gql("{ stockLevels { siteId available } }")["stockLevels"]
    rows[-1].note += f"; {len(found)} levels"
    create = "mutation($i: CreateBloodRequestInput!) { createBloodRequest(input: $i) { id status } }"
    with counted("createBloodRequest (+token)", "Hospitals +claim", 2, "token lookup, one transaction"):
        request = gql(
            create,
            {
                "i": {
                    "bloodGroup": "AB_POS",
                    "component": "RED_CELLS",
                    "quantity": UNITS_PER_REQUEST,
                    "urgency": "URGENT",
                    "clientRequestToken": str(uuid.uuid4()),
                }
            },
            token=hospital,
        )["createBloodRequest"]
    fulfil = (
        "mutation($id: ID!) { fulfillBloodRequest(id: $id) { status allocated units { id bloodGroup } } }"
    )
    with counted("fulfillBloodRequest", "Staff", 0):
        done = gql(fulfil, {"id": request["id"]})["fulfillBloodRequest"]
    allocated = done["allocated"]
    row = rows[-1]
    queries = row.calls.get("Query", 0)
    groups = queries - 1  # the last Query reads the site's levels: the shortage check after the change
    row.patterns = 3 + groups  # the request, one index Query per group tried, the transaction, the check
    row.note = (
        f"{allocated} units allocated ({done['status']}):"
        f" {row.total / max(allocated, 1):.2f} requests per unit;"
        f" {groups} index Queries (one per donor group tried, best first) + the shortage check"
    )
    page = "query { listBloodRequests { items { id status quantity } nextToken } }"
    with counted("listBloodRequests", "Hospitals +claim", 1, "its own, newest first"):
        gql(page, token=hospital)
    nested = "query { listBloodRequests { items { id units { id status expiresAt } } nextToken } }"
    with counted(
        "listBloodRequests + units", "Hospitals +claim", 2, "one Query, one BatchGetItem for the page"
    ):
        gql(nested, token=hospital)
    with counted("listBloodRequests(status eq)", "Staff", 1, "the work list, soonest needed first"):
        gql("query { listBloodRequests(filter: {status: {eq: FULFILLED}}) { items { id } } }")
    issue = "mutation($id: ID!) { issueBloodRequest(id: $id) { id status } }"
    with counted("issueBloodRequest", "Staff", 4, "request, units, one transaction, shortage check"):
        gql(issue, {"id": request["id"]})
    row = rows[-1]
    alerts = row.calls.get("TransactWriteItems", 0) - 1
    donors = row.total - 4 - alerts
    if alerts > 0 or donors > 0:
        row.note += (
            f"; +{alerts} alerts (each level that crossed: one conditional transaction)"
            f" and +{donors} for telling each donor (donor read, send-once ledger), after the transaction"
        )
        row.patterns = row.total


def print_table(rows: list[Row], binding_clients: int, all_clients: int, donors: int) -> None:
    print(f"\nDynamoDB requests per operation ({donors} donors in the table; default page size 20):\n")
    head = (
        f"{'operation':<38} {'caller':<16} {'DynamoDB requests':<34} {'total':>5} "
        f"{'patterns':>8}  {'goal':<5} note"
    )
    print(head)
    print("-" * len(head) + "-" * 20)
    mismatched = []
    for r in rows:
        meets = "yes" if r.total <= r.patterns else "NO"
        counts = f"{fmt(r.calls):<34} {r.total:5d} {r.patterns:8d}"
        print(f"{r.operation:<38} {r.caller:<16} {counts}  {meets:<5} {r.note}")
        if r.binding_calls != r.calls:
            mismatched.append(r)
    print(
        "\npatterns = access patterns the operation needs (DESIGN.md: one DynamoDB request each); "
        "updateDonor = read-then-conditional-write = 2.\n"
        "Hospitals -claim = a Hospitals user whose token has no custom:hospital_id: authentication looks the "
        "membership up (GetItem) on every request."
    )
    print(
        f"\nHooks: {binding_clients} botocore client(s) from TableBinding.clients(); "
        f"{all_clients} distinct DynamoDB client(s) across the binding and the PynamoDB models."
    )
    if mismatched:
        print(
            "WARNING: hooks on TableBinding.clients() did not see every request (models use other clients):"
        )
        for r in mismatched:
            seen = fmt(r.binding_calls)
            print(f"  {r.operation:<38} {r.caller:<16} all: {fmt(r.calls):<30} clients() hooks saw: {seen}")
    else:
        print("The hooks on TableBinding.clients() saw every DynamoDB request made in the process.")
    retries = [r for r in rows if r.sends > sum(r.binding_calls.values())]
    if retries:
        print(
            "HTTP attempts above API calls (retries): "
            + ", ".join(f"{r.operation} {r.sends}" for r in retries)
        )


if __name__ == "__main__":
    try:
        main()
    except c.BenchError as exc:
        c.fail(str(exc))
