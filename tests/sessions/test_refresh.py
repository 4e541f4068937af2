"""The app's refresh tokens: rotated on every use; a spent one coming back ends the family."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
from sqlalchemy import select

from tests.conftest import Stack
from tests.support.flows import app_complete, app_until_redirect
from tests.support.http import AsyncClient
from vssid_broker.audit.models import AuditEvent
from vssid_broker.sessions.models import RefreshToken


async def signed_in_app(app: httpx.AsyncClient, stack: Stack) -> dict[str, str]:
    done = await app_complete(
        app, stack.broker, await app_until_redirect(app, stack.broker, "001085012345")
    )
    assert done.status_code == 200
    tokens: dict[str, str] = done.json()
    return tokens


async def refresh(app: httpx.AsyncClient, stack: Stack, token: str) -> httpx.Response:
    return await app.post(
        f"{stack.broker}/api/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": token},
    )


async def test_refresh_rotates_and_the_old_token_stops_working(stack: Stack) -> None:
    async with AsyncClient() as app:
        first = await signed_in_app(app, stack)
        second = await refresh(app, stack, first["refresh_token"])
        assert second.status_code == 200
        rotated = second.json()
        assert rotated["refresh_token"] != first["refresh_token"]
        me = await app.get(
            f"{stack.broker}/api/v1/me",
            headers={"Authorization": f"Bearer {rotated['access_token']}"},
        )
        assert me.status_code == 200

        reused = await refresh(app, stack, first["refresh_token"])
        assert reused.status_code == 400
        assert reused.headers["content-type"] == "application/problem+json"
        assert reused.json()["code"] == "invalid_grant"

        # Reuse means a copy exists somewhere: the newest token of the family dies too.
        newest = await refresh(app, stack, rotated["refresh_token"])
        assert newest.status_code == 400

    async with stack.db() as session:
        rows = list(await session.scalars(select(RefreshToken)))
        outcomes = list(
            await session.scalars(
                select(AuditEvent.outcome).where(AuditEvent.event_type == "token.refresh")
            )
        )
        reuse = list(
            await session.scalars(
                select(AuditEvent).where(AuditEvent.event_type == "token.reuse_detected")
            )
        )
    assert len(rows) == 2 and all(row.revoked_at is not None for row in rows)
    assert outcomes == ["invalid_grant"]  # the newest token, refused as revoked
    assert len(reuse) == 1 and reuse[0].outcome == "family_revoked"
    assert reuse[0].account_id == rows[0].account_id
    assert reuse[0].details["family_id"] == rows[0].family_id


async def test_refresh_tokens_are_stored_only_as_hashes(stack: Stack) -> None:
    async with AsyncClient() as app:
        tokens = await signed_in_app(app, stack)
    async with stack.db() as session:
        stored = list(await session.scalars(select(RefreshToken.token_hash)))
    assert tokens["refresh_token"] not in stored
    assert len(stored) == 1 and len(stored[0]) == 64


async def test_expired_refresh_token_is_refused(stack: Stack) -> None:
    async with AsyncClient() as app:
        tokens = await signed_in_app(app, stack)
        stack.clock.advance(stack.settings.refresh_token_ttl_seconds + 1)
        response = await refresh(app, stack, tokens["refresh_token"])
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_grant"


async def test_access_token_expires(stack: Stack) -> None:
    async with AsyncClient() as app:
        tokens = await signed_in_app(app, stack)
        stack.clock.advance(stack.settings.access_token_ttl_seconds + 1)
        me = await app.get(
            f"{stack.broker}/api/v1/me",
            headers={"Authorization": f"Bearer {tokens['access_token']}"},
        )
    assert me.status_code == 401


async def test_revocation_ends_the_family(stack: Stack) -> None:
    async with AsyncClient() as app:
        tokens = await signed_in_app(app, stack)
        revoked = await app.post(
            f"{stack.broker}/api/v1/auth/revoke", data={"token": tokens["refresh_token"]}
        )
        assert revoked.status_code == 200
        unknown = await app.post(
            f"{stack.broker}/api/v1/auth/revoke", data={"token": "never-issued"}
        )
        assert unknown.status_code == 200  # RFC 7009 §2.2
        response = await refresh(app, stack, tokens["refresh_token"])
    assert response.status_code == 400


async def test_bad_token_requests_are_problem_json(stack: Stack) -> None:
    async with AsyncClient() as app:
        wrong_grant = await app.post(
            f"{stack.broker}/api/v1/auth/token", data={"grant_type": "password"}
        )
        missing = await app.post(
            f"{stack.broker}/api/v1/auth/token", json={"grant_type": "refresh_token"}
        )
    assert wrong_grant.status_code == 400 and wrong_grant.json()["code"] == "unsupported_grant_type"
    assert missing.status_code == 400 and missing.json()["code"] == "invalid_request"


async def test_access_tokens_verify_with_the_published_jwks_alone(stack: Stack) -> None:
    from joserfc import jwt
    from joserfc.jwk import KeySet

    async with AsyncClient() as app:
        tokens = await signed_in_app(app, stack)
        jwks = (await app.get(f"{stack.broker}/.well-known/jwks.json")).json()
    token = jwt.decode(tokens["access_token"], KeySet.import_key_set(jwks), algorithms=["ES256"])
    assert token.header["typ"] == "at+jwt"
    assert token.claims["iss"] == stack.settings.public_base_url
    assert token.claims["aud"] == "vssid"
    assert token.claims["acr"] == "LoA2"
    assert all("d" not in key for key in jwks["keys"])  # public parts only


async def test_one_refresh_token_sent_many_times_at_once_is_spent_once(stack: Stack) -> None:
    """Racing copies of one token: a single successor, and the race counts as reuse."""
    async with AsyncClient() as app:
        first = await signed_in_app(app, stack)
        answers = await asyncio.gather(
            *(refresh(app, stack, first["refresh_token"]) for _ in range(8))
        )
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200] + [400] * 7  # one spends it; the other seven are reuse
    async with stack.db() as session:
        rows = list(await session.scalars(select(RefreshToken)))
    assert len(rows) == 2  # the original and exactly one successor
    assert all(row.revoked_at is not None for row in rows)  # reuse ends the family


async def test_with_the_grace_window_off_a_copy_racing_the_rotation_is_reuse(
    stack: Stack,
) -> None:
    """`VSSID_REFRESH_TOKEN_GRACE_SECONDS=0` (the suite's setting) turns the replay of a lost
    answer off, even for a copy whose clock was read before the winner's rotation committed
    (its `now` earlier than the token's `rotated_at`): that copy is reuse and ends the family."""
    async with AsyncClient() as app:
        first = await signed_in_app(app, stack)
        assert (await refresh(app, stack, first["refresh_token"])).status_code == 200
        async with stack.db.begin() as session:
            spent = await session.scalar(
                select(RefreshToken).where(RefreshToken.rotated_at.is_not(None))
            )
            assert spent is not None and spent.rotated_at is not None
            spent.rotated_at += timedelta(seconds=5)
        racing = await refresh(app, stack, first["refresh_token"])
    assert racing.status_code == 400 and racing.json()["code"] == "invalid_grant"
    async with stack.db() as session:
        rows = list(await session.scalars(select(RefreshToken)))
    assert len(rows) == 2 and all(row.revoked_at is not None for row in rows)


async def test_a_form_body_is_read_as_any_form_encoder_writes_it(stack: Stack) -> None:
    """RFC 6749 §4.1.3 form bodies: every character percent-encoded, `+` for a space, a charset
    parameter on the content type, the fields in any order; bytes that are not UTF-8 are a
    token that names nothing (invalid_grant) and change nothing."""
    async with AsyncClient() as app:
        tokens = await signed_in_app(app, stack)
        encoded = "".join(f"%{byte:02X}" for byte in tokens["refresh_token"].encode())
        body = f"refresh_token={encoded}&grant_type=refresh%5Ftoken&scope=+".encode()
        rotated = await app.post(
            f"{stack.broker}/api/v1/auth/token",
            content=body,
            headers={"content-type": "application/x-www-form-urlencoded; charset=UTF-8"},
        )
        garbled = await app.post(
            f"{stack.broker}/api/v1/auth/token",
            content=b"grant_type=refresh_token&refresh_token=\xff\xfe",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        still = await refresh(app, stack, rotated.json()["refresh_token"])
    assert rotated.status_code == 200 and rotated.json()["token_type"] == "Bearer"
    assert garbled.status_code == 400 and garbled.json()["code"] == "invalid_grant"
    assert still.status_code == 200
