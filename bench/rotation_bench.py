"""Both key rotations at scale on PostgreSQL, while people keep signing in at a steady rate.

    python3 bench/rotation_bench.py --accounts 1000000

What it does, in order:
  1. empties its own database (`vssid_bench_rotation` by default, created if missing), migrates
     it and seeds `--accounts` bulk accounts (`vssid-broker seed --accounts N`: a share linked to
     VNeID identities, the first `--citizens` belonging to the simulator's generated citizens),
     then browser sessions with sealed ID tokens, app sessions and pending review cases
     (`seeding.sessions_and_cases`), everything under random keys made for the run;
  2. starts the simulated VNeID and the broker (`vssid-broker serve --workers W`) behind the
     test suite's load balancer (tests/support/rolling.py), which replaces broker processes one
     by one as an operator's rollout does, letting the old one finish what it holds;
  3. signs people in at a steady rate (`--rate` a second, app and browser in turn, people
     already linked and people signing in for the first time, who are linked by their citizen
     ID's blind index), each login checked to land on its own account, and measures:
     - `--baseline` seconds before anything changes;
     - the KEK rotation (docs/privacy.md): processes with the new KEK (the old one opening),
       then `keys rotate-kek --batch-size B` as an operator runs it;
     - the blind-index rotation: processes with the new KEK alone and the new index key (the
       old one still matching), then `keys reindex-citizen-ids --batch-size B`;
     - `--baseline` seconds with the new keys alone;
  4. writes rows a second, duration and CPU time of each command, the logins and errors of
     each stage and the broker's time to complete a login (p50, p99) before and during each
     rotation to `bench/results/rotation-<N>.json`, and prints them.

CPU seconds are the command's own (user + system, its start included) and, apart, those of the
PostgreSQL processes serving the benchmark's database in the same span (the broker's logins'
queries included); rows per CPU-second count both. The machine's load average is recorded beside
them: on shared cores the wall-clock figures move with it.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import random
import resource
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from run import reexec_in_venv  # the harness's: run under the project's venv

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE = "postgresql+asyncpg://postgres@127.0.0.1:5432/vssid_bench_rotation"


def new_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


class DatabaseCpu:
    """CPU seconds of the PostgreSQL server processes serving the benchmark's database (the
    command's and the broker's connections), sampled from /proc twice a second; a connection
    that ended keeps its last sample, so the total never goes back."""

    def __init__(self, database: str) -> None:
        self.marker = f" {database} ".encode()
        self.seen: dict[int, float] = {}
        self.tick = os.sysconf("SC_CLK_TCK")

    def sample(self) -> float:
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/cmdline", "rb") as cmdline:
                    if not (command := cmdline.read()).startswith(b"postgres:"):
                        continue
                    if self.marker not in command.replace(b"\0", b" ") + b" ":
                        continue
                with open(f"/proc/{name}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            self.seen[int(name)] = (int(fields[11]) + int(fields[12])) / self.tick
        return sum(self.seen.values())

    async def keep_sampling(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.to_thread(self.sample)
            await asyncio.sleep(0.5)


@dataclass
class Login:
    stage: str
    seconds: float | None
    """The broker's time to complete the login; None when it failed."""
    error: str = ""


@dataclass
class Stage:
    name: str
    started: float
    ended: float = 0.0
    load_average: list[float] = field(default_factory=list)
    command: dict[str, Any] | None = None
    database_cpu: float = 0.0


@dataclass
class Run:
    """The people signing in at a steady rate, and what each login gave."""

    balancer: Any
    linked: list[Any]
    first_timers: list[Any]
    accounts: dict[str, str]
    rate: float
    most_at_once: int
    stage: str = "before"
    logins: list[Login] = field(default_factory=list)
    skipped: int = 0
    """Logins not started because `most_at_once` were still in flight (the rate was too high)."""
    stages: list[Stage] = field(default_factory=list)
    database: DatabaseCpu | None = None

    def enter(self, name: str) -> None:
        now = time.monotonic()
        database_cpu = self.database.sample() if self.database else 0.0
        if self.stages:
            self.stages[-1].ended = now
            self.stages[-1].load_average = load_average()
            self.stages[-1].database_cpu = database_cpu - self.stages[-1].database_cpu
        self.stage = name
        self.stages.append(Stage(name, now, database_cpu=database_cpu))
        print(f"  {datetime.now(UTC):%H:%M:%S} {name} (load average {load_average()})", flush=True)

    async def one(self, turn: int, person: Any = None) -> None:
        """One login: on odd turns of someone signing in for the first time (while there are),
        else of someone linked; by app on two turns of four, by browser on the others."""
        from tests.support.rolling import app_login, browser_login

        stage = self.stage
        if person is None and turn % 2 and self.first_timers:
            person = self.first_timers.pop()
        elif person is None:
            person = random.choice(self.linked)
        login = app_login if turn % 4 < 2 else browser_login
        try:
            signed_in = await login(self.balancer, person.citizen_id)
        except Exception as error:
            self.logins.append(Login(stage, None, f"{type(error).__name__}: {str(error)[:200]}"))
            return
        if signed_in.bhxh_code != self.accounts[person.citizen_id]:
            self.logins.append(Login(stage, None, "landed on another account"))
            return
        self.logins.append(Login(stage, signed_in.seconds))
        if person not in self.linked:
            self.linked.append(person)

    async def steady(self, stop: asyncio.Event) -> None:
        """Start a login every 1/rate seconds (open loop: a slow broker does not slow the
        arrivals), at most `most_at_once` in flight."""
        in_flight: set[asyncio.Task[None]] = set()
        turn, started = 0, time.monotonic()
        while not stop.is_set():
            if len(in_flight) < self.most_at_once:
                task = asyncio.create_task(self.one(turn))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
            else:
                self.skipped += 1
            turn += 1
            next_at = started + turn / self.rate
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        await asyncio.gather(*in_flight)


async def run_command(
    deployment: Any, keys: Any, args: list[str], stdin: str = ""
) -> dict[str, Any]:
    """`vssid-broker <args>` as an operator runs it beside the serving processes: its output,
    wall time and CPU time (user + system, from the OS's accounting of ended children)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    output = await deployment.run(keys, *args, stdin=stdin)
    seconds = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "command": "vssid-broker " + " ".join(args),
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu, 2),
        "output_tail": output.strip().splitlines()[-4:],
        "output": output,
    }


def rows_of_rotate_kek(output: str) -> int:
    """`re-encrypted N values under …`."""
    for line in output.splitlines():
        if line.startswith("re-encrypted "):
            return int(line.split()[1])
    raise ValueError(output[-500:])


def rows_of_reindex(output: str) -> tuple[int, int]:
    """Rows read and rows re-indexed: the last progress line of each table."""
    read: dict[str, tuple[int, int]] = {}
    for line in output.splitlines():
        if line.endswith(" re-indexed") and " read, " in line:
            table, rest = line.strip().split(": ", 1)
            numbers = [int(word) for word in rest.replace(",", "").split() if word.isdigit()]
            read[table] = (numbers[0], numbers[1])
    return sum(r for r, _ in read.values()), sum(w for _, w in read.values())


def percentiles(logins: list[Login]) -> dict[str, Any]:
    times = sorted(login.seconds for login in logins if login.seconds is not None)
    if not times:
        return {"logins": len(logins), "errors": len(logins)}
    quantiles = statistics.quantiles(times, n=100, method="inclusive") if len(times) > 1 else times
    return {
        "logins": len(logins),
        "errors": sum(1 for login in logins if login.seconds is None),
        "p50_ms": round(statistics.median(times) * 1000, 1),
        "p99_ms": round(quantiles[min(98, len(quantiles) - 1)] * 1000, 1),
    }


async def reset_database(url: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from vssid_broker.db import create_engine

    target = make_url(url)
    server = create_engine(target.set(database="postgres").render_as_string(hide_password=False))
    async with server.connect() as connection:
        connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
        await connection.execute(text(f'CREATE DATABASE "{target.database}"'))
    await server.dispose()


async def seed(
    opts: argparse.Namespace, env: dict[str, str], keys: Any, sim: str
) -> dict[str, Any]:
    from tests.support.rolling import COMMAND

    from vssid_broker import schema, sealing
    from vssid_broker.db import create_engine
    from vssid_broker.seeding.sessions_and_cases import seed_sessions_and_cases

    await reset_database(opts.database_url)
    engine = create_engine(opts.database_url)
    await schema.upgrade_engine(engine)
    started = time.monotonic()
    bulk = await asyncio.create_subprocess_exec(
        COMMAND, "seed", "--accounts", str(opts.accounts), "--vneid-citizens", str(opts.citizens),
        "--no-progress", env=env | keys.env(), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await bulk.communicate()
    if bulk.returncode != 0:
        raise SystemExit(output.decode()[-3000:])
    accounts_seconds = time.monotonic() - started
    sealing.install(keys.citizen_ids())
    started = time.monotonic()
    sessions = round(opts.accounts * opts.session_share)
    seeded = await seed_sessions_and_cases(
        engine, keys.secrets(), browser_sessions=sessions, app_sessions=sessions,
        review_cases=opts.review_cases, provider=sim,
    )  # fmt: skip
    await engine.dispose()
    return {
        "accounts": output.decode().strip().splitlines()[-1],
        "accounts_seconds": round(accounts_seconds, 1),
        "browser_sessions": seeded.browser_sessions,
        "app_sessions": seeded.app_sessions,
        "review_cases": seeded.review_cases,
        "sessions_and_cases_seconds": round(time.monotonic() - started, 1),
    }


async def main_async(opts: argparse.Namespace) -> dict[str, Any]:
    from tests.support.rolling import (
        Balancer,
        Deployment,
        Keys,
        log_of,
        ready,
        sim_registrations,
        started,
    )

    from vssid_broker.seeding.bulk import bhxh_code
    from vssid_broker.vneid_sim.citizens import generate_citizens

    work = Path(opts.results).parent / "tmp" / "rotation"
    work.mkdir(parents=True, exist_ok=True)
    old_kek, old_index, new_kek, new_index = new_key(), new_key(), new_key(), new_key()
    before = Keys(old_kek, old_index)
    swapped = Keys(new_kek, old_index, previous_keks=(old_kek,))
    reindexing = Keys(new_kek, new_index, previous_index=(old_index,))
    after = Keys(new_kek, new_index)

    balancer = Balancer(free_port())
    sim_port = free_port()
    sim = f"http://127.0.0.1:{sim_port}"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("VSSID_", "VNEID_SIM_"))}
    env = base | {
        "VSSID_DATABASE_URL": opts.database_url,
        "VSSID_VNEID_ISSUER": sim,
        "VSSID_PUBLIC_BASE_URL": balancer.public,
        "VSSID_LOG_LEVEL": "WARNING",
        # The simulated VNeID shares the cores: its answers are not what is measured here.
        "VSSID_VNEID_HTTP_TIMEOUT_SECONDS": "30",
        "VSSID_KEY_ENCRYPTION_KEY_FILE": str(work / "unused-kek"),
        "VSSID_BLIND_INDEX_KEY_FILE": str(work / "unused-index-key"),
        # One address signs everyone in here: limits a steady run never reaches.
        **{
            f"VSSID_RATE_LIMIT_{name}": "100000/minute"
            for name in (
                "LOGIN_START_PER_IP", "TOKEN_PER_IP", "PASSWORD_PER_IP",
                "PASSWORD_PER_IDENTIFIER", "PASSWORD_PER_IP_AND_IDENTIFIER",
            )
        },
    }  # fmt: skip
    print(f"seeding {opts.accounts:,} accounts (load average {load_average()})", flush=True)
    seeded = await seed(opts, env, before, sim)
    print(f"  {json.dumps(seeded)}", flush=True)

    citizens = generate_citizens(min(opts.citizens, opts.accounts))
    accounts = {c.citizen_id: bhxh_code(i, c.citizen_id[:3]) for i, c in enumerate(citizens)}
    can_sign_in = [c for c in citizens if c.level == 2 and not c.locked]
    random.Random(0).shuffle(can_sign_in)
    linked_first, first_timers = can_sign_in[:40], can_sign_in[40:]

    deployment = Deployment(balancer, env, work, serve_args=("--workers", str(opts.workers)))
    sim_args = ("vneid-sim", "--port", str(sim_port))
    sim_env = env | {
        "VNEID_SIM_ISSUER": sim,
        "VNEID_SIM_GENERATED_CITIZENS": str(opts.citizens),
        "VNEID_SIM_CLIENTS": json.dumps(sim_registrations(balancer.public)),
    }
    run = Run(balancer, [], first_timers, accounts, opts.rate, opts.most_at_once)
    from sqlalchemy.engine import make_url

    run.database = DatabaseCpu(str(make_url(opts.database_url).database))
    stop = asyncio.Event()
    sampling = asyncio.create_task(run.database.keep_sampling(stop))
    try:
        sim_process = deployment.stack.enter_context(started(*sim_args, env=sim_env, cwd=work))
        await ready(sim_process, f"{sim}/.well-known/openid-configuration", log_of(sim_args, work))
        await deployment.roll_out(before)
        run.stage = "warm-up"
        for turn, person in enumerate(linked_first):  # linked before anything starts
            await run.one(turn, person)
        assert all(login.seconds is not None for login in run.logins), run.logins
        run.logins.clear()
        logins = asyncio.create_task(run.steady(stop))
        run.enter("before")
        await asyncio.sleep(opts.baseline)
        run.enter("roll-out: new KEK, old one opening")
        await deployment.roll_out(swapped)
        run.enter("keys rotate-kek")
        batch = ["--batch-size", str(opts.batch_size)]
        run.stages[-1].command = await run_command(
            deployment, swapped, ["keys", "rotate-kek", *batch], stdin=new_kek + "\n"
        )
        run.enter("roll-out: new KEK alone, new index key, old one matching")
        await deployment.roll_out(reindexing)
        run.enter("keys reindex-citizen-ids")
        run.stages[-1].command = await run_command(
            deployment, reindexing, ["keys", "reindex-citizen-ids", *batch]
        )
        run.enter("roll-out: new keys alone")
        await deployment.roll_out(after)
        run.enter("after")
        await asyncio.sleep(opts.baseline)
        run.enter("done")
    finally:
        stop.set()
        if "logins" in locals():
            await logins
        await sampling
        deployment.close()
        deployment.stack.close()
    return report(opts, seeded, run)


def report(opts: argparse.Namespace, seeded: dict[str, Any], run: Run) -> dict[str, Any]:
    stages = []
    for stage in run.stages[:-1]:
        entry: dict[str, Any] = {
            "stage": stage.name,
            "seconds": round(stage.ended - stage.started, 1),
            "load_average_at_end": stage.load_average,
            "database_cpu_seconds": round(stage.database_cpu, 2),
            **percentiles([login for login in run.logins if login.stage == stage.name]),
        }
        if stage.command is not None:
            command = stage.command
            output = command.pop("output")
            if "rotate-kek" in command["command"]:
                rows = rows_of_rotate_kek(output)
                entry["rows_resealed"] = rows
            else:
                rows, rewritten = rows_of_reindex(output)
                entry["rows_read"], entry["rows_reindexed"] = rows, rewritten
            entry["rows_per_second"] = round(rows / command["seconds"])
            cpu = command["cpu_seconds"] + stage.database_cpu
            entry["rows_per_cpu_second"] = round(rows / max(cpu, 0.01))
            entry |= command
        stages.append(entry)
    errors = [login.error for login in run.logins if login.seconds is None]
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "accounts": opts.accounts,
        "batch_size": opts.batch_size,
        "rate_per_second": opts.rate,
        "broker_workers": opts.workers,
        "seed": seeded,
        "stages": stages,
        "logins": len(run.logins),
        "errors": len(errors),
        "first_errors": errors[:10],
        "skipped_at_the_rate": run.skipped,
    }


def main() -> None:
    reexec_in_venv()
    sys.path.insert(0, str(ROOT))  # the load balancer and logins of tests/support/rolling.py
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument(
        "--citizens", type=int, default=5_000, help="accounts of simulated citizens (sign in)"
    )
    parser.add_argument(
        "--session-share", type=float, default=0.2,
        help="browser sessions and app sessions, each, per account",
    )  # fmt: skip
    parser.add_argument("--review-cases", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=1_000, help="rows per transaction")
    parser.add_argument("--rate", type=float, default=4.0, help="logins started a second")
    parser.add_argument("--most-at-once", type=int, default=16, help="logins in flight at most")
    parser.add_argument("--workers", type=int, default=1, help="broker worker processes")
    parser.add_argument("--baseline", type=float, default=20, help="seconds before and after")
    parser.add_argument(
        "--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE)
    )
    parser.add_argument("--results", default=None, help="default: bench/results/rotation-N.json")
    opts = parser.parse_args()
    if not opts.database_url.startswith("postgresql"):
        raise SystemExit("the rotation benchmark runs on PostgreSQL (--database-url)")
    opts.results = opts.results or str(
        ROOT / "bench" / "results" / f"rotation-{opts.accounts}.json"
    )
    results = asyncio.run(main_async(opts))
    Path(opts.results).write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(results, indent=2, ensure_ascii=False))


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


if __name__ == "__main__":
    main()
