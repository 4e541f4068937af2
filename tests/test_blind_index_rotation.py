"""Rotating the blind-index key on a database in use (docs/privacy.md): the processes index
under the new key and still find rows under the old one, `keys reindex-citizen-ids` rewrites
the rows in batches (a run cut short is finished by running it again), then the old key is
dropped. Linked and not-yet-linked people sign in at every stage. On whichever database the
suite runs (SQLite, or PostgreSQL with VSSID_TEST_DATABASE_URL)."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest
from sqlalchemy import update

from tests.conftest import Stack
from tests.support.flows import app_complete, app_until_redirect, browser_login
from tests.support.http import AsyncClient
from tests.support.sealed import stored_values
from vssid_broker.accounts.models import Account
from vssid_broker.housekeeping import INDEXED, reindex_citizen_ids
from vssid_broker.linking.models import ReviewCase
from vssid_broker.sealing import CitizenIdKeys, install
from vssid_broker.seeding.demo_cases import seed_demo_cases

PEOPLE = {
    "001085012345": "Nguyễn Văn An",
    "046075001122": "Bùi Văn Khoa",
    "079086010203": "Trương Minh Quân",
    "001192020304": "Phan Thị Thu Hằng",
    "022070030405": "Đặng Văn Hải",
}
AN, KHOA, QUAN, HANG, HAI = PEOPLE
DUNG = "031188004567"
"""Her record has no citizen ID: her login opens (then finds) a review case, by blind index."""


class CutShort(Exception):
    """The re-indexing process dying after its first batch."""


async def signs_in(stack: Stack, citizen_id: str) -> None:
    async with AsyncClient() as browser:
        callback = await browser_login(browser, stack.broker, citizen_id)
        assert callback.status_code == 302, callback.text
        account = await browser.get(f"{stack.broker}/account")
    assert account.status_code == 200 and PEOPLE[citizen_id] in account.text


async def finds_her_review_case(stack: Stack) -> None:
    async with AsyncClient() as browser:
        refused = await browser_login(browser, stack.broker, DUNG)
    assert '<code id="error-code">link_under_review</code>' in refused.text
    assert await stack.count(ReviewCase) == 2  # found, not opened a second time


async def indexes_by_key(stack: Stack, keys: CitizenIdKeys) -> dict[str, tuple[int, int]]:
    """Per table: how many rows are indexed under the current key, and how many are not."""
    counted: dict[str, tuple[int, int]] = {}
    async with stack.db() as session:
        for place in INDEXED:
            rows = await stored_values(session, place, "citizen_id_index")
            current = sum(
                1 for sealed, binding, (index,) in rows
                if keys.index(keys.open(sealed, binding)) == index
            )  # fmt: skip
            counted[place.table] = (current, len(rows) - current)
    return counted


async def test_logins_succeed_at_every_stage_of_a_blind_index_key_rotation(
    stack: Stack, citizen_id_keys: CitizenIdKeys
) -> None:
    old = citizen_id_keys
    new_key = os.urandom(32)
    during = replace(old, index_key=new_key, previous_index_keys=(old.index_key,))
    after = replace(old, index_key=new_key)
    async with stack.db.begin() as session:
        assert await seed_demo_cases(session, issuer=stack.sim, now=stack.clock()) == 2
    await signs_in(stack, AN)  # linked before the rotation
    try:
        # 1. Every process restarted with the new key and the old one as previous.
        install(during)
        assert (await indexes_by_key(stack, during))["accounts"][0] == 0
        await signs_in(stack, AN)  # linked
        await signs_in(stack, KHOA)  # not yet linked: found by the old index
        await finds_her_review_case(stack)

        # 2. Re-indexing, cut short after its first batch: half the rows under each key.
        def die_after_the_first_batch(table: str, read: int, rewritten: int) -> None:
            raise CutShort(table)

        with pytest.raises(CutShort):
            await reindex_citizen_ids(stack.db, during, batch=3, progress=die_after_the_first_batch)
        moved, left = (await indexes_by_key(stack, during))["accounts"]
        assert moved >= 3 and left > 0
        await signs_in(stack, AN)
        await signs_in(stack, QUAN)
        await finds_her_review_case(stack)

        # 3. Run again: it finishes; nothing is left under the old key.
        done = await reindex_citizen_ids(stack.db, during, batch=3)
        assert done.rows["accounts"] > 0 and done.rows["review_cases"] > 0
        assert all(left == 0 for _, left in (await indexes_by_key(stack, during)).values())
        assert sum((await reindex_citizen_ids(stack.db, during)).rows.values()) == 0

        # 4. The old key dropped from every process.
        install(after)
        await signs_in(stack, AN)
        await signs_in(stack, KHOA)
        await signs_in(stack, HANG)
        await finds_her_review_case(stack)
    finally:
        back = replace(old, previous_index_keys=(new_key,))
        await reindex_citizen_ids(stack.db, back)  # the suite's key on every row again
        install(old)


async def test_without_the_previous_key_rows_not_yet_reindexed_are_not_found(
    stack: Stack, citizen_id_keys: CitizenIdKeys
) -> None:
    """Why the previous key must stay configured until re-indexing is done: without it, a
    person whose row still carries the old index is taken for someone without an account."""
    install(replace(citizen_id_keys, index_key=os.urandom(32)))
    try:
        async with AsyncClient() as browser:
            refused = await browser_login(browser, stack.broker, HAI)
        assert refused.status_code != 302
    finally:
        install(citizen_id_keys)


async def test_the_events_tied_to_a_person_move_to_the_new_key_and_stay_in_their_export(
    stack: Stack, citizen_id_keys: CitizenIdKeys
) -> None:
    """A refused login names no account: the person's export finds it by their citizen ID's
    blind index, which re-indexing moves with their account, so it is still found once the
    old key is dropped."""
    old = citizen_id_keys
    new_key = os.urandom(32)
    during = replace(old, index_key=new_key, previous_index_keys=(old.index_key,))
    an = Account.bhxh_code == "0112345678"
    async with stack.db.begin() as session:
        await session.execute(update(Account).where(an).values(status="locked"))
    async with AsyncClient() as browser:
        refused = await browser_login(browser, stack.broker, AN)
    assert '<code id="error-code">account_not_active</code>' in refused.text
    async with stack.db.begin() as session:
        await session.execute(update(Account).where(an).values(status="active"))
    try:
        install(during)
        await reindex_citizen_ids(stack.db, during)
        install(replace(old, index_key=new_key))
        async with AsyncClient() as app:
            signed_in = await app_complete(
                app, stack.broker, await app_until_redirect(app, stack.broker, AN)
            )
            bearer = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}
            held = (await app.get(f"{stack.broker}/api/v1/me/export", headers=bearer)).json()
        assert ("login", "account_not_active") in [
            (e["event_type"], e["outcome"]) for e in held["audit_events"]
        ]
    finally:
        back = replace(old, previous_index_keys=(new_key,))
        await reindex_citizen_ids(stack.db, back)
        install(old)
