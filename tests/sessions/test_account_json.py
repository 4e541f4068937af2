"""`/api/v1/me`'s answer kept rendered beside the live-session cache's row without the citizen
ID: the bytes are the model's own, whatever the account holds, and no clear ID is ever kept."""

from __future__ import annotations

from datetime import date

import pytest

from tests.conftest import Stack
from tests.e2e.test_live_session_cache import (
    AN,
    NO_CACHE_ON_SQLITE,
    bearer,
    claim_of,
    sign_in_app,
)
from tests.support.database import postgresql_only
from tests.support.http import AsyncClient
from vssid_broker.accounts.models import Account
from vssid_broker.accounts.schemas import AccountJson, AccountOut

UNUSUAL_TEXT = [
    "Nguyễn Thị Ánh Tuyết",
    'Quote " and backslash \\ and slash /',
    '"citizen_id":null',
    ',"citizen_id":"001085012345"',
    "tab\tnew line\ncarriage return\r bell\x07 nul\x00 escape\x1b del\x7f",
    "line separator\u2028paragraph separator\u2029",
    "</script><b>&amp;</b>",
    "emoji 🇻🇳 and combining Ạ",
    "",
]
UNUSUAL_CITIZEN_IDS: list[str | None] = [
    None,
    "001085012345",
    "000000000000",
    '12"34\\56',
    "tab\t\u2028🇻🇳 Đ",
    "\x00\x1f",
    "",
]


def an_account(citizen_id: str | None, text: str, phone: str | None) -> Account:
    """An account as a row holds it: the citizen ID sealed to its BHXH code (sealed directly,
    past the twelve-digit check of the model's setter, to see any value's escaping)."""
    account = Account(
        id=7,
        bhxh_code="0112345678",
        full_name=text,
        birth_date=date(1985, 2, 28),
        gender="female",
        phone=phone,
        status="active",
    )
    account.citizen_id_sealed = (
        None if citizen_id is None else Account.citizen_id.sealed_for(citizen_id, account.bhxh_code)
    )
    return account


@pytest.mark.parametrize("citizen_id", UNUSUAL_CITIZEN_IDS)
@pytest.mark.parametrize("text", UNUSUAL_TEXT)
def test_the_kept_rendering_with_the_citizen_id_put_in_is_the_models_answer_byte_for_byte(
    citizen_id: str | None, text: str
) -> None:
    for phone in (None, text[:15]):
        account = an_account(citizen_id, text, phone)
        kept = AccountJson.of(account)
        assert kept.with_citizen_id(Account.citizen_id.open_from(account)) == (
            AccountOut.of(account).model_dump_json().encode()
        )
        # What is kept does not depend on the ID at all: it holds none of it.
        assert kept == AccountJson.of(an_account(None, text, phone))


async def test_me_answers_the_models_json_from_the_cache_and_the_cache_keeps_no_clear_id(
    stack: Stack,
) -> None:
    postgresql_only(stack.settings.database_url, NO_CACHE_ON_SQLITE)
    cache = stack.ctx.live_sessions
    assert cache is not None
    async with AsyncClient(timeout=10) as client:
        tokens = await sign_in_app(client, stack.broker)
        answers = [
            await client.get(f"{stack.broker}/api/v1/me", headers=bearer(tokens)) for _ in range(3)
        ]
    account_id = int(claim_of(tokens, "sub"))
    async with stack.db() as session:
        account = await session.get(Account, account_id)
    assert account is not None
    expected = AccountOut.of(account).model_dump_json().encode()
    assert [answer.content for answer in answers] == [expected] * 3
    assert answers[0].json()["citizen_id"] == AN
    kept = cache.find(claim_of(tokens, "sid"), account_id)
    assert kept is not None and kept.json is not None
    assert AN.encode() not in kept.json.head + kept.json.tail
