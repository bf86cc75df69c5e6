"""Hospital integrations' client-credentials tokens: which the API accepts, and the Identity they give.

A client-credentials access token (Cognito's OAuth grant for machines) has ``token_use: access``,
``sub`` = ``client_id`` = the app client, a ``scope`` such as ``bloodbank/hospital``, no ``username``
and no ``cognito:groups``. The app client is a hospital's own (not one of ``client_ids``); the API
accepts it only with the machine scope and a membership of a hospital, keyed by the client id.
"""

from __future__ import annotations

from typing import Any

import pytest

from bloodbank.domain.identity import Group
from bloodbank.errors import ServiceUnavailable, Unauthenticated
from bloodbank.fakes import InMemoryDirectory
from bloodbank.services.authn import Authenticator, KeySet, TokenVerifier, is_machine_token
from bloodbank.settings import DEFAULT_MACHINE_SCOPE, Settings, SettingsError
from tests.conftest import CLIENT_ID, ISSUER, SigningKey, TokenFactory, World
from tests.unit.test_authn import hs256, parts

MACHINE = "3hosp0client0for0st0mary0x"  # an app client id: 26 lowercase letters and digits
STRANGER = "9unregistered0app0client00"


def machine(tokens: TokenFactory, client: str = MACHINE, **overrides: Any) -> str:
    """A token as Cognito's /oauth2/token issues it for the client-credentials grant."""
    extra = {"scope": DEFAULT_MACHINE_SCOPE, "version": 2, **overrides.pop("extra", {})}
    drop = ("username", "cognito:groups", *overrides.pop("drop", ()))
    return tokens(sub=client, client_id=client, extra=extra, drop=drop, **overrides)


@pytest.fixture
def authenticator(world: World) -> Authenticator:
    """The container's own authenticator (settings: the default machine scope)."""
    world.directory.memberships[MACHINE] = "hosp-st-mary"
    return world.container.authenticator


def refused(authenticator: Authenticator, token: str) -> Unauthenticated:
    with pytest.raises(Unauthenticated) as caught:
        authenticator.identify(token)
    assert caught.value.code == "UNAUTHENTICATED"
    assert token not in caught.value.message
    return caught.value


def test_a_registered_clients_token_acts_for_its_hospital(
    authenticator: Authenticator, tokens: TokenFactory, world: World
) -> None:
    identity = authenticator.identify(f"Bearer {machine(tokens)}")
    assert identity is not None
    assert (identity.sub, identity.username, identity.token_use) == (MACHINE, f"client:{MACHINE}", "access")
    assert identity.groups == frozenset({Group.HOSPITALS})
    assert identity.hospital_id == "hosp-st-mary"
    assert identity.is_hospital
    assert not identity.is_staff
    assert not identity.is_donor
    assert identity.claims["scope"] == DEFAULT_MACHINE_SCOPE
    assert world.directory.calls == [("hospital_of", MACHINE)]  # one lookup, keyed by the client id


def test_the_machine_scope_may_come_with_other_scopes(
    authenticator: Authenticator, tokens: TokenFactory
) -> None:
    token = machine(tokens, extra={"scope": f"bloodbank/read {DEFAULT_MACHINE_SCOPE} other/thing"})
    identity = authenticator.identify(token)
    assert identity is not None
    assert identity.hospital_id == "hosp-st-mary"


def test_an_unregistered_client_with_the_scope_is_unauthenticated_with_a_clear_message(
    authenticator: Authenticator, tokens: TokenFactory
) -> None:
    error = refused(authenticator, machine(tokens, STRANGER))
    assert "this app client is not registered to a hospital" in error.message
    assert STRANGER not in error.message


def test_a_revoked_client_is_refused_however_long_its_token_would_last(
    authenticator: Authenticator, tokens: TokenFactory, world: World
) -> None:
    token = machine(tokens, expires_in=3600)
    assert authenticator.identify(token) is not None
    del world.directory.memberships[MACHINE]  # what `bloodbank hospital-client revoke` deletes
    assert "not registered to a hospital" in refused(authenticator, token).message


BAD_MACHINE_TOKENS: dict[str, dict[str, Any]] = {
    # No machine scope: a foreign client's token, refused as before (and no directory lookup).
    "user-scope-only": {"extra": {"scope": "aws.cognito.signin.user.admin"}},
    "no-scope": {"drop": ("scope",)},
    "scope-not-a-string": {"extra": {"scope": [DEFAULT_MACHINE_SCOPE]}},
    "similar-scope": {"extra": {"scope": "bloodbank/hospitals"}},
    "scope-prefix": {"extra": {"scope": "xbloodbank/hospital"}},
    # Not the shape of a client-credentials token: a user's token of a foreign client.
    "has-username": {"extra": {"username": "mallory"}},
    "has-cognito-username": {"extra": {"cognito:username": "mallory"}},
    "sub-is-not-the-client": {"sub": "someone-else"},
    "id-token": {"token_use": "id"},
    # python-jose's checks apply to machine tokens as to every other.
    "expired": {"expires_in": -120},
    "no-exp": {"drop": ("exp",)},
    "other-issuer": {"issuer": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_OTHERPOOL"},
    "unknown-kid": {"kid": "not-ours"},
    "no-token-use": {"drop": ("token_use",)},
    "no-client-id": {"drop": ("client_id",)},
}


@pytest.mark.parametrize("change", BAD_MACHINE_TOKENS.values(), ids=BAD_MACHINE_TOKENS.keys())
def test_tokens_that_are_not_a_registered_clients_are_refused(
    change: dict[str, Any], authenticator: Authenticator, tokens: TokenFactory, world: World
) -> None:
    change = dict(change)
    sub = change.pop("sub", MACHINE)
    added = change.pop("extra", {})
    extra = {"scope": DEFAULT_MACHINE_SCOPE, **added}
    drop = (*(n for n in ("username", "cognito:groups") if n not in added), *change.pop("drop", ()))
    token = tokens(sub=sub, client_id=MACHINE, extra=extra, drop=drop, **change)
    error = refused(authenticator, token)
    assert "not registered" not in error.message  # refused by the verifier, as any foreign token
    assert world.directory.calls == []


def test_a_token_signed_by_another_key_is_refused(
    authenticator: Authenticator, tokens: TokenFactory, foreign_key: SigningKey
) -> None:
    refused(authenticator, machine(tokens, key=foreign_key.private_pem))


def test_an_hmac_token_is_refused(
    authenticator: Authenticator, tokens: TokenFactory, signing_key: SigningKey
) -> None:
    header, claims, _ = parts(machine(tokens))
    refused(authenticator, hs256({**header, "alg": "HS256"}, claims, signing_key.public_pem))


def test_a_scope_less_foreign_client_is_refused_as_before(
    authenticator: Authenticator, tokens: TokenFactory
) -> None:
    token = tokens(sub=STRANGER, client_id=STRANGER, drop=("username", "cognito:groups", "scope"))
    assert "issued to another app client" in refused(authenticator, token).message


def test_groups_and_hospital_claims_in_a_machine_token_are_ignored(
    authenticator: Authenticator, tokens: TokenFactory
) -> None:
    token = machine(tokens, extra={"cognito:groups": ["Admins", "Staff"], "custom:hospital_id": "hosp-kings"})
    identity = authenticator.identify(token)
    assert identity is not None
    assert identity.groups == frozenset({Group.HOSPITALS})
    assert identity.hospital_id == "hosp-st-mary"  # the membership, not the claim


def test_our_own_clients_machine_shaped_token_still_needs_a_membership(
    authenticator: Authenticator, tokens: TokenFactory, world: World
) -> None:
    token = machine(tokens, CLIENT_ID)
    assert "not registered to a hospital" in refused(authenticator, token).message
    world.directory.memberships[CLIENT_ID] = "hosp-kings"
    identity = authenticator.identify(token)
    assert identity is not None
    assert (identity.groups, identity.hospital_id) == (frozenset({Group.HOSPITALS}), "hosp-kings")


def test_user_tokens_are_unchanged(authenticator: Authenticator, tokens: TokenFactory) -> None:
    identity = authenticator.identify(tokens("Hospitals", sub="hospital-user"))
    assert identity is not None
    assert (identity.username, identity.hospital_id) == ("user", "hosp-st-mary")
    assert "not registered" not in refused(authenticator, tokens("Staff", client_id=STRANGER)).message


def test_without_a_machine_scope_no_client_credentials_token_is_accepted(
    world: World, tokens: TokenFactory
) -> None:
    directory = InMemoryDirectory(memberships={MACHINE: "hosp-st-mary"})
    verifier = TokenVerifier(KeySet(world.keyset), ISSUER, frozenset({CLIENT_ID}), machine_scope="")
    authenticator = Authenticator(verifier, directory)
    assert "issued to another app client" in refused(authenticator, machine(tokens)).message
    assert directory.calls == []


def test_another_machine_scope_can_be_configured(world: World, tokens: TokenFactory) -> None:
    directory = InMemoryDirectory(memberships={MACHINE: "hosp-st-mary"})
    verifier = TokenVerifier(KeySet(world.keyset), ISSUER, frozenset({CLIENT_ID}), machine_scope="api/orders")
    authenticator = Authenticator(verifier, directory)
    refused(authenticator, machine(tokens))
    identity = authenticator.identify(machine(tokens, extra={"scope": "api/orders"}))
    assert identity is not None
    assert identity.hospital_id == "hosp-st-mary"


def test_a_directory_outage_is_reported_as_an_outage_not_a_bad_token(
    world: World, tokens: TokenFactory
) -> None:
    class Down(InMemoryDirectory):
        def hospital_of(self, user_sub: str) -> str | None:
            raise OSError("the table is unreachable")

    verifier = world.container.authenticator.verifier
    with pytest.raises(ServiceUnavailable) as caught:
        Authenticator(verifier, Down()).sign_in(machine(tokens), "req-1")
    assert "req-1" in caught.value.message


def test_is_machine_token_needs_every_part_of_the_shape() -> None:
    claims = {"token_use": "access", "scope": "bloodbank/hospital", "sub": "c1", "client_id": "c1"}
    assert is_machine_token(claims, "bloodbank/hospital")
    assert not is_machine_token(claims, "")
    assert not is_machine_token({**claims, "sub": "c2"}, "bloodbank/hospital")
    assert not is_machine_token({**claims, "client_id": ""}, "bloodbank/hospital")
    assert not is_machine_token({**claims, "username": "c1"}, "bloodbank/hospital")
    assert not is_machine_token({**claims, "token_use": "id"}, "bloodbank/hospital")


# --- the setting ----------------------------------------------------------------------------------------
def _env(**more: str) -> dict[str, str]:
    return {
        "BLOODBANK_USER_POOL_ID": "eu-west-2_example",
        "BLOODBANK_USER_POOL_CLIENT_IDS": "client",
        "BLOODBANK_PAGE_TOKEN_SECRET": "p" * 32,
        **more,
    }


def test_machine_scope_setting_default_override_off_and_round_trip() -> None:
    assert Settings.from_env(_env()).machine_scope == "bloodbank/hospital"
    assert Settings.from_env(_env(BLOODBANK_MACHINE_SCOPE=" api/orders ")).machine_scope == "api/orders"
    assert Settings.from_env(_env(BLOODBANK_MACHINE_SCOPE="")).machine_scope == ""
    settings = Settings.from_env(_env(BLOODBANK_MACHINE_SCOPE="api/orders"))
    assert settings.as_env()["BLOODBANK_MACHINE_SCOPE"] == "api/orders"
    assert Settings.from_env(settings.as_env()) == settings
    with pytest.raises(SettingsError, match="BLOODBANK_MACHINE_SCOPE"):
        Settings.from_env(_env(BLOODBANK_MACHINE_SCOPE="a/b c/d"))
