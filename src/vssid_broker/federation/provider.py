"""Talking to VNeID over HTTP: discovery, JWKS, PAR, the token and userinfo endpoints.

Metadata and keys are cached in process memory: they are caches of public documents, not
state. A `kid` not seen before triggers a JWKS refetch at once: VNeID publishes a new key and
signs with it, and a login it signed must not wait out a floor (each refused one burns the
person's VNeID sign-in). The same unknown `kid` again refetches no more often than the
configured floor, and one refetch at a time serves every request waiting for one, so a flood
of forged tokens cannot turn the broker against the provider.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from authlib.oauth2.auth import ClientAuth
from joserfc.jwk import KeySet

from vssid_broker import metrics
from vssid_broker.config import Settings, VneidClient, is_loopback_url
from vssid_broker.errors.login import (
    CodeExchangeFailed,
    DialectAnswerTooLarge,
    LoginRefused,
    ProviderMisconfigured,
    ProviderRefusedRequest,
    ProviderUnavailable,
)
from vssid_broker.federation.outbound import (
    AnswerTooLarge,
    OutboundClient,
    OutboundError,
    OutboundResponse,
)

# OIDC Discovery §3: what a provider must publish for the code flow we use.
REQUIRED_METADATA = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")


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
    def frontchannel_logout_session_supported(self) -> bool:
        return bool(self.raw.get("frontchannel_logout_session_supported", False))

    @property
    def sends_iss_in_response(self) -> bool:
        return bool(self.raw.get("authorization_response_iss_parameter_supported", False))

    @property
    def par_endpoint(self) -> str | None:
        value = self.raw.get("pushed_authorization_request_endpoint")
        return str(value) if value else None

    @property
    def userinfo_endpoint(self) -> str | None:
        value = self.raw.get("userinfo_endpoint")
        return str(value) if value else None

    @property
    def id_token_algs(self) -> list[str]:
        return list(self.raw.get("id_token_signing_alg_values_supported", ["RS256"]))


@dataclass
class _Cached:
    value: Any = None
    fetched_at: float = field(default=float("-inf"))


AssertionSigner = Callable[[dict[str, Any]], Awaitable[str]]
"""Signs a client assertion (RFC 7523) with the broker's current key; the JWT as a string."""

MISSED_KIDS_REMEMBERED = 1000

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CLIENT_ASSERTION_LIFETIME_SECONDS = 60


class ProviderClient:
    """One per process; safe to share between concurrent requests."""

    def __init__(
        self,
        settings: Settings,
        http: OutboundClient | None = None,
        assertion_signer: AssertionSigner | None = None,
    ) -> None:
        self._settings = settings
        self._assertion_signer = assertion_signer
        self._http = http or OutboundClient(timeout_seconds=settings.vneid_http_timeout_seconds)
        self._metadata = _Cached()
        self._jwks = _Cached()
        # One lock per document: the JWKS refresh reads the metadata, and asyncio locks
        # are not re-entrant.
        self._metadata_lock = asyncio.Lock()
        self._jwks_lock = asyncio.Lock()
        self._missed_kids: dict[str, float] = {}
        """Unknown `kid`s already refetched for, with when (monotonic); bounded."""

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- discovery ----------------------------------------------------------------------------
    async def metadata(self) -> ProviderMetadata:
        if self._settings.vneid_protocol == "vneid-encrypted":
            return configured_metadata(self._settings)
        ttl = self._settings.vneid_metadata_ttl_seconds
        if time.monotonic() - self._metadata.fetched_at < ttl:
            return self._metadata.value  # type: ignore[no-any-return]
        async with self._metadata_lock:
            if time.monotonic() - self._metadata.fetched_at < ttl:
                return self._metadata.value  # type: ignore[no-any-return]
            url = discovery_url(self._settings.vneid_issuer)
            try:
                document = await self._get_json(url, "discovery")
                metadata = self._check_metadata(document)
            except LoginRefused:
                metrics.vneid_fetched("discovery", ok=False)
                raise
            metrics.vneid_fetched("discovery", ok=True)
            self._metadata = _Cached(metadata, time.monotonic())
            return metadata

    def _check_metadata(self, document: dict[str, Any]) -> ProviderMetadata:
        missing = [name for name in REQUIRED_METADATA if not document.get(name)]
        if missing:
            raise ProviderMisconfigured(f"discovery document lacks {', '.join(missing)}")
        # OIDC Discovery §4.3: the issuer in the document must equal the configured one,
        # character for character (a trailing "/" included).
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
        if self._settings.vneid_protocol == "vneid-encrypted":
            # The dialect signs nothing (no ID token, no logout token): no key can be trusted.
            raise ProviderMisconfigured("the vneid-encrypted dialect publishes no signing keys")
        cached: KeySet | None = self._jwks.value
        age = time.monotonic() - self._jwks.fetched_at
        wants_refresh = (
            refresh_for_kid is not None
            and cached is not None
            and all(key.kid != refresh_for_kid for key in cached.keys)
            and self._may_refetch_for(refresh_for_kid)
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
            try:
                document = await self._get_json(metadata.jwks_uri, "jwks")
                key_set = KeySet.import_key_set(document)  # type: ignore[arg-type]
            except Exception as error:
                metrics.vneid_fetched("jwks", ok=False)
                if isinstance(error, LoginRefused):
                    raise
                raise ProviderMisconfigured("JWKS document is not a valid key set") from error
            metrics.vneid_fetched("jwks", ok=True)
            self._jwks = _Cached(key_set, time.monotonic())
            return key_set

    def _may_refetch_for(self, kid: str) -> bool:
        now = time.monotonic()
        last_miss = self._missed_kids.get(kid)
        floor = self._settings.vneid_jwks_min_refetch_seconds
        if last_miss is not None and now - last_miss < floor:
            return False  # this kid was looked for moments ago, and was not there
        if len(self._missed_kids) >= MISSED_KIDS_REMEMBERED:
            self._missed_kids.clear()
        self._missed_kids[kid] = now
        return True

    # --- endpoints that authenticate the client --------------------------------------------
    async def push_authorization_request(self, params: dict[str, str], client: VneidClient) -> str:
        """RFC 9126: send the request to VNeID directly; returns the `request_uri` to use."""
        metadata = await self.metadata()
        if metadata.par_endpoint is None:
            raise ProviderMisconfigured("PAR is configured but VNeID publishes no PAR endpoint")
        # No retry: a pushed request is cheap to start again from the person's side.
        payload = await self._post_authenticated(
            metadata.par_endpoint, params, client, "PAR endpoint", ProviderRefusedRequest, "par"
        )
        request_uri = payload.get("request_uri")
        if not isinstance(request_uri, str) or not request_uri:
            raise ProviderUnavailable("PAR response has no request_uri")
        return request_uri

    async def exchange_code(
        self, code: str, redirect_uri: str, code_verifier: str, client: VneidClient
    ) -> dict[str, Any]:
        metadata = await self.metadata()
        body = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
        }
        # No retry: an authorization code is single use, a second try could only fail.
        payload = await self._post_authenticated(
            metadata.token_endpoint, body, client, "token endpoint", CodeExchangeFailed, "token"
        )
        if not isinstance(payload.get("id_token"), str):
            raise CodeExchangeFailed("token response has no id_token")
        return payload

    async def userinfo(self, access_token: str) -> dict[str, Any]:
        metadata = await self.metadata()
        if metadata.userinfo_endpoint is None:
            raise ProviderMisconfigured("userinfo is configured but VNeID publishes no endpoint")
        try:
            with metrics.timed(metrics.VNEID_REQUEST_DURATION.labels("userinfo")):
                response = await self._http.request(
                    "GET",
                    metadata.userinfo_endpoint,
                    headers={
                        "Authorization": f"Bearer {access_token}",
                        "Accept": "application/json",
                    },
                )
        except OutboundError as error:
            raise ProviderUnavailable(f"userinfo unreachable: {error.kind}") from error
        payload = _json_or_none(response) if response.status_code == 200 else None
        if payload is None:
            raise ProviderUnavailable(f"userinfo answered HTTP {response.status_code} or non-JSON")
        return payload

    async def fetch_bounded(
        self,
        method: str,
        url: str,
        endpoint: str,
        headers: dict[str, str],
        content: str | None = None,
    ) -> tuple[int, bytes]:
        """Status and body, the body read no further than `VSSID_VNEID_MAX_ANSWER_BYTES`;
        a transport error or timeout is VNeID being unavailable."""
        limit = self._settings.vneid_max_answer_bytes
        try:
            with metrics.timed(metrics.VNEID_REQUEST_DURATION.labels(endpoint)):
                response = await self._http.request(
                    method, url, headers=headers, content=content, max_bytes=limit
                )
        except AnswerTooLarge:
            raise DialectAnswerTooLarge(f"{endpoint} answer over {limit} bytes") from None
        except OutboundError as error:
            raise ProviderUnavailable(f"{endpoint} unreachable: {error.kind}") from error
        return response.status_code, response.content

    async def _post_authenticated(
        self,
        url: str,
        body: dict[str, str],
        client: VneidClient,
        what: str,
        refused: type[LoginRefused],
        endpoint: str,
    ) -> dict[str, Any]:
        headers, encoded = await self._authenticate(url, body, client)
        try:
            with metrics.timed(metrics.VNEID_REQUEST_DURATION.labels(endpoint)):
                response = await self._http.request("POST", url, headers=headers, content=encoded)
        except OutboundError as error:
            raise ProviderUnavailable(f"{what} unreachable: {error.kind}") from error
        if response.status_code >= 500:
            raise ProviderUnavailable(f"{what} answered HTTP {response.status_code}")
        payload = _json_or_none(response)
        if payload is None:
            raise ProviderUnavailable(f"{what} answered a body that is not JSON")
        if response.status_code not in (200, 201) or "error" in payload:
            error_code = str(payload.get("error", f"http_{response.status_code}"))[:40]
            raise refused(f"{what} refused the request: {error_code}")
        return payload

    async def _authenticate(
        self, url: str, body: dict[str, str], client: VneidClient
    ) -> tuple[dict[str, str], str]:
        """Client authentication as the registration says (OIDC Core §9)."""
        settings = self._settings
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        }
        if client.token_auth_method == "none":
            # A public native client (RFC 8252 §8.4): identified, not authenticated; PKCE binds
            # the code to the verifier only the broker holds.
            return headers, urlencode(body | {"client_id": client.client_id})
        if client.token_auth_method == "private_key_jwt":
            if self._assertion_signer is None:
                raise RuntimeError("private_key_jwt needs the broker's signing keys")
            now = int(time.time())
            assertion = await self._assertion_signer(
                {
                    "iss": client.client_id,
                    "sub": client.client_id,
                    # The issuer as audience: unambiguous for the provider (RFC 7523 §3,
                    # and the mix-up advice of RFC 9700 §4.4).
                    "aud": settings.vneid_issuer,
                    "iat": now,
                    "exp": now + CLIENT_ASSERTION_LIFETIME_SECONDS,
                    "jti": secrets.token_urlsafe(16),
                }
            )
            body = body | {
                "client_id": client.client_id,
                "client_assertion_type": CLIENT_ASSERTION_TYPE,
                "client_assertion": assertion,
            }
            return headers, urlencode(body)
        secret = client.client_secret.get_secret_value() if client.client_secret else ""
        auth = ClientAuth(client.client_id, secret, client.token_auth_method)
        _url, prepared_headers, encoded = auth.prepare("POST", url, headers, urlencode(body))
        return dict(prepared_headers), str(encoded)

    async def _get_json(self, url: str, endpoint: str) -> dict[str, Any]:
        # Reads are idempotent, so one retry on a transport error is safe.
        for attempt in (1, 2):
            try:
                with metrics.timed(metrics.VNEID_REQUEST_DURATION.labels(endpoint)):
                    response = await self._http.request(
                        "GET", url, headers={"Accept": "application/json"}
                    )
            except OutboundError as error:
                if attempt == 2:
                    raise ProviderUnavailable(f"{url} unreachable: {error.kind}") from error
                continue
            if response.status_code != 200:
                raise ProviderUnavailable(f"{url} answered HTTP {response.status_code}")
            payload = _json_or_none(response)
            if payload is None:
                raise ProviderUnavailable(f"{url} answered a body that is not a JSON object")
            return payload
        raise AssertionError("unreachable")


def configured_metadata(settings: Settings) -> ProviderMetadata:
    """The dialect publishes no discovery document: the endpoints are settings."""
    document = {
        "issuer": settings.vneid_issuer,
        "authorization_endpoint": settings.vneid_authorization_endpoint,
        "token_endpoint": settings.vneid_token_endpoint,
        "userinfo_endpoint": settings.vneid_userinfo_endpoint,
        "end_session_endpoint": settings.vneid_end_session_endpoint or None,
    }
    return ProviderMetadata(document)


def discovery_url(issuer: str) -> str:
    """OIDC Discovery §4.1: a terminating "/" of the issuer is removed before the well-known
    path is appended; the issuer itself stays as configured."""
    return f"{issuer.rstrip('/')}/.well-known/openid-configuration"


def _json_or_none(response: OutboundResponse) -> dict[str, Any] | None:
    try:
        payload = response.json()
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None
