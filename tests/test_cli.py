"""The commands the README, the Dockerfile and docker-compose run, run here as real processes."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pyotp

from tests.conftest import Stack
from tests.support.http import TLS, Client
from tests.support.live_server import free_port
from vssid_broker.cli.demo import DEMO_TOTP_SECRET
from vssid_broker.config import is_loopback_url

COMMAND = shutil.which("vssid-broker") or str(Path(sys.executable).parent / "vssid-broker")


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VSSID_", "VNEID_SIM_"))}
    env["VSSID_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'cli.sqlite3'}"
    env["VSSID_KEY_ENCRYPTION_KEY_FILE"] = str(tmp_path / "kek")
    env["VSSID_BLIND_INDEX_KEY_FILE"] = str(tmp_path / "blind-index-key")
    env |= extra
    if is_loopback_url(env.get("VSSID_PUBLIC_BASE_URL", "http://127.0.0.1")):
        # As the suite's own broker (the profile is refused off loopback).
        env.setdefault("VSSID_PASSWORD_HASH_PROFILE", "cheapest-for-tests")
    return env


def serve_env(stack: Stack, tmp_path: Path, *, public_port: int, **extra: str) -> dict[str, str]:
    """`vssid-broker serve` on the test stack's database and VNeID, as one of several
    processes behind a load balancer (they share the public URL, the tokens' issuer)."""
    kek, index_key = stack.settings.key_encryption_key, stack.settings.blind_index_key
    assert kek is not None and index_key is not None
    return cli_env(
        tmp_path,
        VSSID_DATABASE_URL=stack.settings.database_url,
        VSSID_KEY_ENCRYPTION_KEY=kek.get_secret_value(),
        VSSID_BLIND_INDEX_KEY=index_key.get_secret_value(),
        VSSID_VNEID_ISSUER=stack.sim,
        VSSID_PUBLIC_BASE_URL=f"http://127.0.0.1:{public_port}",
        **extra,
    )


def run_cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own command
        [COMMAND, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )


@contextmanager
def running(
    *args: str, env: dict[str, str], cwd: Path, ready_url: str
) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(  # noqa: S603
        [COMMAND, *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(ready_url, timeout=1, verify=TLS).status_code < 500:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                # Stopped first: the output of a process still running has no end to read to.
                process.kill()
                output, _ = process.communicate(timeout=10)
                raise AssertionError(f"{args} did not come up:\n{output}")
            time.sleep(0.1)
        yield process
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_serve_refuses_an_unmigrated_database_and_says_what_to_run(tmp_path: Path) -> None:
    port = free_port()
    env = cli_env(tmp_path)
    process = subprocess.run(  # noqa: S603
        [COMMAND, "serve", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert process.returncode != 0
    assert "vssid-broker migrate" in process.stdout + process.stderr


def test_migrate_seed_keys_then_serve(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    assert run_cli("migrate", env=env, cwd=tmp_path).returncode == 0
    seeded = run_cli("seed", env=env, cwd=tmp_path)
    assert "demo accounts added: 19" in seeded.stdout
    assert "demo review cases added: 2" in seeded.stdout
    again = run_cli("seed", env=env, cwd=tmp_path).stdout
    assert "demo accounts added: 0" in again  # idempotent
    assert "demo review cases added: 0" in again
    keys = run_cli("keys", "ensure", env=env, cwd=tmp_path)
    assert keys.returncode == 0 and "ES256" in keys.stdout
    rotated = run_cli("keys", "rotate", env=env, cwd=tmp_path)
    assert rotated.returncode == 0 and len(rotated.stdout.strip().splitlines()) == 3

    port = free_port()
    with running(
        "serve",
        "--port",
        str(port),
        env=env,
        cwd=tmp_path,
        ready_url=f"http://127.0.0.1:{port}/readyz",
    ):
        jwks = httpx.get(f"http://127.0.0.1:{port}/.well-known/jwks.json", verify=TLS).json()
        assert len(jwks["keys"]) == 2  # the current key and the one published ahead of use

    assert (
        run_cli("migrate", "--downgrade", "--revision", "base", env=env, cwd=tmp_path).returncode
        == 0
    )


def test_purge_runs_on_a_migrated_database(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    assert run_cli("migrate", env=env, cwd=tmp_path).returncode == 0
    purged = run_cli("purge", env=env, cwd=tmp_path)
    assert purged.returncode == 0, purged.stderr
    assert (
        "purged: 0 expired login transactions, 0 browser sessions, 0 refresh tokens of ended "
        "families, 0 spent refresh tokens, 0 used jtis, 0 decided review cases, 0 withdrawn "
        "consents, 0 audit events, 0 staff console sessions"
    ) in purged.stdout


def test_vneid_sim_command_serves_discovery(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running(
        "vneid-sim",
        "--test-mode",
        "--port",
        str(port),
        env=cli_env(tmp_path),
        cwd=tmp_path,
        ready_url=f"{url}/.well-known/openid-configuration",
    ):
        assert (
            httpx.get(f"{url}/.well-known/openid-configuration", verify=TLS).json()["issuer"] == url
        )
        assert httpx.get(f"{url}/_test/faults", verify=TLS).status_code == 200


def test_staff_create_reads_the_password_from_stdin_or_the_environment(tmp_path: Path) -> None:
    # Without the suite's cheap hashing: the parameters a deployment gets by default.
    env = cli_env(tmp_path)
    del env["VSSID_PASSWORD_HASH_PROFILE"]
    assert run_cli("migrate", env=env, cwd=tmp_path).returncode == 0

    def create(
        username: str, password: str, *, via_env: bool = False
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - our own command
            [COMMAND, "staff", "create", "--username", username, "--role", "reviewer"],
            env=env | {"VSSID_STAFF_PASSWORD": password} if via_env else env,
            input=None if via_env else f"{password}\n",
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )

    created = create("thu", "a long enough secret")
    assert created.returncode == 0 and "staff user thu (reviewer) created" in created.stdout
    assert create("lan", "another long secret", via_env=True).returncode == 0
    duplicate = create("thu", "a long enough secret")
    assert duplicate.returncode != 0 and "exists" in duplicate.stderr
    weak = create("minh", "Xy7!q")
    assert weak.returncode != 0 and "too short" in weak.stderr
    for process in (created, duplicate, weak):
        assert "secret" not in process.stdout + process.stderr
        assert "Xy7!q" not in process.stdout + process.stderr
    with sqlite3.connect(tmp_path / "cli.sqlite3") as db:
        hashes = [row[0] for row in db.execute("SELECT password_hash FROM staff_users")]
    # argon2id at RFC 9106's low-memory parameters: 64 MiB, 3 passes, 4 lanes.
    assert len(hashes) == 2 and all(h.startswith("$argon2id$v=19$m=65536,t=3,p=4$") for h in hashes)


def test_staff_are_listed_changed_and_disabled_from_the_command_line_audited(
    tmp_path: Path,
) -> None:
    env = cli_env(tmp_path, VSSID_STAFF_PASSWORD="a long enough secret")
    assert run_cli("migrate", env=env, cwd=tmp_path).returncode == 0
    assert run_cli("staff", "create", "--username", "thu", "--role", "approver", env=env,
                   cwd=tmp_path).returncode == 0  # fmt: skip
    for args in [("set-role", "--role", "auditor"), ("disable",), ("reset-second-factor",)]:
        done = run_cli("staff", args[0], "--username", "thu", *args[1:], env=env, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    listed = run_cli("staff", "list", env=env, cwd=tmp_path).stdout.split()
    assert listed == ["thu", "auditor", "disabled", "not-enrolled", "-"]
    unknown = run_cli("staff", "disable", "--username", "nobody", env=env, cwd=tmp_path)
    assert unknown.returncode != 0 and "not changed" in unknown.stderr
    with sqlite3.connect(tmp_path / "cli.sqlite3") as db:
        trail = list(db.execute("SELECT outcome, actor FROM audit_events ORDER BY id"))
    assert trail == [
        (outcome, "operator:cli")
        for outcome in ("created", "role", "disable", "reset_second_factor")
    ]


def test_demo_command_runs_a_login_end_to_end(tmp_path: Path) -> None:
    port, sim_port = free_port(), free_port()
    broker = f"http://127.0.0.1:{port}"
    with running(
        "demo",
        "--port",
        str(port),
        "--sim-port",
        str(sim_port),
        env=cli_env(tmp_path),
        cwd=tmp_path,
        ready_url=f"{broker}/readyz",
    ):
        from vssid_broker.vneid_sim.driver import sign_in_at_vneid_sync

        with Client() as browser:
            start = browser.get(f"{broker}/auth/vneid/login")
            back = sign_in_at_vneid_sync(browser, start.headers["location"], "001085012345")
            assert browser.get(back).status_code == 302
            page = browser.get(f"{broker}/account")
        # The demo's pending cases are real citizens': a reviewer proposes, an approver
        # confirms, and the citizen then signs in.
        api = f"{broker}/admin/api/v1"

        def staff_token(username: str, password: str) -> dict[str, str]:
            otp = pyotp.TOTP(DEMO_TOTP_SECRET).now()
            body = {"username": username, "password": password, "otp": otp}
            token = httpx.post(f"{api}/token", json=body, verify=TLS).json()["access_token"]
            return {"Authorization": f"Bearer {token}"}

        reviewer = staff_token("reviewer", "reviewer-demo-2026")
        approver = staff_token("approver", "approver-demo-2026")
        queue = httpx.get(f"{api}/cases", headers=reviewer, verify=TLS).json()
        dung = next(c for c in queue["items"] if c["full_name"] == "Phạm Thị Dung")
        case = httpx.get(f"{api}/cases/{dung['id']}", headers=reviewer, verify=TLS).json()
        account_id = case["candidates"][0]["account_id"]
        proposal = {"account_id": account_id, "version": 1, "reason": "đối chiếu tại quầy"}
        assert httpx.post(f"{api}/cases/{dung['id']}/approve", headers=reviewer,
                          json=proposal, verify=TLS).status_code == 200  # fmt: skip
        assert httpx.post(f"{api}/cases/{dung['id']}/confirm", headers=approver,
                          json={"version": 2}, verify=TLS).status_code == 200  # fmt: skip
        with Client() as browser:
            start = browser.get(f"{broker}/auth/vneid/login")
            back = sign_in_at_vneid_sync(browser, start.headers["location"], "031188004567")
            dung_signed_in = browser.get(back)
    assert page.status_code == 200
    assert "Nguyễn Văn An" in page.text
    assert [c["full_name"] for c in queue["items"]] == ["Phạm Thị Dung", "Hoàng Văn Em"]
    assert dung_signed_in.headers["location"] == "/account"
    assert "vssid_linked_notice=review" in dung_signed_in.headers["set-cookie"]


def test_an_invalid_setting_stops_each_command_with_one_line_naming_it(tmp_path: Path) -> None:
    bad = cli_env(
        tmp_path,
        VSSID_DATABASE_POOL_SIZE="many",
        VSSID_VNEID_END_SESSION_METHOD="DELETE",
        VNEID_SIM_CODE_TTL_SECONDS="soon",
    )
    for command in (["serve"], ["migrate"], ["demo", "--port", "0"]):
        result = run_cli(*command, env=bad, cwd=tmp_path)
        assert result.returncode != 0
        assert "Traceback" not in result.stderr
        lines = result.stderr.strip().splitlines()
        assert lines == [
            "VSSID_DATABASE_POOL_SIZE: expects a valid integer, unable to parse string as an "
            "integer",
            "VSSID_VNEID_END_SESSION_METHOD: expects 'GET' or 'POST'",
        ], result.stderr
    simulator = run_cli("vneid-sim", "--port", "0", env=bad, cwd=tmp_path)
    assert "Traceback" not in simulator.stderr
    assert simulator.stderr.strip().splitlines() == [
        "VNEID_SIM_CODE_TTL_SECONDS: expects a valid integer, unable to parse string as an integer"
    ]
