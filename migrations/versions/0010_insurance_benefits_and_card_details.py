"""Benefits received, and what the health-insurance card's QR code carries

A person signs in to follow their participation and the benefits they received ("thụ hưởng"):
`insurance_benefits` holds each payment (sickness, maternity, pension, unemployment…). The card
gains the fields its QR code carries besides those already kept (docs/health-card.md).

Existing rows are kept as they are: the new card columns are nullable, and a card recorded
before this revision renders with those QR fields empty.

Revision ID: 0010
Revises: 0008
Create Date: 2026-11-29 08:40:00.000000
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
CARD_COLUMNS: tuple[tuple[str, sa.types.TypeEngine[Any]], ...] = (
    ("facility_code", sa.String(12)),
    ("issued_on", sa.Date()),
    ("managing_office_code", sa.String(10)),
    ("five_years_from", sa.Date()),
    ("living_area", sa.String(2)),
    ("holder_address", sa.String(300)),
)


def upgrade() -> None:
    op.create_table(
        "insurance_benefits",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("account_id", BIG_ID, nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("insurance", sa.String(length=4), nullable=False),
        sa.Column("paid_on", sa.Date(), nullable=False),
        sa.Column("period_from", sa.Date(), nullable=True),
        sa.Column("period_to", sa.Date(), nullable=True),
        sa.Column("amount_vnd", BIG_ID, nullable=False),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.CheckConstraint(
            "kind IN ('sickness', 'maternity', 'health_recovery', 'occupational', 'pension', "
            "'unemployment', 'medical')",
            name=op.f("ck_insurance_benefits_benefit_kind_known"),
        ),
        sa.CheckConstraint(
            "insurance IN ('BHXH', 'BHYT', 'BHTN')",
            name=op.f("ck_insurance_benefits_benefit_insurance_known"),
        ),
        sa.CheckConstraint(
            "amount_vnd >= 0", name=op.f("ck_insurance_benefits_benefit_amount_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_insurance_benefits_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_insurance_benefits")),
    )
    op.create_index(
        "ix_insurance_benefits_account_paid_on",
        "insurance_benefits",
        ["account_id", "paid_on"],
    )
    with op.batch_alter_table("health_insurance_cards") as batch:
        for name, type_ in CARD_COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("health_insurance_cards") as batch:
        for name, _type in reversed(CARD_COLUMNS):
            batch.drop_column(name)
    op.drop_index("ix_insurance_benefits_account_paid_on", table_name="insurance_benefits")
    op.drop_table("insurance_benefits")
