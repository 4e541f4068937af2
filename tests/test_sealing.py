"""Citizen IDs sealed at rest: what the database holds, how they are found, how keys rotate."""

from __future__ import annotations

import base64
import os
import pickle
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import Stack
from tests.test_migrations import scratch_engine  # noqa: F401 - the fixture
from vssid_broker import schema, sealing
from vssid_broker.accounts.models import ACCOUNT_CITIZEN_ID, Account
from vssid_broker.audit.chain import verify
from vssid_broker.db import session_factory
from vssid_broker.housekeeping import KEK_SEALED, reseal_under_current_key
from vssid_broker.linking.models import FederatedLink, ReviewCase
from vssid_broker.sealing import CitizenIdKeys, blind_index

AN = "001085012345"
CITIZEN_ID_COLUMNS = tuple(column for column in KEK_SEALED if column.citizen_id)


async def reseal_citizen_ids(
    stack: Stack, keys: CitizenIdKeys, batch: int = 1_000
) -> dict[str, int]:
    secrets = stack.ctx.keys.encryption_keys
    done = await reseal_under_current_key(
        stack.db, keys, secrets, columns=CITIZEN_ID_COLUMNS, batch=batch
    )
    return done.rows


def new_key() -> bytes:
    return os.urandom(32)


def account_of(citizen_id: str, *, bhxh_code: str) -> Account:
    return Account(
        bhxh_code=bhxh_code,
        citizen_id=citizen_id,
        full_name="Nguyễn Văn An",
        birth_date=date(1985, 3, 12),
        gender="male",
    )


async def test_the_database_holds_no_citizen_id_in_the_clear(stack: Stack) -> None:
    async with stack.db() as session:
        raw = (
            await session.execute(
                text("SELECT citizen_id_sealed, citizen_id_index FROM accounts "
                     "WHERE citizen_id_sealed IS NOT NULL")
            )
        ).all()  # fmt: skip
        account = await session.scalar(
            select(Account).where(Account.citizen_id_index == blind_index(AN))
        )
    assert raw and all(AN not in sealed and AN not in index for sealed, index in raw)
    assert len({sealed for sealed, _ in raw}) == len(raw)
    assert account is not None and account.citizen_id == AN


async def test_a_sealed_column_cannot_be_compared_by_mistake() -> None:
    with pytest.raises(TypeError, match="blind index"):
        Account.citizen_id == AN  # noqa: B015 - the comparison itself must refuse


async def test_the_database_keeps_one_account_per_citizen_id(stack: Stack) -> None:
    with pytest.raises(IntegrityError):
        async with stack.db.begin() as session:
            session.add(account_of(AN, bhxh_code="0199999999"))


async def test_a_rotation_reseals_every_row_and_lookups_keep_working(
    stack: Stack, citizen_id_keys: CitizenIdKeys
) -> None:
    """Step 2 of docs/privacy.md's rotation: the new KEK seals, the old one still opens; then
    `keys reseal` moves every row to the new key while the broker serves."""
    old_kid = citizen_id_keys.current_kid
    fresh = CitizenIdKeys.from_secrets(new_key(), [], citizen_id_keys.index_key)
    rotated = CitizenIdKeys(
        current_kid=fresh.current_kid,
        sealing={**fresh.sealing, **citizen_id_keys.sealing},
        index_key=citizen_id_keys.index_key,
    )
    sealing.install(rotated)
    try:
        done = await reseal_citizen_ids(stack, rotated, batch=3)
        assert done["accounts.citizen_id_sealed"] > 3  # more than one batch
        async with stack.db() as session:
            kids = set(
                await session.scalars(
                    text("SELECT substr(citizen_id_sealed, 4, 8) FROM accounts "
                         "WHERE citizen_id_sealed IS NOT NULL")
                )
            )  # fmt: skip
        assert kids == {rotated.current_kid} and old_kid not in kids
        # The previous key can go now: only the new one is needed to open every row.
        sealing.install(fresh)
        async with stack.db() as session:
            account = await session.scalar(
                select(Account).where(Account.citizen_id_index == blind_index(AN))
            )
        assert account is not None and account.citizen_id == AN
        again = await reseal_citizen_ids(stack, fresh)
        assert sum(again.values()) == 0
    finally:
        back = CitizenIdKeys(
            current_kid=citizen_id_keys.current_kid,
            sealing={**citizen_id_keys.sealing, **fresh.sealing},
            index_key=citizen_id_keys.index_key,
        )
        await reseal_citizen_ids(stack, back)  # the suite's key on every row again
        sealing.install(citizen_id_keys)


async def test_the_migration_seals_existing_rows_and_chains_existing_events(
    scratch_engine: AsyncEngine,  # noqa: F811
    citizen_id_keys: CitizenIdKeys,
) -> None:
    await schema.upgrade_engine(scratch_engine, "0006")
    now = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    async with scratch_engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO accounts (id, bhxh_code, citizen_id, full_name, name_key, birth_date,"
                " gender, status, created_at, updated_at) VALUES (7, '0112345678', :cid,"
                " 'Nguyễn Văn An', 'nguyễn văn an', '1985-03-12', 'male', 'active', :now, :now)"
            ),
            {"cid": AN, "now": now},
        )
        await connection.execute(
            text(
                "INSERT INTO federated_links (account_id, provider, subject, citizen_id, method,"
                " linked_by, linked_at) VALUES (7, 'http://vneid', 'sub-an', :cid,"
                " 'citizen_id_match', 'system', :now)"
            ),
            {"cid": AN, "now": now},
        )
        await connection.execute(
            text(
                "INSERT INTO review_cases (provider, subject, citizen_id, full_name, birth_date,"
                " candidate_account_ids, reason, status, version, created_at) VALUES"
                " ('http://vneid', 'sub-x', :cid, 'Nguyễn Văn An', '1985-03-12', '[7]',"
                " 'record_mismatch', 'pending', 1, :now)"
            ),
            {"cid": AN, "now": now},
        )
        for outcome in ("a", "b"):
            await connection.execute(
                text(
                    "INSERT INTO audit_events (occurred_at, event_type, outcome, actor, details)"
                    " VALUES (:now, 'old.event', :outcome, 'system', '{\"n\": 1}')"
                ),
                {"now": now, "outcome": outcome},
            )

    await schema.upgrade_engine(scratch_engine)

    sessions = session_factory(scratch_engine)
    async with sessions() as session:
        sealed = await session.scalar(text("SELECT citizen_id_sealed FROM accounts"))
        account = await session.scalar(
            select(Account).where(Account.citizen_id_index == blind_index(AN))
        )
        link = await session.scalar(select(FederatedLink))
        case = await session.scalar(
            select(ReviewCase).where(ReviewCase.citizen_id_index == blind_index(AN))
        )
        chain = await verify(session)
    assert sealed is not None and AN not in sealed
    assert account is not None and account.id == 7 and account.citizen_id == AN
    assert link is not None and link.citizen_id == AN
    assert case is not None and case.citizen_id == AN
    assert (chain.entries, chain.broken_at) == (2, None)

    await schema.downgrade_engine(scratch_engine, "0006")  # and back: nothing lost
    async with scratch_engine.connect() as connection:
        plain = await connection.scalar(text("SELECT citizen_id FROM accounts WHERE id = 7"))
        case_plain = await connection.scalar(text("SELECT citizen_id FROM review_cases"))
    assert (plain, case_plain) == (AN, AN)


async def test_the_downgrade_below_0021_unbinds_what_the_code_before_reads(
    scratch_engine: AsyncEngine,  # noqa: F811
    citizen_id_keys: CitizenIdKeys,
) -> None:
    """Rolling back the code that binds: migration 0021's downgrade seals every bound value
    again the old way, so the code of revision 0020 opens it; upgraded again, it still opens
    (unbound, during the transition) until `keys reseal` binds it."""
    await schema.upgrade_engine(scratch_engine)
    sessions = session_factory(scratch_engine)
    async with sessions.begin() as session:
        session.add(account_of(AN, bhxh_code="0112345678"))
    read_raw = text("SELECT citizen_id_sealed FROM accounts")
    async with scratch_engine.connect() as connection:
        assert sealing.is_bound(await connection.scalar(read_raw))

    await schema.downgrade_engine(scratch_engine, "0020")
    async with scratch_engine.connect() as connection:
        unbound = await connection.scalar(read_raw)
    assert not sealing.is_bound(unbound) and citizen_id_keys.open_unbound(unbound) == AN

    await schema.upgrade_engine(scratch_engine)
    async with sessions() as session:
        account = await session.scalar(select(Account))
    assert account is not None and account.citizen_id == AN


def test_a_key_of_the_wrong_size_is_refused_with_its_setting_named(tmp_path: Path) -> None:
    short = SecretStr(base64.urlsafe_b64encode(os.urandom(16)).decode())
    with pytest.raises(sealing.CitizenIdKeyError, match="VSSID_BLIND_INDEX_KEY must be 32 bytes"):
        sealing.load_32_byte_key(short, tmp_path / "unused", "VSSID_BLIND_INDEX_KEY")


def test_keys_handed_to_another_process_open_and_index_alike(
    citizen_id_keys: CitizenIdKeys,
) -> None:
    """The bulk seed's worker processes get the keys by pickle: they must seal what this
    process opens and find rows by the same blind index."""
    travelled = pickle.loads(pickle.dumps(citizen_id_keys))  # noqa: S301 - our own bytes
    row = ACCOUNT_CITIZEN_ID.of("0112345678")
    assert travelled.open(citizen_id_keys.seal(AN, row), row) == AN
    assert citizen_id_keys.open(travelled.seal(AN, row), row) == AN
    assert travelled.index(AN) == citizen_id_keys.index(AN)
    assert "derived" not in repr(travelled)  # the key bytes are never printed
