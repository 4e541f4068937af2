"""Broker processes whose clocks differ by a second accept each other's fresh tokens: `iat` and
`nbf` have a leeway (`VSSID_TOKEN_CLOCK_LEEWAY_SECONDS`); `exp` is kept exactly."""

from __future__ import annotations

from tests.admin.test_admin_api import Staff, sign_in, staff
from tests.conftest import Stack
from tests.sessions.test_refresh import signed_in_app
from tests.support.http import AsyncClient
from tests.support.staff import PASSWORD

__all__ = ["staff"]  # the fixture, used by name below


async def test_an_access_token_from_a_signer_a_little_ahead_is_accepted(stack: Stack) -> None:
    async with AsyncClient() as app:
        stack.clock.advance(2)  # the signing process runs 2 s ahead of the verifying one
        tokens = await signed_in_app(app, stack)
        stack.clock.advance(-2)
        me = await app.get(
            f"{stack.broker}/api/v1/me",
            headers={"Authorization": f"Bearer {tokens['access_token']}"},
        )
    assert me.status_code == 200, me.text


async def test_a_staff_token_from_a_signer_a_little_ahead_is_accepted(
    staff: Staff, stack: Stack
) -> None:
    stack.clock.advance(30)  # a fresh TOTP window: the fixture's sign-in spent this one's code
    stack.clock.advance(2)
    signed = await sign_in(stack, "admin", PASSWORD)
    stack.clock.advance(-2)
    assert signed.status_code == 200, signed.text
    token = {"Authorization": f"Bearer {signed.json()['access_token']}"}
    assert (await staff.get(token, "/cases")).status_code == 200


async def test_a_token_from_far_in_the_future_is_refused(stack: Stack) -> None:
    async with AsyncClient() as app:
        stack.clock.advance(stack.settings.token_clock_leeway_seconds + 60)
        tokens = await signed_in_app(app, stack)
        stack.clock.reset()
        me = await app.get(
            f"{stack.broker}/api/v1/me",
            headers={"Authorization": f"Bearer {tokens['access_token']}"},
        )
    assert me.status_code == 401


async def test_expiry_has_no_leeway(stack: Stack) -> None:
    async with AsyncClient() as app:
        tokens = await signed_in_app(app, stack)
        stack.clock.advance(stack.settings.access_token_ttl_seconds + 1)
        me = await app.get(
            f"{stack.broker}/api/v1/me",
            headers={"Authorization": f"Bearer {tokens['access_token']}"},
        )
    assert me.status_code == 401
