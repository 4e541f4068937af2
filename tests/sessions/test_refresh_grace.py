"""A refresh whose answer was lost: the app retries with the token it still holds. Within the
grace window that retry gets the same new pair instead of logging the person out; outside it,
or from another key, a spent token coming back still ends the family."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from tests.conftest import Stack
from tests.sessions.test_dpop import dpop_login, dpop_refresh
from tests.sessions.test_refresh import refresh, signed_in_app
from tests.support.dpop import AppDpopKey
from tests.support.http import AsyncClient
from vssid_broker.audit.models import AuditEvent
from vssid_broker.opaque_tokens import hash_token
from vssid_broker.sessions.models import RefreshToken

GRACE = 30


@pytest.fixture
def broker(stack: Stack) -> Iterator[str]:
    with stack.broker_with(refresh_token_grace_seconds=GRACE) as url:
        yield url


def at(stack: Stack, broker: str) -> Stack:
    """The stack as seen through the broker with the grace window."""
    stack.broker = broker
    return stack


async def reuse_events(stack: Stack) -> list[str]:
    async with stack.db() as session:
        return list(
            await session.scalars(
                select(AuditEvent.outcome).where(AuditEvent.event_type == "token.reuse_detected")
            )
        )


async def send_and_hang_up(broker: str, refresh_token: str) -> None:
    """A refresh whose answer never reaches the app: the connection drops once it is sent."""
    host, port = broker.removeprefix("http://").split(":")
    body = f"grant_type=refresh_token&refresh_token={refresh_token}".encode()
    _, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        b"POST /api/v1/auth/token HTTP/1.1\r\nHost: broker\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    await writer.drain()
    writer.close()


async def wait_rotated(stack: Stack, refresh_token: str) -> None:
    for _ in range(200):
        async with stack.db() as session:
            row = await session.scalar(
                select(RefreshToken).where(RefreshToken.token_hash == hash_token(refresh_token))
            )
        if row is not None and row.rotated_at is not None:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the refresh was never committed")


async def test_a_lost_refresh_answer_is_given_again_and_the_person_stays_signed_in(
    stack: Stack, broker: str
) -> None:
    stack = at(stack, broker)
    async with AsyncClient() as app:
        first = await signed_in_app(app, stack)
        await send_and_hang_up(broker, first["refresh_token"])
        await wait_rotated(stack, first["refresh_token"])
        stack.clock.advance(GRACE - 5)

        retried = await refresh(app, stack, first["refresh_token"])
        assert retried.status_code == 200, retried.text
        again = await refresh(app, stack, first["refresh_token"])
        assert again.json()["refresh_token"] == retried.json()["refresh_token"]
        me = await app.get(
            f"{broker}/api/v1/me",
            headers={"Authorization": f"Bearer {retried.json()['access_token']}"},
        )
        assert me.status_code == 200

        # The family lives on: the pair given back keeps working.
        onwards = await refresh(app, stack, retried.json()["refresh_token"])
        assert onwards.status_code == 200
    assert await reuse_events(stack) == []


async def test_outside_the_window_a_spent_token_still_ends_the_family(
    stack: Stack, broker: str
) -> None:
    stack = at(stack, broker)
    async with AsyncClient() as app:
        first = await signed_in_app(app, stack)
        second = (await refresh(app, stack, first["refresh_token"])).json()
        stack.clock.advance(GRACE + 1)
        reused = await refresh(app, stack, first["refresh_token"])
        assert reused.json()["code"] == "invalid_grant"
        assert (await refresh(app, stack, second["refresh_token"])).status_code == 400
    assert await reuse_events(stack) == ["family_revoked"]


async def test_once_the_new_token_was_used_the_old_one_is_reuse(stack: Stack, broker: str) -> None:
    stack = at(stack, broker)
    async with AsyncClient() as app:
        first = await signed_in_app(app, stack)
        second = (await refresh(app, stack, first["refresh_token"])).json()
        third = await refresh(app, stack, second["refresh_token"])
        assert third.status_code == 200
        reused = await refresh(app, stack, first["refresh_token"])
        assert reused.json()["code"] == "invalid_grant"
        assert (await refresh(app, stack, third.json()["refresh_token"])).status_code == 400
    assert await reuse_events(stack) == ["family_revoked"]


async def test_a_bound_token_is_given_again_only_to_its_own_key(stack: Stack, broker: str) -> None:
    stack = at(stack, broker)
    key, thief = AppDpopKey(stack.clock), AppDpopKey(stack.clock)
    url = f"{broker}/api/v1/auth/token"
    async with AsyncClient() as app:
        tokens = await dpop_login(app, stack, key)
        spent = tokens["refresh_token"]
        first = await dpop_refresh(app, stack, spent, key.proof("POST", url))
        assert first.status_code == 200
        retried = await dpop_refresh(app, stack, spent, key.proof("POST", url))
        assert retried.json()["refresh_token"] == first.json()["refresh_token"]
        stolen = await dpop_refresh(app, stack, spent, thief.proof("POST", url))
        assert stolen.status_code == 400
        # The thief's attempt is reuse: the family is over for everyone.
        after = await dpop_refresh(
            app, stack, first.json()["refresh_token"], key.proof("POST", url)
        )
        assert after.json()["code"] == "invalid_grant"
