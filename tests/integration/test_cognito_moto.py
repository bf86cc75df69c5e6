"""Real Cognito-shaped tokens from a moto server, verified by the real key set client.

The keys come from moto (``{moto}/{pool}/.well-known/jwks.json``) while the expected issuer is the real
Cognito issuer (``https://cognito-idp.us-east-1.amazonaws.com/{pool}``): the two URLs differ, which is
how the local stack runs, and the verifier must accept that pairing and nothing looser.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from bloodbank.adapters.jwks import HttpKeySetSource
from bloodbank.adapters.provisioning import LocalUserPool, ensure_user, ensure_user_pool, sign_in
from bloodbank.domain.identity import Group
from bloodbank.errors import Unauthenticated
from bloodbank.fakes import InMemoryDirectory
from bloodbank.local import engines
from bloodbank.services.authn import Authenticator, KeySet, TokenVerifier

REGION = "us-east-1"
PASSWORD = "Correct-Horse-9-Battery!"


@dataclass
class Pool:
    endpoint: str
    pool: LocalUserPool
    directory: InMemoryDirectory
    authenticator: Authenticator
    source: HttpKeySetSource

    @property
    def issuer(self) -> str:
        return f"https://cognito-idp.{REGION}.amazonaws.com/{self.pool.pool_id}"

    def verifier(
        self, *, issuer: str | None = None, client_ids: frozenset[str] | None = None
    ) -> TokenVerifier:
        return TokenVerifier(
            KeySet(self.source),
            issuer or self.issuer,
            client_ids if client_ids is not None else frozenset({self.pool.client_id}),
        )

    def user(self, group: Group, *more: Group, attributes: dict[str, str] | None = None) -> tuple[str, str]:
        """A new user in these groups: (e-mail, sub)."""
        email = f"{group.value.lower()}-{uuid.uuid4().hex[:10]}@example.org"
        sub = ensure_user(self.endpoint, REGION, self.pool, email, PASSWORD, group, attributes)
        for extra in more:
            assert ensure_user(self.endpoint, REGION, self.pool, email, PASSWORD, extra) == sub
        return email, sub

    def tokens(self, email: str) -> dict[str, str]:
        return sign_in(self.endpoint, REGION, self.pool, email, PASSWORD)


@pytest.fixture(scope="module")
def pool(moto_server: str) -> Pool:
    local = ensure_user_pool(moto_server, REGION, f"bloodbank-test-{uuid.uuid4().hex[:8]}")
    source = HttpKeySetSource(f"{moto_server}/{local.pool_id}/.well-known/jwks.json")
    directory = InMemoryDirectory()
    issuer = f"https://cognito-idp.{REGION}.amazonaws.com/{local.pool_id}"
    verifier = TokenVerifier(KeySet(source), issuer, frozenset({local.client_id}))
    return Pool(moto_server, local, directory, Authenticator(verifier, directory), source)


@pytest.fixture(autouse=True)
def _fresh_directory(pool: Pool) -> None:
    pool.directory.calls.clear()
    pool.directory.memberships.clear()


def claims_of(token: str) -> dict[str, object]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def b64url_json(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


# --- the setup this file relies on ---------------------------------------------------------------------
def test_moto_publishes_keys_at_a_url_other_than_the_issuer(pool: Pool) -> None:
    document = pool.source.fetch()
    assert [k["kid"] for k in document["keys"]]  # type: ignore[union-attr]
    assert not pool.source.url.startswith(pool.issuer)
    assert pool.issuer == f"https://cognito-idp.us-east-1.amazonaws.com/{pool.pool.pool_id}"


def test_pool_is_idempotent(pool: Pool) -> None:
    name = f"bloodbank-idem-{uuid.uuid4().hex[:8]}"
    first = ensure_user_pool(pool.endpoint, REGION, name)
    assert ensure_user_pool(pool.endpoint, REGION, name) == first


# --- real tokens ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("group", list(Group), ids=[g.value for g in Group])
def test_access_token_of_each_group(group: Group, pool: Pool) -> None:
    email, sub = pool.user(group)
    access = pool.tokens(email)["AccessToken"]
    assert claims_of(access)["iss"] == pool.issuer
    identity = pool.authenticator.identify(f"Bearer {access}")
    assert identity is not None
    assert identity.sub == sub
    assert identity.token_use == "access"
    assert identity.groups == frozenset({group})
    assert identity.username == email


def test_raw_access_token_amplify_style(pool: Pool) -> None:
    email, sub = pool.user(Group.STAFF)
    identity = pool.authenticator.identify(pool.tokens(email)["AccessToken"])
    assert identity is not None
    assert identity.sub == sub


def test_id_token_is_accepted_for_our_client(pool: Pool) -> None:
    email, sub = pool.user(Group.DONORS)
    id_token = pool.tokens(email)["IdToken"]
    assert claims_of(id_token)["aud"] == pool.pool.client_id
    identity = pool.authenticator.identify(f"Bearer {id_token}")
    assert identity is not None
    assert (identity.sub, identity.token_use, identity.username) == (sub, "id", email)
    assert identity.groups == frozenset({Group.DONORS})


def test_several_groups_flow_into_the_identity(pool: Pool) -> None:
    email, _ = pool.user(Group.STAFF, Group.ADMINS)
    for kind in ("AccessToken", "IdToken"):
        identity = pool.authenticator.identify(pool.tokens(email)[kind])
        assert identity is not None
        assert identity.groups == frozenset({Group.STAFF, Group.ADMINS}), kind
        assert identity.is_staff


def test_hospital_from_the_id_token_claim_and_from_the_directory_for_the_access_token(pool: Pool) -> None:
    email, sub = pool.user(Group.HOSPITALS, attributes={"custom:hospital_id": "hosp-kings"})
    pool.directory.memberships[sub] = "hosp-kings"
    signed_in = pool.tokens(email)

    by_claim = pool.authenticator.identify(signed_in["IdToken"])
    assert by_claim is not None
    assert by_claim.hospital_id == "hosp-kings"
    assert pool.directory.calls == []

    by_membership = pool.authenticator.identify(signed_in["AccessToken"])  # no custom claims in access tokens
    assert by_membership is not None
    assert by_membership.hospital_id == "hosp-kings"
    assert pool.directory.calls == [("hospital_of", sub)]


def test_keys_are_fetched_once_for_many_tokens(pool: Pool) -> None:
    fetches: list[str] = []

    class Counting(HttpKeySetSource):
        def fetch(self) -> dict[str, object]:
            fetches.append(self.url)
            return super().fetch()

    verifier = TokenVerifier(KeySet(Counting(pool.source.url)), pool.issuer, frozenset({pool.pool.client_id}))
    email, _ = pool.user(Group.STAFF)
    signed_in = pool.tokens(email)
    for _ in range(5):
        verifier.verify(signed_in["AccessToken"])
        verifier.verify(signed_in["IdToken"])
    assert len(fetches) == 1


# --- what must be refused ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def donor_tokens(pool: Pool) -> dict[str, str]:
    email, _ = pool.user(Group.DONORS)
    return pool.tokens(email)


@pytest.mark.parametrize("kind", ["AccessToken", "IdToken"])
def test_tampered_groups_are_refused(kind: str, pool: Pool, donor_tokens: dict[str, str]) -> None:
    header, _, signature = donor_tokens[kind].split(".")
    claims = claims_of(donor_tokens[kind])
    claims["cognito:groups"] = ["Admins"]
    forged = f"{header}.{b64url_json(claims)}.{signature}"
    with pytest.raises(Unauthenticated):
        pool.authenticator.identify(f"Bearer {forged}")
    assert pool.directory.calls == []


@pytest.mark.parametrize("kind", ["AccessToken", "IdToken"])
def test_tokens_of_another_app_client_are_refused(
    kind: str, pool: Pool, donor_tokens: dict[str, str]
) -> None:
    verifier = pool.verifier(client_ids=frozenset({"some-other-app-client"}))
    with pytest.raises(Unauthenticated, match="another app client"):
        verifier.verify(donor_tokens[kind])


@pytest.mark.parametrize(
    "issuer",
    [
        "{moto}/{pool_id}",  # where moto serves the keys is not who issued the token
        "https://cognito-idp.eu-west-1.amazonaws.com/{pool_id}",
        "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_SomeOtherPool",
    ],
    ids=["moto-url-as-issuer", "other-region", "other-pool"],
)
def test_tokens_are_refused_for_any_other_issuer(
    issuer: str, pool: Pool, donor_tokens: dict[str, str]
) -> None:
    verifier = pool.verifier(issuer=issuer.format(moto=pool.endpoint, pool_id=pool.pool.pool_id))
    with pytest.raises(Unauthenticated):
        verifier.verify(donor_tokens["AccessToken"])


def test_refresh_token_is_not_a_bearer_token(pool: Pool, donor_tokens: dict[str, str]) -> None:
    with pytest.raises(Unauthenticated):
        pool.authenticator.identify(f"Bearer {donor_tokens['RefreshToken']}")


def test_token_of_another_pool_is_refused(pool: Pool) -> None:
    """Moto signs every pool with the same key: only the issuer tells pools apart, and it must."""
    other = ensure_user_pool(pool.endpoint, REGION, f"bloodbank-other-{uuid.uuid4().hex[:8]}")
    email = f"other-{uuid.uuid4().hex[:8]}@example.org"
    ensure_user(pool.endpoint, REGION, other, email, PASSWORD, Group.ADMINS)
    foreign = sign_in(pool.endpoint, REGION, other, email, PASSWORD)
    with pytest.raises(Unauthenticated):
        pool.authenticator.identify(foreign["AccessToken"])


# --- stable ids across moto restarts -------------------------------------------------------------------
def test_same_email_gets_the_same_sub_on_a_fresh_moto_server(pool: Pool, tmp_path: Path) -> None:
    """The local stack relies on this: demo donors keep their ids when the stack restarts."""
    name = f"bloodbank-restart-{uuid.uuid4().hex[:8]}"
    email = "donor-restart@example.org"
    first_pool = ensure_user_pool(pool.endpoint, REGION, name)
    first_sub = ensure_user(pool.endpoint, REGION, first_pool, email, PASSWORD, Group.DONORS)
    assert ensure_user(pool.endpoint, REGION, first_pool, email, PASSWORD, Group.DONORS) == first_sub

    port = engines.free_port()
    fresh = engines.moto_server(port, tmp_path / "moto-fresh.log")
    fresh.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        second_pool = ensure_user_pool(endpoint, REGION, name)
        second_sub = ensure_user(endpoint, REGION, second_pool, email, PASSWORD, Group.DONORS)
        # and the fresh server's tokens carry that sub
        access = sign_in(endpoint, REGION, second_pool, email, PASSWORD)["AccessToken"]
    finally:
        fresh.stop()
    assert second_sub == first_sub
    assert claims_of(access)["sub"] == first_sub
