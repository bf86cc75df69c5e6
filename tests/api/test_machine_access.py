"""Hospital integrations without a person: Cognito's client-credentials grant, end to end.

- Through the GraphQL API (fakes, tokens signed with the test pool's key): a registered client's token
  orders for its own hospital only, never reads donors (FORBIDDEN), and is UNAUTHENTICATED once the
  client is revoked or if it was never registered.
- Against the real engines (a moto server and DynamoDB Local): ``bloodbank hospital-client
  create|list|revoke`` makes the app client in the pool and the membership in the table, the local
  ``/oauth2/token`` issues tokens for it as Cognito's domain does (and refuses what Cognito refuses),
  and the API's own verifier, with moto's JWKS, takes them until the client is revoked.
"""

from __future__ import annotations

import base64
import json
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from bloodbank import cli
from bloodbank.adapters import provisioning
from bloodbank.adapters.jwks import HttpKeySetSource
from bloodbank.domain.identity import Group
from bloodbank.errors import Unauthenticated
from bloodbank.local import oauth, stack
from bloodbank.services.authn import Authenticator, KeySet, TokenVerifier
from bloodbank.settings import DEFAULT_MACHINE_SCOPE
from bloodbank.storage.directory import DynamoDirectory
from tests.conftest import REGION, Api, World, error_codes

MACHINE = "4riverside0night0orders000"
ORDER = """mutation($input: CreateBloodRequestInput!) {
  createBloodRequest(input: $input) { id hospitalId status quantity }
}"""
GET_REQUEST = "query($id: ID!) { getBloodRequest(id: $id) { id hospitalId } }"
DONORS = "{ listDonors(limit: 5) { items { id } } }"
STOCK = '{ stockLevels(siteId: "site-south") { siteId bloodGroup available status } }'


def machine_token(api: Api, client: str = MACHINE) -> str:
    return api.tokens(
        sub=client,
        client_id=client,
        extra={"scope": DEFAULT_MACHINE_SCOPE, "version": 2},
        drop=("username", "cognito:groups"),
    )


def order(api: Api, token: str, **values: Any) -> dict[str, Any]:
    payload = {"bloodGroup": "O_POS", "component": "RED_CELLS", "quantity": 1, **values}
    return api.gql(ORDER, {"input": payload}, token=token)


# --- through the GraphQL API ----------------------------------------------------------------------------
def test_a_registered_client_orders_for_its_own_hospital_only_and_never_reads_donors(
    api: Api, world: World
) -> None:
    world.directory.memberships[MACHINE] = "hosp-riverside"
    token = machine_token(api)
    created = order(api, token)
    assert "errors" not in created, created
    request = created["data"]["createBloodRequest"]
    assert (request["hospitalId"], request["status"]) == ("hosp-riverside", "PENDING")
    assert error_codes(order(api, token, hospitalId="hosp-riverside")) == []
    assert error_codes(order(api, token, hospitalId="hosp-st-mary")) == ["FORBIDDEN"]

    seen = api.gql(GET_REQUEST, {"id": request["id"]}, token=token)
    assert seen["data"]["getBloodRequest"] == {"id": request["id"], "hospitalId": "hosp-riverside"}
    other = order(api, api.tokens("Hospitals", sub="hospital-user"))  # a St Mary's user
    hidden = api.gql(GET_REQUEST, {"id": other["data"]["createBloodRequest"]["id"]}, token=token)
    assert hidden["data"]["getBloodRequest"] is None
    assert "errors" not in api.gql(STOCK, token=token)

    refused = api.gql(DONORS, token=token)
    assert error_codes(refused) == ["FORBIDDEN"]
    assert refused["data"] is None or refused["data"].get("listDonors") is None


def test_a_revoked_or_unregistered_client_is_unauthenticated_not_forbidden(api: Api, world: World) -> None:
    world.directory.memberships[MACHINE] = "hosp-riverside"
    token = machine_token(api)
    assert "errors" not in api.gql(STOCK, token=token)
    del world.directory.memberships[MACHINE]  # revoked
    for body in (api.gql(STOCK, token=token), order(api, token), api.gql(DONORS, token=token)):
        assert error_codes(body) == ["UNAUTHENTICATED"]
        [error] = body["errors"]
        assert "this app client is not registered to a hospital" in error["message"]
        assert token not in json.dumps(body)
    never = api.gql(STOCK, token=machine_token(api, "5never0registered0client00"))
    assert error_codes(never) == ["UNAUTHENTICATED"]
    assert not any(r for r in world.inventory.requests_by_id.values() if r.hospital_id == "hosp-riverside")


def test_a_foreign_client_without_the_scope_is_refused_as_before(api: Api) -> None:
    token = api.tokens(sub=MACHINE, client_id=MACHINE, drop=("username", "cognito:groups", "scope"))
    body = api.gql(STOCK, token=token)
    assert error_codes(body) == ["UNAUTHENTICATED"]
    assert "another app client" in body["errors"][0]["message"]


# --- against a moto server and DynamoDB Local -----------------------------------------------------------
@dataclass
class Local:
    state: Path
    info: stack.StackInfo
    issuer: oauth.ClientCredentialsIssuer
    endpoint: TestClient
    authenticator: Authenticator

    def cli(self, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = cli.main([*args, "--data-dir", str(self.state)])
        out, err = capsys.readouterr()
        return code, out, err

    def token(self, client_id: str, secret: str, **form: str) -> Any:
        basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        return self.endpoint.post(
            oauth.TOKEN_PATH,
            data={"grant_type": "client_credentials", **form},
            headers={"Authorization": f"Basic {basic}"},
        )

    def clients(self) -> set[str]:
        listed = provisioning.list_app_clients(self.info.aws_endpoint, REGION, self.info.user_pool_id)
        return {c.client_id for c in listed}


@pytest.fixture
def local(
    moto_server: str, dynamodb_local: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Local]:
    # The CLI sets the local stack's dummy credentials; put the tests' back afterwards.
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION"):
        monkeypatch.setenv(name, "testing" if name != "AWS_REGION" else REGION)
    label = uuid.uuid4().hex[:10]
    pool = provisioning.ensure_user_pool(moto_server, REGION, f"machine-{label}")
    table = f"bloodbank-machine-{label}"
    stack.open_table(dynamodb_local, REGION, table)
    stack.load_reference_data()
    info = stack.StackInfo(
        region=REGION,
        table_name=table,
        dynamodb_endpoint=dynamodb_local,
        aws_endpoint=moto_server,
        user_pool_id=pool.pool_id,
        client_id=pool.client_id,
        api_url="http://127.0.0.1:9/graphql",
        token_url="http://testserver/oauth2/token",
    )
    state = tmp_path / "state"
    stack.write_info(state, info)
    issuer = oauth.ClientCredentialsIssuer(moto_server, REGION, pool.pool_id)

    async def other(_request: Any) -> PlainTextResponse:
        return PlainTextResponse("the app")

    app = oauth.with_token_endpoint(Starlette(routes=[Route("/{path:path}", other)]), issuer)
    verifier = TokenVerifier(
        KeySet(HttpKeySetSource(f"{moto_server}/{pool.pool_id}/.well-known/jwks.json")),
        issuer.issuer,
        frozenset({pool.client_id}),
        machine_scope=DEFAULT_MACHINE_SCOPE,
    )
    with TestClient(app) as endpoint:
        yield Local(state, info, issuer, endpoint, Authenticator(verifier, DynamoDirectory()))


def test_create_issue_verify_list_and_revoke_a_hospital_client(
    local: Local, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="bloodbank")  # our logs (botocore debug-logs bodies)
    code, out, err = local.cli(
        capsys,
        "hospital-client",
        "create",
        "--hospital",
        "hosp-riverside",
        "--name",
        "night orders",
        "--json",
    )
    assert code == 0, err
    made = json.loads(out)
    client_id, secret = made["client_id"], made["client_secret"]
    assert made["hospital_id"] == "hosp-riverside"
    assert (made["scope"], made["token_url"]) == ("bloodbank/hospital", "http://testserver/oauth2/token")
    described = provisioning.describe_app_client(
        local.info.aws_endpoint, REGION, local.info.user_pool_id, client_id
    )
    assert described is not None
    assert described["ClientSecret"] == secret
    assert described["ClientName"] == "hospital-hosp-riverside-night orders"
    assert described["AllowedOAuthFlows"] == ["client_credentials"]
    assert described["AllowedOAuthScopes"] == ["bloodbank/hospital"]
    assert described["AllowedOAuthFlowsUserPoolClient"] is True
    assert described["EnableTokenRevocation"] is True
    assert (described["AccessTokenValidity"], described["TokenValidityUnits"]) == (
        60,
        {"AccessToken": "minutes"},
    )
    assert DynamoDirectory().hospital_of(client_id) == "hosp-riverside"
    resource = provisioning.client("cognito-idp", local.info.aws_endpoint, REGION).describe_resource_server(
        UserPoolId=local.info.user_pool_id, Identifier="bloodbank"
    )["ResourceServer"]
    assert [s["ScopeName"] for s in resource["Scopes"]] == ["hospital"]

    # The human form prints the secret once; list shows only hospital clients, without secrets.
    code, human, _ = local.cli(capsys, "hospital-client", "create", "--hospital", "hosp-kings")
    assert code == 0
    second = next(line.split("=", 1)[1] for line in human.splitlines() if line.startswith("CLIENT_ID="))
    second_secret = next(
        line.split("=", 1)[1] for line in human.splitlines() if line.startswith("CLIENT_SECRET=")
    )
    assert human.count(second_secret) == 1
    assert "TOKEN_URL=http://testserver/oauth2/token" in human
    code, listed, _ = local.cli(capsys, "hospital-client", "list", "--json")
    assert {(c["client_id"], c["hospital_id"]) for c in json.loads(listed)} == {
        (client_id, "hosp-riverside"),
        (second, "hosp-kings"),
    }
    assert secret not in listed
    code, kings, _ = local.cli(capsys, "hospital-client", "list", "--hospital", "hosp-kings")
    assert (code, kings.split()) == (0, [second, "hosp-kings", "hospital-hosp-kings-integration"])

    # A token from the token endpoint, verified by the API's verifier with moto's JWKS.
    answer = local.token(client_id, secret, scope="bloodbank/hospital")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["token_type"], body["expires_in"]) == ("Bearer", 3600)
    assert answer.headers["cache-control"] == "no-store"
    identity = local.authenticator.identify(f"Bearer {body['access_token']}")
    assert identity is not None
    assert (identity.sub, identity.hospital_id) == (client_id, "hosp-riverside")
    assert identity.groups == frozenset({Group.HOSPITALS})
    assert "username" not in identity.claims
    assert identity.claims["scope"] == "bloodbank/hospital"
    assert identity.claims["iss"] == f"https://cognito-idp.{REGION}.amazonaws.com/{local.info.user_pool_id}"
    # The form-field way of sending the credentials, and no scope: every scope the client may have.
    by_form = local.endpoint.post(
        oauth.TOKEN_PATH,
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    )
    assert by_form.status_code == 200, by_form.text
    assert local.authenticator.identify(by_form.json()["access_token"]) is not None

    # Revoked: the membership and the app client are gone; its unexpired token is refused.
    code, out, err = local.cli(capsys, "hospital-client", "revoke", "--client-id", client_id)
    assert code == 0, err
    assert "Revoked" in out
    assert DynamoDirectory().hospital_of(client_id) is None
    assert client_id not in local.clients()
    with pytest.raises(Unauthenticated, match="not registered to a hospital"):
        local.authenticator.identify(body["access_token"])
    assert local.token(client_id, secret).json() == {"error": "invalid_client"}
    code, listed, _ = local.cli(capsys, "hospital-client", "list", "--json")
    assert [c["client_id"] for c in json.loads(listed)] == [second]

    logged = caplog.text
    for credential in (secret, second_secret, body["access_token"]):
        assert credential not in logged
        assert credential not in err


def test_unknown_hospital_creates_nothing_and_only_hospital_clients_can_be_revoked(
    local: Local, capsys: pytest.CaptureFixture[str]
) -> None:
    before = local.clients()
    code, out, err = local.cli(capsys, "hospital-client", "create", "--hospital", "hosp-nowhere")
    assert code == 2
    assert "Unknown hospital 'hosp-nowhere'; nothing was created" in err
    assert "hosp-st-mary" in err
    assert out == ""
    assert local.clients() == before
    code, _, err = local.cli(capsys, "hospital-client", "revoke", "--client-id", local.info.client_id)
    assert code == 2
    assert "not registered to a hospital; nothing was revoked" in err
    assert local.info.client_id in local.clients()  # the web app's client is untouched
    code, _, err = local.cli(
        capsys, "hospital-client", "create", "--hospital", "hosp-kings", "--token-minutes", "2"
    )
    assert (code, local.clients()) == (2, before)
    assert "--token-minutes" in err


def test_the_token_endpoint_answers_as_cognito_does(local: Local) -> None:
    idp = provisioning.client("cognito-idp", local.info.aws_endpoint, REGION)
    pool = local.info.user_pool_id
    made = provisioning.create_machine_client(
        local.info.aws_endpoint, REGION, pool, "t", "bloodbank/hospital"
    )
    secret = made.secret
    # A confidential client without the client-credentials flow (e.g. the hospital users' SRP client).
    srp = idp.create_user_pool_client(
        UserPoolId=pool, ClientName="srp", GenerateSecret=True, ExplicitAuthFlows=["ALLOW_USER_SRP_AUTH"]
    )["UserPoolClient"]

    def form(**fields: str) -> Any:
        return local.endpoint.post(oauth.TOKEN_PATH, data=fields)

    cases = [
        (local.token(made.client_id, "wrong-secret"), 401, "invalid_client"),
        (local.token("1unknown0client0000000000", secret), 401, "invalid_client"),
        (local.token(local.info.client_id, ""), 401, "invalid_client"),  # the public web client
        (local.token(srp["ClientId"], srp["ClientSecret"]), 400, "unauthorized_client"),
        (local.token(made.client_id, secret, scope="openid"), 400, "invalid_scope"),
        (local.token(made.client_id, secret, scope="bloodbank/admin"), 400, "invalid_scope"),
        (local.token(made.client_id, secret, scope="bloodbank/hospital openid"), 400, "invalid_scope"),
        (form(grant_type="client_credentials", client_id=made.client_id), 401, "invalid_client"),
        (
            form(grant_type="password", client_id=made.client_id, client_secret=secret),
            400,
            "unsupported_grant_type",
        ),
        (form(client_id=made.client_id, client_secret=secret), 400, "invalid_request"),
        (
            local.endpoint.post(
                oauth.TOKEN_PATH,
                json={
                    "grant_type": "client_credentials",
                    "client_id": made.client_id,
                    "client_secret": secret,
                },
            ),
            400,
            "invalid_request",
        ),
        (
            local.endpoint.post(
                oauth.TOKEN_PATH,
                content=f"grant_type=client_credentials&grant_type=x&client_id={made.client_id}&client_secret={secret}",
                headers={"content-type": "application/x-www-form-urlencoded"},
            ),
            400,
            "invalid_request",
        ),
        (
            local.endpoint.post(
                oauth.TOKEN_PATH,
                content=b"a=" + b"x" * 9000,
                headers={"content-type": "application/x-www-form-urlencoded"},
            ),
            400,
            "invalid_request",
        ),
    ]
    for answer, status, error in cases:
        assert (answer.status_code, answer.json()) == (status, {"error": error}), answer.request.content[:80]
        assert secret not in answer.text
    assert local.token(made.client_id, "wrong").headers["www-authenticate"].startswith("Basic")
    assert local.endpoint.get(oauth.TOKEN_PATH).status_code == 405
    assert local.endpoint.get("/graphql").text == "the app"  # everything else goes to the app

    issued = local.issuer.issue(made.client_id, secret, None)
    assert "eyJ" not in repr(issued)
    token = issued.access_token
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert (header["alg"], header["kid"]) == ("RS256", "dummy")
    # No membership yet: the signature, issuer and shape pass, the API still says who to ask.
    with pytest.raises(Unauthenticated, match="not registered to a hospital"):
        local.authenticator.identify(token)
