"""Both key rotations on a populated database while people keep signing in (docs/privacy.md).

The real broker (`vssid-broker serve`, restarted as each step of the runbook says) and the
simulated VNeID (`vssid-broker vneid-sim`) run as processes on loopback; a load balancer in
front of the broker (`Balancer`, an httpx transport) sends each request to the process serving
now and lets the one being replaced finish what it holds, as a rolling restart does. The
database holds a few thousand bulk accounts (a share of them linked), browser and app sessions
and pending review cases, all sealed under the old key-encryption key and indexed under the
old blind-index key. Then, with several logins at once running all the time, of linked people
and of people signing in for the first time (linked by their citizen ID's blind index):

1. the processes move to the new KEK (the old one opening), and `keys rotate-kek` re-seals every
   value in small batches, as an operator runs it;
2. the processes run with the new KEK alone and the new blind-index key (the old one still
   matching), and `keys reindex-citizen-ids` re-indexes every row in small batches;
3. the processes run with the new keys alone.

Every login gets its account, the one holding that person's citizen ID; afterwards every sealed
value opens under the new KEK alone and holds what it held, every blind index is under the new
key, a second run of each command has nothing left, and sessions made before still work. On
whichever database the suite runs (SQLite, or PostgreSQL with VSSID_TEST_DATABASE_URL).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import random
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import GENEROUS_RATE_LIMITS
from tests.support.database import EXPLICIT_URL, new_database_name, own_database
from tests.support.flows import app_complete, app_until_redirect
from tests.support.live_server import free_port
from tests.support.rolling import (
    Balancer,
    Deployment,
    Keys,
    app_login,
    browser_login,
    log_of,
    ready,
    sim_registrations,
    started,
)
from tests.support.sealed import stored_values
from tests.test_cli import cli_env
from vssid_broker import schema, sealing
from vssid_broker.config import Settings
from vssid_broker.db import create_engine, session_factory
from vssid_broker.housekeeping import (
    INDEXED,
    KEK_SEALED,
    reindex_citizen_ids,
    reseal_under_current_key,
)
from vssid_broker.linking.models import FederatedLink
from vssid_broker.seeding.bulk import bhxh_code, seed_accounts
from vssid_broker.seeding.sessions_and_cases import seed_sessions_and_cases
from vssid_broker.vneid_sim.citizens import Citizen, generate_citizens

pytestmark = pytest.mark.timeout(300)  # a minute on 2 cores shared with other work

ACCOUNTS = 2_000
CITIZENS = 400
"""The first bulk accounts belong to the simulator's generated citizens: they can sign in."""
BATCH = "50"
"""Rows per transaction of each command: small, so the rotations take a while."""
AT_ONCE = 4
"""Logins in flight at any moment."""
FIRST_AT_THE_END = 24
"""People kept for their first login after the switch-over: found by the new index alone."""


def new_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


# --- the people signing in ------------------------------------------------------------------------
@dataclass
class Traffic:
    """`AT_ONCE` logins at a time, alternately of a linked person and of one signing in for the
    first time, by browser and by app, each checked to land on its own account."""

    balancer: Balancer
    linked: list[Citizen]
    first_timers: list[Citizen]
    accounts: dict[str, str]
    """The BHXH code of each person's account."""
    step: str = "before"
    done: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    async def sign_in(self, person: Citizen, channel: str) -> None:
        step = self.step
        try:
            login = app_login if channel == "app" else browser_login
            code = (await login(self.balancer, person.citizen_id)).bhxh_code
        except (httpx.HTTPError, AssertionError) as error:
            # Which person by their position only: never a citizen ID in a report.
            who = f"person #{list(self.accounts).index(person.citizen_id)}"
            self.failures.append(f"{step}: {channel} login of {who}: {str(error)[:300]}")
            return
        if code != self.accounts[person.citizen_id]:
            self.failures.append(f"{step}: {channel} login landed on another account")
            return
        self.done[step] += 1
        if step != self.step:
            self.done[f"{step} → {self.step}"] += 1

    async def keep_going(self, stop: asyncio.Event) -> None:
        async def one_at_a_time(lane: int) -> None:
            rng = random.Random(lane)
            turn = 0
            while not stop.is_set():
                channel = ("app", "browser")[(turn + lane) % 2]
                if turn % 2 and self.first_timers:
                    person = self.first_timers.pop()
                    await self.sign_in(person, channel)
                    self.linked.append(person)
                else:
                    await self.sign_in(rng.choice(self.linked), channel)
                turn += 1

        await asyncio.gather(*(one_at_a_time(lane) for lane in range(AT_ONCE)))


# --- what the database holds ----------------------------------------------------------------------
async def opened_values(engine: AsyncEngine, keys: Keys) -> dict[str, dict[bytes, str]]:
    """Every sealed value, opened with these keys, by column and by what it is bound to.
    Raises if one does not open."""
    citizen_ids, secrets = keys.citizen_ids(), keys.secrets()
    held: dict[str, dict[bytes, str]] = {}
    async with engine.connect() as connection:
        session = connection  # stored_values takes anything with execute()
        for sealed in KEK_SEALED:
            values = await stored_values(session, sealed.place, order_by=sealed.key)  # type: ignore[arg-type]
            held[sealed.name] = {
                binding.associated_data: (
                    citizen_ids.open(value, binding)
                    if sealed.citizen_id
                    else secrets.open(value, binding)
                )
                for value, binding, _ in values
            }
    return held


async def sealed_prefixes(engine: AsyncEngine) -> dict[str, Counter[str]]:
    """By column, how many values are sealed under each key id."""
    found: dict[str, Counter[str]] = {}
    async with engine.connect() as connection:
        for sealed in KEK_SEALED:
            values = await stored_values(connection, sealed.place, order_by=sealed.key)  # type: ignore[arg-type]
            found[sealed.name] = Counter(value.split(".")[1] for value, _, _ in values)
    return found


async def stale_indexes(engine: AsyncEngine, keys: Keys) -> dict[str, int]:
    """By table, the rows whose blind index is not their citizen ID's under the current key."""
    citizen_ids = keys.citizen_ids()
    stale: dict[str, int] = {}
    async with engine.connect() as connection:
        for place in INDEXED:
            rows = await stored_values(connection, place, "citizen_id_index")  # type: ignore[arg-type]
            stale[place.table] = sum(
                citizen_ids.index(citizen_ids.open(value, binding)) != index
                for value, binding, (index,) in rows
            )
    return stale


@contextlib.asynccontextmanager
async def scratch_database(tmp_path: Path) -> AsyncIterator[str]:
    """A database of this test's own: the suite's keeps the suite's keys."""
    explicit = os.environ.get(EXPLICIT_URL)
    if explicit and explicit.startswith("postgresql"):
        async with own_database(explicit, new_database_name("rotation")) as url:
            yield url
    else:
        yield f"sqlite+aiosqlite:///{tmp_path / 'rotation.sqlite3'}"


# --- the test -------------------------------------------------------------------------------------
async def test_both_key_rotations_on_a_populated_database_while_people_sign_in(
    tmp_path: Path, broker_settings: Settings, citizen_id_keys: sealing.CitizenIdKeys
) -> None:
    assert broker_settings.key_encryption_key and broker_settings.blind_index_key
    old_kek = broker_settings.key_encryption_key.get_secret_value()
    old_index = broker_settings.blind_index_key.get_secret_value()
    new_kek, new_index = new_key(), new_key()
    before = Keys(old_kek, old_index)
    swapped = Keys(new_kek, old_index, previous_keks=(old_kek,))
    reindexing = Keys(new_kek, new_index, previous_index=(old_index,))
    after = Keys(new_kek, new_index)

    citizens = generate_citizens(CITIZENS)
    accounts = {c.citizen_id: bhxh_code(i, c.citizen_id[:3]) for i, c in enumerate(citizens)}
    can_sign_in = [c for c in citizens if c.level == 2 and not c.locked]
    random.Random(0).shuffle(can_sign_in)
    kept_for_the_end = can_sign_in[:FIRST_AT_THE_END]
    linked_first, first_timers = can_sign_in[FIRST_AT_THE_END:40], can_sign_in[40:]

    balancer = Balancer(free_port())
    sim_port = free_port()
    sim = f"http://127.0.0.1:{sim_port}"
    async with scratch_database(tmp_path) as url:
        engine = create_engine(url)
        deployment: Deployment | None = None
        try:
            # A populated database, under the old keys (the suite's, installed in this process).
            await schema.upgrade_engine(engine)
            await seed_accounts(engine, ACCOUNTS, vneid_citizens=CITIZENS, provider=sim)
            seeded = await seed_sessions_and_cases(
                engine, before.secrets(), browser_sessions=500, app_sessions=500,
                review_cases=200, provider=sim,
            )  # fmt: skip
            assert seeded.review_cases == 200
            sim_env = cli_env(
                tmp_path,
                VNEID_SIM_ISSUER=sim,
                VNEID_SIM_GENERATED_CITIZENS=str(CITIZENS),
                VNEID_SIM_CLIENTS=json.dumps(sim_registrations(balancer.public)),
            )
            base_env = cli_env(
                tmp_path,
                VSSID_DATABASE_URL=url,
                VSSID_VNEID_ISSUER=sim,
                VSSID_PUBLIC_BASE_URL=balancer.public,
                VSSID_LOG_LEVEL="WARNING",
                **{f"VSSID_{name.upper()}": value for name, value in GENEROUS_RATE_LIMITS.items()},
            )
            deployment = Deployment(balancer, base_env, tmp_path)
            sim_args = ("vneid-sim", "--port", str(sim_port))
            sim_process = deployment.stack.enter_context(
                started(*sim_args, env=sim_env, cwd=tmp_path)
            )
            await ready(
                sim_process, f"{sim}/.well-known/openid-configuration", log_of(sim_args, tmp_path)
            )
            await deployment.roll_out(before)

            traffic = Traffic(balancer, [], first_timers, accounts)
            await asyncio.gather(*(traffic.sign_in(p, "app") for p in linked_first))
            traffic.linked.extend(linked_first)
            browser = balancer.client()  # sessions of before, used after
            code = (await browser_login(balancer, linked_first[0].citizen_id, browser)).bhxh_code
            cookies = browser.cookies
            async with balancer.client() as app:
                redirect = await app_until_redirect(
                    app, balancer.public, linked_first[1].citizen_id
                )
                refresh_token = (await app_complete(app, balancer.public, redirect)).json()[
                    "refresh_token"
                ]
            plain_before = await opened_values(engine, before)
            links_before = await count(engine, FederatedLink)

            first_timers_at_start = len(first_timers)
            stop = asyncio.Event()
            logins = asyncio.create_task(traffic.keep_going(stop))
            try:
                # KEK, step 2 (the swap) and 3 (re-seal what is stored).
                traffic.step = "swap to the new KEK"
                await deployment.roll_out(swapped)
                traffic.step = "keys rotate-kek"
                rotated = await deployment.run(
                    swapped, "keys", "rotate-kek", "--batch-size", BATCH, stdin=new_kek + "\n"
                )
                # KEK step 4 (the old one dropped) with the blind-index key's step 1, then 2.
                traffic.step = "new KEK alone, new blind-index key"
                await deployment.roll_out(reindexing)
                traffic.step = "keys reindex-citizen-ids"
                reindexed = await deployment.run(
                    reindexing, "keys", "reindex-citizen-ids", "--batch-size", BATCH
                )
                traffic.step = "new keys alone"
                await deployment.roll_out(after)
                await asyncio.gather(*(traffic.sign_in(p, "browser") for p in kept_for_the_end))
            finally:
                stop.set()
                await logins
            assert traffic.failures == [], "\n".join(traffic.failures[:20])
            for step in ("keys rotate-kek", "keys reindex-citizen-ids", "new keys alone"):
                assert traffic.done[step] > 0, f"no login while: {step} ({traffic.done})"
            assert "re-encrypted" in rotated and "accounts: " in reindexed

            # Nothing half-written: every value opens under the new KEK alone, holds what it
            # held, and is sealed under it; every index is under the new key.
            plain_after = await opened_values(engine, after)
            for column, values in plain_before.items():
                kept = {bound: plain_after[column].get(bound) for bound in values}
                assert kept == values, f"{column}: a value changed or went missing"
            new_kid = sealing.key_id(base64.urlsafe_b64decode(new_kek))
            for column, kids in (await sealed_prefixes(engine)).items():
                assert set(kids) <= {new_kid}, column
            assert await stale_indexes(engine, after) == {"accounts": 0, "review_cases": 0}
            first_logins = first_timers_at_start - len(traffic.first_timers) + FIRST_AT_THE_END
            assert await count(engine, FederatedLink) == links_before + first_logins
            # A second run of each finds nothing left.
            sessions_of = session_factory(engine)
            again = await reseal_under_current_key(
                sessions_of, after.citizen_ids(), after.secrets()
            )
            assert (sum(again.rows.values()), again.refused) == (0, {})
            reindexed_again = await reindex_citizen_ids(sessions_of, after.citizen_ids())
            assert (sum(reindexed_again.rows.values()), reindexed_again.refused) == (0, {})
            # Sessions made before both rotations still work.
            async with balancer.client() as browser:
                browser.cookies = cookies
                page = await browser.get(f"{balancer.public}/account")
            assert page.status_code == 200 and code in page.text
            async with balancer.client() as app:
                refreshed = await app.post(
                    f"{balancer.public}/api/v1/auth/token",
                    data={"grant_type": "refresh_token", "refresh_token": refresh_token},
                )
            assert refreshed.status_code == 200, refreshed.text
        finally:
            if deployment is not None:
                deployment.close()
                deployment.stack.close()
            await engine.dispose()


async def count(engine: AsyncEngine, model: type[FederatedLink]) -> int:
    async with engine.connect() as connection:
        return int(await connection.scalar(select(func.count()).select_from(model)) or 0)
