"""Whom an audit event without an account is about, for the person's export

A refused login, a review case opened or decided, a staff member shown a case's citizen ID: the
audit events of these name no account, so the person's export left them out. `audit_event_people`
ties such an event to the person by the blind index of their citizen ID (never the number), beside
the chain rather than in it, so that a blind-index key rotation can rewrite it.

Events written before this revision that name a review case are tied to the case's person here,
in one INSERT ... SELECT over the trail. Earlier refused logins kept only a masked citizen ID, which
names no one: they stay untied.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-10 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "audit_event_people",
        sa.Column("event_id", BIG_ID, autoincrement=False, nullable=False),
        sa.Column("citizen_id_index", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["audit_events.id"],
            name=op.f("fk_audit_event_people_event_id_audit_events"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_audit_event_people")),
    )
    op.create_index(
        op.f("ix_audit_event_people_citizen_id_index"), "audit_event_people", ["citizen_id_index"]
    )
    events = sa.table("audit_events", sa.column("id", BIG_ID), sa.column("details", sa.JSON))
    cases = sa.table("review_cases", sa.column("id", BIG_ID), sa.column("citizen_id_index"))
    people = sa.table("audit_event_people", sa.column("event_id"), sa.column("citizen_id_index"))
    case_id = events.c.details["case_id"].as_integer()
    op.execute(
        people.insert().from_select(
            ["event_id", "citizen_id_index"],
            sa.select(events.c.id, cases.c.citizen_id_index).join(cases, cases.c.id == case_id),
        )
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_audit_event_people_citizen_id_index"), table_name="audit_event_people")
    op.drop_table("audit_event_people")
