"""The key-encryption key: a broker that cannot open its own signing keys refuses to start
(instead of reporting ready and failing every login), the published demo key is refused on an
https public URL, and `vssid-broker keys rotate-kek` moves everything to a new key."""

from __future__ import annotations

import base64
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.support.live_server import free_port
from tests.test_cli import COMMAND, cli_env, run_cli
from vssid_broker.config import DEMO_KEY_ENCRYPTION_KEY
from vssid_broker.sessions.keys import (
    KeyEncryptionKeyError,
    KeyEncryptionKeys,
    parse_key_encryption_key,
)
from vssid_broker.sessions.models import SESSION_VNEID_ID_TOKEN

# Each test runs the command five or six times, at several seconds a start on a loaded machine.
pytestmark = pytest.mark.timeout(300)


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
    kek_file = Path(env["VSSID_KEY_ENCRYPTION_KEY_FILE"])
    kek_file.unlink()
    for said in (
        serve_refusal(env, tmp_path),
        refusal(run_cli("migrate", env=env, cwd=tmp_path)),
        refusal(run_cli("keys", "list", env=env, cwd=tmp_path)),
    ):
        assert said.strip() == (
            f"the key-encryption key file {kek_file} is missing, but the database holds 1 "
            "signing keys sealed under it: restore the file (or set VSSID_KEY_ENCRYPTION_KEY to "
            "that key); a new key would open none of them"
        )
        # No stray key is left behind to pass for the lost one.
        assert not kek_file.exists()


def refusal(done: subprocess.CompletedProcess[str]) -> str:
    """A command's one-line refusal: exit status 1, no traceback."""
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    return done.stderr


def test_a_directory_or_unreadable_key_path_is_refused_in_one_line(tmp_path: Path) -> None:
    env = migrated_with_a_key(tmp_path)
    directory = tmp_path / "kek-directory"
    directory.mkdir()
    (tmp_path / "a-file").write_text("not a directory")
    under_a_file = tmp_path / "a-file" / "kek"
    for path, reason in ((directory, "Is a directory"), (under_a_file, "Not a directory")):
        bad = env | {"VSSID_KEY_ENCRYPTION_KEY_FILE": str(path)}
        for said in (
            serve_refusal(bad, tmp_path),
            refusal(run_cli("migrate", env=bad, cwd=tmp_path)),
        ):
            assert said.strip() == (
                f"the key-encryption key file {path} cannot be read ({reason}): give a readable "
                "file of one base64url key, or set VSSID_KEY_ENCRYPTION_KEY"
            )


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


def test_rotate_kek_on_a_seeded_database_with_browser_sessions(tmp_path: Path) -> None:
    """The breach runbook's step on a database in use: signing keys, citizen IDs, a staff
    second factor and a browser session holding VNeID's sealed ID token all move, with
    progress, and a second run finds nothing left."""
    old, new = new_key(), new_key()
    env = migrated_with_a_key(tmp_path, VSSID_KEY_ENCRYPTION_KEY=old)
    assert run_cli("seed", env=env, cwd=tmp_path).returncode == 0
    old_keys = KeyEncryptionKeys(parse_key_encryption_key(old))
    id_token = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    with sqlite3.connect(tmp_path / "cli.sqlite3") as db:
        db.execute(
            "INSERT INTO browser_sessions (session_hash, account_id, acr, created_at, expires_at,"
            " public_id, last_used_at, csrf_token, vneid_id_token_sealed) SELECT 'h1', id,"
            " 'level2', '2026-01-01 00:00:00', '2099-01-01 00:00:00', 'p1',"
            " '2026-01-01 00:00:00', 'c1', ? FROM accounts ORDER BY id LIMIT 1",
            (old_keys.seal(id_token, SESSION_VNEID_ID_TOKEN.of("h1")),),
        )
        sealed_ids = db.execute(
            "SELECT count(*) FROM accounts WHERE citizen_id_sealed IS NOT NULL"
        ).fetchone()[0]

    rotated = run_cli(
        "keys", "rotate-kek", "--batch-size", "2",
        env=env | {"VSSID_NEW_KEY_ENCRYPTION_KEY": new}, cwd=tmp_path,
    )  # fmt: skip
    assert rotated.returncode == 0, rotated.stderr
    assert "browser_sessions.vneid_id_token_sealed: 1 of 1 re-sealed" in rotated.stdout
    assert f"accounts.citizen_id_sealed: {sealed_ids} of {sealed_ids} re-sealed" in rotated.stdout
    assert "accounts.citizen_id_sealed: 2 of" in rotated.stdout  # batch by batch
    assert new not in rotated.stdout + rotated.stderr

    with sqlite3.connect(tmp_path / "cli.sqlite3") as db:
        (token_sealed,) = db.execute(
            "SELECT vneid_id_token_sealed FROM browser_sessions"
        ).fetchone()
    new_keys = KeyEncryptionKeys(parse_key_encryption_key(new))
    in_its_session = SESSION_VNEID_ID_TOKEN.of("h1")
    assert new_keys.open(token_sealed, in_its_session) == id_token
    with pytest.raises(KeyEncryptionKeyError):
        old_keys.open(token_sealed, in_its_session)

    on_new = env | {"VSSID_KEY_ENCRYPTION_KEY": new}
    again = run_cli("keys", "rotate-kek", env=on_new | {"VSSID_NEW_KEY_ENCRYPTION_KEY": new},
                    cwd=tmp_path)  # fmt: skip
    assert again.returncode == 0 and "re-encrypted 0 values" in again.stdout, again.stderr
    # The old key opens nothing any more: a broker given it refuses to start.
    assert "key-encryption key cannot open signing key" in serve_refusal(env, tmp_path)
