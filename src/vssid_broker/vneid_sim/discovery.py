"""How a client learns the provider: its metadata (OpenID Connect Discovery 1.0 §3, served at
both well-known paths, RFC 8414 §3) and its public signing keys (RFC 7517 §5)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from .authorization import SUPPORTED_ACR_VALUES
from .citizens import SCOPE_CLAIMS
from .client_auth import ASSERTION_ALGS
from .faults import WRONG_ISSUER
from .keys import SIGNING_ALG
from .protocol import simulated_server_error
from .state import SimState

IDENTITY_CLAIMS = ["name", "birthdate", "gender", "SoDinhDanh", "HoVaTen", "NgayThangNamSinh"]


def provider_metadata(state: SimState) -> dict[str, Any]:
    """OpenID Connect Discovery 1.0 §3 and RFC 8414 §2 metadata."""
    endpoint = state.endpoint
    return {
        "issuer": state.settings.issuer,
        "authorization_endpoint": endpoint("/authorize"),
        "token_endpoint": endpoint("/token"),
        "userinfo_endpoint": endpoint("/userinfo"),
        "jwks_uri": endpoint("/jwks"),
        "end_session_endpoint": endpoint("/logout"),
        "pushed_authorization_request_endpoint": endpoint("/par"),
        "require_pushed_authorization_requests": False,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [SIGNING_ALG],
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
            "none",
        ],
        "token_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": list(SCOPE_CLAIMS),
        "claims_supported": [
            *("iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "azp", "sid"),
            *IDENTITY_CLAIMS,
        ],
        "claims_parameter_supported": True,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "acr_values_supported": list(SUPPORTED_ACR_VALUES),
        "prompt_values_supported": ["login", "consent"],
        "ui_locales_supported": ["vi"],
        "authorization_response_iss_parameter_supported": True,
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        "frontchannel_logout_supported": True,
        "frontchannel_logout_session_supported": True,
    }


def discovery_document(state: SimState) -> JSONResponse:
    """The metadata; the discovery_wrong_issuer fault breaks the rule that `issuer` equals the
    URL the document was fetched from (Discovery 1.0 §4.3), which clients must refuse."""
    metadata = provider_metadata(state)
    if state.faults.take("discovery_wrong_issuer"):
        metadata["issuer"] = WRONG_ISSUER
    return JSONResponse(metadata)


def key_set(state: SimState) -> Response:
    """The published keys as a JWK Set (RFC 7517 §5), including a rotated key in its grace
    time so tokens it signed still verify; jwks_http_500 makes the fetch fail."""
    if state.faults.take("jwks_http_500"):
        return simulated_server_error()
    return JSONResponse(state.keys.jwks(), media_type="application/jwk-set+json")


def routes(state: SimState) -> APIRouter:
    router = APIRouter()

    @router.get("/.well-known/openid-configuration")
    @router.get("/.well-known/oauth-authorization-server")
    async def discovery() -> JSONResponse:
        return discovery_document(state)

    @router.get("/jwks")
    async def jwks() -> Response:
        return key_set(state)

    return router
