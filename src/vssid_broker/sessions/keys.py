"""The broker's own signing keys: created, rotated, published, and loaded for signing.

Private keys live in the database sealed under a key-encryption key that is configured outside
the database, so every broker process can sign and a database dump alone cannot. A new key is
published before it signs; a retired key stays published until the last token it signed has
expired. The same key seals the other secrets kept in the database (`KeyEncryptionKeys`).
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from joserfc import jwe
from joserfc.jwk import ECKey, KeySet, OctKey, OKPKey
from sqlalchemy import func, inspect, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from vssid_broker.config import Settings
from vssid_broker.db import database
from vssid_broker.sealing import (
    BOUND,
    Binding,
    KeyUnusable,
    aeads_of,
    decode_32_byte_key,
    is_absent,
    is_bound,
    key_encryption_key_bytes,
    key_id,
    note_unbound,
    open_bound,
    seal_bound,
)
from vssid_broker.sessions.models import SIGNING_KEY_PRIVATE_JWK, SigningKey

CACHE_SECONDS = 30.0


class KeyEncryptionKeyError(KeyUnusable):
    pass


def load_key_encryption_key(settings: Settings) -> OctKey:
    """The key that encrypts private signing keys: from the setting, else from its file.

    For the embedded demo on loopback the file is created on first use; on an https public URL
    the key must be given (`VSSID_KEY_ENCRYPTION_KEY` from a secret store, the same on every
    machine, or an existing file): a key made up there would be another machine's secret.
    A missing file next to signing keys is refused before any is made up
    (`refuse_a_lost_key_file`), and a file that opens none of them at start-up
    (`SigningKeys.require_openable`).
    """
    try:
        return OctKey.import_key(key_encryption_key_bytes(settings))
    except KeyUnusable as error:
        raise KeyEncryptionKeyError(str(error)) from None


def parse_key_encryption_key(raw: str) -> OctKey:
    try:
        return OctKey.import_key(decode_32_byte_key(raw, "the key-encryption key"))
    except KeyUnusable as error:
        raise KeyEncryptionKeyError(str(error)) from None


async def refuse_a_lost_key_file(settings: Settings) -> None:
    """Before a missing key-encryption-key file is made up (the embedded demo's first start),
    make sure the database holds no signing key: one there was sealed under a key this file no
    longer holds, and a new key would open nothing while it lay about as if it were the key."""
    if settings.key_encryption_key is not None or not is_absent(settings.key_encryption_key_file):
        return
    async with database(settings, current_schema=False) as db, db.engine.connect() as connection:
        if not await connection.run_sync(lambda sync: inspect(sync).has_table("signing_keys")):
            return
        held = await connection.scalar(select(func.count()).select_from(SigningKey))
    if held:
        raise KeyEncryptionKeyError(
            f"the key-encryption key file {settings.key_encryption_key_file} is missing, but the "
            f"database holds {held} signing keys sealed under it: restore the file (or set "
            "VSSID_KEY_ENCRYPTION_KEY to that key); a new key would open none of them"
        )


class KeyEncryptionKeys:
    """The key-encryption key that seals (current) and the ones that still open (previous,
    during a rotation), for the secrets kept in the database: private signing keys, staff
    second factors, VNeID's ID tokens (and values that travel: a login's outcome reference).

    Each value is sealed as ``v2.<key id>.<AES-GCM>`` (`sealing.seal_bound`) with its place and
    row owner as associated data, so it names its key (a rotation can tell what it has already
    moved) and does not open anywhere else. Values sealed before that are JWE (dir + A256GCM,
    with or without a `kid` header): unbound, opened while `unbound_accepted` allows."""

    def __init__(
        self,
        current: OctKey,
        previous: list[OctKey] | None = None,
        *,
        unbound_accepted: bool = True,
        seals_bound: bool = True,
    ) -> None:
        self.current = current
        self.current_kid = key_id(current.raw_value)
        self.unbound_accepted = unbound_accepted
        self.seals_bound = seals_bound
        """Off only during a rolling upgrade from a release before binding (as in
        `sealing.CitizenIdKeys.seals_bound`): new values are then sealed as JWE."""
        self._by_kid = {key_id(key.raw_value): key for key in [current, *(previous or [])]}
        self._aeads = aeads_of([key.raw_value for key in self._by_kid.values()])

    @classmethod
    def configured(cls, settings: Settings, current: OctKey) -> KeyEncryptionKeys:
        previous = [
            parse_key_encryption_key(value.get_secret_value())
            for value in settings.citizen_id_previous_keks
        ]
        return cls(
            current,
            previous,
            unbound_accepted=settings.open_unbound_sealed_values,
            seals_bound=settings.seal_bound_values,
        )

    def all_keys(self) -> list[OctKey]:
        return list(self._by_kid.values())

    def for_resealing(self) -> KeyEncryptionKeys:
        """These keys opening unbound values and sealing bound ones, whatever the settings:
        what `keys reseal` works with."""
        keys = self.all_keys()
        return KeyEncryptionKeys(keys[0], keys[1:])

    def seal(self, plaintext: str, binding: Binding) -> str:
        if not self.seals_bound:
            return self.seal_unbound(plaintext)
        aead = self._aeads[self.current_kid]
        return seal_bound(aead, self.current_kid, plaintext.encode(), binding)

    @property
    def sealed_prefix(self) -> str:
        """What every value sealed under the current key starts with: a rotation (or the
        binding of unbound values) finds what is left to move by this, in SQL."""
        return f"{BOUND}.{self.current_kid}."

    def open(self, sealed: str, binding: Binding, what: str | None = None) -> str:
        """The secret sealed for `binding`: `KeyEncryptionKeyError` (naming `what`, else the
        place) when no configured key sealed it, `sealing.SealedValueRefused` when it was
        sealed for another place or row, or altered."""
        described = what or binding.place.name

        def key_missing(_kid: str) -> KeyEncryptionKeyError:
            return self._cannot_open(described)

        if is_bound(sealed):
            return open_bound(self._aeads, sealed, binding, key_missing).decode()
        note_unbound(binding.place, self.unbound_accepted)
        return self.open_unbound(sealed, described)

    def seal_unbound(self, plaintext: str) -> str:
        """The JWE of before values were bound: for migration 0021's downgrade, and while
        `seals_bound` is off."""
        header = {"alg": "dir", "enc": "A256GCM", "kid": self.current_kid}
        return jwe.encrypt_compact(header, plaintext, self.current)

    def open_unbound(self, sealed: str, what: str) -> str:
        kid = _protected_header(sealed).get("kid")
        # Values sealed before keys were named carry no kid: any configured key may open them.
        if kid is None:
            candidates = list(self._by_kid.values())
        else:
            candidates = [self._by_kid[kid]] if kid in self._by_kid else []
        for key in candidates:
            try:
                plaintext = jwe.decrypt_compact(sealed, key).plaintext
            except Exception:  # noqa: S112 - the next key may open it; none does: refused below
                continue
            assert plaintext is not None
            return plaintext.decode()
        raise self._cannot_open(what)

    @staticmethod
    def _cannot_open(what: str) -> KeyEncryptionKeyError:
        return KeyEncryptionKeyError(
            f"the key-encryption key cannot open {what}: it is not the key the database was "
            "sealed with (VSSID_KEY_ENCRYPTION_KEY, or the file VSSID_KEY_ENCRYPTION_KEY_FILE "
            "names); restore that key, or run `vssid-broker keys rotate-kek` with it"
        )


def _protected_header(sealed: str) -> dict[str, Any]:
    try:
        header = json.loads(base64.urlsafe_b64decode(sealed.split(".", 1)[0] + "=="))
    except ValueError:
        return {}
    return header if isinstance(header, dict) else {}


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
        self.encryption_keys = KeyEncryptionKeys.configured(settings, encryption_key)
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
            private_jwk_encrypted=self.encryption_keys.seal(
                private_json, SIGNING_KEY_PRIVATE_JWK.of(str(key.kid))
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

    # --- sealing other secrets at rest -------------------------------------------------------
    def seal(self, plaintext: str, binding: Binding) -> str:
        """Seal a secret for its place and row (`sealing.SealedPlace.of`) under the same key. A
        new kind of sealed column is added to `housekeeping.KEK_SEALED`, so `keys rotate-kek`
        re-seals it."""
        return self.encryption_keys.seal(plaintext, binding)

    def unseal(self, sealed: str, binding: Binding) -> str:
        return self.encryption_keys.open(sealed, binding)

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

    def loaded_verification_keys(self, now: datetime) -> KeySet | None:
        """The verification keys as loaded, while they need no refresh; None when they do
        (then `verification_keys`, with a session)."""
        return None if self._stale(now) else self._verification

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
        sealed, binding = row.private_jwk_encrypted, SIGNING_KEY_PRIVATE_JWK.of(row.kid)
        data = json.loads(self.encryption_keys.open(sealed, binding, f"signing key {row.kid}"))
        private: ECKey | OKPKey = (
            ECKey.import_key(data) if data["kty"] == "EC" else OKPKey.import_key(data)
        )
        return ActiveKey(kid=row.kid, alg=row.alg, private=private)


def derive_key(key_encryption_key: bytes, purpose: str) -> bytes:
    """A key for one purpose from the key-encryption key (HKDF, RFC 5869): the same in every
    process, and never the key-encryption key itself."""
    return HKDF(hashes.SHA256(), 32, salt=None, info=f"vssid-broker {purpose}".encode()).derive(
        key_encryption_key
    )
