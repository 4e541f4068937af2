"""The broker against a provider that behaves exactly as the specifications say, over real
HTTP: logout both ways (RP-initiated by GET or POST, back-channel with a rotated key,
front-channel), level 2 asked as an essential claim, the app's own registration, scopes
honoured, the issuer compared exactly as configured."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select

from tests.conftest import Stack
from tests.e2e.test_callback_refusals import assert_refused, start_and_sign_in
from tests.e2e.test_conformance import StackFactory, own_stack, signs_in
from tests.sessions.test_browser_sessions import hidden_fields
from tests.support.flows import (
    APP_REDIRECT_URI,
    app_complete,
    app_until_redirect,
    browser_login,
    csrf_token_of,
    query_of,
)
from tests.support.http import AsyncClient
from vssid_broker.audit.models import AuditEvent
from vssid_broker.sessions.models import BrowserSession, RefreshToken
from vssid_broker.vneid_sim.driver import sign_in_at_vneid

__all__ = ["own_stack"]  # the fixture, used by name

AN, KHOA, BINH = "001085012345", "046075001122", "079190123456"
FRONTCHANNEL = "{broker}/auth/vneid/frontchannel-logout"
BACKCHANNEL = "{broker}/auth/vneid/backchannel-logout"


async def signed_in_browser(browser: httpx.AsyncClient, stack: Stack, citizen: str = AN) -> str:
    """Sign in; the account page's CSRF token."""
    callback = await browser_login(browser, stack.broker, citizen)
    assert callback.status_code == 302, callback.text[:300]
    page = await browser.get(f"{stack.broker}/account")
    assert page.status_code == 200
    return csrf_token_of(page.text)


async def is_signed_in(browser: httpx.AsyncClient, stack: Stack) -> bool:
    return (await browser.get(f"{stack.broker}/account")).status_code == 200


async def ended_outcomes(stack: Stack) -> list[str]:
    async with stack.db() as session:
        return list(
            await session.scalars(
                select(AuditEvent.outcome).where(AuditEvent.event_type == "sessions.ended")
            )
        )


# --- 1. RP-initiated logout: POST by default, GET without the hint as a setting --------------
async def test_logout_posts_the_id_token_to_vneid_and_never_puts_it_in_a_url(
    stack: Stack,
) -> None:
    async with AsyncClient() as browser:
        token = await signed_in_browser(browser, stack)
        logout = await browser.post(f"{stack.broker}/auth/logout", data={"csrf_token": token})
        assert logout.status_code == 303
        assert logout.headers["location"] == "/auth/logout/vneid"
        onward = await browser.get(f"{stack.broker}/auth/logout/vneid")
        assert onward.headers["cache-control"] == "no-store"
        fields = hidden_fields(onward.text)
        assert set(fields) == {"id_token_hint", "client_id", "post_logout_redirect_uri", "state"}
        at_vneid = await browser.post(f"{stack.sim}/logout", data=fields)
        assert at_vneid.status_code == 302
        assert at_vneid.headers["location"] == f"{stack.broker}/signed-out?state={fields['state']}"
        home = await browser.get(at_vneid.headers["location"])
        assert home.status_code == 200 and not await is_signed_in(browser, stack)
    urls = [str(r.url) for r in (logout, onward, at_vneid, home)] + [
        logout.headers["location"],
        at_vneid.headers["location"],
    ]
    assert not [url for url in urls if "id_token_hint" in url or "eyJ" in url]


async def test_a_provider_serving_logout_by_get_only_gets_no_id_token_in_the_url(
    own_stack: StackFactory,
) -> None:
    with own_stack(sim={"end_session_methods": ["GET"]}, vneid_end_session_method="GET") as s:
        async with AsyncClient() as browser:
            token = await signed_in_browser(browser, s)
            logout = await browser.post(f"{s.broker}/auth/logout", data={"csrf_token": token})
            assert logout.status_code == 303
            assert logout.headers["cache-control"] == "no-store"
            to_vneid = logout.headers["location"]
            assert to_vneid.startswith(f"{s.sim}/logout?")
            sent = {k: v[0] for k, v in parse_qs(urlsplit(to_vneid).query).items()}
            assert set(sent) == {"client_id", "post_logout_redirect_uri", "state"}
            assert "eyJ" not in to_vneid
            at_vneid = await browser.get(to_vneid)
            signed_in_after = await is_signed_in(browser, s)
    assert at_vneid.status_code == 302
    assert at_vneid.headers["location"] == f"{s.broker}/signed-out?state={sent['state']}"
    assert not signed_in_after


async def test_logout_by_post_where_the_provider_wants_it(own_stack: StackFactory) -> None:
    with own_stack(sim={"end_session_methods": ["POST"]}, vneid_end_session_method="POST") as s:
        async with AsyncClient() as browser:
            token = await signed_in_browser(browser, s)
            logout = await browser.post(f"{s.broker}/auth/logout", data={"csrf_token": token})
            # 303 to a GET page of ours, so Back never re-sends the logout; that page sends
            # the form to VNeID.
            assert logout.status_code == 303
            assert logout.headers["location"] == "/auth/logout/vneid"
            onward = await browser.get(f"{s.broker}/auth/logout/vneid")
            assert f'action="{s.sim}/logout"' in onward.text
            assert "<script>" not in onward.text  # the form is sent by a script file
            assert 'src="/static/auto-submit.js"' in onward.text
            fields = hidden_fields(onward.text)
            at_vneid = await browser.post(f"{s.sim}/logout", data=fields)
            refused_get = await browser.get(f"{s.sim}/logout", params=fields)
    assert at_vneid.status_code == 302
    assert at_vneid.headers["location"] == f"{s.broker}/signed-out?state={fields['state']}"
    assert refused_get.status_code == 405


# --- 2. level 2 asked as an essential claim -----------------------------------------------------
async def test_a_level_one_person_is_refused_at_vneid_before_sharing_anything(
    stack: Stack,
) -> None:
    async with AsyncClient() as browser:
        start = await browser.get(f"{stack.broker}/auth/vneid/login")
        sent = query_of(start.headers["location"])
        assert sent["acr_values"] == "LoA2"
        assert sent["claims"] == '{"id_token":{"acr":{"essential":true,"values":["LoA2"]}}}'
        back = await sign_in_at_vneid(browser, start.headers["location"], BINH)
        # The consent step never came: VNeID answered at once with the OIDC error.
        assert query_of(back)["error"] == "unmet_authentication_requirements"
        response = await browser.get(back)
    await assert_refused(stack, response, "vneid_level_insufficient", 403)


async def test_the_app_forwards_vneids_refusal_and_is_told_level_two_is_needed(
    stack: Stack,
) -> None:
    async with AsyncClient() as app:
        redirect = await app_until_redirect(app, stack.broker, BINH)
        assert redirect.params["error"] == "unmet_authentication_requirements"
        done = await app.post(
            f"{stack.broker}/api/v1/auth/vneid/complete",
            json={
                "state": redirect.params["state"],
                "iss": redirect.params["iss"],
                "error": redirect.params["error"],
                "code_verifier": redirect.pkce.verifier,
            },
        )
        both = await app.post(
            f"{stack.broker}/api/v1/auth/vneid/complete",
            json={"state": "s", "code": "c", "error": "e", "code_verifier": "v" * 43},
        )
    assert done.status_code == 403
    assert done.headers["content-type"].startswith("application/problem+json")
    assert done.json()["code"] == "vneid_level_insufficient"
    assert both.status_code in (400, 422)
    assert await stack.count(RefreshToken) == 0


async def test_the_brokers_own_acr_check_still_refuses_level_one(own_stack: StackFactory) -> None:
    """A provider that ignores the essential claim (here: not asked) still cannot get a level-1
    person in: the ID token's acr is checked by the broker itself."""
    with own_stack(vneid_request_essential_acr=False) as stack:
        async with AsyncClient() as browser:
            start = await browser.get(f"{stack.broker}/auth/vneid/login")
            assert "claims" not in query_of(start.headers["location"])
            back = await sign_in_at_vneid(browser, start.headers["location"], BINH)
            assert "code" in query_of(back)  # consented and shared at VNeID
            response = await browser.get(back)
        await assert_refused(stack, response, "vneid_level_insufficient", 403)


# --- 3. the app's own registration --------------------------------------------------------------
async def test_browser_and_app_use_their_own_registrations(stack: Stack) -> None:
    async with AsyncClient() as client:
        browser_start = await client.get(f"{stack.broker}/auth/vneid/login")
        assert query_of(browser_start.headers["location"])["client_id"] == "vssid-broker"
        redirect = await app_until_redirect(client, stack.broker, KHOA)
        done = await app_complete(client, stack.broker, redirect)
    assert done.status_code == 200, done.text
    assert await stack.count(RefreshToken) == 1


async def test_the_app_may_share_the_browsers_registration(own_stack: StackFactory) -> None:
    """A provider that gave one registration for both (with the app's redirect on it)."""
    with own_stack(
        web_client={"application_type": "native", "redirect_uris": [APP_REDIRECT_URI]},
        vneid_app_client_id="vssid-broker",
        vneid_app_token_auth_method="client_secret_basic",
    ) as stack:
        async with AsyncClient() as app:
            redirect = await app_until_redirect(app, stack.broker, KHOA)
            done = await app_complete(app, stack.broker, redirect)
    assert done.status_code == 200, done.text


# --- 4. the provider releases what the scopes cover ---------------------------------------------
async def test_without_the_citizen_id_scope_vneid_shares_no_citizen_id(
    own_stack: StackFactory,
) -> None:
    with own_stack(vneid_scope="openid profile") as stack:
        async with AsyncClient() as browser:
            back = await start_and_sign_in(browser, stack)
            response = await browser.get(back)
        await assert_refused(stack, response, "vneid_claims_incomplete", 400)


# --- 5. the issuer exactly as configured --------------------------------------------------------
async def test_an_issuer_ending_in_a_slash_works(own_stack: StackFactory) -> None:
    with own_stack(issuer_suffix="/") as stack:
        assert stack.settings.vneid_issuer.endswith("/")
        await signs_in(stack)


async def test_an_issuer_configured_without_its_slash_is_a_misconfiguration(
    own_stack: StackFactory,
) -> None:
    with own_stack(issuer_suffix="/") as stack:
        stack.ctx.settings.__dict__["vneid_issuer"] = stack.settings.vneid_issuer.rstrip("/")
        async with AsyncClient() as browser:
            response = await browser.get(f"{stack.broker}/auth/vneid/login")
    assert response.status_code == 502
    assert '<code id="error-code">vneid_metadata_invalid</code>' in response.text


# --- 7. logout from the provider's side ---------------------------------------------------------
async def test_back_channel_logout_signed_with_a_rotated_key(own_stack: StackFactory) -> None:
    with own_stack(web_client={"backchannel_logout_uri": BACKCHANNEL}) as stack:
        async with AsyncClient() as browser:
            await signed_in_browser(browser, stack, KHOA)  # the JWKS is cached with key one
            rotated = await browser.post(f"{stack.sim}/_test/keys/rotate")
            new_kid = rotated.json()["kid"]
            locked = await browser.post(f"{stack.sim}/_test/citizens/{KHOA}/lock")
            [delivery] = locked.json()["backchannel_logout"]
            assert delivery["status"] == 200
            assert not await is_signed_in(browser, stack)
        keys = await stack.ctx.provider.signing_keys()
    assert new_kid in [key.kid for key in keys.keys]  # learnt from the logout token's kid
    assert "vneid_backchannel_logout" in await ended_outcomes(stack)


async def test_front_channel_logout_ends_the_sessions_of_that_vneid_session(
    own_stack: StackFactory,
) -> None:
    """A provider offering only front-channel logout: its logged-out page frames our URI with
    its iss and the sid; the browser session that sid started ends, another person's stays."""
    with own_stack(web_client={"frontchannel_logout_uri": FRONTCHANNEL}) as stack:
        async with AsyncClient() as browser, AsyncClient() as bystander:
            await signed_in_browser(browser, stack, AN)
            await signed_in_browser(bystander, stack, KHOA)
            page = await browser.get(f"{stack.sim}/_test/citizens/{AN}/sign-out")
            found = re.search(r'<iframe[^>]* src="([^"]+)"', page.text)
            assert found, page.text
            frame_url = html.unescape(found.group(1))
            sent = query_of(frame_url)
            assert frame_url.startswith(f"{stack.broker}/auth/vneid/frontchannel-logout?")
            assert sent["iss"] == stack.settings.vneid_issuer and sent["sid"]
            framed = await browser.get(frame_url)  # what the browser does with the iframe
            assert framed.status_code == 200
            assert framed.headers["content-security-policy"] == f"frame-ancestors {stack.sim}"
            assert "no-store" in framed.headers["cache-control"]
            assert not await is_signed_in(browser, stack)
            assert await is_signed_in(bystander, stack)
    async with stack.db() as session:
        rows = list(await session.scalars(select(BrowserSession)))
    assert all(row.vneid_sid for row in rows)
    assert sorted(row.revoked_at is None for row in rows) == [False, True]
    assert "vneid_frontchannel_logout" in await ended_outcomes(stack)


@pytest.mark.parametrize(
    "params",
    [{"sid": "{sid}"}, {"iss": "https://evil.example", "sid": "{sid}"}, {"iss": "{iss}"}],
    ids=["no iss", "foreign iss", "no sid"],
)
async def test_front_channel_logout_without_vneids_iss_and_sid_ends_nothing(
    own_stack: StackFactory, params: dict[str, str]
) -> None:
    with own_stack(web_client={"frontchannel_logout_uri": FRONTCHANNEL}) as stack:
        async with AsyncClient() as browser:
            await signed_in_browser(browser, stack, AN)
            async with stack.db() as session:
                sid = await session.scalar(select(BrowserSession.vneid_sid))
            assert sid
            filled = {
                k: v.format(sid=sid, iss=stack.settings.vneid_issuer) for k, v in params.items()
            }
            framed = await browser.get(
                f"{stack.broker}/auth/vneid/frontchannel-logout", params=filled
            )
            assert framed.status_code == 400
            assert await is_signed_in(browser, stack)
