"""The audit trail on DynamoDB Local: every mutation's record is written in the same transaction as
its change (a record that cannot be written takes the change with it), a rejected mutation leaves
none, and ``listAuditEvents`` reads it back for admins only, by actor, record, action and time."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from bloodbank.bootstrap import build_container
from bloodbank.cursor import CursorCodec
from bloodbank.domain.audit import AuditEvent
from bloodbank.fakes import (
    FixedClock,
    InMemoryDocumentStore,
    InMemoryFieldCipher,
    RecordingAlertPublisher,
    RecordingNotifier,
    StaticKeySet,
)
from bloodbank.local import stack
from bloodbank.settings import Settings
from bloodbank.storage.appeals import DynamoAppeals
from bloodbank.storage.audit import DynamoAuditLog, audit_item
from bloodbank.storage.donations import DynamoDonations
from bloodbank.storage.donors import DynamoDonorRepository
from bloodbank.storage.inventory import DynamoInventory
from bloodbank.storage.notifications import DynamoNotificationLedger
from bloodbank.storage.templates import DynamoEmailTemplates
from tests.conftest import (
    CLIENT_ID,
    PAGE_SECRET,
    POOL_ID,
    REGION,
    Api,
    SigningKey,
    TokenFactory,
    error_codes,
)

pytestmark = pytest.mark.ddblocal

AUDIT_FIELDS = "id at actor groups action targetType targetId requestId hospitalId"
LIST = f"""query($filter: AuditEventFilterInput, $limit: Int, $nextToken: String) {{
  listAuditEvents(filter: $filter, limit: $limit, nextToken: $nextToken) {{
    items {{ {AUDIT_FIELDS} }} nextToken }} }}"""
REGISTER = "mutation($input: RegisterDonorInput!) { registerDonor(input: $input) { id version } }"
UPDATE = "mutation($input: UpdateDonorInput!) { updateDonor(input: $input) { id version } }"
THRESHOLD = """mutation($input: SetStockThresholdInput!) {
  setStockThreshold(input: $input) { siteId threshold } }"""
TEMPLATE = """mutation($input: CreateEmailTemplateInput!) { createEmailTemplate(input: $input) { id } }"""
UPLOAD = """mutation($input: RequestDonorDocumentUploadInput!) {
  requestDonorDocumentUpload(input: $input) { key } }"""
CREATE_REQUEST = "mutation($input: CreateBloodRequestInput!) { createBloodRequest(input: $input) { id } }"
CANCEL_REQUEST = "mutation($id: ID!) { cancelBloodRequest(id: $id) { id status } }"
WALK_IN = {"firstName": "Ann", "lastName": "Lee", "email": "ann@example.org", "siteId": "site-north"}


@dataclass
class Stack:
    api: Api
    raw: Any  # the DynamoDB client
    table: str
    ids: list[str]  # the audit ids to hand out next (random when empty)


@pytest.fixture
def stack_(dynamodb_local: str, signing_key: SigningKey, tokens: TokenFactory) -> Iterator[Stack]:
    from bloodbank.adapters.provisioning import client
    from bloodbank.server import create_app

    name = f"bloodbank-{uuid.uuid4().hex[:12]}"
    binding = stack.open_table(dynamodb_local, REGION, name)
    directory = stack.load_reference_data()
    cursors = CursorCodec(PAGE_SECRET)
    cipher = InMemoryFieldCipher()
    settings = Settings(
        region=REGION,
        table_name=name,
        user_pool_id=POOL_ID,
        client_ids=frozenset({CLIENT_ID}),
        page_token_secret=PAGE_SECRET,
        dynamodb_endpoint=dynamodb_local,
    )
    donors = DynamoDonorRepository(binding, cursors, cipher)
    appeals = DynamoAppeals(binding)
    container = build_container(
        settings,
        donors=donors,
        directory=directory,
        donations=DynamoDonations(binding, cursors, cipher),
        inventory=DynamoInventory(binding, cursors),
        ledger=DynamoNotificationLedger(binding),
        email_templates=DynamoEmailTemplates(binding, cursors),
        audit_log=DynamoAuditLog(binding, cursors),
        appeal_ledger=appeals,
        announced_levels=appeals,
        documents=InMemoryDocumentStore(clock=FixedClock()),
        alert_publisher=RecordingAlertPublisher(),
        notifier=RecordingNotifier(),
        cipher=cipher,
        key_source=StaticKeySet({"keys": [signing_key.public_jwk]}),
        probes=[],
    )
    ids: list[str] = []
    random_id = container.audit.new_id
    container.audit.new_id = lambda: ids.pop(0) if ids else random_id()
    with TestClient(create_app(container)) as http:
        yield Stack(Api(http, tokens), client("dynamodb", dynamodb_local, REGION), name, ids)


def data(body: dict[str, Any]) -> Any:
    assert "errors" not in body, body
    return body["data"]


def events(s: Stack, filter_: dict[str, Any] | None = None, **more: Any) -> list[dict[str, Any]]:
    body = data(s.api.gql(LIST, {"filter": filter_, **more}, token=s.api.tokens("Admins", sub="admin-1")))
    items: list[dict[str, Any]] = body["listAuditEvents"]["items"]
    return items


def stored(s: Stack, prefix: str = "AUDIT#") -> list[dict[str, Any]]:
    """Every item whose pk starts with ``prefix`` (audit records by default), read straight from
    DynamoDB (a Scan: tests only)."""
    found = s.raw.scan(
        TableName=s.table,
        FilterExpression="begins_with(pk, :p)",
        ExpressionAttributeValues={":p": {"S": prefix}},
    )["Items"]
    return list(found)


def test_a_mutation_and_its_record_are_written_together(stack_: Stack) -> None:
    s = stack_
    response = s.api.client.post(
        "/graphql",
        json={"query": REGISTER, "variables": {"input": WALK_IN}},
        headers={"Authorization": s.api.tokens("Staff", sub="staff-1")},
    )
    donor = data(response.json())["registerDonor"]
    [event] = events(s)
    assert event["action"] == "registerDonor"
    assert (event["actor"], event["groups"], event["hospitalId"]) == ("staff-1", ["Staff"], None)
    assert (event["targetType"], event["targetId"]) == ("Donor", donor["id"])
    assert event["requestId"] == response.headers["x-request-id"]
    # The record holds ids only: nothing the donor told us.
    [raw] = stored(s)
    assert "ann" not in str(raw).lower()
    assert "lee" not in str(raw).lower()

    update = {"id": donor["id"], "expectedVersion": donor["version"], "phone": "+1 415 555 0100"}
    data(s.api.gql(UPDATE, {"input": update}, token=s.api.tokens("Staff", sub="staff-2")))
    newest = events(s)[0]
    assert (newest["action"], newest["actor"], newest["targetId"]) == ("updateDonor", "staff-2", donor["id"])


def test_a_record_that_cannot_be_written_takes_the_change_with_it(stack_: Stack) -> None:
    """Same transaction: when the record's put fails, the donor is not written either."""
    s = stack_
    taken = AuditEvent(
        id="taken",
        at=FixedClock()(),
        actor="someone",
        groups=("Admins",),
        action="registerDonor",
        target=None,
        request_id="r",
    )
    audit_item(taken).save()
    s.ids.append("taken")
    body = s.api.gql(REGISTER, {"input": WALK_IN}, token=s.api.tokens("Staff"))
    assert error_codes(body) == ["INTERNAL_SERVER_ERROR"]
    assert stored(s, "DONOR#") == []
    assert len(stored(s)) == 1  # only the one that was there
    # A single-item write (an update) is made transactional for its record, with the same effect.
    s.ids.clear()
    donor = data(s.api.gql(REGISTER, {"input": WALK_IN}, token=s.api.tokens("Staff")))["registerDonor"]
    s.ids.append("taken")
    update = {"id": donor["id"], "expectedVersion": donor["version"], "phone": "+1 415 555 0100"}
    assert error_codes(s.api.gql(UPDATE, {"input": update}, token=s.api.tokens("Staff"))) == [
        "INTERNAL_SERVER_ERROR"
    ]
    kept = s.raw.get_item(TableName=s.table, Key={"pk": {"S": f"DONOR#{donor['id']}"}, "sk": {"S": "DONOR"}})
    assert kept["Item"]["version"]["N"] == str(donor["version"])


def test_a_rejected_mutation_leaves_no_record(stack_: Stack) -> None:
    s = stack_
    staff = s.api.tokens("Staff")
    assert error_codes(s.api.gql(REGISTER, {"input": {**WALK_IN, "siteId": "nowhere"}}, token=staff)) == [
        "BAD_USER_INPUT"
    ]
    data(s.api.gql(REGISTER, {"input": WALK_IN}, token=staff))
    assert error_codes(s.api.gql(REGISTER, {"input": WALK_IN}, token=staff)) == ["CONFLICT"]
    stale = {"id": "nobody", "expectedVersion": 1, "phone": "+1 415 555 0100"}
    assert error_codes(s.api.gql(UPDATE, {"input": stale}, token=staff)) == ["NOT_FOUND"]
    assert [e["action"] for e in events(s)] == ["registerDonor"]


def test_single_item_writes_and_writeless_mutations_are_audited(stack_: Stack) -> None:
    s = stack_
    admin = s.api.tokens("Admins", sub="admin-1")
    threshold = {"siteId": "site-north", "bloodGroup": "O_NEG", "component": "RED_CELLS", "parLevel": 12}
    assert (
        data(s.api.gql(THRESHOLD, {"input": threshold}, token=admin))["setStockThreshold"]["threshold"] == 12
    )
    template = {"name": "Thanks", "subject": "Thank you", "text": "Thank you for giving."}
    template_id = data(s.api.gql(TEMPLATE, {"input": template}, token=admin))["createEmailTemplate"]["id"]
    donor = data(s.api.gql(REGISTER, {"input": WALK_IN}, token=admin))["registerDonor"]
    upload = {"donorId": donor["id"], "kind": "CONSENT_FORM", "contentType": "application/pdf"}
    body = s.api.gql(UPLOAD, {"input": upload}, token=admin)
    assert "errors" not in body, body
    found = {e["action"]: (e["targetType"], e["targetId"]) for e in events(s)}
    assert found == {
        "setStockThreshold": ("StockLevel", "site-north:O_NEG:RED_CELLS"),
        "createEmailTemplate": ("EmailTemplate", template_id),
        "registerDonor": ("Donor", donor["id"]),
        "requestDonorDocumentUpload": ("Donor", donor["id"]),  # wrote nothing: recorded on its own
    }


def test_inventory_transactions_carry_the_record(stack_: Stack) -> None:
    """A blood request and its cancellation: each mutation's record names the request."""
    s = stack_
    staff = s.api.tokens("Staff", sub="staff-1")
    order = {"bloodGroup": "O_NEG", "component": "RED_CELLS", "quantity": 2, "hospitalId": "hosp-st-mary"}
    created = data(s.api.gql(CREATE_REQUEST, {"input": order}, token=staff))["createBloodRequest"]
    data(s.api.gql(CANCEL_REQUEST, {"id": created["id"]}, token=staff))
    # Cancelling again changes nothing and succeeds: it is recorded too (on its own).
    data(s.api.gql(CANCEL_REQUEST, {"id": created["id"]}, token=staff))
    trail = events(s, {"targetType": {"eq": "BloodRequest"}, "targetId": {"eq": created["id"]}})
    assert [e["action"] for e in trail] == ["cancelBloodRequest", "cancelBloodRequest", "createBloodRequest"]


def test_admins_read_the_trail_by_actor_record_action_and_time(stack_: Stack) -> None:
    s = stack_
    first = data(s.api.gql(REGISTER, {"input": WALK_IN}, token=s.api.tokens("Staff", sub="staff-1")))
    second_input = {**WALK_IN, "email": "bo@example.org"}
    second = data(s.api.gql(REGISTER, {"input": second_input}, token=s.api.tokens("Staff", sub="staff-2")))
    donor = first["registerDonor"]
    update = {"id": donor["id"], "expectedVersion": donor["version"], "phone": "+1 415 555 0100"}
    data(s.api.gql(UPDATE, {"input": update}, token=s.api.tokens("Staff", sub="staff-2")))

    everything = events(s)
    assert [e["action"] for e in everything] == ["updateDonor", "registerDonor", "registerDonor"]
    assert [e["actor"] for e in events(s, {"actor": {"eq": "staff-2"}})] == ["staff-2", "staff-2"]
    by_record = events(s, {"targetType": {"eq": "Donor"}, "targetId": {"eq": donor["id"]}})
    assert [e["action"] for e in by_record] == ["updateDonor", "registerDonor"]
    registered = events(s, {"action": {"eq": "registerDonor"}})
    assert {e["targetId"] for e in registered} == {donor["id"], second["registerDonor"]["id"]}
    assert (
        events(s, {"actor": {"eq": "staff-2"}, "action": {"eq": "updateDonor"}})[0]["targetId"] == donor["id"]
    )

    newest = everything[0]["at"]
    assert [e["id"] for e in events(s, {"at": {"ge": newest}})] == [everything[0]["id"]]
    assert len(events(s, {"at": {"le": newest}})) == 3
    from datetime import datetime

    before = (datetime.fromisoformat(everything[-1]["at"]) - timedelta(seconds=1)).isoformat()
    assert events(s, {"at": {"le": before}}) == []

    # Pages: one at a time, newest first, each record once.
    seen: list[str] = []
    token = None
    admin = s.api.tokens("Admins")
    while True:
        page = data(s.api.gql(LIST, {"limit": 1, "nextToken": token}, token=admin))["listAuditEvents"]
        seen += [e["id"] for e in page["items"]]
        token = page["nextToken"]
        if token is None:
            break
    assert seen == [e["id"] for e in everything]


def test_the_trail_is_for_admins_and_bad_filters_say_why(stack_: Stack) -> None:
    s = stack_
    for groups in (("Staff",), ("Donors",), ("Hospitals",)):
        assert error_codes(s.api.gql(LIST, {}, token=s.api.tokens(*groups))) == ["FORBIDDEN"]
    assert error_codes(s.api.gql(LIST, {})) == ["UNAUTHENTICATED"]
    admin = s.api.tokens("Admins")
    bad: list[dict[str, Any]] = [
        {"targetId": {"eq": "x"}},
        {"actor": {"ne": "x"}},
        {"action": {"eq": "drop table"}},
        {"actor": {"eq": "a"}, "targetType": {"eq": "Donor"}, "targetId": {"eq": "x"}},
        {"at": {"ge": "2026-12-02T00:00:00Z", "le": "2026-12-01T00:00:00Z"}},
    ]
    for filter_ in bad:
        body = s.api.gql(LIST, {"filter": filter_}, token=admin)
        assert error_codes(body) == ["BAD_USER_INPUT"], (filter_, body)
    assert error_codes(s.api.gql(LIST, {"limit": 0}, token=admin)) == ["BAD_USER_INPUT"]
    assert error_codes(s.api.gql(LIST, {"nextToken": "forged"}, token=admin)) == ["BAD_USER_INPUT"]
