"""The accounts import at scale: rows per second and peak memory of `vssid-broker accounts import`.

    python3 bench/import_bench.py [--rows 1000000] [--changes 1000000] \
        [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres] [--keep-files DIR] \
        [--json]

Makes a database of its own on the server (`vssid_bench_import_<pid>`, dropped at the end; with
a `sqlite` URL, a file beside the input files), migrates it, then times three runs of the
command itself, each in its own process (what an operator runs, so the figures include reading,
checking, sealing, COPY and the merge):

1. **fresh**: `--rows` synthetic accounts into the empty database;
2. **rerun**: the same file again (changes nothing: the cost of finding that out);
3. **changes**: a file of `--changes` rows of those accounts, a tenth of them changed (a name,
   a phone, a status), against the accounts of step 1.

Peak memory is the largest sum of resident memory of the command and its worker processes
(sampled every quarter second from /proc); CPU is the user + sys time of the command with its
workers (`wait4`) and, apart, of the PostgreSQL processes serving the bench's database
(sampled from /proc, so only on the machine of the server); the load average is shown when
each run begins and ends, since other work on the machine moves the wall-clock figures. The
files are gzip-compressed CSV, made here from a seeded random stream: synthetic people only.
`--json` ends the output with one line of JSON holding the three runs (`bench/run.py`'s
`import` scenario reads it).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import csv
import gzip
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from vssid_broker.identifiers import PROVINCE_PLACE_CODES

COLUMNS = ("bhxh_code", "citizen_id", "full_name", "birth_date", "gender", "phone", "status")
PLACES = tuple(sorted(PROVINCE_PLACE_CODES))
"""Every province: a million serials each keeps citizen IDs unique up to 63 million rows."""
FAMILY = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Bùi")
GIVEN = ("An", "Bình", "Chi", "Dung", "Hà", "Hùng", "Lan", "Minh", "Nam", "Yến")


def person(index: int, rng: random.Random) -> list[str]:
    """The `index`-th synthetic account: unique BHXH code and citizen ID by construction."""
    gender = "female" if index % 2 else "male"
    born = date(1950, 1, 1) + timedelta(days=rng.randrange(22_000))
    place = PLACES[index % len(PLACES)]
    serial = index // len(PLACES)  # below 10^6 per place up to 63 million rows
    digit = (born.year // 100 - 19) * 2 + (gender == "female")
    citizen_id = f"{place}{digit}{born.year % 100:02d}{serial % 1_000_000:06d}"
    if serial >= 1_000_000:
        citizen_id = ""  # beyond the unique range: an account without a citizen ID
    name = f"{rng.choice(FAMILY)} {'Thị' if gender == 'female' else 'Văn'} {rng.choice(GIVEN)}"
    return [
        f"{place[1:]}{index:08d}",
        citizen_id,
        name,
        born.strftime("%d/%m/%Y"),
        gender,
        f"09{rng.randrange(10**8):08d}",
        "active",
    ]


def write_file(path: Path, rows: int, *, changed_share: float = 0.0, seed: int = 0) -> None:
    rng, changes = random.Random(seed), random.Random(seed + 1)
    with gzip.open(path, "wt", encoding="utf-8", newline="", compresslevel=1) as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(COLUMNS)
        for index in range(rows):
            row = person(index, rng)
            if changed_share and changes.random() < changed_share:
                kind = changes.randrange(3)
                if kind == 0:
                    row[2] += " Mới"
                elif kind == 1:
                    row[5] = f"03{changes.randrange(2, 10)}{changes.randrange(10**7):07d}"
                else:
                    row[6] = "locked"
            writer.writerow(row)


@dataclass
class Measured:
    seconds: float
    cpu_seconds: float
    """user + sys of the command and its worker processes."""
    peak_rss_mib: int
    """The largest sum of resident memory of the command and its workers, sampled."""
    postgres_cpu_seconds: float
    """user + sys of the server processes serving the bench's database, sampled."""
    load_average: tuple[float, float]
    """The 1-minute load average when the run began and when it ended."""
    output: str


_TICK = os.sysconf("SC_CLK_TCK")


def _proc_stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, user + sys seconds) of a process, or None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICK


def _rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class _Sampler(threading.Thread):
    """Every quarter second: the resident memory of the command and its descendants (their
    sum: `ru_maxrss` gives only the largest one), and the CPU time of the server processes
    serving `database` (PostgreSQL names the database in each backend's process title)."""

    def __init__(self, root: int, database: str) -> None:
        super().__init__(daemon=True)
        self._root, self._database = root, database
        self._halt = threading.Event()
        self.peak_mib = 0.0
        self._backend_cpu: dict[int, float] = {}

    @property
    def postgres_cpu(self) -> float:
        return sum(self._backend_cpu.values())

    def run(self) -> None:
        while not self._halt.wait(0.25):
            parents: dict[int, int] = {}
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit():
                    continue
                pid = int(entry.name)
                stat = _proc_stat(pid)
                if stat is None:
                    continue
                parents[pid] = stat[0]
                try:
                    title = (entry / "cmdline").read_bytes()
                except OSError:
                    continue
                if title.startswith(b"postgres:") and f" {self._database} ".encode() in title:
                    self._backend_cpu[pid] = max(self._backend_cpu.get(pid, 0.0), stat[1])
            tree, grew = {self._root}, True
            while grew:
                more = {pid for pid, parent in parents.items() if parent in tree} - tree
                tree |= more
                grew = bool(more)
            self.peak_mib = max(self.peak_mib, sum(_rss_mib(pid) for pid in tree))

    def stop(self) -> None:
        self._halt.set()
        self.join()


def timed_import(path: Path, env: dict[str, str], database: str, *extra: str) -> Measured:
    """Run the command once: time, CPU, memory, and its summary."""
    command = str(Path(sys.executable).with_name("vssid-broker"))
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    process = subprocess.Popen(  # noqa: S603 - our own command
        [command, "accounts", "import", str(path), "--no-progress", *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    sampler = _Sampler(process.pid, database)
    sampler.start()
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    sampler.stop()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"the import failed:\n{output}")
    return Measured(
        seconds=seconds,
        # wait4 counts the command's own children (the workers) it waited for.
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        peak_rss_mib=round(max(sampler.peak_mib, usage.ru_maxrss / 1024)),
        postgres_cpu_seconds=sampler.postgres_cpu,
        load_average=(load_before, os.getloadavg()[0]),
        output=output,
    )


async def database(server_url: str, name: str, *, create: bool) -> None:
    import asyncpg

    # Through the server's maintenance database: the URL may name one that does not exist yet.
    base, _, _ = server_url.replace("postgresql+asyncpg://", "postgresql://").rpartition("/")
    connection = await asyncpg.connect(f"{base}/postgres")
    try:
        if create:
            await connection.execute(f'CREATE DATABASE "{name}"')
        else:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--changes", type=int, default=1_000_000)
    parser.add_argument(
        "--database-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
    )
    parser.add_argument("--keep-files", type=Path, help="write the files here and keep them")
    parser.add_argument("--json", action="store_true", help="end with the runs as one JSON line")
    parser.add_argument("--fresh-only", action="store_true", help="only the fresh import")
    parser.add_argument("--workers", type=int, help="the command's --workers (default: its own)")
    args = parser.parse_args()
    folder = args.keep_files or Path(tempfile.mkdtemp(prefix="vssid-import-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    on_postgresql = not args.database_url.startswith("sqlite")
    name = f"vssid_bench_import_{os.getpid()}"
    if on_postgresql:
        base, _, _ = args.database_url.rpartition("/")
        url = f"{base}/{name}"
    else:
        url = f"sqlite+aiosqlite:///{folder / name}.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VSSID_")} | {
        "VSSID_DATABASE_URL": url,
        "VSSID_KEY_ENCRYPTION_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "VSSID_BLIND_INDEX_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
    }
    fresh, changes = folder / f"fresh-{args.rows}.csv.gz", folder / f"changes-{args.changes}.csv.gz"
    started = time.perf_counter()
    # Kept files are made once: the same arguments give the same bytes.
    if not fresh.exists():
        write_file(fresh, args.rows)
    if not changes.exists() and not args.fresh_only:
        write_file(changes, min(args.changes, args.rows), changed_share=0.1)
    print(f"files made in {time.perf_counter() - started:.0f} s: {fresh}, {changes}")
    print(f"machine: {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}")
    runs = []
    try:
        if on_postgresql:
            asyncio.run(database(args.database_url, name, create=True))
        subprocess.run(  # noqa: S603
            [str(Path(sys.executable).with_name("vssid-broker")), "migrate"], env=env, check=True
        )
        scenarios = [("fresh", fresh, args.rows)]
        if not args.fresh_only:
            scenarios += [
                ("rerun", fresh, args.rows),
                ("changes", changes, min(args.changes, args.rows)),
            ]
        extra = () if args.workers is None else ("--workers", str(args.workers))
        for label, path, rows in scenarios:
            measured = timed_import(path, env, name, *extra)
            summary = measured.output.strip().splitlines()
            seconds = measured.seconds
            print(
                f"{label:<8} {rows:>11,} rows {seconds:8.1f} s {rows / seconds:>9,.0f} rows/s "
                f"peak RSS {measured.peak_rss_mib:>5} MiB | CPU {measured.cpu_seconds:.0f} s "
                f"+ PostgreSQL {measured.postgres_cpu_seconds:.0f} s | load "
                f"{measured.load_average[0]:.1f}->{measured.load_average[1]:.1f} | "
                + " | ".join(
                    summary[1:3] + [line for line in summary if line.startswith("seconds")]
                )
            )
            runs.append(
                {
                    "run": label,
                    "rows": rows,
                    "seconds": round(seconds, 2),
                    "rows_per_s": round(rows / seconds, 1),
                    "peak_rss_mib": measured.peak_rss_mib,
                    "cpu_s": round(measured.cpu_seconds, 1),
                    "postgres_cpu_s": round(measured.postgres_cpu_seconds, 1),
                    "load_average": list(measured.load_average),
                    "summary": summary[1:3],
                    "phases": [line for line in summary if line.startswith("seconds")],
                }
            )
    finally:
        if args.keep_files is None:
            shutil.rmtree(folder)
        if on_postgresql:
            with contextlib.suppress(OSError):  # the server gone: nothing to drop
                asyncio.run(database(args.database_url, name, create=False))
    if args.json:
        where = url.split("@")[-1].rpartition("/")[0] if on_postgresql else ""
        server = f"PostgreSQL at {where}" if on_postgresql else "SQLite"
        print(json.dumps({"database": server, "runs": runs}, ensure_ascii=False))


if __name__ == "__main__":
    main()
