"""The admin API for staff, over real HTTP: roles, the review queue, decisions, unlinking, audit.

Cases are opened the way production opens them: by real VNeID logins through the broker.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.conftest import Stack
from tests.linking.test_rules import AN as TEST_AN
from tests.support.flows import app_complete, app_until_redirect, browser_login
from tests.support.http import AsyncClient
from tests.support.staff import PASSWORD, add_staff, code_now
from vssid_broker.accounts.models import Account
from vssid_broker.admin.models import StaffRole
from vssid_broker.audit.models import AuditEvent
from vssid_broker.linking import service as linking
from vssid_broker.linking.models import FederatedLink, ReviewCase
from vssid_broker.sealing import blind_index
from vssid_broker.sessions.models import BrowserSession, RefreshToken

API = "/admin/api/v1"
DUNG, EM, AN = "031188004567", "092087007788", "001085012345"


@dataclass
class Staff:
    stack: Stack
    reviewer: dict[str, str]
    admin: dict[str, str]
    dung_as_reviewer: dict[str, str]
    """A reviewer whose own VssID account is Phạm Thị Dung's."""
    approver: dict[str, str]
    second_reviewer: dict[str, str]

    async def get(self, who: dict[str, str], path: str, **params: Any) -> httpx.Response:
        async with AsyncClient() as client:
            return await client.get(f"{self.stack.broker}{API}{path}", headers=who, params=params)

    async def post(self, who: dict[str, str], path: str, body: dict[str, Any]) -> httpx.Response:
        async with AsyncClient() as client:
            return await client.post(f"{self.stack.broker}{API}{path}", headers=who, json=body)


async def sign_in(
    stack: Stack, username: str, password: str = PASSWORD, otp: str | None = None
) -> httpx.Response:
    async with AsyncClient() as client:
        return await client.post(
            f"{stack.broker}{API}/token",
            json={"username": username, "password": password, "otp": otp or code_now(stack)},
        )


async def bhxh_account_id(stack: Stack, bhxh_code: str) -> int:
    async with stack.db() as session:
        return (
            await session.execute(select(Account.id).where(Account.bhxh_code == bhxh_code))
        ).scalar_one()


@pytest.fixture
async def staff(stack: Stack) -> Staff:
    dung_account = await bhxh_account_id(stack, "3112345670")
    users = [
        ("reviewer", StaffRole.REVIEWER, None),
        ("admin", StaffRole.ADMIN, None),
        ("dung", StaffRole.REVIEWER, dung_account),
        ("approver", StaffRole.APPROVER, None),
        ("reviewer2", StaffRole.REVIEWER, None),
    ]
    for username, role, account_id in users:
        await add_staff(stack, username, role, account_id=account_id)
    headers = []
    for username, _, _ in users:
        response = await sign_in(stack, username)
        assert response.status_code == 200, response.text
        headers.append({"Authorization": f"Bearer {response.json()['access_token']}"})
    return Staff(stack, *headers)


async def login_in_browser(stack: Stack, citizen_id: str) -> httpx.Response:
    async with AsyncClient() as browser:
        return await browser_login(browser, stack.broker, citizen_id)


async def open_case(stack: Stack, citizen_id: str) -> int:
    response = await login_in_browser(stack, citizen_id)
    assert '<code id="error-code">link_under_review</code>' in response.text
    async with stack.db() as session:
        case_id = await session.scalar(
            select(ReviewCase.id).where(ReviewCase.citizen_id_index == blind_index(citizen_id))
        )
    assert case_id is not None
    return int(case_id)


def assert_problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code


async def snapshot(stack: Stack) -> tuple[Any, ...]:
    """What a refused request must leave exactly as it was."""
    async with stack.db() as session:
        cases = [(c.id, c.status, c.version) for c in await session.scalars(select(ReviewCase))]
        links = [
            (link.id, link.account_id) for link in await session.scalars(select(FederatedLink))
        ]
        decisions = list(
            await session.scalars(
                select(AuditEvent.id).where(AuditEvent.event_type != "staff.sign_in")
            )
        )
    return sorted(cases), sorted(links), sorted(decisions)


# --- sign-in and roles --------------------------------------------------------------------------
async def test_wrong_or_unknown_staff_credentials_are_refused_and_audited(staff: Staff) -> None:
    for username, password in [("reviewer", "wrong password!"), ("nobody", PASSWORD)]:
        assert_problem(await sign_in(staff.stack, username, password), 401, "invalid_credentials")
    async with staff.stack.db() as session:
        events = list(
            await session.scalars(
                select(AuditEvent).where(AuditEvent.outcome == "invalid_credentials")
            )
        )
    assert [e.actor for e in events] == ["staff:reviewer", "staff:nobody"]
    assert "wrong password" not in str([e.details for e in events])


async def test_repeated_wrong_passwords_lock_staff_sign_in_for_a_while(staff: Staff) -> None:
    stack = staff.stack
    for _ in range(stack.settings.password_max_failures):
        assert_problem(await sign_in(stack, "admin", "a wrong guess!"), 401, "invalid_credentials")
    # Locked now: even the right password is refused, and no token is issued.
    assert_problem(await sign_in(stack, "admin"), 429, "staff_sign_in_locked")
    stack.clock.advance(stack.settings.password_lockout_seconds + 1)
    assert (await sign_in(stack, "admin")).status_code == 200
    # A success clears the count: one more mistake does not lock again.
    assert_problem(await sign_in(stack, "admin", "a wrong guess!"), 401, "invalid_credentials")
    stack.clock.advance(30)  # the next code: each one is accepted once
    assert (await sign_in(stack, "admin")).status_code == 200


async def test_the_admin_api_wants_a_staff_token(staff: Staff, stack: Stack) -> None:
    async with AsyncClient() as app:  # an account's own access token is not one
        done = await app_complete(
            app, stack.broker, await app_until_redirect(app, stack.broker, AN)
        )
    account_token = {"Authorization": f"Bearer {done.json()['access_token']}"}
    for headers in [{}, {"Authorization": "Bearer nonsense"}, account_token]:
        assert_problem(await staff.get(headers, "/cases"), 401, "invalid_staff_token")


async def test_a_staff_token_expires(staff: Staff, stack: Stack) -> None:
    stack.clock.advance(stack.settings.staff_token_ttl_seconds + 1)
    assert_problem(await staff.get(staff.reviewer, "/cases"), 401, "invalid_staff_token")


async def test_reviewers_review_and_only_admins_unlink_and_read_the_audit(
    staff: Staff, stack: Stack
) -> None:
    async with AsyncClient() as browser:
        await browser_login(browser, stack.broker, AN)
    an = await bhxh_account_id(stack, "0112345678")
    [link] = (await staff.get(staff.reviewer, f"/accounts/{an}/identities")).json()
    before = await snapshot(stack)

    assert (await staff.get(staff.reviewer, "/cases")).status_code == 200
    denied = await staff.post(
        staff.reviewer, f"/accounts/{an}/identities/{link['id']}/unlink", {"reason": "test"}
    )
    assert_problem(denied, 403, "staff_role_required")
    assert_problem(await staff.get(staff.reviewer, "/audit"), 403, "staff_role_required")
    assert await snapshot(stack) == before

    assert (await staff.get(staff.admin, "/audit")).status_code == 200
    assert (await staff.get(staff.admin, "/cases")).status_code == 200


# --- the queue ----------------------------------------------------------------------------------
async def test_cases_list_pages_filters_sorts_and_masks(staff: Staff, stack: Stack) -> None:
    dung = await open_case(stack, DUNG)
    em = await open_case(stack, EM)
    async with stack.db.begin() as session:  # An's record disagrees with VNeID's birth date
        account = await session.scalar(
            select(Account).where(Account.citizen_id_index == blind_index(AN))
        )
        assert account is not None
        account.birth_date = account.birth_date.replace(day=13)
    an = await open_case(stack, AN)
    # Ages 6 h, 3 h and now (the simulated VNeID's tokens follow real time, so the cases are
    # dated back rather than the clock moved between logins).
    async with stack.db.begin() as session:
        for case_id, hours in [(dung, 6), (em, 3)]:
            case = await session.get_one(ReviewCase, case_id)
            case.created_at = stack.clock() - timedelta(hours=hours)

    async def ids(**params: Any) -> list[int]:
        response = await staff.get(staff.reviewer, "/cases", **params)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    page = (await staff.get(staff.reviewer, "/cases", limit=2)).json()
    assert (page["total"], [i["id"] for i in page["items"]]) == (3, [dung, em])
    assert await ids(limit=2, offset=2) == [an]
    assert await ids(sort="-created_at") == [an, em, dung]
    assert await ids(reason="record_mismatch") == [an]
    assert await ids(reason="name_birthdate_match") == [dung, em]
    assert await ids(min_age_hours=3) == [dung, em]
    assert await ids(max_age_hours=1) == [an]
    assert await ids(status="approved") == []
    text = (await staff.get(staff.reviewer, "/cases")).text
    assert DUNG not in text and EM not in text and AN not in text
    assert "031******567" in text

    bad_queries: list[dict[str, Any]] = [
        {"limit": 0}, {"limit": 101}, {"offset": -1}, {"status": "open"}, {"sort": "x"}
    ]  # fmt: skip
    for bad in bad_queries:
        assert_problem(await staff.get(staff.reviewer, "/cases", **bad), 422, "invalid_request")


async def test_one_case_shows_vneid_claims_against_each_candidate(
    staff: Staff, stack: Stack
) -> None:
    case_id = await open_case(stack, EM)
    response = await staff.get(staff.reviewer, f"/cases/{case_id}")
    assert response.status_code == 200
    case = response.json()
    assert case["reason"] == "name_birthdate_match" and "Quy tắc 3" in case["why"]
    assert case["vneid"]["full_name"] == "Hoàng Văn Em"
    assert case["vneid"]["citizen_id"] == "092******788"
    assert [c["bhxh_code"] for c in case["candidates"]] == ["9212345601", "9212345602"]
    for candidate in case["candidates"]:
        assert candidate["citizen_id_comparison"] == "missing"
        assert candidate["full_name_matches"] and candidate["birth_date_matches"]
    assert_problem(await staff.get(staff.reviewer, "/cases/999999"), 404, "case_not_found")


# --- decisions ----------------------------------------------------------------------------------
async def test_four_eyes_a_reviewer_proposes_an_approver_confirms_then_the_person_signs_in(
    staff: Staff, stack: Stack
) -> None:
    case_id = await open_case(stack, DUNG)
    dung = await bhxh_account_id(stack, "3112345670")
    proposed = await staff.post(
        staff.reviewer,
        f"/cases/{case_id}/approve",
        {"account_id": dung, "version": 1, "reason": "giấy tờ khớp"},
    )
    assert proposed.status_code == 200, proposed.text
    assert (proposed.json()["status"], proposed.json()["decided_by"]) == (
        "proposed",
        "staff:reviewer",
    )
    assert await stack.count(FederatedLink) == 0
    still_under_review = await login_in_browser(stack, DUNG)
    assert '<code id="error-code">link_under_review</code>' in still_under_review.text

    confirmed = await staff.post(staff.approver, f"/cases/{case_id}/confirm", {"version": 2})
    assert confirmed.status_code == 200, confirmed.text
    assert (confirmed.json()["status"], confirmed.json()["confirmed_by"]) == (
        "approved",
        "staff:approver",
    )
    async with stack.db() as session:
        link = await session.scalar(select(FederatedLink))
    assert link is not None
    assert (link.account_id, link.method, link.linked_by) == (
        dung,
        "staff_review",
        "staff:approver",
    )
    signed_in = await login_in_browser(stack, DUNG)
    assert signed_in.status_code == 302, signed_in.text
    assert signed_in.headers["location"] == "/account"
    # The account page's one-time notice: staff confirmed the link.
    assert "vssid_linked_notice=review" in signed_in.headers["set-cookie"]


async def test_four_eyes_refusals_own_decision_wrong_role_and_returning_a_proposal(
    staff: Staff, stack: Stack
) -> None:
    case_id = await open_case(stack, DUNG)
    dung = await bhxh_account_id(stack, "3112345670")
    approve, confirm = f"/cases/{case_id}/approve", f"/cases/{case_id}/confirm"
    assert_problem(await staff.post(staff.approver, approve, {"account_id": dung, "version": 1}),
                   403, "staff_role_required")  # fmt: skip
    assert (await staff.post(staff.admin, approve, {"account_id": dung, "version": 1})).is_success
    before = await snapshot(stack)
    refusals: list[tuple[dict[str, str], str, dict[str, Any], int, str]] = [
        (staff.admin, confirm, {"version": 2}, 403, "own_decision"),
        (staff.reviewer, confirm, {"version": 2}, 403, "staff_role_required"),
        (staff.approver, confirm, {"version": 1}, 409, "case_already_decided"),
        (staff.approver, f"/cases/{case_id}/return", {"version": 2}, 422, "invalid_request"),
    ]  # fmt: skip
    for who, path, body, status, code in refusals:
        assert_problem(await staff.post(who, path, body), status, code)
    assert await snapshot(stack) == before

    returned = await staff.post(
        staff.approver, f"/cases/{case_id}/return", {"version": 2, "reason": "thiếu giấy tờ"}
    )
    assert returned.json()["status"] == "pending"
    assert returned.json()["decision_reason"] == "thiếu giấy tờ"
    assert await stack.count(FederatedLink) == 0
    assert_problem(await staff.post(staff.approver, confirm, {"version": 3}), 409,
                   "case_already_decided")  # fmt: skip


async def test_a_claimed_case_is_decided_by_whoever_claimed_it(staff: Staff, stack: Stack) -> None:
    case_id = await open_case(stack, DUNG)
    dung = await bhxh_account_id(stack, "3112345670")
    assign = f"/cases/{case_id}/assign"
    claimed = await staff.post(staff.reviewer, assign, {"username": "reviewer"})
    assert claimed.json()["assigned_to"] == "reviewer"
    assert_problem(await staff.post(staff.second_reviewer, assign, {"username": "reviewer2"}),
                   409, "case_assigned_elsewhere")  # fmt: skip
    assert_problem(
        await staff.post(staff.second_reviewer, f"/cases/{case_id}/approve",
                         {"account_id": dung, "version": 1}),
        409, "case_assigned_elsewhere",
    )  # fmt: skip
    mine = (await staff.get(staff.reviewer, "/cases", assigned_to="reviewer")).json()
    assert [c["id"] for c in mine["items"]] == [case_id]
    assert (await staff.get(staff.reviewer, "/cases", assigned_to="")).json()["total"] == 0
    # An admin may give it to someone else; then that person decides.
    given = await staff.post(staff.admin, assign, {"username": "reviewer2"})
    assert given.json()["assigned_to"] == "reviewer2"
    approved = await staff.post(
        staff.second_reviewer, f"/cases/{case_id}/approve", {"account_id": dung, "version": 1}
    )
    assert approved.json()["status"] == "proposed"


async def test_rejection_is_told_at_the_next_login(staff: Staff, stack: Stack) -> None:
    case_id = await open_case(stack, DUNG)
    rejected = await staff.post(
        staff.reviewer, f"/cases/{case_id}/reject", {"version": 1, "reason": "không khớp"}
    )
    assert rejected.status_code == 200
    refused = await login_in_browser(stack, DUNG)
    assert '<code id="error-code">review_rejected</code>' in refused.text
    assert "Cán bộ BHXH đã kiểm tra" in refused.text
    assert await stack.count(FederatedLink) == 0
    assert await stack.count(ReviewCase) == 1


async def test_identifiers_staff_type_in_a_reason_are_kept_only_masked(
    staff: Staff, stack: Stack
) -> None:
    case_id = await open_case(stack, DUNG)
    typed = (
        "Gọi 0912 345 678 và +84 987 654 321; CCCD 031188004567 (031 188 004 567), "
        "mã BHXH 3112345670 không khớp"
    )
    rejected = await staff.post(
        staff.reviewer, f"/cases/{case_id}/reject", {"version": 1, "reason": typed}
    )
    assert rejected.status_code == 200
    shown = (await staff.get(staff.reviewer, f"/cases/{case_id}")).json()["decision_reason"]
    async with stack.db() as session:
        stored = await session.scalar(
            select(ReviewCase.decision_reason).where(ReviewCase.id == case_id)
        )
    for reason in (rejected.json()["decision_reason"], shown, stored):
        assert reason is not None and reason.startswith("Gọi 091******78 và +84******21;")
        assert "không khớp" in reason
        for full in ("345 678", "654 321", "031188004567", "188 004", "3112345670"):
            assert full not in reason


async def test_every_refused_decision_is_problem_json_and_changes_nothing(
    staff: Staff, stack: Stack
) -> None:
    case_id = await open_case(stack, DUNG)
    dung = await bhxh_account_id(stack, "3112345670")
    an = await bhxh_account_id(stack, "0112345678")
    before = await snapshot(stack)
    approve, reject = f"/cases/{case_id}/approve", f"/cases/{case_id}/reject"
    refusals: list[tuple[dict[str, str], str, dict[str, Any], int, str]] = [
        (staff.reviewer, approve, {"account_id": an, "version": 1}, 422, "account_not_a_candidate"),
        (staff.reviewer, approve, {"account_id": dung, "version": 7}, 409, "case_already_decided"),
        (staff.reviewer, approve, {"account_id": dung}, 422, "invalid_request"),
        (staff.reviewer, reject, {"version": 1}, 422, "invalid_request"),
        (staff.reviewer, reject, {"version": 1, "reason": ""}, 422, "invalid_request"),
        (staff.dung_as_reviewer, approve, {"account_id": dung, "version": 1}, 403,
         "own_account_case"),
        (staff.dung_as_reviewer, reject, {"version": 1, "reason": "tự xét"}, 403,
         "own_account_case"),
        (staff.reviewer, "/cases/999999/approve", {"account_id": dung, "version": 1}, 404,
         "case_not_found"),
        ({}, approve, {"account_id": dung, "version": 1}, 401, "invalid_staff_token"),
    ]  # fmt: skip
    for who, path, body, status, code in refusals:
        assert_problem(await staff.post(who, path, body), status, code)
    assert await snapshot(stack) == before

    # Decided once, never again: the same version, or the new one, both conflict.
    assert (await staff.post(staff.reviewer, reject, {"version": 1, "reason": "sai"})).is_success
    after_decision = await snapshot(stack)
    for version in (1, 2):
        again = await staff.post(staff.admin, approve, {"account_id": dung, "version": version})
        assert_problem(again, 409, "case_already_decided")
    assert await snapshot(stack) == after_decision


async def test_two_reviewers_approving_at_once_one_wins_one_gets_409(
    staff: Staff, stack: Stack
) -> None:
    case_id = await open_case(stack, EM)
    first_em, second_em = [await bhxh_account_id(stack, c) for c in ("9212345601", "9212345602")]
    path = f"/cases/{case_id}/approve"
    responses = await asyncio.gather(
        staff.post(staff.reviewer, path, {"account_id": first_em, "version": 1}),
        staff.post(staff.admin, path, {"account_id": second_em, "version": 1}),
    )
    assert sorted(r.status_code for r in responses) == [200, 409]
    loser = next(r for r in responses if r.status_code == 409)
    assert_problem(loser, 409, "case_already_decided")
    async with stack.db() as session:
        decided = list(
            await session.scalars(
                select(AuditEvent).where(AuditEvent.event_type == "review_case.decided")
            )
        )
        case = await session.get_one(ReviewCase, case_id)
    assert len(decided) == 1 and (case.status, case.version) == ("proposed", 2)


# --- links --------------------------------------------------------------------------------------
async def test_unlink_revokes_the_accounts_sessions_and_the_next_login_links_again(
    staff: Staff, stack: Stack
) -> None:
    async with AsyncClient() as app:
        done = await app_complete(
            app, stack.broker, await app_until_redirect(app, stack.broker, AN)
        )
        refresh_token = done.json()["refresh_token"]
    assert (await login_in_browser(stack, AN)).status_code == 302  # a browser session too
    an = await bhxh_account_id(stack, "0112345678")
    [link] = (await staff.get(staff.admin, f"/accounts/{an}/identities")).json()
    assert link["citizen_id"] == "001******345" and link["method"] == "citizen_id_match"

    missing = await staff.post(
        staff.admin, f"/accounts/{an}/identities/999999/unlink", {"reason": "thử"}
    )
    assert_problem(missing, 404, "link_not_found")
    no_reason = await staff.post(staff.admin, f"/accounts/{an}/identities/{link['id']}/unlink", {})
    assert_problem(no_reason, 422, "invalid_request")
    assert await stack.count(FederatedLink) == 1

    unlinked = await staff.post(
        staff.admin, f"/accounts/{an}/identities/{link['id']}/unlink", {"reason": "báo mất"}
    )
    assert unlinked.json() == {
        "link_id": link["id"],
        "app_sessions_ended": 1,
        "browser_sessions_ended": 1,
    }
    assert (await staff.get(staff.admin, f"/accounts/{an}/identities")).json() == []
    async with AsyncClient() as app:
        refused = await app.post(
            f"{stack.broker}/api/v1/auth/token",
            data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        )
    assert_problem(refused, 400, "invalid_grant")
    async with stack.db() as session:
        tokens = list(await session.scalars(select(RefreshToken)))
        browsers = list(await session.scalars(select(BrowserSession)))
    assert all(t.revoked_at is not None for t in tokens)
    assert all(b.revoked_at is not None for b in browsers)

    async with AsyncClient() as app:  # rule 2 links the person again at the next login
        again = await app_complete(
            app, stack.broker, await app_until_redirect(app, stack.broker, AN)
        )
    assert again.json()["linked_now"] is True


# --- audit --------------------------------------------------------------------------------------
async def test_audit_trail_filters_by_case_actor_account_and_time(
    staff: Staff, stack: Stack
) -> None:
    case_id = await open_case(stack, DUNG)
    stack.clock.advance(60)
    dung = await bhxh_account_id(stack, "3112345670")
    decided_at = stack.clock()
    await staff.post(
        staff.reviewer, f"/cases/{case_id}/approve", {"account_id": dung, "version": 1}
    )

    async def events(**params: Any) -> list[tuple[str, str]]:
        response = await staff.get(staff.admin, "/audit", **params)
        assert response.status_code == 200, response.text
        return [(e["event_type"], e["outcome"]) for e in response.json()["items"]]

    await staff.post(staff.approver, f"/cases/{case_id}/confirm", {"version": 2})

    assert await events(case_id=case_id) == [
        ("link.created", "staff_review"),
        ("review_case.decided", "approved"),
        ("review_case.decided", "proposed"),
        ("review_case.opened", "name_birthdate_match"),
    ]
    assert await events(actor="staff:reviewer") == [
        ("review_case.decided", "proposed"),
        ("staff.sign_in", "succeeded"),
    ]
    assert await events(account_id=dung) == [
        ("consent.recorded", "given"),
        ("link.created", "staff_review"),
        ("review_case.decided", "approved"),
        ("review_case.decided", "proposed"),
    ]
    assert ("review_case.opened", "name_birthdate_match") not in await events(
        since=decided_at.isoformat()
    )
    assert await events(until=decided_at.isoformat(), case_id=case_id) == [
        ("review_case.opened", "name_birthdate_match")
    ]
    assert DUNG not in (await staff.get(staff.admin, "/audit")).text


async def test_openapi_documents_the_admin_api(stack: Stack) -> None:
    async with AsyncClient() as client:
        spec = (await client.get(f"{stack.broker}/openapi.json")).json()
    paths = spec["paths"]
    assert "post" in paths[f"{API}/cases/{{case_id}}/approve"]
    assert paths[f"{API}/cases"]["get"]["tags"] == ["admin: review cases"]
    assert "409" in paths[f"{API}/cases/{{case_id}}/approve"]["post"]["responses"]
    assert "CaseDetail" in spec["components"]["schemas"]
    # /docs can send a staff token: the bearer scheme is declared and used by the routes.
    assert spec["components"]["securitySchemes"]["staffToken"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "A staff token from `POST /admin/api/v1/token` (15 minutes).",
    }
    assert paths[f"{API}/cases"]["get"]["security"] == [{"staffToken": []}]
    assert "security" not in paths[f"{API}/token"]["post"]
    for path, operations in paths.items():
        if path.startswith(API):
            for operation in operations.values():
                assert "422" in operation["responses"], path
                documented = set(operation["responses"]) - {"200", "201", "422"}
                assert documented, f"{path}: no error response documented"


async def test_approving_onto_an_account_linked_elsewhere_conflicts_until_unlinked(
    staff: Staff, stack: Stack
) -> None:
    """One VNeID identity per account: staff cannot override it, only unlink first."""
    assert (await login_in_browser(stack, AN)).status_code == 302
    async with stack.db.begin() as session:
        first = await session.scalar(select(FederatedLink))
        assert first is not None
        outcome = await linking.resolve(
            session,
            replace(TEST_AN, issuer=first.provider, subject="a-second-subject"),
            now=stack.clock(),
            request_id="t",
        )
    assert isinstance(outcome, linking.NeedsReview)
    case, an = outcome.case, first.account_id
    before = await snapshot(stack)
    body = {"account_id": an, "version": 1}
    assert_problem(await staff.post(staff.reviewer, f"/cases/{case.id}/approve", body), 409,
                   "already_linked")  # fmt: skip
    assert await snapshot(stack) == before

    unlink = f"/accounts/{an}/identities/{first.id}/unlink"
    assert (await staff.post(staff.admin, unlink, {"reason": "đổi tài khoản"})).is_success
    proposed = await staff.post(staff.reviewer, f"/cases/{case.id}/approve", body)
    assert proposed.status_code == 200, proposed.text
    approved = await staff.post(staff.approver, f"/cases/{case.id}/confirm", {"version": 2})
    assert approved.status_code == 200, approved.text
    async with stack.db() as session:
        [link] = list(await session.scalars(select(FederatedLink)))
    assert (link.subject, link.account_id) == ("a-second-subject", an)
