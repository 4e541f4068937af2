"""Every way the browser callback must refuse, over real HTTP against the simulated VNeID.

Each case checks what the person sees (a Vietnamese page with a stable error code), that an
audit event names the refusal, and that no link, session or token was written.
"""

from __future__ import annotations

from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import select

from tests.conftest import Stack
from tests.support.flows import outcome_page, query_of
from tests.support.http import AsyncClient
from vssid_broker.audit.models import AuditEvent
from vssid_broker.federation.models import LoginTransaction
from vssid_broker.linking.models import FederatedLink, ReviewCase
from vssid_broker.sessions.models import BrowserSession, RefreshToken
from vssid_broker.vneid_sim.driver import sign_in_at_vneid

HAPPY_CITIZEN = "001085012345"


async def assert_refused(
    stack: Stack, callback: httpx.Response, code: str, status: int
) -> httpx.Response:
    """The page the person lands on, after checking nothing was written; returned."""
    assert "vssid_session=" not in callback.headers.get("set-cookie", "")
    async with AsyncClient() as browser:
        response = await outcome_page(browser, callback)
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"].startswith("text/html")
    assert f'<code id="error-code">{code}</code>' in response.text
    assert "Traceback" not in response.text
    assert "vssid_session=" not in response.headers.get("set-cookie", "")
    assert await stack.count(FederatedLink) == 0
    assert await stack.count(BrowserSession) == 0
    assert await stack.count(RefreshToken) == 0
    async with stack.db() as session:
        outcomes = list(
            await session.scalars(
                select(AuditEvent.outcome).where(AuditEvent.event_type == "login")
            )
        )
    assert outcomes[-1:] == [code]
    return response


async def start_and_sign_in(
    browser: httpx.AsyncClient, stack: Stack, citizen: str = HAPPY_CITIZEN
) -> str:
    start = await browser.get(f"{stack.broker}/auth/vneid/login")
    return await sign_in_at_vneid(browser, start.headers["location"], citizen)


async def test_missing_state(stack: Stack) -> None:
    async with AsyncClient() as browser:
        response = await browser.get(f"{stack.broker}/auth/vneid/callback?code=abc")
    await assert_refused(stack, response, "login_state_invalid", 400)


async def test_unknown_state(stack: Stack) -> None:
    async with AsyncClient() as browser:
        back = await start_and_sign_in(browser, stack)
        params = query_of(back) | {"state": "not-a-state-we-issued"}
        response = await browser.get(f"{stack.broker}/auth/vneid/callback?{urlencode(params)}")
    await assert_refused(stack, response, "login_state_invalid", 400)


async def test_expired_state(stack: Stack) -> None:
    async with AsyncClient() as browser:
        back = await start_and_sign_in(browser, stack)
        stack.clock.advance(stack.settings.login_transaction_ttl_seconds + 1)
        response = await browser.get(back)
    await assert_refused(stack, response, "login_state_invalid", 400)
    async with stack.db() as session:  # a refusal changes nothing: the state is not spent
        assert list(await session.scalars(select(LoginTransaction.consumed_at))) == [None]


async def test_reused_state(stack: Stack) -> None:
    async with AsyncClient() as browser:
        back = await start_and_sign_in(browser, stack)
        first = await browser.get(back)
        assert first.status_code == 302
    async with stack.db.begin() as session:  # forget the first login's results
        for model in (BrowserSession, FederatedLink):
            for row in await session.scalars(select(model)):
                await session.delete(row)
    async with AsyncClient() as attacker:
        attacker.cookies.update(browser.cookies)
        replay = await attacker.get(back)
    await assert_refused(stack, replay, "login_state_invalid", 400)


async def test_callback_in_another_browser(stack: Stack) -> None:
    """Login CSRF: a callback URL planted in a victim's browser must not sign the victim in."""
    async with AsyncClient() as attacker:
        back = await start_and_sign_in(attacker, stack)
    async with AsyncClient() as victim:
        response = await victim.get(back)
    await assert_refused(stack, response, "login_browser_mismatch", 400)


@pytest.mark.parametrize(
    ("fault", "code", "status"),
    [
        ("authorize_wrong_iss", "vneid_issuer_mismatch", 400),
        ("authorize_missing_iss", "vneid_issuer_mismatch", 400),
        ("authorize_access_denied", "vneid_access_denied", 400),
        ("authorize_server_error", "vneid_error", 400),
        ("token_invalid_grant", "vneid_code_exchange_failed", 400),
        ("token_http_500", "vneid_unavailable", 503),
        ("token_non_json", "vneid_unavailable", 503),
        ("id_token_bad_signature", "id_token_signature_invalid", 400),
        ("id_token_alg_none", "id_token_alg_not_allowed", 400),
        ("id_token_hs256_public_key", "id_token_alg_not_allowed", 400),
        ("id_token_wrong_iss", "id_token_issuer_mismatch", 400),
        ("id_token_wrong_aud", "id_token_audience_mismatch", 400),
        ("id_token_extra_aud_no_azp", "id_token_azp_mismatch", 400),
        ("id_token_wrong_nonce", "id_token_nonce_mismatch", 400),
        ("id_token_missing_nonce", "id_token_nonce_mismatch", 400),
        ("id_token_expired", "id_token_expired", 400),
        ("id_token_iat_future", "id_token_iat_invalid", 400),
        ("id_token_missing_sub", "id_token_subject_missing", 400),
        ("id_token_unknown_kid", "id_token_key_unknown", 400),
        ("id_token_wrong_acr", "vneid_level_insufficient", 403),
    ],
)
async def test_provider_misbehaviour_is_refused(
    stack: Stack, fault: str, code: str, status: int
) -> None:
    await stack.fault(fault)
    async with AsyncClient() as browser:
        back = await start_and_sign_in(browser, stack)
        response = await browser.get(back)
    await assert_refused(stack, response, code, status)


async def test_level_one_citizen_is_refused_with_guidance(stack: Stack) -> None:
    async with AsyncClient() as browser:
        back = await start_and_sign_in(browser, stack, "079190123456")
        response = await browser.get(back)
    page = await assert_refused(stack, response, "vneid_level_insufficient", 403)
    assert "mức độ 2" in page.text


async def test_citizen_without_vssid_account_is_told_to_register(stack: Stack) -> None:
    async with AsyncClient() as browser:
        back = await start_and_sign_in(browser, stack, "048095000111")
        response = await browser.get(back)
    page = await assert_refused(stack, response, "vssid_account_required", 404)
    assert "Đăng ký" in page.text


async def test_locked_vssid_account_is_refused(stack: Stack) -> None:
    async with AsyncClient() as browser:
        back = await start_and_sign_in(browser, stack, "040183002233")
        response = await browser.get(back)
    await assert_refused(stack, response, "account_not_active", 403)


async def test_record_without_citizen_id_is_not_linked_on_a_guess(stack: Stack) -> None:
    """Phạm Thị Dung's VssID record matches on name and birth date only: no automatic link,
    a review case for staff, and the person is told so (again, at the next login)."""
    for _ in range(2):
        async with AsyncClient() as browser:
            back = await start_and_sign_in(browser, stack, "031188004567")
            response = await browser.get(back)
        page = await assert_refused(stack, response, "link_under_review", 403)
        assert "cán bộ BHXH kiểm tra" in page.text
        assert "1–2 ngày làm việc" in page.text
    async with stack.db() as session:
        cases = list(await session.scalars(select(ReviewCase)))
    assert [(c.reason, c.status, c.citizen_id) for c in cases] == [
        ("name_birthdate_match", "pending", "031188004567")
    ]


async def test_provider_down_shows_unavailable_page(stack: Stack) -> None:
    async with AsyncClient(timeout=30) as browser:
        back = await start_and_sign_in(browser, stack)
        await stack.fault("token_slow", delay_seconds=stack.settings.vneid_http_timeout_seconds + 1)
        response = await browser.get(back)
    page = await assert_refused(stack, response, "vneid_unavailable", 503)
    assert "tạm thời chưa phản hồi" in page.text


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        ("authorize_temporarily_unavailable", "vneid_error"),
        ("authorize_wrong_state", "login_state_invalid"),
    ],
)
async def test_authorization_response_faults(stack: Stack, fault: str, code: str) -> None:
    await stack.fault(fault)
    async with AsyncClient() as browser:
        back = await start_and_sign_in(browser, stack)
        response = await browser.get(back)
    await assert_refused(stack, response, code, 400)
