"""Other services and VNeID: introspection (RFC 7662), revocation (RFC 7009), and VNeID's
back-channel logout ending every session of the person at once."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import select, update

from tests.conftest import SERVICE_CLIENT, Stack
from tests.sessions.test_browser_sessions import is_signed_in
from tests.sessions.test_refresh import refresh, signed_in_app
from tests.support.flows import app_complete, app_until_redirect, browser_login
from tests.support.http import AsyncClient
from vssid_broker.accounts.models import Account
from vssid_broker.audit.models import AuditEvent
from vssid_broker.sealing import blind_index
from vssid_broker.sessions.models import BrowserSession, RefreshToken, UsedJti

SERVICE_AUTH = (SERVICE_CLIENT.client_id, SERVICE_CLIENT.client_secret.get_secret_value())


async def me_status(app: httpx.AsyncClient, stack: Stack, access_token: str) -> int:
    response = await app.get(
        f"{stack.broker}/api/v1/me", headers={"Authorization": f"Bearer {access_token}"}
    )
    return response.status_code


async def introspect(
    client: httpx.AsyncClient, stack: Stack, token: str, auth: tuple[str, str] | None
) -> httpx.Response:
    url = f"{stack.broker}/api/v1/auth/introspect"
    if auth is None:
        return await client.post(url, data={"token": token})
    return await client.post(url, data={"token": token}, auth=auth)


async def test_introspection_describes_an_active_access_token(stack: Stack) -> None:
    async with AsyncClient() as client:
        tokens = await signed_in_app(client, stack)
        answer = await introspect(client, stack, tokens["access_token"], SERVICE_AUTH)
        refresh_answer = await introspect(client, stack, tokens["refresh_token"], SERVICE_AUTH)
        garbage = await introspect(client, stack, "not-a-token", SERVICE_AUTH)
    assert answer.status_code == 200
    body = answer.json()
    assert body["active"] is True and body["token_type"] == "Bearer"
    assert body["iss"] == stack.settings.public_base_url and body["aud"] == "vssid"
    assert body["acr"] == "LoA2" and body["channel"] == "app"
    assert {"sub", "exp", "iat", "jti", "sid"} <= set(body)
    # Refresh tokens are never answered: other services have no business holding one.
    assert refresh_answer.json() == {"active": False}
    assert garbage.json() == {"active": False}


async def test_introspection_refuses_callers_without_their_credentials(stack: Stack) -> None:
    async with AsyncClient() as client:
        tokens = await signed_in_app(client, stack)
        access = tokens["access_token"]
        answers = [
            await introspect(client, stack, access, None),
            await introspect(client, stack, access, (SERVICE_CLIENT.client_id, "wrong-secret")),
            await introspect(client, stack, access, ("someone-else", SERVICE_AUTH[1])),
            await client.post(
                f"{stack.broker}/api/v1/auth/introspect",
                data={"token": access},
                headers={"Authorization": f"Bearer {access}"},  # a person's token is no caller
            ),
        ]
    for answer in answers:
        assert answer.status_code == 401
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["code"] == "invalid_client"
        assert answer.headers["www-authenticate"].startswith("Basic")
        assert "sub" not in answer.text


async def test_revoked_session_is_inactive_at_once(stack: Stack) -> None:
    async with AsyncClient() as client:
        tokens = await signed_in_app(client, stack)
        revoked = await client.post(
            f"{stack.broker}/api/v1/auth/revoke", data={"token": tokens["refresh_token"]}
        )
        assert revoked.status_code == 200
        # The access token has not expired, yet the broker and introspection refuse it now.
        assert await me_status(client, stack, tokens["access_token"]) == 401
        answer = await introspect(client, stack, tokens["access_token"], SERVICE_AUTH)
    assert answer.json() == {"active": False}


async def test_revoking_an_access_token_ends_its_session(stack: Stack) -> None:
    async with AsyncClient() as client:
        tokens = await signed_in_app(client, stack)
        other = await signed_in_app(client, stack)  # another installation of the same person
        revoked = await client.post(
            f"{stack.broker}/api/v1/auth/revoke", data={"token": tokens["access_token"]}
        )
        assert revoked.status_code == 200
        assert await me_status(client, stack, tokens["access_token"]) == 401
        assert (await refresh(client, stack, tokens["refresh_token"])).status_code == 400
        assert await me_status(client, stack, other["access_token"]) == 200


@pytest.fixture
async def khoa(stack: Stack) -> AsyncIterator[str]:
    """A citizen the test may lock at VNeID; unlocked again afterwards."""
    citizen_id = "046075001122"
    yield citizen_id
    async with AsyncClient() as client:
        await client.post(f"{stack.sim}/_test/citizens/{citizen_id}/unlock")


async def test_lock_at_vneid_ends_every_session_of_the_person_at_once(
    stack: Stack, khoa: str
) -> None:
    async with AsyncClient() as browser, AsyncClient() as app:
        await browser_login_as(browser, stack, khoa)
        tokens = await app_login_as(app, stack, khoa)
        bystander = await signed_in_app(app, stack)  # another person stays signed in

        locked = await app.post(f"{stack.sim}/_test/citizens/{khoa}/lock")
        assert locked.status_code == 200
        notified = locked.json()["backchannel_logout"]
        # The person's browser (web client) and app (native client) were both told.
        assert [entry["status"] for entry in notified] == [200, 200]

        assert not await is_signed_in(browser, stack)
        assert await me_status(app, stack, tokens["access_token"]) == 401
        assert (await refresh(app, stack, tokens["refresh_token"])).status_code == 400
        assert await me_status(app, stack, bystander["access_token"]) == 200

    async with stack.db() as session:
        ended = await session.scalar(
            select(AuditEvent).where(AuditEvent.event_type == "sessions.ended")
        )
        browser_rows = list(await session.scalars(select(BrowserSession)))
    assert ended is not None and ended.outcome == "vneid_backchannel_logout"
    assert ended.details == {"browser_sessions": 1, "app_sessions": 1}
    assert all(row.revoked_at is not None for row in browser_rows)


async def test_replayed_or_forged_logout_token_is_refused(stack: Stack, khoa: str) -> None:
    async with AsyncClient() as app:
        tokens = await app_login_as(app, stack, khoa)
        await app.post(f"{stack.sim}/_test/citizens/{khoa}/lock")
        [(url, form)] = stack.sim_outbound.sent
        assert url == f"{stack.broker}/auth/vneid/backchannel-logout"

        replayed = await app.post(url, data=form)
        header, claims, signature = form["logout_token"].split(".")
        forged = await app.post(url, data={"logout_token": f"{header}.{claims}.{signature[:-4]}"})
        missing = await app.post(url, data={})
        for refused in (replayed, forged, missing):
            assert refused.status_code == 400
            assert refused.json()["error"] == "invalid_request"
        assert (await refresh(app, stack, tokens["refresh_token"])).status_code == 400
    assert await stack.count(UsedJti) == 1
    assert await stack.count(RefreshToken) == 1


async def browser_login_as(browser: httpx.AsyncClient, stack: Stack, citizen_id: str) -> None:
    callback = await browser_login(browser, stack.broker, citizen_id)
    assert callback.status_code == 302
    assert await is_signed_in(browser, stack)


async def app_login_as(app: httpx.AsyncClient, stack: Stack, citizen_id: str) -> dict[str, str]:
    done = await app_complete(
        app, stack.broker, await app_until_redirect(app, stack.broker, citizen_id)
    )
    assert done.status_code == 200, done.text
    tokens: dict[str, str] = done.json()
    return tokens


async def test_locking_the_vssid_account_ends_its_sessions_at_once(stack: Stack) -> None:
    async with AsyncClient() as browser, AsyncClient() as app:
        await browser_login_as(browser, stack, "001085012345")
        tokens = await app_login_as(app, stack, "001085012345")
        async with stack.db.begin() as session:  # staff lock the account
            await session.execute(
                update(Account)
                .where(Account.citizen_id_index == blind_index("001085012345"))
                .values(status="locked")
            )
        assert not await is_signed_in(browser, stack)
        assert await me_status(app, stack, tokens["access_token"]) == 401
        assert (await refresh(app, stack, tokens["refresh_token"])).status_code == 400
        answer = await introspect(app, stack, tokens["access_token"], SERVICE_AUTH)
    assert answer.json() == {"active": False}
