"""The linking rules, one by one, with the demo records that exercise each (real database)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import Stack
from tests.support.flows import app_complete, app_until_redirect
from tests.support.http import AsyncClient
from vssid_broker.accounts.models import Account
from vssid_broker.audit.models import AuditEvent
from vssid_broker.federation.claims import VerifiedIdentity
from vssid_broker.linking import service as linking
from vssid_broker.linking.models import FederatedLink, ReviewCase
from vssid_broker.sessions.models import RefreshToken

ISSUER = "https://vneid.example"

AN = VerifiedIdentity(
    issuer=ISSUER,
    subject="sub-an",
    citizen_id="001085012345",
    full_name="Nguyễn Văn An",
    birth_date=date(1985, 3, 12),
    gender="male",
    acr="vneid:level2",
    amr=(),
)
DUNG = replace(
    AN, subject="sub-dung", citizen_id="031188004567", full_name="Phạm Thị Dung",
    birth_date=date(1988, 1, 30), gender="female",
)  # fmt: skip
EM = replace(
    AN, subject="sub-em", citizen_id="092087007788", full_name="Hoàng Văn Em",
    birth_date=date(1987, 5, 5),
)  # fmt: skip
LAN_LOCKED = replace(
    AN, subject="sub-lan", citizen_id="040183002233", full_name="Ngô Thị Lan",
    birth_date=date(1983, 6, 20), gender="female",
)  # fmt: skip
CUONG_NO_ACCOUNT = replace(
    AN, subject="sub-cuong", citizen_id="048095000111", full_name="Lê Hoàng Cường",
    birth_date=date(1995, 11, 2),
)  # fmt: skip


async def resolve(stack: Stack, identity: VerifiedIdentity) -> linking.LinkOutcome:
    async with stack.db.begin() as session:
        return await linking.resolve(session, identity, now=stack.clock(), request_id="t")


async def account_id(session: AsyncSession, bhxh_code: str) -> int:
    return (
        await session.execute(select(Account.id).where(Account.bhxh_code == bhxh_code))
    ).scalar_one()


async def cases(stack: Stack) -> list[ReviewCase]:
    async with stack.db() as session:
        return list(await session.scalars(select(ReviewCase).order_by(ReviewCase.id)))


# --- rule 1 -------------------------------------------------------------------------------------
async def test_rule_1_a_linked_identity_signs_in_to_its_account(stack: Stack) -> None:
    assert isinstance(await resolve(stack, AN), linking.AutoLinked)
    again = await resolve(stack, AN)
    assert isinstance(again, linking.Linked)
    assert again.account.bhxh_code == "0112345678"
    assert await stack.count(FederatedLink) == 1


async def test_rule_1_a_linked_identity_of_a_locked_account_is_refused(stack: Stack) -> None:
    assert isinstance(await resolve(stack, AN), linking.AutoLinked)
    async with stack.db.begin() as session:
        account = await session.get_one(Account, await account_id(session, "0112345678"))
        account.status = "locked"
    assert await resolve(stack, AN) == linking.Refused("account_locked")


async def test_rule_1_a_subject_now_reporting_another_citizen_id_goes_to_review(
    stack: Stack,
) -> None:
    assert isinstance(await resolve(stack, AN), linking.AutoLinked)
    outcome = await resolve(stack, replace(AN, citizen_id="001085099999"))
    assert isinstance(outcome, linking.NeedsReview)
    assert outcome.case.reason == "subject_linked_elsewhere"
    async with stack.db() as session:
        assert outcome.case.candidate_account_ids == [await account_id(session, "0112345678")]


# --- rule 2 -------------------------------------------------------------------------------------
async def test_rule_2_one_matching_account_is_linked_and_the_link_recorded(stack: Stack) -> None:
    outcome = await resolve(stack, AN)
    assert isinstance(outcome, linking.AutoLinked)
    async with stack.db() as session:
        link = await session.scalar(select(FederatedLink))
        events = list(await session.scalars(select(AuditEvent)))
    assert link is not None
    assert (link.provider, link.subject, link.citizen_id) == (ISSUER, "sub-an", "001085012345")
    assert (link.method, link.linked_by) == ("citizen_id_match", "system")
    assert [(e.event_type, e.outcome) for e in events] == [("link.created", "auto_linked")]
    assert "001085012345" not in str(events[0].details)  # masked


async def test_rule_2_name_compared_by_letters_not_by_case_or_spacing(stack: Stack) -> None:
    outcome = await resolve(stack, replace(AN, full_name="  NGUYỄN  văn an "))
    assert isinstance(outcome, linking.AutoLinked)


async def test_rule_2_a_locked_account_is_refused_and_not_linked(stack: Stack) -> None:
    assert await resolve(stack, LAN_LOCKED) == linking.Refused("account_locked")
    assert await stack.count(FederatedLink) == 0


# --- rule 3 -------------------------------------------------------------------------------------
async def test_rule_3_a_record_without_citizen_id_opens_a_case_not_a_link(stack: Stack) -> None:
    outcome = await resolve(stack, DUNG)
    assert isinstance(outcome, linking.NeedsReview)
    async with stack.db() as session:
        dung = await account_id(session, "3112345670")
    assert (outcome.case.reason, outcome.case.candidate_account_ids) == (
        "name_birthdate_match",
        [dung],
    )
    assert await stack.count(FederatedLink) == 0


async def test_rule_3_two_lookalike_records_are_both_candidates(stack: Stack) -> None:
    outcome = await resolve(stack, EM)
    assert isinstance(outcome, linking.NeedsReview)
    async with stack.db() as session:
        ids = [await account_id(session, c) for c in ("9212345601", "9212345602")]
    assert outcome.case.candidate_account_ids == ids


def unverified_records(born: date, names: list[str], first_code: int) -> list[Account]:
    """Records from before citizen IDs were collected: no citizen ID, only name and birth date."""
    return [
        Account(
            bhxh_code=f"{first_code + n:010d}",
            citizen_id=None,
            full_name=name,
            birth_date=born,
            gender="female",
            status="active",
        )
        for n, name in enumerate(names)
    ]


async def test_rule_3_finds_the_record_however_many_others_share_the_birth_date(
    stack: Stack,
) -> None:
    born = DUNG.birth_date
    others = [f"Người Khác Số {n}" for n in range(25)]  # added before hers: lower ids
    async with stack.db.begin() as session:
        session.add_all(unverified_records(born, others, 7_700_000_000))
        await session.flush()
        session.add_all(unverified_records(born, ["Đặng Thị Hoa"], 7_700_000_100))
    hoa = replace(DUNG, subject="sub-hoa", citizen_id="001188009999", full_name="Đặng Thị Hoa")
    outcome = await resolve(stack, hoa)
    assert isinstance(outcome, linking.NeedsReview)
    async with stack.db() as session:
        assert outcome.case.candidate_account_ids == [await account_id(session, "7700000100")]


async def test_rule_3_more_lookalikes_than_the_cap_still_go_to_staff(stack: Stack) -> None:
    cap = linking.RULE_3_MAX_CANDIDATES
    async with stack.db.begin() as session:
        session.add_all(unverified_records(DUNG.birth_date, ["Phạm Thị Dung"] * cap, 7_700_000_200))
    outcome = await resolve(stack, DUNG)
    assert isinstance(outcome, linking.NeedsReview)
    assert len(outcome.case.candidate_account_ids) == cap


async def test_rule_3_diacritics_matter_so_another_name_is_no_candidate(stack: Stack) -> None:
    assert await resolve(stack, replace(DUNG, full_name="Phạm Thị Dũng")) == linking.NoAccount()
    assert await resolve(stack, replace(DUNG, birth_date=date(1988, 1, 31))) == (
        linking.NoAccount()
    )
    assert await stack.count(ReviewCase) == 0


async def test_the_next_login_finds_the_same_pending_case(stack: Stack) -> None:
    first = await resolve(stack, DUNG)
    second = await resolve(stack, DUNG)
    assert isinstance(first, linking.NeedsReview) and isinstance(second, linking.NeedsReview)
    assert first.case.id == second.case.id
    assert await stack.count(ReviewCase) == 1


async def test_a_pending_case_is_bound_to_its_citizen_id(stack: Stack) -> None:
    assert isinstance(await resolve(stack, DUNG), linking.NeedsReview)
    other = await resolve(stack, replace(DUNG, citizen_id="031188000000"))
    assert other == linking.Refused("citizen_id_changed")
    assert await stack.count(ReviewCase) == 1


async def test_a_rejected_case_is_not_reopened_by_logging_in_again(stack: Stack) -> None:
    assert isinstance(await resolve(stack, DUNG), linking.NeedsReview)
    async with stack.db.begin() as session:
        case = await session.scalar(select(ReviewCase))
        assert case is not None
        case.status = "rejected"
    assert await resolve(stack, DUNG) == linking.Refused("review_rejected")
    assert await stack.count(ReviewCase) == 1


# --- rule 4 -------------------------------------------------------------------------------------
async def test_rule_4_an_account_linked_to_another_subject_goes_to_review(stack: Stack) -> None:
    assert isinstance(await resolve(stack, AN), linking.AutoLinked)
    outcome = await resolve(stack, replace(AN, subject="sub-an-second"))
    assert isinstance(outcome, linking.NeedsReview)
    assert outcome.case.reason == "account_linked_elsewhere"
    assert await stack.count(FederatedLink) == 1


@pytest.mark.parametrize(
    "change",
    [{"full_name": "Nguyễn Văn Ân"}, {"birth_date": date(1985, 12, 3)}],
    ids=["name", "birth_date"],
)
async def test_rule_4_a_record_disagreeing_with_vneid_goes_to_review(
    stack: Stack, change: dict[str, object]
) -> None:
    outcome = await resolve(stack, replace(AN, **change))  # type: ignore[arg-type]
    assert isinstance(outcome, linking.NeedsReview)
    assert outcome.case.reason == "record_mismatch"
    assert await stack.count(FederatedLink) == 0


# --- rule 5 -------------------------------------------------------------------------------------
async def test_rule_5_no_candidate_stores_nothing(stack: Stack) -> None:
    assert await resolve(stack, CUONG_NO_ACCOUNT) == linking.NoAccount()
    for model in (FederatedLink, ReviewCase, AuditEvent):
        assert await stack.count(model) == 0


# --- the database's share -----------------------------------------------------------------------
async def test_the_database_allows_one_pending_case_per_identity(stack: Stack) -> None:
    outcome = await resolve(stack, DUNG)
    assert isinstance(outcome, linking.NeedsReview)
    duplicate = {
        a.key: getattr(outcome.case, a.key)
        for a in ReviewCase.__mapper__.column_attrs
        if a.key not in {"id", "citizen_id_sealed", "citizen_id_index"}
    } | {"citizen_id": outcome.case.citizen_id}
    with pytest.raises(IntegrityError):
        async with stack.db.begin() as session:
            session.add(ReviewCase(**duplicate))
    async with stack.db.begin() as session:  # a decided case does not count
        session.add(ReviewCase(**(duplicate | {"status": "rejected"})))
    async with stack.db() as session:
        count = await session.scalar(select(func.count()).select_from(ReviewCase))
    assert count == 2


async def test_only_a_duplicate_pending_case_counts_as_a_concurrent_login(stack: Stack) -> None:
    """Another integrity failure while opening a case (here a CHECK the test adds) is an
    error, not a silent "review in progress" for a case that does not exist."""
    forced = replace(DUNG, subject="sub-forced-check")
    postgres = stack.settings.database_url.startswith("postgresql")
    add, drop = (
        (
            "ALTER TABLE review_cases ADD CONSTRAINT ck_forced CHECK "
            "(subject <> 'sub-forced-check') NOT VALID",
            "ALTER TABLE review_cases DROP CONSTRAINT ck_forced",
        )
        if postgres
        else (
            "CREATE TRIGGER ck_forced BEFORE INSERT ON review_cases "
            "WHEN NEW.subject = 'sub-forced-check' "
            "BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: forced'); END",
            "DROP TRIGGER ck_forced",
        )
    )
    async with stack.db.begin() as session:
        await session.execute(text(add))
    try:
        with pytest.raises(IntegrityError):
            await resolve(stack, forced)
    finally:
        async with stack.db.begin() as session:
            await session.execute(text(drop))
    assert await stack.count(ReviewCase) == 0
    assert isinstance(await resolve(stack, DUNG), linking.NeedsReview)


# --- over the app's API -------------------------------------------------------------------------
async def test_app_login_of_a_lookalike_is_refused_as_under_review(stack: Stack) -> None:
    async with AsyncClient() as client:
        redirect = await app_until_redirect(client, stack.broker, "092087007788")
        response = await app_complete(client, stack.broker, redirect)
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == "link_under_review"
    assert "access_token" not in body and "refresh_token" not in body
    assert "1–2 ngày làm việc" in body["title"]
    assert await stack.count(RefreshToken) == 0
    assert await stack.count(FederatedLink) == 0
    [case] = await cases(stack)
    assert (case.reason, len(case.candidate_account_ids)) == ("name_birthdate_match", 2)
