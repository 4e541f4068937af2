"""The person's history and health-insurance card, as the app reads them over real HTTP."""

from __future__ import annotations

import io
from datetime import date

import httpx
import zxingcpp
from PIL import Image
from sqlalchemy import delete, select

from tests.conftest import Stack
from tests.support.flows import app_complete, app_until_redirect
from tests.support.http import AsyncClient
from vssid_broker.accounts import service as accounts
from vssid_broker.accounts.models import (
    Account,
    HealthInsuranceCard,
    InsuranceKind,
    InsurancePeriod,
)

AN, SA_RUONE, BAO = "001085012345", "094160091011", "056204060708"
"""An (a valid card), Thạch Thị Sa Rươne (a pensioner: 23 payments), Dương Quốc Bảo (a card
that expired at the end of 2025)."""


async def signed_in_app(stack: Stack, app: httpx.AsyncClient, citizen_id: str) -> None:
    done = await app_complete(
        app, stack.broker, await app_until_redirect(app, stack.broker, citizen_id)
    )
    assert done.status_code == 200, done.text
    app.headers["Authorization"] = f"Bearer {done.json()['access_token']}"


def qr_fields(png: bytes) -> list[str]:
    (found,) = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    return found.text.split("|")


async def test_history_shows_periods_salary_contributions_and_benefits(stack: Stack) -> None:
    async with AsyncClient() as app:
        await signed_in_app(stack, app, AN)
        history = (await app.get(f"{stack.broker}/api/v1/me/insurance")).json()
    assert history["contributions"]["total_months"] >= 12 * 18
    periods = history["periods"]["items"]
    assert periods[0]["start_month"] >= periods[-1]["start_month"]  # newest first
    salaries = {(p["kind"], p["employer"]): p["salary_basis_vnd"] for p in periods}
    assert salaries[("BHXH", "Công ty TNHH Cơ khí Đông Anh")] == 6_200_000
    assert salaries[("BHYT", None)] is None
    assert [b["label"] for b in history["benefits"]["items"]] == ["Ốm đau", "Ốm đau"]
    assert history["health_card"]["five_years_from"] == "2013-07-01"


async def test_benefits_page_on_without_gaps_or_repeats(stack: Stack) -> None:
    seen: list[str] = []
    async with AsyncClient() as app:
        await signed_in_app(stack, app, SA_RUONE)
        first = (await app.get(f"{stack.broker}/api/v1/me/insurance", params={"limit": 10})).json()
        page = first["benefits"]
        while True:
            seen += [b["description"] for b in page["items"]]
            if page["next_offset"] is None:
                break
            response = await app.get(
                f"{stack.broker}/api/v1/me/insurance/benefits",
                params={"offset": page["next_offset"], "limit": 10},
            )
            page = response.json()
        too_big = await app.get(
            f"{stack.broker}/api/v1/me/insurance/benefits", params={"limit": 1000}
        )
    assert first["benefits"]["total"] == 23 and len(seen) == 23 == len(set(seen))
    assert seen[0] == "Lương hưu tháng 11/2026" and seen[-1] == "Lương hưu tháng 01/2025"
    assert too_big.status_code == 422
    assert too_big.headers["content-type"] == "application/problem+json"


async def test_health_card_png_qr_decodes_field_by_field(stack: Stack) -> None:
    async with AsyncClient() as app:
        await signed_in_app(stack, app, SA_RUONE)
        response = await app.get(f"{stack.broker}/api/v1/me/health-card.png")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.headers["cache-control"] == "no-store"  # personal data
    fields = qr_fields(response.content)
    assert fields == [
        "HT3949460091011",
        "Thạch Thị Sa Rươne",
        "01/01/1960",
        "2",
        "Ấp Mỹ Thanh, xã Mỹ Xuyên, Cần Thơ",
        "94 - 001",
        "01/01/2026",
        "31/12/2026",
        "15/12/2025",
        "9401",
        "",
        "",
        "01/01/2000",
    ]


async def test_expired_card_answers_a_clear_problem(stack: Stack) -> None:
    async with AsyncClient() as app:
        await signed_in_app(stack, app, BAO)
        for suffix in ("png", "svg"):
            response = await app.get(f"{stack.broker}/api/v1/me/health-card.{suffix}")
            assert response.status_code == 410
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["code"] == "health_card_expired"
            assert "hết hạn" in response.json()["title"]


async def test_absent_card_answers_a_clear_problem(stack: Stack) -> None:
    async with stack.db.begin() as session:
        account = await session.scalar(
            select(Account).where(Account.bhxh_code == "4612345678")  # Bùi Văn Khoa
        )
        assert account is not None
        await session.execute(
            delete(HealthInsuranceCard).where(HealthInsuranceCard.account_id == account.id)
        )
    async with AsyncClient() as app:
        await signed_in_app(stack, app, "046075001122")
        response = await app.get(f"{stack.broker}/api/v1/me/health-card.png")
    assert response.status_code == 404
    assert response.json()["code"] == "health_card_absent"


def period(kind: InsuranceKind, start: str, end: str | None) -> InsurancePeriod:
    return InsurancePeriod(
        kind=kind,
        start_month=date.fromisoformat(start),
        end_month=date.fromisoformat(end) if end else None,
    )


def test_contribution_months_count_each_month_once_and_the_latest_unbroken_run() -> None:
    periods = [
        period(InsuranceKind.BHXH, "2010-01-01", "2012-12-01"),  # 36 months
        period(InsuranceKind.BHXH, "2012-06-01", "2013-05-01"),  # a second job, overlapping
        period(InsuranceKind.BHXH, "2014-01-01", None),  # after a gap, still paying
        period(InsuranceKind.BHYT, "2000-01-01", None),  # not social insurance
    ]
    counted = accounts.contributions(periods, date(2016, 12, 15))
    assert counted.total_months == 41 + 36
    assert counted.continuous_months == 36
    assert counted.continuous_since == date(2014, 1, 1)
    assert accounts.contributions([], date(2016, 1, 1)).total_months == 0
