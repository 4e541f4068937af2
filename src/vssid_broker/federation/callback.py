"""The protocol half of VNeID's callback: is this VNeID's answer, what do we expect of its ID
token, and what may userinfo add. No database, no linking: the login story calls these."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from vssid_broker.config import Settings
from vssid_broker.errors.login import (
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


def authorization_code(params: CallbackParams, metadata: ProviderMetadata) -> str:
    """The code, once the response is known to be VNeID's answer and not an error."""
    # RFC 9207 §2.4: a provider that announces `iss` must send it, and it must be its own.
    iss_expected = params.iss is not None or metadata.sends_iss_in_response
    if iss_expected and params.iss != metadata.issuer:
        raise ProviderIssuerMismatch("authorization response iss missing or foreign")
    if params.error == "access_denied":
        raise ProviderDenied("the person cancelled or refused consent at VNeID")
    if params.error:
        raise ProviderError(f"VNeID returned error {params.error[:40]!r}")
    if not params.code:
        raise ProviderError("authorization response has neither code nor error")
    return params.code


def expectations(
    settings: Settings, metadata: ProviderMetadata, txn: LoginTransaction, now: datetime
) -> Expectations:
    """What the ID token of this login transaction must satisfy (OIDC Core §3.1.3.7)."""
    return Expectations(
        issuer=metadata.issuer,
        client_id=settings.vneid_client_id,
        nonce=txn.nonce,
        allowed_algs=allowed_algs(settings, metadata),
        level2_acr_values=settings.vneid_level2_acr_values,
        now=int(now.timestamp()),
        skew_seconds=settings.id_token_clock_skew_seconds,
        max_age_seconds=settings.vneid_max_age_seconds,
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
