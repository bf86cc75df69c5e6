"""Authentication and field authorization over HTTP: bad credentials stop a request before any resolver.

Each bad token is sent with a query and with a mutation. The answer is one UNAUTHENTICATED error with
AppSync's ``UnauthorizedException`` type and ``data: null``; the donor repository saw nothing, and the
directory was asked nothing (authentication only asks it for a *valid* hospital token).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import KID, Api, SigningKey, TokenFactory, World, error_codes

LIST_DONORS = "{ listDonors { items { id } } }"
GET_DONOR = 'query { getDonor(id: "donor-000001") { id } }'
REGISTER = """
mutation Register($input: RegisterDonorInput!) {
  registerDonor(input: $input) { id firstName }
}
"""
REGISTER_INPUT = {
    "input": {"firstName": "Ada", "lastName": "Okafor", "email": "ada@example.org", "siteId": "site-north"}
}

OPERATIONS = {
    "query-listDonors": (LIST_DONORS, None),
    "mutation-registerDonor": (REGISTER, REGISTER_INPUT),
}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def claims_of(token: str) -> dict[str, Any]:
    return json.loads(unb64url(token.split(".")[1]))


def encode(value: object) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def alg_none(tokens: TokenFactory, key: SigningKey, foreign: SigningKey) -> str:
    claims = claims_of(tokens("Admins"))
    return f"{encode({'alg': 'none', 'typ': 'JWT', 'kid': KID})}.{encode(claims)}."


def hs256_with_public_key(der: bool) -> Callable[[TokenFactory, SigningKey, SigningKey], str]:
    def make(tokens: TokenFactory, key: SigningKey, foreign: SigningKey) -> str:
        signing_input = (
            f"{encode({'alg': 'HS256', 'typ': 'JWT', 'kid': KID})}.{encode(claims_of(tokens('Admins')))}"
        )
        secret = key.public_der if der else key.public_pem
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{b64url(mac)}"

    return make


def tampered_groups(tokens: TokenFactory, key: SigningKey, foreign: SigningKey) -> str:
    header, payload, signature = tokens("Hospitals", sub="hospital-user").split(".")
    claims = json.loads(unb64url(payload))
    claims["cognito:groups"] = ["Admins"]
    return f"{header}.{encode(claims)}.{signature}"


BAD_CREDENTIALS: dict[str, Callable[[TokenFactory, SigningKey, SigningKey], str]] = {
    "alg-none": alg_none,
    "hs256-public-key-pem": hs256_with_public_key(der=False),
    "hs256-public-key-der": hs256_with_public_key(der=True),
    "foreign-key-valid-kid": lambda t, k, f: t("Admins", key=f.private_pem, kid=KID),
    "unknown-kid": lambda t, k, f: t("Admins", kid="rotated-away"),
    "expired": lambda t, k, f: t("Staff", expires_in=-120),
    "missing-exp": lambda t, k, f: t("Staff", drop=("exp",)),
    "wrong-issuer": lambda t, k, f: t(
        "Staff", issuer="https://cognito-idp.us-east-1.amazonaws.com/us-east-1_EVIL"
    ),
    "access-token-other-client": lambda t, k, f: t("Staff", client_id="other-app-client"),
    "id-token-other-aud": lambda t, k, f: t("Staff", token_use="id", client_id="other-app-client"),
    "refresh-token-use": lambda t, k, f: t("Staff", token_use="refresh"),
    "tampered-groups": tampered_groups,
    "header-bearer-alone": lambda t, k, f: "Bearer",
    "header-basic": lambda t, k, f: "Basic YWRtaW46cGFzc3dvcmQ=",
    "header-three-dots": lambda t, k, f: "...",
    "header-not-base64": lambda t, k, f: "Bearer %%%.***.!!!",
    "header-20-kb": lambda t, k, f: "Bearer " + "a" * 20_000 + ".b.c",
}


@pytest.mark.parametrize(("operation", "variables"), OPERATIONS.values(), ids=OPERATIONS.keys())
@pytest.mark.parametrize("make", BAD_CREDENTIALS.values(), ids=BAD_CREDENTIALS.keys())
def test_bad_credentials_stop_the_request_before_any_resolver(
    make: Callable[[TokenFactory, SigningKey, SigningKey], str],
    operation: str,
    variables: dict[str, Any] | None,
    api: Api,
    world: World,
    tokens: TokenFactory,
    signing_key: SigningKey,
    foreign_key: SigningKey,
) -> None:
    credentials = make(tokens, signing_key, foreign_key)
    body = api.gql(operation, variables, token=credentials)
    assert body["data"] is None
    assert error_codes(body) == ["UNAUTHENTICATED"]
    error = body["errors"][0]
    assert error["extensions"]["errorType"] == "UnauthorizedException"
    assert credentials not in json.dumps(body)
    assert world.donors.calls == []
    assert world.donors.donors == {}
    assert world.directory.calls == []


def test_bad_token_in_a_multi_field_query_runs_none_of_the_fields(
    api: Api, world: World, tokens: TokenFactory, foreign_key: SigningKey
) -> None:
    forged = tokens("Admins", key=foreign_key.private_pem, kid=KID)
    body = api.gql("{ listSites { id } listHospitals { id } listDonors { items { id } } }", token=forged)
    assert body["data"] is None
    assert error_codes(body) == ["UNAUTHENTICATED"]
    assert world.directory.calls == []
    assert world.donors.calls == []


def test_bad_token_over_get_is_refused_too(api: Api, world: World, tokens: TokenFactory) -> None:
    response = api.client.get(
        "/graphql",
        params={"query": LIST_DONORS},
        headers={"Authorization": f"Bearer {tokens('Staff', expires_in=-120)}", "Accept": "application/json"},
    )
    assert response.status_code == 200
    assert error_codes(response.json()) == ["UNAUTHENTICATED"]
    assert world.donors.calls == []


# --- accepted forms (controls: the same requests do reach the repository with a good token) ------------
@pytest.mark.parametrize(
    "header",
    ["{tok}", "Bearer {tok}", "bearer {tok}", "BEARER {tok}", "Bearer  {tok}"],
    ids=["raw-amplify", "Bearer", "bearer", "BEARER", "extra-space"],
)
def test_good_token_in_any_accepted_form_reaches_the_resolver(
    header: str, api: Api, world: World, tokens: TokenFactory
) -> None:
    body = api.gql(LIST_DONORS, token=header.format(tok=tokens("Staff")))
    assert body == {"data": {"listDonors": {"items": []}}}
    assert world.donors.calls == [("list", "")]


def test_id_token_of_our_client_is_accepted(api: Api, world: World, tokens: TokenFactory) -> None:
    body = api.gql(LIST_DONORS, token=tokens("Admins", token_use="id"))
    assert "errors" not in body
    assert world.donors.calls == [("list", "")]


def test_staff_mutation_with_a_good_token_writes(api: Api, world: World, tokens: TokenFactory) -> None:
    body = api.gql(REGISTER, REGISTER_INPUT, token=tokens("Staff"))
    assert body["data"]["registerDonor"]["firstName"] == "Ada"
    assert [name for name, _ in world.donors.calls] == ["create"]


# --- field authorization -------------------------------------------------------------------------------
FIELD_CASES = {
    "anonymous-listDonors": (None, LIST_DONORS, None, "UNAUTHENTICATED"),
    "anonymous-getDonor": (None, GET_DONOR, None, "UNAUTHENTICATED"),
    "anonymous-registerDonor": (None, REGISTER, REGISTER_INPUT, "UNAUTHENTICATED"),
    "anonymous-listSites": (None, "{ listSites { id } }", None, "UNAUTHENTICATED"),
    "empty-header-listDonors": ("", LIST_DONORS, None, "UNAUTHENTICATED"),
    "hospital-listDonors": ("Hospitals", LIST_DONORS, None, "FORBIDDEN"),
    "hospital-getDonor": ("Hospitals", GET_DONOR, None, "FORBIDDEN"),
    "hospital-registerDonor": ("Hospitals", REGISTER, REGISTER_INPUT, "FORBIDDEN"),
    "donor-listDonors": ("Donors", LIST_DONORS, None, "FORBIDDEN"),
    "no-groups-listDonors": ("<none>", LIST_DONORS, None, "FORBIDDEN"),
    "unknown-group-listDonors": ("SuperUsers", LIST_DONORS, None, "FORBIDDEN"),
}


@pytest.mark.parametrize(
    ("group", "operation", "variables", "code"), FIELD_CASES.values(), ids=FIELD_CASES.keys()
)
def test_field_authorization(
    group: str | None,
    operation: str,
    variables: dict[str, Any] | None,
    code: str,
    api: Api,
    world: World,
    tokens: TokenFactory,
) -> None:
    if group is None:
        token = None
    elif group == "":
        token = ""
    elif group == "<none>":
        token = tokens(sub="hospital-user")
    else:
        token = tokens(group, sub="hospital-user")
    body = api.gql(operation, variables, token=token)
    assert error_codes(body) == [code]
    error = body["errors"][0]
    assert error["extensions"]["errorType"] == (
        "UnauthorizedException" if code == "UNAUTHENTICATED" else "Unauthorized"
    )
    assert error["message"]
    assert world.donors.calls == []
    assert world.donors.donors == {}
    # Only a valid hospital token costs a lookup (of the caller's hospital), and nothing else is read.
    expected = [("hospital_of", "hospital-user")] if group == "Hospitals" else []
    assert world.directory.calls == expected


def test_forbidden_message_names_the_field(api: Api, tokens: TokenFactory) -> None:
    body = api.gql(LIST_DONORS, token=tokens("Donors"))
    assert body["errors"][0]["message"] == "Not Authorized to access listDonors on type Query"
    assert body["errors"][0]["path"] == ["listDonors"]


def test_forbidden_field_does_not_hide_the_allowed_ones(api: Api, world: World, tokens: TokenFactory) -> None:
    """Like AppSync: the unauthorized field is null with an error; the others still answer."""
    body = api.gql('{ listSites { id } getDonor(id: "donor-000001") { id } }', token=tokens("Hospitals"))
    assert error_codes(body) == ["FORBIDDEN"]
    assert body["data"]["getDonor"] is None
    assert [s["id"] for s in body["data"]["listSites"]] == ["site-london", "site-north", "site-south"]
    assert world.donors.calls == []


# --- the key set is down -------------------------------------------------------------------------------
def test_key_set_down_is_an_internal_error_with_the_request_id(
    api: Api, world: World, tokens: TokenFactory
) -> None:
    world.keyset.down = True
    response = api.client.post(
        "/graphql", json={"query": LIST_DONORS}, headers={"Authorization": tokens("Staff")}
    )
    assert response.status_code == 200
    body = response.json()
    rid = response.headers["x-request-id"]
    assert rid
    assert body["data"] is None
    assert error_codes(body) == ["INTERNAL_SERVER_ERROR"]
    error = body["errors"][0]
    assert rid in error["message"]
    assert "unreachable" not in response.text
    assert "Traceback" not in response.text
    assert world.donors.calls == []
    assert world.directory.calls == []
    assert world.keyset.fetches == 1


def test_key_set_down_with_a_callers_request_id(api: Api, world: World, tokens: TokenFactory) -> None:
    world.keyset.down = True
    response = api.client.post(
        "/graphql",
        json={"query": REGISTER, "variables": REGISTER_INPUT},
        headers={"Authorization": tokens("Staff"), "x-request-id": "trace-0123456789abcdef"},
    )
    assert response.headers["x-request-id"] == "trace-0123456789abcdef"
    body = response.json()
    assert error_codes(body) == ["INTERNAL_SERVER_ERROR"]
    assert "trace-0123456789abcdef" in body["errors"][0]["message"]
    assert world.donors.calls == []


def test_key_set_down_error_carries_the_request_id_in_extensions(
    api: Api, world: World, tokens: TokenFactory
) -> None:
    world.keyset.down = True
    response = api.client.post(
        "/graphql", json={"query": LIST_DONORS}, headers={"Authorization": tokens("Staff")}
    )
    error = response.json()["errors"][0]
    assert error["extensions"]["requestId"] == response.headers["x-request-id"]


def test_anonymous_request_does_not_need_the_key_set(api: Api, world: World) -> None:
    world.keyset.down = True
    body = api.gql(LIST_DONORS)
    assert error_codes(body) == ["UNAUTHENTICATED"]
    assert world.keyset.fetches == 0


def test_cached_key_keeps_serving_while_the_key_set_is_down(
    api: Api, world: World, tokens: TokenFactory
) -> None:
    assert "errors" not in api.gql(LIST_DONORS, token=tokens("Staff"))
    world.keyset.down = True
    assert "errors" not in api.gql(LIST_DONORS, token=tokens("Staff"))
    assert world.keyset.fetches == 1
