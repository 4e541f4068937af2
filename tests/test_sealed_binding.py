"""Every sealed value is bound to its table, column and row (docs/privacy.md): one copied to
another row, column or table is refused where it is read, with a defined answer and one log
line; `keys reseal` binds the values sealed before, in resumable batches, and will not bind a
value that is not its row's. On whichever database the suite runs (SQLite, or PostgreSQL with
VSSID_TEST_DATABASE_URL)."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from joserfc.jwk import OctKey
from prometheus_client import REGISTRY
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import Stack
from tests.support.flows import app_complete, app_until_redirect, browser_login
from tests.support.http import AsyncClient
from tests.support.sealed import Stored, stored_values
from tests.support.staff import add_staff
from vssid_broker import sealing
from vssid_broker.accounts.models import ACCOUNT_CITIZEN_ID, Account
from vssid_broker.admin.models import STAFF_TOTP_SECRET, StaffRole
from vssid_broker.housekeeping import KEK_SEALED, reseal_under_current_key
from vssid_broker.linking.models import LINK_CITIZEN_ID, FederatedLink
from vssid_broker.sealing import CitizenIdKeys, SealedValueRefused, blind_index
from vssid_broker.seeding.demo_cases import seed_demo_cases
from vssid_broker.sessions.keys import KeyEncryptionKeys
from vssid_broker.sessions.models import SESSION_VNEID_ID_TOKEN

AN, KHOA = "001085012345", "046075001122"
AN_CODE, KHOA_CODE = "0112345678", "0146075001"


class CutShort(Exception):
    """The re-sealing process dying after its first batch."""


async def account_id_of(session: AsyncSession, citizen_id: str) -> int:
    account_id = await session.scalar(
        select(Account.id).where(Account.citizen_id_index == blind_index(citizen_id))
    )
    assert account_id is not None
    return account_id


async def copy_sealed_id(stack: Stack, source: str, target: str) -> int:
    """What an attacker with write access to the table does: the sealed citizen ID of the
    account of `source` put on the account of `target` (its blind index left alone). Returns
    the target account's id."""
    async with stack.db.begin() as session:
        source_id = await account_id_of(session, source)
        target_id = await account_id_of(session, target)
        sealed = await session.scalar(
            select(Account.citizen_id_sealed).where(Account.id == source_id)
        )
        await session.execute(
            update(Account).where(Account.id == target_id).values(citizen_id_sealed=sealed)
        )
    return target_id


def refusal_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "sealed value refused" in r.getMessage()]


def assert_says_only_where(record: logging.LogRecord, place: str, row_id: int) -> None:
    """One line naming the place and the row's id: no traceback, no identifier."""
    message = record.getMessage()
    assert record.levelno == logging.ERROR and record.exc_info is None
    assert f"{place} (id {row_id})" in message and "another row" in message
    for identifier in (AN, KHOA, AN_CODE, KHOA_CODE):
        assert identifier not in message


async def test_a_citizen_id_copied_to_another_account_is_refused_by_the_api(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    async with AsyncClient() as app:
        signed_in = await app_complete(
            app, stack.broker, await app_until_redirect(app, stack.broker, AN)
        )
        assert signed_in.status_code == 200, signed_in.text
        headers = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}
        # (No call before the copy: on PostgreSQL a process keeps the account's row of a call,
        # and sees an UPDATE made outside the broker only when its notification arrives.)
        an_id = await copy_sealed_id(stack, KHOA, AN)
        with caplog.at_level(logging.ERROR):
            me = await app.get(f"{stack.broker}/api/v1/me", headers=headers)

    assert me.status_code == 500
    assert me.headers["content-type"] == "application/problem+json"
    problem = me.json()
    assert problem["code"] == "stored_data_refused" and not problem["title"].isascii()
    assert KHOA not in me.text and AN not in me.text
    (line,) = refusal_lines(caplog)
    assert_says_only_where(line, "accounts.citizen_id_sealed", an_id)


async def test_a_citizen_id_copied_to_another_account_is_refused_on_the_persons_page(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    async with AsyncClient() as browser:
        assert (await browser_login(browser, stack.broker, AN)).status_code == 302
        an_id = await copy_sealed_id(stack, KHOA, AN)
        with caplog.at_level(logging.ERROR):
            # The download of what is held about them: the one page that shows the citizen ID.
            page = await browser.get(f"{stack.broker}/account/export")

    assert page.status_code == 500 and page.headers["content-type"].startswith("text/html")
    assert '<code id="error-code">stored_data_refused</code>' in page.text
    assert "kiểm tra toàn vẹn" in page.text
    assert KHOA not in page.text and "Bùi Văn Khoa" not in page.text
    (line,) = refusal_lines(caplog)
    assert_says_only_where(line, "accounts.citizen_id_sealed", an_id)


async def test_a_citizen_id_copied_to_another_table_is_refused(stack: Stack) -> None:
    """The account's sealed ID put on the same person's link (the same owner, another
    table), and the link's put on the account: neither opens there."""
    async with AsyncClient() as browser:
        assert (await browser_login(browser, stack.broker, AN)).status_code == 302
    async with stack.db.begin() as session:
        account_id = await account_id_of(session, AN)
        account_value = await session.scalar(
            select(Account.citizen_id_sealed).where(Account.id == account_id)
        )
        link_value = await session.scalar(
            select(FederatedLink.citizen_id_sealed).where(FederatedLink.account_id == account_id)
        )
        await session.execute(
            update(FederatedLink)
            .where(FederatedLink.account_id == account_id)
            .values(citizen_id_sealed=account_value)
        )
        await session.execute(
            update(Account).where(Account.id == account_id).values(citizen_id_sealed=link_value)
        )
    async with stack.db() as session:
        link = await session.scalar(select(FederatedLink))
        account = await session.get_one(Account, account_id)
    assert link is not None
    with pytest.raises(SealedValueRefused, match=r"federated_links\.citizen_id_sealed"):
        _ = link.citizen_id
    with pytest.raises(SealedValueRefused, match=r"accounts\.citizen_id_sealed"):
        _ = account.citizen_id


PLACES = [sealed.place for sealed in KEK_SEALED]


@pytest.mark.parametrize("place", PLACES, ids=[place.name for place in PLACES])
def test_a_sealed_value_opens_only_in_its_own_place_and_row(
    place: sealing.SealedPlace, citizen_id_keys: CitizenIdKeys
) -> None:
    secrets = KeyEncryptionKeys(OctKey.import_key(os.urandom(32)))
    owner = ["7", "subject-7"][: len(place.owner)]
    home = place.of(*owner)
    elsewhere = [other.of(*["7", "subject-7"][: len(other.owner)]) for other in PLACES]
    another_row = place.of(*["8", "subject-8"][: len(place.owner)])
    for keys in (citizen_id_keys, secrets):
        sealed = keys.seal(AN, home)
        assert keys.open(sealed, home) == AN
        for binding in [another_row, *(b for b in elsewhere if b.place != place)]:
            with pytest.raises(SealedValueRefused):
                keys.open(sealed, binding)


def test_an_unbound_value_is_refused_once_they_are_no_longer_opened(
    citizen_id_keys: CitizenIdKeys,
) -> None:
    """After `keys reseal`, `VSSID_OPEN_UNBOUND_SEALED_VALUES=false`: a value sealed the old
    way (copied back from an old backup, say) opens nowhere."""
    unbound = citizen_id_keys.seal_unbound(AN)
    row = ACCOUNT_CITIZEN_ID.of(AN_CODE)
    assert citizen_id_keys.open(unbound, row) == AN  # the upgrade's transition
    strict = replace(citizen_id_keys, unbound_accepted=False)
    with pytest.raises(SealedValueRefused, match="VSSID_OPEN_UNBOUND_SEALED_VALUES is off"):
        strict.open(unbound, row)
    secrets = KeyEncryptionKeys(OctKey.import_key(os.urandom(32)), unbound_accepted=False)
    with pytest.raises(SealedValueRefused, match="VSSID_OPEN_UNBOUND_SEALED_VALUES is off"):
        secrets.open(secrets.seal_unbound("a secret"), STAFF_TOTP_SECRET.of(1))


# --- the upgrade: binding what was sealed before ------------------------------------------------
async def unbind_everything(stack: Stack, citizen_ids: CitizenIdKeys) -> dict[str, list[str]]:
    """The database as the code before binding left it: every value sealed the old way (the
    same as migration 0021's downgrade). Returns what each column held, opened."""
    secrets = stack.ctx.keys.encryption_keys
    held: dict[str, list[str]] = {}
    async with stack.db.begin() as session:
        for sealed in KEK_SEALED:
            held[sealed.name] = []
            for value, binding, (key,) in await stored_values(
                session, sealed.place, sealed.key, order_by=sealed.key
            ):
                keys = citizen_ids if sealed.citizen_id else secrets
                plain = keys.open(value, binding)
                old = (
                    citizen_ids.seal_unbound(plain)
                    if sealed.citizen_id
                    else secrets.seal_unbound(plain)
                )
                await session.execute(
                    text(
                        f"UPDATE {sealed.table} SET {sealed.column} = :old "
                        f"WHERE {sealed.key} = :key"
                    ),
                    {"old": old, "key": key},
                )
                held[sealed.name].append(plain)
    return held


async def stored(stack: Stack) -> dict[str, list[Stored]]:
    async with stack.db() as session:
        return {
            sealed.name: await stored_values(session, sealed.place, order_by=sealed.key)
            for sealed in KEK_SEALED
        }


def unbound_opened(place: str) -> float:
    value = REGISTRY.get_sample_value("vssid_sealed_values_unbound_opened_total", {"place": place})
    return value or 0.0


async def signs_in(stack: Stack, citizen_id: str, name: str) -> None:
    async with AsyncClient() as browser:
        callback = await browser_login(browser, stack.broker, citizen_id)
        assert callback.status_code == 302, callback.text
        account = await browser.get(f"{stack.broker}/account")
    assert account.status_code == 200 and name in account.text


@pytest.fixture
async def upgraded(stack: Stack, citizen_id_keys: CitizenIdKeys) -> AsyncIterator[Stack]:
    """A database in use as it was before binding: accounts, review cases, a link and browser
    sessions holding VNeID's ID token (AN signed in twice), a staff member's second factor,
    signing keys. The suite's keys are installed again at the end."""
    await add_staff(stack, "reviewer", StaffRole.REVIEWER)
    async with stack.db.begin() as session:
        assert await seed_demo_cases(session, issuer=stack.sim, now=stack.clock()) == 2
    await signs_in(stack, AN, "Nguyễn Văn An")
    await signs_in(stack, AN, "Nguyễn Văn An")
    yield stack
    sealing.install(citizen_id_keys)


async def test_keys_reseal_binds_every_value_resumably_while_logins_keep_working(
    upgraded: Stack, citizen_id_keys: CitizenIdKeys
) -> None:
    stack = upgraded
    secrets = stack.ctx.keys.encryption_keys
    plain_before = await unbind_everything(stack, citizen_id_keys)
    for sealed in KEK_SEALED:
        assert plain_before[sealed.name], f"nothing held in {sealed.name}"
    assert not any(
        sealing.is_bound(value) for values in (await stored(stack)).values() for value, *_ in values
    )

    # The transition: unbound values still open, counted; logins work.
    opened_before = unbound_opened("federated_links.citizen_id_sealed")
    await signs_in(stack, AN, "Nguyễn Văn An")
    await signs_in(stack, KHOA, "Bùi Văn Khoa")
    assert unbound_opened("federated_links.citizen_id_sealed") > opened_before  # AN's link

    def die_after_the_first_batch(column: str, done: int, left: int) -> None:
        raise CutShort(column)

    with pytest.raises(CutShort):
        await reseal_under_current_key(
            stack.db, citizen_id_keys, secrets, batch=1, progress=die_after_the_first_batch
        )
    halfway = await stored(stack)
    bound = [sealing.is_bound(value) for values in halfway.values() for value, *_ in values]
    assert any(bound) and not all(bound), "the cut-short run bound nothing, or everything"
    await signs_in(stack, AN, "Nguyễn Văn An")  # half-way, too

    progress: list[tuple[str, int, int]] = []
    done = await reseal_under_current_key(
        stack.db, citizen_id_keys, secrets, batch=2, progress=lambda *p: progress.append(p)
    )
    assert done.refused == {}
    assert {name for name, _, _ in progress} == {sealed.name for sealed in KEK_SEALED}

    # Every value is bound under the suite's key now, and holds what it held.
    after = await stored(stack)
    for sealed in KEK_SEALED:
        values = after[sealed.name]
        prefix = citizen_id_keys.current_prefix if sealed.citizen_id else secrets.sealed_prefix
        assert all(value.startswith(prefix) for value, *_ in values), sealed.name
        keys = citizen_id_keys if sealed.citizen_id else secrets
        plain_after = [keys.open(value, binding) for value, binding, _ in values]
        assert set(plain_before[sealed.name]) <= set(plain_after), sealed.name
    again = await reseal_under_current_key(stack.db, citizen_id_keys, secrets)
    assert sum(again.rows.values()) == 0

    # And with unbound values refused from now on, everyone still signs in.
    sealing.install(replace(citizen_id_keys, unbound_accepted=False))
    await signs_in(stack, AN, "Nguyễn Văn An")
    await signs_in(stack, KHOA, "Bùi Văn Khoa")


async def test_keys_reseal_does_not_bind_an_unbound_value_copied_from_another_row(
    upgraded: Stack, citizen_id_keys: CitizenIdKeys
) -> None:
    """Copied before the upgrade, when nothing could tell: the row's blind index names
    another ID, so the value is left as it is and named, not bound to the wrong row."""
    stack = upgraded
    await unbind_everything(stack, citizen_id_keys)
    an_id = await copy_sealed_id(stack, KHOA, AN)

    done = await reseal_under_current_key(stack.db, citizen_id_keys, stack.ctx.keys.encryption_keys)

    assert done.refused == {"accounts.citizen_id_sealed": [str(an_id)]}
    async with stack.db() as session:
        still = await session.scalar(select(Account.citizen_id_sealed).where(Account.id == an_id))
    assert still is not None and not sealing.is_bound(still)


async def test_a_second_factor_copied_to_another_staff_user_is_refused(stack: Stack) -> None:
    await add_staff(stack, "reviewer", StaffRole.REVIEWER)
    await add_staff(stack, "approver", StaffRole.APPROVER)
    keys = stack.ctx.keys.encryption_keys
    async with stack.db() as session:
        rows = await stored_values(session, STAFF_TOTP_SECRET, "username")
    by_name = {username: (value, binding) for value, binding, (username,) in rows}
    reviewer_secret, _ = by_name["reviewer"]
    _, approver_row = by_name["approver"]
    with pytest.raises(SealedValueRefused, match=r"staff_users\.totp_secret_sealed"):
        keys.open(reviewer_secret, approver_row)


async def test_during_the_rollout_new_values_are_written_the_way_old_pods_read_them(
    stack: Stack, citizen_id_keys: CitizenIdKeys
) -> None:
    """`VSSID_SEAL_BOUND_VALUES=false`, the first rollout of the release that binds: a first
    login's new link and its session's ID token are written the old way, which the previous
    release opens (`open_unbound` is its reading), and this one opens too."""
    suite_secrets = stack.ctx.keys.encryption_keys
    old_format = KeyEncryptionKeys(suite_secrets.current, seals_bound=False)
    sealing.install(replace(citizen_id_keys, seals_bound=False))
    stack.ctx.keys.encryption_keys = old_format
    try:
        await signs_in(stack, KHOA, "Bùi Văn Khoa")
        await signs_in(stack, KHOA, "Bùi Văn Khoa")  # and opens what it wrote
    finally:
        sealing.install(citizen_id_keys)
        stack.ctx.keys.encryption_keys = suite_secrets
    async with stack.db() as session:
        (link,) = await stored_values(session, LINK_CITIZEN_ID)
        tokens = await stored_values(session, SESSION_VNEID_ID_TOKEN)
    assert not sealing.is_bound(link.value) and citizen_id_keys.open_unbound(link.value) == KHOA
    assert tokens and all(not sealing.is_bound(value) for value, *_ in tokens)
    assert all(old_format.open_unbound(value, "a token").count(".") == 2 for value, *_ in tokens)
