"""Revision 0020 ties the audit events already written about a review case to the case's person,
so their export finds them; events about no case stay untied."""

from __future__ import annotations

from datetime import UTC, date, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.test_migrations import scratch_engine as scratch_engine  # the shared fixture
from vssid_broker import schema

AT = datetime(2026, 3, 1, tzinfo=UTC)
INDEX = "ab" * 32
CASES = sa.table(
    "review_cases",
    *(sa.column(name) for name in ("id", "provider", "subject", "citizen_id_sealed")),
    *(sa.column(name) for name in ("citizen_id_index", "full_name", "reason", "status")),
    sa.column("birth_date", sa.Date),
    sa.column("candidate_account_ids", sa.JSON),
    sa.column("version", sa.Integer),
    sa.column("created_at", sa.DateTime(timezone=True)),
)
EVENTS = sa.table(
    "audit_events",
    *(sa.column(name) for name in ("id", "event_type", "outcome", "actor", "prev_hash")),
    sa.column("entry_hash"),
    sa.column("occurred_at", sa.DateTime(timezone=True)),
    sa.column("details", sa.JSON),
)


def event(event_id: int, event_type: str, details: dict[str, object]) -> dict[str, object]:
    return {
        "id": event_id, "event_type": event_type, "outcome": "x", "actor": "system",
        "prev_hash": "0" * 64, "entry_hash": f"{event_id:064d}", "occurred_at": AT,
        "details": details,
    }  # fmt: skip


async def test_events_about_a_case_written_before_0020_are_tied_to_its_person(
    scratch_engine: AsyncEngine,
) -> None:
    await schema.upgrade_engine(scratch_engine, "0019")
    async with scratch_engine.begin() as connection:
        await connection.execute(
            CASES.insert().values(
                id=7,
                provider="https://vneid.example",
                subject="s-1",
                citizen_id_sealed="k.x",
                citizen_id_index=INDEX,
                full_name="Phạm Thị Dung",
                reason="record_mismatch",
                status="pending",
                birth_date=date(1988, 11, 3),
                candidate_account_ids=[1],
                version=1,
                created_at=AT,
            )
        )
        await connection.execute(
            EVENTS.insert(),
            [
                event(1, "review_case.opened", {"case_id": 7, "citizen_id": "031******567"}),
                event(2, "login", {"channel": "app", "citizen_id": "031******567"}),
                event(3, "review_case.decided", {"case_id": 7, "reason": "khớp"}),
                event(4, "review_case.decided", {"case_id": 8}),  # a case since purged
            ],
        )

    await schema.upgrade_engine(scratch_engine)
    async with scratch_engine.connect() as connection:
        ties = (
            await connection.execute(
                sa.text(
                    "SELECT event_id, citizen_id_index FROM audit_event_people ORDER BY event_id"
                )
            )
        ).all()
    assert [tuple(tie) for tie in ties] == [(1, INDEX), (3, INDEX)]

    await schema.downgrade_engine(scratch_engine, "0019")
    async with scratch_engine.connect() as connection:
        kept = await connection.scalar(sa.text("SELECT count(*) FROM audit_events"))
    assert kept == 4
