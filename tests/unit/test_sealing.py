"""Field sealing (AES-256-GCM bound to attribute and item) and the in-memory FieldCipher."""

from __future__ import annotations

import os

import pytest

from bloodbank import sealing
from bloodbank.errors import DependencyUnavailable
from bloodbank.fakes import InMemoryFieldCipher
from bloodbank.ports import FieldCipher, SealedFields
from bloodbank.sealing import SealBroken, open_value, seal_value

CONTEXT = {"table": "bloodbank", "pk": "DONOR#123", "sk": "DONOR"}
FIELDS = {
    "date_of_birth": "1984-02-29",
    "phone": "+44 7700 900123",
    "address": "12 Rue de l'Église, Zürich",
    "medical_notes": "",
}


@pytest.fixture
def key() -> bytes:
    return os.urandom(32)


def test_round_trip(key: bytes) -> None:
    for name, value in FIELDS.items():
        sealed = seal_value(key, CONTEXT, name, value)
        assert sealed[0] == sealing.VERSION
        assert open_value(key, CONTEXT, name, sealed) == value
        if value:
            assert value.encode() not in sealed


def test_context_order_does_not_matter(key: bytes) -> None:
    sealed = seal_value(key, CONTEXT, "phone", "+44 7700 900123")
    reordered = dict(reversed(list(CONTEXT.items())))
    assert open_value(key, reordered, "phone", sealed) == "+44 7700 900123"


def test_every_tampered_byte_is_detected(key: bytes) -> None:
    sealed = seal_value(key, CONTEXT, "phone", "+44 7700 900123")
    for index in range(len(sealed)):
        changed = bytearray(sealed)
        changed[index] ^= 0x01
        with pytest.raises(SealBroken):
            open_value(key, CONTEXT, "phone", bytes(changed))


@pytest.mark.parametrize("sealed", [b"", b"\x01", bytes([sealing.VERSION]) + b"\x00" * 27])
def test_truncated_values_are_refused(key: bytes, sealed: bytes) -> None:
    with pytest.raises(SealBroken):
        open_value(key, CONTEXT, "phone", sealed)


def test_unknown_version_is_refused(key: bytes) -> None:
    sealed = seal_value(key, CONTEXT, "phone", "+44 7700 900123")
    with pytest.raises(SealBroken):
        open_value(key, CONTEXT, "phone", bytes([sealing.VERSION + 1]) + sealed[1:])


def test_value_copied_to_another_attribute_does_not_open(key: bytes) -> None:
    sealed = seal_value(key, CONTEXT, "phone", "+44 7700 900123")
    with pytest.raises(SealBroken):
        open_value(key, CONTEXT, "address", sealed)


@pytest.mark.parametrize(
    "other",
    [
        {**CONTEXT, "pk": "DONOR#124"},
        {**CONTEXT, "sk": "DONOR#v2"},
        {**CONTEXT, "table": "bloodbank-staging"},
        {"table": "bloodbank", "pk": "DONOR#123"},
        {**CONTEXT, "extra": ""},
    ],
)
def test_value_copied_to_another_item_does_not_open(key: bytes, other: dict[str, str]) -> None:
    sealed = seal_value(key, CONTEXT, "phone", "+44 7700 900123")
    with pytest.raises(SealBroken):
        open_value(key, other, "phone", sealed)


def test_context_encoding_is_unambiguous(key: bytes) -> None:
    # Concatenated, both contexts read "pkDONOR#1"; length prefixes keep them apart.
    sealed = seal_value(key, {"pk": "DONOR#1"}, "phone", "+44 7700 900123")
    with pytest.raises(SealBroken):
        open_value(key, {"pkD": "ONOR#1"}, "phone", sealed)
    assert sealing.canonical_context({"pk": "DONOR#1"}) != sealing.canonical_context({"pkD": "ONOR#1"})


def test_another_key_does_not_open(key: bytes) -> None:
    sealed = seal_value(key, CONTEXT, "phone", "+44 7700 900123")
    with pytest.raises(SealBroken):
        open_value(os.urandom(32), CONTEXT, "phone", sealed)
    with pytest.raises(SealBroken):
        open_value(b"short", CONTEXT, "phone", sealed)


def test_nonces_differ_for_equal_plaintexts(key: bytes) -> None:
    sealed = {seal_value(key, CONTEXT, "phone", "+44 7700 900123") for _ in range(50)}
    assert len(sealed) == 50
    assert len({value[1 : 1 + sealing.NONCE_BYTES] for value in sealed}) == 50


def test_seal_refuses_a_key_of_the_wrong_size() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        seal_value(b"\x00" * 16, CONTEXT, "phone", "x")


def test_broken_seal_says_nothing_about_the_data(key: bytes) -> None:
    sealed = seal_value(key, CONTEXT, "phone", "+44 7700 900123")
    with pytest.raises(SealBroken) as caught:
        open_value(key, {**CONTEXT, "pk": "DONOR#999"}, "phone", sealed)
    message = str(caught.value)
    for secret in ("7700", "DONOR", "phone", key.hex()):
        assert secret not in message


def test_wrapped_data_key_is_bound_to_context(key: bytes) -> None:
    data_key = os.urandom(32)
    wrapped = sealing.wrap_data_key(key, CONTEXT, data_key)
    assert sealing.unwrap_data_key(key, CONTEXT, wrapped) == data_key
    with pytest.raises(SealBroken):
        sealing.unwrap_data_key(key, {**CONTEXT, "pk": "DONOR#124"}, wrapped)
    # A wrapped key is not a field value and a field value is not a wrapped key.
    with pytest.raises(SealBroken):
        open_value(key, CONTEXT, "", wrapped)


# --- the fake -----------------------------------------------------------------------------------
def test_fake_round_trip_records_calls() -> None:
    cipher = InMemoryFieldCipher()
    port: FieldCipher = cipher
    sealed = port.seal(CONTEXT, FIELDS)
    assert set(sealed.fields) == set(FIELDS)
    for value in FIELDS.values():
        if value:
            assert all(value.encode() not in blob for blob in [sealed.wrapped_key, *sealed.fields.values()])
    assert port.unseal(CONTEXT, sealed) == FIELDS
    assert cipher.calls == [("seal", CONTEXT), ("unseal", CONTEXT)]


def test_fake_refuses_another_context_and_swapped_fields() -> None:
    cipher = InMemoryFieldCipher()
    sealed = cipher.seal(CONTEXT, FIELDS)
    with pytest.raises(SealBroken):
        cipher.unseal({**CONTEXT, "pk": "DONOR#124"}, sealed)
    swapped = dict(sealed.fields)
    swapped["phone"], swapped["address"] = swapped["address"], swapped["phone"]
    with pytest.raises(SealBroken):
        cipher.unseal(CONTEXT, SealedFields(sealed.wrapped_key, swapped))
    # Another cipher (another master key) cannot unwrap the data key.
    with pytest.raises(SealBroken):
        InMemoryFieldCipher().unseal(CONTEXT, sealed)


def test_fake_unavailable_fails_closed() -> None:
    cipher = InMemoryFieldCipher()
    sealed = cipher.seal(CONTEXT, FIELDS)
    cipher.unavailable = True
    with pytest.raises(DependencyUnavailable):
        cipher.seal(CONTEXT, FIELDS)
    with pytest.raises(DependencyUnavailable):
        cipher.unseal(CONTEXT, sealed)
    assert [call for call, _ in cipher.calls] == ["seal", "seal", "unseal"]
