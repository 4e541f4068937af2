"""The one statement with which `keys rotate-kek`, `keys reseal` and `keys reindex-citizen-ids`
write a batch (`housekeeping.compare_and_set`): each row is set only if it still holds what the
command read, so a login or a link written between the read and the write is never overwritten
with the value the command made from the older one. On whichever database the suite runs."""

from __future__ import annotations

from sqlalchemy import Table, select

from tests.conftest import Stack
from vssid_broker.accounts.models import Account
from vssid_broker.housekeeping import CAS_ROWS, compare_and_set

ACCOUNTS: Table = Account.__table__  # type: ignore[assignment]


async def phones(stack: Stack) -> dict[int, str]:
    """The accounts with a phone number (the commands never read an empty value)."""
    async with stack.db() as session:
        found = await session.execute(
            select(Account.id, Account.phone).where(Account.phone.is_not(None))
        )
        return {key: phone for key, phone in found.all() if phone is not None}


async def test_a_row_changed_since_it_was_read_keeps_its_new_value(stack: Stack) -> None:
    read = await phones(stack)
    first, second, third = sorted(read)[:3]
    async with stack.db.begin() as session:  # written after the command read the rows
        await session.execute(
            ACCOUNTS.update().where(ACCOUNTS.c.id == second).values(phone="0900000002")
        )
    changes = [(key, read[key], f"09111111{n:02d}") for n, key in enumerate((first, second, third))]
    async with stack.db.begin() as session:
        done = await compare_and_set(session, ACCOUNTS, ACCOUNTS.c.id, ACCOUNTS.c.phone, changes)
    assert done == 2
    now = await phones(stack)
    assert (now[first], now[second], now[third]) == ("0911111100", "0900000002", "0911111102")
    untouched = set(now) - {first, second, third}
    assert {key: now[key] for key in untouched} == {key: read[key] for key in untouched}


async def test_a_condition_on_another_column_holds_the_row_too(stack: Stack) -> None:
    """`keys reindex-citizen-ids` rewrites an index only if the sealed ID it was made from is
    still the row's: a row whose other column changed is left alone."""
    async with stack.db() as session:
        rows = (
            await session.execute(
                select(Account.id, Account.phone, Account.full_name).where(
                    Account.phone.is_not(None)
                )
            )
        ).all()
    (first, phone_1, name_1), (second, phone_2, name_2) = rows[:2]
    async with stack.db.begin() as session:
        await session.execute(
            ACCOUNTS.update().where(ACCOUNTS.c.id == second).values(full_name="Tên Đã Đổi")
        )
    changes = [(first, phone_1, "0922222201", name_1), (second, phone_2, "0922222202", name_2)]
    async with stack.db.begin() as session:
        done = await compare_and_set(
            session, ACCOUNTS, ACCOUNTS.c.id, ACCOUNTS.c.phone, changes, ACCOUNTS.c.full_name
        )
    assert done == 1
    now = await phones(stack)
    assert (now[first], now[second]) == ("0922222201", phone_2)


async def test_more_rows_than_one_statement_takes_are_all_set(stack: Stack) -> None:
    """A batch larger than `CAS_ROWS` goes in several statements (each under the databases'
    limit on parameters); rows not in the batch are not touched."""
    read = await phones(stack)
    key = sorted(read)[0]
    # A full statement of rows that are not there, then one that is: in the second statement.
    changes = [(-n, "none", "0933333330") for n in range(1, CAS_ROWS + 1)]
    changes.append((key, read[key], "0933333333"))
    async with stack.db.begin() as session:
        done = await compare_and_set(session, ACCOUNTS, ACCOUNTS.c.id, ACCOUNTS.c.phone, changes)
    assert done == 1
    now = await phones(stack)
    assert now[key] == "0933333333"
    assert {k: v for k, v in now.items() if k != key} == {k: v for k, v in read.items() if k != key}
