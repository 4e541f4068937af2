"""What a person reads, in Chromium: Back after a refused login, the card held up to a
counter scanner, times in Vietnam's time, and data named in words, not in claim names."""

from __future__ import annotations

import io
from datetime import UTC, timedelta

import pytest
import zxingcpp
from PIL import Image
from playwright.async_api import Page, expect
from sqlalchemy import select

from tests.browser.checks import choose_citizen, page_problems, sign_in_at_vneid
from tests.browser.test_person_pages import (
    LEVEL1_NAMES,
    VNEID_LOCKED_NAMES,
    WHERE_EACH_LANDS,
    sign_in,
    start_vneid_login,
)
from tests.conftest import Stack
from vssid_broker.linking.models import FederatedLink
from vssid_broker.web import refusals

pytestmark = pytest.mark.browser

ENDED_AT_VNEID = "Lần đăng nhập này đã kết thúc"
DECLINED_AT_CONSENT = "declined at consent"
ONE_OF_EACH_REFUSAL = {
    "Trần Thị Bình": refusals.LEVEL2_REQUIRED.title,  # refused before consent
    "Vũ Thị Giang": refusals.NOT_COMPLETED_AT_VNEID.title,  # VNeID account locked
    "Lê Hoàng Cường": refusals.REGISTER_FIRST.title,
    "Phạm Thị Dung": refusals.UNDER_REVIEW.title,
    "Ngô Thị Lan": refusals.ACCOUNT_LOCKED.title,
    DECLINED_AT_CONSENT: refusals.NOT_COMPLETED_AT_VNEID.title,
}


async def refused_login(page: Page, stack: Stack, who: str) -> None:
    await start_vneid_login(page, stack)
    if who == DECLINED_AT_CONSENT:
        await choose_citizen(page, "Nguyễn Văn An")
        await page.get_by_label("Mã OTP").fill("123456")
        await page.get_by_role("button", name="Xác nhận").click()
        await page.get_by_role("button", name="Huỷ").click()
    elif who in VNEID_LOCKED_NAMES:
        await choose_citizen(page, who)
        await page.get_by_role("button", name="Quay lại ứng dụng").click()
    else:
        await sign_in_at_vneid(page, who, level2=who not in LEVEL1_NAMES)


@pytest.mark.parametrize("who", sorted(ONE_OF_EACH_REFUSAL))
async def test_back_after_a_refusal_explains_and_forward_shows_the_reason_again(
    stack: Stack, page: Page, who: str
) -> None:
    assert who == DECLINED_AT_CONSENT or who in WHERE_EACH_LANDS
    reason = page.get_by_role("heading", level=1, name=ONE_OF_EACH_REFUSAL[who])
    await refused_login(page, stack, who)
    await expect(reason).to_be_visible()

    # Every page before it was reached by GET: Back shows a page, never "Confirm Form
    # Resubmission" (ERR_CACHE_MISS), and never a live login whose answer could only be
    # "start again".
    await page.go_back()
    ended = page.get_by_role("heading", level=1, name=ENDED_AT_VNEID)
    await expect(ended).to_be_visible()
    await expect(page.locator("#finished-message")).to_contain_text("Tiến")
    await expect(page.get_by_role("link", name="Về VssID")).to_have_attribute(
        "href", f"{stack.broker}/"
    )
    assert await page_problems(page, axe_at=(320,)) == []

    await page.go_forward()
    await expect(reason).to_be_visible()


async def test_full_screen_card_qr_decodes_from_a_phone_screenshot(
    stack: Stack, page: Page
) -> None:
    await sign_in(page, stack, "Nguyễn Văn An")
    await page.get_by_role("link", name="Mở thẻ toàn màn hình").click()
    await expect(page).to_have_url(f"{stack.broker}/account/health-card")
    await expect(page.locator("#brightness-hint")).to_contain_text("độ sáng màn hình")
    assert await page_problems(page) == []

    await page.set_viewport_size({"width": 320, "height": 800})
    qr = page.locator("#health-card-qr")
    box = await qr.bounding_box()
    assert box is not None and box["width"] >= 300  # the phone's whole width, edge to edge
    (found,) = zxingcpp.read_barcodes(Image.open(io.BytesIO(await qr.screenshot())))
    fields = found.text.split("|")
    assert fields[:2] == ["DN4010112345678", "Nguyễn Văn An"] and len(fields) == 13

    # The face carries what the printed card carries.
    face = page.locator(".card-full-facts")
    await expect(face.first).to_contain_text("Số 12 phố Hàng Bài, phường Hoàn Kiếm, Hà Nội")
    await expect(face.first).to_contain_text("Ngày cấp15/12/2025")
    await expect(face.first).to_contain_text("Thời điểm đủ 5 năm liên tục01/07/2013")
    image = page.locator("#health-card-image")
    await image.evaluate("image => image.decode()")


async def test_account_page_reads_vietnam_time_and_data_in_words(stack: Stack, page: Page) -> None:
    await sign_in(page, stack, "Nguyễn Văn An")
    async with stack.db() as session:
        link = await session.scalar(select(FederatedLink))
    assert link is not None
    linked_at = link.linked_at.replace(tzinfo=link.linked_at.tzinfo or UTC)
    in_vietnam = (linked_at.astimezone(UTC) + timedelta(hours=7)).strftime("%d/%m/%Y %H:%M")
    await expect(page.locator("#linked-since")).to_have_text(in_vietnam)
    text = await page.locator("body").inner_text()
    assert "UTC" not in text
    consent = page.locator(".consents")
    await expect(consent).to_contain_text("số định danh cá nhân, họ và tên, ngày sinh")
    for claim in ("HoVaTen", "NgayThangNamSinh", "SoDinhDanh", "birthdate", "gender"):
        assert claim not in text

    await page.goto(f"{stack.broker}/privacy")
    await expect(page.locator("article")).to_contain_text("giới tính")


async def test_app_demo_pages_on_and_signs_out_another_device(stack: Stack, page: Page) -> None:
    # Signed in in the browser first: a second device of hers.
    await sign_in(page, stack, "Thạch Thị Sa Rươne")
    await page.goto(f"{stack.broker}/demo/app")
    await page.get_by_role("button", name="Đăng nhập bằng tài khoản định danh điện tử").click()
    # VNeID remembers her sign-in in this browser: it only asks her consent.
    await page.get_by_role("button", name="Đồng ý").click()
    await expect(page.locator("#app-name")).to_have_text("Thạch Thị Sa Rươne")
    await expect(page.get_by_role("heading", level=1)).to_have_text("VssID – Bảo hiểm xã hội số")

    await page.get_by_role("button", name="Quá trình").click()
    benefits = page.locator("#app-benefits li")
    await expect(benefits).to_have_count(20)
    await page.get_by_role("button", name="Xem thêm").click()
    await expect(benefits).to_have_count(23)
    await expect(page.locator("#app-benefits-count")).to_have_text("23 trong 23 khoản")
    await expect(page.get_by_role("button", name="Xem thêm")).to_be_hidden()
    assert await page_problems(page) == []

    # The card, full screen: the QR alone, as wide as the phone, decodes.
    await page.get_by_role("button", name="Thẻ BHYT").click()
    await page.get_by_role("button", name="Mở thẻ toàn màn hình").click()
    await expect(page.locator("#app-brightness-hint")).to_be_visible()
    await page.set_viewport_size({"width": 320, "height": 800})
    qr = page.locator("#app-card-qr")
    await qr.evaluate("image => image.decode()")
    box = await qr.bounding_box()
    assert box is not None and box["width"] >= 280
    (found,) = zxingcpp.read_barcodes(Image.open(io.BytesIO(await qr.screenshot())))
    assert found.text.split("|")[1] == "Thạch Thị Sa Rươne"
    assert await page_problems(page) == []
    await page.get_by_role("button", name="Đóng").click()

    await page.get_by_role("button", name="Thiết bị").click()
    sessions = page.locator("#app-sessions li")
    await expect(sessions).to_have_count(2)
    await expect(sessions.first).to_contain_text("Chrome trên Linux")
    await page.get_by_role("button", name="Đăng xuất Chrome trên Linux").click()
    await expect(sessions).to_have_count(1)
    await expect(sessions.first).to_contain_text("(thiết bị này)")
    assert await page_problems(page) == []
    # The browser's session is the one that ended.
    await page.goto(f"{stack.broker}/account")
    await expect(page).to_have_url(f"{stack.broker}/")
