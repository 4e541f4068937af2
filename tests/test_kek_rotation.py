"""`vssid-broker keys rotate-kek` on a database in use (docs/privacy.md, breach runbook): every
value sealed under the key-encryption key moves to the new key in batches, a run cut short is
finished by running it again, logins keep working throughout, and afterwards the old key opens
nothing. On whichever database the suite runs (SQLite, or PostgreSQL with
VSSID_TEST_DATABASE_URL)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from joserfc.jwk import OctKey

from tests.conftest import Stack
from tests.support.flows import browser_login, csrf_token_of
from tests.support.http import AsyncClient
from tests.support.sealed import Stored, stored_values
from tests.support.staff import add_staff
from vssid_broker import sealing
from vssid_broker.admin.models import StaffRole
from vssid_broker.housekeeping import KEK_SEALED, reseal_under_current_key
from vssid_broker.sealing import CitizenIdKeyError, CitizenIdKeys
from vssid_broker.sessions.keys import KeyEncryptionKeyError, KeyEncryptionKeys

AN, KHOA = "001085012345", "046075001122"
NAMES = {AN: "Nguyễn Văn An", KHOA: "Bùi Văn Khoa"}


class CutShort(Exception):
    """The rotation's process dying after its first batch."""


async def sealed_values(stack: Stack) -> dict[str, list[Stored]]:
    """What every sealed column holds, as stored, with what each value is bound to."""
    async with stack.db() as session:
        return {
            sealed.name: await stored_values(session, sealed.place, order_by=sealed.key)
            for sealed in KEK_SEALED
        }


def opened(
    held: dict[str, list[Stored]], citizen_ids: CitizenIdKeys, secrets: KeyEncryptionKeys
) -> dict[str, list[str]]:
    by_kind = {sealed.name: sealed.citizen_id for sealed in KEK_SEALED}
    return {
        name: [
            citizen_ids.open(value, binding) if by_kind[name] else secrets.open(value, binding)
            for value, binding, _ in values
        ]
        for name, values in held.items()
    }


async def run_with(stack: Stack, citizen_ids: CitizenIdKeys, secrets: KeyEncryptionKeys) -> None:
    """Every broker process restarted with these keys (here: the one the suite runs)."""
    sealing.install(citizen_ids)
    stack.ctx.keys.encryption_keys = secrets
    async with stack.db() as session:  # re-read (and re-open) the signing keys now
        await stack.ctx.keys.refresh(session, stack.clock(), force=True)


async def signs_in(stack: Stack, citizen_id: str) -> None:
    async with AsyncClient() as browser:
        callback = await browser_login(browser, stack.broker, citizen_id)
        assert callback.status_code == 302, callback.text
        account = await browser.get(f"{stack.broker}/account")
    assert account.status_code == 200 and NAMES[citizen_id] in account.text


@dataclass
class Populated:
    stack: Stack
    other_keks: list[bytes] = field(default_factory=list)
    """Keys a test moved rows to: the suite's key is put back on every row at the end."""


@pytest.fixture
async def populated(stack: Stack, citizen_id_keys: CitizenIdKeys) -> AsyncIterator[Populated]:
    """The demo seed, a staff member with a sealed second factor, and browser sessions holding
    VNeID's sealed ID token: AN linked (two logins), KHOA not yet."""
    suite = stack.ctx.keys.encryption_keys
    await add_staff(stack, "reviewer", StaffRole.REVIEWER)
    await signs_in(stack, AN)
    await signs_in(stack, AN)
    populated = Populated(stack)
    yield populated
    others = [OctKey.import_key(raw) for raw in populated.other_keks]
    back_ids = CitizenIdKeys.from_secrets(
        suite.current.raw_value, populated.other_keks, citizen_id_keys.index_key
    )
    back_secrets = KeyEncryptionKeys(suite.current, others)
    await run_with(stack, back_ids, back_secrets)
    await reseal_under_current_key(stack.db, back_ids, back_secrets)
    await run_with(stack, citizen_id_keys, suite)


async def test_rotate_kek_cut_short_then_resumed_moves_everything_and_logins_keep_working(
    populated: Populated, citizen_id_keys: CitizenIdKeys
) -> None:
    stack = populated.stack
    old = stack.ctx.keys.encryption_keys
    old_raw = old.current.raw_value
    new = OctKey.import_key(os.urandom(32))
    # Both keys open, the new one seals: what `rotate-kek` works with, and what the processes
    # run with during a rotation on a live system (VSSID_CITIZEN_ID_PREVIOUS_KEKS = [old]).
    both_ids = CitizenIdKeys.from_secrets(new.raw_value, [old_raw], citizen_id_keys.index_key)
    both_secrets = KeyEncryptionKeys(new, [old.current])
    populated.other_keks.append(new.raw_value)

    before = await sealed_values(stack)
    assert before["browser_sessions.vneid_id_token_sealed"], "no browser session holds a token"
    assert before["staff_users.totp_secret_sealed"] and before["signing_keys.private_jwk_encrypted"]
    plain_before = opened(before, citizen_id_keys, old)

    def die_after_the_first_batch(column: str, done: int, left: int) -> None:
        raise CutShort(column)

    await run_with(stack, both_ids, both_secrets)
    with pytest.raises(CutShort):
        await reseal_under_current_key(
            stack.db, both_ids, both_secrets, batch=1, progress=die_after_the_first_batch
        )
    halfway = await sealed_values(stack)
    assert halfway != before and any(
        value in before[name] for name, values in halfway.items() for value in values
    ), "the cut-short run moved nothing, or everything"
    # Half-way: a linked person and one not yet linked both sign in.
    await signs_in(stack, AN)
    await signs_in(stack, KHOA)

    progress: list[tuple[str, int, int]] = []
    await reseal_under_current_key(
        stack.db, both_ids, both_secrets, batch=2, progress=lambda *p: progress.append(p)
    )
    assert {name for name, _, _ in progress} == {sealed.name for sealed in KEK_SEALED}
    after = await sealed_values(stack)

    # Only the new key now: every value opens, and is what it was (plus KHOA's new rows).
    new_ids = CitizenIdKeys.from_secrets(new.raw_value, [], citizen_id_keys.index_key)
    new_secrets = KeyEncryptionKeys(new)
    plain_after = opened(after, new_ids, new_secrets)
    for name, values in plain_before.items():
        if name != "browser_sessions.vneid_id_token_sealed":  # ID tokens: new logins added
            assert set(values) <= set(plain_after[name]), name
    assert set(plain_before["browser_sessions.vneid_id_token_sealed"]) <= set(
        plain_after["browser_sessions.vneid_id_token_sealed"]
    )
    # The old key alone opens nothing any more.
    old_alone_ids = CitizenIdKeys.from_secrets(old_raw, [], citizen_id_keys.index_key)
    for sealed in KEK_SEALED:
        for value in after[sealed.name]:
            with pytest.raises(CitizenIdKeyError if sealed.citizen_id else KeyEncryptionKeyError):
                opened({sealed.name: [value]}, old_alone_ids, old)
    # Run again: nothing is left to move.
    again = await reseal_under_current_key(stack.db, new_ids, new_secrets)
    assert sum(again.rows.values()) == 0

    await run_with(stack, new_ids, new_secrets)
    await signs_in(stack, AN)
    await signs_in(stack, KHOA)
    async with AsyncClient() as browser:  # and a session's sealed ID token still opens
        await browser_login(browser, stack.broker, AN)
        account = await browser.get(f"{stack.broker}/account")
        logout = await browser.post(
            f"{stack.broker}/auth/logout",
            data={"csrf_token": csrf_token_of(account.text)},
            headers={"Origin": stack.settings.public_base_url},
        )
        # The ID token goes to VNeID in a form the broker's page posts, never in a URL.
        assert logout.status_code == 303
        to_vneid = await browser.get(f"{stack.broker}{logout.headers['location']}")
        assert f'action="{stack.sim}' in to_vneid.text
        assert 'name="id_token_hint"' in to_vneid.text
