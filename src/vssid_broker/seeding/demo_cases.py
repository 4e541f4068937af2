"""Demo review cases, one of each kind the rules open, so a reviewer can try the queue.

The identities are made up (subjects `demo-…`, citizen IDs no simulated citizen has), so the
demo's real logins keep behaving as the banner says. Several accounts carrying one citizen ID
cannot be seeded: the accounts table allows a citizen ID once.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vssid_broker.accounts.models import Account
from vssid_broker.linking.models import FederatedLink, ReviewCase, ReviewReason

PHUC_CITIZEN_ID = "001080090001"
QUYNH_CITIZEN_ID = "001090090002"


async def seed_demo_cases(session: AsyncSession, *, issuer: str, now: datetime) -> int:
    """Insert the demo cases (and the two accounts they need) once; returns cases added."""
    if await session.scalar(select(Account.id).where(Account.bhxh_code == "0112340001")):
        return 0
    phuc = Account(
        bhxh_code="0112340001",
        citizen_id=PHUC_CITIZEN_ID,
        full_name="Trịnh Văn Phúc",
        birth_date=date(1980, 8, 8),
        gender="male",
        phone=None,
        status="active",
    )
    quynh = Account(
        bhxh_code="0112340002",
        citizen_id=QUYNH_CITIZEN_ID,
        full_name="Mai Thị Quỳnh",
        birth_date=date(1990, 2, 2),
        gender="female",
        phone=None,
        status="active",
    )
    session.add_all([phuc, quynh])
    await session.flush()
    session.add(
        FederatedLink(
            account_id=phuc.id,
            provider=issuer,
            subject="demo-phuc-first",
            citizen_id=PHUC_CITIZEN_ID,
            method="citizen_id_match",
            linked_by="system",
            linked_at=now - timedelta(days=90),
        )
    )
    by_code = {
        a.bhxh_code: a.id
        for a in await session.scalars(
            select(Account).where(Account.bhxh_code.in_(["3112345670", "9212345601", "9212345602"]))
        )
    }

    def case(
        subject: str,
        citizen_id: str,
        name: str,
        born: date,
        reason: ReviewReason,
        candidates: list[int],
        hours_ago: int,
    ) -> ReviewCase:
        return ReviewCase(
            provider=issuer,
            subject=subject,
            citizen_id=citizen_id,
            full_name=name,
            birth_date=born,
            candidate_account_ids=candidates,
            reason=reason,
            status="pending",
            version=1,
            created_at=now - timedelta(hours=hours_ago),
        )

    cases = [
        case("demo-dung", "031188004567", "Phạm Thị Dung", date(1988, 1, 30),
             ReviewReason.NAME_BIRTHDATE_MATCH, [by_code["3112345670"]], 50),
        case("demo-em", "092087007788", "Hoàng Văn Em", date(1987, 5, 5),
             ReviewReason.NAME_BIRTHDATE_MATCH,
             [by_code["9212345601"], by_code["9212345602"]], 30),
        case("demo-phuc-second", PHUC_CITIZEN_ID, "Trịnh Văn Phúc", date(1980, 8, 8),
             ReviewReason.ACCOUNT_LINKED_ELSEWHERE, [phuc.id], 20),
        case("demo-phuc-first", "001080090009", "Trịnh Văn Phúc", date(1980, 8, 8),
             ReviewReason.SUBJECT_LINKED_ELSEWHERE, [phuc.id], 5),
        case("demo-quynh", QUYNH_CITIZEN_ID, "Mai Thị Quỳnh", date(1990, 2, 20),
             ReviewReason.RECORD_MISMATCH, [quynh.id], 1),
    ]  # fmt: skip
    session.add_all(cases)
    return len(cases)
