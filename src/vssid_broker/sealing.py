"""Citizen IDs sealed at rest: AES-GCM under the key-encryption key, found by a blind index.

A citizen ID singles out one person among the whole insured population, so the database never
holds it in the clear: a dump, a replica or a backup alone reveals nothing.

- **Sealed** (`SealedCitizenId` attributes): AES-256-GCM with a fresh 96-bit nonce, under a key
  derived (HKDF-SHA256) from the key-encryption key, so the one configured secret does not
  serve two algorithms. The stored text is ``v2.<key id>.<base64url(nonce ‖ ciphertext)>``; the
  key id names which key-encryption key sealed it, so during a rotation rows sealed under the
  previous key still open while `vssid-broker keys rotate-kek` (or `keys reseal`) re-seals them.
- **Bound to its place** (`SealedPlace`, `Binding`): the associated data names the table, the
  column and the row's owner (a stable key known when the value is sealed: the BHXH code of an
  account, the account of a link, ...). A sealed value copied to another row, column or table
  does not open there: `SealedValueRefused`. Values sealed before (``<key id>.<…>``, under a
  constant associated data) are *unbound*: they still open while
  `VSSID_OPEN_UNBOUND_SEALED_VALUES` allows (counted in `vssid_sealed_values_unbound_opened`)
  until `vssid-broker keys reseal` has bound every one of them.
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
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Generic, NamedTuple, Self, TypeVar, overload

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import SecretStr
from sqlalchemy import ColumnElement
from sqlalchemy.orm import QueryableAttribute

from vssid_broker import metrics
from vssid_broker.config import Settings

log = logging.getLogger(__name__)

_SEAL_INFO = b"vssid-broker citizen-id seal v1"
_UNBOUND_AAD = b"citizen_id"
"""The constant associated data of citizen IDs sealed before they were bound to their row."""
_NONCE_BYTES = 12
BOUND = "v2"
"""The version marker a bound value starts with (``v2.<key id>.<…>``); none before it."""


class KeyUnusable(RuntimeError):
    """A configured key is missing, unreadable, malformed, or does not open what it should:
    the operator mends it, so a command ends with this one line, never a traceback."""


class CitizenIdKeyError(KeyUnusable):
    """The sealing keys are missing, malformed, or do not open a stored value."""


@dataclass(frozen=True)
class SealedPlace:
    """Where a sealed value is kept: a table and column (or, for a value that travels, where it
    travels), and the columns naming the row's owner: a key known when the value is sealed that
    never changes afterwards. `of(owner…)` is what the value is bound to."""

    table: str
    column: str
    owner: tuple[str, ...] = ()
    _prefix: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_prefix", f"{BOUND}\0{self.table}\0{self.column}\0".encode())

    @property
    def name(self) -> str:
        return f"{self.table}.{self.column}"

    def of(self, *owner: object) -> Binding:
        """This place in the row of `owner` (one value per owner column, in order)."""
        if len(owner) == 1 == len(self.owner) and owner[0] is not None:
            # The common case, and the bulk paths': kept to a concatenation.
            return Binding(self, self._prefix + str(owner[0]).encode())
        if len(owner) != len(self.owner) or None in owner:
            raise TypeError(f"{self.name} is bound to its row's {', '.join(self.owner)}")
        parts = [str(part) for part in owner]
        # NUL separates the parts; only the last may hold one and stay unambiguous.
        if any("\0" in part for part in parts[:-1]):
            raise ValueError(f"{self.name}: an owner part holds a NUL character")
        return Binding(self, self._prefix + "\0".join(parts).encode())


class Binding(NamedTuple):
    """A sealed value's place and owner, as the associated data it is sealed with."""

    place: SealedPlace
    associated_data: bytes


class SealedValueRefused(Exception):
    """A sealed value that does not open where it was read: sealed for another row, column or
    table (copied there), or altered; or, once `VSSID_OPEN_UNBOUND_SEALED_VALUES` is off, sealed
    before values were bound at all. Never opened. Its text names the place and the row's id,
    never the value or the owner's key (a BHXH code is personal data)."""

    def __init__(self, place: SealedPlace, *, unbound: bool = False) -> None:
        self.place = place
        self.unbound = unbound
        self.row: str | None = None
        """Which row, where the reader knows it without personal data (e.g. `id 12`)."""
        metrics.SEALED_VALUES_REFUSED.labels(place=place.name).inc()
        super().__init__(place.name)

    def __str__(self) -> str:
        where = f"{self.place.name}" + (f" ({self.row})" if self.row else "")
        if self.unbound:
            return (
                f"a value in {where} was sealed before values were bound to their row, and "
                "VSSID_OPEN_UNBOUND_SEALED_VALUES is off: run `vssid-broker keys reseal`"
            )
        return (
            f"a sealed value in {where} does not open for its row: it was sealed for another "
            "row, column or table (copied there), or altered; it is refused"
        )


def is_bound(sealed: str) -> bool:
    """Sealed in the bound format (its place and owner in the associated data)."""
    return sealed.startswith(f"{BOUND}.")


def seal_bound(aead: AESGCM, kid: str, plaintext: bytes, binding: Binding) -> str:
    """``v2.<kid>.<base64url(nonce ‖ ciphertext)>``: AES-GCM, a fresh nonce, the binding as
    associated data (with the binding's making, under a microsecond more than before)."""
    nonce = os.urandom(_NONCE_BYTES)
    sealed = aead.encrypt(nonce, plaintext, binding.associated_data)
    return f"{BOUND}.{kid}.{b64url(nonce + sealed)}"


def open_bound(
    aeads: Mapping[str, AESGCM],
    sealed: str,
    binding: Binding,
    key_missing: Callable[[str], Exception],
) -> bytes:
    """The plaintext of a bound value; `key_missing(kid)` when no configured key sealed it,
    `SealedValueRefused` when it was not sealed for `binding` (or was altered)."""
    try:
        _, kid, body = sealed.split(".", 2)
    except ValueError:
        raise SealedValueRefused(binding.place) from None
    aead = aeads.get(kid)
    if aead is None:
        raise key_missing(kid)
    try:
        raw = _b64url_decode(body)
        return aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], binding.associated_data)
    except (InvalidTag, ValueError):
        raise SealedValueRefused(binding.place) from None


_unbound_seen: set[str] = set()


def note_unbound(place: SealedPlace, accepted: bool) -> None:
    """An unbound value read at `place`: refused when no longer accepted; otherwise counted,
    and said once per place and process, so an operator knows `keys reseal` has work left."""
    if not accepted:
        raise SealedValueRefused(place, unbound=True)
    metrics.SEALED_VALUES_UNBOUND_OPENED.labels(place=place.name).inc()
    if place.name not in _unbound_seen:
        _unbound_seen.add(place.name)
        log.warning(
            "opened a value in %s sealed before values were bound to their row; "
            "run `vssid-broker keys reseal` to bind them all",
            place.name,
        )


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


def aeads_of(keks: list[bytes]) -> dict[str, AESGCM]:
    """The AES-GCM keys derived from key-encryption keys, by key id, in the order given."""
    derived: dict[str, AESGCM] = {}
    for kek in keks:
        derived.setdefault(key_id(kek), AESGCM(_derive_sealing_key(kek)))
    return derived


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
    unbound_accepted: bool = True
    """Whether values sealed before they were bound to their row still open
    (`VSSID_OPEN_UNBOUND_SEALED_VALUES`): during the upgrade, until `keys reseal` is done."""
    seals_bound: bool = True
    """Whether new values are sealed bound (`VSSID_SEAL_BOUND_VALUES`); off only while pods of
    a release before binding still run beside these, so they can open what these write."""

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
        unbound_accepted: bool = True,
        seals_bound: bool = True,
    ) -> CitizenIdKeys:
        sealing = {kid: AESGCM(key) for kid, key in derived.items()}
        return cls(
            current_kid=current_kid,
            sealing=sealing,
            index_key=index_key,
            derived=derived,
            previous_index_keys=previous_index_keys,
            unbound_accepted=unbound_accepted,
            seals_bound=seals_bound,
        )

    def __reduce__(self) -> tuple[Any, ...]:
        if set(self.derived) != set(self.sealing):
            raise TypeError("these keys were built without their key bytes: they cannot travel")
        return (
            CitizenIdKeys._from_derived,
            (
                self.current_kid,
                self.derived,
                self.index_key,
                self.previous_index_keys,
                self.unbound_accepted,
                self.seals_bound,
            ),
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
        return replace(
            keys,
            previous_index_keys=previous_index_keys,
            unbound_accepted=settings.open_unbound_sealed_values,
            seals_bound=settings.seal_bound_values,
        )

    def for_resealing(self) -> CitizenIdKeys:
        """These keys opening unbound values and sealing bound ones, whatever the settings:
        what `keys reseal` works with."""
        return replace(self, unbound_accepted=True, seals_bound=True)

    def seal(self, citizen_id: str, binding: Binding) -> str:
        if not self.seals_bound:
            return self.seal_unbound(citizen_id)
        return seal_bound(self.sealing[self.current_kid], self.current_kid, citizen_id.encode(),
                          binding)  # fmt: skip

    def open(self, sealed: str, binding: Binding) -> str:
        """The citizen ID sealed for `binding`; `SealedValueRefused` if it was sealed for
        another place or row, `CitizenIdKeyError` if its key is not configured."""
        if is_bound(sealed):
            return open_bound(self.sealing, sealed, binding, self._key_missing).decode()
        note_unbound(binding.place, self.unbound_accepted)
        return self.open_unbound(sealed)

    def seal_unbound(self, citizen_id: str) -> str:
        """The format before values were bound (a constant associated data): for the
        migrations that write what the code of their time read (0008, and 0021's downgrade),
        and while `seals_bound` is off."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self.sealing[self.current_kid].encrypt(nonce, citizen_id.encode(), _UNBOUND_AAD)
        return f"{self.current_kid}.{b64url(nonce + sealed)}"

    def open_unbound(self, sealed: str) -> str:
        kid, _, body = sealed.partition(".")
        aead = self.sealing.get(kid)
        if aead is None:
            raise self._key_missing(kid)
        raw = _b64url_decode(body)
        try:
            return aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _UNBOUND_AAD).decode()
        except InvalidTag as error:
            raise CitizenIdKeyError(f"a citizen ID sealed under key {kid} fails to open") from error

    @staticmethod
    def _key_missing(kid: str) -> CitizenIdKeyError:
        return CitizenIdKeyError(
            f"a citizen ID is sealed under key {kid}, which is not configured "
            "(set VSSID_CITIZEN_ID_PREVIOUS_KEKS during a rotation)"
        )

    def index(self, citizen_id: str) -> str:
        return _index_under(self.index_key, citizen_id)

    def indexes(self, citizen_id: str) -> list[str]:
        """The citizen ID's index under the current key, then under each previous one."""
        keys = [self.index_key, *self.previous_index_keys]
        return [_index_under(key, citizen_id) for key in keys]

    @property
    def current_prefix(self) -> str:
        """What every value bound and sealed under the current key starts with: `keys reseal`
        finds what is left (another key, or unbound) by this, in SQL."""
        return f"{BOUND}.{self.current_kid}."

    def is_current(self, sealed: str) -> bool:
        return sealed.startswith(self.current_prefix)


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


Plain = TypeVar("Plain", str, str | None)


class SealedCitizenId(Generic[Plain]):
    """The plain citizen ID of a row whose column `place.column` holds it sealed, bound to the
    row's owner (`place.owner`): reading opens it, writing seals it (and keeps the blind index
    `index` in step). The owner columns must be set before it: the seal is bound to them.

    Comparing it would compare random ciphertexts in SQL, or silently be False in Python inside
    a query, so every comparison is refused: look up by the blind index instead."""

    def __init__(
        self,
        place: SealedPlace,
        *,
        index: str | None = None,
        check: Callable[[str], None] | None = None,
    ) -> None:
        self.place = place
        self.index = index
        self.check = check
        self.name = "citizen_id"

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type) -> Self: ...
    @overload
    def __get__(self, instance: object, owner: type) -> Plain: ...
    def __get__(self, instance: object | None, owner: type) -> Self | Plain:
        if instance is None:
            return self
        return self.open_from(instance)

    def open_from(self, row: object) -> Plain:
        """The citizen ID held by `row`: a model instance, or a result row with the sealed
        column and the owner columns."""
        sealed: str | None = getattr(row, self.place.column)
        if sealed is None:
            return None  # type: ignore[return-value] # only a nullable column holds None
        binding = self.place.of(*(getattr(row, column) for column in self.place.owner))
        try:
            return installed().open(sealed, binding)
        except SealedValueRefused as refused:
            row_id = getattr(row, "id", None)
            refused.row = f"id {row_id}" if isinstance(row_id, int) else None
            raise

    def sealed_for(self, citizen_id: str, *owner: object) -> str:
        """What the column holds for `citizen_id` in the row of `owner`: for writes below the
        ORM (an INSERT … ON CONFLICT, a bulk load)."""
        return installed().seal(citizen_id, self.place.of(*owner))

    def __set__(self, instance: object, citizen_id: Plain) -> None:
        keys = installed()
        if citizen_id is None:
            sealed, index = None, None
        else:
            if self.check is not None:
                self.check(citizen_id)
            owner = [getattr(instance, column) for column in self.place.owner]
            if any(part is None for part in owner):
                raise TypeError(
                    f"{type(instance).__name__}.{self.name} is sealed for its row's "
                    f"{', '.join(self.place.owner)}: set that first"
                )
            sealed, index = keys.seal(citizen_id, self.place.of(*owner)), keys.index(citizen_id)
        setattr(instance, self.place.column, sealed)
        if self.index is not None:
            setattr(instance, self.index, index)

    def __eq__(self, other: object) -> bool:
        raise TypeError("a sealed citizen ID cannot be compared; use its blind index")

    def __hash__(self) -> int:
        return id(self)
