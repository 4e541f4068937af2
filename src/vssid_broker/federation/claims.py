"""Turning the provider's claims into a `VerifiedIdentity`, by configuration.

The real VNeID's claim names are not public; which claim carries the citizen ID, the name and
the birth date (and its format) are settings, checked here on every login.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from vssid_broker.config import Settings
from vssid_broker.errors.login import ClaimsIncomplete
from vssid_broker.identifiers import CITIZEN_ID, mask_citizen_id

PROTOCOL_CLAIMS = frozenset(
    {"iss", "sub", "aud", "exp", "iat", "nbf", "nonce", "azp", "acr", "amr", "auth_time",
     "at_hash", "c_hash", "sid", "jti", "typ"}
)  # fmt: skip
"""ID-token and userinfo claims about the sign-in itself, not about the person."""


@dataclass(frozen=True)
class VerifiedIdentity:
    """Who VNeID says signed in, after every check passed."""

    issuer: str
    subject: str
    citizen_id: str
    full_name: str
    birth_date: date
    gender: str | None
    acr: str
    amr: tuple[str, ...]
    auth_time: int | None = None
    """When the person authenticated at VNeID (the ID token's `auth_time`, OIDC Core §2); None
    when the provider did not say: the sign-in then never counts as fresh for step-up."""
    sid: str | None = None
    """VNeID's session the sign-in belongs to (the ID token's `sid`, Front-Channel Logout §3)."""
    shared_claims: tuple[str, ...] = ()
    """Names of the personal claims VNeID shared (not the protocol's): what consent records."""

    @property
    def masked_citizen_id(self) -> str:
        return mask_citizen_id(self.citizen_id)


@dataclass(frozen=True)
class ProviderAnswer:
    """What a provider profile answers the login story (`federation/profiles.py`)."""

    identity: VerifiedIdentity
    id_token: str | None
    """The ID token, kept sealed for RP-initiated logout's hint; None where there is none."""


def map_identity(
    claims: dict[str, Any], settings: Settings, subject_claim: str | None = None
) -> VerifiedIdentity:
    subject_claim = subject_claim or settings.vneid_subject_claim
    citizen_id = str(claims.get(settings.vneid_citizen_id_claim, ""))
    if not CITIZEN_ID.match(citizen_id):
        raise ClaimsIncomplete("citizen-ID claim missing or not 12 digits")
    full_name = claims.get(settings.vneid_name_claim) or claims.get("name")
    if not isinstance(full_name, str) or not full_name.strip():
        raise ClaimsIncomplete("name claim missing")
    raw_birthdate = str(claims.get(settings.vneid_birthdate_claim, ""))
    try:
        birth_date = datetime.strptime(raw_birthdate, settings.vneid_birthdate_format).date()
    except ValueError as error:
        raise ClaimsIncomplete(
            "birth-date claim missing or not in the configured format"
        ) from error
    subject = claims.get(subject_claim)
    if not isinstance(subject, str | int) or not str(subject):
        raise ClaimsIncomplete("subject claim missing")
    gender = claims.get(settings.vneid_gender_claim)
    amr = claims.get("amr")
    return VerifiedIdentity(
        issuer=str(claims["iss"]),
        subject=str(subject),
        citizen_id=citizen_id,
        full_name=full_name.strip(),
        birth_date=birth_date,
        gender=gender if gender in ("male", "female") else None,
        acr=str(claims["acr"]),
        amr=tuple(str(item) for item in amr) if isinstance(amr, list) else (),
        auth_time=int(at) if isinstance(at := claims.get("auth_time"), int | float) else None,
        sid=sid if isinstance(sid := claims.get("sid"), str) and 0 < len(sid) <= 255 else None,
        shared_claims=tuple(sorted(set(claims) - PROTOCOL_CLAIMS)),
    )
