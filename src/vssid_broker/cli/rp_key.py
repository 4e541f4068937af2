"""`vssid-broker keys rp-key`: the relying party's RSA key for VNeID's dialect, whose answers
are encrypted to it (docs/provider-profiles.md). The private part is written owner-only and
never printed; the public part is printed as PEM and as a JWK, for registration at VNeID."""

from __future__ import annotations

import json
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc.jwk import RSAKey

from vssid_broker.config import load_rp_private_key
from vssid_broker.errors import CommandRefused

RP_KEY_BITS = 3072


def make_rp_key(path: Path) -> rsa.RSAPublicKey:
    """A new RSA key at `path` (PKCS#8 PEM, mode 0600); never overwrites a file."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=RP_KEY_BITS)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: an existing key (perhaps the current one) is never replaced by accident.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise CommandRefused(f"{path} exists; choose a new file for a new key") from None
    with os.fdopen(descriptor, "wb") as file:
        file.write(pem)
    return key.public_key()


def ensure_rp_key(path: Path) -> rsa.RSAPublicKey:
    """The key at `path`, made first if there is none (the demo)."""
    if path.exists():
        return load_rp_private_key(path).public_key()
    return make_rp_key(path)


def public_pem(public_key: rsa.RSAPublicKey) -> str:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def public_jwk(public_key: rsa.RSAPublicKey) -> dict[str, object]:
    """RFC 7517 form, `kid` the RFC 7638 thumbprint, for key-encryption (`use: enc`)."""
    jwk = RSAKey.import_key(public_pem(public_key))
    return {**jwk.as_dict(private=False), "kid": jwk.thumbprint(), "use": "enc", "alg": "RSA1_5"}


def print_new_rp_key(path: Path) -> None:
    public_key = make_rp_key(path)
    print(f"RSA private key written to {path} (owner-only); add it to")
    print("VSSID_VNEID_DECRYPTION_KEY_FILES (first = current) and register this public key:")
    print(public_pem(public_key), end="")
    print(json.dumps(public_jwk(public_key), indent=2))
