"""What `audit verify` alone cannot see, signed anchors outside the database catch: the newest
entries removed, the chain re-hashed by someone holding the chain key; and the keyed chain
refuses an entry appended by a role that may only INSERT."""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import Stack
from tests.support.live_server import free_port
from tests.test_audit_chain import as_database_owner, verified, write_events  # noqa: F401
from tests.test_cli import run_cli
from tests.test_privacy_cli import database, seeded
from vssid_broker.audit import anchors, chain
from vssid_broker.audit.models import AuditEvent
from vssid_broker.cli.audit import write_anchor
from vssid_broker.config import Settings
from vssid_broker.errors import CommandRefused
from vssid_broker.housekeeping import purge


def key_files(directory: Path) -> tuple[Path, Path]:
    """An anchor key pair in PEM: (private, public)."""
    private = Ed25519PrivateKey.generate()
    private_file, public_file = directory / "anchor.pem", directory / "anchor.pub.pem"
    private_file.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public_file.write_bytes(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private_file, public_file


async def anchor_now(stack: Stack, private_file: Path, anchors_file: Path) -> anchors.Anchor:
    async with stack.db() as session:
        head = await anchors.head(session, stack.clock())
    with anchors_file.open("a") as handle:
        handle.write(anchors.sign(head, anchors.load_key(private_file, private=True)) + "\n")
    return head


async def against_anchors(stack: Stack, public_file: Path, anchors_file: Path) -> str | None:
    read = anchors.read(anchors_file, anchors.load_key(public_file, private=False))
    async with stack.db() as session:
        return await anchors.check(session, read)


async def test_an_anchor_carries_the_chains_head_and_a_whole_chain_agrees(
    stack: Stack, tmp_path: Path
) -> None:
    private_file, public_file = key_files(tmp_path)
    anchors_file = tmp_path / "anchors.jws"
    ids = await write_events(stack, 3)
    first = await anchor_now(stack, private_file, anchors_file)
    ids += (await write_events(stack, 2))[-2:]
    await anchor_now(stack, private_file, anchors_file)
    async with stack.db() as session:
        newest = await session.scalar(select(AuditEvent).where(AuditEvent.id == ids[-1]))
    read = anchors.read(anchors_file, anchors.load_key(public_file, private=False))
    assert [a.sequence for a in read] == [ids[2], ids[-1]]
    assert newest is not None and read[-1].hash == newest.entry_hash
    assert read[0] == first
    assert await against_anchors(stack, public_file, anchors_file) is None


@pytest.mark.usefixtures("stack", "as_database_owner")  # then the triggers lifted
async def test_anchors_catch_the_newest_entries_removed(
    stack: Stack, tmp_path: Path, engine: AsyncEngine
) -> None:
    private_file, public_file = key_files(tmp_path)
    anchors_file = tmp_path / "anchors.jws"
    ids = await write_events(stack, 6)
    await anchor_now(stack, private_file, anchors_file)
    async with engine.begin() as connection:
        await connection.execute(text("DELETE FROM audit_events WHERE id > :id"), {"id": ids[0]})
    assert await verified(stack) == (1, None)  # what is left still links up
    problem = await against_anchors(stack, public_file, anchors_file)
    assert problem is not None and f"before entry {ids[-1]} anchored" in problem


@pytest.mark.usefixtures("stack", "as_database_owner")  # then the triggers lifted
async def test_anchors_catch_removed_entries_hidden_by_later_ones(
    stack: Stack, tmp_path: Path, engine: AsyncEngine
) -> None:
    private_file, public_file = key_files(tmp_path)
    anchors_file = tmp_path / "anchors.jws"
    ids = await write_events(stack, 5)
    await anchor_now(stack, private_file, anchors_file)
    async with engine.begin() as connection:
        await connection.execute(text("DELETE FROM audit_events WHERE id > :id"), {"id": ids[2]})
    later = await write_events(stack, 3)  # the broker chains on from what is left
    assert later[-1] > ids[-1]
    assert await verified(stack) == (6, None)
    problem = await against_anchors(stack, public_file, anchors_file)
    # PostgreSQL never gives an id twice: the anchored entry is gone. SQLite gives the freed ids
    # again: the anchored id holds another entry, with another hash.
    assert problem is not None and problem.startswith(f"entry {ids[-1]}")
    assert problem.endswith("is missing") or "another hash" in problem


@pytest.mark.usefixtures("stack", "as_database_owner")  # then the triggers lifted
async def test_anchors_catch_a_chain_re_hashed_with_the_chain_key(
    stack: Stack, tmp_path: Path, engine: AsyncEngine
) -> None:
    private_file, public_file = key_files(tmp_path)
    anchors_file = tmp_path / "anchors.jws"
    ids = await write_events(stack, 4)
    await anchor_now(stack, private_file, anchors_file)
    # Someone with the database and the key-encryption key edits an entry and re-links the rest.
    keys = chain.installed()
    async with engine.begin() as connection:
        await connection.execute(
            text("UPDATE audit_events SET outcome = 'denied' WHERE id = :id"), {"id": ids[1]}
        )
    async with stack.db() as session:
        rows = list(await session.scalars(select(AuditEvent).order_by(AuditEvent.id)))
    previous = rows[0].prev_hash
    async with engine.begin() as connection:
        for row in rows:
            new_hash = chain.hash_of(row, previous, keys.keys[keys.current_kid])
            await connection.execute(
                text("UPDATE audit_events SET prev_hash = :p, entry_hash = :h WHERE id = :id"),
                {"p": previous, "h": new_hash, "id": row.id},
            )
            previous = new_hash
    assert await verified(stack) == (4, None)  # verify alone is satisfied
    problem = await against_anchors(stack, public_file, anchors_file)
    assert problem is not None and problem.startswith(f"entry {ids[-1]} has another hash")


@pytest.mark.parametrize("forgery", ["unkeyed", "wrong key"])
async def test_an_entry_appended_without_the_chain_key_is_refused(
    stack: Stack, forgery: str
) -> None:
    """An INSERT-only role (the broker's own) cannot write a link that verifies: it would
    need the chain key, which lives outside the database."""
    ids = await write_events(stack, 3)
    async with stack.db() as session:
        tip = await session.scalar(select(AuditEvent.entry_hash).where(AuditEvent.id == ids[-1]))
    assert tip is not None
    at = stack.clock()
    content = {
        "occurred_at": at,
        "event_type": "account.unlinked",
        "outcome": "succeeded",
        "account_id": 7,
        "actor": "staff:admin",
        "request_id": None,
        "details": {},
    }
    key = None if forgery == "unkeyed" else os.urandom(32)
    forged = chain.entry_hash(tip, key=key, **content)  # type: ignore[arg-type]
    async with stack.db.begin() as session:  # a plain INSERT, as the broker's role may do
        await session.execute(
            insert(AuditEvent.metadata.tables["audit_events"]).values(
                **content,
                prev_hash=tip,
                entry_hash=forged,
                chain_key_id=None if key is None else chain.installed().current_kid,
            )
        )
    entries, broken_at = await verified(stack)
    assert entries == 3 and broken_at is not None and broken_at > ids[-1]


async def test_anchors_of_entries_purged_behind_a_checkpoint_still_agree(
    stack: Stack, tmp_path: Path
) -> None:
    private_file, public_file = key_files(tmp_path)
    anchors_file = tmp_path / "anchors.jws"
    await write_events(stack, 3)
    await anchor_now(stack, private_file, anchors_file)
    stack.clock.advance(stack.settings.retain_audit_events_days * 86400 + 60)
    await write_events(stack, 2)
    async with stack.db.begin() as session:
        await purge(session, stack.clock(), stack.settings)
    await anchor_now(stack, private_file, anchors_file)
    assert await verified(stack) == (3, None)
    assert await against_anchors(stack, public_file, anchors_file) is None


def test_an_anchor_signed_by_another_key_is_refused(tmp_path: Path) -> None:
    (tmp_path / "ours").mkdir()
    (tmp_path / "theirs").mkdir()
    ours, _ = key_files(tmp_path / "ours")
    _, theirs = key_files(tmp_path / "theirs")
    head = anchors.Anchor(3, "ab" * 32, datetime.now(UTC))
    anchors_file = tmp_path / "anchors.jws"
    anchors_file.write_text(anchors.sign(head, anchors.load_key(ours, private=True)) + "\n")
    with pytest.raises(anchors.AnchorError, match=r"line 1 .* not signed by the anchor key"):
        anchors.read(anchors_file, anchors.load_key(theirs, private=False))


@pytest.mark.timeout(300)  # nine command runs, each its own process
def test_the_anchor_and_verify_commands_as_an_operator_runs_them(tmp_path: Path) -> None:
    env = seeded(tmp_path)
    private_file, public_file = key_files(tmp_path)
    anchors_file = tmp_path / "anchors.jws"
    refused = run_cli("audit", "anchor", env=env, cwd=tmp_path)
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        "audit anchor needs the anchor key: --key or VSSID_AUDIT_ANCHOR_KEY_FILE"
    )
    to_stdout = run_cli(  # one compact JWS line, for a log shipper
        "audit", "anchor", env=env | {"VSSID_AUDIT_ANCHOR_KEY_FILE": str(private_file)},
        cwd=tmp_path,
    )  # fmt: skip
    assert to_stdout.returncode == 0 and to_stdout.stdout.count(".") == 2
    anchors_file.write_text(to_stdout.stdout)
    appended = run_cli(
        "audit", "anchor", "--key", str(private_file), "--out", str(anchors_file),
        env=env, cwd=tmp_path,
    )  # fmt: skip
    assert appended.returncode == 0, appended.stderr
    assert len(anchors_file.read_text().splitlines()) == 2
    check = ("audit", "verify", "--anchors", str(anchors_file), "--key", str(public_file))
    verified = run_cli(*check, env=env, cwd=tmp_path)
    assert verified.returncode == 0, verified.stderr
    assert "audit chain verified: 3 entries, consistent with 2 anchors" in verified.stdout
    with database(tmp_path) as db:
        db.execute("DROP TRIGGER audit_events_no_delete")  # the owner of the file can
        db.execute("DELETE FROM audit_events WHERE id = (SELECT MAX(id) FROM audit_events)")
    assert run_cli("audit", "verify", env=env, cwd=tmp_path).returncode == 0  # alone: blind
    broken = run_cli(*check, env=env, cwd=tmp_path)
    assert broken.returncode == 1
    assert broken.stderr.startswith("audit chain BROKEN against its anchors: the chain ends")


async def test_entries_from_before_the_chain_was_keyed_still_verify(stack: Stack) -> None:
    """Migration 0014 rewrites nothing: the unkeyed SHA-256 links written before it still
    verify, and the keyed ones chain on from them (the switch-over point)."""
    previous = chain.GENESIS
    async with stack.db.begin() as session:  # what an older broker wrote
        for number in range(3):
            content = {
                "occurred_at": stack.clock(),
                "event_type": "test.before_keying",
                "outcome": "ok",
                "account_id": None,
                "actor": "system",
                "request_id": None,
                "details": {"number": number},
            }
            link = chain.entry_hash(previous, **content)  # type: ignore[arg-type]
            await session.execute(
                insert(AuditEvent.metadata.tables["audit_events"]).values(
                    **content, prev_hash=previous, entry_hash=link, chain_key_id=None
                )
            )
            previous = link
    ids = await write_events(stack, 2)
    assert await verified(stack) == (5, None)
    async with stack.db() as session:
        keys = list(await session.scalars(select(AuditEvent.chain_key_id).order_by(AuditEvent.id)))
    assert keys[:3] == [None] * 3 and keys[3:] == [chain.installed().current_kid] * 2
    assert len(ids) == 5


class Pushgateway(ThreadingHTTPServer):
    """Prometheus's Pushgateway as far as a pushing job sees it, on a free loopback port: each
    PUT of the text format kept in `pushed` as (path, body)."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _PushHandler)
        self.pushed: list[tuple[str, str]] = []


class _PushHandler(BaseHTTPRequestHandler):
    def do_PUT(self) -> None:
        assert isinstance(self.server, Pushgateway)
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        self.server.pushed.append((self.path, body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # quiet in the test output
        pass


def pushing_to(stack: Stack, url: str) -> Settings:
    return stack.settings.model_copy(update={"audit_anchor_pushgateway_url": url})


async def test_the_anchor_job_tells_the_pushgateway_when_it_anchored(
    stack: Stack, tmp_path: Path
) -> None:
    private_file, public_file = key_files(tmp_path)
    anchors_file = tmp_path / "anchors.jws"
    server = Pushgateway()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        await write_anchor(pushing_to(stack, url), private_file, anchors_file)
    finally:
        server.shutdown()
    (anchored,) = anchors.read(anchors_file, anchors.load_key(public_file, private=False))
    ((path, body),) = server.pushed
    assert path == f"/metrics/job/{anchors.PUSH_JOB}"
    values = {
        sample.name: sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }
    assert values[anchors.WRITTEN_METRIC] == anchored.at.timestamp()
    assert values[anchors.SEQUENCE_METRIC] == anchored.sequence


async def test_an_unreachable_pushgateway_fails_the_job_after_the_anchor_is_written(
    stack: Stack, tmp_path: Path
) -> None:
    private_file, _ = key_files(tmp_path)
    anchors_file = tmp_path / "anchors.jws"
    port = free_port()  # nothing listens there
    settings = pushing_to(stack, f"http://user:secret@127.0.0.1:{port}")
    with pytest.raises(CommandRefused) as refused:
        await write_anchor(settings, private_file, anchors_file)
    assert str(refused.value).startswith("anchored entry ")
    assert f"the Pushgateway at 127.0.0.1:{port} was not told" in str(refused.value)
    assert "secret" not in str(refused.value)
    assert len(anchors_file.read_text().splitlines()) == 1  # the anchor itself stands
