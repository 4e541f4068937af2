"""The broker's own signing keys: created, rotated, published, and loaded for signing.

Private keys live in the database encrypted as JWE (dir + A256GCM) under a key-encryption key
that is configured outside the database, so every broker process can sign and a database dump
alone cannot. A new key is published before it signs; a retired key stays published until the
last token it signed has expired.
"""

from __future__ import annotations

import base64
import json
import os
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from joserfc import jwe
from joserfc.jwk import ECKey, KeySet, OctKey, OKPKey
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from vssid_broker.config import Settings
from vssid_broker.sessions.models import BrowserSession, SigningKey

SEALED_COLUMNS: tuple[InstrumentedAttribute[str | None], ...] = (
    BrowserSession.vneid_id_token_sealed,
)
"""Every column holding a value sealed under the key-encryption key (besides the signing keys):
`rotate_key_encryption_key` re-seals each."""

CACHE_SECONDS = 30.0


class KeyEncryptionKeyError(RuntimeError):
    pass


def load_key_encryption_key(settings: Settings) -> OctKey:
    """The key that encrypts private signing keys: from the setting, else from its file.

    For the embedded demo on loopback the file is created on first use; on an https public URL
    the key must be given (`VSSID_KEY_ENCRYPTION_KEY` from a secret store, the same on every
    machine, or an existing file): a key made up there would be another machine's secret.
    A new file next to signing keys made under another key is refused at start-up
    (`SigningKeys.require_openable`), never used.
    """
    if settings.key_encryption_key is not None:
        raw = settings.key_encryption_key.get_secret_value()
    else:
        path = settings.key_encryption_key_file
        if not path.exists() and settings.secure_cookies:
            raise KeyEncryptionKeyError(
                f"no key-encryption key: set VSSID_KEY_ENCRYPTION_KEY or create {path}"
            )
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fresh = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(fresh)
        raw = path.read_text().strip()
    return parse_key_encryption_key(raw)


def parse_key_encryption_key(raw: str) -> OctKey:
    try:
        key_bytes = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
    except ValueError as error:
        raise KeyEncryptionKeyError("the key-encryption key is not base64url") from error
    if len(key_bytes) != 32:
        raise KeyEncryptionKeyError("the key-encryption key must be 32 bytes (base64url)")
    return OctKey.import_key(key_bytes)


def _seal(plaintext: str, key: OctKey) -> str:
    return jwe.encrypt_compact({"alg": "dir", "enc": "A256GCM"}, plaintext, key)


def _generate(alg: str) -> ECKey | OKPKey:
    if alg == "ES256":
        return ECKey.generate_key("P-256", auto_kid=True)
    if alg == "EdDSA":
        return OKPKey.generate_key("Ed25519", auto_kid=True)
    raise ValueError(f"unsupported signing alg {alg}; use ES256 or EdDSA")


@dataclass(frozen=True)
class ActiveKey:
    kid: str
    alg: str
    private: ECKey | OKPKey


class SigningKeys:
    """Process-wide view of the signing keys, refreshed from the database every few seconds."""

    def __init__(self, settings: Settings, encryption_key: OctKey) -> None:
        self._settings = settings
        self._encryption_key = encryption_key
        self._loaded_at = float("-inf")
        self._loaded_for: datetime | None = None
        self._next_change_at: datetime | None = None
        self._active: ActiveKey | None = None
        self._published: dict[str, Any] = {"keys": []}
        self._verification = KeySet([])

    # --- administration -----------------------------------------------------------------------
    async def ensure_active(self, session: AsyncSession, now: datetime) -> None:
        """Create the first key if there is none that can sign now (first start, or all retired)."""
        if await self._current_row(session, now) is None:
            await self._add(session, now, signs_from=now)

    async def rotate(self, session: AsyncSession, now: datetime, publish_ahead: timedelta) -> str:
        """Add a key that signs after `publish_ahead`; the current key signs until then."""
        signs_from = now + publish_ahead
        await session.execute(
            update(SigningKey).where(SigningKey.retired_at.is_(None)).values(retired_at=signs_from)
        )
        row = await self._add(session, now, signs_from=signs_from)
        self._loaded_at = float("-inf")
        return row.kid

    async def _add(self, session: AsyncSession, now: datetime, signs_from: datetime) -> SigningKey:
        alg = self._settings.signing_alg
        key = _generate(alg)
        private_json = json.dumps(key.as_dict(private=True))
        row = SigningKey(
            kid=str(key.kid),
            alg=alg,
            public_jwk={**key.as_dict(private=False), "alg": alg, "use": "sig"},
            private_jwk_encrypted=jwe.encrypt_compact(
                {"alg": "dir", "enc": "A256GCM"}, private_json, self._encryption_key
            ),
            created_at=now,
            signs_from=signs_from,
        )
        session.add(row)
        await session.flush()
        return row

    async def require_openable(self, session: AsyncSession) -> None:
        """Refuse to start when signing keys exist that this key-encryption key cannot open
        (a lost key file silently replaced, a wrong secret): otherwise the broker would report
        ready and fail every login."""
        rows = await session.scalars(select(SigningKey).order_by(SigningKey.signs_from.desc()))
        for row in rows:
            self._decrypt(row)  # raises KeyEncryptionKeyError with the kid and what to do

    async def rotate_key_encryption_key(self, session: AsyncSession, new: OctKey) -> int:
        """Re-encrypt every private signing key and every sealed secret under `new`, in the
        caller's transaction (all or nothing); returns how many values were re-encrypted.
        Every process must then run with the new key."""
        count = 0
        for row in await session.scalars(select(SigningKey)):
            plaintext = self._open(row.private_jwk_encrypted, f"signing key {row.kid}")
            row.private_jwk_encrypted = _seal(plaintext, new)
            count += 1
        for column in SEALED_COLUMNS:
            for holder in await session.scalars(select(column.class_).where(column.is_not(None))):
                sealed = getattr(holder, column.key)
                what = f"{column.class_.__tablename__}.{column.key}"
                setattr(holder, column.key, _seal(self._open(sealed, what), new))
                count += 1
        self._encryption_key = new
        return count

    def _open(self, sealed: str, what: str) -> str:
        try:
            plaintext = jwe.decrypt_compact(sealed, self._encryption_key).plaintext
        except Exception as error:
            raise KeyEncryptionKeyError(
                f"the key-encryption key cannot open {what}: it is not the key the database was "
                "sealed with (VSSID_KEY_ENCRYPTION_KEY, or the file VSSID_KEY_ENCRYPTION_KEY_FILE "
                "names); restore that key, or run `vssid-broker keys rotate-kek` with it"
            ) from error
        assert plaintext is not None
        return plaintext.decode()

    # --- sealing other secrets at rest -------------------------------------------------------
    def seal(self, plaintext: str) -> str:
        """Encrypt a secret kept in the database (JWE dir + A256GCM under the same key). A new
        kind of sealed column is added to `SEALED_COLUMNS`, so `keys rotate-kek` re-seals it."""
        return _seal(plaintext, self._encryption_key)

    def unseal(self, sealed: str) -> str:
        return self._open(sealed, "a sealed value")

    # --- use ----------------------------------------------------------------------------------
    async def refresh(self, session: AsyncSession, now: datetime, *, force: bool = False) -> None:
        if not force and not self._stale(now):
            return
        oldest_needed = now - timedelta(seconds=self._settings.access_token_ttl_seconds)
        rows = list(
            await session.scalars(
                select(SigningKey)
                .where(or_(SigningKey.retired_at.is_(None), SigningKey.retired_at > oldest_needed))
                .order_by(SigningKey.signs_from)
            )
        )
        current = await self._current_row(session, now)
        self._active = self._decrypt(current) if current is not None else None
        self._published = {"keys": [row.public_jwk for row in rows]}
        # No key at all (a database emptied by hand): verification refuses every token (401)
        # and the JWKS is empty, rather than every request failing on an empty key set.
        self._verification = (
            KeySet.import_key_set(self._published)  # type: ignore[arg-type]
            if rows
            else KeySet([])
        )
        self._loaded_at = time.monotonic()
        self._loaded_for = now
        # The next moment the answer changes by itself: a published key starts signing, or a
        # retired key's last token expires and it leaves the JWKS.
        ttl = timedelta(seconds=self._settings.access_token_ttl_seconds)
        changes = [row.signs_from for row in rows if row.signs_from > now] + [
            row.retired_at + ttl for row in rows if row.retired_at is not None
        ]
        self._next_change_at = min((at for at in changes if at > now), default=None)

    def _stale(self, now: datetime) -> bool:
        if time.monotonic() - self._loaded_at >= CACHE_SECONDS:
            return True
        if self._loaded_for is None or now < self._loaded_for:  # first load; clock set back
            return True
        return self._next_change_at is not None and now >= self._next_change_at

    async def active(self, session: AsyncSession, now: datetime) -> ActiveKey:
        await self.refresh(session, now)
        if self._active is None:
            raise RuntimeError("no signing key can sign now; run `vssid-broker keys ensure`")
        return self._active

    async def published(self, session: AsyncSession, now: datetime) -> dict[str, Any]:
        await self.refresh(session, now)
        return self._published

    async def verification_keys(self, session: AsyncSession, now: datetime) -> KeySet:
        await self.refresh(session, now)
        return self._verification

    async def _current_row(self, session: AsyncSession, now: datetime) -> SigningKey | None:
        return await session.scalar(
            select(SigningKey)
            .where(
                SigningKey.signs_from <= now,
                or_(SigningKey.retired_at.is_(None), SigningKey.retired_at > now),
            )
            .order_by(SigningKey.signs_from.desc())
            .limit(1)
        )

    def _decrypt(self, row: SigningKey) -> ActiveKey:
        data = json.loads(self._open(row.private_jwk_encrypted, f"signing key {row.kid}"))
        private: ECKey | OKPKey = (
            ECKey.import_key(data) if data["kty"] == "EC" else OKPKey.import_key(data)
        )
        return ActiveKey(kid=row.kid, alg=row.alg, private=private)
