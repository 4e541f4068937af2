"""Many logins of one linked person at the same moment, over real HTTP against the running
broker and the simulated VNeID: every one is answered, none with a 5xx.

On PostgreSQL each login updates the person's link (`last_login_at`) and appends to the audit
chain under its lock; taken in opposite orders by two logins, they deadlocked and one of them
got a 500 (3 of 8 in one burst). Run on PostgreSQL with VSSID_TEST_DATABASE_URL.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.conftest import Stack
from tests.support.flows import app_complete, app_until_redirect
from tests.support.http import AsyncClient
from vssid_broker.audit.models import AuditEvent
from vssid_broker.linking.models import FederatedLink
from vssid_broker.vneid_sim.driver import sign_in_at_vneid

AN = "001085012345"
LOGINS = 20


async def browser_callback(browser: httpx.AsyncClient, broker: str) -> str:
    """Click the login button and sign in at VNeID: the URL back to the broker's callback."""
    start = await browser.get(f"{broker}/auth/vneid/login")
    assert start.status_code == 302, start.text
    return await sign_in_at_vneid(browser, start.headers["location"], AN)


@pytest.mark.parametrize("channel", ["app", "browser"])
async def test_twenty_simultaneous_logins_of_one_person_all_succeed(
    stack: Stack, channel: str
) -> None:
    async with AsyncClient(timeout=60) as first:
        linked = await app_complete(
            first, stack.broker, await app_until_redirect(first, stack.broker, AN)
        )
        assert linked.status_code == 200, linked.text
    clients = [AsyncClient(timeout=60) for _ in range(LOGINS)]
    try:
        # Each signs in at VNeID first; then all of them come back to the broker at once.
        if channel == "app":
            redirects = [await app_until_redirect(c, stack.broker, AN) for c in clients]
            answers = await asyncio.gather(
                *[app_complete(c, stack.broker, r) for c, r in zip(clients, redirects, strict=True)]
            )
        else:
            callbacks = [await browser_callback(c, stack.broker) for c in clients]
            answers = await asyncio.gather(
                *[c.get(url) for c, url in zip(clients, callbacks, strict=True)]
            )
    finally:
        await asyncio.gather(*[c.aclose() for c in clients])
    expected = 200 if channel == "app" else 302
    assert [a.status_code for a in answers] == [expected] * LOGINS, [
        (a.status_code, a.text[:200]) for a in answers if a.status_code != expected
    ]
    if channel == "app":
        assert len({a.json()["refresh_token"] for a in answers}) == LOGINS
    else:
        assert {a.headers["location"] for a in answers} == {"/account"}
    assert await stack.count(FederatedLink) == 1
    assert await stack.count(AuditEvent) > LOGINS
