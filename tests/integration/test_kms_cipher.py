"""KmsFieldCipher against a moto server, and the local PII key that survives a moto restart.

Plain moto 5.2.5 enforces the encryption context on Decrypt, but ignores key states (a disabled key
still encrypts) and cannot import key material (GetParametersForImport and ImportKeyMaterial answer
500). ``bloodbank.local.moto_kms`` adds both; every moto server here (the session ``moto_server``
fixture, the local stack) runs through it.
"""

from __future__ import annotations

import os
import stat
import threading
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from bloodbank.adapters import provisioning
from bloodbank.adapters.kms import KmsFieldCipher
from bloodbank.errors import DependencyUnavailable
from bloodbank.local import engines
from bloodbank.ports import FieldCipher, SealedFields
from bloodbank.sealing import SealBroken
from tests.conftest import REGION

FIELDS = {
    "date_of_birth": "1984-02-29",
    "phone": "+44 7700 900123",
    "address": "12 Rue de l'Église, Zürich",
    "medical_notes": "Deferred 2025-03: low haemoglobin",
}


def _context() -> dict[str, str]:
    return {"table": "bloodbank-test", "pk": f"DONOR#{uuid.uuid4()}", "sk": "DONOR"}


def _kms(endpoint: str, **config: Any) -> Any:
    """A fresh client (not provisioning's cached one), so event hooks stay with one test."""
    options: dict[str, Any] = {"retries": {"total_max_attempts": 1}, "connect_timeout": 2, "read_timeout": 10}
    options.update(config)
    return boto3.client("kms", endpoint_url=endpoint, region_name=REGION, config=Config(**options))


class DecryptCounter:
    def __init__(self, client: Any) -> None:
        self.calls = 0
        self._lock = threading.Lock()
        client.meta.events.register("before-call.kms.Decrypt", self)

    def __call__(self, **_: Any) -> None:
        with self._lock:
            self.calls += 1


@pytest.fixture
def kms(moto_server: str) -> Any:
    return _kms(moto_server)


@pytest.fixture
def key_id(kms: Any) -> str:
    return str(kms.create_key(Description="pii test")["KeyMetadata"]["KeyId"])


def test_round_trip(kms: Any, key_id: str) -> None:
    cipher: FieldCipher = KmsFieldCipher(kms, key_id)
    context = _context()
    sealed = cipher.seal(context, FIELDS)
    assert set(sealed.fields) == set(FIELDS)
    assert cipher.unseal(context, sealed) == FIELDS
    # A fresh cipher (no cache) unwraps through KMS as well.
    assert KmsFieldCipher(kms, key_id).unseal(context, sealed) == FIELDS


def test_raw_sealed_fields_hold_no_plaintext(kms: Any, key_id: str) -> None:
    sealed = KmsFieldCipher(kms, key_id).seal(_context(), FIELDS)
    blobs = [sealed.wrapped_key, *sealed.fields.values()]
    for value in FIELDS.values():
        for fragment in {value, value[:8], value[-8:]}:
            assert all(fragment.encode() not in blob for blob in blobs)
    # Each data key is new: two seals of one item share neither data key nor ciphertext.
    again = KmsFieldCipher(kms, key_id).seal(_context(), FIELDS)
    assert again.wrapped_key != sealed.wrapped_key
    assert not set(again.fields.values()) & set(sealed.fields.values())


def test_one_generate_data_key_per_seal(kms: Any, key_id: str) -> None:
    calls: list[dict[str, Any]] = []
    kms.meta.events.register(
        "provide-client-params.kms.GenerateDataKey", lambda params, **_: calls.append(params)
    )
    context = _context()
    KmsFieldCipher(kms, key_id).seal(context, FIELDS)
    assert calls == [{"KeyId": key_id, "KeySpec": "AES_256", "EncryptionContext": context}]


def test_moto_enforces_the_encryption_context(kms: Any, key_id: str) -> None:
    context = _context()
    sealed = KmsFieldCipher(kms, key_id).seal(context, FIELDS)
    for other in ({**context, "pk": "DONOR#other"}, {**context, "table": "other"}, {}):
        with pytest.raises(SealBroken) as caught:
            KmsFieldCipher(kms, key_id).unseal(other, sealed)
        assert "DONOR" not in str(caught.value)


def test_fields_are_bound_to_their_attribute_and_item(kms: Any, key_id: str) -> None:
    """The AES-GCM associated data, independent of KMS (the data key comes from the cache here)."""
    cipher = KmsFieldCipher(kms, key_id)
    context = _context()
    sealed = cipher.seal(context, FIELDS)
    assert cipher.unseal(context, sealed) == FIELDS
    swapped = dict(sealed.fields)
    swapped["phone"], swapped["address"] = swapped["address"], swapped["phone"]
    with pytest.raises(SealBroken):
        cipher.unseal(context, SealedFields(sealed.wrapped_key, swapped))
    tampered = dict(sealed.fields)
    tampered["phone"] = tampered["phone"][:-1] + bytes([tampered["phone"][-1] ^ 1])
    with pytest.raises(SealBroken):
        cipher.unseal(context, SealedFields(sealed.wrapped_key, tampered))
    # A field copied into another donor's item, with that item's data key and context.
    other_context = _context()
    other = cipher.seal(other_context, {"phone": "+44 7700 900999"})
    with pytest.raises(SealBroken):
        cipher.unseal(other_context, SealedFields(other.wrapped_key, {"phone": sealed.fields["phone"]}))


def test_tampered_wrapped_key_fails_closed(kms: Any, key_id: str) -> None:
    context = _context()
    sealed = KmsFieldCipher(kms, key_id).seal(context, FIELDS)
    tampered = sealed.wrapped_key[:-1] + bytes([sealed.wrapped_key[-1] ^ 1])
    with pytest.raises(SealBroken):
        KmsFieldCipher(kms, key_id).unseal(context, SealedFields(tampered, sealed.fields))
    with pytest.raises(SealBroken):
        KmsFieldCipher(kms, key_id).unseal(context, SealedFields(b"", sealed.fields))


def test_data_key_of_another_kms_key_fails_closed(kms: Any, key_id: str) -> None:
    context = _context()
    sealed = KmsFieldCipher(kms, key_id).seal(context, FIELDS)
    other_key = kms.create_key()["KeyMetadata"]["KeyId"]
    # AWS answers IncorrectKeyException (SealBroken); moto answers AccessDeniedException.
    with pytest.raises((SealBroken, DependencyUnavailable)) as caught:
        KmsFieldCipher(kms, other_key).unseal(context, sealed)
    assert other_key not in str(caught.value)
    assert key_id not in str(caught.value)


def test_disabled_key_fails_closed(moto_server: str) -> None:
    kms = _kms(moto_server)
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    context = _context()
    sealed = KmsFieldCipher(kms, key_id).seal(context, FIELDS)
    kms.disable_key(KeyId=key_id)
    with pytest.raises(DependencyUnavailable, match="DisabledException") as caught:
        KmsFieldCipher(kms, key_id).seal(_context(), FIELDS)
    assert key_id not in str(caught.value)
    with pytest.raises(DependencyUnavailable, match="DisabledException"):
        KmsFieldCipher(kms, key_id).unseal(context, sealed)
    kms.enable_key(KeyId=key_id)
    assert KmsFieldCipher(kms, key_id).unseal(context, sealed) == FIELDS


def test_key_pending_import_fails_closed(moto_server: str) -> None:
    kms = _kms(moto_server)
    metadata = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]
    assert metadata["KeyState"] == "PendingImport"
    with pytest.raises(DependencyUnavailable, match="KMSInvalidStateException"):
        KmsFieldCipher(kms, metadata["KeyId"]).seal(_context(), FIELDS)


def test_kms_unreachable_fails_closed(kms: Any, key_id: str) -> None:
    context = _context()
    sealed = KmsFieldCipher(kms, key_id).seal(context, FIELDS)
    closed = f"http://127.0.0.1:{engines.free_port()}"
    cipher = KmsFieldCipher(_kms(closed, connect_timeout=0.5, read_timeout=0.5), key_id)
    with pytest.raises(DependencyUnavailable, match="unreachable") as caught:
        cipher.seal(context, FIELDS)
    assert key_id not in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__
    with pytest.raises(DependencyUnavailable, match="unreachable"):
        cipher.unseal(context, sealed)


def test_unsealing_one_item_twice_calls_decrypt_once(kms: Any, key_id: str) -> None:
    counter = DecryptCounter(kms)
    cipher = KmsFieldCipher(kms, key_id)
    context = _context()
    sealed = cipher.seal(context, FIELDS)
    assert counter.calls == 0  # sealing does not keep the data key
    assert cipher.unseal(context, sealed) == FIELDS
    assert cipher.unseal(context, sealed) == FIELDS
    assert counter.calls == 1
    # The cache is keyed by context too: another context still asks KMS (and fails).
    with pytest.raises(SealBroken):
        cipher.unseal({**context, "pk": "DONOR#other"}, sealed)
    assert counter.calls == 2
    cipher.clear_cache()
    assert cipher.unseal(context, sealed) == FIELDS
    assert counter.calls == 3


def test_cache_entries_expire_and_are_bounded(kms: Any, key_id: str) -> None:
    counter = DecryptCounter(kms)
    now = [1000.0]
    cipher = KmsFieldCipher(kms, key_id, cache_ttl_seconds=300, cache_max_entries=2, clock=lambda: now[0])
    items = [
        (context, cipher.seal(context, {"phone": f"+44 7700 90000{i}"}))
        for i, context in enumerate([_context() for _ in range(3)])
    ]
    context, sealed = items[0]
    cipher.unseal(context, sealed)
    now[0] += 299
    cipher.unseal(context, sealed)
    assert counter.calls == 1
    now[0] += 2
    cipher.unseal(context, sealed)
    assert counter.calls == 2
    for other_context, other in items[1:]:
        cipher.unseal(other_context, other)
    assert counter.calls == 4
    cipher.unseal(context, sealed)  # evicted: at most two entries
    assert counter.calls == 5


def test_cache_is_safe_across_threads(kms: Any, key_id: str) -> None:
    counter = DecryptCounter(kms)
    cipher = KmsFieldCipher(kms, key_id)
    items = [(context, cipher.seal(context, FIELDS)) for context in [_context() for _ in range(4)]]
    errors: list[BaseException] = []

    def read() -> None:
        try:
            for _ in range(5):
                for context, sealed in items:
                    assert cipher.unseal(context, sealed) == FIELDS
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(items) <= counter.calls <= len(items) * len(threads)  # misses may race; no more


# --- the local PII key across moto restarts ------------------------------------------------------
ALIAS = "alias/bloodbank-pii-test"


def _start_moto(tmp_path: Path, name: str, avoid: set[int]) -> tuple[engines.Engine, str]:
    port = engines.free_port()
    while port in avoid:
        port = engines.free_port()
    avoid.add(port)
    engine = engines.moto_server(port, tmp_path / f"{name}.log")
    engine.start()
    return engine, f"http://127.0.0.1:{port}"


@pytest.mark.timeout(120)
def test_sealed_fields_survive_a_moto_restart(tmp_path: Path) -> None:
    """Seal on one moto server, stop it, start a fresh one, provision again: the old item opens.

    Starts three moto servers (a few seconds).
    """
    material = tmp_path / "state" / "pii-key.material"
    ports: set[int] = set()
    context = _context()

    first, endpoint = _start_moto(tmp_path, "first", ports)
    try:
        key_id = provisioning.ensure_pii_key(endpoint, REGION, ALIAS, str(material))
        assert provisioning.ensure_pii_key(endpoint, REGION, ALIAS, str(material)) == key_id
        kms = _kms(endpoint)
        assert [k["KeyId"] for k in kms.list_keys()["Keys"]] == [key_id]
        assert kms.describe_key(KeyId=ALIAS)["KeyMetadata"]["KeyState"] == "Enabled"
        sealed = KmsFieldCipher(kms, ALIAS).seal(context, FIELDS)
    finally:
        first.stop()
    assert stat.S_IMODE(material.stat().st_mode) == 0o600
    assert len(material.read_bytes()) == 32

    second, endpoint = _start_moto(tmp_path, "second", ports)
    try:
        assert provisioning.ensure_pii_key(endpoint, REGION, ALIAS, str(material)) == key_id
        assert KmsFieldCipher(_kms(endpoint), ALIAS).unseal(context, sealed) == FIELDS
    finally:
        second.stop()

    # The material is what makes it work: same key id, other material -> the data key does not open.
    other_material = tmp_path / "other" / "pii-key.material"
    third, endpoint = _start_moto(tmp_path, "third", ports)
    try:
        assert provisioning.ensure_pii_key(endpoint, REGION, ALIAS, str(other_material)) == key_id
        with pytest.raises(SealBroken):
            KmsFieldCipher(_kms(endpoint), ALIAS).unseal(context, sealed)
    finally:
        third.stop()


def test_reimporting_other_material_is_refused(moto_server: str, tmp_path: Path) -> None:
    from botocore.exceptions import ClientError
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    alias = f"alias/reimport-{uuid.uuid4().hex[:8]}"
    key_id = provisioning.ensure_pii_key(moto_server, REGION, alias, str(tmp_path / "m"))
    kms = _kms(moto_server)
    parameters = kms.get_parameters_for_import(
        KeyId=key_id, WrappingAlgorithm="RSAES_OAEP_SHA_1", WrappingKeySpec="RSA_2048"
    )
    public: Any = serialization.load_der_public_key(parameters["PublicKey"])
    sha1 = hashes.SHA1()  # noqa: S303 - RSAES_OAEP_SHA_1 is one of KMS's wrapping algorithms
    oaep = padding.OAEP(mgf=padding.MGF1(algorithm=sha1), algorithm=sha1, label=None)
    with pytest.raises(ClientError, match="IncorrectKeyMaterialException"):
        kms.import_key_material(
            KeyId=key_id,
            ImportToken=parameters["ImportToken"],
            EncryptedKeyMaterial=public.encrypt(os.urandom(32), oaep),
            ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
        )
    with pytest.raises(ClientError, match="InvalidImportTokenException"):
        kms.import_key_material(
            KeyId=key_id,
            ImportToken=b"forged",
            EncryptedKeyMaterial=public.encrypt((tmp_path / "m").read_bytes(), oaep),
            ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
        )


def test_material_file_of_the_wrong_size_is_refused(moto_server: str, tmp_path: Path) -> None:
    material = tmp_path / "m"
    material.write_bytes(b"too short")
    with pytest.raises(provisioning.LocalKeyError, match="32 bytes") as caught:
        provisioning.ensure_pii_key(moto_server, REGION, "alias/short", str(material))
    assert "too short" not in str(caught.value)
