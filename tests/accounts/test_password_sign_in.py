"""Password sign-in of VssID accounts over real HTTP: both identifiers, lockout, no leaks."""

from __future__ import annotations

import logging

import httpx
import pytest
from sqlalchemy import select

from tests.conftest import Stack
from tests.support.http import AsyncClient
from vssid_broker.accounts import password_sign_in as passwords
from vssid_broker.accounts.models import Account, AccountPassword
from vssid_broker.audit.models import AuditEvent
from vssid_broker.passwords import PASSWORD_ACR
from vssid_broker.sessions.models import RefreshToken

PASSWORD = "Mat-khau-2026"
AN_BHXH, AN_CITIZEN = "0112345678", "001085012345"


@pytest.fixture
async def an_has_a_password(stack: Stack) -> int:
    async with stack.db.begin() as session:
        account_id = (
            await session.execute(select(Account.id).where(Account.bhxh_code == AN_BHXH))
        ).scalar_one()
        await passwords.set_password(session, account_id, PASSWORD, now=stack.clock())
    return account_id


async def sign_in(stack: Stack, identifier: str, password: str) -> httpx.Response:
    async with AsyncClient() as app:
        return await app.post(
            f"{stack.broker}/api/v1/auth/password",
            json={"identifier": identifier, "password": password},
        )


@pytest.mark.parametrize("identifier", [AN_BHXH, AN_CITIZEN, f" {AN_BHXH} "])
async def test_signs_in_with_the_bhxh_code_or_the_citizen_id(
    stack: Stack, an_has_a_password: int, identifier: str
) -> None:
    response = await sign_in(stack, identifier, PASSWORD)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["account"]["bhxh_code"] == AN_BHXH
    async with AsyncClient() as app:
        me = await app.get(
            f"{stack.broker}/api/v1/me",
            headers={"Authorization": f"Bearer {body['access_token']}"},
        )
    assert me.status_code == 200
    async with stack.db() as session:
        [token] = list(await session.scalars(select(RefreshToken)))
    assert token.acr == PASSWORD_ACR


@pytest.mark.parametrize(
    ("identifier", "password"),
    [
        (AN_BHXH, "wrong password"),
        ("0198765432", PASSWORD),  # an account without a password
        ("9999999999", PASSWORD),  # no such account
        ("not-a-code", PASSWORD),
    ],
)
async def test_every_wrong_sign_in_gets_the_same_answer_and_no_token(
    stack: Stack, an_has_a_password: int, identifier: str, password: str
) -> None:
    response = await sign_in(stack, identifier, password)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "invalid_credentials"
    assert await stack.count(RefreshToken) == 0


async def test_repeated_failures_lock_even_the_right_password_until_the_lock_ends(
    stack: Stack, an_has_a_password: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    limit = stack.settings.password_max_failures
    codes = [(await sign_in(stack, AN_BHXH, f"guess {i}")).json()["code"] for i in range(limit)]
    assert codes == ["invalid_credentials"] * (limit - 1) + ["password_sign_in_locked"]

    locked = await sign_in(stack, AN_BHXH, PASSWORD)
    assert (locked.status_code, locked.json()["code"]) == (429, "password_sign_in_locked")
    assert await stack.count(RefreshToken) == 0

    stack.clock.advance(stack.settings.password_lockout_seconds + 1)
    assert (await sign_in(stack, AN_CITIZEN, PASSWORD)).status_code == 200
    async with stack.db() as session:
        credential = await session.get_one(AccountPassword, an_has_a_password)
        outcomes = list(
            await session.scalars(
                select(AuditEvent.outcome).where(AuditEvent.event_type == "login.password")
            )
        )
        details = str(list(await session.scalars(select(AuditEvent.details))))
    assert (credential.failed_attempts, credential.locked_until) == (0, None)
    assert outcomes == ["invalid_credentials"] * (limit - 1) + ["locked_now", "locked", "succeeded"]
    assert PASSWORD not in details and "guess" not in details and AN_CITIZEN not in details
    assert PASSWORD not in caplog.text and "guess 0" not in caplog.text


async def test_the_right_password_of_a_locked_account_is_refused(stack: Stack) -> None:
    async with stack.db.begin() as session:
        lan = await session.scalar(select(Account).where(Account.bhxh_code == "4012345678"))
        assert lan is not None
        await passwords.set_password(session, lan.id, PASSWORD, now=stack.clock())
    response = await sign_in(stack, "4012345678", PASSWORD)
    assert (response.status_code, response.json()["code"]) == (403, "account_not_active")
    assert await stack.count(RefreshToken) == 0


@pytest.mark.parametrize(
    ("typed", "recorded"),
    [
        (AN_CITIZEN, "001******345"),
        (AN_BHXH, "01******78"),
        ("00108501234", "[11 characters]"),  # one digit short of a real ID: its shape only
        ("0010850123456", "[13 characters]"),
        ("an.nguyen@example.vn", "[20 characters]"),
    ],
)
async def test_the_audit_trail_keeps_only_a_mask_of_the_typed_identifier(
    stack: Stack, an_has_a_password: int, typed: str, recorded: str
) -> None:
    await sign_in(stack, typed, "wrong password")
    async with stack.db() as session:
        events = list(
            await session.scalars(
                select(AuditEvent).where(AuditEvent.event_type == "login.password")
            )
        )
    assert [event.details.get("identifier") for event in events] == [recorded]
