"""VNeID's integration dialect as a provider profile (docs/provider-profiles.md).

The one public integration of VNeID shows no ID token and no discovery: the code (perhaps
encrypted, `encrypt_key` beside it) is exchanged by a form POST with the client secret, the
token answer and the userinfo answer come perhaps encrypted (`federation/vneid_cipher.py`),
and the identity is userinfo's `citizenPid`, `fullName`, `birthDate` and `accountLevel`.

With no signed statement of identity, what this profile relies on instead (each a check
below): state bound to the browser or the app's own PKCE (the login story), PKCE sent anyway,
the identity only from the configured userinfo URL called with the access token just
obtained, level 2 only from the configured claim values, bounded bodies and timeouts, and
every answer that cannot be opened or read refused with its own code.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlencode

from vssid_broker.config import Settings, VneidClient, load_rp_private_key
from vssid_broker.errors.login import (
    AssuranceLevelMissing,
    AssuranceTooLow,
    CodeExchangeFailed,
    DialectAnswerNotJson,
    DialectAnswerRefused,
    DialectCodeUndecryptable,
    DialectTokenAnswerIncomplete,
    ProviderUnavailable,
)
from vssid_broker.federation import callback, vneid_cipher
from vssid_broker.federation.callback import CallbackParams
from vssid_broker.federation.claims import ProviderAnswer, map_identity
from vssid_broker.federation.models import LoginTransaction
from vssid_broker.federation.provider import ProviderClient

FORM_HEADERS = {
    "Content-Type": "application/x-www-form-urlencoded",
    "Accept": "application/json",
}


class VneidDialectProfile:
    def __init__(self, settings: Settings, provider: ProviderClient) -> None:
        self._settings = settings
        self._provider = provider
        self._keys = [
            load_rp_private_key(Path(name)) for name in settings.vneid_decryption_key_files
        ]

    def level2_request(self) -> dict[str, str]:
        # The dialect knows no acr request: level 2 is checked on userinfo's level claim.
        return {}

    async def verified_identity(
        self, params: CallbackParams, txn: LoginTransaction, client: VneidClient, now: datetime
    ) -> ProviderAnswer:
        settings = self._settings
        metadata = await self._provider.metadata()
        code = self._plain_code(callback.authorization_code(params, metadata), params.encrypt_key)
        tokens = await self._exchange(code, params.encrypt_key, txn, client)
        access_token = tokens.get("access_token")
        if not isinstance(access_token, str) or not access_token:
            raise DialectTokenAnswerIncomplete("token answer has no access_token")
        claims = await self._userinfo(access_token)
        level = claims.get(settings.vneid_level_claim)
        if level is None or level == "":
            raise AssuranceLevelMissing(f"userinfo has no {settings.vneid_level_claim}")
        if str(level) not in settings.vneid_level2_values:
            raise AssuranceTooLow(f"{settings.vneid_level_claim} is not a level-2 value")
        # The signed-in level, named as the standard profile names it, for sessions and tokens.
        asserted = {"iss": settings.vneid_issuer, "acr": settings.vneid_level2_acr_values[0]}
        identity = map_identity(claims | asserted, settings, settings.vneid_dialect_subject_claim)
        return ProviderAnswer(identity, id_token=None)

    def _plain_code(self, code: str, encrypt_key: str | None) -> str:
        if encrypt_key is None:
            return code
        try:
            mode = self._settings.vneid_response_cipher
            return vneid_cipher.decrypt(code, encrypt_key, self._keys, mode).decode("utf-8")
        except (DialectAnswerRefused, UnicodeDecodeError) as error:
            raise DialectCodeUndecryptable(f"encrypted code: {error}") from None

    async def _exchange(
        self, code: str, encrypt_key: str | None, txn: LoginTransaction, client: VneidClient
    ) -> dict[str, Any]:
        form = {
            "grant_type": "authorization_code",
            "client_id": client.client_id,
            "redirect_uri": txn.redirect_uri,
            "code": code,
            # Sent anyway: a provider that honours PKCE binds the code to this login.
            "code_verifier": txn.code_verifier,
        }
        if client.token_auth_method != "none" and client.client_secret is not None:
            form["client_secret"] = client.client_secret.get_secret_value()
        if encrypt_key is not None:
            form["encrypt_key"] = encrypt_key
        # No retry: a code is single use.
        status, body = await self._provider.fetch_bounded(
            "POST", self._settings.vneid_token_endpoint, "token", FORM_HEADERS, urlencode(form)
        )
        if status >= 500:
            raise ProviderUnavailable(f"token endpoint answered HTTP {status}")
        if status != 200:
            raise CodeExchangeFailed(f"token endpoint refused the code: HTTP {status}")
        answer = self._opened(body, "token")
        if "error" in answer:
            raise CodeExchangeFailed(f"token endpoint refused: {str(answer['error'])[:40]}")
        return answer

    async def _userinfo(self, access_token: str) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {access_token}", "Accept": "application/json"}
        status, body = await self._provider.fetch_bounded(
            "GET", self._settings.vneid_userinfo_endpoint, "userinfo", headers
        )
        if status != 200:
            raise ProviderUnavailable(f"userinfo answered HTTP {status}")
        return self._opened(body, "userinfo")

    def _opened(self, body: bytes, what: str) -> dict[str, Any]:
        """The answer as a JSON object: opened when encrypted, as it is when plain."""
        try:
            payload = json.loads(body)
        except ValueError:
            raise DialectAnswerNotJson(f"{what} answer is not JSON") from None
        if not isinstance(payload, dict):
            raise DialectAnswerNotJson(f"{what} answer is not a JSON object")
        if vneid_cipher.is_encrypted_answer(payload):
            return vneid_cipher.open_answer(
                payload, self._keys, self._settings.vneid_response_cipher
            )
        return payload


def code_from_raw_query(query: str) -> tuple[str | None, str | None]:
    """`code` and `encrypt_key` from the callback's raw query string: percent-escapes are
    undone but a "+" stays a "+" (VNeID sends base64 unescaped; a form decoder would make it
    a space). The first occurrence of each counts."""
    found: dict[str, str] = {}
    for part in query.split("&"):
        name, _, value = part.partition("=")
        if name in ("code", "encrypt_key") and name not in found:
            found[name] = unquote(value)
    return found.get("code"), found.get("encrypt_key")
