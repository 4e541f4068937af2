"""The provider's signing keys: the current one, plus rotated-out ones kept for a grace period."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joserfc.jwk import KeySet, RSAKey

SIGNING_ALG = "RS256"


def new_rsa_key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"use": "sig", "alg": SIGNING_ALG}, auto_kid=True)


def load_rsa_key(path: Path) -> RSAKey:
    """Load an RSA private key from a PEM file or a JWK (JSON) file."""
    raw = path.read_bytes()
    key = (
        RSAKey.import_key(json.loads(raw))
        if raw.lstrip().startswith(b"{")
        else RSAKey.import_key(raw)
    )
    if not key.is_private:
        raise ValueError(f"{path} holds a public key; the simulator needs the private key")
    key.ensure_kid()
    return key


@dataclass
class _PublishedKey:
    key: RSAKey
    # When it stopped being the signing key (None for the current one).
    retired_at: float | None = None


class KeyRing:
    def __init__(
        self, first_key: RSAKey, grace_seconds: int, now: Callable[[], float] = time.time
    ) -> None:
        self._keys = [_PublishedKey(first_key)]
        self._grace_seconds = grace_seconds
        self._now = now

    @property
    def signing_key(self) -> RSAKey:
        return self._keys[-1].key

    def rotate(self) -> RSAKey:
        """Publish a new key and sign with it from now on; the old key stays published."""
        self._keys[-1].retired_at = self._now()
        self._keys.append(_PublishedKey(new_rsa_key()))
        return self.signing_key

    def publish_extra_key(self) -> RSAKey:
        """Publish a key that never signs, so the JWKS holds more than one key."""
        extra = _PublishedKey(new_rsa_key(), retired_at=self._now())
        self._keys.insert(0, extra)
        return extra.key

    def published(self) -> list[RSAKey]:
        now = self._now()
        self._keys = [
            k
            for k in self._keys
            if k.retired_at is None or now - k.retired_at < self._grace_seconds
        ]
        return [k.key for k in self._keys]

    def public_key_set(self) -> KeySet:
        return KeySet([RSAKey.import_key(k.as_dict(private=False)) for k in self.published()])

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.as_dict(private=False) for k in self.published()]}
