"""The demo's review cases come from the simulator's real citizens, one per identity."""

from __future__ import annotations

from sqlalchemy import select

from tests.conftest import Stack
from tests.support.flows import browser_login
from tests.support.http import AsyncClient
from vssid_broker.linking.models import FederatedLink, ReviewCase
from vssid_broker.seeding.demo_cases import seed_demo_cases
from vssid_broker.vneid_sim.citizens import load_citizens

DUNG, EM = "031188004567", "092087007788"


async def test_demo_cases_are_what_those_citizens_logins_open(stack: Stack) -> None:
    async with stack.db.begin() as session:
        assert await seed_demo_cases(session, issuer=stack.sim, now=stack.clock()) == 2
    async with stack.db.begin() as session:  # a second run adds nothing
        assert await seed_demo_cases(session, issuer=stack.sim, now=stack.clock()) == 0
    subjects = {c.citizen_id: str(c.sub) for c in load_citizens()}
    async with stack.db() as session:
        cases = list(await session.scalars(select(ReviewCase).order_by(ReviewCase.id)))
    assert [(c.citizen_id, c.subject) for c in cases] == [
        (DUNG, subjects[DUNG]),
        (EM, subjects[EM]),
    ]
    assert await stack.count(FederatedLink) == 0  # seeding links nobody

    async with AsyncClient() as browser:  # her real login finds her case, opens no other
        refused = await browser_login(browser, stack.broker, DUNG)
    assert '<code id="error-code">link_under_review</code>' in refused.text
    assert await stack.count(ReviewCase) == 2
