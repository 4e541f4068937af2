"""The admin API beyond cases, over real HTTP: the second factor, people, staff, the audit
export, and the offline API documentation."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

from sqlalchemy import select

from tests.admin.test_admin_api import AN, API, Staff, assert_problem, bhxh_account_id, sign_in
from tests.admin.test_admin_api import staff as staff
from tests.conftest import Stack
from tests.support.flows import browser_login
from tests.support.http import AsyncClient
from tests.support.staff import PASSWORD, add_staff, code_now
from vssid_broker.accounts.models import Account
from vssid_broker.admin.models import StaffRecoveryCode, StaffRole, StaffUser
from vssid_broker.admin.second_factor import new_recovery_codes
from vssid_broker.audit.models import AuditEvent
from vssid_broker.sealing import blind_index
from vssid_broker.sessions.models import BrowserSession


# --- the second factor --------------------------------------------------------------------------
async def test_api_sign_in_needs_a_fresh_code_once(staff: Staff, stack: Stack) -> None:
    stack.clock.advance(30)
    wrong = f"{(int(code_now(stack)) + 1) % 1_000_000:06d}"
    assert_problem(await sign_in(stack, "reviewer", otp=wrong), 401, "invalid_second_factor")
    async with AsyncClient() as client:
        missing = await client.post(
            f"{stack.broker}{API}/token", json={"username": "reviewer", "password": "x" * 12}
        )
    assert_problem(missing, 422, "invalid_request")
    code = code_now(stack)
    assert (await sign_in(stack, "reviewer", otp=code)).status_code == 200
    # The same code again (someone watching, a proxy log): refused.
    assert_problem(await sign_in(stack, "reviewer", otp=code), 401, "invalid_second_factor")
    async with stack.db() as session:
        outcomes = list(
            await session.scalars(
                select(AuditEvent.outcome).where(AuditEvent.actor == "staff:reviewer")
            )
        )
    assert outcomes.count("invalid_second_factor") == 2


async def test_wrong_codes_lock_staff_sign_in_like_wrong_passwords(
    staff: Staff, stack: Stack
) -> None:
    for _ in range(stack.settings.password_max_failures):
        assert_problem(await sign_in(stack, "admin", otp="000000"), 401, "invalid_second_factor")
    assert_problem(await sign_in(stack, "admin"), 429, "staff_sign_in_locked")


async def test_a_recovery_code_works_once_and_an_unenrolled_user_is_sent_to_enrol(
    staff: Staff, stack: Stack
) -> None:
    async with stack.db.begin() as session:
        user = await session.scalar(select(StaffUser).where(StaffUser.username == "approver"))
        assert user is not None
        codes = await new_recovery_codes(session, user)
    async with stack.db() as session:
        stored = list(await session.scalars(select(StaffRecoveryCode.code_hash)))
    assert codes[0].replace("-", "") not in str(stored)  # hashes only
    assert (await sign_in(stack, "approver", otp=codes[0])).status_code == 200
    assert_problem(await sign_in(stack, "approver", otp=codes[0]), 401, "invalid_second_factor")

    await add_staff(stack, "newcomer", StaffRole.REVIEWER, enrolled=False)
    assert_problem(await sign_in(stack, "newcomer"), 403, "second_factor_not_enrolled")


# --- people -------------------------------------------------------------------------------------
async def test_search_a_person_by_citizen_id_bhxh_code_or_name(staff: Staff, stack: Stack) -> None:
    async def found(q: str) -> list[str]:
        response = await staff.get(staff.reviewer, "/people", q=q)
        assert response.status_code == 200, response.text
        return [p["bhxh_code"] for p in response.json()]

    assert await found(AN) == ["0112345678"]
    assert await found("0112345678") == ["0112345678"]
    assert await found("  nguyễn   VĂN an ") == ["0112345678"]
    assert await found("Nguyen Van An") == ["0112345678"]  # typed without diacritics, as clerks do
    assert await found("999999999999") == []
    assert AN not in (await staff.get(staff.reviewer, "/people", q=AN)).text
    assert_problem(await staff.get(staff.reviewer, "/people", q="x"), 422, "invalid_request")


async def test_lock_ends_the_persons_sessions_and_refuses_their_login_until_unlocked(
    staff: Staff, stack: Stack
) -> None:
    async with AsyncClient() as browser:
        assert (await browser_login(browser, stack.broker, AN)).status_code == 302
    an = await bhxh_account_id(stack, "0112345678")
    person = (await staff.get(staff.reviewer, f"/people/{an}")).json()
    assert [s["channel"] for s in person["sessions"]] == ["browser"]
    assert [i["method"] for i in person["identities"]] == ["citizen_id_match"]
    assert_problem(await staff.post(staff.reviewer, f"/people/{an}/lock", {}), 422,
                   "invalid_request")  # fmt: skip
    locked = await staff.post(staff.reviewer, f"/people/{an}/lock", {"reason": "báo mất thẻ"})
    assert locked.json()["status"] == "locked"
    assert_problem(
        await staff.post(staff.reviewer, f"/people/{an}/lock", {"reason": "lần nữa"}),
        409, "account_status_unchanged",
    )  # fmt: skip
    async with stack.db() as session:
        assert all(b.revoked_at for b in await session.scalars(select(BrowserSession)))
    async with AsyncClient() as browser:
        refused = await browser_login(browser, stack.broker, AN)
    assert '<code id="error-code">account_not_active</code>' in refused.text
    assert (
        await staff.post(staff.reviewer, f"/people/{an}/unlock", {"reason": "đã xác minh"})
    ).json()["status"] == "active"
    async with stack.db() as session:
        events = list(
            await session.scalars(
                select(AuditEvent).where(AuditEvent.event_type.in_(["account.locked",
                                                                    "account.unlocked"]))
            )
        )  # fmt: skip
    assert [(e.event_type, e.details["reason"], e.actor) for e in events] == [
        ("account.locked", "báo mất thẻ", "staff:reviewer"),
        ("account.unlocked", "đã xác minh", "staff:reviewer"),
    ]
    assert_problem(await staff.get(staff.reviewer, "/people/999999"), 404, "account_not_found")


async def test_showing_a_full_citizen_id_is_recorded(staff: Staff, stack: Stack) -> None:
    an = await bhxh_account_id(stack, "0112345678")
    shown = await staff.post(staff.reviewer, f"/people/{an}/citizen-id", {})
    assert shown.json() == {"citizen_id": AN}
    async with stack.db() as session:
        event = await session.scalar(
            select(AuditEvent).where(AuditEvent.event_type == "citizen_id.revealed")
        )
    assert event is not None and (event.actor, event.account_id) == ("staff:reviewer", an)
    assert AN not in str(event.details)


# --- staff management ---------------------------------------------------------------------------
async def test_admins_manage_staff_and_every_change_is_audited(staff: Staff, stack: Stack) -> None:
    body: dict[str, Any] = {"username": "thu", "role": "reviewer",
                            "password": "mot mat khau dai", "citizen_id": AN}  # fmt: skip
    assert_problem(await staff.post(staff.reviewer, "/staff", body), 403, "staff_role_required")
    created = await staff.post(staff.admin, "/staff", body)
    assert created.status_code == 201, created.text
    assert created.json()["bound_to_own_account"] is True
    assert created.json()["second_factor_enrolled"] is False
    assert_problem(await staff.post(staff.admin, "/staff", body), 409, "staff_user_exists")
    unknown = body | {"username": "lan", "citizen_id": "999999999999"}
    assert_problem(await staff.post(staff.admin, "/staff", unknown), 422,
                   "staff_citizen_id_unknown")  # fmt: skip
    async with stack.db() as session:
        thu = await session.scalar(select(StaffUser).where(StaffUser.username == "thu"))
        an = await session.scalar(
            select(Account.id).where(Account.citizen_id_index == blind_index(AN))
        )
    assert thu is not None and thu.account_id == an

    reviewer_id = (await staff.get(staff.admin, "/staff")).json()
    reviewer_id = next(u["id"] for u in reviewer_id if u["username"] == "reviewer")
    changed = await staff.post(staff.admin, f"/staff/{reviewer_id}",
                               {"change": "role", "role": "auditor"})  # fmt: skip
    assert changed.json()["role"] == "auditor"
    # The role is re-read on every request: the old token now reads the audit, decides nothing.
    assert (await staff.get(staff.reviewer, "/audit")).status_code == 200
    assert_problem(await staff.get(staff.reviewer, "/cases"), 403, "staff_role_required")
    await staff.post(staff.admin, f"/staff/{reviewer_id}", {"change": "disable"})
    assert_problem(await staff.get(staff.reviewer, "/audit"), 401, "invalid_staff_token")
    admin_id = next(u["id"] for u in (await staff.get(staff.admin, "/staff")).json()
                    if u["username"] == "admin")  # fmt: skip
    assert_problem(await staff.post(staff.admin, f"/staff/{admin_id}", {"change": "disable"}),
                   403, "staff_self_change")  # fmt: skip
    async with stack.db() as session:
        changes = list(
            await session.scalars(
                select(AuditEvent.outcome).where(AuditEvent.event_type == "staff.changed")
            )
        )
    assert changes == ["created", "role", "disable"]


# --- the audit export ---------------------------------------------------------------------------
async def test_auditors_export_the_filtered_trail_as_csv(staff: Staff, stack: Stack) -> None:
    await add_staff(stack, "kiemtoan", StaffRole.AUDITOR)
    stack.clock.advance(30)
    token = (await sign_in(stack, "kiemtoan")).json()["access_token"]
    auditor = {"Authorization": f"Bearer {token}"}
    assert_problem(await staff.get(auditor, "/cases"), 403, "staff_role_required")
    exported = await staff.get(auditor, "/audit.csv", actor="staff:reviewer")
    assert exported.headers["content-type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(exported.text)))
    assert rows[0][:4] == ["id", "occurred_at", "event_type", "outcome"]
    assert [(r[2], r[3], r[4]) for r in rows[1:]] == [("staff.sign_in", "succeeded",
                                                       "staff:reviewer")]  # fmt: skip
    async with stack.db() as session:
        exports = list(
            await session.scalars(
                select(AuditEvent.actor).where(AuditEvent.event_type == "audit.exported")
            )
        )
    assert exports == ["staff:kiemtoan"]


# --- offline documentation ----------------------------------------------------------------------
async def test_docs_work_without_the_internet(stack: Stack) -> None:
    async with AsyncClient() as client:
        page = await client.get(f"{stack.broker}/docs")
        assert page.status_code == 200
        sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert sources and all(s.startswith("/") for s in sources), sources
        assert "<script>" not in page.text  # no inline script
        for source in sources:
            asset = await client.get(f"{stack.broker}{source}")
            assert asset.status_code == 200, source
            assert len(asset.content) > 100


async def test_purge_deletes_ended_console_sessions_and_keeps_live_ones(
    staff: Staff, stack: Stack
) -> None:
    from vssid_broker.admin import console_sessions
    from vssid_broker.admin.models import StaffConsoleSession
    from vssid_broker.housekeeping import purge

    async with stack.db.begin() as session:
        user = await session.scalar(select(StaffUser).where(StaffUser.username == "reviewer"))
        assert user is not None
        old = console_sessions.start(session, user, now=stack.clock(), settings=stack.settings)
    stack.clock.advance(stack.settings.staff_console_idle_seconds + 1)
    async with stack.db.begin() as session:
        live = console_sessions.start(session, user, now=stack.clock(), settings=stack.settings)
    async with stack.db.begin() as session:
        purged = await purge(session, stack.clock(), stack.settings)
    assert purged.staff_console_sessions == 1
    assert await stack.count(StaffConsoleSession) == 1
    async with stack.db.begin() as session:
        assert await console_sessions.find(session, old, stack.clock(), stack.settings) is None
        assert await console_sessions.find(session, live, stack.clock(), stack.settings)


async def test_the_console_password_step_does_not_reset_the_count_of_wrong_codes(
    staff: Staff, stack: Stack
) -> None:
    """Someone who knows the password cannot guess codes forever by signing in again."""
    async with AsyncClient(base_url=stack.broker) as browser:
        for _ in range(stack.settings.password_max_failures):
            form = {"username": "admin", "password": PASSWORD}
            assert (await browser.post("/admin/sign-in", data=form)).status_code == 303
            page = await browser.get("/admin/second-factor")
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            assert token is not None
            wrong = await browser.post(
                "/admin/second-factor", data={"csrf_token": token.group(1), "code": "000000"}
            )
            assert wrong.status_code == 401
        locked = await browser.post(
            "/admin/sign-in", data={"username": "admin", "password": PASSWORD}
        )
    assert locked.status_code == 429
    assert "tạm thời bị khoá" in locked.text
