"""The counter clerk in Chromium: a name typed without diacritics finds the person, a number
leads to their open case, and the decision form reads and acts as it looks."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, expect

from tests.admin.test_admin_api import open_case
from tests.browser.test_console_in_chromium import DUNG, assert_usable, console_sign_in, sign_out
from tests.conftest import Stack
from tests.support.staff import add_staff
from vssid_broker.admin.models import StaffRole

pytestmark = pytest.mark.browser

DUNG_BHXH = "3112345670"


async def search(page: Page, stack: Stack, query: str) -> None:
    await page.goto(f"{stack.broker}/admin/people")
    await page.get_by_label(re.compile("Số định danh")).fill(query)
    await page.get_by_role("button", name="Tìm").click()


async def test_search_forgives_diacritics_and_a_number_opens_the_case(
    stack: Stack, page: Page
) -> None:
    case_id = await open_case(stack, DUNG)
    await add_staff(stack, "thu", StaffRole.REVIEWER)
    await console_sign_in(page, stack, "thu")

    for typed in ("pham thi dung", "  PHAM   thi  d", "Phạm Thị Dung"):
        await search(page, stack, typed)
        await expect(page.locator("#people-results")).to_contain_text("Phạm Thị Dung")
    await assert_usable(page)

    for number in (DUNG, DUNG_BHXH):
        await search(page, stack, number)
        await expect(page).to_have_url(f"{stack.broker}/admin/cases/{case_id}")
        await expect(page.get_by_role("heading", level=1)).to_contain_text("Phạm Thị Dung")


async def claimed_by_thu(stack: Stack, page: Page) -> int:
    """Dung's case, claimed by the reviewer "thu" (signed in); "minh" is another reviewer."""
    case_id = await open_case(stack, DUNG)
    await add_staff(stack, "thu", StaffRole.REVIEWER)
    await add_staff(stack, "minh", StaffRole.REVIEWER)
    await console_sign_in(page, stack, "thu")
    await page.goto(f"{stack.broker}/admin/cases/{case_id}")
    await page.get_by_role("button", name="Nhận xử lý hồ sơ").click()
    return case_id


async def test_the_decision_form_reads_and_acts_as_it_looks(stack: Stack, page: Page) -> None:
    await claimed_by_thu(stack, page)
    await expect(page.locator("#assignee")).to_contain_text("thu")

    # The radio sits at the start of its own words, on their line.
    for width in (320, 1280):
        await page.set_viewport_size({"width": width, "height": 900})
        choice = page.locator("label.choice").first
        radio, words = choice.locator("input"), choice.locator("span")
        radio_box, words_box = await radio.bounding_box(), await words.bounding_box()
        assert radio_box is not None and words_box is not None
        gap = words_box["x"] - (radio_box["x"] + radio_box["width"])
        assert 0 <= gap <= 16 and abs(radio_box["y"] - words_box["y"]) <= 12

    # "Từ chối liên kết" is drawn as a button: it has an outline.
    reject = page.get_by_role("button", name="Từ chối liên kết")
    style = await reject.evaluate(
        "b => [getComputedStyle(b).borderTopStyle, getComputedStyle(b).borderTopWidth]"
    )
    assert style[0] == "solid" and float(style[1].removesuffix("px")) >= 1
    await assert_usable(page)

    # A reviewer only proposes under four eyes: the banner says so.
    await page.get_by_role("radio").first.check()
    await page.get_by_label("Lý do phê duyệt").fill("Đã đối chiếu căn cước tại quầy")
    await page.get_by_role("button", name=re.compile("Đề xuất liên kết")).click()
    await expect(page.locator("#done")).to_contain_text("đã đề xuất liên kết")
    await expect(page.locator("#done")).not_to_contain_text("đã quyết định phê duyệt")
    await expect(page.locator("#proposal")).to_contain_text(
        "Cán bộ thu đề xuất liên kết với hồ sơ BHXH 3112345670 (Phạm Thị Dung)"
    )
    body = await page.locator("main").inner_text()
    assert "staff:" not in body and "UTC" not in body and not re.search(r"hồ sơ #\d", body)
    await sign_out(page)


async def test_a_case_claimed_by_someone_else_offers_no_action_that_would_fail(
    stack: Stack, page: Page
) -> None:
    case_id = await claimed_by_thu(stack, page)
    await sign_out(page)

    await console_sign_in(page, stack, "minh")
    await page.goto(f"{stack.broker}/admin/cases/{case_id}")
    await expect(page.locator("#claimed-elsewhere")).to_contain_text("cán bộ thu")
    for action in ("Nhận xử lý hồ sơ", "Từ chối liên kết", "Đóng hồ sơ"):
        await expect(page.get_by_role("button", name=action)).to_have_count(0)
    await expect(page.get_by_role("button", name=re.compile("Đề xuất liên kết"))).to_have_count(0)
    await assert_usable(page)
