"""`VSSID_VNEID_PROTOCOL=vneid-encrypted` and its settings: checked at start, one line each."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.test_cli import COMMAND, cli_env
from vssid_broker.config import Settings, SettingsInvalid, load_settings

SIM = "http://127.0.0.1:9000"


def write_rsa_key(path: Path, form: serialization.PrivateFormat) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, form, serialization.NoEncryption())
    )
    return path


def dialect_env(monkeypatch: pytest.MonkeyPatch, key_files: str) -> None:
    monkeypatch.setenv("VSSID_VNEID_PROTOCOL", "vneid-encrypted")
    monkeypatch.setenv("VSSID_VNEID_AUTHORIZATION_ENDPOINT", f"{SIM}/authorize")
    monkeypatch.setenv("VSSID_VNEID_TOKEN_ENDPOINT", f"{SIM}/token")
    monkeypatch.setenv("VSSID_VNEID_USERINFO_ENDPOINT", f"{SIM}/userinfo")
    monkeypatch.setenv("VSSID_VNEID_DECRYPTION_KEY_FILES", key_files)


def test_the_standard_profile_is_the_default() -> None:
    settings = Settings()
    assert settings.vneid_protocol == "openid-connect"
    assert settings.vneid_citizen_id_claim == "SoDinhDanh"


def test_the_dialect_takes_pkcs1_and_pkcs8_keys_and_its_own_claim_names(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pkcs1 = write_rsa_key(tmp_path / "a.pem", serialization.PrivateFormat.TraditionalOpenSSL)
    pkcs8 = write_rsa_key(tmp_path / "b.pem", serialization.PrivateFormat.PKCS8)
    dialect_env(monkeypatch, f"{pkcs1},{pkcs8}")
    settings = load_settings(Settings)
    assert settings.vneid_decryption_key_files == [str(pkcs1), str(pkcs8)]
    assert settings.vneid_citizen_id_claim == "citizenPid"
    assert settings.vneid_name_claim == "fullName"
    assert settings.vneid_dialect_subject_claim == "citizenPid"
    assert settings.vneid_level_claim == "accountLevel"
    assert settings.vneid_level2_values == ["2"]


def test_an_operator_named_claim_wins_over_the_dialect_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    key = write_rsa_key(tmp_path / "a.pem", serialization.PrivateFormat.PKCS8)
    dialect_env(monkeypatch, str(key))
    monkeypatch.setenv("VSSID_VNEID_CITIZEN_ID_CLAIM", "soDinhDanh")
    assert load_settings(Settings).vneid_citizen_id_claim == "soDinhDanh"


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("VSSID_VNEID_TOKEN_ENDPOINT", "", "VSSID_VNEID_TOKEN_ENDPOINT is required"),
        (
            "VSSID_VNEID_USERINFO_ENDPOINT",
            "http://vneid.example/userinfo",
            "VSSID_VNEID_USERINFO_ENDPOINT must use https outside loopback",
        ),
        ("VSSID_VNEID_DECRYPTION_KEY_FILES", "", "VSSID_VNEID_DECRYPTION_KEY_FILES is required"),
        ("VSSID_VNEID_DECRYPTION_KEY_FILES", "/nonexistent/key.pem", "cannot read RSA key file"),
        ("VSSID_VNEID_RESPONSE_CIPHER", "aes-gcm", "VSSID_VNEID_RESPONSE_CIPHER"),
        ("VSSID_VNEID_USE_PAR", "true", "VSSID_VNEID_USE_PAR does not apply"),
    ],
)
def test_a_broken_dialect_setting_fails_start_in_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, value: str, says: str
) -> None:
    key = write_rsa_key(tmp_path / "a.pem", serialization.PrivateFormat.PKCS8)
    dialect_env(monkeypatch, str(key))
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsInvalid) as refused:
        load_settings(Settings)
    assert says in str(refused.value)
    assert "\n" not in str(refused.value)


def test_a_key_that_is_not_rsa_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / "ec.pem"
    path.write_bytes(
        ec_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    dialect_env(monkeypatch, str(path))
    with pytest.raises(SettingsInvalid) as refused:
        load_settings(Settings)
    assert "is not an RSA private key" in str(refused.value)


def test_keys_rp_key_writes_an_owner_only_key_and_prints_its_public_part(tmp_path: Path) -> None:
    out = tmp_path / "rp.pem"
    made = subprocess.run(  # noqa: S603 - our own command
        [COMMAND, "keys", "rp-key", "--out", str(out)],
        env=cli_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert "PRIVATE KEY" not in made.stdout + made.stderr
    assert "-----BEGIN PUBLIC KEY-----" in made.stdout
    jwk = json.loads(made.stdout[made.stdout.index("{") :])
    assert jwk["kty"] == "RSA" and jwk["use"] == "enc" and "d" not in jwk
    private = serialization.load_pem_private_key(out.read_bytes(), password=None)
    assert isinstance(private, rsa.RSAPrivateKey)
    public_numbers = private.public_key().public_numbers()
    assert jwk["e"] == "AQAB" and public_numbers.e == 65537
    again = subprocess.run(  # noqa: S603
        [COMMAND, "keys", "rp-key", "--out", str(out)],
        env=cli_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode != 0
    assert "exists" in again.stderr
