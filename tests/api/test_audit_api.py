"""The audit trail through HTTP with the fakes: who, what and which record, for hospital orders too."""

from __future__ import annotations

from tests.conftest import Api, World, error_codes

CREATE = "mutation($input: CreateBloodRequestInput!) { createBloodRequest(input: $input) { id } }"
LIST = (
    """query { listAuditEvents { items { actor groups action targetType targetId hospitalId requestId } } }"""
)


def test_a_hospital_order_is_recorded_with_the_hospital(api: Api, world: World) -> None:
    order = {"bloodGroup": "O_NEG", "component": "RED_CELLS", "quantity": 2}
    body = api.gql(CREATE, {"input": order}, token=api.tokens("Hospitals", sub="hospital-user"))
    assert "errors" not in body, body
    assert error_codes(
        api.gql(
            CREATE, {"input": {**order, "quantity": 0}}, token=api.tokens("Hospitals", sub="hospital-user")
        )
    ) == ["BAD_USER_INPUT"]
    items = api.gql(LIST, token=api.tokens("Admins"))["data"]["listAuditEvents"]["items"]
    [event] = items
    assert event["actor"] == "hospital-user"
    assert event["groups"] == ["Hospitals"]
    assert event["action"] == "createBloodRequest"
    assert event["hospitalId"] == "hosp-st-mary"
    assert event["requestId"]
    # The fakes write no transaction, so the record was written on its own, after the change.
    assert len(world.container.audit.events.events) == 1  # type: ignore[attr-defined]
