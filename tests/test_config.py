"""Settings refuse, at start-up, what would be unsafe or broken at the first login."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from vssid_broker.config import Settings


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


def test_settings_come_from_vssid_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VSSID_VNEID_LEVEL2_ACR_VALUES", '["urn:vneid:loa:2", "LoA2"]')
    monkeypatch.setenv("VSSID_VNEID_CITIZEN_ID_CLAIM", "citizenPid")
    settings = Settings()
    assert settings.vneid_level2_acr_values == ["urn:vneid:loa:2", "LoA2"]
    assert settings.vneid_citizen_id_claim == "citizenPid"


def test_every_setting_has_a_row_in_the_readme_configuration_table() -> None:
    """Operators configure from the README: a setting missing there does not exist for them."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    missing = [
        name for name in Settings.model_fields if f"| `VSSID_{name.upper()}` |" not in readme
    ]
    assert missing == []
