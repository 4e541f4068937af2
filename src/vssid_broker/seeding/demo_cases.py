"""Demo review cases, opened exactly as the simulated citizens' first logins would open them.

Each level-2 citizen of the simulator is put through the linking rules (`linking.resolve`)
with their real VNeID subject; where the rules send the identity to staff, the case stays,
and every other outcome (an automatic link, "no account", a refusal) is rolled back, so the
demo's logins still behave as the banner says. One case per identity, no made-up subjects: a
reviewer decides a case in the console, then signs in as that citizen and sees the result.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vssid_broker.federation.claims import VerifiedIdentity
from vssid_broker.linking import service as linking
from vssid_broker.linking.models import ReviewCase
from vssid_broker.vneid_sim.citizens import Citizen, load_citizens

AGES_HOURS = (50, 30, 20, 5, 1)
"""How long ago each demo case was opened, in turn: the queue shows overdue and fresh cases."""


def identity_of(citizen: Citizen, issuer: str) -> VerifiedIdentity:
    return VerifiedIdentity(
        issuer=issuer,
        subject=str(citizen.sub),
        citizen_id=citizen.citizen_id,
        full_name=citizen.full_name,
        birth_date=citizen.birthdate,
        gender=citizen.gender,
        acr=citizen.acr,
        amr=("vneid",),
    )


async def seed_demo_cases(session: AsyncSession, *, issuer: str, now: datetime) -> int:
    """Open the demo cases once (a second run finds them and adds nothing); returns how many."""
    if await session.scalar(select(ReviewCase.id).limit(1)) is not None:
        return 0
    opened = 0
    for citizen in load_citizens():
        if citizen.level != 2 or citizen.locked:
            continue  # VNeID itself would never send these to the broker
        at = now - timedelta(hours=AGES_HOURS[opened % len(AGES_HOURS)])
        attempt = await session.begin_nested()
        outcome = await linking.resolve(
            session, identity_of(citizen, issuer), now=at, request_id="demo-seed"
        )
        if isinstance(outcome, linking.NeedsReview):
            await attempt.commit()
            opened += 1
        else:
            await attempt.rollback()
    return opened
