"""A moto server whose KMS can import key material, so local ciphertext survives a restart.

moto 5.2's KMS gives every key random material held in memory and does not implement
``GetParametersForImport`` or ``ImportKeyMaterial`` (the server answers 500). A moto server starts
empty, so ciphertext written by one run (PII data keys in DynamoDB Local's folder) could never be
decrypted by the next. ``bloodbank.local.engines.moto_server`` runs ``python -m
bloodbank.local.moto_kms`` (same arguments as ``python -m moto.server``), and this module adds,
before serving:

- ``GetParametersForImport`` / ``ImportKeyMaterial`` for ``Origin=EXTERNAL`` symmetric keys
  (RSAES_OAEP_SHA_1 or RSAES_OAEP_SHA_256 wrapping, RSA 2048/3072/4096), as AWS documents them:
  import tokens expire after 24 hours, re-importing different material fails with
  ``IncorrectKeyMaterialException``;
- key states where moto ignores them: an ``EXTERNAL`` key is ``PendingImport`` until its material
  arrives, and Encrypt, Decrypt, GenerateDataKey and ReEncrypt fail with ``DisabledException`` on a
  disabled key and ``KMSInvalidStateException`` on a key pending import or deletion.

``bloodbank.adapters.provisioning.ensure_pii_key`` imports the material, with a key id that is the
same on every fresh server. Nothing here runs against AWS, and moto is imported only in the server.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

TOKEN_LIFETIME_SECONDS = 24 * 3600
_WRAPPING_KEY_BITS = {"RSA_2048": 2048, "RSA_3072": 3072, "RSA_4096": 4096}
_WRAPPING_HASHES = {"RSAES_OAEP_SHA_1": "sha1", "RSAES_OAEP_SHA_256": "sha256"}
_MARK = "_bloodbank_key_import"


@dataclass(frozen=True)
class _ImportParameters:
    account_id: str
    region: str
    key_id: str
    algorithm: str
    private_key: Any  # an RSA private key from cryptography
    valid_to: float


_tokens: dict[bytes, _ImportParameters] = {}
_tokens_lock = threading.Lock()


def _error(error_type: str, message: str) -> Exception:
    from moto.core.exceptions import JsonRESTError

    error = JsonRESTError(error_type, message)
    error.code = 400
    return error


def _check_usable(key: Any) -> None:
    if key.key_state == "Disabled":
        raise _error("DisabledException", f"{key.arn} is disabled.")
    if key.key_state != "Enabled":
        raise _error("KMSInvalidStateException", f"{key.arn} is {key.key_state}.")


def _blob_param(response: Any, name: str) -> bytes:
    value = json.loads(response.body).get(name)
    if not isinstance(value, str):
        raise _error("ValidationException", f"{name} is required")
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:
        raise _error("ValidationException", f"{name} is not base64") from None


def _get_parameters_for_import(self: Any) -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key_id = self._get_param("KeyId")
    algorithm = self._get_param("WrappingAlgorithm")
    spec = self._get_param("WrappingKeySpec")
    self._validate_cmk_id(key_id)
    key = self.kms_backend.describe_key(key_id)
    if key.origin != "EXTERNAL":
        raise _error("UnsupportedOperationException", f"{key.arn} origin is {key.origin} which is not valid")
    if key.key_state in ("PendingDeletion", "Unavailable"):
        raise _error("KMSInvalidStateException", f"{key.arn} is {key.key_state}.")
    if algorithm not in _WRAPPING_HASHES or spec not in _WRAPPING_KEY_BITS:
        raise _error(
            "ValidationException",
            "this local KMS imports with RSAES_OAEP_SHA_1 or RSAES_OAEP_SHA_256 and RSA_2048/3072/4096",
        )
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=_WRAPPING_KEY_BITS[spec])
    token = os.urandom(64)
    valid_to = time.time() + TOKEN_LIFETIME_SECONDS
    with _tokens_lock:
        now = time.time()
        for stale in [t for t, p in _tokens.items() if p.valid_to < now]:
            del _tokens[stale]
        _tokens[token] = _ImportParameters(
            self.current_account, self.region, key.id, algorithm, private_key, valid_to
        )
    public = private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return json.dumps(
        {
            "KeyId": key.arn,
            "ImportToken": base64.b64encode(token).decode(),
            "PublicKey": base64.b64encode(public).decode(),
            "ParametersValidTo": valid_to,
        }
    )


def _import_key_material(self: Any) -> str:
    import hmac

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    key_id = self._get_param("KeyId")
    token = _blob_param(self, "ImportToken")
    encrypted = _blob_param(self, "EncryptedKeyMaterial")
    self._validate_cmk_id(key_id)
    key = self.kms_backend.describe_key(key_id)
    with _tokens_lock:
        parameters = _tokens.get(token)
    if (
        parameters is None
        or parameters.key_id != key.id
        or parameters.account_id != self.current_account
        or parameters.region != self.region
    ):
        raise _error("InvalidImportTokenException", "the import token is not valid for this key")
    if parameters.valid_to < time.time():
        raise _error("ExpiredImportTokenException", "the import token has expired")
    algorithm = hashes.SHA1() if _WRAPPING_HASHES[parameters.algorithm] == "sha1" else hashes.SHA256()  # noqa: S303
    try:
        material = parameters.private_key.decrypt(
            encrypted, padding.OAEP(mgf=padding.MGF1(algorithm=algorithm), algorithm=algorithm, label=None)
        )
    except ValueError:
        raise _error("InvalidCiphertextException", "") from None
    if len(material) != 32:
        raise _error("IncorrectKeyMaterialException", "symmetric key material must be 256 bits")
    previous = getattr(key, _MARK, None)
    if previous is not None and not hmac.compare_digest(previous, material):
        raise _error(
            "IncorrectKeyMaterialException", "the key material differs from what was imported before"
        )
    key.key_material = material
    setattr(key, _MARK, material)
    if key.key_state == "PendingImport":
        key.key_state = "Enabled"
        key.enabled = True
    with _tokens_lock:
        _tokens.pop(token, None)
    return json.dumps({"KeyId": key.arn})


def install() -> None:
    """Teach this process's moto KMS to import key material and to honour key states (idempotent)."""
    from moto.kms import models, responses

    backend_class: Any = models.KmsBackend
    response_class: Any = responses.KmsResponse
    if getattr(backend_class, _MARK, False):
        return

    create_key, encrypt, decrypt, enable_key = (
        backend_class.create_key,
        backend_class.encrypt,
        backend_class.decrypt,
        backend_class.enable_key,
    )

    def create_key_pending_import(self: Any, *args: Any, **kwargs: Any) -> Any:
        key = create_key(self, *args, **kwargs)
        if key.origin == "EXTERNAL":
            key.key_state, key.enabled = "PendingImport", False
        return key

    def encrypt_if_usable(self: Any, key_id: str, *args: Any, **kwargs: Any) -> Any:
        _check_usable(self.keys[self.any_id_to_key_id(key_id)])
        return encrypt(self, key_id, *args, **kwargs)

    def decrypt_if_usable(self: Any, *args: Any, **kwargs: Any) -> Any:
        plaintext, arn = decrypt(self, *args, **kwargs)
        _check_usable(self.keys[self.any_id_to_key_id(arn)])
        return plaintext, arn

    def enable_key_with_material(self: Any, key_id: str) -> None:
        key = self.keys[self.any_id_to_key_id(key_id)]
        if key.key_state == "PendingImport":
            raise _error("KMSInvalidStateException", f"{key.arn} is pending import.")
        enable_key(self, key_id)

    backend_class.create_key = create_key_pending_import
    backend_class.encrypt = encrypt_if_usable
    backend_class.decrypt = decrypt_if_usable
    backend_class.enable_key = enable_key_with_material
    response_class.get_parameters_for_import = _get_parameters_for_import
    response_class.import_key_material = _import_key_material
    setattr(backend_class, _MARK, True)


def main(argv: list[str] | None = None) -> None:
    install()
    from moto.server import main as serve

    serve(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
