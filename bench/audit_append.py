"""The keyed audit chain's append: transactions that write exactly one audit event, from
`--writers` concurrent writers for `--duration` seconds; prints one JSON line.

    VSSID_DATABASE_URL=... VSSID_KEY_ENCRYPTION_KEY=... python3 bench/audit_append.py --writers 32

The broker's settings come from the environment, as for `vssid-broker serve`: the database and
the key-encryption key the chain's key is derived from.

Each writer is an asyncio task with a pooled connection of its own, in one process, as one
broker worker's concurrent requests are: it opens a transaction, records one event through
`audit.service.record` (what every audited story calls) and commits. The commit appends the
event to the chain: on PostgreSQL it takes the chain's advisory lock and reads the tip in one
round trip (`vssid_audit_chain_tip`), inserts the event with its HMAC and commits, so writers
queue on the lock from that call to their commit; on SQLite `BEGIN IMMEDIATE` serialises them.

CPU per append is this process's own (the broker's code: the ORM flush, the HMAC, the driver)
and, on a PostgreSQL server on this machine, that of the server processes serving its
connections (from /proc). Started by `bench/run.py` (scenario `audit_append`) in its own
process, so its CPU is only its own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from vssid_broker.audit import chain
from vssid_broker.audit import service as audit
from vssid_broker.audit.events import AuditEventType
from vssid_broker.config import Settings, load_settings
from vssid_broker.db import create_engine, session_factory, utcnow

EVENT_TYPE = AuditEventType.LOGIN
"""A login's event, the one audited most often (the catalogue names every event type)."""
CLK_TCK = os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] if ordered else 0.0


def process_cpu_seconds(pids: list[int]) -> float | None:
    """User + system CPU of other processes (the database server's), None if any is unreadable
    (a server on another machine)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            return None
        total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


async def server_pids(engine: AsyncEngine, writers: int) -> list[int]:
    """Open every connection the writers will use (the pool holds exactly that many) and
    name the PostgreSQL server process behind each."""
    if engine.dialect.name != "postgresql":
        return []
    connections = [await engine.connect() for _ in range(writers)]
    try:
        return [int(await c.scalar(text("SELECT pg_backend_pid()"))) for c in connections]
    finally:
        for connection in connections:
            await connection.close()


async def run(url: str, writers: int, duration: float) -> dict[str, Any]:
    engine = create_engine(url, pool_size=writers, max_overflow=0)
    sessions = session_factory(engine)
    latencies: list[float] = []
    errors, first_error = 0, ""
    try:
        pids = await server_pids(engine, writers)
        deadline = time.perf_counter() + duration

        async def writer(number: int) -> None:
            nonlocal errors, first_error
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    async with sessions.begin() as session:
                        # A login's event, as the login story writes it, in its size.
                        audit.record(
                            session,
                            event_type=EVENT_TYPE,
                            outcome="succeeded",
                            now=utcnow(),
                            actor="system",
                            request_id=f"bench-{number}-{len(latencies)}",
                            channel="app",
                            acr="LoA2",
                        )
                except Exception as error:  # counted; the load goes on
                    errors += 1
                    first_error = first_error or f"{type(error).__name__}: {error}"[:300]
                    continue
                latencies.append((time.perf_counter() - started) * 1000)

        server_before = process_cpu_seconds(pids) if pids else None
        cpu_before, started = time.process_time(), time.perf_counter()
        await asyncio.gather(*(writer(n) for n in range(writers)))
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_before
        server_after = process_cpu_seconds(pids) if pids else None
    finally:
        await engine.dispose()
    ops = len(latencies)
    result: dict[str, Any] = {
        "scenario": "audit_append",
        "writers": writers,
        "ops": ops,
        "errors": errors,
        "first_error": first_error,
        "elapsed_s": round(elapsed, 3),
        "throughput": round(ops / elapsed, 1) if elapsed else 0.0,
        "latency_ms": {
            "p50": round(percentile(latencies, 50), 2),
            "p95": round(percentile(latencies, 95), 2),
            "p99": round(percentile(latencies, 99), 2),
            "mean": round(sum(latencies) / ops, 2) if ops else 0.0,
        },
        "concurrency": writers,
        "driver_cpu_s": round(cpu, 3),
    }
    if server_before is not None and server_after is not None:
        result["db_cpu_s"] = round(server_after - server_before, 3)
        result["db_cpu_ms_per_op"] = round((server_after - server_before) / max(1, ops) * 1000, 3)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writers", type=int, default=1)
    parser.add_argument("--duration", type=float, default=10)
    args = parser.parse_args()
    settings = load_settings(Settings)
    chain.install(chain.ChainKeys.from_settings(settings))
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        print(json.dumps(runner.run(run(settings.database_url, args.writers, args.duration))))


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's, as the broker's workers run on it (uvicorn picks it when installed)."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


if __name__ == "__main__":
    main()
