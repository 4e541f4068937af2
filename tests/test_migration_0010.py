"""Revision 0010 (benefits, the card's QR fields) keeps every existing row, both ways."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.test_migrations import scratch_engine as scratch_engine  # the shared fixture
from vssid_broker import schema


async def test_cards_recorded_before_0010_survive_upgrade_and_downgrade(
    scratch_engine: AsyncEngine,
) -> None:
    await schema.upgrade_engine(scratch_engine, "0006")
    async with scratch_engine.begin() as connection:
        await connection.execute(
            sa.text(
                "INSERT INTO accounts (id, bhxh_code, full_name, birth_date, gender, status, "
                "created_at, updated_at) VALUES (1, '0112345678', 'Nguyễn Văn An', '1985-03-12', "
                "'male', 'active', '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
            )
        )
        await connection.execute(
            sa.text(
                "INSERT INTO health_insurance_cards (account_id, card_code, benefit_level, "
                "primary_care_facility, valid_from, valid_to) VALUES (1, 'DN4010112345678', 4, "
                "'Bệnh viện Đa khoa Xanh Pôn', '2026-01-01', '2026-12-31')"
            )
        )

    await schema.upgrade_engine(scratch_engine)
    async with scratch_engine.connect() as connection:
        card = (
            await connection.execute(
                sa.text(
                    "SELECT card_code, primary_care_facility, valid_to, facility_code, "
                    "five_years_from FROM health_insurance_cards"
                )
            )
        ).one()
        benefits = await connection.scalar(sa.text("SELECT count(*) FROM insurance_benefits"))
    assert card.card_code == "DN4010112345678"
    assert card.primary_care_facility == "Bệnh viện Đa khoa Xanh Pôn"
    assert str(card.valid_to) == str(date(2026, 12, 31))
    assert card.facility_code is None and card.five_years_from is None
    assert benefits == 0

    await schema.downgrade_engine(scratch_engine, "0006")
    async with scratch_engine.connect() as connection:
        codes = list(
            await connection.scalars(sa.text("SELECT card_code FROM health_insurance_cards"))
        )
    assert codes == ["DN4010112345678"]
