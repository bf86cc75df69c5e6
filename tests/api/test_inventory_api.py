"""Inventory through GraphQL: hospital requests and who sees them, FEFO allocation of compatible
units, issue and cancellation, stock levels and thresholds, test results, the ledger, and refusals
that write nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from graphql import (
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    build_schema,
    get_named_type,
)

from bloodbank.domain.blood import BloodGroup, Component
from bloodbank.domain.donations import BloodUnit, UnitStatus
from bloodbank.fakes import FixedClock
from tests.conftest import Api, World, error_codes

NOW = FixedClock().now  # the world's clock starts here: 2026-11-22T09:00:00Z
SDL = Path(__file__).resolve().parents[2] / "schema" / "schema.graphql"
_CODES = {
    Component.WHOLE_BLOOD: "WB",
    Component.RED_CELLS: "RC",
    Component.PLATELETS: "PLT",
    Component.PLASMA: "FP",
    Component.CRYO: "CRYO",
}

UNIT_FIELDS = "id din bloodGroup component status siteId expiresAt requestId version"
REQUEST_FIELDS = f"""id hospitalId siteId bloodGroup component quantity urgency neededBy status
  createdAt updatedAt version cancelReason allocated outstanding
  hospital {{ id name siteId }}
  units {{ {UNIT_FIELDS} }}"""
CREATE = f"""mutation($input: CreateBloodRequestInput!) {{
  createBloodRequest(input: $input) {{ {REQUEST_FIELDS} }}
}}"""
GET_REQUEST = f"query($id: ID!) {{ getBloodRequest(id: $id) {{ {REQUEST_FIELDS} }} }}"
LIST_REQUESTS = """query($filter: BloodRequestFilterInput, $limit: Int, $next: String) {
  listBloodRequests(filter: $filter, limit: $limit, nextToken: $next) {
    items { id hospitalId status quantity allocated outstanding units { id status } }
    nextToken
  }
}"""
FULFIL = f"""mutation($id: ID!, $token: String) {{
  fulfillBloodRequest(id: $id, clientRequestToken: $token) {{ {REQUEST_FIELDS} }}
}}"""
ISSUE = f"""mutation($id: ID!, $token: String) {{
  issueBloodRequest(id: $id, clientRequestToken: $token) {{ {REQUEST_FIELDS} }}
}}"""
CANCEL = f"""mutation($id: ID!, $reason: String, $token: String) {{
  cancelBloodRequest(id: $id, reason: $reason, clientRequestToken: $token) {{ {REQUEST_FIELDS} }}
}}"""
CONFIRM = f"""mutation($input: ConfirmTransfusionInput!) {{
  confirmTransfusion(input: $input) {{ {UNIT_FIELDS} }}
}}"""
DISCARD = f"""mutation($input: DiscardUnitInput!) {{ discardUnit(input: $input) {{ {UNIT_FIELDS} }} }}"""
TRANSFER = f"""mutation($input: TransferUnitsInput!) {{ transferUnits(input: $input) {{ {UNIT_FIELDS} }} }}"""
RETURN = f"""mutation($input: ReturnUnitInput!) {{ returnUnit(input: $input) {{ {UNIT_FIELDS} }} }}"""
TESTS = f"""mutation($input: RecordTestResultsInput!) {{
  recordTestResults(input: $input) {{ {UNIT_FIELDS} }}
}}"""
GET_UNIT = f"query($din: ID!) {{ getUnit(din: $din) {{ {UNIT_FIELDS} }} }}"
HISTORY = """query($din: ID!) {
  getUnit(din: $din) {
    id status version
    history { version at by fromStatus toStatus why siteId toSiteId requestId wastage }
  }
}"""
LIST_UNITS = f"""query($filter: UnitFilterInput, $limit: Int, $next: String) {{
  listUnits(filter: $filter, limit: $limit, nextToken: $next) {{ items {{ {UNIT_FIELDS} }} nextToken }}
}}"""
LEVEL_FIELDS = """siteId bloodGroup component available reserved threshold daysOfSupply status
  issuedInWindow amberDays redDays windowDays issuedPerDay"""
STOCK = f"""query($siteId: ID, $bloodGroup: BloodGroup, $component: Component) {{
  stockLevels(siteId: $siteId, bloodGroup: $bloodGroup, component: $component) {{ {LEVEL_FIELDS} }}
}}"""
THRESHOLD = f"""mutation($input: SetStockThresholdInput!) {{
  setStockThreshold(input: $input) {{ {LEVEL_FIELDS} }}
}}"""
US_MARKERS = ("HIV", "HBV", "HCV", "HTLV", "SYPHILIS", "WNV")


# --- arranging ------------------------------------------------------------------------------------
def unit(
    n: int,
    group: str | None = "O_NEG",
    component: Component = Component.RED_CELLS,
    status: UnitStatus = UnitStatus.AVAILABLE,
    site: str = "site-north",
    expires_in_days: float = 10,
    din: str | None = None,
) -> BloodUnit:
    din = din or f"W12342600{n:04d}X"
    return BloodUnit(
        id=f"{din}-{_CODES[component]}",
        din=din,
        component=component,
        blood_group=BloodGroup(group) if group else None,
        status=status,
        site_id=site,
        donor_id=f"donor-secret-{n}",
        collected_at=NOW - timedelta(days=2),
        expires_at=NOW + timedelta(days=expires_in_days),
    )


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def hospital(api: Api) -> str:
    """A user of St Mary's (through the directory's membership record)."""
    return api.tokens("Hospitals", sub="hospital-user")


def riverside(api: Api) -> str:
    """A user of another hospital (through the token's custom:hospital_id claim)."""
    return api.tokens("Hospitals", sub="riverside-user", extra={"custom:hospital_id": "hosp-riverside"})


def staff(api: Api) -> str:
    return api.tokens("Staff", sub="tech-1")


def admin(api: Api) -> str:
    return api.tokens("Admins", sub="admin-1")


def ok(body: dict[str, Any], field: str) -> Any:
    assert "errors" not in body, body
    return body["data"][field]


def create(api: Api, token: str | None = None, **values: Any) -> dict[str, Any]:
    payload = {"bloodGroup": "O_NEG", "component": "RED_CELLS", "quantity": 2, **values}
    return api.gql(CREATE, {"input": payload}, token=token or hospital(api))


def create_ok(api: Api, token: str | None = None, **values: Any) -> dict[str, Any]:
    return ok(create(api, token, **values), "createBloodRequest")  # type: ignore[no-any-return]


def fulfil(api: Api, request_id: str, token: str | None = None) -> dict[str, Any]:
    return api.gql(FULFIL, {"id": request_id, "token": token}, token=staff(api))


def level(api: Api, site: str, group: str, component: str, token: str | None = None) -> dict[str, Any]:
    body = api.gql(
        STOCK, {"siteId": site, "bloodGroup": group, "component": component}, token=token or staff(api)
    )
    [found] = ok(body, "stockLevels")
    return found  # type: ignore[no-any-return]


def the_error(body: dict[str, Any]) -> dict[str, Any]:
    [error] = body["errors"]
    return error  # type: ignore[no-any-return]


def fields_of(body: dict[str, Any]) -> set[str]:
    return {f["field"] for f in the_error(body)["extensions"].get("fields", [])}


def snapshot(world: World) -> tuple[Any, ...]:
    """Everything the inventory holds, to prove a refused call wrote nothing."""
    inv = world.inventory
    return (
        dict(inv.unit_map),
        {k: list(v) for k, v in inv.ledgers.items()},
        {k: dict(v) for k, v in inv.counters.items()},
        dict(inv.issued),
        dict(inv.thresholds),
        dict(inv.requests_by_id),
        dict(inv.test_records),
        dict(inv.tokens),
    )


# --- hospital scoping -----------------------------------------------------------------------------
def test_a_hospital_orders_for_itself_and_only_it_sees_the_request(api: Api, world: World) -> None:
    world.inventory.add_units([unit(1), unit(2)])
    created = create_ok(api, quantity=2, urgency="URGENT", neededBy=iso(NOW + timedelta(hours=6)))
    assert (created["hospitalId"], created["siteId"], created["status"]) == (
        "hosp-st-mary",
        "site-north",
        "PENDING",
    )
    assert created["hospital"] == {
        "id": "hosp-st-mary",
        "name": "St Mary's General Hospital",
        "siteId": "site-north",
    }
    assert (created["quantity"], created["urgency"], created["allocated"], created["outstanding"]) == (
        2,
        "URGENT",
        0,
        2,
    )
    assert created["neededBy"] == "2026-11-22T15:00:00.000Z"
    assert created["createdAt"] == created["updatedAt"] == "2026-11-22T09:00:00.000Z"
    assert created["units"] == []
    rid = created["id"]

    own = ok(api.gql(GET_REQUEST, {"id": rid}, token=hospital(api)), "getBloodRequest")
    assert own["id"] == rid
    assert own["status"] == "PENDING"
    listed = ok(api.gql(LIST_REQUESTS, token=hospital(api)), "listBloodRequests")
    assert [r["id"] for r in listed["items"]] == [rid]
    mine = ok(
        api.gql(LIST_REQUESTS, {"filter": {"hospitalId": {"eq": "hosp-st-mary"}}}, token=hospital(api)),
        "listBloodRequests",
    )
    assert [r["id"] for r in mine["items"]] == [rid]

    # Another hospital: the request does not exist for it.
    other = riverside(api)
    body = api.gql(GET_REQUEST, {"id": rid}, token=other)
    assert "errors" not in body, body
    assert body["data"]["getBloodRequest"] is None
    assert ok(api.gql(LIST_REQUESTS, token=other), "listBloodRequests") == {"items": [], "nextToken": None}
    assert error_codes(api.gql(CANCEL, {"id": rid}, token=other)) == ["NOT_FOUND"]
    peek = api.gql(LIST_REQUESTS, {"filter": {"hospitalId": {"eq": "hosp-st-mary"}}}, token=other)
    assert error_codes(peek) == ["FORBIDDEN"]
    assert error_codes(create(api, other, hospitalId="hosp-st-mary")) == ["FORBIDDEN"]

    # Staff fulfil and issue; only St Mary's may confirm the transfusion of its units.
    ok(fulfil(api, rid), "fulfillBloodRequest")
    issued = ok(api.gql(ISSUE, {"id": rid}, token=staff(api)), "issueBloodRequest")
    first = issued["units"][0]["id"]
    before = snapshot(world)
    refused = api.gql(CONFIRM, {"input": {"unitId": first}}, token=other)
    assert error_codes(refused) == ["NOT_FOUND"]
    assert error_codes(api.gql(CANCEL, {"id": rid}, token=other)) == ["NOT_FOUND"]
    assert snapshot(world) == before
    assert world.inventory.requests_by_id[rid].status.value == "FULFILLED"
    confirmed = ok(api.gql(CONFIRM, {"input": {"unitId": first}}, token=hospital(api)), "confirmTransfusion")
    assert (confirmed["id"], confirmed["status"]) == (first, "TRANSFUSED")
    # Still invisible to the other hospital after every change.
    assert api.gql(GET_REQUEST, {"id": rid}, token=other)["data"]["getBloodRequest"] is None


def test_a_hospital_user_without_a_hospital_sees_nothing(api: Api) -> None:
    stray = api.tokens("Hospitals", sub="unlinked-user")
    assert error_codes(create(api, stray)) == ["FORBIDDEN"]
    assert error_codes(api.gql(LIST_REQUESTS, token=stray)) == ["FORBIDDEN"]


def _type_ref(field: dict[str, Any]) -> str:
    ref = field["type"]
    while ref.get("ofType"):
        ref = ref["ofType"]
    return str(ref["name"])


def _reachable(start: list[str], fields_of_type: dict[str, dict[str, str]]) -> set[str]:
    seen: set[str] = set()
    todo = list(start)
    while todo:
        name = todo.pop()
        if name in seen or name not in fields_of_type:
            continue
        seen.add(name)
        todo.extend(fields_of_type[name].values())
    return seen


ROOTS = ["BloodRequest", "StockLevel", "BloodUnit"]
INTROSPECT = """{
  __schema {
    types {
      name kind
      fields { name type { kind name ofType { kind name ofType { kind name ofType { kind name } } } } }
    }
  }
}"""


def test_no_type_a_hospital_reaches_leads_to_donor_data_live_schema(api: Api) -> None:
    body = api.gql(INTROSPECT, token=hospital(api))
    types = ok(body, "__schema")["types"]
    object_fields = {
        t["name"]: {f["name"]: _type_ref(f) for f in t["fields"] or []}
        for t in types
        if t["kind"] in ("OBJECT", "INTERFACE") and not t["name"].startswith("__")
    }
    assert "Donor" in object_fields  # the walk would see it if it were reachable
    reachable = _reachable(ROOTS, object_fields)
    assert {"BloodRequest", "StockLevel", "BloodUnit", "Hospital", "UnitLedgerEntry"} <= reachable
    leaks = [
        f"{t}.{f}"
        for t in sorted(reachable)
        for f, target in object_fields[t].items()
        if target in ("Donor", "Donation", "DonorConnection") or f.lower() in ("donorid", "donor", "donors")
    ]
    assert leaks == []


def test_no_type_a_hospital_reaches_leads_to_donor_data_exported_sdl() -> None:
    sdl: GraphQLSchema = build_schema(SDL.read_text())
    object_fields: dict[str, dict[str, str]] = {}
    for name, gql_type in sdl.type_map.items():
        if isinstance(gql_type, GraphQLObjectType) and not name.startswith("__"):
            object_fields[name] = {f: get_named_type(d.type).name for f, d in gql_type.fields.items()}
    reachable = _reachable(ROOTS, object_fields)
    assert "Donor" not in reachable
    assert all("donorId" not in object_fields[t] for t in reachable)
    # The hospital-facing root fields return these types, and nothing else.
    query = sdl.query_type
    assert query is not None
    for name in ("getBloodRequest", "listBloodRequests", "stockLevels"):
        target = query.fields[name].type
        while isinstance(target, GraphQLNonNull | GraphQLList):
            target = target.of_type
        assert get_named_type(target).name in ("BloodRequest", "BloodRequestConnection", "StockLevel")


def test_a_hospital_is_forbidden_from_staff_fields(api: Api, world: World) -> None:
    world.inventory.add_units([unit(1), unit(2, status=UnitStatus.QUARANTINED, group=None)])
    rid = create_ok(api, quantity=1)["id"]
    token = hospital(api)
    before = snapshot(world)
    calls = {
        "fulfillBloodRequest": (FULFIL, {"id": rid}),
        "issueBloodRequest": (ISSUE, {"id": rid}),
        "recordTestResults": (
            TESTS,
            {"input": {"din": unit(2).din, "results": [{"marker": "HIV", "outcome": "NEGATIVE"}]}},
        ),
        "listUnits": (LIST_UNITS, {"filter": {"siteId": {"eq": "site-north"}}}),
        "getUnit": (GET_UNIT, {"din": unit(1).id}),
        "getDonor": ("query($id: ID!) { getDonor(id: $id) { id } }", {"id": "donor-secret-1"}),
        "discardUnit": (DISCARD, {"input": {"unitId": unit(1).id, "reason": "DAMAGED"}}),
        "transferUnits": (TRANSFER, {"input": {"unitIds": [unit(1).id], "toSiteId": "site-south"}}),
        "returnUnit": (RETURN, {"input": {"unitId": unit(1).id, "minutesOutOfStorage": 5}}),
        "setStockThreshold": (
            THRESHOLD,
            {
                "input": {
                    "siteId": "site-north",
                    "bloodGroup": "O_NEG",
                    "component": "RED_CELLS",
                    "parLevel": 3,
                }
            },
        ),
    }
    for name, (query, variables) in calls.items():
        assert error_codes(api.gql(query, variables, token=token)) == ["FORBIDDEN"], name
    assert snapshot(world) == before
    # Nor through a nested field: a request's units have no history for a hospital.
    ok(fulfil(api, rid), "fulfillBloodRequest")
    nested = api.gql(
        "query($id: ID!) { getBloodRequest(id: $id) { units { id history { by } } } }",
        {"id": rid},
        token=token,
    )
    assert error_codes(nested) == ["FORBIDDEN"]
    # What a hospital may read of its units.
    units = ok(
        api.gql(
            "query($id: ID!) { getBloodRequest(id: $id) { units { id status } } }", {"id": rid}, token=token
        ),
        "getBloodRequest",
    )["units"]
    assert units == [{"id": unit(1).id, "status": "RESERVED"}]


# --- allocation -----------------------------------------------------------------------------------
def test_staff_fulfil_first_expiry_first_out_with_compatible_units(api: Api, world: World) -> None:
    arranged = [
        unit(1, "A_POS", expires_in_days=10),
        unit(2, "A_POS", expires_in_days=5),
        unit(3, "A_NEG", expires_in_days=2),
        unit(4, "O_NEG", expires_in_days=1),
        unit(5, "B_POS", expires_in_days=1),  # incompatible
        unit(6, "AB_POS", expires_in_days=1),  # incompatible
        unit(7, "A_POS", expires_in_days=1, site="site-south"),  # another site's shelf
        unit(8, "A_POS", Component.PLASMA, expires_in_days=1),  # another component
        unit(9, "A_POS", status=UnitStatus.QUARANTINED, expires_in_days=1),  # untested
        unit(10, "A_POS", expires_in_days=-0.5),  # expired, not yet swept
    ]
    world.inventory.add_units(arranged)
    first = create_ok(api, bloodGroup="A_POS", quantity=3)
    done = ok(fulfil(api, first["id"]), "fulfillBloodRequest")
    assert (done["status"], done["allocated"], done["outstanding"]) == ("FULFILLED", 3, 0)
    # The patient's own group first, then A_NEG; within a group, first to expire first.
    assert [(u["id"], u["bloodGroup"], u["status"]) for u in done["units"]] == [
        (unit(2).id, "A_POS", "RESERVED"),
        (unit(1).id, "A_POS", "RESERVED"),
        (unit(3).id, "A_NEG", "RESERVED"),
    ]
    assert [u["expiresAt"] for u in done["units"]] == [
        iso(NOW + timedelta(days=5)),
        iso(NOW + timedelta(days=10)),
        iso(NOW + timedelta(days=2)),
    ]
    assert {u["requestId"] for u in done["units"]} == {first["id"]}

    # The next A_POS patient gets only the O_NEG unit left: never B, AB, another site, plasma,
    # a quarantined, an expired or a reserved unit.
    second = create_ok(api, bloodGroup="A_POS", quantity=2)
    partial = ok(fulfil(api, second["id"]), "fulfillBloodRequest")
    assert [(u["id"], u["bloodGroup"]) for u in partial["units"]] == [(unit(4).id, "O_NEG")]
    assert (partial["status"], partial["allocated"], partial["outstanding"]) == ("PARTIALLY_FULFILLED", 1, 1)
    for untouched in arranged[4:]:
        assert world.inventory.unit_map[untouched.id] == untouched


def test_plasma_follows_the_reverse_abo_rule(api: Api, world: World) -> None:
    o_pos, a_pos, ab_neg, ab_pos = (
        unit(1, "O_POS", Component.PLASMA, expires_in_days=30),
        unit(2, "A_POS", Component.PLASMA, expires_in_days=30),
        unit(3, "AB_NEG", Component.PLASMA, expires_in_days=60),
        unit(4, "AB_POS", Component.PLASMA, expires_in_days=90),
    )
    world.inventory.add_units([o_pos, a_pos, ab_neg, ab_pos])
    rid = create_ok(api, bloodGroup="AB_POS", component="PLASMA", quantity=3)["id"]
    done = ok(fulfil(api, rid), "fulfillBloodRequest")
    # An AB patient takes AB plasma only; identical group first even though it expires later.
    assert [u["id"] for u in done["units"]] == [ab_pos.id, ab_neg.id]
    assert (done["status"], done["outstanding"]) == ("PARTIALLY_FULFILLED", 1)
    # An O patient may take plasma of any group, O first.
    rid = create_ok(api, bloodGroup="O_NEG", component="PLASMA", quantity=2)["id"]
    done = ok(fulfil(api, rid), "fulfillBloodRequest")
    assert [u["id"] for u in done["units"]] == [o_pos.id, a_pos.id]


def test_partial_fulfilment_then_the_rest_then_issue(api: Api, world: World) -> None:
    world.inventory.add_units(
        [unit(1, expires_in_days=3), unit(2, expires_in_days=8), unit(3, "O_POS", expires_in_days=1)]
    )
    rid = create_ok(api, bloodGroup="O_NEG", quantity=3)["id"]
    partial = ok(fulfil(api, rid), "fulfillBloodRequest")
    assert (partial["status"], partial["allocated"], partial["outstanding"]) == ("PARTIALLY_FULFILLED", 2, 1)
    assert [u["id"] for u in partial["units"]] == [unit(1).id, unit(2).id]
    assert partial["version"] == 2
    # The hospital sees the progress of its own order.
    seen = ok(api.gql(GET_REQUEST, {"id": rid}, token=hospital(api)), "getBloodRequest")
    assert (seen["status"], seen["outstanding"]) == ("PARTIALLY_FULFILLED", 1)
    # Staff's work list by status.
    work = ok(
        api.gql(LIST_REQUESTS, {"filter": {"status": {"eq": "PARTIALLY_FULFILLED"}}}, token=staff(api)),
        "listBloodRequests",
    )
    assert [r["id"] for r in work["items"]] == [rid]

    world.inventory.add_units([unit(4, expires_in_days=20)])
    full = ok(fulfil(api, rid), "fulfillBloodRequest")
    assert (full["status"], full["allocated"], full["outstanding"]) == ("FULFILLED", 3, 0)
    assert [u["id"] for u in full["units"]] == [unit(1).id, unit(2).id, unit(4).id]
    again = ok(fulfil(api, rid), "fulfillBloodRequest")  # nothing left to do: unchanged
    assert (again["status"], again["version"]) == ("FULFILLED", full["version"])

    issued = ok(api.gql(ISSUE, {"id": rid}, token=staff(api)), "issueBloodRequest")
    assert [u["status"] for u in issued["units"]] == ["ISSUED", "ISSUED", "ISSUED"]
    assert issued["status"] == "FULFILLED"
    assert {u["requestId"] for u in issued["units"]} == {rid}
    assert world.inventory.unit_map[unit(3).id].status is UnitStatus.AVAILABLE  # O_POS never given

    before = snapshot(world)
    twice = api.gql(ISSUE, {"id": rid}, token=staff(api))
    assert error_codes(twice) == ["CONFLICT"]
    assert the_error(twice)["extensions"]["errorType"] == "IllegalTransition"
    late_cancel = api.gql(CANCEL, {"id": rid}, token=hospital(api))
    assert error_codes(late_cancel) == ["CONFLICT"]
    assert the_error(late_cancel)["extensions"]["errorType"] == "IllegalTransition"
    assert snapshot(world) == before


def test_cancel_releases_reserved_units(api: Api, world: World) -> None:
    world.inventory.add_units([unit(1), unit(2), unit(3)])
    rid = create_ok(api, quantity=2)["id"]
    ok(fulfil(api, rid), "fulfillBloodRequest")
    assert (
        level(api, "site-north", "O_NEG", "RED_CELLS")["available"],
        level(api, "site-north", "O_NEG", "RED_CELLS")["reserved"],
    ) == (1, 2)

    cancelled = ok(
        api.gql(CANCEL, {"id": rid, "reason": "patient transferred"}, token=hospital(api)),
        "cancelBloodRequest",
    )
    assert (cancelled["status"], cancelled["cancelReason"]) == ("CANCELLED", "patient transferred")
    assert (cancelled["allocated"], cancelled["outstanding"], cancelled["units"]) == (0, 0, [])
    for n in (1, 2):
        released = ok(api.gql(GET_UNIT, {"din": unit(n).id}, token=staff(api)), "getUnit")
        assert (released["status"], released["requestId"]) == ("AVAILABLE", None)
    stock = level(api, "site-north", "O_NEG", "RED_CELLS")
    assert (stock["available"], stock["reserved"]) == (3, 0)

    # Cancelling again changes nothing; a cancelled request cannot be fulfilled.
    again = ok(api.gql(CANCEL, {"id": rid}, token=staff(api)), "cancelBloodRequest")
    assert (again["status"], again["version"]) == ("CANCELLED", cancelled["version"])
    before = snapshot(world)
    refused = fulfil(api, rid)
    assert error_codes(refused) == ["CONFLICT"]
    assert the_error(refused)["extensions"]["errorType"] == "IllegalTransition"
    assert snapshot(world) == before


def test_discarding_a_reserved_unit_takes_it_out_of_its_request(api: Api, world: World) -> None:
    world.inventory.add_units([unit(1), unit(2)])
    rid = create_ok(api, quantity=2)["id"]
    ok(fulfil(api, rid), "fulfillBloodRequest")
    gone = ok(
        api.gql(
            DISCARD,
            {"input": {"unitId": unit(1).id, "reason": "DAMAGED", "note": "bag leaking"}},
            token=staff(api),
        ),
        "discardUnit",
    )
    assert (gone["status"], gone["requestId"]) == ("DISCARDED", None)
    request = ok(api.gql(GET_REQUEST, {"id": rid}, token=staff(api)), "getBloodRequest")
    assert (request["status"], request["allocated"], request["outstanding"]) == ("PARTIALLY_FULFILLED", 1, 1)
    assert [u["id"] for u in request["units"]] == [unit(2).id]
    stock = level(api, "site-north", "O_NEG", "RED_CELLS")
    assert (stock["available"], stock["reserved"]) == (0, 1)


def test_units_of_a_page_of_requests_are_read_in_one_batch(api: Api, world: World) -> None:
    world.inventory.add_units([unit(n) for n in range(1, 7)])
    for _ in range(3):
        ok(fulfil(api, create_ok(api, quantity=2)["id"]), "fulfillBloodRequest")
    world.inventory.calls.clear()
    page = ok(api.gql(LIST_REQUESTS, {"limit": 10}, token=hospital(api)), "listBloodRequests")
    assert [len(r["units"]) for r in page["items"]] == [2, 2, 2]
    assert [c[0] for c in world.inventory.calls].count("units") == 1


def test_list_blood_requests_pages(api: Api, world: World) -> None:
    ids = [create_ok(api, quantity=1)["id"] for _ in range(3)]
    first = ok(api.gql(LIST_REQUESTS, {"limit": 2}, token=hospital(api)), "listBloodRequests")
    assert first["nextToken"]
    second = ok(
        api.gql(LIST_REQUESTS, {"limit": 2, "next": first["nextToken"]}, token=hospital(api)),
        "listBloodRequests",
    )
    assert second["nextToken"] is None
    assert sorted(r["id"] for r in first["items"] + second["items"]) == sorted(ids)


# --- stock levels ---------------------------------------------------------------------------------
def test_stock_levels_follow_every_change(api: Api, world: World) -> None:
    world.inventory.add_units([unit(n, "A_POS", expires_in_days=20) for n in range(1, 5)])
    world.inventory.add_units([unit(9, "A_POS", site="site-south")])
    start = level(api, "site-north", "A_POS", "RED_CELLS", token=hospital(api))  # hospitals see aggregates
    assert start == {
        "siteId": "site-north",
        "bloodGroup": "A_POS",
        "component": "RED_CELLS",
        "available": 4,
        "reserved": 0,
        "threshold": 0,
        "daysOfSupply": None,
        "status": "GREEN",
        "issuedInWindow": 0,
        "amberDays": 2.0,
        "redDays": 1.0,
        "windowDays": 7,
        "issuedPerDay": 0.0,
    }
    # Every combination asked for, zero where none.
    site = ok(api.gql(STOCK, {"siteId": "site-north"}, token=staff(api)), "stockLevels")
    assert len(site) == 8 * 5
    assert len({(s["bloodGroup"], s["component"]) for s in site}) == 40
    assert sum(s["available"] for s in site) == 4
    everywhere = ok(
        api.gql(STOCK, {"bloodGroup": "A_POS", "component": "RED_CELLS"}, token=staff(api)), "stockLevels"
    )
    assert sorted((s["siteId"], s["available"]) for s in everywhere) == [
        ("site-london", 0),
        ("site-north", 4),
        ("site-south", 1),
    ]
    assert len(ok(api.gql(STOCK, token=staff(api)), "stockLevels")) == 3 * 40

    rid = create_ok(api, bloodGroup="A_POS", quantity=2)["id"]
    ok(fulfil(api, rid), "fulfillBloodRequest")
    reserved = level(api, "site-north", "A_POS", "RED_CELLS")
    assert (reserved["available"], reserved["reserved"]) == (2, 2)
    ok(api.gql(ISSUE, {"id": rid}, token=staff(api)), "issueBloodRequest")
    issued = level(api, "site-north", "A_POS", "RED_CELLS")
    # 2 issued over 7 days: 2/7 a day; 2 available last 7 days.
    assert (issued["available"], issued["reserved"], issued["issuedInWindow"]) == (2, 0, 2)
    assert issued["daysOfSupply"] == 7.0
    assert issued["issuedPerDay"] == 0.29
    assert issued["status"] == "GREEN"

    # Par levels and day limits (admins).
    par = ok(
        api.gql(
            THRESHOLD,
            {
                "input": {
                    "siteId": "site-north",
                    "bloodGroup": "A_POS",
                    "component": "RED_CELLS",
                    "parLevel": 3,
                }
            },
            token=admin(api),
        ),
        "setStockThreshold",
    )
    assert (par["threshold"], par["status"], par["available"]) == (3, "AMBER", 2)
    tight = ok(
        api.gql(
            THRESHOLD,
            {
                "input": {
                    "siteId": "site-north",
                    "bloodGroup": "A_POS",
                    "component": "RED_CELLS",
                    "parLevel": 1,
                    "amberDays": 10,
                    "redDays": 8,
                }
            },
            token=admin(api),
        ),
        "setStockThreshold",
    )
    assert (tight["threshold"], tight["amberDays"], tight["redDays"], tight["status"]) == (
        1,
        10.0,
        8.0,
        "RED",
    )
    assert level(api, "site-north", "A_POS", "RED_CELLS")["status"] == "RED"
    longer = ok(
        api.gql(
            THRESHOLD,
            {
                "input": {
                    "siteId": "site-north",
                    "bloodGroup": "A_POS",
                    "component": "RED_CELLS",
                    "parLevel": 1,
                    "windowDays": 14,
                }
            },
            token=admin(api),
        ),
        "setStockThreshold",
    )
    assert (longer["windowDays"], longer["daysOfSupply"], longer["status"]) == (14, 14.0, "GREEN")

    # Units move between sites with both sites' counters.
    moved = ok(
        api.gql(
            TRANSFER,
            {"input": {"unitIds": [unit(3).id, unit(4).id], "toSiteId": "site-south"}},
            token=staff(api),
        ),
        "transferUnits",
    )
    assert [(u["id"], u["siteId"], u["status"]) for u in moved] == [
        (unit(3).id, "site-south", "AVAILABLE"),
        (unit(4).id, "site-south", "AVAILABLE"),
    ]
    north = level(api, "site-north", "A_POS", "RED_CELLS")
    assert (north["available"], north["status"]) == (0, "RED")  # par level set, nothing left
    assert level(api, "site-south", "A_POS", "RED_CELLS")["available"] == 3

    # Issues leave the window as days pass.
    world.clock.advance(days=15)
    assert level(api, "site-north", "A_POS", "RED_CELLS")["issuedInWindow"] == 0
    assert level(api, "site-north", "A_POS", "RED_CELLS")["daysOfSupply"] is None


def test_set_stock_threshold_is_for_admins_only(api: Api, world: World) -> None:
    values = {"siteId": "site-north", "bloodGroup": "O_NEG", "component": "RED_CELLS", "parLevel": 5}
    for token in (staff(api), hospital(api), api.tokens("Donors")):
        assert error_codes(api.gql(THRESHOLD, {"input": values}, token=token)) == ["FORBIDDEN"]
    assert error_codes(api.gql(THRESHOLD, {"input": values})) == ["UNAUTHENTICATED"]
    assert world.inventory.thresholds == {}
    assert level(api, "site-north", "O_NEG", "RED_CELLS")["threshold"] == 0


def test_invalid_thresholds_name_the_fields_and_write_nothing(api: Api, world: World) -> None:
    base = {"siteId": "site-north", "bloodGroup": "O_NEG", "component": "RED_CELLS", "parLevel": 5}
    cases: list[tuple[dict[str, Any], set[str]]] = [
        ({"parLevel": -1}, {"input.parLevel"}),
        ({"amberDays": 400}, {"input.amberDays"}),
        ({"amberDays": -1, "redDays": -2}, {"input.amberDays", "input.redDays"}),
        ({"amberDays": 1, "redDays": 2}, {"input.redDays"}),
        ({"windowDays": 0}, {"input.windowDays"}),
        ({"windowDays": 91}, {"input.windowDays"}),
        (
            {"parLevel": -1, "redDays": 3, "windowDays": 0},
            {"input.parLevel", "input.redDays", "input.windowDays"},
        ),
        ({"siteId": "site-nowhere"}, {"input.siteId"}),
    ]
    for change, expected in cases:
        body = api.gql(THRESHOLD, {"input": {**base, **change}}, token=admin(api))
        assert error_codes(body) == ["BAD_USER_INPUT"], change
        assert fields_of(body) == expected, change
        assert body["data"] is None
    # Not even a parseable request: bad enum, wrong type.
    for change in ({"bloodGroup": "Z_POS"}, {"component": "SERUM"}, {"parLevel": 2.5}):
        body = api.gql(THRESHOLD, {"input": {**base, **change}}, token=admin(api))
        assert error_codes(body) == ["BAD_USER_INPUT"], change
    assert world.inventory.thresholds == {}


def test_window_days_beyond_the_documented_range_is_refused(api: Api, world: World) -> None:
    values = {"siteId": "site-north", "bloodGroup": "O_NEG", "component": "RED_CELLS", "parLevel": 5}
    body = api.gql(THRESHOLD, {"input": {**values, "windowDays": 29}}, token=admin(api))
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert fields_of(body) == {"input.windowDays"}
    assert world.inventory.thresholds == {}


def test_stock_levels_need_a_token_and_a_known_site(api: Api) -> None:
    body = api.gql(STOCK, {"siteId": "site-north"})
    assert error_codes(body) == ["UNAUTHENTICATED"]
    assert body["data"] is None
    for query in (LIST_REQUESTS, '{ getBloodRequest(id: "r-1") { id } }'):
        assert error_codes(api.gql(query)) == ["UNAUTHENTICATED"]
    anonymous = api.gql(CREATE, {"input": {"bloodGroup": "O_NEG", "component": "RED_CELLS", "quantity": 1}})
    assert error_codes(anonymous) == ["UNAUTHENTICATED"]
    unknown = api.gql(STOCK, {"siteId": "site-nowhere"}, token=staff(api))
    assert error_codes(unknown) == ["BAD_USER_INPUT"]
    assert fields_of(unknown) == {"siteId"}


# --- test results ---------------------------------------------------------------------------------
def results(*markers: str, outcome: str = "NEGATIVE") -> list[dict[str, str]]:
    return [{"marker": m, "outcome": outcome} for m in markers]


def test_negative_results_release_quarantined_units(api: Api, world: World) -> None:
    din = "W123426000201X"
    rc = unit(1, None, status=UnitStatus.QUARANTINED, din=din, expires_in_days=42)
    fp = unit(1, None, Component.PLASMA, status=UnitStatus.QUARANTINED, din=din, expires_in_days=365)
    world.inventory.add_units([rc, fp])
    # Five of the six US markers: still quarantined.
    held = ok(
        api.gql(
            TESTS,
            {"input": {"din": din, "results": results(*US_MARKERS[:5]), "bloodGroup": "B_POS"}},
            token=staff(api),
        ),
        "recordTestResults",
    )
    assert [(u["id"], u["status"]) for u in held] == [(fp.id, "QUARANTINED"), (rc.id, "QUARANTINED")]
    assert level(api, "site-north", "B_POS", "RED_CELLS")["available"] == 0
    released = ok(
        api.gql(TESTS, {"input": {"din": din, "results": results("WNV")}}, token=staff(api)),
        "recordTestResults",
    )
    assert [(u["id"], u["status"], u["bloodGroup"]) for u in released] == [
        (fp.id, "AVAILABLE", "B_POS"),
        (rc.id, "AVAILABLE", "B_POS"),
    ]
    assert level(api, "site-north", "B_POS", "RED_CELLS")["available"] == 1
    assert level(api, "site-north", "B_POS", "PLASMA")["available"] == 1
    history = ok(api.gql(HISTORY, {"din": rc.id}, token=staff(api)), "getUnit")["history"]
    assert [(h["fromStatus"], h["toStatus"], h["by"], h["why"]) for h in history] == [
        ("QUARANTINED", "AVAILABLE", "tech-1", "screening negative")
    ]
    # A result is never overwritten.
    before = snapshot(world)
    flip = api.gql(
        TESTS, {"input": {"din": din, "results": results("HIV", outcome="REACTIVE")}}, token=staff(api)
    )
    assert error_codes(flip) == ["CONFLICT"]
    assert snapshot(world) == before


def test_all_negative_but_untyped_stays_quarantined(api: Api, world: World) -> None:
    din = "W123426000202X"
    world.inventory.add_units([unit(2, None, status=UnitStatus.QUARANTINED, din=din)])
    held = ok(
        api.gql(TESTS, {"input": {"din": din, "results": results(*US_MARKERS)}}, token=staff(api)),
        "recordTestResults",
    )
    assert [u["status"] for u in held] == ["QUARANTINED"]
    typed = ok(
        api.gql(
            TESTS, {"input": {"din": din, "results": results("HIV"), "bloodGroup": "O_POS"}}, token=staff(api)
        ),
        "recordTestResults",
    )
    assert [(u["status"], u["bloodGroup"]) for u in typed] == [("AVAILABLE", "O_POS")]


def test_a_uk_site_needs_hev_not_wnv(api: Api, world: World) -> None:
    din = "G151726000203X"
    world.inventory.add_units([unit(3, "A_NEG", status=UnitStatus.QUARANTINED, din=din, site="site-london")])
    held = ok(
        api.gql(
            TESTS,
            {"input": {"din": din, "results": results(*US_MARKERS), "bloodGroup": "A_NEG"}},
            token=staff(api),
        ),
        "recordTestResults",
    )
    assert [u["status"] for u in held] == ["QUARANTINED"]
    done = ok(
        api.gql(TESTS, {"input": {"din": din, "results": results("HEV")}}, token=staff(api)),
        "recordTestResults",
    )
    assert [u["status"] for u in done] == ["AVAILABLE"]


def test_a_reactive_result_discards_every_sibling_on_the_shelves(api: Api, world: World) -> None:
    din = "W123426000204X"
    siblings = [
        unit(4, "O_POS", c, status=UnitStatus.QUARANTINED, din=din)
        for c in (Component.RED_CELLS, Component.PLASMA, Component.PLATELETS)
    ]
    world.inventory.add_units(siblings)
    body = api.gql(
        TESTS,
        {"input": {"din": din, "results": [*results("HIV"), *results("HCV", outcome="REACTIVE")]}},
        token=staff(api),
    )
    gone = ok(body, "recordTestResults")
    assert sorted((u["id"], u["status"]) for u in gone) == sorted((u.id, "DISCARDED") for u in siblings)
    history = ok(api.gql(HISTORY, {"din": siblings[0].id}, token=staff(api)), "getUnit")["history"]
    assert [(h["fromStatus"], h["toStatus"], h["wastage"]) for h in history] == [
        ("QUARANTINED", "DISCARDED", "TEST_REACTIVE")
    ]
    assert "HCV" in history[0]["why"]


def test_a_late_reactive_result_recalls_released_siblings(api: Api, world: World) -> None:
    din = "W123426000205X"
    rc = unit(5, None, status=UnitStatus.QUARANTINED, din=din)
    fp = unit(5, None, Component.PLASMA, status=UnitStatus.QUARANTINED, din=din)
    world.inventory.add_units([rc, fp])
    ok(
        api.gql(
            TESTS,
            {"input": {"din": din, "results": results(*US_MARKERS), "bloodGroup": "O_NEG"}},
            token=staff(api),
        ),
        "recordTestResults",
    )
    assert level(api, "site-north", "O_NEG", "RED_CELLS")["available"] == 1
    recalled = ok(
        api.gql(
            TESTS,
            {"input": {"din": din, "results": results("HEV", outcome="INDETERMINATE")}},
            token=staff(api),
        ),
        "recordTestResults",
    )
    assert [u["status"] for u in recalled] == ["DISCARDED", "DISCARDED"]
    assert level(api, "site-north", "O_NEG", "RED_CELLS")["available"] == 0
    assert level(api, "site-north", "O_NEG", "PLASMA")["available"] == 0


def test_bad_test_results_are_refused(api: Api, world: World) -> None:
    din = "W123426000206X"
    world.inventory.add_units([unit(6, None, status=UnitStatus.QUARANTINED, din=din)])
    before = snapshot(world)
    unknown = api.gql(
        TESTS, {"input": {"din": "W999999999999X", "results": results("HIV")}}, token=staff(api)
    )
    assert error_codes(unknown) == ["NOT_FOUND"]
    empty = api.gql(TESTS, {"input": {"din": din, "results": []}}, token=staff(api))
    assert error_codes(empty) == ["BAD_USER_INPUT"]
    assert fields_of(empty) == {"input.results"}
    twice = api.gql(
        TESTS,
        {"input": {"din": din, "results": [*results("HIV"), *results("HIV", outcome="REACTIVE")]}},
        token=staff(api),
    )
    assert error_codes(twice) == ["BAD_USER_INPUT"]
    bad_marker = api.gql(TESTS, {"input": {"din": din, "results": results("MALARIA")}}, token=staff(api))
    assert error_codes(bad_marker) == ["BAD_USER_INPUT"]
    bad_din = api.gql(TESTS, {"input": {"din": "not a din!", "results": results("HIV")}}, token=staff(api))
    assert error_codes(bad_din) == ["BAD_USER_INPUT"]
    assert snapshot(world) == before


# --- refusals write nothing -----------------------------------------------------------------------
def test_bad_blood_requests_are_refused_with_codes_and_nothing_is_written(api: Api, world: World) -> None:
    before = snapshot(world)
    cases: list[tuple[dict[str, Any], str | None, set[str] | None]] = [
        ({"bloodGroup": "Z_POS"}, None, None),
        ({"component": "SERUM"}, None, None),
        ({"urgency": "ASAP"}, None, None),
        ({"quantity": 0}, None, {"input.quantity"}),
        ({"quantity": 41}, None, {"input.quantity"}),
        ({"quantity": -3}, None, {"input.quantity"}),
        ({"neededBy": iso(NOW - timedelta(days=1))}, None, {"input.neededBy"}),
        ({"neededBy": iso(NOW + timedelta(days=91))}, None, {"input.neededBy"}),
        ({"neededBy": "2026-11-23T09:00:00"}, None, None),  # no offset
        ({"neededBy": "tomorrow"}, None, None),
        (
            {"quantity": 0, "neededBy": iso(NOW - timedelta(days=1))},
            None,
            {"input.quantity", "input.neededBy"},
        ),
        ({"clientRequestToken": "x" * 65}, None, {"clientRequestToken"}),
        ({"clientRequestToken": ""}, None, {"clientRequestToken"}),
        ({"hospitalId": "hosp-nowhere"}, "staff", {"input.hospitalId"}),
        ({}, "staff", {"input.hospitalId"}),  # staff must name the hospital
    ]
    for values, who, expected in cases:
        token = staff(api) if who == "staff" else hospital(api)
        body = create(api, token, **values)
        assert error_codes(body) == ["BAD_USER_INPUT"], values
        assert body["data"] is None, values
        if expected is not None:
            assert fields_of(body) == expected, values
        assert the_error(body)["message"], values
    assert snapshot(world) == before
    assert ok(api.gql(LIST_REQUESTS, token=staff(api)), "listBloodRequests")["items"] == []
    # Staff may order on a hospital's behalf.
    made = create_ok(api, staff(api), hospitalId="hosp-riverside")
    assert (made["hospitalId"], made["siteId"]) == ("hosp-riverside", "site-south")


def test_unknown_ids_are_not_found(api: Api, world: World) -> None:
    world.inventory.add_units([unit(1)])
    before = snapshot(world)
    for query, variables in (
        (DISCARD, {"input": {"unitId": "W123426009999X-RC", "reason": "DAMAGED"}}),
        (CONFIRM, {"input": {"unitId": "W123426009999X-RC"}}),
        (RETURN, {"input": {"unitId": "W123426009999X-RC", "minutesOutOfStorage": 5}}),
        (TRANSFER, {"input": {"unitIds": [unit(1).id, "W123426009999X-RC"], "toSiteId": "site-south"}}),
        (FULFIL, {"id": "req-nowhere"}),
        (ISSUE, {"id": "req-nowhere"}),
        (CANCEL, {"id": "req-nowhere"}),
    ):
        assert error_codes(api.gql(query, variables, token=staff(api))) == ["NOT_FOUND"], query
    assert snapshot(world) == before
    assert world.inventory.unit_map[unit(1).id].site_id == "site-north"
    # Reads answer null rather than an error.
    assert ok(api.gql(GET_UNIT, {"din": "W123426009999X-RC"}, token=staff(api)), "getUnit") is None
    assert ok(api.gql(GET_REQUEST, {"id": "req-nowhere"}, token=staff(api)), "getBloodRequest") is None
    malformed = api.gql(GET_UNIT, {"din": "not a unit!"}, token=staff(api))
    assert error_codes(malformed) == ["BAD_USER_INPUT"]


def test_illegal_transitions_are_conflicts_and_write_nothing(api: Api, world: World) -> None:
    issued = unit(1, status=UnitStatus.ISSUED)
    world.inventory.add_units(
        [issued, unit(2), unit(3, status=UnitStatus.RESERVED), unit(4, status=UnitStatus.DISCARDED)]
    )
    before = snapshot(world)
    for query, variables in (
        (CONFIRM, {"input": {"unitId": unit(3).id}}),  # RESERVED was never sent out
        (DISCARD, {"input": {"unitId": unit(4).id, "reason": "OTHER"}}),  # final
        (CONFIRM, {"input": {"unitId": unit(2).id}}),  # AVAILABLE cannot be transfused
        (RETURN, {"input": {"unitId": unit(2).id, "minutesOutOfStorage": 5}}),  # was never issued
        (TRANSFER, {"input": {"unitIds": [unit(2).id, unit(3).id], "toSiteId": "site-south"}}),
    ):
        body = api.gql(query, variables, token=staff(api))
        assert error_codes(body) == ["CONFLICT"], variables
        assert the_error(body)["extensions"]["errorType"] == "IllegalTransition", variables
    assert snapshot(world) == before
    assert world.inventory.unit_map[unit(2).id].site_id == "site-north"  # half a transfer never happens


def test_discarding_an_issued_unit_is_an_illegal_transition(api: Api, world: World) -> None:
    world.inventory.add_units([unit(1), unit(2)])
    rid = create_ok(api, quantity=2)["id"]
    ok(fulfil(api, rid), "fulfillBloodRequest")
    ok(api.gql(ISSUE, {"id": rid}, token=staff(api)), "issueBloodRequest")
    before = snapshot(world)
    body = api.gql(DISCARD, {"input": {"unitId": unit(1).id, "reason": "DAMAGED"}}, token=staff(api))
    assert error_codes(body) == ["CONFLICT"]
    assert the_error(body)["extensions"]["errorType"] == "IllegalTransition"
    assert body["data"] is None
    assert snapshot(world) == before
    still = ok(api.gql(HISTORY, {"din": unit(1).id}, token=staff(api)), "getUnit")
    assert (still["status"], still["version"], len(still["history"])) == ("ISSUED", 3, 2)


def test_bad_unit_inputs_are_refused(api: Api, world: World) -> None:
    world.inventory.add_units([unit(n) for n in range(1, 42)])
    before = snapshot(world)
    ids = [unit(n).id for n in range(1, 42)]
    too_many = api.gql(TRANSFER, {"input": {"unitIds": ids, "toSiteId": "site-south"}}, token=staff(api))
    assert error_codes(too_many) == ["BAD_USER_INPUT"]
    assert fields_of(too_many) == {"input.unitIds"}
    for values, expected in (
        ({"unitIds": [], "toSiteId": "site-south"}, {"input.unitIds"}),
        ({"unitIds": [ids[0], ids[0]], "toSiteId": "site-south"}, {"input.unitIds"}),
        ({"unitIds": [ids[0]], "toSiteId": "site-nowhere"}, {"input.toSiteId"}),
        ({"unitIds": [ids[0]], "toSiteId": "site-north"}, {"input.toSiteId"}),  # already there
        (
            {"unitIds": [ids[0]], "toSiteId": "site-south", "clientRequestToken": "t" * 65},
            {"clientRequestToken"},
        ),
    ):
        body = api.gql(TRANSFER, {"input": values}, token=staff(api))
        assert error_codes(body) == ["BAD_USER_INPUT"], values
        assert fields_of(body) == expected, values
    for query, variables in (
        (DISCARD, {"input": {"unitId": ids[0], "reason": "BROKEN"}}),
        (DISCARD, {"input": {"unitId": ids[0], "reason": "DAMAGED", "note": "n" * 501}}),
        (DISCARD, {"input": {"unitId": ids[0], "reason": "DAMAGED", "clientRequestToken": "é"}}),
        (RETURN, {"input": {"unitId": ids[0], "minutesOutOfStorage": -1}}),
        (FULFIL, {"id": "r-1", "token": "z" * 65}),
        (CANCEL, {"id": "r-1", "reason": "r" * 501}),
    ):
        assert error_codes(api.gql(query, variables, token=staff(api))) == ["BAD_USER_INPUT"], variables
    assert snapshot(world) == before
    # 40 is the most one transfer takes.
    moved = ok(
        api.gql(TRANSFER, {"input": {"unitIds": ids[:40], "toSiteId": "site-south"}}, token=staff(api)),
        "transferUnits",
    )
    assert len(moved) == 40
    assert level(api, "site-south", "O_NEG", "RED_CELLS")["available"] == 40
    assert level(api, "site-north", "O_NEG", "RED_CELLS")["available"] == 1


def test_a_returned_unit_goes_back_only_if_fit(api: Api, world: World) -> None:
    world.inventory.add_units([unit(1), unit(2)])
    rid = create_ok(api, quantity=2)["id"]
    ok(fulfil(api, rid), "fulfillBloodRequest")
    ok(api.gql(ISSUE, {"id": rid}, token=staff(api)), "issueBloodRequest")
    back = ok(
        api.gql(RETURN, {"input": {"unitId": unit(1).id, "minutesOutOfStorage": 20}}, token=staff(api)),
        "returnUnit",
    )
    assert (back["status"], back["requestId"]) == ("AVAILABLE", None)
    warm = ok(
        api.gql(RETURN, {"input": {"unitId": unit(2).id, "minutesOutOfStorage": 31}}, token=staff(api)),
        "returnUnit",
    )
    assert warm["status"] == "DISCARDED"
    assert level(api, "site-north", "O_NEG", "RED_CELLS")["available"] == 1


# --- idempotency ----------------------------------------------------------------------------------
def test_create_blood_request_with_a_client_request_token_has_one_effect(api: Api, world: World) -> None:
    token = "3f6c2a8e-8d7b-4f3a-9a51-0c2b7e9d1a44"
    first = create_ok(api, quantity=2, clientRequestToken=token)
    again = create_ok(api, quantity=2, clientRequestToken=token)
    assert again["id"] == first["id"]
    assert again["createdAt"] == first["createdAt"]
    assert len(world.inventory.requests_by_id) == 1
    listed = ok(api.gql(LIST_REQUESTS, token=hospital(api)), "listBloodRequests")
    assert [r["id"] for r in listed["items"]] == [first["id"]]

    before = snapshot(world)
    other = create(api, quantity=3, clientRequestToken=token)
    assert error_codes(other) == ["CONFLICT"]
    assert "clientRequestToken" in the_error(other)["message"]
    assert snapshot(world) == before
    # Without a token, each call is a new order.
    create_ok(api, quantity=2)
    assert len(world.inventory.requests_by_id) == 2


def test_retried_fulfil_and_discard_have_one_effect(api: Api, world: World) -> None:
    world.inventory.add_units([unit(1), unit(2)])
    rid = create_ok(api, quantity=3)["id"]
    done = ok(fulfil(api, rid, token="fulfil-1"), "fulfillBloodRequest")
    assert (done["status"], done["allocated"]) == ("PARTIALLY_FULFILLED", 2)
    world.inventory.add_units([unit(3)])
    retried = ok(fulfil(api, rid, token="fulfil-1"), "fulfillBloodRequest")
    assert (retried["id"], retried["allocated"], retried["version"]) == (rid, 2, done["version"])
    assert world.inventory.unit_map[unit(3).id].status is UnitStatus.AVAILABLE
    assert error_codes(fulfil(api, "another-request", token="fulfil-1")) == ["CONFLICT"]

    values = {"unitId": unit(3).id, "reason": "TEMPERATURE_EXCURSION", "clientRequestToken": "discard-1"}
    one = ok(api.gql(DISCARD, {"input": values}, token=staff(api)), "discardUnit")
    two = ok(api.gql(DISCARD, {"input": values}, token=staff(api)), "discardUnit")
    assert one == two
    assert one["status"] == "DISCARDED"
    assert len(world.inventory.ledgers[unit(3).id]) == 1


# --- the ledger -----------------------------------------------------------------------------------
def test_unit_history_lists_one_ledger_entry_per_change(api: Api, world: World) -> None:
    world.inventory.add_units([unit(1, expires_in_days=20)])
    uid = unit(1).id
    assert ok(api.gql(HISTORY, {"din": uid}, token=staff(api)), "getUnit")["history"] == []
    ok(
        api.gql(TRANSFER, {"input": {"unitIds": [uid], "toSiteId": "site-south"}}, token=staff(api)),
        "transferUnits",
    )
    world.clock.advance(hours=1)
    ok(
        api.gql(TRANSFER, {"input": {"unitIds": [uid], "toSiteId": "site-north"}}, token=staff(api)),
        "transferUnits",
    )
    rid = create_ok(api, quantity=1)["id"]
    ok(fulfil(api, rid), "fulfillBloodRequest")
    ok(api.gql(ISSUE, {"id": rid}, token=api.tokens("Staff", sub="tech-2")), "issueBloodRequest")
    ok(api.gql(CONFIRM, {"input": {"unitId": uid}}, token=hospital(api)), "confirmTransfusion")

    found = ok(api.gql(HISTORY, {"din": uid}, token=staff(api)), "getUnit")
    history = found["history"]
    assert [(h["fromStatus"], h["toStatus"], h["by"], h["version"]) for h in history] == [
        ("AVAILABLE", "AVAILABLE", "tech-1", 2),
        ("AVAILABLE", "AVAILABLE", "tech-1", 3),
        ("AVAILABLE", "RESERVED", "tech-1", 4),
        ("RESERVED", "ISSUED", "tech-2", 5),
        ("ISSUED", "TRANSFUSED", "hospital-user", 6),
    ]
    assert [h["why"] for h in history] == [
        "transfer to site-south",
        "transfer to site-north",
        f"reserved for request {rid}",
        "issued to hosp-st-mary",
        "transfused",
    ]
    assert [(h["siteId"], h["toSiteId"]) for h in history[:2]] == [
        ("site-north", "site-south"),
        ("site-south", "site-north"),
    ]
    assert [h["requestId"] for h in history[2:]] == [rid, rid, rid]
    assert history[0]["at"] == "2026-11-22T09:00:00.000Z"
    assert history[1]["at"] == "2026-11-22T10:00:00.000Z"
    assert all(h["wastage"] is None for h in history)
    assert (found["status"], found["version"]) == ("TRANSFUSED", 6)
    # A final status is final.
    refused = api.gql(DISCARD, {"input": {"unitId": uid, "reason": "OTHER"}}, token=staff(api))
    assert error_codes(refused) == ["CONFLICT"]
    assert len(ok(api.gql(HISTORY, {"din": uid}, token=staff(api)), "getUnit")["history"]) == 5


def test_list_units_first_to_expire_first(api: Api, world: World) -> None:
    world.inventory.add_units(
        [
            unit(1, expires_in_days=9),
            unit(2, expires_in_days=3),
            unit(3, status=UnitStatus.QUARANTINED, group=None, expires_in_days=5),
            unit(4, status=UnitStatus.ISSUED, expires_in_days=1),  # not on the shelves
            unit(5, site="site-south", expires_in_days=1),
        ]
    )
    page = ok(
        api.gql(LIST_UNITS, {"filter": {"siteId": {"eq": "site-north"}}, "limit": 2}, token=staff(api)),
        "listUnits",
    )
    assert [u["id"] for u in page["items"]] == [unit(2).id, unit(3).id]
    rest = ok(
        api.gql(
            LIST_UNITS,
            {"filter": {"siteId": {"eq": "site-north"}}, "limit": 2, "next": page["nextToken"]},
            token=staff(api),
        ),
        "listUnits",
    )
    assert [u["id"] for u in rest["items"]] == [unit(1).id]
    assert rest["nextToken"] is None
    bare = ok(api.gql(GET_UNIT, {"din": unit(1).din}, token=staff(api)), "getUnit")
    assert bare["id"] == unit(1).id
    assert error_codes(api.gql(LIST_UNITS, token=staff(api))) == ["BAD_USER_INPUT"]


def test_a_bare_din_of_several_units_asks_for_one(api: Api, world: World) -> None:
    din = "W123426000777X"
    world.inventory.add_units([unit(7, din=din), unit(7, None, Component.PLASMA, din=din)])
    body = api.gql(GET_UNIT, {"din": din}, token=staff(api))
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert fields_of(body) == {"din"}
    every = ok(api.gql(LIST_UNITS, {"filter": {"din": {"eq": din}}}, token=staff(api)), "listUnits")
    assert [u["id"] for u in every["items"]] == [f"{din}-FP", f"{din}-RC"]


def test_list_units_of_a_donation_gives_all_of_them_in_one_page(api: Api, world: World) -> None:
    din = "W123426000778X"
    world.inventory.add_units([unit(8, din=din), unit(8, None, Component.PLASMA, din=din)])
    page = ok(
        api.gql(LIST_UNITS, {"filter": {"din": {"eq": din}}, "limit": 1}, token=staff(api)), "listUnits"
    )
    assert [u["id"] for u in page["items"]] == [f"{din}-FP", f"{din}-RC"]  # never cut: a handful at most
    assert page["nextToken"] is None


def test_request_pages_are_bounded_and_tokens_stay_with_their_query(api: Api) -> None:
    for _ in range(2):
        create_ok(api, quantity=1)
    for limit in (0, 101):
        assert error_codes(api.gql(LIST_REQUESTS, {"limit": limit}, token=hospital(api))) == [
            "BAD_USER_INPUT"
        ]
    assert error_codes(api.gql(LIST_REQUESTS, {"next": "garbage"}, token=hospital(api))) == ["BAD_USER_INPUT"]
    token = ok(api.gql(LIST_REQUESTS, {"limit": 1}, token=hospital(api)), "listBloodRequests")["nextToken"]
    assert token
    # St Mary's page token does not open St Mary's requests to another hospital.
    stolen = api.gql(LIST_REQUESTS, {"limit": 1, "next": token}, token=riverside(api))
    assert error_codes(stolen) == ["BAD_USER_INPUT"]
    assert stolen["data"] is None


def test_an_expired_reserved_unit_never_leaves(api: Api, world: World) -> None:
    world.inventory.add_units([unit(1, expires_in_days=1), unit(2, expires_in_days=5)])
    rid = create_ok(api, quantity=2)["id"]
    ok(fulfil(api, rid), "fulfillBloodRequest")
    world.clock.advance(days=2)
    before = snapshot(world)
    refused = api.gql(ISSUE, {"id": rid}, token=staff(api))
    assert error_codes(refused) == ["CONFLICT"]
    assert the_error(refused)["extensions"]["errorType"] == "IllegalTransition"
    assert snapshot(world) == before
    cancelled = ok(api.gql(CANCEL, {"id": rid}, token=staff(api)), "cancelBloodRequest")
    assert cancelled["status"] == "CANCELLED"
    assert world.inventory.unit_map[unit(1).id].status is UnitStatus.EXPIRED
    assert world.inventory.unit_map[unit(2).id].status is UnitStatus.AVAILABLE
    history = ok(api.gql(HISTORY, {"din": unit(1).id}, token=staff(api)), "getUnit")["history"]
    assert [(h["fromStatus"], h["toStatus"], h["wastage"]) for h in history][-1] == (
        "RESERVED",
        "EXPIRED",
        "EXPIRED",
    )
    stock = level(api, "site-north", "O_NEG", "RED_CELLS")
    assert (stock["available"], stock["reserved"]) == (1, 0)


def test_a_reactive_result_takes_a_reserved_sibling_out_of_its_request(api: Api, world: World) -> None:
    din = "W123426000209X"
    world.inventory.add_units([unit(9, None, status=UnitStatus.QUARANTINED, din=din)])
    ok(
        api.gql(
            TESTS,
            {"input": {"din": din, "results": results(*US_MARKERS), "bloodGroup": "O_NEG"}},
            token=staff(api),
        ),
        "recordTestResults",
    )
    rid = create_ok(api, quantity=1)["id"]
    assert ok(fulfil(api, rid), "fulfillBloodRequest")["status"] == "FULFILLED"
    recalled = ok(
        api.gql(
            TESTS, {"input": {"din": din, "results": results("HEV", outcome="REACTIVE")}}, token=staff(api)
        ),
        "recordTestResults",
    )
    assert [u["status"] for u in recalled] == ["DISCARDED"]
    request = ok(api.gql(GET_REQUEST, {"id": rid}, token=staff(api)), "getBloodRequest")
    assert (request["status"], request["allocated"], request["outstanding"], request["units"]) == (
        "PENDING",
        0,
        1,
        [],
    )
    stock = level(api, "site-north", "O_NEG", "RED_CELLS")
    assert (stock["available"], stock["reserved"]) == (0, 0)
