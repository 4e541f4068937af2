"""Settings of the simulated VNeID provider (environment prefix ``VNEID_SIM_``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DATA_DIR = Path(__file__).parent / "data"
SHIPPED_CITIZENS_FILE = DATA_DIR / "citizens.json"

TokenEndpointAuthMethod = Literal["client_secret_basic", "client_secret_post", "private_key_jwt"]


class ClientRegistration(BaseModel):
    """One relying party registered at the simulator."""

    client_id: str
    client_secret: str | None = None
    client_name: str = "VssID - Bảo hiểm xã hội số"
    redirect_uris: list[str]
    token_endpoint_auth_methods: list[TokenEndpointAuthMethod] = Field(
        default_factory=lambda: list[TokenEndpointAuthMethod](["client_secret_basic"])
    )
    jwks: dict[str, Any] | None = None
    jwks_uri: str | None = None
    backchannel_logout_uri: str | None = None
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
        return self


def demo_client() -> ClientRegistration:
    """The broker's registration used by the demo and the tests."""
    return ClientRegistration(
        client_id="vssid-broker",
        client_secret="vssid-broker-demo-secret",
        redirect_uris=[
            "http://127.0.0.1:8000/auth/vneid/callback",
            "http://localhost:8000/auth/vneid/callback",
            "vn.gov.baohiemxahoi.vssid:/oauth/vneid",
            "https://vssid.baohiemxahoi.gov.vn/app/oauth/vneid",
            # The broker's app-flow demo page, playing the app on a loopback redirect.
            "http://127.0.0.1:8000/demo/app/callback",
            "http://localhost:8000/demo/app/callback",
        ],
        token_endpoint_auth_methods=["client_secret_basic", "client_secret_post"],
        backchannel_logout_uri=None,
        post_logout_redirect_uris=[
            "http://127.0.0.1:8000/signed-out",
            "http://localhost:8000/signed-out",
        ],
    )


class SimSettings(BaseSettings):
    """Every knob of the simulator, with a default that runs the demo on a laptop."""

    model_config = SettingsConfigDict(env_prefix="VNEID_SIM_", extra="ignore")

    issuer: str = "http://127.0.0.1:9000"
    clients: list[ClientRegistration] = Field(default_factory=lambda: [demo_client()])
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
    otp_code: str = "123456"
    # PEM or JWK (JSON) file with the RSA signing key; a fresh key is generated when unset.
    signing_key_file: Path | None = None
    # How long a rotated-out key stays in the JWKS so tokens signed with it still verify.
    key_grace_seconds: int = Field(default=3600, ge=0)

    @field_validator("issuer")
    @classmethod
    def _issuer_without_trailing_slash(cls, value: str) -> str:
        # Every endpoint URL is issuer + path, so a trailing slash would double up.
        return value.rstrip("/")

    @model_validator(mode="after")
    def _load_clients_file(self) -> SimSettings:
        if self.clients_file is not None:
            raw = json.loads(self.clients_file.read_text(encoding="utf-8"))
            self.clients = [ClientRegistration.model_validate(item) for item in raw]
        ids = [client.client_id for client in self.clients]
        if len(ids) != len(set(ids)):
            raise ValueError("client_id values must be unique")
        return self
