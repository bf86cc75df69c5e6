"""onShortageAlert over graphql-transport-ws and graphql-ws on /graphql (Starlette's test client)."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from tests.conftest import Api, TokenFactory, World

SUBSCRIBE = """subscription($site: ID, $group: BloodGroup) {
  onShortageAlert(siteId: $site, bloodGroup: $group) {
    id siteId bloodGroup component status previousStatus available threshold daysOfSupply raisedAt
  }
}"""
SET_PAR = """mutation($site: ID!, $group: BloodGroup!, $par: Int!) {
  setStockThreshold(input: {siteId: $site, bloodGroup: $group, component: RED_CELLS, parLevel: $par}) {
    status
  }
}"""


def connect(client: TestClient, token: str | None, protocol: str = "graphql-transport-ws") -> Any:
    ws = client.websocket_connect("/graphql", subprotocols=[protocol]).__enter__()
    ws.send_json({"type": "connection_init", "payload": {"Authorization": token} if token else {}})
    return ws


def start(ws: Any, variables: dict[str, Any], protocol: str = "graphql-transport-ws") -> None:
    kind = "subscribe" if protocol == "graphql-transport-ws" else "start"
    ws.send_json({"id": "1", "type": kind, "payload": {"query": SUBSCRIBE, "variables": variables}})


def set_par(api: Api, tokens: TokenFactory, site: str, group: str, par: int) -> None:
    body = api.gql(SET_PAR, {"site": site, "group": group, "par": par}, token=tokens("Admins"))
    assert "errors" not in body, body


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
def test_a_subscriber_gets_the_full_alert_of_a_crossing_it_asked_for_and_no_other(
    api: Api, tokens: TokenFactory, world: World, protocol: str
) -> None:
    ws = connect(api.client, tokens("Hospitals", sub="hospital-user"), protocol)
    try:
        assert ws.receive_json()["type"] == "connection_ack"
        start(ws, {"site": "site-north", "group": "O_NEG"}, protocol)
        set_par(api, tokens, "site-south", "O_NEG", 4)  # another site: filtered out on the server
        set_par(api, tokens, "site-north", "A_POS", 4)  # another group: filtered out
        set_par(api, tokens, "site-north", "O_NEG", 4)  # none on the shelf, par 4: RED
        message = ws.receive_json()
        assert message["type"] == ("next" if protocol == "graphql-transport-ws" else "data")
        alert = message["payload"]["data"]["onShortageAlert"]
        assert {k: alert[k] for k in ("siteId", "bloodGroup", "component", "status", "previousStatus")} == {
            "siteId": "site-north",
            "bloodGroup": "O_NEG",
            "component": "RED_CELLS",
            "status": "RED",
            "previousStatus": "GREEN",
        }
        assert (alert["available"], alert["threshold"], alert["daysOfSupply"]) == (0, 4, None)
        assert alert["id"]
        assert alert["raisedAt"]
    finally:
        ws.__exit__(None, None, None)
    # Three crossings, three alerts to the topic; the same threshold again is no crossing.
    set_par(api, tokens, "site-north", "O_NEG", 4)
    assert [(a.site_id, a.blood_group.value) for a in world.alerts.published] == [
        ("site-south", "O_NEG"),
        ("site-north", "A_POS"),
        ("site-north", "O_NEG"),
    ]


def test_subscribing_needs_a_user_who_may_see_stock(api: Api, tokens: TokenFactory) -> None:
    for token, code in ((None, "UNAUTHENTICATED"), (tokens("Donors"), "FORBIDDEN")):
        ws = connect(api.client, token)
        try:
            assert ws.receive_json()["type"] == "connection_ack"
            start(ws, {})
            message = ws.receive_json()
            errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
            assert [e["extensions"]["code"] for e in errors] == [code]
        finally:
            ws.__exit__(None, None, None)


def test_a_bad_token_is_refused_at_connection(api: Api, tokens: TokenFactory) -> None:
    expired = tokens("Staff", expires_in=-120)
    with api.client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        ws.send_json({"type": "connection_init", "payload": {"Authorization": expired}})
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 4403


def test_the_subscription_ends_unauthenticated_when_the_token_expires(api: Api, tokens: TokenFactory) -> None:
    ws = connect(api.client, tokens("Staff", expires_in=-25))  # within the 30 s leeway: accepted, then due
    try:
        assert ws.receive_json()["type"] == "connection_ack"
        start(ws, {})
        message = ws.receive_json()
        errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
        assert errors[0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert ws.receive_json() == {"id": "1", "type": "complete"}  # the subscription is closed
    finally:
        ws.__exit__(None, None, None)
