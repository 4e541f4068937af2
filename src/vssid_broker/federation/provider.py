"""Talking to VNeID over HTTP: discovery, JWKS, the token endpoint.

Metadata and keys are cached in process memory: they are caches of public documents, not
state. An unknown `kid` triggers one JWKS refetch, but never more often than the configured
floor, so a flood of forged tokens cannot turn the broker against the provider.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
from authlib.oauth2.auth import ClientAuth
from joserfc.jwk import KeySet

from vssid_broker.config import Settings, is_loopback_url
from vssid_broker.federation.errors import (
    CodeExchangeFailed,
    ProviderUnavailable,
)

# OIDC Discovery §3: what a provider must publish for the code flow we use.
REQUIRED_METADATA = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")


class ProviderMisconfigured(ProviderUnavailable):
    code = "vneid_metadata_invalid"


@dataclass(frozen=True)
class ProviderMetadata:
    raw: dict[str, Any]

    @property
    def issuer(self) -> str:
        return str(self.raw["issuer"])

    @property
    def authorization_endpoint(self) -> str:
        return str(self.raw["authorization_endpoint"])

    @property
    def token_endpoint(self) -> str:
        return str(self.raw["token_endpoint"])

    @property
    def jwks_uri(self) -> str:
        return str(self.raw["jwks_uri"])

    @property
    def end_session_endpoint(self) -> str | None:
        """OIDC RP-Initiated Logout 1.0 §2.1: absent when the provider does not offer it."""
        value = self.raw.get("end_session_endpoint")
        return str(value) if value else None

    @property
    def sends_iss_in_response(self) -> bool:
        return bool(self.raw.get("authorization_response_iss_parameter_supported", False))

    @property
    def id_token_algs(self) -> list[str]:
        return list(self.raw.get("id_token_signing_alg_values_supported", ["RS256"]))


@dataclass
class _Cached:
    value: Any = None
    fetched_at: float = field(default=float("-inf"))


class ProviderClient:
    """One per process; safe to share between concurrent requests."""

    def __init__(self, settings: Settings, http: httpx.AsyncClient | None = None) -> None:
        self._settings = settings
        self._http = http or httpx.AsyncClient(
            timeout=httpx.Timeout(settings.vneid_http_timeout_seconds),
            follow_redirects=False,
        )
        self._metadata = _Cached()
        self._jwks = _Cached()
        # One lock per document: the JWKS refresh reads the metadata, and asyncio locks
        # are not re-entrant.
        self._metadata_lock = asyncio.Lock()
        self._jwks_lock = asyncio.Lock()

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- discovery ----------------------------------------------------------------------------
    async def metadata(self) -> ProviderMetadata:
        ttl = self._settings.vneid_metadata_ttl_seconds
        if time.monotonic() - self._metadata.fetched_at < ttl:
            return self._metadata.value  # type: ignore[no-any-return]
        async with self._metadata_lock:
            if time.monotonic() - self._metadata.fetched_at < ttl:
                return self._metadata.value  # type: ignore[no-any-return]
            url = f"{self._settings.vneid_issuer}/.well-known/openid-configuration"
            document = await self._get_json(url)
            metadata = self._check_metadata(document)
            self._metadata = _Cached(metadata, time.monotonic())
            return metadata

    def _check_metadata(self, document: dict[str, Any]) -> ProviderMetadata:
        missing = [name for name in REQUIRED_METADATA if not document.get(name)]
        if missing:
            raise ProviderMisconfigured(f"discovery document lacks {', '.join(missing)}")
        # OIDC Discovery §4.3: the issuer in the document must equal the one we asked.
        if document["issuer"] != self._settings.vneid_issuer:
            raise ProviderMisconfigured("discovery issuer differs from the configured issuer")
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            url = str(document[name])
            if not url.startswith("https://") and not is_loopback_url(url):
                raise ProviderMisconfigured(f"{name} is not https")
        return ProviderMetadata(document)

    # --- keys -------------------------------------------------------------------------------
    async def signing_keys(self, *, refresh_for_kid: str | None = None) -> KeySet:
        """The provider's JWKS: refetched when stale, or for an unknown `kid` (rate-floored)."""
        cached: KeySet | None = self._jwks.value
        age = time.monotonic() - self._jwks.fetched_at
        wants_refresh = (
            refresh_for_kid is not None
            and cached is not None
            and all(key.kid != refresh_for_kid for key in cached.keys)
            and age >= self._settings.vneid_jwks_min_refetch_seconds
        )
        if (
            cached is not None
            and age < self._settings.vneid_metadata_ttl_seconds
            and not wants_refresh
        ):
            return cached
        async with self._jwks_lock:
            if self._jwks.value is not cached:  # another request refreshed meanwhile
                return self._jwks.value  # type: ignore[no-any-return]
            metadata = await self.metadata()
            document = await self._get_json(metadata.jwks_uri)
            try:
                key_set = KeySet.import_key_set(document)  # type: ignore[arg-type]
            except Exception as error:
                raise ProviderMisconfigured("JWKS document is not a valid key set") from error
            self._jwks = _Cached(key_set, time.monotonic())
            return key_set

    # --- token endpoint ---------------------------------------------------------------------
    async def exchange_code(
        self, code: str, redirect_uri: str, code_verifier: str
    ) -> dict[str, Any]:
        metadata = await self.metadata()
        body = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
        }
        settings = self._settings
        auth = ClientAuth(
            settings.vneid_client_id,
            settings.vneid_client_secret.get_secret_value(),
            settings.vneid_token_auth_method,
        )
        url, headers, encoded = auth.prepare(
            "POST",
            metadata.token_endpoint,
            {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
            urlencode(body),
        )
        # No retry: an authorization code is single use, a second try could only fail.
        try:
            response = await self._http.post(url, headers=headers, content=encoded)
        except httpx.HTTPError as error:
            raise ProviderUnavailable(
                f"token endpoint unreachable: {type(error).__name__}"
            ) from error
        if response.status_code >= 500:
            raise ProviderUnavailable(f"token endpoint answered HTTP {response.status_code}")
        payload = _json_or_none(response)
        if payload is None:
            raise ProviderUnavailable("token endpoint answered a body that is not JSON")
        if response.status_code != 200 or "error" in payload:
            error_code = str(payload.get("error", f"http_{response.status_code}"))[:40]
            raise CodeExchangeFailed(f"token endpoint refused the code: {error_code}")
        if not isinstance(payload.get("id_token"), str):
            raise CodeExchangeFailed("token response has no id_token")
        return payload

    async def _get_json(self, url: str) -> dict[str, Any]:
        # Reads are idempotent, so one retry on a transport error is safe.
        for attempt in (1, 2):
            try:
                response = await self._http.get(url, headers={"Accept": "application/json"})
            except httpx.TransportError as error:
                if attempt == 2:
                    raise ProviderUnavailable(
                        f"{url} unreachable: {type(error).__name__}"
                    ) from error
                continue
            if response.status_code != 200:
                raise ProviderUnavailable(f"{url} answered HTTP {response.status_code}")
            payload = _json_or_none(response)
            if payload is None:
                raise ProviderUnavailable(f"{url} answered a body that is not a JSON object")
            return payload
        raise AssertionError("unreachable")


def _json_or_none(response: httpx.Response) -> dict[str, Any] | None:
    try:
        payload = response.json()
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None
