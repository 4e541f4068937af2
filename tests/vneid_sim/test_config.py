from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from joserfc.jwk import RSAKey
from pydantic import ValidationError

from tests.support.http import AsyncClient
from vssid_broker.vneid_sim.app import create_app
from vssid_broker.vneid_sim.config import ClientRegistration, SimSettings
from vssid_broker.vneid_sim.server import describe


def test_defaults_register_the_demo_client() -> None:
    settings = SimSettings()
    assert settings.issuer == "http://127.0.0.1:9000"
    web, native = settings.clients
    assert (web.client_id, web.application_type) == ("vssid-broker", "web")
    assert web.client_secret == "vssid-broker-demo-secret"
    assert "http://127.0.0.1:8000/auth/vneid/callback" in web.redirect_uris
    # The app's custom-scheme redirect belongs to its own, native registration.
    assert (native.client_id, native.application_type) == ("vssid-broker-app", "native")
    assert "vn.gov.baohiemxahoi.vssid:/oauth/vneid" in native.redirect_uris
    assert native.token_endpoint_auth_methods == ["none"]
    assert (settings.code_ttl_seconds, settings.otp_code, settings.test_mode) == (
        60,
        "123456",
        False,
    )


def test_environment_and_clients_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clients_file = tmp_path / "clients.json"
    clients_file.write_text(
        json.dumps(
            [
                {
                    "client_id": "partner",
                    "client_secret": "s3cret",
                    "redirect_uris": ["https://partner.example/cb"],
                    "token_endpoint_auth_methods": ["client_secret_post"],
                }
            ]
        )
    )
    monkeypatch.setenv("VNEID_SIM_CLIENTS_FILE", str(clients_file))
    monkeypatch.setenv("VNEID_SIM_ISSUER", "http://sim.local:9000/")
    monkeypatch.setenv("VNEID_SIM_TEST_MODE", "true")
    settings = SimSettings()
    assert settings.issuer == "http://sim.local:9000/"  # exactly as configured: it is `iss`
    assert [c.client_id for c in settings.clients] == ["partner"]
    assert settings.test_mode is True
    assert "partner" in describe(settings) and "001085012345" in describe(settings)


@pytest.mark.parametrize(
    ("application_type", "redirect_uri"),
    [
        ("web", "vn.gov.baohiemxahoi.vssid:/oauth/vneid"),
        ("web", "http://vssid.example/cb"),
        ("native", "vssid:/cb"),
        ("native", "https://vssid.example/cb#fragment"),
    ],
)
def test_a_redirect_uri_unfit_for_the_kind_of_client_refuses_the_registration(
    application_type: str, redirect_uri: str
) -> None:
    with pytest.raises(ValidationError, match="redirect"):
        ClientRegistration(
            client_id="x",
            application_type=application_type,
            redirect_uris=["http://127.0.0.1:8000/cb", redirect_uri],
            token_endpoint_auth_methods=["none"],
        )


def test_registration_needs_credentials_for_its_methods() -> None:
    with pytest.raises(ValidationError):
        ClientRegistration(client_id="x", redirect_uris=["https://x.example/cb"])
    with pytest.raises(ValidationError):
        ClientRegistration(
            client_id="x",
            redirect_uris=["https://x.example/cb"],
            token_endpoint_auth_methods=["private_key_jwt"],
        )


async def test_signing_key_file_is_used(tmp_path: Path) -> None:
    key = RSAKey.generate_key(2048, auto_kid=True)
    key_file = tmp_path / "signing.pem"
    key_file.write_bytes(key.as_pem(private=True))
    app = create_app(SimSettings(signing_key_file=key_file, generated_citizens=5))
    transport = httpx.ASGITransport(app=app)
    async with AsyncClient(transport=transport, base_url="http://sim") as client:
        keys = (await client.get("/jwks")).json()["keys"]
    assert [k["n"] for k in keys] == [key.as_dict()["n"]]
    assert len(app.state.sim.citizens) == len(app.state.sim.listed_citizen_ids) + 5
