"""Opening the dialect's encrypted answers: each helper against answers made with the same
primitives VNeID's sample code uses (RSA PKCS#1 v1.5 key wrap, AES-ECB or AES-CBC)."""

from __future__ import annotations

import base64
import json
import os

import pytest
from cryptography.hazmat.primitives import padding as symmetric_padding
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from vssid_broker.errors.login import (
    DialectAnswerNotJson,
    DialectDataGarbled,
    DialectKeyUnknown,
)
from vssid_broker.federation import vneid_cipher
from vssid_broker.federation.vneid_dialect import code_from_raw_query

CURRENT = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PREVIOUS = rsa.generate_private_key(public_exponent=65537, key_size=2048)
CLAIMS = {"citizenPid": "001085012345", "fullName": "Nguyễn Văn An", "accountLevel": 2}


def sealed(plaintext: bytes, to: rsa.RSAPrivateKey, mode: str) -> dict[str, str]:
    aes_key = os.urandom(16)
    padder = symmetric_padding.PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    if mode == "aes-cbc":
        iv = os.urandom(16)
        encryptor = Cipher(algorithms.AES(aes_key), modes.CBC(iv)).encryptor()
    else:
        iv = b""
        encryptor = Cipher(algorithms.AES(aes_key), modes.ECB()).encryptor()  # noqa: S305
    data = iv + encryptor.update(padded) + encryptor.finalize()
    wrapped = to.public_key().encrypt(aes_key, padding.PKCS1v15())
    return {"data": base64.b64encode(data).decode(), "key": base64.b64encode(wrapped).decode()}


@pytest.mark.parametrize("mode", ["aes-ecb", "aes-cbc"])
def test_an_answer_opens_in_its_mode(mode: vneid_cipher.Mode) -> None:
    answer = sealed(json.dumps(CLAIMS).encode(), CURRENT, mode)
    assert vneid_cipher.is_encrypted_answer(answer)
    assert vneid_cipher.open_answer(answer, [CURRENT], mode) == CLAIMS


def test_every_listed_key_is_tried_during_a_rotation() -> None:
    answer = sealed(json.dumps(CLAIMS).encode(), PREVIOUS, "aes-ecb")
    assert vneid_cipher.open_answer(answer, [CURRENT, PREVIOUS], "aes-ecb") == CLAIMS


def test_a_key_the_broker_does_not_hold_is_named_so() -> None:
    # An answer whose wrapped key CURRENT does not unwrap to an AES key's length, as nearly
    # every wrong key does (implicit rejection answers random bytes, not an error).
    while True:
        answer = sealed(json.dumps(CLAIMS).encode(), PREVIOUS, "aes-ecb")
        try:
            unwrapped = CURRENT.decrypt(base64.b64decode(answer["key"]), padding.PKCS1v15())
        except ValueError:
            break
        if len(unwrapped) not in vneid_cipher.AES_KEY_LENGTHS:
            break
    with pytest.raises(DialectKeyUnknown):
        vneid_cipher.open_answer(answer, [CURRENT], "aes-ecb")


def test_data_cut_short_is_garbled() -> None:
    answer = sealed(json.dumps(CLAIMS).encode(), CURRENT, "aes-cbc")
    answer["data"] = base64.b64encode(base64.b64decode(answer["data"])[:-3]).decode()
    with pytest.raises(DialectDataGarbled):
        vneid_cipher.open_answer(answer, [CURRENT], "aes-cbc")


def test_data_that_is_not_base64_is_garbled() -> None:
    answer = sealed(b"{}", CURRENT, "aes-ecb") | {"data": "***"}
    with pytest.raises(DialectDataGarbled):
        vneid_cipher.open_answer(answer, [CURRENT], "aes-ecb")


def test_a_decrypted_answer_that_is_not_a_json_object_is_refused() -> None:
    with pytest.raises(DialectAnswerNotJson):
        vneid_cipher.open_answer(sealed(b"[1, 2]", CURRENT, "aes-ecb"), [CURRENT], "aes-ecb")


def test_a_plain_answer_is_not_taken_for_an_encrypted_one() -> None:
    assert not vneid_cipher.is_encrypted_answer({"access_token": "x", "token_type": "Bearer"})
    assert not vneid_cipher.is_encrypted_answer({"data": "x", "key": "y", "extra": 1})


def test_the_raw_query_keeps_a_plus_and_undoes_percent_escapes() -> None:
    code, encrypt_key = code_from_raw_query("state=s&code=ab+c%2Fd==&encrypt_key=k+1%3D")
    assert code == "ab+c/d=="
    assert encrypt_key == "k+1="
    assert code_from_raw_query("state=s") == (None, None)
