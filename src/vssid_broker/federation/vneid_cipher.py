"""Opening VNeID's encrypted answers (its integration dialect): `{"data", "key"}`, where
`key` is an AES key wrapped with RSA PKCS#1 v1.5 under the relying party's public key and
`data` the answer under that AES key, in ECB mode or in CBC mode with the IV as the first 16
bytes. The same wrapping protects an encrypted authorization code (`encrypt_key` beside it).

Only `cryptography`'s primitives; nothing here decides what an answer means.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Any, Literal

from cryptography.hazmat.primitives import padding as symmetric_padding
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from vssid_broker.errors.login import DialectAnswerNotJson, DialectDataGarbled, DialectKeyUnknown

Mode = Literal["aes-ecb", "aes-cbc"]
AES_KEY_LENGTHS = frozenset({16, 24, 32})
BLOCK_BYTES = 16


def is_encrypted_answer(payload: dict[str, Any]) -> bool:
    """The dialect's envelope: exactly a `data` and a `key`, both text."""
    return set(payload) == {"data", "key"} and all(isinstance(v, str) for v in payload.values())


def open_answer(
    payload: dict[str, Any], keys: Sequence[RSAPrivateKey], mode: Mode
) -> dict[str, Any]:
    """The JSON object inside an encrypted answer."""
    plaintext = decrypt(str(payload["data"]), str(payload["key"]), keys, mode)
    try:
        opened = json.loads(plaintext)
    except ValueError:
        raise DialectAnswerNotJson("decrypted answer is not JSON") from None
    if not isinstance(opened, dict):
        raise DialectAnswerNotJson("decrypted answer is not a JSON object")
    return opened


def decrypt(data: str, wrapped_key: str, keys: Sequence[RSAPrivateKey], mode: Mode) -> bytes:
    """`data` opened with the AES key that one of `keys` unwraps; each key is tried (during a
    rotation VNeID may still use the previous one)."""
    ciphertext = _b64(data, "data")
    wrapped = _b64(wrapped_key, "key")
    aes_keys = [key for key in (_unwrap(rsa_key, wrapped) for rsa_key in keys) if key]
    if not aes_keys:
        raise DialectKeyUnknown("no configured RSA key opens the answer's AES key")
    for aes_key in aes_keys[:-1]:
        try:
            return _aes_decrypt(aes_key, ciphertext, mode)
        except DialectDataGarbled:
            continue  # a key that unwrapped by chance (PKCS#1 v1.5 implicit rejection)
    return _aes_decrypt(aes_keys[-1], ciphertext, mode)


def _unwrap(rsa_key: RSAPrivateKey, wrapped: bytes) -> bytes | None:
    """The AES key, or None. Where the library answers a wrong key with random bytes instead
    of an error (implicit rejection, against Bleichenbacher's oracle), only a length that
    is an AES key's passes; the padding check after AES catches the rest."""
    try:
        aes_key = rsa_key.decrypt(wrapped, padding.PKCS1v15())
    except ValueError:
        return None
    return aes_key if len(aes_key) in AES_KEY_LENGTHS else None


def _aes_decrypt(aes_key: bytes, ciphertext: bytes, mode: Mode) -> bytes:
    if mode == "aes-cbc":
        iv, ciphertext = ciphertext[:BLOCK_BYTES], ciphertext[BLOCK_BYTES:]
    if not ciphertext or len(ciphertext) % BLOCK_BYTES:
        raise DialectDataGarbled("data is not whole AES blocks (after the IV, in CBC)")
    if mode == "aes-cbc":
        decryptor = Cipher(algorithms.AES(aes_key), modes.CBC(iv)).decryptor()
    else:
        # ECB leaks equal blocks; it is what the integration uses (docs/provider-profiles.md).
        decryptor = Cipher(algorithms.AES(aes_key), modes.ECB()).decryptor()  # noqa: S305
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    unpadder = symmetric_padding.PKCS7(algorithms.AES.block_size).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise DialectDataGarbled("AES padding is wrong (garbled data or another mode)") from None


def _b64(value: str, what: str) -> bytes:
    # Standard base64; a "+" turned into a space by a query parser is taken back.
    try:
        return base64.b64decode(value.replace(" ", "+"), validate=True)
    except (binascii.Error, ValueError):
        raise DialectDataGarbled(f"{what} is not base64") from None
