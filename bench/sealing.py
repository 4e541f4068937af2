"""What sealing citizen IDs costs: per operation, per login, and in the bulk seeder.

    python3 bench/sealing.py            (writes bench/results/sealing.json)

A login touches the sealing keys a fixed number of times (counted from the code, see
`LOGIN_WORK`): the figures here are the CPU those operations take on this machine (process CPU
time, so neighbours on a shared machine count little), to compare with a login's whole broker
CPU in docs/performance.md. Seal and open are also measured in the format before values were
bound to their row (`…_unbound`), for the cost of the binding. The bulk-seed figure is the share of
`vssid-broker seed --accounts N` spent sealing and indexing (SQLite, one process).
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import sys
import tempfile
import time
import timeit
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CITIZEN_ID = "001085012345"
BHXH_CODE = "0112345678"
LOGIN_WORK = {
    # Linking rule 2 (first login): look the citizen ID up by its blind index, open the found
    # account's sealed ID, seal it for the new link; three audit events (link, consent, login).
    "first login (auto-link)": {"index": 1, "open": 1, "seal": 1, "audit chain hash": 3},
    # Rule 1 (every later login): the link and its account are read, each opens its sealed
    # ID; one audit event.
    "later login (linked)": {"index": 0, "open": 2, "seal": 0, "audit chain hash": 1},
    # `/api/v1/me` and every app API call read the account with the token's session check.
    "API call (/api/v1/me)": {"index": 0, "open": 1, "seal": 0, "audit chain hash": 0},
}


def per_call_us(run: Any, number: int = 20_000) -> float:
    # CPU time of this process: on a shared machine wall time measures the neighbours.
    best = min(timeit.repeat(run, number=number, repeat=7, timer=time.process_time))
    return best / number * 1e6


async def bulk_seed_seconds(accounts: int) -> dict[str, float]:
    from vssid_broker import schema
    from vssid_broker.db import create_engine
    from vssid_broker.seeding.bulk import seed_accounts

    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp}/bulk.sqlite3")
        await schema.upgrade_engine(engine)
        report = await seed_accounts(engine, accounts, vneid_citizens=1_000)
        await engine.dispose()
    return {"accounts": accounts, "seconds": round(report.seconds, 2)}


def main() -> None:
    from vssid_broker import sealing
    from vssid_broker.accounts.models import ACCOUNT_CITIZEN_ID

    keys = sealing.CitizenIdKeys.from_secrets(os.urandom(32), [], os.urandom(32))
    sealing.install(keys)
    # Each value is bound to its row: the binding is made per call, as every caller makes it.
    sealed = keys.seal(CITIZEN_ID, ACCOUNT_CITIZEN_ID.of(BHXH_CODE))
    costs = {
        "seal": per_call_us(lambda: keys.seal(CITIZEN_ID, ACCOUNT_CITIZEN_ID.of(BHXH_CODE))),
        "open": per_call_us(lambda: keys.open(sealed, ACCOUNT_CITIZEN_ID.of(BHXH_CODE))),
        "index": per_call_us(lambda: keys.index(CITIZEN_ID)),
    }
    # The format before values were bound (a constant associated data), for comparison.
    unbound = keys.seal_unbound(CITIZEN_ID)
    before_binding = {
        "seal": per_call_us(lambda: keys.seal_unbound(CITIZEN_ID)),
        "open": per_call_us(lambda: keys.open_unbound(unbound)),
    }
    from vssid_broker.audit.chain import GENESIS, entry_hash

    at = datetime.now(UTC)
    chain_key = os.urandom(32)
    costs["audit chain hash"] = per_call_us(
        lambda: entry_hash(
            GENESIS, occurred_at=at, event_type="login", outcome="succeeded", account_id=7,
            actor="system", request_id="0123456789abcdef",
            details={"channel": "app", "acr": "LoA2", "linked_now": False}, key=chain_key,
        )
    )  # fmt: skip
    per_login = {
        name: round(sum(costs[op] * times for op, times in work.items()), 1)
        for name, work in LOGIN_WORK.items()
    }
    accounts = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    seed = asyncio.run(bulk_seed_seconds(accounts))
    seal_share_s = accounts * (costs["seal"] + costs["index"]) / 1e6
    results = {
        "command": " ".join(["python3", "bench/sealing.py", *sys.argv[1:]]),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()},
        "microseconds_per_operation": {k: round(v, 2) for k, v in costs.items()},
        "microseconds_per_operation_unbound": {k: round(v, 2) for k, v in before_binding.items()},
        "microseconds_per_login": per_login,
        "bulk_seed_sqlite": seed | {"of_which_sealing_seconds": round(seal_share_s, 2)},
    }
    out = ROOT / "bench" / "results" / "sealing.json"
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(results, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
