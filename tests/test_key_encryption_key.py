"""The key-encryption key: a broker that cannot open its own signing keys refuses to start
(instead of reporting ready and failing every login), the published demo key is refused on an
https public URL, and `vssid-broker keys rotate-kek` moves everything to a new key."""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path

from tests.support.live_server import free_port
from tests.test_cli import COMMAND, cli_env, run_cli
from vssid_broker.config import DEMO_KEY_ENCRYPTION_KEY


def new_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()


def serve_refusal(env: dict[str, str], cwd: Path) -> str:
    """What `serve` says when it refuses to start (it must not start)."""
    process = subprocess.run(  # noqa: S603 - our own command
        [COMMAND, "serve", "--port", str(free_port())],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert process.returncode != 0, "serve started"
    return process.stdout + process.stderr


def migrated_with_a_key(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = cli_env(tmp_path, **extra)
    assert run_cli("migrate", env=env, cwd=tmp_path).returncode == 0
    assert run_cli("keys", "ensure", env=env, cwd=tmp_path).returncode == 0
    return env


def test_a_lost_key_file_is_not_silently_replaced(tmp_path: Path) -> None:
    env = migrated_with_a_key(tmp_path)
    Path(env["VSSID_KEY_ENCRYPTION_KEY_FILE"]).unlink()
    said = serve_refusal(env, tmp_path)
    assert "key-encryption key cannot open signing key" in said
    assert "Traceback" not in said


def test_a_wrong_key_is_refused_at_start(tmp_path: Path) -> None:
    env = migrated_with_a_key(tmp_path, VSSID_KEY_ENCRYPTION_KEY=new_key())
    said = serve_refusal(env | {"VSSID_KEY_ENCRYPTION_KEY": new_key()}, tmp_path)
    assert "key-encryption key cannot open" in said


def test_the_demo_key_is_refused_on_an_https_public_url(tmp_path: Path) -> None:
    env = cli_env(
        tmp_path,
        VSSID_KEY_ENCRYPTION_KEY=DEMO_KEY_ENCRYPTION_KEY,
        VSSID_PUBLIC_BASE_URL="https://vssid.example.vn",
        VSSID_VNEID_CLIENT_SECRET="a-real-secret-from-the-secret-store",
    )
    assert "published demo key" in serve_refusal(env, tmp_path)


def test_an_https_broker_never_makes_up_a_key_file(tmp_path: Path) -> None:
    env = cli_env(
        tmp_path,
        VSSID_PUBLIC_BASE_URL="https://vssid.example.vn",
        VSSID_VNEID_CLIENT_SECRET="a-real-secret-from-the-secret-store",
    )
    assert "no key-encryption key" in serve_refusal(env, tmp_path)
    assert not Path(env["VSSID_KEY_ENCRYPTION_KEY_FILE"]).exists()


def test_rotate_kek_moves_every_key_to_the_new_one(tmp_path: Path) -> None:
    old, new = new_key(), new_key()
    env = migrated_with_a_key(tmp_path, VSSID_KEY_ENCRYPTION_KEY=old)
    assert run_cli("keys", "rotate", env=env, cwd=tmp_path).returncode == 0
    rotated = run_cli(
        "keys", "rotate-kek", env=env | {"VSSID_NEW_KEY_ENCRYPTION_KEY": new}, cwd=tmp_path
    )
    assert rotated.returncode == 0, rotated.stderr
    assert "re-encrypted 2 values" in rotated.stdout
    assert new not in rotated.stdout + rotated.stderr
    # The old key opens nothing any more; the new one opens everything.
    assert "key-encryption key cannot open" in serve_refusal(env, tmp_path)
    listed = run_cli("keys", "ensure", env=env | {"VSSID_KEY_ENCRYPTION_KEY": new}, cwd=tmp_path)
    assert listed.returncode == 0 and listed.stdout.count("ES256") == 2


def test_rotate_kek_with_a_malformed_key_changes_nothing(tmp_path: Path) -> None:
    old = new_key()
    env = migrated_with_a_key(tmp_path, VSSID_KEY_ENCRYPTION_KEY=old)
    refused = run_cli(
        "keys", "rotate-kek", env=env | {"VSSID_NEW_KEY_ENCRYPTION_KEY": "c2hvcnQ"}, cwd=tmp_path
    )
    assert refused.returncode != 0 and "32 bytes" in refused.stderr
    assert run_cli("keys", "ensure", env=env, cwd=tmp_path).returncode == 0
