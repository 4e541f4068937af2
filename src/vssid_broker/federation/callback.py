"""The protocol half of VNeID's callback: is this VNeID's answer, what do we expect of its ID
token, and what may userinfo add. No database, no linking: the login story calls these."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from vssid_broker.config import Settings
from vssid_broker.errors.login import (
    AssuranceTooLow,
    CodeExchangeFailed,
    IdTokenRejected,
    ProviderDenied,
    ProviderError,
    ProviderIssuerMismatch,
)
from vssid_broker.federation.id_token import Expectations
from vssid_broker.federation.models import LoginTransaction
from vssid_broker.federation.provider import ProviderClient, ProviderMetadata


@dataclass(frozen=True)
class CallbackParams:
    """What VNeID sent back to the redirect URI (the browser's query, or the app's body)."""

    state: str | None
    code: str | None
    iss: str | None
    error: str | None = None
    encrypt_key: str | None = None
    """Dialect: the RSA-wrapped AES key of an encrypted `code`."""


UNMET_AUTHENTICATION_REQUIREMENTS = "unmet_authentication_requirements"
"""OpenID Connect Core 1.0 errata 2 §3.1.2.6 error: an essential `acr` cannot be met."""


def level2_request(settings: Settings) -> dict[str, str]:
    """How level 2 is asked for: `acr_values` (voluntary, §3.1.2.1) and, unless turned off, an
    essential `acr` claim (§5.5.1.1), which a provider must meet or refuse before consent.
    Either way the ID token's `acr` is checked afterwards: that check cannot be skipped."""
    params = {"acr_values": " ".join(settings.vneid_level2_acr_values)}
    if settings.vneid_request_essential_acr:
        acr = {"essential": True, "values": list(settings.vneid_level2_acr_values)}
        params["claims"] = json.dumps({"id_token": {"acr": acr}}, separators=(",", ":"))
    return params


def authorization_code(params: CallbackParams, metadata: ProviderMetadata) -> str:
    """The code, once the response is known to be VNeID's answer and not an error."""
    # RFC 9207 §2.4: a provider that announces `iss` must send it, and it must be its own.
    iss_expected = params.iss is not None or metadata.sends_iss_in_response
    if iss_expected and params.iss != metadata.issuer:
        raise ProviderIssuerMismatch("authorization response iss missing or foreign")
    if params.error == "access_denied":
        raise ProviderDenied("the person cancelled or refused consent at VNeID")
    if params.error == UNMET_AUTHENTICATION_REQUIREMENTS:
        # The provider could not sign the person in at level 2 (the essential acr we asked).
        raise AssuranceTooLow("VNeID refused: unmet_authentication_requirements (not level 2)")
    if params.error:
        raise ProviderError(f"VNeID returned error {params.error[:40]!r}")
    if not params.code:
        raise ProviderError("authorization response has neither code nor error")
    return params.code


def expectations(
    settings: Settings,
    metadata: ProviderMetadata,
    txn: LoginTransaction,
    now: datetime,
    client_id: str,
) -> Expectations:
    """What the ID token of this login transaction must satisfy (OIDC Core §3.1.3.7); its
    audience is the registration the login used (the browser's or the app's)."""
    return Expectations(
        issuer=metadata.issuer,
        client_id=client_id,
        nonce=txn.nonce,
        allowed_algs=allowed_algs(settings, metadata),
        level2_acr_values=settings.vneid_level2_acr_values,
        now=int(now.timestamp()),
        skew_seconds=settings.id_token_clock_skew_seconds,
        # The login's own max_age (a step-up) or, failing that, the configured one.
        max_age_seconds=txn.max_age if txn.max_age is not None else settings.vneid_max_age_seconds,
    )


def allowed_algs(settings: Settings, metadata: ProviderMetadata) -> list[str]:
    """Pinned: only algorithms both we and the provider's metadata allow."""
    return [alg for alg in settings.vneid_signing_algs if alg in metadata.id_token_algs]


async def with_userinfo(
    provider: ProviderClient, claims: dict[str, Any], token_response: dict[str, Any]
) -> dict[str, Any]:
    """The ID token's claims completed by userinfo (OIDC Core §5.3)."""
    access_token = token_response.get("access_token")
    if not isinstance(access_token, str):
        raise CodeExchangeFailed("token response has no access_token for userinfo")
    userinfo = await provider.userinfo(access_token)
    # OIDC Core §5.3.4: userinfo about another subject must not be used (token substitution).
    if userinfo.get("sub") != claims["sub"]:
        raise IdTokenRejected(
            "userinfo sub differs from the ID token's", code="userinfo_subject_mismatch"
        )
    # The ID token's signed claims win; userinfo only fills what the token lacks.
    return userinfo | claims
