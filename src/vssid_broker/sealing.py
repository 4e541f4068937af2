"""Citizen IDs sealed at rest: AES-GCM under the key-encryption key, found by a blind index.

A citizen ID singles out one person among the whole insured population, so the database never
holds it in the clear: a dump, a replica or a backup alone reveals nothing.

- **Sealed** (`SealedCitizenId` columns): AES-256-GCM with a fresh 96-bit nonce, under a key
  derived (HKDF-SHA256) from the key-encryption key, so the one configured secret does not
  serve two algorithms. The stored text is ``<key id>.<base64url(nonce ‖ ciphertext)>``; the
  key id names which key-encryption key sealed it, so during a rotation rows sealed under the
  previous key still open while `vssid-broker keys rotate-kek` (or `keys reseal`) re-seals them.
- **Blind index** (`*_index` columns): HMAC-SHA256 under a key of its own. Equal IDs give
  equal indexes, so lookups and the database's unique constraint work on it; without the key
  it cannot be reversed by trying all 10^12 IDs. During its rotation lookups also match the
  index under the previous keys (`has_blind_index`) until `keys reindex-citizen-ids` is done.

The keys are configuration (never in the database) and the same in every broker process; a
process installs them once at start (`install`), before any row is read or written.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import SecretStr
from sqlalchemy import ColumnElement, String
from sqlalchemy.orm import QueryableAttribute
from sqlalchemy.types import TypeDecorator

from vssid_broker.config import Settings

_SEAL_INFO = b"vssid-broker citizen-id seal v1"
_AAD = b"citizen_id"
_NONCE_BYTES = 12


class KeyUnusable(RuntimeError):
    """A configured key is missing, unreadable, malformed, or does not open what it should:
    the operator mends it, so a command ends with this one line, never a traceback."""


class CitizenIdKeyError(KeyUnusable):
    """The sealing keys are missing, malformed, or do not open a stored value."""


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


KEK_SETTING = "VSSID_KEY_ENCRYPTION_KEY"


def load_32_byte_key(
    value: SecretStr | None, path: Path, name: str, *, create: bool = True
) -> bytes:
    """A 32-byte key from a setting (base64url) or, for the embedded demo, from a file that is
    created on first use. Production sets the value from a secret store."""
    raw = value.get_secret_value() if value is not None else read_key_file(path, name, create)
    return decode_32_byte_key(raw, name)


def key_encryption_key_bytes(settings: Settings) -> bytes:
    """The key-encryption key. Its file is made up only for the embedded demo on loopback: on
    an https public URL a key made up here would be another machine's secret."""
    return load_32_byte_key(
        settings.key_encryption_key,
        settings.key_encryption_key_file,
        KEK_SETTING,
        create=not settings.secure_cookies,
    )


def read_key_file(path: Path, name: str, create: bool = True) -> str:
    """The text of a key file, made (a fresh random key, mode 0600) when it is missing and
    `create` allows. A path that cannot be read ends in one line naming the file and the setting,
    like every other key error: never a traceback."""
    try:
        if create and is_absent(path):
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(b64url(os.urandom(32)))
        return path.read_text().strip()
    except FileNotFoundError as error:
        raise KeyUnusable(f"no {_described(name)}: set {name} or create {path}") from error
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not text"
        raise KeyUnusable(
            f"the {_described(name)} file {path} cannot be read ({reason}): give a readable "
            f"file of one base64url key, or set {name}"
        ) from error


def is_absent(path: Path) -> bool:
    """No file at `path` (a directory, or a path through a file, is there but unreadable)."""
    try:
        path.stat()
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return False


def _described(setting: str) -> str:
    return "key-encryption key" if setting == KEK_SETTING else setting


def key_id(kek: bytes) -> str:
    """The name of a key-encryption key in what it sealed: both the citizen-ID prefix and the
    `kid` header of the JWE-sealed secrets. A hash of a key derived from it, so the name
    reveals nothing of the key itself."""
    return hashlib.sha256(_derive_sealing_key(kek)).hexdigest()[:8]


def _derive_sealing_key(kek: bytes) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_SEAL_INFO)
    return hkdf.derive(kek)


def decode_32_byte_key(raw: str, name: str) -> bytes:
    try:
        key = _b64url_decode(raw)
    except ValueError as error:
        raise CitizenIdKeyError(f"{name} is not base64url") from error
    if len(key) != 32:
        raise CitizenIdKeyError(f"{name} must be 32 bytes (base64url)")
    return key


@dataclass(frozen=True)
class CitizenIdKeys:
    """The sealing keys by key id (current first) and the blind-index key."""

    current_kid: str
    sealing: dict[str, AESGCM]
    index_key: bytes
    # The derived keys themselves, so the keys can be handed to a worker process (pickle):
    # AESGCM objects cannot be pickled. Never printed.
    derived: dict[str, bytes] = field(default_factory=dict, repr=False, compare=False)
    previous_index_keys: tuple[bytes, ...] = field(default=(), repr=False)
    """During a blind-index key rotation, the keys rows may still be indexed under: lookups
    try each until `vssid-broker keys reindex-citizen-ids` has re-indexed every row."""

    @classmethod
    def from_secrets(
        cls, current_kek: bytes, previous_keks: list[bytes], index_key: bytes
    ) -> CitizenIdKeys:
        derived: dict[str, bytes] = {}
        for kek in [current_kek, *previous_keks]:
            derived.setdefault(key_id(kek), _derive_sealing_key(kek))
        return cls._from_derived(next(iter(derived)), derived, index_key)

    @classmethod
    def _from_derived(
        cls,
        current_kid: str,
        derived: dict[str, bytes],
        index_key: bytes,
        previous_index_keys: tuple[bytes, ...] = (),
    ) -> CitizenIdKeys:
        sealing = {kid: AESGCM(key) for kid, key in derived.items()}
        return cls(
            current_kid=current_kid,
            sealing=sealing,
            index_key=index_key,
            derived=derived,
            previous_index_keys=previous_index_keys,
        )

    def __reduce__(self) -> tuple[Any, ...]:
        if set(self.derived) != set(self.sealing):
            raise TypeError("these keys were built without their key bytes: they cannot travel")
        return (
            CitizenIdKeys._from_derived,
            (self.current_kid, self.derived, self.index_key, self.previous_index_keys),
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> CitizenIdKeys:
        kek = key_encryption_key_bytes(settings)
        previous = [
            decode_32_byte_key(value.get_secret_value(), "VSSID_CITIZEN_ID_PREVIOUS_KEKS")
            for value in settings.citizen_id_previous_keks
        ]
        index_key = load_32_byte_key(
            settings.blind_index_key, settings.blind_index_key_file, "VSSID_BLIND_INDEX_KEY"
        )
        previous_index_keys = tuple(
            decode_32_byte_key(value.get_secret_value(), "VSSID_BLIND_INDEX_PREVIOUS_KEYS")
            for value in settings.blind_index_previous_keys
        )
        keys = cls.from_secrets(kek, previous, index_key)
        return replace(keys, previous_index_keys=previous_index_keys)

    def seal(self, citizen_id: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self.sealing[self.current_kid].encrypt(nonce, citizen_id.encode(), _AAD)
        return f"{self.current_kid}.{b64url(nonce + sealed)}"

    def open(self, sealed: str) -> str:
        kid, _, body = sealed.partition(".")
        aead = self.sealing.get(kid)
        if aead is None:
            raise CitizenIdKeyError(
                f"a citizen ID is sealed under key {kid}, which is not configured "
                "(set VSSID_CITIZEN_ID_PREVIOUS_KEKS during a rotation)"
            )
        raw = _b64url_decode(body)
        try:
            return aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _AAD).decode()
        except InvalidTag as error:
            raise CitizenIdKeyError(f"a citizen ID sealed under key {kid} fails to open") from error

    def index(self, citizen_id: str) -> str:
        return _index_under(self.index_key, citizen_id)

    def indexes(self, citizen_id: str) -> list[str]:
        """The citizen ID's index under the current key, then under each previous one."""
        keys = [self.index_key, *self.previous_index_keys]
        return [_index_under(key, citizen_id) for key in keys]

    def is_current(self, sealed: str) -> bool:
        return sealed.startswith(f"{self.current_kid}.")


def _index_under(key: bytes, citizen_id: str) -> str:
    return hmac.new(key, citizen_id.encode(), hashlib.sha256).hexdigest()


_installed: CitizenIdKeys | None = None
_IndexColumn = (
    ColumnElement[str]
    | ColumnElement[str | None]
    | QueryableAttribute[str]
    | QueryableAttribute[str | None]
)


def install(keys: CitizenIdKeys) -> None:
    """Make `keys` the ones this process seals, opens and indexes with (at start-up)."""
    global _installed
    _installed = keys


def installed() -> CitizenIdKeys:
    if _installed is None:
        raise CitizenIdKeyError("citizen-ID keys are not loaded in this process")
    return _installed


def blind_index(citizen_id: str) -> str:
    """What a citizen ID is indexed by now: what `*_index` columns are written with."""
    return installed().index(citizen_id)


def has_blind_index(column: _IndexColumn, citizen_id: str) -> ColumnElement[bool]:
    """The condition a lookup by citizen ID uses: the index under the current key or, during a
    blind-index key rotation, under a previous one (rows not yet re-indexed), so no login is
    refused while `keys reindex-citizen-ids` runs. One value, one index probe, otherwise."""
    indexes = installed().indexes(citizen_id)
    return column == indexes[0] if len(indexes) == 1 else column.in_(indexes)


class SealedCitizenId(TypeDecorator[str]):
    """A column holding a sealed citizen ID; Python sees the plain 12 digits.

    Comparing it in SQL would compare random ciphertexts and silently find nothing, so every
    comparison except IS (NOT) NULL is refused: look up by the blind index instead."""

    impl = String(80)
    cache_ok = True

    class comparator_factory(TypeDecorator.Comparator[str]):
        def operate(self, op: Any, *other: Any, **kwargs: Any) -> Any:
            if getattr(op, "__name__", "") not in {"is_", "is_not", "isnot"}:
                raise TypeError("a sealed citizen ID cannot be compared; use its blind index")
            return super().operate(op, *other, **kwargs)

    def process_bind_param(self, value: str | None, dialect: object) -> str | None:
        return None if value is None else installed().seal(value)

    def process_result_value(self, value: str | None, dialect: object) -> str | None:
        return None if value is None else installed().open(value)
