"""Settings refuse, at start-up, what would be unsafe or broken at the first login."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from vssid_broker.config import Settings, SettingsInvalid, load_settings


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"vneid_issuer": "http://vneid.example"}, "must use https"),
        ({"public_base_url": "http://vssid.example"}, "must use https"),
        ({"vneid_signing_algs": ["RS256", "none"]}, "must not allow 'none'"),
        ({"vneid_level2_acr_values": []}, "at least one acr"),
        ({"vneid_birthdate_format": "%Y"}, "year, month and day"),
        ({"vneid_citizen_id_claim": " "}, "claim names"),
        ({"public_base_url": "https://vssid.example"}, "demo secret"),
        ({"vneid_token_auth_method": "client_secret_jwt"}, "vneid_token_auth_method"),
        ({"log_level": "loud"}, "log_level"),
        (
            {
                "public_base_url": "https://vssid.example",
                "vneid_issuer": "https://vneid.example",
                "vneid_client_secret": "a-real-secret",
                "password_hash_profile": "cheapest-for-tests",
            },
            "protects no password",
        ),
    ],
)
def test_unsafe_or_broken_settings_are_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(**changes)


def test_production_shape_is_accepted() -> None:
    settings = Settings(
        public_base_url="https://vssid.example",
        vneid_issuer="https://vneid.example",
        vneid_client_secret="a-real-secret",
        vneid_birthdate_claim="birthdate",
        vneid_birthdate_format="%Y-%m-%d",
    )
    assert settings.secure_cookies
    assert settings.vneid_redirect_uri == "https://vssid.example/auth/vneid/callback"
    assert settings.password_hash_profile == "recommended"


def test_settings_come_from_vssid_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VSSID_VNEID_LEVEL2_ACR_VALUES", '["urn:vneid:loa:2", "LoA2"]')
    monkeypatch.setenv("VSSID_VNEID_CITIZEN_ID_CLAIM", "citizenPid")
    settings = Settings()
    assert settings.vneid_level2_acr_values == ["urn:vneid:loa:2", "LoA2"]
    assert settings.vneid_citizen_id_claim == "citizenPid"


@pytest.mark.parametrize(
    "value", ["urn:vneid:loa:2", " urn:vneid:loa:2 , LoA2 ", '["urn:vneid:loa:2","LoA2"]']
)
def test_list_settings_take_json_or_comma_separated_values(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("VSSID_VNEID_LEVEL2_ACR_VALUES", value)
    monkeypatch.setenv("VSSID_APP_REDIRECT_URIS", "vn.gov.baohiemxahoi.vssid:/oauth/vneid")
    settings = load_settings(Settings)
    assert settings.vneid_level2_acr_values[0] == "urn:vneid:loa:2"
    assert settings.vneid_level2_acr_values[1:] in ([], ["LoA2"])
    assert settings.app_redirect_uris == ["vn.gov.baohiemxahoi.vssid:/oauth/vneid"]


@pytest.mark.parametrize(
    ("name", "value", "line"),
    [
        (
            "VSSID_VNEID_SIGNING_ALGS",
            '["RS256"',
            "VSSID_VNEID_SIGNING_ALGS: expects a JSON list or comma-separated values; "
            "this JSON list does not parse",
        ),
        (
            "VSSID_VNEID_APP_TOKEN_AUTH_METHOD",
            "client_secret_jwt",
            "VSSID_VNEID_APP_TOKEN_AUTH_METHOD: expects 'client_secret_basic', "
            "'client_secret_post', 'private_key_jwt' or 'none'",
        ),
        ("VSSID_SERVICE_CLIENTS", "[{", "VSSID_SERVICE_CLIENTS: expects valid JSON"),
        (
            "VSSID_SERVICE_CLIENTS",
            '[{"client_id": "x", "client_secret": "short"}]',
            "VSSID_SERVICE_CLIENTS[0].client_secret: a service client secret must be at least "
            "32 characters",
        ),
        (
            "VSSID_VNEID_ISSUER",
            "vneid.example",
            "VSSID_VNEID_ISSUER: expects the issuer URL exactly as VNeID publishes it",
        ),
        (
            "VSSID_VNEID_LEVEL2_ACR_VALUES",
            "",
            "VSSID_VNEID_LEVEL2_ACR_VALUES must name at least one acr value",
        ),
    ],
)
def test_an_invalid_setting_is_one_line_naming_it_and_what_it_expects(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, line: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsInvalid) as refused:
        load_settings(Settings)
    assert str(refused.value) == line
    assert "short" not in str(refused.value)  # never the value given: it may be a secret


def test_an_issuer_keeps_its_trailing_slash() -> None:
    settings = Settings(vneid_issuer="https://vneid.example/", vneid_client_secret="real")
    assert settings.vneid_issuer == "https://vneid.example/"


def test_the_app_has_its_own_registration_unless_told_to_share() -> None:
    own = Settings()
    assert own.vneid_app_client.client_id == "vssid-broker-app"
    assert own.vneid_app_client.token_auth_method == "none"
    shared = Settings(
        vneid_app_client_id="vssid-broker", vneid_app_token_auth_method="client_secret_basic"
    )
    assert shared.vneid_app_client.client_secret == shared.vneid_client_secret
    with pytest.raises(ValidationError, match="VSSID_VNEID_APP_CLIENT_SECRET"):
        Settings(vneid_app_token_auth_method="client_secret_post")


def test_every_setting_has_a_row_in_the_settings_reference() -> None:
    """Operators configure from docs/settings.md: a setting missing there does not exist for
    them."""
    reference = (Path(__file__).resolve().parent.parent / "docs" / "settings.md").read_text(
        encoding="utf-8"
    )
    missing = [
        name for name in Settings.model_fields if f"| `VSSID_{name.upper()}` |" not in reference
    ]
    assert missing == []


def test_a_log_level_in_small_letters_is_the_level() -> None:
    """`VSSID_LOG_LEVEL=warning` ended `serve` in a traceback from the logging module."""
    assert Settings(log_level="warning").log_level == "WARNING"
