"""What the person sees after signing in, and when signing in does not work out: tried in
Chromium at phone and desktop widths, every page checked by axe-core."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from urllib.parse import urlencode

import pytest
import zxingcpp
from PIL import Image
from playwright.async_api import Page, expect
from sqlalchemy import select

from tests.browser.checks import choose_citizen, page_problems, sign_in_at_vneid
from tests.conftest import Stack
from vssid_broker.errors.login import (
    AccountNotActive,
    AssuranceTooLow,
    LinkRefused,
    LinkUnderReview,
    LoginRefused,
    LoginStateInvalid,
    ProviderDenied,
    ProviderUnavailable,
    VssidAccountRequired,
)
from vssid_broker.sessions.models import RefreshToken
from vssid_broker.web import refusals

pytestmark = pytest.mark.browser

EVERY_OUTCOME: list[LoginRefused] = [
    LinkUnderReview(),
    AssuranceTooLow(),
    VssidAccountRequired(),
    LinkRefused(),
    AccountNotActive(),
    ProviderDenied(),
    ProviderUnavailable(),
    LoginStateInvalid(),
]


def outcome_url(stack: Stack, refusal: LoginRefused) -> str:
    reference = refusals.seal_outcome(stack.ctx.keys, refusal, "req-0123", stack.clock())
    return f"{stack.broker}{refusals.OUTCOME_PATH}?{urlencode({'ref': reference})}"


async def start_vneid_login(page: Page, stack: Stack) -> None:
    await page.goto(f"{stack.broker}/")
    await page.get_by_role("link", name="Đăng nhập bằng tài khoản định danh điện tử").click()


async def sign_in(page: Page, stack: Stack, full_name: str) -> None:
    await start_vneid_login(page, stack)
    await sign_in_at_vneid(page, full_name)
    await expect(page).to_have_url(f"{stack.broker}/account")


# --- every page: phones first, axe-clean ------------------------------------------------------
async def test_every_page_of_the_broker_fits_phones_and_passes_axe(
    stack: Stack, page: Page
) -> None:
    problems: list[str] = []
    titles = set()
    for refusal in EVERY_OUTCOME:
        await page.goto(outcome_url(stack, refusal))
        titles.add(await page.title())
        problems += await page_problems(page)
    # Each outcome its own title: a person (and a screen reader's tab list) can tell them apart.
    assert len(titles) == len(EVERY_OUTCOME)

    for path in ("/", "/signed-out", "/no-such-page", refusals.OUTCOME_PATH + "?ref=tampered"):
        await page.goto(f"{stack.broker}{path}")
        problems += await page_problems(page)
    await page.goto(f"{stack.broker}/demo/app")
    problems += await page_problems(page)

    await sign_in(page, stack, "Nguyễn Văn An")
    problems += await page_problems(page)
    await sign_in_expired_card_holder(page, stack)
    problems += await page_problems(page)
    assert problems == []


async def sign_in_expired_card_holder(page: Page, stack: Stack) -> None:
    await page.context.clear_cookies()
    await sign_in(page, stack, "Dương Quốc Bảo")


async def test_every_page_of_the_simulator_fits_phones_and_passes_axe(
    stack: Stack, page: Page
) -> None:
    problems: list[str] = []
    await start_vneid_login(page, stack)
    problems += await page_problems(page)  # the login page with the citizen list
    await choose_citizen(page, "Nguyễn Văn An")
    problems += await page_problems(page)  # OTP
    await page.get_by_label("Mã OTP").fill("123456")
    await page.get_by_role("button", name="Xác nhận").click()
    problems += await page_problems(page)  # consent

    await start_vneid_login(page, stack)
    await choose_citizen(page, "Vũ Thị Giang")
    problems += await page_problems(page)  # the locked account's page
    assert problems == []


async def test_simulator_citizen_list_is_usable_on_a_phone(stack: Stack, page: Page) -> None:
    await page.set_viewport_size({"width": 320, "height": 640})
    await start_vneid_login(page, stack)
    pick = page.get_by_role("button", name="Chọn: đăng nhập với Bùi Văn Khoa")
    await pick.scroll_into_view_if_needed()
    box = await pick.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 320
    assert box["height"] >= 24  # a finger-sized target (WCAG 2.5.8)
    await pick.click()
    await expect(page.get_by_label("Mã OTP")).to_be_visible()


# --- refusals ------------------------------------------------------------------------------------
async def test_refusal_survives_reload_and_back(stack: Stack, page: Page) -> None:
    await start_vneid_login(page, stack)
    await sign_in_at_vneid(page, "Trần Thị Bình", level2=False)
    heading = page.get_by_role("heading", name="Cần tài khoản định danh điện tử mức độ 2")
    await expect(heading).to_be_visible()
    assert "vneid_level_insufficient" not in page.url  # no raw code in the address bar
    await expect(page).to_have_title("Cần tài khoản định danh điện tử mức độ 2 – VssID")

    await page.reload()
    await expect(heading).to_be_visible()
    await page.goto(f"{stack.broker}/")
    await page.go_back()
    await expect(heading).to_be_visible()
    await expect(page.locator("#error-code")).to_have_text("vneid_level_insufficient")


async def test_waiting_for_staff_is_a_calm_page_with_the_expected_time(
    stack: Stack, page: Page
) -> None:
    await start_vneid_login(page, stack)
    await sign_in_at_vneid(page, "Phạm Thị Dung")
    await expect(
        page.get_by_role("heading", name="Yêu cầu liên kết đang được kiểm tra")
    ).to_be_visible()
    await expect(page.locator("#expected-time")).to_have_text("1–2 ngày làm việc")
    await expect(page.get_by_role("alert")).to_have_count(0)  # nothing alarming
    await expect(page.get_by_role("link", name="1900 9068")).to_have_attribute(
        "href", "tel:19009068"
    )


async def test_locked_vneid_account_is_not_told_it_cancelled(stack: Stack, page: Page) -> None:
    await start_vneid_login(page, stack)
    await choose_citizen(page, "Vũ Thị Giang")
    await page.get_by_role("button", name="Quay lại ứng dụng").click()
    await expect(
        page.get_by_role("heading", name="Đăng nhập tại VNeID chưa hoàn tất")
    ).to_be_visible()
    message = await page.locator("#outcome-message").inner_text()
    assert "bị khoá" in message
    assert "Bạn đã huỷ" not in message


async def test_register_first_and_call_us_pages_say_where(stack: Stack, page: Page) -> None:
    await page.goto(outcome_url(stack, VssidAccountRequired()))
    await expect(page.locator("#register-where")).to_contain_text("VssID")
    await page.goto(outcome_url(stack, LinkRefused()))
    call = page.get_by_role("link", name="Gọi tổng đài 1900 9068")
    await expect(call).to_have_attribute("href", "tel:19009068")


async def test_an_altered_outcome_link_says_start_again(stack: Stack, page: Page) -> None:
    reference = outcome_url(stack, LinkUnderReview())
    await page.goto(reference[:-6] + "AAAAAA")
    await expect(page.get_by_role("heading", name="Vui lòng đăng nhập lại")).to_be_visible()
    await expect(page.locator("#outcome-message")).to_contain_text("quá hạn hoặc không hợp lệ")


# --- signed in, and out -------------------------------------------------------------------------
async def test_just_linked_notice_shows_once(stack: Stack, page: Page) -> None:
    await sign_in(page, stack, "Nguyễn Văn An")
    await expect(page.locator("#linked-notice")).to_be_visible()
    await page.reload()
    await expect(page.locator("#linked-notice")).to_have_count(0)
    await page.goto(f"{stack.broker}/account?linked=1")
    await expect(page.locator("#linked-notice")).to_have_count(0)


async def test_logout_ends_on_signed_out_and_back_resubmits_nothing(
    stack: Stack, page: Page
) -> None:
    await sign_in(page, stack, "Bùi Văn Khoa")
    await page.get_by_role("button", name="Đăng xuất").click()
    # Back from VNeID's logout (by GET) with the `state` the broker sent.
    await expect(page).to_have_url(re.compile(rf"^{re.escape(stack.broker)}/signed-out\?state="))
    await expect(page).to_have_title("Đã đăng xuất – VssID")
    await page.go_back()
    # Back never re-sends the logout POST (Chromium would show ERR_CACHE_MISS for a form to
    # re-send): it lands on a page reached by GET that explains, the front page or, through
    # the self-submitting page to VNeID, the signed-out page again.
    await expect(page).to_have_url(re.compile(rf"^{re.escape(stack.broker)}/(signed-out.*)?$"))
    await expect(
        page.get_by_role(
            "link", name=re.compile("Đăng nhập (lại )?bằng tài khoản định danh điện tử")
        )
    ).to_be_visible()


async def test_account_page_shows_card_history_and_benefits(stack: Stack, page: Page) -> None:
    await sign_in(page, stack, "Thạch Thị Sa Rươne")
    card = page.locator("#health-card-image")
    await expect(card).to_be_visible()
    await card.evaluate("image => image.decode()")  # loaded, and a picture, not a broken icon
    await expect(page.locator("#contribution-total")).to_have_text("26 năm 0 tháng")
    await expect(page.locator("#insurance-periods")).to_contain_text(
        "Công ty Cổ phần Xây dựng Số 5"
    )
    await expect(page.locator("#insurance-periods")).to_contain_text("7.020.000 đ")
    benefits = page.locator("#insurance-benefits tbody tr")
    await expect(benefits).to_have_count(10)
    await expect(page.locator("#insurance-benefits")).to_contain_text("Lương hưu tháng 11/2026")
    await page.get_by_role("link", name="Trang sau").last.click()
    await expect(page.locator("#insurance-benefits")).to_contain_text("Lương hưu tháng 01/2026")
    await expect(page.get_by_text("11–20 trong 23 khoản")).to_be_visible()


async def test_expired_card_is_a_message_not_an_image(stack: Stack, page: Page) -> None:
    await sign_in_expired_card_holder(page, stack)
    await expect(page.locator("#health-card-image")).to_have_count(0)
    await expect(page.locator("#health-card-message")).to_contain_text("đã hết hạn")


async def test_card_image_qr_decodes_to_the_documented_fields(stack: Stack, page: Page) -> None:
    await sign_in(page, stack, "Nguyễn Văn An")
    response = await page.request.get(f"{stack.broker}/account/health-card.png")
    assert response.headers["content-type"] == "image/png"
    (found,) = zxingcpp.read_barcodes(Image.open(io.BytesIO(await response.body())))
    fields = found.text.split("|")
    assert fields == [
        "DN4010112345678",
        "Nguyễn Văn An",
        "12/03/1985",
        "1",
        "Số 12 phố Hàng Bài, phường Hoàn Kiếm, Hà Nội",
        "01 - 024",
        "01/01/2026",
        "31/12/2026",
        "15/12/2025",
        "0101",
        "",
        "",
        "01/07/2013",
    ]


# --- the app's flow, played in the browser ------------------------------------------------------
async def test_app_flow_demo_end_to_end(stack: Stack, page: Page) -> None:
    await page.clock.install()
    await page.goto(f"{stack.broker}/")
    await page.get_by_role("link", name="xem luồng đăng nhập của ứng dụng VssID").click()
    await page.get_by_role("button", name="Đăng nhập bằng tài khoản định danh điện tử").click()
    await sign_in_at_vneid(page, "Nguyễn Văn An")

    # Back on the app's redirect; the code is gone from the address bar once spent.
    await expect(page).to_have_url(f"{stack.broker}/demo/app")
    await expect(page.locator("#app-name")).to_have_text("Nguyễn Văn An")
    await expect(page.locator("#app-status")).to_contain_text("vừa được liên kết")
    async with stack.db() as session:
        family = await session.scalar(select(RefreshToken))
    assert family is not None and family.dpop_jkt is not None  # WebCrypto's key bound them

    await page.get_by_role("button", name="Quá trình").click()
    await expect(page.locator("#app-benefits")).to_contain_text("Ốm đau")
    await page.get_by_role("button", name="Thẻ BHYT").click()
    card = page.locator("#app-card-image")
    await expect(card).to_be_visible()
    await card.evaluate("image => image.decode()")  # loaded, and a picture, not a broken icon

    # The access token expires (both clocks move on); the app renews it with its refresh token.
    later = stack.settings.access_token_ttl_seconds + 5
    stack.clock.advance(later)
    await page.clock.fast_forward(later * 1000)
    await page.get_by_role("button", name="Tài khoản").click()
    await page.get_by_role("button", name="Tải lại thông tin").click()
    await expect(page.locator("#app-status")).to_contain_text("vừa được làm mới")
    await expect(page.locator("#app-name")).to_have_text("Nguyễn Văn An")
    assert await page_problems(page) == []

    await page.get_by_role("button", name="Thiết bị").click()
    await page.get_by_role("button", name="Đăng xuất thiết bị này").click()
    await expect(
        page.get_by_role("button", name="Đăng nhập bằng tài khoản định danh điện tử")
    ).to_be_visible()
    async with stack.db() as session:
        live = await session.scalar(
            select(RefreshToken).where(
                RefreshToken.revoked_at.is_(None), RefreshToken.rotated_at.is_(None)
            )
        )
    assert live is None


async def test_outcome_link_expires_after_a_day(stack: Stack, page: Page) -> None:
    url = outcome_url(stack, LinkUnderReview())
    stack.clock.advance(int(timedelta(days=1, minutes=1).total_seconds()))
    await page.goto(url)
    await expect(page.get_by_role("heading", name="Vui lòng đăng nhập lại")).to_be_visible()


# --- every demo citizen, through the whole login, at phone and desktop widths -----------------
SIGNED_IN = "signed in"
LEVEL1_NAMES = ("Trần Thị Bình", "Lý Thị Mai", "Võ Thành Nhân", "Tạ Thị Bảo Ngọc")
VNEID_LOCKED_NAMES = ("Vũ Thị Giang", "Châu Thị Hồng Nhung")
WHERE_EACH_LANDS = {
    **{name: refusals.LEVEL2_REQUIRED.title for name in LEVEL1_NAMES},
    **{name: refusals.NOT_COMPLETED_AT_VNEID.title for name in VNEID_LOCKED_NAMES},
    "Lê Hoàng Cường": refusals.REGISTER_FIRST.title,
    "Cao Văn Lợi": refusals.REGISTER_FIRST.title,
    "Phạm Thị Dung": refusals.UNDER_REVIEW.title,
    "Hoàng Văn Em": refusals.UNDER_REVIEW.title,
    "Ngô Thị Lan": refusals.ACCOUNT_LOCKED.title,
    **{
        name: SIGNED_IN
        for name in (
            "Nguyễn Văn An",
            "Bùi Văn Khoa",
            "Đỗ Minh Hà",
            "Trương Minh Quân",
            "Phan Thị Thu Hằng",
            "Đặng Văn Hải",
            "Hồ Thị Ngọc Ánh",
            "Dương Quốc Bảo",
            "Y Bluêk Niê",
            "Lâm Thị Kim Ngân",
            "Thạch Thị Sa Rươne",
            "Đinh Công Tuấn",
            "Mai Thị Thảo",
        )
    },
}


@pytest.mark.parametrize("full_name", sorted(WHERE_EACH_LANDS))
async def test_every_demo_citizen_lands_on_a_page_that_says_what_next(
    stack: Stack, page: Page, full_name: str
) -> None:
    await start_vneid_login(page, stack)
    if full_name in VNEID_LOCKED_NAMES:
        await choose_citizen(page, full_name)
        await page.get_by_role("button", name="Quay lại ứng dụng").click()
    else:
        await sign_in_at_vneid(page, full_name, level2=full_name not in LEVEL1_NAMES)
    expected = WHERE_EACH_LANDS[full_name]
    if expected == SIGNED_IN:
        await expect(page).to_have_url(f"{stack.broker}/account")
        await expect(page.locator("#full-name")).to_have_text(full_name)
        await expect(page.locator("#participation-heading")).to_be_visible()
    else:
        await expect(page.get_by_role("heading", level=1)).to_have_text(expected)
        await expect(page.locator("#request-id")).not_to_be_empty()
    # Each kind of page is axe-checked at every width above; here each person's own data.
    assert await page_problems(page, axe_at=(320,)) == []
