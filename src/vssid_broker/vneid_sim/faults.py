"""Scripted misbehaviour for relying-party tests: queue a fault, the next response(s) break."""

from __future__ import annotations

from dataclasses import dataclass

ID_TOKEN_FAULTS = (
    "id_token_bad_signature",
    "id_token_alg_none",
    "id_token_hs256_public_key",
    "id_token_wrong_iss",
    "id_token_wrong_aud",
    "id_token_extra_aud_no_azp",
    "id_token_missing_nonce",
    "id_token_wrong_nonce",
    "id_token_expired",
    "id_token_iat_future",
    "id_token_missing_sub",
    "id_token_no_kid_single_key",
    "id_token_no_kid_multiple_keys",
    "id_token_unknown_kid",
    "id_token_wrong_acr",
)
AUTHORIZE_FAULTS = (
    "authorize_access_denied",
    "authorize_server_error",
    "authorize_temporarily_unavailable",
    "authorize_wrong_iss",
    "authorize_missing_iss",
    "authorize_wrong_state",
)
TOKEN_FAULTS = ("token_invalid_grant", "token_http_500", "token_non_json", "token_slow")
OTHER_FAULTS = (
    "userinfo_wrong_sub",
    "userinfo_http_500",
    "discovery_wrong_issuer",
    "jwks_http_500",
)
DIALECT_FAULTS = (
    "dialect_foreign_key",
    "dialect_garbled_data",
    "dialect_other_mode",
    "dialect_plaintext",
    "dialect_level_missing",
    "dialect_level_1",
    "dialect_plus_in_code",
    "dialect_encrypted_code",
    "userinfo_slow",
)
"""VNeID's integration dialect (`dialect.py`): a key the client does not hold, `data` that is
not whole AES blocks, the other AES mode, a plaintext answer, `accountLevel` missing or 1, a
"+" in the code, the code encrypted with `encrypt_key`; and userinfo answering late."""
FAULT_NAMES: tuple[str, ...] = (
    ID_TOKEN_FAULTS + AUTHORIZE_FAULTS + TOKEN_FAULTS + OTHER_FAULTS + DIALECT_FAULTS
)

# The value used wherever a fault puts a wrong issuer; `.invalid` can never resolve.
WRONG_ISSUER = "https://wrong-issuer.invalid"
DEFAULT_SLOW_SECONDS = 5.0


@dataclass
class Fault:
    name: str
    times: int = 1
    delay_seconds: float | None = None


class FaultQueue:
    """Pending faults by name; each use counts one of `times` down."""

    def __init__(self) -> None:
        self._pending: dict[str, Fault] = {}

    def add(self, fault: Fault) -> None:
        if fault.name not in FAULT_NAMES:
            raise ValueError(f"unknown fault {fault.name!r}")
        if fault.times < 1:
            raise ValueError("times must be at least 1")
        existing = self._pending.get(fault.name)
        if existing is not None:
            existing.times += fault.times
            existing.delay_seconds = fault.delay_seconds
        else:
            self._pending[fault.name] = fault

    def take(self, name: str) -> Fault | None:
        """Consume one use of the named fault, if one is pending."""
        fault = self._pending.get(name)
        if fault is None:
            return None
        fault.times -= 1
        if fault.times <= 0:
            del self._pending[name]
        return Fault(fault.name, 1, fault.delay_seconds)

    def take_all(self, names: tuple[str, ...]) -> set[str]:
        return {name for name in names if self.take(name) is not None}

    def clear(self) -> None:
        self._pending.clear()

    def pending(self) -> list[Fault]:
        return list(self._pending.values())
