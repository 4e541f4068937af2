#!/usr/bin/env python3
"""A restore drill with plain PostgreSQL on one machine: the steps of docs/deploy.md, "Restore",
that CloudNativePG performs in a cluster, done by hand so they can be tried anywhere.

1. a fresh instance (initdb, on a free port) archiving every WAL segment to a directory;
2. a base backup of it (pg_basebackup), taken before anything is written;
3. the broker's schema (`vssid-broker migrate`) and audited changes (`vssid-broker staff create`);
4. a named restore point, then more audited changes that the restore must not bring back;
5. recovery of the base backup into a new data directory, replaying the archive up to the
   restore point (point-in-time recovery), then promotion;
6. `vssid-broker audit verify` on the recovered database, and a count of what came back.

    python3 deploy/drill/restore_drill.py [--keep]

Needs PostgreSQL's server binaries (/usr/lib/postgresql/*/bin) and `vssid-broker` on PATH (or
VSSID_BROKER_COMMAND). Run as root, the servers run as the `postgres` user (runuser). The last
line printed is a JSON summary; the exit status is 0 only when the chain verifies and exactly
the changes before the restore point came back.
"""

from __future__ import annotations

import argparse
import base64
import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESTORE_POINT = "before-the-mistake"
STAFF_BEFORE = ("drill-before-1", "drill-before-2")
STAFF_AFTER = ("drill-after-1",)


def pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [shutil.which(name) or ""]
    if not found[-1]:
        sys.exit(f"{name} not found: install PostgreSQL's server package")
    return found[-1]  # the newest installed major version


def as_postgres(*command: str) -> list[str]:
    """Servers refuse to run as root: under root, run them as the postgres user."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return list(command)


def run(*command: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)  # noqa: S603
    if done.returncode != 0:
        sys.exit(
            f"{' '.join(command[:4])}… failed ({done.returncode}):\n{done.stdout}{done.stderr}"
        )
    return done.stdout


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Instance:
    def __init__(self, data: Path, port: int, sockets: Path) -> None:
        self.data, self.port, self.sockets = data, port, sockets

    def start(self) -> None:
        log = self.data.parent / f"{self.data.name}.log"
        run(
            *as_postgres(
                pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(log), "-w", "-t", "60", "start"
            )
        )

    def stop(self) -> None:
        run(*as_postgres(pg_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"))

    def sql(self, statement: str, database: str = "postgres") -> str:
        return run(
            pg_bin("psql"),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-d",
            database,
            "-XAtq",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            statement,
        ).strip()

    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/vssid"


def configure(data: Path, port: int, sockets: Path, extra: str) -> None:
    with open(data / "postgresql.conf", "a") as conf:
        conf.write(
            f"\nport = {port}\nlisten_addresses = '127.0.0.1'\n"
            f"unix_socket_directories = '{sockets}'\nfsync = off\n{extra}"
        )


def broker(env: dict[str, str], *args: str) -> str:
    command = os.environ.get("VSSID_BROKER_COMMAND") or shutil.which("vssid-broker")
    if not command:
        sys.exit("vssid-broker not found on PATH (or set VSSID_BROKER_COMMAND)")
    return run(command, *args, env=env)


def broker_env(url: str, workdir: Path) -> dict[str, str]:
    key = base64.urlsafe_b64encode(b"restore drill: key-encryption k.").decode()
    index_key = base64.urlsafe_b64encode(b"restore drill: blind-index key..").decode()
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(workdir),
        "VSSID_DATABASE_URL": url,
        "VSSID_KEY_ENCRYPTION_KEY": key,
        "VSSID_BLIND_INDEX_KEY": index_key,
        "VSSID_STAFF_PASSWORD": "a drill password, long enough",
    }


def drill(workdir: Path) -> dict[str, object]:
    sockets, archive = workdir / "sockets", workdir / "wal-archive"
    for directory in (sockets, archive):
        directory.mkdir()
    if os.geteuid() == 0:  # the servers, run as postgres, write their directories in here
        for directory in (workdir, sockets, archive):
            shutil.chown(directory, "postgres")
    source = Instance(workdir / "source", free_port(), sockets)
    run(
        *as_postgres(
            pg_bin("initdb"), "-D", str(source.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"
        )
    )
    configure(
        source.data,
        source.port,
        sockets,
        f"wal_level = replica\narchive_mode = on\narchive_command = 'cp %p {archive}/%f'\n",
    )
    source.start()
    try:
        backup = workdir / "base-backup"
        run(
            *as_postgres(
                pg_bin("pg_basebackup"),
                "-h",
                "127.0.0.1",
                "-p",
                str(source.port),
                "-U",
                "postgres",
                "-D",
                str(backup),
                "-X",
                "fetch",
                "--checkpoint",
                "fast",
            )
        )
        source.sql("CREATE DATABASE vssid")
        env = broker_env(source.url(), workdir)
        broker(env, "migrate")
        for username in STAFF_BEFORE:
            broker(env, "staff", "create", "--username", username, "--role", "auditor")
        events_at_point = int(source.sql("SELECT count(*) FROM audit_events", "vssid"))
        source.sql(f"SELECT pg_create_restore_point('{RESTORE_POINT}')")
        for username in STAFF_AFTER:
            broker(env, "staff", "create", "--username", username, "--role", "admin")
        events_at_source = int(source.sql("SELECT count(*) FROM audit_events", "vssid"))
        source.sql("SELECT pg_switch_wal()")
        # The segment holding the restore point must be in the archive before the source goes.
        segment = source.sql("SELECT last_archived_wal FROM pg_stat_archiver")
        deadline = time.monotonic() + 30
        while not segment and time.monotonic() < deadline:
            time.sleep(0.2)
            segment = source.sql("SELECT last_archived_wal FROM pg_stat_archiver")
    finally:
        source.stop()

    restored = Instance(workdir / "restored", free_port(), sockets)
    run(*as_postgres("cp", "-a", str(backup), str(restored.data)))
    configure(
        restored.data,
        restored.port,
        sockets,
        f"restore_command = 'cp {archive}/%f %p'\nrecovery_target_name = '{RESTORE_POINT}'\n"
        "recovery_target_action = 'promote'\narchive_mode = off\n",
    )
    run(*as_postgres("touch", str(restored.data / "recovery.signal")))
    restored.start()
    try:
        deadline = time.monotonic() + 60
        while restored.sql("SELECT pg_is_in_recovery()") == "t":
            if time.monotonic() > deadline:
                sys.exit("the restored instance did not finish recovery in 60 s")
            time.sleep(0.2)
        env = broker_env(restored.url(), workdir)
        verified = broker(env, "audit", "verify").strip()
        staff = restored.sql(
            "SELECT string_agg(username, ',' ORDER BY username) FROM staff_users", "vssid"
        )
        events_restored = int(restored.sql("SELECT count(*) FROM audit_events", "vssid"))
    finally:
        restored.stop()
    came_back = sorted(staff.split(",")) if staff else []
    return {
        "ok": came_back == sorted(STAFF_BEFORE) and events_restored == events_at_point,
        "audit_verify": verified,
        "audit_events_at_restore_point": events_at_point,
        "audit_events_on_source": events_at_source,
        "audit_events_restored": events_restored,
        "staff_restored": came_back,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="keep the drill's directory")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="vssid-restore-drill-"))
    try:
        summary = drill(workdir)
    finally:
        if args.keep:
            print(f"kept: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(summary, ensure_ascii=False))
    sys.exit(0 if summary["ok"] else 1)


if __name__ == "__main__":
    main()
