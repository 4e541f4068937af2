"""Two first logins of the same person at the same moment end in exactly one link.

Not a simulation: two database sessions, each inside its own open transaction, on the suite's
real database (PostgreSQL with VSSID_TEST_DATABASE_URL). The first login holds its new link
open while the second one runs its rules; the second must end on the link the first made.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from tests.conftest import Stack
from tests.linking.test_rules import AN
from vssid_broker.audit.models import AuditEvent
from vssid_broker.linking import service as linking
from vssid_broker.linking.models import FederatedLink
from vssid_broker.sealing import blind_index


async def test_two_simultaneous_first_logins_make_one_link(stack: Stack) -> None:
    first_resolved, release_first = asyncio.Event(), asyncio.Event()

    async def login(hold_open: bool) -> linking.LinkOutcome:
        async with stack.db.begin() as session:
            outcome = await linking.resolve(session, AN, now=stack.clock(), request_id="race")
            if hold_open:  # the link is inserted (flushed) but not committed
                first_resolved.set()
                await release_first.wait()
            return outcome

    first = asyncio.create_task(login(hold_open=True))
    await asyncio.wait_for(first_resolved.wait(), timeout=10)
    second = asyncio.create_task(login(hold_open=False))

    # While the first login's link is uncommitted, the second one runs its rules. On
    # PostgreSQL its insert waits on the unique index (provider, subject), then fails, and it
    # signs in to the first one's link; it must never decide on the stale "not linked" read.
    await asyncio.wait({second}, timeout=0.5)
    release_first.set()
    outcomes = await asyncio.gather(first, second)
    assert [type(o) for o in outcomes] == [linking.AutoLinked, linking.Linked]
    assert outcomes[0].account.id == outcomes[1].account.id  # type: ignore[union-attr]
    async with stack.db() as session:
        links = list(await session.scalars(select(FederatedLink)))
        created = list(
            await session.scalars(select(AuditEvent).where(AuditEvent.event_type == "link.created"))
        )
    assert len(links) == 1
    assert len(created) == 1


async def test_a_link_committed_between_two_rules_is_recognised_as_ours(stack: Stack) -> None:
    """The other first login commits after this one found "not linked" (rule 1) and before
    it checks the account (rule 2): the link it meets is its own identity's, so it signs in."""
    from vssid_broker.accounts.models import Account
    from vssid_broker.linking.models import ReviewCase

    async with stack.db.begin() as session:
        account = await session.scalar(
            select(Account).where(Account.citizen_id_index == blind_index(AN.citizen_id))
        )
        assert account is not None
        session.add(
            FederatedLink(
                account_id=account.id,
                provider=AN.issuer,
                subject=AN.subject,
                citizen_id=AN.citizen_id,
                method="citizen_id_match",
                linked_by="system",
                linked_at=stack.clock(),
            )
        )
    async with stack.db.begin() as session:
        # What the one statement after rule 1's finds now: the account and that link.
        _case, carrier, carrier_link = (
            await session.execute(linking._what_an_unlinked_identity_meets(AN))
        ).one()
        assert carrier is not None and carrier_link is not None
        outcome = await linking._rule_2_or_4_one_carrier(
            session, AN, carrier, carrier_link, stack.clock(), "race"
        )
    assert isinstance(outcome, linking.Linked)
    assert await stack.count(ReviewCase) == 0
