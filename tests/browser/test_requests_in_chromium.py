"""A request in Chromium: the stale session is sent through VNeID again and comes back to the
form it left, with what was typed kept; then the code, the staff's decision, the history."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, expect

from tests.browser.checks import page_problems, sign_in_at_vneid
from tests.browser.test_console_in_chromium import console_sign_in
from tests.conftest import Stack
from tests.e2e.test_requests import App, decide, staff_token
from tests.support.http import AsyncClient
from tests.support.staff import add_staff
from vssid_broker.admin.models import StaffRole

pytestmark = pytest.mark.browser


async def test_a_phone_change_after_a_step_up_keeps_what_was_typed(
    page: Page, stack: Stack
) -> None:
    await page.goto(f"{stack.broker}/account/requests")
    await sign_in_at_vneid(page, "Nguyễn Văn An")
    await expect(page).to_have_url(f"{stack.broker}/account/requests")
    assert await page_problems(page) == []
    await page.get_by_role("link", name="Đổi số điện thoại").click()
    await page.get_by_label("Số điện thoại mới").fill("0987000444")
    assert await page_problems(page) == []

    stack.clock.advance(400)  # the sign-in at VNeID is now older than the 300 s allowed
    async with page.expect_request(lambda r: "/authorize?" in r.url) as authorization:
        await page.get_by_role("button", name="Gửi yêu cầu").click()
    # At VNeID again, with max_age: its own sign-in is recent enough, so it only asks consent.
    await expect(page.get_by_role("button", name="Đồng ý")).to_be_visible()
    assert "max_age=300" in (await authorization.value).url
    stack.clock.reset()  # the simulated VNeID keeps real time
    await page.get_by_role("button", name="Đồng ý").click()

    await expect(page.locator("#draft-resumed")).to_be_visible()
    await expect(page.get_by_label("Số điện thoại mới")).to_have_value("0987000444")
    assert "0987000444" not in page.url  # the draft travelled server-side, not in the URL
    await page.get_by_role("button", name="Gửi yêu cầu").click()
    await expect(page.locator("#status")).to_have_text("Chờ xác nhận mã")
    reference = (await page.locator("#reference").inner_text()).strip()

    async with AsyncClient() as client:
        outbox = await client.get(f"{stack.broker}/demo/sms")
    found = re.search(r"Đến 0987000444.*?la (\d{6})", outbox.text, re.S)
    assert found
    await page.get_by_label("Mã xác nhận (6 chữ số) gửi đến số mới").fill("000001")
    await page.get_by_role("button", name="Xác nhận").click()
    await expect(page.locator("#error")).to_contain_text("Mã xác nhận không đúng")
    await page.get_by_label("Mã xác nhận (6 chữ số) gửi đến số mới").fill(found.group(1))
    await page.get_by_role("button", name="Xác nhận").click()
    await expect(page.locator("#status")).to_have_text("Đã gửi")
    assert await page_problems(page) == []

    await decide(stack, await staff_token(stack), reference, "done")
    await page.reload()
    await expect(page.locator("#status")).to_have_text("Đã hoàn thành")
    await expect(page.locator("ol.history li")).to_have_count(4)  # code, sent, claimed, done


async def test_the_app_demo_meets_the_step_up_and_sends_the_request(
    page: Page, stack: Stack
) -> None:
    # A broker allowing 5 s: the demo's first sign-in goes stale without moving any clock.
    with stack.broker_with(step_up_max_age_seconds=5) as broker:
        await page.goto(f"{broker}/demo/app")
        await page.get_by_role("button", name="Đăng nhập bằng tài khoản định danh điện tử").click()
        await sign_in_at_vneid(page, "Nguyễn Văn An")
        await expect(page.locator("#app-name")).to_have_text("Nguyễn Văn An")
        await page.get_by_role("button", name="Yêu cầu").click()
        await page.get_by_label("Loại yêu cầu").select_option("health_card_reissue")
        await page.wait_for_timeout(6000)  # the sign-in at VNeID is now older than 5 s
        async with page.expect_request(lambda r: "/authorize?" in r.url) as authorization:
            await page.get_by_role("button", name="Gửi yêu cầu").click()

        # The challenge sends the app to VNeID with max_age=5: the passcode is asked again.
        await expect(
            page.get_by_role("button", name="Chọn: đăng nhập với Nguyễn Văn An")
        ).to_be_visible()
        assert "max_age=5" in (await authorization.value).url
        await sign_in_at_vneid(page, "Nguyễn Văn An")
        await expect(page.locator("#app-status")).to_contain_text("Đã gửi yêu cầu YC-")
        await expect(page.locator("#app-requests")).to_contain_text("Cấp lại thẻ BHYT · đã gửi")


async def test_staff_process_a_request_in_the_console(page: Page, stack: Stack) -> None:
    await add_staff(stack, "thu", StaffRole.REVIEWER)
    async with AsyncClient() as client:
        app = App(client, stack.broker)
        await app.sign_in()
        submitted = await app.submit(kind="health_card_reissue", reason="damaged")
        reference = submitted.json()["reference"]

        await console_sign_in(page, stack, "thu")
        await page.get_by_role("link", name="Yêu cầu", exact=True).click()
        await page.get_by_role("link", name=re.compile("Cấp lại thẻ BHYT")).click()
        await expect(page.locator("#request-queue")).to_contain_text(reference)
        assert await page_problems(page) == []
        await page.get_by_role("link", name=reference).click()
        await page.get_by_role("button", name="Nhận xử lý").click()
        await expect(page.locator("#request-status")).to_have_text("Đang xử lý")
        await page.get_by_role("radio", name="Từ chối").check()
        await page.get_by_label("Lý do (bắt buộc khi từ chối; người dân sẽ đọc)").fill(
            "Thẻ còn sử dụng được, đề nghị giữ thẻ hiện tại."
        )
        await page.get_by_role("button", name="Ghi kết quả").click()
        await expect(page.locator("#request-status")).to_have_text("Bị từ chối")
        assert await page_problems(page) == []

        mine = await app.get(f"/{reference}")
    assert mine.json()["status"] == "refused"
    assert mine.json()["refusal_reason"] == "Thẻ còn sử dụng được, đề nghị giữ thẻ hiện tại."
