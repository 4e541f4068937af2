"""VNeID's integration dialect, when `SimSettings.protocol` is `vneid-encrypted`: no ID token
and no `iss` in the callback; the token and userinfo answers encrypted as `{"data", "key"}`
(an AES key wrapped with RSA PKCS#1 v1.5 under the relying party's public key, `data` in ECB
or CBC with the IV first); userinfo's claims `citizenPid`, `fullName`, `birthDate`,
`accountType`, `accountLevel`; codes that may carry a "+" and may come encrypted.

The dialect_* faults break exactly one of those things, the way a relying party must notice.
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any

from cryptography.hazmat.primitives import padding as symmetric_padding
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from .citizens import Citizen
from .state import SimState, new_handle

DIALECT = "vneid-encrypted"
AES_KEY_BYTES = 16
OTHER_MODE = {"aes-ecb": "aes-cbc", "aes-cbc": "aes-ecb"}


def speaks_dialect(state: SimState) -> bool:
    return state.settings.protocol == DIALECT


def new_code(state: SimState) -> str:
    """An authorization code; with dialect_plus_in_code, one carrying "+" (base64-like)."""
    code = new_handle()
    if state.faults.take("dialect_plus_in_code"):
        code = f"{code[:20]}+{code[20:]}+"
    return code


def raw_code_query(state: SimState, code: str) -> str:
    """The code's part of the callback query, unescaped as the dialect sends it; with
    dialect_encrypted_code, the code encrypted and its wrapped key as `encrypt_key`."""
    if state.faults.take("dialect_encrypted_code"):
        data, key = encrypt(state, code.encode(), state.settings.answer_cipher)
        return f"code={data}&encrypt_key={key}"
    return f"code={code}"


def citizen_claims(citizen: Citizen, state: SimState) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "citizenPid": citizen.citizen_id,
        "fullName": citizen.full_name,
        "birthDate": citizen.birthdate.strftime("%d/%m/%Y"),
        "accountType": "CONG_DAN",
        "accountLevel": citizen.level,
    }
    if state.faults.take("dialect_level_missing"):
        del claims["accountLevel"]
    if state.faults.take("dialect_level_1"):
        claims["accountLevel"] = 1
    return claims


def sealed(state: SimState, answer: dict[str, Any]) -> dict[str, Any]:
    """The answer as the dialect sends it: plain when so configured (or dialect_plaintext),
    else `{"data", "key"}`, broken by whichever dialect_* fault is pending."""
    if not state.settings.encrypt_answers or state.faults.take("dialect_plaintext"):
        return answer
    mode: str = state.settings.answer_cipher
    if state.faults.take("dialect_other_mode"):
        mode = OTHER_MODE[mode]
    foreign = state.faults.take("dialect_foreign_key") is not None
    data, key = encrypt(state, _json_bytes(answer), mode, foreign_key=foreign)
    if state.faults.take("dialect_garbled_data"):
        # Whole base64, but not whole AES blocks: no key and no mode can open it.
        data = base64.b64encode(base64.b64decode(data)[:-5]).decode()
    return {"data": data, "key": key}


def encrypt(
    state: SimState, plaintext: bytes, mode: str, *, foreign_key: bool = False
) -> tuple[str, str]:
    """`data` and `key`, standard base64."""
    aes_key = os.urandom(AES_KEY_BYTES)
    padder = symmetric_padding.PKCS7(algorithms.AES.block_size).padder()
    padded = padder.update(plaintext) + padder.finalize()
    if mode == "aes-cbc":
        iv = os.urandom(16)
        encryptor = Cipher(algorithms.AES(aes_key), modes.CBC(iv)).encryptor()
    else:
        iv = b""
        encryptor = Cipher(algorithms.AES(aes_key), modes.ECB()).encryptor()  # noqa: S305
    data = iv + encryptor.update(padded) + encryptor.finalize()
    public_key = _foreign_public_key() if foreign_key else rp_public_key(state)
    wrapped = public_key.encrypt(aes_key, padding.PKCS1v15())
    return base64.b64encode(data).decode(), base64.b64encode(wrapped).decode()


def rp_public_key(state: SimState) -> rsa.RSAPublicKey:
    path = state.settings.rp_public_key_file
    if path is None:
        raise RuntimeError("the dialect's encrypted answers need rp_public_key_file")
    key = serialization.load_pem_public_key(path.read_bytes())
    if not isinstance(key, rsa.RSAPublicKey):
        raise RuntimeError(f"{path} is not an RSA public key")
    return key


def _foreign_public_key() -> rsa.RSAPublicKey:
    """A key the relying party does not hold (dialect_foreign_key)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()


def _json_bytes(answer: dict[str, Any]) -> bytes:
    return json.dumps(answer, ensure_ascii=False).encode()
