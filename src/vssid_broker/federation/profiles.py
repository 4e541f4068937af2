"""The one thing the login story asks of VNeID: a verified identity, or a refusal with a
stable code. Two profiles answer it: standard OpenID Connect (here: the code exchanged, the
ID token validated, its claims mapped) and VNeID's integration dialect
(`federation/vneid_dialect.py`: the identity from userinfo, answers perhaps encrypted).
Which one runs is `VSSID_VNEID_PROTOCOL`; `login/flow.py` never asks which.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from vssid_broker.config import Settings, VneidClient
from vssid_broker.federation import callback
from vssid_broker.federation.callback import CallbackParams
from vssid_broker.federation.claims import ProviderAnswer, map_identity
from vssid_broker.federation.id_token import validate_id_token
from vssid_broker.federation.models import LoginTransaction
from vssid_broker.federation.provider import ProviderClient
from vssid_broker.federation.vneid_dialect import VneidDialectProfile


class IdentityProfile(Protocol):
    def level2_request(self) -> dict[str, str]:
        """Parameters of the authorization request that ask for level 2."""
        ...

    async def verified_identity(
        self, params: CallbackParams, txn: LoginTransaction, client: VneidClient, now: datetime
    ) -> ProviderAnswer:
        """Who signed in, every check passed; else raises a `LoginRefused`."""
        ...


class OpenIdConnectProfile:
    """OpenID Connect Core §3.1: the code exchanged with PKCE, the ID token validated
    (signature, iss, aud, azp, exp, iat, nonce, acr), userinfo added if configured."""

    def __init__(self, settings: Settings, provider: ProviderClient) -> None:
        self._settings = settings
        self._provider = provider

    def level2_request(self) -> dict[str, str]:
        return callback.level2_request(self._settings)

    async def verified_identity(
        self, params: CallbackParams, txn: LoginTransaction, client: VneidClient, now: datetime
    ) -> ProviderAnswer:
        provider = self._provider
        metadata = await provider.metadata()
        code = callback.authorization_code(params, metadata)
        token_response = await provider.exchange_code(
            code, txn.redirect_uri, txn.code_verifier, client
        )
        claims = await validate_id_token(
            token_response["id_token"],
            lambda kid: provider.signing_keys(refresh_for_kid=kid),
            callback.expectations(self._settings, metadata, txn, now, client.client_id),
        )
        if self._settings.vneid_fetch_userinfo:
            claims = await callback.with_userinfo(provider, claims, token_response)
        return ProviderAnswer(map_identity(claims, self._settings), token_response["id_token"])


def profile_for(settings: Settings, provider: ProviderClient) -> IdentityProfile:
    if settings.vneid_protocol == "vneid-encrypted":
        return VneidDialectProfile(settings, provider)
    return OpenIdConnectProfile(settings, provider)
