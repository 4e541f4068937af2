"""Refresh-token lifetimes, the bound on signed-in installations, and signing-key rotation."""

from __future__ import annotations

from datetime import timedelta

import httpx
from joserfc import jws
from sqlalchemy import delete, select

from tests.conftest import Stack
from tests.sessions.test_refresh import refresh, signed_in_app
from tests.support.http import AsyncClient
from vssid_broker.accounts.models import Account
from vssid_broker.sealing import blind_index
from vssid_broker.sessions import tokens as app_tokens
from vssid_broker.sessions.models import RefreshToken, SigningKey


def kid_of(token: str) -> str:
    return str(jws.extract_compact(token.encode()).protected["kid"])


async def me(app: httpx.AsyncClient, stack: Stack, access_token: str) -> httpx.Response:
    return await app.get(
        f"{stack.broker}/api/v1/me", headers={"Authorization": f"Bearer {access_token}"}
    )


async def test_refresh_family_ends_when_idle_and_use_keeps_it(stack: Stack) -> None:
    idle = stack.settings.refresh_token_idle_seconds
    async with AsyncClient() as app:
        tokens = await signed_in_app(app, stack)
        stack.clock.advance(idle - 60)
        used = await refresh(app, stack, tokens["refresh_token"])
        assert used.status_code == 200
        stack.clock.advance(idle - 60)  # longer than idle since login, not since last use
        used_again = await refresh(app, stack, used.json()["refresh_token"])
        assert used_again.status_code == 200
        stack.clock.advance(idle + 1)
        too_late = await refresh(app, stack, used_again.json()["refresh_token"])
    assert too_late.status_code == 400 and too_late.json()["code"] == "invalid_grant"


async def test_rotation_never_extends_the_absolute_lifetime(stack: Stack) -> None:
    settings = stack.settings
    async with AsyncClient() as app:
        token = (await signed_in_app(app, stack))["refresh_token"]
        elapsed, step = 0, settings.refresh_token_idle_seconds - 60
        while elapsed + step < settings.refresh_token_ttl_seconds:
            stack.clock.advance(step)
            elapsed += step
            answer = await refresh(app, stack, token)
            assert answer.status_code == 200
            token = answer.json()["refresh_token"]
        stack.clock.advance(settings.refresh_token_ttl_seconds - elapsed + 1)
        answer = await refresh(app, stack, token)
    assert answer.status_code == 400


async def test_oldest_installation_ends_beyond_the_bound(stack: Stack) -> None:
    bound = stack.settings.refresh_families_per_account
    async with stack.db() as session:
        account_id = await session.scalar(
            select(Account.id).where(Account.citizen_id_index == blind_index("001085012345"))
        )
    assert account_id is not None
    earlier: list[str] = []
    for _ in range(bound):  # installations signed in before, one a second
        async with stack.db.begin() as session:
            issued = await app_tokens.issue(
                session,
                stack.ctx.access_tokens,
                stack.ctx.refresh_tokens,
                account_id=account_id,
                acr="LoA2",
                now=stack.clock(),
            )
        earlier.append(issued.refresh_token)
        stack.clock.advance(1)  # stays within VNeID's ID-token clock skew
    async with AsyncClient() as app:
        newest = await signed_in_app(app, stack)  # one more, through VNeID
        oldest_answer = await refresh(app, stack, earlier[0])
        second_answer = await refresh(app, stack, earlier[1])
        newest_answer = await refresh(app, stack, newest["refresh_token"])
    assert oldest_answer.status_code == 400
    assert second_answer.status_code == 200
    assert newest_answer.status_code == 200
    async with stack.db() as session:
        live = set(
            await session.scalars(
                select(RefreshToken.family_id).where(
                    RefreshToken.revoked_at.is_(None), RefreshToken.rotated_at.is_(None)
                )
            )
        )
    assert len(live) == bound


async def test_tokens_of_the_old_key_stay_valid_until_they_expire(stack: Stack) -> None:
    async with AsyncClient() as app:
        before = await signed_in_app(app, stack)
        old_kid = kid_of(before["access_token"])
        async with stack.db.begin() as session:
            new_kid = await stack.ctx.keys.rotate(session, stack.clock(), timedelta(0))

        after = (await refresh(app, stack, before["refresh_token"])).json()
        assert kid_of(after["access_token"]) == new_kid
        jwks = (await app.get(f"{stack.broker}/.well-known/jwks.json")).json()
        assert {old_kid, new_kid} <= {key["kid"] for key in jwks["keys"]}
        assert (await me(app, stack, before["access_token"])).status_code == 200
        assert (await me(app, stack, after["access_token"])).status_code == 200

        stack.clock.advance(stack.settings.access_token_ttl_seconds + 1)
        assert (await me(app, stack, before["access_token"])).status_code == 401
        latest = (await refresh(app, stack, after["refresh_token"])).json()
        assert (await me(app, stack, latest["access_token"])).status_code == 200
        jwks = (await app.get(f"{stack.broker}/.well-known/jwks.json")).json()
    # Its last token has expired: the old key leaves the published set.
    assert old_kid not in {key["kid"] for key in jwks["keys"]}


async def test_without_any_signing_key_tokens_are_refused_not_crashed_on(stack: Stack) -> None:
    """A key table emptied by hand: 401 for tokens and an empty JWKS, not a 500 on every call."""
    async with AsyncClient() as app:
        tokens = await signed_in_app(app, stack)
        async with stack.db.begin() as session:
            await session.execute(delete(SigningKey))
            await stack.ctx.keys.refresh(session, stack.clock(), force=True)
        try:
            assert (await me(app, stack, tokens["access_token"])).status_code == 401
            jwks = await app.get(f"{stack.broker}/.well-known/jwks.json")
            assert (jwks.status_code, jwks.json()) == (200, {"keys": []})
        finally:
            async with stack.db.begin() as session:
                await stack.ctx.keys.ensure_active(session, stack.clock())
                await stack.ctx.keys.refresh(session, stack.clock(), force=True)
