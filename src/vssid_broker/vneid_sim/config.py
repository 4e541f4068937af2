"""Settings of the simulated VNeID provider (environment prefix ``VNEID_SIM_``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DATA_DIR = Path(__file__).parent / "data"
SHIPPED_CITIZENS_FILE = DATA_DIR / "citizens.json"

TokenEndpointAuthMethod = Literal[
    "client_secret_basic", "client_secret_post", "private_key_jwt", "none"
]
ApplicationType = Literal["web", "native"]
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def redirect_uri_problem(application_type: ApplicationType, uri: str) -> str | None:
    """Why a redirect URI does not suit the client's kind (OIDC Dynamic Registration §2,
    `application_type`; RFC 8252 §7 for native apps), or None when it does.

    Web clients take https URLs, and http on loopback for development; native clients take a
    private-use scheme, a claimed https URL or an http loopback URL."""
    parts = urlsplit(uri)
    if parts.fragment:
        return f"{uri}: a redirect URI must not have a fragment"
    loopback_http = parts.scheme == "http" and (parts.hostname or "") in LOOPBACK_HOSTS
    if application_type == "web":
        if parts.scheme == "https" or loopback_http:
            return None
        return f"{uri}: web clients only take web redirect URIs (https, or http on loopback)"
    if parts.scheme == "https" or loopback_http:
        return None
    if parts.scheme in ("http", "") or "." not in parts.scheme:
        return f"{uri}: a native redirect URI's private-use scheme must be a reverse domain name"
    return None


class ClientRegistration(BaseModel):
    """One relying party registered at the simulator."""

    client_id: str
    client_secret: str | None = None
    client_name: str = "VssID - Bảo hiểm xã hội số"
    client_uri: str | None = None
    """The client's home page (OIDC Dynamic Client Registration §2): where the page of an
    ended login sends a person who pressed Back."""
    application_type: ApplicationType = "web"
    redirect_uris: list[str]
    token_endpoint_auth_methods: list[TokenEndpointAuthMethod] = Field(
        default_factory=lambda: list[TokenEndpointAuthMethod](["client_secret_basic"])
    )
    jwks: dict[str, Any] | None = None
    jwks_uri: str | None = None
    backchannel_logout_uri: str | None = None
    frontchannel_logout_uri: str | None = None
    """Loaded in an iframe of the logged-out page (Front-Channel Logout 1.0 §2)."""
    frontchannel_logout_session_required: bool = True
    """Add `iss` and `sid` to the front-channel logout URI (§2)."""
    post_logout_redirect_uris: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _credentials_match_methods(self) -> ClientRegistration:
        uses_secret = {"client_secret_basic", "client_secret_post"} & set(
            self.token_endpoint_auth_methods
        )
        if uses_secret and not self.client_secret:
            raise ValueError(f"client {self.client_id}: a secret-based method needs client_secret")
        if "private_key_jwt" in self.token_endpoint_auth_methods and not (
            self.jwks or self.jwks_uri
        ):
            raise ValueError(f"client {self.client_id}: private_key_jwt needs jwks or jwks_uri")
        if not self.token_endpoint_auth_methods:
            raise ValueError(f"client {self.client_id}: no token endpoint auth method")
        # A spec-minded provider refuses the whole registration, not just the odd URI.
        for uri in self.redirect_uris:
            problem = redirect_uri_problem(self.application_type, uri)
            if problem:
                raise ValueError(f"client {self.client_id}: {problem}")
        return self


DEMO_APP_REDIRECT_URIS = (
    "vn.gov.baohiemxahoi.vssid:/oauth/vneid",
    "https://vssid.baohiemxahoi.gov.vn/app/oauth/vneid",
    # The broker's app-flow demo page, playing the app on a loopback redirect (RFC 8252 §7.3:
    # any port on 127.0.0.1 matches).
    "http://127.0.0.1:8000/demo/app/callback",
)


def demo_client() -> ClientRegistration:
    """The broker's web registration (its browser flow) used by the demo and the tests."""
    return ClientRegistration(
        client_id="vssid-broker",
        client_secret="vssid-broker-demo-secret",
        redirect_uris=[
            "http://127.0.0.1:8000/auth/vneid/callback",
            "http://localhost:8000/auth/vneid/callback",
        ],
        client_uri="http://127.0.0.1:8000/",
        token_endpoint_auth_methods=["client_secret_basic", "client_secret_post"],
        backchannel_logout_uri=None,
        post_logout_redirect_uris=[
            "http://127.0.0.1:8000/signed-out",
            "http://localhost:8000/signed-out",
        ],
    )


def demo_clients_for_broker(broker: str) -> list[ClientRegistration]:
    """The demo's two registrations for a broker at `broker` (its public base URL), on top
    of the defaults: its callback, its signed-out page and its back-channel logout URI at the
    address it really runs on. Post-logout redirect URIs are compared exactly (RP-Initiated
    Logout §3), so a broker on another port needs them registered there."""
    broker = broker.rstrip("/")
    backchannel = f"{broker}/auth/vneid/backchannel-logout"
    web = demo_client()
    web = web.model_copy(
        update={
            "redirect_uris": list(
                dict.fromkeys([f"{broker}/auth/vneid/callback", *web.redirect_uris])
            ),
            "post_logout_redirect_uris": list(
                dict.fromkeys([f"{broker}/signed-out", *web.post_logout_redirect_uris])
            ),
            "backchannel_logout_uri": backchannel,
            "client_uri": f"{broker}/",
        }
    )
    app = demo_app_client().model_copy(update={"backchannel_logout_uri": backchannel})
    # Validated again: model_copy skips the checks a registration must pass.
    return [ClientRegistration.model_validate(c.model_dump()) for c in (web, app)]


def demo_app_client() -> ClientRegistration:
    """The broker's native registration (the VssID app's flow): the app's own redirect URIs,
    a public client (RFC 8252 §8.4) whose codes PKCE binds to the broker's verifier."""
    return ClientRegistration(
        client_id="vssid-broker-app",
        client_name="VssID - Bảo hiểm xã hội số (ứng dụng)",
        application_type="native",
        redirect_uris=list(DEMO_APP_REDIRECT_URIS),
        token_endpoint_auth_methods=["none"],
    )


class SimSettings(BaseSettings):
    """Every knob of the simulator, with a default that runs the demo on a laptop."""

    model_config = SettingsConfigDict(env_prefix="VNEID_SIM_", extra="ignore")

    issuer: str = "http://127.0.0.1:9000"
    clients: list[ClientRegistration] = Field(
        default_factory=lambda: [demo_client(), demo_app_client()]
    )
    # A JSON file holding a list of client registrations; replaces `clients` when set.
    clients_file: Path | None = None
    citizens_file: Path = SHIPPED_CITIZENS_FILE
    # Synthetic citizens added on top of the file, for load tests (see citizens.generate_citizens).
    generated_citizens: int = Field(default=0, ge=0)
    test_mode: bool = False
    code_ttl_seconds: int = Field(default=60, ge=0)
    id_token_ttl_seconds: int = Field(default=300, ge=1)
    access_token_ttl_seconds: int = Field(default=300, ge=1)
    par_ttl_seconds: int = Field(default=60, ge=1)
    login_ttl_seconds: int = Field(default=600, ge=1)
    # How long a VNeID session (the ID token's `sid`) is remembered for logout.
    session_ttl_seconds: int = Field(default=8 * 3600, ge=1)
    otp_code: str = "123456"
    # PEM or JWK (JSON) file with the RSA signing key; a fresh key is generated when unset.
    signing_key_file: Path | None = None
    # How long a rotated-out key stays in the JWKS so tokens signed with it still verify.
    key_grace_seconds: int = Field(default=3600, ge=0)

    protocol: Literal["openid-connect", "vneid-encrypted"] = "openid-connect"
    """`vneid-encrypted`: speak VNeID's integration dialect (`dialect.py`): no ID token,
    encrypted answers, the identity from userinfo."""
    answer_cipher: Literal["aes-ecb", "aes-cbc"] = "aes-ecb"
    encrypt_answers: bool = True
    """Dialect: encrypt the token and userinfo answers (else send them as plain JSON)."""
    rp_public_key_file: Path | None = None
    """Dialect: the relying party's RSA public key (PEM) its answers are encrypted to."""

    end_session_methods: list[Literal["GET", "POST"]] = Field(
        default_factory=lambda: list[Literal["GET", "POST"]](["GET", "POST"])
    )
    """Methods `/logout` serves; `["GET"]` plays a provider that refuses cross-site POSTs."""

    @field_validator("issuer")
    @classmethod
    def _issuer_is_a_url(cls, value: str) -> str:
        # Kept exactly as given (a trailing "/" too): it is what `iss` carries. Endpoint URLs
        # are built from it without that slash (SimState.endpoint).
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
            raise ValueError("issuer must be an http(s) URL without query or fragment")
        return value

    @model_validator(mode="after")
    def _dialect_has_a_key(self) -> SimSettings:
        key_file = self.rp_public_key_file
        wants_key = self.protocol == "vneid-encrypted" and self.encrypt_answers
        if wants_key and (key_file is None or not key_file.is_file()):
            raise ValueError("the vneid-encrypted dialect needs rp_public_key_file (a PEM)")
        return self

    @model_validator(mode="after")
    def _load_clients_file(self) -> SimSettings:
        if self.clients_file is not None:
            raw = json.loads(self.clients_file.read_text(encoding="utf-8"))
            self.clients = [ClientRegistration.model_validate(item) for item in raw]
        ids = [client.client_id for client in self.clients]
        if len(ids) != len(set(ids)):
            raise ValueError("client_id values must be unique")
        return self
