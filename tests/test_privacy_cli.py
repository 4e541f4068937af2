"""The privacy commands as an operator runs them: `audit verify`, `keys reseal-citizen-ids`
(now also `keys reseal`), `purge`, on a migrated and seeded database."""

from __future__ import annotations

import base64
import json
import os
import sqlite3
from pathlib import Path

from tests.test_cli import cli_env, run_cli


def new_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def seeded(tmp_path: Path) -> dict[str, str]:
    env = cli_env(tmp_path, VSSID_KEY_ENCRYPTION_KEY=new_key())
    for command in (("migrate",), ("seed",), ("purge",)):
        done = run_cli(*command, env=env, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    return env


def database(tmp_path: Path) -> sqlite3.Connection:
    return sqlite3.connect(tmp_path / "cli.sqlite3")


def test_audit_verify_proves_the_chain_and_names_a_tampered_entry(tmp_path: Path) -> None:
    env = seeded(tmp_path)
    verified = run_cli("audit", "verify", env=env, cwd=tmp_path)
    assert verified.returncode == 0, verified.stderr
    # The demo seed's review cases (opened by the linking rules, so audited) and the purge.
    assert "audit chain verified: 3 entries" in verified.stdout

    with database(tmp_path) as db:
        db.execute("DROP TRIGGER audit_events_no_update")  # the owner of the file can
        db.execute("UPDATE audit_events SET outcome = 'nothing' WHERE id = 1")
    broken = run_cli("audit", "verify", env=env, cwd=tmp_path)
    assert broken.returncode == 1
    assert "audit chain BROKEN at entry 1: content does not match its hash" in broken.stderr


def test_reseal_moves_every_citizen_id_to_the_new_key(tmp_path: Path) -> None:
    env = seeded(tmp_path)
    with database(tmp_path) as db:
        before = {row[0] for row in db.execute("SELECT citizen_id_sealed FROM accounts")}
    old_kek = env["VSSID_KEY_ENCRYPTION_KEY"]
    rotated = env | {
        "VSSID_KEY_ENCRYPTION_KEY": new_key(),
        "VSSID_CITIZEN_ID_PREVIOUS_KEKS": json.dumps([old_kek]),
    }
    resealed = run_cli("keys", "reseal-citizen-ids", env=rotated, cwd=tmp_path)
    assert resealed.returncode == 0, resealed.stderr
    sealed_accounts = sum(1 for value in before if value)
    assert f"accounts.citizen_id_sealed: {sealed_accounts} of {sealed_accounts} re-sealed" in (
        resealed.stdout
    )
    with database(tmp_path) as db:
        after = {row[0] for row in db.execute("SELECT citizen_id_sealed FROM accounts")}
    assert not (before - {None}) & after
    # The new key alone opens every row now; the old one alone does not.
    alone = rotated | {"VSSID_CITIZEN_ID_PREVIOUS_KEKS": "[]"}
    again = run_cli("keys", "reseal-citizen-ids", env=alone, cwd=tmp_path)
    assert again.returncode == 0 and "re-sealed under key" in again.stdout
    assert again.stdout.strip().endswith(": 0")


def test_rotate_kek_leaves_a_copied_citizen_id_alone_and_names_its_row(tmp_path: Path) -> None:
    """A sealed ID copied onto another account does not open there: the rotation moves every
    other value, leaves that one as it is, names its row and ends with status 1."""
    env = seeded(tmp_path)
    with database(tmp_path) as db:
        (source, target) = db.execute(
            "SELECT id FROM accounts WHERE citizen_id_sealed IS NOT NULL ORDER BY id LIMIT 2"
        ).fetchall()
        db.execute(
            "UPDATE accounts SET citizen_id_sealed ="
            " (SELECT citizen_id_sealed FROM accounts WHERE id = ?) WHERE id = ?",
            (source[0], target[0]),
        )
        (copied,) = db.execute(
            "SELECT citizen_id_sealed FROM accounts WHERE id = ?", (target[0],)
        ).fetchone()
    new = new_key()

    rotated = run_cli(
        "keys", "rotate-kek", env=env | {"VSSID_NEW_KEY_ENCRYPTION_KEY": new}, cwd=tmp_path
    )

    assert rotated.returncode == 1
    assert f"accounts.citizen_id_sealed: 1 refused, not re-sealed (rows {target[0]})" in (
        rotated.stdout
    )
    assert "1 sealed values do not open for their row" in rotated.stderr
    assert "Traceback" not in rotated.stderr
    with database(tmp_path) as db:
        held = dict(db.execute("SELECT id, citizen_id_sealed FROM accounts").fetchall())
    assert held[target[0]] == copied  # left as it was
    moved = [value for key, value in held.items() if value and key != target[0]]
    assert moved and not any(value.startswith(copied[:12]) for value in moved)
