"""The app's whole login over real HTTP against the simulated VNeID, then its API calls."""

from __future__ import annotations

from tests.conftest import Stack
from tests.support.flows import app_complete, app_until_redirect
from tests.support.http import AsyncClient
from vssid_broker.audit.models import AuditEvent
from vssid_broker.linking.models import FederatedLink
from vssid_broker.sessions.models import RefreshToken


async def test_app_signs_in_links_and_reads_its_account(stack: Stack) -> None:
    async with AsyncClient() as app:
        redirect = await app_until_redirect(app, stack.broker, "001085012345")
        done = await app_complete(app, stack.broker, redirect)
        assert done.status_code == 200, done.text
        body = done.json()
        assert body["token_type"] == "Bearer"
        assert body["linked_now"] is True
        assert body["account"]["bhxh_code"] == "0112345678"
        assert body["account"]["full_name"] == "Nguyễn Văn An"

        headers = {"Authorization": f"Bearer {body['access_token']}"}
        me = await app.get(f"{stack.broker}/api/v1/me", headers=headers)
        assert me.status_code == 200
        assert me.json()["citizen_id"] == "001085012345"

        insurance = await app.get(f"{stack.broker}/api/v1/me/insurance", headers=headers)
        assert insurance.status_code == 200
        summary = {item["kind"]: item for item in insurance.json()["summary"]}
        assert summary["BHXH"]["participating"] is True
        assert summary["BHXH"]["months"] > 12 * 17
        assert insurance.json()["health_card"]["card_code"] == "DN4010112345678"

    assert await stack.count(FederatedLink) == 1
    assert await stack.count(RefreshToken) == 1


async def test_second_login_reuses_the_link(stack: Stack) -> None:
    async with AsyncClient() as app:
        first = await app_complete(
            app, stack.broker, await app_until_redirect(app, stack.broker, "046075001122")
        )
        second = await app_complete(
            app, stack.broker, await app_until_redirect(app, stack.broker, "046075001122")
        )
    assert first.json()["linked_now"] is True
    assert second.status_code == 200
    assert second.json()["linked_now"] is False
    assert await stack.count(FederatedLink) == 1


async def test_completing_with_another_verifier_is_refused_and_writes_nothing(stack: Stack) -> None:
    async with AsyncClient() as app:
        redirect = await app_until_redirect(app, stack.broker, "001085012345")
        stolen = await app_complete(app, stack.broker, redirect, code_verifier="x" * 43)
    assert stolen.status_code == 400
    assert stolen.headers["content-type"] == "application/problem+json"
    assert stolen.json()["code"] == "invalid_grant"
    assert await stack.count(FederatedLink) == 0
    assert await stack.count(RefreshToken) == 0


async def test_start_refuses_an_unregistered_redirect_uri(stack: Stack) -> None:
    async with AsyncClient() as app:
        response = await app.post(
            f"{stack.broker}/api/v1/auth/vneid/start",
            json={
                "redirect_uri": "vn.gov.baohiemxahoi.vssid:/oauth/vneid/../evil",
                "code_challenge": "a" * 43,
                "code_challenge_method": "S256",
            },
        )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_redirect_uri"


async def test_start_refuses_plain_pkce(stack: Stack) -> None:
    async with AsyncClient() as app:
        response = await app.post(
            f"{stack.broker}/api/v1/auth/vneid/start",
            json={
                "redirect_uri": "vn.gov.baohiemxahoi.vssid:/oauth/vneid",
                "code_challenge": "a" * 43,
                "code_challenge_method": "plain",
            },
        )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert "code_challenge_method" in response.json()["detail"]


async def test_api_refuses_missing_and_forged_tokens(stack: Stack) -> None:
    async with AsyncClient() as app:
        missing = await app.get(f"{stack.broker}/api/v1/me")
        forged = await app.get(
            f"{stack.broker}/api/v1/me",
            headers={"Authorization": "Bearer eyJhbGciOiJub25lIn0.e30."},
        )
    for response in (missing, forged):
        assert response.status_code == 401
        assert response.json()["code"] == "invalid_token"


async def test_successful_login_is_audited_without_the_citizen_id(stack: Stack) -> None:
    async with AsyncClient() as app:
        await app_complete(
            app, stack.broker, await app_until_redirect(app, stack.broker, "001085012345")
        )
    async with stack.db() as session:
        from sqlalchemy import select

        events = list(await session.scalars(select(AuditEvent).order_by(AuditEvent.id)))
    assert [(e.event_type, e.outcome) for e in events] == [
        ("link.created", "auto_linked"),
        ("consent.recorded", "given"),
        ("login", "succeeded"),
    ]
    assert "001085012345" not in str([e.details for e in events])
