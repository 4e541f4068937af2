"""The staff console, clicked through in a real Chromium: sign-in with a second factor, the
queue, a case decided by a reviewer and confirmed by an approver, search, audit, staff; every
page checked by axe-core and at phone and desktop widths."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

import pyotp
import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, Page, expect
from sqlalchemy import select

from tests.admin.test_admin_api import bhxh_account_id, open_case
from tests.browser.test_login_in_chromium import sign_in_at_vneid
from tests.conftest import Stack
from tests.support.staff import PASSWORD, add_staff, code_now
from vssid_broker.admin.models import StaffRole
from vssid_broker.audit.models import AuditEvent
from vssid_broker.linking import decisions as case_decisions

pytestmark = pytest.mark.browser

DUNG = "031188004567"
WIDTHS = (320, 1280)
SCREENSHOTS = os.environ.get("VSSID_CONSOLE_SCREENSHOTS")
"""A folder to keep each page's screenshot in (how docs/console/ was made); unset: none."""


async def assert_usable(page: Page, name: str | None = None) -> None:
    """No serious or critical axe-core violation, and no horizontal scrolling at a phone's
    and a desktop's width. `name`: also keep a screenshot for the docs."""
    # The page's text can be there before its stylesheet: measured then, a loaded machine saw
    # the unstyled queue 38 px too wide at 320 px.
    await page.wait_for_load_state("load")
    for width in WIDTHS:
        await page.set_viewport_size({"width": width, "height": 900})
        overflow = await page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{page.url} scrolls sideways by {overflow}px at {width}px"
        results = await Axe().run(page)
        serious = [
            (v["id"], v["help"], [n["html"][:120] for n in v["nodes"][:3]])
            for v in results.response["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        assert serious == [], f"{page.url} at {width}px: {serious}"
        if name and SCREENSHOTS:
            path = Path(SCREENSHOTS) / f"{name}-{width}.png"
            await page.screenshot(path=str(path), full_page=True)
    await page.set_viewport_size({"width": 1280, "height": 900})


async def console_sign_in(
    page: Page, stack: Stack, username: str, *, check_pages: bool = False
) -> None:
    await page.context.clear_cookies()
    await page.goto(f"{stack.broker}/admin")
    await page.get_by_label("Tên đăng nhập").fill(username)
    await page.get_by_label("Mật khẩu").fill(PASSWORD)
    await page.get_by_role("button", name="Tiếp tục").click()
    await expect(page).to_have_url(f"{stack.broker}/admin/second-factor")
    if check_pages:
        await assert_usable(page, "second-factor")
    await page.get_by_label("Mã 6 chữ số").fill(code_now(stack))
    await page.get_by_role("button", name="Đăng nhập").click()
    await expect(page).to_have_url(re.compile(r"/admin/cases$"))


async def sign_out(page: Page) -> None:
    await page.get_by_role("button", name="Đăng xuất").click()
    await expect(page.get_by_role("heading", name="Đăng nhập trang cán bộ")).to_be_visible()


async def test_first_sign_in_enrols_the_authenticator_by_qr_code(stack: Stack, page: Page) -> None:
    await add_staff(stack, "moi", StaffRole.REVIEWER, enrolled=False)
    await page.goto(f"{stack.broker}/admin")
    await assert_usable(page, "sign-in")
    await page.get_by_label("Tên đăng nhập").fill("moi")
    await page.get_by_label("Mật khẩu").fill(PASSWORD)
    await page.get_by_role("button", name="Tiếp tục").click()

    await expect(page).to_have_url(f"{stack.broker}/admin/enrol")
    await expect(page.locator(".qr svg")).to_be_visible()
    await assert_usable(page, "enrol")
    secret = (await page.locator("#totp-secret").inner_text()).strip()
    await page.get_by_label("Mã 6 chữ số").fill("000000")
    await page.get_by_role("button", name="Xác nhận").click()
    await expect(page.get_by_role("alert")).to_contain_text("Mã xác thực không đúng")
    assert (await page.locator("#totp-secret").inner_text()).strip() == secret  # same QR code

    await page.get_by_label("Mã 6 chữ số").fill(pyotp.TOTP(secret).at(stack.clock()))
    await page.get_by_role("button", name="Xác nhận").click()
    await expect(page.locator("#recovery-codes li")).to_have_count(10)
    await assert_usable(page, "recovery-codes")
    [cookie] = [c for c in await page.context.cookies() if c["name"] == "vssid_staff"]
    assert (cookie["path"], cookie["httpOnly"], cookie["sameSite"]) == ("/admin", True, "Lax")
    assert not any(c["name"] == "vssid_session" for c in await page.context.cookies())

    await page.get_by_role("link", name="Tôi đã lưu, vào trang hồ sơ").click()
    await expect(page.locator("#staff-who")).to_contain_text("moi")
    await sign_out(page)
    assert not any(c["name"] == "vssid_staff" for c in await page.context.cookies())
    await page.goto(f"{stack.broker}/admin/cases")
    await expect(page).to_have_url(f"{stack.broker}/admin")


async def test_a_reviewer_and_an_approver_take_a_case_to_a_linked_sign_in(
    stack: Stack, browser: Browser, page: Page
) -> None:
    case_id = await open_case(stack, DUNG)
    await add_staff(stack, "thu", StaffRole.REVIEWER)
    await add_staff(stack, "hoa", StaffRole.APPROVER)

    await console_sign_in(page, stack, "thu")
    await expect(page.locator("#status-counts")).to_contain_text("Chờ quyết định 1")
    await assert_usable(page, "queue")
    await page.get_by_role("link", name=f"Hồ sơ kiểm tra số {case_id} · Phạm Thị Dung").click()
    await expect(page.locator("#case-citizen-id")).to_have_text("031******567")
    await expect(page.locator("#why")).to_contain_text("Quy tắc 3")
    await expect(page.locator(".candidate .match").first).to_contain_text("khớp")
    await assert_usable(page, "case")

    await page.get_by_role("button", name="Nhận xử lý hồ sơ").click()
    await expect(page.locator("#assignee")).to_contain_text("thu")
    await page.get_by_role("button", name="Hiện số định danh đầy đủ").click()
    await expect(page.locator("#case-citizen-id")).to_have_text(DUNG)

    await page.get_by_role("radio").first.check()
    await page.get_by_label("Lý do phê duyệt").fill("Đã đối chiếu căn cước tại quầy")
    await page.get_by_role("button", name=re.compile("Đề xuất liên kết")).click()
    await expect(page.locator("#case-status")).to_have_text("Chờ phê duyệt")
    await expect(page.locator("#confirm")).to_contain_text("một cán bộ phê duyệt khác")
    await sign_out(page)

    await console_sign_in(page, stack, "hoa")
    await page.goto(f"{stack.broker}/admin/cases?status=proposed")
    await page.get_by_role("link", name=f"Hồ sơ kiểm tra số {case_id} · Phạm Thị Dung").click()
    await expect(page.locator("#proposal")).to_contain_text("Cán bộ thu")
    await assert_usable(page, "confirm")
    await page.get_by_role("button", name="Xác nhận liên kết").click()
    await expect(page.locator("#case-status")).to_have_text("Đã liên kết")
    await expect(page.locator("#decision")).to_contain_text("cán bộ hoa")

    # The person signs in with VNeID and is told staff confirmed the link.
    person = await browser.new_page()
    await person.goto(f"{stack.broker}/")
    await person.get_by_role("link", name="Đăng nhập bằng tài khoản định danh điện tử").click()
    await sign_in_at_vneid(person, "Phạm Thị Dung")
    await person.get_by_label("Mã OTP").fill("123456")
    await person.get_by_role("button", name="Xác nhận").click()
    await person.get_by_role("button", name="Đồng ý").click()
    await expect(person.locator("#confirmed-by-staff")).to_contain_text("đã kiểm tra và xác nhận")
    await person.close()

    async with stack.db() as session:
        rows = list(
            await session.execute(
                select(AuditEvent.event_type, AuditEvent.outcome, AuditEvent.actor)
                .where(AuditEvent.details["case_id"].as_integer() == case_id)
                .order_by(AuditEvent.id)
            )
        )
    trail = [outcome for kind, outcome, _ in rows if kind != "personal_data.read"]
    assert trail == ["name_birthdate_match", "claimed", "case", "proposed", "approved",
                     "staff_review"]  # fmt: skip
    # Opening the case is a read of the person's data: recorded for each of the two staff.
    readers = {actor for kind, _, actor in rows if kind == "personal_data.read"}
    assert len(readers) == 2 and all(actor.startswith("staff:") for actor in readers)


async def test_refusals_own_case_and_missing_role(stack: Stack, page: Page) -> None:
    case_id = await open_case(stack, DUNG)
    dung_account = await bhxh_account_id(stack, "3112345670")
    await add_staff(stack, "dung", StaffRole.REVIEWER, account_id=dung_account)
    await add_staff(stack, "hoa", StaffRole.APPROVER)

    # Her own account: she may read the case but not decide it.
    await console_sign_in(page, stack, "dung")
    await page.goto(f"{stack.broker}/admin/cases/{case_id}")
    await page.get_by_label("Lý do từ chối").fill("tự quyết")
    await page.get_by_role("button", name="Từ chối liên kết").click()
    await expect(page.locator("#error-code")).to_have_text("own_account_case")
    await assert_usable(page, "refusal")

    # An approver decides nothing and manages no staff.
    stack.clock.advance(30)
    await console_sign_in(page, stack, "hoa")
    await expect(page.get_by_role("link", name="Cán bộ", exact=True)).to_have_count(0)
    response = await page.goto(f"{stack.broker}/admin/staff")
    assert response is not None and response.status == 403
    await expect(page.locator("#error-code")).to_have_text("staff_role_required")


async def test_a_second_decision_from_a_stale_page_is_refused(stack: Stack, page: Page) -> None:
    case_id = await open_case(stack, DUNG)
    await add_staff(stack, "thu", StaffRole.REVIEWER)
    await console_sign_in(page, stack, "thu")
    await page.goto(f"{stack.broker}/admin/cases/{case_id}")
    # Someone else decides while this page is open (through the same service as any staff).
    async with stack.db.begin() as session:
        await case_decisions.reject(
            session, case_id, version=1, decider=case_decisions.Decider("khac", None),
            reason="trùng", now=stack.clock(), request_id=None,
        )  # fmt: skip
    await page.get_by_label("Lý do từ chối").fill("không khớp")
    await page.get_by_role("button", name="Từ chối liên kết").click()
    await expect(page.locator("#error-code")).to_have_text("case_already_decided")
    await assert_usable(page)
    async with stack.db() as session:
        decisions = list(
            await session.scalars(
                select(AuditEvent).where(AuditEvent.event_type == "review_case.decided")
            )
        )
    assert [d.actor for d in decisions] == ["staff:khac"]


async def test_the_console_session_ends_after_idle_time(stack: Stack, page: Page) -> None:
    await add_staff(stack, "thu", StaffRole.REVIEWER)
    await console_sign_in(page, stack, "thu", check_pages=True)
    stack.clock.advance(stack.settings.staff_console_idle_seconds + 1)
    await page.goto(f"{stack.broker}/admin/cases")
    await expect(page).to_have_url(f"{stack.broker}/admin?ended=1")
    await expect(page.get_by_role("status")).to_contain_text("Phiên làm việc đã kết thúc")


async def test_search_person_audit_and_staff_pages(stack: Stack, page: Page) -> None:
    await add_staff(stack, "quantri", StaffRole.ADMIN)
    await console_sign_in(page, stack, "quantri")

    await page.get_by_role("link", name="Tra cứu").click()
    await assert_usable(page, "search")
    await page.get_by_label(re.compile("Số định danh")).fill("Nguyễn Văn An")
    await page.get_by_role("button", name="Tìm").click()
    await expect(page.locator("#people-results li")).to_have_count(1)
    await assert_usable(page, "search-results")
    await page.get_by_role("link", name="Nguyễn Văn An").click()
    await expect(page.locator("#person-citizen-id")).to_have_text("001******345")
    await assert_usable(page, "person")
    await page.get_by_label("Lý do", exact=True).fill("người dân báo mất điện thoại")
    await page.get_by_role("button", name="Khoá tài khoản").click()
    await expect(page.locator("#person-status")).to_have_text("Đã khoá")
    await page.get_by_label("Lý do", exact=True).fill("đã xác minh tại quầy")
    await page.get_by_role("button", name="Mở khoá").click()
    await expect(page.locator("#person-status")).to_have_text("Đang hoạt động")

    await page.get_by_role("link", name="Nhật ký", exact=True).click()
    events = page.locator("#audit-events")
    await expect(events).to_contain_text("Khoá tài khoản VssID · Đã khoá")
    await expect(events).to_contain_text("Lý do: người dân báo mất điện thoại")
    await assert_usable(page, "audit")
    await page.get_by_label("Cán bộ thực hiện").fill("quantri")
    await page.get_by_role("button", name="Lọc").click()
    async with page.expect_download() as download_info:
        await page.get_by_role("link", name="Tải về CSV").click()
    download = await download_info.value
    text = await asyncio.to_thread(Path(await download.path()).read_text, encoding="utf-8")
    assert "account.unlocked" in text and "001085012345" not in text

    await page.get_by_role("link", name="Cán bộ", exact=True).click()
    await assert_usable(page, "staff")
    await page.get_by_label("Tên đăng nhập").fill("lan")
    await page.locator("#new-role").select_option("approver")
    await page.get_by_label("Mật khẩu ban đầu").fill("mot mat khau dai 2026")
    await page.get_by_role("button", name="Thêm cán bộ").click()
    await expect(page.locator("#done")).to_have_text("Đã ghi nhận: đã thêm cán bộ.")
    await expect(page.locator("#staff-lan")).to_contain_text("Cán bộ phê duyệt")
    await expect(page.locator("#staff-lan")).to_contain_text("chưa đăng ký")
