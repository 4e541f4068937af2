"""The benchmark harness: one command brings everything up on loopback, drives it, writes results.

    python3 bench/run.py --duration 20 --concurrency 32

What it does, in order:
  1. empties the database (PostgreSQL `vssid_bench` by default, created if missing;
     DROP SCHEMA public), migrates
     it, seeds the demo accounts and `--scales` bulk accounts (`vssid-broker seed --accounts N`);
  2. starts the simulated VNeID (`vssid-broker vneid-sim`, with `generated_citizens`), the broker
     (`vssid-broker serve --workers W`), a second simulator and broker speaking VNeID's
     encrypted dialect (`dialect_login`) and the peer (panva's oidc-provider, `bench/peer/`,
     installed with `npm ci`), each in its own process, all at once;
  3. runs every scenario from a separate driver process (`bench/driver.py`, async httpx; `wrk`
     for single endpoints; `bench/audit_append.py` for the audit chain's append) with a fixed
     concurrency and duration, reading the servers' CPU time and peak RSS from /proc, the
     requests the rate limits refused (the broker's /metrics) and, where PostgreSQL loads
     pg_stat_statements, the statements each scenario ran;
  4. repeats mobile login, refresh and `/api/v1/me` with the other process counts of --workers;
  5. saves EXPLAIN plans of the login path's queries (PostgreSQL);
  6. times the accounts import (`bench/import_bench.py`, `--import-rows`) on a database of its
     own, and writes `bench/results/latest.json`, its charts (`bench/charts.py`) and the table
     in `docs/performance.md`.

The broker runs with its shipped rate limits, as behind an ingress: it trusts the load
generators on loopback as its reverse proxy (`VSSID_TRUSTED_PROXIES`) and every simulated phone
or browser sends an address of its own in `X-Forwarded-For`. The counts are kept in Redis
(`--rate-limit-storage`, emptied at each broker start) at every process count, as several
processes share them in production, so CPU per operation compares like with like from one
process to four.

CPU seconds per operation are the servers' own (user + system, all worker processes), so the
per-core rate (operations per CPU-second) holds even when other work shares the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import charts
import flamegraph
from charts import INSTALL_BENCH_EXTRA

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
DEFAULT_DATABASE = "postgresql+asyncpg://postgres@127.0.0.1:5432/vssid_bench"
CLK_TCK = os.sysconf("SC_CLK_TCK")
MARK_BEGIN, MARK_END = "<!-- bench:begin -->", "<!-- bench:end -->"


def reexec_in_venv() -> None:
    """Run under the project's venv (it has the broker installed), whatever python started us."""
    try:
        import vssid_broker  # noqa: F401
    except ImportError:
        if VENV_PYTHON.exists() and Path(sys.executable) != VENV_PYTHON:
            os.execv(VENV_PYTHON, [str(VENV_PYTHON), *sys.argv])  # noqa: S606
        raise SystemExit("install the project first: python3 dev.py test (makes .venv)") from None


# --- processes and /proc ----------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def descendants(pid: int) -> list[int]:
    found, queue = [pid], [pid]
    while queue:
        current = queue.pop()
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as children:
                    for child in children.read().split():
                        found.append(int(child))
                        queue.append(int(child))
        except OSError:
            continue
    return found


def cpu_times(pids: list[int]) -> tuple[float, float]:
    """User and system CPU seconds of the processes, with their children that have ended: a
    worker that uvicorn's supervisor replaced (one too slow to answer its health check on a
    loaded machine) keeps counting in its parent, so the servers' CPU never goes backwards."""
    user = system = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            user += int(fields[11]) + int(fields[13])
            system += int(fields[12]) + int(fields[14])
        except OSError:
            continue
    return user / CLK_TCK, system / CLK_TCK


def cpu_seconds(pids: list[int]) -> float:
    return sum(cpu_times(pids))


def rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def scratch_folder() -> Path:
    """Server logs and token lists of the run: `tmp/` beside its results (`--results`)."""
    return Path(OPTS.results).parent / "tmp"


class Server:
    """A server process of the run, with its CPU time and peak RSS per process."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], ready_url: str) -> None:
        self.name, self.ready_url = name, ready_url
        self.origin = "/".join(ready_url.split("/")[:3])
        self.log_path = scratch_folder() / f"{name}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(  # noqa: S603 - our own commands
            argv, env=env, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT
        )
        self.peak_rss_mb = 0.0

    def wait_ready(self, timeout: float = 120) -> None:
        """Wait for the ready URL to answer 200; a server that exits or never gets there is
        stopped (its workers with it) before the run ends, so none is left serving."""
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.stop()
                raise SystemExit(f"{self.name} exited; see {self.log_path}")
            try:
                if httpx.get(self.ready_url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise SystemExit(f"{self.name} did not become ready; see {self.log_path}")

    def pids(self) -> list[int]:
        return descendants(self.process.pid)

    def worker_pids(self) -> list[int]:
        """The processes that serve (uvicorn's supervisor only watches its workers)."""
        pids = self.pids()
        return pids[1:] if len(pids) > 1 else pids

    def cpu(self) -> float:
        return cpu_seconds(self.pids())

    def sample_rss(self) -> None:
        for pid in self.worker_pids():
            self.peak_rss_mb = max(self.peak_rss_mb, rss_mb(pid))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


@contextmanager
def rss_sampler(servers: list[Server]) -> Iterator[None]:
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.25):
            for server in servers:
                server.sample_rss()

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


# --- set-up -------------------------------------------------------------------------------------
# `vssid-broker` commands one after the other in one process: each start of the command costs
# ~2 s of CPU in imports, three times over for a seed. Prints each command's output and seconds.
VSSID_STEPS = """
import contextlib, io, json, shlex, sys, time
from vssid_broker.cli import main
done = []
for args in json.loads(sys.argv[1]):
    output, started = io.StringIO(), time.perf_counter()
    try:
        with contextlib.redirect_stdout(output):
            main(args)
    except SystemExit as stop:
        if stop.code not in (None, 0):
            sys.exit(f"{shlex.join(args)} failed: {stop.code}\\n{output.getvalue()}")
    done.append({"output": output.getvalue().strip(), "seconds": time.perf_counter() - started})
print(json.dumps(done))
"""


def vssid(steps: list[list[str]], env: dict[str, str]) -> list[dict[str, Any]]:
    """Run `vssid-broker` commands in order, as an operator would, in one process; each one's
    output and seconds."""
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-c", VSSID_STEPS, json.dumps(steps)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    outputs: list[dict[str, Any]] = json.loads(done.stdout.strip().splitlines()[-1])
    return outputs


async def create_database_if_missing(url: str) -> None:
    """The benchmark's own database, so a run never touches the test suite's."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from vssid_broker.db import create_engine

    target = make_url(url)
    server = create_engine(target.set(database="postgres").render_as_string(hide_password=False))
    async with server.connect() as connection:
        connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
        exists = await connection.scalar(
            text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": target.database}
        )
        if not exists:
            await connection.execute(text(f'CREATE DATABASE "{target.database}"'))
    await server.dispose()


async def reset_database(url: str) -> None:
    from sqlalchemy import text

    from vssid_broker.db import create_engine

    await create_database_if_missing(url)
    engine = create_engine(url)
    async with engine.begin() as connection:
        await connection.execute(text("DROP SCHEMA public CASCADE"))
        await connection.execute(text("CREATE SCHEMA public"))
    await engine.dispose()


def scale_database_url(opts: argparse.Namespace, accounts: int) -> str:
    """With --keep-data every scale has a database of its own (`vssid_bench_10000000`), so a
    seed of ten million accounts is made once and reused by later runs."""
    if not opts.keep_data:
        return str(opts.database_url)
    from sqlalchemy.engine import make_url

    url = make_url(opts.database_url)
    return url.set(database=f"{url.database}_{accounts}").render_as_string(hide_password=False)


async def recorded_seed(url: str, accounts: int) -> dict[str, Any] | None:
    """The seed a --keep-data database already holds, if it is complete and of this size."""
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from vssid_broker.db import create_engine

    await create_database_if_missing(url)
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            row = (
                await connection.execute(
                    text("SELECT accounts, seed_seconds, seed_output FROM bench_seed")
                )
            ).first()
    except DBAPIError:
        row = None  # no seed finished here yet
    finally:
        await engine.dispose()
    if row is None or row.accounts != accounts:
        return None
    return {
        "accounts": accounts,
        "seed_seconds": row.seed_seconds,
        "seed_output": row.seed_output,
        "reused": True,
    }


# What earlier runs wrote into a kept seed: every run starts from the seed as it was made.
# Signing keys go too: they were encrypted under an earlier run's key-encryption key.
FORGET_EARLIER_RUNS = [
    # The audit table refuses deletes (append-only triggers); a benchmark database is scratch,
    # so this session turns its triggers off to forget the runs' events (superuser only).
    "SET session_replication_role = replica",
    "DELETE FROM login_transactions",
    "DELETE FROM refresh_tokens",
    "DELETE FROM browser_sessions",
    "DELETE FROM used_jtis",
    "DELETE FROM signing_keys",
    "DELETE FROM audit_events WHERE occurred_at > (SELECT seeded_at FROM bench_seed)",
    "DELETE FROM federated_links WHERE linked_at > (SELECT seeded_at FROM bench_seed)",
    "DELETE FROM review_cases WHERE created_at > (SELECT seeded_at FROM bench_seed)",
    "VACUUM ANALYZE",
]


async def forget_earlier_runs(url: str) -> None:
    from sqlalchemy import text

    from vssid_broker.db import create_engine

    engine = create_engine(url)
    async with engine.connect() as connection:
        connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
        for sql in FORGET_EARLIER_RUNS:
            await connection.execute(text(sql))
    await engine.dispose()


async def record_seed(url: str, seed: dict[str, Any]) -> None:
    """Written last, so an interrupted seed is never taken for a finished one."""
    from sqlalchemy import text

    from vssid_broker.db import create_engine

    engine = create_engine(url)
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "CREATE TABLE bench_seed (accounts bigint, seed_seconds float, seed_output text,"
                " seeded_at timestamptz DEFAULT now())"
            )
        )
        await connection.execute(
            text(
                "INSERT INTO bench_seed (accounts, seed_seconds, seed_output)"
                " VALUES (:accounts, :seed_seconds, :seed_output)"
            ),
            seed,
        )
    await engine.dispose()


def prepare_database(
    opts: argparse.Namespace, env: dict[str, str], accounts: int
) -> dict[str, Any]:
    url = env["VSSID_DATABASE_URL"]
    if opts.keep_data and url.startswith("postgresql"):
        kept = asyncio.run(recorded_seed(url, accounts))
        if kept is not None:
            vssid([["migrate"]], env)  # a seed made before a new migration still gets it
            asyncio.run(forget_earlier_runs(url))
            vssid([["keys", "ensure"]], env)
            print(f"  reusing the seed in {url.rsplit('/', 1)[-1]}", flush=True)
            return kept
    if not opts.keep_schema and url.startswith("sqlite"):
        for suffix in ("", "-wal", "-shm"):
            Path(url.split("///", 1)[1] + suffix).unlink(missing_ok=True)
    elif not opts.keep_schema:
        asyncio.run(reset_database(url))
    bulk_seed = ["seed", "--accounts", str(accounts), "--vneid-citizens", str(opts.citizens)]
    _, _, bulk, _ = vssid(
        [["migrate"], ["seed"], [*bulk_seed, "--no-progress"], ["keys", "ensure"]], env
    )
    out = bulk["output"]
    print(f"  {out.splitlines()[-1]}", flush=True)
    seed = {"accounts": accounts, "seed_seconds": round(bulk["seconds"], 1), "seed_output": out}
    if opts.keep_data and url.startswith("postgresql"):
        asyncio.run(record_seed(url, seed))
    return seed


def npm_ci() -> None:
    peer = BENCH / "peer"
    if (peer / "node_modules" / "oidc-provider").exists() and not OPTS.npm_ci:
        return
    subprocess.run(  # noqa: S603
        [shutil.which("npm") or "npm", "ci", "--no-audit", "--no-fund"],
        cwd=peer,
        check=True,
        capture_output=True,
    )


# --- scenarios ----------------------------------------------------------------------------------
AUDIT_APPEND_WRITERS = {"audit_append": 1, "audit_append_concurrent": None}
"""The chain's append with one writer, and with --concurrency writers contending for its lock."""
SCENARIO_NAMES = {
    "browser_login", "mobile_login", "dialect_login", "step_up_login", "refresh", "me",
    "healthz", "jwks_verify", "audit_append", "peer_refresh", "peer_authcode", "import",
}  # fmt: skip
"""What --scenarios may name (`audit_append` runs both writer counts)."""


def driver(scenario: str, urls: dict[str, str], opts: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(driver_output(scenario, urls, opts).splitlines()[-1])
    return result


def tokens_for_wrk(kind: str, urls: dict[str, str], opts: argparse.Namespace) -> list[str]:
    """Tokens made by real logins (`access_token`, `refresh_tokens`, `peer_refresh_tokens`)."""
    return driver_output(kind, urls, opts).split()


def driver_output(scenario: str, urls: dict[str, str], opts: argparse.Namespace) -> str:
    """Run `bench/driver.py` in its own process; its standard output."""
    command = [
        sys.executable,
        str(BENCH / "driver.py"),
        scenario,
        "--broker", urls["broker"],
        "--sim", urls["sim"],
        "--peer", urls.get("peer", ""),
        "--duration", str(opts.duration),
        "--concurrency", str(opts.concurrency),
        "--citizens", str(opts.citizens),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise SystemExit(f"driver {scenario} failed:\n{done.stderr[-3000:]}")
    return done.stdout.strip()


def wrk(
    name: str,
    url: str,
    opts: argparse.Namespace,
    headers: list[str],
    script: str = "wrk_phones.lua",
    script_args: list[str] | None = None,
) -> dict[str, Any]:
    threads = 2
    command = [
        shutil.which("wrk") or "wrk",
        f"-t{threads}", f"-c{opts.concurrency}", f"-d{max(1, round(opts.duration))}s",
        # wrk's default 2 s timeout reconnects and resends: a refresh answered after it would
        # be lost with its new token. Latency is reported, so nothing is hidden by waiting.
        "--timeout", "30s",
        "-s", str(BENCH / script),
    ]  # fmt: skip
    for header in headers:
        command += ["-H", header]
    command.append(url)
    if script_args is not None:
        command += ["--", *script_args, str(threads)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise SystemExit(f"wrk {name} failed: {done.stderr}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    elapsed = report["duration_us"] / 1e6
    errors = report["non_2xx"] + report["socket_errors"]
    return {
        "scenario": name,
        "ops": report["requests"] - report["non_2xx"],
        "errors": errors,
        "first_error": f"{errors} non-2xx or socket errors" if errors else "",
        "elapsed_s": round(elapsed, 3),
        "throughput": round((report["requests"] - report["non_2xx"]) / elapsed, 1),
        "latency_ms": {k: round(report[k], 2) for k in ("p50", "p95", "p99", "mean")},
        "concurrency": opts.concurrency,
        "driver": "wrk",
    }


def wrk_refresh(
    name: str, token_url: str, tokens: list[str], opts: argparse.Namespace, headers: list[str]
) -> dict[str, Any]:
    """Refresh rotation driven by wrk (`bench/wrk_refresh.lua`): one family per connection."""
    path = scratch_folder() / f"{name}-tokens.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(tokens) + "\n")
    try:
        return wrk(name, token_url, opts, headers, "wrk_refresh.lua", [str(path)])
    finally:
        path.unlink()


def refresh_scenario(
    name: str,
    servers: dict[str, Server],
    urls: dict[str, str],
    opts: argparse.Namespace,
    label: str = "",
) -> dict[str, Any]:
    """The broker's refresh grant (`refresh`) or the peer's (`peer_refresh`), both under wrk."""
    if name == "peer_refresh":
        tokens = tokens_for_wrk("peer_refresh_tokens", urls, opts)
        basic = base64.b64encode(b"bench:bench-secret").decode()
        return measured(
            name,
            servers,
            lambda: wrk_refresh(
                name, f"{urls['peer']}/token", tokens, opts, [f"Authorization: Basic {basic}"]
            ),
            opts,
        )
    tokens = tokens_for_wrk("refresh_tokens", urls, opts)
    return measured(
        name,
        servers,
        lambda: wrk_refresh(name, f"{urls['broker']}/api/v1/auth/token", tokens, opts, []),
        opts,
        label,
    )


IN_PROCESS = {"jwks_verify", *AUDIT_APPEND_WRITERS}
"""Scenarios whose code runs in the driver's own process: their CPU per operation is its own."""


def measured(
    name: str, servers: dict[str, Server], run: Any, opts: argparse.Namespace, label: str = ""
) -> dict[str, Any]:
    """Run one scenario, adding the servers' CPU per operation to the driver's figures, the
    requests the rate limits refused and, where PostgreSQL keeps them, the statements it ran.
    `label` tells apart the files of one scenario measured more than once (scale-out)."""
    print(f"  {name} ...", end="", flush=True)
    broker = servers.get("broker")
    refused_before = rate_limit_refusals(broker.origin) if broker else {}
    reset_statements(opts)
    profiler = start_profile(name, label, servers, opts)
    sessions_before = db_sessions(opts)
    before = {key: server.cpu() for key, server in servers.items()}
    result: dict[str, Any] = run()
    if sessions_before is not None:
        # New PostgreSQL connections per operation: pool churn shows here.
        opened = (db_sessions(opts) or 0) - sessions_before
        result["db_connections_opened"] = opened
        result["db_connections_per_op"] = round(opened / max(1, result["ops"]), 3)
    if profiler is not None:
        result["profile"] = finish_profile(profiler, opts)
    cpu = {key: round(server.cpu() - before[key], 2) for key, server in servers.items()}
    ops = max(1, result["ops"])
    statements = save_statements(name + label, result["ops"], opts)
    if statements is not None:
        result["pg_stat_statements"] = statements
    if broker:
        after = rate_limit_refusals(broker.origin)
        refused = {k: n - refused_before.get(k, 0) for k, n in after.items()}
        result["rate_limited"] = {k: n for k, n in refused.items() if n}
    result["server_cpu_s"] = cpu
    target = "peer" if name.startswith("peer_") else "broker"
    if target in cpu and name not in IN_PROCESS:
        per_op = cpu[target] / ops
        result["cpu_ms_per_op"] = round(per_op * 1000, 3)
        result["ops_per_cpu_second"] = round(1 / per_op, 1) if per_op else None
    if name in IN_PROCESS and result.get("driver_cpu_s"):
        per_op = result["driver_cpu_s"] / ops
        result["cpu_ms_per_op"] = round(per_op * 1000, 4)
        result["ops_per_cpu_second"] = round(1 / per_op, 1)
    if "sim" in cpu and name.endswith("_login"):
        result["sim_cpu_ms_per_op"] = round(cpu["sim"] / ops * 1000, 3)
    print(
        f" {result['throughput']}/s p99 {result['latency_ms']['p99']} ms, "
        f"{result.get('ops_per_cpu_second')} per CPU-s, errors {result['errors']}"
        + "".join(f", {n} refused by {k}" for k, n in result.get("rate_limited", {}).items())
        + (f", {statements['statements_per_op']} statements/op" if statements is not None else ""),
        flush=True,
    )
    if result["errors"] and not result["ops"]:
        raise SystemExit(f"{name}: every operation failed: {result['first_error']}")
    return result


def psql(opts: argparse.Namespace, sql: str) -> list[list[str]] | None:
    """Rows of one query on the scale's database through psql (fields split on \\x1f); None
    when the database is not PostgreSQL, psql is missing or the query fails."""
    if not opts.scale_url.startswith("postgresql"):
        return None
    psql = shutil.which("psql")
    if psql is None:
        return None
    dsn = opts.scale_url.replace("postgresql+asyncpg://", "postgresql://")
    done = subprocess.run(  # noqa: S603
        [psql, dsn, "-AtX", "-F", "\x1f", "-c", sql], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        return None
    return [line.split("\x1f") for line in done.stdout.splitlines() if line]


def db_sessions(opts: argparse.Namespace) -> int | None:
    """Sessions ever opened on the database (pg_stat_database.sessions, PostgreSQL 14+)."""
    rows = psql(opts, "SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
    return int(rows[0][0]) if rows else None


# --- pg_stat_statements --------------------------------------------------------------------------
ENABLE_STATEMENT_STATISTICS = (
    "pg_stat_statements is not loaded; to have statements per operation, add it to"
    " shared_preload_libraries and restart PostgreSQL once: psql -h 127.0.0.1 -U postgres -c"
    " \"ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'\" (keep any libraries"
    " already listed there), then pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql)"
    " main restart"
)
# This database's statements, less the harness's own (these two, db_sessions).
SCENARIO_STATEMENTS = (
    " FROM pg_stat_statements"
    " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
    " AND query NOT LIKE '%pg_stat_%'"
)
STATEMENT_TOTALS = (
    "SELECT coalesce(sum(calls), 0), coalesce(sum(total_exec_time), 0),"
    " coalesce(sum(shared_blks_hit), 0), coalesce(sum(shared_blks_read), 0)" + SCENARIO_STATEMENTS
)
TOP_STATEMENTS = (
    "SELECT calls, total_exec_time, mean_exec_time, rows, shared_blks_hit, shared_blks_read,"
    " regexp_replace(query, '\\s+', ' ', 'g')"
    + SCENARIO_STATEMENTS
    + " ORDER BY total_exec_time DESC LIMIT 25"
)


def statement_statistics(opts: argparse.Namespace) -> str:
    """`on` when pg_stat_statements can be read in the scale's database (the extension is made
    there if the library is loaded), else why not."""
    loaded = psql(opts, "SELECT current_setting('shared_preload_libraries')")
    if loaded is None:
        return "off: not PostgreSQL, or no psql"
    if not loaded or "pg_stat_statements" not in loaded[0][0]:
        print(f"  {ENABLE_STATEMENT_STATISTICS}", flush=True)
        return "off: " + ENABLE_STATEMENT_STATISTICS
    if psql(opts, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements") is None:
        return "off: CREATE EXTENSION pg_stat_statements failed"
    return "on"


def reset_statements(opts: argparse.Namespace) -> None:
    """Forget this database's statements only: others on the server keep theirs."""
    if opts.statement_statistics == "on":
        psql(
            opts,
            "SELECT pg_stat_statements_reset(0, (SELECT oid FROM pg_database"
            " WHERE datname = current_database()), 0)",
        )


def save_statements(name: str, ops: int, opts: argparse.Namespace) -> dict[str, Any] | None:
    """The scenario's statements by total time to `pgss-<scenario>.txt`; per-operation sums."""
    if opts.statement_statistics != "on":
        return None
    totals, top = psql(opts, STATEMENT_TOTALS), psql(opts, TOP_STATEMENTS)
    if not totals or top is None:
        return None
    calls, exec_ms, hit, read = (float(value) for value in totals[0])
    path = opts.results.parent / f"pgss-{name}.txt"
    per_op = max(1, ops)
    lines = [
        f"pg_stat_statements, scenario {name}: {ops} operations, {int(calls)} statements"
        f" ({calls / per_op:.2f} per operation), {exec_ms:.0f} ms executing"
        f" ({exec_ms / per_op:.3f} ms per operation); top statements by total time.",
        "",
        f"{'calls':>9} {'per op':>7} {'total ms':>10} {'mean ms':>8} {'rows':>9}"
        f" {'blks hit':>10} {'blks read':>9}  query",
    ]
    for row_calls, total, mean, rows, row_hit, row_read, query in top:
        lines.append(
            f"{row_calls:>9} {int(row_calls) / per_op:7.2f} {float(total):10.1f}"
            f" {float(mean):8.3f} {rows:>9} {row_hit:>10} {row_read:>9}  {query[:400]}"
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {
        "file": shown(path),
        "statements": int(calls),
        "statements_per_op": round(calls / per_op, 2),
        "exec_ms_per_op": round(exec_ms / per_op, 3),
        "shared_blks_hit_per_op": round(hit / per_op, 1),
        "shared_blks_read_per_op": round(read / per_op, 2),
    }


# --- profiles ------------------------------------------------------------------------------------
PROFILE_RATE = 250  # samples per second


@dataclass
class Profile:
    """py-spy recording one broker worker for the whole scenario."""

    name: str
    pid: int
    process: subprocess.Popen[bytes]
    messages: IO[bytes]  # py-spy's standard error, read if it fails
    raw: Path
    native: bool
    cpu_before: tuple[float, float]


def py_spy() -> str:
    found = Path(sys.executable).parent / "py-spy"
    if not found.exists():
        raise SystemExit(f"--profile needs py-spy: {INSTALL_BENCH_EXTRA}")
    return str(found)


def start_profile(
    name: str, label: str, servers: dict[str, Server], opts: argparse.Namespace
) -> Profile | None:
    """As near CPU only as py-spy goes: its default mode pauses the worker for each sample, so
    every stack is one the worker really was in, and without `--idle` the threads the kernel
    lists as sleeping (the event loop in epoll, a thread at a lock) are dropped; a thread
    runnable but waiting for a core still counts, and the summary says by how much. `--native`
    (on by default) names the C frames (asyncpg's protocol, uvloop, cryptography) instead of
    charging them to the Python caller."""
    if name not in opts.profile or "broker" not in servers:
        return None
    # The worker that has served most so far: uvicorn's supervisor also starts a process of
    # multiprocessing's own, which serves nothing.
    pid = max(servers["broker"].worker_pids(), key=lambda worker: cpu_seconds([worker]))
    raw = opts.results.parent / f"profile-{name}{label}.collapsed"
    raw.parent.mkdir(parents=True, exist_ok=True)
    command = [
        py_spy(), "record",
        "--pid", str(pid),
        "--rate", str(PROFILE_RATE),
        "--duration", str(max(1, round(opts.duration))),
        "--format", "raw",
        "-o", str(raw),
    ]  # fmt: skip
    if opts.profile_native:
        command.append("--native")
    messages = tempfile.TemporaryFile()  # noqa: SIM115 - closed by finish_profile
    process = subprocess.Popen(  # noqa: S603
        command, stdout=subprocess.DEVNULL, stderr=messages
    )
    return Profile(name + label, pid, process, messages, raw, opts.profile_native, cpu_times([pid]))


def frame_label(frame: str) -> str:
    """`function (path/file.py:12)` → `function file.py`; a native frame keeps its library."""
    function, _, where = frame.partition(" (")
    return f"{function} {where.rsplit('/', 1)[-1].split(':')[0].rstrip(')')}".strip()


def finish_profile(profile: Profile, opts: argparse.Namespace) -> dict[str, Any]:
    """Summarise py-spy's collapsed stacks: where the CPU went, inclusive and exclusive."""
    profile.process.wait(timeout=120)
    user, system = (
        after - before
        for after, before in zip(cpu_times([profile.pid]), profile.cpu_before, strict=True)
    )
    with profile.messages:
        if profile.process.returncode != 0 or not profile.raw.exists():
            profile.messages.seek(0)
            raise SystemExit(
                f"py-spy failed on {profile.name}: {profile.messages.read()[-1000:]!r}"
            )
    inclusive: dict[str, int] = {}
    exclusive: dict[str, int] = {}
    total = in_system_calls = 0
    for line in profile.raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        samples = int(count)
        total += samples
        frames = [frame_label(frame) for frame in stack.split(";")]
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + samples
        exclusive[frames[-1]] = exclusive.get(frames[-1], 0) + samples
        if frames[-1].endswith(" libc.so.6"):
            in_system_calls += samples
    duration = max(1, round(opts.duration))
    flame = profile.raw.with_suffix(".svg")
    flamegraph.write_svg(profile.raw, flame, f"broker CPU, {profile.name}")
    summary = {
        "file": shown(opts.results.parent / f"profile-{profile.name}.txt"),
        "collapsed": shown(profile.raw),
        "flamegraph": shown(flame),
        "mode": "py-spy record, blocking (the worker paused for each sample), idle dropped"
        + (", native frames" if profile.native else ""),
        "rate_hz": PROFILE_RATE,
        "duration_s": duration,
        "samples": total,
        "sampled_s": round(total / PROFILE_RATE, 2),
        "worker_cpu_s": round(user + system, 2),
        "worker_user_s": round(user, 2),
        "worker_system_s": round(system, 2),
        "load_average_at_end": round(os.getloadavg()[0], 2),
    }
    lines = [
        f"Scenario {profile.name}: one broker worker (pid {profile.pid}), {summary['mode']},",
        f"{PROFILE_RATE} samples/s for {duration} s: {total} samples = {summary['sampled_s']} s"
        f" taken as running; /proc says the worker used {summary['worker_cpu_s']} s of CPU",
        f"(user {summary['worker_user_s']}, system {summary['worker_system_s']}) over the same"
        f" time, load average {summary['load_average_at_end']} at the end.",
        "py-spy takes a thread as running when the kernel lists it runnable, which includes"
        " waiting for a core: with more runnable work than cores, samples exceed the CPU used"
        f" ({total / PROFILE_RATE / max(0.01, user + system):.1f}× here),",
        *(
            [
                "and the surplus lands where a thread wakes or is preempted: libc system calls"
                " such as epoll_pwait (the loop woken) and write (a loopback write wakes its"
                f" reader), {100 * in_system_calls / max(1, total):.1f}% of samples here.",
            ]
            if profile.native
            else [
                "and the surplus lands where a thread wakes or is preempted; without native frames"
                " it is charged to the Python frame that called into C (Runner.run for uvloop,"
                " asyncpg's __do_execute).",
            ]
        ),
        "Read the Python and extension frames as CPU. Pausing the worker for each sample adds"
        " to the scenario's own CPU figures.",
        f"Collapsed stacks: {profile.raw.name} (flamegraph.pl, inferno or speedscope read it);"
        f" flame graph: {flame.name}.",
        "",
        "inclusive:",
    ]
    for frame, samples in sorted(inclusive.items(), key=lambda item: -item[1])[:45]:
        lines.append(f"{100 * samples / max(1, total):5.1f}%  {frame}")
    lines += ["", "exclusive (self):"]
    for frame, samples in sorted(exclusive.items(), key=lambda item: -item[1])[:30]:
        lines.append(f"{100 * samples / max(1, total):5.1f}%  {frame}")
    out = opts.results.parent / f"profile-{profile.name}.txt"
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return summary


def shown(path: Path) -> str:
    """A path as the results name it: from the repository's root when it is inside."""
    return str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


# --- EXPLAIN --------------------------------------------------------------------------------------
LOGIN_PATH_QUERIES: list[tuple[str, str]] = [
    (
        "consume login transaction (conditional UPDATE ... RETURNING)",
        "UPDATE login_transactions SET consumed_at = now() WHERE state_hash = :state_hash"
        " AND consumed_at IS NULL AND channel = 'app' RETURNING *",
    ),
    (
        "find the link of a VNeID identity",
        "SELECT * FROM federated_links WHERE provider = :provider AND subject = :subject",
    ),
    ("load the linked account", "SELECT * FROM accounts WHERE id = :account_id"),
    (
        "first login: the account carrying the citizen ID (by its blind index)",
        "SELECT * FROM accounts WHERE citizen_id_index = :citizen_id_index",
    ),
    (
        "first login: is that account linked already",
        "SELECT id FROM federated_links WHERE account_id = :account_id",
    ),
    (
        "record the login time on the link",
        "UPDATE federated_links SET last_login_at = now() WHERE id = :link_id",
    ),
    (
        "login: installations beyond the bound (RefreshTokens._families_beyond)",
        "SELECT family_id FROM refresh_tokens WHERE family_id IN (SELECT family_id FROM"
        " refresh_tokens WHERE account_id = :account_id AND rotated_at IS NULL"
        " AND revoked_at IS NULL AND expires_at > now()) GROUP BY family_id"
        " ORDER BY min(issued_at) DESC, family_id OFFSET 5",
    ),
    (
        "refresh rotation: spend and issue in one statement (RotationStatements.spend_and_issue)",
        "WITH spent AS (UPDATE refresh_tokens SET rotated_at = now()"
        " WHERE token_hash = :token_hash AND rotated_at IS NULL AND revoked_at IS NULL"
        " AND expires_at > now() AND issued_at > now() - interval '14 days'"
        " AND dpop_jkt IS NULL AND account_id IN (SELECT id FROM accounts WHERE status = 'active')"
        " RETURNING family_id, account_id, acr, expires_at, user_agent, dpop_jkt)"
        " INSERT INTO refresh_tokens (token_hash, issued_at, family_id, account_id, acr,"
        " expires_at, user_agent, dpop_jkt) SELECT md5(random()::text) || md5(random()::text),"
        " now(), family_id, account_id, acr, expires_at, user_agent, dpop_jkt FROM spent"
        " RETURNING family_id",
    ),
    (
        "every API call: the token's session is live, with its account (LIVE_SESSION_ACCOUNT)",
        "SELECT * FROM accounts WHERE id = :token_account_id AND status = 'active' AND EXISTS"
        " (SELECT id FROM refresh_tokens WHERE family_id = :family_id AND rotated_at IS NULL"
        " AND account_id = accounts.id AND revoked_at IS NULL)",
    ),
    (
        "browser session of the account page",
        "SELECT * FROM browser_sessions WHERE session_hash = :session_hash"
        " AND revoked_at IS NULL AND expires_at > now()",
    ),
    (
        "account page: insurance periods",
        "SELECT * FROM insurance_periods WHERE account_id IN (:account_id)",
    ),
    (
        "account page: health-insurance card",
        "SELECT * FROM health_insurance_cards WHERE account_id IN (:account_id)",
    ),
]


async def explain_login_path(url: str, path: Path) -> dict[str, Any]:
    from sqlalchemy import text

    from vssid_broker.db import create_engine

    engine = create_engine(url)
    out: list[str] = []
    seq_scans: list[str] = []
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                text(
                    "SELECT l.id, l.provider, l.subject, l.account_id"
                    " FROM federated_links l JOIN accounts a ON a.id = l.account_id"
                    " ORDER BY l.id DESC LIMIT 1"
                )
            )
        ).one()
        unlinked = await connection.scalar(
            text("SELECT citizen_id_index FROM accounts ORDER BY id DESC LIMIT 1")
        )
        params = {
            "state_hash": await connection.scalar(
                text("SELECT state_hash FROM login_transactions LIMIT 1")
            )
            or "0" * 64,
            "provider": row.provider,
            "subject": row.subject,
            "account_id": row.account_id,
            "link_id": row.id,
            "citizen_id_index": unlinked,
            "token_hash": await connection.scalar(
                text("SELECT token_hash FROM refresh_tokens ORDER BY id DESC LIMIT 1")
            )
            or "0" * 64,
            "family_id": await connection.scalar(
                text("SELECT family_id FROM refresh_tokens ORDER BY id DESC LIMIT 1")
            )
            or "none",
            "token_account_id": await connection.scalar(
                text("SELECT account_id FROM refresh_tokens ORDER BY id DESC LIMIT 1")
            )
            or 0,
            "session_hash": await connection.scalar(
                text("SELECT session_hash FROM browser_sessions LIMIT 1")
            )
            or "0" * 64,
        }
        await connection.rollback()  # end the autobegun read; each plan gets its own transaction
        for title, sql in LOGIN_PATH_QUERIES:
            transaction = await connection.begin()
            plan = await connection.execute(text(f"EXPLAIN (ANALYZE, BUFFERS) {sql}"), params)
            lines = [line for (line,) in plan]
            await transaction.rollback()  # EXPLAIN ANALYZE runs the UPDATEs; keep nothing
            out.append(f"-- {title}\n{sql}\n" + "\n".join(lines) + "\n")
            if any("Seq Scan" in line for line in lines):
                seq_scans.append(title)
    await engine.dispose()
    await asyncio.to_thread(path.write_text, "\n".join(out), encoding="utf-8")
    return {"file": shown(path), "queries": len(out), "seq_scans": seq_scans}


# --- the run ------------------------------------------------------------------------------------
# The load generators on loopback stand where the ingress stands in a deployment
# (deploy/kubernetes/base/broker-config.yaml trusts the cluster's network the same way): each
# simulated phone's own address comes in X-Forwarded-For (bench/driver.py, bench/wrk_phones.lua).
LOAD_GENERATOR_AS_PROXY = '["127.0.0.1/32"]'


def broker_env(
    opts: argparse.Namespace, base: dict[str, str], port: int, sim: str
) -> dict[str, str]:
    """The broker's settings: its defaults, rate limits included, but for where things are."""
    return base | {
        "VSSID_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "VSSID_VNEID_ISSUER": sim,
        "VSSID_LOG_LEVEL": opts.log_level,
        "VSSID_TRUSTED_PROXIES": LOAD_GENERATOR_AS_PROXY,
        "VSSID_RATE_LIMIT_STORAGE": opts.rate_limit_storage,
        "VSSID_RATE_LIMIT_KEY_PREFIX": opts.rate_limit_key_prefix,
    }


def rate_limit_settings(opts: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    """What the results say of the rate limits: the shipped values (unless the broker's
    environment sets one), where the counts were kept."""
    from vssid_broker.config import Settings

    names = [
        name
        for name in Settings.model_fields
        if name.startswith("rate_limit_")
        and name not in ("rate_limit_storage", "rate_limit_key_prefix")
    ]
    broker = broker_env(opts, env, 0, "")
    return {
        "as_shipped": not any(f"VSSID_{name.upper()}" in broker for name in names),
        "limits": {
            name.removeprefix("rate_limit_"): Settings.model_fields[name].default for name in names
        },
        "storage": opts.rate_limit_storage,
        "trusted_proxies": json.loads(LOAD_GENERATOR_AS_PROXY),
        "client_addresses": "one per simulated client (a login's cookie jar; a wrk request),"
        " from 10.0.0.0/8, in X-Forwarded-For",
    }


def empty_rate_limit_storage(opts: argparse.Namespace) -> None:
    """Every broker start begins with no counts, as after a deployment's first start: the keys
    under the broker's prefix are deleted, and nothing else in that Redis database."""
    if not opts.rate_limit_storage.startswith("redis"):
        return
    import redis

    try:
        client = redis.Redis.from_url(opts.rate_limit_storage, socket_timeout=5)
        with client:
            keys = list(client.scan_iter(match=f"{opts.rate_limit_key_prefix}:*", count=1000))
            for start in range(0, len(keys), 500):
                client.unlink(*keys[start : start + 500])
    except redis.RedisError as error:
        raise SystemExit(
            f"Redis at {opts.rate_limit_storage} ({error}); start it"
            " (redis-server --daemonize yes --bind 127.0.0.1 --save '')"
            " or pass --rate-limit-storage"
        ) from None


def rate_limit_refusals(broker_url: str) -> dict[str, int]:
    """The broker's count of 429s by limit (`vssid_rate_limit_hits_total`, every process)."""
    import httpx

    counts: dict[str, int] = {}
    for line in httpx.get(f"{broker_url}/metrics", timeout=10).text.splitlines():
        if line.startswith("vssid_rate_limit_hits_total{"):
            labels, _, value = line.rpartition(" ")
            limit = labels.split('limit="', 1)[1].split('"', 1)[0]
            counts[limit] = counts.get(limit, 0) + int(float(value))
    return counts


def launch_broker(
    opts: argparse.Namespace,
    env: dict[str, str],
    sim: str,
    workers: int,
    name: str = "broker",
    port: int | None = None,
) -> tuple[Server, str]:
    """Start the broker; the caller waits for it to be ready (`Server.wait_ready`)."""
    port = port or opts.broker_port
    url = f"http://127.0.0.1:{port}"
    server = Server(
        name,
        [
            str(Path(sys.executable).parent / "vssid-broker"),
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        broker_env(opts, env, port, sim),
        f"{url}/readyz",
    )
    return server, url


def start_broker(
    opts: argparse.Namespace, env: dict[str, str], sim: str, workers: int, name: str = "broker"
) -> tuple[Server, str]:
    empty_rate_limit_storage(opts)
    server, url = launch_broker(opts, env, sim, workers, name)
    server.wait_ready()
    return server, url


def sim_registrations(broker_port: int) -> list[dict[str, Any]]:
    """The broker's two registrations at the simulator, as the broker's defaults expect: web
    for the browser, native (public) for the app, whose custom-scheme redirect a web client
    may not hold."""
    return [
        {
            "client_id": "vssid-broker",
            "client_secret": "vssid-broker-demo-secret",
            "redirect_uris": [f"http://127.0.0.1:{broker_port}/auth/vneid/callback"],
            "token_endpoint_auth_methods": ["client_secret_basic", "client_secret_post"],
        },
        {
            "client_id": "vssid-broker-app",
            "application_type": "native",
            "redirect_uris": ["vn.gov.baohiemxahoi.vssid:/oauth/vneid"],
            "token_endpoint_auth_methods": ["none"],
        },
    ]


def launch_sim(
    opts: argparse.Namespace,
    env: dict[str, str],
    broker_port: int,
    name: str = "vneid-sim",
    dialect: dict[str, str] | None = None,
) -> tuple[Server, str]:
    """Start the simulated VNeID with `generated_citizens` for the broker at `broker_port`
    (`dialect`: its settings for VNeID's encrypted dialect); the caller waits for it."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = Server(
        name,
        [str(Path(sys.executable).parent / "vssid-broker"), "vneid-sim", "--port", str(port)],
        env
        | {
            "VNEID_SIM_ISSUER": url,
            "VNEID_SIM_GENERATED_CITIZENS": str(opts.citizens),
            "VNEID_SIM_CLIENTS": json.dumps(sim_registrations(broker_port)),
        }
        | (dialect or {}),
        f"{url}/.well-known/openid-configuration",  # served in both profiles
    )
    return server, url


# --- the VNeID dialect profile ------------------------------------------------------------------
def launch_dialect_pair(
    opts: argparse.Namespace, env: dict[str, str], stack: ExitStack
) -> tuple[dict[str, Server], dict[str, str]]:
    """A second simulated VNeID and a second broker, both speaking VNeID's encrypted dialect
    (docs/provider-profiles.md) as `vssid-broker demo --vneid-protocol vneid-encrypted` runs
    them: AES-ECB answers whose keys are wrapped with the broker's RSA key (made here, kept in
    the run's scratch folder). Same database, same rate-limit storage, same worker count."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    folder = scratch_folder()
    folder.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private, public = folder / "dialect-rp-key.pem", folder / "dialect-rp-key.pub.pem"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    private.chmod(0o600)
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    broker_port = free_port()
    sim, sim_url = launch_sim(
        opts,
        env,
        broker_port,
        "dialect-vneid-sim",
        {"VNEID_SIM_PROTOCOL": "vneid-encrypted", "VNEID_SIM_RP_PUBLIC_KEY_FILE": str(public)},
    )
    stack.callback(sim.stop)
    dialect = {
        "VSSID_VNEID_PROTOCOL": "vneid-encrypted",
        "VSSID_VNEID_AUTHORIZATION_ENDPOINT": f"{sim_url}/authorize",
        "VSSID_VNEID_TOKEN_ENDPOINT": f"{sim_url}/token",
        "VSSID_VNEID_USERINFO_ENDPOINT": f"{sim_url}/userinfo",
        "VSSID_VNEID_END_SESSION_ENDPOINT": f"{sim_url}/logout",
        "VSSID_VNEID_DECRYPTION_KEY_FILES": str(private),
    }
    broker, broker_url = launch_broker(
        opts, env | dialect, sim_url, opts.workers[-1], "dialect-broker", broker_port
    )
    stack.callback(broker.stop)
    return {"sim": sim, "broker": broker}, {"sim": sim_url, "broker": broker_url}


def identity_pairs(opts: argparse.Namespace, standard: str, dialect: str) -> list[dict[str, str]]:
    """Each simulated citizen's VNeID identity in both profiles: the standard one is the ID
    token's issuer and `sub`, the dialect's the configured issuer and the citizen ID (its
    default subject: its userinfo has no `sub`)."""
    from vssid_broker.vneid_sim.citizens import generate_citizens

    return [
        {
            "standard_provider": standard,
            "standard_subject": str(citizen.sub),
            "dialect_provider": dialect,
            "dialect_subject": citizen.citizen_id,
        }
        for citizen in generate_citizens(opts.citizens)
    ]


async def newest_link(url: str) -> int:
    from sqlalchemy import text

    from vssid_broker.db import create_engine

    engine = create_engine(url)
    async with engine.connect() as connection:
        newest = await connection.scalar(text("SELECT coalesce(max(id), 0) FROM federated_links"))
    await engine.dispose()
    return int(newest)


async def relabel_links(
    url: str, pairs: list[dict[str, str]], to: str, forget_after: int | None = None
) -> None:
    """The links the run made, relabelled to the identities of profile `to` (`dialect` or
    `standard`); with `forget_after`, those made after that link id are deleted first.

    An account holds one VNeID identity, and the two profiles name a person differently: a
    person the standard profile linked would meet "linked to another identity" in the dialect.
    Relabelled, every link stands for the same person in the profile about to log in, so the
    dialect's logins start from the links the standard mobile login started from."""
    from sqlalchemy import text

    from vssid_broker.db import create_engine

    engine = create_engine(url)
    async with engine.begin() as connection:
        if forget_after is not None:
            await connection.execute(
                text("DELETE FROM federated_links WHERE id > :newest"), {"newest": forget_after}
            )
        await connection.execute(text(RELABEL_LINKS[to]), pairs)
    await engine.dispose()


RELABEL_LINKS = {
    "dialect": "UPDATE federated_links SET provider = :dialect_provider,"
    " subject = :dialect_subject"
    " WHERE provider = :standard_provider AND subject = :standard_subject",
    "standard": "UPDATE federated_links SET provider = :standard_provider,"
    " subject = :standard_subject"
    " WHERE provider = :dialect_provider AND subject = :dialect_subject",
}


def run_scale(
    opts: argparse.Namespace, env: dict[str, str], accounts: int, full: bool
) -> dict[str, Any]:
    print(f"scale: {accounts:,} accounts", flush=True)
    opts.scale_url = scale_database_url(opts, accounts)
    env = env | {"VSSID_DATABASE_URL": opts.scale_url}
    section: dict[str, Any] = {"seed": prepare_database(opts, env, accounts), "scenarios": {}}
    if opts.seed_only:
        return section
    opts.statement_statistics = section["pg_stat_statements"] = statement_statistics(opts)

    def wanted(name: str) -> bool:
        return not opts.scenarios or name in opts.scenarios

    with ExitStack() as stack:
        # Every server starts at once and is waited for after: a start is mostly imports.
        empty_rate_limit_storage(opts)
        sim, sim_url = launch_sim(opts, env, opts.broker_port)
        stack.callback(sim.stop)
        workers = opts.workers[-1]
        broker, broker_url = launch_broker(opts, env, sim_url, workers)
        stack.callback(broker.stop)
        servers: dict[str, Server] = {"sim": sim, "broker": broker}
        urls = {"sim": sim_url, "broker": broker_url}
        dialect_servers: dict[str, Server] = {}
        if full and wanted("dialect_login"):
            dialect_servers, dialect_urls = launch_dialect_pair(opts, env, stack)
        wants_peer = not opts.scenarios or bool({"peer_refresh", "peer_authcode"} & opts.scenarios)
        if full and not opts.no_peer and wants_peer:
            npm_ci()
            peer_port = free_port()
            peer = Server(
                "peer",
                [shutil.which("node") or "node", str(BENCH / "peer" / "server.js"), str(peer_port)],
                env,
                f"http://127.0.0.1:{peer_port}/.well-known/openid-configuration",
            )
            stack.callback(peer.stop)
            servers["peer"], urls["peer"] = peer, f"http://127.0.0.1:{peer_port}"
        for server in [*servers.values(), *dialect_servers.values()]:
            server.wait_ready()

        scenarios = section["scenarios"]

        def run_driver(name: str, on: dict[str, Server] = servers) -> None:
            if wanted(name):
                at = urls if on is servers else dialect_urls
                scenarios[name] = measured(name, on, lambda: driver(name, at, opts), opts)

        with rss_sampler([*servers.values(), *dialect_servers.values()]):
            run_driver("browser_login")
            links_before_mobile_login = None
            if dialect_servers:
                links_before_mobile_login = asyncio.run(newest_link(opts.scale_url))
            run_driver("mobile_login")
            if full:
                if dialect_servers:
                    pairs = identity_pairs(opts, urls["sim"], dialect_urls["sim"])
                    # The dialect's logins start from the links the mobile login started from.
                    forget = links_before_mobile_login if "mobile_login" in scenarios else None
                    asyncio.run(relabel_links(opts.scale_url, pairs, "dialect", forget))
                    try:
                        run_driver("dialect_login", dialect_servers)
                    finally:
                        asyncio.run(relabel_links(opts.scale_url, pairs, "standard"))
                run_driver("step_up_login")
                if wanted("refresh"):
                    scenarios["refresh"] = refresh_scenario("refresh", servers, urls, opts)
                if wanted("me"):
                    scenarios["me"] = me_scenario(servers, urls, opts)
                if wanted("healthz"):
                    scenarios["healthz"] = measured(
                        "healthz",
                        servers,
                        lambda: wrk("healthz", urls["broker"] + "/healthz", opts, []),
                        opts,
                    )
                run_driver("jwks_verify")
                if wanted("audit_append"):
                    scenarios |= audit_append_scenarios(opts, env)
                if "peer" in urls:
                    if wanted("peer_refresh"):
                        scenarios["peer_refresh"] = refresh_scenario(
                            "peer_refresh", servers, urls, opts
                        )
                    run_driver("peer_authcode")
        section["peak_rss_mb"] = {
            key: round(server.peak_rss_mb, 1) for key, server in servers.items()
        } | {f"dialect_{key}": round(s.peak_rss_mb, 1) for key, s in dialect_servers.items()}
        section["broker_workers"] = workers
        if opts.database_url.startswith("postgresql"):
            section["explain"] = asyncio.run(
                # Beside the results file, so a smoke run elsewhere leaves the repository alone.
                explain_login_path(opts.scale_url, opts.results.parent / f"explain-{accounts}.txt")
            )
        for server in dialect_servers.values():
            server.stop()  # the scale-out below measures the standard profile only
        if full and len(opts.workers) > 1:
            section["scale_out"] = scale_out(opts, env, urls, servers)
    return section


def audit_append_scenarios(opts: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    """`bench/audit_append.py` in its own process against the scale's database, once per
    writer count; its CPU per append is its own (and PostgreSQL's serving processes')."""
    results = {}
    for name, writers in AUDIT_APPEND_WRITERS.items():
        command = [
            sys.executable, str(BENCH / "audit_append.py"),
            "--writers", str(writers or opts.concurrency),
            "--duration", str(opts.duration),
        ]  # fmt: skip

        def run(command: list[str] = command) -> dict[str, Any]:
            done = subprocess.run(  # noqa: S603
                command, env=env, capture_output=True, text=True, check=False
            )
            if done.returncode != 0:
                raise SystemExit(f"bench/audit_append.py failed:\n{done.stderr[-3000:]}")
            result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
            return result

        results[name] = measured(name, {}, run, opts)
    return results


def import_scenario(opts: argparse.Namespace) -> dict[str, Any]:
    """`bench/import_bench.py` at `--import-rows` (fresh, rerun, a tenth changed), on a
    database of its own on the same server (or a SQLite file): rows per second, peak memory."""
    print(f"import: {opts.import_rows:,} rows ...", end="", flush=True)
    command = [
        sys.executable, str(BENCH / "import_bench.py"),
        "--rows", str(opts.import_rows), "--changes", str(opts.import_rows),
        "--database-url", opts.database_url, "--json",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise SystemExit(
            f"bench/import_bench.py failed:\n{done.stdout[-2000:]}{done.stderr[-3000:]}"
        )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    print(
        " "
        + ", ".join(
            f"{r['run']} {r['rows_per_s']} rows/s, peak {r['peak_rss_mib']} MiB"
            for r in result["runs"]
        ),
        flush=True,
    )
    return result


def me_scenario(
    servers: dict[str, Server], urls: dict[str, str], opts: argparse.Namespace, label: str = ""
) -> dict[str, Any]:
    """`GET /api/v1/me` under wrk with the access token of a real login."""
    token = tokens_for_wrk("access_token", urls, opts)[-1]
    url, headers = f"{urls['broker']}/api/v1/me", [f"Authorization: Bearer {token}"]
    return measured("me", servers, lambda: wrk("me", url, opts, headers), opts, label)


SCALE_OUT_SCENARIOS = ("mobile_login", "refresh", "me")


def scale_out(
    opts: argparse.Namespace, env: dict[str, str], urls: dict[str, str], servers: dict[str, Server]
) -> dict[str, Any]:
    """Mobile login, refresh rotation and `/api/v1/me` with each other process count of
    --workers (the last count was measured above, with every scenario)."""
    out: dict[str, Any] = {}
    servers["broker"].stop()
    wanted = [name for name in SCALE_OUT_SCENARIOS if not opts.scenarios or name in opts.scenarios]
    for workers in opts.workers[:-1]:
        print(f"scale-out: {workers} broker process(es)", flush=True)
        broker, urls["broker"] = start_broker(opts, env, urls["sim"], workers, f"broker-{workers}")
        label = f"-{workers}-processes"
        try:
            measure = {"sim": servers["sim"], "broker": broker}
            row: dict[str, Any] = {}
            with rss_sampler([broker]):
                if "mobile_login" in wanted:
                    row["mobile_login"] = measured(
                        "mobile_login",
                        measure,
                        lambda: driver("mobile_login", urls, opts),
                        opts,
                        label,
                    )
                if "refresh" in wanted:
                    row["refresh"] = refresh_scenario("refresh", measure, urls, opts, label)
                if "me" in wanted:
                    row["me"] = me_scenario(measure, urls, opts, label)
            out[str(workers)] = row | {"peak_rss_mb": round(broker.peak_rss_mb, 1)}
        finally:
            broker.stop()
    return out


def bench_keys(path: Path) -> dict[str, str]:
    """The citizen-ID keys of the benchmark databases, made once (random) and kept."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        keys = {
            name: base64.urlsafe_b64encode(os.urandom(32)).decode()
            for name in ("kek", "blind_index")
        }
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(keys, handle)
    loaded: dict[str, str] = json.loads(path.read_text())
    return loaded


def main() -> None:
    reexec_in_venv()
    global OPTS
    parser = argparse.ArgumentParser(
        description="Benchmark the broker and its peer",
        formatter_class=argparse.RawTextHelpFormatter,
    )
    parser.add_argument("--duration", type=float, default=20, help="seconds per scenario")
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent clients")
    parser.add_argument(
        "--scales",
        default="10000",
        help="comma-separated account counts; logins at each, every scenario at the last",
    )
    parser.add_argument(
        "--workers",
        default="2",
        help="broker worker processes; the last count runs every scenario, the others mobile\n"
        "login, refresh and /api/v1/me (scale-out): '1,4,2' measures 1, 2 and 4, the rest at 2",
    )
    parser.add_argument(
        "--rate-limit-storage",
        default="redis://127.0.0.1:6379/14",
        help="VSSID_RATE_LIMIT_STORAGE of the broker at every process count, its keys emptied\n"
        "at each broker start (a Redis database of its own); memory:// only with one process",
    )
    parser.add_argument(
        "--rate-limit-key-prefix",
        default="LIMITS",
        help="VSSID_RATE_LIMIT_KEY_PREFIX: the broker's keys in Redis, the only ones emptied",
    )
    parser.add_argument("--citizens", type=int, default=2000, help="simulator citizens used")
    parser.add_argument(
        "--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE)
    )
    parser.add_argument(
        "--keep-schema", action="store_true", help="do not drop the schema (migrated test database)"
    )
    parser.add_argument("--broker-port", type=int, default=0)
    parser.add_argument("--no-peer", action="store_true", help="skip oidc-provider")
    parser.add_argument("--npm-ci", action="store_true", help="reinstall the peer with npm ci")
    parser.add_argument("--log-level", default="WARNING", help="broker log level during the run")
    parser.add_argument("--results", type=Path, default=BENCH / "results" / "latest.json")
    parser.add_argument("--markdown", type=Path, default=ROOT / "docs" / "performance.md")
    parser.add_argument(
        "--profile",
        default="",
        help="comma-separated scenarios to profile with py-spy (CPU only: blocking, idle dropped)",
    )
    parser.add_argument(
        "--profile-native",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="py-spy --native: C extensions' own frames in the profiles",
    )
    parser.add_argument(
        "--charts",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="draw the charts (bench/charts.py) beside the results and link them",
    )
    parser.add_argument("--note", default="", help="free text stored with the results")
    parser.add_argument(
        "--keep-data",
        action="store_true",
        help="one database per scale (<name>_<accounts>), seeded once and reused by later runs",
    )
    parser.add_argument(
        "--seed-only", action="store_true", help="prepare the databases of --scales and stop"
    )
    parser.add_argument(
        "--scenarios",
        default="",
        help="comma-separated scenarios to run (default: all); for quick before/after checks",
    )
    parser.add_argument(
        "--import-rows",
        type=int,
        default=10_000,
        help="rows of the accounts-import scenario (bench/import_bench.py: a fresh import, the\n"
        "same file again, a file with a tenth changed); 1000000 for the issue's figure",
    )
    opts = parser.parse_args()
    OPTS = opts
    opts.profile = [name for name in opts.profile.split(",") if name]
    opts.scenarios = {name for name in opts.scenarios.split(",") if name}
    if unknown := opts.scenarios - SCENARIO_NAMES:
        raise SystemExit(f"unknown scenarios: {', '.join(sorted(unknown))}")
    opts.workers = [int(w) for w in str(opts.workers).split(",")]
    if opts.rate_limit_storage == "memory://" and max(opts.workers) > 1:
        raise SystemExit("several broker processes share rate limits only through Redis")
    if opts.profile:
        py_spy()  # missing: say so before the run, not after the seed
    opts.results.parent.mkdir(parents=True, exist_ok=True)  # profiles and statements go there
    scales = [int(s) for s in str(opts.scales).split(",")]
    opts.broker_port = opts.broker_port or free_port()
    # Every process (seed, broker workers) seals and looks up citizen IDs with the same keys,
    # and so does every later run on a kept seed (--keep-data): they are kept beside it.
    kek = os.environ.get("VSSID_KEY_ENCRYPTION_KEY")
    blind_index_key = os.environ.get("VSSID_BLIND_INDEX_KEY")
    if not (kek and blind_index_key):
        kept_keys = bench_keys(ROOT / "var" / "bench-keys.json")
        kek = kek or kept_keys["kek"]
        blind_index_key = blind_index_key or kept_keys["blind_index"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VSSID_", "VNEID_SIM_"))}
    env |= {
        "VSSID_DATABASE_URL": opts.database_url,
        "VSSID_KEY_ENCRYPTION_KEY": kek,
        "VSSID_BLIND_INDEX_KEY": blind_index_key,
    }
    command = shlex.join(["python3", "bench/run.py", *sys.argv[1:]])
    results: dict[str, Any] = {
        "command": command,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cores": os.cpu_count(),
            "cpu": _cpu_model(),
            "loadavg_at_start": os.getloadavg(),
            "python": platform.python_version(),
        },
        "settings": {
            "duration_s": opts.duration,
            "concurrency": opts.concurrency,
            "workers": opts.workers,
            "citizens": opts.citizens,
            "database": opts.database_url.split("@")[-1],
            "rate_limits": rate_limit_settings(opts, env),
        },
        "note": opts.note,
        "scales": {},
    }
    if opts.seed_only or not opts.scenarios or opts.scenarios - {"import"}:
        for index, accounts in enumerate(scales):
            results["scales"][str(accounts)] = run_scale(
                opts, env, accounts, full=index == len(scales) - 1
            )
    if opts.seed_only:
        return
    if not opts.scenarios or "import" in opts.scenarios:
        # Last, on a database of its own: nothing else runs beside it.
        results["import"] = import_scenario(opts)
    results["machine"]["loadavg_at_end"] = os.getloadavg()
    opts.results.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    if opts.charts and results["scales"]:
        results["charts"] = draw_charts(opts)
        opts.results.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    write_markdown(opts.markdown, results)
    print(f"results: {opts.results}  table: {opts.markdown}")


def draw_charts(opts: argparse.Namespace) -> dict[str, str]:
    """The charts' PNGs, each as the markdown links it (relative to the markdown's folder)."""
    try:
        drawn = charts.draw(opts.results)
    except charts.ChartsUnavailable as error:
        print(f"no charts: {error}", flush=True)
        return {}
    for path in drawn:
        print(f"chart: {path}", flush=True)
    return {
        path.stem.removeprefix(f"{opts.results.stem}-"): os.path.relpath(
            path, opts.markdown.resolve().parent
        )
        for path in drawn
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


# --- Markdown -------------------------------------------------------------------------------------
LABELS = {
    "browser_login": "browser login (start → VNeID → callback → account page)",
    "mobile_login": "mobile login (start → VNeID → complete)",
    "refresh": "refresh-token rotation",
    "me": "`GET /api/v1/me` (token validated)",
    "healthz": "`GET /healthz` (bare endpoint, same stack)",
    "jwks_verify": "JWKS-only access-token verification (in-process joserfc, 1 core)",
    "peer_refresh": "oidc-provider: refresh grant",
    "peer_authcode": "oidc-provider: authorization-code flow (authorize with session + token)",
    "dialect_login": "mobile login, VNeID dialect profile (RSA + AES answers, userinfo)",
    "step_up_login": "step-up login + request (start with max_age → VNeID → complete → submit"
    " → cancel)",
    "audit_append": "keyed audit chain: one event appended (in-process, 1 writer)",
    "audit_append_concurrent": "keyed audit chain: one event appended (in-process, {writers}"
    " writers)",
}


def label(name: str, r: dict[str, Any] | None = None) -> str:
    return LABELS.get(name, name).format(writers=(r or {}).get("writers", "several"))


def short_label(name: str, r: dict[str, Any]) -> str:
    """The label without its parenthesis, but for the writers of an audit append."""
    writers = f" ({r['writers']} writer{'s' if r['writers'] > 1 else ''})" if "writers" in r else ""
    return label(name, r).split(" (")[0] + writers


def _row(name: str, r: dict[str, Any], rss: float | None) -> str:
    lat = r.get("broker_latency_ms") or r["latency_ms"]
    broker_side = " (broker side)" if "broker_latency_ms" in r else ""
    return (
        f"| {label(name, r)} | {r['throughput']:,} | {lat['p50']} | {lat['p95']} | "
        f"{lat['p99']}{broker_side} | {r.get('cpu_ms_per_op', '–')} | "
        f"{r.get('ops_per_cpu_second') or '–'} | {rss if rss is not None else '–'} | "
        f"{r['errors']} |"
    )


def render(results: dict[str, Any]) -> str:
    machine, settings = results["machine"], results["settings"]
    lines = [
        f"Run {results['started_at']} · {machine['cores']} cores ({machine['cpu']}) · "
        f"load average at start {machine['loadavg_at_start'][0]:.2f}, at end "
        f"{machine['loadavg_at_end'][0]:.2f} · concurrency {settings['concurrency']} · "
        f"{settings['duration_s']} s per scenario · broker workers {settings['workers'][-1]} · "
        f"database {settings['database']}",
        "",
        "```sh",
        results["command"],
        "```",
        "",
    ]
    if results.get("note"):
        lines += [f"> {results['note']}", ""]
    scales = results["scales"]
    if not scales:
        return "\n".join(lines + _import_lines(results))
    last = list(scales)[-1]
    main = scales[last]
    rss = main["peak_rss_mb"]
    lines += [
        f"### Scenarios at {int(last):,} accounts",
        "",
        "| scenario | ops/s (whole run) | p50 ms | p95 ms | p99 ms | server CPU ms/op | "
        "ops per CPU-second (per core) | peak RSS MB/process | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in main["scenarios"].items():
        server = {"peer_": "peer", "dialect_": "dialect_broker"}.get(name[: name.find("_") + 1])
        lines.append(_row(name, r, None if name in IN_PROCESS else rss.get(server or "broker")))
    s = main["scenarios"]
    ratios = []
    if "refresh" in s and "peer_refresh" in s:
        ratios.append(("refresh: ours / oidc-provider", s["refresh"], s["peer_refresh"]))
    if "mobile_login" in s and "peer_authcode" in s:
        ratios.append(
            ("login (broker side) / oidc-provider code flow", s["mobile_login"], s["peer_authcode"])
        )
    if "me" in s and "healthz" in s:
        ratios.append(("`/api/v1/me` / bare `/healthz`", s["me"], s["healthz"]))
    if "dialect_login" in s and "mobile_login" in s:
        ratios.append(
            ("VNeID dialect login / standard mobile login", s["dialect_login"], s["mobile_login"])
        )
    if ratios:
        lines += [
            "",
            "| ratio | throughput | ops per CPU-second |",
            "|---|---:|---:|",
        ]
        for label, ours, theirs in ratios:
            tp = ours["throughput"] / theirs["throughput"] if theirs["throughput"] else 0
            ours_rate, their_rate = ours.get("ops_per_cpu_second"), theirs.get("ops_per_cpu_second")
            eff = f"{ours_rate / their_rate:.2f}" if ours_rate and their_rate else "–"
            lines.append(f"| {label} | {tp:.2f} | {eff} |")
    lines += [
        "",
        f"Peak RSS per process (MB): {', '.join(f'{k} {v}' for k, v in rss.items())}. "
        f"The simulator's CPU per login: "
        + ", ".join(
            f"{n} {s[n].get('sim_cpu_ms_per_op')} ms"
            for n in ("browser_login", "mobile_login", "dialect_login", "step_up_login")
            if n in s
        )
        + ".",
    ]
    lines += _new_scenario_lines(s)
    if len(scales) > 1:
        lines += [
            "",
            "### Login latency by number of accounts",
            "",
            "| accounts | seed time s | browser login p50 / p99 ms (broker side) | "
            "mobile login p50 / p99 ms (broker side) | mobile login broker CPU ms/op |",
            "|---:|---:|---:|---:|---:|",
        ]
        for accounts, section in scales.items():
            b = section["scenarios"]["browser_login"]["broker_latency_ms"]
            m = section["scenarios"]["mobile_login"]
            lines.append(
                f"| {int(accounts):,} | {section['seed']['seed_seconds']} | "
                f"{b['p50']} / {b['p99']} | "
                f"{m['broker_latency_ms']['p50']} / {m['broker_latency_ms']['p99']} | "
                f"{m.get('cpu_ms_per_op')} |"
            )
    explains = [
        f"{int(a):,}: `{sec['explain']['file']}` ({sec['explain']['queries']} queries, "
        f"sequential scans: {', '.join(sec['explain']['seq_scans']) or 'none'})"
        for a, sec in scales.items()
        if "explain" in sec
    ]
    if explains:
        lines += ["", "Query plans of the login path: " + "; ".join(explains) + "."]
    lines += _rate_limit_lines(settings, scales)
    lines += _statement_and_profile_lines(main)
    if "scale_out" in main:
        lines += _scale_out_lines(results)
    lines += _import_lines(results)
    if results.get("charts"):
        for chart, path in results["charts"].items():
            lines += ["", f"![{charts.CHARTS[chart]}]({path})"]
    return "\n".join(lines)


def _new_scenario_lines(s: dict[str, Any]) -> list[str]:
    """What the table's rows for the dialect, the step-up and the audit chain leave unsaid."""
    lines = []
    dialect, standard = s.get("dialect_login", {}), s.get("mobile_login", {})
    if dialect.get("cpu_ms_per_op") and standard.get("cpu_ms_per_op"):
        times = dialect["cpu_ms_per_op"] / standard["cpu_ms_per_op"]
        lines += [
            "",
            f"The VNeID dialect's login costs {times:.2f}×"
            " the standard profile's broker CPU per mobile login, in this run (target: at most"
            " 1.5×); each profile's own broker and simulator, the dialect's logins starting from"
            " the links the standard login started from.",
        ]
    appends = [
        f"{r['writers']} writer{'s' if r['writers'] > 1 else ''}: {r['cpu_ms_per_op']} ms in the"
        f" writer, {r['db_cpu_ms_per_op']} ms in PostgreSQL, {r['throughput']:,} appends/s"
        for name in AUDIT_APPEND_WRITERS
        if (r := s.get(name)) and "db_cpu_ms_per_op" in r and "cpu_ms_per_op" in r
    ]
    if appends:
        lines += [
            "",
            "CPU per audit append (`bench/audit_append.py`: one transaction writing one event,"
            " the chain's lock held from its tip to the commit): " + "; ".join(appends) + ".",
        ]
    return lines


def _import_lines(results: dict[str, Any]) -> list[str]:
    imported = results.get("import")
    if not imported:
        return []
    lines = [
        "",
        f"### Accounts import (`bench/import_bench.py`, {imported['database']})",
        "",
        "| run | rows | seconds | rows/s | CPU s: command + PostgreSQL | load average |"
        " peak RSS MiB | result |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in imported["runs"]:
        # Results of runs before CPU and load were measured have neither.
        cpu = f"{r['cpu_s']} + {r['postgres_cpu_s']}" if "cpu_s" in r else "-"
        load = "→".join(f"{x:.1f}" for x in r["load_average"]) if "load_average" in r else "-"
        lines.append(
            f"| {r['run']} | {r['rows']:,} | {r['seconds']} | {r['rows_per_s']:,} | {cpu} |"
            f" {load} | {r['peak_rss_mib']} | {'; '.join(r['summary'])} |"
        )
    return lines


def _rate_limit_lines(settings: dict[str, Any], scales: dict[str, Any]) -> list[str]:
    limits = settings.get("rate_limits")
    if limits is None:
        return []  # results of a run before limits were kept as shipped
    storage = "Redis" if limits["storage"].startswith("redis") else "process memory"
    shipped = "as shipped" if limits["as_shipped"] else "**changed by the environment**"
    refused = [
        f"{name} at {int(accounts):,} accounts: "
        + ", ".join(f"{n} by {limit}" for limit, n in r["rate_limited"].items())
        for accounts, section in scales.items()
        for name, r in section["scenarios"].items()
        if r.get("rate_limited")
    ]
    return [
        "",
        f"Rate limits {shipped} ("
        + ", ".join(f"{name.replace('_', ' ')} {value}" for name, value in limits["limits"].items())
        + f"), counted in {storage} shared by every broker process; each simulated phone or"
        " browser has an address of its own (`X-Forwarded-For` from 10.0.0.0/8, the load"
        " generator trusted as the reverse proxy). Requests refused by a limit (429): "
        + ("; ".join(refused) if refused else "none")
        + ".",
    ]


def _statement_and_profile_lines(main: dict[str, Any]) -> list[str]:
    s = main["scenarios"]
    status = main.get("pg_stat_statements", "")
    lines = []
    counted = [
        f"{short_label(name, r)} {r['pg_stat_statements']['statements_per_op']}"
        f" ({r['pg_stat_statements']['exec_ms_per_op']} ms)"
        for name, r in s.items()
        if r.get("pg_stat_statements", {}).get("statements_per_op")  # none: not the database's
    ]
    if counted:
        lines += [
            "",
            "PostgreSQL statements per operation and their execution time per operation, waits"
            " for locks included (pg_stat_statements, reset before each scenario; top statements in"
            " `pgss-<scenario>.txt` beside the results): " + "; ".join(counted) + ".",
        ]
    elif status.startswith("off"):
        lines += ["", f"Statements per operation not counted: {status.removeprefix('off: ')}."]
    profiled = [
        f"`{r['profile']['file']}` ({r['profile']['samples']} samples)"
        for r in s.values()
        if isinstance(r.get("profile"), dict)
    ]
    if profiled:
        mode = next(r["profile"]["mode"] for r in s.values() if isinstance(r.get("profile"), dict))
        lines += [
            "",
            f"CPU profiles ({mode}; the pauses add to those scenarios' CPU figures): "
            + ", ".join(profiled)
            + ".",
        ]
    return lines


def _scale_out_lines(results: dict[str, Any]) -> list[str]:
    cores = results["machine"]["cores"]
    lines = [
        "",
        "### Scale-out: broker processes against one PostgreSQL",
        "",
        f"This machine has {cores} CPUs, shared by the broker's processes, PostgreSQL, Redis,"
        " the simulated VNeID and the load driver: throughput cannot grow with processes here."
        " The figure to read is broker CPU per operation (all its processes, from `/proc`) and"
        " how it holds as processes are added.",
        "",
        "| scenario | processes | ops/s | broker CPU ms/op | ops per broker CPU-second "
        "| p50 ms | p99 ms | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    rows = charts.scale_out_rows(results)
    for name in charts.SCALE_OUT:
        for workers, row in rows.items():
            if name not in row:
                continue
            r = row[name]
            lat = r.get("broker_latency_ms") or r["latency_ms"]
            lines.append(
                f"| {LABELS.get(name, name).split(' (')[0]} | {workers} | {r['throughput']:,}"
                f" | {r.get('cpu_ms_per_op', '–')} | {r.get('ops_per_cpu_second') or '–'}"
                f" | {lat['p50']} | {lat['p99']} | {r['errors']} |"
            )
    lines += ["", "(Login latency is the broker side; refresh and `/api/v1/me` are wrk's.)"]
    return lines


def write_markdown(path: Path, results: dict[str, Any]) -> None:
    table = f"{MARK_BEGIN}\n{render(results)}\n{MARK_END}"
    text = (
        path.read_text(encoding="utf-8")
        if path.exists()
        else f"# Performance\n\n{MARK_BEGIN}\n{MARK_END}\n"
    )
    if MARK_BEGIN in text and MARK_END in text:
        head, rest = text.split(MARK_BEGIN, 1)
        text = head + table + rest.split(MARK_END, 1)[1]
    else:
        text += "\n" + table + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


OPTS: argparse.Namespace

if __name__ == "__main__":
    main()
