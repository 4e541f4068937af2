"""Opaque credentials: random values handed out once and stored only as their SHA-256.

Refresh tokens, browser-session cookies, login `state` and its browser binding, and proof
tickets are all of this kind: 256 bits from the operating system's CSPRNG, so a plain hash is
enough (nothing to guess, nothing to stretch), and a stolen database holds nothing usable.
"""

from __future__ import annotations

import hashlib
import secrets


def new_token(n_bytes: int = 32) -> str:
    return secrets.token_urlsafe(n_bytes)


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()
