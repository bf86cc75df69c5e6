"""Cognito tokens: verifying them (TokenVerifier), the caller's Identity (Authenticator), keys (KeySet).

Every forged, stale or foreign token is refused as ``Unauthenticated`` and never yields claims. Hand-made
tokens (``alg: none``, HMAC keyed with the pool's public key) are built with hmac and base64 directly,
because the point is what the server accepts, not what a JWT library is willing to produce.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from bloodbank.domain.identity import Group
from bloodbank.errors import DependencyUnavailable, Unauthenticated
from bloodbank.fakes import InMemoryDirectory, StaticKeySet
from bloodbank.services.authn import MAX_TOKEN_BYTES, Authenticator, KeySet, TokenVerifier
from tests.conftest import CLIENT_ID, ISSUER, KID, SigningKey, TokenFactory, World, _new_key

OTHER_CLIENT = "7another0app0client0id0xyz"


# --- hand-made tokens ----------------------------------------------------------------------------------
def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_json(value: object) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def unb64url(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def parts(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    header, payload, signature = token.split(".")
    return json.loads(unb64url(header)), json.loads(unb64url(payload)), signature


def craft(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    return f"{b64url_json(header)}.{b64url_json(claims)}.{b64url(signature)}"


def hs256(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    signing_input = f"{b64url_json(header)}.{b64url_json(claims)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


def with_claims(token: str, **changes: Any) -> str:
    """The same header and signature over changed claims: a tampered token."""
    header, payload, signature = token.split(".")
    claims = json.loads(unb64url(payload))
    claims.update(changes)
    return f"{header}.{b64url_json(claims)}.{signature}"


def valid_claims(tokens: TokenFactory, *groups: str) -> dict[str, Any]:
    return parts(tokens(*groups))[1]


# --- fixtures ------------------------------------------------------------------------------------------
@dataclass
class FakeMonotonic:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def authenticator(world: World) -> Authenticator:
    return world.container.authenticator


@pytest.fixture
def verifier(authenticator: Authenticator) -> TokenVerifier:
    return authenticator.verifier


def assert_refused(verify: Callable[[], object]) -> Unauthenticated:
    with pytest.raises(Unauthenticated) as caught:
        verify()
    error = caught.value
    assert error.code == "UNAUTHENTICATED"
    assert error.error_type == "UnauthorizedException"
    assert error.message.startswith("Invalid token")
    return error


# --- bad tokens ----------------------------------------------------------------------------------------
TokenMaker = Callable[[TokenFactory, SigningKey, SigningKey], str]


def _alg_none(alg: str, signature: bytes = b"") -> TokenMaker:
    return lambda t, k, f: craft({"alg": alg, "typ": "JWT", "kid": KID}, valid_claims(t, "Admins"), signature)


def _hmac_with(secret: Callable[[SigningKey], bytes]) -> TokenMaker:
    return lambda t, k, f: hs256(
        {"alg": "HS256", "typ": "JWT", "kid": KID}, valid_claims(t, "Admins"), secret(k)
    )


def _tampered_groups(t: TokenFactory, k: SigningKey, f: SigningKey) -> str:
    return with_claims(t("Donors"), **{"cognito:groups": ["Admins"]})


def _tampered_sub(t: TokenFactory, k: SigningKey, f: SigningKey) -> str:
    return with_claims(t("Staff"), sub="someone-else")


def _flipped_signature(t: TokenFactory, k: SigningKey, f: SigningKey) -> str:
    header, payload, signature = t("Staff").split(".")
    raw = bytearray(unb64url(signature))
    raw[10] ^= 0x01
    return f"{header}.{payload}.{b64url(bytes(raw))}"


def _resigned_by_foreign_key(t: TokenFactory, k: SigningKey, f: SigningKey) -> str:
    """Payload changed and re-signed with the attacker's key, keeping the pool's kid."""
    return t("Admins", key=f.private_pem, kid=KID)


BAD_TOKENS: dict[str, TokenMaker] = {
    "alg-none": _alg_none("none"),
    "alg-None-capitalised": _alg_none("None"),
    "alg-NONE-with-signature": _alg_none("NONE", b"garbage-signature"),
    "hs256-public-key-pem": _hmac_with(lambda k: k.public_pem),
    "hs256-public-key-der": _hmac_with(lambda k: k.public_der),
    "hs256-public-key-pem-stripped": _hmac_with(lambda k: k.public_pem.strip()),
    "rs512-same-key": lambda t, k, f: t("Admins", algorithm="RS512"),
    "foreign-key-with-pool-kid": lambda t, k, f: t("Admins", key=f.private_pem, kid=KID),
    "foreign-key-own-kid": lambda t, k, f: t("Admins", key=f.private_pem, kid="foreign"),
    "unknown-kid": lambda t, k, f: t("Admins", kid="not-in-the-key-set"),
    "no-kid": lambda t, k, f: (lambda h, c, s: craft({"alg": "RS256", "typ": "JWT"}, c, unb64url(s)))(
        *parts(t("Admins"))
    ),
    "expired-beyond-leeway": lambda t, k, f: t("Staff", expires_in=-45),
    "expired-long-ago": lambda t, k, f: t("Staff", expires_in=-86_400),
    "missing-exp": lambda t, k, f: t("Staff", drop=("exp",)),
    "exp-not-a-number": lambda t, k, f: t("Staff", extra={"exp": "tomorrow"}),
    "wrong-issuer": lambda t, k, f: t(
        "Staff", issuer="https://cognito-idp.us-east-1.amazonaws.com/us-east-1_OTHERPOOL"
    ),
    "issuer-other-region": lambda t, k, f: t(
        "Staff", issuer="https://cognito-idp.eu-west-1.amazonaws.com/us-east-1_TESTPOOL"
    ),
    "issuer-trailing-slash": lambda t, k, f: t("Staff", issuer=ISSUER + "/"),
    "missing-issuer": lambda t, k, f: t("Staff", drop=("iss",)),
    "access-token-other-client": lambda t, k, f: t("Staff", client_id=OTHER_CLIENT),
    "access-token-no-client-id": lambda t, k, f: t("Staff", drop=("client_id",)),
    "access-token-with-our-aud-but-other-client": lambda t, k, f: t(
        "Staff", client_id=OTHER_CLIENT, extra={"aud": CLIENT_ID}
    ),
    "id-token-other-aud": lambda t, k, f: t("Staff", token_use="id", client_id=OTHER_CLIENT),
    "id-token-no-aud": lambda t, k, f: t("Staff", token_use="id", drop=("aud",)),
    "id-token-with-our-client-id-but-other-aud": lambda t, k, f: t(
        "Staff", token_use="id", client_id=OTHER_CLIENT, extra={"client_id": CLIENT_ID}
    ),
    "token-use-refresh": lambda t, k, f: t("Staff", token_use="refresh"),
    "token-use-missing": lambda t, k, f: t("Staff", drop=("token_use",)),
    "token-use-uppercase-ACCESS": lambda t, k, f: t("Staff", extra={"token_use": "ACCESS"}),
    "no-sub": lambda t, k, f: t("Staff", drop=("sub",)),
    "tampered-groups": _tampered_groups,
    "tampered-sub": _tampered_sub,
    "flipped-signature-bit": _flipped_signature,
    "tampered-and-resigned-by-foreign-key": _resigned_by_foreign_key,
    "signature-stripped": lambda t, k, f: t("Staff").rsplit(".", 1)[0] + ".",
}


@pytest.mark.parametrize("make", BAD_TOKENS.values(), ids=BAD_TOKENS.keys())
def test_verifier_refuses_bad_tokens(
    make: TokenMaker,
    verifier: TokenVerifier,
    tokens: TokenFactory,
    signing_key: SigningKey,
    foreign_key: SigningKey,
) -> None:
    token = make(tokens, signing_key, foreign_key)
    error = assert_refused(lambda: verifier.verify(token))
    assert token not in error.message


@pytest.mark.parametrize("make", BAD_TOKENS.values(), ids=BAD_TOKENS.keys())
@pytest.mark.parametrize("scheme", ["", "Bearer "], ids=["raw", "bearer"])
def test_authenticator_refuses_bad_tokens_without_asking_the_directory(
    make: TokenMaker,
    scheme: str,
    authenticator: Authenticator,
    world: World,
    tokens: TokenFactory,
    signing_key: SigningKey,
    foreign_key: SigningKey,
) -> None:
    token = make(tokens, signing_key, foreign_key)
    assert_refused(lambda: authenticator.identify(scheme + token))
    assert world.directory.calls == []


def test_hmac_forgery_would_verify_with_the_pem_as_secret(
    tokens: TokenFactory, signing_key: SigningKey
) -> None:
    """Control: the hand-made HS256 token really is a correct HMAC keyed with the public key."""
    token = hs256({"alg": "HS256", "kid": KID}, valid_claims(tokens, "Admins"), signing_key.public_pem)
    signing_input, signature = token.rsplit(".", 1)
    expected = hmac.new(signing_key.public_pem, signing_input.encode(), hashlib.sha256).digest()
    assert unb64url(signature) == expected


def test_bad_signature_is_refused_even_when_the_kid_was_cached(
    verifier: TokenVerifier, tokens: TokenFactory, foreign_key: SigningKey, world: World
) -> None:
    verifier.verify(tokens("Staff"))  # the pool's key is now cached
    assert_refused(lambda: verifier.verify(tokens("Admins", key=foreign_key.private_pem, kid=KID)))
    assert world.keyset.fetches == 1


# --- expiry --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "expires_in", [-10, -1, 5, 3600], ids=["expired-10s-ago", "expired-1s-ago", "5s-left", "1h-left"]
)
def test_tokens_within_the_leeway_or_not_yet_expired_are_accepted(
    expires_in: int, verifier: TokenVerifier, tokens: TokenFactory
) -> None:
    assert verifier.verify(tokens("Staff", expires_in=expires_in))["token_use"] == "access"


def test_leeway_is_thirty_seconds(verifier: TokenVerifier) -> None:
    assert verifier.leeway_seconds == 30


# --- malformed values ----------------------------------------------------------------------------------
def _padded(tokens: TokenFactory) -> str:
    return with_claims(tokens("Staff"), padding="x" * (20 * 1024))


MALFORMED: dict[str, Callable[[TokenFactory], str]] = {
    "empty": lambda t: "",
    "one-dot": lambda t: "abc.def",
    "three-dots": lambda t: "a.b.c.d",
    "only-dots": lambda t: "..",
    "four-segments-of-a-real-token": lambda t: t("Staff") + ".extra",
    "not-base64": lambda t: "%%%.***.!!!",
    "header-not-json": lambda t: f"{b64url(b'not json')}.{b64url_json({'sub': 'x'})}.sig",
    "header-json-array": lambda t: f"{b64url_json(['RS256'])}.{b64url_json({'sub': 'x'})}.sig",
    "header-kid-not-a-string": lambda t: craft({"alg": "RS256", "kid": 1}, {"sub": "x"}, b"sig"),
    "payload-not-json": lambda t: (
        f"{t('Staff').split('.')[0]}.{b64url(b'not json')}.{t('Staff').split('.')[2]}"
    ),
    "20-kb-token": _padded,
    "just-over-the-size-limit": lambda t: "a.b." + "c" * (MAX_TOKEN_BYTES - 3),
    "whitespace-inside": lambda t: t("Staff").replace(".", ". ", 1),
    "non-ascii": lambda t: "ü.ö.ä",
}


@pytest.mark.parametrize("make", MALFORMED.values(), ids=MALFORMED.keys())
def test_verifier_refuses_malformed_values(
    make: Callable[[TokenFactory], str], verifier: TokenVerifier, tokens: TokenFactory
) -> None:
    assert_refused(lambda: verifier.verify(make(tokens)))


def test_oversized_token_is_refused_before_any_key_lookup(
    verifier: TokenVerifier, tokens: TokenFactory, world: World
) -> None:
    assert_refused(lambda: verifier.verify(_padded(tokens)))
    assert world.keyset.fetches == 0


# --- the Authorization header --------------------------------------------------------------------------
BAD_HEADERS: dict[str, Callable[[str], str]] = {
    "bearer-alone": lambda tok: "Bearer",
    "bearer-alone-trailing-space": lambda tok: "Bearer ",
    "basic-scheme": lambda tok: "Basic abc",
    "basic-scheme-with-real-token": lambda tok: f"Basic {tok}",
    "jwt-scheme": lambda tok: f"JWT {tok}",
    "bearer-two-values": lambda tok: f"Bearer {tok} {tok}",
    "bearer-tab-separated": lambda tok: f"Bearer\t{tok}",
    "bearer-bearer": lambda tok: f"Bearer Bearer {tok}",
    "three-dots": lambda tok: "...",
    "bearer-three-dots": lambda tok: "Bearer ...",
    "bearer-non-base64": lambda tok: "Bearer %%%.***.!!!",
    "bearer-20-kb": lambda tok: "Bearer " + "a" * 10_000 + "." + "b" * 10_000 + ".c",
}


@pytest.mark.parametrize("make", BAD_HEADERS.values(), ids=BAD_HEADERS.keys())
def test_malformed_authorization_headers_are_refused(
    make: Callable[[str], str], authenticator: Authenticator, tokens: TokenFactory, world: World
) -> None:
    assert_refused(lambda: authenticator.identify(make(tokens("Staff"))))
    assert world.directory.calls == []


@pytest.mark.parametrize("value", [None, "", "   "], ids=["absent", "empty", "blank"])
def test_no_credentials_means_anonymous_not_an_error(value: str | None, authenticator: Authenticator) -> None:
    """An absent or blank header is no credentials (the field permission then says UNAUTHENTICATED)."""
    assert authenticator.identify(value) is None


GOOD_HEADERS: dict[str, Callable[[str], str]] = {
    "raw-token-amplify-style": lambda tok: tok,
    "Bearer": lambda tok: f"Bearer {tok}",
    "bearer-lowercase": lambda tok: f"bearer {tok}",
    "BEARER-uppercase": lambda tok: f"BEARER {tok}",
    "BeArEr-mixed-case": lambda tok: f"BeArEr {tok}",
    "bearer-extra-spaces": lambda tok: f"Bearer   {tok}",
    "surrounding-whitespace": lambda tok: f"  Bearer {tok}  ",
    "raw-token-surrounding-whitespace": lambda tok: f" {tok}\n",
}


@pytest.mark.parametrize("make", GOOD_HEADERS.values(), ids=GOOD_HEADERS.keys())
def test_accepted_authorization_header_forms(
    make: Callable[[str], str], authenticator: Authenticator, tokens: TokenFactory
) -> None:
    identity = authenticator.identify(make(tokens("Staff", sub="staff-1")))
    assert identity is not None
    assert identity.sub == "staff-1"
    assert identity.groups == frozenset({Group.STAFF})


# --- the Identity --------------------------------------------------------------------------------------
def test_access_token_identity(authenticator: Authenticator, tokens: TokenFactory, world: World) -> None:
    identity = authenticator.identify(tokens("Staff", "Admins", sub="sub-1", extra={"username": "jane"}))
    assert identity is not None
    assert (identity.sub, identity.username, identity.token_use) == ("sub-1", "jane", "access")
    assert identity.groups == frozenset({Group.STAFF, Group.ADMINS})
    assert identity.hospital_id is None
    assert identity.claims["client_id"] == CLIENT_ID
    assert world.directory.calls == []


def test_id_token_accepted_when_aud_is_our_client(authenticator: Authenticator, tokens: TokenFactory) -> None:
    token = tokens("Donors", sub="donor-1", token_use="id", extra={"cognito:username": "dana"})
    identity = authenticator.identify(f"Bearer {token}")
    assert identity is not None
    assert (identity.sub, identity.username, identity.token_use) == ("donor-1", "dana", "id")
    assert identity.groups == frozenset({Group.DONORS})
    assert identity.claims["aud"] == CLIENT_ID


def test_any_of_several_client_ids_is_accepted(world: World, tokens: TokenFactory) -> None:
    verifier = TokenVerifier(KeySet(world.keyset), ISSUER, frozenset({CLIENT_ID, OTHER_CLIENT}))
    assert verifier.verify(tokens("Staff", client_id=OTHER_CLIENT))["client_id"] == OTHER_CLIENT
    assert verifier.verify(tokens("Staff", token_use="id", client_id=OTHER_CLIENT))["aud"] == OTHER_CLIENT


def test_username_falls_back_to_sub(authenticator: Authenticator, tokens: TokenFactory) -> None:
    identity = authenticator.identify(tokens("Staff", sub="only-sub", drop=("username",)))
    assert identity is not None
    assert identity.username == "only-sub"


@pytest.mark.parametrize(
    ("claim", "expected"),
    [
        (["Staff", "SuperUsers", "admins", "Admin"], {Group.STAFF}),
        (["Root", "Everyone"], set()),
        ([], set()),
        ("Admins", set()),  # a string is not a list of groups
        ([["Admins"], {"Admins": True}, None, 1], set()),
        (["Hospitals", "Donors", "Hospitals"], {Group.HOSPITALS, Group.DONORS}),
    ],
    ids=[
        "unknown-and-wrong-case-ignored",
        "only-unknown",
        "empty",
        "string-not-list",
        "non-strings",
        "duplicates",
    ],
)
def test_groups_keep_only_known_names(
    claim: object, expected: set[Group], authenticator: Authenticator, tokens: TokenFactory
) -> None:
    identity = authenticator.identify(tokens(sub="hospital-user", extra={"cognito:groups": claim}))
    assert identity is not None
    assert identity.groups == frozenset(expected)


def test_missing_groups_claim_means_no_groups(authenticator: Authenticator, tokens: TokenFactory) -> None:
    identity = authenticator.identify(tokens(drop=("cognito:groups",)))
    assert identity is not None
    assert identity.groups == frozenset()


def test_hospital_id_comes_from_the_custom_claim_first(
    authenticator: Authenticator, tokens: TokenFactory, world: World
) -> None:
    token = tokens(
        "Hospitals", sub="hospital-user", token_use="id", extra={"custom:hospital_id": "hosp-kings"}
    )
    identity = authenticator.identify(token)
    assert identity is not None
    assert identity.hospital_id == "hosp-kings"
    assert world.directory.calls == []


def test_hospital_id_comes_from_the_directory_without_the_claim(
    authenticator: Authenticator, tokens: TokenFactory, world: World
) -> None:
    identity = authenticator.identify(tokens("Hospitals", sub="hospital-user"))
    assert identity is not None
    assert identity.hospital_id == "hosp-st-mary"
    assert identity.groups == frozenset({Group.HOSPITALS})
    assert world.directory.calls == [("hospital_of", "hospital-user")]


def test_hospital_user_without_membership_has_no_hospital(
    authenticator: Authenticator, tokens: TokenFactory, world: World
) -> None:
    identity = authenticator.identify(tokens("Hospitals", sub="unaffiliated"))
    assert identity is not None
    assert identity.hospital_id is None
    assert world.directory.calls == [("hospital_of", "unaffiliated")]


@pytest.mark.parametrize("bad_claim", [42, None, "", ["hosp-kings"]], ids=["number", "null", "empty", "list"])
def test_non_string_hospital_claim_falls_back_to_the_directory(
    bad_claim: object, authenticator: Authenticator, tokens: TokenFactory
) -> None:
    identity = authenticator.identify(
        tokens("Hospitals", sub="hospital-user", extra={"custom:hospital_id": bad_claim})
    )
    assert identity is not None
    assert identity.hospital_id == "hosp-st-mary"


@pytest.mark.parametrize("group", ["Staff", "Donors", "Admins"])
def test_non_hospital_users_never_cost_a_directory_lookup(
    group: str, authenticator: Authenticator, tokens: TokenFactory, world: World
) -> None:
    identity = authenticator.identify(tokens(group, sub="hospital-user"))
    assert identity is not None
    assert identity.hospital_id is None
    assert world.directory.calls == []


@pytest.mark.parametrize("group", ["Donors", "Staff", "Admins"])
def test_only_hospital_users_get_a_hospital_id(
    group: str, authenticator: Authenticator, tokens: TokenFactory
) -> None:
    """A stray custom:hospital_id on a donor's or employee's token must not make them act for a hospital."""
    identity = authenticator.identify(
        tokens(group, token_use="id", extra={"custom:hospital_id": "hosp-kings"})
    )
    assert identity is not None
    assert identity.hospital_id is None


@pytest.mark.parametrize(
    "aud",
    [[CLIENT_ID], [OTHER_CLIENT], {"client": CLIENT_ID}],
    ids=["list-with-ours", "list-other", "object"],
)
def test_non_string_audience_is_refused_not_a_crash(
    aud: object, verifier: TokenVerifier, tokens: TokenFactory
) -> None:
    token = tokens("Staff", token_use="id", extra={"aud": aud})
    assert_refused(lambda: verifier.verify(token))


# --- KeySet --------------------------------------------------------------------------------------------
@pytest.fixture
def monotonic() -> FakeMonotonic:
    return FakeMonotonic()


@pytest.fixture
def source(signing_key: SigningKey) -> StaticKeySet:
    return StaticKeySet({"keys": [signing_key.public_jwk]})


@pytest.fixture(scope="module")
def new_key() -> SigningKey:
    """The pool's next key, for rotation."""
    return _new_key("test-key-2")


@pytest.fixture
def keyset(source: StaticKeySet, monotonic: FakeMonotonic) -> KeySet:
    return KeySet(source, refetch_interval_seconds=60, clock=monotonic)


def test_first_lookup_fetches_once(keyset: KeySet, source: StaticKeySet) -> None:
    assert keyset.get(KID) is not None
    assert source.fetches == 1


def test_first_lookup_of_an_unknown_kid_fetches_once(keyset: KeySet, source: StaticKeySet) -> None:
    assert keyset.get("nope") is None
    assert keyset.get(KID) is not None
    assert source.fetches == 1


def test_known_kid_never_refetches(keyset: KeySet, source: StaticKeySet, monotonic: FakeMonotonic) -> None:
    for _ in range(50):
        assert keyset.get(KID) is not None
        monotonic.advance(3600)
    assert source.fetches == 1


def test_unknown_kids_refetch_at_most_once_per_interval(
    keyset: KeySet, source: StaticKeySet, monotonic: FakeMonotonic
) -> None:
    keyset.get(KID)
    for n in range(100):
        assert keyset.get(f"garbage-{n}") is None
    assert source.fetches == 1
    monotonic.advance(59.9)
    assert keyset.get("garbage") is None
    assert source.fetches == 1
    monotonic.advance(0.1)
    for n in range(100):
        assert keyset.get(f"more-garbage-{n}") is None
    assert source.fetches == 2
    monotonic.advance(60)
    assert keyset.get("garbage") is None
    assert source.fetches == 3


def test_warm_fetches_only_when_cold(keyset: KeySet, source: StaticKeySet, monotonic: FakeMonotonic) -> None:
    keyset.warm()
    keyset.warm()
    monotonic.advance(3600)
    keyset.warm()
    assert source.fetches == 1
    assert keyset.get(KID) is not None
    assert source.fetches == 1


def test_rotation_is_picked_up_after_the_interval(
    keyset: KeySet,
    source: StaticKeySet,
    monotonic: FakeMonotonic,
    signing_key: SigningKey,
    new_key: SigningKey,
) -> None:
    new = new_key
    assert keyset.get(KID) is not None
    source.document = {"keys": [signing_key.public_jwk, new.public_jwk]}
    assert keyset.get("test-key-2") is None  # not yet: the interval has not passed
    monotonic.advance(60)
    assert keyset.get("test-key-2") == new.public_jwk
    assert keyset.get(KID) == signing_key.public_jwk
    assert source.fetches == 2


def test_retired_key_disappears_with_the_next_refetch(
    keyset: KeySet, source: StaticKeySet, monotonic: FakeMonotonic, new_key: SigningKey
) -> None:
    new = new_key
    assert keyset.get(KID) is not None
    source.document = {"keys": [new.public_jwk]}
    monotonic.advance(60)
    assert keyset.get("test-key-2") is not None
    assert keyset.get(KID) is None


def test_rotation_end_to_end_through_the_verifier(
    source: StaticKeySet,
    monotonic: FakeMonotonic,
    signing_key: SigningKey,
    new_key: SigningKey,
    tokens: TokenFactory,
) -> None:
    keyset = KeySet(source, refetch_interval_seconds=60, clock=monotonic)
    verifier = TokenVerifier(keyset, ISSUER, frozenset({CLIENT_ID}))
    verifier.verify(tokens("Staff"))
    new = new_key
    rotated = TokenFactory(new, tokens.clock)("Staff", kid="test-key-2")
    source.document = {"keys": [signing_key.public_jwk, new.public_jwk]}
    assert_refused(lambda: verifier.verify(rotated))
    monotonic.advance(61)
    assert verifier.verify(rotated)["token_use"] == "access"
    assert source.fetches == 2


@pytest.mark.parametrize(
    "document",
    [{}, {"keys": "nope"}, {"keys": None}],
    ids=["no-keys", "keys-not-a-list", "keys-null"],
)
def test_broken_key_set_document_is_a_dependency_failure(
    document: dict[str, object], monotonic: FakeMonotonic
) -> None:
    keyset = KeySet(StaticKeySet(document), clock=monotonic)
    with pytest.raises(DependencyUnavailable):
        keyset.get(KID)


def test_keys_without_a_string_kid_are_ignored(monotonic: FakeMonotonic, signing_key: SigningKey) -> None:
    document = {"keys": [{"kty": "RSA"}, {"kid": 5}, "junk", signing_key.public_jwk]}
    keyset = KeySet(StaticKeySet(document), clock=monotonic)
    assert keyset.get(KID) == signing_key.public_jwk


def test_unreachable_key_set_is_not_blamed_on_the_token(
    verifier: TokenVerifier, world: World, tokens: TokenFactory
) -> None:
    """A JWKS outage is a dependency failure (shown as an internal error), never UNAUTHENTICATED."""
    world.keyset.down = True
    with pytest.raises(DependencyUnavailable):
        verifier.verify(tokens("Staff"))


def test_cached_keys_keep_working_while_the_key_set_is_down(
    keyset: KeySet, source: StaticKeySet, monotonic: FakeMonotonic
) -> None:
    assert keyset.get(KID) is not None
    source.down = True
    monotonic.advance(3600)
    assert keyset.get(KID) is not None
    assert source.fetches == 1


def test_a_failed_fetch_is_retried_after_a_short_backoff(
    keyset: KeySet, source: StaticKeySet, monotonic: FakeMonotonic
) -> None:
    """Cold start while the identity provider is down: recover soon after it answers again."""
    source.down = True
    with pytest.raises(DependencyUnavailable):
        keyset.get(KID)
    source.down = False
    monotonic.advance(keyset.retry_after_failure_seconds)
    assert keyset.get(KID) is not None
    assert source.fetches == 2


def test_unknown_kids_do_not_hammer_a_key_set_that_is_down(
    keyset: KeySet, source: StaticKeySet, monotonic: FakeMonotonic
) -> None:
    keyset.get(KID)
    monotonic.advance(60)
    source.down = True
    for n in range(20):
        with contextlib.suppress(DependencyUnavailable):
            keyset.get(f"garbage-{n}")
    assert source.fetches == 2
    # meanwhile the cached key still works, without a fetch
    assert keyset.get(KID) is not None
    assert source.fetches == 2
    monotonic.advance(keyset.retry_after_failure_seconds)
    with contextlib.suppress(DependencyUnavailable):
        keyset.get("garbage")
    assert source.fetches == 3


def test_cold_outage_is_not_hammered_either(
    keyset: KeySet, source: StaticKeySet, monotonic: FakeMonotonic
) -> None:
    source.down = True
    for _ in range(20):
        with contextlib.suppress(DependencyUnavailable):
            keyset.get(KID)
        monotonic.advance(0.1)
    assert source.fetches == 1


def test_valid_tokens_are_never_called_invalid_during_a_cold_outage(
    source: StaticKeySet, monotonic: FakeMonotonic, tokens: TokenFactory
) -> None:
    """While the keys could not be loaded yet, the answer is 'try again' (a dependency failure), never
    'invalid token': Amplify signs people out on UNAUTHENTICATED."""
    verifier = TokenVerifier(KeySet(source, clock=monotonic), ISSUER, frozenset({CLIENT_ID}))
    source.down = True
    for _ in range(3):
        with pytest.raises(DependencyUnavailable):
            verifier.verify(tokens("Staff"))
        monotonic.advance(1)


def test_unknown_kid_during_an_outage_is_an_outage_not_a_bad_token(
    keyset: KeySet, source: StaticKeySet, monotonic: FakeMonotonic
) -> None:
    """Warm cache, the pool rotated, the JWKS is down: the new kid may be valid, so 'try again'."""
    keyset.get(KID)
    monotonic.advance(60)
    source.down = True
    with pytest.raises(DependencyUnavailable):
        keyset.get("test-key-2")
    with pytest.raises(DependencyUnavailable):  # within the backoff: no fetch, same answer
        keyset.get("test-key-2")
    assert source.fetches == 2
    assert keyset.get(KID) is not None


def test_directory_is_the_fakes_membership_map(world: World) -> None:
    """The fixtures these tests rely on: sub 'hospital-user' acts for St Mary's."""
    assert isinstance(world.directory, InMemoryDirectory)
    assert world.directory.memberships == {"hospital-user": "hosp-st-mary"}
