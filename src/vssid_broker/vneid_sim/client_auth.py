"""Authenticating a client at the token and PAR endpoints (RFC 6749 §2.3, RFC 7523)."""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

import httpx
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

from .config import ClientRegistration
from .state import SimState

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_ALGS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"]
# Longest lifetime accepted for a client assertion (jti records are kept that long).
# Common client libraries default to one hour, so the simulator is no stricter than that.
MAX_ASSERTION_LIFETIME = 3600 + 60


class ClientAuthError(Exception):
    """invalid_client (401) or invalid_request (400), with a description for the JSON body."""

    def __init__(self, error: str, description: str, *, basic_challenge: bool = False) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.basic_challenge = basic_challenge


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as error:
        raise ClientAuthError(
            "invalid_client", "malformed Basic credentials", basic_challenge=True
        ) from error
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise ClientAuthError("invalid_client", "malformed Basic credentials", basic_challenge=True)
    # RFC 6749 §2.3.1: both parts are form-urlencoded before base64.
    return unquote(client_id.replace("+", " ")), unquote(secret.replace("+", " "))


async def authenticate_client(
    state: SimState, form: Mapping[str, str], authorization: str | None, endpoint_url: str
) -> ClientRegistration:
    """Return the registration of the authenticated client or raise ClientAuthError."""
    basic = _basic_credentials(authorization)
    assertion = form.get("client_assertion")
    has_post_secret = "client_secret" in form
    if sum((basic is not None, assertion is not None, has_post_secret)) > 1:
        raise ClientAuthError("invalid_request", "use exactly one client authentication method")

    if basic is not None:
        client_id, secret = basic
        if form.get("client_id") not in (None, client_id):
            raise ClientAuthError("invalid_request", "client_id does not match Basic credentials")
        client = _registered(state, client_id, basic_challenge=True)
        _check_secret(client, "client_secret_basic", secret, basic_challenge=True)
        return client

    if has_post_secret:
        client = _registered(state, form.get("client_id", ""))
        _check_secret(client, "client_secret_post", form["client_secret"])
        return client

    if assertion is not None:
        return await _check_assertion(state, form, assertion, endpoint_url)

    # A public client (`none`, RFC 8252 §8.4) only names itself; PKCE protects its codes.
    public = state.clients.get(form.get("client_id", ""))
    if public is not None and "none" in public.token_endpoint_auth_methods:
        return public
    raise ClientAuthError("invalid_client", "client authentication is required")


def _registered(
    state: SimState, client_id: str, *, basic_challenge: bool = False
) -> ClientRegistration:
    client = state.clients.get(client_id)
    if client is None:
        raise ClientAuthError("invalid_client", "unknown client", basic_challenge=basic_challenge)
    return client


def _check_secret(
    client: ClientRegistration, method: str, secret: str, *, basic_challenge: bool = False
) -> None:
    if method not in client.token_endpoint_auth_methods:
        raise ClientAuthError(
            "invalid_client",
            f"{method} is not registered for this client",
            basic_challenge=basic_challenge,
        )
    expected = client.client_secret or ""
    if not secrets.compare_digest(secret.encode(), expected.encode()):
        raise ClientAuthError(
            "invalid_client", "wrong client secret", basic_challenge=basic_challenge
        )


async def _client_key_set(state: SimState, client: ClientRegistration) -> KeySet:
    if client.jwks is not None:
        return KeySet.import_key_set(client.jwks)  # type: ignore[arg-type]
    assert client.jwks_uri is not None  # guaranteed by ClientRegistration validation
    async with httpx.AsyncClient(transport=state.outbound_transport, timeout=5.0) as http:
        response = await http.get(client.jwks_uri)
        response.raise_for_status()
        return KeySet.import_key_set(response.json())


async def _check_assertion(
    state: SimState, form: Mapping[str, str], assertion: str, endpoint_url: str
) -> ClientRegistration:
    if form.get("client_assertion_type") != CLIENT_ASSERTION_TYPE:
        raise ClientAuthError(
            "invalid_request", f"client_assertion_type must be {CLIENT_ASSERTION_TYPE}"
        )
    try:
        # Unverified: only to learn which client claims to be speaking, to find its keys.
        unverified: Any = json.loads(jws.extract_compact(assertion.encode()).payload)
    except (JoseError, ValueError) as error:
        raise ClientAuthError("invalid_client", "client_assertion is not a JWS") from error
    if not isinstance(unverified, dict):
        raise ClientAuthError("invalid_client", "client_assertion payload is not an object")
    client_id = form.get("client_id") or str(unverified.get("iss", ""))
    client = _registered(state, client_id)
    if "private_key_jwt" not in client.token_endpoint_auth_methods:
        raise ClientAuthError("invalid_client", "private_key_jwt is not registered for this client")
    try:
        key_set = await _client_key_set(state, client)
    except (httpx.HTTPError, ValueError, JoseError) as error:
        raise ClientAuthError("invalid_client", "could not load the client's JWKS") from error
    try:
        token = jwt.decode(assertion, key_set, algorithms=ASSERTION_ALGS)
    except (JoseError, ValueError) as error:
        raise ClientAuthError(
            "invalid_client", "client_assertion signature is not valid"
        ) from error
    claims = token.claims
    registry = JWTClaimsRegistry(
        now=int(state.now()),
        leeway=30,
        iss={"essential": True, "value": client.client_id},
        sub={"essential": True, "value": client.client_id},
        # The issuer is the preferred audience; the endpoint URLs are accepted too (RFC 7523).
        aud={
            "essential": True,
            "values": [state.settings.issuer, state.endpoint("/token"), endpoint_url],
        },
        exp={"essential": True},
        jti={"essential": True},
    )
    try:
        registry.validate(claims)
    except JoseError as error:
        raise ClientAuthError("invalid_client", f"client_assertion: {error.description}") from error
    exp = float(claims["exp"])
    if exp - state.now() > MAX_ASSERTION_LIFETIME:
        raise ClientAuthError("invalid_client", "client_assertion lives too long")
    jti_key = f"{client.client_id}:{claims['jti']}"
    if jti_key in state.used_assertion_ids:
        raise ClientAuthError("invalid_client", "client_assertion jti was already used")
    state.used_assertion_ids[jti_key] = exp
    return client
