"""Validating authorization requests (query string or PAR body) and building the response
redirect back to the client."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

from . import dialect
from .citizens import SCOPE_CLAIMS
from .config import ClientRegistration
from .faults import WRONG_ISSUER
from .state import AuthorizationRequest, SimState

CODE_CHALLENGE_PATTERN = re.compile(r"^[A-Za-z0-9_-]{43}$")
LOOPBACK_HOSTS = ("127.0.0.1", "[::1]")
SUPPORTED_ACR_VALUES = ("LoA1", "LoA2")
UNMET_AUTHENTICATION_REQUIREMENTS = "unmet_authentication_requirements"
MAX_STATE_LENGTH = 1024


class AuthorizationError(Exception):
    """An authorization request the provider refuses.

    `redirect_uri` is set only once client and redirect URI are known to be good: then the
    error goes back to the client; otherwise it is shown to the person and never redirected.
    """

    def __init__(
        self,
        error: str,
        description: str,
        *,
        redirect_uri: str | None = None,
        state: str | None = None,
    ) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.redirect_uri = redirect_uri
        self.state = state


def redirect_uri_matches(registered: list[str], given: str) -> bool:
    """Exact string match, except that loopback http URIs accept any port (RFC 8252 §7.3)."""
    if given in registered:
        return True
    parts = urlsplit(given)
    if parts.scheme != "http" or parts.hostname is None:
        return False
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if host not in LOOPBACK_HOSTS:
        return False
    for candidate in registered:
        reg = urlsplit(candidate)
        reg_host = f"[{reg.hostname}]" if reg.hostname and ":" in reg.hostname else reg.hostname
        if (
            reg.scheme == "http"
            and reg_host == host
            and reg.path == parts.path
            and reg.query == parts.query
            and not parts.fragment
        ):
            return True
    return False


def check_client_and_redirect(
    state: SimState, params: Mapping[str, str]
) -> tuple[ClientRegistration, str]:
    """The checks whose failure must not redirect (RFC 6749 §4.1.2.1)."""
    client_id = params.get("client_id")
    if not client_id:
        raise AuthorizationError("invalid_request", "Thiếu client_id (client_id is missing).")
    client = state.clients.get(client_id)
    if client is None:
        raise AuthorizationError(
            "invalid_client", "Ứng dụng chưa được đăng ký (unknown client_id)."
        )
    redirect_uri = params.get("redirect_uri")
    if not redirect_uri:
        raise AuthorizationError("invalid_request", "Thiếu redirect_uri (redirect_uri is missing).")
    if not redirect_uri_matches(client.redirect_uris, redirect_uri):
        raise AuthorizationError(
            "invalid_request",
            "Địa chỉ chuyển hướng không được đăng ký (redirect_uri is not registered).",
        )
    return client, redirect_uri


def parse_authorization_request(state: SimState, params: Mapping[str, str]) -> AuthorizationRequest:
    """Validate every parameter; raise AuthorizationError on the first problem."""
    client, redirect_uri = check_client_and_redirect(state, params)
    client_state = params.get("state")

    def refuse(error: str, description: str) -> AuthorizationError:
        return AuthorizationError(error, description, redirect_uri=redirect_uri, state=client_state)

    if client_state is not None and len(client_state) > MAX_STATE_LENGTH:
        raise refuse("invalid_request", "state is too long")
    if params.get("response_type") != "code":
        raise refuse("unsupported_response_type", "only response_type=code is supported")
    if params.get("response_mode") not in (None, "query"):
        raise refuse("invalid_request", "only response_mode=query is supported")
    scopes = params.get("scope", "").split()
    if "openid" not in scopes:
        raise refuse("invalid_scope", "scope must contain openid")
    # RFC 6749 §3.3: scopes the provider does not know are left out of the grant.
    granted = [scope for scope in dict.fromkeys(scopes) if scope in SCOPE_CLAIMS]
    try:
        essential_acr = essential_acr_values(params.get("claims"))
    except ValueError as error:
        raise refuse("invalid_request", f"claims: {error}") from error
    code_challenge = params.get("code_challenge")
    if not code_challenge:
        raise refuse("invalid_request", "PKCE is required: code_challenge is missing")
    # A missing method means "plain" (RFC 7636 §4.3), which is refused like an explicit one.
    if params.get("code_challenge_method") != "S256":
        raise refuse("invalid_request", "code_challenge_method must be S256")
    if not CODE_CHALLENGE_PATTERN.fullmatch(code_challenge):
        raise refuse("invalid_request", "code_challenge must be 43 base64url characters")
    prompt = tuple(params.get("prompt", "").split())
    if "none" in prompt:
        # The simulator keeps no sign-in session, so it can never answer without the UI.
        raise refuse("login_required", "prompt=none: no VNeID session exists")
    max_age: int | None = None
    if params.get("max_age") is not None:
        try:
            max_age = int(params["max_age"])
        except ValueError:
            max_age = -1
        if max_age < 0:
            raise refuse("invalid_request", "max_age must be a non-negative integer")
    if "request" in params:
        raise refuse("request_not_supported", "request objects are not supported")
    return AuthorizationRequest(
        client_id=client.client_id,
        redirect_uri=redirect_uri,
        scope=" ".join(granted),
        state=client_state,
        nonce=params.get("nonce"),
        code_challenge=code_challenge,
        acr_values=tuple(params.get("acr_values", "").split()),
        essential_acr=essential_acr,
        prompt=prompt,
        max_age=max_age,
        login_hint=params.get("login_hint"),
    )


def essential_acr_values(raw_claims: str | None) -> tuple[str, ...]:
    """The `acr` values of the `claims` parameter's ID-token request when marked essential
    (OIDC Core §5.5, §5.5.1.1); other requested claims are accepted and left to the scopes.
    Raises ValueError for a parameter that is not a JSON object of objects."""
    if raw_claims is None:
        return ()
    try:
        claims: Any = json.loads(raw_claims)
    except ValueError as error:
        raise ValueError("not valid JSON") from error
    if not isinstance(claims, dict) or not all(isinstance(v, dict) for v in claims.values()):
        raise ValueError("must be a JSON object of id_token/userinfo requests")
    acr = claims.get("id_token", {}).get("acr")
    if not isinstance(acr, dict) or acr.get("essential") is not True:
        return ()
    values = acr.get("values", [acr["value"]] if "value" in acr else [])
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ValueError("acr values must be a list of strings")
    return tuple(values)


def reachable_acr(level: int, essential: tuple[str, ...]) -> str | None:
    """The `acr` a citizen of `level` signs in with: their own level, or the lower level the
    client asked as essential; None when no essential value is within reach (the request is
    then refused with unmet_authentication_requirements, before consent)."""
    own = f"LoA{level}"
    if not essential or own in essential:
        return own
    within_reach = [f"LoA{lower}" for lower in range(level, 0, -1) if f"LoA{lower}" in essential]
    return within_reach[0] if within_reach else None


def response_redirect(
    state: SimState, redirect_uri: str, client_state: str | None, result: dict[str, str]
) -> str:
    """The URL that sends the person back to the client, with `iss` (RFC 9207).

    Pending authorize_* faults are applied here, since this is where the response is made.
    """
    params = dict(result)
    faults = state.faults
    for name, error in (
        ("authorize_access_denied", "access_denied"),
        ("authorize_server_error", "server_error"),
        ("authorize_temporarily_unavailable", "temporarily_unavailable"),
    ):
        if faults.take(name):
            params = {"error": error, "error_description": f"simulated fault {name}"}
            break
    if client_state is not None:
        params["state"] = client_state
    if faults.take("authorize_wrong_state"):
        params["state"] = "not-the-state-you-sent"
    params["iss"] = state.settings.issuer
    if faults.take("authorize_wrong_iss"):
        params["iss"] = WRONG_ISSUER
    if faults.take("authorize_missing_iss"):
        del params["iss"]
    separator = "&" if urlsplit(redirect_uri).query else "?"
    if dialect.speaks_dialect(state):
        # The dialect sends no `iss`, and the code as it is: a "+" stays unescaped.
        params.pop("iss", None)
        code = params.pop("code", None)
        if code is not None:
            raw = dialect.raw_code_query(state, code)
            return redirect_uri + separator + "&".join(filter(None, [raw, urlencode(params)]))
    return redirect_uri + separator + urlencode(params)
